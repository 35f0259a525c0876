//! The Connections page: every open connection, newest first.
//!
//! Not here: closing one (that is the API's `DELETE`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Chrome;
use super::{human_duration_ms, service_names};
use crate::stats::ConnInfo;
use crate::terminal::human_bytes;
use crate::web::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::session::Viewer;

/// One row of the connections table.
pub struct Row {
    pub id: u64,
    pub service: String,
    pub proto: String,
    pub peer: String,
    pub age: String,
    pub bytes_in: String,
    pub bytes_out: String,
    pub idle: String,
}

impl From<&ConnInfo> for Row {
    fn from(c: &ConnInfo) -> Self {
        Row {
            id: c.id,
            service: c.service.to_string(),
            proto: c.proto.to_string(),
            peer: c.peer.clone(),
            age: human_duration_ms(c.age_ms),
            bytes_in: human_bytes(c.bytes_in),
            bytes_out: human_bytes(c.bytes_out),
            idle: human_duration_ms(c.idle_ms),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "connections.html")]
pub struct ConnectionsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    total: usize,
    services: Vec<String>,
}

/// `GET /connections`
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn connections(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<ConnectionsPage, PageError> {
    let Viewer(session) = viewer?;
    let live = state.live_snapshot();
    Ok(ConnectionsPage {
        chrome: Chrome::new(session, "connections"),
        rows: live.connections.iter().rev().map(Row::from).collect(),
        total: live.connections_total,
        services: service_names(&state),
    })
}
