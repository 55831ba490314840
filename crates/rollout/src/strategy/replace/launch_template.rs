//! Step: the new launch template (AMI, key, security groups, user data, instance profile, tags); deleted
//! again on rollback once the capacity that launched from it is gone.

use super::capacity::Capacity;
use super::state::Replace;
use crate::context::Ctx;
use crate::error::RolloutError;
use crate::launch;
use crate::strategy::preflight::Preflight;
use crate::strategy::run::RolloutStep;
use bakery_core::pipeline::Outcome;

/// Creates the run's launch template.
pub(in crate::strategy) struct CreateLaunchTemplate;

impl CreateLaunchTemplate {
    /// The step's line in `rollout plan`. `with_instance_type`: the template names the instance type and,
    /// when preflight found no key, the key pair setup makes (a spot fleet's types are in its overrides).
    pub fn plan(cx: &Ctx, pf: &Preflight, with_instance_type: bool) -> String {
        let cfg = &cx.cfg;
        let names = &cfg.names;
        let key = pf.launch.as_ref().and_then(|l| l.key_name.clone());
        let key = if with_instance_type {
            key.or_else(|| cfg.public_key_file.as_ref().map(|_| names.key_pair()))
        } else {
            key
        };
        format!(
            "create launch template {}: {}{}, key {}, security groups {}{}{}",
            names.launch_template("<timestamp>"),
            pf.ami.as_ref().map(|a| a.id.as_str()).unwrap_or("<--ami>"),
            if with_instance_type {
                format!(", {}", cfg.instances.instance_type)
            } else {
                String::new()
            },
            key.unwrap_or_else(|| "none".into()),
            pf.launch
                .as_ref()
                .map(|l| l.security_group_ids.join(", "))
                .unwrap_or_else(|| names.instance_security_group()),
            if cfg.instances.user_data_file.is_some() {
                ", user data"
            } else {
                ""
            },
            if cfg.instances.require_imdsv2 {
                ", IMDSv2 required"
            } else {
                ""
            },
        )
    }
}

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
