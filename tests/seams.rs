//! Small seams between features, each seen by a user: `service edit`
//! changes only the settings it names (`--replace` replaces them all), its
//! `--setting` has help, `service list` says where each instance is
//! defined, and a token's `last used` survives a shutdown.

mod common;

use common::{Served, guard};
use switchboard::kind::ServiceKind;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// `switchboard ARGS --data-dir DIR`: (success, stdout, stderr).
async fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = guard(
        "the CLI exits",
        tokio::process::Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("SWITCHBOARD_TOKEN")
            .output(),
    )
    .await
    .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn ok(dir: &std::path::Path, args: &[&str]) -> String {
    let (ok, out, err) = cli(dir, args).await;
    assert!(ok, "switchboard {args:?}: {err}");
    out
}

async fn served(dir: &std::path::Path) -> (Served, String, String) {
    let served = Served::start(
        dir,
        &[ServiceKind::Echo],
        &[("SWITCHBOARD_ADMIN_PASSWORD", "seams-password")],
    )
    .await;
    let url = served.web_url();
    let addr = url.trim_start_matches("http://").to_owned();
    let token = ok(dir, &["token", "create", "ops", "--role", "admin"]).await;
    (served, addr, token.trim().to_owned())
}

#[tokio::test]
async fn service_edit_changes_only_the_named_settings_and_list_says_where_defined() {
    let dir = tempfile::tempdir().unwrap();
    let (served, addr, token) = served(dir.path()).await;
    let api = ["--url", addr.as_str(), "--token", token.as_str()];
    let with = |args: &[&'static str]| -> Vec<String> {
        args.iter()
            .copied()
            .chain(api.iter().copied())
            .map(str::to_owned)
            .collect()
    };
    let run = |args: Vec<String>| {
        let dir = dir.path().to_owned();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&dir, &args).await
        }
    };
    let add = with(&[
        "service",
        "add",
        "echo-2",
        "--kind",
        "echo",
        "--setting",
        "listen=127.0.0.1:0",
        "--setting",
        "max_connections=7",
    ]);
    assert!(run(add).await.0);
    let (good, _, err) = run(with(&[
        "service",
        "edit",
        "echo-2",
        "--setting",
        "idle_timeout_ms=1234",
    ]))
    .await;
    assert!(good, "{err}");
    let saved = std::fs::read_to_string(dir.path().join("services.toml")).unwrap();
    assert!(saved.contains("max_connections = 7"), "kept: {saved}");
    assert!(saved.contains("idle_timeout_ms = 1234"), "changed: {saved}");

    let (_, list, _) = run(with(&["service", "list"])).await;
    let header = list.lines().next().unwrap();
    assert!(header.ends_with("DEFINED IN"), "{list}");
    let line = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {list}"))
            .to_owned()
    };
    assert!(line("echo").ends_with("built in"), "{list}");
    assert!(line("echo-2").ends_with("services.toml"), "{list}");

    // --replace: exactly what is given, so `listen` is required again.
    let (good, _, err) = run(with(&[
        "service",
        "edit",
        "echo-2",
        "--replace",
        "--setting",
        "idle_timeout_ms=5",
    ]))
    .await;
    assert!(!good && err.contains("listen"), "{err}");

    let (_, help, _) = cli(dir.path(), &["service", "edit", "--help"]).await;
    assert!(help.contains("A setting to change"), "{help}");
    assert!(help.contains("--replace"), "{help}");
    served.terminate().await;
}

/// The first use of a token is written at once, later ones at most once a
/// minute: a use after that (here, a second token's) is only in memory
/// until the dashboard stops, which must write it.
#[tokio::test]
async fn a_tokens_last_use_is_written_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (served, addr, first) = served(dir.path()).await;
    let second = ok(
        dir.path(),
        &["token", "create", "later", "--role", "viewer"],
    )
    .await;
    for token in [first.as_str(), second.trim()] {
        ok(
            dir.path(),
            &["service", "list", "--url", &addr, "--token", token],
        )
        .await;
    }
    let (status, log) = served.terminate().await;
    assert!(status.success(), "{log}");
    let listed = ok(dir.path(), &["token", "list"]).await;
    let later = listed
        .lines()
        .find(|l| l.starts_with("later "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(!later.ends_with("never"), "{listed}");
}

/// `exec`'s status: the remote command's own code passed through; 125
/// when the command did not run (not allowed, nothing listening); 126 when
/// the service refused our key, never a code a remote command could give
/// for the same reason.
#[tokio::test]
async fn exec_exit_codes_tell_its_own_failures_from_the_remote_ones() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[ServiceKind::Exec], &[]).await;
    let addr = served.addr(ServiceKind::Exec);
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = free.local_addr().unwrap().to_string();
    drop(free);
    let code = |args: Vec<String>, key: Option<&'static str>| {
        let dir = dir.path().to_owned();
        async move {
            let mut cmd = tokio::process::Command::new(BIN);
            // Before the command: after `--` it would be the remote's.
            cmd.arg("--data-dir")
                .arg(&dir)
                .args(&args)
                .env_remove("SWITCHBOARD_KEY");
            if let Some(key) = key {
                cmd.env("SWITCHBOARD_KEY", key);
            }
            let out = guard("exec", cmd.output()).await.unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let run = |what: &[&str]| {
        let mut all = v(&["exec", &addr, "--"]);
        all.extend(v(what));
        all
    };
    assert_eq!(code(run(&["ls", "/no/such/dir"]), None).await.0, Some(2));
    let (status, err) = code(run(&["cat", "/etc/passwd"]), None).await;
    assert_eq!(status, Some(125), "{err}");
    let (status, err) = code(run(&["echo", "x"]), Some("not the key")).await;
    assert_eq!(status, Some(126), "{err}");
    assert!(err.contains("refused our key"), "{err}");
    let (status, err) = code(v(&["exec", &nobody, "--", "echo", "x"]), None).await;
    assert_eq!(status, Some(125), "{err}");
    served.terminate().await;
}

/// The man page has an EXIT STATUS section with exec's own codes.
#[tokio::test]
async fn the_man_page_lists_every_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let page = ok(dir.path(), &["man"]).await;
    let section = page
        .split(".SH \"EXIT STATUS\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no EXIT STATUS section"));
    for status in ["\\fB0\\fR", "\\fB2\\fR", "exec: 125", "exec: 126", "128+N"] {
        assert!(section.contains(status), "{status} in {section}");
    }
}

/// `--help` says every key is in the README's configuration section: each
/// key the code reads appears there as `KEY =` (its last part, under its
/// table), so a new key cannot be left out.
#[test]
fn every_config_key_is_in_the_readmes_key_list() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let missing: Vec<String> = switchboard::config::Config::keys()
        .into_iter()
        .filter(|key| {
            let last = key.rsplit('.').next().unwrap_or(key);
            !readme.contains(&format!("\n{last} =")) && !readme.contains(&format!("# {last} ="))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from README.md: {missing:?}"
    );
}
