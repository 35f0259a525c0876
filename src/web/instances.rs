//! Instances managed from the dashboard (and `switchboard service`): add,
//! edit and remove them while running, kept in `<data_dir>/services.toml`.
//!
//! A submission is checked by the config's own reader (so the same setting
//! is refused with the same words, and the error names its field), applied
//! live through the supervisor, and only then written to the file, so the
//! file never holds an instance that could not run. Every change is audited
//! with the user. Instances the config file defines (the built-in seven
//! among them) can only be turned on and off here: the file stays their
//! source.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::error::WebError;
use super::session::{Admin, ClientIp, Viewer};
use crate::config::Source;
use crate::config::overlay::{self, FieldError, Overlay};
use crate::kind::ServiceKind;
use crate::service::ServiceError;

mod patch;
mod secrets;
pub use patch::patch;

/// `GET /api/v1/kinds`: every key of every kind, described (see
/// `service::describe`).
pub async fn kinds(_: Viewer) -> Json<Vec<crate::service::describe::KindInfo>> {
    Json(crate::service::describe::kinds())
}

/// What the form sends: every setting as text, as `--set` takes it (a list
/// as `a, b`), or as a JSON number, boolean or list of strings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    pub name: Option<String>,
    pub kind: Option<String>,
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

/// An instance's settings as the form shows them.
#[derive(Debug, Serialize)]
pub struct InstanceSettings {
    pub name: String,
    pub kind: ServiceKind,
    pub source: Source,
    /// What can be changed here: everything for a dashboard instance,
    /// only `enabled` for the others.
    pub editable: Vec<String>,
    pub settings: BTreeMap<String, String>,
}

fn invalid(e: FieldError) -> WebError {
    WebError::Invalid {
        field: e.field,
        message: e.message,
        conflict: false,
    }
}

/// A submission's settings: text as `--set` takes it, and what came typed
/// (a JSON list of strings, or an object of strings such as `env`), kept
/// typed so that no element is joined with commas and split again.
struct Split {
    text: BTreeMap<String, String>,
    typed: toml::Table,
}

impl Split {
    fn has(&self, key: &str) -> bool {
        self.text.contains_key(key) || self.typed.contains_key(key)
    }
}

fn strings(key: &str, value: &serde_json::Value) -> Result<toml::Value, WebError> {
    let bad = |what: &str| WebError::Invalid {
        field: Some(key.to_owned()),
        message: format!("expected {what}"),
        conflict: false,
    };
    match value {
        serde_json::Value::String(s) => Ok(toml::Value::String(s.clone())),
        _ => Err(bad("text")),
    }
}

fn split(settings: &BTreeMap<String, serde_json::Value>) -> Result<Split, WebError> {
    let mut out = Split {
        text: BTreeMap::new(),
        typed: toml::Table::new(),
    };
    for (key, value) in settings {
        let list_error = || WebError::Invalid {
            field: Some(key.clone()),
            message: "expected a list of strings".into(),
            conflict: false,
        };
        match value {
            serde_json::Value::String(s) => {
                out.text.insert(key.clone(), s.clone());
            }
            serde_json::Value::Bool(b) => {
                out.text.insert(key.clone(), b.to_string());
            }
            serde_json::Value::Number(n) => {
                out.text.insert(key.clone(), n.to_string());
            }
            serde_json::Value::Array(items) => {
                let items = items
                    .iter()
                    .map(|i| strings(key, i).map_err(|_| list_error()))
                    .collect::<Result<Vec<_>, _>>()?;
                out.typed.insert(key.clone(), toml::Value::Array(items));
            }
            serde_json::Value::Object(entries) => {
                let table = entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), strings(key, v)?)))
                    .collect::<Result<toml::Table, WebError>>()?;
                out.typed.insert(key.clone(), toml::Value::Table(table));
            }
            serde_json::Value::Null => {
                return Err(WebError::Invalid {
                    field: Some(key.clone()),
                    message: "expected text, a number, true/false, a list or a table".into(),
                    conflict: false,
                });
            }
        }
    }
    Ok(out)
}

/// A start failure as the form shows it: a taken port at `listen`.
fn start_failure(e: ServiceError) -> WebError {
    match e {
        ServiceError::Bind { .. } => WebError::Invalid {
            field: Some("listen".into()),
            message: e.to_string(),
            conflict: true,
        },
        ServiceError::Loop { .. } => WebError::Invalid {
            field: Some("upstream".into()),
            message: e.to_string(),
            conflict: false,
        },
        ServiceError::Budget { key, .. } => WebError::Invalid {
            field: Some(key.to_owned()),
            message: e.to_string(),
            conflict: false,
        },
        ServiceError::Exists(_) => WebError::Invalid {
            field: Some("name".into()),
            message: e.to_string(),
            conflict: true,
        },
        ServiceError::Tls(..) | ServiceError::Folder { .. } | ServiceError::NoKey(_) => {
            WebError::Conflict(e.to_string())
        }
        other => WebError::fault("cannot change the instance", other),
    }
}

