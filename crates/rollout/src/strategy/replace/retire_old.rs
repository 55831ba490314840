//! Step: retire the old capacity, one at a time, each only while the new capacity is serving. Past the
//! point of no return: a failure stops here and the rest is reported, nothing is undone.

use super::capacity::Capacity;
use super::in_service::InServiceGuard;
use super::state::Replace;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::launch;
use crate::report::DeployReport;
use crate::strategy::run::RolloutStep;
use tokio::time::Instant;

/// Retires every old group or fleet.
pub(in crate::strategy) struct RetireOld;

#[async_trait::async_trait]
impl<C: Capacity> RolloutStep<Replace<C>> for RetireOld {
    fn name(&self) -> &'static str {
        "retire old capacity"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<C>) -> Result<(), RolloutError> {
        let started = Instant::now();
        let olds = st.olds.clone();
        let mut error = None;
        for (n, old) in olds.iter().enumerate() {
            if cx.cancel.is_cancelled() {
                error = Some(format!("interrupted while retiring the old {}", C::PLURAL));
                break;
            }
            if n > 0
                && let Err(e) = InServiceGuard::check(cx, st).await
            {
                error = Some(format!("stopped retiring old {}: {e}", C::PLURAL));
                break;
            }
            if let Err(e) = old
                .retire(cx, &st.lb, st.keep_retired, &mut st.common.report)
                .await
            {
                error = Some(format!("retiring {}: {e}", old.id()));
                break;
            }
        }
        st.common.report.durations.retire_s = started.elapsed().as_secs_f64();
        match error {
            None => Ok(()),
            Some(e) => {
                st.common.report.error = Some(e);
                Err(RolloutError::Incomplete(Box::new(st.common.report.clone())))
            }
        }
    }
}

/// Deletes an old capacity's launch template `id` if rollout made it for this environment; records it.
pub(in crate::strategy) async fn retire_template(
    cx: &Ctx,
    id: &str,
    report: &mut DeployReport,
) -> Result<(), RolloutError> {
    match launch::delete_template_if_ours(cx, id).await? {
        Some(n) => {
            cx.detail(&format!("Deleted launch template {n}"));
            report.deleted_launch_templates.push(n);
        }
        None => cx.detail(&format!(
            "Launch template {id} kept: not created by rollout for {}/{}",
            cx.cfg.names.app, cx.cfg.names.env
        )),
    }
    Ok(())
}
