//! The file provisioner (Packer `provisioner/file`): uploads (or downloads)
//! files and directories; a trailing slash on a directory source copies its
//! contents, as rsync does.

use super::common::{ProvisionerMeta, stat};
use crate::decode::{Decoder, Fields};
use crate::json::Pos;

#[derive(Debug, Clone, PartialEq)]
pub struct FileConfig {
    pub meta: ProvisionerMeta,
    /// `source` and `sources` together, in order.
    pub sources: Vec<String>,
    /// Written to `destination` instead of a local file.
    pub content: Option<String>,
    pub destination: String,
    /// "upload" (default) or "download".
    pub direction: String,
    /// Skip the up-front check that sources exist.
    pub generated: bool,
}

pub fn decode(d: &mut Decoder, f: &mut Fields, meta: ProvisionerMeta) -> FileConfig {
    let source = d.opt_string(f, "source");
    let mut sources = d.strings(f, "sources");
    if let Some(s) = source {
        sources.push(s);
    }
    FileConfig {
        meta,
        sources,
        content: d.opt_string(f, "content"),
        destination: d.string(f, "destination").unwrap_or_default(),
        direction: d.string_or(f, "direction", "upload"),
        generated: d.bool(f, "generated"),
    }
}

/// Packer's `Prepare` checks.
pub fn validate(cfg: &FileConfig, d: &mut Decoder, pos: Pos) {
    if cfg.direction != "download" && cfg.direction != "upload" {
        d.err(pos, "Direction must be one of: download, upload.");
    }
    if cfg.direction == "upload" && !cfg.generated {
        for src in &cfg.sources {
            if let Err(e) = stat(src) {
                d.err(pos, format!("Bad source '{src}': {e}"));
            }
        }
    }
    if !cfg.sources.is_empty() && cfg.content.is_some() {
        d.err(
            pos,
            "Cannot specify both source(s) and content; use one of them.",
        );
    }
    if cfg.sources.is_empty() && cfg.content.is_none() {
        d.err(pos, "Source must be specified.");
    }
    if cfg.destination.is_empty() {
        d.err(pos, "Destination must be specified.");
    }
    if cfg.sources.len() > 1 && !cfg.destination.ends_with('/') {
        d.err(
            pos,
            "Destination must be a directory ending in '/' when several sources are given.",
        );
    }
}
