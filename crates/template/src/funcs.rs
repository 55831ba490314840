//! Packer's template functions (the core ones every template has, and the
//! amazon builder's `clean_resource_name`), with the context that decides
//! where each is allowed: `env` and the secret stores only in variable defaults, `user`
//! erroring on undefined variables only there, `build` returning
//! placeholders while a provisioner is prepared, and so on.

use crate::engine::{FuncHost, Sig, Ty, Value};
use crate::gotime::Clock;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Where a `build` call can find its value.
#[derive(Debug, Clone, Default)]
pub enum BuildData {
    /// No build data (builder configs, variables, console): an error.
    #[default]
    None,
    /// While preparing provisioners/post-processors: known keys render as
    /// `{{.Key}}`, to be rendered for real at run time.
    Placeholders(BTreeSet<String>),
    /// At run time.
    Values(BTreeMap<String, String>),
}

/// Keys Packer's `BasicPlaceholderData` provides to every build.
pub const BASIC_BUILD_KEYS: &[&str] = &[
    "ID",
    "Host",
    "Port",
    "User",
    "Password",
    "ConnType",
    "PackerRunUUID",
    "PackerHTTPIP",
    "PackerHTTPPort",
    "PackerHTTPAddr",
    "SSHPublicKey",
    "SSHPrivateKey",
    "WinRMPassword",
];

/// Keys amazon builders add (`GetGeneratedDataList`).
pub const AMAZON_BUILD_KEYS: &[&str] = &[
    "SourceAMIName",
    "BuildRegion",
    "SourceAMI",
    "SourceAMICreationDate",
    "SourceAMIOwner",
    "SourceAMIOwnerName",
];

/// The interpolation context of one render.
#[derive(Debug, Clone, Default)]
pub struct FuncContext {
    pub user_vars: BTreeMap<String, String>,
    /// Rendering variable defaults: `env` and secret stores are allowed and
    /// an undefined `user` variable is an error (so it can be retried).
    pub in_variables: bool,
    /// Absolute path of the template file.
    pub template_path: Option<PathBuf>,
    pub build_name: Option<String>,
    pub build_type: Option<String>,
    pub packer_version: Option<String>,
    /// Amazon builder configs add `clean_resource_name` (and bakery keeps
    /// the removed `clean_ami_name`, with a warning).
    pub amazon: bool,
    pub build_data: BuildData,
    pub clock: Option<Clock>,
}

/// A [`FuncHost`] for a context; collects deprecation warnings.
pub struct PackerFuncs<'a> {
    pub cx: &'a FuncContext,
    /// The variables `user` reads (the context's, unless overridden while
    /// variables are being resolved).
    vars: &'a BTreeMap<String, String>,
    pub warnings: RefCell<Vec<String>>,
}

impl<'a> PackerFuncs<'a> {
    pub fn new(cx: &'a FuncContext) -> Self {
        Self::with_user_vars(cx, &cx.user_vars)
    }

    pub fn with_user_vars(cx: &'a FuncContext, vars: &'a BTreeMap<String, String>) -> Self {
        PackerFuncs {
            cx,
            vars,
            warnings: RefCell::new(Vec::new()),
        }
    }

    fn clock(&self) -> Clock {
        self.cx.clock.unwrap_or_else(Clock::init_time)
    }
}

/// The message Packer's `user` function returns while rendering variables.
pub const ERR_VARIABLE_NOT_SET: &str = "Error: variable not set:";

pub const CLEAN_AMI_NAME_WARNING: &str = "template function clean_ami_name was removed in Packer 1.5 (`packer fix` rewrites it to clean_resource_name); bakery still accepts it and cleans the same way: use clean_resource_name";

fn s(args: &[Value], i: usize) -> String {
    match args.get(i) {
        Some(Value::Str(s)) => s.clone(),
        Some(other) => other.go_string(),
        None => String::new(),
    }
}

