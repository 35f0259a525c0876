//! The `stdio` kind over real sockets with real programs: `cat`, `bc` and
//! a Python script served to the network, a program's environment and working directory,
//! process groups that die with their connection, clients that never read,
//! the `max_instances` cap, and config errors that name their key.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::procs::{await_group_gone, group_members};
use common::{Harness, guard, read_until_closed};
use serde_json::Value;
use switchboard::config::Config;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The instance every test adds.
const NAME: &str = "prog";

/// Resolves a config holding `[services.prog] kind = "stdio"` plus `body`.
fn resolve(body: &str) -> Result<Config, String> {
    let text = format!("[services.{NAME}]\nkind = \"stdio\"\nlisten = \"127.0.0.1:0\"\n{body}\n");
    common::resolve_file(&text)
}

/// A harness running the built-in services and `prog` configured by `body`.
async fn start(body: &str) -> Harness {
    let extra = resolve(body).expect("the config resolves");
    Harness::start_with(|c| {
        c.services
            .extend(extra.services.into_iter().filter(|s| s.id.name() == NAME));
    })
    .await
}

async fn connect(h: &Harness) -> TcpStream {
    TcpStream::connect(h.addr(NAME)).await.unwrap()
}

/// TOML for an argv.
fn argv(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("argv = [{}]", quoted.join(", "))
}

/// Reads one line (the program's or our refusal).
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    let mut line = String::new();
    guard("a line", r.read_line(&mut line)).await.unwrap();
    line
}

#[tokio::test]
async fn cat_sends_the_bytes_back_and_they_are_counted() {
    let h = start(&argv(&["/bin/cat"])).await;
    let mut s = connect(&h).await;
    s.write_all(b"hello, cat\n").await.unwrap();
    let mut back = [0u8; 11];
    guard("echo", s.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, b"hello, cat\n");
    h.wait_for("bytes counted both ways", |snap| {
        let t = snap.totals(NAME);
        t.bytes_in == 11 && t.bytes_out == 11
    })
    .await;
    // A half-close is cat's EOF: it exits, and the connection closes after.
    s.shutdown().await.unwrap();
    let (rest, _) = read_until_closed(&mut s).await;
    assert!(rest.is_empty(), "{rest:?}");
    let lines = common::audited_commands(&h, Some(NAME), 1).await;
    assert_eq!(lines[0]["outcome"], "exit 0", "{lines:?}");
    assert_eq!(lines[0]["bytes_out"], 11);
}

#[tokio::test]
async fn bc_is_a_network_calculator() {
    assert!(
        Path::new("/usr/bin/bc").is_file(),
        "/usr/bin/bc is missing: install bc (scripts/test.sh does)"
    );
    let h = start(&argv(&["/usr/bin/bc", "-q"])).await;
    let mut s = connect(&h).await;
    s.write_all(b"2+3\n").await.unwrap();
    s.shutdown().await.unwrap();
    let (out, _) = read_until_closed(&mut s).await;
    assert_eq!(String::from_utf8_lossy(&out), "5\n");
}

