//! The chat kinds over real sockets and the dashboard's API: the tutorials'
//! own chat clients (000's UDP client, the TCP client written to 004's
//! description) hold a conversation with an operator who answers through
//! `POST /api/v1/services/{name}/chat/{peer}`, and print exactly what they
//! print against the tutorials' own servers, whose person types the same
//! replies. Plus the bounds: reply timeout, roles, CSRF, turns.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use common::guard;
use common::web::{Signed, Web};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const INSTANCES: &str = r#"
[services.talk]
kind = "chat"
listen = "127.0.0.1:0"

[services.utalk]
kind = "udp-chat"
listen = "127.0.0.1:0"

[services.talk-fast]
kind = "chat"
listen = "127.0.0.1:0"
reply_timeout_ms = 1000

[services.utalk-fast]
kind = "udp-chat"
listen = "127.0.0.1:0"
reply_timeout_ms = 1000
"#;

async fn web() -> Web {
    Web::start_with(|c| {
        let extra = common::resolve_file(INSTANCES).expect("the instances resolve");
        c.services.extend(
            extra
                .services
                .into_iter()
                .filter(|s| ["talk", "utalk", "talk-fast", "utalk-fast"].contains(&s.id.name())),
        );
    })
    .await
}

fn seeds_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seeds"))
}

fn python_missing() -> bool {
    let here = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    !here && common::skip_allowed("PYTHON", "python3 is not installed")
}

fn python(script: &std::path::Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("python3");
    c.arg(script)
        .env("PYTHONPATH", seeds_dir())
        .env("PYTHONIOENCODING", "utf-8")
        .kill_on_drop(true);
    c
}

