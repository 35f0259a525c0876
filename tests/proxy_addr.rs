//! The real client behind a proxy, with real HAProxy in front
//! (`send-proxy` and `send-proxy-v2`): echo's connections table, its
//! per-address cap and its refusal events, and exec's audit lines, name the
//! client HAProxy saw, not HAProxy; a peer that is not a trusted proxy, or
//! one that sends no header, is refused.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;

use common::haproxy::Haproxy;
use common::web::{connect_from, loopback};
use common::{GUARD, Harness, TEST_KEY, guard};
use switchboard::kind::ServiceKind::{Echo, Exec};
use switchboard::settings::TrustedProxies;
use switchboard::stats::EventKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The address HAProxy connects to our services from: the one trusted proxy.
const PROXY_IP: u8 = 9;

/// HAProxy in TCP mode, a frontend for each `(backend, send)` pair: the
/// header it sends (`send-proxy`, `send-proxy-v2`), from the trusted address.
async fn haproxy(backends: &[(SocketAddr, &str)]) -> Option<Haproxy> {
    let servers: Vec<String> = backends
        .iter()
        .map(|(backend, send)| format!("{backend} {send} source 127.0.0.{PROXY_IP}"))
        .collect();
    Haproxy::start("tcp", &servers).await
}

fn trusted_proxy() -> Option<TrustedProxies> {
    Some(TrustedProxies::parse(&[format!("127.0.0.{PROXY_IP}/32")]).expect("a range"))
}

async fn echo_line(stream: &mut tokio::net::TcpStream, line: &[u8]) -> Vec<u8> {
    stream.write_all(line).await.expect("write");
    let mut got = vec![0u8; line.len()];
    guard("echo reply", stream.read_exact(&mut got))
        .await
        .expect("echo reply");
    got
}

#[tokio::test]
async fn echo_behind_haproxy_sees_each_real_client() {
    let h = Harness::start_with(|c| {
        let echo = c.service_mut("echo").tcp_mut();
        echo.accept_proxy = trusted_proxy();
        echo.max_connections_per_peer = 2;
    })
    .await;
    let echo = h.addr(Echo);
    let Some(haproxy) = haproxy(&[(echo, "send-proxy"), (echo, "send-proxy-v2")]).await else {
        return;
    };
    for (front, client) in haproxy.fronts.iter().zip([2u8, 3]) {
        // Two clients from one address: both in, each under its own address.
        let mut a = connect_from(loopback(client), *front).await;
        let mut b = connect_from(loopback(client), *front).await;
        assert_eq!(echo_line(&mut a, b"one\n").await, b"ONE\n");
        assert_eq!(echo_line(&mut b, b"two\n").await, b"TWO\n");
        let peers: Vec<String> = [a.local_addr().unwrap(), b.local_addr().unwrap()]
            .iter()
            .map(ToString::to_string)
            .collect();
        h.wait_for("both clients in the connections table", |s| {
            peers
                .iter()
                .all(|p| s.connections.iter().any(|c| &c.peer == p))
        })
        .await;
        // A third from the same client is over its cap of 2, though HAProxy
        // itself holds only these few connections: the cap is the client's.
        let mut c = connect_from(loopback(client), *front).await;
        let (said, _) = common::read_until_closed(&mut c).await;
        let said = String::from_utf8_lossy(&said);
        assert!(
            said.contains(&format!("too many connections from 127.0.0.{client}")),
            "{said:?}"
        );
        let refused = h.stats.recent_events().into_iter().any(|e| {
            matches!(&e.kind, EventKind::Refused { peer, .. } if peer.starts_with(&format!("127.0.0.{client}:")))
        });
        assert!(refused, "a refusal event names 127.0.0.{client}");
        // Another client is not held back by the first one's connections.
        let mut d = connect_from(loopback(client + 10), *front).await;
        assert_eq!(echo_line(&mut d, b"three\n").await, b"THREE\n");
    }
    // HAProxy's own address never appears as a peer.
    let snap = h.stats.snapshot();
    assert!(
        snap.connections
            .iter()
            .all(|c| !c.peer.starts_with(&format!("127.0.0.{PROXY_IP}:"))),
        "{:?}",
        snap.connections
    );
}

