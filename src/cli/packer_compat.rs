//! The Packer subcommands a pipeline calls besides `build`, `validate` and `inspect`, answered so that
//! `PACKER_BINARY=bake` works unchanged: `version` (Packer's line first, then bakery's own), and `init`,
//! `fmt`, `plugins`, `fix`, `hcl2_upgrade`, which have nothing to do for JSON templates with built-in
//! components — a harmless no-op where a pipeline calls them on the way to a JSON build, a clear refusal
//! where they would have to change something (docs/packer-pipelines.md).

use bakery_core::ui::machine_escape;
use bakery_template::version::PACKER_COMPAT_VERSION;
use clap::Args;
use std::io::Write;

/// bakery's own version.
pub const BAKERY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The components built into bake: what `init` and `plugins` report instead of installing plugins.
pub fn built_in() -> String {
    use bakery_template::schema::{SUPPORTED_POST_PROCESSORS, SUPPORTED_PROVISIONERS};
    format!(
        "builder amazon-ebs; provisioners {}; post-processors {}",
        SUPPORTED_PROVISIONERS.join(", "),
        SUPPORTED_POST_PROCESSORS.join(", ")
    )
}

/// `version`'s arguments.
#[derive(Debug, Args, Clone, Default, PartialEq)]
pub struct VersionArgs {
    /// Packer's machine-readable records (`version`, `version-prelease`, `version-commit`), plus
    /// `bakery-version`.
    #[arg(long = "machine-readable")]
    pub machine_readable: bool,
}

/// The arguments of a subcommand bake answers without acting on them (`init DIR`, `fmt -check .`).
#[derive(Debug, Args, Clone, Default, PartialEq)]
pub struct PassArgs {
    /// Whatever the pipeline passes (flags included): only the paths among them are looked at.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

impl PassArgs {
    /// The arguments that are not flags.
    fn paths(&self) -> impl Iterator<Item = &str> {
        self.args
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with('-'))
    }
}

/// `bake version`: `Packer v1.6.6` (the Packer release whose behaviour bake reproduces: what
/// `{{packer_version}}` and `min_packer_version` see), then bakery's own version.
pub fn version(a: &VersionArgs, out: &mut dyn Write) -> i32 {
    let packer_line = format!("Packer v{PACKER_COMPAT_VERSION}");
    let bakery_line =
        format!("bakery {BAKERY_VERSION} (bake: a drop-in for Packer's amazon-ebs JSON builds)");
    let text = if a.machine_readable {
        let now = bakery_core::ui::unix_now();
        format!(
            "{now},,version,{PACKER_COMPAT_VERSION}\n{now},,version-prelease,\n{now},,version-commit,\n\
             {now},,bakery-version,{BAKERY_VERSION}\n{now},,ui,say,{}\n{now},,ui,say,{}\n",
            machine_escape(&packer_line),
            machine_escape(&bakery_line)
        )
    } else {
        format!("{packer_line}\n{bakery_line}\n")
    };
    let _ = out.write_all(text.as_bytes());
    0
}

/// The first line of the `PACKER_LOG` log.
pub fn log_banner() -> String {
    format!("bakery version {BAKERY_VERSION} (behaves as Packer {PACKER_COMPAT_VERSION})")
}

/// Whether `p` names an HCL2 file (`*.pkr.hcl`, `*.pkrvars.hcl`, `*.hcl`).
fn is_hcl(p: &str) -> bool {
    p.ends_with(".hcl")
}

/// `bake init [PATH]`: nothing to install, every component is built in. Harmless whatever the path
/// (image-builder's Makefile runs `packer init packer/config.pkr.hcl` before its JSON builds); the
/// plugins an HCL file requires are named, so a user sees which of them bake does not have.
pub fn init(a: &PassArgs, err: &mut dyn Write) -> i32 {
    let _ = writeln!(
        err,
        "bake init: nothing to install: bake has no plugins; built in: {}.",
        built_in()
    );
    for p in a.paths() {
        let Ok(text) = std::fs::read_to_string(p) else {
            continue;
        };
        for source in required_plugin_sources(&text) {
            let built_in = source.ends_with("/amazon");
            let _ = writeln!(
                err,
                "bake init: {p}: requires plugin {source}: {}",
                if built_in {
                    "its amazon-ebs builder is built in"
                } else {
                    "not part of bake (JSON templates using it fail at validate, naming it)"
                }
            );
        }
    }
    0
}

/// The `source = "…"` values of an HCL `required_plugins` block, without parsing HCL.
fn required_plugin_sources(hcl: &str) -> Vec<String> {
    hcl.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "source").then(|| v.trim().trim_matches('"').to_string())
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// `bake fmt`: Packer formats HCL2 files only; for JSON templates (and no paths) there is nothing to do,
/// so a pipeline's `fmt -check` passes. An HCL2 path is refused: bake does not read HCL2.
pub fn fmt(a: &PassArgs, err: &mut dyn Write) -> i32 {
    let hcl: Vec<&str> = a.paths().filter(|p| is_hcl(p)).collect();
    if hcl.is_empty() {
        let _ = writeln!(
            err,
            "bake fmt: nothing to format: Packer's fmt formats HCL2 files, and bake reads JSON templates only"
        );
        return 0;
    }
    let _ = writeln!(
        err,
        "bake fmt: {}: HCL2 templates are not supported (bake reads Packer JSON templates; docs/compatibility.md)",
        hcl.join(", ")
    );
    1
}

