//! The Stats page: every instance in one dense, sortable table, HAProxy's
//! stats page for switchboard, with a CSV download.
//!
//! Not here: the figures (`web::stats_table`, shared with the JSON and CSV
//! endpoints) or the sorting (the page's script).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Chrome;
use crate::web::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::session::Viewer;
use crate::web::stats_table::{StatsRow, rows};

#[derive(Template, WebTemplate)]
#[template(path = "stats.html")]
pub struct StatsPage {
    chrome: Chrome,
    rows: Vec<StatsRow>,
}

/// `GET /stats`
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn stats(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<StatsPage, PageError> {
    let Viewer(session) = viewer?;
    Ok(StatsPage {
        chrome: Chrome::new(session, "stats"),
        rows: rows(&state),
    })
}
