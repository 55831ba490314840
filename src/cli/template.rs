//! `bake validate`, `bake inspect` and `bake console`: the command line fills [`TemplateArgs`] and calls
//! these; they write to the given writers and return the exit code (0 ok, 1 invalid).

use bakery_core::ui::machine_escape;
use bakery_template::diagnostics::Diagnostics;
use bakery_template::engine::{Template as Engine, Value};
use bakery_template::funcs::{FuncContext, PackerFuncs};
use bakery_template::load::{LoadOptions, load, resolve_variables};
use bakery_template::secrets::{MASK, Secrets};
use bakery_template::template::parse_file;
use bakery_template::version::PACKER_COMPAT_VERSION;
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// What every template command takes from the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateArgs {
    /// The template file.
    pub template: PathBuf,
    /// `-var K=V`, in order.
    pub vars: Vec<(String, String)>,
    /// `-var-file F`, in order (later files win).
    pub var_files: Vec<PathBuf>,
    /// `-only` build names.
    pub only: Vec<String>,
    /// `-except` build names.
    pub except: Vec<String>,
}

impl TemplateArgs {
    /// The template crate's load options.
    pub fn load_options(&self, syntax_only: bool) -> LoadOptions {
        LoadOptions {
            vars: self.vars.clone(),
            var_files: self.var_files.clone(),
            only: self.only.clone(),
            except: self.except.clone(),
            syntax_only,
        }
    }
}

fn print_diagnostics(diags: &Diagnostics, err: &mut dyn Write) {
    for d in &diags.0 {
        let _ = writeln!(err, "{d}");
    }
}

/// `bake validate [-syntax-only]`: 0 when valid; 1 with every error on
/// `err`.
pub fn validate(
    args: &TemplateArgs,
    syntax_only: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match load(&args.template, &args.load_options(syntax_only)) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                let _ = writeln!(err, "{w}");
            }
            let _ = if syntax_only {
                writeln!(out, "Syntax-only check passed. Everything looks okay.")
            } else {
                writeln!(out, "The configuration is valid.")
            };
            0
        }
        Err(diags) => {
            print_diagnostics(&diags, err);
            let n = diags.errors().count();
            let _ = writeln!(
                err,
                "\n{}: {n} error{} found",
                args.template.display(),
                if n == 1 { "" } else { "s" }
            );
            1
        }
    }
}

/// How `bake inspect` writes: Packer's text, or its `-machine-readable` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InspectFormat {
    /// The text `packer inspect` prints.
    #[default]
    Text,
    /// `timestamp,,type,data...` lines: a typed record (`template-variable`, `template-builder`,
    /// `template-provisioner`) before the `ui,say` line that shows it, as `packer inspect
    /// -machine-readable` writes them (pipelines such as amazon-eks-ami's Makefile read the
    /// `template-variable` records' fourth field).
    MachineReadable,
}

