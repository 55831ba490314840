//! What keeps an AMI: every reference to it in the region — launch template versions, launch
//! configurations, Auto Scaling groups (launch template, mixed instances policy with its overrides, launch
//! configuration), instances that are not terminated, spot fleet requests and EC2 Fleets that may still
//! launch, spot instance requests that are not closed. A reference gc cannot resolve is recorded as such:
//! while one exists, no AMI is removed.

use super::templates::Template;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use aws_sdk_ec2::types::Filter;
use std::collections::BTreeMap;

/// A reference to an AMI, and the launch template version it comes through (if any): such a reference
/// lapses when gc deletes that version.
#[derive(Debug, Clone)]
pub(super) struct Use {
    pub(super) reason: String,
    pub(super) via_version: Option<(String, i64)>,
}

/// What references AMIs and launch template versions in the region.
#[derive(Debug, Default)]
pub(super) struct Usage {
    /// AMI id → its references.
    pub(super) by_ami: BTreeMap<String, Vec<Use>>,
    /// References gc cannot resolve: while any exists, no AMI is removed.
    pub(super) unresolved: Vec<String>,
    /// Launch template (id) version → who references it (groups, fleets).
    pub(super) versions: BTreeMap<(String, i64), Vec<String>>,
    /// A reference named a launch template or version the scan did not list (deleted, or too new to be
    /// listed yet).
    pub(super) unlisted_template: bool,
}

impl Usage {
    /// Records a reference to `ami`.
    fn add(&mut self, ami: &str, reason: String, via_version: Option<(String, i64)>) {
        self.by_ami.entry(ami.to_string()).or_default().push(Use {
            reason,
            via_version,
        });
    }
}

/// Resolves a launch template reference (id or name, `$Latest`/`$Default`/number, default when absent)
/// against the scanned templates; records the version's users and its AMI.
pub(super) fn reference_template(
    templates: &[Template],
    usage: &mut Usage,
    who: &str,
    id: Option<&str>,
    name: Option<&str>,
    version: Option<&str>,
) {
    let Some(t) = templates
        .iter()
        .find(|t| Some(t.id.as_str()) == id || Some(t.name.as_str()) == name)
    else {
        usage.unlisted_template = true;
        usage.unresolved.push(format!(
            "{who}: launch template {} was not found",
            id.or(name).unwrap_or("(unnamed)")
        ));
        return;
    };
    let n = match version.unwrap_or("$Default") {
        "$Latest" => Some(t.latest),
        "$Default" => Some(t.default),
        v => v.parse::<i64>().ok(),
    };
    let Some(n) = n else {
        usage.unresolved.push(format!(
            "{who}: launch template {} version {} is not a version",
            t.name,
            version.unwrap_or_default()
        ));
        return;
    };
    usage
        .versions
        .entry((t.id.clone(), n))
        .or_default()
        .push(who.to_string());
    match t.versions.get(&n) {
        Some(Some(Ok(ami))) => {
            usage.add(
                ami,
                format!("in use by {who} (launch template {} version {n})", t.name),
                None,
            );
        }
        // Unresolvable images are already listed by the template scan; no image: nothing to protect.
        Some(_) => {}
        None => {
            usage.unlisted_template = true;
            usage.unresolved.push(format!(
                "{who}: launch template {} has no version {n}",
                t.name
            ));
        }
    }
}

/// Everything in the region that references an AMI.
pub(super) async fn scan(cx: &Ctx, templates: &[Template]) -> Result<Usage, RolloutError> {
    let mut usage = Usage::default();
    template_versions(templates, &mut usage);
    let configs = launch_configurations(cx, &mut usage).await?;
    groups(cx, templates, &configs, &mut usage).await?;
    instances(cx, &mut usage).await?;
    spot_fleets(cx, templates, &mut usage).await?;
    fleets(cx, templates, &mut usage).await?;
    spot_requests(cx, &mut usage).await?;
    Ok(usage)
}

