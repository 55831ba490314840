//! Spot fleet, as in seed 002's deploy script (docs/origins.md), done right:
//!
//! 1. create a launch template (AMI, key, security groups, user data, instance profile, tags) and request a
//!    `maintain` spot fleet from it: one override per instance type × subnet, the ALB's target group in
//!    `TargetGroupsConfig` (the fleet registers each instance it launches), tagged as bakery's and
//!    `in-progress`, ClientToken = run id + stamp (a retried request never makes a second fleet);
//! 2. wait until the fleet is fulfilled (activity status `fulfilled`, target capacity of instances), then
//!    until every instance is `healthy` in the target group (and, if asked, has stayed so);
//! 3. check once more, then tag the new fleet `live` — the point of no return;
//! 4. for each old fleet of this app/env (found by tag, never by target group): deregister its instances
//!    from the target group and wait for draining, cancel it with `TerminateInstances`, wait until its
//!    instances are gone, delete its launch template (if rollout made it).
//!
//! If step 1–3 fails (fleet error, timeout, interrupt), the new fleet is cancelled with its instances and
//! the launch template deleted; the old fleets are never touched before the new one is healthy.
//! DescribeSpotFleetRequests has no filters: fleets are listed and picked by their tags here.
//!
//! This file only composes the steps: the fleets as AWS lists them, preflight's checks and what the steps
//! hand each other are in `fleet` (its waits use `crate::wait::poller`), each step in its own file. Steps import
//! their siblings (`super::fleet::LiveFleet`), never this file.

pub(super) mod fleet;
mod fleet_role;
mod mark_live;
mod plan_diff;
mod request;
pub(super) mod retire;
mod wait_healthy;

pub use fleet::LiveFleet;

use super::interface::Strategy;
use super::preflight::Preflight;
use super::replace::{CreateLaunchTemplate, InServiceGuard, OldUntouched, Replace, RetireOld};
use super::run::{Common, Steps};
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::launch::Placement;
use crate::manifest::StrategyKind;
use crate::names::STATE_IN_PROGRESS;
use crate::report::DeployReport;
use fleet_role::ResolveFleetRole;
use mark_live::MarkFleetLive;
use request::RequestFleet;
use std::time::SystemTime;
use wait_healthy::WaitFleetHealthy;

/// A new spot fleet beside the old ones; the old ones are cancelled once the new one is healthy.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpotFleet;

#[async_trait::async_trait]
impl Strategy for SpotFleet {
    fn kind(&self) -> StrategyKind {
        StrategyKind::SpotFleet
    }

    fn plan(&self, cx: &Ctx, pf: &Preflight) -> Vec<String> {
        let cfg = &cx.cfg;
        let sf = &cfg.spot_fleet;
        let names = &cfg.names;
        let tg = names.target_group();
        let mut steps: Vec<String> = pf
            .fleets
            .iter()
            .map(|f| format!("live fleet {}", f.describe()))
            .collect();
        if pf.fleets.is_empty() {
            steps.push("no live spot fleet".into());
        }
        let placement = pf
            .launch
            .as_ref()
            .map(|l| l.placement.clone())
            .unwrap_or_else(|| Placement::Subnets(vec!["<the load balancer's subnets>".into()]));
        let n_places = match &placement {
            Placement::Subnets(s) => s.len(),
            Placement::Zones(z) => z.len(),
        };
        steps.push(CreateLaunchTemplate::plan(cx, pf, false));
        steps.push(format!(
            "request a maintain spot fleet of {} instance(s): {} in {} ({} override(s)), {}, {}, fleet role {}, registering in {tg}, tagged in-progress",
            sf.target_capacity,
            sf.instance_types.join(", "),
            placement.describe(),
            sf.instance_types.len() * n_places,
            sf.allocation_strategy,
            sf.max_price
                .as_deref()
                .map(|p| format!("max price {p} USD/h"))
                .unwrap_or_else(|| "max price: the on-demand price".into()),
            sf.iam_fleet_role,
        ));
        steps.push(format!(
            "wait up to {} s for the fleet to be fulfilled, then up to {} s for its {} instance(s) to be healthy in {tg}{}; otherwise cancel the new fleet with its instances, delete the launch template and stop",
            sf.fulfil_timeout.as_secs(),
            sf.health_timeout.as_secs(),
            sf.target_capacity,
            if cfg.timeouts.min_healthy.is_zero() {
                String::new()
            } else {
                format!(", held for {} s", cfg.timeouts.min_healthy.as_secs())
            }
        ));
        for f in pf
            .fleets
            .iter()
            .filter(|f| f.rollout_state.as_deref() != Some(STATE_IN_PROGRESS))
        {
            steps.push(format!(
                "retire {}: deregister its {} instance(s) from {tg} and wait for draining (up to {} s), cancel it with its instances, delete its launch template if rollout made it",
                f.id,
                f.instances.len(),
                cfg.timeouts.drain.as_secs()
            ));
        }
        if pf.fleets.is_empty() {
            steps.push("no live fleet to retire (first spot-fleet rollout)".into());
        }
        for g in pf.retirable() {
            steps.push(format!(
                "leave Auto Scaling group {} in place (spot-fleet retires only spot fleets)",
                g.name
            ));
        }
        steps
    }

    async fn changes(
        &self,
        cx: &Ctx,
        pf: &Preflight,
    ) -> Result<Vec<crate::diff::DiffLine>, RolloutError> {
        plan_diff::changes(cx, pf).await
    }

    async fn deploy(&self, cx: &Ctx, pf: Preflight) -> Result<DeployReport, RolloutError> {
        let (Some(lb), Some(spec), Some(ami)) = (pf.lb.clone(), pf.launch.clone(), pf.ami.clone())
        else {
            return Err(RolloutError::Preflight(pf.problems));
        };
        if lb.target_group_arn.is_none() {
            return Err(RolloutError::Preflight(vec![
                "spot-fleet needs the ALB's target group".into(),
            ]));
        }
        let olds = pf.fleets.clone();
        let stamp = crate::names::stamp(SystemTime::now(), &cx.run_id);
        let mut report = DeployReport::started(
            cx,
            &self.kind().to_string(),
            lb.label(),
            &ami,
            olds.iter().map(|f| f.summary(None, Vec::new())).collect(),
            pf.took,
        );
        cx.say(&format!(
            "Rolling out {}{} to {}/{} as a spot fleet ({} live fleet(s), target capacity {})",
            ami.id,
            ami.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            cx.cfg.names.app,
            cx.cfg.names.env,
            olds.len(),
            cx.cfg.spot_fleet.target_capacity
        ));
        for g in pf.retirable() {
            report.attention.push(format!(
                "Auto Scaling group {} is still attached to {} (spot-fleet does not retire groups)",
                g.name,
                lb.label()
            ));
        }
        let common = Common::new(
            report,
            Some("Rolling back: cancelling the new spot fleet and deleting its launch template"),
        );
        let st = Replace::new(common, lb, spec, ami, stamp, olds);
        let steps = Steps::new()
            .then(OldUntouched)
            .then(ResolveFleetRole)
            .then(CreateLaunchTemplate)
            .then(RequestFleet)
            .then(WaitFleetHealthy)
            .then(InServiceGuard)
            .then(MarkFleetLive)
            .then(RetireOld);
        let st = st.run(cx, steps).await?;
        cx.say(&format!(
            "{} is live with {} ({} instance(s) healthy in {})",
            st.new.as_deref().unwrap_or_default(),
            st.ami.id,
            st.new_ids.len(),
            st.lb.label()
        ));
        Ok(st.common.report)
    }
}
