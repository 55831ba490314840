//! The `bake` binary's template commands and `--dry-run`, as a user runs them; both binaries' help,
//! completions and man pages, and their colours.

use crate::common;

use clap::CommandFactory;
use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

fn bake(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bake"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_seed_templates_validate_and_carnivore_needs_its_source() {
    let ok = bake(&["validate", "manifests/primal.json"]);
    assert!(ok.status.success(), "{}", common::text(&ok));
    let with = bake(&[
        "validate",
        "-var",
        "SOURCE_ID=ami-12345678",
        "manifests/carnivore.json",
    ]);
    assert!(with.status.success(), "{}", common::text(&with));
    let without = bake(&["validate", "manifests/carnivore.json"]);
    assert_eq!(without.status.code(), Some(1));
    let err = String::from_utf8_lossy(&without.stderr);
    assert!(
        err.contains("manifests/carnivore.json:4:5: required variable not set: SOURCE_ID"),
        "{err}"
    );
}

#[test]
fn json_errors_name_file_line_and_column_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    std::fs::write(
        &p,
        "{\n  \"builders\": [{\"type\": \"amazon-ebs\",\n  \"ami_name\": \"x\" \"y\"}]\n}\n",
    )
    .unwrap();
    let out = bake(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json:3:19: error parsing JSON"), "{err}");
    assert!(
        err.contains("                          ^"),
        "caret under the column: {err}"
    );
}

#[test]
fn every_error_at_once_and_a_usage_error_is_exit_1() {
    let out = bake(&[
        "build",
        "manifests/carnivore.json",
        "manifests/primal.json",
        "-var",
        "INSTANCE_TYPE=",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("required variable not set: SOURCE_ID"),
        "{err}"
    );
    let usage = bake(&["-var", "novalue", "manifests/primal.json"]);
    assert_eq!(usage.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("expected KEY=VALUE"));
}

#[test]
fn dry_run_creates_nothing_and_only_reads() {
    let lab = bakery_lab::Lab::shared();
    let _serial = common::SERIAL.blocking_lock();
    let mut c = Command::new(env!("CARGO_BIN_EXE_bake"));
    for (k, v) in lab.aws_env() {
        c.env(k, v);
    }
    lab.reset_request_counts();
    let vars = lab.var_file();
    let source = format!("SOURCE_AMI={}", lab.source_ami());
    let out = c
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--dry-run",
            "-var-file",
            vars.to_str().unwrap(),
            "-var",
            &source,
            "-pass-ami",
            "SOURCE_ID",
        ])
        .args(["manifests/primal.json", "manifests/carnivore.json"])
        .output()
        .unwrap();
    let t = common::text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("would create AMI"), "{t}");
    assert!(
        t.contains("provisioner 2: shell: provisioners/primal.sh"),
        "{t}"
    );
    // The plan is derived from the build's steps: every resource the run would create, and the second
    // template's source is the AMI the first builds.
    for step_line in [
        "temporary key pair",
        "temporary security group",
        "would launch in ",
        "source AMI: <AMI of the previous template>",
    ] {
        assert!(t.contains(step_line), "no {step_line:?} in {t}");
    }
    let counts = lab.request_counts();
    assert!(!counts.is_empty(), "the dry run looked the source AMI up");
    for action in counts.keys() {
        assert!(
            action.starts_with("Describe") || action.starts_with("Get"),
            "dry run called {action}: {counts:?}"
        );
    }
}

/// The two binaries, their paths and their subcommands as clap defines them (clap's `help` aside).
fn binaries() -> [(&'static str, &'static str, Vec<String>); 2] {
    let subcommands = |cmd: clap::Command| -> Vec<String> {
        cmd.get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect()
    };
    [
        (
            "bake",
            env!("CARGO_BIN_EXE_bake"),
            subcommands(bakery::cli::bake::Cli::command()),
        ),
        (
            "rollout",
            env!("CARGO_BIN_EXE_rollout"),
            subcommands(bakery::cli::rollout::Cli::command()),
        ),
    ]
}

