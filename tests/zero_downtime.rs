//! Zero downtime under work in flight, over the real binary: a running
//! exec command, a 256 MiB upload to `files` and 50 UDP peers of
//! `udp-echo` go through a reload (of another instance), a binary upgrade
//! (`switchboard upgrade`, to the same binary) and a reload of the new
//! process. The command's output must be whole and its exit status right,
//! the upload's SHA-256 (ours, the server's, the stored file's) must match,
//! and every UDP peer's datagram after each step must be answered.
//!
//! The command and the upload are held open by gates the test opens only
//! after the last step, so they are provably in flight through all three
//! (no timing assumed). Measured on the 2-core test machine shared by five
//! builds (load average ~8.8), debug build: the whole test takes 3.7–4.4 s,
//! the upload (held half-way through the three steps) 2.9–3.7 s of it.
//!
//! This test found that the new process of an upgrade swept the old one's
//! running upload's temporary file at start (`store::sweep` now leaves the
//! temporaries a running upload holds locked).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{TEST_KEY, guard};
use sha2::{Digest, Sha256};
use switchboard::client::{CommandClient, CommandOutcome, FilesClient, OutputKind};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;

/// The upload's size.
const UPLOAD: u64 = 256 << 20;
/// UDP peers.
const PEERS: usize = 50;
/// Bounds the long parts (the upload, the drain) where [`guard`]'s 20 s
/// would be too short on a loaded debug build; never what the test waits for.
const LONG: Duration = Duration::from_secs(180);

/// The config: exec may run `sh` (the test's command), files takes the
/// upload, udp-echo answers, echo-2 is what the reloads change.
fn config(echo2_idle: u64) -> String {
    format!(
        "shutdown_grace_ms = 120000\nkey = \"{TEST_KEY}\"\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [services.time]\nenabled = false\n[services.files-classic]\nenabled = false\n\
         [services.login]\nenabled = false\n\
         [services.echo]\nlisten = \"127.0.0.1:0\"\n\
         [services.udp-echo]\nlisten = \"127.0.0.1:0\"\n\
         [services.exec]\nlisten = \"127.0.0.1:0\"\nallow = [\"sh\"]\ntimeout_ms = 300000\n\
         [services.files]\nlisten = \"127.0.0.1:0\"\nidle_timeout_ms = 300000\n\
         [services.echo-2]\nkind = \"echo\"\nlisten = \"127.0.0.1:0\"\nidle_timeout_ms = {echo2_idle}\n"
    )
}

/// The process an upgrade starts from: `serve` with [`config`] (echo-2
/// idle after 60 s) in `dir`, with `env` added, once its banner is out; its
/// config file, data folder and ready file.
async fn serve_old(
    dir: &Path,
    env: &[(&str, &str)],
) -> (tokio::process::Child, PathBuf, PathBuf, serde_json::Value) {
    let config_path = dir.join("switchboard.toml");
    let data = dir.join("data");
    std::fs::write(&config_path, config(60_000)).expect("config");
    let ready_file = dir.join("ready.json");
    let mut old = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .arg("--data-dir")
        .arg(&data)
        .arg("--ready-file")
        .arg(&ready_file)
        .env("SWITCHBOARD_ADMIN_PASSWORD", "zero-downtime-password")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    common::read_banner(&mut old).await;
    let ready = serde_json::from_slice(&std::fs::read(&ready_file).expect("ready")).expect("JSON");
    (old, config_path, data, ready)
}

