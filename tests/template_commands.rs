//! The `validate`, `inspect` and `console` back-ends: exit codes, what goes
//! to stdout and stderr, masking.

use bakery::cli::template::TemplateArgs;
use bakery::cli::template::{InspectFormat, console, inspect, validate};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn primal_args() -> TemplateArgs {
    TemplateArgs {
        template: fixture("primal.json"),
        vars: vec![
            ("SOURCE_AMI".into(), "ami-0abc".into()),
            ("VPC_ID".into(), "vpc-1".into()),
            ("SUBNET_ID".into(), "subnet-1".into()),
        ],
        ..Default::default()
    }
}

fn run_validate(args: &TemplateArgs, syntax_only: bool) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = validate(args, syntax_only, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn validate_valid_template_exits_zero() {
    let (code, out, err) = run_validate(&primal_args(), false);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "The configuration is valid.\n");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn validate_prints_every_error_with_position_and_exits_one() {
    let args = TemplateArgs {
        template: fixture("primal.json"),
        ..Default::default()
    };
    let (code, out, err) = run_validate(&args, false);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    let path = fixture("primal.json").display().to_string();
    for (line, name) in [(3, "SOURCE_AMI"), (4, "VPC_ID"), (5, "SUBNET_ID")] {
        assert!(
            err.contains(&format!(
                "{path}:{line}:5: required variable not set: {name}"
            )),
            "{err}"
        );
    }
    assert!(
        err.contains("    3 |     \"SOURCE_AMI\": null,\n            ^"),
        "{err}"
    );
    assert!(err.ends_with("3 errors found\n"), "{err}");
}

#[test]
fn validate_syntax_only_skips_variables() {
    let args = TemplateArgs {
        template: fixture("primal.json"),
        ..Default::default()
    };
    let (code, out, _) = run_validate(&args, true);
    assert_eq!(code, 0);
    assert_eq!(out, "Syntax-only check passed. Everything looks okay.\n");
    let args = TemplateArgs {
        template: fixture("syntax-error.json"),
        ..Default::default()
    };
    let (code, _, err) = run_validate(&args, true);
    assert_eq!(code, 1);
    assert!(
        err.contains("syntax-error.json:5:6: error parsing JSON"),
        "{err}"
    );
}

#[test]
fn validate_missing_file_is_an_error_not_a_panic() {
    let args = TemplateArgs {
        template: fixture("does-not-exist.json"),
        ..Default::default()
    };
    let (code, _, err) = run_validate(&args, false);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot read template: no such file or directory"),
        "{err}"
    );
}

#[test]
fn validate_warnings_go_to_stderr_and_still_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    std::fs::write(
        &path,
        r#"{"builders":[{"type":"amazon-ebs","region":"us-east-1","source_ami":"ami-1","instance_type":"t3.micro","ssh_username":"u","ami_name":"abc","spot_price_auto_product":"Linux/UNIX"}]}"#,
    )
    .unwrap();
    let (code, out, err) = run_validate(
        &TemplateArgs {
            template: path,
            ..Default::default()
        },
        false,
    );
    assert_eq!(code, 0);
    assert_eq!(out, "The configuration is valid.\n");
    assert!(
        err.contains("warning: builder 1 (amazon-ebs): spot_price_auto_product is deprecated"),
        "{err}"
    );
}

#[test]
fn inspect_lists_variables_builds_provisioners_post_processors() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = inspect(
        &TemplateArgs {
            template: fixture("primal.json"),
            ..Default::default()
        },
        InspectFormat::Text,
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0);
    let out = String::from_utf8(out).unwrap();
    let expected = "Required variables:\n\n  SOURCE_AMI\n  SUBNET_ID\n  VPC_ID\n\n\
        Optional variables and their defaults:\n\n  INSTANCE_TYPE = t2.micro\n  NODE_VERSION  = 4.2.1\n  aws_secret    = <sensitive>\n";
    assert!(out.contains(expected), "{out}");
    assert!(!out.contains("s3cr3t-value"));
    assert!(out.contains("Builders:\n\n  amazon-ebs\n"), "{out}");
    assert!(out.contains("Provisioners:\n\n  file\n  shell\n"), "{out}");
    assert!(out.contains("Post-processors:\n\n  1: manifest\n"), "{out}");

    let (mut out, mut err) = (Vec::new(), Vec::new());
    inspect(
        &TemplateArgs {
            template: fixture("multi.json"),
            ..Default::default()
        },
        InspectFormat::Text,
        &mut out,
        &mut err,
    );
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("Builders:\n\n  app-{{user `env`}} (amazon-ebs)\n  docker\n  worker             (amazon-ebs)\n"),
        "{out}"
    );
    assert!(
        out.contains("  2: chain-a (manifest) -> chain-b (shell-local)\n"),
        "{out}"
    );
}

