/*!
File transfer: one tar stream over one exec channel per transfer.

A directory tree travels as a tar archive built on the fly from the local
tree (a blocking thread writing into a bounded pipe; no temporary file, no
per-file round trip) into a small POSIX `sh` helper on the remote side that
picks the destination and runs `tar -xpof -`. Downloads are the mirror image
(`tar -chf -` remotely, unpacked locally). The remote side needs `sh` and a
`tar` that understands `-x -p -o -f` and `-c -h -f` (GNU tar, bsdtar, busybox).

# Upload semantics (Packer 1.6.6's scp, observed against OpenSSH 9.2)

| source | destination | result |
| --- | --- | --- |
| `dir` | `/dst` absent | contents in `/dst/` (created with `dir`'s mode) |
| `dir` | `/dst` existing directory (with or without `/`) | `/dst/dir/…` |
| `dir/` | `/dst` existing directory | contents in `/dst/` (its mode untouched) |
| `dir/` | `/dst` absent | **contents in `/dst/`, created** — Packer fails with a partial, flattened tree |
| `file` | `/dst/` existing directory | `/dst/file` |
| `file` | `/path` not a directory | written as `/path` |
| `file` | `/dir` existing directory, no slash | **`/dir/file`** — Packer fails with `scp: /dir: Is a directory` |

Further deliberate differences from Packer: missing parent directories of
the destination are created (Packer fails with `No such file or
directory`); files keep their modification time (scp gives them the upload
time); a file or directory that already exists inside the destination gets
the source's mode (scp leaves it).

In both: symlinks are followed; modes are the permission bits under the
remote user's umask, as scp lands them (a group-writable 0664/0775 checkout
lands 0644/0755 under umask 022; 0755 scripts and 0600 secrets keep their
modes; set-uid/set-gid/sticky bits are not sent); empty directories arrive;
ownership is the remote user's (the
archive carries uid 0 and `tar -o` is used, so a remote root never assigns
local uids). A destination starting with `~/` is relative to the remote home
directory, as with Packer (whose scp command passes it through the remote
shell); every other character is taken literally.

# Download semantics

scp's rules, mirrored: a remote file goes to `local` or, if `local` is an
existing directory or ends with `/`, to `local/<name>`; a remote directory
goes to `local` if absent, to `local/<name>` if `local` is an existing
directory, and its contents into `local` when the remote path ends with `/`.
Modes and modification times are kept.
*/

mod archive;
mod extract;
mod paths;
mod pipe;
mod stats;

pub use stats::UploadStats;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use russh::client::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connect::ClientHandler;
use crate::error::SshError;
use crate::quote::{remote_path_word, shell_quote};
use paths::means_contents;

/// Remote helper for a directory upload. Arguments: destination, source
/// directory name, source mode (octal), `contents` or `dir`.
const UPLOAD_DIR: &str = r#"set -e
d=$1 n=$2 m=$3
case $d in -*) d=./$d ;; esac
if [ "$4" = contents ]; then t=$d
elif [ -d "$d" ]; then t=${d%/}/$n
else t=$d
fi
new=
[ -d "$t" ] || { mkdir -p "$t"; new=1; }
cd "$t"
tar -xpof -
if [ -n "$new" ] && [ "$4" != contents ]; then chmod "$m" .; fi
"#;

/// Remote helper for a single-file upload. Arguments: destination, file name
/// (empty when the destination must be the file itself), mode (octal).
const UPLOAD_FILE: &str = r#"set -e
d=$1 n=$2 m=$3
case $d in -*) d=./$d ;; esac
isdir() { echo "$d: Is a directory" >&2; exit 1; }
if [ -d "$d" ]; then
  [ -n "$n" ] || isdir
  t=${d%/}/$n
