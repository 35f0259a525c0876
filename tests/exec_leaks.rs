//! exec under hostile clients: however a request ends, no process of the
//! command's group outlives it and the audit log says how it ended. Each
//! path is taken for real: a reset mid-output, an admin's close, a stopped
//! service, SIGTERM to the real binary, and clients that never read.
//!
//! Every command prints its process group id (`$$` of the group leader)
//! first, so the test can watch the group in /proc.

mod common;

use std::time::Duration;

use common::procs::{await_group_gone, group_members};
use common::{GUARD, Harness, TEST_KEY, guard};
use serde_json::{Value, json};
use switchboard::client::{CommandClient, CommandOutcome};
use switchboard::conn::MessageConn;
use switchboard::kind::ServiceKind::Exec;
use switchboard::wire::exec::{Command, ExecReply, ExecRequest};
use switchboard::wire::message::MAX_HEADER_LEN;
use tokio::net::TcpStream;

async fn harness(tweak: impl FnOnce(&mut switchboard::config::Config)) -> Harness {
    Harness::start_with(|c| {
        c.service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>()
            .shell = true;
        // Far more than the socket buffers hold: a client that stops
        // reading blocks the server's writes long before the cap.
        c.service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>()
            .max_output_bytes = 1 << 30;
        tweak(c);
    })
    .await
}

/// An authenticated raw connection: the test decides what is read and when.
async fn raw(h: &Harness) -> MessageConn<TcpStream> {
    let stream = TcpStream::connect(h.addr(Exec)).await.unwrap();
    let mut conn = MessageConn::new(stream);
    let refused = guard("handshake", conn.offer_handshake(TEST_KEY.as_bytes()))
        .await
        .unwrap();
    assert_eq!(refused, None);
    conn
}

async fn send_shell(conn: &mut MessageConn<TcpStream>, line: &str, timeout_ms: Option<u64>) {
    let request = ExecRequest {
        command: Command::Shell { line: line.into() },
        timeout_ms,
    };
    conn.write_message(&request, &[]).await.unwrap();
}

/// Reads the first stdout message and parses its first line: the group id.
async fn read_pgid(conn: &mut MessageConn<TcpStream>) -> u32 {
    let header = guard("first output", conn.read_header(MAX_HEADER_LEN))
        .await
        .unwrap()
        .expect("a message");
    let reply = header.message::<ExecReply>().unwrap();
    assert_eq!(reply, ExecReply::Stdout, "{:?}", header.fields);
    let mut body = vec![0; header.size as usize];
    conn.read_body(&mut body).await.unwrap();
    let text = String::from_utf8_lossy(&body);
    let pgid = text.lines().next().unwrap().trim().parse().unwrap();
    assert!(
        group_members(pgid).len() >= 2,
        "the command and its background child run"
    );
    pgid
}

/// A command that forks a sleeper and floods its output.
const FLOOD: &str = "sleep 1000 & echo $$; yes";

#[tokio::test]
async fn a_reset_mid_output_kills_the_group_and_is_audited_as_disconnected() {
    let h = harness(|_| {}).await;
    let mut conn = raw(&h).await;
    send_shell(&mut conn, FLOOD, None).await;
    let pgid = read_pgid(&mut conn).await;
    let stream = conn.stream_mut();
    socket2::SockRef::from(&*stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(conn); // RST: the server's next write fails
    await_group_gone(pgid).await;
    let lines = common::audited_commands(&h, None, 1).await;
    assert_eq!(lines[0]["outcome"], "disconnected", "{lines:?}");
}

#[tokio::test]
async fn an_admin_closing_the_connection_kills_the_group() {
    let h = harness(|_| {}).await;
    let mut conn = raw(&h).await;
    send_shell(&mut conn, "sleep 1000 & echo $$; wait", None).await;
    let pgid = read_pgid(&mut conn).await;
    let id = h.stats.snapshot().connections_of(Exec).next().unwrap().id;
    h.stats.close(id).unwrap();
    await_group_gone(pgid).await;
    let lines = common::audited_commands(&h, None, 1).await;
    assert_eq!(lines[0]["outcome"], "closed by admin", "{lines:?}");
    // And the client sees the connection end.
    let end = guard("EOF", conn.read_header(MAX_HEADER_LEN)).await;
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
}

#[tokio::test]
async fn stopping_the_service_returns_only_when_the_group_is_gone() {
    let h = harness(|_| {}).await;
    let mut conn = raw(&h).await;
    send_shell(&mut conn, FLOOD, None).await;
    let pgid = read_pgid(&mut conn).await;
    guard("stop", h.supervisor.stop(Exec)).await.unwrap();
    assert_eq!(group_members(pgid), Vec::<u32>::new(), "stop waited for it");
    let lines = common::audited_commands(&h, None, 1).await;
    assert_eq!(lines[0]["outcome"], "service stopped", "{lines:?}");
    // A restart serves again, with a free slot.
    h.supervisor.start(Exec).await.unwrap();
    let mut c = CommandClient::connect(&h.target(Exec), TEST_KEY.as_bytes(), GUARD)
        .await
        .unwrap();
    let outcome = c.run(&["echo".into()], None, |_, _| {}).await.unwrap();
    assert_eq!(outcome, CommandOutcome::Exit(0));
}

#[tokio::test]
async fn sigterm_to_the_server_waits_for_the_group_and_audits_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(
        dir.path(),
        &[Exec],
        &[
            ("SWITCHBOARD_KEY", TEST_KEY),
            ("SWITCHBOARD_EXEC_SHELL", "true"),
            ("SWITCHBOARD_ADMIN_PASSWORD", "not-used-here-1"),
        ],
    )
    .await;
    let stream = TcpStream::connect(served.addr(Exec)).await.unwrap();
    let mut conn = MessageConn::new(stream);
    assert_eq!(
        conn.offer_handshake(TEST_KEY.as_bytes()).await.unwrap(),
        None
    );
    send_shell(&mut conn, "sleep 1000 & echo $$; wait", None).await;
    let pgid = read_pgid(&mut conn).await;
    let (status, _) = served.terminate().await;
    assert!(status.success(), "{status:?}");
    assert_eq!(
        group_members(pgid),
        Vec::<u32>::new(),
        "the server exited only after the group was gone"
    );
    let audit = std::fs::read_to_string(switchboard::audit::path(dir.path())).unwrap();
    let line: Value = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["event"] == "command")
        .unwrap_or_else(|| panic!("no command line in {audit}"));
    assert_eq!(line["outcome"], "shutdown", "{line}");
}

