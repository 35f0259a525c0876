//! The supervisor over real sockets: stop, start and restart while the
//! process runs, a port already taken, and the state every service reports.

mod common;

use common::{GUARD, Harness, guard};
use switchboard::client::EchoClient;
use switchboard::config::{Config, ListenAddr};
use switchboard::kind::ServiceKind::{self, Echo, Time, UdpEcho};
use switchboard::service::ServiceError;
use switchboard::stats::EventKind;
use switchboard::supervisor::{Deps, ServiceState, Supervisor};
use tokio::io::AsyncReadExt;

/// A loopback port that was free a moment ago.
fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn stop_closes_connections_and_start_rebinds_the_same_port_at_once() {
    let port = free_tcp_port();
    let h = Harness::start_with(|c| {
        c.service_mut(Echo).listen = format!("127.0.0.1:{port}").parse().unwrap()
    })
    .await;
    let target = h.target(Echo);
    let mut client = EchoClient::connect(&target, GUARD).await.unwrap();
    client.round_trip(b"before").await.unwrap();
    let mut raw = tokio::net::TcpStream::connect(h.addr(Echo)).await.unwrap();
    h.wait_for("two connections", |s| s.totals(Echo).active == 2)
        .await;

    h.supervisor.stop(Echo).await.unwrap();
    assert_eq!(h.supervisor.state(Echo), ServiceState::Stopped);
    let mut buf = [0u8; 8];
    assert_eq!(guard("EOF on stop", raw.read(&mut buf)).await.unwrap(), 0);
    assert_eq!(h.stats.snapshot().connections_of(Echo).count(), 0);
    assert!(
        EchoClient::connect(&target, GUARD).await.is_err(),
        "nothing listens while stopped"
    );

    // The server closed first, so its side of both connections is in
    // TIME_WAIT on this port: only SO_REUSEADDR lets this bind succeed.
    let addr = h.supervisor.start(Echo).await.unwrap();
    assert_eq!(addr.to_string(), format!("127.0.0.1:{port}"));
    let mut again = EchoClient::connect(&target, GUARD).await.unwrap();
    assert_eq!(again.round_trip(b"after").await.unwrap(), b"AFTER");
}

#[tokio::test]
async fn restart_keeps_the_address_and_reports_each_state() {
    let port = free_tcp_port();
    let udp_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = Harness::start_with(|c| {
        c.service_mut(Echo).listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.service_mut(UdpEcho).listen = format!("127.0.0.1:{udp_port}").parse().unwrap();
    })
    .await;
    let mut events = h.stats.subscribe();
    let addr = h.supervisor.restart(Echo).await.unwrap();
    assert_eq!(addr.to_string(), format!("127.0.0.1:{port}"));
    assert_eq!(h.supervisor.state(Echo), ServiceState::Running);
    let mut states = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let EventKind::ServiceState { service, state } = e.kind
            && service == Echo
        {
            states.push(state);
        }
    }
    assert_eq!(states, ["stopped", "running"]);
    // Restarting a UDP service works the same way.
    let again = h.supervisor.restart(UdpEcho).await.unwrap();
    assert_eq!(again.to_string(), format!("127.0.0.1:{udp_port}"));
}

#[tokio::test]
async fn a_taken_port_fails_that_service_only() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::ephemeral(dir.path());
    // No key: the services that need one would fail for another reason.
    config.service_mut(ServiceKind::Exec).enabled = false;
    config.service_mut(ServiceKind::Files).enabled = false;
    config.service_mut(Echo).listen = ListenAddr::Inet(tcp.local_addr().unwrap());
    config.service_mut(UdpEcho).listen = ListenAddr::Inet(udp.local_addr().unwrap());
    let deps = Deps::open(&config).unwrap();
    let root = deps.root.clone();
    let sup = Supervisor::new(&config, deps);
    let failures = sup.start_enabled().await;
    assert_eq!(failures.len(), 2);
    assert!(
        matches!(&failures[0], ServiceError::Bind { service, reason, .. } if *service == Echo && reason == "address in use")
    );
    assert_eq!(
        sup.state(Echo),
        ServiceState::Failed("address in use".into())
    );
    assert_eq!(sup.state(UdpEcho).to_string(), "failed: address in use");
    assert_eq!(sup.state(Time), ServiceState::Running);
    let statuses = sup.statuses();
    let json = serde_json::to_value(&statuses).unwrap();
    assert_eq!(json[0]["name"], "echo");
    assert_eq!(json[0]["proto"], "tcp");
    assert_eq!(json[0]["state"], "failed: address in use");
    assert_eq!(json[2]["state"], "running");
    // Once the port is free again, the same service starts.
    drop(tcp);
    sup.start(Echo).await.unwrap();
    assert_eq!(sup.state(Echo), ServiceState::Running);
    root.drain(GUARD).await;
}

#[tokio::test]
async fn disabled_services_do_not_start_until_asked() {
    let h = Harness::start_with(|c| c.service_mut(Time).enabled = false).await;
    assert_eq!(h.supervisor.state(Time), ServiceState::Stopped);
    assert!(h.supervisor.local_addr(Time).is_none());
    h.supervisor.start(Time).await.unwrap();
    assert_eq!(h.supervisor.state(Time), ServiceState::Running);
}

#[tokio::test]
async fn start_and_stop_are_idempotent_and_serialised() {
    let h = Harness::start().await;
    let first = h.supervisor.start(Echo).await.unwrap();
    assert_eq!(
        h.supervisor.start(Echo).await.unwrap(),
        first,
        "start of a running service is a no-op"
    );
    // Many concurrent restarts and stops end in a consistent state.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let sup = h.supervisor.clone();
        tasks.push(tokio::spawn(async move {
            let kind = ServiceKind::BUILTIN[i % ServiceKind::BUILTIN.len()];
            if i % 2 == 0 {
                sup.restart(kind).await.map(drop)
            } else {
                sup.stop(kind).await
            }
        }));
    }
    for t in tasks {
        guard("ops", t).await.unwrap().unwrap();
    }
    for kind in ServiceKind::BUILTIN {
        let state = h.supervisor.state(kind);
        let local = h.supervisor.local_addr(kind);
        assert!(
            matches!(
                (&state, &local),
                (ServiceState::Running, Some(_)) | (ServiceState::Stopped, None)
            ),
            "{kind}: {state} {local:?}"
        );
        h.supervisor.stop(kind).await.unwrap();
        h.supervisor.stop(kind).await.unwrap();
        assert_eq!(h.supervisor.state(kind), ServiceState::Stopped);
    }
}
