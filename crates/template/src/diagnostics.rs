//! Diagnostics: every problem found while loading a template, with the file
//! position (when known), the offending line and a caret, so `bake validate`
//! can print all of them at once.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem (or warning) found in a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: Option<PathBuf>,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column, in characters.
    pub col: Option<u32>,
    pub message: String,
    /// The offending source line followed by a caret line, when known.
    pub snippet: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: None,
            line: None,
            col: None,
            message: message.into(),
            snippet: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    /// Attaches a file without a position.
    pub fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.to_path_buf());
        self
    }

    /// Attaches a position in `source` (the file's text) with its snippet.
    pub fn at(mut self, source: &Source, pos: crate::json::Pos) -> Self {
        self.file = Some(source.path.clone());
        self.line = Some(pos.line);
        self.col = Some(pos.col);
        self.snippet = source.snippet(pos);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
            if let Some(line) = self.line {
                write!(f, "{line}:")?;
                if let Some(col) = self.col {
                    write!(f, "{col}:")?;
                }
            }
            f.write_str(" ")?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

/// All diagnostics of one load: errors and warnings, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }

    pub fn push(&mut self, d: Diagnostic) {
        // The same problem can be found once per build (a shared provisioner):
        // report it once.
        if !self.0.contains(&d) {
            self.0.push(d);
        }
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        for d in other {
            self.push(d);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// A source file's text, kept to print snippets.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    /// Byte offset of the start of every line.
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Source {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// The text of 1-based `line`, without its newline.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        let idx = (line as usize).checked_sub(1)?;
        let start = *self.line_starts.get(idx)?;
        let end = self
            .line_starts
            .get(idx + 1)
            .map(|e| e - 1)
            .unwrap_or(self.text.len());
        let s = self.text.get(start..end)?;
        Some(s.strip_suffix('\r').unwrap_or(s))
    }

    /// The offending line and a caret under `pos.col`. Tabs are kept in the
    /// caret line so the caret lines up in a terminal.
    pub fn snippet(&self, pos: crate::json::Pos) -> Option<String> {
        let text = self.line_text(pos.line)?;
        let prefix = format!("{:>5} | ", pos.line);
        let mut caret = " ".repeat(prefix.len());
        for (i, ch) in text.chars().enumerate() {
            if i + 1 >= pos.col as usize {
                break;
            }
            caret.push(if ch == '\t' { '\t' } else { ' ' });
        }
        caret.push('^');
        Some(format!("{prefix}{text}\n{caret}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Pos;

    #[test]
    fn display_has_position_snippet_and_caret() {
        let src = Source::new("t.json", "{\n  \"a\": 1,\n\t\"b\" x\n}".to_string());
        let d = Diagnostic::error("boom").at(
            &src,
            Pos {
                offset: 0,
                line: 3,
                col: 6,
            },
        );
        let s = d.to_string();
        assert_eq!(s, "t.json:3:6: boom\n    3 | \t\"b\" x\n        \t    ^");
    }

    #[test]
    fn duplicate_diagnostics_are_reported_once() {
        let mut ds = Diagnostics::new();
        ds.push(Diagnostic::error("x"));
        ds.push(Diagnostic::error("x"));
        ds.push(Diagnostic::warning("x"));
        assert_eq!(ds.len(), 2);
        assert!(ds.has_errors());
        assert_eq!(ds.warnings().count(), 1);
    }
}
