//! Reload over the real binary: `switchboard reload` re-reads the config
//! file and applies only what changed. Unchanged instances keep every
//! connection; a changed one keeps its socket (no refused connect) while
//! its old connections drain; a broken config changes nothing and the
//! command exits non-zero with the reason.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::guard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OFF: [&str; 6] = [
    "udp-echo",
    "time",
    "exec",
    "files",
    "files-classic",
    "login",
];

/// A config with echo and echo-2 on ephemeral ports; `echo_idle` and
/// `other_idle` are their idle timeouts (what the tests change).
fn config(echo_idle: u64, other_idle: u64) -> String {
    let mut text = String::from("shutdown_grace_ms = 3000\n[web]\nlisten = \"127.0.0.1:0\"\n");
    for name in OFF {
        text.push_str(&format!("[services.{name}]\nenabled = false\n"));
    }
    text.push_str(&format!(
        "[services.echo]\nlisten = \"127.0.0.1:0\"\nmax_connections_per_peer = 1000\nidle_timeout_ms = {echo_idle}\n\
         [services.echo-2]\nkind = \"echo\"\nlisten = \"127.0.0.1:0\"\nidle_timeout_ms = {other_idle}\n"
    ));
    text
}

struct Server {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
    config: PathBuf,
    ready: serde_json::Value,
}

