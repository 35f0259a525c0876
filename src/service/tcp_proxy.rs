//! `tcp-proxy` (TCP): each client connection is forwarded to `upstream`, a
//! connection of its own there, bytes copied both ways.
//!
//! Per connection: connect to the upstream within `connect_timeout_ms`; if
//! it refuses, is down or does not answer, the client is closed at once
//! (nothing written to it: a proxy speaks no protocol of its own) and a
//! `refused` event says why. With `proxy_protocol = "v1" | "v2"` the
//! upstream first gets a PROXY header naming the real client
//! ([`crate::wire::proxy_protocol`]). Then both directions are copied,
//! each through one fixed buffer reused for the connection's life, so a
//! slow reader on either side stops us reading from the other (no queue
//! grows). When one side ends its writes (EOF), the other side's write half
//! is shut down and the opposite direction keeps going until it ends too.
//!
//! Bytes are counted on the client's side as they move (`bytes_in` from
//! the client, `bytes_out` to it), so the Connections table is live, and
//! the idle timeout is the one every TCP service has: no byte either way
//! for `idle_timeout_ms` closes both connections.
//!
//! On Linux, when both sides are plain TCP, small reads are copied through
//! a small buffer and bulk skips user space: `splice(2)` through a pipe
//! borrowed while bytes flow ([`super::splice`]), so an idle connection
//! holds no pipe and no buffer, and a direction that cannot get a pipe
//! (file descriptors) copies. Each call's bytes are counted, so the counts
//! and the idle clock are the same as on the copying path. TLS clients and
//! unix-socket upstreams take that path (a copy through one 64 KiB buffer
//! per direction, [`super::toxic_relay`]), as does a connection the wire
//! inspector captures (splice never shows us the bytes) and one whose
//! instance has toxics ([`crate::toxic`]). The two are compared with
//! haproxy and socat in `bench/run.sh --proxy`.
//!
//! The upstream's health ([`super::upstream::Health`]) is probed every few
//! seconds while the instance runs and updated by every client connect.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_util::either::Either;

use super::accept::{Place, serve_tcp};
use super::listen::{Listener, Peer, Stream};
use super::upstream::{self, Health, Upstream};
use super::{Kind, ServiceError, TcpCtx};
use crate::kind::Proto;
use crate::settings::{ConfigError, Section};
use crate::stats::ConnGuard;
use crate::wire::proxy_protocol::{self, Addresses, Version};

/// A tcp-proxy instance's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub upstream: Upstream,
    /// Longest wait for the upstream to accept a connection.
    pub connect_timeout: Duration,
    /// The PROXY header sent to the upstream first, if any.
    pub proxy_protocol: Option<Version>,
}

impl Kind for Settings {
    type Socket = Listener;

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        let upstream = Upstream::read(s, Proto::Tcp)?;
        let connect_timeout = s.ms("connect_timeout_ms", Duration::from_secs(5), 1, 600_000)?;
        let proxy_protocol = match s.opt_str("proxy_protocol")?.as_deref() {
            None | Some("off") => None,
            Some("v1") => Some(Version::V1),
            Some("v2") => Some(Version::V2),
            Some(other) => {
                return Err(s.bad(
                    "proxy_protocol",
                    format!(
                        "expected \"off\", \"v1\" or \"v2\", got `{}`",
                        other.escape_debug()
                    ),
                ));
            }
        };
        Ok(Settings {
            upstream,
            connect_timeout,
            proxy_protocol,
        })
    }

    async fn run(self, listener: Listener, ctx: TcpCtx) -> Result<(), ServiceError> {
        let shared = Arc::new(Shared {
            settings: self,
            health: Health::default(),
        });
        let probe = {
            let (shared, id, stats) = (Arc::clone(&shared), ctx.id.clone(), ctx.stats.clone());
            async move {
                let s = &shared.settings;
                // A LOCAL / UNKNOWN header: a health check, not a client.
                let hello = s
                    .proxy_protocol
                    .map(|v| proxy_protocol::encode(v, &Addresses::Unknown));
                let hello = hello.as_deref();
                upstream::probe(&s.upstream, s.connect_timeout, hello, &shared.health, &id, &stats)
                    .await;
            }
        };
        let conn_ctx = ctx.clone();
        let serve = serve_tcp(listener, ctx, Place::PerCore, move |client, peer, conn| {
            serve_conn(client, peer, conn, Arc::clone(&shared), conn_ctx.clone())
        });
        // The probe never ends; it stops with the accept loop.
        tokio::select! {
            () = serve => {}
            () = probe => {}
        }
        Ok(())
    }
}

/// What every connection of one instance shares.
struct Shared {
    settings: Settings,
    health: Health,
}

/// Forwards one client connection until both directions end, the idle
/// timeout, or an error.
async fn serve_conn(
    client: Stream,
    peer: Peer,
    conn: ConnGuard,
    shared: Arc<Shared>,
    ctx: TcpCtx,
) -> io::Result<()> {
    let s = &shared.settings;
    let (id, stats) = (&ctx.id, &ctx.stats);
    // A proxy that sends a PROXY header is not marked as ours: the
    // service behind it reads the header and counts the client it names.
    let ours = s.proxy_protocol.is_none();
    let mut upstream = match s.upstream.connect(s.connect_timeout, ours).await {
        Ok(up) => {
            shared.health.report(&s.upstream, Ok(()), id, stats);
            up
        }
        Err(e) => {
            shared.health.report(&s.upstream, Err(&e), id, stats);
            let why = format!("upstream {}: {}", s.upstream, upstream::describe(&e));
            tracing::debug!(service = %id, %peer, "{why}");
            stats.refused(id, peer.to_string(), &why);
            // Dropping the client closes it: refused, and said why above.
            return Ok(());
        }
    };
    let idle = ctx.limits.idle_timeout;
    if let Some(version) = s.proxy_protocol {
        let header = proxy_protocol::encode(version, &addresses(&client, peer));
        tokio::time::timeout(idle, upstream.write_all(&header))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "upstream did not take the PROXY header",
                )
            })??;
    }
    // Splice or copy; toxics switch a direction to copying, live
    // (super::toxic_relay). A captured connection always copies: splice
    // never shows us the bytes.
    let toxics = ctx.resources.toxics.watch(id.name());
    let relay = super::toxic_relay::relay(client, upstream, &conn, toxics);
    within_idle(relay, &conn, idle).await
}

/// Runs `relay` until it ends, or until the connection has moved no byte
/// either way for `idle`: the stats' sweep says when, as for echo
/// ([`ConnGuard::idle_expired`]).
async fn within_idle(
    relay: impl Future<Output = io::Result<()>>,
    conn: &ConnGuard,
    idle: Duration,
) -> io::Result<()> {
    tokio::select! {
        // In order: no random start to draw on every wake-up.
        biased;
        done = relay => done,
        () = conn.idle_expired(idle) => Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")),
    }
}

/// What the PROXY header says: the client's address, and where it
/// connected (our side of its connection).
fn addresses(client: &Stream, peer: Peer) -> Addresses {
    let local = match client {
        Stream::Plain(Either::Left(tcp)) => tcp.local_addr().ok(),
        Stream::Tls(tls) => match tls.get_ref().0 {
            Either::Left(tcp) => tcp.local_addr().ok(),
            Either::Right(_) => None,
        },
        Stream::Plain(Either::Right(_)) => None,
    };
    match (peer, local) {
        (Peer::Inet(src), Some(dst)) => Addresses::Tcp { src, dst },
        _ => Addresses::Unknown,
    }
}