/// Kills a process we started (by pid) if the test ends early.
struct Reap(Option<nix::unistd::Pid>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

async fn switchboard(args: &[&str], config: &Path, data: &Path) -> (bool, String) {
    let out = tokio::time::timeout(
        LONG,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .output(),
    )
    .await
    .expect("the command ends")
    .expect("the command runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// One datagram from each peer, each answered (upper-cased) within the
/// guard; no resend.
async fn udp_round(peers: &[UdpSocket], round: &str) {
    for (i, p) in peers.iter().enumerate() {
        p.send(format!("peer-{i}-{round}").as_bytes())
            .await
            .expect("send");
    }
    for (i, p) in peers.iter().enumerate() {
        let mut buf = [0u8; 128];
        let n = tokio::time::timeout(Duration::from_secs(10), p.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("peer {i} got no answer {round}"))
            .expect("recv");
        assert_eq!(
            &buf[..n],
            format!("PEER-{i}-{}", round.to_uppercase()).as_bytes(),
            "peer {i} {round}"
        );
    }
}

/// The upload's bytes: a pattern that differs at every offset (a dropped,
/// doubled or swapped block changes the hash), in 1 MiB blocks.
fn block(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(1 << 20);
    while out.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_upload_and_udp_peers_go_through_reload_and_upgrade() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (mut old, config_path, data, ready) = serve_old(dir.path(), &[]).await;
    let addr = |name: &str| {
        ready["services"][name]["addr"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} runs: {ready}"))
            .to_owned()
    };

    // The command: ticks until the gate file exists, then a known block
    // of output and exit status 7.
    let gate = dir.path().join("gate");
    let script = format!(
        "i=0; while [ ! -e '{}' ]; do echo tick-$i; i=$((i+1)); sleep 0.05; done; seq 1 20000; exit 7",
        gate.display()
    );
    let mut exec = CommandClient::connect(&addr("exec"), TEST_KEY.as_bytes(), LONG)
        .await
        .expect("exec connects");
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let command = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut started_tx = Some(started_tx);
        let outcome = exec
            .run(
                &["sh".to_owned(), "-c".to_owned(), script],
                None,
                |kind, chunk| {
                    assert_eq!(
                        kind,
                        OutputKind::Stdout,
                        "{}",
                        String::from_utf8_lossy(chunk)
                    );
                    out.extend_from_slice(chunk);
                    if let Some(tx) = started_tx.take() {
                        let _ = tx.send(());
                    }
                },
            )
            .await;
        (outcome, out)
    });
    guard("the command's first output", started)
        .await
        .expect("output");

    // The upload: half of it, then held until the gate opens.
    let (body, mut feed) = tokio::io::duplex(1 << 20);
    let (half_tx, half) = tokio::sync::oneshot::channel();
    let (open_tx, open) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let mut hash = Sha256::new();
        let blocks = UPLOAD >> 20;
        for i in 0..blocks {
            if i == blocks / 2 {
                let _ = half_tx.send(());
                open.await.expect("the gate opens");
                // (`open` is consumed; the loop never comes back here.)
                return finish(&mut feed, &mut hash, i, blocks).await;
            }
            let b = block(i);
            hash.update(&b);
            feed.write_all(&b).await.expect("the upload reads");
        }
        unreachable!("the gate is half-way")
    });
    let mut files = FilesClient::connect(&addr("files"), TEST_KEY.as_bytes(), LONG)
        .await
        .expect("files connects");
    let upload = tokio::spawn(async move {
        let started = Instant::now();
        let stored = files.put("big.bin", UPLOAD, body, |_| {}).await;
        (stored, started.elapsed())
    });
    guard("half the upload sent", half).await.expect("half");

    let mut peers = Vec::new();
    for _ in 0..PEERS {
        let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        s.connect(addr("udp-echo")).await.expect("connect");
        peers.push(s);
    }
    udp_round(&peers, "before").await;

    // (a) A reload that changes another instance, in the old process.
    std::fs::write(&config_path, config(30_000)).expect("config");
    let (ok, out) = switchboard(&["reload"], &config_path, &data).await;
    assert!(ok, "reload: {out}");
    assert!(out.contains("echo-2"), "echo-2 restarted: {out}");
    udp_round(&peers, "after-reload").await;

    // (c) The upgrade to the same binary.
    let (ok, out) = switchboard(&["upgrade"], &config_path, &data).await;
    assert!(ok, "upgrade: {out}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    let new_pid = nix::unistd::Pid::from_raw(answer["pid"].as_u64().expect("pid") as i32);
    let reap = Reap(Some(new_pid));
    udp_round(&peers, "after-upgrade").await;

    // A reload of the new process.
    std::fs::write(&config_path, config(45_000)).expect("config");
    let (ok, out) = switchboard(&["reload"], &config_path, &data).await;
    assert!(ok, "reload of the new process: {out}");
    udp_round(&peers, "after-second-reload").await;

    // Both still in flight: let them finish.
    assert!(!command.is_finished(), "the command was held by its gate");
    assert!(!upload.is_finished(), "the upload was held by its gate");
    std::fs::write(&gate, b"").expect("the command's gate");
    let _ = open_tx.send(());

    let (outcome, output) = tokio::time::timeout(LONG, command)
        .await
        .expect("the command ends")
        .expect("task");
    assert_eq!(
        outcome.expect("no connection error"),
        CommandOutcome::Exit(7)
    );
    check_output(&String::from_utf8(output).expect("text"));

    let ours = tokio::time::timeout(LONG, writer)
        .await
        .expect("the writer ends")
        .expect("task");
    let (stored, took) = tokio::time::timeout(LONG, upload)
        .await
        .expect("the upload ends")
        .expect("task");
    let stored = stored.expect("the upload completes");
    assert_eq!(stored.size, UPLOAD);
    assert_eq!(stored.sha256, ours, "the server's SHA-256 is ours");
    assert_eq!(
        file_sha256(&data.join("files/big.bin")),
        ours,
        "the stored file"
    );
    eprintln!("upload of 256 MiB (held half-way through the steps): {took:?}");

    // The old process drained and exited cleanly; the new one serves.
    let status = tokio::time::timeout(LONG, old.wait())
        .await
        .expect("the old process exits once drained")
        .expect("wait");
    assert!(status.success(), "{status}");
    udp_round(&peers, "at-the-end").await;
    nix::sys::signal::kill(new_pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    drop(reap);
}

async fn finish(
    feed: &mut tokio::io::DuplexStream,
    hash: &mut Sha256,
    from: u64,
    blocks: u64,
) -> String {
    for i in from..blocks {
        let b = block(i);
        hash.update(&b);
        feed.write_all(&b).await.expect("the upload reads");
    }
    feed.shutdown().await.expect("end of body");
    switchboard::wire::hex(&hash.clone().finalize())
}

/// The command's output is whole: consecutive ticks from 0, then 1..=20000.
fn check_output(text: &str) {
    let mut lines = text.lines().peekable();
    let mut ticks = 0;
    while let Some(l) = lines.next_if(|l| l.starts_with("tick-")) {
        assert_eq!(l, format!("tick-{ticks}"), "ticks in order, none lost");
        ticks += 1;
    }
    assert!(ticks > 0, "the command ticked while held");
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), 20_000, "the whole final block");
    for (i, l) in rest.iter().enumerate() {
        assert_eq!(*l, (i + 1).to_string());
    }
}

