//! Establishing the connection: dial with retries until `ssh_timeout`,
//! handshake and authenticate (retried up to `ssh_handshake_attempts`),
//! optionally through a bastion.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Disconnect, Preferred, cipher, kex};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Auth, SshConfig, display_address};
use crate::error::SshError;
use crate::host_keys::{HostKeyVerifier, Rejection};

/// First pause between attempts; it grows ×1.5 per failure in a row up to
/// [`MAX_RETRY_INTERVAL`]. Packer waits 5 s each time; the instance is
/// usually reachable sooner, and a refused dial is cheap.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The longest pause between attempts.
const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// After the server refused authentication (the key not installed yet), as
/// Packer does.
const AUTH_RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// A dial that hangs (SYN dropped while the instance boots) is abandoned
/// and retried after this long.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one handshake + authentication, so that a server that accepts
/// TCP but never speaks SSH does not eat the whole `ssh_timeout`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Channel window and packet size we advertise (what the server may send us
/// before waiting: downloads and command output).
const WINDOW_SIZE: u32 = 8 * 1024 * 1024;

/// The russh event handler: only host-key checking is ours. The key the
/// server presented is kept, to pin it once authentication succeeded.
pub(crate) struct ClientHandler {
    verifier: HostKeyVerifier,
    presented: Arc<std::sync::Mutex<Option<PublicKey>>>,
}

#[derive(Debug)]
pub(crate) enum HandlerError {
    Ssh(russh::Error),
    HostKey(Rejection),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => {
                PublicKey::new(cert.public_key().clone(), "")
            }
        };
        self.verifier.check(&key).map_err(HandlerError::HostKey)?;
        *self.presented.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
        Ok(true)
    }
}

/// Credentials checked once, before any dial (a bad key is not worth retrying).
#[derive(Clone)]
pub(crate) enum Credentials {
    Key(Arc<PrivateKey>),
    Agent,
    Password(String),
}

impl Credentials {
    pub fn prepare(user: &str, auth: &Auth) -> Result<Self, SshError> {
        match auth {
            Auth::PrivateKey(pem) => russh::keys::decode_secret_key(pem, None)
                .map(|k| Credentials::Key(Arc::new(k)))
                .map_err(|e| SshError::Credentials {
                    user: user.to_string(),
                    reason: format!("cannot read the private key: {e}"),
                }),
            Auth::Agent => Ok(Credentials::Agent),
            Auth::Password(p) => Ok(Credentials::Password(p.clone())),
        }
    }
}

/// Where to connect and how, for one hop.
pub(crate) struct Hop {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub creds: Credentials,
    pub verifier: HostKeyVerifier,
    /// The host key of the last connection that authenticated (what a provisioner that connects by
    /// itself, ansible, is told to expect).
    pub accepted: Arc<std::sync::Mutex<Option<PublicKey>>>,
}

impl Hop {
    fn address(&self) -> String {
        display_address(&self.host, self.port)
    }
}

/// An established connection (and the bastion connection carrying it).
pub(crate) struct Session {
    pub handle: Handle<ClientHandler>,
    bastion: Option<Handle<ClientHandler>>,
}

impl Session {
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
        if let Some(b) = self.bastion {
            let _ = b.disconnect(Disconnect::ByApplication, "", "en").await;
        }
    }
}

/// How one attempt failed, which decides whether and how it is retried.
/// Only what Packer counts against `ssh_handshake_attempts` is counted: the
/// server refusing authentication. A booting instance also drops banners,
/// resets handshakes and restarts sshd; those are retried until `ssh_timeout`.
enum AttemptError {
    /// Nothing to talk to yet (refused, unreachable, dial timeout): retried until `ssh_timeout`.
    Unreachable(String),
    /// Talked but the handshake broke (no banner, reset, timeout): retried until `ssh_timeout`.
    Handshake(String),
    /// The server refused authentication: counts against `ssh_handshake_attempts`.
    Rejected(String),
    /// Not worth retrying (host key rejected, unusable credentials).
    Fatal(SshError),
}

