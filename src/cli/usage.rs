//! How both binaries print what clap answers (help, version, usage errors): coloured only on a
//! terminal and never with `NO_COLOR` set, so that `--help` piped into a file or a pager is plain text.

use bakery_core::frontend::terminal::no_color;

/// Whether clap's text for a stream gets colours: `is_terminal` says whether that stream is one.
/// `CLICOLOR_FORCE` is not honoured: escapes in a pipe are what this prevents.
pub fn colour(is_terminal: bool) -> bool {
    is_terminal && !no_color()
}

/// The text of clap's answer, with colour escapes only when `colour`.
pub fn render(e: &clap::Error, colour: bool) -> String {
    let styled = e.render();
    if colour {
        styled.ansi().to_string()
    } else {
        // StyledStr's Display leaves the styles out.
        styled.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// A command with a styled help (clap styles headings and flags).
    #[derive(Parser)]
    struct Cli {
        /// A flag.
        #[arg(long)]
        flag: bool,
    }

    #[test]
    fn plain_unless_asked() {
        let e = Cli::command()
            .color(clap::ColorChoice::Always)
            .try_get_matches_from(["x", "--help"])
            .unwrap_err();
        assert!(!render(&e, false).contains('\x1b'));
        assert!(render(&e, false).contains("--flag"));
        assert!(render(&e, true).contains('\x1b'));
        assert!(!colour(false));
    }
}
