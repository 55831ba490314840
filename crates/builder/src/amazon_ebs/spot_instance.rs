//! The spot path of step 6 (`spot_price` set), as Packer ≥ 1.6 does it: a temporary launch template with
//! spot market options, then `CreateFleet` of type `instant` for one spot instance (one override per
//! `spot_instance_types`). The caller waits for the instance and terminates it like an on-demand one;
//! [`SpotLaunch::delete_fleet`] goes first, [`SpotLaunch::cleanup`] then cancels the spot request and
//! deletes the launch template.

use super::state::{Ctx, State};
use crate::resource::Kind;
use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, Filter, FleetLaunchTemplateConfigRequest,
    FleetLaunchTemplateOverridesRequest, FleetLaunchTemplateSpecificationRequest, FleetType,
    InstanceMetadataTagsState, InstanceType, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMarketOptionsRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateInstanceMetadataTagsState,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, LaunchTemplatePlacementRequest,
    LaunchTemplateSpotMarketOptionsRequest, LaunchTemplateTagSpecificationRequest, MarketType,
    RequestLaunchTemplateData, ResourceType, ShutdownBehavior, SpotAllocationStrategy,
    SpotOptionsRequest, TargetCapacitySpecificationRequest, VolumeType,
};
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::StepError;
use bakery_core::propagation::{PROPAGATION_TIMEOUT, retry_propagation};
use bakery_core::tags::{ec2_tag_spec, ec2_tags};
use bakery_template::BlockDevice;
use std::time::Duration;

/// What the spot path created, for cleanup.
#[derive(Default)]
pub struct SpotLaunch {
    launch_template: Option<String>,
    /// Every fleet made, one per try.
    fleets: Vec<String>,
    instance: Option<String>,
}

/// How many times a spot launch is tried while AWS has no capacity for any of its types (Packer's figure).
const CAPACITY_TRIES: u32 = 11;

/// True for the codes AWS gives when it has no spot capacity for a type in a zone right now.
fn is_capacity_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "InsufficientInstanceCapacity"
                | "InsufficientCapacity"
                | "InsufficientHostCapacity"
                | "InsufficientReservedInstanceCapacity"
                | "InsufficientCapacityOnHost"
                | "UnfulfillableCapacity"
        )
    )
}

/// `spot_price`: `auto` (no maximum: capped at the on-demand price, as in Packer) or a maximum price.
fn max_price(spot_price: &str) -> Option<String> {
    (spot_price != "auto").then(|| spot_price.to_string())
}

fn block_devices(devs: &[BlockDevice]) -> Vec<LaunchTemplateBlockDeviceMappingRequest> {
    devs.iter()
        .map(|d| {
            let b = LaunchTemplateBlockDeviceMappingRequest::builder()
                .set_device_name(d.device_name.clone());
            if d.no_device {
                return b.no_device("").build();
            }
            if let Some(v) = &d.virtual_name {
                return b.virtual_name(v).build();
            }
            let mut e = LaunchTemplateEbsBlockDeviceRequest::builder()
                .delete_on_termination(d.delete_on_termination)
                .set_encrypted(d.encrypted)
                .set_snapshot_id(d.snapshot_id.clone())
                .set_kms_key_id(d.kms_key_id.clone())
                .set_iops(d.iops.map(|v| v as i32))
                .set_throughput(d.throughput.map(|v| v as i32))
                .set_volume_type(d.volume_type.as_deref().map(VolumeType::from));
            if d.volume_size > 0 {
                e = e.volume_size(d.volume_size as i32);
            }
            b.ebs(e.build()).build()
        })
        .collect()
}

