//! Step: a new version of the group's launch template, copied from the version the group runs, with the
//! new `ImageId` (nothing else changes). On failure it is deleted again unless something still uses it (a
//! group, or instances a refresh left on it).

use super::refresh::RefreshState;
use super::state::Refresh;
use super::versions::{Current, delete_versions, template_numbers, versions_in_use};
use crate::ami::ResolvedAmi;
use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt, RolloutError};
use crate::strategy::run::RolloutStep;
use aws_sdk_autoscaling::types::InstanceRefreshStatus;
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use bakery_core::pipeline::Outcome;
use tokio::time::Instant;

/// Creates the new launch template version.
pub(super) struct CreateVersion;

#[async_trait::async_trait]
impl RolloutStep<Refresh> for CreateVersion {
    fn name(&self) -> &'static str {
        "launch template version"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Refresh) -> Result<(), RolloutError> {
        let current = st.current()?.clone();
        let new_version = create_version(cx, &current, &st.ami).await?;
        st.version = Some(new_version);
        st.common.report.durations.launch_s = st.started.elapsed().as_secs_f64();
        cx.detail(&format!(
            "{} version {new_version} ({}; version {} had {})",
            current.template_name,
            st.ami.id,
            current.version,
            current.image_id.as_deref().unwrap_or("no ImageId")
        ));
        Ok(())
    }

    /// The refresh failed, was cancelled or never started: delete the new version unless a group or
    /// instances still use it, and say what is left.
    async fn cleanup(&mut self, cx: &Ctx, st: &mut Refresh, outcome: Outcome) {
        let (Some(version), Some(c)) = (st.version, st.current.clone()) else {
            return;
        };
        if st.left_running || !st.common.undo(cx, outcome) {
            return;
        }
        let t = Instant::now();
        let end = st.end.as_ref();
        let rb = &mut st.common.rollback;
        let rolled_back = end.is_some_and(|s| {
            s.status == RefreshState::Known(InstanceRefreshStatus::RollbackSuccessful)
        });
        let still_running = end.is_some_and(|s| !s.terminal);
        // Instances a refresh replaced keep running the new version unless AWS rolled them back.
        let replaced_some = end.is_some_and(|s| s.percentage > 0) && !rolled_back;
        if rolled_back {
            rb.actions.push(format!(
                "AWS rolled the group back to {} version {} ({})",
                c.template_name,
                c.version,
                c.image_id.as_deref().unwrap_or("its AMI")
            ));
        }
        let used = match template_numbers(cx, &c.template_id).await {
            Ok((latest, default)) => versions_in_use(cx, &c, latest, default).await,
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
                        end.map(|s| s.percentage).unwrap_or(0)
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
        st.version_in_use = replaced_some || still_running;
        st.common.report.durations.rollback_s = t.elapsed().as_secs_f64();
    }
}

async fn create_version(cx: &Ctx, c: &Current, ami: &ResolvedAmi) -> Result<i64, RolloutError> {
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
