//! The Inspect page: one connection's captured bytes, and where a replay
//! can go.
//!
//! Not here: the segments themselves (`/api/v1/connections/{id}/capture`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Chrome;
use crate::web::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::session::Admin;

#[derive(Template, WebTemplate)]
#[template(path = "inspect.html")]
pub struct InspectPage {
    chrome: Chrome,
    id: u64,
    /// What the capture holds as of the request, if there is one.
    capture: Option<crate::capture::CaptureInfo>,
    /// Whether its instance captures now.
    capturing: bool,
    /// The instances a replay can go to: running, same kind, no TLS; its
    /// own first.
    replay_targets: Vec<String>,
}

/// `GET /inspect/{id}`: one connection's bytes, segment by segment, live
/// (admins: captures may hold passwords and file contents).
///
/// # Errors
/// Not signed in: a redirect to the sign-in page; not an admin: 403.
pub async fn inspect(
    State(state): State<AppState>,
    admin: Result<Admin, WebError>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> Result<InspectPage, PageError> {
    let Admin(session) = admin?;
    let capture = state.stats().captures().get(id).map(|c| c.info());
    let capturing = capture
        .as_ref()
        .is_some_and(|c| state.stats().capturing(c.service.name()));
    let replay_targets = capture
        .as_ref()
        .map(|c| crate::web::replay_target::targets(&state, c))
        .unwrap_or_default();
    Ok(InspectPage {
        chrome: Chrome::new(session, "inspect"),
        id,
        capture,
        capturing,
        replay_targets,
    })
}
