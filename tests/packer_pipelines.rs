//! `PACKER_BINARY=bake` in real pipelines (docs/packer-pipelines.md): the upstream trees in
//! `../shared/corpus/repos/` run their own Makefiles with bake in Packer's place. Nothing here provisions:
//! `make validate` and the Packer subcommands the Makefiles call reach no instance and no AWS API.

use crate::common;
use std::path::PathBuf;
use std::process::Command;

/// The shared corpus of real templates: `$BAKERY_CORPUS`, else `../shared/corpus` beside the repository
/// (where the development machines keep it). Panics with where it looked: a test never skips.
fn corpus() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates: Vec<PathBuf> = std::env::var_os("BAKERY_CORPUS")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            repo.join("../shared/corpus"),
            PathBuf::from("/work/shared/corpus"),
        ])
        .collect();
    candidates
        .iter()
        .find(|c| c.join("repos").is_dir())
        .cloned()
        .unwrap_or_else(|| {
            panic!("the template corpus is missing (looked in {candidates:?}); set BAKERY_CORPUS to its directory")
        })
}

fn eks_ami() -> PathBuf {
    corpus().join("repos/awslabs__amazon-eks-ami@81fec2e")
}

fn bake() -> &'static str {
    env!("CARGO_BIN_EXE_bake")
}

/// amazon-eks-ami's `make validate` with `PACKER_BINARY=bake`: the Makefile reads the template's
/// variables from `bake inspect -machine-readable` (its `template-variable` records), passes the ones
/// set on make's command line as `-var`, layers the var-files, and `bake validate` accepts the result.
#[test]
fn amazon_eks_ami_make_validate_runs_with_bake() {
    let out = Command::new("make")
        .arg("-C")
        .arg(eks_ami())
        .arg("validate")
        .arg(format!("PACKER_BINARY={}", bake()))
        .args([
            "os_distro=al2023",
            "k8s=1.33",
            "kubernetes_version=1.33.0",
            "kubernetes_build_date=2025-05-01",
        ])
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("make runs (Debian's make, installed with the Rust toolchain)");
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    // The variables made it through `inspect -machine-readable`: the Makefile passes only variables the
    // template declares, and it found these in bake's records.
    for var in [
        "-var kubernetes_version='1.33.0'",
        "-var kubernetes_build_date='2025-05-01'",
        "-var arch='x86_64'",
        "-var-file=templates/al2023/variables-1.33.json",
    ] {
        assert!(text.contains(var), "{var} missing:\n{text}");
    }
    assert!(text.contains("The configuration is valid."), "{text}");
}

/// Packer 1.6.6 and bake write the same typed records for amazon-eks-ami's template (variables with their
/// defaults and required flags, builders, provisioners), in the same order (required variables sorted:
/// Packer 1.6.6 lists them in Go's map order).
#[test]
fn amazon_eks_ami_inspect_records_match_packers() {
    let template = eks_ami().join("templates/al2023/template.json");
    let records = |bin: &std::path::Path| {
        let out = Command::new(bin)
            .args(["inspect", "-machine-readable"])
            .arg(&template)
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", common::text(&out));
        crate::template_commands::records(&String::from_utf8(out.stdout).unwrap())
    };
    let ours = records(std::path::Path::new(bake()));
    let theirs = records(&common::packer_binary());
    assert!(ours.len() > 20, "{ours:?}");
    assert_eq!(ours, theirs);
}

/// What pipelines call besides build/validate/inspect: `version` leads with a line Packer's version
/// parsers accept, and `init` (image-builder runs `packer init packer/config.pkr.hcl` before JSON builds),
/// `fmt` on JSON and `plugins installed` are harmless; `fix` is refused with a reason.
#[test]
fn packer_subcommands_pipelines_call_are_answered() {
    let run = |args: &[&str]| {
        let out = Command::new(bake())
            .args(args)
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("bake runs");
        (out.status.code(), common::text(&out))
    };
    let (code, text) = run(&["version"]);
    assert_eq!(code, Some(0));
    let first = text.lines().next().unwrap();
    let v = first.strip_prefix("Packer v").expect(first);
    assert!(
        v.split('.').count() == 3 && v.split('.').all(|p| p.parse::<u32>().is_ok()),
        "{first}"
    );
    let (code, text) = run(&["-machine-readable", "version"]);
    assert_eq!(code, Some(0));
    assert!(text.contains(&format!(",,version,{v}\n")), "{text}");
    assert_eq!(run(&["init", "packer/config.pkr.hcl"]).0, Some(0));
    assert_eq!(run(&["fmt", "-check", "template.json"]).0, Some(0));
    let (code, text) = run(&["plugins", "installed"]);
    assert_eq!(
        (code, text.contains("amazon-ebs")),
        (Some(0), true),
        "{text}"
    );
    let (code, text) = run(&["fix", "old.json"]);
    assert_eq!(code, Some(1));
    assert!(text.contains("bake fix: not supported"), "{text}");
}
