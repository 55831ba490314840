//! Loading a template: parse, variables, per-build decoding of every
//! plugin, validation — every error collected, secrets masked.

use crate::decode::{Decoder, Fields};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::engine::{Template as Engine, Value};
use crate::funcs::{AMAZON_BUILD_KEYS, BASIC_BUILD_KEYS, BuildData, FuncContext, PackerFuncs};
use crate::json::{Json, Member, Value as J};
use crate::render::{error_pos, render_config};
use crate::schema::common::ProvisionerMeta;
use crate::schema::{
    BuilderConfig, PostProcessorConfig, ProvisionerConfig, SUPPORTED_BUILDERS,
    SUPPORTED_POST_PROCESSORS, SUPPORTED_PROVISIONERS, amazon_ebs, ansible, ansible_local, file,
    goss, manifest, shell, shell_local,
};
use crate::secrets::Secrets;
use crate::template::{self, BuilderDef, PostProcessorDef, ProvisionerDef, Template};
use crate::variables;
use crate::version::{PACKER_COMPAT_VERSION, check_min_version};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the command line gives a load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `-var K=V`, in command-line order (they all win over var-files).
    pub vars: Vec<(String, String)>,
    /// `-var-file F`, in order (later files win).
    pub var_files: Vec<PathBuf>,
    /// `-only`: build names (interpolated, as Packer; the raw name works too).
    pub only: Vec<String>,
    /// `-except`: build names, or post-processor names to skip.
    pub except: Vec<String>,
    /// Parse only (`validate -syntax-only`): no variables, no builds.
    pub syntax_only: bool,
}

/// A loaded template: what the build pipeline runs.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The raw parsed template.
    pub template: Template,
    /// The builds selected by `-only`/`-except`, in template order.
    pub builds: Vec<Build>,
    pub warnings: Vec<Diagnostic>,
    /// Masks sensitive values in anything printed.
    pub secrets: Secrets,
    /// Resolved user variables (declared and given).
    pub variables: BTreeMap<String, String>,
}

/// One build: a builder with its provisioners and post-processors.
#[derive(Debug, Clone)]
pub struct Build {
    /// The raw name, as provisioner/post-processor only/except match it.
    pub name: String,
    /// The name with variables rendered (`PACKER_BUILD_NAME`, UI).
    pub rendered_name: String,
    pub builder_type: String,
    pub builder: BuilderConfig,
    /// Filtered by only/except for this build, `override` merged.
    pub provisioners: Vec<ProvisionerConfig>,
    pub error_cleanup_provisioner: Option<ProvisionerConfig>,
    /// Chains, filtered; empty chains dropped.
    pub post_processors: Vec<Vec<PostProcessorConfig>>,
}

/// Parses, resolves variables, decodes and validates every selected build.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let tpl = template::parse_file(path)?;
    load_template(tpl, opts)
}

/// A template with its variables resolved (what `console` needs).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub template: Template,
    pub variables: BTreeMap<String, String>,
    pub secrets: Secrets,
    pub warnings: Diagnostics,
}

/// Parses and resolves variables only: the template-level checks (Packer's
/// `Core.Validate`), required variables, defaults, var-files, `-var`.
pub fn resolve_variables(path: &Path, opts: &LoadOptions) -> Result<Resolved, Diagnostics> {
    prepare(template::parse_file(path)?, opts)
}

fn prepare(tpl: Template, opts: &LoadOptions) -> Result<Resolved, Diagnostics> {
    let mut secrets = Secrets::new();
    let mut diags = tpl.validate();
    if let Some((min, pos)) = &tpl.min_packer_version
        && let Err(e) = check_min_version(min)
    {
        diags.push(Diagnostic::error(e).at(&tpl.source, *pos));
    }
    let given = variables::merge_inputs(&opts.vars, &opts.var_files, &mut diags);
    // Sensitive values given on the command line are secret from the start.
    for name in &tpl.sensitive_variables {
        if let Some(v) = given.get(name) {
            secrets.add(v.clone());
        }
        if let Some(Some(d)) = tpl.variable(name).map(|v| v.default.clone()) {
            secrets.add(d);
        }
    }
    variables::check_required(&tpl, &given, &mut diags);
    if diags.has_errors() {
        return Err(mask(diags, &secrets));
    }
    let base = base_context(&tpl);
    let vars = variables::resolve(&tpl, &given, &base, &mut diags);
    for name in &tpl.sensitive_variables {
        if let Some(v) = vars.get(name) {
            secrets.add(v.clone());
        }
    }
    let diags = mask(diags, &secrets);
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Resolved {
        template: tpl,
        variables: vars,
        secrets,
        warnings: diags,
    })
}

