//! Finding the repo's lab scripts, checking the install, and running `lab/up` for this process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::LabError;

/// The repo root: the nearest ancestor of this crate's manifest dir holding `lab/up`.
pub fn repo_root() -> Result<PathBuf, LabError> {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .find(|dir| dir.join("lab").join("up").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| LabError::RepoNotFound {
            searched_from: start.to_owned(),
        })
}

/// `lab/install --check`: fails with its report of what is missing.
pub fn check_installed(root: &Path, user: &str) -> Result<(), LabError> {
    let script = root.join("lab/install");
    let out = Command::new(&script)
        .args(["--check", "--user", user])
        .output()
        .map_err(|source| LabError::Spawn {
            command: script.display().to_string(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut missing = String::from_utf8_lossy(&out.stdout).into_owned();
    missing.push_str(&String::from_utf8_lossy(&out.stderr));
    Err(LabError::NotInstalled { missing })
}

/// A fresh state dir for this process's lab, under the repo's ignored `lab/.state/`
/// (where `lab/down --orphans` finds it if the watcher could not stop it).
pub fn fresh_state_dir(root: &Path, label: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let suffix = if label.is_empty() {
        String::new()
    } else {
        format!("-{label}")
    };
    root.join("lab/.state")
        .join(format!("test-{}-{nanos:09}{suffix}", std::process::id()))
}

/// `lab/down --dir DIR` (`--purge` unless `keep`): stops a lab this process started.
pub fn down(root: &Path, dir: &Path, keep: bool) -> Result<(), LabError> {
    let script = root.join("lab/down");
    let mut cmd = Command::new(&script);
    cmd.arg("--dir").arg(dir).arg("--quiet");
    if !keep {
        cmd.arg("--purge");
    }
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| LabError::Spawn {
        command: shown.clone(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(LabError::UpFailed {
        command: shown,
        status: out.status,
        output: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `lab/up` tied to this process: its watcher stops the lab (and removes `dir`, unless `keep`)
/// as soon as this process is gone. `extra`: more `lab/up` options (the realism profile).
pub fn up(
    root: &Path,
    dir: &Path,
    user: &str,
    keep: bool,
    extra: &[String],
) -> Result<(), LabError> {
    let script = root.join("lab/up");
    let mut cmd = Command::new(&script);
    cmd.arg("--dir").arg(dir);
    cmd.args([
        "--user",
        user,
        "--quiet",
        "--parent-pid",
        &std::process::id().to_string(),
    ]);
    if keep {
        cmd.arg("--keep");
    }
    cmd.args(extra);
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| LabError::Spawn {
        command: shown.clone(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(LabError::UpFailed {
        command: shown,
        status: out.status,
        output,
    })
}

/// A program of the lab's Python venv, `lab/.venv/bin/NAME` (`ansible-playbook`, `ansible-galaxy`: the
/// lab's pinned ansible-core, which `lab/install` installs); [`LabError::NotInstalled`] ("run `make
/// lab`") when it is not there, so that a test needing it fails instead of skipping.
pub fn venv_program(name: &str) -> Result<PathBuf, LabError> {
    let path = repo_root()?.join("lab/.venv/bin").join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(LabError::NotInstalled {
            missing: format!(
                "  - {} (lab/requirements.txt, installed into the lab's venv)",
                path.display()
            ),
        })
    }
}
