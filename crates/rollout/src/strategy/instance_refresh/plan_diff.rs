//! `rollout plan`'s changes for an instance refresh, as diff lines: a new version of the live group's
//! launch template with only the AMI changed, that version made the template's default, and the group's
//! instances moved to it; the group keeps its name and load balancer attachment. The template is read here
//! (read-only) for its version numbers.

use super::live_group::live_group;
use crate::context::Ctx;
use crate::diff::DiffLine;
use crate::error::RolloutError;
use crate::strategy::plan_diff::{attachment, group_ami, group_template, new_ami};
use crate::strategy::preflight::Preflight;

/// What an instance refresh to `pf.ami` would change (nothing when there is no single live group on a
/// launch template: preflight's problems say why).
pub(super) async fn changes(cx: &Ctx, pf: &Preflight) -> Result<Vec<DiffLine>, RolloutError> {
    let Ok(g) = live_group(&pf.groups) else {
        return Ok(Vec::new());
    };
    if g.launch_template.is_none() {
        return Ok(Vec::new());
    }
    let ami = new_ami(pf);
    let t = group_template(cx, g).await?;
    let old_ami = group_ami(pf, g, t.as_ref());
    let num = |n: Option<i64>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
    let name = t
        .as_ref()
        .map(|t| t.name.clone())
        .or_else(|| {
            g.launch_template
                .as_ref()
                .and_then(|l| l.name.clone().or(l.id.clone()))
        })
        .unwrap_or_default();
    let from = num(t.as_ref().and_then(|t| t.version));
    let next = num(t.as_ref().and_then(|t| t.latest).map(|n| n + 1));
    let n = g.instances.len();
    Ok(vec![
        DiffLine::add(
            format!("launch template {name} version {next}"),
            format!("{ami} (version {from} with only the AMI changed: {old_ami} -> {ami})"),
        ),
        DiffLine::change(
            format!("launch template {name} default version"),
            num(t.as_ref().and_then(|t| t.default)),
            next.clone(),
        ),
        DiffLine::change(
            format!("group {}", g.name),
            format!("{old_ami}, version {from}, {n} instance(s)"),
            format!("{ami}, version {next}, {n} instance(s) replaced by an instance refresh"),
        ),
        DiffLine::same(
            attachment(cx),
            format!("serves {} (the group keeps its attachment)", g.name),
        ),
    ])
}
