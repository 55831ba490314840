//! One build's context ([`Ctx`]): its AWS settings and clients, the SDK configs shared by the builds of a
//! run (loaded once per distinct set of access settings), and what every build of a run shares.

use super::config::BuildConfig;
use crate::amazon_ebs::state::Ctx;
use crate::journal::Journal;
use bakery_core::aws::{AssumeRole, AwsSettings, Clients, load_sdk_config};
use bakery_core::pipeline::OnError;
use bakery_core::poll::PollOverrides;
use bakery_core::poll::ec2::WaitRegistry;
use bakery_core::ui::Ui;
use bakery_template::{AmazonEbsConfig, Build, BuilderConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The AWS settings of an amazon-ebs build; `endpoint_url` is `--endpoint-url`.
pub fn aws_settings(cfg: &AmazonEbsConfig, endpoint_url: Option<&str>) -> AwsSettings {
    let a = &cfg.access;
    let ne = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
    AwsSettings {
        region: ne(&a.region),
        profile: ne(&a.profile),
        shared_credentials_file: ne(&a.shared_credentials_file),
        access_key: ne(&a.access_key),
        secret_key: ne(&a.secret_key),
        token: ne(&a.token),
        assume_role: a.assume_role.as_ref().and_then(|r| {
            r.role_arn
                .clone()
                .filter(|s| !s.is_empty())
                .map(|arn| AssumeRole {
                    role_arn: arn,
                    session_name: ne(&r.session_name),
                    external_id: ne(&r.external_id),
                    duration: r
                        .duration_seconds
                        .map(|s| Duration::from_secs(s.max(0) as u64)),
                    policy: ne(&r.policy),
                    policy_arns: r.policy_arns.clone(),
                    tags: r.tags.clone().into_iter().collect(),
                })
        }),
        endpoint_url: endpoint_url.map(str::to_string),
        ec2_endpoint: ne(&a.custom_endpoint_ec2),
        max_retries: (a.max_retries > 0).then_some(a.max_retries as u32),
    }
}

/// `aws_polling` (`delay_seconds`, `max_attempts`), when the template sets it.
fn template_polling(cfg: &AmazonEbsConfig) -> Option<PollOverrides> {
    cfg.access.aws_polling.as_ref().map(|p| PollOverrides {
        delay: p
            .delay_seconds
            .filter(|d| *d > 0)
            .map(|d| Duration::from_secs(d as u64)),
        max_attempts: p.max_attempts.filter(|d| *d > 0).map(|d| d as u32),
    })
}

/// SDK configs loaded once per distinct set of access settings.
#[derive(Default)]
pub(crate) struct SdkConfigs(Vec<(AwsSettings, aws_config::SdkConfig)>);

impl SdkConfigs {
    /// The SDK config of `s`, loaded on first use.
    pub(crate) async fn get(&mut self, s: &AwsSettings) -> aws_config::SdkConfig {
        if let Some((_, c)) = self.0.iter().find(|(k, _)| k == s) {
            return c.clone();
        }
        let c = load_sdk_config(s).await;
        self.0.push((s.clone(), c.clone()));
        c
    }
}

/// What every build of a run (or of a dry run) shares.
pub(crate) struct Shared<'a> {
    /// Where output goes.
    pub(crate) ui: &'a Ui,
    /// None in a dry run.
    pub(crate) journal: Option<Arc<Journal>>,
    /// The run's id (tags, manifests).
    pub(crate) run_id: &'a str,
    /// Cancelled by the first interrupt.
    pub(crate) cancel: CancellationToken,
    /// Cancelled by the second interrupt.
    pub(crate) cancel_cleanup: CancellationToken,
    /// `-on-error`.
    pub(crate) on_error: OnError,
    /// The builds' waits share one Describe call per tick (bakery_core::poll::batch).
    pub(crate) waits: Arc<WaitRegistry>,
    /// The run's create calls in flight (the pipeline's tracker).
    pub(crate) in_flight: Arc<bakery_core::pipeline::InFlight>,
}

