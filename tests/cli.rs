//! The binary as people use it: the client commands against running
//! services, their errors and exit codes, `--help`, config errors at start,
//! and the tutorials' own Python clients against our services.

mod common;

use std::process::{Output, Stdio};

use common::{Harness, guard};
use switchboard::kind::ServiceKind::{self, Echo, Time, UdpEcho};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

async fn run(args: &[&str], stdin: &str) -> Output {
    run_program(BIN, args, stdin).await
}

async fn run_program(program: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    guard("the command to finish", child.wait_with_output())
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn one_shot_clients_print_the_reply() {
    let h = Harness::start().await;
    let o = run(&["echo", &h.target(Echo), "hello", "wörld"], "").await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "HELLO WöRLD\n");
    let o = run(&["udp", &h.target(UdpEcho), "--", "-n", "x"], "").await;
    assert_eq!(stdout(&o), "-N X\n");
    // Options after the text are options (here a timeout), never text.
    let o = run(&["echo", &h.target(Echo), "hi", "--timeout", "500ms"], "").await;
    assert_eq!(stdout(&o), "HI\n");
    let o = run(&["time", &h.target(Time), "%%Y"], "").await;
    assert_eq!(stdout(&o), "%Y\n");
    let o = run(&["time", &h.target(Time), ""], "").await;
    assert_eq!(
        stdout(&o).trim().len(),
        19,
        "the default format: {}",
        stdout(&o)
    );
}

#[tokio::test]
async fn without_text_the_clients_read_lines_until_quit() {
    let h = Harness::start().await;
    let o = run(
        &["echo", &h.target(Echo)],
        "abc\n\n  def  \nquit\nnot sent\n",
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "ABC\nDEF\n",
        "no prompt when stdin is not a terminal"
    );
    let o = run(&["udp", &h.target(UdpEcho)], "one\ntwo").await;
    assert_eq!(stdout(&o), "ONE\nTWO\n");
    let o = run(&["time", &h.target(Time)], "%%\n%\n").await;
    assert_eq!(stdout(&o), "%\nerror: lone `%` at the end of the format\n");
}

#[tokio::test]
async fn failures_are_explained_and_exit_non_zero() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = run(&["echo", &port.to_string(), "x"], "").await;
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o),
        format!(
            "switchboard: connection refused by 127.0.0.1:{port} — is `switchboard serve` running?\n"
        )
    );
    let o = run(&["time", "nonsense", "%H"], "").await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("bad address `nonsense`"),
        "{}",
        stderr(&o)
    );
    let o = run(&["udp", "127.0.0.1:9", "--timeout", "soon", "x"], "").await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is not a duration"), "{}", stderr(&o));
}

/// Every command path under `cmd` (`["user", "add"]`, ...), with the
/// first line of what it is for.
fn command_paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_owned());
        let about = sub
            .get_about()
            .map(|a| a.to_string())
            .unwrap_or_else(|| panic!("`{}` has no description", path.join(" ")));
        out.push((path.clone(), about));
        command_paths(sub, &path, out);
    }
}

#[tokio::test]
async fn help_is_there_for_every_command() {
    use clap::CommandFactory;
    let mut commands = Vec::new();
    command_paths(&switchboard::cli::Cli::command(), &[], &mut commands);
    let top: Vec<&str> = commands
        .iter()
        .filter(|(path, _)| path.len() == 1)
        .map(|(path, _)| path[0].as_str())
        .collect();
    for command in [
        "serve", "echo", "udp", "time", "exec", "put", "get", "list", "login", "user", "bench",
        "health",
    ] {
        assert!(
            top.contains(&command),
            "{command} is not a command: {top:?}"
        );
    }
    assert!(commands.len() > top.len(), "subcommands are walked too");
    let o = run(&["--help"], "").await;
    assert!(o.status.success());
    for command in &top {
        assert!(
            stdout(&o).contains(command),
            "{command} missing from --help"
        );
    }
    // Help wraps lines: compare words.
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    for (path, about) in &commands {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let o = run(&args, "").await;
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let help = stdout(&o);
        assert!(help.contains("Usage:"), "{args:?}: {help}");
        assert!(
            words(&help).contains(&words(about)),
            "{args:?} does not say what it is for ({about:?}): {help}"
        );
    }
}

