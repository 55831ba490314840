//! The communicator: one connection per build, reused by every provisioner.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::config::SshConfig;
use crate::connect::{self, Credentials, Hop, Session};
use crate::error::SshError;
use crate::exec;
use crate::host_keys::HostKeyVerifier;
use crate::output::OutputSink;
use crate::status::ExitStatus;
use crate::transfer::{self, Link, UploadStats};

/// An SSH connection to the build instance.
///
/// Commands and transfers each use their own channel on the one connection,
/// so they may run concurrently. After the connection drops (reboot,
/// `expect_disconnect`), operations fail with [`SshError::Disconnected`] and
/// [`Communicator::reconnect`] establishes a new connection, checking that
/// the host key is still the pinned one.
pub struct Communicator {
    cfg: SshConfig,
    target: Hop,
    bastion: Option<Hop>,
    cancel: CancellationToken,
    session: Option<Session>,
    /// The remote user's umask, asked once (uploads land under it, as scp's do).
    umask: tokio::sync::OnceCell<u32>,
}

impl Communicator {
    /// Waits `pause_before_connecting`, then connects, retrying the TCP dial
    /// every second and failed handshakes up to `handshake_attempts` times,
    /// until `timeout`. `cancel` aborts the wait and every later operation.
    pub async fn connect(cfg: SshConfig, cancel: CancellationToken) -> Result<Self, SshError> {
        if cfg.host.is_empty() || cfg.user.is_empty() {
            return Err(SshError::Invalid(
                "ssh_host and ssh_username must not be empty".into(),
            ));
        }
        let target = Hop {
            host: cfg.host.clone(),
            port: cfg.port,
            user: cfg.user.clone(),
            creds: Credentials::prepare(&cfg.user, &cfg.auth)?,
            verifier: HostKeyVerifier::new(cfg.host_keys.clone()),
            accepted: Default::default(),
        };
        let bastion = match &cfg.bastion {
            None => None,
            Some(b) => Some(Hop {
                host: b.host.clone(),
                port: b.port,
                user: b.user.clone(),
                creds: Credentials::prepare(&b.user, &b.auth)?,
                verifier: HostKeyVerifier::new(b.host_keys.clone()),
                accepted: Default::default(),
            }),
        };
        if !cfg.pause_before_connecting.is_zero() {
            tracing::info!(pause = ?cfg.pause_before_connecting, "pausing before connecting");
            tokio::select! {
                _ = tokio::time::sleep(cfg.pause_before_connecting) => {}
                _ = cancel.cancelled() => return Err(SshError::Cancelled),
            }
        }
        let mut comm = Communicator {
            cfg,
            target,
            bastion,
            cancel,
            session: None,
            umask: tokio::sync::OnceCell::new(),
        };
        comm.session = Some(comm.establish().await?);
        Ok(comm)
    }

    async fn establish(&self) -> Result<Session, SshError> {
        connect::establish(&self.cfg, &self.target, self.bastion.as_ref(), &self.cancel).await
    }

    /// Drops the current connection (if any) and connects again, with the
    /// same retries and timeout as [`Communicator::connect`] (without the
    /// initial pause). Under [`crate::HostKeyPolicy::PinFirstSeen`] the
    /// server must present the key pinned on the first connection.
    pub async fn reconnect(&mut self) -> Result<(), SshError> {
        if let Some(old) = self.session.take() {
            old.close().await;
        }
        self.session = Some(self.establish().await?);
        Ok(())
    }

    /// Reconnects only if the connection has dropped (call it before each
    /// provisioner that follows one with `expect_disconnect`).
    pub async fn ensure_connected(&mut self) -> Result<(), SshError> {
        if self.is_closed() {
            self.reconnect().await
        } else {
            Ok(())
        }
    }

    /// The settings this communicator connects with (host, port, user, credentials, bastion): what a
    /// provisioner that opens its own connection to the instance (ansible) needs.
    pub fn config(&self) -> &SshConfig {
        &self.cfg
    }

    /// The instance's host key, as an OpenSSH public key line (`ssh-ed25519 AAAA…`): the key the last
    /// connection that authenticated presented, which the host-key policy accepted (and, by default,
    /// pinned for the run).
    pub fn host_key_openssh(&self) -> Option<String> {
        let key = self
            .target
            .accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let mut key = key;
        key.set_comment("");
        key.to_openssh().ok()
    }

