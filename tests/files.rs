//! The files and files-classic services over real loopback sockets: round
//! trips checked by SHA-256, the tutorial's client and bytes, and the
//! hostile list (names, sizes, short and long bodies, slow headers,
//! symlinks, a full disk, concurrent uploads of one name).

mod common;

use std::time::{Duration, Instant};

use common::message::read_message;
use common::{GUARD, Harness, TEST_KEY, assert_closed_at_timeout, guard, read_until_closed};
use sha2::{Digest, Sha256};
use switchboard::client::{ClassicClient, ClientError, FilesClient};
use switchboard::kind::ServiceKind::{Files, FilesClassic, Login};
use switchboard::stats::EventKind;
use switchboard::wire::classic;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn sha(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes that are not all alike, so a misplaced chunk changes the hash.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4099) as u8).collect()
}

async fn client(h: &Harness) -> FilesClient {
    FilesClient::connect(&h.target(Files), TEST_KEY.as_bytes(), GUARD)
        .await
        .unwrap()
}

/// What is in the files folder, temporaries included, sorted.
fn on_disk(h: &Harness) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(h.supervisor.store().dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn put(
    c: &mut FilesClient,
    name: &str,
    data: &[u8],
) -> Result<switchboard::client::Stored, ClientError> {
    guard("put", c.put(name, data.len() as u64, data, |_| {})).await
}

async fn get(c: &mut FilesClient, name: &str) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    guard("get", c.get(name, &mut out, |_| {}, |_| {})).await?;
    Ok(out)
}

#[tokio::test]
async fn round_trips_of_0_1_and_64_mib_keep_their_sha256() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    for (name, len) in [("empty", 0), ("one", 1), ("big.bin", 64 << 20)] {
        let data = pattern(len);
        let stored = put(&mut c, name, &data).await.unwrap();
        assert_eq!((stored.name.as_str(), stored.size), (name, len as u64));
        assert_eq!(stored.sha256, sha(&data));
        let back = get(&mut c, name).await.unwrap();
        assert!(back == data, "{name} came back different");
        let on_disk = std::fs::read(h.supervisor.store().dir().join(name)).unwrap();
        assert_eq!(sha(&on_disk), sha(&data));
    }
    let (files, truncated) = c.list().await.unwrap();
    assert!(!truncated);
    let listed: Vec<(&str, u64)> = files.iter().map(|f| (f.name.as_str(), f.size)).collect();
    assert_eq!(listed, [("big.bin", 64 << 20), ("empty", 0), ("one", 1)]);
    assert_eq!(files[2].sha256, sha(&pattern(1)));
    // Every stored file is an event and an audit line.
    let stored: Vec<String> = h
        .stats
        .recent_events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::FileStored { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(stored, ["empty", "one", "big.bin"]);
    h.supervisor.audit().flush().await;
    let audit = std::fs::read_to_string(switchboard::audit::path(h.dir.path())).unwrap();
    assert_eq!(audit.matches("\"file_stored\"").count(), 3, "{audit}");
    assert!(audit.contains(&sha(&pattern(64 << 20))));
}

#[tokio::test]
async fn an_existing_name_is_never_replaced_and_concurrent_uploads_both_land() {
    let h = Harness::start().await;
    let (a, b) = (pattern(3 << 20), vec![b'b'; 2 << 20]);
    let (mut c1, mut c2) = (client(&h).await, client(&h).await);
    let (r1, r2) = tokio::join!(put(&mut c1, "same.bin", &a), put(&mut c2, "same.bin", &b));
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    let mut names = [r1.name.clone(), r2.name.clone()];
    names.sort();
    assert_eq!(names, ["same-1.bin", "same.bin"]);
    assert_eq!(get(&mut c1, &r1.name).await.unwrap(), a);
    assert_eq!(get(&mut c1, &r2.name).await.unwrap(), b);
    let third = put(&mut c1, "same.bin", b"3").await.unwrap();
    assert_eq!(third.name, "same-2.bin", "the reply says where it went");
    assert_eq!(on_disk(&h), ["same-1.bin", "same-2.bin", "same.bin"]);
}

