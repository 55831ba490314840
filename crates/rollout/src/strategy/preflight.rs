//! What is live and what a rollout would launch ([`Preflight`]), found with read-only calls
//! ([`preflight`]): the load balancer, the live groups, the launch spec, the AMI, and each strategy's own
//! checks (instance refresh: its live group; spot fleet: the open fleets).

use super::instance_refresh::live_group;
use super::spot_fleet::fleet::{self, LiveFleet};
use crate::ami::ResolvedAmi;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::launch::LaunchSpec;
use crate::lb::LoadBalancer;
use crate::live::Group;
use crate::manifest::StrategyKind;
use std::collections::BTreeMap;
use std::time::Duration;

/// What is live and what a rollout would launch, found with read-only calls.
#[derive(Debug, Clone)]
pub struct Preflight {
    /// The load balancer (None: not set up).
    pub lb: Option<LoadBalancer>,
    /// The environment's groups, oldest first, instances annotated with the load balancer's view; not
    /// the kept previous releases (`kept`).
    pub groups: Vec<Group>,
    /// Previous releases kept for `rollout undo` (tagged `retired`), newest first.
    pub kept: Vec<Group>,
    /// The AMI each group runs.
    pub group_amis: BTreeMap<String, Option<String>>,
    /// The launch spec, when it could be worked out.
    pub launch: Option<LaunchSpec>,
    /// The AMI to roll out, when one was asked for and found.
    pub ami: Option<ResolvedAmi>,
    /// The environment's open spot fleets, oldest first (strategy `spot-fleet`; empty otherwise).
    pub fleets: Vec<LiveFleet>,
    /// Everything that stops a rollout now.
    pub problems: Vec<String>,
    /// How long preflight took.
    pub took: Duration,
}

impl Preflight {
    /// The groups a rollout replaces: not being deleted already.
    pub fn retirable(&self) -> Vec<Group> {
        self.groups
            .iter()
            .filter(|g| !g.deleting() && !g.restoring())
            .cloned()
            .collect()
    }

    /// The live groups' total desired capacity (what the new group matches when `match_live`).
    pub fn live_desired(&self) -> u32 {
        self.groups
            .iter()
            .filter(|g| !g.in_progress() && !g.deleting() && !g.restoring())
            .map(|g| g.desired.max(0) as u32)
            .sum()
    }
}

/// Finds what is live and checks what a rollout needs, without changing anything.
pub async fn preflight(cx: &Ctx, ami: Option<&str>) -> Result<Preflight, RolloutError> {
    let started = tokio::time::Instant::now();
    let mut problems = Vec::new();
    let lb = match LoadBalancer::find(cx).await {
        Ok(lb) => Some(lb),
        Err(e @ RolloutError::NotSetUp { .. }) => {
            problems.push(e.to_string());
            None
        }
        Err(e) => return Err(e),
    };
    let mut groups = crate::live::groups(cx).await?;
    if let Some(lb) = &lb
        && groups.iter().any(|g| !g.instances.is_empty())
    {
        let health = lb.health(cx).await?;
        for g in &mut groups {
            for i in &mut g.instances {
                i.load_balancer = health.get(&i.id).cloned();
            }
        }
    }
    let mut group_amis = BTreeMap::new();
    for g in &groups {
        group_amis.insert(g.name.clone(), crate::live::group_ami(cx, g).await?);
    }
    let (mut kept, groups): (Vec<Group>, Vec<Group>) =
        groups.into_iter().partition(|g| g.kept() && !g.deleting());
    kept.sort_by(|a, b| {
        b.retired_at
            .cmp(&a.retired_at)
            .then(b.created.cmp(&a.created))
            .then(b.name.cmp(&a.name))
    });
    for g in groups.iter().filter(|g| g.restoring() && !g.deleting()) {
        let run = g.release_run.clone().unwrap_or_else(|| "unknown".into());
        problems.push(format!(
            "`rollout undo` (run {run}) is bringing back {} and has not finished; if that run is dead, \
             return the group to the kept releases with `rollout abandon --run-id {run}`, then retry",
            g.name
        ));
    }
    for g in groups.iter().filter(|g| g.in_progress() && !g.deleting()) {
        problems.push(
            RolloutError::InProgress {
                env: cx.cfg.names.env.clone(),
                group: g.name.clone(),
                run_id: g.run_id.clone().unwrap_or_else(|| "unknown".into()),
            }
            .to_string(),
        );
    }
    if cx.cfg.strategy == StrategyKind::InstanceRefresh {
        problems.extend(live_group::preflight_problems(cx, &groups).await?);
    }
    let mut fleets = Vec::new();
    if cx.cfg.strategy == StrategyKind::SpotFleet {
        let (found, p) = fleet::preflight(cx).await?;
        fleets = found;
        problems.extend(p);
    }
    // Groups this rollout creates launch where `network` says; instance refresh keeps the live group's.
    if let Some(lb) = &lb
        && cx.cfg.strategy != StrategyKind::InstanceRefresh
    {
        problems.extend(super::zones::problems(cx, lb).await?);
    }
    let launch = match &lb {
        Some(lb) => match crate::launch::spec(cx, lb).await {
            Ok(s) => Some(s),
            Err(p) => {
                problems.extend(p);
                None
            }
        },
        None => None,
    };
    // The alarm gates are checked for a rollout (an AMI given), not for an undo: that may be why one is
    // in ALARM.
    if ami.is_some() {
        problems.extend(crate::alarms::preflight_problems(cx).await?);
    }
    let ami = match ami {
        None => None,
        Some(given) => match crate::ami::resolve(&cx.clients, given).await {
            Ok(a) => Some(a),
            Err(e @ (RolloutError::Ami { .. } | RolloutError::Io { .. })) => {
                problems.push(e.to_string());
                None
            }
            Err(e) => return Err(e),
        },
    };
    Ok(Preflight {
        lb,
        groups,
        kept,
        group_amis,
        launch,
        ami,
        fleets,
        problems,
        took: started.elapsed(),
    })
}
