//! The dashboard's HTTP side: sign-in, sessions, CSRF, Origin and Host
//! checks, roles, the JSON API, `/metrics`, limits and timeouts. Most tests
//! drive the router directly; the live stream and the header timeout run a
//! real server on a loopback port.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use common::web::{Web, base, get, json_request};
use common::{ADMIN_PASSWORD, guard};
use switchboard::kind::ServiceKind;
use switchboard::service::ServiceState;
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
    for path in ["/", "/connections", "/traffic"] {
        let r = w.send(get(path)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.header("location"), "/login");
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
    // Audited, without the password.
    w.h.supervisor.audit().flush().await;
    let audit = std::fs::read_to_string(switchboard::audit::path(w.h.dir.path())).unwrap();
    assert!(audit.contains(r#""service":"web""#), "{audit}");
    assert!(!audit.contains(ADMIN_PASSWORD));
    assert!(!audit.contains("not-it"));
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
    let users = w.h.supervisor.users();
    users
        .add("vera", Role::Viewer, "viewer-password-1")
        .unwrap();
    users
        .add("otto", Role::Operator, "operator-password-1")
        .unwrap();
    let viewer = w.sign_in("vera", "viewer-password-1").await;
    let operator = w.sign_in("otto", "operator-password-1").await;

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

    // A demotion takes effect on the next request, a removal signs out.
    users.set_role("otto", Role::Admin).unwrap();
    let r = w
        .send(operator.act("POST", "/api/v1/services/time/restart"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    users.remove("vera").unwrap();
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
        "",
    ] {
        let r = w.send(healthz_for_host(host)).await;
        assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{host:?}");
    }
    for host in ["localhost:8080", "127.0.0.1", "[::1]:8080", "app.localhost"] {
        let r = w.send(healthz_for_host(host)).await;
        assert_eq!(r.status, StatusCode::OK, "{host:?}");
    }
    // An explicit list replaces the loopback rule.
    let w = Web::start_with(|c| c.web.allowed_hosts = vec!["dash.example".into()]).await;
    let r = w.send(healthz_for_host("dash.example:443")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        w.send(get("/healthz")).await.status,
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
    let r = w.send(s.get("/api/v1/events?limit=abc")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
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
        assert!(line.starts_with("switchboard_"), "{line}");
    }
    for expected in [
        "switchboard_service_up{service=\"echo\",proto=\"tcp\"} 1",
        "switchboard_connections_active{service=\"echo\"} 1",
        "switchboard_received_bytes_total{service=\"echo\"} 5",
        "switchboard_sent_bytes_total{service=\"echo\"} 5",
        "switchboard_auth_failures_total{service=\"exec\"} 0",
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

/// A real server on an ephemeral port, for what needs a socket.
async fn serve(w: &Web) -> std::net::SocketAddr {
    let listener = switchboard::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    w.h.root
        .tasks
        .spawn(switchboard::web::serve(listener, w.state.clone()));
    addr
}

#[tokio::test]
async fn the_header_read_timeout_is_armed() {
    let w = Web::start_with(|c| c.web.header_timeout = Duration::from_millis(300)).await;
    let addr = serve(&w).await;
    // Half a request line, then nothing: the server must hang up.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HT").await.unwrap();
    let mut buf = Vec::new();
    guard(
        "the server closing a stalled request",
        slow.read_to_end(&mut buf),
    )
    .await
    .ok();
    // hyper may answer 408 before closing; it must not have served the request.
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("200 OK"), "{text}");
    // A connection that never sends a byte is dropped the same way.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    guard(
        "the server closing a silent connection",
        silent.read_to_end(&mut buf),
    )
    .await
    .ok();
    // So is a kept-alive one after its request, once idle that long.
    let mut ok = TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    guard("a response, then the idle close", ok.read_to_end(&mut buf))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.ends_with("ok\n"), "{text}");
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
    stream
        .write_all(
            format!(
                "GET /api/v1/live HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n{origin}Accept: text/event-stream\r\n\r\n"
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
