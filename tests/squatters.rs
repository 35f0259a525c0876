//! Connections that never start cannot hold a TCP service full: 1,100
//! half-open TLS handshakes (reconnecting when closed) against a TLS echo
//! at its default 1,024 connections, while 50 real TLS clients come and go.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Harness, guard};
use switchboard::client::EchoClient;
use switchboard::config::ServiceTls;
use switchboard::kind::ServiceKind::Echo;
use switchboard::tls::{ClientTls, Trust};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

const SQUATTERS: usize = 1_100;
const REAL: usize = 50;
/// Each squatter opens at most this many connections in all: the test's
/// sockets stay bounded (well under the 20,000 fds CI allows).
const RECONNECTS: usize = 4;

/// One squatter: from 127.0.0.2, sends the first bytes of a ClientHello and
/// sits; when closed, comes back, `RECONNECTS` times in all.
async fn squat(addr: SocketAddr) {
    for _ in 0..RECONNECTS {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let Ok(mut s) = socket.connect(addr).await else {
            continue;
        };
        if s.write_all(&[0x16, 0x03, 0x01]).await.is_err() {
            continue;
        }
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_tls_handshakes_leave_real_clients_served() {
    switchboard::service::listen::raise_fd_limit();
    let h = Harness::start_with(|c| {
        let echo = c.service_mut(Echo);
        echo.tls = ServiceTls::Shared;
        // One hostile address may fill the service: the test is about the
        // service cap, not the per-address one.
        echo.tcp_mut().max_connections_per_peer = 2 * SQUATTERS;
    })
    .await;
    let addr = h.addr(Echo);
    let mut squatters = tokio::task::JoinSet::new();
    for _ in 0..SQUATTERS {
        squatters.spawn(squat(addr));
    }
    h.wait_for("the squatters fill the service", |s| {
        s.connections_of(Echo).count() >= 1_000
    })
    .await;
    let cert = h.dir.path().join("tls-cert.pem");
    let tls = std::sync::Arc::new(ClientTls::new(&Trust::Ca(cert)).unwrap());
    let started = Instant::now();
    let mut real = tokio::task::JoinSet::new();
    for i in 0..REAL {
        let (target, tls) = (h.target(Echo), std::sync::Arc::clone(&tls));
        real.spawn(async move {
            let mut c = EchoClient::connect_tls(&target, Duration::from_secs(10), Some(&tls))
                .await
                .ok()?;
            let text = format!("real client {i}");
            let reply = c.round_trip(text.as_bytes()).await.ok()?;
            (reply == text.to_uppercase().into_bytes()).then_some(())
        });
    }
    let mut served = 0;
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            done = real.join_next() => match done {
                Some(r) => served += usize::from(matches!(r, Ok(Some(())))),
                None => break,
            },
        }
    }
    let took = started.elapsed();
    eprintln!(
        "{served} of {REAL} real TLS clients served in {took:?} beside {SQUATTERS} half-open handshakes"
    );
    assert!(served >= 45, "only {served} of {REAL} served within 10 s");
    squatters.abort_all();
    guard("the squatters end", async {
        while squatters.join_next().await.is_some() {}
    })
    .await;
}
