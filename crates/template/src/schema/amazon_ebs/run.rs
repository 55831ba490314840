//! The builder instance: source AMI, instance type, network, security group, IAM, spot, user data,
//! how bakery reaches it. Sub-blocks live in `filters`, `iam`, `metadata` and `placement`.

use super::super::choice::{self, Choice, spelled};
use super::super::common::{late_map, merge_key_values, stat};
use super::ami::AmiConfig;
use super::communicator::{self, Communicator, CommunicatorConfig};
use super::filters::{self, AmiFilter, NameValueFilter, SubnetFilter};
use super::iam::{self, PolicyDocument};
use super::metadata::{self, MetadataOptions};
use super::placement::{self, LicenseSpecification, Placement};
use super::renamed::Renamed;
use crate::decode::{Decoder, Fields};
use crate::funcs::FuncContext;
use crate::late::LateMap;
use std::sync::Arc;
use std::time::Duration;

/// The builder instance's options. They sit at the top level of the builder.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Give the instance a public address (unset: the subnet's default).
    pub associate_public_ip_address: Option<bool>,
    /// Availability zone to launch in (unset: AWS picks, or the subnet's).
    pub availability_zone: Option<String>,
    /// Spot block duration in minutes, a multiple of 60. Refused: AWS no longer offers spot blocks.
    pub block_duration_minutes: i64,
    /// `none` (the default when no reservation is named) or `open` (RunInstances'
    /// `CapacityReservationSpecification`).
    pub capacity_reservation_preference: Option<CapacityReservationPreference>,
    /// Capacity reservation to launch into.
    pub capacity_reservation_id: Option<String>,
    /// Capacity reservation group to launch into.
    pub capacity_reservation_group_arn: Option<String>,
    /// Do not stop the instance before the image is made (the provisioners must stop it).
    pub disable_stop_instance: bool,
    /// Launch the instance EBS-optimized.
    pub ebs_optimized: bool,
    /// Turn on Nitro Enclaves (not with spot or burstable types).
    pub enable_nitro_enclave: bool,
    /// Deprecated name of `enable_unlimited_credits` (warning).
    pub enable_t2_unlimited: bool,
    /// Unlimited CPU credits for a burstable (T2/T3/T4g) instance.
    pub enable_unlimited_credits: bool,
    /// Instance profile (name) for the instance; bakery passes it at launch.
    pub iam_instance_profile: Option<String>,
    /// Tags of the spot fleet request; `fleet_tag` blocks (`key`, `value`) are merged in. Rendered late.
    /// Only with a spot instance.
    pub fleet_tags: LateMap,
    /// Ignored with a warning: bakery does not check the instance profile before launch.
    pub skip_profile_validation: bool,
    /// Policy of a temporary instance profile bake creates when `iam_instance_profile` is not set: an
    /// IAM role EC2 may assume with this inline policy, in an instance profile of the same name, removed
    /// after the build.
    pub temporary_iam_instance_profile_policy_document: Option<PolicyDocument>,
    /// What an OS shutdown does to the instance: `stop` (default) or `terminate`
    /// (`shutdown_behaviour` is the old spelling).
    pub shutdown_behavior: ShutdownBehavior,
    /// Instance type of the builder instance; this or `spot_instance_types` is required.
    pub instance_type: Option<String>,
    /// Finds existing security groups when `security_group_ids` is unset.
    pub security_group_filter: Option<NameValueFilter>,
    /// Tags of the builder instance; `run_tag` blocks (`key`, `value`) are merged in. Rendered late, at
    /// the launch step. bakery does not copy them onto the AMI (Packer does, unless `skip_ami_run_tags`).
    pub run_tags: LateMap,
    /// Existing security groups for the instance, instead of a temporary one. `security_group_id`
    /// (a single id) is folded in here, as Packer does; giving both is an error.
    pub security_group_ids: Vec<String>,
    /// Source AMI id, or `resolve:ssm:/parameter`; this or `source_ami_filter` is required.
    pub source_ami: Option<String>,
    /// Finds the source AMI when `source_ami` is unset.
    pub source_ami_filter: Option<AmiFilter>,
    /// Spot allocation strategy of the fleet: `price-capacity-optimized`, `capacity-optimized`,
    /// `diversified` or `lowest-price` (unset: AWS's default).
    pub spot_allocation_strategy: Option<SpotAllocationStrategy>,
    /// Instance types for a spot instance, instead of `instance_type` (one fleet override each).
    pub spot_instance_types: Vec<String>,
    /// Maximum spot price, or `auto` (capped at the on-demand price). Unset, empty or `0`: on demand.
    pub spot_price: Option<String>,
    /// Deprecated by Packer; ignored with a warning.
    pub spot_price_auto_product: Option<String>,
    /// Tags of the spot request and launch template; `spot_tag` blocks (`key`, `value`) are merged in.
    /// Rendered late. Only with a spot instance.
    pub spot_tags: LateMap,
    /// Finds the subnet when `subnet_id` is unset.
    pub subnet_filter: Option<SubnetFilter>,
    /// Subnet to launch in (unset: `subnet_filter`, else the default VPC's).
    pub subnet_id: Option<String>,
    /// License Manager configurations for the instance.
    pub license_specifications: Vec<LicenseSpecification>,
    /// Tenancy and dedicated host of the instance.
    pub placement: Option<Placement>,
    /// Deprecated in favour of `placement.tenancy`; only one of the two may be set.
    pub tenancy: Option<String>,
    /// Sources (CIDRs) allowed to reach the temporary security group's SSH port
    /// (`temporary_security_group_source_cidr` is the old single-value key). Empty when unset: bakery
    /// then allows only the VPC (when it reaches the instance from inside) or this machine's public
    /// address, where Packer opens 0.0.0.0/0.
    pub temporary_security_group_source_cidrs: Vec<String>,
    /// Allow only this machine's public address in the temporary security group. Ignored with a
    /// warning: bakery's default already narrows the source (see `temporary_security_group_source_cidrs`).
    pub temporary_security_group_source_public_ip: bool,
    /// User data of the instance (not with `user_data_file`).
    pub user_data: Option<String>,
    /// File whose content is the instance's user data; must exist.
    pub user_data_file: Option<String>,
    /// Finds the VPC when `vpc_id` is unset.
    pub vpc_filter: Option<NameValueFilter>,
    /// VPC of the instance and the temporary security group.
    pub vpc_id: Option<String>,
    /// How long to wait for a Windows password; 20m by default (also when 0). Ignored with a warning:
    /// bakery does not build Windows images.
    pub windows_password_timeout: Duration,
    /// The instance's metadata service settings (defaults as AWS's).
    pub metadata_options: MetadataOptions,
    /// Which address bakery connects to: `public_ip`, `private_ip`, `public_dns`, `private_dns` or
    /// `session_manager` (unset: public address when there is one, else private). `ssh_private_ip: true`
    /// is the old spelling of `private_ip`; `ipv6` the instance's IPv6 address. `session_manager` is refused
    /// at validate (support.rs).
    pub ssh_interface: Option<SshInterface>,
    /// With `session_manager`: wait this long before starting the session; 10s by default (also when 0).
    pub pause_before_ssm: Duration,
    /// With `session_manager`: local port of the tunnel (unset or 0: any free port).
    pub session_manager_port: Option<i64>,
}

