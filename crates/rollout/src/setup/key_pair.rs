//! The environment's key pair: imported from `key_pair.public_key_file` when missing; an existing one with
//! another public key is a conflict setup refuses to resolve (checked before anything is created).

use super::Setup;
use crate::error::{AwsResultExt, RolloutError};
use aws_sdk_ec2::types::ResourceType;
use bakery_core::tags::ec2_tag_spec;
use std::path::Path;

/// The public key's type and base64 body: what identifies it (the comment does not).
fn key_identity(line: &str) -> Option<(String, String)> {
    let mut parts = line.split_whitespace();
    let kind = parts.next()?;
    let body = parts.next()?;
    if !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-")) {
        return None;
    }
    Some((kind.to_string(), body.to_string()))
}

/// The first key line of the public key file at `path` and its identity.
fn read_public_key(path: &Path) -> Result<(String, (String, String)), RolloutError> {
    let text = std::fs::read_to_string(path).map_err(|source| RolloutError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            source.kind(),
            format!(
                "{source} (key_pair.public_key_file; create one with `ssh-keygen -t ed25519 -N '' -f {}`)",
                path.with_extension("").display()
            ),
        ),
    })?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_default()
        .to_string();
    let Some(identity) = key_identity(&line) else {
        return Err(RolloutError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not an OpenSSH public key line (ssh-ed25519 AAAA... comment)",
            ),
        });
    };
    Ok((line, identity))
}

impl Setup<'_> {
    /// Compares the key pair with the public key file, imports it when missing.
    pub(super) async fn key_pair(&mut self) -> Result<(), RolloutError> {
        let Some(path) = self.cx.cfg.public_key_file.clone() else {
            return Ok(());
        };
        let name = self.cx.cfg.names.key_pair();
        let (line, want) = read_public_key(&path)?;
        let resource = format!("key pair {name}");
        // A key pair imported moments ago (a setup run again at once) may not be visible yet.
        let ec2 = &self.cx.clients.ec2;
        let found = bakery_core::propagation::retry_propagation(
            bakery_core::propagation::NOT_FOUND_CONFIRMATION,
            &self.cx.cancel,
            || async {
                ec2.describe_key_pairs()
                    .key_names(&name)
                    .include_public_key(true)
                    .send()
                    .await
                    .aws("DescribeKeyPairs")
            },
        )
        .await;
        match found {
            Ok(out) => {
                let have = out
                    .key_pairs()
                    .first()
                    .and_then(|k| k.public_key())
                    .and_then(key_identity);
                match have {
                    Some(h) if h == want => {
                        self.record(resource, "unchanged", format!("matches {}", path.display()))
                    }
                    Some(_) => {
                        return Err(RolloutError::SetupConflict(vec![format!(
                            "{resource} exists with a different public key than {}: replacing an environment's key pair is left to you (delete it first)",
                            path.display()
                        )]));
                    }
                    None => self.record(
                        resource,
                        "unchanged",
                        "exists (AWS did not return its public key to compare)".into(),
                    ),
                }
            }
            Err(e) if e.is_not_found() => {
                self.import_key_pair(&name, &line).await?;
                self.record(resource, "created", format!("imported {}", path.display()));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Imports `line` (an OpenSSH public key) as key pair `name`, tagged (not in a dry run).
    async fn import_key_pair(&self, name: &str, line: &str) -> Result<(), RolloutError> {
        if self.dry_run {
            return Ok(());
        }
        self.cx
            .clients
            .ec2
            .import_key_pair()
            .key_name(name)
            .public_key_material(aws_smithy_types::Blob::new(line.as_bytes()))
            .tag_specifications(ec2_tag_spec(
                ResourceType::KeyPair,
                &self.cx.tags_for("key-pair"),
            ))
            .send()
            .await
            .aws("ImportKeyPair")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_without_comments() {
        assert_eq!(
            key_identity("ssh-ed25519 AAAAC3Nz me@laptop"),
            key_identity("ssh-ed25519 AAAAC3Nz\n")
        );
        assert_ne!(
            key_identity("ssh-ed25519 AAAAC3Nz"),
            key_identity("ssh-ed25519 AAAAC3Ny")
        );
        assert_eq!(key_identity("-----BEGIN OPENSSH PRIVATE KEY-----"), None);
    }
}