/// `bake plugins …`: `installed` lists what is built in; `install`, `required` and `remove` have nothing
/// to do (exit 0, saying so); anything else is a usage error.
pub fn plugins(a: &PassArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match a.args.first().map(String::as_str) {
        Some("installed") => {
            let _ = writeln!(out, "built in: {}", built_in());
            0
        }
        Some(verb @ ("install" | "required" | "remove")) => {
            let _ = writeln!(
                err,
                "bake plugins {verb}: nothing to do: bake has no plugins; built in: {}.",
                built_in()
            );
            0
        }
        other => {
            let _ = writeln!(
                err,
                "bake plugins: expected installed, install, required or remove{}",
                other.map(|o| format!(", got {o:?}")).unwrap_or_default()
            );
            1
        }
    }
}

/// `bake fix` and `bake hcl2_upgrade`: they rewrite templates, which bake does not do — refused, with
/// what to use instead.
pub fn refuse(command: &str, err: &mut dyn Write) -> i32 {
    let instead = match command {
        "fix" => {
            "bake reads current JSON templates as Packer 1.6.6 to 1.9.5 do; run `packer fix` once if a template predates them"
        }
        _ => "bake builds the JSON template itself; keep it JSON",
    };
    let _ = writeln!(err, "bake {command}: not supported: {instead}");
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>) -> i32) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = f(&mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn pass(args: &[&str]) -> PassArgs {
        PassArgs {
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn version_starts_with_packers_line_then_bakerys() {
        let (code, out, _) = run(|o, _| version(&VersionArgs::default(), o));
        assert_eq!(code, 0);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("Packer v{PACKER_COMPAT_VERSION}"));
        assert!(lines[1].starts_with(&format!("bakery {BAKERY_VERSION} ")));
    }

    #[test]
    fn machine_readable_version_has_packers_records() {
        let (_, out, _) = run(|o, _| {
            version(
                &VersionArgs {
                    machine_readable: true,
                },
                o,
            )
        });
        let kinds: Vec<(&str, &str)> = out
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(4, ',').collect();
                (f[2], f[3])
            })
            .collect();
        assert_eq!(kinds[0], ("version", PACKER_COMPAT_VERSION));
        assert_eq!(kinds[1], ("version-prelease", ""));
        assert_eq!(kinds[3], ("bakery-version", BAKERY_VERSION));
        assert!(out.lines().all(|l| l.split(',').count() >= 3));
    }

    #[test]
    fn init_is_harmless_and_names_required_plugins() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.pkr.hcl");
        std::fs::write(
            &cfg,
            "packer {\n  required_plugins {\n    amazon = {\n      version = \">= 1\"\n      source = \"github.com/hashicorp/amazon\"\n    }\n    goss = {\n      source  = \"github.com/YaleUniversity/goss\"\n    }\n  }\n}\n",
        )
        .unwrap();
        let (code, _, err) = run(|_, e| init(&pass(&[cfg.to_str().unwrap()]), e));
        assert_eq!(code, 0);
        assert!(err.contains("github.com/hashicorp/amazon: its amazon-ebs builder is built in"));
        assert!(err.contains("github.com/YaleUniversity/goss: not part of bake"));
        let (code, _, _) = run(|_, e| init(&pass(&["missing/config.pkr.hcl"]), e));
        assert_eq!(code, 0, "a missing file is harmless too");
    }

    #[test]
    fn fmt_passes_json_and_refuses_hcl() {
        assert_eq!(run(|_, e| fmt(&pass(&["-check", "template.json"]), e)).0, 0);
        assert_eq!(run(|_, e| fmt(&pass(&[]), e)).0, 0);
        let (code, _, err) = run(|_, e| fmt(&pass(&["-check", "ami.pkr.hcl"]), e));
        assert_eq!(code, 1);
        assert!(err.contains("ami.pkr.hcl: HCL2 templates are not supported"));
    }

    #[test]
    fn plugins_answers_each_verb() {
        let (code, out, _) = run(|o, e| plugins(&pass(&["installed"]), o, e));
        assert_eq!(code, 0);
        assert!(out.contains("amazon-ebs"));
        assert_eq!(
            run(|o, e| plugins(&pass(&["install", "github.com/hashicorp/amazon"]), o, e)).0,
            0
        );
        let (code, _, err) = run(|o, e| plugins(&pass(&["frobnicate"]), o, e));
        assert_eq!(code, 1);
        assert!(err.contains("got \"frobnicate\""));
    }

    #[test]
    fn fix_and_hcl2_upgrade_are_refused_with_a_reason() {
        for c in ["fix", "hcl2_upgrade"] {
            let (code, _, err) = run(|_, e| refuse(c, e));
            assert_eq!(code, 1);
            assert!(
                err.starts_with(&format!("bake {c}: not supported: ")),
                "{err}"
            );
        }
    }
}
