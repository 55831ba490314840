//! The communicator: how bakery connects to the builder instance (SSH, with its bastion, proxy and
//! tunnels; WinRM options are decoded and checked only).

use super::super::choice::{self, Choice, spelled};
use super::super::common::{expand_user, stat};
use super::renamed::Renamed;
use crate::decode::{Decoder, Fields};
use std::time::Duration;

/// The communicator's options. They sit at the top level of the builder.
#[derive(Debug, Clone, PartialEq)]
pub struct CommunicatorConfig {
    /// How bakery connects: `ssh` (default) or `none` (no connection, no key pair, no provisioners);
    /// `winrm`, `docker` and `dockerWindowsContainer` are refused (support.rs).
    pub communicator: Communicator,
    /// Wait this long after the instance is up before the first connection attempt.
    pub pause_before_connecting: Option<Duration>,
    /// Address to connect to, instead of the one `ssh_interface` picks.
    pub ssh_host: Option<String>,
    /// SSH port; 22 by default (also when 0).
    pub ssh_port: u16,
    /// User to log in as; required with the `ssh` communicator.
    pub ssh_username: Option<String>,
    /// Password to log in with (instead of a key).
    pub ssh_password: Option<String>,
    /// Existing EC2 key pair the instance is launched with, instead of a temporary one; needs
    /// `ssh_private_key_file` or `ssh_agent_auth`.
    pub ssh_keypair_name: Option<String>,
    /// Name of the temporary key pair (default: generated from the run).
    pub temporary_key_pair_name: Option<String>,
    /// Type of the temporary key pair: `ed25519` (bakery's default: newer OpenSSH servers refuse RSA
    /// with SHA-1 signatures, and an ed25519 key costs EC2 nothing to make) or `rsa` (Packer 1.6.6's
    /// default).
    pub temporary_key_pair_type: KeyPairType,
    /// Size of a temporary RSA key. Ignored with a warning: EC2 makes the key.
    pub temporary_key_pair_bits: Option<i64>,
    /// SSH ciphers to offer. Refused (support.rs): bakery's SSH client cannot be narrowed to a list.
    pub ssh_ciphers: Vec<String>,
    /// With a temporary key pair: remove its public key from the user's and root's `authorized_keys`
    /// after provisioning, before the image is made (a failure is reported, as Packer does).
    pub ssh_clear_authorized_keys: bool,
    /// SSH key exchange algorithms to offer. Refused (support.rs).
    pub ssh_key_exchange_algorithms: Vec<String>,
    /// Private key file to log in with (with `ssh_keypair_name`, or a key already on the source AMI);
    /// `~/` is expanded and the file must exist.
    pub ssh_private_key_file: Option<String>,
    /// SSH certificate for `ssh_private_key_file`. Refused (support.rs).
    pub ssh_certificate_file: Option<String>,
    /// Ask for a pseudo-terminal for remote commands.
    pub ssh_pty: bool,
    /// How long to keep trying to connect. 5m unless `ssh_handshake_attempts` is set
    /// (`ssh_wait_timeout`, the old name, wins when both are given).
    pub ssh_timeout: Option<Duration>,
    /// Authenticate with the local SSH agent (`SSH_AUTH_SOCK`).
    pub ssh_agent_auth: bool,
    /// Do not forward the SSH agent to the instance. Ignored with a warning: bakery never forwards it.
    pub ssh_disable_agent_forwarding: bool,
    /// How many SSH handshakes to try; 10 unless `ssh_timeout` is set.
    pub ssh_handshake_attempts: Option<i64>,
    /// Bastion host to connect through.
    pub ssh_bastion_host: Option<String>,
    /// Bastion SSH port; 22 by default (also when 0).
    pub ssh_bastion_port: u16,
    /// Authenticate to the bastion with the local SSH agent (also the default when the bastion has no
    /// key file and no password).
    pub ssh_bastion_agent_auth: bool,
    /// User on the bastion.
    pub ssh_bastion_username: Option<String>,
    /// Password on the bastion.
    pub ssh_bastion_password: Option<String>,
    /// Keyboard-interactive authentication on the bastion. Refused (support.rs).
    pub ssh_bastion_interactive: bool,
    /// Private key file for the bastion (default: `ssh_private_key_file`); must exist.
    pub ssh_bastion_private_key_file: Option<String>,
    /// SSH certificate for the bastion key (default: `ssh_certificate_file`). Refused (support.rs).
    pub ssh_bastion_certificate_file: Option<String>,
    /// `scp` (default) or `sftp`. Ignored with a warning: bakery always sends one tar stream over one
    /// channel.
    pub ssh_file_transfer_method: String,
    /// SOCKS5 proxy to connect through (not with a bastion). Refused (support.rs).
    pub ssh_proxy_host: Option<String>,
    /// SOCKS5 proxy port; 1080 by default (also when 0).
    pub ssh_proxy_port: u16,
    /// SOCKS5 proxy user.
    pub ssh_proxy_username: Option<String>,
    /// SOCKS5 proxy password.
    pub ssh_proxy_password: Option<String>,
    /// Interval of SSH keep-alives; 5s by default (also when 0), None when disabled with a negative value.
    pub ssh_keep_alive_interval: Option<Duration>,
    /// Give up on a connection silent for this long. Ignored with a warning (support.rs).
    pub ssh_read_write_timeout: Option<Duration>,
    /// Remote tunnels, `[bind:]port:host:hostport` as `ssh -R`. Refused (support.rs).
    pub ssh_remote_tunnels: Vec<String>,
    /// Local tunnels, `[bind:]port:host:hostport` as `ssh -L`. Refused (support.rs).
    pub ssh_local_tunnels: Vec<String>,
    /// Public key to install (set by Packer itself, not by templates). Ignored with a warning.
    pub ssh_public_key: Option<String>,
    /// Private key content (set by Packer itself, not by templates). Ignored with a warning.
    pub ssh_private_key: Option<String>,
    /// WinRM user; required with the `winrm` communicator.
    pub winrm_username: Option<String>,
    /// WinRM password.
    pub winrm_password: Option<String>,
    /// Address to connect to with WinRM.
    pub winrm_host: Option<String>,
    /// Do not use the proxy environment variables for WinRM.
    pub winrm_no_proxy: bool,
    /// WinRM port; 5985 by default, 5986 with `winrm_use_ssl` (also when 0).
    pub winrm_port: u16,
    /// How long to keep trying to connect with WinRM; 30m by default (also when 0).
    pub winrm_timeout: Duration,
    /// WinRM over HTTPS.
    pub winrm_use_ssl: bool,
    /// Skip the WinRM server's certificate check.
    pub winrm_insecure: bool,
    /// NTLM authentication for WinRM.
    pub winrm_use_ntlm: bool,
}

