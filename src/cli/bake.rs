//! The `bake` command line: raw flags are lifted into validated options before anything else sees them.
//!
//! Packer's single-dash long flags (`-var K=V`, `-var-file=F`, `-only=a,b`, `-color=false`) and the GNU
//! `--` forms both work: [`normalize_args`] rewrites the former into the latter, and `bake TEMPLATE` means
//! `bake build TEMPLATE`. Help, completions and man pages show the `--` forms.

use super::generate::{self, CompletionsArgs, ManArgs};
use super::packer_compat::{self, PassArgs, VersionArgs};
use super::{build, cleanup, template, usage};

use bakery_builder::amazon_ebs::console_keys::HostKeyCheck;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// bake: build AMIs from Packer JSON templates.
#[derive(Debug, Parser)]
#[command(
    name = "bake",
    version,
    about = "Build AMIs from Packer JSON templates, as Packer's amazon-ebs builder does",
    long_about = "Build AMIs from Packer JSON templates, as Packer's amazon-ebs builder does.\n\n\
        Packer's single-dash flags work as well as the double-dash ones shown here (-var K=V, \
        -var-file=FILE, -only=a,b, -on-error=abort), and `bake TEMPLATE...` means `bake build TEMPLATE...`.",
    after_help = "Examples:\n  \
        bake validate -var-file lab.vars.json manifests/primal.json\n  \
        bake -var-file lab.vars.json -var SOURCE_AMI=ami-785db401 manifests/primal.json\n  \
        bake cleanup --dry-run\n  \
        bake completions bash > ~/.local/share/bash-completion/completions/bake"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the builds of one or more templates (the default: `bake TEMPLATE`).
    #[command(after_help = "Examples:\n  \
        bake build -var-file lab.vars.json -var SOURCE_AMI=ami-785db401 manifests/primal.json\n  \
        bake -var-file lab.vars.json -pass-ami SOURCE_ID manifests/primal.json manifests/carnivore.json\n  \
        bake build -only=amazon-ebs -on-error=abort -var-file lab.vars.json manifests/primal.json\n  \
        bake build --dry-run -var-file lab.vars.json manifests/primal.json\n  \
        bake build --each-var-file web.json --each-var-file api.json app.json")]
    Build(BuildArgs),
    /// Check a template: exit 0 when valid, 1 with every error.
    #[command(after_help = "Examples:\n  \
        bake validate manifests/primal.json\n  \
        bake validate -var SOURCE_ID=ami-12345678 manifests/carnivore.json\n  \
        bake validate -syntax-only manifests/carnivore.json")]
    Validate(ValidateArgs),
    /// Show a template's variables, builds, provisioners and post-processors.
    #[command(after_help = "Examples:\n  \
        bake inspect manifests/carnivore.json\n  \
        bake inspect -machine-readable template.json | grep template-variable | cut -d, -f4")]
    Inspect(InspectArgs),
    /// Render template expressions read one per line from stdin.
    #[command(after_help = "Examples:\n  \
        echo '{{timestamp}} {{user `NODE_ENV`}}' | bake console manifests/primal.json")]
    Console(TemplateOpts),
    /// Remove what killed runs left behind (from the run journals and bakery's tags).
    #[command(after_help = "Examples:\n  \
        bake cleanup --dry-run\n  \
        bake cleanup --run-id 0f3a9c1e77b2\n  \
        bake cleanup --older-than 2h --region us-east-1 --region eu-west-1")]
    Cleanup(cleanup::CleanupArgs),
    /// Print the Packer version bake behaves as (a line version-parsing scripts accept), then bakery's.
    #[command(after_help = "Examples:\n  \
        bake version\n  \
        bake version -machine-readable")]
    Version(VersionArgs),
    /// Nothing to install: bake's builder, provisioners and post-processors are built in (exit 0).
    #[command(after_help = "Examples:\n  \
        bake init packer/config.pkr.hcl")]
    Init(PassArgs),
    /// Nothing to format for JSON templates (exit 0); HCL2 files are refused.
    #[command(after_help = "Examples:\n  \
        bake fmt -check .")]
    Fmt(PassArgs),
    /// `installed` lists what is built in; `install`, `required` and `remove` have nothing to do.
    #[command(after_help = "Examples:\n  \
        bake plugins installed")]
    Plugins(PassArgs),
    /// Refused (exit 1): bake does not rewrite templates (run `packer fix` once on a pre-1.6 template).
    #[command(after_help = "Examples:\n  \
        bake fix old-template.json      # exit 1, saying why")]
    Fix(PassArgs),
    /// Refused (exit 1): bake builds JSON templates as they are.
    #[command(
        name = "hcl2_upgrade",
        after_help = "Examples:\n  \
        bake hcl2_upgrade template.json # exit 1, saying why"
    )]
    Hcl2Upgrade(PassArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        bake completions bash > ~/.local/share/bash-completion/completions/bake\n  \
        bake completions zsh > ~/.local/share/zsh/site-functions/_bake\n  \
        bake completions fish > ~/.config/fish/completions/bake.fish\n  \
        eval (bake completions elvish | slurp)                       # elvish, in rc.elv\n  \
        bake completions powershell | Out-String | Invoke-Expression  # PowerShell, in $PROFILE")]
    Completions(CompletionsArgs),
    /// Print bake's man page, or write every page into a directory.
    #[command(after_help = "Examples:\n  \
        bake man | man -l -\n  \
        bake man --dir ~/.local/share/man/man1")]
    Man(ManArgs),
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Options every command that reads a template takes.
#[derive(Debug, Args, Clone)]
pub struct VarOpts {
    /// Set a user variable (wins over every -var-file, whatever the order).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub vars: Vec<(String, String)>,
    /// Read user variables from a JSON file (later files win).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Run only these builds (names, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,
    /// Skip these builds (names, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub except: Vec<String>,
}

/// One template plus variables.
#[derive(Debug, Args, Clone)]
pub struct TemplateOpts {
    /// Variables and build selection.
    #[command(flatten)]
    pub vars: VarOpts,
    /// The template.
    pub template: PathBuf,
}

impl TemplateOpts {
    /// The template commands' arguments.
    pub fn template_args(&self) -> template::TemplateArgs {
        template_args(&self.vars, self.template.clone())
    }
}

/// The template commands' arguments for `template` with `v`.
pub fn template_args(v: &VarOpts, template: PathBuf) -> template::TemplateArgs {
    template::TemplateArgs {
        template,
        vars: v.vars.clone(),
        var_files: v.var_files.clone(),
        only: v.only.clone(),
        except: v.except.clone(),
    }
}

/// `bake inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Packer's machine-readable records (`template-variable,NAME,DEFAULT,REQUIRED`,
    /// `template-builder`, `template-provisioner`), each before the line that shows it.
    #[arg(long = "machine-readable")]
    pub machine_readable: bool,
    /// The template and its variables.
    #[command(flatten)]
    pub t: TemplateOpts,
}

