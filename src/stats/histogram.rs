//! The one duration histogram: lock-free (one atomic add per bucket hit,
//! plus the count, the sum and a rarely written maximum), fixed size, any
//! number of writers. Two bucket layouts share it:
//!
//! - [`Buckets::Bounds`]: a few fixed upper bounds, read as cumulative
//!   Prometheus buckets ([`Histogram::durations`], the `/metrics`
//!   histograms of commands, uploads and requests, about 100 bytes each);
//! - [`Buckets::LogLinear`]: exact below 128 ns, then every power of two cut
//!   into 64 equal buckets, for quantiles with under 1.6 % error
//!   ([`Histogram::latencies`], `switchboard bench`, about 30 KiB).
//!
//! Not here: rendering (`web::metrics` writes Prometheus text, `bench`
//! its report).

use super::*;

/// Upper bounds (seconds) of the duration histograms' buckets, besides
/// `+Inf`: 5 ms to 10 s, the range of a command, an upload or a request.
/// These are the `le` labels `/metrics` shows.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// [`DURATION_BUCKETS`] in nanoseconds, what observations are compared
/// with (a test checks the two agree).
const DURATION_BOUNDS_NS: [u64; DURATION_BUCKETS.len()] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Log-linear: sub-buckets per power of two.
const SUB: u64 = 64;
/// Log-linear: values below this have a bucket each.
const EXACT: u64 = 2 * SUB;
/// Log-linear: buckets for every `u64` value.
const LOG_LINEAR_BUCKETS: usize = ((64 - 6) * SUB + SUB) as usize;

/// How observed values (nanoseconds) map to buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buckets {
    /// One bucket per inclusive upper bound (ascending), then `+Inf`.
    Bounds(&'static [u64]),
    /// Exact below 128 ns, then 64 equal buckets per power of two.
    LogLinear,
}

impl Buckets {
    fn len(self) -> usize {
        match self {
            Buckets::Bounds(bounds) => bounds.len() + 1,
            Buckets::LogLinear => LOG_LINEAR_BUCKETS,
        }
    }

    fn index(self, ns: u64) -> usize {
        match self {
            Buckets::Bounds(bounds) => bounds
                .iter()
                .position(|&bound| ns <= bound)
                .unwrap_or(bounds.len()),
            Buckets::LogLinear => log_linear_index(ns),
        }
    }

    /// The smallest value of bucket `i` (for quantiles).
    fn lower(self, i: usize) -> u64 {
        match self {
            Buckets::Bounds(bounds) => match i.checked_sub(1) {
                None => 0,
                Some(below) => bounds.get(below).map_or(u64::MAX, |b| b.saturating_add(1)),
            },
            Buckets::LogLinear => log_linear_lower(i),
        }
    }
}

fn log_linear_index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let exp = 63 - u64::from(v.leading_zeros()); // >= 7
    let top = v >> (exp - 6); // 64..128
    ((exp - 6) * SUB + top) as usize
}

fn log_linear_lower(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let exp = i / SUB + 5;
    let top = i % SUB + SUB;
    top << (exp - 6)
}

