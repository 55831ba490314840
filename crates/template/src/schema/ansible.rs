//! The ansible provisioner (Packer `provisioner/ansible`): `ansible-playbook` runs on the machine running
//! bakery, against the instance. bakery never runs Packer's SSH proxy: ansible gets the instance's real
//! address, port and login user, the build's private key in a temporary 0600 file, and the host key bake
//! pinned (a temporary known_hosts file, checked strictly). Packer 1.6.6 proxies by default (`use_proxy`
//! unset): ansible then talks to a local SSH server that Packer runs on 127.0.0.1 and that forwards every
//! command over Packer's own connection, with host key checking off. What ansible sees differs in those
//! connection details only (docs/provisioners.md).

use super::common::{ProvisionerMeta, late_string, late_strings, stat};
use crate::decode::{Decoder, Fields};
use crate::funcs::FuncContext;
use crate::json::Pos;
use crate::late::LateTemplate;
use std::sync::Arc;

/// Rendered when the provisioner runs, with the build's data (`{{ build `Host` }}`, `.Host`, ...).
pub const LATE_FIELDS: &[&str] = &[
    "extra_arguments",
    "ansible_env_vars",
    "inventory_file_template",
];

/// Packer's inventory line for ansible 2 and later.
pub const DEFAULT_INVENTORY_TEMPLATE: &str =
    "{{ .HostAlias }} ansible_host={{ .Host }} ansible_user={{ .User }} ansible_port={{ .Port }}\n";

/// The ansible provisioner's options.
#[derive(Debug, Clone, PartialEq)]
pub struct AnsibleConfig {
    /// Top-level options: `pause_before`, `max_retries` and `timeout`, which every provisioner takes.
    pub meta: ProvisionerMeta,
    /// The program run (no shell): `ansible-playbook` by default, found on `PATH`.
    pub command: String,
    /// Arguments added after bakery's own (`-e packer_build_name=...`, `--ssh-extra-args`,
    /// `--ssh-common-args` with the pinned host key), before `-e ansible_ssh_private_key_file=...`, `-i
    /// INVENTORY PLAYBOOK`; one argument each, not split by a shell. Rendered when the provisioner runs.
    pub extra_arguments: Vec<LateTemplate>,
    /// `K=V` entries added to ansible's environment (after bakery's `ANSIBLE_HOST_KEY_CHECKING=True`, so
    /// they override it; before `ANSIBLE_SCP_IF_SSH=True`, as in Packer). Rendered when the provisioner
    /// runs.
    pub ansible_env_vars: Vec<LateTemplate>,
    /// The playbook; required, must be a file. Passed as an absolute path.
    pub playbook_file: String,
    /// `--ssh-extra-args`, concatenated; `-o IdentitiesOnly=yes` by default (as in Packer).
    pub ansible_ssh_extra_args: Vec<String>,
    /// Groups the host is put in (`[group]` sections of the generated inventory).
    pub groups: Vec<String>,
    /// Groups written to the generated inventory with no host.
    pub empty_groups: Vec<String>,
    /// The host's name in the generated inventory; `default` by default.
    pub host_alias: String,
    /// `ansible_user`; by default the builder's `ssh_username`. (Packer 1.6.6 defaults to the user running
    /// Packer, which its proxy accepts; without a proxy that user means nothing to the instance, and with
    /// `use_proxy: false` Packer too uses the builder's user.)
    pub user: Option<String>,
    /// Do not run `command --version` before the playbook (Packer runs it at validate; bakery when the
    /// provisioner starts, with Packer's message when it fails).
    pub skip_version_check: bool,
    /// Let ansible transfer files with sftp; by default bakery sets `ANSIBLE_SCP_IF_SSH=True`, as Packer
    /// does.
    pub use_sftp: bool,
    /// Directory for the generated inventory file (so that its `group_vars`/`host_vars` apply); must
    /// exist. By default the inventory goes to a private temporary directory.
    pub inventory_directory: Option<String>,
    /// Template of the generated inventory's host line, with `.HostAlias`, `.Host`, `.User`, `.Port` and
    /// the build's data; `{{ .HostAlias }} ansible_host={{ .Host }} ansible_user={{ .User }}
    /// ansible_port={{ .Port }}` and a newline by default.
    pub inventory_file_template: Option<LateTemplate>,
    /// An inventory file used as given instead of the generated one (then `host_alias`, `groups`,
    /// `empty_groups` and `inventory_file_template` are not used).
    pub inventory_file: Option<String>,
    /// Keep the generated inventory file (written to `inventory_directory`, else the system temporary
    /// directory, and named in the output). The key and known_hosts files are removed all the same.
    pub keep_inventory_file: bool,
    /// A requirements file: `galaxy_command install -r FILE` (roles) and/or `galaxy_command collection
    /// install -r FILE` run on this machine first, as in Packer. Must be a file.
    pub galaxy_file: Option<String>,
    /// The program that installs `galaxy_file`; `ansible-galaxy` by default.
    pub galaxy_command: String,
    /// Adds `-f` to the galaxy commands.
    pub galaxy_force_install: bool,
    /// Adds `-p PATH` to the roles' galaxy command.
    pub roles_path: Option<String>,
    /// Adds `-p PATH` to the collections' galaxy command.
    pub collections_path: Option<String>,
    /// Refused when `true`: bakery never runs Packer's local SSH proxy (ansible connects to the instance
    /// itself). `false` or unset: the only mode.
    pub use_proxy: Option<bool>,
    /// Ignored with a warning: the port of Packer's local SSH proxy, which bakery does not run.
    pub local_port: Option<i64>,
    /// Ignored with a warning: the host key of Packer's local SSH proxy, which bakery does not run (ansible
    /// checks the instance's own host key, the one bake pinned).
    pub ssh_host_key_file: Option<String>,
    /// Ignored with a warning: the public key Packer's local SSH proxy accepts, which bakery does not run
    /// (ansible logs in to the instance with the build's key).
    pub ssh_authorized_key_file: Option<String>,
    /// Ignored with a warning: the sftp server Packer's local SSH proxy starts on the instance; without
    /// the proxy ansible uses the instance's sshd's own.
    pub sftp_command: Option<String>,
}

