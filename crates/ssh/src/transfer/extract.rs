//! Unpacking a download stream locally, on a blocking thread.
//!
//! The remote helper first writes `D\n` (a directory follows, as a tar of its
//! contents rooted at `./`) or `F\n` (a tar holding the one file), then the tar.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use tar::{Archive, EntryType};

use super::paths::download_target;
use super::stats::UploadStats;
use crate::error::SshError;

fn local(op: &'static str, path: &Path, source: io::Error) -> SshError {
    SshError::Local {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the stream and writes the file or tree to where scp semantics put it.
pub(crate) fn extract<R: Read>(
    mut stream: R,
    remote: &str,
    local_path: &Path,
) -> Result<UploadStats, SshError> {
    let mut marker = [0u8; 2];
    if let Err(e) = stream.read_exact(&mut marker) {
        // Nothing arrived: the remote helper failed; its stderr explains why.
        return Err(local("downloading to", local_path, e));
    }
    let remote_is_dir = match &marker {
        b"D\n" => true,
        b"F\n" => false,
        other => {
            let msg = format!(
                "unexpected reply from the remote helper: {:?}",
                String::from_utf8_lossy(other)
            );
            return Err(local(
                "downloading to",
                local_path,
                io::Error::new(io::ErrorKind::InvalidData, msg),
            ));
        }
    };
    let target = download_target(remote, local_path, remote_is_dir, local_path.is_dir());
    let mut archive = Archive::new(stream);
    if remote_is_dir {
        extract_tree(&mut archive, &target.path, target.contents_only)
    } else {
        extract_file(&mut archive, &target.path)
    }
}

/// The mode a downloaded file or directory gets here: the instance's, without setuid, setgid, sticky
/// and world-write (an instance must not be able to plant a setuid or world-writable file on this
/// machine).
pub(crate) fn local_mode(remote: u32) -> u32 {
    remote & 0o775
}

fn set_local_mode(path: &Path, remote: u32) -> Result<(), SshError> {
    fs::set_permissions(path, fs::Permissions::from_mode(local_mode(remote)))
        .map_err(|e| local("setting mode of", path, e))
}

fn extract_file<R: Read>(archive: &mut Archive<R>, target: &Path) -> Result<UploadStats, SshError> {
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| local("creating", parent, e))?;
    }
    let mut stats = UploadStats::default();
    for entry in archive
        .entries()
        .map_err(|e| local("downloading to", target, e))?
    {
        let mut entry = entry.map_err(|e| local("downloading to", target, e))?;
        if entry.header().entry_type() != EntryType::Regular || stats.files > 0 {
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        stats.bytes = entry.size();
        entry
            .unpack(target)
            .map_err(|e| local("writing", target, e))?;
        set_local_mode(target, mode)?;
        stats.files = 1;
    }
    if stats.files == 0 {
        let e = io::Error::new(io::ErrorKind::InvalidData, "the remote helper sent no file");
        return Err(local("downloading to", target, e));
    }
    Ok(stats)
}

fn extract_tree<R: Read>(
    archive: &mut Archive<R>,
    target: &Path,
    contents_only: bool,
) -> Result<UploadStats, SshError> {
    let existed = target.is_dir();
    fs::create_dir_all(target).map_err(|e| local("creating", target, e))?;
    let mut stats = UploadStats::default();
    // Directory modes are applied last, deepest first, so that a read-only
    // directory does not stop its own contents from being written.
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    for entry in archive
        .entries()
        .map_err(|e| local("downloading to", target, e))?
    {
        let mut entry = entry.map_err(|e| local("downloading to", target, e))?;
        let rel: PathBuf = entry
            .path()
            .map_err(|e| local("downloading to", target, e))?
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        let mode = local_mode(entry.header().mode().unwrap_or(0o755));
        match entry.header().entry_type() {
            EntryType::Directory => {
                if rel.as_os_str().is_empty() {
                    // The remote directory itself: its mode goes onto a directory we create.
                    if !existed && !contents_only {
                        dir_modes.push((target.to_path_buf(), mode));
                    }
                    continue;
                }
                if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                    let e = io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unsafe path {rel:?} in download"),
                    );
                    return Err(local("downloading to", target, e));
                }
                let dir = target.join(&rel);
                fs::create_dir_all(&dir).map_err(|e| local("creating", &dir, e))?;
                dir_modes.push((dir, mode));
                stats.dirs += 1;
            }
            EntryType::Regular | EntryType::Link => {
                let regular = entry.header().entry_type() == EntryType::Regular;
                entry.set_preserve_mtime(true);
                stats.bytes += entry.size();
                let written = entry
                    .unpack_in(target)
                    .map_err(|e| local("writing", &target.join(&rel), e))?;
                if !written {
                    let e = io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unsafe path {rel:?} in download"),
                    );
                    return Err(local("downloading to", target, e));
                }
                if regular {
                    set_local_mode(&target.join(&rel), mode)?;
                }
                stats.files += 1;
            }
            other => {
                tracing::warn!(path = %rel.display(), kind = ?other, "download: entry type not supported, skipped")
            }
        }
    }
    dir_modes.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (dir, mode) in dir_modes {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .map_err(|e| local("setting mode of", &dir, e))?;
    }
    Ok(stats)
}