#[tokio::test]
async fn bad_configuration_is_rejected_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sb.toml");
    std::fs::write(&path, "[services.echo]\nlisen = \"127.0.0.1:9000\"\n").unwrap();
    let o = run(&["serve", "--config", path.to_str().unwrap()], "").await;
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o),
        format!(
            "switchboard: unknown config key `services.echo.lisen` (in {})\n",
            path.display()
        )
    );
    let o = run(&["--set", "services.time.listen=unix:/tmp/t.sock"], "").await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("bad value for `services.time.listen` (from the command line)"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn serve_exits_with_an_error_when_no_service_can_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "serve".to_owned(),
        "--data-dir".to_owned(),
        dir.path().to_str().unwrap().to_owned(),
    ];
    args.extend(common::only_services(&[ServiceKind::Echo]));
    args.extend(["--set".to_owned(), format!("services.echo.listen={addr}")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&args, "").await;
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("failed: address in use"),
        "banner: {}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains(&format!("echo cannot listen on {addr}: address in use")),
        "{}",
        stderr(&o)
    );
}

/// Runs one of the tutorial's clients (tests/seeds/) against `kind`, with
/// the port of its one `('127.0.0.1', PORT)` address changed to where the
/// service listens.
async fn python_client(h: &Harness, script: &str, kind: ServiceKind, input: &str) -> String {
    let source = std::fs::read_to_string(format!(
        "{}/tests/seeds/{script}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (head, tail) = source
        .split_once("('127.0.0.1',")
        .unwrap_or_else(|| panic!("{script} has no ('127.0.0.1', PORT)"));
    let digits = tail
        .trim_start()
        .trim_start_matches(|c: char| c.is_ascii_digit());
    assert!(digits.starts_with(')'), "{script}: a port after the host");
    let port = h.addr(kind).port();
    let path = h.dir.path().join(script);
    std::fs::write(&path, format!("{head}('127.0.0.1', {port}{digits}")).unwrap();
    let o = run_program("python3", &[path.to_str().unwrap()], input).await;
    // The tutorial's loop ends with EOFError at the end of input: expected.
    let err = stderr(&o);
    assert!(err.is_empty() || err.contains("EOFError"), "{err}");
    stdout(&o)
}

#[tokio::test]
async fn the_tutorials_python_clients_work_unmodified() {
    let h = Harness::start().await;
    let out = python_client(
        &h,
        "001_socketserver_tcp_client.py",
        Echo,
        "nihao\nhow are you\n",
    )
    .await;
    assert!(out.contains("收到服务端发来的消息 NIHAO"), "{out}");
    assert!(out.contains("收到服务端发来的消息 HOW ARE YOU"), "{out}");
    let out = python_client(&h, "001_socketserver_udp_client.py", UdpEcho, "hi\n").await;
    assert!(out.contains("b'HI'"), "{out}");
    let out = python_client(&h, "001_time_client.py", Time, "%Y\n\n").await;
    let replies: Vec<&str> = out
        .split("服务器的标准时间是: ")
        .skip(1)
        .map(|r| r.lines().next().unwrap_or(""))
        .collect();
    assert_eq!(replies.len(), 2, "{out}");
    assert!(
        replies[0].len() == 4 && replies[0].parse::<u32>().is_ok(),
        "%Y: {out}"
    );
    assert_eq!(
        replies[1].len(),
        19,
        "the empty line gets the default format: {out}"
    );
    assert!(replies[1].starts_with(replies[0]), "{out}");
}

#[tokio::test]
async fn user_commands_manage_the_accounts_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run(&["user", "--data-dir", d, "list"], "").await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("no accounts in"), "{}", stdout(&o));
    let o = run(&["user", "--data-dir", d, "add", "bob"], "bob's password\n").await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the first account must be `admin`"),
        "{}",
        stderr(&o)
    );
    let o = run(&["user", "--data-dir", d, "add", "admin", "--generate"], "").await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("password: "), "{}", stdout(&o));
    // The password comes from standard input when it is not a terminal.
    let o = run(
        &["--data-dir", d, "user", "add", "bob", "--role", "operator"],
        "bob's password\n",
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["user", "--data-dir", d, "add", "eve"], "short\n").await;
    assert!(stderr(&o).contains("too short"), "{}", stderr(&o));
    let o = run(&["user", "--data-dir", d, "add", "../x"], "long enough\n").await;
    assert!(stderr(&o).contains("bad user name"), "{}", stderr(&o));
    let o = run(&["user", "--data-dir", d, "role", "bob", "root"], "").await;
    assert!(stderr(&o).contains("unknown role `root`"), "{}", stderr(&o));
    let o = run(&["user", "--data-dir", d, "del", "admin"], "").await;
    assert!(stderr(&o).contains("last admin"), "{}", stderr(&o));
    let o = run(&["user", "--data-dir", d, "list"], "").await;
    let listed: Vec<Vec<String>> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().take(2).map(String::from).collect())
        .collect();
    assert_eq!(listed, [["admin", "admin"], ["bob", "operator"]]);
    let file = std::fs::read_to_string(switchboard::users::path(dir.path())).unwrap();
    assert!(!file.contains("bob's password"));
    // Removing an account removes what the dashboard kept for it.
    let saved = dir.path().join("saved-messages");
    std::fs::create_dir_all(&saved).unwrap();
    std::fs::write(saved.join("bob.json"), r#"{"version":1,"messages":[]}"#).unwrap();
    std::fs::write(saved.join("admin.json"), r#"{"version":1,"messages":[]}"#).unwrap();
    let o = run(&["user", "--data-dir", d, "del", "bob"], "").await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !saved.join("bob.json").exists(),
        "bob's saved messages went with bob"
    );
    assert!(saved.join("admin.json").exists(), "admin's stay");
}

