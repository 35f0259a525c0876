//! The exec service over real loopback sockets: the handshake, commands
//! and their output, and the hostile list (bad keys, huge lengths, silence,
//! metacharacters, runaway and escaping children, vanishing clients).

mod common;

use std::time::Duration;

use common::{GUARD, Harness, TEST_KEY, guard};
use switchboard::client::{ClientError, CommandClient, CommandOutcome, EchoClient, OutputKind};
use switchboard::kind::ServiceKind::{Echo, Exec};
use switchboard::stats::EventKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

async fn shell_harness() -> Harness {
    Harness::start_with(|c| {
        c.service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>()
            .shell = true;
        c.service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>()
            .allow = argv(&["echo", "ls", "sh"]);
    })
    .await
}

/// Runs a command, collecting stdout and stderr.
async fn collect(c: &mut CommandClient, words: &[&str]) -> (String, String, CommandOutcome) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = guard(
        "command",
        c.run(&argv(words), None, |kind, bytes| match kind {
            OutputKind::Stdout => out.extend_from_slice(bytes),
            OutputKind::Stderr => err.extend_from_slice(bytes),
        }),
    )
    .await
    .unwrap();
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
        outcome,
    )
}

async fn client(h: &Harness) -> CommandClient {
    CommandClient::connect(&h.target(Exec), TEST_KEY.as_bytes(), GUARD)
        .await
        .unwrap()
}

#[tokio::test]
async fn runs_allowed_programs_and_reports_exit_codes_on_one_connection() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    let (out, err, outcome) = collect(&mut c, &["echo", "hi", "there"]).await;
    assert_eq!(
        (out.as_str(), err.as_str(), outcome),
        ("hi there\n", "", CommandOutcome::Exit(0))
    );
    let (out, err, outcome) = collect(&mut c, &["ls", "/definitely/not/here"]).await;
    assert_eq!(out, "");
    assert!(err.contains("No such file"), "{err}");
    assert_eq!(outcome, CommandOutcome::Exit(2));
}

#[tokio::test]
async fn metacharacters_in_arguments_arrive_verbatim() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    let nasty = "; id $(id) `id` | cat > /tmp/x\nsecond line & $HOME";
    let (out, _, outcome) = collect(&mut c, &["echo", nasty]).await;
    assert_eq!(out, format!("{nasty}\n"));
    assert_eq!(outcome, CommandOutcome::Exit(0));
}

#[tokio::test]
async fn programs_off_the_allowlist_and_shell_lines_are_refused_when_off() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    let (_, _, outcome) = collect(&mut c, &["rm", "-rf", "/"]).await;
    let CommandOutcome::Error(why) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(why.starts_with("`rm` is not allowed (allowed: "), "{why}");
    let (_, _, outcome) = collect(&mut c, &["/bin/echo", "x"]).await;
    assert!(matches!(outcome, CommandOutcome::Error(w) if w.contains("not allowed")));
    let outcome = c.shell("echo hi", None, |_, _| {}).await.unwrap();
    assert!(matches!(outcome, CommandOutcome::Error(w) if w.starts_with("shell mode is off")));
    // The connection is still good after refusals.
    assert_eq!(
        collect(&mut c, &["echo", "ok"]).await.2,
        CommandOutcome::Exit(0)
    );
}

#[tokio::test]
async fn shell_mode_runs_lines_when_enabled() {
    let h = shell_harness().await;
    let mut c = client(&h).await;
    let mut out = Vec::new();
    let outcome = c
        .shell("echo a; echo b >&2; exit 3", None, |_, b| {
            out.extend_from_slice(b)
        })
        .await
        .unwrap();
    assert_eq!(outcome, CommandOutcome::Exit(3));
    assert_eq!(out.len(), 4);
}

#[tokio::test]
async fn a_wrong_key_is_rejected_and_closed() {
    let h = Harness::start().await;
    let err = CommandClient::connect(&h.target(Exec), b"wrong", GUARD)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, ClientError::AuthRejected { reason, .. } if reason.contains("wrong key")),
        "{err}"
    );
    h.wait_for("auth failure counted", |s| {
        s.totals(Exec).auth_failures == 1
    })
    .await;
    assert!(h.stats.recent_events().iter().any(|e| matches!(
        &e.kind,
        EventKind::AuthFailed { service, reason, .. } if *service == Exec && reason.contains("wrong key")
    )));
}

