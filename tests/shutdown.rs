//! Shutdown with clients connected: in the library (every task ends) and in
//! the real binary (SIGTERM ends the process cleanly within the grace).

mod common;

use common::{GUARD, Harness, guard};
use switchboard::client::{EchoClient, UdpEchoClient};
use switchboard::kind::ServiceKind::{self, Echo, UdpEcho};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn cancelling_the_root_ends_every_task_and_closes_clients() {
    let h = Harness::start().await;
    let mut echo = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
    echo.round_trip(b"hi").await.unwrap();
    let mut raw = tokio::net::TcpStream::connect(h.addr(Echo)).await.unwrap();
    let mut udp = UdpEchoClient::connect(&h.target(UdpEcho), GUARD)
        .await
        .unwrap();
    udp.round_trip(b"hi").await.unwrap();
    h.wait_for("three peers", |s| s.connections.len() == 3)
        .await;

    assert!(
        h.root.drain(GUARD).await,
        "every task ended within the grace period"
    );
    assert!(h.root.tasks.is_empty());
    let mut buf = [0u8; 4];
    assert_eq!(guard("EOF", raw.read(&mut buf)).await.unwrap(), 0);
    assert!(
        h.stats.snapshot().connections.is_empty(),
        "no ghost connections"
    );
}

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly_with_clients_connected() {
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(
        dir.path(),
        &[ServiceKind::Echo, ServiceKind::UdpEcho, ServiceKind::Time],
        &[("RUST_LOG", "switchboard=info")],
    )
    .await;
    // The banner says where echo listens.
    let echo_addr = served.addr(ServiceKind::Echo);
    let mut client = EchoClient::connect(&echo_addr, GUARD).await.unwrap();
    assert_eq!(client.round_trip(b"up").await.unwrap(), b"UP");
    let mut raw = tokio::net::TcpStream::connect(&echo_addr).await.unwrap();

    let (status, stderr) = served.terminate().await;
    assert!(status.success(), "exit status {status}");
    let mut buf = [0u8; 4];
    assert_eq!(guard("EOF", raw.read(&mut buf)).await.unwrap_or(0), 0);
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(stderr.contains("bye"), "{stderr}");
}
