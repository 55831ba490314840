//! The host keys an instance prints to its serial console on first boot.
//!
//! cloud-init's `keys_to_console` module (on by default in the images EC2 users build from) writes two
//! blocks to the console, each line usually behind a prefix (`ec2: `, or a kernel timestamp and the
//! process, `[   12.3] cloud-init[612]: ec2: `):
//!
//! ```text
//! -----BEGIN SSH HOST KEY FINGERPRINTS-----
//! 256 SHA256:Xy… root@ip-10-0-0-1 (ECDSA)
//! 256 SHA256:Ab… root@ip-10-0-0-1 (ED25519)
//! -----END SSH HOST KEY FINGERPRINTS-----
//! -----BEGIN SSH HOST KEY KEYS-----
//! ecdsa-sha2-nistp256 AAAA… root@ip-10-0-0-1
//! ssh-ed25519 AAAA… root@ip-10-0-0-1
//! -----END SSH HOST KEY KEYS-----
//! ```
//!
//! [`ConsoleHostKeys::parse`] reads them out of a whole console text (CR, noise and other processes' lines
//! in between are expected). Only **complete** blocks count (BEGIN … END): the console may be read while
//! cloud-init is still writing, and half a list would reject a genuine key. Fingerprints other than SHA-256
//! (old `ssh-keygen`s print MD5 `aa:bb:…`) are ignored.

use std::collections::BTreeSet;
use std::str::FromStr;

use russh::keys::PublicKey;
use russh::keys::ssh_key::Fingerprint;

use crate::host_keys::{HostKeyPolicy, fingerprint};

const FP_BEGIN: &str = "-----BEGIN SSH HOST KEY FINGERPRINTS-----";
const FP_END: &str = "-----END SSH HOST KEY FINGERPRINTS-----";
const KEYS_BEGIN: &str = "-----BEGIN SSH HOST KEY KEYS-----";
const KEYS_END: &str = "-----END SSH HOST KEY KEYS-----";

/// The host keys found in an instance's console output: SHA-256 fingerprints (from the fingerprint block,
/// and computed from the keys block's public keys), and the public keys themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleHostKeys {
    /// `SHA256:…` (base64 without padding, as OpenSSH prints it), sorted, without duplicates.
    pub fingerprints: BTreeSet<String>,
    /// The keys block's keys, in order, without duplicates.
    pub keys: Vec<PublicKey>,
}

#[derive(Clone, Copy, PartialEq)]
enum Block {
    None,
    Fingerprints,
    Keys,
}

impl ConsoleHostKeys {
    /// Reads every complete fingerprint and keys block of `console` (the decoded console output). Several
    /// blocks (the console of an instance that booted more than once) are merged.
    pub fn parse(console: &str) -> Self {
        let mut out = ConsoleHostKeys::default();
        let mut block = Block::None;
        let mut fingerprints: Vec<String> = Vec::new();
        let mut keys: Vec<PublicKey> = Vec::new();
        // A console line may end in CRLF, or carry a CR in the middle (progress output overwritten):
        // both end a line here.
        for line in console.split(['\n', '\r']) {
            if line.contains(FP_BEGIN) {
                block = Block::Fingerprints;
                fingerprints.clear();
            } else if line.contains(KEYS_BEGIN) {
                block = Block::Keys;
                keys.clear();
            } else if line.contains(FP_END) {
                if block == Block::Fingerprints {
                    out.fingerprints.extend(fingerprints.drain(..));
                }
                block = Block::None;
            } else if line.contains(KEYS_END) {
                if block == Block::Keys {
                    for key in keys.drain(..) {
                        out.fingerprints.insert(fingerprint(&key));
                        if !out.keys.iter().any(|k| k.key_data() == key.key_data()) {
                            out.keys.push(key);
                        }
                    }
                }
                block = Block::None;
            } else {
                match block {
                    Block::None => {}
                    Block::Fingerprints => fingerprints.extend(sha256_in(line)),
                    Block::Keys => keys.extend(key_in(line)),
                }
            }
        }
        out
    }

    /// True when no complete block was found (cloud-init has not printed them yet, or never will).
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    /// [`HostKeyPolicy::Fingerprints`] with every fingerprint found, or `None` if there is none.
    pub fn policy(&self) -> Option<HostKeyPolicy> {
        (!self.is_empty())
            .then(|| HostKeyPolicy::Fingerprints(self.fingerprints.iter().cloned().collect()))
    }
}

/// The SHA-256 fingerprint on a fingerprint line (`256 SHA256:… comment (ED25519)` behind any prefix),
/// normalised; `None` for noise and other hashes.
fn sha256_in(line: &str) -> Option<String> {
    line.split_whitespace()
        .filter(|w| w.starts_with("SHA256:"))
        .find_map(|w| Fingerprint::from_str(w).ok())
        .map(|f| f.to_string())
}

