//! The launch template versions an instance refresh works with: the one the group runs, which versions
//! groups use, deleting versions.

use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt, RolloutError};
use crate::live::Group;
use std::collections::BTreeSet;

/// The launch template version the group runs.
#[derive(Debug, Clone)]
pub(super) struct Current {
    pub(super) template_id: String,
    pub(super) template_name: String,
    pub(super) version: i64,
    pub(super) image_id: Option<String>,
}

pub(super) async fn current_version(cx: &Ctx, g: &Group) -> Result<Current, RolloutError> {
    let lt = g.launch_template.as_ref().ok_or_else(|| {
        RolloutError::Preflight(vec![format!("{} has no launch template", g.name)])
    })?;
    let mut req = cx
        .clients
        .ec2
        .describe_launch_template_versions()
        .versions(lt.version.clone().unwrap_or_else(|| "$Default".into()));
    req = match (&lt.id, &lt.name) {
        (Some(id), _) => req.launch_template_id(id),
        (None, Some(name)) => req.launch_template_name(name),
        (None, None) => {
            return Err(RolloutError::Preflight(vec![format!(
                "{}'s launch template has neither an id nor a name",
                g.name
            )]));
        }
    };
    let out = req.send().await.aws("DescribeLaunchTemplateVersions")?;
    let v = out.launch_template_versions().first().ok_or_else(|| {
        RolloutError::Preflight(vec![format!(
            "{}'s launch template version {} does not exist",
            g.name,
            lt.version.as_deref().unwrap_or("$Default")
        )])
    })?;
    Ok(Current {
        template_id: v
            .launch_template_id()
            .or(lt.id.as_deref())
            .unwrap_or_default()
            .to_string(),
        template_name: v
            .launch_template_name()
            .or(lt.name.as_deref())
            .unwrap_or_default()
            .to_string(),
        version: v.version_number().unwrap_or(0),
        image_id: v
            .launch_template_data()
            .and_then(|d| d.image_id())
            .map(str::to_string),
    })
}

/// The launch template's latest and default version numbers.
pub(super) async fn template_numbers(cx: &Ctx, id: &str) -> Result<(i64, i64), AwsError> {
    let out = cx
        .clients
        .ec2
        .describe_launch_templates()
        .launch_template_ids(id)
        .send()
        .await
        .aws("DescribeLaunchTemplates")?;
    let t = out.launch_templates().first();
    Ok((
        t.and_then(|t| t.latest_version_number()).unwrap_or(0),
        t.and_then(|t| t.default_version_number()).unwrap_or(0),
    ))
}

/// Version numbers of template `c` that any Auto Scaling group in the region references (`$Latest` and
/// `$Default` resolved), including mixed-instances policies.
pub(super) async fn versions_in_use(
    cx: &Ctx,
    c: &Current,
    latest: i64,
    default: i64,
) -> Result<BTreeSet<i64>, AwsError> {
    let groups = cx
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("DescribeAutoScalingGroups")?;
    let mut used = BTreeSet::new();
    for g in &groups {
        let specs = g.launch_template().into_iter().chain(
            g.mixed_instances_policy()
                .and_then(|m| m.launch_template())
                .and_then(|l| l.launch_template_specification()),
        );
        for s in specs {
            let ours = s.launch_template_id() == Some(c.template_id.as_str())
                || s.launch_template_name() == Some(c.template_name.as_str());
            if !ours {
                continue;
            }
            match s.version().unwrap_or("$Default") {
                "$Latest" => used.insert(latest),
                "$Default" => used.insert(default),
                n => n.parse().map(|n| used.insert(n)).unwrap_or(false),
            };
        }
    }
    Ok(used)
}

pub(super) async fn delete_versions(
    cx: &Ctx,
    template_id: &str,
    versions: &[i64],
) -> Result<(), String> {
    let out = cx
        .clients
        .ec2
        .delete_launch_template_versions()
        .launch_template_id(template_id)
        .set_versions(Some(versions.iter().map(i64::to_string).collect()))
        .send()
        .await
        .aws("DeleteLaunchTemplateVersions")
        .map_err(|e| e.to_string())?;
    let failed: Vec<String> = out
        .unsuccessfully_deleted_launch_template_versions()
        .iter()
        .map(|f| {
            format!(
                "version {}: {}",
                f.version_number().unwrap_or(0),
                f.response_error()
                    .and_then(|e| e.message())
                    .unwrap_or("not deleted")
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join(", "))
    }
}
