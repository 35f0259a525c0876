//! The process-wide descriptor budget: a cap that cannot fit is refused at
//! its field over the Services API and at start from the config file, and
//! /metrics shows the budget and what running instances were promised.

mod common;

use std::process::Stdio;

use common::guard;
use common::web::Web;
use serde_json::json;
use switchboard::kind::ServiceKind::{Echo, Time};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A metric's value from the text format.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn a_udp_proxy_with_a_million_peers_is_refused_at_max_peers() {
    let w = Web::start().await;
    let s = w.admin().await;
    let before = w.send(s.get("/metrics")).await;
    assert_eq!(before.status.as_u16(), 200, "{}", before.body);
    let budget = metric(&before.body, "switchboard_fd_budget");
    let promised = metric(&before.body, "switchboard_fd_promised");
    assert!(budget > 0 && budget < 1_000_000, "budget {budget}");
    assert!(promised > 0, "the running instances promise something");
    eprintln!("fd budget {budget}, promised at start {promised}");
    assert!(before.body.contains("# TYPE switchboard_fd_budget gauge"));
    assert!(before.body.contains("# HELP switchboard_fd_promised "));

    let body = json!({"name": "ring", "kind": "udp-proxy", "settings": {
        "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9", "max_peers": 1_000_000}});
    let r = w.send(s.act_json("POST", "/api/v1/services", &body)).await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    assert_eq!(r.json()["field"], "max_peers", "{}", r.body);
    let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("needs 1000001 file descriptors")
            && error.contains(&format!("of the budget {budget}")),
        "{error}"
    );
    assert!(w.h.supervisor.id("ring").is_none(), "not left behind");

    // One that fits runs, and its promise shows.
    let body = json!({"name": "ring", "kind": "udp-proxy", "settings": {
        "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9", "max_peers": 100}});
    let r = w.send(s.act_json("POST", "/api/v1/services", &body)).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let after = w.send(s.get("/metrics")).await;
    assert_eq!(
        metric(&after.body, "switchboard_fd_promised"),
        promised + 101,
        "a listener and 100 peers"
    );
    // Raising it past the budget is refused at the field too.
    let body = json!({"settings": {
        "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9", "max_peers": 1_000_000}});
    let r = w
        .send(s.act_json("PUT", "/api/v1/services/ring", &body))
        .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    assert_eq!(r.json()["field"], "max_peers", "{}", r.body);
}

#[tokio::test]
async fn a_config_file_promising_more_than_the_budget_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["serve".to_owned(), "--data-dir".to_owned()];
    args.push(dir.path().to_str().unwrap().to_owned());
    args.extend(common::only_services(&[Echo, Time]));
    args.extend(
        [
            "web.listen=127.0.0.1:0",
            "services.echo.listen=127.0.0.1:0",
            "services.time.listen=127.0.0.1:0",
            "services.echo.max_connections=1000000",
        ]
        .iter()
        .flat_map(|s| ["--set".to_owned(), (*s).to_owned()]),
    );
    let out = guard(
        "serve to exit",
        tokio::process::Command::new(BIN)
            .args(&args)
            .env_remove("SWITCHBOARD_KEEP_GOING")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("echo: `max_connections` needs 1000001 file descriptors"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not started: 1 listener failed"),
        "{stderr}"
    );
}
