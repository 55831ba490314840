//! `rollout undo`: the newest kept previous release (blue-green's rollback window, `keep`) brought back
//! behind the load balancer, then the serving (bad) release retired — deleted, never kept.
//!
//! The same steps as a deploy, with a kept group in place of a new one: tag it `restoring` (so that a run
//! killed half-way is seen, and undone by `rollout abandon`), scale it to the serving groups' desired
//! capacity and attach it (`RestoreKept`); then the deploy's own health wait, in-service guard and
//! point of no return (`live`), and the deploy's retirement of the old capacity. Nothing touches the
//! serving group before the kept one is healthy, so the load balancer never has zero healthy instances;
//! a failure before the point of no return returns the kept group to the window (detached, its size and
//! tags as before) and leaves the serving group as it was.

use super::keep::{self, ExpireKept, RETIREMENT_TAGS};
use super::mark_live::MarkLive;
use super::wait_healthy::WaitHealthy;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::launch;
use crate::live::Group;
use crate::observed::ResolvedAmi;
use crate::report::{DeployReport, GroupSummary};
use crate::strategy::preflight::Preflight;
use crate::strategy::replace::{InServiceGuard, OldUntouched, Replace, RetireOld};
use crate::strategy::run::{Common, RolloutStep, Steps};
use bakery_core::pipeline::Outcome;

