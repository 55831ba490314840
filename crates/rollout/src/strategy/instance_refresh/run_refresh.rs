//! Step: `StartInstanceRefresh` with the manifest's preferences and a `DesiredConfiguration` naming the new
//! version, then follow it until it ends, at most `timeout_seconds`. A refresh that timed out, could not be
//! followed or was interrupted (and, asked, is to be cancelled) is cancelled by this step's cleanup.

use super::on_interrupt::OnInterrupt;
use super::refresh::{
    RefreshState, Snapshot, Waited, ask_cancel, cancel_and_follow, follow, start,
};
use super::state::Refresh;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::report::Status;
use crate::strategy::run::RolloutStep;
use aws_sdk_autoscaling::types::{InstanceRefreshStatus, LaunchTemplateSpecification};
use bakery_core::aws_err::{AwsError, AwsResultExt};
use bakery_core::pipeline::Outcome;
use std::io::IsTerminal;
use tokio::time::Instant;

/// Starts and follows the refresh.
pub(super) struct RunRefresh {
    /// What an interrupt during the refresh does.
    pub on_interrupt: OnInterrupt,
}

impl RunRefresh {
    /// Whether an interrupt cancels the refresh.
    async fn cancel_on_interrupt(&self, cx: &Ctx, id: &str) -> bool {
        match self.on_interrupt {
            OnInterrupt::Cancel => true,
            OnInterrupt::Leave => false,
            OnInterrupt::Ask => {
                if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
                    ask_cancel(cx, id).await
                } else {
                    true
                }
            }
        }
    }
}

/// Points `group` at `c`'s numbered version (the one its `$Latest`/`$Default` resolves to).
async fn pin_version(cx: &Ctx, group: &str, c: &super::versions::Current) -> Result<(), AwsError> {
    cx.clients
        .autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(&c.template_id)
                .version(c.version.to_string())
                .build(),
        )
        .send()
        .await
        .aws("UpdateAutoScalingGroup")?;
    Ok(())
}

/// The step failed; `report.error` says why.
fn stopped(st: &Refresh) -> RolloutError {
    RolloutError::Incomplete(Box::new(st.common.report.clone()))
}

#[async_trait::async_trait]
impl RolloutStep<Refresh> for RunRefresh {
    fn name(&self) -> &'static str {
        "instance refresh"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Refresh) -> Result<(), RolloutError> {
        let current = st.current()?.clone();
        let new_version = st.version.unwrap_or_default();
        let group = st.group.name.clone();
        // AWS refuses to roll back a group that launches `$Latest` or `$Default`: pin the version those
        // name now, which changes nothing the group launches.
        let floating = st
            .group
            .launch_template
            .as_ref()
            .map(|l| l.version.as_deref().unwrap_or("$Default"))
            .is_some_and(|v| v == "$Latest" || v == "$Default");
        if cx.cfg.instance_refresh.auto_rollback && floating {
            cx.say(&format!(
                "Pinning {group} to launch template version {} (auto-rollback needs a numbered version)",
                current.version
            ));
            if let Err(e) = pin_version(cx, &group, &current).await {
                st.common.report.error = Some(format!(
                    "could not pin {group} to version {} for auto-rollback: {e}",
                    current.version
                ));
                return Err(stopped(st));
            }
        }
        let report = &mut st.common.report;
        let id = match start(cx, &group, &current, new_version).await {
            Ok(id) => id,
            Err(e) => {
                report.error = Some(if e.is("InstanceRefreshInProgress") {
                    format!("another instance refresh of {group} started meanwhile: {e}")
                } else {
                    e.to_string()
                });
                return Err(stopped(st));
            }
        };
        cx.detail(&format!("Instance refresh {id} started"));
        st.refresh_id = Some(id.clone());

        let t = Instant::now();
        st.follow_started = Some(t);
        let timeout = cx.cfg.instance_refresh.timeout;
        let waited = follow(cx, &group, &id, timeout, &cx.cancel).await;
        let report = &mut st.common.report;
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
                st.cancel_refresh = true;
                st.healthy_counts_cancel = true;
                return Err(stopped(st));
            }
            Waited::Broken(e, _) => {
                report.error = Some(format!(
                    "following instance refresh {id}: {e}; cancelled it"
                ));
                st.cancel_refresh = true;
                st.healthy_counts_cancel = true;
                return Err(stopped(st));
            }
            Waited::Interrupted(last) => {
                let progress = last
                    .as_ref()
                    .map(Snapshot::describe)
                    .unwrap_or_else(|| "not seen yet".into());
                let cancel = self.cancel_on_interrupt(cx, &id).await;
                let report = &mut st.common.report;
                report.durations.healthy_s = t.elapsed().as_secs_f64();
                if !cancel {
                    report.error = Some(format!(
                        "interrupted; instance refresh {id} was left running ({progress})"
                    ));
                    report.attention.push(format!(
                        "instance refresh {id} of {group} is still running and will use {} version {new_version}: follow it with `aws autoscaling describe-instance-refreshes --auto-scaling-group-name {group}`; when it succeeds make that version the template's default",
                        current.template_name
                    ));
                    report.status = Status::Incomplete;
                    st.left_running = true;
                    return Err(stopped(st));
                }
                report.error = Some(format!(
                    "interrupted; cancelled instance refresh {id} ({progress})"
                ));
                st.cancel_refresh = true;
                return Err(stopped(st));
            }
        };
        report.durations.healthy_s = t.elapsed().as_secs_f64();
        if ended.status != RefreshState::Known(InstanceRefreshStatus::Successful) {
            report.error = Some(format!(
                "instance refresh {id} ended {}{}",
                ended.status,
                ended
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
            st.end = Some(ended);
            return Err(stopped(st));
        }
        st.end = Some(ended);
        st.common.committed = true;
        Ok(())
    }

    /// Cancels a refresh that is to be cancelled, and follows it until it ends.
    async fn cleanup(&mut self, cx: &Ctx, st: &mut Refresh, outcome: Outcome) {
        let Some(id) = st.refresh_id.clone() else {
            return;
        };
        if !st.cancel_refresh || !st.common.undo(cx, outcome) {
            return;
        }
        let end = cancel_and_follow(cx, &st.group.name, &id, &mut st.common.report).await;
        st.end = Some(end);
        if st.healthy_counts_cancel
            && let Some(t) = st.follow_started
        {
            st.common.report.durations.healthy_s = t.elapsed().as_secs_f64();
        }
    }
}
