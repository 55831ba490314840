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

use super::{Preflight, Strategy};
use crate::ami::ResolvedAmi;
use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt, RolloutError};
use crate::live::{self, Group};
use crate::manifest::StrategyKind;
use crate::names::AMI_TAG;
use crate::report::{DeployReport, GroupSummary, RollbackReport, Status};
use aws_sdk_autoscaling::types::{
    AlarmSpecification, DesiredConfiguration, InstanceRefreshStatus, LaunchTemplateSpecification,
    RefreshPreferences, RefreshStrategy,
};
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use bakery_core::poll::{Poll, PollError, Poller, WaitError};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

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

/// Refresh states that will not change any more.
fn is_terminal(s: &InstanceRefreshStatus) -> bool {
    matches!(
        s,
        InstanceRefreshStatus::Successful
            | InstanceRefreshStatus::Failed
            | InstanceRefreshStatus::Cancelled
            | InstanceRefreshStatus::RollbackSuccessful
            | InstanceRefreshStatus::RollbackFailed
    )
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

/// One look at a refresh.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    id: String,
    status: String,
    terminal: bool,
    reason: Option<String>,
    percentage: i32,
    to_update: Option<i32>,
}

impl Snapshot {
    /// A refresh whose state is not known: treated as still running, so nothing it may use is deleted.
    fn unknown(id: &str, why: &str) -> Self {
        Snapshot {
            id: id.to_string(),
            status: format!("unknown ({why})"),
            terminal: false,
            reason: None,
            percentage: 0,
            to_update: None,
        }
    }

    fn of(r: &aws_sdk_autoscaling::types::InstanceRefresh) -> Self {
        Snapshot {
            id: r.instance_refresh_id().unwrap_or_default().to_string(),
            status: r
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "unknown".into()),
            terminal: r.status().is_some_and(is_terminal),
            reason: r.status_reason().map(str::to_string),
            percentage: r.percentage_complete().unwrap_or(0),
            to_update: r.instances_to_update(),
        }
    }

    /// `InProgress, 40% done, 3 instance(s) to update: Waiting for instances to warm up`.
    fn describe(&self) -> String {
        format!(
            "{}, {}% done{}{}",
            self.status,
            self.percentage,
            self.to_update
                .map(|n| format!(", {n} instance(s) to update"))
                .unwrap_or_default(),
            self.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )
    }
}

/// The group's refresh that has not ended, if any (AWS runs at most one per group).
async fn active_refresh(cx: &Ctx, group: &str) -> Result<Option<Snapshot>, AwsError> {
    let out = cx
        .clients
        .autoscaling
        .describe_instance_refreshes()
        .auto_scaling_group_name(group)
        .max_records(5)
        .send()
        .await
        .aws("DescribeInstanceRefreshes")?;
    Ok(out
        .instance_refreshes()
        .iter()
        .map(Snapshot::of)
        .find(|s| !s.terminal))
}

/// The launch template version the group runs.
#[derive(Debug, Clone)]
struct Current {
    template_id: String,
    template_name: String,
    version: i64,
    image_id: Option<String>,
}

async fn current_version(cx: &Ctx, g: &Group) -> Result<Current, RolloutError> {
    let lt = g.launch_template.as_ref().ok_or_else(|| {
        RolloutError::Preflight(vec![format!("{} has no launch template", g.name)])
    })?;
    let mut req = cx
        .clients
        .ec2
        .describe_launch_template_versions()
        .versions(lt.version.clone().unwrap_or_else(|| "$Default".into()));
    req = match (&lt.id, &lt.name) {
        (Some(id), _) => req.launch_template_id(id),
        (None, Some(name)) => req.launch_template_name(name),
        (None, None) => {
            return Err(RolloutError::Preflight(vec![format!(
                "{}'s launch template has neither an id nor a name",
                g.name
            )]));
        }
    };
    let out = req.send().await.aws("DescribeLaunchTemplateVersions")?;
    let v = out.launch_template_versions().first().ok_or_else(|| {
        RolloutError::Preflight(vec![format!(
            "{}'s launch template version {} does not exist",
            g.name,
            lt.version.as_deref().unwrap_or("$Default")
        )])
    })?;
    Ok(Current {
        template_id: v
            .launch_template_id()
            .or(lt.id.as_deref())
            .unwrap_or_default()
            .to_string(),
        template_name: v
            .launch_template_name()
            .or(lt.name.as_deref())
            .unwrap_or_default()
            .to_string(),
        version: v.version_number().unwrap_or(0),
        image_id: v
            .launch_template_data()
            .and_then(|d| d.image_id())
            .map(str::to_string),
    })
}

