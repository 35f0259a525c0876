//! Toxiproxy's HTTP API on `web.toxiproxy_listen`, proven with the clients
//! people use, installed from their registries by `scripts/test.sh`: npm
//! `toxiproxy-node-client` and PyPI `toxiproxy-python` each create a
//! proxy, add and update a latency toxic and measure it, populate and
//! reset (tests/toxiproxy/*). Then the documented error cases, status by
//! status and body by body, the browser refusal and the loopback rule.
//!
//! The clients must be installed: `SWITCHBOARD_SKIP_TOXIPROXY_CLIENTS=1`
//! skips the two client runs (and only them).

mod common;

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::guard;
use common::web::Web;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The API served for real on 127.0.0.1:0; its address.
async fn serve(w: &Web) -> std::net::SocketAddr {
    let listener =
        switchboard::service::listen::bind_inet(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(switchboard::web::toxiproxy::serve(
        listener,
        w.state.clone(),
        w.h.root.token.clone(),
    ));
    addr
}

/// Where scripts/test.sh installed the npm client.
fn node_modules() -> PathBuf {
    #[allow(clippy::disallowed_methods)] // the test run's own setting
    let dir = std::env::var_os("SWITCHBOARD_TOXIPROXY_NODE").map_or_else(
        || {
            #[allow(clippy::disallowed_methods)] // the test run's own setting
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
                PathBuf::from,
            );
            target.join("toxiproxy-node")
        },
        PathBuf::from,
    );
    dir.join("node_modules")
}