/// The public key on a keys line (`ssh-ed25519 AAAA… comment` behind any prefix); `None` for noise.
fn key_in(line: &str) -> Option<PublicKey> {
    let words: Vec<&str> = line.split_whitespace().collect();
    (0..words.len().saturating_sub(1)).find_map(|i| {
        let (alg, blob) = (words[i], words[i + 1]);
        let known =
            alg.starts_with("ssh-") || alg.starts_with("ecdsa-sha2-") || alg.starts_with("sk-");
        if !known {
            return None;
        }
        let key = PublicKey::from_openssh(&format!("{alg} {blob}")).ok()?;
        // The blob names its algorithm too: a line whose two disagree is not a key.
        (key.algorithm().as_str() == alg).then_some(key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1+tiXSdjqaa6iO7wpqTFQEGvGUvv/vS0iIh6xEAK9M";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMrDsMGTs8zkbDvcPlVvEahU8BbWC9aRYiNA3g17g0m27qZZzYgejqsAW3HZIt4y75dh7cq2GqwadBsYpwNScSI=";
    const OTHER: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqMGBj0TSIsUus9HkeBtZ/EVJgk+NiGoLlejFPbdsyE";

    fn fp(line: &str) -> String {
        fingerprint(&PublicKey::from_openssh(line).unwrap())
    }

    /// What cloud-init writes, each line behind `prefix`, with CRLF line ends.
    fn console(prefix: &str, fingerprints: bool, keys: bool) -> String {
        let mut lines = vec![
            "[    0.000000] Linux version 6.1.0-13-cloud-amd64 (debian-kernel@lists.debian.org)"
                .to_string(),
            "[   11.204511] cloud-init[612]: Cloud-init v. 22.4.2 running 'modules:final'"
                .to_string(),
        ];
        if fingerprints {
            lines.push(format!(
                "{prefix}#############################################################"
            ));
            lines.push(format!("{prefix}{FP_BEGIN}"));
            lines.push(format!(
                "{prefix}256 {} root@ip-10-0-0-1 (ECDSA)",
                fp(ECDSA)
            ));
            lines.push(format!("{prefix}256 {} root@ip-10-0-0-1 (ED25519)", fp(ED)));
            lines.push(format!("{prefix}{FP_END}"));
            lines.push(format!(
                "{prefix}#############################################################"
            ));
        }
        if keys {
            lines.push(format!("{prefix}{KEYS_BEGIN}"));
            lines.push(format!("{prefix}{ECDSA} root@ip-10-0-0-1"));
            lines.push(format!("{prefix}{ED} root@ip-10-0-0-1"));
            lines.push(format!("{prefix}{KEYS_END}"));
        }
        lines.push("[   12.9] cloud-init[612]: Cloud-init v. 22.4.2 finished".to_string());
        lines.join("\r\n") + "\r\n"
    }

    fn both() -> BTreeSet<String> {
        [fp(ECDSA), fp(ED)].into_iter().collect()
    }

    #[test]
    fn both_blocks_with_prefixes_and_crlf() {
        for prefix in ["", "ec2: ", "[   12.345678] cloud-init[612]: ec2: "] {
            let found = ConsoleHostKeys::parse(&console(prefix, true, true));
            assert_eq!(found.fingerprints, both(), "prefix {prefix:?}");
            assert_eq!(found.keys.len(), 2, "prefix {prefix:?}");
            assert!(found.fingerprints.iter().all(|f| !f.contains('\r')));
        }
    }

    #[test]
    fn either_block_alone_is_enough() {
        let only_fps = ConsoleHostKeys::parse(&console("ec2: ", true, false));
        assert_eq!(only_fps.fingerprints, both());
        assert!(only_fps.keys.is_empty());
        let only_keys = ConsoleHostKeys::parse(&console("ec2: ", false, true));
        assert_eq!(only_keys.fingerprints, both(), "computed from the keys");
        assert_eq!(only_keys.keys.len(), 2);
    }

    #[test]
    fn no_block_no_fingerprints() {
        let none = ConsoleHostKeys::parse(&console("ec2: ", false, false));
        assert!(none.is_empty());
        assert!(none.policy().is_none());
        assert!(ConsoleHostKeys::parse("").is_empty());
    }

    #[test]
    fn an_unfinished_block_does_not_count() {
        let full = console("ec2: ", true, false);
        let cut = &full[..full.find(FP_END).unwrap()];
        assert!(ConsoleHostKeys::parse(cut).is_empty(), "{cut}");
    }

    #[test]
    fn duplicates_are_merged_and_noise_is_skipped() {
        let text = format!(
            "{}{}ec2: {FP_BEGIN}\nec2: [  13.1] random: crng init done\nec2: 2048 MD5:aa:bb:cc root@x (RSA)\n\
             ec2: 256 {} root@x (ED25519)\nec2: 256 SHA256:not-base64! root@x (ECDSA)\nec2: {FP_END}\n",
            console("ec2: ", true, true),
            console("ec2: ", true, true),
            fp(OTHER)
        );
        let found = ConsoleHostKeys::parse(&text);
        let mut want = both();
        want.insert(fp(OTHER));
        assert_eq!(found.fingerprints, want);
        assert_eq!(found.keys.len(), 2, "the same keys twice are kept once");
        // The policy lists each fingerprint once.
        let Some(HostKeyPolicy::Fingerprints(fps)) = found.policy() else {
            panic!("a policy")
        };
        assert_eq!(fps.len(), 3);
    }

    #[test]
    fn a_key_whose_name_and_blob_disagree_is_not_a_key() {
        let blob = ED.split_whitespace().nth(1).unwrap();
        let text = format!("{KEYS_BEGIN}\nssh-rsa {blob} x\n{KEYS_END}\n");
        assert!(ConsoleHostKeys::parse(&text).is_empty());
    }
}
