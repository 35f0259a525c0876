//! The accept side every TCP service shares: admission under the
//! connection caps (with eviction of idle squatters), the accept loop that
//! gives each connection its own task, the HMAC handshake of exec and files,
//! and a polite close.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::evict::{self, Roster, Seat};
use super::listen::{self, Peer};
use super::{ServiceCtx, TcpCtx};
use crate::kind::{Proto, ServiceId};
use crate::sync::lock;

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
    /// Who may be closed for a newcomer (see `evict.rs`).
    roster: Arc<Roster>,
    /// Whether refusals are TLS alerts (a TLS port) or a line of text.
    tls: bool,
}

/// A connection's place under both caps; dropping it frees the place.
/// A newcomer that evicted someone holds no permit yet: it waits for the
/// freed one on its own task ([`Admitted::settle`]), not on the accept loop.
pub(crate) struct Admitted {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    slots: Arc<tokio::sync::Semaphore>,
    roster: Arc<Roster>,
    ip: Option<IpAddr>,
    _peer: Option<PeerSlot>,
    _seat: Option<Seat>,
}

impl Admitted {
    /// Takes the service slot (waiting up to [`EVICT_WAIT`] for the one an
    /// eviction frees) and enters the connection in the roster; `false`
    /// when no slot came free in time.
    async fn settle(&mut self, conn: &crate::stats::ConnGuard) -> bool {
        if self.permit.is_none() {
            let wait = Arc::clone(&self.slots).acquire_owned();
            match tokio::time::timeout(EVICT_WAIT, wait).await {
                Ok(Ok(permit)) => self.permit = Some(permit),
                _ => return false,
            }
        }
        self._seat = Some(self.roster.seat(self.ip, conn));
        true
    }
}

impl Admission {
    pub(crate) fn new(ctx: &TcpCtx) -> Self {
        Admission {
            slots: Arc::new(tokio::sync::Semaphore::new(ctx.limits.max_connections)),
            per_peer: PeerLimit::default(),
            roster: Arc::default(),
            tls: false,
        }
    }

