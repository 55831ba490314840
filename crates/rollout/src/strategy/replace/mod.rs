//! What blue-green and spot-fleet share: new capacity (an Auto Scaling group, a spot fleet) is launched
//! beside the old, health-gated, marked live, and only then is the old capacity retired. The shared steps
//! are here; each strategy adds the steps that launch, wait for and mark its own kind of capacity.
//!
//! Before the point of no return ([`Common::committed`]) a failure rolls back: the new capacity and its
//! launch template are removed (their steps' cleanup) and the old capacity is shown untouched
//! ([`OldUntouched`]). After it, a failure stops retiring and reports what is left.

mod in_service;
mod launch_template;
mod retire_old;
mod untouched;

pub(super) use in_service::InServiceGuard;
pub(super) use launch_template::CreateLaunchTemplate;
pub(super) use retire_old::{RetireOld, retire_template};
pub(super) use untouched::{OldUntouched, Seen};

use super::run::{Common, State, Steps};
use crate::ami::ResolvedAmi;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::launch::{CreatedTemplate, LaunchSpec};
use crate::lb::LoadBalancer;
use crate::report::{DeployReport, Status};
use tokio::time::Instant;

/// Capacity a strategy launches and retires: a group or a fleet.
#[async_trait::async_trait]
pub(super) trait Capacity: Clone + Send + Sync + 'static {
    /// `groups` / `fleets`, in messages.
    const PLURAL: &'static str;
    /// `the new group's` / `the new fleet's`, in the in-service guard's message.
    const NEW_WHOSE: &'static str;
    /// What keeps the new launch template while the new capacity could not be removed.
    const TEMPLATE_KEPT_WHILE: &'static str;
    /// What the strategy's own steps hand each other.
    type Launch: Default + Send + Sync;

    /// The group's name, the fleet's id.
    fn id(&self) -> &str;
    /// Drains, removes and cleans up after this old capacity; records it in `report`.
    async fn retire(
        &self,
        cx: &Ctx,
        lb: &LoadBalancer,
        report: &mut DeployReport,
    ) -> Result<(), RolloutError>;
    /// The attention line for old capacity left in place because retiring stopped; `new` is live.
    fn not_retired(&self, new: &str) -> String;
    /// How it looked before the rollout, for [`OldUntouched`].
    fn seen(&self) -> Seen;
    /// How `olds` look now, in their order: `None` when gone, `Err` when they could not be described.
    async fn look_again(cx: &Ctx, olds: &[Self]) -> Vec<Result<Option<Seen>, String>>;
}

/// The state of a rollout that launches new capacity beside the old.
pub(super) struct Replace<C: Capacity> {
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
