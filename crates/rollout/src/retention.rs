//! What `rollout gc` retains, as configured: the manifest's `gc` block validated into the AMI selection
//! and the number kept. Below `config` (which holds it) and `gc` (which applies it).

use crate::manifest::GcSettings;
use aws_sdk_ec2::types::Image;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Which AMIs are this app's: all given filters must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Selection {
    /// The image name starts with this.
    pub name_prefix: Option<String>,
    /// The image carries every one of these tags.
    pub tags: BTreeMap<String, String>,
}

impl Selection {
    /// True when nothing would narrow the selection (gc refuses that).
    pub fn is_empty(&self) -> bool {
        self.name_prefix.as_deref().is_none_or(str::is_empty) && self.tags.is_empty()
    }

    /// True when `image` is selected.
    pub fn matches(&self, image: &Image) -> bool {
        if self.is_empty() {
            return false;
        }
        if let Some(p) = &self.name_prefix
            && !image.name().unwrap_or_default().starts_with(p.as_str())
        {
            return false;
        }
        self.tags.iter().all(|(k, v)| {
            image
                .tags()
                .iter()
                .any(|t| t.key() == Some(k.as_str()) && t.value() == Some(v.as_str()))
        })
    }

    /// `named carnivore-* tagged app=ponyfoo, image=carnivore`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.name_prefix {
            parts.push(format!("named {p}*"));
        }
        if !self.tags.is_empty() {
            let t: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.push(format!("tagged {}", t.join(", ")));
        }
        parts.join(" ")
    }
}

/// The manifest's `gc` block, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcConfig {
    /// The AMIs gc manages.
    pub selection: Selection,
    /// How many of the newest to keep (`--keep` wins).
    pub keep: Option<u32>,
    /// `gc.regions`: where gc also works, besides the manifest's region (`--regions` wins).
    pub regions: Vec<String>,
    /// `gc.include_shared`: AMIs with launch permissions for other accounts may go too.
    pub include_shared: bool,
    /// `gc.deprecate_after`: deprecate a removable AMI this long from now before deregistering it.
    pub deprecate_after: Option<Duration>,
    /// `gc.delete_after`: deregister a removable AMI this long after its deprecation time.
    pub delete_after: Option<Duration>,
}

