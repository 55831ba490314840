//! Step 10: create the AMI from the stopped instance (with `ami_description`, `tags`, `snapshot_tags`
//! rendered now, `ami_block_device_mappings`, `ena_support`/`sriov_support`), wait until it is available,
//! and with `encrypt_boot` replace it by an encrypted copy. Cleanup only on failure: deregister the AMI and
//! delete exactly its snapshots.
//!
//! While the image is pending, as soon as every one of its snapshots exists, the builder is released
//! (`release_builder`): the instance terminated, its temporary group and key pair removed — their steps'
//! cleanups then find nothing left to do. Never before the snapshots exist (the image is made from the
//! instance's volumes until then); not for a spot builder, whose fleet and launch template its own step
//! removes. A release that fails leaves them in the state for those cleanups.

use super::ami::{image_tags, wait_available, wait_available_telling};
use super::state::{Ctx, State};
use crate::ec2::block_devices;
use crate::resource::{Kind, remove_image};
use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::{Outcome, Step, StepError};
use bakery_core::tags::ec2_tag_spec;

/// Creates the AMI.
#[derive(Default)]
pub struct CreateAmi {
    created: Vec<(String, Vec<String>)>,
}

#[async_trait]
impl Step<Ctx, State> for CreateAmi {
    fn name(&self) -> &'static str {
        "create-ami"
    }

    async fn plan(&self, cx: &Ctx, _st: &mut State) -> Result<Vec<String>, StepError> {
        let ami = &cx.cfg.ami;
        Ok(vec![if cx.cfg.skip_create_ami {
            "would not create an AMI (skip_create_ami)".to_string()
        } else {
            format!(
                "would create AMI {:?} in {}{}",
                ami.ami_name,
                cx.region(),
                if ami.encrypt_boot == Some(true) {
                    " (encrypted copy: encrypt_boot)"
                } else {
                    ""
                }
            )
        }])
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        if cx.cfg.skip_create_ami {
            cx.ui
                .say(&cx.name, "Skipping AMI creation (skip_create_ami)...");
            return Ok(());
        }
        let ec2 = &cx.clients.ec2;
        let id = st
            .instance
            .as_ref()
            .map(|i| i.id.clone())
            .ok_or_else(|| StepError::msg("no instance"))?;
        if cx.cfg.ami.ena_support == Some(true) {
            cx.ui.say(&cx.name, "Enabling Enhanced Networking (ENA)...");
            ec2.modify_instance_attribute()
                .instance_id(&id)
                .ena_support(AttributeBooleanValue::builder().value(true).build())
                .send()
                .await
                .aws("ModifyInstanceAttribute")?;
        }
        if cx.cfg.ami.sriov_support {
            ec2.modify_instance_attribute()
                .instance_id(&id)
                .sriov_net_support(
                    aws_sdk_ec2::types::AttributeValue::builder()
                        .value("simple")
                        .build(),
                )
                .send()
                .await
                .aws("ModifyInstanceAttribute")?;
        }
        let description = match &cx.cfg.ami.ami_description {
            Some(t) => Some(
                t.render(&st.late)
                    .map_err(|e| StepError::msg(format!("ami_description: {e}")))?,
            ),
            None => None,
        };
        let (image_tags, snapshot_tags) = image_tags(cx, st, cx.region())?;
        let name = cx.cfg.ami.ami_name.clone();
        cx.ui
            .say(&cx.name, &format!("Creating AMI {name} from instance {id}"));
        let bdm = block_devices(&cx.cfg.ami_block_device_mappings);
        // The image and its snapshots carry bakery's tags from their creation, so a run killed before
        // CreateImage answers leaves nothing `bake cleanup` cannot find.
        let req = ec2
            .create_image()
            .instance_id(&id)
            .name(&name)
            .set_description(description.filter(|d| !d.is_empty()))
            .set_block_device_mappings(Some(bdm).filter(|v| !v.is_empty()))
            .tag_specifications(ec2_tag_spec(ResourceType::Image, &image_tags))
            .tag_specifications(ec2_tag_spec(ResourceType::Snapshot, &snapshot_tags));
        let out = cx
            .create(Kind::Image, cx.region(), None, async {
                req.send().await.aws("CreateImage")
            })
            .await?;
        let mut ami = out
            .image_id()
            .ok_or_else(|| StepError::msg("CreateImage returned no id"))?
            .to_string();
        cx.created(Kind::Image, cx.region(), &ami);
        self.created.push((ami.clone(), vec![]));
        cx.ui.message(&cx.name, &format!("AMI: {ami}"));
        // Once every snapshot of the image exists the builder is no longer needed: terminate it and remove
        // its group and key pair while the image finishes (minutes on AWS), not after.
        let (exist, snapshots_exist) = tokio::sync::oneshot::channel();
        let wait = wait_available_telling(cx, &cx.clients, &ami, Some(exist));
        let release = async {
            if snapshots_exist.await.is_ok() && releasable(cx) {
                release_builder(cx, st).await;
            }
        };
        let (waited, ()) = tokio::join!(wait, release);
        let mut snaps = waited?;
        self.created.last_mut().expect("pushed").1 = snaps.clone();
        if cx.cfg.ami.encrypt_boot == Some(true) {
            cx.ui.say(
                &cx.name,
                "Copying AMI to an encrypted AMI (encrypt_boot)...",
            );
            let token = cx.client_token("encrypted-copy");
            let req = ec2
                .copy_image()
                .source_image_id(&ami)
                .source_region(cx.region())
                .name(&name)
                .encrypted(true)
                .client_token(&token)
                .set_kms_key_id(cx.cfg.ami.kms_key_id.clone().filter(|s| !s.is_empty()))
                .tag_specifications(ec2_tag_spec(ResourceType::Image, &image_tags))
                .tag_specifications(ec2_tag_spec(ResourceType::Snapshot, &snapshot_tags));
            let copy = cx
                .create(Kind::Image, cx.region(), Some(&token), async {
                    req.send().await.aws("CopyImage")
                })
                .await?;
            let enc = copy
                .image_id()
                .ok_or_else(|| StepError::msg("CopyImage returned no id"))?
                .to_string();
            cx.created(Kind::Image, cx.region(), &enc);
            self.created.push((enc.clone(), vec![]));
            let enc_snaps = wait_available(cx, &cx.clients, &enc).await?;
            self.created.last_mut().expect("pushed").1 = enc_snaps.clone();
            let gone = remove_image(ec2, &ami, &snaps, &cx.cancel).await?;
            cx.removed(Kind::Image, cx.region(), &ami);
            for s in &gone {
                cx.removed(Kind::Snapshot, cx.region(), s);
            }
            self.created.remove(0);
            ami = enc;
            snaps = enc_snaps;
        }
        st.late.build.insert("ImageID".into(), ami.clone());
        st.amis.insert(cx.region().to_string(), ami);
        st.snapshots.insert(cx.region().to_string(), snaps);
        Ok(())
    }

    async fn cleanup(
        &mut self,
        cx: &Ctx,
        _st: &mut State,
        outcome: Outcome,
    ) -> Result<(), StepError> {
        let created = std::mem::take(&mut self.created);
        for (ami, snaps) in created {
            if outcome.succeeded() {
                cx.kept(Kind::Image, cx.region(), &ami);
                for s in &snaps {
                    cx.kept(Kind::Snapshot, cx.region(), s);
                }
                continue;
            }
            cx.ui.say(&cx.name, &format!("Deregistering the AMI {ami} and deleting its snapshots because of cancellation or error..."));
            let gone = remove_image(&cx.clients.ec2, &ami, &snaps, &cx.cancel_cleanup).await?;
            cx.removed(Kind::Image, cx.region(), &ami);
            for s in &gone {
                cx.removed(Kind::Snapshot, cx.region(), s);
            }
            cx.ui
                .message(&cx.name, &deleted_line(&ami, cx.region(), &gone));
        }
        Ok(())
    }
}

