//! Small EC2 helpers the steps share: tag specifications, filters, image descriptions, snapshot deletion.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use bakery_core::aws_err::{AwsError, AwsResultExt};
use std::collections::BTreeMap;

/// `TagSpecification` for `rt` with the given tags.
pub fn tag_spec(rt: ResourceType, tags: &[(String, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(to_tags(tags)))
        .build()
}

/// SDK tags from pairs.
pub fn to_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Pairs from a map, later entries of `extra` winning.
pub fn merge(base: &BTreeMap<String, String>, extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut m = base.clone();
    for (k, v) in extra {
        m.insert(k.clone(), v.clone());
    }
    m.into_iter().collect()
}

/// EC2 filters from Packer's `filters` map.
pub fn filters(map: &BTreeMap<String, String>) -> Vec<Filter> {
    map.iter()
        .map(|(k, v)| Filter::builder().name(k).values(v).build())
        .collect()
}

/// Snapshot ids in an image's block-device mappings: exactly what deregistering it frees, and nothing else
/// (never "all my snapshots": moto and real accounts hold others).
pub fn image_snapshots(img: &aws_sdk_ec2::types::Image) -> Vec<String> {
    img.block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect()
}

/// Deregisters an AMI and deletes exactly its snapshots. A missing AMI/snapshot counts as done.
pub async fn deregister_with_snapshots(
    ec2: &aws_sdk_ec2::Client,
    ami: &str,
    snapshots: &[String],
) -> Result<(), AwsError> {
    match ec2
        .deregister_image()
        .image_id(ami)
        .send()
        .await
        .aws("DeregisterImage")
    {
        Ok(_) => {}
        Err(e) if e.class() == bakery_core::aws::ErrorClass::NotFound => {}
        Err(e) => return Err(e),
    }
    for s in snapshots {
        match ec2
            .delete_snapshot()
            .snapshot_id(s)
            .send()
            .await
            .aws("DeleteSnapshot")
        {
            Ok(_) => {}
            Err(e) if e.class() == bakery_core::aws::ErrorClass::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
