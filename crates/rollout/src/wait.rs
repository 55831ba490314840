//! The rollout's waits, all through bakery-core's [`Poller`] (not the SDK's stock waiters, which poll at
//! 15 s or more), each with progress output.

use crate::context::Ctx;
use crate::lb::{LoadBalancer, TargetState};
use crate::live::{self, Group, GroupInstance};
use bakery_core::poll::{Poll, PollError, Poller, WaitError};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The pollers' shape: a first look at once, then every 2 s (two requests per look at most), slowing to
/// 10 s after two minutes.
pub(crate) fn poller(lower_bound: Duration, timeout: Duration) -> Poller {
    Poller {
        lower_bound,
        interval: Duration::from_secs(2),
        soft_limit: Duration::from_secs(120),
        max_interval: Duration::from_secs(10),
        timeout,
        attempt_delay: bakery_core::poll::SDK_WAITER_DELAY,
    }
}

/// A group whose desired instances are all InService and Healthy in the group and in service on the
/// load balancer.
#[derive(Debug, Clone)]
pub struct Healthy {
    /// The group as last seen, its instances annotated with the load balancer's view.
    pub group: Group,
}

/// Counts for the progress line and the timeout report.
fn health_state(
    lb: &LoadBalancer,
    desired: usize,
    in_group: &[&GroupInstance],
    on_lb: usize,
    launched: usize,
) -> String {
    format!(
        "{launched} launched, {}/{desired} InService+Healthy in the group, {on_lb}/{desired} in service on the {}",
        in_group.len(),
        lb.health_source()
    )
}

