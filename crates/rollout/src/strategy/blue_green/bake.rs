//! Step, after the cut-over: the bake time (`gates`). The previous release was kept whole and detached
//! (`keep`, with the group's own size); every `check_interval` the named CloudWatch alarms are read. One in
//! ALARM (or gone) trips the gate: the step fails with the report saying so, and the session rolls back
//! by itself with `rollout undo`'s steps (the standby comes back behind the load balancer, through the
//! health gates, before the new release is deleted). When the bake time passes, the standby shrinks to the
//! rollback window's size, or, with the window off, leaves it (the next step deletes it).
//!
//! Killed during the bake, the standby stays a kept release (tagged `retired`, `bakery:keep-until` the
//! bake's end): `rollout undo` brings it back, and the next rollout or `rollout gc` deletes it.

use super::keep;
use crate::alarms;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::live::Group;
use crate::report::BakeReport;
use crate::strategy::replace::Replace;
use crate::strategy::run::RolloutStep;
use crate::wait;
use std::time::Duration;
use tokio::time::Instant;

/// How often, at most, a terminal-less run says that the alarms are still out of ALARM.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// Watches the alarms for the bake time; a no-op without gates.
pub(super) struct Bake;

#[async_trait::async_trait]
impl RolloutStep<Replace<Group>> for Bake {
    fn name(&self) -> &'static str {
        "bake time"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<Group>) -> Result<(), RolloutError> {
        let g = &cx.cfg.gates;
        if !g.baking() {
            return Ok(());
        }
        let started = Instant::now();
        let deadline = started + g.bake_time;
        let standby: Vec<String> = st
            .common
            .report
            .kept
            .iter()
            .map(|k| k.group.clone())
            .collect();
        let mut b = BakeReport {
            alarms: g.alarms.clone(),
            bake_time_s: g.bake_time.as_secs(),
            ..Default::default()
        };
        if standby.is_empty() {
            // A first rollout has nothing to return to: watching would only delay it.
            cx.say("Bake time skipped: no previous release to return to (first rollout)");
            b.outcome = "skipped".into();
            st.common.report.bake = Some(b);
            return Ok(());
        }
        cx.say(&format!(
            "Bake time: watching {} for {}; {} stays ready, detached, until then",
            g.alarms.join(", "),
            crate::config::human_duration(g.bake_time),
            standby.join(", ")
        ));
        let mut last_said = Instant::now();
        let mut last_read_ok;
        loop {
            match alarms::read(cx, &g.alarms).await {
                Ok(states) => {
                    b.checks += 1;
                    last_read_ok = true;
                    if let Some(bad) = states.iter().find(|a| a.trips()) {
                        b.watched_s = started.elapsed().as_secs_f64();
                        b.outcome = "tripped".into();
                        b.tripped_by = Some(bad.describe());
                        return Err(self.stop(
                            cx,
                            st,
                            b,
                            format!(
                                "gate tripped during the bake time: {} after {:.0} s",
                                bad.describe(),
                                started.elapsed().as_secs_f64()
                            ),
                        ));
                    }
                }
                Err(e) => {
                    b.failed_checks += 1;
                    last_read_ok = false;
                    cx.detail(&format!("Could not read the alarms (trying again): {e}"));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if last_said.elapsed() >= PROGRESS_EVERY || g.check_interval >= PROGRESS_EVERY {
                cx.detail(&format!(
                    "Alarms out of ALARM; {} s of the bake time left",
                    (deadline - now).as_secs()
                ));
                last_said = Instant::now();
            }
            let pause = g.check_interval.min(deadline - now);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = cx.cancel.cancelled() => {
                    b.watched_s = started.elapsed().as_secs_f64();
                    b.outcome = "interrupted".into();
                    return Err(self.stop(cx, st, b, "interrupted during the bake time".into()));
                }
            }
        }
        b.watched_s = started.elapsed().as_secs_f64();
        if !last_read_ok {
            b.outcome = "unknown".into();
            return Err(self.stop(
                cx,
                st,
                b,
                "the alarms could not be read at the end of the bake time".into(),
            ));
        }
        b.outcome = "passed".into();
        st.common.report.bake = Some(b);
        st.common.report.durations.bake_s = started.elapsed().as_secs_f64();
        cx.say(&format!(
            "Bake time passed: {} stayed out of ALARM",
            g.alarms.join(", ")
        ));
        self.release_standby(cx, st).await
    }
}

impl Bake {
    /// Records how the bake ended and what is left; the error the step returns. The standby stays kept.
    fn stop(&self, cx: &Ctx, st: &mut Replace<Group>, b: BakeReport, why: String) -> RolloutError {
        let report = &mut st.common.report;
        report.durations.bake_s = b.watched_s;
        if !b.tripped() {
            for k in &report.kept {
                report.attention.push(format!(
                    "{} (the previous release, {} instance(s)) is kept, detached: `rollout undo --env {}` brings it back; the next rollout or `rollout gc` deletes it after {}",
                    k.group,
                    k.size,
                    cx.cfg.names.env,
                    k.keep_until.as_deref().unwrap_or("newer releases replace it")
                ));
            }
        }
        report.bake = Some(b);
        report.error = Some(why.clone());
        RolloutError::Interrupted(why)
    }

    /// The bake passed: each standby shrinks to the window's size (tagged with the window's end), or,
    /// with the window off, is marked ended so that the next step deletes it.
    async fn release_standby(&self, cx: &Ctx, st: &mut Replace<Group>) -> Result<(), RolloutError> {
        let w = &cx.cfg.keep;
        let now = bakery_core::ui::rfc3339_now();
        for k in st.common.report.kept.iter_mut() {
            if !w.on() {
                k.keep_until = Some(now.clone());
                continue;
            }
            if k.size as u32 > w.size {
                cx.detail(&format!(
                    "Shrinking {} to {} (the rollback window's size)",
                    k.group, w.size
                ));
                keep::scale(cx, &k.group, w.size).await?;
                wait::group_at_most(
                    cx,
                    &k.group,
                    w.size as usize,
                    cx.cfg.timeouts.retire,
                    &cx.cancel,
                )
                .await?;
                k.size = w.size as i32;
            }
        }
        Ok(())
    }
}
