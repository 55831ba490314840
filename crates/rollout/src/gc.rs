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
//! Unlike seed 004's deploy script, the AMI just deployed is never deregistered: the live group needs it
//! for every later scale-out and instance replacement.

use crate::ami::is_ami_id;
use crate::config::RolloutConfig;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::manifest::{ManifestError, Problem};
use aws_sdk_ec2::types::{Filter, Image};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::retention::{GcConfig, Selection};

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

/// What happened (or would happen) to one thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Stays.
    Kept,
    /// Deregistered / deleted.
    Removed,
    /// `--dry-run`: would be removed.
    WouldRemove,
    /// Removing it failed (see `problems`).
    Failed,
}

impl Action {
    fn label(self) -> &'static str {
        match self {
            Action::Kept => "kept",
            Action::Removed => "removed",
            Action::WouldRemove => "would remove",
            Action::Failed => "FAILED",
        }
    }
}

/// A snapshot of a removed AMI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotDecision {
    /// `snap-...`.
    pub id: String,
    /// Deleted, would be deleted, kept or failed.
    pub action: Action,
    /// Why it was kept or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One selected AMI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmiDecision {
    /// `ami-...`.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// CreationDate as AWS gives it.
    pub created: Option<String>,
    /// What gc did.
    pub action: Action,
    /// Why it was kept (`newest 5`, `in use by asg X`), or why removing failed.
    pub reasons: Vec<String>,
    /// For a removed AMI: its block-device mappings' snapshots.
    pub snapshots: Vec<SnapshotDecision>,
}

/// One version of one of the environment's launch templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionDecision {
    /// `lt-...`.
    pub template_id: String,
    /// Its name.
    pub template_name: String,
    /// The version number.
    pub version: i64,
    /// What gc did.
    pub action: Action,
    /// Why it was kept.
    pub reasons: Vec<String>,
}

/// What `rollout gc` did, as data (`--json`) and as a summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GcReport {
    /// App.
    pub app: String,
    /// Environment.
    pub env: String,
    /// Region.
    pub region: String,
    /// `--dry-run`.
    pub dry_run: bool,
    /// Newest AMIs (and launch template versions) kept.
    pub keep: u32,
    /// The AMI selection.
    pub selection: Selection,
    /// Every selected AMI, newest first.
    pub amis: Vec<AmiDecision>,
    /// The environment's launch template versions.
    pub launch_template_versions: Vec<VersionDecision>,
    /// What needs attention (also: exit code 1).
    pub problems: Vec<String>,
    /// Requests sent, by `Service.Operation`.
    pub aws_requests: BTreeMap<String, u64>,
}

impl GcReport {
    /// AMIs removed (or that would be).
    pub fn removed(&self) -> Vec<&str> {
        self.amis
            .iter()
            .filter(|a| matches!(a.action, Action::Removed | Action::WouldRemove))
            .map(|a| a.id.as_str())
            .collect()
    }

