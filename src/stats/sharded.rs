//! A counter every connection adds to without sharing a cache line with
//! the other cores: one slot per thread (up to [`SLOTS`], then shared),
//! each on its own line, summed when read.
//!
//! Why: an instance's byte totals were one `AtomicU64` each, which every
//! connection on both worker threads added to on every round trip, so the
//! line moved between the cores on nearly every add (`perf` showed the one
//! `lock add` as a third of echo's own samples at 5,000 connections). A
//! thread's slot stays in its core's cache.
//!
//! It deliberately keeps `AtomicU64`'s `fetch_add`/`load` shape, so the
//! totals code reads it as before. A read is a sum over the slots: exact
//! once the adds it should see have happened (as one atomic's load is),
//! never a torn or double count.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Slots per counter. More than this runtime's worker threads (one per
/// core) plus the blocking threads that count; threads past it share.
pub(super) const SLOTS: usize = 16;

/// One slot, alone on its cache line (128 bytes: the adjacent-line
/// prefetcher pairs lines).
#[derive(Default)]
#[repr(align(128))]
struct Slot(AtomicU64);

/// A sum of per-thread slots; see the module doc.
#[derive(Default)]
pub(super) struct Sharded {
    slots: [Slot; SLOTS],
}

impl Sharded {
    /// Adds `n` to the calling thread's slot. The old value is not
    /// returned: it would be one slot's, which means nothing alone.
    #[inline]
    pub(super) fn fetch_add(&self, n: u64, order: Ordering) {
        self.slots[slot()].0.fetch_add(n, order);
    }

    /// The sum of all slots.
    pub(super) fn load(&self, order: Ordering) -> u64 {
        self.slots
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(order)))
    }
}

/// The calling thread's slot index: threads take the next one in turn
/// the first time they count.
#[inline]
fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.with(|mine| {
        let mut i = mine.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
            mine.set(i);
        }
        i
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn adds_from_many_threads_sum_exactly() {
        let c = Arc::new(Sharded::default());
        // More threads than slots, so some share one.
        let threads: Vec<_> = (0..SLOTS + 4)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.fetch_add(t as u64 + 1, Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a counting thread panicked");
        }
        let n = (SLOTS + 4) as u64;
        assert_eq!(c.load(Relaxed), 1000 * n * (n + 1) / 2);
    }

    #[test]
    fn each_slot_has_its_own_cache_line() {
        assert_eq!(std::mem::align_of::<Slot>(), 128);
        assert_eq!(std::mem::size_of::<Sharded>(), 128 * SLOTS);
    }
}
