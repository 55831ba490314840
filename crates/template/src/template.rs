//! The raw template: Packer's legacy JSON format parsed into builders,
//! provisioners, post-processor chains, variables and the other root keys,
//! with every structural error collected rather than stopping at the first,
//! in Packer's wording.

use crate::decode::{Decoder, Fields, suggest};
use crate::diagnostics::{Diagnostic, Diagnostics, Source};
use crate::json::{self, Json, Member, Pos, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A parsed template, before variables are resolved.
#[derive(Debug, Clone)]
pub struct Template {
    /// Absolute path of the template file.
    pub path: PathBuf,
    pub source: Arc<Source>,
    pub description: Option<String>,
    pub min_packer_version: Option<(String, Pos)>,
    /// Root keys starting with `_`.
    pub comments: BTreeMap<String, String>,
    /// In file order.
    pub variables: Vec<VariableDef>,
    pub sensitive_variables: Vec<String>,
    pub builders: Vec<BuilderDef>,
    pub provisioners: Vec<ProvisionerDef>,
    pub error_cleanup_provisioner: Option<ProvisionerDef>,
    /// Each element is one chain.
    pub post_processors: Vec<Vec<PostProcessorDef>>,
    /// Accepted and ignored, as Packer does.
    pub push: Option<Json>,
}

#[derive(Debug, Clone)]
pub struct VariableDef {
    pub name: String,
    /// None: declared `null`, so required.
    pub default: Option<String>,
    pub pos: Pos,
}

impl VariableDef {
    pub fn required(&self) -> bool {
        self.default.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct BuilderDef {
    /// 1-based position in `builders`.
    pub index: usize,
    /// The raw (uninterpolated) name; defaults to the type.
    pub name: String,
    pub builder_type: String,
    /// The configuration without `name` and `type`.
    pub config: Vec<Member>,
    pub pos: Pos,
    /// Position of the `name` value, when given.
    pub name_pos: Option<Pos>,
}

#[derive(Debug, Clone)]
pub struct ProvisionerDef {
    /// 1-based position in `provisioners` (0 for the error-cleanup one).
    pub index: usize,
    pub provisioner_type: String,
    pub only: Vec<String>,
    pub except: Vec<String>,
    /// Per raw build name, a partial configuration merged over `config`.
    pub overrides: Vec<(String, Json, Pos)>,
    pub pause_before: Option<Duration>,
    /// Kept as a string: Packer renders it, then parses an integer.
    pub max_retries: Option<String>,
    pub timeout: Option<Duration>,
    pub config: Vec<Member>,
    pub pos: Pos,
}

impl ProvisionerDef {
    /// Packer's OnlyExcept.Skip, on the raw build name.
    pub fn skips(&self, raw_build_name: &str) -> bool {
        skip(&self.only, &self.except, raw_build_name)
    }

    pub fn label(&self) -> String {
        if self.index == 0 {
            format!("error-cleanup-provisioner ({})", self.provisioner_type)
        } else {
            format!("provisioner {} ({})", self.index, self.provisioner_type)
        }
    }
}

#[derive(Debug, Clone)]
pub struct PostProcessorDef {
    /// 1-based chain and position in the chain.
    pub index: (usize, usize),
    pub post_processor_type: String,
    /// Defaults to the type.
    pub name: String,
    pub only: Vec<String>,
    pub except: Vec<String>,
    pub keep_input_artifact: Option<bool>,
    pub config: Vec<Member>,
    pub pos: Pos,
}

impl PostProcessorDef {
    pub fn skips(&self, raw_build_name: &str) -> bool {
        skip(&self.only, &self.except, raw_build_name)
    }

    pub fn label(&self) -> String {
        format!(
            "post-processor {}.{} ({})",
            self.index.0, self.index.1, self.post_processor_type
        )
    }
}

fn skip(only: &[String], except: &[String], name: &str) -> bool {
    if !only.is_empty() {
        return !only.iter().any(|o| o == name);
    }
    except.iter().any(|e| e == name)
}

const ROOT_KEYS: &[&str] = &[
    "builders",
    "description",
    "error-cleanup-provisioner",
    "min_packer_version",
    "post-processors",
    "provisioners",
    "push",
    "sensitive-variables",
    "variables",
];

/// Reads and parses a template file.
pub fn parse_file(path: &Path) -> Result<Template, Diagnostics> {
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostics::from(
            Diagnostic::error(format!("cannot read template: {}", io_message(&e))).in_file(path),
        )
    })?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let abs = absolute(path);
    parse_text(&abs, path, text)
}

/// Parses template text. `shown_path` is used in diagnostics, `abs_path`
/// for `template_dir`.
pub fn parse_text(
    abs_path: &Path,
    shown_path: &Path,
    text: String,
) -> Result<Template, Diagnostics> {
    let source = Arc::new(Source::new(shown_path, text));
    let parsed = match json::parse(&source.text) {
        Ok(p) => p,
        Err(e) => {
            return Err(Diagnostics::from(
                Diagnostic::error(format!("error parsing JSON: {}", e.message)).at(&source, e.pos),
            ));
        }
    };
    let mut diags = Diagnostics::new();
    for d in &parsed.duplicates {
        diags.push(
            Diagnostic::error(format!(
                "template has duplicate field: {} (first defined at line {}, column {}); Packer rejects duplicate keys instead of keeping the last one",
                d.key, d.first.line, d.first.col
            ))
            .at(&source, d.pos),
        );
    }
    let mut d = Decoder::new(&source, "");
    // Root keys are decoded strictly, as Packer's root decoder is not weak.
    d.weak = false;
    d.split_strings = false;
    let mut tpl = Template {
        path: abs_path.to_path_buf(),
        source: source.clone(),
        description: None,
        min_packer_version: None,
        comments: BTreeMap::new(),
        variables: Vec::new(),
        sensitive_variables: Vec::new(),
        builders: Vec::new(),
        provisioners: Vec::new(),
        error_cleanup_provisioner: None,
        post_processors: Vec::new(),
        push: None,
    };
    let root = &parsed.value;
    let Some(members) = root.as_object() else {
        d.err(
            root.pos,
            format!("a template must be a JSON object, got '{}'", root.go_kind()),
        );
        diags.extend(d.diags);
        return Err(diags);
    };
    let mut f = Fields::new(members, root.pos, "");
    if let Some(v) = f.take("min_packer_version")
        && let Some(s) = d.to_string(v, "min_packer_version")
    {
        tpl.min_packer_version = Some((s, v.pos));
    }
    if let Some(v) = f.take("description") {
        tpl.description = d.to_string(v, "description");
    }
    if let Some(v) = f.take("variables") {
        parse_variables(&mut d, v, &mut tpl);
    }
    if let Some(v) = f.take("sensitive-variables")
        && let Some(list) = d.to_strings(v, "sensitive-variables")
    {
        tpl.sensitive_variables = list;
    }
    if let Some(v) = f.take("builders") {
        parse_builders(&mut d, v, &mut tpl);
    }
    if let Some(v) = f.take("provisioners")
        && let Some(items) = array(&mut d, v, "provisioners")
    {
        for (i, item) in items.iter().enumerate() {
            if let Some(p) =
                parse_provisioner(&mut d, item, i + 1, &format!("provisioner {}", i + 1))
            {
                tpl.provisioners.push(p);
            }
        }
    }
    if let Some(v) = f.take("error-cleanup-provisioner") {
        tpl.error_cleanup_provisioner =
            parse_provisioner(&mut d, v, 0, "On Error Cleanup Provisioner error");
    }
    if let Some(v) = f.take("post-processors") {
        parse_post_processors(&mut d, v, &mut tpl);
    }
    if let Some(v) = f.take("push") {
        match &v.value {
            Value::Object(_) => tpl.push = Some(v.clone()),
            _ => d.err(
                v.pos,
                format!("'push' expected a map, got '{}'", v.go_kind()),
            ),
        }
    }
    for m in f.unused() {
        if m.key.starts_with('_') {
            match m.value.as_str() {
                Some(s) => {
                    tpl.comments.insert(m.key.clone(), s.to_string());
                }
                None => d.err(
                    m.value.pos,
                    format!(
                        "Failed to cast root level comment value in comment \"{}\" to string.",
                        m.key
                    ),
                ),
            }
            continue;
        }
        let mut msg = format!("Unknown root level key in template: '{}'", m.key);
        if let Some(s) = suggest(&m.key, ROOT_KEYS.iter().copied()) {
            msg.push_str(&format!("; did you mean '{s}'?"));
        }
        d.err(m.key_pos, msg);
    }
    diags.extend(d.diags);
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(tpl)
}

fn array<'a>(d: &mut Decoder, v: &'a Json, name: &str) -> Option<&'a [Json]> {
    match &v.value {
        Value::Array(a) => Some(a),
        _ => {
            d.err(
                v.pos,
                format!(
                    "'{name}': source data must be an array or slice, got {}",
                    v.go_kind()
                ),
            );
            None
        }
    }
}

