//! A lock-free log-linear latency histogram: fixed size (about 30 KiB), any
//! number of writers, values in nanoseconds with under 1.6 % error.
//!
//! Values below 128 ns have a bucket each; above, every power of two is cut
//! into 64 equal buckets.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::Latency;

/// Sub-buckets per power of two.
const SUB: u64 = 64;
/// Exact buckets below this.
const EXACT: u64 = 2 * SUB;
/// Buckets for every `u64` value.
const BUCKETS: usize = ((64 - 6) * SUB + SUB) as usize;

pub struct Histogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let exp = 63 - u64::from(v.leading_zeros()); // >= 7
    let top = v >> (exp - 6); // 64..128
    ((exp - 6) * SUB + top) as usize
}

/// The smallest value of bucket `i`.
fn lower(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let exp = i / SUB + 5;
    let top = i % SUB + SUB;
    top << (exp - 6)
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[index(ns)].fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        // A new maximum is rare: read first rather than write every time.
        if ns > self.max_ns.load(Relaxed) {
            self.max_ns.fetch_max(ns, Relaxed);
        }
    }

    pub fn count(&self) -> u64 {
        self.total.load(Relaxed)
    }

    /// The value at quantile `q` (0..=1) in nanoseconds: the middle of its
    /// bucket, never above the largest value seen (which the top rank is).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        if rank == total {
            return self.max_ns.load(Relaxed);
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Relaxed);
            if seen >= rank {
                let (lo, hi) = (lower(i), lower(i + 1));
                return (lo + (hi - lo) / 2).min(self.max_ns.load(Relaxed));
            }
        }
        self.max_ns.load(Relaxed)
    }

    pub fn latency(&self) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        let n = self.count();
        Latency {
            p50_us: us(self.quantile_ns(0.50)),
            p90_us: us(self.quantile_ns(0.90)),
            p99_us: us(self.quantile_ns(0.99)),
            max_us: us(self.max_ns.load(Relaxed)),
            mean_us: if n == 0 {
                0.0
            } else {
                us(self.sum_ns.load(Relaxed)) / n as f64
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        for i in 0..BUCKETS - 1 {
            assert!(lower(i) < lower(i + 1), "bucket {i}");
            assert_eq!(index(lower(i)), i, "bucket {i}");
            assert_eq!(index(lower(i + 1) - 1), i, "end of bucket {i}");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_two_percent() {
        let h = Histogram::new();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        for (q, want) in [(0.5, 5_000_000.0), (0.9, 9_000_000.0), (0.99, 9_900_000.0)] {
            let got = h.quantile_ns(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        let l = h.latency();
        assert_eq!(l.max_us, 10_000.0);
        assert!((l.mean_us - 5000.5).abs() < 0.01, "{}", l.mean_us);
    }

    #[test]
    fn empty_and_single_values() {
        let h = Histogram::new();
        assert_eq!(h.quantile_ns(0.99), 0);
        h.record(Duration::from_nanos(37));
        assert_eq!(h.quantile_ns(0.5), 37);
        h.record(Duration::from_secs(3600));
        assert_eq!(h.quantile_ns(1.0), 3_600_000_000_000);
    }
}
