//! The `rollout` command line: parse → [`Session`] → command → summary → exit code (0 done, 1 failed or
//! rolled back, 2 usage). `src/bin/rollout.rs` calls [`main`]; tests call [`run`] with their own output
//! and AWS settings.

use crate::config::Overrides;
use crate::error::RolloutError;
use crate::session::{Options, Session};
use bakery_core::aws::AwsSettings;
use bakery_core::ui::{Mode, Ui, UiOptions};
use clap::{Args, Parser, Subcommand};
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
    after_help = "AMI: ami-0123..., ssm:/parameter/name, or a bake manifest file (its last build's AMI for the region).\nExit codes: 0 done, 1 failed (or rolled back), 2 usage."
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command (deploy when omitted).
    #[command(subcommand)]
    pub command: Option<Command>,
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
    pub fn overrides(&self) -> Overrides {
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
pub enum Command {
    /// Create (or converge) the load balancer, DNS ALIAS, key pair and security groups; idempotent.
    Setup,
    /// Show what is live now and what a rollout would do; read-only.
    Plan(DeployArgs),
    /// Roll an AMI out (the default command).
    Deploy(DeployArgs),
    /// Remove this app's old AMIs (and old launch template versions) that nothing uses.
    Gc(GcArgs),
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
}

/// `K=V` (the key must not be empty).
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not a tag (K=V)")),
    }
}

/// `90`, `90s`, `500ms`, `15m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (90s, 15m, 1h)"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m, h)")),
    };
    Ok(d)
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
            tty: std::io::stdout().is_terminal(),
        }
    }
}

/// The binary's `main`: real stdout/stderr, AWS settings from the flags and the environment, and
/// Ctrl-C/SIGTERM handling (first: stop and roll back; second: stop rolling back).
pub fn main() -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rollout: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let code = rt.block_on(run(
        std::env::args_os(),
        AwsSettings::default(),
        Io::process(),
        true,
    ));
    std::process::ExitCode::from(code)
}

#[derive(Serialize)]
struct JsonError<'a> {
    status: &'a str,
    error: String,
}

