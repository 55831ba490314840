//! What gc cannot see by scanning its own region: other accounts an AMI is shared with (launch
//! permissions: their launches are invisible from here) and EC2's own list of the resources that
//! reference an AMI (`DescribeImageReferences`, where the service offers it). Both are asked only about
//! the AMIs that would otherwise go.

use crate::context::Ctx;
use crate::error::AwsResultExt;
use aws_sdk_ec2::types::{
    ImageAttributeName, ImageReferenceResourceType, LaunchPermission, PermissionGroup,
    ResourceTypeRequest,
};
use bakery_core::aws_err::AwsError;

/// Who besides this account may launch `image`: `account 111122223333`, `everyone (public)`,
/// `organization arn:…`, `organizational unit arn:…` (DescribeImageAttribute launchPermission). An AMI
/// just made may not be visible to this call yet: "not found" is asked again for a few seconds.
pub(super) async fn launch_permissions(cx: &Ctx, image: &str) -> Result<Vec<String>, AwsError> {
    let ec2 = &cx.clients.ec2;
    let out = bakery_core::propagation::retry_propagation(
        bakery_core::propagation::NOT_FOUND_CONFIRMATION,
        &cx.cancel,
        || async {
            ec2.describe_image_attribute()
                .image_id(image)
                .attribute(ImageAttributeName::LaunchPermission)
                .send()
                .await
                .aws("DescribeImageAttribute")
        },
    )
    .await?;
    Ok(out
        .launch_permissions()
        .iter()
        .filter_map(grantee)
        .collect())
}

/// Whom one launch permission names.
fn grantee(p: &LaunchPermission) -> Option<String> {
    if let Some(u) = p.user_id() {
        Some(format!("account {u}"))
    } else if p.group() == Some(&PermissionGroup::All) {
        Some("everyone (public)".to_string())
    } else if let Some(o) = p.organization_arn() {
        Some(format!("organization {o}"))
    } else {
        p.organizational_unit_arn()
            .map(|o| format!("organizational unit {o}"))
    }
}

/// The reason a shared AMI stays.
pub(super) fn shared_reason(grantees: &[String]) -> String {
    format!(
        "shared with {} (launch permission: launches there are invisible from here); --include-shared to remove it",
        grantees.join(", ")
    )
}

/// What EC2 said about the references to some AMIs.
#[derive(Debug)]
pub(super) enum References {
    /// (AMI, the reason it stays) for each reference EC2 listed.
    Listed(Vec<(String, String)>),
    /// The service does not offer the call here (or may not be asked): gc's own scan decides alone.
    Unavailable(String),
    /// The call failed otherwise: gc cannot tell what it would have listed.
    Failed(AwsError),
}

/// The resource types asked about. Not `ec2:LaunchTemplate`: gc reads every version of every template
/// itself (EC2 checks the newest 20 by default), and a version this gc deletes would still be listed in
/// a dry run. Instances are asked about too: EC2's list may know one that gc's scan could not see yet.
const RESOURCE_TYPES: [ImageReferenceResourceType; 4] = [
    ImageReferenceResourceType::Ec2Instance,
    ImageReferenceResourceType::SsmParameter,
    ImageReferenceResourceType::ImageBuilderImageRecipe,
    ImageReferenceResourceType::ImageBuilderContainerRecipe,
];

/// True when an error means "this call is not offered or not allowed here", not "it failed".
pub(super) fn unavailable(e: &AwsError) -> bool {
    matches!(
        e.code.as_deref(),
        Some(
            "InvalidAction"
                | "UnsupportedOperation"
                | "UnknownOperationException"
                | "NotImplemented"
                | "OptInRequired"
                | "UnauthorizedOperation"
                | "AccessDenied"
                | "AccessDeniedException"
        )
    )
}

/// EC2's own list of what references `images` (DescribeImageReferences, 100 AMIs a call, paginated).
pub(super) async fn image_references(cx: &Ctx, images: &[String]) -> References {
    let mut found = Vec::new();
    for chunk in images.chunks(100) {
        let mut pages = cx
            .clients
            .ec2
            .describe_image_references()
            .set_image_ids(Some(chunk.to_vec()))
            .set_resource_types(Some(
                RESOURCE_TYPES
                    .iter()
                    .map(|t| {
                        ResourceTypeRequest::builder()
                            .resource_type(t.clone())
                            .build()
                    })
                    .collect(),
            ))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page.aws("DescribeImageReferences") {
                Ok(p) => {
                    for r in p.image_references() {
                        let Some(ami) = r.image_id() else {
                            continue;
                        };
                        found.push((
                            ami.to_string(),
                            format!(
                                "referenced by {} {} (EC2 image references)",
                                r.resource_type().map(|t| t.as_str()).unwrap_or("resource"),
                                r.arn().unwrap_or("(no ARN)")
                            ),
                        ));
                    }
                }
                Err(e) if unavailable(&e) => return References::Unavailable(e.to_string()),
                Err(e) => return References::Failed(e),
            }
        }
    }
    References::Listed(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_launch_permission_is_named() {
        let p = |b: aws_sdk_ec2::types::builders::LaunchPermissionBuilder| grantee(&b.build());
        assert_eq!(
            p(LaunchPermission::builder().user_id("111122223333")).as_deref(),
            Some("account 111122223333")
        );
        assert_eq!(
            p(LaunchPermission::builder().group(PermissionGroup::All)).as_deref(),
            Some("everyone (public)")
        );
        assert_eq!(
            p(LaunchPermission::builder()
                .organization_arn("arn:aws:organizations::1:organization/o-1"))
            .as_deref(),
            Some("organization arn:aws:organizations::1:organization/o-1")
        );
        assert!(
            p(LaunchPermission::builder().organizational_unit_arn("arn:ou"))
                .unwrap()
                .starts_with("organizational unit ")
        );
        assert_eq!(p(LaunchPermission::builder()), None);
        assert!(
            shared_reason(&["account 111122223333".into()])
                .starts_with("shared with account 111122223333 (launch permission")
        );
    }

    #[test]
    fn an_action_the_service_lacks_is_unavailable_and_anything_else_a_failure() {
        let e = |code: &str| AwsError {
            op: "DescribeImageReferences",
            code: Some(code.to_string()),
            detail: code.to_string(),
        };
        for code in [
            "InvalidAction",
            "UnsupportedOperation",
            "UnauthorizedOperation",
        ] {
            assert!(unavailable(&e(code)), "{code}");
        }
        for code in [
            "InternalError",
            "RequestLimitExceeded",
            "InvalidAMIID.NotFound",
        ] {
            assert!(!unavailable(&e(code)), "{code}");
        }
    }
}
