//! The ansible-local provisioner (Packer `provisioner/ansible-local`): the playbooks (and their
//! directory, roles, variables, inventory) are uploaded to a staging directory on the instance with the
//! communicator, and `ansible-playbook` runs there, on the instance, against itself (`-c local`).
//! ansible must already be installed on the instance.

use super::ansible::{check_dir, check_file};
use super::common::ProvisionerMeta;
use crate::decode::{Decoder, Fields};
use crate::json::Pos;

/// Packer's default staging directory (a unique directory under it unless `staging_directory` is set).
pub const DEFAULT_STAGING_DIR: &str = "/tmp/packer-provisioner-ansible-local";

/// The ansible-local provisioner's options.
#[derive(Debug, Clone, PartialEq)]
pub struct AnsibleLocalConfig {
    /// Top-level options: `pause_before`, `max_retries` and `timeout`, which every provisioner takes.
    pub meta: ProvisionerMeta,
    /// The command run on the instance through its shell, followed by the playbook and arguments;
    /// `ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook` by default.
    pub command: String,
    /// Arguments appended to the command line, joined with spaces (the remote shell splits them, as in
    /// Packer: quote them for it).
    pub extra_arguments: Vec<String>,
    /// A local directory uploaded as `group_vars` in the staging directory; must exist.
    pub group_vars: Option<String>,
    /// A local directory uploaded as `host_vars` in the staging directory; must exist.
    pub host_vars: Option<String>,
    /// A local directory whose contents are uploaded to the staging directory first (the playbooks'
    /// tree); must exist.
    pub playbook_dir: Option<String>,
    /// The playbook, uploaded to the staging directory and run. Exactly one of `playbook_file` and
    /// `playbook_files`; must be a file.
    pub playbook_file: Option<String>,
    /// Several playbooks, run in order; each uploaded under the staging directory at its absolute local
    /// path, unless it lies inside `playbook_dir` (already uploaded). Each must be a file.
    pub playbook_files: Vec<String>,
    /// Local directories uploaded to `playbooks/NAME` in the staging directory; each must exist.
    pub playbook_paths: Vec<String>,
    /// Local directories uploaded to `roles/NAME` in the staging directory; each must exist.
    pub role_paths: Vec<String>,
    /// The staging directory on the instance; `/tmp/packer-provisioner-ansible-local/UUID` by default.
    pub staging_directory: String,
    /// Remove the staging directory after a successful run (`rm -rf`), as Packer does; left in place by
    /// default (as in Packer).
    pub clean_staging_directory: bool,
    /// An inventory file uploaded and used instead of the generated one (`127.0.0.1`, or one `[group]`
    /// section per `inventory_groups` entry). Must be a file.
    pub inventory_file: Option<String>,
    /// Groups `127.0.0.1` is put in, in the generated inventory.
    pub inventory_groups: Vec<String>,
    /// A requirements file uploaded and installed on the instance with `galaxy_command install -r FILE
    /// -p STAGING/roles` before the playbooks run. Must be a file.
    pub galaxy_file: Option<String>,
    /// The command that installs `galaxy_file` on the instance; `ansible-galaxy` by default.
    pub galaxy_command: String,
}

/// Decodes a rendered ansible-local provisioner, with its `meta` already decoded.
pub fn decode(d: &mut Decoder, f: &mut Fields, meta: ProvisionerMeta) -> AnsibleLocalConfig {
    AnsibleLocalConfig {
        meta,
        command: d.opt_string(f, "command").unwrap_or_else(|| {
            "ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook".to_string()
        }),
        extra_arguments: d.strings(f, "extra_arguments"),
        group_vars: d.opt_string(f, "group_vars"),
        host_vars: d.opt_string(f, "host_vars"),
        playbook_dir: d.opt_string(f, "playbook_dir"),
        playbook_file: d.opt_string(f, "playbook_file"),
        playbook_files: d.strings(f, "playbook_files"),
        playbook_paths: d.strings(f, "playbook_paths"),
        role_paths: d.strings(f, "role_paths"),
        staging_directory: d
            .opt_string(f, "staging_directory")
            .unwrap_or_else(|| format!("{DEFAULT_STAGING_DIR}/{}", uuid::Uuid::new_v4())),
        clean_staging_directory: d.bool(f, "clean_staging_directory"),
        inventory_file: d.opt_string(f, "inventory_file"),
        inventory_groups: d.strings(f, "inventory_groups"),
        galaxy_file: d.opt_string(f, "galaxy_file"),
        galaxy_command: d
            .opt_string(f, "galaxy_command")
            .unwrap_or_else(|| "ansible-galaxy".to_string()),
    }
}

/// Packer's `Prepare` checks.
pub fn validate(cfg: &AnsibleLocalConfig, d: &mut Decoder, pos: Pos) {
    match (&cfg.playbook_file, cfg.playbook_files.is_empty()) {
        (Some(_), false) => d.err(
            pos,
            "Either playbook_file or playbook_files can be specified, not both",
        ),
        (None, true) => d.err(
            pos,
            "Either playbook_file or playbook_files must be specified",
        ),
        _ => {}
    }
    if let Some(p) = &cfg.playbook_file {
        check_file(d, pos, "playbook_file", p);
    }
    for p in &cfg.playbook_files {
        check_file(d, pos, "playbook_files", p);
    }
    for (option, file) in [
        ("inventory_file", &cfg.inventory_file),
        ("galaxy_file", &cfg.galaxy_file),
    ] {
        if let Some(file) = file {
            check_file(d, pos, option, file);
        }
    }
    for (option, dir) in [
        ("playbook_dir", &cfg.playbook_dir),
        ("group_vars", &cfg.group_vars),
        ("host_vars", &cfg.host_vars),
    ] {
        if let Some(dir) = dir {
            check_dir(d, pos, option, dir);
        }
    }
    for p in &cfg.playbook_paths {
        check_dir(d, pos, "playbook_paths", p);
    }
    for p in &cfg.role_paths {
        check_dir(d, pos, "role_paths", p);
    }
}
