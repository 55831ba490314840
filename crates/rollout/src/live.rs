//! What is live: the environment's Auto Scaling groups, found by their `bakery:app` / `bakery:env` tags
//! (never by name prefix: a group rollout did not create is never touched by it).

use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt};
use crate::names::{APP_TAG, ENV_TAG};
pub use crate::observed::{Group, GroupInstance, LaunchTemplateRef};
use aws_sdk_autoscaling::types::Filter;

/// The environment's groups (tagged `bakery:app` and `bakery:env`), oldest first.
pub async fn groups(cx: &Ctx) -> Result<Vec<Group>, AwsError> {
    let pages = cx
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .filters(
            Filter::builder()
                .name(format!("tag:{APP_TAG}"))
                .values(&cx.cfg.names.app)
                .build(),
        )
        .filters(
            Filter::builder()
                .name(format!("tag:{ENV_TAG}"))
                .values(&cx.cfg.names.env)
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("DescribeAutoScalingGroups")?;
    let mut groups: Vec<Group> = pages.iter().map(Group::from_sdk).collect();
    groups.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
    Ok(groups)
}

/// One group by name, if it exists.
pub async fn group(cx: &Ctx, name: &str) -> Result<Option<Group>, AwsError> {
    let out = cx
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .aws("DescribeAutoScalingGroups")?;
    Ok(out
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(name))
        .map(Group::from_sdk))
}

/// The AMI a group runs: its `bakery:ami` tag, else its launch template version's image.
pub async fn group_ami(cx: &Ctx, g: &Group) -> Result<Option<String>, AwsError> {
    if g.ami.is_some() {
        return Ok(g.ami.clone());
    }
    let Some(lt) = &g.launch_template else {
        return Ok(None);
    };
    let mut req = cx
        .clients
        .ec2
        .describe_launch_template_versions()
        .versions(lt.version.clone().unwrap_or_else(|| "$Default".into()));
    req = match (&lt.id, &lt.name) {
        (Some(id), _) => req.launch_template_id(id),
        (None, Some(name)) => req.launch_template_name(name),
        (None, None) => return Ok(None),
    };
    match req.send().await.aws("DescribeLaunchTemplateVersions") {
        Ok(out) => Ok(out
            .launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .and_then(|d| d.image_id())
            .map(str::to_string)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
