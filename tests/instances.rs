//! Several instances of one kind, side by side: two echoes and two files
//! services with different folders from one config, each with its own
//! counters, state, address, API view and `/metrics` series; and the binary
//! started with such a config, its addresses read from `--ready-file`.

mod common;

use std::path::Path;

use common::web::Web;
use common::{TEST_KEY, guard};
use switchboard::client::{EchoClient, FilesClient};
use switchboard::config::Config;
use switchboard::supervisor::ServiceState;

/// A second echo and a second files service with its own folder, on
/// ephemeral ports.
fn extra_instances(folder: &Path) -> String {
    format!(
        r#"
        [services.echo-2]
        kind = "echo"
        listen = "127.0.0.1:0"
        idle_timeout_ms = 5000

        [services.backup]
        kind = "files"
        listen = "127.0.0.1:0"
        folder = "{}"
        max_file_bytes = 1000
        "#,
        folder.display()
    )
}

/// Adds the instances `text` declares to a test config.
fn add_instances(c: &mut Config, text: &str) {
    let extra = common::resolve_file(text).expect("the config resolves");
    c.services.extend(
        extra
            .services
            .into_iter()
            .filter(|s| ["echo-2", "backup"].contains(&s.id.name())),
    );
}

#[tokio::test]
async fn two_echoes_and_two_files_services_run_side_by_side() {
    let folder = tempfile::tempdir().unwrap();
    let text = extra_instances(folder.path());
    let w = Web::start_with(|c| add_instances(c, &text)).await;
    let h = &w.h;
    assert_ne!(h.target_of("echo"), h.target_of("echo-2"));

    // Each echo answers on its own port, and counts its own bytes.
    let mut second = EchoClient::connect(&h.target_of("echo-2"), common::GUARD)
        .await
        .unwrap();
    assert_eq!(second.round_trip(b"hello").await.unwrap(), b"HELLO");
    let mut first = EchoClient::connect(&h.target_of("echo"), common::GUARD)
        .await
        .unwrap();
    assert_eq!(first.round_trip(b"abc").await.unwrap(), b"ABC");
    let snap = h
        .wait_for("both echoes counted", |s| {
            s.totals("echo-2").bytes_in == 5 && s.totals("echo").bytes_in == 3
        })
        .await;
    assert_eq!(snap.connections_of("echo-2").count(), 1);
    assert_eq!(snap.connections_of("echo").count(), 1);

    // A file put to `backup` lands in its folder, not in the shared one.
    let mut backup =
        FilesClient::connect(&h.target_of("backup"), TEST_KEY.as_bytes(), common::GUARD)
            .await
            .unwrap();
    let stored = backup.put("a.txt", 5, &b"12345"[..], |_| {}).await.unwrap();
    assert_eq!(stored.name, "a.txt");
    assert_eq!(
        std::fs::read(folder.path().join("a.txt")).unwrap(),
        b"12345"
    );
    let mut files = FilesClient::connect(&h.target_of("files"), TEST_KEY.as_bytes(), common::GUARD)
        .await
        .unwrap();
    let (listed, _) = files.list().await.unwrap();
    assert!(listed.iter().all(|f| f.name != "a.txt"), "{listed:?}");
    // Its own cap: 1000 bytes, not the built-in files' 2 GiB.
    let err = backup
        .put("big.bin", 2000, &vec![0u8; 2000][..], |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1000"), "{err}");

    // Stopping one instance leaves the other of its kind running.
    h.supervisor.stop("echo-2").await.unwrap();
    assert_eq!(h.supervisor.state("echo-2"), ServiceState::Stopped);
    assert_eq!(h.supervisor.state("echo"), ServiceState::Running);
    assert_eq!(first.round_trip(b"x").await.unwrap(), b"X");

    // The API lists every instance with its kind; metrics label both.
    let s = w.admin().await;
    let services = w.send(s.get("/api/v1/services")).await.json();
    let kinds: Vec<(String, String, String)> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let text = |k: &str| v[k].as_str().unwrap().to_owned();
            (text("name"), text("kind"), text("state"))
        })
        .collect();
    for want in [
        ("echo", "echo", "running"),
        ("echo-2", "echo", "stopped"),
        ("files", "files", "running"),
        ("backup", "files", "running"),
    ] {
        let want = (want.0.to_owned(), want.1.to_owned(), want.2.to_owned());
        assert!(kinds.contains(&want), "{want:?} not in {kinds:?}");
    }
    let one = w.send(s.get("/api/v1/services/backup")).await.json();
    assert_eq!(one["accepted"], 1, "{one}");
    assert_eq!(one["kind"], "files", "{one}");
    let metrics = w.send(s.get("/metrics")).await.body;
    for line in [
        "switchboard_service_up{service=\"echo-2\",kind=\"echo\",proto=\"tcp\"} 0",
        "switchboard_received_bytes_total{service=\"echo-2\",kind=\"echo\"} 5",
        "switchboard_upload_duration_seconds_count{service=\"backup\",kind=\"files\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }
    // Started again from the API, by its name.
    let r = w.send(s.act("POST", "/api/v1/services/echo-2/start")).await;
    assert_eq!(r.json()["state"], "running", "{}", r.body);
    let r = w.send(s.act("POST", "/api/v1/services/nope/start")).await;
    assert_eq!(r.status, axum::http::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_binary_runs_added_instances_and_writes_their_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("backup");
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten = \"127.0.0.1:0\"\n{}\n{}",
            extra_instances(&folder),
            common::only_services(&[switchboard::kind::ServiceKind::Echo])
                .chunks(2)
                .map(|pair| {
                    let (key, value) = pair[1].split_once('=').unwrap();
                    let (table, field) = key.rsplit_once('.').unwrap();
                    let value = match value {
                        "false" => value.to_owned(),
                        v => format!("\"{v}\""),
                    };
                    format!("[{table}]\n{field} = {value}\n")
                })
                .filter(|t| !t.starts_with("[web]"))
                .collect::<String>()
        ),
    )
    .unwrap();
    let ready = dir.path().join("ready.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--ready-file")
        .arg(&ready)
        .env("SWITCHBOARD_ADMIN_PASSWORD", "instances-test-password")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let banner = common::read_banner(&mut child).await.join("\n");
    assert!(banner.contains("echo-2 (echo)"), "{banner}");
    assert!(banner.contains("backup (files)"), "{banner}");
    let ready: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    let services = &ready["services"];
    assert_eq!(services["echo-2"]["kind"], "echo", "{ready}");
    assert_eq!(services["echo-2"]["state"], "running", "{ready}");
    assert_eq!(services["backup"]["kind"], "files", "{ready}");
    assert_eq!(services["time"]["state"], "disabled", "{ready}");
    assert!(
        ready["web"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let addr = services["echo-2"]["addr"].as_str().unwrap();
    let mut echo = guard("connect", EchoClient::connect(addr, common::GUARD))
        .await
        .unwrap();
    assert_eq!(echo.round_trip(b"side").await.unwrap(), b"SIDE");
    assert!(folder.is_dir(), "the backup folder is made at start");
}

#[tokio::test]
async fn instances_can_be_added_and_removed_while_running() {
    let h = common::Harness::start().await;
    let text = "[services.echo-3]\nkind = \"echo\"\nlisten = \"127.0.0.1:0\"\n";
    let config = common::resolve_file(text).unwrap();
    let added = config.service("echo-3").unwrap().clone();
    h.supervisor.add(added.clone()).await.unwrap();
    assert_eq!(h.supervisor.state("echo-3"), ServiceState::Running);
    let target = h.target("echo-3");
    let mut echo = EchoClient::connect(&target, common::GUARD).await.unwrap();
    assert_eq!(echo.round_trip(b"new").await.unwrap(), b"NEW");
    let err = h.supervisor.add(added).await.unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");

    // Removing it stops it (its connection too) and forgets the name.
    h.supervisor.remove("echo-3").await.unwrap();
    assert!(h.supervisor.id("echo-3").is_none());
    assert!(echo.round_trip(b"gone").await.is_err());
    assert!(tokio::net::TcpStream::connect(&target).await.is_err());
    let err = h.supervisor.start("echo-3").await.unwrap_err();
    assert!(err.to_string().contains("no service is named"), "{err}");
    // The others never noticed.
    assert_eq!(h.supervisor.state("echo"), ServiceState::Running);
}

#[tokio::test]
async fn admins_add_edit_and_remove_instances_from_the_api_and_the_file_agrees() {
    use axum::http::StatusCode;
    use serde_json::json;
    let w = Web::start().await;
    let s = w.admin().await;
    let overlay_file = switchboard::config::overlay::path(&w.h.config.data_dir);

    // Mistakes come back naming their field, and nothing is kept.
    for (body, field, status) in [
        (
            json!({"name": "Bad", "kind": "echo", "settings": {"listen": "127.0.0.1:0"}}),
            "name",
            422,
        ),
        (
            json!({"name": "e2", "kind": "ehco", "settings": {"listen": "127.0.0.1:0"}}),
            "kind",
            422,
        ),
        (
            json!({"name": "e2", "kind": "echo", "settings": {}}),
            "listen",
            422,
        ),
        (
            json!({"name": "e2", "kind": "echo", "settings": {"listen": "127.0.0.1:0", "folder": "/x"}}),
            "folder",
            422,
        ),
        (
            json!({"name": "e2", "kind": "echo", "settings": {"listen": "127.0.0.1:0", "max_connections": 0}}),
            "max_connections",
            422,
        ),
        (
            json!({"name": "echo", "kind": "echo", "settings": {"listen": "127.0.0.1:0"}}),
            "name",
            409,
        ),
        (
            json!({"name": "e2", "kind": "echo", "settings": {"listen": w.h.target("echo")}}),
            "listen",
            409,
        ),
    ] {
        let r = w.send(s.act_json("POST", "/api/v1/services", &body)).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        assert_eq!(r.json()["field"], field, "{body}: {}", r.body);
    }
    assert!(!overlay_file.exists(), "a refused instance is not kept");
    assert!(w.h.supervisor.id("e2").is_none(), "nor left running");

    // Added: it runs, is listed, and is in the file.
    let body = json!({"name": "e2", "kind": "echo", "settings": {"listen": "127.0.0.1:0", "idle_timeout_ms": "5000"}});
    let r = w.send(s.act_json("POST", "/api/v1/services", &body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["source"], "dashboard");
    let mut echo = EchoClient::connect(&w.h.target("e2"), common::GUARD)
        .await
        .unwrap();
    assert_eq!(echo.round_trip(b"added").await.unwrap(), b"ADDED");
    let kept = std::fs::read_to_string(&overlay_file).unwrap();
    assert!(
        kept.contains("[services.e2]") && kept.contains("idle_timeout_ms = 5000"),
        "{kept}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&overlay_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // Edited: restarted with the new settings; a bad edit leaves it as it was.
    let edit = json!({"settings": {"listen": "127.0.0.1:0", "max_connections": "3"}});
    let r = w
        .send(s.act_json("PUT", "/api/v1/services/e2", &edit))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["settings"]["max_connections"], "3");
    let bad = json!({"settings": {"listen": "nowhere"}});
    let r = w.send(s.act_json("PUT", "/api/v1/services/e2", &bad)).await;
    assert_eq!(r.json()["field"], "listen", "{}", r.body);
    assert_eq!(w.h.supervisor.state("e2"), ServiceState::Running);

    // A built-in one can only be turned off and on.
    let r = w
        .send(s.act_json(
            "PUT",
            "/api/v1/services/time",
            &json!({"settings": {"listen": "1"}}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = w
        .send(s.act_json(
            "PUT",
            "/api/v1/services/time",
            &json!({"settings": {"enabled": false}}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(w.h.supervisor.state("time"), ServiceState::Stopped);
    let r = w.send(s.act("DELETE", "/api/v1/services/time")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    // What a restart would read agrees with what runs.
    let mut restarted = Config::ephemeral(&w.h.config.data_dir);
    switchboard::config::overlay::Overlay::read(&w.h.config.data_dir)
        .unwrap()
        .apply(&mut restarted)
        .unwrap();
    assert!(!restarted.service("time").unwrap().enabled);
    assert_eq!(restarted.service_mut("e2").tcp_mut().max_connections, 3);

    // Removed: stopped, gone from the list and the file; audited throughout.
    let r = w.send(s.act("DELETE", "/api/v1/services/e2")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(w.h.supervisor.id("e2").is_none());
    assert!(
        !std::fs::read_to_string(&overlay_file)
            .unwrap()
            .contains("e2")
    );
    let audit = common::web::audit_lines(&w).await;
    let changes: Vec<(String, bool)> = audit
        .iter()
        .filter(|l| l["event"] == "service_config" && l["service"] == "e2")
        .map(|l| {
            (
                l["action"].as_str().unwrap().to_owned(),
                l["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(changes.contains(&("add".into(), true)), "{changes:?}");
    assert!(changes.contains(&("edit".into(), false)), "{changes:?}");
    assert!(changes.contains(&("remove".into(), true)), "{changes:?}");
    assert!(
        audit
            .iter()
            .all(|l| l["user"] == "admin" || l["event"] != "service_config")
    );

    // Viewers see the page and the kinds, not the buttons.
    let page = w.send(s.get("/services")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"instance-form\""));
    let kinds = w.send(s.get("/api/v1/kinds")).await.json();
    assert!(
        kinds
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kind"] == "files")
    );
}

#[tokio::test]
async fn a_proxys_card_shows_its_upstream_down() {
    let w = Web::start().await;
    // An upstream nobody listens on: bound, then let go.
    let gone = switchboard::service::listen::bind_inet(([127, 0, 0, 1], 0).into())
        .unwrap()
        .local_addr()
        .unwrap();
    let text = format!(
        "[services.front]\nkind = \"tcp-proxy\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{gone}\"\n"
    );
    let config = common::resolve_file(&text).unwrap();
    w.h.supervisor
        .add(config.service("front").unwrap().clone())
        .await
        .unwrap();
    let mut changed = w.h.stats.changed();
    guard("the probe's verdict", async {
        while !w.h.stats.recent_events().iter().any(|e| {
            matches!(&e.kind, switchboard::stats::EventKind::ServiceState { state, .. }
                if state.starts_with("upstream ") && state.contains(" down"))
        }) {
            changed.changed().await.unwrap();
        }
    })
    .await;
    let s = w.admin().await;
    let page = w.send(s.get("/")).await.body;
    let card = page
        .split("<article")
        .find(|c| c.contains("data-service=\"front\""))
        .expect("a card for the proxy");
    assert!(
        card.contains("data-field=\"upstream\" data-down=\"true\"")
            && card.contains(&format!("upstream {gone} down")),
        "{card}"
    );
}

#[tokio::test]
async fn the_send_page_offers_every_echo_and_time_instance_and_says_which_is_down() {
    let folder = tempfile::tempdir().unwrap();
    let text = extra_instances(folder.path());
    let w = Web::start_with(|c| add_instances(c, &text)).await;
    w.h.supervisor.stop("time").await.unwrap();
    let s = w.admin().await;
    let page = w.send(s.get("/send")).await.body;
    let option = |name: &str| {
        page.split("<option")
            .find(|o| o.contains(&format!("value=\"{name}\"")))
            .unwrap_or_else(|| panic!("no {name} option in {page}"))
            .to_owned()
    };
    assert!(
        option("echo-2").contains("data-kind=\"echo\""),
        "{}",
        option("echo-2")
    );
    assert!(!option("echo").contains("disabled"));
    let time = option("time");
    assert!(
        time.contains("disabled") && time.contains("stopped"),
        "{time}"
    );
    assert!(
        !page.contains("value=\"backup\""),
        "files is not a Send target"
    );
}
