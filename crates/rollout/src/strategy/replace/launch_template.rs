//! Step: the new launch template (AMI, key, security groups, user data, instance profile, tags); deleted
//! again on rollback once the capacity that launched from it is gone.

use super::{Capacity, Replace};
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::launch;
use crate::strategy::run::RolloutStep;
use bakery_core::pipeline::Outcome;

/// Creates the run's launch template.
pub(in crate::strategy) struct CreateLaunchTemplate;

#[async_trait::async_trait]
impl<C: Capacity> RolloutStep<Replace<C>> for CreateLaunchTemplate {
    fn name(&self) -> &'static str {
        "launch template"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<C>) -> Result<(), RolloutError> {
        let lt_name = cx.cfg.names.launch_template(&st.stamp);
        cx.say(&format!("Creating launch template {lt_name}"));
        let template = launch::create_launch_template(cx, &lt_name, &st.ami, &st.spec).await?;
        cx.detail(&format!("{} ({})", template.name, template.id));
        st.template = Some(template);
        Ok(())
    }

    async fn cleanup(&mut self, cx: &Ctx, st: &mut Replace<C>, outcome: Outcome) {
        let Some(lt) = st.template.clone() else {
            return;
        };
        if !st.common.undo(cx, outcome) {
            return;
        }
        launch::roll_back_template(
            cx,
            &lt,
            st.new_gone,
            C::TEMPLATE_KEPT_WHILE,
            &mut st.common.rollback,
        )
        .await;
    }
}
