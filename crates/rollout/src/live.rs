//! What is live: the environment's Auto Scaling groups, found by their `bakery:app` / `bakery:env` tags
//! (never by name prefix: a group rollout did not create is never touched by it).

use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt};
use crate::lb::TargetState;
use crate::names::{AMI_TAG, APP_TAG, ENV_TAG, STATE_TAG};
use aws_sdk_autoscaling::types::{AutoScalingGroup, Filter};
use serde::Serialize;

/// A launch template reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchTemplateRef {
    /// `lt-...` id.
    pub id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Version (`1`, `$Latest`).
    pub version: Option<String>,
}

/// One instance of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInstance {
    /// `i-...`.
    pub id: String,
    /// Availability zone.
    pub availability_zone: String,
    /// `Pending`, `InService`, `Terminating`...
    pub lifecycle: String,
    /// `Healthy` / `Unhealthy`.
    pub health: String,
    /// How the load balancer sees it (filled in by callers that asked it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<TargetState>,
}

impl GroupInstance {
    /// InService and Healthy in the group.
    pub fn healthy_in_group(&self) -> bool {
        self.lifecycle == "InService" && self.health == "Healthy"
    }
}

/// One Auto Scaling group of the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Name.
    pub name: String,
    /// `bakery:rollout-state`: `live`, `in-progress`, or none.
    pub state: Option<String>,
    /// `bakery:run-id`.
    pub run_id: Option<String>,
    /// `bakery:ami`.
    pub ami: Option<String>,
    /// `bakery:managed` is true.
    pub managed: bool,
    /// Its launch template.
    pub launch_template: Option<LaunchTemplateRef>,
    /// Its launch configuration (groups made before launch templates).
    pub launch_configuration: Option<String>,
    /// Min size.
    pub min: i32,
    /// Max size.
    pub max: i32,
    /// Desired capacity.
    pub desired: i32,
    /// Classic load balancers attached.
    pub load_balancers: Vec<String>,
    /// Target groups attached.
    pub target_groups: Vec<String>,
    /// Instances.
    pub instances: Vec<GroupInstance>,
    /// `Delete in progress` while being deleted.
    pub status: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
}

impl Group {
    fn from_sdk(g: &AutoScalingGroup) -> Self {
        let tag = |k: &str| {
            g.tags()
                .iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        let lt = g
            .launch_template()
            .or_else(|| {
                g.mixed_instances_policy()
                    .and_then(|m| m.launch_template())
                    .and_then(|l| l.launch_template_specification())
            })
            .map(|l| LaunchTemplateRef {
                id: l.launch_template_id().map(str::to_string),
                name: l.launch_template_name().map(str::to_string),
                version: l.version().map(str::to_string),
            });
        let mut instances: Vec<GroupInstance> = g
            .instances()
            .iter()
            .map(|i| GroupInstance {
                id: i.instance_id().unwrap_or_default().to_string(),
                availability_zone: i.availability_zone().unwrap_or_default().to_string(),
                lifecycle: i
                    .lifecycle_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                health: i.health_status().unwrap_or_default().to_string(),
                load_balancer: None,
            })
            .collect();
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        Group {
            name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
            state: tag(STATE_TAG),
            run_id: tag(bakery_core::tags::RUN_ID),
            ami: tag(AMI_TAG),
            managed: tag(bakery_core::tags::MANAGED).as_deref() == Some("true"),
            launch_template: lt,
            launch_configuration: g.launch_configuration_name().map(str::to_string),
            min: g.min_size().unwrap_or(0),
            max: g.max_size().unwrap_or(0),
            desired: g.desired_capacity().unwrap_or(0),
            load_balancers: g.load_balancer_names().to_vec(),
            target_groups: g.target_group_arns().to_vec(),
            instances,
            status: g.status().map(str::to_string),
            created: g.created_time().map(|t| {
                bakery_core::ui::rfc3339(
                    std::time::SystemTime::try_from(*t).unwrap_or(std::time::UNIX_EPOCH),
                )
            }),
        }
    }

    /// The instance ids.
    pub fn instance_ids(&self) -> Vec<String> {
        self.instances.iter().map(|i| i.id.clone()).collect()
    }

    /// True for a group whose rollout has not finished (or died).
    pub fn in_progress(&self) -> bool {
        self.state.as_deref() == Some(crate::names::STATE_IN_PROGRESS)
    }

    /// True while AWS deletes the group (`Delete in progress`): it is going away and is not retired again.
    pub fn deleting(&self) -> bool {
        self.status.is_some()
    }

    /// What an operator would check to see whether the group changed: sizes, instances, attachments.
    pub fn fingerprint(&self) -> String {
        format!(
            "min={} max={} desired={} instances=[{}] lbs=[{}] tgs=[{}] lt={:?}",
            self.min,
            self.max,
            self.desired,
            self.instance_ids().join(","),
            self.load_balancers.join(","),
            self.target_groups.join(","),
            self.launch_template
        )
    }
}

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
