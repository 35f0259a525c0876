//! The loop both UDP services share: receive a datagram, decide whether to
//! answer, compute the reply, send it back.
//!
//! One task serves the socket. The tutorials' `ThreadingUDPServer` starts a
//! thread per datagram because a Python handler may block; ours compute a
//! reply in microseconds and never block, so a task per datagram would only
//! add overhead. The peer table belongs to this task alone: no lock.
//!
//! Who is not answered, and why:
//! - source ports below 1024 and a few well-known higher ones (SSDP, mDNS,
//!   memcached...): a spoofed datagram from such a port would start a loop
//!   with, or a reflection through, another UDP service;
//! - the addresses our own UDP services listen on, for the same reason
//!   (udp-echo and time would otherwise answer each other forever);
//! - a peer whose datagrams are our own replies coming back: another UDP
//!   service (switchboard's, in this process or another, or anyone's echo)
//!   made to talk to us by one spoofed datagram. After
//!   [`REFLECTIONS_BEFORE_DROP`] in a row one goes unanswered, which ends the
//!   loop. A client repeating a message still gets its answers: unless the
//!   message is its own upper-cased form, it differs from our reply;
//! - a source over its rate (a token bucket per source address);
//! - a new source while `max_peers` are tracked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{ServiceError, UdpCtx};
use crate::kind::Proto;
use crate::ratelimit::TokenBucket;
use crate::stats::ConnGuard;

/// Largest UDP payload there is; the receive buffer must hold it whole or
/// the kernel truncates the datagram silently.
pub(crate) const MAX_DATAGRAM: usize = 65_536;

/// Well-known ports above 1023 that answer UDP and so could loop or reflect.
const REFLECTOR_PORTS: [u16; 6] = [1900, 3702, 5353, 5683, 11211, 27015];

/// Whether a datagram from `src` must go unanswered (see the module docs).
/// `own` is this service's address.
pub(crate) fn blocked_source(src: SocketAddr, own: SocketAddr) -> bool {
    let port = src.port();
    port < 1024 || REFLECTOR_PORTS.contains(&port) || super::own_addr::may_be_from(src, own)
}

/// Consecutive datagrams from one peer that equal our last reply to it,
/// after which the next such one goes unanswered. Two services in a loop
/// each see every datagram after their first as a reflection, so with 2 a
/// loop ends by its 7th datagram, a few more when the two services first
/// rewrite each other's replies (time and udp-echo).
pub(crate) const REFLECTIONS_BEFORE_DROP: u8 = 2;

/// A cheap 64-bit fingerprint of a datagram, to notice our own reply coming
/// back without keeping it. Not collision-resistant, and need not be: a
/// collision can only cost the sender an answer now and then.
fn fingerprint(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    h
}

/// A peer being answered: its stats guard, rate bucket and reflection count.
pub(crate) struct PeerEntry {
    pub(crate) conn: ConnGuard,
    bucket: TokenBucket,
    pub(crate) last_seen: Instant,
    /// The length and [`fingerprint`] of our last reply to this peer.
    last_reply: (usize, u64),
    /// Datagrams in a row that equalled `last_reply`.
    reflections: u8,
}

impl PeerEntry {
    /// Whether `datagram` is our last reply coming back for the
    /// [`REFLECTIONS_BEFORE_DROP`]th time in a row (then it goes unanswered
    /// and the count starts over).
    pub(crate) fn loops(&mut self, datagram: &[u8]) -> bool {
        let (len, print) = self.last_reply;
        if datagram.len() != len || fingerprint(datagram) != print {
            self.reflections = 0;
            return false;
        }
        self.reflections += 1;
        if self.reflections > REFLECTIONS_BEFORE_DROP {
            self.reflections = 0;
            return true;
        }
        false
    }

    /// Remembers `reply` as our last one to this peer, for [`PeerEntry::loops`].
    pub(crate) fn replied(&mut self, reply: &[u8]) {
        self.last_reply = (reply.len(), fingerprint(reply));
    }
}

/// How often expired peers are swept out: half their time to live, kept
/// between 50 ms and 1 s; a late tick is not made up for. Ticked by the
/// clock thread, so the runtime serving the socket keeps no timer for it.
pub(crate) fn sweep_interval(ttl: Duration) -> crate::clock::Ticks {
    crate::clock::every((ttl / 2).clamp(Duration::from_millis(50), Duration::from_secs(1)))
}