/// The context of build `b`, shown as `name`.
pub(crate) async fn context(
    config: &BuildConfig,
    shared: &Shared<'_>,
    name: String,
    b: &Build,
    sdk: &mut SdkConfigs,
) -> Ctx {
    let BuilderConfig::AmazonEbs(cfg) = &b.builder;
    let settings = aws_settings(cfg, config.endpoint_url.as_deref());
    let sdk_config = sdk.get(&settings).await;
    let clients = Clients::for_region(
        &sdk_config,
        cfg.access.region.as_deref().filter(|s| !s.is_empty()),
        settings.ec2_endpoint.as_deref(),
    );
    let polling = template_polling(cfg);
    let mut cfg = (**cfg).clone();
    if let Some(line) = config.ssh_override.apply(&mut cfg.comm) {
        shared.ui.say(&name, &line);
    }
    Ctx {
        name,
        build: b.clone(),
        cfg: Arc::new(cfg),
        sdk: sdk_config,
        clients,
        ui: shared.ui.clone(),
        journal: shared.journal.clone(),
        run_id: shared.run_id.to_string(),
        cancel: shared.cancel.clone(),
        cancel_cleanup: shared.cancel_cleanup.clone(),
        force: config.force,
        debug: config.debug,
        host_key_check: config.host_key_check,
        poll: PollOverrides::from_env().or(polling.unwrap_or_default()),
        error_cleanup: matches!(
            shared.on_error,
            OnError::Cleanup | OnError::RunCleanupProvisioner | OnError::Ask
        ),
        waits: shared.waits.clone(),
        in_flight: shared.in_flight.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The access options reach the SDK's settings, and aws_polling the poller.
    #[test]
    fn access_and_polling_options_reach_the_sdk_and_the_poller() {
        let cfg = crate::amazon_ebs::state::test_config(
            r#","profile":"probe-profile","access_key":"AKPROBE","secret_key":"SKPROBE","token":"TKPROBE","custom_endpoint_ec2":"https://ec2.probe.example","max_retries":4,"shared_credentials_file":"/probe/credentials","aws_polling":{"delay_seconds":7,"max_attempts":9},"assume_role":{"role_arn":"arn:aws:iam::210987654321:role/probe","session_name":"probe-session","external_id":"probe-ext","duration_seconds":1800,"policy":"{}","policy_arns":["arn:aws:iam::aws:policy/ReadOnlyAccess"],"tags":{"team":"probe"}}"#,
        );
        let s = aws_settings(&cfg, Some("http://127.0.0.1:1"));
        // region comes from the builder's "region" (us-east-1 in the test template).
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert_eq!(s.profile.as_deref(), Some("probe-profile"));
        assert_eq!(
            s.shared_credentials_file.as_deref(),
            Some("/probe/credentials")
        );
        assert_eq!(
            (
                s.access_key.as_deref(),
                s.secret_key.as_deref(),
                s.token.as_deref()
            ),
            (Some("AKPROBE"), Some("SKPROBE"), Some("TKPROBE"))
        );
        assert_eq!(s.ec2_endpoint.as_deref(), Some("https://ec2.probe.example"));
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(s.max_retries, Some(4));
        let r = s.assume_role.expect("assume_role");
        assert_eq!(r.role_arn, "arn:aws:iam::210987654321:role/probe");
        assert_eq!(r.session_name.as_deref(), Some("probe-session"));
        assert_eq!(r.external_id.as_deref(), Some("probe-ext"));
        assert_eq!(r.duration, Some(Duration::from_secs(1800)));
        assert_eq!(r.policy.as_deref(), Some("{}"));
        assert_eq!(r.policy_arns, ["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
        assert_eq!(r.tags, [("team".to_string(), "probe".to_string())]);
        let p = template_polling(&cfg).expect("aws_polling");
        assert_eq!(p.delay, Some(Duration::from_secs(7)));
        assert_eq!(p.max_attempts, Some(9));
    }
}
