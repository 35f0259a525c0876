//! The live registry: open connections (and recently seen UDP peers), per-service
//! totals, a one-second history for charts and an event stream.
//!
//! Shape: a cheap-to-clone [`Stats`] handle around an `Arc`, like mini-redis's
//! `Db`. The data path only touches atomics: [`ConnGuard::add_in`] and
//! [`ConnGuard::add_out`] take no lock. Locks (`std::sync::Mutex`, held for a
//! few instructions and never across an `.await`) are taken when a connection
//! opens or closes, when an event is recorded and when a snapshot is copied.
//! Dropping the guard is what removes a connection, so an error, a panic or a
//! shutdown can never leave a ghost behind.
//!
//! It knows nothing of sockets or HTTP: `snapshot()` returns plain serde data,
//! and that is all the web layer will ever see.

use crate::sync::lock;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::capture::{Captures, ConnCapture};
use crate::kind::{Proto, ServiceId};

pub mod carry;
mod snapshot;
pub use snapshot::{ConnInfo, Sample, ServiceTotals, Snapshot};

mod events;
mod guard;
pub use guard::ByteCounter;
mod histogram;
mod idle;
pub use idle::IdleExpired;
pub mod log_lines;
mod read;
mod sharded;
pub mod tiers;
mod upstream;
pub use events::{Event, EventKind};
pub use histogram::{DURATION_BUCKETS, Histogram, HistogramSnapshot};
pub use upstream::UpstreamState;

/// One sample a second for this long: what the traffic chart shows.
pub const HISTORY_LEN: usize = 15 * 60;
/// Events kept for late subscribers (the event log's first page).
pub const RECENT_EVENTS: usize = 1000;
/// Buffered events per live subscriber; a slower one skips ahead (`Lagged`).
const EVENT_CHANNEL: usize = 4096;

/// A run's first event `seq`: its start in milliseconds since the epoch,
/// times 1,000. A client following `/api/v1/events?after=SEQ` (the Traffic
/// page's log, a script) keeps its place across a restart: the new run's
/// events come after every event of the runs before, as long as a run
/// averaged under 1,000 events a millisecond and the clock did not go back.
/// A count from 1 made such a client skip the new run's events until they
/// passed the old run's number.
fn first_seq(started_unix_ms: u64) -> u64 {
    started_unix_ms.saturating_mul(1000).max(1)
}

/// Handle to the registry. Clone it freely.
#[derive(Clone)]
pub struct Stats {
    inner: Arc<Inner>,
}

struct Inner {
    started: Instant,
    started_unix_ms: u64,
    next_id: AtomicU64,
    /// The next event's `seq`; see [`first_seq`].
    next_seq: AtomicU64,
    /// Open connections by id; a BTreeMap so snapshots come out oldest first.
    conns: Mutex<BTreeMap<u64, Arc<ConnEntry>>>,
    /// Every instance seen, in the order first registered (config order).
    services: RwLock<Vec<Arc<SvcEntry>>>,
    recent: Mutex<VecDeque<Event>>,
    events: broadcast::Sender<Event>,
    /// Bumped on every event and every history sample; see [`Stats::changed`].
    version: watch::Sender<u64>,
    /// The wire inspector's captures and their shared budget.
    captures: Captures,
    /// Each proxy instance's upstream as last seen ([`upstream`]).
    upstreams: upstream::Upstreams,
    /// The sweep of connections' idle limits ([`idle`]).
    idle: idle::IdleSweep,
}

/// One instance's totals, durations and history. Connections hold it, so
/// counting their bytes needs no lookup.
struct SvcEntry {
    id: ServiceId,
    counters: Counters,
    /// How long each command (exec) and each stored upload (files,
    /// files-classic) took.
    exec_durations: Histogram,
    upload_durations: Histogram,
    history: Mutex<History>,
    /// The instance's capture switch and `capture_bytes`: read once when a
    /// connection opens (and by a captured connection's recording, so a
    /// switch turned off stops it at once).
    capture_on: std::sync::atomic::AtomicBool,
    capture_bytes: std::sync::atomic::AtomicUsize,
    /// Set when the instance is removed: its history is dropped and no
    /// longer sampled (until one of that name is registered again).
    retired: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    auth_failures: AtomicU64,
    // Added to by every connection on every thread: per-thread slots.
    bytes_in: sharded::Sharded,
    bytes_out: sharded::Sharded,
}

