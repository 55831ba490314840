//! Step: the point of no return. The healthy new group is tagged `live`; from here on a failure no longer
//! rolls back.

use super::wait_healthy::Healthy;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::launch;
use crate::live::Group;
use crate::report::GroupSummary;
use crate::strategy::replace::Replace;
use crate::strategy::run::RolloutStep;

/// Marks the new group live.
pub(super) struct MarkLive;

#[async_trait::async_trait]
impl RolloutStep<Replace<Group>> for MarkLive {
    fn name(&self) -> &'static str {
        "mark live"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<Group>) -> Result<(), RolloutError> {
        let Healthy(Some(healthy)) = &st.launch else {
            unreachable!("the health wait runs first");
        };
        launch::mark_live(cx, &healthy.name).await?;
        cx.detail(&format!("{} is healthy and marked live", healthy.name));
        st.common.report.new_group = Some(GroupSummary::of(healthy, Some(st.ami.id.clone())));
        st.common.committed = true;
        Ok(())
    }
}