/// The longest `deprecate_after` AWS takes: a deprecation time at most 10 years ahead.
pub const MAX_DEPRECATE_AFTER: Duration = Duration::from_secs(10 * 365 * 86_400);

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`, `eu-central-2`: two letters, words, a number.
pub fn is_region_name(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && {
            let n = parts[parts.len() - 1];
            !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())
        }
}

/// The problem with a list of regions (`gc.regions`, `--regions`), if any: a name that is not a region's,
/// or one named twice.
pub fn region_list_problem(regions: &[String]) -> Option<String> {
    let mut seen = BTreeSet::new();
    for r in regions {
        if !is_region_name(r) {
            return Some(format!("`{r}` is not a region name (us-west-2)"));
        }
        if !seen.insert(r.as_str()) {
            return Some(format!("{r} is named twice"));
        }
    }
    None
}

/// `deprecate_after` / `delete_after` as the manifest or the command line gives it (`"7d"`, `"24h"`,
/// `"90m"`, seconds), within what AWS takes.
pub fn parse_gc_duration(v: &serde_json::Value) -> Result<Duration, String> {
    let d = crate::durations::parse(v)?;
    if d > MAX_DEPRECATE_AFTER {
        return Err(format!(
            "{} is more than AWS takes (a deprecation time at most 10 years ahead)",
            crate::durations::human(d)
        ));
    }
    Ok(d)
}

impl GcConfig {
    /// From the merged `gc` settings. Without `ami_name_prefix` and `ami_tags` the selection is the tag
    /// `app=APP` (the seeds tag their images with the app). Returns the problems as (field, message).
    pub fn resolve(s: Option<&GcSettings>, app: &str) -> (GcConfig, Vec<(String, String)>) {
        let s = s.cloned().unwrap_or_default();
        let mut problems = Vec::new();
        if s.ami_name_prefix.as_deref() == Some("") {
            problems.push((
                "gc.ami_name_prefix".to_string(),
                "is empty: give the start of the AMI names (carnivore-) or leave it out"
                    .to_string(),
            ));
        }
        for (k, _) in s.ami_tags.iter().flatten() {
            if k.is_empty() {
                problems.push(("gc.ami_tags".to_string(), "a tag key is empty".to_string()));
            }
        }
        let selection = if s.ami_name_prefix.is_none() && s.ami_tags.is_none() {
            Selection {
                name_prefix: None,
                tags: BTreeMap::from([("app".to_string(), app.to_string())]),
            }
        } else {
            Selection {
                name_prefix: s.ami_name_prefix.clone().filter(|p| !p.is_empty()),
                tags: s.ami_tags.clone().unwrap_or_default(),
            }
        };
        if selection.is_empty() && problems.is_empty() {
            problems.push((
                "gc".to_string(),
                "selects every AMI of the account: give ami_name_prefix or ami_tags".to_string(),
            ));
        }
        let regions = s.regions.clone().unwrap_or_default();
        if let Some(p) = region_list_problem(&regions) {
            problems.push(("gc.regions".to_string(), p));
        }
        let mut duration = |field: &str, v: Option<&serde_json::Value>| {
            v.and_then(|v| match parse_gc_duration(v) {
                Ok(d) => Some(d),
                Err(e) => {
                    problems.push((format!("gc.{field}"), e));
                    None
                }
            })
        };
        let deprecate_after = duration("deprecate_after", s.deprecate_after.as_ref());
        let delete_after = duration("delete_after", s.delete_after.as_ref());
        (
            GcConfig {
                selection,
                keep: s.keep,
                regions,
                include_shared: s.include_shared.unwrap_or(false),
                deprecate_after,
                delete_after,
            },
            problems,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RolloutConfig;
    use aws_sdk_ec2::types::Tag;

    fn image(name: &str, tags: &[(&str, &str)]) -> Image {
        let mut b = Image::builder().image_id("ami-12345678").name(name);
        for (k, v) in tags {
            b = b.tags(Tag::builder().key(*k).value(*v).build());
        }
        b.build()
    }

    #[test]
    fn selection_needs_every_filter_and_never_selects_everything() {
        let s = Selection {
            name_prefix: Some("ponyfoo-carnivore-".into()),
            tags: BTreeMap::from([("app".into(), "ponyfoo".into())]),
        };
        assert!(s.matches(&image("ponyfoo-carnivore-staging 1", &[("app", "ponyfoo")])));
        assert!(!s.matches(&image("ponyfoo-primal 1", &[("app", "ponyfoo")])));
        assert!(!s.matches(&image("ponyfoo-carnivore-staging 1", &[("app", "other")])));
        assert!(!Selection::default().matches(&image("x", &[])));
        assert_eq!(s.describe(), "named ponyfoo-carnivore-* tagged app=ponyfoo");
    }

    #[test]
    fn the_default_selection_is_the_app_tag_and_an_empty_one_is_refused() {
        let (c, p) = GcConfig::resolve(None, "carnivore");
        assert!(p.is_empty());
        assert_eq!(
            c.selection.tags,
            BTreeMap::from([("app".to_string(), "carnivore".to_string())])
        );
        let (_, p) = GcConfig::resolve(
            Some(&GcSettings {
                ami_tags: Some(BTreeMap::new()),
                ..Default::default()
            }),
            "carnivore",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("every AMI"), "{p:?}");
        let (_, p) = GcConfig::resolve(
            Some(&GcSettings {
                ami_name_prefix: Some(String::new()),
                ..Default::default()
            }),
            "carnivore",
        );
        assert_eq!(p[0].0, "gc.ami_name_prefix");
    }

    #[test]
    fn regions_and_durations_are_checked() {
        for good in [
            "us-east-1",
            "us-gov-west-1",
            "cn-north-1",
            "eu-central-2",
            "il-central-1",
        ] {
            assert!(is_region_name(good), "{good}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us_east_1",
            "us--1",
            "useast-1",
            "us-east-1a",
            "us-east-",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
        let (c, p) = GcConfig::resolve(
            Some(&GcSettings {
                regions: Some(vec!["us-west-2".into(), "eu-west-1".into()]),
                include_shared: Some(true),
                deprecate_after: Some(serde_json::json!("7d")),
                delete_after: Some(serde_json::json!(3600)),
                ..Default::default()
            }),
            "carnivore",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.regions, ["us-west-2", "eu-west-1"]);
        assert!(c.include_shared);
        assert_eq!(c.deprecate_after, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(c.delete_after, Some(Duration::from_secs(3600)));
        let (c, p) = GcConfig::resolve(None, "carnivore");
        assert!(p.is_empty());
        assert!(c.regions.is_empty() && !c.include_shared);
        assert_eq!((c.deprecate_after, c.delete_after), (None, None));
        let (_, p) = GcConfig::resolve(
            Some(&GcSettings {
                regions: Some(vec!["us-west-2".into(), "uswest2".into()]),
                deprecate_after: Some(serde_json::json!("soon")),
                delete_after: Some(serde_json::json!("3651d")),
                ..Default::default()
            }),
            "carnivore",
        );
        let fields: Vec<&str> = p.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["gc.regions", "gc.deprecate_after", "gc.delete_after"],
            "{p:?}"
        );
        assert!(p[0].1.contains("`uswest2` is not a region name"), "{p:?}");
        assert!(p[2].1.contains("10 years"), "{p:?}");
        assert_eq!(
            region_list_problem(&["us-west-2".into(), "us-west-2".into()]).as_deref(),
            Some("us-west-2 is named twice")
        );
    }

    #[test]
    fn the_shipped_manifest_selects_exactly_the_carnivore_images() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/rollout.json");
        let m = crate::manifest::Manifest::load(&path).unwrap();
        let cfg = RolloutConfig::resolve(&m, None, &Default::default()).unwrap();
        assert_eq!(cfg.gc.selection.name_prefix, None);
        assert_eq!(
            cfg.gc.selection.tags,
            BTreeMap::from([
                ("app".to_string(), "ponyfoo".to_string()),
                ("image".to_string(), "carnivore".to_string())
            ])
        );
        let carnivore = image(
            "ponyfoo-carnivore-staging 1700000000",
            &[
                ("app", "ponyfoo"),
                ("image", "carnivore"),
                ("env", "staging"),
            ],
        );
        let primal = image(
            "ponyfoo-primal 1700000000",
            &[("app", "ponyfoo"), ("image", "primal")],
        );
        assert!(cfg.gc.selection.matches(&carnivore));
        assert!(!cfg.gc.selection.matches(&primal));
    }
}
