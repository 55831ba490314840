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
//! Regions: the environment's, plus `gc.regions` / `--regions` (where bake copied the AMIs), each decided
//! on its own by the same rules (its newest `keep`, its references, its snapshots). Of the AMIs that would
//! go, one with a launch permission for someone else (another account, an organization, the public)
//! stays unless `include_shared`; one EC2's `DescribeImageReferences` lists a reference to stays (where the
//! service offers the call; else gc's own scan decides alone, and the report says so). With
//! `deprecate_after`/`delete_after` an AMI is deprecated first and deregistered later.
//!
//! One file per job: [`crate::retention`] (which AMIs), `templates` (every launch template's versions and
//! images), `in_use` (what references AMIs), `launch_template_versions` (pruning), `plan` (the
//! candidates and why each stays), `shared` (launch permissions, EC2's image references), `deprecation`
//! (deprecate before deregistering), `deregister` (an AMI and exactly its snapshots), `report`.

mod deprecation;
mod deregister;
mod in_use;
mod launch_template_versions;
mod plan;
mod report;
mod shared;
mod templates;

pub use crate::retention::{GcConfig, Selection};
pub use report::{
    Action, AmiDecision, GcReport, ImageReferences, KeptDecision, RegionReport, SnapshotDecision,
    VersionDecision,
};

use crate::config::RolloutConfig;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::manifest::{ManifestError, Problem};
use aws_sdk_ec2::types::Image;
use deprecation::{Fate, Removal};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

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
    /// `--regions`: the regions gc works in besides the environment's, replacing the manifest's
    /// `gc.regions` (`None`: those).
    pub regions: Option<Vec<String>>,
    /// `--include-shared` (or the manifest's `gc.include_shared`): AMIs shared with other accounts may go.
    pub include_shared: bool,
    /// `--deprecate-after` (else `gc.deprecate_after`).
    pub deprecate_after: Option<Duration>,
    /// `--delete-after` (else `gc.delete_after`).
    pub delete_after: Option<Duration>,
    /// The time gc decides at (`None`: the clock). Tests set it to see what a later gc does; a
    /// deprecation time gc sets is still after the real clock, as AWS wants.
    pub now: Option<SystemTime>,
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

/// What this run keeps and how it removes: the command line's, else the manifest's.
#[derive(Debug, Clone)]
struct Settings {
    selection: Selection,
    keep: u32,
    include_shared: bool,
    removal: Removal,
    deprecate_after: Option<Duration>,
    delete_after: Option<Duration>,
    /// The decision time.
    now: SystemTime,
}

/// The selection and `keep` of this run (never "every AMI of the account"), and how AMIs go.
fn settings(cfg: &RolloutConfig, req: &GcRequest) -> Result<Settings, RolloutError> {
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
    if let Some(r) = req
        .regions
        .iter()
        .flatten()
        .find(|r| !crate::retention::is_region_name(r))
    {
        return Err(usage_error(
            cfg,
            "--regions",
            &format!("`{r}` is not a region name (us-west-2)"),
        ));
    }
    let deprecate_after = req.deprecate_after.or(cfg.gc.deprecate_after);
    let delete_after = req.delete_after.or(cfg.gc.delete_after);
    for (flag, d) in [
        ("--deprecate-after", deprecate_after),
        ("--delete-after", delete_after),
    ] {
        if d.is_some_and(|d| d > crate::retention::MAX_DEPRECATE_AFTER) {
            return Err(usage_error(
                cfg,
                flag,
                "more than AWS takes (a deprecation time at most 10 years ahead)",
            ));
        }
    }
    Ok(Settings {
        selection,
        keep,
        include_shared: req.include_shared || cfg.gc.include_shared,
        removal: Removal::of(deprecate_after, delete_after),
        deprecate_after,
        delete_after,
        now: req.now.unwrap_or_else(SystemTime::now),
    })
}

/// Fails as [`run`] would before any AWS request: no selection, no `keep`, a region that is not one.
pub fn check_request(cfg: &RolloutConfig, req: &GcRequest) -> Result<(), RolloutError> {
    settings(cfg, req).map(|_| ())
}

/// The regions gc works in besides `home` (the environment's): `--regions`, else `gc.regions`; once
/// each, in the order given.
pub fn other_regions(cfg: &RolloutConfig, req: &GcRequest, home: &str) -> Vec<String> {
    let mut seen = BTreeSet::from([home.to_string()]);
    req.regions
        .as_ref()
        .unwrap_or(&cfg.gc.regions)
        .iter()
        .filter(|r| seen.insert(r.to_string()))
        .cloned()
        .collect()
}

