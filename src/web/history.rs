//! The traffic history over a time range and an instance's last log lines:
//!
//! - `GET /api/v1/traffic/history?range=15m|1h|6h|24h` (or `range=SECONDS`,
//!   or `from=UNIX_S&to=UNIX_S`, for any signed-in role): every instance's
//!   traffic at the finest resolution that reaches back far enough — one
//!   second for 15 minutes, 10 seconds for 6 hours, one minute for 24
//!   hours ([`crate::stats::tiers`]) — with `step_s` saying which. Each
//!   point sums its seconds (bytes, accepts) and keeps their maxima
//!   (`active_max`, the busiest second's `peak_in` / `peak_out`).
//! - `GET /api/v1/services/{name}/log?limit=N` (operator): the instance's
//!   last log lines ([`crate::stats::log_lines`]), oldest first.
//!
//! Not here: sampling or folding (the stats registry), the 15-minute
//! `/api/v1/traffic` the older clients read, or drawing (static/pages/traffic.js).
//! History lives in memory only: a restart starts empty, and anything
//! older than 24 hours is Prometheus's (`/metrics`) to keep.

use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiQuery, WebError};
use super::session::{Operator, Viewer};
use crate::kind::{Proto, ServiceId, ServiceKind};
use crate::stats::log_lines::{self, LINES_PER_INSTANCE, LogLine};
use crate::stats::tiers::{Bucket, TIERS, Tier};

/// The longest range kept: the coarsest tier's reach.
pub const MAX_RANGE_S: u64 = crate::stats::tiers::MINUTES.span_s();

/// This module's routes, merged into the router with one line.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/traffic/history", get(history))
        .route("/api/v1/services/{name}/log", get(log))
}

/// Why a range was refused (a 400 saying what is accepted).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("range `{0}` is not 15m, 1h, 6h, 24h or a number of seconds (1 to 86400)")]
    Unknown(String),
    #[error("`from` ({from}) is after `to` ({to})")]
    Backwards { from: u64, to: u64 },
    #[error("history reaches back 24 hours ({MAX_RANGE_S} s); {0} s were asked for")]
    TooLong(u64),
}