/// A tutorial's chat server whose person types `replies`, on a port it
/// announces (tests/seeds/sitecustomize.py).
async fn seed_server(file: &str, replies: &str) -> (tokio::process::Child, u16) {
    let mut child = python(&seeds_dir().join(file))
        .env("SEED_ANNOUNCE_BIND", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(replies.as_bytes()).await.unwrap();
    drop(stdin);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = guard("the server announces its port", async {
        loop {
            let line = lines.next_line().await.unwrap().expect("announced");
            if let Some(p) = line.strip_prefix("SEED_PORT ") {
                return p.parse::<u16>().unwrap();
            }
        }
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

/// Starts a tutorial's chat client with all of `input`; it reads its lines
/// as the conversation reaches them.
fn start_client(file: &str, port: u16, input: String) -> tokio::task::JoinHandle<String> {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(seeds_dir().join(file)).unwrap();
    let text = text.replace("('127.0.0.1', 8000)", &format!("('127.0.0.1', {port})"));
    let script = dir.path().join(file);
    std::fs::write(&script, text).unwrap();
    let mut child = python(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    tokio::spawn(async move {
        let _dir = dir;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        let out = guard("the chat client ends", child.wait_with_output())
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty() || err.contains("EOFError"), "{err}");
        String::from_utf8(out.stdout).unwrap()
    })
}

/// Waits until a peer of `service` waits for a reply; its address.
async fn waiting_peer(w: &Web, who: &Signed, service: &str) -> String {
    guard("a peer waits", async {
        let mut after = 0;
        loop {
            let r = w
                .send(who.get(&format!("/api/v1/services/{service}/chat?after={after}")))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let v = r.json();
            after = v["version"].as_u64().unwrap();
            let waiting = v["threads"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["waiting"] == json!(true));
            if let Some(t) = waiting {
                return t["peer"].as_str().unwrap().to_owned();
            }
        }
    })
    .await
}

async fn reply(w: &Web, who: &Signed, service: &str, peer: &str, text: &str) -> StatusCode {
    let path = format!("/api/v1/services/{service}/chat/{peer}");
    w.send(who.act_json("POST", &path, &json!({"text": text})))
        .await
        .status
}

#[tokio::test]
async fn the_udp_chat_client_of_000_talks_to_the_operator_as_to_the_seeds_person() {
    if python_missing() {
        return;
    }
    let w = web().await;
    let (_, otto, _) = w.roles().await;
    let input = |port: u16| format!("127.0.0.1\n{port}\nhello\nq\n");
    let (_seed, port) = seed_server("000_udp_chat_server.py", "你好\n").await;
    let theirs = start_client("000_udp_chat_client.py", port, input(port))
        .await
        .unwrap();
    assert_eq!(
        theirs,
        "输入要连接的ip地址:输入端口号:>>>你好\n>>>您已断开连接!\n输入要连接的ip地址:"
    );
    let port = w.h.addr("utalk").port();
    let client = start_client("000_udp_chat_client.py", port, input(port));
    let peer = waiting_peer(&w, &otto, "utalk").await;
    assert_eq!(
        reply(&w, &otto, "utalk", &peer, "你好").await,
        StatusCode::OK
    );
    let mine = client.await.unwrap();
    assert_eq!(mine, theirs);
    let v = w.send(otto.get("/api/v1/services/utalk/chat")).await.json();
    let lines: Vec<&str> = v["threads"][0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(lines[..3], ["hello", "你好", "q"], "{v}");
    assert_eq!(v["threads"][0]["open"], json!(false));
    // Audited: who answered whom, never what.
    let audit = common::web::audit_lines(&w).await;
    let entry = audit
        .iter()
        .find(|e| e["event"] == "chat_reply")
        .expect("a chat_reply line");
    assert_eq!(entry["user"], "otto");
    assert_eq!(entry["peer"], json!(peer));
    assert!(!entry.to_string().contains("你好"));
}

#[tokio::test]
async fn the_tcp_chat_client_of_004_talks_to_the_operator_as_to_the_seeds_person() {
    if python_missing() {
        return;
    }
    let w = web().await;
    let (_, otto, _) = w.roles().await;
    let input = "hello\nhow are you\nexit\n".to_owned();
    let (_seed, port) = seed_server("004_chat_server.py", "hi\nfine\n").await;
    let theirs = start_client("004_chat_client.py", port, input.clone())
        .await
        .unwrap();
    assert_eq!(theirs, ">>:服务端: hi\n>>:服务端: fine\n>>:");
    let client = start_client("004_chat_client.py", w.h.addr("talk").port(), input);
    for text in ["hi", "fine"] {
        let peer = waiting_peer(&w, &otto, "talk").await;
        assert_eq!(reply(&w, &otto, "talk", &peer, text).await, StatusCode::OK);
    }
    assert_eq!(client.await.unwrap(), theirs);
    let v = w.send(otto.get("/api/v1/services/talk/chat")).await.json();
    assert_eq!(v["threads"][0]["open"], json!(false), "exit ended it: {v}");
}

#[tokio::test]
async fn a_peer_waits_at_most_reply_timeout_then_gets_the_end_word() {
    // The -fast instances' reply_timeout_ms.
    const REPLY_TIMEOUT: Duration = Duration::from_millis(1000);
    let w = web().await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let started = std::time::Instant::now();
    udp.send_to(b"anyone?", w.h.addr("utalk-fast"))
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = guard("the end word", udp.recv_from(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"q");
    common::assert_deadline("udp-chat's end word", started.elapsed(), REPLY_TIMEOUT);
    let started = std::time::Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(w.h.addr("talk-fast"))
        .await
        .unwrap();
    tcp.write_all(b"anyone?").await.unwrap();
    let mut rest = Vec::new();
    guard(
        "closed",
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut rest),
    )
    .await
    .unwrap();
    assert_eq!(rest, b"exit");
    common::assert_deadline("chat's end word", started.elapsed(), REPLY_TIMEOUT);
}

#[tokio::test]
async fn replies_need_an_operator_a_csrf_token_a_waiting_peer_and_a_chat_instance() {
    let w = web().await;
    let (vera, otto, _) = w.roles().await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(b"hello", w.h.addr("utalk")).await.unwrap();
    let peer = waiting_peer(&w, &vera, "utalk").await;
    let path = format!("/api/v1/services/utalk/chat/{peer}");
    let body = json!({"text": "hi"});
    assert_eq!(
        w.send(vera.act_json("POST", &path, &body)).await.status,
        StatusCode::FORBIDDEN
    );
    let no_csrf = axum::http::Request::builder()
        .method("POST")
        .uri(&path)
        .header("host", common::web::HOST)
        .header("cookie", &otto.cookie)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    assert_eq!(w.send(no_csrf).await.status, StatusCode::FORBIDDEN);
    let long = "x".repeat(2000);
    assert_eq!(
        reply(&w, &otto, "utalk", &peer, &long).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        reply(&w, &otto, "echo", &peer, "hi").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        reply(&w, &otto, "utalk", "10.0.0.1:1", "hi").await,
        StatusCode::CONFLICT
    );
    assert_eq!(reply(&w, &otto, "utalk", &peer, "hi").await, StatusCode::OK);
    // Its turn is over until it speaks again.
    assert_eq!(
        reply(&w, &otto, "utalk", &peer, "again").await,
        StatusCode::CONFLICT
    );
    let mut buf = [0u8; 16];
    let (n, _) = guard("the reply", udp.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"hi");
    let page = w.send(vera.get("/chat")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-chat-service=\"utalk\""));
    let v: Value = w.send(vera.get("/api/v1/services/echo/chat")).await.json();
    assert!(v["error"].as_str().unwrap().contains("chat"), "{v}");
}

#[tokio::test]
async fn the_tutorials_page_names_each_program_and_who_plays_it() {
    let w = web().await;
    let (vera, _, _) = w.roles().await;
    let page = w.send(vera.get("/tutorials")).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = page.body;
    let row = |client: &str| -> String {
        let at = body
            .find(&format!("data-client=\"{client}\""))
            .unwrap_or_else(|| panic!("no row for {client}"));
        let end = body[at..].find("</tr>").unwrap();
        body[at..at + end].to_owned()
    };
    let chat = row("004_chat_client.py");
    assert!(
        chat.contains(">talk<") && chat.contains(">talk-fast<"),
        "{chat}"
    );
    let port = w.h.addr("talk").port().to_string();
    assert!(chat.contains(&port), "a command with its port: {chat}");
    // No raw-framed exec here: the row says what to add.
    let raw = row("001_cmd_raw_client.py");
    assert!(
        raw.contains("framing = &quot;raw&quot;") || raw.contains("framing = &#34;raw&#34;"),
        "{raw}"
    );
    assert!(row("001_first_client.py").contains(">echo<"));
}
