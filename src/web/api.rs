//! The JSON API under `/api/v1` for what the pages show and do, one module
//! per resource: services (and starting, stopping, restarting them),
//! connections (and closing one), the event log, the traffic history, and
//! `/readyz`. docs/API.md is its manual. The routes themselves are
//! `web::routes`'; this module only re-exports the handlers under the names
//! the router has always used.

mod connections;
mod events;
mod ready;
mod services;
mod traffic;

use axum::http::Uri;

use super::error::WebError;

pub use connections::{close_connection, connections};
pub use events::events;
pub use ready::readyz;
pub use services::{ServiceView, service, service_action, services};
pub use traffic::traffic;

/// Anything else: a JSON 404 (pages have their own routes).
pub async fn not_found(uri: Uri) -> WebError {
    WebError::NotFound(format!("route {}", uri.path()))
}
