//! `GET /metrics`: the stats in Prometheus text format (version 0.0.4),
//! written straight from one snapshot: no metrics library, no global state.
//! Our own names start with `switchboard_`; services are told apart by a
//! `service` label. The `process_*` family is the one every Prometheus
//! client library exports, read from `/proc/self` (Linux; absent elsewhere).
//! Open to scrapers without a session, as `/healthz` is: it carries counts
//! only, never a peer address or a name.
//!
//! Also here: [`observe`], the middleware that times every request into
//! `switchboard_http_request_duration_seconds` and writes the access log.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::conns::ConnCounts;
use crate::kind::{ServiceId, ServiceKind};
use crate::stats::{DURATION_BUCKETS, Histogram, HistogramSnapshot, ServiceTotals};
use crate::supervisor::ServiceStatus;

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
        let up = u8::from(s.status == crate::supervisor::ServiceState::Running);
        let _ = writeln!(
            out,
            "switchboard_service_up{{{},proto=\"{}\"}} {up}",
            service_labels(&s.name),
            s.proto
        );
    }
    for (name, kind, help, field) in PER_SERVICE {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for t in totals {
            let _ = writeln!(out, "{name}{{{}}} {}", service_labels(&t.service), field(t));
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
    let snapshot = state.stats().snapshot_newest(0).0;
    let mut body = render_text(
        &state.supervisor().statuses(),
        &snapshot.services,
        state.sessions().count(),
        state.connection_counts(),
        state.inner.started.elapsed().as_secs_f64(),
    );
    let stats = state.stats();
    let of_kinds = |kinds: &[ServiceKind]| -> Vec<ServiceId> {
        state
            .supervisor()
            .ids()
            .into_iter()
            .filter(|id| kinds.contains(&id.kind()))
            .collect()
    };
    let exec: Vec<_> = of_kinds(&[ServiceKind::Exec])
        .into_iter()
        .map(|id| (stats.exec_durations(&id), id))
        .map(|(snap, id)| (id, snap))
        .collect();
    let upload: Vec<_> = of_kinds(&[ServiceKind::Files, ServiceKind::FilesClassic])
        .into_iter()
        .map(|id| (stats.upload_durations(&id), id))
        .map(|(snap, id)| (id, snap))
        .collect();
    render_durations(&mut body, &exec, &upload, &state.inner.http.snapshot());
    render_process(&mut body, &ProcessStats::read());
    let sup = state.supervisor();
    render_budget(&mut body, sup.fd_budget(), sup.fd_promised(None));
    super::toxics::render_metrics(&mut body, &state.supervisor().toxics().metrics(), label);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// An instance's labels: its name and its kind.
fn service_labels(id: &ServiceId) -> String {
    format!("service=\"{}\",kind=\"{}\"", label(id.name()), id.kind())
}

/// A label value as the text format wants it: `\`, `"` and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One histogram's samples: a bucket per bound, `+Inf`, `_sum`, `_count`.
/// `labels` is `k="v",...` without braces.
fn write_histogram(out: &mut String, name: &str, labels: &str, snap: &HistogramSnapshot) {
    let bounds = DURATION_BUCKETS.iter().map(|b| b.to_string());
    for (le, count) in bounds
        .chain(std::iter::once("+Inf".to_owned()))
        .zip(snap.cumulative)
    {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", snap.sum_seconds);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", snap.count());
}

/// A request series' labels: route template, method, status.
type HttpKey = (String, &'static str, u16);
type HttpSeries = (HttpKey, HistogramSnapshot);

fn render_durations(
    out: &mut String,
    exec: &[(ServiceId, HistogramSnapshot)],
    upload: &[(ServiceId, HistogramSnapshot)],
    http: &[HttpSeries],
) {
    for (name, help, series) in [
        (
            "switchboard_exec_duration_seconds",
            "Time from a command request to its end (exec).",
            exec,
        ),
        (
            "switchboard_upload_duration_seconds",
            "Time from an upload's header to its stored file.",
            upload,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (id, snap) in series {
            write_histogram(out, name, &service_labels(id), snap);
        }
    }
    let name = "switchboard_http_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Dashboard requests: time to the response head, by route template.\n# TYPE {name} histogram"
    );
    for ((route, method, status), snap) in http {
        let labels = format!(
            "route=\"{}\",method=\"{method}\",status=\"{status}\"",
            label(route)
        );
        write_histogram(out, name, &labels, snap);
    }
}

/// What `/proc/self` says about this process; `None` where it could not be
/// read (not Linux, or a field missing).
#[derive(Debug, Default)]
struct ProcessStats {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
    start_time_seconds: Option<f64>,
}

impl ProcessStats {
    fn read() -> ProcessStats {
        use nix::unistd::{SysconfVar, sysconf};
        // sysconf cannot fail for these on Linux; 100 and 4096 are what
        // Linux reports on every common architecture, used only if it did.
        let ticks = sysconf(SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|&t| t > 0)
            .map_or(100.0, |t| t as f64);
        let page = sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| u64::try_from(p).ok())
            .unwrap_or(4096);
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let fields = stat.as_deref().and_then(stat_fields);
        let field = |n: usize| fields.as_ref().and_then(|f| f.get(n).copied());
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
        let limits = std::fs::read_to_string("/proc/self/limits").ok();
        ProcessStats {
            cpu_seconds: field(14)
                .zip(field(15))
                .map(|(user, system)| (user + system) as f64 / ticks),
            resident_bytes: field(24).map(|pages| pages.saturating_mul(page)),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: limits.as_deref().and_then(max_open_files),
            start_time_seconds: boot
                .zip(field(22))
                .map(|(boot, start)| boot as f64 + start as f64 / ticks),
        }
    }
}

/// The numeric fields of `/proc/self/stat`, indexed by their 1-based
/// number in proc(5); 0 (unused), 1 (the pid), 2 (the name) and 3 (the
/// state) read as 0.
/// The name sits in parentheses and may itself hold spaces or `)`: the
/// fields after it start after the last `)`.
fn stat_fields(stat: &str) -> Option<Vec<u64>> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = vec![0; 4];
    fields.extend(
        rest.split_whitespace()
            .skip(1)
            .map(|f| f.parse::<i64>().map_or(0, |v| v.max(0) as u64)),
    );
    Some(fields)
}

/// The soft limit on open files from `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The descriptor budget and what running instances were promised of it
/// (the open count is `process_open_fds`).
fn render_budget(out: &mut String, budget: u64, promised: u64) {
    for (name, help, value) in [
        (
            "switchboard_fd_budget",
            "File descriptors instances may be promised: the open-file limit less the dashboard's reserve.",
            budget,
        ),
        (
            "switchboard_fd_promised",
            "File descriptors promised to running instances at their caps.",
            promised,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
}

fn render_process(out: &mut String, p: &ProcessStats) {
    let samples = [
        (
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes.map(|v| v as f64),
        ),
        (
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            p.open_fds.map(|v| v as f64),
        ),
        (
            "process_max_fds",
            "gauge",
            "The limit on open file descriptors.",
            p.max_fds.map(|v| v as f64),
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            p.start_time_seconds,
        ),
    ];
    for (name, kind, help, value) in samples {
        if let Some(value) = value {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}

/// Distinct (route, method, status) series kept at most: routes are our
/// templates and methods a fixed set, so this is never reached in practice;
/// it bounds memory whatever a peer sends.
const MAX_HTTP_SERIES: usize = 1024;

/// Request durations of the dashboard by (route, method, status). The
/// histograms are atomics; the map is read-locked for a lookup, and
/// write-locked only the first time a series is seen.
#[derive(Default)]
pub struct HttpMetrics {
    series: RwLock<HashMap<HttpKey, Arc<Histogram>>>,
}

impl HttpMetrics {
    fn observe(&self, route: &str, method: &'static str, status: u16, took: Duration) {
        let key = (route.to_owned(), method, status);
        let found = crate::sync::read(&self.series).get(&key).cloned();
        let histogram = match found {
            Some(h) => h,
            None => {
                let mut map = crate::sync::write(&self.series);
                if map.len() >= MAX_HTTP_SERIES && !map.contains_key(&key) {
                    return;
                }
                Arc::clone(map.entry(key).or_default())
            }
        };
        histogram.observe(took);
    }

    /// Every series, sorted so that scrapes list them in a stable order.
    fn snapshot(&self) -> Vec<HttpSeries> {
        let map = crate::sync::read(&self.series);
        let mut out: Vec<HttpSeries> = map.iter().map(|(k, h)| (k.clone(), h.snapshot())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The method as a label: the standard ones by name, anything else (a
/// peer may send any token) as `other`, so a peer cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The middleware around every route: times the request (to its response
/// head: a stream's body may last hours) into the route's histogram, and
/// writes one access-log line — at debug for the probes and `/metrics`,
/// which a scraper asks every few seconds, at info for everything else.
/// The route is the matched template (`/api/v1/files/{name}`), never the
/// raw path, so neither the series nor the log line grows with what a peer
/// asks; the raw path is logged, escaped, only for unmatched requests.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let method = method_label(req.method());
    let path = req.uri().path().to_owned();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_default();
    let mut req = req;
    let requester = super::session::Requester::default();
    req.extensions_mut().insert(requester.clone());
    // Routes that authenticate fill `requester`; only the others (pages
    // that look at the cookie alone, sign-in itself) are looked up in the
    // session table, after the response. A cookie header clone is a
    // reference count.
    let mut cookies = axum::http::HeaderMap::new();
    for value in req.headers().get_all(axum::http::header::COOKIE) {
        cookies.append(axum::http::header::COOKIE, value.clone());
    }
    let response = next.run(req).await;
    let user = requester
        .0
        .get()
        .cloned()
        .or_else(|| state.signed_in_user(&cookies));
    let took = started.elapsed();
    let status = response.status().as_u16();
    let route_label = route.as_deref().unwrap_or("unmatched");
    state.inner.http.observe(route_label, method, status, took);

    let ms = (took.as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
    let user = user.as_deref().unwrap_or("-").escape_debug().to_string();
    // Only the unmatched path is the peer's raw text: escaped and cut short.
    let shown: String = match &route {
        Some(template) => template.clone(),
        None => path
            .chars()
            .take(200)
            .collect::<String>()
            .escape_debug()
            .to_string(),
    };
    if super::session::PROBE_PATHS.contains(&path.as_str()) {
        tracing::debug!(target: "switchboard::web::access", %peer, method, route = %shown, status, ms, user = %user, "request");
    } else {
        tracing::info!(target: "switchboard::web::access", %peer, method, route = %shown, status, ms, user = %user, "request");
    }
    response
}

#[cfg(test)]
mod tests;
