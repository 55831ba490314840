//! Spot fleets as spot-fleet sees them: the environment's open fleets as AWS lists them ([`LiveFleet`],
//! [`fleets`], [`fleet_instances`]), preflight's checks of them ([`preflight`]), and what the new fleet's
//! steps hand each other ([`FleetLaunch`]).

use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt, RolloutError};
use crate::live::GroupInstance;
use crate::names::{AMI_TAG, STATE_IN_PROGRESS, STATE_LIVE, STATE_TAG};
use crate::report::GroupSummary;
use aws_sdk_ec2::types::{ActivityStatus, BatchState, Tag};
use serde::Serialize;
use std::time::SystemTime;

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

    /// The fleet as the report shows it: `lt_name` its launch template, `instances` its instances.
    pub(super) fn summary(
        &self,
        lt_name: Option<String>,
        instances: Vec<GroupInstance>,
    ) -> GroupSummary {
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

/// Whether a fleet in `state` is open (submitted, active or modifying).
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
            let ours = cx.cfg.names.owns(tags);
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
pub(in crate::strategy) async fn preflight(
    cx: &Ctx,
) -> Result<(Vec<LiveFleet>, Vec<String>), RolloutError> {
    let fleets = fleets(cx).await?;
    let problems = fleets
        .iter()
        .filter(|f| f.rollout_state.as_deref() == Some(STATE_IN_PROGRESS))
        .map(|f| {
            format!(
                "another rollout of {} is in progress: spot fleet {} (run {run}) is not live yet; if that run is dead, \
                 undo it with `rollout abandon --run-id {run}` (or cancel the fleet: \
                 `aws ec2 cancel-spot-fleet-requests --terminate-instances --spot-fleet-request-ids {}`) and retry",
                cx.cfg.names.env,
                f.id,
                f.id,
                run = f.run_id.as_deref().unwrap_or("unknown"),
            )
        })
        .collect();
    Ok((fleets, problems))
}

/// What spot-fleet's own steps hand each other: the fleet role, and when the fleet was requested (its
/// error events are read from then on).
#[derive(Debug, Default)]
pub(in crate::strategy) struct FleetLaunch {
    /// The fleet role's ARN.
    pub(super) role: String,
    /// When the fleet was requested.
    pub(super) requested_at: Option<SystemTime>,
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
