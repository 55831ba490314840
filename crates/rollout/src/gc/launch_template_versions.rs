//! Launch-template-version pruning: of the environment's own launch templates (tagged by rollout), every
//! version goes except the newest `keep`, the default, the latest and those a group or fleet references.

use super::in_use::Usage;
use super::report::{Action, VersionDecision};
use super::templates::Template;
use crate::context::Ctx;
use crate::error::AwsResultExt;
use std::collections::BTreeMap;

/// The launch template versions of the environment's templates, decided (not yet deleted).
pub(super) fn decide(templates: &[Template], usage: &Usage, keep: u32) -> Vec<VersionDecision> {
    let mut out = Vec::new();
    for t in templates.iter().filter(|t| t.ours) {
        for (rank, n) in t.versions.keys().rev().enumerate() {
            let mut reasons = Vec::new();
            if *n == t.default {
                reasons.push("default version".to_string());
            }
            if *n == t.latest {
                reasons.push("latest version".to_string());
            }
            if let Some(users) = usage.versions.get(&(t.id.clone(), *n)) {
                reasons.extend(users.iter().map(|u| format!("in use by {u}")));
            }
            if (rank as u32) < keep {
                reasons.push(format!("newest {keep}"));
            }
            out.push(VersionDecision {
                template_id: t.id.clone(),
                template_name: t.name.clone(),
                version: *n,
                action: if reasons.is_empty() {
                    Action::WouldRemove
                } else {
                    Action::Kept
                },
                reasons,
            });
        }
    }
    out
}

/// Deletes the versions decided for removal, per template, up to 200 a call.
pub(super) async fn delete(
    cx: &Ctx,
    decisions: &mut [VersionDecision],
    problems: &mut Vec<String>,
) {
    let mut by_template: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, d) in decisions.iter().enumerate() {
        if d.action == Action::WouldRemove {
            by_template
                .entry(d.template_id.clone())
                .or_default()
                .push(i);
        }
    }
    for (id, idx) in by_template {
        for chunk in idx.chunks(200) {
            let versions: Vec<String> = chunk
                .iter()
                .map(|&i| decisions[i].version.to_string())
                .collect();
            let out = cx
                .clients
                .ec2
                .delete_launch_template_versions()
                .launch_template_id(&id)
                .set_versions(Some(versions))
                .send()
                .await
                .aws("DeleteLaunchTemplateVersions");
            match out {
                Ok(out) => {
                    let failed: BTreeMap<i64, String> = out
                        .unsuccessfully_deleted_launch_template_versions()
                        .iter()
                        .filter(|f| {
                            // Already gone is what gc wanted.
                            !matches!(
                                f.response_error().and_then(|e| e.code()),
                                Some(
                                    aws_sdk_ec2::types::LaunchTemplateErrorCode::LaunchTemplateVersionDoesNotExist
                                        | aws_sdk_ec2::types::LaunchTemplateErrorCode::LaunchTemplateIdDoesNotExist
                                )
                            )
                        })
                        .map(|f| {
                            (
                                f.version_number().unwrap_or(0),
                                f.response_error()
                                    .and_then(|e| e.message())
                                    .unwrap_or("not deleted")
                                    .to_string(),
                            )
                        })
                        .collect();
                    for &i in chunk {
                        let d = &mut decisions[i];
                        match failed.get(&d.version) {
                            Some(why) => {
                                d.action = Action::Failed;
                                d.reasons.push(why.clone());
                                problems.push(format!(
                                    "launch template {} version {}: {why}",
                                    d.template_name, d.version
                                ));
                            }
                            None => d.action = Action::Removed,
                        }
                    }
                }
                Err(e) if e.is_not_found() => {
                    for &i in chunk {
                        decisions[i].action = Action::Removed;
                    }
                }
                Err(e) => {
                    for &i in chunk {
                        decisions[i].action = Action::Failed;
                        decisions[i].reasons.push(e.to_string());
                    }
                    problems.push(e.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::in_use::reference_template;

    #[test]
    fn versions_keep_default_latest_referenced_and_newest() {
        let t = vec![Template::sample(true)];
        let mut usage = Usage::default();
        reference_template(&t, &mut usage, "asg g", Some("lt-1"), None, Some("3"));
        let d = decide(&t, &usage, 0);
        let removed: Vec<i64> = d
            .iter()
            .filter(|v| v.action == Action::WouldRemove)
            .map(|v| v.version)
            .collect();
        assert_eq!(removed, vec![4, 1]);
        let v3 = d.iter().find(|v| v.version == 3).unwrap();
        assert_eq!(v3.reasons, vec!["in use by asg g".to_string()]);
        let d = decide(&t, &usage, 2);
        let removed: Vec<i64> = d
            .iter()
            .filter(|v| v.action == Action::WouldRemove)
            .map(|v| v.version)
            .collect();
        assert_eq!(removed, vec![1]);
        // Templates rollout did not create are never pruned.
        assert!(decide(&[Template::sample(false)], &usage, 0).is_empty());
    }
}
