//! The file provisioner (Packer `provisioner/file`): uploads (or downloads)
//! files and directories; a trailing slash on a directory source copies its
//! contents, as rsync does.

use super::common::{ProvisionerMeta, stat};
use crate::decode::{Decoder, Fields};
use crate::json::Pos;

/// The file provisioner's options.
#[derive(Debug, Clone, PartialEq)]
pub struct FileConfig {
    /// Top-level options: `pause_before`, `max_retries` and `timeout`, which every provisioner takes.
    pub meta: ProvisionerMeta,
    /// JSON keys `sources` (a list) and `source` (one path, appended): files or directories to copy.
    /// Relative local paths are relative to the current directory; a directory without a trailing
    /// slash is copied itself, with one its contents. Each must exist when uploading, unless `generated`.
    pub sources: Vec<String>,
    /// Text written to `destination` (a 0644 file) instead of copying local files.
    pub content: Option<String>,
    /// Where the files go; required. With several sources, a directory ending in `/`. Missing parent
    /// directories are created.
    pub destination: String,
    /// `upload` (default) or `download`.
    pub direction: String,
    /// The sources are made by earlier provisioners: skip the check that they exist.
    pub generated: bool,
}

/// Decodes a file provisioner, with its `meta` already decoded.
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
