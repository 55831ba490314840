//! The environment a script sees: `PACKER_BUILD_NAME`, `PACKER_BUILDER_TYPE`,
//! then `environment_vars`, then `env` (each later source overrides the
//! earlier), sorted by name and flattened with `env_var_format` into the
//! `{{.Vars}}` string (or the `use_env_var_file` file), exactly as Packer's
//! shell and shell-local do.

use std::collections::BTreeMap;

use bakery_template::engine::go_quote;
use bakery_template::late::{LateContext, LateTemplate};
use bakery_template::schema::shell::is_env_name;

use crate::error::ProvisionError;

/// The variables of one run: name → value, before quoting.
pub type EnvVars = BTreeMap<String, String>;

/// Renders and merges the variables in Packer's order of precedence.
pub fn collect(
    provisioner: &'static str,
    environment_vars: &[LateTemplate],
    env: &BTreeMap<String, LateTemplate>,
    build_name: &str,
    build_type: &str,
    late: &LateContext,
) -> Result<EnvVars, ProvisionError> {
    let mut vars = EnvVars::new();
    vars.insert("PACKER_BUILD_NAME".into(), build_name.to_string());
    vars.insert("PACKER_BUILDER_TYPE".into(), build_type.to_string());
    for (i, entry) in environment_vars.iter().enumerate() {
        let kv = entry.render(late).map_err(|e| ProvisionError::Render {
            provisioner,
            field: format!("environment_vars[{i}]"),
            message: e.message,
        })?;
        match kv.split_once('=') {
            Some((k, v)) if is_env_name(k) => {
                vars.insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(ProvisionError::BadEnvVar {
                    provisioner,
                    entry: kv,
                });
            }
        }
    }
    for (k, t) in env {
        if !is_env_name(k) {
            return Err(ProvisionError::BadEnvVar {
                provisioner,
                entry: k.clone(),
            });
        }
        let v = t.render(late).map_err(|e| ProvisionError::Render {
            provisioner,
            field: format!("env[{k}]"),
            message: e.message,
        })?;
        vars.insert(k.clone(), v);
    }
    Ok(vars)
}

/// Makes a value safe inside the single quotes of `%s='%s' `: `'` becomes `'"'"'`.
pub fn escape_single_quotes(value: &str) -> String {
    value.replace('\'', r#"'"'"'"#)
}

/// Every variable, in name order, formatted with `format` (Go `fmt.Sprintf`
/// with the name and the escaped value) and concatenated.
pub fn flatten(vars: &EnvVars, format: &str) -> String {
    vars.iter()
        .map(|(k, v)| go_sprintf(format, &[k, &escape_single_quotes(v)]))
        .collect()
}

/// The subset of Go's `fmt.Sprintf` that `env_var_format` uses: `%s` and
/// `%v` (the string), `%q` (Go-quoted), `%%`; a verb without an argument
/// prints `%!s(MISSING)` and unused arguments `%!(EXTRA string=…)`, as Go does.
/// Flags and widths are not supported (they print as a bad verb).
pub fn go_sprintf(format: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(format.len() + 32);
    let mut next = 0;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        match verb {
            's' | 'v' => out.push_str(arg),
            'q' => out.push_str(&go_quote(arg)),
            other => out.push_str(&format!("%!{other}(string={arg})")),
        }
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..].iter().map(|a| format!("string={a}")).collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> EnvVars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flattening_matches_packers_observed_command() {
        // The lab's primal build: sorted, single-quoted, one trailing space each.
        let v = vars(&[
            ("NVM_VERSION", "v0.24.0"),
            ("INSTANCE_USER", "admin"),
            ("PACKER_BUILD_NAME", "amazon-ebs"),
            ("NODE_VERSION", "0.10"),
            ("PACKER_BUILDER_TYPE", "amazon-ebs"),
        ]);
        assert_eq!(
            flatten(&v, "%s='%s' "),
            "INSTANCE_USER='admin' NODE_VERSION='0.10' NVM_VERSION='v0.24.0' PACKER_BUILDER_TYPE='amazon-ebs' PACKER_BUILD_NAME='amazon-ebs' "
        );
    }

    #[test]
    fn single_quotes_are_escaped_for_the_shell() {
        let v = vars(&[("Q", "it's a 'test'")]);
        let flat = flatten(&v, "%s='%s' ");
        assert_eq!(flat, r#"Q='it'"'"'s a '"'"'test'"'"'' "#);
        // And the shell gives back the original value.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{flat} sh -c 'printf %s \"$Q\"'"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "it's a 'test'");
    }

    #[test]
    fn env_file_format_exports_one_per_line() {
        let v = vars(&[("B", "2"), ("A", "1")]);
        assert_eq!(
            flatten(&v, "export %s='%s'\n"),
            "export A='1'\nexport B='2'\n"
        );
    }

    #[test]
    fn collect_renders_late_with_packers_precedence() {
        let p = crate::testutil::provisioner(
            r#"{"type":"shell","inline":["true"],
                "environment_vars":["A=1","PACKER_BUILD_NAME=custom","B={{ build `ID` }}","A=2","EQ=x=y"],
                "env":{"B":"from-env","C":"{{ build_type }}"}}"#,
        );
        let bakery_template::ProvisionerConfig::Shell(cfg) = p else {
            panic!("not shell: {p:?}")
        };
        let mut late = LateContext::default();
        late.build.insert("ID".into(), "i-1".into());
        late.build_type = "amazon-ebs".into();
        let got = collect(
            "shell",
            &cfg.environment_vars,
            &cfg.env,
            "web",
            "amazon-ebs",
            &late,
        )
        .unwrap();
        assert_eq!(
            got,
            vars(&[
                ("A", "2"),
                ("B", "from-env"),
                ("C", "amazon-ebs"),
                ("EQ", "x=y"),
                // A user value wins over Packer's own, as in Packer.
                ("PACKER_BUILD_NAME", "custom"),
                ("PACKER_BUILDER_TYPE", "amazon-ebs"),
            ])
        );
    }

    #[test]
    fn go_sprintf_edge_cases() {
        assert_eq!(go_sprintf("%s=%q;", &["K", "a\"b"]), "K=\"a\\\"b\";");
        assert_eq!(go_sprintf("100%% %s", &["x"]), "100% x");
        assert_eq!(go_sprintf("%s", &["a", "b"]), "a%!(EXTRA string=b)");
        assert_eq!(go_sprintf("%s %s %s", &["a", "b"]), "a b %!s(MISSING)");
        assert_eq!(go_sprintf("%d", &["a"]), "%!d(string=a)");
        assert_eq!(
            go_sprintf("set \"%s=%s\" && ", &["A", "1"]),
            "set \"A=1\" && "
        );
        assert_eq!(go_sprintf("50%", &[]), "50%!(NOVERB)");
    }
}