/// The `communicator` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Communicator {
    /// `ssh`: connect over SSH (the default).
    Ssh,
    /// `winrm`: Windows Remote Management; decoded and checked, bakery cannot connect with it.
    Winrm,
    /// `none`: no connection; provisioners cannot run.
    None,
    /// `docker`: accepted, as Packer does for every builder.
    Docker,
    /// `dockerWindowsContainer`: accepted, as Packer does for every builder.
    DockerWindowsContainer,
}

impl Choice for Communicator {
    const VALUES: &'static [(&'static str, Self)] = &[
        ("ssh", Communicator::Ssh),
        ("winrm", Communicator::Winrm),
        ("none", Communicator::None),
        ("docker", Communicator::Docker),
        (
            "dockerWindowsContainer",
            Communicator::DockerWindowsContainer,
        ),
    ];

    fn invalid(_key: &str, value: &str) -> String {
        format!("Communicator type {value} is invalid")
    }
}

/// The `temporary_key_pair_type` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPairType {
    /// `ed25519` (bakery's default).
    Ed25519,
    /// `rsa` (Packer 1.6.6's default).
    Rsa,
}

impl Choice for KeyPairType {
    const VALUES: &'static [(&'static str, Self)] =
        &[("rsa", KeyPairType::Rsa), ("ed25519", KeyPairType::Ed25519)];

    fn invalid(_key: &str, _value: &str) -> String {
        "temporary_key_pair_type requires either rsa or ed25519 as its value".into()
    }
}

spelled!(Communicator, KeyPairType);

