//! Step: the in-service guard. One more look at the new capacity's instances on the load balancer before
//! the point of no return (and before each old one but the first is retired, see
//! [`RetireOld`](super::retire_old::RetireOld)).

use super::capacity::Capacity;
use super::state::Replace;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::strategy::run::RolloutStep;

/// Fails unless every new instance is in service on the load balancer.
pub(in crate::strategy) struct InServiceGuard;

impl InServiceGuard {
    /// The check itself.
    pub async fn check<C: Capacity>(cx: &Ctx, st: &Replace<C>) -> Result<(), RolloutError> {
        st.lb
            .require_in_service(cx, &st.new_ids, C::NEW_WHOSE)
            .await
    }
}

#[async_trait::async_trait]
impl<C: Capacity> RolloutStep<Replace<C>> for InServiceGuard {
    fn name(&self) -> &'static str {
        "in-service guard"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<C>) -> Result<(), RolloutError> {
        Self::check(cx, st).await
    }
}