/// Durations counted into [`Buckets`].
pub struct Histogram {
    buckets: Buckets,
    /// Per bucket, not cumulative.
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    /// Wraps after 584 years of summed durations, which nothing here
    /// reaches.
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

/// A [`Histogram::durations`] histogram's values at one moment, as
/// Prometheus wants them.
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

impl Default for Histogram {
    /// [`Histogram::durations`].
    fn default() -> Self {
        Histogram::durations()
    }
}

impl Histogram {
    pub fn new(buckets: Buckets) -> Histogram {
        Histogram {
            buckets,
            counts: (0..buckets.len()).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    /// With [`DURATION_BUCKETS`], for `/metrics`.
    pub fn durations() -> Histogram {
        Histogram::new(Buckets::Bounds(&DURATION_BOUNDS_NS))
    }

    /// Log-linear, for quantiles ([`Histogram::quantile_ns`]).
    pub fn latencies() -> Histogram {
        Histogram::new(Buckets::LogLinear)
    }

    pub fn observe(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.counts[self.buckets.index(ns)].fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        // A new maximum is rare: read first rather than write every time.
        if ns > self.max_ns.load(Relaxed) {
            self.max_ns.fetch_max(ns, Relaxed);
        }
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.total.load(Relaxed)
    }

    /// The sum of every observation, in nanoseconds.
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns.load(Relaxed)
    }

    /// The largest observation, in nanoseconds.
    pub fn max_ns(&self) -> u64 {
        self.max_ns.load(Relaxed)
    }

    /// The cumulative counts of a [`Histogram::durations`] histogram and
    /// its sum. Not one atomic read: a value recorded meanwhile may show in
    /// a bucket and not yet in the sum, which a scrape tolerates (the next
    /// one agrees). Another layout's counts are not Prometheus buckets: its
    /// snapshot is empty.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut snap = HistogramSnapshot::default();
        if self.buckets != Buckets::Bounds(&DURATION_BOUNDS_NS) {
            return snap;
        }
        let mut running = 0u64;
        for (out, count) in snap.cumulative.iter_mut().zip(self.counts.iter()) {
            running = running.saturating_add(count.load(Relaxed));
            *out = running;
        }
        snap.sum_seconds = self.sum_ns() as f64 / 1e9;
        snap
    }

    /// The value at quantile `q` (0..=1) in nanoseconds: the middle of its
    /// bucket, never above the largest value seen (which the top rank is).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let max = self.max_ns();
        if rank == total {
            return max;
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Relaxed);
            if seen >= rank {
                let (lo, hi) = (self.buckets.lower(i), self.buckets.lower(i + 1));
                return (lo + (hi.saturating_sub(lo)) / 2).min(max);
            }
        }
        max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_linear_buckets_are_contiguous_and_ordered() {
        for i in 0..LOG_LINEAR_BUCKETS - 1 {
            assert!(log_linear_lower(i) < log_linear_lower(i + 1), "bucket {i}");
            assert_eq!(log_linear_index(log_linear_lower(i)), i, "bucket {i}");
            assert_eq!(
                log_linear_index(log_linear_lower(i + 1) - 1),
                i,
                "end of bucket {i}"
            );
        }
        assert_eq!(log_linear_index(u64::MAX), LOG_LINEAR_BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_two_percent() {
        let h = Histogram::latencies();
        for us in 1..=10_000u64 {
            h.observe(Duration::from_micros(us));
        }
        for (q, want) in [(0.5, 5_000_000.0), (0.9, 9_000_000.0), (0.99, 9_900_000.0)] {
            let got = h.quantile_ns(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max_ns(), 10_000_000);
        assert_eq!(h.sum_ns(), 50_005_000_000);
    }

    #[test]
    fn empty_and_single_values() {
        let h = Histogram::latencies();
        assert_eq!(h.quantile_ns(0.99), 0);
        h.observe(Duration::from_nanos(37));
        assert_eq!(h.quantile_ns(0.5), 37);
        h.observe(Duration::from_secs(3600));
        assert_eq!(h.quantile_ns(1.0), 3_600_000_000_000);
    }

    #[test]
    fn duration_bounds_are_the_labels_in_nanoseconds_and_inclusive() {
        for (ns, secs) in DURATION_BOUNDS_NS.iter().zip(DURATION_BUCKETS) {
            assert_eq!(*ns as f64 / 1e9, secs);
        }
        let h = Histogram::durations();
        h.observe(Duration::from_millis(5)); // on the bound: that bucket
        h.observe(Duration::from_nanos(5_000_001)); // just above: the next
        h.observe(Duration::from_secs(11)); // +Inf
        let snap = h.snapshot();
        assert_eq!(snap.cumulative[..3], [1, 2, 2]);
        assert_eq!(snap.count(), 3);
        assert_eq!(snap.sum_seconds, 11.010000001);
        // A latency histogram has no Prometheus buckets to show.
        assert_eq!(
            Histogram::latencies().snapshot(),
            HistogramSnapshot::default()
        );
    }
}
