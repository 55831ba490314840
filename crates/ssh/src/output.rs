//! Remote output, line by line: the [`OutputSink`] trait, the splitter that
//! turns SSH data packets into lines, and Packer's way of printing them.

use std::io::Write;

/// Receives a remote command's output as it arrives, one line at a time
/// (without the line terminator; a final line without newline is delivered
/// when the command ends). Bytes that are not UTF-8 are replaced by U+FFFD.
pub trait OutputSink: Send {
    /// A line the command wrote to stdout.
    fn stdout_line(&mut self, line: &str);
    /// A line the command wrote to stderr.
    fn stderr_line(&mut self, line: &str);
}

/// Collects lines in memory (useful for capturing a command's output).
impl OutputSink for (Vec<String>, Vec<String>) {
    fn stdout_line(&mut self, line: &str) {
        self.0.push(line.to_string());
    }
    fn stderr_line(&mut self, line: &str) {
        self.1.push(line.to_string());
    }
}

/// Packer's clean-up of a remote output line before display: trailing
/// whitespace is trimmed and only the text after the last carriage return is
/// kept (what a terminal would show after `\r` progress updates). Then, beyond
/// Packer, control characters other than tab are shown as `^X` (ESC as `^[`):
/// the instance must not drive this machine's terminal (move the cursor, rewrite
/// earlier lines, set the title, or hide text) through its output.
pub fn clean_output_line(line: &str) -> std::borrow::Cow<'_, str> {
    let line = line.trim_end();
    let line = match line.rfind('\r') {
        Some(i) => &line[i + 1..],
        None => line,
    };
    if !line.chars().any(is_control) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        match c {
            c if is_control(c) && (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            '\u{7f}' => out.push_str("^?"),
            c if is_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A character a terminal would act on rather than print (tab excepted): C0, DEL, and the C1 range
/// (U+0080..U+009F, where a terminal may read CSI as U+009B).
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
}

/// Prints lines the way Packer 1.6.6 does for a build named `name`
/// (observed with `-color=false`): stdout lines as `    name: line`, stderr
/// lines as `==> name: line`, both cleaned by [`clean_output_line`], both to
/// the same writer; an empty line prints as `    name:`.
pub struct PackerStyleSink<W: Write + Send> {
    name: String,
    out: W,
}

impl<W: Write + Send> PackerStyleSink<W> {
    /// A sink for build `name` writing to `out` (usually `std::io::stdout()`).
    pub fn new(name: impl Into<String>, out: W) -> Self {
        PackerStyleSink {
            name: name.into(),
            out,
        }
    }

    /// The writer back (e.g. a `Vec<u8>` in tests).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn print(&mut self, marker: &str, line: &str) {
        let line = clean_output_line(line);
        let text = if line.is_empty() {
            format!("{marker} {}:\n", self.name)
        } else {
            format!("{marker} {}: {line}\n", self.name)
        };
        // Output is best effort: a closed stdout must not fail the build.
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }
}

impl<W: Write + Send> OutputSink for PackerStyleSink<W> {
    fn stdout_line(&mut self, line: &str) {
        self.print("   ", line);
    }
    fn stderr_line(&mut self, line: &str) {
        self.print("==>", line);
    }
}

/// Longest line buffered before it is delivered anyway (protects memory
/// against output that never contains a newline).
const MAX_LINE: usize = 1 << 20;

/// Splits one stream's bytes into lines.
#[derive(Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data`, calling `emit` for every complete line.
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&str)) {
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&rest[..pos]);
            self.emit_pending(&mut emit);
            rest = &rest[pos + 1..];
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() >= MAX_LINE {
            self.emit_pending(&mut emit);
        }
    }

    /// Delivers a final line that had no newline.
    pub fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.pending.is_empty() {
            self.emit_pending(&mut emit);
        }
    }

    fn emit_pending(&mut self, emit: &mut impl FnMut(&str)) {
        let mut line = &self.pending[..];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        emit(&String::from_utf8_lossy(line));
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut lines = Vec::new();
        for c in chunks {
            s.push(c, |l| lines.push(l.to_string()));
        }
        s.finish(|l| lines.push(l.to_string()));
        lines
    }

    #[test]
    fn splits_across_packets_and_flushes_the_last_partial_line() {
        assert_eq!(split(&[b"a\nb", b"c\n\nd"]), ["a", "bc", "", "d"]);
        assert_eq!(split(&[b"crlf\r\n"]), ["crlf"]);
        assert_eq!(split(&[b""]), Vec::<String>::new());
        assert_eq!(split(&[b"x\n"]), ["x"]);
    }

    #[test]
    fn multibyte_characters_split_between_packets_survive() {
        let text = "né\n".as_bytes();
        assert_eq!(split(&[&text[..2], &text[2..]]), ["né"]);
        assert_eq!(split(&[b"\xff\n"]), ["\u{fffd}"]);
    }

    #[test]
    fn very_long_lines_are_delivered_in_pieces() {
        let big = vec![b'x'; MAX_LINE + 10];
        let lines = split(&[&big]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE + 10);
        let lines = split(&[&big, &big]);
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn packer_cleaning() {
        assert_eq!(clean_output_line("a\rb"), "b");
        assert_eq!(clean_output_line("  trailing   "), "  trailing");
        assert_eq!(clean_output_line("50%\r100%\r"), "100%");
    }

    #[test]
    fn terminal_escapes_are_shown_not_obeyed() {
        assert_eq!(
            clean_output_line("\x1b[2J\x1b]0;pwned\x07ok"),
            "^[[2J^[]0;pwned^Gok"
        );
        assert_eq!(clean_output_line("a\tb\x7f\u{9b}31m"), "a\tb^?\\u{9b}31m");
        assert_eq!(clean_output_line("plain"), "plain");
    }

    #[test]
    fn packer_style_matches_observed_packer_output() {
        let mut sink = PackerStyleSink::new("amazon-ebs", Vec::new());
        sink.stdout_line("out1");
        sink.stderr_line("err1");
        sink.stdout_line("a\rb");
        sink.stdout_line("  trailing   ");
        sink.stdout_line("");
        let text = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(
            text,
            "    amazon-ebs: out1\n==> amazon-ebs: err1\n    amazon-ebs: b\n    amazon-ebs:   trailing\n    amazon-ebs:\n"
        );
    }
}
