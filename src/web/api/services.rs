//! `/api/v1/services`: every instance's view (status, totals, last
//! second's traffic, a proxy's upstream), one instance's, and starting,
//! stopping or restarting one. Adding and removing instances is
//! `web::instances`'.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use crate::kind::ServiceId;
use crate::service::ServiceError;
use crate::stats::{ServiceTotals, Snapshot, UpstreamState};
use crate::supervisor::ServiceStatus;
use crate::web::AppState;
use crate::web::error::WebError;
use crate::web::session::{Admin, ClientIp, Viewer};

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
    pub(in crate::web) fn service_views(&self, snapshot: &Snapshot) -> Vec<ServiceView> {
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
pub(super) fn service_id(state: &AppState, name: &str) -> Result<ServiceId, WebError> {
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
    ClientIp(from): ClientIp,
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
            peer: Some(from.to_string()),
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
