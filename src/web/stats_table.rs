//! The stats table, HAProxy-style: one dense row per instance — current,
//! peak and limit of connections (peers for UDP), connection and byte
//! rates now and at their peak, totals, errors, refusals and failed
//! sign-ins — as JSON (`GET /api/v1/stats`) and as CSV
//! (`GET /api/v1/stats.csv`), for every signed-in role.
//!
//! Peaks are over the traffic history the process keeps (the same samples
//! as `/api/v1/traffic`), not since start. Not here: the page
//! (`pages::stats`) or the sorting, which the page's script does.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;

use super::AppState;
use super::session::Viewer;
use crate::settings::Limits;

/// One instance's row.
#[derive(Debug, Clone, Serialize)]
pub struct StatsRow {
    pub name: String,
    pub kind: &'static str,
    pub proto: String,
    pub state: &'static str,
    pub enabled: bool,
    /// Open connections (TCP) or tracked peers (UDP) now, their peak, and
    /// the instance's limit (`max_connections` or `max_peers`).
    pub current: u64,
    pub max: u64,
    pub limit: u64,
    /// New connections (peers) in the last second, and the peak.
    pub rate: u64,
    pub rate_max: u64,
    /// Bytes per second in the last second.
    pub bytes_in_rate: u64,
    pub bytes_out_rate: u64,
    pub accepted: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub errors: u64,
    pub refused: u64,
    pub auth_failures: u64,
}

/// The columns, in the CSV's order (the JSON names).
pub const COLUMNS: &[&str] = &[
    "name",
    "kind",
    "proto",
    "state",
    "enabled",
    "current",
    "max",
    "limit",
    "rate",
    "rate_max",
    "bytes_in_rate",
    "bytes_out_rate",
    "accepted",
    "bytes_in",
    "bytes_out",
    "errors",
    "refused",
    "auth_failures",
];

/// Every instance's row, in config order.
pub fn rows(state: &AppState) -> Vec<StatsRow> {
    let snapshot = state.stats().snapshot_newest(0).0;
    state
        .service_views(&snapshot)
        .into_iter()
        .map(|v| {
            let id = &v.status.name;
            let history = state.stats().history(id);
            let limit = state
                .supervisor()
                .config_of(id.name())
                .map_or(0, |c| match c.limits {
                    Limits::Tcp(t) => t.max_connections,
                    Limits::Udp(u) => u.max_peers,
                });
            let last = history.last().map_or(0, |s| s.accepted);
            StatsRow {
                name: id.name().to_owned(),
                kind: id.kind().name(),
                proto: id.proto().to_string(),
                state: v.status.phase,
                enabled: v.status.enabled,
                current: v.totals.active,
                max: history
                    .iter()
                    .map(|s| s.active)
                    .chain([v.totals.active])
                    .max()
                    .unwrap_or(0),
                limit: limit as u64,
                rate: last,
                rate_max: history.iter().map(|s| s.accepted).max().unwrap_or(0),
                bytes_in_rate: v.rate_in,
                bytes_out_rate: v.rate_out,
                accepted: v.totals.accepted,
                bytes_in: v.totals.bytes_in,
                bytes_out: v.totals.bytes_out,
                errors: v.totals.errors,
                refused: v.totals.refused,
                auth_failures: v.totals.auth_failures,
            }
        })
        .collect()
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line
/// break; a leading `=`, `+`, `-` or `@` gets a `'` so a spreadsheet does
/// not read it as a formula.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The rows as CSV, a header line first.
pub fn csv(rows: &[StatsRow]) -> String {
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for r in rows {
        let cells = [
            field(&r.name),
            field(r.kind),
            field(&r.proto),
            field(r.state),
            r.enabled.to_string(),
            r.current.to_string(),
            r.max.to_string(),
            r.limit.to_string(),
            r.rate.to_string(),
            r.rate_max.to_string(),
            r.bytes_in_rate.to_string(),
            r.bytes_out_rate.to_string(),
            r.accepted.to_string(),
            r.bytes_in.to_string(),
            r.bytes_out.to_string(),
            r.errors.to_string(),
            r.refused.to_string(),
            r.auth_failures.to_string(),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `GET /api/v1/stats`
pub async fn json(State(state): State<AppState>, _: Viewer) -> Json<Vec<StatsRow>> {
    Json(rows(&state))
}

/// `GET /api/v1/stats.csv`: the same, as a download.
pub async fn download(State(state): State<AppState>, _: Viewer) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"switchboard-stats.csv\"",
            ),
        ],
        csv(&rows(&state)),
    )
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(field("echo"), "echo");
        assert_eq!(field("failed: a, b"), "\"failed: a, b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=1+1"), "'=1+1");
        assert_eq!(field("-x,y"), "\"'-x,y\"");
        assert_eq!(field("a\nb"), "\"a\nb\"");
    }
}
