//! Blue-green, as in the seed's deploy script, done right:
//!
//! 1. create a launch template and a new group (tagged `in-progress`), attached to the load balancer;
//! 2. wait until every desired instance is InService+Healthy in the group and in service on the load
//!    balancer (and, if asked, has stayed so for `min_healthy_seconds`);
//! 3. check once more, then mark the new group `live` — the point of no return;
//! 4. for each old group: detach it from the load balancer (AWS drains its connections), wait until its
//!    instances are deregistered, scale it to 0, wait until they are gone, delete it and its launch template.
//!
//! If step 1–3 fails (timeout, error, interrupt), the new group and launch template are deleted and the
//! old group is left exactly as it was: nothing ever touches it before the new one is healthy, so the load
//! balancer never has zero healthy instances. A failure in step 4 stops there and reports what is left; the
//! new group is live and serving, and the remaining old groups keep serving too.

use super::{Preflight, Strategy};
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::launch::{self, CreatedTemplate, LaunchSpec};
use crate::lb::{LoadBalancer, TargetState};
use crate::live::{self, Group};
use crate::manifest::StrategyKind;
use crate::report::{DeployReport, GroupSummary, RollbackReport, Status};
use crate::wait;
use std::time::SystemTime;
use tokio::time::Instant;

/// A new group beside the old one; the old one goes once the new one is healthy.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlueGreen;

/// What this run created, for rollback.
#[derive(Debug, Default)]
struct Created {
    template: Option<CreatedTemplate>,
    group: Option<String>,
}

#[async_trait::async_trait]
impl Strategy for BlueGreen {
    fn kind(&self) -> StrategyKind {
        StrategyKind::BlueGreen
    }

    fn plan(&self, cx: &Ctx, pf: &Preflight) -> Vec<String> {
        let cfg = &cx.cfg;
        let names = &cfg.names;
        let desired = cfg.capacity.desired_given_live(pf.live_desired());
        let lb = pf
            .lb
            .as_ref()
            .map(|l| l.label())
            .unwrap_or_else(|| names.load_balancer());
        let ami = pf.ami.as_ref().map(|a| a.id.as_str()).unwrap_or("<--ami>");
        let lt = names.launch_template("<timestamp>");
        let group = names.group("<timestamp>");
        let mut steps = vec![
            format!(
                "create launch template {lt}: {ami}, {}, key {}, security groups {}{}{}",
                cfg.instances.instance_type,
                pf.launch
                    .as_ref()
                    .and_then(|l| l.key_name.clone())
                    .or_else(|| cfg.public_key_file.as_ref().map(|_| names.key_pair()))
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
            ),
            format!(
                "create group {group}: min {} max {} desired {desired}{}, health check ELB, grace {} s, {}, attached to {lb}",
                cfg.capacity.min.min(desired),
                cfg.capacity.max.max(desired),
                if desired != cfg.capacity.desired {
                    format!(
                        " (manifest {}, matching the live {})",
                        cfg.capacity.desired,
                        pf.live_desired()
                    )
                } else {
                    String::new()
                },
                cfg.instances.grace_period_seconds,
                pf.launch
                    .as_ref()
                    .map(|l| l.placement.describe())
                    .unwrap_or_else(|| "the load balancer's subnets".into()),
            ),
            format!(
                "wait up to {} s for {desired} instance(s) InService+Healthy in the group and in service on {lb}{}; otherwise delete the new group and launch template and stop",
                cfg.timeouts.health.as_secs(),
                if cfg.timeouts.min_healthy.is_zero() {
                    String::new()
                } else {
                    format!(", held for {} s", cfg.timeouts.min_healthy.as_secs())
                }
            ),
        ];
        for g in pf.retirable().iter().filter(|g| !g.in_progress()) {
            steps.push(format!(
                "retire {}: detach from {lb} and wait for draining (up to {} s), scale to 0, wait for its {} instance(s) to terminate, delete it{}",
                g.name,
                cfg.timeouts.drain.as_secs(),
                g.instances.len(),
                g.launch_template
                    .as_ref()
                    .and_then(|l| l.name.as_deref())
                    .map(|n| format!(" and launch template {n}"))
                    .unwrap_or_default()
            ));
        }
        if pf.retirable().is_empty() {
            steps.push("no live group to retire (first rollout)".into());
        }
        steps
    }

