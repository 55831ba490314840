//! Host-key policy (see the crate docs) and the verifier shared by every
//! connection of one communicator, so that a key pinned on the first
//! connection is enforced on reconnects.

use std::sync::{Arc, Mutex};

use russh::keys::{Algorithm, HashAlg, PublicKey};

use crate::error::SshError;

/// Which server host keys to trust.
#[derive(Clone, Debug, Default)]
pub enum HostKeyPolicy {
    /// Trust on first use, for this run: the first key seen is pinned and any
    /// other key on a later connection (reconnect) is rejected.
    #[default]
    PinFirstSeen,
    /// The server must present one of these keys.
    Known(Vec<PublicKey>),
    /// The server must present a key whose SHA-256 fingerprint (`SHA256:…`, base64 without padding, as
    /// OpenSSH prints it) is one of these: e.g. the fingerprints the instance printed to its console
    /// ([`crate::ConsoleHostKeys`]). Every host-key algorithm is offered.
    Fingerprints(Vec<String>),
    /// Accept any key. `reason` (e.g. "ssh_host_key_check=false") is logged
    /// as a warning on every connection.
    AcceptAny {
        /// Why checking is disabled.
        reason: String,
    },
}

impl HostKeyPolicy {
    /// [`HostKeyPolicy::Known`] from OpenSSH public key lines
    /// (`ssh-ed25519 AAAA… comment`, as in `*.pub` or `ssh-keyscan` output
    /// without the host column).
    pub fn known_from_openssh<S: AsRef<str>>(lines: &[S]) -> Result<Self, SshError> {
        let mut keys = Vec::new();
        for line in lines {
            let line = line.as_ref().trim();
            let key = PublicKey::from_openssh(line)
                .map_err(|e| SshError::Invalid(format!("invalid host public key {line:?}: {e}")))?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(SshError::Invalid("no known host keys given".into()));
        }
        Ok(HostKeyPolicy::Known(keys))
    }
}

