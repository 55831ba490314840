//! The AWS configuration, built in one place.
//!
//! Packer's amazon builders take their access settings from the template (`region`, `access_key`, `profile`,
//! `assume_role`, `custom_endpoint_ec2`, `max_retries`, ...) on top of the SDK's default chain. bakery does the
//! same: [`AwsSettings`] holds what the template or the command line says, [`load_sdk_config`] resolves it once
//! (region chain, profile, credentials, adaptive retry, endpoint URL), and [`Clients::for_region`] derives each
//! region's service clients from that one config without loading it again.
//!
//! Endpoints: the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables are honoured by the SDK
//! itself; `custom_endpoint_ec2` overrides the EC2 endpoint only, as in Packer. Nothing else points bakery
//! anywhere: the local lab uses exactly these knobs.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;

/// The resolved SDK configuration every region's [`Clients`] derive from.
pub use aws_config::SdkConfig;
use std::time::Duration;

/// The region used when neither the template, the flags nor the environment name one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Packer's `assume_role` block (the parts the SDK's STS provider takes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssumeRole {
    /// `role_arn`.
    pub role_arn: String,
    /// `session_name`; bakery's own default when empty.
    pub session_name: Option<String>,
    /// `external_id`.
    pub external_id: Option<String>,
    /// `duration_seconds`.
    pub duration: Option<Duration>,
    /// `policy`: an inline policy narrowing the session.
    pub policy: Option<String>,
    /// `policy_arns`: managed policies narrowing the session.
    pub policy_arns: Vec<String>,
    /// `tags`: session tags.
    pub tags: Vec<(String, String)>,
}

/// Access settings as the template and the command line give them; every field is optional and falls back
/// to the SDK's default chain (environment, shared config/credentials files, SSO, web identity, IMDS).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AwsSettings {
    /// `region`; else `AWS_REGION`/profile; else [`DEFAULT_REGION`].
    pub region: Option<String>,
    /// `profile`; else `AWS_PROFILE`.
    pub profile: Option<String>,
    /// `shared_credentials_file`: the credentials file read instead of `~/.aws/credentials` (the config
    /// file is still read).
    pub shared_credentials_file: Option<String>,
    /// `access_key` (static credentials when set together with `secret_key`).
    pub access_key: Option<String>,
    /// `secret_key`.
    pub secret_key: Option<String>,
    /// `token` (session token for static credentials).
    pub token: Option<String>,
    /// `assume_role`.
    pub assume_role: Option<AssumeRole>,
    /// An endpoint for every service (`--endpoint-url`); `AWS_ENDPOINT_URL` does the same from the environment.
    pub endpoint_url: Option<String>,
    /// `custom_endpoint_ec2`: the EC2 endpoint only.
    pub ec2_endpoint: Option<String>,
    /// `max_retries` (attempts = retries + 1); `AWS_MAX_ATTEMPTS` is read by the SDK when unset.
    pub max_retries: Option<u32>,
}

/// The SDK's retries: `max_retries` (+1 attempts) when set, else `AWS_MAX_ATTEMPTS` (the SDK's own variable:
/// a retry config given to the loader replaces the SDK's reading of it, so it is read here), else 8.
fn retry_config(
    max_retries: Option<u32>,
    env_max_attempts: Option<&str>,
    env_mode: Option<&str>,
) -> RetryConfig {
    let retry = match env_mode {
        Some("adaptive") => RetryConfig::adaptive(),
        _ => RetryConfig::standard(),
    };
    let attempts = match (
        max_retries,
        env_max_attempts.and_then(|v| v.trim().parse::<u32>().ok()),
    ) {
        (Some(n), _) => n.saturating_add(1),
        (None, Some(n)) => n.max(1),
        (None, None) => 8,
    };
    retry.with_max_attempts(attempts)
}

/// Resolves the settings into one `SdkConfig`. Retries are the SDK's standard mode (exponential backoff
/// with jitter, a retry quota), 8 attempts; the poller adds its own jittered backoff on throttling.
/// Not adaptive mode by default: its client-side rate limiter, once throttled, held a lone bake on the
/// lab for 39 s after three throttled calls and slowed every later call (the throttling test: 79 s
/// adaptive, 8 s standard); AWS itself advises against it where latency matters.
/// `AWS_RETRY_MODE=adaptive` opts in (e.g. many bakes sharing one account's API rate).
pub async fn load_sdk_config(s: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &s.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &s.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(path) = &s.shared_credentials_file {
        use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
        loader = loader.profile_files(
            EnvConfigFiles::builder()
                .include_default_config_file(true)
                .with_file(EnvConfigFileKind::Credentials, path)
                .build(),
        );
    }
    if let (Some(ak), Some(sk)) = (&s.access_key, &s.secret_key) {
        loader = loader.credentials_provider(Credentials::new(
            ak.clone(),
            sk.clone(),
            s.token.clone(),
            None,
            "template",
        ));
    }
    if let Some(url) = &s.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    loader = loader.retry_config(retry_config(
        s.max_retries,
        std::env::var("AWS_MAX_ATTEMPTS").ok().as_deref(),
        std::env::var("AWS_RETRY_MODE").ok().as_deref(),
    ));
    let mut config = loader.load().await;
    if config.region().is_none() {
        config = config
            .into_builder()
            .region(Region::new(DEFAULT_REGION))
            .build();
    }
    if let Some(role) = &s.assume_role {
        let mut b = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
            .session_name(
                role.session_name
                    .clone()
                    .unwrap_or_else(|| "bakery".to_string()),
            )
            .configure(&config);
        if let Some(id) = &role.external_id {
            b = b.external_id(id.clone());
        }
        if let Some(d) = role.duration {
            b = b.session_length(d);
        }
        if let Some(policy) = &role.policy {
            b = b.policy(policy.clone());
        }
        if !role.policy_arns.is_empty() {
            b = b.policy_arns(role.policy_arns.clone());
        }
        if !role.tags.is_empty() {
            b = b.tags(role.tags.clone());
        }
        let provider = b.build().await;
        config = config
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
    }
    config
}

