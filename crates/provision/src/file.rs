//! The `file` provisioner: local files and trees up to the instance, or
//! remote ones down, with Packer's scp semantics (the communicator keeps
//! them, including the trailing-slash rule for directories). Relative local
//! paths resolve against the current directory, as in Packer 1.6.6.

use std::path::Path;

use bakery_template::schema::FileConfig;

use crate::context::ProvisionContext;
use crate::error::ProvisionError;

const P: &str = "file";

pub(crate) async fn run(
    cfg: &FileConfig,
    cx: &mut ProvisionContext<'_>,
) -> Result<(), ProvisionError> {
    match cfg.direction.as_str() {
        "download" => download(cfg, cx).await,
        "upload" => upload(cfg, cx).await,
        other => Err(ProvisionError::Invalid {
            provisioner: P,
            message: format!("Direction must be one of: download, upload (got {other:?})."),
        }),
    }
}

async fn upload(cfg: &FileConfig, cx: &mut ProvisionContext<'_>) -> Result<(), ProvisionError> {
    let dst = &cfg.destination;
    if let Some(content) = &cfg.content {
        cx.ui
            .say(&cx.build_name, &format!("Uploading content => {dst}"));
        if dst.ends_with('/') {
            return Err(ProvisionError::Invalid {
                provisioner: P,
                message: format!("content needs a file destination, not the directory {dst:?}"),
            });
        }
        return cx
            .comm
            .upload_bytes(content.as_bytes(), dst, 0o644)
            .await
            .map_err(|source| failed(cx, format!("uploading content to {dst}"), source));
    }
    for src in &cfg.sources {
        cx.ui
            .say(&cx.build_name, &format!("Uploading {src} => {dst}"));
        // Checked here even with `generated` (which only skips the check at
        // validation time): a clear local error beats a failed transfer.
        std::fs::metadata(src).map_err(|source| ProvisionError::Local {
            provisioner: P,
            op: "reading source",
            path: src.into(),
            source,
        })?;
        let stats = cx
            .comm
            .upload_path(Path::new(src), dst)
            .await
            .map_err(|source| failed(cx, format!("uploading {src} => {dst}"), source))?;
        tracing::debug!(?stats, "uploaded {src} => {dst}");
    }
    Ok(())
}

async fn download(cfg: &FileConfig, cx: &mut ProvisionContext<'_>) -> Result<(), ProvisionError> {
    let dst = &cfg.destination;
    for src in &cfg.sources {
        cx.ui
            .say(&cx.build_name, &format!("Downloading {src} => {dst}"));
        if src.contains(['*', '?', '[']) {
            return Err(ProvisionError::Invalid {
                provisioner: P,
                message: format!(
                    "wildcards in a download source are not supported ({src:?}); download the directory instead"
                ),
            });
        }
        // Packer creates the local directory first: `dst` itself when it
        // ends with `/`, its parent otherwise.
        let dir = if dst.ends_with('/') {
            Path::new(dst.as_str())
        } else {
            Path::new(dst.as_str()).parent().unwrap_or(Path::new(""))
        };
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|source| ProvisionError::Local {
                provisioner: P,
                op: "creating directory",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let stats = cx
            .comm
            .download_path(src, Path::new(dst.as_str()))
            .await
            .map_err(|source| failed(cx, format!("downloading {src} => {dst}"), source))?;
        tracing::debug!(?stats, "downloaded {src} => {dst}");
    }
    Ok(())
}

/// Packer prints `Upload failed: …` / `Download failed: …` before failing.
fn failed(cx: &ProvisionContext<'_>, what: String, source: bakery_ssh::SshError) -> ProvisionError {
    let verb = if what.starts_with("downloading") {
        "Download"
    } else {
        "Upload"
    };
    cx.ui
        .error(&cx.build_name, &format!("{verb} failed: {source}"));
    ProvisionError::Ssh {
        provisioner: P,
        what,
        source: Box::new(source),
    }
}