/// `bake validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Only check the JSON and the template's structure.
    #[arg(long = "syntax-only")]
    pub syntax_only: bool,
    /// Accepted for Packer 1.9 pipelines, and does nothing: HCL2-only (undeclared variables in HCL2 var
    /// files; data sources), and bake reads JSON templates.
    #[arg(long = "no-warn-undeclared-var")]
    pub no_warn_undeclared_var: bool,
    /// Accepted for Packer 1.9 pipelines, and does nothing (HCL2 data sources).
    #[arg(long = "evaluate-datasources")]
    pub evaluate_datasources: bool,
    /// Accepted, as Packer accepts it on every command: validate's messages are the same either way.
    #[arg(long = "machine-readable")]
    pub machine_readable: bool,
    /// The template and its variables.
    #[command(flatten)]
    pub t: TemplateOpts,
}

/// `-on-error`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OnErrorArg {
    /// Clean up everything (default).
    Cleanup,
    /// Leave everything as it is; `bake cleanup` removes it later.
    Abort,
    /// Ask what to do.
    Ask,
    /// Run the error-cleanup-provisioner, then abort.
    RunCleanupProvisioner,
}

/// `bake build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Variables and build selection (apply to every template).
    #[command(flatten)]
    pub vars: VarOpts,
    /// Replace an existing AMI of the same name; start manifest files afresh.
    #[arg(long)]
    pub force: bool,
    /// What to do when a build fails.
    #[arg(long = "on-error", value_enum, default_value = "cleanup")]
    pub on_error: OnErrorArg,
    /// How many builds run at once (0: all).
    #[arg(long = "parallel-builds", default_value_t = 0, value_name = "N")]
    pub parallel_builds: usize,
    /// Packer 1.6's `-parallel=false`: one build at a time (as `-parallel-builds=1`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub parallel: bool,
    /// Accepted for Packer 1.9 pipelines, and does nothing: it concerns HCL2 var files, which bake does
    /// not read (a JSON var-file's undeclared variable is an error, as in Packer).
    #[arg(long = "warn-on-undeclared-var")]
    pub warn_on_undeclared_var: bool,
    /// Colour output (`-color=false` turns it off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub color: bool,
    /// Packer's machine-readable output.
    #[arg(long = "machine-readable")]
    pub machine_readable: bool,
    /// JSON lines output.
    #[arg(long)]
    pub json: bool,
    /// Prefix output lines with a timestamp.
    #[arg(long = "timestamp-ui")]
    pub timestamp_ui: bool,
    /// Builds one at a time and keep the temporary private key as `ec2_<build>.pem`.
    #[arg(long)]
    pub debug: bool,
    /// Print what would be created and run, calling only read-only AWS APIs.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// After success, write the AMI id to this SSM parameter (String, overwritten).
    #[arg(long = "publish-ssm", value_name = "PARAMETER")]
    pub publish_ssm: Option<String>,
    /// Several templates: pass each template's AMI (build region) to the next as this user variable.
    #[arg(long = "pass-ami", value_name = "VARIABLE")]
    pub pass_ami: Option<String>,
    /// An endpoint URL for every AWS service (like AWS_ENDPOINT_URL).
    #[arg(long = "endpoint-url", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Bake each template once per FILE (repeatable), in parallel: the common -var-file values, then
    /// FILE's over them, then -var over both. Build names get the file's stem: `amazon-ebs (web)`.
    #[arg(long = "each-var-file", value_name = "FILE")]
    pub each_var_files: Vec<PathBuf>,
    /// How the instance's SSH host key is checked: `pin` (default) trusts the key of the first connection
    /// that authenticates and refuses any other for the rest of the run; `console` accepts only a key whose
    /// fingerprint the instance printed to its console on first boot (cloud-init, read with
    /// GetConsoleOutput within ssh_timeout), and fails the build if none appears. Default: the
    /// BAKERY_HOST_KEY_CHECK environment variable, else `pin`.
    #[arg(long = "host-key-check", value_name = "MODE", value_parser = parse_host_key_check)]
    pub host_key_check: Option<HostKeyCheck>,
    /// The templates, run in order.
    #[arg(required = true, value_name = "TEMPLATE")]
    pub templates: Vec<PathBuf>,
}

