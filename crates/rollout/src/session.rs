//! The library entry point: open a [`Session`] for one environment, then `setup`, `plan` or `deploy`.
//! The `rollout` binary is a thin front-end over this (the root package's `src/cli/rollout.rs`); tests drive it directly.

use crate::config::{Overrides, RolloutConfig};
use crate::context::{Ctx, RequestCounter};
use crate::error::RolloutError;
use crate::manifest::Manifest;
use crate::report::{
    DeployReport, GroupSummary, KeptRelease, LiveGroupView, PlanReport, SetupReport, Status,
};
use crate::strategy::{self, Preflight};
use bakery_core::aws::{AwsSettings, Clients, SdkConfig, load_sdk_config};
use bakery_core::ui::Ui;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a session is opened with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The rollout manifest.
    pub manifest: PathBuf,
    /// `--env` (else the manifest's default, else staging).
    pub env: Option<String>,
    /// AWS access (region, profile, endpoint); the manifest's region fills an unset region.
    pub aws: AwsSettings,
    /// Flags that override the manifest.
    pub overrides: Overrides,
    /// Output.
    pub ui: Ui,
}

/// One environment, ready for commands.
#[derive(Debug, Clone)]
pub struct Session {
    cx: Ctx,
    /// What other regions' clients are made from (`rollout gc` in `gc.regions`).
    sdk: SdkConfig,
}

impl Session {
    /// Reads and validates the manifest and builds the AWS clients (no AWS request is sent).
    pub async fn open(o: Options) -> Result<Self, RolloutError> {
        let manifest = Manifest::load(&o.manifest)?;
        let cfg = RolloutConfig::resolve(&manifest, o.env.as_deref(), &o.overrides)?;
        let mut aws = o.aws.clone();
        if aws.region.is_none() {
            aws.region = cfg.region.clone();
        }
        let sdk = load_sdk_config(&aws).await;
        let requests = RequestCounter::default();
        let clients =
            requests.instrument(Clients::for_region(&sdk, None, aws.ec2_endpoint.as_deref()));
        Ok(Session {
            cx: Ctx {
                cfg,
                clients,
                ui: o.ui,
                run_id: uuid::Uuid::new_v4().to_string(),
                cancel: CancellationToken::new(),
                cancel_cleanup: CancellationToken::new(),
                requests,
            },
            sdk,
        })
    }

    /// The context (configuration, clients, UI, tokens).
    pub fn ctx(&self) -> &Ctx {
        &self.cx
    }

