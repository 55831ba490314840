//! Step: the rollback's last word. Rollout makes no call on the old capacity before the new one is live;
//! when a run rolls back, this shows the old groups or fleets are as they were, and serving.

use super::capacity::Capacity;
use super::state::Replace;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::lb::TargetState;
use crate::strategy::run::RolloutStep;
use bakery_core::pipeline::Outcome;

/// Records nothing when run; on rollback checks the old capacity against what preflight saw.
pub(in crate::strategy) struct OldUntouched;

#[async_trait::async_trait]
impl<C: Capacity> RolloutStep<Replace<C>> for OldUntouched {
    fn name(&self) -> &'static str {
        "old capacity untouched"
    }

    async fn run(&mut self, _cx: &Ctx, _st: &mut Replace<C>) -> Result<(), RolloutError> {
        Ok(())
    }

    async fn cleanup(&mut self, cx: &Ctx, st: &mut Replace<C>, outcome: Outcome) {
        if !st.created_anything() || !st.common.undo(cx, outcome) {
            return;
        }
        let now = C::look_again(cx, &st.olds).await;
        let health = st.lb.health(cx).await.unwrap_or_default();
        let serving = |id: &String| health.get(id).is_some_and(TargetState::in_service);
        let label = st.lb.label();
        let rb = &mut st.common.rollback;
        rb.old_groups_unchanged = true;
        for (old, now) in st.olds.iter().map(Capacity::seen).zip(now) {
            let now = match now {
                Ok(Some(now)) => now,
                Ok(None) => {
                    rb.old_groups_unchanged = false;
                    rb.old_groups.push(format!(
                        "{}: GONE ({} outside this rollout)",
                        old.name, old.gone_verb
                    ));
                    continue;
                }
                Err(e) => {
                    rb.old_groups_unchanged = false;
                    rb.old_groups
                        .push(format!("{}: could not be described: {e}", old.name));
                    continue;
                }
            };
            let same = now.key == old.key;
            rb.old_groups_unchanged &= same;
            // Instances that served before the rollout and do not now: rollout made no call on them, but
            // an operator must know the load balancer lost them.
            let lost: Vec<String> = old
                .served
                .iter()
                .filter(|i| now.instances.contains(i))
                .filter(|i| !serving(i))
                .map(|i| {
                    format!(
                        "{i} ({})",
                        health
                            .get(i)
                            .map(|s| s.state.as_str())
                            .unwrap_or("not registered")
                    )
                })
                .collect();
            if !lost.is_empty() {
                rb.warnings.push(format!(
                    "{label}: instance(s) of {} that were in service before the rollout are not now: {}; rollout made no call on them: check the load balancer (re-register them if needed)",
                    now.name,
                    lost.join(", ")
                ));
            }
            rb.old_groups.push(format!(
                "{}: {}, {}/{} instance(s) in service on {label}",
                now.name,
                if same {
                    "unchanged".to_string()
                } else {
                    format!(
                        "changed since the rollout started (not by rollout): {} -> {}",
                        old.shown, now.shown
                    )
                },
                now.instances.iter().filter(|i| serving(i)).count(),
                now.instances.len(),
            ));
        }
    }
}
