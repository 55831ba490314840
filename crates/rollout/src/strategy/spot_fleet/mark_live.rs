//! Step: the point of no return. The healthy new fleet is tagged `live`; from here on a failure no longer
//! rolls back.

use super::fleet::LiveFleet;
use super::wait_healthy::new_summary;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::names::{STATE_LIVE, STATE_TAG};
use crate::strategy::replace::Replace;
use crate::strategy::run::RolloutStep;
use aws_sdk_ec2::types::Tag;

/// Marks the new fleet live.
pub(super) struct MarkFleetLive;

#[async_trait::async_trait]
impl RolloutStep<Replace<LiveFleet>> for MarkFleetLive {
    fn name(&self) -> &'static str {
        "mark live"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<LiveFleet>) -> Result<(), RolloutError> {
        let id = st.new.clone().unwrap_or_default();
        cx.clients
            .ec2
            .create_tags()
            .resources(&id)
            .tags(Tag::builder().key(STATE_TAG).value(STATE_LIVE).build())
            .send()
            .await
            .aws("CreateTags")?;
        cx.detail(&format!("{id} is healthy and marked live"));
        let ids = st.new_ids.clone();
        st.common.report.new_group = Some(new_summary(cx, st, &ids).await);
        st.common.committed = true;
        Ok(())
    }
}
