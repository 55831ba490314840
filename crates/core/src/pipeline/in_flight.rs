//! Calls that create something and must not be dropped half-way: a create call AWS has received may
//! complete after the caller stops listening, and what it made is then nobody's. A step holds an
//! [`InFlightGuard`] across each such call and records the result before its next `.await`; on the first
//! interrupt the runner keeps polling the step until no guard is held (bounded by
//! [`RunControl::settle_deadline`](super::RunControl::settle_deadline)), so the id is recorded and
//! cleaned up instead of leaked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// How many create calls are in flight, shared by a run's steps and its runner.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Held while one create call is in flight; dropping it ends the call's critical section.
#[derive(Debug)]
pub struct InFlightGuard(Arc<InFlight>);

impl InFlight {
    /// A new tracker, shared.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Marks a create call as in flight until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// How many calls are in flight now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Returns once no call is in flight.
    pub async fn settled(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
