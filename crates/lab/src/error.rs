//! Why the lab could not be started or reached. std only, so `Display` is written out by hand.

use std::fmt;
use std::path::PathBuf;

/// The command that installs the lab, named in every "not installed" message.
pub const INSTALL_HINT: &str = "run `make lab` (or lab/install)";

#[derive(Debug)]
#[non_exhaustive]
pub enum LabError {
    /// No `lab/up` in any ancestor of this crate's manifest dir.
    RepoNotFound { searched_from: PathBuf },
    /// `lab/install --check` found something missing; `missing` is its report.
    NotInstalled { missing: String },
    /// A lab script could not be run at all.
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// `lab/up` ran and failed; `output` holds its stderr (with the tail of the failing log).
    UpFailed {
        command: String,
        status: std::process::ExitStatus,
        output: String,
    },
    /// The lab's `lab.info` is missing a field or has a bad value.
    BadInfo { path: PathBuf, detail: String },
    /// Talking to the lab's moto failed.
    Moto { detail: String },
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::RepoNotFound { searched_from } => write!(
                f,
                "bakery lab: no lab/up found above {}; the harness must run inside the bakery repo",
                searched_from.display()
            ),
            LabError::NotInstalled { missing } => {
                write!(
                    f,
                    "lab not installed: {INSTALL_HINT}\n{}",
                    missing.trim_end()
                )
            }
            LabError::Spawn { command, source } => {
                write!(
                    f,
                    "bakery lab: cannot run `{command}`: {source}; {INSTALL_HINT}"
                )
            }
            LabError::UpFailed {
                command,
                status,
                output,
            } => write!(
                f,
                "bakery lab: `{command}` failed ({status}):\n{}\nIf something is missing: {INSTALL_HINT}",
                output.trim_end()
            ),
            LabError::BadInfo { path, detail } => {
                write!(f, "bakery lab: {}: {detail}", path.display())
            }
            LabError::Moto { detail } => write!(f, "bakery lab: moto: {detail}"),
        }
    }
}

impl std::error::Error for LabError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LabError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_installed_names_the_install_command_and_what_is_missing() {
        let missing = "lab/install --check: missing\n  - login user admin (missing)\n".to_owned();
        let message = LabError::NotInstalled { missing }.to_string();
        assert!(message.starts_with("lab not installed: run `make lab` (or lab/install)\n"));
        assert!(message.ends_with("  - login user admin (missing)"));
    }
}
