//! Packer's debug log: with `PACKER_LOG` set (to anything but `""` or `0`), bake and rollout write a log
//! of what they do — every output line and the crates' `tracing` events (bakery's at debug level, the
//! AWS SDK's at info) — to stderr, or appended to `PACKER_LOG_PATH` (created 0600). Lines look like
//! Packer's: `2026/12/07 00:40:00 [DEBUG] target: message`.
//!
//! Every line passes through the same masking as the terminal: the values [`Ui`](crate::ui::Ui) masks are
//! registered here when it is built, so a sensitive variable never reaches the log either.

use std::io::Write;
use std::sync::{Mutex, OnceLock, RwLock};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Where the log goes, once set up.
static SINK: OnceLock<Mutex<Box<dyn Write + Send>>> = OnceLock::new();

/// Every value to mask, longest first (so a secret containing another is masked whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Whether `PACKER_LOG`'s value turns the log on (Packer: any value but empty and `0`).
pub fn wanted(packer_log: Option<&str>) -> bool {
    packer_log.is_some_and(|v| !v.is_empty() && v != "0")
}

/// Sets the log up from `PACKER_LOG` and `PACKER_LOG_PATH`; does nothing when the log is off. An unusable
/// `PACKER_LOG_PATH` is reported on stderr and the log goes to stderr instead.
/// `banner` is the first line written (the program's version).
pub fn init_from_env(program: &str, banner: &str) {
    if !wanted(std::env::var("PACKER_LOG").ok().as_deref()) {
        return;
    }
    let sink: Box<dyn Write + Send> = match std::env::var_os("PACKER_LOG_PATH")
        .filter(|p| !p.is_empty())
        .map(|p| open_private(std::path::Path::new(&p)).map_err(|e| (p, e)))
    {
        Some(Ok(file)) => Box::new(file),
        Some(Err((p, e))) => {
            eprintln!(
                "{program}: PACKER_LOG_PATH {}: {e}; logging to stderr",
                p.to_string_lossy()
            );
            Box::new(std::io::stderr())
        }
        None => Box::new(std::io::stderr()),
    };
    if SINK.set(Mutex::new(sink)).is_err() {
        return;
    }
    let _ = tracing::subscriber::set_global_default(LogSubscriber);
    line(Level::INFO, program, banner);
}

/// Opens `path` for appending, created 0600 (a log holds what a build did, and the paths it used).
fn open_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Whether the log is on.
pub fn enabled() -> bool {
    SINK.get().is_some()
}

/// Registers values the log must mask (what the run's [`Ui`](crate::ui::Ui) masks).
pub fn add_secrets(values: &[String]) {
    let mut all = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for v in values.iter().filter(|v| !v.is_empty()) {
        if !all.contains(v) {
            all.push(v.clone());
        }
    }
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

fn mask(s: &str) -> String {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut s = s.to_string();
    for secret in secrets.iter() {
        if s.contains(secret.as_str()) {
            s = s.replace(secret.as_str(), "<sensitive>");
        }
    }
    s
}

/// Writes one log line (masked), if the log is on.
pub fn line(level: Level, target: &str, msg: &str) {
    let Some(sink) = SINK.get() else { return };
    let text = format!("{} [{level}] {target}: {}\n", timestamp(), mask(msg));
    let mut w = sink.lock().unwrap_or_else(|e| e.into_inner());
    let _ = w.write_all(text.as_bytes());
    let _ = w.flush();
}

/// Now as Packer's log shows it: `2026/12/07 00:40:00` (UTC).
fn timestamp() -> String {
    // `2026-12-07T00:40:00Z` → `2026/12/07 00:40:00`. (Not through `ui`, which writes into this log.)
    let t = aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    t.split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches('Z')
        .replacen('-', "/", 2)
        .replacen('T', " ", 1)
}

/// The subscriber behind the log: formats each event on one line; spans are not tracked.
struct LogSubscriber;

impl LogSubscriber {
    fn level_for(target: &str) -> Level {
        if target.starts_with("bakery") {
            Level::DEBUG
        } else {
            Level::INFO
        }
    }
}

/// Collects an event's message and fields as `message k=v …`.
#[derive(Default)]
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl Subscriber for LogSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Self::level_for(metadata.target())
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        line(*meta.level(), meta.target(), &fields.0);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packer_log_values_that_turn_it_on() {
        assert!(wanted(Some("1")));
        assert!(wanted(Some("true")));
        assert!(!wanted(Some("0")));
        assert!(!wanted(Some("")));
        assert!(!wanted(None));
    }

    #[test]
    fn registered_secrets_are_masked_longest_first() {
        add_secrets(&["hunter2-log-test".into(), "hunter2".into(), String::new()]);
        assert_eq!(
            mask("pw=hunter2-log-test and hunter2"),
            "pw=<sensitive> and <sensitive>"
        );
    }

    #[test]
    fn timestamps_look_like_packers() {
        let t = timestamp();
        assert_eq!(t.len(), "2026/12/07 00:40:00".len(), "{t}");
        assert_eq!(&t[4..5], "/");
        assert_eq!(&t[10..11], " ");
    }
}