impl RunConfig {
    /// Whether the instance is a spot instance: `spot_price` set, not empty and not `0`.
    pub fn is_spot_instance(&self) -> bool {
        self.spot_price
            .as_deref()
            .is_some_and(|p| !p.is_empty() && p != "0")
    }
}

/// The `shutdown_behavior` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownBehavior {
    /// `stop` (the default): an OS shutdown stops the instance.
    Stop,
    /// `terminate`: an OS shutdown terminates the instance.
    Terminate,
}

impl Choice for ShutdownBehavior {
    const VALUES: &'static [(&'static str, Self)] = &[
        ("stop", ShutdownBehavior::Stop),
        ("terminate", ShutdownBehavior::Terminate),
    ];

    fn invalid(_key: &str, _value: &str) -> String {
        "shutdown_behavior only accepts 'stop' or 'terminate' values.".into()
    }
}

/// The `ssh_interface` option: which address of the instance bakery connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshInterface {
    /// `public_ip`: the public IPv4 address.
    PublicIp,
    /// `private_ip`: the private IPv4 address.
    PrivateIp,
    /// `public_dns`: the public DNS name.
    PublicDns,
    /// `private_dns`: the private DNS name.
    PrivateDns,
    /// `session_manager`: an SSM session tunnel (refused at validate: see support.rs).
    SessionManager,
    /// `ipv6`: the instance's IPv6 address.
    Ipv6,
}

