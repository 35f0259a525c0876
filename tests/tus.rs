//! Resumable uploads (tus 1.0.0) on the real binary, driven by the tus
//! clients people use: tuspy (PyPI) and tus-js-client (npm, in Node), both
//! installed by scripts/test.sh. Connections are cut by a relay in this
//! test that closes the client's connection once a share of the file has
//! passed through it; the clients resume and the stored file's SHA-256 is
//! compared with the local one.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::web::RawReply;
use common::{ADMIN_PASSWORD, Served, guard, skip_allowed};
use switchboard::kind::ServiceKind;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const SIZE: usize = 6 << 20;

/// `switchboard ARGS --data-dir DIR`; its stdout.
async fn cli(dir: &Path, args: &[&str]) -> String {
    let out = guard(
        "the CLI exits",
        tokio::process::Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .env_remove("SWITCHBOARD_CONFIG")
            .output(),
    )
    .await
    .expect("the binary runs");
    assert!(out.status.success(), "switchboard {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

async fn token(dir: &Path, name: &str) -> String {
    cli(dir, &["token", "create", name, "--role", "operator"])
        .await
        .trim()
        .to_owned()
}

async fn serve(dir: &Path, env: &[(&str, &str)]) -> Served {
    let mut all = vec![("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    all.extend_from_slice(env);
    Served::start(dir, &[ServiceKind::Files], &all).await
}

/// A file of `SIZE` bytes that no two calls share, and its SHA-256.
fn sample(dir: &Path, name: &str) -> (PathBuf, String) {
    let mut data = vec![0u8; SIZE];
    let mut x: u64 = name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    for b in &mut data {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    (path, hex(&Sha256::digest(&data)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A TCP relay to `upstream` that closes the first connection on which the
/// bytes sent to the server (counted over every connection) pass `cut_at`.
struct Relay {
    addr: SocketAddr,
    sent: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
}

async fn relay(upstream: &str, cut_at: u64) -> Relay {
    let listener =
        switchboard::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).expect("bind");
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    let upstream: SocketAddr = upstream.trim_start_matches("http://").parse().unwrap();
    let (s, c) = (Arc::clone(&sent), Arc::clone(&cut));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (sent, cut) = (Arc::clone(&s), Arc::clone(&c));
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let back = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                    if total >= cut_at && !cut.swap(true, Ordering::SeqCst) {
                        // The cut: both sides closed mid-body.
                        back.abort();
                        return;
                    }
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = sw.shutdown().await;
                let _ = back.await;
            });
        }
    });
    Relay { addr, sent, cut }
}

/// Whether tuspy is importable; panics (or records an allowed skip).
fn have_tuspy() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import tusclient"])
        .status()
        .is_ok_and(|s| s.success());
    ok || !skip_allowed(
        "TUS",
        "tuspy (PyPI) is not installed: scripts/test.sh installs it",
    )
}

/// tus-js-client's node_modules folder; panics (or records a skip).
fn tus_js() -> Option<PathBuf> {
    let dir = std::env::var_os("SWITCHBOARD_TUS_JS_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(
                    || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
                    PathBuf::from,
                )
                .join("tus-js/node_modules")
        });
    if dir.join("tus-js-client").is_dir() {
        return Some(dir);
    }
    skip_allowed(
        "TUS",
        "tus-js-client (npm) is not installed: scripts/test.sh installs it",
    );
    None
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tus")
        .join(name)
}

