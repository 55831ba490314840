//! Step 7: connect over SSH. The address is `ssh_host` when given, else chosen by `ssh_interface`
//! (`public_ip` by default when the instance has one, else `private_ip`; `public_dns`, `private_dns`).
//! Host keys: by default pinned for the run once a connection authenticated (see
//! `bakery_ssh::HostKeyPolicy::PinFirstSeen`): the instance was just created with a fresh key, so there is
//! nothing to check it against before the first connection, and any change afterwards (a reconnect after a
//! reboot) is refused. With `--host-key-check=console` the instance's console is read first and only a key
//! whose fingerprint it printed there is accepted ([`super::console_keys`]).

use super::console_keys::{HostKeyCheck, console_poller, look};
use super::state::{Ctx, SshKey, State};
use async_trait::async_trait;
use bakery_core::pipeline::{Outcome, Step, StepError};
use bakery_core::poll::WaitError;
use bakery_ssh::{Auth, Communicator, HostKeyPolicy, SshConfig, SshError};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Opens the build's one SSH connection.
pub struct Connect;

/// The address to connect to.
pub fn ssh_address(cx: &Ctx, st: &State) -> Result<String, StepError> {
    if let Some(h) = cx.cfg.comm.ssh_host.as_deref().filter(|s| !s.is_empty()) {
        return Ok(h.to_string());
    }
    let i = st
        .instance
        .as_ref()
        .ok_or_else(|| StepError::msg("no instance"))?;
    let pick = match cx.cfg.run.ssh_interface.map(|i| i.as_str()).unwrap_or("") {
        "private_ip" => i.private_ip.clone(),
        "public_dns" => i.public_dns.clone(),
        "private_dns" => i.private_dns.clone(),
        "public_ip" => i.public_ip.clone(),
        "ipv6" => i.ipv6.clone(),
        "" => i.public_ip.clone().or_else(|| i.private_ip.clone()),
        other => {
            return Err(StepError::msg(format!(
                "ssh_interface {other:?} is not supported by bakery"
            )));
        }
    };
    pick.ok_or_else(|| StepError::msg("the instance has no address for the chosen ssh_interface"))
}

