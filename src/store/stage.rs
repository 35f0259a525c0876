//! A stage of blocking work fed from async code: items queue, and one
//! blocking job at a time works through them with the stage's state.
//!
//! The job runs only while items wait for it and ends when none has come
//! for [`LINGER`]: a stage whose feeder waits for its peer holds no thread
//! of tokio's blocking pool, however long it lives, so slow peers cannot
//! take the pool that file reads and listings need. The feeder bounds how
//! much it queues (an upload by its buffers, a part by its permits).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::sync::lock;

/// How long a stage's job waits for the next buffer before it ends: about
/// what hashing one upload buffer takes with the SHA extensions, so a job
/// mostly lives through a steady upload (without them a job may end and a
/// new one start per buffer: a thread hand-off a MiB, small beside the hash).
const LINGER: Duration = Duration::from_millis(1);

/// A stage: items queue here, and one blocking job at a time works through
/// them with the stage's state, ending when the queue has stayed empty for
/// [`LINGER`].
pub(super) struct Stage<S, I> {
    pub(super) shared: Arc<Shared<S, I>>,
    pub(super) work: fn(&mut S, I),
}

pub(super) struct Shared<S, I> {
    pub(super) queue: Mutex<Queue<S, I>>,
    /// Signalled when an item is queued while a job runs.
    more: Condvar,
}

pub(super) struct Queue<S, I> {
    items: VecDeque<I>,
    /// The state while no job runs; `None` while one does.
    pub(super) idle: Option<S>,
}

impl<S: Send + 'static, I: Send + 'static> Stage<S, I> {
    pub(super) fn new(state: S, work: fn(&mut S, I)) -> Self {
        let queue = Queue {
            items: VecDeque::new(),
            idle: Some(state),
        };
        Stage {
            shared: Arc::new(Shared {
                queue: Mutex::new(queue),
                more: Condvar::new(),
            }),
            work,
        }
    }

    /// Queues `item`, and starts a job if none is running.
    pub(super) fn send(&self, item: I) {
        let state = {
            let mut queue = lock(&self.shared.queue);
            queue.items.push_back(item);
            queue.idle.take()
        };
        let Some(state) = state else {
            self.shared.more.notify_one();
            return;
        };
        self.start(state);
    }

    /// Starts a job with `state`. Nothing waits for it: it ends when the
    /// queue stays empty.
    fn start(&self, state: S) {
        let shared = Arc::clone(&self.shared);
        let work = self.work;
        drop(tokio::task::spawn_blocking(move || {
            drain(&shared, state, work);
        }));
    }

    /// Works `item` on this thread if no job is running, else queues it
    /// for the running one. For an owner's last word, from `Drop`: at
    /// shutdown the blocking pool starts no new job, and what must still
    /// happen (a cut part truncated) would not.
    pub(super) fn send_or_work_here(&self, item: I) {
        let mut queue = lock(&self.shared.queue);
        let Some(mut state) = queue.idle.take() else {
            queue.items.push_back(item);
            drop(queue);
            self.shared.more.notify_one();
            return;
        };
        drop(queue);
        (self.work)(&mut state, item);
        let mut queue = lock(&self.shared.queue);
        if queue.items.is_empty() {
            queue.idle = Some(state);
            return;
        }
        // Sent meanwhile, and queued for a job: start it.
        drop(queue);
        self.start(state);
    }
}

/// A stage's job: works through the queue, then leaves the state behind.
fn drain<S, I>(shared: &Shared<S, I>, mut state: S, work: fn(&mut S, I)) {
    let mut queue = lock(&shared.queue);
    loop {
        if let Some(item) = queue.items.pop_front() {
            drop(queue);
            work(&mut state, item);
            queue = lock(&shared.queue);
            continue;
        }
        let (back, waited) = shared
            .more
            .wait_timeout(queue, LINGER)
            .unwrap_or_else(PoisonError::into_inner);
        queue = back;
        if waited.timed_out() && queue.items.is_empty() {
            queue.idle = Some(state);
            return;
        }
    }
}

/// A runtime whose blocking pool has one thread: where a stage that kept
/// its thread while its feeder waits would leave none for the others.
#[cfg(test)]
pub(super) fn one_blocking_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}
