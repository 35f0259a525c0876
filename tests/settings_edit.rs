//! Editing an instance never drops a setting: `/api/v1/kinds` describes
//! every key, and `PATCH /api/v1/services/{name}` (what the Services page
//! sends) changes only the keys it carries. For every kind, an instance
//! with every key set away from its default keeps all of them, exactly,
//! when one is changed. Plus the hostile side of the new endpoint.

mod common;

use std::path::Path;

use common::web::{Signed, Web};
use serde_json::{Value, json};
use switchboard::config::overlay::Overlay;

const STDIO: &str = "/bin/echo";

async fn web() -> Web {
    Web::start_with(|c| c.stdio_allow = vec![STDIO.to_owned()]).await
}

fn make_cert(dir: &Path) -> (String, String) {
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("own.pem"), dir.join("own-key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c.display().to_string(), k.display().to_string())
}

/// A value other than the default for each described key.
fn away_from_default(key: &Value, dir: &Path, cert: &(String, String)) -> Value {
    let name = key["key"].as_str().unwrap();
    if let Some(choices) = key["choices"].as_array() {
        return choices[1].clone();
    }
    let bounded = |d: u64, min: u64| if d > min { d - 1 } else { d + 1 };
    match key["type"].as_str().unwrap() {
        "bool" => json!(!key["default"].as_bool().unwrap()),
        "int" | "duration" => json!(bounded(
            key["default"].as_u64().unwrap(),
            key["min"].as_u64().unwrap()
        )),
        "address" => json!("127.0.0.1:0"),
        "path" => json!(dir.display().to_string()),
        "table" => json!({"A": "1", "B": "two, three"}),
        "list" => match name {
            "allow" => json!(["date", "ls"]),
            "trusted_proxies" => json!(["127.0.0.0/8"]),
            "argv" => json!([STDIO, "a, b"]),
            other => panic!("no sample for list `{other}`: add one here"),
        },
        "text" => match name {
            "upstream" => json!("127.0.0.1:1"),
            "tls_cert" => json!(cert.0),
            "tls_key" => json!(cert.1),
            "auth_key" => json!("ni hao ma"),
            "folder" => json!(dir.display().to_string()),
            other => panic!("no sample for text `{other}`: add one here"),
        },
        other => panic!("unknown type {other}"),
    }
}

fn saved(w: &Web, name: &str) -> toml::Table {
    Overlay::read(&w.h.config.data_dir)
        .unwrap()
        .services
        .remove(name)
        .unwrap_or_default()
}

async fn patch(w: &Web, s: &Signed, name: &str, settings: Value) -> common::web::Reply {
    let path = format!("/api/v1/services/{name}");
    w.send(s.act_json("PATCH", &path, &json!({ "settings": settings })))
        .await
}

#[tokio::test]
async fn every_kind_with_every_key_set_keeps_them_all_when_one_is_changed() {
    let w = web().await;
    let s = w.admin().await;
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path());
    let kinds = w.send(s.get("/api/v1/kinds")).await.json();
    for kind in kinds.as_array().unwrap() {
        let k = kind["kind"].as_str().unwrap();
        let keys = kind["keys"].as_array().unwrap();
        let mut settings = serde_json::Map::new();
        for key in keys {
            let name = key["key"].as_str().unwrap().to_owned();
            assert!(
                !key["description"].as_str().unwrap().is_empty(),
                "{k}.{name}"
            );
            settings.insert(name, away_from_default(key, dir.path(), &cert));
        }
        let name = format!("all-{k}");
        let body = json!({"name": name, "kind": k, "settings": settings});
        let r = w.send(s.act_json("POST", "/api/v1/services", &body)).await;
        assert_eq!(r.status.as_u16(), 200, "{k}: {}", r.body);
        let before = saved(&w, &name);
        assert_eq!(
            before.len(),
            keys.len() + 1,
            "{k}: every key and `kind` saved: {before:?}"
        );

        // Change one number the way the page does.
        let one = keys
            .iter()
            .find(|key| key["type"] == "duration" || key["type"] == "int")
            .expect("every kind has a number");
        let field = one["key"].as_str().unwrap();
        let now = before[field].as_integer().unwrap();
        let to = if now > one["min"].as_i64().unwrap() {
            now - 1
        } else {
            now + 1
        };
        let r = patch(&w, &s, &name, json!({ field: to })).await;
        assert_eq!(r.status.as_u16(), 200, "{k}: {}", r.body);
        let mut want = before.clone();
        want.insert(field.to_owned(), toml::Value::Integer(to));
        assert_eq!(saved(&w, &name), want, "{k}: only {field} changed");

        // A key back to its default with null; the rest stay.
        let r = patch(&w, &s, &name, json!({ field: null })).await;
        assert_eq!(r.status.as_u16(), 200, "{k}: {}", r.body);
        want.remove(field);
        assert_eq!(saved(&w, &name), want, "{k}: only {field} reset");
        let r = w
            .send(s.act("DELETE", &format!("/api/v1/services/{name}")))
            .await;
        assert_eq!(r.status.as_u16(), 200, "{k}: {}", r.body);
    }
}