/// `ssh-ed25519 SHA256:…`, the way OpenSSH shows a key.
pub(crate) fn describe_key(key: &PublicKey) -> String {
    format!(
        "{} {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    )
}

/// `SHA256:…` of `key`, as OpenSSH prints it (base64 without padding).
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Checks presented keys against the policy; cloned into every connection's
/// handler, sharing the pinned key.
#[derive(Clone, Debug)]
pub(crate) struct HostKeyVerifier {
    policy: HostKeyPolicy,
    pinned: Arc<Mutex<Option<PublicKey>>>,
}

/// Why a presented key was rejected.
#[derive(Debug, Clone)]
pub(crate) struct Rejection {
    pub presented: String,
    pub expected: String,
}

impl HostKeyVerifier {
    pub fn new(policy: HostKeyPolicy) -> Self {
        HostKeyVerifier {
            policy,
            pinned: Arc::new(Mutex::new(None)),
        }
    }

    /// Accepts or rejects `presented`. Under `PinFirstSeen` with nothing pinned yet any key passes this
    /// check: it is pinned by [`HostKeyVerifier::confirm`] once authentication on that connection has
    /// succeeded, not before — a booting instance may still present the AMI's key, which cloud-init
    /// replaces in the same stage that installs the authorized key (so a key that let us in is final).
    pub fn check(&self, presented: &PublicKey) -> Result<(), Rejection> {
        match &self.policy {
            HostKeyPolicy::AcceptAny { reason } => {
                tracing::warn!(key = %describe_key(presented), %reason, "host key not checked");
                Ok(())
            }
            HostKeyPolicy::Known(keys) => {
                if keys.iter().any(|k| k.key_data() == presented.key_data()) {
                    Ok(())
                } else {
                    Err(Rejection {
                        presented: describe_key(presented),
                        expected: format!(
                            "one of the known keys [{}]",
                            keys.iter().map(describe_key).collect::<Vec<_>>().join(", ")
                        ),
                    })
                }
            }
            HostKeyPolicy::Fingerprints(fingerprints) => {
                let presented_fp = fingerprint(presented);
                if fingerprints.iter().any(|f| f.trim() == presented_fp) {
                    Ok(())
                } else {
                    Err(Rejection {
                        presented: describe_key(presented),
                        expected: format!("one of the fingerprints [{}]", fingerprints.join(", ")),
                    })
                }
            }
            HostKeyPolicy::PinFirstSeen => {
                let pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
                match pinned.as_ref() {
                    None => Ok(()),
                    Some(k) if k.key_data() == presented.key_data() => Ok(()),
                    Some(k) => Err(Rejection {
                        presented: describe_key(presented),
                        expected: format!(
                            "the key pinned on first connection, {}",
                            describe_key(k)
                        ),
                    }),
                }
            }
        }
    }

    /// Under `PinFirstSeen`: pins `presented`, the key of a connection whose authentication succeeded,
    /// if nothing is pinned yet.
    pub fn confirm(&self, presented: &PublicKey) {
        if let HostKeyPolicy::PinFirstSeen = &self.policy {
            let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
            if pinned.is_none() {
                tracing::info!(key = %describe_key(presented), "pinned host key for this run");
                *pinned = Some(presented.clone());
            }
        }
    }

    /// Host-key algorithms to offer, most preferred first: restricted to the
    /// algorithms of the keys we would accept, so a server with several host
    /// keys presents one we can check.
    pub fn algorithms(&self, defaults: &[Algorithm]) -> Vec<Algorithm> {
        let acceptable: Vec<Algorithm> = match &self.policy {
            HostKeyPolicy::AcceptAny { .. } | HostKeyPolicy::Fingerprints(_) => {
                return defaults.to_vec();
            }
            HostKeyPolicy::Known(keys) => keys.iter().map(|k| k.algorithm()).collect(),
            HostKeyPolicy::PinFirstSeen => {
                let pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
                match pinned.as_ref() {
                    None => return defaults.to_vec(),
                    Some(k) => vec![k.algorithm()],
                }
            }
        };
        let offered: Vec<Algorithm> = defaults
            .iter()
            .filter(|d| acceptable.iter().any(|a| same_family(a, d)))
            .cloned()
            .collect();
        if offered.is_empty() {
            defaults.to_vec()
        } else {
            offered
        }
    }
}

/// RSA keys sign with any of the rsa-sha2-* / ssh-rsa algorithms.
fn same_family(key_alg: &Algorithm, offered: &Algorithm) -> bool {
    match (key_alg, offered) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::EcdsaCurve;

    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1+tiXSdjqaa6iO7wpqTFQEGvGUvv/vS0iIh6xEAK9M a";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqMGBj0TSIsUus9HkeBtZ/EVJgk+NiGoLlejFPbdsyE b";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMrDsMGTs8zkbDvcPlVvEahU8BbWC9aRYiNA3g17g0m27qZZzYgejqsAW3HZIt4y75dh7cq2GqwadBsYpwNScSI= c";

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    #[test]
    fn pin_first_seen_pins_after_authentication_and_rejects_a_change() {
        let v = HostKeyVerifier::new(HostKeyPolicy::PinFirstSeen);
        let reconnect = v.clone();
        // Before an authentication succeeded nothing is pinned: a booting instance's first key (B) may
        // still change.
        v.check(&key(ED_B)).unwrap();
        v.check(&key(ED_A)).unwrap();
        v.confirm(&key(ED_A));
        reconnect.check(&key(ED_A)).unwrap();
        let err = reconnect.check(&key(ED_B)).unwrap_err();
        assert!(err.expected.contains("pinned"), "{err:?}");
        assert!(err.presented.starts_with("ssh-ed25519 SHA256:"), "{err:?}");
    }

    #[test]
    fn comments_do_not_matter() {
        let v = HostKeyVerifier::new(HostKeyPolicy::known_from_openssh(&[ED_A]).unwrap());
        let other_comment = ED_A.replace(" a", " other@host");
        v.check(&key(&other_comment)).unwrap();
    }

    #[test]
    fn known_accepts_only_listed_keys() {
        let v = HostKeyVerifier::new(HostKeyPolicy::known_from_openssh(&[ED_A, ECDSA]).unwrap());
        v.check(&key(ECDSA)).unwrap();
        v.check(&key(ED_A)).unwrap();
        let err = v.check(&key(ED_B)).unwrap_err();
        assert!(err.expected.contains("known keys"), "{err:?}");
    }

    #[test]
    fn accept_any_accepts() {
        let v = HostKeyVerifier::new(HostKeyPolicy::AcceptAny {
            reason: "test".into(),
        });
        v.check(&key(ED_A)).unwrap();
        v.check(&key(ED_B)).unwrap();
    }

    #[test]
    fn offered_algorithms_follow_the_policy() {
        let defaults = russh::Preferred::DEFAULT.key.to_vec();
        let known = HostKeyVerifier::new(HostKeyPolicy::known_from_openssh(&[ECDSA]).unwrap());
        assert_eq!(
            known.algorithms(&defaults),
            vec![Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256
            }]
        );

        let pin = HostKeyVerifier::new(HostKeyPolicy::PinFirstSeen);
        assert_eq!(pin.algorithms(&defaults), defaults);
        pin.check(&key(ED_A)).unwrap();
        assert_eq!(
            pin.algorithms(&defaults),
            defaults,
            "not pinned before authentication"
        );
        pin.confirm(&key(ED_A));
        assert_eq!(pin.algorithms(&defaults), vec![Algorithm::Ed25519]);
    }

    #[test]
    fn fingerprints_accept_only_listed_keys_and_say_what_was_expected() {
        let ed_a = fingerprint(&key(ED_A));
        let ecdsa = fingerprint(&key(ECDSA));
        let v = HostKeyVerifier::new(HostKeyPolicy::Fingerprints(vec![
            ed_a.clone(),
            ecdsa.clone(),
        ]));
        v.check(&key(ED_A)).unwrap();
        v.check(&key(ECDSA)).unwrap();
        let err = v.check(&key(ED_B)).unwrap_err();
        assert_eq!(err.presented, describe_key(&key(ED_B)));
        assert_eq!(
            err.expected,
            format!("one of the fingerprints [{ed_a}, {ecdsa}]")
        );
        // Nothing is pinned: the same list decides every connection, and every algorithm is offered.
        v.confirm(&key(ED_A));
        assert!(v.check(&key(ED_B)).is_err());
        let defaults = russh::Preferred::DEFAULT.key.to_vec();
        assert_eq!(v.algorithms(&defaults), defaults);
    }

    #[test]
    fn bad_known_key_is_an_error() {
        assert!(HostKeyPolicy::known_from_openssh(&["ssh-ed25519 notbase64"]).is_err());
        assert!(HostKeyPolicy::known_from_openssh::<&str>(&[]).is_err());
    }
}
