//! How a remote command ended, as the communicator reports it (no dependency on the rest of the crate, so
//! errors and the exec/transfer code can all name it).

use std::fmt;

use russh::Sig;

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExitStatus {
    /// The exit code, if the command exited normally.
    pub code: Option<u32>,
    /// The signal name (`TERM`, `KILL`, …) if it was killed by a signal.
    pub signal: Option<String>,
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => f.write_str("no exit status"),
        }
    }
}

pub(crate) fn signal_name(sig: &Sig) -> String {
    match sig {
        Sig::Custom(name) => name.clone(),
        // The other variants' Debug form is the bare RFC 4254 name (TERM, KILL…).
        other => format!("{other:?}"),
    }
}
