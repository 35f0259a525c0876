//! What a new user runs into first, run as they would run it: the real
//! binary, its exit codes and what it prints.

mod common;

use common::{Harness, Served};
use switchboard::kind::ServiceKind::{Echo, Time};

fn switchboard() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
}

#[tokio::test]
async fn a_refused_time_format_is_an_error_exit_and_a_time_is_not() {
    let h = Harness::start().await;
    let addr = h.target(Time);
    let refused = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || switchboard().args(["time", &addr, "%Q"]).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.starts_with("error: "), "{err}");
    let ok = tokio::task::spawn_blocking(move || {
        switchboard().args(["time", &addr, "%Y"]).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim().len(), 4);
}

#[tokio::test]
async fn the_banner_counts_one_account_in_the_singular() {
    let dir = tempfile::tempdir().unwrap();
    let first = Served::start(
        dir.path(),
        &[Echo],
        &[("SWITCHBOARD_ADMIN_PASSWORD", "first-start-pw1")],
    )
    .await;
    drop(first.terminate().await);
    let again = Served::start(dir.path(), &[Echo], &[]).await;
    let line = again.banner.last().unwrap().clone();
    again.terminate().await;
    assert!(line.contains("(1 account;"), "{line}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        dir.path(),
        &[Echo],
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", "first-start-pw1"),
            ("SWITCHBOARD_LOG_FORMAT", "json"),
        ],
    )
    .await;
    let (status, log) = served.terminate().await;
    assert!(status.success());
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("listening on"))),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
    assert!(!log.contains('\u{1b}'));
}