/// `--host-key-check`'s value.
fn parse_host_key_check(s: &str) -> Result<HostKeyCheck, String> {
    HostKeyCheck::parse(s).ok_or_else(|| format!("expected pin or console, got {s:?}"))
}

/// Whether `arg` names a subcommand (clap's `help` included).
fn is_subcommand(arg: &str) -> bool {
    arg == "help"
        || Cli::command()
            .get_subcommands()
            .any(|c| c.get_name() == arg)
}

/// Rewrites Packer-style arguments for clap: `-flag` → `--flag` (single-dash long flags), and inserts
/// `build` when the first argument is not a subcommand (`bake t.json`, `bake -var x=1 t.json`).
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut it = args.into_iter();
    let mut out: Vec<String> = it.next().into_iter().collect();
    let mut rest: Vec<String> = Vec::new();
    let mut literal = false;
    for a in it {
        if literal {
            rest.push(a);
            continue;
        }
        if a == "--" {
            literal = true;
            rest.push(a);
            continue;
        }
        let single_dash_long = a.len() > 2
            && a.starts_with('-')
            && !a.starts_with("--")
            && a[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
        rest.push(if single_dash_long { format!("-{a}") } else { a });
    }
    // Packer's global `-machine-readable` may come before the subcommand (`packer -machine-readable
    // version`): it moves after it, where bake's subcommands take it.
    if rest.len() > 1 && rest[0] == "--machine-readable" && is_subcommand(&rest[1]) {
        rest.swap(0, 1);
    }
    let first = rest.first().map(String::as_str).unwrap_or("");
    let is_meta = matches!(first, "-h" | "--help" | "-V" | "--version");
    if !first.is_empty() && !is_meta && !is_subcommand(first) {
        out.push("build".into());
    }
    out.extend(rest);
    out
}

