//! `/api/v1/connections`: the open connections (newest first, capped), and
//! closing one.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use crate::stats::CloseError;
use crate::web::AppState;
use crate::web::error::{ApiQuery, WebError};
use crate::web::session::{Admin, ClientIp, Viewer};

/// Connections one `GET /api/v1/connections` lists unless `limit` says
/// otherwise: about 2 MB of JSON, so a server holding 100,000 connections
/// does not build a 20 MB answer for every poll.
pub const CONNECTIONS_DEFAULT_LIMIT: usize = 10_000;
/// The most one request may ask for.
pub const CONNECTIONS_MAX_LIMIT: usize = 200_000;

#[derive(Debug, Deserialize)]
pub struct ConnectionsQuery {
    /// The newest this many (default [`CONNECTIONS_DEFAULT_LIMIT`]).
    limit: Option<usize>,
}

/// `GET /api/v1/connections?limit=N`: the newest N TCP connections and
/// recent UDP peers (default 10,000), oldest first; `x-total-count` says
/// how many are open in all.
///
/// # Errors
/// A `limit` of 0 or above [`CONNECTIONS_MAX_LIMIT`].
pub async fn connections(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<ConnectionsQuery>,
) -> Result<impl IntoResponse, WebError> {
    let limit = q.limit.unwrap_or(CONNECTIONS_DEFAULT_LIMIT);
    if !(1..=CONNECTIONS_MAX_LIMIT).contains(&limit) {
        return Err(WebError::BadRequest(format!(
            "limit must be 1 to {CONNECTIONS_MAX_LIMIT}"
        )));
    }
    let (snapshot, total) = state.stats().snapshot_newest(limit);
    Ok((
        [("x-total-count", total.to_string())],
        Json(snapshot.connections),
    ))
}

/// `DELETE /api/v1/connections/{id}` (admin): ends a TCP connection.
///
/// # Errors
/// No such connection, or a UDP peer.
pub async fn close_connection(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
    Path(id): Path<u64>,
) -> Result<Json<serde_json::Value>, WebError> {
    state.stats().close(id).map_err(|e| match e {
        CloseError::NotFound => WebError::NotFound(format!("connection {id}")),
        CloseError::NotTcp => WebError::Conflict(e.to_string()),
    })?;
    state
        .audit()
        .record(crate::audit::AuditEvent::CloseConnection {
            id,
            user: session.user.clone(),
            peer: Some(from.to_string()),
        })
        .await;
    Ok(Json(json!({"ok": true, "id": id})))
}
