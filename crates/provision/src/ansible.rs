//! `ansible`: `ansible-playbook` runs on this machine against the instance, as Packer's ansible
//! provisioner runs it with `use_proxy: false`. bakery never runs Packer's local SSH proxy: ansible's own
//! SSH client connects to the instance with the build's address, port and user, the build's private key
//! (a temporary 0600 file) and the host key bake pinned (a temporary known_hosts file, checked strictly).
//!
//! The command line is Packer's: `-e packer_build_name="NAME" -e packer_builder_type=TYPE
//! --ssh-extra-args '-o IdentitiesOnly=yes'`, then bakery's `--ssh-common-args` with the host key
//! options, `extra_arguments`, `-e ansible_ssh_private_key_file=KEY`, `-i INVENTORY PLAYBOOK`; the
//! environment is this process's, `ANSIBLE_HOST_KEY_CHECKING=True`, `ansible_env_vars`, then
//! `ANSIBLE_SCP_IF_SSH=True` (unless `use_sftp`). The key file, known_hosts file and (unless
//! `keep_inventory_file`) the inventory are removed when the provisioner ends, however it ends.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use bakery_core::ui::Stream;
use bakery_ssh::Auth;
use bakery_template::engine::go_quote;
use bakery_template::late::LateContext;
use bakery_template::schema::AnsibleConfig;
use bakery_template::schema::ansible::DEFAULT_INVENTORY_TEMPLATE;
use tokio::process::Command;

use crate::context::ProvisionContext;
use crate::error::ProvisionError;
use crate::shell_local::{GroupKiller, pump};
use crate::sink::UiSink;

const P: &str = "ansible";

/// Where ansible connects, as the build's communicator does.
struct Target {
    host: String,
    port: u16,
    user: String,
    auth: Auth,
    host_key: Option<String>,
}

