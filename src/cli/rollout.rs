//! The `rollout` command line: parse → lift into typed [`Command`] and session [`Options`] → [`Session`] →
//! summary → exit code (0 done, 1 failed or rolled back, 2 usage). `src/bin/rollout.rs` calls [`main`];
//! tests call [`run`] with their own output and AWS settings.

use super::generate::{self, CompletionsArgs, ManArgs};
use super::usage;
use bakery_core::aws::AwsSettings;
use bakery_core::frontend::interrupt::{self, Messages, Tokens};
use bakery_core::frontend::runtime;
use bakery_core::frontend::terminal::{Output, stdout_is_terminal};
use bakery_core::ui::{Mode, Ui};
use bakery_rollout::command::Command;
use bakery_rollout::config::Overrides;
use bakery_rollout::gc::{GcRequest, missing_keep};
use bakery_rollout::{Options, RolloutError, Session};
use clap::{Args, CommandFactory, Parser, Subcommand};
use serde::Serialize;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Blue-green Auto Scaling rollouts of baked AMIs behind a classic ELB or an ALB.
///
/// `rollout --ami AMI` rolls an AMI out (the default command); `rollout setup` creates the environment's
/// load balancer, DNS record, key pair and security groups; `rollout plan` shows what is live and what a
/// rollout would do, read-only.
#[derive(Debug, Parser)]
#[command(
    name = "rollout",
    version,
    after_help = "AMI: ami-0123..., ssm:/parameter/name, or a bake manifest file (its last build's AMI for the region).\n\
        Exit codes: 0 done, 1 failed (or rolled back), 2 usage.\n\n\
        Examples:\n  \
        rollout setup --env staging\n  \
        rollout plan --ami ami-0123456789abcdef0\n  \
        rollout --ami ami-0123456789abcdef0 --env production\n  \
        rollout --ami ssm:/app/ami --json > rollout.json\n  \
        rollout undo --env production\n  \
        rollout gc --keep 5 --dry-run"
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command (deploy when omitted).
    #[command(subcommand)]
    pub command: Option<CommandArgs>,
    /// `rollout --ami AMI` without a command deploys.
    #[command(flatten)]
    pub deploy: DeployArgs,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The environment (default: the manifest's default_environment, else staging).
    #[arg(long, global = true, value_name = "ENV")]
    pub env: Option<String>,
    /// The rollout manifest.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "manifests/rollout.json"
    )]
    pub manifest: PathBuf,
    /// AWS region (else the manifest's, AWS_REGION, the profile's, us-east-1).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Send every AWS request to this endpoint (a local emulator); AWS_ENDPOINT_URL does the same.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS profile.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Machine-readable: progress as JSON lines on stderr, the summary as one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Only show what would be done (read-only AWS calls).
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// No colours.
    #[arg(long, global = true)]
    pub no_color: bool,
}

/// What to roll out, and flags that override the manifest.
#[derive(Debug, Args, Clone, Default, PartialEq)]
pub struct DeployArgs {
    /// The AMI: ami-..., ssm:/name, or a bake manifest file.
    #[arg(long, value_name = "AMI")]
    pub ami: Option<String>,
    /// Minimum size of the new group.
    #[arg(long)]
    pub min: Option<u32>,
    /// Maximum size of the new group.
    #[arg(long)]
    pub max: Option<u32>,
    /// Desired capacity of the new group.
    #[arg(long)]
    pub desired: Option<u32>,
    /// Instance type.
    #[arg(long, value_name = "TYPE")]
    pub instance_type: Option<String>,
    /// How long the new group has to become healthy before it is rolled back (90s, 15m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub health_timeout: Option<Duration>,
    /// How long the new group must stay healthy before the old one is touched.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub min_healthy_time: Option<Duration>,
}

