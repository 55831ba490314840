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

mod fleet_role;
mod mark_live;
mod request;
mod retire;
mod wait_healthy;

use super::replace::{CreateLaunchTemplate, InServiceGuard, OldUntouched, Replace, RetireOld};
use super::run::{Common, Steps};
use super::{Preflight, Strategy};
use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt, RolloutError};
use crate::launch::Placement;
use crate::live::GroupInstance;
use crate::manifest::StrategyKind;
use crate::names::{AMI_TAG, APP_TAG, ENV_TAG, STATE_IN_PROGRESS, STATE_LIVE, STATE_TAG};
use crate::report::{DeployReport, GroupSummary};
use aws_sdk_ec2::types::{ActivityStatus, BatchState, Tag};
use bakery_core::poll::Poller;
use fleet_role::ResolveFleetRole;
use mark_live::MarkFleetLive;
use request::RequestFleet;
use serde::Serialize;
use std::time::{Duration, SystemTime};
use wait_healthy::WaitFleetHealthy;

/// A new spot fleet beside the old ones; the old ones are cancelled once the new one is healthy.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpotFleet;

/// One spot fleet request of this environment (tagged `bakery:app`/`bakery:env` by rollout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveFleet {
    /// `sfr-...`.
    pub id: String,
    /// `submitted`, `active`, `modifying` (only open fleets are listed).
    #[serde(serialize_with = "as_str")]
    pub state: BatchState,
    /// `fulfilled`, `pending_fulfillment`, `error`, ...
    #[serde(serialize_with = "opt_as_str")]
    pub activity: Option<ActivityStatus>,
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
            self.state.as_str(),
            self.activity.as_ref().map_or("-", ActivityStatus::as_str),
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

pub(super) fn is_open(state: &BatchState) -> bool {
    matches!(
        state,
        BatchState::Submitted | BatchState::Active | BatchState::Modifying
    )
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
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
            let (Some(id), Some(state)) = (f.spot_fleet_request_id(), f.spot_fleet_request_state())
            else {
                continue;
            };
            if !ours || !is_open(state) {
                continue;
            }
            let cfg = f.spot_fleet_request_config();
            out.push((
                f.create_time().map(|t| t.secs()).unwrap_or(0),
                LiveFleet {
                    id: id.to_string(),
                    state: state.clone(),
                    activity: f.activity_status().cloned(),
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
pub(super) async fn fleet_instances(cx: &Ctx, id: &str) -> Result<Vec<String>, AwsError> {
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

/// The pollers' shape: as `wait.rs`'s (first look at once, then every 2 s, 10 s after two minutes).
pub(super) fn poller(lower_bound: Duration, timeout: Duration) -> Poller {
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
        steps.push(CreateLaunchTemplate::plan(cx, pf, false));
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
        let common = Common::new(
            report,
            Some("Rolling back: cancelling the new spot fleet and deleting its launch template"),
        );
        let st = Replace::new(common, lb, spec, ami, stamp, olds);
        let steps = Steps::new()
            .then(OldUntouched)
            .then(ResolveFleetRole)
            .then(CreateLaunchTemplate)
            .then(RequestFleet)
            .then(WaitFleetHealthy)
            .then(InServiceGuard)
            .then(MarkFleetLive)
            .then(RetireOld);
        let st = st.run(cx, steps).await?;
        cx.say(&format!(
            "{} is live with {} ({} instance(s) healthy in {})",
            st.new.as_deref().unwrap_or_default(),
            st.ami.id,
            st.new_ids.len(),
            st.lb.label()
        ));
        Ok(st.common.report)
    }
}

/// What spot-fleet's own steps hand each other: the fleet role, and when the fleet was requested (its
/// error events are read from then on).
#[derive(Debug, Default)]
pub(in crate::strategy) struct FleetLaunch {
    role: String,
    requested_at: Option<SystemTime>,
}

/// Serialises an SDK enum as the API spells it.
fn as_str<S: serde::Serializer>(s: &BatchState, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

/// Serialises an optional SDK enum as the API spells it.
fn opt_as_str<S: serde::Serializer>(a: &Option<ActivityStatus>, ser: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(a) => ser.serialize_some(a.as_str()),
        None => ser.serialize_none(),
    }
}