    /// Cancelled by a first interrupt: a rollout stops and rolls back.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cx.cancel.clone()
    }

    /// Cancelled by a second interrupt: rollback stops too.
    pub fn cancel_cleanup_token(&self) -> CancellationToken {
        self.cx.cancel_cleanup.clone()
    }

    /// `rollout setup` (`--dry-run`: read-only).
    pub async fn setup(&self, dry_run: bool) -> Result<SetupReport, RolloutError> {
        crate::setup::run(&self.cx, dry_run).await
    }

    /// `rollout plan` / `--dry-run`: what is live and what a rollout of `ami` would do; read-only.
    pub async fn plan(&self, ami: Option<&str>) -> Result<PlanReport, RolloutError> {
        let cx = &self.cx;
        let before = cx.requests.snapshot();
        let pf = strategy::preflight(cx, ami).await?;
        let strategy = strategy::for_kind(cx.cfg.strategy);
        let steps = strategy.plan(cx, &pf);
        // What would change, as a diff: only where a rollout has a load balancer to attach to.
        let diff = match pf.lb {
            Some(_) => strategy.changes(cx, &pf).await?,
            None => Vec::new(),
        };
        Ok(PlanReport {
            app: cx.cfg.names.app.clone(),
            env: cx.cfg.names.env.clone(),
            region: cx.clients.region.clone(),
            strategy: strategy.kind().to_string(),
            load_balancer: pf.lb.as_ref().map(|l| l.label()),
            live: live_views(&pf),
            ami: pf.ami.clone(),
            diff,
            steps,
            problems: pf.problems.clone(),
            kept: pf
                .kept
                .iter()
                .map(|g| KeptRelease::of(g, pf.group_amis.get(&g.name).cloned().flatten()))
                .collect(),
            keep_window: cx.cfg.keep.describe(),
            aws_requests: delta(&before, &cx.requests.snapshot()),
        })
    }

    /// `rollout --ami AMI`: rolls `ami` out with the manifest's strategy.
    pub async fn deploy(&self, ami: &str) -> Result<DeployReport, RolloutError> {
        let cx = &self.cx;
        let started = Instant::now();
        let before = cx.requests.snapshot();
        cx.say(&format!(
            "Preflight: {} in {}, live groups, AMI {ami} (run {})",
            cx.cfg.names.load_balancer(),
            cx.clients.region,
            cx.run_id
        ));
        let pf = strategy::preflight(cx, Some(ami)).await?;
        if !pf.problems.is_empty() {
            return Err(RolloutError::Preflight(pf.problems));
        }
        if cx.cancel.is_cancelled() {
            return Err(RolloutError::Cancelled);
        }
        let strategy = strategy::for_kind(cx.cfg.strategy);
        let outcome = match strategy.deploy(cx, pf).await {
            Err(RolloutError::Incomplete(r)) if r.bake.as_ref().is_some_and(|b| b.tripped()) => {
                roll_back_tripped(cx, *r).await
            }
            other => other,
        };
        with_figures(cx, started, &before, outcome)
    }

    /// `rollout undo`: brings the newest kept previous release (blue-green's rollback window) back behind
    /// the load balancer through the deploy's health gates, then retires (deletes) the serving one.
    pub async fn undo(&self) -> Result<DeployReport, RolloutError> {
        let cx = &self.cx;
        if cx.cfg.strategy != crate::manifest::StrategyKind::BlueGreen {
            return Err(RolloutError::UndoUnsupported(cx.cfg.strategy.to_string()));
        }
        let started = Instant::now();
        let before = cx.requests.snapshot();
        cx.say(&format!(
            "Preflight: {} in {}, live and kept groups (undo, run {})",
            cx.cfg.names.load_balancer(),
            cx.clients.region,
            cx.run_id
        ));
        let pf = strategy::preflight(cx, None).await?;
        // A problem (another rollout or undo in progress, no load balancer) is said first; then, if
        // nothing is kept, `undo` says so.
        if !pf.problems.is_empty() {
            return Err(RolloutError::Preflight(pf.problems));
        }
        if cx.cancel.is_cancelled() {
            return Err(RolloutError::Cancelled);
        }
        with_figures(cx, started, &before, strategy::undo(cx, pf).await)
    }

    /// `rollout abandon`: undoes what a killed rollout of this environment left (or only `run_id`'s).
    pub async fn abandon(
        &self,
        run_id: Option<&str>,
    ) -> Result<strategy::AbandonReport, RolloutError> {
        strategy::abandon(&self.cx, run_id).await
    }

    /// `rollout gc`: removes this app's old AMIs (and the environment's old launch template versions)
    /// that nothing uses; `--dry-run` only reports.
    pub async fn gc(
        &self,
        req: &crate::gc::GcRequest,
    ) -> Result<crate::gc::GcReport, RolloutError> {
        use crate::gc::{Action, KeptDecision};
        let cx = &self.cx;
        crate::gc::check_request(&cx.cfg, req)?;
        let before = cx.requests.snapshot();
        // Kept releases whose window ended go first: their launch templates and AMIs are then free.
        let fates = strategy::expire_kept(cx, req.dry_run).await?;
        // The same environment with another region's clients (counted with the rest; a custom EC2
        // endpoint is one region's, so the others use the SDK's).
        let others: Vec<Ctx> = crate::gc::other_regions(&cx.cfg, req, &cx.clients.region)
            .iter()
            .map(|r| Ctx {
                clients: cx
                    .requests
                    .instrument(Clients::for_region(&self.sdk, Some(r), None)),
                ..cx.clone()
            })
            .collect();
        let mut report = crate::gc::run_regions(cx, &others, req).await?;
        for f in fates {
            let action = match (&f.failed, f.expired, req.dry_run) {
                (Some(e), _, _) => {
                    report
                        .problems
                        .push(format!("kept release {}: {e}", f.group));
                    Action::Failed
                }
                (None, false, _) => Action::Kept,
                (None, true, true) => Action::WouldRemove,
                (None, true, false) => Action::Removed,
            };
            report.kept_releases.push(KeptDecision {
                group: f.group,
                launch_template: f.launch_template,
                action,
                reason: f.reason,
            });
        }
        report.aws_requests = delta(&before, &cx.requests.snapshot());
        Ok(report)
    }
}

