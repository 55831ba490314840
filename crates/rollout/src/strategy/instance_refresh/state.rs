//! The state of an instance refresh ([`Refresh`]), what its steps hand each other, and how a stopped run
//! is reported.

use super::refresh::Snapshot;
use super::versions::Current;
use crate::ami::ResolvedAmi;
use crate::error::RolloutError;
use crate::live::Group;
use crate::report::Status;
use crate::strategy::run::{Common, State};
use tokio::time::Instant;

/// The state of an instance refresh.
pub(super) struct Refresh {
    /// Report, rollback, failure, point of no return (the refresh succeeded).
    pub(super) common: Common,
    /// The live group whose instances are replaced.
    pub(super) group: Group,
    /// The AMI rolled out.
    pub(super) ami: ResolvedAmi,
    /// When the run started.
    pub(super) started: Instant,
    /// The launch template version the group ran.
    pub(super) current: Option<Current>,
    /// The version this run created.
    pub(super) version: Option<i64>,
    /// The refresh this run started.
    pub(super) refresh_id: Option<String>,
    /// How the refresh ended, or was last seen when it had not.
    pub(super) end: Option<Snapshot>,
    /// The refresh is to be cancelled by rolling back.
    pub(super) cancel_refresh: bool,
    /// A timed-out or broken follow counts the cancel in the health wait's duration.
    pub(super) healthy_counts_cancel: bool,
    /// When following started.
    pub(super) follow_started: Option<Instant>,
    /// Interrupted and told to leave the refresh running: nothing is undone.
    pub(super) left_running: bool,
    /// Rolling back kept the new version because instances (may) run it.
    pub(super) version_in_use: bool,
    /// When adopting the new version started.
    pub(super) adopt_started: Option<Instant>,
}

impl State for Refresh {
    fn common(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl Refresh {
    /// A run that is starting.
    pub(super) fn new(common: Common, group: Group, ami: ResolvedAmi) -> Self {
        Refresh {
            common,
            group,
            ami,
            started: Instant::now(),
            current: None,
            version: None,
            refresh_id: None,
            end: None,
            cancel_refresh: false,
            healthy_counts_cancel: false,
            follow_started: None,
            left_running: false,
            version_in_use: false,
            adopt_started: None,
        }
    }

    /// The version the group ran (read by the first step).
    pub(super) fn current(&self) -> Result<&Current, RolloutError> {
        self.current.as_ref().ok_or_else(|| {
            RolloutError::Preflight(vec![format!(
                "{}: its launch template version was not read",
                self.group.name
            )])
        })
    }

    /// The error of a run that stopped: the original one when nothing was created; otherwise the report,
    /// `Incomplete` when something is left (a refresh running, instances on the new version, rollback
    /// failures), else `RolledBack`.
    pub(super) fn failed(mut self) -> RolloutError {
        let c = &mut self.common;
        let failure = c.failure.take();
        if self.version.is_none() {
            return failure.unwrap_or(RolloutError::Cancelled);
        }
        let mut report = c.report.clone();
        if report.error.is_none() {
            report.error = Some(if c.committed {
                format!(
                    "interrupted after instance refresh {} succeeded",
                    self.refresh_id.as_deref().unwrap_or_default()
                )
            } else {
                "interrupted before the instance refresh started".into()
            });
        }
        if self.left_running || c.committed {
            report.status = Status::Incomplete;
            return RolloutError::Incomplete(Box::new(report));
        }
        let rb = std::mem::take(&mut c.rollback);
        report.attention.extend(rb.failures.iter().cloned());
        report.attention.extend(rb.warnings.iter().cloned());
        report.rollback = Some(rb);
        if self.version_in_use || !report.attention.is_empty() {
            report.status = Status::Incomplete;
            RolloutError::Incomplete(Box::new(report))
        } else {
            report.status = Status::RolledBack;
            RolloutError::RolledBack(Box::new(report))
        }
    }
}
