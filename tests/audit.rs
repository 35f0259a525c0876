//! The Audit page and its API: admins only, newest first, filtered, paged.

mod common;

use axum::http::StatusCode;
use common::web::Web;
use switchboard::users::Role;

#[tokio::test]
async fn admins_read_the_audit_log_newest_first_filtered_and_paged() {
    let w = Web::start().await;
    let s = w.admin().await;
    // Something to read: a few service actions, each an audit line.
    for action in ["stop", "start", "restart"] {
        let r = w
            .send(s.act("POST", &format!("/api/v1/services/time/{action}")))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let page = w.send(s.get("/api/v1/audit?limit=2")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let page = page.json();
    let lines = page["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["action"], "restart", "{page}");
    assert_eq!(lines[1]["action"], "start", "{page}");
    let older = page["older"].as_u64().expect("more to read");
    let next = w
        .send(s.get(&format!("/api/v1/audit?limit=100&before={older}")))
        .await
        .json();
    let next_lines = next["lines"].as_array().unwrap();
    assert_eq!(next_lines[0]["action"], "stop", "{next}");
    assert!(next_lines.iter().any(|l| l["event"] == "login"), "{next}");

    let only = w.send(s.get("/api/v1/audit?q=RESTART")).await.json();
    let only = only["lines"].as_array().unwrap();
    assert_eq!(only.len(), 1, "{only:?}");

    let r = w
        .send(s.get(&format!("/api/v1/audit?q={}", "x".repeat(201))))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let page = w.send(s.get("/audit")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"audit\""));

    // Not for viewers.
    w.h.supervisor
        .users()
        .add("vera", Role::Viewer, "vera-password-123")
        .unwrap();
    let v = w.sign_in("vera", "vera-password-123").await;
    assert_eq!(
        w.send(v.get("/api/v1/audit")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(w.send(v.get("/audit")).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn failed_dashboard_sign_ins_are_auth_failed_events_naming_only_real_accounts() {
    use common::web::json_request;
    use serde_json::json;
    let w = Web::start().await;
    for (user, password) in [("admin", "wrong-password"), ("hunter2-typed-here", "x")] {
        let r = w
            .send(json_request(
                "POST",
                "/api/v1/session",
                &json!({"username": user, "password": password}),
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let s = w.admin().await;
    let events = w
        .send(s.get("/api/v1/events?service=web&type=auth_failed"))
        .await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.body);
    let events = events.json();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["service"], "web");
    assert_eq!(events[0]["user"], "admin");
    assert!(events[1]["user"].is_null(), "{:?}", events[1]);
    assert!(
        !events[1].to_string().contains("hunter2"),
        "an unknown name is never repeated: {}",
        events[1]
    );
    // The overview's strip counts them with the services' failures.
    let page = w.send(s.get("/")).await.body;
    assert!(page.contains("data-sum=\"auth\">2<"), "the strip shows 2");
}
