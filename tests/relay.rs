//! The dashboard acting through the services: test messages, the
//! sticky-packet panel, uploads and downloads, remote commands. Each goes
//! through a real socket to a real service, so each is also checked in the
//! live stats; and each route gets hostile input.

mod common;

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use common::web::{Signed, Web, base};
use switchboard::kind::ServiceKind;

fn with_json(s: &Signed, method: &str, path: &str, body: &Value) -> axum::http::Request<Body> {
    base(method, path)
        .header(header::COOKIE, &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn put(s: &Signed, name: &str, bytes: Vec<u8>) -> axum::http::Request<Body> {
    base("PUT", &format!("/api/v1/files/{name}"))
        .header(header::COOKIE, &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(Body::from(bytes))
        .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    switchboard::wire::hex(&Sha256::digest(bytes))
}

#[tokio::test]
async fn test_messages_cross_the_services_own_sockets() {
    let w = Web::start().await;
    let (_, operator, _) = w.roles().await;

    let r = w
        .send(with_json(
            &operator,
            "POST",
            "/api/v1/services/echo/send",
            &json!({"text": "hello, é"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["reply"], "HELLO, é", "ASCII only is upper-cased");
    assert_eq!(v["request_hex"], "68656c6c6f2c20c3a9");
    assert_eq!(v["reply_hex"], "48454c4c4f2c20c3a9");
    assert_eq!(v["bytes_sent"], 9);
    assert_eq!(v["target"], w.h.target(ServiceKind::Echo));
    assert!(v["rtt_us"].as_u64().unwrap() <= v["total_us"].as_u64().unwrap());
    // It really was a connection to echo, counted as such.
    w.h.wait_for("echo's counters", |s| {
        s.totals(ServiceKind::Echo).bytes_in == 9
    })
    .await;

    let r = w
        .send(with_json(
            &operator,
            "POST",
            "/api/v1/services/udp-echo/send",
            &json!({"hex": "00 ff 61"}),
        ))
        .await;
    assert_eq!(r.json()["reply_hex"], "00ff41");
    w.h.wait_for("udp-echo's counters", |s| {
        s.totals(ServiceKind::UdpEcho).bytes_in == 3
    })
    .await;

    let r = w
        .send(with_json(
            &operator,
            "POST",
            "/api/v1/services/time/send",
            &json!({"text": "%Y"}),
        ))
        .await;
    let year = r.json()["reply"].as_str().unwrap().to_owned();
    assert!(year.len() == 4 && year.starts_with('2'), "{year}");
    let r = w
        .send(with_json(
            &operator,
            "POST",
            "/api/v1/services/time/send",
            &json!({"text": "%"}),
        ))
        .await;
    assert!(
        r.json()["reply"].as_str().unwrap().starts_with("error:"),
        "the service's own answer"
    );
}

#[tokio::test]
async fn test_messages_name_a_service_never_an_address() {
    let w = Web::start().await;
    let (viewer, operator, _) = w.roles().await;
    let send = "/api/v1/services/echo/send";
    let cases = [
        (
            json!({"text": "x", "host": "10.0.0.1"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"text": "x", "port": 22}), StatusCode::BAD_REQUEST),
        (
            json!({"text": "x", "target": "127.0.0.1:22"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"text": "x", "hex": "00"}), StatusCode::BAD_REQUEST),
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"hex": "zz"}), StatusCode::BAD_REQUEST),
        (json!({"hex": "abc"}), StatusCode::BAD_REQUEST),
        (
            json!({"text": "x".repeat(9000)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (json!({"text": ""}), StatusCode::BAD_REQUEST),
    ];
    for (body, status) in cases {
        let r = w.send(with_json(&operator, "POST", send, &body)).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(!r.error().is_empty());
    }
    for path in [
        "/api/v1/services/exec/send",
        "/api/v1/services/files/send",
        "/api/v1/services/login/send",
    ] {
        let r = w
            .send(with_json(&operator, "POST", path, &json!({"text": "x"})))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
    }
    let r = w
        .send(with_json(
            &operator,
            "POST",
            "/api/v1/services/127.0.0.1:22/send",
            &json!({"text": "x"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A viewer may not send; nothing needs the CSRF token less.
    let r = w
        .send(with_json(&viewer, "POST", send, &json!({"text": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let no_token = base("POST", send)
        .header(header::COOKIE, &operator.cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"text":"x"}"#))
        .unwrap();
    assert_eq!(w.send(no_token).await.status, StatusCode::FORBIDDEN);
    let foreign = base("POST", send)
        .header(header::COOKIE, &operator.cookie)
        .header("x-csrf-token", &operator.csrf)
        .header(header::ORIGIN, "http://evil.example")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"text":"x"}"#))
        .unwrap();
    assert_eq!(w.send(foreign).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.h.stats.totals(ServiceKind::Echo).accepted,
        0,
        "nothing reached echo"
    );

    // A stopped service is a clear 503, not a connection elsewhere.
    w.h.supervisor.stop(ServiceKind::Echo).await.unwrap();
    let r = w
        .send(with_json(&operator, "POST", send, &json!({"text": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.error().contains("echo is not running"));
}

#[tokio::test]
async fn sticky_packets_merge_raw_and_come_apart_framed() {
    let w = Web::start().await;
    let (viewer, operator, _) = w.roles().await;
    let messages = json!({"messages": ["hello", "world", "sticky", "packets"]});
    let r = w
        .send(with_json(&operator, "POST", "/api/v1/sticky", &messages))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["raw"]["writes"], json!([5, 5, 6, 7]));
    let raw_reads = v["raw"]["reads"].as_array().unwrap();
    assert!(raw_reads.len() < 4, "the reads merged: {raw_reads:?}");
    let joined: String = raw_reads.iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(joined, "HELLOWORLDSTICKYPACKETS");
    assert_eq!(v["framed"]["writes"], json!([9, 9, 10, 11]));
    assert_eq!(
        v["framed"]["messages"],
        json!(["HELLO", "WORLD", "STICKY", "PACKETS"])
    );

    for bad in [
        json!({"messages": []}),
        json!({"messages": vec!["x"; 21]}),
        json!({"messages": ["a".repeat(97)]}),
        json!({"messages": [""]}),
        json!({"messages": ["x"], "host": "10.0.0.1"}),
    ] {
        let r = w
            .send(with_json(&operator, "POST", "/api/v1/sticky", &bad))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = w
        .send(with_json(&viewer, "POST", "/api/v1/sticky", &messages))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn uploads_stream_through_the_files_service_and_come_back_intact() {
    let w = Web::start().await;
    let (viewer, operator, _) = w.roles().await;
    let data: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let r = w.send(put(&operator, "big.bin", data.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["name"], "big.bin");
    assert_eq!(v["size"], data.len());
    assert_eq!(v["sha256"], sha256_hex(&data));
    let on_disk = std::fs::read(w.h.dir.path().join("files/big.bin")).unwrap();
    assert_eq!(sha256_hex(&on_disk), sha256_hex(&data));
    w.h.wait_for("the file_stored event", |_| {
        w.h.stats
            .recent_events()
            .iter()
            .any(|e| e.kind.type_name() == "file_stored")
    })
    .await;

    // Same name again: stored beside, not over.
    let r = w.send(put(&operator, "big.bin", b"other".to_vec())).await;
    assert_eq!(r.json()["name"], "big-1.bin");

    let list = w.send(viewer.get("/api/v1/files")).await.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"big.bin") && names.contains(&"big-1.bin"),
        "{names:?}"
    );

    let r = w.send(viewer.get("/api/v1/files/big.bin")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), data.len().to_string());
    assert_eq!(
        r.header("content-disposition"),
        "attachment; filename*=UTF-8''big.bin"
    );
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    // (Reply::body is text; compare the hash of the raw bytes instead.)
    let raw = w
        .app
        .clone()
        .oneshot_bytes(viewer.get("/api/v1/files/big.bin"))
        .await;
    assert_eq!(sha256_hex(&raw), sha256_hex(&data));
    let r = w.send(viewer.get("/api/v1/files/nope.bin")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), "no file `nope.bin`");
}

trait OneshotBytes {
    async fn oneshot_bytes(self, req: axum::http::Request<Body>) -> Vec<u8>;
}

impl OneshotBytes for axum::Router {
    async fn oneshot_bytes(self, req: axum::http::Request<Body>) -> Vec<u8> {
        use tower::ServiceExt;
        let res = self.oneshot(req).await.unwrap();
        axum::body::to_bytes(res.into_body(), 64 << 20)
            .await
            .unwrap()
            .to_vec()
    }
}

#[tokio::test]
async fn hostile_uploads_are_refused_and_leave_nothing_behind() {
    let w = Web::start_with(|c| {
        c.service_mut("files")
            .settings_mut::<switchboard::service::files::Settings>()
            .max_file_bytes = 1024 * 1024
    })
    .await;
    let (viewer, operator, _) = w.roles().await;
    let files = w.h.dir.path().join("files");

    // Path tricks: the name is reduced to a base name inside the folder.
    for (name, stored) in [
        ("..%2F..%2Fescape.txt", "escape.txt"),
        ("%2Fetc%2Fpasswd", "passwd"),
        (".hidden", "hidden"),
    ] {
        let r = w.send(put(&operator, name, b"x".to_vec())).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        assert_eq!(r.json()["name"], stored);
        assert!(files.join(stored).exists());
    }
    assert!(!w.h.dir.path().join("escape.txt").exists());
    for name in ["..", "a%00b", "%1b%5b2J", "tab%09name"] {
        let r = w.send(put(&operator, name, b"x".to_vec())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.body);
    }
    // Over the cap: refused from the declared size, before anything is sent.
    let r = w
        .send(put(&operator, "huge.bin", vec![0; 1024 * 1024 + 1]))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.error().contains("at most 1048576"));
    // No size declared.
    let r = w
        .send(
            base("PUT", "/api/v1/files/nolength.bin")
                .header(header::COOKIE, &operator.cookie)
                .header("x-csrf-token", &operator.csrf)
                .body(Body::from_stream(tokio_stream::iter([Ok::<
                    _,
                    std::io::Error,
                >(
                    bytes::Bytes::from_static(b"abc"),
                )])))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::LENGTH_REQUIRED);
    // A body shorter than declared.
    let r = w
        .send(
            base("PUT", "/api/v1/files/short.bin")
                .header(header::COOKIE, &operator.cookie)
                .header("x-csrf-token", &operator.csrf)
                .header(header::CONTENT_LENGTH, "1000")
                .body(Body::from_stream(tokio_stream::iter([Ok::<
                    _,
                    std::io::Error,
                >(
                    bytes::Bytes::from_static(b"only a little"),
                )])))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.error().contains("ended after 13 of 1000 bytes"),
        "{}",
        r.error()
    );
    let mut left: Vec<String> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["escape.txt", "hidden", "passwd"],
        "no partial file, no temporary"
    );

    // Roles, token, origin.
    let r = w.send(put(&viewer, "v.txt", b"x".to_vec())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let no_token = base("PUT", "/api/v1/files/t.txt")
        .header(header::COOKIE, &operator.cookie)
        .header(header::CONTENT_LENGTH, "1")
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(w.send(no_token).await.status, StatusCode::FORBIDDEN);
    let foreign = base("PUT", "/api/v1/files/o.txt")
        .header(header::COOKIE, &operator.cookie)
        .header("x-csrf-token", &operator.csrf)
        .header(header::ORIGIN, "http://evil.example")
        .header(header::CONTENT_LENGTH, "1")
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(w.send(foreign).await.status, StatusCode::FORBIDDEN);
    assert!(!files.join("t.txt").exists() && !files.join("o.txt").exists());
    // Download names cannot leave the folder either.
    let r = w.send(viewer.get("/api/v1/files/..%2Fusers.json")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(!r.body.contains("argon2"));
}

/// Runs a command through the API; returns the NDJSON lines.
async fn exec(w: &Web, s: &Signed, body: Value) -> (StatusCode, Vec<Value>) {
    let r = w.send(with_json(s, "POST", "/api/v1/exec", &body)).await;
    if r.status != StatusCode::OK {
        return (r.status, vec![r.json()]);
    }
    assert_eq!(r.header("content-type"), "application/x-ndjson");
    let lines = r
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (r.status, lines)
}

#[tokio::test]
async fn remote_commands_stream_ndjson_and_end_with_one_final_line() {
    let w = Web::start().await;
    let (viewer, operator, admin) = w.roles().await;

    let (status, lines) = exec(&w, &admin, json!({"argv": ["echo", "hello", "<b>"]})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines[0]["type"], "stdout");
    assert_eq!(lines[0]["data"], "hello <b>\n");
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "exit");
    assert_eq!(last["code"], 0);
    assert!(last["cs_us"].is_u64());
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["type"] == "exit" || l["type"] == "error")
            .count(),
        1
    );

    let (_, lines) = exec(&w, &admin, json!({"argv": ["ls", "/definitely/not/here"]})).await;
    assert!(lines.iter().any(|l| l["type"] == "stderr"));
    assert_eq!(lines.last().unwrap()["code"], 2);

    let (_, lines) = exec(&w, &admin, json!({"argv": ["rm", "-rf", "/"]})).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "error");
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("`rm` is not allowed")
    );

    let (_, lines) = exec(&w, &admin, json!({"line": "date | wc -l"})).await;
    assert_eq!(
        lines.last().unwrap()["type"],
        "error",
        "no shell unless enabled"
    );

    for (body, why) in [
        (json!({}), "nothing to run"),
        (json!({"argv": []}), "empty argv"),
        (json!({"argv": ["date"], "line": "date"}), "both"),
        (json!({"argv": ["date"], "host": "10.0.0.1"}), "a host"),
        (json!({"argv": vec!["x"; 300]}), "too many arguments"),
        (json!({"argv": "date"}), "not a list"),
    ] {
        let (status, _) = exec(&w, &admin, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}");
    }
    for s in [&viewer, &operator] {
        let (status, _) = exec(&w, s, json!({"argv": ["date"]})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // Every relayed command is audited with the person behind it.
    w.h.supervisor.audit().flush().await;
    let audit = std::fs::read_to_string(switchboard::audit::path(w.h.dir.path())).unwrap();
    assert!(
        audit.contains(r#""event":"web_exec""#) && audit.contains(r#""user":"admin""#),
        "{audit}"
    );
}

#[tokio::test]
async fn shell_lines_run_when_the_operator_enabled_shell_mode() {
    let w = Web::start_with(|c| {
        c.service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>()
            .shell = true
    })
    .await;
    let s = w.admin().await;
    let (_, lines) = exec(&w, &s, json!({"line": "echo one; echo two >&2"})).await;
    let out: String = lines
        .iter()
        .filter(|l| l["type"] == "stdout")
        .map(|l| l["data"].as_str().unwrap())
        .collect();
    let err: String = lines
        .iter()
        .filter(|l| l["type"] == "stderr")
        .map(|l| l["data"].as_str().unwrap())
        .collect();
    assert_eq!((out.as_str(), err.as_str()), ("one\n", "two\n"));
    assert_eq!(lines.last().unwrap()["code"], 0);
}
