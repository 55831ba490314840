//! Remote (and shell-local) output, live, through the run's [`Ui`], which
//! prefixes the build name and masks secrets.

use bakery_core::ui::{Stream, Ui};
use bakery_ssh::{OutputSink, clean_output_line};

/// Sends every output line to [`Ui::remote_line`] for one build, cleaned as
/// Packer cleans them (trailing whitespace, `\r` progress overwrites).
pub struct UiSink<'a> {
    ui: &'a Ui,
    build: &'a str,
}

impl<'a> UiSink<'a> {
    /// A sink printing as build `build`.
    pub fn new(ui: &'a Ui, build: &'a str) -> Self {
        UiSink { ui, build }
    }

    /// One line from `stream`.
    pub fn line(&self, stream: Stream, line: &str) {
        self.ui
            .remote_line(self.build, stream, &clean_output_line(line));
    }
}

impl OutputSink for UiSink<'_> {
    fn stdout_line(&mut self, line: &str) {
        self.line(Stream::Stdout, line);
    }
    fn stderr_line(&mut self, line: &str) {
        self.line(Stream::Stderr, line);
    }
}