impl AppState {
    /// Keeps an instance's live capture switch in `services.toml`, so a
    /// restart captures as the admin left it.
    ///
    /// # Errors
    /// The file cannot be read or written.
    pub(super) async fn keep_capture(&self, name: &str, on: bool) -> Result<(), WebError> {
        let _one_at_a_time = self.inner.instance_edits.lock().await;
        let mut overlay = self.overlay()?;
        overlay
            .services
            .entry(name.to_owned())
            .or_default()
            .insert("capture".into(), toml::Value::Boolean(on));
        self.keep(&overlay)
    }

    pub(super) fn overlay(&self) -> Result<Overlay, WebError> {
        Overlay::read(&self.inner.data_dir)
            .map_err(|e| WebError::fault(format!("cannot read {}", overlay::FILE), e))
    }

    pub(super) fn keep(&self, overlay: &Overlay) -> Result<(), WebError> {
        overlay
            .write(&self.inner.data_dir)
            .map_err(|e| WebError::fault(format!("cannot write {}", overlay::FILE), e))
    }

    pub(super) async fn audit_change(
        &self,
        user: &str,
        peer: Option<std::net::IpAddr>,
        action: &str,
        name: &str,
        ok: Result<(), &WebError>,
    ) {
        self.audit()
            .record(crate::audit::AuditEvent::ServiceConfig {
                action: action.to_owned(),
                service: name.to_owned(),
                user: user.to_owned(),
                peer: peer.map(|ip| ip.to_string()),
                ok: ok.is_ok(),
                error: ok.err().map(ToString::to_string),
            })
            .await;
    }
}

/// `POST /api/v1/services` (admin): adds an instance and starts it if enabled.
///
/// # Errors
/// 422 naming the field for a bad setting; 409 for a taken name or port.
pub async fn add(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
    body: Result<Json<Submission>, JsonRejection>,
) -> Result<Json<InstanceSettings>, WebError> {
    let Json(sub) = body?;
    let name = sub.name.unwrap_or_default();
    let result = add_instance(
        &state,
        &name,
        sub.kind.as_deref().unwrap_or(""),
        &sub.settings,
    )
    .await;
    state
        .audit_change(
            &session.user,
            Some(from),
            "add",
            &name,
            result.as_ref().map(drop),
        )
        .await;
    result.map(Json)
}

pub(super) async fn add_instance(
    state: &AppState,
    name: &str,
    kind: &str,
    settings: &BTreeMap<String, serde_json::Value>,
) -> Result<InstanceSettings, WebError> {
    let _one_at_a_time = state.inner.instance_edits.lock().await;
    let sub = split(settings)?;
    let allow = state.supervisor().stdio_allow().to_vec();
    let (config, table) = overlay::validate(
        crate::service::registry::read,
        name,
        kind,
        &sub.text,
        &sub.typed,
        &allow,
    )
    .map_err(invalid)?;
    let sup = state.supervisor();
    if sup.id(name).is_some() {
        return Err(start_failure(ServiceError::Exists(name.to_owned())));
    }
    if let Err(e) = sup.add(config).await {
        // Not kept: what could not start is not written down. (The name
        // was free, checked above under the same lock.)
        if !matches!(e, ServiceError::Exists(_)) {
            let _ = sup.remove(name).await;
        }
        return Err(start_failure(e));
    }
    let mut overlay = state.overlay()?;
    overlay.services.insert(name.to_owned(), table);
    state.keep(&overlay)?;
    settings_of(state, name)
}