/// Decodes the communicator's options; `renamed.ssh_timeout` is `ssh_wait_timeout`.
pub(super) fn decode(d: &mut Decoder, f: &mut Fields, renamed: &mut Renamed) -> CommunicatorConfig {
    // An unknown communicator is reported once; decoded as `none`, it triggers no SSH or WinRM check.
    let communicator =
        choice::decode(d, f, "communicator", Communicator::None).unwrap_or(Communicator::Ssh);
    let ssh_timeout = d.duration(f, "ssh_timeout").filter(|t| !t.is_zero());
    let ssh_handshake_attempts = d.int(f, "ssh_handshake_attempts").filter(|n| *n != 0);
    let (ssh_timeout, ssh_handshake_attempts) = match (ssh_timeout, ssh_handshake_attempts) {
        (None, None) => (Some(Duration::from_secs(300)), Some(10)),
        other => other,
    };
    let ssh_timeout = renamed
        .ssh_timeout
        .take()
        .filter(|t| !t.is_zero())
        .or(ssh_timeout);
    let keep_alive = match d.go_duration(f, "ssh_keep_alive_interval") {
        None | Some(0) => Some(Duration::from_secs(5)),
        Some(n) if n < 0 => None,
        Some(n) => Some(Duration::from_nanos(n.min(u64::MAX as i128) as u64)),
    };
    let winrm_use_ssl = d.bool(f, "winrm_use_ssl");
    let ssh_private_key_file = d.opt_string(f, "ssh_private_key_file");
    let ssh_certificate_file = d.opt_string(f, "ssh_certificate_file");
    let ssh_bastion_host = d.opt_string(f, "ssh_bastion_host");
    let mut ssh_bastion_private_key_file = d.opt_string(f, "ssh_bastion_private_key_file");
    let mut ssh_bastion_certificate_file = d.opt_string(f, "ssh_bastion_certificate_file");
    if ssh_bastion_host.is_some()
        && ssh_bastion_private_key_file.is_none()
        && ssh_private_key_file.is_some()
    {
        ssh_bastion_private_key_file = ssh_private_key_file.clone();
        ssh_bastion_certificate_file = ssh_certificate_file.clone();
    }
    CommunicatorConfig {
        communicator,
        pause_before_connecting: d
            .duration(f, "pause_before_connecting")
            .filter(|t| !t.is_zero()),
        ssh_host: d.opt_string(f, "ssh_host"),
        ssh_port: port(d, f, "ssh_port", 22),
        ssh_username: d.opt_string(f, "ssh_username"),
        ssh_password: d.opt_string(f, "ssh_password"),
        ssh_keypair_name: d.opt_string(f, "ssh_keypair_name"),
        temporary_key_pair_name: d.opt_string(f, "temporary_key_pair_name"),
        temporary_key_pair_type: choice::decode(
            d,
            f,
            "temporary_key_pair_type",
            KeyPairType::Ed25519,
        )
        .unwrap_or(KeyPairType::Ed25519),
        temporary_key_pair_bits: d.int(f, "temporary_key_pair_bits").filter(|n| *n != 0),
        ssh_ciphers: d.strings(f, "ssh_ciphers"),
        ssh_clear_authorized_keys: d.bool(f, "ssh_clear_authorized_keys"),
        ssh_key_exchange_algorithms: d.strings(f, "ssh_key_exchange_algorithms"),
        ssh_private_key_file,
        ssh_certificate_file,
        ssh_pty: d.bool(f, "ssh_pty"),
        ssh_timeout,
        ssh_agent_auth: d.bool(f, "ssh_agent_auth"),
        ssh_disable_agent_forwarding: d.bool(f, "ssh_disable_agent_forwarding"),
        ssh_handshake_attempts,
        ssh_bastion_port: port(d, f, "ssh_bastion_port", 22),
        ssh_bastion_host,
        ssh_bastion_agent_auth: d.bool(f, "ssh_bastion_agent_auth"),
        ssh_bastion_username: d.opt_string(f, "ssh_bastion_username"),
        ssh_bastion_password: d.opt_string(f, "ssh_bastion_password"),
        ssh_bastion_interactive: d.bool(f, "ssh_bastion_interactive"),
        ssh_bastion_private_key_file,
        ssh_bastion_certificate_file,
        ssh_file_transfer_method: d
            .opt_string(f, "ssh_file_transfer_method")
            .unwrap_or_else(|| "scp".to_string()),
        ssh_proxy_host: d.opt_string(f, "ssh_proxy_host"),
        ssh_proxy_port: port(d, f, "ssh_proxy_port", 1080),
        ssh_proxy_username: d.opt_string(f, "ssh_proxy_username"),
        ssh_proxy_password: d.opt_string(f, "ssh_proxy_password"),
        ssh_keep_alive_interval: keep_alive,
        ssh_read_write_timeout: d
            .duration(f, "ssh_read_write_timeout")
            .filter(|t| !t.is_zero()),
        ssh_remote_tunnels: d.strings(f, "ssh_remote_tunnels"),
        ssh_local_tunnels: d.strings(f, "ssh_local_tunnels"),
        ssh_public_key: d.opt_string(f, "ssh_public_key"),
        ssh_private_key: d.opt_string(f, "ssh_private_key"),
        winrm_username: d.opt_string(f, "winrm_username"),
        winrm_password: d.opt_string(f, "winrm_password"),
        winrm_host: d.opt_string(f, "winrm_host"),
        winrm_no_proxy: d.bool(f, "winrm_no_proxy"),
        winrm_port: port(d, f, "winrm_port", if winrm_use_ssl { 5986 } else { 5985 }),
        winrm_timeout: d
            .duration(f, "winrm_timeout")
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(30 * 60)),
        winrm_use_ssl,
        winrm_insecure: d.bool(f, "winrm_insecure"),
        winrm_use_ntlm: d.bool(f, "winrm_use_ntlm"),
    }
}

