//! `bake build`'s front end: lifts the flags into the builder's [`BuildConfig`] once, sets up the output
//! and the interrupts, asks on the terminal for `-on-error=ask`, and calls [`bakery_builder::run`].

use super::{BuildArgs, OnErrorArg};
use bakery_builder::amazon_ebs::console_keys::{HOST_KEY_CHECK_ENV, HostKeyCheck};
use bakery_builder::run::{self, BuildConfig, ConfigError, Outcome, VarOptions};
use bakery_core::frontend::interrupt::{self, Messages, Tokens};
use bakery_core::frontend::terminal::{Output, stdout_is_terminal};
use bakery_core::pipeline::{AskAnswer, AskFn, OnError, StepError};
use bakery_core::ui::{Mode, Ui};
use tokio_util::sync::CancellationToken;

/// What bake says on each interrupt.
const INTERRUPT_MESSAGES: Messages = Messages {
    target: "bake",
    first: "Interrupt received. Cleaning up... (interrupt again to stop cleanup and leave resources)",
    second: "Second interrupt: stopping cleanup.",
};

/// `bake build`'s flags as the builder's configuration, or every combination of them that makes no sense.
pub fn config(args: &BuildArgs) -> Result<BuildConfig, Vec<ConfigError>> {
    config_with_env(args, std::env::var(HOST_KEY_CHECK_ENV).ok())
}

/// [`config`] with `BAKERY_HOST_KEY_CHECK`'s value (the flag wins over it; empty means unset).
fn config_with_env(
    args: &BuildArgs,
    host_key_check_env: Option<String>,
) -> Result<BuildConfig, Vec<ConfigError>> {
    let host_key_check = match (args.host_key_check, host_key_check_env) {
        (Some(flag), _) => flag,
        (None, Some(v)) if !v.trim().is_empty() => {
            HostKeyCheck::parse(&v).ok_or_else(|| vec![ConfigError::HostKeyCheckEnv(v)])?
        }
        (None, _) => HostKeyCheck::Pin,
    };
    let ssh_override =
        run::SshOverride::from_env().map_err(|e| vec![ConfigError::SshOverrideEnv(e)])?;
    BuildConfig {
        templates: args.templates.clone(),
        vars: VarOptions {
            vars: args.vars.vars.clone(),
            var_files: args.vars.var_files.clone(),
            only: args.vars.only.clone(),
            except: args.vars.except.clone(),
        },
        force: args.force,
        on_error: match args.on_error {
            OnErrorArg::Cleanup => OnError::Cleanup,
            OnErrorArg::Abort => OnError::Abort,
            OnErrorArg::Ask => OnError::Ask,
            OnErrorArg::RunCleanupProvisioner => OnError::RunCleanupProvisioner,
        },
        parallel_builds: if args.parallel {
            args.parallel_builds
        } else {
            1
        },
        debug: args.debug,
        dry_run: args.dry_run,
        publish_ssm: args.publish_ssm.clone(),
        pass_ami: args.pass_ami.clone(),
        endpoint_url: args.endpoint_url.clone(),
        each_var_files: args.each_var_files.clone(),
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        host_key_check,
        ssh_override,
    }
    .validate()
}

/// The output the flags ask for, on this process's stdout.
fn output(args: &BuildArgs) -> Output {
    let mode = if args.machine_readable {
        Mode::MachineReadable
    } else if args.json {
        Mode::Json
    } else {
        Mode::Human
    };
    Output {
        mode,
        color: args.color,
        timestamps: args.timestamp_ui,
        tty: stdout_is_terminal(),
    }
}

/// `-on-error=ask`: what to do about a failed step, asked on the terminal (the error masked like every
/// other output).
fn ask(ui: &Ui, step: &str, err: &StepError) -> AskAnswer {
    use std::io::BufRead;
    eprintln!(
        "{}",
        ui.mask(&format!(
            "Step \"{step}\" failed: {err}\n[c] Clean up and exit, [a] abort without cleanup, or [r] retry step (build may fail even if retry succeeds)?"
        ))
    );
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    match line.trim() {
        "a" | "A" => AskAnswer::Abort,
        "r" | "R" => AskAnswer::Retry,
        _ => AskAnswer::Cleanup,
    }
}

fn exit_code(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Succeeded => 0,
        Outcome::Failed => 1,
    }
}

/// Runs `bake build`; returns the exit code.
pub async fn run(args: BuildArgs) -> i32 {
    let config = match config(&args) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("bake: {e}");
            }
            return 1;
        }
    };
    // Every template (with every var-file) is checked before anything is created.
    let Ok(checked) = run::check(&config) else {
        return 1;
    };
    let ui = Ui::stdout(output(&args).ui_options(checked.secrets.clone()));
    if config.dry_run {
        return exit_code(run::dry_run(&config, &checked, &ui).await);
    }
    let tokens = Tokens {
        cancel: CancellationToken::new(),
        cancel_cleanup: CancellationToken::new(),
    };
    interrupt::watch(ui.clone(), INTERRUPT_MESSAGES, tokens.clone());
    let asking_ui = ui.clone();
    let ask = (config.on_error == OnError::Ask)
        .then(|| Box::new(move |step: &str, err: &StepError| ask(&asking_ui, step, err)) as AskFn);
    match run::build(&config, &checked, &ui, tokens, ask).await {
        Ok(outcome) => exit_code(outcome),
        Err(e) => {
            eprintln!("bake: {}", ui.mask(&e.to_string()));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn build_args(a: &[&str]) -> BuildArgs {
        let args = super::super::bake::normalize_args(a.iter().map(|s| s.to_string()));
        match super::super::bake::Cli::try_parse_from(args)
            .unwrap()
            .command
        {
            super::super::bake::Command::Build(b) => b,
            _ => panic!("not build"),
        }
    }

    /// `--host-key-check` wins over `BAKERY_HOST_KEY_CHECK`, which wins over the default (`pin`); a bad
    /// value in the variable is refused, not ignored (it asks for a security check).
    #[test]
    fn host_key_check_flag_then_environment_then_pin() {
        let check = |a: &[&str], env: Option<&str>| {
            config_with_env(&build_args(a), env.map(str::to_string)).map(|c| c.host_key_check)
        };
        assert_eq!(check(&["bake", "t.json"], None), Ok(HostKeyCheck::Pin));
        assert_eq!(check(&["bake", "t.json"], Some("")), Ok(HostKeyCheck::Pin));
        assert_eq!(
            check(&["bake", "t.json"], Some("console")),
            Ok(HostKeyCheck::Console)
        );
        assert_eq!(
            check(&["bake", "-host-key-check=pin", "t.json"], Some("console")),
            Ok(HostKeyCheck::Pin)
        );
        assert_eq!(
            check(&["bake", "-host-key-check=console", "t.json"], None),
            Ok(HostKeyCheck::Console)
        );
        let errors = check(&["bake", "t.json"], Some("yes")).unwrap_err();
        assert_eq!(errors, [ConfigError::HostKeyCheckEnv("yes".into())]);
        assert_eq!(
            errors[0].to_string(),
            "BAKERY_HOST_KEY_CHECK=\"yes\": expected pin or console"
        );
    }
}