    /// The summary people read.
    pub fn render(&self) -> String {
        let removed = self.removed().len();
        let kept = self
            .amis
            .iter()
            .filter(|a| a.action == Action::Kept)
            .count();
        let mut s = format!(
            "GC of {}/{} in {}{}: AMIs {} owned by this account, keep newest {}: {removed} {}, {kept} kept ({} AWS requests)\n",
            self.app,
            self.env,
            self.region,
            if self.dry_run { " (dry run)" } else { "" },
            self.selection.describe(),
            self.keep,
            if self.dry_run { "to remove" } else { "removed" },
            self.aws_requests.values().sum::<u64>()
        );
        for a in &self.amis {
            s.push_str(&format!(
                "  {:<12} {} {} ({})",
                a.action.label(),
                a.id,
                a.name.as_deref().unwrap_or("(no name)"),
                a.created.as_deref().unwrap_or("?")
            ));
            if !a.reasons.is_empty() {
                s.push_str(&format!(": {}", a.reasons.join("; ")));
            }
            if !a.snapshots.is_empty() {
                let snaps: Vec<String> = a
                    .snapshots
                    .iter()
                    .map(|sn| {
                        let what = match sn.action {
                            Action::Removed => "deleted",
                            Action::WouldRemove => "would be deleted",
                            other => other.label(),
                        };
                        match &sn.reason {
                            Some(r) => format!("{} {what} ({r})", sn.id),
                            None => format!("{} {what}", sn.id),
                        }
                    })
                    .collect();
                s.push_str(&format!("; snapshots: {}", snaps.join(", ")));
            }
            s.push('\n');
        }
        if self.amis.is_empty() {
            s.push_str("  (no AMI matches)\n");
        }
        if !self.launch_template_versions.is_empty() {
            s.push_str("Launch template versions:\n");
            for v in &self.launch_template_versions {
                s.push_str(&format!(
                    "  {:<12} {} ({}) version {}",
                    v.action.label(),
                    v.template_name,
                    v.template_id,
                    v.version
                ));
                if !v.reasons.is_empty() {
                    s.push_str(&format!(": {}", v.reasons.join("; ")));
                }
                s.push('\n');
            }
        }
        if !self.problems.is_empty() {
            s.push_str("Problems:\n");
            for p in &self.problems {
                s.push_str(&format!("  - {p}\n"));
            }
        }
        s
    }
}

/// A reference to an AMI, and the launch template version it comes through (if any): such a reference
/// lapses when gc deletes that version.
#[derive(Debug, Clone)]
struct Use {
    reason: String,
    via_version: Option<(String, i64)>,
}

/// A launch template with every version's image (`Err`: a reference that could not be resolved).
#[derive(Debug, Clone)]
struct Template {
    id: String,
    name: String,
    default: i64,
    latest: i64,
    ours: bool,
    versions: BTreeMap<i64, Option<Result<String, String>>>,
}

/// What references AMIs and launch template versions in the region.
#[derive(Debug, Default)]
struct Usage {
    by_ami: BTreeMap<String, Vec<Use>>,
    /// References gc cannot resolve: while any exists, no AMI is removed.
    unresolved: Vec<String>,
    /// Launch template (id) version → who references it (groups, fleets).
    versions: BTreeMap<(String, i64), Vec<String>>,
}

impl Usage {
    fn add(&mut self, ami: &str, reason: String, via_version: Option<(String, i64)>) {
        self.by_ami.entry(ami.to_string()).or_default().push(Use {
            reason,
            via_version,
        });
    }
}

/// Resolves a launch template reference (id or name, `$Latest`/`$Default`/number, default when absent)
/// against the scanned templates; records the version's users and its AMI.
fn reference_template(
    templates: &[Template],
    usage: &mut Usage,
    who: &str,
    id: Option<&str>,
    name: Option<&str>,
    version: Option<&str>,
) {
    let Some(t) = templates
        .iter()
        .find(|t| Some(t.id.as_str()) == id || Some(t.name.as_str()) == name)
    else {
        usage.unresolved.push(format!(
            "{who}: launch template {} was not found",
            id.or(name).unwrap_or("(unnamed)")
        ));
        return;
    };
    let n = match version.unwrap_or("$Default") {
        "$Latest" => Some(t.latest),
        "$Default" => Some(t.default),
        v => v.parse::<i64>().ok(),
    };
    let Some(n) = n else {
        usage.unresolved.push(format!(
            "{who}: launch template {} version {} is not a version",
            t.name,
            version.unwrap_or_default()
        ));
        return;
    };
    usage
        .versions
        .entry((t.id.clone(), n))
        .or_default()
        .push(who.to_string());
    match t.versions.get(&n) {
        Some(Some(Ok(ami))) => {
            usage.add(
                ami,
                format!("in use by {who} (launch template {} version {n})", t.name),
                None,
            );
        }
        // Unresolvable images are already listed by the template scan; no image: nothing to protect.
        Some(_) => {}
        None => usage.unresolved.push(format!(
            "{who}: launch template {} has no version {n}",
            t.name
        )),
    }
}