#[tokio::test]
async fn a_peer_that_is_not_a_trusted_proxy_or_sends_no_header_is_refused() {
    let h = Harness::start_with(|c| {
        c.service_mut("echo").tcp_mut().accept_proxy = trusted_proxy();
    })
    .await;
    let echo = h.addr(Echo);
    // Untrusted: refused at once, with a line saying why.
    let mut stranger = connect_from(loopback(1), echo).await;
    let (said, _) = common::read_until_closed(&mut stranger).await;
    assert!(
        String::from_utf8_lossy(&said).contains("through a trusted proxy only"),
        "{said:?}"
    );
    // A spoofed header from an untrusted peer counts for nothing.
    let mut spoof = connect_from(loopback(1), echo).await;
    let _ = spoof
        .write_all(b"PROXY TCP4 198.51.100.7 127.0.0.1 1234 9000\r\nhi\n")
        .await;
    // (Unread input makes the close a reset: read what came before it.)
    let said = common::web::read_until_closed(&mut spoof).await;
    assert!(!said.ends_with(b"HI\n"), "{said:?}");
    // Trusted, but no header: closed, nothing echoed.
    let mut bare = connect_from(loopback(PROXY_IP), echo).await;
    bare.write_all(b"hello\n").await.expect("write");
    let said = common::web::read_until_closed(&mut bare).await;
    assert!(!said.starts_with(b"HELLO"), "{said:?}");
    // Trusted and a header, in our own bytes: the client is the header's.
    let mut ok = connect_from(loopback(PROXY_IP), echo).await;
    ok.write_all(b"PROXY TCP4 198.51.100.7 127.0.0.1 1234 9000\r\n")
        .await
        .expect("write");
    assert_eq!(echo_line(&mut ok, b"hi\n").await, b"HI\n");
    let snap = h
        .wait_for("the header's client in the table", |s| {
            s.connections.iter().any(|c| c.peer == "198.51.100.7:1234")
        })
        .await;
    assert_eq!(
        snap.connections
            .iter()
            .filter(|c| c.service.name() == "echo")
            .count(),
        1,
        "only the proxied connection is open: {:?}",
        snap.connections
    );
}

#[tokio::test]
async fn exec_audit_lines_name_the_client_behind_haproxy() {
    let h = Harness::start_with(|c| {
        c.service_mut("exec").tcp_mut().accept_proxy = trusted_proxy();
    })
    .await;
    let Some(haproxy) = haproxy(&[(h.addr(Exec), "send-proxy-v2")]).await else {
        return;
    };
    let front = haproxy.fronts[0].to_string();
    let mut client =
        switchboard::client::CommandClient::connect(&front, TEST_KEY.as_bytes(), GUARD)
            .await
            .expect("connect through haproxy");
    client
        .run(&["true".to_owned()], None, |_, _| {})
        .await
        .expect("run");
    let lines = common::audited_commands(&h, Some("exec"), 1).await;
    let peer = lines[0]["peer"].as_str().unwrap_or_default();
    // The client connected from 127.0.0.1; HAProxy from 127.0.0.9.
    assert!(peer.starts_with("127.0.0.1:"), "{}", lines[0]);
}