/// The binary on a pseudo-terminal, as a person at a keyboard runs it.
struct OnTerminal {
    child: std::process::Child,
    master: std::fs::File,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl OnTerminal {
    fn start(args: &[&str]) -> OnTerminal {
        let pty = nix::pty::openpty(None, None).expect("a pty");
        let slave = std::fs::File::from(pty.slave);
        let child = switchboard()
            .args(args)
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave)
            .spawn()
            .unwrap();
        let master = std::fs::File::from(pty.master);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child and every copy of the slave are gone.
            while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        OnTerminal {
            child,
            master,
            seen,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits (with the hang guard) until the screen holds `what` `times` times.
    async fn expect(&self, what: &str, times: usize) {
        common::guard(&format!("{what:?} on the terminal"), async {
            while self.text().matches(what).count() < times {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
    }

    fn type_line(&mut self, line: &str) {
        std::io::Write::write_all(&mut self.master, format!("{line}\n").as_bytes()).unwrap();
    }

    async fn exit_code(mut self) -> (Option<i32>, String) {
        let status = common::guard("exit", async {
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
        (status.code(), self.text())
    }
}

#[tokio::test]
async fn the_echo_prompt_comes_after_the_reply() {
    let h = Harness::start().await;
    let mut term = OnTerminal::start(&["echo", &h.target(Echo)]);
    term.expect(">> ", 1).await;
    term.type_line("abc");
    term.expect(">> ", 2).await;
    term.type_line("quit");
    let (code, screen) = term.exit_code().await;
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains(">> abc\r\nABC\r\n>> "), "{screen:?}");
}

#[tokio::test]
async fn the_login_client_stops_asking_when_the_server_hangs_up() {
    let h = Harness::start().await;
    let mut term = OnTerminal::start(&["login", &h.target(switchboard::kind::ServiceKind::Login)]);
    for attempt in 1..=3 {
        term.expect("username: ", attempt).await;
        term.type_line("admin");
        term.expect("password: ", attempt).await;
        term.type_line("not the password");
        term.expect("login failed", attempt).await;
    }
    let (code, screen) = term.exit_code().await;
    assert_eq!(code, Some(1), "{screen}");
    assert_eq!(
        screen.matches("username: ").count(),
        3,
        "no fourth question: {screen:?}"
    );
    assert!(screen.contains("no more tries"), "{screen:?}");
}

#[tokio::test]
async fn the_server_raises_its_open_file_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Started with a low soft limit, as many systems start processes.
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -Sn 256 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(common::only_services(&[Echo]))
        .env("SWITCHBOARD_ADMIN_PASSWORD", "first-start-pw1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    common::read_banner(&mut child).await;
    let pid = child.id().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_ne!(words[3], "256", "raised: {line}");
    assert_eq!(words[3], words[4], "soft = hard: {line}");
}

#[tokio::test]
async fn every_client_finds_the_key_the_way_the_server_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = Served::start(
        &data,
        &[
            switchboard::kind::ServiceKind::Exec,
            switchboard::kind::ServiceKind::Files,
        ],
        &[("SWITCHBOARD_ADMIN_PASSWORD", "first-start-pw1")],
    )
    .await;
    let exec = served.addr(switchboard::kind::ServiceKind::Exec);
    let files = served.addr(switchboard::kind::ServiceKind::Files);
    let data_s = data.to_str().unwrap().to_owned();
    let set = format!("data_dir={data_s}");
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            vec!["exec", &exec, "--data-dir", &data_s, "--", "echo", "hi"],
            vec![],
        ),
        (
            vec!["--data-dir", &data_s, "exec", &exec, "--", "echo", "hi"],
            vec![],
        ),
        (
            vec!["exec", &exec, "--set", &set, "--", "echo", "hi"],
            vec![],
        ),
        (
            vec!["exec", &exec, "--", "echo", "hi"],
            vec![("SWITCHBOARD_DATA_DIR", data_s.as_str())],
        ),
        (vec!["list", &files, "--data-dir", &data_s], vec![]),
    ];
    for (args, env) in cases {
        let out = tokio::task::spawn_blocking({
            let (args, env): (Vec<String>, Vec<(String, String)>) = (
                args.iter().map(|a| a.to_string()).collect(),
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
            let cwd = dir.path().to_owned();
            move || {
                switchboard()
                    .args(&args)
                    .env_remove("SWITCHBOARD_KEY")
                    .env_remove("SWITCHBOARD_DATA_DIR")
                    .envs(env)
                    .current_dir(cwd)
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} {env:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Nowhere to find it: the error says where it looked and what to do.
    let out = switchboard()
        .args(["exec", &exec, "--", "echo", "hi"])
        .env_remove("SWITCHBOARD_KEY")
        .env_remove("SWITCHBOARD_DATA_DIR")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("switchboard-data/key") && err.contains("--data-dir"),
        "{err}"
    );
    served.terminate().await;
}

/// Starts `switchboard serve ARGS` on `data`; returns its banner lines (up
/// to the accounts line) and the child.
async fn serve_banner(
    data: &std::path::Path,
    args: &[&str],
) -> (Vec<String>, tokio::process::Child) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(args)
        .env_remove("SWITCHBOARD_ADMIN_PASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let banner = common::read_banner(&mut child).await;
    (banner, child)
}

#[tokio::test]
async fn a_taken_port_gets_a_hint_and_does_not_spend_the_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut args = common::only_services(&[Echo]);
    args.extend(["--set".into(), format!("web.listen=127.0.0.1:{port}")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (banner, child) = serve_banner(dir.path(), &args).await;
    drop(child);
    let text = banner.join("\n");
    assert!(text.contains("failed: address in use"), "{text}");
    assert!(text.contains("--port-base N"), "{text}");
    assert!(
        banner.last().unwrap().starts_with("accounts: none yet"),
        "{text}"
    );
    // With the port free, the password is made and shown now.
    drop(taken);
    let (banner, child) = serve_banner(dir.path(), &args).await;
    drop(child);
    assert!(
        banner.last().unwrap().starts_with("sign in as:  admin / "),
        "{banner:?}"
    );
}

#[tokio::test]
async fn port_base_moves_every_service_and_the_dashboard() {
    // A base whose eight ports are free right now (TCP and UDP).
    let free = |p: u16| {
        std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
    };
    let base = (0..50)
        .map(|i| 31_000 + i * 97)
        .find(|&b| (b..b + 7).chain([b + 80]).all(free))
        .expect("a free range of ports");
    let dir = tempfile::tempdir().unwrap();
    let base_s = base.to_string();
    let (banner, child) = serve_banner(
        dir.path(),
        &[
            "--port-base",
            &base_s,
            "--set",
            "services.login.enabled=false",
        ],
    )
    .await;
    drop(child);
    let text = banner.join("\n");
    for (name, offset) in [
        ("echo", 0),
        ("udp-echo", 1),
        ("time", 2),
        ("exec", 3),
        ("files", 4),
        ("files-classic", 5),
    ] {
        let want = format!("127.0.0.1:{}", base + offset);
        let line = banner
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        assert!(line.contains(&want) && line.contains("running"), "{line}");
    }
    assert!(
        text.contains(&format!("http://127.0.0.1:{}/", base + 80)),
        "{text}"
    );
}

#[test]
fn completions_for_every_shell_and_a_manual_page() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = switchboard().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("switchboard") && script.contains("port-base"),
            "{shell}"
        );
    }
    let bash = switchboard()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.bash");
    std::fs::write(&file, &bash.stdout).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    let man = switchboard().arg("man").output().unwrap();
    assert!(man.status.success());
    let roff = String::from_utf8(man.stdout).unwrap();
    assert!(
        roff.starts_with(".ie") && roff.contains(".TH switchboard 1"),
        "{}",
        &roff[..200]
    );
    for command in ["serve", "echo", "exec", "bench", "completions"] {
        assert!(
            roff.contains(&format!(".TH switchboard-{command} 1")),
            "{command}"
        );
    }
    // groff reads it without a warning.
    let mut groff = std::process::Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"]) // -k: UTF-8 input, as man reads it
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("groff (Debian's groff-base) is installed");
    std::io::Write::write_all(groff.stdin.as_mut().unwrap(), roff.as_bytes()).unwrap();
    let out = groff.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_try_line_names_a_command_that_runs_here() {
    let exe = env!("CARGO_BIN_EXE_switchboard");
    let dir = tempfile::tempdir().unwrap();
    // Not on PATH (as after `cargo run`): the full path.
    let served = Served::start(
        dir.path(),
        &[Echo],
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", "first-start-pw1"),
            ("PATH", "/usr/bin:/bin"),
        ],
    )
    .await;
    let try_line = served
        .banner
        .iter()
        .find(|l| l.starts_with("try:"))
        .unwrap()
        .clone();
    served.terminate().await;
    assert!(
        try_line.starts_with(&format!("try:  {exe} echo ")),
        "{try_line}"
    );
    // On PATH (as after `cargo install`): the name.
    let bin_dir = std::path::Path::new(exe)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let path = format!("{bin_dir}:/usr/bin:/bin");
    let served = Served::start(dir.path(), &[Echo], &[("PATH", path.as_str())]).await;
    let try_line = served
        .banner
        .iter()
        .find(|l| l.starts_with("try:"))
        .unwrap()
        .clone();
    served.terminate().await;
    assert!(
        try_line.starts_with("try:  switchboard echo "),
        "{try_line}"
    );
}

/// Behind a proxy (`accept_proxy`), echo refuses a direct connection: the
/// `try:` line says so instead of suggesting `echo ADDR hello`, which the
/// port would turn away.
#[tokio::test]
async fn the_try_line_of_an_echo_behind_a_proxy_names_no_direct_command() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start_with_args(
        dir.path(),
        &[Echo],
        &[],
        &["--set", "services.echo.accept_proxy=true"],
    )
    .await;
    let addr = served.addr(Echo);
    let try_line = served
        .banner
        .iter()
        .find(|l| l.starts_with("try:"))
        .unwrap_or_else(|| panic!("no try: line in {:?}", served.banner))
        .clone();
    served.terminate().await;
    assert!(!try_line.contains(" hello"), "{try_line}");
    assert!(
        try_line.contains(&format!(
            "echo ({addr}) takes connections through a trusted proxy only"
        )),
        "{try_line}"
    );
}