/// One line of `bake inspect`: what it says, and the record Packer writes before it.
struct InspectLine {
    record: Option<(&'static str, Vec<String>)>,
    say: String,
}

fn say(text: impl Into<String>) -> InspectLine {
    InspectLine {
        record: None,
        say: text.into(),
    }
}

fn record(kind: &'static str, fields: Vec<String>, text: String) -> InspectLine {
    InspectLine {
        record: Some((kind, fields)),
        say: text,
    }
}

/// `bake inspect`: variables (required ones, then defaults), builds, provisioners and post-processors,
/// as `packer inspect` prints them; sensitive defaults show as `<sensitive>`.
pub fn inspect(
    args: &TemplateArgs,
    format: InspectFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let tpl = match parse_file(&args.template) {
        Ok(t) => t,
        Err(diags) => {
            print_diagnostics(&diags, err);
            return 1;
        }
    };
    let lines = inspect_lines(&tpl);
    let text = match format {
        InspectFormat::Text => lines.iter().map(|l| format!("{}\n", l.say)).collect(),
        InspectFormat::MachineReadable => {
            let now = bakery_core::ui::unix_now();
            let mut s = String::new();
            for l in &lines {
                if let Some((kind, fields)) = &l.record {
                    let fields: Vec<String> = fields.iter().map(|f| machine_escape(f)).collect();
                    s.push_str(&format!("{now},,{kind},{}\n", fields.join(",")));
                }
                s.push_str(&format!("{now},,ui,say,{}\n", machine_escape(&l.say)));
            }
            s
        }
    };
    let _ = out.write_all(text.as_bytes());
    0
}

fn inspect_lines(tpl: &bakery_template::template::Template) -> Vec<InspectLine> {
    let mut secrets = Secrets::new();
    for name in &tpl.sensitive_variables {
        if let Some(Some(d)) = tpl.variable(name).map(|v| v.default.clone()) {
            secrets.add(d);
        }
    }
    let mut lines = vec![say("bakery inspect: JSON template")];
    if let Some(d) = &tpl.description {
        lines.push(say("Description:\n"));
        lines.push(say(format!("{d}\n")));
    }
    if tpl.variables.is_empty() {
        lines.push(say("Variables:\n"));
        lines.push(say("  <No variables>"));
    } else {
        let width = tpl
            .variables
            .iter()
            .map(|v| v.name.len())
            .max()
            .unwrap_or(0);
        let mut required: Vec<&str> = tpl
            .variables
            .iter()
            .filter(|v| v.required())
            .map(|v| v.name.as_str())
            .collect();
        required.sort();
        if !required.is_empty() {
            lines.push(say("Required variables:\n"));
            for r in required {
                lines.push(record(
                    "template-variable",
                    vec![r.to_string(), String::new(), "1".into()],
                    format!("  {r}"),
                ));
            }
            lines.push(say(""));
        }
        lines.push(say("Optional variables and their defaults:\n"));
        let mut optional: Vec<_> = tpl.variables.iter().filter(|v| !v.required()).collect();
        optional.sort_by(|a, b| a.name.cmp(&b.name));
        for v in optional {
            let default = if tpl.sensitive_variables.contains(&v.name) {
                MASK.to_string()
            } else {
                secrets.mask(v.default.as_deref().unwrap_or(""))
            };
            lines.push(record(
                "template-variable",
                vec![v.name.clone(), default.clone(), "0".into()],
                format!("  {:width$} = {default}", v.name),
            ));
        }
    }
    lines.push(say(""));
    lines.push(say("Builders:\n"));
    if tpl.builders.is_empty() {
        lines.push(say("  <No builders>"));
    }
    let width = tpl.builders.iter().map(|b| b.name.len()).max().unwrap_or(0);
    let mut builders: Vec<_> = tpl.builders.iter().collect();
    builders.sort_by(|a, b| a.name.cmp(&b.name));
    for b in builders {
        let text = if b.name == b.builder_type {
            format!("  {}", b.name)
        } else {
            format!("  {:width$} ({})", b.name, b.builder_type)
        };
        lines.push(record(
            "template-builder",
            vec![b.name.clone(), b.builder_type.clone()],
            text,
        ));
    }
    lines.push(say(""));
    lines.push(say("Provisioners:\n"));
    if tpl.provisioners.is_empty() {
        lines.push(say("  <No provisioners>"));
    }
    for p in &tpl.provisioners {
        lines.push(record(
            "template-provisioner",
            vec![p.provisioner_type.clone()],
            format!("  {}", p.provisioner_type),
        ));
    }
    if let Some(p) = &tpl.error_cleanup_provisioner {
        lines.push(say(""));
        lines.push(say("Error-cleanup provisioner:\n"));
        lines.push(say(format!("  {}", p.provisioner_type)));
    }
    // Packer 1.6.6 lists no post-processors; bakery shows them (text only: Packer has no record type).
    lines.push(say(""));
    lines.push(say("Post-processors:\n"));
    if tpl.post_processors.iter().all(Vec::is_empty) {
        lines.push(say("  <No post-processors>"));
    }
    for (i, chain) in tpl.post_processors.iter().enumerate() {
        let names: Vec<String> = chain
            .iter()
            .map(|p| {
                if p.name == p.post_processor_type {
                    p.name.clone()
                } else {
                    format!("{} ({})", p.name, p.post_processor_type)
                }
            })
            .collect();
        lines.push(say(format!("  {}: {}", i + 1, names.join(" -> "))));
    }
    lines.push(say(
        "\nNote: If your build names contain user variables or template\n\
         functions such as 'timestamp', these are processed at build time,\n\
         and therefore only show in their raw form here.",
    ));
    lines
}

/// What `help` prints in `bake console`.
pub const CONSOLE_HELP: &str = "bakery console: JSON templates.
Type a template expression to see it rendered with the template's variables,
e.g. {{user `name`}} or {{timestamp}}.

\"variables\" prints every variable and its value.
\"exit\" (or end of input) quits.";

/// `bake console`: one expression per input line, each rendered result on
/// `out`, as `packer console` does for a JSON template.
pub fn console(
    args: &TemplateArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    // Like `packer console`: the template and its variables, not the builds.
    let loaded = match resolve_variables(&args.template, &args.load_options(false)) {
        Ok(l) => l,
        Err(diags) => {
            print_diagnostics(&diags, err);
            return 1;
        }
    };
    for w in &loaded.warnings.0 {
        let _ = writeln!(err, "{w}");
    }
    let cx = FuncContext {
        user_vars: loaded.variables.clone(),
        template_path: Some(loaded.template.path.clone()),
        packer_version: Some(PACKER_COMPAT_VERSION.to_string()),
        ..Default::default()
    };
    let secrets = &loaded.secrets;
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return 0,
            Ok(_) => {}
        }
        let expr = line.trim_end_matches(['\n', '\r']);
        match expr.trim() {
            "" => continue,
            "exit" => return 0,
            "help" => {
                let _ = writeln!(out, "{CONSOLE_HELP}");
                continue;
            }
            "variables" => {
                for (k, v) in &loaded.variables {
                    let _ = writeln!(out, "{k}: {}", secrets.mask(v));
                }
                continue;
            }
            _ => {}
        }
        match render_until_stable(expr, &cx) {
            Ok(v) => {
                let _ = writeln!(out, "{}", secrets.mask(&v));
            }
            Err(e) => {
                let _ = writeln!(err, "Interpolation error: {}", secrets.mask(&e));
            }
        }
    }
}

/// Packer's `interpolate.Render`: renders again while the output changes
/// (a variable's value may itself be a template), bounded.
fn render_until_stable(expr: &str, cx: &FuncContext) -> Result<String, String> {
    let funcs = PackerFuncs::new(cx);
    let mut current = expr.to_string();
    for _ in 0..100 {
        let next = Engine::parse(&current, &funcs)
            .and_then(|e| e.execute(&funcs, &Value::Missing))
            .map_err(|e| e.to_string())?;
        if next == current {
            break;
        }
        current = next;
    }
    Ok(current)
}
