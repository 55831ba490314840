//! An old spot fleet as spot-fleet retires it: its instances deregistered from the target group and
//! drained, the fleet cancelled with them, its launch template deleted if rollout made it.

use super::fleet::{FleetLaunch, LiveFleet, fleet_instances, fleets};
use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt, RolloutError};
use crate::lb::LoadBalancer;
use crate::report::DeployReport;
use crate::strategy::replace::{Capacity, Seen, retire_template};
use crate::wait::poller;
use bakery_core::poll::{Poll, PollError, WaitError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[async_trait::async_trait]
impl Capacity for LiveFleet {
    const PLURAL: &'static str = "fleets";
    const NEW_WHOSE: &'static str = "the new fleet's";
    const TEMPLATE_KEPT_WHILE: &'static str = "its fleet still has instances";
    type Launch = FleetLaunch;

    fn id(&self) -> &str {
        &self.id
    }

    async fn retire(
        &self,
        cx: &Ctx,
        lb: &LoadBalancer,
        _keep: bool,
        report: &mut DeployReport,
    ) -> Result<(), RolloutError> {
        // Spot fleets have no rollback window: a cancelled fleet cannot be brought back.
        retire(cx, lb, self, report).await
    }

    fn not_retired(&self, new: &str) -> String {
        format!(
            "spot fleet {} was not retired (it still runs; the new fleet {new} is live): re-run the rollout or cancel it by hand (aws ec2 cancel-spot-fleet-requests --terminate-instances --spot-fleet-request-ids {})",
            self.id, self.id
        )
    }

    fn seen(&self) -> Seen {
        Seen {
            name: self.id.clone(),
            key: format!("{} {:?}", self.state.as_str(), self.instances),
            shown: self.describe(),
            instances: self.instances.clone(),
            served: Vec::new(),
            gone_verb: "cancelled",
        }
    }

    async fn look_again(cx: &Ctx, olds: &[Self]) -> Vec<Result<Option<Seen>, String>> {
        let now = fleets(cx).await.map_err(|e| e.to_string());
        olds.iter()
            .map(|old| match &now {
                Ok(v) => Ok(v.iter().find(|f| f.id == old.id).map(Capacity::seen)),
                Err(e) => Err(e.clone()),
            })
            .collect()
    }
}

/// Cancels fleet `id` and terminates its instances.
pub(in crate::strategy) async fn cancel_fleet(cx: &Ctx, id: &str) -> Result<(), RolloutError> {
    let out = cx
        .clients
        .ec2
        .cancel_spot_fleet_requests()
        .spot_fleet_request_ids(id)
        .terminate_instances(true)
        .send()
        .await
        .aws("CancelSpotFleetRequests")?;
    if let Some(e) = out
        .unsuccessful_fleet_requests()
        .iter()
        .find(|u| u.spot_fleet_request_id() == Some(id))
        .and_then(|u| u.error())
    {
        // Already cancelled (or gone) is what was wanted.
        let code = e.code().map(|c| c.as_str()).unwrap_or("unknown");
        if code != "fleetRequestNotInCancellableState" && code != "fleetRequestIdDoesNotExist" {
            // The call succeeded but this fleet was not cancelled: an AWS error all the same.
            return Err(RolloutError::Aws(AwsError {
                op: "CancelSpotFleetRequests",
                code: Some(code.to_string()),
                detail: format!("{id}: {code}: {}", e.message().unwrap_or("")),
            }));
        }
    }
    Ok(())
}

/// Waits until none of `ids` runs (shutting-down or terminated counts: nothing is served any more).
pub(super) async fn wait_terminated(
    cx: &Ctx,
    ids: &[String],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), WaitError> {
    if ids.is_empty() {
        return Ok(());
    }
    let what = format!("{} instance(s) to terminate", ids.len());
    let progress = cx.ui.progress(&cx.target(), &format!("Waiting for {what}"));
    let r = poller(Duration::from_secs(1), timeout)
        .wait(
            &what,
            cancel,
            |s, e| progress.state(s, e),
            || async {
                let out = cx
                    .clients
                    .ec2
                    .describe_instances()
                    .set_instance_ids(Some(ids.to_vec()))
                    .send()
                    .await
                    .aws("DescribeInstances");
                let out = match out {
                    Ok(o) => o,
                    // Instances long gone are not found at all: that is terminated.
                    Err(e) if e.is_not_found() => return Ok(Poll::Ready(())),
                    Err(e) => return Err(PollError::from(e)),
                };
                let left: Vec<String> = out
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(|i| {
                        let s = i.state().and_then(|s| s.name())?.as_str();
                        (s != "shutting-down" && s != "terminated")
                            .then(|| format!("{} {s}", i.instance_id().unwrap_or("?")))
                    })
                    .collect();
                if left.is_empty() {
                    Ok(Poll::Ready(()))
                } else {
                    Ok(Poll::Pending(left.join(", ")))
                }
            },
        )
        .await;
    match &r {
        Ok(()) => progress.finish(&format!("{} instance(s) terminated", ids.len())),
        Err(e) => progress.finish(&e.to_string()),
    }
    r
}

/// Step 4 for one old fleet: drain its instances out of the target group, cancel it with them, delete
/// its launch template if it is this environment's.
async fn retire(
    cx: &Ctx,
    lb: &LoadBalancer,
    old: &LiveFleet,
    report: &mut DeployReport,
) -> Result<(), RolloutError> {
    let t = &cx.cfg.timeouts;
    cx.say(&format!("Retiring spot fleet {}", old.id));
    // Read it again: a maintain fleet may have replaced instances since preflight.
    let ids = fleet_instances(cx, &old.id).await?;
    let health = lb.health(cx).await?;
    let registered: Vec<String> = ids
        .iter()
        .filter(|i| health.contains_key(*i))
        .cloned()
        .collect();
    if !registered.is_empty() {
        cx.detail(&format!(
            "Deregistering {} from {}",
            registered.join(", "),
            lb.label()
        ));
        cx.clients
            .elbv2
            .deregister_targets()
            .target_group_arn(lb.target_group_arn.as_deref().unwrap_or_default())
            .set_targets(Some(
                registered
                    .iter()
                    .map(|i| {
                        aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                            .id(i)
                            .build()
                    })
                    .collect(),
            ))
            .send()
            .await
            .aws("DeregisterTargets")?;
        crate::wait::deregistered(cx, lb, &registered, t.drain, &cx.cancel).await?;
    }
    cx.detail(&format!("Cancelling {} with its instances", old.id));
    cancel_fleet(cx, &old.id).await?;
    wait_terminated(cx, &ids, t.retire, &cx.cancel).await?;
    report.retired.push(old.id.clone());
    if let Some(id) = &old.launch_template_id {
        retire_template(cx, id, report).await?;
    }
    Ok(())
}
