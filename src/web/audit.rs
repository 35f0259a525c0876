//! The Audit page (admins): `audit.log` read back newest first, a page at a
//! time, with a text filter. Reads are bounded per request (see
//! [`crate::audit_read`]), so a huge log costs no more than a small one.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::error::{ApiQuery, WebError};
use super::session::Admin;
use crate::audit_read::{self, Page};

/// `?before=OFFSET&limit=N&q=TEXT`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub before: Option<u64>,
    pub limit: Option<usize>,
    #[serde(default)]
    pub q: String,
}

/// The longest filter accepted.
const MAX_FILTER: usize = 200;

/// `GET /api/v1/audit` (admin): one page of the audit log, newest first.
///
/// # Errors
/// A bad query; the log cannot be read.
pub async fn page(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Page>, WebError> {
    if q.q.len() > MAX_FILTER {
        return Err(WebError::BadRequest(format!(
            "a filter is at most {MAX_FILTER} bytes"
        )));
    }
    // Let the writer catch up, so what was just done is on the page.
    state.audit().flush().await;
    let path = crate::audit::path(&state.inner.data_dir);
    let limit = q.limit.unwrap_or(100);
    tokio::task::spawn_blocking(move || audit_read::page(&path, q.before, limit, &q.q))
        .await
        .map_err(|e| WebError::fault("the audit log's reader failed", e))?
        .map(Json)
        .map_err(|e| WebError::fault("cannot read the audit log", e))
}
