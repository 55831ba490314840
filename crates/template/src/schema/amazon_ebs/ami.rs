//! The image bakery creates: its name, description, tags, encryption, sharing, copies and attributes.

use super::super::choice::{self, Choice, spelled};
use super::super::common::{late_map, late_string, merge_key_values};
use crate::decode::{Decoder, Fields};
use crate::funcs::{FuncContext, clean_resource_name};
use crate::late::{LateMap, LateTemplate};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The AMI's options. They sit at the top level of the builder.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AmiConfig {
    /// Name of the AMI; required, 3 to 128 characters of `[A-Za-z0-9()[] ./-'@_]` (use the
    /// `clean_resource_name` function). Must be free in the region unless `force_deregister` or `-force`.
    pub ami_name: String,
    /// Description of the AMI. Rendered late, at the create-AMI step, with `.BuildRegion`, `.SourceAMI`,
    /// `.SourceAMIName`, ... available.
    pub ami_description: Option<LateTemplate>,
    /// Virtualization type (`hvm` or `paravirtual`). Ignored with a warning: the image keeps the
    /// instance's (support.rs).
    pub ami_virtualization_type: Option<String>,
    /// Account ids the AMI is shared with (launch permission), in every region it exists in.
    pub ami_users: Vec<String>,
    /// Groups the AMI is shared with (`all` makes it public).
    pub ami_groups: Vec<String>,
    /// Organization ARNs the AMI is shared with (launch permission), in every region it exists in.
    pub ami_org_arns: Vec<String>,
    /// Organizational unit ARNs the AMI is shared with (launch permission), in every region it exists in.
    pub ami_ou_arns: Vec<String>,
    /// Product codes attached to the AMI (ModifyImageAttribute), in every region it exists in.
    pub ami_product_codes: Vec<String>,
    /// Regions the AMI is copied to (all at once) after it is created. Duplicates and the build region
    /// are dropped, as Packer does.
    pub ami_regions: Vec<String>,
    /// Ignored with a warning: bakery does not check region names against a region list.
    pub skip_region_validation: bool,
    /// Minutes a region copy may take (CopyImage's time-based copy: AWS completes the snapshots' copy
    /// within them, at a charge).
    pub snapshot_copy_duration_minutes: Option<i64>,
    /// Tags of the AMI (and of its copies); `tag` blocks (`key`, `value`) are merged in. Rendered late,
    /// like `ami_description`.
    pub tags: LateMap,
    /// `true`: turn on ENA on the instance before the image is made (unset or false: as the source;
    /// `enhanced_networking` is the old name). Not allowed with a spot instance.
    pub ena_support: Option<bool>,
    /// Turn on SR-IOV networking on the instance before the image is made. Not allowed with a spot
    /// instance.
    pub sriov_support: bool,
    /// Deregister an existing AMI of the same name first (as `-force` does).
    pub force_deregister: bool,
    /// With `force_deregister`: also delete the snapshots of the deregistered AMI.
    pub force_delete_snapshot: bool,
    /// Encrypt the AMI's boot volume (unset: as the source). Required with `kms_key_id` or
    /// `region_kms_key_ids`.
    pub encrypt_boot: Option<bool>,
    /// KMS key (id, alias or ARN) for `encrypt_boot`. Default: the account's EBS default key.
    pub kms_key_id: Option<String>,
    /// Per copy region: the KMS key for that region's copy. When set, every `ami_regions` entry needs one.
    pub region_kms_key_ids: BTreeMap<String, String>,
    /// Do not keep the AMI in the build region (only its copies). Refused (support.rs).
    pub skip_save_build_region: bool,
    /// `v2.0` makes instances of the AMI require IMDSv2 (ModifyImageAttribute `ImdsSupport`, in every
    /// region).
    pub imds_support: Option<ImdsSupport>,
    /// RFC 3339 time at which the AMI is deprecated (EnableImageDeprecation, in every region).
    pub deprecate_at: Option<String>,
    /// Tags of the AMI's snapshots, on top of `tags` (which they get too); `snapshot_tag` blocks (`key`,
    /// `value`) are merged in. Rendered late, like `ami_description`.
    pub snapshot_tags: LateMap,
    /// Account ids the AMI's snapshots are shared with (create-volume permission).
    pub snapshot_users: Vec<String>,
    /// Groups the AMI's snapshots are shared with (`all` makes them public).
    pub snapshot_groups: Vec<String>,
    /// Deregistration protection of the AMI (EnableImageDeregistrationProtection, in every region, as
    /// the build's last call).
    pub deregistration_protection: DeregistrationProtection,
}

/// The `imds_support` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImdsSupport {
    /// `v2.0`: instances launched from the AMI require IMDSv2.
    V2,
}

impl Choice for ImdsSupport {
    const VALUES: &'static [(&'static str, Self)] = &[("v2.0", ImdsSupport::V2)];

    fn invalid(_key: &str, _value: &str) -> String {
        "The only valid imds_support values are \"v2.0\" or the empty string".into()
    }
}

spelled!(ImdsSupport);

/// The `deregistration_protection` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeregistrationProtection {
    /// Protect the AMI against deregistration. Implied by `with_cooldown`.
    pub enabled: bool,
    /// Keep the protection for 24 hours after it is turned off.
    pub with_cooldown: bool,
}

