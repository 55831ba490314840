//! Step 4: how the build logs in. Either the template's own key (`ssh_keypair_name` +
//! `ssh_private_key_file`, `ssh_private_key_file` alone, `ssh_agent_auth`, `ssh_password`), or a temporary
//! EC2 key pair — ed25519 by default (Packer 1.6.6 defaults to RSA, which newer OpenSSH servers refuse
//! with SHA-1 signatures), `temporary_key_pair_type: rsa` honoured. The temporary key pair is always
//! deleted; its private key lives in memory only, except under `-debug` (`ec2_<build>.pem`, mode 0600).

use super::state::{Ctx, SshKey, State};
use crate::resource::Kind;
use async_trait::async_trait;
use aws_sdk_ec2::types::{KeyType, ResourceType};
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::{Outcome, Step, StepError};
use bakery_core::tags::ec2_tag_spec;

/// Sets up SSH credentials.
#[derive(Default)]
pub struct KeyPair {
    debug_file: Option<std::path::PathBuf>,
}

fn expand_home(p: &str) -> std::path::PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => std::path::PathBuf::from(p),
    }
}

/// How the build logs in, as the template says.
#[derive(Debug, PartialEq)]
enum Login {
    /// `ssh_private_key_file`, with `ssh_keypair_name` when given.
    KeyFile(std::path::PathBuf, Option<String>),
    /// `ssh_agent_auth`, with `ssh_keypair_name` when given.
    Agent(Option<String>),
    /// `ssh_password`.
    Password(String),
    /// A temporary key pair of this name and type.
    Temporary(String, KeyType),
    /// `communicator: none`: no connection, so no key (as Packer: "Not using temporary keypair"); the
    /// instance still gets `ssh_keypair_name` when given.
    NoConnection(Option<String>),
}

fn login(cx: &Ctx) -> Login {
    login_from(&cx.cfg.comm, || cx.temp_name())
}

/// [`login`] from the communicator options; `temp_name` names a temporary key pair when the template
/// does not.
fn login_from(
    c: &bakery_template::schema::amazon_ebs::CommunicatorConfig,
    temp_name: impl FnOnce() -> String,
) -> Login {
    let given_name = c.ssh_keypair_name.clone().filter(|s| !s.is_empty());
    if c.communicator == "none" {
        return Login::NoConnection(given_name);
    }
    if let Some(file) = c.ssh_private_key_file.as_deref().filter(|s| !s.is_empty()) {
        return Login::KeyFile(expand_home(file), given_name);
    }
    if c.ssh_agent_auth {
        return Login::Agent(given_name);
    }
    if let Some(pw) = c.ssh_password.clone().filter(|s| !s.is_empty()) {
        return Login::Password(pw);
    }
    let name = c
        .temporary_key_pair_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(temp_name);
    let key_type = match c.temporary_key_pair_type.as_str() {
        "rsa" => KeyType::Rsa,
        _ => KeyType::Ed25519,
    };
    Login::Temporary(name, key_type)
}

