//! What a command did, as data: serialised for `--json`, rendered as a summary for people.

use crate::diff::{self, Counts, DiffLine};
use crate::observed::{Group, GroupInstance, ResolvedAmi};
use serde::Serialize;
use std::collections::BTreeMap;

/// How a deploy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The new group is live and the old ones are gone.
    Succeeded,
    /// The new group failed and was removed; the old group is as it was.
    RolledBack,
    /// Stopped part-way; see `attention`.
    Incomplete,
}

/// A group, as the summary shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSummary {
    /// Name.
    pub name: String,
    /// AMI.
    pub ami: Option<String>,
    /// Launch template name.
    pub launch_template: Option<String>,
    /// Min / max / desired.
    pub min: i32,
    /// Max.
    pub max: i32,
    /// Desired.
    pub desired: i32,
    /// Instances, with their load balancer state when known.
    pub instances: Vec<GroupInstance>,
}

impl GroupSummary {
    /// From a described group.
    pub fn of(g: &Group, ami: Option<String>) -> Self {
        GroupSummary {
            name: g.name.clone(),
            ami: ami.or_else(|| g.ami.clone()),
            launch_template: g.launch_template.as_ref().and_then(|l| l.name.clone()),
            min: g.min,
            max: g.max,
            desired: g.desired,
            instances: g.instances.clone(),
        }
    }
}

/// A previous release kept for `rollout undo` (blue-green's rollback window): its group, detached from
/// the load balancer, and its launch template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptRelease {
    /// The kept group.
    pub group: String,
    /// The AMI it runs.
    pub ami: Option<String>,
    /// Its launch template.
    pub launch_template: Option<String>,
    /// Its desired capacity while kept.
    pub size: i32,
    /// When it was retired (RFC 3339).
    pub retired_at: Option<String>,
    /// When its window ends (RFC 3339); none: when newer releases push it out.
    pub keep_until: Option<String>,
}

impl KeptRelease {
    /// From a described kept group.
    pub fn of(g: &Group, ami: Option<String>) -> Self {
        KeptRelease {
            group: g.name.clone(),
            ami: ami.or_else(|| g.ami.clone()),
            launch_template: g.launch_template.as_ref().and_then(|l| l.name.clone()),
            size: g.desired,
            retired_at: g.retired_at.clone(),
            keep_until: g.keep_until.clone(),
        }
    }

    /// `asg-… [ami-…] size 0, retired 2026-…Z, kept until 2026-…Z`.
    pub fn describe(&self) -> String {
        format!(
            "{} [{}] size {}, retired {}, kept until {}",
            self.group,
            self.ami.as_deref().unwrap_or("?"),
            self.size,
            self.retired_at.as_deref().unwrap_or("?"),
            self.keep_until
                .as_deref()
                .unwrap_or("newer releases replace it")
        )
    }
}

/// What rolling back did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RollbackReport {
    /// What was undone.
    pub actions: Vec<String>,
    /// What could not be undone (each needs an operator).
    pub failures: Vec<String>,
    /// What is wrong after the rollback although rollout did not cause it (each needs an operator).
    pub warnings: Vec<String>,
    /// The old groups as found after the rollback (`name: unchanged, 2/2 in service`).
    pub old_groups: Vec<String>,
    /// True when every old group was found exactly as before the rollout.
    pub old_groups_unchanged: bool,
}

/// The bake time after the cut-over (`gates`): what was watched and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BakeReport {
    /// The alarms watched.
    pub alarms: Vec<String>,
    /// The bake time asked for, in seconds.
    pub bake_time_s: u64,
    /// How long they were watched.
    pub watched_s: f64,
    /// DescribeAlarms reads that answered.
    pub checks: u32,
    /// Reads that failed (the next one tried again).
    pub failed_checks: u32,
    /// `passed`, `tripped` (an alarm went ALARM: the rollout rolled back), `interrupted`, `unknown`
    /// (the alarms could not be read at the end) or `skipped` (a first rollout: nothing to return to).
    pub outcome: String,
    /// What tripped the gate.
    pub tripped_by: Option<String>,
}

impl BakeReport {
    /// True when an alarm tripped the gate.
    pub fn tripped(&self) -> bool {
        self.outcome == "tripped"
    }
}

/// Seconds spent in each phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Durations {
    /// Preflight: load balancer, AMI, live groups.
    pub preflight_s: f64,
    /// Launch template + group created.
    pub launch_s: f64,
    /// Waiting for the new group to be healthy.
    pub healthy_s: f64,
    /// Retiring the old groups.
    pub retire_s: f64,
    /// The bake time (`gates`): watching the alarms after the cut-over.
    pub bake_s: f64,
    /// Rolling back.
    pub rollback_s: f64,
    /// End to end.
    pub total_s: f64,
}

