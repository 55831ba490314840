//! `metadata_options`: the builder instance's metadata service (IMDS) settings.

use crate::decode::{Decoder, Fields};

/// The `metadata_options` block.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataOptions {
    /// `enabled` (default) or `disabled`: whether the instance metadata service answers.
    pub http_endpoint: String,
    /// `optional` (default) or `required`: `required` allows only IMDSv2 (session tokens).
    pub http_tokens: String,
    /// Hop limit of metadata responses, 1 (default, also when 0) to 64.
    pub http_put_response_hop_limit: i64,
    /// `disabled` (default) or `enabled`: whether instance tags are readable through the metadata service.
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

/// Decodes the body of `metadata_options`, with the defaults for what is missing.
pub fn decode(d: &mut Decoder, f: &mut Fields) -> MetadataOptions {
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
}

/// Packer's checks of `metadata_options`.
pub fn validate(m: &MetadataOptions, errs: &mut Vec<String>) {
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
}
