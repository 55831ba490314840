//! `shell-local` (provisioner and post-processor): commands run on the
//! machine running bakery, as Packer's SDK `shell-local` runs them. Each
//! script (or the `inline` commands, written to a 0700 temporary file) runs
//! through the rendered `execute_command` (default
//! `["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]`), with the same variables as
//! the remote shell; its output is printed live like remote output.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use bakery_core::ui::{Stream, Ui};
use bakery_template::late::LateContext;
use bakery_template::schema::ShellLocalConfig;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::env;
use crate::error::ProvisionError;
use crate::script::inline_script;
use crate::sink::UiSink;

const P: &str = "shell-local";

/// Runs a `shell-local` provisioner or post-processor. `late` is the build's
/// data for `{{build `X`}}` and dot fields; `cancel` kills the running command.
pub async fn run_shell_local(
    cfg: &ShellLocalConfig,
    ui: &Ui,
    build_name: &str,
    build_type: &str,
    late: &LateContext,
    cancel: &CancellationToken,
) -> Result<(), ProvisionError> {
    if !cfg.only_on.is_empty() && !cfg.only_on.iter().any(|os| os == go_os()) {
        ui.say(build_name, "Skipping shell-local due to runtime OS");
        return Ok(());
    }
    let mut late = late.clone();
    if late.build_name.is_empty() {
        late.build_name = build_name.to_string();
    }
    if late.build_type.is_empty() {
        late.build_type = build_type.to_string();
    }

    // The temporary file lives until the end of this function.
    let mut _inline_file = None;
    let scripts: Vec<String> = match &cfg.inline {
        Some(lines) if cfg.scripts.is_empty() => {
            let file = write_inline(cfg, lines, &late)?;
            let path = file.display().to_string();
            _inline_file = Some(file);
            vec![path]
        }
        _ => cfg.scripts.clone(),
    };

    let vars = env::collect(
        P,
        &cfg.environment_vars,
        &cfg.env,
        build_name,
        build_type,
        &late,
    )?;
    let flattened = env::flatten(&vars, &cfg.env_var_format);

    for script in &scripts {
        let abs = absolute(Path::new(script));
        let abs_text = abs.display().to_string();
        let mut data = late.clone();
        data.data.insert("Vars".into(), flattened.clone());
        data.data.insert("Script".into(), abs_text.clone());
        data.data.insert("Command".into(), abs_text.clone());
        let mut argv = Vec::with_capacity(cfg.execute_command.len());
        for (i, part) in cfg.execute_command.iter().enumerate() {
            argv.push(part.render(&data).map_err(|e| ProvisionError::Render {
                provisioner: P,
                field: format!("execute_command[{i}]"),
                message: e.message,
            })?);
        }
        ui.say(build_name, &format!("Running local shell script: {script}"));
        let code = run_local(&argv, &abs_text, ui, build_name, cancel).await?;
        let allowed = if cfg.valid_exit_codes.is_empty() {
            vec![0]
        } else {
            cfg.valid_exit_codes.clone()
        };
        if !allowed.contains(&code) {
            return Err(ProvisionError::ExitCode {
                provisioner: P,
                script: script.clone(),
                remote: abs_text,
                code,
                allowed,
            });
        }
    }
    Ok(())
}

/// Packer's `runtime.GOOS` for this machine.
fn go_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The inline commands as an executable (0700) temporary file named like
/// Packer's (`packer-shell…`, with `tempfile_extension`).
fn write_inline(
    cfg: &ShellLocalConfig,
    lines: &[bakery_template::late::LateTemplate],
    late: &LateContext,
) -> Result<tempfile::TempPath, ProvisionError> {
    let mut rendered = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        rendered.push(line.render(late).map_err(|e| ProvisionError::Render {
            provisioner: P,
            field: format!("inline[{i}]"),
            message: e.message,
        })?);
    }
    let text = inline_script(&rendered, &cfg.inline_shebang);
    let suffix = if cfg.tempfile_extension.is_empty() {
        String::new()
    } else {
        format!(".{}", cfg.tempfile_extension)
    };
    let local = |op, path: PathBuf, source| ProvisionError::Local {
        provisioner: P,
        op,
        path,
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix("packer-shell")
        .suffix(&suffix)
        .tempfile()
        .map_err(|e| local("creating temporary script", std::env::temp_dir(), e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| local("writing temporary script", file.path().into(), e))?;
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| local("making temporary script executable", file.path().into(), e))?;
    // Closed before it runs: executing a file open for writing fails (ETXTBSY).
    Ok(file.into_temp_path())
}

/// Runs `argv` with no stdin, streaming stdout and stderr line by line to the
/// UI; returns the exit code (-1 when killed by a signal, as Go reports it).
async fn run_local(
    argv: &[String],
    script: &str,
    ui: &Ui,
    build_name: &str,
    cancel: &CancellationToken,
) -> Result<i64, ProvisionError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(ProvisionError::Invalid {
            provisioner: P,
            message:
                "Error launching command via shell-local communicator: No ExecuteCommand provided"
                    .into(),
        });
    };
    tracing::debug!(command = %ui.mask(&argv.join(" ")), "running local command");
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout or Ctrl-C stops the
        // script's children too, not just the shell that started them.
        .process_group(0)
        .spawn()
        .map_err(|source| ProvisionError::Spawn {
            provisioner: P,
            script: script.to_string(),
            program: program.clone(),
            source,
        })?;
    let mut group = GroupKiller(child.id());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let sink = UiSink::new(ui, build_name);
    let output = async {
        tokio::join!(
            pump(stdout, Stream::Stdout, &sink),
            pump(stderr, Stream::Stderr, &sink)
        )
    };
    let waited = async {
        output.await;
        child.wait().await
    };
    let status = tokio::select! {
        s = waited => s,
        _ = cancel.cancelled() => {
            // `group` kills the command's process group when it is dropped here.
            return Err(ProvisionError::Cancelled { provisioner: P });
        }
    };
    // Finished on its own: whatever it left in the background is its business.
    group.0 = None;
    let status = status.map_err(|source| ProvisionError::Local {
        provisioner: P,
        op: "waiting for",
        path: script.into(),
        source,
    })?;
    Ok(status.code().map(i64::from).unwrap_or(-1))
}

/// Reads `pipe` line by line (bytes that are not UTF-8 replaced) into the sink.
pub(crate) async fn pump<R: AsyncRead + Unpin>(pipe: Option<R>, stream: Stream, sink: &UiSink<'_>) {
    let Some(pipe) = pipe else { return };
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) => return,
            Ok(_) => {
                let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                sink.line(stream, &String::from_utf8_lossy(line));
            }
            Err(e) => {
                tracing::debug!(error = %e, "reading local command output");
                return;
            }
        }
    }
}

/// Kills a process group with SIGKILL when dropped, unless disarmed: the
/// command was cancelled or timed out (its future dropped) before it ended.
pub(crate) struct GroupKiller(pub(crate) Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) else {
            return;
        };
        use nix::sys::signal::{Signal, killpg};
        if let Err(e) = killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL) {
            tracing::debug!(error = %e, pid, "killing the local command's process group");
        }
    }
}