/// `resolve:ssm:NAME[:VERSION]` or an AMI id → the AMI id, or why it cannot be told.
async fn resolve_image_ref(
    cx: &Ctx,
    raw: &str,
    cache: &mut BTreeMap<String, Result<String, String>>,
) -> Result<String, String> {
    if is_ami_id(raw) {
        return Ok(raw.to_string());
    }
    if let Some(hit) = cache.get(raw) {
        return hit.clone();
    }
    let result = match raw.strip_prefix("resolve:ssm:") {
        None => Err(format!("`{raw}` is not an AMI id")),
        Some(name) => match cx
            .clients
            .ssm
            .get_parameter()
            .name(name)
            .send()
            .await
            .aws("GetParameter")
        {
            Ok(out) => {
                let v = out
                    .parameter()
                    .and_then(|p| p.value())
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if is_ami_id(&v) {
                    Ok(v)
                } else {
                    Err(format!("SSM parameter {name} holds `{v}`, not an AMI id"))
                }
            }
            Err(e) if e.is_not_found() => Err(format!("SSM parameter {name} does not exist")),
            Err(e) => Err(e.to_string()),
        },
    };
    cache.insert(raw.to_string(), result.clone());
    result
}

/// Every launch template in the region with every version's image.
async fn scan_templates(cx: &Ctx) -> Result<Vec<Template>, RolloutError> {
    let ec2 = &cx.clients.ec2;
    let mut templates = Vec::new();
    let mut pages = ec2.describe_launch_templates().into_paginator().send();
    while let Some(page) = pages.next().await {
        for lt in page.aws("DescribeLaunchTemplates")?.launch_templates() {
            let tag = |k: &str| {
                lt.tags()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
            };
            let ours = tag(bakery_core::tags::MANAGED) == Some("true")
                && tag(crate::names::APP_TAG) == Some(cx.cfg.names.app.as_str())
                && tag(crate::names::ENV_TAG) == Some(cx.cfg.names.env.as_str());
            templates.push(Template {
                id: lt.launch_template_id().unwrap_or_default().to_string(),
                name: lt.launch_template_name().unwrap_or_default().to_string(),
                default: lt.default_version_number().unwrap_or(1),
                latest: lt.latest_version_number().unwrap_or(1),
                ours,
                versions: BTreeMap::new(),
            });
        }
    }
    let mut ssm_cache = BTreeMap::new();
    for t in &mut templates {
        let mut pages = ec2
            .describe_launch_template_versions()
            .launch_template_id(&t.id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page.aws("DescribeLaunchTemplateVersions") {
                Ok(p) => p,
                // Deleted between the two calls: nothing references it any more.
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(e.into()),
            };
            for v in page.launch_template_versions() {
                let Some(n) = v.version_number() else {
                    continue;
                };
                let image = match v.launch_template_data().and_then(|d| d.image_id()) {
                    None => None,
                    Some(raw) => Some(resolve_image_ref(cx, raw, &mut ssm_cache).await),
                };
                t.versions.insert(n, image);
            }
        }
    }
    Ok(templates)
}