impl From<RangeError> for WebError {
    fn from(e: RangeError) -> Self {
        WebError::BadRequest(e.to_string())
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RangeQuery {
    /// `15m`, `1h`, `6h`, `24h` or seconds; ending now (or at `to`).
    range: Option<String>,
    /// Unix seconds; with it, the range is `to - from`.
    from: Option<u64>,
    /// Unix seconds (default now; later than now reads as now).
    to: Option<u64>,
}

/// The window asked for and the tier that shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_unix_s: u64,
    pub to_unix_s: u64,
    pub tier: Tier,
}

/// Seconds of a `range` value.
fn range_seconds(text: &str) -> Result<u64, RangeError> {
    let s = match text {
        "15m" => 15 * 60,
        "1h" => 3600,
        "6h" => 6 * 3600,
        "24h" | "1d" => 24 * 3600,
        n => n
            .parse::<u64>()
            .map_err(|_| RangeError::Unknown(text.chars().take(40).collect()))?,
    };
    match s {
        0 => Err(RangeError::Unknown(text.to_owned())),
        s if s > MAX_RANGE_S => Err(RangeError::TooLong(s)),
        s => Ok(s),
    }
}

/// The window of a query at `now`: the finest tier reaching back to its
/// start.
pub fn window(q: &RangeQuery, now_unix_s: u64) -> Result<Window, RangeError> {
    let to = q.to.unwrap_or(now_unix_s).min(now_unix_s);
    let from = match q.from {
        Some(from) if from > to => return Err(RangeError::Backwards { from, to }),
        Some(from) => from,
        None => to.saturating_sub(range_seconds(q.range.as_deref().unwrap_or("15m"))?),
    };
    let back = now_unix_s.saturating_sub(from);
    if back > MAX_RANGE_S {
        return Err(RangeError::TooLong(back));
    }
    let tier = TIERS
        .into_iter()
        .find(|t| t.span_s() >= back)
        .unwrap_or(crate::stats::tiers::MINUTES);
    Ok(Window {
        from_unix_s: from,
        to_unix_s: to,
        tier,
    })
}

/// The answer to a history request: one time axis, and each instance's
/// values as columns along it (a third of the size of one object a point:
/// about 100 KB an instance for 6 hours).
#[derive(Debug, Serialize)]
pub struct HistoryAnswer {
    pub from_unix_s: u64,
    pub to_unix_s: u64,
    /// Seconds per point: 1, 10 or 60.
    pub step_s: u64,
    /// Each point's first second, oldest first; the newest point may be
    /// still filling (`seconds` below `step_s`).
    pub at_unix_s: Vec<u64>,
    pub services: Vec<ServiceSeries>,
}

/// One instance's columns, one value a point of the time axis. Where it
/// has no point (added later, or removed and added again) `seconds` is 0
/// and every value 0.
#[derive(Debug, Default, Serialize)]
pub struct ServiceSeries {
    pub name: String,
    pub kind: Option<ServiceKind>,
    pub proto: Option<Proto>,
    /// How many one-second samples the point holds.
    pub seconds: Vec<u64>,
    /// Sums over the point's seconds.
    pub bytes_in: Vec<u64>,
    pub bytes_out: Vec<u64>,
    pub accepted: Vec<u64>,
    /// Maxima over the point's seconds.
    pub active_max: Vec<u64>,
    pub peak_in: Vec<u64>,
    pub peak_out: Vec<u64>,
}

impl ServiceSeries {
    /// `points` laid along `axis` (which holds every point's time).
    fn along(id: &ServiceId, axis: &[u64], points: &[Bucket]) -> ServiceSeries {
        let n = axis.len();
        let mut s = ServiceSeries {
            name: id.name().to_owned(),
            kind: Some(id.kind()),
            proto: Some(id.proto()),
            ..ServiceSeries::default()
        };
        for col in s.columns() {
            *col = vec![0; n];
        }
        for p in points {
            // The axis is the sorted union of every instance's times.
            let Ok(i) = axis.binary_search(&p.at_unix_s) else {
                continue;
            };
            s.seconds[i] = p.seconds;
            s.bytes_in[i] = p.bytes_in;
            s.bytes_out[i] = p.bytes_out;
            s.accepted[i] = p.accepted;
            s.active_max[i] = p.active_max;
            s.peak_in[i] = p.peak_in;
            s.peak_out[i] = p.peak_out;
        }
        s
    }