fn parse_variables(d: &mut Decoder, v: &Json, tpl: &mut Template) {
    let Some(members) = v.as_object() else {
        d.err(
            v.pos,
            format!("'variables' expected a map, got '{}'", v.go_kind()),
        );
        return;
    };
    for m in members {
        let default = match &m.value.value {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => {
                d.err(
                    m.value.pos,
                    format!(
                        "variable {}: '' expected type 'string', got unconvertible type '{}', value: '{}'; variable values are strings (quote it)",
                        m.key,
                        m.value.go_type(),
                        crate::decode::go_v(&m.value)
                    ),
                );
                continue;
            }
        };
        // A duplicate key was already reported; keep the last, like Go.
        tpl.variables.retain(|x| x.name != m.key);
        tpl.variables.push(VariableDef {
            name: m.key.clone(),
            default,
            pos: m.key_pos,
        });
    }
}

fn parse_builders(d: &mut Decoder, v: &Json, tpl: &mut Template) {
    let Some(items) = array(d, v, "builders") else {
        return;
    };
    let mut weak = Decoder::new(d.source, "");
    weak.split_strings = false;
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let Some(members) = item.as_object() else {
            d.err(
                item.pos,
                format!("builder {n}: '' expected a map, got '{}'", item.go_kind()),
            );
            continue;
        };
        let mut f = Fields::new(members, item.pos, "");
        let name = f
            .take("name")
            .and_then(|v| weak.to_string(v, "name"))
            .unwrap_or_default();
        let builder_type = f
            .take("type")
            .and_then(|v| weak.to_string(v, "type"))
            .unwrap_or_default();
        let config: Vec<Member> = f.unused().cloned().collect();
        if builder_type.is_empty() {
            d.err(item.pos, format!("builder {n}: missing 'type'"));
            continue;
        }
        let name = if name.is_empty() {
            builder_type.clone()
        } else {
            name
        };
        if tpl.builders.iter().any(|b| b.name == name) {
            let pos = members
                .iter()
                .find(|m| m.key == "name")
                .map(|m| m.value.pos)
                .unwrap_or(item.pos);
            d.err(
                pos,
                format!("builder {n}: builder with name '{name}' already exists"),
            );
            continue;
        }
        let name_pos = members
            .iter()
            .find(|m| m.key == "name")
            .map(|m| m.value.pos);
        tpl.builders.push(BuilderDef {
            index: n,
            name,
            builder_type,
            config,
            pos: item.pos,
            name_pos,
        });
    }
    d.diags.extend(weak.diags);
}

