//! A reload racing a dashboard edit of an instance (`PUT
//! /api/v1/services/{name}` while the reload runs): the end state must be
//! one of the two orders — the running instance and `services.toml` agree
//! on the edit — never the reload's stale copy of the file applied over
//! the edit. The reload is held (a failpoint gate) after it has read its
//! files and before it applies them, the edit is sent then, and the gate
//! opened: the one order in which an edit could be lost.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use common::web::Web;
use serde_json::json;
use switchboard::config::ServiceConfig;
use switchboard::failpoint::{Pause, gate};
use switchboard::service::Limits;

fn idle(config: &ServiceConfig) -> Duration {
    match &config.limits {
        Limits::Tcp(t) => t.idle_timeout,
        Limits::Udp(_) => unreachable!("a TCP instance"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_during_a_reload_is_applied_after_it_never_lost() {
    let w = Web::start().await;
    let s = w.admin().await;
    let add = json!({"name": "dash", "kind": "echo",
        "settings": {"listen": "127.0.0.1:0", "idle_timeout_ms": "1000"}});
    let r = w.send(s.act_json("POST", "/api/v1/services", &add)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The "config file": what the reload reads; it changes built-in echo.
    let file = Arc::new(Mutex::new(w.h.config.clone()));
    {
        let mut f = file.lock().unwrap();
        let echo = f.services.iter_mut().find(|c| c.id.name() == "echo");
        match &mut echo.expect("echo").limits {
            Limits::Tcp(t) => t.idle_timeout = Duration::from_secs(77),
            Limits::Udp(_) => unreachable!("echo is TCP"),
        }
    }
    let load = {
        let file = Arc::clone(&file);
        Box::new(move || Ok(file.lock().unwrap().clone()))
    };
    let reloader =
        switchboard::reload::Reloader::new(w.h.supervisor.clone(), w.h.config.clone(), load);
    w.state.set_reloader(reloader.clone());

    let held = gate(Pause::ReloadApply);
    let reload = tokio::spawn(async move { reloader.reload("test", None).await });
    common::guard("the reload read its files", held.reached()).await;

    // The edit, while the reload holds its stale copy of services.toml.
    let edit = json!({"settings": {"listen": "127.0.0.1:0", "idle_timeout_ms": "2000"}});
    let put = w.send(s.act_json("PUT", "/api/v1/services/dash", &edit));
    tokio::pin!(put);
    let early = tokio::time::timeout(Duration::from_millis(300), &mut put).await;
    let waited = early.is_err();
    held.release();
    let report = common::guard("the reload", reload)
        .await
        .expect("task")
        .expect("the reload succeeds");
    assert!(
        report.applied.restarted.contains(&"echo".to_owned()),
        "{report:?}"
    );
    let r = match early {
        Ok(r) => r,
        Err(_) => common::guard("the edit", put).await,
    };
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // One order (reload, then edit): running and kept agree on the edit.
    let running = w.h.supervisor.config_of("dash").expect("dash runs");
    assert_eq!(
        idle(&running),
        Duration::from_millis(2000),
        "the edit runs, not the reload's stale copy"
    );
    let kept = std::fs::read_to_string(w.h.config.data_dir.join("services.toml")).expect("kept");
    assert!(kept.contains("idle_timeout_ms = 2000"), "{kept}");
    let echo = w.h.supervisor.config_of("echo").expect("echo");
    assert_eq!(idle(&echo), Duration::from_secs(77), "the reload ran");
    assert!(waited, "the edit waited for the reload under way");

    // And a reload after the edit keeps it (the file says so).
    let again = switchboard::reload::Reloader::new(
        w.h.supervisor.clone(),
        file.lock().unwrap().clone(),
        Box::new({
            let file = Arc::clone(&file);
            move || Ok(file.lock().unwrap().clone())
        }),
    );
    let report = again.reload("test", None).await.expect("reload");
    assert!(
        report.applied.kept.contains(&"dash".to_owned()),
        "{report:?}"
    );
    let running = w.h.supervisor.config_of("dash").expect("dash runs");
    assert_eq!(idle(&running), Duration::from_millis(2000));
}