/// Runs tuspy; its JSON line.
async fn tuspy(
    endpoint: &str,
    token: &str,
    file: &Path,
    url: Option<&str>,
    extra: &[&str],
) -> Value {
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(script("tuspy_upload.py"))
        .args([endpoint, token])
        .arg(file);
    if let Some(url) = url {
        cmd.args(["--url", url]);
    }
    cmd.args(extra);
    let out = guard("tuspy", cmd.output()).await.expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "tuspy said {text:?} ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs tus-js-client in Node; its JSON line.
async fn tus_node(
    modules: &Path,
    endpoint: &str,
    token: &str,
    file: &Path,
    url: Option<&str>,
) -> Value {
    let mut cmd = tokio::process::Command::new("node");
    cmd.env("NODE_PATH", modules)
        .arg(script("tus_js_upload.js"))
        .args([endpoint, token])
        .arg(file);
    if let Some(url) = url {
        cmd.arg(url);
    }
    let out = guard("tus-js-client", cmd.output())
        .await
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "node said {text:?} ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// One request over a real socket; `Connection: close`.
async fn raw(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawReply {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("send");
    stream.write_all(body).await.expect("send");
    let mut out = Vec::new();
    guard("the reply", stream.read_to_end(&mut out))
        .await
        .expect("read");
    RawReply::parse(&out)
}

fn header<'a>(r: &'a RawReply, name: &str) -> Option<&'a str> {
    r.head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The stored file named `name`, from the files list.
async fn stored(base: &str, token: &str, name: &str) -> Value {
    let auth = format!("Bearer {token}");
    let r = raw(
        base,
        "GET",
        "/api/v1/files",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not stored: {}", r.body))
}

fn audit(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(switchboard::audit::path(dir))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

async fn audited(dir: &Path, action: &str, name: &str) {
    guard(
        &format!("an audit line upload {action} for {name}"),
        async {
            loop {
                if audit(dir)
                    .iter()
                    .any(|l| l["event"] == "upload" && l["action"] == action && l["name"] == name)
                {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        },
    )
    .await;
}

fn partial_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("files/.partial")).map_or(0, Iterator::count)
}

#[tokio::test]
async fn tuspy_resumes_uploads_cut_at_30_60_and_90_percent() {
    if !have_tuspy() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[]).await;
    let base = served.web_url();
    let token = token(dir.path(), "ci").await;
    // A part with a checksum is all or nothing: cut, it is dropped, so
    // the checked run sends 1 MiB parts and resumes from the last whole one.
    let runs: [(u64, &[&str]); 3] = [
        (30, &[]),
        (60, &["--checksum", "--chunk", "1048576"]),
        (90, &["--chunk", "1048576"]),
    ];
    for (percent, extra) in runs {
        let name = format!("tuspy-{percent}.bin");
        let (file, sha) = sample(dir.path(), &name);
        let cut_at = SIZE as u64 * percent / 100;
        let relay = relay(&base, cut_at).await;
        let endpoint = format!("http://{}/api/v1/uploads/", relay.addr);
        let first = tuspy(&endpoint, &token, &file, None, extra).await;
        assert_eq!(first["done"], false, "{first}");
        assert!(relay.cut.load(Ordering::SeqCst));
        let url = first["url"].as_str().expect("the upload's URL").to_owned();
        let again = tuspy(&endpoint, &token, &file, Some(&url), extra).await;
        assert_eq!(again["done"], true, "{again}");
        let resumed_from = again["offset_before"].as_u64().unwrap();
        assert!(
            resumed_from > 0 && resumed_from <= cut_at,
            "{percent} %: resumed from {resumed_from}"
        );
        let sent = relay.sent.load(Ordering::SeqCst);
        assert!(
            sent < SIZE as u64 + (1 << 20) + (cut_at - resumed_from),
            "{sent} bytes sent: started again?"
        );
        let f = stored(&base, &token, &name).await;
        assert_eq!(f["sha256"], sha.as_str(), "{percent} %");
        assert_eq!(f["size"], SIZE);
        audited(dir.path(), "resumed", &name).await;
        audited(dir.path(), "completed", &name).await;
    }
    assert_eq!(partial_files(dir.path()), 0, "nothing left in .partial");
}

#[tokio::test]
async fn tus_js_client_resumes_by_itself_after_cuts_at_30_60_and_90_percent() {
    let Some(modules) = tus_js() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[]).await;
    let base = served.web_url();
    let token = token(dir.path(), "ci").await;
    for percent in [30u64, 60, 90] {
        let name = format!("js-{percent}.bin");
        let (file, sha) = sample(dir.path(), &name);
        let cut_at = SIZE as u64 * percent / 100;
        let relay = relay(&base, cut_at).await;
        let endpoint = format!("http://{}/api/v1/uploads/", relay.addr);
        let out = tus_node(&modules, &endpoint, &token, &file, None).await;
        assert_eq!(out["done"], true, "{out}");
        assert!(
            out["errors"].as_u64().unwrap() >= 1,
            "the cut was seen: {out}"
        );
        assert!(relay.cut.load(Ordering::SeqCst));
        let sent = relay.sent.load(Ordering::SeqCst);
        assert!(
            sent < SIZE as u64 * 11 / 10 + (1 << 20),
            "{sent} bytes sent: started again?"
        );
        assert_eq!(stored(&base, &token, &name).await["sha256"], sha.as_str());
        audited(dir.path(), "resumed", &name).await;
    }
}

#[tokio::test]
async fn an_upload_cut_before_a_server_restart_completes_after_it_with_both_clients() {
    let modules = tus_js();
    if !have_tuspy() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = serve(&data, &[]).await;
    let token = token(&data, "ci").await;
    let base = served.web_url();
    let (py_file, py_sha) = sample(dir.path(), "py-restart.bin");
    let (js_file, js_sha) = sample(dir.path(), "js-restart.bin");
    let relay1 = relay(&base, SIZE as u64 / 2).await;
    let py = tuspy(
        &format!("http://{}/api/v1/uploads/", relay1.addr),
        &token,
        &py_file,
        None,
        &[],
    )
    .await;
    assert_eq!(py["done"], false, "{py}");
    let py_path = path_of(py["url"].as_str().unwrap());
    let mut js_path = None;
    if modules.is_some() {
        // tus-js-client retries a cut by itself: its half is sent here.
        let r = create(&base, &token, "js-restart.bin", SIZE as u64).await;
        let url = header(&r, "location").unwrap().to_owned();
        let half = std::fs::read(&js_file).unwrap()[..SIZE / 2].to_vec();
        let p = patch(&base, &token, &url, 0, &half).await;
        assert_eq!(p.status, 204, "{p:?}");
        js_path = Some(url);
    }
    served.terminate().await;
    assert!(partial_files(&data) >= 2, "the partial uploads are on disk");

    let served = serve(&data, &[]).await;
    let base = served.web_url();
    let py = tuspy(
        &format!("{base}/api/v1/uploads/"),
        &token,
        &py_file,
        Some(&format!("{base}{py_path}")),
        &[],
    )
    .await;
    assert_eq!(py["done"], true, "{py}");
    assert!(py["offset_before"].as_u64().unwrap() > 0, "{py}");
    assert_eq!(
        stored(&base, &token, "py-restart.bin").await["sha256"],
        py_sha.as_str()
    );
    if let (Some(modules), Some(url)) = (modules, js_path) {
        let out = tus_node(
            &modules,
            &format!("{base}/api/v1/uploads/"),
            &token,
            &js_file,
            Some(&format!("{base}{url}")),
        )
        .await;
        assert_eq!(out["done"], true, "{out}");
        assert_eq!(
            stored(&base, &token, "js-restart.bin").await["sha256"],
            js_sha.as_str()
        );
    }
    audited(&data, "resumed", "py-restart.bin").await;
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest[rest.find('/').unwrap()..].to_owned()
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn create(base: &str, token: &str, name: &str, length: u64) -> RawReply {
    let auth = format!("Bearer {token}");
    let meta = format!("filename {}", b64(name));
    let length = length.to_string();
    raw(
        base,
        "POST",
        "/api/v1/uploads/",
        &[
            ("Authorization", &auth),
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Length", &length),
            ("Upload-Metadata", &meta),
        ],
        b"",
    )
    .await
}

async fn patch(base: &str, token: &str, url: &str, offset: u64, body: &[u8]) -> RawReply {
    let auth = format!("Bearer {token}");
    let offset = offset.to_string();
    raw(
        base,
        "PATCH",
        url,
        &[
            ("Authorization", &auth),
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Offset", &offset),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        body,
    )
    .await
}

#[tokio::test]
async fn the_protocol_rules_limits_owners_termination_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        &[
            ("SWITCHBOARD_FILES_MAX_PARTIALS", "3"),
            ("SWITCHBOARD_FILES_MAX_FILE_BYTES", "1125899906842624"),
        ],
    )
    .await;
    let base = served.web_url();
    let (ann, bob) = (
        token(dir.path(), "ann").await,
        token(dir.path(), "bob").await,
    );
    let auth = format!("Bearer {ann}");
    let tus = [("Authorization", auth.as_str()), ("Tus-Resumable", "1.0.0")];

    let r = raw(
        &base,
        "OPTIONS",
        "/api/v1/uploads/",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(header(&r, "tus-version"), Some("1.0.0"));
    assert!(header(&r, "tus-extension").unwrap().contains("termination"));

    // No Tus-Resumable: 412 with the version spoken.
    let r = raw(
        &base,
        "POST",
        "/api/v1/uploads/",
        &[("Authorization", &auth), ("Upload-Length", "5")],
        b"",
    )
    .await;
    assert_eq!(r.status, 412, "{r:?}");
    assert_eq!(header(&r, "tus-version"), Some("1.0.0"));
    // Bad metadata, no name, defer-length: 400.
    for h in [
        ("Upload-Metadata", "filename !!!"),
        ("Upload-Metadata", "other YQ=="),
        ("Upload-Defer-Length", "1"),
    ] {
        let r = raw(
            &base,
            "POST",
            "/api/v1/uploads/",
            &[tus[0], tus[1], ("Upload-Length", "5"), h],
            b"",
        )
        .await;
        assert_eq!(r.status, 400, "{h:?}: {r:?}");
    }
    // More than the disk holds: 507 with the reason.
    let r = create(&base, &ann, "huge", 1 << 49).await;
    assert_eq!(r.status, 507, "{r:?}");
    assert!(r.body.contains("disk space"), "{}", r.body);
    // No one's token: 401.
    let r = raw(
        &base,
        "POST",
        "/api/v1/uploads/",
        &[("Tus-Resumable", "1.0.0"), ("Upload-Length", "5")],
        b"",
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");

    let r = create(&base, &ann, "../../etc/x.txt", 10).await;
    assert_eq!(r.status, 201, "{r:?}");
    let url = header(&r, "location").unwrap().to_owned();
    assert!(
        url.starts_with("/api/v1/uploads/") && url.len() == 16 + 32,
        "{url}"
    );
    assert!(header(&r, "upload-expires").is_some());

    // Another account: the upload does not exist for it.
    let other = format!("Bearer {bob}");
    for method in ["HEAD", "DELETE"] {
        let r = raw(
            &base,
            method,
            &url,
            &[("Authorization", &other), ("Tus-Resumable", "1.0.0")],
            b"",
        )
        .await;
        assert_eq!(r.status, 404, "{method}: {r:?}");
    }
    assert_eq!(patch(&base, &bob, &url, 0, b"bobbobbob!").await.status, 404);
    // Wrong offset: 409; no content type: 415; past the end: 413; a wrong checksum: 460.
    assert_eq!(patch(&base, &ann, &url, 3, b"abc").await.status, 409);
    let r = raw(
        &base,
        "PATCH",
        &url,
        &[tus[0], tus[1], ("Upload-Offset", "0")],
        b"abc",
    )
    .await;
    assert_eq!(r.status, 415, "{r:?}");
    assert_eq!(
        patch(&base, &ann, &url, 0, b"abcdefghijk").await.status,
        413
    );
    let r = raw(
        &base,
        "PATCH",
        &url,
        &[
            tus[0],
            tus[1],
            ("Upload-Offset", "0"),
            ("Content-Type", "application/offset+octet-stream"),
            ("Upload-Checksum", "sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ],
        b"abc",
    )
    .await;
    assert_eq!(r.status, 460, "{r:?}");
    let r = patch(&base, &ann, &url, 0, b"hello").await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(header(&r, "upload-offset"), Some("5"));
    assert_eq!(header(&r, "upload-stored-name"), None, "not complete yet");
    let r = raw(&base, "HEAD", &url, &tus, b"").await;
    assert_eq!(
        (
            r.status,
            header(&r, "upload-offset"),
            header(&r, "upload-length")
        ),
        (200, Some("5"), Some("10"))
    );
    assert_eq!(header(&r, "tus-resumable"), Some("1.0.0"));
    // Listed for admins (not for operators).
    let admin = token_admin(dir.path()).await;
    let r = raw(
        &base,
        "GET",
        "/api/v1/uploads/",
        &[("Authorization", &format!("Bearer {admin}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()[0]["offset"], 5);
    assert_eq!(r.json()[0]["name"], "x.txt");
    assert_eq!(
        raw(&base, "GET", "/api/v1/uploads/", &[tus[0]], b"")
            .await
            .status,
        403
    );

    // At most 3 unfinished per account.
    let more = [
        create(&base, &ann, "b", 1).await,
        create(&base, &ann, "c", 1).await,
    ];
    assert!(more.iter().all(|r| r.status == 201));
    let r = create(&base, &ann, "d", 1).await;
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(
        create(&base, &bob, "d", 1).await.status,
        201,
        "bob has his own count"
    );

    // Terminated: gone from disk at once, then 404.
    assert_eq!(partial_files(dir.path()), 8);
    let r = raw(&base, "DELETE", &url, &tus, b"").await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(partial_files(dir.path()), 6);
    assert_eq!(raw(&base, "HEAD", &url, &tus, b"").await.status, 404);
    audited(dir.path(), "terminated", "x.txt").await;
    let r = create(&base, &ann, "d", 1).await;
    assert_eq!(r.status, 201, "a slot is free again: {r:?}");
    // Complete with a one-byte part: stored under its safe name.
    let d = header(&r, "location").unwrap().to_owned();
    let r = patch(&base, &ann, &d, 0, b"!").await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(stored(&base, &ann, "d").await["size"], 1);
    // The completing answer says where the file went and its SHA-256.
    assert_eq!(header(&r, "upload-stored-name"), Some("d"));
    assert_eq!(
        header(&r, "upload-sha256"),
        Some(hex(&Sha256::digest(b"!")).as_str())
    );
    served.terminate().await;
}

async fn token_admin(dir: &Path) -> String {
    cli(dir, &["token", "create", "root", "--role", "admin"])
        .await
        .trim()
        .to_owned()
}

#[tokio::test]
async fn an_expired_upload_is_swept_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[("SWITCHBOARD_FILES_PARTIAL_TTL_MS", "300")]).await;
    let base = served.web_url();
    let ann = token(dir.path(), "ann").await;
    let r = create(&base, &ann, "late.bin", 100).await;
    assert_eq!(r.status, 201, "{r:?}");
    let url = header(&r, "location").unwrap().to_owned();
    assert_eq!(patch(&base, &ann, &url, 0, &[7u8; 50]).await.status, 204);
    // Nobody touches it: the sweep removes it.
    audited(dir.path(), "expired", "late.bin").await;
    assert_eq!(partial_files(dir.path()), 0);
    assert_eq!(patch(&base, &ann, &url, 50, &[7u8; 50]).await.status, 404);
}

#[tokio::test]
async fn put_resume_continues_an_upload_cut_on_the_files_service() {
    let h = common::Harness::start().await;
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("key");
    std::fs::write(&key, format!("{}\n", common::TEST_KEY)).unwrap();
    let (file, sha) = sample(work.path(), "cli-resume.bin");
    let files = h.target(ServiceKind::Files);
    let state = work.path().join("state");
    let put = |addr: String| {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(["put", &addr])
            .arg(&file)
            .arg("--key-file")
            .arg(&key)
            .arg("--resume")
            .env("XDG_STATE_HOME", &state)
            .env_remove("SWITCHBOARD_CONFIG");
        async move {
            guard("switchboard put --resume", cmd.output())
                .await
                .unwrap()
        }
    };
    let relay = relay(&files, SIZE as u64 / 2).await;
    let cut = put(relay.addr.to_string()).await;
    assert!(!cut.status.success(), "the cut put failed: {cut:?}");
    assert!(relay.cut.load(Ordering::SeqCst));
    // The same address (the record is per server): the relay passes now.
    let done = put(relay.addr.to_string()).await;
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    let held: u64 = err
        .split("resuming cli-resume.bin at ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resumption in {err:?}"));
    assert!(held > 0 && held <= SIZE as u64 / 2, "resumed at {held}");
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(out.contains(&format!("sha256 {sha}")), "{out}");
    let listed = h.supervisor.store().list().await.unwrap();
    let f = listed
        .iter()
        .find(|f| f.name == "cli-resume.bin")
        .expect("stored");
    assert_eq!(f.sha256, sha);
    assert_eq!(
        std::fs::read_dir(state.join("switchboard/partials"))
            .unwrap()
            .count(),
        0,
        "the record is gone"
    );
    assert_eq!(partial_files(h.dir.path()), 0);
}

#[tokio::test]
async fn the_resumable_put_refuses_what_it_should_on_the_wire() {
    use common::message::{frame, handshake, read_message};
    use serde_json::json;
    let h = common::Harness::start().await;
    let (mut raw, verdict) =
        handshake(h.addr(ServiceKind::Files), common::TEST_KEY.as_bytes()).await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    let mut ask = async |header: Value, body: &[u8]| {
        raw.write_all(&frame(&header, body)).await.unwrap();
        read_message(&mut raw).await.0
    };
    // `partial` or `offset` without `total`: refused, the connection stays.
    let r = ask(
        json!({"op": "put", "name": "x", "partial": "0".repeat(32)}),
        b"",
    )
    .await;
    assert!(r["error"].as_str().unwrap().contains("need `total`"), "{r}");
    let r = ask(
        json!({"op": "put", "name": "x", "total": 10, "partial": "f".repeat(32)}),
        b"",
    )
    .await;
    assert!(
        r["error"].as_str().unwrap().contains("no partial upload"),
        "{r}"
    );
    let r = ask(json!({"op": "put", "name": "../x", "total": 10}), b"").await;
    assert_eq!(
        (r["ok"].clone(), r["offset"].clone()),
        (json!(true), json!(0)),
        "{r}"
    );
    let id = r["partial"].as_str().unwrap().to_owned();
    let r = ask(
        json!({"op": "put", "name": "x", "total": 10, "partial": id, "offset": 0}),
        b"hello",
    )
    .await;
    assert_eq!(r["offset"], 5, "{r}");
    let r = ask(
        json!({"op": "put", "name": "x", "total": 11, "partial": id}),
        b"",
    )
    .await;
    assert!(r["error"].as_str().unwrap().contains("not 11"), "{r}");
    let r = ask(
        json!({"op": "put", "name": "x", "total": 10, "partial": id}),
        b"",
    )
    .await;
    assert_eq!(r["offset"], 5, "asking again: {r}");
    // A body at the wrong offset: refused, and the connection closed.
    let r = ask(
        json!({"op": "put", "name": "x", "total": 10, "partial": id, "offset": 2}),
        b"xyz",
    )
    .await;
    assert!(
        r["error"].as_str().unwrap().contains("holds 5 bytes"),
        "{r}"
    );
    let (mut raw, _) = handshake(h.addr(ServiceKind::Files), common::TEST_KEY.as_bytes()).await;
    raw.write_all(&frame(
        &json!({"op": "put", "name": "x", "total": 10, "partial": id, "offset": 5}),
        b"world",
    ))
    .await
    .unwrap();
    let (r, _) = read_message(&mut raw).await;
    assert_eq!(r["name"], "x", "stored under its safe name: {r}");
    assert_eq!(r["stored_size"], 10);
    assert_eq!(
        std::fs::read(h.supervisor.store().dir().join("x")).unwrap(),
        b"helloworld"
    );
}

#[tokio::test]
async fn a_cookie_session_needs_its_csrf_token_and_the_same_origin() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[]).await;
    let base = served.web_url();
    let body = serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let r = raw(
        &base,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_owned();
    let cookie = header(&r, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let meta = format!("filename {}", b64("page.bin"));
    let tus = [
        ("Cookie", cookie.as_str()),
        ("Tus-Resumable", "1.0.0"),
        ("Upload-Length", "3"),
        ("Upload-Metadata", meta.as_str()),
    ];
    let r = raw(&base, "POST", "/api/v1/uploads/", &tus, b"").await;
    assert_eq!(r.status, 403, "no CSRF token: {r:?}");
    let origin = "http://evil.example".to_owned();
    let with = |extra: (&'static str, &str)| {
        let mut h = tus.to_vec();
        h.push(("X-CSRF-Token", csrf.as_str()));
        h.push(extra);
        h.into_iter()
            .map(|(k, v)| (k, v.to_owned()))
            .collect::<Vec<_>>()
    };
    let h = with(("Origin", &origin));
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        raw(&base, "POST", "/api/v1/uploads/", &h, b"").await.status,
        403,
        "a foreign origin"
    );
    let h = with(("Origin", &base));
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = raw(&base, "POST", "/api/v1/uploads/", &h, b"").await;
    assert_eq!(r.status, 201, "{r:?}");
    audited(dir.path(), "created", "page.bin").await;
}

/// An upload whose first part fails before a byte is kept is gone at once:
/// its creator never got an id to resume or delete it by (tus answers no
/// Location; the files protocol's id is in the reply that never came), so
/// it would hold its space and a place in the owner's count until expiry.
#[tokio::test]
async fn an_upload_whose_first_part_fails_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[]).await;
    let base = served.web_url();
    let ann = token(dir.path(), "ann").await;
    let auth = format!("Bearer {ann}");
    let meta = format!("filename {}", b64("first.bin"));
    let with_data = |checksum: &'static str| {
        let mut h = vec![
            ("Authorization", auth.clone()),
            ("Tus-Resumable", "1.0.0".to_owned()),
            ("Upload-Length", "10".to_owned()),
            ("Upload-Metadata", meta.clone()),
            ("Content-Type", "application/offset+octet-stream".to_owned()),
        ];
        if !checksum.is_empty() {
            h.push(("Upload-Checksum", checksum.to_owned()));
        }
        h
    };
    for (checksum, body, status) in [
        // More body than the declared length.
        ("", &b"twenty bytes of body"[..], 413),
        // A checksum that cannot be read.
        ("md5 AAAA", &b"0123456789"[..], 400),
        // A checksum that does not match.
        (
            "sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            &b"0123456789"[..],
            460,
        ),
    ] {
        let headers = with_data(checksum);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = raw(&base, "POST", "/api/v1/uploads/", &headers, body).await;
        assert_eq!(r.status, status, "{checksum:?}: {r:?}");
        assert!(header(&r, "location").is_none(), "{r:?}");
        assert_eq!(partial_files(dir.path()), 0, "{checksum:?}: files left");
    }
    // The whole file in the creation, not the SHA-256 it declared: 460,
    // not a 201 saying it is all there.
    let declared = format!(
        "filename {},sha256 {}",
        b64("whole.bin"),
        b64(&"0".repeat(64))
    );
    let mut headers = with_data("");
    headers[3].1 = declared;
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = raw(&base, "POST", "/api/v1/uploads/", &headers, b"0123456789").await;
    assert_eq!(r.status, 460, "{r:?}");
    assert!(header(&r, "location").is_none(), "{r:?}");
    assert_eq!(
        partial_files(dir.path()),
        0,
        "files left by a wrong whole file"
    );
    let list = raw(
        &base,
        "GET",
        "/api/v1/uploads/",
        &[(
            "Authorization",
            &format!("Bearer {}", token_admin(dir.path()).await),
        )],
        b"",
    )
    .await;
    assert_eq!(list.json(), serde_json::json!([]), "{list:?}");
    audited(dir.path(), "failed", "first.bin").await;
}

/// The files protocol's side of the same: a first put that carries a body
/// too long, or one cut short.
#[tokio::test]
async fn a_first_put_that_fails_leaves_no_partial_upload() {
    use common::message::{frame, handshake, read_message};
    let h = common::Harness::start().await;
    let files = h.addr(ServiceKind::Files);
    let (mut wire, _) = handshake(files, common::TEST_KEY.as_bytes()).await;
    let head = serde_json::json!({"op": "put", "name": "y", "total": 10, "size": 20});
    wire.write_all(&frame(&head, &[b'y'; 20])).await.unwrap();
    let (r, _) = read_message(&mut wire).await;
    assert!(r["error"].as_str().unwrap().contains("past"), "{r}");
    assert_eq!(
        partial_files(h.dir.path()),
        0,
        "files left by a put too long"
    );
    let (mut wire, _) = handshake(files, common::TEST_KEY.as_bytes()).await;
    let head = serde_json::json!({"op": "put", "name": "z", "total": 10, "size": 10});
    let framed = frame(&head, &[b'z'; 10]);
    wire.write_all(&framed[..framed.len() - 7]).await.unwrap();
    guard("the first put's upload made", async {
        while partial_files(h.dir.path()) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    drop(wire);
    guard("the cut first put's upload removed", async {
        while partial_files(h.dir.path()) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    // Mid-body, its connection closed by an admin: the connection's task
    // ends where it waits for the body, past every refusal's path.
    let (mut wire, _) = handshake(files, common::TEST_KEY.as_bytes()).await;
    let head = serde_json::json!({"op": "put", "name": "w", "total": 10, "size": 10});
    let framed = frame(&head, &[b'w'; 10]);
    wire.write_all(&framed[..framed.len() - 7]).await.unwrap();
    // In the table, its lock held by the put, which waits for the rest
    // of its body (past its creation's own clean-up).
    let partials =
        switchboard::store::partial::Partials::open_folder(&h.dir.path().join("files")).unwrap();
    guard("the first put waiting for its body", async {
        use futures_util::FutureExt;
        loop {
            let made = std::fs::read_dir(h.dir.path().join("files/.partial"))
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .find_map(|n| n.strip_suffix(".json").map(str::to_owned))
                .and_then(|id| partials.get(&id, "files-protocol"));
            if made.is_some_and(|p| p.lock().now_or_never().is_none()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let id = h
        .stats
        .snapshot()
        .connections_of(ServiceKind::Files)
        .map(|c| c.id)
        .max()
        .expect("the put's connection (the newest)");
    h.stats.close(id).unwrap();
    guard("the closed first put's upload removed", async {
        while partial_files(h.dir.path()) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    drop(wire);
}

/// A client that sends its last part and goes away without waiting for
/// the answer: hyper drops a request's handler once it sees the
/// connection close, but the part's end and the completion still happen
/// (the file stored, the upload gone, the audit line written).
#[tokio::test]
async fn a_last_part_whose_client_leaves_at_once_still_completes() {
    const LENGTH: usize = 8 << 20;
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[]).await;
    let base = served.web_url();
    let ann = token(dir.path(), "ann").await;
    let r = create(&base, &ann, "left.bin", LENGTH as u64).await;
    assert_eq!(r.status, 201, "{r:?}");
    let url = path_of(header(&r, "location").unwrap());
    let body: Vec<u8> = (0..LENGTH).map(|i| (i % 253) as u8).collect();
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH {url} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ann}\r\n\
         Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {LENGTH}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    drop(stream);
    audited(dir.path(), "completed", "left.bin").await;
    let f = stored(&base, &ann, "left.bin").await;
    assert_eq!(f["sha256"], hex(&Sha256::digest(&body)), "{f}");
    assert_eq!(partial_files(dir.path()), 0, "the upload is gone");
}

/// An upload created whole (zero bytes) that cannot be stored, every
/// variant of its name taken: refused, removed, and audited `failed` once.
#[tokio::test]
async fn a_creation_that_cannot_be_stored_is_audited_failed_once() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    for n in 0..10_000 {
        let name = if n == 0 {
            "full.txt".to_owned()
        } else {
            format!("full-{n}.txt")
        };
        std::fs::File::create(files.join(name)).unwrap();
    }
    let served = serve(dir.path(), &[]).await;
    let base = served.web_url();
    let ann = token(dir.path(), "ann").await;
    let r = create(&base, &ann, "full.txt", 0).await;
    assert!(r.status >= 400, "{r:?}");
    assert!(header(&r, "location").is_none(), "{r:?}");
    audited(dir.path(), "failed", "full.txt").await;
    let failed = audit(dir.path())
        .iter()
        .filter(|l| l["event"] == "upload" && l["action"] == "failed")
        .count();
    assert_eq!(failed, 1, "{:?}", audit(dir.path()));
    assert_eq!(partial_files(dir.path()), 0, "the upload is gone");
}