#[tokio::test]
async fn user_options_work_after_the_subcommand_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run(&["user", "add", "admin", "--generate", "--data-dir", d], "").await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("password: "), "{}", stdout(&o));
    let o = run(
        &["user", "add", "bob", "--data-dir", d, "--role", "operator"],
        "bob's password\n",
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["user", "list", "--data-dir", d], "").await;
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: Vec<Vec<String>> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().take(2).map(String::from).collect())
        .collect();
    assert_eq!(listed, [["admin", "admin"], ["bob", "operator"]]);
    // Before the subcommand, and before `user`, as well.
    for args in [
        &["user", "--data-dir", d, "role", "bob", "viewer"][..],
        &["--data-dir", d, "user", "passwd", "bob", "--generate"],
    ] {
        let o = run(args, "").await;
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    let users = switchboard::users::Users::open(dir.path()).unwrap();
    assert_eq!(
        users.role("bob"),
        Some(switchboard::users::Role::Viewer),
        "written to the directory given"
    );
}

#[tokio::test]
async fn exec_exits_with_the_remote_commands_code_or_128_plus_its_signal() {
    let h = Harness::start_with(|c| {
        c.service_mut("exec")
            .settings_mut::<switchboard::service::exec::Settings>()
            .allow = vec!["sh".to_owned()]
    })
    .await;
    let key_file = h.dir.path().join("cli-key");
    std::fs::write(&key_file, common::TEST_KEY).unwrap();
    let key = key_file.to_str().unwrap();
    let exec = h.target(ServiceKind::Exec);
    for (script, code) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("echo out; echo err >&2; exit 42", 42),
        ("kill -TERM $$", 128 + 15),
        ("kill -KILL $$", 128 + 9),
    ] {
        let o = run(
            &["exec", &exec, "--key-file", key, "--", "sh", "-c", script],
            "",
        )
        .await;
        assert_eq!(o.status.code(), Some(code), "{script}: {}", stderr(&o));
        if code == 42 {
            assert_eq!(stdout(&o), "out\n");
            assert_eq!(stderr(&o), "err\n");
        }
    }
    // Not on the allowlist: refused, with its own code.
    let o = run(&["exec", &exec, "--key-file", key, "--", "ls"], "").await;
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
}