/// The launch template's latest and default version numbers.
async fn template_numbers(cx: &Ctx, id: &str) -> Result<(i64, i64), AwsError> {
    let out = cx
        .clients
        .ec2
        .describe_launch_templates()
        .launch_template_ids(id)
        .send()
        .await
        .aws("DescribeLaunchTemplates")?;
    let t = out.launch_templates().first();
    Ok((
        t.and_then(|t| t.latest_version_number()).unwrap_or(0),
        t.and_then(|t| t.default_version_number()).unwrap_or(0),
    ))
}

/// Version numbers of template `c` that any Auto Scaling group in the region references (`$Latest` and
/// `$Default` resolved), including mixed-instances policies.
async fn versions_in_use(
    cx: &Ctx,
    c: &Current,
    latest: i64,
    default: i64,
) -> Result<BTreeSet<i64>, AwsError> {
    let groups = cx
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("DescribeAutoScalingGroups")?;
    let mut used = BTreeSet::new();
    for g in &groups {
        let specs = g.launch_template().into_iter().chain(
            g.mixed_instances_policy()
                .and_then(|m| m.launch_template())
                .and_then(|l| l.launch_template_specification()),
        );
        for s in specs {
            let ours = s.launch_template_id() == Some(c.template_id.as_str())
                || s.launch_template_name() == Some(c.template_name.as_str());
            if !ours {
                continue;
            }
            match s.version().unwrap_or("$Default") {
                "$Latest" => used.insert(latest),
                "$Default" => used.insert(default),
                n => n.parse().map(|n| used.insert(n)).unwrap_or(false),
            };
        }
    }
    Ok(used)
}

