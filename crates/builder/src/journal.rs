//! The run journal: a local, append-only record of every AWS resource a run creates, so that a run killed
//! with SIGKILL can still be cleaned up by `bake cleanup`. Intent comes first: before each create call the
//! journal holds what is about to be made, where, and with which client token (fsynced); when the call
//! returns, its id (or AWS's refusal). An intent left unresolved — a run killed while the call was in
//! flight — is resolved by `bake cleanup` through bakery's run tag, which every resource carries from its
//! creation. One JSON object per line in `<state dir>/runs/<run-id>.jsonl`. A live run holds an
//! exclusive lock on its journal, so `bake cleanup` never touches a run that is still going.
//!
//! State directory: `BAKERY_STATE_DIR`, else `$XDG_STATE_HOME/bakery`, else `~/.local/state/bakery`.

use crate::resource::Kind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// About to be created: the create call is being sent. Resolved by the next `Created` or `Refused` of
    /// the same build, kind and region.
    Intent,
    /// AWS refused the create call: nothing was made.
    Refused,
    /// Created by this run.
    Created,
    /// Removed by this run's cleanup.
    Removed,
    /// Kept as the build's result (AMIs and their snapshots of a successful build).
    Kept,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Created, removed or kept.
    pub event: Event,
    /// The resource kind.
    pub kind: Kind,
    /// Its region.
    pub region: String,
    /// Its id (`i-…`, `sg-…`, `ami-…`) or, for key pairs, its name.
    pub id: String,
    /// The build that created it.
    pub build: String,
    /// The idempotency token the create call carried (intents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The first line of a journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    run_id: String,
    pid: u32,
    started: u64,
    command: String,
    /// How the run reached AWS, so `bake cleanup` can use the same.
    #[serde(default)]
    access: RunAccess,
}

/// How a run reached AWS: its endpoint (credentials in the URL removed) and profile. Never keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunAccess {
    /// `AWS_ENDPOINT_URL` / `--endpoint-url`, if the run used one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// `AWS_PROFILE`, if the run used one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl RunAccess {
    /// `endpoint_url` with any `user:password@` removed.
    pub fn new(endpoint_url: Option<&str>, profile: Option<&str>) -> Self {
        let endpoint_url = endpoint_url.filter(|e| !e.is_empty()).map(|e| {
            match (e.split_once("://"), e.rfind('@')) {
                (Some((scheme, rest)), Some(_)) => match rest.split_once('@') {
                    Some((_, host)) => format!("{scheme}://{host}"),
                    None => e.to_string(),
                },
                _ => e.to_string(),
            }
        });
        RunAccess {
            endpoint_url,
            profile: profile.filter(|p| !p.is_empty()).map(str::to_string),
        }
    }
}

/// The journal of the current run.
#[derive(Debug)]
pub struct Journal {
    run_id: String,
    path: PathBuf,
    file: Mutex<File>,
}

/// The state directory.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BAKERY_STATE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("bakery");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/bakery")
}

fn runs_dir(state: &Path) -> PathBuf {
    state.join("runs")
}

impl Journal {
    /// Creates and locks the journal of a new run.
    pub fn create(state: &Path, run_id: &str, command: &str) -> std::io::Result<Self> {
        Self::create_for(state, run_id, command, RunAccess::default())
    }

    /// Creates and locks the journal of a new run that reaches AWS as `access` says.
    pub fn create_for(
        state: &Path,
        run_id: &str,
        command: &str,
        access: RunAccess,
    ) -> std::io::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = runs_dir(state);
        // The journal names the run's resources and its command line: its owner's only.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let path = dir.join(format!("{run_id}.jsonl"));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            // create_new (O_EXCL) never follows a symlink at the path.
            .mode(0o600)
            .open(&path)?;
        file.try_lock()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let header = Header {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            command: command.to_string(),
            access,
        };
        writeln!(
            file,
            "{}",
            serde_json::to_string(&header).map_err(std::io::Error::other)?
        )?;
        file.sync_data()?;
        Ok(Journal {
            run_id: run_id.to_string(),
            path,
            file: Mutex::new(file),
        })
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry and flushes it to disk before returning.
    pub fn record(&self, event: Event, kind: Kind, region: &str, id: &str, build: &str) {
        self.append(&Entry {
            event,
            kind,
            region: region.to_string(),
            id: id.to_string(),
            build: build.to_string(),
            token: None,
        });
    }

