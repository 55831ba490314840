//! The one poller every wait on AWS goes through.
//!
//! Waiting is where bakes lose time: Packer polls every 15 s and the SDK's stock EC2 waiters start at 15 s
//! and back off to 120 s, so each state change is noticed 5–50 s late. This poller:
//! 1. checks once at once (an instant transition costs one request and no sleep);
//! 2. then sleeps a safe lower bound, the time the transition never takes less than (no wasted requests);
//! 3. then polls every `interval` (1 s), measured start to start;
//! 4. past `soft_limit` grows the interval ×1.5 up to `max_interval` (a stuck resource is not hammered);
//! 5. treats "not found" right after a create as "not yet" (EC2 is eventually consistent);
//! 6. on throttling backs off 1 → 2 → 4 → 8 s with jitter, then resumes;
//! 7. gives up at `timeout`, naming what it waited for and the last state seen.
//!
//! `aws_polling` (Packer) and `AWS_POLL_DELAY_SECONDS` / `AWS_MAX_ATTEMPTS` (aws-sdk-go's variables, which
//! Packer users set) override the interval and the number of attempts: see [`PollOverrides`].
//!
//! Waits that run at the same time share their Describe calls: [`Poller::wait_batched`] looks through a
//! [`batch::Batcher`] (one call per tick for all ids; [`ec2`] has EC2's instance and AMI batchers).

pub mod batch;
pub mod ec2;
mod look;

pub use look::{Poll, PollError};

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why a wait ended without the wanted state.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The hard timeout passed.
    #[error("timed out after {after:?} waiting for {what} (last state: {last_state})")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
        /// The last state seen.
        last_state: String,
    },
    /// The resource reached a state it will not leave.
    #[error("{what}: reached state {state}")]
    Failed {
        /// What was waited for.
        what: String,
        /// The state.
        state: String,
    },
    /// A look failed for a reason that retrying will not fix.
    #[error("{what}: {source}")]
    Fatal {
        /// What was waited for.
        what: String,
        /// The error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The run was cancelled (Ctrl-C, SIGTERM).
    #[error("cancelled while waiting for {0}")]
    Cancelled(String),
}

/// Overrides from `aws_polling { delay_seconds, max_attempts }` or the environment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PollOverrides {
    /// Fixed interval between polls (no lower bound, no growth).
    pub delay: Option<Duration>,
    /// The number of polls before giving up.
    pub max_attempts: Option<u32>,
}

impl PollOverrides {
    /// `AWS_POLL_DELAY_SECONDS` and `AWS_MAX_ATTEMPTS`, as Packer reads them; the template's
    /// `aws_polling` block, when present, is applied on top by the caller.
    pub fn from_env() -> Self {
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        PollOverrides {
            delay: num("AWS_POLL_DELAY_SECONDS").map(Duration::from_secs),
            max_attempts: num("AWS_MAX_ATTEMPTS").map(|n| n as u32),
        }
    }

    /// `self` with the fields `other` sets replaced.
    pub fn or(self, other: PollOverrides) -> Self {
        PollOverrides {
            delay: other.delay.or(self.delay),
            max_attempts: other.max_attempts.or(self.max_attempts),
        }
    }
}

/// Timing of one kind of wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poller {
    /// Sleep this long after an unsuccessful first look: the transition never takes less.
    pub lower_bound: Duration,
    /// Start-to-start interval of later looks.
    pub interval: Duration,
    /// Past this, the interval grows ×1.5 per look up to `max_interval`.
    pub soft_limit: Duration,
    /// The largest interval.
    pub max_interval: Duration,
    /// Give up after this long.
    pub timeout: Duration,
    /// The delay of the aws-sdk-go waiter Packer uses for this wait: what one of Packer's `max_attempts`
    /// is worth when no delay is set (`AWS_MAX_ATTEMPTS=10` alone gives an AMI 10 × 15 s in Packer).
    pub attempt_delay: Duration,
}

/// The delay of aws-sdk-go's EC2 waiters that Packer's waits use (InstanceRunning, InstanceStopped,
/// InstanceTerminated, ImageAvailable): 15 s.
pub const SDK_WAITER_DELAY: Duration = Duration::from_secs(15);

