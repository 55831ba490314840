//! `metadata_options`: the builder instance's metadata service (IMDS) settings.

use super::super::choice::{self, Choice, spelled};
use crate::decode::{Decoder, Fields};

/// The `metadata_options` block.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataOptions {
    /// `enabled` (default) or `disabled`: whether the instance metadata service answers.
    pub http_endpoint: Toggle,
    /// `optional` or `required`: `required` allows only IMDSv2 (session tokens). Unset, the request leaves
    /// it out, so the AMI's and the account's IMDS defaults apply (an account that enforces IMDSv2 refuses
    /// `optional`); Packer 1.9.5 sent `optional`.
    pub http_tokens: Option<HttpTokens>,
    /// Hop limit of metadata responses, 1 (default, also when 0) to 64.
    pub http_put_response_hop_limit: i64,
    /// `disabled` (default) or `enabled`: whether instance tags are readable through the metadata service.
    pub instance_metadata_tags: Toggle,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        MetadataOptions {
            http_endpoint: Toggle::Enabled,
            http_tokens: None,
            http_put_response_hop_limit: 1,
            instance_metadata_tags: Toggle::Disabled,
        }
    }
}

/// `http_endpoint` and `instance_metadata_tags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggle {
    /// `enabled`.
    Enabled,
    /// `disabled`.
    Disabled,
}

impl Choice for Toggle {
    const VALUES: &'static [(&'static str, Self)] =
        &[("enabled", Toggle::Enabled), ("disabled", Toggle::Disabled)];

    fn invalid(key: &str, _value: &str) -> String {
        format!("{key} requires either disabled or enabled as its value")
    }
}

/// `http_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpTokens {
    /// `optional`: IMDSv1 and IMDSv2 both answer.
    Optional,
    /// `required`: only IMDSv2 (session tokens) answers.
    Required,
}

impl Choice for HttpTokens {
    const VALUES: &'static [(&'static str, Self)] = &[
        ("optional", HttpTokens::Optional),
        ("required", HttpTokens::Required),
    ];

    fn invalid(_key: &str, _value: &str) -> String {
        "http_tokens requires either optional or required as its value".into()
    }
}

spelled!(Toggle, HttpTokens);

/// Decodes the body of `metadata_options`, with the defaults for what is missing.
pub fn decode(d: &mut Decoder, f: &mut Fields) -> MetadataOptions {
    let def = MetadataOptions::default();
    MetadataOptions {
        http_endpoint: choice::decode(d, f, "http_endpoint", def.http_endpoint)
            .unwrap_or(def.http_endpoint),
        http_tokens: choice::decode(d, f, "http_tokens", HttpTokens::Optional),
        http_put_response_hop_limit: d
            .int(f, "http_put_response_hop_limit")
            .filter(|n| *n != 0)
            .unwrap_or(def.http_put_response_hop_limit),
        instance_metadata_tags: choice::decode(
            d,
            f,
            "instance_metadata_tags",
            def.instance_metadata_tags,
        )
        .unwrap_or(def.instance_metadata_tags),
    }
}

/// Packer's check of `metadata_options` beyond its fixed-set values (checked when decoded).
pub fn validate(m: &MetadataOptions, errs: &mut Vec<String>) {
    if !(1..=64).contains(&m.http_put_response_hop_limit) {
        errs.push("http_put_response_hop_limit requires a number between 1 and 64".into());
    }
}
