//! Step: the launch template version the live group runs (read only).

use super::state::Refresh;
use super::versions::current_version;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::strategy::run::RolloutStep;

/// Reads the group's launch template version.
pub(super) struct ReadCurrentVersion;

#[async_trait::async_trait]
impl RolloutStep<Refresh> for ReadCurrentVersion {
    fn name(&self) -> &'static str {
        "current version"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Refresh) -> Result<(), RolloutError> {
        st.current = Some(current_version(cx, &st.group).await?);
        Ok(())
    }
}
