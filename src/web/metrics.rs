//! `GET /metrics`: the stats in Prometheus text format (version 0.0.4),
//! written straight from one snapshot: no metrics library, no global state.
//! Every name starts with `switchboard_`; services are told apart by a
//! `service` label. Open to scrapers without a session, as `/healthz` is:
//! it carries counts only, never a peer address or a name.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use super::conns::ConnCounts;
use crate::service::ServiceStatus;
use crate::stats::ServiceTotals;

type Field = fn(&ServiceTotals) -> u64;

/// (name, type, help, value) of each per-service counter or gauge.
const PER_SERVICE: [(&str, &str, &str, Field); 7] = [
    (
        "switchboard_connections_active",
        "gauge",
        "Open TCP connections, or UDP peers seen recently.",
        |t| t.active,
    ),
    (
        "switchboard_connections_total",
        "counter",
        "Connections accepted (TCP) or new peers seen (UDP).",
        |t| t.accepted,
    ),
    (
        "switchboard_connections_refused_total",
        "counter",
        "Connections or datagrams turned away by a limit.",
        |t| t.refused,
    ),
    (
        "switchboard_connection_errors_total",
        "counter",
        "Connections that ended in an error (reset, timeout, bad input).",
        |t| t.errors,
    ),
    (
        "switchboard_auth_failures_total",
        "counter",
        "Failed authentications: wrong HMAC answers, failed logins.",
        |t| t.auth_failures,
    ),
    (
        "switchboard_received_bytes_total",
        "counter",
        "Bytes received from peers.",
        |t| t.bytes_in,
    ),
    (
        "switchboard_sent_bytes_total",
        "counter",
        "Bytes sent to peers.",
        |t| t.bytes_out,
    ),
];

fn render_text(
    statuses: &[ServiceStatus],
    totals: &[ServiceTotals],
    sessions: usize,
    web: ConnCounts,
    uptime_s: f64,
) -> String {
    let mut out = String::with_capacity(4096);
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# HELP switchboard_service_up Whether the service is running (1) or not (0).\n# TYPE switchboard_service_up gauge"
    );
    for s in statuses {
        let up = u8::from(s.state == "running");
        let _ = writeln!(
            out,
            "switchboard_service_up{{service=\"{}\",proto=\"{}\"}} {up}",
            s.name, s.proto
        );
    }
    for (name, kind, help, field) in PER_SERVICE {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for t in totals {
            let _ = writeln!(out, "{name}{{service=\"{}\"}} {}", t.service, field(t));
        }
    }
    let _ = writeln!(
        out,
        "# HELP switchboard_web_sessions Signed-in dashboard sessions.\n# TYPE switchboard_web_sessions gauge\nswitchboard_web_sessions {sessions}"
    );
    for (name, kind, help, value) in [
        (
            "switchboard_web_connections",
            "gauge",
            "Open dashboard HTTP connections.",
            web.open as u64,
        ),
        (
            "switchboard_web_connections_silent",
            "gauge",
            "Open dashboard connections that have not sent a byte yet.",
            web.silent as u64,
        ),
        (
            "switchboard_web_connections_shed_total",
            "counter",
            "Idle or silent dashboard connections closed to make room for new ones.",
            web.shed,
        ),
        (
            "switchboard_web_connections_refused_total",
            "counter",
            "Dashboard connections refused (per-address cap, or every slot busy).",
            web.refused,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP switchboard_uptime_seconds Seconds since the dashboard started.\n# TYPE switchboard_uptime_seconds gauge\nswitchboard_uptime_seconds {uptime_s:.3}"
    );
    let _ = writeln!(
        out,
        "# HELP switchboard_build_info The running version.\n# TYPE switchboard_build_info gauge\nswitchboard_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// The handler.
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let snapshot = state.stats().snapshot();
    let body = render_text(
        &state.supervisor().statuses(),
        &snapshot.services,
        state.sessions().count(),
        state.connection_counts(),
        state.inner.started.elapsed().as_secs_f64(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::ServiceKind;

    #[test]
    fn every_sample_line_parses_as_name_labels_value() {
        let stats = crate::stats::Stats::new();
        let g = stats.open(ServiceKind::Echo, crate::kind::Proto::Tcp, "p");
        g.add_in(5);
        let snap = stats.snapshot();
        let text = render_text(
            &[],
            &snap.services,
            2,
            ConnCounts {
                open: 3,
                silent: 1,
                shed: 4,
                refused: 5,
            },
            1.5,
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(series.starts_with("switchboard_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        assert!(text.contains("switchboard_received_bytes_total{service=\"echo\"} 5\n"));
        assert!(text.contains("switchboard_connections_active{service=\"echo\"} 1\n"));
        assert!(text.contains("switchboard_web_connections_shed_total 4\n"));
    }
}
