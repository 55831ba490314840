//! `rollout gc`: AMI and launch-template-version retention that never removes an image in use.
//!
//! The AMIs considered are this account's (`Owners=self`) that match the selection (a name prefix and/or
//! tags; never none). The newest `keep` by CreationDate stay. Of the rest, an AMI is kept while anything in
//! the region references it: any launch template version (of every template; `resolve:ssm:` is resolved),
//! any launch configuration, any Auto Scaling group (launch template, mixed instances policy incl. its
//! overrides, launch configuration), any instance that is not terminated, any spot fleet request or EC2
//! Fleet (maintain/request) that may still launch, any spot instance request that is not closed.
//! A reference that cannot be resolved keeps every candidate: gc cannot tell what it points at. A removed
//! AMI is deregistered, then exactly the snapshots of its block-device mappings are deleted (a snapshot
//! another AMI still uses stays). The environment's own launch templates (tagged by rollout) keep their
//! newest `keep` versions, the default, the latest and every version a group or fleet references.
//! The AMI just deployed is never deregistered (as a deploy script that drops the previous image right
//! after the swap would): the live group needs it for every later scale-out and instance replacement.
//!
//! One file per job: [`crate::retention`] (which AMIs), `templates` (every launch template's versions and
//! images), `in_use` (what references AMIs), `launch_template_versions` (pruning), `plan` (the
//! candidates and why each stays), `deregister` (an AMI and exactly its snapshots), `report`.

mod deregister;
mod in_use;
mod launch_template_versions;
mod plan;
mod report;
mod templates;

pub use crate::retention::{GcConfig, Selection};
pub use report::{Action, AmiDecision, GcReport, KeptDecision, SnapshotDecision, VersionDecision};

use crate::config::RolloutConfig;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::manifest::{ManifestError, Problem};
use std::collections::BTreeSet;

/// What one `rollout gc` is asked to do (the command line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcRequest {
    /// `--keep N` (else the manifest's `gc.keep`).
    pub keep: Option<u32>,
    /// `--name-prefix`: with `--tag`, replaces the manifest's selection.
    pub name_prefix: Option<String>,
    /// `--tag K=V` (repeatable).
    pub tags: Vec<(String, String)>,
    /// `--dry-run`: read-only calls, report what would go.
    pub dry_run: bool,
}

/// A command-line problem, reported like a manifest problem of `field`.
fn usage_error(cfg: &RolloutConfig, field: &str, message: &str) -> RolloutError {
    RolloutError::Manifest(ManifestError {
        path: cfg.manifest_path.clone(),
        problems: vec![Problem {
            position: None,
            field: field.to_string(),
            message: message.to_string(),
        }],
    })
}

/// Neither `--keep` nor `gc.keep`: gc does not guess how many images a rollback may need.
pub fn missing_keep(cfg: &RolloutConfig) -> RolloutError {
    usage_error(
        cfg,
        "--keep",
        "missing: how many of the newest AMIs to keep (or gc.keep in the manifest)",
    )
}

/// The selection and `keep` of this run: the command line's, else the manifest's; never "every AMI of the
/// account".
fn what_to_keep(cfg: &RolloutConfig, req: &GcRequest) -> Result<(Selection, u32), RolloutError> {
    let selection = if req.name_prefix.is_some() || !req.tags.is_empty() {
        Selection {
            name_prefix: req.name_prefix.clone().filter(|p| !p.is_empty()),
            tags: req.tags.iter().cloned().collect(),
        }
    } else {
        cfg.gc.selection.clone()
    };
    if selection.is_empty() {
        return Err(usage_error(
            cfg,
            "--name-prefix/--tag",
            "select the app's AMIs by a name prefix or a tag",
        ));
    }
    let Some(keep) = req.keep.or(cfg.gc.keep) else {
        return Err(missing_keep(cfg));
    };
    Ok((selection, keep))
}

/// Fails as [`run`] would before any AWS request: no selection, or no `keep`.
pub fn check_request(cfg: &RolloutConfig, req: &GcRequest) -> Result<(), RolloutError> {
    what_to_keep(cfg, req).map(|_| ())
}

/// Runs `rollout gc` for the session's environment.
pub async fn run(cx: &Ctx, req: &GcRequest) -> Result<GcReport, RolloutError> {
    let cfg = &cx.cfg;
    let before = cx.requests.snapshot();
    let (selection, keep) = what_to_keep(cfg, req)?;
    cx.say(&format!(
        "Looking for AMIs {} and what uses them",
        selection.describe()
    ));

    let images = plan::owned_images(cx).await?;
    let mut templates = templates::scan(cx).await?;
    let mut usage = in_use::scan(cx, &templates).await?;
    if usage.unlisted_template {
        // A template (or version) made moments ago may not be listed yet — EC2 is eventually consistent,
        // and gc often runs right after a rollout. Ask again once the lists had time to catch up, before
        // "cannot tell" keeps every AMI.
        cx.say("A launch template in use is not listed yet: looking again in a few seconds");
        tokio::select! {
            () = tokio::time::sleep(bakery_core::propagation::NOT_FOUND_CONFIRMATION) => {}
            () = cx.cancel.cancelled() => return Err(RolloutError::Cancelled),
        }
        templates = templates::scan(cx).await?;
        usage = in_use::scan(cx, &templates).await?;
    }
    let mut problems: Vec<String> = usage
        .unresolved
        .iter()
        .map(|u| format!("cannot tell which AMI this references, so no AMI is removed: {u}"))
        .collect();

    // Launch template versions first: an AMI only a deleted version referenced is free in this run.
    let mut versions = launch_template_versions::decide(&templates, &usage, keep);
    if !req.dry_run && versions.iter().any(|v| v.action == Action::WouldRemove) {
        cx.say("Deleting old launch template versions");
        launch_template_versions::delete(cx, &mut versions, &mut problems).await;
    }
    let gone: BTreeSet<(String, i64)> = versions
        .iter()
        .filter(|v| matches!(v.action, Action::Removed | Action::WouldRemove))
        .map(|v| (v.template_id.clone(), v.version))
        .collect();

    let mut holders = deregister::SnapshotHolders::of(&images);
    let unfinished_snapshots =
        deregister::finish_interrupted(cx, &holders, req.dry_run, &mut problems).await?;
    let mut amis = Vec::new();
    for (rank, image) in plan::newest_first(&images, &selection)
        .into_iter()
        .enumerate()
    {
        let mut d = AmiDecision {
            id: image.image_id().unwrap_or_default().to_string(),
            name: image.name().map(str::to_string),
            created: image.creation_date().map(str::to_string),
            action: Action::Kept,
            reasons: plan::keep_reasons(rank, image, keep, &usage, &gone),
            snapshots: Vec::new(),
        };
        if d.reasons.is_empty() {
            deregister::remove(cx, image, &mut d, req.dry_run, &mut holders, &mut problems).await;
        }
        amis.push(d);
    }

    let after = cx.requests.snapshot();
    let aws_requests = after
        .into_iter()
        .filter_map(|(k, v)| {
            let n = v - before.get(&k).copied().unwrap_or(0);
            (n > 0).then_some((k, n))
        })
        .collect();
    Ok(GcReport {
        app: cfg.names.app.clone(),
        env: cfg.names.env.clone(),
        region: cx.clients.region.clone(),
        dry_run: req.dry_run,
        keep,
        selection,
        amis,
        launch_template_versions: versions,
        unfinished_snapshots,
        problems,
        kept_releases: Vec::new(),
        aws_requests,
    })
}
