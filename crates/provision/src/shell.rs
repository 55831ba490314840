//! The `shell` provisioner: scripts (or `inline` commands) uploaded and run
//! over SSH with Packer's exact sequence of sessions per script:
//! upload → `chmod 0755 <path>` → the rendered `execute_command` → `rm -f <path>`.
//!
//! A dropped connection while uploading or before running is repaired by
//! reconnecting until `start_retry_timeout` (a previous provisioner may have
//! rebooted the machine); a drop *during* the script is success only with
//! `expect_disconnect` (or exit code 2300218 in `valid_exit_codes`), and the
//! next command reconnects first.

use std::time::Duration;

use bakery_ssh::{Communicator, ExitStatus, SshError};
use bakery_template::duration::format_go_duration;
use bakery_template::late::LateContext;
use bakery_template::schema::ShellConfig;
use bakery_template::schema::shell::random_below;
use tokio::time::Instant;

use crate::context::ProvisionContext;
use crate::env;
use crate::error::ProvisionError;
use crate::script::{assemble_inline, unix_line_endings};
use crate::sink::UiSink;

const P: &str = "shell";

/// Packer's exit status for "the connection went away" (`packer.CmdDisconnect`).
pub const CMD_DISCONNECT: i64 = 2_300_218;

/// Pause between reconnect attempts after a drop.
const RECONNECT_PAUSE: Duration = Duration::from_secs(2);

/// One script to run: how it is named in messages, and its bytes.
struct Script {
    label: String,
    data: Vec<u8>,
}

enum Source<'a> {
    Inline(Script),
    File(&'a str),
}