/// Everything in the region that references an AMI.
async fn scan_usage(cx: &Ctx, templates: &[Template]) -> Result<Usage, RolloutError> {
    let mut usage = Usage::default();
    for t in templates {
        for (n, image) in &t.versions {
            match image {
                Some(Ok(ami)) => usage.add(
                    ami,
                    format!("in use by launch template {} version {n}", t.name),
                    Some((t.id.clone(), *n)),
                ),
                Some(Err(why)) => usage
                    .unresolved
                    .push(format!("launch template {} version {n}: {why}", t.name)),
                None => {}
            }
        }
    }

    let asc = &cx.clients.autoscaling;
    let mut configs: BTreeMap<String, String> = BTreeMap::new();
    let mut pages = asc.describe_launch_configurations().into_paginator().send();
    while let Some(page) = pages.next().await {
        for lc in page
            .aws("DescribeLaunchConfigurations")?
            .launch_configurations()
        {
            let name = lc.launch_configuration_name().unwrap_or_default();
            if let Some(ami) = lc.image_id() {
                configs.insert(name.to_string(), ami.to_string());
                usage.add(ami, format!("in use by launch configuration {name}"), None);
            }
        }
    }

    let mut pages = asc.describe_auto_scaling_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        for g in page.aws("DescribeAutoScalingGroups")?.auto_scaling_groups() {
            let who = format!("asg {}", g.auto_scaling_group_name().unwrap_or_default());
            if let Some(lc) = g.launch_configuration_name() {
                match configs.get(lc) {
                    Some(ami) => usage.add(
                        ami,
                        format!("in use by {who} (launch configuration {lc})"),
                        None,
                    ),
                    None => usage
                        .unresolved
                        .push(format!("{who}: launch configuration {lc} was not found")),
                }
            }
            let mut specs = Vec::new();
            if let Some(s) = g.launch_template() {
                specs.push(s.clone());
            }
            if let Some(lt) = g.mixed_instances_policy().and_then(|p| p.launch_template()) {
                specs.extend(lt.launch_template_specification().cloned());
                for o in lt.overrides() {
                    specs.extend(o.launch_template_specification().cloned());
                    if let Some(ami) = o.image_id() {
                        usage.add(
                            ami,
                            format!("in use by {who} (mixed instances override)"),
                            None,
                        );
                    }
                }
            }
            for s in specs {
                reference_template(
                    templates,
                    &mut usage,
                    &who,
                    s.launch_template_id(),
                    s.launch_template_name(),
                    s.version(),
                );
            }
        }
    }

    let ec2 = &cx.clients.ec2;
    let mut pages = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "stopping", "stopped", "shutting-down"]
                        .map(String::from)
                        .to_vec(),
                ))
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for r in page.aws("DescribeInstances")?.reservations() {
            for i in r.instances() {
                if let Some(ami) = i.image_id() {
                    let state = i
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str())
                        .unwrap_or("?");
                    usage.add(
                        ami,
                        format!(
                            "in use by instance {} ({state})",
                            i.instance_id().unwrap_or_default()
                        ),
                        None,
                    );
                }
            }
        }
    }

    let mut pages = ec2.describe_spot_fleet_requests().into_paginator().send();
    while let Some(page) = pages.next().await {
        for f in page
            .aws("DescribeSpotFleetRequests")?
            .spot_fleet_request_configs()
        {
            use aws_sdk_ec2::types::BatchState;
            // A cancelled fleet (even one whose instances still run) and a failed one launch nothing more;
            // their instances are covered above. Any other state (also an unknown one) may launch.
            if matches!(
                f.spot_fleet_request_state(),
                Some(
                    BatchState::Cancelled
                        | BatchState::CancelledRunning
                        | BatchState::CancelledTerminatingInstances
                        | BatchState::Failed
                )
            ) {
                continue;
            }
            let who = format!(
                "spot fleet {}",
                f.spot_fleet_request_id().unwrap_or_default()
            );
            let Some(c) = f.spot_fleet_request_config() else {
                continue;
            };
            for spec in c.launch_specifications() {
                if let Some(ami) = spec.image_id() {
                    usage.add(ami, format!("in use by {who}"), None);
                }
            }
            for ltc in c.launch_template_configs() {
                if let Some(s) = ltc.launch_template_specification() {
                    reference_template(
                        templates,
                        &mut usage,
                        &who,
                        s.launch_template_id(),
                        s.launch_template_name(),
                        s.version(),
                    );
                }
            }
        }
    }
    // EC2 Fleets of type maintain/request launch again; an instant fleet never does (its instances, if
    // any, are covered above), nor does a deleted or failed one.
    let mut pages = ec2.describe_fleets().into_paginator().send();
    while let Some(page) = pages.next().await {
        for f in page.aws("DescribeFleets")?.fleets() {
            use aws_sdk_ec2::types::{FleetStateCode, FleetType};
            if matches!(f.r#type(), Some(FleetType::Instant))
                || matches!(
                    f.fleet_state(),
                    Some(
                        FleetStateCode::Deleted
                            | FleetStateCode::DeletedRunning
                            | FleetStateCode::DeletedTerminatingInstances
                            | FleetStateCode::Failed
                    )
                )
            {
                continue;
            }
            let who = format!("fleet {}", f.fleet_id().unwrap_or_default());
            for c in f.launch_template_configs() {
                if let Some(s) = c.launch_template_specification() {
                    reference_template(
                        templates,
                        &mut usage,
                        &who,
                        s.launch_template_id(),
                        s.launch_template_name(),
                        s.version(),
                    );
                }
                for o in c.overrides() {
                    if let Some(ami) = o.image_id() {
                        usage.add(ami, format!("in use by {who} (override)"), None);
                    }
                }
            }
        }
    }

    // A persistent spot request relaunches from its launch specification; one-time requests that are
    // closed, cancelled or failed launch nothing more.
    let mut pages = ec2
        .describe_spot_instance_requests()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for r in page
            .aws("DescribeSpotInstanceRequests")?
            .spot_instance_requests()
        {
            use aws_sdk_ec2::types::SpotInstanceState;
            if matches!(
                r.state(),
                Some(
                    SpotInstanceState::Closed
                        | SpotInstanceState::Cancelled
                        | SpotInstanceState::Failed
                )
            ) {
                continue;
            }
            if let Some(ami) = r.launch_specification().and_then(|l| l.image_id()) {
                usage.add(
                    ami,
                    format!(
                        "in use by spot request {}",
                        r.spot_instance_request_id().unwrap_or_default()
                    ),
                    None,
                );
            }
        }
    }
    Ok(usage)
}

