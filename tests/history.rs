//! The traffic history over a range and an instance's log lines, over the
//! real binary's HTTP API: every range sums to the bytes echo really
//! carried, at the step its range needs (1 s, 10 s, 1 min); ranges a
//! client can get wrong are refused with a reason; the echo instance's own
//! log lines come back (and no secret the server was given is in any
//! instance's lines); a viewer is refused the log.

mod common;

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::web::{RawReply, get_request, loopback, raw_request, sign_in_request};
use common::{ADMIN_PASSWORD, Served, TEST_KEY, guard};
use switchboard::kind::ServiceKind;

async fn start() -> (Served, tempfile::TempDir, SocketAddr) {
    start_with(&[]).await
}

/// The real binary with echo and time, `env` on top.
async fn start_with(env: &[(&str, &str)]) -> (Served, tempfile::TempDir, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("SWITCHBOARD_KEY", TEST_KEY),
    ];
    all.extend_from_slice(env);
    let served = Served::start(
        &dir.path().join("data"),
        &[ServiceKind::Echo, ServiceKind::Time],
        &all,
    )
    .await;
    let web: SocketAddr = served
        .web_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    (served, dir, web)
}

/// Signs in; the session cookie as a `Cookie:` value.
async fn cookie(web: SocketAddr, user: &str, password: &str) -> String {
    let reply = raw_request(web, loopback(1), &sign_in_request(user, password)).await;
    assert_eq!(reply.status, 200, "sign-in: {}", reply.body);
    reply
        .head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

async fn get(web: SocketAddr, cookie: &str, path: &str) -> RawReply {
    let req = get_request(path).replace("\r\n\r\n", &format!("\r\nCookie: {cookie}\r\n\r\n"));
    raw_request(web, loopback(1), &req).await
}

/// Echo's column `field`.
fn echo_column(answer: &Value, field: &str) -> Vec<u64> {
    let echo = answer["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "echo")
        .expect("echo in the history");
    echo[field]
        .as_array()
        .unwrap_or_else(|| panic!("no column {field} in {echo}"))
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// The sum of `field` over echo's points, and the answer's step; checks
/// the time axis on the way.
fn echo_sum(answer: &Value, field: &str) -> (u64, u64) {
    let step = answer["step_s"].as_u64().unwrap();
    let axis: Vec<u64> = answer["at_unix_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        axis.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {axis:?}"
    );
    assert!(axis.iter().all(|t| t % step == 0), "aligned: {axis:?}");
    let seconds = echo_column(answer, "seconds");
    assert_eq!(seconds.len(), axis.len());
    assert!(seconds.iter().all(|&s| s <= step), "{seconds:?}");
    (echo_column(answer, field).iter().sum(), step)
}

#[tokio::test]
async fn every_range_sums_to_what_echo_carried_at_its_own_step() {
    let (_served, _dir, web) = start().await;
    let admin = cookie(web, "admin", ADMIN_PASSWORD).await;
    const SENT: usize = 123_457;
    let mut echo = tokio::net::TcpStream::connect(_served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    let data = vec![b'h'; SENT];
    let mut back = vec![0u8; SENT];
    let (mut rd, mut wr) = echo.split();
    guard("echoed", async {
        tokio::try_join!(wr.write_all(&data), rd.read_exact(&mut back))
    })
    .await
    .unwrap();
    // The sampler runs each second: wait until the 15 minutes hold it all.
    guard("the bytes sampled", async {
        loop {
            let r = get(web, &admin, "/api/v1/traffic/history?range=15m").await;
            assert_eq!(r.status, 200, "{}", r.body);
            if echo_sum(&r.json(), "bytes_in").0 == SENT as u64 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    for (range, step, span) in [
        ("15m", 1, 900),
        ("1h", 10, 3600),
        ("6h", 10, 21_600),
        ("24h", 60, 86_400),
        ("3600", 10, 3600),
    ] {
        let r = get(
            web,
            &admin,
            &format!("/api/v1/traffic/history?range={range}"),
        )
        .await;
        assert_eq!(r.status, 200, "{range}: {}", r.body);
        let a = r.json();
        assert_eq!(
            echo_sum(&a, "bytes_in"),
            (SENT as u64, step),
            "{range}: the sum is kept"
        );
        assert_eq!(echo_sum(&a, "bytes_out").0, SENT as u64, "{range}");
        assert_eq!(echo_sum(&a, "accepted").0, 1, "{range}");
        let (from, to) = (
            a["from_unix_s"].as_u64().unwrap(),
            a["to_unix_s"].as_u64().unwrap(),
        );
        assert_eq!(to - from, span, "{range}");
        // The busiest second is kept however coarse the step.
        let peak = echo_column(&a, "peak_in").into_iter().max().unwrap();
        assert!(peak > 0 && peak <= SENT as u64, "{range}: peak {peak}");
    }
    // An explicit window near now is back at one second.
    let now = a_now(web, &admin).await;
    let r = get(
        web,
        &admin,
        &format!("/api/v1/traffic/history?from={}&to={now}", now - 300),
    )
    .await;
    assert_eq!(r.json()["step_s"], 1, "{}", r.body);
}

async fn a_now(web: SocketAddr, admin: &str) -> u64 {
    let r = get(web, admin, "/api/v1/traffic/history?range=60").await;
    r.json()["to_unix_s"].as_u64().unwrap()
}

#[tokio::test]
async fn ranges_a_client_gets_wrong_are_refused_with_the_reason() {
    let (_served, _dir, web) = start().await;
    let admin = cookie(web, "admin", ADMIN_PASSWORD).await;
    let huge = "9".repeat(4000);
    for (query, says) in [
        ("range=1w", "15m, 1h, 6h, 24h"),
        ("range=0", "15m, 1h, 6h, 24h"),
        ("range=-60", "15m, 1h, 6h, 24h"),
        ("range=86401", "24 hours"),
        (&format!("range={huge}") as &str, "15m, 1h, 6h, 24h"),
        ("from=0", "24 hours"),
        ("from=20&to=10", "after"),
        ("from=abc", ""),
    ] {
        let r = get(web, &admin, &format!("/api/v1/traffic/history?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert!(
            r.json()["error"].as_str().unwrap().contains(says),
            "{query}: {}",
            r.body
        );
        assert!(r.body.len() < 400, "{query}: not echoed whole");
    }
    // Signed out: refused.
    let r = raw_request(web, loopback(1), &get_request("/api/v1/traffic/history")).await;
    assert_eq!(r.status, 401, "{}", r.body);
}

#[tokio::test]
async fn an_instances_log_lines_come_back_without_secrets() {
    let (_served, _dir, web) = start().await;
    let admin = cookie(web, "admin", ADMIN_PASSWORD).await;
    let r = get(web, &admin, "/api/v1/services/echo/log").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let lines = r.json();
    let lines = lines.as_array().unwrap();
    assert!(
        lines.iter().any(
            |l| l["text"].as_str().unwrap().starts_with("listening on") && l["level"] == "INFO"
        ),
        "echo's own start line: {lines:?}"
    );
    let time = get(web, &admin, "/api/v1/services/time/log").await.json();
    assert!(
        time.as_array()
            .unwrap()
            .iter()
            .all(|l| !l["text"].as_str().unwrap().contains("echo")),
        "only time's own lines: {time}"
    );
    for name in ["echo", "time"] {
        let body = get(web, &admin, &format!("/api/v1/services/{name}/log"))
            .await
            .body;
        assert!(
            !body.contains(TEST_KEY) && !body.contains(ADMIN_PASSWORD),
            "{body}"
        );
    }
    let r = get(web, &admin, "/api/v1/services/echo/log?limit=1").await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = get(web, &admin, "/api/v1/services/echo/log?limit=1000000").await;
    assert!(r.json().as_array().unwrap().len() <= 50, "capped at 50");
    for limit in ["x", "-1", "18446744073709551616"] {
        let r = get(
            web,
            &admin,
            &format!("/api/v1/services/echo/log?limit={limit}"),
        )
        .await;
        assert_eq!(r.status, 400, "{limit}: {}", r.body);
    }
    let r = get(web, &admin, "/api/v1/services/nope/log").await;
    assert_eq!(r.status, 404, "{}", r.body);
}

/// In process: who may read what, and a removed instance's history gone.
#[tokio::test]
async fn a_viewer_reads_the_history_not_the_log_and_a_removed_instance_is_forgotten() {
    let w = common::web::Web::start().await;
    let (viewer, operator, admin) = w.roles().await;
    let r = w
        .send(viewer.get("/api/v1/traffic/history?range=24h"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["step_s"], 60);
    let r = w.send(viewer.get("/api/v1/services/echo/log")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = w.send(operator.get("/api/v1/services/echo/log")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // An instance added, its traffic sampled, then removed: its history goes.
    let body =
        serde_json::json!({"name": "e2", "kind": "echo", "settings": {"listen": "127.0.0.1:0"}});
    let r = w
        .send(admin.act_json("POST", "/api/v1/services", &body))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = w.h.supervisor.id("e2").expect("e2 added");
    let g = w.h.stats.open(&id, switchboard::kind::Proto::Tcp, "p");
    g.add_in(42);
    w.h.stats.sample();
    assert_eq!(w.h.stats.history("e2").len(), 1);
    let r = w.send(admin.act("DELETE", "/api/v1/services/e2")).await;
    assert!(r.status.is_success(), "{}", r.body);
    assert!(w.h.stats.history("e2").is_empty());
    let a = w
        .send(admin.get("/api/v1/traffic/history?range=15m"))
        .await
        .json();
    assert!(
        a["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "e2"),
        "{a}"
    );
    drop(g);
}

#[tokio::test]
async fn json_logs_keep_the_instance_lines_too() {
    let (_served, _dir, web) = start_with(&[("SWITCHBOARD_LOG_FORMAT", "json")]).await;
    let admin = cookie(web, "admin", ADMIN_PASSWORD).await;
    let lines = get(web, &admin, "/api/v1/services/echo/log").await.json();
    assert!(
        lines
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"].as_str().unwrap().starts_with("listening on")),
        "{lines}"
    );
}
