//! The communicator's errors: each says what was attempted, where, and why.

use std::path::PathBuf;
use std::time::Duration;

use crate::status::ExitStatus;

/// Everything that can go wrong in the communicator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    /// Nothing answered SSH within `ssh_timeout`.
    #[error(
        "timed out after {after:?} waiting for SSH on {addr} ({attempts} attempts); last error: {last_error}"
    )]
    Timeout {
        /// `host:port` dialled.
        addr: String,
        /// The configured timeout.
        after: Duration,
        /// How many dials were made.
        attempts: u32,
        /// The last failure seen.
        last_error: String,
    },
    /// TCP connected but the SSH handshake or authentication kept failing.
    #[error(
        "SSH handshake with {addr} failed {attempts} times (ssh_handshake_attempts); last error: {last_error}"
    )]
    HandshakeFailed {
        /// `host:port`.
        addr: String,
        /// Failed handshakes.
        attempts: u32,
        /// The last failure seen.
        last_error: String,
    },
    /// The server's host key is not the one the policy trusts. Never retried.
    #[error("host key of {addr} rejected: it presented {presented}, expected {expected}")]
    HostKeyMismatch {
        /// `host:port`.
        addr: String,
        /// Algorithm and SHA-256 fingerprint of the presented key.
        presented: String,
        /// What the policy expected (pinned key or known keys).
        expected: String,
    },
    /// The private key could not be used (parse error, encrypted, agent missing).
    #[error("cannot use the SSH credentials for {user}: {reason}")]
    Credentials {
        /// User the credentials are for.
        user: String,
        /// What is wrong with them.
        reason: String,
    },
    /// The operation was cancelled (Ctrl-C / build cancelled).
    #[error("cancelled")]
    Cancelled,
    /// The connection dropped while `during` was running (expected after a
    /// reboot; call [`crate::Communicator::reconnect`]).
    #[error("SSH connection to {addr} lost during {during}")]
    Disconnected {
        /// `host:port`.
        addr: String,
        /// What was running (the command, or the transfer).
        during: String,
    },
    /// The remote command ended without reporting an exit status or signal.
    #[error("remote command exited without exit status or exit signal: {command}")]
    NoExitStatus {
        /// The command.
        command: String,
    },
    /// An SSH protocol-level failure (opening a channel, a rejected request).
    #[error("SSH {op} on {addr} failed: {source}")]
    Protocol {
        /// What was attempted.
        op: String,
        /// `host:port`.
        addr: String,
        /// The underlying error (boxed: russh's error type is large).
        #[source]
        source: Box<russh::Error>,
    },
    /// The remote side of a transfer failed.
    #[error("{op} {from} => {to} failed on the remote side ({status}): {stderr}")]
    RemoteTransfer {
        /// `upload` or `download`.
        op: &'static str,
        /// Source path.
        from: String,
        /// Destination path.
        to: String,
        /// How the remote helper ended.
        status: ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A local file operation of a transfer failed.
    #[error("{op} {path}: {source}")]
    Local {
        /// What was attempted (e.g. `reading`, `creating`).
        op: &'static str,
        /// The local path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Invalid arguments or configuration.
    #[error("{0}")]
    Invalid(String),
}

impl SshError {
    /// True for failures a reconnect can repair (the connection went away).
    pub fn is_disconnect(&self) -> bool {
        matches!(self, SshError::Disconnected { .. })
    }
}
