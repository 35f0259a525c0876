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

/// Every change made through the dashboard is audited with the address of
/// the client that made it, as its socket shows it (behind a trusted proxy,
/// the client the proxy names: tests/proxy_addr.rs): instances started,
/// added, edited and removed, the wire inspector, tokens, toxics, a
/// connection closed.
#[tokio::test]
async fn every_dashboard_change_is_audited_with_the_clients_address() {
    use common::web::{loopback, raw_request, serve, sign_in_request};
    use serde_json::{Value, json};
    let w = Web::start().await;
    let addr = serve(&w).await;
    let from = loopback(23);
    let r = raw_request(
        addr,
        from,
        &sign_in_request("admin", common::ADMIN_PASSWORD),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let cookie = r
        .head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let csrf = r.json()["csrf_token"].as_str().expect("a token").to_owned();
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        async move {
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\
                 X-CSRF-Token: {csrf}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let r = raw_request(addr, from, &request).await;
            assert!((200..300).contains(&r.status), "{method} {path}: {r:?}");
            r
        }
    };
    let echo = w.h.addr("echo");
    call("POST", "/api/v1/services/time/restart".into(), None).await;
    call(
        "PUT",
        "/api/v1/services/echo/capture".into(),
        Some(json!({"capture": true})),
    )
    .await;
    call(
        "POST",
        "/api/v1/tokens".into(),
        Some(json!({"name": "ci", "role": "viewer"})),
    )
    .await;
    call("DELETE", "/api/v1/tokens/ci".into(), None).await;
    let proxy = json!({"name": "front", "kind": "tcp-proxy", "settings": {
        "listen": "127.0.0.1:0", "upstream": echo.to_string()}});
    call("POST", "/api/v1/services".into(), Some(proxy)).await;
    call(
        "POST",
        "/api/v1/services/front/toxics".into(),
        Some(json!({"type": "latency", "attributes": {"latency": 1}})),
    )
    .await;
    call(
        "PATCH",
        "/api/v1/services/front".into(),
        Some(json!({"settings": {"idle_timeout_ms": 30000}})),
    )
    .await;
    call("DELETE", "/api/v1/services/front".into(), None).await;
    // A connection of echo's, closed from the dashboard.
    let _held = tokio::net::TcpStream::connect(echo).await.unwrap();
    let mut id = None;
    common::guard("the connection listed", async {
        while id.is_none() {
            let list = call("GET", "/api/v1/connections".into(), None).await;
            id = list.json().as_array().and_then(|all| {
                all.iter()
                    .find(|c| c["service"] == "echo" && c["closed_at"].is_null())
                    .and_then(|c| c["id"].as_u64())
            });
        }
    })
    .await;
    let id = id.expect("listed");
    call("DELETE", format!("/api/v1/connections/{id}"), None).await;

    let lines = common::web::audit_lines(&w).await;
    let changes: Vec<&Value> = lines.iter().filter(|l| l["event"] != "login").collect();
    let mut events: Vec<&str> = changes.iter().filter_map(|l| l["event"].as_str()).collect();
    events.dedup();
    for event in [
        "service",
        "capture",
        "token",
        "service_config",
        "toxic",
        "close_connection",
    ] {
        assert!(events.contains(&event), "{event} in {events:?}");
    }
    let configs: Vec<&str> = changes
        .iter()
        .filter(|l| l["event"] == "service_config")
        .filter_map(|l| l["action"].as_str())
        .collect();
    assert_eq!(configs, ["add", "edit", "remove"]);
    for line in &changes {
        assert_eq!(line["peer"], "127.0.0.23", "{line}");
    }
}
