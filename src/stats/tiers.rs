//! The traffic history beyond the last 15 minutes: each instance's
//! one-second samples folded into 10-second buckets (kept 6 hours) and
//! those into 1-minute buckets (kept 24 hours), in fixed-size rings, so a
//! chart can show a day without the process keeping 86,400 samples per
//! instance.
//!
//! What folding keeps (and the tests check): the sums of bytes in, bytes
//! out and connections accepted are exact at every tier; `active_max` is
//! the most connections open at any sampled second; `peak_in` /
//! `peak_out` are the busiest single second's bytes, so a one-second spike
//! still shows in a day's view. `seconds` says how many samples a bucket
//! holds (fewer than its step for the one still filling, or around a
//! restart of the sampler).
//!
//! Buckets start on wall-clock multiples of their step (`at_unix_s %
//! step == 0`), so every instance's buckets line up on one time axis. A
//! clock set back simply starts a new bucket; nothing is reordered.
//!
//! Not here: the one-second ring itself (`History` in `stats.rs`, 15
//! minutes), the sampling loop (`read.rs`) or choosing a tier for a range
//! (`web/history.rs`). Nothing is written to disk: a restart starts empty.

use std::collections::VecDeque;

use serde::Serialize;

use super::Sample;

/// One tier: buckets of `step_s` seconds, the newest `len` of them kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    pub step_s: u64,
    pub len: usize,
}

impl Tier {
    /// How far back it reaches, in seconds.
    pub const fn span_s(self) -> u64 {
        self.step_s * self.len as u64
    }
}

/// The one-second samples (the ring in `History`, 15 minutes).
pub const SECONDS: Tier = Tier {
    step_s: 1,
    len: super::HISTORY_LEN,
};
/// 10-second buckets for 6 hours.
pub const TEN_SECONDS: Tier = Tier {
    step_s: 10,
    len: 6 * 360,
};
/// 1-minute buckets for 24 hours.
pub const MINUTES: Tier = Tier {
    step_s: 60,
    len: 24 * 60,
};
/// Every tier, finest first.
pub const TIERS: [Tier; 3] = [SECONDS, TEN_SECONDS, MINUTES];

/// The history's bytes per instance at most: the one-second ring plus the
/// two bucket rings and their two filling buckets (what README states).
pub const BYTES_PER_INSTANCE: usize = SECONDS.len * std::mem::size_of::<Sample>()
    + (TEN_SECONDS.len + MINUTES.len + 2) * std::mem::size_of::<Bucket>();

/// Some seconds of one instance's traffic, folded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Its first second (a multiple of its step).
    pub at_unix_s: u64,
    /// How many one-second samples it holds.
    pub seconds: u64,
    /// Sums over its seconds.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub accepted: u64,
    /// Maxima over its seconds.
    pub active_max: u64,
    pub peak_in: u64,
    pub peak_out: u64,
}

impl Bucket {
    /// A one-second sample as a bucket of one second.
    pub fn of(s: &Sample) -> Bucket {
        Bucket {
            at_unix_s: s.at_unix_s,
            seconds: 1,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            accepted: s.accepted,
            active_max: s.active,
            peak_in: s.bytes_in,
            peak_out: s.bytes_out,
        }
    }

    /// Folds `other` (later, finer) into this one: sums add, maxima max.
    fn absorb(&mut self, other: &Bucket) {
        self.seconds += other.seconds;
        self.bytes_in = self.bytes_in.saturating_add(other.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
        self.accepted = self.accepted.saturating_add(other.accepted);
        self.active_max = self.active_max.max(other.active_max);
        self.peak_in = self.peak_in.max(other.peak_in);
        self.peak_out = self.peak_out.max(other.peak_out);
    }

    /// `b` re-stamped to the start of its `step`-second bucket.
    fn aligned(b: &Bucket, step: u64) -> Bucket {
        Bucket {
            at_unix_s: b.at_unix_s - b.at_unix_s % step,
            ..*b
        }
    }
}

/// A fixed number of buckets; the oldest goes when a new one comes.
/// Allocated at its full size on the first push, never grown after.
#[derive(Debug, Default)]
struct Ring {
    cap: usize,
    items: VecDeque<Bucket>,
}

impl Ring {
    fn new(cap: usize) -> Ring {
        Ring {
            cap,
            items: VecDeque::new(),
        }
    }

