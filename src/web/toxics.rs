//! Toxics over our API: `GET/POST /api/v1/services/{name}/toxics`,
//! `GET/PUT/DELETE /api/v1/services/{name}/toxics/{toxic}` and the toxic
//! types' descriptions at `GET /api/v1/toxics/types` (what the form is
//! generated from). Viewers read; operators change (with CSRF for a
//! session, or a bearer token).
//!
//! The operations below the handlers are shared with Toxiproxy's API
//! ([`super::toxiproxy`]): each change goes to the live registry first and
//! is then written to `services.toml` under the instance-edit lock (so the
//! file never holds a toxic that was refused), and each is audited with
//! who made it and through which API.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::error::WebError;
use super::session::{ClientIp, Operator, Viewer};
use crate::kind::ServiceKind;
use crate::toxic::input::{ToxicInput, to_toml};
use crate::toxic::model::{TYPES, TypeInfo};
use crate::toxic::{Toxic, ToxicError, ToxicJson};

/// Why a toxic operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ToxicOpError {
    #[error("proxy not found")]
    ProxyNotFound,
    #[error(transparent)]
    Toxic(#[from] ToxicError),
    #[error("{0}")]
    Keep(String),
}

impl From<ToxicOpError> for WebError {
    fn from(e: ToxicOpError) -> WebError {
        match e {
            ToxicOpError::ProxyNotFound => WebError::NotFound("proxy".into()),
            ToxicOpError::Toxic(ToxicError::NotFound) => WebError::NotFound("toxic".into()),
            ToxicOpError::Toxic(ToxicError::Exists) => WebError::Conflict(e.to_string()),
            ToxicOpError::Toxic(ToxicError::NotAProxy) => WebError::Conflict(e.to_string()),
            ToxicOpError::Toxic(t) => {
                let field = match &t {
                    ToxicError::InvalidType | ToxicError::WrongProto(_) => Some("type".into()),
                    ToxicError::InvalidStream => Some("stream".into()),
                    ToxicError::BadName => Some("name".into()),
                    ToxicError::BadToxicity => Some("toxicity".into()),
                    ToxicError::UnknownAttribute(a) | ToxicError::BadAttribute { name: a, .. } => {
                        Some(a.clone())
                    }
                    _ => None,
                };
                WebError::Invalid {
                    field,
                    message: t.to_string(),
                    conflict: false,
                }
            }
            ToxicOpError::Keep(m) => WebError::Internal(m),
        }
    }
}

/// Who asks, for the audit line.
pub(super) struct By<'a> {
    pub user: &'a str,
    /// `api` or `toxiproxy`.
    pub via: &'static str,
    /// The client's address (the dashboard's API).
    pub peer: Option<std::net::IpAddr>,
}

impl AppState {
    /// Whether `name` is a udp-proxy (true) or tcp-proxy (false).
    pub(super) fn proxy_kind(&self, name: &str) -> Result<bool, ToxicOpError> {
        match self.supervisor().config_of(name).map(|c| c.id.kind()) {
            None => Err(ToxicOpError::ProxyNotFound),
            Some(ServiceKind::TcpProxy) => Ok(false),
            Some(ServiceKind::UdpProxy) => Ok(true),
            Some(_) => Err(ToxicError::NotAProxy.into()),
        }
    }

    pub(super) fn toxics_of(&self, proxy: &str) -> Result<Vec<ToxicJson>, ToxicOpError> {
        self.proxy_kind(proxy)?;
        Ok(self
            .supervisor()
            .toxics()
            .list(proxy)
            .iter()
            .map(Toxic::to_json)
            .collect())
    }

