//! Failed sign-ins per peer address, for the `login` service and the
//! dashboard alike: a token bucket per address, in a table of bounded size.
//! It only counts; the caller decides what a failure is and what to answer.
//! The key is an address by default; the dashboard's WebSocket relay keys
//! the same buckets by session to count messages.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Peers whose failures are remembered; beyond it the fullest buckets go.
const MAX_TRACKED: usize = 4096;

/// Failures per peer address (or other key): a token bucket of
/// `per_minute` tokens, refilled continuously at that rate.
pub struct FailureLimit<K = IpAddr> {
    per_minute: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Copy> FailureLimit<K> {
    pub fn per_minute(per_minute: u32) -> Self {
        FailureLimit {
            per_minute: f64::from(per_minute),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn tokens(&self, entry: (f64, Instant), now: Instant) -> f64 {
        let refill = now.duration_since(entry.1).as_secs_f64() * self.per_minute / 60.0;
        (entry.0 + refill).min(self.per_minute)
    }

    /// `Err(wait)` when `ip` has no failures left for now.
    pub fn check(&self, ip: K) -> Result<(), Duration> {
        let buckets = crate::sync::lock(&self.buckets);
        let Some(&entry) = buckets.get(&ip) else {
            return Ok(());
        };
        let tokens = self.tokens(entry, Instant::now());
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - tokens) * 60.0 / self.per_minute,
            ))
        }
    }

    /// Takes one token from `ip`.
    pub fn charge(&self, ip: K) {
        let now = Instant::now();
        let mut buckets = crate::sync::lock(&self.buckets);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            // Forget the peers that have recovered; if none has, the oldest.
            buckets.retain(|_, e| now.duration_since(e.1) < Duration::from_secs(60));
            if buckets.len() >= MAX_TRACKED
                && let Some(oldest) = buckets.iter().min_by_key(|(_, e)| e.1).map(|(k, _)| *k)
            {
                buckets.remove(&oldest);
            }
        }
        let tokens = match buckets.get(&ip) {
            Some(&entry) => self.tokens(entry, now),
            None => self.per_minute,
        };
        buckets.insert(ip, ((tokens - 1.0).max(0.0), now));
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
        e.1 -= Duration::from_secs(20);
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
}
