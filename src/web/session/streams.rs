//! Live-stream slots counted per account: however many sessions one
//! account signs in (16 sign-ins of one viewer, say), it holds at most
//! `web.max_streams_per_session` streams, so it cannot take every stream of
//! the dashboard from the others. A slot is a value whose `Drop` gives it
//! back, so a stream that ends any way (browser gone, sign-out, shutdown, a
//! dropped future) frees it at once.
//!
//! Not here: the global cap (a semaphore in [`super::super::live`]) and what
//! ends a stream (its session's token).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::super::error::WebError;

/// Streams open per account name.
#[derive(Clone)]
pub(super) struct AccountStreams {
    max: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream's place in its account's count, given back on drop.
pub(super) struct AccountSlot {
    user: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl AccountStreams {
    pub(super) fn new(max: usize) -> Self {
        AccountStreams {
            max: max.max(1),
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for `user`, or [`WebError::TooManyStreams`] when the account
    /// already holds all of its own.
    pub(super) fn acquire(&self, user: &str) -> Result<AccountSlot, WebError> {
        let mut open = lock(&self.open);
        let n = open.entry(user.to_owned()).or_insert(0);
        if *n >= self.max {
            return Err(WebError::TooManyStreams(self.max));
        }
        *n += 1;
        Ok(AccountSlot {
            user: user.to_owned(),
            open: Arc::clone(&self.open),
        })
    }

    /// Streams `user` holds now.
    #[cfg(test)]
    pub(super) fn held(&self, user: &str) -> usize {
        lock(&self.open).get(user).copied().unwrap_or(0)
    }
}

impl Drop for AccountSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(n) = open.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

fn lock(m: &Mutex<HashMap<String, usize>>) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
    // Counts change by one under the lock: a poisoned map is still whole.
    crate::sync::lock(m)
}