impl Poller {
    /// A poller with the given lower bound and hard timeout, and the standard 1 s / 2 min / 5 s shape.
    pub const fn new(lower_bound: Duration, timeout: Duration) -> Self {
        Poller {
            lower_bound,
            interval: Duration::from_secs(1),
            soft_limit: Duration::from_secs(120),
            max_interval: Duration::from_secs(5),
            timeout,
            attempt_delay: SDK_WAITER_DELAY,
        }
    }
    /// Instance `pending` → `running`.
    pub const fn instance_running() -> Self {
        Self::new(Duration::from_secs(5), Duration::from_secs(15 * 60))
    }
    /// Instance `stopping` → `stopped`. Metal instances have taken 19 minutes to stop: 40 minutes.
    pub const fn instance_stopped() -> Self {
        Self::new(Duration::from_secs(3), Duration::from_secs(40 * 60))
    }
    /// Instance `shutting-down` → `terminated` (as long as a stop, for the same instances).
    pub const fn instance_terminated() -> Self {
        Self::new(Duration::from_secs(3), Duration::from_secs(40 * 60))
    }
    /// AMI `pending` → `available` (also region copies).
    pub fn image_available() -> Self {
        Poller {
            soft_limit: Duration::from_secs(15 * 60),
            ..Self::new(Duration::from_secs(10), Duration::from_secs(60 * 60))
        }
    }

    /// Applies Packer's overrides with Packer's meaning: a fixed delay replaces the lower bound and the
    /// growth; a number of attempts sets the timeout to attempts × the delay — the one given, else the
    /// delay of the waiter Packer would have used ([`Poller::attempt_delay`]), while polling stays fast.
    pub fn with_overrides(mut self, o: PollOverrides) -> Self {
        if let Some(d) = o.delay {
            self.lower_bound = d;
            self.interval = d;
            self.max_interval = d;
            self.soft_limit = Duration::MAX;
            self.attempt_delay = d;
        }
        if let Some(n) = o.max_attempts {
            self.timeout = self.attempt_delay.saturating_mul(n.max(1));
        }
        self
    }