#[tokio::test]
async fn first_start_creates_admin_and_the_login_command_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(
        dir.path(),
        &[ServiceKind::Login],
        &[("RUST_LOG", "switchboard=debug")],
    )
    .await;
    let addr = served.addr(ServiceKind::Login);
    let password = served
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("sign in as:  admin / "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no generated password in {:?}", served.banner))
        .to_owned();
    let o = run(
        &["login", &addr, "--user", "admin"],
        &format!("{password}\n"),
    )
    .await;
    assert_eq!(stdout(&o), "login ok\n", "{}", stderr(&o));
    assert!(o.status.success());
    let o = run(&["login", &addr, "-u", "admin"], "wrong password\n").await;
    assert_eq!(stdout(&o), "login failed\n");
    assert_eq!(o.status.code(), Some(1));
    // Name and password both from standard input.
    let o = run(&["login", &addr], &format!("admin\n{password}\n")).await;
    assert_eq!(stdout(&o), "login ok\n", "{}", stderr(&o));

    let (_, logs) = served.terminate().await;
    assert!(
        !logs.contains(&password),
        "the password leaked into the logs"
    );

    // A second start creates nothing and prints no password.
    let again = common::Served::start(dir.path(), &[ServiceKind::Login], &[]).await;
    let banner = again.banner.join("\n");
    assert!(!banner.contains("sign in as"), "{banner}");
    assert!(banner.contains("accounts: "), "{banner}");
}

#[tokio::test]
async fn the_admin_password_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(
        dir.path(),
        &[ServiceKind::Login],
        &[("SWITCHBOARD_ADMIN_PASSWORD", "from the environment")],
    )
    .await;
    let banner = served.banner.join("\n");
    assert!(!banner.contains("sign in as"), "{banner}");
    let addr = served.addr(ServiceKind::Login);
    let o = run(&["login", &addr, "-u", "admin"], "from the environment\n").await;
    assert_eq!(stdout(&o), "login ok\n", "{}", stderr(&o));
}

