//! `/readyz`: whether every enabled service runs, for a readiness probe
//! (no sign-in: it names services, nothing more).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use crate::kind::ServiceId;
use crate::supervisor::ServiceState;
use crate::web::AppState;

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
