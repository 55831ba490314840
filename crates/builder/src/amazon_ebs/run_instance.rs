//! Step 6: launch the builder instance and wait until it runs. Cleanup (always): terminate it; when no
//! temporary security group will be deleted after it, also wait for `terminated` here.

use super::state::{Ctx, InstanceInfo, State};
use crate::ec2::{block_devices, judge_instance, merge};
use crate::resource::{Kind, terminate_instance};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    CapacityReservationPreference, CapacityReservationSpecification, CapacityReservationTarget,
    CreditSpecificationRequest, EnclaveOptionsRequest, HttpTokensState,
    IamInstanceProfileSpecification, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceMetadataTagsState, InstanceNetworkInterfaceSpecification, InstanceStateName,
    InstanceType, LicenseConfigurationRequest, ResourceType, ShutdownBehavior, Tenancy,
};
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::{Outcome, Step, StepError};
use bakery_core::poll::Poller;
use bakery_core::propagation::{PROPAGATION_TIMEOUT, retry_propagation};
use bakery_core::tags::ec2_tag_spec;
use bakery_template::schema::amazon_ebs::RunConfig;

/// Launches the instance (on demand, or spot through [`super::spot_instance`]).
#[derive(Default)]
pub struct RunInstance {
    spot: super::spot_instance::SpotLaunch,
}

fn user_data(cx: &Ctx) -> Result<Option<String>, StepError> {
    let run = &cx.cfg.run;
    let raw = if let Some(f) = run.user_data_file.as_deref().filter(|s| !s.is_empty()) {
        Some(std::fs::read(f).map_err(|e| StepError::msg(format!("user_data_file {f}: {e}")))?)
    } else {
        run.user_data
            .clone()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes)
    };
    Ok(raw.map(|b| aws_smithy_types::base64::encode(&b)))
}

/// Spot instance types without a spot price launch nothing: refuse before anything is created.
fn check_spot_options(run: &RunConfig) -> Result<(), StepError> {
    if !run.is_spot_instance() && !run.spot_instance_types.is_empty() {
        return Err(StepError::msg(
            "spot_instance_types needs spot_price (\"auto\" or a maximum price) to launch a spot instance",
        ));
    }
    Ok(())
}

/// The instance's placement: `availability_zone`, and `placement` (or the old top-level `tenancy`).
fn placement(run: &RunConfig) -> Option<aws_sdk_ec2::types::Placement> {
    let given = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
    let p = run.placement.clone().unwrap_or_default();
    let az = given(&run.availability_zone);
    let tenancy = given(&p.tenancy).or_else(|| given(&run.tenancy));
    let host_id = given(&p.host_id);
    let group = given(&p.host_resource_group_arn);
    if az.is_none() && tenancy.is_none() && host_id.is_none() && group.is_none() {
        return None;
    }
    Some(
        aws_sdk_ec2::types::Placement::builder()
            .set_availability_zone(az)
            .set_tenancy(tenancy.map(|t| Tenancy::from(t.as_str())))
            .set_host_id(host_id)
            .set_host_resource_group_arn(group)
            .build(),
    )
}

/// `capacity_reservation_preference`, `capacity_reservation_id` or `capacity_reservation_group_arn`
/// (validate allows one at most).
fn capacity_reservation(run: &RunConfig) -> Option<CapacityReservationSpecification> {
    let given = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
    let id = given(&run.capacity_reservation_id);
    let group = given(&run.capacity_reservation_group_arn);
    if id.is_some() || group.is_some() {
        return Some(
            CapacityReservationSpecification::builder()
                .capacity_reservation_target(
                    CapacityReservationTarget::builder()
                        .set_capacity_reservation_id(id)
                        .set_capacity_reservation_resource_group_arn(group)
                        .build(),
                )
                .build(),
        );
    }
    run.capacity_reservation_preference.map(|p| {
        CapacityReservationSpecification::builder()
            .capacity_reservation_preference(CapacityReservationPreference::from(p.as_str()))
            .build()
    })
}