fn parse_provisioner(
    d: &mut Decoder,
    v: &Json,
    index: usize,
    label: &str,
) -> Option<ProvisionerDef> {
    let Some(members) = v.as_object() else {
        d.err(
            v.pos,
            format!(
                "{label}: Error decoding provisioner: '' expected a map, got '{}'",
                v.go_kind()
            ),
        );
        return None;
    };
    // Packer decodes the meta keys weakly, without splitting strings.
    let mut w = Decoder::new(d.source, format!("{label}: "));
    w.split_strings = false;
    let mut f = Fields::new(members, v.pos, "");
    let provisioner_type = f
        .take("type")
        .and_then(|t| w.to_string(t, "type"))
        .unwrap_or_default();
    let only = w.strings(&mut f, "only");
    let except = w.strings(&mut f, "except");
    let mut overrides = Vec::new();
    if let Some(o) = f.take("override") {
        match &o.value {
            Value::Object(m) => {
                for mem in m {
                    overrides.push((mem.key.clone(), mem.value.clone(), mem.key_pos));
                }
            }
            _ => w.err(
                o.pos,
                format!("'override' expected a map, got '{}'", o.go_kind()),
            ),
        }
    }
    let pause_before = w.duration(&mut f, "pause_before");
    let max_retries = w.string(&mut f, "max_retries").filter(|s| !s.is_empty());
    let timeout = w.duration(&mut f, "timeout");
    let config: Vec<Member> = f.unused().cloned().collect();
    let had_errors = w.has_errors();
    d.diags.extend(w.diags);
    if had_errors {
        return None;
    }
    if provisioner_type.is_empty() {
        d.err(v.pos, format!("{label}: Provisioner missing 'type'"));
        return None;
    }
    Some(ProvisionerDef {
        index,
        provisioner_type,
        only,
        except,
        overrides,
        pause_before,
        max_retries,
        timeout,
        config,
        pos: v.pos,
    })
}