/// The interpreter behind `python3`, resolved now: the program runs
/// without PATH.
fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs (scripts/test.sh installs it)");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_python_script_in_its_workdir_holds_a_line_conversation() {
    let dir = tempfile::tempdir().unwrap();
    // Numbers each line it answers, upper-cased; `quit` ends the session.
    std::fs::write(
        dir.path().join("script.py"),
        "import sys\n\
         for n, line in enumerate(sys.stdin, 1):\n\
         \x20   line = line.rstrip('\\n')\n\
         \x20   if line == 'quit':\n\
         \x20       print('bye')\n\
         \x20       break\n\
         \x20   print(f'{n}: {line.upper()}')\n",
    )
    .unwrap();
    let body = format!(
        "{}\nworkdir = {:?}\n",
        argv(&[&python(), "-u", "script.py"]),
        dir.path().display().to_string(),
    );
    let h = start(&body).await;
    let s = connect(&h).await;
    let (rd, mut wr) = s.into_split();
    let mut rd = BufReader::new(rd);
    // One line at a time: each answer comes before the next line is sent.
    wr.write_all(b"hello\n").await.unwrap();
    assert_eq!(read_line(&mut rd).await, "1: HELLO\n");
    wr.write_all(b"over the network\n").await.unwrap();
    assert_eq!(read_line(&mut rd).await, "2: OVER THE NETWORK\n");
    wr.write_all(b"quit\n").await.unwrap();
    assert_eq!(read_line(&mut rd).await, "bye\n");
    let mut rest = Vec::new();
    guard("the script ends", rd.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

#[tokio::test]
async fn the_program_sees_only_its_configured_environment_in_its_workdir() {
    let dir = tempfile::tempdir().unwrap();
    let script =
        "import json, os; print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd()}))";
    // LC_ALL set keeps Python from adding LC_CTYPE itself (PEP 538).
    let body = format!(
        "{}\nworkdir = {:?}\nenv = {{ GREETING = \"hello world\", LC_ALL = \"C.UTF-8\" }}\n",
        argv(&[&python(), "-c", script]),
        dir.path().display().to_string(),
    );
    let h = start(&body).await;
    let mut s = connect(&h).await;
    let (out, _) = read_until_closed(&mut s).await;
    let seen: Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    let env = seen["env"].as_object().unwrap();
    let names: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(names, ["GREETING", "LC_ALL"], "nothing else, not even PATH");
    assert_eq!(env["GREETING"], "hello world");
    let cwd = Path::new(seen["cwd"].as_str().unwrap())
        .canonicalize()
        .unwrap();
    assert_eq!(cwd, dir.path().canonicalize().unwrap());
}

#[tokio::test]
async fn a_group_that_ignores_sigterm_and_forks_dies_when_the_client_disconnects() {
    let h = start(&argv(&[
        "/bin/sh",
        "-c",
        "trap '' TERM; sleep 1000 & echo $$; sleep 1000",
    ]))
    .await;
    let mut reader = BufReader::new(connect(&h).await);
    let pgid: u32 = read_line(&mut reader).await.trim().parse().unwrap();
    guard("the shell and both sleeps run", async {
        while group_members(pgid).len() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let stream = reader.into_inner();
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream); // a reset: the client is gone, not half-closed
    await_group_gone(pgid).await;
    let lines = common::audited_commands(&h, Some(NAME), 1).await;
    assert_eq!(lines[0]["outcome"], "disconnected", "{lines:?}");
    assert_eq!(lines[0]["argv"][0], "/bin/sh");
    assert!(lines[0]["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[tokio::test]
async fn stopping_the_service_kills_its_groups() {
    let h = start(&argv(&["/bin/sh", "-c", "echo $$; sleep 1000"])).await;
    let mut reader = BufReader::new(connect(&h).await);
    let pgid: u32 = read_line(&mut reader).await.trim().parse().unwrap();
    guard("stop", h.supervisor.stop(NAME)).await.unwrap();
    await_group_gone(pgid).await;
    let lines = common::audited_commands(&h, Some(NAME), 1).await;
    assert_eq!(lines[0]["outcome"], "service stopped", "{lines:?}");
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_at_the_output_cap() {
    let h = start(&format!(
        "{}\nmax_output_bytes = 20000",
        argv(&["/usr/bin/yes"])
    ))
    .await;
    let mut s = connect(&h).await;
    // Nothing is read until the server has given up.
    let lines = common::audited_commands(&h, Some(NAME), 1).await;
    assert_eq!(
        lines[0]["outcome"], "error: output cap of 20000 bytes reached; program killed",
        "{lines:?}"
    );
    let (out, _) = read_until_closed(&mut s).await;
    assert_eq!(out.len(), 20_000);
    assert!(out.chunks(2).all(|c| c == b"y\n"));
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_at_the_deadline() {
    let h = start(&format!("{}\ntimeout_ms = 1000", argv(&["/usr/bin/yes"]))).await;
    let mut s = connect(&h).await;
    let lines = common::audited_commands(&h, Some(NAME), 1).await;
    assert_eq!(lines[0]["outcome"], "error: timed out after 1000 ms");
    let sent = lines[0]["bytes_out"].as_u64().unwrap();
    // Only what the socket buffers took was sent: far below the 16 MiB cap.
    assert!(sent > 0 && sent < 16 << 20, "{sent}");
    let (out, _) = read_until_closed(&mut s).await;
    assert_eq!(out.len() as u64, sent);
}

#[tokio::test]
async fn beyond_max_instances_clients_are_refused_and_no_process_is_left() {
    let h = start(&format!(
        "{}\nmax_instances = 4",
        argv(&["/bin/sh", "-c", "echo $$; exec cat"])
    ))
    .await;
    let addr = h.addr(NAME);
    let clients = (0..50).map(|_| async move {
        let mut r = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let first = read_line(&mut r).await;
        (first, r)
    });
    let all = guard("50 clients", futures_util::future::join_all(clients)).await;
    let (served, refused): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|(first, _)| first.trim().parse::<u32>().is_ok());
    assert_eq!(served.len(), 4);
    assert_eq!(refused.len(), 46);
    for (line, mut r) in refused {
        assert_eq!(
            line,
            "switchboard: prog is running its limit of 4 programs, try again later\n"
        );
        let mut rest = Vec::new();
        guard("closed", r.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.is_empty());
    }
    let mut pgids = Vec::new();
    for (line, mut r) in served {
        pgids.push(line.trim().parse::<u32>().unwrap());
        r.write_all(b"still here\n").await.unwrap();
        assert_eq!(read_line(&mut r).await, "still here\n");
    }
    h.wait_for("46 refusals counted", |s| s.totals(NAME).refused == 46)
        .await;
    // Everyone leaves; every group goes.
    for pgid in pgids {
        await_group_gone(pgid).await;
    }
    assert_eq!(common::audited_commands(&h, Some(NAME), 4).await.len(), 4);
}

#[test]
fn config_errors_name_the_key() {
    let key = format!("services.{NAME}.argv");
    for (body, why) in [
        (argv(&["cat"]), "not an absolute path"),
        (argv(&["/no/such/program"]), "No such file"),
        (argv(&[]), "empty"),
        (String::new(), "empty"),
        (argv(&["/etc/passwd"]), "not executable"),
    ] {
        let err = resolve(&body).unwrap_err();
        assert!(err.contains(&key) && err.contains(why), "{body}: {err}");
    }
    for (body, key, why) in [
        (
            format!("{}\nworkdir = \"/no/such/folder\"", argv(&["/bin/cat"])),
            "workdir",
            "/no/such/folder is not an existing folder",
        ),
        (
            format!("{}\nworkdir = \"/etc/passwd\"", argv(&["/bin/cat"])),
            "workdir",
            "not an existing folder",
        ),
    ] {
        let key = format!("services.{NAME}.{key}");
        let err = resolve(&body).unwrap_err();
        assert!(err.contains(&key) && err.contains(why), "{body}: {err}");
    }
    let err = resolve(&format!("{}\nargvv = 1", argv(&["/bin/cat"]))).unwrap_err();
    assert!(err.contains(&format!("services.{NAME}.argvv")), "{err}");
    let err = resolve(&format!("{}\nenv = [\"A=1\"]", argv(&["/bin/cat"]))).unwrap_err();
    assert!(err.contains(&format!("services.{NAME}.env")), "{err}");
}

#[test]
fn a_dashboard_instance_keeps_its_env_through_the_overlay() {
    use switchboard::config::overlay::{Overlay, validate};
    use switchboard::service::registry::read as kinds;
    use switchboard::service::stdio::Settings;
    let settings: BTreeMap<String, String> = [
        ("listen", "127.0.0.1:0"),
        ("argv", "/usr/bin/bc,-q"),
        ("env", "LANG=C.UTF-8,TZ=UTC"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    let allow = ["/usr/bin/bc".to_owned()];
    let (config, table) = validate(
        kinds,
        "calc",
        "stdio",
        &settings,
        &toml::Table::new(),
        &allow,
    )
    .unwrap();
    let env = &config.settings.get::<Settings>().unwrap().env;
    assert_eq!(env["TZ"], "UTC");
    // Written to services.toml and read back at the next start.
    let dir = tempfile::tempdir().unwrap();
    let overlay = Overlay {
        services: [("calc".to_owned(), table)].into(),
        ..Overlay::default()
    };
    overlay.write(dir.path()).unwrap();
    let mut again = Config::ephemeral(dir.path());
    again.stdio_allow = allow.to_vec();
    Overlay::read(dir.path())
        .unwrap()
        .apply(&mut again)
        .unwrap();
    let calc = again
        .services
        .iter()
        .find(|s| s.id.name() == "calc")
        .unwrap();
    assert_eq!(&calc.settings.get::<Settings>().unwrap().env, env);
    let err = validate(
        kinds,
        "calc",
        "stdio",
        &[("listen", "127.0.0.1:0"), ("argv", "bc")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
        &toml::Table::new(),
        &allow,
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("argv"), "{}", err.message);
    // Not in stdio_allow: refused at argv, at the field and at start.
    let err = validate(kinds, "calc", "stdio", &settings, &toml::Table::new(), &[]).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("argv"), "{}", err.message);
    assert!(err.message.contains("stdio_allow"), "{}", err.message);
    let mut strict = Config::ephemeral(dir.path());
    let err = Overlay::read(dir.path())
        .unwrap()
        .apply(&mut strict)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("services.calc.argv") && err.contains("stdio_allow"),
        "{err}"
    );
}
