//! `rollout setup`: the environment's load balancer, DNS record, key pair and security groups, idempotent. Each resource is looked up first and created or
//! changed only when it differs from the manifest, so a second run sends no write request at all.
//!
//! Order: key pair (the one resource that can conflict: checked before anything is created), VPC, the
//! load balancer's and the instances' security groups, the load balancer (classic: listener, health check,
//! connection draining; ALB: target group, deregistration delay, listener), tags, the Route 53 ALIAS.
//! Setup adds what is missing and converges settings that are safe to change in place (health checks,
//! draining, tags, missing listeners and ingress rules); it reports, but does not change, anything that
//! would interrupt traffic (a listener pointing elsewhere, other subnets) or that it did not create.
//!
//! One file per resource: `key_pair`, `network` (VPC and subnets), `security_groups`, `classic`
//! (classic ELB), `alb` (ALB and its listener), `target_group` (the ALB's target group), `dns`
//! (Route 53 ALIAS); `tags` is the tag convergence they share.

mod alb;
mod classic;
mod dns;
mod key_pair;
mod network;
mod security_groups;
mod tags;
mod target_group;

use crate::context::Ctx;
use crate::error::RolloutError;
use crate::manifest::LbKind;
use crate::report::{Change, SetupReport};

/// Runs setup; with `dry_run`, only reports what it would do (read-only calls).
pub async fn run(cx: &Ctx, dry_run: bool) -> Result<SetupReport, RolloutError> {
    let started = tokio::time::Instant::now();
    let before = cx.requests.snapshot();
    let mut s = Setup {
        cx,
        dry_run,
        created_groups: Vec::new(),
        changes: Vec::new(),
        warnings: Vec::new(),
    };
    cx.say(&format!(
        "Setting up {}/{} in {}{}",
        cx.cfg.names.app,
        cx.cfg.names.env,
        cx.clients.region,
        if dry_run { " (dry run)" } else { "" }
    ));
    s.key_pair().await?;
    let vpc = s.vpc().await?;
    let lb_sg = s.security_groups(&vpc).await?;
    let target = match cx.cfg.lb.kind {
        LbKind::Classic => s.classic(&vpc, lb_sg.as_deref()).await?,
        LbKind::Alb => s.alb(&vpc, lb_sg.as_deref()).await?,
    };
    let record = s.dns(target.as_ref()).await?;
    let after = cx.requests.snapshot();
    let report = SetupReport {
        app: cx.cfg.names.app.clone(),
        env: cx.cfg.names.env.clone(),
        region: cx.clients.region.clone(),
        dry_run,
        diff: s.changes.iter().map(Change::diff_line).collect(),
        changes: s.changes,
        warnings: s.warnings,
        record,
        aws_requests: after
            .iter()
            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect(),
        duration_s: started.elapsed().as_secs_f64(),
    };
    Ok(report)
}

/// What the DNS record must point at.
struct AliasTarget {
    dns_name: String,
    zone_id: Option<String>,
}

/// One setup run: what it was asked (`dry_run`) and what it did so far.
struct Setup<'a> {
    cx: &'a Ctx,
    dry_run: bool,
    /// Security groups created by this run (their rules are part of the creation).
    created_groups: Vec<String>,
    changes: Vec<Change>,
    warnings: Vec<String>,
}

impl Setup<'_> {
    /// Records what happened to `resource` (`created`, `updated`, `unchanged`; in a dry run the first two
    /// become `would create`, `would update`) and says it.
    fn record(&mut self, resource: String, action: &str, detail: String) {
        let action = match (self.dry_run, action) {
            (true, "created") => "would create",
            (true, "updated") => "would update",
            (_, a) => a,
        };
        let line = format!(
            "{resource}: {action}{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        );
        if action == "unchanged" {
            self.cx.detail(&line);
        } else {
            self.cx.say(&line);
        }
        self.changes.push(Change::new(resource, action, detail));
    }

    /// Records a setting of `resource` converged in place (`updated`; in a dry run `would update`) from
    /// `before` to `after`, and says it; the diff shows the pair.
    fn record_change(&mut self, resource: String, before: String, after: String) {
        self.record(resource, "updated", format!("{after}; was {before}"));
        if let Some(c) = self.changes.last_mut() {
            c.detail = after.clone();
            c.before = Some(before);
            c.after = Some(after);
        }
    }

    /// A difference setup reports but does not change.
    fn warn(&mut self, w: String) {
        self.cx.warn(&format!("warning: {w}"));
        self.warnings.push(w);
    }
}
