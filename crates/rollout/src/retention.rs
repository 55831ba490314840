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
