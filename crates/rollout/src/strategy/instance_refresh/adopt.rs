//! Step: after a successful refresh, the new version becomes the template's default and the group's, so
//! later scale-outs launch the new AMI. Never fails: what it could not do needs attention.

use super::state::Refresh;
use super::versions::Current;
use crate::ami::ResolvedAmi;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::live;
use crate::names::AMI_TAG;
use crate::report::DeployReport;
use crate::strategy::run::RolloutStep;
use aws_sdk_autoscaling::types::LaunchTemplateSpecification;

/// Makes the new version stick.
pub(super) struct AdoptVersion;

#[async_trait::async_trait]
impl RolloutStep<Refresh> for AdoptVersion {
    fn name(&self) -> &'static str {
        "adopt version"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Refresh) -> Result<(), RolloutError> {
        st.adopt_started = Some(tokio::time::Instant::now());
        let c = st.current()?.clone();
        let version = st.version.unwrap_or_default();
        adopt(
            cx,
            &st.group.name,
            &c,
            version,
            &st.ami,
            &mut st.common.report,
        )
        .await;
        Ok(())
    }
}

/// After a successful refresh: the new version becomes the template's default and the group's (AWS
/// sets the group's itself when a refresh with a desired configuration succeeds; checked, not assumed),
/// and the group's `bakery:ami` tag names the new AMI.
async fn adopt(
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
