//! A stand-in for `bake console TEMPLATE` (reads expressions on stdin).
//!
//!     console [-var K=V]... [-var-file F]... TEMPLATE

use bakery_template::TemplateArgs;
use bakery_template::commands;
use std::path::PathBuf;

fn main() {
    let mut args = TemplateArgs::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-var" => {
                let kv = it.next().unwrap_or_default();
                let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
                args.vars.push((k.to_string(), v.to_string()));
            }
            "-var-file" => args
                .var_files
                .push(PathBuf::from(it.next().unwrap_or_default())),
            _ => args.template = PathBuf::from(a),
        }
    }
    let stdin = std::io::stdin();
    let code = commands::console(
        &args,
        &mut stdin.lock(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    std::process::exit(code);
}
