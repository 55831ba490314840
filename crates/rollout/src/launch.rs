//! What a new group launches with (security groups, key pair, user data, placement) and the calls that
//! create the launch template and the group. Never a launch configuration: accounts created since
//! 2024-10-01 cannot create them.

use crate::ami::ResolvedAmi;
use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt, RolloutError};
use crate::lb::LoadBalancer;
use crate::manifest::LbKind;
use crate::names::{AMI_TAG, STATE_IN_PROGRESS, STATE_LIVE, STATE_TAG};
use aws_sdk_ec2::types::{
    Filter, InstanceType, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType,
    TagSpecification,
};
use bakery_core::propagation::{NOT_FOUND_CONFIRMATION, PROPAGATION_TIMEOUT, retry_propagation};
use bakery_core::tags::ec2_tags;
use serde::Serialize;

/// EC2's limit on user data, before base64.
const USER_DATA_LIMIT: usize = 16 * 1024;

/// Where the group's instances go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// VPC subnets (`VPCZoneIdentifier`).
    Subnets(Vec<String>),
    /// Availability zones (the default subnets of each).
    Zones(Vec<String>),
}

impl Placement {
    /// `subnets subnet-a, subnet-b` / `zones us-east-1a, us-east-1b`.
    pub fn describe(&self) -> String {
        match self {
            Placement::Subnets(s) => format!("subnets {}", s.join(", ")),
            Placement::Zones(z) => format!("zones {}", z.join(", ")),
        }
    }
}

/// Everything a launch template needs besides the AMI, checked to exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchSpec {
    /// Security group ids (the environment's own first).
    pub security_group_ids: Vec<String>,
    /// The environment's key pair, when one is configured.
    pub key_name: Option<String>,
    /// User data, base64.
    #[serde(skip)]
    pub user_data: Option<String>,
    /// Placement.
    pub placement: Placement,
}

