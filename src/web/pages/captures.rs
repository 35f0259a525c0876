//! The Captures page: every capture the wire inspector holds, open or
//! closed, newest first, each with Inspect, a pcapng download and Replay —
//! so a closed connection's bytes stay one click away after its row has
//! left the Connections page (admins: captures may hold passwords and file
//! contents).
//!
//! Not here: the captures themselves (`crate::capture`) or the replay
//! (`POST /api/v1/connections/{id}/replay`, which the page's script calls).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Chrome;
use crate::capture::CaptureInfo;
use crate::terminal::human_bytes;
use crate::web::AppState;
use crate::web::capture::MAX_LISTED;
use crate::web::error::{PageError, WebError};
use crate::web::session::Admin;

/// One capture in the table.
pub struct Row {
    pub id: u64,
    pub service: String,
    pub kind: &'static str,
    pub peer: String,
    pub open: bool,
    /// When its connection opened, UTC.
    pub when: String,
    pub when_unix_ms: u64,
    pub bytes_in: String,
    pub bytes_out: String,
    /// Some of its oldest bytes were let go (`capture_bytes`).
    pub cut: bool,
}

impl From<&CaptureInfo> for Row {
    fn from(c: &CaptureInfo) -> Self {
        let ms = c.opened_at_unix_us / 1000;
        let when = i64::try_from(ms)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or_else(String::new, |t| {
                t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            });
        Row {
            id: c.id,
            service: c.service.name().to_owned(),
            kind: c.service.kind().name(),
            peer: c.peer.clone(),
            open: c.open,
            when,
            when_unix_ms: ms,
            bytes_in: human_bytes(c.bytes_in),
            bytes_out: human_bytes(c.bytes_out),
            cut: c.dropped_in + c.dropped_out > 0,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "captures.html")]
pub struct CapturesPage {
    chrome: Chrome,
    rows: Vec<Row>,
    /// Captures held in all (the table shows the newest `MAX_LISTED`).
    total: usize,
    held: String,
    budget: String,
}

/// `GET /captures`
///
/// # Errors
/// Not signed in: a redirect to the sign-in page; not an admin: 403.
pub async fn captures(
    State(state): State<AppState>,
    admin: Result<Admin, WebError>,
) -> Result<CapturesPage, PageError> {
    let Admin(session) = admin?;
    let store = state.stats().captures();
    let all = store.list();
    let rows = all
        .iter()
        .rev()
        .take(MAX_LISTED)
        .map(|c| Row::from(&c.info()))
        .collect();
    Ok(CapturesPage {
        chrome: Chrome::new(session, "captures"),
        rows,
        total: all.len(),
        held: human_bytes(store.held() as u64),
        budget: human_bytes(store.budget() as u64),
    })
}
