//! The wire inspector: captures of real connections to echo and udp-echo,
//! the segment boundaries they keep, their bounds, the live switch and the
//! JSON view, and the pcapng export checked by `tshark` (which must be
//! installed: scripts/test.sh installs it; a missing one fails the test).

mod common;

use std::net::SocketAddr;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use common::web::{OPERATOR, Web, connect_from, loopback, serve};
use common::{guard, resolve_file};

/// Capture switched on for echo and udp-echo the way a config file does,
/// with `extra` keys added to both tables.
async fn capturing(extra: &str, top: &str) -> Web {
    let file = resolve_file(&format!(
        "{top}\n[services.echo]\ncapture = true\n{extra}\n[services.udp-echo]\ncapture = true\n{extra}\n"
    ))
    .expect("a valid config");
    Web::start_with(|c| {
        for name in ["echo", "udp-echo"] {
            c.service_mut(name).capture = file.service(name).expect("built in").capture;
        }
        c.capture_total_bytes = file.capture_total_bytes;
    })
    .await
}

/// Reads from `s` until `n` bytes have come.
async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    guard("the echo", s.read_exact(&mut got))
        .await
        .expect("read");
    got
}

/// Waits until the registry no longer lists connection `id`.
async fn closed(w: &Web, id: u64) {
    w.h.wait_for("the connection closes", |s| {
        s.connections.iter().all(|c| c.id != id)
    })
    .await;
}

/// The one open connection of `service` (waits for it).
async fn conn_id(w: &Web, service: &str) -> u64 {
    let snap =
        w.h.wait_for("the connection opens", |s| {
            s.connections_of(service).count() == 1
        })
        .await;
    snap.connections_of(service).next().expect("one").id
}

/// `GET path` over a real socket with the session `cookie`: status and body bytes.
async fn download(web: SocketAddr, cookie: &str, path: &str) -> (u16, Vec<u8>, String) {
    let mut s = connect_from(loopback(1), web).await;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    guard("the download", s.read_to_end(&mut raw))
        .await
        .expect("read");
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..at]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, raw[at + 4..].to_vec(), head)
}

/// Runs `tshark -r file -q -z follow,PROTO,raw,0`: the bytes each side
/// sent, client first. Fails (never skips) when tshark is missing.
fn follow(file: &std::path::Path, proto: &str) -> (Vec<u8>, Vec<u8>) {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-q", "-z", &format!("follow,{proto},raw,0")])
        .output()
        .unwrap_or_else(|e| {
            panic!("tshark could not run ({e}): install it (Debian package tshark; scripts/test.sh does)")
        });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tshark failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unhex = |h: &str| -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
            .collect()
    };
    let (mut client, mut server) = (Vec::new(), Vec::new());
    let body = text
        .split_once("Node 1:")
        .unwrap_or_else(|| panic!("no follow output: {text}"))
        .1;
    for line in body.lines().skip(1) {
        if line.starts_with("====") {
            break;
        }
        if let Some(h) = line.strip_prefix('\t') {
            server.extend(unhex(h.trim()));
        } else if !line.trim().is_empty() {
            client.extend(unhex(line.trim()));
        }
    }
    (client, server)
}

