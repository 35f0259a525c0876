//! The dashboard's HTTP client (`switchboard health`, `switchboard
//! service`) against servers that answer the way HTTP allows: a chunked
//! body, a `Content-Length` body on a connection left open, too long a
//! body, and something that is not HTTP at all. Each server is a raw
//! loopback socket written by hand, so the bytes on the wire are exactly
//! the ones named.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard::client::health::{Reply, request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GUARD: Duration = Duration::from_secs(20);

/// Serves one connection: reads the request (head and `Content-Length`
/// body), writes `reply`, then holds the connection open until the
/// client is gone. Returns the address and what the client sent.
async fn serve_once(reply: Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<String>) {
    let listener =
        switchboard::service::listen::bind_inet(([127, 0, 0, 1], 0).into()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |n| n.trim().parse::<usize>().expect("a length"));
                if got.len() >= end + 4 + length {
                    break;
                }
            }
        }
        conn.write_all(&reply).await.expect("write");
        // Kept open: the reply's own framing must end it, not the close.
        let _ = conn.read(&mut buf).await;
        String::from_utf8_lossy(&got).into_owned()
    });
    (addr, task)
}

async fn ask(addr: SocketAddr, body: Option<&serde_json::Value>) -> Result<Reply, String> {
    tokio::time::timeout(
        GUARD,
        request(
            &addr.to_string(),
            Duration::from_secs(10),
            None,
            "POST",
            "/api/v1/services/echo/stop",
            Some("sbt_token"),
            body,
        ),
    )
    .await
    .expect("the client finishes within the guard")
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_chunked_body_on_an_open_connection_is_read_whole() {
    let (addr, server) = serve_once(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            .to_vec(),
    )
    .await;
    let body = serde_json::json!({"why": "test"});
    let reply = ask(addr, Some(&body)).await.expect("a reply");
    assert_eq!((reply.status, reply.body.as_str()), (200, "hello world"));
    let sent = server.await.expect("the server ends");
    let head = sent.to_ascii_lowercase();
    assert!(
        sent.starts_with("POST /api/v1/services/echo/stop HTTP/1.1\r\n"),
        "{sent}"
    );
    assert!(head.contains(&format!("host: {addr}\r\n")), "{sent}");
    assert!(
        head.contains("authorization: bearer sbt_token\r\n"),
        "{sent}"
    );
    assert!(
        head.contains("content-type: application/json\r\n"),
        "{sent}"
    );
    assert!(head.contains("content-length: 14\r\n"), "{sent}");
    assert!(sent.ends_with(r#"{"why":"test"}"#), "{sent}");
}

/// Asked by name, the name goes as `Host` (what `web.allowed_hosts` lists).
#[tokio::test]
async fn a_name_dialled_is_the_host_sent() {
    let (addr, server) =
        serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()).await;
    let by_name = format!("localhost:{}", addr.port());
    let reply = tokio::time::timeout(
        GUARD,
        request(
            &by_name,
            Duration::from_secs(10),
            None,
            "GET",
            "/healthz",
            None,
            None,
        ),
    )
    .await
    .expect("within the guard")
    .expect("a reply");
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
    let sent = server.await.expect("the server ends").to_ascii_lowercase();
    assert!(sent.contains(&format!("host: {by_name}\r\n")), "{sent}");
}

#[tokio::test]
async fn a_content_length_body_ends_at_its_length_not_at_the_close() {
    let (addr, server) =
        serve_once(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok".to_vec()).await;
    let reply = ask(addr, None).await.expect("a reply");
    assert_eq!((reply.status, reply.body.as_str()), (201, "ok"));
    let sent = server.await.expect("the server ends");
    assert!(
        !sent.to_ascii_lowercase().contains("content-type"),
        "no body, no type: {sent}"
    );
}

#[tokio::test]
async fn a_body_over_the_cap_is_an_error_not_a_huge_allocation() {
    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\n".to_vec();
    reply.extend(std::iter::repeat_n(b'x', 2 << 20));
    let (addr, _server) = serve_once(reply).await;
    let err = ask(addr, None).await.expect_err("too long");
    assert!(err.contains("too long"), "{err}");
}

#[tokio::test]
async fn what_is_not_http_is_named_as_such() {
    let (addr, _server) = serve_once(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()).await;
    let err = ask(addr, None).await.expect_err("not HTTP");
    assert!(
        err.contains("/api/v1/services/echo/stop answered something that is not HTTP"),
        "{err}"
    );
}
