//! [`OwnWake`]: a future polled only after its own wake-up; [`Slot`]: a
//! task's waker kept for a wake-up from elsewhere, stored once per task.
//!
//! A `select!` polls every branch each time its task wakes. For a branch
//! that almost never fires, next to one that fires on every read, that is
//! a poll per read of a future with nothing to say, and some such polls
//! are not free: a `watch::Receiver::changed()` still waiting takes its
//! channel's waiter-list lock to refresh its waker, and that channel (the
//! toxics of an instance) is shared by every connection on every core.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// A task's waker, kept for a wake-up from another thread (a stop, an
/// expiry). A wake-up leaves it in place, unlike `AtomicWaker`'s, which
/// takes it out and so must be registered again on every poll (two atomic
/// operations each time, on every wake-up of a busy connection): here a
/// task polled again and again stores its waker once, and a poll costs a
/// comparison with what its [`Stored`] remembers and one load.
///
/// The protocol is the usual one: the waiting side registers, then checks
/// its condition; the waking side makes the condition true, then calls
/// [`Slot::wake`]. A slot holds one waker: if two pollers register with
/// it, each stores its own again on its next poll (the slot counts its
/// stores, and a [`Stored`] that is not the last one stores again), and a
/// wake-up reaches the one that stored last, as with `AtomicWaker`.
#[derive(Default)]
pub struct Slot {
    waker: Mutex<Option<Waker>>,
    stores: AtomicU64,
}

/// What a poller last stored in its [`Slot`], and which store that was.
#[derive(Default)]
pub struct Stored {
    waker: Option<Waker>,
    at: u64,
}

impl Slot {
    /// Keeps `waker` for the next wake-up, unless `stored` says it is kept.
    pub fn register(&self, stored: &mut Stored, waker: &Waker) {
        if stored.waker.as_ref().is_some_and(|w| w.will_wake(waker))
            && self.stores.load(Ordering::Acquire) == stored.at
        {
            return;
        }
        let waker = waker.clone();
        let replaced = {
            let mut slot = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
            // Counted under the lock, so two stores never share a number.
            stored.at = self.stores.load(Ordering::Relaxed) + 1;
            self.stores.store(stored.at, Ordering::Release);
            slot.replace(waker.clone())
        };
        // Dropped, like the wake-up below, with the lock released.
        drop(replaced);
        stored.waker = Some(waker);
    }

    /// Wakes the task whose waker was stored last, if any; the waker stays.
    pub fn wake(&self) {
        let task = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

/// Wraps `inner` so that it is polled on the first poll and then only after
/// it woke its own waker; in between, a poll by the same task costs one
/// atomic swap on memory of its own.
pub struct OwnWake<F> {
    inner: Pin<Box<F>>,
    signal: Arc<Signal>,
    stored: Stored,
}

/// What the inner future's waker reaches: a flag and the task's waker.
struct Signal {
    woken: AtomicBool,
    task: Slot,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> OwnWake<F> {
    pub fn new(inner: F) -> Self {
        OwnWake {
            inner: Box::pin(inner),
            signal: Arc::new(Signal {
                woken: AtomicBool::new(true),
                task: Slot::default(),
            }),
            stored: Stored::default(),
        }
    }
}

impl<F: Future> Future for OwnWake<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // First, so that a wake-up from here on reaches this task.
        let this = &mut *self;
        this.signal.task.register(&mut this.stored, cx.waker());
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = Waker::from(Arc::clone(&this.signal));
        this.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready once `ready` is set, and wakes whoever
    /// polled it last when told to.
    struct Probe {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<std::sync::Mutex<Option<Waker>>>,
    }

    impl Probe {
        /// Wakes whoever polled the probe last, as its event would.
        fn wake_inner(&self) {
            self.waker
                .lock()
                .unwrap()
                .take()
                .expect("registered")
                .wake();
        }
    }

    impl Future for Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.ready.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    /// A probe gated by [`OwnWake`], and a probe sharing its state.
    fn gated_probe() -> (Pin<Box<OwnWake<Probe>>>, Probe) {
        let probe = Probe {
            polls: Arc::new(AtomicUsize::new(0)),
            ready: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(std::sync::Mutex::new(None)),
        };
        let gated = Box::pin(OwnWake::new(Probe {
            polls: Arc::clone(&probe.polls),
            ready: Arc::clone(&probe.ready),
            waker: Arc::clone(&probe.waker),
        }));
        (gated, probe)
    }

    #[test]
    fn the_inner_future_is_polled_first_then_only_after_its_own_wake() {
        let (mut gated, probe) = gated_probe();
        let (task, task_waker) = counted();
        let mut cx = Context::from_waker(&task_waker);
        assert!(gated.as_mut().poll(&mut cx).is_pending());
        assert_eq!(probe.polls.load(Ordering::SeqCst), 1);
        // The task polls again for other reasons: the inner one is left be.
        for _ in 0..10 {
            assert!(gated.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(probe.polls.load(Ordering::SeqCst), 1);
        // Its own wake-up reaches the task, and the next poll polls it.
        probe.ready.store(true, Ordering::SeqCst);
        probe.wake_inner();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert!(gated.as_mut().poll(&mut cx).is_ready());
        assert_eq!(probe.polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn every_wake_up_reaches_the_task_that_polled_last() {
        let (mut gated, probe) = gated_probe();
        let (first, first_waker) = counted();
        let mut cx = Context::from_waker(&first_waker);
        // Woken and polled again and again with the same waker, stored once:
        // each wake-up still reaches the task, and the inner future runs.
        for round in 1..=5 {
            assert!(gated.as_mut().poll(&mut cx).is_pending());
            assert!(gated.as_mut().poll(&mut cx).is_pending());
            assert_eq!(probe.polls.load(Ordering::SeqCst), round);
            probe.wake_inner();
            assert_eq!(first.0.load(Ordering::SeqCst), round);
        }
        // Polled by another task: the wake-up goes to that one, not the first.
        let (second, second_waker) = counted();
        let mut cx = Context::from_waker(&second_waker);
        assert!(gated.as_mut().poll(&mut cx).is_pending());
        probe.wake_inner();
        assert_eq!(
            (
                first.0.load(Ordering::SeqCst),
                second.0.load(Ordering::SeqCst)
            ),
            (5, 1)
        );
        probe.ready.store(true, Ordering::SeqCst);
        assert!(gated.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn a_poller_whose_waker_was_displaced_stores_it_again() {
        let slot = Slot::default();
        let ((first, first_waker), (second, second_waker)) = (counted(), counted());
        let (mut mine, mut theirs) = (Stored::default(), Stored::default());
        slot.register(&mut mine, &first_waker);
        slot.register(&mut theirs, &second_waker);
        slot.wake();
        assert_eq!(
            (
                first.0.load(Ordering::SeqCst),
                second.0.load(Ordering::SeqCst)
            ),
            (0, 1)
        );
        // The first poller's next poll puts its waker back: its Stored is
        // not the slot's last store any more.
        slot.register(&mut mine, &first_waker);
        slot.wake();
        slot.wake();
        assert_eq!(
            (
                first.0.load(Ordering::SeqCst),
                second.0.load(Ordering::SeqCst)
            ),
            (2, 1)
        );
    }

    #[derive(Default)]
    struct Counter(AtomicUsize);

    /// A task that counts its wake-ups, and its waker.
    fn counted() -> (Arc<Counter>, Waker) {
        let task = Arc::new(Counter::default());
        (Arc::clone(&task), Waker::from(task))
    }

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