/// Works out the launch spec (read-only); every problem found is returned, not just the first.
pub async fn spec(cx: &Ctx, lb: &LoadBalancer) -> Result<LaunchSpec, Vec<String>> {
    let mut problems = Vec::new();
    let cfg = &cx.cfg;
    let vpc = lb.vpc_id.clone().or_else(|| cfg.network.vpc_id.clone());

    // Security groups: the environment's own (by name, in the load balancer's VPC) plus the extras.
    let own = cfg.names.instance_security_group();
    let mut names = vec![own.clone()];
    let mut ids = Vec::new();
    for g in &cfg.instances.security_groups {
        if g.starts_with("sg-") {
            ids.push(g.clone());
        } else {
            names.push(g.clone());
        }
    }
    let mut by_name = std::collections::BTreeMap::new();
    let mut req = cx.clients.ec2.describe_security_groups().filters(
        Filter::builder()
            .name("group-name")
            .set_values(Some(names.clone()))
            .build(),
    );
    if let Some(v) = &vpc {
        req = req.filters(Filter::builder().name("vpc-id").values(v).build());
    }
    match req.send().await.aws("DescribeSecurityGroups") {
        Ok(out) => {
            for g in out.security_groups() {
                if let (Some(n), Some(id)) = (g.group_name(), g.group_id()) {
                    by_name.insert(n.to_string(), id.to_string());
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    let mut sg_ids = Vec::new();
    for n in &names {
        match by_name.get(n) {
            Some(id) => sg_ids.push(id.clone()),
            None if *n == own => problems.push(format!(
                "security group {own} does not exist in {}: run `rollout setup --env {}` first",
                vpc.as_deref().unwrap_or("the VPC"),
                cfg.names.env
            )),
            None => problems.push(format!(
                "instances.security_groups: no security group named {n} in {}",
                vpc.as_deref().unwrap_or("the VPC")
            )),
        }
    }
    if !ids.is_empty() {
        match cx
            .clients
            .ec2
            .describe_security_groups()
            .set_group_ids(Some(ids.clone()))
            .send()
            .await
            .aws("DescribeSecurityGroups")
        {
            Ok(_) => sg_ids.extend(ids),
            Err(e) => problems.push(format!("instances.security_groups: {e}")),
        }
    }

    // The key pair setup imported.
    let key_name = if cfg.public_key_file.is_some() {
        let name = cfg.names.key_pair();
        // Imported by a setup moments ago, it may not be visible yet: "not found" is believed once it lasts.
        let ec2 = &cx.clients.ec2;
        let found = retry_propagation(NOT_FOUND_CONFIRMATION, &cx.cancel, || async {
            ec2.describe_key_pairs()
                .key_names(&name)
                .send()
                .await
                .aws("DescribeKeyPairs")
        })
        .await;
        match found {
            Ok(_) => Some(name),
            Err(e) if e.is_not_found() => {
                problems.push(format!(
                    "key pair {name} does not exist: run `rollout setup --env {}` first",
                    cfg.names.env
                ));
                None
            }
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        }
    } else {
        None
    };

    let user_data = match &cfg.instances.user_data_file {
        None => None,
        Some(path) => match std::fs::read(path) {
            Ok(bytes) if bytes.len() > USER_DATA_LIMIT => {
                problems.push(format!(
                    "instances.user_data_file {}: {} bytes, EC2 takes at most {USER_DATA_LIMIT}",
                    path.display(),
                    bytes.len()
                ));
                None
            }
            Ok(bytes) => Some(aws_smithy_types::base64::encode(bytes)),
            Err(e) => {
                problems.push(format!("instances.user_data_file {}: {e}", path.display()));
                None
            }
        },
    };

    // The manifest's subnets, else the load balancer's (as seed 004 took the ELB's zones).
    let placement = if !cfg.network.subnets.is_empty() {
        Placement::Subnets(cfg.network.subnets.clone())
    } else if !lb.subnets.is_empty() {
        Placement::Subnets(lb.subnets.clone())
    } else if !lb.availability_zones.is_empty() {
        Placement::Zones(lb.availability_zones.clone())
    } else {
        Placement::Zones(cfg.network.availability_zones.clone())
    };
    if matches!(&placement, Placement::Zones(z) if z.is_empty()) {
        problems.push("no subnets or availability zones for the group (network.subnets)".into());
    }

    if problems.is_empty() {
        Ok(LaunchSpec {
            security_group_ids: sg_ids,
            key_name,
            user_data,
            placement,
        })
    } else {
        Err(problems)
    }
}

/// A launch template this run created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTemplate {
    /// `lt-...` id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// Creates launch template `name` for `ami`.
pub async fn create_launch_template(
    cx: &Ctx,
    name: &str,
    ami: &ResolvedAmi,
    spec: &LaunchSpec,
) -> Result<CreatedTemplate, AwsError> {
    let i = &cx.cfg.instances;
    let mut data = RequestLaunchTemplateData::builder()
        .image_id(&ami.id)
        .instance_type(InstanceType::from(i.instance_type.as_str()))
        .set_key_name(spec.key_name.clone())
        .set_security_group_ids(Some(spec.security_group_ids.clone()))
        .set_user_data(spec.user_data.clone())
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(ec2_tags(&cx.tags_for("instance"))))
                .build(),
        )
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Volume)
                .set_tags(Some(ec2_tags(&cx.tags_for("volume"))))
                .build(),
        );
    if i.require_imdsv2 {
        data = data.metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::Required)
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .build(),
        );
    }
    if let Some(p) = &i.iam_instance_profile {
        let b = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
        data = data.iam_instance_profile(if p.starts_with("arn:") {
            b.arn(p).build()
        } else {
            b.name(p).build()
        });
    }
    let out = cx
        .clients
        .ec2
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(data.build())
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .set_tags(Some(ec2_tags(&cx.tags_for("launch-template"))))
                .build(),
        )
        .send()
        .await
        .aws("CreateLaunchTemplate")?;
    let id = out
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .unwrap_or_default()
        .to_string();
    Ok(CreatedTemplate {
        id,
        name: name.to_string(),
    })
}

fn asg_tag(
    group: &str,
    key: &str,
    value: &str,
    propagate: bool,
) -> aws_sdk_autoscaling::types::Tag {
    aws_sdk_autoscaling::types::Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(key)
        .value(value)
        .propagate_at_launch(propagate)
        .build()
}

/// Creates group `name` from `template`, attached to `lb`, tagged `in-progress`.
pub async fn create_group(
    cx: &Ctx,
    name: &str,
    template: &CreatedTemplate,
    ami: &ResolvedAmi,
    lb: &LoadBalancer,
    spec: &LaunchSpec,
    desired: u32,
) -> Result<(), AwsError> {
    let cap = &cx.cfg.capacity;
    let mut tags = Vec::new();
    // Ownership tags describe the group itself; instances get theirs from the launch template.
    for (k, v) in bakery_core::tags::ownership(&cx.run_id, crate::names::TOOL, "auto-scaling-group")
    {
        tags.push(asg_tag(name, &k, &v, false));
    }
    for (k, v) in cx.cfg.names.tags() {
        tags.push(asg_tag(name, &k, &v, true));
    }
    for (k, v) in &cx.cfg.tags {
        tags.push(asg_tag(name, k, v, true));
    }
    tags.push(asg_tag(name, STATE_TAG, STATE_IN_PROGRESS, false));
    tags.push(asg_tag(name, AMI_TAG, &ami.id, false));
    let mut req = cx
        .clients
        .autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_id(&template.id)
                .version("1")
                .build(),
        )
        .min_size(cap.min.min(desired) as i32)
        .max_size(cap.max.max(desired) as i32)
        .desired_capacity(desired as i32)
        .health_check_type("ELB")
        .health_check_grace_period(cx.cfg.instances.grace_period_seconds as i32)
        .set_tags(Some(tags));
    req = match lb.kind {
        LbKind::Classic => req.load_balancer_names(&lb.name),
        LbKind::Alb => req.target_group_arns(lb.target_group_arn.clone().unwrap_or_default()),
    };
    req = match &spec.placement {
        Placement::Subnets(s) => req.vpc_zone_identifier(s.join(",")),
        Placement::Zones(z) => req.set_availability_zones(Some(z.clone())),
    };
    // The new launch template may not be visible to Auto Scaling yet.
    retry_propagation(PROPAGATION_TIMEOUT, &cx.cancel, || async {
        req.clone().send().await.aws("CreateAutoScalingGroup")
    })
    .await?;
    Ok(())
}

