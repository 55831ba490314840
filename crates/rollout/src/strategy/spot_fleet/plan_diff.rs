//! `rollout plan`'s changes for a spot fleet, as diff lines: a new launch template and fleet registering
//! into the target group in place of the live fleets, each old fleet cancelled with its instances and its
//! launch template deleted (when rollout made it); Auto Scaling groups are left in place. The old fleets'
//! launch templates are read here (read-only) for their name and ownership.

use crate::context::Ctx;
use crate::diff::DiffLine;
use crate::error::RolloutError;
use crate::live::LaunchTemplateRef;
use crate::names::STATE_IN_PROGRESS;
use crate::strategy::plan_diff::{group_detail, group_template, new_ami, template_view};
use crate::strategy::preflight::Preflight;

/// What a spot-fleet rollout of `pf.ami` would change.
pub(super) async fn changes(cx: &Ctx, pf: &Preflight) -> Result<Vec<DiffLine>, RolloutError> {
    let cfg = &cx.cfg;
    let sf = &cfg.spot_fleet;
    let names = &cfg.names;
    let ami = new_ami(pf);
    let tg = names.target_group();
    let mut d = vec![
        DiffLine::add(
            format!("launch template {}", names.launch_template("<timestamp>")),
            ami.clone(),
        ),
        DiffLine::add(
            "spot fleet (new request)",
            format!(
                "{ami}, {} instance(s) of {}, {}, {}",
                sf.target_capacity,
                sf.instance_types.join(", "),
                sf.allocation_strategy,
                sf.max_price
                    .as_deref()
                    .map(|p| format!("max price {p} USD/h"))
                    .unwrap_or_else(|| "max price: the on-demand price".into())
            ),
        ),
    ];
    let olds: Vec<_> = pf
        .fleets
        .iter()
        .filter(|f| f.rollout_state.as_deref() != Some(STATE_IN_PROGRESS))
        .collect();
    let ami_of = |a: &Option<String>| a.clone().unwrap_or_else(|| "AMI unknown".into());
    let registered = if olds.is_empty() {
        "no fleet".to_string()
    } else {
        olds.iter()
            .map(|f| format!("{} ({})", f.id, ami_of(&f.ami)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    d.push(DiffLine::change(
        format!("target group {tg}"),
        format!("registers {registered}"),
        format!("registers the new fleet ({ami})"),
    ));
    for f in olds {
        d.push(DiffLine::remove(
            format!("spot fleet {}", f.id),
            format!(
                "{}, {} of {} instance(s), {}/{}",
                ami_of(&f.ami),
                f.instances.len(),
                f.target_capacity,
                f.state.as_str(),
                f.activity.as_ref().map_or("-", |a| a.as_str())
            ),
        ));
        let Some(id) = &f.launch_template_id else {
            continue;
        };
        let r = LaunchTemplateRef {
            id: Some(id.clone()),
            name: None,
            version: None,
        };
        if let Some(t) = template_view(cx, &r).await?.filter(|t| t.ours) {
            d.push(DiffLine::remove(
                format!("launch template {}", t.name),
                t.describe(),
            ));
        }
    }
    for g in pf.retirable() {
        let t = group_template(cx, &g).await?;
        d.push(DiffLine::same(
            format!("group {}", g.name),
            format!(
                "{}; left in place (spot-fleet retires only spot fleets)",
                group_detail(pf, &g, t.as_ref())
            ),
        ));
    }
    Ok(d)
}
