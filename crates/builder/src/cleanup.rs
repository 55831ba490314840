//! `bake cleanup`: remove what runs that did not finish (SIGKILL, a crash, `-on-error=abort`) left behind.
//!
//! It works from the run journals of runs that are no longer running (a live run holds its journal's lock
//! and is never touched): a journal names the regions a run worked in and what it kept; bakery's tags
//! (`bakery:run-id`, put on every resource at its creation) say what of it is still there, including
//! what a create call in flight made before the run was killed. Each resource is removed as its [`Kind`]
//! says, in [`Kind::REMOVAL_ORDER`]. Unfinished AMIs go with exactly their snapshots; what a successful
//! build kept is never touched. A journal is deleted only once nothing it names is left. Running it
//! twice is harmless.

use crate::journal::{self, Entry, Event, RunAccess};
use crate::resource::{GLOBAL, Kind};
use bakery_core::aws::{AwsSettings, Clients, load_sdk_config};
use bakery_core::aws_err::AwsError;
use bakery_core::pipeline::StepError;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// What to clean up, and how to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct CleanupOptions {
    /// Only this run (its journal, or, without one, the temporary resources tagged with its id): the full
    /// id or a prefix of it, such as the short id bake prints.
    pub run_id: Option<String>,
    /// List what would be removed; change nothing.
    pub dry_run: bool,
    /// Also remove bake's temporary resources of runs with no journal here (an ephemeral CI runner that
    /// died) whose every resource was created longer ago than this, in `regions`.
    pub older_than: Option<std::time::Duration>,
    /// Where `older_than` looks (empty: the default region).
    pub regions: Vec<String>,
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
    /// Journaled resources that were already gone (bakery's tags find nothing of them any more).
    pub already_gone: Vec<Entry>,
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

/// The resources tagged with `run_id` (a full run id, or a prefix followed by `*`) in `c`'s region that
/// are still there: every kind when the run's journal says what it kept (`kept`), only the temporary
/// kinds otherwise (a build's result carries the same tags). IAM's kinds are global: they are searched
/// only when `c`'s region is [`GLOBAL`], and only they then.
async fn tagged(
    c: &Clients,
    run_id: &str,
    kept: Option<&BTreeSet<(Kind, String, String)>>,
) -> Result<Vec<Entry>, AwsError> {
    let mut out = Vec::new();
    for kind in Kind::REMOVAL_ORDER {
        let result_kind = matches!(kind, Kind::Image | Kind::Snapshot);
        if (result_kind && kept.is_none()) || kind.is_global() != (c.region == GLOBAL) {
            continue;
        }
        for id in kind.tagged(c, run_id).await? {
            if kept.is_some_and(|k| k.contains(&(kind, c.region.clone(), id.clone()))) {
                continue;
            }
            out.push(Entry {
                event: Event::Created,
                kind,
                region: c.region.clone(),
                id,
                build: String::new(),
                token: None,
            });
        }
    }
    Ok(out)
}

/// The journals `--run-id` names: an exact id, or a prefix of one — with or without its dashes, so the
/// 12 hex digits in a temporary resource's name (`bakery_<12 hex>_<build>`) select their run.
fn select_runs(runs: &mut Vec<journal::LeftRun>, wanted: &str) {
    if runs.iter().any(|r| r.run_id == wanted) {
        runs.retain(|r| r.run_id == wanted);
    } else {
        let prefix = run_id_prefix(wanted);
        runs.retain(|r| r.run_id.starts_with(&prefix));
    }
}

