//! A stand-in for `bake validate` until the CLI is wired: the same
//! back-end, a minimal flag parser. scripts/corpus-compare runs it via $BAKE.
//!
//!     validate [-syntax-only] [-var K=V]... [-var-file F]... [-only a,b] [-except a,b] TEMPLATE

use bakery_template::TemplateArgs;
use bakery_template::commands;
use std::path::PathBuf;

fn main() {
    let mut args = TemplateArgs::default();
    let mut syntax_only = false;
    let mut it = std::env::args().skip(1);
    // Accept `validate` as a first word, so $BAKE can be this example or `bake`.
    let mut first = true;
    let mut template = None;
    while let Some(a) = it.next() {
        if first && a == "validate" {
            first = false;
            continue;
        }
        first = false;
        // `-flag=value` as well as `-flag value` (for -var, split at the first '=').
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| {
            inline.clone().or_else(|| it.next()).unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        match flag.trim_start_matches('-') {
            "syntax-only" => syntax_only = true,
            "var" => {
                let kv = value("-var");
                let Some((k, v)) = kv.split_once('=') else {
                    eprintln!("-var expects K=V, got {kv}");
                    std::process::exit(1)
                };
                args.vars.push((k.to_string(), v.to_string()));
            }
            "var-file" => args.var_files.push(PathBuf::from(value("-var-file"))),
            "only" => args
                .only
                .extend(value("-only").split(',').map(str::to_string)),
            "except" => args
                .except
                .extend(value("-except").split(',').map(str::to_string)),
            _ if !a.starts_with('-') || a == "-" => template = Some(PathBuf::from(&a)),
            other => {
                eprintln!("unknown flag -{other}");
                std::process::exit(2)
            }
        }
    }
    let Some(t) = template else {
        eprintln!(
            "usage: validate [-syntax-only] [-var K=V]... [-var-file F]... [-only a,b] [-except a,b] TEMPLATE"
        );
        std::process::exit(2)
    };
    args.template = t;
    let code = commands::validate(
        &args,
        syntax_only,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    std::process::exit(code);
}