    async fn deploy(&self, cx: &Ctx, pf: Preflight) -> Result<DeployReport, RolloutError> {
        let (Some(lb), Some(spec), Some(ami)) = (pf.lb.clone(), pf.launch.clone(), pf.ami.clone())
        else {
            return Err(RolloutError::Preflight(pf.problems));
        };
        let olds: Vec<Group> = pf.retirable();
        let desired = cx.cfg.capacity.desired_given_live(pf.live_desired());
        let stamp = crate::names::stamp(SystemTime::now(), &cx.run_id);
        let mut report = DeployReport::started(
            cx,
            &self.kind().to_string(),
            lb.label(),
            &ami,
            olds.iter()
                .map(|g| GroupSummary::of(g, pf.group_amis.get(&g.name).cloned().flatten()))
                .collect(),
            pf.took,
        );
        cx.say(&format!(
            "Rolling out {}{} to {}/{} ({} live group(s), desired {desired})",
            ami.id,
            ami.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            cx.cfg.names.app,
            cx.cfg.names.env,
            olds.len()
        ));

        // Steps 1–3: anything that fails here is rolled back.
        let mut created = Created::default();
        let launched = self
            .launch_and_wait(
                cx,
                &lb,
                &spec,
                &ami,
                desired,
                &stamp,
                &mut created,
                &mut report,
            )
            .await;
        let healthy = match launched {
            Ok(g) => g,
            // Nothing was created: nothing to roll back.
            Err(e) if created.template.is_none() && created.group.is_none() => return Err(e),
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
        let new_ids = healthy.instance_ids();
        report.new_group = Some(GroupSummary::of(&healthy, Some(ami.id.clone())));

        // Step 4: retire the old groups, one at a time, each only while the new one is serving.
        let retire_started = Instant::now();
        for (n, old) in olds.iter().enumerate() {
            if cx.cancel.is_cancelled() {
                report.error = Some("interrupted while retiring the old groups".into());
                break;
            }
            if n > 0
                && let Err(e) = lb.require_in_service(cx, &new_ids, "the new group's").await
            {
                report.error = Some(format!("stopped retiring old groups: {e}"));
                break;
            }
            if let Err(e) = self.retire(cx, &lb, old, &mut report).await {
                report.error = Some(format!("retiring {}: {e}", old.name));
                break;
            }
        }
        report.durations.retire_s = retire_started.elapsed().as_secs_f64();
        if report.error.is_some() {
            for old in olds.iter().filter(|o| !report.retired.contains(&o.name)) {
                report.attention.push(format!(
                    "{} was not retired (it still exists; the new group {} is live): re-run the rollout or retire it by hand",
                    old.name, healthy.name
                ));
            }
            report.status = Status::Incomplete;
            return Err(RolloutError::Incomplete(Box::new(report)));
        }
        cx.say(&format!(
            "{} is live with {} ({} instance(s) in service on {})",
            healthy.name,
            ami.id,
            new_ids.len(),
            lb.label()
        ));
        Ok(report)
    }
}

impl BlueGreen {
    #[allow(clippy::too_many_arguments)]
    async fn launch_and_wait(
        &self,
        cx: &Ctx,
        lb: &LoadBalancer,
        spec: &LaunchSpec,
        ami: &crate::ami::ResolvedAmi,
        desired: u32,
        stamp: &str,
        created: &mut Created,
        report: &mut DeployReport,
    ) -> Result<Group, RolloutError> {
        let names = &cx.cfg.names;
        let t = Instant::now();
        if cx.cancel.is_cancelled() {
            return Err(RolloutError::Cancelled);
        }
        let lt_name = names.launch_template(stamp);
        cx.say(&format!("Creating launch template {lt_name}"));
        let template = launch::create_launch_template(cx, &lt_name, ami, spec).await?;
        cx.detail(&format!("{} ({})", template.name, template.id));
        created.template = Some(template.clone());

        if cx.cancel.is_cancelled() {
            return Err(RolloutError::Cancelled);
        }
        let group_name = names.group(stamp);
        cx.say(&format!(
            "Creating group {group_name} (desired {desired}) on {}",
            lb.label()
        ));
        // Recorded before the call: if the answer is lost after AWS created the group, rollback still finds
        // it (and skips it if it does not exist).
        created.group = Some(group_name.clone());
        launch::create_group(cx, &group_name, &template, ami, lb, spec, desired).await?;
        report.durations.launch_s = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let waited = wait::group_healthy(
            cx,
            lb,
            &group_name,
            desired,
            cx.cfg.timeouts.min_healthy,
            cx.cfg.timeouts.health,
            &cx.cancel,
        )
        .await;
        report.durations.healthy_s = t.elapsed().as_secs_f64();
        let healthy = match waited {
            Ok(h) => h.group,
            Err(e) => {
                // Say what the new group looked like, for the report, before it is deleted.
                let mut why = e.to_string();
                if let Ok(Some(mut g)) = live::group(cx, &group_name).await {
                    if let Ok(h) = lb.health(cx).await {
                        for i in &mut g.instances {
                            i.load_balancer = h.get(&i.id).cloned();
                        }
                    }
                    let bad: Vec<String> = g
                        .instances
                        .iter()
                        .filter(|i| {
                            !i.healthy_in_group()
                                || !i
                                    .load_balancer
                                    .as_ref()
                                    .is_some_and(TargetState::in_service)
                        })
                        .map(|i| {
                            let lbs = i.load_balancer.as_ref();
                            format!(
                                "{} {}/{} lb:{}{}",
                                i.id,
                                i.lifecycle,
                                i.health,
                                lbs.map(|l| l.state.as_str()).unwrap_or("not registered"),
                                lbs.and_then(|l| l.reason.as_deref())
                                    .map(|r| format!(" ({r})"))
                                    .unwrap_or_default()
                            )
                        })
                        .collect();
                    if !bad.is_empty() {
                        why.push_str(&format!("; not healthy: {}", bad.join(", ")));
                    }
                    report.new_group = Some(GroupSummary::of(&g, Some(ami.id.clone())));
                }
                why.push_str(&scaling_failures(cx, &group_name).await);
                return Err(match e {
                    bakery_core::poll::WaitError::Cancelled(_) => RolloutError::Interrupted(why),
                    _ => RolloutError::Unhealthy(why),
                });
            }
        };

        // The point of no return: one more look, then the new group is the live one.
        lb.require_in_service(cx, &healthy.instance_ids(), "the new group's")
            .await?;
        launch::mark_live(cx, &group_name).await?;
        cx.detail(&format!("{group_name} is healthy and marked live"));
        Ok(healthy)
    }