    /// Accepts until a connection is admitted under both caps; `None` once
    /// the service is cancelled. Accept errors are logged and retried.
    ///
    /// # Cancel safety
    /// Cancel safe up to a connection that is being admitted: that one is
    /// dropped (closed) if the future is.
    pub(crate) async fn next(
        &mut self,
        listener: &listen::Listener,
        ctx: &TcpCtx,
    ) -> Option<(listen::Stream, Peer, Admitted)> {
        self.tls = listener.tls().is_some();
        loop {
            let accepted = tokio::select! {
                () = ctx.accept.cancelled() => return None,
                () = crate::handoff::draining().cancelled() => return None,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    if let Some(admitted) = self.admit(ctx, &stream, peer) {
                        crate::failpoint::hit(crate::failpoint::Point::Accept, ctx.id.kind());
                        return Some((stream, peer, admitted));
                    }
                }
                Err(e) => accept_backoff(&ctx.id, &e, &ctx.cancel).await,
            }
        }
    }

    /// Admits a connection, or refuses it with a one-line message (a TLS
    /// alert on a TLS port) and a stats event when a cap is reached. At
    /// either cap a connection that has not started is closed to make room
    /// (see `evict.rs`); at the service's cap, failing that, the
    /// longest-idle one (idle at least `evict_idle`).
    pub(crate) fn admit(
        &self,
        ctx: &TcpCtx,
        stream: &listen::Stream,
        peer: Peer,
    ) -> Option<Admitted> {
        let ip = match peer {
            Peer::Inet(addr) => Some(addr.ip()),
            Peer::Unix => None,
        };
        // Our own relays and proxies hold no per-address slot: they are
        // bounded by their own budgets (see `internal.rs`). Only the
        // socket's own peer can be ours: a trusted proxy naming one of our
        // ports in its header neither passes as ours nor uses up the mark.
        let ours = match peer {
            Peer::Inet(addr) => super::internal::take(addr, || stream.local_inet_addr_from(addr)),
            Peer::Unix => false,
        };
        let peer_slot = match ip {
            Some(ip) if !ours => Some(self.peer_slot(ctx, stream, peer, ip)?),
            _ => None,
        };
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if self.make_room(ctx) => None,
            Err(_) => {
                self.refuse_full(ctx, stream, peer);
                return None;
            }
        };
        Some(Admitted {
            permit,
            slots: Arc::clone(&self.slots),
            roster: Arc::clone(&self.roster),
            ip,
            _peer: peer_slot,
            _seat: None,
        })
    }

    /// The per-address cap. A peer at its cap evicts only its own
    /// connections that have not started: it may then hold one slot over
    /// its cap until the one it evicted has closed (a moment), and never
    /// more than that, since each connection is evicted once.
    fn peer_slot(
        &self,
        ctx: &TcpCtx,
        stream: &listen::Stream,
        peer: Peer,
        ip: IpAddr,
    ) -> Option<PeerSlot> {
        let max = ctx.limits.max_connections_per_peer;
        if let Some(slot) = self.per_peer.try_acquire(ip, max) {
            return Some(slot);
        }
        if self.roster.evict_unstarted(evict::From::Only(ip)).is_some() {
            tracing::debug!(service = %ctx.id, %peer, "closed one of its unstarted connections for a newer one");
            return self.per_peer.try_acquire(ip, max + 1);
        }
        self.refuse(
            stream,
            &crate::wire::refusal::line(format_args!(
                "too many connections from {ip}, limit {max}"
            )),
        );
        ctx.stats.refused(
            &ctx.id,
            peer.to_string(),
            "too many connections from this address",
        );
        None
    }

    fn refuse_full(&self, ctx: &TcpCtx, stream: &listen::Stream, peer: Peer) {
        let max = ctx.limits.max_connections;
        self.refuse(
            stream,
            &crate::wire::refusal::line(format_args!(
                "{} is at its limit of {max} connections, try again later",
                ctx.id
            )),
        );
        ctx.stats
            .refused(&ctx.id, peer.to_string(), "too many connections");
    }

    /// A refusal the peer can read: a TLS client gets a fatal alert, since
    /// a line of text would only break its handshake.
    fn refuse(&self, stream: &listen::Stream, message: &str) {
        if self.tls {
            listen::refuse(stream, &listen::TLS_INTERNAL_ERROR);
        } else {
            refuse(stream, message);
        }
    }

    /// Closes a connection that has not started, else the longest-idle one
    /// if it has been idle for `evict_idle`; `true` when one was asked to
    /// close (the newcomer then waits for its slot on its own task).
    fn make_room(&self, ctx: &TcpCtx) -> bool {
        if let Some(ip) = self.roster.evict_unstarted(evict::From::Any) {
            tracing::debug!(service = %ctx.id, ?ip, "closed an unstarted connection to admit a new one");
            return true;
        }
        let Some((peer, idle)) = ctx.stats.close_longest_idle(&ctx.id, ctx.limits.evict_idle)
        else {
            return false;
        };
        tracing::info!(
            service = %ctx.id,
            %peer,
            "closed after {} s idle to admit a new connection ({} is at its limit of {})",
            idle.as_secs(),
            ctx.id,
            ctx.limits.max_connections
        );
        true
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
pub(crate) async fn serve_tcp<F, Fut, E>(
    listener: listen::Listener,
    ctx: TcpCtx,
    place: Place,
    serve: F,
) where
    F: Fn(listen::Stream, Peer, crate::stats::ConnGuard) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    // Behind a proxy (`accept_proxy`), the peer the listener hands out is
    // the client its PROXY header names: everything below sees that one.
    let listener = listener.with_proxy(ctx.limits.accept_proxy.clone());
    let mut admission = Admission::new(&ctx);
    let tls = listener.tls().cloned();
    // Shared with each connection's task: on a TLS port the service is
    // called there, after the handshake.
    let serve = Arc::new(serve);
    while let Some((stream, peer, mut admitted)) = admission.next(&listener, &ctx).await {
        // Cancelled when the service stops or the dashboard closes it.
        let conn = ctx
            .stats
            .open_under(&ctx.id, Proto::Tcp, peer.to_string(), &ctx.cancel);
        if conn.capturing()
            && let listen::Stream::Plain(tokio_util::either::Either::Left(tcp)) = &stream
            && let Ok(local) = tcp.local_addr()
        {
            // Our end, for the capture's export (one syscall, only then).
            conn.set_capture_local(local);
        }
        let (stream, core) = match place.core(stream) {
            Ok(placed) => placed,
            Err(e) => {
                let id = &ctx.id;
                tracing::debug!(service = %id, %peer, "cannot move a connection to a core: {e}");
                ctx.stats.connection_error(id);
                continue;
            }
        };
        let stop = conn.close_requested();
        let (stats, id) = (ctx.stats.clone(), ctx.id.clone());
        let (serve, tls) = (Arc::clone(&serve), tls.clone());
        let failpoint_kind = id.kind();
        // The handshake runs here, on the connection's own task, while it
        // holds its admission (per-peer and service caps): pre-auth work
        // a peer cannot multiply past its cap.
        // The refusal is written only if it happens: held as a String, it
        // was an allocation for every connection's life.
        let (svc, max) = (ctx.id.clone(), ctx.limits.max_connections);
        // The close token ends the task by aborting it (see `stop.rs`),
        // not by being polled on every wake-up.
        let switch = Arc::new(super::stop::AbortOnWake::default());
        let armed = Arc::clone(&switch);
        let served = async move {
            // Lives (registered) as long as the task does.
            let waiting = std::pin::pin!(stop.cancelled_owned());
            if super::stop::register(waiting, armed) {
                return Ok(());
            }
            if !admitted.settle(&conn).await {
                return Err(format!(
                    "{svc} is at its limit of {max} connections, try again later"
                ));
            }
            crate::failpoint::hit(crate::failpoint::Point::Connection, failpoint_kind);
            let stream = stream.arrive().map_err(|e| e.to_string())?;
            let stream = match &tls {
                // Boxed: the handshake's state is kilobytes, and inline it
                // would make every connection's task that much larger,
                // plain ones included, for as long as they live.
                Some(tls) => Box::pin(listen::handshake(stream, tls))
                    .await
                    .map_err(|e| e.to_string())?,
                None => stream,
            };
            let served = serve(stream, peer, conn).await.map_err(|e| e.to_string());
            drop(admitted);
            served
        };
        let served = reported(served, stats, id, peer);
        let task = match core {
            Some(core) => ctx.tasks.spawn_on(served, core),
            None => ctx.tasks.spawn(served),
        };
        switch.arm(task.abort_handle());
    }
}