pub(crate) async fn run(
    cfg: &ShellConfig,
    cx: &mut ProvisionContext<'_>,
) -> Result<(), ProvisionError> {
    let late = cx.late_context();
    let vars = env::collect(
        P,
        &cfg.environment_vars,
        &cfg.env,
        &cx.build_name,
        &cx.build_type,
        &late,
    )?;
    let flattened = env::flatten(&vars, &cfg.env_var_format);

    // Inline commands are rendered now (they may use the build's data); script
    // files are read when their turn comes, as Packer does.
    let inline = match &cfg.inline {
        Some(lines) => Some(Script {
            label: format!("inline ({} lines)", lines.len()),
            data: assemble_inline(P, lines, &cfg.inline_shebang, &late)?.into_bytes(),
        }),
        None => None,
    };

    let env_var_file = if cfg.use_env_var_file {
        let remote = format!("{}/varfile_{}.sh", cfg.remote_folder, random_below(9999));
        let content = line_endings(cfg.binary, flattened.as_bytes());
        upload_with_mode(
            cx,
            cfg,
            &content,
            &remote,
            "0600",
            "environment variable file",
        )
        .await?;
        Some(remote)
    } else {
        None
    };

    let command = execute_command(cfg, late, &flattened, env_var_file.as_deref())?;
    // Either the one inline script, or the script files (read when their turn comes).
    let sources: Vec<Source> = match inline {
        Some(script) => vec![Source::Inline(script)],
        None => cfg.scripts.iter().map(|p| Source::File(p)).collect(),
    };
    for source in sources {
        let script = match source {
            Source::Inline(script) => script,
            Source::File(path) => Script {
                label: path.to_string(),
                data: line_endings(cfg.binary, &read_script(path)?),
            },
        };
        cx.ui.say(
            &cx.build_name,
            &format!("Provisioning with shell script: {}", script.label),
        );
        run_script(cx, cfg, &script, &command).await?;
        if !cfg.skip_clean {
            remove_remote(cx, cfg, &cfg.remote_path).await?;
        }
    }

    if let Some(remote) = &env_var_file
        && !cfg.skip_clean
    {
        remove_remote(cx, cfg, remote).await?;
    }

    if let Some(pause) = cfg.pause_after {
        cx.ui.say(
            &cx.build_name,
            &format!(
                "Pausing {} after this provisioner...",
                format_go_duration(pause)
            ),
        );
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

/// Renders `execute_command` with Packer's per-script data: `.Path` (the
/// remote path), `.Vars` (the flattened variables) and `.EnvVarFile`.
pub(crate) fn execute_command(
    cfg: &ShellConfig,
    mut late: LateContext,
    vars: &str,
    env_var_file: Option<&str>,
) -> Result<String, ProvisionError> {
    late.data.insert("Vars".into(), vars.to_string());
    late.data.insert(
        "EnvVarFile".into(),
        env_var_file.unwrap_or_default().to_string(),
    );
    late.data.insert("Path".into(), cfg.remote_path.clone());
    cfg.execute_command
        .render(&late)
        .map_err(|e| ProvisionError::Render {
            provisioner: P,
            field: "execute_command".into(),
            message: e.message,
        })
}

fn read_script(path: &str) -> Result<Vec<u8>, ProvisionError> {
    std::fs::read(path).map_err(|source| ProvisionError::Local {
        provisioner: P,
        op: "reading script",
        path: path.into(),
        source,
    })
}

fn line_endings(binary: bool, data: &[u8]) -> Vec<u8> {
    if binary {
        data.to_vec()
    } else {
        unix_line_endings(data)
    }
}

/// Upload, `chmod 0755`, run: the first two are retried across reconnects
/// until `start_retry_timeout`; the script itself runs once.
async fn run_script(
    cx: &mut ProvisionContext<'_>,
    cfg: &ShellConfig,
    script: &Script,
    command: &str,
) -> Result<(), ProvisionError> {
    let remote = &cfg.remote_path;
    upload_with_mode(
        cx,
        cfg,
        &script.data,
        remote,
        "0755",
        &format!("script {}", script.label),
    )
    .await?;

    let mut sink = UiSink::new(cx.ui, &cx.build_name);
    tracing::debug!(command = %cx.ui.mask(command), "running shell script");
    let result = cx.comm.exec(command, &mut sink).await;
    let allowed = if cfg.valid_exit_codes.is_empty() {
        vec![0]
    } else {
        cfg.valid_exit_codes.clone()
    };
    let status = match result {
        Ok(status) => status,
        Err(e) if e.is_disconnect() => {
            if cfg.expect_disconnect || allowed.contains(&CMD_DISCONNECT) {
                tracing::info!(script = %script.label, "connection dropped during the script, as expected");
                return Ok(());
            }
            return Err(ProvisionError::UnexpectedDisconnect {
                provisioner: P,
                script: script.label.clone(),
                remote: remote.clone(),
            });
        }
        Err(source) => {
            return Err(ProvisionError::Ssh {
                provisioner: P,
                what: format!("running script {} as {remote}", script.label),
                source: Box::new(source),
            });
        }
    };
    let code = exit_code(&status);
    if allowed.contains(&code) {
        Ok(())
    } else {
        Err(ProvisionError::ExitCode {
            provisioner: P,
            script: script.label.clone(),
            remote: remote.clone(),
            code,
            allowed,
        })
    }
}

/// Uploads `data` to `remote` and runs `chmod <mode> <remote>` (Packer runs
/// that chmod even though the upload set the mode; its status is ignored, as
/// Packer does). A dropped connection restarts both after a reconnect.
async fn upload_with_mode(
    cx: &mut ProvisionContext<'_>,
    cfg: &ShellConfig,
    data: &[u8],
    remote: &str,
    mode: &str,
    what: &str,
) -> Result<(), ProvisionError> {
    let deadline = Instant::now() + cfg.start_retry_timeout;
    let octal = u32::from_str_radix(mode, 8).unwrap_or(0o755);
    loop {
        ensure_connected(
            cx.comm,
            deadline,
            cfg.start_retry_timeout,
            &format!("uploading {what}"),
        )
        .await?;
        let step = async {
            cx.comm.upload_bytes(data, remote, octal).await?;
            let mut ignore = (Vec::new(), Vec::new());
            let status = cx
                .comm
                .exec(&format!("chmod {mode} {}", shell_word(remote)), &mut ignore)
                .await?;
            if !status.success() {
                tracing::debug!(%status, stderr = ?ignore.1, "chmod {mode} {remote} failed");
            }
            Ok::<(), SshError>(())
        };
        match step.await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_disconnect() && Instant::now() < deadline => {
                tracing::info!(error = %e, "connection dropped while uploading {what}; reconnecting");
            }
            Err(source) => {
                return Err(ProvisionError::Ssh {
                    provisioner: P,
                    what: format!("uploading {what} to {remote}"),
                    source: Box::new(source),
                });
            }
        }
    }
}

/// `rm -f <path>`, retried across reconnects until `start_retry_timeout`
/// (the script may have rebooted the machine).
async fn remove_remote(
    cx: &mut ProvisionContext<'_>,
    cfg: &ShellConfig,
    remote: &str,
) -> Result<(), ProvisionError> {
    let deadline = Instant::now() + cfg.start_retry_timeout;
    let command = format!("rm -f {}", shell_word(remote));
    loop {
        ensure_connected(cx.comm, deadline, cfg.start_retry_timeout, &command).await?;
        let mut out = (Vec::new(), Vec::new());
        match cx.comm.exec(&command, &mut out).await {
            Ok(status) if status.success() => return Ok(()),
            Ok(status) => {
                let mut detail = status.to_string();
                if !out.1.is_empty() {
                    detail = format!("{detail}: {}", out.1.join(" "));
                }
                return Err(ProvisionError::Cleanup {
                    provisioner: P,
                    remote: remote.to_string(),
                    status: detail,
                });
            }
            Err(e) if e.is_disconnect() && Instant::now() < deadline => {
                tracing::info!(error = %e, "connection dropped during {command}; reconnecting");
            }
            Err(source) => {
                return Err(ProvisionError::Ssh {
                    provisioner: P,
                    what: format!("removing temporary script at {remote}"),
                    source: Box::new(source),
                });
            }
        }
    }
}

/// Reconnects when the connection has dropped, retrying until `deadline`.
/// A rejected host key or unusable credentials fail at once.
pub(crate) async fn ensure_connected(
    comm: &mut Communicator,
    deadline: Instant,
    start_retry_timeout: Duration,
    what: &str,
) -> Result<(), ProvisionError> {
    if !comm.is_closed() {
        return Ok(());
    }
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let err = match tokio::time::timeout(remaining, comm.reconnect()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(SshError::Cancelled)) => {
                return Err(ProvisionError::Cancelled { provisioner: P });
            }
            Ok(Err(e @ (SshError::HostKeyMismatch { .. } | SshError::Credentials { .. }))) => {
                return Err(ProvisionError::Reconnect {
                    provisioner: P,
                    what: what.to_string(),
                    waited: start_retry_timeout,
                    source: Box::new(e),
                });
            }
            Ok(Err(e)) => e,
            Err(_) => SshError::Invalid("the reconnect attempt did not finish in time".into()),
        };
        if Instant::now() + RECONNECT_PAUSE >= deadline {
            return Err(ProvisionError::Reconnect {
                provisioner: P,
                what: what.to_string(),
                waited: start_retry_timeout,
                source: Box::new(err),
            });
        }
        tracing::info!(error = %err, "reconnecting before {what}");
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

/// The exit code Packer reports: the code, or 128 + the signal number when
/// the command was killed by a signal (Go's `x/crypto/ssh` convention).
pub(crate) fn exit_code(status: &ExitStatus) -> i64 {
    match (status.code, &status.signal) {
        (Some(code), _) => i64::from(code),
        (None, Some(sig)) => 128 + signal_number(sig),
        (None, None) => -1,
    }
}

/// RFC 4254 signal names → Linux numbers (unknown names count as 0, as in Go).
fn signal_number(name: &str) -> i64 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => 0,
    }
}