#[tokio::test]
async fn put_get_and_list_from_the_command_line() {
    let h = Harness::start().await;
    let work = tempfile::tempdir().unwrap();
    let key_file = work.path().join("key");
    std::fs::write(&key_file, format!("{}\n", common::TEST_KEY)).unwrap();
    let key = key_file.to_str().unwrap();
    let src = work.path().join("report.txt");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &body).unwrap();
    let files = h.target(ServiceKind::Files);

    let o = run(
        &["put", &files, src.to_str().unwrap(), "--key-file", key],
        "",
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("stored report.txt  sha256 "),
        "{}",
        stdout(&o)
    );
    // Again: a new name, and the output says so.
    let o = run(
        &["put", &files, src.to_str().unwrap(), "--key-file", key],
        "",
    )
    .await;
    assert!(
        stdout(&o).contains("(as report-1.txt: report.txt was taken)"),
        "{}",
        stdout(&o)
    );

    let out = work.path().join("back.txt");
    let o = run(
        &[
            "get",
            &files,
            "report-1.txt",
            "-o",
            out.to_str().unwrap(),
            "--key-file",
            key,
        ],
        "",
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("(checked)"));
    assert_eq!(std::fs::read(&out).unwrap(), body);
    // An existing destination is not replaced without --force.
    let o = run(
        &[
            "get",
            &files,
            "report.txt",
            "-o",
            out.to_str().unwrap(),
            "--key-file",
            key,
        ],
        "",
    )
    .await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("pass --force"), "{}", stderr(&o));
    let o = run(
        &["get", &files, "missing", "-o", "-", "--key-file", key],
        "",
    )
    .await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no file `missing`"), "{}", stderr(&o));

    let o = run(&["list", &files, "--key-file", key], "").await;
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].contains("SHA-256"));
    assert!(
        lines[1].ends_with("report-1.txt") && lines[1].contains("293.0 KiB"),
        "{lines:?}"
    );

    // The classic format, to files-classic.
    let o = run(
        &[
            "put",
            "--classic",
            &h.target(ServiceKind::FilesClassic),
            src.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let classic = std::fs::read(h.supervisor.store().dir().join("new_report.txt")).unwrap();
    assert_eq!(classic, body);

    let o = run(&["put", &files, "/no/such/file", "--key-file", key], "").await;
    assert!(
        stderr(&o).contains("cannot open /no/such/file"),
        "{}",
        stderr(&o)
    );
    let o = run(&["list", &files, "--key-file", "/no/key"], "").await;
    assert!(
        stderr(&o).contains("cannot read the key file"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn health_asks_the_dashboard_and_says_when_it_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(dir.path(), &[Echo], &[]).await;
    let web = served.web_url().trim_start_matches("http://").to_owned();

    let o = run(&["health", &web], "").await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("ok: http://{web}/healthz\n"));
    // Without ADDR it asks the config's dashboard; a wildcard is asked on loopback.
    let port = web.rsplit(':').next().unwrap();
    // (Plain HTTP on a wildcard is a proxy's backend: it must say so.)
    let o = run(
        &[
            "health",
            "--set",
            &format!("web.listen=0.0.0.0:{port}"),
            "--set",
            "web.tls=off",
            "--set",
            "web.behind_proxy=true",
        ],
        "",
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("ok: http://127.0.0.1:{port}/healthz\n"));

    // Something that is not the dashboard: the echo service answers no HTTP.
    let o = run(&["health", &served.addr(Echo), "--timeout", "2s"], "").await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/healthz answered"), "{}", stderr(&o));

    let (status, _) = served.terminate().await;
    assert!(status.success());
    let o = run(&["health", &web], "").await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("refused"), "{}", stderr(&o));
}

#[tokio::test]
async fn service_manages_instances_through_the_api_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = common::Served::start(&data, &[ServiceKind::Echo, ServiceKind::Time], &[]).await;
    let web = served.web_url();
    let url = web.trim_start_matches("http://").to_owned();
    let data_arg = data.to_str().unwrap().to_owned();
    let made = run(
        &[
            "token",
            "create",
            "ops",
            "--role",
            "admin",
            "--data-dir",
            &data_arg,
        ],
        "",
    )
    .await;
    assert!(made.status.success(), "{}", stderr(&made));
    let token = stdout(&made)
        .split_whitespace()
        .find(|w| w.starts_with("sbt_"))
        .expect("the token printed")
        .to_owned();
    let service = |args: &[&str]| {
        let mut all = vec!["service", "--url", url.as_str(), "--token", token.as_str()];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let call = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs, "").await
    };

    let o = call(service(&[
        "add",
        "e5",
        "--kind",
        "echo",
        "--setting",
        "listen=127.0.0.1:0",
    ]))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "added e5\n");
    let o = call(service(&["list"])).await;
    let listed = stdout(&o);
    let line = listed
        .lines()
        .find(|l| l.starts_with("e5 "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains("echo") && line.contains("running"), "{line}");
    // NAME KIND PROTO STATE ADDRESS, then where it is defined.
    assert!(line.ends_with("services.toml"), "{line}");
    let addr = line.split_whitespace().nth(4).unwrap();
    let o = run(&["echo", addr, "through the cli"], "").await;
    assert_eq!(stdout(&o), "THROUGH THE CLI\n", "{}", stderr(&o));

    // Errors name the field; a built-in takes only `enabled`.
    let o = call(service(&[
        "add",
        "e6",
        "--kind",
        "echo",
        "--setting",
        "listen=127.0.0.1:0",
        "--setting",
        "folder=/x",
    ]))
    .await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("folder: `folder` is not a setting of this kind"),
        "{}",
        stderr(&o)
    );
    let o = call(service(&["edit", "time", "--setting", "enabled=false"])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = call(service(&["list"])).await;
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("time ") && l.contains("disabled")),
        "{}",
        stdout(&o)
    );
    let o = call(service(&["rm", "e5"])).await;
    assert_eq!(stdout(&o), "removed e5\n", "{}", stderr(&o));

    // An edit keeps what the API never shows back (auth_key): it used to
    // be sent back without it and refused.
    let o = call(service(&[
        "add",
        "e8",
        "--kind",
        "echo",
        "--setting",
        "listen=127.0.0.1:0",
        "--setting",
        "auth=hmac-md5",
        "--setting",
        "auth_key=ni hao ma",
    ]))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = call(service(&[
        "edit",
        "e8",
        "--setting",
        "idle_timeout_ms=30000",
    ]))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let kept =
        std::fs::read_to_string(std::path::Path::new(&data_arg).join("services.toml")).unwrap();
    assert!(
        kept.contains("auth_key = \"ni hao ma\"") && kept.contains("idle_timeout_ms = 30000"),
        "{kept}"
    );

    // Without a token: refused, and said how to fix it.
    let o = run(
        &[
            "service",
            "--url",
            &url,
            "add",
            "e7",
            "--kind",
            "echo",
            "--setting",
            "listen=1",
        ],
        "",
    )
    .await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("give an admin token"), "{}", stderr(&o));
    drop(served);
}