/// The interpolation context every plugin starts from.
fn base_context(tpl: &Template) -> FuncContext {
    FuncContext {
        template_path: Some(tpl.path.clone()),
        packer_version: Some(PACKER_COMPAT_VERSION.to_string()),
        ..Default::default()
    }
}

/// [`load`] for an already parsed template.
pub fn load_template(tpl: Template, opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    if opts.syntax_only {
        return Ok(Loaded {
            template: tpl,
            builds: Vec::new(),
            warnings: Vec::new(),
            secrets: Secrets::new(),
            variables: BTreeMap::new(),
        });
    }
    let Resolved {
        template: tpl,
        variables: vars,
        mut secrets,
        warnings: mut diags,
    } = prepare(tpl, opts)?;
    let base = FuncContext {
        user_vars: vars.clone(),
        ..base_context(&tpl)
    };

    let mut builds = Vec::new();
    let mut selected_any = false;
    // Raw and rendered names, for the -only check below.
    let mut names: Vec<String> = Vec::new();
    for b in &tpl.builders {
        let Some(rendered_name) = render_build_name(&tpl, b, &base, &mut diags) else {
            continue;
        };
        names.push(b.name.clone());
        names.push(rendered_name.clone());
        let selected = |list: &[String]| list.iter().any(|n| *n == rendered_name || *n == b.name);
        if (!opts.only.is_empty() && !selected(&opts.only)) || selected(&opts.except) {
            continue;
        }
        selected_any = true;
        if let Some(build) = decode_build(
            &tpl,
            b,
            rendered_name,
            &base,
            opts,
            &mut diags,
            &mut secrets,
        ) {
            builds.push(build);
        }
    }
    for n in &opts.only {
        if !names.contains(n) {
            diags.push(
                Diagnostic::warning(format!(
                    "-only: no build named '{n}' (builds: {})",
                    tpl.builders
                        .iter()
                        .map(|b| b.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .in_file(&tpl.source.path),
            );
        }
    }
    if !selected_any && !tpl.builders.is_empty() {
        diags.push(
            Diagnostic::warning("-only/-except selected no build: nothing to validate")
                .in_file(&tpl.source.path),
        );
    }
    let diags = mask(diags, &secrets);
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Loaded {
        template: tpl,
        builds,
        warnings: diags.0,
        secrets,
        variables: vars,
    })
}

/// When a configuration failed to render, Packer stops there; bakery still
/// reports its unknown keys (decoding the raw values into a scratch decoder
/// and keeping only those diagnostics), so every error shows at once.
fn unknown_keys_only(
    tpl: &Template,
    prefix: &str,
    members: &[Member],
    pos: crate::json::Pos,
    d: &mut Decoder,
    decode: impl FnOnce(&mut Decoder, &mut Fields),
) {
    let mut scratch = Decoder::new(&tpl.source, prefix.to_string());
    let mut f = Fields::new(members, pos, "");
    decode(&mut scratch, &mut f);
    scratch.finish(&f);
    d.diags.extend(
        scratch
            .diags
            .into_iter()
            .filter(|x| x.is_error() && x.message.contains("unknown configuration key")),
    );
}

fn mask(diags: Diagnostics, secrets: &Secrets) -> Diagnostics {
    if secrets.is_empty() {
        return diags;
    }
    let mut out = Diagnostics::new();
    for mut d in diags.0 {
        d.message = secrets.mask(&d.message);
        d.snippet = d.snippet.map(|s| secrets.mask(&s));
        out.push(d);
    }
    out
}

/// Packer renders build names with the user variables before selecting
/// builds with `-only`/`-except`.
fn render_build_name(
    tpl: &Template,
    b: &BuilderDef,
    base: &FuncContext,
    diags: &mut Diagnostics,
) -> Option<String> {
    if !b.name.contains("{{") {
        return Some(b.name.clone());
    }
    let funcs = PackerFuncs::new(base);
    match Engine::parse(&b.name, &funcs).and_then(|e| e.execute(&funcs, &Value::Missing)) {
        Ok(n) => Some(n),
        Err(e) => {
            let pos = error_pos(&tpl.source, b.name_pos.unwrap_or(b.pos), &b.name, &e);
            diags.push(
                Diagnostic::error(format!("Error interpolating builder '{}': {e}", b.name))
                    .at(&tpl.source, pos),
            );
            None
        }
    }
}

fn unsupported(kind: &str, t: &str, supported: &[&str]) -> String {
    format!(
        "unsupported {kind} type '{t}': bakery supports {}{}",
        supported.join(", "),
        if kind == "builder" {
            " (use -only/-except to skip this build)"
        } else {
            ""
        }
    )
}

fn decode_build(
    tpl: &Template,
    b: &BuilderDef,
    rendered_name: String,
    base: &FuncContext,
    opts: &LoadOptions,
    diags: &mut Diagnostics,
    secrets: &mut Secrets,
) -> Option<Build> {
    let prefix = if rendered_name == b.builder_type {
        format!("builder {} ({}): ", b.index, b.builder_type)
    } else {
        format!(
            "builder {} \"{}\" ({}): ",
            b.index, rendered_name, b.builder_type
        )
    };
    if !SUPPORTED_BUILDERS.contains(&b.builder_type.as_str()) {
        diags.push(
            Diagnostic::error(format!(
                "{prefix}{}",
                unsupported("builder", &b.builder_type, SUPPORTED_BUILDERS)
            ))
            .at(&tpl.source, b.pos),
        );
        return None;
    }
    let cx = Arc::new(FuncContext {
        build_name: Some(rendered_name.clone()),
        build_type: Some(b.builder_type.clone()),
        amazon: true,
        build_data: BuildData::None,
        ..base.clone()
    });
    let mut d = Decoder::new(&tpl.source, prefix.clone());
    let builder = match render_config(&b.config, amazon_ebs::LATE_FIELDS, &cx, &mut d) {
        Some(members) => {
            let mut f = Fields::new(&members, b.pos, "");
            let cfg = amazon_ebs::decode(&mut d, &mut f, &cx);
            d.finish(&f);
            amazon_ebs::support::check_present(&mut d);
            amazon_ebs::validate(&cfg, &mut d, b.pos);
            for s in [
                &cfg.access.access_key,
                &cfg.access.secret_key,
                &cfg.access.token,
            ]
            .into_iter()
            .flatten()
            {
                secrets.add(s.clone());
            }
            Some(BuilderConfig::AmazonEbs(Box::new(cfg)))
        }
        None => {
            unknown_keys_only(tpl, &prefix, &b.config, b.pos, &mut d, |d, f| {
                amazon_ebs::decode(d, f, &cx);
            });
            None
        }
    };
    diags.extend(d.diags);

    // Provisioners and post-processors see placeholders for build data.
    let mut keys: Vec<String> = BASIC_BUILD_KEYS.iter().map(|s| s.to_string()).collect();
    if b.builder_type.starts_with("amazon-") {
        keys.extend(AMAZON_BUILD_KEYS.iter().map(|s| s.to_string()));
    }
    let pcx = Arc::new(FuncContext {
        build_name: Some(rendered_name.clone()),
        build_type: Some(b.builder_type.clone()),
        amazon: false,
        build_data: BuildData::Placeholders(keys.into_iter().collect()),
        ..base.clone()
    });
    let mut provisioners = Vec::new();
    for p in &tpl.provisioners {
        if p.skips(&b.name) {
            continue;
        }
        if let Some(pc) = decode_provisioner(tpl, p, &b.name, &rendered_name, &pcx, diags) {
            provisioners.push(pc);
        }
    }
    let error_cleanup_provisioner = tpl
        .error_cleanup_provisioner
        .as_ref()
        .and_then(|p| decode_provisioner(tpl, p, &b.name, &rendered_name, &pcx, diags));
    let mut post_processors = Vec::new();
    for chain in &tpl.post_processors {
        let mut current = Vec::new();
        for pp in chain {
            if pp.skips(&b.name) {
                continue;
            }
            // -except naming a post-processor skips it and the rest of its chain.
            if opts.except.iter().any(|e| !e.is_empty() && *e == pp.name) {
                break;
            }
            if let Some(c) = decode_post_processor(tpl, pp, &pcx, diags) {
                current.push(c);
            }
        }
        if !current.is_empty() {
            post_processors.push(current);
        }
    }
    Some(Build {
        name: b.name.clone(),
        rendered_name,
        builder_type: b.builder_type.clone(),
        builder: builder?,
        provisioners,
        error_cleanup_provisioner,
        post_processors,
    })
}

/// The provisioner's configuration with the build's `override` merged in.
fn merged_config(p: &ProvisionerDef, raw_build_name: &str, d: &mut Decoder) -> Vec<Member> {
    let mut members = p.config.clone();
    for (name, value, pos) in &p.overrides {
        if name != raw_build_name {
            continue;
        }
        let Some(over) = value.as_object() else {
            d.err(
                *pos,
                format!(
                    "override '{name}' must be an object, got '{}'",
                    value.go_kind()
                ),
            );
            continue;
        };
        for m in over {
            match members.iter_mut().find(|x| x.key == m.key) {
                // A null sets nothing (mapstructure leaves a field alone on nil), as in Packer.
                Some(_) if m.value.is_null() => {}
                Some(existing) => existing.value = merge_json(&existing.value, &m.value),
                None => members.push(m.clone()),
            }
        }
    }
    members
}

/// Objects merge key by key (as mapstructure decodes twice into one map);
/// anything else is replaced.
fn merge_json(base: &Json, over: &Json) -> Json {
    match (&base.value, &over.value) {
        (J::Object(a), J::Object(b)) => {
            let mut out = a.clone();
            for m in b {
                match out.iter_mut().find(|x| x.key == m.key) {
                    Some(_) if m.value.is_null() => {}
                    Some(x) => x.value = merge_json(&x.value, &m.value),
                    None => out.push(m.clone()),
                }
            }
            Json::new(over.pos, J::Object(out))
        }
        _ => over.clone(),
    }
}

/// Decodes and checks provisioner `p` as prepared for one build (its `override` for that build merged in):
/// its errors name the build, as Packer's "Failed to prepare build" does.
fn decode_provisioner(
    tpl: &Template,
    p: &ProvisionerDef,
    raw_build_name: &str,
    build_name: &str,
    cx: &Arc<FuncContext>,
    diags: &mut Diagnostics,
) -> Option<ProvisionerConfig> {
    let prefix = format!("build {build_name:?}: {}: ", p.label());
    let t = p.provisioner_type.as_str();
    if !SUPPORTED_PROVISIONERS.contains(&t) {
        diags.push(
            Diagnostic::error(format!(
                "{prefix}{}",
                unsupported("provisioner", t, SUPPORTED_PROVISIONERS)
            ))
            .at(&tpl.source, p.pos),
        );
        return None;
    }
    let mut d = Decoder::new(&tpl.source, prefix.clone());
    let max_retries = match &p.max_retries {
        None => 0,
        Some(raw) => {
            let funcs = PackerFuncs::new(cx);
            match Engine::parse(raw, &funcs).and_then(|e| e.execute(&funcs, &Value::Missing)) {
                Err(e) => {
                    d.err(p.pos, format!("failed to interpolate `max_retries`: {e}"));
                    0
                }
                Ok(s) => match s.trim().parse::<i64>() {
                    Ok(n) if n >= 0 => u32::try_from(n).unwrap_or(u32::MAX),
                    Ok(_) => 0,
                    Err(_) => {
                        d.err(
                            p.pos,
                            format!("`max_retries` must be a valid integer: strconv.Atoi: parsing \"{s}\": invalid syntax"),
                        );
                        0
                    }
                },
            }
        }
    };
    let meta = ProvisionerMeta {
        pause_before: p.pause_before.filter(|t| !t.is_zero()),
        max_retries,
        timeout: p.timeout.filter(|t| !t.is_zero()),
    };
    let members = merged_config(p, raw_build_name, &mut d);
    let late: &[&str] = match t {
        "shell" => shell::LATE_FIELDS,
        "shell-local" => shell_local::LATE_FIELDS,
        "ansible" => ansible::LATE_FIELDS,
        _ => &[],
    };
    let rendered = render_config(&members, late, cx, &mut d);
    if rendered.is_none() {
        unknown_keys_only(tpl, &prefix, &members, p.pos, &mut d, |d, f| {
            let meta = ProvisionerMeta::default();
            match t {
                "shell" => {
                    let _ = shell::decode(d, f, cx, meta);
                }
                "file" => {
                    let _ = file::decode(d, f, meta);
                }
                "ansible" => {
                    let _ = ansible::decode(d, f, cx, meta);
                }
                "ansible-local" => {
                    let _ = ansible_local::decode(d, f, meta);
                }
                "goss" => {
                    let _ = goss::decode(d, f, meta);
                }
                _ => {
                    let _ = shell_local::decode(d, f, cx, meta);
                }
            }
        });
    }
    let out = rendered.map(|members| {
        let mut f = Fields::new(&members, p.pos, "");

        match t {
            "shell" => {
                let c = shell::decode(&mut d, &mut f, cx, meta);
                d.finish(&f);
                shell::validate(&c, &mut d, p.pos);
                ProvisionerConfig::Shell(c)
            }
            "file" => {
                let c = file::decode(&mut d, &mut f, meta);
                d.finish(&f);
                file::validate(&c, &mut d, p.pos);
                ProvisionerConfig::File(c)
            }
            "ansible" => {
                let c = ansible::decode(&mut d, &mut f, cx, meta);
                d.finish(&f);
                ansible::validate(&c, &mut d, p.pos);
                ProvisionerConfig::Ansible(Box::new(c))
            }
            "ansible-local" => {
                let c = ansible_local::decode(&mut d, &mut f, meta);
                d.finish(&f);
                ansible_local::validate(&c, &mut d, p.pos);
                ProvisionerConfig::AnsibleLocal(Box::new(c))
            }
            "goss" => {
                let c = goss::decode(&mut d, &mut f, meta);
                d.finish(&f);
                goss::validate(&c, &mut d, p.pos);
                ProvisionerConfig::Goss(Box::new(c))
            }
            _ => {
                let c = shell_local::decode(&mut d, &mut f, cx, meta);
                d.finish(&f);
                shell_local::validate(&c, &mut d, p.pos);
                ProvisionerConfig::ShellLocal(c)
            }
        }
    });
    let failed = d.has_errors();
    diags.extend(d.diags);
    if failed { None } else { out }
}

fn decode_post_processor(
    tpl: &Template,
    pp: &PostProcessorDef,
    cx: &Arc<FuncContext>,
    diags: &mut Diagnostics,
) -> Option<PostProcessorConfig> {
    let prefix = format!("{}: ", pp.label());
    let t = pp.post_processor_type.as_str();
    if !SUPPORTED_POST_PROCESSORS.contains(&t) {
        diags.push(
            Diagnostic::error(format!(
                "{prefix}{}",
                unsupported("post-processor", t, SUPPORTED_POST_PROCESSORS)
            ))
            .at(&tpl.source, pp.pos),
        );
        return None;
    }
    let mut d = Decoder::new(&tpl.source, prefix);
    let late: &[&str] = if t == "shell-local" {
        shell_local::LATE_FIELDS
    } else {
        &[]
    };
    let out = render_config(&pp.config, late, cx, &mut d).map(|members| {
        let mut f = Fields::new(&members, pp.pos, "");
        if t == "manifest" {
            let mut c = manifest::decode(&mut d, &mut f, cx);
            d.finish(&f);
            c.keep_input_artifact = pp.keep_input_artifact;
            PostProcessorConfig::Manifest(c)
        } else {
            let mut c = shell_local::decode(&mut d, &mut f, cx, ProvisionerMeta::default());
            d.finish(&f);
            shell_local::validate(&c, &mut d, pp.pos);
            c.keep_input_artifact = pp.keep_input_artifact;
            PostProcessorConfig::ShellLocal(c)
        }
    });
    let failed = d.has_errors();
    diags.extend(d.diags);
    if failed { None } else { out }
}
