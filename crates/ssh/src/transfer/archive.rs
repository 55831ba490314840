//! Building the upload stream from a local tree, on a blocking thread.
//!
//! The tree is walked once; every entry goes straight into the tar stream
//! (no temporary file, nothing buffered beyond the pipe's few chunks).
//! Symlinks are followed, as scp does; a symlink pointing back to one of its
//! ancestors is an error instead of an endless tree.

use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::{Builder, EntryType, Header};

use super::stats::UploadStats;
use crate::error::SshError;

/// Writes the contents of directory `root` (not `root` itself) as a tar archive; every entry's mode is its
/// permission bits less `umask` (the remote one: what scp lands).
pub(crate) fn write_tree<W: Write>(
    root: &Path,
    out: W,
    umask: u32,
) -> Result<UploadStats, SshError> {
    let mut builder = Builder::new(BufWriter::with_capacity(super::pipe::CHUNK, out));
    let mut stats = UploadStats::default();
    let root_meta = fs::metadata(root).map_err(|e| local("reading", root, e))?;
    let mut ancestors = vec![(root_meta.dev(), root_meta.ino())];
    add_dir_contents(
        &mut builder,
        root,
        Path::new(""),
        &mut ancestors,
        &mut stats,
        umask,
    )?;
    let mut inner = builder
        .into_inner()
        .map_err(|e| local("archiving", root, e))?;
    inner.flush().map_err(|e| local("archiving", root, e))?;
    Ok(stats)
}

/// Streams one file's bytes (exactly the size it had when stat'ed).
pub(crate) fn write_file<W: Write>(
    path: &Path,
    meta: &Metadata,
    out: W,
) -> Result<UploadStats, SshError> {
    let file = File::open(path).map_err(|e| local("opening", path, e))?;
    let mut reader = ExactReader {
        inner: file,
        remaining: meta.len(),
    };
    let mut out = BufWriter::with_capacity(super::pipe::CHUNK, out);
    io::copy(&mut reader, &mut out).map_err(|e| local("reading", path, e))?;
    out.flush().map_err(|e| local("uploading", path, e))?;
    Ok(UploadStats {
        files: 1,
        dirs: 0,
        bytes: meta.len(),
    })
}

fn local(op: &'static str, path: &Path, source: io::Error) -> SshError {
    SshError::Local {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn add_dir_contents<W: Write>(
    builder: &mut Builder<W>,
    dir: &Path,
    rel: &Path,
    ancestors: &mut Vec<(u64, u64)>,
    stats: &mut UploadStats,
    umask: u32,
) -> Result<(), SshError> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| local("listing", dir, e))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| local("listing", dir, e))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel_path = rel.join(&name);
        // fs::metadata follows symlinks: a link to a file uploads the file.
        let meta = fs::metadata(&path).map_err(|e| local("reading", &path, e))?;
        if meta.is_dir() {
            let id = (meta.dev(), meta.ino());
            if ancestors.contains(&id) {
                return Err(local(
                    "uploading",
                    &path,
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "symlink loop: it points to one of its parent directories",
                    ),
                ));
            }
            let mut header = header_for(&meta, EntryType::Directory, 0, umask);
            builder
                .append_data(&mut header, with_slash(&rel_path), io::empty())
                .map_err(|e| local("archiving", &path, e))?;
            stats.dirs += 1;
            ancestors.push(id);
            add_dir_contents(builder, &path, &rel_path, ancestors, stats, umask)?;
            ancestors.pop();
        } else if meta.is_file() {
            let file = File::open(&path).map_err(|e| local("opening", &path, e))?;
            let mut header = header_for(&meta, EntryType::Regular, meta.len(), umask);
            let reader = ExactReader {
                inner: file,
                remaining: meta.len(),
            };
            builder
                .append_data(&mut header, &rel_path, reader)
                .map_err(|e| local("archiving", &path, e))?;
            stats.files += 1;
            stats.bytes += meta.len();
        } else {
            // Like scp: devices, sockets and fifos are not uploaded.
            tracing::warn!(path = %path.display(), "not a regular file or directory, skipped");
        }
    }
    Ok(())
}

fn with_slash(rel: &Path) -> PathBuf {
    let mut s = rel.as_os_str().to_os_string();
    s.push("/");
    PathBuf::from(s)
}

/// Mode (permission bits less `umask`) and mtime from the local file; owner 0 and no names, so that a
/// remote root extracting the archive never assigns our local uid.
fn header_for(meta: &Metadata, kind: EntryType, size: u64, umask: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o777 & !umask);
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h
}

/// Yields exactly `remaining` bytes: a file that grows is cut at its
/// stat'ed size, one that shrinks is an error (the archive would be corrupt).
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being uploaded",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn entries(archive: &[u8]) -> Vec<(String, EntryType, u32, Vec<u8>)> {
        let mut a = tar::Archive::new(archive);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.mode().unwrap(),
                    data,
                )
            })
            .collect()
    }

    #[test]
    fn archives_contents_with_modes_follows_symlinks_and_keeps_empty_dirs() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("tree");
        fs::create_dir_all(root.join("sub/empty")).unwrap();
        fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("sub/b.txt"), "b").unwrap();
        fs::set_permissions(root.join("sub/b.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        symlink("run.sh", root.join("link")).unwrap();
        let mut out = Vec::new();
        let stats = write_tree(&root, &mut out, 0).unwrap();
        assert_eq!(
            stats,
            UploadStats {
                files: 3,
                dirs: 2,
                bytes: 10 + 1 + 10
            }
        );
        let got = entries(&out);
        let names: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["link", "run.sh", "sub/", "sub/b.txt", "sub/empty/"]);
        assert_eq!(got[0].1, EntryType::Regular, "symlink followed");
        assert_eq!(got[0].3, b"#!/bin/sh\n");
        assert_eq!(got[1].2, 0o755);
        assert_eq!(got[2].1, EntryType::Directory);
        assert_eq!(got[3].2, 0o600);
        assert_eq!(got[4].1, EntryType::Directory);
    }

    #[test]
    fn long_names_survive() {
        let t = tempfile::tempdir().unwrap();
        let deep = "d".repeat(90) + "/" + &"e".repeat(90) + "/" + &"f".repeat(90);
        fs::create_dir_all(t.path().join(&deep)).unwrap();
        fs::write(t.path().join(&deep).join("file"), "x").unwrap();
        let mut out = Vec::new();
        write_tree(t.path(), &mut out, 0).unwrap();
        let names: Vec<_> = entries(&out).into_iter().map(|e| e.0).collect();
        assert!(names.contains(&format!("{deep}/file")), "{names:?}");
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("a")).unwrap();
        symlink("..", t.path().join("a/up")).unwrap();
        let err = write_tree(t.path(), Vec::new(), 0).unwrap_err();
        assert!(err.to_string().contains("symlink loop"), "{err}");
        assert!(err.to_string().contains("a/up"), "{err}");
    }

    #[test]
    fn dangling_symlink_names_the_path() {
        let t = tempfile::tempdir().unwrap();
        symlink("missing", t.path().join("dangling")).unwrap();
        let err = write_tree(t.path(), Vec::new(), 0).unwrap_err();
        assert!(err.to_string().contains("dangling"), "{err}");
    }

    #[test]
    fn exact_reader_cuts_growth_and_rejects_shrinking() {
        let mut r = ExactReader {
            inner: &b"abcdef"[..],
            remaining: 3,
        };
        let mut s = Vec::new();
        r.read_to_end(&mut s).unwrap();
        assert_eq!(s, b"abc");
        let mut r = ExactReader {
            inner: &b"ab"[..],
            remaining: 3,
        };
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }
}
