//! `/api/v1/traffic`: each service's per-second history.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::kind::{Proto, ServiceId, ServiceKind};
use crate::stats::Sample;
use crate::web::AppState;
use crate::web::session::Viewer;

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
