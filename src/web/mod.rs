//! The dashboard (the B/S side): pages, the JSON API under `/api/v1`, the
//! live stream, `/healthz`, `/readyz` and `/metrics`, and the HTTP server
//! they run on.
//!
//! - [`router`] is every route in one place, with the middleware stack
//!   (host/origin guard, security headers, body limit, timeout), so tests can
//!   drive the app without a server.
//! - [`serve`] is the HTTP/1 server: connections admitted by the slot table
//!   in [`conns`] (a cap per peer address, a global cap that sheds idle and
//!   silent connections before refusing), a short deadline for a new
//!   connection's first byte, a header-read timeout (hyper's needs a timer,
//!   given here) and a graceful end on shutdown.
//! - The web layer sees services only through the [`Supervisor`] (state,
//!   start, stop) and [`crate::stats`] snapshots; it never touches a
//!   service's internals.
//!
//! - HTTPS when `web.tls` is on: the handshake runs on the connection's
//!   task after its first byte, within [`crate::tls::HANDSHAKE_TIMEOUT`];
//!   a plaintext request gets a one-line 400 and is closed. The certificate
//!   comes from the supervisor's [`crate::tls::Certs`] at each handshake,
//!   so a reloaded one applies to new connections only.
//!
//! Not here: HTTP/2.

mod api;
mod assets;
mod audit;
mod capture;
mod capture_decode;
mod chat;
pub mod client_addr;
pub mod conns;
pub mod error;
mod history;
mod instances;
mod live;
mod live_leave;
mod metrics;
pub mod next;
mod pages;
mod relay;
mod reload;
mod replay_target;
mod routes;
mod saved;
mod server;
pub mod session;
mod stats_table;
mod toxics;
pub mod toxiproxy;
mod tus;
mod tutorials;
mod ws;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::audit::AuditLog;
use crate::config::{Config, Secret, WebConfig};
use crate::ratelimit::FailureLimit;
use crate::service::{exec, files};
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::supervisor::Supervisor;
use crate::users::Users;
use conns::{ConnCounts, Conns};
use session::Sessions;

pub use error::WebError;
pub use saved::forget_account as forget_saved_messages;
pub use server::serve;

/// The live stream's path: exempt from the request timeout, and checked
/// for its `Origin` like a state-changing request.
pub const LIVE_PATH: &str = "/api/v1/live";
/// Whether `path` is a service's WebSocket relay,
/// `/api/v1/services/{name}/ws`: checked for its `Origin` before the upgrade.
pub fn is_websocket_path(path: &str) -> bool {
    path.strip_prefix("/api/v1/services/")
        .and_then(|rest| rest.strip_suffix("/ws"))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// Largest request body the JSON routes read.
pub const MAX_JSON_BODY: usize = 64 * 1024;
/// Live streams open at once, across all sessions.
const MAX_LIVE_STREAMS: usize = 64;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    supervisor: Supervisor,
    web: WebConfig,
    /// What the relay needs to act as a client: the HMAC key (never sent
    /// to a browser), the upload cap, the exec settings to describe.
    key: Option<Secret>,
    /// Where `services.toml` (instances managed here) is kept.
    data_dir: std::path::PathBuf,
    /// One instance change at a time: each reads, changes and writes
    /// `services.toml` and the supervisor together (a reload too: the
    /// supervisor's lock).
    instance_edits: Arc<tokio::sync::Mutex<()>>,
    /// The built-in files instance's upload cap.
    files_max: u64,
    /// The built-in files instance's own folder, when it has one (else it
    /// serves the supervisor's shared store).
    files_folder: Option<std::path::PathBuf>,
    /// What the dashboard itself changes that live pages show (the stats
    /// events carry only what services do).
    /// The built-in exec instance's settings (the defaults when it has none).
    exec_settings: crate::service::exec::Settings,
    sessions: Arc<Sessions>,
    sign_in_failures: FailureLimit,
    live_slots: Arc<Semaphore>,
    /// Live streams by the id each told its page ([`live_leave`]).
    leaving: Arc<live_leave::Leaving>,
    /// Capture exports and replays being built or run (see [`capture`]).
    capture_exports: Arc<Semaphore>,
    capture_replays: Arc<Semaphore>,
    /// Capture decodings running (see [`capture_decode`]).
    capture_decodes: Arc<Semaphore>,
    /// The WebSocket relay's counts.
    ws: ws::WsLimits,
    /// The HTTP connection slots (see [`serve`]).
    conns: Arc<Conns>,
    /// Resumable uploads (tus), see [`tus`].
    uploads: tus::Uploads,
    /// Its token ends live streams and connections on shutdown; its tracker
    /// is what shutdown waits for.
    shutdown: Shutdown,
    started: Instant,
    /// Request durations by route, for `/metrics`.
    http: metrics::HttpMetrics,
    /// Reads and applies the configuration again (set by the server).
    reloader: std::sync::OnceLock<crate::reload::Reloader>,
}

