//! One spoofed datagram cannot make two UDP services answer each other
//! forever: not two of one process (their addresses are known), not two of
//! different processes (their replies are recognised coming back). A
//! client that repeats itself still gets every answer.
//!
//! The spoofed datagram is written with a raw socket (root), its source the
//! other service's address, as an attacker on the network would.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::{GUARD, Harness, guard};
use switchboard::client::UdpEchoClient;
use switchboard::kind::ServiceKind::{self, Time, UdpEcho};

/// Sends `payload` to `to` with the source address `from`.
fn spoof(from: SocketAddr, to: SocketAddr, payload: &[u8]) {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let raw = match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255))) {
        Ok(s) => s,
        Err(e) => panic!(
            "spoofing a source address needs a raw socket (run as root): {e}. \
             These tests cannot be skipped; they are the proof of the loop guard"
        ),
    };
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (from.ip(), to.ip()) else {
        panic!("IPv4 only");
    };
    let udp_len = u16::try_from(8 + payload.len()).unwrap();
    let total = 20 + udp_len;
    let mut packet = vec![0x45, 0];
    packet.extend_from_slice(&total.to_be_bytes());
    // id, flags (don't fragment), TTL, protocol UDP, checksum (the kernel's)
    packet.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    packet.extend_from_slice(&from.port().to_be_bytes());
    packet.extend_from_slice(&to.port().to_be_bytes());
    packet.extend_from_slice(&udp_len.to_be_bytes());
    packet.extend_from_slice(&[0, 0]); // no UDP checksum (allowed on IPv4)
    packet.extend_from_slice(payload);
    let sent = raw
        .send_to(&packet, &SockAddr::from(SocketAddr::new(to.ip(), 0)))
        .unwrap();
    assert_eq!(sent, packet.len());
}

/// Datagrams `kind` has received in `h`, given they were all `len` bytes.
fn datagrams(h: &Harness, kind: ServiceKind, len: u64) -> u64 {
    h.stats.totals(kind).bytes_in / len
}

#[tokio::test]
async fn two_processes_udp_echo_loop_ends_within_ten_datagrams() {
    // Two harnesses are two supervisors: neither knows the other's address.
    let (a, b) = (Harness::start().await, Harness::start().await);
    spoof(a.addr(UdpEcho), b.addr(UdpEcho), b"hello");
    guard("one side drops the loop", async {
        // A dropped datagram is counted without an event: polled.
        while a.stats.totals(UdpEcho).refused + b.stats.totals(UdpEcho).refused == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    // Nothing is still in flight: each side answers a marker, in order.
    for h in [&a, &b] {
        let mut c = UdpEchoClient::connect(&h.target(UdpEcho), GUARD)
            .await
            .unwrap();
        assert_eq!(c.round_trip(b"m").await.unwrap(), b"M");
    }
    // Less the one-byte marker each.
    let total =
        (a.stats.totals(UdpEcho).bytes_in - 1) / 5 + (b.stats.totals(UdpEcho).bytes_in - 1) / 5;
    assert!(total <= 10, "the loop ran {total} datagrams");
    assert!(total >= 3, "the loop ran at all ({total} datagrams)");
}

#[tokio::test]
async fn two_processes_time_and_udp_echo_loop_ends_within_ten_datagrams() {
    let (a, b) = (Harness::start().await, Harness::start().await);
    // time answers a format without `%` with itself; udp-echo upper-cases it.
    spoof(b.addr(UdpEcho), a.addr(Time), b"hello");
    guard("one side drops the loop", async {
        while a.stats.totals(Time).refused + b.stats.totals(UdpEcho).refused == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    let total = datagrams(&a, Time, 5) + datagrams(&b, UdpEcho, 5);
    assert!(total <= 10, "the loop ran {total} datagrams");
}

#[tokio::test]
async fn in_one_process_a_service_never_answers_another() {
    let h = Harness::start().await;
    spoof(h.addr(Time), h.addr(UdpEcho), b"hello");
    guard("the spoofed datagram is dropped", async {
        while h.stats.totals(UdpEcho).refused == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    let mut c = UdpEchoClient::connect(&h.target(Time), GUARD)
        .await
        .unwrap();
    c.round_trip(b"%Y").await.unwrap(); // time is in order after it
    assert_eq!(
        h.stats.totals(Time).bytes_in,
        2,
        "time never heard from udp-echo"
    );
}

#[tokio::test]
async fn a_client_repeating_a_message_gets_every_answer() {
    let h = Harness::start().await;
    let mut c = UdpEchoClient::connect(&h.target(UdpEcho), GUARD)
        .await
        .unwrap();
    for _ in 0..50 {
        assert_eq!(c.round_trip(b"hello").await.unwrap(), b"HELLO");
    }
    assert_eq!(h.stats.totals(UdpEcho).refused, 0);
}
