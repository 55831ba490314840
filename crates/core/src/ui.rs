//! Output, as Packer prints it, plus progress for long waits.
//!
//! Three modes: human text (Packer's `==> build: ...` headlines and `    build: ...` details, colour and
//! indicatif progress bars on a terminal, plain timestamped-if-asked lines otherwise), Packer's
//! `-machine-readable` CSV (`timestamp,target,type,data...` with `%!(PACKER_COMMA)`), and JSON lines.
//! Every string passes through the secret masker first, so `sensitive-variables` never reach any output.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Packer-style text.
    Human,
    /// Packer's `-machine-readable` format.
    MachineReadable,
    /// One JSON object per line.
    Json,
}

/// Output options, from the command line.
#[derive(Debug, Clone)]
pub struct UiOptions {
    /// The mode.
    pub mode: Mode,
    /// ANSI colour (`-color=false` turns it off; never on when stdout is not a terminal).
    pub color: bool,
    /// Prefix every line with an RFC 3339 timestamp (`-timestamp-ui`).
    pub timestamps: bool,
    /// Progress bars: on a terminal in human mode unless turned off.
    pub progress: bool,
    /// Values to print as `<sensitive>`.
    pub secrets: Vec<String>,
}

impl Default for UiOptions {
    fn default() -> Self {
        let tty = std::io::stdout().is_terminal();
        UiOptions {
            mode: Mode::Human,
            color: tty,
            timestamps: false,
            progress: tty,
            secrets: Vec::new(),
        }
    }
}

/// Which stream a remote line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

struct Inner {
    opts: UiOptions,
    out: Mutex<Box<dyn Write + Send>>,
    multi: Option<MultiProgress>,
}

/// A cheap, cloneable handle on the run's output; safe to use from parallel builds.
#[derive(Clone)]
pub struct Ui {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("mode", &self.inner.opts.mode)
            .finish()
    }
}

impl Ui {
    /// Output to stdout.
    pub fn stdout(opts: UiOptions) -> Self {
        let multi = (opts.mode == Mode::Human && opts.progress)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Self::build(opts, Box::new(std::io::stdout()), multi)
    }

    /// Output to any writer (tests, files); never draws progress bars.
    pub fn to_writer(opts: UiOptions, w: Box<dyn Write + Send>) -> Self {
        Self::build(
            UiOptions {
                progress: false,
                ..opts
            },
            w,
            None,
        )
    }

    fn build(
        mut opts: UiOptions,
        out: Box<dyn Write + Send>,
        multi: Option<MultiProgress>,
    ) -> Self {
        // Longest first, so that a secret containing another is masked whole.
        opts.secrets.retain(|s| !s.is_empty());
        opts.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        crate::log::add_secrets(&opts.secrets);
        Ui {
            inner: Arc::new(Inner {
                opts,
                out: Mutex::new(out),
                multi,
            }),
        }
    }

    /// A Ui that writes nowhere (for steps run in unit tests).
    pub fn sink() -> Self {
        Self::to_writer(
            UiOptions {
                mode: Mode::Human,
                color: false,
                timestamps: false,
                progress: false,
                secrets: vec![],
            },
            Box::new(std::io::sink()),
        )
    }

    /// The options in force.
    pub fn options(&self) -> &UiOptions {
        &self.inner.opts
    }

    /// Replaces every sensitive value with `<sensitive>`.
    pub fn mask(&self, s: &str) -> String {
        let mut s = s.to_string();
        for secret in &self.inner.opts.secrets {
            if s.contains(secret.as_str()) {
                s = s.replace(secret.as_str(), "<sensitive>");
            }
        }
        s
    }

    /// A step headline: `==> build: message`.
    pub fn say(&self, target: &str, msg: &str) {
        self.emit(
            target,
            "say",
            msg,
            |t, m| format!("==> {t}: {m}"),
            Some("1"),
        );
    }

    /// A detail line: `    build: message`.
    pub fn message(&self, target: &str, msg: &str) {
        self.emit(target, "message", msg, |t, m| format!("    {t}: {m}"), None);
    }

    /// An error line: `==> build: message`, red on a terminal.
    pub fn error(&self, target: &str, msg: &str) {
        self.emit(
            target,
            "error",
            msg,
            |t, m| format!("==> {t}: {m}"),
            Some("31"),
        );
    }

