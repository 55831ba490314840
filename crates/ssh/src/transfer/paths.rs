//! Where things land: the pure path rules of uploads and downloads (scp's `dir` vs `dir/`), kept apart from
//! the I/O so that the archive, extract and transfer code can all use them.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `dir/`, `dir/.` and `.` mean "the contents of dir", as with scp/rsync.
pub(super) fn means_contents(path: &[u8]) -> bool {
    path.ends_with(b"/") || path.ends_with(b"/.") || path == b"."
}

/// The last component of a remote path (`/a/b/` → `b`).
pub(super) fn remote_basename(remote: &str) -> &str {
    let trimmed = remote.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Where a download lands locally.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DownloadTarget {
    pub path: PathBuf,
    /// Only the remote directory's contents are copied into `path`.
    pub contents_only: bool,
}

pub(super) fn download_target(
    remote: &str,
    local: &Path,
    remote_is_dir: bool,
    local_is_dir: bool,
) -> DownloadTarget {
    let local_slash = local.as_os_str().as_bytes().ends_with(b"/");
    let name = remote_basename(remote);
    if !remote_is_dir {
        let path = if local_slash || local_is_dir {
            local.join(name)
        } else {
            local.to_path_buf()
        };
        return DownloadTarget {
            path,
            contents_only: false,
        };
    }
    if means_contents(remote.as_bytes()) {
        return DownloadTarget {
            path: local.to_path_buf(),
            contents_only: true,
        };
    }
    let path = if local_is_dir {
        local.join(name)
    } else {
        local.to_path_buf()
    };
    DownloadTarget {
        path,
        contents_only: false,
    }
}
