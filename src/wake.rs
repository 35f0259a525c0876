//! [`OwnWake`]: a future polled only after its own wake-up.
//!
//! A `select!` polls every branch each time its task wakes. For a branch
//! that almost never fires, next to one that fires on every read, that is
//! a poll per read of a future with nothing to say, and some such polls
//! are not free: a `watch::Receiver::changed()` still waiting takes its
//! channel's waiter-list lock to refresh its waker, and that channel (the
//! toxics of an instance) is shared by every connection on every core.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Wraps `inner` so that it is polled on the first poll and then only after
/// it woke its own waker; in between, a poll costs two atomic operations
/// on memory of its own.
pub struct OwnWake<F> {
    inner: Pin<Box<F>>,
    signal: Arc<Signal>,
}

/// What the inner future's waker reaches: a flag and the task's waker.
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
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
                task: AtomicWaker::new(),
            }),
        }
    }
}

impl<F: Future> Future for OwnWake<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // First, so that a wake-up from here on reaches this task.
        self.signal.task.register(cx.waker());
        if !self.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = Waker::from(Arc::clone(&self.signal));
        self.inner.as_mut().poll(&mut Context::from_waker(&waker))
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

    #[test]
    fn the_inner_future_is_polled_first_then_only_after_its_own_wake() {
        let (polls, ready) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let waker = Arc::new(std::sync::Mutex::new(None));
        let mut gated = Box::pin(OwnWake::new(Probe {
            polls: Arc::clone(&polls),
            ready: Arc::clone(&ready),
            waker: Arc::clone(&waker),
        }));
        let task = Arc::new(Counter::default());
        let task_waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&task_waker);
        assert!(gated.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // The task polls again for other reasons: the inner one is left be.
        for _ in 0..10 {
            assert!(gated.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // Its own wake-up reaches the task, and the next poll polls it.
        ready.store(true, Ordering::SeqCst);
        waker.lock().unwrap().take().expect("registered").wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert!(gated.as_mut().poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
