//! Block device mappings: the volumes of the builder instance (`launch_block_device_mappings`) and of
//! the AMI (`ami_block_device_mappings`), one entry each.

use crate::decode::{Decoder, Fields};

/// One entry of `ami_block_device_mappings` or `launch_block_device_mappings`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BlockDevice {
    /// Delete the volume when the instance terminates. Default: false.
    pub delete_on_termination: bool,
    /// Device name, e.g. `/dev/sda1`; required.
    pub device_name: Option<String>,
    /// Encrypt the volume (unset: as the snapshot or the account default). Must be true with `kms_key_id`.
    pub encrypted: Option<bool>,
    /// Provisioned IOPS: io1 up to 50 per GiB, io2 up to 500 per GiB (100 to 64000); gp3 3000 to 16000.
    pub iops: Option<i64>,
    /// Suppress this device of the source AMI's mapping.
    pub no_device: bool,
    /// Snapshot the volume is created from.
    pub snapshot_id: Option<String>,
    /// Throughput in MiB/s, gp3 only (125 to 1000). Unset on gp3 is valid (AWS's default).
    pub throughput: Option<i64>,
    /// Instance store name (`ephemeral0`...) for an instance-store device.
    pub virtual_name: Option<String>,
    /// EBS volume type (`gp2`, `gp3`, `io1`, `io2`, `st1`, `sc1`, `standard`); unset: AWS's default.
    pub volume_type: Option<String>,
    /// Size in GiB; 0 (the default): the snapshot's size.
    pub volume_size: i64,
    /// KMS key for an encrypted volume; needs `encrypted: true`.
    pub kms_key_id: Option<String>,
}

/// Decodes the list under `key` (a single object is accepted, weakly).
pub fn decode(d: &mut Decoder, f: &mut Fields, key: &'static str) -> Vec<BlockDevice> {
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

/// Packer's check of one mapping: the first problem found, if any.
pub fn validate(b: &BlockDevice) -> Option<String> {
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