#[async_trait]
impl Step<Ctx, State> for KeyPair {
    fn name(&self) -> &'static str {
        "key-pair"
    }

    async fn plan(&self, cx: &Ctx, _st: &mut State) -> Result<Vec<String>, StepError> {
        let named = |n: &Option<String>| {
            n.as_deref()
                .map(|n| format!(", key pair {n}"))
                .unwrap_or_default()
        };
        Ok(vec![match login(cx) {
            Login::KeyFile(path, name) => {
                format!("SSH: private key {}{}", path.display(), named(&name))
            }
            Login::Agent(name) => format!("SSH: agent authentication{}", named(&name)),
            Login::Password(_) => "SSH: password".to_string(),
            Login::NoConnection(name) => {
                format!("no connection (communicator none){}", named(&name))
            }
            Login::Temporary(name, key_type) => format!(
                "would create in {}: temporary key pair {name} ({})",
                cx.region(),
                key_type.as_str()
            ),
        }])
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        let (name, key_type) = match login(cx) {
            Login::KeyFile(path, key_name) => {
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    StepError::msg(format!("ssh_private_key_file {}: {e}", path.display()))
                })?;
                cx.ui.say(
                    &cx.name,
                    &format!("Using existing SSH private key {}", path.display()),
                );
                st.key = Some(SshKey::Private { key_name, pem });
                return Ok(());
            }
            Login::Agent(key_name) => {
                cx.ui.say(&cx.name, "Using SSH agent authentication");
                st.key = Some(SshKey::Agent { key_name });
                return Ok(());
            }
            Login::Password(pw) => {
                st.key = Some(SshKey::Password(pw));
                return Ok(());
            }
            Login::NoConnection(key_name) => {
                cx.ui.say(&cx.name, "Not using temporary keypair");
                // No key material: only the key pair name the instance launches with.
                st.key = Some(SshKey::Agent { key_name });
                return Ok(());
            }
            Login::Temporary(name, key_type) => (name, key_type),
        };
        cx.ui
            .say(&cx.name, &format!("Creating temporary keypair: {name}"));
        let req = cx
            .clients
            .ec2
            .create_key_pair()
            .key_name(&name)
            .key_type(key_type)
            .tag_specifications(ec2_tag_spec(
                ResourceType::KeyPair,
                &cx.ownership_tags("temporary-key-pair"),
            ));
        let out = cx
            .create(Kind::KeyPair, cx.region(), None, async {
                req.send().await.aws("CreateKeyPair")
            })
            .await?;
        cx.created(Kind::KeyPair, cx.region(), &name);
        st.temporary_key_pair = Some(name.clone());
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

    async fn cleanup(&mut self, cx: &Ctx, st: &mut State, _o: Outcome) -> Result<(), StepError> {
        // `-debug`'s copy of the key goes with the key pair, as in Packer.
        if let Some(path) = self.debug_file.take()
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            cx.ui.error(
                &cx.name,
                &format!("Error removing debug key {}: {e}", path.display()),
            );
        }
        delete_temporary(cx, st).await
    }
}

/// Deletes the temporary key pair, if there is one left (the AMI step may have released it already).
pub async fn delete_temporary(cx: &Ctx, st: &mut State) -> Result<(), StepError> {
    let Some(name) = st.temporary_key_pair.clone() else {
        return Ok(());
    };
    cx.ui.say(&cx.name, "Deleting temporary keypair...");
    Kind::KeyPair
        .remove(&cx.clients, &name, &cx.cancel_cleanup)
        .await?;
    cx.removed(Kind::KeyPair, cx.region(), &name);
    st.temporary_key_pair = None;
    Ok(())
}

/// Writes a private key readable by its owner only: a new file created 0600 (O_CREAT|O_EXCL, which never
/// follows a symlink), after removing an earlier regular file of that name; a symlink there is refused.
pub fn write_private(path: &std::path::Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "is a symbolic link; refusing to write a private key through it",
            ));
        }
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(pem.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login_for(extra: &str) -> Login {
        let cfg = crate::amazon_ebs::state::test_config(extra);
        login_from(&cfg.comm, || "packer_temp".into())
    }

    /// ssh_private_key_file (with ssh_keypair_name), ssh_agent_auth, ssh_password, else a temporary key.
    #[test]
    fn the_login_follows_the_template() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        std::fs::write(&key, "PEM").unwrap();
        assert_eq!(
            login_for(&format!(
                r#","ssh_private_key_file":"{}","ssh_keypair_name":"mine""#,
                key.display()
            )),
            Login::KeyFile(key.clone(), Some("mine".into()))
        );
        assert_eq!(
            login_for(r#","ssh_agent_auth":true,"ssh_keypair_name":"mine""#),
            Login::Agent(Some("mine".into()))
        );
        assert_eq!(
            login_for(r#","ssh_password":"pw""#),
            Login::Password("pw".into())
        );
        assert_eq!(
            login_for(""),
            Login::Temporary("packer_temp".into(), KeyType::Ed25519)
        );
        // communicator none: no connection, no temporary key.
        assert_eq!(
            login_for(r#","communicator":"none""#),
            Login::NoConnection(None)
        );
    }

    /// `-debug`'s key file: 0600 even where a wider file was, never through a symlink.
    #[test]
    fn the_debug_key_is_private_and_never_follows_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ec2_amazon-ebs.pem");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, "PEM").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "PEM");
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link.pem");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write_private(&link, "PEM").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