    fn push(&mut self, b: Bucket) {
        if self.items.capacity() == 0 {
            self.items.reserve_exact(self.cap);
        }
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(b);
    }
}

/// One tier's closed buckets and the bucket still filling.
#[derive(Debug, Default)]
struct Level {
    step_s: u64,
    closed: Ring,
    open: Option<Bucket>,
}

impl Level {
    fn new(t: Tier) -> Level {
        Level {
            step_s: t.step_s,
            closed: Ring::new(t.len),
            open: None,
        }
    }

    /// Adds `b` (finer); returns the bucket it closed, if `b` starts a new one.
    fn add(&mut self, b: &Bucket) -> Option<Bucket> {
        let b = Bucket::aligned(b, self.step_s);
        match &mut self.open {
            Some(open) if open.at_unix_s == b.at_unix_s => {
                open.absorb(&b);
                None
            }
            slot => {
                let closed = slot.replace(b);
                if let Some(c) = closed {
                    self.closed.push(c);
                }
                closed
            }
        }
    }
}

/// The 10-second and 1-minute tiers of one instance.
#[derive(Debug)]
pub struct Downsampled {
    ten: Level,
    minutes: Level,
}

impl Default for Downsampled {
    fn default() -> Self {
        Downsampled {
            ten: Level::new(TEN_SECONDS),
            minutes: Level::new(MINUTES),
        }
    }
}

impl Downsampled {
    /// Folds in the next one-second sample.
    pub fn push(&mut self, s: &Sample) {
        if let Some(ten) = self.ten.add(&Bucket::of(s)) {
            self.minutes.add(&ten);
        }
    }

