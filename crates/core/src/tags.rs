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
}
