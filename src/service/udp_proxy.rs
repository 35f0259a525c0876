//! `udp-proxy` (UDP): datagrams from each client address are forwarded to
//! `upstream` from a socket of that client's own (a *mapping*: a UDP socket
//! connected to the upstream, so the kernel drops datagrams from anyone
//! else), and whatever the upstream sends back on it goes to that client.
//!
//! The client side is the UDP services' own ([`super::udp`]): the same
//! blocked source ports and own-address check, the same per-peer token
//! bucket (`peer_rate`, `peer_burst`), the same `max_peers` cap and the same
//! reflection guard (a client whose datagrams are our replies coming back
//! is another UDP service looping with us: every third one goes
//! unforwarded). A mapping lives as long as its peer: `peer_ttl_ms` after
//! the last datagram either way it is closed, and its socket with it.
//!
//! One task owns the client socket and the peer table (no lock); each
//! mapping has a small task that waits for replies without a buffer and
//! hands each one to the owner through a bounded queue. A full queue drops
//! the reply (counted), as a full socket buffer would: nothing grows.
//!
//! New clients get a mapping within the limits of [`super::new_peers`]
//! (per source address, and a rate): what ends a ring of udp-proxies of
//! different processes, which see each hop as a new client.
//!
//! A host name upstream is resolved once, when the instance starts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::new_peers::NewPeers;
use super::udp::{self, BATCH, MAX_DATAGRAM, PeerEntry};
use super::upstream::Upstream;
use super::{Kind, ServiceError, UdpCtx};
use crate::kind::{Proto, ServiceId};
use crate::settings::{ConfigError, Section};
use crate::stats::Stats;
use crate::toxic::udp::UdpToxics;

/// Replies waiting for the owner task, from all mappings together. At most
/// this many datagrams (each at most 64 KiB) are queued.
const REPLY_QUEUE: usize = 256;

/// A udp-proxy instance's own settings (its limits are the UDP ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub upstream: Upstream,
}

/// How long the upstream's name may take to resolve at the start.
pub const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Kind for Settings {
    type Socket = UdpSocket;

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        Ok(Settings {
            upstream: Upstream::read(s, Proto::Udp)?,
        })
    }

    async fn run(self, socket: UdpSocket, ctx: UdpCtx) -> Result<(), ServiceError> {
        // Bounded: a name server that never answers must not hold the
        // start (and the instance's lock) forever.
        let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, self.upstream.resolve())
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {RESOLVE_TIMEOUT:?}"),
                ))
            });
        let upstream = resolved.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot resolve upstream {}: {e}", self.upstream),
            )
        })?;
        // A name that leads to another udp-proxy of ours loops like its
        // address would (which the supervisor refuses before the start).
        if let Some(other) = ctx.own_udp_ports.forwarder_at(upstream, &ctx.id) {
            return Err(ServiceError::Loop {
                service: ctx.id.clone(),
                upstream: format!("{} ({upstream})", self.upstream),
                other,
            });
        }
        let own = socket.local_addr()?;
        // Forwarding to ourselves would bounce every datagram until the
        // rate limit stopped it.
        if super::own_addr::reaches(upstream, own) {
            return Err(ServiceError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("upstream {upstream} is this service's own address"),
            )));
        }
        Proxy {
            socket,
            own,
            upstream,
            ctx,
        }
        .serve()
        .await
    }
}

/// One client's socket to the upstream; dropping it stops its reply task
/// and closes the socket.
struct Mapping {
    socket: Arc<UdpSocket>,
    _stop: DropGuard,
}

struct Proxy {
    socket: UdpSocket,
    own: SocketAddr,
    upstream: SocketAddr,
    ctx: UdpCtx,
}

