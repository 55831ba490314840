//! The `manifest` post-processor: appends the build's artifact to a JSON
//! file (`packer-manifest.json` by default) in Packer's exact shape and
//! printing, both defined once in `bakery_core::packer_manifest` (rollout
//! reads the same file).
//!
//! Like Packer: an existing file is read and appended to; with `-force` a
//! file written by a *different* run (other `last_run_uuid`) starts afresh,
//! while builds of the same run keep appending; `build_time` is left out
//! when zero (`strip_time`); a `<output>.lock` file guards against other
//! processes. Within this process a mutex serialises parallel builds.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub use bakery_core::packer_manifest::{
    ManifestArtifactFile, ManifestBuild, ManifestFile, amazon_artifact_id, to_go_json,
};
use bakery_core::ui::Ui;
use bakery_template::Secrets;
use bakery_template::late::LateContext;
use bakery_template::schema::ManifestConfig;

use crate::error::ProvisionError;

/// What a build produced, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The build's (rendered) name.
    pub build_name: String,
    /// `amazon-ebs`.
    pub builder_type: String,
    /// Packer's artifact id: `us-east-1:ami-1,us-west-2:ami-2` (see [`amazon_artifact_id`]).
    pub artifact_id: String,
    /// Local files of the artifact (none for amazon-ebs: written as `null`).
    pub files: Option<Vec<String>>,
    /// Unix time the build finished.
    pub build_time: u64,
}

/// Replaces sensitive values with `<sensitive>` before anything is written.
pub trait Masker {
    /// `s` with every sensitive value masked.
    fn mask(&self, s: &str) -> String;
}

impl Masker for Secrets {
    fn mask(&self, s: &str) -> String {
        Secrets::mask(self, s)
    }
}

impl Masker for Ui {
    fn mask(&self, s: &str) -> String {
        Ui::mask(self, s)
    }
}

/// Serialises in-process writers (parallel builds); the lock file covers other processes.
static WRITING: Mutex<()> = Mutex::new(());

/// Appends `artifact` to the manifest at `cfg.output` (relative to the
/// current directory) and returns that path. `run_uuid` is this run's
/// `PACKER_RUN_UUID`; `truncate` is `-force`; `late` renders `custom_data`;
/// every string written passes through `masker`.
pub fn write(
    cfg: &ManifestConfig,
    artifact: &Artifact,
    run_uuid: &str,
    late: &LateContext,
    truncate: bool,
    masker: &dyn Masker,
) -> Result<PathBuf, ProvisionError> {
    let entry = build_entry(cfg, artifact, run_uuid, late, masker)?;
    let path = PathBuf::from(&cfg.output);
    let _in_process = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let _lock = LockFile::acquire(&path);

    let mut manifest = read_existing(&path)?;
    if truncate && manifest.last_run_uuid != run_uuid {
        manifest = ManifestFile::default();
    }
    manifest.builds.push(entry);
    manifest.last_run_uuid = masker.mask(run_uuid);

    let text = to_go_json(&manifest).map_err(|e| ProvisionError::Manifest {
        message: "Unable to marshal JSON for",
        path: path.clone(),
        detail: e.to_string(),
    })?;
    write_file(&path, text.as_bytes()).map_err(|e| ProvisionError::Manifest {
        message: "Unable to write",
        path: path.clone(),
        detail: e.to_string(),
    })?;
    Ok(path)
}

fn build_entry(
    cfg: &ManifestConfig,
    artifact: &Artifact,
    run_uuid: &str,
    late: &LateContext,
    masker: &dyn Masker,
) -> Result<ManifestBuild, ProvisionError> {
    let custom_data = if cfg.custom_data.is_empty() {
        None
    } else {
        let mut data = BTreeMap::new();
        for (k, t) in &cfg.custom_data {
            let v = t.render(late).map_err(|e| ProvisionError::Render {
                provisioner: "manifest",
                field: format!("custom_data[{k}]"),
                message: format!("Error interpolating custom data: {}", e.message),
            })?;
            data.insert(masker.mask(k), masker.mask(&v));
        }
        Some(data)
    };
    let files = artifact.files.as_ref().map(|files| {
        files
            .iter()
            .map(|f| ManifestArtifactFile {
                name: masker.mask(&if cfg.strip_path {
                    go_base(f)
                } else {
                    f.clone()
                }),
                size: std::fs::metadata(f)
                    .map(|m| i64::try_from(m.len()).unwrap_or(i64::MAX))
                    .unwrap_or(0),
            })
            .collect()
    });
    Ok(ManifestBuild {
        name: masker.mask(&artifact.build_name),
        builder_type: masker.mask(&artifact.builder_type),
        build_time: if cfg.strip_time {
            0
        } else {
            i64::try_from(artifact.build_time).unwrap_or(i64::MAX)
        },
        files,
        artifact_id: masker.mask(&artifact.artifact_id),
        packer_run_uuid: masker.mask(run_uuid),
        custom_data,
    })
}

/// Go's `filepath.Base`: the last element, trailing slashes ignored.
fn go_base(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() { "." } else { "/" }.to_string();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

fn read_existing(path: &Path) -> Result<ManifestFile, ProvisionError> {
    let contents = match std::fs::read(path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ManifestFile::default()),
        Err(e) => {
            return Err(ProvisionError::Manifest {
                message: "Unable to open for reading",
                path: path.to_path_buf(),
                detail: e.to_string(),
            });
        }
    };
    if contents.is_empty() {
        return Ok(ManifestFile::default());
    }
    serde_json::from_slice(&contents).map_err(|e| ProvisionError::Manifest {
        message: "Unable to parse content from",
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// Written in place (truncated, not replaced), with mode 0664 for a new file, as Packer writes it.
fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o664)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// `<output>.lock`, created exclusively; Packer tries three times (0, 200,
/// 400 ms apart) and then goes ahead anyway. Removed only if we created it.
struct LockFile(Option<PathBuf>);

impl LockFile {
    fn acquire(output: &Path) -> LockFile {
        let mut name = output.as_os_str().to_owned();
        name.push(".lock");
        let lock = PathBuf::from(name);
        for i in 0..3u64 {
            std::thread::sleep(Duration::from_millis(200 * i));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(_) => return LockFile(Some(lock)),
                Err(e) => {
                    tracing::debug!(error = %e, lock = %lock.display(), "manifest lock busy, retrying");
                }
            }
        }
        tracing::warn!(lock = %lock.display(), "could not lock the manifest; writing anyway (as Packer does)");
        LockFile(None)
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests;