/// The dashboard's own relays reach services that take connections through
/// a proxy only, plain and TLS: nothing stands between the dashboard and its
/// services to send a PROXY header. Anyone else connecting direct is still
/// refused, and a TLS client is told why.
#[tokio::test]
async fn the_dashboards_relays_reach_services_behind_a_proxy_and_strangers_do_not() {
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use common::web::{Web, base};
    use switchboard::config::ServiceTls;
    use switchboard::kind::ServiceKind::Files;
    let w = Web::start_with(|c| {
        for kind in [Echo, Exec, Files] {
            c.service_mut(kind).tcp_mut().accept_proxy = trusted_proxy();
        }
        for kind in [Exec, Files] {
            c.service_mut(kind).tls = ServiceTls::Shared;
        }
    })
    .await;
    let admin = w.admin().await;
    let r = w
        .send(admin.act_json(
            "POST",
            "/api/v1/services/echo/send",
            &serde_json::json!({"text": "through no proxy"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["reply"], "THROUGH NO PROXY");
    let r = w
        .send(admin.act_json(
            "POST",
            "/api/v1/exec",
            &serde_json::json!({"argv": ["echo", "relayed"]}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("relayed"), "{}", r.body);
    let body = b"behind a proxy".to_vec();
    let put = base("PUT", "/api/v1/files/p.txt")
        .header(header::COOKIE, &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body.clone()))
        .unwrap();
    let r = w.send(put).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = w.send(admin.get("/api/v1/files/p.txt")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body.as_bytes(), body);
    // A TLS client straight from 127.0.0.1 (not the trusted proxy) reads
    // the refusal as an alert and is told what it means.
    let cert = w.h.dir.path().join("tls-cert.pem");
    let tls = switchboard::tls::ClientTls::new(&switchboard::tls::Trust::Ca(cert)).unwrap();
    let err = switchboard::client::FilesClient::connect_tls(
        &w.h.target(Files),
        TEST_KEY.as_bytes(),
        GUARD,
        Some(&tls),
    )
    .await
    .err()
    .expect("refused");
    assert!(
        matches!(err, switchboard::client::ClientError::TurnedAway { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("trusted proxy"), "{err}");
}

/// Runs the binary with `args` and `input` on its stdin, to its end.
async fn switchboard(args: &[&str], input: &str) -> std::process::Output {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("SWITCHBOARD_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(input.as_bytes()).await.expect("stdin");
    drop(stdin);
    guard("the command", child.wait_with_output())
        .await
        .expect("its output")
}

/// Each command-line client connecting directly to a port behind a proxy
/// reads the service's refusal line for what it is: it says the service
/// turned the connection away and why, and fails as its refusals do (exec
/// 125: the command did not run). Misread, it was `a header of 1852138356
/// bytes` (exec, files), a bare `closed the connection` (files-classic,
/// whose upload may even have seemed to go through) or an unexplained line
/// (login).
#[tokio::test]
async fn command_line_clients_connecting_directly_are_told_it_takes_a_proxy() {
    use switchboard::kind::ServiceKind::{Files, FilesClassic, Login};
    let h = Harness::start_with(|c| {
        for kind in [Exec, Files, FilesClassic, Login] {
            c.service_mut(kind).tcp_mut().accept_proxy = trusted_proxy();
        }
    })
    .await;
    let key = h.dir.path().join("cli-key");
    std::fs::write(&key, TEST_KEY).expect("key file");
    let file = h.dir.path().join("note.txt");
    std::fs::write(&file, "a note\n").expect("a file");
    let (key, file) = (key.to_str().expect("utf-8"), file.to_str().expect("utf-8"));
    let (exec, files) = (h.target(Exec), h.target(Files));
    let (classic, login) = (h.target(FilesClassic), h.target(Login));
    let cases: [(&str, Vec<&str>, i32); 6] = [
        (
            &exec,
            vec!["exec", &exec, "--key-file", key, "--", "true"],
            125,
        ),
        (&files, vec!["put", &files, file, "--key-file", key], 1),
        (
            &files,
            vec!["get", &files, "note.txt", "-o", "-", "--key-file", key],
            1,
        ),
        (&files, vec!["list", &files, "--key-file", key], 1),
        (&classic, vec!["put", "--classic", &classic, file], 1),
        (&login, vec!["login", &login, "--user", "admin"], 1),
    ];
    for (addr, args, code) in cases {
        let o = switchboard(&args, "a password\n").await;
        let said = String::from_utf8_lossy(&o.stderr);
        assert!(
            said.contains(&format!(
                "{addr} turned the connection away: this port takes connections through a \
                 trusted proxy only"
            )),
            "{args:?}: {said}"
        );
        assert_eq!(o.status.code(), Some(code), "{args:?}: {said}");
    }
    let stored = std::fs::read_dir(h.supervisor.store().dir()).expect("the files folder");
    assert_eq!(stored.count(), 0, "nothing stored");
}

/// A sign-in request from `from` to the dashboard at `addr`, with `extra`
/// header lines (each ending in CRLF).
async fn sign_in_from(
    addr: SocketAddr,
    from: u8,
    extra: &str,
    password: &str,
) -> common::web::RawReply {
    let plain = common::web::sign_in_request("admin", password);
    let request = plain.replacen("\r\n", &format!("\r\n{extra}"), 1);
    common::web::raw_request(addr, loopback(from), &request).await
}

fn web_trusting_the_proxy(c: &mut switchboard::config::Config) {
    c.web.max_failures_per_minute = 3;
    c.web.trusted_proxies = trusted_proxy().expect("a range");
}

#[tokio::test]
async fn forwarded_headers_count_only_from_a_trusted_proxy() {
    let w = common::web::Web::start_with(web_trusting_the_proxy).await;
    let addr = common::web::serve(&w).await;
    // An untrusted peer cannot buy more tries by naming someone else.
    for n in 0..3 {
        let spoof = format!("X-Forwarded-For: 198.51.100.{n}\r\nForwarded: for=192.0.2.{n}\r\n");
        let r = sign_in_from(addr, 3, &spoof, "wrong").await;
        assert_eq!(r.status, 401, "{r:?}");
    }
    let r = sign_in_from(
        addr,
        3,
        "X-Forwarded-For: 203.0.113.99\r\n",
        common::ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(r.status, 429, "the spoofer is out of tries: {r:?}");
    // Through the trusted proxy, each client has its own budget, and a
    // client's own spoofed entry (left of the proxy's) is not believed.
    for _ in 0..3 {
        let hops = "X-Forwarded-For: 1.1.1.1, 198.51.100.50\r\n";
        let r = sign_in_from(addr, PROXY_IP, hops, "wrong").await;
        assert_eq!(r.status, 401, "{r:?}");
    }
    let hops = "X-Forwarded-For: 2.2.2.2, 198.51.100.50\r\n";
    let r = sign_in_from(addr, PROXY_IP, hops, common::ADMIN_PASSWORD).await;
    assert_eq!(r.status, 429, "198.51.100.50 is out of tries: {r:?}");
    // Nor by a `Forwarded` of its own, which a proxy that appends to
    // `X-Forwarded-For` (HAProxy's `option forwardfor`) passes through.
    let both = "Forwarded: for=203.0.113.9\r\nX-Forwarded-For: 198.51.100.50\r\n";
    let r = sign_in_from(addr, PROXY_IP, both, common::ADMIN_PASSWORD).await;
    assert_eq!(r.status, 400, "two headers, two clients: {r:?}");
    assert!(r.body.contains("name different clients"), "{r:?}");
    // Answered inside the router's layers, as any refusal is.
    let head = r.head.to_ascii_lowercase();
    assert!(head.contains("content-security-policy"), "{r:?}");
    let r = sign_in_from(
        addr,
        PROXY_IP,
        "Forwarded: for=\"[2001:db8::7]:4711\"\r\n",
        common::ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(r.status, 200, "another client behind the proxy: {r:?}");
    // The audit names the clients, never the proxy.
    let peers: Vec<String> = common::web::audit_lines(&w)
        .await
        .iter()
        .filter(|l| l["event"] == "login")
        .map(|l| l["peer"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(peers.contains(&"198.51.100.50".to_owned()), "{peers:?}");
    assert!(peers.contains(&"2001:db8::7".to_owned()), "{peers:?}");
    assert!(peers.contains(&"127.0.0.3".to_owned()), "{peers:?}");
    assert!(
        !peers
            .iter()
            .any(|p| p.contains("198.51.100.0") || p == "127.0.0.9" || p == "203.0.113.9"),
        "{peers:?}"
    );
}

#[tokio::test]
async fn the_dashboard_behind_haproxy_send_proxy_v2_sees_each_client() {
    let w = common::web::Web::start_with(web_trusting_the_proxy).await;
    let addr = common::web::serve(&w).await;
    let Some(haproxy) = haproxy(&[(addr, "send-proxy-v2"), (addr, "send-proxy")]).await else {
        return;
    };
    let mut signed_in = Vec::new();
    for (front, client) in haproxy.fronts.iter().zip([4u8, 5]) {
        for _ in 0..3 {
            let r = sign_in_from(*front, client, "", "wrong").await;
            assert_eq!(r.status, 401, "{r:?}");
        }
        let r = sign_in_from(*front, client, "", common::ADMIN_PASSWORD).await;
        assert_eq!(r.status, 429, "127.0.0.{client} is out of tries: {r:?}");
        // Another client through the same proxy signs in.
        let r = sign_in_from(*front, client + 10, "", common::ADMIN_PASSWORD).await;
        assert_eq!(r.status, 200, "{r:?}");
        signed_in.push(r);
    }
    // What a client does through the dashboard is audited with its address.
    let cookie = signed_in[0]
        .head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l[11..].trim())
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let csrf: serde_json::Value = serde_json::from_str(&signed_in[0].body).expect("JSON");
    let body = r#"{"argv":["echo","audited"]}"#;
    let exec = format!(
        "POST /api/v1/exec HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\
         X-CSRF-Token: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        csrf["csrf_token"].as_str().expect("a CSRF token"),
        body.len()
    );
    let r = common::web::raw_request(haproxy.fronts[0], loopback(14), &exec).await;
    assert_eq!(r.status, 200, "{r:?}");
    // A file as the Files page sends it: a tus creation with its data.
    let upload = format!(
        "POST /api/v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\
         X-CSRF-Token: {}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\n\
         Upload-Metadata: filename aGkudHh0\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: 5\r\n\
         Connection: close\r\n\r\nhello",
        csrf["csrf_token"].as_str().expect("a CSRF token"),
    );
    let r = common::web::raw_request(haproxy.fronts[0], loopback(14), &upload).await;
    assert_eq!(r.status, 201, "{r:?}");
    let audit = common::web::audit_lines(&w).await;
    let ran = audit
        .iter()
        .find(|l| l["event"] == "web_exec")
        .expect("a web_exec line");
    assert_eq!(ran["peer"], "127.0.0.14", "{ran}");
    let uploaded: Vec<_> = audit.iter().filter(|l| l["event"] == "upload").collect();
    assert!(!uploaded.is_empty(), "{audit:?}");
    assert!(
        uploaded.iter().all(|l| l["peer"] == "127.0.0.14"),
        "{uploaded:?}"
    );
    let peers: Vec<String> = common::web::audit_lines(&w)
        .await
        .iter()
        .filter(|l| l["event"] == "login")
        .map(|l| l["peer"].as_str().unwrap_or_default().to_owned())
        .collect();
    for client in ["127.0.0.4", "127.0.0.14", "127.0.0.5", "127.0.0.15"] {
        assert!(peers.contains(&client.to_owned()), "{client} in {peers:?}");
    }
    assert!(!peers.contains(&"127.0.0.9".to_owned()), "{peers:?}");
}

#[test]
fn accept_proxy_and_trusted_proxies_are_read_and_checked() {
    let c = common::resolve_file(
        "[services.echo]\naccept_proxy = true\ntrusted_proxies = [\"10.0.0.0/8\", \"fd00::1\"]\n\
         [web]\ntrusted_proxies = [\"192.168.0.0/16\"]\n",
    )
    .expect("valid");
    let echo = c.services.iter().find(|s| s.id.name() == "echo").unwrap();
    let switchboard::service::Limits::Tcp(limits) = &echo.limits else {
        panic!("echo is TCP")
    };
    let trusted = limits.accept_proxy.as_ref().expect("accept_proxy on");
    assert!(trusted.contains("10.2.3.4".parse().unwrap()));
    assert!(!trusted.contains("127.0.0.1".parse().unwrap()));
    assert!(
        c.web
            .trusted_proxies
            .contains("192.168.7.7".parse().unwrap())
    );
    // On, with no list: loopback only.
    let c = common::resolve_file("[services.echo]\naccept_proxy = true\n").expect("valid");
    let echo = c.services.iter().find(|s| s.id.name() == "echo").unwrap();
    let switchboard::service::Limits::Tcp(limits) = &echo.limits else {
        panic!("echo is TCP")
    };
    assert_eq!(limits.accept_proxy, Some(TrustedProxies::loopback()));
    for (bad, says) in [
        (
            "[services.echo]\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
            "only read with accept_proxy",
        ),
        (
            "[services.echo]\naccept_proxy = true\ntrusted_proxies = []\n",
            "is empty",
        ),
        (
            "[services.echo]\naccept_proxy = true\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            "CIDR",
        ),
        (
            "[services.echo]\nlisten = \"unix:/tmp/e.sock\"\naccept_proxy = true\n",
            "unix",
        ),
        ("[services.udp-echo]\naccept_proxy = true\n", "accept_proxy"),
        (
            "[web]\ntrusted_proxies = [\"nope\"]\n",
            "web.trusted_proxies",
        ),
    ] {
        let e = common::resolve_file(bad).expect_err(bad);
        assert!(e.contains(says), "{bad}: {e}");
    }
}