/// Brings the newest kept release back; preflight problems have been ruled out by the caller.
pub async fn undo(cx: &Ctx, pf: Preflight) -> Result<DeployReport, RolloutError> {
    let Some(kept) = pf.kept.first().cloned() else {
        return Err(RolloutError::NothingKept(nothing_kept(cx)));
    };
    let (Some(lb), Some(spec)) = (pf.lb.clone(), pf.launch.clone()) else {
        return Err(RolloutError::Preflight(pf.problems));
    };
    let olds: Vec<Group> = pf.retirable();
    let live = pf.live_desired();
    let desired = if live > 0 {
        live
    } else {
        cx.cfg.capacity.desired
    };
    let ami = ResolvedAmi {
        id: pf
            .group_amis
            .get(&kept.name)
            .cloned()
            .flatten()
            .or_else(|| kept.ami.clone())
            .unwrap_or_else(|| "unknown".into()),
        source: format!("kept release {}", kept.name),
        name: None,
    };
    let mut report = DeployReport::started(
        cx,
        "blue-green",
        lb.label(),
        &ami,
        olds.iter()
            .map(|g| GroupSummary::of(g, pf.group_amis.get(&g.name).cloned().flatten()))
            .collect(),
        pf.took,
    );
    report.undo = true;
    cx.say(&format!(
        "Undo: bringing back {} ({}, retired {}) at desired {desired} behind {}, then retiring {}",
        kept.name,
        ami.id,
        kept.retired_at.as_deref().unwrap_or("?"),
        lb.label(),
        if olds.is_empty() {
            "nothing (no serving group)".to_string()
        } else {
            olds.iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    let common = Common::new(
        report,
        Some("Rolling back the undo: returning the kept release to the rollback window"),
    );
    let stamp = kept.name.clone();
    let mut st = Replace::new(common, lb, spec, ami, stamp, olds);
    // The bad release is removed, never kept.
    st.keep_retired = false;
    let others: Vec<Group> = pf.kept.iter().skip(1).cloned().collect();
    let steps = Steps::new()
        .then(OldUntouched)
        .then(RestoreKept {
            kept: kept.clone(),
            desired,
        })
        .then(WaitHealthy { desired })
        .then(InServiceGuard)
        .then(MarkLive)
        .then(ClearRetirement {
            had: RETIREMENT_TAGS
                .iter()
                .copied()
                .filter(|k| match *k {
                    crate::names::RETIRED_AT_TAG => kept.retired_at.is_some(),
                    crate::names::KEEP_UNTIL_TAG => kept.keep_until.is_some(),
                    _ => kept.release_run.is_some(),
                })
                .collect(),
        })
        .then(RetireOld)
        .then(ExpireKept { kept: others });
    let st = st.run(cx, steps).await?;
    cx.say(&format!(
        "{} is live again with {} ({} instance(s) in service on {})",
        st.new.as_deref().unwrap_or_default(),
        st.ami.id,
        st.new_ids.len(),
        st.lb.label()
    ));
    Ok(st.common.report)
}

/// Why there is nothing to undo to.
fn nothing_kept(cx: &Ctx) -> String {
    let names = &cx.cfg.names;
    if cx.cfg.keep.on() {
        format!(
            "{}/{} has no group tagged bakery:rollout-state=retired (the rollback window is {}: a release is kept from the next rollout on, or the kept ones expired)",
            names.app,
            names.env,
            cx.cfg.keep.describe()
        )
    } else {
        format!(
            "{}/{} has no group tagged bakery:rollout-state=retired, and the rollback window is off: set blue_green.keep_previous_releases or keep_previous_for in the manifest to keep the previous release at each rollout",
            names.app, names.env
        )
    }
}

/// Step: the kept group, tagged `restoring`, scaled to `desired` and attached to the load balancer; on
/// rollback returned to the window.
struct RestoreKept {
    kept: Group,
    desired: u32,
}

#[async_trait::async_trait]
impl RolloutStep<Replace<Group>> for RestoreKept {
    fn name(&self) -> &'static str {
        "restore kept release"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<Group>) -> Result<(), RolloutError> {
        let name = self.kept.name.clone();
        let cap = &cx.cfg.capacity;
        // Recorded before the first call: rolling back returns it to the window whatever got done.
        st.new = Some(name.clone());
        keep::mark_restoring(cx, &name).await?;
        cx.detail(&format!(
            "Scaling {name} to {} and attaching it to {}",
            self.desired,
            st.lb.label()
        ));
        cx.clients
            .autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .min_size(cap.min.min(self.desired) as i32)
            .max_size(cap.max.max(self.desired) as i32)
            .desired_capacity(self.desired as i32)
            .send()
            .await
            .aws("UpdateAutoScalingGroup")?;
        st.lb.attach_group(cx, &name).await?;
        st.common.report.durations.launch_s = st.started.elapsed().as_secs_f64();
        Ok(())
    }

    async fn cleanup(&mut self, cx: &Ctx, st: &mut Replace<Group>, outcome: Outcome) {
        if st.new.is_none() || !st.common.undo(cx, outcome) {
            return;
        }
        let name = &self.kept.name;
        let size = self.kept.desired.max(0) as u32;
        let rb = &mut st.common.rollback;
        let retired_by = self.kept.release_run.as_deref();
        match keep::return_to_kept(cx, &st.lb, name, size, retired_by, &cx.cancel_cleanup).await {
            Ok(()) => rb.actions.push(format!(
                "returned {name} to the kept releases (detached from {}, size {size})",
                st.lb.label()
            )),
            Err(e) => {
                st.new_gone = false;
                rb.failures.push(format!(
                    "{name} could not be returned to the kept releases: {e} (`rollout abandon --run-id {}` tries again)",
                    cx.run_id
                ));
            }
        }
    }
}

/// Step, after the point of no return: the group brought back loses its retirement tags (it is live
/// again). A failure is reported for attention, not an error: the `live` state is what counts.
struct ClearRetirement {
    had: Vec<&'static str>,
}

#[async_trait::async_trait]
impl RolloutStep<Replace<Group>> for ClearRetirement {
    fn name(&self) -> &'static str {
        "clear retirement tags"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<Group>) -> Result<(), RolloutError> {
        let name = st.new.clone().unwrap_or_default();
        if let Err(e) = launch::untag_group(cx, &name, &self.had).await {
            st.common.report.attention.push(format!(
                "{name} is live but still carries {}: {e}",
                self.had.join(", ")
            ));
        }
        Ok(())
    }
}
