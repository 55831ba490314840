//! Blue-green's rollback window (`blue_green.keep_previous_*`): after the cut-over an old group is not
//! deleted but kept — detached from the load balancer (it already is, after the drain), scaled to
//! `keep_previous_size` and tagged `bakery:rollout-state=retired` with `bakery:retired-at`,
//! `bakery:keep-until` and `bakery:release-run` — with its launch template, so that `rollout undo` can bring
//! it back. Everything a later command needs is on the group's tags: no local state.
//!
//! A kept group leaves the window when it is older than its `bakery:keep-until`, or when
//! `keep_previous_releases` newer ones are kept ([`expired`]); the next rollout, the next undo and
//! `rollout gc` delete it then, with its launch template ([`ExpireKept`], [`remove`]).

use super::create_group::delete_group;
use crate::config::KeepWindow;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::launch;
use crate::lb::LoadBalancer;
use crate::live::{self, Group};
use crate::names::{
    KEEP_UNTIL_TAG, RELEASE_RUN_TAG, RETIRED_AT_TAG, STATE_RESTORING, STATE_RETIRED, STATE_TAG,
};
use crate::report::{DeployReport, KeptRelease};
use crate::strategy::replace::Replace;
use crate::strategy::run::RolloutStep;
use crate::wait;
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// A kept release as the window judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::strategy) struct Entry {
    /// The group.
    pub name: String,
    /// `bakery:retired-at`.
    pub retired_at: Option<String>,
    /// `bakery:keep-until`.
    pub keep_until: Option<String>,
    /// Its launch template (deleted with it when this environment's).
    pub launch_template_id: Option<String>,
}

impl Entry {
    /// From a described kept group.
    pub fn of(g: &Group) -> Self {
        Entry {
            name: g.name.clone(),
            retired_at: g.retired_at.clone(),
            keep_until: g.keep_until.clone(),
            launch_template_id: g.launch_template.as_ref().and_then(|l| l.id.clone()),
        }
    }
}

/// Which of `kept` (newest first) are outside window `w` at `now` (RFC 3339 UTC, as the tags are
/// written, so that they compare as text), each with why. Beyond the newest `w.releases`, or past its own
/// `bakery:keep-until`. A window that is off keeps none.
pub(in crate::strategy) fn expired<'a>(
    kept: &'a [Entry],
    w: &KeepWindow,
    now: &str,
) -> Vec<(&'a Entry, String)> {
    kept.iter()
        .enumerate()
        .filter_map(|(i, e)| {
            // With the window off, a group is kept only as the standby of a bake time (`gates`), until
            // its `bakery:keep-until`: the bake's end.
            let standby = !w.on() && e.keep_until.as_deref().is_some_and(|u| u > now);
            if i as u32 >= w.releases && !standby {
                return Some((
                    e,
                    if w.on() {
                        format!(
                            "{} newer release(s) kept (blue_green.keep_previous_releases: {})",
                            i, w.releases
                        )
                    } else {
                        "the rollback window is off (blue_green)".to_string()
                    },
                ));
            }
            match &e.keep_until {
                Some(until) if until.as_str() <= now => {
                    Some((e, format!("its window ended at {until}")))
                }
                _ => None,
            }
        })
        .collect()
}

/// Which kept releases (by name, with why) would be out of the window a rollout at `now` leaves: the
/// groups it retires (`retiring`, kept when the window is on, newest), then those `kept` now.
pub(in crate::strategy) fn after_rollout(
    retiring: &[Group],
    kept: &[Group],
    w: &KeepWindow,
    now: SystemTime,
) -> Vec<(String, String)> {
    let stamp = bakery_core::ui::rfc3339(now);
    let until = keep_until(w, now);
    let mut entries: Vec<Entry> = retiring
        .iter()
        .filter(|_| w.on())
        .map(|g| Entry {
            retired_at: Some(stamp.clone()),
            keep_until: until.clone(),
            ..Entry::of(g)
        })
        .collect();
    entries.extend(kept.iter().map(Entry::of));
    newest_first(&mut entries);
    expired(&entries, w, &stamp)
        .into_iter()
        .map(|(e, why)| (e.name.clone(), why))
        .collect()
}