/// This account's AMIs in the region (all of them: the snapshot check needs the unselected ones too).
async fn owned_images(cx: &Ctx) -> Result<Vec<Image>, RolloutError> {
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

fn snapshots_of(image: &Image) -> Vec<String> {
    image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
        .map(str::to_string)
        .collect()
}

/// The launch template versions of the environment's templates, decided (not yet deleted).
fn decide_versions(templates: &[Template], usage: &Usage, keep: u32) -> Vec<VersionDecision> {
    let mut out = Vec::new();
    for t in templates.iter().filter(|t| t.ours) {
        for (rank, n) in t.versions.keys().rev().enumerate() {
            let mut reasons = Vec::new();
            if *n == t.default {
                reasons.push("default version".to_string());
            }
            if *n == t.latest {
                reasons.push("latest version".to_string());
            }
            if let Some(users) = usage.versions.get(&(t.id.clone(), *n)) {
                reasons.extend(users.iter().map(|u| format!("in use by {u}")));
            }
            if (rank as u32) < keep {
                reasons.push(format!("newest {keep}"));
            }
            out.push(VersionDecision {
                template_id: t.id.clone(),
                template_name: t.name.clone(),
                version: *n,
                action: if reasons.is_empty() {
                    Action::WouldRemove
                } else {
                    Action::Kept
                },
                reasons,
            });
        }
    }
    out
}

/// Deletes the versions decided for removal, per template, up to 200 a call.
async fn delete_versions(cx: &Ctx, decisions: &mut [VersionDecision], problems: &mut Vec<String>) {
    let mut by_template: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, d) in decisions.iter().enumerate() {
        if d.action == Action::WouldRemove {
            by_template
                .entry(d.template_id.clone())
                .or_default()
                .push(i);
        }
    }
    for (id, idx) in by_template {
        for chunk in idx.chunks(200) {
            let versions: Vec<String> = chunk
                .iter()
                .map(|&i| decisions[i].version.to_string())
                .collect();
            let out = cx
                .clients
                .ec2
                .delete_launch_template_versions()
                .launch_template_id(&id)
                .set_versions(Some(versions))
                .send()
                .await
                .aws("DeleteLaunchTemplateVersions");
            match out {
                Ok(out) => {
                    let failed: BTreeMap<i64, String> = out
                        .unsuccessfully_deleted_launch_template_versions()
                        .iter()
                        .filter(|f| {
                            // Already gone is what gc wanted.
                            !matches!(
                                f.response_error().and_then(|e| e.code()),
                                Some(
                                    aws_sdk_ec2::types::LaunchTemplateErrorCode::LaunchTemplateVersionDoesNotExist
                                        | aws_sdk_ec2::types::LaunchTemplateErrorCode::LaunchTemplateIdDoesNotExist
                                )
                            )
                        })
                        .map(|f| {
                            (
                                f.version_number().unwrap_or(0),
                                f.response_error()
                                    .and_then(|e| e.message())
                                    .unwrap_or("not deleted")
                                    .to_string(),
                            )
                        })
                        .collect();
                    for &i in chunk {
                        let d = &mut decisions[i];
                        match failed.get(&d.version) {
                            Some(why) => {
                                d.action = Action::Failed;
                                d.reasons.push(why.clone());
                                problems.push(format!(
                                    "launch template {} version {}: {why}",
                                    d.template_name, d.version
                                ));
                            }
                            None => d.action = Action::Removed,
                        }
                    }
                }
                Err(e) if e.is_not_found() => {
                    for &i in chunk {
                        decisions[i].action = Action::Removed;
                    }
                }
                Err(e) => {
                    for &i in chunk {
                        decisions[i].action = Action::Failed;
                        decisions[i].reasons.push(e.to_string());
                    }
                    problems.push(e.to_string());
                }
            }
        }
    }
}