/// Parses `args`, runs the command and returns the exit code. `base` is the AWS settings the flags are
/// applied to (tests give the lab's endpoint and keys); `signals` installs the interrupt handlers.
pub async fn run(
    args: impl IntoIterator<Item = OsString>,
    base: AwsSettings,
    io: Io,
    signals: bool,
) -> u8 {
    let Io {
        mut stdout,
        mut stderr,
        tty,
    } = io;
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let text = e.render().ansi().to_string();
            let code = e.exit_code();
            if e.use_stderr() {
                let _ = write!(stderr, "{text}");
            } else {
                let _ = write!(stdout, "{text}");
            }
            return code.clamp(0, 255) as u8;
        }
    };
    // `rollout --ami X setup` is ambiguous: deploy flags go after `deploy`/`plan`, or without a command.
    if cli.command.is_some() && cli.deploy != DeployArgs::default() {
        let _ = writeln!(
            stderr,
            "error: --ami and the capacity/timeout flags go after `deploy` or `plan` (or use them without a command)\n\nFor more information, try '--help'."
        );
        return 2;
    }
    let g = cli.global.clone();
    let (command, deploy_args) = match cli.command.clone() {
        None => (None, cli.deploy.clone()),
        Some(Command::Deploy(a)) => (None, a),
        Some(Command::Plan(a)) => (Some("plan"), a),
        Some(Command::Setup) => (Some("setup"), DeployArgs::default()),
        Some(Command::Gc(_)) => (Some("gc"), DeployArgs::default()),
    };
    if command.is_none() && deploy_args.ami.is_none() {
        let _ = writeln!(
            stderr,
            "error: --ami is required to roll out (or run `rollout setup` / `rollout plan`)\n\nUsage: rollout [OPTIONS] --ami <AMI>\n       rollout [OPTIONS] <setup|plan|deploy>\n\nFor more information, try '--help'."
        );
        return 2;
    }

    // JSON: events to stderr, the one summary document to stdout. Human: everything to stdout.
    let (ui, mut summary_out): (Ui, Box<dyn Write + Send>) = if g.json {
        let opts = UiOptions {
            mode: Mode::Json,
            color: false,
            timestamps: false,
            progress: false,
            secrets: vec![],
        };
        (Ui::to_writer(opts, stderr), stdout)
    } else {
        let opts = UiOptions {
            mode: Mode::Human,
            color: tty && !g.no_color,
            timestamps: false,
            progress: tty,
            secrets: vec![],
        };
        let ui = if tty {
            Ui::stdout(opts)
        } else {
            Ui::to_writer(opts, stdout)
        };
        (ui, stderr)
    };
    // In human mode summaries go through the Ui (stdout) and errors to stderr (`summary_out`).
    let json = g.json;
    let emit_error = |out: &mut Box<dyn Write + Send>, ui: &Ui, e: &RolloutError| {
        if json {
            let doc = match e.report() {
                Some(r) => serde_json::to_string_pretty(r),
                None => serde_json::to_string_pretty(&JsonError {
                    status: "error",
                    error: e.to_string(),
                }),
            };
            if let Ok(doc) = doc {
                let _ = writeln!(out, "{doc}");
            }
        } else {
            if let Some(r) = e.report() {
                ui.plain(r.render().trim_end());
            }
            let _ = writeln!(out, "rollout: error: {}", e.headline());
        }
    };

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
    let options = Options {
        manifest: g.manifest.clone(),
        env: g.env.clone(),
        aws,
        overrides: deploy_args.overrides(),
        ui: ui.clone(),
    };
    let session = match Session::open(options).await {
        Ok(s) => s,
        Err(e) => {
            emit_error(&mut summary_out, &ui, &e);
            return 1;
        }
    };
    if signals {
        let cancel = session.cancel_token();
        let cancel_cleanup = session.cancel_cleanup_token();
        let ui = ui.clone();
        tokio::spawn(async move {
            if interrupted().await {
                ui.error("rollout", "Interrupted: stopping; anything created is rolled back (interrupt again to stop that too)");
                cancel.cancel();
            }
            if interrupted().await {
                ui.error("rollout", "Interrupted again: stopping the rollback");
                cancel_cleanup.cancel();
            }
        });
    }

    let print = |out: &mut Box<dyn Write + Send>,
                 ui: &Ui,
                 doc: serde_json::Result<String>,
                 human: String| {
        if json {
            if let Ok(doc) = doc {
                let _ = writeln!(out, "{doc}");
            }
        } else {
            ui.plain(human.trim_end());
        }
    };
    match command {
        Some("gc") => {
            let a = match &cli.command {
                Some(Command::Gc(a)) => a.clone(),
                _ => GcArgs::default(),
            };
            let req = crate::gc::GcRequest {
                keep: a.keep,
                name_prefix: a.name_prefix.clone(),
                tags: a.tags.clone(),
                dry_run: g.dry_run,
            };
            if req.keep.or(session.ctx().cfg.gc.keep).is_none() {
                emit_error(
                    &mut summary_out,
                    &ui,
                    &crate::gc::missing_keep(&session.ctx().cfg),
                );
                return 2;
            }
            match session.gc(&req).await {
                Ok(r) => {
                    print(
                        &mut summary_out,
                        &ui,
                        serde_json::to_string_pretty(&r),
                        r.render(),
                    );
                    u8::from(!r.problems.is_empty())
                }
                Err(e) => {
                    emit_error(&mut summary_out, &ui, &e);
                    1
                }
            }
        }
        Some("setup") => match session.setup(g.dry_run).await {
            Ok(r) => {
                print(
                    &mut summary_out,
                    &ui,
                    serde_json::to_string_pretty(&r),
                    r.render(),
                );
                0
            }
            Err(e) => {
                emit_error(&mut summary_out, &ui, &e);
                1
            }
        },
        _ if command == Some("plan") || g.dry_run => {
            match session.plan(deploy_args.ami.as_deref()).await {
                Ok(r) => {
                    print(
                        &mut summary_out,
                        &ui,
                        serde_json::to_string_pretty(&r),
                        r.render(),
                    );
                    u8::from(!r.problems.is_empty())
                }
                Err(e) => {
                    emit_error(&mut summary_out, &ui, &e);
                    1
                }
            }
        }
        _ => {
            let ami = deploy_args.ami.clone().unwrap_or_default();
            match session.deploy(&ami).await {
                Ok(r) => {
                    print(
                        &mut summary_out,
                        &ui,
                        serde_json::to_string_pretty(&r),
                        r.render(),
                    );
                    0
                }
                Err(e) => {
                    emit_error(&mut summary_out, &ui, &e);
                    1
                }
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM; false if signals cannot be watched.
async fn interrupted() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.is_ok(),
            r = term.recv() => r.is_some(),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
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
        let c = parse(&["setup", "--env", "dev01", "--dry-run"]).unwrap();
        assert!(matches!(c.command, Some(Command::Setup)));
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
            Some(Command::Deploy(a)) => {
                assert_eq!(a.ami.as_deref(), Some("ssm:/x"));
                assert_eq!(a.health_timeout, Some(Duration::from_secs(90)));
            }
            other => panic!("{other:?}"),
        }
        assert!(c.global.json);
        assert_eq!(c.global.manifest, PathBuf::from("manifests/rollout.json"));
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
