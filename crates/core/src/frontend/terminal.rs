//! The output's set-up from a command's flags and its terminal: colours and progress spinners only in
//! human mode on a terminal, and never colours when `NO_COLOR` is set (no-color.org).

use crate::ui::{Mode, UiOptions};
use std::io::IsTerminal;

/// What the command line asked for, and where output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Human, JSON lines or machine-readable.
    pub mode: Mode,
    /// Colours wanted (`-color=true`, no `--no-color`).
    pub color: bool,
    /// Prefix lines with a timestamp.
    pub timestamps: bool,
    /// The output is a terminal.
    pub tty: bool,
}

impl Output {
    /// The Ui's options; `secrets` are masked in everything it prints.
    pub fn ui_options(&self, secrets: Vec<String>) -> UiOptions {
        let human_on_terminal = self.tty && self.mode == Mode::Human;
        UiOptions {
            mode: self.mode,
            color: self.color && human_on_terminal && !no_color(),
            timestamps: self.timestamps,
            progress: human_on_terminal,
            secrets,
        }
    }
}

/// Whether the process's stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// `NO_COLOR` set to anything but the empty string turns colours off.
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}
