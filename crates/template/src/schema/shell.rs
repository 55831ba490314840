//! The shell provisioner (Packer `provisioner/shell`): scripts or inline
//! commands uploaded and run over the communicator.

use super::common::{ProvisionerMeta, late_string, late_strings, make_late, stat};
use crate::decode::{Decoder, Fields};
use crate::funcs::FuncContext;
use crate::json::Pos;
use crate::late::LateTemplate;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Fields rendered when the script runs, with `.Path`, `.Vars`, `.EnvVarFile`.
pub const LATE_FIELDS: &[&str] = &["execute_command"];

/// `execute_command` when unset.
pub const DEFAULT_EXECUTE_COMMAND: &str = "chmod +x {{.Path}}; {{.Vars}} {{.Path}}";
/// `execute_command` when unset, with `use_env_var_file`.
pub const DEFAULT_EXECUTE_COMMAND_ENV_VAR_FILE: &str =
    "chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}";

/// The shell provisioner's options.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellConfig {
    /// Top-level options: `pause_before`, `max_retries` and `timeout`, which every provisioner takes.
    pub meta: ProvisionerMeta,
    /// Inline commands, uploaded as one script starting with `inline_shebang` (unless the first line is
    /// already a `#!` line); each line is rendered again when the provisioner runs
    /// (``{{ build `ID` }}`` etc.).
    pub inline: Option<Vec<LateTemplate>>,
    /// JSON keys `script` (one path) and `scripts` (a list), only one of them: local scripts uploaded
    /// and run in order. Each must exist. Exactly one of `inline` and these is required.
    pub scripts: Vec<String>,
    /// Exit codes that count as success; `[0]` by default.
    pub valid_exit_codes: Vec<i64>,
    /// `K=V` entries exported to the scripts (in `{{.Vars}}`), rendered when the provisioner runs.
    pub environment_vars: Vec<LateTemplate>,
    /// Map of variables exported to the scripts; overrides `environment_vars`.
    pub env: BTreeMap<String, LateTemplate>,
    /// `printf` format of one variable in `{{.Vars}}`: `%s='%s' ` by default (`export %s='%s'\n` with
    /// `use_env_var_file`). A `'` in a value is escaped so that it arrives byte for byte.
    pub env_var_format: String,
    /// Upload scripts as they are (no conversion to Unix line endings).
    pub binary: bool,
    /// Remote path of the uploaded script; `remote_folder/remote_file` by default.
    pub remote_path: String,
    /// Command that runs each script, rendered per script with `.Path`, `.Vars` and `.EnvVarFile`;
    /// `chmod +x {{.Path}}; {{.Vars}} {{.Path}}` by default (with `use_env_var_file`:
    /// `chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}`).
    pub execute_command: LateTemplate,
    /// First line of the script made from `inline`; `/bin/sh -e` by default.
    pub inline_shebang: String,
    /// Wait this long after the provisioner has run.
    pub pause_after: Option<Duration>,
    /// Write the variables to a file (`remote_folder/varfile_NNNN.sh`, named by `{{.EnvVarFile}}`)
    /// instead of putting them on the command line.
    pub use_env_var_file: bool,
    /// Remote directory of the uploaded scripts; `/tmp` by default.
    pub remote_folder: String,
    /// Remote file name of the uploaded script; `script_NNNN.sh` (a random number) by default.
    pub remote_file: String,
    /// How long to retry starting a script (and reconnecting after an expected disconnect); 5m by
    /// default (also when 0).
    pub start_retry_timeout: Duration,
    /// Leave the uploaded scripts on the instance.
    pub skip_clean: bool,
    /// A connection that drops while a script runs (a reboot) is success; bakery reconnects before
    /// the next command.
    pub expect_disconnect: bool,
}

/// The environment map of `env`, shared with shell-local.
pub fn decode_env(
    d: &mut Decoder,
    f: &mut Fields,
    cx: &Arc<FuncContext>,
) -> BTreeMap<String, LateTemplate> {
    let Some(v) = f.take("env") else {
        return BTreeMap::new();
    };
    let name = f.name("env");
    let mut out = BTreeMap::new();
    if let Some(members) = d.map_members(v, &name) {
        for m in members {
            if let Some(s) = d.to_string(&m.value, &format!("{name}[{}]", m.key))
                && let Some(t) = make_late(d, s, m.value.pos, &name, cx)
            {
                out.insert(m.key.clone(), t);
            }
        }
    }
    out
}

