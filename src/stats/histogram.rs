//! Duration histograms: one atomic add per observation, read as
//! cumulative Prometheus buckets.

use super::*;

/// Upper bounds (seconds) of the duration histograms' buckets, besides
/// `+Inf`: 5 ms to 10 s, the range of a command, an upload or a request.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A duration histogram with [`DURATION_BUCKETS`]: recording is one
/// atomic add per bucket hit plus one for the sum, no lock.
#[derive(Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last is `+Inf`.
    counts: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// A histogram's values at one moment, as Prometheus wants them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts, one per [`DURATION_BUCKETS`] bound, then `+Inf`.
    pub cumulative: [u64; DURATION_BUCKETS.len() + 1],
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.cumulative[DURATION_BUCKETS.len()]
    }
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.counts[i].fetch_add(1, Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    /// The cumulative counts and the sum. Not one atomic read: a value
    /// recorded meanwhile may show in a bucket and not yet in the sum,
    /// which a scrape tolerates (the next one agrees).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut snap = HistogramSnapshot::default();
        let mut running = 0u64;
        for (out, count) in snap.cumulative.iter_mut().zip(&self.counts) {
            running = running.saturating_add(count.load(Relaxed));
            *out = running;
        }
        snap.sum_seconds = self.sum_micros.load(Relaxed) as f64 / 1e6;
        snap
    }
}
