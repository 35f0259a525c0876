//! Reading the registry: an instance's totals, snapshots of what is live,
//! and the per-second history with the loop that samples it.
//!
//! Not here: counting (the guards and `Stats`'s recording methods in
//! `stats.rs`), or how a page or `/metrics` shows what is read.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::tiers::{self, Bucket, Downsampled, Tier};
use super::{
    ConnEntry, ConnInfo, HISTORY_LEN, History, Sample, ServiceTotals, Snapshot, Stats, SvcEntry,
    millis, unix_ms,
};
use crate::kind::{ServiceId, ServiceKind};
use crate::sync::lock;

impl Stats {
    /// The totals of instance `name` (zero for one never registered).
    pub fn totals(&self, name: impl AsRef<str>) -> ServiceTotals {
        match self.find(name.as_ref()) {
            Some(e) => totals_of(&e),
            // Asking registers nothing: an unknown name reads as all zeros.
            None => ServiceTotals {
                service: ServiceId::new(name.as_ref(), ServiceKind::Echo),
                accepted: 0,
                active: 0,
                refused: 0,
                errors: 0,
                auth_failures: 0,
                bytes_in: 0,
                bytes_out: 0,
            },
        }
    }

    /// Copies everything live.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_newest(usize::MAX).0
    }

    /// Copies the services' totals and only the newest `limit` connections
    /// (oldest first, as [`Stats::snapshot`]), with the number open in all.
    /// The registry's lock is held only while the newest are picked, so with
    /// 100,000 open a page or `/metrics` neither copies them all nor holds
    /// up connections opening and closing.
    pub fn snapshot_newest(&self, limit: usize) -> (Snapshot, usize) {
        let now_ms = self.now_ms();
        let (entries, total): (Vec<Arc<ConnEntry>>, usize) = {
            let conns = lock(&self.inner.conns);
            let mut newest: Vec<_> = conns.values().rev().take(limit).cloned().collect();
            newest.reverse();
            (newest, conns.len())
        };
        let connections = entries
            .iter()
            .map(|e| {
                let last = e.last_activity_ms.load(Relaxed);
                ConnInfo {
                    id: e.id,
                    service: e.service.id.clone(),
                    proto: e.proto,
                    peer: e.peer.clone(),
                    opened_at_unix_ms: e.opened_unix_ms,
                    age_ms: millis(e.opened.elapsed()),
                    bytes_in: e.bytes_in.load(Relaxed),
                    bytes_out: e.bytes_out.load(Relaxed),
                    last_activity_unix_ms: self.unix_from_ms(last),
                    idle_ms: now_ms.saturating_sub(last),
                }
            })
            .collect();
        let snapshot = Snapshot {
            at_unix_ms: unix_ms(SystemTime::now()),
            services: self.entries().iter().map(|e| totals_of(e)).collect(),
            connections,
        };
        (snapshot, total)
    }

    /// Appends one history sample per service: the bytes and accepts since
    /// the previous sample, folded into the longer tiers too. [`Stats::run`]
    /// calls it every second. A retired (removed) instance only moves its
    /// baseline, so one registered again starts from zero, not a jump.
    pub fn sample(&self) {
        let at_unix_s = unix_ms(SystemTime::now()) / 1000;
        for entry in self.entries() {
            // The lock first: `carry_in` raises the totals and this
            // baseline together under it.
            let mut history = lock(&entry.history);
            let t = totals_of(&entry);
            let History {
                last,
                samples,
                tiers,
            } = &mut *history;
            let (last_in, last_out, last_acc) = *last;
            *last = (t.bytes_in, t.bytes_out, t.accepted);
            if entry.retired.load(Relaxed) {
                continue;
            }
            let sample = Sample {
                at_unix_s,
                bytes_in: t.bytes_in - last_in,
                bytes_out: t.bytes_out - last_out,
                accepted: t.accepted - last_acc,
                active: t.active,
            };
            if samples.capacity() == 0 {
                // Its full size once, so it never grows past it.
                samples.reserve_exact(HISTORY_LEN);
            }
            if samples.len() == HISTORY_LEN {
                samples.pop_front();
            }
            samples.push_back(sample);
            tiers.push(&sample);
        }
        self.inner.version.send_modify(|v| *v += 1);
    }

    /// Drops the history of a removed instance and stops sampling it (its
    /// totals stay, as `/metrics` counters must not go back).
    pub fn retire(&self, id: &ServiceId) {
        if let Some(e) = self.find(id.name()) {
            e.retired.store(true, Relaxed);
            let mut h = lock(&e.history);
            h.samples = std::collections::VecDeque::new();
            h.tiers = Downsampled::default();
        }
    }

    /// Instance `name`'s traffic in `tier`'s buckets from `from_unix_s`
    /// on, oldest first; the newest (still filling) bucket last. The
    /// one-second tier is its samples, one bucket each.
    pub fn buckets(&self, name: impl AsRef<str>, tier: Tier, from_unix_s: u64) -> Vec<Bucket> {
        let Some(e) = self.find(name.as_ref()) else {
            return Vec::new();
        };
        let h = lock(&e.history);
        if tier == tiers::SECONDS {
            return h
                .samples
                .iter()
                .filter(|s| s.at_unix_s >= from_unix_s)
                .map(Bucket::of)
                .collect();
        }
        h.tiers.buckets(tier, from_unix_s)
    }

    /// The last [`HISTORY_LEN`] samples of one service, oldest first.
    pub fn history(&self, name: impl AsRef<str>) -> Vec<Sample> {
        self.find(name.as_ref())
            .map(|e| lock(&e.history).samples.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The newest history sample of one service.
    pub fn last_sample(&self, name: impl AsRef<str>) -> Option<Sample> {
        self.find(name.as_ref())
            .and_then(|e| lock(&e.history).samples.back().copied())
    }

    /// Samples the history once a second until cancelled.
    pub async fn run(self, cancel: CancellationToken) {
        // Ticked by the clock thread: no timer on the runtime serving connections.
        let tick = crate::clock::every(Duration::from_secs(1));
        while cancel.run_until_cancelled(tick.tick()).await.is_some() {
            self.sample();
        }
    }
}

pub(super) fn totals_of(e: &SvcEntry) -> ServiceTotals {
    let c = &e.counters;
    ServiceTotals {
        service: e.id.clone(),
        accepted: c.accepted.load(Relaxed),
        active: c.active.load(Relaxed),
        refused: c.refused.load(Relaxed),
        errors: c.errors.load(Relaxed),
        auth_failures: c.auth_failures.load(Relaxed),
        bytes_in: c.bytes_in.load(Relaxed),
        bytes_out: c.bytes_out.load(Relaxed),
    }
}