/// RunInstances' idempotency token: one per run and shown build name (`--each-var-file` runs share the
/// template's build name, so that alone would hand every run the first one's instance), ≤ 64 characters.
pub fn client_token(cx: &Ctx) -> String {
    cx.client_token("")
}

fn info(i: &aws_sdk_ec2::types::Instance) -> InstanceInfo {
    InstanceInfo {
        id: i.instance_id().unwrap_or_default().to_string(),
        public_ip: i.public_ip_address().map(str::to_string),
        private_ip: i.private_ip_address().map(str::to_string),
        public_dns: i
            .public_dns_name()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        private_dns: i
            .private_dns_name()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        ipv6: i
            .ipv6_address()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        az: i
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_string),
    }
}

#[async_trait]
impl Step<Ctx, State> for RunInstance {
    fn name(&self) -> &'static str {
        "run-instance"
    }

    async fn plan(&self, cx: &Ctx, _st: &mut State) -> Result<Vec<String>, StepError> {
        let run = &cx.cfg.run;
        check_spot_options(run)?;
        let profile = match run
            .iam_instance_profile
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            Some(p) => format!("instance profile {p}"),
            None if run.temporary_iam_instance_profile_policy_document.is_some() => {
                "the temporary instance profile".to_string()
            }
            None => "no instance profile".to_string(),
        };
        let instance_type = run
            .instance_type
            .clone()
            .unwrap_or_else(|| "t3.micro".into());
        Ok(vec![if run.is_spot_instance() {
            let types = if run.spot_instance_types.is_empty() {
                instance_type
            } else {
                run.spot_instance_types.join(", ")
            };
            format!(
                "would launch in {}: a spot instance {types} ({profile}, spot_price {}) through a temporary launch template and an instant fleet",
                cx.region(),
                run.spot_price.as_deref().unwrap_or_default()
            )
        } else {
            format!(
                "would launch in {}: instance {instance_type} ({profile})",
                cx.region()
            )
        }])
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        let run = &cx.cfg.run;
        check_spot_options(run)?;
        let source = st
            .source
            .as_ref()
            .ok_or_else(|| StepError::msg("no source AMI"))?;
        let run_tags = run
            .run_tags
            .render(&st.late)
            .map_err(|e| StepError::msg(format!("run_tags: {e}")))?;
        let volume_tags = cx
            .cfg
            .run_volume_tags
            .render(&st.late)
            .map_err(|e| StepError::msg(format!("run_volume_tags: {e}")))?;
        let mut instance_tags = vec![("Name".to_string(), "Packer Builder".to_string())];
        instance_tags = merge(
            &instance_tags.into_iter().collect(),
            &run_tags.clone().into_iter().collect::<Vec<_>>(),
        );
        instance_tags.extend(cx.ownership_tags("builder-instance"));
        let mut vol = merge(&volume_tags, &[]);
        vol.extend(cx.ownership_tags("builder-volume"));
        let instance_type = run
            .instance_type
            .clone()
            .unwrap_or_else(|| "t3.micro".into());
        let id = if run.is_spot_instance() {
            self.spot
                .launch(
                    cx,
                    st,
                    &source.id,
                    user_data(cx)?,
                    client_token(cx),
                    &instance_tags,
                    &vol,
                )
                .await?
        } else {
            self.run_on_demand(cx, st, &source.id, &instance_type, &instance_tags, &vol)
                .await?
        };
        self.wait_running(cx, st, id).await
    }

    async fn cleanup(&mut self, cx: &Ctx, st: &mut State, o: Outcome) -> Result<(), StepError> {
        // A spot instance's fleet goes first, its request and launch template after the instance (also
        // when it never came).
        let fleet = self.spot.delete_fleet(cx).await;
        let terminated = self.terminate(cx, st, o).await;
        let spot = self.spot.cleanup(cx).await;
        fleet.and(terminated).and(spot)
    }
}

