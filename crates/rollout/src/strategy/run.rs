//! Rollout steps on bakery-core's pipeline ([`bakery_core::pipeline`]): every strategy is a list of
//! [`RolloutStep`]s over a typed state, and its rollback is those steps' cleanup, run in reverse for every
//! step that started, each within its own deadline, stopped by a second interrupt.
//!
//! Rollback is undo-on-failure: a step undoes its work only when the run did not succeed and had not passed
//! its point of no return ([`Common::undo`]).

use crate::context::Ctx;
use crate::error::RolloutError;
use crate::report::{DeployReport, RollbackReport};
use bakery_core::pipeline::{self, OnError, Outcome, RunControl, Step, StepError};
use std::time::Duration;
use tokio::time::Instant;

/// What the state of every rollout carries: the report being built, what rolling back did, and the error
/// that stopped the run (typed: the pipeline keeps only its text).
#[derive(Debug)]
pub(super) struct Common {
    /// The report being built.
    pub report: DeployReport,
    /// What the cleanups undid, could not undo, and found.
    pub rollback: RollbackReport,
    /// The error that stopped the run.
    pub failure: Option<RolloutError>,
    /// When the failing step stopped: rolling back is timed from here.
    pub failed_at: Option<Instant>,
    /// Set at the point of no return: from then on nothing this run created is undone.
    pub committed: bool,
    /// Said once, by the first cleanup that undoes something.
    rollback_notice: Option<&'static str>,
    announced: bool,
}

impl Common {
    /// A run that is starting; `rollback_notice` is what rolling back says first, if anything.
    pub fn new(report: DeployReport, rollback_notice: Option<&'static str>) -> Self {
        Common {
            report,
            rollback: RollbackReport::default(),
            failure: None,
            failed_at: None,
            committed: false,
            rollback_notice,
            announced: false,
        }
    }

    /// Whether a cleanup undoes its step: not after success, and not past the point of no return. The
    /// first cleanup that does announces the rollback.
    pub fn undo(&mut self, cx: &Ctx, outcome: Outcome) -> bool {
        if outcome.succeeded() || self.committed {
            return false;
        }
        if let Some(notice) = self.rollback_notice
            && !self.announced
        {
            cx.warn(notice);
            self.announced = true;
        }
        true
    }

    /// Seconds since the failing step stopped.
    pub fn rollback_seconds(&self) -> f64 {
        self.failed_at
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or(0.0)
    }
}

/// A strategy's state.
pub(super) trait State: Send {
    /// The part every rollout has.
    fn common(&mut self) -> &mut Common;
}

/// One step of a rollout: a pipeline step with rollout's typed error. Cleanup records what it did, and
/// what it could not do, in [`Common::rollback`].
#[async_trait::async_trait]
pub(super) trait RolloutStep<S: State>: Send + Sync {
    /// A short name for logs and cleanup failures.
    fn name(&self) -> &'static str;
    /// Does the work; records what it must undo in the state as soon as it exists.
    async fn run(&mut self, cx: &Ctx, st: &mut S) -> Result<(), RolloutError>;
    /// Undoes what `run` did, as far as it got (see [`Common::undo`]).
    async fn cleanup(&mut self, _cx: &Ctx, _st: &mut S, _outcome: Outcome) {}
}

/// A [`RolloutStep`] as the pipeline runs it.
struct OnPipeline<T>(T);

#[async_trait::async_trait]
impl<S: State, T: RolloutStep<S>> Step<Ctx, S> for OnPipeline<T> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    /// Rollout steps watch `cx.cancel` in their waits and say what they saw (the new group's state, a
    /// refresh's progress); their AWS calls are never dropped half-way, so what was created is recorded.
    fn observes_cancel(&self) -> bool {
        true
    }

    async fn run(&mut self, cx: &Ctx, st: &mut S) -> Result<(), StepError> {
        let Err(e) = self.0.run(cx, st).await else {
            return Ok(());
        };
        let out = match e {
            RolloutError::Cancelled | RolloutError::Interrupted(_) => StepError::Cancelled,
            _ => StepError::msg(e.to_string()),
        };
        let c = st.common();
        c.failed_at = Some(Instant::now());
        c.failure = Some(e);
        Err(out)
    }

    async fn cleanup(&mut self, cx: &Ctx, st: &mut S, outcome: Outcome) -> Result<(), StepError> {
        self.0.cleanup(cx, st, outcome).await;
        Ok(())
    }
}

/// The steps of a strategy, in order.
pub(super) struct Steps<S>(Vec<Box<dyn Step<Ctx, S>>>);

impl<S: State + 'static> Steps<S> {
    /// No steps yet.
    pub fn new() -> Self {
        Steps(Vec::new())
    }

    /// Appends `step`.
    pub fn then(mut self, step: impl RolloutStep<S> + 'static) -> Self {
        self.0.push(Box::new(OnPipeline(step)));
        self
    }

    /// Runs the steps over `st`: on failure every started step's cleanup runs, in reverse, under the
    /// cleanup token (a first interrupt does not stop it, a second one does). Cleanups that failed, timed
    /// out or were cut short are added to the rollback's failures. Returns the pipeline's report.
    pub async fn run(mut self, cx: &Ctx, st: &mut S) -> pipeline::RunReport {
        let ctl = RunControl {
            cancel: cx.cancel.clone(),
            cancel_cleanup: cx.cancel_cleanup.clone(),
            on_error: OnError::Cleanup,
            cleanup_deadline: cleanup_deadline(cx),
            ask: None,
            // Rollout steps observe the interrupt themselves and are never dropped mid-call, so
            // nothing is ever in flight for the runner to settle.
            in_flight: pipeline::InFlight::new(),
            settle_deadline: pipeline::SETTLE_DEADLINE,
        };
        let r = pipeline::run(&mut self.0, cx, st, &ctl).await;
        let rb = &mut st.common().rollback;
        for f in &r.cleanup_failures {
            rb.failures.push(format!("{}: {}", f.step, f.error));
        }
        if r.cleanup_skipped && r.error.is_some() {
            rb.failures.push(
                "rolling back was stopped by a second interrupt: what was not undone yet is still there"
                    .into(),
            );
        }
        r
    }
}

/// The longest one cleanup may take: its waits are bounded by the rollback timeout, and the slowest one
/// (deleting a group) waits twice (for the delete call to be accepted, then for the group to be gone);
/// a minute more covers its describes.
fn cleanup_deadline(cx: &Ctx) -> Duration {
    cx.cfg.timeouts.rollback * 2 + Duration::from_secs(60)
}
