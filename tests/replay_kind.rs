//! A capture is replayed only into an instance of its own kind: the
//! Inspect page offers no other, and the endpoint refuses one with a 409
//! that says why (an echo conversation sent into `login` used to land as
//! failed sign-ins in the audit log).

mod common;

use axum::http::StatusCode;
use common::guard;
use common::web::Web;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_replay_goes_only_to_an_instance_of_the_captures_kind() {
    let w = Web::start_with(|c| c.service_mut("echo").capture.on = true).await;
    let admin = w.admin().await;
    let body = json!({"name": "echo-2", "kind": "echo", "settings": {"listen": "127.0.0.1:0"}});
    let r = w
        .send(admin.act_json("POST", "/api/v1/services", &body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let mut s = TcpStream::connect(w.h.addr("echo")).await.unwrap();
    let snap =
        w.h.wait_for("the connection opens", |s| {
            s.connections_of("echo").count() == 1
        })
        .await;
    let id = snap.connections_of("echo").next().unwrap().id;
    s.write_all(b"user admin\n").await.unwrap();
    let mut got = [0u8; 11];
    guard("the echo", s.read_exact(&mut got)).await.unwrap();
    drop(s);
    w.h.wait_for("the connection closes", |s| {
        s.connections.iter().all(|c| c.id != id)
    })
    .await;

    // The page offers echo and echo-2, nothing else.
    let page = w.send(admin.get(&format!("/inspect/{id}"))).await;
    assert_eq!(page.status, StatusCode::OK);
    // The replay target's options (the page has other selects).
    let targets = page
        .body
        .split("id=\"replay-target\"")
        .nth(1)
        .and_then(|rest| rest.split("</select>").next())
        .unwrap_or_else(|| panic!("no replay target: {}", page.body));
    let offered: Vec<&str> = targets
        .split("<option value=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(offered, ["echo", "echo-2"], "{}", page.body);

    let path = format!("/api/v1/connections/{id}/replay");
    for other in ["login", "exec", "files", "files-classic"] {
        let r = w
            .send(admin.act_json("POST", &path, &json!({"target": other})))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{other}: {}", r.body);
        let why = r.error();
        assert!(
            why.contains(&format!("{other} is a {other} instance"))
                && why.contains("capture is of echo")
                && why.contains("same kind"),
            "{why}"
        );
    }
    // Nothing reached login: no connection, no failed sign-in.
    let events = w
        .send(admin.get("/api/v1/events?service=login&type=opened"))
        .await
        .json();
    assert_eq!(events.as_array().unwrap().len(), 0, "{events}");
    let audit = w.send(admin.get("/api/v1/audit")).await.body;
    assert!(
        !audit.contains("auth_failed") && !audit.contains("login_failed"),
        "{audit}"
    );

    // Its own kind, another instance: replayed.
    let r = w
        .send(admin.act_json("POST", &path, &json!({"target": "echo-2"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["diff"]["equal"], true, "{}", r.body);
    // Hostile bodies: a wrong type, an unknown field; a viewer.
    for body in [
        json!({"target": 5}),
        json!({"target": ["echo"]}),
        json!({"x": 1}),
    ] {
        let r = w.send(admin.act_json("POST", &path, &body)).await;
        assert!(r.status.is_client_error(), "{body}: {}", r.status);
    }
    let (viewer, _, _) = w.roles().await;
    let r = w
        .send(viewer.act_json("POST", &path, &json!({"target": "echo-2"})))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