/// Sorts kept entries newest first (by `bakery:retired-at`, then name).
pub(in crate::strategy) fn newest_first(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.retired_at.cmp(&a.retired_at).then(b.name.cmp(&a.name)));
}

/// The `bakery:keep-until` of a group retired at `now` under `w`.
pub(in crate::strategy) fn keep_until(w: &KeepWindow, now: SystemTime) -> Option<String> {
    w.keep_for.map(|d| bakery_core::ui::rfc3339(now + d))
}

/// Keeps `g` — detached from the load balancer and drained already — for `rollout undo`: tags it
/// `retired` (first: what it is becomes known before anything else changes), scales it to `size`, waits
/// until it has shrunk. Records it in `report` as retired and kept. `size` is the window's, or during a
/// bake time (`gates`) the group's own: the standby keeps every instance until the bake time has passed,
/// and with the window off it is kept only until the bake's end.
pub(in crate::strategy) async fn keep(
    cx: &Ctx,
    g: &Group,
    size: u32,
    report: &mut DeployReport,
) -> Result<(), RolloutError> {
    let w = &cx.cfg.keep;
    let now = SystemTime::now();
    let retired_at = bakery_core::ui::rfc3339(now);
    let until = if w.on() {
        keep_until(w, now)
    } else {
        Some(bakery_core::ui::rfc3339(now + cx.cfg.gates.bake_time))
    };
    cx.detail(&format!(
        "Keeping {} for `rollout undo` ({}): size {size}, until {}",
        g.name,
        if w.on() {
            w.describe()
        } else {
            format!("the bake time's standby: {}", cx.cfg.gates.describe())
        },
        until.as_deref().unwrap_or("newer releases replace it")
    ));
    let mut tags = vec![
        (STATE_TAG, STATE_RETIRED),
        (RETIRED_AT_TAG, retired_at.as_str()),
        (RELEASE_RUN_TAG, cx.run_id.as_str()),
    ];
    if let Some(u) = &until {
        tags.push((KEEP_UNTIL_TAG, u.as_str()));
    }
    launch::tag_group(cx, &g.name, &tags).await?;
    if until.is_none() && g.keep_until.is_some() {
        launch::untag_group(cx, &g.name, &[KEEP_UNTIL_TAG]).await?;
    }
    scale(cx, &g.name, size).await?;
    wait::group_at_most(
        cx,
        &g.name,
        size as usize,
        cx.cfg.timeouts.retire,
        &cx.cancel,
    )
    .await?;
    report.retired.push(g.name.clone());
    report.kept.push(KeptRelease {
        group: g.name.clone(),
        ami: g.ami.clone(),
        launch_template: g.launch_template.as_ref().and_then(|l| l.name.clone()),
        size: size as i32,
        retired_at: Some(retired_at),
        keep_until: until,
    });
    Ok(())
}

/// Sets `group`'s min 0, max and desired `size`.
pub(super) async fn scale(cx: &Ctx, group: &str, size: u32) -> Result<(), RolloutError> {
    cx.clients
        .autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .min_size(0)
        .max_size(size as i32)
        .desired_capacity(size as i32)
        .send()
        .await
        .aws("UpdateAutoScalingGroup")?;
    Ok(())
}

/// Deletes kept group `e` with its instances, then its launch template if it is this environment's;
/// returns the template's name when it was deleted.
pub(in crate::strategy) async fn remove(
    cx: &Ctx,
    e: &Entry,
    cancel: &CancellationToken,
) -> Result<Option<String>, RolloutError> {
    let t = cx.cfg.timeouts.retire;
    let name = e.name.clone();
    wait::while_busy("DeleteAutoScalingGroup", t, cancel, || {
        delete_group(cx, &name, true)
    })
    .await?;
    wait::group_deleted(cx, &e.name, t, cancel).await?;
    match &e.launch_template_id {
        Some(id) => launch::delete_template_if_ours(cx, id).await,
        None => Ok(None),
    }
}

