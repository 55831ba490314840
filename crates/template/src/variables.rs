//! User variables: declared defaults, `-var-file` files (in order) and
//! `-var` flags (always last, whatever their position on the command line —
//! Packer's code, PR #8964; its docs still say otherwise), required ones,
//! and defaults that refer to other variables (resolved in passes over the
//! sorted names, as Packer's `renderVarsRecursively`).

use crate::diagnostics::{Diagnostic, Diagnostics, Source};
use crate::engine::{FuncHost, Template as Engine, TemplateError, Value};
use crate::funcs::{ERR_VARIABLE_NOT_SET, FuncContext, PackerFuncs};
use crate::json::{self, Value as J};
use crate::template::{Template, io_message};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Passes over the variables before giving up, as Packer.
const MAX_PASSES: usize = 100;

/// The values of one var-file, in file order, and its warnings.
#[derive(Debug, Clone, Default)]
pub struct VarFile {
    pub values: Vec<(String, String)>,
    pub warnings: Vec<Diagnostic>,
}

/// Reads one `-var-file`: a JSON object of strings; `null` counts as set
/// to "" (Go decodes it so into `map[string]string`).
pub fn read_var_file(path: &Path) -> Result<VarFile, Diagnostics> {
    let text = std::fs::read(path).map_err(|e| {
        Diagnostics::from(
            Diagnostic::error(format!("open {}: {}", path.display(), io_message(&e))).in_file(path),
        )
    })?;
    let src = Source::new(path, String::from_utf8_lossy(&text).into_owned());
    let parsed = json::parse(&src.text).map_err(|e| {
        Diagnostics::from(
            Diagnostic::error(format!(
                "Error reading variables in '{}': {}",
                path.display(),
                e.message
            ))
            .at(&src, e.pos),
        )
    })?;
    let mut warnings = Vec::new();
    for d in &parsed.duplicates {
        warnings.push(
            Diagnostic::warning(format!(
                "duplicate variable '{}' in var-file; the last value wins, as in Packer",
                d.key
            ))
            .at(&src, d.pos),
        );
    }
    let Some(members) = parsed.value.as_object() else {
        return Err(Diagnostics::from(
            Diagnostic::error(format!(
                "Error reading variables in '{}': json: cannot unmarshal {} into Go value of type map[string]string",
                path.display(),
                go_json_kind(&parsed.value.value)
            ))
            .at(&src, parsed.value.pos),
        ));
    };
    let mut errors = Diagnostics::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for m in members {
        let v = match &m.value.value {
            J::String(s) => s.clone(),
            J::Null => String::new(),
            other => {
                errors.push(
                    Diagnostic::error(format!(
                        "Error reading variables in '{}': json: cannot unmarshal {} into Go value of type string (variable '{}'; quote the value)",
                        path.display(),
                        go_json_kind(other),
                        m.key
                    ))
                    .at(&src, m.value.pos),
                );
                continue;
            }
        };
        out.retain(|(k, _)| k != &m.key);
        out.push((m.key.clone(), v));
    }
    if errors.has_errors() {
        return Err(errors);
    }
    Ok(VarFile {
        values: out,
        warnings,
    })
}