/// The service clients of one region, all derived from the one `SdkConfig`.
#[derive(Clone, Debug)]
pub struct Clients {
    /// The region these clients talk to.
    pub region: String,
    /// EC2 (honours `custom_endpoint_ec2`).
    pub ec2: aws_sdk_ec2::Client,
    /// SSM Parameter Store.
    pub ssm: aws_sdk_ssm::Client,
    /// Auto Scaling.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Classic ELB.
    pub elb: aws_sdk_elasticloadbalancing::Client,
    /// ALB/NLB (ELBv2).
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// Route 53.
    pub route53: aws_sdk_route53::Client,
    /// IAM (global: the region only picks the partition's endpoint).
    pub iam: aws_sdk_iam::Client,
    /// CloudWatch (rollout's alarm gates).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    /// Clients for `region` (the config's own region when `None`).
    pub fn for_region(
        config: &SdkConfig,
        region: Option<&str>,
        ec2_endpoint: Option<&str>,
    ) -> Self {
        let region = region
            .map(str::to_string)
            .or_else(|| config.region().map(|r| r.to_string()))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let r = Region::new(region.clone());
        let mut ec2 = aws_sdk_ec2::config::Builder::from(config).region(r.clone());
        if let Some(url) = ec2_endpoint {
            ec2 = ec2.endpoint_url(url);
        }
        Clients {
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            ssm: aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(config)
                    .region(r.clone())
                    .build(),
            ),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(config)
                    .region(r.clone())
                    .build(),
            ),
            elb: aws_sdk_elasticloadbalancing::Client::from_conf(
                aws_sdk_elasticloadbalancing::config::Builder::from(config)
                    .region(r.clone())
                    .build(),
            ),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(
                aws_sdk_elasticloadbalancingv2::config::Builder::from(config)
                    .region(r.clone())
                    .build(),
            ),
            route53: aws_sdk_route53::Client::from_conf(
                aws_sdk_route53::config::Builder::from(config)
                    .region(r.clone())
                    .build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(config)
                    .region(r.clone())
                    .build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(config)
                    .region(r)
                    .build(),
            ),
            region,
        }
    }
}

/// How a failed AWS call should be treated by a caller that may retry or wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// `RequestLimitExceeded` and friends: back off and try again.
    Throttled,
    /// `*.NotFound` (e.g. `InvalidInstanceID.NotFound`): right after a create this means "not visible yet".
    NotFound,
    /// Anything else.
    Other,
}

/// Error codes AWS services use for throttling.
const THROTTLING_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "PriorRequestNotComplete",
];

/// Not-found codes that do not end in `NotFound`.
const OTHER_NOT_FOUND_CODES: &[&str] = &[
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.Malformed",
    "NoSuchHostedZone",
    // IAM.
    "NoSuchEntity",
];

/// Classifies an AWS error code.
pub fn classify_code(code: Option<&str>) -> ErrorClass {
    match code {
        Some(c) if THROTTLING_CODES.contains(&c) => ErrorClass::Throttled,
        Some(c) if c.ends_with("NotFound") || OTHER_NOT_FOUND_CODES.contains(&c) => {
            ErrorClass::NotFound
        }
        _ => ErrorClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_max_attempts_reaches_the_sdk_unless_max_retries_is_set() {
        let attempts = |r, e, m| retry_config(r, e, m).max_attempts();
        assert_eq!(attempts(None, None, None), 8);
        assert_eq!(attempts(None, Some("10"), None), 10);
        assert_eq!(attempts(Some(2), Some("10"), None), 3);
        assert_eq!(attempts(None, Some("lots"), None), 8);
        assert_eq!(
            retry_config(None, Some("4"), Some("adaptive")).mode(),
            aws_config::retry::RetryMode::Adaptive
        );
    }

    #[test]
    fn classifies_codes() {
        assert_eq!(
            classify_code(Some("RequestLimitExceeded")),
            ErrorClass::Throttled
        );
        assert_eq!(classify_code(Some("Throttling")), ErrorClass::Throttled);
        assert_eq!(
            classify_code(Some("InvalidInstanceID.NotFound")),
            ErrorClass::NotFound
        );
        assert_eq!(
            classify_code(Some("InvalidAMIID.NotFound")),
            ErrorClass::NotFound
        );
        assert_eq!(
            classify_code(Some("UnauthorizedOperation")),
            ErrorClass::Other
        );
        assert_eq!(classify_code(None), ErrorClass::Other);
    }

    #[tokio::test]
    async fn settings_win_over_defaults_and_clients_take_the_region() {
        let s = AwsSettings {
            region: Some("eu-west-1".into()),
            access_key: Some("AK".into()),
            secret_key: Some("SK".into()),
            ec2_endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        let cfg = load_sdk_config(&s).await;
        assert_eq!(cfg.region().map(|r| r.as_ref()), Some("eu-west-1"));
        let c = Clients::for_region(&cfg, Some("us-west-2"), s.ec2_endpoint.as_deref());
        assert_eq!(c.region, "us-west-2");
        assert_eq!(
            c.ec2.config().region().map(|r| r.as_ref()),
            Some("us-west-2")
        );
    }
}