/// `path args` with stdout and stderr piped and no colour variable set but those in `env`.
fn piped(path: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(path);
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn words(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .collect()
}

#[test]
fn the_subcommands_are_the_documented_ones() {
    let [(_, _, bake), (_, _, rollout)] = binaries();
    assert_eq!(
        bake,
        [
            "build",
            "validate",
            "inspect",
            "console",
            "cleanup",
            "version",
            "init",
            "fmt",
            "plugins",
            "fix",
            "hcl2_upgrade",
            "completions",
            "man"
        ]
    );
    assert_eq!(
        rollout,
        [
            "setup",
            "plan",
            "deploy",
            "undo",
            "gc",
            "abandon",
            "completions",
            "man"
        ]
    );
}

#[test]
fn completion_scripts_name_every_subcommand() {
    for (name, path, subcommands) in binaries() {
        let out = piped(path, &["completions", "bash"], &[]);
        assert!(out.status.success(), "{}", common::text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(&format!("complete -F _{name}")), "{script}");
        let words = words(&script);
        for sub in &subcommands {
            assert!(
                words.contains(sub.as_str()),
                "{name}: no {sub} in\n{script}"
            );
        }
        for shell in ["zsh", "fish", "elvish", "powershell"] {
            let out = piped(path, &["completions", shell], &[]);
            assert!(
                out.status.success(),
                "{name} {shell}: {}",
                common::text(&out)
            );
            let script = String::from_utf8(out.stdout).unwrap();
            assert!(script.contains("completions"), "{name} {shell}: {script}");
        }
        let bad = piped(path, &["completions", "tcsh"], &[]);
        assert!(!bad.status.success());
    }
}

#[test]
fn man_pages_are_roff_and_name_every_subcommand() {
    for (name, path, subcommands) in binaries() {
        let out = piped(path, &["man"], &[]);
        assert!(out.status.success(), "{}", common::text(&out));
        let page = String::from_utf8(out.stdout).unwrap();
        assert!(page.starts_with('.'), "not roff: {page}");
        assert!(page.contains(&format!(".TH {name} 1")), "{page}");
        assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
        for sub in &subcommands {
            // roff writes a hyphen as `\-`.
            assert!(
                page.contains(&format!("{name}\\-{sub}(1)")),
                "{name}: no {sub} in\n{page}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let man1 = dir.path().join("man1");
        let out = piped(path, &["man", "--dir", man1.to_str().unwrap()], &[]);
        assert!(out.status.success(), "{}", common::text(&out));
        let mut pages: Vec<String> = std::fs::read_dir(&man1)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        pages.sort();
        let mut expected: Vec<String> = subcommands
            .iter()
            .map(|s| format!("{name}-{s}.1"))
            .chain([format!("{name}.1")])
            .collect();
        expected.sort();
        assert_eq!(pages, expected);
        let sub_page = std::fs::read_to_string(man1.join(format!("{name}-man.1"))).unwrap();
        assert!(
            sub_page.contains(&format!(".TH {name}-man 1")),
            "{sub_page}"
        );
    }
}

#[test]
fn every_help_shows_an_example() {
    for (name, path, subcommands) in binaries() {
        let top = (vec![], format!("  {name} "));
        let subs = subcommands
            .iter()
            .map(|s| (vec![s.as_str()], format!("{name} {s}")));
        for (args, example) in std::iter::once(top).chain(subs) {
            for help in ["--help", "-h"] {
                let args: Vec<&str> = args.iter().copied().chain([help]).collect();
                let out = piped(path, &args, &[]);
                assert!(
                    out.status.success(),
                    "{name} {args:?}: {}",
                    common::text(&out)
                );
                let text = String::from_utf8(out.stdout).unwrap();
                let examples = text.split_once("\nExamples:\n").map(|(_, e)| e);
                assert!(
                    examples.is_some_and(|e| e.contains(&example)),
                    "{name} {args:?}: no example with {example:?} in\n{text}"
                );
            }
        }
    }
}

/// No ESC byte in what clap prints (help, a usage error) when stdout and stderr are pipes, whether
/// NO_COLOR is set or not, and even with CLICOLOR_FORCE (colour is for terminals only).
#[test]
fn help_through_a_pipe_has_no_colour() {
    let envs: [&[(&str, &str)]; 3] = [&[], &[("NO_COLOR", "1")], &[("CLICOLOR_FORCE", "1")]];
    for (name, path, subcommands) in binaries() {
        let mut cases = vec![vec!["--help"], vec!["--version"], vec!["--frobnicate"]];
        cases.extend(subcommands.iter().map(|s| vec![s.as_str(), "--help"]));
        cases.push(vec!["help", subcommands[0].as_str()]);
        for env in envs {
            for args in &cases {
                let out = piped(path, args, env);
                let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
                assert!(!all.is_empty(), "{name} {args:?}");
                assert!(
                    !all.contains(&0x1b),
                    "{name} {args:?} with {env:?}: {}",
                    common::text(&out)
                );
            }
        }
    }
}

/// On a terminal (util-linux's `script` gives the command one), clap's help is coloured, unless
/// NO_COLOR is set.
#[test]
fn help_on_a_terminal_is_coloured_unless_no_color() {
    for (name, path, _) in binaries() {
        for (no_color, coloured) in [(None, true), (Some("1"), false)] {
            let mut c = Command::new("script");
            c.args([
                "-qec",
                &format!("'{path}' gc --help; '{path}' --help"),
                "/dev/null",
            ])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .stdin(Stdio::null());
            if let Some(v) = no_color {
                c.env("NO_COLOR", v);
            }
            let out = c.output().expect("util-linux's script");
            assert!(out.stdout.len() > 100, "{name}: {}", common::text(&out));
            assert_eq!(
                out.stdout.contains(&0x1b),
                coloured,
                "{name} NO_COLOR={no_color:?}: {}",
                common::text(&out)
            );
        }
    }
}
