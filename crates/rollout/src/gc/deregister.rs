//! Removing an AMI: deregistration, then exactly the snapshots of its block-device mappings — a snapshot
//! another image still holds stays. Before deregistering, the snapshots are tagged
//! `bakery:gc-pending=<AMI>`: a gc killed between the two leaves snapshots the next gc recognises (their
//! AMI gone, no image holding them) and deletes.

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

/// Marks a snapshot whose AMI gc is about to deregister.
const GC_PENDING_TAG: &str = "bakery:gc-pending";

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

    /// True when some image holds `snap`.
    fn held(&self, snap: &str) -> bool {
        self.0.get(snap).is_some_and(|h| !h.is_empty())
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
        let snaps = snapshots_of(image);
        if !snaps.is_empty()
            && let Err(e) = cx
                .clients
                .ec2
                .create_tags()
                .set_resources(Some(snaps))
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key(GC_PENDING_TAG)
                        .value(&id)
                        .build(),
                )
                .send()
                .await
                .aws("CreateTags")
        {
            // Without the mark, an interruption could orphan the snapshots: leave the AMI for now.
            d.action = Action::Failed;
            d.reasons.push(e.to_string());
            problems.push(format!("{id}: {e}"));
            return;
        }
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
    // AWS counts a snapshot in use for a while after its image is deregistered
    // (`InvalidSnapshot.InUse`): waited out, for up to 5 minutes.
    let gone = std::sync::atomic::AtomicBool::new(false);
    let out = crate::wait::while_busy(
        &format!("snapshot {snap} to be deletable"),
        std::time::Duration::from_secs(5 * 60),
        &cx.cancel_cleanup,
        || async {
            match cx
                .clients
                .ec2
                .delete_snapshot()
                .snapshot_id(&snap)
                .send()
                .await
                .aws("DeleteSnapshot")
            {
                Err(e) if e.is_not_found() => {
                    gone.store(true, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                }
                r => r.map(|_| ()),
            }
        },
    )
    .await;
    let (action, reason) = match out {
        Ok(()) if gone.load(std::sync::atomic::Ordering::Relaxed) => {
            (Action::Removed, Some("already gone".into()))
        }
        Ok(()) => (Action::Removed, None),
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

/// Deletes (with `dry_run`: lists) the snapshots an interrupted gc marked and did not delete: tagged
/// `bakery:gc-pending`, held by no image (their AMI was deregistered).
pub(super) async fn finish_interrupted(
    cx: &Ctx,
    holders: &SnapshotHolders,
    dry_run: bool,
    problems: &mut Vec<String>,
) -> Result<Vec<SnapshotDecision>, crate::error::RolloutError> {
    let out = cx
        .clients
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag-key")
                .values(GC_PENDING_TAG)
                .build(),
        )
        .send()
        .await
        .aws("DescribeSnapshots")?;
    let mut done = Vec::new();
    for s in out.snapshots() {
        let Some(snap) = s.snapshot_id() else {
            continue;
        };
        if holders.held(snap) {
            continue; // its AMI is still there: this gc decides about it again
        }
        let ami = s
            .tags()
            .iter()
            .find(|t| t.key() == Some(GC_PENDING_TAG))
            .and_then(|t| t.value())
            .unwrap_or("?")
            .to_string();
        done.push(if dry_run {
            SnapshotDecision {
                id: snap.to_string(),
                action: Action::WouldRemove,
                reason: Some(format!("of {ami}, deregistered")),
            }
        } else {
            let mut d = delete_snapshot(cx, snap.to_string(), &ami, problems).await;
            d.reason
                .get_or_insert_with(|| format!("of {ami}, deregistered"));
            d
        });
    }
    Ok(done)
}