impl DeployArgs {
    /// The manifest overrides these flags make.
    fn overrides(&self) -> Overrides {
        Overrides {
            instance_type: self.instance_type.clone(),
            min: self.min,
            max: self.max,
            desired: self.desired,
            health_timeout: self.health_timeout,
            min_healthy: self.min_healthy_time,
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand, Clone)]
pub enum CommandArgs {
    /// Create (or converge) the load balancer, DNS ALIAS, key pair and security groups; idempotent.
    #[command(after_help = "Examples:\n  \
        rollout setup --dry-run\n  \
        rollout setup --env production --manifest manifests/rollout.json")]
    Setup,
    /// Show what is live now and what a rollout would do; read-only.
    #[command(after_help = "Examples:\n  \
        rollout plan\n  \
        rollout plan --ami ami-0123456789abcdef0 --env production\n  \
        rollout plan --ami packer-manifest.json --json")]
    Plan(DeployArgs),
    /// Roll an AMI out (the default command).
    #[command(after_help = "Examples:\n  \
        rollout deploy --ami ami-0123456789abcdef0\n  \
        rollout deploy --ami ssm:/app/ami --desired 4 --health-timeout 15m\n  \
        rollout --ami packer-manifest.json --env production   # deploy is the default")]
    Deploy(DeployArgs),
    /// Bring the previous release back: the newest group the rollback window kept (blue_green.keep_previous_*)
    /// is scaled to the serving capacity, attached and health-checked as a deploy's new group, then the
    /// serving (bad) group is detached and deleted. Never zero instances in service.
    #[command(
        after_help = "Exit codes: 0 the previous release serves again; 1 failed (the kept group is returned \
        to the window, the serving one untouched) or nothing is kept.\n\n\
        Examples:\n  \
        rollout plan --env production          # what is kept, and until when\n  \
        rollout undo --env production\n  \
        rollout undo --env production --json   # the report as one JSON document"
    )]
    Undo,
    /// Remove this app's old AMIs (and old launch template versions) that nothing uses.
    #[command(after_help = "Examples:\n  \
        rollout gc --keep 5 --dry-run\n  \
        rollout gc --keep 5\n  \
        rollout gc --keep 3 --name-prefix web- --tag team=web\n  \
        rollout gc --keep 5 --regions us-west-2,eu-west-1 --dry-run\n  \
        rollout gc --keep 5 --deprecate-after 7d --delete-after 30d\n  \
        rollout gc --keep 5 --include-shared")]
    Gc(GcArgs),
    /// Undo what a killed rollout left: its in-progress group or fleet, and its launch templates.
    #[command(after_help = "Examples:\n  \
        rollout abandon --env staging\n  \
        rollout abandon --run-id 6f1c2d3e-8a9b-4c5d-9e0f-1a2b3c4d5e6f   # the id in the refusal")]
    Abandon(AbandonArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        rollout completions bash > ~/.local/share/bash-completion/completions/rollout\n  \
        rollout completions zsh > ~/.local/share/zsh/site-functions/_rollout\n  \
        rollout completions fish > ~/.config/fish/completions/rollout.fish\n  \
        eval (rollout completions elvish | slurp)                       # elvish, in rc.elv\n  \
        rollout completions powershell | Out-String | Invoke-Expression  # PowerShell, in $PROFILE")]
    Completions(CompletionsArgs),
    /// Print rollout's man page, or write every page into a directory.
    #[command(after_help = "Examples:\n  \
        rollout man | man -l -\n  \
        rollout man --dir ~/.local/share/man/man1")]
    Man(ManArgs),
}

/// `rollout abandon`: which dead run.
#[derive(Debug, Args, Clone, Default, PartialEq)]
pub struct AbandonArgs {
    /// Only this run (as printed by the rollout and by the refusal of the next one); also finds a run
    /// killed before its group existed. Without it: every in-progress rollout of the environment.
    #[arg(long = "run-id", value_name = "ID")]
    pub run_id: Option<String>,
}

