//! What a run ends with: each finished build (`Finished`), the artifact summary Packer prints (and its
//! machine-readable records), and whether the run succeeded ([`Outcome`]).

use bakery_core::ui::Ui;
use std::collections::BTreeMap;
use std::time::Duration;

/// How a run (or a dry run) ended; what went wrong has been reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every build (and post-processor, and SSM publishing) succeeded, nothing was left behind.
    Succeeded,
    /// Something failed.
    Failed,
}

impl Outcome {
    /// `Failed` when `failed`.
    pub fn from_failed(failed: bool) -> Self {
        if failed {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        }
    }
}

/// One finished build, for the summary.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    /// The name it is shown under.
    pub(crate) name: String,
    /// The build region (whose AMI `-pass-ami` passes on).
    pub(crate) region: String,
    /// The AMI of each region.
    pub(crate) amis: BTreeMap<String, String>,
    /// Why it failed.
    pub(crate) error: Option<String>,
    /// How long it took.
    pub(crate) elapsed: Duration,
}

impl Finished {
    /// Succeeded and created AMIs.
    pub(crate) fn has_artifact(&self) -> bool {
        self.error.is_none() && !self.amis.is_empty()
    }
}

/// Prints the failed builds, then the artifacts of the successful ones, as Packer does.
pub(crate) fn summarize(ui: &Ui, finished: &[Finished]) {
    let errored: Vec<&Finished> = finished.iter().filter(|f| f.error.is_some()).collect();
    if !errored.is_empty() {
        ui.plain("\n==> Some builds didn't complete successfully and had errors:");
        for f in &errored {
            ui.plain(&format!(
                "--> {}: {}",
                f.name,
                f.error.as_deref().unwrap_or_default()
            ));
        }
    }
    let ok: Vec<&Finished> = finished.iter().filter(|f| f.has_artifact()).collect();
    if ok.is_empty() {
        if errored.is_empty() {
            ui.plain("\n==> Builds finished but no artifacts were created.");
        }
        return;
    }
    ui.plain("\n==> Builds finished. The artifacts of successful builds are:");
    for (i, f) in ok.iter().enumerate() {
        ui.plain(&format!("--> {}: AMIs were created:", f.name));
        let lines: Vec<String> = f.amis.iter().map(|(r, a)| format!("{r}: {a}")).collect();
        for l in &lines {
            ui.plain(l);
        }
        let id = f
            .amis
            .iter()
            .map(|(r, a)| format!("{r}:{a}"))
            .collect::<Vec<_>>()
            .join(",");
        let idx = i.to_string();
        ui.record(&f.name, "artifact-count", &["1"]);
        ui.record(
            &f.name,
            "artifact",
            &[&idx, "builder-id", "mitchellh.amazonebs"],
        );
        ui.record(&f.name, "artifact", &[&idx, "id", &id]);
        ui.record(
            &f.name,
            "artifact",
            &[
                &idx,
                "string",
                &format!("AMIs were created:\n{}\n", lines.join("\n")),
            ],
        );
        ui.record(&f.name, "artifact", &[&idx, "files-count", "0"]);
        ui.record(&f.name, "artifact", &[&idx, "end"]);
        tracing::debug!(elapsed = ?f.elapsed, "build finished");
    }
}
