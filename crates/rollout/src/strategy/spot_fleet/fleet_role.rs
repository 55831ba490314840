//! Step: the fleet role's ARN, worked out before anything is created.

use super::fleet::{FleetLaunch, LiveFleet};
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::launch::LaunchSpec;
use crate::strategy::replace::Replace;
use crate::strategy::run::RolloutStep;

/// Resolves `spot_fleet.iam_fleet_role`.
pub(super) struct ResolveFleetRole;

#[async_trait::async_trait]
impl RolloutStep<Replace<LiveFleet>> for ResolveFleetRole {
    fn name(&self) -> &'static str {
        "fleet role"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<LiveFleet>) -> Result<(), RolloutError> {
        let role = fleet_role_arn(cx, &st.spec).await?;
        st.launch = FleetLaunch {
            role,
            requested_at: None,
        };
        Ok(())
    }
}

/// The fleet role's ARN: as given, or built from a role name and the account that owns the environment's
/// security group (no IAM or STS call needed).
async fn fleet_role_arn(cx: &Ctx, spec: &LaunchSpec) -> Result<String, RolloutError> {
    let role = &cx.cfg.spot_fleet.iam_fleet_role;
    if role.starts_with("arn:") {
        return Ok(role.clone());
    }
    let out = cx
        .clients
        .ec2
        .describe_security_groups()
        .set_group_ids(Some(
            spec.security_group_ids.iter().take(1).cloned().collect(),
        ))
        .send()
        .await
        .aws("DescribeSecurityGroups")?;
    let account = out
        .security_groups()
        .first()
        .and_then(|g| g.owner_id())
        .ok_or_else(|| {
            RolloutError::Preflight(vec![format!(
                "spot_fleet.iam_fleet_role: cannot work out the account of role {role} (the security group has no owner); give the role's ARN"
            )])
        })?;
    let region = &cx.clients.region;
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    Ok(format!("arn:{partition}:iam::{account}:role/{role}"))
}
