//! Step 11: copy the AMI to `ami_regions`, all regions at once, each copy tagged with `tags` rendered for
//! its region. Cleanup only on failure: deregister the copies and delete their snapshots.

use super::ami::{image_tags, wait_available};
use super::state::{Ctx, State};
use crate::resource::{Kind, remove_image};
use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::{Outcome, Step, StepError};
use bakery_core::tags::ec2_tag_spec;
use std::sync::Mutex;

/// Copies the AMI to other regions.
#[derive(Default)]
pub struct CopyRegions {
    created: Mutex<Vec<(String, String, Vec<String>)>>,
}

impl CopyRegions {
    async fn copy_one(
        &self,
        cx: &Ctx,
        st: &State,
        region: String,
    ) -> Result<(String, String, Vec<String>), StepError> {
        let ami = st
            .amis
            .get(cx.region())
            .ok_or_else(|| StepError::msg("no AMI"))?;
        let c = cx.clients_in(&region);
        let kms = cx
            .cfg
            .ami
            .region_kms_key_ids
            .get(&region)
            .cloned()
            .filter(|s| !s.is_empty());
        let encrypted = cx.cfg.ami.encrypt_boot == Some(true) || kms.is_some();
        cx.ui.message(&cx.name, &format!("Copying to: {region}"));
        let (itags, stags) = image_tags(cx, st, &region)?;
        let token = cx.client_token(&format!("copy-{region}"));
        let req = c
            .ec2
            .copy_image()
            .source_image_id(ami)
            .source_region(cx.region())
            .name(&cx.cfg.ami.ami_name)
            .set_encrypted(encrypted.then_some(true))
            .set_kms_key_id(kms)
            // Time-based copy: AWS finishes the snapshots' copy within this many minutes (billed).
            .set_snapshot_copy_completion_duration_minutes(
                cx.cfg.ami.snapshot_copy_duration_minutes.filter(|m| *m > 0),
            )
            .client_token(&token)
            .tag_specifications(ec2_tag_spec(ResourceType::Image, &itags))
            .tag_specifications(ec2_tag_spec(ResourceType::Snapshot, &stags));
        let out = cx
            .create(Kind::Image, &region, Some(&token), async {
                req.send().await.aws("CopyImage")
            })
            .await?;
        let copy = out
            .image_id()
            .ok_or_else(|| StepError::msg("CopyImage returned no id"))?
            .to_string();
        cx.created(Kind::Image, &region, &copy);
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((region.clone(), copy.clone(), vec![]));
        let snaps = wait_available(cx, &c, &copy).await?;
        if let Some(e) = self
            .created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
            .find(|(_, id, _)| *id == copy)
        {
            e.2 = snaps.clone();
        }
        Ok((region, copy, snaps))
    }
}

/// The regions the AMI is copied to: `ami_regions` other than the build region, sorted, once each.
fn copy_regions(cx: &Ctx) -> Vec<String> {
    let mut regions: Vec<String> = cx
        .cfg
        .ami
        .ami_regions
        .iter()
        .filter(|r| !r.is_empty() && r.as_str() != cx.region())
        .cloned()
        .collect();
    regions.sort();
    regions.dedup();
    regions
}

#[async_trait]
impl Step<Ctx, State> for CopyRegions {
    fn name(&self) -> &'static str {
        "copy-regions"
    }

    async fn plan(&self, cx: &Ctx, _st: &mut State) -> Result<Vec<String>, StepError> {
        let regions = copy_regions(cx);
        if cx.cfg.skip_create_ami || regions.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![format!(
            "would copy AMI {:?} to {}",
            cx.cfg.ami.ami_name,
            regions.join(", ")
        )])
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        if !st.amis.contains_key(cx.region()) {
            return Ok(());
        }
        let regions = copy_regions(cx);
        if regions.is_empty() {
            return Ok(());
        }
        cx.ui.say(
            &cx.name,
            &format!(
                "Copying/Encrypting AMI to other regions: {}",
                regions.join(", ")
            ),
        );
        let this = &*self;
        let stv = &*st;
        let results =
            crate::util::join_all(regions.into_iter().map(|r| this.copy_one(cx, stv, r))).await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok((region, ami, snaps)) => {
                    st.amis.insert(region.clone(), ami);
                    st.snapshots.insert(region, snaps);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn cleanup(
        &mut self,
        cx: &Ctx,
        _st: &mut State,
        outcome: Outcome,
    ) -> Result<(), StepError> {
        let created = std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        for (region, ami, snaps) in created {
            if outcome.succeeded() {
                cx.kept(Kind::Image, &region, &ami);
                for s in &snaps {
                    cx.kept(Kind::Snapshot, &region, s);
                }
                continue;
            }
            let c = cx.clients_in(&region);
            cx.ui.say(
                &cx.name,
                &format!(
                    "Deregistering the AMI copy {ami} in {region} and deleting its snapshots..."
                ),
            );
            let gone = remove_image(&c.ec2, &ami, &snaps, &cx.cancel_cleanup).await?;
            cx.removed(Kind::Image, &region, &ami);
            for s in &gone {
                cx.removed(Kind::Snapshot, &region, s);
            }
            cx.ui.message(
                &cx.name,
                &super::create_ami::deleted_line(&ami, &region, &gone),
            );
        }
        Ok(())
    }
}
