//! The goss provisioner (the community plugin github.com/YaleUniversity/goss, which image-builder
//! requires): installs the goss binary on the instance, uploads the test specs and runs `goss render`,
//! `goss render -d` and `goss validate` there with the template's options, then downloads the rendered
//! specs.

use super::common::{ProvisionerMeta, stat};
use crate::decode::{Decoder, Fields};
use crate::json::Pos;
use std::collections::BTreeMap;

/// `format`'s values (goss's output formats).
pub const FORMATS: &[&str] = &[
    "documentation",
    "json",
    "json_oneline",
    "junit",
    "nagios",
    "nagios_verbose",
    "rspecish",
    "silent",
    "tap",
];

/// `format_options`' values.
pub const FORMAT_OPTIONS: &[&str] = &["perfdata", "verbose", "pretty"];

/// The goss provisioner's options (JSON keys as the plugin's).
#[derive(Debug, Clone, PartialEq)]
pub struct GossConfig {
    /// `pause_before`, `max_retries`, `timeout`.
    pub meta: ProvisionerMeta,
    /// goss's version; `0.3.9` by default (the plugin's).
    pub version: String,
    /// The binary's architecture; `amd64` by default.
    pub arch: String,
    /// Where the instance downloads goss from; by default goss's release of `version` and `arch`.
    pub url: String,
    /// Where the binary goes on the instance; `/tmp/goss-VERSION-linux-ARCH` by default (the version and
    /// architecture taken from `url` when it is given).
    pub download_path: String,
    /// HTTP basic-auth user for the download (curl `-u`, wget `--user`).
    pub username: String,
    /// Its password (sensitive: masked in output).
    pub password: String,
    /// goss is already on the instance at `download_path`: do not download it.
    pub skip_install: bool,
    /// Report failing tests without failing the build.
    pub inspect: bool,
    /// `Linux` (default); `Windows` is refused (bake builds Linux instances over SSH).
    pub target_os: String,
    /// Test files and directories, uploaded to `remote_path`; required, each must exist.
    pub tests: Vec<String>,
    /// goss's `--retry-timeout`; `0s` by default.
    pub retry_timeout: String,
    /// goss's `--sleep`; `1s` by default.
    pub sleep: String,
    /// Run `goss validate` with sudo.
    pub use_sudo: bool,
    /// Skip TLS verification of the download (curl `-k`, wget `--no-check-certificate`).
    pub skip_ssl: bool,
    /// goss's `--gossfile` (relative to `remote_path`).
    pub goss_file: String,
    /// goss's `--vars`: a local file uploaded to `remote_path`.
    pub vars_file: String,
    /// goss's `--vars-inline`, as JSON.
    pub vars_inline: BTreeMap<String, String>,
    /// Environment variables set for the goss commands.
    pub vars_env: BTreeMap<String, String>,
    /// An existing directory on the instance; `/tmp` by default.
    pub remote_folder: String,
    /// Where the tests go; `REMOTE_FOLDER/goss` by default.
    pub remote_path: String,
    /// goss's `--format` (one of [`FORMATS`]).
    pub format: String,
    /// goss's `--format-options` (one of [`FORMAT_OPTIONS`]).
    pub format_options: String,
}

impl GossConfig {
    /// goss's release URL for `version` and `arch` (Linux).
    pub fn default_url(version: &str, arch: &str) -> String {
        format!("https://github.com/goss-org/goss/releases/download/v{version}/goss-linux-{arch}")
    }
}

