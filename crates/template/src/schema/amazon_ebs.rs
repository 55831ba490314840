//! The amazon-ebs builder's options: every option the Packer amazon plugin
//! accepts (access, AMI, run, block devices, communicator, ebs-specific),
//! decoded weakly with Packer's defaults, and its `Prepare` checks.

use super::common::{expand_user, late_map, late_string, merge_key_values, stat};
use crate::decode::{Decoder, Fields};
use crate::funcs::{FuncContext, clean_resource_name};
use crate::json::Pos;
use crate::late::{LateMap, LateTemplate};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Fields amazon-ebs renders at their step, not when it is prepared.
pub const LATE_FIELDS: &[&str] = &[
    "ami_description",
    "fleet_tags",
    "fleet_tag",
    "run_tags",
    "run_tag",
    "run_volume_tags",
    "run_volume_tag",
    "spot_tags",
    "spot_tag",
    "snapshot_tags",
    "snapshot_tag",
    "tags",
    "tag",
];

/// Keys `packer fix` rewrites: accepted with a warning naming the new key.
pub const RENAMED: &[(&str, &str)] = &[
    ("ssh_wait_timeout", "ssh_timeout"),
    ("ssh_private_ip", "ssh_interface: \"private_ip\""),
    ("shutdown_behaviour", "shutdown_behavior"),
    ("enhanced_networking", "ena_support"),
    (
        "temporary_security_group_source_cidr",
        "temporary_security_group_source_cidrs (a list)",
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub struct AmazonEbsConfig {
    pub access: AccessConfig,
    pub ami: AmiConfig,
    pub run: RunConfig,
    pub comm: CommunicatorConfig,
    /// Do not create the AMI (test runs).
    pub skip_create_ami: bool,
    /// Do not copy `run_tags` onto the AMI and its snapshots.
    pub skip_ami_run_tags: bool,
    pub ami_block_device_mappings: Vec<BlockDevice>,
    pub launch_block_device_mappings: Vec<BlockDevice>,
    /// Late: tags for the launched volumes (`run_volume_tag` merged in).
    pub run_volume_tags: LateMap,
    pub no_ephemeral: bool,
    pub fast_launch: Option<FastLaunchConfig>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessConfig {
    pub access_key: Option<String>,
    pub assume_role: Option<AssumeRoleConfig>,
    pub custom_endpoint_ec2: Option<String>,
    pub shared_credentials_file: Option<String>,
    pub decode_authorization_messages: bool,
    pub insecure_skip_tls_verify: bool,
    /// API retries; Packer's default is 10.
    pub max_retries: i64,
    pub mfa_code: Option<String>,
    pub profile: Option<String>,
    /// May be None: the region then comes from the AWS environment.
    pub region: Option<String>,
    pub secret_key: Option<String>,
    pub skip_metadata_api_check: bool,
    pub skip_credential_validation: bool,
    pub token: Option<String>,
    pub vault_aws_engine: Option<VaultAwsEngine>,
    pub aws_polling: Option<AwsPolling>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AssumeRoleConfig {
    pub role_arn: Option<String>,
    pub duration_seconds: Option<i64>,
    pub external_id: Option<String>,
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
    pub session_name: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub transitive_tag_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct VaultAwsEngine {
    pub name: Option<String>,
    pub role_arn: Option<String>,
    pub ttl: Option<String>,
    pub engine_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsPolling {
    pub max_attempts: Option<i64>,
    pub delay_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeregistrationProtection {
    pub enabled: bool,
    pub with_cooldown: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AmiConfig {
    pub ami_name: String,
    /// Late: rendered with `.BuildRegion`, `.SourceAMI`, ...
    pub ami_description: Option<LateTemplate>,
    pub ami_virtualization_type: Option<String>,
    pub ami_users: Vec<String>,
    pub ami_groups: Vec<String>,
    pub ami_org_arns: Vec<String>,
    pub ami_ou_arns: Vec<String>,
    pub ami_product_codes: Vec<String>,
    /// De-duplicated, without the build region (Packer drops it).
    pub ami_regions: Vec<String>,
    pub skip_region_validation: bool,
    pub snapshot_copy_duration_minutes: Option<i64>,
    /// Late: AMI tags (`tag` blocks merged in).
    pub tags: LateMap,
    pub ena_support: Option<bool>,
    pub sriov_support: bool,
    pub force_deregister: bool,
    pub force_delete_snapshot: bool,
    pub encrypt_boot: Option<bool>,
    pub kms_key_id: Option<String>,
    pub region_kms_key_ids: BTreeMap<String, String>,
    pub skip_save_build_region: bool,
    pub imds_support: Option<String>,
    pub deprecate_at: Option<String>,
    /// Late: snapshot tags (`snapshot_tag` blocks merged in).
    pub snapshot_tags: LateMap,
    pub snapshot_users: Vec<String>,
    pub snapshot_groups: Vec<String>,
    pub deregistration_protection: DeregistrationProtection,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NameValueFilter {
    /// `filter` blocks are merged into `filters`.
    pub filters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubnetFilter {
    pub filters: BTreeMap<String, String>,
    pub most_free: bool,
    pub random: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AmiFilter {
    pub filters: BTreeMap<String, String>,
    pub owners: Vec<String>,
    pub most_recent: bool,
    pub include_deprecated: bool,
}

impl AmiFilter {
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty() && self.filters.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyStatement {
    pub effect: Option<String>,
    pub action: Vec<String>,
    pub resource: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyDocument {
    pub version: Option<String>,
    pub statement: Vec<PolicyStatement>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetadataOptions {
    /// "enabled" (default) or "disabled".
    pub http_endpoint: String,
    /// "optional" (default) or "required".
    pub http_tokens: String,
    /// 1 (default) to 64.
    pub http_put_response_hop_limit: i64,
    /// "disabled" (default) or "enabled".
    pub instance_metadata_tags: String,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        MetadataOptions {
            http_endpoint: "enabled".into(),
            http_tokens: "optional".into(),
            http_put_response_hop_limit: 1,
            instance_metadata_tags: "disabled".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LicenseSpecification {
    pub license_configuration_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Placement {
    pub host_resource_group_arn: Option<String>,
    pub host_id: Option<String>,
    pub tenancy: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    pub associate_public_ip_address: Option<bool>,
    pub availability_zone: Option<String>,
    pub block_duration_minutes: i64,
    /// "none" (default) or "open", unless a reservation id/group is set.
    pub capacity_reservation_preference: Option<String>,
    pub capacity_reservation_id: Option<String>,
    pub capacity_reservation_group_arn: Option<String>,
    pub disable_stop_instance: bool,
    pub ebs_optimized: bool,
    pub enable_nitro_enclave: bool,
    pub enable_t2_unlimited: bool,
    pub enable_unlimited_credits: bool,
    pub iam_instance_profile: Option<String>,
    /// Late (`fleet_tag` merged in).
    pub fleet_tags: LateMap,
    pub skip_profile_validation: bool,
    pub temporary_iam_instance_profile_policy_document: Option<PolicyDocument>,
    /// "stop" (default) or "terminate".
    pub shutdown_behavior: String,
    pub instance_type: Option<String>,
    pub security_group_filter: Option<NameValueFilter>,
    /// Late (`run_tag` merged in).
    pub run_tags: LateMap,
    /// `security_group_id` is folded in here, as Packer does.
    pub security_group_ids: Vec<String>,
    pub source_ami: Option<String>,
    pub source_ami_filter: Option<AmiFilter>,
    pub spot_allocation_strategy: Option<String>,
    pub spot_instance_types: Vec<String>,
    pub spot_price: Option<String>,
    /// Deprecated by Packer (warning); kept.
    pub spot_price_auto_product: Option<String>,
    /// Late (`spot_tag` merged in).
    pub spot_tags: LateMap,
    pub subnet_filter: Option<SubnetFilter>,
    pub subnet_id: Option<String>,
    pub license_specifications: Vec<LicenseSpecification>,
    pub placement: Option<Placement>,
    /// Deprecated in favour of `placement.tenancy`.
    pub tenancy: Option<String>,
    /// Empty when unset: bakery then allows only the VPC or the caller (Packer: 0.0.0.0/0).
    pub temporary_security_group_source_cidrs: Vec<String>,
    pub temporary_security_group_source_public_ip: bool,
    pub user_data: Option<String>,
    pub user_data_file: Option<String>,
    pub vpc_filter: Option<NameValueFilter>,
    pub vpc_id: Option<String>,
    /// 20m by default.
    pub windows_password_timeout: Duration,
    pub metadata_options: MetadataOptions,
    /// public_ip, private_ip, public_dns, private_dns or session_manager.
    pub ssh_interface: Option<String>,
    /// 10s by default.
    pub pause_before_ssm: Duration,
    pub session_manager_port: Option<i64>,
}

impl RunConfig {
    pub fn is_spot_instance(&self) -> bool {
        self.spot_price
            .as_deref()
            .is_some_and(|p| !p.is_empty() && p != "0")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommunicatorConfig {
    /// "ssh" (default), "winrm", "none".
    pub communicator: String,
    pub pause_before_connecting: Option<Duration>,
    pub ssh_host: Option<String>,
    pub ssh_port: u16,
    pub ssh_username: Option<String>,
    pub ssh_password: Option<String>,
    pub ssh_keypair_name: Option<String>,
    pub temporary_key_pair_name: Option<String>,
    /// "ed25519" (bakery's default: newer OpenSSH servers refuse RSA with SHA-1 signatures, and an
    /// ed25519 key costs EC2 nothing to make) or "rsa" (Packer 1.6.6's default).
    pub temporary_key_pair_type: String,
    pub temporary_key_pair_bits: Option<i64>,
    pub ssh_ciphers: Vec<String>,
    pub ssh_clear_authorized_keys: bool,
    pub ssh_key_exchange_algorithms: Vec<String>,
    pub ssh_private_key_file: Option<String>,
    pub ssh_certificate_file: Option<String>,
    pub ssh_pty: bool,
    /// 5m unless `ssh_handshake_attempts` is set (`ssh_wait_timeout` wins).
    pub ssh_timeout: Option<Duration>,
    pub ssh_agent_auth: bool,
    pub ssh_disable_agent_forwarding: bool,
    /// 10 unless `ssh_timeout` is set.
    pub ssh_handshake_attempts: Option<i64>,
    pub ssh_bastion_host: Option<String>,
    pub ssh_bastion_port: u16,
    pub ssh_bastion_agent_auth: bool,
    pub ssh_bastion_username: Option<String>,
    pub ssh_bastion_password: Option<String>,
    pub ssh_bastion_interactive: bool,
    pub ssh_bastion_private_key_file: Option<String>,
    pub ssh_bastion_certificate_file: Option<String>,
    /// "scp" (default) or "sftp".
    pub ssh_file_transfer_method: String,
    pub ssh_proxy_host: Option<String>,
    pub ssh_proxy_port: u16,
    pub ssh_proxy_username: Option<String>,
    pub ssh_proxy_password: Option<String>,
    /// 5s by default; None when disabled with a negative value.
    pub ssh_keep_alive_interval: Option<Duration>,
    pub ssh_read_write_timeout: Option<Duration>,
    pub ssh_remote_tunnels: Vec<String>,
    pub ssh_local_tunnels: Vec<String>,
    pub ssh_public_key: Option<String>,
    pub ssh_private_key: Option<String>,
    pub winrm_username: Option<String>,
    pub winrm_password: Option<String>,
    pub winrm_host: Option<String>,
    pub winrm_no_proxy: bool,
    pub winrm_port: u16,
    pub winrm_timeout: Duration,
    pub winrm_use_ssl: bool,
    pub winrm_insecure: bool,
    pub winrm_use_ntlm: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BlockDevice {
    pub delete_on_termination: bool,
    pub device_name: Option<String>,
    pub encrypted: Option<bool>,
    pub iops: Option<i64>,
    pub no_device: bool,
    pub snapshot_id: Option<String>,
    pub throughput: Option<i64>,
    pub virtual_name: Option<String>,
    pub volume_type: Option<String>,
    pub volume_size: i64,
    pub kms_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FastLaunchTemplate {
    pub region: Option<String>,
    pub template_id: Option<String>,
    pub template_name: Option<String>,
    pub template_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FastLaunchConfig {
    pub enable_fast_launch: bool,
    pub template_id: Option<String>,
    pub template_name: Option<String>,
    pub template_version: Option<i64>,
    pub region_launch_templates: Vec<FastLaunchTemplate>,
    pub max_parallel_launches: Option<i64>,
    pub target_resource_count: Option<i64>,
}

fn name_value_filter(d: &mut Decoder, f: &mut Fields) -> NameValueFilter {
    let mut filters = d.string_map(f, "filters");
    let blocks = d.objects(f, "filter", |d, f| {
        (
            d.string(f, "name").unwrap_or_default(),
            d.string(f, "value").unwrap_or_default(),
        )
    });
    for (k, v) in blocks {
        filters.insert(k, v);
    }
    NameValueFilter { filters }
}

fn port(d: &mut Decoder, f: &mut Fields, key: &'static str, default: u16) -> u16 {
    let pos = f.pos;
    match d.int(f, key) {
        None | Some(0) => default,
        Some(p) if (1..=65535).contains(&p) => p as u16,
        Some(p) => {
            d.err(pos, format!("{key} {p} is not a valid port (1-65535)"));
            default
        }
    }
}

fn block_devices(d: &mut Decoder, f: &mut Fields, key: &'static str) -> Vec<BlockDevice> {
    d.objects(f, key, |d, f| BlockDevice {
        delete_on_termination: d.bool(f, "delete_on_termination"),
        device_name: d.opt_string(f, "device_name"),
        encrypted: d.trilean(f, "encrypted"),
        iops: d.int(f, "iops"),
        no_device: d.bool(f, "no_device"),
        snapshot_id: d.opt_string(f, "snapshot_id"),
        throughput: d.int(f, "throughput"),
        virtual_name: d.opt_string(f, "virtual_name"),
        volume_type: d.opt_string(f, "volume_type"),
        volume_size: d.int(f, "volume_size").unwrap_or(0),
        kms_key_id: d.opt_string(f, "kms_key_id"),
    })
}

/// Decodes a rendered amazon-ebs configuration (late fields still raw).
pub fn decode(d: &mut Decoder, f: &mut Fields, cx: &Arc<FuncContext>) -> AmazonEbsConfig {
    let pos = f.pos;
    // Renamed keys first, so the new key wins when both are given.
    let mut renamed_timeout = None;
    let mut renamed_interface = None;
    let mut renamed_shutdown = None;
    let mut renamed_ena = None;
    let mut renamed_cidrs = None;
    for (old, new) in RENAMED {
        if let Some(v) = f.take(old) {
            let name = f.name(old);
            d.warn(
                v.pos,
                format!(
                    "'{old}' is deprecated (packer fix rewrites it); bakery accepts it as {new}"
                ),
            );
            match *old {
                "ssh_wait_timeout" => renamed_timeout = d.to_duration(v, &name),
                "ssh_private_ip" => {
                    if d.to_bool(v, &name) == Some(true) {
                        renamed_interface = Some("private_ip".to_string());
                    }
                }
                "shutdown_behaviour" => renamed_shutdown = d.to_string(v, &name),
                "enhanced_networking" => renamed_ena = d.to_bool(v, &name),
                _ => renamed_cidrs = d.to_strings(v, &name),
            }
        }
    }

    let access = AccessConfig {
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
    };

    let mut tags = late_map(d, f, "tags", cx);
    merge_key_values(d, f, "tag", "key", &mut tags, cx);
    let mut snapshot_tags = late_map(d, f, "snapshot_tags", cx);
    merge_key_values(d, f, "snapshot_tag", "key", &mut snapshot_tags, cx);
    let ena_support = match d.trilean(f, "ena_support") {
        Some(b) => Some(b),
        None => renamed_ena,
    };
    let mut ami = AmiConfig {
        ami_name: d.string(f, "ami_name").unwrap_or_default(),
        ami_description: late_string(d, f, "ami_description", cx),
        ami_virtualization_type: d.opt_string(f, "ami_virtualization_type"),
        ami_users: d.strings(f, "ami_users"),
        ami_groups: d.strings(f, "ami_groups"),
        ami_org_arns: d.strings(f, "ami_org_arns"),
        ami_ou_arns: d.strings(f, "ami_ou_arns"),
        ami_product_codes: d.strings(f, "ami_product_codes"),
        ami_regions: d.strings(f, "ami_regions"),
        skip_region_validation: d.bool(f, "skip_region_validation"),
        snapshot_copy_duration_minutes: d.int(f, "snapshot_copy_duration_minutes"),
        tags,
        ena_support,
        sriov_support: d.bool(f, "sriov_support"),
        force_deregister: d.bool(f, "force_deregister"),
        force_delete_snapshot: d.bool(f, "force_delete_snapshot"),
        encrypt_boot: d.trilean(f, "encrypt_boot"),
        kms_key_id: d.opt_string(f, "kms_key_id"),
        region_kms_key_ids: d.string_map(f, "region_kms_key_ids"),
        skip_save_build_region: d.bool(f, "skip_save_build_region"),
        imds_support: d.opt_string(f, "imds_support"),
        deprecate_at: d.opt_string(f, "deprecate_at"),
        snapshot_tags,
        snapshot_users: d.strings(f, "snapshot_users"),
        snapshot_groups: d.strings(f, "snapshot_groups"),
        deregistration_protection: d
            .object(f, "deregistration_protection", |d, f| {
                DeregistrationProtection {
                    enabled: d.bool(f, "enabled"),
                    with_cooldown: d.bool(f, "with_cooldown"),
                }
            })
            .unwrap_or_default(),
    };
    if ami.deregistration_protection.with_cooldown {
        ami.deregistration_protection.enabled = true;
    }

    let mut run_tags = late_map(d, f, "run_tags", cx);
    merge_key_values(d, f, "run_tag", "key", &mut run_tags, cx);
    let mut spot_tags = late_map(d, f, "spot_tags", cx);
    merge_key_values(d, f, "spot_tag", "key", &mut spot_tags, cx);
    let mut fleet_tags = late_map(d, f, "fleet_tags", cx);
    merge_key_values(d, f, "fleet_tag", "key", &mut fleet_tags, cx);
    let security_group_id = d.opt_string(f, "security_group_id");
    let security_group_ids = d.strings(f, "security_group_ids");
    let temporary_security_group_source_cidrs = d
        .opt_strings(f, "temporary_security_group_source_cidrs")
        .or(renamed_cidrs);
    let temporary_security_group_source_public_ip =
        d.bool(f, "temporary_security_group_source_public_ip");
    let run = RunConfig {
        associate_public_ip_address: d.trilean(f, "associate_public_ip_address"),
        availability_zone: d.opt_string(f, "availability_zone"),
        block_duration_minutes: d.int(f, "block_duration_minutes").unwrap_or(0),
        capacity_reservation_preference: d.opt_string(f, "capacity_reservation_preference"),
        capacity_reservation_id: d.opt_string(f, "capacity_reservation_id"),
        capacity_reservation_group_arn: d.opt_string(f, "capacity_reservation_group_arn"),
        disable_stop_instance: d.bool(f, "disable_stop_instance"),
        ebs_optimized: d.bool(f, "ebs_optimized"),
        enable_nitro_enclave: d.bool(f, "enable_nitro_enclave"),
        enable_t2_unlimited: d.bool(f, "enable_t2_unlimited"),
        enable_unlimited_credits: d.bool(f, "enable_unlimited_credits"),
        iam_instance_profile: d.opt_string(f, "iam_instance_profile"),
        fleet_tags,
        skip_profile_validation: d.bool(f, "skip_profile_validation"),
        temporary_iam_instance_profile_policy_document: d.object(
            f,
            "temporary_iam_instance_profile_policy_document",
            |d, f| PolicyDocument {
                version: d.opt_string(f, "Version"),
                statement: d.objects(f, "Statement", |d, f| PolicyStatement {
                    effect: d.opt_string(f, "Effect"),
                    action: d.strings(f, "Action"),
                    resource: d.strings(f, "Resource"),
                }),
            },
        ),
        shutdown_behavior: d
            .opt_string(f, "shutdown_behavior")
            .or(renamed_shutdown)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "stop".to_string()),
        instance_type: d.opt_string(f, "instance_type"),
        security_group_filter: d.object(f, "security_group_filter", name_value_filter),
        run_tags,
        security_group_ids: {
            let mut ids = security_group_ids;
            if let Some(id) = &security_group_id {
                if ids.is_empty() {
                    ids.push(id.clone());
                } else {
                    d.err(
                        pos,
                        "Only one of security_group_id or security_group_ids can be specified.",
                    );
                }
            }
            ids
        },
        source_ami: d.opt_string(f, "source_ami"),
        source_ami_filter: d.object(f, "source_ami_filter", |d, f| AmiFilter {
            filters: d.string_map(f, "filters"),
            owners: d.strings(f, "owners"),
            most_recent: d.bool(f, "most_recent"),
            include_deprecated: d.bool(f, "include_deprecated"),
        }),
        spot_allocation_strategy: d.opt_string(f, "spot_allocation_strategy"),
        spot_instance_types: d.strings(f, "spot_instance_types"),
        spot_price: d.opt_string(f, "spot_price"),
        spot_price_auto_product: d.opt_string(f, "spot_price_auto_product"),
        spot_tags,
        subnet_filter: d.object(f, "subnet_filter", |d, f| {
            let nvf = name_value_filter(d, f);
            SubnetFilter {
                filters: nvf.filters,
                most_free: d.bool(f, "most_free"),
                random: d.bool(f, "random"),
            }
        }),
        subnet_id: d.opt_string(f, "subnet_id"),
        license_specifications: d.objects(f, "license_specifications", |d, f| {
            LicenseSpecification {
                license_configuration_arn: d
                    .object(f, "license_configuration_request", |d, f| {
                        d.opt_string(f, "license_configuration_arn")
                    })
                    .flatten(),
            }
        }),
        placement: d.object(f, "placement", |d, f| Placement {
            host_resource_group_arn: d.opt_string(f, "host_resource_group_arn"),
            host_id: d.opt_string(f, "host_id"),
            tenancy: d.opt_string(f, "tenancy"),
        }),
        tenancy: d.opt_string(f, "tenancy"),
        // Unset stays empty: bakery's default source is narrower than Packer's 0.0.0.0/0 (see the
        // security group step).
        temporary_security_group_source_cidrs: temporary_security_group_source_cidrs
            .unwrap_or_default(),
        temporary_security_group_source_public_ip,
        user_data: d.opt_string(f, "user_data"),
        user_data_file: d.opt_string(f, "user_data_file"),
        vpc_filter: d.object(f, "vpc_filter", name_value_filter),
        vpc_id: d.opt_string(f, "vpc_id"),
        windows_password_timeout: d
            .duration(f, "windows_password_timeout")
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(20 * 60)),
        metadata_options: d
            .object(f, "metadata_options", |d, f| {
                let def = MetadataOptions::default();
                MetadataOptions {
                    http_endpoint: d
                        .opt_string(f, "http_endpoint")
                        .unwrap_or(def.http_endpoint),
                    http_tokens: d.opt_string(f, "http_tokens").unwrap_or(def.http_tokens),
                    http_put_response_hop_limit: d
                        .int(f, "http_put_response_hop_limit")
                        .filter(|n| *n != 0)
                        .unwrap_or(def.http_put_response_hop_limit),
                    instance_metadata_tags: d
                        .opt_string(f, "instance_metadata_tags")
                        .unwrap_or(def.instance_metadata_tags),
                }
            })
            .unwrap_or_default(),
        ssh_interface: d.opt_string(f, "ssh_interface").or(renamed_interface),
        pause_before_ssm: d
            .duration(f, "pause_before_ssm")
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(10)),
        session_manager_port: d.int(f, "session_manager_port").filter(|p| *p != 0),
    };

    let comm = decode_communicator(d, f, renamed_timeout);

    let mut run_volume_tags = late_map(d, f, "run_volume_tags", cx);
    merge_key_values(d, f, "run_volume_tag", "name", &mut run_volume_tags, cx);
    let mut cfg = AmazonEbsConfig {
        access,
        ami,
        run,
        comm,
        skip_create_ami: d.bool(f, "skip_create_ami"),
        skip_ami_run_tags: d.bool(f, "skip_ami_run_tags"),
        ami_block_device_mappings: block_devices(d, f, "ami_block_device_mappings"),
        launch_block_device_mappings: block_devices(d, f, "launch_block_device_mappings"),
        run_volume_tags,
        no_ephemeral: d.bool(f, "no_ephemeral"),
        fast_launch: d.object(f, "fast_launch", |d, f| FastLaunchConfig {
            enable_fast_launch: d.bool(f, "enable_fast_launch"),
            template_id: d.opt_string(f, "template_id"),
            template_name: d.opt_string(f, "template_name"),
            template_version: d.int(f, "template_version"),
            region_launch_templates: d.objects(f, "region_launch_templates", |d, f| {
                FastLaunchTemplate {
                    region: d.opt_string(f, "region"),
                    template_id: d.opt_string(f, "template_id"),
                    template_name: d.opt_string(f, "template_name"),
                    template_version: d.int(f, "template_version"),
                }
            }),
            max_parallel_launches: d.int(f, "max_parallel_launches"),
            target_resource_count: d.int(f, "target_resource_count"),
        }),
    };
    if cfg.run.capacity_reservation_preference.is_none()
        && cfg.run.capacity_reservation_id.is_none()
        && cfg.run.capacity_reservation_group_arn.is_none()
    {
        cfg.run.capacity_reservation_preference = Some("none".to_string());
    }
    // Packer drops duplicates and the build region from ami_regions.
    let mut seen = Vec::new();
    let region = cfg.access.region.clone();
    cfg.ami.ami_regions.retain(|r| {
        if seen.contains(r) {
            return false;
        }
        seen.push(r.clone());
        region.as_deref() != Some(r.as_str())
    });
    cfg
}

fn decode_communicator(
    d: &mut Decoder,
    f: &mut Fields,
    renamed_timeout: Option<Duration>,
) -> CommunicatorConfig {
    let communicator = d
        .opt_string(f, "communicator")
        .unwrap_or_else(|| "ssh".to_string());
    let ssh_timeout = d.duration(f, "ssh_timeout").filter(|t| !t.is_zero());
    let ssh_handshake_attempts = d.int(f, "ssh_handshake_attempts").filter(|n| *n != 0);
    let (ssh_timeout, ssh_handshake_attempts) = match (ssh_timeout, ssh_handshake_attempts) {
        (None, None) => (Some(Duration::from_secs(300)), Some(10)),
        other => other,
    };
    let ssh_timeout = renamed_timeout.filter(|t| !t.is_zero()).or(ssh_timeout);
    let keep_alive = match d.go_duration(f, "ssh_keep_alive_interval") {
        None | Some(0) => Some(Duration::from_secs(5)),
        Some(n) if n < 0 => None,
        Some(n) => Some(Duration::from_nanos(n.min(u64::MAX as i128) as u64)),
    };
    let winrm_use_ssl = d.bool(f, "winrm_use_ssl");
    let ssh_private_key_file = d.opt_string(f, "ssh_private_key_file");
    let ssh_certificate_file = d.opt_string(f, "ssh_certificate_file");
    let ssh_bastion_host = d.opt_string(f, "ssh_bastion_host");
    let mut ssh_bastion_private_key_file = d.opt_string(f, "ssh_bastion_private_key_file");
    let mut ssh_bastion_certificate_file = d.opt_string(f, "ssh_bastion_certificate_file");
    if ssh_bastion_host.is_some()
        && ssh_bastion_private_key_file.is_none()
        && ssh_private_key_file.is_some()
    {
        ssh_bastion_private_key_file = ssh_private_key_file.clone();
        ssh_bastion_certificate_file = ssh_certificate_file.clone();
    }
    CommunicatorConfig {
        communicator,
        pause_before_connecting: d
            .duration(f, "pause_before_connecting")
            .filter(|t| !t.is_zero()),
        ssh_host: d.opt_string(f, "ssh_host"),
        ssh_port: port(d, f, "ssh_port", 22),
        ssh_username: d.opt_string(f, "ssh_username"),
        ssh_password: d.opt_string(f, "ssh_password"),
        ssh_keypair_name: d.opt_string(f, "ssh_keypair_name"),
        temporary_key_pair_name: d.opt_string(f, "temporary_key_pair_name"),
        temporary_key_pair_type: d
            .opt_string(f, "temporary_key_pair_type")
            .unwrap_or_else(|| "ed25519".to_string()),
        temporary_key_pair_bits: d.int(f, "temporary_key_pair_bits").filter(|n| *n != 0),
        ssh_ciphers: d.strings(f, "ssh_ciphers"),
        ssh_clear_authorized_keys: d.bool(f, "ssh_clear_authorized_keys"),
        ssh_key_exchange_algorithms: d.strings(f, "ssh_key_exchange_algorithms"),
        ssh_private_key_file,
        ssh_certificate_file,
        ssh_pty: d.bool(f, "ssh_pty"),
        ssh_timeout,
        ssh_agent_auth: d.bool(f, "ssh_agent_auth"),
        ssh_disable_agent_forwarding: d.bool(f, "ssh_disable_agent_forwarding"),
        ssh_handshake_attempts,
        ssh_bastion_port: port(d, f, "ssh_bastion_port", 22),
        ssh_bastion_host,
        ssh_bastion_agent_auth: d.bool(f, "ssh_bastion_agent_auth"),
        ssh_bastion_username: d.opt_string(f, "ssh_bastion_username"),
        ssh_bastion_password: d.opt_string(f, "ssh_bastion_password"),
        ssh_bastion_interactive: d.bool(f, "ssh_bastion_interactive"),
        ssh_bastion_private_key_file,
        ssh_bastion_certificate_file,
        ssh_file_transfer_method: d
            .opt_string(f, "ssh_file_transfer_method")
            .unwrap_or_else(|| "scp".to_string()),
        ssh_proxy_host: d.opt_string(f, "ssh_proxy_host"),
        ssh_proxy_port: port(d, f, "ssh_proxy_port", 1080),
        ssh_proxy_username: d.opt_string(f, "ssh_proxy_username"),
        ssh_proxy_password: d.opt_string(f, "ssh_proxy_password"),
        ssh_keep_alive_interval: keep_alive,
        ssh_read_write_timeout: d
            .duration(f, "ssh_read_write_timeout")
            .filter(|t| !t.is_zero()),
        ssh_remote_tunnels: d.strings(f, "ssh_remote_tunnels"),
        ssh_local_tunnels: d.strings(f, "ssh_local_tunnels"),
        ssh_public_key: d.opt_string(f, "ssh_public_key"),
        ssh_private_key: d.opt_string(f, "ssh_private_key"),
        winrm_username: d.opt_string(f, "winrm_username"),
        winrm_password: d.opt_string(f, "winrm_password"),
        winrm_host: d.opt_string(f, "winrm_host"),
        winrm_no_proxy: d.bool(f, "winrm_no_proxy"),
        winrm_port: port(d, f, "winrm_port", if winrm_use_ssl { 5986 } else { 5985 }),
        winrm_timeout: d
            .duration(f, "winrm_timeout")
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(30 * 60)),
        winrm_use_ssl,
        winrm_insecure: d.bool(f, "winrm_insecure"),
        winrm_use_ntlm: d.bool(f, "winrm_use_ntlm"),
    }
}

fn valid_kms_key(k: &str) -> bool {
    fn key_id(s: &str) -> bool {
        // [a-f0-9]+[a-f0-9-]+$ or mrk-...
        let s = s.strip_prefix("mrk-").unwrap_or(s);
        s.len() >= 2
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            && s.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-')
    }
    fn alias(s: &str) -> bool {
        s.strip_prefix("alias/").is_some_and(|r| {
            !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-'))
        })
    }
    if key_id(k) || alias(k) {
        return true;
    }
    // arn:aws[-xx[-gov]]:kms:[region]:ACCOUNT:key/ID or :alias/NAME
    let parts: Vec<&str> = k.splitn(6, ':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[1].starts_with("aws") && parts[2] == "kms" {
        let account_ok = parts[4].len() == 12 && parts[4].chars().all(|c| c.is_ascii_digit());
        let res = parts[5];
        return account_ok && (res.strip_prefix("key/").is_some_and(key_id) || alias(res));
    }
    false
}

fn valid_cidr(c: &str) -> bool {
    let Some((ip, bits)) = c.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// Packer's `Prepare` checks for amazon-ebs (access, AMI, block devices,
/// run, communicator), every error reported. `pos` locates the builder.
pub fn validate(cfg: &AmazonEbsConfig, d: &mut Decoder, pos: Pos) {
    let mut errs: Vec<String> = Vec::new();
    let mut warns: Vec<String> = Vec::new();
    let a = &cfg.access;
    let ami = &cfg.ami;
    let run = &cfg.run;
    let c = &cfg.comm;

    // Access.
    if a.vault_aws_engine.is_some() {
        if a.access_key.is_some() {
            errs.push(
                "If you have set vault_aws_engine, you must not set the access_key or secret_key."
                    .into(),
            );
        }
        errs.push("vault_aws_engine is not supported by bakery (it does not read Vault); provide credentials through the AWS environment, a profile or access_key/secret_key".into());
    }
    if a.access_key.is_some() != a.secret_key.is_some() {
        errs.push("`access_key` and `secret_key` must both be either set or not set.".into());
    }

    // AMI.
    if ami.ami_name.is_empty() {
        errs.push("ami_name must be specified".into());
    }
    for r in ami.region_kms_key_ids.keys() {
        if !ami.ami_regions.contains(r) && a.region.as_deref() != Some(r.as_str()) {
            errs.push(format!(
                "Region {r} is in region_kms_key_ids but not in ami_regions"
            ));
        }
    }
    if !ami.region_kms_key_ids.is_empty() {
        for r in &ami.ami_regions {
            if !ami.region_kms_key_ids.contains_key(r) {
                errs.push(format!(
                    "Region {r} is in ami_regions but not in region_kms_key_ids"
                ));
            }
        }
    }
    let encrypt = ami.encrypt_boot == Some(true);
    if !ami.ami_users.is_empty() || !ami.ami_org_arns.is_empty() || !ami.ami_ou_arns.is_empty() {
        if ami.kms_key_id.is_none() && ami.region_kms_key_ids.is_empty() && encrypt {
            errs.push("Cannot share AMI encrypted with default KMS key".into());
        }
        if ami.region_kms_key_ids.values().any(String::is_empty) {
            errs.push("Cannot share AMI encrypted with default KMS key for other regions".into());
        }
    }
    let mut kms_keys: Vec<&String> = ami.kms_key_id.iter().collect();
    kms_keys.extend(ami.region_kms_key_ids.values().filter(|k| !k.is_empty()));
    if !kms_keys.is_empty() && !encrypt {
        errs.push("If you have set either region_kms_key_ids or kms_key_id, encrypt_boot must also be true.".into());
    }
    for k in kms_keys {
        if !valid_kms_key(k) {
            errs.push(format!("\"{k}\" is not a valid KMS Key Id."));
        }
    }
    if !ami.snapshot_users.is_empty() {
        if ami.kms_key_id.is_none() && ami.region_kms_key_ids.is_empty() && encrypt {
            errs.push("Cannot share snapshot encrypted with default KMS key, see https://www.packer.io/docs/builders/amazon-ebs#region_kms_key_ids for more information".into());
        }
        if ami.region_kms_key_ids.values().any(String::is_empty) {
            errs.push("Cannot share snapshot encrypted with default KMS key".into());
        }
    }
    if ami.ami_name.len() < 3 || ami.ami_name.len() > 128 {
        errs.push("ami_name must be between 3 and 128 characters long".into());
    }
    if ami.ami_name != clean_resource_name(&ami.ami_name) {
        errs.push(format!(
            "AMIName should only contain alphanumeric characters, parentheses (()), square brackets ([]), spaces ( ), periods (.), slashes (/), dashes (-), single quotes ('), at-signs (@), or underscores(_). You can use the `clean_resource_name` template filter to automatically clean your ami name. (ami_name is \"{}\")",
            ami.ami_name
        ));
    }
    if let Some(v) = &ami.imds_support
        && v != "v2.0"
    {
        errs.push("The only valid imds_support values are \"v2.0\" or the empty string".into());
    }
    if let Some(t) = &ami.deprecate_at
        && chrono::DateTime::parse_from_rfc3339(t).is_err()
    {
        errs.push(format!(
            "deprecate_at is not a valid time: \"{t}\". Expect time format: YYYY-MM-DDTHH:MM:SSZ"
        ));
    }

    // Block devices.
    for b in cfg
        .ami_block_device_mappings
        .iter()
        .chain(&cfg.launch_block_device_mappings)
    {
        if let Some(e) = validate_block_device(b) {
            errs.push(e);
        }
    }

    // Run.
    if run.ssh_interface.as_deref() == Some("session_manager") {
        if c.communicator == "winrm" {
            errs.push("session_manager connectivity is not supported with the \"winrm\" communicator; please use \"ssh\"".into());
        }
        if run.iam_instance_profile.is_none()
            && run.temporary_iam_instance_profile_policy_document.is_none()
        {
            errs.push("no iam_instance_profile defined; session_manager connectivity requires a valid instance profile with AmazonSSMManagedInstanceCore permissions. Alternatively a temporary_iam_instance_profile_policy_document can be used.".into());
        }
    }
    if c.temporary_key_pair_type != "rsa" && c.temporary_key_pair_type != "ed25519" {
        errs.push("temporary_key_pair_type requires either rsa or ed25519 as its value".into());
    }
    let m = &run.metadata_options;
    if m.http_endpoint != "enabled" && m.http_endpoint != "disabled" {
        errs.push("http_endpoint requires either disabled or enabled as its value".into());
    }
    if m.http_tokens != "optional" && m.http_tokens != "required" {
        errs.push("http_tokens requires either optional or required as its value".into());
    }
    if !(1..=64).contains(&m.http_put_response_hop_limit) {
        errs.push("http_put_response_hop_limit requires a number between 1 and 64".into());
    }
    if m.instance_metadata_tags != "enabled" && m.instance_metadata_tags != "disabled" {
        errs.push("instance_metadata_tags requires either disabled or enabled as its value".into());
    }
    if let Some(i) = &run.ssh_interface
        && ![
            "public_ip",
            "private_ip",
            "public_dns",
            "private_dns",
            "session_manager",
        ]
        .contains(&i.as_str())
    {
        errs.push(format!("Unknown interface type: {i}"));
    }
    if c.ssh_keypair_name.is_some() {
        if c.communicator == "winrm"
            && c.winrm_password.is_none()
            && c.ssh_private_key_file.is_none()
        {
            errs.push("ssh_private_key_file must be provided to retrieve the winrm password when using ssh_keypair_name.".into());
        } else if c.ssh_private_key_file.is_none() && !c.ssh_agent_auth {
            errs.push("ssh_private_key_file must be provided or ssh_agent_auth enabled when ssh_keypair_name is specified.".into());
        }
    }
    let filter_empty = run
        .source_ami_filter
        .as_ref()
        .is_none_or(AmiFilter::is_empty);
    let no_owner = run
        .source_ami_filter
        .as_ref()
        .is_none_or(|f| f.owners.is_empty());
    if run.source_ami.is_none() && filter_empty {
        errs.push("A source_ami or source_ami_filter must be specified".into());
    }
    if run.source_ami.is_none() && no_owner {
        errs.push("For security reasons, your source AMI filter must declare an owner.".into());
    }
    if run.instance_type.is_none() && run.spot_instance_types.is_empty() {
        errs.push("either instance_type or spot_instance_types must be specified".into());
    }
    if run.instance_type.is_some() && !run.spot_instance_types.is_empty() {
        errs.push("either instance_type or spot_instance_types must be specified, not both".into());
    }
    if !run.fleet_tags.is_empty() && !run.is_spot_instance() {
        errs.push("fleet_tags should not be set when not requesting a spot instance".into());
    }
    if run.block_duration_minutes % 60 != 0 {
        errs.push("block_duration_minutes must be multiple of 60".into());
    }
    if !run.spot_tags.is_empty() && !run.is_spot_instance() {
        errs.push("spot_tags should not be set when not requesting a spot instance".into());
    }
    if let Some(s) = &run.spot_allocation_strategy {
        let valid = [
            "price-capacity-optimized",
            "capacity-optimized",
            "diversified",
            "lowest-price",
        ];
        if !valid.contains(&s.as_str()) {
            errs.push(format!(
                "spot_allocation_strategy must be one of: {}; got \"{s}\"",
                valid.join(", ")
            ));
        }
    }
    if run.user_data.is_some() && run.user_data_file.is_some() {
        errs.push("Only one of user_data or user_data_file can be specified.".into());
    } else if let Some(f) = &run.user_data_file
        && stat(f).is_err()
    {
        errs.push(format!("user_data_file not found: {f}"));
    }
    for cidr in &run.temporary_security_group_source_cidrs {
        if !valid_cidr(cidr) {
            errs.push(format!(
                "Error parsing CIDR in temporary_security_group_source_cidrs: invalid CIDR address: {cidr}"
            ));
        }
    }
    if run.shutdown_behavior != "stop" && run.shutdown_behavior != "terminate" {
        errs.push("shutdown_behavior only accepts 'stop' or 'terminate' values.".into());
    }
    let unlimited = run.enable_unlimited_credits || run.enable_t2_unlimited;
    let it = run.instance_type.as_deref().unwrap_or("");
    if unlimited {
        let burstable = ["t2.", "t3.", "t3a.", "t4g."]
            .iter()
            .any(|p| it.starts_with(p));
        if !burstable {
            errs.push(format!(
                "Error: Instance Type: {it} is not within the supported types for Unlimited credits. Supported instance types are T2, T3, and T4g"
            ));
        }
        if run.spot_price.is_some() && it.starts_with("t2.") {
            errs.push(
                "Error: Unlimited credits cannot be used in conjunction with Spot Instances".into(),
            );
        }
    }
    if run.enable_t2_unlimited {
        warns.push("enable_t2_unlimited is deprecated please use enable_unlimited_credits. In future versions of Packer, inclusion of enable_t2_unlimited will error your builds.".into());
    }
    if run.capacity_reservation_group_arn.is_some() && run.capacity_reservation_id.is_some() {
        errs.push("capacity_reservation_id and capacity_reservation_group_arn are mutually exclusive, only one should be used".into());
    }
    if (run.capacity_reservation_id.is_some() || run.capacity_reservation_group_arn.is_some())
        && run.capacity_reservation_preference.is_some()
    {
        errs.push("capacity_reservation_id, capacity_reservation_group_arn and capacity_reservation_preference are mutually exclusive, only one should be set".into());
    }
    if let Some(p) = &run.capacity_reservation_preference
        && p != "none"
        && p != "open"
    {
        errs.push("capacity_reservation_preference only accepts 'none' or 'open' values".into());
    }
    let placement_tenancy = run.placement.as_ref().and_then(|p| p.tenancy.clone());
    if placement_tenancy.is_some() && run.tenancy.is_some() {
        errs.push(
            "Error: Please set only one of placement.tenancy and tenancy (deprecated)".into(),
        );
    }
    if let Some(t) = placement_tenancy.as_ref().or(run.tenancy.as_ref())
        && !["default", "dedicated", "host"].contains(&t.as_str())
    {
        errs.push(format!("Error: Unknown tenancy type {t}"));
    }
    if let Some(p) = &run.placement {
        if p.host_id.is_some() && p.host_resource_group_arn.is_some() {
            errs.push("The `host_id` and `host_resource_group_arn` settings cannot be specified at the same time.".into());
        }
        if (p.host_id.is_some() || p.host_resource_group_arn.is_some())
            && !matches!(p.tenancy.as_deref(), None | Some("host"))
        {
            errs.push("The tenancy should be `host` if either the `host_id` or `host_resource_group_arn` attributes are specified.".into());
        }
    }
    if run.enable_nitro_enclave {
        if run.spot_price.is_some() {
            errs.push(
                "Error: Nitro Enclave cannot be used in conjunction with Spot Instances".into(),
            );
        }
        if it.starts_with('t') {
            errs.push(format!(
                "Error: Nitro Enclaves cannot be used in conjunction with burstable instance types: {it}"
            ));
        }
    }
    if run.is_spot_instance() && (ami.ena_support == Some(true) || ami.sriov_support) {
        errs.push("Spot instances do not support modification, which is required when either `ena_support` or `sriov_support` are set. Please ensure you use an AMI that already has either SR-IOV or ENA enabled.".into());
    }
    if run.spot_price_auto_product.is_some() {
        warns.push("spot_price_auto_product is deprecated and no longer necessary for Packer builds. In future versions of Packer, inclusion of spot_price_auto_product will error your builds. Please take a look at our current documentation to understand how Packer requests Spot instances.".into());
    }

    // Communicator.
    match c.communicator.as_str() {
        "ssh" => errs.extend(validate_ssh(c)),
        "winrm" => {
            if c.winrm_username.is_none() {
                errs.push("winrm_username must be specified.".into());
            }
        }
        "none" | "docker" | "dockerWindowsContainer" => {}
        other => errs.push(format!("Communicator type {other} is invalid")),
    }

    for e in errs {
        d.err(pos, e);
    }
    for w in warns {
        d.warn(pos, w);
    }
}

fn validate_block_device(b: &BlockDevice) -> Option<String> {
    let Some(name) = &b.device_name else {
        return Some(
            "The `device_name` must be specified for every device in the block device mapping."
                .into(),
        );
    };
    if b.kms_key_id.is_some() && b.encrypted == Some(false) {
        return Some(format!(
            "The device {name}, must also have `encrypted: true` when setting a kms_key_id."
        ));
    }
    let vt = b.volume_type.as_deref().unwrap_or("");
    let ratio = match vt {
        "io1" => Some(50),
        "io2" => Some(500),
        _ => None,
    };
    if let (Some(ratio), true) = (ratio, b.volume_size != 0)
        && let Some(iops) = b.iops
    {
        if iops / b.volume_size > ratio {
            return Some(format!(
                "{name}: the maximum ratio of provisioned IOPS to requested volume size (in GiB) is {ratio}:1 for {vt} volumes"
            ));
        }
        if !(100..=64000).contains(&iops) {
            return Some(format!(
                "IOPS must be between 100 and 64000 for device {name}"
            ));
        }
    }
    if vt == "gp3" {
        if let Some(t) = b.throughput
            && !(125..=1000).contains(&t)
        {
            return Some(format!(
                "Throughput must be between 125 and 1000 for device {name}"
            ));
        }
        if let Some(iops) = b.iops
            && !(3000..=16000).contains(&iops)
        {
            return Some(format!(
                "IOPS must be between 3000 and 16000 for device {name}"
            ));
        }
    } else if b.throughput.is_some() {
        return Some(format!(
            "Throughput is only valid for gp3 volumes, \"{name}\" is of type {vt}"
        ));
    }
    None
}

fn validate_ssh(c: &CommunicatorConfig) -> Vec<String> {
    let mut errs = Vec::new();
    if c.ssh_private_key_file.is_none() && c.ssh_certificate_file.is_some() {
        errs.push(
            "ssh_private_key_file must be specified if ssh_certificate_file is specified".into(),
        );
    }
    if c.ssh_bastion_private_key_file.is_none() && c.ssh_bastion_certificate_file.is_some() {
        errs.push("ssh_bastion_private_key_file must be specified if ssh_bastion_certificate_file is specified".into());
    }
    if c.ssh_username.is_none() {
        errs.push("An ssh_username must be specified\n  Note: some builders used to default ssh_username to \"root\".".into());
    }
    if let Some(k) = &c.ssh_private_key_file
        && let Err(e) = stat(&expand_user(k))
    {
        errs.push(format!("ssh_private_key_file is invalid: {e}"));
    }
    if c.ssh_bastion_host.is_some() {
        if c.ssh_bastion_password.is_none()
            && c.ssh_bastion_private_key_file.is_none()
            && !c.ssh_bastion_agent_auth
        {
            errs.push("ssh_bastion_password, ssh_bastion_private_key_file or ssh_bastion_agent_auth must be specified".into());
        } else if let Some(k) = &c.ssh_bastion_private_key_file
            && let Err(e) = stat(&expand_user(k))
        {
            errs.push(format!("ssh_bastion_private_key_file is invalid: {e}"));
        }
    }
    if c.ssh_file_transfer_method != "scp" && c.ssh_file_transfer_method != "sftp" {
        errs.push(format!(
            "ssh_file_transfer_method ('{}') is invalid, valid methods: sftp, scp",
            c.ssh_file_transfer_method
        ));
    }
    if c.ssh_bastion_host.is_some() && c.ssh_proxy_host.is_some() {
        errs.push("please specify either ssh_bastion_host or ssh_proxy_host, not both".into());
    }
    for (kind, list) in [
        ("ssh_local_tunnels", &c.ssh_local_tunnels),
        ("ssh_remote_tunnels", &c.ssh_remote_tunnels),
    ] {
        for t in list {
            if let Err(e) = parse_tunnel(t) {
                errs.push(format!("{kind} ('{t}') is invalid: {e}"));
            }
        }
    }
    errs
}

/// Checks an `ssh -L`/`-R` style tunnel spec: `[bind:]port:host:hostport`.
fn parse_tunnel(t: &str) -> Result<(), String> {
    let parts: Vec<&str> = t.split(':').collect();
    let port_ok = |p: &str| p.parse::<u16>().is_ok();
    match parts.as_slice() {
        [p, _, hp] | [_, p, _, hp] if port_ok(p) && port_ok(hp) => Ok(()),
        _ => Err("Error parsing tunnel argument: expected [bind:]port:host:hostport".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_key_formats() {
        assert!(valid_kms_key("1a2b3c4d-5e6f-1a2b-3c4d-5e6f1a2b3c4d"));
        assert!(valid_kms_key("alias/my-key"));
        assert!(valid_kms_key(
            "arn:aws:kms:us-east-1:123456789012:key/1a2b3c4d-5e6f"
        ));
        assert!(valid_kms_key("mrk-1a2b"));
        assert!(!valid_kms_key("not a key"));
    }

    #[test]
    fn cidrs_and_tunnels() {
        assert!(valid_cidr("0.0.0.0/0"));
        assert!(valid_cidr("1.2.3.4/32"));
        assert!(!valid_cidr("1.2.3.4"));
        assert!(!valid_cidr("1.2.3.4/33"));
        assert!(parse_tunnel("8080:localhost:80").is_ok());
        assert!(parse_tunnel("x").is_err());
    }
}
