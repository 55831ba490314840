//! Spot fleet, as in seed 002's deploy script, done right:
//!
//! 1. create a launch template (AMI, key, security groups, user data, instance profile, tags) and request a
//!    `maintain` spot fleet from it: one override per instance type × subnet, the ALB's target group in
//!    `TargetGroupsConfig` (the fleet registers each instance it launches), tagged as bakery's and
//!    `in-progress`, ClientToken = run id + stamp (a retried request never makes a second fleet);
//! 2. wait until the fleet is fulfilled (activity status `fulfilled`, target capacity of instances), then
//!    until every instance is `healthy` in the target group (and, if asked, has stayed so);
//! 3. check once more, then tag the new fleet `live` — the point of no return;
//! 4. for each old fleet of this app/env (found by tag, never by target group): deregister its instances
//!    from the target group and wait for draining, cancel it with `TerminateInstances`, wait until its
//!    instances are gone, delete its launch template (if rollout made it).
//!
//! If step 1–3 fails (fleet error, timeout, interrupt), the new fleet is cancelled with its instances and
//! the launch template deleted; the old fleets are never touched before the new one is healthy.
//! DescribeSpotFleetRequests has no filters: fleets are listed and picked by their tags here.

use super::{Preflight, Strategy};
use crate::ami::ResolvedAmi;
use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt, RolloutError};
use crate::launch::{self, CreatedTemplate, LaunchSpec, Placement};
use crate::lb::{LoadBalancer, TargetState};
use crate::live::GroupInstance;
use crate::manifest::StrategyKind;
use crate::names::{AMI_TAG, APP_TAG, ENV_TAG, STATE_IN_PROGRESS, STATE_LIVE, STATE_TAG};
use crate::report::{DeployReport, GroupSummary, RollbackReport, Status};
use aws_sdk_ec2::types::{
    AllocationStrategy, EventType, FleetLaunchTemplateSpecification, FleetType,
    InstanceInterruptionBehavior, InstanceType, LaunchTemplateConfig, LaunchTemplateOverrides,
    LoadBalancersConfig, ResourceType, SpotFleetRequestConfigData, Tag, TagSpecification,
    TargetGroupsConfig,
};
use bakery_core::poll::{Poll, PollError, Poller, WaitError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A new spot fleet beside the old ones; the old ones are cancelled once the new one is healthy.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpotFleet;

/// One spot fleet request of this environment (tagged `bakery:app`/`bakery:env` by rollout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveFleet {
    /// `sfr-...`.
    pub id: String,
    /// `submitted`, `active`, `modifying` (only open fleets are listed).
    pub state: String,
    /// `fulfilled`, `pending_fulfillment`, `error`, ...
    pub activity: Option<String>,
    /// `bakery:rollout-state`: `live`, `in-progress`, or none.
    pub rollout_state: Option<String>,
    /// `bakery:run-id`.
    pub run_id: Option<String>,
    /// `bakery:ami`.
    pub ami: Option<String>,
    /// The launch template its first launch template config names.
    pub launch_template_id: Option<String>,
    /// TargetCapacity.
    pub target_capacity: i32,
    /// Its running instances (DescribeSpotFleetInstances).
    pub instances: Vec<String>,
    /// The target groups it registers instances in.
    pub target_groups: Vec<String>,
}

impl LiveFleet {
    /// `sfr-1 (active/fulfilled, 2 instance(s), ami-1)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}/{}, {} of {} instance(s), {}{})",
            self.id,
            self.state,
            self.activity.as_deref().unwrap_or("-"),
            self.instances.len(),
            self.target_capacity,
            self.ami.as_deref().unwrap_or("AMI unknown"),
            match self.rollout_state.as_deref() {
                Some(s) if s != STATE_LIVE => format!(", {s}"),
                _ => String::new(),
            }
        )
    }

    fn summary(&self, lt_name: Option<String>, instances: Vec<GroupInstance>) -> GroupSummary {
        GroupSummary {
            name: self.id.clone(),
            ami: self.ami.clone(),
            launch_template: lt_name,
            min: self.target_capacity,
            max: self.target_capacity,
            desired: self.target_capacity,
            instances,
        }
    }
}

