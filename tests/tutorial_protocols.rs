//! The tutorials' protocols as settings, byte by byte and against hostile
//! peers, over real loopback sockets: `exec`'s `raw`, `length-ready` and
//! `struct` framings with their limits and `auth`, `echo`'s `auth`, and
//! `login`'s answers without a newline. (The tutorials' own programs
//! against these are in tests/seeds.rs.)

mod common;

use common::{Harness, guard};
use switchboard::config::Config;
use switchboard::service::tutorial_auth::{AuthMode, TutorialAuth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const INSTANCES: &str = r#"
[services.t-raw]
kind = "exec"
listen = "127.0.0.1:0"
framing = "raw"
allow = ["echo", "seq", "sleep"]
max_output_bytes = 100
timeout_ms = 300

[services.t-ready]
kind = "exec"
listen = "127.0.0.1:0"
framing = "length-ready"
allow = ["echo"]

[services.t-struct]
kind = "exec"
listen = "127.0.0.1:0"
framing = "struct"
allow = ["echo"]
auth = "hmac-sha256"
auth_key = "another key"

[services.t-echo]
kind = "echo"
listen = "127.0.0.1:0"
auth = "hmac-md5"
auth_key = "ni hao ma"
"#;

const NAMES: [&str; 4] = ["t-raw", "t-ready", "t-struct", "t-echo"];

fn add(c: &mut Config, text: &str, names: &[&str]) {
    let extra = common::resolve_file(text).expect("the instances resolve");
    c.services.extend(
        extra
            .services
            .into_iter()
            .filter(|s| names.contains(&s.id.name())),
    );
}

async fn harness() -> Harness {
    Harness::start_with(|c| add(c, INSTANCES, &NAMES)).await
}

async fn connect(h: &Harness, name: &str) -> TcpStream {
    TcpStream::connect(h.addr(name)).await.unwrap()
}

/// One read's worth (what the tutorial's client gets from one recv).
async fn read_some(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = guard("a reply", s.read(&mut buf)).await.unwrap();
    buf.truncate(n);
    buf
}

async fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    guard("a reply", s.read_exact(&mut buf)).await.unwrap();
    buf
}

/// Answers the tutorial's challenge with `auth`.
async fn answer_challenge(s: &mut TcpStream, auth: &TutorialAuth) {
    let challenge = read_exactly(s, 32).await;
    s.write_all(&auth.answer(&challenge)).await.unwrap();
}

fn auth(mode: AuthMode, key: &str) -> TutorialAuth {
    TutorialAuth {
        mode,
        key: Some(switchboard::config::Secret::new(key)),
    }
}

#[tokio::test]
async fn length_ready_sends_the_length_waits_for_ready_then_the_output() {
    let h = harness().await;
    let mut s = connect(&h, "t-ready").await;
    s.write_all(b"echo 'two words'").await.unwrap();
    assert_eq!(read_some(&mut s).await, b"10");
    s.write_all(b"ready").await.unwrap();
    assert_eq!(read_exactly(&mut s, 10).await, b"two words\n");
    // Anything but `ready` is dropped with the output, as the tutorial's
    // server does; the connection goes on.
    s.write_all(b"echo skipped").await.unwrap();
    assert_eq!(read_some(&mut s).await, b"8");
    s.write_all(b"not ready").await.unwrap();
    s.write_all(b"echo next").await.unwrap();
    assert_eq!(read_some(&mut s).await, b"5");
    s.write_all(b"ready").await.unwrap();
    assert_eq!(read_exactly(&mut s, 5).await, b"next\n");
}

#[tokio::test]
async fn struct_sends_a_native_endian_length_after_the_challenge() {
    let h = harness().await;
    let mut s = connect(&h, "t-struct").await;
    answer_challenge(&mut s, &auth(AuthMode::HmacSha256, "another key")).await;
    s.write_all(b"echo hi").await.unwrap();
    let len = read_exactly(&mut s, 4).await;
    assert_eq!(i32::from_ne_bytes(len.try_into().unwrap()), 3);
    assert_eq!(read_exactly(&mut s, 3).await, b"hi\n");
    // A command off the allowlist is answered with why, framed the same way.
    s.write_all(b"rm -rf /").await.unwrap();
    let len = read_exactly(&mut s, 4).await;
    let len = i32::from_ne_bytes(len.try_into().unwrap());
    let why = read_exactly(&mut s, usize::try_from(len).unwrap()).await;
    assert_eq!(
        String::from_utf8(why).unwrap(),
        "`rm` is not allowed (allowed: echo; no shell)\n"
    );
}