fn file_sha256(path: &PathBuf) -> String {
    let mut hash = Sha256::new();
    let mut f = std::fs::File::open(path).expect("the stored file");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).expect("read it");
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    switchboard::wire::hex(&hash.finalize())
}

/// `GET /metrics` from the dashboard at `web`: the value of `metric` for
/// the instance `service`.
async fn metric(web: &str, metric: &str, service: &str) -> u64 {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(web)
        .await
        .expect("the dashboard");
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("request");
    let mut out = Vec::new();
    guard("/metrics", s.read_to_end(&mut out))
        .await
        .expect("answer");
    let text = String::from_utf8_lossy(&out);
    let prefix = format!("{metric}{{service=\"{service}\",");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
}

/// The live counters go on across an upgrade: the new process adds the old
/// one's totals (what `/metrics` shows) to its own, so a counter does not
/// reset; the history is carried the same way (the stats unit test checks
/// it sample by sample).
#[tokio::test]
async fn live_counters_carry_over_an_upgrade() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().expect("a temp dir");
    let (mut old, config_path, data, ready) = serve_old(dir.path(), &[]).await;
    let echo = ready["services"]["echo"]["addr"]
        .as_str()
        .expect("echo")
        .to_owned();
    let web = ready["web"]
        .as_str()
        .expect("web")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    for i in 0..20 {
        let mut s = tokio::net::TcpStream::connect(&echo)
            .await
            .expect("connect");
        s.write_all(format!("line {i:02}\n").as_bytes())
            .await
            .expect("send");
        let mut got = [0u8; 8];
        s.read_exact(&mut got).await.expect("echo");
    }
    guard("the old process counted them", async {
        while metric(&web, "switchboard_received_bytes_total", "echo").await < 160 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let before = metric(&web, "switchboard_connections_total", "echo").await;
    assert_eq!(before, 20);

    let (ok, out) = switchboard(&["upgrade"], &config_path, &data).await;
    assert!(ok, "upgrade: {out}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    let new_pid = nix::unistd::Pid::from_raw(answer["pid"].as_u64().expect("pid") as i32);
    let _reap = Reap(Some(new_pid));
    // Only the new process answers once the old one is gone.
    let status = tokio::time::timeout(LONG, old.wait())
        .await
        .expect("the old process exits")
        .expect("wait");
    assert!(status.success(), "{status}");
    assert_eq!(
        metric(&web, "switchboard_connections_total", "echo").await,
        20,
        "carried over, not reset"
    );
    assert_eq!(
        metric(&web, "switchboard_received_bytes_total", "echo").await,
        160
    );
    assert!(
        !data.join("upgrade-stats.json").exists(),
        "read and removed"
    );
    let mut s = tokio::net::TcpStream::connect(&echo)
        .await
        .expect("connect");
    s.write_all(b"line 20\n").await.expect("send");
    let mut got = [0u8; 8];
    s.read_exact(&mut got).await.expect("echo");
    guard("the new process counts on from there", async {
        while metric(&web, "switchboard_connections_total", "echo").await < 21 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    nix::sys::signal::kill(new_pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
}

/// `switchboard upgrade` answers only once the new process holds the
/// control socket: a reload sent right after it reaches the new process,
/// even when the new one is slow to bind (held here by a failpoint), not
/// the old one, which takes no more requests ("the server is shutting
/// down").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_right_after_an_upgrade_reaches_the_new_process() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // Inherited by the new process: its control socket comes 1.5 s after
    // its ready.
    let (mut old, config_path, data, _) = serve_old(
        dir.path(),
        &[("SWITCHBOARD_FAILPOINT_CONTROL_BIND_DELAY_MS", "1500")],
    )
    .await;

    let (ok, out) = switchboard(&["upgrade"], &config_path, &data).await;
    assert!(ok, "upgrade: {out}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    let new_pid = nix::unistd::Pid::from_raw(answer["pid"].as_u64().expect("pid") as i32);
    let reap = Reap(Some(new_pid));

    std::fs::write(&config_path, config(30_000)).expect("config");
    let (ok, out) = switchboard(&["reload"], &config_path, &data).await;
    assert!(ok, "the reload right after the upgrade: {out}");
    assert!(
        out.contains("echo-2"),
        "the new process restarted echo-2: {out}"
    );

    let status = tokio::time::timeout(LONG, old.wait())
        .await
        .expect("the old process exits once drained")
        .expect("wait");
    assert!(status.success(), "{status}");
    nix::sys::signal::kill(new_pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    drop(reap);
}