    fn columns(&mut self) -> [&mut Vec<u64>; 7] {
        [
            &mut self.seconds,
            &mut self.bytes_in,
            &mut self.bytes_out,
            &mut self.accepted,
            &mut self.active_max,
            &mut self.peak_in,
            &mut self.peak_out,
        ]
    }
}

fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `GET /api/v1/traffic/history`.
///
/// # Errors
/// A range not understood, backwards, or longer than is kept (400).
pub async fn history(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Json<HistoryAnswer>, WebError> {
    let w = window(&q, now_unix_s())?;
    // Whole buckets: the one holding `from` is in.
    let start = w.from_unix_s - w.from_unix_s % w.tier.step_s;
    let per_instance: Vec<(ServiceId, Vec<Bucket>)> = state
        .supervisor()
        .ids()
        .into_iter()
        .map(|id| {
            let mut points = state.stats().buckets(&id, w.tier, start);
            points.retain(|p| p.at_unix_s <= w.to_unix_s);
            (id, points)
        })
        .collect();
    let axis: Vec<u64> = per_instance
        .iter()
        .flat_map(|(_, ps)| ps.iter().map(|p| p.at_unix_s))
        .collect::<std::collections::BTreeSet<u64>>()
        .into_iter()
        .collect();
    let services = per_instance
        .iter()
        .map(|(id, ps)| ServiceSeries::along(id, &axis, ps))
        .collect();
    Ok(Json(HistoryAnswer {
        from_unix_s: w.from_unix_s,
        to_unix_s: w.to_unix_s,
        step_s: w.tier.step_s,
        at_unix_s: axis,
        services,
    }))
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    /// At most this many, the newest (default and cap 50).
    limit: Option<usize>,
}

/// `GET /api/v1/services/{name}/log`: the instance's last log lines.
///
/// # Errors
/// No such instance (404), a malformed query (400).
pub async fn log(
    State(state): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<Vec<LogLine>>, WebError> {
    let id = state
        .supervisor()
        .id(&name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    let limit = q
        .limit
        .unwrap_or(LINES_PER_INSTANCE)
        .min(LINES_PER_INSTANCE);
    Ok(Json(log_lines::global().lines(id.name(), limit)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::tiers::{MINUTES, SECONDS, TEN_SECONDS};

    const NOW: u64 = 1_800_000_000;

    fn q(range: Option<&str>, from: Option<u64>, to: Option<u64>) -> RangeQuery {
        RangeQuery {
            range: range.map(str::to_owned),
            from,
            to,
        }
    }

    #[test]
    fn each_range_gets_the_finest_tier_that_reaches_it() {
        let tier = |r: &str| window(&q(Some(r), None, None), NOW).map(|w| w.tier);
        assert_eq!(tier("15m"), Ok(SECONDS));
        assert_eq!(tier("1h"), Ok(TEN_SECONDS));
        assert_eq!(tier("6h"), Ok(TEN_SECONDS));
        assert_eq!(tier("24h"), Ok(MINUTES));
        assert_eq!(tier("60"), Ok(SECONDS));
        let w = window(&q(Some("24h"), None, None), NOW).unwrap();
        assert_eq!(w.to_unix_s - w.from_unix_s, 86_400);
        // A zoom into the last ten minutes of a day is back at one second.
        let w = window(&q(None, Some(NOW - 600), Some(NOW - 60)), NOW).unwrap();
        assert_eq!((w.tier, w.to_unix_s), (SECONDS, NOW - 60));
        // A zoom into this morning stays at the minute.
        let w = window(&q(None, Some(NOW - 20 * 3600), Some(NOW - 19 * 3600)), NOW).unwrap();
        assert_eq!(w.tier, MINUTES);
    }

    #[test]
    fn an_instance_without_a_point_reads_zero_seconds_there() {
        let b = |at, bytes_in| Bucket {
            at_unix_s: at,
            seconds: 10,
            bytes_in,
            ..Bucket::default()
        };
        let axis = [100, 110, 120];
        let id = ServiceId::new("late", ServiceKind::Echo);
        let s = ServiceSeries::along(&id, &axis, &[b(110, 5), b(120, 7)]);
        assert_eq!(s.seconds, [0, 10, 10]);
        assert_eq!(s.bytes_in, [0, 5, 7]);
        assert_eq!(s.peak_out, [0, 0, 0]);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            (json["name"].clone(), json["kind"].clone()),
            ("late".into(), "echo".into())
        );
    }

    #[test]
    fn hostile_ranges_are_refused_with_what_is_accepted() {
        let err = |query: RangeQuery| window(&query, NOW).unwrap_err();
        assert!(matches!(
            err(q(Some("1w"), None, None)),
            RangeError::Unknown(_)
        ));
        assert!(matches!(
            err(q(Some("0"), None, None)),
            RangeError::Unknown(_)
        ));
        assert!(matches!(
            err(q(Some("-5"), None, None)),
            RangeError::Unknown(_)
        ));
        assert_eq!(
            err(q(Some("86401"), None, None)),
            RangeError::TooLong(86_401)
        );
        assert!(matches!(
            err(q(None, Some(NOW), Some(NOW - 1))),
            RangeError::Backwards { .. }
        ));
        assert!(matches!(
            err(q(None, Some(0), None)),
            RangeError::TooLong(_)
        ));
        let long = "9".repeat(10_000);
        let shown = err(q(Some(&long), None, None)).to_string();
        assert!(shown.len() < 200, "a huge value is not echoed whole");
        // A `to` in the future reads as now.
        let w = window(&q(Some("1h"), None, Some(u64::MAX)), NOW).unwrap();
        assert_eq!(w.to_unix_s, NOW);
    }
}