/// Runs `rollout gc` for the session's environment, in its region only.
pub async fn run(cx: &Ctx, req: &GcRequest) -> Result<GcReport, RolloutError> {
    run_regions(cx, &[], req).await
}

/// Runs `rollout gc` in the environment's region (`cx`) and then in each of `others` (the same
/// environment's context with another region's clients), one after the other.
pub async fn run_regions(
    cx: &Ctx,
    others: &[Ctx],
    req: &GcRequest,
) -> Result<GcReport, RolloutError> {
    let cfg = &cx.cfg;
    let before = cx.requests.snapshot();
    let s = settings(cfg, req)?;
    let mut problems = Vec::new();
    let home = run_region(cx, &s, req.dry_run, "", &mut problems).await?;
    let mut other_regions = Vec::new();
    for o in others {
        let region = o.clients.region.clone();
        let mut out = RegionReport::new(&region);
        match run_region(o, &s, req.dry_run, &format!("{region}: "), &mut problems).await {
            Ok(r) => out = r,
            Err(RolloutError::Cancelled) => return Err(RolloutError::Cancelled),
            Err(e) => problems.push(format!("{region}: {e}")),
        }
        other_regions.push(out);
    }
    Ok(GcReport {
        app: cfg.names.app.clone(),
        env: cfg.names.env.clone(),
        home,
        other_regions,
        dry_run: req.dry_run,
        keep: s.keep,
        selection: s.selection,
        include_shared: s.include_shared,
        deprecate_after: s.deprecate_after.map(crate::durations::human),
        delete_after: s.delete_after.map(crate::durations::human),
        problems,
        kept_releases: Vec::new(),
        aws_requests: delta(&before, &cx.requests.snapshot()),
    })
}

/// The requests sent between two snapshots of the counter.
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let n = v - before.get(k).copied().unwrap_or(0);
            (n > 0).then(|| (k.clone(), n))
        })
        .collect()
}

