//! `completions SHELL` and `man [--dir DIR]`, in both binaries: generated at run time from the binary's own
//! clap definition, so they cannot fall out of step with its flags and need no extra binary or build step.

use clap::Args;
use clap_complete::Shell;
use std::io::Write;
use std::path::PathBuf;

/// `completions`' arguments.
#[derive(Debug, Args, Clone, PartialEq)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `man`'s arguments.
#[derive(Debug, Args, Clone, Default, PartialEq)]
pub struct ManArgs {
    /// Write NAME.1 and a page per subcommand (NAME-SUBCOMMAND.1) into DIR instead of printing NAME(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Completions(CompletionsArgs),
    Man(ManArgs),
}

impl Request {
    /// Generates it for `cmd` (the binary's `Cli::command()`) on `out`; returns the exit code, 0 or 1 with
    /// the reason on `err`.
    pub fn answer(self, cmd: clap::Command, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
        let name = cmd.get_name().to_string();
        let result = match self {
            Request::Completions(a) => {
                // Rendered whole first: clap_complete panics when its writer fails (a closed pipe).
                let mut script = Vec::new();
                clap_complete::generate(a.shell, &mut cmd.clone(), &name, &mut script);
                out.write_all(&script)
            }
            Request::Man(ManArgs { dir: Some(dir) }) => std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(cmd, &dir))
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
            Request::Man(ManArgs { dir: None }) => {
                // The subcommands have pages of their own (--dir); `help` is not one of them.
                let mut page = Vec::new();
                clap_mangen::Man::new(cmd.disable_help_subcommand(true))
                    .render(&mut page)
                    .and_then(|()| out.write_all(&page))
            }
        };
        match result.and_then(|()| out.flush()) {
            Ok(()) => 0,
            // The reader had what it wanted (`bake man | head`).
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            Err(e) => {
                let _ = writeln!(err, "{name}: {e}");
                1
            }
        }
    }
}
