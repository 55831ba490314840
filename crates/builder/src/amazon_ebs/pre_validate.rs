//! Step 1: the AMI name must be free (Packer's "AMI Name: 'x' is used by an existing AMI"), unless
//! `-force`/`force_deregister` says to deregister the old one (and, with `force_delete_snapshot`, its snapshots).

use super::state::{Ctx, State};
use crate::ec2::image_snapshots;
use crate::resource::deregister_with_snapshots;
use async_trait::async_trait;
use aws_sdk_ec2::types::Filter;
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::{Step, StepError};

/// Checks the AMI name.
pub struct PreValidate;

#[async_trait]
impl Step<Ctx, State> for PreValidate {
    fn name(&self) -> &'static str {
        "pre-validate"
    }

    async fn run(&mut self, cx: &Ctx, _st: &mut State) -> Result<(), StepError> {
        if cx.cfg.skip_create_ami {
            return Ok(());
        }
        let name = &cx.cfg.ami.ami_name;
        cx.ui
            .say(&cx.name, &format!("Prevalidating AMI Name: {name}"));
        let out = cx
            .clients
            .ec2
            .describe_images()
            .owners("self")
            .filters(Filter::builder().name("name").values(name).build())
            .send()
            .await
            .aws("DescribeImages")?;
        let Some(img) = out.images().first() else {
            return Ok(());
        };
        let id = img.image_id().unwrap_or_default().to_string();
        if !(cx.force || cx.cfg.ami.force_deregister) {
            return Err(StepError::msg(format!(
                "AMI Name: '{name}' is used by an existing AMI: {id} (use -force or force_deregister to replace it)"
            )));
        }
        let snaps = if cx.cfg.ami.force_delete_snapshot {
            image_snapshots(img)
        } else {
            vec![]
        };
        cx.ui.say(
            &cx.name,
            &format!(
                "Force deregistering AMI {id} ({} snapshot(s) deleted)",
                snaps.len()
            ),
        );
        deregister_with_snapshots(&cx.clients.ec2, &id, &snaps, &cx.cancel).await?;
        Ok(())
    }
}
