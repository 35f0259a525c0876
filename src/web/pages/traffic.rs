//! The Traffic page: the charts' frame and the recent event log, with the
//! one-line wording of every event.
//!
//! Not here: the charts' data (`/api/v1/traffic`, drawn by the script).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Chrome;
use super::{human_duration_ms, service_names};
use crate::stats::{Event, EventKind};
use crate::terminal::human_bytes;
use crate::web::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::session::Viewer;

/// One line of the event log.
pub struct LogLine {
    pub seq: u64,
    pub at_unix_ms: u64,
    pub kind: &'static str,
    pub service: String,
    pub text: String,
}

/// The one-line description of an event (the page's script has the same
/// wording for events that arrive live). UDP has no connections: a source
/// address is a peer that is new, then expires.
pub fn describe(kind: &EventKind) -> String {
    let udp = kind
        .service()
        .is_some_and(|s| s.proto() == crate::kind::Proto::Udp);
    match kind {
        EventKind::Opened { peer, id, .. } if udp => format!("new peer {peer} (#{id})"),
        EventKind::Opened { peer, id, .. } => format!("{peer} connected (#{id})"),
        EventKind::Closed {
            peer,
            bytes_in,
            bytes_out,
            duration_ms,
            ..
        } => format!(
            "{peer} {} {}: {} in, {} out",
            if udp {
                "expired, seen for"
            } else {
                "left after"
            },
            human_duration_ms(*duration_ms),
            human_bytes(*bytes_in),
            human_bytes(*bytes_out)
        ),
        EventKind::Refused { peer, reason, .. } => format!("{peer} refused: {reason}"),
        EventKind::ServiceState { state, .. } => format!("now {state}"),
        EventKind::AuthFailed { peer, reason, .. }
        | EventKind::SignInFailed { peer, reason, .. } => format!("{peer}: {reason}"),
        EventKind::CommandRun {
            peer,
            argv,
            outcome,
            ..
        } => format!("{peer} ran {}: {outcome}", argv.join(" ")),
        EventKind::FileStored {
            peer, name, size, ..
        } => format!("{peer} stored {name} ({})", human_bytes(*size)),
        EventKind::FileDeleted { user, name, .. } => format!("{user} deleted {name}"),
    }
}

impl From<&Event> for LogLine {
    fn from(e: &Event) -> Self {
        LogLine {
            seq: e.seq,
            at_unix_ms: e.at_unix_ms,
            kind: e.kind.type_name(),
            service: e.kind.service_name().to_owned(),
            text: describe(&e.kind),
        }
    }
}

/// Events shown when the traffic page loads.
const LOG_LINES: usize = 200;

#[derive(Template, WebTemplate)]
#[template(path = "traffic.html")]
pub struct TrafficPage {
    chrome: Chrome,
    log: Vec<LogLine>,
    services: Vec<String>,
    types: [&'static str; 7],
}

/// `GET /traffic`
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn traffic(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<TrafficPage, PageError> {
    let Viewer(session) = viewer?;
    let events = state.stats().recent_events();
    Ok(TrafficPage {
        chrome: Chrome::new(session, "traffic"),
        log: events
            .iter()
            .rev()
            .take(LOG_LINES)
            .map(LogLine::from)
            .collect(),
        services: service_names(&state),
        types: [
            "opened",
            "closed",
            "refused",
            "service_state",
            "auth_failed",
            "command_run",
            "file_stored",
        ],
    })
}