fn parse_post_processors(d: &mut Decoder, v: &Json, tpl: &mut Template) {
    let Some(items) = array(d, v, "post-processors") else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let configs: Vec<Json> = match &item.value {
            Value::String(s) => vec![type_only(item.pos, s)],
            Value::Object(_) => vec![item.clone()],
            Value::Array(inner) => {
                let mut out = Vec::new();
                let mut bad = false;
                for (j, x) in inner.iter().enumerate() {
                    match &x.value {
                        Value::String(s) => out.push(type_only(x.pos, s)),
                        Value::Object(_) => out.push(x.clone()),
                        Value::Array(_) => {
                            d.err(
                                x.pos,
                                format!("post-processor {n}.{}: sequence not allowed to be nested in a sequence", j + 1),
                            );
                            bad = true;
                        }
                        _ => {
                            d.err(
                                x.pos,
                                format!("post-processor {n}.{}: unknown format", j + 1),
                            );
                            bad = true;
                        }
                    }
                }
                if bad {
                    continue;
                }
                out
            }
            _ => {
                d.err(item.pos, format!("post-processor {n}: bad format"));
                continue;
            }
        };
        let mut chain = Vec::new();
        for (j, c) in configs.iter().enumerate() {
            let label = format!("post-processor {n}.{}", j + 1);
            let members = c.as_object().unwrap_or_default();
            // Packer decodes post-processor meta keys strictly (not weak).
            let mut s = Decoder::new(d.source, format!("{label}: "));
            s.weak = false;
            s.split_strings = false;
            let mut f = Fields::new(members, c.pos, "");
            let pp_type = f
                .take("type")
                .and_then(|t| s.to_string(t, "type"))
                .unwrap_or_default();
            let name = f
                .take("name")
                .and_then(|t| s.to_string(t, "name"))
                .unwrap_or_default();
            let only = s.strings(&mut f, "only");
            let except = s.strings(&mut f, "except");
            let keep_input_artifact = f
                .take("keep_input_artifact")
                .and_then(|k| s.to_bool(k, "keep_input_artifact"));
            let config: Vec<Member> = f.unused().cloned().collect();
            let had_errors = s.has_errors();
            d.diags.extend(s.diags);
            if had_errors {
                continue;
            }
            if pp_type.is_empty() {
                d.err(c.pos, format!("{label}: type is required"));
                continue;
            }
            let name = if name.is_empty() {
                pp_type.clone()
            } else {
                name
            };
            chain.push(PostProcessorDef {
                index: (n, j + 1),
                post_processor_type: pp_type,
                name,
                only,
                except,
                keep_input_artifact,
                config,
                pos: c.pos,
            });
        }
        tpl.post_processors.push(chain);
    }
}

