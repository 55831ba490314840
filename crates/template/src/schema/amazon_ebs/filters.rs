//! Lookup filters: `source_ami_filter`, `vpc_filter`, `subnet_filter` and `security_group_filter`.

use crate::decode::{Decoder, Fields};
use std::collections::BTreeMap;

/// `vpc_filter` and `security_group_filter`: EC2 Describe filters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NameValueFilter {
    /// EC2 filter name to value (e.g. `"tag:Name": "build"`); `filter` blocks (`name`, `value`) are
    /// merged in.
    pub filters: BTreeMap<String, String>,
}

/// `subnet_filter`: picks the subnet when `subnet_id` is unset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubnetFilter {
    /// EC2 filter name to value; `filter` blocks (`name`, `value`) are merged in.
    pub filters: BTreeMap<String, String>,
    /// Among the matches, take the subnet with the most free addresses.
    pub most_free: bool,
    /// Among the matches, take one at random.
    pub random: bool,
}

/// `source_ami_filter`: finds the source AMI when `source_ami` is unset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AmiFilter {
    /// EC2 `DescribeImages` filter name to value (e.g. `"name": "debian-12-amd64-*"`).
    pub filters: BTreeMap<String, String>,
    /// Owners (account ids, `self`, `amazon`...); at least one is required, for security.
    pub owners: Vec<String>,
    /// With several matches, take the newest (else several matches are an error).
    pub most_recent: bool,
    /// Also match deprecated AMIs.
    pub include_deprecated: bool,
}

impl AmiFilter {
    /// Neither owners nor filters: the filter selects nothing.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty() && self.filters.is_empty()
    }
}

/// Decodes a `filters` map with its `filter` blocks merged in.
pub fn name_value_filter(d: &mut Decoder, f: &mut Fields) -> NameValueFilter {
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

/// Decodes the body of `subnet_filter`.
pub fn subnet_filter(d: &mut Decoder, f: &mut Fields) -> SubnetFilter {
    let nvf = name_value_filter(d, f);
    SubnetFilter {
        filters: nvf.filters,
        most_free: d.bool(f, "most_free"),
        random: d.bool(f, "random"),
    }
}

/// Decodes the body of `source_ami_filter`.
pub fn ami_filter(d: &mut Decoder, f: &mut Fields) -> AmiFilter {
    AmiFilter {
        filters: d.string_map(f, "filters"),
        owners: d.strings(f, "owners"),
        most_recent: d.bool(f, "most_recent"),
        include_deprecated: d.bool(f, "include_deprecated"),
    }
}
