//! The amazon-ebs builder's options: every option the Packer amazon plugin accepts, decoded weakly
//! with Packer's defaults, and its `Prepare` checks. One file per concern; each option's doc comment,
//! field, decoding and checks sit together in its file:
//!
//! - [`access`]: credentials, region, endpoint, retries, polling;
//! - [`ami`]: the image made (name, tags, encryption, sharing, region copies);
//! - [`run`]: the builder instance (source AMI, type, network, spot, user data, `ssh_interface`),
//!   with its blocks in [`filters`], [`iam`], [`metadata`] and [`placement`];
//! - [`communicator`]: SSH (and WinRM) connection options;
//! - [`block_devices`]: `ami_block_device_mappings` and `launch_block_device_mappings`;
//! - [`fast_launch`]: Windows fast launch;
//! - [`renamed`]: old keys `packer fix` rewrites;
//! - this file: the few top-level options of amazon-ebs itself, and the order of decoding and checks.

pub mod access;
pub mod ami;
pub mod block_devices;
pub mod communicator;
pub mod fast_launch;
pub mod filters;
pub mod iam;
pub mod metadata;
pub mod placement;
pub mod renamed;
pub mod run;
pub mod support;

pub use access::{AccessConfig, AssumeRoleConfig, AwsPolling, VaultAwsEngine};
pub use ami::{AmiConfig, DeregistrationProtection, ImdsSupport};
pub use block_devices::BlockDevice;
pub use communicator::{Communicator, CommunicatorConfig, KeyPairType};
pub use fast_launch::{FastLaunchConfig, FastLaunchTemplate};
pub use filters::{AmiFilter, NameValueFilter, SubnetFilter};
pub use iam::{PolicyDocument, PolicyStatement};
pub use metadata::{HttpTokens, MetadataOptions, Toggle};
pub use placement::{LicenseSpecification, Placement};
pub use renamed::RENAMED;
pub use run::{
    CapacityReservationPreference, RunConfig, ShutdownBehavior, SpotAllocationStrategy,
    SshInterface,
};

use super::common::{late_map, merge_key_values};
use crate::decode::{Decoder, Fields};
use crate::funcs::FuncContext;
use crate::json::Pos;
use crate::late::LateMap;
use std::sync::Arc;

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

/// Every amazon-ebs option, grouped by concern; the groups' options all sit at the builder's top level.
#[derive(Debug, Clone, PartialEq)]
pub struct AmazonEbsConfig {
    /// Top-level options: credentials, region, endpoint, retries and polling (see `access.rs`).
    pub access: AccessConfig,
    /// Top-level options: the AMI made (see `ami.rs`).
    pub ami: AmiConfig,
    /// Top-level options: the builder instance (see `run.rs`).
    pub run: RunConfig,
    /// Top-level options: the connection to the instance (see `communicator.rs`).
    pub comm: CommunicatorConfig,
    /// Do not create the AMI: the build provisions the instance, then cleans up without an image
    /// (test runs).
    pub skip_create_ami: bool,
    /// Do not copy `run_tags` onto the AMI and its snapshots. Ignored with a warning: bakery never
    /// copies them (the AMI gets `tags`).
    pub skip_ami_run_tags: bool,
    /// Block devices of the AMI (volumes added to, or changed in, the image's mapping).
    pub ami_block_device_mappings: Vec<BlockDevice>,
    /// Block devices of the builder instance (also in the AMI, as they were at image time).
    pub launch_block_device_mappings: Vec<BlockDevice>,
    /// Tags of the builder instance's volumes; `run_volume_tag` blocks (`name`, `value`) are merged in.
    /// Rendered late, at the launch step.
    pub run_volume_tags: LateMap,
    /// Leave the source AMI's instance-store (ephemeral) devices out of the mappings. Refused
    /// (support.rs).
    pub no_ephemeral: bool,
    /// Windows fast launch of the AMI (see `fast_launch.rs`). Refused: bakery builds no Windows AMIs.
    pub fast_launch: Option<FastLaunchConfig>,
}

/// Decodes a rendered amazon-ebs configuration (late fields still raw). The order of the keys taken
/// is the order of the diagnostics.
pub fn decode(d: &mut Decoder, f: &mut Fields, cx: &Arc<FuncContext>) -> AmazonEbsConfig {
    // Renamed keys first, so the new key wins when both are given.
    let mut renamed = renamed::decode(d, f);
    let access = access::decode(d, f);
    let ami = ami::decode(d, f, cx, access.region.as_deref(), renamed.ena_support);
    let run = run::decode(d, f, cx, &mut renamed);
    let comm = communicator::decode(d, f, &mut renamed);
    let mut run_volume_tags = late_map(d, f, "run_volume_tags", cx);
    merge_key_values(d, f, "run_volume_tag", "name", &mut run_volume_tags, cx);
    AmazonEbsConfig {
        access,
        ami,
        run,
        comm,
        skip_create_ami: d.bool(f, "skip_create_ami"),
        skip_ami_run_tags: d.bool(f, "skip_ami_run_tags"),
        ami_block_device_mappings: block_devices::decode(d, f, "ami_block_device_mappings"),
        launch_block_device_mappings: block_devices::decode(d, f, "launch_block_device_mappings"),
        run_volume_tags,
        no_ephemeral: d.bool(f, "no_ephemeral"),
        fast_launch: d.object(f, "fast_launch", fast_launch::decode),
    }
}

/// Packer's `Prepare` checks for amazon-ebs (access, AMI, block devices, run, communicator, in that
/// order), every error reported. `pos` locates the builder.
pub fn validate(cfg: &AmazonEbsConfig, d: &mut Decoder, pos: Pos) {
    let mut errs: Vec<String> = Vec::new();
    let mut warns: Vec<String> = Vec::new();
    access::validate(&cfg.access, &mut errs);
    ami::validate(&cfg.ami, cfg.access.region.as_deref(), &mut errs);
    for b in cfg
        .ami_block_device_mappings
        .iter()
        .chain(&cfg.launch_block_device_mappings)
    {
        if let Some(e) = block_devices::validate(b) {
            errs.push(e);
        }
    }
    run::validate(&cfg.run, &cfg.ami, &cfg.comm, &mut errs, &mut warns);
    communicator::validate(&cfg.comm, &mut errs);
    for e in errs {
        d.err(pos, e);
    }
    for w in warns {
        d.warn(pos, w);
    }
}
