//! The services, and the [`Supervisor`] that starts, stops and watches them.
//!
//! Each service is one file exposing `run(socket, ctx)`: a loop that hands
//! each connection (TCP) or datagram (UDP) on, reports to [`Stats`], and
//! returns when its token is cancelled. The supervisor binds the socket
//! before calling `run`, so nothing can connect before a service listens, and
//! a bind failure becomes that service's `failed: <reason>` state without
//! touching the others. Services know nothing about HTTP.

pub mod listen;

mod echo;
mod exec;
mod files;
mod files_classic;
mod login;
mod time;
mod udp;
mod udp_echo;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditLog;
use crate::config::{Config, Limits, ListenAddr, ServiceConfig};
use crate::kind::{Proto, ServiceKind};
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::users::{Users, UsersError};

pub use listen::{Peer, bind_failure};
pub use login::MAX_LINE as LOGIN_MAX_LINE;

/// What the services share with the rest of the process.
#[derive(Clone)]
pub struct Deps {
    pub stats: Stats,
    /// The process's root token and task tracker; services hang below it.
    pub root: Shutdown,
    pub users: Users,
    pub audit: AuditLog,
    /// The files folder of `files` and `files-classic`.
    pub store: crate::store::Store,
    /// The certificates of the dashboard and of TLS services.
    pub tls: crate::tls::Certs,
}

impl Deps {
    /// Fresh stats and shutdown, with the accounts and audit log of
    /// `config.data_dir` (what tests and benchmarks start from).
    ///
    /// # Errors
    /// When the accounts file or the audit log cannot be opened.
    pub fn open(config: &Config) -> Result<Deps, DepsError> {
        Ok(Deps {
            stats: Stats::new(),
            root: Shutdown::new(),
            users: Users::open(&config.data_dir)?,
            audit: AuditLog::open(&config.data_dir).map_err(|source| DepsError::Audit {
                path: crate::audit::path(&config.data_dir),
                source,
            })?,
            store: crate::store::Store::open(&config.data_dir).map_err(|source| {
                DepsError::Files {
                    path: crate::store::dir(&config.data_dir),
                    source,
                }
            })?,
            tls: crate::tls::Certs::open(config)?,
        })
    }
}