/// What `rollout gc` found of one kept release, and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptFate {
    /// The kept group.
    pub group: String,
    /// Its launch template.
    pub launch_template: Option<String>,
    /// Its window ended: it is (or, in a dry run, would be) deleted with its launch template.
    pub expired: bool,
    /// Deleting it failed: why.
    pub failed: Option<String>,
    /// Why it stays or goes.
    pub reason: String,
}

/// `rollout gc`: deletes the environment's kept releases whose window has ended (with `dry_run`, only
/// says which would go).
pub async fn expire_kept(cx: &Ctx, dry_run: bool) -> Result<Vec<KeptFate>, RolloutError> {
    let groups: Vec<Group> = live::groups(cx)
        .await?
        .into_iter()
        .filter(|g| g.kept() && !g.deleting())
        .collect();
    let mut entries: Vec<Entry> = groups.iter().map(Entry::of).collect();
    newest_first(&mut entries);
    let now = bakery_core::ui::rfc3339_now();
    let expired = expired(&entries, &cx.cfg.keep, &now);
    let mut out = Vec::new();
    for e in &entries {
        let why = expired
            .iter()
            .find(|(x, _)| x.name == e.name)
            .map(|(_, why)| why.clone());
        let mut fate = KeptFate {
            group: e.name.clone(),
            launch_template: groups
                .iter()
                .find(|g| g.name == e.name)
                .and_then(|g| g.launch_template.as_ref())
                .and_then(|l| l.name.clone()),
            expired: why.is_some(),
            failed: None,
            reason: why.clone().unwrap_or_else(|| {
                format!(
                    "inside the rollback window (until {})",
                    e.keep_until
                        .as_deref()
                        .unwrap_or("newer releases replace it")
                )
            }),
        };
        if let Some(why) = why
            && !dry_run
        {
            cx.say(&format!("Deleting kept release {}: {why}", e.name));
            if let Err(err) = remove(cx, e, &cx.cancel).await {
                fate.failed = Some(err.to_string());
            }
        }
        out.push(fate);
    }
    Ok(out)
}

/// Returns `name` (being brought back by an undo that failed or died) to the kept releases: detached
/// from the load balancer, its instances drained, scaled to `size`, tagged `retired` again (its window
/// is the one it had; `retired_by`, when known, is put back as `bakery:release-run`). Gone already counts
/// as done.
pub(in crate::strategy) async fn return_to_kept(
    cx: &Ctx,
    lb: &LoadBalancer,
    name: &str,
    size: u32,
    retired_by: Option<&str>,
    cancel: &CancellationToken,
) -> Result<(), RolloutError> {
    let t = &cx.cfg.timeouts;
    let Some(g) = live::group(cx, name).await? else {
        return Ok(());
    };
    if lb.attached_to(&g.load_balancers, &g.target_groups) {
        lb.detach_group(cx, name).await?;
    }
    wait::deregistered(cx, lb, &g.instance_ids(), t.drain, cancel).await?;
    scale(cx, name, size).await?;
    wait::group_at_most(cx, name, size as usize, t.retire, cancel).await?;
    let mut tags = vec![(STATE_TAG, STATE_RETIRED)];
    tags.extend(retired_by.map(|r| (RELEASE_RUN_TAG, r)));
    launch::tag_group(cx, name, &tags).await?;
    Ok(())
}

/// Marks kept group `name` as being brought back by this run (before anything else changes it).
pub(in crate::strategy) async fn mark_restoring(cx: &Ctx, name: &str) -> Result<(), RolloutError> {
    launch::tag_group(
        cx,
        name,
        &[(STATE_TAG, STATE_RESTORING), (RELEASE_RUN_TAG, &cx.run_id)],
    )
    .await?;
    Ok(())
}

/// The retirement tags, removed from a group brought back and live again.
pub(in crate::strategy) const RETIREMENT_TAGS: [&str; 3] =
    [RETIRED_AT_TAG, KEEP_UNTIL_TAG, RELEASE_RUN_TAG];

/// Step, after the old groups are retired: delete the kept releases whose window has ended — those
/// preflight found (`kept`) and those this run kept — with their launch templates. Past the point of no
/// return: a failure is reported for attention (the next rollout or `rollout gc` tries again).
pub(super) struct ExpireKept {
    /// The kept releases preflight found.
    pub kept: Vec<Group>,
}

