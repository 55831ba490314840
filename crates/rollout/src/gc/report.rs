//! What gc decided and did, per region, AMI, snapshot and launch template version: the data (`--json`)
//! and the summary people read.

use crate::retention::Selection;
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// Removing (or deprecating, undeprecating) it failed (see `problems`).
    Failed,
    /// An AMI gc deprecated in this run (`EnableImageDeprecation`), to be deregistered later.
    Deprecated,
    /// `--dry-run`: would be deprecated.
    WouldDeprecate,
    /// An AMI deprecated earlier that stays until its `delete_after` has passed (or, without
    /// `delete_after`, until gc is told to delete).
    Waiting,
    /// An AMI gc had deprecated and that is kept again (newest N, in use): its deprecation cancelled.
    Undeprecated,
    /// `--dry-run`: would be undeprecated.
    WouldUndeprecate,
}

impl Action {
    fn label(self) -> &'static str {
        match self {
            Action::Kept => "kept",
            Action::Removed => "removed",
            Action::WouldRemove => "would remove",
            Action::Failed => "FAILED",
            Action::Deprecated => "deprecated",
            Action::WouldDeprecate => "would deprecate",
            Action::Waiting => "waiting",
            Action::Undeprecated => "undeprecated",
            Action::WouldUndeprecate => "would undeprecate",
        }
    }

    /// Removed, or would be.
    pub fn removes(self) -> bool {
        matches!(self, Action::Removed | Action::WouldRemove)
    }

    /// Stays registered and usable: kept, undeprecated (or would be).
    pub fn keeps(self) -> bool {
        matches!(
            self,
            Action::Kept | Action::Undeprecated | Action::WouldUndeprecate
        )
    }

    /// Deprecated and waiting, deprecated in this run, or would be.
    pub fn deprecates(self) -> bool {
        matches!(
            self,
            Action::Deprecated | Action::WouldDeprecate | Action::Waiting
        )
    }
}

/// A previous release kept by blue-green's rollback window, as gc judged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptDecision {
    /// The kept group.
    pub group: String,
    /// Its launch template.
    pub launch_template: Option<String>,
    /// `kept` (inside its window), `removed` / `would-remove` (its window ended), `failed`.
    pub action: Action,
    /// Why.
    pub reason: String,
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
    /// Its deprecation time: as AWS reports it, or as gc set it (or would set it) in this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecation: Option<String>,
    /// When an instance was last launched from it, as AWS reports it (up to 24 h late; not every
    /// service reports it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_launched: Option<String>,
    /// Its launch permissions for others: `account 111122223333`, `public`, `organization arn:…`,
    /// `organizational unit arn:…` (asked only of AMIs that would otherwise go).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
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

/// Whether EC2's own list of what references the candidates (`DescribeImageReferences`) was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ImageReferences {
    /// No AMI would have gone: nothing to ask about.
    NotAsked,
    /// EC2 answered for these AMIs; each reference it listed keeps its AMI.
    Checked {
        /// AMIs asked about.
        images: usize,
        /// References listed.
        references: usize,
    },
    /// The service does not offer it here (or refused it): gc's own scan decided alone.
    Unavailable {
        /// EC2's answer.
        reason: String,
    },
}

/// What gc decided and did in one region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionReport {
    /// The region.
    pub region: String,
    /// Every selected AMI of the region, newest first.
    pub amis: Vec<AmiDecision>,
    /// The environment's launch template versions in the region.
    pub launch_template_versions: Vec<VersionDecision>,
    /// Snapshots an interrupted gc left: their AMI was deregistered, the run stopped before deleting them.
    pub unfinished_snapshots: Vec<SnapshotDecision>,
    /// Whether `DescribeImageReferences` was asked, and what it said.
    pub image_references: ImageReferences,
    /// The requests this region's pass sent, by `Service.Operation`.
    pub region_aws_requests: BTreeMap<String, u64>,
}

impl RegionReport {
    /// An empty report for `region`.
    pub fn new(region: &str) -> Self {
        RegionReport {
            region: region.to_string(),
            amis: Vec::new(),
            launch_template_versions: Vec::new(),
            unfinished_snapshots: Vec::new(),
            image_references: ImageReferences::NotAsked,
            region_aws_requests: BTreeMap::new(),
        }
    }
}

/// What `rollout gc` did, as data (`--json`) and as a summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GcReport {
    /// App.
    pub app: String,
    /// Environment.
    pub env: String,
    /// The environment's region (its fields at the top level of `--json`: `region`, `amis`, …).
    #[serde(flatten)]
    pub home: RegionReport,
    /// The other regions gc worked in (`gc.regions`, `--regions`), each decided on its own.
    pub other_regions: Vec<RegionReport>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// Newest AMIs (and launch template versions) kept, in each region.
    pub keep: u32,
    /// The AMI selection.
    pub selection: Selection,
    /// AMIs shared with other accounts may go (`--include-shared`, `gc.include_shared`).
    pub include_shared: bool,
    /// `--deprecate-after` / `gc.deprecate_after`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecate_after: Option<String>,
    /// `--delete-after` / `gc.delete_after`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_after: Option<String>,
    /// What needs attention (also: exit code 1).
    pub problems: Vec<String>,
    /// Previous releases kept by blue-green's rollback window: those whose window ended are deleted
    /// with their launch templates (first, so that their AMIs are free in the same run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_releases: Vec<KeptDecision>,
    /// Requests sent, by `Service.Operation` (every region).
    pub aws_requests: BTreeMap<String, u64>,
}