/// Every launch template version's image (a reference that lapses when gc deletes the version).
fn template_versions(templates: &[Template], usage: &mut Usage) {
    for t in templates {
        for (n, image) in &t.versions {
            match image {
                Some(Ok(ami)) => usage.add(
                    ami,
                    format!("in use by launch template {} version {n}", t.name),
                    Some((t.id.clone(), *n)),
                ),
                Some(Err(why)) => usage
                    .unresolved
                    .push(format!("launch template {} version {n}: {why}", t.name)),
                None => {}
            }
        }
    }
}

/// Launch configurations' images; returns name → image for the groups that use them.
async fn launch_configurations(
    cx: &Ctx,
    usage: &mut Usage,
) -> Result<BTreeMap<String, String>, RolloutError> {
    let asc = &cx.clients.autoscaling;
    let mut configs: BTreeMap<String, String> = BTreeMap::new();
    let mut pages = asc.describe_launch_configurations().into_paginator().send();
    while let Some(page) = pages.next().await {
        for lc in page
            .aws("DescribeLaunchConfigurations")?
            .launch_configurations()
        {
            let name = lc.launch_configuration_name().unwrap_or_default();
            if let Some(ami) = lc.image_id() {
                configs.insert(name.to_string(), ami.to_string());
                usage.add(ami, format!("in use by launch configuration {name}"), None);
            }
        }
    }
    Ok(configs)
}

/// Auto Scaling groups: their launch configuration, launch template and mixed instances policy.
async fn groups(
    cx: &Ctx,
    templates: &[Template],
    configs: &BTreeMap<String, String>,
    usage: &mut Usage,
) -> Result<(), RolloutError> {
    let asc = &cx.clients.autoscaling;
    let mut pages = asc.describe_auto_scaling_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        for g in page.aws("DescribeAutoScalingGroups")?.auto_scaling_groups() {
            let who = format!("asg {}", g.auto_scaling_group_name().unwrap_or_default());
            if let Some(lc) = g.launch_configuration_name() {
                match configs.get(lc) {
                    Some(ami) => usage.add(
                        ami,
                        format!("in use by {who} (launch configuration {lc})"),
                        None,
                    ),
                    None => usage
                        .unresolved
                        .push(format!("{who}: launch configuration {lc} was not found")),
                }
            }
            let mut specs = Vec::new();
            if let Some(s) = g.launch_template() {
                specs.push(s.clone());
            }
            if let Some(lt) = g.mixed_instances_policy().and_then(|p| p.launch_template()) {
                specs.extend(lt.launch_template_specification().cloned());
                for o in lt.overrides() {
                    specs.extend(o.launch_template_specification().cloned());
                    if let Some(ami) = o.image_id() {
                        usage.add(
                            ami,
                            format!("in use by {who} (mixed instances override)"),
                            None,
                        );
                    }
                }
            }
            for s in specs {
                reference_template(
                    templates,
                    usage,
                    &who,
                    s.launch_template_id(),
                    s.launch_template_name(),
                    s.version(),
                );
            }
        }
    }
    Ok(())
}

/// Instances that are not terminated.
async fn instances(cx: &Ctx, usage: &mut Usage) -> Result<(), RolloutError> {
    let ec2 = &cx.clients.ec2;
    let mut pages = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "stopping", "stopped", "shutting-down"]
                        .map(String::from)
                        .to_vec(),
                ))
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for r in page.aws("DescribeInstances")?.reservations() {
            for i in r.instances() {
                if let Some(ami) = i.image_id() {
                    let state = i
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str())
                        .unwrap_or("?");
                    usage.add(
                        ami,
                        format!(
                            "in use by instance {} ({state})",
                            i.instance_id().unwrap_or_default()
                        ),
                        None,
                    );
                }
            }
        }
    }
    Ok(())
}

