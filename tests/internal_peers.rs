//! Our own relays and proxies are not one peer: a tcp-proxy in front of
//! our echo opens its upstream connections from 127.0.0.1, and they must
//! not fill echo's per-address cap for every other local client.

mod common;

use common::{GUARD, Harness};
use switchboard::client::EchoClient;
use switchboard::kind::ServiceKind::Echo;

/// Adds a tcp-proxy named `front` in front of echo, with `extra` config lines.
async fn add_front(h: &Harness, extra: &str) {
    let text = format!(
        "[services.front]\nkind = \"tcp-proxy\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\n{extra}",
        h.target(Echo)
    );
    let front = common::resolve_file(&text)
        .unwrap()
        .service("front")
        .unwrap()
        .clone();
    h.supervisor.add(front).await.unwrap();
}

#[tokio::test]
async fn a_proxy_to_our_own_echo_holds_none_of_127_0_0_1s_slots() {
    let h =
        Harness::start_with(|c| c.service_mut(Echo).tcp_mut().max_connections_per_peer = 2).await;
    add_front(&h, "").await;
    let mut through = Vec::new();
    for i in 0..4 {
        let mut c = EchoClient::connect(&h.target("front"), GUARD)
            .await
            .unwrap();
        let said = format!("via proxy {i}");
        assert_eq!(
            c.round_trip(said.as_bytes()).await.unwrap(),
            said.to_uppercase().as_bytes()
        );
        through.push(c);
    }
    // 127.0.0.1's own two slots are still free for a direct client.
    for _ in 0..2 {
        let mut c = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
        assert_eq!(c.round_trip(b"direct").await.unwrap(), b"DIRECT");
        through.push(c);
    }
    assert_eq!(h.stats.totals(Echo).refused, 0);
}

/// A tcp-proxy that sends a PROXY header is not one of "ours": in front of
/// our own echo behind `accept_proxy`, the echo reads the header (not as
/// data) and counts the client it names.
#[tokio::test]
async fn a_proxy_sending_a_header_to_our_own_echo_is_read_as_a_proxy() {
    use common::web::{connect_from, loopback};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::start_with(|c| {
        c.service_mut(Echo).tcp_mut().accept_proxy =
            Some(switchboard::settings::TrustedProxies::loopback());
    })
    .await;
    add_front(&h, "proxy_protocol = \"v1\"\n").await;
    let front_addr: std::net::SocketAddr = h.target("front").parse().unwrap();
    let mut c = connect_from(loopback(7), front_addr).await;
    c.write_all(b"through a header\n").await.unwrap();
    let mut got = vec![0u8; 17];
    common::guard("the echo through the proxy", c.read_exact(&mut got))
        .await
        .unwrap();
    assert_eq!(got, b"THROUGH A HEADER\n");
    h.wait_for("the client the header names in echo's table", |s| {
        s.connections
            .iter()
            .any(|c| c.service.name() == "echo" && c.peer.starts_with("127.0.0.7:"))
    })
    .await;
}
