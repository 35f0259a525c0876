//! TLS over real sockets: the dashboard over HTTPS (self-signed and
//! files), what a plaintext or garbage client gets, the safe default for a
//! non-loopback dashboard, TLS on the TCP services with our own client
//! (`--pin`, `--ca`) and with Python's `ssl` module as an independent one.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Served, guard};
use switchboard::kind::ServiceKind;
use switchboard::tls::{ClientTls, Trust};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "tls-test-password";

/// `HOST:PORT` of a base URL such as `https://127.0.0.1:4321`.
fn host_port(url: &str) -> String {
    url.split("://").nth(1).expect("a scheme").to_owned()
}

/// The banner's SHA-256 of the dashboard's certificate.
fn banner_fingerprint(served: &Served) -> String {
    let line = served
        .banner
        .iter()
        .find(|l| l.starts_with("TLS (web"))
        .unwrap_or_else(|| panic!("no TLS line in {:?}", served.banner));
    line.rsplit(' ').next().unwrap().to_owned()
}

/// What one HTTPS request got back.
struct Reply {
    head: String,
    body: String,
    /// SHA-256 of the certificate the server presented.
    fingerprint: String,
}

/// Sends one raw HTTP/1.1 request over TLS to `addr`, dialled as `name`.
async fn https(addr: &str, name: &str, trust: &Trust, request: &str) -> anyhow::Result<Reply> {
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = ClientTls::new(trust)?.connect(name, tcp).await?;
    let cert = tls.get_ref().1.peer_certificates().expect("a certificate")[0].clone();
    tls.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    guard("the HTTPS reply", tls.read_to_end(&mut raw)).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok(Reply {
        head: head.to_owned(),
        body: body.to_owned(),
        fingerprint: switchboard::tls::fingerprint(&cert),
    })
}

fn get(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

async fn serve_https(dir: &Path, services: &[ServiceKind], extra: &[(&str, &str)]) -> Served {
    let mut env = vec![
        ("SWITCHBOARD_WEB_TLS", "self-signed"),
        ("SWITCHBOARD_ADMIN_PASSWORD", PASSWORD),
    ];
    env.extend_from_slice(extra);
    Served::start(dir, services, &env).await
}

#[tokio::test]
async fn self_signed_https_serves_the_sign_in_page_to_a_client_trusting_the_generated_cert()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let served = serve_https(dir.path(), &[], &[]).await;
    let url = served.web_url();
    assert!(url.starts_with("https://"), "{url}");
    let addr = host_port(&url);
    let cert_path = dir.path().join("tls-cert.pem");
    let key_path = dir.path().join("tls-key.pem");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is owner-only");
    }
    let printed = banner_fingerprint(&served);

    // Trusting the generated certificate as a CA: name and dates checked.
    for name in ["localhost", "127.0.0.1"] {
        let r = https(
            &addr,
            name,
            &Trust::Ca(cert_path.clone()),
            &get("/login", &addr),
        )
        .await?;
        assert!(r.head.starts_with("HTTP/1.1 200"), "{}", r.head);
        assert!(r.body.contains(r#"data-page="login""#), "{}", r.body);
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains("strict-transport-security: max-age="),
            "{}",
            r.head
        );
        assert_eq!(
            r.fingerprint, printed,
            "the banner prints the served certificate"
        );
    }

    // Pinned by the banner's fingerprint.
    let pin = switchboard::tls::parse_pin(&printed)?;
    let r = https(
        &addr,
        "127.0.0.1",
        &Trust::Pin(pin),
        &get("/healthz", &addr),
    )
    .await?;
    assert!(r.head.starts_with("HTTP/1.1 200"), "{}", r.head);

    // Signing in over HTTPS sets a Secure cookie.
    let body = format!(r#"{{"username":"admin","password":"{PASSWORD}"}}"#);
    let sign_in = format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://{addr}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let r = https(&addr, "127.0.0.1", &Trust::Pin(pin), &sign_in).await?;
    assert!(r.head.starts_with("HTTP/1.1 200"), "{}\n{}", r.head, r.body);
    let cookie = r
        .head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(cookie.contains("Secure"), "{cookie}");

    // `switchboard health` (the Docker HEALTHCHECK) speaks HTTPS to it,
    // trusting the certificate in the data folder.
    let data = dir.path().to_str().unwrap();
    let (ok, out, err) = client(&[
        "health",
        &addr,
        "--data-dir",
        data,
        "--set",
        "web.tls=self-signed",
    ])
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, format!("ok: https://{addr}/healthz\n"));
    served.terminate().await;
    Ok(())
}

