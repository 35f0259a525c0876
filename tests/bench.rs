//! `switchboard bench` as people run it: the binary against real services on
//! loopback, small counted runs (`-n`), the JSON report checked against what
//! the services counted; and against servers that answer wrongly, not at
//! all, or lose datagrams. Figures are never asserted: speed belongs to
//! bench/run.sh.

mod common;

use std::process::{Output, Stdio};

use common::{ADMIN_PASSWORD, GUARD, Harness, Served, TEST_KEY, guard};
use serde_json::Value;
use switchboard::client::EchoClient;
use switchboard::kind::ServiceKind::{self, Echo, Exec, Files, FilesClassic, Login, Time, UdpEcho};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

async fn bench(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .arg("bench")
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    guard("bench to finish", child.wait_with_output())
        .await
        .unwrap()
}

/// Runs a bench that must succeed and returns its JSON report.
async fn report(args: &[&str]) -> Value {
    // Before any `--`, after which words are the command to run.
    let mut all = args.to_vec();
    all.insert(1, "--json");
    let o = bench(&all).await;
    assert!(
        o.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn key_file(h: &Harness) -> String {
    let path = h.dir.path().join("bench-key");
    std::fs::write(&path, TEST_KEY).unwrap();
    path.to_string_lossy().into_owned()
}

fn received(h: &Harness, kind: ServiceKind) -> u64 {
    h.stats.totals(kind).bytes_in
}

#[tokio::test]
async fn counted_runs_report_exactly_what_the_services_saw() {
    let h = Harness::start().await;

    let r = report(&["echo", &h.target(Echo), "-c", "4", "-n", "300", "-s", "100"]).await;
    assert_eq!(r["requests"], 300, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["connections"], 4);
    assert_eq!(r["bytes"], 300 * 200);
    let p50 = r["latency"]["p50_us"].as_f64().unwrap();
    let max = r["latency"]["max_us"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= max, "{r}");
    // Every reply had come back, so every request had been counted.
    assert_eq!(received(&h, Echo), 30_000);

    let r = report(&["udp", &h.target(UdpEcho), "-c", "3", "-n", "200"]).await;
    assert_eq!(
        (r["requests"].as_u64(), r["errors"].as_u64()),
        (Some(200), Some(0)),
        "{r}"
    );
    assert_eq!(received(&h, UdpEcho), 200 * 64);

    let r = report(&[
        "time",
        &h.target(Time),
        "-c",
        "2",
        "-n",
        "50",
        "--format",
        "%H:%M",
    ])
    .await;
    assert_eq!(
        (r["requests"].as_u64(), r["errors"].as_u64()),
        (Some(50), Some(0)),
        "{r}"
    );
    assert_eq!(r["request"], "%H:%M");

    let key = key_file(&h);
    let r = report(&[
        "exec",
        &h.target(Exec),
        "--key-file",
        &key,
        "-c",
        "2",
        "-n",
        "20",
        "--",
        "echo",
        "hi",
    ])
    .await;
    assert_eq!(
        (r["requests"].as_u64(), r["errors"].as_u64()),
        (Some(20), Some(0)),
        "{r}"
    );
    assert_eq!(r["bytes"], 20 * 3, "each `echo hi` printed `hi\\n`: {r}");
    assert_eq!(h.stats.totals(Exec).accepted, 2);
}

#[tokio::test]
async fn uploads_are_checked_and_land_whole() {
    let h = Harness::start().await;
    let key = key_file(&h);
    let files = h.dir.path().join("files");

    let r = report(&[
        "put",
        &h.target(Files),
        "--key-file",
        &key,
        "-s",
        "3MiB",
        "-P",
        "2",
        "-n",
        "3",
    ])
    .await;
    assert_eq!(
        (r["requests"].as_u64(), r["errors"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );
    assert_eq!(r["bytes"], 3 * 3 * 1024 * 1024);
    assert!(
        r["notes"][0].as_str().unwrap().contains("SHA-256 matched"),
        "{r}"
    );
    let stored: Vec<_> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert_eq!(stored, vec![3 << 20; 3]);

    let dir = files.to_string_lossy().into_owned();
    let r = report(&[
        "put",
        &h.target(FilesClassic),
        "--classic",
        "-s",
        "1MiB",
        "-P",
        "2",
        "--verify-dir",
        &dir,
    ])
    .await;
    assert_eq!(
        (r["requests"].as_u64(), r["errors"].as_u64()),
        (Some(2), Some(0)),
        "{r}"
    );
    assert!(
        r["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("2 stored files hashed"),
        "{r}"
    );
    // Verified files are removed; the three from `files` remain, no temporaries.
    assert_eq!(std::fs::read_dir(&files).unwrap().count(), 3);
}

#[tokio::test]
async fn idle_connections_are_held_and_counted() {
    let h = Harness::start().await;
    let pid = std::process::id().to_string();
    let r = report(&[
        "idle",
        &h.target(Echo),
        "-c",
        "40",
        "--hold",
        "100ms",
        "--server-pid",
        &pid,
    ])
    .await;
    assert_eq!(r["opened"], 40, "{r}");
    assert_eq!(r["stayed_open"], 40, "{r}");
    assert!(r["server"]["rss_held_kib"].as_u64().unwrap() > 0, "{r}");
    // The service saw them all, and sees them go when the bench exits.
    h.wait_for("40 echo connections closed", |s| {
        s.totals(Echo).accepted == 40 && s.totals(Echo).active == 0
    })
    .await;

    // The login service times nobody out in 100 ms: held too, its prompt unread.
    let r = report(&["idle", &h.target(Login), "-c", "5", "--hold", "100ms"]).await;
    assert_eq!(r["stayed_open"], 5, "{r}");
}

#[tokio::test]
async fn idle_connections_spread_over_loopback_sources() {
    // A listener of the test's own that notes each connection's source
    // address: 9 connections from 3 sources come from exactly 3 addresses.
    let listener = switchboard::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while held.len() < 9 {
            let (stream, peer) = listener.accept().await.unwrap();
            held.push((stream, peer.ip()));
        }
        held
    });
    let r = report(&[
        "idle",
        &target,
        "-c",
        "9",
        "--sources",
        "3",
        "--hold",
        "50ms",
    ])
    .await;
    assert_eq!(
        (r["opened"].as_u64(), r["stayed_open"].as_u64()),
        (Some(9), Some(9)),
        "{r}"
    );
    let held = guard("9 connections accepted", accepting).await.unwrap();
    let mut sources: Vec<String> = held.iter().map(|(_, ip)| ip.to_string()).collect();
    sources.sort();
    sources.dedup();
    assert_eq!(sources, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
}

#[tokio::test]
async fn the_dashboard_route_is_benched_signed_in() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        dir.path(),
        &[Echo],
        &[("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    )
    .await;
    // The port alone, as people type it: the bench sends a proper Host.
    let web = served.web_url().rsplit(':').next().unwrap().to_owned();
    let password = dir.path().join("pw");
    std::fs::write(&password, format!("{ADMIN_PASSWORD}\n")).unwrap();
    let pw = password.to_string_lossy().into_owned();
    let r = report(&["http", &web, "--password-file", &pw, "-c", "2", "-n", "40"]).await;
    assert_eq!(
        (r["requests"].as_u64(), r["errors"].as_u64()),
        (Some(40), Some(0)),
        "{r}"
    );
    assert!(
        r["bytes"].as_u64().unwrap() > 40 * 100,
        "each answer lists the services: {r}"
    );

    std::fs::write(&password, "wrong password\n").unwrap();
    let o = bench(&["http", &web, "--password-file", &pw, "-n", "5"]).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("sign-in answered 401"),
        "{}",
        stderr(&o)
    );
    let (status, _) = served.terminate().await;
    assert!(status.success());
}

#[tokio::test]
async fn bad_targets_and_bounds_are_refused_before_any_load() {
    for (args, says) in [
        (&["echo", "10.1.2.3:9000", "-n", "1"][..], "--allow-remote"),
        (
            &["udp", "192.168.0.1:9001", "-n", "1"],
            "not a loopback address",
        ),
        (
            &["echo", "9000", "-c", "0"],
            "connections must be 1 to 20000",
        ),
        (
            &["echo", "9000", "-c", "20001"],
            "connections must be 1 to 20000",
        ),
        (&["echo", "9000", "-s", "70000"], "--size is at most 65507"),
        (&["echo", "9000", "-d", "11m"], "at most 600 s"),
        (&["echo", "9000", "-n", "0"], "requests must be 1"),
        (
            &["put", "9004", "--classic", "-P", "65"],
            "parallel must be 1 to 64",
        ),
        (
            &["idle", "9000", "-c", "200001"],
            "connections must be 1 to 200000",
        ),
        (
            &["idle", "[::1]:9000", "--sources", "2"],
            "--sources needs an IPv4 loopback target",
        ),
        (&["idle", "9000", "--sources", "65"], "65"),
        (&["echo", "no-port-here"], "no-port-here"),
    ] {
        let o = bench(args).await;
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}

#[tokio::test]
async fn wrong_silent_and_lossy_servers_are_reported_not_hung_on() {
    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let o = bench(&["echo", &port, "-c", "3", "-n", "10"]).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no connection could be opened"),
        "{}",
        stderr(&o)
    );

    // A server that answers something else (the login prompt).
    let h = Harness::start().await;
    let o = bench(&[
        "echo",
        &h.target(Login),
        "-c",
        "2",
        "-n",
        "10",
        "-s",
        "10",
        "--json",
    ])
    .await;
    assert!(!o.status.success(), "no request can succeed");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["requests"], 0);
    assert_eq!(
        r["errors"], 2,
        "each connection stops at its first wrong reply: {r}"
    );
    assert!(
        r["error_samples"][0].as_str().unwrap().contains("differs"),
        "{r}"
    );

    // A server that accepts and never answers: every request times out.
    let silent = switchboard::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let o = bench(&[
        "echo",
        &addr,
        "-c",
        "2",
        "-n",
        "10",
        "--timeout",
        "200ms",
        "--json",
    ])
    .await;
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (r["requests"].as_u64(), r["timeouts"].as_u64()),
        (Some(0), Some(2)),
        "{r}"
    );
    holder.abort();

    // A UDP server that drops the 1st, 3rd, 5th... datagram and answers the
    // others at once: the drops count as lost. The timeout is generous, so
    // a slow machine cannot turn an answered datagram into a loss (each
    // loss costs one timeout: few requests keep the test short).
    let lossy = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = lossy.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&seen);
    let server = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((len, peer)) = lossy.recv_from(&mut buf).await {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if n.is_multiple_of(2) {
                buf[..len].make_ascii_uppercase();
                let _ = lossy.send_to(&buf[..len], peer).await;
            }
        }
    });
    let r = report(&[
        "udp",
        &addr,
        "-c",
        "1",
        "-n",
        "6",
        "--timeout",
        "2s",
        "--allow-errors",
    ])
    .await;
    assert_eq!(r["requests"], 3, "{r}");
    assert_eq!(r["timeouts"], 3, "{r}");
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        6,
        "one datagram per request, no retries"
    );
    // Without --allow-errors a loss fails the run, and says how to accept it.
    let o = bench(&["udp", &addr, "-c", "1", "-n", "2", "--timeout", "2s"]).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("1 of the requests failed; --allow-errors exits 0 anyway"),
        "{}",
        stderr(&o)
    );
    server.abort();
}

