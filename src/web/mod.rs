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
mod chat;
pub mod client_addr;
pub mod conns;
pub mod error;
mod instances;
mod live;
mod metrics;
mod pages;
mod relay;
mod reload;
pub mod session;
mod toxics;
pub mod toxiproxy;
mod tus;
mod tutorials;
mod ws;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::audit::AuditLog;
use crate::config::{Config, Secret, WebConfig};
use crate::ratelimit::FailureLimit;
use crate::service::KindConfig;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::supervisor::Supervisor;
use crate::users::Users;
use conns::{ConnCounts, Conns, Refusal, RequestGuard, Slot};
use session::Sessions;

pub use error::WebError;

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
    /// Capture exports and replays being built or run (see [`capture`]).
    capture_exports: Arc<Semaphore>,
    capture_replays: Arc<Semaphore>,
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
                files_max: match config.service("files").map(|s| &s.settings) {
                    Some(KindConfig::Files(f)) => f.max_file_bytes,
                    _ => crate::service::files::Settings::default().max_file_bytes,
                },
                files_folder: match config.service("files").map(|s| &s.settings) {
                    Some(KindConfig::Files(f)) => f.folder.clone(),
                    _ => None,
                },
                exec_settings: match config.service("exec").map(|s| &s.settings) {
                    Some(KindConfig::Exec(e)) => e.clone(),
                    _ => crate::service::exec::Settings::default(),
                },
                live_slots: Arc::new(Semaphore::new(MAX_LIVE_STREAMS)),
                capture_exports: Arc::new(Semaphore::new(capture::MAX_EXPORTS)),
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
        .route("/", get(pages::overview))
        .route("/connections", get(pages::connections))
        .route("/inspect/{id}", get(pages::inspect))
        .route("/traffic", get(pages::traffic))
        .route("/send", get(pages::send))
        .route("/files", get(pages::files))
        .route("/console", get(pages::console))
        .route("/login", get(pages::login))
        .route("/healthz", get(healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(metrics::render))
        .route("/static/{*path}", get(assets::serve))
        // Browsers and tools that ignore the page's `<link rel="icon">`.
        .route(
            "/favicon.ico",
            get(|headers| assets::serve(axum::extract::Path("favicon.svg".into()), headers)),
        )
        .route(
            "/api/v1/session",
            post(session::sign_in)
                .get(session::current)
                .delete(session::sign_out),
        )
        .route("/services", get(pages::services))
        .route("/audit", get(pages::audit))
        .route("/api/v1/audit", get(audit::page))
        .route("/api/v1/kinds", get(instances::kinds))
        .route("/api/v1/services", get(api::services).post(instances::add))
        .route(
            "/api/v1/services/{name}",
            get(api::service)
                .put(instances::edit)
                .delete(instances::remove),
        )
        .route("/api/v1/services/{name}/settings", get(instances::settings))
        .route("/api/v1/toxics/types", get(toxics::types))
        .route(
            "/api/v1/services/{name}/toxics",
            get(toxics::index).post(toxics::create),
        )
        .route(
            "/api/v1/services/{name}/toxics/{toxic}",
            get(toxics::show).put(toxics::update).delete(toxics::delete),
        )
        .route("/api/v1/services/{name}/capture", put(capture::switch))
        .route(
            "/api/v1/services/{name}/capture.pcapng",
            get(capture::service_pcapng),
        )
        .route("/api/v1/captures", get(capture::list))
        .route("/api/v1/connections/{id}/capture", get(capture::segments))
        .route("/api/v1/connections/{id}/replay", post(capture::replay))
        .route(
            "/api/v1/connections/{id}/capture.pcapng",
            get(capture::connection_pcapng),
        )
        .route(
            "/api/v1/services/{name}/{action}",
            post(api::service_action),
        )
        .route("/api/v1/connections", get(api::connections))
        .route("/api/v1/connections/{id}", delete(api::close_connection))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/traffic", get(api::traffic))
        .route("/api/v1/services/{name}/send", post(relay::send))
        .route("/chat", get(chat::page))
        .route("/tutorials", get(tutorials::page))
        .route("/api/v1/services/{name}/chat/{peer}", post(chat::reply))
        .route("/api/v1/sticky", post(relay::sticky))
        .route("/api/v1/sticky/exec", post(relay::sticky_exec))
        .route("/api/v1/files", get(relay::list_files))
        .route("/tokens", get(pages::tokens))
        .route(
            "/api/v1/tokens",
            get(session::list_tokens).post(session::create_token),
        )
        .route("/api/v1/tokens/{name}", delete(session::revoke_token))
        .route("/api/v1/reload", post(reload::reload))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(declared_size_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.web().request_timeout,
        ));
    // These last as long as their stream: the live page, an upload or a
    // download of any size, a command's output. No overall timeout; the
    // services' own idle timeouts end a stalled transfer.
    let streams = Router::new()
        .route(LIVE_PATH, get(live::stream))
        .route(
            "/api/v1/files/{name}",
            get(relay::get_file)
                .put(relay::put_file)
                .delete(relay::delete_file),
        )
        .route("/api/v1/services/{name}/ws", get(ws::relay))
        // Long-polled (up to chat::LONG_POLL): outside the request timeout.
        .route("/api/v1/services/{name}/chat", get(chat::threads))
        .merge(tus::routes())
        .route(
            "/api/v1/exec",
            post(relay::exec).layer(axum::middleware::from_fn(declared_size_limit)),
        );

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

