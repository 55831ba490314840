//! Connection settings (the `ssh_*` options of a Packer template, already decoded).

use std::fmt;
use std::time::Duration;

use crate::host_keys::HostKeyPolicy;

/// How to authenticate as [`SshConfig::user`].
#[derive(Clone)]
pub enum Auth {
    /// A private key in OpenSSH (`-----BEGIN OPENSSH PRIVATE KEY-----`) or
    /// PKCS#1/PKCS#8 PEM form, unencrypted (`ssh_private_key_file`, or the
    /// temporary key pair bakery creates).
    PrivateKey(String),
    /// The keys of the running ssh-agent (`$SSH_AUTH_SOCK`, `ssh_agent_auth`).
    Agent,
    /// A password (`ssh_password`).
    Password(String),
}

impl fmt::Debug for Auth {
    /// Secrets stay secret: the key and the password are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::PrivateKey(_) => f.write_str("PrivateKey(<sensitive>)"),
            Auth::Agent => f.write_str("Agent"),
            Auth::Password(_) => f.write_str("Password(<sensitive>)"),
        }
    }
}

/// The base64 body of the public half of an unencrypted private key (OpenSSH or PEM), as it appears in an
/// `authorized_keys` line; `None` if the key cannot be read.
pub fn public_key_body(private_key: &str) -> Option<String> {
    let key = russh::keys::decode_secret_key(private_key, None).ok()?;
    let line = key.public_key().to_openssh().ok()?;
    line.split_whitespace().nth(1).map(str::to_owned)
}

/// A jump host (`ssh_bastion_host`, `ssh_bastion_port`, `ssh_bastion_username`,
/// `ssh_bastion_private_key_file` / `ssh_bastion_password` / `ssh_bastion_agent_auth`).
#[derive(Clone, Debug)]
pub struct Bastion {
    /// Host name or address of the bastion.
    pub host: String,
    /// Port of the bastion's sshd (Packer's default: 22).
    pub port: u16,
    /// User on the bastion.
    pub user: String,
    /// How to authenticate on the bastion.
    pub auth: Auth,
    /// Host-key policy for the bastion itself.
    pub host_keys: HostKeyPolicy,
}

/// Everything [`crate::Communicator::connect`] needs.
#[derive(Clone, Debug)]
pub struct SshConfig {
    /// `ssh_host`: address of the instance.
    pub host: String,
    /// `ssh_port` (default 22).
    pub port: u16,
    /// `ssh_username`.
    pub user: String,
    /// How to authenticate.
    pub auth: Auth,
    /// `ssh_timeout` (default 5 minutes): how long to keep trying to connect.
    pub timeout: Duration,
    /// `ssh_handshake_attempts` (default 10): how many failed handshakes or
    /// authentications (after TCP connected) are tolerated before giving up.
    pub handshake_attempts: u32,
    /// `pause_before_connecting` (default 0): wait this long before the first dial.
    pub pause_before_connecting: Duration,
    /// `ssh_keep_alive_interval` (default 5 s): send a keep-alive when the
    /// server has been silent this long; zero disables keep-alives.
    pub keepalive: Duration,
    /// `ssh_pty`: request a pseudo-terminal for every command (stderr is then
    /// merged into stdout by the remote terminal).
    pub pty: bool,
    /// `ssh_bastion_*`: connect through this jump host.
    pub bastion: Option<Bastion>,
    /// Which host keys to trust; see [`HostKeyPolicy`].
    pub host_keys: HostKeyPolicy,
}

impl SshConfig {
    /// Packer's defaults: port 22, 5 minute timeout, 10 handshake attempts,
    /// 5 s keep-alive, no pty, no bastion, pin the first host key seen.
    pub fn new(host: impl Into<String>, user: impl Into<String>, auth: Auth) -> Self {
        SshConfig {
            host: host.into(),
            port: 22,
            user: user.into(),
            auth,
            timeout: Duration::from_secs(300),
            handshake_attempts: 10,
            pause_before_connecting: Duration::ZERO,
            keepalive: Duration::from_secs(5),
            pty: false,
            bastion: None,
            host_keys: HostKeyPolicy::PinFirstSeen,
        }
    }

    /// `host:port` as shown in messages (IPv6 literals bracketed).
    pub(crate) fn address(&self) -> String {
        display_address(&self.host, self.port)
    }
}

pub(crate) fn display_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secrets() {
        let cfg = SshConfig::new("h", "u", Auth::Password("hunter2".into()));
        let text = format!("{cfg:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<sensitive>"), "{text}");
        let key = format!("{:?}", Auth::PrivateKey("-----BEGIN secret".into()));
        assert_eq!(key, "PrivateKey(<sensitive>)");
    }

    #[test]
    fn address_brackets_ipv6() {
        assert_eq!(display_address("::1", 22), "[::1]:22");
        assert_eq!(display_address("10.0.0.1", 2222), "10.0.0.1:2222");
    }
}