/// `--host-key-check=console`: waits (within `timeout`, the `ssh_timeout`) until the instance's console shows
/// the SSH host key fingerprints cloud-init prints on first boot; the policy accepting only those. Never
/// falls back to trusting the first key: without fingerprints the build fails.
async fn console_host_keys(
    cx: &Ctx,
    instance_id: &str,
    timeout: Duration,
) -> Result<HostKeyPolicy, StepError> {
    let progress = cx.ui.progress(
        &cx.name,
        &format!(
            "Waiting for instance {instance_id}'s console to show its SSH host key fingerprints"
        ),
    );
    let latest = AtomicBool::new(true);
    let ec2 = &cx.clients.ec2;
    let found = console_poller(timeout)
        .wait(
            &format!("the SSH host key fingerprints on instance {instance_id}'s console"),
            &cx.cancel,
            |s, t| progress.state(s, t),
            || look(ec2, instance_id, &latest),
        )
        .await;
    let found = match found {
        Ok(found) => found,
        Err(WaitError::Cancelled(_)) => return Err(StepError::Cancelled),
        Err(WaitError::Timeout {
            after, last_state, ..
        }) => {
            return Err(StepError::msg(format!(
                "--host-key-check=console: instance {instance_id} printed no SSH host key fingerprints to its \
                 console within {} (ssh_timeout; last seen: {last_state}), so its host key cannot be checked and \
                 bake does not connect. The image must run cloud-init with its keys_to_console module (the \
                 default; ssh_fp_console_blacklist must not hide every key type); raise ssh_timeout if the \
                 console is only slow, or build without --host-key-check=console (and BAKERY_HOST_KEY_CHECK) \
                 to pin the first key that authenticates instead",
                crate::util::human_duration(after)
            )));
        }
        Err(e) => {
            return Err(StepError::msg(format!(
                "--host-key-check=console: {e} (reading the console needs ec2:GetConsoleOutput, docs/iam.md)"
            )));
        }
    };
    let Some(policy) = found.policy() else {
        return Err(StepError::msg("--host-key-check=console: no fingerprints"));
    };
    progress.finish(&format!(
        "Host key fingerprints on the console: {}",
        found
            .fingerprints
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(policy)
}

/// Builds the communicator's configuration from the template.
pub fn ssh_config(cx: &Ctx, st: &State, host: String) -> Result<SshConfig, StepError> {
    ssh_config_from(&cx.cfg.comm, st.key.clone(), host)
}

/// [`ssh_config`] from the communicator options and the build's login.
fn ssh_config_from(
    c: &bakery_template::schema::amazon_ebs::CommunicatorConfig,
    key: Option<SshKey>,
    host: String,
) -> Result<SshConfig, StepError> {
    let auth = match key {
        Some(SshKey::Private { pem, .. }) => Auth::PrivateKey(pem),
        Some(SshKey::Agent { .. }) => Auth::Agent,
        Some(SshKey::Password(p)) => Auth::Password(p),
        None => return Err(StepError::msg("no SSH credentials")),
    };
    let user = c.ssh_username.clone().unwrap_or_default();
    let mut cfg = SshConfig::new(host, user, auth);
    cfg.port = c.ssh_port;
    cfg.pty = c.ssh_pty;
    if let Some(t) = c.ssh_timeout {
        cfg.timeout = t;
    }
    if let Some(n) = c.ssh_handshake_attempts {
        cfg.handshake_attempts = n.max(1) as u32;
    }
    if let Some(k) = c.ssh_keep_alive_interval {
        cfg.keepalive = k;
    }
    if let Some(p) = c.pause_before_connecting {
        cfg.pause_before_connecting = p;
    }
    if let Some(bh) = c.ssh_bastion_host.as_deref().filter(|s| !s.is_empty()) {
        let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let read = |f: String| {
            std::fs::read_to_string(&f)
                .map(Auth::PrivateKey)
                .map_err(|e| StepError::msg(format!("ssh_bastion_private_key_file {f}: {e}")))
        };
        // The bastion's key file, its password, else the instance's key file (Packer's default for
        // the bastion key), else the agent (ssh_bastion_agent_auth).
        let bauth = if let Some(f) = given(&c.ssh_bastion_private_key_file) {
            read(f)?
        } else if let Some(p) = given(&c.ssh_bastion_password) {
            Auth::Password(p)
        } else if let Some(f) = given(&c.ssh_private_key_file) {
            read(f)?
        } else {
            Auth::Agent
        };
        cfg.bastion = Some(bakery_ssh::Bastion {
            host: bh.to_string(),
            port: c.ssh_bastion_port,
            user: c.ssh_bastion_username.clone().unwrap_or_default(),
            auth: bauth,
            host_keys: bakery_ssh::HostKeyPolicy::PinFirstSeen,
        });
    }
    Ok(cfg)
}

#[async_trait]
impl Step<Ctx, State> for Connect {
    fn name(&self) -> &'static str {
        "connect"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        if cx.cfg.comm.communicator == "none" {
            return Ok(());
        }
        let host = ssh_address(cx, st)?;
        // Chosen for a public route, the group must also let in the private one the instance left us.
        super::security_group::authorize_for_launched(cx, st).await?;
        let mut cfg = ssh_config(cx, st, host.clone())?;
        let console = cx.host_key_check == HostKeyCheck::Console;
        if console {
            let id = st
                .instance
                .as_ref()
                .map(|i| i.id.clone())
                .ok_or_else(|| StepError::msg("no instance"))?;
            let started = std::time::Instant::now();
            cfg.host_keys = console_host_keys(cx, &id, cfg.timeout).await?;
            // ssh_timeout bounds both waits; SSH is normally up before cloud-init's last stage prints the keys.
            cfg.timeout = cfg
                .timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(10));
        }
        st.late.build.insert("Host".into(), host.clone());
        st.late.build.insert("Port".into(), cfg.port.to_string());
        st.late.build.insert("User".into(), cfg.user.clone());
        st.late.build.insert("ConnType".into(), "ssh".into());
        let progress = cx.ui.progress(
            &cx.name,
            &format!("Waiting for SSH to become available on {host}:{}", cfg.port),
        );
        let started = std::time::Instant::now();
        let comm = Communicator::connect(cfg, cx.cancel.clone())
            .await
            .map_err(|e| {
                if cx.cancel.is_cancelled() {
                    StepError::Cancelled
                } else if matches!(e, SshError::HostKeyMismatch { .. }) && console {
                    StepError::msg(format!(
                        "SSH host key check failed (--host-key-check=console: the key must be one the instance \
                         printed to its console): {e}"
                    ))
                } else if matches!(e, SshError::HostKeyMismatch { .. }) {
                    StepError::msg(format!("SSH host key check failed: {e}"))
                } else {
                    StepError::msg(format!("Timeout waiting for SSH: {e}"))
                }
            })?;
        progress.finish(&format!(
            "Connected to SSH! ({:.1}s)",
            started.elapsed().as_secs_f64()
        ));
        st.comm = Some(comm);
        Ok(())
    }

    async fn cleanup(&mut self, _cx: &Ctx, st: &mut State, _o: Outcome) -> Result<(), StepError> {
        if let Some(comm) = st.comm.take() {
            // Closing politely is best effort: the instance is terminated next anyway.
            let _ = tokio::time::timeout(Duration::from_secs(5), comm.close()).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str, key: SshKey) -> SshConfig {
        let cfg = crate::amazon_ebs::state::test_config(extra);
        ssh_config_from(&cfg.comm, Some(key), "203.0.113.7".into()).unwrap()
    }

    /// ssh_username, ssh_port, ssh_pty, ssh_timeout, ssh_handshake_attempts, ssh_keep_alive_interval,
    /// pause_before_connecting and the bastion's options reach the SSH client's configuration.
    #[test]
    fn communicator_options_reach_the_ssh_client() {
        let c = config(
            r#","ssh_port":2222,"ssh_pty":true,"ssh_timeout":"7m","ssh_handshake_attempts":4,"ssh_keep_alive_interval":"9s","pause_before_connecting":"3s","ssh_bastion_host":"bastion.example","ssh_bastion_port":2200,"ssh_bastion_username":"jump","ssh_bastion_password":"bpw""#,
            SshKey::Password("pw".into()),
        );
        // ssh_username is the test template's ("admin").
        assert_eq!((c.user.as_str(), c.port, c.pty), ("admin", 2222, true));
        assert_eq!(c.timeout, std::time::Duration::from_secs(420));
        assert_eq!(c.handshake_attempts, 4);
        assert_eq!(c.keepalive, std::time::Duration::from_secs(9));
        assert_eq!(c.pause_before_connecting, std::time::Duration::from_secs(3));
        let b = c.bastion.expect("a bastion");
        assert_eq!(
            (b.host.as_str(), b.port, b.user.as_str()),
            ("bastion.example", 2200, "jump")
        );
        assert!(matches!(b.auth, Auth::Password(ref p) if p == "bpw"));
        // ssh_bastion_agent_auth: the agent, when neither a key file nor a password is given.
        let c = config(
            r#","ssh_bastion_host":"bastion.example","ssh_bastion_agent_auth":true"#,
            SshKey::Agent { key_name: None },
        );
        assert!(matches!(c.bastion.expect("a bastion").auth, Auth::Agent));
        assert!(matches!(c.auth, Auth::Agent));
        // ssh_bastion_private_key_file: read from disk.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("bastion_key");
        std::fs::write(&key, "PEM-PROBE").unwrap();
        let c = config(
            &format!(
                r#","ssh_bastion_host":"b","ssh_bastion_private_key_file":"{}""#,
                key.display()
            ),
            SshKey::Password("pw".into()),
        );
        assert!(matches!(c.bastion.unwrap().auth, Auth::PrivateKey(ref p) if p == "PEM-PROBE"));
    }
}
