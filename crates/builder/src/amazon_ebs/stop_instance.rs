//! Step 9: stop the instance (unless `disable_stop_instance`) and wait until it is stopped, so the image is
//! taken from quiet disks.

use super::state::{Ctx, State};
use crate::ec2::judge_instance;
use async_trait::async_trait;
use aws_sdk_ec2::types::InstanceStateName;
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::{Step, StepError};
use bakery_core::poll::Poller;

/// Stops the instance.
pub struct StopInstance;

#[async_trait]
impl Step<Ctx, State> for StopInstance {
    fn name(&self) -> &'static str {
        "stop-instance"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        let id = st
            .instance
            .as_ref()
            .map(|i| i.id.clone())
            .ok_or_else(|| StepError::msg("no instance"))?;
        if let Some(comm) = st.comm.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), comm.close()).await;
        }
        if cx.cfg.run.is_spot_instance() {
            // As Packer: a one-time spot instance cannot be stopped; CreateImage reboots it instead.
            return Ok(());
        }
        if cx.cfg.run.disable_stop_instance {
            cx.ui.say(
                &cx.name,
                "Automatic instance stop disabled. Please stop instance manually.",
            );
        } else {
            cx.ui.say(&cx.name, "Stopping the source instance...");
            let out = cx
                .clients
                .ec2
                .stop_instances()
                .instance_ids(&id)
                .send()
                .await
                .aws("StopInstances")?;
            let now = out
                .stopping_instances()
                .first()
                .and_then(|c| c.current_state())
                .and_then(|s| s.name())
                .cloned();
            if now == Some(InstanceStateName::Stopped) {
                return Ok(());
            }
        }
        let waits = cx.ec2_waits(&cx.clients);
        let progress = cx.ui.progress(&cx.name, "Waiting for the instance to stop");
        cx.poller(Poller::instance_stopped())
            .wait_batched(
                &format!("instance {id} to stop"),
                &cx.cancel,
                |s, t| progress.state(s, t),
                &waits.instances,
                &id,
                |i| judge_instance(i, InstanceStateName::Stopped),
            )
            .await?;
        progress.finish("Instance stopped");
        Ok(())
    }
}
