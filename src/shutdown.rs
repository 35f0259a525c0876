//! Process lifetime: one root [`CancellationToken`] and one [`TaskTracker`].
//!
//! Every task is spawned through the tracker, so shutdown can wait for all of
//! them; every service runs under a child token, so stopping one service
//! cancels only its subtree. Only `main` turns OS signals into `cancel()`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The root token and tracker, cheap to clone.
#[derive(Clone, Default)]
pub struct Shutdown {
    pub token: CancellationToken,
    pub tasks: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels everything, then waits up to `grace` for every task to end.
    /// Returns `false` when the grace period ran out first.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.token.cancel();
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

/// The process's stop signals: Ctrl-C (SIGINT) and SIGTERM (what `docker
/// stop` sends). Listening starts when this is made, so a second signal is
/// never lost in the moment between handling the first and waiting again.
pub struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Starts listening; a signal that cannot be listened for is reported
    /// and left out.
    pub fn listen() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let open = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!("cannot listen for {name}: {e}");
                None
            }
        };
        Signals {
            interrupt: open(SignalKind::interrupt(), "Ctrl-C"),
            terminate: open(SignalKind::terminate(), "SIGTERM"),
        }
    }

    /// Resolves on the next signal (one that came since the last call too).
    ///
    /// # Cancel safety
    /// Cancel safe: a signal not yet taken stays for the next call.
    pub async fn next(&mut self) {
        async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = one(&mut self.interrupt) => {}
            () = one(&mut self.terminate) => {}
        }
    }
}
