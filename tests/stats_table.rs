//! The stats table (`/api/v1/stats`, `/api/v1/stats.csv`, `/stats`): one
//! row per instance with current, peak and limit of connections, rates,
//! totals, errors and refusals; the CSV is the same figures; every role
//! may read it, nobody signed out.

mod common;

use axum::http::StatusCode;
use common::guard;
use common::web::Web;
use switchboard::settings::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn every_instance_has_a_row_with_its_limit_and_refusals_and_the_csv_agrees() {
    let w = Web::start_with(|c| {
        if let Limits::Tcp(t) = &mut c.service_mut("echo").limits {
            t.max_connections = 1;
        }
    })
    .await;
    let (viewer, _, _) = w.roles().await;
    // One connection held open, a second refused by the limit of one.
    // It has spoken, so it is not the one a full instance lets go first.
    let mut held = TcpStream::connect(w.h.addr("echo")).await.unwrap();
    held.write_all(b"hi").await.unwrap();
    let mut two = [0u8; 2];
    guard("the echo", held.read_exact(&mut two)).await.unwrap();
    let mut refused = TcpStream::connect(w.h.addr("echo")).await.unwrap();
    let mut line = Vec::new();
    guard("the refusal", refused.read_to_end(&mut line))
        .await
        .unwrap();

    let rows = guard("the refusal counted", async {
        loop {
            let rows = w.send(viewer.get("/api/v1/stats")).await.json();
            let echo = rows
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == "echo")
                .cloned()
                .unwrap();
            if echo["refused"] == 1 {
                return rows;
            }
        }
    })
    .await;
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for id in w.h.supervisor.ids() {
        assert!(names.contains(&id.name()), "{names:?}");
    }
    let echo = rows.iter().find(|r| r["name"] == "echo").unwrap();
    assert_eq!(echo["current"], 1, "{echo}");
    assert!(echo["max"].as_u64().unwrap() >= 1, "{echo}");
    assert_eq!(echo["limit"], 1, "{echo}");
    assert_eq!(echo["state"], "running");
    let udp = rows.iter().find(|r| r["name"] == "udp-echo").unwrap();
    assert_eq!(udp["proto"], "udp");
    assert!(udp["limit"].as_u64().unwrap() > 1, "max_peers: {udp}");

    let csv = w.send(viewer.get("/api/v1/stats.csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.header("content-type").starts_with("text/csv"));
    assert!(csv.header("content-disposition").contains("attachment"));
    let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(
        lines[0].starts_with("name,kind,proto,state,enabled,current,max,limit,"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), rows.len() + 1, "{}", csv.body);
    let header: Vec<&str> = lines[0].split(',').collect();
    let echo_line: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("echo,"))
        .unwrap()
        .split(',')
        .collect();
    let at = |col: &str| echo_line[header.iter().position(|h| *h == col).unwrap()];
    assert_eq!(at("limit"), "1");
    assert_eq!(at("current"), "1");
    assert_eq!(at("refused"), echo["refused"].to_string());

    // The page: every row, sortable headers, the CSV link.
    let page = w.send(viewer.get("/stats")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-instance=\"echo\""));
    assert!(page.body.contains("data-sort=\"refused\""));
    assert!(page.body.contains("href=\"/api/v1/stats.csv\""));

    // Signed out: nothing.
    for path in ["/api/v1/stats", "/api/v1/stats.csv"] {
        let r = w.send(common::web::get(path)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = w.send(common::web::get("/stats")).await;
    assert!(r.status.is_redirection(), "{}", r.status);
}
