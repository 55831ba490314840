//! Where the builder instance runs: `placement` (tenancy, dedicated host) and `license_specifications`.

use crate::decode::{Decoder, Fields};

/// One entry of `license_specifications` (its `license_configuration_request` block).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LicenseSpecification {
    /// `license_configuration_request.license_configuration_arn`: the License Manager configuration.
    pub license_configuration_arn: Option<String>,
}

/// The `placement` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Placement {
    /// Host resource group to launch into; needs tenancy `host`.
    pub host_resource_group_arn: Option<String>,
    /// Dedicated host to launch on; needs tenancy `host`.
    pub host_id: Option<String>,
    /// `default`, `dedicated` or `host`. Replaces the top-level `tenancy`.
    pub tenancy: Option<String>,
}

/// Decodes the body of `placement`.
pub fn placement(d: &mut Decoder, f: &mut Fields) -> Placement {
    Placement {
        host_resource_group_arn: d.opt_string(f, "host_resource_group_arn"),
        host_id: d.opt_string(f, "host_id"),
        tenancy: d.opt_string(f, "tenancy"),
    }
}

/// Decodes one entry of `license_specifications`.
pub fn license_specification(d: &mut Decoder, f: &mut Fields) -> LicenseSpecification {
    LicenseSpecification {
        license_configuration_arn: d
            .object(f, "license_configuration_request", |d, f| {
                d.opt_string(f, "license_configuration_arn")
            })
            .flatten(),
    }
}

/// Packer's checks of the tenancy (`placement.tenancy` or the deprecated top-level `tenancy`) and host.
pub fn validate(placement: Option<&Placement>, tenancy: Option<&String>, errs: &mut Vec<String>) {
    let placement_tenancy = placement.and_then(|p| p.tenancy.as_ref());
    if placement_tenancy.is_some() && tenancy.is_some() {
        errs.push(
            "Error: Please set only one of placement.tenancy and tenancy (deprecated)".into(),
        );
    }
    if let Some(t) = placement_tenancy.or(tenancy)
        && !["default", "dedicated", "host"].contains(&t.as_str())
    {
        errs.push(format!("Error: Unknown tenancy type {t}"));
    }
    if let Some(p) = placement {
        if p.host_id.is_some() && p.host_resource_group_arn.is_some() {
            errs.push("The `host_id` and `host_resource_group_arn` settings cannot be specified at the same time.".into());
        }
        if (p.host_id.is_some() || p.host_resource_group_arn.is_some())
            && !matches!(p.tenancy.as_deref(), None | Some("host"))
        {
            errs.push("The tenancy should be `host` if either the `host_id` or `host_resource_group_arn` attributes are specified.".into());
        }
    }
}
