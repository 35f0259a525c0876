//! The Overview page: the summary strip and one card per instance.
//!
//! Not here: the live updates (the page's script reads `/api/v1/live`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Chrome;
use super::human_duration_ms;
use crate::stats::{Event, EventKind};
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
    /// A proxy's upstream as last probed (`upstream 127.0.0.1:6379 down:
    /// ...`), empty for other kinds or before the first probe.
    pub upstream: String,
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
            upstream: String::new(),
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
        cards: views
            .iter()
            .map(|v| {
                let mut card = Card::from(v);
                card.upstream = last_upstream(&events, &card.name);
                card
            })
            .collect(),
    })
}

/// The latest upstream probe result of a proxy instance, from its events.
fn last_upstream(events: &[Event], name: &str) -> String {
    events
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::ServiceState { service, state }
                if service.name() == name && state.starts_with("upstream ") =>
            {
                Some(state.clone())
            }
            _ => None,
        })
        .unwrap_or_default()
}
