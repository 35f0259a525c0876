//! The clock thread: where the process's periodic work keeps its timers.
//!
//! A tokio worker that parks while any timer of its runtime is pending
//! parks with a deadline: its `epoll_wait` gets a timeout (an hrtimer set
//! and cancelled in the kernel) and the timer wheel is read again on every
//! wake-up. With one connection doing round trips a worker parks once per
//! round trip, and a single timer anywhere on the runtime, even one due in
//! five minutes, cost 5–10 % of the round trip's CPU (bench/NOTES.md,
//! "the clock thread"). So the periodic work (the stats' samples, the idle
//! sweep, UDP peers' expiry, the session and partial-upload sweeps) keeps
//! its timers on a runtime of its own, on one thread named `clock`, and
//! wakes the tasks that wait for it through a [`Notify`]: the runtime that
//! serves connections then parks with no deadline while nothing is due.
//!
//! Started on first use and never stopped: its tasks end with their
//! owners ([`Ticks`] dropped, a registry gone).

use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;

/// The clock runtime's handle, its thread started on the first call;
/// `None` if the system refused the thread (then the caller's runtime
/// keeps the timers, as it would without this module).
fn handle() -> Option<&'static tokio::runtime::Handle> {
    static HANDLE: OnceLock<Option<tokio::runtime::Handle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match start() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!("cannot start the clock thread ({e}); timers stay on the runtime");
                None
            }
        })
        .as_ref()
}

fn start() -> std::io::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("clock".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

/// Runs `task` on the clock thread (or, if it could not start, on the
/// caller's runtime). It must not block: every periodic task of the
/// process shares that thread.
///
/// # Panics
/// Outside a tokio runtime, if the clock thread could not start.
pub fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    match handle() {
        Some(clock) => drop(clock.spawn(task)),
        None => drop(tokio::spawn(task)),
    }
}

/// A tick every `period`, the first one `period` from now, kept on the
/// clock thread: wait for them with [`Ticks::tick`] from any runtime.
/// Ticks not waited for do not pile up (one is kept), as tokio's
/// [`MissedTickBehavior::Delay`]. Dropping it stops its timer at the next
/// tick.
pub fn every(period: Duration) -> Ticks {
    let notify = Arc::new(Notify::new());
    spawn(tick_into(Arc::downgrade(&notify), period));
    Ticks { notify }
}

async fn tick_into(notify: Weak<Notify>, period: Duration) {
    let start = tokio::time::Instant::now() + period;
    let mut interval = tokio::time::interval_at(start, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match notify.upgrade() {
            Some(n) => n.notify_one(),
            None => return,
        }
    }
}

/// See [`every`].
pub struct Ticks {
    notify: Arc<Notify>,
}

impl Ticks {
    /// The next tick (at once if one came while nobody waited).
    /// Cancel-safe: a tick given to a wait that is then dropped is kept.
    pub async fn tick(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tick_comes_after_its_period_and_missed_ticks_do_not_pile_up() {
        use futures_util::FutureExt;
        let period = Duration::from_millis(200);
        let ticks = every(period);
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(10), ticks.tick())
            .await
            .expect("a tick");
        assert!(started.elapsed() >= period, "{:?}", started.elapsed());
        // Three periods with nobody waiting leave one tick, not three.
        std::thread::sleep(period * 3 + period / 2);
        ticks
            .tick()
            .now_or_never()
            .expect("the kept tick is there at once");
        let taken = std::time::Instant::now();
        let another = ticks.tick().now_or_never();
        // (Unless the next period's tick came meanwhile on a stalled machine.)
        if taken.elapsed() < period / 4 {
            assert!(another.is_none(), "missed ticks piled up");
        }
    }

    #[test]
    fn a_dropped_ticks_ends_its_timer() {
        let notify = Arc::new(Notify::new());
        let weak = Arc::downgrade(&notify);
        drop(notify);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                tick_into(weak, Duration::from_millis(1)),
            )
            .await
            .expect("the timer task ends once its Ticks is gone");
        });
    }
}