#[tokio::test]
async fn hostile_names_are_reduced_or_refused_and_nothing_escapes() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    let reduced = [
        ("../x", "x"),
        ("/etc/passwd", "passwd"),
        ("a/b", "b"),
        ("..\\\\y", "y"),
        ("../../../../tmp/evil", "evil"),
        (".bashrc", "bashrc"),
        ("...dots", "dots"),
        ("  padded  ", "padded"),
        ("C:\\\\Windows\\\\system.ini", "system.ini"),
        ("ok name (1).txt", "ok name (1).txt"),
    ];
    for (raw, want) in reduced {
        let stored = put(&mut c, raw, b"data").await.unwrap();
        assert_eq!(stored.name, want, "{raw:?}");
    }
    let refused = [
        "",
        ".",
        "..",
        "a/",
        "/",
        "a\u{0}../x",
        "tab\tname",
        "line\nbreak",
        "esc\u{1b}[2J",
        "bell\u{7}",
        "del\u{7f}",
        "c1\u{9b}x",
        "   ",
    ];
    for raw in refused {
        // Refused puts with a body close the connection: one per name.
        let mut c = client(&h).await;
        let err = put(&mut c, raw, b"data").await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Rejected { reason, .. } if reason.starts_with("bad file name")),
            "{raw:?}: {err}"
        );
    }
    let long = "n".repeat(201);
    let err = put(&mut client(&h).await, &long, b"x").await.unwrap_err();
    assert!(err.to_string().contains("longer than 200 bytes"), "{err}");
    let mut names = on_disk(&h);
    names.sort();
    let mut want: Vec<&str> = reduced.iter().map(|(_, w)| *w).collect();
    want.sort();
    assert_eq!(names, want);
    assert!(
        !std::path::Path::new("/tmp/evil").exists()
            || std::fs::read("/tmp/evil").unwrap() != b"data"
    );
    // Reads are held to the same rules.
    for bad in ["../key", "/etc/passwd", "..", ".upload-x", "nope"] {
        let err = get(&mut c, bad).await.unwrap_err();
        assert!(err.to_string().contains("no file"), "{bad}: {err}");
    }
}

#[tokio::test]
async fn classic_names_are_held_to_the_same_rules() {
    let h = Harness::start().await;
    let mut refused = 0;
    let cases: [(&[u8], Option<&str>); 8] = [
        (b"../up.txt", Some("new_up.txt")),
        (b"/etc/shadow", Some("new_shadow")),
        (b"a\0../x", Some("new_a")),
        (b"", None),
        (b"..", None),
        (b"\xff\xfe\xfd", None),
        (b"ctl\x01", None),
        (&[b'm'; 128], Some("")),
    ];
    for (name, want) in cases {
        let mut header = [0u8; classic::HEADER_LEN];
        header[..name.len()].copy_from_slice(name);
        header[classic::NAME_LEN..].copy_from_slice(&4i64.to_le_bytes());
        let mut raw = TcpStream::connect(h.addr(FilesClassic)).await.unwrap();
        raw.write_all(&header).await.unwrap();
        raw.write_all(b"body").await.unwrap();
        raw.shutdown().await.unwrap();
        let mut said = String::new();
        guard("closed", raw.read_to_string(&mut said))
            .await
            .unwrap();
        match want {
            Some(_) => assert_eq!(said, "", "{name:?}"),
            None => {
                assert!(said.starts_with("error: bad file name"), "{name:?}: {said}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 4);
    let names = on_disk(&h);
    assert!(names.contains(&"new_up.txt".to_owned()), "{names:?}");
    assert!(names.contains(&"new_shadow".to_owned()));
    assert!(names.contains(&"new_a".to_owned()));
    assert!(
        names.contains(&format!("new_{}", "m".repeat(128))),
        "128 bytes, no NUL: all of it"
    );
    assert_eq!(names.len(), 4);
}

#[tokio::test]
async fn the_tutorials_client_uploads_byte_for_byte() {
    let h = Harness::start().await;
    let work = tempfile::tempdir().unwrap();
    let image = pattern(300_001);
    std::fs::write(work.path().join("12.jpg"), &image).unwrap();
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/seeds/003_upload_client.py"
    ))
    .unwrap()
    .replace(
        "'127.0.0.1', 6666",
        &format!("'127.0.0.1', {}", h.addr(FilesClassic).port()),
    );
    std::fs::write(work.path().join("client.py"), source).unwrap();
    let o = guard(
        "python",
        tokio::process::Command::new("python3")
            .arg("client.py")
            .current_dir(work.path())
            .output(),
    )
    .await
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("12.jpg file send over..."));
    let snap = h
        .wait_for("stored", |s| {
            s.totals(FilesClassic).active == 0 && s.totals(FilesClassic).accepted == 1
        })
        .await;
    assert_eq!(snap.totals(FilesClassic).bytes_in, 136 + 300_001);
    let stored = std::fs::read(h.supervisor.store().dir().join("new_12.jpg")).unwrap();
    assert!(stored == image);
    // The files service serves what files-classic stored.
    assert_eq!(
        get(&mut client(&h).await, "new_12.jpg").await.unwrap(),
        image
    );
    // Our own client speaks the same bytes.
    let sent = ClassicClient::connect(&h.target(FilesClassic), GUARD)
        .await
        .unwrap()
        .put("12.jpg", 5, &b"again"[..], |_| {})
        .await
        .unwrap();
    assert_eq!(sent, sha(b"again"));
    assert_eq!(
        std::fs::read(h.supervisor.store().dir().join("new_12-1.jpg")).unwrap(),
        b"again"
    );
}

#[tokio::test]
async fn classic_sizes_negative_huge_and_over_the_cap_are_refused_before_writing() {
    let h = Harness::start_with(|c| {
        c.service_mut("files-classic")
            .settings_mut::<switchboard::service::files_classic::Settings>()
            .0
            .max_file_bytes = 1000
    })
    .await;
    for (size, want) in [
        (-1, "negative size -1"),
        (i64::MIN, "negative size"),
        (i64::MAX, "the limit is 1000"),
        (1001, "the limit is 1000"),
    ] {
        let mut raw = TcpStream::connect(h.addr(FilesClassic)).await.unwrap();
        raw.write_all(&classic::encode(b"f.bin", size).unwrap())
            .await
            .unwrap();
        let mut said = String::new();
        guard("closed", raw.read_to_string(&mut said))
            .await
            .unwrap();
        assert!(
            said.starts_with("error: ") && said.contains(want),
            "{size}: {said}"
        );
        if size > 0 {
            assert!(
                said.starts_with("error: file too large: "),
                "{size}: {said}"
            );
        }
    }
    let err = ClassicClient::connect(&h.target(FilesClassic), GUARD)
        .await
        .unwrap()
        .put("big", 5000, &vec![0u8; 5000][..], |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the limit is 1000"), "{err}");
    assert!(on_disk(&h).is_empty());
}

#[tokio::test]
async fn files_refuses_a_put_over_the_cap_before_reading_the_body() {
    let h = Harness::start_with(|c| {
        c.service_mut("files")
            .settings_mut::<switchboard::service::files::Settings>()
            .max_file_bytes = 1 << 20
    })
    .await;
    // 64 MiB declared against a 1 MiB cap: refused at once, with its reason.
    let data = vec![0u8; 64 << 20];
    let err = put(&mut client(&h).await, "big", &data).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Rejected { reason, .. }
            if reason == "file too large: it is 67108864 bytes; the limit is 1048576"),
        "{err}"
    );
    assert!(on_disk(&h).is_empty());
}