/// Decodes a rendered ansible provisioner (late fields still raw), with its `meta` already decoded.
pub fn decode(
    d: &mut Decoder,
    f: &mut Fields,
    cx: &Arc<FuncContext>,
    meta: ProvisionerMeta,
) -> AnsibleConfig {
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let mut cfg = AnsibleConfig {
        meta,
        command: non_empty(d.opt_string(f, "command"))
            .unwrap_or_else(|| "ansible-playbook".to_string()),
        extra_arguments: late_strings(d, f, "extra_arguments", cx).unwrap_or_default(),
        ansible_env_vars: late_strings(d, f, "ansible_env_vars", cx).unwrap_or_default(),
        playbook_file: d.string(f, "playbook_file").unwrap_or_default(),
        ansible_ssh_extra_args: d.strings(f, "ansible_ssh_extra_args"),
        groups: d.strings(f, "groups"),
        empty_groups: d.strings(f, "empty_groups"),
        host_alias: non_empty(d.opt_string(f, "host_alias")).unwrap_or_else(|| "default".into()),
        user: non_empty(d.opt_string(f, "user")),
        skip_version_check: d.bool(f, "skip_version_check"),
        use_sftp: d.bool(f, "use_sftp"),
        inventory_directory: non_empty(d.opt_string(f, "inventory_directory")),
        inventory_file_template: late_string(d, f, "inventory_file_template", cx)
            .filter(|t| !t.raw().is_empty()),
        inventory_file: non_empty(d.opt_string(f, "inventory_file")),
        keep_inventory_file: d.bool(f, "keep_inventory_file"),
        galaxy_file: non_empty(d.opt_string(f, "galaxy_file")),
        galaxy_command: non_empty(d.opt_string(f, "galaxy_command"))
            .unwrap_or_else(|| "ansible-galaxy".into()),
        galaxy_force_install: d.bool(f, "galaxy_force_install"),
        roles_path: non_empty(d.opt_string(f, "roles_path")),
        collections_path: non_empty(d.opt_string(f, "collections_path")),
        use_proxy: d.trilean(f, "use_proxy"),
        local_port: None,
        ssh_host_key_file: None,
        ssh_authorized_key_file: None,
        sftp_command: None,
    };
    // The proxy's options: accepted, said to be ignored where they are set.
    for key in PROXY_ONLY {
        let Some(v) = f.take(key) else { continue };
        let pos = v.pos;
        let name = f.name(key);
        match *key {
            "local_port" => cfg.local_port = d.to_int(v, &name),
            "ssh_host_key_file" => cfg.ssh_host_key_file = d.to_string(v, &name),
            "ssh_authorized_key_file" => cfg.ssh_authorized_key_file = d.to_string(v, &name),
            _ => cfg.sftp_command = d.to_string(v, &name),
        }
        d.warn(
            pos,
            format!(
                "{key} is ignored: it configures Packer's local SSH proxy, which bakery does not run \
                 (ansible connects to the instance itself; docs/provisioners.md#ansible)"
            ),
        );
    }
    cfg
}