#[tokio::test]
async fn short_replayed_and_huge_responses_never_authenticate() {
    let h = Harness::start().await;
    // A response from another connection's challenge (a replay) fails.
    let mut first = TcpStream::connect(h.addr(Exec)).await.unwrap();
    let mut challenge = [0u8; 32];
    first.read_exact(&mut challenge).await.unwrap();
    let mut second = TcpStream::connect(h.addr(Exec)).await.unwrap();
    let mut other = [0u8; 32];
    second.read_exact(&mut other).await.unwrap();
    assert_ne!(challenge, other, "challenges are fresh");
    second
        .write_all(&switchboard::auth::respond(TEST_KEY.as_bytes(), &challenge))
        .await
        .unwrap();
    let mut reply = Vec::new();
    guard("closed", second.read_to_end(&mut reply))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("\"ok\":false"));
    // 0xFFFFFFFF where the response goes: just 32 wrong bytes, then closed.
    let mut huge = TcpStream::connect(h.addr(Exec)).await.unwrap();
    huge.read_exact(&mut challenge).await.unwrap();
    huge.write_all(&[0xff; 32]).await.unwrap();
    let mut reply = Vec::new();
    guard("closed", huge.read_to_end(&mut reply)).await.unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("\"ok\":false"));
}

#[tokio::test]
async fn silence_after_the_challenge_is_dropped_at_the_handshake_timeout() {
    let h = Harness::start().await;
    // Before the connect: the server's clock starts later, so this bounds
    // the wait from below; the upper bound is the timeout plus slack.
    let since = std::time::Instant::now();
    let mut s = TcpStream::connect(h.addr(Exec)).await.unwrap();
    let mut challenge = [0u8; 32];
    s.read_exact(&mut challenge).await.unwrap();
    s.write_all(&[1, 2, 3]).await.unwrap(); // a short response, then nothing
    let (rest, closed) = common::read_until_closed(&mut s).await;
    assert_eq!(rest, b"", "nothing said before the close");
    common::assert_closed_at_timeout(
        "silent after the challenge",
        since,
        closed,
        // docs/PROTOCOL.md: "the handshake's 5 seconds".
        Duration::from_secs(5),
    );
}

#[tokio::test]
async fn a_huge_length_prefix_after_the_handshake_closes_only_that_connection() {
    let h = Harness::start().await;
    let mut good = client(&h).await;
    let mut s = TcpStream::connect(h.addr(Exec)).await.unwrap();
    let mut challenge = [0u8; 32];
    s.read_exact(&mut challenge).await.unwrap();
    s.write_all(&switchboard::auth::respond(TEST_KEY.as_bytes(), &challenge))
        .await
        .unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).await.unwrap();
    let mut reply = Vec::new();
    guard("closed", s.read_to_end(&mut reply)).await.unwrap();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("\"ok\":true"), "{text}");
    assert!(text.contains("exceeds the 65536-byte limit"), "{text}");
    // A header that is not JSON: told, then closed.
    let mut s = TcpStream::connect(h.addr(Exec)).await.unwrap();
    s.read_exact(&mut challenge).await.unwrap();
    s.write_all(&switchboard::auth::respond(TEST_KEY.as_bytes(), &challenge))
        .await
        .unwrap();
    s.write_all(&[0, 0, 0, 3, b'a', b'b', b'c']).await.unwrap();
    let mut reply = Vec::new();
    guard("closed", s.read_to_end(&mut reply)).await.unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("not valid JSON"));
    // Others are unaffected.
    assert_eq!(collect(&mut good, &["echo", "fine"]).await.0, "fine\n");
    let mut echo = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
    assert_eq!(echo.round_trip(b"x").await.unwrap(), b"X");
}

/// Whether a process is gone (or a zombie nobody reaped yet).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