/// Serves the dashboard on `listener` until the state's shutdown token
/// fires, then lets requests in flight finish (live streams end on the same
/// token).
///
/// The loop only accepts: each connection is admitted by the slot table
/// ([`conns`]: a cap per peer address, a global cap that sheds the longest
/// idle or silent connection before refusing) or refused at once with a
/// short status line, so the kernel's backlog never fills behind silent
/// sockets and `/healthz` stays reachable.
pub async fn serve(listener: TcpListener, state: AppState) {
    let Shutdown {
        token: cancel,
        tasks,
    } = state.inner.shutdown.clone();
    let app = router(state.clone());
    let conns = Arc::clone(&state.inner.conns);
    let timeouts = Timeouts {
        first_byte: state.web().first_byte_timeout,
        header: state.web().header_timeout,
        trusted: Arc::new(state.web().trusted_proxies.clone()),
    };
    let tls = state.supervisor().certs().web().cloned();
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => return state.flush_token_use().await,
            // Upgraded: the new process accepts; requests here finish.
            () = crate::handoff::draining().cancelled() => return state.flush_token_use().await,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, most likely: let some close.
                    tracing::warn!("dashboard accept failed: {e}");
                    let pause = tokio::time::sleep(std::time::Duration::from_millis(100));
                    let _ = cancel.run_until_cancelled(pause).await;
                    continue;
                }
            },
        };
        // Without it a response written in pieces (a streamed command's
        // output, a chunked body) waits on Nagle for the peer's delayed ACK,
        // ~40 ms per request on a kept-alive connection. Set before the TLS
        // handshake, so it holds for HTTPS too.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, "dashboard connection: TCP_NODELAY not set: {e}");
        }
        match conns.admit(peer.ip()) {
            Ok(slot) => {
                tasks.spawn(serve_conn(
                    stream,
                    peer,
                    slot,
                    app.clone(),
                    cancel.clone(),
                    timeouts.clone(),
                    tls.clone(),
                ));
            }
            Err(why) => refuse(&stream, peer, why),
        }
    }
}

#[derive(Clone)]
struct Timeouts {
    first_byte: Duration,
    header: Duration,
    /// `web.trusted_proxies`: peers whose word on the client we believe
    /// ([`client_addr`]); with the timeouts, as every connection reads it.
    trusted: Arc<crate::settings::TrustedProxies>,
}

/// Answers a connection that gets no slot, without waiting for it: a fresh
/// socket's send buffer has room for one short response, and the accept
/// loop must not block on a peer.
fn refuse(stream: &TcpStream, peer: SocketAddr, why: Refusal) {
    let (status, text) = match why {
        Refusal::PeerFull => (
            "429 Too Many Requests",
            "too many connections from your address\n",
        ),
        Refusal::Full => (
            "503 Service Unavailable",
            "the dashboard is at its connection limit; try again\n",
        ),
    };
    tracing::debug!(%peer, "dashboard connection refused: {}", text.trim_end());
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Retry-After: 1\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    crate::service::listen::last_words(stream, reply.as_bytes());
}

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a plaintext request to the HTTPS port gets before the close.
const HTTPS_ONLY: &str = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 43\r\nConnection: close\r\n\r\nthis port speaks HTTPS: use https:// to it\n";

