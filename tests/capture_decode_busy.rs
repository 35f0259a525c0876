//! `GET /api/v1/connections/{id}/capture/decoded` is bounded in how many
//! decodings run at once: with two held (a failpoint gate, in a test binary
//! of its own because the gate is process-wide), a third request is told
//! to come back (503, saying why) instead of taking another blocking
//! thread and another copy of the capture; once they end, it is served.

mod common;

use axum::http::StatusCode;
use common::web::Web;
use switchboard::failpoint::{Pause, gate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_decoding_at_once_is_refused_with_503_and_served_after() {
    let w = Web::start_with(|c| c.service_mut("echo").capture.on = true).await;
    let admin = w.admin().await;
    let mut echo = tokio::net::TcpStream::connect(w.h.addr("echo"))
        .await
        .unwrap();
    echo.write_all(b"hello\n").await.unwrap();
    let mut back = [0u8; 6];
    echo.read_exact(&mut back).await.unwrap();
    let snap =
        w.h.wait_for("the connection is listed", |s| {
            s.connections_of("echo").count() == 1
        })
        .await;
    let id = snap.connections_of("echo").next().expect("one").id;
    let path = format!("/api/v1/connections/{id}/capture/decoded");

    let held = gate(Pause::CaptureDecode);
    let (wr, ar, pr) = (&w, &admin, path.as_str());
    let refused = async move {
        common::guard("two decodings are held", async {
            held.reached().await;
            held.reached().await;
        })
        .await;
        let third = wr.send(ar.get(pr)).await;
        // Each release lets one held decoding go on (dropping the gate
        // releases once more).
        held.release();
        drop(held);
        third
    };
    let (first, second, third) = common::guard("the three requests", async {
        tokio::join!(w.send(admin.get(&path)), w.send(admin.get(&path)), refused)
    })
    .await;
    assert_eq!(
        third.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        third.body
    );
    assert!(
        third.body.contains("2 captures are being decoded"),
        "{}",
        third.body
    );
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    // Their places were given back: the next one is served.
    let again = w.send(admin.get(&path)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(
        again.json()["messages"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        again.body
    );
}
