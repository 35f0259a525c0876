//! The connection guard: the data path counts bytes on it with atomics, and
//! dropping it removes the connection from the registry.
//!
//! The counting is [`ByteCounter`]'s, which a guard derefs to (and hands
//! out to stream wrappers). Where the data path has the bytes themselves,
//! it reports them through [`ByteCounter::received`] /
//! [`ByteCounter::sent`]: they count, and a captured connection also
//! records them for the wire inspector. An uncaptured one pays one branch on a
//! field that never changes, no lock and no allocation.

use super::*;

impl ConnGuard {
    pub fn id(&self) -> u64 {
        self.entry.id
    }

    pub fn service(&self) -> &ServiceId {
        &self.entry.service.id
    }

    pub fn peer(&self) -> &str {
        &self.entry.peer
    }

    /// Tells the capture, if any, our side's address (for the export).
    pub fn set_capture_local(&self, addr: std::net::SocketAddr) {
        if let Some(c) = &self.entry.capture {
            c.set_local(addr);
        }
    }

    /// A handle that counts this connection's bytes from inside a stream
    /// (see [`ByteCounter`]); it does not keep the connection registered.
    pub fn counter(&self) -> ByteCounter {
        self.counter.clone()
    }

    /// Fires when someone asks for this connection to be closed
    /// ([`Stats::close`]); the service's connection loop watches it.
    pub fn close_requested(&self) -> CancellationToken {
        self.entry.close.clone()
    }

    /// Marks the connection active now.
    pub fn touch(&self) {
        self.entry
            .last_activity_ms
            .store(self.stats.now_ms(), Relaxed);
    }
}

/// The guard counts through its counter: `conn.add_in(n)`, `conn.sent(b)`.
impl std::ops::Deref for ConnGuard {
    type Target = ByteCounter;

    fn deref(&self) -> &ByteCounter {
        &self.counter
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let e = &self.entry;
        lock(&self.stats.inner.conns).remove(&e.id);
        e.service.counters.active.fetch_sub(1, Relaxed);
        if let Some(c) = &e.capture {
            self.stats.inner.captures.close(c);
        }
        self.stats.emit(EventKind::Closed {
            id: e.id,
            service: e.service.id.clone(),
            peer: e.peer.clone(),
            bytes_in: e.bytes_in.load(Relaxed),
            bytes_out: e.bytes_out.load(Relaxed),
            duration_ms: millis(e.opened.elapsed()),
        });
    }
}

/// Counts a connection's bytes where they cross the socket: a stream
/// wrapper holds one, so framing and handshakes count as well as payload.
#[derive(Clone)]
pub struct ByteCounter {
    pub(super) stats: Stats,
    pub(super) entry: Arc<ConnEntry>,
}

impl ByteCounter {
    /// Whether the peer has sent a byte the service read (after TLS, if
    /// any): a connection that has not is still in its handshake, and is
    /// the first a full service closes (see `service::evict`).
    pub fn has_received(&self) -> bool {
        self.entry.bytes_in.load(Relaxed) > 0
    }

    /// Counts bytes received from the peer. Lock-free.
    pub fn add_in(&self, n: usize) {
        count(&self.stats, &self.entry, n, 0);
    }

    /// Counts bytes sent to the peer. Lock-free.
    pub fn add_out(&self, n: usize) {
        count(&self.stats, &self.entry, 0, n);
    }

    /// Counts bytes both ways with one clock read (an echo round trip
    /// counts its request and reply at once). Lock-free; a zero side is
    /// not touched.
    pub fn add_exchange(&self, received: usize, sent: usize) {
        count(&self.stats, &self.entry, received, sent);
    }

    /// Counts `bytes` received from the peer, and records them when the
    /// connection is captured.
    pub fn received(&self, bytes: &[u8]) {
        count(&self.stats, &self.entry, bytes.len(), 0);
        record(&self.stats, &self.entry, crate::capture::Dir::In, bytes);
    }

    /// Counts `bytes` sent to the peer, and records them when captured.
    pub fn sent(&self, bytes: &[u8]) {
        count(&self.stats, &self.entry, 0, bytes.len());
        record(&self.stats, &self.entry, crate::capture::Dir::Out, bytes);
    }

    /// Whether this connection records its bytes: a path that moves bytes
    /// without seeing them (splice) must not be taken then.
    pub fn capturing(&self) -> bool {
        self.entry.capture.is_some()
    }
}

/// Records `bytes` on the connection's capture, if it has one and its
/// instance still captures. The uncaptured path is the one branch.
#[inline]
fn record(stats: &Stats, entry: &ConnEntry, dir: crate::capture::Dir, bytes: &[u8]) {
    if let Some(c) = &entry.capture
        && entry.service.capture_on.load(Relaxed)
    {
        c.record(&stats.inner.captures, dir, bytes);
    }
}

/// Adds to a connection's and its service's byte counters (a zero side is
/// not touched) and marks the connection active. Lock-free.
fn count(stats: &Stats, entry: &ConnEntry, received: usize, sent: usize) {
    let counters = &entry.service.counters;
    if received > 0 {
        entry.bytes_in.fetch_add(received as u64, Relaxed);
        counters.bytes_in.fetch_add(received as u64, Relaxed);
    }
    if sent > 0 {
        entry.bytes_out.fetch_add(sent as u64, Relaxed);
        counters.bytes_out.fetch_add(sent as u64, Relaxed);
    }
    entry.last_activity_ms.store(stats.now_ms(), Relaxed);
}
