//! What `rollout gc` retains, as configured: the manifest's `gc` block validated into the AMI selection
//! and the number kept. Below `config` (which holds it) and `gc` (which applies it).

use crate::manifest::GcSettings;
use aws_sdk_ec2::types::Image;
use serde::Serialize;
use std::collections::BTreeMap;

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
        (
            GcConfig {
                selection,
                keep: s.keep,
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