    /// Appends an entry as it is and flushes it to disk before returning.
    pub fn append(&self, e: &Entry) {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(line) = serde_json::to_string(e) {
            // A journal that cannot be written must not stop the cleanup of what it describes; the
            // resources also carry bakery's tags.
            let _ = writeln!(f, "{line}");
            let _ = f.sync_data();
        }
    }

    /// Resources created and neither removed nor kept.
    pub fn outstanding(&self) -> Vec<Entry> {
        read_entries(&self.path)
            .map(|(_, e)| outstanding(&e))
            .unwrap_or_default()
    }

    /// Removes the journal when nothing it recorded is outstanding; keeps it (for `bake cleanup`) otherwise.
    pub fn close(self) -> Option<PathBuf> {
        if self.outstanding().is_empty() {
            let _ = std::fs::remove_file(&self.path);
            None
        } else {
            Some(self.path.clone())
        }
    }
}

fn read_entries(path: &Path) -> std::io::Result<(Header, Vec<Entry>)> {
    let f = File::open(path)?;
    let mut lines = BufReader::new(f).lines();
    let header: Header = match lines.next() {
        Some(l) => serde_json::from_str(&l?).map_err(std::io::Error::other)?,
        None => return Err(std::io::Error::other("empty journal")),
    };
    let mut entries = Vec::new();
    for line in lines {
        let line = line?;
        // A line cut short by a kill is ignored; everything before it counts.
        if let Ok(e) = serde_json::from_str::<Entry>(&line) {
            entries.push(e);
        }
    }
    Ok((header, entries))
}

/// Entries created and not later removed or kept, and intents no create call resolved, in journal order.
pub fn outstanding(entries: &[Entry]) -> Vec<Entry> {
    let mut state: BTreeMap<(Kind, String, String), (usize, Event)> = BTreeMap::new();
    // Unresolved intents by (build, kind, region), oldest first.
    let mut intents: BTreeMap<(String, Kind, String), Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        let slot = (e.build.clone(), e.kind, e.region.clone());
        match e.event {
            Event::Intent => intents.entry(slot).or_default().push(i),
            Event::Refused | Event::Created => {
                if let Some(q) = intents.get_mut(&slot)
                    && !q.is_empty()
                {
                    q.remove(0);
                }
                if e.event == Event::Created {
                    state.insert(
                        (e.kind, e.region.clone(), e.id.clone()),
                        (i, Event::Created),
                    );
                }
            }
            Event::Removed | Event::Kept => {
                if let Some(s) = state.get_mut(&(e.kind, e.region.clone(), e.id.clone())) {
                    s.1 = e.event;
                }
            }
        }
    }
    let mut out: Vec<usize> = state
        .into_values()
        .filter(|(_, ev)| *ev == Event::Created)
        .map(|(i, _)| i)
        .chain(intents.into_values().flatten())
        .collect();
    out.sort();
    out.into_iter().map(|i| entries[i].clone()).collect()
}

/// What a journal says was kept as a build's result: (kind, region, id).
pub fn kept(entries: &[Entry]) -> BTreeSet<(Kind, String, String)> {
    entries
        .iter()
        .filter(|e| e.event == Event::Kept)
        .map(|e| (e.kind, e.region.clone(), e.id.clone()))
        .collect()
}

/// A journal left by an earlier run.
#[derive(Debug)]
pub struct LeftRun {
    /// Its run id.
    pub run_id: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its file, locked for as long as this value lives (so two cleanups never race).
    lock: File,
    /// What it left.
    pub outstanding: Vec<Entry>,
    /// What it kept as its builds' results (never removed, whatever a tag search finds).
    pub kept: BTreeSet<(Kind, String, String)>,
    /// The command line that started it.
    pub command: String,
    /// How it reached AWS.
    pub access: RunAccess,
}