/// The `bake` binary's `main`.
pub fn main() -> std::process::ExitCode {
    bakery_core::log::init_from_env("bake", &packer_compat::log_banner());
    let args = std::env::args().collect();
    bakery_core::frontend::runtime::block_on(
        "bake",
        async move { run(args).await.clamp(0, 255) as u8 },
    )
}

/// Runs the `bake` command line; returns the process exit code.
pub async fn run(args: Vec<String>) -> i32 {
    let args = normalize_args(args);
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let text = if e.use_stderr() {
                usage::render(&e, usage::colour(std::io::stderr().is_terminal()))
            } else {
                usage::render(&e, usage::colour(std::io::stdout().is_terminal()))
            };
            // Not print!: a reader that stops early (`bake --help | head -1`) must not make it panic.
            return if e.use_stderr() {
                let _ = std::io::stderr().write_all(text.as_bytes());
                1
            } else {
                let _ = std::io::stdout().write_all(text.as_bytes());
                0
            };
        }
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    match cli.command {
        Command::Validate(v) => template::validate(
            &v.t.template_args(),
            v.syntax_only,
            &mut stdout.lock(),
            &mut stderr.lock(),
        ),
        Command::Inspect(i) => template::inspect(
            &i.t.template_args(),
            if i.machine_readable {
                template::InspectFormat::MachineReadable
            } else {
                template::InspectFormat::Text
            },
            &mut stdout.lock(),
            &mut stderr.lock(),
        ),
        Command::Console(t) => {
            let stdin = std::io::stdin();
            template::console(
                &t.template_args(),
                &mut stdin.lock(),
                &mut stdout.lock(),
                &mut stderr.lock(),
            )
        }
        Command::Build(b) => build::run(b).await,
        Command::Cleanup(c) => cleanup::run(c).await,
        Command::Version(v) => packer_compat::version(&v, &mut stdout.lock()),
        Command::Init(a) => packer_compat::init(&a, &mut stderr.lock()),
        Command::Fmt(a) => packer_compat::fmt(&a, &mut stderr.lock()),
        Command::Plugins(a) => packer_compat::plugins(&a, &mut stdout.lock(), &mut stderr.lock()),
        Command::Fix(_) => packer_compat::refuse("fix", &mut stderr.lock()),
        Command::Hcl2Upgrade(_) => packer_compat::refuse("hcl2_upgrade", &mut stderr.lock()),
        Command::Completions(a) => generated(generate::Request::Completions(a)),
        Command::Man(a) => generated(generate::Request::Man(a)),
    }
}

