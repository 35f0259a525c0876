//! Ends a connection's task when its close token fires, without looking at
//! the token on every wake-up of the task.
//!
//! The accept loop's tasks used to `select!` between the connection and its
//! token's `cancelled()`: every wake-up (every round trip) then polled the
//! token, and tokio-util's `is_cancelled` and its `Notified` each take a
//! mutex. Here the token's waiter is registered once, with a waker of our
//! own that aborts the task; nothing is polled per wake-up. Aborting drops
//! the task's future where it stands, which is what the `select!` did.
//!
//! It deliberately does not handle a future that must finish something when
//! asked to stop: the connections it ends are dropped mid-await, as before.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};

use tokio::task::AbortHandle;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::sync::lock;

/// The abort switch a token's waiter pulls: the handle arrives once the
/// task is spawned, which may be after the token fired.
#[derive(Default)]
pub(crate) struct AbortOnWake {
    state: Mutex<Switch>,
}

#[derive(Default)]
struct Switch {
    fired: bool,
    handle: Option<AbortHandle>,
}

impl AbortOnWake {
    /// Hands over the spawned task's handle; aborts it now if the token has
    /// fired already.
    pub(crate) fn arm(&self, handle: AbortHandle) {
        let mut s = lock(&self.state);
        if s.fired {
            handle.abort();
        } else {
            s.handle = Some(handle);
        }
    }
}

impl Wake for AbortOnWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut s = lock(&self.state);
        s.fired = true;
        if let Some(h) = s.handle.take() {
            h.abort();
        }
    }
}

/// Registers `waiting` (a close token's `cancelled_owned()`, pinned where
/// it lives as long as the task) with a waker that aborts the task through
/// `switch`, which the spawner arms with the task's handle. Says `true`
/// if the token had fired already (the task should just end).
///
/// Call it from the task's own future: it is the task that is aborted. The
/// future is held in place, not wrapped in an `async fn` taking the task's
/// future as an argument, which would hold that future twice.
pub(crate) fn register(
    waiting: Pin<&mut WaitForCancellationFutureOwned>,
    switch: Arc<AbortOnWake>,
) -> bool {
    // The waiter keeps a clone of the waker; ours is dropped here.
    let waker = Waker::from(switch);
    waiting.poll(&mut Context::from_waker(&waker)).is_ready()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    /// What the accept loop does: a task that registers its token, then
    /// runs `fut`; `None` if the token had fired before.
    async fn guarded<F: Future>(
        stop: CancellationToken,
        switch: Arc<AbortOnWake>,
        fut: F,
    ) -> Option<F::Output> {
        let waiting = std::pin::pin!(stop.cancelled_owned());
        if register(waiting, switch) {
            return None;
        }
        Some(fut.await)
    }

    /// A never-ending task ends when its token fires, and its future is
    /// dropped (what releases a connection's resources).
    #[tokio::test]
    async fn a_fired_token_aborts_the_task_and_drops_its_future() {
        let stop = CancellationToken::new();
        let switch = Arc::new(AbortOnWake::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(guarded(stop.clone(), Arc::clone(&switch), async move {
            let _dropped_with_the_future = tx;
            std::future::pending::<()>().await;
        }));
        switch.arm(task.abort_handle());
        tokio::task::yield_now().await;
        stop.cancel();
        // The sender is dropped with the future: the receiver sees it.
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("the task was not ended")
            .expect_err("nothing is ever sent");
        let joined = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task did not finish");
        assert!(joined.is_err_and(|e| e.is_cancelled()));
    }

    /// A token that fires before the handle is armed still aborts it.
    #[tokio::test]
    async fn a_token_fired_before_arming_aborts_at_arming() {
        let stop = CancellationToken::new();
        let switch = Arc::new(AbortOnWake::default());
        let task = tokio::spawn(guarded(
            stop.clone(),
            Arc::clone(&switch),
            std::future::pending::<()>(),
        ));
        // Let it register its waiter, then fire before arming.
        tokio::task::yield_now().await;
        stop.cancel();
        switch.arm(task.abort_handle());
        let joined = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task did not finish");
        // Either aborted, or it saw the token at its first poll.
        assert!(matches!(joined, Ok(None)) || joined.is_err_and(|e| e.is_cancelled()));
    }

    /// A task that finishes first returns its output.
    #[tokio::test]
    async fn a_task_that_finishes_returns_its_output() {
        let switch = Arc::new(AbortOnWake::default());
        let out = guarded(CancellationToken::new(), switch, async { 7 }).await;
        assert_eq!(out, Some(7));
    }
}
