//! The WebSocket relay, `GET /api/v1/services/{name}/ws`, on a real
//! dashboard server over loopback with a real WebSocket client: replies
//! through one upstream connection, the checks made before the upgrade,
//! the size and rate limits, and the socket ending with its session.

mod common;

use axum::http::{StatusCode, header};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::guard;
use common::web::{Signed, Web, serve};
use switchboard::kind::ServiceKind;
use switchboard::users::Role;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// Request headers, as names and values.
type Headers = Vec<(&'static str, String)>;

/// How a handshake can go: the socket, or the HTTP status it was refused with.
async fn open(
    addr: std::net::SocketAddr,
    service: &str,
    headers: &[(&str, String)],
) -> Result<Ws, StatusCode> {
    let mut req = format!("ws://{addr}/api/v1/services/{service}/ws")
        .into_client_request()
        .expect("a request");
    for (name, value) in headers {
        req.headers_mut().insert(
            header::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            value.parse().expect("a header value"),
        );
    }
    match guard("the handshake", tokio_tungstenite::connect_async(req)).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(r)) => {
            Err(StatusCode::from_u16(r.status().as_u16()).expect("a status"))
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// The headers a dashboard page's `new WebSocket(...)` sends.
fn browser(addr: std::net::SocketAddr, s: &Signed) -> Headers {
    vec![
        ("cookie", s.cookie.clone()),
        ("origin", format!("http://{addr}")),
    ]
}

/// The next message that is not a ping or pong.
async fn next(ws: &mut Ws) -> Option<Message> {
    guard("a message", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(m)) => return Some(m),
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
}

/// Reads until the close frame; its code and reason.
async fn close_of(ws: &mut Ws) -> (CloseCode, String) {
    loop {
        match next(ws).await {
            Some(Message::Close(Some(f))) => return (f.code, f.reason.to_string()),
            Some(Message::Close(None)) | None => panic!("closed without a reason"),
            Some(_) => {}
        }
    }
}

#[tokio::test]
async fn messages_come_back_upper_cased_through_one_upstream_connection() {
    let w = Web::start().await;
    let addr = serve(&w).await;
    let s = w.admin().await;
    let echo_before = w.h.supervisor.stats().snapshot().connections.len();

    let mut ws = open(addr, "echo", &browser(addr, &s)).await.expect("open");
    let mut sent = 0;
    for i in 0..20 {
        let text = format!("hello {i} ünïcode");
        sent += text.len();
        ws.send(Message::text(text.clone())).await.unwrap();
        match next(&mut ws).await {
            Some(Message::Text(reply)) => assert_eq!(reply.as_str(), text.to_ascii_uppercase()),
            other => panic!("{other:?}"),
        }
    }
    ws.send(Message::binary(vec![0u8, 0xff, b'a']))
        .await
        .unwrap();
    match next(&mut ws).await {
        Some(Message::Binary(reply)) => assert_eq!(&reply[..], [0u8, 0xff, b'A']),
        other => panic!("{other:?}"),
    }
    sent += 3;
    // One connection to echo carried every message.
    let echo: Vec<_> =
        w.h.supervisor
            .stats()
            .snapshot()
            .connections
            .into_iter()
            .filter(|c| c.service == ServiceKind::Echo)
            .collect();
    assert_eq!(echo.len(), 1, "{echo:?} (before: {echo_before})");
    assert_eq!(echo[0].bytes_in, sent as u64);

    let mut udp = open(addr, "udp-echo", &browser(addr, &s))
        .await
        .expect("open");
    for i in 0..5 {
        udp.send(Message::text(format!("datagram {i}")))
            .await
            .unwrap();
        match next(&mut udp).await {
            Some(Message::Text(reply)) => assert_eq!(reply.as_str(), format!("DATAGRAM {i}")),
            other => panic!("{other:?}"),
        }
    }
    ws.close(None).await.unwrap();
    udp.close(None).await.unwrap();
    w.h.root.token.cancel();
}

#[tokio::test]
async fn refusals_come_as_http_statuses_before_any_upgrade() {
    let w = Web::start().await;
    let addr = serve(&w).await;
    let s = w.admin().await;
    w.h.supervisor
        .users()
        .add("vera", Role::Viewer, "viewer-password-1")
        .unwrap();
    let viewer = w.sign_in("vera", "viewer-password-1").await;

    let cookie = ("cookie", s.cookie.clone());
    let cases: [(&str, Headers, StatusCode); 7] = [
        (
            "echo",
            vec![cookie.clone(), ("origin", "http://evil.example".into())],
            StatusCode::FORBIDDEN,
        ),
        (
            "echo",
            vec![cookie.clone(), ("origin", "http://127.0.0.1:1".into())],
            StatusCode::FORBIDDEN,
        ),
        ("echo", vec![cookie.clone()], StatusCode::FORBIDDEN),
        (
            "echo",
            vec![("origin", format!("http://{addr}"))],
            StatusCode::UNAUTHORIZED,
        ),
        ("echo", browser(addr, &viewer), StatusCode::FORBIDDEN),
        ("time", browser(addr, &s), StatusCode::BAD_REQUEST),
        ("nope", browser(addr, &s), StatusCode::NOT_FOUND),
    ];
    for (service, headers, want) in cases {
        let got = open(addr, service, &headers).await.err();
        assert_eq!(got, Some(want), "{service} with {headers:?}");
    }
    // No socket reached echo on the way.
    let echo = w.h.supervisor.stats().snapshot().connections;
    assert!(
        echo.iter().all(|c| c.service != ServiceKind::Echo),
        "{echo:?}"
    );

    // A script's operator token needs no Origin.
    let tokens = switchboard::tokens::Tokens::open(&w.h.config.data_dir).unwrap();
    let token = tokens.create("relay", Role::Operator, None).unwrap().0;
    let mut ws = open(
        addr,
        "echo",
        &[("authorization", format!("Bearer {token}"))],
    )
    .await
    .expect("a token opens it");
    ws.send(Message::text("scripted")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text("SCRIPTED")));
    w.h.root.token.cancel();
}

#[tokio::test]
async fn a_message_over_8_kib_closes_the_socket_with_1009() {
    let w = Web::start().await;
    let addr = serve(&w).await;
    let s = w.admin().await;
    let mut ws = open(addr, "echo", &browser(addr, &s)).await.expect("open");
    ws.send(Message::binary(vec![b'x'; 8 * 1024]))
        .await
        .unwrap();
    match next(&mut ws).await {
        Some(Message::Binary(reply)) => assert_eq!(reply.len(), 8 * 1024, "8 KiB is allowed"),
        other => panic!("{other:?}"),
    }
    ws.send(Message::binary(vec![b'x'; 9 * 1024]))
        .await
        .unwrap();
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, CloseCode::Size, "{reason}");
    assert!(reason.contains("8192"), "{reason}");
    w.h.root.token.cancel();
}