/// Decodes a goss provisioner, with its `meta` already decoded, applying the plugin's defaults.
pub fn decode(d: &mut Decoder, f: &mut Fields, meta: ProvisionerMeta) -> GossConfig {
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let version = nonempty(d.opt_string(f, "version")).unwrap_or_else(|| "0.3.9".into());
    let arch = nonempty(d.opt_string(f, "arch")).unwrap_or_else(|| "amd64".into());
    let given_url = nonempty(d.opt_string(f, "url"));
    let url = given_url
        .clone()
        .unwrap_or_else(|| GossConfig::default_url(&version, &arch));
    let download_path = nonempty(d.opt_string(f, "download_path")).unwrap_or_else(|| {
        // The plugin's rule: the version and architecture come from the URL's last two segments
        // (`…/download/vX.Y.Z/goss-linux-ARCH`) when a URL is given.
        match &given_url {
            Some(u) => {
                let parts: Vec<&str> = u.split('/').collect();
                let file = parts.last().copied().unwrap_or_default();
                let v = parts
                    .len()
                    .checked_sub(2)
                    .map(|i| parts[i].trim_start_matches('v'))
                    .unwrap_or(&version);
                let a = file.split('-').nth(2).unwrap_or(&arch);
                format!("/tmp/goss-{v}-linux-{a}")
            }
            None => format!("/tmp/goss-{version}-linux-{arch}"),
        }
    });
    let remote_folder = nonempty(d.opt_string(f, "remote_folder")).unwrap_or_else(|| "/tmp".into());
    let remote_path =
        nonempty(d.opt_string(f, "remote_path")).unwrap_or_else(|| format!("{remote_folder}/goss"));
    GossConfig {
        meta,
        version,
        arch,
        url,
        download_path,
        username: d.opt_string(f, "username").unwrap_or_default(),
        password: d.opt_string(f, "password").unwrap_or_default(),
        skip_install: d.bool(f, "skip_install"),
        inspect: d.bool(f, "inspect"),
        target_os: nonempty(d.opt_string(f, "target_os")).unwrap_or_else(|| "Linux".into()),
        tests: d.strings(f, "tests"),
        retry_timeout: nonempty(d.opt_string(f, "retry_timeout")).unwrap_or_else(|| "0s".into()),
        sleep: nonempty(d.opt_string(f, "sleep")).unwrap_or_else(|| "1s".into()),
        use_sudo: d.bool(f, "use_sudo"),
        skip_ssl: d.bool(f, "skip_ssl"),
        goss_file: d.opt_string(f, "goss_file").unwrap_or_default(),
        vars_file: d.opt_string(f, "vars_file").unwrap_or_default(),
        vars_inline: d.string_map(f, "vars_inline"),
        vars_env: d.string_map(f, "vars_env"),
        remote_folder,
        remote_path,
        format: d.opt_string(f, "format").unwrap_or_default(),
        format_options: d.opt_string(f, "format_options").unwrap_or_default(),
    }
}

/// The plugin's `Prepare` checks, plus bake's refusal of Windows.
pub fn validate(cfg: &GossConfig, d: &mut Decoder, pos: Pos) {
    if !cfg.format.is_empty() && !FORMATS.contains(&cfg.format.as_str()) {
        d.err(
            pos,
            format!(
                "Invalid format choice {}. Valid options: [{}]",
                cfg.format,
                FORMATS.join(" ")
            ),
        );
    }
    if !cfg.format_options.is_empty() && !FORMAT_OPTIONS.contains(&cfg.format_options.as_str()) {
        d.err(
            pos,
            format!(
                "Invalid format options choice {}. Valid options: [{}]",
                cfg.format_options,
                FORMAT_OPTIONS.join(" ")
            ),
        );
    }
    if cfg.tests.is_empty() {
        d.err(pos, "tests must be specified");
    }
    for path in &cfg.tests {
        if let Err(e) = stat(path) {
            d.err(pos, format!("Bad test '{path}': {e}"));
        }
    }
    if !cfg.vars_file.is_empty()
        && let Err(e) = stat(&cfg.vars_file)
    {
        d.err(pos, format!("Bad vars_file '{}': {e}", cfg.vars_file));
    }
    for (k, v) in &cfg.vars_env {
        if !super::shell::is_env_name(k) {
            d.err(
                pos,
                format!("vars_env {k:?}: not an environment variable name (letters, digits, _)"),
            );
        }
        // The plugin writes `K="V"` into the command: these would be evaluated by the remote shell.
        if v.contains(['"', '\\', '$', '`']) {
            d.err(
                pos,
                format!("vars_env {k}: the value may not contain \", \\, $ or ` (the goss command line double-quotes it, so the remote shell would expand them)"),
            );
        }
    }
    match cfg.target_os.as_str() {
        "Linux" => {}
        "Windows" => d.err(
            pos,
            "target_os Windows is not supported: bake builds Linux instances over SSH",
        ),
        other => d.err(pos, format!("Os must be Linux or Windows, not {other:?}")),
    }
}