/// Why [`Deps::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot open the audit log {}: {source}", path.display())]
    Audit {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the files folder {}: {source}", path.display())]
    Files {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a service could not start or stopped running.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{service} cannot listen on {addr}: {reason}")]
    Bind {
        service: ServiceKind,
        addr: ListenAddr,
        reason: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} needs an HMAC key (config `key` or SWITCHBOARD_KEY)")]
    NoKey(ServiceKind),
    #[error("{service} did not stop within {after:?}")]
    StopTimeout {
        service: ServiceKind,
        after: Duration,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What a running service gets: its own token and task tracker, the stats
/// registry and its limits. Nothing else.
#[derive(Clone)]
pub struct ServiceCtx {
    pub kind: ServiceKind,
    /// Cancelled when this service (or the whole process) stops.
    pub cancel: CancellationToken,
    /// The process's own token: cancelled once it is shutting down, which
    /// tells a shutdown from a stop of this one service.
    pub process: CancellationToken,
    /// This service's connection tasks, so a stop can wait for them.
    pub tasks: TaskTracker,
    pub stats: Stats,
    pub limits: Limits,
    /// Ports our UDP services are bound to: never answered by another one.
    pub own_udp_ports: OwnPorts,
}

/// The addresses our own UDP services are bound to, so that no two of them
/// can be made to answer each other forever. The per-datagram check reads
/// only atomics; the lock is taken only when a source port matches one of
/// ours, to compare the IP address too.
#[derive(Clone, Default)]
pub struct OwnPorts(Arc<OwnInner>);

#[derive(Default)]
struct OwnInner {
    ports: [AtomicU16; ServiceKind::ALL.len()],
    addrs: Mutex<[Option<std::net::SocketAddr>; ServiceKind::ALL.len()]>,
}

impl OwnPorts {
    fn set(&self, kind: ServiceKind, addr: Option<std::net::SocketAddr>) {
        lock(&self.0.addrs)[kind.index()] = addr;
        let port = addr.map_or(0, |a| a.port());
        self.0.ports[kind.index()].store(port, Ordering::Relaxed);
    }

    /// Whether `src` is (or, for a wildcard bind, may be) one of our own
    /// UDP services.
    pub fn contains(&self, src: std::net::SocketAddr) -> bool {
        let port = src.port();
        if port == 0
            || !self
                .0
                .ports
                .iter()
                .any(|p| p.load(Ordering::Relaxed) == port)
        {
            return false;
        }
        lock(&self.0.addrs)
            .iter()
            .flatten()
            .any(|own| own.port() == port && (own.ip().is_unspecified() || own.ip() == src.ip()))
    }
}

impl ServiceCtx {
    /// A context for running a service outside the supervisor (tests, benches).
    pub fn new(kind: ServiceKind, stats: Stats, limits: Limits) -> Self {
        ServiceCtx {
            kind,
            cancel: CancellationToken::new(),
            process: CancellationToken::new(),
            tasks: TaskTracker::new(),
            stats,
            limits,
            own_udp_ports: OwnPorts::default(),
        }
    }
}

/// Counts open connections per IP address, for `max_connections_per_peer`.
/// Touched only when a connection opens or closes, never per byte.
#[derive(Clone, Default)]
pub(crate) struct PeerLimit {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds one of a peer's connection slots; dropping it frees the slot.
pub(crate) struct PeerSlot {
    limit: PeerLimit,
    ip: IpAddr,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters only: consistent after any panic, so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PeerLimit {
    /// Takes a slot for `ip`, or `None` when it already has `max` open.
    pub(crate) fn try_acquire(&self, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        let mut open = lock(&self.open);
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            limit: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.limit.open);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The two connection caps of a TCP service, checked at accept.
pub(crate) struct Admission {
    slots: Arc<tokio::sync::Semaphore>,
    per_peer: PeerLimit,
}

/// A connection's place under both caps; dropping it frees the place.
pub(crate) struct Admitted {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _peer: Option<PeerSlot>,
}

impl Admission {
    pub(crate) fn new(ctx: &ServiceCtx) -> Self {
        Admission {
            slots: Arc::new(tokio::sync::Semaphore::new(ctx.limits.max_connections)),
            per_peer: PeerLimit::default(),
        }
    }

    /// Accepts until a connection is admitted under both caps; `None` once
    /// the service is cancelled. Accept errors are logged and retried.
    ///
    /// # Cancel safety
    /// Cancel safe up to a connection that is being admitted: that one is
    /// dropped (closed) if the future is.
    pub(crate) async fn next(
        &self,
        listener: &listen::Listener,
        ctx: &ServiceCtx,
    ) -> Option<(listen::Stream, Peer, Admitted)> {
        loop {
            let accepted = tokio::select! {
                () = ctx.cancel.cancelled() => return None,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    if let Some(admitted) = self.admit(ctx, &stream, peer).await {
                        crate::failpoint::hit(crate::failpoint::Point::Accept, ctx.kind);
                        return Some((stream, peer, admitted));
                    }
                }
                Err(e) => accept_backoff(ctx.kind, &e, &ctx.cancel).await,
            }
        }
    }

    /// Admits a connection, or refuses it with a one-line message and a
    /// stats event when a cap is reached. At the service's cap, the
    /// longest-idle connection (idle at least `evict_idle`) is closed to
    /// make room first.
    pub(crate) async fn admit(
        &self,
        ctx: &ServiceCtx,
        stream: &listen::Stream,
        peer: Peer,
    ) -> Option<Admitted> {
        // The per-peer cap first: a peer at its own cap evicts nobody.
        let peer_slot = match peer {
            Peer::Inet(addr) => {
                let max = ctx.limits.max_connections_per_peer;
                let Some(slot) = self.per_peer.try_acquire(addr.ip(), max) else {
                    refuse(
                        stream,
                        &format!(
                            "switchboard: too many connections from {}, limit {max}\n",
                            addr.ip()
                        ),
                    );
                    ctx.stats.refused(
                        ctx.kind,
                        peer.to_string(),
                        "too many connections from this address",
                    );
                    return None;
                };
                Some(slot)
            }
            Peer::Unix => None,
        };
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => match self.make_room(ctx).await {
                Some(permit) => permit,
                None => {
                    let max = ctx.limits.max_connections;
                    refuse(
                        stream,
                        &format!(
                            "switchboard: {} is at its limit of {max} connections, try again later\n",
                            ctx.kind
                        ),
                    );
                    ctx.stats
                        .refused(ctx.kind, peer.to_string(), "too many connections");
                    return None;
                }
            },
        };
        Some(Admitted {
            _permit: permit,
            _peer: peer_slot,
        })
    }

    /// Closes the longest-idle connection, if one has been idle for
    /// `evict_idle`, and takes the slot it frees.
    async fn make_room(&self, ctx: &ServiceCtx) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let (peer, idle) = ctx
            .stats
            .close_longest_idle(ctx.kind, ctx.limits.evict_idle)?;
        tracing::info!(
            service = %ctx.kind,
            %peer,
            "closed after {} s idle to admit a new connection ({} is at its limit of {})",
            idle.as_secs(),
            ctx.kind,
            ctx.limits.max_connections
        );
        // Its task ends as soon as it is polled; the guard is generous.
        tokio::time::timeout(EVICT_WAIT, Arc::clone(&self.slots).acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// How long admitting a newcomer waits for an evicted connection's slot.
const EVICT_WAIT: Duration = Duration::from_secs(1);

/// The accept loop every TCP service shares: admits connections under the
/// caps, registers each with the stats, and serves it on a task of its own
/// with `serve(stream, peer, guard)` until it ends or the service stops.
/// A connection that ends in an error is counted and logged (at debug: a
/// peer's misbehaviour is not the operator's problem). A connection whose
/// task panics ends alone: the panic is caught, logged as the bug it is and
/// counted, and the service and its other connections go on.
pub(crate) async fn serve_tcp<F, Fut, E>(listener: listen::Listener, ctx: ServiceCtx, serve: F)
where
    F: Fn(listen::Stream, Peer, crate::stats::ConnGuard) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let admission = Admission::new(&ctx);
    let tls = listener.tls().cloned();
    // Shared with each connection's task: on a TLS port the service is
    // called there, after the handshake.
    let serve = Arc::new(serve);
    while let Some((stream, peer, admitted)) = admission.next(&listener, &ctx).await {
        // Cancelled when the service stops or the dashboard closes it.
        let conn = ctx
            .stats
            .open_under(ctx.kind, Proto::Tcp, peer.to_string(), &ctx.cancel);
        let stop = conn.close_requested();
        let (stats, kind) = (ctx.stats.clone(), ctx.kind);
        let (serve, tls) = (Arc::clone(&serve), tls.clone());
        // The handshake runs here, on the connection's own task, while it
        // holds its admission (per-peer and service caps): pre-auth work
        // a peer cannot multiply past its cap.
        let served = async move {
            crate::failpoint::hit(crate::failpoint::Point::Connection, kind);
            let stream = match &tls {
                // Boxed: the handshake's state is kilobytes, and inline it
                // would make every connection's task that much larger,
                // plain ones included, for as long as they live.
                Some(tls) => Box::pin(listen::handshake(stream, tls))
                    .await
                    .map_err(|e| e.to_string())?,
                None => stream,
            };
            serve(stream, peer, conn).await.map_err(|e| e.to_string())
        };
        ctx.tasks.spawn(async move {
            use futures_util::FutureExt;
            let served = std::panic::AssertUnwindSafe(served).catch_unwind();
            let result = tokio::select! {
                biased;
                r = served => r,
                () = stop.cancelled() => Ok(Ok(())),
            };
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    // Errors can quote the peer (a name, a line): escaped,
                    // so no newline or terminal escape reaches the log raw.
                    let why = e.to_string();
                    tracing::debug!(service = %kind, %peer, "connection ended: {}", why.escape_debug());
                    stats.error(kind);
                }
                Err(panic) => {
                    tracing::error!(
                        service = %kind,
                        %peer,
                        "a connection's task panicked (a bug; the connection was closed): {}",
                        panic_message(panic.as_ref()).escape_debug()
                    );
                    stats.error(kind);
                }
            }
            drop(admitted);
        });
    }
}

/// [`serve_tcp`] for a service whose connections share state: each one is
/// served with its stream, peer and stats guard, plus handles on `shared`
/// and the service's context.
pub(crate) async fn serve_tcp_shared<S, F, Fut, E>(
    listener: listen::Listener,
    ctx: ServiceCtx,
    shared: S,
    serve: F,
) where
    S: Send + Sync + 'static,
    F: Fn(listen::Stream, Peer, crate::stats::ConnGuard, Arc<S>, ServiceCtx) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let shared = Arc::new(shared);
    let conn_ctx = ctx.clone();
    serve_tcp(listener, ctx, move |stream, peer, conn| {
        serve(stream, peer, conn, Arc::clone(&shared), conn_ctx.clone())
    })
    .await;
}

/// How long a client of exec or files has to answer the challenge.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The server side of the HMAC handshake for exec and files; a wrong
/// answer is counted as an auth failure and ends the connection.
///
/// # Errors
/// Silence past [`HANDSHAKE_TIMEOUT`], I/O errors, a wrong answer.
pub(crate) async fn authenticate<S>(
    conn: &mut crate::conn::MessageConn<S>,
    key: &[u8],
    ctx: &ServiceCtx,
    guard: &crate::stats::ConnGuard,
) -> Result<(), crate::conn::ConnError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match conn.accept_handshake(key, HANDSHAKE_TIMEOUT).await? {
        Ok(()) => Ok(()),
        Err(e) => {
            ctx.stats
                .auth_failed(ctx.kind, guard.peer(), &e.to_string());
            Err(crate::conn::ConnError::Io(std::io::Error::other(
                e.to_string(),
            )))
        }
    }
}

/// After refusing a peer that may still be sending: how much more input is
/// read and dropped, and for how long, before the close.
const LINGER_BYTES: u64 = 4 << 20;
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Closes our side, then swallows a bounded amount of what the peer is
/// still sending. Closing with unread input would reset the connection,
/// and the peer's kernel would drop our last words (an error line) unread.
pub(crate) async fn linger_close<S>(stream: &mut S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let mut rest = (&mut *stream).take(LINGER_BYTES);
    let _ = tokio::time::timeout(
        LINGER_TIME,
        tokio::io::copy(&mut rest, &mut tokio::io::sink()),
    )
    .await;
}

/// A service's state, as shown everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    Running,
    Stopped,
    Failed(String),
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceState::Running => f.write_str("running"),
            ServiceState::Stopped => f.write_str("stopped"),
            ServiceState::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

/// One service's status, as plain data.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: ServiceKind,
    pub proto: Proto,
    /// The configured address.
    pub listen: String,
    /// The address actually bound while running (differs for port 0).
    pub local_addr: Option<String>,
    /// `running`, `stopped` or `failed: <reason>`.
    pub state: String,
    pub enabled: bool,
    /// When the state last changed.
    pub since_unix_ms: u64,
}