    /// A line of a remote command's output, prefixed by the build name as Packer does.
    pub fn remote_line(&self, target: &str, stream: Stream, line: &str) {
        // Packer 1.6.6 prints a remote command's stderr as `==> build: line`, its stdout indented.
        match stream {
            Stream::Stdout => self.emit(
                target,
                "message",
                line,
                |t, m| format!("    {t}: {m}"),
                None,
            ),
            Stream::Stderr => {
                self.emit(target, "error", line, |t, m| format!("==> {t}: {m}"), None)
            }
        }
    }

    /// A line with no build prefix (summaries).
    pub fn plain(&self, msg: &str) {
        self.emit("", "say", msg, |_, m| m.to_string(), None);
    }

    /// A machine-readable record with no human form (artifacts): written only in the machine modes.
    pub fn record(&self, target: &str, kind: &str, fields: &[&str]) {
        let masked: Vec<String> = fields.iter().map(|f| self.mask(f)).collect();
        match self.inner.opts.mode {
            Mode::Human => {}
            Mode::MachineReadable => {
                let data: Vec<String> = masked.iter().map(|f| machine_escape(f)).collect();
                self.write_line(&format!(
                    "{},{},{},{}",
                    unix_now(),
                    target,
                    kind,
                    data.join(",")
                ));
            }
            Mode::Json => {
                let v = serde_json::json!({"time": unix_now(), "target": target, "type": kind, "data": masked});
                self.write_line(&v.to_string());
            }
        }
    }

    fn emit(
        &self,
        target: &str,
        kind: &str,
        msg: &str,
        human: impl Fn(&str, &str) -> String,
        sgr: Option<&str>,
    ) {
        let msg = self.mask(msg);
        if crate::log::enabled() {
            // As Packer's log does, it holds what the terminal shows.
            crate::log::line(tracing::Level::INFO, "ui", &human(target, &msg));
        }
        match self.inner.opts.mode {
            Mode::Human => {
                for line in msg.split('\n') {
                    let mut text = human(target, line);
                    if let (true, Some(code)) = (self.inner.opts.color, sgr) {
                        text = format!("\x1b[{code}m{text}\x1b[0m");
                    }
                    if self.inner.opts.timestamps {
                        text = format!("{}: {text}", rfc3339_now());
                    }
                    self.write_line(&text);
                }
            }
            Mode::MachineReadable => {
                let data = machine_escape(&human(target, &msg));
                self.write_line(&format!("{},{},ui,{kind},{data}", unix_now(), target));
            }
            Mode::Json => {
                let v = serde_json::json!({"time": unix_now(), "target": target, "type": kind, "message": msg});
                self.write_line(&v.to_string());
            }
        }
    }

