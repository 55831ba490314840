//! `ansible-local`: the playbooks, their directory, roles, variables and an inventory are uploaded to a
//! staging directory on the instance over the build's connection, and `ansible-playbook` runs there
//! (`-c local`), with Packer's commands:
//!
//! ```text
//! mkdir -p 'STAGING'
//! cd STAGING && ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook STAGING/site.yml --extra-vars "packer_build_name=NAME packer_builder_type=TYPE packer_http_addr=ADDR -o IdentitiesOnly=yes" EXTRA -c local -i STAGING/INVENTORY
//! rm -rf 'STAGING'        (clean_staging_directory)
//! ```

use std::path::Path;

use bakery_ssh::quote::shell_quote;
use bakery_template::schema::AnsibleLocalConfig;

use crate::context::ProvisionContext;
use crate::error::ProvisionError;
use crate::sink::UiSink;

const P: &str = "ansible-local";

/// What Packer 1.6.6 passes as `packer_http_addr` for a builder without an HTTP server (amazon-ebs).
const HTTP_ADDR_NOT_IMPLEMENTED: &str = "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER";

/// Runs one `ansible-local` provisioner.
pub(crate) async fn run(
    cfg: &AnsibleLocalConfig,
    cx: &mut ProvisionContext<'_>,
) -> Result<(), ProvisionError> {
    let build = cx.build_name.clone();
    let ui = cx.ui;
    let staging = cfg.staging_directory.trim_end_matches('/').to_string();
    let staging = if staging.is_empty() {
        "/".to_string()
    } else {
        staging
    };
    let join = |rel: &str| format!("{staging}/{rel}");
    ui.say(&build, "Provisioning with Ansible...");

    if let Some(dir) = &cfg.playbook_dir {
        ui.message(
            &build,
            "Uploading Playbook directory to Ansible staging directory...",
        );
        upload_dir(cx, dir, &staging)
            .await
            .map_err(|e| wrap("Error uploading playbook_dir directory", e))?;
    } else {
        ui.message(&build, "Creating Ansible staging directory...");
        create_dir(cx, &staging)
            .await
            .map_err(|e| wrap("Error creating staging directory", e))?;
    }

    // The playbooks, as paths under the staging directory.
    let mut playbooks: Vec<String> = Vec::new();
    if let Some(file) = &cfg.playbook_file {
        ui.message(&build, "Uploading main Playbook file...");
        let dst = join(&base_name(file));
        upload_file(cx, file, &dst)
            .await
            .map_err(|e| wrap("Error uploading main playbook", e))?;
        playbooks.push(dst);
    } else {
        let dir = cfg.playbook_dir.as_ref().map(|d| absolute(d));
        for file in &cfg.playbook_files {
            let abs = absolute(file);
            if let Some(rel) = dir.as_ref().and_then(|d| abs.strip_prefix(d.as_str())) {
                // Already uploaded with playbook_dir.
                playbooks.push(format!("{staging}{rel}"));
                continue;
            }
            ui.message(&build, &format!("Uploading playbook file: {abs}"));
            let remote = format!("{staging}{abs}");
            let remote_dir = remote
                .rsplit_once('/')
                .map_or(staging.clone(), |(d, _)| d.to_string());
            create_dir(cx, &remote_dir)
                .await
                .map_err(|e| wrap(&format!("Error uploading playbook file: {abs}"), e))?;
            upload_file(cx, &abs, &remote)
                .await
                .map_err(|e| wrap(&format!("Error uploading playbook: {abs}"), e))?;
            playbooks.push(remote);
        }
    }

    // The inventory: the given file, or one made here (uploaded from memory).
    let inventory = match &cfg.inventory_file {
        Some(file) => {
            ui.message(&build, "Uploading inventory file...");
            let dst = join(&base_name(file));
            upload_file(cx, file, &dst)
                .await
                .map_err(|e| wrap("Error uploading inventory file", e))?;
            dst
        }
        None => {
            let text = if cfg.inventory_groups.is_empty() {
                "127.0.0.1".to_string()
            } else {
                cfg.inventory_groups
                    .iter()
                    .map(|g| format!("[{g}]\n127.0.0.1\n"))
                    .collect()
            };
            let dst = join(&format!(
                "packer-provisioner-ansible-local{}",
                bakery_template::schema::shell::random_below(999_999_999)
            ));
            ui.message(&build, "Uploading inventory file...");
            cx.comm
                .upload_bytes(text.as_bytes(), &dst, 0o644)
                .await
                .map_err(|e| {
                    ssh(
                        format!("Error uploading inventory file: uploading to {dst}"),
                        e,
                    )
                })?;
            dst
        }
    };

    let galaxy_remote = match &cfg.galaxy_file {
        Some(file) => {
            ui.message(&build, "Uploading galaxy file...");
            let dst = join(&base_name(file));
            upload_file(cx, file, &dst)
                .await
                .map_err(|e| wrap("Error uploading galaxy file", e))?;
            Some(dst)
        }
        None => None,
    };

    for (what, dir, name) in [
        ("group_vars", &cfg.group_vars, "group_vars"),
        ("host_vars", &cfg.host_vars, "host_vars"),
    ] {
        if let Some(src) = dir {
            ui.message(&build, &format!("Uploading {what} directory..."));
            upload_dir(cx, src, &join(name))
                .await
                .map_err(|e| wrap(&format!("Error uploading {what} directory"), e))?;
        }
    }
    if !cfg.role_paths.is_empty() {
        ui.message(&build, "Uploading role directories...");
        for src in &cfg.role_paths {
            upload_dir(cx, src, &join(&format!("roles/{}", base_name(src))))
                .await
                .map_err(|e| wrap("Error uploading roles", e))?;
        }
    }
    if !cfg.playbook_paths.is_empty() {
        ui.message(&build, "Uploading additional Playbooks...");
        let dir = join("playbooks");
        create_dir(cx, &dir)
            .await
            .map_err(|e| wrap("Error creating playbooks directory", e))?;
        for src in &cfg.playbook_paths {
            upload_dir(cx, src, &format!("{dir}/{}", base_name(src)))
                .await
                .map_err(|e| wrap("Error uploading playbooks", e))?;
        }
    }

    if let Some(galaxy) = &galaxy_remote {
        let command = format!(
            "cd {staging} && {} install -r {galaxy} -p {}",
            cfg.galaxy_command,
            join("roles")
        );
        ui.message(&build, &format!("Executing Ansible Galaxy: {command}"));
        let code = exec(cx, &command).await?;
        if code != 0 {
            return Err(invalid(format!(
                "Error executing Ansible: Error executing Ansible Galaxy: Non-zero exit status: {code}"
            )));
        }
    }

    let mut extra = format!(
        // Packer 1.6.6's text, with its stray `-o IdentitiesOnly=yes` (which ansible reads as one more
        // extra variable, `IdentitiesOnly`: harmless, kept so that the instance sees Packer's command).
        " --extra-vars \"packer_build_name={} packer_builder_type={} packer_http_addr={} -o IdentitiesOnly=yes\" ",
        build,
        cx.build_type,
        cx.late
            .build
            .get("PackerHTTPAddr")
            .map_or(HTTP_ADDR_NOT_IMPLEMENTED, String::as_str)
    );
    extra.push_str(&cfg.extra_arguments.join(" "));
    for playbook in &playbooks {
        let command = format!(
            "cd {staging} && {} {playbook}{extra} -c local -i {inventory}",
            cfg.command
        );
        ui.message(&build, &format!("Executing Ansible: {command}"));
        match exec(cx, &command).await? {
            0 => {}
            127 => {
                return Err(invalid(format!(
                    "Error executing Ansible: {} could not be found. Verify that it is available on the\nPATH after connecting to the machine.",
                    cfg.command
                )));
            }
            code => {
                return Err(invalid(format!(
                    "Error executing Ansible: Non-zero exit status: {code}"
                )));
            }
        }
    }

    if cfg.clean_staging_directory {
        ui.message(&build, "Removing staging directory...");
        ui.message(&build, &format!("Removing directory: {staging}"));
        let code = exec(cx, &format!("rm -rf {}", quote(&staging))).await?;
        if code != 0 {
            return Err(invalid(
                "Error removing staging directory: Non-zero exit status. See output above for more information."
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Packer's `'DIR'`, quoted properly when the path holds a `'`.
fn quote(path: &str) -> String {
    if path.contains('\'') {
        shell_quote(path)
    } else {
        format!("'{path}'")
    }
}

fn base_name(path: &str) -> String {
    Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

fn absolute(path: &str) -> String {
    std::path::absolute(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string())
}

/// Runs `command` on the instance, output live; its exit code (128 + signal when killed).
async fn exec(cx: &ProvisionContext<'_>, command: &str) -> Result<i64, ProvisionError> {
    let mut sink = UiSink::new(cx.ui, &cx.build_name);
    let status = cx
        .comm
        .exec(command, &mut sink)
        .await
        .map_err(|e| ssh(format!("running {command:?}"), e))?;
    Ok(match (status.code, &status.signal) {
        (Some(c), _) => i64::from(c),
        _ => -1,
    })
}

/// `mkdir -p 'DIR'` (Packer's `Creating directory: DIR`).
async fn create_dir(cx: &ProvisionContext<'_>, dir: &str) -> Result<(), ProvisionError> {
    cx.ui
        .message(&cx.build_name, &format!("Creating directory: {dir}"));
    if exec(cx, &format!("mkdir -p {}", quote(dir))).await? != 0 {
        return Err(invalid(
            "Non-zero exit status. See output above for more information.".into(),
        ));
    }
    Ok(())
}

/// The contents of local directory `src` into `dst` (created first), as Packer's `uploadDir`.
async fn upload_dir(cx: &ProvisionContext<'_>, src: &str, dst: &str) -> Result<(), ProvisionError> {
    create_dir(cx, dst).await?;
    let src = if src.ends_with('/') {
        src.to_string()
    } else {
        format!("{src}/")
    };
    cx.comm
        .upload_path(Path::new(&src), dst)
        .await
        .map_err(|e| ssh(format!("uploading {src} => {dst}"), e))?;
    Ok(())
}

async fn upload_file(
    cx: &ProvisionContext<'_>,
    src: &str,
    dst: &str,
) -> Result<(), ProvisionError> {
    cx.comm
        .upload_path(Path::new(src), dst)
        .await
        .map_err(|e| ssh(format!("Error uploading {src}"), e))?;
    Ok(())
}

fn wrap(context: &str, e: ProvisionError) -> ProvisionError {
    match e {
        ProvisionError::Invalid { message, .. } => invalid(format!("{context}: {message}")),
        ProvisionError::Ssh { what, source, .. } => ProvisionError::Ssh {
            provisioner: P,
            what: format!("{context}: {what}"),
            source,
        },
        other => other,
    }
}

fn invalid(message: String) -> ProvisionError {
    ProvisionError::Invalid {
        provisioner: P,
        message,
    }
}

fn ssh(what: String, source: bakery_ssh::SshError) -> ProvisionError {
    ProvisionError::Ssh {
        provisioner: P,
        what,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_quoting() {
        assert_eq!(base_name("dir/site.yml"), "site.yml");
        assert_eq!(base_name("roles/web/"), "web");
        assert_eq!(quote("/tmp/x y"), "'/tmp/x y'");
        assert_eq!(quote("/tmp/it's"), "'/tmp/it'\\''s'");
    }
}