/// The typed records of `inspect -machine-readable` output (`type,data…`, timestamps and `ui` lines
/// left out), required variables sorted.
pub(crate) fn records(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.splitn(3, ',').nth(2).unwrap_or_default().to_string())
        .filter(|r| !r.starts_with("ui,"))
        .collect::<Vec<_>>()
        .sorted_required()
}

/// Records in a comparable order: Packer 1.6.6 lists required variables in Go's map order (it varies from
/// run to run), bake sorts them; both list them first.
trait SortedRequired {
    fn sorted_required(self) -> Vec<String>;
}

impl SortedRequired for Vec<String> {
    fn sorted_required(mut self) -> Vec<String> {
        let n = self
            .iter()
            .take_while(|r| r.starts_with("template-variable,") && r.ends_with(",1"))
            .count();
        self[..n].sort();
        self
    }
}

/// Packer 1.6.6 (the lab's peer) and bake write the same `template-variable`, `template-builder` and
/// `template-provisioner` records for the same template, in the same order: amazon-eks-ami's Makefile
/// reads the variables' names from them.
#[test]
fn machine_readable_inspect_writes_packers_records() {
    let packer = crate::common::packer_binary();
    for name in ["primal.json", "multi.json"] {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = inspect(
            &TemplateArgs {
                template: fixture(name),
                ..Default::default()
            },
            InspectFormat::MachineReadable,
            &mut out,
            &mut err,
        );
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
        let ours = String::from_utf8(out).unwrap();
        let theirs = std::process::Command::new(&packer)
            .args(["inspect", "-machine-readable"])
            .arg(fixture(name))
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("packer runs");
        assert!(theirs.status.success(), "{theirs:?}");
        let theirs = String::from_utf8(theirs.stdout).unwrap();
        assert_eq!(
            records(&ours),
            records(&theirs),
            "{name}:\n{ours}\n---\n{theirs}"
        );
        assert!(
            records(&ours)
                .iter()
                .any(|r| r.starts_with("template-variable,"))
        );
        // Every line is `timestamp,target,type,…` with commas escaped inside the data.
        for l in ours.lines() {
            let f: Vec<&str> = l.splitn(4, ',').collect();
            assert!(
                f.len() >= 3 && f[0].parse::<u64>().is_ok() && f[1].is_empty(),
                "{l}"
            );
        }
    }
}

#[test]
fn console_renders_each_line_and_masks_secrets() {
    let input = "{{user `NODE_VERSION`}}\n\n{{ user `aws_secret` }} and {{ upper `x` }}\n{{ env `HOME` }}\n{{ split `a,b` `,` 1 }}{{ nope }}\nvariables\nexit\n{{ user `NODE_VERSION` }}\n";
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = console(&primal_args(), &mut input.as_bytes(), &mut out, &mut err);
    assert_eq!(code, 0);
    let out = String::from_utf8(out).unwrap();
    let err = String::from_utf8(err).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "4.2.1");
    assert_eq!(lines[1], "<sensitive> and X");
    assert!(lines.contains(&"aws_secret: <sensitive>"), "{out}");
    assert!(lines.contains(&"NODE_VERSION: 4.2.1"), "{out}");
    // After `exit` nothing more is read.
    assert_eq!(out.matches("4.2.1").count(), 2, "{out}");
    assert!(err.contains("Interpolation error: template: root:1:3: executing \"root\" at <env `HOME`>: error calling env: env vars are not allowed here"), "{err}");
    assert!(err.contains("function \"nope\" not defined"), "{err}");
    assert!(!out.contains("s3cr3t-value") && !err.contains("s3cr3t-value"));
}

#[test]
fn console_renders_variable_values_that_are_templates_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    std::fs::write(
        &path,
        r#"{"variables":{"t":"{{ .HTTPIP }}:{{user `p`}}","p":"8080"},"builders":[{"type":"amazon-ebs"}]}"#,
    )
    .unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = TemplateArgs {
        template: path,
        ..Default::default()
    };
    let code = console(
        &args,
        &mut "{{ user `t` }}\n".as_bytes(),
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    // Packer's console renders until the output stops changing.
    assert_eq!(String::from_utf8(out).unwrap(), "<no value>:8080\n");
}

#[test]
fn console_with_an_invalid_template_exits_one() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = TemplateArgs {
        template: fixture("primal.json"),
        ..Default::default()
    };
    assert_eq!(console(&args, &mut "x\n".as_bytes(), &mut out, &mut err), 1);
    assert!(
        String::from_utf8(err)
            .unwrap()
            .contains("required variable not set")
    );
}