/// Decodes a rendered shell provisioner (late fields still raw), with its `meta` already decoded.
pub fn decode(
    d: &mut Decoder,
    f: &mut Fields,
    cx: &Arc<FuncContext>,
    meta: ProvisionerMeta,
) -> ShellConfig {
    let inline = late_strings(d, f, "inline", cx).filter(|l| !l.is_empty());
    let script = d.opt_string(f, "script");
    let mut scripts = d.strings(f, "scripts");
    let pos = f.pos;
    if script.is_some() && !scripts.is_empty() {
        d.err(pos, "Only one of script or scripts can be specified.");
    }
    if let Some(s) = script {
        scripts = vec![s];
    }
    let use_env_var_file = d.bool(f, "use_env_var_file");
    let execute_command =
        match late_string(d, f, "execute_command", cx).filter(|t| !t.raw().is_empty()) {
            Some(t) => t,
            None => {
                let raw = if use_env_var_file {
                    DEFAULT_EXECUTE_COMMAND_ENV_VAR_FILE
                } else {
                    DEFAULT_EXECUTE_COMMAND
                };
                make_late(d, raw.to_string(), pos, "execute_command", cx)
                    .expect("default execute_command parses")
            }
        };
    let remote_folder = d.string_or(f, "remote_folder", "/tmp");
    let remote_file = d
        .opt_string(f, "remote_file")
        .unwrap_or_else(|| format!("script_{}.sh", random_below(9999)));
    let remote_path = d
        .opt_string(f, "remote_path")
        .unwrap_or_else(|| format!("{remote_folder}/{remote_file}"));
    ShellConfig {
        meta,
        inline,
        scripts,
        valid_exit_codes: d.ints(f, "valid_exit_codes"),
        environment_vars: late_strings(d, f, "environment_vars", cx).unwrap_or_default(),
        env: decode_env(d, f, cx),
        env_var_format: d.opt_string(f, "env_var_format").unwrap_or_else(|| {
            if use_env_var_file {
                "export %s='%s'\n".to_string()
            } else {
                "%s='%s' ".to_string()
            }
        }),
        binary: d.bool(f, "binary"),
        remote_path,
        execute_command,
        inline_shebang: d.string_or(f, "inline_shebang", "/bin/sh -e"),
        pause_after: d.duration(f, "pause_after").filter(|t| !t.is_zero()),
        use_env_var_file,
        remote_folder,
        remote_file,
        start_retry_timeout: d
            .duration(f, "start_retry_timeout")
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(300)),
        skip_clean: d.bool(f, "skip_clean"),
        expect_disconnect: d.bool(f, "expect_disconnect"),
    }
}

/// A small pseudo-random number (Packer's `rand.Intn(9999)` for file names).
pub fn random_below(n: u32) -> u32 {
    let b = uuid::Uuid::new_v4();
    u32::from_le_bytes([
        b.as_bytes()[0],
        b.as_bytes()[1],
        b.as_bytes()[2],
        b.as_bytes()[3],
    ]) % n
}

/// Packer's `Prepare` checks.
pub fn validate(cfg: &ShellConfig, d: &mut Decoder, pos: Pos) {
    if cfg.scripts.is_empty() && cfg.inline.is_none() {
        d.err(
            pos,
            "Either a script file or inline script must be specified.",
        );
    } else if !cfg.scripts.is_empty() && cfg.inline.is_some() {
        d.err(
            pos,
            "Only a script file or an inline script can be specified, not both.",
        );
    }
    for path in &cfg.scripts {
        if let Err(e) = stat(path) {
            d.err(pos, format!("Bad script '{path}': {e}"));
        }
    }
    check_env_vars(&cfg.environment_vars, d, pos);
    check_env_keys(cfg.env.keys(), d, pos);
}

/// Every `env` key is a variable name.
pub fn check_env_keys<'k>(keys: impl Iterator<Item = &'k String>, d: &mut Decoder, pos: Pos) {
    for k in keys.filter(|k| !is_env_name(k)) {
        d.err(
            pos,
            format!("env: {k:?} is not a variable name (letters, digits and _, not starting with a digit): it would be run by the remote shell"),
        );
    }
}

/// "K=V" with a non-empty key, for every entry.
pub fn check_env_vars(vars: &[LateTemplate], d: &mut Decoder, pos: Pos) {
    for kv in vars {
        match kv.raw().split_once('=') {
            // A key still holding a template is checked once rendered, at run time.
            Some((k, _)) if !k.is_empty() && (k.contains("{{") || is_env_name(k)) => {}
            Some((k, _)) if !k.is_empty() => d.err(
                pos,
                format!(
                    "environment_vars: {k:?} is not a variable name (letters, digits and _, not starting with a digit): it would be run by the remote shell"
                ),
            ),
            _ => d.err(
                pos,
                format!(
                    "Environment variable not in format 'key=value': {}",
                    kv.raw()
                ),
            ),
        }
    }
}

/// A POSIX shell variable name: `[A-Za-z_][A-Za-z0-9_]*`. Anything else in the `KEY='value' ` prefix
/// bake puts before a script would be shell syntax (`A;id;B=x` runs `id`).
pub fn is_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use crate::load::{LoadOptions, load_template};
    use crate::template::parse_text;
    use std::path::Path;

    fn errors(provisioner: &str) -> Vec<String> {
        let text = format!(
            r#"{{"builders":[{{"type":"amazon-ebs","region":"us-east-1","source_ami":"ami-1","instance_type":"t3.micro","ssh_username":"admin","ami_name":"env-test"}}],
                "provisioners":[{provisioner}]}}"#
        );
        let tpl = parse_text(Path::new("/t/e.json"), Path::new("e.json"), text).unwrap();
        match load_template(tpl, &LoadOptions::default()) {
            Ok(_) => vec![],
            Err(d) => d.0.into_iter().map(|d| d.message).collect(),
        }
    }

    /// A key that is not a variable name would be shell syntax in `KEY='value' script`.
    #[test]
    fn environment_keys_must_be_variable_names() {
        let e = errors(r#"{"type":"shell","inline":["true"],"environment_vars":["A;id;B=x"]}"#);
        assert!(
            e.iter()
                .any(|m| m.contains("\"A;id;B\" is not a variable name")),
            "{e:?}"
        );
        let e = errors(r#"{"type":"shell","inline":["true"],"env":{"X$(id)":"1"}}"#);
        assert!(
            e.iter().any(|m| m.contains("is not a variable name")),
            "{e:?}"
        );
        let e = errors(r#"{"type":"shell-local","inline":["true"],"environment_vars":["1A=x"]}"#);
        assert!(
            e.iter().any(|m| m.contains("is not a variable name")),
            "{e:?}"
        );
        // Values stay free (quoted as Packer quotes them).
        let e = errors(r#"{"type":"shell","inline":["true"],"environment_vars":["A_1=x;y 'z'"]}"#);
        assert!(e.is_empty(), "{e:?}");
    }
}