/// Runs one `ansible` provisioner.
pub(crate) async fn run(
    cfg: &AnsibleConfig,
    cx: &mut ProvisionContext<'_>,
) -> Result<(), ProvisionError> {
    let ui = cx.ui;
    let build = cx.build_name.clone();
    ui.say(&build, "Provisioning with Ansible...");
    let late = cx.late_context();
    let render_all = |field: &str, list: &[bakery_template::late::LateTemplate]| {
        list.iter()
            .enumerate()
            .map(|(i, t)| {
                t.render(&late).map_err(|e| ProvisionError::Render {
                    provisioner: P,
                    field: format!("{field}[{i}]"),
                    message: e.message,
                })
            })
            .collect::<Result<Vec<String>, _>>()
    };
    let env_vars = render_all("ansible_env_vars", &cfg.ansible_env_vars)?;
    let extra_arguments = render_all("extra_arguments", &cfg.extra_arguments)?;
    let mut env: Vec<(String, String)> = Vec::new();
    env.push(("ANSIBLE_HOST_KEY_CHECKING".into(), "True".into()));
    for kv in &env_vars {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(invalid(format!(
                "ansible_env_vars: {kv:?} is not in the format KEY=VALUE"
            )));
        };
        env.push((k.to_string(), v.to_string()));
    }
    if !cfg.use_sftp {
        env.push(("ANSIBLE_SCP_IF_SSH".into(), "True".into()));
    }
    if env
        .iter()
        .rev()
        .find(|(k, _)| k == "ANSIBLE_HOST_KEY_CHECKING")
        .is_some_and(|(_, v)| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "false" | "no" | "0" | "off" | "n" | "f"
            )
        })
    {
        ui.error(
            &build,
            "Warning: ansible_env_vars sets ANSIBLE_HOST_KEY_CHECKING off: ansible will not insist on the \
             host key bake pinned for the instance",
        );
    }

    if !cfg.skip_version_check {
        version_check(&cfg.command, &env).await?;
    }

    let target = target(cx)?;
    let user = cfg.user.clone().unwrap_or_else(|| target.user.clone());
    ui.message(
        &build,
        "Not using Proxy adapter for Ansible run:\n\tUsing ssh keys from Packer communicator...",
    );

    // The key and known_hosts files live in a private directory, removed when this function returns
    // (or its future is dropped: a timeout, Ctrl-C).
    let private = private_dir()?;
    let key_file = match &target.auth {
        Auth::PrivateKey(pem) => Some(write_private(&private.path().join("ansible-key"), pem)?),
        Auth::Agent => None,
        Auth::Password(_) if has_arg("ansible_password", &extra_arguments) => None,
        Auth::Password(_) => {
            return Err(invalid(
                "the build logs in with ssh_password, which bakery does not hand to ansible (Packer's proxy \
                 would): log in with a key (the temporary key pair, ssh_private_key_file or ssh_agent_auth), or \
                 pass ansible's own password in extra_arguments (-e ansible_password=...)"
                    .into(),
            ));
        }
    };
    let known_hosts = match &target.host_key {
        Some(line) => {
            let path = private.path().join("known_hosts");
            let entry = if target.port == 22 {
                target.host.clone()
            } else {
                format!("[{}]:{}", target.host, target.port)
            };
            write_private(&path, &format!("{entry} {line}\n"))?;
            Some(path)
        }
        None => None,
    };

    // The inventory: as given, or generated (in inventory_directory, else the private directory; kept
    // with keep_inventory_file, then outside the private directory).
    let mut _inventory_file = None;
    let inventory: String = match &cfg.inventory_file {
        Some(given) => given.clone(),
        None => {
            let text = inventory_text(cfg, &late, &target, &user)?;
            let dir: PathBuf = match (&cfg.inventory_directory, cfg.keep_inventory_file) {
                (Some(d), _) => PathBuf::from(d),
                (None, true) => std::env::temp_dir(),
                (None, false) => private.path().to_path_buf(),
            };
            let mut file = tempfile::Builder::new()
                .prefix("packer-provisioner-ansible")
                .tempfile_in(&dir)
                .map_err(|e| local("creating the inventory file in", dir.clone(), e))?;
            file.write_all(text.as_bytes())
                .and_then(|()| file.flush())
                .map_err(|e| local("writing the inventory file", file.path().into(), e))?;
            let path = file.path().display().to_string();
            if cfg.keep_inventory_file {
                file.keep().map_err(|e| {
                    local("keeping the inventory file", path.clone().into(), e.error)
                })?;
                ui.message(&build, &format!("Keeping the inventory file {path}"));
            } else {
                _inventory_file = Some(file);
            }
            path
        }
    };

    if let Some(galaxy) = &cfg.galaxy_file {
        galaxy_install(cfg, galaxy, &env, cx).await?;
    }

    let playbook = std::path::absolute(&cfg.playbook_file)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| cfg.playbook_file.clone());
    let args = command_args(
        cfg,
        &build,
        &cx.build_type,
        key_file.as_deref(),
        known_hosts.as_deref(),
        &extra_arguments,
        &inventory,
        &playbook,
    );
    let mut shown = vec![cfg.command.clone()];
    shown.extend(args.iter().cloned());
    ui.say(&build, &format!("Executing Ansible: {}", shown.join(" ")));
    let status = run_local(&cfg.command, &args, &env, cx).await?;
    if status != 0 {
        return Err(invalid(format!(
            "Error executing Ansible: Non-zero exit status: {}",
            go_exit(status)
        )));
    }
    Ok(())
}

/// The command line after the program, in Packer's order (bakery adds `--ssh-common-args` with the host
/// key options).
#[allow(clippy::too_many_arguments)]
fn command_args(
    cfg: &AnsibleConfig,
    build_name: &str,
    build_type: &str,
    key_file: Option<&Path>,
    known_hosts: Option<&Path>,
    extra_arguments: &[String],
    inventory: &str,
    playbook: &str,
) -> Vec<String> {
    let mut args = Vec::new();
    if !build_name.is_empty() {
        args.push("-e".to_string());
        args.push(format!("packer_build_name={}", go_quote(build_name)));
    }
    args.push("-e".into());
    args.push(format!("packer_builder_type={build_type}"));
    if key_file.is_some() {
        args.push("--ssh-extra-args".into());
        if cfg.ansible_ssh_extra_args.is_empty() {
            args.push("'-o IdentitiesOnly=yes'".into());
        } else {
            args.push(format!("'{}'", cfg.ansible_ssh_extra_args.concat()));
        }
    }
    if let Some(kh) = known_hosts {
        args.push("--ssh-common-args".into());
        args.push(format!(
            "-o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
            kh.display()
        ));
    }
    args.extend(extra_arguments.iter().cloned());
    if let Some(key) = key_file
        && !has_arg("ansible_password", &args)
    {
        args.push("-e".into());
        args.push(format!("ansible_ssh_private_key_file={}", key.display()));
    }
    args.push("-i".into());
    args.push(inventory.to_string());
    args.push(playbook.to_string());
    args
}