impl FuncHost for PackerFuncs<'_> {
    fn signature(&self, name: &str) -> Option<Sig> {
        use Ty::*;
        const NONE: &[Ty] = &[];
        const STR: &[Ty] = &[Str];
        Some(match name {
            "build_name" | "build_type" | "packer_version" | "timestamp" | "uuid" | "pwd"
            | "template_dir" => Sig {
                params: NONE,
                variadic: None,
            },
            "env"
            | "user"
            | "strftime"
            | "upper"
            | "lower"
            | "build"
            | "consul_key"
            | "aws_secretsmanager_raw" => Sig {
                params: STR,
                variadic: None,
            },
            "isotime" | "aws_secretsmanager" => Sig {
                params: NONE,
                variadic: Some(Str),
            },
            "split" => Sig {
                params: &[Str, Str, Int],
                variadic: None,
            },
            "replace" => Sig {
                params: &[Str, Str, Int, Str],
                variadic: None,
            },
            "replace_all" => Sig {
                params: &[Str, Str, Str],
                variadic: None,
            },
            "vault" | "sed" => Sig {
                params: &[Str, Str],
                variadic: None,
            },
            "clean_resource_name" | "clean_ami_name" if self.cx.amazon => Sig {
                params: STR,
                variadic: None,
            },
            _ => return None,
        })
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let cx = self.cx;
        let out = match name {
            "build_name" => cx
                .build_name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or("build_name not available")?,
            "build_type" => cx
                .build_type
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or("build_type not available")?,
            "packer_version" => cx
                .packer_version
                .clone()
                .filter(|v| !v.is_empty())
                .ok_or("packer_version not available")?,
            "env" => {
                if !cx.in_variables {
                    return Err("env vars are not allowed here".to_string());
                }
                std::env::var(s(&args, 0)).unwrap_or_default()
            }
            "user" => {
                let k = s(&args, 0);
                match self.vars.get(&k) {
                    Some(v) => v.clone(),
                    None if cx.in_variables => return Err(format!("{ERR_VARIABLE_NOT_SET} {k}")),
                    None => String::new(),
                }
            }
            "isotime" => match args.len() {
                0 => self.clock().rfc3339(),
                1 => self.clock().format_go(&s(&args, 0)),
                _ => {
                    let all: Vec<String> = args.iter().map(Value::go_string).collect();
                    return Err(format!("too many values, 1 needed: [{}]", all.join(" ")));
                }
            },
            "strftime" => self.clock().strftime(&s(&args, 0)),
            "timestamp" => self.clock().unix_secs.to_string(),
            "uuid" => time_ordered_uuid(),
            "pwd" => std::env::current_dir()
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned(),
            "template_dir" => {
                let path = cx
                    .template_path
                    .as_ref()
                    .ok_or("template path not available")?;
                let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
                let dir = if dir.is_absolute() {
                    dir
                } else {
                    std::env::current_dir()
                        .map_err(|e| e.to_string())?
                        .join(dir)
                };
                dir.to_string_lossy().into_owned()
            }
            "split" => {
                let (k, sep) = (s(&args, 0), s(&args, 1));
                let Some(Value::Int(i)) = args.get(2) else {
                    return Err("expected integer".to_string());
                };
                let parts = go_split(&k, &sep);
                if *i < 0 || parts.len() <= *i as usize {
                    return Err(format!(
                        "the substring {i} was unavailable using the separator value, {sep}, only {} values were found",
                        parts.len()
                    ));
                }
                parts[*i as usize].to_string()
            }
            "replace" => {
                let (old, new) = (s(&args, 0), s(&args, 1));
                let Some(Value::Int(n)) = args.get(2) else {
                    return Err("expected integer".to_string());
                };
                go_replace(&s(&args, 3), &old, &new, *n)?
            }
            "replace_all" => go_replace(&s(&args, 2), &s(&args, 0), &s(&args, 1), -1)?,
            "upper" => s(&args, 0).to_uppercase(),
            "lower" => s(&args, 0).to_lowercase(),
            "clean_resource_name" => clean_resource_name(&s(&args, 0)),
            "clean_ami_name" => {
                let mut w = self.warnings.borrow_mut();
                if !w.iter().any(|x| x == CLEAN_AMI_NAME_WARNING) {
                    w.push(CLEAN_AMI_NAME_WARNING.to_string());
                }
                clean_resource_name(&s(&args, 0))
            }
            "build" => {
                let key = s(&args, 0);
                match &cx.build_data {
                    BuildData::None => {
                        return Err(format!(
                            "Error validating build variable: the given variable {key} will not be passed into your plugin."
                        ));
                    }
                    BuildData::Placeholders(keys) => {
                        if !keys.contains(&key) {
                            return Err(format!("loaded data, but couldnt find {key} in it."));
                        }
                        format!("{{{{.{key}}}}}")
                    }
                    BuildData::Values(values) => values
                        .get(&key)
                        .cloned()
                        .ok_or_else(|| format!("loaded data, but couldnt find {key} in it."))?,
                }
            }
            "consul_key" => {
                if !cx.in_variables {
                    return Err("consul_key is not allowed here".to_string());
                }
                return Err(not_supported("consul_key", "Consul"));
            }
            "vault" => {
                if !cx.in_variables {
                    return Err("Vault vars are only allowed in the variables section".to_string());
                }
                return Err(not_supported("vault", "Vault"));
            }
            "aws_secretsmanager" | "aws_secretsmanager_raw" => {
                if !cx.in_variables {
                    return Err(
                        "AWS Secrets Manager is only allowed in the variables section".to_string(),
                    );
                }
                if name == "aws_secretsmanager" && args.is_empty() {
                    return Err("secret name must be provided".to_string());
                }
                if args.len() > 2 {
                    return Err(
                        "only secret name and optional secret key can be provided.".to_string()
                    );
                }
                return Err(not_supported(name, "AWS Secrets Manager"));
            }
            "sed" => {
                return Err("template function `sed` is deprecated use `replace` or `replace_all` instead.Documentation: https://www.packer.io/docs/templates/engine".to_string());
            }
            _ => return Err(format!("function {name} not defined")),
        };
        Ok(Value::Str(out))
    }
}

