//! Who holds the dashboard's connection slots, and who gives one up when
//! they run out.
//!
//! Every accepted connection gets a [`Slot`] from [`Conns::admit`], or is
//! refused at once; the accept loop itself never waits, so the kernel's
//! backlog never fills with sockets nobody looks at (that is what locked
//! the dashboard out before: a full cap left `/healthz` queued behind
//! silent sockets).
//!
//! The rules, in the order `admit` applies them:
//! - a peer address holds at most `web.max_connections_per_peer` slots;
//!   beyond it the newcomer is refused ([`Refusal::PeerFull`]);
//! - at most `web.max_connections` slots in all; when full, the connection
//!   that has been idle or silent the longest is shed to make room:
//!   *silent* means no byte received yet, *idle* means no request in
//!   progress (between keep-alive requests, or a request head still
//!   arriving). A connection with a request or a response body in flight
//!   (a live stream, an upload) is *busy* and never shed. If every slot is
//!   busy, the newcomer is refused ([`Refusal::Full`]).
//!
//! A shed connection leaves the table at once, so its slot is the
//! newcomer's; its task is told through [`Slot::shed`] and closes the
//! socket (or, if a request slipped in meanwhile, finishes that request
//! first: a bounded overshoot, never a wait in the accept loop).
//!
//! Not here: reading or writing the sockets (that is `serve`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// What a connection is doing, as far as shedding cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepted, no byte received yet.
    Silent,
    /// No request in progress.
    Idle,
    /// This many requests (or their response bodies) in flight.
    Busy(usize),
}

#[derive(Debug)]
struct Entry {
    peer: IpAddr,
    phase: Phase,
    /// When the connection entered its phase: the oldest silent or idle
    /// one is shed first.
    since: Instant,
    shed: CancellationToken,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, Entry>,
    per_peer: HashMap<IpAddr, usize>,
}

impl Table {
    /// Takes `id` out of the table; `None` if it was already shed.
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.conns.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&entry.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&entry.peer);
            }
        }
        Some(entry)
    }
}

/// Why a new connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already holds `web.max_connections_per_peer`.
    PeerFull,
    /// Every slot is busy with a request.
    Full,
}

/// Counts for `/metrics` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnCounts {
    /// Connections holding a slot now.
    pub open: usize,
    /// Of those, how many have not sent a byte yet.
    pub silent: usize,
    /// Connections shed to make room, since start.
    pub shed: u64,
    /// Connections refused (per-peer cap or all busy), since start.
    pub refused: u64,
}

/// The slot table. Shared by the accept loop and every connection task.
#[derive(Debug)]
pub struct Conns {
    max: usize,
    per_peer: usize,
    table: Mutex<Table>,
    shed: AtomicU64,
    refused: AtomicU64,
}

impl Conns {
    pub fn new(max: usize, per_peer: usize) -> Arc<Conns> {
        Arc::new(Conns {
            max: max.max(1),
            per_peer: per_peer.max(1),
            table: Mutex::new(Table::default()),
            shed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Each change is a few field updates with nothing that can panic in
        // between, so a poisoned table is still consistent.
        crate::sync::lock(&self.table)
    }

    /// A slot for a connection just accepted from `peer`, shedding the
    /// longest idle or silent connection if the table is full.
    ///
    /// # Errors
    /// [`Refusal`] when the peer is at its cap or every slot is busy.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refusal> {
        let now = Instant::now();
        let mut table = self.lock();
        let refuse = |why| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Err(why)
        };
        if table.per_peer.get(&peer).copied().unwrap_or(0) >= self.per_peer {
            return refuse(Refusal::PeerFull);
        }
        if table.conns.len() >= self.max {
            // A scan, not an ordered index: the table holds at most
            // `max` entries and this runs only when it is full.
            let victim = table
                .conns
                .iter()
                .filter(|(_, e)| !matches!(e.phase, Phase::Busy(_)))
                .min_by_key(|(id, e)| (e.since, **id))
                .map(|(id, _)| *id);
            let Some(victim) = victim.and_then(|id| table.remove(id)) else {
                return refuse(Refusal::Full);
            };
            victim.shed.cancel();
            self.shed.fetch_add(1, Ordering::Relaxed);
        }
        let id = table.next_id;
        table.next_id += 1;
        let shed = CancellationToken::new();
        table.conns.insert(
            id,
            Entry {
                peer,
                phase: Phase::Silent,
                since: now,
                shed: shed.clone(),
            },
        );
        *table.per_peer.entry(peer).or_insert(0) += 1;
        Ok(Slot {
            conns: Arc::clone(self),
            id,
            shed,
        })
    }