#[tokio::test]
async fn a_capped_server_s_refusals_are_named_counted_and_fail_the_run() {
    // Echo's per-address cap, lowered from 64 so the test stays small.
    let h =
        Harness::start_with(|c| c.service_mut("echo").tcp_mut().max_connections_per_peer = 4).await;
    let echo = h.target(Echo);
    // The address's four slots are held by connections that have started
    // (each made a round trip), so none can be evicted for a newcomer and
    // every bench connection is refused. Were they the bench's own, echo
    // would close unstarted ones to make room and the refusals would race.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = EchoClient::connect(&echo, GUARD).await.unwrap();
        assert_eq!(c.round_trip(b"hi").await.unwrap(), b"HI");
        held.push(c);
    }
    let o = bench(&["echo", &echo, "-c", "10", "-n", "40"]).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        !o.status.success(),
        "nothing succeeded: exit status 1: {out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("refused   10 x")
                && l.ends_with("x switchboard: too many connections from 127.0.0.1, limit 4")),
        "{out}"
    );
    assert!(
        stderr(&o).contains(
            "no request succeeded (the server said: switchboard: too many connections from 127.0.0.1, limit 4)"
        ),
        "{}",
        stderr(&o)
    );
    // --allow-errors does not make a run that measured nothing a success,
    // and its report counts every refusal: each of the 10 connections
    // fails once (a refused connection ends its worker) with the server's
    // reason read.
    let o = bench(&[
        "echo",
        "--json",
        &echo,
        "-c",
        "10",
        "-n",
        "40",
        "--allow-errors",
    ])
    .await;
    assert!(!o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["errors"], 10, "{r}");
    assert_eq!(r["requests"], 0, "{r}");
    assert_eq!(r["refusals"][0]["count"], 10, "{r}");
    drop(held);
    h.wait_for("the held connections closed", |s| {
        s.totals(Echo).active == 0
    })
    .await;

    // Idle: the refused ones are not counted as held, however many (past
    // tokio's cooperative budget of 128 reads, a bench that trusted a
    // read's "not ready" took every later one for held).
    let o = bench(&["idle", &echo, "-c", "300", "--hold", "100ms", "--json"]).await;
    assert!(!o.status.success(), "296 were not held");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Echo evicts silent connections (they never sent a byte) to make room
    // for newcomers, so which of them are held at the end is the server's
    // choice; what the bench must get right is that no more than the cap
    // were held, and that every other one was counted as closed.
    let (opened, held, closed) = (
        r["opened"].as_u64().unwrap_or(0),
        r["stayed_open"].as_u64().unwrap_or(u64::MAX),
        r["closed_by_server"].as_u64().unwrap_or(0),
    );
    assert_eq!(opened, 300, "{r}");
    assert!((1..=4).contains(&held), "at most the cap of 4 held: {r}");
    assert_eq!(held + closed, 300, "{r}");
    let refused = r["refusals"][0]["count"].as_u64().unwrap_or(0);
    assert!(
        refused > 0 && refused <= closed,
        "the refusals are read and counted among the closed: {r}"
    );
    // Spread over sources, each under the cap: all held.
    let r = report(&[
        "idle",
        &echo,
        "-c",
        "10",
        "--sources",
        "3",
        "--hold",
        "100ms",
    ])
    .await;
    assert_eq!(r["stayed_open"], 10, "{r}");
}
