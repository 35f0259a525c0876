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