    /// The buckets of `tier` (10 s or 1 min) starting at or after
    /// `from_unix_s`, oldest first, the one still filling last (so the
    /// newest seconds are in it: a minute's filling bucket includes its
    /// filling 10 seconds).
    pub fn buckets(&self, tier: Tier, from_unix_s: u64) -> Vec<Bucket> {
        let level = if tier == MINUTES {
            &self.minutes
        } else {
            &self.ten
        };
        let mut open = level.open;
        if tier == MINUTES
            && let Some(ten) = self.ten.open
        {
            let ten = Bucket::aligned(&ten, MINUTES.step_s);
            match &mut open {
                Some(o) if o.at_unix_s == ten.at_unix_s => o.absorb(&ten),
                _ => open = Some(ten),
            }
        }
        level
            .closed
            .items
            .iter()
            .chain(open.iter())
            .filter(|b| b.at_unix_s >= from_unix_s)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(at: u64, bytes_in: u64, bytes_out: u64, accepted: u64, active: u64) -> Sample {
        Sample {
            at_unix_s: at,
            bytes_in,
            bytes_out,
            accepted,
            active,
        }
    }

    fn total(bs: &[Bucket]) -> (u64, u64, u64, u64) {
        bs.iter().fold((0, 0, 0, 0), |t, b| {
            (
                t.0 + b.bytes_in,
                t.1 + b.bytes_out,
                t.2 + b.accepted,
                t.3 + b.seconds,
            )
        })
    }

    #[test]
    fn sums_and_maxima_survive_both_tiers() {
        let mut d = Downsampled::default();
        let start = 1_700_000_000 - 1_700_000_000 % 60; // a minute's start
        let (mut sum_in, mut sum_out, mut sum_acc) = (0, 0, 0);
        for i in 0..600u64 {
            // A spike of 1 MB at second 123, some trickle elsewhere.
            let bytes_in = if i == 123 { 1_000_000 } else { i % 7 };
            let s = second(start + i, bytes_in, i * 3, i % 2, i % 50);
            sum_in += s.bytes_in;
            sum_out += s.bytes_out;
            sum_acc += s.accepted;
            d.push(&s);
        }
        for tier in [TEN_SECONDS, MINUTES] {
            let bs = d.buckets(tier, 0);
            assert_eq!(total(&bs), (sum_in, sum_out, sum_acc, 600), "{tier:?}");
            assert!(bs.iter().all(|b| b.at_unix_s % tier.step_s == 0));
            assert_eq!(bs.len() as u64, 600 / tier.step_s);
            assert_eq!(bs.iter().map(|b| b.peak_in).max(), Some(1_000_000));
            assert_eq!(bs.iter().map(|b| b.active_max).max(), Some(49));
            assert_eq!(bs.iter().map(|b| b.peak_out).max(), Some(599 * 3));
        }
        // The spike is in the bucket holding second 123, not smeared.
        let minute = d.buckets(MINUTES, 0);
        assert_eq!(minute[2].at_unix_s, start + 120);
        assert_eq!(minute[2].peak_in, 1_000_000);
        assert!(minute[1].peak_in < 7);
    }

    #[test]
    fn the_filling_bucket_is_last_and_partial() {
        let mut d = Downsampled::default();
        let start = 1_700_000_000 - 1_700_000_000 % 60;
        for i in 0..75 {
            d.push(&second(start + i, 10, 0, 0, 1));
        }
        let ten = d.buckets(TEN_SECONDS, 0);
        assert_eq!(
            ten.last().map(|b| (b.at_unix_s, b.seconds)),
            Some((start + 70, 5))
        );
        let minutes = d.buckets(MINUTES, 0);
        let seconds: Vec<_> = minutes.iter().map(|b| b.seconds).collect();
        assert_eq!(
            seconds,
            [60, 15],
            "the second minute holds 10 closed + 5 filling"
        );
        assert_eq!(minutes[1].bytes_in, 150);
        // Asking from a time leaves out what is older.
        assert_eq!(d.buckets(MINUTES, start + 60).len(), 1);
    }

    #[test]
    fn rings_are_bounded_and_keep_the_newest() {
        let mut d = Downsampled::default();
        let start = 1_700_000_000 - 1_700_000_000 % 60;
        let seconds = MINUTES.span_s() + 3600; // a day and an hour
        for i in 0..seconds {
            d.push(&second(start + i, 1, 0, 0, 0));
        }
        let ten = d.buckets(TEN_SECONDS, 0);
        assert_eq!(
            ten.len(),
            TEN_SECONDS.len + 1,
            "the ring and its filling bucket"
        );
        assert_eq!(ten.last().map(|b| b.at_unix_s), Some(start + seconds - 10));
        let minutes = d.buckets(MINUTES, 0);
        assert_eq!(minutes.len(), MINUTES.len + 1);
        assert!(d.ten.closed.items.capacity() <= TEN_SECONDS.len + 8);
        assert!(d.minutes.closed.items.capacity() <= MINUTES.len + 8);
        // Every minute kept holds 60 bytes: nothing lost inside the window.
        assert!(minutes[..MINUTES.len].iter().all(|b| b.bytes_in == 60));
    }

    #[test]
    fn a_clock_set_back_starts_a_new_bucket() {
        let mut d = Downsampled::default();
        let start = 1_700_000_000 - 1_700_000_000 % 60;
        d.push(&second(start + 30, 5, 0, 0, 0));
        d.push(&second(start + 5, 7, 0, 0, 0));
        let ten = d.buckets(TEN_SECONDS, 0);
        assert_eq!(ten.len(), 2);
        assert_eq!(total(&ten).0, 12);
    }

    #[test]
    fn the_stated_size_is_what_the_types_take() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::size_of::<Sample>(), 40);
        // 900 × 40 + (2160 + 1440 + 2) × 64: the figure README gives.
        assert_eq!(BYTES_PER_INSTANCE, 266_528);
    }
}
