//! The state of a rollout that launches new capacity beside the old ([`Replace`]), and how its run ends.

use super::capacity::Capacity;
use crate::ami::ResolvedAmi;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::launch::{CreatedTemplate, LaunchSpec};
use crate::lb::LoadBalancer;
use crate::report::Status;
use crate::strategy::run::{Common, State, Steps};
use tokio::time::Instant;

/// The state of a rollout that launches new capacity beside the old.
pub(in crate::strategy) struct Replace<C: Capacity> {
    /// Report, rollback, failure, point of no return.
    pub common: Common,
    /// The load balancer.
    pub lb: LoadBalancer,
    /// What the new instances launch with.
    pub spec: LaunchSpec,
    /// The AMI rolled out.
    pub ami: ResolvedAmi,
    /// This run's timestamp in new names.
    pub stamp: String,
    /// The old capacity, as preflight found it.
    pub olds: Vec<C>,
    /// When launching started.
    pub started: Instant,
    /// The launch template this run created.
    pub template: Option<CreatedTemplate>,
    /// The new capacity's name or id, once it was asked for.
    pub new: Option<String>,
    /// False while the new capacity could not be removed by rolling back.
    pub new_gone: bool,
    /// The new capacity's instances once healthy.
    pub new_ids: Vec<String>,
    /// The strategy's own.
    pub launch: C::Launch,
    /// Old capacity is kept per the strategy's rollback window when it has one (a deploy); false: always
    /// removed (an undo retiring the bad release).
    pub keep_retired: bool,
}

impl<C: Capacity> State for Replace<C> {
    fn common(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl<C: Capacity> Replace<C> {
    /// A run that is starting.
    pub fn new(
        common: Common,
        lb: LoadBalancer,
        spec: LaunchSpec,
        ami: ResolvedAmi,
        stamp: String,
        olds: Vec<C>,
    ) -> Self {
        Replace {
            common,
            lb,
            spec,
            ami,
            stamp,
            olds,
            started: Instant::now(),
            template: None,
            new: None,
            new_gone: true,
            new_ids: Vec::new(),
            launch: C::Launch::default(),
            keep_retired: true,
        }
    }

    /// True once this run created (or may have created) anything.
    pub fn created_anything(&self) -> bool {
        self.template.is_some() || self.new.is_some()
    }

    /// Runs `steps` and makes the outcome a report: the state on success; the original error when
    /// nothing was created; `RolledBack` when a failure before the point of no return was rolled back;
    /// `Incomplete` when retiring stopped.
    pub async fn run(mut self, cx: &Ctx, steps: Steps<Self>) -> Result<Self, RolloutError> {
        let r = steps.run(cx, &mut self).await;
        if r.error.is_none() {
            return Ok(self);
        }
        let new = self.new.clone().unwrap_or_default();
        let c = &mut self.common;
        let mut report = c.report.clone();
        if !c.committed {
            let failure = c.failure.take().unwrap_or(RolloutError::Cancelled);
            if !(self.template.is_some() || self.new.is_some()) {
                return Err(failure);
            }
            let rb = std::mem::take(&mut c.rollback);
            report.error = Some(failure.to_string());
            report.durations.rollback_s = c.rollback_seconds();
            report.attention.extend(rb.failures.iter().cloned());
            report.attention.extend(rb.warnings.iter().cloned());
            report.rollback = Some(rb);
            report.status = Status::RolledBack;
            return Err(RolloutError::RolledBack(Box::new(report)));
        }
        if report.error.is_none() {
            report.error = Some(format!("interrupted while retiring the old {}", C::PLURAL));
        }
        for old in self
            .olds
            .iter()
            .filter(|o| !report.retired.iter().any(|r| r == o.id()))
        {
            report.attention.push(old.not_retired(&new));
        }
        report.status = Status::Incomplete;
        Err(RolloutError::Incomplete(Box::new(report)))
    }
}
