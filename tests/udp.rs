//! The UDP services (udp-echo and time) over real loopback sockets:
//! behaviour, peers in the registry, and the limits on who gets an answer.
//!
//! Several tests need to know that the server has handled every datagram
//! sent so far without sleeping: they send a marker from a second socket and
//! await its reply. The service reads one socket in order, so by then every
//! earlier datagram was handled and any reply to it is already queued.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{GUARD, Harness, guard};
use switchboard::client::{ClientError, TimeClient, UdpEchoClient};
use switchboard::kind::ServiceKind::{Time, UdpEcho};
use switchboard::stats::EventKind;
use tokio::net::UdpSocket;

async fn socket_to(target: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.connect(target).await.unwrap();
    s
}

/// Sends a marker from a fresh socket and waits for its reply (see module docs).
async fn barrier(target: SocketAddr) {
    let s = socket_to(target).await;
    s.send(b"marker").await.unwrap();
    let mut buf = [0u8; 64];
    guard("marker reply", s.recv(&mut buf)).await.unwrap();
}

/// Replies already waiting on `s`, without blocking.
fn queued_replies(s: &UdpSocket) -> usize {
    let mut buf = vec![0u8; 65_536];
    std::iter::from_fn(|| s.try_recv(&mut buf).ok()).count()
}

#[tokio::test]
async fn udp_echo_replies_upper_cased_to_the_sender() {
    let h = Harness::start().await;
    let mut c = UdpEchoClient::connect(&h.target(UdpEcho), GUARD)
        .await
        .unwrap();
    assert_eq!(
        c.round_trip("hi ünï".as_bytes()).await.unwrap(),
        "HI üNï".as_bytes()
    );
    assert_eq!(c.round_trip(b"").await.unwrap(), b"");
}