#[tokio::test]
async fn plaintext_http_and_a_garbage_client_hello_to_the_https_port_are_closed()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let served = serve_https(dir.path(), &[], &[]).await;
    let addr = host_port(&served.web_url());

    let mut plain = TcpStream::connect(&addr).await?;
    plain.write_all(get("/login", &addr).as_bytes()).await?;
    let mut raw = Vec::new();
    let _ = guard(
        "the close of a plaintext request",
        plain.read_to_end(&mut raw),
    )
    .await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("HTTPS"), "{text}");

    // A handshake record whose content is nonsense.
    let mut garbage = TcpStream::connect(&addr).await?;
    garbage
        .write_all(&[
            0x16, 0x03, 0x01, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3,
        ])
        .await?;
    let mut rest = Vec::new();
    // An alert, then the close (or a reset): either way it ends.
    let _ = guard(
        "the close of a garbage ClientHello",
        garbage.read_to_end(&mut rest),
    )
    .await;
    assert!(rest.len() < 64, "at most an alert: {rest:?}");

    // A handshake that never finishes is no problem for anyone else.
    let _stalled = {
        let mut s = TcpStream::connect(&addr).await?;
        s.write_all(&[0x16, 0x03, 0x01]).await?;
        s
    };
    let cert = dir.path().join("tls-cert.pem");
    let r = https(
        &addr,
        "localhost",
        &Trust::Ca(cert),
        &get("/healthz", &addr),
    )
    .await?;
    assert!(
        r.head.starts_with("HTTP/1.1 200"),
        "the server still serves: {}",
        r.head
    );
    let (status, stderr) = served.terminate().await;
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}

/// Writes a self-signed certificate for `names` (valid now unless
/// `expired`) and its key; returns (cert, key).
fn make_cert(dir: &Path, stem: &str, names: &[&str], expired: bool) -> (PathBuf, PathBuf) {
    make_cert_marked(dir, stem, names, expired, false, vec![])
}

/// [`make_cert`], marked as a CA when `ca` (as `openssl req -x509` marks
/// the certificates it makes), with `purposes` as its extended key usage.
/// Its common name is `stem`, so two certificates' names differ.
fn make_cert_marked(
    dir: &Path,
    stem: &str,
    names: &[&str],
    expired: bool,
    ca: bool,
    purposes: Vec<rcgen::ExtendedKeyUsagePurpose>,
) -> (PathBuf, PathBuf) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, stem);
    params.extended_key_usages = purposes;
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    if expired {
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(30);
        params.not_after = now - time::Duration::days(1);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}-key.pem")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

