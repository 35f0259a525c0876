//! The login service over real loopback sockets: the seeds/000 dialogue
//! against real accounts, and the hostile list (huge lines, password
//! bursts, silence at either prompt).

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, GUARD, Harness, assert_closed_at_timeout, guard, read_until_closed};
use switchboard::client::{LoginClient, LoginOutcome};
use switchboard::kind::ServiceKind::Login;
use switchboard::stats::EventKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn client(h: &Harness) -> LoginClient {
    LoginClient::connect(&h.target(Login), GUARD).await.unwrap()
}

/// Reads everything until the server closes.
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    guard("server closes", stream.read_to_end(&mut out))
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn the_dialogue_byte_for_byte() {
    let h = Harness::start().await;
    let mut raw = TcpStream::connect(h.addr(Login)).await.unwrap();
    let mut prompt = [0u8; 10];
    raw.read_exact(&mut prompt).await.unwrap();
    assert_eq!(&prompt, b"username: ");
    // Both answers in one write, the second with a CRLF: lines, not reads.
    raw.write_all(format!("admin\n{ADMIN_PASSWORD}\r\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(read_all(&mut raw).await, "password: login ok\n");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer_then_a_retry() {
    let h = Harness::start().await;
    h.supervisor
        .users()
        .add(
            "alice",
            switchboard::users::Role::Operator,
            "alice password",
        )
        .unwrap();
    let mut c = client(&h).await;
    assert_eq!(
        c.attempt("alice", "not her password").await.unwrap(),
        LoginOutcome::Failed
    );
    assert_eq!(
        c.attempt("mallory", "alice password").await.unwrap(),
        LoginOutcome::Failed
    );
    // The third try on the same connection still works.
    assert_eq!(
        c.attempt("alice", "alice password").await.unwrap(),
        LoginOutcome::Ok
    );
    h.wait_for("two failures counted", |s| {
        s.totals(Login).auth_failures == 2
    })
    .await;
    assert!(
        h.stats.recent_events().iter().any(
            |e| matches!(e.kind, EventKind::AuthFailed { ref service, .. } if *service == Login)
        )
    );
    // The audit log names real accounts only; never a password.
    h.supervisor.audit().flush().await;
    let log = std::fs::read_to_string(switchboard::audit::path(h.dir.path())).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert_eq!(lines[0]["user"], "alice");
    assert_eq!(
        lines[1]["user"],
        serde_json::Value::Null,
        "unknown user not logged"
    );
    assert_eq!(lines[2]["ok"], true);
    assert!(!log.contains("password"), "{log}");
}

#[tokio::test]
async fn after_max_tries_the_connection_closes() {
    let h = Harness::start_with(|c| {
        c.service_mut("login")
            .settings_mut::<switchboard::service::login::Settings>()
            .max_tries = 2
    })
    .await;
    let mut raw = TcpStream::connect(h.addr(Login)).await.unwrap();
    raw.write_all(b"admin\nx\nadmin\ny\nadmin\nz\n")
        .await
        .unwrap();
    assert_eq!(
        read_all(&mut raw).await,
        "username: password: login failed\nusername: password: login failed\n"
    );
}

#[tokio::test]
async fn a_megabyte_line_is_refused_after_256_bytes_and_others_are_unaffected() {
    let h = Harness::start().await;
    let mut raw = TcpStream::connect(h.addr(Login)).await.unwrap();
    let mut prompt = [0u8; 10];
    raw.read_exact(&mut prompt).await.unwrap();
    let line = vec![b'a'; 1 << 20];
    // The server stops reading at 256 bytes and closes: our write may fail.
    let (mut rd, mut wr) = raw.split();
    let (_, reply) = tokio::join!(wr.write_all(&line), async {
        let mut out = Vec::new();
        let _ = guard("closed", rd.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    });
    assert_eq!(reply, "error: line longer than 256 bytes\n");
    // The same in the password field.
    let mut raw = TcpStream::connect(h.addr(Login)).await.unwrap();
    raw.write_all(b"admin\n").await.unwrap();
    raw.write_all(&[b'p'; 300]).await.unwrap();
    assert_eq!(
        read_all(&mut raw).await,
        "username: password: error: line longer than 256 bytes\n"
    );
    let mut c = client(&h).await;
    assert_eq!(
        c.attempt("admin", ADMIN_PASSWORD).await.unwrap(),
        LoginOutcome::Ok
    );
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_is_cut_off_per_peer() {
    let h = Harness::start_with(|c| {
        c.service_mut("login")
            .settings_mut::<switchboard::service::login::Settings>()
            .max_failures_per_minute = 4;
        c.service_mut("login")
            .settings_mut::<switchboard::service::login::Settings>()
            .max_tries = 100;
    })
    .await;
    let mut c = client(&h).await;
    for _ in 0..4 {
        assert_eq!(
            c.attempt("admin", "wrong guess").await.unwrap(),
            LoginOutcome::Failed
        );
    }
    // Out of tries for now: even the right password is not asked for.
    let LoginOutcome::Refused(said) = c.attempt("admin", ADMIN_PASSWORD).await.unwrap() else {
        panic!("not rate limited");
    };
    assert!(
        said.starts_with("too many failed logins from 127.0.0.1; try again in"),
        "{said}"
    );
    // A new connection from the same address is refused the same way.
    let mut c = client(&h).await;
    assert!(matches!(
        c.attempt("admin", ADMIN_PASSWORD).await.unwrap(),
        LoginOutcome::Refused(_)
    ));
    let snap = h
        .wait_for("refusals", |s| s.totals(Login).refused == 2)
        .await;
    assert_eq!(snap.totals(Login).auth_failures, 4);
}

#[tokio::test]
async fn accounts_added_while_running_can_sign_in() {
    let h = Harness::start().await;
    // A second handle on the same file, as `switchboard user add` would be.
    let cli = switchboard::users::Users::open(h.dir.path()).unwrap();
    cli.add("bob", switchboard::users::Role::Viewer, "bob's password")
        .unwrap();
    let mut c = client(&h).await;
    assert_eq!(
        c.attempt("bob", "bob's password").await.unwrap(),
        LoginOutcome::Ok
    );
}

#[tokio::test]
async fn a_silent_client_is_closed_at_the_idle_timeout_at_either_prompt() {
    let idle = Duration::from_millis(1000);
    let h = Harness::start_with(|c| c.service_mut(Login).tcp_mut().idle_timeout = idle).await;
    // Connects and never says a word.
    let since = Instant::now();
    let mut raw = TcpStream::connect(h.addr(Login)).await.unwrap();
    let (said, closed) = read_until_closed(&mut raw).await;
    assert_eq!(String::from_utf8_lossy(&said), "username: ");
    assert_closed_at_timeout("silent at the user prompt", since, closed, idle);
    // Gives a name, then nothing.
    let mut raw = TcpStream::connect(h.addr(Login)).await.unwrap();
    let since = Instant::now();
    raw.write_all(b"admin\n").await.unwrap();
    let (said, closed) = read_until_closed(&mut raw).await;
    assert_eq!(String::from_utf8_lossy(&said), "username: password: ");
    assert_closed_at_timeout("silent at the password prompt", since, closed, idle);
    let snap = h
        .wait_for("both closed", |s| s.totals(Login).active == 0)
        .await;
    assert_eq!(snap.totals(Login).accepted, 2);
    assert_eq!(
        snap.totals(Login).auth_failures,
        0,
        "silence is no failed login"
    );
}
