//! The Captures page: for admins only (captures may hold passwords), it
//! lists a closed connection's capture with Inspect, pcapng and Replay,
//! and says what to do when there is none.

mod common;

use axum::http::StatusCode;
use common::guard;
use common::web::Web;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn the_captures_page_is_for_admins_and_lists_closed_captures() {
    let w = Web::start_with(|c| c.service_mut("echo").capture.on = true).await;
    let (viewer, operator, admin) = w.roles().await;
    let empty = w.send(admin.get("/captures")).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(
        empty.body.contains("id=\"captures-empty\""),
        "{}",
        empty.body
    );
    assert!(empty.body.contains("id=\"nav-captures\""));

    let mut s = TcpStream::connect(w.h.addr("echo")).await.unwrap();
    s.write_all(b"<b>hi</b>").await.unwrap();
    let mut got = [0u8; 9];
    guard("the echo", s.read_exact(&mut got)).await.unwrap();
    drop(s);
    let snap =
        w.h.wait_for("the capture closed", |s| {
            s.connections_of("echo").count() == 0
        })
        .await;
    drop(snap);
    let id = w.h.stats.captures().list()[0].info().id;
    let page = w.send(admin.get("/captures")).await;
    assert_eq!(page.status, StatusCode::OK);
    for want in [
        format!("data-capture-id=\"{id}\""),
        format!("href=\"/inspect/{id}\""),
        format!("href=\"/api/v1/connections/{id}/capture.pcapng\""),
        format!("data-replay=\"{id}\""),
        "data-open=\"false\"".to_owned(),
    ] {
        assert!(page.body.contains(&want), "{want}: {}", page.body);
    }
    // The bytes are not on the page (only their count), markup or not.
    assert!(!page.body.contains("<b>hi"), "{}", page.body);

    for who in [&viewer, &operator] {
        let r = w.send(who.get("/captures")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = w.send(who.get("/api/v1/captures")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let r = w.send(common::web::get("/captures")).await;
    assert!(r.status.is_redirection(), "{}", r.status);
}
