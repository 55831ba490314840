//! Step: wait until the new fleet is fulfilled (activity status `fulfilled`, target capacity of
//! instances), then until every instance is healthy in the target group (and, if asked, has stayed so);
//! on failure, say what the fleet looked like and why AWS did not fill it.

use super::fleet::{LiveFleet, fleet_instances, is_open};
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::lb::{LoadBalancer, TargetState};
use crate::observed::{GroupInstance, Health, Lifecycle};
use crate::report::GroupSummary;
use crate::strategy::replace::Replace;
use crate::strategy::run::RolloutStep;
use crate::wait::poller;
use aws_sdk_ec2::types::{ActivityStatus, BatchState, EventType};
use bakery_core::poll::{Poll, PollError, WaitError};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Waits for the new fleet to be fulfilled and healthy.
pub(super) struct WaitFleetHealthy;

#[async_trait::async_trait]
impl RolloutStep<Replace<LiveFleet>> for WaitFleetHealthy {
    fn name(&self) -> &'static str {
        "health wait"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<LiveFleet>) -> Result<(), RolloutError> {
        let sf = &cx.cfg.spot_fleet;
        let id = st.new.clone().unwrap_or_default();
        let lb = &st.lb;
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
        st.common.report.durations.healthy_s = t.elapsed().as_secs_f64();
        let e = match waited {
            Ok(ids) => {
                st.new_ids = ids;
                return Ok(());
            }
            Err(e) => e,
        };
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
        let since = st.launch.requested_at.unwrap_or_else(SystemTime::now);
        why.push_str(&fleet_errors(cx, &id, since).await);
        st.common.report.new_group = Some(new_summary(cx, st, &ids).await);
        Err(match e {
            WaitError::Cancelled(_) => RolloutError::Interrupted(why),
            _ => RolloutError::Unhealthy(why),
        })
    }
}

/// The new fleet as the report shows it, with instances `ids`.
pub(super) async fn new_summary(cx: &Ctx, st: &Replace<LiveFleet>, ids: &[String]) -> GroupSummary {
    let capacity = cx.cfg.spot_fleet.target_capacity as i32;
    GroupSummary {
        name: st.new.clone().unwrap_or_default(),
        ami: Some(st.ami.id.clone()),
        launch_template: st.template.as_ref().map(|t| t.name.clone()),
        min: capacity,
        max: capacity,
        desired: capacity,
        instances: instances(cx, &st.lb, ids).await,
    }
}

/// The fleet's instances as the report shows them: EC2 state and zone, and the target group's view.
async fn instances(cx: &Ctx, lb: &LoadBalancer, ids: &[String]) -> Vec<GroupInstance> {
    if ids.is_empty() {
        return Vec::new();
    }
    let health = lb.health(cx).await.unwrap_or_default();
    let described: BTreeMap<String, (String, Lifecycle)> = match cx
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
                            .map(|n| Lifecycle::Instance(n.clone()))
                            .unwrap_or(Lifecycle::Unknown),
                    ),
                ))
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    ids.iter()
        .map(|id| {
            let (az, state) = described
                .get(id)
                .cloned()
                .unwrap_or((String::new(), Lifecycle::Unknown));
            GroupInstance {
                id: id.clone(),
                availability_zone: az,
                lifecycle: state,
                health: Health::NotJudged,
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
                let state = f.spot_fleet_request_state();
                let activity = f.activity_status();
                if !state.is_some_and(is_open) {
                    return Ok(Poll::Failed(format!(
                        "fleet {}",
                        state.map_or("unknown", BatchState::as_str)
                    )));
                }
                if activity == Some(&ActivityStatus::Error) {
                    return Ok(Poll::Failed("activity status error".into()));
                }
                let ids = fleet_instances(cx, id).await.map_err(PollError::from)?;
                if activity == Some(&ActivityStatus::Fulfilled) && ids.len() >= target {
                    Ok(Poll::Ready(ids))
                } else {
                    Ok(Poll::Pending(format!(
                        "{}/{}, {}/{target} instance(s)",
                        state.map_or("unknown", BatchState::as_str),
                        activity.map_or("-", ActivityStatus::as_str),
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
