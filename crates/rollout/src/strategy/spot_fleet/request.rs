//! Step: request a `maintain` spot fleet from the new launch template: one override per instance type ×
//! subnet, the ALB's target group in `TargetGroupsConfig`, tagged `in-progress`, ClientToken = run id +
//! stamp (a retried request never makes a second fleet). Cancelled with its instances on rollback.

use super::fleet::{LiveFleet, fleet_instances, fleets};
use super::retire::{cancel_fleet, wait_terminated};
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::launch::Placement;
use crate::names::{AMI_TAG, STATE_IN_PROGRESS, STATE_TAG};
use crate::strategy::replace::Replace;
use crate::strategy::run::RolloutStep;
use aws_sdk_ec2::types::{
    AllocationStrategy, FleetLaunchTemplateSpecification, FleetType, InstanceInterruptionBehavior,
    InstanceType, LaunchTemplateConfig, LaunchTemplateOverrides, LoadBalancersConfig, ResourceType,
    SpotFleetRequestConfigData, TagSpecification, TargetGroupsConfig,
};
use bakery_core::pipeline::Outcome;
use bakery_core::tags::ec2_tags;
use std::time::SystemTime;

/// Requests the run's spot fleet.
pub(super) struct RequestFleet;

#[async_trait::async_trait]
impl RolloutStep<Replace<LiveFleet>> for RequestFleet {
    fn name(&self) -> &'static str {
        "spot fleet request"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<LiveFleet>) -> Result<(), RolloutError> {
        let sf = &cx.cfg.spot_fleet;
        let template = st
            .template
            .clone()
            .expect("the launch template step runs first");
        let stamp = &st.stamp;
        let mut tags = cx.tags_for("spot-fleet-request");
        tags.push((STATE_TAG.into(), STATE_IN_PROGRESS.into()));
        tags.push((AMI_TAG.into(), st.ami.id.clone()));
        let tg = st.lb.target_group_arn.clone().unwrap_or_default();
        let role = st.launch.role.clone();
        let config = SpotFleetRequestConfigData::builder()
            .iam_fleet_role(&role)
            .allocation_strategy(AllocationStrategy::from(sf.allocation_strategy.as_str()))
            .target_capacity(sf.target_capacity as i32)
            .r#type(FleetType::Maintain)
            .set_spot_price(sf.max_price.clone())
            .launch_template_configs(
                LaunchTemplateConfig::builder()
                    .launch_template_specification(
                        FleetLaunchTemplateSpecification::builder()
                            .launch_template_id(&template.id)
                            .version("1")
                            .build(),
                    )
                    .set_overrides(Some(overrides(&sf.instance_types, &st.spec.placement)))
                    .build(),
            )
            .load_balancers_config(
                LoadBalancersConfig::builder()
                    .target_groups_config(
                        TargetGroupsConfig::builder()
                            .target_groups(
                                aws_sdk_ec2::types::TargetGroup::builder().arn(&tg).build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
            .terminate_instances_with_expiration(true)
            // Idempotent per rollout: a retried request never makes a second fleet.
            .client_token(format!("{}-{stamp}", cx.run_id))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SpotFleetRequest)
                    .set_tags(Some(ec2_tags(&tags)))
                    .build(),
            )
            .build();
        cx.say(&format!(
            "Requesting a spot fleet of {} instance(s) ({}) in {}",
            sf.target_capacity,
            sf.instance_types.join(", "),
            cx.cfg.names.target_group()
        ));
        st.launch.requested_at = Some(SystemTime::now());
        // The new launch template may not be visible yet; a refusal made nothing, so it is retried.
        let (ec2, config) = (&cx.clients.ec2, &config);
        let out = bakery_core::propagation::retry_propagation(
            bakery_core::propagation::PROPAGATION_TIMEOUT,
            &cx.cancel,
            || async move {
                ec2.request_spot_fleet()
                    .spot_fleet_request_config(config.clone())
                    .send()
                    .await
                    .aws("RequestSpotFleet")
            },
        )
        .await?;
        let id = out.spot_fleet_request_id().unwrap_or_default().to_string();
        if id.is_empty() {
            return Err(RolloutError::Unhealthy(
                "RequestSpotFleet returned no fleet id".into(),
            ));
        }
        cx.detail(&format!("{id} (role {role})"));
        st.new = Some(id);
        st.common.report.durations.launch_s = st.started.elapsed().as_secs_f64();
        Ok(())
    }

    async fn cleanup(&mut self, cx: &Ctx, st: &mut Replace<LiveFleet>, outcome: Outcome) {
        if !st.common.undo(cx, outcome) {
            return;
        }
        // A request whose answer was lost may still have made a fleet: it carries this run's id.
        let fleet = match &st.new {
            Some(id) => Some(id.clone()),
            None => fleets(cx).await.ok().and_then(|v| {
                v.into_iter()
                    .find(|f| f.run_id.as_deref() == Some(cx.run_id.as_str()))
                    .map(|f| f.id)
            }),
        };
        let Some(id) = fleet else {
            return;
        };
        let rb = &mut st.common.rollback;
        let ids = fleet_instances(cx, &id).await.unwrap_or_default();
        match cancel_fleet(cx, &id).await {
            Ok(()) => {
                match wait_terminated(cx, &ids, cx.cfg.timeouts.rollback, &cx.cancel_cleanup).await
                {
                    Ok(()) => rb.actions.push(format!(
                        "cancelled spot fleet {id} and terminated its {} instance(s)",
                        ids.len()
                    )),
                    Err(e) => {
                        st.new_gone = false;
                        rb.failures.push(format!("spot fleet {id}: {e}"));
                    }
                }
            }
            Err(e) => {
                st.new_gone = false;
                rb.failures.push(format!(
                    "spot fleet {id} could not be cancelled: {e} (aws ec2 cancel-spot-fleet-requests --terminate-instances --spot-fleet-request-ids {id})"
                ));
            }
        }
    }
}

/// The fleet's overrides: every instance type in every subnet (or zone).
fn overrides(types: &[String], placement: &Placement) -> Vec<LaunchTemplateOverrides> {
    let mut v = Vec::new();
    for t in types {
        match placement {
            Placement::Subnets(s) => v.extend(s.iter().map(|sn| {
                LaunchTemplateOverrides::builder()
                    .instance_type(InstanceType::from(t.as_str()))
                    .subnet_id(sn)
                    .build()
            })),
            Placement::Zones(z) => v.extend(z.iter().map(|az| {
                LaunchTemplateOverrides::builder()
                    .instance_type(InstanceType::from(t.as_str()))
                    .availability_zone(az)
                    .build()
            })),
        }
    }
    v
}
