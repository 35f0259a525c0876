//! The wire inspector's recorder: every read and write of a captured
//! connection (or UDP peer), kept in memory as segments with the
//! boundaries the socket calls saw, for the live view and the pcapng
//! export ([`pcapng`]).
//!
//! Bounds, by construction:
//! - per connection, each direction is a ring of segments holding at most
//!   `capture_bytes` (the instance's key); a new segment evicts the oldest
//!   ones of its direction first, and the bytes evicted are remembered as a
//!   gap at the start of that direction (always a prefix: nothing is ever
//!   removed from the middle, so stream offsets stay exact);
//! - all captures together hold at most `capture_total_bytes` (the
//!   [`Captures`] budget); over it, the captures of closed connections go
//!   first, the oldest closed first, and only when open connections alone
//!   exceed it are the oldest segments of the largest open captures
//!   dropped, down to 1/16 below the budget (so that thousands of open
//!   captures over it are trimmed once in a while, not on every segment).
//!
//! What a segment costs is its bytes plus [`SEGMENT_OVERHEAD`], so a flood
//! of one-byte reads is bounded by the same numbers as bulk transfers.
//! Nothing is written to disk, nothing is logged, and nothing here is
//! exported in `/metrics`: captures may hold passwords and file contents.
//!
//! Not here: when to record (the data path calls [`ConnCapture::record`]
//! through its stats guard, see `stats::guard`) and HTTP.

pub mod decode;
pub mod pcapng;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::kind::{Proto, ServiceId};
use crate::sync::lock;

/// `capture_bytes` when unset: per connection, per direction.
pub const DEFAULT_CAPTURE_BYTES: usize = 64 * 1024;
/// `capture_total_bytes` when unset: all captures together.
pub const DEFAULT_TOTAL_BYTES: usize = 64 * 1024 * 1024;
/// What a segment costs beyond its bytes: its header and its allocation,
/// roughly, so that the budgets bound memory and not only payload.
pub const SEGMENT_OVERHEAD: usize = 32;

/// Closed captures kept at most, whatever they hold: one that holds
/// nothing (a connection that never sent a byte, a spoofed UDP source)
/// costs the budget nothing, so without this a connect flood would grow the
/// table for ever.
pub const MAX_CLOSED: usize = 10_000;

/// Which way bytes went, from our side of the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Received from the peer (the client).
    In,
    /// Sent to the peer.
    Out,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::In => 0,
            Dir::Out => 1,
        }
    }
}

/// One read or one write.
#[derive(Debug, Clone)]
struct Segment {
    /// Numbered across both directions, from 1: the order they happened
    /// in, and the cursor of the live view.
    seq: u64,
    /// Microseconds since the connection opened.
    t_us: u64,
    /// Where its first byte is in its direction's stream.
    offset: u64,
    bytes: Box<[u8]>,
}

impl Segment {
    fn cost(&self) -> usize {
        self.bytes.len() + SEGMENT_OVERHEAD
    }
}

/// One direction's ring.
#[derive(Debug, Default)]
struct Ring {
    segments: VecDeque<Segment>,
    /// What the ring's segments cost.
    held: usize,
    /// Bytes of this direction no longer held: all before the first
    /// segment held (or the whole stream so far when none is).
    dropped_bytes: u64,
    /// Segments dropped whole or in part.
    dropped_segments: u64,
    /// Bytes recorded in this direction, held or not: the stream's end.
    total: u64,
}

impl Ring {
    /// Drops the oldest segments until the ring costs at most `max`;
    /// returns what that freed.
    fn shrink_to(&mut self, max: usize) -> usize {
        let before = self.held;
        while self.held > max {
            let Some(old) = self.segments.pop_front() else {
                break;
            };
            self.held -= old.cost();
            self.dropped_segments += 1;
        }
        // The gap is everything before the first segment still held.
        self.dropped_bytes = self.segments.front().map_or(self.total, |s| s.offset);
        before - self.held
    }
}

