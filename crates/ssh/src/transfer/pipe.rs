//! Bounded pipes between a blocking tar thread and an SSH channel, and the
//! loops that run a remote helper command with its stdin fed from (upload)
//! or its stdout drained into (download) such a pipe.

use std::io::{self, Read, Write};

use bytes::Bytes;
use russh::ChannelMsg;
use russh::client::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connect::ClientHandler;
use crate::error::SshError;
use crate::status::{ExitStatus, signal_name};

/// Size of the chunks handed from the tar thread to the channel.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Chunks in flight: bounds memory to about `CHUNK * DEPTH` whatever the tree size.
pub(crate) const DEPTH: usize = 8;

/// The blocking side of an upload: a `Write` whose bytes become channel data.
pub(crate) struct ChunkWriter {
    tx: mpsc::Sender<Bytes>,
}

impl ChunkWriter {
    pub fn new(tx: mpsc::Sender<Bytes>) -> Self {
        ChunkWriter { tx }
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.tx
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the SSH channel stopped accepting data",
                )
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The blocking side of a download: a `Read` over the channel's stdout.
pub(crate) struct ChunkReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChunkReader {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChunkReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// How a remote helper ended, with what it said on stderr.
pub(crate) struct HelperOutcome {
    pub status: ExitStatus,
    pub stderr: String,
    /// The helper exited before reading all of its input (upload only).
    pub input_left: bool,
    /// We stopped reading the helper's output because the local side had
    /// stopped consuming it (download only); `status` is then incomplete.
    pub abandoned: bool,
}

/// See [`run_with_output`]: more unread output than tar's padding.
const ABANDON_AFTER: usize = 1024 * 1024;

/// Opens a session channel and starts `command` on it.
async fn start(
    handle: &Handle<ClientHandler>,
    addr: &str,
    command: &str,
    during: &str,
) -> Result<russh::Channel<russh::client::Msg>, SshError> {
    let channel = handle.channel_open_session().await.map_err(|e| {
        if handle.is_closed() {
            SshError::Disconnected {
                addr: addr.to_string(),
                during: during.to_string(),
            }
        } else {
            SshError::Protocol {
                op: format!("opening a channel for {during}"),
                addr: addr.to_string(),
                source: Box::new(e),
            }
        }
    })?;
    channel
        .exec(true, command)
        .await
        .map_err(|e| SshError::Protocol {
            op: format!("starting the remote helper for {during}"),
            addr: addr.to_string(),
            source: Box::new(e),
        })?;
    Ok(channel)
}

/// Collects status and stderr from channel messages.
#[derive(Default)]
struct StatusCollector {
    status: ExitStatus,
    got_status: bool,
    stderr: Vec<u8>,
}

impl StatusCollector {
    /// Returns stdout data, if the message carries some.
    fn take(&mut self, msg: ChannelMsg) -> Option<Bytes> {
        match msg {
            ChannelMsg::Data { data } => return Some(data),
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                // Keep the first 64 KiB: enough to explain any failure.
                let room = (64 * 1024usize).saturating_sub(self.stderr.len());
                self.stderr.extend_from_slice(&data[..data.len().min(room)]);
            }
            ChannelMsg::ExitStatus { exit_status } => {
                self.status.code = Some(exit_status);
                self.got_status = true;
            }
            ChannelMsg::ExitSignal {
                signal_name: sig, ..
            } => {
                self.status.signal = Some(signal_name(&sig));
                self.got_status = true;
            }
            _ => {}
        }
        None
    }

    fn finish(
        self,
        handle: &Handle<ClientHandler>,
        addr: &str,
        during: &str,
        input_left: bool,
    ) -> Result<HelperOutcome, SshError> {
        if !self.got_status && handle.is_closed() {
            return Err(SshError::Disconnected {
                addr: addr.to_string(),
                during: during.to_string(),
            });
        }
        Ok(HelperOutcome {
            status: self.status,
            stderr: String::from_utf8_lossy(&self.stderr).trim().to_string(),
            input_left,
            abandoned: false,
        })
    }
}

/// Runs `command` with its stdin fed from `input` until that closes.
pub(crate) async fn run_with_input(
    handle: &Handle<ClientHandler>,
    addr: &str,
    command: &str,
    during: &str,
    mut input: mpsc::Receiver<Bytes>,
    cancel: &CancellationToken,
) -> Result<HelperOutcome, SshError> {
    let channel = start(handle, addr, command, during).await?;
    let (mut reader, writer) = channel.split();
    let writer = &writer;
    let send_all = async move {
        while let Some(chunk) = input.recv().await {
            writer.data_bytes(chunk).await?;
        }
        writer.eof().await
    };
    tokio::pin!(send_all);
    let mut sent = false;
    let mut collector = StatusCollector::default();
    loop {
        tokio::select! {
            r = &mut send_all, if !sent => {
                sent = true;
                if let Err(e) = r {
                    // The remote side went away; its status (read below) says why.
                    tracing::debug!(error = %e, "{during}: sending stopped");
                }
            }
            msg = reader.wait() => match msg {
                Some(ChannelMsg::Close) | None => break,
                Some(m) => { collector.take(m); }
            },
            _ = cancel.cancelled() => {
                let _ = writer.close().await;
                return Err(SshError::Cancelled);
            }
        }
    }
    // Returning drops `input`: a producer still writing sees a broken pipe.
    collector.finish(handle, addr, during, !sent)
}

/// Runs `command` and forwards its stdout to `output` (bounded: a slow
/// consumer slows the channel down instead of buffering).
pub(crate) async fn run_with_output(
    handle: &Handle<ClientHandler>,
    addr: &str,
    command: &str,
    during: &str,
    output: mpsc::Sender<Bytes>,
    cancel: &CancellationToken,
) -> Result<HelperOutcome, SshError> {
    let mut channel = start(handle, addr, command, during).await?;
    channel.eof().await.map_err(|e| SshError::Protocol {
        op: format!("closing stdin for {during}"),
        addr: addr.to_string(),
        source: Box::new(e),
    })?;
    let mut output = Some(output);
    let mut collector = StatusCollector::default();
    // Bytes that arrived after the local side stopped reading. A complete
    // archive leaves only tar's record padding (< 10 KiB), which is drained so
    // that the exit status (tar exits 2 after an unreadable file) is seen;
    // much more means the local side failed early, and the rest is not worth
    // transferring. Never close the channel and then keep waiting: with
    // russh 0.65 the server's close is then not delivered, and the wait hangs
    // (seen as an intermittent hang of downloads).
    let mut unread = 0usize;
    loop {
        let msg = tokio::select! {
            m = channel.wait() => m,
            _ = cancel.cancelled() => {
                let _ = channel.close().await;
                return Err(SshError::Cancelled);
            }
        };
        let Some(msg) = msg else { break };
        if matches!(msg, ChannelMsg::Close) {
            break;
        }
        let Some(data) = collector.take(msg) else {
            continue;
        };
        match output.as_ref() {
            Some(tx) => {
                if let Err(unsent) = tx.send(data).await {
                    unread += unsent.0.len();
                    output = None;
                }
            }
            None => unread += data.len(),
        }
        if unread > ABANDON_AFTER {
            // Do not wait for the channel to close after closing it ourselves:
            // the local side's error is the outcome.
            let _ = channel.close().await;
            return Ok(HelperOutcome {
                status: collector.status,
                stderr: String::new(),
                input_left: false,
                abandoned: true,
            });
        }
    }
    drop(output);
    collector.finish(handle, addr, during, false)
}
