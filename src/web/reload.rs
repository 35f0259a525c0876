//! `POST /api/v1/reload` (admin; the Services page's Reload button): the
//! same reload as `SIGHUP` and `switchboard reload`, answered with what it
//! did. It never reads a file itself: [`crate::reload::Reloader`] does.

use axum::Json;
use axum::extract::State;

use super::session::{Admin, ClientIp};
use super::{AppState, WebError};

/// Reloads the configuration; 422 with the reason when it has an error
/// (nothing changed), 503 when this server was started without a way to
/// read its configuration again (a library caller).
///
/// # Errors
/// As above.
pub async fn reload(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
) -> Result<Json<serde_json::Value>, WebError> {
    let Some(reloader) = state.reloader() else {
        return Err(WebError::Busy(
            "this server cannot reload its configuration (started without one)".into(),
        ));
    };
    match reloader.reload(&session.user, Some(from)).await {
        Ok(report) => Ok(Json(serde_json::json!({"ok": true, "result": report}))),
        Err(e) => Err(WebError::Invalid {
            field: None,
            message: e.to_string(),
            conflict: false,
        }),
    }
}
