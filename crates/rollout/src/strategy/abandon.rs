//! `rollout abandon`: undo what a rollout that died half-way (SIGKILL, a lost CI runner) left behind, so the
//! environment is back in the state before that rollout. A live rollout rolls back by itself on Ctrl-C or
//! SIGTERM; only a killed one leaves a group or fleet tagged `in-progress`, which blocks the next rollout.
//!
//! What it removes is only what the dead run made, found by bakery's tags (`bakery:app`, `bakery:env`,
//! `bakery:run-id`): its `in-progress` group (force-deleted with its instances) or fleet (cancelled with its
//! instances), and its launch templates. Live groups and fleets are never touched, except to roll back an
//! instance refresh a dead run started on one (`instance_refresh::abandon_refresh`). With `--run-id` it
//! also finds a run killed before its group existed (only a launch template was made).

use super::blue_green::create_group::delete_group;
use super::blue_green::keep::return_to_kept;
use super::instance_refresh::abandon_refresh;
use super::spot_fleet::fleet::fleets;
use super::spot_fleet::retire::cancel_fleet;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::{launch, live, wait};
use aws_sdk_ec2::types::Filter;
use serde::Serialize;
use std::collections::BTreeSet;

/// What `rollout abandon` did.
#[derive(Debug, Default, Serialize)]
pub struct AbandonReport {
    /// The dead runs it undid.
    pub runs: Vec<String>,
    /// What it removed, one line each.
    pub removed: Vec<String>,
    /// What it could not remove.
    pub failures: Vec<String>,
}

impl AbandonReport {
    /// The report as text.
    pub fn render(&self) -> String {
        if self.runs.is_empty() {
            return "nothing to abandon: no rollout of this environment is in progress\n".into();
        }
        let mut s = format!("abandoned run(s) {}\n", self.runs.join(", "));
        for r in &self.removed {
            s.push_str(&format!("  removed {r}\n"));
        }
        for f in &self.failures {
            s.push_str(&format!("  FAILED {f}\n"));
        }
        s
    }
}

/// Undoes the environment's in-progress rollouts (or only `run_id`'s).
pub async fn abandon(cx: &Ctx, run_id: Option<&str>) -> Result<AbandonReport, RolloutError> {
    // EC2's and Auto Scaling's searches are eventually consistent: what a run made in the seconds before
    // it died may not be listed at once. Searching a few seconds later finds it.
    cx.say(&format!(
        "Looking for what dead rollouts left (in {} s, so that the newest is listed)",
        bakery_core::propagation::NOT_FOUND_CONFIRMATION.as_secs()
    ));
    tokio::time::sleep(bakery_core::propagation::NOT_FOUND_CONFIRMATION).await;
    let wanted = |r: Option<&str>| match run_id {
        Some(id) => r == Some(id),
        None => true,
    };
    let (groups, live_groups): (Vec<_>, Vec<_>) = live::groups(cx)
        .await?
        .into_iter()
        .filter(|g| !g.deleting())
        .partition(|g| g.in_progress());
    let groups: Vec<_> = groups
        .into_iter()
        .filter(|g| wanted(g.run_id.as_deref()))
        .collect();
    // A dead `rollout undo` left a kept group `restoring`: it goes back to the kept releases.
    let restoring: Vec<_> = live_groups
        .iter()
        .filter(|g| g.restoring() && wanted(g.release_run.as_deref()))
        .cloned()
        .collect();
    let fleets: Vec<_> = fleets(cx)
        .await?
        .into_iter()
        .filter(|f| {
            f.rollout_state.as_deref() == Some(crate::names::STATE_IN_PROGRESS)
                && wanted(f.run_id.as_deref())
        })
        .collect();
    // A dead instance-refresh run left its refresh running on a live group.
    let mut refreshes = Vec::new();
    // Only an instance-refresh environment has one to look for (and only AWS, not moto, answers for it).
    let refreshing = cx.cfg.strategy == crate::manifest::StrategyKind::InstanceRefresh;
    for g in live_groups.iter().filter(|_| refreshing) {
        refreshes.extend(abandon_refresh(cx, g, wanted).await?);
    }
    let mut runs: BTreeSet<String> = groups
        .iter()
        .filter_map(|g| g.run_id.clone())
        .chain(fleets.iter().filter_map(|f| f.run_id.clone()))
        .collect();
    runs.extend(run_id.map(str::to_string));
    runs.extend(refreshes.iter().map(|r| r.run.clone()));
    runs.extend(restoring.iter().filter_map(|g| g.release_run.clone()));
    let mut report = AbandonReport {
        runs: runs.iter().cloned().collect(),
        ..Default::default()
    };
    for r in refreshes {
        report.removed.extend(r.removed);
        report.failures.extend(r.failures);
    }
    let t = cx.cfg.timeouts.rollback;
    let cancel = &cx.cancel_cleanup;
    for f in &fleets {
        match cancel_fleet(cx, &f.id).await {
            Ok(()) => report
                .removed
                .push(format!("fleet {} and its instances", f.id)),
            Err(e) => report.failures.push(format!("fleet {}: {e}", f.id)),
        }
    }
    if !restoring.is_empty() {
        let lb = crate::lb::LoadBalancer::find(cx).await?;
        for g in &restoring {
            match return_to_kept(cx, &lb, &g.name, cx.cfg.keep.size, None, cancel).await {
                Ok(()) => report.removed.push(format!(
                    "the undo's hold on {}: returned to the kept releases (detached, size {})",
                    g.name, cx.cfg.keep.size
                )),
                Err(e) => report.failures.push(format!("group {}: {e}", g.name)),
            }
        }
    }
    for g in &groups {
        let deleted = wait::while_busy("DeleteAutoScalingGroup", t, cancel, || {
            delete_group(cx, &g.name, true)
        })
        .await;
        match deleted {
            Ok(()) => match wait::group_deleted(cx, &g.name, t, cancel).await {
                Ok(()) => report
                    .removed
                    .push(format!("group {} and its instances", g.name)),
                Err(e) => report.failures.push(format!("group {}: {e}", g.name)),
            },
            Err(e) => report.failures.push(format!("group {}: {e}", g.name)),
        }
    }
    if runs.is_empty() {
        return Ok(report);
    }
    // The runs' launch templates, once nothing of theirs uses them any more.
    let out = cx
        .clients
        .ec2
        .describe_launch_templates()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", bakery_core::tags::RUN_ID))
                .set_values(Some(runs.iter().cloned().collect()))
                .build(),
        )
        .send()
        .await
        .aws("DescribeLaunchTemplates")?;
    for lt in out.launch_templates() {
        let Some(id) = lt.launch_template_id() else {
            continue;
        };
        match launch::delete_template_if_ours(cx, id).await {
            Ok(Some(name)) => report
                .removed
                .push(format!("launch template {name} ({id})")),
            Ok(None) => {}
            Err(e) => report.failures.push(format!("launch template {id}: {e}")),
        }
    }
    Ok(report)
}