#[tokio::test]
async fn tshark_follows_the_exported_tcp_and_udp_captures() {
    let w = capturing("", "").await;
    // TCP: two requests, one with bytes that are not text.
    let mut s = TcpStream::connect(w.h.addr("echo")).await.expect("connect");
    let id = conn_id(&w, "echo").await;
    let sent: [&[u8]; 2] = [b"hello wire ", b"\x00\x01\xfe\xffbytes"];
    let mut received = Vec::new();
    for m in sent {
        s.write_all(m).await.expect("write");
        received.extend(read_n(&mut s, m.len()).await);
    }
    s.shutdown().await.expect("half-close");
    let mut rest = Vec::new();
    guard("echo closes", s.read_to_end(&mut rest))
        .await
        .expect("eof");
    closed(&w, id).await;
    // UDP: two datagrams and their replies.
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    udp.connect(w.h.addr("udp-echo")).await.expect("connect");
    let mut udp_received = Vec::new();
    for d in [&b"ping"[..], b"pong \xff"] {
        udp.send(d).await.expect("send");
        let mut buf = [0u8; 64];
        let n = guard("the udp echo", udp.recv(&mut buf))
            .await
            .expect("recv");
        udp_received.extend_from_slice(&buf[..n]);
    }

    let web = serve(&w).await;
    let signed = w.admin().await;
    let dir = tempfile::tempdir().expect("temp dir");

    let (status, body, head) = download(
        web,
        &signed.cookie,
        &format!("/api/v1/connections/{id}/capture.pcapng"),
    )
    .await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-disposition: attachment"),
        "{head}"
    );
    let file = dir.path().join("echo.pcapng");
    std::fs::write(&file, &body).expect("write the export");
    let (client, server) = follow(&file, "tcp");
    assert_eq!(client, sent.concat(), "what the client sent");
    assert_eq!(server, received, "what echo answered");

    let (status, body, head) = download(
        web,
        &signed.cookie,
        "/api/v1/services/udp-echo/capture.pcapng",
    )
    .await;
    assert_eq!(status, 200, "{head}");
    let file = dir.path().join("udp.pcapng");
    std::fs::write(&file, &body).expect("write the export");
    let (client, server) = follow(&file, "udp");
    assert_eq!(client, b"pingpong \xff");
    assert_eq!(server, udp_received);
    assert_eq!(udp_received, b"PINGPONG \xff");
}