/// gc in `cx`'s region: scan, decide, act. `at` prefixes this region's problems (empty for the
/// environment's region).
async fn run_region(
    cx: &Ctx,
    s: &Settings,
    dry_run: bool,
    at: &str,
    problems: &mut Vec<String>,
) -> Result<RegionReport, RolloutError> {
    let before = cx.requests.snapshot();
    let region = cx.clients.region.clone();
    let mut report = RegionReport::new(&region);
    cx.say(&format!(
        "Looking for AMIs {} and what uses them{}",
        s.selection.describe(),
        if at.is_empty() {
            String::new()
        } else {
            format!(" in {region}")
        }
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
    problems.extend(
        usage.unresolved.iter().map(|u| {
            format!("{at}cannot tell which AMI this references, so no AMI is removed: {u}")
        }),
    );

    // Launch template versions first: an AMI only a deleted version referenced is free in this run.
    let mut versions = launch_template_versions::decide(&templates, &usage, s.keep);
    if !dry_run && versions.iter().any(|v| v.action == Action::WouldRemove) {
        cx.say("Deleting old launch template versions");
        let mut failed = Vec::new();
        launch_template_versions::delete(cx, &mut versions, &mut failed).await;
        problems.extend(failed.into_iter().map(|p| format!("{at}{p}")));
    }
    let gone: BTreeSet<(String, i64)> = versions
        .iter()
        .filter(|v| matches!(v.action, Action::Removed | Action::WouldRemove))
        .map(|v| (v.template_id.clone(), v.version))
        .collect();
    report.launch_template_versions = versions;

    let mut holders = deregister::SnapshotHolders::of(&images);
    let mut failed = Vec::new();
    report.unfinished_snapshots =
        deregister::finish_interrupted(cx, &holders, dry_run, &mut failed).await?;

    // Why each selected AMI stays; those with no reason may go.
    let selected = plan::newest_first(&images, &s.selection);
    let mut decisions: Vec<AmiDecision> = selected
        .iter()
        .enumerate()
        .map(|(rank, image)| AmiDecision {
            id: image.image_id().unwrap_or_default().to_string(),
            name: image.name().map(str::to_string),
            created: image.creation_date().map(str::to_string),
            action: Action::Kept,
            reasons: plan::keep_reasons(rank, image, s.keep, &usage, &gone),
            snapshots: Vec::new(),
            deprecation: image.deprecation_time().map(str::to_string),
            last_launched: image.last_launched_time().map(str::to_string),
            shared_with: Vec::new(),
        })
        .collect();
    if !s.include_shared {
        for d in decisions.iter_mut().filter(|d| d.reasons.is_empty()) {
            match shared::launch_permissions(cx, &d.id).await {
                Ok(grantees) if grantees.is_empty() => {}
                Ok(grantees) => {
                    d.reasons.push(shared::shared_reason(&grantees));
                    d.shared_with = grantees;
                }
                Err(e) => {
                    d.reasons
                        .push(format!("{CANNOT_TELL} whether it is shared (see problems)"));
                    failed.push(format!("{}: {e}", d.id));
                }
            }
        }
    }
    let candidates: Vec<String> = decisions
        .iter()
        .filter(|d| d.reasons.is_empty())
        .map(|d| d.id.clone())
        .collect();
    if !candidates.is_empty() {
        report.image_references = match shared::image_references(cx, &candidates).await {
            shared::References::Listed(refs) => {
                let n = refs.len();
                for (ami, why) in refs {
                    if let Some(d) = decisions.iter_mut().find(|d| d.id == ami) {
                        d.reasons.push(why);
                    }
                }
                ImageReferences::Checked {
                    images: candidates.len(),
                    references: n,
                }
            }
            shared::References::Unavailable(reason) => ImageReferences::Unavailable { reason },
            shared::References::Failed(e) => {
                for d in decisions.iter_mut().filter(|d| d.reasons.is_empty()) {
                    d.reasons.push(format!(
                        "{CANNOT_TELL} whether EC2 lists a reference to it (see problems)"
                    ));
                }
                failed.push(e.to_string());
                ImageReferences::Unavailable {
                    reason: e.to_string(),
                }
            }
        };
    }

    // Act: remove, deprecate, or cancel gc's deprecation of an AMI kept again.
    let clock = SystemTime::now();
    for (image, mut d) in selected.into_iter().zip(decisions) {
        act(
            cx,
            s,
            dry_run,
            clock,
            image,
            &mut d,
            &mut holders,
            &mut failed,
        )
        .await;
        report.amis.push(d);
    }
    problems.extend(failed.into_iter().map(|p| format!("{at}{p}")));
    report.region_aws_requests = delta(&before, &cx.requests.snapshot());
    Ok(report)
}

/// How a reason that is not a reason to keep starts: gc keeps what it cannot tell about.
const CANNOT_TELL: &str = "cannot tell";

/// Does what was decided for one selected AMI (with `dry_run`, says what it would do).
#[allow(clippy::too_many_arguments)]
async fn act(
    cx: &Ctx,
    s: &Settings,
    dry_run: bool,
    clock: SystemTime,
    image: &Image,
    d: &mut AmiDecision,
    holders: &mut deregister::SnapshotHolders,
    problems: &mut Vec<String>,
) {
    if !d.reasons.is_empty() {
        // Kept. An AMI gc deprecated that is kept for a reason (not only because gc cannot tell) is
        // usable again.
        let known = d.reasons.iter().any(|r| !r.starts_with(CANNOT_TELL));
        if known && deprecation::deprecated_by_gc(image) {
            if dry_run {
                d.action = Action::WouldUndeprecate;
                d.deprecation = None;
            } else {
                deprecation::undeprecate(cx, image, d, problems).await;
            }
        }
        return;
    }
    let fate = match s.removal {
        Removal::Now => Fate::Remove,
        Removal::Staged {
            deprecate_after,
            delete_after,
        } => deprecation::fate(image, deprecate_after, delete_after, s.now, clock),
    };
    match fate {
        Fate::Remove => deregister::remove(cx, image, d, dry_run, holders, problems).await,
        Fate::Wait(why) => {
            d.action = Action::Waiting;
            d.reasons.push(why);
        }
        Fate::Deprecate(at) => {
            let delete_after = match s.removal {
                Removal::Staged { delete_after, .. } => delete_after,
                Removal::Now => None,
            };
            d.reasons
                .push(deprecation::deprecating_reason(at, delete_after));
            d.deprecation = Some(deprecation::show(at));
            if dry_run {
                d.action = Action::WouldDeprecate;
            } else {
                deprecation::deprecate(cx, d, at, problems).await;
            }
        }
    }
}