/// Options of Packer's SSH proxy, ignored with a warning.
const PROXY_ONLY: &[&str] = &[
    "local_port",
    "ssh_host_key_file",
    "ssh_authorized_key_file",
    "sftp_command",
];

/// Packer's `Prepare` checks, and the refusal of `use_proxy: true`.
pub fn validate(cfg: &AnsibleConfig, d: &mut Decoder, pos: Pos) {
    if cfg.playbook_file.is_empty() {
        d.err(pos, "playbook_file must be specified.");
    } else {
        check_file(d, pos, "playbook_file", &cfg.playbook_file);
    }
    if let Some(g) = &cfg.galaxy_file {
        check_file(d, pos, "galaxy_file", g);
    }
    if let Some(dir) = &cfg.inventory_directory {
        check_dir(d, pos, "inventory_directory", dir);
    }
    if cfg.local_port.is_some_and(|p| p > 65535) {
        d.err(
            pos,
            format!(
                "local_port: {} must be a valid port",
                cfg.local_port.unwrap_or_default()
            ),
        );
    }
    if cfg.use_proxy == Some(true) {
        d.err(
            pos,
            "use_proxy: true is not supported: bakery never runs Packer's local SSH proxy; ansible connects to \
             the instance itself, with the build's address, port, user, key and pinned host key. Remove \
             use_proxy or set it to false (docs/provisioners.md#ansible)",
        );
    }
    for kv in &cfg.ansible_env_vars {
        if !kv.raw().contains('=') {
            d.err(
                pos,
                format!(
                    "ansible_env_vars: {:?} is not in the format KEY=VALUE",
                    kv.raw()
                ),
            );
        }
    }
}

/// Packer's `validateFileConfig`: the path exists and is not a directory.
pub fn check_file(d: &mut Decoder, pos: Pos, option: &str, path: &str) {
    match stat(path) {
        Err(e) => d.err(pos, format!("{option}: {path} is invalid: {e}")),
        Ok(m) if m.is_dir() => d.err(pos, format!("{option}: {path} must point to a file")),
        Ok(_) => {}
    }
}

/// Packer's `validateDirConfig`: the path exists and is a directory.
pub fn check_dir(d: &mut Decoder, pos: Pos, option: &str, path: &str) {
    match stat(path) {
        Err(e) => d.err(pos, format!("{option}: {path} is invalid: {e}")),
        Ok(m) if !m.is_dir() => d.err(pos, format!("{option}: {path} must point to a directory")),
        Ok(_) => {}
    }
}