/// Starts, stops and watches every service. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<SupInner>,
}

struct SupInner {
    stats: Stats,
    root: Shutdown,
    users: Users,
    audit: AuditLog,
    store: crate::store::Store,
    login: crate::config::LoginConfig,
    files: crate::config::FilesConfig,
    grace: Duration,
    /// The first and the longest wait before restarting a panicked service.
    backoff: (Duration, Duration),
    slots: Vec<Slot>,
    own_udp_ports: OwnPorts,
    key: Option<crate::config::Secret>,
    exec: crate::config::ExecConfig,
    tls: crate::tls::Certs,
}

struct Slot {
    /// Serialises start/stop/restart of this one service.
    op: tokio::sync::Mutex<()>,
    /// Held only for a few instructions, never across an `.await`.
    state: Mutex<SlotState>,
}

struct SlotState {
    config: ServiceConfig,
    state: ServiceState,
    since: SystemTime,
    local: Option<ListenAddr>,
    running: Option<Running>,
    generation: u64,
    /// When the service panicked within the last [`PANIC_WINDOW`].
    panics: std::collections::VecDeque<std::time::Instant>,
}

/// A service that panics [`MAX_PANICS`] times within this window is not
/// restarted again until someone starts it by hand.
const PANIC_WINDOW: Duration = Duration::from_secs(600);
const MAX_PANICS: usize = 10;