/// What this run created, for rollback.
#[derive(Debug, Default)]
struct Created {
    template: Option<CreatedTemplate>,
    fleet: Option<String>,
}

fn is_open(state: &str) -> bool {
    matches!(state, "submitted" | "active" | "modifying")
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn ec2_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The open spot fleets of this app/env, oldest first.
pub async fn fleets(cx: &Ctx) -> Result<Vec<LiveFleet>, AwsError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = cx
            .clients
            .ec2
            .describe_spot_fleet_requests()
            .set_next_token(token.take())
            .send()
            .await
            .aws("DescribeSpotFleetRequests")?;
        for f in page.spot_fleet_request_configs() {
            let tags = f.tags();
            let ours = tag(tags, bakery_core::tags::MANAGED) == Some("true")
                && tag(tags, APP_TAG) == Some(cx.cfg.names.app.as_str())
                && tag(tags, ENV_TAG) == Some(cx.cfg.names.env.as_str());
            let state = f
                .spot_fleet_request_state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            let Some(id) = f.spot_fleet_request_id() else {
                continue;
            };
            if !ours || !is_open(&state) {
                continue;
            }
            let cfg = f.spot_fleet_request_config();
            out.push((
                f.create_time().map(|t| t.secs()).unwrap_or(0),
                LiveFleet {
                    id: id.to_string(),
                    state,
                    activity: f.activity_status().map(|a| a.as_str().to_string()),
                    rollout_state: tag(tags, STATE_TAG).map(str::to_string),
                    run_id: tag(tags, bakery_core::tags::RUN_ID).map(str::to_string),
                    ami: tag(tags, AMI_TAG).map(str::to_string),
                    launch_template_id: cfg
                        .and_then(|c| c.launch_template_configs().first())
                        .and_then(|l| l.launch_template_specification())
                        .and_then(|s| s.launch_template_id())
                        .map(str::to_string),
                    target_capacity: cfg.and_then(|c| c.target_capacity()).unwrap_or(0),
                    instances: Vec::new(),
                    target_groups: cfg
                        .and_then(|c| c.load_balancers_config())
                        .and_then(|l| l.target_groups_config())
                        .map(|t| {
                            t.target_groups()
                                .iter()
                                .filter_map(|g| g.arn().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                },
            ));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
    let mut fleets: Vec<LiveFleet> = out.into_iter().map(|(_, f)| f).collect();
    for f in &mut fleets {
        f.instances = fleet_instances(cx, &f.id).await?;
    }
    Ok(fleets)
}

/// The instances a fleet has running (DescribeSpotFleetInstances lists active instances only).
async fn fleet_instances(cx: &Ctx, id: &str) -> Result<Vec<String>, AwsError> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = cx
            .clients
            .ec2
            .describe_spot_fleet_instances()
            .spot_fleet_request_id(id)
            .set_next_token(token.take())
            .send()
            .await
            .aws("DescribeSpotFleetInstances")?;
        ids.extend(
            page.active_instances()
                .iter()
                .filter_map(|i| i.instance_id().map(str::to_string)),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    ids.sort();
    Ok(ids)
}

/// Read-only checks `preflight` runs for this strategy: the environment's open fleets, and none of them
/// left `in-progress` by another (or a dead) rollout.
pub(super) async fn preflight(cx: &Ctx) -> Result<(Vec<LiveFleet>, Vec<String>), RolloutError> {
    let fleets = fleets(cx).await?;
    let problems = fleets
        .iter()
        .filter(|f| f.rollout_state.as_deref() == Some(STATE_IN_PROGRESS))
        .map(|f| {
            format!(
                "another rollout of {} is in progress: spot fleet {} (run {}) is not live yet; if that run is dead, cancel it \
                 (`aws ec2 cancel-spot-fleet-requests --terminate-instances --spot-fleet-request-ids {}`) and retry",
                cx.cfg.names.env,
                f.id,
                f.run_id.as_deref().unwrap_or("unknown"),
                f.id
            )
        })
        .collect();
    Ok((fleets, problems))
}

/// The fleet role's ARN: as given, or built from a role name and the account that owns the environment's
/// security group (no IAM or STS call needed).
async fn fleet_role_arn(cx: &Ctx, spec: &LaunchSpec) -> Result<String, RolloutError> {
    let role = &cx.cfg.spot_fleet.iam_fleet_role;
    if role.starts_with("arn:") {
        return Ok(role.clone());
    }
    let out = cx
        .clients
        .ec2
        .describe_security_groups()
        .set_group_ids(Some(
            spec.security_group_ids.iter().take(1).cloned().collect(),
        ))
        .send()
        .await
        .aws("DescribeSecurityGroups")?;
    let account = out
        .security_groups()
        .first()
        .and_then(|g| g.owner_id())
        .ok_or_else(|| {
            RolloutError::Preflight(vec![format!(
                "spot_fleet.iam_fleet_role: cannot work out the account of role {role} (the security group has no owner); give the role's ARN"
            )])
        })?;
    let region = &cx.clients.region;
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    Ok(format!("arn:{partition}:iam::{account}:role/{role}"))
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

/// The pollers' shape: as `wait.rs`'s (first look at once, then every 2 s, 10 s after two minutes).
fn poller(lower_bound: Duration, timeout: Duration) -> Poller {
    Poller {
        lower_bound,
        interval: Duration::from_secs(2),
        soft_limit: Duration::from_secs(120),
        max_interval: Duration::from_secs(10),
        timeout,
    }
}

#[async_trait::async_trait]
impl Strategy for SpotFleet {
    fn kind(&self) -> StrategyKind {
        StrategyKind::SpotFleet
    }

    fn plan(&self, cx: &Ctx, pf: &Preflight) -> Vec<String> {
        let cfg = &cx.cfg;
        let sf = &cfg.spot_fleet;
        let names = &cfg.names;
        let tg = names.target_group();
        let ami = pf.ami.as_ref().map(|a| a.id.as_str()).unwrap_or("<--ami>");
        let mut steps: Vec<String> = pf
            .fleets
            .iter()
            .map(|f| format!("live fleet {}", f.describe()))
            .collect();
        if pf.fleets.is_empty() {
            steps.push("no live spot fleet".into());
        }
        let placement = pf
            .launch
            .as_ref()
            .map(|l| l.placement.clone())
            .unwrap_or_else(|| Placement::Subnets(vec!["<the load balancer's subnets>".into()]));
        let n_places = match &placement {
            Placement::Subnets(s) => s.len(),
            Placement::Zones(z) => z.len(),
        };
        steps.push(format!(
            "create launch template {}: {ami}, key {}, security groups {}{}{}",
            names.launch_template("<timestamp>"),
            pf.launch
                .as_ref()
                .and_then(|l| l.key_name.clone())
                .unwrap_or_else(|| "none".into()),
            pf.launch
                .as_ref()
                .map(|l| l.security_group_ids.join(", "))
                .unwrap_or_else(|| names.instance_security_group()),
            if cfg.instances.user_data_file.is_some() {
                ", user data"
            } else {
                ""
            },
            if cfg.instances.require_imdsv2 {
                ", IMDSv2 required"
            } else {
                ""
            },
        ));
        steps.push(format!(
            "request a maintain spot fleet of {} instance(s): {} in {} ({} override(s)), {}, {}, fleet role {}, registering in {tg}, tagged in-progress",
            sf.target_capacity,
            sf.instance_types.join(", "),
            placement.describe(),
            sf.instance_types.len() * n_places,
            sf.allocation_strategy,
            sf.max_price
                .as_deref()
                .map(|p| format!("max price {p} USD/h"))
                .unwrap_or_else(|| "max price: the on-demand price".into()),
            sf.iam_fleet_role,
        ));
        steps.push(format!(
            "wait up to {} s for the fleet to be fulfilled, then up to {} s for its {} instance(s) to be healthy in {tg}{}; otherwise cancel the new fleet with its instances, delete the launch template and stop",
            sf.fulfil_timeout.as_secs(),
            sf.health_timeout.as_secs(),
            sf.target_capacity,
            if cfg.timeouts.min_healthy.is_zero() {
                String::new()
            } else {
                format!(", held for {} s", cfg.timeouts.min_healthy.as_secs())
            }
        ));
        for f in pf
            .fleets
            .iter()
            .filter(|f| f.rollout_state.as_deref() != Some(STATE_IN_PROGRESS))
        {
            steps.push(format!(
                "retire {}: deregister its {} instance(s) from {tg} and wait for draining (up to {} s), cancel it with its instances, delete its launch template if rollout made it",
                f.id,
                f.instances.len(),
                cfg.timeouts.drain.as_secs()
            ));
        }
        if pf.fleets.is_empty() {
            steps.push("no live fleet to retire (first spot-fleet rollout)".into());
        }
        for g in pf.retirable() {
            steps.push(format!(
                "leave Auto Scaling group {} in place (spot-fleet retires only spot fleets)",
                g.name
            ));
        }
        steps
    }

    async fn deploy(&self, cx: &Ctx, pf: Preflight) -> Result<DeployReport, RolloutError> {
        let (Some(lb), Some(spec), Some(ami)) = (pf.lb.clone(), pf.launch.clone(), pf.ami.clone())
        else {
            return Err(RolloutError::Preflight(pf.problems));
        };
        if lb.target_group_arn.is_none() {
            return Err(RolloutError::Preflight(vec![
                "spot-fleet needs the ALB's target group".into(),
            ]));
        }
        let olds = pf.fleets.clone();
        let stamp = crate::names::stamp(SystemTime::now(), &cx.run_id);
        let mut report = DeployReport::started(
            cx,
            &self.kind().to_string(),
            lb.label(),
            &ami,
            olds.iter().map(|f| f.summary(None, Vec::new())).collect(),
            pf.took,
        );
        cx.say(&format!(
            "Rolling out {}{} to {}/{} as a spot fleet ({} live fleet(s), target capacity {})",
            ami.id,
            ami.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            cx.cfg.names.app,
            cx.cfg.names.env,
            olds.len(),
            cx.cfg.spot_fleet.target_capacity
        ));
        for g in pf.retirable() {
            report.attention.push(format!(
                "Auto Scaling group {} is still attached to {} (spot-fleet does not retire groups)",
                g.name,
                lb.label()
            ));
        }

        // Steps 1–3: anything that fails here is rolled back.
        let mut created = Created::default();
        let launched = self
            .launch_and_wait(cx, &lb, &spec, &ami, &stamp, &mut created, &mut report)
            .await;
        let new_ids = match launched {
            Ok(ids) => ids,
            Err(e) if created.template.is_none() && created.fleet.is_none() => return Err(e),
            Err(e) => {
                report.error = Some(e.to_string());
                let rb_started = Instant::now();
                let rb = rollback(cx, &lb, &created, &olds).await;
                report.durations.rollback_s = rb_started.elapsed().as_secs_f64();
                report.attention.extend(rb.failures.iter().cloned());
                report.attention.extend(rb.warnings.iter().cloned());
                report.rollback = Some(rb);
                report.status = Status::RolledBack;
                return Err(RolloutError::RolledBack(Box::new(report)));
            }
        };
        let new_fleet = created.fleet.clone().unwrap_or_default();

        // Step 4: retire the old fleets, one at a time, each only while the new one is serving.
        let retire_started = Instant::now();
        for (n, old) in olds.iter().enumerate() {
            if cx.cancel.is_cancelled() {
                report.error = Some("interrupted while retiring the old fleets".into());
                break;
            }
            if n > 0
                && let Err(e) = lb.require_in_service(cx, &new_ids, "the new fleet's").await
            {
                report.error = Some(format!("stopped retiring old fleets: {e}"));
                break;
            }
            if let Err(e) = retire(cx, &lb, old, &mut report).await {
                report.error = Some(format!("retiring {}: {e}", old.id));
                break;
            }
        }
        report.durations.retire_s = retire_started.elapsed().as_secs_f64();
        if report.error.is_some() {
            for old in olds.iter().filter(|o| !report.retired.contains(&o.id)) {
                report.attention.push(format!(
                    "spot fleet {} was not retired (it still runs; the new fleet {new_fleet} is live): re-run the rollout or cancel it by hand (aws ec2 cancel-spot-fleet-requests --terminate-instances --spot-fleet-request-ids {})",
                    old.id, old.id
                ));
            }
            report.status = Status::Incomplete;
            return Err(RolloutError::Incomplete(Box::new(report)));
        }
        cx.say(&format!(
            "{new_fleet} is live with {} ({} instance(s) healthy in {})",
            ami.id,
            new_ids.len(),
            lb.label()
        ));
        Ok(report)
    }
}

impl SpotFleet {
    /// Steps 1–3; returns the new fleet's instance ids.
    #[allow(clippy::too_many_arguments)]
    async fn launch_and_wait(
        &self,
        cx: &Ctx,
        lb: &LoadBalancer,
        spec: &LaunchSpec,
        ami: &ResolvedAmi,
        stamp: &str,
        created: &mut Created,
        report: &mut DeployReport,
    ) -> Result<Vec<String>, RolloutError> {
        let sf = &cx.cfg.spot_fleet;
        let t = Instant::now();
        if cx.cancel.is_cancelled() {
            return Err(RolloutError::Cancelled);
        }
        let role = fleet_role_arn(cx, spec).await?;
        let lt_name = cx.cfg.names.launch_template(stamp);
        cx.say(&format!("Creating launch template {lt_name}"));
        let template = launch::create_launch_template(cx, &lt_name, ami, spec).await?;
        cx.detail(&format!("{} ({})", template.name, template.id));
        created.template = Some(template.clone());
        if cx.cancel.is_cancelled() {
            return Err(RolloutError::Cancelled);
        }

        let mut tags = cx.tags_for("spot-fleet-request");
        tags.push((STATE_TAG.into(), STATE_IN_PROGRESS.into()));
        tags.push((AMI_TAG.into(), ami.id.clone()));
        let tg = lb.target_group_arn.clone().unwrap_or_default();
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
                    .set_overrides(Some(overrides(&sf.instance_types, &spec.placement)))
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
        let requested_at = SystemTime::now();
        let out = cx
            .clients
            .ec2
            .request_spot_fleet()
            .spot_fleet_request_config(config)
            .send()
            .await
            .aws("RequestSpotFleet")?;
        let id = out.spot_fleet_request_id().unwrap_or_default().to_string();
        if id.is_empty() {
            return Err(RolloutError::Unhealthy(
                "RequestSpotFleet returned no fleet id".into(),
            ));
        }
        cx.detail(&format!("{id} (role {role})"));
        created.fleet = Some(id.clone());
        report.durations.launch_s = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let fulfilled = wait_fulfilled(cx, &id, sf.target_capacity as usize, &cx.cancel).await;
        let waited = match fulfilled {
            Ok(_) => {
                wait_healthy(
                    cx,
                    lb,
                    &id,
                    sf.target_capacity as usize,
                    cx.cfg.timeouts.min_healthy,
                    sf.health_timeout,
                    &cx.cancel,
                )
                .await
            }
            Err(e) => Err(e),
        };
        report.durations.healthy_s = t.elapsed().as_secs_f64();
        let ids = match waited {
            Ok(ids) => ids,
            Err(e) => {
                // Say what the new fleet looked like, for the report, before it is cancelled.
                let mut why = e.to_string();
                let ids = fleet_instances(cx, &id).await.unwrap_or_default();
                if let Ok(h) = lb.health(cx).await {
                    let bad: Vec<String> = ids
                        .iter()
                        .filter(|i| !h.get(*i).is_some_and(TargetState::in_service))
                        .map(|i| match h.get(i) {
                            Some(s) => format!(
                                "{i} {}{}",
                                s.state,
                                s.reason
                                    .as_deref()
                                    .map(|r| format!(" ({r})"))
                                    .unwrap_or_default()
                            ),
                            None => format!("{i} not registered"),
                        })
                        .collect();
                    if !bad.is_empty() {
                        why.push_str(&format!(
                            "; not healthy in the target group: {}",
                            bad.join(", ")
                        ));
                    }
                }
                why.push_str(&fleet_errors(cx, &id, requested_at).await);
                report.new_group = Some(GroupSummary {
                    name: id.clone(),
                    ami: Some(ami.id.clone()),
                    launch_template: Some(template.name.clone()),
                    min: sf.target_capacity as i32,
                    max: sf.target_capacity as i32,
                    desired: sf.target_capacity as i32,
                    instances: instances(cx, lb, &ids).await,
                });
                return Err(match e {
                    WaitError::Cancelled(_) => RolloutError::Interrupted(why),
                    _ => RolloutError::Unhealthy(why),
                });
            }
        };

        // The point of no return: one more look, then the new fleet is the live one.
        lb.require_in_service(cx, &ids, "the new fleet's").await?;
        cx.clients
            .ec2
            .create_tags()
            .resources(&id)
            .tags(Tag::builder().key(STATE_TAG).value(STATE_LIVE).build())
            .send()
            .await
            .aws("CreateTags")?;
        cx.detail(&format!("{id} is healthy and marked live"));
        report.new_group = Some(GroupSummary {
            name: id.clone(),
            ami: Some(ami.id.clone()),
            launch_template: Some(template.name.clone()),
            min: sf.target_capacity as i32,
            max: sf.target_capacity as i32,
            desired: sf.target_capacity as i32,
            instances: instances(cx, lb, &ids).await,
        });
        Ok(ids)
    }
}

/// The fleet's instances as the report shows them: EC2 state and zone, and the target group's view.
async fn instances(cx: &Ctx, lb: &LoadBalancer, ids: &[String]) -> Vec<GroupInstance> {
    if ids.is_empty() {
        return Vec::new();
    }
    let health = lb.health(cx).await.unwrap_or_default();
    let described: BTreeMap<String, (String, String)> = match cx
        .clients
        .ec2
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .aws("DescribeInstances")
    {
        Ok(out) => out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| {
                Some((
                    i.instance_id()?.to_string(),
                    (
                        i.placement()
                            .and_then(|p| p.availability_zone())
                            .unwrap_or_default()
                            .to_string(),
                        i.state()
                            .and_then(|s| s.name())
                            .map(|n| n.as_str().to_string())
                            .unwrap_or_default(),
                    ),
                ))
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    ids.iter()
        .map(|id| {
            let (az, state) = described.get(id).cloned().unwrap_or_default();
            GroupInstance {
                id: id.clone(),
                availability_zone: az,
                lifecycle: state,
                health: "spot".into(),
                load_balancer: health.get(id).cloned(),
            }
        })
        .collect()
}

/// Waits until fleet `id` is fulfilled with `target` running instances; fails at once on activity status
/// `error` or a fleet that is no longer open.
async fn wait_fulfilled(
    cx: &Ctx,
    id: &str,
    target: usize,
    cancel: &CancellationToken,
) -> Result<Vec<String>, WaitError> {
    let what = format!("spot fleet {id} to be fulfilled ({target} instance(s))");
    let progress = cx.ui.progress(&cx.target(), &format!("Waiting for {what}"));
    let r = poller(Duration::from_secs(2), cx.cfg.spot_fleet.fulfil_timeout)
        .wait(
            &what,
            cancel,
            |s, e| progress.state(s, e),
            || async {
                let out = cx
                    .clients
                    .ec2
                    .describe_spot_fleet_requests()
                    .spot_fleet_request_ids(id)
                    .send()
                    .await
                    .aws("DescribeSpotFleetRequests")
                    .map_err(PollError::from)?;
                let Some(f) = out.spot_fleet_request_configs().first() else {
                    return Err(PollError::NotFound);
                };
                let state = f
                    .spot_fleet_request_state()
                    .map(|s| s.as_str())
                    .unwrap_or("unknown");
                let activity = f.activity_status().map(|a| a.as_str()).unwrap_or("-");
                if !is_open(state) {
                    return Ok(Poll::Failed(format!("fleet {state}")));
                }
                if activity == "error" {
                    return Ok(Poll::Failed("activity status error".into()));
                }
                let ids = fleet_instances(cx, id).await.map_err(PollError::from)?;
                if activity == "fulfilled" && ids.len() >= target {
                    Ok(Poll::Ready(ids))
                } else {
                    Ok(Poll::Pending(format!(
                        "{state}/{activity}, {}/{target} instance(s)",
                        ids.len()
                    )))
                }
            },
        )
        .await;
    match &r {
        Ok(ids) => progress.finish(&format!("{id} is fulfilled: {}", ids.join(", "))),
        Err(e) => progress.finish(&e.to_string()),
    }
    r
}

/// Waits until `target` instances of fleet `id` are healthy in the target group, uninterrupted for
/// `hold`. The fleet's instances are read on every look: a maintain fleet replaces interrupted ones.
async fn wait_healthy(
    cx: &Ctx,
    lb: &LoadBalancer,
    id: &str,
    target: usize,
    hold: Duration,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Vec<String>, WaitError> {
    let what = format!(
        "{target} instance(s) of {id} to be healthy in {}",
        cx.cfg.names.target_group()
    );
    let progress = cx.ui.progress(&cx.target(), &format!("Waiting for {what}"));
    let since: Mutex<Option<Instant>> = Mutex::new(None);
    let r = poller(Duration::from_secs(1), timeout)
        .wait(
            &what,
            cancel,
            |s, e| progress.state(s, e),
            || async {
                let ids = fleet_instances(cx, id).await.map_err(PollError::from)?;
                let health = lb.health(cx).await.map_err(PollError::from)?;
                let healthy = ids
                    .iter()
                    .filter(|i| health.get(*i).is_some_and(TargetState::in_service))
                    .count();
                let all = ids.len() >= target && healthy == ids.len();
                let mut since = since.lock().unwrap_or_else(|e| e.into_inner());
                if !all {
                    *since = None;
                    let states: Vec<String> = ids
                        .iter()
                        .filter(|i| !health.get(*i).is_some_and(TargetState::in_service))
                        .map(|i| {
                            format!(
                                "{i} {}",
                                health
                                    .get(i)
                                    .map(|s| s.state.as_str())
                                    .unwrap_or("not registered")
                            )
                        })
                        .collect();
                    return Ok(Poll::Pending(format!(
                        "{healthy}/{target} healthy{}",
                        if states.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", states.join(", "))
                        }
                    )));
                }
                let held = since.get_or_insert_with(Instant::now).elapsed();
                if held >= hold {
                    Ok(Poll::Ready(ids))
                } else {
                    Ok(Poll::Pending(format!(
                        "{healthy}/{target} healthy for {:.0} of {} s",
                        held.as_secs_f64(),
                        hold.as_secs()
                    )))
                }
            },
        )
        .await;
    match &r {
        Ok(ids) => progress.finish(&format!(
            "{} instance(s) of {id} healthy in {}",
            ids.len(),
            lb.label()
        )),
        Err(e) => progress.finish(&e.to_string()),
    }
    r
}

/// The fleet's error events since it was requested (`; fleet errors: ...`), best effort and in one
/// attempt (it only adds to an error already being reported): an endpoint without
/// DescribeSpotFleetRequestHistory (moto 5.2.5) yields nothing.
async fn fleet_errors(cx: &Ctx, id: &str, since: SystemTime) -> String {
    let Ok(out) = cx
        .clients
        .ec2
        .describe_spot_fleet_request_history()
        .spot_fleet_request_id(id)
        .event_type(EventType::Error)
        .start_time(aws_smithy_types::DateTime::from(since))
        .customize()
        .config_override(
            aws_sdk_ec2::config::Builder::default()
                .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .aws("DescribeSpotFleetRequestHistory")
    else {
        return String::new();
    };
    let errors: Vec<String> = out
        .history_records()
        .iter()
        .filter_map(|r| r.event_information())
        .take(3)
        .map(|e| {
            format!(
                "{}{}",
                e.event_sub_type().unwrap_or("error"),
                e.event_description()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    if errors.is_empty() {
        String::new()
    } else {
        format!("; fleet errors: {}", errors.join(" | "))
    }
}

/// Cancels fleet `id` and terminates its instances.
async fn cancel_fleet(cx: &Ctx, id: &str) -> Result<(), RolloutError> {
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
async fn wait_terminated(
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
        match launch::delete_template_if_ours(cx, id).await? {
            Some(n) => {
                cx.detail(&format!("Deleted launch template {n}"));
                report.deleted_launch_templates.push(n);
            }
            None => cx.detail(&format!(
                "Launch template {id} kept: not created by rollout for {}/{}",
                cx.cfg.names.app, cx.cfg.names.env
            )),
        }
    }
    Ok(())
}

/// Cancels what this run created and checks the old fleets are as they were. Runs under the cleanup
/// token: a first interrupt does not stop it, a second one does.
async fn rollback(
    cx: &Ctx,
    lb: &LoadBalancer,
    created: &Created,
    olds: &[LiveFleet],
) -> RollbackReport {
    let cancel = &cx.cancel_cleanup;
    let mut rb = RollbackReport::default();
    cx.warn("Rolling back: cancelling the new spot fleet and deleting its launch template");
    let mut fleet_gone = true;
    // A request whose answer was lost may still have made a fleet: it carries this run's id.
    let fleet = match &created.fleet {
        Some(id) => Some(id.clone()),
        None => fleets(cx).await.ok().and_then(|v| {
            v.into_iter()
                .find(|f| f.run_id.as_deref() == Some(cx.run_id.as_str()))
                .map(|f| f.id)
        }),
    };
    if let Some(id) = &fleet {
        let ids = fleet_instances(cx, id).await.unwrap_or_default();
        match cancel_fleet(cx, id).await {
            Ok(()) => match wait_terminated(cx, &ids, cx.cfg.timeouts.rollback, cancel).await {
                Ok(()) => rb.actions.push(format!(
                    "cancelled spot fleet {id} and terminated its {} instance(s)",
                    ids.len()
                )),
                Err(e) => {
                    fleet_gone = false;
                    rb.failures.push(format!("spot fleet {id}: {e}"));
                }
            },
            Err(e) => {
                fleet_gone = false;
                rb.failures.push(format!(
                    "spot fleet {id} could not be cancelled: {e} (aws ec2 cancel-spot-fleet-requests --terminate-instances --spot-fleet-request-ids {id})"
                ));
            }
        }
    }
    if let Some(lt) = &created.template {
        launch::roll_back_template(cx, lt, fleet_gone, "its fleet still has instances", &mut rb)
            .await;
    }
    // The old fleets: rollout made no call on them; show that they are as they were, and serving.
    let now = fleets(cx).await;
    let health = lb.health(cx).await.unwrap_or_default();
    rb.old_groups_unchanged = true;
    for old in olds {
        let found = match &now {
            Ok(v) => v.iter().find(|f| f.id == old.id),
            Err(e) => {
                rb.old_groups_unchanged = false;
                rb.old_groups
                    .push(format!("{}: could not be described: {e}", old.id));
                continue;
            }
        };
        let Some(f) = found else {
            rb.old_groups_unchanged = false;
            rb.old_groups
                .push(format!("{}: GONE (cancelled outside this rollout)", old.id));
            continue;
        };
        let serving = f
            .instances
            .iter()
            .filter(|i| health.get(*i).is_some_and(TargetState::in_service))
            .count();
        let same = f.instances == old.instances && f.state == old.state;
        rb.old_groups_unchanged &= same;
        rb.old_groups.push(format!(
            "{}: {}, {serving}/{} instance(s) in service on {}",
            f.id,
            if same {
                "unchanged".to_string()
            } else {
                format!(
                    "changed since the rollout started (not by rollout): {} -> {}",
                    old.describe(),
                    f.describe()
                )
            },
            f.instances.len(),
            lb.label()
        ));
    }
    rb
}