#[tokio::test]
async fn toxic_adds_lists_switches_and_removes_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = common::Served::start(&data, &[ServiceKind::Echo], &[]).await;
    let url = served.web_url().trim_start_matches("http://").to_owned();
    let data_arg = data.to_str().unwrap().to_owned();
    let made = run(
        &[
            "token",
            "create",
            "ops",
            "--role",
            "admin",
            "--data-dir",
            &data_arg,
        ],
        "",
    )
    .await;
    assert!(made.status.success(), "{}", stderr(&made));
    let token = stdout(&made)
        .split_whitespace()
        .find(|w| w.starts_with("sbt_"))
        .expect("the token printed")
        .to_owned();
    let with = |cmd: &str, args: &[&str]| {
        let mut all = vec![cmd, "--url", url.as_str(), "--token", token.as_str()];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let call = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs, "").await
    };
    let upstream = format!("upstream={}", served.addr(Echo));
    let o = call(with(
        "service",
        &[
            "add",
            "px",
            "--kind",
            "tcp-proxy",
            "--setting",
            "listen=127.0.0.1:0",
            "--setting",
            &upstream,
        ],
    ))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = call(with(
        "toxic",
        &[
            "add",
            "px",
            "--type",
            "latency",
            "-a",
            "latency=50",
            "-a",
            "jitter=5",
        ],
    ))
    .await;
    assert_eq!(
        stdout(&o),
        "added latency_downstream to px\n",
        "{}",
        stderr(&o)
    );
    let o = call(with("toxic", &["add", "px", "--type", "nope"])).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("type: invalid toxic type"),
        "{}",
        stderr(&o)
    );
    let o = call(with(
        "toxic",
        &["add", "px", "--type", "latency", "-a", "latency=fast"],
    ))
    .await;
    assert!(stderr(&o).contains("not a number"), "{}", stderr(&o));
    let o = call(with(
        "toxic",
        &["edit", "px", "latency_downstream", "--enabled", "false"],
    ))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = call(with("toxic", &["list", "px"])).await;
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("latency_downstream "))
        .unwrap_or_else(|| panic!("{}", stdout(&o)))
        .to_owned();
    assert!(
        line.contains("off") && line.contains("latency=50") && line.contains("jitter=5"),
        "{line}"
    );
    let o = call(with("toxic", &["rm", "px", "latency_downstream"])).await;
    assert_eq!(
        stdout(&o),
        "removed latency_downstream from px\n",
        "{}",
        stderr(&o)
    );
    let o = call(with("toxic", &["rm", "px", "latency_downstream"])).await;
    assert!(!o.status.success());
    drop(served);
}