    fn write_line(&self, line: &str) {
        if let Some(multi) = &self.inner.multi {
            // Printed above the bars, which are redrawn below.
            let _ = multi.println(line);
            return;
        }
        let mut out = self.inner.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Starts showing a long wait: a spinner with the state and elapsed time on a terminal; otherwise a
    /// line when it starts and a line whenever the state changes.
    pub fn progress(&self, target: &str, what: &str) -> Progress {
        let bar = self.inner.multi.as_ref().map(|m| {
            let pb = m.add(ProgressBar::new_spinner());
            pb.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_prefix(target.to_string());
            pb.set_message(self.mask(what));
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        if bar.is_none() {
            self.message(target, &format!("{what}..."));
        }
        Progress {
            ui: self.clone(),
            target: target.to_string(),
            what: what.to_string(),
            bar,
            last_state: Mutex::new(String::new()),
        }
    }

    /// A byte-counting progress bar (uploads); plain mode prints the start and the end only.
    pub fn transfer(&self, target: &str, what: &str, total: u64) -> Progress {
        let bar = self.inner.multi.as_ref().map(|m| {
            let pb = m.add(ProgressBar::new(total));
            pb.set_style(
                ProgressStyle::with_template(
                    "{prefix}: {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            pb.set_prefix(target.to_string());
            pb.set_message(self.mask(what));
            pb
        });
        if bar.is_none() {
            self.message(target, &format!("{what}..."));
        }
        Progress {
            ui: self.clone(),
            target: target.to_string(),
            what: what.to_string(),
            bar,
            last_state: Mutex::new(String::new()),
        }
    }
}

/// A wait or transfer being shown. Dropping it without `finish` clears the bar.
pub struct Progress {
    ui: Ui,
    target: String,
    what: String,
    bar: Option<ProgressBar>,
    last_state: Mutex<String>,
}

impl Progress {
    /// The state seen at the latest poll; plain mode prints a line only when it changes.
    pub fn state(&self, state: &str, elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} ({state})", self.ui.mask(&self.what)));
            return;
        }
        let mut last = self.last_state.lock().unwrap_or_else(|e| e.into_inner());
        if *last != state {
            *last = state.to_string();
            if state != "ready" {
                self.ui.message(
                    &self.target,
                    &format!("{}: {state} after {:.1}s", self.what, elapsed.as_secs_f64()),
                );
            }
        }
    }

    /// Bytes moved so far (transfers).
    pub fn set_position(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Ends the display with a closing detail line.
    pub fn finish(self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.ui.message(&self.target, msg);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Packer's machine-readable escaping: commas become `%!(PACKER_COMMA)`, newlines `\n`, CRs `\r`.
pub fn machine_escape(s: &str) -> String {
    s.replace(',', "%!(PACKER_COMMA)")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// Now in seconds since the epoch: the first field of Packer's machine-readable lines.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// UTC now as RFC 3339 (`2026-11-22T01:02:03Z`), without a date crate.
pub fn rfc3339_now() -> String {
    rfc3339(SystemTime::now())
}

/// A time as RFC 3339 UTC with seconds precision.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn ui(mode: Mode, secrets: &[&str]) -> (Ui, Buf) {
        let b = Buf::default();
        let opts = UiOptions {
            mode,
            color: false,
            timestamps: false,
            progress: false,
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        };
        (Ui::to_writer(opts, Box::new(b.clone())), b)
    }

    #[test]
    fn human_lines_look_like_packers() {
        let (ui, b) = ui(Mode::Human, &[]);
        ui.say("amazon-ebs", "Creating temporary keypair");
        ui.message("amazon-ebs", "detail");
        ui.remote_line("amazon-ebs", Stream::Stderr, "from the script");
        assert_eq!(
            b.text(),
            "==> amazon-ebs: Creating temporary keypair\n    amazon-ebs: detail\n==> amazon-ebs: from the script\n"
        );
    }

    #[test]
    fn secrets_are_masked_in_every_mode() {
        for mode in [Mode::Human, Mode::MachineReadable, Mode::Json] {
            let (ui, b) = ui(mode, &["hunter2", "hunter2-long"]);
            ui.say("b", "password is hunter2-long and hunter2");
            ui.record("b", "artifact", &["0", "id", "hunter2"]);
            let t = b.text();
            assert!(!t.contains("hunter2"), "{mode:?}: {t}");
            assert!(t.contains("<sensitive>"), "{mode:?}: {t}");
        }
    }

    #[test]
    fn machine_readable_escapes_commas_and_newlines() {
        let (ui, b) = ui(Mode::MachineReadable, &[]);
        ui.say("amazon-ebs", "a,b\nc");
        let t = b.text();
        let fields: Vec<&str> = t.trim_end().splitn(5, ',').collect();
        assert_eq!(fields[1], "amazon-ebs");
        assert_eq!(fields[2], "ui");
        assert_eq!(fields[3], "say");
        assert_eq!(fields[4], "==> amazon-ebs: a%!(PACKER_COMMA)b\\nc");
    }

    #[test]
    fn plain_progress_prints_state_changes_only() {
        let (ui, b) = ui(Mode::Human, &[]);
        let p = ui.progress("x", "Waiting for instance i-1");
        p.state("pending", Duration::from_secs(0));
        p.state("pending", Duration::from_secs(1));
        p.state("running", Duration::from_secs(2));
        p.finish("Instance i-1 is running");
        let t = b.text();
        assert_eq!(t.matches("pending").count(), 1, "{t}");
        assert!(t.contains("running after 2.0s"));
        assert!(t.ends_with("    x: Instance i-1 is running\n"));
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_301_230)),
            "2026-11-21T22:47:10Z"
        );
    }
}