async fn delete_versions(cx: &Ctx, template_id: &str, versions: &[i64]) -> Result<(), String> {
    let out = cx
        .clients
        .ec2
        .delete_launch_template_versions()
        .launch_template_id(template_id)
        .set_versions(Some(versions.iter().map(i64::to_string).collect()))
        .send()
        .await
        .aws("DeleteLaunchTemplateVersions")
        .map_err(|e| e.to_string())?;
    let failed: Vec<String> = out
        .unsuccessfully_deleted_launch_template_versions()
        .iter()
        .map(|f| {
            format!(
                "version {}: {}",
                f.version_number().unwrap_or(0),
                f.response_error()
                    .and_then(|e| e.message())
                    .unwrap_or("not deleted")
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join(", "))
    }
}

/// How the wait for the refresh ended.
enum Waited {
    Ended(Snapshot),
    TimedOut(Option<Snapshot>),
    Interrupted(Option<Snapshot>),
    Broken(WaitError, Option<Snapshot>),
}

/// Follows refresh `id` of `group` until it ends, `timeout` passes or `cancel` fires.
async fn follow(
    cx: &Ctx,
    group: &str,
    id: &str,
    timeout: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Waited {
    let what = format!("instance refresh {id} of {group}");
    let progress = cx.ui.progress(&cx.target(), &format!("Following {what}"));
    let last: Mutex<Option<Snapshot>> = Mutex::new(None);
    // A refresh replaces instances one warm-up at a time: minutes. One request per look, every 5 s,
    // slowing to 15 s after ten minutes.
    let poller = Poller {
        lower_bound: Duration::from_secs(5),
        interval: Duration::from_secs(5),
        soft_limit: Duration::from_secs(600),
        max_interval: Duration::from_secs(15),
        timeout,
    };
    let r = poller
        .wait(
            &what,
            cancel,
            |s, e| progress.state(s, e),
            || {
                let last = &last;
                async move {
                    let out = cx
                        .clients
                        .autoscaling
                        .describe_instance_refreshes()
                        .auto_scaling_group_name(group)
                        .instance_refresh_ids(id)
                        .send()
                        .await
                        .aws("DescribeInstanceRefreshes")?;
                    let Some(r) = out
                        .instance_refreshes()
                        .iter()
                        .find(|r| r.instance_refresh_id() == Some(id))
                    else {
                        return Err(PollError::NotFound);
                    };
                    let s = Snapshot::of(r);
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
                    if s.terminal {
                        Ok(Poll::Ready(s))
                    } else {
                        Ok(Poll::Pending(s.describe()))
                    }
                }
            },
        )
        .await;
    let last = last.into_inner().unwrap_or_else(|e| e.into_inner());
    match r {
        Ok(s) => {
            progress.finish(&format!("{what}: {}", s.describe()));
            Waited::Ended(s)
        }
        Err(WaitError::Timeout { .. }) => {
            progress.finish(&format!("{what}: not done after {} s", timeout.as_secs()));
            Waited::TimedOut(last)
        }
        Err(WaitError::Cancelled(_)) => {
            progress.finish(&format!("{what}: interrupted"));
            Waited::Interrupted(last)
        }
        Err(e) => {
            progress.finish(&format!("{what}: {e}"));
            Waited::Broken(e, last)
        }
    }
}

/// Asks on the terminal whether to cancel the refresh; a second interrupt while asking means no.
async fn ask_cancel(cx: &Ctx, id: &str) -> bool {
    eprint!(
        "rollout: cancel instance refresh {id}? Instances already replaced keep the new AMI. [y/N] "
    );
    // A plain thread, not spawn_blocking: the runtime waits for blocking tasks when it shuts down, and a
    // read that a second interrupt abandoned would keep the process alive.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(std::io::stdin().read_line(&mut line).map(|_| line));
    });
    tokio::select! {
        _ = cx.cancel_cleanup.cancelled() => false,
        r = rx => matches!(r, Ok(Ok(l)) if matches!(l.trim(), "y" | "Y" | "yes")),
    }
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
        let mut report = DeployReport::started(
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

        // 1. The new launch template version.
        let t = Instant::now();
        let current = current_version(cx, &group).await?;
        if cx.cancel.is_cancelled() {
            return Err(RolloutError::Cancelled);
        }
        let new_version = self.create_version(cx, &current, &ami).await?;
        report.durations.launch_s = t.elapsed().as_secs_f64();
        cx.detail(&format!(
            "{} version {new_version} ({}; version {} had {})",
            current.template_name,
            ami.id,
            current.version,
            current.image_id.as_deref().unwrap_or("no ImageId")
        ));

        // 2. The refresh. Anything failing from here on removes the new version again (if unused).
        if cx.cancel.is_cancelled() {
            report.error = Some("interrupted before the instance refresh started".into());
            return Err(self.failed(cx, &current, new_version, None, report).await);
        }
        let id = match self.start(cx, &group.name, &current, new_version).await {
            Ok(id) => id,
            Err(e) => {
                report.error = Some(if e.is("InstanceRefreshInProgress") {
                    format!(
                        "another instance refresh of {} started meanwhile: {e}",
                        group.name
                    )
                } else {
                    e.to_string()
                });
                return Err(self.failed(cx, &current, new_version, None, report).await);
            }
        };
        cx.detail(&format!("Instance refresh {id} started"));

        // 3. Follow it.
        let t = Instant::now();
        let timeout = cx.cfg.instance_refresh.timeout;
        let waited = follow(cx, &group.name, &id, timeout, &cx.cancel).await;
        let ended = match waited {
            Waited::Ended(s) => s,
            Waited::TimedOut(last) => {
                report.error = Some(format!(
                    "instance refresh {id} did not finish within {} s (last: {}); cancelled it",
                    timeout.as_secs(),
                    last.as_ref()
                        .map(Snapshot::describe)
                        .unwrap_or_else(|| "never seen".into())
                ));
                let end = self
                    .cancel_and_follow(cx, &group.name, &id, &mut report)
                    .await;
                report.durations.healthy_s = t.elapsed().as_secs_f64();
                return Err(self
                    .failed(cx, &current, new_version, Some(end), report)
                    .await);
            }
            Waited::Broken(e, _) => {
                report.error = Some(format!(
                    "following instance refresh {id}: {e}; cancelled it"
                ));
                let end = self
                    .cancel_and_follow(cx, &group.name, &id, &mut report)
                    .await;
                report.durations.healthy_s = t.elapsed().as_secs_f64();
                return Err(self
                    .failed(cx, &current, new_version, Some(end), report)
                    .await);
            }
            Waited::Interrupted(last) => {
                let progress = last
                    .as_ref()
                    .map(Snapshot::describe)
                    .unwrap_or_else(|| "not seen yet".into());
                let cancel = match self.on_interrupt {
                    OnInterrupt::Cancel => true,
                    OnInterrupt::Leave => false,
                    OnInterrupt::Ask => {
                        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
                            ask_cancel(cx, &id).await
                        } else {
                            true
                        }
                    }
                };
                report.durations.healthy_s = t.elapsed().as_secs_f64();
                if !cancel {
                    report.error = Some(format!(
                        "interrupted; instance refresh {id} was left running ({progress})"
                    ));
                    report.attention.push(format!(
                        "instance refresh {id} of {} is still running and will use {} version {new_version}: follow it with `aws autoscaling describe-instance-refreshes --auto-scaling-group-name {}`; when it succeeds make that version the template's default",
                        group.name, current.template_name, group.name
                    ));
                    report.status = Status::Incomplete;
                    return Err(RolloutError::Incomplete(Box::new(report)));
                }
                report.error = Some(format!(
                    "interrupted; cancelled instance refresh {id} ({progress})"
                ));
                let end = self
                    .cancel_and_follow(cx, &group.name, &id, &mut report)
                    .await;
                return Err(self
                    .failed(cx, &current, new_version, Some(end), report)
                    .await);
            }
        };
        report.durations.healthy_s = t.elapsed().as_secs_f64();
        if ended.status != InstanceRefreshStatus::Successful.as_str() {
            report.error = Some(format!(
                "instance refresh {id} ended {}{}",
                ended.status,
                ended
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
            return Err(self
                .failed(cx, &current, new_version, Some(ended), report)
                .await);
        }

        // 4. Make the new version stick, then bound the versions kept.
        let t = Instant::now();
        self.adopt(cx, &group.name, &current, new_version, &ami, &mut report)
            .await;
        self.prune(cx, &current, new_version, &mut report).await;
        report.durations.retire_s = t.elapsed().as_secs_f64();
        if let Ok(Some(now)) = live::group(cx, &group.name).await {
            report.new_group = Some(GroupSummary::of(&now, Some(ami.id.clone())));
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
            "{} runs {} ({} version {new_version})",
            group.name, ami.id, current.template_name
        ));
        Ok(report)
    }
}

