//! Locking that survives a panicking thread.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex even if a thread panicked while holding it: the data are counters and
/// detector states that stay usable, and one stream's bug must not take the process down.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stops a tokio task when its owner is dropped (a supervisor returns, a pipeline run ends).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