fn go_json_kind(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "bool",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

/// Merges var-files (in order) and `-var` flags (last, always).
pub fn merge_inputs(
    vars: &[(String, String)],
    var_files: &[PathBuf],
    diags: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let mut merged = BTreeMap::new();
    for f in var_files {
        match read_var_file(f) {
            Ok(vf) => {
                diags.extend(vf.warnings);
                merged.extend(vf.values);
            }
            Err(e) => diags.extend(e.0),
        }
    }
    for (k, v) in vars {
        merged.insert(k.clone(), v.clone());
    }
    merged
}

/// Reports every required variable that is not set, in declaration order.
pub fn check_required(tpl: &Template, given: &BTreeMap<String, String>, diags: &mut Diagnostics) {
    for v in &tpl.variables {
        if v.required() && !given.contains_key(&v.name) {
            diags.push(
                Diagnostic::error(format!(
                    "required variable not set: {} (set it with -var '{}=...' or in a -var-file)",
                    v.name, v.name
                ))
                .at(&tpl.source, v.pos),
            );
        }
    }
}

/// Resolves every variable: template defaults and given values, rendered
/// (with `env` allowed) until they stop changing. Errors go to `diags`.
pub fn resolve(
    tpl: &Template,
    given: &BTreeMap<String, String>,
    base: &FuncContext,
    diags: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let mut cx = base.clone();
    cx.in_variables = true;
    cx.build_name = None;
    cx.build_type = None;
    cx.amazon = false;

    // The source text of every variable: given values win over defaults.
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for v in &tpl.variables {
        sources.insert(v.name.clone(), v.default.clone().unwrap_or_default());
    }
    for (k, v) in given {
        sources.insert(k.clone(), v.clone());
    }
    let mut values: BTreeMap<String, String> = given.clone();
    let mut pending: Vec<(String, String)> = sources.into_iter().collect();
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let mut fatal: Vec<(String, String)> = Vec::new();

    // Packer's loop: pass after pass over the sorted names; a value that
    // still calls `user` is rendered again next pass. It fails only when, in
    // its last pass, nothing rendered at all; otherwise variables that could
    // not be resolved are silently left as given (or unset).
    let mut last_pass_rendered = false;
    for _ in 0..MAX_PASSES {
        let mut retry = false;
        let mut changed = false;
        let mut rendered_any = false;
        let mut done: Vec<String> = Vec::new();
        for (k, src) in &pending {
            let funcs = PackerFuncs::with_user_vars(&cx, &values);
            match render_keeping_dot_fields(src, &funcs) {
                Ok(rendered) => {
                    rendered_any = true;
                    failures.remove(k);
                    if values.get(k) != Some(&rendered) {
                        changed = true;
                        values.insert(k.clone(), rendered);
                    }
                    if refers_to_user(src) {
                        retry = true;
                    } else {
                        done.push(k.clone());
                    }
                }
                Err(e) if e.message().contains(ERR_VARIABLE_NOT_SET) => {
                    retry = true;
                    failures.insert(k.clone(), e.to_string());
                }
                Err(e) => {
                    fatal.push((k.clone(), e.to_string()));
                    done.push(k.clone());
                }
            }
        }
        pending.retain(|(k, _)| !done.contains(k));
        last_pass_rendered = rendered_any;
        // Nothing left to retry, or a fixed point: more passes would repeat
        // this one exactly.
        if !retry || !changed {
            break;
        }
    }

    let pos_of = |k: &str| tpl.variable(k).map(|v| v.pos);
    let place = |d: Diagnostic, k: &str| match pos_of(k) {
        Some(p) => d.at(&tpl.source, p),
        None => d.in_file(&tpl.source.path),
    };
    for (k, e) in fatal {
        diags.push(place(
            Diagnostic::error(format!("error interpolating default value for '{k}': {e}")),
            &k,
        ));
    }
    for (k, e) in failures {
        let src = pending
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        if last_pass_rendered {
            let kept = if given.contains_key(&k) {
                "it keeps its value unrendered, as Packer does"
            } else {
                "it is left unset (renders as \"\"), as Packer does"
            };
            diags.push(place(
                Diagnostic::warning(format!(
                    "variable '{k}' could not be resolved ({e}); {kept}"
                )),
                &k,
            ));
        } else {
            diags.push(place(
                Diagnostic::error(format!(
                    "Failed to interpolate \"{k}\": \"{src}\"; error: {e}: Please make sure that the variable you're referencing has been defined; Packer treats all variables used to interpolate other user variables as required."
                )),
                &k,
            ));
        }
    }
    values
}

/// Packer's `isDoneInterpolating`: the value still calls `user` with a
/// backquoted name, so it must be rendered again once others change.
fn refers_to_user(s: &str) -> bool {
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        let after = rest[i + 2..].trim_start();
        if let Some(a) = after.strip_prefix("user") {
            let a = a.trim_start();
            if a.starts_with('`') {
                let line = a.lines().next().unwrap_or("");
                if let Some(close) = line.rfind('`')
                    && close > 0
                    && line[close + 1..].trim_start().starts_with("}}")
                {
                    return true;
                }
            }
        }
        rest = &rest[i + 2..];
    }
    false
}

