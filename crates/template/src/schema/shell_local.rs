//! shell-local, as a provisioner or a post-processor (one set of options for
//! both, as in Packer): commands run on the machine running bakery.

use super::common::{late_strings, make_late, stat};
use super::shell::{check_env_keys, check_env_vars, decode_env};
use crate::decode::{Decoder, Fields};
use crate::funcs::FuncContext;
use crate::json::Pos;
use crate::late::LateTemplate;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Rendered when the command runs, with `.Vars` and `.Script`.
pub const LATE_FIELDS: &[&str] = &["execute_command"];

/// The operating systems `only_on` may name.
const SUPPORTED_OS: &[&str] = &[
    "darwin", "freebsd", "linux", "openbsd", "solaris", "windows",
];

/// The shell-local provisioner's or post-processor's options.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellLocalConfig {
    /// Top-level options: `pause_before`, `max_retries` and `timeout` (provisioner only; empty for the
    /// post-processor).
    pub meta: super::common::ProvisionerMeta,
    /// JSON keys `inline` (a list) and `command` (one command, folded in here as Packer does): commands
    /// written to a 0700 temporary file and run. Only one of `command`, `inline`, `script` and
    /// `scripts`; one of them is required.
    pub inline: Option<Vec<LateTemplate>>,
    /// JSON keys `script` (one path) and `scripts` (a list): local scripts run in order. Each must exist.
    pub scripts: Vec<String>,
    /// Exit codes that count as success; `[0]` by default.
    pub valid_exit_codes: Vec<i64>,
    /// `K=V` entries exported to the commands (in `{{.Vars}}`), rendered when they run.
    pub environment_vars: Vec<LateTemplate>,
    /// Map of variables exported to the commands; overrides `environment_vars`.
    pub env: BTreeMap<String, LateTemplate>,
    /// `printf` format of one variable in `{{.Vars}}`; `%s='%s' ` by default.
    pub env_var_format: String,
    /// The command line that runs each script, rendered with `.Vars` and `.Script`;
    /// `["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]` by default.
    pub execute_command: Vec<LateTemplate>,
    /// First line of the script made from `inline`; `/bin/sh -e` by default.
    pub inline_shebang: String,
    /// Run only on these operating systems (`darwin`, `freebsd`, `linux`, `openbsd`, `solaris`,
    /// `windows`); skipped elsewhere. Empty (default): everywhere.
    pub only_on: Vec<String>,
    /// Extension of the temporary script file (a leading `.` is dropped).
    pub tempfile_extension: String,
    /// Windows Subsystem for Linux paths (scripts only, not `command`/`inline`). Accepted and checked;
    /// bakery does not act on it.
    pub use_linux_pathing: bool,
    /// Post-processor only: keep the build's artifact after this post-processor (unset: Packer's rule).
    pub keep_input_artifact: Option<bool>,
}

/// Decodes a rendered shell-local (late fields still raw), with its `meta` already decoded.
pub fn decode(
    d: &mut Decoder,
    f: &mut Fields,
    cx: &Arc<FuncContext>,
    meta: super::common::ProvisionerMeta,
) -> ShellLocalConfig {
    let pos = f.pos;
    let command = d.opt_string(f, "command");
    let mut inline = late_strings(d, f, "inline", cx).filter(|l| !l.is_empty());
    let script = d.opt_string(f, "script");
    let mut scripts = d.strings(f, "scripts");
    let too_many = "You may only specify one of the following options: Command, Inline, Script or Scripts. Please consolidate these options in your config.";
    if command.is_none() && inline.is_none() && script.is_none() && scripts.is_empty() {
        d.err(
            pos,
            "Command, Inline, Script and Scripts options cannot all be empty.",
        );
    }
    if let Some(c) = command {
        if inline.is_some() || !scripts.is_empty() || script.is_some() {
            d.err(pos, too_many);
        } else {
            inline = make_late(d, c, pos, "command", cx).map(|t| vec![t]);
        }
    }
    if let Some(s) = script {
        if !scripts.is_empty() || inline.is_some() {
            d.err(pos, too_many);
        } else {
            scripts = vec![s];
        }
    }
    if !scripts.is_empty() && inline.is_some() {
        d.err(pos, too_many);
    }
    let execute_command = match late_strings(d, f, "execute_command", cx).filter(|l| !l.is_empty())
    {
        Some(l) => l,
        None => ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]
            .iter()
            .filter_map(|s| make_late(d, s.to_string(), pos, "execute_command", cx))
            .collect(),
    };
    ShellLocalConfig {
        meta,
        inline,
        scripts,
        valid_exit_codes: d.ints(f, "valid_exit_codes"),
        environment_vars: late_strings(d, f, "environment_vars", cx).unwrap_or_default(),
        env: decode_env(d, f, cx),
        env_var_format: d.string_or(f, "env_var_format", "%s='%s' "),
        execute_command,
        inline_shebang: d.string_or(f, "inline_shebang", "/bin/sh -e"),
        only_on: d.strings(f, "only_on"),
        tempfile_extension: d
            .opt_string(f, "tempfile_extension")
            .map(|e| e.trim_start_matches('.').to_string())
            .unwrap_or_default(),
        use_linux_pathing: d.bool(f, "use_linux_pathing"),
        keep_input_artifact: None,
    }
}

/// Packer's `Validate` checks.
pub fn validate(cfg: &ShellLocalConfig, d: &mut Decoder, pos: Pos) {
    for path in &cfg.scripts {
        if let Err(e) = stat(path) {
            d.err(pos, format!("Bad script '{path}': {e}"));
        }
    }
    for os in &cfg.only_on {
        if !SUPPORTED_OS.contains(&os.as_str()) {
            d.err(
                pos,
                format!(
                    "Invalid OS specified in only_on: '{os}'\nSupported OS names: {}",
                    SUPPORTED_OS.join(", ")
                ),
            );
        }
    }
    if cfg.use_linux_pathing && cfg.inline.is_some() {
        d.err(pos, "Packer is unable to use the Command and Inline features with the Windows Linux Subsystem. Please use the Script or Scripts options instead");
    }
    check_env_vars(&cfg.environment_vars, d, pos);
    check_env_keys(cfg.env.keys(), d, pos);
}