impl Choice for SshInterface {
    const VALUES: &'static [(&'static str, Self)] = &[
        ("public_ip", SshInterface::PublicIp),
        ("private_ip", SshInterface::PrivateIp),
        ("public_dns", SshInterface::PublicDns),
        ("private_dns", SshInterface::PrivateDns),
        ("session_manager", SshInterface::SessionManager),
        ("ipv6", SshInterface::Ipv6),
    ];

    fn invalid(_key: &str, value: &str) -> String {
        format!("Unknown interface type: {value}")
    }
}

/// The `spot_allocation_strategy` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpotAllocationStrategy {
    /// `price-capacity-optimized`: the pools with the most capacity, then the lowest price.
    PriceCapacityOptimized,
    /// `capacity-optimized`: the pools with the most capacity.
    CapacityOptimized,
    /// `diversified`: spread over the pools.
    Diversified,
    /// `lowest-price`: the cheapest pool.
    LowestPrice,
}

impl Choice for SpotAllocationStrategy {
    const VALUES: &'static [(&'static str, Self)] = &[
        (
            "price-capacity-optimized",
            SpotAllocationStrategy::PriceCapacityOptimized,
        ),
        (
            "capacity-optimized",
            SpotAllocationStrategy::CapacityOptimized,
        ),
        ("diversified", SpotAllocationStrategy::Diversified),
        ("lowest-price", SpotAllocationStrategy::LowestPrice),
    ];

    fn invalid(_key: &str, value: &str) -> String {
        let valid: Vec<&str> = Self::VALUES.iter().map(|(s, _)| *s).collect();
        format!(
            "spot_allocation_strategy must be one of: {}; got \"{value}\"",
            valid.join(", ")
        )
    }
}

/// The `capacity_reservation_preference` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityReservationPreference {
    /// `none`: never launch into a capacity reservation.
    None,
    /// `open`: launch into any open capacity reservation that matches.
    Open,
}

impl Choice for CapacityReservationPreference {
    const VALUES: &'static [(&'static str, Self)] = &[
        ("none", CapacityReservationPreference::None),
        ("open", CapacityReservationPreference::Open),
    ];

    fn invalid(_key: &str, _value: &str) -> String {
        "capacity_reservation_preference only accepts 'none' or 'open' values".into()
    }
}

spelled!(
    ShutdownBehavior,
    SshInterface,
    SpotAllocationStrategy,
    CapacityReservationPreference
);

