//! EC2 helpers shared by the steps and the resource table: tag merging, filters, block-device
//! mappings, what an image's snapshots are, how far an instance is from the state waited for.

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, InstanceStateName, VolumeType,
};
use bakery_core::poll::Poll;
use bakery_template::BlockDevice;
use std::collections::BTreeMap;

/// Pairs from a map, later entries of `extra` winning.
pub fn merge(base: &BTreeMap<String, String>, extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut m = base.clone();
    for (k, v) in extra {
        m.insert(k.clone(), v.clone());
    }
    m.into_iter().collect()
}

/// EC2 filters from Packer's `filters` map.
pub fn filters(map: &BTreeMap<String, String>) -> Vec<Filter> {
    map.iter()
        .map(|(k, v)| Filter::builder().name(k).values(v).build())
        .collect()
}

/// Snapshot ids in an image's block-device mappings: exactly what deregistering it frees, and nothing else
/// (never "all my snapshots": moto and real accounts hold others).
pub fn image_snapshots(img: &aws_sdk_ec2::types::Image) -> Vec<String> {
    img.block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect()
}

/// SDK block-device mappings from the template's.
pub fn block_devices(devs: &[BlockDevice]) -> Vec<BlockDeviceMapping> {
    devs.iter()
        .map(|d| {
            let mut b = BlockDeviceMapping::builder().set_device_name(d.device_name.clone());
            if d.no_device {
                return b.no_device("").build();
            }
            if let Some(v) = &d.virtual_name {
                return b.virtual_name(v).build();
            }
            let mut e = EbsBlockDevice::builder()
                .delete_on_termination(d.delete_on_termination)
                .set_encrypted(d.encrypted)
                .set_snapshot_id(d.snapshot_id.clone())
                .set_kms_key_id(d.kms_key_id.clone())
                .set_iops(d.iops.map(|v| v as i32))
                .set_throughput(d.throughput.map(|v| v as i32))
                .set_volume_type(d.volume_type.as_deref().map(VolumeType::from));
            if d.volume_size > 0 {
                e = e.volume_size(d.volume_size as i32);
            }
            b = b.ebs(e.build());
            b.build()
        })
        .collect()
}

/// An instance's state against the one waited for: ready in `want`, failed in a state it cannot leave
/// towards `want`, else pending.
pub fn judge_instance(
    inst: aws_sdk_ec2::types::Instance,
    want: InstanceStateName,
) -> Poll<aws_sdk_ec2::types::Instance> {
    let state = inst
        .state()
        .and_then(|s| s.name())
        .cloned()
        .unwrap_or(InstanceStateName::Pending);
    if state == want {
        return Poll::Ready(inst);
    }
    let dead_end = match want {
        InstanceStateName::Running => matches!(
            state,
            InstanceStateName::Terminated
                | InstanceStateName::ShuttingDown
                | InstanceStateName::Stopped
        ),
        InstanceStateName::Stopped => matches!(
            state,
            InstanceStateName::Terminated | InstanceStateName::ShuttingDown
        ),
        _ => false,
    };
    if dead_end {
        // AWS says why an instance died at launch (`Server.InsufficientInstanceCapacity`, a missing KMS
        // key, an EBS limit): the reason is the error, not just the state.
        let reason = inst
            .state_reason()
            .map(|r| match (r.code(), r.message()) {
                (Some(c), Some(m)) if m.contains(c) => m.to_string(),
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (c, m) => c.or(m).unwrap_or_default().to_string(),
            })
            .or_else(|| inst.state_transition_reason().map(str::to_string))
            .filter(|r| !r.is_empty());
        Poll::Failed(match reason {
            Some(r) => format!("{} ({r})", state.as_str()),
            None => state.as_str().to_string(),
        })
    } else {
        Poll::Pending(state.as_str().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{Instance, InstanceState, StateReason};

    fn instance(state: InstanceStateName, reason: Option<(&str, &str)>) -> Instance {
        let mut b = Instance::builder()
            .instance_id("i-1")
            .state(InstanceState::builder().name(state).build());
        if let Some((code, message)) = reason {
            b = b.state_reason(StateReason::builder().code(code).message(message).build());
        }
        b.build()
    }

    /// launch_block_device_mappings and ami_block_device_mappings: `virtual_name` maps an instance-store
    /// volume and `no_device` removes a device, neither with an EBS volume.
    #[test]
    fn instance_store_and_no_device_mappings_carry_no_volume() {
        let cfg = crate::amazon_ebs::state::test_config(
            r#","launch_block_device_mappings":[{"device_name":"/dev/sdb","virtual_name":"ephemeral0"},{"device_name":"/dev/sdc","no_device":true}]"#,
        );
        let m = block_devices(&cfg.launch_block_device_mappings);
        assert_eq!(m[0].virtual_name(), Some("ephemeral0"));
        assert!(m[0].ebs().is_none());
        assert_eq!(m[1].no_device(), Some(""));
        assert!(m[1].ebs().is_none());
    }

    #[test]
    fn an_instance_that_dies_at_launch_says_why() {
        let dead = instance(
            InstanceStateName::Terminated,
            Some((
                "Server.InsufficientInstanceCapacity",
                "Server.InsufficientInstanceCapacity: Insufficient capacity.",
            )),
        );
        match judge_instance(dead, InstanceStateName::Running) {
            Poll::Failed(s) => assert_eq!(
                s,
                "terminated (Server.InsufficientInstanceCapacity: Insufficient capacity.)"
            ),
            _ => panic!("a dead end"),
        }
        let kms = instance(
            InstanceStateName::Terminated,
            Some((
                "Client.InvalidKMSKey.InvalidState",
                "The KMS key is disabled",
            )),
        );
        match judge_instance(kms, InstanceStateName::Running) {
            Poll::Failed(s) => assert_eq!(
                s,
                "terminated (Client.InvalidKMSKey.InvalidState: The KMS key is disabled)"
            ),
            _ => panic!("a dead end"),
        }
        match judge_instance(
            instance(InstanceStateName::Pending, None),
            InstanceStateName::Running,
        ) {
            Poll::Pending(s) => assert_eq!(s, "pending"),
            _ => panic!("pending"),
        }
    }
}
