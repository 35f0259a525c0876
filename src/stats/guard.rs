//! The connection guard: the data path counts bytes on it with atomics, and
//! dropping it removes the connection from the registry.

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

    /// Counts bytes received from the peer. Lock-free.
    pub fn add_in(&self, n: usize) {
        self.add_exchange(n, 0);
    }

    /// Counts bytes sent to the peer. Lock-free.
    pub fn add_out(&self, n: usize) {
        self.add_exchange(0, n);
    }

    /// Counts bytes both ways with one clock read (an echo round trip
    /// counts its request and reply at once). Lock-free; a zero side is
    /// not touched.
    pub fn add_exchange(&self, received: usize, sent: usize) {
        let counters = &self.entry.service.counters;
        if received > 0 {
            self.entry.bytes_in.fetch_add(received as u64, Relaxed);
            counters.bytes_in.fetch_add(received as u64, Relaxed);
        }
        if sent > 0 {
            self.entry.bytes_out.fetch_add(sent as u64, Relaxed);
            counters.bytes_out.fetch_add(sent as u64, Relaxed);
        }
        self.touch();
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

    /// Time since the last byte either way.
    pub fn idle_for(&self) -> Duration {
        let last = self.entry.last_activity_ms.load(Relaxed);
        Duration::from_millis(self.stats.now_ms().saturating_sub(last))
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let e = &self.entry;
        lock(&self.stats.inner.conns).remove(&e.id);
        e.service.counters.active.fetch_sub(1, Relaxed);
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