fn russh_config(keepalive: Duration, verifier: &HostKeyVerifier) -> Arc<client::Config> {
    Arc::new(client::Config {
        preferred: Preferred {
            // What Packer 1.6.6 negotiates first, then other safe choices.
            kex: Cow::Owned(vec![
                kex::CURVE25519,
                kex::CURVE25519_PRE_RFC_8731,
                kex::MLKEM768X25519_SHA256,
                kex::DH_GEX_SHA256,
                kex::DH_G14_SHA256,
                kex::EXTENSION_SUPPORT_AS_CLIENT,
                kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
            ]),
            cipher: Cow::Owned(vec![
                cipher::AES_128_GCM,
                cipher::AES_256_GCM,
                cipher::CHACHA20_POLY1305,
                cipher::AES_256_CTR,
                cipher::AES_128_CTR,
            ]),
            key: Cow::Owned(verifier.algorithms(&Preferred::DEFAULT.key)),
            ..Preferred::DEFAULT
        },
        window_size: WINDOW_SIZE,
        keepalive_interval: (!keepalive.is_zero()).then_some(keepalive),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    })
}

/// Connects as `cfg` says, retrying until `cfg.timeout`.
pub(crate) async fn establish(
    cfg: &SshConfig,
    target: &Hop,
    bastion: Option<&Hop>,
    cancel: &CancellationToken,
) -> Result<Session, SshError> {
    let deadline = Instant::now() + cfg.timeout;
    let max_handshakes = cfg.handshake_attempts.max(1);
    let mut attempts = 0u32;
    let mut handshake_failures = 0u32;
    let mut last_error = String::from("none");
    let mut bastion_handle: Option<Handle<ClientHandler>> = None;
    let mut pause = RETRY_INTERVAL;
    loop {
        if cancel.is_cancelled() {
            return Err(SshError::Cancelled);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(SshError::Timeout {
                addr: target.address(),
                after: cfg.timeout,
                attempts,
                last_error,
            });
        }
        attempts += 1;
        let attempt = attempt(cfg, target, bastion, &mut bastion_handle, remaining);
        let outcome = tokio::select! {
            r = tokio::time::timeout(remaining, attempt) => r,
            _ = cancel.cancelled() => return Err(SshError::Cancelled),
        };
        match outcome {
            Ok(Ok(handle)) => {
                tracing::debug!(addr = %target.address(), attempts, "SSH connected");
                return Ok(Session {
                    handle,
                    bastion: bastion_handle,
                });
            }
            Ok(Err(AttemptError::Fatal(e))) => return Err(e),
            Ok(Err(AttemptError::Unreachable(e) | AttemptError::Handshake(e))) => last_error = e,
            Ok(Err(AttemptError::Rejected(e))) => {
                handshake_failures += 1;
                last_error = e;
                if handshake_failures >= max_handshakes {
                    return Err(SshError::HandshakeFailed {
                        addr: target.address(),
                        attempts: handshake_failures,
                        last_error,
                    });
                }
                pause = AUTH_RETRY_INTERVAL;
            }
            Err(_elapsed) => last_error = "attempt still running at the deadline".into(),
        }
        tracing::debug!(addr = %target.address(), attempts, error = %last_error, "SSH not ready, retrying");
        let wait = pause.min(deadline.saturating_duration_since(Instant::now()));
        pause = pause.mul_f64(1.5).min(MAX_RETRY_INTERVAL);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => return Err(SshError::Cancelled),
        }
    }
}

/// One try: (bastion if needed) → TCP or direct-tcpip → handshake → auth.
async fn attempt(
    cfg: &SshConfig,
    target: &Hop,
    bastion: Option<&Hop>,
    bastion_handle: &mut Option<Handle<ClientHandler>>,
    remaining: Duration,
) -> Result<Handle<ClientHandler>, AttemptError> {
    let config = russh_config(cfg.keepalive, &target.verifier);
    let handshake_limit = HANDSHAKE_TIMEOUT.min(remaining);
    let Some(bastion) = bastion else {
        let stream = dial(&target.host, target.port, remaining).await?;
        return handshake(config, stream, target, handshake_limit).await;
    };
    if bastion_handle.as_ref().is_none_or(|h| h.is_closed()) {
        let stream = dial(&bastion.host, bastion.port, remaining).await?;
        let bastion_config = russh_config(cfg.keepalive, &bastion.verifier);
        let handle = handshake(bastion_config, stream, bastion, handshake_limit)
            .await
            .map_err(|e| match e {
                AttemptError::Handshake(m) => {
                    AttemptError::Handshake(format!("bastion {}: {m}", bastion.address()))
                }
                other => other,
            })?;
        *bastion_handle = Some(handle);
    }
    let Some(via) = bastion_handle.as_ref() else {
        return Err(AttemptError::Unreachable(
            "bastion connection missing".into(),
        ));
    };
    let channel = via
        .channel_open_direct_tcpip(target.host.clone(), u32::from(target.port), "127.0.0.1", 0)
        .await
        .map_err(|e| {
            AttemptError::Unreachable(format!(
                "bastion {} could not reach {}: {e}",
                bastion.address(),
                target.address()
            ))
        })?;
    handshake(config, channel.into_stream(), target, handshake_limit).await
}