    /// True once the connection has dropped (a reconnect is needed).
    pub fn is_closed(&self) -> bool {
        self.session.as_ref().is_none_or(Session::is_closed)
    }

    fn session(&self, during: &str) -> Result<&Session, SshError> {
        match &self.session {
            Some(s) if !s.is_closed() => Ok(s),
            _ => Err(SshError::Disconnected {
                addr: self.cfg.address(),
                during: during.to_string(),
            }),
        }
    }

    /// Runs `command` through the remote user's shell (as Packer does) and
    /// streams its stdout and stderr into `sink` line by line as they arrive.
    /// stdin is empty. A non-zero exit code or a signal is returned in
    /// [`ExitStatus`], not as an error; a dropped connection is
    /// [`SshError::Disconnected`].
    pub async fn exec(
        &self,
        command: &str,
        sink: &mut dyn OutputSink,
    ) -> Result<ExitStatus, SshError> {
        let session = self.session(&format!("command {command:?}"))?;
        let addr = self.cfg.address();
        exec::exec(
            &session.handle,
            &addr,
            self.cfg.pty,
            command,
            sink,
            &self.cancel,
        )
        .await
    }

    /// Uploads a local file or directory to `remote` with Packer's scp
    /// semantics (see [`crate::transfer`]), as one tar stream on one channel.
    pub async fn upload_path(&self, local: &Path, remote: &str) -> Result<UploadStats, SshError> {
        let session = self.session(&format!("upload {} => {remote}", local.display()))?;
        let addr = self.cfg.address();
        let link = Link {
            handle: &session.handle,
            addr: &addr,
            cancel: &self.cancel,
        };
        let umask = self.remote_umask().await;
        transfer::upload_path(&link, local, remote, umask).await
    }

    /// The remote user's umask (`umask` in its shell), asked on first use; 022 if it cannot be read.
    async fn remote_umask(&self) -> u32 {
        *self
            .umask
            .get_or_init(|| async {
                let mut out = (Vec::new(), Vec::new());
                match self.exec("umask", &mut out).await {
                    Ok(status) if status.success() => out
                        .0
                        .first()
                        .and_then(|l| u32::from_str_radix(l.trim(), 8).ok())
                        .map_or(0o022, |m| m & 0o777),
                    _ => 0o022,
                }
            })
            .await
    }

    /// Writes `data` as the remote file `remote` (not a directory) with
    /// `mode`, creating missing parent directories. For rendered scripts and
    /// `content` uploads.
    pub async fn upload_bytes(&self, data: &[u8], remote: &str, mode: u32) -> Result<(), SshError> {
        let session = self.session(&format!("upload to {remote}"))?;
        let addr = self.cfg.address();
        let link = Link {
            handle: &session.handle,
            addr: &addr,
            cancel: &self.cancel,
        };
        transfer::upload_bytes(&link, data, remote, mode).await
    }

    /// Downloads a remote file or directory to `local` (scp semantics,
    /// modes kept; see [`crate::transfer`]).
    pub async fn download_path(&self, remote: &str, local: &Path) -> Result<UploadStats, SshError> {
        let session = self.session(&format!("download {remote} => {}", local.display()))?;
        let addr = self.cfg.address();
        let link = Link {
            handle: &session.handle,
            addr: &addr,
            cancel: &self.cancel,
        };
        transfer::download_path(&link, remote, local).await
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        if let Some(s) = self.session.take() {
            s.close().await;
        }
    }
}

/// Compile-time check: the communicator can be shared between tasks and its
/// futures can run on a multi-threaded runtime (the bake pipeline's steps are `Send`).
#[cfg(test)]
#[allow(dead_code)]
fn futures_are_send(comm: &mut Communicator, sink: &mut dyn OutputSink) {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Communicator>();
    send(&comm.exec("", sink));
    send(&comm.upload_path(Path::new(""), ""));
    send(&comm.upload_bytes(b"", "", 0));
    send(&comm.download_path("", Path::new("")));
    send(&comm.reconnect());
}
