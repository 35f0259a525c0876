//! Shutdown with clients connected: in the library (every task ends) and in
//! the real binary (SIGTERM ends the process cleanly within the grace; a
//! second Ctrl-C ends it at once while a request holds the grace open).

mod common;

use common::{GUARD, Harness, guard};
use switchboard::client::{EchoClient, UdpEchoClient};
use switchboard::kind::ServiceKind::{self, Echo, UdpEcho};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    // Answered, so accepted: a connection still in the listen queue at
    // shutdown would be reset, whatever the service does.
    raw.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    guard("echo", raw.read_exact(&mut one)).await.unwrap();
    assert_eq!(&one, b"X");

    let (status, stderr) = served.terminate().await;
    assert!(status.success(), "exit status {status}");
    let mut buf = [0u8; 4];
    let read = guard("EOF", raw.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(0)),
        "the server closes idle connections cleanly (EOF, not a reset): {read:?}"
    );
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(stderr.contains("bye"), "{stderr}");
}

#[tokio::test]
async fn a_second_ctrl_c_exits_at_once_while_shutdown_waits() {
    let dir = tempfile::tempdir().unwrap();
    // A grace period far longer than the test may take, and a request that
    // holds it open: shutdown waits for requests in flight.
    let mut served = common::Served::start(
        dir.path(),
        &[ServiceKind::Echo],
        &[
            ("RUST_LOG", "switchboard=info"),
            ("NO_COLOR", "1"),
            ("SWITCHBOARD_SHUTDOWN_GRACE_MS", "600000"),
            ("SWITCHBOARD_WEB_REQUEST_TIMEOUT_MS", "3600000"),
        ],
    )
    .await;
    let web = served.web_url().trim_start_matches("http://").to_owned();
    let mut held = tokio::net::TcpStream::connect(&web).await.unwrap();
    // A sign-in whose body never comes. `100 Continue` is sent once the
    // handler asks for the body: then the request is surely in flight.
    held.write_all(
        format!(
            "POST /api/v1/session HTTP/1.1\r\nHost: {web}\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\nExpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut continued = [0u8; 25];
    guard("100 Continue", held.read_exact(&mut continued))
        .await
        .unwrap();
    assert!(
        continued.starts_with(b"HTTP/1.1 100 Continue"),
        "{:?}",
        String::from_utf8_lossy(&continued)
    );

    let pid = nix::unistd::Pid::from_raw(served.child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    served.wait_for_log("shutting down").await;
    // Echo is stopped after the second Ctrl-C is listened for.
    served.wait_for_log("stopped").await;
    let second = std::time::Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let (status, rest) = served.wait_exit().await;
    let took = second.elapsed();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("exiting without waiting"), "{rest}");
    assert!(
        !rest.contains("bye"),
        "it did not wait for the grace: {rest}"
    );
    assert!(
        took < std::time::Duration::from_secs(5),
        "exited {took:?} after the second Ctrl-C"
    );
    // The held request went with the process.
    let mut buf = [0u8; 64];
    let read = guard("the held request ends", held.read(&mut buf)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}
