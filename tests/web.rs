//! The dashboard's HTTP side: sign-in, sessions, CSRF, Origin and Host
//! checks, roles, the JSON API, `/metrics`, limits and timeouts. Most tests
//! drive the router directly; the live stream and the header timeout run a
//! real server on a loopback port.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use common::web::{
    RawReply, Web, audit_lines, base, connect_from, get, get_request, json_request, loopback,
    poll_until, raw_request, read_until_closed, serve, sign_in_request,
};
use common::{ADMIN_PASSWORD, guard};
use switchboard::kind::ServiceKind;
use switchboard::supervisor::ServiceState;
use switchboard::users::Role;

#[tokio::test]
async fn everything_but_sign_in_health_metrics_and_assets_needs_a_session() {
    let w = Web::start().await;
    for path in [
        "/api/v1/services",
        "/api/v1/services/echo",
        "/api/v1/connections",
        "/api/v1/events",
        "/api/v1/traffic",
        "/api/v1/session",
        "/api/v1/live",
    ] {
        let r = w.send(get(path)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.error(), "sign in first", "{path}");
    }
    // Pages send the browser to sign in, naming the page to come back to.
    for (path, to) in [
        ("/", "/login"),
        ("/connections", "/login?next=/connections"),
        ("/traffic", "/login?next=/traffic"),
    ] {
        let r = w.send(get(path)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.header("location"), to);
    }
    let r = w
        .send(
            base("POST", "/api/v1/services/echo/stop")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        w.h.supervisor.state(ServiceKind::Echo),
        ServiceState::Running
    );

    assert_eq!(w.send(get("/healthz")).await.status, StatusCode::OK);
    let login = w.send(get("/login")).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains(r#"id="sign-in""#));
    let js = w.send(get("/static/app.js")).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.header("content-type").contains("javascript"));
    let etag = js.header("etag").to_owned();
    let again = w
        .send(
            base("GET", "/static/app.js")
                .header("if-none-match", &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        w.send(get("/static/../Cargo.toml")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.send(get("/static/nope.js")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_returns_the_csrf_token() {
    let w = Web::start().await;
    let wrong = w
        .send(json_request(
            "POST",
            "/api/v1/session",
            &json!({"username": "admin", "password": "not-it"}),
        ))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.error(), "wrong user name or password");
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    let unknown = w
        .send(json_request(
            "POST",
            "/api/v1/session",
            &json!({"username": "nobody", "password": "x"}),
        ))
        .await;
    assert_eq!(unknown.body, wrong.body, "unknown users look the same");

    let r = w
        .send(json_request(
            "POST",
            "/api/v1/session",
            &json!({"username": "admin", "password": ADMIN_PASSWORD}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let cookie = r.header("set-cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let body = r.json();
    assert_eq!(body["user"], "admin");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["csrf_token"].as_str().unwrap().len(), 64);
    assert!(!r.body.contains(ADMIN_PASSWORD));

    // Behind a TLS proxy the cookie is Secure.
    let r = w
        .send(
            base("POST", "/api/v1/session")
                .header("content-type", "application/json")
                .header("x-forwarded-proto", "https")
                .body(Body::from(
                    json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert!(r.header("set-cookie").contains("; Secure"));

    let s = w.admin().await;
    let me = w.send(s.get("/api/v1/session")).await;
    assert_eq!(me.json()["csrf_token"], s.csrf.as_str());
    // Audited, without the password; a failure names the user only when
    // the account exists (a password typed as the name stays out).
    let lines = audit_lines(&w).await;
    let logins: Vec<_> = lines.iter().filter(|l| l["event"] == "login").collect();
    let failed: Vec<_> = logins.iter().filter(|l| l["ok"] == false).collect();
    assert_eq!(failed.len(), 2, "{lines:?}");
    assert_eq!(failed[0]["user"], "admin");
    assert_eq!(failed[1]["user"], serde_json::Value::Null);
    for l in &failed {
        assert_eq!(l["service"], "web");
        assert!(!l["peer"].as_str().unwrap().is_empty());
    }
    assert!(
        logins
            .iter()
            .any(|l| l["ok"] == true && l["user"] == "admin" && l["role"] == "admin")
    );
    let audit = std::fs::read_to_string(switchboard::audit::path(w.h.dir.path())).unwrap();
    assert!(!audit.contains(ADMIN_PASSWORD));
    assert!(!audit.contains("not-it"));
    assert!(!audit.contains("nobody"), "{audit}");
}

#[tokio::test]
async fn state_changes_need_the_csrf_token_and_a_same_origin() {
    let w = Web::start().await;
    let s = w.admin().await;
    let stop = "/api/v1/services/echo/stop";

    let r = w.send(s.request("POST", stop, false)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error(), "missing or wrong X-CSRF-Token header");
    let forged = base("POST", stop)
        .header(header::COOKIE, &s.cookie)
        .header("x-csrf-token", "0".repeat(64))
        .body(Body::empty())
        .unwrap();
    assert_eq!(w.send(forged).await.status, StatusCode::FORBIDDEN);
    for origin in [
        "http://evil.example",
        "null",
        "http://127.0.0.1:8081",
        "https://127.0.0.1:8080.evil",
    ] {
        let r = w
            .send(
                base("POST", stop)
                    .header(header::COOKIE, &s.cookie)
                    .header("x-csrf-token", &s.csrf)
                    .header(header::ORIGIN, origin)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(r.error(), "cross-origin request refused");
    }
    let cross_site = base("POST", stop)
        .header(header::COOKIE, &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .unwrap();
    assert_eq!(w.send(cross_site).await.status, StatusCode::FORBIDDEN);
    // A cross-origin sign-in (login CSRF) is refused too.
    let r = w
        .send(
            base("POST", "/api/v1/session")
                .header("content-type", "application/json")
                .header(header::ORIGIN, "http://evil.example")
                .body(Body::from(
                    json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.h.supervisor.state(ServiceKind::Echo),
        ServiceState::Running
    );

    let ok = base("POST", stop)
        .header(header::COOKIE, &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header(header::ORIGIN, "http://127.0.0.1:8080")
        .body(Body::empty())
        .unwrap();
    let r = w.send(ok).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["state"], "stopped");
    assert_eq!(
        w.h.supervisor.state(ServiceKind::Echo),
        ServiceState::Stopped
    );
    let r = w.send(s.act("POST", "/api/v1/services/echo/start")).await;
    assert_eq!(r.json()["state"], "running");
    let r = w.send(s.act("POST", "/api/v1/services/echo/restart")).await;
    assert_eq!(r.json()["state"], "running");
    // Each action is audited with who did it, and only the ones done.
    let actions: Vec<(String, String, bool)> = audit_lines(&w)
        .await
        .iter()
        .filter(|l| l["event"] == "service")
        .map(|l| {
            assert_eq!(l["user"], "admin", "{l}");
            (
                l["service"].as_str().unwrap().to_owned(),
                l["action"].as_str().unwrap().to_owned(),
                l["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    let want = [("stop", true), ("start", true), ("restart", true)]
        .map(|(a, ok)| ("echo".to_owned(), a.to_owned(), ok));
    assert_eq!(actions, want);
    assert_eq!(
        w.send(s.act("POST", "/api/v1/services/echo/explode"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.send(s.act("POST", "/api/v1/services/nope/stop"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn roles_limit_what_a_session_may_do() {
    let w = Web::start().await;
    let (viewer, operator, _) = w.roles().await;
    let users = w.h.supervisor.users();

    assert_eq!(
        w.send(viewer.get("/api/v1/services")).await.status,
        StatusCode::OK
    );
    let page = w.send(viewer.get("/")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("data-action=\"stop\""),
        "no buttons for a viewer"
    );

    let mut echo = tokio::net::TcpStream::connect(w.h.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"x").await.unwrap();
    let snap =
        w.h.wait_for("the connection", |s| {
            s.connections_of(ServiceKind::Echo).count() == 1
        })
        .await;
    let id = snap.connections_of(ServiceKind::Echo).next().unwrap().id;

    for s in [&viewer, &operator] {
        let r = w.send(s.act("POST", "/api/v1/services/echo/stop")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.error().contains("needs the admin role"));
        let r = w
            .send(s.act("DELETE", &format!("/api/v1/connections/{id}")))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        w.h.supervisor.state(ServiceKind::Echo),
        ServiceState::Running
    );

    // A promotion takes effect on the next request...
    users.set_role("otto", Role::Admin).unwrap();
    let r = w
        .send(operator.act("POST", "/api/v1/services/time/restart"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // ...and so does a demotion: admin to viewer loses the admin and
    // operator routes at once, and keeps reading.
    users.set_role("otto", Role::Viewer).unwrap();
    let r = w
        .send(operator.act("POST", "/api/v1/services/time/restart"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.error(), "this needs the admin role; you are viewer");
    let send = base("POST", "/api/v1/services/echo/send")
        .header(header::COOKIE, &operator.cookie)
        .header("x-csrf-token", &operator.csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"text":"x"}"#))
        .unwrap();
    assert_eq!(w.send(send).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.send(operator.get("/api/v1/session")).await.json()["role"],
        "viewer"
    );
    assert_eq!(
        w.send(operator.get("/api/v1/services")).await.status,
        StatusCode::OK
    );
    // There is no role below viewer: losing the account ends the session,
    // for good (the same name made again does not revive it).
    users.remove("vera").unwrap();
    assert_eq!(
        w.send(viewer.get("/api/v1/services")).await.status,
        StatusCode::UNAUTHORIZED
    );
    users
        .add("vera", Role::Viewer, "viewer-password-2")
        .unwrap();
    assert_eq!(
        w.send(viewer.get("/api/v1/services")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let w = Web::start().await;
    let s = w.admin().await;
    let r = w.send(s.request("DELETE", "/api/v1/session", false)).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "sign-out needs the token too"
    );
    let r = w.send(s.act("DELETE", "/api/v1/session")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("set-cookie").contains("Max-Age=0"));
    // The old cookie, replayed, is worth nothing.
    assert_eq!(
        w.send(s.get("/api/v1/services")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(w.send(s.get("/")).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_failures_are_rate_limited_per_address() {
    let w = Web::start_with(|c| c.web.max_failures_per_minute = 3).await;
    let attempt = |password: &str| {
        json_request(
            "POST",
            "/api/v1/session",
            &json!({"username": "admin", "password": password}),
        )
    };
    for _ in 0..3 {
        assert_eq!(
            w.send(attempt("wrong")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = w.send(attempt(ADMIN_PASSWORD)).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password"
    );
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert!(r.error().contains("try again in"));
}

fn healthz_for_host(host: &str) -> axum::http::Request<Body> {
    axum::http::Request::get("/healthz")
        .header("host", host)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn unknown_host_names_are_refused_against_dns_rebinding() {
    let w = Web::start().await;
    for host in [
        "evil.example",
        "evil.example:8080",
        "10.1.2.3:8080",
        "[::2]:80",
    ] {
        let r = w.send(healthz_for_host(host)).await;
        assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{host:?}");
    }
    // No `Host` at all is no browser: a load balancer's check may send
    // none (HAProxy's httpchk), so the probes answer it; no page does.
    assert_eq!(w.send(healthz_for_host("")).await.status, StatusCode::OK);
    let r = w.send(get_for_host("/login", "")).await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
    for host in ["localhost:8080", "127.0.0.1", "[::1]:8080", "app.localhost"] {
        let r = w.send(healthz_for_host(host)).await;
        assert_eq!(r.status, StatusCode::OK, "{host:?}");
    }
    // An explicit list replaces the loopback rule (but for the probe
    // routes, which also answer loopback names: see the test below).
    let w = Web::start_with(|c| c.web.allowed_hosts = vec!["dash.example".into()]).await;
    let r = w.send(healthz_for_host("dash.example:443")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        w.send(get("/login")).await.status,
        StatusCode::MISDIRECTED_REQUEST
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let w = Web::start().await;
    let s = w.admin().await;
    for req in [
        get("/login"),
        get("/healthz"),
        s.get("/"),
        s.get("/api/v1/services"),
        get("/nope"),
    ] {
        let r = w.send(req).await;
        let csp = r.header("content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert_eq!(r.header("x-frame-options"), "DENY");
        assert_eq!(r.header("referrer-policy"), "same-origin");
    }
    let page = w.send(s.get("/")).await;
    assert!(!page.body.contains("<script>"), "no inline script");
    assert!(!page.body.contains(" style=\""), "no inline style");
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused() {
    let w = Web::start().await;
    let big = format!(
        r#"{{"username":"admin","password":"{}"}}"#,
        "a".repeat(2 << 20)
    );
    let r = w
        .send(
            base("POST", "/api/v1/session")
                .header("content-type", "application/json")
                .body(Body::from(big))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = w
        .send(
            base("POST", "/api/v1/session")
                .header("content-type", "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.error().is_empty());
    let long = json!({"username": "admin", "password": "p".repeat(5000)});
    let r = w.send(json_request("POST", "/api/v1/session", &long)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let s = w.admin().await;
    // A malformed query string gets the API's JSON error, whichever
    // endpoint it is sent to.
    for url in [
        "/api/v1/events?limit=abc",
        "/api/v1/connections?limit=abc",
        "/api/v1/saved-messages?download=1&download=2",
        "/api/v1/audit?limit=-1",
    ] {
        let r = w.send(s.get(url)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(r.error().contains("query"), "{url}: {}", r.body);
    }
    let r = w
        .send(s.act("DELETE", "/api/v1/connections/not-a-number"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_api_lists_services_connections_events_and_traffic() {
    let w = Web::start().await;
    let s = w.admin().await;
    let services = w.send(s.get("/api/v1/services")).await.json();
    let names: Vec<&str> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "echo",
            "udp-echo",
            "time",
            "exec",
            "files",
            "files-classic",
            "login"
        ]
    );
    for v in services.as_array().unwrap() {
        assert_eq!(v["state"], "running");
        assert!(v["local_addr"].is_string());
        for field in [
            "proto",
            "listen",
            "active",
            "bytes_in",
            "bytes_out",
            "rate_in",
            "state_for_ms",
        ] {
            assert!(!v[field].is_null(), "{field} in {v}");
        }
    }

    let mut echo = TcpStream::connect(w.h.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"hello api").await.unwrap();
    let mut buf = [0u8; 9];
    echo.read_exact(&mut buf).await.unwrap();
    w.h.wait_for("bytes counted", |s| {
        s.totals(ServiceKind::Echo).bytes_out == 9
    })
    .await;

    let conns = w.send(s.get("/api/v1/connections")).await.json();
    let c = &conns.as_array().unwrap()[0];
    assert_eq!(c["service"], "echo");
    assert_eq!(c["bytes_in"], 9);
    assert_eq!(c["bytes_out"], 9);
    assert_eq!(c["peer"], echo.local_addr().unwrap().to_string());

    let one = w.send(s.get("/api/v1/services/echo")).await.json();
    assert_eq!(one["active"], 1);
    assert_eq!(one["bytes_in"], 9);

    let events = w
        .send(s.get("/api/v1/events?type=opened&service=echo"))
        .await
        .json();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "opened");
    let after = events[0]["seq"].as_u64().unwrap();
    let later = w
        .send(s.get(&format!("/api/v1/events?after={after}&service=echo")))
        .await
        .json();
    assert!(
        later
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["seq"].as_u64().unwrap() > after)
    );
    assert_eq!(
        w.send(s.get("/api/v1/events?service=nope")).await.status,
        StatusCode::NOT_FOUND
    );

    w.h.stats.sample();
    let traffic = w.send(s.get("/api/v1/traffic")).await.json();
    let echo_history = &traffic[0];
    assert_eq!(echo_history["name"], "echo");
    let samples = echo_history["samples"].as_array().unwrap();
    let total: u64 = samples
        .iter()
        .map(|x| x["bytes_in"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 9);

    // `limit` keeps the newest; the header counts them all.
    let second = TcpStream::connect(w.h.addr(ServiceKind::Echo))
        .await
        .unwrap();
    w.h.wait_for("a second connection", |s| {
        s.totals(ServiceKind::Echo).active >= 2
    })
    .await;
    let r = w.send(s.get("/api/v1/connections?limit=1")).await;
    let total: usize = r.header("x-total-count").parse().unwrap();
    assert!(total >= 2, "{total}");
    let newest = r.json();
    assert_eq!(newest.as_array().unwrap().len(), 1, "{newest}");
    assert_eq!(newest[0]["peer"], second.local_addr().unwrap().to_string());
    for bad in ["0", "200001", "x"] {
        let r = w
            .send(s.get(&format!("/api/v1/connections?limit={bad}")))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "limit={bad}: {}", r.body);
    }
    drop(second);
}

#[tokio::test]
async fn an_admin_closes_a_tcp_connection_but_not_a_udp_peer() {
    let w = Web::start().await;
    let s = w.admin().await;
    let mut echo = TcpStream::connect(w.h.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"x").await.unwrap();
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(b"y", w.h.addr(ServiceKind::UdpEcho))
        .await
        .unwrap();
    let snap =
        w.h.wait_for("both peers", |s| {
            s.connections_of(ServiceKind::Echo).count() == 1
                && s.connections_of(ServiceKind::UdpEcho).count() == 1
        })
        .await;
    let tcp_id = snap.connections_of(ServiceKind::Echo).next().unwrap().id;
    let udp_id = snap.connections_of(ServiceKind::UdpEcho).next().unwrap().id;

    let r = w
        .send(s.act("DELETE", &format!("/api/v1/connections/{udp_id}")))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = w
        .send(s.act("DELETE", &format!("/api/v1/connections/{tcp_id}")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The client sees the connection end.
    let mut rest = Vec::new();
    let n = guard("the close", async {
        let mut buf = [0u8; 64];
        loop {
            match echo.read(&mut buf).await {
                Ok(0) | Err(_) => return rest.len(),
                Ok(n) => rest.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(n <= 1, "at most the echo of `x` before the end");
    let closes: Vec<_> = audit_lines(&w)
        .await
        .into_iter()
        .filter(|l| l["event"] == "close_connection")
        .collect();
    assert_eq!(closes.len(), 1, "only the close that happened: {closes:?}");
    assert_eq!(closes[0]["id"], tcp_id);
    assert_eq!(closes[0]["user"], "admin");
    w.h.wait_for("gone from the registry", |s| {
        s.connections_of(ServiceKind::Echo).count() == 0
    })
    .await;
    let r = w
        .send(s.act("DELETE", &format!("/api/v1/connections/{tcp_id}")))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_are_prometheus_text_named_switchboard() {
    let w = Web::start().await;
    let mut echo = TcpStream::connect(w.h.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"12345").await.unwrap();
    let mut buf = [0u8; 5];
    echo.read_exact(&mut buf).await.unwrap();
    w.h.wait_for("bytes", |s| s.totals(ServiceKind::Echo).bytes_out == 5)
        .await;
    let r = w.send(get("/metrics")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    for line in r
        .body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        // Ours, or the process family every Prometheus client exports.
        assert!(
            line.starts_with("switchboard_") || line.starts_with("process_"),
            "{line}"
        );
    }
    for expected in [
        "switchboard_service_up{service=\"echo\",kind=\"echo\",proto=\"tcp\"} 1",
        "switchboard_connections_active{service=\"echo\",kind=\"echo\"} 1",
        "switchboard_received_bytes_total{service=\"echo\",kind=\"echo\"} 5",
        "switchboard_sent_bytes_total{service=\"echo\",kind=\"echo\"} 5",
        "switchboard_auth_failures_total{service=\"exec\",kind=\"exec\"} 0",
        "# TYPE switchboard_connections_total counter",
    ] {
        assert!(
            r.body.contains(expected),
            "{expected} missing from\n{}",
            r.body
        );
    }
    assert!(
        !r.body.contains("127.0.0.1"),
        "no peer addresses in metrics"
    );
}

#[tokio::test]
async fn peer_and_service_text_is_rendered_as_text() {
    let w = Web::start().await;
    let s = w.admin().await;
    // A refused command's argv ends up in the event log verbatim.
    let mut client = switchboard::client::CommandClient::connect(
        &w.h.target(ServiceKind::Exec),
        common::TEST_KEY.as_bytes(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let outcome = client
        .run(
            &[
                "<script>alert(1)</script>".to_owned(),
                "<img src=x onerror=alert(2)>".to_owned(),
            ],
            None,
            |_, _| {},
        )
        .await
        .unwrap();
    drop(outcome);
    w.h.wait_for("the command event", |_| {
        w.h.stats
            .recent_events()
            .iter()
            .any(|e| e.kind.type_name() == "command_run")
    })
    .await;
    let page = w.send(s.get("/traffic")).await;
    assert!(
        page.body.contains("&#60;script&#62;alert(1)"),
        "escaped: {}",
        page.body
    );
    assert!(!page.body.contains("<script>alert"));
    assert!(!page.body.contains("<img src=x"));
}

#[tokio::test]
async fn the_header_read_timeout_is_armed() {
    const TIMEOUT: Duration = Duration::from_millis(1000);
    let w = Web::start_with(|c| {
        c.web.header_timeout = TIMEOUT;
        // Far from the header timeout, so the two cannot be confused.
        c.web.first_byte_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = serve(&w).await;
    // Half a request line, then nothing: the server must hang up, after
    // the timeout and not long after.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HT").await.unwrap();
    let sent = Instant::now();
    let buf = guard(
        "the server closing a stalled request",
        read_until_closed(&mut slow),
    )
    .await;
    common::assert_deadline("a stalled request line", sent.elapsed(), TIMEOUT);
    // hyper may answer 408 before closing; it must not have served the request.
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("200 OK"), "{text}");
    // So is a kept-alive one after its request, once idle that long.
    let mut ok = TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut reader = BufReader::new(ok);
    let mut status = String::new();
    guard("the response", reader.read_line(&mut status))
        .await
        .unwrap();
    let answered = Instant::now();
    assert!(status.starts_with("HTTP/1.1 200 OK"), "{status}");
    let mut rest = Vec::new();
    guard("the idle close", reader.read_to_end(&mut rest))
        .await
        .unwrap();
    // The server's clock starts as it writes the response, a moment
    // before the status line is read here.
    let idle = answered.elapsed() + Duration::from_millis(20);
    common::assert_deadline("a kept-alive idle connection", idle, TIMEOUT);
    assert!(String::from_utf8_lossy(&rest).ends_with("ok\n"));
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_first_byte_deadline() {
    const DEADLINE: Duration = Duration::from_millis(1000);
    let w = Web::start_with(|c| {
        c.web.first_byte_timeout = DEADLINE;
        c.web.header_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = serve(&w).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let got = guard(
        "the close of a silent socket",
        read_until_closed(&mut silent),
    )
    .await;
    let waited = started.elapsed();
    assert!(got.is_empty(), "nothing is sent to it: {got:?}");
    common::assert_deadline("a silent socket (header timeout 30 s)", waited, DEADLINE);
    poll_until("its slot freed", || w.state.connection_counts().open == 0).await;
    // One that speaks at once is served as usual.
    let r = raw_request(addr, loopback(1), &get_request("/healthz")).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn silent_sockets_are_capped_per_address_and_the_oldest_are_shed() {
    let w = Web::start_with(|c| {
        c.web.max_connections = 64;
        c.web.max_connections_per_peer = 16;
        // Long deadlines: here only the caps close connections.
        c.web.first_byte_timeout = Duration::from_secs(60);
        c.web.header_timeout = Duration::from_secs(60);
    })
    .await;
    let addr = serve(&w).await;
    let open = || w.state.connection_counts().open;
    let s = w.admin().await;

    // A live stream is busy: it holds its slot through everything below.
    let (status, mut live) = open_live(addr, &s.cookie, None).await;
    assert!(status.contains("200"), "{status}");
    poll_until("the stream's slot", || open() == 1).await;

    // 16 silent sockets from each of 127.0.0.2..4, 15 from .5: full.
    let mut silent: Vec<Vec<TcpStream>> = Vec::new();
    for (last, n) in [(2, 16), (3, 16), (4, 16), (5, 15)] {
        let mut from = Vec::new();
        for _ in 0..n {
            from.push(connect_from(loopback(last), addr).await);
            // One at a time, so "oldest" is well defined.
            let want = 1 + silent.iter().map(Vec::len).sum::<usize>() + from.len();
            poll_until("the connection admitted", || open() == want).await;
        }
        if last == 2 {
            // The 17th from one address is refused, with a reason.
            let mut extra = connect_from(loopback(2), addr).await;
            let reply = guard("the refusal", read_until_closed(&mut extra)).await;
            let reply = RawReply::parse(&reply);
            assert_eq!(reply.status, 429, "{reply:?}");
            assert!(
                reply
                    .body
                    .contains("too many connections from your address")
            );
            assert_eq!(open(), 17);
        }
        silent.push(from);
    }
    assert_eq!(open(), 64);
    assert_eq!(w.state.connection_counts().silent, 63);

    // 16 newcomers from another address: each takes the slot of the oldest
    // silent one, which are 127.0.0.2's.
    let mut newcomers = Vec::new();
    for i in 0..16u64 {
        newcomers.push(connect_from(loopback(6), addr).await);
        poll_until("one shed", || w.state.connection_counts().shed == i + 1).await;
    }
    assert_eq!(open(), 64);
    for (i, stream) in silent[0].iter_mut().enumerate() {
        let got = guard("a shed socket's close", read_until_closed(stream)).await;
        assert!(got.is_empty(), "shed #{i} got {got:?}");
    }
    for stream in &silent[1] {
        let mut byte = [0u8; 1];
        assert!(
            matches!(stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "127.0.0.3's sockets are newer and still open"
        );
    }

    // /healthz still answers, from a loaded address or a fresh one.
    for last in [1, 7] {
        let r = raw_request(addr, loopback(last), &get_request("/healthz")).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    // The live stream was never shed: it still delivers.
    next_message(&mut live, "event: snapshot", "a message on the live stream").await;
    let metrics = w.send(get("/metrics")).await.body;
    assert!(
        metrics.contains("switchboard_web_connections_refused_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn when_every_slot_is_busy_a_newcomer_is_refused_with_503() {
    let w = Web::start_with(|c| c.web.max_connections = 2).await;
    let addr = serve(&w).await;
    let s = w.admin().await;
    let (_, first) = open_live(addr, &s.cookie, None).await;
    let (_, _second) = open_live(addr, &s.cookie, None).await;
    let r = raw_request(addr, loopback(1), &get_request("/healthz")).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("connection limit"), "{}", r.body);
    assert!(r.head.to_ascii_lowercase().contains("retry-after: 1"));
    // A stream that goes away gives its slot back.
    drop(first);
    poll_until("the stream's slot freed", || {
        w.state.connection_counts().open == 1
    })
    .await;
    let r = raw_request(addr, loopback(1), &get_request("/healthz")).await;
    assert_eq!(r.status, 200);
}

/// Reads a live stream until a line starting with `prefix` (an `event:`
/// line); fails if the stream ends first or the hang guard runs out.
async fn next_message(live: &mut BufReader<TcpStream>, prefix: &str, what: &str) {
    let mut line = String::new();
    guard(what, async {
        while !line.starts_with(prefix) {
            line.clear();
            assert!(
                live.read_line(&mut line).await.unwrap() > 0,
                "the stream ended"
            );
        }
    })
    .await;
}

/// Opens `/api/v1/live` on a real server with `cookie`; returns the reader
/// positioned after the response head, and the status line.
async fn open_live(
    addr: std::net::SocketAddr,
    cookie: &str,
    origin: Option<&str>,
) -> (String, BufReader<TcpStream>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    // `Connection: close`, so the end of the stream is the end of the
    // connection (EOF), not only a last chunk.
    stream
        .write_all(
            format!(
                "GET /api/v1/live HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n{origin}Accept: text/event-stream\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).await.unwrap();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    (status, reader)
}

#[tokio::test]
async fn the_live_stream_shows_a_new_connection_with_its_bytes() {
    let w = Web::start().await;
    let addr = serve(&w).await;
    let s = w.admin().await;

    let (status, _) = open_live(addr, &s.cookie, Some("http://evil.example")).await;
    assert!(status.contains("403"), "{status}");
    let (status, _) = open_live(addr, "switchboard_session=nope", None).await;
    assert!(status.contains("401"), "{status}");

    let (status, mut live) = open_live(addr, &s.cookie, Some(&format!("http://{addr}"))).await;
    assert!(status.contains("200"), "{status}");

    let mut echo = TcpStream::connect(w.h.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"watch me").await.unwrap();
    let peer = echo.local_addr().unwrap().to_string();

    // Read messages (chunked transfer: skip the chunk-size lines) until a
    // snapshot lists the connection with its bytes, and an `opened` event
    // has named it.
    let (mut saw_snapshot, mut saw_event) = (false, false);
    let mut event = String::new();
    guard("the connection on the live stream", async {
        while !(saw_snapshot && saw_event) {
            let mut line = String::new();
            assert!(live.read_line(&mut line).await.unwrap() > 0, "stream ended");
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.trim().to_owned();
            } else if let Some(data) = line.strip_prefix("data: ") {
                let v: serde_json::Value = serde_json::from_str(data).unwrap();
                match event.as_str() {
                    "snapshot" => {
                        saw_snapshot |= v["connections"].as_array().unwrap().iter().any(|c| {
                            c["peer"] == peer.as_str()
                                && c["bytes_in"] == 8
                                && c["service"] == "echo"
                        });
                    }
                    "events" => {
                        saw_event |= v
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|e| e["type"] == "opened" && e["peer"] == peer.as_str());
                    }
                    _ => {}
                }
            }
        }
    })
    .await;
    // Shutdown ends the stream, so a graceful stop does not hang on it.
    w.h.root.token.cancel();
    guard("the stream ending at shutdown", async {
        let mut rest = Vec::new();
        let _ = live.read_to_end(&mut rest).await;
    })
    .await;
}

#[tokio::test]
async fn one_addresses_failed_sign_ins_do_not_lock_out_another() {
    let w = Web::start_with(|c| c.web.max_failures_per_minute = 3).await;
    let addr = serve(&w).await;
    for _ in 0..3 {
        let r = raw_request(addr, loopback(1), &sign_in_request("admin", "wrong")).await;
        assert_eq!(r.status, 401, "{r:?}");
    }
    let r = raw_request(addr, loopback(1), &sign_in_request("admin", ADMIN_PASSWORD)).await;
    assert_eq!(r.status, 429, "127.0.0.1 is out of tries: {r:?}");
    // Another address is judged on its own failures only.
    let r = raw_request(addr, loopback(2), &sign_in_request("admin", ADMIN_PASSWORD)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = raw_request(addr, loopback(2), &sign_in_request("admin", "wrong")).await;
    assert_eq!(r.status, 401, "{r:?}");
    // The audit names each address.
    let peers: Vec<String> = audit_lines(&w)
        .await
        .iter()
        .filter(|l| l["event"] == "login" && l["ok"] == false)
        .map(|l| l["peer"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(peers, ["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2"]);
}

#[tokio::test]
async fn a_huge_declared_body_is_refused_at_once_without_being_sent() {
    // A long request timeout: only the declared size can explain a quick 413.
    let w = Web::start_with(|c| c.web.request_timeout = Duration::from_secs(120)).await;
    let addr = serve(&w).await;
    // The leave route too, which asks for no session.
    let paths = [
        "/api/v1/session",
        "/api/v1/exec",
        "/api/v1/sticky",
        "/api/v1/live/leave",
    ];
    for path in paths {
        let mut stream = connect_from(loopback(1), addr).await;
        stream
            .write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                     Content-Length: 99999999999\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        guard("the 413 before any body", reader.read_line(&mut status))
            .await
            .unwrap();
        assert!(status.starts_with("HTTP/1.1 413"), "{path}: {status}");
    }
}

#[tokio::test]
async fn a_request_slower_than_the_request_timeout_is_answered_503() {
    const TIMEOUT: Duration = Duration::from_millis(1000);
    let w = Web::start_with(|c| c.web.request_timeout = TIMEOUT).await;
    let addr = serve(&w).await;
    // A sign-in whose body never arrives in full: the route waits for it.
    let mut stream = connect_from(loopback(1), addr).await;
    stream
        .write_all(
            b"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Content-Length: 50\r\n\r\n{\"username\":",
        )
        .await
        .unwrap();
    let sent = Instant::now();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    guard("the timeout's answer", reader.read_line(&mut status))
        .await
        .unwrap();
    let waited = sent.elapsed();
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    common::assert_deadline("the 503", waited, TIMEOUT);
}

#[tokio::test]
async fn an_idle_session_expires_and_its_cookie_is_refused() {
    let w = Web::start_with(|c| c.web.session_idle = Duration::from_secs(1)).await;
    let s = w.admin().await;
    assert_eq!(
        w.send(s.get("/api/v1/session")).await.status,
        StatusCode::OK
    );
    // Watch the count of live sessions (which does not touch any), not the
    // cookie (which would keep the session alive).
    let signed_in = || async { w.send(get("/metrics")).await.body };
    assert!(signed_in().await.contains("switchboard_web_sessions 1\n"));
    guard("the session to expire", async {
        while !signed_in().await.contains("switchboard_web_sessions 0\n") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let r = w.send(s.get("/api/v1/session")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(w.send(s.get("/")).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn starting_a_service_whose_port_is_taken_is_a_409_and_audited() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap();
    let w = Web::start_with(|c| {
        let echo = c.service_mut(ServiceKind::Echo);
        echo.listen = switchboard::config::ListenAddr::Inet(port);
        echo.enabled = false;
    })
    .await;
    let s = w.admin().await;
    let r = w.send(s.act("POST", "/api/v1/services/echo/start")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.error().contains(&port.to_string()), "{}", r.error());
    assert_ne!(
        w.h.supervisor.state(ServiceKind::Echo),
        ServiceState::Running
    );
    let lines = audit_lines(&w).await;
    let start = lines
        .iter()
        .find(|l| l["event"] == "service" && l["action"] == "start")
        .unwrap_or_else(|| panic!("no audit line for the start: {lines:?}"));
    assert_eq!(start["ok"], false);
    assert_eq!(start["user"], "admin");
    assert!(start["error"].as_str().unwrap().contains(&port.to_string()));
    // Once the port is free, the same request works.
    drop(taken);
    let r = w.send(s.act("POST", "/api/v1/services/echo/start")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Reads the live stream until its first snapshot.
async fn first_snapshot(live: &mut BufReader<TcpStream>) {
    guard("the first snapshot", async {
        let mut line = String::new();
        while !line.starts_with("event: snapshot") {
            line.clear();
            assert!(live.read_line(&mut line).await.unwrap() > 0, "ended early");
        }
    })
    .await;
}

/// How soon a live stream must end once its session or account is gone: a
/// stream checks every 500 ms (sign-out ends it at once), so this is ten
/// checks of slack for a loaded machine, and still far below the hang
/// guard a stream that never ends would run into.
const STREAM_ENDS_WITHIN: Duration = Duration::from_secs(5);

/// Reads until the server closes the stream; how long that took.
async fn until_closed(live: &mut BufReader<TcpStream>) -> Duration {
    let from = Instant::now();
    guard("the stream to end", async {
        let mut sink = Vec::new();
        let _ = live.read_to_end(&mut sink).await;
    })
    .await;
    from.elapsed()
}

#[tokio::test]
async fn signing_out_or_losing_the_account_ends_the_live_streams() {
    let w = Web::start().await;
    let addr = serve(&w).await;
    let s = w.admin().await;
    let (status, mut a) = open_live(addr, &s.cookie, None).await;
    assert!(status.contains("200"), "{status}");
    let (_, mut b) = open_live(addr, &s.cookie, None).await;
    first_snapshot(&mut a).await;
    first_snapshot(&mut b).await;
    let r = w.send(s.act("DELETE", "/api/v1/session")).await;
    assert_eq!(r.status, StatusCode::OK);
    for live in [&mut a, &mut b] {
        let took = until_closed(live).await;
        assert!(took < STREAM_ENDS_WITHIN, "ended {took:?} after sign-out");
    }

    // An account removed (here, as `switchboard user remove` would) ends
    // its sessions' streams too, though no request comes to notice it.
    w.h.supervisor
        .users()
        .add("vera", Role::Viewer, "viewer-password-1")
        .unwrap();
    let v = w.sign_in("vera", "viewer-password-1").await;
    let (status, mut live) = open_live(addr, &v.cookie, None).await;
    assert!(status.contains("200"), "{status}");
    first_snapshot(&mut live).await;
    w.h.supervisor.users().remove("vera").unwrap();
    let took = until_closed(&mut live).await;
    assert!(
        took < STREAM_ENDS_WITHIN,
        "ended {took:?} after the removal"
    );
    assert_eq!(
        w.send(v.get("/api/v1/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn one_account_gets_a_few_streams_and_another_still_gets_one() {
    let w = Web::start().await;
    let addr = serve(&w).await;
    let (viewer, _, s) = w.roles().await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let (status, live) = open_live(addr, &s.cookie, None).await;
        assert!(status.contains("200"), "{status}");
        open.push(live);
    }
    let (status, mut fifth) = open_live(addr, &s.cookie, None).await;
    assert!(status.contains("429"), "{status}");
    let mut body = Vec::new();
    guard("the refusal's body", fifth.read_to_end(&mut body))
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("already has 4 live streams open"), "{body}");

    // Signing in again buys no more: the slots are the account's.
    let again = w.admin().await;
    let (status, _) = open_live(addr, &again.cookie, None).await;
    assert!(status.contains("429"), "the same account again: {status}");
    let (status, _other) = open_live(addr, &viewer.cookie, None).await;
    assert!(status.contains("200"), "another account: {status}");
    // The live stream is never kept for reuse (a browser would drain it
    // long after leaving the page, holding its slot).
    let (_, head) = live_head(addr, &viewer.cookie).await;
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    // A closed stream gives its slot back to its account.
    drop(open.pop());
    guard("a slot back", async {
        loop {
            let (status, _live) = open_live(addr, &s.cookie, None).await;
            if status.contains("200") {
                return;
            }
            assert!(status.contains("429"), "{status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Opens `/api/v1/live` as a browser does (keep-alive, no `Connection:
/// close` asked); returns the socket and the response head.
async fn live_head(addr: std::net::SocketAddr, cookie: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "GET /api/v1/live HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
                 Accept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    guard("the live stream's head", async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "ended early");
            head.push(byte[0]);
        }
    })
    .await;
    (stream, String::from_utf8_lossy(&head).into_owned())
}

#[tokio::test]
async fn one_viewer_signed_in_sixteen_times_leaves_streams_for_the_admin() {
    let w = Web::start().await;
    let addr = serve(&w).await;
    let (_, _, admin) = w.roles().await;
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..16 {
        let v = w.sign_in("vera", "viewer-password-1").await;
        for _ in 0..4 {
            let (live, status) = live_head(addr, &v.cookie).await;
            if status.starts_with("HTTP/1.1 200") {
                held.push(live);
            } else {
                assert!(status.starts_with("HTTP/1.1 429"), "{status}");
                refused += 1;
            }
        }
    }
    assert_eq!(held.len(), 4, "the viewer's streams, over 16 sessions");
    assert_eq!(refused, 60);
    let (_admins, status) = live_head(addr, &admin.cookie).await;
    assert!(status.starts_with("HTTP/1.1 200"), "the admin: {status}");
    // A browser closing a stream's connection frees its slot at once.
    held.clear();
    let v = w.sign_in("vera", "viewer-password-1").await;
    guard("a slot back after the close", async {
        loop {
            let (_live, status) = live_head(addr, &v.cookie).await;
            if status.starts_with("HTTP/1.1 200") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Reads a live stream (after its head) up to its `stream` message; its id.
async fn stream_id(live: &mut BufReader<TcpStream>) -> String {
    guard("the stream's id", async {
        let mut named = false;
        loop {
            let mut line = String::new();
            assert!(live.read_line(&mut line).await.unwrap() > 0, "stream ended");
            if line.starts_with("event: stream") {
                named = true;
            } else if let Some(data) = line.strip_prefix("data: ")
                && named
            {
                let v: serde_json::Value = serde_json::from_str(data).unwrap();
                return v["id"].as_str().expect("an id").to_owned();
            }
        }
    })
    .await
}

/// `POST /api/v1/live/leave` with `body`, as a page's beacon sends it (an
/// `Origin`, no CSRF header; here no cookie either, which it does not
/// need); the reply's status.
async fn leave(addr: std::net::SocketAddr, body: &str) -> u16 {
    let request = format!(
        "POST /api/v1/live/leave HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    raw_request(addr, loopback(1), &request).await.status
}

#[tokio::test]
async fn a_page_left_ends_its_stream_by_its_id_even_on_a_kept_alive_connection() {
    let w = Web::start().await;
    let addr = serve(&w).await;
    let v = w.admin().await;
    // Four streams on connections a proxy would keep open after the page
    // is left: nothing closes them from the browser's side.
    let mut held = Vec::new();
    for _ in 0..4 {
        let (live, status) = live_head(addr, &v.cookie).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut live = BufReader::new(live);
        let id = stream_id(&mut live).await;
        held.push((live, id));
    }
    let (_, status) = live_head(addr, &v.cookie).await;
    assert!(
        status.starts_with("HTTP/1.1 429"),
        "the account's four: {status}"
    );
    // An id no stream has ends nothing.
    assert_eq!(leave(addr, &"0".repeat(64)).await, 204);
    assert_eq!(leave(addr, &"x".repeat(200)).await, 204);
    // The first page is left: its stream's body ends...
    let (mut first, id) = held.remove(0);
    assert_eq!(leave(addr, &id).await, 204);
    guard("the left stream's end", async {
        let mut rest = Vec::new();
        first.read_to_end(&mut rest).await.unwrap();
    })
    .await;
    // ...its slot is free for the next page at once...
    let (_next, status) = live_head(addr, &v.cookie).await;
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "the next page: {status}"
    );
    // ...and the other pages' streams go on.
    let (second, _) = &mut held[0];
    next_message(second, "event: ", "the second stream's next message").await;
}

/// The resident set of `pid`, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

#[tokio::test]
async fn a_burst_of_failed_sign_ins_gives_its_memory_back() {
    const SIGN_INS: usize = 50;
    const ALLOWED_GROWTH_KIB: u64 = 64 * 1024;
    let dir = tempfile::tempdir().unwrap();
    // Enough tries that every attempt is hashed, not refused early.
    let served = common::Served::start(
        dir.path(),
        &[],
        &[("SWITCHBOARD_WEB_MAX_FAILURES_PER_MINUTE", "1000")],
    )
    .await;
    let pid = served.child.id().unwrap();
    let addr: std::net::SocketAddr = served
        .web_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let r = raw_request(addr, loopback(1), &get_request("/healthz")).await;
    assert_eq!(r.status, 200);
    let idle = rss_kib(pid);

    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..SIGN_INS {
        // Known and unknown names alike: both cost a full hash.
        let user = if i % 2 == 0 { "admin" } else { "nobody" };
        let request = sign_in_request(user, "not the password");
        attempts.spawn(async move { raw_request(addr, loopback(1), &request).await });
    }
    let replies = attempts.join_all().await;
    assert_eq!(replies.len(), SIGN_INS);
    for r in &replies {
        assert_eq!(r.status, 401, "{r:?}");
    }
    let after = rss_kib(pid);
    let mut settled = after;
    guard("the resident set to settle", async {
        let deadline = Instant::now() + Duration::from_secs(5);
        while settled > idle + ALLOWED_GROWTH_KIB {
            assert!(
                Instant::now() < deadline,
                "RSS {settled} KiB, idle was {idle} KiB: more than {ALLOWED_GROWTH_KIB} KiB kept 5 s after {SIGN_INS} failed sign-ins"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            settled = rss_kib(pid);
        }
    })
    .await;
    eprintln!(
        "RSS: idle {idle} KiB, right after {SIGN_INS} failed sign-ins {after} KiB, settled {settled} KiB"
    );
    let (status, _) = served.terminate().await;
    assert!(status.success(), "{status}");
}

fn get_for_host(path: &str, host: &str) -> axum::http::Request<Body> {
    axum::http::Request::get(path)
        .header("host", host)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn probes_and_metrics_answer_loopback_and_allowed_names_when_hosts_are_set() {
    let w = Web::start_with(|c| {
        c.web.allowed_hosts = vec!["switchboard.example".into(), "switchboard".into()]
    })
    .await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        for host in [
            "127.0.0.1:8080",
            "localhost",
            "[::1]:8080",
            "switchboard:8080",
            "switchboard.example",
            "",
        ] {
            let r = w.send(get_for_host(path, host)).await;
            assert_eq!(r.status, StatusCode::OK, "{path} for {host:?}: {}", r.body);
        }
        for host in ["evil.example", "10.1.2.3:8080"] {
            let r = w.send(get_for_host(path, host)).await;
            assert_eq!(
                r.status,
                StatusCode::MISDIRECTED_REQUEST,
                "{path} for {host:?}"
            );
        }
    }
    // Every other route keeps the list-only rule, against DNS rebinding.
    for path in ["/login", "/api/v1/services", "/static/app.js", "/healthz/x"] {
        for host in ["127.0.0.1:8080", ""] {
            let r = w.send(get_for_host(path, host)).await;
            assert_eq!(
                r.status,
                StatusCode::MISDIRECTED_REQUEST,
                "{path} for {host:?}"
            );
        }
    }
    let r = w.send(get_for_host("/login", "switchboard.example")).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn readyz_is_503_naming_each_enabled_service_that_is_not_running() {
    let w = Web::start().await;
    let r = w.send(get("/readyz")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json(), json!({"ready": true}));

    w.h.supervisor.stop(ServiceKind::Echo).await.unwrap();
    w.h.supervisor.stop(ServiceKind::Time).await.unwrap();
    let r = w.send(get("/readyz")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"ready": false, "failing": ["echo", "time"]})
    );
    // Alive all the same.
    assert_eq!(w.send(get("/healthz")).await.status, StatusCode::OK);

    w.h.supervisor.start(ServiceKind::Echo).await.unwrap();
    w.h.supervisor.start(ServiceKind::Time).await.unwrap();
    assert_eq!(w.send(get("/readyz")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_disabled_service_does_not_make_the_process_unready() {
    let w = Web::start_with(|c| c.service_mut(ServiceKind::Echo).enabled = false).await;
    let r = w.send(get("/readyz")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn admins_delete_files_by_exact_name_and_nothing_else_goes() {
    let w = Web::start().await;
    let addr = serve(&w).await;
    let (viewer, operator, admin) = w.roles().await;
    let files = w.h.supervisor.store().dir().to_owned();
    std::fs::write(files.join("doomed.txt"), b"bye").unwrap();
    let outside = w.h.dir.path().join("outside.txt");
    std::fs::write(&outside, b"keep me").unwrap();
    std::os::unix::fs::symlink(&outside, files.join("link.txt")).unwrap();

    for (who, s) in [("viewer", &viewer), ("operator", &operator)] {
        let r = w.send(s.act("DELETE", "/api/v1/files/doomed.txt")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.body);
    }
    let no_csrf = w
        .send(admin.request("DELETE", "/api/v1/files/doomed.txt", false))
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert!(files.join("doomed.txt").exists(), "refusals remove nothing");

    for (path, want) in [
        ("/api/v1/files/..%2Foutside.txt", StatusCode::BAD_REQUEST),
        ("/api/v1/files/%2Fetc%2Fpasswd", StatusCode::BAD_REQUEST),
        ("/api/v1/files/.upload-0011", StatusCode::BAD_REQUEST),
        ("/api/v1/files/link.txt", StatusCode::NOT_FOUND),
        ("/api/v1/files/nope.txt", StatusCode::NOT_FOUND),
    ] {
        let r = w.send(admin.act("DELETE", path)).await;
        assert_eq!(r.status, want, "{path}: {}", r.body);
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep me");
    assert!(
        files.join("link.txt").symlink_metadata().is_ok(),
        "the link itself is left alone too"
    );

    // A live page hears of the delete.
    let (status, mut live) = open_live(addr, &admin.cookie, Some(&format!("http://{addr}"))).await;
    assert!(status.contains("200"), "{status}");
    let r = w
        .send(admin.act("DELETE", "/api/v1/files/doomed.txt"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(!files.join("doomed.txt").exists());
    let listed = w.send(admin.get("/api/v1/files")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert!(
        !listed.body.contains("doomed.txt"),
        "gone from the list: {}",
        listed.body
    );
    guard("file_deleted on the live stream", async {
        let mut event = String::new();
        loop {
            let mut line = String::new();
            assert!(live.read_line(&mut line).await.unwrap() > 0, "stream ended");
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.trim().to_owned();
            } else if let Some(data) = line.strip_prefix("data: ")
                && event == "events"
            {
                let batch: serde_json::Value = serde_json::from_str(data).unwrap();
                let deleted = batch
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["type"] == "file_deleted");
                if let Some(v) = deleted {
                    assert_eq!(v["name"], "doomed.txt");
                    assert_eq!(v["user"], "admin");
                    assert_eq!(v["service"], "files");
                    return;
                }
            }
        }
    })
    .await;
    let audited = audit_lines(&w).await;
    assert!(
        audited.iter().any(|l| l["event"] == "web_delete"
            && l["user"] == "admin"
            && l["name"] == "doomed.txt"),
        "{audited:?}"
    );

    // An admin token needs no CSRF header; a second delete finds nothing.
    std::fs::write(files.join("scripted.txt"), b"x").unwrap();
    let tokens = switchboard::tokens::Tokens::open(&w.h.config.data_dir).unwrap();
    let token = tokens.create("cleaner", Role::Admin, None).unwrap().0;
    let by_token = |path: &str| {
        base("DELETE", path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let r = w.send(by_token("/api/v1/files/scripted.txt")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(!files.join("scripted.txt").exists());
    let r = w.send(by_token("/api/v1/files/scripted.txt")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    w.h.root.token.cancel();
}