    /// Polls `check` until it is ready, failed, fatal, cancelled or timed out. `observe` is told each
    /// state seen (for progress output) with the time waited so far.
    pub async fn wait<T, F, Fut>(
        &self,
        what: &str,
        cancel: &CancellationToken,
        mut observe: impl FnMut(&str, Duration),
        mut check: F,
    ) -> Result<T, WaitError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Poll<T>, PollError>>,
    {
        let start = Instant::now();
        let mut interval = self.interval;
        let mut throttle_backoff = Duration::ZERO;
        let mut last_state = String::from("unknown");
        let mut looks: u32 = 0;
        loop {
            let tick = Instant::now();
            looks += 1;
            let result = tokio::select! {
                _ = cancel.cancelled() => return Err(WaitError::Cancelled(what.to_string())),
                r = check() => r,
            };
            let mut next = interval;
            match result {
                Ok(Poll::Ready(v)) => {
                    observe("ready", start.elapsed());
                    return Ok(v);
                }
                Ok(Poll::Failed(state)) => {
                    return Err(WaitError::Failed {
                        what: what.to_string(),
                        state,
                    });
                }
                Ok(Poll::Pending(state)) => {
                    throttle_backoff = Duration::ZERO;
                    observe(&state, start.elapsed());
                    last_state = state;
                }
                Err(PollError::NotFound) => {
                    throttle_backoff = Duration::ZERO;
                    observe("not visible yet", start.elapsed());
                    last_state = "not found".to_string();
                }
                Err(PollError::Throttled) => {
                    throttle_backoff = if throttle_backoff.is_zero() {
                        Duration::from_secs(1)
                    } else {
                        (throttle_backoff * 2).min(Duration::from_secs(8))
                    };
                    observe("throttled, backing off", start.elapsed());
                    next = jitter(throttle_backoff);
                }
                Err(PollError::Fatal(source)) => {
                    return Err(WaitError::Fatal {
                        what: what.to_string(),
                        source,
                    });
                }
            }
            if looks == 1 && throttle_backoff.is_zero() {
                next = self.lower_bound;
            }
            let elapsed = start.elapsed();
            if elapsed >= self.timeout {
                return Err(WaitError::Timeout {
                    what: what.to_string(),
                    after: elapsed,
                    last_state,
                });
            }
            if elapsed > self.soft_limit && throttle_backoff.is_zero() {
                interval = (interval.mul_f64(1.5)).min(self.max_interval);
                next = next.max(interval);
            }
            // Start to start: the time the look took counts towards the interval; never sleep past the timeout.
            let wake = (tick + next).min(start + self.timeout);
            tokio::select! {
                _ = cancel.cancelled() => return Err(WaitError::Cancelled(what.to_string())),
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

impl Poller {
    /// [`wait`](Self::wait) for `id`, looking through `batcher`, so that concurrent waits of the same
    /// kind share one Describe call per tick. `judge` turns the resource found into a [`Poll`]; an id
    /// the call did not return is "not found" (not yet visible right after its create call).
    pub async fn wait_batched<V, T>(
        &self,
        what: &str,
        cancel: &CancellationToken,
        observe: impl FnMut(&str, Duration),
        batcher: &batch::Batcher<V>,
        id: &str,
        judge: impl Fn(V) -> Poll<T>,
    ) -> Result<T, WaitError>
    where
        V: Clone + Send + Sync + 'static,
    {
        let judge = &judge;
        let mut first = true;
        self.wait(what, cancel, observe, || {
            let urgent = std::mem::replace(&mut first, false);
            async move {
                match batcher.look(id, urgent).await? {
                    Some(v) => Ok(judge(v)),
                    None => Err(PollError::NotFound),
                }
            }
        })
        .await
    }
}

/// ±25 % so that parallel builds do not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let f = 0.75 + (nanos % 1000) as f64 / 2000.0;
    d.mul_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn script(
        states: Vec<Result<Poll<u32>, PollError>>,
    ) -> impl FnMut() -> std::future::Ready<Result<Poll<u32>, PollError>> {
        let states = Arc::new(Mutex::new(states.into_iter()));
        move || {
            let next = states
                .lock()
                .unwrap()
                .next()
                .expect("poller looked too often");
            std::future::ready(next)
        }
    }

    async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
        let t = Instant::now();
        let r = f.await;
        (r, t.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn instant_transition_costs_one_look_and_no_sleep() {
        let p = Poller::instance_running();
        let (r, took) = timed(p.wait(
            "x",
            &CancellationToken::new(),
            |_, _| {},
            script(vec![Ok(Poll::Ready(7))]),
        ))
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(took, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn lower_bound_then_one_second_polls() {
        let p = Poller::instance_running();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let (r, took) = timed(p.wait(
            "x",
            &CancellationToken::new(),
            move |st, at| s2.lock().unwrap().push((st.to_string(), at)),
            script(vec![
                Ok(Poll::Pending("pending".into())),
                Ok(Poll::Pending("pending".into())),
                Err(PollError::NotFound),
                Ok(Poll::Ready(1)),
            ]),
        ))
        .await;
        assert_eq!(r.unwrap(), 1);
        // look at 0, lower bound 5 s, then 1 s, 1 s.
        assert_eq!(took, Duration::from_secs(7));
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0], ("pending".to_string(), Duration::ZERO));
        assert_eq!(seen[1], ("pending".to_string(), Duration::from_secs(5)));
        assert_eq!(
            seen[2],
            ("not visible yet".to_string(), Duration::from_secs(6))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_backs_off_exponentially() {
        let p = Poller::new(Duration::ZERO, Duration::from_secs(600));
        let (r, took) = timed(p.wait(
            "x",
            &CancellationToken::new(),
            |_, _| {},
            script(vec![
                Err(PollError::Throttled),
                Err(PollError::Throttled),
                Err(PollError::Throttled),
                Ok(Poll::Ready(2)),
            ]),
        ))
        .await;
        assert_eq!(r.unwrap(), 2);
        // 1 + 2 + 4 s, each ±25 %.
        assert!(
            took >= Duration::from_millis(5250) && took <= Duration::from_millis(8750),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_the_last_state() {
        let p = Poller::new(Duration::from_secs(1), Duration::from_secs(10));
        let r = p
            .wait(
                "instance i-1 to run",
                &CancellationToken::new(),
                |_, _| {},
                || std::future::ready(Ok::<Poll<()>, PollError>(Poll::Pending("pending".into()))),
            )
            .await;
        match r {
            Err(WaitError::Timeout {
                what,
                after,
                last_state,
            }) => {
                assert_eq!(what, "instance i-1 to run");
                assert_eq!(after, Duration::from_secs(10));
                assert_eq!(last_state, "pending");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_state_and_fatal_errors_end_the_wait() {
        let p = Poller::instance_running();
        let r = p
            .wait(
                "x",
                &CancellationToken::new(),
                |_, _| {},
                script(vec![Ok(Poll::Failed("terminated".into()))]),
            )
            .await;
        assert!(matches!(r, Err(WaitError::Failed { state, .. }) if state == "terminated"));
        let r = p
            .wait(
                "x",
                &CancellationToken::new(),
                |_, _| {},
                script(vec![Err(PollError::Fatal("boom".into()))]),
            )
            .await;
        assert!(matches!(r, Err(WaitError::Fatal { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_interrupts_the_sleep() {
        let p = Poller::instance_running();
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            c2.cancel();
        });
        let (r, took) = timed(p.wait(
            "x",
            &cancel,
            |_, _| {},
            || std::future::ready(Ok::<Poll<()>, PollError>(Poll::Pending("pending".into()))),
        ))
        .await;
        assert!(matches!(r, Err(WaitError::Cancelled(_))));
        assert_eq!(took, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_soft_limit_the_interval_grows_to_the_cap() {
        let p = Poller {
            lower_bound: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            soft_limit: Duration::from_secs(3),
            max_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3600),
            attempt_delay: SDK_WAITER_DELAY,
        };
        let times = Arc::new(Mutex::new(Vec::new()));
        let t2 = times.clone();
        let start = Instant::now();
        let mut n = 0;
        let _ = p
            .wait(
                "x",
                &CancellationToken::new(),
                |_, _| {},
                move || {
                    n += 1;
                    t2.lock().unwrap().push(start.elapsed().as_secs_f64());
                    std::future::ready(if n < 10 {
                        Ok(Poll::Pending("p".into()))
                    } else {
                        Ok(Poll::Ready(()))
                    })
                },
            )
            .await;
        let t = times.lock().unwrap();
        let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        // 1 s polls until the soft limit (3 s), then ×1.5 per look, capped at 5 s.
        assert_eq!(gaps, vec![1.0, 1.0, 1.0, 1.0, 1.5, 2.25, 3.375, 5.0, 5.0]);
    }

    #[test]
    fn overrides_fix_the_interval_and_attempts() {
        let p = Poller::image_available().with_overrides(PollOverrides {
            delay: Some(Duration::from_secs(2)),
            max_attempts: Some(30),
        });
        assert_eq!(p.interval, Duration::from_secs(2));
        assert_eq!(p.lower_bound, Duration::from_secs(2));
        assert_eq!(p.timeout, Duration::from_secs(60));
    }

    #[test]
    fn attempts_alone_are_worth_packers_waiter_delay_and_polling_stays_fast() {
        // AWS_MAX_ATTEMPTS=10 (common in CI images) gave an AMI 10 s; Packer gives it 10 × 15 s.
        let p = Poller::image_available().with_overrides(PollOverrides {
            delay: None,
            max_attempts: Some(10),
        });
        assert_eq!(p.timeout, Duration::from_secs(150));
        assert_eq!(p.interval, Duration::from_secs(1));
        assert_eq!(p.lower_bound, Poller::image_available().lower_bound);
        for base in [Poller::instance_running(), Poller::instance_stopped()] {
            let p = base.with_overrides(PollOverrides {
                delay: None,
                max_attempts: Some(40),
            });
            assert_eq!(p.timeout, Duration::from_secs(600));
        }
    }

    #[test]
    fn stop_and_terminate_outlast_a_metal_instance() {
        let metal = Duration::from_secs(19 * 60);
        assert!(Poller::instance_stopped().timeout > metal);
        assert!(Poller::instance_terminated().timeout > metal);
    }
}
