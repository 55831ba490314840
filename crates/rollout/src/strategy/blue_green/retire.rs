//! An old Auto Scaling group as blue-green retires it: detached from the load balancer (AWS drains its
//! connections), its instances deregistered, scaled to 0, deleted with its launch template.

use super::create_group::delete_group;
use super::wait_healthy::Healthy;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::lb::{LoadBalancer, TargetState};
use crate::live::{self, Group};
use crate::report::DeployReport;
use crate::strategy::replace::{Capacity, Seen, retire_template};
use crate::wait;

#[async_trait::async_trait]
impl Capacity for Group {
    const PLURAL: &'static str = "groups";
    const NEW_WHOSE: &'static str = "the new group's";
    const TEMPLATE_KEPT_WHILE: &'static str = "its group is still being deleted";
    type Launch = Healthy;

    fn id(&self) -> &str {
        &self.name
    }

    async fn retire(
        &self,
        cx: &Ctx,
        lb: &LoadBalancer,
        keep: bool,
        report: &mut DeployReport,
    ) -> Result<(), RolloutError> {
        let t = &cx.cfg.timeouts;
        cx.say(&format!("Retiring {}", self.name));
        // Read it again: the group may have changed since preflight (scaling, replaced instances).
        let Some(current) = live::group(cx, &self.name).await? else {
            cx.detail(&format!("{} is already gone", self.name));
            report.retired.push(self.name.clone());
            return Ok(());
        };
        if lb.attached_to(&current.load_balancers, &current.target_groups) {
            cx.detail(&format!("Detaching {} from {}", current.name, lb.label()));
            lb.detach_group(cx, &current.name).await?;
        }
        wait::deregistered(cx, lb, &current.instance_ids(), t.drain, &cx.cancel).await?;
        let baking = cx.cfg.gates.baking();
        if keep && (cx.cfg.keep.on() || baking) {
            // During a bake time the previous release stays whole (detached): an alarm brings it back.
            let size = if baking {
                current.desired.max(0) as u32
            } else {
                cx.cfg.keep.size
            };
            return super::keep::keep(cx, &current, size, report).await;
        }
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
            retire_template(cx, id, report).await?;
        }
        if let Some(lc) = &current.launch_configuration {
            report.attention.push(format!(
                "launch configuration {lc} of {} was left in place (rollout never deletes launch configurations)",
                current.name
            ));
        }
        Ok(())
    }

    fn not_retired(&self, new: &str) -> String {
        format!(
            "{} was not retired (it still exists; the new group {new} is live): re-run the rollout or retire it by hand",
            self.name
        )
    }

    fn seen(&self) -> Seen {
        Seen {
            name: self.name.clone(),
            key: self.fingerprint(),
            shown: self.fingerprint(),
            instances: self.instance_ids(),
            served: self
                .instances
                .iter()
                .filter(|i| {
                    i.load_balancer
                        .as_ref()
                        .is_some_and(TargetState::in_service)
                })
                .map(|i| i.id.clone())
                .collect(),
            gone_verb: "deleted",
        }
    }

    async fn look_again(cx: &Ctx, olds: &[Self]) -> Vec<Result<Option<Seen>, String>> {
        let mut now = Vec::new();
        for old in olds {
            now.push(match live::group(cx, &old.name).await {
                Ok(g) => Ok(g.as_ref().map(Capacity::seen)),
                Err(e) => Err(e.to_string()),
            });
        }
        now
    }
}
