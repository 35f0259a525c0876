//! Who a full TCP service closes to make room for a newcomer.
//!
//! A connection that has not started — its TLS handshake is unfinished, or
//! it has not sent the service a single byte (an HMAC answer counts) — is
//! a squatter until it proves otherwise: it goes first, at any age, taken
//! from the address holding the most slots and, within it, the oldest.
//! Only when no such connection is left does the service fall back to the
//! connection idle longest (at least `evict_idle_ms`). A newcomer that
//! evicts does not wait for the slot on the accept loop: it waits on its
//! own task, so a burst of newcomers evicts as many as it needs at once
//! rather than one a second.
//!
//! It does not decide caps (`accept.rs` does) and knows nothing of TLS or
//! protocols: "started" is read off the connection's byte counter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::stats::{ByteCounter, ConnGuard};
use crate::sync::lock;

/// The admitted connections of one TCP service, as eviction sees them.
/// Touched when a connection is admitted, ends, or a newcomer finds the
/// service full; never per byte.
#[derive(Default)]
pub(crate) struct Roster {
    next: AtomicU64,
    seated: Mutex<HashMap<u64, Seated>>,
}

struct Seated {
    ip: Option<IpAddr>,
    opened: Instant,
    counter: ByteCounter,
    close: CancellationToken,
}

/// A connection's entry in its service's [`Roster`]; dropping it removes
/// the entry, so an ended connection is never chosen.
pub(crate) struct Seat {
    roster: Arc<Roster>,
    key: u64,
}

impl Drop for Seat {
    fn drop(&mut self) {
        lock(&self.roster.seated).remove(&self.key);
    }
}

/// Which connections a newcomer may close.
#[derive(Clone, Copy)]
pub(crate) enum From {
    /// Any address's (the service's own cap).
    Any,
    /// Only this address's (its per-address cap).
    Only(IpAddr),
}

impl Roster {
    /// Enters an admitted connection; `ip` is `None` on a unix socket.
    pub(crate) fn seat(self: &Arc<Self>, ip: Option<IpAddr>, conn: &ConnGuard) -> Seat {
        let key = self.next.fetch_add(1, Relaxed);
        lock(&self.seated).insert(
            key,
            Seated {
                ip,
                opened: Instant::now(),
                counter: conn.counter(),
                close: conn.close_requested(),
            },
        );
        Seat {
            roster: Arc::clone(self),
            key,
        }
    }

    /// Closes one connection that has not started, chosen as the module
    /// says; returns its address, or `None` when every connection (in
    /// `from`) has started. One already asked to close is not chosen
    /// again, so each newcomer frees a slot of its own.
    pub(crate) fn evict_unstarted(&self, from: From) -> Option<Option<IpAddr>> {
        let seated = lock(&self.seated);
        let live = || seated.values().filter(|s| !s.close.is_cancelled());
        let mut held: HashMap<Option<IpAddr>, usize> = HashMap::new();
        for s in live() {
            *held.entry(s.ip).or_default() += 1;
        }
        let victim = live()
            .filter(|s| match from {
                From::Any => true,
                From::Only(ip) => s.ip == Some(ip),
            })
            .filter(|s| !s.counter.has_received())
            .max_by_key(|s| {
                let slots = held.get(&s.ip).copied().unwrap_or(0);
                (slots, std::cmp::Reverse(s.opened))
            })?;
        victim.close.cancel();
        Some(victim.ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::{Proto, ServiceId, ServiceKind};
    use crate::stats::Stats;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn the_unstarted_go_first_from_the_fullest_address_oldest_first() {
        let stats = Stats::new();
        let id = ServiceId::new("echo", ServiceKind::Echo);
        stats.register(&id);
        let roster = Arc::new(Roster::default());
        let open = |last: u8| {
            let g = stats.open(&id, Proto::Tcp, format!("127.0.0.{last}:1"));
            let seat = roster.seat(Some(ip(last)), &g);
            (g, seat)
        };
        let lone = open(1);
        let crowd: Vec<_> = (0..3).map(|_| open(2)).collect();
        let started = open(2);
        started.0.add_in(1);
        for oldest in 0..3 {
            assert_eq!(roster.evict_unstarted(From::Any), Some(Some(ip(2))));
            let closed = crowd
                .iter()
                .filter(|c| c.0.close_requested().is_cancelled());
            assert_eq!(closed.count(), oldest + 1);
            assert!(
                crowd[oldest].0.close_requested().is_cancelled(),
                "oldest first"
            );
        }
        assert!(
            !started.0.close_requested().is_cancelled(),
            "it has started"
        );
        assert_eq!(roster.evict_unstarted(From::Only(ip(2))), None);
        assert_eq!(roster.evict_unstarted(From::Any), Some(Some(ip(1))));
        assert!(lone.0.close_requested().is_cancelled());
        assert_eq!(roster.evict_unstarted(From::Any), None);
        drop(crowd);
        assert_eq!(lock(&roster.seated).len(), 2, "ended connections leave");
    }
}
