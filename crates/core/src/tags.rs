//! Tag conventions: every AWS resource bakery creates carries these, so that `bake cleanup` and reapers can
//! find what a killed run left behind, and so that nothing bakery did not create is ever deleted by it.

/// `true` on every resource bakery creates.
pub const MANAGED: &str = "bakery:managed";
/// The id of the run that created the resource (a UUID, also in the local run journal).
pub const RUN_ID: &str = "bakery:run-id";
/// The build (builder name) that created the resource.
pub const BUILD: &str = "bakery:build";
/// What the resource is for in bakery's terms (`builder-instance`, `temporary-key-pair`, ...).
pub const ROLE: &str = "bakery:role";

/// The tags every resource of one run carries, as (key, value) pairs.
pub fn ownership(run_id: &str, build: &str, role: &str) -> Vec<(String, String)> {
    vec![
        (MANAGED.to_string(), "true".to_string()),
        (RUN_ID.to_string(), run_id.to_string()),
        (BUILD.to_string(), build.to_string()),
        (ROLE.to_string(), role.to_string()),
    ]
}

/// EC2's form of tag pairs (`CreateTags`, tag specifications).
pub fn ec2_tags(tags: &[(String, String)]) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags a resource of type `resource` at creation: the tag specification EC2's `Create*`/`Run*`/`Import*`
/// requests take.
pub fn ec2_tag_spec(
    resource: aws_sdk_ec2::types::ResourceType,
    tags: &[(String, String)],
) -> aws_sdk_ec2::types::TagSpecification {
    aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_names_run_build_and_role() {
        let t = ownership("r-1", "amazon-ebs", "builder-instance");
        assert!(t.contains(&(MANAGED.into(), "true".into())));
        assert!(t.contains(&(RUN_ID.into(), "r-1".into())));
        assert!(t.contains(&(BUILD.into(), "amazon-ebs".into())));
        assert!(t.contains(&(ROLE.into(), "builder-instance".into())));
    }

    #[test]
    fn ec2_tags_keep_pairs_and_order() {
        let spec = ec2_tag_spec(
            aws_sdk_ec2::types::ResourceType::KeyPair,
            &ownership("r-1", "rollout", "key-pair"),
        );
        assert_eq!(
            spec.resource_type(),
            Some(&aws_sdk_ec2::types::ResourceType::KeyPair)
        );
        let pairs: Vec<(&str, &str)> = spec
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (MANAGED, "true"),
                (RUN_ID, "r-1"),
                (BUILD, "rollout"),
                (ROLE, "key-pair")
            ]
        );
    }
}
