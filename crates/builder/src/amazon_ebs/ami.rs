//! What the AMI steps share: the tags of an AMI and its snapshots in a region, and the wait until an AMI is
//! available.

use super::state::{Ctx, State};
use crate::ec2::{image_snapshots, merge};
use crate::resource::Kind;
use aws_sdk_ec2::types::ImageState;
use bakery_core::aws::Clients;
use bakery_core::pipeline::StepError;
use bakery_core::poll::{Poll, Poller};

/// Tag pairs, in the order they are sent.
pub type Tags = Vec<(String, String)>;

/// Tags for the AMI (`tags`) and its snapshots (`tags` + `snapshot_tags`), rendered for `region`, plus
/// bakery's ownership tags.
pub fn image_tags(cx: &Ctx, st: &State, region: &str) -> Result<(Tags, Tags), StepError> {
    let mut late = st.late.clone();
    late.data.insert("BuildRegion".into(), region.to_string());
    let tags = cx
        .cfg
        .ami
        .tags
        .render(&late)
        .map_err(|e| StepError::msg(format!("tags: {e}")))?;
    let snap = cx
        .cfg
        .ami
        .snapshot_tags
        .render(&late)
        .map_err(|e| StepError::msg(format!("snapshot_tags: {e}")))?;
    let mut image = merge(&tags, &[]);
    image.extend(cx.ownership_tags("image"));
    let mut snapshot = merge(&tags, &snap.into_iter().collect::<Vec<_>>());
    snapshot.extend(cx.ownership_tags("snapshot"));
    Ok((image, snapshot))
}

/// Waits until an AMI is available in `clients`' region; returns its snapshot ids. Each snapshot is
/// journaled as soon as the AMI lists it (a pending AMI does), so an interrupted wait leaves nothing
/// unknown. The looks are shared with the other builds' AMI waits on the same client (one
/// DescribeImages per tick).
pub async fn wait_available(
    cx: &Ctx,
    clients: &Clients,
    ami: &str,
) -> Result<Vec<String>, StepError> {
    wait_available_telling(cx, clients, ami, None).await
}

/// True once every EBS volume of the image has its snapshot (AWS lists a snapshot's id in the pending
/// image as soon as the snapshot exists; from then on the source volume is no longer needed).
fn every_snapshot_exists(img: &aws_sdk_ec2::types::Image) -> bool {
    let ebs: Vec<_> = img
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs())
        .collect();
    !ebs.is_empty() && ebs.iter().all(|e| e.snapshot_id().is_some())
}

/// [`wait_available`], telling `snapshots_exist` as soon as every snapshot of the image exists.
pub async fn wait_available_telling(
    cx: &Ctx,
    clients: &Clients,
    ami: &str,
    snapshots_exist: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<Vec<String>, StepError> {
    let snapshots_exist = std::sync::Mutex::new(snapshots_exist);
    let region = &clients.region;
    let progress = cx.ui.progress(
        &cx.name,
        &format!("Waiting for AMI {ami} in {region} to become ready"),
    );
    let waits = cx.ec2_waits(clients);
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let snaps = cx
        .poller(Poller::image_available())
        .wait_batched(
            &format!("AMI {ami} to become available"),
            &cx.cancel,
            |s, t| progress.state(s, t),
            &waits.images,
            ami,
            |img| {
                let mut known = seen.lock().unwrap_or_else(|e| e.into_inner());
                for s in image_snapshots(&img) {
                    if !known.contains(&s) {
                        cx.created(Kind::Snapshot, region, &s);
                        known.push(s);
                    }
                }
                if every_snapshot_exists(&img)
                    && let Some(tx) = snapshots_exist
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take()
                {
                    let _ = tx.send(());
                }
                match img.state() {
                    Some(ImageState::Available) => Poll::Ready(image_snapshots(&img)),
                    Some(
                        s @ (ImageState::Failed
                        | ImageState::Error
                        | ImageState::Deregistered
                        | ImageState::Invalid),
                    ) => Poll::Failed(format!(
                        "{} ({})",
                        s.as_str(),
                        img.state_reason()
                            .and_then(|r| r.message())
                            .unwrap_or("no reason given")
                    )),
                    Some(s) => Poll::Pending(s.as_str().to_string()),
                    None => Poll::Pending("unknown".into()),
                }
            },
        )
        .await?;
    progress.finish(&format!("AMI {ami} is available in {region}"));
    Ok(snaps)
}
