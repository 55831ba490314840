//! Blue-green, as in seed 004's deploy script (docs/origins.md), done right:
//!
//! 1. create a launch template and a new group (tagged `in-progress`), attached to the load balancer;
//! 2. wait until every desired instance is InService+Healthy in the group and in service on the load
//!    balancer (and, if asked, has stayed so for `min_healthy_seconds`);
//! 3. check once more, then mark the new group `live` — the point of no return;
//! 4. for each old group: detach it from the load balancer (AWS drains its connections), wait until its
//!    instances are deregistered, scale it to 0, wait until they are gone, delete it and its launch template
//!    — or, with a rollback window (`blue_green.keep_previous_*`, `keep`), keep it detached at its kept size
//!    with its launch template for `rollout undo` (`undo`); with alarm gates (`gates`), keep it whole and
//!    detached for the bake time while the alarms are watched (`bake`: one in ALARM and the session rolls
//!    back by itself with `undo`); then delete the kept groups whose window ended.
//!
//! If step 1–3 fails (timeout, error, interrupt), the new group and launch template are deleted and the
//! old group is left exactly as it was: nothing ever touches it before the new one is healthy, so the load
//! balancer never has zero healthy instances. A failure in step 4 stops there and reports what is left; the
//! new group is live and serving, and the remaining old groups keep serving too.

mod bake;
pub(super) mod create_group;
pub(super) mod keep;
mod mark_live;
mod plan_diff;
mod retire;
mod undo;
mod wait_healthy;

pub use keep::{KeptFate, expire_kept};
pub use undo::undo;

use super::interface::Strategy;
use super::preflight::Preflight;
use super::replace::{CreateLaunchTemplate, InServiceGuard, OldUntouched, Replace, RetireOld};
use super::run::{Common, Steps};
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::live::Group;
use crate::manifest::StrategyKind;
use crate::report::{DeployReport, GroupSummary};
use bake::Bake;
use create_group::CreateGroup;
use keep::ExpireKept;
use mark_live::MarkLive;
use std::time::SystemTime;
use wait_healthy::WaitHealthy;

/// A new group beside the old one; the old one goes once the new one is healthy.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlueGreen;

#[async_trait::async_trait]
impl Strategy for BlueGreen {
    fn kind(&self) -> StrategyKind {
        StrategyKind::BlueGreen
    }

    fn plan(&self, cx: &Ctx, pf: &Preflight) -> Vec<String> {
        let cfg = &cx.cfg;
        let names = &cfg.names;
        let desired = cfg.capacity.desired_given_live(pf.live_desired());
        let lb = pf
            .lb
            .as_ref()
            .map(|l| l.label())
            .unwrap_or_else(|| names.load_balancer());
        let group = names.group("<timestamp>");
        let mut steps = vec![
            CreateLaunchTemplate::plan(cx, pf, true),
            format!(
                "create group {group}: min {} max {} desired {desired}{}, health check ELB, grace {} s, {}, attached to {lb}",
                cfg.capacity.min.min(desired),
                cfg.capacity.max.max(desired),
                if desired != cfg.capacity.desired {
                    format!(
                        " (manifest {}, matching the live {})",
                        cfg.capacity.desired,
                        pf.live_desired()
                    )
                } else {
                    String::new()
                },
                cfg.instances.grace_period_seconds,
                pf.launch
                    .as_ref()
                    .map(|l| l.placement.describe())
                    .unwrap_or_else(|| "the load balancer's subnets".into()),
            ),
            format!(
                "wait up to {} s for {desired} instance(s) InService+Healthy in the group and in service on {lb}{}; otherwise delete the new group and launch template and stop",
                cfg.timeouts.health.as_secs(),
                if cfg.timeouts.min_healthy.is_zero() {
                    String::new()
                } else {
                    format!(", held for {} s", cfg.timeouts.min_healthy.as_secs())
                }
            ),
        ];
        let w = &cfg.keep;
        let now = std::time::SystemTime::now();
        let until = keep::keep_until(w, now);
        for g in pf.retirable().iter().filter(|g| !g.in_progress()) {
            let template = g
                .launch_template
                .as_ref()
                .and_then(|l| l.name.as_deref())
                .map(|n| format!(" and launch template {n}"))
                .unwrap_or_default();
            steps.push(if w.on() {
                format!(
                    "retire {}: detach from {lb} and wait for draining (up to {} s), scale to {} and keep it{template} for `rollout undo` until {}",
                    g.name,
                    cfg.timeouts.drain.as_secs(),
                    w.size,
                    until.as_deref().unwrap_or("newer releases replace it")
                )
            } else {
                format!(
                    "retire {}: detach from {lb} and wait for draining (up to {} s), scale to 0, wait for its {} instance(s) to terminate, delete it{template}",
                    g.name,
                    cfg.timeouts.drain.as_secs(),
                    g.instances.len(),
                )
            });
        }
        if pf.retirable().is_empty() {
            steps.push("no live group to retire (first rollout)".into());
        }
        let g = &cx.cfg.gates;
        if g.baking() {
            steps.push(format!(
                "bake time: keep the previous release whole and detached, read {} every {} s for {}; if one is in ALARM (or gone), bring the previous release back behind {lb} and delete the new group (`rollout undo`'s steps)",
                g.alarms.join(", "),
                g.check_interval.as_secs(),
                crate::config::human_duration(g.bake_time)
            ));
        }
        let retiring: Vec<Group> = pf
            .retirable()
            .into_iter()
            .filter(|g| !g.in_progress())
            .collect();
        for (name, why) in keep::after_rollout(&retiring, &pf.kept, w, now) {
            steps.push(format!(
                "delete kept release {name} with its launch template: {why}"
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
        let olds: Vec<Group> = pf.retirable();
        let desired = cx.cfg.capacity.desired_given_live(pf.live_desired());
        let stamp = crate::names::stamp(SystemTime::now(), &cx.run_id);
        let report = DeployReport::started(
            cx,
            &self.kind().to_string(),
            lb.label(),
            &ami,
            olds.iter()
                .map(|g| GroupSummary::of(g, pf.group_amis.get(&g.name).cloned().flatten()))
                .collect(),
            pf.took,
        );
        cx.say(&format!(
            "Rolling out {}{} to {}/{} ({} live group(s), desired {desired})",
            ami.id,
            ami.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            cx.cfg.names.app,
            cx.cfg.names.env,
            olds.len()
        ));
        let common = Common::new(
            report,
            Some("Rolling back: removing the new group and launch template"),
        );
        let st = Replace::new(common, lb, spec, ami, stamp, olds);
        let steps = Steps::new()
            .then(OldUntouched)
            .then(CreateLaunchTemplate)
            .then(CreateGroup { desired })
            .then(WaitHealthy { desired })
            .then(InServiceGuard)
            .then(MarkLive)
            .then(RetireOld)
            .then(Bake)
            .then(ExpireKept {
                kept: pf.kept.clone(),
            });
        let st = st.run(cx, steps).await?;
        cx.say(&format!(
            "{} is live with {} ({} instance(s) in service on {})",
            st.new.as_deref().unwrap_or_default(),
            st.ami.id,
            st.new_ids.len(),
            st.lb.label()
        ));
        Ok(st.common.report)
    }
}