impl RunInstance {
    async fn run_on_demand(
        &mut self,
        cx: &Ctx,
        st: &State,
        source_id: &str,
        instance_type: &str,
        instance_tags: &[(String, String)],
        vol: &[(String, String)],
    ) -> Result<String, StepError> {
        let run = &cx.cfg.run;
        cx.ui.say(&cx.name, "Launching a source AWS instance...");
        let md = &run.metadata_options;
        let mut req = cx
            .clients
            .ec2
            .run_instances()
            .image_id(source_id)
            .instance_type(InstanceType::from(instance_type))
            .min_count(1)
            .max_count(1)
            .set_key_name(
                st.key
                    .as_ref()
                    .and_then(|k| k.key_name())
                    .map(str::to_string),
            )
            .set_user_data(user_data(cx)?)
            .set_block_device_mappings(
                Some(block_devices(&cx.cfg.launch_block_device_mappings)).filter(|v| !v.is_empty()),
            )
            .instance_initiated_shutdown_behavior(ShutdownBehavior::from(
                run.shutdown_behavior.as_str(),
            ))
            .ebs_optimized(run.ebs_optimized)
            .client_token(client_token(cx))
            .metadata_options(
                InstanceMetadataOptionsRequest::builder()
                    .http_endpoint(InstanceMetadataEndpointState::from(
                        md.http_endpoint.as_str(),
                    ))
                    // Only when the template asks: unset, the AMI's and the account's default apply.
                    .set_http_tokens(md.http_tokens.map(|t| HttpTokensState::from(t.as_str())))
                    .http_put_response_hop_limit(md.http_put_response_hop_limit as i32)
                    .instance_metadata_tags(InstanceMetadataTagsState::from(
                        md.instance_metadata_tags.as_str(),
                    ))
                    .build(),
            )
            .tag_specifications(ec2_tag_spec(ResourceType::Instance, instance_tags))
            .tag_specifications(ec2_tag_spec(ResourceType::Volume, vol));
        // The template's iam_instance_profile or the temporary one (the instance profile step).
        if let Some(profile) = st.iam_instance_profile.as_deref() {
            req = req.iam_instance_profile(
                IamInstanceProfileSpecification::builder()
                    .name(profile)
                    .build(),
            );
        }
        req = req.set_placement(placement(run));
        req = req
            .set_capacity_reservation_specification(capacity_reservation(run))
            .set_license_specifications(
                Some(
                    run.license_specifications
                        .iter()
                        .filter_map(|l| l.license_configuration_arn.clone())
                        .filter(|arn| !arn.is_empty())
                        .map(|arn| {
                            LicenseConfigurationRequest::builder()
                                .license_configuration_arn(arn)
                                .build()
                        })
                        .collect::<Vec<_>>(),
                )
                .filter(|v| !v.is_empty()),
            );
        if run.enable_nitro_enclave {
            req = req.enclave_options(EnclaveOptionsRequest::builder().enabled(true).build());
        }
        if run.enable_unlimited_credits || run.enable_t2_unlimited {
            req = req.credit_specification(
                CreditSpecificationRequest::builder()
                    .cpu_credits("unlimited")
                    .build(),
            );
        }
        if let Some(public) = run.associate_public_ip_address {
            // A public address can only be asked for on a network-interface specification.
            req = req.network_interfaces(
                InstanceNetworkInterfaceSpecification::builder()
                    .device_index(0)
                    .associate_public_ip_address(public)
                    .delete_on_termination(true)
                    .set_subnet_id(st.subnet_id.clone())
                    .set_groups(Some(st.security_group_ids.clone()))
                    .build(),
            );
        } else {
            req = req
                .set_subnet_id(st.subnet_id.clone())
                .set_security_group_ids(Some(st.security_group_ids.clone()));
        }
        let out = cx
            .create(
                Kind::Instance,
                cx.region(),
                Some(&client_token(cx)),
                // The new key pair and group may not be visible to RunInstances yet; the client token
                // makes a retry safe.
                retry_propagation(PROPAGATION_TIMEOUT, &cx.cancel, || async {
                    req.clone().send().await.aws("RunInstances")
                }),
            )
            .await?;
        let first = out
            .instances()
            .first()
            .ok_or_else(|| StepError::msg("RunInstances returned no instance"))?;
        Ok(first.instance_id().unwrap_or_default().to_string())
    }

