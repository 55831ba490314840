//! The manifest post-processor (Packer `post-processor/manifest`): appends
//! the build's artifact to a JSON file.

use super::common::make_late;
use crate::decode::{Decoder, Fields};
use crate::funcs::FuncContext;
use crate::late::LateTemplate;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The manifest post-processor's options.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestConfig {
    /// File the build is appended to; `packer-manifest.json` by default. With `-force`, a manifest
    /// left by an earlier run starts afresh.
    pub output: String,
    /// Write only file names, without their path.
    pub strip_path: bool,
    /// Leave out `build_time`.
    pub strip_time: bool,
    /// Map written as the build's `custom_data`, each value rendered with the build's data when the
    /// manifest is written (``{{ build `SourceAMIName` }}``).
    pub custom_data: BTreeMap<String, LateTemplate>,
    /// Keep the build's artifact after this post-processor (unset: Packer's rule).
    pub keep_input_artifact: Option<bool>,
}

/// Decodes a rendered manifest post-processor (`custom_data` still raw).
pub fn decode(d: &mut Decoder, f: &mut Fields, cx: &Arc<FuncContext>) -> ManifestConfig {
    let mut custom_data = BTreeMap::new();
    if let Some(v) = f.take("custom_data") {
        let name = f.name("custom_data");
        if let Some(members) = d.map_members(v, &name) {
            for m in members {
                if let Some(s) = d.to_string(&m.value, &format!("{name}[{}]", m.key))
                    && let Some(t) = make_late(d, s, m.value.pos, &name, cx)
                {
                    custom_data.insert(m.key.clone(), t);
                }
            }
        }
    }
    ManifestConfig {
        output: d.string_or(f, "output", "packer-manifest.json"),
        strip_path: d.bool(f, "strip_path"),
        strip_time: d.bool(f, "strip_time"),
        custom_data,
        keep_input_artifact: None,
    }
}
