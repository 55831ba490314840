//! Step: the new Auto Scaling group, tagged `in-progress`, attached to the load balancer; deleted with its
//! instances on rollback.

use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::launch;
use crate::live::Group;
use crate::strategy::replace::Replace;
use crate::strategy::run::RolloutStep;
use crate::wait;
use bakery_core::pipeline::Outcome;

/// Creates the run's group with `desired` instances.
pub(super) struct CreateGroup {
    /// The new group's desired capacity.
    pub desired: u32,
}

#[async_trait::async_trait]
impl RolloutStep<Replace<Group>> for CreateGroup {
    fn name(&self) -> &'static str {
        "new group"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<Group>) -> Result<(), RolloutError> {
        let group_name = cx.cfg.names.group(&st.stamp);
        cx.say(&format!(
            "Creating group {group_name} (desired {}) on {}",
            self.desired,
            st.lb.label()
        ));
        // Recorded before the call: if the answer is lost after AWS created the group, rollback still finds
        // it (and skips it if it does not exist).
        st.new = Some(group_name.clone());
        let template = st
            .template
            .clone()
            .expect("the launch template step runs first");
        launch::create_group(
            cx,
            &group_name,
            &template,
            &st.ami,
            &st.lb,
            &st.spec,
            self.desired,
        )
        .await?;
        st.common.report.durations.launch_s = st.started.elapsed().as_secs_f64();
        Ok(())
    }

    async fn cleanup(&mut self, cx: &Ctx, st: &mut Replace<Group>, outcome: Outcome) {
        let Some(name) = st.new.clone() else {
            return;
        };
        if !st.common.undo(cx, outcome) {
            return;
        }
        let cancel = &cx.cancel_cleanup;
        let t = cx.cfg.timeouts.rollback;
        let rb = &mut st.common.rollback;
        // ForceDelete terminates the instances with the group; the group deregisters them (with draining).
        // The create call may have failed before AWS made the group: a "not found" that lasts
        // NOT_FOUND_CONFIRMATION (so not a group too young to be listed) means nothing to delete.
        let absent = std::sync::atomic::AtomicBool::new(false);
        let deleted = wait::while_busy("DeleteAutoScalingGroup", t, cancel, || async {
            match delete_group(cx, &name, true).await {
                Err(e) if bakery_core::propagation::is_propagation_error(&e) => {
                    absent.store(true, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                }
                r => r,
            }
        })
        .await;
        if absent.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        match deleted {
            Ok(()) => match wait::group_deleted(cx, &name, t, cancel).await {
                Ok(()) => rb
                    .actions
                    .push(format!("deleted group {name} and its instances")),
                Err(e) => {
                    st.new_gone = false;
                    rb.failures.push(format!("group {name}: {e}"));
                }
            },
            Err(e) => {
                st.new_gone = false;
                rb.failures.push(format!(
                    "group {name} could not be deleted: {e} (delete it with --force-delete)"
                ));
            }
        }
    }
}

/// Deletes group `name` (`force`: with its instances).
pub(in crate::strategy) async fn delete_group(
    cx: &Ctx,
    name: &str,
    force: bool,
) -> Result<(), crate::error::AwsError> {
    // A group made moments ago may not be known to this call yet: "not found" is believed once it lasts.
    let asg = &cx.clients.autoscaling;
    bakery_core::propagation::retry_propagation(
        bakery_core::propagation::NOT_FOUND_CONFIRMATION,
        &cx.cancel_cleanup,
        || async {
            asg.delete_auto_scaling_group()
                .auto_scaling_group_name(name)
                .force_delete(force)
                .send()
                .await
                .aws("DeleteAutoScalingGroup")
        },
    )
    .await?;
    Ok(())
}