fn type_only(pos: Pos, t: &str) -> Json {
    Json::new(
        pos,
        Value::Object(vec![Member {
            key: "type".to_string(),
            key_pos: pos,
            value: Json::new(pos, Value::String(t.to_string())),
        }]),
    )
}

impl Template {
    pub fn builder(&self, name: &str) -> Option<&BuilderDef> {
        self.builders.iter().find(|b| b.name == name)
    }

    pub fn variable(&self, name: &str) -> Option<&VariableDef> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// Packer's `Template.Validate`: at least one builder; `only`, `except`
    /// and `override` name existing (raw) builder names; not both `only`
    /// and `except`.
    pub fn validate(&self) -> Diagnostics {
        let mut diags = Diagnostics::new();
        let src = &self.source;
        if self.builders.is_empty() {
            diags
                .push(Diagnostic::error("at least one builder must be defined").in_file(&src.path));
        }
        let names: Vec<&str> = self.builders.iter().map(|b| b.name.as_str()).collect();
        let check =
            |diags: &mut Diagnostics, label: &str, only: &[String], except: &[String], pos: Pos| {
                if !only.is_empty() && !except.is_empty() {
                    diags.push(
                        Diagnostic::error(format!(
                            "{label}: only one of 'only' or 'except' may be specified"
                        ))
                        .at(src, pos),
                    );
                    return;
                }
                for (kind, list) in [("only", only), ("except", except)] {
                    for n in list {
                        if !names.contains(&n.as_str()) {
                            let mut msg =
                                format!("{label}: '{kind}' specified builder '{n}' not found");
                            if let Some(s) = suggest(n, names.iter().copied()) {
                                msg.push_str(&format!("; did you mean '{s}'?"));
                            }
                            msg.push_str(
                                " (only/except match the raw builder name, before interpolation)",
                            );
                            diags.push(Diagnostic::error(msg).at(src, pos));
                        }
                    }
                }
            };
        for p in &self.provisioners {
            let label = format!("provisioner {}", p.index);
            check(&mut diags, &label, &p.only, &p.except, p.pos);
            for (name, _, pos) in &p.overrides {
                if !names.contains(&name.as_str()) {
                    diags.push(
                        Diagnostic::error(format!("{label}: override '{name}' doesn't exist"))
                            .at(src, *pos),
                    );
                }
            }
        }
        for chain in &self.post_processors {
            for pp in chain {
                let label = format!("post-processor {}.{}", pp.index.0, pp.index.1);
                check(&mut diags, &label, &pp.only, &pp.except, pp.pos);
            }
        }
        diags
    }
}