#[tokio::test]
async fn a_refusal_reaches_a_raw_client_that_sent_header_and_body_in_one_write() {
    let h = Harness::start_with(|c| {
        c.service_mut("files")
            .settings_mut::<switchboard::service::files::Settings>()
            .max_file_bytes = 1000
    })
    .await;
    // Well past what the socket buffers hold, well within what the server
    // drains before it closes.
    let body = 3 << 20;
    let mut request = put_header("big.bin", body);
    request.resize(request.len() + body as usize, b'z');
    for attempt in 0..5 {
        let mut raw = authed(&h).await;
        let (mut rd, mut wr) = raw.split();
        let (_, reply) = tokio::join!(wr.write_all(&request), async {
            let mut out = Vec::new();
            let end = guard("the refusal", rd.read_to_end(&mut out)).await;
            (out, end)
        });
        let (said, end) = reply;
        let text = String::from_utf8_lossy(&said);
        assert!(
            text.contains(r#""ok":false"#)
                && text.contains("file too large: it is 3145728 bytes; the limit is 1000"),
            "attempt {attempt}: {text:?} then {end:?}"
        );
        assert!(
            end.is_ok(),
            "attempt {attempt}: a reset after the refusal: {end:?}"
        );
    }
    assert!(on_disk(&h).is_empty());
}

#[tokio::test]
async fn short_bodies_leave_nothing_and_long_ones_do_not_spill() {
    let h = Harness::start().await;
    // files: half a body, then the client goes away.
    let mut raw = authed(&h).await;
    raw.write_all(&put_header("half.bin", 1000)).await.unwrap();
    raw.write_all(&[1u8; 500]).await.unwrap();
    drop(raw);
    // classic: the same.
    let mut raw = TcpStream::connect(h.addr(FilesClassic)).await.unwrap();
    raw.write_all(&classic::encode(b"half.bin", 1000).unwrap())
        .await
        .unwrap();
    raw.write_all(&[1u8; 500]).await.unwrap();
    drop(raw);
    h.wait_for("both dropped", |s| {
        s.totals(Files).errors == 1 && s.totals(FilesClassic).errors == 1
    })
    .await;
    assert!(on_disk(&h).is_empty(), "{:?}", on_disk(&h));

    // files: a longer body than declared: the file is what was declared,
    // the rest is read as a header and refused.
    let mut raw = authed(&h).await;
    raw.write_all(&put_header("five.txt", 5)).await.unwrap();
    raw.write_all(b"12345EXTRA BYTES").await.unwrap();
    let mut replies = Vec::new();
    guard("closed", raw.read_to_end(&mut replies))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&replies);
    assert!(text.contains(r#""name":"five.txt""#), "{text}");
    assert!(text.contains(r#""ok":false"#), "{text}");
    assert_eq!(
        std::fs::read(h.supervisor.store().dir().join("five.txt")).unwrap(),
        b"12345"
    );
}

/// A put request's frame, built by hand from docs/PROTOCOL.md (not by our codec).
fn put_header(name: &str, size: u64) -> Vec<u8> {
    let json = serde_json::json!({"op": "put", "name": name, "size": size}).to_string();
    let mut frame = (json.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(json.as_bytes());
    frame
}

/// A raw connection that has passed the handshake.
async fn authed(h: &Harness) -> TcpStream {
    let mut raw = TcpStream::connect(h.addr(Files)).await.unwrap();
    let mut challenge = [0u8; 32];
    raw.read_exact(&mut challenge).await.unwrap();
    raw.write_all(&switchboard::auth::respond(TEST_KEY.as_bytes(), &challenge))
        .await
        .unwrap();
    let mut verdict = [0u8; 4 + 11];
    raw.read_exact(&mut verdict).await.unwrap();
    assert_eq!(&verdict[4..], br#"{"ok":true}"#);
    raw
}

#[tokio::test]
async fn headers_sent_one_byte_at_a_time_still_work() {
    let h = Harness::start().await;
    let mut raw = TcpStream::connect(h.addr(FilesClassic)).await.unwrap();
    raw.set_nodelay(true).unwrap();
    for b in classic::encode(b"slow.txt", 3).unwrap() {
        raw.write_all(&[b]).await.unwrap();
    }
    raw.write_all(b"abc").await.unwrap();
    raw.shutdown().await.unwrap();
    let mut said = Vec::new();
    guard("closed", raw.read_to_end(&mut said)).await.unwrap();
    assert!(said.is_empty());
    let mut raw = authed(&h).await;
    raw.set_nodelay(true).unwrap();
    let mut frame = put_header("slow2.txt", 2);
    frame.extend_from_slice(b"hi");
    for b in frame {
        raw.write_all(&[b]).await.unwrap();
    }
    let mut reply = [0u8; 4];
    raw.read_exact(&mut reply).await.unwrap();
    assert_eq!(on_disk(&h), ["new_slow.txt", "slow2.txt"]);
}

#[tokio::test]
async fn hostile_frames_and_keys_on_files() {
    let h = Harness::start().await;
    // A wrong key.
    let err = FilesClient::connect(&h.target(Files), b"wrong", GUARD)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::AuthRejected { .. }), "{err}");
    // 0xFFFFFFFF after the handshake: an error, a close, nothing allocated.
    let mut raw = authed(&h).await;
    raw.write_all(&[0xff; 4]).await.unwrap();
    let mut reply = Vec::new();
    guard("closed", raw.read_to_end(&mut reply)).await.unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("exceeds the 65536-byte limit"));
    // A header that is not JSON.
    let mut raw = authed(&h).await;
    raw.write_all(&[0, 0, 0, 3, b'{', b'{', b'{'])
        .await
        .unwrap();
    let mut reply = Vec::new();
    guard("closed", raw.read_to_end(&mut reply)).await.unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("not valid JSON"));
    // Others are unaffected.
    let mut c = client(&h).await;
    put(&mut c, "fine.txt", b"fine").await.unwrap();
    h.wait_for("the wrong key counted", |s| {
        s.totals(Files).auth_failures == 1
    })
    .await;
}

#[tokio::test]
async fn a_planted_symlink_is_not_followed_for_writes_reads_or_lists() {
    let h = Harness::start().await;
    let outside = h.dir.path().join("outside.txt");
    std::fs::write(&outside, "outside").unwrap();
    let dir = h.supervisor.store().dir().to_owned();
    std::os::unix::fs::symlink(&outside, dir.join("trap.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
    let mut c = client(&h).await;
    let stored = put(&mut c, "trap.txt", b"new data").await.unwrap();
    assert_eq!(stored.name, "trap-1.txt");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "outside");
    assert!(get(&mut c, "trap.txt").await.is_err());
    assert!(get(&mut c, "etc").await.is_err());
    let (files, _) = c.list().await.unwrap();
    assert_eq!(
        files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["trap-1.txt"]
    );
    // The classic service too.
    let sha = ClassicClient::connect(&h.target(FilesClassic), GUARD)
        .await
        .unwrap()
        .put("x", 1, &b"1"[..], |_| {})
        .await;
    assert!(sha.is_ok());
    std::os::unix::fs::symlink(&outside, dir.join("new_y")).unwrap();
    ClassicClient::connect(&h.target(FilesClassic), GUARD)
        .await
        .unwrap()
        .put("y", 1, &b"2"[..], |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "outside");
    assert_eq!(std::fs::read(dir.join("new_y-1")).unwrap(), b"2");
}

/// A tmpfs of `size` bytes mounted on a fresh temporary directory for one
/// test, unmounted on drop (before the directory itself is removed).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    /// Mounts it (root only) and checks that the directory now really is a
    /// tmpfs of that size, not the disk underneath; or says why not.
    fn mount(size: u64) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`mount -t tmpfs` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // Mounted: from here on, dropping `fs` unmounts it.
        let fs = Tmpfs(dir);
        let st = nix::sys::statfs::statfs(fs.0.path()).map_err(|e| format!("statfs: {e}"))?;
        if st.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC {
            return Err(format!(
                "{} is not a tmpfs after mounting one",
                fs.0.path().display()
            ));
        }
        let total = st.blocks() * st.block_size() as u64;
        if total != size {
            return Err(format!("the tmpfs holds {total} bytes, not {size}"));
        }
        Ok(fs)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: detaches even while a file in it is still open.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_upload_cleanly() {
    let fs = match Tmpfs::mount(12 << 20) {
        Ok(fs) => fs,
        Err(why) => {
            common::skip_allowed("DISK_FULL", &format!("no tmpfs to fill: {why}"));
            // What still holds without one: the free-space check.
            let h = Harness::start_with(|c| {
                c.service_mut("files")
                    .settings_mut::<switchboard::service::files::Settings>()
                    .max_file_bytes = 1 << 50
            })
            .await;
            let mut raw = authed(&h).await;
            raw.write_all(&put_header("x", 1125899906842624))
                .await
                .unwrap();
            let mut reply = Vec::new();
            guard("closed", raw.read_to_end(&mut reply)).await.unwrap();
            assert!(String::from_utf8_lossy(&reply).contains("not enough disk space"));
            assert!(on_disk(&h).is_empty());
            return;
        }
    };
    let data_dir = fs.0.path().join("data");
    let h = Harness::start_with(|c| c.data_dir = data_dir.clone()).await;
    let mut c = client(&h).await;
    // Declared bigger than the disk: refused before a byte is written.
    let err = put(&mut c, "huge", &vec![0u8; 16 << 20]).await.unwrap_err();
    assert!(err.to_string().contains("not enough disk space"), "{err}");

    // A body of one buffer: the whole of it is read before the write
    // fails, so the failure comes with the commit, and the connection,
    // still in step, serves the next request.
    let mut raw = authed(&h).await;
    let reply = put_onto_a_filling_disk(&h, &fs, &mut raw, 1 << 20).await;
    assert_no_space(&reply);
    assert!(
        on_disk(&h).is_empty(),
        "nothing left behind: {:?}",
        on_disk(&h)
    );
    std::fs::remove_file(fs.0.path().join("filler")).unwrap();
    raw.write_all(&common::message::frame(
        &serde_json::json!({"op": "list"}),
        &[],
    ))
    .await
    .unwrap();
    let (list, _) = read_message(&mut raw).await;
    assert_eq!(list["ok"], true, "{list}");

    // A body of more buffers than an upload holds: the socket side learns
    // of the failure while the body still comes, answers and closes.
    let mut raw = authed(&h).await;
    let reply = put_onto_a_filling_disk(&h, &fs, &mut raw, 6 << 20).await;
    assert_no_space(&reply);
    let mut rest = Vec::new();
    let closed = guard("closed", raw.read_to_end(&mut rest)).await;
    assert!(closed.is_err() || rest.is_empty(), "{closed:?} {rest:?}");
    assert!(
        on_disk(&h).is_empty(),
        "nothing left behind: {:?}",
        on_disk(&h)
    );

    // Space back, uploads work again.
    std::fs::remove_file(fs.0.path().join("filler")).unwrap();
    put(&mut client(&h).await, "after.txt", b"ok")
        .await
        .unwrap();
    drop(h);
}

fn assert_no_space(reply: &serde_json::Value) {
    let error = reply["error"].as_str().unwrap_or_default();
    assert!(
        reply["ok"] == false && error.contains("disk error") && error.contains("No space left"),
        "{reply}"
    );
}

/// Sends a put of `size` bytes on `raw`, fills the disk of `fs` once the
/// upload's temporary exists (as `filler`), sends the rest of the body,
/// and reads the answer.
async fn put_onto_a_filling_disk(
    h: &Harness,
    fs: &Tmpfs,
    raw: &mut TcpStream,
    size: usize,
) -> serde_json::Value {
    raw.write_all(&put_header("victim.bin", size as u64))
        .await
        .unwrap();
    raw.write_all(&[7u8; 4096]).await.unwrap();
    guard("temporary created", async {
        while !on_disk(h).iter().any(|n| n.starts_with(".upload-")) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let mut f = std::fs::File::create(fs.0.path().join("filler")).unwrap();
    let chunk = vec![0u8; 64 << 10];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    let (mut rd, mut wr) = raw.split();
    let (_, reply) = tokio::join!(
        async {
            // Cut short by the server's close in the early case.
            let _ = wr.write_all(&vec![7u8; size - 4096]).await;
        },
        guard("answered", async {
            let mut len = [0u8; 4];
            rd.read_exact(&mut len).await.expect("an answer");
            let mut json = vec![0u8; u32::from_be_bytes(len) as usize];
            rd.read_exact(&mut json).await.expect("an answer");
            serde_json::from_slice::<serde_json::Value>(&json).expect("JSON")
        })
    );
    reply
}

#[tokio::test]
async fn a_short_classic_upload_is_told_what_arrived() {
    let h = Harness::start().await;
    // A body cut short: the sender half-closes and reads, as ours does.
    let mut raw = TcpStream::connect(h.addr(FilesClassic)).await.unwrap();
    raw.write_all(&classic::encode(b"half.bin", 1000).unwrap())
        .await
        .unwrap();
    raw.write_all(&[1u8; 500]).await.unwrap();
    raw.shutdown().await.unwrap();
    let (said, _) = read_until_closed(&mut raw).await;
    assert_eq!(
        String::from_utf8_lossy(&said),
        "error: the connection closed after 500 of the file's 1000 bytes\n"
    );
    // A header cut short.
    let mut raw = TcpStream::connect(h.addr(FilesClassic)).await.unwrap();
    raw.write_all(&[b'h'; 100]).await.unwrap();
    raw.shutdown().await.unwrap();
    let (said, _) = read_until_closed(&mut raw).await;
    assert_eq!(
        String::from_utf8_lossy(&said),
        "error: the connection closed inside the 136-byte header, after 100 bytes\n"
    );
    assert!(on_disk(&h).is_empty(), "{:?}", on_disk(&h));
}

#[tokio::test]
async fn several_classic_uploads_on_one_connection_all_land() {
    let h = Harness::start().await;
    let mut events = h.stats.subscribe();
    let big = pattern(700_001);
    let uploads: [(&[u8], &[u8]); 4] = [
        (b"a.txt", b"first"),
        (b"big.bin", &big),
        (b"empty", b""),
        (b"a.txt", b"second"),
    ];
    // All of them in one write, as a client that never waits would send.
    let mut stream = Vec::new();
    for (name, body) in uploads {
        stream.extend(classic::encode(name, body.len() as i64).unwrap());
        stream.extend_from_slice(body);
    }
    let mut raw = TcpStream::connect(h.addr(FilesClassic)).await.unwrap();
    raw.write_all(&stream).await.unwrap();
    raw.shutdown().await.unwrap();
    let (said, _) = read_until_closed(&mut raw).await;
    assert!(said.is_empty(), "success is silent: {said:?}");
    let stored = guard("four stored", async {
        let mut names = Vec::new();
        while names.len() < 4 {
            if let EventKind::FileStored { name, .. } = events.recv().await.unwrap().kind {
                names.push(name);
            }
        }
        names
    })
    .await;
    assert_eq!(
        stored,
        ["new_a.txt", "new_big.bin", "new_empty", "new_a-1.txt"]
    );
    let dir = h.supervisor.store().dir();
    assert_eq!(std::fs::read(dir.join("new_a.txt")).unwrap(), b"first");
    assert!(std::fs::read(dir.join("new_big.bin")).unwrap() == big);
    assert_eq!(std::fs::read(dir.join("new_empty")).unwrap(), b"");
    assert_eq!(std::fs::read(dir.join("new_a-1.txt")).unwrap(), b"second");
    let snap = h
        .wait_for("the connection closed", |s| {
            s.totals(FilesClassic).active == 0
        })
        .await;
    let t = snap.totals(FilesClassic);
    assert_eq!((t.accepted, t.errors), (1, 0));
    assert_eq!(t.bytes_in, stream.len() as u64);
}

#[tokio::test]
async fn a_listing_over_the_header_cap_is_cut_short_and_says_so() {
    let h = Harness::start().await;
    // 200-byte names: each entry is about 340 bytes of JSON, so 300 files
    // are half again what fits in one 64 KiB header.
    let count = 300;
    let dir = h.supervisor.store().dir().to_owned();
    for i in 0..count {
        std::fs::write(dir.join(format!("{i:03}{}", "n".repeat(197))), b"").unwrap();
    }
    let mut raw = authed(&h).await;
    let list = br#"{"op":"list"}"#;
    raw.write_all(&(list.len() as u32).to_be_bytes())
        .await
        .unwrap();
    raw.write_all(list).await.unwrap();
    let mut len = [0u8; 4];
    guard("the list", raw.read_exact(&mut len)).await.unwrap();
    let len = u32::from_be_bytes(len) as usize;
    assert!(len <= 65_536, "the reply is one header: {len} bytes");
    let mut json = vec![0u8; len];
    guard("the list", raw.read_exact(&mut json)).await.unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["truncated"], true, "{}", &reply["truncated"]);
    assert_eq!(reply["total"], count);
    let shown = reply["files"].as_array().unwrap().len();
    assert!(shown > 100 && shown < count, "{shown} of {count} shown");
    // Our client hears it too.
    let (files, truncated) = client(&h).await.list().await.unwrap();
    assert!(truncated);
    assert_eq!(files.len(), shown);
    // Under the cap, no such mark.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("one"), b"1").unwrap();
    let (files, truncated) = client(&h).await.list().await.unwrap();
    assert!(!truncated);
    assert_eq!(files.len(), 1);
}

#[tokio::test]
async fn silent_peers_are_closed_at_their_timeouts() {
    let idle = Duration::from_millis(1000);
    let h = Harness::start_with(|c| {
        c.service_mut(Files).tcp_mut().idle_timeout = idle;
        c.service_mut(FilesClassic).tcp_mut().idle_timeout = idle;
    })
    .await;
    let (authed_silent, mid_put, classic_silent, classic_mid, unauthed) = tokio::join!(
        // files, signed in, then nothing.
        async {
            let mut raw = authed(&h).await;
            let since = Instant::now();
            let (said, closed) = read_until_closed(&mut raw).await;
            assert!(said.is_empty(), "{said:?}");
            (since, closed)
        },
        // files, half a body, then nothing.
        async {
            let mut raw = authed(&h).await;
            raw.write_all(&put_header("stalled.bin", 1000))
                .await
                .unwrap();
            let since = Instant::now();
            raw.write_all(&[0u8; 10]).await.unwrap();
            let (_, closed) = read_until_closed(&mut raw).await;
            (since, closed)
        },
        // files-classic: connects and never writes.
        async {
            let since = Instant::now();
            let mut raw = TcpStream::connect(h.addr(FilesClassic)).await.unwrap();
            let (said, closed) = read_until_closed(&mut raw).await;
            assert!(said.is_empty(), "{said:?}");
            (since, closed)
        },
        // files-classic: a header and part of the body, then nothing.
        async {
            let mut raw = TcpStream::connect(h.addr(FilesClassic)).await.unwrap();
            let since = Instant::now();
            let mut half = classic::encode(b"stalled.bin", 1000).unwrap().to_vec();
            half.extend_from_slice(&[0u8; 10]);
            raw.write_all(&half).await.unwrap();
            let (_, closed) = read_until_closed(&mut raw).await;
            (since, closed)
        },
        // files, never answering the challenge: the handshake's own limit.
        async {
            let since = Instant::now();
            let mut raw = TcpStream::connect(h.addr(Files)).await.unwrap();
            let (said, closed) = read_until_closed(&mut raw).await;
            assert_eq!(said.len(), 32, "the challenge, then the close");
            (since, closed)
        },
    );
    assert_closed_at_timeout("files, signed in", authed_silent.0, authed_silent.1, idle);
    assert_closed_at_timeout("files, mid-upload", mid_put.0, mid_put.1, idle);
    assert_closed_at_timeout("files-classic", classic_silent.0, classic_silent.1, idle);
    assert_closed_at_timeout(
        "files-classic, mid-upload",
        classic_mid.0,
        classic_mid.1,
        idle,
    );
    assert_closed_at_timeout(
        "files, before the handshake",
        unauthed.0,
        unauthed.1,
        switchboard::service::HANDSHAKE_TIMEOUT,
    );
    assert!(on_disk(&h).is_empty(), "{:?}", on_disk(&h));
}

#[tokio::test]
async fn names_from_peers_reach_the_log_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = common::Served::start(
        dir.path(),
        &[Files, FilesClassic, Login],
        &[("RUST_LOG", "switchboard=debug"), ("NO_COLOR", "1")],
    )
    .await;
    let key = switchboard::keyfile::load(dir.path()).unwrap();
    let forged = "x\n2099-01-01T00:00:00Z  INFO switchboard: forged\u{1b}[2J\u{0}\u{202e}gpj.exe";
    // No control characters, but a right-to-left override: refused too
    // (it would show as `reportexe.pdf`), and the refusal is logged escaped.
    let sneaky = "report\u{202e}fdp.exe";
    for name in [forged, sneaky] {
        let mut c = FilesClient::connect(&served.addr(Files), key.expose(), GUARD)
            .await
            .unwrap();
        assert!(put(&mut c, name, b"data").await.is_err(), "{name:?} stored");
    }
    let mut c = FilesClient::connect(&served.addr(Files), key.expose(), GUARD)
        .await
        .unwrap();
    put(&mut c, "plain.txt", b"data").await.unwrap();
    for name in [forged, sneaky] {
        let mut raw = TcpStream::connect(served.addr(FilesClassic)).await.unwrap();
        let mut header = [0u8; classic::HEADER_LEN];
        let bytes = &name.as_bytes()[..name.len().min(classic::NAME_LEN)];
        header[..bytes.len()].copy_from_slice(bytes);
        header[classic::NAME_LEN..].copy_from_slice(&4i64.to_le_bytes());
        raw.write_all(&header).await.unwrap();
        raw.write_all(b"data").await.unwrap();
        raw.shutdown().await.unwrap();
        read_until_closed(&mut raw).await;
    }
    let mut raw = TcpStream::connect(served.addr(Login)).await.unwrap();
    raw.write_all(format!("{}\r\nno password\n", forged.replace('\n', " ")).as_bytes())
        .await
        .unwrap();
    raw.write_all(format!("{sneaky}\nno password\n").as_bytes())
        .await
        .unwrap();
    drop(raw);
    // The classic refusal is logged as its connection ends, after the close
    // the test saw (a stop aborts a task still lingering): awaited, not raced.
    served.wait_for_log("invisible format characters").await;
    let (_, log) = served.terminate().await;
    assert!(log.contains("stored"), "{log}");
    for raw_char in ['\u{1b}', '\u{0}', '\u{202e}'] {
        assert!(!log.contains(raw_char), "{raw_char:?} in the log:\n{log}");
    }
    assert!(!log.contains("\n2099"), "a forged line:\n{log}");
    // Such a name is refused before it is ever written, saying why.
    assert!(
        log.contains("invisible format characters"),
        "the refusal logged:\n{log}"
    );
}

#[tokio::test]
async fn a_generic_reader_reads_every_reply_in_step() {
    let h = Harness::start().await;
    let mut raw = authed(&h).await;
    let mut request = put_header("a.txt", 3);
    request.extend_from_slice(b"abc");
    raw.write_all(&request).await.unwrap();
    let (stored, body) = read_message(&mut raw).await;
    assert_eq!(stored["ok"], true, "{stored}");
    assert_eq!(stored["stored_size"], 3, "{stored}");
    assert!(stored.get("size").is_none(), "no body follows: {stored}");
    assert!(body.is_empty());
    for request in [r#"{"op":"get","name":"a.txt"}"#, r#"{"op":"list"}"#] {
        raw.write_all(&(request.len() as u32).to_be_bytes())
            .await
            .unwrap();
        raw.write_all(request.as_bytes()).await.unwrap();
    }
    let (got, body) = read_message(&mut raw).await;
    assert_eq!((got["ok"].as_bool(), &body[..]), (Some(true), &b"abc"[..]));
    let (list, _) = read_message(&mut raw).await;
    assert_eq!(list["files"][0]["name"], "a.txt", "{list}");
    // Our client reads the stored size under its own name.
    let stored = put(&mut client(&h).await, "b.txt", b"four").await.unwrap();
    assert_eq!(stored.size, 4);
}

#[tokio::test]
async fn a_get_to_a_peer_that_never_reads_is_dropped_after_the_idle_timeout() {
    let idle = Duration::from_millis(1000);
    let h = Harness::start_with(|c| c.service_mut(Files).tcp_mut().idle_timeout = idle).await;
    let mut c = client(&h).await;
    // Far more than the socket buffers hold.
    put(&mut c, "big.bin", &pattern(64 << 20)).await.unwrap();
    drop(c);
    h.wait_for("the uploader gone", |s| {
        s.connections_of(Files).count() == 0
    })
    .await;
    let mut raw = authed(&h).await;
    let json = serde_json::json!({"op": "get", "name": "big.bin"}).to_string();
    let mut frame = (json.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(json.as_bytes());
    raw.write_all(&frame).await.unwrap();
    let since = Instant::now();
    // Never read: the server's writes stall, and it must give up.
    h.wait_for("the stalled get closed", |s| {
        s.connections_of(Files).count() == 0
    })
    .await;
    assert_closed_at_timeout("a get nobody reads", since, Instant::now(), idle);
    assert_eq!(h.stats.totals(Files).errors, 1);
}

/// Peers sending their uploads a byte at a time hold none of the server's
/// threads: bytes go on to the hash and the file 1 MiB at a time, not
/// per read, so a trickle starts no blocking job. (Handed on per read,
/// each of these uploads kept a job, and so a thread, alive.)
#[tokio::test]
async fn uploads_trickled_a_byte_at_a_time_hold_no_server_threads() {
    const UPLOADS: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(dir.path(), &[FilesClassic], &[]).await;
    let pid = served.child.id().expect("the server runs");
    let addr = served.addr("files-classic");
    let threads = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .count()
    };
    let mut peers = Vec::new();
    for i in 0..UPLOADS {
        let mut peer = TcpStream::connect(&addr).await.unwrap();
        peer.set_nodelay(true).unwrap();
        let name = format!("trickle-{i}.bin");
        let header = classic::encode(name.as_bytes(), 1 << 20).unwrap();
        peer.write_all(&header).await.unwrap();
        peers.push(peer);
    }
    let before = threads();
    let mut most = before;
    let mut bytes = 0;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        for peer in &mut peers {
            peer.write_all(b"x").await.unwrap();
        }
        bytes += 1;
        most = most.max(threads());
    }
    assert!(bytes > 100, "only {bytes} bytes sent to each upload");
    assert!(
        most < before + UPLOADS / 4,
        "{UPLOADS} trickling uploads ({bytes} bytes each): {most} threads, {before} before"
    );
}