    async fn wait_running(
        &mut self,
        cx: &Ctx,
        st: &mut State,
        id: String,
    ) -> Result<(), StepError> {
        cx.created(Kind::Instance, cx.region(), &id);
        st.instance = Some(InstanceInfo {
            id: id.clone(),
            ..InstanceInfo::default()
        });
        cx.ui.message(&cx.name, &format!("Instance ID: {id}"));
        let progress = cx.ui.progress(
            &cx.name,
            &format!("Waiting for instance ({id}) to become ready"),
        );
        let waits = cx.ec2_waits(&cx.clients);
        let inst = cx
            .poller(Poller::instance_running())
            .wait_batched(
                &format!("instance {id} to run"),
                &cx.cancel,
                |s, t| progress.state(s, t),
                &waits.instances,
                &id,
                |i| judge_instance(i, InstanceStateName::Running),
            )
            .await?;
        progress.finish(&format!("Instance {id} is running"));
        let i = info(&inst);
        for (k, v) in [
            ("ID", Some(i.id.clone())),
            ("InstanceID", Some(i.id.clone())),
            ("PublicIP", i.public_ip.clone()),
            ("PrivateIP", i.private_ip.clone()),
        ] {
            if let Some(v) = v {
                st.late.build.insert(k.into(), v);
            }
        }
        st.instance = Some(i);
        Ok(())
    }

    async fn terminate(&mut self, cx: &Ctx, st: &mut State, _o: Outcome) -> Result<(), StepError> {
        terminate_builder(cx, st).await
    }
}

/// Terminates the builder instance, if it is still there (the AMI step may have released it), and waits
/// for it unless the temporary group's deletion will (it is refused until the instance is gone).
pub async fn terminate_builder(cx: &Ctx, st: &mut State) -> Result<(), StepError> {
    let Some(id) = st.instance.as_ref().map(|i| i.id.clone()) else {
        return Ok(());
    };
    cx.ui
        .say(&cx.name, "Terminating the source AWS instance...");
    let now = terminate_instance(&cx.clients.ec2, &id).await?;
    if now != InstanceStateName::Terminated && st.temporary_security_group.is_none() {
        let waits = cx.ec2_waits(&cx.clients);
        let progress = cx
            .ui
            .progress(&cx.name, &format!("Waiting for instance {id} to terminate"));
        cx.poller(Poller::instance_terminated())
            .wait_batched(
                &format!("instance {id} to terminate"),
                &cx.cancel_cleanup,
                |s, t| progress.state(s, t),
                &waits.instances,
                &id,
                |i| judge_instance(i, InstanceStateName::Terminated),
            )
            .await?;
        progress.finish(&format!("Instance {id} terminated"));
    }
    cx.removed(Kind::Instance, cx.region(), &id);
    st.instance = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(members: &str) -> RunConfig {
        crate::amazon_ebs::state::test_config(members).run.clone()
    }

    #[test]
    fn capacity_reservation_preference_is_sent_alone() {
        let spec = capacity_reservation(&run(r#","capacity_reservation_preference": "open""#))
            .expect("a specification");
        assert_eq!(
            spec.capacity_reservation_preference(),
            Some(&CapacityReservationPreference::Open)
        );
        assert!(spec.capacity_reservation_target().is_none());
        let spec = capacity_reservation(&run(r#","capacity_reservation_id": "cr-1""#)).unwrap();
        assert_eq!(
            spec.capacity_reservation_target()
                .and_then(|t| t.capacity_reservation_id()),
            Some("cr-1")
        );
        assert!(spec.capacity_reservation_preference().is_none());
        // Unset, Packer's default: no reservation.
        assert_eq!(
            capacity_reservation(&run(""))
                .and_then(|s| s.capacity_reservation_preference().cloned()),
            Some(CapacityReservationPreference::None)
        );
        assert!(placement(&run("")).is_none());
    }
}