/// The segments of a capture as (dir, bytes), from the JSON view.
async fn segments(
    w: &Web,
    cookie: &common::web::Signed,
    id: u64,
) -> (Value, Vec<(String, Vec<u8>)>) {
    let r = w
        .send(cookie.get(&format!("/api/v1/connections/{id}/capture")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    let segs = v["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| {
            let h = s["hex"].as_str().expect("hex");
            let bytes: Vec<u8> = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
                .collect();
            assert_eq!(s["len"].as_u64(), Some(bytes.len() as u64));
            (s["dir"].as_str().expect("dir").to_owned(), bytes)
        })
        .collect();
    (v, segs)
}

// A current-thread runtime (the default): the services run only while the
// test awaits, so two writes made without an await in between are both in
// the server's socket before it reads.
#[tokio::test]
async fn two_quick_writes_are_one_segment_and_a_large_write_several() {
    let w = capturing("", "").await;
    let admin = w.admin().await;
    let mut s = TcpStream::connect(w.h.addr("echo")).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let id = conn_id(&w, "echo").await;
    assert_eq!(s.try_write(b"ab").expect("room"), 2);
    assert_eq!(s.try_write(b"cd").expect("room"), 2);
    assert_eq!(read_n(&mut s, 4).await, b"ABCD");
    let (_, segs) = segments(&w, &admin, id).await;
    assert_eq!(
        segs,
        [
            ("in".to_owned(), b"abcd".to_vec()),
            ("out".to_owned(), b"ABCD".to_vec())
        ],
        "two writes, one read"
    );

    // 40 KiB in one write: echo reads at most 16 KiB at once.
    let big: Vec<u8> = (0..40 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let (mut r, mut wr) = s.split();
    let (_, back) = tokio::join!(async { wr.write_all(&big).await.expect("write") }, async {
        let mut got = vec![0u8; big.len()];
        guard("the large echo", r.read_exact(&mut got))
            .await
            .expect("read");
        got
    });
    assert_eq!(back, big.to_ascii_uppercase());
    let (_, segs) = segments(&w, &admin, id).await;
    let ins: Vec<&Vec<u8>> = segs[2..]
        .iter()
        .filter(|(d, _)| d == "in")
        .map(|(_, b)| b)
        .collect();
    assert!(ins.len() >= 3, "{} reads", ins.len());
    assert!(ins.iter().all(|b| b.len() <= 16 * 1024));
    assert_eq!(
        ins.iter()
            .flat_map(|b| b.iter().copied())
            .collect::<Vec<u8>>(),
        big
    );
    let outs: Vec<u8> = segs[2..]
        .iter()
        .filter(|(d, _)| d == "out")
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert_eq!(outs, big.to_ascii_uppercase());
}

#[tokio::test]
async fn a_direction_over_capture_bytes_keeps_its_newest_and_marks_the_gap() {
    let w = capturing("capture_bytes = 1024", "").await;
    let admin = w.admin().await;
    let mut s = TcpStream::connect(w.h.addr("echo")).await.expect("connect");
    let id = conn_id(&w, "echo").await;
    for i in 0..20u8 {
        s.write_all(&[b'a' + i; 100]).await.expect("write");
        read_n(&mut s, 100).await;
    }
    let (v, segs) = segments(&w, &admin, id).await;
    assert_eq!(v["bytes_in"], 2000);
    let dropped = v["dropped_in"].as_u64().expect("dropped_in");
    assert!(dropped >= 1000, "{v}");
    let first = &v["segments"][0];
    assert_eq!(first["gap_before"].as_u64(), Some(dropped));
    assert_eq!(first["offset"].as_u64(), Some(dropped));
    // What is held is the newest, ending with the last request.
    let ins: Vec<u8> = segs
        .iter()
        .filter(|(d, _)| d == "in")
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert_eq!(ins.len() as u64, 2000 - dropped);
    assert!(ins.ends_with(&[b'a' + 19; 100]));
    assert!(v["bytes_held"].as_u64().expect("held") <= 2 * 1024);
    // The cursor: nothing after the last segment.
    let next = v["next"].as_u64().expect("next");
    let r = w
        .send(admin.get(&format!("/api/v1/connections/{id}/capture?since={next}")))
        .await;
    assert_eq!(r.json()["segments"].as_array().map(Vec::len), Some(0));

    // The export: Wireshark sees the gap as a lost segment, and follows
    // exactly the bytes still held.
    let outs: Vec<u8> = segs
        .iter()
        .filter(|(d, _)| d == "out")
        .flat_map(|(_, b)| b.clone())
        .collect();
    let web = serve(&w).await;
    let (status, body, head) = download(
        web,
        &admin.cookie,
        &format!("/api/v1/connections/{id}/capture.pcapng"),
    )
    .await;
    assert_eq!(status, 200, "{head}");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("gap.pcapng");
    std::fs::write(&file, &body).expect("write the export");
    // tshark says where bytes are missing, in the stream it follows.
    let missing = |n: u64| format!("[{n} bytes missing in capture file]\0").into_bytes();
    let dropped_out = v["dropped_out"].as_u64().expect("dropped_out");
    let (client, server) = follow(&file, "tcp");
    assert_eq!(client, [missing(dropped), ins].concat());
    assert_eq!(server, [missing(dropped_out), outs].concat());
    let lost = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args([
            "-Y",
            "tcp.analysis.lost_segment",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("tshark runs");
    let marked = String::from_utf8_lossy(&lost.stdout).lines().count();
    assert!(
        marked >= 1,
        "no \"previous segment not captured\" in the export"
    );
}

#[tokio::test]
async fn the_budget_evicts_the_oldest_closed_capture_first() {
    // Each connection below holds 2 x (500 + 32) bytes: two fit, three do not.
    let w = capturing("capture_bytes = 1024", "capture_total_bytes = 3000").await;
    let admin = w.admin().await;
    let mut ids = Vec::new();
    let mut still_open = None;
    for i in 0..3u8 {
        let mut s = TcpStream::connect(w.h.addr("echo")).await.expect("connect");
        let id = conn_id(&w, "echo").await;
        s.write_all(&[b'a' + i; 500]).await.expect("write");
        read_n(&mut s, 500).await;
        if i < 2 {
            drop(s);
            closed(&w, id).await;
        } else {
            still_open = Some(s);
        }
        ids.push(id);
    }
    let r = w.send(admin.get("/api/v1/captures")).await;
    let v = r.json();
    let held: Vec<(u64, bool)> = v["captures"]
        .as_array()
        .expect("captures")
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().expect("id"),
                c["open"].as_bool().expect("open"),
            )
        })
        .collect();
    assert_eq!(held, [(ids[1], false), (ids[2], true)], "{v}");
    assert!(v["held"].as_u64() <= v["budget"].as_u64());
    let gone = w
        .send(admin.get(&format!("/api/v1/connections/{}/capture", ids[0])))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.error().contains("capture"), "{}", gone.body);
    drop(still_open);
}

