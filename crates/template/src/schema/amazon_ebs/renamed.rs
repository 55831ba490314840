//! Old option names that `packer fix` rewrites: bakery accepts them with a warning naming the new
//! key, and the new key wins when both are given.

use crate::decode::{Decoder, Fields};
use crate::json::Pos;
use std::time::Duration;

/// Old key, and what it is accepted as.
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

/// The values given under old keys; each is taken by the decoder of the option it stands for.
#[derive(Debug, Default)]
pub(super) struct Renamed {
    /// `ssh_wait_timeout`, for `ssh_timeout`.
    pub ssh_timeout: Option<Duration>,
    /// `ssh_private_ip: true`, for `ssh_interface: private_ip`.
    pub ssh_private_ip: bool,
    /// `shutdown_behaviour`, for `shutdown_behavior`, with where it is written.
    pub shutdown_behavior: Option<(String, Pos)>,
    /// `enhanced_networking`, for `ena_support`.
    pub ena_support: Option<bool>,
    /// `temporary_security_group_source_cidr`, for `temporary_security_group_source_cidrs`.
    pub source_cidrs: Option<Vec<String>>,
}

/// Takes the old keys, warning about each one given.
pub(super) fn decode(d: &mut Decoder, f: &mut Fields) -> Renamed {
    let mut out = Renamed::default();
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
                "ssh_wait_timeout" => out.ssh_timeout = d.to_duration(v, &name),
                "ssh_private_ip" => out.ssh_private_ip = d.to_bool(v, &name) == Some(true),
                "shutdown_behaviour" => {
                    out.shutdown_behavior = d.to_string(v, &name).map(|s| (s, v.pos))
                }
                "enhanced_networking" => out.ena_support = d.to_bool(v, &name),
                _ => out.source_cidrs = d.to_strings(v, &name),
            }
        }
    }
    out
}