/// Renders a variable value, leaving `{{ .Field }}` actions untouched (Packer
/// excludes them with the regex `{{(\s|)\.(.*?)(\s|)}}`: they are meant for
/// the builder, e.g. `{{ .HTTPIP }}`).
pub fn render_keeping_dot_fields(src: &str, funcs: &dyn FuncHost) -> Result<String, TemplateError> {
    let mut kept: Vec<String> = Vec::new();
    let mut text = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = rest.find("{{") {
        text.push_str(&rest[..i]);
        let cand = &rest[i..];
        if let Some(len) = dot_field_action_len(cand) {
            text.push_str(&format!("\u{1}bakery-kept-{}\u{1}", kept.len()));
            kept.push(cand[..len].to_string());
            rest = &cand[len..];
        } else {
            text.push_str("{{");
            rest = &cand[2..];
        }
    }
    text.push_str(rest);
    let mut out = Engine::parse(&text, funcs)?.execute(funcs, &Value::Missing)?;
    for (i, k) in kept.iter().enumerate() {
        out = out.replace(&format!("\u{1}bakery-kept-{i}\u{1}"), k);
    }
    Ok(out)
}

/// Length of a `{{(\s|)\.(.*?)(\s|)}}` match at the start of `s`.
fn dot_field_action_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 2;
    if b.get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c))
        && b.get(i + 1) == Some(&b'.')
    {
        i += 1;
    }
    if b.get(i) != Some(&b'.') {
        return None;
    }
    i += 1;
    // Shortest run without a newline up to "}}" (optionally after one space
    // character, which may be a newline).
    let mut j = i;
    while j < b.len() {
        if b[j..].starts_with(b"}}") {
            return Some(j + 2);
        }
        if b[j] == b'\n' {
            return if b[j + 1..].starts_with(b"}}") {
                Some(j + 3)
            } else {
                None
            };
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gotime::Clock;
    use crate::template::parse_text;

    fn tpl(text: &str) -> Template {
        parse_text(
            Path::new("/t/t.json"),
            Path::new("t.json"),
            text.to_string(),
        )
        .unwrap()
    }

    fn cx() -> FuncContext {
        FuncContext {
            template_path: Some(PathBuf::from("/t/t.json")),
            clock: Some(Clock::from_unix(1_795_308_914, 0)),
            ..Default::default()
        }
    }

    fn run(t: &Template, given: &[(&str, &str)]) -> (BTreeMap<String, String>, Vec<String>) {
        let given: BTreeMap<String, String> = given
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut diags = Diagnostics::new();
        check_required(t, &given, &mut diags);
        let values = resolve(t, &given, &cx(), &mut diags);
        (values, diags.0.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn defaults_reference_each_other_in_any_order() {
        let t = tpl(
            r#"{"variables":{"a":"def","b":null,"c":"{{user `a`}}-c","d":"{{user `c`}}-d","aa":"{{user `d`}}!","e":"{{ .HTTPIP }}/{{user `a`}}","t":"{{template_dir}}"},"builders":[{"type":"x"}]}"#,
        );
        let (v, errs) = run(&t, &[("b", "1")]);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(v["c"], "def-c");
        assert_eq!(v["d"], "def-c-d");
        assert_eq!(v["aa"], "def-c-d!");
        assert_eq!(v["e"], "{{ .HTTPIP }}/def");
        assert_eq!(v["t"], "/t");
    }

    #[test]
    fn required_variables_are_all_listed() {
        let t = tpl(r#"{"variables":{"a":null,"b":null,"c":"x"},"builders":[{"type":"x"}]}"#);
        let (_, errs) = run(&t, &[]);
        assert_eq!(errs.len(), 2);
        assert!(errs[0].starts_with("required variable not set: a"));
        assert!(errs[1].starts_with("required variable not set: b"));
    }

    #[test]
    fn undefined_references_and_cycles_fail_like_packer() {
        let t = tpl(r#"{"variables":{"a":"{{user `nope`}}"},"builders":[{"type":"x"}]}"#);
        let (_, errs) = run(&t, &[]);
        assert!(errs[0].starts_with("Failed to interpolate \"a\": \"{{user `nope`}}\"; error: template: root:1:2: executing \"root\" at <user `nope`>: error calling user: Error: variable not set: nope: Please make sure"), "{errs:?}");
        let t = tpl(
            r#"{"variables":{"a":"{{user `b`}}","b":"{{user `a`}}"},"builders":[{"type":"x"}]}"#,
        );
        assert_eq!(run(&t, &[]).1.len(), 2);
        let t = tpl(r#"{"variables":{"a":"{{ nope }}"},"builders":[{"type":"x"}]}"#);
        assert_eq!(
            run(&t, &[]).1,
            [
                "error interpolating default value for 'a': template: root:1: function \"nope\" not defined"
            ]
        );
    }

    #[test]
    fn unresolvable_variables_are_left_as_packer_leaves_them_when_others_render() {
        // Packer only fails when nothing renders in its last pass.
        let t = tpl(
            r#"{"variables":{"a":"{{user `nope`}}","b":"{{user `c`}}","c":"C"},"builders":[{"type":"x"}]}"#,
        );
        let given: BTreeMap<String, String> =
            BTreeMap::from([("g".to_string(), "{{user `nope`}}".to_string())]);
        let mut diags = Diagnostics::new();
        let v = resolve(&t, &given, &cx(), &mut diags);
        assert!(!diags.has_errors(), "{diags}");
        assert_eq!(diags.warnings().count(), 2);
        assert_eq!(v["b"], "C");
        assert!(!v.contains_key("a"));
        assert_eq!(v["g"], "{{user `nope`}}");
    }

    #[test]
    fn given_values_are_rendered_and_undeclared_ones_kept() {
        let t = tpl(r#"{"variables":{"a":"def"},"builders":[{"type":"x"}]}"#);
        let (v, errs) = run(&t, &[("a", "{{timestamp}}"), ("undeclared", "u")]);
        assert!(errs.is_empty());
        assert_eq!(v["a"], "1795308914");
        assert_eq!(v["undeclared"], "u");
    }

    #[test]
    fn env_only_in_variables() {
        let t = tpl(r#"{"variables":{"p":"{{env `PATH`}}"},"builders":[{"type":"x"}]}"#);
        let (v, errs) = run(&t, &[]);
        assert!(errs.is_empty());
        assert_eq!(v["p"], std::env::var("PATH").unwrap_or_default());
    }

    #[test]
    fn var_files_and_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let f1 = dir.path().join("vf1.json");
        let f2 = dir.path().join("vf2.json");
        let f3 = dir.path().join("vf3.json");
        std::fs::write(&f1, r#"{"a":"file1","b":null,"undeclared":"u1"}"#).unwrap();
        std::fs::write(&f2, r#"{"a":"file2","a":"file2b"}"#).unwrap();
        std::fs::write(&f3, r#"{"a":1}"#).unwrap();
        let mut d = Diagnostics::new();
        // -var wins whatever its position; later files win over earlier ones.
        let m = merge_inputs(
            &[("a".into(), "cli".into())],
            &[f1.clone(), f2.clone()],
            &mut d,
        );
        assert_eq!(m["a"], "cli");
        assert_eq!(m["b"], "");
        assert_eq!(m["undeclared"], "u1");
        let m = merge_inputs(&[], &[f1.clone(), f2.clone()], &mut d);
        assert_eq!(m["a"], "file2b");
        let m = merge_inputs(&[], &[f2.clone(), f1.clone()], &mut d);
        assert_eq!(m["a"], "file1");
        assert!(d.warnings().count() >= 1);
        assert!(!d.has_errors());
        let mut d = Diagnostics::new();
        merge_inputs(&[], &[f3, dir.path().join("missing.json")], &mut d);
        let errs: Vec<_> = d.errors().map(|e| e.message.clone()).collect();
        assert!(
            errs[0].contains("json: cannot unmarshal number into Go value of type string"),
            "{errs:?}"
        );
        assert!(
            errs[1].ends_with("missing.json: no such file or directory"),
            "{errs:?}"
        );
    }

    #[test]
    fn dot_field_exclusion_matches_packer_regex() {
        assert_eq!(dot_field_action_len("{{ .HTTPIP }}x"), Some(13));
        assert_eq!(dot_field_action_len("{{.Path}}"), Some(9));
        assert_eq!(dot_field_action_len("{{ user `a` }}"), None);
        assert!(refers_to_user("x{{ user `a` }}"));
        assert!(!refers_to_user("{{ user \"a\" }}"));
        assert!(!refers_to_user("{{ env `a` }}"));
    }
}