/// A freshly bound socket of the kind a service needs.
enum Bound {
    Tcp(listen::Listener),
    Udp(tokio::net::UdpSocket),
}

impl Bound {
    fn bind(
        proto: Proto,
        addr: &ListenAddr,
        tls: Option<Arc<crate::tls::ServerTls>>,
    ) -> std::io::Result<(Bound, ListenAddr)> {
        match proto {
            Proto::Tcp => {
                let l = listen::bind_tcp(addr)?.with_tls(tls);
                let local = l.local_addr()?;
                Ok((Bound::Tcp(l), local))
            }
            Proto::Udp => {
                let s = listen::bind_udp(addr)?;
                let local = ListenAddr::Inet(s.local_addr()?);
                Ok((Bound::Udp(s), local))
            }
        }
    }
}

struct Running {
    generation: u64,
    cancel: CancellationToken,
    conns: TaskTracker,
    handle: JoinHandle<()>,
}

impl Supervisor {
    /// A supervisor for `config`'s services; nothing starts until asked.
    pub fn new(config: &Config, deps: Deps) -> Self {
        let slots = ServiceKind::ALL
            .into_iter()
            .map(|kind| Slot {
                op: tokio::sync::Mutex::new(()),
                state: Mutex::new(SlotState {
                    config: config.service(kind).clone(),
                    state: ServiceState::Stopped,
                    since: SystemTime::now(),
                    local: None,
                    running: None,
                    generation: 0,
                    panics: std::collections::VecDeque::new(),
                }),
            })
            .collect();
        Supervisor {
            inner: Arc::new(SupInner {
                stats: deps.stats,
                root: deps.root,
                users: deps.users,
                audit: deps.audit,
                store: deps.store,
                login: config.login.clone(),
                files: config.files.clone(),
                grace: config.shutdown_grace,
                backoff: (config.restart_backoff, config.restart_backoff_max),
                slots,
                own_udp_ports: OwnPorts::default(),
                key: config.key.clone(),
                exec: config.exec.clone(),
                tls: deps.tls,
            }),
        }
    }