/// Neither `--keep` nor `gc.keep`: gc does not guess how many images a rollback may need.
pub fn missing_keep(cfg: &RolloutConfig) -> RolloutError {
    RolloutError::Manifest(ManifestError {
        path: cfg.manifest_path.clone(),
        problems: vec![Problem {
            position: None,
            field: "--keep".to_string(),
            message: "missing: how many of the newest AMIs to keep (or gc.keep in the manifest)"
                .to_string(),
        }],
    })
}

/// Runs `rollout gc` for the session's environment.
pub async fn run(cx: &Ctx, req: &GcRequest) -> Result<GcReport, RolloutError> {
    let cfg: &RolloutConfig = &cx.cfg;
    let before = cx.requests.snapshot();
    let selection = if req.name_prefix.is_some() || !req.tags.is_empty() {
        Selection {
            name_prefix: req.name_prefix.clone().filter(|p| !p.is_empty()),
            tags: req.tags.iter().cloned().collect(),
        }
    } else {
        cfg.gc.selection.clone()
    };
    let usage_error = |field: &str, message: &str| {
        RolloutError::Manifest(ManifestError {
            path: cfg.manifest_path.clone(),
            problems: vec![Problem {
                position: None,
                field: field.to_string(),
                message: message.to_string(),
            }],
        })
    };
    // Never "every AMI of the account".
    if selection.is_empty() {
        return Err(usage_error(
            "--name-prefix/--tag",
            "select the app's AMIs by a name prefix or a tag",
        ));
    }
    let Some(keep) = req.keep.or(cfg.gc.keep) else {
        return Err(missing_keep(cfg));
    };
    cx.say(&format!(
        "Looking for AMIs {} and what uses them",
        selection.describe()
    ));

    let images = owned_images(cx).await?;
    let templates = scan_templates(cx).await?;
    let usage = scan_usage(cx, &templates).await?;
    let mut problems: Vec<String> = usage
        .unresolved
        .iter()
        .map(|u| format!("cannot tell which AMI this references, so no AMI is removed: {u}"))
        .collect();

    // Launch template versions first: an AMI only a deleted version referenced is free in this run.
    let mut versions = decide_versions(&templates, &usage, keep);
    if !req.dry_run && versions.iter().any(|v| v.action == Action::WouldRemove) {
        cx.say("Deleting old launch template versions");
        delete_versions(cx, &mut versions, &mut problems).await;
    }
    let gone: BTreeSet<(String, i64)> = versions
        .iter()
        .filter(|v| matches!(v.action, Action::Removed | Action::WouldRemove))
        .map(|v| (v.template_id.clone(), v.version))
        .collect();

    let mut selected: Vec<&Image> = images.iter().filter(|i| selection.matches(i)).collect();
    // Newest first; the id breaks ties (CreationDate has second resolution on some services).
    selected.sort_by(|a, b| {
        b.creation_date()
            .cmp(&a.creation_date())
            .then_with(|| b.image_id().cmp(&a.image_id()))
    });
    // Which images still hold each snapshot (updated as images go).
    let mut holders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for i in &images {
        for s in snapshots_of(i) {
            holders
                .entry(s)
                .or_default()
                .insert(i.image_id().unwrap_or_default().to_string());
        }
    }

    let mut amis = Vec::new();
    for (rank, image) in selected.iter().enumerate() {
        let id = image.image_id().unwrap_or_default().to_string();
        let mut reasons = Vec::new();
        if (rank as u32) < keep {
            reasons.push(format!("newest {keep}"));
        }
        if image.state().map(|s| s.as_str()) == Some("pending") {
            reasons.push("pending (still being created)".to_string());
        }
        for u in usage.by_ami.get(&id).into_iter().flatten() {
            if u.via_version.as_ref().is_none_or(|v| !gone.contains(v)) {
                reasons.push(u.reason.clone());
            }
        }
        if reasons.is_empty() && !usage.unresolved.is_empty() {
            reasons.push("cannot tell whether it is in use (see problems)".to_string());
        }
        let mut d = AmiDecision {
            id: id.clone(),
            name: image.name().map(str::to_string),
            created: image.creation_date().map(str::to_string),
            action: Action::Kept,
            reasons,
            snapshots: Vec::new(),
        };
        if !d.reasons.is_empty() {
            amis.push(d);
            continue;
        }
        if req.dry_run {
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
                    amis.push(d);
                    continue;
                }
            }
        }
        for snap in snapshots_of(image) {
            let others: Vec<String> = holders
                .get_mut(&snap)
                .map(|h| {
                    h.remove(&id);
                    h.iter().cloned().collect()
                })
                .unwrap_or_default();
            if !others.is_empty() {
                d.snapshots.push(SnapshotDecision {
                    id: snap,
                    action: Action::Kept,
                    reason: Some(format!("still used by {}", others.join(", "))),
                });
                continue;
            }
            if req.dry_run {
                d.snapshots.push(SnapshotDecision {
                    id: snap,
                    action: Action::WouldRemove,
                    reason: None,
                });
                continue;
            }
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
                    problems.push(format!("snapshot {snap} of {id}: {e}"));
                    (Action::Failed, Some(e.to_string()))
                }
            };
            d.snapshots.push(SnapshotDecision {
                id: snap,
                action,
                reason,
            });
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
        problems,
        aws_requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::GcSettings;
    use aws_sdk_ec2::types::Tag;

    fn image(name: &str, tags: &[(&str, &str)]) -> Image {
        let mut b = Image::builder().image_id("ami-12345678").name(name);
        for (k, v) in tags {
            b = b.tags(Tag::builder().key(*k).value(*v).build());
        }
        b.build()
    }

    #[test]
    fn selection_needs_every_filter_and_never_selects_everything() {
        let s = Selection {
            name_prefix: Some("ponyfoo-carnivore-".into()),
            tags: BTreeMap::from([("app".into(), "ponyfoo".into())]),
        };
        assert!(s.matches(&image("ponyfoo-carnivore-staging 1", &[("app", "ponyfoo")])));
        assert!(!s.matches(&image("ponyfoo-primal 1", &[("app", "ponyfoo")])));
        assert!(!s.matches(&image("ponyfoo-carnivore-staging 1", &[("app", "other")])));
        assert!(!Selection::default().matches(&image("x", &[])));
        assert_eq!(s.describe(), "named ponyfoo-carnivore-* tagged app=ponyfoo");
    }

    #[test]
    fn the_default_selection_is_the_app_tag_and_an_empty_one_is_refused() {
        let (c, p) = GcConfig::resolve(None, "carnivore");
        assert!(p.is_empty());
        assert_eq!(
            c.selection.tags,
            BTreeMap::from([("app".to_string(), "carnivore".to_string())])
        );
        let (_, p) = GcConfig::resolve(
            Some(&GcSettings {
                ami_tags: Some(BTreeMap::new()),
                ..Default::default()
            }),
            "carnivore",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("every AMI"), "{p:?}");
        let (_, p) = GcConfig::resolve(
            Some(&GcSettings {
                ami_name_prefix: Some(String::new()),
                ..Default::default()
            }),
            "carnivore",
        );
        assert_eq!(p[0].0, "gc.ami_name_prefix");
    }

    #[test]
    fn the_shipped_manifest_selects_exactly_the_carnivore_images() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/rollout.json");
        let m = crate::manifest::Manifest::load(&path).unwrap();
        let cfg = RolloutConfig::resolve(&m, None, &Default::default()).unwrap();
        assert_eq!(cfg.gc.selection.name_prefix, None);
        assert_eq!(
            cfg.gc.selection.tags,
            BTreeMap::from([
                ("app".to_string(), "ponyfoo".to_string()),
                ("image".to_string(), "carnivore".to_string())
            ])
        );
        let carnivore = image(
            "ponyfoo-carnivore-staging 1700000000",
            &[
                ("app", "ponyfoo"),
                ("image", "carnivore"),
                ("env", "staging"),
            ],
        );
        let primal = image(
            "ponyfoo-primal 1700000000",
            &[("app", "ponyfoo"), ("image", "primal")],
        );
        assert!(cfg.gc.selection.matches(&carnivore));
        assert!(!cfg.gc.selection.matches(&primal));
    }

    fn template(ours: bool) -> Template {
        Template {
            id: "lt-1".into(),
            name: "lt-app-env".into(),
            default: 2,
            latest: 5,
            ours,
            versions: (1..=5)
                .map(|n| (n, Some(Ok(format!("ami-0000000{n}")))))
                .collect(),
        }
    }

    #[test]
    fn versions_keep_default_latest_referenced_and_newest() {
        let t = vec![template(true)];
        let mut usage = Usage::default();
        reference_template(&t, &mut usage, "asg g", Some("lt-1"), None, Some("3"));
        let d = decide_versions(&t, &usage, 0);
        let removed: Vec<i64> = d
            .iter()
            .filter(|v| v.action == Action::WouldRemove)
            .map(|v| v.version)
            .collect();
        assert_eq!(removed, vec![4, 1]);
        let v3 = d.iter().find(|v| v.version == 3).unwrap();
        assert_eq!(v3.reasons, vec!["in use by asg g".to_string()]);
        let d = decide_versions(&t, &usage, 2);
        let removed: Vec<i64> = d
            .iter()
            .filter(|v| v.action == Action::WouldRemove)
            .map(|v| v.version)
            .collect();
        assert_eq!(removed, vec![1]);
        // Templates rollout did not create are never pruned.
        assert!(decide_versions(&[template(false)], &usage, 0).is_empty());
    }

    #[test]
    fn unknown_templates_and_versions_are_unresolved_references() {
        let t = vec![template(true)];
        let mut usage = Usage::default();
        reference_template(&t, &mut usage, "asg g", None, Some("lt-app-env"), None);
        assert!(usage.by_ami["ami-00000002"][0].reason.contains("asg g"));
        reference_template(&t, &mut usage, "asg h", Some("lt-9"), None, None);
        reference_template(&t, &mut usage, "asg i", Some("lt-1"), None, Some("9"));
        assert_eq!(usage.unresolved.len(), 2, "{:?}", usage.unresolved);
    }
}