    /// The counts now.
    pub fn counts(&self) -> ConnCounts {
        let table = self.lock();
        ConnCounts {
            open: table.conns.len(),
            silent: table
                .conns
                .values()
                .filter(|e| e.phase == Phase::Silent)
                .count(),
            shed: self.shed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.lock().conns.get_mut(&id) {
            f(e);
        }
    }
}

/// One connection's hold on a slot; dropping it frees the slot, however
/// the connection's task ends.
#[derive(Debug)]
pub struct Slot {
    conns: Arc<Conns>,
    id: u64,
    /// Fires when this connection is shed to make room for another.
    pub shed: CancellationToken,
}

impl Slot {
    /// The first byte has arrived: no longer silent.
    pub fn heard(&self) {
        self.conns.update(self.id, |e| {
            if e.phase == Phase::Silent {
                e.phase = Phase::Idle;
                e.since = Instant::now();
            }
        });
    }

    /// A request has started; the connection is busy until the returned
    /// guard (kept with the response body) is dropped.
    pub fn request(&self) -> RequestGuard {
        self.conns.update(self.id, |e| {
            e.phase = match e.phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                Phase::Silent | Phase::Idle => Phase::Busy(1),
            };
        });
        RequestGuard {
            conns: Arc::clone(&self.conns),
            id: self.id,
        }
    }

    /// Whether a request (or its response body) is in flight. A shed
    /// connection that is not busy can be closed at once.
    pub fn busy(&self) -> bool {
        self.conns
            .lock()
            .conns
            .get(&self.id)
            .is_some_and(|e| matches!(e.phase, Phase::Busy(_)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.conns.lock().remove(self.id);
    }
}

/// One request in flight on a connection; see [`Slot::request`].
#[derive(Debug)]
pub struct RequestGuard {
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.conns.update(self.id, |e| {
            e.phase = match e.phase {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                _ => {
                    e.since = Instant::now();
                    Phase::Idle
                }
            };
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_peer_is_capped_and_others_are_not() {
        let conns = Conns::new(10, 2);
        let _a = conns.admit(ip(1)).unwrap();
        let _b = conns.admit(ip(1)).unwrap();
        assert_eq!(conns.admit(ip(1)).unwrap_err(), Refusal::PeerFull);
        let _c = conns.admit(ip(2)).unwrap();
        drop(_a);
        let _d = conns.admit(ip(1)).expect("a dropped slot is free again");
        assert_eq!(conns.counts().refused, 1);
        assert_eq!(conns.counts().open, 3);
    }

    #[test]
    fn when_full_the_oldest_idle_or_silent_goes_and_busy_ones_stay() {
        let conns = Conns::new(3, 10);
        let busy = conns.admit(ip(1)).unwrap();
        busy.heard();
        let request = busy.request();
        let silent = conns.admit(ip(2)).unwrap();
        let idle = conns.admit(ip(3)).unwrap();
        idle.heard(); // idle since after `silent` was accepted

        let first = conns.admit(ip(4)).unwrap();
        assert!(silent.shed.is_cancelled(), "the oldest non-busy one");
        assert!(!idle.shed.is_cancelled() && !busy.shed.is_cancelled());
        let _second = conns.admit(ip(5)).unwrap();
        assert!(idle.shed.is_cancelled());
        let _third = conns.admit(ip(6)).unwrap();
        assert!(first.shed.is_cancelled());
        assert!(!busy.shed.is_cancelled(), "busy is never shed");
        assert_eq!(conns.counts().shed, 3);
        assert_eq!(conns.counts().open, 3);

        // Once its request ends, the busy one is idle, and sheddable.
        drop(request);
        assert!(!busy.busy());
        drop((silent, idle));
        assert_eq!(conns.counts().open, 3, "shed slots were already freed");
    }

    #[test]
    fn all_busy_refuses_the_newcomer() {
        let conns = Conns::new(1, 10);
        let only = conns.admit(ip(1)).unwrap();
        let _r = only.request();
        assert!(only.busy());
        assert_eq!(conns.admit(ip(2)).unwrap_err(), Refusal::Full);
        assert!(!only.shed.is_cancelled());
    }
}