/// `rollout gc`: what to keep and which AMIs are the app's.
#[derive(Debug, Args, Clone, Default, PartialEq)]
pub struct GcArgs {
    /// Keep the newest N AMIs and launch template versions (else the manifest's gc.keep).
    #[arg(long, value_name = "N")]
    pub keep: Option<u32>,
    /// Only AMIs whose name starts with this (with --tag: replaces the manifest's gc selection).
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Option<String>,
    /// Only AMIs with this tag, K=V; repeatable, all must match.
    #[arg(long = "tag", value_name = "K=V", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Also work in these regions (where the AMIs were copied to), each decided on its own;
    /// repeatable or comma-separated; replaces the manifest's gc.regions.
    #[arg(
        long = "regions",
        value_name = "REGION",
        value_delimiter = ',',
        value_parser = parse_region
    )]
    pub regions: Vec<String>,
    /// Remove AMIs shared with other accounts too (by default a launch permission keeps an AMI).
    #[arg(long)]
    pub include_shared: bool,
    /// Deprecate an AMI that may go this long from now before deregistering it (7d, 24h, 90m).
    #[arg(long, value_name = "DURATION", value_parser = parse_gc_duration)]
    pub deprecate_after: Option<Duration>,
    /// Deregister an AMI this long after its deprecation time (without --deprecate-after: deprecate
    /// it now first).
    #[arg(long, value_name = "DURATION", value_parser = parse_gc_duration)]
    pub delete_after: Option<Duration>,
}

impl GcArgs {
    /// The library's request.
    fn request(self, dry_run: bool) -> GcRequest {
        GcRequest {
            keep: self.keep,
            name_prefix: self.name_prefix,
            tags: self.tags,
            dry_run,
            regions: (!self.regions.is_empty()).then_some(self.regions),
            include_shared: self.include_shared,
            deprecate_after: self.deprecate_after,
            delete_after: self.delete_after,
            now: None,
        }
    }
}

/// A region name (`us-west-2`).
pub fn parse_region(s: &str) -> Result<String, String> {
    if bakery_rollout::retention::is_region_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a region name (us-west-2)"))
    }
}

/// gc's durations: `7d`, `24h`, `90m`, `1h30m`, or seconds.
pub fn parse_gc_duration(s: &str) -> Result<Duration, String> {
    bakery_rollout::retention::parse_gc_duration(&serde_json::Value::String(s.to_string()))
}

/// `K=V` (the key must not be empty).
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not a tag (K=V)")),
    }
}

/// A duration flag: Go's duration syntax as templates use it (`90s`, `15m`, `1h30m`, `500ms`), or bare
/// seconds (`90`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    bakery_template::duration::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration (90s, 15m, 1h): {e}"))
}

/// Where output goes.
pub struct Io {
    /// Human output and the JSON summary.
    pub stdout: Box<dyn Write + Send>,
    /// Errors, and the JSON progress lines.
    pub stderr: Box<dyn Write + Send>,
    /// stdout is a terminal: colours and progress spinners.
    pub tty: bool,
}

impl Io {
    /// The process's stdout and stderr.
    pub fn process() -> Self {
        Io {
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
            tty: stdout_is_terminal(),
        }
    }
}

/// The binary's `main`: real stdout/stderr, AWS settings from the flags and the environment, and
/// Ctrl-C/SIGTERM handling (first: stop and roll back; second: stop rolling back).
pub fn main() -> std::process::ExitCode {
    bakery_core::log::init_from_env("rollout", &super::packer_compat::log_banner());
    runtime::block_on(
        "rollout",
        run(
            std::env::args_os(),
            AwsSettings::default(),
            Io::process(),
            true,
        ),
    )
}

#[derive(Serialize)]
struct JsonError<'a> {
    status: &'a str,
    error: String,
}

/// What rollout says on each interrupt.
const INTERRUPT_MESSAGES: Messages = Messages {
    target: "rollout",
    first: "Interrupted: stopping; anything created is rolled back (interrupt again to stop that too)",
    second: "Interrupted again: stopping the rollback",
};

/// The command line lifted into what the library takes.
struct Invocation {
    command: Command,
    overrides: Overrides,
    global: GlobalArgs,
}

/// What the command line asks for.
enum Lifted {
    /// A command of the library, run in a session (boxed: it is by far the larger).
    Session(Box<Invocation>),
    /// Completions or a man page: no session, no AWS.
    Generate(generate::Request),
}