/// Decodes the AMI options; `region` is the build region (dropped from `ami_regions`) and
/// `renamed_ena` the value of the old key `enhanced_networking`.
pub fn decode(
    d: &mut Decoder,
    f: &mut Fields,
    cx: &Arc<FuncContext>,
    region: Option<&str>,
    renamed_ena: Option<bool>,
) -> AmiConfig {
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
        imds_support: choice::decode(d, f, "imds_support", ImdsSupport::V2),
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
    // Packer drops duplicates and the build region from ami_regions.
    let mut seen = Vec::new();
    ami.ami_regions.retain(|r| {
        if seen.contains(r) {
            return false;
        }
        seen.push(r.clone());
        region != Some(r.as_str())
    });
    ami
}

/// Packer's AMI checks; `region` is the build region.
pub fn validate(ami: &AmiConfig, region: Option<&str>, errs: &mut Vec<String>) {
    if ami.ami_name.is_empty() {
        errs.push("ami_name must be specified".into());
    }
    for r in ami.region_kms_key_ids.keys() {
        if !ami.ami_regions.contains(r) && region != Some(r.as_str()) {
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
    if let Some(k) = ami.kms_key_id.as_deref() {
        errs.extend(kms_key_region_error("kms_key_id", k, region));
    }
    for (r, k) in &ami.region_kms_key_ids {
        errs.extend(kms_key_region_error(
            &format!("region_kms_key_ids[{r}]"),
            k,
            Some(r),
        ));
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
    if let Some(t) = &ami.deprecate_at
        && chrono::DateTime::parse_from_rfc3339(t).is_err()
    {
        errs.push(format!(
            "deprecate_at is not a valid time: \"{t}\". Expect time format: YYYY-MM-DDTHH:MM:SSZ"
        ));
    }
}

/// A KMS key id, alias, multi-region key id or key/alias ARN, as Packer's `ValidateKmsKey` accepts them:
/// `arn:<partition>:kms:[<region>]:<12 digits>:key/<id>` or `...:alias/<name>`.
fn valid_kms_key(k: &str) -> bool {
    fn key_id(s: &str) -> bool {
        // Hex digits and dashes; multi-region keys start with `mrk-`.
        let s = s.strip_prefix("mrk-").unwrap_or(s);
        !s.is_empty()
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
    let Some(arn) = kms_arn(k) else {
        return false;
    };
    let region_ok = arn.region.is_empty() || region_name(arn.region);
    let account_ok = arn.account.len() == 12 && arn.account.chars().all(|c| c.is_ascii_digit());
    let resource_ok = arn.resource.strip_prefix("key/").is_some_and(key_id) || alias(arn.resource);
    region_ok
        && account_ok
        && resource_ok
        && partition_of(arn.region).is_none_or(|p| p == arn.partition)
        && matches!(arn.partition, "aws" | "aws-cn" | "aws-us-gov")
}

/// The parts of a KMS ARN.
struct KmsArn<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

fn kms_arn(k: &str) -> Option<KmsArn<'_>> {
    let parts: Vec<&str> = k.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn" && parts[2] == "kms").then(|| KmsArn {
        partition: parts[1],
        region: parts[3],
        account: parts[4],
        resource: parts[5],
    })
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`: two letters, words, a digit.
fn region_name(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
}

/// The partition a region is in (None for no region).
fn partition_of(region: &str) -> Option<&'static str> {
    if region.is_empty() {
        None
    } else if region.starts_with("cn-") {
        Some("aws-cn")
    } else if region.starts_with("us-gov-") {
        Some("aws-us-gov")
    } else {
        Some("aws")
    }
}

/// A key given as an ARN must be in the region it encrypts in (KMS keys are regional) and in that
/// region's partition; an id or alias is looked up in that region by AWS.
fn kms_key_region_error(option: &str, key: &str, region: Option<&str>) -> Option<String> {
    let arn = kms_arn(key)?;
    let region = region.filter(|r| !r.is_empty())?;
    if !arn.region.is_empty() && arn.region != region {
        return Some(format!(
            "{option}: the key {key} is in {}, but it encrypts in {region} (a KMS key works only in its own region)",
            arn.region
        ));
    }
    let partition = partition_of(region)?;
    (arn.partition != partition).then(|| {
        format!(
            "{option}: the key {key} is in partition {}, but {region} is in {partition}",
            arn.partition
        )
    })
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
        assert!(valid_kms_key(
            "arn:aws-cn:kms:cn-north-1:123456789012:alias/k"
        ));
        assert!(!valid_kms_key(
            "arn:awsx:kms:us-east-1:123456789012:key/1a2b"
        ));
        assert!(!valid_kms_key("arn:aws:kms:us-east:123456789012:key/1a2b"));
        assert!(!valid_kms_key(
            "arn:aws:kms:cn-north-1:123456789012:key/1a2b"
        ));
    }

    #[test]
    fn kms_keys_are_checked_against_their_regions_and_partition() {
        let key = "arn:aws:kms:eu-west-1:123456789012:key/1a2b";
        assert!(kms_key_region_error("kms_key_id", key, Some("eu-west-1")).is_none());
        let e =
            kms_key_region_error("region_kms_key_ids[us-west-2]", key, Some("us-west-2")).unwrap();
        assert!(
            e.contains("is in eu-west-1, but it encrypts in us-west-2"),
            "{e}"
        );
        let e = kms_key_region_error(
            "kms_key_id",
            "arn:aws:kms::123456789012:alias/x",
            Some("us-gov-west-1"),
        )
        .unwrap();
        assert!(
            e.contains("partition aws, but us-gov-west-1 is in aws-us-gov"),
            "{e}"
        );
        assert!(kms_key_region_error("kms_key_id", "alias/x", Some("us-west-2")).is_none());
    }
}
