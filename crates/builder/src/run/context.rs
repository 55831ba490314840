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
                })
        }),
        endpoint_url: endpoint_url.map(str::to_string),
        ec2_endpoint: ne(&a.custom_endpoint_ec2),
        max_retries: (a.max_retries > 0).then_some(a.max_retries as u32),
    }
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
    let polling = cfg.access.aws_polling.as_ref().map(|p| PollOverrides {
        delay: p
            .delay_seconds
            .filter(|d| *d > 0)
            .map(|d| Duration::from_secs(d as u64)),
        max_attempts: p.max_attempts.filter(|d| *d > 0).map(|d| d as u32),
    });
    Ctx {
        name,
        build: b.clone(),
        cfg: Arc::new((**cfg).clone()),
        sdk: sdk_config,
        clients,
        ui: shared.ui.clone(),
        journal: shared.journal.clone(),
        run_id: shared.run_id.to_string(),
        cancel: shared.cancel.clone(),
        cancel_cleanup: shared.cancel_cleanup.clone(),
        force: config.force,
        debug: config.debug,
        poll: PollOverrides::from_env().or(polling.unwrap_or_default()),
        error_cleanup: matches!(
            shared.on_error,
            OnError::Cleanup | OnError::RunCleanupProvisioner | OnError::Ask
        ),
        waits: shared.waits.clone(),
        in_flight: shared.in_flight.clone(),
    }
}
