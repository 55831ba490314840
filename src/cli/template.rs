//! `bake validate`, `bake inspect` and `bake console`: the command line fills [`TemplateArgs`] and calls
//! these; they write to the given writers and return the exit code (0 ok, 1 invalid).

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

/// `bake inspect`: variables (required ones, then defaults), builds,
/// provisioners and post-processors, as `packer inspect` prints them.
pub fn inspect(args: &TemplateArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let tpl = match parse_file(&args.template) {
        Ok(t) => t,
        Err(diags) => {
            print_diagnostics(&diags, err);
            return 1;
        }
    };
    let mut secrets = Secrets::new();
    for name in &tpl.sensitive_variables {
        if let Some(Some(d)) = tpl.variable(name).map(|v| v.default.clone()) {
            secrets.add(d);
        }
    }
    let mut s = String::new();
    s.push_str("bakery inspect: JSON template\n");
    if let Some(d) = &tpl.description {
        s.push_str(&format!("Description:\n\n{d}\n\n"));
    }
    if tpl.variables.is_empty() {
        s.push_str("Variables:\n\n  <No variables>\n");
    } else {
        let mut required: Vec<&str> = tpl
            .variables
            .iter()
            .filter(|v| v.required())
            .map(|v| v.name.as_str())
            .collect();
        required.sort();
        if !required.is_empty() {
            s.push_str("Required variables:\n\n");
            for r in required {
                s.push_str(&format!("  {r}\n"));
            }
            s.push('\n');
        }
        s.push_str("Optional variables and their defaults:\n\n");
        let width = tpl
            .variables
            .iter()
            .map(|v| v.name.len())
            .max()
            .unwrap_or(0);
        let mut optional: Vec<_> = tpl.variables.iter().filter(|v| !v.required()).collect();
        optional.sort_by(|a, b| a.name.cmp(&b.name));
        for v in optional {
            let default = if tpl.sensitive_variables.contains(&v.name) {
                MASK.to_string()
            } else {
                secrets.mask(v.default.as_deref().unwrap_or(""))
            };
            s.push_str(&format!("  {:width$} = {default}\n", v.name));
        }
    }
    s.push_str("\nBuilders:\n\n");
    if tpl.builders.is_empty() {
        s.push_str("  <No builders>\n");
    } else {
        let width = tpl.builders.iter().map(|b| b.name.len()).max().unwrap_or(0);
        let mut builders: Vec<_> = tpl.builders.iter().collect();
        builders.sort_by(|a, b| a.name.cmp(&b.name));
        for b in builders {
            if b.name == b.builder_type {
                s.push_str(&format!("  {}\n", b.name));
            } else {
                s.push_str(&format!("  {:width$} ({})\n", b.name, b.builder_type));
            }
        }
    }
    s.push_str("\nProvisioners:\n\n");
    if tpl.provisioners.is_empty() {
        s.push_str("  <No provisioners>\n");
    }
    for p in &tpl.provisioners {
        s.push_str(&format!("  {}\n", p.provisioner_type));
    }
    if let Some(p) = &tpl.error_cleanup_provisioner {
        s.push_str(&format!(
            "\nError-cleanup provisioner:\n\n  {}\n",
            p.provisioner_type
        ));
    }
    s.push_str("\nPost-processors:\n\n");
    if tpl.post_processors.iter().all(Vec::is_empty) {
        s.push_str("  <No post-processors>\n");
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
        s.push_str(&format!("  {}: {}\n", i + 1, names.join(" -> ")));
    }
    s.push_str(
        "\nNote: If your build names contain user variables or template\n\
         functions such as 'timestamp', these are processed at build time,\n\
         and therefore only show in their raw form here.\n",
    );
    let _ = out.write_all(s.as_bytes());
    0
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