/// Lifts the parsed flags into a [`Command`] (or a [`generate::Request`]); a usage message when they do
/// not make one.
fn lift(cli: Cli) -> Result<Lifted, &'static str> {
    // `rollout --ami X setup` is ambiguous: deploy flags go after `deploy`/`plan`, or without a command.
    if cli.command.is_some() && cli.deploy != DeployArgs::default() {
        return Err(
            "error: --ami and the capacity/timeout flags go after `deploy` or `plan` (or use them without a command)\n\nFor more information, try '--help'.",
        );
    }
    let dry_run = cli.global.dry_run;
    let (command, deploy_args) = match cli.command {
        Some(CommandArgs::Setup) => (Command::Setup { dry_run }, DeployArgs::default()),
        Some(CommandArgs::Gc(a)) => (Command::Gc(a.request(dry_run)), DeployArgs::default()),
        Some(CommandArgs::Undo) if dry_run => {
            return Err(
                "error: `rollout undo` has no --dry-run: `rollout plan` shows the kept releases and until when\n\nFor more information, try '--help'.",
            );
        }
        Some(CommandArgs::Undo) => (Command::Undo, DeployArgs::default()),
        Some(CommandArgs::Abandon(a)) => {
            (Command::Abandon { run_id: a.run_id }, DeployArgs::default())
        }
        Some(CommandArgs::Plan(a)) => (Command::Plan { ami: a.ami.clone() }, a),
        Some(CommandArgs::Deploy(a)) => (deploy(&a, dry_run)?, a),
        None => (deploy(&cli.deploy, dry_run)?, cli.deploy),
        Some(CommandArgs::Completions(a)) => {
            return Ok(Lifted::Generate(generate::Request::Completions(a)));
        }
        Some(CommandArgs::Man(a)) => return Ok(Lifted::Generate(generate::Request::Man(a))),
    };
    Ok(Lifted::Session(Box::new(Invocation {
        command,
        overrides: deploy_args.overrides(),
        global: cli.global,
    })))
}

/// `rollout --ami AMI` and `rollout deploy --ami AMI`; with `--dry-run`, a plan.
fn deploy(a: &DeployArgs, dry_run: bool) -> Result<Command, &'static str> {
    let Some(ami) = a.ami.clone() else {
        return Err(
            "error: --ami is required to roll out (or run `rollout setup` / `rollout plan`)\n\nUsage: rollout [OPTIONS] --ami <AMI>\n       rollout [OPTIONS] <setup|plan|deploy>\n\nFor more information, try '--help'.",
        );
    };
    Ok(if dry_run {
        Command::Plan { ami: Some(ami) }
    } else {
        Command::Deploy { ami }
    })
}

/// The session's options: the flags applied over `base`.
fn options(g: &GlobalArgs, base: AwsSettings, overrides: Overrides, ui: Ui) -> Options {
    let mut aws = base;
    if g.region.is_some() {
        aws.region = g.region.clone();
    }
    if g.profile.is_some() {
        aws.profile = g.profile.clone();
    }
    if g.endpoint_url.is_some() {
        aws.endpoint_url = g.endpoint_url.clone();
    }
    Options {
        manifest: g.manifest.clone(),
        env: g.env.clone(),
        aws,
        overrides,
        ui,
    }
}

/// Where the Ui writes and where summaries and errors go. JSON: events to stderr, the one summary
/// document to stdout. Human: everything to stdout through the Ui, errors to stderr.
fn outputs(g: &GlobalArgs, io: Io) -> (Ui, Box<dyn Write + Send>) {
    let Io {
        stdout,
        stderr,
        tty,
    } = io;
    if g.json {
        let output = Output {
            mode: Mode::Json,
            color: false,
            timestamps: false,
            tty,
        };
        (Ui::to_writer(output.ui_options(vec![]), stderr), stdout)
    } else {
        let output = Output {
            mode: Mode::Human,
            color: !g.no_color,
            timestamps: false,
            tty,
        };
        let ui = if tty {
            Ui::stdout(output.ui_options(vec![]))
        } else {
            Ui::to_writer(output.ui_options(vec![]), stdout)
        };
        (ui, stderr)
    }
}

/// Prints a summary: JSON to `out`, or the human rendering through the Ui.
struct Printer {
    json: bool,
    ui: Ui,
    out: Box<dyn Write + Send>,
}

impl Printer {
    /// Colours in the summary: human output on a terminal, no `--no-color`, no `NO_COLOR` (the Ui's
    /// options say).
    fn color(&self) -> bool {
        !self.json && self.ui.options().color
    }

