//! Finding candidates: this account's AMIs, the selected ones newest first, and why each one stays (the
//! newest `keep`, still pending, in use, or gc cannot tell).

use super::in_use::Usage;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::retention::Selection;
use aws_sdk_ec2::types::Image;
use std::collections::BTreeSet;

/// This account's AMIs in the region (all of them: the snapshot check needs the unselected ones too).
pub(super) async fn owned_images(cx: &Ctx) -> Result<Vec<Image>, RolloutError> {
    let mut images = Vec::new();
    let mut pages = cx
        .clients
        .ec2
        .describe_images()
        .owners("self")
        .include_deprecated(true)
        .include_disabled(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        images.extend(page.aws("DescribeImages")?.images().iter().cloned());
    }
    Ok(images)
}

/// The images `selection` matches, newest first; the id breaks ties (CreationDate has second resolution on
/// some services).
pub(super) fn newest_first<'a>(images: &'a [Image], selection: &Selection) -> Vec<&'a Image> {
    let mut selected: Vec<&Image> = images.iter().filter(|i| selection.matches(i)).collect();
    selected.sort_by(|a, b| {
        // Ties (a second's resolution, as moto's) go by name: baked names usually end in a timestamp.
        b.creation_date()
            .cmp(&a.creation_date())
            .then_with(|| b.name().cmp(&a.name()))
            .then_with(|| b.image_id().cmp(&a.image_id()))
    });
    selected
}

/// Why the selected `image` at `rank` (0: newest) stays; empty when it can go. A use through a launch
/// template version in `gone` (deleted, or to be deleted, by this run) no longer counts.
pub(super) fn keep_reasons(
    rank: usize,
    image: &Image,
    keep: u32,
    usage: &Usage,
    gone: &BTreeSet<(String, i64)>,
) -> Vec<String> {
    let id = image.image_id().unwrap_or_default();
    let mut reasons = Vec::new();
    if (rank as u32) < keep {
        reasons.push(format!("newest {keep}"));
    }
    if image.state().map(|s| s.as_str()) == Some("pending") {
        reasons.push("pending (still being created)".to_string());
    }
    for u in usage.by_ami.get(id).into_iter().flatten() {
        if u.via_version.as_ref().is_none_or(|v| !gone.contains(v)) {
            reasons.push(u.reason.clone());
        }
    }
    if reasons.is_empty() && !usage.unresolved.is_empty() {
        reasons.push("cannot tell whether it is in use (see problems)".to_string());
    }
    reasons
}
