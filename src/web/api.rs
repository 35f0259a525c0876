//! The JSON API under `/api/v1` for what the pages show and do: services
//! (and starting, stopping, restarting them), connections (and closing
//! one), the event log and the traffic history. docs/API.md is its manual.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::error::WebError;
use super::session::{Admin, Viewer};
use crate::kind::{Proto, ServiceId, ServiceKind};
use crate::service::ServiceError;
use crate::stats::{CloseError, Event, Sample, ServiceTotals, Snapshot, UpstreamState};
use crate::supervisor::{ServiceState, ServiceStatus};

/// A service as the dashboard shows it: its status, its totals and its
/// last second's traffic.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    #[serde(flatten)]
    pub status: ServiceStatus,
    /// How long it has been in its state, in milliseconds.
    pub state_for_ms: u64,
    #[serde(flatten)]
    pub totals: ServiceTotals,
    /// Bytes per second in the last whole second.
    pub rate_in: u64,
    pub rate_out: u64,
    /// How many of its toxics are on (0 unless a proxy): the Connections
    /// page marks its connections as under toxics.
    pub toxics_on: usize,
    /// A proxy's upstream as last seen (up or down, why, when last
    /// probed); absent for other kinds and before the first connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamState>,
}

impl AppState {
    /// Every service's view, from one stats snapshot.
    pub(super) fn service_views(&self, snapshot: &Snapshot) -> Vec<ServiceView> {
        self.supervisor()
            .statuses()
            .into_iter()
            .map(|status| {
                let last = self.stats().last_sample(&status.name).unwrap_or_default();
                let totals = snapshot
                    .services
                    .iter()
                    .find(|t| t.service == status.name)
                    .cloned()
                    .unwrap_or_else(|| self.stats().totals(&status.name));
                ServiceView {
                    state_for_ms: snapshot.at_unix_ms.saturating_sub(status.since_unix_ms),
                    totals,
                    rate_in: last.bytes_in,
                    rate_out: last.bytes_out,
                    toxics_on: self
                        .supervisor()
                        .toxics()
                        .list(status.name.name())
                        .iter()
                        .filter(|t| t.enabled)
                        .count(),
                    upstream: self.stats().upstream(&status.name),
                    status,
                }
            })
            .collect()
    }
}

/// The instance named `name`, or a 404.
fn service_id(state: &AppState, name: &str) -> Result<ServiceId, WebError> {
    state
        .supervisor()
        .id(name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))
}

/// The view of one instance.
fn view_of(state: &AppState, id: &ServiceId) -> Result<ServiceView, WebError> {
    state
        .service_views(&state.stats().snapshot_newest(0).0)
        .into_iter()
        .find(|v| v.status.name == *id)
        .ok_or_else(|| WebError::NotFound(format!("service `{id}`")))
}

/// `GET /api/v1/services`
pub async fn services(State(state): State<AppState>, _: Viewer) -> Json<Vec<ServiceView>> {
    Json(state.service_views(&state.stats().snapshot_newest(0).0))
}

/// `GET /api/v1/services/{name}`
///
/// # Errors
/// Unknown service.
pub async fn service(
    State(state): State<AppState>,
    _: Viewer,
    Path(name): Path<String>,
) -> Result<Json<ServiceView>, WebError> {
    let id = service_id(&state, &name)?;
    view_of(&state, &id).map(Json)
}

/// `POST /api/v1/services/{name}/start|stop|restart` (admin). Answers with
/// the service's view once the action is done; a bind failure is a 409
/// with the reason, and the service shows as failed.
///
/// # Errors
/// Unknown service or action, the service cannot start or stop.
pub async fn service_action(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<ServiceView>, WebError> {
    let id = service_id(&state, &name)?;
    let sup = state.supervisor();
    let result = match action.as_str() {
        "start" => sup.start(&id).await.map(drop),
        "stop" => sup.stop(&id).await,
        "restart" => sup.restart(&id).await.map(drop),
        other => {
            return Err(WebError::NotFound(format!(
                "action `{other}` (use start, stop or restart)"
            )));
        }
    };
    state
        .audit()
        .record(crate::audit::AuditEvent::Service {
            service: id.name().to_owned(),
            action: action.to_owned(),
            user: session.user.clone(),
            ok: result.is_ok(),
            error: result.as_ref().err().map(ToString::to_string),
        })
        .await;
    result.map_err(|e| match e {
        ServiceError::Bind { .. }
        | ServiceError::NoKey(_)
        | ServiceError::Folder { .. }
        | ServiceError::Loop { .. }
        | ServiceError::Budget { .. } => WebError::Conflict(e.to_string()),
        ServiceError::StopTimeout { .. } => WebError::Busy(e.to_string()),
        ServiceError::Unknown(name) => WebError::NotFound(format!("service `{name}`")),
        ServiceError::Exists(_) | ServiceError::Tls(..) => WebError::Conflict(e.to_string()),
        ServiceError::Io(e) => WebError::fault(format!("cannot {action} {name}"), e),
    })?;
    view_of(&state, &id).map(Json)
}

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
    Query(q): Query<ConnectionsQuery>,
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
        })
        .await;
    Ok(Json(json!({"ok": true, "id": id})))
}

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
    query: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Event>>, WebError> {
    let Query(q) = query?;
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

/// One service's history in the traffic answer.
#[derive(Debug, Serialize)]
pub struct ServiceHistory {
    pub name: ServiceId,
    pub kind: ServiceKind,
    pub proto: Proto,
    pub samples: Vec<Sample>,
}

/// `GET /api/v1/traffic`: bytes and connections per second over the last
/// 15 minutes, per service, oldest first.
pub async fn traffic(State(state): State<AppState>, _: Viewer) -> Json<Vec<ServiceHistory>> {
    Json(
        state
            .supervisor()
            .ids()
            .iter()
            .map(|id| ServiceHistory {
                name: id.clone(),
                kind: id.kind(),
                proto: id.proto(),
                samples: state.stats().history(id),
            })
            .collect(),
    )
}

/// `GET /readyz`: `200 {"ready":true}` when every enabled service is
/// running, else `503 {"ready":false,"failing":[names]}`. For a readiness
/// probe: a service stopped from the dashboard or failed to bind makes the
/// process not ready, while `/healthz` (alive) stays 200.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let failing: Vec<ServiceId> = state
        .supervisor()
        .statuses()
        .into_iter()
        .filter(|s| s.enabled && s.status != ServiceState::Running)
        .map(|s| s.name)
        .collect();
    if failing.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "failing": failing})),
        )
    }
}

/// Anything else: a JSON 404 (pages have their own routes).
pub async fn not_found(uri: Uri) -> WebError {
    WebError::NotFound(format!("route {}", uri.path()))
}
