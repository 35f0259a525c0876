//! `PATCH /api/v1/services/{name}`: changes only the keys sent, so an edit
//! can never drop a setting the form did not show (or a key added to a
//! kind after the page was loaded).
//!
//! The saved table is read under the same lock as the edit that replaces
//! it, the sent keys are laid over it (`null` returns a key to its
//! default), and the result goes through the same path as a whole
//! replacement (checked by the reader, applied, then written). It does not
//! rename or change an instance's kind.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::{InstanceSettings, Submission, edit_locked, settings_of};
use crate::config::Source;
use crate::web::AppState;
use crate::web::error::WebError;
use crate::web::session::{Admin, ClientIp};

/// More keys than any kind has: a body with more is not a form's.
const MAX_KEYS: usize = 64;

/// What a PATCH carries: the changed keys only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    pub settings: BTreeMap<String, serde_json::Value>,
}

fn refused(field: &str, message: impl Into<String>) -> WebError {
    WebError::Invalid {
        field: Some(field.to_owned()),
        message: message.into(),
        conflict: false,
    }
}

/// `PATCH /api/v1/services/{name}` (admin).
///
/// # Errors
/// 404 for no such instance; 422 naming the field for a bad or unknown
/// key; 409 for more than `enabled` on an instance the config file defines.
pub async fn patch(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
    Path(name): Path<String>,
    body: Result<Json<Patch>, JsonRejection>,
) -> Result<Json<InstanceSettings>, WebError> {
    let Json(patch) = body?;
    let result = patch_instance(&state, &name, patch).await;
    state
        .audit_change(
            &session.user,
            Some(from),
            "edit",
            &name,
            result.as_ref().map(drop),
        )
        .await;
    result.map(Json)
}

/// The saved table as the JSON a submission carries.
fn as_json(table: toml::Table) -> BTreeMap<String, serde_json::Value> {
    table
        .into_iter()
        .filter(|(k, _)| k != "kind")
        .filter_map(|(k, v)| serde_json::to_value(v).ok().map(|v| (k, v)))
        .collect()
}

async fn patch_instance(
    state: &AppState,
    name: &str,
    patch: Patch,
) -> Result<InstanceSettings, WebError> {
    if patch.settings.len() > MAX_KEYS {
        return Err(WebError::BadRequest(format!(
            "at most {MAX_KEYS} settings in one change"
        )));
    }
    if let Some(key) = ["kind", "name"]
        .into_iter()
        .find(|k| patch.settings.contains_key(*k))
    {
        return Err(refused(
            key,
            format!("`{key}` cannot be changed; add a new instance"),
        ));
    }
    let _one_at_a_time = state.inner.instance_edits.lock().await;
    let current = state
        .supervisor()
        .config_of(name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    if current.source != Source::Dashboard {
        // Only `enabled` can change there; the whole-replacement path says so.
        let settings = patch
            .settings
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .collect();
        let sub = Submission {
            name: None,
            kind: None,
            settings,
        };
        return edit_locked(state, name, sub).await;
    }
    let saved = as_json(state.overlay()?.services.remove(name).unwrap_or_default());
    let mut merged = saved.clone();
    for (key, value) in patch.settings {
        if value.is_null() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    if merged == saved {
        // Nothing changed: no restart, no dropped connections.
        return settings_of(state, name);
    }
    let sub = Submission {
        name: None,
        kind: None,
        settings: merged,
    };
    edit_locked(state, name, sub).await
}
