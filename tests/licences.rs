//! Every package bakery is built from, its own included, has a licence compatible with bakery's
//! `MIT OR Apache-2.0`: each `license` expression that `cargo metadata` reports is checked against the
//! allow-list in deny.toml (cargo-deny's format, so `cargo deny check licenses` agrees), offline and with
//! no tool to install. docs/licence.md says what to do when this fails.

mod spdx;

use std::collections::BTreeMap;
use std::path::Path;
use toml_edit::{DocumentMut, Item, Value};

/// bakery's own licence, which every workspace member declares.
const OURS: &str = "MIT OR Apache-2.0";

/// A package as `cargo metadata` describes it.
#[derive(Debug, Clone)]
struct Package {
    name: String,
    version: String,
    license: Option<String>,
    license_file: Option<String>,
}

/// A `[[licenses.clarify]]` entry: the expression of a package that has only a licence file.
#[derive(Debug, Clone)]
struct Clarification {
    version: Option<String>,
    expression: String,
    /// The `# why:` comment just above the entry.
    reason: Option<String>,
}

/// What deny.toml allows.
#[derive(Debug, Default)]
struct Policy {
    allowed: spdx::Allowed,
    /// Licences allowed for one crate only (`exceptions`).
    exceptions: BTreeMap<String, Vec<String>>,
    clarify: BTreeMap<String, Clarification>,
}

/// `name` or `name@version`, as cargo-deny names a crate.
fn crate_spec(t: &dyn toml_edit::TableLike) -> Option<(String, Option<String>)> {
    // cargo-deny's older spelling is `name`.
    let spec = t.get("crate").or_else(|| t.get("name"))?.as_str()?;
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (spec, None),
    };
    let version = version.or_else(|| t.get("version")?.as_str().map(str::to_string));
    Some((name.to_string(), version))
}

fn strings(item: Option<&Item>) -> Vec<String> {
    item.and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The last comment line above a table's header, if it is `# why: ...`.
fn reason(decor: &toml_edit::Decor) -> Option<String> {
    let prefix = decor.prefix()?.as_str()?;
    let last = prefix.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let why = last.strip_prefix('#')?.trim().strip_prefix("why:")?.trim();
    (!why.is_empty()).then(|| why.to_string())
}

impl Policy {
    fn parse(text: &str) -> Result<Policy, String> {
        let doc: DocumentMut = text.parse().map_err(|e| format!("deny.toml: {e}"))?;
        let licenses = doc
            .get("licenses")
            .and_then(Item::as_table_like)
            .ok_or("deny.toml: no [licenses] table")?;
        let allow = strings(licenses.get("allow"));
        let mut policy = Policy {
            allowed: spdx::Allowed::new(allow.iter().map(String::as_str))
                .map_err(|e| format!("deny.toml: licenses.allow: {e}"))?,
            ..Policy::default()
        };
        if let Some(exceptions) = licenses.get("exceptions").and_then(Item::as_array) {
            for e in exceptions.iter() {
                let t = e
                    .as_inline_table()
                    .ok_or("deny.toml: an exception is not a table")?;
                let (name, _) = crate_spec(t).ok_or("deny.toml: an exception names no crate")?;
                let allow = strings(t.get("allow").map(|v| Item::Value(v.clone())).as_ref());
                policy.exceptions.entry(name).or_default().extend(allow);
            }
        }
        if let Some(clarify) = licenses.get("clarify") {
            let tables = clarify.as_array_of_tables().ok_or(
                "deny.toml: write clarifications as [[licenses.clarify]], each with its # why:",
            )?;
            for t in tables.iter() {
                let (name, version) =
                    crate_spec(t).ok_or("deny.toml: a clarification names no crate")?;
                let expression = t
                    .get("expression")
                    .and_then(Item::as_str)
                    .ok_or_else(|| {
                        format!("deny.toml: the clarification of {name} has no expression")
                    })?
                    .to_string();
                let reason = reason(t.decor());
                policy.clarify.insert(
                    name,
                    Clarification {
                        version,
                        expression,
                        reason,
                    },
                );
            }
        }
        Ok(policy)
    }

    /// Why `p` is not allowed, or None when it is.
    fn violation(&self, p: &Package) -> Option<String> {
        let id = format!("{} {}", p.name, p.version);
        let clarified = self
            .clarify
            .get(&p.name)
            .filter(|c| c.version.as_deref().is_none_or(|v| v == p.version));
        let expression = match (&p.license, clarified) {
            (Some(l), _) => l.clone(),
            (None, Some(c)) if c.reason.is_none() => {
                return Some(format!(
                    "{id}: license-file only; its [[licenses.clarify]] entry in deny.toml needs a `# why:` comment line just above it"
                ));
            }
            (None, Some(c)) => c.expression.clone(),
            (None, None) => {
                return Some(match &p.license_file {
                    Some(f) => format!(
                        "{id}: no license expression, only license-file {f}: list it under [[licenses.clarify]] in deny.toml, with a `# why:` comment"
                    ),
                    None => format!("{id}: no licence at all"),
                });
            }
        };
        let parsed = match spdx::parse(&expression) {
            Ok(e) => e,
            Err(e) => {
                return Some(format!(
                    "{id}: `{expression}`: not an SPDX expression ({e})"
                ));
            }
        };
        let allowed = match self.exceptions.get(&p.name) {
            Some(more) => self.allowed.with(more.iter().map(String::as_str)).ok()?,
            None => self.allowed.clone(),
        };
        (!allowed.satisfy(&parsed)).then(|| format!("{id}: `{expression}`"))
    }

    /// Every package that is not allowed, with its expression.
    fn violations(&self, packages: &[Package]) -> Vec<String> {
        packages.iter().filter_map(|p| self.violation(p)).collect()
    }
}

/// The packages and the workspace members' names, from `cargo metadata` (the lock file and the local
/// registry cache: no network).
fn metadata() -> (Vec<Package>, Vec<String>) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata --locked --offline failed (a package missing from the registry cache: `cargo fetch --locked` brings every platform's):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let str_of = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_string);
    let packages = doc["packages"].as_array().expect("packages");
    let members: Vec<&str> = doc["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let member_names = packages
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(&id)))
        .filter_map(|p| str_of(p, "name"))
        .collect();
    let packages = packages
        .iter()
        .map(|p| Package {
            name: str_of(p, "name").unwrap_or_default(),
            version: str_of(p, "version").unwrap_or_default(),
            license: str_of(p, "license"),
            license_file: str_of(p, "license_file"),
        })
        .collect();
    (packages, member_names)
}

