//! `temporary_iam_instance_profile_policy_document`: the policy of a temporary instance profile.

use crate::decode::{Decoder, Fields};

/// One statement of the policy (JSON keys `Effect`, `Action`, `Resource`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyStatement {
    /// JSON key `Effect`: `Allow` or `Deny`.
    pub effect: Option<String>,
    /// JSON key `Action`: the IAM actions, e.g. `ssm:*`.
    pub action: Vec<String>,
    /// JSON key `Resource`: the resource ARNs, or `*`.
    pub resource: Vec<String>,
}

/// An IAM policy document (JSON keys `Version`, `Statement`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyDocument {
    /// JSON key `Version`: the policy language version, e.g. `2012-10-17`.
    pub version: Option<String>,
    /// JSON key `Statement`: the policy's statements.
    pub statement: Vec<PolicyStatement>,
}

/// Decodes the body of a policy document.
pub fn policy_document(d: &mut Decoder, f: &mut Fields) -> PolicyDocument {
    PolicyDocument {
        version: d.opt_string(f, "Version"),
        statement: d.objects(f, "Statement", |d, f| PolicyStatement {
            effect: d.opt_string(f, "Effect"),
            action: d.strings(f, "Action"),
            resource: d.strings(f, "Resource"),
        }),
    }
}