/// Serves `socket` until cancelled; `respond` appends the reply to a
/// request into the (cleared) buffer it is given.
///
/// # Errors
/// Only if the socket's own address cannot be read; receive and send errors
/// are logged and the loop goes on.
pub(crate) async fn serve(
    socket: UdpSocket,
    ctx: UdpCtx,
    mut respond: impl FnMut(&[u8], &mut Vec<u8>),
) -> Result<(), ServiceError> {
    let own = socket.local_addr()?;
    let limits = &ctx.limits;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut reply = Vec::with_capacity(2048);
    let mut peers: HashMap<SocketAddr, PeerEntry> = HashMap::new();
    let sweep = sweep_interval(limits.peer_ttl);
    let mut tick = std::pin::pin!(sweep.tick());
    // Made once: a fresh `cancelled()` per datagram would register with
    // (and lock) the token's waiter list every time.
    let cancelled = ctx.cancel.cancelled();
    tokio::pin!(cancelled);

    loop {
        tokio::select! {
            biased;
            () = &mut cancelled => return Ok(()),
            ready = socket.readable() => ready?,
            () = &mut tick => {
                tick.set(sweep.tick());
                expire(&mut peers, limits.peer_ttl);
                continue;
            }
        }
        // Whatever has arrived, up to a batch, without going back through
        // the select: one wake-up can answer many datagrams.
        for _ in 0..BATCH {
            let (n, src) = match socket.try_recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // e.g. ECONNREFUSED reported for an earlier reply: not fatal.
                    tracing::debug!(service = %ctx.id, "recv failed: {e}");
                    continue;
                }
            };
            let Some(peer) = admit(&ctx, &mut peers, src, own, &buf[..n]) else {
                continue;
            };
            if peer.loops(&buf[..n]) {
                tracing::debug!(service = %ctx.id, peer = %src, "our replies come back: not answered");
                ctx.stats.dropped(&ctx.id);
                continue;
            }
            reply.clear();
            respond(&buf[..n], &mut reply);
            peer.replied(&reply);
            let sent = match socket.try_send_to(&reply, src) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // The send buffer is full: wait for room. A cancelled
                    // send of a datagram sends nothing; no partial state.
                    tokio::select! {
                        () = &mut cancelled => return Ok(()),
                        sent = socket.send_to(&reply, src) => sent,
                    }
                }
                sent => sent,
            };
            match sent {
                Ok(m) => peer.conn.sent(&reply[..m]),
                Err(e) => {
                    tracing::debug!(service = %ctx.id, peer = %src, "send failed: {e}");
                    ctx.stats.error(&ctx.id);
                }
            }
        }
    }
}

/// Datagrams answered per wake-up before the loop checks for cancellation
/// and the sweep again (and lets other tasks run).
pub(crate) const BATCH: usize = 64;

/// Decides whether `datagram` from `src` is answered (see the module docs)
/// and counts it (recording it when the peer is captured); the peer's
/// entry if it is.
pub(crate) fn admit<'a>(
    ctx: &UdpCtx,
    peers: &'a mut HashMap<SocketAddr, PeerEntry>,
    src: SocketAddr,
    own: SocketAddr,
    datagram: &[u8],
) -> Option<&'a mut PeerEntry> {
    let limits = &ctx.limits;
    if blocked_source(src, own) || ctx.own_udp_ports.contains(src) {
        ctx.stats.dropped(&ctx.id);
        return None;
    }
    let now = Instant::now();
    if !peers.contains_key(&src) && peers.len() >= limits.max_peers {
        expire(peers, limits.peer_ttl);
        if peers.len() >= limits.max_peers {
            ctx.stats.dropped(&ctx.id);
            return None;
        }
    }
    let peer = peers.entry(src).or_insert_with(|| {
        let conn = ctx.stats.open(&ctx.id, Proto::Udp, src.to_string());
        // Once, when its first datagram opens it: ours is the local end.
        conn.set_capture_local(own);
        PeerEntry {
            conn,
            bucket: TokenBucket::new(
                f64::from(limits.peer_rate),
                f64::from(limits.peer_burst),
                now.into_std(),
            ),
            last_seen: now,
            // No reply yet: a length no datagram has.
            last_reply: (usize::MAX, 0),
            reflections: 0,
        }
    });
    peer.last_seen = now;
    peer.conn.received(datagram);
    if !peer.bucket.take(now.into_std()) {
        ctx.stats.dropped(&ctx.id);
        return None;
    }
    Some(peer)
}

/// Forgets peers not seen for `ttl`; dropping their guards removes them
/// from the live registry.
pub(crate) fn expire(peers: &mut HashMap<SocketAddr, PeerEntry>, ttl: Duration) {
    let now = Instant::now();
    peers.retain(|_, p| now.saturating_duration_since(p.last_seen) < ttl);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_and_own_addresses_are_blocked() {
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let own = at(9001);
        for port in [0, 7, 13, 17, 19, 37, 53, 123, 1023, 1900, 5353, 11211] {
            assert!(blocked_source(at(port), own), "{port}");
        }
        assert!(blocked_source(at(9001), own));
        assert!(!blocked_source(at(40000), own));
        // The same port on another address is someone else.
        assert!(!blocked_source(
            SocketAddr::from(([127, 0, 0, 2], 9001)),
            own
        ));
        // Bound to every address: any address with our port may be us.
        let wildcard = SocketAddr::from(([0, 0, 0, 0], 9001));
        assert!(blocked_source(
            SocketAddr::from(([127, 0, 0, 2], 9001)),
            wildcard
        ));
    }

    #[test]
    fn our_reply_coming_back_is_dropped_once_in_a_while_a_repeated_request_never() {
        let stats = crate::stats::Stats::new();
        let mut peer = PeerEntry {
            conn: stats.open(
                &crate::kind::ServiceKind::UdpEcho.into(),
                Proto::Udp,
                "127.0.0.1:5",
            ),
            bucket: TokenBucket::new(1.0, 1.0, std::time::Instant::now()),
            last_seen: Instant::now(),
            last_reply: (usize::MAX, 0),
            reflections: 0,
        };
        // A client repeating a request: our reply differs from it.
        for _ in 0..100 {
            assert!(!peer.loops(b"hello"));
            peer.last_reply = (5, fingerprint(b"HELLO"));
        }
        // A loop: what comes in is what we sent.
        let dropped: Vec<bool> = (0..6).map(|_| peer.loops(b"HELLO")).collect();
        assert_eq!(dropped, [false, false, true, false, false, true]);
        assert_ne!(fingerprint(b"HELLO"), fingerprint(b"HELLP"));
        assert_ne!(fingerprint(b""), fingerprint(b"\0"));
    }
}
