//! Unit tests for the live stats registry: connection guards, byte counts, histograms and the change signal.

use super::*;
use crate::kind::ServiceKind;

#[test]
fn type_names_match_the_json_tag() {
    let stats = Stats::new();
    drop(stats.open(&ServiceKind::Echo.into(), Proto::Tcp, "a"));
    stats.refused(&ServiceKind::Login.into(), "b", "r");
    stats.service_state(&ServiceKind::Time.into(), "running");
    stats.auth_failed(&ServiceKind::Exec.into(), "c", "wrong key");
    for event in stats.recent_events() {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], event.kind.type_name());
        assert_eq!(json["service"], event.kind.service_name());
    }
}

#[test]
fn close_fires_the_connections_token_and_refuses_udp_peers() {
    let stats = Stats::new();
    let tcp = stats.open(&ServiceKind::Echo.into(), Proto::Tcp, "a");
    let udp = stats.open(&ServiceKind::UdpEcho.into(), Proto::Udp, "b");
    let token = tcp.close_requested();
    assert!(!token.is_cancelled());
    assert_eq!(stats.close(udp.id()), Err(CloseError::NotTcp));
    assert_eq!(stats.close(tcp.id()), Ok(()));
    assert!(token.is_cancelled());
    let gone = tcp.id();
    drop(tcp);
    assert_eq!(stats.close(gone), Err(CloseError::NotFound));
}

#[test]
fn bytes_are_counted_per_connection_and_per_service() {
    let stats = Stats::new();
    let a = stats.open(&ServiceKind::Echo.into(), Proto::Tcp, "a");
    let b = stats.open(&ServiceKind::Echo.into(), Proto::Tcp, "b");
    a.add_in(10);
    a.add_out(10);
    b.add_in(5);
    let snap = stats.snapshot();
    let t = snap.totals(ServiceKind::Echo);
    assert_eq!(
        (t.accepted, t.active, t.bytes_in, t.bytes_out),
        (2, 2, 15, 10)
    );
    let ca = snap.connections.iter().find(|c| c.id == a.id()).unwrap();
    assert_eq!((ca.bytes_in, ca.bytes_out), (10, 10));
    assert_eq!(stats.totals(ServiceKind::Time).accepted, 0);
}

#[test]
fn dropping_the_guard_removes_the_connection_and_reports_its_bytes() {
    let stats = Stats::new();
    let mut events = stats.subscribe();
    let g = stats.open(&ServiceKind::UdpEcho.into(), Proto::Udp, "p");
    g.add_in(3);
    g.add_out(4);
    let id = g.id();
    drop(g);
    assert!(stats.snapshot().connections.is_empty());
    assert_eq!(stats.totals(ServiceKind::UdpEcho).active, 0);
    let opened = events.try_recv().unwrap();
    assert!(matches!(opened.kind, EventKind::Opened { id: i, .. } if i == id));
    let closed = events.try_recv().unwrap();
    assert!(matches!(
        closed.kind,
        EventKind::Closed { id: i, bytes_in: 3, bytes_out: 4, .. } if i == id
    ));
    assert!(closed.seq > opened.seq);
}

#[test]
fn a_panic_while_holding_a_guard_still_removes_it() {
    let stats = Stats::new();
    let s = stats.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _g = s.open(&ServiceKind::Echo.into(), Proto::Tcp, "x");
        panic!("connection task failed");
    }));
    assert!(result.is_err());
    assert!(stats.snapshot().connections.is_empty());
}

#[test]
fn history_holds_per_second_deltas_and_is_bounded() {
    let stats = Stats::new();
    let g = stats.open(&ServiceKind::Echo.into(), Proto::Tcp, "a");
    g.add_in(100);
    stats.sample();
    g.add_in(7);
    g.add_out(9);
    stats.sample();
    let h = stats.history(ServiceKind::Echo);
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].bytes_in, h[0].accepted, h[0].active), (100, 1, 1));
    assert_eq!((h[1].bytes_in, h[1].bytes_out, h[1].accepted), (7, 9, 0));
    for _ in 0..HISTORY_LEN + 5 {
        stats.sample();
    }
    assert_eq!(stats.history(ServiceKind::Echo).len(), HISTORY_LEN);
}

#[test]
fn recent_events_are_bounded_and_ordered() {
    let stats = Stats::new();
    for _ in 0..RECENT_EVENTS + 10 {
        stats.refused(&ServiceKind::Echo.into(), "p", "test");
    }
    let recent = stats.recent_events();
    assert_eq!(recent.len(), RECENT_EVENTS);
    assert!(recent.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        stats.totals(ServiceKind::Echo).refused,
        RECENT_EVENTS as u64 + 10
    );
}

#[tokio::test]
async fn wait_for_wakes_on_change() {
    let stats = Stats::new();
    let s = stats.clone();
    let waiter = tokio::spawn(async move { s.wait_for(|snap| snap.connections.len() == 1).await });
    let _g = stats.open(&ServiceKind::Echo.into(), Proto::Tcp, "a");
    let snap = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.connections[0].peer, "a");
}

#[test]
fn events_serialize_with_a_type_tag() {
    let stats = Stats::new();
    stats.service_state(&ServiceKind::Time.into(), "failed: address in use");
    let json = serde_json::to_value(&stats.recent_events()[0]).unwrap();
    assert_eq!(json["type"], "service_state");
    assert_eq!(json["service"], "time");
    assert_eq!(json["state"], "failed: address in use");
}

#[test]
fn a_retired_instance_drops_its_history_and_restarts_from_zero() {
    let stats = Stats::new();
    let id: ServiceId = ServiceKind::Echo.into();
    let g = stats.open(&id, Proto::Tcp, "a");
    g.add_in(100);
    stats.sample();
    assert_eq!(stats.buckets("echo", tiers::MINUTES, 0).len(), 1);
    stats.retire(&id);
    assert!(stats.history("echo").is_empty());
    assert!(stats.buckets("echo", tiers::TEN_SECONDS, 0).is_empty());
    g.add_in(5); // while removed: moves the baseline only
    stats.sample();
    assert!(
        stats.history("echo").is_empty(),
        "a removed instance is not sampled"
    );
    stats.register(&id);
    g.add_in(7);
    stats.sample();
    let h = stats.history("echo");
    assert_eq!(h.iter().map(|s| s.bytes_in).collect::<Vec<_>>(), [7]);
    let minutes = stats.buckets("echo", tiers::MINUTES, 0);
    assert_eq!(minutes.iter().map(|b| b.bytes_in).sum::<u64>(), 7);
}