#[tokio::test]
async fn capture_off_records_nothing_and_answers_404() {
    let w = Web::start().await;
    let admin = w.admin().await;
    let mut s = TcpStream::connect(w.h.addr("echo")).await.expect("connect");
    let id = conn_id(&w, "echo").await;
    s.write_all(b"not recorded").await.expect("write");
    read_n(&mut s, 12).await;
    let r = w.send(admin.get("/api/v1/captures")).await;
    assert_eq!(r.json()["captures"], json!([]));
    assert_eq!(r.json()["held"], 0);
    for path in [
        format!("/api/v1/connections/{id}/capture"),
        format!("/api/v1/connections/{id}/capture.pcapng"),
        "/api/v1/services/echo/capture.pcapng".to_owned(),
        "/api/v1/connections/999999/capture.pcapng".to_owned(),
    ] {
        let r = w.send(admin.get(&path)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.error().contains("capture"), "{path}: {}", r.body);
    }
}

#[tokio::test]
async fn the_live_switch_is_admin_only_csrf_checked_audited_and_applies_to_new_connections() {
    let w = Web::start().await;
    let admin = w.admin().await;
    let on = json!({"capture": true});
    // No session, no CSRF token: refused.
    let r = w
        .send(common::web::json_request(
            "PUT",
            "/api/v1/services/echo/capture",
            &on,
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let mut no_csrf = admin.act_json("PUT", "/api/v1/services/echo/capture", &on);
    no_csrf.headers_mut().remove("x-csrf-token");
    assert_eq!(w.send(no_csrf).await.status, StatusCode::FORBIDDEN);
    // Reading captures needs a session too.
    assert_eq!(
        w.send(common::web::get("/api/v1/captures")).await.status,
        StatusCode::UNAUTHORIZED
    );

    let r = w
        .send(admin.act_json("PUT", "/api/v1/services/echo/capture", &on))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut s = TcpStream::connect(w.h.addr("echo")).await.expect("connect");
    let id = conn_id(&w, "echo").await;
    s.write_all(b"seen").await.expect("write");
    read_n(&mut s, 4).await;
    let (_, segs) = segments(&w, &admin, id).await;
    assert_eq!(segs.len(), 2);

    // Off again: the open connection stops recording at once.
    let off = json!({"capture": false});
    let r = w
        .send(admin.act_json("PUT", "/api/v1/services/echo/capture", &off))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    s.write_all(b"unseen").await.expect("write");
    read_n(&mut s, 6).await;
    let (_, segs) = segments(&w, &admin, id).await;
    assert_eq!(segs.len(), 2);

    // Kept for the next start: services.toml says so, and a config read
    // with it applied captures as switched.
    let overlay =
        switchboard::config::overlay::Overlay::read(&w.h.config.data_dir).expect("readable");
    assert_eq!(
        overlay.services["echo"].get("capture"),
        Some(&toml::Value::Boolean(false))
    );
    let mut next = w.h.config.clone();
    next.service_mut("echo").capture.on = true;
    overlay.apply(&mut next).expect("applies");
    assert!(!next.service("echo").expect("built in").capture.on);

    let audit = common::web::audit_lines(&w).await;
    let switches: Vec<&Value> = audit.iter().filter(|l| l["event"] == "capture").collect();
    assert_eq!(switches.len(), 2, "{audit:?}");
    assert_eq!(switches[0]["user"], "admin");
    assert_eq!(switches[0]["capture"], true);
    // An unknown instance is a 404.
    let r = w
        .send(admin.act_json("PUT", "/api/v1/services/nope/capture", &on))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// The bytes each way of connection `id`'s capture, from the JSON view.
async fn both_ways(w: &Web, admin: &common::web::Signed, id: u64) -> (Vec<u8>, Vec<u8>) {
    let (_, segs) = segments(w, admin, id).await;
    let way = |d: &str| -> Vec<u8> {
        segs.iter()
            .filter(|(dir, _)| dir == d)
            .flat_map(|(_, b)| b.clone())
            .collect()
    };
    (way("in"), way("out"))
}

#[tokio::test]
async fn a_captured_tcp_proxy_connection_takes_the_copying_path_and_records_both_ways() {
    let w = Web::start().await;
    let admin = w.admin().await;
    let text = format!(
        "[services.px]\nkind = \"tcp-proxy\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\ncapture = true\n",
        w.h.addr("echo")
    );
    let px = resolve_file(&text)
        .expect("a valid config")
        .service("px")
        .expect("declared")
        .clone();
    w.h.supervisor.add(px).await.expect("px starts");
    let mut s = TcpStream::connect(w.h.addr("px")).await.expect("connect");
    let id = conn_id(&w, "px").await;
    s.write_all(b"through the proxy").await.expect("write");
    assert_eq!(read_n(&mut s, 17).await, b"THROUGH THE PROXY");
    drop(s);
    closed(&w, id).await;
    let (got_in, got_out) = both_ways(&w, &admin, id).await;
    assert_eq!(got_in, b"through the proxy");
    assert_eq!(got_out, b"THROUGH THE PROXY");
    // echo itself captures nothing: only px was switched on.
    let r = w.send(admin.get("/api/v1/captures")).await;
    let services: Vec<String> = r.json()["captures"]
        .as_array()
        .expect("captures")
        .iter()
        .map(|c| c["service"].as_str().expect("service").to_owned())
        .collect();
    assert_eq!(services, ["px"]);
}

#[tokio::test]
async fn a_captured_login_holds_the_password_typed() {
    let w = Web::start_with(|c| c.service_mut("login").capture.on = true).await;
    let admin = w.admin().await;
    let mut s = TcpStream::connect(w.h.addr("login"))
        .await
        .expect("connect");
    let id = conn_id(&w, "login").await;
    let prompt = switchboard::service::login::PROMPT_USER;
    assert_eq!(read_n(&mut s, prompt.len()).await, prompt.as_bytes());
    s.write_all(b"admin\n").await.expect("write");
    let ask = switchboard::service::login::PROMPT_PASSWORD;
    assert_eq!(read_n(&mut s, ask.len()).await, ask.as_bytes());
    s.write_all(b"not-the-password\n").await.expect("write");
    let failed = switchboard::service::login::FAILED;
    assert_eq!(read_n(&mut s, failed.len()).await, failed.as_bytes());
    let (got_in, got_out) = both_ways(&w, &admin, id).await;
    // What the inspector's warning is about: the secret, as typed.
    assert_eq!(got_in, b"admin\nnot-the-password\n");
    assert!(got_out.starts_with(prompt.as_bytes()), "{got_out:?}");
    // Then the prompts start over; the capture has what was sent so far.
    let after_ask = &got_out[prompt.len()..];
    assert!(
        after_ask.starts_with(format!("{ask}{failed}").as_bytes()),
        "{got_out:?}"
    );
}

#[tokio::test]
async fn every_capture_route_and_the_page_are_for_admins_only() {
    let w = capturing("", "").await;
    w.add_operator();
    let operator = w.sign_in(OPERATOR.0, OPERATOR.1).await;
    let mut s = TcpStream::connect(w.h.addr("echo")).await.expect("connect");
    let id = conn_id(&w, "echo").await;
    s.write_all(b"secret").await.expect("write");
    read_n(&mut s, 6).await;
    for path in [
        "/api/v1/captures".to_owned(),
        format!("/api/v1/connections/{id}/capture"),
        format!("/api/v1/connections/{id}/capture.pcapng"),
        "/api/v1/services/echo/capture.pcapng".to_owned(),
    ] {
        let r = w.send(operator.get(&path)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!r.body.contains("736563726574"), "{path} leaked the bytes");
        let r = w.send(common::web::get(&path)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = w
        .send(operator.act_json(
            "PUT",
            "/api/v1/services/echo/capture",
            &json!({"capture": false}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(w.h.stats.capturing("echo"), "the switch did not move");
    let page = w.send(operator.get(&format!("/inspect/{id}"))).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Nor are the bytes anywhere in /metrics.
    let metrics = w.send(common::web::get("/metrics")).await;
    assert!(!metrics.body.contains("secret"));
    // An admin gets the page, with the warning.
    let admin = w.admin().await;
    let page = w.send(admin.get(&format!("/inspect/{id}"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"inspect-warning\""));
    assert!(page.body.contains(&format!("data-id=\"{id}\"")));
    // A bad body to the switch: a 400, nothing changed.
    let r = w
        .send(admin.act_json(
            "PUT",
            "/api/v1/services/echo/capture",
            &json!({"capture": "yes"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(w.h.stats.capturing("echo"));
}

#[tokio::test]
async fn a_capture_is_replayed_from_the_dashboard_to_an_instance_of_ours() {
    let w = capturing("", "").await;
    let admin = w.admin().await;
    let mut s = TcpStream::connect(w.h.addr("echo")).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let id = conn_id(&w, "echo").await;
    s.write_all(b"hello").await.expect("write");
    assert_eq!(read_n(&mut s, 5).await, b"HELLO");
    s.write_all(b"world").await.expect("write");
    assert_eq!(read_n(&mut s, 5).await, b"WORLD");
    drop(s);
    closed(&w, id).await;

    // To the instance it was captured on: the same two segments go out,
    // the same replies come back.
    let path = format!("/api/v1/connections/{id}/replay");
    let r = w.send(admin.act_json("POST", &path, &json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let out = r.json();
    let texts = |key: &str| -> Vec<String> {
        out[key]
            .as_array()
            .expect("a list")
            .iter()
            .map(|c| c["text"].as_str().expect("text").to_owned())
            .collect()
    };
    assert_eq!(texts("sent"), ["hello", "world"], "{out}");
    assert_eq!(texts("recorded").concat(), "HELLOWORLD");
    assert_eq!(texts("replies").concat(), "HELLOWORLD");
    assert_eq!(out["diff"]["equal"], true, "{out}");
    let audit = w.send(admin.get("/api/v1/audit")).await.body;
    assert!(audit.contains("\"replay\""), "{audit}");

    // Not to a UDP instance, nor to a name that is not ours, nor for an
    // operator or without the CSRF token; nor for a capture that is gone.
    for (body, status) in [
        (json!({"target": "udp-echo"}), StatusCode::CONFLICT),
        (json!({"target": "nope"}), StatusCode::NOT_FOUND),
        (json!({"target": "127.0.0.1:22"}), StatusCode::NOT_FOUND),
        (json!({"to": "echo"}), StatusCode::BAD_REQUEST),
    ] {
        let r = w.send(admin.act_json("POST", &path, &body)).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
    }
    let r = w
        .send(admin.act_json("POST", "/api/v1/connections/999999/replay", &json!({})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = w
        .send(common::web::json_request("POST", &path, &json!({})))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (_, operator, _) = w.roles().await;
    let r = w.send(operator.act_json("POST", &path, &json!({}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut no_csrf = admin.act_json("POST", &path, &json!({}));
    no_csrf.headers_mut().remove("x-csrf-token");
    assert_eq!(w.send(no_csrf).await.status, StatusCode::FORBIDDEN);
}
