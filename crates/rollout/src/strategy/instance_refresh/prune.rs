//! Step: bound the template's versions to `max_launch_template_versions`, oldest first. Never fails: what
//! it could not do needs attention.

use super::state::Refresh;
use super::versions::{Current, delete_versions, versions_in_use};
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::report::DeployReport;
use crate::strategy::run::RolloutStep;

/// Deletes versions beyond the limit.
pub(super) struct PruneVersions;

#[async_trait::async_trait]
impl RolloutStep<Refresh> for PruneVersions {
    fn name(&self) -> &'static str {
        "prune versions"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Refresh) -> Result<(), RolloutError> {
        let c = st.current()?.clone();
        let version = st.version.unwrap_or_default();
        prune(cx, &c, version, &mut st.common.report).await;
        if let Some(t) = st.adopt_started {
            st.common.report.durations.retire_s = t.elapsed().as_secs_f64();
        }
        Ok(())
    }
}

/// Deletes the oldest versions beyond `max_launch_template_versions`, never the default, the new
/// one, the one it replaced (what a rollback by hand goes back to), or one any group references.
async fn prune(cx: &Ctx, c: &Current, version: i64, report: &mut DeployReport) {
    let keep = cx.cfg.instance_refresh.max_launch_template_versions as usize;
    let listed = cx
        .clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(&c.template_id)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("DescribeLaunchTemplateVersions");
    let versions = match listed {
        Ok(v) => v,
        Err(e) => {
            report
                .attention
                .push(format!("{}: versions not pruned: {e}", c.template_name));
            return;
        }
    };
    if versions.len() <= keep {
        return;
    }
    let latest = versions
        .iter()
        .filter_map(|v| v.version_number())
        .max()
        .unwrap_or(version);
    let default = versions
        .iter()
        .find(|v| v.default_version() == Some(true))
        .and_then(|v| v.version_number())
        .unwrap_or(version);
    let used = match versions_in_use(cx, c, latest, default).await {
        Ok(u) => u,
        Err(e) => {
            report.attention.push(format!(
                "{}: versions not pruned (could not check what uses them): {e}",
                c.template_name
            ));
            return;
        }
    };
    let mut numbers: Vec<i64> = versions.iter().filter_map(|v| v.version_number()).collect();
    numbers.sort_unstable();
    let doomed: Vec<i64> = numbers
        .iter()
        .copied()
        .filter(|n| *n != default && *n != version && *n != c.version && !used.contains(n))
        .take(versions.len() - keep)
        .collect();
    if doomed.is_empty() {
        return;
    }
    match delete_versions(cx, &c.template_id, &doomed).await {
        Ok(()) => {
            let list = doomed
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            cx.detail(&format!(
                "Deleted {} version(s) {list} (keeping {keep})",
                c.template_name
            ));
            report
                .deleted_launch_templates
                .extend(doomed.iter().map(|n| format!("{}:{n}", c.template_name)));
        }
        Err(e) => report.attention.push(format!(
            "{}: old versions not deleted: {e}",
            c.template_name
        )),
    }
}