else
  case $d in
    */) [ -n "$n" ] || isdir; mkdir -p "$d"; t=$d$n ;;
    */*) p=${d%/*}; [ -z "$p" ] || [ -d "$p" ] || mkdir -p "$p"; t=$d ;;
    *) t=$d ;;
  esac
fi
(umask 077 && cat > "$t")
chmod "$m" "$t"
"#;

/// Remote helper for a download. Argument: the remote path. Writes `D\n` or
/// `F\n`, then the tar stream.
const DOWNLOAD: &str = r#"p=$1
case $p in -*) p=./$p ;; esac
if [ -d "$p" ]; then
  cd "$p" || exit 1
  printf 'D\n'
  exec tar -chf - .
elif [ -e "$p" ]; then
  case $p in */*) cd "${p%/*}/" || exit 1 ;; esac
  printf 'F\n'
  exec tar -chf - "./${p##*/}"
else
  echo "$p: No such file or directory" >&2
  exit 1
fi
"#;

/// `sh -c '<script>' <name> <args>`: the script runs under `sh` whatever the
/// user's login shell is; `~/` in the destination is expanded by that shell.
fn helper_command(name: &str, script: &str, args: &[String]) -> String {
    let mut cmd = format!("sh -c {} {}", shell_quote(script), name);
    for a in args {
        cmd.push(' ');
        cmd.push_str(a);
    }
    cmd
}

pub(crate) fn upload_dir_command(
    remote: &str,
    name: &str,
    mode: u32,
    contents_only: bool,
) -> String {
    let kind = if contents_only { "contents" } else { "dir" };
    let args = [
        remote_path_word(remote),
        shell_quote(name),
        format!("{mode:o}"),
        kind.to_string(),
    ];
    helper_command("bakery-upload", UPLOAD_DIR, &args)
}

pub(crate) fn upload_file_command(remote: &str, name: Option<&str>, mode: u32) -> String {
    let args = [
        remote_path_word(remote),
        shell_quote(name.unwrap_or("")),
        format!("{mode:o}"),
    ];
    helper_command("bakery-upload", UPLOAD_FILE, &args)
}

pub(crate) fn download_command(remote: &str) -> String {
    helper_command("bakery-download", DOWNLOAD, &[remote_path_word(remote)])
}

fn check_remote(remote: &str) -> Result<(), SshError> {
    if remote.is_empty() || remote.contains('\0') {
        return Err(SshError::Invalid(format!("invalid remote path {remote:?}")));
    }
    Ok(())
}

/// Everything a transfer needs from the communicator.
pub(crate) struct Link<'a> {
    pub handle: &'a Handle<ClientHandler>,
    pub addr: &'a str,
    pub cancel: &'a CancellationToken,
}

/// Uploads a local file or directory to `remote` (see the module docs).
pub(crate) async fn upload_path(
    link: &Link<'_>,
    local: &Path,
    remote: &str,
    umask: u32,
) -> Result<UploadStats, SshError> {
    check_remote(remote)?;
    let meta = std::fs::metadata(local).map_err(|e| SshError::Local {
        op: "reading",
        path: local.to_path_buf(),
        source: e,
    })?;
    // As scp: the permission bits only, under the remote umask.
    let mode = meta.mode() & 0o777 & !umask;
    // The real name, also for `.` or `..`.
    let name = std::fs::canonicalize(local)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .ok_or_else(|| {
            SshError::Invalid(format!("cannot upload {}: it has no name", local.display()))
        })?;
    let from = local.display().to_string();
    let owned = local.to_path_buf();
    if meta.is_dir() {
        let contents_only = means_contents(local.as_os_str().as_bytes());
        let cmd = upload_dir_command(remote, &name, mode, contents_only);
        run_upload(link, cmd, from, remote, move |w| {
            archive::write_tree(&owned, w, umask)
        })
        .await
    } else if meta.is_file() {
        let cmd = upload_file_command(remote, Some(&name), mode);
        run_upload(link, cmd, from, remote, move |w| {
            archive::write_file(&owned, &meta, w)
        })
        .await
    } else {
        Err(SshError::Invalid(format!(
            "cannot upload {from}: not a regular file or directory"
        )))
    }
}

