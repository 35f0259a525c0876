//! The Overview page: the summary strip and one card per instance.
//!
//! Not here: the live updates (the page's script reads `/api/v1/live`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Chrome;
use super::human_duration_ms;
use crate::stats::{Event, EventKind, UpstreamState};
use crate::terminal::human_bytes;
use crate::web::AppState;
use crate::web::api::ServiceView;
use crate::web::error::{PageError, WebError};
use crate::web::session::Viewer;

/// One service card.
pub struct Card {
    pub name: String,
    /// The kind, when the name is not already it (`echo-2`: `echo`).
    pub kind: Option<&'static str>,
    pub proto: String,
    pub addr: String,
    /// `running`, `stopped` or `failed`: the card's colour.
    pub state_word: &'static str,
    /// The failure reason, if failed.
    pub reason: String,
    pub state_for: String,
    pub active: u64,
    pub bytes_in: String,
    pub bytes_out: String,
    pub refused: u64,
    pub errors: u64,
    pub auth_failures: u64,
    /// A proxy's upstream as last seen (`upstream 127.0.0.1:6379 down:
    /// ...`), empty for other kinds or before the first connect.
    pub upstream: String,
    /// Whether that upstream is down (the line's colour).
    pub upstream_down: bool,
    /// When it was last probed, for the line's tooltip; empty before the
    /// first probe.
    pub upstream_probed: String,
}

/// The card's line for an upstream: the same words as its events.
pub fn upstream_line(u: &UpstreamState) -> String {
    match &u.reason {
        None => format!("upstream {} up", u.upstream),
        Some(why) => format!("upstream {} down: {why}", u.upstream),
    }
}

impl From<&ServiceView> for Card {
    fn from(v: &ServiceView) -> Self {
        let state_word = v.status.status.name();
        let reason = v.status.status.reason().unwrap_or_default().to_owned();
        let (name, kind) = (&v.status.name, v.status.kind);
        Card {
            name: name.to_string(),
            kind: (name.name() != kind.name()).then_some(kind.name()),
            proto: v.status.proto.to_string(),
            addr: v
                .status
                .local_addr
                .clone()
                .unwrap_or_else(|| v.status.listen.clone()),
            state_word,
            reason,
            state_for: human_duration_ms(v.state_for_ms),
            active: v.totals.active,
            bytes_in: human_bytes(v.totals.bytes_in),
            bytes_out: human_bytes(v.totals.bytes_out),
            refused: v.totals.refused,
            errors: v.totals.errors,
            auth_failures: v.totals.auth_failures,
            upstream: v.upstream.as_ref().map(upstream_line).unwrap_or_default(),
            upstream_down: v.upstream.as_ref().is_some_and(|u| !u.up),
            upstream_probed: v
                .upstream
                .as_ref()
                .and_then(|u| u.probed_unix_ms)
                .map(|at| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(at, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                    let ago = now.saturating_sub(at);
                    format!("last probed {} ago", human_duration_ms(ago))
                })
                .unwrap_or_default(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    chrome: Chrome,
    cards: Vec<Card>,
    summary: Summary,
}

/// The strip above the cards: what needs a look, at a glance.
pub struct Summary {
    pub running: usize,
    pub failed: usize,
    pub open: u64,
    /// Failed authentications and refusals in the last hour, counted from
    /// the recent events (the last [`crate::stats::RECENT_EVENTS`]).
    pub auth_failures_hour: usize,
    pub refusals_hour: usize,
}

impl Summary {
    fn of(views: &[ServiceView], events: &[Event], now_ms: u64) -> Summary {
        let hour_ago = now_ms.saturating_sub(3_600_000);
        let recent = || events.iter().filter(|e| e.at_unix_ms >= hour_ago);
        Summary {
            running: views.iter().filter(|v| v.status.phase == "running").count(),
            failed: views.iter().filter(|v| v.status.phase == "failed").count(),
            open: views.iter().map(|v| v.totals.active).sum(),
            // Dashboard sign-ins included: they are `auth_failed` too.
            auth_failures_hour: recent()
                .filter(|e| e.kind.type_name() == "auth_failed")
                .count(),
            refusals_hour: recent()
                .filter(|e| matches!(e.kind, EventKind::Refused { .. }))
                .count(),
        }
    }
}

/// `GET /`
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn overview(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<OverviewPage, PageError> {
    let Viewer(session) = viewer?;
    let snapshot = state.stats().snapshot_newest(0).0;
    let views = state.service_views(&snapshot);
    let events = state.stats().recent_events();
    Ok(OverviewPage {
        chrome: Chrome::new(session, "overview"),
        summary: Summary::of(&views, &events, snapshot.at_unix_ms),
        cards: views.iter().map(Card::from).collect(),
    })
}