/// The `Strict-Transport-Security` of every HTTPS response: a year.
const HSTS: &str = "max-age=31536000";

/// One connection: wait (briefly) for its first byte, then (TLS) shake
/// hands and speak HTTP/1 until it closes, is shed, or shutdown ends it
/// gracefully.
async fn serve_conn(
    mut stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    app: Router,
    cancel: CancellationToken,
    timeouts: Timeouts,
    tls: Option<Arc<crate::tls::ServerTls>>,
) {
    let mut first = [0u8; 1];
    tokio::select! {
        () = cancel.cancelled() => return,
        () = slot.shed.cancelled() => return,
        peeked = tokio::time::timeout(timeouts.first_byte, stream.peek(&mut first)) => match peeked {
            Ok(Ok(n)) if n > 0 => {}
            Ok(Ok(_)) => return,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "dashboard connection failed before a byte: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "dashboard connection silent for {:?}: closed", timeouts.first_byte);
                return;
            }
        },
    }
    slot.heard();
    // Behind a trusted proxy, the client its PROXY header names (if any).
    let Some(peer) = client_addr::take_proxy_header(
        &mut stream,
        peer,
        &timeouts.trusted,
        &mut first,
        timeouts.first_byte,
    )
    .await
    else {
        return;
    };
    let Some(tls) = tls else {
        return serve_http(
            TokioIo::new(stream),
            peer,
            slot,
            app,
            cancel,
            timeouts,
            false,
        )
        .await;
    };
    if first[0] != TLS_HANDSHAKE_RECORD {
        tracing::debug!(%peer, "plaintext request to the HTTPS port: closed");
        let mut stream = stream;
        let _ = tokio::time::timeout(timeouts.first_byte, async {
            use tokio::io::AsyncWriteExt;
            stream.write_all(HTTPS_ONLY.as_bytes()).await?;
            // Read what the request sent, so the close is a FIN after the
            // reply rather than a reset that could destroy it.
            crate::service::listen::discard_received(&stream);
            stream.shutdown().await
        })
        .await;
        return;
    }
    let after = crate::tls::HANDSHAKE_TIMEOUT;
    let handshake = tokio::time::timeout(after, tls.acceptor().accept(stream));
    let stream = tokio::select! {
        () = cancel.cancelled() => return,
        () = slot.shed.cancelled() => return,
        done = handshake => match done {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "dashboard TLS handshake failed: {}", crate::tls::describe(&e));
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "dashboard TLS handshake not done within {after:?}: closed");
                return;
            }
        },
    };
    serve_http(
        TokioIo::new(stream),
        peer,
        slot,
        app,
        cancel,
        timeouts,
        true,
    )
    .await;
}

/// HTTP/1 over an established stream (plain or TLS).
async fn serve_http<I>(
    io: I,
    peer: SocketAddr,
    slot: Slot,
    app: Router,
    cancel: CancellationToken,
    timeouts: Timeouts,
    https: bool,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let slot = Arc::new(slot);
    let tracked = Arc::clone(&slot);
    let trusted = Arc::clone(&timeouts.trusted);
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let client = client_addr::from_headers(peer, req.headers(), &trusted);
        req.extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(client));
        // Busy from here until the response body is done (or dropped).
        let guard = tracked.request();
        let app = app.clone();
        async move {
            let mut response = app.oneshot(req).await.unwrap_or_else(|e| match e {});
            if https {
                response.headers_mut().insert(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static(HSTS),
                );
            }
            Ok::<_, Infallible>(response.map(|body| TrackedBody {
                body,
                _guard: guard,
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    // Upgrades for the WebSocket relay: once upgraded, the socket is the
    // relay's (bounded by its own limits), and this connection's slot is
    // given back.
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        () = slot.shed.cancelled() => {
            // The busy flag only changes while `conn` is polled, here in
            // this task: not busy now means no request can be cut.
            if !slot.busy() {
                return;
            }
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "dashboard connection ended: {e}");
    }
}

/// A response body that keeps its connection marked busy until hyper has
/// written it all (or dropped it): a live stream is never shed.
struct TrackedBody {
    body: axum::body::Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
