//! The step pipeline, after Packer's `multistep`, with its rough edges fixed.
//!
//! A build is a list of [`Step`]s, each with `run`, `cleanup` and `plan` (what it would do, for a dry run, walked
//! by [`plan`] over the same list). The runner runs them in order and, whatever
//! happens, cleans up every step whose `run` started, in reverse order (so the instance is terminated before
//! its security group and key pair are deleted). Improvements over Packer:
//! - the state is a typed struct owned by the builder (no string-keyed bag, no type assertions);
//! - cleanup is async and each step's cleanup has its own deadline, so a stuck terminate cannot hang the run;
//! - cleanup errors are collected and reported after the error that failed the build, never over it;
//! - cancellation (Ctrl-C, SIGTERM) goes through a token that `run` observes; cleanup gets a token of its own,
//!   cancelled only by a second interrupt;
//! - a create call in flight when the first interrupt comes is settled, not dropped ([`in_flight`]): the
//!   step runs on until it has recorded what the call made, then cleanup removes it.

mod in_flight;

pub use in_flight::{InFlight, InFlightGuard};

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the build ended, as cleanup sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every step ran.
    Succeeded,
    /// A step failed.
    Failed,
    /// The run was interrupted.
    Cancelled,
}

impl Outcome {
    /// Resources kept only on success (the AMI) are removed in any other outcome.
    pub fn succeeded(self) -> bool {
        self == Outcome::Succeeded
    }
}

/// A step's failure. AWS errors and failed waits keep their type, so callers decide by kind (for instance
/// [`crate::aws_err::AwsError::class`]) and never by message text.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step failed for a reason of its own; the message says what and why.
    #[error("{0}")]
    Failed(String),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] crate::aws_err::AwsError),
    /// A wait timed out, saw a state it cannot leave, or a look failed (never a cancelled wait: that is
    /// [`StepError::Cancelled`]).
    #[error(transparent)]
    Wait(crate::poll::WaitError),
    /// The step saw the cancellation token.
    #[error("interrupted")]
    Cancelled,
}

impl StepError {
    /// A failure with a message.
    pub fn msg(m: impl Into<String>) -> Self {
        StepError::Failed(m.into())
    }
}

impl From<crate::poll::WaitError> for StepError {
    fn from(e: crate::poll::WaitError) -> Self {
        match e {
            crate::poll::WaitError::Cancelled(_) => StepError::Cancelled,
            other => StepError::Wait(other),
        }
    }
}

/// Why a step's cleanup did not complete.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The cleanup itself failed.
    #[error(transparent)]
    Step(#[from] StepError),
    /// It ran past [`RunControl::cleanup_deadline`].
    #[error("cleanup did not finish within {0:?}")]
    TimedOut(Duration),
    /// A second interrupt stopped it.
    #[error("cleanup interrupted")]
    Interrupted,
}

/// One step of a build. `S` is the builder's typed state, `C` its context (clients, UI, tokens).
#[async_trait]
pub trait Step<C: Sync, S: Send>: Send + Sync {
    /// A short name for logs and errors.
    fn name(&self) -> &'static str;
    /// True when `run` watches the cancellation token itself and returns soon after it fires, with what
    /// it saw: the runner then lets it finish instead of dropping it part-way (a dropped AWS call may
    /// have created something the step never got to record).
    fn observes_cancel(&self) -> bool {
        false
    }
    /// Does the work. Records what it must undo (in `self` or in the state) as soon as it is created.
    async fn run(&mut self, cx: &C, st: &mut S) -> Result<(), StepError>;
    /// What `run` would do, for a dry run: lines for the user, none when the step would do nothing worth
    /// saying. It may only read (describe and get calls) and may fill `st` with what it read, for the plans
    /// of the steps after it.
    async fn plan(&self, _cx: &C, _st: &mut S) -> Result<Vec<String>, StepError> {
        Ok(Vec::new())
    }
    /// Undoes what `run` did, as far as it got; called for every step whose `run` started, in reverse
    /// order, whatever the outcome. Steps that keep their result on success check `outcome`.
    async fn cleanup(&mut self, _cx: &C, _st: &mut S, _outcome: Outcome) -> Result<(), StepError> {
        Ok(())
    }
}

/// What to do when a step fails (`-on-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Clean up everything (the default).
    #[default]
    Cleanup,
    /// Stop at once and leave every resource as it is (for debugging); `bake cleanup` removes them later.
    Abort,
    /// Ask on the terminal: clean up, abort or retry the step.
    Ask,
    /// Run the `error-cleanup-provisioner` (done by the provision step), then abort without cleanup.
    RunCleanupProvisioner,
}

/// The answer to `-on-error=ask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskAnswer {
    /// Clean up.
    Cleanup,
    /// Abort, leaving resources.
    Abort,
    /// Run the failed step again.
    Retry,
}

/// Asks what to do about a failed step (`-on-error=ask`): given the step's name and its error.
pub type AskFn = Box<dyn Fn(&str, &StepError) -> AskAnswer + Send + Sync>;