#[async_trait::async_trait]
impl RolloutStep<Replace<Group>> for ExpireKept {
    fn name(&self) -> &'static str {
        "expire kept releases"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<Group>) -> Result<(), RolloutError> {
        let report = &mut st.common.report;
        let serving = st.new.clone().unwrap_or_default();
        let mut entries: Vec<Entry> = report
            .kept
            .iter()
            .map(|k| Entry {
                name: k.group.clone(),
                retired_at: k.retired_at.clone(),
                keep_until: k.keep_until.clone(),
                launch_template_id: st
                    .olds
                    .iter()
                    .find(|o| o.name == k.group)
                    .and_then(|o| o.launch_template.as_ref())
                    .and_then(|l| l.id.clone()),
            })
            .collect();
        entries.extend(
            self.kept
                .iter()
                .filter(|g| g.name != serving && !report.kept.iter().any(|k| k.group == g.name))
                .map(Entry::of),
        );
        newest_first(&mut entries);
        let now = bakery_core::ui::rfc3339_now();
        for (e, why) in expired(&entries, &cx.cfg.keep, &now) {
            cx.say(&format!("Deleting kept release {}: {why}", e.name));
            match remove(cx, e, &cx.cancel).await {
                Ok(lt) => {
                    report.expired.push(e.name.clone());
                    report.kept.retain(|k| k.group != e.name);
                    report.deleted_launch_templates.extend(lt);
                }
                Err(err) => report.attention.push(format!(
                    "kept release {} ({why}) could not be deleted: {err}; the next rollout or `rollout gc` tries again",
                    e.name
                )),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn e(name: &str, at: &str, until: Option<&str>) -> Entry {
        Entry {
            name: name.into(),
            retired_at: Some(at.into()),
            keep_until: until.map(str::to_string),
            launch_template_id: None,
        }
    }

    fn names(v: Vec<(&Entry, String)>) -> Vec<String> {
        v.into_iter().map(|(e, _)| e.name.clone()).collect()
    }

    #[test]
    fn the_window_keeps_the_newest_releases_until_their_time() {
        let mut kept = vec![
            e("a", "2026-01-01T00:00:00Z", Some("2026-01-02T00:00:00Z")),
            e("c", "2026-01-03T00:00:00Z", Some("2026-01-04T00:00:00Z")),
            e("b", "2026-01-02T00:00:00Z", None),
        ];
        newest_first(&mut kept);
        assert_eq!(
            kept.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["c", "b", "a"]
        );
        let w = |releases, keep_for| KeepWindow {
            releases,
            keep_for,
            size: 0,
        };
        let day = Some(Duration::from_secs(86_400));
        // One release: the newest stays until its keep-until, the others go.
        assert_eq!(
            names(expired(&kept, &w(1, day), "2026-01-03T12:00:00Z")),
            ["b", "a"]
        );
        assert_eq!(
            names(expired(&kept, &w(1, day), "2026-01-04T00:00:00Z")),
            ["c", "b", "a"]
        );
        // Three releases: each goes at its own keep-until; one without a keep-until stays.
        assert_eq!(
            names(expired(&kept, &w(3, day), "2026-01-02T00:00:00Z")),
            ["a"]
        );
        assert!(expired(&kept, &w(3, None), "2026-01-01T00:00:01Z").is_empty());
        // Off: none is kept, but a bake time's standby until its keep-until (the bake's end).
        let off = expired(&kept, &KeepWindow::default(), "2026-01-04T00:00:00Z");
        assert_eq!(names(off.clone()), ["c", "b", "a"]);
        assert!(off[0].1.contains("off"), "{}", off[0].1);
        assert_eq!(
            names(expired(
                &kept,
                &KeepWindow::default(),
                "2026-01-03T12:00:00Z"
            )),
            ["b", "a"]
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_428_430_777);
        assert_eq!(
            keep_until(&w(1, day), now).as_deref(),
            Some("2015-04-08T18:19:37Z")
        );
        assert_eq!(keep_until(&w(1, None), now), None);
    }
}
