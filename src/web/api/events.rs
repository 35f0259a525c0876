//! `/api/v1/events`: the recent event log, filtered by sequence, service
//! and type.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::services::service_id;
use crate::stats::Event;
use crate::web::AppState;
use crate::web::error::{ApiQuery, WebError};
use crate::web::session::Viewer;

#[derive(Debug, Deserialize)]
pub struct EventQuery {
    /// Only events numbered above this.
    after: Option<u64>,
    /// Only this service's.
    service: Option<String>,
    /// Only this type (`opened`, `closed`, `auth_failed`, ...).
    #[serde(rename = "type")]
    kind: Option<String>,
    /// At most this many, the newest (default and cap 1000).
    limit: Option<usize>,
}

/// `GET /api/v1/events?after=SEQ&service=NAME&type=TYPE&limit=N`: the
/// recent event log, oldest first.
///
/// # Errors
/// An unknown service name or a malformed query.
pub async fn events(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<Vec<Event>>, WebError> {
    // An instance's name, or `web` for the dashboard's own (sign-ins).
    let service = match q.service.as_deref() {
        None | Some("web") => q.service.clone(),
        Some(name) => Some(service_id(&state, name)?.name().to_owned()),
    };
    let limit = q.limit.unwrap_or(crate::stats::RECENT_EVENTS);
    let mut events: Vec<Event> = state
        .stats()
        .recent_events()
        .into_iter()
        .filter(|e| q.after.is_none_or(|after| e.seq > after))
        .filter(|e| {
            service
                .as_deref()
                .is_none_or(|s| e.kind.service_name() == s)
        })
        .filter(|e| q.kind.as_deref().is_none_or(|k| e.kind.type_name() == k))
        .collect();
    let skip = events.len().saturating_sub(limit);
    events.drain(..skip);
    Ok(Json(events))
}
