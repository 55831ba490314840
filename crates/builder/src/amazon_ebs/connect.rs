//! Step 7: connect over SSH. The address is `ssh_host` when given, else chosen by `ssh_interface`
//! (`public_ip` by default when the instance has one, else `private_ip`; `public_dns`, `private_dns`).
//! Host keys: pinned on first sight for the run (see `bakery_ssh::HostKeyPolicy::PinFirstSeen`): the
//! instance was just created with a fresh key, so there is nothing to check it against before the first
//! connection, and any change afterwards (a reconnect after a reboot) is refused.

use super::state::{Ctx, SshKey, State};
use async_trait::async_trait;
use bakery_core::pipeline::{Outcome, Step, StepError};
use bakery_ssh::{Auth, Communicator, SshConfig};
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
        "" => i.public_ip.clone().or_else(|| i.private_ip.clone()),
        other => {
            return Err(StepError::msg(format!(
                "ssh_interface {other:?} is not supported by bakery"
            )));
        }
    };
    pick.ok_or_else(|| StepError::msg("the instance has no address for the chosen ssh_interface"))
}

/// Builds the communicator's configuration from the template.
pub fn ssh_config(cx: &Ctx, st: &State, host: String) -> Result<SshConfig, StepError> {
    let c = &cx.cfg.comm;
    let auth = match st.key.clone() {
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
        let bauth =
            if let Some(f) = c
                .ssh_bastion_private_key_file
                .as_deref()
                .filter(|s| !s.is_empty())
            {
                Auth::PrivateKey(std::fs::read_to_string(f).map_err(|e| {
                    StepError::msg(format!("ssh_bastion_private_key_file {f}: {e}"))
                })?)
            } else if let Some(p) = c.ssh_bastion_password.clone().filter(|s| !s.is_empty()) {
                Auth::Password(p)
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
        let cfg = ssh_config(cx, st, host.clone())?;
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