fn not_supported(func: &str, store: &str) -> String {
    format!(
        "{func} is not supported by bakery (it does not read {store}); fetch the value before the run and pass it with -var or -var-file (mark it in sensitive-variables)"
    )
}

/// Go's strings.Split: an empty separator splits into UTF-8 characters.
fn go_split<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    if sep.is_empty() {
        return s
            .char_indices()
            .map(|(i, c)| &s[i..i + c.len_utf8()])
            .collect();
    }
    s.split(sep).collect()
}

/// Go's strings.Replace(s, old, new, n): n < 0 replaces all; an empty `old`
/// matches before every character and at the end.
fn go_replace(s: &str, old: &str, new: &str, n: i64) -> Result<String, String> {
    if n == 0 || old == new {
        return Ok(s.to_string());
    }
    let limit = if n < 0 { usize::MAX } else { n as usize };
    let mut out = String::new();
    if old.is_empty() {
        let mut count = 0;
        for c in s.chars() {
            if count < limit {
                out.push_str(new);
                count += 1;
            }
            out.push(c);
            check_len(&out)?;
        }
        if count < limit {
            out.push_str(new);
        }
        return Ok(out);
    }
    let mut rest = s;
    let mut count = 0;
    while count < limit {
        let Some(i) = rest.find(old) else {
            break;
        };
        out.push_str(&rest[..i]);
        out.push_str(new);
        check_len(&out)?;
        rest = &rest[i + old.len()..];
        count += 1;
    }
    out.push_str(rest);
    Ok(out)
}

fn check_len(s: &str) -> Result<(), String> {
    if s.len() > crate::engine::MAX_VALUE_LEN {
        return Err(format!(
            "result larger than {} bytes",
            crate::engine::MAX_VALUE_LEN
        ));
    }
    Ok(())
}