#[tokio::test]
async fn files_certificates_are_served_and_reloaded_without_dropping_connections()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (first, key) = make_cert(dir.path(), "first", &["localhost"], false);
    let cert_env = first.to_str().unwrap().to_owned();
    let key_env = key.to_str().unwrap().to_owned();
    let data = dir.path().join("data");
    let served = Served::start(
        &data,
        &[],
        &[
            ("SWITCHBOARD_WEB_TLS", "files"),
            ("SWITCHBOARD_WEB_TLS_CERT", &cert_env),
            ("SWITCHBOARD_WEB_TLS_KEY", &key_env),
        ],
    )
    .await;
    let addr = host_port(&served.web_url());
    assert!(!data.join("tls-cert.pem").exists(), "nothing generated");
    let trust_first = Trust::Ca(first.clone());
    let r = https(&addr, "localhost", &trust_first, &get("/healthz", &addr)).await?;
    let old = r.fingerprint;
    assert_eq!(old, banner_fingerprint(&served));

    // A kept-alive connection opened on the old certificate.
    let tcp = TcpStream::connect(&addr).await?;
    let mut kept = ClientTls::new(&trust_first)?
        .connect("localhost", tcp)
        .await?;
    let keep_alive = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    kept.write_all(keep_alive.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let n = guard("first reply", kept.read(&mut buf)).await?;
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    // New files in place (written aside, renamed over: what tools do).
    let (second, second_key) = make_cert(dir.path(), "second", &["localhost"], false);
    std::fs::rename(&second_key, &key)?;
    std::fs::rename(&second, &first)?;
    let new_trust = Trust::Ca(first.clone());
    let new = guard("the new certificate in force", async {
        loop {
            if let Ok(r) = https(&addr, "localhost", &new_trust, &get("/healthz", &addr)).await
                && r.fingerprint != old
            {
                return r.fingerprint;
            }
            // Files are checked every few seconds: poll, gently.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_ne!(new, old);

    // The old connection was not dropped.
    kept.write_all(keep_alive.as_bytes()).await?;
    let n = guard("second reply", kept.read(&mut buf)).await?;
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    served.terminate().await;
    Ok(())
}

/// A certificate past its date is still served (the server starts), and
/// the log says why the clients that check dates refuse it.
#[tokio::test]
async fn an_expired_certificate_is_served_with_a_warning_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path(), "lapsed", &["localhost"], true);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let served = Served::start(
        &dir.path().join("data"),
        &[],
        &[
            ("SWITCHBOARD_WEB_TLS", "files"),
            ("SWITCHBOARD_WEB_TLS_CERT", cert),
            ("SWITCHBOARD_WEB_TLS_KEY", key),
        ],
    )
    .await;
    let (status, stderr) = served.terminate().await;
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("TLS certificate {cert} expired at ")),
        "{stderr}"
    );
}