    async fn retire(
        &self,
        cx: &Ctx,
        lb: &LoadBalancer,
        old: &Group,
        report: &mut DeployReport,
    ) -> Result<(), RolloutError> {
        let t = &cx.cfg.timeouts;
        cx.say(&format!("Retiring {}", old.name));
        // Read it again: the group may have changed since preflight (scaling, replaced instances).
        let Some(current) = live::group(cx, &old.name).await? else {
            cx.detail(&format!("{} is already gone", old.name));
            report.retired.push(old.name.clone());
            return Ok(());
        };
        if lb.attached_to(&current.load_balancers, &current.target_groups) {
            cx.detail(&format!("Detaching {} from {}", current.name, lb.label()));
            lb.detach_group(cx, &current.name).await?;
        }
        wait::deregistered(cx, lb, &current.instance_ids(), t.drain, &cx.cancel).await?;
        cx.detail(&format!("Scaling {} to 0", current.name));
        cx.clients
            .autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&current.name)
            .min_size(0)
            .max_size(0)
            .desired_capacity(0)
            .send()
            .await
            .aws("UpdateAutoScalingGroup")?;
        wait::group_empty(cx, &current.name, t.retire, &cx.cancel).await?;
        cx.detail(&format!("Deleting {}", current.name));
        let name = current.name.clone();
        wait::while_busy("DeleteAutoScalingGroup", t.retire, &cx.cancel, || {
            delete_group(cx, &name, false)
        })
        .await?;
        report.retired.push(current.name.clone());
        if let Some(id) = current
            .launch_template
            .as_ref()
            .and_then(|l| l.id.as_deref())
        {
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
        if let Some(lc) = &current.launch_configuration {
            report.attention.push(format!(
                "launch configuration {lc} of {} was left in place (rollout never deletes launch configurations)",
                current.name
            ));
        }
        Ok(())
    }
}

/// Recent failed scaling activities of `group` (why instances did not launch), as `; ...` text.
async fn scaling_failures(cx: &Ctx, group: &str) -> String {
    let Ok(out) = cx
        .clients
        .autoscaling
        .describe_scaling_activities()
        .auto_scaling_group_name(group)
        .max_records(10)
        .send()
        .await
        .aws("DescribeScalingActivities")
    else {
        return String::new();
    };
    let failed: Vec<String> = out
        .activities()
        .iter()
        .filter(|a| {
            matches!(
                a.status_code().map(|s| s.as_str()),
                Some("Failed") | Some("Cancelled")
            )
        })
        .take(3)
        .map(|a| {
            a.status_message()
                .or(a.description())
                .unwrap_or("failed")
                .to_string()
        })
        .collect();
    if failed.is_empty() {
        String::new()
    } else {
        format!("; scaling activities failed: {}", failed.join(" | "))
    }
}

async fn delete_group(cx: &Ctx, name: &str, force: bool) -> Result<(), crate::error::AwsError> {
    cx.clients
        .autoscaling
        .delete_auto_scaling_group()
        .auto_scaling_group_name(name)
        .force_delete(force)
        .send()
        .await
        .aws("DeleteAutoScalingGroup")?;
    Ok(())
}

/// Removes what this run created and checks the old groups are as they were. Runs under the cleanup
/// token: a first interrupt does not stop it, a second one does.
async fn rollback(
    cx: &Ctx,
    lb: &LoadBalancer,
    created: &Created,
    olds: &[Group],
) -> RollbackReport {
    let cancel = &cx.cancel_cleanup;
    let t = &cx.cfg.timeouts;
    let mut rb = RollbackReport::default();
    cx.warn("Rolling back: removing the new group and launch template");
    let mut group_gone = true;
    let group = match &created.group {
        // The create call may have failed before AWS made the group: then there is nothing to delete.
        Some(name) => match live::group(cx, name).await {
            Ok(None) => None,
            _ => Some(name),
        },
        None => None,
    };
    if let Some(name) = group {
        // ForceDelete terminates the instances with the group; the group deregisters them (with draining).
        let deleted = wait::while_busy("DeleteAutoScalingGroup", t.rollback, cancel, || {
            delete_group(cx, name, true)
        })
        .await;
        match deleted {
            Ok(()) => match wait::group_deleted(cx, name, t.rollback, cancel).await {
                Ok(()) => rb
                    .actions
                    .push(format!("deleted group {name} and its instances")),
                Err(e) => {
                    group_gone = false;
                    rb.failures.push(format!("group {name}: {e}"));
                }
            },
            Err(e) => {
                group_gone = false;
                rb.failures.push(format!(
                    "group {name} could not be deleted: {e} (delete it with --force-delete)"
                ));
            }
        }
    }
    if let Some(lt) = &created.template {
        launch::roll_back_template(
            cx,
            lt,
            group_gone,
            "its group is still being deleted",
            &mut rb,
        )
        .await;
    }
    // The old groups: rollout made no call on them; show that they are as they were, and serving.
    let health = lb.health(cx).await.unwrap_or_default();
    rb.old_groups_unchanged = true;
    for old in olds {
        match live::group(cx, &old.name).await {
            Ok(Some(now)) => {
                let serving = now
                    .instances
                    .iter()
                    .filter(|i| health.get(&i.id).is_some_and(TargetState::in_service))
                    .count();
                let same = now.fingerprint() == old.fingerprint();
                rb.old_groups_unchanged &= same;
                // Instances that served before the rollout and do not now: rollout made no call on them,
                // but an operator must know the load balancer lost them.
                let lost: Vec<String> = old
                    .instances
                    .iter()
                    .filter(|i| {
                        i.load_balancer
                            .as_ref()
                            .is_some_and(TargetState::in_service)
                    })
                    .filter(|i| now.instances.iter().any(|n| n.id == i.id))
                    .filter(|i| !health.get(&i.id).is_some_and(TargetState::in_service))
                    .map(|i| {
                        format!(
                            "{} ({})",
                            i.id,
                            health
                                .get(&i.id)
                                .map(|s| s.state.as_str())
                                .unwrap_or("not registered")
                        )
                    })
                    .collect();
                if !lost.is_empty() {
                    rb.warnings.push(format!(
                        "{}: instance(s) of {} that were in service before the rollout are not now: {}; rollout made no call on them: check the load balancer (re-register them if needed)",
                        lb.label(),
                        now.name,
                        lost.join(", ")
                    ));
                }
                rb.old_groups.push(format!(
                    "{}: {}, {serving}/{} instance(s) in service on {}",
                    now.name,
                    if same {
                        "unchanged".to_string()
                    } else {
                        format!(
                            "changed since the rollout started (not by rollout): {} -> {}",
                            old.fingerprint(),
                            now.fingerprint()
                        )
                    },
                    now.instances.len(),
                    lb.label()
                ));
            }
            Ok(None) => {
                rb.old_groups_unchanged = false;
                rb.old_groups
                    .push(format!("{}: GONE (deleted outside this rollout)", old.name));
            }
            Err(e) => {
                rb.old_groups_unchanged = false;
                rb.old_groups
                    .push(format!("{}: could not be described: {e}", old.name));
            }
        }
    }
    rb
}
