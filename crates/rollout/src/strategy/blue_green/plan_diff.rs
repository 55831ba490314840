//! `rollout plan`'s changes for blue-green, as diff lines: a new launch template and group beside the
//! live ones, the load balancer moved from the live groups to the new one, each old group deleted with
//! its launch template (or kept for `rollout undo`), and the kept releases whose window would end deleted.
//! The live groups' launch templates are read here (read-only) for their instance type and ownership.

use super::keep;
use crate::context::Ctx;
use crate::diff::DiffLine;
use crate::error::RolloutError;
use crate::live::Group;
use crate::strategy::plan_diff::{attachment, group_ami, group_detail, group_template, new_ami};
use crate::strategy::preflight::Preflight;
use std::time::SystemTime;

/// What a blue-green rollout of `pf.ami` would change.
pub(super) async fn changes(cx: &Ctx, pf: &Preflight) -> Result<Vec<DiffLine>, RolloutError> {
    let cfg = &cx.cfg;
    let names = &cfg.names;
    let ami = new_ami(pf);
    let desired = cfg.capacity.desired_given_live(pf.live_desired());
    let new_group = names.group("<timestamp>");
    let itype = &cfg.instances.instance_type;
    let mut d = vec![
        DiffLine::add(
            format!("launch template {}", names.launch_template("<timestamp>")),
            format!("{ami}, {itype}"),
        ),
        DiffLine::add(
            format!("group {new_group}"),
            format!(
                "{ami}, {itype}, desired {desired} (min {}, max {})",
                cfg.capacity.min.min(desired),
                cfg.capacity.max.max(desired)
            ),
        ),
    ];
    let olds: Vec<Group> = pf
        .retirable()
        .into_iter()
        .filter(|g| !g.in_progress())
        .collect();
    let mut views = Vec::new();
    for g in &olds {
        views.push(group_template(cx, g).await?);
    }
    let serving = if olds.is_empty() {
        "no group".to_string()
    } else {
        olds.iter()
            .zip(&views)
            .map(|(g, t)| format!("{} ({})", g.name, group_ami(pf, g, t.as_ref())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    d.push(DiffLine::change(
        attachment(cx),
        format!("serves {serving}"),
        format!("serves {new_group} ({ami})"),
    ));
    let w = &cfg.keep;
    let now = SystemTime::now();
    let until = keep::keep_until(w, now);
    // With alarm gates, what happens to an old group happens only after the bake time.
    let bake = cfg.gates.baking().then(|| {
        format!(
            "after the {} bake time (kept whole and detached meanwhile; brought back if {} goes ALARM)",
            crate::config::human_duration(cfg.gates.bake_time),
            cfg.gates.alarms.join(" or ")
        )
    });
    for (g, t) in olds.iter().zip(&views) {
        let was = group_detail(pf, g, t.as_ref());
        if w.on() {
            let line = DiffLine::change(
                format!("group {}", g.name),
                format!("live: {was}"),
                format!(
                    "kept for `rollout undo` until {}: detached, size {}, with its launch template",
                    until.as_deref().unwrap_or("newer releases replace it"),
                    w.size
                ),
            );
            d.push(match &bake {
                Some(b) => line.with_note(b.clone()),
                None => line,
            });
            continue;
        }
        d.push(DiffLine::remove(
            format!("group {}", g.name),
            match &bake {
                Some(b) => format!("{was}; deleted {b}"),
                None => was,
            },
        ));
        if let Some(t) = t.as_ref().filter(|t| t.ours) {
            d.push(DiffLine::remove(
                format!("launch template {}", t.name),
                t.describe(),
            ));
        }
    }
    let expired = keep::after_rollout(&olds, &pf.kept, w, now);
    for g in &pf.kept {
        let t = group_template(cx, g).await?;
        let ami = group_ami(pf, g, t.as_ref());
        match expired.iter().find(|(name, _)| *name == g.name) {
            Some((_, why)) => {
                d.push(DiffLine::remove(
                    format!("kept release {}", g.name),
                    format!("{ami}: {why}"),
                ));
                if let Some(t) = t.as_ref().filter(|t| t.ours) {
                    d.push(DiffLine::remove(
                        format!("launch template {}", t.name),
                        t.describe(),
                    ));
                }
            }
            None => d.push(DiffLine::same(
                format!("kept release {}", g.name),
                format!(
                    "{ami}, size {}, kept until {}",
                    g.desired,
                    g.keep_until
                        .as_deref()
                        .unwrap_or("newer releases replace it")
                ),
            )),
        }
    }
    Ok(d)
}
