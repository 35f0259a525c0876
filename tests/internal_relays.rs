//! The dashboard's relays to our own services are marked internal like a
//! tcp-proxy's upstream connections (tests/internal_peers.rs): the Send
//! relay to echo and the files relay connect from 127.0.0.1 too, and must
//! be served while a local client holds 127.0.0.1's only slot.

mod common;

use axum::http::StatusCode;
use common::web::Web;
use serde_json::json;
use switchboard::config::Config;
use switchboard::service::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One connection per address for `names`.
fn one_per_peer(config: &mut Config, names: &[&str]) {
    for c in &mut config.services {
        if names.contains(&c.id.name())
            && let Limits::Tcp(t) = &mut c.limits
        {
            t.max_connections_per_peer = 1;
        }
    }
}

#[tokio::test]
async fn the_send_and_files_relays_hold_none_of_127_0_0_1s_slots() {
    let w = Web::start_with(|c| one_per_peer(c, &["echo", "files"])).await;
    let s = w.admin().await;
    let echo = w.h.target("echo");
    // A local client takes 127.0.0.1's one echo slot...
    let mut held = TcpStream::connect(&echo).await.expect("connect");
    held.write_all(b"mine\n").await.expect("send");
    let mut buf = [0u8; 5];
    held.read_exact(&mut buf).await.expect("echo");
    assert_eq!(&buf, b"MINE\n");
    // ...so another direct one is refused (the cap is real)...
    let mut second = TcpStream::connect(&echo).await.expect("connect");
    let _ = second.write_all(b"again\n").await;
    let mut out = Vec::new();
    let _ = common::guard("refused", second.read_to_end(&mut out)).await;
    assert!(
        !String::from_utf8_lossy(&out).contains("AGAIN"),
        "a second direct connection is refused: {out:?}"
    );
    // ...while the dashboard's Send relay is served.
    for i in 0..3 {
        let r = w
            .send(s.act_json(
                "POST",
                "/api/v1/services/echo/send",
                &json!({"text": format!("relay {i}")}),
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json()["reply"], format!("RELAY {i}"), "{}", r.body);
    }

    // The same for the files relay, with a files client holding the slot.
    let _files = switchboard::client::FilesClient::connect(
        &w.h.target("files"),
        common::TEST_KEY.as_bytes(),
        common::GUARD,
    )
    .await
    .expect("a files client");
    for _ in 0..3 {
        let r = w.send(s.act("GET", "/api/v1/files")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    drop(held);
}