/// Amazon's `clean_resource_name`: every byte outside
/// `[A-Za-z0-9()[] ./-'@_]` becomes `-` (byte-wise, as the plugin does).
pub fn clean_resource_name(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"()[] ./-'@_".contains(&b) {
                b as char
            } else {
                '-'
            }
        })
        .collect()
}

/// Packer's time-ordered UUID: the current Unix time in the first 8 hex
/// digits, random bits after.
pub fn time_ordered_uuid() -> String {
    let now = Clock::now().unix_secs as u32;
    let r = uuid::Uuid::new_v4();
    let b = r.as_bytes();
    format!(
        "{:08x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        now, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::render;

    fn cx() -> FuncContext {
        FuncContext {
            user_vars: BTreeMap::from([
                ("a".into(), "Aval".into()),
                ("list".into(), "x,y,z".into()),
            ]),
            template_path: Some(PathBuf::from("/tmp/pk/c.json")),
            clock: Some(Clock::from_unix(1_795_308_914, 53_000_000)),
            packer_version: Some("1.6.6".into()),
            ..Default::default()
        }
    }

    fn r(cx: &FuncContext, s: &str) -> String {
        let f = PackerFuncs::new(cx);
        render(s, &f, &Value::Missing).unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn functions_as_packer_prints_them() {
        let c = cx();
        assert_eq!(r(&c, "{{ user `a` }}|{{ user `nope` }}|"), "Aval||");
        assert_eq!(r(&c, "{{ replace \"a\" \"b\" 1 \"aaa\" }}"), "baa");
        assert_eq!(r(&c, "{{ replace_all \"a\" \"b\" \"aaa\" }}"), "bbb");
        assert_eq!(r(&c, "{{ lower \"ABC\" }}{{ upper \"abc\" }}"), "abcABC");
        assert_eq!(r(&c, "{{ template_dir }}"), "/tmp/pk");
        assert_eq!(r(&c, "{{ timestamp }}"), "1795308914");
        assert_eq!(r(&c, "{{ isotime }}"), "2026-11-22T00:55:14Z");
        assert_eq!(r(&c, "{{ isotime \"2006\" | upper }}"), "2026");
        assert_eq!(r(&c, "{{ timestamp | printf \"%T\" }}"), "string");
        assert_eq!(r(&c, "{{ packer_version }}"), "1.6.6");
        assert_eq!(r(&c, "{{ split \"a,b\" \",\" 1 }}"), "b");
        assert_eq!(
            r(&c, "{{ pwd }}"),
            std::env::current_dir().unwrap().to_string_lossy()
        );
        assert_eq!(
            r(&c, "{{ strftime \"%Y-%m-%d %H:%M\" }}"),
            "2026-11-22 00:55"
        );
        let mut b = cx();
        b.build_name = Some("app-prod".into());
        b.build_type = Some("amazon-ebs".into());
        assert_eq!(
            r(&b, "{{ build_name }}/{{ build_type }}"),
            "app-prod/amazon-ebs"
        );
        let u = r(&c, "{{ uuid }}");
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
    }

    #[test]
    fn errors_as_packer_prints_them() {
        let c = cx();
        assert_eq!(
            r(&c, "{{ env `HOME` }}"),
            "ERR template: root:1:3: executing \"root\" at <env `HOME`>: error calling env: env vars are not allowed here"
        );
        assert_eq!(
            r(&c, "{{ build `ID` }}"),
            "ERR template: root:1:3: executing \"root\" at <build `ID`>: error calling build: Error validating build variable: the given variable ID will not be passed into your plugin."
        );
        assert_eq!(
            r(&c, "{{ build_name }}"),
            "ERR template: root:1:3: executing \"root\" at <build_name>: error calling build_name: build_name not available"
        );
        assert_eq!(
            r(&c, "{{ clean_resource_name `a` }}"),
            "ERR template: root:1: function \"clean_resource_name\" not defined"
        );
        assert_eq!(
            r(&c, "{{ isotime \"a\" \"b\" }}"),
            "ERR template: root:1:3: executing \"root\" at <isotime \"a\" \"b\">: error calling isotime: too many values, 1 needed: [a b]"
        );
        assert_eq!(
            r(&c, "n {{ split \"a,b\" \",\" 5 }}"),
            "ERR template: root:1:5: executing \"root\" at <split \"a,b\" \",\" 5>: error calling split: the substring 5 was unavailable using the separator value, ,, only 2 values were found"
        );
        assert_eq!(
            r(&c, "{{ vault `a` `b` }}"),
            "ERR template: root:1:3: executing \"root\" at <vault `a` `b`>: error calling vault: Vault vars are only allowed in the variables section"
        );
        assert!(
            r(&c, "{{ aws_secretsmanager `x` }}")
                .contains("AWS Secrets Manager is only allowed in the variables section")
        );
        assert!(r(&c, "{{ consul_key `a` }}").contains("consul_key is not allowed here"));
        assert!(r(&c, "{{ sed `a` `b` }}").contains("template function `sed` is deprecated"));
    }

    #[test]
    fn long_error_contexts_are_printed_whole_like_go() {
        let c = cx();
        assert_eq!(
            r(&c, "{{ split (user `list`) \",\" 9 }}"),
            "ERR template: root:1:3: executing \"root\" at <split (user `list`) \",\" 9>: error calling split: the substring 9 was unavailable using the separator value, ,, only 3 values were found"
        );
        assert_eq!(
            r(&c, "{{ .Foo | upper }}"),
            "ERR template: root:1:10: executing \"root\" at <upper>: invalid value; expected string"
        );
    }

    #[test]
    fn variables_context() {
        let mut c = cx();
        c.in_variables = true;
        unsafe_env_free_check(&c);
        assert!(
            r(&c, "{{ user `nope` }}")
                .ends_with("error calling user: Error: variable not set: nope")
        );
        assert!(r(&c, "{{ aws_secretsmanager `x` }}").contains("not supported by bakery"));
        assert!(r(&c, "{{ vault `a` `b` }}").contains("not supported by bakery"));
    }

    fn unsafe_env_free_check(c: &FuncContext) {
        // PATH is set in every test environment; reading it needs no mutation.
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(r(c, "{{ env `PATH` }}"), path);
    }

    #[test]
    fn amazon_context_and_clean_names() {
        let mut c = cx();
        c.amazon = true;
        assert_eq!(
            r(&c, "{{ clean_resource_name \"a:b/c*d~é\" }}"),
            "a-b/c-d---"
        );
        let f = PackerFuncs::new(&c);
        assert_eq!(
            render("{{ user `a` | clean_ami_name }}", &f, &Value::Missing).unwrap(),
            "Aval"
        );
        assert_eq!(f.warnings.borrow().len(), 1);
    }

    #[test]
    fn build_placeholders_and_values() {
        let mut c = cx();
        c.build_data =
            BuildData::Placeholders(AMAZON_BUILD_KEYS.iter().map(|s| s.to_string()).collect());
        assert_eq!(r(&c, "{{ build `SourceAMIName` }}"), "{{.SourceAMIName}}");
        assert!(r(&c, "{{ build `Nope` }}").ends_with("loaded data, but couldnt find Nope in it."));
        c.build_data = BuildData::Values(BTreeMap::from([("ID".into(), "i-1".into())]));
        assert_eq!(r(&c, "{{ build `ID` }}"), "i-1");
    }

    #[test]
    fn go_replace_and_split_edges() {
        assert_eq!(go_replace("abc", "", "-", -1).unwrap(), "-a-b-c-");
        assert_eq!(go_replace("abc", "", "-", 2).unwrap(), "-a-bc");
        assert_eq!(go_split("a,b,", ","), ["a", "b", ""]);
        assert_eq!(go_split("ab", ""), ["a", "b"]);
    }
}