/// Runs a client script; its one JSON line of figures.
async fn run(mut cmd: tokio::process::Command, what: &str) -> Value {
    let out = guard(what, cmd.kill_on_drop(true).output())
        .await
        .unwrap_or_else(|e| panic!("{what} did not run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    let line = stdout.lines().last().unwrap_or_default();
    eprintln!("{what}: {line}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{what} printed {line:?}: {e}"))
}

#[tokio::test]
async fn the_npm_client_drives_proxies_and_toxics() {
    let modules = node_modules();
    if !modules.join("toxiproxy-node-client").exists()
        && common::skip_allowed(
            "TOXIPROXY_CLIENTS",
            &format!(
                "npm toxiproxy-node-client is not in {} (scripts/test.sh installs it)",
                modules.display()
            ),
        )
    {
        return;
    }
    let w = Web::start().await;
    let api = serve(&w).await;
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("tests/toxiproxy/node_client.js")
        .env("NODE_PATH", &modules)
        .env("TOXIPROXY_URL", format!("http://{api}"))
        .env("ECHO_ADDR", w.h.target("echo"));
    let figures = run(cmd, "the npm client").await;
    assert!(figures["with100"].as_f64().unwrap() >= 100.0);
    // What it made is a tcp-proxy instance like any other, kept.
    let kept = std::fs::read_to_string(w.h.dir.path().join("services.toml")).expect("kept");
    assert!(kept.contains("[services.node-px]"), "{kept}");
    assert!(!kept.contains("node-pop"), "{kept}");
}

#[tokio::test]
async fn the_pypi_client_drives_proxies_and_toxics() {
    let installed = std::process::Command::new("python3")
        .args(["-c", "import toxiproxy"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed
        && common::skip_allowed(
            "TOXIPROXY_CLIENTS",
            "PyPI toxiproxy-python is not installed (scripts/test.sh installs it)",
        )
    {
        return;
    }
    let w = Web::start().await;
    let api = serve(&w).await;
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg("tests/toxiproxy/python_client.py")
        .env("TOXIPROXY_HOST", api.ip().to_string())
        .env("TOXIPROXY_PORT", api.port().to_string())
        .env("ECHO_ADDR", w.h.target("echo"));
    let figures = run(cmd, "the PyPI client").await;
    assert!(figures["with300"].as_f64().unwrap() >= 300.0);
}

/// One request to the API's router: status and JSON body (or text).
async fn call(w: &Web, method: &str, path: &str, body: Option<&str>) -> (StatusCode, Value) {
    let app = switchboard::web::toxiproxy::router(w.state.clone());
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("user-agent", "toxiproxy-test")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let res = app.oneshot(req).await.expect("infallible");
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn errors_have_toxiproxys_statuses_and_bodies() {
    let w = Web::start().await;
    let echo = w.h.target("echo");
    let err = |status: u16, error: &str| json!({"error": error, "status": status});
    let (s, b) = call(&w, "POST", "/proxies", Some("{}")).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::BAD_REQUEST,
            err(400, "missing required field: name")
        )
    );
    let (s, b) = call(&w, "POST", "/proxies", Some(r#"{"name":"a"}"#)).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::BAD_REQUEST,
            err(400, "missing required field: upstream")
        )
    );
    let (s, b) = call(&w, "POST", "/proxies", Some("{not json")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .starts_with("bad request body: "),
        "{b}"
    );
    let (s, b) = call(&w, "GET", "/proxies/nope", None).await;
    assert_eq!((s, b), (StatusCode::NOT_FOUND, err(404, "proxy not found")));
    let (s, _) = call(&w, "DELETE", "/proxies/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A built-in service is not a proxy.
    let (s, _) = call(&w, "GET", "/proxies/echo/toxics", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let body = json!({"name": "px", "listen": "localhost:0", "upstream": echo}).to_string();
    let (s, p) = call(&w, "POST", "/proxies", Some(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["toxics"], json!([]));
    assert_eq!(p["enabled"], true);
    let (s, b) = call(&w, "POST", "/proxies", Some(&body)).await;
    assert_eq!(
        (s, b),
        (StatusCode::CONFLICT, err(409, "proxy already exists"))
    );
    // A name switchboard cannot take, and an upstream that is no address.
    let bad_name = r#"{"name":"Bad_Name","upstream":"127.0.0.1:1"}"#;
    let (s, b) = call(&w, "POST", "/proxies", Some(bad_name)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["status"], 400);
    let nowhere = r#"{"name":"ok","upstream":"nowhere"}"#;
    let (s, b) = call(&w, "POST", "/proxies", Some(nowhere)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

    let toxics = "/proxies/px/toxics";
    let (s, b) = call(&w, "POST", toxics, Some(r#"{"type":"nope"}"#)).await;
    assert_eq!(
        (s, b),
        (StatusCode::BAD_REQUEST, err(400, "invalid toxic type"))
    );
    let (s, b) = call(
        &w,
        "POST",
        toxics,
        Some(r#"{"type":"latency","stream":"x"}"#),
    )
    .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::BAD_REQUEST,
            err(
                400,
                "stream was invalid, can be either upstream or downstream"
            )
        )
    );
    let latency = r#"{"type":"latency","attributes":{"latency":5}}"#;
    let (s, t) = call(&w, "POST", toxics, Some(latency)).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["name"], "latency_downstream");
    assert_eq!(t["toxicity"], 1.0);
    let (s, b) = call(&w, "POST", toxics, Some(latency)).await;
    assert_eq!(
        (s, b),
        (StatusCode::CONFLICT, err(409, "toxic already exists"))
    );
    let (s, b) = call(&w, "GET", "/proxies/px/toxics/nope", None).await;
    assert_eq!((s, b), (StatusCode::NOT_FOUND, err(404, "toxic not found")));
    let (s, b) = call(&w, "PATCH", "/proxies/px/toxics/nope", Some("{}")).await;
    assert_eq!((s, b), (StatusCode::NOT_FOUND, err(404, "toxic not found")));
    let (s, _) = call(&w, "DELETE", "/proxies/px/toxics/latency_downstream", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = call(&w, "DELETE", "/proxies/px/toxics/latency_downstream", None).await;
    assert_eq!((s, b), (StatusCode::NOT_FOUND, err(404, "toxic not found")));

    let (s, b) = call(&w, "POST", "/populate", Some(r#"[{"name":"q"}]"#)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"], "missing required field: upstream");
    assert_eq!(b["proxies"], json!([]));
    let (s, v) = call(&w, "GET", "/version", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["version"].is_string(), "{v}");
    let (s, _) = call(&w, "POST", "/reset", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&w, "DELETE", "/proxies/px", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn browsers_are_refused_and_only_loopback_listens() {
    let w = Web::start().await;
    let app = switchboard::web::toxiproxy::router(w.state.clone());
    let req = Request::builder()
        .uri("/proxies")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64)")
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let err = common::resolve_file("[web]\ntoxiproxy_listen = \"0.0.0.0:8474\"\n").unwrap_err();
    assert!(err.contains("loopback"), "{err}");
    let ok = common::resolve_file("[web]\ntoxiproxy_listen = \"localhost:8474\"\n").unwrap();
    assert_eq!(
        ok.web.toxiproxy_listen,
        Some(std::net::SocketAddr::from(([127, 0, 0, 1], 8474)))
    );
    // Big bodies are refused before they are read whole.
    let app = switchboard::web::toxiproxy::router(w.state.clone());
    let big = format!("[{}]", vec!["{}"; 100_000].join(","));
    let req = Request::builder()
        .method("POST")
        .uri("/populate")
        .body(Body::from(big))
        .unwrap();
    let res = guard("a reply", app.oneshot(req))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