/// `served`, with its end logged and counted: an error at debug (a peer's
/// misbehaviour), a panic as the bug it is; the service goes on either way.
fn reported(
    served: impl Future<Output = Result<(), String>> + Send,
    stats: crate::stats::Stats,
    id: ServiceId,
    peer: Peer,
) -> impl Future<Output = ()> + Send {
    // Combinators, not an `async` block around `served`: a block that
    // awaits a future it captured holds it twice (the capture and the
    // awaited copy), which doubled every connection's task.
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(served)
        .catch_unwind()
        .map(move |result| match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // Errors can quote the peer (a name, a line): escaped,
                // so no newline or terminal escape reaches the log raw.
                tracing::debug!(service = %id, %peer, "connection ended: {}", e.escape_debug());
                stats.connection_error(&id);
            }
            Err(panic) => {
                tracing::error!(
                    service = %id,
                    %peer,
                    "a connection's task panicked (a bug; the connection was closed): {}",
                    panic_message(panic.as_ref()).escape_debug()
                );
                stats.connection_error(&id);
            }
        })
}

/// Where [`serve_tcp`] runs its connections' tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// On the service's runtime, with the dashboard and every other task.
    Shared,
    /// Plain TCP connections on a runtime of one thread of their own per
    /// core ([`super::cores`]); Unix-socket ones stay shared.
    PerCore,
}

impl Place {
    /// Takes `stream` out of the accepting runtime when it goes to a core,
    /// and says to which.
    ///
    /// # Errors
    /// The reactor would not let the socket go; it is closed.
    fn core(
        self,
        stream: listen::Stream,
    ) -> std::io::Result<(Arriving, Option<&'static tokio::runtime::Handle>)> {
        use tokio_util::either::Either;
        let core = match self {
            Place::PerCore => super::cores::least_busy(),
            Place::Shared => None,
        };
        Ok(match (core, stream) {
            (Some(core), listen::Stream::Plain(Either::Left(tcp))) => (
                Arriving::Moving(super::cores::Detached::new(tcp)?),
                Some(core),
            ),
            (_, stream) => (Arriving::Here(stream), None),
        })
    }
}