/// The result of `rollout --ami`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployReport {
    /// How it ended.
    pub status: Status,
    /// The app.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The region.
    pub region: String,
    /// The strategy.
    pub strategy: String,
    /// This run's id (tag `bakery:run-id`).
    pub run_id: String,
    /// The load balancer.
    pub load_balancer: String,
    /// The AMI rolled out.
    pub ami: ResolvedAmi,
    /// The new group (absent when it was never created).
    pub new_group: Option<GroupSummary>,
    /// The groups that were live before.
    pub old_groups: Vec<GroupSummary>,
    /// Old groups retired: taken out of service and deleted, or kept (then also in `kept`).
    pub retired: Vec<String>,
    /// `rollout undo`: a kept previous release was brought back (`new_group`), the serving one retired.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub undo: bool,
    /// Old groups kept for `rollout undo` (the rollback window), detached from the load balancer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<KeptRelease>,
    /// Kept previous releases whose window had ended, deleted with their launch templates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expired: Vec<String>,
    /// Launch templates deleted.
    pub deleted_launch_templates: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// What rolling back did.
    pub rollback: Option<RollbackReport>,
    /// The bake time after the cut-over (`gates`), when there was one.
    pub bake: Option<BakeReport>,
    /// Resources left for an operator.
    pub attention: Vec<String>,
    /// Phase durations.
    pub durations: Durations,
    /// AWS requests sent, by `Service.Operation`.
    pub aws_requests: BTreeMap<String, u64>,
    /// Their total.
    pub aws_requests_total: u64,
}

impl DeployReport {
    /// The report of a rollout that is starting: `Succeeded` until something says otherwise, with the
    /// environment, the AMI, what is live now and how long preflight took; nothing done yet.
    pub fn started(
        cx: &crate::context::Ctx,
        strategy: &str,
        load_balancer: String,
        ami: &ResolvedAmi,
        old_groups: Vec<GroupSummary>,
        preflight: std::time::Duration,
    ) -> Self {
        DeployReport {
            status: Status::Succeeded,
            app: cx.cfg.names.app.clone(),
            env: cx.cfg.names.env.clone(),
            region: cx.clients.region.clone(),
            strategy: strategy.to_string(),
            run_id: cx.run_id.clone(),
            load_balancer,
            ami: ami.clone(),
            new_group: None,
            old_groups,
            retired: Vec::new(),
            undo: false,
            kept: Vec::new(),
            expired: Vec::new(),
            deleted_launch_templates: Vec::new(),
            error: None,
            rollback: None,
            bake: None,
            attention: Vec::new(),
            durations: Durations {
                preflight_s: preflight.as_secs_f64(),
                ..Default::default()
            },
            aws_requests: Default::default(),
            aws_requests_total: 0,
        }
    }