impl AppState {
    pub fn new(supervisor: Supervisor, config: &Config, shutdown: Shutdown) -> Self {
        let web = config.web.clone();
        let instance_edits = supervisor.config_writes();
        let max_streams_per_session = web.max_streams_per_session;
        let audit = supervisor.audit().clone();
        let uploads = tus::Uploads::new(config, supervisor.store(), audit, &shutdown);
        let state = AppState {
            inner: Arc::new(Inner {
                sessions: Arc::new(Sessions::new(web.session_idle, web.max_streams_per_session)),
                conns: Conns::new(web.max_connections, web.max_connections_per_peer),
                sign_in_failures: FailureLimit::per_minute(web.max_failures_per_minute),
                supervisor,
                web,
                key: config.key.clone(),
                data_dir: config.data_dir.clone(),
                instance_edits,
                files_max: match config
                    .service("files")
                    .and_then(|s| s.settings.get::<files::Settings>())
                {
                    Some(f) => f.max_file_bytes,
                    _ => crate::service::files::Settings::default().max_file_bytes,
                },
                files_folder: match config
                    .service("files")
                    .and_then(|s| s.settings.get::<files::Settings>())
                {
                    Some(f) => f.folder.clone(),
                    _ => None,
                },
                exec_settings: match config
                    .service("exec")
                    .and_then(|s| s.settings.get::<exec::Settings>())
                {
                    Some(e) => e.clone(),
                    _ => crate::service::exec::Settings::default(),
                },
                live_slots: Arc::new(Semaphore::new(MAX_LIVE_STREAMS)),
                leaving: Arc::default(),
                capture_exports: Arc::new(Semaphore::new(capture::MAX_EXPORTS)),
                capture_decodes: Arc::new(Semaphore::new(capture_decode::MAX_DECODES)),
                capture_replays: Arc::new(Semaphore::new(capture::MAX_REPLAYS)),
                ws: ws::WsLimits::new(max_streams_per_session),
                uploads,
                shutdown,
                started: Instant::now(),
                reloader: std::sync::OnceLock::new(),
                http: metrics::HttpMetrics::default(),
            }),
        };
        // Signed-in people stay signed in across a restart or an upgrade.
        let inner = &state.inner;
        inner.sessions.keep_in(&inner.data_dir, &inner.shutdown);
        state
    }

    /// The HTTP connections' counts: open, silent, shed and refused.
    pub fn connection_counts(&self) -> ConnCounts {
        self.inner.conns.counts()
    }

    /// Lets the Reload button and `POST /api/v1/reload` reload.
    pub fn set_reloader(&self, reloader: crate::reload::Reloader) {
        let _ = self.inner.reloader.set(reloader);
    }

    fn reloader(&self) -> Option<&crate::reload::Reloader> {
        self.inner.reloader.get()
    }

    fn supervisor(&self) -> &Supervisor {
        &self.inner.supervisor
    }

    fn stats(&self) -> &Stats {
        self.inner.supervisor.stats()
    }

    fn users(&self) -> &Users {
        self.inner.supervisor.users()
    }

    fn audit(&self) -> &AuditLog {
        self.inner.supervisor.audit()
    }

    fn web(&self) -> &WebConfig {
        &self.inner.web
    }

    fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    fn sign_in_failures(&self) -> &FailureLimit {
        &self.inner.sign_in_failures
    }
}

/// The Content-Security-Policy of every response: our own scripts and
/// styles only (no inline script, no `eval`), no framing, no plugins.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Every route, and the middleware around them.
pub fn router(state: AppState) -> Router {
    let timed = Router::new()
        .merge(routes::pages())
        .merge(routes::infrastructure())
        .merge(routes::session())
        .merge(routes::services())
        .merge(routes::toxics())
        .merge(routes::captures())
        .merge(routes::activity())
        .merge(routes::relay())
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(declared_size_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.web().request_timeout,
        ));
    // Outside the request timeout: see [`routes::streams`].
    let streams = routes::streams();

    let header = |name, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    timed
        .merge(streams)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::guard,
        ))
        // Outside the guard, so refused requests are timed and logged too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .layer(header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::REFERRER_POLICY, "same-origin"))
        .layer(header(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(header(
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ))
        .layer(header(header::CACHE_CONTROL, "no-store"))
        .with_state(state)
}

/// Refuses at once a body declared larger than a JSON route reads, rather
/// than waiting for bytes it would refuse anyway (a client that declares
/// 100 GB and sends nothing would otherwise hold the request until its
/// timeout). Bodies without a declared size stop at the same limit through
/// [`DefaultBodyLimit`].
async fn declared_size_limit(req: Request<axum::body::Body>, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_JSON_BODY as u64) {
        return WebError::TooLarge(format!("request body larger than {MAX_JSON_BODY} bytes"))
            .into_response();
    }
    next.run(req).await
}

/// `GET /healthz`: 200 while the process serves requests.
async fn healthz() -> &'static str {
    "ok\n"
}
