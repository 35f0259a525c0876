//! Small shared helpers for locks.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning. For state that stays consistent whatever
/// a panicking holder was doing (counters, tables updated in one step): a
/// panic elsewhere must not turn every later lock into a second panic.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