/// Marks `group` live: it passed its health checks and is now the one the next rollout replaces.
pub async fn mark_live(cx: &Ctx, group: &str) -> Result<(), AwsError> {
    cx.clients
        .autoscaling
        .create_or_update_tags()
        .tags(asg_tag(group, STATE_TAG, STATE_LIVE, false))
        .send()
        .await
        .aws("CreateOrUpdateTags")?;
    Ok(())
}

/// Sets `tags` (key, value) on `group`, not propagated to instances (one request).
pub async fn tag_group(cx: &Ctx, group: &str, tags: &[(&str, &str)]) -> Result<(), AwsError> {
    cx.clients
        .autoscaling
        .create_or_update_tags()
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| asg_tag(group, k, v, false))
                .collect(),
        ))
        .send()
        .await
        .aws("CreateOrUpdateTags")?;
    Ok(())
}

/// Removes the tags `keys` from `group` (one request; none when `keys` is empty).
pub async fn untag_group(cx: &Ctx, group: &str, keys: &[&str]) -> Result<(), AwsError> {
    if keys.is_empty() {
        return Ok(());
    }
    cx.clients
        .autoscaling
        .delete_tags()
        .set_tags(Some(
            keys.iter()
                .map(|k| {
                    aws_sdk_autoscaling::types::Tag::builder()
                        .resource_id(group)
                        .resource_type("auto-scaling-group")
                        .key(*k)
                        .build()
                })
                .collect(),
        ))
        .send()
        .await
        .aws("DeleteTags")?;
    Ok(())
}

/// Deletes launch template `id` if it is this environment's (tagged by rollout); returns its name, or
/// `None` when it is not ours (kept) or already gone.
pub async fn delete_template_if_ours(cx: &Ctx, id: &str) -> Result<Option<String>, RolloutError> {
    let ec2 = &cx.clients.ec2;
    let out = retry_propagation(NOT_FOUND_CONFIRMATION, &cx.cancel_cleanup, || async {
        ec2.describe_launch_templates()
            .launch_template_ids(id)
            .send()
            .await
            .aws("DescribeLaunchTemplates")
    })
    .await;
    let lts = match out {
        Ok(o) => o.launch_templates.unwrap_or_default(),
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(lt) = lts.into_iter().next() else {
        return Ok(None);
    };
    if !cx.cfg.names.owns(lt.tags()) {
        return Ok(None);
    }
    delete_template(cx, id).await?;
    Ok(lt.launch_template_name().map(str::to_string))
}

/// Deletes launch template `id` (already gone is fine).
pub async fn delete_template(cx: &Ctx, id: &str) -> Result<(), AwsError> {
    // One made moments ago may not be visible yet: "not found" is believed once it lasts.
    let ec2 = &cx.clients.ec2;
    let answer = retry_propagation(NOT_FOUND_CONFIRMATION, &cx.cancel_cleanup, || async {
        ec2.delete_launch_template()
            .launch_template_id(id)
            .send()
            .await
            .aws("DeleteLaunchTemplate")
    })
    .await;
    match answer {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Rollback of a launch template rollout created: deleted when what launched from it (`owner`, e.g. "its
/// group") is gone, else kept and listed as needing attention (deleting it would orphan that owner).
pub async fn roll_back_template(
    cx: &Ctx,
    lt: &CreatedTemplate,
    owner_gone: bool,
    owner: &str,
    rb: &mut crate::report::RollbackReport,
) {
    if !owner_gone {
        rb.failures.push(format!(
            "launch template {} ({}) kept while {owner}",
            lt.name, lt.id
        ));
        return;
    }
    match delete_template(cx, &lt.id).await {
        Ok(()) => rb
            .actions
            .push(format!("deleted launch template {} ({})", lt.name, lt.id)),
        Err(e) => rb
            .failures
            .push(format!("launch template {} ({}): {e}", lt.name, lt.id)),
    }
}