#[derive(Debug, Default)]
struct State {
    rings: [Ring; 2],
    next_seq: u64,
    /// Microseconds since open at which the connection closed.
    closed_us: Option<u64>,
}

/// The capture of one connection or UDP peer.
#[derive(Debug)]
pub struct ConnCapture {
    id: u64,
    service: ServiceId,
    proto: Proto,
    peer: String,
    opened: Instant,
    opened_unix_us: u64,
    /// Each direction's bound, `capture_bytes`.
    cap: usize,
    /// Our side's address, when the service knows it.
    local: OnceLock<SocketAddr>,
    state: Mutex<State>,
}

/// A capture's identity and totals, for the list of captures.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureInfo {
    pub id: u64,
    pub service: ServiceId,
    pub proto: Proto,
    pub peer: String,
    pub opened_at_unix_us: u64,
    pub open: bool,
    /// What its segments cost now (bytes plus overhead).
    pub bytes_held: usize,
    /// Bytes recorded from the peer and to it, held or not.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes no longer held, per direction (the gap at its start).
    pub dropped_in: u64,
    pub dropped_out: u64,
}

/// A segment as copied out of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCopy {
    pub seq: u64,
    pub dir: Dir,
    pub t_us: u64,
    pub offset: u64,
    /// Bytes of its direction missing just before it (evicted): non-zero
    /// only on the first segment its direction still holds.
    pub gap_before: u64,
    pub bytes: Vec<u8>,
}

