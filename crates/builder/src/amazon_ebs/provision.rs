//! Step 8: run the build's provisioners in order over its one connection. When one fails and the
//! template has an `error-cleanup-provisioner`, that runs next (before the instance is stopped), as in Packer.
//! After they succeed, `ssh_clear_authorized_keys` removes bake's temporary public key from the user's and
//! root's `authorized_keys`, so the image does not carry it.

use super::state::{Ctx, State};
use async_trait::async_trait;
use bakery_core::pipeline::{Step, StepError};
use bakery_provision::{ProvisionContext, run_provisioner};
use bakery_template::ProvisionerConfig;

/// Runs the provisioners.
pub struct Provision;

/// One provisioner, as the dry run shows it.
fn describe(p: &ProvisionerConfig) -> String {
    match p {
        ProvisionerConfig::Shell(s) => match &s.inline {
            Some(inline) => format!("shell: {} inline command(s)", inline.len()),
            None => format!("shell: {}", s.scripts.join(", ")),
        },
        ProvisionerConfig::File(f) => format!(
            "file: {} => {} ({})",
            if f.sources.is_empty() {
                "<content>".to_string()
            } else {
                f.sources.join(", ")
            },
            f.destination,
            f.direction
        ),
        ProvisionerConfig::ShellLocal(_) => "shell-local".to_string(),
        ProvisionerConfig::Ansible(a) => format!("ansible: {}", a.playbook_file),
        ProvisionerConfig::AnsibleLocal(a) => format!(
            "ansible-local: {}",
            a.playbook_file
                .clone()
                .unwrap_or_else(|| a.playbook_files.join(", "))
        ),
        ProvisionerConfig::Goss(g) => format!("goss: {} => {}", g.tests.join(", "), g.remote_path),
    }
}

#[async_trait]
impl Step<Ctx, State> for Provision {
    fn name(&self) -> &'static str {
        "provision"
    }

    async fn plan(&self, cx: &Ctx, _st: &mut State) -> Result<Vec<String>, StepError> {
        Ok(cx
            .build
            .provisioners
            .iter()
            .enumerate()
            .map(|(i, p)| format!("provisioner {}: {}", i + 1, describe(p)))
            .collect())
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        self.provision(cx, st).await?;
        clear_authorized_keys(cx, st).await;
        Ok(())
    }
}

/// The commands that remove the line holding `key_body` (a base64 public key, so `|` cannot occur in
/// it) from the user's and root's `authorized_keys`, keeping the files' owners and modes.
pub fn clear_commands(key_body: &str) -> [String; 2] {
    [
        format!("sed -i '\\|{key_body}|d' ~/.ssh/authorized_keys"),
        format!("sudo -n sed -i '\\|{key_body}|d' /root/.ssh/authorized_keys"),
    ]
}

/// `ssh_clear_authorized_keys`: with a temporary key pair, removes its public key from the instance.
/// As in Packer, a failure is reported and does not fail the build (the key pair is deleted anyway).
async fn clear_authorized_keys(cx: &Ctx, st: &State) {
    if !cx.cfg.comm.ssh_clear_authorized_keys || st.temporary_key_pair.is_none() {
        return;
    }
    let (Some(comm), Some(super::state::SshKey::Private { pem, .. })) =
        (st.comm.as_ref(), st.key.as_ref())
    else {
        return;
    };
    let Some(body) = bakery_ssh::public_key_body(pem) else {
        cx.ui.error(
            &cx.name,
            "ssh_clear_authorized_keys: cannot read the temporary key's public half",
        );
        return;
    };
    cx.ui.say(
        &cx.name,
        "Trying to remove ephemeral keys from authorized_keys files",
    );
    for command in clear_commands(&body) {
        let mut output = (Vec::new(), Vec::new());
        match comm.exec(&command, &mut output).await {
            Ok(status) if status.success() => {}
            Ok(status) => cx.ui.error(
                &cx.name,
                &format!(
                    "Error cleaning up authorized_keys ({status}); please clean up keys manually: {}",
                    output.1.join(" ")
                ),
            ),
            Err(e) => cx.ui.error(
                &cx.name,
                &format!("Error cleaning up authorized_keys; please clean up keys manually: {e}"),
            ),
        }
    }
}

impl Provision {
    async fn provision(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        if cx.build.provisioners.is_empty() {
            return Ok(());
        }
        let Some(comm) = st.comm.as_mut() else {
            return Err(StepError::msg(
                "provisioners need a communicator (communicator is \"none\")",
            ));
        };
        let mut pcx = ProvisionContext {
            comm,
            ui: &cx.ui,
            build_name: cx.name.clone(),
            build_type: cx.build.builder_type.clone(),
            late: st.late.clone(),
            cancel: cx.cancel.clone(),
        };
        for p in &cx.build.provisioners {
            if let Err(e) = run_provisioner(p, &mut pcx).await {
                if cx.cancel.is_cancelled() {
                    return Err(StepError::Cancelled);
                }
                let msg = e.to_string();
                if cx.error_cleanup
                    && let Some(ecp) = &cx.build.error_cleanup_provisioner
                {
                    cx.ui.say(&cx.name, "Provisioning step had errors: Running the cleanup provisioner, if present...");
                    if let Err(e2) = run_provisioner(ecp, &mut pcx).await {
                        cx.ui
                            .error(&cx.name, &format!("error-cleanup-provisioner failed: {e2}"));
                    }
                }
                return Err(StepError::msg(msg));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ssh_clear_authorized_keys`: the user's command, run by a real shell on a real file, removes
    /// the temporary key's line and nothing else, and keeps the file's mode.
    #[test]
    fn clear_commands_remove_exactly_the_temporary_key() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        let file = ssh.join("authorized_keys");
        let body = "AAAAC3NzaC1lZDI1NTE5AAAAIH+/tmp/Key+With/Slashes";
        std::fs::write(
            &file,
            format!("ssh-ed25519 AAAAotherkey user@a\nssh-ed25519 {body} bakery-temp\nssh-rsa AAAAthird x\n"),
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let [user, root] = clear_commands(body);
        assert!(root.starts_with("sudo -n sed -i") && root.contains("/root/.ssh/authorized_keys"));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&user)
            .env("HOME", home.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "ssh-ed25519 AAAAotherkey user@a\nssh-rsa AAAAthird x\n"
        );
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "ssh_clear_authorized_keys keeps the mode");
    }
}
