//! Idle squatters cannot lock a TCP service: at `max_connections` the
//! connection idle longest (at least `evict_idle`) is closed to admit the
//! newcomer; only when none has been idle that long is the newcomer refused.

mod common;

use std::time::Duration;

use common::{GUARD, Harness, guard};
use switchboard::client::EchoClient;
use switchboard::kind::ServiceKind::Echo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

async fn harness(evict_idle: Duration) -> Harness {
    Harness::start_with(|c| {
        let limits = c.service_mut(Echo).tcp_mut();
        limits.max_connections = 3;
        limits.evict_idle = evict_idle;
    })
    .await
}

/// Reads to the end; what the server said before closing.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut said = Vec::new();
    guard("the close", stream.read_to_end(&mut said))
        .await
        .unwrap();
    String::from_utf8_lossy(&said).into_owned()
}

#[tokio::test]
async fn a_full_service_closes_its_longest_idle_connection_for_a_newcomer() {
    let evict_idle = Duration::from_millis(200);
    let h = harness(evict_idle).await;
    let mut squatter = TcpStream::connect(h.addr(Echo)).await.unwrap();
    h.wait_for("the squatter registered", |s| {
        s.connections_of(Echo).count() == 1
    })
    .await;
    // Not synchronisation: the squatter must really have been idle this long.
    tokio::time::sleep(evict_idle + Duration::from_millis(50)).await;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut c = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
        assert_eq!(c.round_trip(b"hi").await.unwrap(), b"HI");
        busy.push(c);
    }
    let mut newcomer = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
    assert_eq!(newcomer.round_trip(b"in").await.unwrap(), b"IN");
    assert_eq!(read_to_close(&mut squatter).await, "");
    for c in &mut busy {
        assert_eq!(c.round_trip(b"still").await.unwrap(), b"STILL");
    }
    assert_eq!(h.stats.totals(Echo).refused, 0);
}

#[tokio::test]
async fn with_none_idle_long_enough_the_newcomer_is_refused() {
    let h = harness(Duration::from_secs(600)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
        assert_eq!(c.round_trip(b"x").await.unwrap(), b"X");
        held.push(c);
    }
    let mut refused = TcpStream::connect(h.addr(Echo)).await.unwrap();
    let said = read_to_close(&mut refused).await;
    assert!(said.contains("at its limit of 3 connections"), "{said:?}");
    for c in &mut held {
        assert_eq!(c.round_trip(b"y").await.unwrap(), b"Y");
    }
    assert_eq!(h.stats.totals(Echo).refused, 1);
}

/// A full exec service's refusal line reaches its clients as a refusal,
/// not as a frame (`a header of 1948282726 bytes`): the command line says
/// the service turned it away and why, and exits 125 (the command did not
/// run); the dashboard's relay answers 503, to try again later.
#[tokio::test]
async fn a_full_exec_service_turns_its_clients_away_and_says_why() {
    use axum::http::StatusCode;
    use switchboard::client::CommandClient;
    use switchboard::kind::ServiceKind::Exec;
    let w = common::web::Web::start_with(|c| {
        let limits = c.service_mut(Exec).tcp_mut();
        limits.max_connections = 1;
        limits.evict_idle = Duration::from_secs(600);
    })
    .await;
    let exec = w.h.target(Exec);
    // Authenticated, so started: not a squatter the newcomer may evict.
    let _held = CommandClient::connect(&exec, common::TEST_KEY.as_bytes(), GUARD)
        .await
        .unwrap();
    let key = w.h.dir.path().join("cli-key");
    std::fs::write(&key, common::TEST_KEY).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["exec", &exec, "--key-file", key.to_str().unwrap(), "--"])
        .arg("true")
        .env_remove("SWITCHBOARD_KEY")
        .kill_on_drop(true)
        .output();
    let o = guard("switchboard exec", run).await.unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains(&format!(
            "{exec} turned the connection away: exec is at its limit of 1 connections, try \
             again later"
        )),
        "{said}"
    );
    assert_eq!(o.status.code(), Some(125), "{said}");
    let admin = w.admin().await;
    let r = w
        .send(admin.act_json(
            "POST",
            "/api/v1/exec",
            &serde_json::json!({"argv": ["true"]}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(
        r.body.contains("at its limit of 1 connections"),
        "{}",
        r.body
    );
}