impl Server {
    async fn start(text: &str) -> Server {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("switchboard.toml"), text).expect("the config file");
        Server::start_in(dir).await
    }

    /// Starts the binary on the config file and data folder in `dir`.
    async fn start_in(dir: tempfile::TempDir) -> Server {
        let config = dir.path().join("switchboard.toml");
        let ready_file = dir.path().join("ready.json");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--ready-file")
            .arg(&ready_file)
            .env("SWITCHBOARD_ADMIN_PASSWORD", "reload-test-password")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        common::read_banner(&mut child).await;
        let ready = serde_json::from_slice(&std::fs::read(&ready_file).expect("ready file"))
            .expect("the ready file is JSON");
        Server {
            child,
            dir,
            config,
            ready,
        }
    }

    fn addr(&self, name: &str) -> String {
        self.ready["services"][name]["addr"]
            .as_str()
            .expect("an address")
            .to_owned()
    }

    fn web(&self) -> String {
        self.ready["web"]
            .as_str()
            .expect("the dashboard runs")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    }

    /// Stops the server with SIGTERM (a graceful stop) and gives back its folder.
    async fn stop(mut self) -> tempfile::TempDir {
        let pid = nix::unistd::Pid::from_raw(self.child.id().expect("running") as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
        let status = guard("the exit", self.child.wait()).await.expect("wait");
        assert!(status.success(), "{status}");
        self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Rewrites the config and runs `switchboard reload`: its exit status
    /// and output.
    async fn reload(&self, text: &str) -> (bool, String) {
        std::fs::write(&self.config, text).expect("the config file");
        reload_cmd(&self.config, &self.data_dir()).await
    }
}

async fn reload_cmd(config: &Path, data_dir: &Path) -> (bool, String) {
    let out = guard(
        "switchboard reload",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("reload")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .output(),
    )
    .await
    .expect("reload runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// One echo round trip; an error for anything but the upper-cased line.
async fn round_trip(s: &mut TcpStream, n: u64) -> std::io::Result<()> {
    let line = format!("ping-{n}\n");
    s.write_all(line.as_bytes()).await?;
    let mut got = vec![0; line.len()];
    s.read_exact(&mut got).await?;
    if got != line.to_uppercase().as_bytes() {
        return Err(std::io::Error::other(format!("bad echo {got:?}")));
    }
    Ok(())
}

/// `n` connections to `addr`, each doing round trips until `stop`: the
/// round trips done and the failures (each failure ends its connection).
fn clients(
    addr: &str,
    n: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(u64, Option<String>)>> {
    (0..n)
        .map(|_| {
            let (addr, stop) = (addr.to_owned(), Arc::clone(&stop));
            let trips = Arc::clone(&TRIPS);
            tokio::spawn(async move {
                let mut s = match TcpStream::connect(&addr).await {
                    Ok(s) => s,
                    Err(e) => return (0, Some(format!("connect: {e}"))),
                };
                let mut done = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = round_trip(&mut s, done).await {
                        return (done, Some(format!("after {done}: {e}")));
                    }
                    done += 1;
                    trips.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (done, None)
            })
        })
        .collect()
}

/// Round trips done by every client of this test binary so far.
static TRIPS: std::sync::LazyLock<Arc<AtomicU64>> =
    std::sync::LazyLock::new(|| Arc::new(AtomicU64::new(0)));

/// Waits until the clients have done `more` round trips from now.
async fn trips(more: u64) {
    let until = TRIPS.load(Ordering::Relaxed) + more;
    guard("round trips", async {
        while TRIPS.load(Ordering::Relaxed) < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

async fn finish(
    handles: Vec<tokio::task::JoinHandle<(u64, Option<String>)>>,
) -> (u64, Vec<String>) {
    let mut total = 0;
    let mut failures = Vec::new();
    for h in handles {
        let (done, failed) = guard("a client", h).await.expect("client task");
        total += done;
        failures.extend(failed);
    }
    (total, failures)
}

#[tokio::test]
async fn reloading_another_instance_leaves_echo_connections_alone() {
    let server = Server::start(&config(60_000, 60_000)).await;
    let echo = server.addr("echo");
    let other = server.addr("echo-2");
    let stop = Arc::new(AtomicBool::new(false));
    let running = clients(&echo, 20, Arc::clone(&stop));
    let mut idle = TcpStream::connect(&echo).await.expect("connect");
    round_trip(&mut idle, 0).await.expect("first round trip");

    trips(40).await;
    let (ok, out) = server.reload(&config(60_000, 30_000)).await;
    assert!(ok, "reload failed: {out}");
    assert!(out.contains("\"restarted\": [\n    \"echo-2\""), "{out}");
    assert!(out.contains("\"echo\""), "echo kept: {out}");
    // echo-2 is on the same port, and serves.
    let mut s = TcpStream::connect(&other)
        .await
        .expect("echo-2 keeps its port");
    round_trip(&mut s, 1)
        .await
        .expect("echo-2 serves after its reload");
    // The idle echo connection made before the reload still works.
    round_trip(&mut idle, 1).await.expect("old echo connection");
    trips(40).await;
    stop.store(true, Ordering::Relaxed);
    let (total, failures) = finish(running).await;
    assert!(failures.is_empty(), "lost round trips: {failures:?}");
    assert!(total > 20, "the clients did round trips ({total})");
}

#[tokio::test]
async fn reloading_echo_drains_old_connections_and_serves_new_ones() {
    let server = Server::start(&config(60_000, 60_000)).await;
    let echo = server.addr("echo");
    let stop = Arc::new(AtomicBool::new(false));
    let running = clients(&echo, 20, Arc::clone(&stop));
    let mut idle = TcpStream::connect(&echo).await.expect("connect");
    round_trip(&mut idle, 0).await.expect("first round trip");
    // New connections all along: each must be served.
    let connects = Arc::new(AtomicU64::new(0));
    let fresh = {
        let (echo, stop, connects) = (echo.clone(), Arc::clone(&stop), Arc::clone(&connects));
        tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = connects.fetch_add(1, Ordering::Relaxed);
                match TcpStream::connect(&echo).await {
                    Ok(mut s) => {
                        if let Err(e) = round_trip(&mut s, n).await {
                            failures.push(format!("new connection {n}: {e}"));
                        }
                    }
                    Err(e) => failures.push(format!("connect {n}: {e}")),
                }
            }
            failures
        })
    };

    trips(40).await;
    let (ok, out) = server.reload(&config(45_000, 60_000)).await;
    assert!(ok, "reload failed: {out}");
    assert!(out.contains("\"restarted\": [\n    \"echo\""), "{out}");
    let after_reload = connects.load(Ordering::Relaxed);
    // Old connections go on being served while they drain.
    round_trip(&mut idle, 1)
        .await
        .expect("an old connection still served");
    guard("more new connections after the reload", async {
        while connects.load(Ordering::Relaxed) < after_reload + 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    trips(40).await;
    stop.store(true, Ordering::Relaxed);
    let (_, failures) = finish(running).await;
    assert!(failures.is_empty(), "old connections failed: {failures:?}");
    let failures = guard("the connect loop", fresh).await.expect("task");
    assert!(failures.is_empty(), "new connections failed: {failures:?}");
    // The idle old one is closed cleanly (EOF, not a reset) within the grace.
    let mut buf = [0u8; 16];
    let read = guard("the drain", idle.read(&mut buf)).await;
    assert!(matches!(read, Ok(0)), "a clean close, got {read:?}");
}

/// An instance given port 0, then the port it got written into the file
/// with another change: restarted on its very socket (it failed with
/// "address in use": only the address as written was compared), for TCP
/// and UDP alike.
#[tokio::test]
async fn writing_the_bound_port_into_the_config_keeps_the_socket() {
    let with_udp = |text: String| {
        text.replace(
            "[services.udp-echo]\nenabled = false",
            "[services.udp-echo]\nlisten = \"127.0.0.1:0\"",
        )
    };
    let server = Server::start(&with_udp(config(60_000, 60_000))).await;
    let (echo, udp) = (server.addr("echo"), server.addr("udp-echo"));
    let mut s = TcpStream::connect(&echo).await.expect("connect");
    round_trip(&mut s, 0).await.expect("round trip");
    let text = with_udp(config(45_000, 60_000))
        .replacen(
            "[services.echo]\nlisten = \"127.0.0.1:0\"",
            &format!("[services.echo]\nlisten = \"{echo}\""),
            1,
        )
        .replace(
            "[services.udp-echo]\nlisten = \"127.0.0.1:0\"",
            &format!("[services.udp-echo]\nlisten = \"{udp}\"\npeer_ttl_ms = 20000"),
        );
    let (ok, out) = server.reload(&text).await;
    assert!(ok, "reload failed: {out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        report["restarted"],
        serde_json::json!(["echo", "udp-echo"]),
        "{out}"
    );
    round_trip(&mut s, 1)
        .await
        .expect("the old connection drains");
    let mut fresh = TcpStream::connect(&echo).await.expect("the same port");
    round_trip(&mut fresh, 0).await.expect("served");
    let u = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    u.send_to(b"hi", &udp).await.expect("send");
    let mut buf = [0u8; 16];
    let (n, _) = guard("udp-echo on its port", u.recv_from(&mut buf))
        .await
        .expect("reply");
    assert_eq!(&buf[..n], b"HI");
}

#[tokio::test]
async fn a_broken_config_changes_nothing_and_reload_fails() {
    let server = Server::start(&config(60_000, 60_000)).await;
    let echo = server.addr("echo");
    let mut s = TcpStream::connect(&echo).await.expect("connect");
    round_trip(&mut s, 0).await.expect("round trip");
    let broken =
        config(60_000, 60_000).replace("idle_timeout_ms = 60000", "idle_timeout_ms = \"soon\"");
    let (ok, out) = server.reload(&broken).await;
    assert!(!ok, "a broken config must fail the reload: {out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert!(out.contains("idle_timeout_ms"), "names the key: {out}");
    round_trip(&mut s, 1).await.expect("echo untouched");
    // A syntax error too.
    let (ok, out) = server.reload("[services.echo\n").await;
    assert!(!ok, "{out}");
    round_trip(&mut s, 2).await.expect("echo untouched");
    // The audit log says why (the server process writes it a moment after).
    let log = server.data_dir().join("audit.log");
    common::web::poll_until("the failed reloads' audit lines", || {
        std::fs::read_to_string(&log)
            .is_ok_and(|a| a.contains("\"reload\"") && a.contains("\"ok\":false"))
    })
    .await;
    // No server at all: a clear error.
    let nowhere = server.dir.path().join("nowhere");
    let (ok, out) = reload_cmd(&server.config, &nowhere).await;
    assert!(!ok && out.contains("no switchboard is running"), "{out}");
    drop(server.child);
}

/// One HTTP/1.1 request on its own connection: the status, the headers and
/// the body as text.
async fn http(web: &str, head: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(web).await.expect("the dashboard");
    let req = format!(
        "{head}\r\nHost: {web}\r\nOrigin: http://{web}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("request");
    let mut out = Vec::new();
    guard("the answer", s.read_to_end(&mut out))
        .await
        .expect("answer");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

/// `/api/v1/events` (after `after`), as the session `cookie` reads them.
async fn events(web: &str, cookie: &str, after: Option<u64>) -> Vec<serde_json::Value> {
    let query = after.map_or_else(String::new, |a| format!("?after={a}"));
    let head = format!("GET /api/v1/events{query} HTTP/1.1\r\nCookie: {cookie}");
    let (status, answer) = http(web, &head, "").await;
    assert_eq!(status, 200, "{answer}");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[tokio::test]
async fn a_session_survives_a_restart() {
    let server = Server::start(&config(60_000, 60_000)).await;
    let web = server.web();
    let (status, answer) = http(
        &web,
        "POST /api/v1/session HTTP/1.1",
        r#"{"username":"admin","password":"reload-test-password"}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let cookie = answer
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    // Three failed sign-ins: events this run has and the next will not.
    for _ in 0..3 {
        let wrong = r#"{"username":"admin","password":"wrong"}"#;
        let (status, _) = http(&web, "POST /api/v1/session HTTP/1.1", wrong).await;
        assert_eq!(status, 401);
    }
    let before = events(&web, &cookie, None).await;
    let last = before.iter().filter_map(|e| e["seq"].as_u64()).max();
    let last = last.expect("events before the restart");
    let dir = server.stop().await;
    let kept = std::fs::read_to_string(dir.path().join("data/sessions.json")).expect("kept");
    let token = cookie.split('=').nth(1).expect("a token");
    assert!(!kept.contains(token), "the file holds hashes, not tokens");

    let server = Server::start_in(dir).await;
    let web = server.web();
    let (status, answer) = http(
        &web,
        &format!("GET /api/v1/session HTTP/1.1\r\nCookie: {cookie}"),
        "",
    )
    .await;
    assert_eq!(status, 200, "still signed in after a restart: {answer}");
    assert!(answer.contains("\"admin\""), "{answer}");
    // A client following the events from before the restart sees the new
    // run's: they come after every one it saw.
    let wrong = r#"{"username":"admin","password":"wrong"}"#;
    let (status, _) = http(&web, "POST /api/v1/session HTTP/1.1", wrong).await;
    assert_eq!(status, 401);
    let after = events(&web, &cookie, Some(last)).await;
    assert!(
        after.iter().any(|e| e["type"] == "auth_failed"),
        "after={last}: {after:?}"
    );
    // A made-up cookie is still refused.
    let (status, _) = http(
        &web,
        &format!(
            "GET /api/v1/session HTTP/1.1\r\nCookie: switchboard_session={}",
            "0".repeat(64)
        ),
        "",
    )
    .await;
    assert_eq!(status, 401);
}

/// Socket activation exactly as systemd does it: the sockets at fd 3…,
/// `LISTEN_FDS`, `LISTEN_FDNAMES`, and `LISTEN_PID` the server's own pid
/// (set by the shell that then execs it, keeping its pid).
#[tokio::test]
async fn serve_takes_its_sockets_from_socket_activation() {
    use command_fds::{CommandFdExt, FdMapping};
    let echo = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let web = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let stray = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (echo_addr, udp_addr) = (echo.local_addr().unwrap(), udp.local_addr().unwrap());
    let (web_addr, stray_addr) = (web.local_addr().unwrap(), stray.local_addr().unwrap());
    let dir = tempfile::tempdir().expect("a temp dir");
    let text = config(60_000, 60_000).replace(
        "[services.udp-echo]\nenabled = false",
        "[services.udp-echo]\nlisten = \"127.0.0.1:0\"",
    );
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(&config_path, text).expect("config");
    let ready_file = dir.path().join("ready.json");
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--ready-file")
        .arg(&ready_file)
        .env("LISTEN_FDS", "4")
        .env("LISTEN_FDNAMES", "echo:udp-echo:web:nobody")
        .env("SWITCHBOARD_ADMIN_PASSWORD", "reload-test-password")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .fd_mappings(vec![
            FdMapping {
                parent_fd: echo.into(),
                child_fd: 3,
            },
            FdMapping {
                parent_fd: udp.into(),
                child_fd: 4,
            },
            FdMapping {
                parent_fd: web.into(),
                child_fd: 5,
            },
            FdMapping {
                parent_fd: stray.into(),
                child_fd: 6,
            },
        ])
        .expect("distinct fds");
    let mut child = cmd.spawn().expect("the binary starts");
    // Our copies of the sockets go with the command.
    drop(cmd);
    common::read_banner(&mut child).await;
    let ready: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ready_file).expect("ready")).expect("JSON");
    assert_eq!(
        ready["services"]["echo"]["addr"],
        echo_addr.to_string(),
        "{ready}"
    );
    assert_eq!(
        ready["services"]["udp-echo"]["addr"],
        udp_addr.to_string(),
        "{ready}"
    );
    assert_eq!(ready["web"], format!("http://{web_addr}/"), "{ready}");
    let mut s = TcpStream::connect(echo_addr)
        .await
        .expect("echo on the inherited socket");
    round_trip(&mut s, 0).await.expect("echo serves");
    let u = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    u.send_to(b"hi", udp_addr).await.expect("send");
    let mut buf = [0u8; 64];
    let (n, _) = guard("a udp-echo reply", u.recv_from(&mut buf))
        .await
        .expect("reply");
    assert!(n > 0);
    let (status, _) = http(&web_addr.to_string(), "GET /healthz HTTP/1.1", "").await;
    assert_eq!(status, 200);
    // The socket named after no instance is closed, not left to queue
    // connections nobody accepts.
    guard("the stray socket closed", async {
        while TcpStream::connect(stray_addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// `switchboard upgrade` to the same binary under load: every connection
/// goes on, new ones are served by the new process, a session stays
/// signed in, and the old process exits once drained.
#[tokio::test]
async fn an_upgrade_loses_no_connection_and_no_session() {
    let mut server = Server::start(&config(60_000, 60_000)).await;
    let echo = server.addr("echo");
    let web = server.web();
    let (status, answer) = http(
        &web,
        "POST /api/v1/session HTTP/1.1",
        r#"{"username":"admin","password":"reload-test-password"}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let running = clients(&echo, 100, Arc::clone(&stop));
    trips(200).await;

    let out = guard(
        "switchboard upgrade",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("upgrade")
            .arg("--config")
            .arg(&server.config)
            .arg("--data-dir")
            .arg(server.data_dir())
            .output(),
    )
    .await
    .expect("upgrade runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let new_pid = answer["pid"].as_u64().expect("the new pid") as i32;
    let new = nix::unistd::Pid::from_raw(new_pid);
    // New connections (served by the new process) and old ones both work.
    let mut fresh = TcpStream::connect(&echo)
        .await
        .expect("connect after the upgrade");
    round_trip(&mut fresh, 0)
        .await
        .expect("the new process serves");
    trips(200).await;
    stop.store(true, Ordering::Relaxed);
    let (_, failures) = finish(running).await;
    // The old process exits once its connections are done.
    let status = guard("the old process exits", server.child.wait())
        .await
        .expect("wait");
    let (session, answer) = http(
        &web,
        &format!("GET /api/v1/session HTTP/1.1\r\nCookie: {cookie}"),
        "",
    )
    .await;
    // Asked before the new process is stopped (it was asked after, and
    // raced its shutdown).
    let still = round_trip(&mut fresh, 1).await;
    let _ = nix::sys::signal::kill(new, nix::sys::signal::Signal::SIGTERM);
    assert!(failures.is_empty(), "lost round trips: {failures:?}");
    assert!(status.success(), "{status}");
    assert_eq!(session, 200, "still signed in: {answer}");
    still.expect("the new process still serves");
}

/// An upgrade whose new process cannot start (here: the config became
/// unreadable) leaves the old one serving, and says why.
#[tokio::test]
async fn a_failed_upgrade_leaves_the_old_process_serving() {
    let server = Server::start(&config(60_000, 60_000)).await;
    let echo = server.addr("echo");
    let mut s = TcpStream::connect(&echo).await.expect("connect");
    round_trip(&mut s, 0).await.expect("round trip");
    std::fs::write(&server.config, "[services.echo\n").expect("break the config");
    let out = guard(
        "switchboard upgrade",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("upgrade")
            .arg("--data-dir")
            .arg(server.data_dir())
            .output(),
    )
    .await
    .expect("upgrade runs");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("exited before it was ready"), "{text}");
    round_trip(&mut s, 1)
        .await
        .expect("the old process still serves");
    let mut fresh = TcpStream::connect(&echo).await.expect("still accepting");
    round_trip(&mut fresh, 0)
        .await
        .expect("new connections too");
}
