//! What can go wrong while provisioning or writing the manifest. Every message
//! names the provisioner and, where there is one, the script and the remote path.

use std::path::PathBuf;
use std::time::Duration;

use bakery_ssh::SshError;
use bakery_template::duration::format_go_duration;

/// A provisioner or post-processor failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// A late field (`execute_command`, an `inline` line, an environment
    /// variable, `custom_data`) did not render.
    #[error("{provisioner}: error rendering {field}: {message}")]
    Render {
        /// `shell`, `shell-local`, `manifest`…
        provisioner: &'static str,
        /// The field, e.g. `execute_command` or `inline[2]`.
        field: String,
        /// The template engine's message.
        message: String,
    },
    /// A rendered `environment_vars` entry is not `KEY=VALUE` with a variable name for a key (or an `env`
    /// key is not a variable name): anything else would be shell syntax in the command.
    #[error(
        "{provisioner}: Environment variable not in format 'key=value' with a variable name (letters, digits, _) as key: {entry}"
    )]
    BadEnvVar {
        /// `shell` or `shell-local`.
        provisioner: &'static str,
        /// The rendered entry (masked by the UI when printed).
        entry: String,
    },
    /// A local file could not be read, written or created.
    #[error("{provisioner}: {op} {}: {source}", path.display())]
    Local {
        /// Which provisioner.
        provisioner: &'static str,
        /// What was attempted (`reading script`, `creating directory`…).
        op: &'static str,
        /// The local path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An SSH operation (upload, download, a command) failed.
    #[error("{provisioner}: {what}: {source}")]
    Ssh {
        /// Which provisioner.
        provisioner: &'static str,
        /// What was attempted, naming the script and remote path.
        what: String,
        /// The communicator's error (boxed: it is large).
        #[source]
        source: Box<SshError>,
    },
    /// A script ended with an exit code not in `valid_exit_codes`
    /// (Packer's message, prefixed with where it happened).
    #[error(
        "{provisioner}: script {script} (run as {remote}): Script exited with non-zero exit status: {code}. Allowed exit codes are: {}",
        go_int_list(allowed)
    )]
    ExitCode {
        /// `shell` or `shell-local`.
        provisioner: &'static str,
        /// The local script (or `inline`).
        script: String,
        /// Where it ran: the remote path, or the local file for shell-local.
        remote: String,
        /// Exit code (128 + signal number when killed by a signal, as Packer).
        code: i64,
        /// `valid_exit_codes` (default `[0]`).
        allowed: Vec<i64>,
    },
    /// The connection dropped while a script ran and `expect_disconnect` is off.
    #[error(
        "{provisioner}: script {script} (run as {remote}): Script disconnected unexpectedly. If you expected your script to disconnect, i.e. from a restart, you can try adding `\"expect_disconnect\": true` or `\"valid_exit_codes\": [0, 2300218]` to the shell provisioner parameters."
    )]
    UnexpectedDisconnect {
        /// Which provisioner.
        provisioner: &'static str,
        /// The local script (or `inline`).
        script: String,
        /// The remote path.
        remote: String,
    },
    /// Reconnecting after a disconnect did not succeed within `start_retry_timeout`.
    #[error(
        "{provisioner}: could not reconnect within start_retry_timeout ({}) before {what}: {source}",
        format_go_duration(*waited)
    )]
    Reconnect {
        /// Which provisioner.
        provisioner: &'static str,
        /// What was about to run.
        what: String,
        /// `start_retry_timeout`.
        waited: Duration,
        /// The last connection error (boxed: it is large).
        #[source]
        source: Box<SshError>,
    },
    /// `rm -f` of an uploaded script failed (Packer's message).
    #[error("{provisioner}: Error removing temporary script at {remote}! ({status})")]
    Cleanup {
        /// Which provisioner.
        provisioner: &'static str,
        /// The remote path.
        remote: String,
        /// How `rm -f` ended.
        status: String,
    },
    /// A local command (shell-local) could not be started.
    #[error("{provisioner}: Error executing script: {script}: cannot run {program:?}: {source}")]
    Spawn {
        /// `shell-local`.
        provisioner: &'static str,
        /// The script.
        script: String,
        /// The program of `execute_command`.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Options that cannot work together at run time.
    #[error("{provisioner}: {message}")]
    Invalid {
        /// Which provisioner.
        provisioner: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The provisioner's `timeout` expired.
    #[error("{provisioner} provisioner timed out after {}", format_go_duration(*after))]
    Timeout {
        /// Which provisioner.
        provisioner: &'static str,
        /// The `timeout` option.
        after: Duration,
    },
    /// The build was cancelled.
    #[error("{provisioner}: cancelled")]
    Cancelled {
        /// Which provisioner (or post-processor).
        provisioner: &'static str,
    },
    /// The manifest file could not be read, parsed or written.
    #[error("manifest: {message} {}: {detail}", path.display())]
    Manifest {
        /// What failed (`Unable to open`, `Unable to parse content from`, `Unable to write`).
        message: &'static str,
        /// The manifest path.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

impl ProvisionError {
    /// True when the build was cancelled (Ctrl-C), as opposed to a failure.
    pub fn is_cancelled(&self) -> bool {
        match self {
            ProvisionError::Cancelled { .. } => true,
            ProvisionError::Ssh { source, .. } | ProvisionError::Reconnect { source, .. } => {
                matches!(**source, SshError::Cancelled)
            }
            _ => false,
        }
    }
}

/// Go's `%v` of an `[]int`: `[0 2300218]`.
pub(crate) fn go_int_list(codes: &[i64]) -> String {
    let items: Vec<String> = codes.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_message_has_packers_text_and_the_place() {
        let e = ProvisionError::ExitCode {
            provisioner: "shell",
            script: "scripts/setup.sh".into(),
            remote: "/tmp/script_42.sh".into(),
            code: 3,
            allowed: vec![0, 2300218],
        };
        assert_eq!(
            e.to_string(),
            "shell: script scripts/setup.sh (run as /tmp/script_42.sh): Script exited with non-zero exit status: 3. Allowed exit codes are: [0 2300218]"
        );
    }

    #[test]
    fn timeout_uses_go_durations() {
        let e = ProvisionError::Timeout {
            provisioner: "shell",
            after: Duration::from_secs(90),
        };
        assert_eq!(e.to_string(), "shell provisioner timed out after 1m30s");
    }
}
