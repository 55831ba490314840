/*!
The SSH communicator used by `bake` and its provisioners.

One [`Communicator`] holds one SSH connection per build. Every provisioner
reuses it; after an expected disconnect (a reboot, `expect_disconnect`) the
caller calls [`Communicator::reconnect`].

* [`Communicator::connect`] dials with retries until `ssh_timeout`
  ([`SshConfig::timeout`]), re-trying the TCP dial every second and the
  handshake/authentication up to `ssh_handshake_attempts` times, optionally
  through a bastion (`direct-tcpip` channel carrying the inner connection).
* [`Communicator::exec`] runs a command and streams stdout and stderr, line
  by line as they arrive, into an [`OutputSink`] ([`PackerStyleSink`] prints
  them the way Packer does: `    <build>: line` / `==> <build>: line`).
* [`Communicator::upload_path`] / [`Communicator::download_path`] move a file
  or a directory tree as **one tar stream over one exec channel**, with the
  directory and trailing-slash semantics of Packer's scp transfers (see
  [`transfer`] for the rules and the few deliberate differences).

# Host-key policy

Packer 1.6.6 accepts any host key. bakery does not; [`HostKeyPolicy`] is
explicit:

* [`HostKeyPolicy::PinFirstSeen`] (default): trust on first use *for this
  run*. The first key the server presents is pinned; every later connection
  of the same communicator (reconnects after a reboot) must present the same
  key, otherwise the connection fails with [`SshError::HostKeyMismatch`].
  After pinning, only that key's algorithm is offered, so the server cannot
  legitimately switch to another of its keys.
* [`HostKeyPolicy::Known`]: the server must present one of these keys (for
  example read from the instance console output, or the lab's host keys).
  Only the algorithms of these keys are offered.
* [`HostKeyPolicy::Fingerprints`]: the server must present a key whose
  SHA-256 fingerprint is one of these, e.g. those the instance printed to its
  console on first boot ([`ConsoleHostKeys::parse`] reads cloud-init's
  blocks out of `GetConsoleOutput`'s text).
* [`HostKeyPolicy::AcceptAny`]: accepts every key, with a mandatory reason
  that is logged as a warning on each connection. Use only for an explicit
  opt-out such as `ssh_host_key_check=false`.

A host-key rejection is never retried: it fails the connection at once.

# Algorithms

For comparability with Packer 1.6.6 the client prefers what Packer
negotiates: key exchange `curve25519-sha256` and cipher
`aes128-gcm@openssh.com` (other safe algorithms follow as fall-backs).
*/
#![deny(missing_docs)]

mod communicator;
mod config;
mod connect;
mod console;
mod error;
mod exec;
mod host_keys;
mod output;
pub mod quote;
mod status;
pub mod transfer;

pub use communicator::Communicator;
pub use config::{Auth, Bastion, SshConfig, public_key_body};
pub use console::ConsoleHostKeys;
pub use error::SshError;
pub use host_keys::HostKeyPolicy;
pub use output::{OutputSink, PackerStyleSink, clean_output_line};
pub use status::ExitStatus;
pub use transfer::UploadStats;

/// Public key type accepted by [`HostKeyPolicy::Known`] (re-exported from russh).
pub use russh::keys::PublicKey;