/// `bake completions` and `bake man`, on stdout.
fn generated(request: generate::Request) -> i32 {
    let code = request.answer(
        Cli::command(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    i32::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(a: &[&str]) -> Vec<String> {
        normalize_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn packer_single_dash_flags_become_long_flags() {
        assert_eq!(
            n(&[
                "bake",
                "-var",
                "a=b",
                "-var-file=f.json",
                "-only=x,y",
                "-color=false",
                "t.json"
            ]),
            [
                "bake",
                "build",
                "--var",
                "a=b",
                "--var-file=f.json",
                "--only=x,y",
                "--color=false",
                "t.json"
            ]
        );
        assert_eq!(
            n(&["bake", "validate", "-syntax-only", "t.json"]),
            ["bake", "validate", "--syntax-only", "t.json"]
        );
        assert_eq!(n(&["bake", "t.json"]), ["bake", "build", "t.json"]);
        assert_eq!(n(&["bake", "--help"]), ["bake", "--help"]);
        assert_eq!(
            n(&["bake", "completions", "bash"]),
            ["bake", "completions", "bash"]
        );
        assert_eq!(n(&["bake", "man"]), ["bake", "man"]);
        assert_eq!(
            n(&["bake", "build", "--", "-weird.json"]),
            ["bake", "build", "--", "-weird.json"]
        );
    }

    #[test]
    fn the_cli_parses_packer_style_builds() {
        let cli = Cli::try_parse_from(n(&[
            "bake",
            "-var",
            "SOURCE_ID=ami-1",
            "-only",
            "a,b",
            "-on-error=abort",
            "-color=false",
            "-force",
            "x.json",
            "y.json",
        ]))
        .unwrap();
        let Command::Build(b) = cli.command else {
            panic!("not build")
        };
        assert_eq!(
            b.vars.vars,
            vec![("SOURCE_ID".to_string(), "ami-1".to_string())]
        );
        assert_eq!(b.vars.only, ["a", "b"]);
        assert_eq!(b.on_error, OnErrorArg::Abort);
        assert!(!b.color);
        assert!(b.force);
        assert_eq!(b.templates.len(), 2);
    }

    #[test]
    fn host_key_check_takes_pin_or_console() {
        let parse = |a: &[&str]| match Cli::try_parse_from(n(a)).map(|c| c.command) {
            Ok(Command::Build(b)) => Ok(b.host_key_check),
            Ok(_) => panic!("not build"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(parse(&["bake", "t.json"]), Ok(None));
        assert_eq!(
            parse(&["bake", "--host-key-check=console", "t.json"]),
            Ok(Some(HostKeyCheck::Console))
        );
        assert_eq!(
            parse(&["bake", "build", "-host-key-check", "pin", "t.json"]),
            Ok(Some(HostKeyCheck::Pin))
        );
        let err = parse(&["bake", "--host-key-check=tofu", "t.json"]).unwrap_err();
        assert!(err.contains("expected pin or console"), "{err}");
    }

    #[test]
    fn packer_1_6_and_1_9_flags_parse() {
        let cli = Cli::try_parse_from(n(&[
            "bake",
            "build",
            "-parallel=false",
            "-warn-on-undeclared-var",
            "-timestamp-ui",
            "-var-file=a.json",
            "-var-file",
            "b.json",
            "x.json",
        ]))
        .unwrap();
        let Command::Build(b) = cli.command else {
            panic!("not build")
        };
        assert!(!b.parallel && b.timestamp_ui);
        assert_eq!(
            b.vars.var_files,
            [PathBuf::from("a.json"), PathBuf::from("b.json")]
        );
        let cli = Cli::try_parse_from(n(&[
            "bake",
            "validate",
            "-no-warn-undeclared-var",
            "-evaluate-datasources",
            "-machine-readable",
            "-syntax-only",
            "x.json",
        ]))
        .unwrap();
        assert!(matches!(cli.command, Command::Validate(v) if v.syntax_only));
        let cli = Cli::try_parse_from(n(&["bake", "-machine-readable", "version"])).unwrap();
        assert!(matches!(cli.command, Command::Version(v) if v.machine_readable));
        let cli = Cli::try_parse_from(n(&["bake", "fmt", "-check", "."])).unwrap();
        assert!(matches!(cli.command, Command::Fmt(a) if a.args == ["--check", "."]));
    }

    #[test]
    fn a_bad_var_is_a_usage_error() {
        assert!(Cli::try_parse_from(n(&["bake", "-var", "novalue", "t.json"])).is_err());
    }
}