impl GcReport {
    /// Every region, the environment's first.
    pub fn regions(&self) -> impl Iterator<Item = &RegionReport> {
        std::iter::once(&self.home).chain(&self.other_regions)
    }

    /// Every selected AMI of every region.
    pub fn amis(&self) -> impl Iterator<Item = &AmiDecision> {
        self.regions().flat_map(|r| &r.amis)
    }

    /// AMIs removed (or that would be), in every region.
    pub fn removed(&self) -> Vec<&str> {
        self.amis()
            .filter(|a| a.action.removes())
            .map(|a| a.id.as_str())
            .collect()
    }

    /// The summary people read.
    pub fn render(&self) -> String {
        let count = |f: fn(Action) -> bool| self.amis().filter(|a| f(a.action)).count();
        let removed = count(Action::removes);
        let kept = count(Action::keeps);
        let deprecated = count(Action::deprecates);
        let staged = self.deprecate_after.is_some() || self.delete_after.is_some();
        let regions: Vec<&str> = self.regions().map(|r| r.region.as_str()).collect();
        let mut s = format!(
            "GC of {}/{} in {}{}: AMIs {} owned by this account, keep newest {}: {removed} {}, {}{kept} kept ({} AWS requests)\n",
            self.app,
            self.env,
            regions.join(", "),
            if self.dry_run { " (dry run)" } else { "" },
            self.selection.describe(),
            self.keep,
            if self.dry_run { "to remove" } else { "removed" },
            if staged || deprecated > 0 {
                format!("{deprecated} deprecated, ")
            } else {
                String::new()
            },
            self.aws_requests.values().sum::<u64>()
        );
        if staged || self.include_shared {
            let mut how = Vec::new();
            if let Some(d) = &self.deprecate_after {
                how.push(format!("deprecate {d} from now"));
            }
            match &self.delete_after {
                Some(d) => how.push(format!("deregister {d} after the deprecation time")),
                None if staged => how.push("deprecate only (no --delete-after)".to_string()),
                None => {}
            }
            if self.include_shared {
                how.push("shared AMIs included".to_string());
            }
            s.push_str(&format!("  ({})\n", how.join("; ")));
        }
        let several = !self.other_regions.is_empty();
        for r in self.regions() {
            if several {
                let n = |f: fn(Action) -> bool| r.amis.iter().filter(|a| f(a.action)).count();
                s.push_str(&format!(
                    "In {}: {} {}, {}{} kept ({} AWS requests)\n",
                    r.region,
                    n(Action::removes),
                    if self.dry_run { "to remove" } else { "removed" },
                    if staged || n(Action::deprecates) > 0 {
                        format!("{} deprecated, ", n(Action::deprecates))
                    } else {
                        String::new()
                    },
                    n(Action::keeps),
                    r.region_aws_requests.values().sum::<u64>()
                ));
            }
            render_region(r, &mut s);
        }
        if !self.kept_releases.is_empty() {
            s.push_str("Kept releases (blue_green rollback window):\n");
            for k in &self.kept_releases {
                s.push_str(&format!(
                    "  {:<12} {}{}: {}\n",
                    k.action.label(),
                    k.group,
                    k.launch_template
                        .as_deref()
                        .map(|t| format!(" and launch template {t}"))
                        .unwrap_or_default(),
                    k.reason
                ));
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

/// One region's AMIs, interrupted snapshots, launch template versions and image-reference note.
fn render_region(r: &RegionReport, s: &mut String) {
    for a in &r.amis {
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
        if let Some(t) = &a.last_launched {
            s.push_str(&format!("; last launched {t}"));
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
    if r.amis.is_empty() {
        s.push_str("  (no AMI matches)\n");
    }
    if let ImageReferences::Unavailable { reason } = &r.image_references {
        s.push_str(&format!(
            "  (EC2's image references (DescribeImageReferences) unavailable in {}: {reason}; gc's own scan decided)\n",
            r.region
        ));
    }
    if !r.unfinished_snapshots.is_empty() {
        s.push_str("Snapshots an interrupted gc left (their AMI is deregistered):\n");
        for sn in &r.unfinished_snapshots {
            s.push_str(&format!("  {:<12} {}", sn.action.label(), sn.id));
            if let Some(why) = &sn.reason {
                s.push_str(&format!(" ({why})"));
            }
            s.push('\n');
        }
    }
    if !r.launch_template_versions.is_empty() {
        s.push_str("Launch template versions:\n");
        for v in &r.launch_template_versions {
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
}