/// A gate tripped during the bake time: the previous release (the standby, kept whole) comes back through
/// `rollout undo`'s steps — behind the load balancer and healthy before the new release is deleted — and
/// the rollout ends `RolledBack`; if that fails, `Incomplete` with what to run.
async fn roll_back_tripped(cx: &Ctx, mut r: DeployReport) -> Result<DeployReport, RolloutError> {
    let started = Instant::now();
    let bad = r.new_group.as_ref().map(|g| g.name.clone());
    let standby: Vec<String> = r.kept.iter().map(|k| k.group.clone()).collect();
    cx.say(&format!(
        "Rolling back by itself: {}; bringing back {}",
        r.error.as_deref().unwrap_or("gate tripped"),
        if standby.is_empty() {
            "nothing (no previous release)".to_string()
        } else {
            standby.join(", ")
        }
    ));
    let undone = match strategy::preflight(cx, None).await {
        Ok(pf) if pf.problems.is_empty() => strategy::undo(cx, pf).await,
        Ok(pf) => Err(RolloutError::Preflight(pf.problems)),
        Err(e) => Err(e),
    };
    r.durations.rollback_s = started.elapsed().as_secs_f64();
    match undone {
        Ok(u) => {
            let mut rb = crate::report::RollbackReport::default();
            if let Some(g) = &u.new_group {
                rb.actions.push(format!(
                    "brought back {} [{}]: {} instance(s) in service on {}",
                    g.name,
                    u.ami.id,
                    g.instances.len(),
                    u.load_balancer
                ));
            }
            for g in &u.retired {
                rb.actions.push(format!(
                    "deleted the new release {g} with its launch template"
                ));
            }
            r.attention.extend(u.attention.iter().cloned());
            let back = u.new_group.as_ref().map(|g| g.name.as_str());
            r.kept.retain(|k| Some(k.group.as_str()) != back);
            r.retired.retain(|g| Some(g.as_str()) != back);
            r.deleted_launch_templates
                .extend(u.deleted_launch_templates.iter().cloned());
            r.rollback = Some(rb);
            r.status = Status::RolledBack;
            Err(RolloutError::RolledBack(Box::new(r)))
        }
        Err(e) => {
            r.attention.push(format!(
                "rolling back by itself failed: {e}; {} is still serving{}",
                bad.as_deref().unwrap_or("the new release"),
                if standby.is_empty() {
                    String::new()
                } else {
                    format!(
                        " — `rollout undo --env {}` brings back {}",
                        cx.cfg.names.env,
                        standby.join(", ")
                    )
                }
            ));
            r.status = Status::Incomplete;
            Err(RolloutError::Incomplete(Box::new(r)))
        }
    }
}

fn live_views(pf: &Preflight) -> Vec<LiveGroupView> {
    pf.groups
        .iter()
        .map(|g| LiveGroupView {
            group: GroupSummary::of(g, pf.group_amis.get(&g.name).cloned().flatten()),
            state: g.state.clone(),
        })
        .collect()
}

/// A deploy's or undo's outcome with its wall time and the requests it sent since `before`, also when it
/// rolled back or stopped part-way.
fn with_figures(
    cx: &Ctx,
    started: Instant,
    before: &BTreeMap<String, u64>,
    outcome: Result<DeployReport, RolloutError>,
) -> Result<DeployReport, RolloutError> {
    let finish = |r: &mut DeployReport| {
        r.durations.total_s = started.elapsed().as_secs_f64();
        r.aws_requests = delta(before, &cx.requests.snapshot());
        r.aws_requests_total = r.aws_requests.values().sum();
    };
    match outcome {
        Ok(mut r) => {
            finish(&mut r);
            Ok(r)
        }
        Err(RolloutError::RolledBack(mut r)) => {
            finish(&mut r);
            Err(RolloutError::RolledBack(r))
        }
        Err(RolloutError::Incomplete(mut r)) => {
            finish(&mut r);
            Err(RolloutError::Incomplete(r))
        }
        Err(e) => Err(e),
    }
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}
