//! Toxiproxy's own HTTP API on `web.toxiproxy_listen`, so the clients
//! people already use (Go, Ruby, Python, Node, Rust, ...) drive switchboard
//! unchanged: `/proxies`, `/proxies/{proxy}`, `/proxies/{proxy}/toxics`,
//! `/proxies/{proxy}/toxics/{toxic}`, `/populate`, `/reset`, `/version`,
//! with its JSON shapes, status codes and `{"error","status"}` bodies.
//!
//! A Toxiproxy *proxy* is a `tcp-proxy` instance: created here, it is
//! listed on the dashboard, captured and counted like any other, and kept
//! in `services.toml`. Toxiproxy's API has no authentication (its clients
//! send none), so it listens on loopback only unless guarded by TLS and a
//! token (`toxic::listen`) and, as Toxiproxy does, refuses browsers (a `Mozilla/` user
//! agent) so a web page cannot drive it. Changes are audited as user
//! `toxiproxy`. What it does not do: Toxiproxy's `/metrics` and its
//! `PATCH`-less clients' quirks beyond `POST` for updates.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::error::WebError;
use super::instances::{self, Submission};
use super::toxics::{By, ToxicOpError};
use crate::kind::ServiceKind;
use crate::toxic::input::ToxicInput;
use crate::toxic::{ToxicError, ToxicJson};

/// The Toxiproxy version whose API this follows.
pub const VERSION: &str = "2.12.0";
/// Largest request body read.
const MAX_BODY: usize = 256 * 1024;
/// Most proxies one `/populate` may name.
const MAX_POPULATE: usize = 64;

const BY: By<'static> = By {
    user: "toxiproxy",
    via: "toxiproxy",
    // No session and no client address kept: a loopback API.
    peer: None,
};

/// An error as Toxiproxy sends it.
#[derive(Debug)]
pub struct ApiError {
    pub message: String,
    pub status: StatusCode,
}

impl ApiError {
    fn new(message: impl Into<String>, status: StatusCode) -> Self {
        ApiError {
            message: message.into(),
            status,
        }
    }
    fn bad_body(e: impl std::fmt::Display) -> Self {
        Self::new(format!("bad request body: {e}"), StatusCode::BAD_REQUEST)
    }
    fn missing(field: &str) -> Self {
        Self::new(
            format!("missing required field: {field}"),
            StatusCode::BAD_REQUEST,
        )
    }
    fn proxy_not_found() -> Self {
        Self::new("proxy not found", StatusCode::NOT_FOUND)
    }
    fn body(&self) -> Value {
        json!({"error": self.message, "status": self.status.as_u16()})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<ToxicOpError> for ApiError {
    fn from(e: ToxicOpError) -> Self {
        let status = match &e {
            ToxicOpError::ProxyNotFound | ToxicOpError::Toxic(ToxicError::NotAProxy) => {
                return ApiError::proxy_not_found();
            }
            ToxicOpError::Toxic(ToxicError::NotFound) => StatusCode::NOT_FOUND,
            ToxicOpError::Toxic(ToxicError::Exists) => StatusCode::CONFLICT,
            ToxicOpError::Toxic(_) => StatusCode::BAD_REQUEST,
            ToxicOpError::Keep(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(e.to_string(), status)
    }
}

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        // Toxiproxy answers every refused input with a 400.
        let status = match e.status() {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            s => s,
        };
        let message = match (&e, status) {
            (WebError::NotFound(_), _) => return ApiError::proxy_not_found(),
            (WebError::Invalid { field, .. }, StatusCode::CONFLICT)
                if field.as_deref() == Some("name") =>
            {
                "proxy already exists".to_owned()
            }
            _ => e.to_string(),
        };
        ApiError::new(message, status)
    }
}

/// A proxy as Toxiproxy shows it.
#[derive(Debug, Serialize)]
pub struct ProxyJson {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    pub toxics: Vec<ToxicJson>,
}

/// A proxy as a client sends it.
#[derive(Debug, Default, Deserialize)]
struct ProxyInput {
    #[serde(default)]
    name: String,
    #[serde(default)]
    listen: String,
    #[serde(default)]
    upstream: String,
    enabled: Option<bool>,
}

/// Toxiproxy's routes over the dashboard's state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/reset", post(reset))
        .route("/populate", post(populate))
        .route("/proxies", get(index).post(create))
        .route(
            "/proxies/{proxy}",
            get(show).post(update).patch(update).delete(remove),
        )
        .route(
            "/proxies/{proxy}/toxics",
            get(toxic_index).post(toxic_create),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxic_show)
                .post(toxic_update)
                .patch(toxic_update)
                .delete(toxic_delete),
        )
        .layer(middleware::from_fn(no_browsers))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Serves Toxiproxy's API on `listener` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: tokio_util::sync::CancellationToken,
) {
    let app = router(state);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::warn!("the Toxiproxy API stopped: {e}");
    }
}