/// Packer's `checkArg`: some argument, split at `=`, has `name` as a part.
fn has_arg(name: &str, args: &[String]) -> bool {
    args.iter().any(|a| a.split('=').any(|p| p == name))
}

/// The generated inventory: the host line (`inventory_file_template`), then one `[group]` section with
/// it per group, then the empty groups.
fn inventory_text(
    cfg: &AnsibleConfig,
    late: &LateContext,
    target: &Target,
    user: &str,
) -> Result<String, ProvisionError> {
    let mut data = late.clone();
    data.data.insert("HostAlias".into(), cfg.host_alias.clone());
    data.data.insert("Host".into(), target.host.clone());
    data.data.insert("User".into(), user.to_string());
    data.data.insert("Port".into(), target.port.to_string());
    let host = match &cfg.inventory_file_template {
        Some(t) => t.render(&data),
        None => {
            let raw = DEFAULT_INVENTORY_TEMPLATE
                .replace("{{ .HostAlias }}", &cfg.host_alias)
                .replace("{{ .Host }}", &target.host)
                .replace("{{ .User }}", user)
                .replace("{{ .Port }}", &target.port.to_string());
            Ok(raw)
        }
    }
    .map_err(|e| ProvisionError::Render {
        provisioner: P,
        field: "inventory_file_template".into(),
        message: e.message,
    })?;
    let mut text = host.clone();
    for g in &cfg.groups {
        text.push_str(&format!("[{g}]\n{host}"));
    }
    for g in &cfg.empty_groups {
        text.push_str(&format!("[{g}]\n"));
    }
    Ok(text)
}

/// The build's connection, as ansible needs it.
fn target(cx: &ProvisionContext<'_>) -> Result<Target, ProvisionError> {
    let c = cx.comm.config();
    if c.bastion.is_some() {
        return Err(invalid(
            "the build connects through a bastion (ssh_bastion_host), which bakery does not hand to ansible \
             (Packer's proxy would carry ansible's connection over its own): build without a bastion, or use \
             ansible-local (docs/provisioners.md#ansible)"
                .into(),
        ));
    }
    Ok(Target {
        host: c.host.clone(),
        port: c.port,
        user: c.user.clone(),
        auth: c.auth.clone(),
        host_key: cx.comm.host_key_openssh(),
    })
}

/// A 0700 temporary directory for the key and known_hosts files.
fn private_dir() -> Result<tempfile::TempDir, ProvisionError> {
    let dir = tempfile::Builder::new()
        .prefix("bakery-ansible")
        .tempdir()
        .map_err(|e| local("creating a temporary directory in", std::env::temp_dir(), e))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| local("restricting", dir.path().into(), e))?;
    Ok(dir)
}

/// Writes `text` to a new 0600 file at `path`, never following a symbolic link nor reusing a file.
fn write_private(path: &Path, text: &str) -> Result<PathBuf, ProvisionError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| local("creating", path.into(), e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.flush())
        .map_err(|e| local("writing", path.into(), e))?;
    Ok(path.to_path_buf())
}

