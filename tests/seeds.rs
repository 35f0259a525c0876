//! Differential tests against the tutorials' own servers: for each pair of
//! programs in tests/seeds/, the seed's *server* runs (python3, on a
//! loopback port it binds itself and announces), the matching switchboard
//! instance runs beside it, the seed's *client* is driven with the same
//! input against each, and what the client printed is compared byte for
//! byte (only times masked, where the service is a clock).
//!
//! Where switchboard deliberately differs (no shell, the allowlist, real
//! accounts), the test says so where it feeds different input or expects a
//! different line. Set SWITCHBOARD_SKIP_PYTHON=1 where python3 is missing.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::{GUARD, Harness, guard};
use switchboard::config::Config;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The instances that play the seeds' servers.
const INSTANCES: &str = r#"
[services.exec-raw]
kind = "exec"
listen = "127.0.0.1:0"
framing = "raw"
allow = ["echo", "seq", "ls", "true", "sleep"]

[services.exec-ready]
kind = "exec"
listen = "127.0.0.1:0"
framing = "length-ready"
allow = ["echo", "seq", "ls", "true", "sleep"]

[services.exec-struct]
kind = "exec"
listen = "127.0.0.1:0"
framing = "struct"
allow = ["echo", "seq", "ls", "true", "sleep"]

[services.echo-hmac]
kind = "echo"
listen = "127.0.0.1:0"
auth = "hmac-md5"
auth_key = "ni hao ma"

[services.login-tutorial]
kind = "login"
listen = "127.0.0.1:0"
prompts = "tutorial"
"#;

/// The password of the real `zhao` account: the tutorial's `123` is
/// shorter than any account may have (a deliberate difference).
const ZHAO_PASSWORD: &str = "zhao-password";

async fn harness() -> Harness {
    let h = Harness::start_with(|c: &mut Config| {
        let extra = common::resolve_file(INSTANCES).expect("the instances resolve");
        c.services.extend(extra.services.into_iter().filter(|s| {
            [
                "exec-raw",
                "exec-ready",
                "exec-struct",
                "echo-hmac",
                "login-tutorial",
            ]
            .contains(&s.id.name())
        }));
    })
    .await;
    h.supervisor
        .users()
        .add("zhao", switchboard::users::Role::Viewer, ZHAO_PASSWORD)
        .unwrap();
    h
}

fn seeds_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seeds"))
}

/// python3, or a loud failure unless skipping was asked for.
fn python_missing() -> bool {
    let here = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    !here && common::skip_allowed("PYTHON", "python3 is not installed")
}

/// The environment every tutorial program runs in: the shim on the path,
/// one locale for both sides' commands.
fn python(script: &std::path::Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("python3");
    c.arg(script)
        .env("PYTHONPATH", seeds_dir())
        .env("PYTHONIOENCODING", "utf-8")
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .kill_on_drop(true);
    c
}

/// A seed's server, bound to a port of its own choosing (see
/// tests/seeds/sitecustomize.py); killed when dropped.
struct SeedServer {
    _child: tokio::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

async fn seed_server(file: &str) -> SeedServer {
    let dir = tempfile::tempdir().unwrap();
    let mut child = python(&seeds_dir().join(file))
        .env("SEED_ANNOUNCE_BIND", "1")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = guard(&format!("{file} announces its port"), async {
        loop {
            let line = lines.next_line().await.unwrap();
            let line = line.unwrap_or_else(|| panic!("{file} exited before binding"));
            if let Some(p) = line.strip_prefix("SEED_PORT ") {
                return p.parse::<u16>().unwrap();
            }
        }
    })
    .await;
    // The rest of its stderr is drained, so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    SeedServer {
        _child: child,
        port,
        _dir: dir,
    }
}