async fn await_dead(pid: u32) {
    guard("process gone", async {
        while !is_dead(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_timeout_kills_the_whole_group_even_a_forked_child_ignoring_sigterm() {
    let h = shell_harness().await;
    let mut c = client(&h).await;
    let mut out = Vec::new();
    let line = "trap '' TERM; sh -c 'trap \"\" TERM; echo $$; exec sleep 1000' & wait";
    let outcome = c
        .shell(line, Some(Duration::from_millis(500)), |_, b| {
            out.extend_from_slice(b)
        })
        .await
        .unwrap();
    assert_eq!(
        outcome,
        CommandOutcome::Error("timed out after 500 ms".into())
    );
    let pid: u32 = String::from_utf8(out).unwrap().trim().parse().unwrap();
    await_dead(pid).await;
}

#[tokio::test]
async fn endless_output_is_capped_and_killed() {
    let h = Harness::start_with(|c| {
        c.service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>()
            .shell = true;
        c.service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>()
            .max_output_bytes = 100_000;
    })
    .await;
    let mut c = client(&h).await;
    let mut total = 0;
    let outcome = c
        .shell(
            "while :; do echo yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy; done",
            None,
            |_, b| total += b.len(),
        )
        .await
        .unwrap();
    assert_eq!(total, 100_000);
    assert!(
        matches!(outcome, CommandOutcome::Error(w) if w.starts_with("output cap of 100000 bytes"))
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_command_takes_the_command_with_it() {
    let h = shell_harness().await;
    let mut c = client(&h).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let run = async move {
        c.shell("echo $$; exec sleep 1000", None, |_, b| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(String::from_utf8_lossy(b).trim().to_owned());
            }
        })
        .await
    };
    let task = tokio::spawn(run);
    let pid: u32 = guard("pid", rx).await.unwrap().parse().unwrap();
    task.abort(); // drops the client and its socket mid-command
    await_dead(pid).await;
    h.wait_for("connection gone", |s| s.connections_of(Exec).count() == 0)
        .await;
}

#[tokio::test]
async fn every_command_is_audited_with_control_characters_escaped() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    let hostile = "a\nb\u{1b}[2J\u{9b}c";
    collect(&mut c, &["echo", hostile]).await;
    collect(&mut c, &["rm", "-rf", "/"]).await;
    h.supervisor.audit().flush().await;
    let text = std::fs::read_to_string(switchboard::audit::path(h.dir.path())).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{9b}'),
        "{text}"
    );
    assert_eq!(lines[0]["argv"][1], hostile);
    assert_eq!(lines[0]["outcome"], "exit 0");
    assert_eq!(lines[0]["bytes_out"], hostile.len() as u64 + 1);
    assert!(lines[0]["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(
        lines[1]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("error: `rm` is not allowed")
    );
    let runs: Vec<_> = h
        .stats
        .recent_events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::CommandRun { argv, outcome, .. } => Some((argv[0].clone(), outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0], ("echo".to_owned(), "exit 0".to_owned()));
}

/// tests/python/design_exec_client.py, written from the protocol description alone (docs/PROTOCOL.md).
async fn python_exec(h: &Harness, key: &str, argv: &[&str]) -> std::process::Output {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/design_exec_client.py"
    );
    let port = h.addr(Exec).port().to_string();
    guard(
        "python client",
        tokio::process::Command::new("python3")
            .args([script, "127.0.0.1", &port, key])
            .args(argv)
            .output(),
    )
    .await
    .expect("python3 runs")
}

#[tokio::test]
async fn a_python_client_written_from_the_design_interoperates() {
    let h = Harness::start().await;
    let o = python_exec(&h, TEST_KEY, &["echo", "from", "python"]).await;
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from python\n");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = python_exec(&h, TEST_KEY, &["ls", "/no/such/dir"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such file"));
    let o = python_exec(&h, TEST_KEY, &["cat", "/etc/passwd"]).await;
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`cat` is not allowed"));
    let o = python_exec(&h, "wrong key", &["echo", "x"]).await;
    assert_eq!(o.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&o.stderr).contains("refused"));
}

#[tokio::test]
async fn every_byte_on_the_wire_counts_handshake_and_framing_included() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    // After the handshake alone: our 32-byte answer in; the 32-byte
    // challenge and the framed `{"ok":true}` (4 + 11 bytes) out.
    let snap = h
        .wait_for("the handshake counted", |s| {
            s.totals(Exec).bytes_out == 32 + 15
        })
        .await;
    assert_eq!(snap.totals(Exec).bytes_in, 32);
    let argv = ["echo".to_owned(), "hi".to_owned()];
    let outcome = c.run(&argv, None, |_, _| {}).await.unwrap();
    assert_eq!(outcome, CommandOutcome::Exit(0));
    // The request's frame in; output frames, the 3 output bytes and the
    // exit frame out: more than the payload alone.
    let snap = h
        .wait_for("the command counted", |s| {
            s.totals(Exec).bytes_out > 32 + 15 + 3 + 8
        })
        .await;
    let t = snap.totals(Exec);
    assert!(t.bytes_in > 32 + 4 + 20, "{t:?}");
}
