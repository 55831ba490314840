//! Step 4: how the build logs in. Either the template's own key (`ssh_keypair_name` +
//! `ssh_private_key_file`, `ssh_private_key_file` alone, `ssh_agent_auth`, `ssh_password`), or a temporary
//! EC2 key pair — ed25519 by default (Packer 1.6.6 defaults to RSA, which newer OpenSSH servers refuse
//! with SHA-1 signatures), `temporary_key_pair_type: rsa` honoured. The temporary key pair is always
//! deleted; its private key lives in memory only, except under `-debug` (`ec2_<build>.pem`, mode 0600).

use super::state::{Ctx, SshKey, State};
use crate::ec2::tag_spec;
use crate::resource::Kind;
use async_trait::async_trait;
use aws_sdk_ec2::types::{KeyType, ResourceType};
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::{Outcome, Step, StepError};

/// Sets up SSH credentials.
#[derive(Default)]
pub struct KeyPair {
    created: Option<String>,
    debug_file: Option<std::path::PathBuf>,
}

fn expand_home(p: &str) -> std::path::PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => std::path::PathBuf::from(p),
    }
}

#[async_trait]
impl Step<Ctx, State> for KeyPair {
    fn name(&self) -> &'static str {
        "key-pair"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        let c = &cx.cfg.comm;
        let given_name = c.ssh_keypair_name.clone().filter(|s| !s.is_empty());
        if let Some(file) = c.ssh_private_key_file.as_deref().filter(|s| !s.is_empty()) {
            let path = expand_home(file);
            let pem = std::fs::read_to_string(&path).map_err(|e| {
                StepError::msg(format!("ssh_private_key_file {}: {e}", path.display()))
            })?;
            cx.ui.say(
                &cx.name,
                &format!("Using existing SSH private key {}", path.display()),
            );
            st.key = Some(SshKey::Private {
                key_name: given_name,
                pem,
            });
            return Ok(());
        }
        if c.ssh_agent_auth {
            cx.ui.say(&cx.name, "Using SSH agent authentication");
            st.key = Some(SshKey::Agent {
                key_name: given_name,
            });
            return Ok(());
        }
        if let Some(pw) = c.ssh_password.clone().filter(|s| !s.is_empty()) {
            st.key = Some(SshKey::Password(pw));
            return Ok(());
        }
        let name = c
            .temporary_key_pair_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| cx.temp_name());
        let key_type = match c.temporary_key_pair_type.as_str() {
            "rsa" => KeyType::Rsa,
            _ => KeyType::Ed25519,
        };
        cx.ui
            .say(&cx.name, &format!("Creating temporary keypair: {name}"));
        let out = cx
            .clients
            .ec2
            .create_key_pair()
            .key_name(&name)
            .key_type(key_type)
            .tag_specifications(tag_spec(
                ResourceType::KeyPair,
                &cx.ownership_tags("temporary-key-pair"),
            ))
            .send()
            .await
            .aws("CreateKeyPair")?;
        cx.created(Kind::KeyPair, cx.region(), &name);
        self.created = Some(name.clone());
        let pem = out
            .key_material()
            .ok_or_else(|| StepError::msg("CreateKeyPair returned no key material"))?
            .to_string();
        if cx.debug {
            let path = std::path::PathBuf::from(format!("ec2_{}.pem", cx.name.replace('/', "_")));
            write_private(&path, &pem)
                .map_err(|e| StepError::msg(format!("{}: {e}", path.display())))?;
            cx.ui.message(
                &cx.name,
                &format!("Saving key for debug purposes: {}", path.display()),
            );
            self.debug_file = Some(path);
        }
        st.key = Some(SshKey::Private {
            key_name: Some(name),
            pem,
        });
        Ok(())
    }

    async fn cleanup(&mut self, cx: &Ctx, _st: &mut State, _o: Outcome) -> Result<(), StepError> {
        let Some(name) = self.created.take() else {
            return Ok(());
        };
        cx.ui.say(&cx.name, "Deleting temporary keypair...");
        Kind::KeyPair
            .remove(&cx.clients.ec2, &name, &cx.cancel_cleanup)
            .await?;
        cx.removed(Kind::KeyPair, cx.region(), &name);
        Ok(())
    }
}

/// Writes a private key readable by its owner only (created 0600, never widened).
pub fn write_private(path: &std::path::Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(pem.as_bytes())
}