#[tokio::test]
async fn a_proxy_edited_by_patch_keeps_its_proxy_protocol_and_connect_timeout() {
    let w = web().await;
    let s = w.admin().await;
    let body = json!({"name": "front", "kind": "tcp-proxy", "settings": {
        "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1",
        "proxy_protocol": "v1", "connect_timeout_ms": 2000}});
    let r = w.send(s.act_json("POST", "/api/v1/services", &body)).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let r = patch(&w, &s, "front", json!({"idle_timeout_ms": 30000})).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let got = r.json();
    assert_eq!(got["settings"]["proxy_protocol"], "v1", "{got}");
    assert_eq!(got["settings"]["connect_timeout_ms"], "2000", "{got}");
    assert_eq!(got["settings"]["idle_timeout_ms"], "30000", "{got}");
    // An empty change is no change: nothing restarts.
    let r = patch(&w, &s, "front", json!({})).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
}

#[tokio::test]
async fn patch_refuses_what_it_cannot_apply_and_changes_nothing() {
    let w = web().await;
    let (viewer, operator, admin) = w.roles().await;
    let body = json!({"name": "e2", "kind": "echo", "settings": {
        "listen": "127.0.0.1:0", "idle_timeout_ms": 5000}});
    let r = w
        .send(admin.act_json("POST", "/api/v1/services", &body))
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let before = saved(&w, "e2");

    for who in [&viewer, &operator] {
        let r = patch(&w, who, "e2", json!({"idle_timeout_ms": 6000})).await;
        assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    }
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (json!({"idle_timeout_ms": 1}), 422, Some("idle_timeout_ms")),
        (
            json!({"idle_timeout_ms": "soon"}),
            422,
            Some("idle_timeout_ms"),
        ),
        (json!({"idle_timeout_ms": {"a": "b"}}), 422, None),
        (json!({"no_such_key": 1}), 422, Some("no_such_key")),
        (json!({"kind": "login"}), 422, Some("kind")),
        (json!({"name": "other"}), 422, Some("name")),
        (json!({"capture": [1, 2]}), 422, Some("capture")),
        (json!({"listen": "0.0.0.0:0"}), 422, Some("listen")),
    ];
    for (settings, status, field) in cases {
        let r = patch(&w, &admin, "e2", settings.clone()).await;
        assert_eq!(r.status.as_u16(), status, "{settings}: {}", r.body);
        if let Some(field) = field {
            assert_eq!(r.json()["field"], field, "{settings}: {}", r.body);
        }
        assert_eq!(saved(&w, "e2"), before, "{settings} changed nothing");
    }
    let many: serde_json::Map<String, Value> =
        (0..100).map(|i| (format!("k{i}"), json!(1))).collect();
    let r = patch(&w, &admin, "e2", Value::Object(many)).await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    let r = w
        .send(admin.act_json("PATCH", "/api/v1/services/e2", &json!({"settings": 5})))
        .await;
    assert!(r.status.is_client_error(), "{}", r.body);
    let r = w
        .send(admin.act_json(
            "PATCH",
            "/api/v1/services/e2",
            &json!({"extra": {}, "settings": {}}),
        ))
        .await;
    assert!(r.status.is_client_error(), "{}", r.body);
    let r = patch(&w, &admin, "nobody", json!({"enabled": false})).await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    // A built-in instance: only `enabled`.
    let r = patch(&w, &admin, "echo", json!({"idle_timeout_ms": 6000})).await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.body);
    let r = patch(&w, &admin, "echo", json!({"enabled": false})).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(r.json()["settings"]["enabled"], "false");
    assert_eq!(saved(&w, "e2"), before);
}
