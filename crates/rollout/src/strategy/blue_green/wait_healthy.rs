//! Step: wait until every desired instance of the new group is InService+Healthy in the group and in
//! service on the load balancer (and, if asked, has stayed so); on failure, say what the group looked like.

use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::lb::TargetState;
use crate::live::{self, Group};
use crate::report::GroupSummary;
use crate::strategy::replace::Replace;
use crate::strategy::run::RolloutStep;
use crate::wait;
use tokio::time::Instant;

/// The new group once healthy: what blue-green's steps hand each other.
#[derive(Debug, Default)]
pub(in crate::strategy) struct Healthy(pub Option<Group>);

/// Waits for the new group to be healthy.
pub(super) struct WaitHealthy {
    /// The new group's desired capacity.
    pub desired: u32,
}

#[async_trait::async_trait]
impl RolloutStep<Replace<Group>> for WaitHealthy {
    fn name(&self) -> &'static str {
        "health wait"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut Replace<Group>) -> Result<(), RolloutError> {
        let group_name = st.new.clone().unwrap_or_default();
        let t = Instant::now();
        let waited = wait::group_healthy(
            cx,
            &st.lb,
            &group_name,
            self.desired,
            cx.cfg.timeouts.min_healthy,
            cx.cfg.timeouts.health,
            &cx.cancel,
        )
        .await;
        st.common.report.durations.healthy_s = t.elapsed().as_secs_f64();
        match waited {
            Ok(h) => {
                st.new_ids = h.group.instance_ids();
                st.launch = Healthy(Some(h.group));
                Ok(())
            }
            Err(e) => {
                // Say what the new group looked like, for the report, before it is deleted.
                let mut why = e.to_string();
                if let Ok(Some(mut g)) = live::group(cx, &group_name).await {
                    if let Ok(h) = st.lb.health(cx).await {
                        for i in &mut g.instances {
                            i.load_balancer = h.get(&i.id).cloned();
                        }
                    }
                    let bad: Vec<String> = g
                        .instances
                        .iter()
                        .filter(|i| {
                            !i.healthy_in_group()
                                || !i
                                    .load_balancer
                                    .as_ref()
                                    .is_some_and(TargetState::in_service)
                        })
                        .map(|i| {
                            let lbs = i.load_balancer.as_ref();
                            format!(
                                "{} {}/{} lb:{}{}",
                                i.id,
                                i.lifecycle,
                                i.health,
                                lbs.map(|l| l.state.as_str()).unwrap_or("not registered"),
                                lbs.and_then(|l| l.reason.as_deref())
                                    .map(|r| format!(" ({r})"))
                                    .unwrap_or_default()
                            )
                        })
                        .collect();
                    if !bad.is_empty() {
                        why.push_str(&format!("; not healthy: {}", bad.join(", ")));
                    }
                    st.common.report.new_group =
                        Some(GroupSummary::of(&g, Some(st.ami.id.clone())));
                }
                why.push_str(&scaling_failures(cx, &group_name).await);
                Err(match e {
                    bakery_core::poll::WaitError::Cancelled(_) => RolloutError::Interrupted(why),
                    _ => RolloutError::Unhealthy(why),
                })
            }
        }
    }
}

/// Recent failed scaling activities of `group` (why instances did not launch), as `; ...` text.
async fn scaling_failures(cx: &Ctx, group: &str) -> String {
    let Ok(out) = cx
        .clients
        .autoscaling
        .describe_scaling_activities()
        .auto_scaling_group_name(group)
        .max_records(10)
        .send()
        .await
        .aws("DescribeScalingActivities")
    else {
        return String::new();
    };
    let failed: Vec<String> = out
        .activities()
        .iter()
        .filter(|a| {
            matches!(
                a.status_code(),
                Some(aws_sdk_autoscaling::types::ScalingActivityStatusCode::Failed)
                    | Some(aws_sdk_autoscaling::types::ScalingActivityStatusCode::Cancelled)
            )
        })
        .take(3)
        .map(|a| {
            a.status_message()
                .or(a.description())
                .unwrap_or("failed")
                .to_string()
        })
        .collect();
    if failed.is_empty() {
        String::new()
    } else {
        format!("; scaling activities failed: {}", failed.join(" | "))
    }
}