/// The absolute form of `path` (without resolving symlinks).
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// An I/O error as Go prints it: "open x.json: no such file or directory".
pub fn io_message(e: &std::io::Error) -> String {
    let msg = e.to_string();
    match msg.find(" (os error") {
        Some(i) => msg[..i].to_lowercase(),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Template, Vec<String>> {
        parse_text(
            Path::new("/t/t.json"),
            Path::new("t.json"),
            text.to_string(),
        )
        .map_err(|d| d.0.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn root_keys_comments_and_push() {
        let t = parse(
            r#"{"_comment":"hi","description":"d","min_packer_version":"1.5.0","push":{"name":"x"},
               "variables":{"a":"1","b":null},"sensitive-variables":["a"],
               "builders":[{"type":"amazon-ebs"},{"type":"amazon-ebs","name":"second"}],
               "provisioners":[{"type":"shell","inline":"x","only":"second","pause_before":"10s","max_retries":5}],
               "error-cleanup-provisioner":{"type":"shell-local","inline":["x"]},
               "post-processors":["manifest",{"type":"manifest","name":"m2"},[{"type":"manifest"},"shell-local"]]}"#,
        )
        .unwrap();
        assert_eq!(t.comments["_comment"], "hi");
        assert_eq!(t.variables.len(), 2);
        assert!(t.variables[1].required());
        assert_eq!(t.builders[0].name, "amazon-ebs");
        assert_eq!(t.builders[1].name, "second");
        let p = &t.provisioners[0];
        assert_eq!(p.only, ["second"]);
        assert_eq!(p.pause_before, Some(Duration::from_secs(10)));
        assert_eq!(p.max_retries.as_deref(), Some("5"));
        assert_eq!(p.config.len(), 1);
        assert!(t.error_cleanup_provisioner.is_some());
        let chains: Vec<usize> = t.post_processors.iter().map(Vec::len).collect();
        assert_eq!(chains, [1, 1, 2]);
        assert_eq!(t.post_processors[1][0].name, "m2");
        assert!(t.push.is_some());
        assert!(t.validate().is_empty());
    }

    #[test]
    fn structural_errors_are_all_reported() {
        let errs = parse(
            r#"{"builders":[{"type":"a","name":"x"},{"type":"b","name":"x"},{"name":"y"},5],
               "provisioners":[{"only":"a"},{"type":"shell","pause_before":"zz"}],
               "post-processors":[[["x"]],5,{"name":"y"},{"type":"manifest","only":"a"}],
               "variables":{"n":5}, "foo":1, "buidlers":2, "_c":5}"#,
        )
        .unwrap_err();
        let expected = [
            "variable n: '' expected type 'string', got unconvertible type 'float64', value: '5'; variable values are strings (quote it)",
            "builder 2: builder with name 'x' already exists",
            "builder 3: missing 'type'",
            "builder 4: '' expected a map, got 'float64'",
            "provisioner 1: Provisioner missing 'type'",
            "provisioner 2: error decoding 'pause_before': time: invalid duration \"zz\"",
            "post-processor 1.1: sequence not allowed to be nested in a sequence",
            "post-processor 2: bad format",
            "post-processor 3.1: type is required",
            "post-processor 4.1: 'only': source data must be an array or slice, got string",
            "Unknown root level key in template: 'buidlers'; did you mean 'builders'?",
            "Failed to cast root level comment value in comment \"_c\" to string.",
            "Unknown root level key in template: 'foo'",
        ];
        for e in expected {
            assert!(errs.iter().any(|x| x == e), "missing {e:?} in {errs:#?}");
        }
        assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    }

    #[test]
    fn syntax_error_and_duplicates() {
        let errs = parse("{\n  \"builders\": [\n    {\"type\": \"amazon-ebs\",\n     \"region\": \"us-east-1\"\n     \"ami_name\": \"x\"}\n  ]\n}").unwrap_err();
        assert_eq!(
            errs,
            ["error parsing JSON: invalid character '\"' after object key:value pair"]
        );
        let errs =
            parse(r#"{"builders":[{"type":"amazon-ebs","region":"a","region":"b"}]}"#).unwrap_err();
        assert!(errs[0].starts_with(
            "template has duplicate field: region (first defined at line 1, column 35)"
        ));
    }

    #[test]
    fn validate_only_except_override_on_raw_names() {
        let t = parse(
            r#"{"builders":[{"type":"amazon-ebs","name":"b-{{user `v`}}"}],
                "provisioners":[{"type":"shell","only":["nope"],"except":["x"]},
                                {"type":"shell","override":{"zz":{}}},
                                {"type":"shell","only":["b-{{user `v`}}"]}],
                "post-processors":[{"type":"manifest","only":["q"]}]}"#,
        )
        .unwrap();
        let msgs: Vec<String> = t.validate().0.iter().map(|d| d.message.clone()).collect();
        assert_eq!(
            msgs[0],
            "provisioner 1: only one of 'only' or 'except' may be specified"
        );
        assert_eq!(msgs[1], "provisioner 2: override 'zz' doesn't exist");
        assert!(msgs[2].starts_with("post-processor 1.1: 'only' specified builder 'q' not found"));
        assert_eq!(msgs.len(), 3);
        assert!(!t.provisioners[2].skips("b-{{user `v`}}"));
        assert!(t.provisioners[2].skips("b-x"));
    }

    #[test]
    fn no_builders_is_a_validation_error() {
        let t = parse(r#"{"builders":[]}"#).unwrap();
        assert_eq!(
            t.validate().0[0].message,
            "at least one builder must be defined"
        );
    }
}