/// Packer's `getVersion`: `command --version` must run and print a version.
async fn version_check(command: &str, env: &[(String, String)]) -> Result<(), ProvisionError> {
    let out = Command::new(command)
        .arg("--version")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            invalid(format!(
                "Error running \"{command} --version\": {}",
                spawn_message(command, &e)
            ))
        })?;
    if !out.status.success() {
        return Err(invalid(format!(
            "Error running \"{command} --version\": {}",
            go_exit(out.status.code().map(i64::from).unwrap_or(-1))
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let found = text.split_whitespace().any(|w| {
        let w = w.trim_end_matches(']');
        let mut parts = w.split('.');
        parts
            .next()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && parts
                .next()
                .is_some_and(|p| p.bytes().next().is_some_and(|b| b.is_ascii_digit()))
    });
    if !found {
        return Err(invalid(format!(
            "Could not find {command} version in output:\n{text}"
        )));
    }
    Ok(())
}

/// Go's message for a command that cannot start.
fn spawn_message(command: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound && !command.contains('/') {
        format!(
            "exec: {}: executable file not found in $PATH",
            go_quote(command)
        )
    } else {
        format!("fork/exec {command}: {e}")
    }
}

/// Go's `exec.ExitError` text: `exit status 2` (`signal: killed` shows as -1 here).
fn go_exit(code: i64) -> String {
    if code < 0 {
        "signal: killed".into()
    } else {
        format!("exit status {code}")
    }
}

/// `galaxy_command install -r FILE` for roles and/or `collection install -r FILE`, as Packer decides from
/// the file's top-level keys.
async fn galaxy_install(
    cfg: &AnsibleConfig,
    galaxy: &str,
    env: &[(String, String)],
    cx: &ProvisionContext<'_>,
) -> Result<(), ProvisionError> {
    let text = std::fs::read_to_string(galaxy).map_err(|e| local("reading", galaxy.into(), e))?;
    let has = |key: &str| text.lines().any(|l| l.starts_with(key));
    let (roles, collections) = (has("roles:"), has("collections:"));
    let mut runs: Vec<Vec<String>> = Vec::new();
    if roles || !collections {
        let mut a = vec!["install".into(), "-r".into(), galaxy.to_string()];
        if cfg.galaxy_force_install {
            a.push("-f".into());
        }
        if let Some(p) = &cfg.roles_path {
            a.extend(["-p".into(), p.clone()]);
        }
        runs.push(a);
    }
    if collections {
        let mut a = vec![
            "collection".into(),
            "install".into(),
            "-r".into(),
            galaxy.to_string(),
        ];
        if cfg.galaxy_force_install {
            a.push("-f".into());
        }
        if let Some(p) = &cfg.collections_path {
            a.extend(["-p".into(), p.clone()]);
        }
        runs.push(a);
    }
    for args in runs {
        cx.ui.message(&cx.build_name, "Executing Ansible Galaxy");
        let code = run_local(&cfg.galaxy_command, &args, env, cx).await?;
        if code != 0 {
            return Err(invalid(format!(
                "Error executing Ansible: Error executing Ansible Galaxy: Non-zero exit status: {}",
                go_exit(code)
            )));
        }
    }
    Ok(())
}

/// Runs `program args` in its own process group with `env` added, stdout and stderr printed live as
/// Packer prints them (indented, through the masking UI); its exit code (-1 when killed by a signal).
/// Cancellation kills the whole process group.
async fn run_local(
    program: &str,
    args: &[String],
    env: &[(String, String)],
    cx: &ProvisionContext<'_>,
) -> Result<i64, ProvisionError> {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            invalid(format!(
                "Error executing Ansible: {}",
                spawn_message(program, &e)
            ))
        })?;
    let mut group = GroupKiller(child.id());
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let sink = UiSink::new(cx.ui, &cx.build_name);
    let waited = async {
        // Packer prints both streams as messages.
        tokio::join!(
            pump(stdout, Stream::Stdout, &sink),
            pump(stderr, Stream::Stdout, &sink)
        );
        child.wait().await
    };
    let status = tokio::select! {
        s = waited => s,
        _ = cx.cancel.cancelled() => return Err(ProvisionError::Cancelled { provisioner: P }),
    };
    group.0 = None;
    let status = status.map_err(|e| local("waiting for", program.into(), e))?;
    Ok(status.code().map(i64::from).unwrap_or(-1))
}

fn invalid(message: String) -> ProvisionError {
    ProvisionError::Invalid {
        provisioner: P,
        message,
    }
}

fn local(op: &'static str, path: PathBuf, source: std::io::Error) -> ProvisionError {
    ProvisionError::Local {
        provisioner: P,
        op,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_arg_splits_at_equals_like_packer() {
        assert!(has_arg(
            "ansible_password",
            &["-e".into(), "ansible_password=x".into()]
        ));
        assert!(!has_arg("ansible_password", &["-e".into(), "x=1".into()]));
    }

    #[test]
    fn go_exit_texts() {
        assert_eq!(go_exit(2), "exit status 2");
        assert_eq!(go_exit(-1), "signal: killed");
    }

    #[test]
    fn private_files_are_0600_and_never_follow_links() {
        let dir = private_dir().unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let key = write_private(&dir.path().join("k"), "secret").unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // An existing file (or a planted link) is never reused.
        assert!(write_private(&key, "again").is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(write_private(&link, "x").is_err());
        assert!(!dir.path().join("elsewhere").exists());
        let p = dir.path().to_path_buf();
        drop(dir);
        assert!(!p.exists(), "removed with its files");
    }
}