impl Proxy {
    async fn serve(self) -> Result<(), ServiceError> {
        let ctx = &self.ctx;
        let ttl = ctx.limits.peer_ttl;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut peers: HashMap<SocketAddr, PeerEntry> = HashMap::new();
        let mut mappings: HashMap<SocketAddr, Mapping> = HashMap::new();
        let mut new_peers = NewPeers::default();
        let (replies_tx, mut replies) = mpsc::channel::<(SocketAddr, Vec<u8>)>(REPLY_QUEUE);
        let sweep = super::udp::sweep_interval(ttl);
        let mut tick = std::pin::pin!(sweep.tick());
        let mut toxics = UdpToxics::new(
            ctx.resources.toxics.watch(ctx.id.name()),
            ctx.tasks.clone(),
            ctx.cancel.clone(),
        );
        let cancelled = ctx.cancel.cancelled();
        tokio::pin!(cancelled);

        loop {
            tokio::select! {
                biased;
                () = &mut cancelled => return Ok(()),
                Some((client, reply)) = replies.recv() => {
                    self.deliver(&mut peers, client, &reply).await;
                    continue;
                }
                ready = self.socket.readable() => ready?,
                () = &mut tick => {
                    tick.set(sweep.tick());
                    udp::expire(&mut peers, ttl);
                    mappings.retain(|client, _| peers.contains_key(client));
                    new_peers.recount(mappings.keys());
                    continue;
                }
            }
            for _ in 0..BATCH {
                let (n, src) = match self.socket.try_recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::debug!(service = %ctx.id, "recv failed: {e}");
                        continue;
                    }
                };
                let Some(peer) = udp::admit(ctx, &mut peers, src, self.own, &buf[..n]) else {
                    continue;
                };
                if peer.loops(&buf[..n]) {
                    tracing::debug!(service = %ctx.id, peer = %src, "our replies come back: not forwarded");
                    ctx.stats.dropped(&ctx.id);
                    continue;
                }
                // `admit` may have expired peers to make room: their
                // mappings go too, so mappings never outnumber peers.
                if mappings.len() >= peers.len() {
                    mappings.retain(|client, _| peers.contains_key(client));
                    new_peers.recount(mappings.keys());
                }
                if !mappings.contains_key(&src)
                    && let Err(why) = new_peers.admit(src.ip(), Instant::now())
                {
                    tracing::debug!(service = %ctx.id, peer = %src, "no upstream socket: {why}");
                    peers.remove(&src);
                    ctx.stats.dropped(&ctx.id);
                    continue;
                }
                let mapping = match mappings.entry(src) {
                    Entry::Occupied(m) => m.into_mut(),
                    Entry::Vacant(slot) => match self.open_mapping(src, replies_tx.clone(), toxics.clone()) {
                        Ok(m) => slot.insert(m),
                        Err(e) => {
                            tracing::warn!(service = %ctx.id, peer = %src, "cannot open a socket to the upstream: {e}");
                            ctx.stats.error(&ctx.id);
                            continue;
                        }
                    },
                };
                self.forward(&mut toxics, mapping, &buf[..n], src).await;
            }
        }
    }

    /// Sends one client datagram upstream on its mapping's socket, through
    /// the toxics (which may drop, repeat or hold it: crate::toxic::udp).
    async fn forward(&self, toxics: &mut UdpToxics, mapping: &Mapping, datagram: &[u8], src: SocketAddr) {
        let ctx = &self.ctx;
        if !toxics.upstream(datagram, &mapping.socket) {
            return;
        }
        let sent = match mapping.socket.try_send(datagram) {
            // A new socket's writability is not known until the
            // reactor has seen it: wait for it (a UDP send does not
            // wait for the network, only for buffer space).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => mapping.socket.send(datagram).await,
            sent => sent,
        };
        if let Err(e) = sent {
            // e.g. ECONNREFUSED from an earlier datagram: the
            // upstream port is closed. The client hears nothing,
            // as it would without us.
            tracing::debug!(service = %ctx.id, peer = %src, "forward failed: {e}");
            ctx.stats.error(&ctx.id);
        }
    }

    /// Sends a reply from the upstream to `client`, if it is still mapped.
    async fn deliver(
        &self,
        peers: &mut HashMap<SocketAddr, PeerEntry>,
        client: SocketAddr,
        reply: &[u8],
    ) {
        let ctx = &self.ctx;
        let Some(peer) = peers.get_mut(&client) else {
            return; // expired meanwhile: its mapping is gone
        };
        let sent = match self.socket.try_send_to(reply, client) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.socket.send_to(reply, client).await
            }
            sent => sent,
        };
        match sent {
            Ok(m) => {
                peer.conn.sent(&reply[..m]);
                peer.replied(reply);
                peer.last_seen = Instant::now();
            }
            Err(e) => {
                tracing::debug!(service = %ctx.id, peer = %client, "send failed: {e}");
                ctx.stats.error(&ctx.id);
            }
        }
    }

    /// A socket connected to the upstream for `client`, and its reply task.
    fn open_mapping(
        &self,
        client: SocketAddr,
        replies: mpsc::Sender<(SocketAddr, Vec<u8>)>,
        toxics: UdpToxics,
    ) -> io::Result<Mapping> {
        let any: SocketAddr = if self.upstream.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let std = std::net::UdpSocket::bind(any)?;
        std.set_nonblocking(true)?;
        std.connect(self.upstream)?;
        let socket = Arc::new(UdpSocket::from_std(std)?);
        let stop = self.ctx.cancel.child_token();
        self.ctx.tasks.spawn(relay_replies(
            Arc::clone(&socket),
            client,
            replies,
            stop.clone(),
            (self.ctx.id.clone(), self.ctx.stats.clone()),
            toxics,
        ));
        Ok(Mapping {
            socket,
            _stop: stop.drop_guard(),
        })
    }
}

thread_local! {
    /// The receive buffer of reply tasks, one per worker thread: a task
    /// borrows it between a wake-up and handing the reply on, never across
    /// an await, so a waiting mapping holds no 64 KiB of its own.
    static REPLY_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM]);
}

/// Hands what the upstream sends on `socket` to the owner task, addressed
/// to `client`, until `stop`.
async fn relay_replies(
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    replies: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    stop: CancellationToken,
    (id, stats): (ServiceId, Stats),
    mut toxics: UdpToxics,
) {
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            ready = socket.readable() => {
                if ready.is_err() {
                    return;
                }
            }
        }
        for _ in 0..BATCH {
            let got =
                REPLY_BUF.with_borrow_mut(|buf| socket.try_recv(buf).map(|n| buf[..n].to_vec()));
            match got {
                Ok(reply) => {
                    if !toxics.downstream(client, &reply, &replies) {
                        continue;
                    }
                    if replies.try_send((client, reply)).is_err() {
                        stats.dropped(&id);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ECONNREFUSED for an earlier datagram and the like.
                Err(e) => tracing::debug!(service = %id, peer = %client, "upstream recv: {e}"),
            }
        }
    }
}