struct ConnEntry {
    id: u64,
    service: Arc<SvcEntry>,
    proto: Proto,
    peer: String,
    opened: Instant,
    opened_unix_ms: u64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Milliseconds since `Inner::started`.
    last_activity_ms: AtomicU64,
    /// Fired by [`Stats::close`]: the service ends the connection.
    close: CancellationToken,
    /// Its capture, when its instance captured as it opened.
    capture: Option<Arc<ConnCapture>>,
    /// Its idle limit, if it set one ([`ConnGuard::idle_expired`]).
    idle: idle::IdleSlot,
}

/// A connection (or UDP peer) in the registry. Count its bytes through it
/// (its [`ByteCounter`]'s methods); drop it to remove the connection.
pub struct ConnGuard {
    counter: ByteCounter,
}

#[derive(Default)]
struct History {
    last: (u64, u64, u64),
    samples: VecDeque<Sample>,
    /// The same seconds folded into 10 s and 1 min buckets ([`tiers`]).
    tiers: tiers::Downsampled,
}

/// Why [`Stats::close`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CloseError {
    #[error("no such connection (it may have closed already)")]
    NotFound,
    #[error("a UDP peer is not a connection and cannot be closed")]
    NotTcp,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Stats::with_capture_budget(crate::capture::DEFAULT_TOTAL_BYTES)
    }

    /// A registry whose captures hold at most `budget` bytes together
    /// (`capture_total_bytes`).
    pub fn with_capture_budget(budget: usize) -> Self {
        let (events, _) = broadcast::channel(EVENT_CHANNEL);
        let (version, _) = watch::channel(0);
        let started_unix_ms = unix_ms(SystemTime::now());
        Stats {
            inner: Arc::new(Inner {
                started: Instant::now(),
                started_unix_ms,
                next_id: AtomicU64::new(1),
                next_seq: AtomicU64::new(first_seq(started_unix_ms)),
                conns: Mutex::new(BTreeMap::new()),
                services: RwLock::new(Vec::new()),
                recent: Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)),
                events,
                version,
                captures: Captures::new(budget),
                upstreams: upstream::Upstreams::default(),
                idle: idle::IdleSweep::default(),
            }),
        }
    }

    /// The wire inspector's captures.
    pub fn captures(&self) -> &Captures {
        &self.inner.captures
    }

    /// Switches capturing of instance `name` on or off (registering it if
    /// needed); `bytes` is its `capture_bytes`, kept for a later switch on
    /// when `None`. Connections opened from now on follow it; those open
    /// already stop recording when it goes off.
    pub fn set_capture(&self, id: &ServiceId, on: bool, bytes: Option<usize>) {
        let e = self.entry(id);
        if let Some(b) = bytes {
            e.capture_bytes.store(b, Relaxed);
        }
        e.capture_on.store(on, Relaxed);
    }

    /// Whether instance `name` captures new connections.
    pub fn capturing(&self, name: impl AsRef<str>) -> bool {
        self.find(name.as_ref())
            .is_some_and(|e| e.capture_on.load(Relaxed))
    }

    /// Adds an instance (a no-op if one of that name is known); the
    /// supervisor registers every configured one, so each has totals, in
    /// config order, before its first connection.
    pub fn register(&self, id: &ServiceId) {
        self.entry(id).retired.store(false, Relaxed);
    }

    /// The entry of `id`, registering it on first use.
    fn entry(&self, id: &ServiceId) -> Arc<SvcEntry> {
        if let Some(e) = self.find(id.name()) {
            return e;
        }
        let mut services = crate::sync::write(&self.inner.services);
        if let Some(e) = services.iter().find(|e| e.id == *id) {
            return Arc::clone(e);
        }
        let entry = Arc::new(SvcEntry {
            id: id.clone(),
            counters: Counters::default(),
            exec_durations: Histogram::default(),
            upload_durations: Histogram::default(),
            history: Mutex::new(History::default()),
            capture_on: std::sync::atomic::AtomicBool::new(false),
            capture_bytes: std::sync::atomic::AtomicUsize::new(
                crate::capture::DEFAULT_CAPTURE_BYTES,
            ),
            retired: std::sync::atomic::AtomicBool::new(false),
        });
        services.push(Arc::clone(&entry));
        entry
    }

    fn find(&self, name: &str) -> Option<Arc<SvcEntry>> {
        crate::sync::read(&self.inner.services)
            .iter()
            .find(|e| e.id.name() == name)
            .cloned()
    }

    fn entries(&self) -> Vec<Arc<SvcEntry>> {
        crate::sync::read(&self.inner.services).clone()
    }

    /// Records how long one command took, from its request to its end.
    pub fn observe_exec(&self, service: &ServiceId, took: Duration) {
        self.entry(service).exec_durations.observe(took);
    }

    /// Records how long one stored upload took, header to commit.
    pub fn observe_upload(&self, service: &ServiceId, took: Duration) {
        self.entry(service).upload_durations.observe(took);
    }

    /// The command durations of instance `name` so far.
    pub fn exec_durations(&self, name: impl AsRef<str>) -> HistogramSnapshot {
        self.find(name.as_ref())
            .map(|e| e.exec_durations.snapshot())
            .unwrap_or_default()
    }

    /// The upload durations of instance `name` so far.
    pub fn upload_durations(&self, name: impl AsRef<str>) -> HistogramSnapshot {
        self.find(name.as_ref())
            .map(|e| e.upload_durations.snapshot())
            .unwrap_or_default()
    }

    fn now_ms(&self) -> u64 {
        millis(self.inner.started.elapsed())
    }

    fn unix_from_ms(&self, ms: u64) -> u64 {
        self.inner.started_unix_ms.saturating_add(ms)
    }

    /// Registers a new connection (TCP) or peer (UDP). `peer` is shown as given.
    pub fn open(&self, service: &ServiceId, proto: Proto, peer: impl Into<String>) -> ConnGuard {
        self.open_with(service, proto, peer.into(), CancellationToken::new())
    }

    /// Like [`Stats::open`], with the connection's close token a child of
    /// `parent` (the service's): one token then says "stop" for both
    /// reasons, and a connection task polls only its own, never the one all
    /// connections share.
    pub fn open_under(
        &self,
        service: &ServiceId,
        proto: Proto,
        peer: impl Into<String>,
        parent: &CancellationToken,
    ) -> ConnGuard {
        self.open_with(service, proto, peer.into(), parent.child_token())
    }

    fn open_with(
        &self,
        service: &ServiceId,
        proto: Proto,
        peer: String,
        close: CancellationToken,
    ) -> ConnGuard {
        let id = self.inner.next_id.fetch_add(1, Relaxed);
        let svc = self.entry(service);
        let capture = svc.capture_on.load(Relaxed).then(|| {
            let cap = svc.capture_bytes.load(Relaxed);
            self.inner.captures.open(id, service, proto, &peer, cap)
        });
        let entry = Arc::new(ConnEntry {
            id,
            service: svc,
            proto,
            peer,
            opened: Instant::now(),
            opened_unix_ms: unix_ms(SystemTime::now()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            last_activity_ms: AtomicU64::new(self.now_ms()),
            close,
            capture,
            idle: idle::IdleSlot::default(),
        });
        let counters = &entry.service.counters;
        counters.accepted.fetch_add(1, Relaxed);
        counters.active.fetch_add(1, Relaxed);
        lock(&self.inner.conns).insert(entry.id, Arc::clone(&entry));
        self.emit(EventKind::Opened {
            id: entry.id,
            service: service.clone(),
            peer: entry.peer.clone(),
        });
        ConnGuard {
            counter: ByteCounter {
                stats: self.clone(),
                entry,
            },
        }
    }

    /// Asks the service holding connection `id` to end it. UDP peers have no
    /// connection to end: they are refused with [`CloseError::NotTcp`].
    ///
    /// # Errors
    /// No such connection (it may just have closed), or a UDP peer.
    pub fn close(&self, id: u64) -> Result<(), CloseError> {
        let entry = lock(&self.inner.conns)
            .get(&id)
            .cloned()
            .ok_or(CloseError::NotFound)?;
        if entry.proto != Proto::Tcp {
            return Err(CloseError::NotTcp);
        }
        entry.close.cancel();
        Ok(())
    }

    /// Asks the service to end its TCP connection that has been idle the
    /// longest, if that is at least `min_idle`: the one a full service gives
    /// up to admit a newcomer. Returns its peer and how long it was idle.
    /// A connection already asked to close is not picked twice.
    pub fn close_longest_idle(
        &self,
        service: &ServiceId,
        min_idle: Duration,
    ) -> Option<(String, Duration)> {
        let now = self.now_ms();
        let conns = lock(&self.inner.conns);
        let victim = conns
            .values()
            .filter(|e| {
                e.service.id == *service && e.proto == Proto::Tcp && !e.close.is_cancelled()
            })
            .max_by_key(|e| now.saturating_sub(e.last_activity_ms.load(Relaxed)))?;
        let idle = Duration::from_millis(now.saturating_sub(victim.last_activity_ms.load(Relaxed)));
        if idle < min_idle {
            return None;
        }
        victim.close.cancel();
        Some((victim.peer.clone(), idle))
    }

    /// Counts a connection or datagram turned away by a limit.
    pub fn refused(&self, service: &ServiceId, peer: impl Into<String>, reason: &str) {
        self.entry(service).counters.refused.fetch_add(1, Relaxed);
        self.emit(EventKind::Refused {
            service: service.clone(),
            peer: peer.into(),
            reason: reason.to_owned(),
        });
    }

    /// Counts a datagram dropped by a limit, with no event: a flood of
    /// datagrams must not become a flood of events too.
    pub fn dropped(&self, service: &ServiceId) {
        self.entry(service).counters.refused.fetch_add(1, Relaxed);
    }

    /// Counts a datagram that could not be sent or forwarded, with no event
    /// and no wake-up (as [`Stats::dropped`]): a flood of datagrams must not
    /// become a flood of wake-ups.
    pub fn error(&self, service: &ServiceId) {
        self.entry(service).counters.errors.fetch_add(1, Relaxed);
    }

    /// Counts a connection that ended in an error (reset, idle timeout, ...).
    /// No event (the close has one), but [`Stats::wait_for`] sees it: the
    /// count can come after the close's event, from another thread.
    pub fn connection_error(&self, service: &ServiceId) {
        self.entry(service).counters.errors.fetch_add(1, Relaxed);
        self.inner.version.send_modify(|v| *v += 1);
    }

    /// Counts a failed authentication and records why (never the secret).
    pub fn auth_failed(&self, service: &ServiceId, peer: impl Into<String>, reason: &str) {
        self.entry(service)
            .counters
            .auth_failures
            .fetch_add(1, Relaxed);
        self.emit(EventKind::AuthFailed {
            service: service.clone(),
            peer: peer.into(),
            reason: reason.to_owned(),
        });
    }

    /// Records a service's new state (`running`, `stopped`, `failed: ...`).
    pub fn service_state(&self, service: &ServiceId, state: impl Into<String>) {
        self.emit(EventKind::ServiceState {
            service: service.clone(),
            state: state.into(),
        });
    }

    /// Records an event: numbered, kept in the recent list, sent to subscribers.
    pub fn emit(&self, kind: EventKind) {
        let event = Event {
            seq: self.inner.next_seq.fetch_add(1, Relaxed),
            at_unix_ms: unix_ms(SystemTime::now()),
            kind,
        };
        {
            let mut recent = lock(&self.inner.recent);
            if recent.len() == RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back(event.clone());
        }
        // No subscriber is not an error: the event is still in `recent`.
        let _ = self.inner.events.send(event);
        self.inner.version.send_modify(|v| *v += 1);
    }

    /// Follows events as they happen. A subscriber that falls more than a few
    /// thousand events behind gets `Lagged` and continues from the newest.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The last [`RECENT_EVENTS`] events, oldest first.
    pub fn recent_events(&self) -> Vec<Event> {
        lock(&self.inner.recent).iter().cloned().collect()
    }

    /// A receiver whose `changed()` resolves after the next event or sample.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    /// Waits until `cond` holds for a snapshot, re-checking after every change.
    ///
    /// # Cancel safety
    /// Cancel safe: it holds nothing but a watch receiver.
    pub async fn wait_for(&self, mut cond: impl FnMut(&Snapshot) -> bool) -> Snapshot {
        let mut changes = self.changed();
        loop {
            changes.borrow_and_update();
            let snap = self.snapshot();
            if cond(&snap) {
                return snap;
            }
            if changes.changed().await.is_err() {
                // Unreachable while `self` holds the sender; never spin.
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