async fn dial(host: &str, port: u16, remaining: Duration) -> Result<TcpStream, AttemptError> {
    let addr = display_address(host, port);
    match tokio::time::timeout(
        DIAL_TIMEOUT.min(remaining),
        TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(AttemptError::Unreachable(format!("dial {addr}: {e}"))),
        Err(_) => Err(AttemptError::Unreachable(format!("dial {addr}: timed out"))),
    }
}

async fn handshake<S>(
    config: Arc<client::Config>,
    stream: S,
    hop: &Hop,
    limit: Duration,
) -> Result<Handle<ClientHandler>, AttemptError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let presented = Arc::new(std::sync::Mutex::new(None));
    let handler = ClientHandler {
        verifier: hop.verifier.clone(),
        presented: presented.clone(),
    };
    let addr = hop.address();
    let work = async {
        let mut handle = client::connect_stream(config, stream, handler)
            .await
            .map_err(|e| match e {
                HandlerError::HostKey(r) => AttemptError::Fatal(SshError::HostKeyMismatch {
                    addr: addr.clone(),
                    presented: r.presented,
                    expected: r.expected,
                }),
                HandlerError::Ssh(e) => {
                    AttemptError::Handshake(format!("handshake with {addr}: {e}"))
                }
            })?;
        authenticate(&mut handle, hop).await?;
        // In: the key this server presented is the instance's for the rest of the run.
        if let Some(key) = presented.lock().unwrap_or_else(|p| p.into_inner()).take() {
            hop.verifier.confirm(&key);
            *hop.accepted.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
        }
        Ok(handle)
    };
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => Err(AttemptError::Handshake(format!(
            "handshake with {addr}: no answer within {limit:?}"
        ))),
    }
}

async fn authenticate(handle: &mut Handle<ClientHandler>, hop: &Hop) -> Result<(), AttemptError> {
    let user = hop.user.as_str();
    let failed = |e: &dyn std::fmt::Display| {
        AttemptError::Handshake(format!("authentication as {user}: {e}"))
    };
    let ok = match &hop.creds {
        Credentials::Key(key) => {
            let hash = if key.algorithm().is_rsa() {
                match handle.best_supported_rsa_hash().await {
                    Ok(Some(h)) => h,
                    // No server-sig-algs: OpenSSH ≥ 7.2 accepts rsa-sha2-256, and ≥ 8.8 refuses SHA-1.
                    _ => Some(HashAlg::Sha256),
                }
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(key.clone(), hash);
            handle
                .authenticate_publickey(user, key)
                .await
                .map_err(|e| failed(&e))?
                .success()
        }
        Credentials::Password(password) => {
            let res = handle
                .authenticate_password(user, password)
                .await
                .map_err(|e| failed(&e))?;
            res.success()
                || keyboard_interactive(handle, user, password)
                    .await
                    .map_err(|e| failed(&e))?
        }
        Credentials::Agent => {
            let mut agent = AgentClient::connect_env().await.map_err(|e| {
                AttemptError::Fatal(SshError::Credentials {
                    user: user.to_string(),
                    reason: format!("no ssh-agent ($SSH_AUTH_SOCK): {e}"),
                })
            })?;
            let identities = agent.request_identities().await.map_err(|e| failed(&e))?;
            let mut ok = false;
            for id in identities {
                let key = id.public_key().into_owned();
                let hash = key.algorithm().is_rsa().then_some(HashAlg::Sha256);
                match handle
                    .authenticate_publickey_with(user, key, hash, &mut agent)
                    .await
                {
                    Ok(r) if r.success() => {
                        ok = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "agent key refused"),
                }
            }
            ok
        }
    };
    if ok {
        Ok(())
    } else {
        Err(AttemptError::Rejected(format!(
            "authentication as {user} rejected by the server"
        )))
    }
}

/// Packer answers keyboard-interactive prompts with the password too.
async fn keyboard_interactive(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    password: &str,
) -> Result<bool, russh::Error> {
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await?;
    for _ in 0..8 {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(false),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts.iter().map(|_| password.to_string()).collect();
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(false)
}
