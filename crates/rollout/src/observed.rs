//! What rollout observed of AWS, as plain data: the environment's Auto Scaling groups and their instances
//! (found by [`crate::live`]), how the load balancer sees an instance ([`crate::lb`]), an AMI checked to
//! exist ([`crate::ami`]). Below `error` and `report`, which carry these, so nothing here calls AWS.

use crate::names::{
    AMI_TAG, KEEP_UNTIL_TAG, RELEASE_RUN_TAG, RETIRED_AT_TAG, STATE_IN_PROGRESS, STATE_RESTORING,
    STATE_RETIRED, STATE_TAG,
};
use aws_sdk_autoscaling::types::{AutoScalingGroup, LifecycleState};
use aws_sdk_ec2::types::InstanceStateName;
use serde::{Serialize, Serializer};
use std::fmt;

/// An AMI checked to exist and be available in the region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedAmi {
    /// `ami-...`.
    pub id: String,
    /// What `--ami` said.
    pub source: String,
    /// The image's name.
    pub name: Option<String>,
}

/// One registered instance as the load balancer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetState {
    /// `InService` / `OutOfService` (classic) or `healthy` / `unhealthy` / `initial` / `draining` /
    /// `unused` (ALB).
    pub state: String,
    /// The load balancer's reason, if it gave one.
    pub reason: Option<String>,
}

impl TargetState {
    /// Takes traffic.
    pub fn in_service(&self) -> bool {
        self.state == "InService" || self.state == "healthy"
    }
}

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
    /// Where the instance is in its life: the group's lifecycle state, or EC2's state for a fleet's.
    pub lifecycle: Lifecycle,
    /// The group's health check verdict.
    pub health: Health,
    /// How the load balancer sees it (filled in by callers that asked it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<TargetState>,
}

impl GroupInstance {
    /// InService and Healthy in the group.
    pub fn healthy_in_group(&self) -> bool {
        self.lifecycle == Lifecycle::Group(LifecycleState::InService)
            && self.health == Health::Healthy
    }
}

/// An instance's lifecycle as the SDK reports it; shown and serialized as AWS spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// An Auto Scaling group's member (`Pending`, `InService`, `Terminating`, ...).
    Group(LifecycleState),
    /// A spot fleet's instance, which has only EC2's state (`pending`, `running`, ...).
    Instance(InstanceStateName),
    /// AWS did not say.
    Unknown,
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lifecycle::Group(s) => s.as_str(),
            Lifecycle::Instance(s) => s.as_str(),
            Lifecycle::Unknown => "",
        })
    }
}

impl Serialize for Lifecycle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Auto Scaling's health verdict on an instance (the SDK gives it as a string: `Healthy`, `Unhealthy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// `Healthy`.
    Healthy,
    /// `Unhealthy`.
    Unhealthy,
    /// A spot fleet's instance: no group judges it; the load balancer's view is what counts.
    NotJudged,
    /// Anything else AWS may answer, kept as given.
    Other(String),
}

impl Health {
    fn from_sdk(s: Option<&str>) -> Self {
        match s {
            Some("Healthy") => Health::Healthy,
            Some("Unhealthy") => Health::Unhealthy,
            other => Health::Other(other.unwrap_or_default().to_string()),
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Healthy => "Healthy",
            Health::Unhealthy => "Unhealthy",
            // What reports and JSON said before this was typed.
            Health::NotJudged => "spot",
            Health::Other(s) => s,
        })
    }
}

impl Serialize for Health {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
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
    /// A kept previous release: `bakery:retired-at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    /// A kept previous release: `bakery:keep-until` (none: kept until newer releases push it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_until: Option<String>,
    /// A kept previous release: `bakery:release-run`, the run that retired it or is bringing it back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_run: Option<String>,
}

impl Group {
    pub(crate) fn from_sdk(g: &AutoScalingGroup) -> Self {
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
                    .map(|s| Lifecycle::Group(s.clone()))
                    .unwrap_or(Lifecycle::Unknown),
                health: Health::from_sdk(i.health_status()),
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
            retired_at: tag(RETIRED_AT_TAG),
            keep_until: tag(KEEP_UNTIL_TAG),
            release_run: tag(RELEASE_RUN_TAG),
        }
    }

    /// The instance ids.
    pub fn instance_ids(&self) -> Vec<String> {
        self.instances.iter().map(|i| i.id.clone()).collect()
    }

    /// True for a group whose rollout has not finished (or died).
    pub fn in_progress(&self) -> bool {
        self.state.as_deref() == Some(STATE_IN_PROGRESS)
    }

    /// True for a previous release kept for `rollout undo` (`retired`).
    pub fn kept(&self) -> bool {
        self.state.as_deref() == Some(STATE_RETIRED)
    }

    /// True for a kept group an undo is bringing back (or whose undo died).
    pub fn restoring(&self) -> bool {
        self.state.as_deref() == Some(STATE_RESTORING)
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