#[tokio::test]
async fn a_64k_datagram_comes_back_whole() {
    let h = Harness::start().await;
    let mut c = UdpEchoClient::connect(&h.target(UdpEcho), GUARD)
        .await
        .unwrap();
    let big = vec![b'q'; 65_507];
    let reply = c.round_trip(&big).await.unwrap();
    assert_eq!(reply.len(), big.len());
    assert!(reply.iter().all(|&b| b == b'Q'));
    let too_big = vec![0u8; 65_508];
    assert!(matches!(
        c.round_trip(&too_big).await,
        Err(ClientError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn time_formats_with_the_pattern_sent() {
    let h = Harness::start().await;
    let mut c = TimeClient::connect(&h.target(Time), GUARD).await.unwrap();
    let default = c.query("").await.unwrap();
    // %Y-%m-%d-%X: 2026-11-22-04:28:39
    assert_eq!(default.len(), 19, "{default}");
    assert_eq!(default.as_bytes()[10], b'-');
    let year = c.query("%Y").await.unwrap();
    assert!(year.parse::<u32>().unwrap() >= 2024);
    assert_eq!(c.query("literal %% text").await.unwrap(), "literal % text");
}

#[tokio::test]
async fn time_answers_bad_formats_with_an_error_and_keeps_serving() {
    let h = Harness::start().await;
    let mut c = TimeClient::connect(&h.target(Time), GUARD).await.unwrap();
    assert_eq!(
        c.query("%").await.unwrap(),
        "error: lone `%` at the end of the format"
    );
    assert!(
        c.query("%Q")
            .await
            .unwrap()
            .starts_with("error: unsupported specifier `%Q`")
    );
    // chrono accepts `%#z` but can only parse with it: named as such, not
    // mistaken for a reply that is too long.
    assert_eq!(
        c.query("%H %#z").await.unwrap(),
        "error: specifier `%#z` can only be used to read a time, not to format one"
    );
    let long = "%c".repeat(120);
    assert_eq!(
        c.query(&long).await.unwrap(),
        "error: reply would exceed 512 bytes"
    );
    let huge = "a".repeat(65_507);
    assert_eq!(
        c.query(&huge).await.unwrap(),
        "error: format too long (65507 bytes, max 256)"
    );
    let s = socket_to(h.addr(Time)).await;
    s.send(b"\xff\xfe%H").await.unwrap();
    let mut buf = [0u8; 128];
    let n = guard("reply", s.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"error: format is not UTF-8");
    assert!(!c.query("%H:%M").await.unwrap().starts_with("error"));
}

#[tokio::test]
async fn peers_are_listed_with_their_bytes_and_expire() {
    let ttl = Duration::from_millis(200);
    let h = Harness::start_with(|c| c.service_mut(UdpEcho).udp_mut().peer_ttl = ttl).await;
    // The registry's own events, awaited in order: a snapshot taken late on
    // a busy machine could miss a peer that came and went within the TTL.
    let mut events = h.stats.subscribe();
    let socket = socket_to(h.addr(UdpEcho)).await;
    socket.send(b"12345").await.unwrap();
    let mut buf = [0u8; 16];
    let n = guard("reply", socket.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"12345");
    let me = socket.local_addr().unwrap().to_string();
    let listed = guard("the peer listed", async {
        loop {
            if let EventKind::Opened { id, service, peer } = events.recv().await.unwrap().kind
                && service == UdpEcho
            {
                return (id, peer);
            }
        }
    })
    .await;
    assert_eq!(listed.1, me);
    let (bytes_in, bytes_out, duration_ms) = guard("the peer expired", async {
        loop {
            if let EventKind::Closed {
                id,
                bytes_in,
                bytes_out,
                duration_ms,
                ..
            } = events.recv().await.unwrap().kind
                && id == listed.0
            {
                return (bytes_in, bytes_out, duration_ms);
            }
        }
    })
    .await;
    assert_eq!((bytes_in, bytes_out), (5, 5));
    assert!(
        duration_ms >= ttl.as_millis() as u64,
        "expired after {duration_ms} ms, before its {ttl:?} TTL"
    );
    h.wait_for("peer gone", |s| s.connections_of(UdpEcho).count() == 0)
        .await;
    let t = h.stats.totals(UdpEcho);
    assert_eq!((t.accepted, t.bytes_in, t.bytes_out), (1, 5, 5));
}

#[tokio::test]
async fn each_source_is_rate_limited() {
    let h = Harness::start_with(|c| {
        let l = c.service_mut(UdpEcho).udp_mut();
        l.peer_burst = 5;
        l.peer_rate = 1;
    })
    .await;
    let flood = socket_to(h.addr(UdpEcho)).await;
    for _ in 0..20 {
        flood.send(b"x").await.unwrap();
    }
    barrier(h.addr(UdpEcho)).await;
    assert_eq!(
        queued_replies(&flood),
        5,
        "the burst is answered, the rest dropped"
    );
    assert_eq!(h.stats.totals(UdpEcho).refused, 15);
}

#[tokio::test]
async fn new_peers_beyond_max_peers_get_no_answer() {
    let h = Harness::start_with(|c| c.service_mut(UdpEcho).udp_mut().max_peers = 2).await;
    let a = socket_to(h.addr(UdpEcho)).await;
    let b = socket_to(h.addr(UdpEcho)).await;
    let mut buf = [0u8; 8];
    for s in [&a, &b] {
        s.send(b"x").await.unwrap();
        guard("reply", s.recv(&mut buf)).await.unwrap();
    }
    let c = socket_to(h.addr(UdpEcho)).await;
    c.send(b"x").await.unwrap();
    // `a` is known: its reply proves `c`'s datagram was handled.
    a.send(b"y").await.unwrap();
    guard("reply", a.recv(&mut buf)).await.unwrap();
    assert_eq!(queued_replies(&c), 0);
}

#[tokio::test]
async fn datagrams_from_reflector_ports_are_never_answered() {
    let h = Harness::start().await;
    // Ports below 1024 need privileges to bind; these well-known higher
    // ones (SSDP, WS-Discovery, mDNS, CoAP, memcached) don't.
    let mut tried = 0;
    for port in [1900u16, 3702, 5353, 5683, 11211] {
        let Ok(s) = UdpSocket::bind(("127.0.0.1", port)).await else {
            continue;
        };
        tried += 1;
        s.connect(h.addr(UdpEcho)).await.unwrap();
        s.send(b"loop?").await.unwrap();
        barrier(h.addr(UdpEcho)).await;
        assert_eq!(queued_replies(&s), 0, "answered source port {port}");
    }
    assert!(tried > 0, "no reflector port could be bound for the test");
    // A privileged port: binding one needs root (or CAP_NET_BIND_SERVICE),
    // which the test machines have.
    match UdpSocket::bind("127.0.0.1:19").await {
        Ok(s) => {
            s.connect(h.addr(Time)).await.unwrap();
            s.send(b"%H").await.unwrap();
            barrier(h.addr(Time)).await;
            assert_eq!(queued_replies(&s), 0, "answered chargen's port");
        }
        Err(e) => {
            common::skip_allowed(
                "PRIVILEGED",
                &format!("cannot bind the privileged UDP port 127.0.0.1:19: {e}"),
            );
        }
    }
}

/// Our own services are recognised by their whole address, so another
/// host (here another loopback address) that happens to use udp-echo's port
/// is answered. That they never answer each other is tests/udp_loops.rs.
#[tokio::test]
async fn udp_echo_s_port_on_another_address_is_someone_else() {
    let h = Harness::start().await;
    let echo_port = h.addr(UdpEcho).port();
    let other = UdpSocket::bind(("127.0.0.2", echo_port)).await.unwrap();
    other.connect(h.addr(Time)).await.unwrap();
    other.send(b"%H").await.unwrap();
    let mut buf = [0u8; 16];
    let n = guard("time answers", other.recv(&mut buf)).await.unwrap();
    assert_eq!(n, 2, "an hour: {:?}", &buf[..n]);
}

#[tokio::test]
async fn udp_echo_listens_on_ipv6() {
    if let Err(e) = std::net::UdpSocket::bind("[::1]:0")
        && common::skip_allowed("IPV6", &format!("cannot bind the IPv6 loopback [::1]: {e}"))
    {
        return;
    }
    let h =
        Harness::start_with(|c| c.service_mut(UdpEcho).listen = "[::1]:0".parse().unwrap()).await;
    let mut c = UdpEchoClient::connect(&h.target(UdpEcho), GUARD)
        .await
        .unwrap();
    assert_eq!(c.round_trip(b"v6").await.unwrap(), b"V6");
}

#[tokio::test]
async fn the_client_says_clearly_when_no_udp_service_listens() {
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let mut c = UdpEchoClient::connect(&port.to_string(), GUARD)
        .await
        .unwrap();
    let err = c.round_trip(b"anyone?").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no UDP service at 127.0.0.1:{port} (port unreachable) — is `switchboard serve` running?"
        )
    );
}