/// Runs `switchboard serve` with `args` and returns its exit and stderr,
/// expecting it to stop by itself.
async fn serve_exits(dir: &Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = guard(
        "serve to exit",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--data-dir"])
            .arg(dir)
            .args(common::only_services(&[]))
            .args(args)
            .env_remove("SWITCHBOARD_WEB_TLS")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the binary runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_non_loopback_dashboard_without_tls_refuses_to_start_and_says_how() {
    let dir = tempfile::tempdir().unwrap();
    for extra in [
        vec![],
        // Off alone is not enough, nor is the proxy flag alone.
        vec!["--set", "web.tls=off"],
        vec!["--set", "web.behind_proxy=true"],
    ] {
        let mut args = vec!["--set", "web.listen=0.0.0.0:0"];
        args.extend(extra.iter().copied());
        let (status, stderr) = serve_exits(dir.path(), &args).await;
        assert!(!status.success(), "{args:?} started");
        for needle in [
            "not a loopback address",
            "web.tls = \"self-signed\"",
            "web.behind_proxy = true",
        ] {
            assert!(
                stderr.contains(needle),
                "{args:?}: {needle} missing from {stderr}"
            );
        }
    }
}

#[test]
fn the_safe_default_yields_to_off_with_behind_proxy_and_to_tls() {
    use std::collections::BTreeMap;
    use switchboard::config::{Config, WebTls};
    let flags = |extra: &[&str]| -> Vec<String> {
        std::iter::once("web.listen=0.0.0.0:8080")
            .chain(extra.iter().copied())
            .map(String::from)
            .collect()
    };
    let env = BTreeMap::new();
    let c = Config::resolve(
        None,
        &env,
        &flags(&["web.tls=off", "web.behind_proxy=true"]),
    )
    .unwrap();
    assert_eq!(c.web.tls, WebTls::Off);
    assert!(c.web.behind_proxy);
    let c = Config::resolve(None, &env, &flags(&["web.tls=self-signed"])).unwrap();
    assert_eq!(c.web.tls, WebTls::SelfSigned);
    let env = BTreeMap::from([("SWITCHBOARD_WEB_TLS".to_owned(), "self-signed".to_owned())]);
    let c = Config::resolve(None, &env, &flags(&[])).unwrap();
    assert_eq!(c.web.tls, WebTls::SelfSigned);
}

/// Runs the `switchboard` client with `args`; returns (success, stdout, stderr).
async fn client(args: &[&str]) -> (bool, String, String) {
    let out = guard(
        "the client",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn echo_over_tls_with_pin_and_ca_and_a_wrong_pin_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_https(
        dir.path(),
        &[ServiceKind::Echo],
        &[("SWITCHBOARD_ECHO_TLS", "true")],
    )
    .await;
    let addr = served.addr(ServiceKind::Echo);
    let pin = banner_fingerprint(&served);
    assert!(
        served
            .banner
            .iter()
            .any(|l| l.starts_with("TLS (web, echo): ")),
        "one certificate, both users named: {:?}",
        served.banner
    );
    let (ok, out, err) = client(&["echo", &addr, "hello tls", "--tls", "--pin", &pin]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim_end(), "HELLO TLS");

    let ca = dir.path().join("tls-cert.pem");
    let ca = ca.to_str().unwrap();
    let (ok, out, err) = client(&["echo", &addr, "by ca", "--tls", "--ca", ca]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim_end(), "BY CA");

    let wrong = "00".repeat(32);
    let (ok, out, err) = client(&["echo", &addr, "x", "--tls", "--pin", &wrong]).await;
    assert!(!ok, "{out}");
    assert!(err.contains("TLS with"), "{err}");
    assert!(err.contains(&format!("not the pinned {wrong}")), "{err}");
    assert!(err.contains(&pin), "names the certificate it got: {err}");

    let (ok, _, err) = client(&["echo", &addr, "x", "--tls"]).await;
    assert!(
        !ok && err.contains("--ca FILE") && err.contains("--pin"),
        "{err}"
    );
    // Plain to a TLS port: closed at once (at most a TLS alert comes
    // back), never echoed.
    let (_, out, err) = client(&["echo", &addr, "plain", "--timeout", "10s"]).await;
    assert!(!out.contains("PLAIN"), "{out} {err}");
    served.terminate().await;
}

#[tokio::test]
async fn an_expired_or_wrong_host_certificate_is_refused_with_the_reason() {
    use switchboard::config::{CertFiles, ServiceTls};
    let certs = tempfile::tempdir().unwrap();
    let (stranger, _) = make_cert(certs.path(), "stranger", &["127.0.0.1"], false);
    for (names, expired, trusted, reason) in [
        (&["localhost", "127.0.0.1"][..], true, None, "expired"),
        (&["other.example"][..], false, None, "not valid for name"),
        (
            &["127.0.0.1"][..],
            false,
            Some(&stranger),
            "not signed by a ca in the ca file",
        ),
    ] {
        let (cert, key) = make_cert(certs.path(), "svc", names, expired);
        let trust = trusted.unwrap_or(&cert).clone();
        let h = common::Harness::start_with(|c| {
            c.service_mut(ServiceKind::Echo).tls = ServiceTls::Own(CertFiles {
                cert: cert.clone(),
                key,
            });
        })
        .await;
        let tls = ClientTls::new(&Trust::Ca(trust)).unwrap();
        let err = switchboard::client::EchoClient::connect_tls(
            &h.target(ServiceKind::Echo),
            Duration::from_secs(10),
            Some(&tls),
        )
        .await
        .err()
        .expect("refused");
        let text = err.to_string();
        assert!(text.starts_with("TLS with 127.0.0.1:"), "{text}");
        assert!(text.to_lowercase().contains(reason), "{text}");
    }
}

/// `openssl req -x509` marks the self-signed certificate it makes as a CA,
/// which webpki alone refuses at the end of a chain. Given with `--ca`,
/// exactly that certificate is trusted (the README: a self-signed
/// certificate is its own CA); its dates and names still count, and
/// another certificate marked the same way for the same names is no trust
/// in this one.
#[tokio::test]
async fn a_self_signed_certificate_marked_as_a_ca_is_its_own_ca() {
    use switchboard::config::{CertFiles, ServiceTls};
    let certs = tempfile::tempdir().unwrap();
    let both = &["localhost", "127.0.0.1"][..];
    let (other, _) = make_cert_marked(certs.path(), "other", both, false, true, vec![]);
    let client_only = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    for (names, expired, purposes, refused) in [
        (both, false, vec![], None),
        (both, true, vec![], Some("expired")),
        (
            &["other.example"][..],
            false,
            vec![],
            Some("not valid for name"),
        ),
        // For clients only: OpenSSL and Python refuse it too.
        (both, false, client_only.clone(), Some("invalidpurpose")),
    ] {
        let (cert, key) = make_cert_marked(certs.path(), "svc", names, expired, true, purposes);
        let h = common::Harness::start_with(|c| {
            c.service_mut(ServiceKind::Echo).tls = ServiceTls::Own(CertFiles {
                cert: cert.clone(),
                key,
            });
        })
        .await;
        let connect = |trust: PathBuf| {
            let target = h.target(ServiceKind::Echo);
            async move {
                let tls = ClientTls::new(&Trust::Ca(trust)).unwrap();
                switchboard::client::EchoClient::connect_tls(
                    &target,
                    Duration::from_secs(10),
                    Some(&tls),
                )
                .await
            }
        };
        match refused {
            None => {
                let mut c = connect(cert).await.expect("trusted");
                assert_eq!(c.round_trip(b"own ca").await.unwrap(), b"OWN CA");
            }
            Some(reason) => {
                let text = connect(cert).await.err().expect("refused").to_string();
                assert!(text.to_lowercase().contains(reason), "{text}");
            }
        }
        let text = connect(other.clone())
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(text.starts_with("TLS with 127.0.0.1:"), "{text}");
        if !expired {
            assert!(
                text.contains("trusted only when it is self-signed"),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn a_plaintext_client_on_a_tls_service_is_closed_and_the_service_goes_on() {
    use switchboard::config::ServiceTls;
    let h = common::Harness::start_with(|c| {
        c.service_mut(ServiceKind::Echo).tls = ServiceTls::Shared;
    })
    .await;
    let addr = h.addr(ServiceKind::Echo);
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"hello\n").await.unwrap();
    let mut got = Vec::new();
    let _ = guard("the close", plain.read_to_end(&mut got)).await;
    assert!(!got.windows(5).any(|w| w == b"HELLO"), "{got:?}");
    // A handshake that never finishes holds only its own slot.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let cert = h.dir.path().join("tls-cert.pem");
    let tls = ClientTls::new(&Trust::Ca(cert)).unwrap();
    let mut c = switchboard::client::EchoClient::connect_tls(
        &h.target(ServiceKind::Echo),
        Duration::from_secs(10),
        Some(&tls),
    )
    .await
    .unwrap();
    assert_eq!(c.round_trip(b"still here").await.unwrap(), b"STILL HERE");
    h.wait_for("the plaintext connection counted as an error", |s| {
        s.services
            .iter()
            .any(|svc| svc.service == ServiceKind::Echo && svc.errors >= 1)
    })
    .await;
}

/// tests/python/tls_client.py with `args`, trusting `cafile`.
async fn python(cafile: &Path, args: &[&str]) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/tls_client.py");
    guard(
        "python client",
        tokio::process::Command::new("python3")
            .arg(script)
            .arg(cafile)
            .args(args)
            .output(),
    )
    .await
    .expect("python3 runs")
}

#[tokio::test]
async fn python_ssl_runs_a_command_and_puts_a_file_over_tls() {
    use switchboard::config::ServiceTls;
    let h = common::Harness::start_with(|c| {
        c.service_mut(ServiceKind::Exec).tls = ServiceTls::Shared;
        c.service_mut(ServiceKind::Files).tls = ServiceTls::Shared;
    })
    .await;
    let cafile = h.dir.path().join("tls-cert.pem");
    let exec_port = h.addr(ServiceKind::Exec).port().to_string();
    let o = python(
        &cafile,
        &[
            "127.0.0.1",
            &exec_port,
            common::TEST_KEY,
            "exec",
            "echo",
            "over",
            "tls",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "over tls\n");
    assert!(stderr.contains("tls: TLSv1.3"), "{stderr}");

    let files_port = h.addr(ServiceKind::Files).port().to_string();
    let o = python(
        &cafile,
        &[
            "localhost",
            &files_port,
            common::TEST_KEY,
            "put",
            "py.txt",
            "sent by python",
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let reply: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(reply["name"], "py.txt", "{reply}");
    let stored = switchboard::store::dir(h.dir.path()).join("py.txt");
    assert_eq!(std::fs::read_to_string(stored).unwrap(), "sent by python");

    // A CA that did not sign it: Python refuses, the service is unharmed.
    let other = tempfile::tempdir().unwrap();
    let (wrong_ca, _) = make_cert(other.path(), "other", &["127.0.0.1"], false);
    let o = python(
        &wrong_ca,
        &["127.0.0.1", &exec_port, common::TEST_KEY, "exec", "echo"],
    )
    .await;
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CERTIFICATE_VERIFY_FAILED"));
}

#[tokio::test]
async fn bench_echo_exec_and_put_speak_tls_and_udp_refuses_it() {
    use switchboard::config::ServiceTls;
    let h = common::Harness::start_with(|c| {
        for kind in [ServiceKind::Echo, ServiceKind::Exec, ServiceKind::Files] {
            c.service_mut(kind).tls = ServiceTls::Shared;
        }
    })
    .await;
    let ca = h.dir.path().join("tls-cert.pem");
    let ca = ca.to_str().unwrap();
    let pin = switchboard::tls::ServerTls::load(&switchboard::tls::self_signed_files(h.dir.path()))
        .unwrap()
        .fingerprint();
    let key = h.dir.path().join("bench-key");
    std::fs::write(&key, common::TEST_KEY).unwrap();
    let key = key.to_str().unwrap();
    let (echo, exec, files) = (
        h.target(ServiceKind::Echo),
        h.target(ServiceKind::Exec),
        h.target(ServiceKind::Files),
    );
    for (args, requests) in [
        (
            vec!["echo", &echo, "-c", "2", "-n", "200", "--tls", "--ca", ca],
            200,
        ),
        (
            vec![
                "exec",
                &exec,
                "--key-file",
                key,
                "-c",
                "2",
                "-n",
                "10",
                "--tls",
                "--pin",
                &pin,
            ],
            10,
        ),
        (
            vec![
                "put",
                &files,
                "--key-file",
                key,
                "-s",
                "256k",
                "-n",
                "2",
                "--tls",
                "--ca",
                ca,
            ],
            2,
        ),
    ] {
        let mut all = vec!["bench", args[0], "--json"];
        all.extend_from_slice(&args[1..]);
        let (ok, out, err) = client(&all).await;
        assert!(ok, "{args:?}: {err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (r["requests"].as_u64(), r["errors"].as_u64()),
            (Some(requests), Some(0)),
            "{args:?}: {r}"
        );
    }
    let bytes = h.stats.totals(ServiceKind::Echo).bytes_in;
    assert_eq!(bytes, 200 * 64, "every request crossed TLS to the service");
    // Without --tls, the bench says what the port speaks.
    let (ok, out, err) = client(&["bench", "echo", &echo, "-c", "1", "-n", "1"]).await;
    assert!(
        !ok && out.contains("it speaks TLS (add --tls"),
        "{out} {err}"
    );

    let (ok, _, err) = client(&["udp", "9", "x", "--tls", "--pin", &pin]).await;
    assert!(!ok && err.contains("UDP, which has no TLS"), "{err}");
}

#[tokio::test]
async fn unfinished_handshakes_give_way_and_a_refused_tls_client_reads_an_alert() {
    use switchboard::config::ServiceTls;
    let h = common::Harness::start_with(|c| {
        let echo = c.service_mut(ServiceKind::Echo);
        echo.tls = ServiceTls::Shared;
        echo.tcp_mut().max_connections_per_peer = 2;
    })
    .await;
    let addr = h.addr(ServiceKind::Echo);
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        stalled.push(s);
    }
    h.wait_for("two handshakes admitted", |s| {
        s.connections
            .iter()
            .filter(|c| c.service == ServiceKind::Echo)
            .count()
            == 2
    })
    .await;
    // Neither has started (its handshake is unfinished), so a third from
    // the same address closes the oldest of them…
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut got = Vec::new();
    let _ = guard(
        "the oldest handshake closed",
        stalled[0].read_to_end(&mut got),
    )
    .await;
    assert!(got.is_empty(), "{got:?}");
    // …and a real TLS client refused at a full per-address cap of started
    // connections reads a TLS alert, not a line of text.
    let cert = h.dir.path().join("tls-cert.pem");
    let tls = ClientTls::new(&Trust::Ca(cert)).unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = switchboard::client::EchoClient::connect_tls(
            &h.target(ServiceKind::Echo),
            Duration::from_secs(10),
            Some(&tls),
        )
        .await
        .unwrap();
        assert_eq!(c.round_trip(b"in").await.unwrap(), b"IN");
        held.push(c);
    }
    let err = switchboard::client::EchoClient::connect_tls(
        &h.target(ServiceKind::Echo),
        Duration::from_secs(10),
        Some(&tls),
    )
    .await
    .err()
    .expect("refused");
    let text = err.to_string();
    assert!(text.contains("alert"), "a TLS alert: {text}");
    drop(stalled);
}

#[tokio::test]
async fn the_dashboard_relays_to_tls_services_pinned_to_their_certificate() {
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use common::web::{Web, base};
    use switchboard::config::ServiceTls;
    let w = Web::start_with(|c| {
        for kind in [ServiceKind::Echo, ServiceKind::Exec, ServiceKind::Files] {
            c.service_mut(kind).tls = ServiceTls::Shared;
        }
    })
    .await;
    let admin = w.admin().await;
    let post = |path: &str, body: serde_json::Value| {
        base("POST", path)
            .header(header::COOKIE, &admin.cookie)
            .header("x-csrf-token", &admin.csrf)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let r = w
        .send(post(
            "/api/v1/services/echo/send",
            serde_json::json!({"text": "via the relay"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["reply"], "VIA THE RELAY");
    let r = w
        .send(post(
            "/api/v1/exec",
            serde_json::json!({"argv": ["echo", "relayed"]}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("relayed"), "{}", r.body);
    let r = w.send(admin.get("/api/v1/files")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn login_and_files_classic_work_over_tls() {
    use switchboard::client::{ClassicClient, LoginClient, LoginOutcome};
    use switchboard::config::ServiceTls;
    let h = common::Harness::start_with(|c| {
        c.service_mut(ServiceKind::Login).tls = ServiceTls::Shared;
        c.service_mut(ServiceKind::FilesClassic).tls = ServiceTls::Shared;
    })
    .await;
    let tls = ClientTls::new(&Trust::Ca(h.dir.path().join("tls-cert.pem"))).unwrap();
    let timeout = Duration::from_secs(10);
    let mut login = LoginClient::connect_tls(&h.target(ServiceKind::Login), timeout, Some(&tls))
        .await
        .unwrap();
    let outcome = login
        .attempt("admin", common::ADMIN_PASSWORD)
        .await
        .unwrap();
    assert!(matches!(outcome, LoginOutcome::Ok), "{outcome:?}");

    let body = b"classic over tls".to_vec();
    let classic =
        ClassicClient::connect_tls(&h.target(ServiceKind::FilesClassic), timeout, Some(&tls))
            .await
            .unwrap();
    classic
        .put("c.txt", body.len() as u64, &body[..], |_| {})
        .await
        .unwrap();
    let stored = switchboard::store::dir(h.dir.path()).join("new_c.txt");
    // Stored before the service closes the connection.
    h.wait_for("the classic upload stored", |s| {
        let t = s.totals(ServiceKind::FilesClassic);
        t.accepted == 1 && t.active == 0
    })
    .await;
    assert_eq!(std::fs::read(&stored).unwrap(), body);
}

/// Time is paused: it jumps to the next timer whenever everything waits,
/// so the 10 s deadline is reached at once and measured exactly.
#[tokio::test(start_paused = true)]
async fn a_stalled_service_handshake_is_closed_at_its_deadline() {
    use switchboard::config::ServiceTls;
    let h = common::Harness::start_with(|c| {
        c.service_mut(ServiceKind::Echo).tls = ServiceTls::Shared;
    })
    .await;
    let mut stalled = TcpStream::connect(h.addr(ServiceKind::Echo)).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut rest = Vec::new();
    let _ = guard("the close", stalled.read_to_end(&mut rest)).await;
    let waited = started.elapsed();
    assert!(
        waited >= switchboard::tls::HANDSHAKE_TIMEOUT && waited < Duration::from_secs(15),
        "closed after {waited:?}"
    );
}

/// The dashboard's handshake deadline, on paused time as above.
#[tokio::test(start_paused = true)]
async fn a_stalled_dashboard_handshake_is_closed_at_its_deadline() {
    let w =
        common::web::Web::start_with(|c| c.web.tls = switchboard::config::WebTls::SelfSigned).await;
    let addr = common::web::serve(&w).await;
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut rest = Vec::new();
    let _ = guard("the close", stalled.read_to_end(&mut rest)).await;
    let waited = started.elapsed();
    assert!(
        waited >= switchboard::tls::HANDSHAKE_TIMEOUT && waited < Duration::from_secs(15),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn bench_http_signs_in_and_loads_the_https_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_https(dir.path(), &[ServiceKind::Echo], &[]).await;
    let addr = host_port(&served.web_url());
    let pin = banner_fingerprint(&served);
    let password = dir.path().join("password");
    std::fs::write(&password, PASSWORD).unwrap();
    let password = password.to_str().unwrap();
    let (ok, out, err) = client(&[
        "bench",
        "http",
        &addr,
        "--json",
        "--password-file",
        password,
        "-c",
        "2",
        "-n",
        "40",
        "--tls",
        "--pin",
        &pin,
    ])
    .await;
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["requests"].as_u64(), r["errors"].as_u64()),
        (Some(40), Some(0)),
        "{r}"
    );
    // Without TLS, the HTTPS port refuses the plain sign-in clearly.
    let (ok, _, err) = client(&[
        "bench",
        "http",
        &addr,
        "--password-file",
        password,
        "-n",
        "1",
    ])
    .await;
    assert!(!ok, "{err}");
    assert!(err.contains("add --tls"), "{err}");
    served.terminate().await;
}

/// As deployed: HTTPS, `allowed_hosts` naming the dashboard. The clients
/// send the name they were given as `Host` (`bench http` also checks the
/// certificate for it), not the address they dialled, which the dashboard
/// answers 421; `health` takes the URL the banner prints.
#[tokio::test]
async fn the_clients_reach_an_https_dashboard_by_the_name_allowed_hosts_lists() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_https(
        dir.path(),
        &[ServiceKind::Echo],
        &[("SWITCHBOARD_WEB_ALLOWED_HOSTS", "localhost")],
    )
    .await;
    let port = served.web_url().rsplit(':').next().unwrap().to_owned();
    let password = dir.path().join("password");
    std::fs::write(&password, PASSWORD).unwrap();
    let cert = dir.path().join("tls-cert.pem");
    let run = |target: String| {
        let (password, cert) = (password.clone(), cert.clone());
        async move {
            let args = [
                "bench",
                "http",
                &target,
                "--json",
                "--password-file",
                password.to_str().unwrap(),
                "-c",
                "2",
                "-n",
                "20",
                "--tls",
                "--ca",
                cert.to_str().unwrap(),
            ];
            client(&args).await
        }
    };
    let (ok, out, err) = run(format!("localhost:{port}")).await;
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["requests"].as_u64(), r["errors"].as_u64()),
        (Some(20), Some(0)),
        "{r}"
    );
    // By address, the sign-in meets the Host check, and says so.
    let (ok, _, err) = run(format!("127.0.0.1:{port}")).await;
    assert!(!ok && err.contains("421"), "{err}");
    assert!(err.contains("web.allowed_hosts"), "says what to do: {err}");
    // `health` by the banner's URL, trusting the server's own certificate.
    let data = dir.path().to_str().unwrap();
    let url = format!("https://localhost:{port}/");
    let server = ["--set", "web.tls=self-signed", "--data-dir", data];
    let (ok, out, err) = client(&[&["health", &url][..], &server].concat()).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("ok: https://localhost:{port}/healthz"));
    served.terminate().await;
}