/// Writes `data` to the remote file `remote` with `mode` (parents created).
pub(crate) async fn upload_bytes(
    link: &Link<'_>,
    data: &[u8],
    remote: &str,
    mode: u32,
) -> Result<(), SshError> {
    check_remote(remote)?;
    let cmd = upload_file_command(remote, None, mode & 0o7777);
    let data = bytes::Bytes::copy_from_slice(data);
    run_upload(
        link,
        cmd,
        format!("<{} bytes>", data.len()),
        remote,
        move |mut w| {
            use std::io::Write;
            w.write_all(&data).map_err(|e| SshError::Local {
                op: "uploading",
                path: PathBuf::from("<data>"),
                source: e,
            })?;
            Ok(UploadStats {
                files: 1,
                dirs: 0,
                bytes: data.len() as u64,
            })
        },
    )
    .await
    .map(|_| ())
}

async fn run_upload<F>(
    link: &Link<'_>,
    cmd: String,
    from: String,
    to: &str,
    produce: F,
) -> Result<UploadStats, SshError>
where
    F: FnOnce(pipe::ChunkWriter) -> Result<UploadStats, SshError> + Send + 'static,
{
    let during = format!("upload {from} => {to}");
    let (tx, rx) = mpsc::channel(pipe::DEPTH);
    let producer = tokio::task::spawn_blocking(move || produce(pipe::ChunkWriter::new(tx)));
    let outcome =
        pipe::run_with_input(link.handle, link.addr, &cmd, &during, rx, link.cancel).await;
    let produced = producer.await.unwrap_or_else(|e| {
        Err(SshError::Invalid(format!(
            "{during}: archiver thread failed: {e}"
        )))
    });
    let outcome = outcome?;
    // A local failure (unreadable file…) explains a remote "unexpected EOF",
    // while a broken pipe locally is only the echo of a remote failure.
    if let Err(e) = &produced
        && !is_broken_pipe(e)
    {
        return produced;
    }
    if !outcome.status.success() {
        return Err(SshError::RemoteTransfer {
            op: "upload",
            from,
            to: to.to_string(),
            status: outcome.status,
            stderr: outcome.stderr,
        });
    }
    if outcome.input_left {
        return Err(SshError::RemoteTransfer {
            op: "upload",
            from,
            to: to.to_string(),
            status: outcome.status,
            stderr: "the remote helper exited before reading all data".into(),
        });
    }
    produced
}

fn is_broken_pipe(e: &SshError) -> bool {
    matches!(e, SshError::Local { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Downloads a remote file or directory to `local` (see the module docs).
pub(crate) async fn download_path(
    link: &Link<'_>,
    remote: &str,
    local: &Path,
) -> Result<UploadStats, SshError> {
    check_remote(remote)?;
    let during = format!("download {remote} => {}", local.display());
    let (tx, rx) = mpsc::channel(64);
    let (remote_owned, local_owned) = (remote.to_string(), local.to_path_buf());
    let extractor = tokio::task::spawn_blocking(move || {
        extract::extract(pipe::ChunkReader::new(rx), &remote_owned, &local_owned)
    });
    let outcome = pipe::run_with_output(
        link.handle,
        link.addr,
        &download_command(remote),
        &during,
        tx,
        link.cancel,
    )
    .await;
    let extracted = extractor.await.unwrap_or_else(|e| {
        Err(SshError::Invalid(format!(
            "{during}: extractor thread failed: {e}"
        )))
    });
    let outcome = outcome?;
    if outcome.abandoned {
        // The local side stopped early: its error is the one to report.
        return match extracted {
            Err(e) => Err(e),
            Ok(_) => Err(SshError::Invalid(format!(
                "{during}: unexpected data after the archive"
            ))),
        };
    }
    if !outcome.status.success() {
        return Err(SshError::RemoteTransfer {
            op: "download",
            from: remote.to_string(),
            to: local.display().to_string(),
            status: outcome.status,
            stderr: outcome.stderr,
        });
    }
    extracted
}

#[cfg(test)]
mod tests;
