//! Failed sign-ins per peer address, for the `login` service and the
//! dashboard alike: a token bucket per address, in a table of bounded size.
//! It only counts; the caller decides what a failure is and what to answer.
//! The key is an address by default; the dashboard's WebSocket relay keys
//! the same buckets by session to count messages. [`TokenBucket`] is the
//! one token bucket; UDP services rate their peers with it too.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Peers whose failures are remembered; beyond it the fullest buckets go.
const MAX_TRACKED: usize = 4096;

/// A token bucket: `rate` tokens a second, at most `burst` saved up,
/// starting full. The one home of the rule (UDP peers' rates, failed
/// sign-ins, the relay's messages).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            tokens: burst,
            last: now,
            rate,
            burst,
        }
    }

    /// The tokens there at `now`: saved plus refilled, at most `burst`.
    pub fn available(&self, now: Instant) -> f64 {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        (self.tokens + refill).min(self.burst)
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let tokens = self.available(now);
        self.last = now;
        let ok = tokens >= 1.0;
        self.tokens = if ok { tokens - 1.0 } else { tokens };
        ok
    }

    /// Takes a token whether or not one is there (never below zero): what
    /// happened counts even when it was let through.
    pub fn spend(&mut self, now: Instant) {
        self.tokens = (self.available(now) - 1.0).max(0.0);
        self.last = now;
    }

    /// How long until a token is there; zero when one is.
    pub fn wait(&self, now: Instant) -> Duration {
        let tokens = self.available(now);
        if tokens >= 1.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64((1.0 - tokens) / self.rate).unwrap_or(Duration::MAX)
    }

    /// When it was last taken from.
    pub fn last(&self) -> Instant {
        self.last
    }
}

/// Failures per peer address (or other key): a [`TokenBucket`] of
/// `per_minute` tokens, refilled continuously at that rate.
pub struct FailureLimit<K = IpAddr> {
    per_minute: f64,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq + Copy> FailureLimit<K> {
    pub fn per_minute(per_minute: u32) -> Self {
        FailureLimit {
            per_minute: f64::from(per_minute),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when `ip` has no failures left for now.
    pub fn check(&self, ip: K) -> Result<(), Duration> {
        let buckets = crate::sync::lock(&self.buckets);
        let Some(bucket) = buckets.get(&ip) else {
            return Ok(());
        };
        match bucket.wait(Instant::now()) {
            Duration::ZERO => Ok(()),
            wait => Err(wait),
        }
    }

    /// Takes one token from `ip`.
    pub fn charge(&self, ip: K) {
        let now = Instant::now();
        let mut buckets = crate::sync::lock(&self.buckets);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            // Forget the peers that have recovered; if none has, the oldest.
            buckets.retain(|_, b| now.duration_since(b.last()) < Duration::from_secs(60));
            if buckets.len() >= MAX_TRACKED
                && let Some(oldest) = buckets
                    .iter()
                    .min_by_key(|(_, b)| b.last())
                    .map(|(k, _)| *k)
            {
                buckets.remove(&oldest);
            }
        }
        buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(self.per_minute / 60.0, self.per_minute, now))
            .spend(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_run_out_and_come_back() {
        let f = FailureLimit::per_minute(3);
        let ip = IpAddr::from([10, 0, 0, 1]);
        let other = IpAddr::from([10, 0, 0, 2]);
        for _ in 0..3 {
            assert!(f.check(ip).is_ok());
            f.charge(ip);
        }
        let wait = f.check(ip).unwrap_err();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(f.check(other).is_ok(), "other peers are unaffected");
        // Pretend 20 s passed: one failure allowed again.
        let mut b = f.buckets.lock().unwrap();
        let e = b.get_mut(&ip).unwrap();
        e.last -= Duration::from_secs(20);
        drop(b);
        assert!(f.check(ip).is_ok());
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let f = FailureLimit::per_minute(5);
        for i in 0..(MAX_TRACKED as u32 + 100) {
            f.charge(IpAddr::from(i.to_be_bytes()));
        }
        assert!(f.buckets.lock().unwrap().len() <= MAX_TRACKED);
    }

    #[test]
    fn token_bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 3.0, t0);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert_eq!(b.wait(t0), Duration::from_millis(100));
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(100)));
        // A long pause saves up no more than the burst.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.take(later)));
        assert!(!b.take(later));
        b.spend(later);
        assert_eq!(b.available(later), 0.0, "spending never goes below zero");
    }
}
