//! The control socket (`<data_dir>/control.sock`, what `switchboard reload`
//! and `upgrade` talk to) under hostile clients, over the real binary:
//! each of its bounds — one line of at most 64 bytes, 5 s to send it, 4
//! clients at once, only known words, only its owner — is proven by a
//! client that crosses it, and none of them changes anything (no reload
//! in the audit log) or keeps the next real client out for long.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::guard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const CONFIG: &str = "[web]\nlisten = \"127.0.0.1:0\"\n\
    [services.udp-echo]\nenabled = false\n[services.time]\nenabled = false\n\
    [services.exec]\nenabled = false\n[services.files]\nenabled = false\n\
    [services.files-classic]\nenabled = false\n[services.login]\nenabled = false\n\
    [services.echo]\nlisten = \"127.0.0.1:0\"\n";

struct Server {
    _child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("switchboard.toml"), CONFIG).expect("config");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("serve")
            .arg("--config")
            .arg(dir.path().join("switchboard.toml"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("SWITCHBOARD_ADMIN_PASSWORD", "control-test-password")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        common::read_banner(&mut child).await;
        Server { _child: child, dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket(&self) -> PathBuf {
        switchboard::control::path(&self.data())
    }

    /// Reload lines in the audit log so far.
    fn reloads(&self) -> usize {
        std::fs::read_to_string(self.data().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"event\":\"reload\""))
            .count()
    }

    /// Waits until the audit log holds a reload line, then says how many
    /// it holds: lines are written in order, so reloads before the one
    /// awaited are counted too.
    async fn reloads_after_one(&self) -> usize {
        guard("the reload's audit line", async {
            while self.reloads() == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        self.reloads()
    }

    /// `switchboard reload` for this server: success and output.
    async fn reload(&self) -> (bool, String) {
        reload_as(&self.data(), None).await
    }
}

async fn reload_as(data: &Path, uid: Option<u32>) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.arg("reload").arg("--data-dir").arg(data);
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let out = guard("switchboard reload", cmd.output())
        .await
        .expect("reload runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Sends `request` (as is) and reads the answer to the end: the answer
/// line as JSON.
async fn ask_raw(socket: &Path, request: &[u8]) -> serde_json::Value {
    let mut s = UnixStream::connect(socket).await.expect("connect");
    s.write_all(request).await.expect("send");
    let mut out = Vec::new();
    guard("the answer", s.read_to_end(&mut out))
        .await
        .expect("read");
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

#[tokio::test]
async fn an_over_long_line_is_refused_and_changes_nothing() {
    let server = Server::start().await;
    // A real word, made too long: the bound is on the line, not the word.
    let mut long = b"reload".to_vec();
    long.extend(std::iter::repeat_n(b' ', 100));
    long.push(b'\n');
    let answer = ask_raw(&server.socket(), &long).await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 64 bytes")),
        "{answer}"
    );
    // A megabyte with no newline: the server reads 64 bytes (and a few
    // more to close politely), answers and closes; the sender is cut off
    // (its answer may be lost in the reset) and never holds the server.
    let s = UnixStream::connect(server.socket()).await.expect("connect");
    let (mut read, mut write) = s.into_split();
    let sender = tokio::spawn(async move { write.write_all(&vec![b'x'; 1 << 20]).await });
    let mut out = Vec::new();
    let _ = guard("closed", read.read_to_end(&mut out)).await;
    let sent = guard("the sender stopped", sender).await.expect("task");
    assert!(sent.is_err(), "a megabyte was not all taken");
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.is_empty() || text.contains("at most 64 bytes"),
        "{text}"
    );
    assert_eq!(server.reloads(), 0, "nothing was reloaded");
    // Exactly at the bound is served.
    let mut exact = b"reload".to_vec();
    exact.extend(std::iter::repeat_n(b' ', 64 - 7));
    exact.push(b'\n');
    assert_eq!(exact.len(), 64);
    let answer = ask_raw(&server.socket(), &exact).await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(server.reloads_after_one().await, 1, "only the real one");
}

/// A silent client and one that drips a byte at a time are both closed
/// at 5 s: not before (a slow but honest client has its time), and not
/// much after.
#[tokio::test]
async fn silent_and_dripping_clients_are_closed_at_their_deadline() {
    let server = Server::start().await;
    let timed = |drip: bool| {
        let socket = server.socket();
        tokio::spawn(async move {
            let mut s = UnixStream::connect(&socket).await.expect("connect");
            let started = Instant::now();
            let (mut read, mut write) = s.split();
            let dripping = async {
                if drip {
                    for _ in 0..40 {
                        if write.write_all(b"r").await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
                std::future::pending::<()>().await;
            };
            let mut out = Vec::new();
            tokio::select! {
                () = dripping => unreachable!("pending"),
                r = read.read_to_end(&mut out) => { r.expect("read"); }
            }
            (
                started.elapsed(),
                String::from_utf8_lossy(&out).into_owned(),
            )
        })
    };
    let (silent, drip) = (timed(false), timed(true));
    for (what, task) in [("silent", silent), ("dripping", drip)] {
        let (took, answer) = guard(what, task).await.expect("task");
        assert!(
            answer.contains("no request within the time allowed"),
            "{what}: {answer}"
        );
        assert!(
            took >= Duration::from_millis(4900),
            "{what} closed early: {took:?}"
        );
        assert!(
            took <= Duration::from_secs(9),
            "{what} closed late: {took:?}"
        );
    }
    let (ok, out) = server.reload().await;
    assert!(ok, "{out}");
    assert_eq!(server.reloads_after_one().await, 1, "only the real one");
}

#[tokio::test]
async fn a_fifth_client_is_answered_busy() {
    let server = Server::start().await;
    // Four clients that never speak hold every slot (accepted in order,
    // so all four before the fifth).
    let mut squatters = Vec::new();
    for _ in 0..4 {
        squatters.push(UnixStream::connect(server.socket()).await.expect("connect"));
    }
    let answer = ask_raw(&server.socket(), b"reload\n").await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("busy")),
        "{answer}"
    );
    let (ok, out) = server.reload().await;
    assert!(!ok && out.contains("busy"), "the command says why: {out}");
    assert_eq!(server.reloads(), 0);
    // One squatter leaves: its slot frees and a real client is served.
    drop(squatters.pop());
    guard("a slot frees", async {
        loop {
            let (ok, out) = server.reload().await;
            if ok {
                return;
            }
            assert!(out.contains("busy"), "{out}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(server.reloads_after_one().await, 1, "only the real one");
}

#[tokio::test]
async fn garbage_is_answered_with_an_error_and_changes_nothing() {
    let server = Server::start().await;
    let garbage: [&[u8]; 9] = [
        b"restart\n",
        b"RELOAD\n",
        b"reload now\n",
        b"reload\0\n",
        b"\0\0\0\n",
        b"\xff\xfe\xfd\n",
        b"{\"op\":\"reload\"}\n",
        // The new process's word, with no upgrade under way.
        b"ready\n",
        // Nothing at all, then end of stream.
        b"",
    ];
    for g in garbage {
        let answer = ask_raw(&server.socket(), g).await;
        assert_eq!(answer["ok"], false, "{g:?}: {answer}");
        assert!(answer["error"].as_str().is_some(), "{g:?}: {answer}");
    }
    assert_eq!(server.reloads(), 0, "none of it reloaded");
    let (ok, out) = server.reload().await;
    assert!(ok, "the real word still works: {out}");
    assert_eq!(server.reloads_after_one().await, 1, "only the real one");
}

/// Who may use the socket is who may open it: the file is the server
/// user's and owner-only. As root (the test command runs as root), a
/// client of another user is refused even when the folders above let it
/// reach the file.
#[tokio::test]
async fn only_the_owner_may_use_the_control_socket() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let server = Server::start().await;
    let meta = std::fs::metadata(server.socket()).expect("the socket file");
    assert_eq!(meta.mode() & 0o777, 0o600, "owner-only");
    // The test's own user (who made the temp dir) is the server's.
    let me = std::fs::metadata(server.dir.path())
        .expect("temp dir")
        .uid();
    assert_eq!(meta.uid(), me, "the server's user");
    if me != 0 {
        eprintln!("not root: another user's client cannot be tried; the mode was checked");
        return;
    }
    // Only the socket's own mode stands in the way now.
    for dir in [server.dir.path().to_owned(), server.data()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let nobody = 65534;
    let (ok, out) = reload_as(&server.data(), Some(nobody)).await;
    assert!(!ok, "another user is refused: {out}");
    assert!(out.contains("Permission denied"), "{out}");
    assert_eq!(server.reloads(), 0);
    let (ok, out) = server.reload().await;
    assert!(ok, "the owner is served: {out}");
    assert_eq!(server.reloads_after_one().await, 1, "only the owner's");
}