/// An accepted connection on its way to its task.
enum Arriving {
    Here(listen::Stream),
    /// Registered with no reactor until its task, on a core, attaches it.
    Moving(super::cores::Detached),
}

impl Arriving {
    /// The stream, registered with the runtime this is called on.
    fn arrive(self) -> std::io::Result<listen::Stream> {
        Ok(match self {
            Arriving::Here(stream) => stream,
            Arriving::Moving(tcp) => {
                listen::Stream::Plain(tokio_util::either::Either::Left(tcp.attach()?))
            }
        })
    }
}

/// [`serve_tcp`] for a service whose connections share state: each one is
/// served with its stream, peer and stats guard, plus handles on `shared`
/// and the service's context.
pub(crate) async fn serve_tcp_shared<S, F, Fut, E>(
    listener: listen::Listener,
    ctx: TcpCtx,
    shared: S,
    serve: F,
) where
    S: Send + Sync + 'static,
    F: Fn(listen::Stream, Peer, crate::stats::ConnGuard, Arc<S>, TcpCtx) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let shared = Arc::new(shared);
    let conn_ctx = ctx.clone();
    serve_tcp(listener, ctx, Place::Shared, move |stream, peer, conn| {
        serve(stream, peer, conn, Arc::clone(&shared), conn_ctx.clone())
    })
    .await;
}

/// A connection of a message-protocol kind (exec, files): framed messages
/// over a stream whose writes give up on a peer that takes no byte for the
/// idle timeout (a `get` to a peer that never reads).
pub(crate) type MessageStream =
    crate::conn::MessageConn<crate::conn::WriteTimeout<super::counted::Counted<listen::Stream>>>;

/// Wraps an accepted stream for a message-protocol kind, counting every byte
/// on `guard`'s connection as it crosses the socket.
pub(crate) fn message_stream(
    stream: listen::Stream,
    idle: Duration,
    guard: &crate::stats::ConnGuard,
) -> MessageStream {
    let counted = super::counted::Counted::new(stream, guard.counter());
    crate::conn::MessageConn::new(crate::conn::WriteTimeout::new(counted, idle))
}

/// How long a client of exec or files has to answer the challenge.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The server side of the HMAC handshake for exec and files; a wrong
/// answer is counted as an auth failure and ends the connection.
///
/// # Errors
/// Silence past [`HANDSHAKE_TIMEOUT`], I/O errors, a wrong answer.
pub(crate) async fn authenticate<S, L>(
    conn: &mut crate::conn::MessageConn<S>,
    key: &[u8],
    ctx: &ServiceCtx<L>,
    guard: &crate::stats::ConnGuard,
) -> Result<(), crate::conn::ConnError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match conn.accept_handshake(key, HANDSHAKE_TIMEOUT).await? {
        Ok(()) => Ok(()),
        Err(e) => {
            ctx.stats.auth_failed(&ctx.id, guard.peer(), &e.to_string());
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

/// The text of a panic's payload, for the log.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Writes a one-line refusal without waiting: a peer that is refused gets
/// told why if its socket can take the bytes now, and is closed either way.
pub(crate) fn refuse(stream: &listen::Stream, message: &str) {
    listen::refuse(stream, message.as_bytes());
}

/// After a failed accept (mostly: out of file descriptors) waits a moment so
/// the accept loop does not spin, unless the service is stopped meanwhile.
async fn accept_backoff(id: &ServiceId, e: &std::io::Error, cancel: &CancellationToken) {
    if e.kind() == std::io::ErrorKind::ConnectionAborted {
        return; // the peer gave up before we accepted: nothing to wait out
    }
    tracing::warn!(service = %id, "accept failed: {e}");
    let _ = cancel
        .run_until_cancelled(tokio::time::sleep(Duration::from_millis(100)))
        .await;
}