/// A remote path as a shell word: unchanged when it has no characters the
/// shell would interpret (so commands read exactly as Packer's,
/// `chmod 0755 /tmp/script_42.sh`), quoted otherwise (`~/` still expands).
pub(crate) fn shell_word(path: &str) -> String {
    let plain = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        path.to_string()
    } else {
        bakery_ssh::quote::remote_path_word(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_packer() {
        let code = |code, signal: Option<&str>| {
            exit_code(&ExitStatus {
                code,
                signal: signal.map(str::to_string),
            })
        };
        assert_eq!(code(Some(0), None), 0);
        assert_eq!(code(Some(42), None), 42);
        assert_eq!(code(None, Some("KILL")), 137);
        assert_eq!(code(None, Some("TERM")), 143);
        assert_eq!(code(None, Some("WHATEVER")), 128);
    }

    fn shell(json: &str) -> ShellConfig {
        match crate::testutil::provisioner(json) {
            bakery_template::ProvisionerConfig::Shell(c) => c,
            other => panic!("not shell: {other:?}"),
        }
    }

    #[test]
    fn default_execute_command_reads_as_packers() {
        let cfg = shell(
            r#"{"type":"shell","inline":["true"],"remote_path":"/tmp/script_1234.sh",
                "environment_vars":["NODE_VERSION=0.10","INSTANCE_USER=admin"]}"#,
        );
        let late = LateContext::default();
        let vars = env::collect(
            P,
            &cfg.environment_vars,
            &cfg.env,
            "amazon-ebs",
            "amazon-ebs",
            &late,
        )
        .unwrap();
        let flat = env::flatten(&vars, &cfg.env_var_format);
        // The command Packer 1.6.6 ran in the lab (note the two spaces before the path).
        assert_eq!(
            execute_command(&cfg, late, &flat, None).unwrap(),
            "chmod +x /tmp/script_1234.sh; INSTANCE_USER='admin' NODE_VERSION='0.10' PACKER_BUILDER_TYPE='amazon-ebs' PACKER_BUILD_NAME='amazon-ebs'  /tmp/script_1234.sh"
        );
    }

    #[test]
    fn env_var_file_command_and_custom_commands() {
        let cfg = shell(
            r#"{"type":"shell","inline":["true"],"use_env_var_file":true,"remote_folder":"/var/tmp","remote_file":"s.sh"}"#,
        );
        assert_eq!(cfg.remote_path, "/var/tmp/s.sh");
        assert_eq!(
            execute_command(
                &cfg,
                LateContext::default(),
                "ignored",
                Some("/var/tmp/varfile_7.sh")
            )
            .unwrap(),
            "chmod +x /var/tmp/s.sh; . /var/tmp/varfile_7.sh && /var/tmp/s.sh"
        );
        let cfg = shell(
            r#"{"type":"shell","inline":["true"],"execute_command":"echo 'pw' | sudo -S sh -c '{{ .Vars }} {{ .Path }}' # {{ build `ID` }}"}"#,
        );
        let mut late = LateContext::default();
        late.build.insert("ID".into(), "i-9".into());
        let cmd = execute_command(&cfg, late, "A='1' ", None).unwrap();
        assert_eq!(
            cmd,
            format!(
                "echo 'pw' | sudo -S sh -c 'A='1'  {}' # i-9",
                cfg.remote_path
            )
        );
    }

    #[test]
    fn remote_paths_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/tmp/script_42.sh"), "/tmp/script_42.sh");
        assert_eq!(shell_word("/tmp/a b.sh"), "'/tmp/a b.sh'");
        assert_eq!(shell_word("/tmp/$x"), "'/tmp/$x'");
        assert_eq!(shell_word("~/s.sh"), "\"$HOME\"'/s.sh'");
        assert_eq!(shell_word(""), "''");
    }
}