#[tokio::test]
async fn a_session_past_its_message_rate_is_closed_with_1008() {
    let w = Web::start().await;
    let addr = serve(&w).await;
    let s = w.admin().await;
    let mut ws = open(addr, "echo", &browser(addr, &s)).await.expect("open");
    let limit = 600;
    let mut replies = 0;
    // The bucket holds 600 and refills 10 a second: within twice that many
    // messages, however slowly this machine runs, it empties.
    let (code, reason) = loop {
        assert!(replies < 2 * limit, "never limited");
        ws.send(Message::text("m")).await.unwrap();
        match next(&mut ws).await {
            Some(Message::Text(_)) => replies += 1,
            Some(Message::Close(Some(f))) => break (f.code, f.reason.to_string()),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(code, CloseCode::Policy, "{reason}");
    assert!(reason.contains("messages a minute"), "{reason}");
    assert!(replies >= limit, "{replies} replies before the limit");
    // The bucket is the session's: a new socket is closed at its first message.
    let mut again = open(addr, "echo", &browser(addr, &s)).await.expect("open");
    again.send(Message::text("m")).await.unwrap();
    assert_eq!(close_of(&mut again).await.0, CloseCode::Policy);
    w.h.root.token.cancel();
}

#[tokio::test]
async fn signing_out_closes_the_sessions_sockets_and_their_count_is_bounded() {
    let w = Web::start_with(|c| c.web.max_streams_per_session = 2).await;
    let addr = serve(&w).await;
    let s = w.admin().await;
    let mut first = open(addr, "echo", &browser(addr, &s)).await.expect("open");
    let _second = open(addr, "udp-echo", &browser(addr, &s))
        .await
        .expect("open");
    assert_eq!(
        open(addr, "echo", &browser(addr, &s)).await.err(),
        Some(StatusCode::TOO_MANY_REQUESTS)
    );
    first.send(Message::text("before")).await.unwrap();
    assert_eq!(next(&mut first).await, Some(Message::text("BEFORE")));

    let out = w.send(s.act("DELETE", "/api/v1/session")).await;
    assert_eq!(out.status, StatusCode::OK);
    let (code, reason) = close_of(&mut first).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("sign in"), "{reason}");
    w.h.root.token.cancel();
}

#[tokio::test]
async fn a_ping_flood_meets_the_message_limit_and_sockets_count_per_account() {
    let w = Web::start_with(|c| c.web.max_streams_per_session = 2).await;
    let addr = serve(&w).await;
    let s = w.admin().await;
    let mut ws = open(addr, "echo", &browser(addr, &s)).await.expect("open");
    // Pings, sent without reading the pongs: they are messages as far as
    // the limit goes, so the socket is closed rather than its queue of
    // pongs growing.
    let limit = 600;
    for _ in 0..2 * limit {
        if ws
            .send(Message::Ping(vec![0x70; 125].into()))
            .await
            .is_err()
        {
            break;
        }
    }
    // The server ends the socket (its close frame may be lost to the reset
    // that unread pings cause)...
    guard("the flooding socket ends", async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    // ...and the pings were charged: the session's next message is refused.
    let mut after = open(addr, "echo", &browser(addr, &s)).await.expect("open");
    after.send(Message::text("m")).await.unwrap();
    let (code, reason) = close_of(&mut after).await;
    assert_eq!(code, CloseCode::Policy, "{reason}");
    assert!(reason.contains("messages a minute"), "{reason}");
    drop(after);

    // Another session of the same account shares the account's sockets.
    let again = w.admin().await;
    // (Once the two sockets above have given their places back.)
    let _one = guard("the ended sockets' places back", async {
        loop {
            match open(addr, "echo", &browser(addr, &s)).await {
                Ok(ws) => return ws,
                Err(StatusCode::TOO_MANY_REQUESTS) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(other) => panic!("{other}"),
            }
        }
    })
    .await;
    let _two = open(addr, "echo", &browser(addr, &again))
        .await
        .expect("open");
    assert_eq!(
        open(addr, "echo", &browser(addr, &again)).await.err(),
        Some(StatusCode::TOO_MANY_REQUESTS)
    );
    w.h.root.token.cancel();
}
