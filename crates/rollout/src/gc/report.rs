//! What gc decided and did, per AMI, snapshot and launch template version: the data (`--json`) and the
//! summary people read.

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
    /// Snapshots an interrupted gc left: their AMI was deregistered, the run stopped before deleting them.
    pub unfinished_snapshots: Vec<SnapshotDecision>,
    /// What needs attention (also: exit code 1).
    pub problems: Vec<String>,
    /// Previous releases kept by blue-green's rollback window: those whose window ended are deleted
    /// with their launch templates (first, so that their AMIs are free in the same run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_releases: Vec<KeptDecision>,
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
        if !self.unfinished_snapshots.is_empty() {
            s.push_str("Snapshots an interrupted gc left (their AMI is deregistered):\n");
            for sn in &self.unfinished_snapshots {
                s.push_str(&format!("  {:<12} {}", sn.action.label(), sn.id));
                if let Some(r) = &sn.reason {
                    s.push_str(&format!(" ({r})"));
                }
                s.push('\n');
            }
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