    /// The human summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let status = match self.status {
            Status::Succeeded => "succeeded",
            Status::RolledBack => "ROLLED BACK",
            Status::Incomplete => "INCOMPLETE",
        };
        s.push_str(&format!(
            "{} of {}/{} in {} {status} ({}, {:.1} s, {} AWS requests)\n",
            if self.undo { "Undo" } else { "Rollout" },
            self.app,
            self.env,
            self.region,
            self.strategy,
            self.durations.total_s,
            self.aws_requests_total
        ));
        let old = if self.old_groups.is_empty() {
            "(none)".to_string()
        } else {
            self.old_groups
                .iter()
                .map(|g| format!("{} [{}]", g.name, g.ami.as_deref().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let new = self
            .new_group
            .as_ref()
            .map(|g| format!("{} [{}]", g.name, self.ami.id))
            .unwrap_or_else(|| "(not created)".into());
        s.push_str(&format!("  groups:    {old} -> {new}\n"));
        s.push_str(&format!(
            "  AMI:       {}{}\n",
            self.ami.id,
            self.ami
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
        if let Some(g) = &self.new_group {
            for i in &g.instances {
                s.push_str(&format!(
                    "  instance:  {} {} {}/{} lb:{}\n",
                    i.id,
                    i.availability_zone,
                    i.lifecycle,
                    i.health,
                    i.load_balancer
                        .as_ref()
                        .map(|l| l.state.as_str())
                        .unwrap_or("-")
                ));
            }
        }
        let d = &self.durations;
        s.push_str(&format!(
            "  durations: preflight {:.1} s, launch {:.1} s, healthy {:.1} s, retire {:.1} s{}\n",
            d.preflight_s,
            d.launch_s,
            d.healthy_s,
            d.retire_s,
            if self.rollback.is_some() {
                format!(", rollback {:.1} s", d.rollback_s)
            } else {
                String::new()
            }
        ));
        if let Some(b) = &self.bake {
            s.push_str(&format!(
                "  bake:      {} {} after {:.1} s of {} s ({} check(s){})\n",
                b.alarms.join(", "),
                match (b.outcome.as_str(), &b.tripped_by) {
                    ("tripped", Some(t)) => format!("TRIPPED: {t}"),
                    ("passed", _) => "stayed out of ALARM".to_string(),
                    (o, _) => o.to_uppercase(),
                },
                b.watched_s,
                b.bake_time_s,
                b.checks,
                if b.failed_checks > 0 {
                    format!(", {} failed", b.failed_checks)
                } else {
                    String::new()
                }
            ));
        }
        for k in &self.kept {
            s.push_str(&format!("  kept:      {} (rollout undo)\n", k.describe()));
        }
        for g in &self.expired {
            s.push_str(&format!("  expired:   {g} (window ended: deleted)\n"));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!("  error:     {e}\n"));
        }
        if let Some(rb) = &self.rollback {
            for a in &rb.actions {
                s.push_str(&format!("  rolled back: {a}\n"));
            }
            for f in &rb.failures {
                s.push_str(&format!("  ROLLBACK FAILED: {f}\n"));
            }
            for w in &rb.warnings {
                s.push_str(&format!("  WARNING: {w}\n"));
            }
            for g in &rb.old_groups {
                s.push_str(&format!("  old group: {g}\n"));
            }
        }
        let shown: Vec<&String> = self
            .rollback
            .iter()
            .flat_map(|rb| rb.failures.iter().chain(&rb.warnings))
            .collect();
        for a in self.attention.iter().filter(|a| !shown.contains(a)) {
            s.push_str(&format!("  needs attention: {a}\n"));
        }
        s
    }
}

/// What `rollout setup` found or did to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `load balancer elb-shop-staging`.
    pub resource: String,
    /// `created`, `updated`, `unchanged` (with `--dry-run`: `would create`, `would update`).
    pub action: String,
    /// What differs, or the id.
    pub detail: String,
    /// A setting setup converges in place (`updated`, `would update`): its value before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// ... and after (the manifest's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl Change {
    /// `resource` found `action` (`created`, `updated`, `unchanged`), with no before/after.
    pub fn new(resource: String, action: &str, detail: String) -> Self {
        Change {
            resource,
            action: action.to_string(),
            detail,
            before: None,
            after: None,
        }
    }

    /// As a diff line: unchanged is context; a converged setting a `-`/`+` pair; anything else created
    /// or added (setup never removes).
    pub fn diff_line(&self) -> DiffLine {
        match (self.action.as_str(), &self.before, &self.after) {
            ("unchanged", _, _) => DiffLine::same(&self.resource, &self.detail),
            (_, Some(before), Some(after)) => DiffLine::change(&self.resource, before, after),
            _ => DiffLine::add(&self.resource, &self.detail),
        }
    }
}

/// The result of `rollout setup`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetupReport {
    /// The app.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The region.
    pub region: String,
    /// Nothing was changed because of `--dry-run`.
    pub dry_run: bool,
    /// Per resource.
    pub changes: Vec<Change>,
    /// The same as diff lines (what the summary prints): `op` `add`, `change` (with `from`/`to`) or
    /// `same`.
    pub diff: Vec<DiffLine>,
    /// Differences setup reports but does not change.
    pub warnings: Vec<String>,
    /// The DNS name the environment answers at, when DNS is configured.
    pub record: Option<String>,
    /// AWS requests sent, by `Service.Operation`.
    pub aws_requests: BTreeMap<String, u64>,
    /// Seconds.
    pub duration_s: f64,
}

impl SetupReport {
    /// True when nothing was (or would be) changed.
    pub fn unchanged(&self) -> bool {
        self.changes.iter().all(|c| c.action == "unchanged")
    }

    /// The human summary, without colour.
    pub fn render(&self) -> String {
        self.render_styled(false)
    }