    fn slot(&self, kind: ServiceKind) -> &Slot {
        &self.inner.slots[kind.index()]
    }

    /// Starts every enabled service. One failing (a port taken) does not
    /// stop the others; the failures are returned for the caller to report.
    pub async fn start_enabled(&self) -> Vec<ServiceError> {
        let mut failures = Vec::new();
        for kind in ServiceKind::ALL {
            if !lock(&self.slot(kind).state).config.enabled {
                continue;
            }
            if let Err(e) = self.start(kind).await {
                failures.push(e);
            }
        }
        failures
    }

    /// Starts a service (a no-op if it runs). Returns the address it listens on.
    ///
    /// # Errors
    /// [`ServiceError::Bind`] when the socket cannot be bound; the service's
    /// state becomes `failed: <reason>`.
    pub async fn start(&self, kind: ServiceKind) -> Result<ListenAddr, ServiceError> {
        let _op = self.slot(kind).op.lock().await;
        // Started by a person: past panics no longer count against it.
        lock(&self.slot(kind).state).panics.clear();
        self.start_locked(kind)
    }

    /// Stops a service: stops accepting, closes its connections and waits
    /// (up to the shutdown grace period) for their tasks to end.
    ///
    /// # Errors
    /// [`ServiceError::StopTimeout`] when its tasks outlived the grace period.
    pub async fn stop(&self, kind: ServiceKind) -> Result<(), ServiceError> {
        let _op = self.slot(kind).op.lock().await;
        self.stop_locked(kind).await
    }