#[tokio::test]
async fn a_wrong_answer_to_the_challenge_is_closed_unanswered() {
    let h = harness().await;
    // The second answers with MD5's 16 bytes where 32 are due: short, so
    // refused once the handshake's time (5 s) is up.
    for (name, mode, key) in [
        ("t-struct", AuthMode::HmacSha256, "wrong key"),
        ("t-struct", AuthMode::HmacMd5, "another key"),
        ("t-echo", AuthMode::HmacMd5, "wrong key"),
    ] {
        let mut s = connect(&h, name).await;
        answer_challenge(&mut s, &auth(mode, key)).await;
        let _ = s.write_all(b"echo hi").await;
        let mut rest = Vec::new();
        let _ = guard("closed", s.read_to_end(&mut rest)).await;
        assert!(rest.is_empty(), "{name} answered: {rest:?}");
    }
    h.wait_for("auth failures counted", |s| {
        s.totals("t-struct").auth_failures == 2 && s.totals("t-echo").auth_failures == 1
    })
    .await;
    // The right key on echo: the challenge, then the echo as usual.
    let mut s = connect(&h, "t-echo").await;
    answer_challenge(&mut s, &auth(AuthMode::HmacMd5, "ni hao ma")).await;
    s.write_all(b"hello").await.unwrap();
    assert_eq!(read_exactly(&mut s, 5).await, b"HELLO");
}

#[tokio::test]
async fn raw_bounds_output_time_and_bad_lines() {
    let h = harness().await;
    let mut s = connect(&h, "t-raw").await;
    s.write_all(b"seq 1 1000").await.unwrap();
    assert_eq!(
        read_some(&mut s).await,
        b"output cap of 100 bytes reached; command killed\n"
    );
    s.write_all(b"sleep 5").await.unwrap();
    assert_eq!(read_some(&mut s).await, b"timed out after 300 ms\n");
    s.write_all(b"echo 'unterminated").await.unwrap();
    let why = String::from_utf8(read_some(&mut s).await).unwrap();
    assert!(why.starts_with("cannot read the command: "), "{why}");
    // Every command was audited.
    h.supervisor.audit().flush().await;
    let log = std::fs::read_to_string(switchboard::audit::path(h.dir.path())).unwrap();
    assert!(log.contains("output cap of 100 bytes reached"), "{log}");
    assert!(log.contains("timed out after 300 ms"), "{log}");
}

#[tokio::test]
async fn auth_none_is_refused_on_a_public_address_without_tls() {
    let text = r#"
[services.t-public]
kind = "exec"
listen = "0.0.0.0:0"
framing = "raw"
"#;
    let err = common::resolve_file(text).unwrap_err();
    assert!(err.contains("services.t-public.auth"), "{err}");
    assert!(err.contains("would run commands for anyone"), "{err}");
    // With the challenge, or on loopback, it is accepted.
    let checked = text.replace(
        "framing = \"raw\"",
        "framing = \"raw\"\nauth = \"hmac-sha256\"\nauth_key = \"k\"",
    );
    assert!(common::resolve_file(&checked).is_ok());
    assert!(common::resolve_file(&text.replace("0.0.0.0", "127.0.0.1")).is_ok());
}

#[tokio::test]
async fn bad_settings_name_the_key() {
    for (text, key) in [
        ("framing = \"lines\"", "framing"),
        ("framing = \"raw\"\nauth = \"hmac-md5\"", "auth_key"),
        (
            "framing = \"raw\"\nauth = \"md5\"\nauth_key = \"k\"",
            "auth",
        ),
    ] {
        let config =
            format!("[services.t-bad]\nkind = \"exec\"\nlisten = \"127.0.0.1:0\"\n{text}\n");
        let err = common::resolve_file(&config).unwrap_err();
        assert!(err.contains(&format!("services.t-bad.{key}")), "{err}");
    }
    let err = common::resolve_file(
        "[services.l]\nkind = \"login\"\nlisten = \"127.0.0.1:0\"\nprompts = \"zh\"\n",
    )
    .unwrap_err();
    assert!(err.contains("services.l.prompts"), "{err}");
}

#[tokio::test]
async fn login_takes_answers_without_a_newline_after_a_pause() {
    let h = harness().await;
    let mut s = TcpStream::connect(h.addr("login")).await.unwrap();
    assert_eq!(read_exactly(&mut s, 10).await, b"username: ");
    // No newline: the silence ends the answer.
    s.write_all(b"admin").await.unwrap();
    assert_eq!(read_exactly(&mut s, 10).await, b"password: ");
    s.write_all(common::ADMIN_PASSWORD.as_bytes())
        .await
        .unwrap();
    let mut rest = Vec::new();
    guard("closed", s.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(rest, b"login ok\n");
}
