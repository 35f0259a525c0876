//! Idle limits, kept by one sweep per registry instead of a timer per
//! connection: a connection states how long it may stay quiet and waits on
//! [`IdleExpired`]; the sweep, on the clock thread, reads each limited
//! connection's last activity (which the byte counting keeps anyway) and
//! wakes those that moved no byte either way for their limit. A waiting
//! connection then holds no timer on the runtime that serves it, which
//! parks without a deadline (see [`crate::clock`]).
//!
//! Precision: the sweep runs every eighth of the finest limit set so far
//! (at least 5 ms and at most 1 s apart), so a quiet connection ends
//! between its limit and that much later.

use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering::AcqRel, Ordering::Acquire};
use std::task::{Context, Poll};

use tokio::sync::Notify;

use crate::wake::{Slot, Stored};

use super::*;

/// The sweep's period for the finest limit in milliseconds.
fn period(finest_ms: u64) -> Duration {
    Duration::from_millis(finest_ms / 8).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

/// A connection's limit and the sweep's verdict on it.
#[derive(Default)]
pub(super) struct IdleSlot {
    /// 0: no limit.
    limit_ms: AtomicU64,
    expired: AtomicBool,
    task: Slot,
}

impl IdleSlot {
    /// Marks the slot expired and wakes its task if quiet for its limit.
    fn check(&self, now_ms: u64, last_activity_ms: u64) {
        let limit = self.limit_ms.load(Relaxed);
        if limit != 0
            && now_ms.saturating_sub(last_activity_ms) >= limit
            && !self.expired.swap(true, AcqRel)
        {
            self.task.wake();
        }
    }
}

/// The registry's sweep: its period follows the finest limit.
pub(super) struct IdleSweep {
    finest_ms: AtomicU64,
    started: AtomicBool,
    /// Wakes a sleeping sweep when a finer limit comes.
    retune: Arc<Notify>,
}

impl Default for IdleSweep {
    fn default() -> Self {
        IdleSweep {
            finest_ms: AtomicU64::new(u64::MAX),
            started: AtomicBool::new(false),
            retune: Arc::default(),
        }
    }
}

impl ConnGuard {
    /// Ends once the connection has moved no byte either way for `limit`
    /// (`limit` is set on the first call; the future is cheap to poll and
    /// meant to be made once and polled in the connection's `select!`:
    /// it stores its task's waker on its first poll, and a second one
    /// alive beside it would make the two store theirs in turns).
    pub fn idle_expired(&self, limit: Duration) -> IdleExpired<'_> {
        let slot = &self.entry.idle;
        let ms = millis(limit).max(1);
        if slot
            .limit_ms
            .compare_exchange(0, ms, AcqRel, Acquire)
            .is_ok()
        {
            let sweep = &self.stats.inner.idle;
            if sweep.finest_ms.fetch_min(ms, AcqRel) > ms {
                sweep.retune.notify_one();
            }
            if !sweep.started.swap(true, AcqRel) {
                let (registry, retune) = (Arc::downgrade(&self.stats.inner), sweep.retune.clone());
                crate::clock::spawn(run(registry, retune));
            }
        }
        IdleExpired {
            slot,
            stored: Stored::default(),
        }
    }
}

/// Sweeps `registry` until it is gone.
async fn run(registry: Weak<Inner>, retune: Arc<Notify>) {
    loop {
        let Some(inner) = registry.upgrade() else {
            return;
        };
        let every = period(inner.idle.finest_ms.load(Acquire));
        drop(inner);
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = retune.notified() => continue,
        }
        let Some(inner) = registry.upgrade() else {
            return;
        };
        Stats { inner }.sweep_idle();
    }
}

impl Stats {
    /// Wakes every connection quiet for its limit.
    fn sweep_idle(&self) {
        let now = self.now_ms();
        for e in lock(&self.inner.conns).values() {
            e.idle.check(now, e.last_activity_ms.load(Relaxed));
        }
    }
}

/// See [`ConnGuard::idle_expired`]. Stays ready once ready.
#[must_use = "a limit nobody waits on ends nothing"]
pub struct IdleExpired<'a> {
    slot: &'a IdleSlot,
    stored: Stored,
}

impl Future for IdleExpired<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.slot.expired.load(Acquire) {
            return Poll::Ready(());
        }
        let this = &mut *self;
        this.slot.task.register(&mut this.stored, cx.waker());
        if self.slot.expired.load(Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::ServiceKind;

    #[test]
    fn the_period_is_an_eighth_of_the_finest_limit_within_bounds() {
        assert_eq!(period(u64::MAX), Duration::from_secs(1));
        assert_eq!(period(300_000), Duration::from_secs(1));
        assert_eq!(period(200), Duration::from_millis(25));
        assert_eq!(period(1), Duration::from_millis(5));
    }

    #[tokio::test]
    async fn a_quiet_connection_expires_and_an_active_one_does_not() {
        let stats = Stats::new();
        let quiet = stats.open(&ServiceKind::Echo.into(), Proto::Tcp, "quiet");
        let busy = stats.open(&ServiceKind::Echo.into(), Proto::Tcp, "busy");
        let limit = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let expired = quiet.idle_expired(limit);
        let keep_busy = async {
            loop {
                busy.add_in(1);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            () = expired => {}
            () = keep_busy => unreachable!(),
            () = tokio::time::sleep(Duration::from_secs(10)) => panic!("never expired"),
        }
        let took = started.elapsed();
        assert!(took >= limit, "{took:?}");
        use futures_util::FutureExt;
        assert!(
            busy.idle_expired(limit).now_or_never().is_none(),
            "an active one expired"
        );
        // Once expired, it stays so.
        assert!(quiet.idle_expired(limit).now_or_never().is_some());
    }

    #[tokio::test]
    async fn the_sweep_ends_with_its_registry() {
        let stats = Stats::new();
        let conn = stats.open(&ServiceKind::Echo.into(), Proto::Tcp, "a");
        use futures_util::FutureExt;
        assert!(
            conn.idle_expired(Duration::from_secs(60))
                .now_or_never()
                .is_none()
        );
        let registry = Arc::downgrade(&stats.inner);
        let retune = stats.inner.idle.retune.clone();
        drop((conn, stats));
        assert!(registry.upgrade().is_none());
        tokio::time::timeout(Duration::from_secs(10), run(registry, retune))
            .await
            .expect("a sweep of a dropped registry returns");
    }
}