fn policy() -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deny.toml");
    let text = std::fs::read_to_string(&path).expect("read deny.toml");
    Policy::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_package_has_an_allowed_licence() {
    let (packages, _) = metadata();
    assert!(packages.len() > 100, "{} packages?", packages.len());
    let bad = policy().violations(&packages);
    assert!(
        bad.is_empty(),
        "licences not allowed by deny.toml (see docs/licence.md):\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn every_workspace_member_is_mit_or_apache() {
    let (packages, members) = metadata();
    let wrong: Vec<String> = packages
        .iter()
        .filter(|p| members.contains(&p.name) && p.license.as_deref() != Some(OURS))
        .map(|p| format!("{}: {:?}", p.name, p.license))
        .collect();
    assert!(members.iter().any(|m| m == "bakery"), "{members:?}");
    assert!(wrong.is_empty(), "license = \"{OURS}\" expected: {wrong:?}");
}

fn package(name: &str, license: Option<&str>, license_file: Option<&str>) -> Package {
    Package {
        name: name.into(),
        version: "1.0.0".into(),
        license: license.map(Into::into),
        license_file: license_file.map(Into::into),
    }
}

#[test]
fn a_violation_names_the_package_and_its_expression() {
    let policy = Policy::parse("[licenses]\nallow = [\"MIT\", \"Apache-2.0\"]\n").unwrap();
    let bad = policy.violations(&[
        package("fine", Some("MIT OR Apache-2.0"), None),
        package("either", Some("MIT OR GPL-3.0"), None),
        package("viral", Some("GPL-3.0-only"), None),
        package("both", Some("MIT AND LGPL-2.1"), None),
        package("garbled", Some("MIT OR"), None),
    ]);
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert_eq!(bad[0], "viral 1.0.0: `GPL-3.0-only`");
    assert_eq!(bad[1], "both 1.0.0: `MIT AND LGPL-2.1`");
    assert!(
        bad[2].starts_with("garbled 1.0.0: `MIT OR`: not an SPDX expression"),
        "{}",
        bad[2]
    );
}

#[test]
fn exceptions_allow_a_licence_for_one_crate() {
    let policy = Policy::parse(
        "[licenses]\nallow = [\"MIT\"]\nexceptions = [{ crate = \"ring\", allow = [\"ISC\", \"OpenSSL\"] }]\n",
    )
    .unwrap();
    let bad = policy.violations(&[
        package("ring", Some("MIT AND ISC AND OpenSSL"), None),
        package("other", Some("ISC"), None),
    ]);
    assert_eq!(bad, ["other 1.0.0: `ISC`"]);
}

#[test]
fn a_licence_file_only_package_must_be_clarified_with_a_reason() {
    let pkgs = [package("odd", None, Some("/src/odd/LICENSE"))];
    let none = Policy::parse("[licenses]\nallow = [\"MIT\"]\n").unwrap();
    let bad = none.violations(&pkgs);
    assert!(
        bad[0].contains("odd 1.0.0: no license expression, only license-file /src/odd/LICENSE"),
        "{bad:?}"
    );

    let entry = "[[licenses.clarify]]\ncrate = \"odd\"\nexpression = \"MIT\"\nlicense-files = []\n";
    let unexplained = Policy::parse(&format!("[licenses]\nallow = [\"MIT\"]\n\n{entry}")).unwrap();
    assert!(unexplained.violations(&pkgs)[0].contains("needs a `# why:` comment"));

    let explained =
        format!("[licenses]\nallow = [\"MIT\"]\n\n# why: its LICENSE is the MIT text.\n{entry}");
    assert!(
        Policy::parse(&explained)
            .unwrap()
            .violations(&pkgs)
            .is_empty()
    );

    let not_allowed = explained.replace("\"MIT\"\nlicense", "\"GPL-3.0\"\nlicense");
    assert_eq!(
        Policy::parse(&not_allowed).unwrap().violations(&pkgs),
        ["odd 1.0.0: `GPL-3.0`"]
    );
}

#[test]
fn the_repo_policy_allows_only_permissive_licences() {
    let p = policy();
    for ok in [
        "MIT",
        "Apache-2.0",
        "(MIT OR Apache-2.0) AND Unicode-3.0",
        "MIT OR GPL-3.0",
    ] {
        assert!(p.allowed.satisfy(&spdx::parse(ok).unwrap()), "{ok}");
    }
    for bad in [
        "GPL-3.0",
        "AGPL-3.0-or-later",
        "LGPL-2.1",
        "SSPL-1.0",
        "MIT AND GPL-2.0",
    ] {
        assert!(!p.allowed.satisfy(&spdx::parse(bad).unwrap()), "{bad}");
    }
}
