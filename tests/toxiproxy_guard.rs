//! Toxiproxy's API beyond loopback: only over the dashboard's TLS and with
//! a bearer token (`web.toxiproxy_token`). Without both, a non-loopback
//! `web.toxiproxy_listen` stops the start with a reason naming the keys;
//! with a token, every request must carry it (checked in constant time),
//! and a plaintext request to the TLS port gets no answer. Served here on
//! loopback (tests bind nothing else), with the same guard.

mod common;

use std::time::Duration;

use common::guard;
use switchboard::config::{Config, Secret, WebTls};
use switchboard::server::{Options, Running};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "toxiproxy-token-for-tests-0123";

#[test]
fn beyond_loopback_needs_tls_and_a_token() {
    let refused = |text: &str| common::resolve_file(text).unwrap_err();
    let err = refused("[web]\ntoxiproxy_listen = \"0.0.0.0:8474\"\n");
    assert!(
        err.contains("toxiproxy_listen")
            && err.contains("web.tls")
            && err.contains("web.toxiproxy_token"),
        "names what it needs: {err}"
    );
    // Either alone is not enough.
    refused(&format!(
        "[web]\ntoxiproxy_listen = \"0.0.0.0:8474\"\ntoxiproxy_token = \"{TOKEN}\"\n"
    ));
    refused(
        "[web]\nlisten = \"0.0.0.0:8443\"\ntls = \"self-signed\"\n\
         toxiproxy_listen = \"0.0.0.0:8474\"\n",
    );
    let both = common::resolve_file(&format!(
        "[web]\nlisten = \"0.0.0.0:8443\"\ntls = \"self-signed\"\n\
         toxiproxy_listen = \"0.0.0.0:8474\"\ntoxiproxy_token = \"{TOKEN}\"\n"
    ))
    .expect("TLS and a token: accepted");
    assert_eq!(
        both.web.toxiproxy_listen,
        Some(std::net::SocketAddr::from(([0, 0, 0, 0], 8474)))
    );
    // A guessable token is no guard.
    let err = refused(
        "[web]\ntls = \"self-signed\"\ntoxiproxy_listen = \"127.0.0.1:8474\"\n\
         toxiproxy_token = \"short\"\n",
    );
    assert!(
        err.contains("toxiproxy_token") && err.contains("16"),
        "{err}"
    );
    // The token is never shown.
    assert!(!format!("{both:?}").contains(TOKEN));
}

/// `serve` refuses to start with it, saying why.
#[tokio::test]
async fn serve_refuses_a_bare_public_toxiproxy_api_at_start() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, "[web]\ntoxiproxy_listen = \"0.0.0.0:0\"\n").expect("config");
    let out = guard(
        "serve",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("SWITCHBOARD_ADMIN_PASSWORD", "toxiproxy-guard-password")
            .output(),
    )
    .await
    .expect("runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("toxiproxy_listen") && text.contains("web.toxiproxy_token"),
        "{text}"
    );
}

async fn start() -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut config = Config::ephemeral(dir.path());
    config.web.listen = "127.0.0.1:0".parse().expect("addr");
    config.web.tls = WebTls::SelfSigned;
    config.web.toxiproxy_listen = Some("127.0.0.1:0".parse().expect("addr"));
    config.web.toxiproxy_token = Some(Secret::new(TOKEN));
    let options = Options {
        admin_password: Some("toxiproxy-guard-password".into()),
        reload: None,
    };
    let running = switchboard::server::run(config, options)
        .await
        .expect("starts");
    (running, dir)
}

/// One request over TLS (pinned to the dashboard's certificate): the
/// status and body.
async fn https(running: &Running, request: &str) -> (u16, String) {
    let addr = match &running.toxiproxy {
        Some(Ok(a)) => *a,
        other => panic!("Toxiproxy's API listens: {other:?}"),
    };
    let tls = running
        .supervisor
        .certs()
        .web()
        .expect("the dashboard's certificate")
        .pinned_client()
        .expect("a pinned client");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut s = guard("handshake", tls.connect("127.0.0.1", tcp))
        .await
        .expect("TLS");
    s.write_all(request.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    // A TLS close without close_notify is fine here: the body is read.
    let _ = guard("the answer", s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

fn get(path: &str, auth: Option<&str>) -> String {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n{auth}Connection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn every_request_needs_the_token_over_tls() {
    let (running, _dir) = start().await;
    let (status, text) = https(&running, &get("/version", None)).await;
    assert_eq!(status, 401, "{text}");
    assert!(
        text.contains("\"status\":401"),
        "Toxiproxy's error shape: {text}"
    );
    assert!(!text.contains(TOKEN), "the token is not echoed");
    for wrong in [
        "Bearer wrong-token".to_owned(),
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
        format!("Bearer {TOKEN}x"),
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
    ] {
        let (status, text) = https(&running, &get("/proxies", Some(&wrong))).await;
        assert_eq!(status, 401, "{wrong}: {text}");
    }
    let bearer = format!("Bearer {TOKEN}");
    let (status, text) = https(&running, &get("/version", Some(&bearer))).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"version\""), "{text}");
    let (status, text) = https(&running, &get("/proxies", Some(&bearer))).await;
    assert_eq!(status, 200, "{text}");

    // Plaintext to the TLS port: no HTTP answer.
    let addr = match &running.toxiproxy {
        Some(Ok(a)) => *a,
        other => panic!("{other:?}"),
    };
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(get("/version", Some(&bearer)).as_bytes())
        .await
        .expect("send");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(
        !String::from_utf8_lossy(&out).contains("200"),
        "no plaintext answer: {out:?}"
    );
    running.shutdown().await;
}

/// Silent connections hold at most the 64 slots and only until the TLS
/// handshake deadline (3 s): a 65th is closed at once, and a real client
/// is served once the deadline frees them.
#[tokio::test]
async fn silent_connections_are_bounded_in_number_and_time() {
    let (running, _dir) = start().await;
    let addr = match &running.toxiproxy {
        Some(Ok(a)) => *a,
        other => panic!("{other:?}"),
    };
    let mut silent = Vec::new();
    for _ in 0..switchboard::toxic::listen::MAX_CONNECTIONS {
        silent.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let started = std::time::Instant::now();
    let mut extra = TcpStream::connect(addr).await.expect("connect");
    let mut buf = [0u8; 1];
    let read = guard("the 65th is closed", extra.read(&mut buf)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "closed: {read:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed at once, not at a deadline: {:?}",
        started.elapsed()
    );
    let bearer = format!("Bearer {TOKEN}");
    guard("a real client is served once the deadline passes", async {
        loop {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let tls = running
                .supervisor
                .certs()
                .web()
                .expect("certificate")
                .pinned_client()
                .expect("client");
            if let Ok(mut s) = tls.connect("127.0.0.1", tcp).await {
                s.write_all(get("/version", Some(&bearer)).as_bytes())
                    .await
                    .expect("send");
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out).await;
                if String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "slots freed by the deadline: {waited:?}"
    );
    drop(silent);
    running.shutdown().await;
}