/// `PUT /api/v1/services/{name}` (admin): replaces a dashboard instance's
/// settings (restarting it), or turns any instance on or off
/// (`{"settings": {"enabled": false}}`).
///
/// # Errors
/// As [`add`]; 409 when changing more than `enabled` of an instance the
/// config file defines.
pub async fn edit(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
    Path(name): Path<String>,
    body: Result<Json<Submission>, JsonRejection>,
) -> Result<Json<InstanceSettings>, WebError> {
    let Json(sub) = body?;
    let result = edit_instance(&state, &name, sub).await;
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

pub(super) async fn edit_instance(
    state: &AppState,
    name: &str,
    sub: Submission,
) -> Result<InstanceSettings, WebError> {
    // Held from reading the instance to writing the file: what is restored
    // on failure is what ran, not what another edit left meanwhile.
    let _one_at_a_time = state.inner.instance_edits.lock().await;
    edit_locked(state, name, sub).await
}

/// [`edit_instance`] with `instance_edits` held by the caller.
pub(super) async fn edit_locked(
    state: &AppState,
    name: &str,
    sub: Submission,
) -> Result<InstanceSettings, WebError> {
    let sup = state.supervisor();
    let current = sup
        .config_of(name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    if sub.name.as_deref().is_some_and(|n| n != name) {
        return Err(WebError::Invalid {
            field: Some("name".into()),
            message: "an instance cannot be renamed; add a new one and remove this".into(),
            conflict: false,
        });
    }
    let mut settings = split(&sub.settings)?;
    if current.source != Source::Dashboard {
        let only_enabled =
            settings.typed.is_empty() && settings.text.keys().all(|k| k == "enabled");
        let on = settings.text.get("enabled").map(|v| v.parse::<bool>());
        return match (only_enabled, on) {
            (true, Some(Ok(on))) => {
                sup.set_enabled(name, on).await.map_err(start_failure)?;
                let mut overlay = state.overlay()?;
                let entry = overlay.services.entry(name.to_owned()).or_default();
                entry.insert("enabled".into(), toml::Value::Boolean(on));
                state.keep(&overlay)?;
                settings_of(state, name)
            }
            _ => Err(WebError::Conflict(format!(
                "{name} is defined by the config file (or built in): only `enabled` can be \
                 changed here; edit the config file for the rest"
            ))),
        };
    }
    let kind = sub
        .kind
        .unwrap_or_else(|| current.id.kind().name().to_owned());
    let saved = state.overlay()?.services.remove(name).unwrap_or_default();
    secrets::keep_unchanged(&mut settings, &saved);
    let allow = sup.stdio_allow().to_vec();
    let (config, table) = overlay::validate(
        crate::service::registry::read,
        name,
        &kind,
        &settings.text,
        &settings.typed,
        &allow,
    )
    .map_err(invalid)?;
    let _ = sup.remove(name).await;
    if let Err(e) = sup.add(config).await {
        // Back as it was: the edit is refused, the instance keeps running.
        let _ = sup.remove(name).await;
        let _ = sup.add(current).await;
        return Err(start_failure(e));
    }
    let mut overlay = state.overlay()?;
    overlay.services.insert(name.to_owned(), table);
    state.keep(&overlay)?;
    settings_of(state, name)
}

/// `DELETE /api/v1/services/{name}` (admin): stops and removes a dashboard
/// instance.
///
/// # Errors
/// 404 for no such instance; 409 for one the config file defines.
pub async fn remove(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, WebError> {
    let result = remove_instance(&state, &name).await;
    state
        .audit_change(
            &session.user,
            Some(from),
            "remove",
            &name,
            result.as_ref().map(drop),
        )
        .await;
    result.map(|()| Json(json!({"removed": name})))
}

pub(super) async fn remove_instance(state: &AppState, name: &str) -> Result<(), WebError> {
    let _one_at_a_time = state.inner.instance_edits.lock().await;
    let sup = state.supervisor();
    let current = sup
        .config_of(name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    if current.source != Source::Dashboard {
        return Err(WebError::Conflict(format!(
            "{name} is defined by the config file (or built in); turn it off instead"
        )));
    }
    let stopped = sup.remove(name).await;
    // A later instance of the same name starts with no toxics.
    sup.toxics().forget(name);
    let mut overlay = state.overlay()?;
    overlay.services.remove(name);
    overlay.toxics.remove(name);
    state.keep(&overlay)?;
    stopped.map_err(|e| WebError::Busy(e.to_string()))
}

/// `GET /api/v1/services/{name}/settings`
///
/// # Errors
/// 404 for no such instance.
pub async fn settings(
    State(state): State<AppState>,
    _: Viewer,
    Path(name): Path<String>,
) -> Result<Json<InstanceSettings>, WebError> {
    settings_of(&state, &name).map(Json)
}

pub(super) fn settings_of(state: &AppState, name: &str) -> Result<InstanceSettings, WebError> {
    let config = state
        .supervisor()
        .config_of(name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    let saved = state.overlay()?.services.remove(name).unwrap_or_default();
    let mut settings: BTreeMap<String, String> = saved
        .into_iter()
        // A secret is never shown: an edit must type `auth_key` again.
        .filter(|(k, _)| k != "kind" && k != "auth_key")
        .map(|(k, v)| {
            let text = match v {
                _ if secrets::is_secret(&k) => secrets::masked(&v),
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .iter()
                    .filter_map(|i| i.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            (k, text)
        })
        .collect();
    settings.insert("listen".into(), config.listen.to_string());
    settings.insert("enabled".into(), config.enabled.to_string());
    let editable = match config.source {
        Source::Dashboard => overlay::keys_of(crate::service::registry::read, config.id.kind()),
        _ => vec!["enabled".to_owned()],
    };
    Ok(InstanceSettings {
        name: name.to_owned(),
        kind: config.id.kind(),
        source: config.source,
        editable,
        settings,
    })
}