/// `text` with the port after every `'127.0.0.1',` replaced by `port`:
/// the one change a client needs.
fn with_port(text: &str, port: u16) -> String {
    let needle = "'127.0.0.1',";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(needle) {
        let (head, tail) = rest.split_at(at + needle.len());
        out.push_str(head);
        let spaces = tail.len() - tail.trim_start_matches(' ').len();
        out.push_str(&tail[..spaces]);
        let tail = &tail[spaces..];
        let digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        assert!(digits > 0, "a port follows the address");
        out.push_str(&port.to_string());
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Runs a seed's client against `port` with `input` on its stdin; what it
/// printed. It ends at the end of its input (an EOFError from `input()`, as
/// a person closing the terminal) or by itself.
async fn client(file: &str, port: u16, input: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(seeds_dir().join(file)).unwrap();
    let script = dir.path().join(file);
    std::fs::write(&script, with_port(&text, port)).unwrap();
    let mut child = python(&script)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = guard(&format!("{file} ends"), child.wait_with_output())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.is_empty() || err.contains("EOFError"),
        "{file} failed: {err}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The same client against the seed's server and against `ours`.
async fn both(
    h: &Harness,
    server: &str,
    client_file: &str,
    ours: &str,
    input: &str,
) -> (String, String) {
    let seed = seed_server(server).await;
    let theirs = client(client_file, seed.port, input).await;
    let mine = client(client_file, h.addr(ours).port(), input).await;
    (theirs, mine)
}

/// Digits masked: the time server's answers differ by the clock only.
fn mask_digits(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect()
}

#[tokio::test]
async fn the_echo_clients_of_001_print_the_same_against_the_seed_and_echo() {
    if python_missing() {
        return;
    }
    let h = harness().await;
    let (theirs, mine) = both(&h, "001_first_server.py", "001_first_client.py", "echo", "").await;
    assert_eq!(theirs, "收到服务端发来的消息 b'HELLO'\n");
    assert_eq!(mine, theirs);
    let input = "nihao\n\nhi\nhow are you\n";
    for (server, client_file) in [
        ("001_loop_server.py", "001_loop_client.py"),
        ("001_linux_server.py", "001_windows_client.py"),
        (
            "001_socketserver_tcp_server.py",
            "001_socketserver_tcp_client.py",
        ),
    ] {
        let (theirs, mine) = both(&h, server, client_file, "echo", input).await;
        assert!(theirs.contains("HOW ARE YOU"), "{client_file}: {theirs}");
        assert_eq!(mine, theirs, "{client_file}");
    }
    // 002's TCP client asks for the address, sends one line and closes.
    let seed = seed_server("002_tcp_server.py").await;
    let theirs = client(
        "002_tcp_client.py",
        0,
        &format!("127.0.0.1\n{}\nhello\n", seed.port),
    )
    .await;
    let mine = client(
        "002_tcp_client.py",
        0,
        &format!("127.0.0.1\n{}\nhello\n", h.addr("echo").port()),
    )
    .await;
    assert_eq!(mine, theirs);
}

#[tokio::test]
async fn the_udp_clients_of_001_and_002_print_the_same() {
    if python_missing() {
        return;
    }
    let h = harness().await;
    let input = "hi\nhow are you\n";
    for (server, client_file) in [
        ("001_udp_server.py", "001_udp_client.py"),
        (
            "001_socketserver_udp_server.py",
            "001_socketserver_udp_client.py",
        ),
        ("002_udp_receive.py", "002_udp_send.py"),
    ] {
        let (theirs, mine) = both(&h, server, client_file, "udp-echo", input).await;
        assert_eq!(mine, theirs, "{client_file}");
    }
    let (theirs, mine) = both(
        &h,
        "001_time_server.py",
        "001_time_client.py",
        "time",
        "%Y\n\n",
    )
    .await;
    assert_eq!(theirs.matches("服务器的标准时间是:").count(), 2, "{theirs}");
    assert_eq!(mask_digits(&mine), mask_digits(&theirs));
}

#[tokio::test]
async fn the_hmac_client_of_001_is_checked_by_echo_as_by_the_seed() {
    if python_missing() {
        return;
    }
    let h = harness().await;
    let input = "hello\nni hao\nquit\n";
    let (theirs, mine) = both(
        &h,
        "001_hmac_server.py",
        "001_hmac_client.py",
        "echo-hmac",
        input,
    )
    .await;
    assert_eq!(theirs, ">>:HELLO\n>>:NI HAO\n>>:");
    assert_eq!(mine, theirs);
    // A client with the wrong key is closed unanswered by both.
    let seed = seed_server("001_hmac_server.py").await;
    for port in [seed.port, h.addr("echo-hmac").port()] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut challenge = [0u8; 32];
        s.read_exact(&mut challenge).await.unwrap();
        s.write_all(&[0u8; 16]).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        let mut rest = Vec::new();
        let _ = guard("closed", s.read_to_end(&mut rest)).await;
        assert!(
            rest.is_empty(),
            "port {port} answered a wrong key: {rest:?}"
        );
    }
}

#[tokio::test]
async fn the_login_client_of_000_signs_in_with_the_tutorials_prompts() {
    if python_missing() {
        return;
    }
    let h = harness().await;
    let seed = seed_server("000_login_server.py").await;
    let theirs = client("000_login_client.py", seed.port, "zhao\n123\n").await;
    // Deliberate difference: a real account, whose password is longer.
    let mine = client(
        "000_login_client.py",
        h.addr("login-tutorial").port(),
        &format!("zhao\n{ZHAO_PASSWORD}\n"),
    )
    .await;
    assert_eq!(theirs, "请输入用户名:\n>>>请输入密码:\n>>>登录成功\n");
    assert_eq!(mine, theirs);
}

/// Commands whose output is the same on both sides, the long one first:
/// 1492 bytes, more than the raw client's one recv(1024).
const COMMANDS: &str = "seq 1 400\nsleep 1\necho hello\nls /nonexistent\ntrue\n";

/// On `raw` the client lags one answer behind after `seq`, and whether an
/// answer arrives before the client's next read is a race (the lesson
/// itself). `sleep 1` makes the one step shown deterministic: the next read
/// finds only the rest of `seq`'s output, the sleep's answer is a second
/// away. (Past that, the transcripts of both servers depend on timing.)
const RAW_COMMANDS: &str = "seq 1 400\nsleep 1\n";

#[tokio::test]
async fn the_remote_command_clients_of_001_print_the_same_on_each_framing() {
    if python_missing() {
        return;
    }
    let h = harness().await;
    let mut transcripts = Vec::new();
    for (server, client_file, ours, input) in [
        (
            "001_cmd_raw_server.py",
            "001_cmd_raw_client.py",
            "exec-raw",
            RAW_COMMANDS,
        ),
        (
            "001_cmd_ready_server.py",
            "001_cmd_ready_client.py",
            "exec-ready",
            COMMANDS,
        ),
        (
            "001_cmd_struct_server.py",
            "001_cmd_struct_client.py",
            "exec-struct",
            COMMANDS,
        ),
    ] {
        let (theirs, mine) = both(&h, server, client_file, ours, input).await;
        assert_eq!(mine, theirs, "{client_file}");
        transcripts.push(theirs);
    }
    for framed in &transcripts[1..] {
        assert!(
            framed.contains("操作成功"),
            "`sleep` printed nothing: {framed}"
        );
        assert!(
            framed.contains("No such file or directory"),
            "stderr wins: {framed}"
        );
    }
    // The lesson: on `raw` the long output spills into the next command's
    // answer, so `sleep 1` prints the tail of `seq`; framed, it does not.
    let answers = |t: &str| -> Vec<String> {
        t.split(">>:")
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let raw = answers(&transcripts[0]);
    assert!(raw[0].ends_with("283\n\n"), "{raw:?}");
    assert!(raw[1].starts_with("命令的执行结果是 284\n"), "{raw:?}");
    assert!(raw[1].ends_with("400\n\n"), "{raw:?}");
    for framed in &transcripts[1..] {
        let a = answers(framed);
        assert!(a[0].ends_with("400\n\n"), "{a:?}");
        assert_eq!(a[1], "命令的执行结果是 操作成功\n", "{a:?}");
        assert_eq!(a[2], "命令的执行结果是 hello\n\n", "{a:?}");
    }
}

#[tokio::test]
async fn two_commands_sent_back_to_back_glue_on_raw_as_on_the_seeds_server() {
    if python_missing() {
        return;
    }
    let h = harness().await;
    let seed = seed_server("001_cmd_raw_server.py").await;
    let mut replies = Vec::new();
    for port in [seed.port, h.addr("exec-raw").port()] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        // One write: the server's one recv reads both as one line.
        s.write_all(b"echo aecho b").await.unwrap();
        let mut reply = vec![0u8; 64];
        let n = guard("reply", s.read(&mut reply)).await.unwrap();
        replies.push(String::from_utf8_lossy(&reply[..n]).into_owned());
    }
    assert_eq!(replies[0], "aecho b\n");
    assert_eq!(replies[1], replies[0]);
}

#[tokio::test]
async fn where_exec_deliberately_differs_no_shell_and_the_allowlist() {
    if python_missing() {
        return;
    }
    let h = harness().await;
    let input = "echo a | tr a b\nid -u\n";
    let (theirs, mine) = both(
        &h,
        "001_cmd_ready_server.py",
        "001_cmd_ready_client.py",
        "exec-ready",
        input,
    )
    .await;
    // The seed's shell runs the pipe; ours passes `|` to echo as a word.
    assert!(theirs.starts_with(">>:命令的执行结果是 b\n"), "{theirs}");
    assert!(
        mine.starts_with(">>:命令的执行结果是 a | tr a b\n"),
        "{mine}"
    );
    // The seed runs anything; ours only the allowlist, and says so.
    assert!(
        mine.contains("`id` is not allowed (allowed: echo, ls, seq, sleep, true; no shell)"),
        "{mine}"
    );
    let _ = GUARD;
}

#[tokio::test]
async fn the_upload_client_of_003_stores_the_same_file() {
    if python_missing() {
        return;
    }
    let h = harness().await;
    let image: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let seed = seed_server("003_upload_server.py").await;
    let mut outputs = Vec::new();
    for port in [seed.port, h.addr("files-classic").port()] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("12.jpg"), &image).unwrap();
        let text = std::fs::read_to_string(seeds_dir().join("003_upload_client.py")).unwrap();
        std::fs::write(dir.path().join("c.py"), with_port(&text, port)).unwrap();
        let o = guard(
            "upload",
            python(&dir.path().join("c.py"))
                .current_dir(dir.path())
                .output(),
        )
        .await
        .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outputs.push(String::from_utf8(o.stdout).unwrap());
    }
    assert_eq!(outputs[1], outputs[0]);
    let path = h.supervisor.store().dir().join("new_12.jpg");
    common::web::poll_until("stored", || std::fs::read(&path).is_ok_and(|b| b == image)).await;
}
