//! One instance refresh, through AWS: start it, follow it, cancel it.

use super::versions::Current;
use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt};
use crate::report::DeployReport;
use aws_sdk_autoscaling::types::{
    AlarmSpecification, DesiredConfiguration, InstanceRefreshStatus, LaunchTemplateSpecification,
    RefreshPreferences, RefreshStrategy,
};
use bakery_core::poll::{Poll, PollError, Poller, WaitError};
use std::sync::Mutex;
use std::time::Duration;

/// Refresh states that will not change any more.
pub(super) fn is_terminal(s: &InstanceRefreshStatus) -> bool {
    matches!(
        s,
        InstanceRefreshStatus::Successful
            | InstanceRefreshStatus::Failed
            | InstanceRefreshStatus::Cancelled
            | InstanceRefreshStatus::RollbackSuccessful
            | InstanceRefreshStatus::RollbackFailed
    )
}

/// A refresh's status as AWS reports it, or why it is not known.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RefreshState {
    /// What DescribeInstanceRefreshes said.
    Known(InstanceRefreshStatus),
    /// Not known (the refresh was not seen, or cancelling it failed): treated as still running.
    Unknown(Option<String>),
}

impl std::fmt::Display for RefreshState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefreshState::Known(s) => f.write_str(s.as_str()),
            RefreshState::Unknown(None) => f.write_str("unknown"),
            RefreshState::Unknown(Some(why)) => write!(f, "unknown ({why})"),
        }
    }
}

/// One look at a refresh.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Snapshot {
    pub(super) id: String,
    pub(super) status: RefreshState,
    pub(super) terminal: bool,
    pub(super) reason: Option<String>,
    pub(super) percentage: i32,
    pub(super) to_update: Option<i32>,
}

impl Snapshot {
    /// A refresh whose state is not known: treated as still running, so nothing it may use is deleted.
    pub(super) fn unknown(id: &str, why: &str) -> Self {
        Snapshot {
            id: id.to_string(),
            status: RefreshState::Unknown(Some(why.to_string())),
            terminal: false,
            reason: None,
            percentage: 0,
            to_update: None,
        }
    }

    pub(super) fn of(r: &aws_sdk_autoscaling::types::InstanceRefresh) -> Self {
        Snapshot {
            id: r.instance_refresh_id().unwrap_or_default().to_string(),
            status: r.status().map_or(RefreshState::Unknown(None), |s| {
                RefreshState::Known(s.clone())
            }),
            terminal: r.status().is_some_and(is_terminal),
            reason: r.status_reason().map(str::to_string),
            percentage: r.percentage_complete().unwrap_or(0),
            to_update: r.instances_to_update(),
        }
    }

    /// `InProgress, 40% done, 3 instance(s) to update: Waiting for instances to warm up`.
    pub(super) fn describe(&self) -> String {
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
pub(super) async fn active_refresh(cx: &Ctx, group: &str) -> Result<Option<Snapshot>, AwsError> {
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

/// How the wait for the refresh ended.
pub(super) enum Waited {
    /// It ended (successfully or not).
    Ended(Snapshot),
    TimedOut(Option<Snapshot>),
    Interrupted(Option<Snapshot>),
    Broken(WaitError, Option<Snapshot>),
}

/// Follows refresh `id` of `group` until it ends, `timeout` passes or `cancel` fires.
pub(super) async fn follow(
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
        attempt_delay: bakery_core::poll::SDK_WAITER_DELAY,
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
pub(super) async fn ask_cancel(cx: &Ctx, id: &str) -> bool {
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

pub(super) async fn start(
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
    if !r.bake_time.is_zero() {
        prefs = prefs.bake_time(r.bake_time.as_secs() as i32);
    }
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
pub(super) async fn cancel_and_follow(
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
