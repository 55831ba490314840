//! Instance refresh, as in seed 001: the live group keeps its name, its load balancer attachment and its
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

mod adopt;
mod create_version;
mod prune;
mod read_version;
mod refresh;
mod run_refresh;
mod versions;

use super::run::{Common, State, Steps};
use super::{Preflight, Strategy};
use crate::ami::ResolvedAmi;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::live::{self, Group};
use crate::manifest::StrategyKind;
use crate::report::{DeployReport, GroupSummary, Status};
use adopt::AdoptVersion;
use create_version::CreateVersion;
use prune::PruneVersions;
use read_version::ReadCurrentVersion;
use refresh::{Snapshot, active_refresh};
use run_refresh::RunRefresh;
use tokio::time::Instant;
use versions::Current;

/// What an interrupt (first Ctrl-C, SIGTERM, the session's cancellation token) does to a running refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnInterrupt {
    /// Ask on the terminal (`y/N`); when stdin or stderr is not a terminal, cancel.
    #[default]
    Ask,
    /// Cancel the refresh.
    Cancel,
    /// Leave the refresh running and report it.
    Leave,
}

/// A new launch template version rolled into the live group by an Auto Scaling instance refresh.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstanceRefresh {
    /// What an interrupt during the refresh does.
    pub on_interrupt: OnInterrupt,
}

/// The group an instance refresh replaces the instances of: the one live group.
fn live_group(groups: &[Group]) -> Result<&Group, String> {
    let live: Vec<&Group> = groups
        .iter()
        .filter(|g| !g.deleting() && !g.in_progress())
        .collect();
    match live.as_slice() {
        [g] => Ok(g),
        [] => Err(
            "instance-refresh replaces the instances of the live group, and there is none: roll out once with \"strategy\": \"blue-green\" to create it"
                .to_string(),
        ),
        many => Err(format!(
            "instance-refresh needs exactly one live group, found {}: {} (re-run the blue-green rollout that left them, or retire the extra ones)",
            many.len(),
            many.iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Read-only checks `preflight` runs for this strategy: one live group, on a launch template, with no
/// instance refresh running.
pub(super) async fn preflight_problems(
    cx: &Ctx,
    groups: &[Group],
) -> Result<Vec<String>, RolloutError> {
    let g = match live_group(groups) {
        Ok(g) => g,
        Err(p) => return Ok(vec![p]),
    };
    let mut problems = Vec::new();
    if g.launch_template.is_none() {
        problems.push(format!(
            "{} has no launch template{}: instance-refresh creates a new launch template version",
            g.name,
            g.launch_configuration
                .as_deref()
                .map(|lc| format!(" (it uses launch configuration {lc})"))
                .unwrap_or_default()
        ));
    }
    match active_refresh(cx, &g.name).await {
        Ok(Some(r)) => problems.push(format!(
            "instance refresh {} of {} is {} ({}% done): wait for it to end, or cancel it (aws autoscaling cancel-instance-refresh --auto-scaling-group-name {})",
            r.id, g.name, r.status, r.percentage, g.name
        )),
        Ok(None) => {}
        Err(e) => problems.push(format!(
            "cannot tell whether an instance refresh of {} is running: {e}",
            g.name
        )),
    }
    Ok(problems)
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

/// The state of an instance refresh.
pub(super) struct Refresh {
    /// Report, rollback, failure, point of no return (the refresh succeeded).
    common: Common,
    /// The live group whose instances are replaced.
    group: Group,
    /// The AMI rolled out.
    ami: ResolvedAmi,
    /// When the run started.
    started: Instant,
    /// The launch template version the group ran.
    current: Option<Current>,
    /// The version this run created.
    version: Option<i64>,
    /// The refresh this run started.
    refresh_id: Option<String>,
    /// How the refresh ended, or was last seen when it had not.
    end: Option<Snapshot>,
    /// The refresh is to be cancelled by rolling back.
    cancel_refresh: bool,
    /// A timed-out or broken follow counts the cancel in the health wait's duration.
    healthy_counts_cancel: bool,
    /// When following started.
    follow_started: Option<Instant>,
    /// Interrupted and told to leave the refresh running: nothing is undone.
    left_running: bool,
    /// Rolling back kept the new version because instances (may) run it.
    version_in_use: bool,
    /// When adopting the new version started.
    adopt_started: Option<Instant>,
}

impl State for Refresh {
    fn common(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl Refresh {
    fn new(common: Common, group: Group, ami: ResolvedAmi) -> Self {
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
    fn current(&self) -> Result<&Current, RolloutError> {
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
    fn failed(mut self) -> RolloutError {
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