/// Spot fleet requests that may still launch.
async fn spot_fleets(
    cx: &Ctx,
    templates: &[Template],
    usage: &mut Usage,
) -> Result<(), RolloutError> {
    let ec2 = &cx.clients.ec2;
    let mut pages = ec2.describe_spot_fleet_requests().into_paginator().send();
    while let Some(page) = pages.next().await {
        for f in page
            .aws("DescribeSpotFleetRequests")?
            .spot_fleet_request_configs()
        {
            use aws_sdk_ec2::types::BatchState;
            // A cancelled fleet (even one whose instances still run) and a failed one launch nothing more;
            // their instances are covered above. Any other state (also an unknown one) may launch.
            if matches!(
                f.spot_fleet_request_state(),
                Some(
                    BatchState::Cancelled
                        | BatchState::CancelledRunning
                        | BatchState::CancelledTerminatingInstances
                        | BatchState::Failed
                )
            ) {
                continue;
            }
            let who = format!(
                "spot fleet {}",
                f.spot_fleet_request_id().unwrap_or_default()
            );
            let Some(c) = f.spot_fleet_request_config() else {
                continue;
            };
            for spec in c.launch_specifications() {
                if let Some(ami) = spec.image_id() {
                    usage.add(ami, format!("in use by {who}"), None);
                }
            }
            for ltc in c.launch_template_configs() {
                if let Some(s) = ltc.launch_template_specification() {
                    reference_template(
                        templates,
                        usage,
                        &who,
                        s.launch_template_id(),
                        s.launch_template_name(),
                        s.version(),
                    );
                }
            }
        }
    }
    Ok(())
}

/// EC2 Fleets that may still launch.
async fn fleets(cx: &Ctx, templates: &[Template], usage: &mut Usage) -> Result<(), RolloutError> {
    let ec2 = &cx.clients.ec2;
    // EC2 Fleets of type maintain/request launch again; an instant fleet never does (its instances, if
    // any, are covered above), nor does a deleted or failed one.
    let mut pages = ec2.describe_fleets().into_paginator().send();
    while let Some(page) = pages.next().await {
        for f in page.aws("DescribeFleets")?.fleets() {
            use aws_sdk_ec2::types::{FleetStateCode, FleetType};
            if matches!(f.r#type(), Some(FleetType::Instant))
                || matches!(
                    f.fleet_state(),
                    Some(
                        FleetStateCode::Deleted
                            | FleetStateCode::DeletedRunning
                            | FleetStateCode::DeletedTerminatingInstances
                            | FleetStateCode::Failed
                    )
                )
            {
                continue;
            }
            let who = format!("fleet {}", f.fleet_id().unwrap_or_default());
            for c in f.launch_template_configs() {
                if let Some(s) = c.launch_template_specification() {
                    reference_template(
                        templates,
                        usage,
                        &who,
                        s.launch_template_id(),
                        s.launch_template_name(),
                        s.version(),
                    );
                }
                for o in c.overrides() {
                    if let Some(ami) = o.image_id() {
                        usage.add(ami, format!("in use by {who} (override)"), None);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Spot instance requests that may still launch.
async fn spot_requests(cx: &Ctx, usage: &mut Usage) -> Result<(), RolloutError> {
    let ec2 = &cx.clients.ec2;
    // A persistent spot request relaunches from its launch specification; one-time requests that are
    // closed, cancelled or failed launch nothing more.
    let mut pages = ec2
        .describe_spot_instance_requests()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for r in page
            .aws("DescribeSpotInstanceRequests")?
            .spot_instance_requests()
        {
            use aws_sdk_ec2::types::SpotInstanceState;
            if matches!(
                r.state(),
                Some(
                    SpotInstanceState::Closed
                        | SpotInstanceState::Cancelled
                        | SpotInstanceState::Failed
                )
            ) {
                continue;
            }
            if let Some(ami) = r.launch_specification().and_then(|l| l.image_id()) {
                usage.add(
                    ami,
                    format!(
                        "in use by spot request {}",
                        r.spot_instance_request_id().unwrap_or_default()
                    ),
                    None,
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_templates_and_versions_are_unresolved_references() {
        let t = vec![Template::sample(true)];
        let mut usage = Usage::default();
        reference_template(&t, &mut usage, "asg g", None, Some("lt-app-env"), None);
        assert!(usage.by_ami["ami-00000002"][0].reason.contains("asg g"));
        reference_template(&t, &mut usage, "asg h", Some("lt-9"), None, None);
        reference_template(&t, &mut usage, "asg i", Some("lt-1"), None, Some("9"));
        assert_eq!(usage.unresolved.len(), 2, "{:?}", usage.unresolved);
    }
}
