//! `bake cleanup`: remove what runs that did not finish (SIGKILL, a crash, `-on-error=abort`) left behind.
//!
//! It works from the run journals of runs that are no longer running (a live run holds its journal's lock
//! and is never touched), and from bakery's tags for those runs (`bakery:run-id`): each resource is removed
//! as its [`Kind`] says, in [`Kind::REMOVAL_ORDER`]. Unfinished AMIs go with exactly the snapshots of their
//! block-device mappings; AMIs of successful builds are never touched. Running it twice is harmless.

use crate::journal::{self, Entry, Event};
use crate::resource::Kind;
use bakery_core::aws::{AwsSettings, Clients, load_sdk_config};
use bakery_core::aws_err::AwsError;
use bakery_core::pipeline::StepError;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// What to clean up, and how to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct CleanupOptions {
    /// Only this run (its journal, or, without one, the temporary resources tagged with its id).
    pub run_id: Option<String>,
    /// List what would be removed; change nothing.
    pub dry_run: bool,
    /// The endpoint and the region for tag searches of runs without a journal.
    pub aws: AwsSettings,
}

/// Something that could not be cleaned up.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Looking for a run's tagged resources failed.
    #[error(transparent)]
    Lookup(#[from] AwsError),
    /// Removing a resource failed.
    #[error("{:?} {} in {}: {error}", entry.kind, entry.id, entry.region)]
    Remove {
        /// The resource.
        entry: Entry,
        /// Why.
        error: StepError,
    },
}

/// What a cleanup did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct Report {
    /// Resources removed (would be removed), in the order they went.
    pub removed: Vec<Entry>,
    /// What failed.
    pub failures: Vec<Failure>,
}

/// The run journals could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading {}: {source}", dir.display())]
pub struct JournalsUnreadable {
    /// The state directory.
    pub dir: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// The temporary resources tagged with `run_id` in `c`'s region that are still there.
async fn tagged(c: &Clients, run_id: &str) -> Result<Vec<Entry>, AwsError> {
    let mut out = Vec::new();
    for kind in Kind::REMOVAL_ORDER {
        for id in kind.tagged(&c.ec2, run_id).await? {
            out.push(Entry {
                event: Event::Created,
                kind,
                region: c.region.clone(),
                id,
                build: String::new(),
            });
        }
    }
    Ok(out)
}

/// Runs `bake cleanup`.
pub async fn clean_up(opts: &CleanupOptions) -> Result<Report, JournalsUnreadable> {
    let dir = journal::state_dir();
    let mut runs = journal::left_runs(&dir).map_err(|source| JournalsUnreadable {
        dir: dir.clone(),
        source,
    })?;
    if let Some(id) = &opts.run_id {
        runs.retain(|r| &r.run_id == id);
    }
    let sdk = load_sdk_config(&opts.aws).await;
    let mut clients: BTreeMap<String, Clients> = BTreeMap::new();
    let mut client = |region: &str| {
        clients
            .entry(region.to_string())
            .or_insert_with(|| Clients::for_region(&sdk, Some(region), None))
            .clone()
    };
    let mut report = Report::default();
    // Each run's journal entries plus what its tags find in the journal's regions; a run named only by id
    // (no journal here) is what its tags find in the default region.
    let mut work: Vec<(Option<usize>, Vec<Entry>)> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let mut entries = r.outstanding.clone();
        let regions: BTreeSet<String> = entries.iter().map(|e| e.region.clone()).collect();
        for region in regions {
            match tagged(&client(&region), &r.run_id).await {
                Ok(t) => {
                    for e in t {
                        if !entries.iter().any(|x| x.kind == e.kind && x.id == e.id) {
                            entries.push(e);
                        }
                    }
                }
                Err(e) => report.failures.push(e.into()),
            }
        }
        work.push((Some(i), entries));
    }
    if let Some(id) = &opts.run_id
        && runs.is_empty()
    {
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        match tagged(&client(&region), id).await {
            Ok(t) => work.push((None, t)),
            Err(e) => report.failures.push(e.into()),
        }
    }
    let never = CancellationToken::new();
    for (run, mut entries) in work {
        entries.sort_by_key(|e| e.kind.removal_rank());
        for e in entries {
            if opts.dry_run {
                report.removed.push(e);
                continue;
            }
            match e.kind.remove(&client(&e.region).ec2, &e.id, &never).await {
                Ok(()) => {
                    if let Some(i) = run {
                        runs[i].removed(&e);
                    }
                    report.removed.push(e);
                }
                Err(error) => report.failures.push(Failure::Remove { entry: e, error }),
            }
        }
    }
    if !opts.dry_run {
        for r in runs {
            r.finish();
        }
    }
    Ok(report)
}
