//! Running one command on its own session channel, streaming its output.

use russh::client::Handle;
use russh::{ChannelMsg, Pty, Sig};
use tokio_util::sync::CancellationToken;

use crate::connect::ClientHandler;
use crate::error::SshError;
use crate::output::{LineSplitter, OutputSink};
use crate::status::{ExitStatus, signal_name};

/// Runs `command` and streams its output into `sink`.
pub(crate) async fn exec(
    handle: &Handle<ClientHandler>,
    addr: &str,
    pty: bool,
    command: &str,
    sink: &mut dyn OutputSink,
    cancel: &CancellationToken,
) -> Result<ExitStatus, SshError> {
    let disconnected = || SshError::Disconnected {
        addr: addr.to_string(),
        during: format!("command {command:?}"),
    };
    let protocol = |op: &str, source: russh::Error| SshError::Protocol {
        op: op.to_string(),
        addr: addr.to_string(),
        source: Box::new(source),
    };
    let mut channel = handle.channel_open_session().await.map_err(|e| {
        if handle.is_closed() {
            disconnected()
        } else {
            protocol("opening a session channel", e)
        }
    })?;
    if pty {
        // Same terminal as Packer: xterm, 80x40, no echo, 14400 baud.
        let modes = [
            (Pty::ECHO, 0),
            (Pty::TTY_OP_ISPEED, 14400),
            (Pty::TTY_OP_OSPEED, 14400),
        ];
        channel
            .request_pty(true, "xterm", 80, 40, 0, 0, &modes)
            .await
            .map_err(|e| protocol("requesting a pty", e))?;
    }
    channel
        .exec(true, command)
        .await
        .map_err(|e| protocol("exec request", e))?;
    // Packer gives commands an empty stdin: they see EOF instead of hanging on a read.
    channel
        .eof()
        .await
        .map_err(|e| protocol("closing stdin", e))?;

    let mut status = ExitStatus::default();
    let mut got_status = false;
    let mut stdout = LineSplitter::default();
    let mut stderr = LineSplitter::default();
    loop {
        let msg = tokio::select! {
            m = channel.wait() => m,
            _ = cancel.cancelled() => {
                // Best effort: ask sshd to signal the command, then drop the channel.
                let _ = channel.signal(Sig::TERM).await;
                let _ = channel.close().await;
                return Err(SshError::Cancelled);
            }
        };
        let Some(msg) = msg else { break };
        match msg {
            ChannelMsg::Data { data } => stdout.push(&data, |l| sink.stdout_line(l)),
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                stderr.push(&data, |l| sink.stderr_line(l))
            }
            ChannelMsg::ExitStatus { exit_status } => {
                status.code = Some(exit_status);
                got_status = true;
            }
            ChannelMsg::ExitSignal {
                signal_name: sig,
                core_dumped,
                error_message,
                ..
            } => {
                tracing::debug!(signal = ?sig, core_dumped, %error_message, "remote command killed");
                status.signal = Some(signal_name(&sig));
                got_status = true;
            }
            ChannelMsg::Failure => {
                return Err(SshError::Invalid(format!(
                    "the server refused the {} request for command {command:?}",
                    if pty { "pty or exec" } else { "exec" }
                )));
            }
            // More output may follow the exit status; the channel's close ends the loop.
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    stdout.finish(|l| sink.stdout_line(l));
    stderr.finish(|l| sink.stderr_line(l));
    if got_status {
        return Ok(status);
    }
    // Give the session task a moment to notice a dead connection before deciding.
    tokio::task::yield_now().await;
    if handle.is_closed() || session_gone(handle).await {
        Err(disconnected())
    } else {
        Err(SshError::NoExitStatus {
            command: command.to_string(),
        })
    }
}

/// True when the connection is dead: a session channel can no longer be opened.
pub(crate) async fn session_gone(handle: &Handle<ClientHandler>) -> bool {
    match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        handle.channel_open_session(),
    )
    .await
    {
        Ok(Ok(ch)) => {
            let _ = ch.close().await;
            false
        }
        Ok(Err(_)) => true,
        Err(_) => true,
    }
}