    /// Adds a toxic to `proxy`, keeps it and audits it.
    pub(super) async fn toxic_create(
        &self,
        proxy: &str,
        input: ToxicInput,
        by: By<'_>,
    ) -> Result<ToxicJson, ToxicOpError> {
        let _one_at_a_time = self.inner.instance_edits.lock().await;
        let result = async {
            let toxic = input.create(self.proxy_kind(proxy)?)?;
            self.supervisor().toxics().add(proxy, toxic.clone())?;
            self.keep_toxics(proxy)?;
            Ok(toxic)
        }
        .await;
        self.audit_toxic(&by, "add", proxy, result.as_ref().map(|t| t.name.as_str()))
            .await;
        result.map(|t| t.to_json())
    }

    /// Changes `proxy`'s toxic `name` by what `input` gives.
    pub(super) async fn toxic_update(
        &self,
        proxy: &str,
        name: &str,
        input: ToxicInput,
        by: By<'_>,
    ) -> Result<ToxicJson, ToxicOpError> {
        let _one_at_a_time = self.inner.instance_edits.lock().await;
        let result = async {
            let udp = self.proxy_kind(proxy)?;
            let toxics = self.supervisor().toxics();
            let current = toxics.get(proxy, name).ok_or(ToxicError::NotFound)?;
            let toxic = input.update(&current, udp)?;
            toxics.update(proxy, toxic.clone())?;
            self.keep_toxics(proxy)?;
            Ok(toxic)
        }
        .await;
        self.audit_toxic(&by, "edit", proxy, result.as_ref().map(|_| name))
            .await;
        result.map(|t| t.to_json())
    }

    /// Removes `proxy`'s toxic `name`, or all of them with `None`.
    pub(super) async fn toxic_remove(
        &self,
        proxy: &str,
        name: Option<&str>,
        by: By<'_>,
    ) -> Result<(), ToxicOpError> {
        let _one_at_a_time = self.inner.instance_edits.lock().await;
        let result = async {
            self.proxy_kind(proxy)?;
            let toxics = self.supervisor().toxics();
            match name {
                Some(name) => toxics.remove(proxy, name)?,
                None => toxics.replace(proxy, Vec::new())?,
            }
            self.keep_toxics(proxy)
        }
        .await;
        let action = if name.is_some() { "remove" } else { "reset" };
        self.audit_toxic(
            &by,
            action,
            proxy,
            result.as_ref().map(|()| name.unwrap_or("*")),
        )
        .await;
        result
    }

    /// Writes `proxy`'s toxics to `services.toml` (caller holds the lock).
    fn keep_toxics(&self, proxy: &str) -> Result<(), ToxicOpError> {
        let mut overlay = self
            .overlay()
            .map_err(|e| ToxicOpError::Keep(e.to_string()))?;
        let list = self.supervisor().toxics().list(proxy);
        if list.is_empty() {
            overlay.toxics.remove(proxy);
        } else {
            overlay.toxics.insert(proxy.to_owned(), to_toml(&list));
        }
        self.keep(&overlay)
            .map_err(|e| ToxicOpError::Keep(e.to_string()))
    }

    async fn audit_toxic(
        &self,
        by: &By<'_>,
        action: &str,
        proxy: &str,
        ok: Result<&str, &ToxicOpError>,
    ) {
        self.audit()
            .record(crate::audit::AuditEvent::Toxic {
                action: action.to_owned(),
                service: proxy.to_owned(),
                user: by.user.to_owned(),
                peer: by.peer.map(|ip| ip.to_string()),
                via: by.via.to_owned(),
                ok: ok.is_ok(),
                toxic: ok.as_ref().ok().map(|t| (*t).to_owned()),
                error: ok.err().map(ToString::to_string),
            })
            .await;
    }
}

/// `GET /api/v1/toxics/types`: every toxic type and its attributes.
pub async fn types(_: Viewer) -> Json<&'static [TypeInfo]> {
    Json(TYPES)
}

/// `GET /api/v1/services/{name}/toxics`
///
/// # Errors
/// 404 for no such proxy, 409 for an instance that is not a proxy.
pub async fn index(
    State(state): State<AppState>,
    _: Viewer,
    Path(name): Path<String>,
) -> Result<Json<Vec<ToxicJson>>, WebError> {
    Ok(Json(state.toxics_of(&name)?))
}

