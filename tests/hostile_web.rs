//! The dashboard's own surfaces under a hostile or unlucky client, over
//! real sockets to the real services: a refusal is never a reply, a listing
//! survives files vanishing under it, an upload that cannot fit is told at
//! once, names that display as something else are refused, exports and the
//! exec stream stay bounded in memory.

mod common;

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::{Value, json};

use common::web::{OPERATOR, Signed, Web, base};
use common::{GUARD, guard};
use switchboard::client::EchoClient;
use switchboard::kind::ServiceKind;

fn with_json(s: &Signed, method: &str, path: &str, body: &Value) -> axum::http::Request<Body> {
    base(method, path)
        .header(header::COOKIE, &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn echos_refusal_is_an_error_not_a_reply() {
    let w = Web::start_with(|c| {
        c.service_mut(ServiceKind::Echo).tcp_mut().max_connections = 1;
    })
    .await;
    let (_, operator, _) = w.roles().await;
    // The one slot, taken by a client that is in use (nothing to evict).
    let mut holder = EchoClient::connect(&w.h.target(ServiceKind::Echo), GUARD)
        .await
        .unwrap();
    assert_eq!(holder.round_trip(b"mine").await.unwrap(), b"MINE");
    // Short and long messages: the refusal line is longer than the first
    // and shorter than the second.
    for text in ["hello world", &"x".repeat(500)] {
        let r = w
            .send(with_json(
                &operator,
                "POST",
                "/api/v1/services/echo/send",
                &json!({ "text": text }),
            ))
            .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        let error = r.error();
        assert!(
            error.contains("is at its limit of 1 connections"),
            "the server's reason: {error}"
        );
        assert!(r.json().get("reply").is_none(), "{}", r.body);
    }
    // The slot freed, the same request is answered.
    drop(holder);
    guard("echo's slot freed", async {
        loop {
            let r = w
                .send(with_json(
                    &operator,
                    "POST",
                    "/api/v1/services/echo/send",
                    &json!({"text": "hello world"}),
                ))
                .await;
            if r.status == StatusCode::OK {
                assert_eq!(r.json()["reply"], "HELLO WORLD");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Writes `head` (and nothing more) to the dashboard at `addr`, and reads
/// the response to its end, with the hang guard; the status and the text.
async fn raw_exchange(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut reply = Vec::new();
    // The server may close while our declared body is still unsent: what
    // arrived before a reset still counts.
    let _ = guard("the reply", stream.read_to_end(&mut reply)).await;
    let r = common::web::RawReply::parse(&reply);
    (r.status, r.body)
}

fn put_head(addr: std::net::SocketAddr, s: &Signed, name: &str, size: u64) -> String {
    format!(
        "PUT /api/v1/files/{name} HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nX-CSRF-Token: {}\r\n\
         Content-Length: {size}\r\nConnection: close\r\n\r\n",
        s.cookie, s.csrf
    )
}

#[tokio::test]
async fn an_upload_that_cannot_fit_is_answered_before_its_body() {
    let w = Web::start_with(|c| {
        c.service_mut("files")
            .settings_mut::<switchboard::service::files::Settings>()
            .max_file_bytes = 1 << 55;
        // Long: only the free-space check can explain a quick answer.
        c.web.request_timeout = std::time::Duration::from_secs(60);
    })
    .await;
    let addr = common::web::serve(&w).await;
    let (_, operator, _) = w.roles().await;
    let started = std::time::Instant::now();
    // 16 PiB declared, none of it sent.
    let (status, body) =
        raw_exchange(addr, &put_head(addr, &operator, "huge.bin", 1 << 54), b"").await;
    assert_eq!(status, 507, "{body}");
    assert!(body.contains("not enough disk space"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Over the store's cap: 413 at once too.
    let (status, body) =
        raw_exchange(addr, &put_head(addr, &operator, "huge.bin", 1 << 56), b"").await;
    assert_eq!(status, 413, "{body}");
    assert!(!w.h.supervisor.store().dir().join("huge.bin").exists());
}

#[tokio::test]
async fn an_upload_that_stops_sending_ends_with_408_after_the_request_timeout() {
    let w = Web::start_with(|c| c.web.request_timeout = std::time::Duration::from_secs(1)).await;
    let addr = common::web::serve(&w).await;
    let operator = sign_in_within_a_second(&w).await;
    let started = std::time::Instant::now();
    // 1,000 bytes declared, 10 sent, then silence.
    let (status, body) = raw_exchange(
        addr,
        &put_head(addr, &operator, "slow.bin", 1000),
        b"0123456789",
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("no bytes of the upload arrived"), "{body}");
    common::assert_deadline(
        "the 408 to a stalled upload",
        took,
        std::time::Duration::from_secs(1),
    );
    // The service removes the temporary when the relay's connection ends.
    let store = w.h.supervisor.store().dir().to_owned();
    common::web::poll_until("nothing stored, no temporary left", || {
        std::fs::read_dir(&store).unwrap().count() == 0
    })
    .await;
}

/// An operator signed in on a server whose request timeout is 1 s. That
/// timeout bounds the sign-in too, and argon2 on a busy machine (the test
/// run's other binaries) can take longer: a sign-in the timeout cut (503)
/// is tried again, a bounded number of times.
async fn sign_in_within_a_second(w: &Web) -> Signed {
    w.add_operator();
    let body = json!({"username": OPERATOR.0, "password": OPERATOR.1});
    for _ in 0..20 {
        let r = w
            .send(common::web::json_request("POST", "/api/v1/session", &body))
            .await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            continue;
        }
        assert_eq!(r.status, StatusCode::OK, "sign-in failed: {}", r.body);
        return Signed::from_reply(&r);
    }
    panic!("20 sign-ins in a row took longer than the 1 s request timeout");
}

#[tokio::test]
async fn the_file_list_survives_files_deleted_while_it_is_made() {
    let w = Web::start().await;
    let (viewer, _, _) = w.roles().await;
    let dir = w.h.supervisor.store().dir().to_owned();
    const FILES: usize = 400;
    let names: Vec<String> = (0..FILES).map(|i| format!("f{i:04}.bin")).collect();
    for name in &names {
        // Placed by other means: each is hashed when first listed, which
        // widens the window between reading the folder and the file.
        std::fs::write(dir.join(name), vec![7u8; 32 * 1024]).unwrap();
    }
    let deleter = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            for name in names {
                std::fs::remove_file(dir.join(name)).unwrap();
                std::thread::yield_now();
            }
        })
    };
    let mut listings = 0;
    let mut failures = Vec::new();
    while !deleter.is_finished() {
        let r = w.send(viewer.get("/api/v1/files")).await;
        listings += 1;
        if r.status != StatusCode::OK {
            failures.push(format!("{}: {}", r.status, r.body));
        }
    }
    deleter.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} of {listings} listings failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let r = w.send(viewer.get("/api/v1/files")).await;
    assert_eq!(r.json(), json!([]));
}

#[tokio::test]
async fn names_with_invisible_format_characters_are_refused_and_audited_escaped() {
    let w = Web::start().await;
    let (_, operator, admin) = w.roles().await;
    for name in [
        "invoice%E2%80%AEgpj.exe", // U+202E RIGHT-TO-LEFT OVERRIDE
        "a%E2%80%8Bb.txt",         // U+200B ZERO WIDTH SPACE
        "x%E2%81%A6y.txt",         // U+2066 LEFT-TO-RIGHT ISOLATE
        "bom%EF%BB%BF.txt",        // U+FEFF
    ] {
        let r = w
            .send(
                base("PUT", &format!("/api/v1/files/{name}"))
                    .header(header::COOKIE, &operator.cookie)
                    .header("x-csrf-token", &operator.csrf)
                    .header(header::CONTENT_LENGTH, 2)
                    .body(Body::from("hi"))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.body);
        assert!(
            r.error().contains("invisible format characters"),
            "{}",
            r.body
        );
    }
    // Straight to the files service too (its store makes the same check).
    let mut client = switchboard::client::FilesClient::connect(
        &w.h.target(ServiceKind::Files),
        common::TEST_KEY.as_bytes(),
        GUARD,
    )
    .await
    .unwrap();
    let refused = client
        .put("invoice\u{202e}gpj.exe", 2, &b"hi"[..], |_| {})
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("invisible format characters"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read_dir(w.h.supervisor.store().dir())
            .unwrap()
            .count(),
        0
    );
    // A command whose arguments hold one is audited with it escaped (the
    // dashboard's line and the exec service's own).
    let r = w
        .send(with_json(
            &admin,
            "POST",
            "/api/v1/exec",
            &json!({"argv": ["echo", "rm -rf x\u{202e}txt.exe"]}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("\"exit\""), "{}", r.body);
    let raw = guard("both audit lines", async {
        loop {
            w.h.supervisor.audit().flush().await;
            let raw = std::fs::read_to_string(switchboard::audit::path(w.h.dir.path())).unwrap();
            if raw.matches("x\\u202etxt.exe").count() >= 2 {
                return raw;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(!raw.contains('\u{202e}'), "{raw}");
}

#[tokio::test]
async fn a_slow_browser_holds_back_the_commands_output_instead_of_the_server_buffering_it() {
    const OUTPUT: u64 = 32 << 20;
    let w = Web::start_with(|c| {
        let exec = c
            .service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>();
        exec.allow.push("yes".into());
        exec.max_output_bytes = OUTPUT;
        exec.timeout = std::time::Duration::from_secs(120);
        c.service_mut("exec").tcp_mut().idle_timeout = std::time::Duration::from_secs(120);
    })
    .await;
    let addr = common::web::serve(&w).await;
    let (_, _, admin) = w.roles().await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // `yes` until the output cap: text that JSON barely grows.
    let body = json!({"argv": ["yes"]}).to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/v1/exec HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nX-CSRF-Token: {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                admin.cookie,
                admin.csrf,
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // The browser reads the first bytes, then nothing for a while.
    let mut first = [0u8; 1024];
    guard("the stream starts", stream.read_exact(&mut first))
        .await
        .unwrap();
    // Wait until exec's output stops moving: it must stall, held back.
    let mut last = 0;
    let stalled_at = guard("exec's output stalls", async {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let now = w.h.stats.totals(ServiceKind::Exec).bytes_out;
            if now == last {
                return now;
            }
            last = now;
        }
    })
    .await;
    assert!(
        stalled_at < OUTPUT / 2,
        "exec sent {stalled_at} of {OUTPUT} bytes to a browser that read 1 KiB: \
         the server buffered the rest"
    );
    // Reading on, the command completes with all of its output.
    let mut rest = Vec::new();
    // A hang guard only: 48 MB of NDJSON on a loaded machine.
    tokio::time::timeout(GUARD * 3, stream.read_to_end(&mut rest))
        .await
        .expect("the rest of the stream")
        .unwrap();
    let text = String::from_utf8_lossy(&rest);
    let last_line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    let last: Value = serde_json::from_str(last_line).unwrap_or(Value::Null);
    assert_eq!(last["type"], "error", "{last_line}");
    assert!(
        last["error"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("output cap of {OUTPUT} bytes")),
        "all of it came through: {last_line}"
    );
    eprintln!(
        "exec relay: output stalled at {stalled_at} bytes of {OUTPUT} while the browser did not read"
    );
}

/// `VmRSS` or `VmHWM` of `pid`, in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// Reads one HTTP/1.1 response to `req` (with `Connection: close`) from
/// `addr`, counting the body's bytes without keeping them.
async fn fetch_len(addr: &str, req: String) -> (String, u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        if head.len() < 4096 {
            head.extend_from_slice(&buf[..n.min(4096)]);
        }
        total += n as u64;
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let head_len = text.find("\r\n\r\n").map_or(0, |i| i + 4) as u64;
    (text, total - head_len)
}

#[tokio::test]
async fn two_exports_of_a_full_64_mib_capture_stay_near_its_size() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const HALF: usize = 32 << 20;
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(
        &dir.path().join("data"),
        &[ServiceKind::Echo],
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD),
            ("SWITCHBOARD_ECHO_CAPTURE", "true"),
            ("SWITCHBOARD_ECHO_CAPTURE_BYTES", "33554432"),
            ("SWITCHBOARD_CAPTURE_TOTAL_BYTES", "134217728"),
        ],
    )
    .await;
    let pid = served.child.id().unwrap();
    let web = served.web_url().trim_start_matches("http://").to_owned();
    // 32 MiB each way through echo: a full 64 MiB capture.
    let mut echo = tokio::net::TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    let (mut rd, mut wr) = echo.split();
    let data = vec![b'q'; HALF];
    let mut back = vec![0u8; HALF];
    guard("32 MiB echoed", async {
        tokio::try_join!(wr.write_all(&data), rd.read_exact(&mut back))
    })
    .await
    .unwrap();
    drop((data, back));
    // Signed in as the admin.
    let body = json!({"username": "admin", "password": common::ADMIN_PASSWORD}).to_string();
    let (head, _) = fetch_len(
        &web,
        format!(
            "POST /api/v1/session HTTP/1.1\r\nHost: {web}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    let cookie = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l[11..].trim().to_owned())
        })
        .and_then(|c| c.split(';').next().map(str::to_owned))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    let get = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {web}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        )
    };
    let (head, _) = fetch_len(&web, get("/api/v1/captures")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let path = "/api/v1/services/echo/capture.pcapng";
    // The peak from here on.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM");
    let before = proc_kib(pid, "VmRSS:");
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(fetch_len(&web, get(path)), fetch_len(&web, get(path)));
    let took = started.elapsed();
    let peak = proc_kib(pid, "VmHWM:");
    for (head, len) in [&a, &b] {
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(*len > 2 * HALF as u64, "the whole capture: {len} bytes");
    }
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "two parallel exports of a 64 MiB capture ({} bytes each) in {took:?}: RSS {} MiB before, peak {} MiB (+{growth_mib} MiB)",
        a.1,
        before / 1024,
        peak / 1024
    );
    // Each export holds a copy of the capture while it is made (64 MiB),
    // nothing like the file whole: two together stay well under 3x.
    assert!(
        growth_mib < 200,
        "exports grew the server by {growth_mib} MiB"
    );
}