impl LeftRun {
    /// Records that a resource was removed by `bake cleanup` (or, for an intent, that it was resolved:
    /// whatever it made has been found by its tags and removed).
    pub fn removed(&mut self, e: &Entry) {
        let rec = Entry {
            event: if e.event == Event::Intent {
                Event::Refused
            } else {
                Event::Removed
            },
            ..e.clone()
        };
        if let Ok(line) = serde_json::to_string(&rec) {
            let _ = writeln!(self.lock, "{line}");
            let _ = self.lock.sync_data();
        }
        self.outstanding.retain(|x| {
            if e.event == Event::Intent {
                x != e
            } else {
                !(x.event != Event::Intent
                    && x.kind == e.kind
                    && x.region == e.region
                    && x.id == e.id)
            }
        });
    }

    /// Records a resource found by the run's tags that is still there (its removal failed), so the journal
    /// is kept until it is gone.
    pub fn adopt(&mut self, e: &Entry) {
        let rec = Entry {
            event: Event::Created,
            ..e.clone()
        };
        if let Ok(line) = serde_json::to_string(&rec) {
            let _ = writeln!(self.lock, "{line}");
            let _ = self.lock.sync_data();
        }
        if !self.outstanding.contains(&rec) {
            self.outstanding.push(rec);
        }
    }

    /// Deletes the journal once nothing is outstanding.
    pub fn finish(self) -> bool {
        if self.outstanding.is_empty() {
            let _ = std::fs::remove_file(&self.path);
            true
        } else {
            false
        }
    }
}