/// The runner's view of the run: the cancellation tokens, the error policy and the cleanup deadline.
pub struct RunControl {
    /// Cancelled by the first interrupt: steps stop.
    pub cancel: CancellationToken,
    /// Cancelled by the second interrupt: cleanup stops too.
    pub cancel_cleanup: CancellationToken,
    /// `-on-error`.
    pub on_error: OnError,
    /// The longest one step's cleanup may take.
    pub cleanup_deadline: Duration,
    /// Asked when `on_error` is `Ask`.
    pub ask: Option<AskFn>,
    /// The create calls the steps have in flight (the steps hold guards from the same tracker).
    pub in_flight: Arc<InFlight>,
    /// After the first interrupt, how long a step may run on to settle its create calls in flight.
    pub settle_deadline: Duration,
}

/// How long a create call in flight may take to settle after an interrupt by default: an EC2 create call
/// answers in seconds, and the SDK's own retries stay well under this.
pub const SETTLE_DEADLINE: Duration = Duration::from_secs(90);

/// A cleanup that did not complete.
#[derive(Debug)]
pub struct CleanupFailure {
    /// The step.
    pub step: &'static str,
    /// What went wrong.
    pub error: CleanupError,
}

/// The result of running a pipeline.
#[derive(Debug)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// The step that failed and why (None on success).
    pub error: Option<(&'static str, StepError)>,
    /// Cleanups that failed or timed out, in the order they ran.
    pub cleanup_failures: Vec<CleanupFailure>,
    /// True when cleanup was skipped (`-on-error=abort`, or stopped by a second interrupt).
    pub cleanup_skipped: bool,
}

/// Runs `steps` over `st`; see the module docs.
pub async fn run<C: Sync, S: Send>(
    steps: &mut [Box<dyn Step<C, S>>],
    cx: &C,
    st: &mut S,
    ctl: &RunControl,
) -> RunReport {
    let mut started = 0usize;
    let mut error: Option<(&'static str, StepError)> = None;
    let mut skip_cleanup = false;
    let mut i = 0;
    while i < steps.len() {
        if ctl.cancel.is_cancelled() {
            error = Some((steps[i].name(), StepError::Cancelled));
            break;
        }
        started = started.max(i + 1);
        let step = &mut steps[i];
        let name = step.name();
        let result = if step.observes_cancel() {
            step.run(cx, st).await
        } else {
            let run = step.run(cx, st);
            tokio::pin!(run);
            tokio::select! {
                biased;
                r = &mut run => r,
                _ = ctl.cancel.cancelled() => {
                    // Keep polling the step while it has a create call in flight, so that what the call
                    // makes is recorded (and then cleaned up) rather than dropped with the future.
                    tokio::select! {
                        biased;
                        r = &mut run => r,
                        _ = tokio::time::timeout(ctl.settle_deadline, ctl.in_flight.settled()) => {
                            Err(StepError::Cancelled)
                        }
                    }
                }
            }
        };
        match result {
            Ok(()) => i += 1,
            Err(StepError::Cancelled) => {
                error = Some((name, StepError::Cancelled));
                break;
            }
            Err(e) => match ctl.on_error {
                OnError::Cleanup => {
                    error = Some((name, e));
                    break;
                }
                OnError::Abort | OnError::RunCleanupProvisioner => {
                    error = Some((name, e));
                    skip_cleanup = true;
                    break;
                }
                OnError::Ask => {
                    let answer = ctl
                        .ask
                        .as_ref()
                        .map(|ask| ask(name, &e))
                        .unwrap_or(AskAnswer::Cleanup);
                    match answer {
                        AskAnswer::Retry => continue,
                        AskAnswer::Cleanup => {
                            error = Some((name, e));
                            break;
                        }
                        AskAnswer::Abort => {
                            error = Some((name, e));
                            skip_cleanup = true;
                            break;
                        }
                    }
                }
            },
        }
    }
    let outcome = match &error {
        None => Outcome::Succeeded,
        Some((_, StepError::Cancelled)) => Outcome::Cancelled,
        Some(_) => Outcome::Failed,
    };
    let mut cleanup_failures = Vec::new();
    if !skip_cleanup {
        for step in steps[..started].iter_mut().rev() {
            if ctl.cancel_cleanup.is_cancelled() {
                skip_cleanup = true;
                break;
            }
            let name = step.name();
            let r = tokio::select! {
                biased;
                r = tokio::time::timeout(ctl.cleanup_deadline, step.cleanup(cx, st, outcome)) => r,
                _ = ctl.cancel_cleanup.cancelled() => {
                    skip_cleanup = true;
                    cleanup_failures.push(CleanupFailure { step: name, error: CleanupError::Interrupted });
                    break;
                }
            };
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => cleanup_failures.push(CleanupFailure {
                    step: name,
                    error: CleanupError::Step(e),
                }),
                Err(_) => cleanup_failures.push(CleanupFailure {
                    step: name,
                    error: CleanupError::TimedOut(ctl.cleanup_deadline),
                }),
            }
        }
    }
    RunReport {
        outcome,
        error,
        cleanup_failures,
        cleanup_skipped: skip_cleanup,
    }
}

/// The plan of `steps` over `st`, for a dry run: every step's lines, in the order the steps would run; the
/// first step whose plan fails ends it.
pub async fn plan<C: Sync, S: Send>(
    steps: &[Box<dyn Step<C, S>>],
    cx: &C,
    st: &mut S,
) -> Result<Vec<String>, (&'static str, StepError)> {
    let mut lines = Vec::new();
    for step in steps {
        lines.extend(step.plan(cx, st).await.map_err(|e| (step.name(), e))?);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests;