    fn report(&mut self, doc: serde_json::Result<String>, human: String) {
        if self.json {
            if let Ok(doc) = doc {
                let _ = writeln!(self.out, "{doc}");
            }
        } else {
            self.ui.plain(human.trim_end());
        }
    }

    fn error(&mut self, e: &RolloutError) {
        if self.json {
            let doc = match e.report() {
                Some(r) => serde_json::to_string_pretty(r),
                None => serde_json::to_string_pretty(&JsonError {
                    status: "error",
                    error: e.to_string(),
                }),
            };
            if let Ok(doc) = doc {
                let _ = writeln!(self.out, "{doc}");
            }
        } else {
            if let Some(r) = e.report() {
                self.ui.plain(r.render().trim_end());
            }
            let _ = writeln!(self.out, "rollout: error: {}", e.headline());
        }
    }
}

/// Parses `args`, runs the command and returns the exit code. `base` is the AWS settings the flags are
/// applied to (tests give the lab's endpoint and keys); `signals` installs the interrupt handlers.
pub async fn run(
    args: impl IntoIterator<Item = OsString>,
    base: AwsSettings,
    mut io: Io,
    signals: bool,
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // `io.tty` is stdout's (false for a test's buffers); errors go to stderr, which must be a
            // terminal too.
            let (out, tty) = if e.use_stderr() {
                (&mut io.stderr, io.tty && std::io::stderr().is_terminal())
            } else {
                (&mut io.stdout, io.tty)
            };
            let _ = write!(out, "{}", usage::render(&e, usage::colour(tty)));
            return e.exit_code().clamp(0, 255) as u8;
        }
    };
    let Invocation {
        command,
        overrides,
        global,
    } = match lift(cli) {
        Ok(Lifted::Session(i)) => *i,
        Ok(Lifted::Generate(request)) => {
            return request.answer(Cli::command(), &mut io.stdout, &mut io.stderr);
        }
        Err(usage) => {
            let _ = writeln!(io.stderr, "{usage}");
            return 2;
        }
    };
    let (ui, out) = outputs(&global, io);
    let mut printer = Printer {
        json: global.json,
        ui: ui.clone(),
        out,
    };
    let session = match Session::open(options(&global, base, overrides, ui.clone())).await {
        Ok(s) => s,
        Err(e) => {
            printer.error(&e);
            return 1;
        }
    };
    if signals {
        let tokens = Tokens {
            cancel: session.cancel_token(),
            cancel_cleanup: session.cancel_cleanup_token(),
        };
        interrupt::watch(ui, INTERRUPT_MESSAGES, tokens);
    }
    match command {
        Command::Gc(req) => {
            if req.keep.or(session.ctx().cfg.gc.keep).is_none() {
                printer.error(&missing_keep(&session.ctx().cfg));
                return 2;
            }
            match session.gc(&req).await {
                Ok(r) => {
                    printer.report(serde_json::to_string_pretty(&r), r.render());
                    u8::from(!r.problems.is_empty())
                }
                Err(e) => {
                    printer.error(&e);
                    1
                }
            }
        }
        Command::Abandon { run_id } => match session.abandon(run_id.as_deref()).await {
            Ok(r) => {
                printer.report(serde_json::to_string_pretty(&r), r.render());
                u8::from(!r.failures.is_empty())
            }
            Err(e) => {
                printer.error(&e);
                1
            }
        },
        Command::Setup { dry_run } => match session.setup(dry_run).await {
            Ok(r) => {
                let human = r.render_styled(printer.color());
                printer.report(serde_json::to_string_pretty(&r), human);
                0
            }
            Err(e) => {
                printer.error(&e);
                1
            }
        },
        Command::Plan { ami } => match session.plan(ami.as_deref()).await {
            Ok(r) => {
                let human = r.render_styled(printer.color());
                printer.report(serde_json::to_string_pretty(&r), human);
                u8::from(!r.problems.is_empty())
            }
            Err(e) => {
                printer.error(&e);
                1
            }
        },
        Command::Undo => match session.undo().await {
            Ok(r) => {
                printer.report(serde_json::to_string_pretty(&r), r.render());
                0
            }
            Err(e) => {
                printer.error(&e);
                1
            }
        },
        Command::Deploy { ami } => match session.deploy(&ami).await {
            Ok(r) => {
                printer.report(serde_json::to_string_pretty(&r), r.render());
                0
            }
            Err(e) => {
                printer.error(&e);
                1
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("rollout").chain(args.iter().copied()))
    }

    #[test]
    fn ami_alone_deploys_and_subcommands_take_global_flags() {
        let c = parse(&[
            "--ami",
            "ami-12345678",
            "--env",
            "production",
            "--desired",
            "3",
        ])
        .unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.deploy.ami.as_deref(), Some("ami-12345678"));
        assert_eq!(c.deploy.desired, Some(3));
        assert_eq!(c.global.env.as_deref(), Some("production"));
        let c = parse(&["undo", "--env", "production"]).unwrap();
        assert!(matches!(c.command, Some(CommandArgs::Undo)));
        assert!(matches!(lift(c), Ok(Lifted::Session(i)) if i.command == Command::Undo));
        let c = parse(&["undo", "--dry-run"]).unwrap();
        assert!(lift(c).is_err(), "undo has no dry run");
        let c = parse(&["setup", "--env", "dev01", "--dry-run"]).unwrap();
        assert!(matches!(c.command, Some(CommandArgs::Setup)));
        assert!(c.global.dry_run);
        assert_eq!(c.global.env.as_deref(), Some("dev01"));
        let c = parse(&[
            "--json",
            "deploy",
            "--ami",
            "ssm:/x",
            "--health-timeout",
            "90s",
        ])
        .unwrap();
        match c.command {
            Some(CommandArgs::Deploy(a)) => {
                assert_eq!(a.ami.as_deref(), Some("ssm:/x"));
                assert_eq!(a.health_timeout, Some(Duration::from_secs(90)));
            }
            other => panic!("{other:?}"),
        }
        assert!(c.global.json);
        assert_eq!(c.global.manifest, PathBuf::from("manifests/rollout.json"));
    }

    #[test]
    fn gc_flags_make_the_request() {
        let c = parse(&[
            "gc",
            "--keep",
            "3",
            "--regions",
            "us-west-2,eu-west-1",
            "--regions",
            "ap-south-1",
            "--include-shared",
            "--deprecate-after",
            "7d",
            "--delete-after",
            "90m",
            "--dry-run",
        ])
        .unwrap();
        let Ok(Lifted::Session(i)) = lift(c) else {
            panic!("not a session command");
        };
        let Command::Gc(req) = i.command else {
            panic!("{:?}", i.command);
        };
        assert_eq!(req.keep, Some(3));
        assert_eq!(
            req.regions.as_deref(),
            Some(
                &[
                    "us-west-2".to_string(),
                    "eu-west-1".into(),
                    "ap-south-1".into()
                ][..]
            )
        );
        assert!(req.include_shared && req.dry_run);
        assert_eq!(req.deprecate_after, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(req.delete_after, Some(Duration::from_secs(90 * 60)));
        // Without the flags: the manifest's settings, today's behaviour.
        let Ok(Lifted::Session(i)) = lift(parse(&["gc", "--keep", "3"]).unwrap()) else {
            panic!("not a session command");
        };
        let Command::Gc(req) = i.command else {
            panic!("{:?}", i.command);
        };
        assert_eq!(req.regions, None);
        assert!(!req.include_shared);
        assert_eq!((req.deprecate_after, req.delete_after), (None, None));
        for bad in [
            &["gc", "--regions", "uswest2"][..],
            &["gc", "--deprecate-after", "soon"],
            &["gc", "--delete-after", "3651d"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        assert!(
            parse(&["gc", "--regions", "uswest2"])
                .unwrap_err()
                .to_string()
                .contains("`uswest2` is not a region name"),
        );
    }

    #[test]
    fn usage_errors_are_exit_code_2() {
        let e = parse(&["--health-timeout", "soon"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("not a duration"), "{e}");
        let e = parse(&["--frobnicate"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("5 days").is_err());
        assert!(parse_duration("m").is_err());
    }
}
