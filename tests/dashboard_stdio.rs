//! What the Services API may start: a stdio program only from the config
//! file's `stdio_allow`; an unauthenticated kind beyond loopback only with
//! TLS or `public = true`; `env` values that no role reads back and an
//! edit keeps; and lists sent as JSON run with exactly their elements.

mod common;

use common::web::Web;
use common::{guard, read_until_closed};
use serde_json::json;

const ALLOWED: [&str; 2] = ["/bin/echo", "/usr/bin/env"];

async fn web() -> Web {
    Web::start_with(|c| c.stdio_allow = ALLOWED.map(str::to_owned).to_vec()).await
}

/// What instance `name` sends a client that says nothing.
async fn output(w: &Web, name: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(w.h.addr(name))
        .await
        .unwrap();
    let (bytes, _) = guard("the program's output", read_until_closed(&mut s)).await;
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn a_stdio_program_outside_stdio_allow_is_refused_at_argv() {
    let w = web().await;
    let s = w.admin().await;
    let body = json!({"name": "sh", "kind": "stdio",
        "settings": {"listen": "127.0.0.1:0", "argv": ["/bin/sh"]}});
    let r = w.send(s.act_json("POST", "/api/v1/services", &body)).await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    assert_eq!(r.json()["field"], "argv", "{}", r.body);
    assert!(r.body.contains("stdio_allow"), "{}", r.body);
    assert!(w.h.supervisor.id("sh").is_none());
}

#[tokio::test]
async fn an_unauthenticated_kind_beyond_loopback_needs_tls_or_public() {
    let w = web().await;
    let s = w.admin().await;
    for (kind, extra) in [
        ("echo", json!({})),
        ("stdio", json!({"argv": ["/bin/echo", "hi"]})),
        ("udp-echo", json!({})),
    ] {
        let mut settings = json!({"listen": "0.0.0.0:0"});
        for (k, v) in extra.as_object().unwrap() {
            settings[k] = v.clone();
        }
        let body = json!({"name": "open", "kind": kind, "settings": settings});
        let r = w.send(s.act_json("POST", "/api/v1/services", &body)).await;
        assert_eq!(r.status.as_u16(), 422, "{kind}: {}", r.body);
        assert_eq!(r.json()["field"], "listen", "{kind}: {}", r.body);
        assert!(r.body.contains("public = true"), "{}", r.body);
    }
}

#[tokio::test]
async fn json_lists_and_env_values_keep_their_commas_and_env_is_write_only() {
    let w = web().await;
    let (viewer, _, admin) = w.roles().await;
    let body = json!({"name": "say", "kind": "stdio", "settings": {
        "listen": "127.0.0.1:0", "argv": ["/bin/echo", "a,b", " lead", ""]}});
    let r = w
        .send(admin.act_json("POST", "/api/v1/services", &body))
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(output(&w, "say").await, "a,b  lead \n");

    let secret = "s3cret,with=commas";
    let body = json!({"name": "show", "kind": "stdio", "settings": {
        "listen": "127.0.0.1:0", "argv": ["/usr/bin/env"],
        "env": {"TOKEN": secret, "LANG": "C"}}});
    let r = w
        .send(admin.act_json("POST", "/api/v1/services", &body))
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert!(!r.body.contains(secret), "{}", r.body);
    assert!(
        output(&w, "show")
            .await
            .contains(&format!("TOKEN={secret}\n"))
    );
    for who in [&viewer, &admin] {
        let r = w.send(who.get("/api/v1/services/show/settings")).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        assert!(!r.body.contains("s3cret"), "{}", r.body);
        assert_eq!(
            r.json()["settings"]["env"],
            "LANG=•••, TOKEN=•••",
            "{}",
            r.body
        );
    }
    // An edit that leaves env out, or sends it back as shown, keeps it.
    for env in [
        None,
        Some(json!("LANG=•••, TOKEN=•••")),
        Some(json!({"TOKEN": "•••"})),
    ] {
        let mut settings =
            json!({"listen": "127.0.0.1:0", "argv": ["/usr/bin/env"], "timeout_ms": 5000});
        if let Some(env) = &env {
            settings["env"] = env.clone();
        }
        let body = json!({"settings": settings});
        let r = w
            .send(admin.act_json("PUT", "/api/v1/services/show", &body))
            .await;
        assert_eq!(r.status.as_u16(), 200, "{env:?}: {}", r.body);
        let out = output(&w, "show").await;
        assert!(out.contains(&format!("TOKEN={secret}\n")), "{env:?}: {out}");
    }
}