impl InstanceRefresh {
    async fn create_version(
        &self,
        cx: &Ctx,
        c: &Current,
        ami: &ResolvedAmi,
    ) -> Result<i64, RolloutError> {
        cx.say(&format!(
            "Creating a version of launch template {} from version {} with {}",
            c.template_name, c.version, ami.id
        ));
        let out = cx
            .clients
            .ec2
            .create_launch_template_version()
            .launch_template_id(&c.template_id)
            .source_version(c.version.to_string())
            .version_description(format!(
                "bakery rollout {} ({}) run {}",
                ami.id,
                cx.cfg.names.base(),
                cx.run_id
            ))
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id(&ami.id)
                    .build(),
            )
            .send()
            .await
            .aws("CreateLaunchTemplateVersion")?;
        out.launch_template_version()
            .and_then(|v| v.version_number())
            .ok_or_else(|| {
                RolloutError::Aws(AwsError {
                    op: "CreateLaunchTemplateVersion",
                    code: None,
                    detail: "the answer names no version number".into(),
                })
            })
    }

    async fn start(
        &self,
        cx: &Ctx,
        group: &str,
        c: &Current,
        version: i64,
    ) -> Result<String, AwsError> {
        let r = &cx.cfg.instance_refresh;
        cx.say(&format!(
            "Starting an instance refresh of {group} to {} version {version}",
            c.template_name
        ));
        let mut prefs = RefreshPreferences::builder()
            .min_healthy_percentage(r.min_healthy_percentage as i32)
            .set_max_healthy_percentage(r.max_healthy_percentage.map(|m| m as i32))
            .set_instance_warmup(r.instance_warmup_seconds.map(|w| w as i32))
            .set_checkpoint_delay(r.checkpoint_delay_seconds.map(|d| d as i32))
            .skip_matching(r.skip_matching)
            .auto_rollback(r.auto_rollback);
        if !r.checkpoint_percentages.is_empty() {
            prefs = prefs.set_checkpoint_percentages(Some(
                r.checkpoint_percentages.iter().map(|p| *p as i32).collect(),
            ));
        }
        if !r.alarms.is_empty() {
            prefs = prefs.alarm_specification(
                AlarmSpecification::builder()
                    .set_alarms(Some(r.alarms.clone()))
                    .build(),
            );
        }
        let out = cx
            .clients
            .autoscaling
            .start_instance_refresh()
            .auto_scaling_group_name(group)
            .strategy(RefreshStrategy::Rolling)
            .desired_configuration(
                DesiredConfiguration::builder()
                    .launch_template(
                        LaunchTemplateSpecification::builder()
                            .launch_template_id(&c.template_id)
                            .version(version.to_string())
                            .build(),
                    )
                    .build(),
            )
            .preferences(prefs.build())
            .send()
            .await
            .aws("StartInstanceRefresh")?;
        Ok(out.instance_refresh_id().unwrap_or_default().to_string())
    }

    /// Cancels the refresh and follows it until it ends (under the cleanup token: a second interrupt
    /// stops following). Returns the last state seen.
    async fn cancel_and_follow(
        &self,
        cx: &Ctx,
        group: &str,
        id: &str,
        report: &mut DeployReport,
    ) -> Snapshot {
        cx.warn(&format!("Cancelling instance refresh {id} of {group}"));
        let cancelled = cx
            .clients
            .autoscaling
            .cancel_instance_refresh()
            .auto_scaling_group_name(group)
            .send()
            .await
            .aws("CancelInstanceRefresh");
        match cancelled {
            Ok(_) => {}
            // Ended meanwhile: its last state says how.
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                report.attention.push(format!(
                    "instance refresh {id} of {group} could not be cancelled ({e}): cancel it with `aws autoscaling cancel-instance-refresh --auto-scaling-group-name {group}`"
                ));
                return Snapshot::unknown(id, "cancel failed");
            }
        }
        match follow(cx, group, id, cx.cfg.timeouts.rollback, &cx.cancel_cleanup).await {
            Waited::Ended(s) => s,
            Waited::TimedOut(last) | Waited::Interrupted(last) | Waited::Broken(_, last) => {
                report.attention.push(format!(
                    "instance refresh {id} of {group} was asked to cancel but had not ended ({})",
                    last.as_ref()
                        .map(Snapshot::describe)
                        .unwrap_or_else(|| "state unknown".into())
                ));
                // Not ended: whatever it last said, it may still replace instances.
                let mut s = last.unwrap_or_else(|| Snapshot::unknown(id, "not seen"));
                s.terminal = false;
                s
            }
        }
    }

    /// The refresh failed, was cancelled or never started: delete the new version unless a group or
    /// instances still use it, and say what is left.
    async fn failed(
        &self,
        cx: &Ctx,
        c: &Current,
        version: i64,
        end: Option<Snapshot>,
        mut report: DeployReport,
    ) -> RolloutError {
        let t = Instant::now();
        let mut rb = RollbackReport::default();
        let status = end.as_ref().map(|s| s.status.as_str());
        let still_running = end.as_ref().is_some_and(|s| !s.terminal);
        // Instances a refresh replaced keep running the new version unless AWS rolled them back.
        let replaced_some = end.as_ref().is_some_and(|s| s.percentage > 0)
            && status != Some(InstanceRefreshStatus::RollbackSuccessful.as_str());
        if status == Some(InstanceRefreshStatus::RollbackSuccessful.as_str()) {
            rb.actions.push(format!(
                "AWS rolled the group back to {} version {} ({})",
                c.template_name,
                c.version,
                c.image_id.as_deref().unwrap_or("its AMI")
            ));
        }
        let used = match template_numbers(cx, &c.template_id).await {
            Ok((latest, default)) => versions_in_use(cx, c, latest, default).await,
            Err(e) => Err(e),
        };
        match used {
            _ if still_running || replaced_some => rb.warnings.push(format!(
                "{} version {version} kept: {}",
                c.template_name,
                if still_running {
                    "the instance refresh has not ended".to_string()
                } else {
                    format!(
                        "instances the refresh replaced ({}% done) run it; roll them back with `aws autoscaling rollback-instance-refresh` or re-run the rollout",
                        end.as_ref().map(|s| s.percentage).unwrap_or(0)
                    )
                }
            )),
            Ok(used) if used.contains(&version) => rb.warnings.push(format!(
                "{} version {version} kept: an Auto Scaling group references it",
                c.template_name
            )),
            Ok(_) => match delete_versions(cx, &c.template_id, &[version]).await {
                Ok(()) => rb.actions.push(format!(
                    "deleted {} version {version}",
                    c.template_name
                )),
                Err(e) => rb.failures.push(format!(
                    "{} version {version} could not be deleted: {e}",
                    c.template_name
                )),
            },
            Err(e) => rb.failures.push(format!(
                "{} version {version} kept: could not check what uses it ({e})",
                c.template_name
            )),
        }
        rb.old_groups_unchanged = !replaced_some && !still_running;
        report.attention.extend(rb.failures.iter().cloned());
        report.attention.extend(rb.warnings.iter().cloned());
        report.durations.rollback_s = t.elapsed().as_secs_f64();
        report.rollback = Some(rb);
        if replaced_some || still_running || !report.attention.is_empty() {
            report.status = Status::Incomplete;
            RolloutError::Incomplete(Box::new(report))
        } else {
            report.status = Status::RolledBack;
            RolloutError::RolledBack(Box::new(report))
        }
    }

    /// After a successful refresh: the new version becomes the template's default and the group's (AWS
    /// sets the group's itself when a refresh with a desired configuration succeeds; checked, not assumed),
    /// and the group's `bakery:ami` tag names the new AMI.
    async fn adopt(
        &self,
        cx: &Ctx,
        group: &str,
        c: &Current,
        version: i64,
        ami: &ResolvedAmi,
        report: &mut DeployReport,
    ) {
        if let Err(e) = cx
            .clients
            .ec2
            .modify_launch_template()
            .launch_template_id(&c.template_id)
            .default_version(version.to_string())
            .send()
            .await
            .aws("ModifyLaunchTemplate")
        {
            report.attention.push(format!(
                "{} version {version} could not be made the default: {e}",
                c.template_name
            ));
        }
        let on_new = match live::group(cx, group).await {
            Ok(Some(g)) => g
                .launch_template
                .as_ref()
                .and_then(|l| l.version.as_deref())
                .is_some_and(|v| v == version.to_string()),
            Ok(None) => {
                report
                    .attention
                    .push(format!("{group} disappeared after its instance refresh"));
                return;
            }
            Err(e) => {
                report.attention.push(format!("{group}: {e}"));
                return;
            }
        };
        if !on_new {
            cx.detail(&format!("Pointing {group} at version {version}"));
            if let Err(e) = cx
                .clients
                .autoscaling
                .update_auto_scaling_group()
                .auto_scaling_group_name(group)
                .launch_template(
                    LaunchTemplateSpecification::builder()
                        .launch_template_id(&c.template_id)
                        .version(version.to_string())
                        .build(),
                )
                .send()
                .await
                .aws("UpdateAutoScalingGroup")
            {
                report
                    .attention
                    .push(format!("{group} still launches the old version: {e}"));
            }
        }
        if let Err(e) = cx
            .clients
            .autoscaling
            .create_or_update_tags()
            .tags(
                aws_sdk_autoscaling::types::Tag::builder()
                    .resource_id(group)
                    .resource_type("auto-scaling-group")
                    .key(AMI_TAG)
                    .value(&ami.id)
                    .propagate_at_launch(false)
                    .build(),
            )
            .send()
            .await
            .aws("CreateOrUpdateTags")
        {
            report.attention.push(format!(
                "{group}'s {AMI_TAG} tag still names the old AMI: {e}"
            ));
        }
    }

    /// Deletes the oldest versions beyond `max_launch_template_versions`, never the default, the new
    /// one, the one it replaced (what a rollback by hand goes back to), or one any group references.
    async fn prune(&self, cx: &Ctx, c: &Current, version: i64, report: &mut DeployReport) {
        let keep = cx.cfg.instance_refresh.max_launch_template_versions as usize;
        let listed = cx
            .clients
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(&c.template_id)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws("DescribeLaunchTemplateVersions");
        let versions = match listed {
            Ok(v) => v,
            Err(e) => {
                report
                    .attention
                    .push(format!("{}: versions not pruned: {e}", c.template_name));
                return;
            }
        };
        if versions.len() <= keep {
            return;
        }
        let latest = versions
            .iter()
            .filter_map(|v| v.version_number())
            .max()
            .unwrap_or(version);
        let default = versions
            .iter()
            .find(|v| v.default_version() == Some(true))
            .and_then(|v| v.version_number())
            .unwrap_or(version);
        let used = match versions_in_use(cx, c, latest, default).await {
            Ok(u) => u,
            Err(e) => {
                report.attention.push(format!(
                    "{}: versions not pruned (could not check what uses them): {e}",
                    c.template_name
                ));
                return;
            }
        };
        let mut numbers: Vec<i64> = versions.iter().filter_map(|v| v.version_number()).collect();
        numbers.sort_unstable();
        let doomed: Vec<i64> = numbers
            .iter()
            .copied()
            .filter(|n| *n != default && *n != version && *n != c.version && !used.contains(n))
            .take(versions.len() - keep)
            .collect();
        if doomed.is_empty() {
            return;
        }
        match delete_versions(cx, &c.template_id, &doomed).await {
            Ok(()) => {
                let list = doomed
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                cx.detail(&format!(
                    "Deleted {} version(s) {list} (keeping {keep})",
                    c.template_name
                ));
                report
                    .deleted_launch_templates
                    .extend(doomed.iter().map(|n| format!("{}:{n}", c.template_name)));
            }
            Err(e) => report.attention.push(format!(
                "{}: old versions not deleted: {e}",
                c.template_name
            )),
        }
    }
}
