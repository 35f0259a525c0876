//! API tokens: made by `switchboard token` or the dashboard, used as
//! `Authorization: Bearer` with no cookie and no CSRF header, refused (and
//! rate-limited) when malformed, unknown, revoked or expired, and never
//! written anywhere but as a hash.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::web::{RawReply, Reply, Web, base, json_request};
use common::{Served, guard};
use switchboard::kind::ServiceKind;
use switchboard::tokens::Tokens;
use switchboard::users::Role;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// `switchboard ARGS --data-dir DIR`; panics unless it exits 0; its stdout.
async fn cli(dir: &std::path::Path, args: &[&str]) -> String {
    let out = guard(
        "the CLI exits",
        tokio::process::Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .env_remove("SWITCHBOARD_CONFIG")
            .output(),
    )
    .await
    .expect("the binary runs");
    assert!(
        out.status.success(),
        "switchboard {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// One request over a real socket, as curl would send it.
async fn raw(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawReply {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("send");
    stream.write_all(body.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    guard("the reply", stream.read_to_end(&mut out))
        .await
        .expect("read");
    RawReply::parse(&out)
}

fn bearer(method: &str, path: &str, token: &str) -> Request<Body> {
    base(method, path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn bearer_json(method: &str, path: &str, token: &str, body: &Value) -> Request<Body> {
    base(method, path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn audit_lines(dir: &std::path::Path) -> (String, Vec<Value>) {
    let text = std::fs::read_to_string(switchboard::audit::path(dir)).unwrap_or_default();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
        .collect();
    (text, lines)
}

#[tokio::test]
async fn a_cli_token_works_on_the_running_server_without_cookie_or_csrf_and_is_never_written()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let served = Served::start(
        dir.path(),
        &[ServiceKind::Echo],
        &[("SWITCHBOARD_ADMIN_PASSWORD", "admin-password-for-tests")],
    )
    .await;
    let url = served.web_url();

    // Made while the server runs: it picks the file up.
    let token = cli(dir.path(), &["token", "create", "ci", "--role", "admin"]).await;
    let token = token.trim().to_owned();
    assert!(token.starts_with("sbt_") && token.len() == 68, "{token}");
    let auth = format!("Bearer {token}");

    let r = raw(
        &url,
        "GET",
        "/api/v1/services",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json().as_array().is_some_and(|a| !a.is_empty()));

    // A state-changing request: no cookie, no CSRF header.
    let body = json!({"name": "made-by-ci", "role": "viewer"}).to_string();
    let r = raw(
        &url,
        "POST",
        "/api/v1/tokens",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let second = r.json()["token"]
        .as_str()
        .expect("the new token")
        .to_owned();
    let r = raw(
        &url,
        "GET",
        "/api/v1/session",
        &[("Authorization", &format!("Bearer {second}"))],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["user"], "token:made-by-ci");
    assert_eq!(r.json()["role"], "viewer");

    let listed = cli(dir.path(), &["token", "list"]).await;
    assert!(
        listed.contains("ci") && listed.contains("made-by-ci"),
        "{listed}"
    );
    let ci_line = listed
        .lines()
        .find(|l| l.starts_with("ci "))
        .expect("a line for ci");
    assert!(!ci_line.ends_with("last used never"), "{ci_line}");
    assert!(!listed.contains(&token) && !listed.contains(&second));

    // Revoked from the CLI: the running server refuses it at once.
    cli(dir.path(), &["token", "revoke", "ci"]).await;
    let r = raw(
        &url,
        "GET",
        "/api/v1/services",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.json()["error"].as_str().unwrap().contains("revoked"),
        "{r:?}"
    );

    let (status, stderr) = served.terminate().await;
    assert!(status.success(), "{stderr}");
    // The access log names the token that asked (never its text).
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("route=/api/v1/tokens") && l.contains("user=token:ci")),
        "{stderr}"
    );
    let (audit, lines) = audit_lines(dir.path());
    let used = lines
        .iter()
        .find(|l| l["event"] == "token" && l["action"] == "use" && l["method"] == "POST")
        .unwrap_or_else(|| panic!("the POST is audited: {audit}"));
    assert_eq!(used["token"], "ci");
    assert_eq!(used["ok"], true);
    for action in ["create", "revoke"] {
        assert!(
            lines
                .iter()
                .any(|l| l["action"] == action && l["token"] == "ci"),
            "{action} of ci is audited: {audit}"
        );
    }
    assert!(
        lines.iter().any(|l| l["action"] == "create"
            && l["token"] == "made-by-ci"
            && l["user"] == "token:ci"),
        "{audit}"
    );
    for secret in [&token, &second] {
        assert!(!audit.contains(secret.as_str()), "a token in the audit log");
        assert!(
            !stderr.contains(secret.as_str()),
            "a token in the server log"
        );
        assert!(!audit.contains(&secret[4..]) && !stderr.contains(&secret[4..]));
    }
    let file = std::fs::read_to_string(switchboard::tokens::path(dir.path()))?;
    assert!(!file.contains(&second[4..]), "only the hash is stored");
    Ok(())
}

#[tokio::test]
async fn roles_apply_to_tokens_a_viewer_token_cannot_operate() {
    let w = Web::start().await;
    let tokens = Tokens::open(&w.h.config.data_dir).unwrap();
    let viewer = tokens.create("look", Role::Viewer, None).unwrap().0;
    let operator = tokens.create("send", Role::Operator, None).unwrap().0;

    let r = w.send(bearer("GET", "/api/v1/connections", &viewer)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let body = json!({"text": "hello"});
    let r = w
        .send(bearer_json(
            "POST",
            "/api/v1/services/echo/send",
            &viewer,
            &body,
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.error().contains("operator"), "{}", r.body);
    let r = w.send(bearer("GET", "/api/v1/tokens", &operator)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "admin only: {}", r.body);

    // The operator token sends, with no cookie and no CSRF header, even
    // with an Origin a browser would have been refused for.
    let req = base("POST", "/api/v1/services/echo/send")
        .header(header::AUTHORIZATION, format!("Bearer {operator}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ORIGIN, "http://elsewhere.example")
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = w.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    w.h.supervisor.audit().flush().await;
    let (audit, lines) = audit_lines(&w.h.config.data_dir);
    let denied = lines
        .iter()
        .find(|l| l["action"] == "use" && l["token"] == "look")
        .unwrap_or_else(|| panic!("the refused POST is audited: {audit}"));
    assert_eq!(denied["ok"], false);
    assert_eq!(denied["path"], "/api/v1/services/echo/send");
    assert!(
        !lines
            .iter()
            .any(|l| l["token"] == "look" && l["method"] == "GET"),
        "reads are not audited: {audit}"
    );
    assert!(!audit.contains(&viewer) && !audit.contains(&operator));
}

#[tokio::test]
async fn malformed_unknown_revoked_and_expired_tokens_get_401() {
    let w = Web::start().await;
    let tokens = Tokens::open(&w.h.config.data_dir).unwrap();
    let revoked = tokens.create("gone", Role::Admin, None).unwrap().0;
    tokens.revoke("gone").unwrap();
    let expired = tokens
        .create("old", Role::Admin, Some(Duration::ZERO))
        .unwrap()
        .0;
    let unknown = format!("sbt_{}", "ab".repeat(32));
    let cases = [
        ("sbt_short", "malformed"),
        ("", "malformed"),
        (&revoked[..revoked.len() - 1], "malformed"),
        (&unknown, "unknown or revoked"),
        (&revoked, "unknown or revoked"),
        (&expired, "expired"),
    ];
    for (token, why) in cases {
        let r = w.send(bearer("GET", "/api/v1/services", token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}: {}", r.body);
        assert!(r.error().contains(why), "{token:?}: {}", r.body);
        assert!(r.header("www-authenticate").starts_with("Bearer"));
        if token.len() > 20 {
            assert!(!r.body.contains(token), "the token is not echoed back");
        }
    }
    w.h.supervisor.audit().flush().await;
    let (audit, lines) = audit_lines(&w.h.config.data_dir);
    assert!(
        lines
            .iter()
            .any(|l| l["token"] == "old" && l["reason"] == "expired"),
        "{audit}"
    );
    for secret in [&revoked, &expired, &unknown] {
        assert!(!audit.contains(secret.as_str()));
    }
}

#[tokio::test]
async fn failed_tokens_count_with_failed_sign_ins_and_end_in_429() {
    let w = Web::start_with(|c| c.web.max_failures_per_minute = 3).await;
    let tokens = Tokens::open(&w.h.config.data_dir).unwrap();
    let good = tokens.create("good", Role::Viewer, None).unwrap().0;
    let wrong = json!({"username": "admin", "password": "not the password"});
    let r = w
        .send(json_request("POST", "/api/v1/session", &wrong))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for _ in 0..2 {
        let r = w.send(bearer("GET", "/api/v1/services", "sbt_bad")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // Three failures in all: the address is out.
    let r = w.send(bearer("GET", "/api/v1/services", "sbt_bad")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    let r = w.send(bearer("GET", "/api/v1/services", &good)).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even a good token waits"
    );
    let right = json!({"username": "admin", "password": common::ADMIN_PASSWORD});
    let r = w
        .send(json_request("POST", "/api/v1/session", &right))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "and sign-ins too");
}

#[tokio::test]
async fn a_token_and_a_session_cookie_together_are_refused() {
    let w = Web::start().await;
    let s = w.admin().await;
    let token = Tokens::open(&w.h.config.data_dir)
        .unwrap()
        .create("both", Role::Admin, None)
        .unwrap()
        .0;
    // With the cookie, the browser's checks stand: no CSRF header, no way.
    let req = base("POST", "/api/v1/services/echo/stop")
        .header(header::COOKIE, &s.cookie)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let r = w.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.error().contains("not both"), "{}", r.body);
    let req = base("POST", "/api/v1/services/echo/stop")
        .header(header::COOKIE, &s.cookie)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ORIGIN, "http://elsewhere.example")
        .body(Body::empty())
        .unwrap();
    let r = w.send(req).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the Origin check: {}",
        r.body
    );
    assert_eq!(
        w.h.supervisor.state(ServiceKind::Echo),
        switchboard::supervisor::ServiceState::Running
    );
}

#[tokio::test]
async fn the_tokens_page_and_api_make_list_and_revoke_tokens_showing_each_once() {
    let w = Web::start().await;
    w.h.supervisor
        .users()
        .add("vera", Role::Viewer, "vera's password")
        .unwrap();
    let admin = w.admin().await;
    let vera = w.sign_in("vera", "vera's password").await;

    let page = w.send(admin.get("/tokens")).await;
    assert_eq!(page.status, StatusCode::OK);
    for marker in [
        "id=\"token-form\"",
        "id=\"token-name\"",
        "id=\"token-role\"",
        "id=\"token-expires\"",
        "id=\"tokens\"",
        "id=\"nav-tokens\"",
    ] {
        assert!(page.body.contains(marker), "{marker} missing");
    }
    let r = w.send(vera.get("/tokens")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w.send(vera.get("/")).await;
    assert!(!r.body.contains("nav-tokens"), "no link for non-admins");

    let create = |body: Value, csrf: bool| {
        let mut b = base("POST", "/api/v1/tokens")
            .header(header::COOKIE, &admin.cookie)
            .header(header::CONTENT_TYPE, "application/json");
        if csrf {
            b = b.header("x-csrf-token", &admin.csrf);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    let made = json!({"name": "deploy", "role": "operator", "expires": "30d"});
    let r = w.send(create(made.clone(), false)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "CSRF as usual: {}", r.body);
    let r: Reply = w.send(create(made.clone(), true)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let created = r.json();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("sbt_"));
    assert_eq!(created["role"], "operator");
    let expires = created["expires_unix"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expires.abs_diff(now + 30 * 86_400) < 120, "{expires}");

    let r = w.send(create(made, true)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    for bad in [
        json!({"name": "Bad Name", "role": "viewer"}),
        json!({"name": "x", "role": "viewer", "expires": "3651d"}),
        json!({"name": "x", "role": "viewer", "expires": "5s"}),
    ] {
        let r = w.send(create(bad.clone(), true)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let r = w
        .send(create(json!({"name": "x", "role": "root"}), true))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = w
        .send(
            base("POST", "/api/v1/tokens")
                .header(header::COOKIE, &vera.cookie)
                .header("x-csrf-token", &vera.csrf)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"name": "v", "role": "admin"}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "viewers make no tokens");

    // Used once: the list shows when, never the token (nor its hash).
    let r = w.send(bearer("GET", "/api/v1/services", &token)).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = w.send(admin.get("/api/v1/tokens")).await;
    assert_eq!(list.status, StatusCode::OK);
    let entry = list.json()[0].clone();
    assert_eq!(entry["name"], "deploy");
    assert!(entry["last_used_unix"].as_u64().is_some(), "{entry}");
    assert_eq!(entry["expired"], false);
    let page = w.send(admin.get("/tokens")).await;
    assert!(page.body.contains("data-token=\"deploy\""));
    let file = std::fs::read_to_string(switchboard::tokens::path(&w.h.config.data_dir)).unwrap();
    let hash = file
        .split("\"sha256\": \"")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .expect("a stored hash");
    for shown in [&list.body, &page.body] {
        assert!(!shown.contains(&token[4..]) && !shown.contains(hash));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(switchboard::tokens::path(&w.h.config.data_dir))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    let r = w.send(admin.act("DELETE", "/api/v1/tokens/deploy")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = w.send(admin.act("DELETE", "/api/v1/tokens/deploy")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = w.send(bearer("GET", "/api/v1/services", &token)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    w.h.supervisor.audit().flush().await;
    let (audit, lines) = audit_lines(&w.h.config.data_dir);
    for action in ["create", "revoke"] {
        assert!(
            lines
                .iter()
                .any(|l| l["action"] == action && l["token"] == "deploy" && l["user"] == "admin"),
            "{action}: {audit}"
        );
    }
    assert!(!audit.contains(&token[4..]));
}

#[tokio::test]
async fn the_live_stream_says_it_needs_a_session() {
    let w = Web::start().await;
    let token = Tokens::open(&w.h.config.data_dir)
        .unwrap()
        .create("stream", Role::Viewer, None)
        .unwrap()
        .0;
    let r = w
        .send(bearer("GET", switchboard::web::LIVE_PATH, &token))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.error().contains("/api/v1/events"), "{}", r.body);
}

/// `web.allowed_hosts` guards the session cookie against DNS rebinding; a
/// bearer token is no ambient credential, so `switchboard service list
/// --token` works against the address it was given, while a page (no
/// token) under a name not allowed is still refused, and a wrong token is
/// refused by the API itself.
#[tokio::test]
async fn a_token_works_under_allowed_hosts_and_a_foreign_host_without_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        dir.path(),
        &[ServiceKind::Echo],
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", "admin-password-for-tests"),
            ("SWITCHBOARD_WEB_ALLOWED_HOSTS", "switchboard.example"),
        ],
    )
    .await;
    let url = served.web_url();
    let addr = url.trim_start_matches("http://").to_owned();
    let token = cli(dir.path(), &["token", "create", "ops", "--role", "admin"]).await;
    let token = token.trim().to_owned();

    let listed = cli(
        dir.path(),
        &["service", "list", "--url", &addr, "--token", &token],
    )
    .await;
    assert!(listed.lines().any(|l| l.starts_with("echo ")), "{listed}");
    cli(
        dir.path(),
        &[
            "service",
            "add",
            "echo-hosts",
            "--kind",
            "echo",
            "--setting",
            "listen=127.0.0.1:0",
            "--url",
            &addr,
            "--token",
            &token,
        ],
    )
    .await;
    cli(
        dir.path(),
        &[
            "service",
            "rm",
            "echo-hosts",
            "--url",
            &addr,
            "--token",
            &token,
        ],
    )
    .await;

    // Without a token, the Host check stands (the request above used the
    // raw loopback address, not an allowed name).
    let r = raw(&url, "GET", "/api/v1/services", &[], "").await;
    assert_eq!(r.status, 421, "{r:?}");
    // The CLI without one says what is missing, not the Host check's 421.
    let out = guard(
        "the CLI exits",
        tokio::process::Command::new(BIN)
            .args(["service", "list", "--url", &addr, "--data-dir"])
            .arg(dir.path())
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("SWITCHBOARD_TOKEN")
            .output(),
    )
    .await
    .expect("the binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("give an admin token: --token or SWITCHBOARD_TOKEN"),
        "{err}"
    );
    // A wrong token gets the API's refusal, not a pass.
    let wrong = format!("Bearer sbt_{}", "0".repeat(64));
    let r = raw(
        &url,
        "GET",
        "/api/v1/services",
        &[("Authorization", &wrong)],
        "",
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    // A token does not open the pages (a browser's realm) to a foreign name.
    let auth = format!("Bearer {token}");
    let r = raw(&url, "GET", "/", &[("Authorization", &auth)], "").await;
    assert_eq!(r.status, 421, "{r:?}");
    let (status, stderr) = served.terminate().await;
    assert!(status.success(), "{stderr}");
}