/// True when run `run_id`'s journal is held by a live run on this machine.
pub fn is_live(state: &Path, run_id: &str) -> bool {
    let path = runs_dir(state).join(format!("{run_id}.jsonl"));
    match OpenOptions::new().append(true).open(&path) {
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}

/// The journals of runs that are not running any more (their lock is free).
pub fn left_runs(state: &Path) -> std::io::Result<Vec<LeftRun>> {
    let dir = runs_dir(state);
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    for path in paths {
        let lock = OpenOptions::new().append(true).open(&path)?;
        if lock.try_lock().is_err() {
            continue; // a live run
        }
        let Ok((header, entries)) = read_entries(&path) else {
            continue;
        };
        out.push(LeftRun {
            run_id: header.run_id,
            path,
            lock,
            outstanding: outstanding(&entries),
            kept: kept(&entries),
            command: header.command,
            access: header.access,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state directory removed when the test ends.
    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn outstanding_is_created_minus_removed_and_kept() {
        let t = tmp();
        let d = t.path();
        let j = Journal::create(d, "r1", "bake t.json").unwrap();
        j.record(Event::Created, Kind::KeyPair, "us-east-1", "bakery_r1", "b");
        j.record(Event::Created, Kind::Instance, "us-east-1", "i-1", "b");
        j.record(Event::Created, Kind::Image, "us-east-1", "ami-1", "b");
        j.record(Event::Removed, Kind::KeyPair, "us-east-1", "bakery_r1", "b");
        j.record(Event::Kept, Kind::Image, "us-east-1", "ami-1", "b");
        let ids: Vec<_> = j.outstanding().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["i-1"]);
        let kept = j.close();
        assert!(kept.is_some(), "journal with outstanding resources is kept");
    }

    #[test]
    fn a_live_run_is_invisible_to_cleanup_and_a_dead_one_is_found() {
        let t = tmp();
        let d = t.path();
        let j = Journal::create(d, "live", "bake").unwrap();
        j.record(Event::Created, Kind::Instance, "us-east-1", "i-live", "b");
        assert!(left_runs(d).unwrap().is_empty());
        let path = j.close().unwrap();
        assert!(path.exists());
        let mut runs = left_runs(d).unwrap();
        assert_eq!(runs.len(), 1);
        let e = runs[0].outstanding[0].clone();
        assert_eq!(e.id, "i-live");
        let mut r = runs.pop().unwrap();
        r.removed(&e);
        assert!(r.finish());
        assert!(!path.exists());
    }

    #[test]
    fn a_resource_found_by_tag_settles_its_journal_entry_and_one_still_there_is_kept() {
        let t = tmp();
        let j = Journal::create(t.path(), "tags", "bake").unwrap();
        j.record(
            Event::Created,
            Kind::Instance,
            "us-east-1",
            "i-1",
            "build-a",
        );
        drop(j);
        let mut runs = left_runs(t.path()).unwrap();
        let mut r = runs.pop().unwrap();
        // As bake cleanup's tag search reports it: no build name.
        let found = |id: &str| Entry {
            event: Event::Created,
            kind: Kind::Instance,
            region: "us-east-1".into(),
            id: id.into(),
            build: String::new(),
            token: None,
        };
        r.adopt(&found("i-2"));
        r.removed(&found("i-1"));
        assert_eq!(r.outstanding.len(), 1, "{:?}", r.outstanding);
        assert!(!r.finish(), "i-2 is still there: the journal stays");
        let mut r = left_runs(t.path()).unwrap().pop().unwrap();
        assert_eq!(r.outstanding[0].id, "i-2");
        r.removed(&found("i-2"));
        assert!(r.finish());
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let t = tmp();
        let d = t.path();
        let j = Journal::create(d, "torn", "bake").unwrap();
        j.record(
            Event::Created,
            Kind::SecurityGroup,
            "us-east-1",
            "sg-1",
            "b",
        );
        let path = j.path().to_path_buf();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, "{{\"event\":\"crea").unwrap();
        let runs = left_runs(d).unwrap();
        assert_eq!(runs[0].outstanding.len(), 1);
    }

    #[test]
    fn an_intent_is_outstanding_until_its_create_call_answers() {
        let t = tmp();
        let j = Journal::create(t.path(), "intents", "bake").unwrap();
        let intent = |kind, region: &str| Entry {
            event: Event::Intent,
            kind,
            region: region.into(),
            id: String::new(),
            build: "b".into(),
            token: Some("tok".into()),
        };
        j.append(&intent(Kind::Instance, "us-east-1"));
        j.append(&intent(Kind::Image, "eu-west-1"));
        j.append(&intent(Kind::KeyPair, "us-east-1"));
        j.record(Event::Created, Kind::Instance, "us-east-1", "i-1", "b");
        j.record(Event::Refused, Kind::KeyPair, "us-east-1", "", "b");
        let left = j.outstanding();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!((left[0].event, left[0].kind), (Event::Intent, Kind::Image));
        assert_eq!(left[0].region, "eu-west-1");
        assert_eq!(left[1].id, "i-1");
        // Another build's answer does not resolve this build's intent.
        j.record(Event::Created, Kind::Image, "eu-west-1", "ami-9", "other");
        assert_eq!(j.outstanding().len(), 3);
    }

    #[test]
    fn the_journal_is_its_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let t = tmp();
        let j = Journal::create(t.path(), "modes", "bake").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(j.path()), 0o600);
        assert_eq!(mode(&t.path().join("runs")), 0o700);
    }

    #[test]
    fn the_journal_keeps_the_runs_endpoint_without_credentials() {
        let t = tmp();
        let access = RunAccess::new(Some("http://user:secret@127.0.0.1:5000"), Some("ci"));
        assert_eq!(
            access.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        let j = Journal::create_for(t.path(), "access", "bake", access.clone()).unwrap();
        j.record(Event::Created, Kind::Instance, "us-east-1", "i-1", "b");
        drop(j);
        let text = std::fs::read_to_string(t.path().join("runs/access.jsonl")).unwrap();
        assert!(!text.contains("secret"), "{text}");
        let runs = left_runs(t.path()).unwrap();
        assert_eq!(runs[0].access, access);
    }

    #[test]
    fn a_clean_run_leaves_no_journal() {
        let t = tmp();
        let d = t.path();
        let j = Journal::create(d, "clean", "bake").unwrap();
        j.record(Event::Created, Kind::KeyPair, "us-east-1", "k", "b");
        j.record(Event::Removed, Kind::KeyPair, "us-east-1", "k", "b");
        assert!(j.close().is_none());
        assert!(std::fs::read_dir(d.join("runs")).unwrap().next().is_none());
    }
}