/// `POST /api/v1/services/{name}/toxics` (operator)
///
/// # Errors
/// 422 naming the field at fault, 409 for a name taken, 404 for no proxy.
pub async fn create(
    State(state): State<AppState>,
    Operator(session): Operator,
    ClientIp(from): ClientIp,
    Path(name): Path<String>,
    body: Result<Json<ToxicInput>, JsonRejection>,
) -> Result<(StatusCode, Json<ToxicJson>), WebError> {
    let Json(input) = body?;
    let by = By {
        user: &session.user,
        via: "api",
        peer: Some(from),
    };
    let toxic = state.toxic_create(&name, input, by).await?;
    Ok((StatusCode::CREATED, Json(toxic)))
}

/// `GET /api/v1/services/{name}/toxics/{toxic}`
///
/// # Errors
/// 404 for no such proxy or toxic.
pub async fn show(
    State(state): State<AppState>,
    _: Viewer,
    Path((name, toxic)): Path<(String, String)>,
) -> Result<Json<ToxicJson>, WebError> {
    state
        .toxics_of(&name)?
        .into_iter()
        .find(|t| t.name == toxic)
        .map(Json)
        .ok_or_else(|| WebError::NotFound("toxic".into()))
}

/// `PUT /api/v1/services/{name}/toxics/{toxic}` (operator): changes what
/// the body gives (`{"enabled": false}` switches it off).
///
/// # Errors
/// As [`create`].
pub async fn update(
    State(state): State<AppState>,
    Operator(session): Operator,
    ClientIp(from): ClientIp,
    Path((name, toxic)): Path<(String, String)>,
    body: Result<Json<ToxicInput>, JsonRejection>,
) -> Result<Json<ToxicJson>, WebError> {
    let Json(input) = body?;
    let by = By {
        user: &session.user,
        via: "api",
        peer: Some(from),
    };
    Ok(Json(state.toxic_update(&name, &toxic, input, by).await?))
}

/// `DELETE /api/v1/services/{name}/toxics/{toxic}` (operator)
///
/// # Errors
/// 404 for no such proxy or toxic.
pub async fn delete(
    State(state): State<AppState>,
    Operator(session): Operator,
    ClientIp(from): ClientIp,
    Path((name, toxic)): Path<(String, String)>,
) -> Result<StatusCode, WebError> {
    let by = By {
        user: &session.user,
        via: "api",
        peer: Some(from),
    };
    state.toxic_remove(&name, Some(&toxic), by).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Each toxic's counters in Prometheus text, labelled by proxy, toxic,
/// type and stream (`escape` makes a label value safe).
pub(super) fn render_metrics(
    out: &mut String,
    rows: &[crate::toxic::ToxicMetrics],
    escape: fn(&str) -> String,
) {
    use std::fmt::Write;
    type Get = fn(&crate::toxic::ToxicMetrics) -> u64;
    let families: [(&str, &str, Get); 3] = [
        (
            "switchboard_toxic_connections_total",
            "Connections (TCP) or datagrams (UDP) a toxic acted on.",
            |r| r.connections,
        ),
        (
            "switchboard_toxic_bytes_delayed_total",
            "Bytes a toxic held back (latency, bandwidth, reorder).",
            |r| r.bytes_delayed,
        ),
        (
            "switchboard_toxic_bytes_dropped_total",
            "Bytes a toxic dropped (timeout, limit_data, loss, bandwidth backlog).",
            |r| r.bytes_dropped,
        ),
    ];
    for (name, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for r in rows {
            let _ = writeln!(
                out,
                "{name}{{service=\"{}\",toxic=\"{}\",type=\"{}\",stream=\"{}\"}} {}",
                escape(&r.proxy),
                escape(&r.toxic),
                r.type_name,
                r.stream.as_str(),
                get(r)
            );
        }
    }
}
