//! docs/iam.md's policies cannot drift from the code: every AWS operation a binary's code calls (each call
//! names its operation, `.aws("RunInstances")` or `AwsError::new("PutParameter", …)`) is in that binary's
//! policy, and the policy lists nothing the code never calls beyond the implicit actions the doc explains.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.rs` files under `dir`, recursively.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every operation named by `.aws("Op")` or `AwsError::new("Op", …)` in `dirs`, outside `#[cfg(test)]`
/// modules (which run against mocks).
fn operations(dirs: &[&str]) -> BTreeSet<String> {
    let mut files = Vec::new();
    for d in dirs {
        sources(&root().join(d), &mut files);
    }
    let mut ops = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for marker in [".aws(", "AwsError::new("] {
            for (i, _) in code.match_indices(marker) {
                let rest = code[i + marker.len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let op: String = rest
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                if op.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                    ops.insert(op);
                }
            }
        }
    }
    ops
}

/// The actions of the JSON policy under the `## {heading}` section of docs/iam.md.
fn policy(heading: &str) -> BTreeSet<String> {
    let doc = std::fs::read_to_string(root().join("docs/iam.md")).unwrap();
    let section = doc
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("docs/iam.md has no section {heading}"));
    let json = section
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .unwrap_or_else(|| panic!("section {heading} has no JSON policy"));
    let v: serde_json::Value = serde_json::from_str(json).expect("the policy is valid JSON");
    v["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn check(heading: &str, dirs: &[&str], implicit: &[&str]) {
    let ops = operations(dirs);
    assert!(ops.len() > 20, "{heading}: found only {ops:?}");
    let actions = policy(heading);
    let named: BTreeSet<&str> = actions
        .iter()
        .filter_map(|a| a.split_once(':').map(|(_, op)| op))
        .collect();
    let missing: Vec<&String> = ops.iter().filter(|o| !named.contains(o.as_str())).collect();
    assert!(
        missing.is_empty(),
        "docs/iam.md ## {heading} lacks operations the code calls: {missing:?}"
    );
    let unused: Vec<&String> = actions
        .iter()
        .filter(|a| {
            let op = a.split_once(':').map_or(a.as_str(), |(_, op)| op);
            !ops.contains(op) && !implicit.contains(&a.as_str())
        })
        .collect();
    assert!(
        unused.is_empty(),
        "docs/iam.md ## {heading} lists actions the code never calls: {unused:?}"
    );
}

#[test]
fn the_bake_policy_lists_every_operation_bake_calls() {
    check(
        "bake",
        &["crates/builder/src", "crates/core/src", "src"],
        &[
            "ec2:CreateTags",
            "iam:PassRole",
            // The tags CreateRole and CreateInstanceProfile set.
            "iam:TagInstanceProfile",
            "iam:TagRole",
            "kms:CreateGrant",
            "kms:DescribeKey",
            "kms:Decrypt",
            "kms:GenerateDataKeyWithoutPlaintext",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
        ],
    );
}

#[test]
fn the_rollout_policy_lists_every_operation_rollout_calls() {
    check("rollout", &["crates/rollout/src"], &["iam:PassRole"]);
}
