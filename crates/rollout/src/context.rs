//! What every command runs with: the configuration, the AWS clients (instrumented to count requests), the
//! UI, the run id and the cancellation tokens.

use crate::config::RolloutConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bakery_core::aws::Clients;
use bakery_core::ui::Ui;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Counts the HTTP requests sent to AWS, by `Service.Operation` (retries count: each one is a request
/// AWS meters).
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RequestCounter {
    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The total so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// True when no request so far changed anything (only Describe/Get/List calls).
    pub fn read_only(&self) -> bool {
        self.snapshot().keys().all(|k| is_read_only(k))
    }

    /// Wraps `clients` so that every request they send is counted here.
    pub fn instrument(&self, c: Clients) -> Clients {
        Clients {
            ec2: aws_sdk_ec2::Client::from_conf(
                c.ec2
                    .config()
                    .to_builder()
                    .interceptor(self.clone())
                    .build(),
            ),
            ssm: aws_sdk_ssm::Client::from_conf(
                c.ssm
                    .config()
                    .to_builder()
                    .interceptor(self.clone())
                    .build(),
            ),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(
                c.autoscaling
                    .config()
                    .to_builder()
                    .interceptor(self.clone())
                    .build(),
            ),
            elb: aws_sdk_elasticloadbalancing::Client::from_conf(
                c.elb
                    .config()
                    .to_builder()
                    .interceptor(self.clone())
                    .build(),
            ),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(
                c.elbv2
                    .config()
                    .to_builder()
                    .interceptor(self.clone())
                    .build(),
            ),
            route53: aws_sdk_route53::Client::from_conf(
                c.route53
                    .config()
                    .to_builder()
                    .interceptor(self.clone())
                    .build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                c.cloudwatch
                    .config()
                    .to_builder()
                    .interceptor(self.clone())
                    .build(),
            ),
            // Rollout sends no IAM request.
            iam: c.iam,
            region: c.region,
        }
    }
}

/// `Service.Operation` names that only read.
pub fn is_read_only(key: &str) -> bool {
    let op = key.rsplit('.').next().unwrap_or(key);
    ["Describe", "Get", "List"]
        .iter()
        .any(|p| op.starts_with(p))
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "bakery-rollout-request-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = match cfg.load::<Metadata>() {
            Some(m) => format!("{}.{}", m.service(), m.name()),
            None => "unknown".to_string(),
        };
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(0) += 1;
        Ok(())
    }
}

/// The context of one command.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The environment's configuration.
    pub cfg: RolloutConfig,
    /// The region's clients, counted by `requests`.
    pub clients: Clients,
    /// Output.
    pub ui: Ui,
    /// This run's id (tag `bakery:run-id`).
    pub run_id: String,
    /// Cancelled by the first interrupt: the rollout stops and rolls back.
    pub cancel: CancellationToken,
    /// Cancelled by the second interrupt: rollback stops too.
    pub cancel_cleanup: CancellationToken,
    /// Requests sent so far.
    pub requests: RequestCounter,
}

impl Ctx {
    /// The UI target: `app-env`.
    pub fn target(&self) -> String {
        self.cfg.names.base()
    }

    /// A step headline.
    pub fn say(&self, msg: &str) {
        self.ui.say(&self.target(), msg);
    }

    /// A detail line.
    pub fn detail(&self, msg: &str) {
        self.ui.message(&self.target(), msg);
    }

    /// An error line.
    pub fn warn(&self, msg: &str) {
        self.ui.error(&self.target(), msg);
    }

    /// The ownership tags (`bakery:*`) plus app/env/Name and the manifest's tags.
    pub fn tags_for(&self, role: &str) -> Vec<(String, String)> {
        let mut t = bakery_core::tags::ownership(&self.run_id, crate::names::TOOL, role);
        t.extend(self.cfg.names.tags());
        t.extend(self.cfg.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        t
    }

    /// The tags an existing resource is expected to carry (not the run id or role, which record the run
    /// that created it).
    pub fn steady_tags(&self) -> Vec<(String, String)> {
        let mut t = vec![(bakery_core::tags::MANAGED.to_string(), "true".to_string())];
        t.extend(self.cfg.names.tags());
        t.extend(self.cfg.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_operations() {
        assert!(is_read_only("Auto Scaling.DescribeAutoScalingGroups"));
        assert!(is_read_only("SSM.GetParameter"));
        assert!(is_read_only("Route 53.ListResourceRecordSets"));
        assert!(!is_read_only("EC2.CreateLaunchTemplate"));
        assert!(!is_read_only("Elastic Load Balancing.ConfigureHealthCheck"));
    }
}