/// A capture copied out whole (or from a cursor on), oldest segment first.
#[derive(Debug, Clone)]
pub struct CaptureCopy {
    pub info: CaptureInfo,
    /// The peer's address, when it has one (not a unix-socket peer).
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    /// Microseconds since open at which it closed, if it has.
    pub closed_us: Option<u64>,
    pub segments: Vec<SegmentCopy>,
    /// Segments after the cursor left out to bound the copy: ask again
    /// from the last one's `seq`.
    pub more: bool,
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl ConnCapture {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn service(&self) -> &ServiceId {
        &self.service
    }

    /// Tells the capture our side's address (the first call wins).
    pub fn set_local(&self, addr: SocketAddr) {
        let _ = self.local.set(addr);
    }

    /// Records one read (`In`) or write (`Out`) of `bytes` as a segment,
    /// evicting the oldest of its direction beyond `capture_bytes`, and
    /// charges the budget of `store`. An empty one is not recorded.
    pub fn record(&self, store: &Captures, dir: Dir, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let t_us = micros(self.opened.elapsed());
        {
            let mut st = lock(&self.state);
            if st.closed_us.is_some() {
                return;
            }
            st.next_seq += 1;
            let seq = st.next_seq;
            let ring = &mut st.rings[dir.index()];
            // A segment larger than the whole ring keeps its tail: the
            // head joins the gap at the start, so offsets stay exact.
            let room = self.cap.saturating_sub(SEGMENT_OVERHEAD).max(1);
            let skip = bytes.len().saturating_sub(room);
            let segment = Segment {
                seq,
                t_us,
                offset: ring.total + skip as u64,
                bytes: bytes[skip..].into(),
            };
            ring.total += bytes.len() as u64;
            let added = segment.cost();
            ring.held += added;
            ring.segments.push_back(segment);
            let freed = ring.shrink_to(self.cap);
            if skip > 0 {
                ring.dropped_segments += 1;
                ring.dropped_bytes = ring.segments.front().map_or(ring.total, |s| s.offset);
            }
            // Charged while the capture is locked: an eviction subtracts
            // what it holds under the same lock, so the total never
            // counts a segment out before it was counted in.
            store.charge(added, freed);
        }
        if store.held() > store.budget() {
            store.enforce();
        }
    }

    /// What it holds and how it stands.
    pub fn info(&self) -> CaptureInfo {
        let st = lock(&self.state);
        self.info_of(&st)
    }

    fn info_of(&self, st: &State) -> CaptureInfo {
        let [i, o] = &st.rings;
        CaptureInfo {
            id: self.id,
            service: self.service.clone(),
            proto: self.proto,
            peer: self.peer.clone(),
            opened_at_unix_us: self.opened_unix_us,
            open: st.closed_us.is_none(),
            bytes_held: i.held + o.held,
            bytes_in: i.total,
            bytes_out: o.total,
            dropped_in: i.dropped_bytes,
            dropped_out: o.dropped_bytes,
        }
    }

    fn held(&self) -> usize {
        let st = lock(&self.state);
        st.rings[0].held + st.rings[1].held
    }

    /// The segments numbered above `since`, oldest first, in both
    /// directions, as many as fit in `max_bytes` of payload (at least one).
    pub fn copy(&self, since: u64, max_bytes: usize) -> CaptureCopy {
        let st = lock(&self.state);
        let mut all: Vec<(&Segment, Dir)> = st.rings[0]
            .segments
            .iter()
            .map(|s| (s, Dir::In))
            .chain(st.rings[1].segments.iter().map(|s| (s, Dir::Out)))
            .filter(|(s, _)| s.seq > since)
            .collect();
        all.sort_by_key(|(s, _)| s.seq);
        let firsts = [
            st.rings[0].segments.front().map(|s| s.seq),
            st.rings[1].segments.front().map(|s| s.seq),
        ];
        let mut segments = Vec::new();
        let mut budget = max_bytes;
        let mut more = false;
        for (s, dir) in all {
            if !segments.is_empty() && s.bytes.len() > budget {
                more = true;
                break;
            }
            budget = budget.saturating_sub(s.bytes.len());
            segments.push(SegmentCopy {
                seq: s.seq,
                dir,
                t_us: s.t_us,
                offset: s.offset,
                gap_before: if firsts[dir.index()] == Some(s.seq) {
                    s.offset
                } else {
                    0
                },
                bytes: s.bytes.to_vec(),
            });
        }
        CaptureCopy {
            info: self.info_of(&st),
            client: self.peer.parse().ok(),
            server: self.local.get().copied(),
            closed_us: st.closed_us,
            segments,
            more,
        }
    }
}

/// Every capture, and the budget they share. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Captures {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    budget: AtomicUsize,
    /// What all captures cost now; checked against the budget after each
    /// segment without a lock.
    held: AtomicUsize,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// Open and retained closed captures by connection id (oldest first).
    all: BTreeMap<u64, Arc<ConnCapture>>,
    /// Closed captures still held, the oldest closed first: the first to
    /// go when the budget is exceeded.
    closed: VecDeque<u64>,
}

impl Default for Captures {
    fn default() -> Self {
        Captures::new(DEFAULT_TOTAL_BYTES)
    }
}

impl Captures {
    /// An empty store whose captures hold at most `budget` together.
    pub fn new(budget: usize) -> Self {
        Captures {
            inner: Arc::new(StoreInner {
                budget: AtomicUsize::new(budget),
                held: AtomicUsize::new(0),
                table: Mutex::new(Table::default()),
            }),
        }
    }

    /// Changes the budget (`capture_total_bytes`), evicting at once if the
    /// captures now exceed it.
    pub fn set_budget(&self, budget: usize) {
        self.inner.budget.store(budget, Relaxed);
        self.enforce();
    }

    pub fn budget(&self) -> usize {
        self.inner.budget.load(Relaxed)
    }

    /// What all captures cost now.
    pub fn held(&self) -> usize {
        self.inner.held.load(Relaxed)
    }

    /// Starts the capture of connection `id`; each direction holds at most
    /// `cap` bytes (with the per-segment overhead).
    pub fn open(
        &self,
        id: u64,
        service: &ServiceId,
        proto: Proto,
        peer: &str,
        cap: usize,
    ) -> Arc<ConnCapture> {
        let capture = Arc::new(ConnCapture {
            id,
            service: service.clone(),
            proto,
            peer: peer.to_owned(),
            opened: Instant::now(),
            opened_unix_us: unix_us(),
            cap,
            local: OnceLock::new(),
            state: Mutex::new(State::default()),
        });
        lock(&self.inner.table).all.insert(id, Arc::clone(&capture));
        capture
    }