    /// The human summary: the counts, then every resource as a diff line (`+` created or added, a
    /// `-`/`+` pair for a setting converged, context for unchanged; with `color`, `+` green and `-` red),
    /// the DNS name and the warnings.
    pub fn render_styled(&self, color: bool) -> String {
        let count = |a: &str| self.changes.iter().filter(|c| c.action.contains(a)).count();
        let mut s = format!(
            "Setup of {}/{} in {}{}: {} ({} created, {} updated, {} unchanged; {:.1} s, {} AWS requests)\n",
            self.app,
            self.env,
            self.region,
            if self.dry_run { " (dry run)" } else { "" },
            if self.unchanged() {
                "nothing to change"
            } else if self.dry_run {
                "changes needed"
            } else {
                "changed"
            },
            count("creat"),
            count("updat"),
            count("unchanged"),
            self.duration_s,
            self.aws_requests.values().sum::<u64>()
        );
        let lines: Vec<DiffLine> = self.changes.iter().map(Change::diff_line).collect();
        s.push_str(&diff::render(&lines, color));
        if let Some(r) = &self.record {
            s.push_str(&format!("  DNS: {r}\n"));
        }
        for w in &self.warnings {
            s.push_str(&format!("  warning: {w}\n"));
        }
        s
    }
}

/// A live group in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveGroupView {
    /// The group.
    pub group: GroupSummary,
    /// `live`, `in-progress`, or untagged.
    pub state: Option<String>,
}

/// The result of `rollout plan` / `--dry-run`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanReport {
    /// The app.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The region.
    pub region: String,
    /// The strategy.
    pub strategy: String,
    /// The load balancer, when it exists.
    pub load_balancer: Option<String>,
    /// What is live now.
    pub live: Vec<LiveGroupView>,
    /// The AMI that would be rolled out, when `--ami` was given.
    pub ami: Option<ResolvedAmi>,
    /// What a rollout would change, resource by resource (`op` `add`, `remove`, `change` with
    /// `from`/`to`, or `same`).
    pub diff: Vec<DiffLine>,
    /// What a rollout would do, in order.
    pub steps: Vec<String>,
    /// What would stop a rollout now.
    pub problems: Vec<String>,
    /// Previous releases kept for `rollout undo`, newest first.
    pub kept: Vec<KeptRelease>,
    /// The rollback window (`blue_green`): `off`, or what a rollout keeps.
    pub keep_window: String,
    /// AWS requests sent (all read-only), by `Service.Operation`.
    pub aws_requests: BTreeMap<String, u64>,
}

impl PlanReport {
    /// The human summary, without colour.
    pub fn render(&self) -> String {
        self.render_styled(false)
    }

