//! The group an instance refresh replaces the instances of ([`live_group`]: the one live group), and the
//! read-only checks `preflight` runs on it for this strategy ([`preflight_problems`]).

use super::refresh::active_refresh;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::live::Group;

/// The group an instance refresh replaces the instances of: the one live group.
pub(super) fn live_group(groups: &[Group]) -> Result<&Group, String> {
    let live: Vec<&Group> = groups
        .iter()
        .filter(|g| !g.deleting() && !g.in_progress())
        .collect();
    match live.as_slice() {
        [g] => Ok(g),
        [] => Err(
            "instance-refresh replaces the instances of the live group, and there is none: roll out once with \"strategy\": \"blue-green\" to create it"
                .to_string(),
        ),
        many => Err(format!(
            "instance-refresh needs exactly one live group, found {}: {} (re-run the blue-green rollout that left them, or retire the extra ones)",
            many.len(),
            many.iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Read-only checks `preflight` runs for this strategy: one live group, on a launch template, with no
/// instance refresh running.
pub(in crate::strategy) async fn preflight_problems(
    cx: &Ctx,
    groups: &[Group],
) -> Result<Vec<String>, RolloutError> {
    let g = match live_group(groups) {
        Ok(g) => g,
        Err(p) => return Ok(vec![p]),
    };
    let mut problems = Vec::new();
    if g.launch_template.is_none() {
        problems.push(format!(
            "{} has no launch template{}: instance-refresh creates a new launch template version",
            g.name,
            g.launch_configuration
                .as_deref()
                .map(|lc| format!(" (it uses launch configuration {lc})"))
                .unwrap_or_default()
        ));
    }
    match active_refresh(cx, &g.name).await {
        Ok(Some(r)) => problems.push(format!(
            "instance refresh {} of {} is {} ({}% done): wait for it to end, or cancel it (aws autoscaling cancel-instance-refresh --auto-scaling-group-name {})",
            r.id, g.name, r.status, r.percentage, g.name
        )),
        Ok(None) => {}
        Err(e) => problems.push(format!(
            "cannot tell whether an instance refresh of {} is running: {e}",
            g.name
        )),
    }
    Ok(problems)
}