    /// Marks `capture`'s connection closed: it stops recording and is kept,
    /// while within the budget, for the view and the export.
    pub fn close(&self, capture: &ConnCapture) {
        {
            let mut st = lock(&capture.state);
            if st.closed_us.is_some() {
                return;
            }
            st.closed_us = Some(micros(capture.opened.elapsed()));
        }
        let mut table = lock(&self.inner.table);
        if table.all.contains_key(&capture.id) {
            table.closed.push_back(capture.id);
        }
        while table.closed.len() > MAX_CLOSED {
            let Some(id) = table.closed.pop_front() else {
                break;
            };
            self.forget(&mut table, id);
        }
        drop(table);
        self.enforce();
    }

    /// The capture of connection `id`, open or retained.
    pub fn get(&self, id: u64) -> Option<Arc<ConnCapture>> {
        lock(&self.inner.table).all.get(&id).cloned()
    }

    /// Every capture held, oldest connection first.
    pub fn list(&self) -> Vec<Arc<ConnCapture>> {
        lock(&self.inner.table).all.values().cloned().collect()
    }

    /// Every capture held of instance `name`, oldest first.
    pub fn of_service(&self, name: &str) -> Vec<Arc<ConnCapture>> {
        lock(&self.inner.table)
            .all
            .values()
            .filter(|c| c.service.name() == name)
            .cloned()
            .collect()
    }

    /// Drops closed capture `id` from the table, giving back what it held.
    fn forget(&self, table: &mut Table, id: u64) {
        if let Some(gone) = table.all.remove(&id) {
            let st = lock(&gone.state);
            self.inner
                .held
                .fetch_sub(st.rings[0].held + st.rings[1].held, Relaxed);
        }
    }

    /// Accounts a segment added and what its ring dropped to make room.
    fn charge(&self, added: usize, freed: usize) {
        if added >= freed {
            self.inner.held.fetch_add(added - freed, Relaxed);
        } else {
            self.inner.held.fetch_sub(freed - added, Relaxed);
        }
    }

    /// Brings what the captures hold within the budget: closed captures
    /// first (the oldest closed first), then the oldest segments of the
    /// largest open captures, down to the low-water mark.
    fn enforce(&self) {
        let budget = self.budget();
        let mut table = lock(&self.inner.table);
        while self.held() > budget {
            let Some(id) = table.closed.pop_front() else {
                break;
            };
            self.forget(&mut table, id);
        }
        if self.held() <= budget {
            return;
        }
        // Only open captures are left. Trimmed down to a low-water mark
        // (1/16 below the budget), largest first, from one scan: with
        // thousands of captures over the budget, a trim then pays for
        // many segments to come rather than running on each one.
        let low = budget - budget / 16;
        let mut by_size: Vec<(usize, Arc<ConnCapture>)> = table
            .all
            .values()
            .map(|c| (c.held(), Arc::clone(c)))
            .collect();
        by_size.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        for (_, capture) in by_size {
            let held = self.held();
            if held <= low {
                break;
            }
            let excess = held - low;
            let mut st = lock(&capture.state);
            let [i, o] = &st.rings;
            // Its older direction's oldest segments first.
            let older_first = match (i.segments.front(), o.segments.front()) {
                (Some(a), Some(b)) if b.seq < a.seq => [1, 0],
                _ => [0, 1],
            };
            let mut freed = 0;
            for k in older_first {
                if freed >= excess {
                    break;
                }
                let ring = &mut st.rings[k];
                let target = ring.held.saturating_sub(excess - freed);
                freed += ring.shrink_to(target);
            }
            self.inner.held.fetch_sub(freed, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests;
