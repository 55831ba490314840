//! Removing an AMI: deregistration, then exactly the snapshots of its block-device mappings — a snapshot
//! another image still holds stays.

use super::report::{Action, AmiDecision, SnapshotDecision};
use crate::context::Ctx;
use crate::error::AwsResultExt;
use aws_sdk_ec2::types::Image;
use std::collections::{BTreeMap, BTreeSet};

/// The snapshots of an image's block-device mappings.
fn snapshots_of(image: &Image) -> Vec<String> {
    image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
        .map(str::to_string)
        .collect()
}

/// Which images hold each snapshot, updated as images go.
pub(super) struct SnapshotHolders(BTreeMap<String, BTreeSet<String>>);

impl SnapshotHolders {
    /// The holders among `images` (all of the account's, selected or not).
    pub(super) fn of(images: &[Image]) -> Self {
        let mut holders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for i in images {
            for s in snapshots_of(i) {
                holders
                    .entry(s)
                    .or_default()
                    .insert(i.image_id().unwrap_or_default().to_string());
            }
        }
        SnapshotHolders(holders)
    }

    /// Drops `image` as a holder of `snap`; returns the images that still hold it.
    fn release(&mut self, snap: &str, image: &str) -> Vec<String> {
        self.0
            .get_mut(snap)
            .map(|h| {
                h.remove(image);
                h.iter().cloned().collect()
            })
            .unwrap_or_default()
    }
}

/// Deregisters `image` and deletes its snapshots that nothing else holds (with `dry_run`: decides only),
/// recording the outcome in `d` and what failed in `problems`.
pub(super) async fn remove(
    cx: &Ctx,
    image: &Image,
    d: &mut AmiDecision,
    dry_run: bool,
    holders: &mut SnapshotHolders,
    problems: &mut Vec<String>,
) {
    let id = d.id.clone();
    if dry_run {
        d.action = Action::WouldRemove;
    } else {
        cx.say(&format!("Deregistering {id}"));
        match cx
            .clients
            .ec2
            .deregister_image()
            .image_id(&id)
            .send()
            .await
            .aws("DeregisterImage")
        {
            Ok(_) => d.action = Action::Removed,
            // Gone already (another gc): its snapshots are still ours to check.
            Err(e) if e.is_not_found() => d.action = Action::Removed,
            Err(e) => {
                d.action = Action::Failed;
                d.reasons.push(e.to_string());
                problems.push(format!("{id}: {e}"));
                return;
            }
        }
    }
    for snap in snapshots_of(image) {
        let others = holders.release(&snap, &id);
        let decision = if !others.is_empty() {
            SnapshotDecision {
                id: snap,
                action: Action::Kept,
                reason: Some(format!("still used by {}", others.join(", "))),
            }
        } else if dry_run {
            SnapshotDecision {
                id: snap,
                action: Action::WouldRemove,
                reason: None,
            }
        } else {
            delete_snapshot(cx, snap, &id, problems).await
        };
        d.snapshots.push(decision);
    }
}

/// Deletes snapshot `snap` of image `image`.
async fn delete_snapshot(
    cx: &Ctx,
    snap: String,
    image: &str,
    problems: &mut Vec<String>,
) -> SnapshotDecision {
    let out = cx
        .clients
        .ec2
        .delete_snapshot()
        .snapshot_id(&snap)
        .send()
        .await
        .aws("DeleteSnapshot");
    let (action, reason) = match out {
        Ok(_) => (Action::Removed, None),
        Err(e) if e.is_not_found() => (Action::Removed, Some("already gone".into())),
        Err(e) => {
            problems.push(format!("snapshot {snap} of {image}: {e}"));
            (Action::Failed, Some(e.to_string()))
        }
    };
    SnapshotDecision {
        id: snap,
        action,
        reason,
    }
}