#[tokio::test]
async fn a_client_that_never_reads_is_bound_by_the_command_timeout() {
    let h = harness(|c| {
        c.service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>()
            .max_commands = 2
    })
    .await;
    let mut pgids = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..2 {
        let mut conn = raw(&h).await;
        send_shell(&mut conn, FLOOD, Some(1_000)).await;
        // Three more pipelined behind it: they must not take a slot.
        for _ in 0..3 {
            send_shell(&mut conn, FLOOD, Some(1_000)).await;
        }
        pgids.push(read_pgid(&mut conn).await);
        conns.push(conn); // never read again
    }
    for pgid in pgids {
        await_group_gone(pgid).await;
    }
    let lines = common::audited_commands(&h, None, 2).await;
    for line in &lines[..2] {
        assert_eq!(line["outcome"], "error: timed out after 1000 ms", "{line}");
    }
    // The slots are free again for a client that behaves.
    let mut c = CommandClient::connect(&h.target(Exec), TEST_KEY.as_bytes(), GUARD)
        .await
        .unwrap();
    let outcome = guard("echo", c.run(&["echo".into()], None, |_, _| {}))
        .await
        .unwrap();
    assert_eq!(outcome, CommandOutcome::Exit(0));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_the_idle_timeout() {
    let idle = Duration::from_millis(2000);
    let h = harness(|c| c.service_mut(Exec).tcp_mut().idle_timeout = idle).await;
    let mut conn = raw(&h).await;
    let started = std::time::Instant::now();
    send_shell(&mut conn, FLOOD, None).await; // the command's own limit is 10 s
    let pgid = read_pgid(&mut conn).await;
    await_group_gone(pgid).await;
    let took = started.elapsed();
    let lines = common::audited_commands(&h, None, 1).await;
    assert_eq!(
        lines[0]["outcome"], "error: client stopped reading; command killed",
        "{lines:?}"
    );
    // Not the command's own 10 s, nor half or double the idle timeout.
    common::assert_deadline("a client that stopped reading", took, idle);
}

#[tokio::test]
async fn a_hostile_program_name_reaches_the_server_log_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(
        dir.path(),
        &[Exec],
        &[
            ("SWITCHBOARD_KEY", TEST_KEY),
            ("SWITCHBOARD_ADMIN_PASSWORD", "not-used-here-1"),
        ],
    )
    .await;
    let mut c = CommandClient::connect(&served.addr(Exec), TEST_KEY.as_bytes(), GUARD)
        .await
        .unwrap();
    let forged = "ls\n2026-01-01T00:00:00Z  INFO forged: admin signed in\u{1b}[2J\0";
    let outcome = c.run(&[forged.to_owned()], None, |_, _| {}).await.unwrap();
    assert!(
        matches!(&outcome, CommandOutcome::Error(why) if why.contains("is not allowed")),
        "{outcome:?}"
    );
    drop(c);
    let (_, log) = served.terminate().await;
    assert!(
        log.contains("forged: admin signed in"),
        "the attempt is logged: {log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01")),
        "a forged line: {log}"
    );
    assert!(!log.contains('\u{1b}') && !log.contains('\0'), "{log:?}");
}

#[tokio::test]
async fn a_browser_going_away_mid_command_takes_the_command_with_it() {
    use axum::body::Body;
    use axum::http::header;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let w = common::web::Web::start_with(|c| {
        c.service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>()
            .allow
            .push("sh".into())
    })
    .await;
    let admin = w.admin().await;
    let body = json!({"argv": ["sh", "-c", "sleep 1000 & echo $$; wait"]});
    let request = common::web::base("POST", "/api/v1/exec")
        .header(header::COOKIE, &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = guard("the stream starts", w.app.clone().oneshot(request))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.into_body();
    let first = guard("the first line", stream.frame())
        .await
        .expect("a frame")
        .unwrap()
        .into_data()
        .unwrap();
    let line: Value = serde_json::from_slice(first.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let pgid: u32 = line["data"].as_str().unwrap().trim().parse().unwrap();
    assert!(group_members(pgid).len() >= 2);
    drop(stream); // the browser goes away
    await_group_gone(pgid).await;
    let h = &w.h;
    let lines = common::audited_commands(h, None, 1).await;
    assert_eq!(lines[0]["outcome"], "disconnected", "{lines:?}");
}
