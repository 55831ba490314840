//! The shape of spot-fleet's waits (a fleet fulfilled, its instances healthy, old instances gone).

use bakery_core::poll::Poller;
use std::time::Duration;

/// The pollers' shape: as `wait.rs`'s (first look at once, then every 2 s, 10 s after two minutes).
pub(super) fn poller(lower_bound: Duration, timeout: Duration) -> Poller {
    Poller {
        lower_bound,
        interval: Duration::from_secs(2),
        soft_limit: Duration::from_secs(120),
        max_interval: Duration::from_secs(10),
        timeout,
    }
}
