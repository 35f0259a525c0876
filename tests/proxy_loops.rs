//! Proxies cannot loop: a proxy whose upstream is itself or another proxy
//! of the same process is refused (at the `upstream` field over the API),
//! and a ring of udp-proxies across two processes — where nothing marks
//! the datagram — ends within 256 upstream sockets a side.

mod common;

use std::time::{Duration, Instant};

use common::web::Web;
use common::{GUARD, Harness, guard};
use serde_json::json;
use switchboard::client::EchoClient;
use switchboard::config::ServiceConfig;
use switchboard::kind::ServiceKind::Echo;

/// A proxy instance of `kind`, as a config file would declare it.
fn proxy(name: &str, kind: &str, listen: &str, upstream: &str) -> ServiceConfig {
    let text = format!(
        "[services.{name}]\nkind = \"{kind}\"\nlisten = \"{listen}\"\nupstream = \"{upstream}\"\n"
    );
    let config = common::resolve_file(&text).unwrap();
    config.service(name).unwrap().clone()
}

#[tokio::test]
async fn proxies_of_one_process_pointed_at_themselves_or_each_other_are_refused() {
    let h = Harness::start().await;
    for kind in ["udp-proxy", "tcp-proxy"] {
        let a = format!("{kind}-a");
        h.supervisor
            .add(proxy(&a, kind, "127.0.0.1:0", "127.0.0.1:9"))
            .await
            .unwrap();
        let at = h.target(&a);
        let err = h
            .supervisor
            .add(proxy(&format!("{kind}-b"), kind, "127.0.0.1:0", &at))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("would loop"), "{err}");
        let own = format!("{kind}-self");
        let err = h
            .supervisor
            .add(proxy(&own, kind, "127.0.0.1:47999", "localhost:47999"))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(&format!("that is {own}'s own")),
            "{err}"
        );
    }
    // In front of one of our other services is a use, not a loop.
    h.supervisor
        .add(proxy("front", "tcp-proxy", "127.0.0.1:0", &h.target(Echo)))
        .await
        .unwrap();
    let mut c = EchoClient::connect(&h.target("front"), GUARD)
        .await
        .unwrap();
    assert_eq!(c.round_trip(b"through").await.unwrap(), b"THROUGH");
}

#[tokio::test]
async fn the_services_api_refuses_a_proxy_pair_at_upstream() {
    let w = Web::start().await;
    let s = w.admin().await;
    let first = json!({"name": "ring-a", "kind": "udp-proxy",
        "settings": {"listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}});
    let r = w.send(s.act_json("POST", "/api/v1/services", &first)).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let second = json!({"name": "ring-b", "kind": "udp-proxy",
        "settings": {"listen": "127.0.0.1:0", "upstream": w.h.target("ring-a")}});
    let r = w
        .send(s.act_json("POST", "/api/v1/services", &second))
        .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    assert_eq!(r.json()["field"], "upstream", "{}", r.body);
    assert!(w.h.supervisor.id("ring-b").is_none(), "not kept");
}

/// Open peers (one upstream socket each) of instance `name` in `h`.
fn peers(h: &Harness, name: &str) -> usize {
    h.stats.snapshot().connections_of(name).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_of_udp_proxies_across_two_processes_ends_within_256_sockets_a_side() {
    // Two harnesses are two supervisors: neither knows the other's address.
    let (a, b) = (Harness::start().await, Harness::start().await);
    b.supervisor
        .add(proxy("ring-b", "udp-proxy", "127.0.0.1:0", "127.0.0.1:9"))
        .await
        .unwrap();
    let at_b = b.target("ring-b");
    a.supervisor
        .add(proxy("ring-a", "udp-proxy", "127.0.0.1:0", &at_b))
        .await
        .unwrap();
    let at_a = a.target("ring-a");
    // Close the ring: b's proxy again, on the same port, towards a's.
    b.supervisor.remove("ring-b").await.unwrap();
    b.supervisor
        .add(proxy("ring-b", "udp-proxy", &at_b, &at_a))
        .await
        .unwrap();

    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"one datagram", &at_a).await.unwrap();
    guard("the ring stops at a new-peer limit", async {
        let mut changed = a.stats.changed();
        while a.stats.totals("ring-a").refused + b.stats.totals("ring-b").refused == 0 {
            // Dropped datagrams are counted without an event: polled.
            let _ = tokio::time::timeout(Duration::from_millis(20), changed.changed()).await;
        }
    })
    .await;
    // Meanwhile, the processes answer their other clients at once.
    let started = Instant::now();
    let mut echo = EchoClient::connect(&a.target(Echo), GUARD).await.unwrap();
    assert_eq!(echo.round_trip(b"still").await.unwrap(), b"STILL");
    let took = started.elapsed();
    let seen = (peers(&a, "ring-a"), peers(&b, "ring-b"));
    // Not synchronisation: a window in which a ring still going would grow.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = (peers(&a, "ring-a"), peers(&b, "ring-b"));
    eprintln!("ring ended: {seen:?} then {after:?} peers (a, b); an echo round trip took {took:?}");
    assert!(after.0 <= 257 && after.1 <= 257, "{after:?}");
    assert_eq!(seen, after, "the ring has stopped");
    assert!(took < Duration::from_millis(500), "{took:?}");
}