    /// The human summary: what is live, the changes a rollout would make as a diff (with `color`, `+`
    /// green and `-` red), its steps and the problems.
    pub fn render_styled(&self, color: bool) -> String {
        let mut s = format!(
            "Plan for {}/{} in {} ({}), read-only\n",
            self.app, self.env, self.region, self.strategy
        );
        s.push_str(&format!(
            "  load balancer: {}\n",
            self.load_balancer.as_deref().unwrap_or("(missing)")
        ));
        if self.live.is_empty() {
            s.push_str("  live: no group\n");
        }
        for v in &self.live {
            let g = &v.group;
            s.push_str(&format!(
                "  live: {} [{}] state={} min={} max={} desired={}\n",
                g.name,
                g.ami.as_deref().unwrap_or("?"),
                v.state.as_deref().unwrap_or("untagged"),
                g.min,
                g.max,
                g.desired
            ));
            for i in &g.instances {
                s.push_str(&format!(
                    "        {} {} {}/{} lb:{}\n",
                    i.id,
                    i.availability_zone,
                    i.lifecycle,
                    i.health,
                    i.load_balancer
                        .as_ref()
                        .map(|l| l.state.as_str())
                        .unwrap_or("not registered")
                ));
            }
        }
        if let Some(a) = &self.ami {
            s.push_str(&format!(
                "  AMI: {}{} from {}\n",
                a.id,
                a.name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
                a.source
            ));
        }
        if self.kept.is_empty() && self.keep_window != "off" {
            s.push_str(&format!(
                "  kept: no previous release (rollback window: {})\n",
                self.keep_window
            ));
        }
        for k in &self.kept {
            s.push_str(&format!("  kept: {}\n", k.describe()));
        }
        if !self.diff.is_empty() {
            s.push_str(&format!("Changes ({}):\n", Counts::of(&self.diff)));
            s.push_str(&diff::render(&self.diff, color));
            s.push_str("Steps:\n");
        }
        for (i, step) in self.steps.iter().enumerate() {
            s.push_str(&format!("  {}. {step}\n", i + 1));
        }
        for p in &self.problems {
            s.push_str(&format!("  problem: {p}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: &str) -> Change {
        Change::new("r".into(), action, String::new())
    }

    #[test]
    fn setup_summary_counts_what_changed() {
        let mut r = SetupReport {
            app: "shop".into(),
            env: "staging".into(),
            region: "us-east-1".into(),
            dry_run: true,
            changes: vec![
                change("would create"),
                change("would create"),
                change("would update"),
                change("unchanged"),
            ],
            diff: Vec::new(),
            warnings: vec!["listener differs".into()],
            record: Some("staging.shop.test.".into()),
            aws_requests: BTreeMap::from([("EC2.DescribeVpcs".to_string(), 3)]),
            duration_s: 0.25,
        };
        let text = r.render();
        assert!(
            text.starts_with("Setup of shop/staging in us-east-1 (dry run): changes needed (2 created, 1 updated, 1 unchanged; 0.2 s, 3 AWS requests)"),
            "{text}"
        );
        assert!(text.contains("  DNS: staging.shop.test.\n"));
        assert!(text.contains("  warning: listener differs\n"));
        r.changes = vec![change("unchanged")];
        r.dry_run = false;
        assert!(r.unchanged());
        assert!(
            r.render()
                .contains(": nothing to change (0 created, 0 updated, 1 unchanged")
        );
    }

    #[test]
    fn setup_prints_its_changes_as_a_diff() {
        let mut hc = Change::new(
            "health check of elb-shop-staging".into(),
            "would update",
            "HTTP:80/health every 10 s".into(),
        );
        hc.before = Some("HTTP:80/ every 30 s".into());
        hc.after = Some("HTTP:80/health every 10 s".into());
        let r = SetupReport {
            app: "shop".into(),
            env: "staging".into(),
            region: "us-east-1".into(),
            dry_run: true,
            changes: vec![
                Change::new(
                    "security group elb-shop-staging".into(),
                    "would create",
                    "in vpc-1".into(),
                ),
                hc,
                Change::new(
                    "key pair shop-staging".into(),
                    "unchanged",
                    "matches keys/staging.pub".into(),
                ),
            ],
            diff: Vec::new(),
            warnings: Vec::new(),
            record: None,
            aws_requests: BTreeMap::new(),
            duration_s: 0.1,
        };
        let text = r.render();
        assert!(
            text.ends_with(
                "+ security group elb-shop-staging: in vpc-1\n\
                 - health check of elb-shop-staging: HTTP:80/ every 30 s\n\
                 + health check of elb-shop-staging: HTTP:80/health every 10 s\n\
                 \x20 key pair shop-staging: matches keys/staging.pub\n"
            ),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        let colour = r.render_styled(true);
        assert!(
            colour.contains(
                "\x1b[31m- health check of elb-shop-staging: HTTP:80/ every 30 s\x1b[0m\n"
            ),
            "{colour}"
        );
        let json = serde_json::to_value(&r.changes[1]).unwrap();
        assert_eq!(json["before"], "HTTP:80/ every 30 s");
        assert_eq!(json["after"], "HTTP:80/health every 10 s");
        assert!(
            serde_json::to_value(&r.changes[0])
                .unwrap()
                .get("before")
                .is_none()
        );
    }

    #[test]
    fn plan_shows_changes_before_its_steps() {
        let mut p = PlanReport {
            app: "shop".into(),
            env: "staging".into(),
            region: "us-east-1".into(),
            strategy: "blue-green".into(),
            load_balancer: Some("elb-shop-staging".into()),
            live: Vec::new(),
            ami: None,
            diff: vec![
                DiffLine::add("group asg-shop-staging-<timestamp>", "ami-new, desired 2"),
                DiffLine::remove("group asg-shop-staging-1", "ami-old, 2 instance(s)"),
            ],
            steps: vec!["create".into(), "retire".into()],
            problems: Vec::new(),
            kept: Vec::new(),
            keep_window: "off".into(),
            aws_requests: BTreeMap::new(),
        };
        let text = p.render();
        assert!(
            text.contains(
                "Changes (1 to add, 0 to change, 1 to remove, 0 unchanged):\n\
                 + group asg-shop-staging-<timestamp>: ami-new, desired 2\n\
                 - group asg-shop-staging-1: ami-old, 2 instance(s)\n\
                 Steps:\n  1. create\n  2. retire\n"
            ),
            "{text}"
        );
        p.diff.clear();
        assert!(!p.render().contains("Changes"));
    }
}