    /// Stops then starts a service, with no other start or stop in between.
    ///
    /// # Errors
    /// As [`Supervisor::stop`] and [`Supervisor::start`].
    pub async fn restart(&self, kind: ServiceKind) -> Result<ListenAddr, ServiceError> {
        let _op = self.slot(kind).op.lock().await;
        self.stop_locked(kind).await?;
        self.start_locked(kind)
    }

    fn set_state(&self, kind: ServiceKind, st: &mut SlotState, state: ServiceState) {
        if st.state != state {
            st.state = state;
            st.since = SystemTime::now();
            self.inner.stats.service_state(kind, st.state.to_string());
        }
    }

    fn start_locked(&self, kind: ServiceKind) -> Result<ListenAddr, ServiceError> {
        let slot = self.slot(kind);
        let (config, generation) = {
            let mut st = lock(&slot.state);
            if let (Some(_), Some(local)) = (&st.running, &st.local) {
                return Ok(local.clone());
            }
            st.generation += 1;
            (st.config.clone(), st.generation)
        };
        let needs_key = matches!(kind, ServiceKind::Exec | ServiceKind::Files);
        if needs_key && self.inner.key.is_none() {
            let reason = "no HMAC key configured".to_owned();
            self.set_state(
                kind,
                &mut lock(&slot.state),
                ServiceState::Failed(reason.clone()),
            );
            return Err(ServiceError::NoKey(kind));
        }
        let cancel = self.inner.root.token.child_token();
        let ctx = ServiceCtx {
            kind,
            cancel: cancel.clone(),
            process: self.inner.root.token.clone(),
            tasks: TaskTracker::new(),
            stats: self.inner.stats.clone(),
            limits: config.limits.clone(),
            own_udp_ports: self.inner.own_udp_ports.clone(),
        };
        let conns = ctx.tasks.clone();
        let (socket, local) =
            match Bound::bind(kind.proto(), &config.listen, self.inner.tls.service(kind)) {
                Ok(bound) => bound,
                Err(source) => {
                    let reason = bind_failure(&source);
                    self.set_state(
                        kind,
                        &mut lock(&slot.state),
                        ServiceState::Failed(reason.clone()),
                    );
                    let err = ServiceError::Bind {
                        service: kind,
                        addr: config.listen,
                        reason,
                        source,
                    };
                    tracing::warn!("{err}");
                    return Err(err);
                }
            };
        let key = self
            .inner
            .key
            .as_ref()
            .map(|k| k.expose().to_vec())
            .unwrap_or_default();
        let exec_config = self.inner.exec.clone();
        let (users, audit) = (self.inner.users.clone(), self.inner.audit.clone());
        let login_config = self.inner.login.clone();
        let store = self.inner.store.clone();
        let files_config = self.inner.files.clone();
        let fut = async move {
            match (kind, socket) {
                (ServiceKind::Echo, Bound::Tcp(l)) => echo::run(l, ctx).await,
                (ServiceKind::UdpEcho, Bound::Udp(s)) => udp_echo::run(s, ctx).await,
                (ServiceKind::Time, Bound::Udp(s)) => time::run(s, ctx).await,
                (ServiceKind::Exec, Bound::Tcp(l)) => {
                    exec::run(l, ctx, key, exec_config, audit).await
                }
                (ServiceKind::Files, Bound::Tcp(l)) => {
                    let max = files_config.max_file_bytes;
                    files::run(l, ctx, key, store, audit, max).await
                }
                (ServiceKind::FilesClassic, Bound::Tcp(l)) => {
                    let max = files_config.classic_max_file_bytes;
                    files_classic::run(l, ctx, store, audit, max).await
                }
                (ServiceKind::Login, Bound::Tcp(l)) => {
                    login::run(l, ctx, users, audit, login_config).await
                }
                (kind, _) => unreachable!("Bound::bind follows {kind}'s protocol"),
            }
        };
        let inner_handle = self.inner.root.tasks.spawn(fut);
        let me = self.clone();
        let handle = self.inner.root.tasks.spawn(async move {
            let (outcome, panicked) = match inner_handle.await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => (e.to_string(), false),
                Err(join) if join.is_panic() => {
                    let payload = join.into_panic();
                    let why = panic_message(payload.as_ref()).escape_debug().to_string();
                    tracing::error!(service = %kind, "the service panicked (a bug): {why}");
                    ("panicked".to_owned(), true)
                }
                Err(join) => (format!("crashed: {join}"), false),
            };
            tracing::error!(service = %kind, "service ended: {outcome}");
            let restart_in = {
                let slot = me.slot(kind);
                let mut st = lock(&slot.state);
                if st
                    .running
                    .as_ref()
                    .is_none_or(|r| r.generation != generation)
                {
                    return; // stopped or restarted meanwhile
                }
                if let Some(old) = st.running.take() {
                    // Its connections go with it: the restart starts clean.
                    old.cancel.cancel();
                }
                st.local = None;
                let restart_in = if panicked { me.note_panic(&mut st) } else { None };
                let state = match (panicked, restart_in) {
                    (true, None) => format!(
                        "panicked {MAX_PANICS} times in {} minutes; not restarted (start it by hand)",
                        PANIC_WINDOW.as_secs() / 60
                    ),
                    _ => outcome,
                };
                me.set_state(kind, &mut st, ServiceState::Failed(state));
                restart_in
            };
            if let Some(delay) = restart_in {
                me.restart_after_panic(kind, generation, delay).await;
            }
        });
        let mut st = lock(&slot.state);
        st.running = Some(Running {
            generation,
            cancel,
            conns,
            handle,
        });
        if let (Proto::Udp, Some(addr)) = (kind.proto(), local.inet()) {
            self.inner.own_udp_ports.set(kind, Some(addr));
        }
        st.local = Some(local.clone());
        self.set_state(kind, &mut st, ServiceState::Running);
        tracing::info!(service = %kind, "listening on {local}");
        Ok(local)
    }

    /// Counts a panic; the wait before the restart, or `None` when the
    /// service panicked too often to be restarted.
    fn note_panic(&self, st: &mut SlotState) -> Option<Duration> {
        let now = std::time::Instant::now();
        st.panics.push_back(now);
        while st
            .panics
            .front()
            .is_some_and(|t| now.duration_since(*t) > PANIC_WINDOW)
        {
            st.panics.pop_front();
        }
        let n = st.panics.len();
        if n >= MAX_PANICS {
            return None;
        }
        let (first, longest) = self.inner.backoff;
        let doublings = u32::try_from(n - 1).unwrap_or(u32::MAX).min(16);
        Some(first.saturating_mul(1 << doublings).min(longest))
    }

    /// Starts a panicked service again after `delay`, unless it was started,
    /// stopped or restarted by someone meanwhile, or the process stops.
    async fn restart_after_panic(&self, kind: ServiceKind, generation: u64, delay: Duration) {
        let root = self.inner.root.token.clone();
        if root
            .run_until_cancelled(tokio::time::sleep(delay))
            .await
            .is_none()
        {
            return;
        }
        let _op = self.slot(kind).op.lock().await;
        {
            let st = lock(&self.slot(kind).state);
            if st.generation != generation || st.running.is_some() {
                return;
            }
            if !matches!(&st.state, ServiceState::Failed(why) if why == "panicked") {
                return;
            }
        }
        tracing::info!(service = %kind, "restarting after a panic");
        let _ = self.start_locked(kind);
    }

    async fn stop_locked(&self, kind: ServiceKind) -> Result<(), ServiceError> {
        let slot = self.slot(kind);
        let running = lock(&slot.state).running.take();
        let Some(running) = running else {
            // Not running (never started, or failed): stopping acknowledges it.
            self.set_state(kind, &mut lock(&slot.state), ServiceState::Stopped);
            return Ok(());
        };
        running.cancel.cancel();
        running.conns.close();
        let grace = self.inner.grace;
        let finished = tokio::time::timeout(grace, async {
            // The listener is dropped when `run` returns: after this the port is free.
            let _ = running.handle.await;
            running.conns.wait().await;
        })
        .await;
        self.inner.own_udp_ports.set(kind, None);
        let mut st = lock(&slot.state);
        st.local = None;
        self.set_state(kind, &mut st, ServiceState::Stopped);
        tracing::info!(service = %kind, "stopped");
        finished.map_err(|_| ServiceError::StopTimeout {
            service: kind,
            after: grace,
        })
    }

    /// Stops every running service (used at shutdown, before draining).
    pub async fn stop_all(&self) {
        for kind in ServiceKind::ALL {
            if let Err(e) = self.stop(kind).await {
                tracing::warn!("{e}");
            }
        }
    }

    /// The current state of one service.
    pub fn state(&self, kind: ServiceKind) -> ServiceState {
        lock(&self.slot(kind).state).state.clone()
    }

    /// The address a running service is bound to.
    pub fn local_addr(&self, kind: ServiceKind) -> Option<ListenAddr> {
        lock(&self.slot(kind).state).local.clone()
    }

    /// Every service's status, in [`ServiceKind::ALL`] order.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        ServiceKind::ALL
            .into_iter()
            .map(|kind| {
                let st = lock(&self.slot(kind).state);
                ServiceStatus {
                    name: kind,
                    proto: kind.proto(),
                    listen: st.config.listen.to_string(),
                    local_addr: st.local.as_ref().map(ToString::to_string),
                    state: st.state.to_string(),
                    enabled: st.config.enabled,
                    since_unix_ms: st
                        .since
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64),
                }
            })
            .collect()
    }

    /// The certificates of the dashboard and the TLS services.
    pub fn certs(&self) -> &crate::tls::Certs {
        &self.inner.tls
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    pub fn users(&self) -> &Users {
        &self.inner.users
    }

    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    pub fn store(&self) -> &crate::store::Store {
        &self.inner.store
    }
}

/// The text of a panic's payload, for the log.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Writes a one-line refusal without waiting: a peer that is refused gets
/// told why if its socket can take the bytes now, and is closed either way.
pub(crate) fn refuse(stream: &listen::Stream, message: &str) {
    let _ = listen::try_write(stream, message.as_bytes());
}

/// After a failed accept (mostly: out of file descriptors) waits a moment so
/// the accept loop does not spin, unless the service is stopped meanwhile.
async fn accept_backoff(kind: ServiceKind, e: &std::io::Error, cancel: &CancellationToken) {
    if e.kind() == std::io::ErrorKind::ConnectionAborted {
        return; // the peer gave up before we accepted: nothing to wait out
    }
    tracing::warn!(service = %kind, "accept failed: {e}");
    let _ = cancel
        .run_until_cancelled(tokio::time::sleep(Duration::from_millis(100)))
        .await;
}