/// A port option: 0 or unset gives `default`; outside 1-65535 is an error (at the builder).
fn port(d: &mut Decoder, f: &mut Fields, key: &'static str, default: u16) -> u16 {
    let pos = f.pos;
    match d.int(f, key) {
        None | Some(0) => default,
        Some(p) if (1..=65535).contains(&p) => p as u16,
        Some(p) => {
            d.err(pos, format!("{key} {p} is not a valid port (1-65535)"));
            default
        }
    }
}

/// What `ssh_keypair_name` needs (Packer checks it with the instance's options).
pub fn validate_keypair_name(c: &CommunicatorConfig, errs: &mut Vec<String>) {
    if c.ssh_keypair_name.is_some() {
        if c.communicator == Communicator::Winrm
            && c.winrm_password.is_none()
            && c.ssh_private_key_file.is_none()
        {
            errs.push("ssh_private_key_file must be provided to retrieve the winrm password when using ssh_keypair_name.".into());
        } else if c.ssh_private_key_file.is_none() && !c.ssh_agent_auth {
            errs.push("ssh_private_key_file must be provided or ssh_agent_auth enabled when ssh_keypair_name is specified.".into());
        }
    }
}

/// Packer's communicator checks: SSH's or WinRM's own (the type was checked when decoded).
pub fn validate(c: &CommunicatorConfig, errs: &mut Vec<String>) {
    match c.communicator {
        Communicator::Ssh => validate_ssh(c, errs),
        Communicator::Winrm => {
            if c.winrm_username.is_none() {
                errs.push("winrm_username must be specified.".into());
            }
        }
        Communicator::None | Communicator::Docker | Communicator::DockerWindowsContainer => {}
    }
}

fn validate_ssh(c: &CommunicatorConfig, errs: &mut Vec<String>) {
    if c.ssh_private_key_file.is_none() && c.ssh_certificate_file.is_some() {
        errs.push(
            "ssh_private_key_file must be specified if ssh_certificate_file is specified".into(),
        );
    }
    if c.ssh_bastion_private_key_file.is_none() && c.ssh_bastion_certificate_file.is_some() {
        errs.push("ssh_bastion_private_key_file must be specified if ssh_bastion_certificate_file is specified".into());
    }
    if c.ssh_username.is_none() {
        errs.push("An ssh_username must be specified\n  Note: some builders used to default ssh_username to \"root\".".into());
    }
    if let Some(k) = &c.ssh_private_key_file
        && let Err(e) = stat(&expand_user(k))
    {
        errs.push(format!("ssh_private_key_file is invalid: {e}"));
    }
    if c.ssh_bastion_host.is_some() {
        if c.ssh_bastion_password.is_none()
            && c.ssh_bastion_private_key_file.is_none()
            && !c.ssh_bastion_agent_auth
        {
            errs.push("ssh_bastion_password, ssh_bastion_private_key_file or ssh_bastion_agent_auth must be specified".into());
        } else if let Some(k) = &c.ssh_bastion_private_key_file
            && let Err(e) = stat(&expand_user(k))
        {
            errs.push(format!("ssh_bastion_private_key_file is invalid: {e}"));
        }
    }
    if c.ssh_file_transfer_method != "scp" && c.ssh_file_transfer_method != "sftp" {
        errs.push(format!(
            "ssh_file_transfer_method ('{}') is invalid, valid methods: sftp, scp",
            c.ssh_file_transfer_method
        ));
    }
    if c.ssh_bastion_host.is_some() && c.ssh_proxy_host.is_some() {
        errs.push("please specify either ssh_bastion_host or ssh_proxy_host, not both".into());
    }
    for (kind, list) in [
        ("ssh_local_tunnels", &c.ssh_local_tunnels),
        ("ssh_remote_tunnels", &c.ssh_remote_tunnels),
    ] {
        for t in list {
            if let Err(e) = parse_tunnel(t) {
                errs.push(format!("{kind} ('{t}') is invalid: {e}"));
            }
        }
    }
}

/// Checks an `ssh -L`/`-R` style tunnel spec: `[bind:]port:host:hostport`.
fn parse_tunnel(t: &str) -> Result<(), String> {
    let parts: Vec<&str> = t.split(':').collect();
    let port_ok = |p: &str| p.parse::<u16>().is_ok();
    match parts.as_slice() {
        [p, _, hp] | [_, p, _, hp] if port_ok(p) && port_ok(hp) => Ok(()),
        _ => Err("Error parsing tunnel argument: expected [bind:]port:host:hostport".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnels() {
        assert!(parse_tunnel("8080:localhost:80").is_ok());
        assert!(parse_tunnel("x").is_err());
    }
}