/// Decodes the builder instance's options; `renamed` gives the values of old keys, which the new
/// keys override.
pub(super) fn decode(
    d: &mut Decoder,
    f: &mut Fields,
    cx: &Arc<FuncContext>,
    renamed: &mut Renamed,
) -> RunConfig {
    let pos = f.pos;
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
        .or(renamed.source_cidrs.take());
    let temporary_security_group_source_public_ip =
        d.bool(f, "temporary_security_group_source_public_ip");
    let mut run = RunConfig {
        associate_public_ip_address: d.trilean(f, "associate_public_ip_address"),
        availability_zone: d.opt_string(f, "availability_zone"),
        block_duration_minutes: d.int(f, "block_duration_minutes").unwrap_or(0),
        // An unknown value is reported once; decoded as `none` it still counts as set, for the check
        // that a reservation id or group is not given too.
        capacity_reservation_preference: choice::decode(
            d,
            f,
            "capacity_reservation_preference",
            CapacityReservationPreference::None,
        ),
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
            iam::policy_document,
        ),
        shutdown_behavior: {
            let name = f.name("shutdown_behavior");
            f.take("shutdown_behavior")
                .and_then(|v| d.to_string(v, &name).map(|s| (s, v.pos)))
                .or(renamed.shutdown_behavior.take())
                .filter(|(s, _)| !s.is_empty())
                .map(|(s, pos)| {
                    choice::parse(d, pos, "shutdown_behavior", &s, ShutdownBehavior::Stop)
                })
                .unwrap_or(ShutdownBehavior::Stop)
        },
        instance_type: d.opt_string(f, "instance_type"),
        security_group_filter: d.object(f, "security_group_filter", filters::name_value_filter),
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
        source_ami_filter: d.object(f, "source_ami_filter", filters::ami_filter),
        spot_allocation_strategy: choice::decode(
            d,
            f,
            "spot_allocation_strategy",
            SpotAllocationStrategy::PriceCapacityOptimized,
        ),
        spot_instance_types: d.strings(f, "spot_instance_types"),
        spot_price: d.opt_string(f, "spot_price"),
        spot_price_auto_product: d.opt_string(f, "spot_price_auto_product"),
        spot_tags,
        subnet_filter: d.object(f, "subnet_filter", filters::subnet_filter),
        subnet_id: d.opt_string(f, "subnet_id"),
        license_specifications: d.objects(
            f,
            "license_specifications",
            placement::license_specification,
        ),
        placement: d.object(f, "placement", placement::placement),
        tenancy: d.opt_string(f, "tenancy"),
        // Unset stays empty: bakery's default source is narrower than Packer's 0.0.0.0/0 (see the
        // security group step).
        temporary_security_group_source_cidrs: temporary_security_group_source_cidrs
            .unwrap_or_default(),
        temporary_security_group_source_public_ip,
        user_data: d.opt_string(f, "user_data"),
        user_data_file: d.opt_string(f, "user_data_file"),
        vpc_filter: d.object(f, "vpc_filter", filters::name_value_filter),
        vpc_id: d.opt_string(f, "vpc_id"),
        windows_password_timeout: d
            .duration(f, "windows_password_timeout")
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(20 * 60)),
        metadata_options: d
            .object(f, "metadata_options", metadata::decode)
            .unwrap_or_default(),
        // An unknown interface is reported once; decoded as `public_ip` it triggers no
        // session_manager check.
        ssh_interface: choice::decode(d, f, "ssh_interface", SshInterface::PublicIp)
            .or(renamed.ssh_private_ip.then_some(SshInterface::PrivateIp)),
        pause_before_ssm: d
            .duration(f, "pause_before_ssm")
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(10)),
        session_manager_port: d.int(f, "session_manager_port").filter(|p| *p != 0),
    };
    if run.capacity_reservation_preference.is_none()
        && run.capacity_reservation_id.is_none()
        && run.capacity_reservation_group_arn.is_none()
    {
        run.capacity_reservation_preference = Some(CapacityReservationPreference::None);
    }
    run
}

/// Packer's checks of the builder instance's options, in Packer's order; some read the communicator
/// (`ssh_interface: session_manager`, the key pair options) because Packer checks them here.
pub fn validate(
    run: &RunConfig,
    ami: &AmiConfig,
    c: &CommunicatorConfig,
    errs: &mut Vec<String>,
    warns: &mut Vec<String>,
) {
    if run.ssh_interface == Some(SshInterface::SessionManager) {
        if c.communicator == Communicator::Winrm {
            errs.push("session_manager connectivity is not supported with the \"winrm\" communicator; please use \"ssh\"".into());
        }
        if run.iam_instance_profile.is_none()
            && run.temporary_iam_instance_profile_policy_document.is_none()
        {
            errs.push("no iam_instance_profile defined; session_manager connectivity requires a valid instance profile with AmazonSSMManagedInstanceCore permissions. Alternatively a temporary_iam_instance_profile_policy_document can be used.".into());
        }
    }
    metadata::validate(&run.metadata_options, errs);
    communicator::validate_keypair_name(c, errs);
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
    placement::validate(run.placement.as_ref(), run.tenancy.as_ref(), errs);
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
}

/// An IPv4 or IPv6 CIDR block (`address/bits`).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert!(valid_cidr("0.0.0.0/0"));
        assert!(valid_cidr("1.2.3.4/32"));
        assert!(!valid_cidr("1.2.3.4"));
        assert!(!valid_cidr("1.2.3.4/33"));
    }
}
