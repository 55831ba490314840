//! Instance refresh, as in seed 001 (docs/origins.md): the live group keeps its name, its load balancer attachment and its
//! scaling policies; only its instances are replaced.
//!
//! 1. a new version of the group's launch template, copied from the version the group runs, with the new
//!    `ImageId` (nothing else changes);
//! 2. `StartInstanceRefresh` with the manifest's preferences and a `DesiredConfiguration` naming that
//!    version (AWS replaces instances a batch at a time, keeping `min_healthy_percentage` in service, and
//!    with `auto_rollback` puts the old version back if the refresh fails or an alarm fires);
//! 3. follow `DescribeInstanceRefreshes` through bakery-core's poller until the refresh ends, at most
//!    `timeout_seconds` (then the refresh is cancelled);
//! 4. on success the new version becomes the template's default and the group's, so later scale-outs
//!    launch the new AMI, and versions beyond `max_launch_template_versions` are deleted, oldest first —
//!    never the default version, the one just replaced, or one a group references.
//!
//! On failure the version this run created is deleted unless something still uses it (a group, or
//! instances a refresh left on it). Interrupted during the wait, rollout asks on a terminal whether to
//! cancel the refresh (elsewhere it cancels), and reports what was left.
//!
//! This file only composes the steps: the option [`OnInterrupt`] is in `on_interrupt`, the live group and
//! preflight's checks of it in `live_group`, the run's state in `state` ([`Refresh`]), the AWS calls in
//! `refresh` and `versions`, each step in its own file. Steps import their siblings
//! (`super::state::Refresh`), never this file.

mod abandon;
mod adopt;
mod create_version;
pub(super) mod live_group;
mod on_interrupt;
mod plan_diff;
mod prune;
mod read_version;
mod refresh;
mod run_refresh;
mod state;
mod versions;

pub(super) use abandon::abandon_refresh;
pub use on_interrupt::OnInterrupt;

use super::interface::Strategy;
use super::preflight::Preflight;
use super::run::{Common, Steps};
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::live;
use crate::manifest::StrategyKind;
use crate::report::{DeployReport, GroupSummary, Status};
use adopt::AdoptVersion;
use create_version::CreateVersion;
use live_group::live_group;
use prune::PruneVersions;
use read_version::ReadCurrentVersion;
use run_refresh::RunRefresh;
use state::Refresh;

/// A new launch template version rolled into the live group by an Auto Scaling instance refresh.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstanceRefresh {
    /// What an interrupt during the refresh does.
    pub on_interrupt: OnInterrupt,
}

#[async_trait::async_trait]
impl Strategy for InstanceRefresh {
    fn kind(&self) -> StrategyKind {
        StrategyKind::InstanceRefresh
    }

