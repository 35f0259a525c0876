//! The Files and Console pages: the forms around the files and exec
//! relays.
//!
//! Not here: the transfers and commands themselves (the relay's).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Chrome;
use crate::terminal::human_bytes;
use crate::users::Role;
use crate::web::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::session::Viewer;

#[derive(Template, WebTemplate)]
#[template(path = "files.html")]
pub struct FilesPage {
    chrome: Chrome,
    can_operate: bool,
    max_file_bytes: u64,
    max_file: String,
}

/// `GET /files`: upload, and the stored files.
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn files(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<FilesPage, PageError> {
    let Viewer(session) = viewer?;
    let max = state.inner.files_max;
    Ok(FilesPage {
        can_operate: session.role >= Role::Operator,
        chrome: Chrome::new(session, "files"),
        max_file_bytes: max,
        max_file: human_bytes(max),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "console.html")]
pub struct ConsolePage {
    chrome: Chrome,
    allow: Vec<String>,
    shell: bool,
    timeout_s: u64,
}

/// `GET /console`: remote commands (admins).
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn console(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<ConsolePage, PageError> {
    let Viewer(session) = viewer?;
    let exec = &state.inner.exec_settings;
    Ok(ConsolePage {
        chrome: Chrome::new(session, "console"),
        allow: exec.allow.clone(),
        shell: exec.shell,
        timeout_s: exec.timeout.as_secs(),
    })
}