/// Whether the builder can be released early: an on-demand instance this run launched.
fn releasable(cx: &Ctx) -> bool {
    cx.cfg.run.spot_price.as_deref().is_none_or(str::is_empty)
}

/// Terminates the builder and removes its temporary group and key pair, each as its step's cleanup would.
/// A failure is reported and left to those cleanups, which try again.
async fn release_builder(cx: &Ctx, st: &mut State) {
    cx.ui.say(
        &cx.name,
        "Every snapshot of the AMI exists: releasing the builder while the AMI completes",
    );
    let released = async {
        super::run_instance::terminate_builder(cx, st).await?;
        super::security_group::delete_temporary(cx, st).await?;
        super::key_pair::delete_temporary(cx, st).await
    }
    .await;
    if let Err(e) = released {
        cx.ui.error(
            &cx.name,
            &format!("Releasing the builder early failed ({e}); cleanup will try again"),
        );
    }
}

/// What the cleanup of an AMI removed, for the build's output.
pub(super) fn deleted_line(ami: &str, region: &str, snapshots: &[String]) -> String {
    if snapshots.is_empty() {
        format!("Deregistered AMI {ami} in {region} (it had no snapshot)")
    } else {
        format!(
            "Deregistered AMI {ami} in {region} and deleted its snapshots {}",
            snapshots.join(", ")
        )
    }
}