/// Toxiproxy refuses browsers: no web page may drive an unauthenticated API.
async fn no_browsers(req: Request, next: Next) -> Response {
    let browser = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    if browser {
        return (StatusCode::FORBIDDEN, "User agent not allowed\n").into_response();
    }
    next.run(req).await
}

fn parse<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_body("EOF"));
    }
    serde_json::from_slice(body).map_err(ApiError::bad_body)
}

async fn version() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        format!("{{\"version\": \"{VERSION}\"}}\n"),
    )
        .into_response()
}

/// The tcp-proxy instances, by name.
fn proxy_names(state: &AppState) -> Vec<String> {
    state
        .supervisor()
        .statuses()
        .into_iter()
        .filter(|s| s.kind == ServiceKind::TcpProxy)
        .map(|s| s.name.name().to_owned())
        .collect()
}

fn proxy_json(state: &AppState, name: &str) -> Result<ProxyJson, ApiError> {
    let sup = state.supervisor();
    let config = sup.config_of(name).ok_or_else(ApiError::proxy_not_found)?;
    let Some(settings) = config.settings.get::<crate::service::tcp_proxy::Settings>() else {
        return Err(ApiError::proxy_not_found());
    };
    let listen = sup
        .local_addr(name)
        .map_or_else(|| config.listen.to_string(), |a| a.to_string());
    Ok(ProxyJson {
        name: name.to_owned(),
        listen,
        upstream: settings.upstream.to_string(),
        enabled: config.enabled,
        toxics: state.toxics_of(name)?,
    })
}

async fn index(State(state): State<AppState>) -> Result<axum::Json<Value>, ApiError> {
    let mut all = serde_json::Map::new();
    for name in proxy_names(&state) {
        let p = proxy_json(&state, &name)?;
        all.insert(name, serde_json::to_value(p).unwrap_or(Value::Null));
    }
    Ok(axum::Json(Value::Object(all)))
}

/// `localhost` is how Toxiproxy's users write loopback; our listen
/// addresses are IP addresses.
fn listen_of(listen: &str) -> String {
    match listen {
        "" => "127.0.0.1:0".to_owned(),
        l => match l.strip_prefix("localhost:") {
            Some(port) => format!("127.0.0.1:{port}"),
            None => l.to_owned(),
        },
    }
}

async fn add_proxy(state: &AppState, input: &ProxyInput) -> Result<ProxyJson, ApiError> {
    if input.name.is_empty() {
        return Err(ApiError::missing("name"));
    }
    if input.upstream.is_empty() {
        return Err(ApiError::missing("upstream"));
    }
    let settings: BTreeMap<String, Value> = [
        ("listen".to_owned(), json!(listen_of(&input.listen))),
        ("upstream".to_owned(), json!(input.upstream)),
        ("enabled".to_owned(), json!(input.enabled.unwrap_or(true))),
    ]
    .into();
    let result = instances::add_instance(state, &input.name, "tcp-proxy", &settings).await;
    state
        .audit_change(
            BY.user,
            BY.peer,
            "add",
            &input.name,
            result.as_ref().map(drop),
        )
        .await;
    result?;
    proxy_json(state, &input.name)
}

async fn create(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let input: ProxyInput = parse(&body)?;
    let proxy = add_proxy(&state, &input).await?;
    Ok((StatusCode::CREATED, axum::Json(proxy)).into_response())
}

async fn show(
    State(state): State<AppState>,
    Path(proxy): Path<String>,
) -> Result<axum::Json<ProxyJson>, ApiError> {
    proxy_json(&state, &proxy).map(axum::Json)
}

/// Changes a proxy's `listen`, `upstream` or `enabled`, keeping its toxics
/// and its other settings.
async fn edit_proxy(state: &AppState, name: &str, input: &ProxyInput) -> Result<(), ApiError> {
    let current = proxy_json(state, name)?;
    let mut settings: BTreeMap<String, Value> = instances::settings_of(state, name)?
        .settings
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if !input.listen.is_empty() && input.listen != current.listen {
        settings.insert("listen".into(), json!(listen_of(&input.listen)));
    }
    if !input.upstream.is_empty() {
        settings.insert("upstream".into(), json!(input.upstream));
    }
    if let Some(on) = input.enabled {
        settings.insert("enabled".into(), json!(on));
    }
    let sub = Submission {
        name: None,
        kind: None,
        settings,
    };
    let result = instances::edit_instance(state, name, sub).await;
    state
        .audit_change(BY.user, BY.peer, "edit", name, result.as_ref().map(drop))
        .await;
    result.map(drop).map_err(ApiError::from)
}