fn lt_tags(rt: ResourceType, tags: &[(String, String)]) -> LaunchTemplateTagSpecificationRequest {
    LaunchTemplateTagSpecificationRequest::builder()
        .resource_type(rt)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

impl SpotLaunch {
    /// Creates the launch template and the instant fleet; returns the spot instance's id.
    #[allow(clippy::too_many_arguments)]
    pub async fn launch(
        &mut self,
        cx: &Ctx,
        st: &State,
        image_id: &str,
        user_data: Option<String>,
        client_token: String,
        instance_tags: &[(String, String)],
        volume_tags: &[(String, String)],
    ) -> Result<String, StepError> {
        let run = &cx.cfg.run;
        let spot_price = run.spot_price.clone().unwrap_or_default();
        let spot_tags = run
            .spot_tags
            .render(&st.late)
            .map_err(|e| StepError::msg(format!("spot_tags: {e}")))?;
        let fleet_tags = run
            .fleet_tags
            .render(&st.late)
            .map_err(|e| StepError::msg(format!("fleet_tags: {e}")))?;
        let with_ownership = |base: &std::collections::BTreeMap<String, String>, role: &str| {
            let mut v: Vec<(String, String)> =
                base.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            v.extend(cx.ownership_tags(role));
            v
        };
        cx.ui.say(&cx.name, "Launching a spot AWS instance...");
        let md = &run.metadata_options;
        let mut data = RequestLaunchTemplateData::builder()
            .image_id(image_id)
            .set_key_name(
                st.key
                    .as_ref()
                    .and_then(|k| k.key_name())
                    .map(str::to_string),
            )
            .set_user_data(user_data)
            .set_block_device_mappings(
                Some(block_devices(&cx.cfg.launch_block_device_mappings)).filter(|v| !v.is_empty()),
            )
            .ebs_optimized(run.ebs_optimized)
            .disable_api_termination(false)
            .instance_initiated_shutdown_behavior(ShutdownBehavior::from(
                run.shutdown_behavior.as_str(),
            ))
            .instance_market_options(
                LaunchTemplateInstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        LaunchTemplateSpotMarketOptionsRequest::builder()
                            .set_max_price(max_price(&spot_price))
                            .build(),
                    )
                    .build(),
            )
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::from(
                        md.http_endpoint.as_str(),
                    ))
                    // Only when the template asks (as RunInstances).
                    .set_http_tokens(
                        md.http_tokens
                            .map(|t| LaunchTemplateHttpTokensState::from(t.as_str())),
                    )
                    .http_put_response_hop_limit(md.http_put_response_hop_limit as i32)
                    .instance_metadata_tags(LaunchTemplateInstanceMetadataTagsState::from(
                        InstanceMetadataTagsState::from(md.instance_metadata_tags.as_str())
                            .as_str(),
                    ))
                    .build(),
            )
            .tag_specifications(lt_tags(ResourceType::Instance, instance_tags))
            .tag_specifications(lt_tags(ResourceType::Volume, volume_tags))
            // Tags the spot request at creation; Packer tags it afterwards with CreateTags.
            .tag_specifications(lt_tags(
                ResourceType::SpotInstancesRequest,
                &with_ownership(&spot_tags, "builder-spot-request"),
            ));
        if let Some(t) = run.instance_type.as_deref().filter(|s| !s.is_empty()) {
            data = data.instance_type(InstanceType::from(t));
        }
        // The template's iam_instance_profile or the temporary one (the instance profile step).
        if let Some(p) = st.iam_instance_profile.as_deref() {
            data = data.iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(p)
                    .build(),
            );
        }
        if let Some(az) = run.availability_zone.as_deref().filter(|s| !s.is_empty()) {
            data = data.placement(
                LaunchTemplatePlacementRequest::builder()
                    .availability_zone(az)
                    .build(),
            );
        }
        if st.subnet_id.is_some() {
            let mut ni = LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                .device_index(0)
                .delete_on_termination(true)
                .set_subnet_id(st.subnet_id.clone())
                .set_groups(Some(st.security_group_ids.clone()));
            if let Some(public) = run.associate_public_ip_address {
                ni = ni.associate_public_ip_address(public);
            }
            data = data.network_interfaces(ni.build());
        } else {
            data = data.set_security_group_ids(Some(st.security_group_ids.clone()));
        }
        let name = format!("{}-spot", cx.temp_name());
        let token = cx.client_token("launch-template");
        let req = cx
            .clients
            .ec2
            .create_launch_template()
            .client_token(&token)
            .launch_template_name(&name)
            .version_description("template generated by bakery for launching a spot instance")
            .launch_template_data(data.build())
            .tag_specifications(ec2_tag_spec(
                ResourceType::LaunchTemplate,
                &with_ownership(&spot_tags, "builder-launch-template"),
            ));
        let lt = cx
            .create(Kind::LaunchTemplate, cx.region(), Some(&token), async {
                req.send().await.aws("CreateLaunchTemplate")
            })
            .await?;
        let lt_id = lt
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .ok_or_else(|| StepError::msg("CreateLaunchTemplate returned no id"))?
            .to_string();
        cx.created(Kind::LaunchTemplate, cx.region(), &lt_id);
        self.launch_template = Some(lt_id.clone());
        cx.ui.message(
            &cx.name,
            &format!("Created Spot Fleet launch template: {lt_id}"),
        );

        let overrides: Vec<FleetLaunchTemplateOverridesRequest> = run
            .spot_instance_types
            .iter()
            .map(|t| {
                FleetLaunchTemplateOverridesRequest::builder()
                    .instance_type(InstanceType::from(t.as_str()))
                    .build()
            })
            .collect();
        let mut spot_options = SpotOptionsRequest::builder();
        if let Some(s) = run
            .spot_allocation_strategy
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
        {
            spot_options = spot_options.allocation_strategy(SpotAllocationStrategy::from(s));
        }
        let request = |token: &str| {
            cx.clients
                .ec2
                .create_fleet()
                .r#type(FleetType::Instant)
                .client_token(token)
                .replace_unhealthy_instances(false)
                .launch_template_configs(
                    FleetLaunchTemplateConfigRequest::builder()
                        .launch_template_specification(
                            FleetLaunchTemplateSpecificationRequest::builder()
                                .launch_template_id(&lt_id)
                                .version("1")
                                .build(),
                        )
                        .set_overrides(Some(overrides.clone()).filter(|o| !o.is_empty()))
                        .build(),
                )
                .target_capacity_specification(
                    TargetCapacitySpecificationRequest::builder()
                        .total_target_capacity(1)
                        .default_target_capacity_type(DefaultTargetCapacityType::Spot)
                        .build(),
                )
                .spot_options(spot_options.clone().build())
                .tag_specifications(ec2_tag_spec(
                    ResourceType::Fleet,
                    &with_ownership(&fleet_tags, "builder-fleet"),
                ))
        };
        // No spot capacity for any of the types right now: try again, as Packer does (11 tries, backing
        // off from 200 ms to 30 s). Each try is a new fleet, with its own client token.
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            let token = if attempt == 0 {
                client_token.clone()
            } else {
                format!("{client_token}-{attempt}")
            };
            let req = request(&token);
            let sent = cx
                .create(
                    Kind::Fleet,
                    cx.region(),
                    Some(&token),
                    // The new launch template may not be visible to CreateFleet yet.
                    retry_propagation(PROPAGATION_TIMEOUT, &cx.cancel, || async {
                        req.clone().send().await.aws("CreateFleet")
                    }),
                )
                .await;
            let why = match sent {
                Err(e) if is_capacity_code(e.code.as_deref()) => e.to_string(),
                Err(e) => return Err(e.into()),
                Ok(out) => {
                    if let Some(fleet) = out.fleet_id() {
                        cx.created(Kind::Fleet, cx.region(), fleet);
                        self.fleets.push(fleet.to_string());
                    }
                    // Errors for some instance types or zones do not matter once an instance was launched.
                    let id = out
                        .instances()
                        .iter()
                        .flat_map(|i| i.instance_ids())
                        .next()
                        .cloned();
                    if let Some(id) = id {
                        self.instance = Some(id.clone());
                        return Ok(id);
                    }
                    let errors = out.errors();
                    let why: Vec<String> = errors
                        .iter()
                        .map(|e| {
                            format!(
                                "{}: {}",
                                e.error_code().unwrap_or("error"),
                                e.error_message().unwrap_or_default()
                            )
                        })
                        .collect();
                    let fleet = out.fleet_id().unwrap_or("?");
                    // A fleet reports a just-created instance profile EC2 cannot see yet among its
                    // errors, not as an exception: tried again, as capacity is.
                    let capacity = !errors.is_empty()
                        && errors.iter().all(|e| {
                            is_capacity_code(e.error_code())
                                || profile_not_visible_yet(e.error_code(), e.error_message())
                        });
                    let why = format!(
                        "the spot fleet {fleet} launched no instance{}",
                        if why.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", why.join("; "))
                        }
                    );
                    if !capacity {
                        return Err(StepError::msg(why));
                    }
                    why
                }
            };
            attempt += 1;
            if attempt >= CAPACITY_TRIES {
                return Err(StepError::msg(format!(
                    "{why} (no spot capacity after {CAPACITY_TRIES} tries)"
                )));
            }
            cx.ui.message(
                &cx.name,
                &format!("{why}; trying again in {} ms", delay.as_millis()),
            );
            tokio::select! {
                _ = cx.cancel.cancelled() => return Err(StepError::msg(format!("{why}; interrupted"))),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    /// Before the instance is terminated: delete the fleets (an instant fleet is deleted with its
    /// instances; once they are gone, moto refuses `TerminateInstances=true`), including those of tries
    /// that found no capacity.
    pub async fn delete_fleet(&mut self, cx: &Ctx) -> Result<(), StepError> {
        while let Some(fleet) = self.fleets.last().cloned() {
            cx.clients
                .ec2
                .delete_fleets()
                .fleet_ids(&fleet)
                .terminate_instances(true)
                .send()
                .await
                .aws("DeleteFleets")?;
            cx.removed(Kind::Fleet, cx.region(), &fleet);
            self.fleets.pop();
        }
        Ok(())
    }

    /// After the instance is terminated: cancel the spot request, delete the launch template. Each is
    /// tried; the first error is returned.
    pub async fn cleanup(&mut self, cx: &Ctx) -> Result<(), StepError> {
        let ec2 = &cx.clients.ec2;
        let mut first: Option<StepError> = None;
        if let Some(instance) = self.instance.clone() {
            // The request carries the run's tags; pick ours by instance (runs may share a build name).
            let found = ec2
                .describe_spot_instance_requests()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{}", bakery_core::tags::RUN_ID))
                        .values(&cx.run_id)
                        .build(),
                )
                .send()
                .await
                .aws("DescribeSpotInstanceRequests");
            match found {
                Ok(out) => {
                    let ids: Vec<String> = out
                        .spot_instance_requests()
                        .iter()
                        .filter(|r| r.instance_id() == Some(instance.as_str()))
                        .filter_map(|r| r.spot_instance_request_id().map(str::to_string))
                        .collect();
                    if !ids.is_empty() {
                        match ec2
                            .cancel_spot_instance_requests()
                            .set_spot_instance_request_ids(Some(ids))
                            .send()
                            .await
                            .aws("CancelSpotInstanceRequests")
                        {
                            Ok(_) => self.instance = None,
                            Err(e) => {
                                first.get_or_insert(e.into());
                            }
                        }
                    } else {
                        self.instance = None;
                    }
                }
                Err(e) => {
                    first.get_or_insert(e.into());
                }
            }
        }
        if let Some(lt) = self.launch_template.clone() {
            cx.ui
                .say(&cx.name, "Deleting the temporary spot launch template...");
            match Kind::LaunchTemplate
                .remove(&cx.clients, &lt, &cx.cancel_cleanup)
                .await
            {
                Ok(()) => {
                    cx.removed(Kind::LaunchTemplate, cx.region(), &lt);
                    self.launch_template = None;
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A fleet error saying the instance profile is not visible to EC2 yet (IAM propagation).
fn profile_not_visible_yet(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("InvalidParameterValue")
        && message.is_some_and(|m| {
            m.to_ascii_lowercase()
                .contains("invalid iam instance profile")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleets_invalid_profile_error_is_propagation() {
        let msg = "Value (bakery_x) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name";
        assert!(profile_not_visible_yet(
            Some("InvalidParameterValue"),
            Some(msg)
        ));
        assert!(!profile_not_visible_yet(
            Some("InvalidParameterValue"),
            Some("bad AMI")
        ));
        assert!(!profile_not_visible_yet(None, Some(msg)));
    }

    #[test]
    fn auto_means_no_maximum_price() {
        assert_eq!(max_price("auto"), None);
        assert_eq!(max_price("0.05"), Some("0.05".to_string()));
    }
}