    fn plan(&self, cx: &Ctx, pf: &Preflight) -> Vec<String> {
        let r = &cx.cfg.instance_refresh;
        let ami = pf.ami.as_ref().map(|a| a.id.as_str()).unwrap_or("<--ami>");
        let Ok(g) = live_group(&pf.groups) else {
            return vec!["nothing: there is no single live group to refresh".into()];
        };
        let lt = g
            .launch_template
            .as_ref()
            .and_then(|l| l.name.clone().or(l.id.clone()))
            .unwrap_or_else(|| "<none>".into());
        let from = g
            .launch_template
            .as_ref()
            .and_then(|l| l.version.clone())
            .unwrap_or_else(|| "$Default".into());
        let mut prefs = vec![format!("min healthy {}%", r.min_healthy_percentage)];
        if let Some(m) = r.max_healthy_percentage {
            prefs.push(format!("max healthy {m}%"));
        }
        prefs.push(match r.instance_warmup_seconds {
            Some(w) => format!("warm-up {w} s"),
            None => "warm-up: the group's grace period".into(),
        });
        if !r.checkpoint_percentages.is_empty() {
            prefs.push(format!(
                "checkpoints {}%{}",
                r.checkpoint_percentages
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("/"),
                r.checkpoint_delay_seconds
                    .map(|d| format!(" every {d} s"))
                    .unwrap_or_default()
            ));
        }
        prefs.push(format!(
            "auto rollback {}",
            if r.auto_rollback { "on" } else { "off" }
        ));
        if !r.alarms.is_empty() {
            prefs.push(format!("alarms {}", r.alarms.join(", ")));
        }
        if !r.bake_time.is_zero() {
            prefs.push(format!(
                "bake time {}",
                crate::config::human_duration(r.bake_time)
            ));
        }
        if r.skip_matching {
            prefs.push("skip matching".into());
        }
        vec![
            format!(
                "create a version of launch template {lt} from version {from} ({}) with ImageId {ami}",
                pf.group_amis
                    .get(&g.name)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| "AMI unknown".into())
            ),
            format!(
                "start an instance refresh of {} ({} instance(s)) to that version: {}",
                g.name,
                g.instances.len(),
                prefs.join(", ")
            ),
            format!(
                "follow it up to {} s; on timeout or failure cancel it and delete the new version unless something uses it",
                r.timeout.as_secs()
            ),
            format!(
                "on success: make the new version {lt}'s default and {}'s, keep at most {} versions (never the default, the replaced one, or one a group uses)",
                g.name, r.max_launch_template_versions
            ),
        ]
    }

    async fn changes(
        &self,
        cx: &Ctx,
        pf: &Preflight,
    ) -> Result<Vec<crate::diff::DiffLine>, RolloutError> {
        plan_diff::changes(cx, pf).await
    }

    async fn deploy(&self, cx: &Ctx, pf: Preflight) -> Result<DeployReport, RolloutError> {
        let Some(ami) = pf.ami.clone() else {
            return Err(RolloutError::Preflight(pf.problems));
        };
        let group = live_group(&pf.groups)
            .map_err(|p| RolloutError::Preflight(vec![p]))?
            .clone();
        let old_ami = pf.group_amis.get(&group.name).cloned().flatten();
        let report = DeployReport::started(
            cx,
            &self.kind().to_string(),
            pf.lb
                .as_ref()
                .map(|l| l.label())
                .unwrap_or_else(|| cx.cfg.names.load_balancer()),
            &ami,
            vec![GroupSummary::of(&group, old_ami.clone())],
            pf.took,
        );
        cx.say(&format!(
            "Refreshing {} ({} instance(s)) to {}{}",
            group.name,
            group.instances.len(),
            ami.id,
            ami.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
        let mut st = Refresh::new(Common::new(report, None), group, ami);
        let steps = Steps::new()
            .then(ReadCurrentVersion)
            .then(CreateVersion)
            .then(RunRefresh {
                on_interrupt: self.on_interrupt,
            })
            .then(AdoptVersion)
            .then(PruneVersions);
        let r = steps.run(cx, &mut st).await;
        if r.error.is_some() {
            return Err(st.failed());
        }
        let mut report = st.common.report;
        let id = st.refresh_id.unwrap_or_default();
        if let Ok(Some(now)) = live::group(cx, &st.group.name).await {
            report.new_group = Some(GroupSummary::of(&now, Some(st.ami.id.clone())));
        }
        if !report.attention.is_empty() {
            report.error = Some(format!(
                "instance refresh {id} succeeded, but {} step(s) after it did not",
                report.attention.len()
            ));
            report.status = Status::Incomplete;
            return Err(RolloutError::Incomplete(Box::new(report)));
        }
        cx.say(&format!(
            "{} runs {} ({} version {})",
            st.group.name,
            st.ami.id,
            st.current
                .as_ref()
                .map(|c| c.template_name.as_str())
                .unwrap_or_default(),
            st.version.unwrap_or_default()
        ));
        Ok(report)
    }
}
