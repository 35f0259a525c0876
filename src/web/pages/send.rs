//! The Send page: test messages, sticky packets, B/S beside C/S.
//!
//! Not here: the sending (see the relay).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Chrome;
use crate::kind::ServiceKind;
use crate::users::Role;
use crate::web::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::session::Viewer;

#[derive(Template, WebTemplate)]
#[template(path = "send.html")]
pub struct SendPage {
    chrome: Chrome,
    can_operate: bool,
    /// Every instance a test message can go to (echo, udp-echo and time kinds).
    targets: Vec<SendTarget>,
    max_message: usize,
    max_sticky_messages: usize,
    max_sticky_len: usize,
    max_saved: usize,
    max_saved_name: usize,
    max_saved_total_kib: usize,
    /// The history's length (kept by the page, in the tab).
    max_history: usize,
}

/// Messages the Send page's history keeps (static/pages/send.js reads it
/// from the page).
pub const MAX_HISTORY: usize = 25;

/// One choice of the Send page's service list.
pub struct SendTarget {
    name: String,
    kind: &'static str,
    label: String,
    /// Not running: shown, but not choosable, with why.
    why_not: String,
    /// Takes connections through a trusted proxy only (`accept_proxy`):
    /// "the same from a shell" says a direct command is turned away.
    accept_proxy: bool,
}

impl SendTarget {
    fn of(id: &crate::kind::ServiceId) -> Option<SendTarget> {
        let what = match id.kind() {
            ServiceKind::Echo => "TCP, upper-cases",
            ServiceKind::UdpEcho => "UDP, upper-cases",
            ServiceKind::Time => "UDP, strftime format",
            _ => return None,
        };
        let label = match id.name() == id.kind().name() {
            true => format!("{id} ({what})"),
            false => format!("{id} ({}: {what})", id.kind()),
        };
        Some(SendTarget {
            name: id.name().to_owned(),
            kind: id.kind().name(),
            label,
            why_not: String::new(),
            accept_proxy: false,
        })
    }
}

/// `GET /send`: test messages, sticky packets, B/S beside C/S.
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn send(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<SendPage, PageError> {
    let Viewer(session) = viewer?;
    Ok(SendPage {
        targets: state
            .supervisor()
            .statuses()
            .iter()
            .filter_map(|s| {
                let mut t = SendTarget::of(&s.name)?;
                t.accept_proxy = s.accept_proxy;
                if s.status != crate::supervisor::ServiceState::Running {
                    t.why_not = s.state.clone();
                }
                Some(t)
            })
            .collect(),
        can_operate: session.role >= Role::Operator,
        chrome: Chrome::new(session, "send"),
        max_message: crate::web::relay::MAX_MESSAGE,
        max_sticky_messages: crate::web::relay::MAX_STICKY_MESSAGES,
        max_sticky_len: crate::web::relay::MAX_STICKY_LEN,
        max_saved: crate::web::saved::MAX_SAVED,
        max_saved_name: crate::web::saved::MAX_SAVED_NAME,
        max_saved_total_kib: crate::web::saved::MAX_SAVED_TOTAL / 1024,
        max_history: MAX_HISTORY,
    })
}