/// Waits until `desired` instances of `group_name` are InService+Healthy in the group and in service on
/// `lb`, and have stayed so for `min_healthy` without interruption.
pub async fn group_healthy(
    cx: &Ctx,
    lb: &LoadBalancer,
    group_name: &str,
    desired: u32,
    min_healthy: Duration,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Healthy, WaitError> {
    let what = format!(
        "{desired} instance(s) of {group_name} healthy on {}",
        lb.label()
    );
    let progress = cx.ui.progress(&cx.target(), &format!("Waiting for {what}"));
    let desired_n = desired as usize;
    // Since when every instance has been healthy (reset by any look that is not).
    let healthy_since: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    // A group made moments ago may not be listed yet: missing is "deleted" only once it lasts.
    let started = Instant::now();
    // Instances take at least seconds to boot; with a stabilisation window, look again when it ends.
    let lower_bound = if min_healthy.is_zero() {
        Duration::from_secs(5)
    } else {
        min_healthy.min(Duration::from_secs(5))
    };
    let result = poller(lower_bound, timeout)
        .wait(
            &what,
            cancel,
            |state, elapsed| progress.state(state, elapsed),
            || {
                let healthy_since = &healthy_since;
                async move {
                    let Some(mut group) = live::group(cx, group_name).await? else {
                        if started.elapsed() < bakery_core::propagation::PROPAGATION_TIMEOUT {
                            return Ok(Poll::Pending(format!("{group_name} not listed yet")));
                        }
                        return Ok(Poll::Failed(format!("{group_name} was deleted")));
                    };
                    let in_group: Vec<&GroupInstance> = group
                        .instances
                        .iter()
                        .filter(|i| i.healthy_in_group())
                        .collect();
                    let on_lb: BTreeMap<String, TargetState> = if in_group.is_empty() {
                        BTreeMap::new()
                    } else {
                        lb.health(cx).await?
                    };
                    let serving = in_group
                        .iter()
                        .filter(|i| on_lb.get(&i.id).is_some_and(TargetState::in_service))
                        .count();
                    let state =
                        health_state(lb, desired_n, &in_group, serving, group.instances.len());
                    let all = in_group.len() >= desired_n && serving == in_group.len();
                    for i in &mut group.instances {
                        i.load_balancer = on_lb.get(&i.id).cloned();
                    }
                    let mut since = healthy_since.lock().unwrap_or_else(|e| e.into_inner());
                    if !all {
                        *since = None;
                        return Ok(Poll::Pending(state));
                    }
                    let since = *since.get_or_insert_with(Instant::now);
                    let held = since.elapsed();
                    if held >= min_healthy {
                        Ok(Poll::Ready(Healthy { group }))
                    } else {
                        Ok(Poll::Pending(format!(
                            "{state}; stable for {:.0}/{} s",
                            held.as_secs_f64(),
                            min_healthy.as_secs()
                        )))
                    }
                }
            },
        )
        .await;
    match &result {
        Ok(h) => progress.finish(&format!(
            "{group_name}: {} instance(s) healthy on {}",
            h.group
                .instances
                .iter()
                .filter(|i| i
                    .load_balancer
                    .as_ref()
                    .is_some_and(TargetState::in_service))
                .count(),
            lb.label()
        )),
        Err(e) => progress.finish(&format!("{group_name}: {e}")),
    }
    result
}

/// Waits until none of `ids` is registered on `lb` any more (draining included).
pub async fn deregistered(
    cx: &Ctx,
    lb: &LoadBalancer,
    ids: &[String],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), WaitError> {
    if ids.is_empty() {
        return Ok(());
    }
    let what = format!(
        "{} old instance(s) to leave {} (connection draining)",
        ids.len(),
        lb.label()
    );
    let progress = cx.ui.progress(&cx.target(), &format!("Waiting for {what}"));
    let r = poller(Duration::from_secs(1), timeout)
        .wait(
            &what,
            cancel,
            |s, e| progress.state(s, e),
            || async {
                let health = lb.health(cx).await.map_err(PollError::from)?;
                let left: Vec<String> = ids
                    .iter()
                    .filter_map(|id| health.get(id).map(|s| format!("{id} {}", s.state)))
                    .collect();
                if left.is_empty() {
                    Ok(Poll::Ready(()))
                } else {
                    Ok(Poll::Pending(format!(
                        "still registered: {}",
                        left.join(", ")
                    )))
                }
            },
        )
        .await;
    match &r {
        Ok(()) => progress.finish(&format!("Old instances left {}", lb.label())),
        Err(e) => progress.finish(&e.to_string()),
    }
    r
}

/// Waits until `group_name` has no instances left (or is gone).
pub async fn group_empty(
    cx: &Ctx,
    group_name: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), WaitError> {
    group_at_most(cx, group_name, 0, timeout, cancel).await
}

/// Waits until `group_name` has at most `n` instances, none of them on its way out (or is gone): a group
/// scaled in to the size it is kept at (`n` 0: emptied).
pub async fn group_at_most(
    cx: &Ctx,
    group_name: &str,
    n: usize,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), WaitError> {
    let (what, done) = if n == 0 {
        (
            format!("the instances of {group_name} to terminate"),
            format!("{group_name} has no instances"),
        )
    } else {
        (
            format!("{group_name} to shrink to {n} instance(s)"),
            format!("{group_name} has at most {n} instance(s)"),
        )
    };
    let progress = cx.ui.progress(&cx.target(), &format!("Waiting for {what}"));
    let r = poller(Duration::from_secs(3), timeout)
        .wait(
            &what,
            cancel,
            |s, e| progress.state(s, e),
            || async {
                match live::group(cx, group_name).await? {
                    None => Ok(Poll::Ready(())),
                    Some(g) if g.instances.len() <= n => Ok(Poll::Ready(())),
                    Some(g) => Ok(Poll::Pending(format!(
                        "{} instance(s) left",
                        g.instances.len()
                    ))),
                }
            },
        )
        .await;
    match &r {
        Ok(()) => progress.finish(&done),
        Err(e) => progress.finish(&e.to_string()),
    }
    r
}

/// Waits until `group_name` no longer exists.
pub async fn group_deleted(
    cx: &Ctx,
    group_name: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), WaitError> {
    let what = format!("{group_name} to be deleted");
    let progress = cx.ui.progress(&cx.target(), &format!("Waiting for {what}"));
    let r = poller(Duration::from_secs(3), timeout)
        .wait(
            &what,
            cancel,
            |s, e| progress.state(s, e),
            || async {
                match live::group(cx, group_name).await? {
                    None => Ok(Poll::Ready(())),
                    Some(g) => Ok(Poll::Pending(format!(
                        "{}, {} instance(s)",
                        g.status.as_deref().unwrap_or("deleting"),
                        g.instances.len()
                    ))),
                }
            },
        )
        .await;
    match &r {
        Ok(()) => progress.finish(&format!("{group_name} is deleted")),
        Err(e) => progress.finish(&e.to_string()),
    }
    r
}

/// Retries `call` while AWS says the group is busy (`ScalingActivityInProgress`, `ResourceInUse`):
/// deleting a group right after scaling it in can meet one of these.
pub async fn while_busy<F, Fut>(
    what: &str,
    timeout: Duration,
    cancel: &CancellationToken,
    mut call: F,
) -> Result<(), WaitError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::error::AwsError>>,
{
    poller(Duration::from_secs(2), timeout)
        .wait(
            what,
            cancel,
            |_, _| {},
            || {
                let f = call();
                async move {
                    match f.await {
                        Ok(()) => Ok(Poll::Ready(())),
                        Err(e)
                            if e.is("ScalingActivityInProgress")
                                || e.is("ResourceInUse")
                                || e.is("InvalidSnapshot.InUse") =>
                        {
                            Ok(Poll::Pending(e.code.unwrap_or_default()))
                        }
                        Err(e) => Err(PollError::from(e)),
                    }
                }
            },
        )
        .await
}
