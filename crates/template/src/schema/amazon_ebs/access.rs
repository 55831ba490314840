//! How bakery reaches AWS: credentials, region, endpoint, retries and polling.

use crate::decode::{Decoder, Fields};
use std::collections::BTreeMap;

/// Credentials and API access. These options sit at the top level of the builder.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessConfig {
    /// Static access key id; needs `secret_key` too. Printed as `<sensitive>`. Unset: the AWS SDK's
    /// default chain (environment, profile, SSO, web identity, instance metadata).
    pub access_key: Option<String>,
    /// Assume this IAM role on top of the resolved credentials.
    pub assume_role: Option<AssumeRoleConfig>,
    /// EC2 endpoint URL (e.g. a local emulator); `AWS_ENDPOINT_URL` and `--endpoint-url` also set it.
    pub custom_endpoint_ec2: Option<String>,
    /// Path of a shared credentials file, read instead of `~/.aws/credentials` (with `profile`).
    pub shared_credentials_file: Option<String>,
    /// Decode "encoded authorization failure" messages with STS. Ignored with a warning.
    pub decode_authorization_messages: bool,
    /// Skip TLS certificate checks of the endpoint. Refused: bakery always checks them.
    pub insecure_skip_tls_verify: bool,
    /// How many times an API call is retried (the SDK's standard retry mode). Default: 10 (also when 0).
    pub max_retries: i64,
    /// MFA code for an assumed role. Refused (support.rs).
    pub mfa_code: Option<String>,
    /// Named profile of the shared config and credentials files (else `AWS_PROFILE`).
    pub profile: Option<String>,
    /// Build region. Unset: the region comes from the AWS environment (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// Static secret key; needs `access_key` too. Printed as `<sensitive>`.
    pub secret_key: Option<String>,
    /// Ignored with a warning: bakery never asks the instance metadata service for a check.
    pub skip_metadata_api_check: bool,
    /// Ignored with a warning: bakery makes no STS check of the credentials.
    pub skip_credential_validation: bool,
    /// Session token for temporary `access_key`/`secret_key` credentials. Printed as `<sensitive>`.
    pub token: Option<String>,
    /// Credentials from Vault's AWS engine. Not supported by bakery: setting it is an error.
    pub vault_aws_engine: Option<VaultAwsEngine>,
    /// Overrides of how waits poll AWS (`AWS_POLL_DELAY_SECONDS`, `AWS_MAX_ATTEMPTS` also do).
    pub aws_polling: Option<AwsPolling>,
}

/// The `assume_role` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AssumeRoleConfig {
    /// ARN of the role to assume.
    pub role_arn: Option<String>,
    /// Lifetime of the role's session, in seconds.
    pub duration_seconds: Option<i64>,
    /// External id the role's trust policy asks for.
    pub external_id: Option<String>,
    /// Inline IAM policy narrowing the session (AssumeRole's `Policy`).
    pub policy: Option<String>,
    /// Managed policy ARNs narrowing the session (AssumeRole's `PolicyArns`).
    pub policy_arns: Vec<String>,
    /// Name of the role session.
    pub session_name: Option<String>,
    /// Session tags (AssumeRole's `Tags`).
    pub tags: BTreeMap<String, String>,
    /// Session tag keys passed on to later roles. Refused (support.rs): the SDK's role provider cannot
    /// send them.
    pub transitive_tag_keys: Vec<String>,
}

/// The `vault_aws_engine` block (decoded so that its keys are checked; rejected by validation).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VaultAwsEngine {
    /// Name of the Vault role.
    pub name: Option<String>,
    /// Role ARN for an assumed-role credential type.
    pub role_arn: Option<String>,
    /// Lease time of the credentials.
    pub ttl: Option<String>,
    /// Mount path of the AWS secrets engine.
    pub engine_name: Option<String>,
}

/// The `aws_polling` block: how bakery's waits poll AWS.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsPolling {
    /// Give up a wait after this many looks. Unset: bakery's own limits per wait.
    pub max_attempts: Option<i64>,
    /// Seconds between looks. Unset: bakery's poller (first look at once, then about every second).
    pub delay_seconds: Option<i64>,
}

/// Decodes the access options of the builder's top level.
pub fn decode(d: &mut Decoder, f: &mut Fields) -> AccessConfig {
    AccessConfig {
        access_key: d.opt_string(f, "access_key"),
        assume_role: d.object(f, "assume_role", |d, f| AssumeRoleConfig {
            role_arn: d.opt_string(f, "role_arn"),
            duration_seconds: d.int(f, "duration_seconds"),
            external_id: d.opt_string(f, "external_id"),
            policy: d.opt_string(f, "policy"),
            policy_arns: d.strings(f, "policy_arns"),
            session_name: d.opt_string(f, "session_name"),
            tags: d.string_map(f, "tags"),
            transitive_tag_keys: d.strings(f, "transitive_tag_keys"),
        }),
        custom_endpoint_ec2: d.opt_string(f, "custom_endpoint_ec2"),
        shared_credentials_file: d.opt_string(f, "shared_credentials_file"),
        decode_authorization_messages: d.bool(f, "decode_authorization_messages"),
        insecure_skip_tls_verify: d.bool(f, "insecure_skip_tls_verify"),
        max_retries: d.int(f, "max_retries").filter(|n| *n != 0).unwrap_or(10),
        mfa_code: d.opt_string(f, "mfa_code"),
        profile: d.opt_string(f, "profile"),
        region: d.opt_string(f, "region"),
        secret_key: d.opt_string(f, "secret_key"),
        skip_metadata_api_check: d.bool(f, "skip_metadata_api_check"),
        skip_credential_validation: d.bool(f, "skip_credential_validation"),
        token: d.opt_string(f, "token"),
        vault_aws_engine: d.object(f, "vault_aws_engine", |d, f| VaultAwsEngine {
            name: d.opt_string(f, "name"),
            role_arn: d.opt_string(f, "role_arn"),
            ttl: d.opt_string(f, "ttl"),
            engine_name: d.opt_string(f, "engine_name"),
        }),
        aws_polling: d.object(f, "aws_polling", |d, f| AwsPolling {
            max_attempts: d.int(f, "max_attempts"),
            delay_seconds: d.int(f, "delay_seconds"),
        }),
    }
}

/// Packer's access checks.
pub fn validate(a: &AccessConfig, errs: &mut Vec<String>) {
    // Vault itself is refused by the support table (support.rs); Packer's own check stays.
    if a.vault_aws_engine.is_some() && a.access_key.is_some() {
        errs.push(
            "If you have set vault_aws_engine, you must not set the access_key or secret_key."
                .into(),
        );
    }
    if a.access_key.is_some() != a.secret_key.is_some() {
        errs.push("`access_key` and `secret_key` must both be either set or not set.".into());
    }
}