/// A run-id prefix in the run id's own form (a UUID, dashes after hex digits 8, 12, 16 and 20).
fn run_id_prefix(wanted: &str) -> String {
    if wanted.contains('-') {
        return wanted.to_string();
    }
    let mut out = String::new();
    for (i, c) in wanted.chars().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// Runs `bake cleanup`.
pub async fn clean_up(opts: &CleanupOptions) -> Result<Report, JournalsUnreadable> {
    let dir = journal::state_dir();
    let mut runs = journal::left_runs(&dir).map_err(|source| JournalsUnreadable {
        dir: dir.clone(),
        source,
    })?;
    if let Some(id) = &opts.run_id {
        select_runs(&mut runs, id);
    }
    let sdk = load_sdk_config(&opts.aws).await;
    // Each run is cleaned up the way it reached AWS (its journal's endpoint and profile), unless the
    // command line says otherwise.
    let given = RunAccess::new(
        opts.aws.endpoint_url.as_deref(),
        opts.aws.profile.as_deref(),
    );
    let access_of = |r: &journal::LeftRun| RunAccess {
        endpoint_url: given.endpoint_url.clone().or(r.access.endpoint_url.clone()),
        profile: given.profile.clone().or(r.access.profile.clone()),
    };
    let mut sdks: BTreeMap<RunAccess, aws_config::SdkConfig> = BTreeMap::new();
    sdks.insert(given.clone(), sdk.clone());
    for r in &runs {
        let a = access_of(r);
        if let std::collections::btree_map::Entry::Vacant(slot) = sdks.entry(a) {
            let settings = AwsSettings {
                endpoint_url: slot.key().endpoint_url.clone(),
                profile: slot.key().profile.clone(),
                ..opts.aws.clone()
            };
            slot.insert(load_sdk_config(&settings).await);
        }
    }
    let run_access: Vec<RunAccess> = runs.iter().map(access_of).collect();
    let mut clients: BTreeMap<(RunAccess, String), Clients> = BTreeMap::new();
    let mut client_as = |access: &RunAccess, region: &str| {
        clients
            .entry((access.clone(), region.to_string()))
            .or_insert_with(|| {
                // IAM's pseudo-region: the clients of the default region, whose IAM client reaches
                // IAM in the right partition; the label stays GLOBAL.
                let mut c =
                    Clients::for_region(&sdks[access], (region != GLOBAL).then_some(region), None);
                c.region = region.to_string();
                c
            })
            .clone()
    };
    let mut report = Report::default();
    // Each run's journal says where it worked (every region an intent or a resource names); what bakery's
    // tags find there is what is removed — a journal alone is not trusted to name only bakery's resources.
    // A journaled resource the tag search does not find is already gone. A run named only by id (no
    // journal here) is what its tags find in the default region, temporary kinds only.
    let mut work: Vec<(Option<usize>, Vec<Entry>)> = Vec::new();
    for (i, r) in runs.iter_mut().enumerate() {
        let regions: BTreeSet<String> = r.outstanding.iter().map(|e| e.region.clone()).collect();
        let mut found = Vec::new();
        let mut searched = BTreeSet::new();
        for region in regions {
            let c = client_as(&run_access[i], &region);
            let mut search = tagged(&c, &r.run_id, Some(&r.kept)).await;
            // A resource made moments before the run died may not be listed yet (EC2's searches are
            // eventually consistent): a journaled one the search misses is looked for once more after
            // the confirmation time before it is believed gone.
            let missed = |t: &Vec<Entry>| {
                r.outstanding.iter().any(|e| {
                    e.region == region
                        && !t
                            .iter()
                            .any(|f| f.kind == e.kind && (e.event == Event::Intent || f.id == e.id))
                })
            };
            if let Ok(t) = &search
                && missed(t)
            {
                tokio::time::sleep(bakery_core::propagation::NOT_FOUND_CONFIRMATION).await;
                search = tagged(&c, &r.run_id, Some(&r.kept)).await;
            }
            match search {
                Ok(t) => {
                    found.extend(t);
                    searched.insert(region);
                }
                Err(e) => report.failures.push(e.into()),
            }
        }
        // Journal entries (and intents) of searched regions are settled by the search: what it found is
        // removed below, the rest is gone.
        let settled: Vec<Entry> = r
            .outstanding
            .iter()
            .filter(|e| searched.contains(&e.region))
            .filter(|e| {
                e.event == Event::Intent
                    || !found
                        .iter()
                        .any(|f| f.kind == e.kind && f.id == e.id && f.region == e.region)
            })
            .cloned()
            .collect();
        report
            .already_gone
            .extend(settled.iter().filter(|e| e.event != Event::Intent).cloned());
        work.push((Some(i), found));
        if !opts.dry_run {
            for e in &settled {
                r.removed(e);
            }
        }
    }
    if let Some(id) = &opts.run_id
        && runs.is_empty()
    {
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        // A short id (as printed) matches the full one's tag by wildcard.
        let prefix = run_id_prefix(id);
        let pattern = if prefix.len() < 36 {
            format!("{prefix}*")
        } else {
            prefix
        };
        for region in [region.as_str(), GLOBAL] {
            match tagged(&client_as(&given, region), &pattern, None).await {
                Ok(t) => work.push((None, t)),
                Err(e) => report.failures.push(e.into()),
            }
        }
    }
    if let Some(age) = opts.older_than {
        let mut regions = opts.regions.clone();
        if regions.is_empty() {
            regions.push(
                sdk.region()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "us-east-1".into()),
            );
        }
        let journaled: BTreeSet<String> = runs.iter().map(|r| r.run_id.clone()).collect();
        // IAM's temporary roles and profiles are global: looked at once, after the regions.
        regions.push(GLOBAL.to_string());
        for region in regions {
            let c = client_as(&given, &region);
            let strays = if region == GLOBAL {
                stray_iam_runs(&c, age).await
            } else {
                stray_runs(&c, age).await
            };
            let strays = match strays {
                Ok(s) => s,
                Err(e) => {
                    report.failures.push(e.into());
                    continue;
                }
            };
            for run in strays {
                // A run with a journal here is handled above; a live one here is never touched.
                if journaled.contains(&run) || journal::is_live(&dir, &run) {
                    continue;
                }
                match tagged(&c, &run, None).await {
                    Ok(t) => work.push((None, t)),
                    Err(e) => report.failures.push(e.into()),
                }
            }
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
            let access = run.map_or(&given, |i| &run_access[i]);
            match e
                .kind
                .remove(&client_as(access, &e.region), &e.id, &never)
                .await
            {
                Ok(()) => {
                    if let Some(i) = run {
                        runs[i].removed(&e);
                    }
                    report.removed.push(e);
                }
                Err(error) => {
                    // Found by its tags and still there: the journal keeps it, so the run is not
                    // forgotten before it is really gone.
                    if let Some(i) = run {
                        runs[i].adopt(&e);
                    }
                    report.failures.push(Failure::Remove { entry: e, error })
                }
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

/// The runs whose bake temporary resources in `c`'s region were all created more than `age` ago (by
/// their `bakery:created` tag, else the instance's launch time or the key pair's or launch template's
/// creation time). A run with any younger resource may still be going on another machine: it is left.
async fn stray_runs(c: &Clients, age: std::time::Duration) -> Result<BTreeSet<String>, AwsError> {
    use aws_sdk_ec2::types::{Filter, InstanceStateName, Tag};
    use bakery_core::aws_err::AwsResultExt;
    let roles = || {
        Filter::builder()
            .name(format!("tag:{}", bakery_core::tags::ROLE))
            .set_values(Some(
                crate::resource::TEMPORARY_ROLES
                    .iter()
                    .map(|r| r.to_string())
                    .collect(),
            ))
            .build()
    };
    let cutoff = std::time::SystemTime::now() - age;
    // (run id, created) of every temporary resource found.
    let mut seen: Vec<(String, Option<std::time::SystemTime>)> = Vec::new();
    let mut note = |tags: &[Tag], fallback: Option<&aws_smithy_types::DateTime>| {
        let tag = |k: &str| {
            tags.iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
        };
        let Some(run) = tag(bakery_core::tags::RUN_ID) else {
            return;
        };
        let created = tag(crate::resource::CREATED_TAG)
            .and_then(|v| {
                aws_smithy_types::DateTime::from_str(
                    v,
                    aws_smithy_types::date_time::Format::DateTime,
                )
                .ok()
            })
            .or(fallback.copied())
            .and_then(|d| std::time::SystemTime::try_from(d).ok());
        seen.push((run.to_string(), created));
    };
    let out = c
        .ec2
        .describe_instances()
        .filters(roles())
        .send()
        .await
        .aws("DescribeInstances")?;
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        if i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated) {
            note(i.tags(), i.launch_time());
        }
    }
    let out = c
        .ec2
        .describe_security_groups()
        .filters(roles())
        .send()
        .await
        .aws("DescribeSecurityGroups")?;
    for g in out.security_groups() {
        note(g.tags(), None);
    }
    let out = c
        .ec2
        .describe_key_pairs()
        .filters(roles())
        .send()
        .await
        .aws("DescribeKeyPairs")?;
    for k in out.key_pairs() {
        note(k.tags(), k.create_time());
    }
    let out = c
        .ec2
        .describe_launch_templates()
        .filters(roles())
        .send()
        .await
        .aws("DescribeLaunchTemplates")?;
    for t in out.launch_templates() {
        note(t.tags(), t.create_time());
    }
    Ok(old_runs(seen, cutoff))
}

/// The runs whose temporary IAM roles and instance profiles (under `/bakery/`) were all created more
/// than `age` ago, by their `bakery:created` tag.
async fn stray_iam_runs(
    c: &Clients,
    age: std::time::Duration,
) -> Result<BTreeSet<String>, AwsError> {
    let cutoff = std::time::SystemTime::now() - age;
    let mut seen = Vec::new();
    for kind in [Kind::InstanceProfile, Kind::IamRole] {
        for (_, tags) in crate::resource::iam_tagged(&c.iam, kind).await? {
            let tag = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.as_str());
            if !tag(bakery_core::tags::ROLE)
                .is_some_and(|r| crate::resource::TEMPORARY_ROLES.contains(&r))
            {
                continue;
            }
            let Some(run) = tag(bakery_core::tags::RUN_ID) else {
                continue;
            };
            let created = tag(crate::resource::CREATED_TAG)
                .and_then(|v| {
                    aws_smithy_types::DateTime::from_str(
                        v,
                        aws_smithy_types::date_time::Format::DateTime,
                    )
                    .ok()
                })
                .and_then(|d| std::time::SystemTime::try_from(d).ok());
            seen.push((run.to_string(), created));
        }
    }
    Ok(old_runs(seen, cutoff))
}

/// Of the (run, created) pairs, the runs with a resource created before `cutoff` and none after.
fn old_runs(
    seen: Vec<(String, Option<std::time::SystemTime>)>,
    cutoff: std::time::SystemTime,
) -> BTreeSet<String> {
    let mut runs: BTreeMap<String, (bool, bool)> = BTreeMap::new(); // (any old, any young)
    for (run, created) in seen {
        let e = runs.entry(run).or_default();
        match created {
            Some(t) if t <= cutoff => e.0 = true,
            Some(_) => e.1 = true,
            None => {}
        }
    }
    runs.into_iter()
        .filter(|(_, (old, young))| *old && !*young)
        .map(|(run, _)| run)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::run_id_prefix;

    #[test]
    fn a_short_id_without_dashes_is_a_prefix_of_the_run_id() {
        let id = "0f3a9c1e-77b2-4c0d-9e1f-123456789abc";
        assert!(id.starts_with(&run_id_prefix("0f3a9c1e77b2")));
        assert!(id.starts_with(&run_id_prefix("0f3a9c1e-77b2")));
        assert_eq!(run_id_prefix("0f3a9c1e77b24c0d9e1f123456789abc"), id);
    }
}