async fn update(
    State(state): State<AppState>,
    Path(proxy): Path<String>,
    body: Bytes,
) -> Result<axum::Json<ProxyJson>, ApiError> {
    proxy_json(&state, &proxy)?;
    let input: ProxyInput = parse(&body)?;
    edit_proxy(&state, &proxy, &input).await?;
    proxy_json(&state, &proxy).map(axum::Json)
}

async fn remove(
    State(state): State<AppState>,
    Path(proxy): Path<String>,
) -> Result<StatusCode, ApiError> {
    proxy_json(&state, &proxy)?;
    let result = instances::remove_instance(&state, &proxy).await;
    state
        .audit_change(
            BY.user,
            BY.peer,
            "remove",
            &proxy,
            result.as_ref().map(drop),
        )
        .await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /populate`: creates the proxies named, replacing any of the same
/// name that differs; returns them all.
async fn populate(State(state): State<AppState>, body: Bytes) -> Response {
    let inputs: Vec<ProxyInput> = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return ApiError::bad_body(e).into_response(),
    };
    if inputs.len() > MAX_POPULATE {
        return ApiError::bad_body(format!("at most {MAX_POPULATE} proxies at once"))
            .into_response();
    }
    if let Some(field) = inputs.iter().find_map(|p| {
        (p.name.is_empty())
            .then_some("name")
            .or_else(|| p.upstream.is_empty().then_some("upstream"))
    }) {
        let e = ApiError::missing(field);
        let mut b = e.body();
        b["proxies"] = json!([]);
        return (e.status, axum::Json(b)).into_response();
    }
    let mut done = Vec::new();
    for input in &inputs {
        let result = match proxy_json(&state, &input.name) {
            Ok(existing) => {
                let same = (input.listen.is_empty() || listen_of(&input.listen) == existing.listen)
                    && input.upstream == existing.upstream
                    && input.enabled.unwrap_or(true) == existing.enabled;
                if same {
                    Ok(existing)
                } else {
                    let r = instances::remove_instance(&state, &input.name).await;
                    match r {
                        Ok(()) => add_proxy(&state, input).await,
                        Err(e) => Err(ApiError::from(e)),
                    }
                }
            }
            Err(_) => add_proxy(&state, input).await,
        };
        match result {
            Ok(p) => done.push(p),
            Err(e) => {
                let mut b = e.body();
                b["proxies"] = json!(done);
                return (e.status, axum::Json(b)).into_response();
            }
        }
    }
    (StatusCode::CREATED, axum::Json(json!({"proxies": done}))).into_response()
}

/// `POST /reset`: every proxy enabled, every toxic removed.
async fn reset(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    for name in proxy_names(&state) {
        let proxy = proxy_json(&state, &name)?;
        if !proxy.enabled {
            let on = ProxyInput {
                enabled: Some(true),
                ..ProxyInput::default()
            };
            edit_proxy(&state, &name, &on).await?;
        }
        if !proxy.toxics.is_empty() {
            state.toxic_remove(&name, None, BY).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The tcp-proxy `proxy`, or Toxiproxy's 404.
fn tcp_proxy(state: &AppState, proxy: &str) -> Result<(), ApiError> {
    match state.proxy_kind(proxy) {
        Ok(false) => Ok(()),
        _ => Err(ApiError::proxy_not_found()),
    }
}

async fn toxic_index(
    State(state): State<AppState>,
    Path(proxy): Path<String>,
) -> Result<axum::Json<Vec<ToxicJson>>, ApiError> {
    tcp_proxy(&state, &proxy)?;
    Ok(axum::Json(state.toxics_of(&proxy)?))
}

async fn toxic_create(
    State(state): State<AppState>,
    Path(proxy): Path<String>,
    body: Bytes,
) -> Result<axum::Json<ToxicJson>, ApiError> {
    tcp_proxy(&state, &proxy)?;
    let input: ToxicInput = parse(&body)?;
    Ok(axum::Json(state.toxic_create(&proxy, input, BY).await?))
}

async fn toxic_show(
    State(state): State<AppState>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<axum::Json<ToxicJson>, ApiError> {
    tcp_proxy(&state, &proxy)?;
    state
        .toxics_of(&proxy)?
        .into_iter()
        .find(|t| t.name == toxic)
        .map(axum::Json)
        .ok_or_else(|| ToxicOpError::Toxic(ToxicError::NotFound).into())
}

async fn toxic_update(
    State(state): State<AppState>,
    Path((proxy, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Result<axum::Json<ToxicJson>, ApiError> {
    tcp_proxy(&state, &proxy)?;
    let input: ToxicInput = parse(&body)?;
    Ok(axum::Json(
        state.toxic_update(&proxy, &toxic, input, BY).await?,
    ))
}

async fn toxic_delete(
    State(state): State<AppState>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tcp_proxy(&state, &proxy)?;
    state.toxic_remove(&proxy, Some(&toxic), BY).await?;
    Ok(StatusCode::NO_CONTENT)
}
