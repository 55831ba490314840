//! Fields Packer renders late, at the step that uses them (amazon-ebs tags
//! and `ami_description`, shell `execute_command` and `inline`, manifest
//! `custom_data`): kept as the raw template, already checked to parse, and
//! rendered by the caller with the build's data.

use crate::engine::{Template as Engine, Value};
use crate::funcs::{BuildData, FuncContext, PackerFuncs};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A template string rendered at build time.
#[derive(Clone)]
pub struct LateTemplate {
    raw: String,
    engine: Arc<Engine>,
    cx: Arc<FuncContext>,
}

impl fmt::Debug for LateTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LateTemplate").field(&self.raw).finish()
    }
}

impl PartialEq for LateTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

/// What a late field can refer to: dot fields (`{{ .BuildRegion }}`,
/// `{{ .Path }}`), `{{ build `ID` }}` values, and the build's name and type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LateContext {
    /// Dot fields: "BuildRegion", "SourceAMI", "SourceAMIName", "Path",
    /// "Vars", "EnvVarFile", ...
    pub data: BTreeMap<String, String>,
    /// Values for `{{ build `Key` }}`: "ID", "Host", "Port", "User", ...
    pub build: BTreeMap<String, String>,
    /// Overrides the build name captured at load time when not empty.
    pub build_name: String,
    /// Overrides the builder type captured at load time when not empty.
    pub build_type: String,
    /// Map-valued dot fields, e.g. "SourceAMITags" for
    /// `{{ .SourceAMITags.Name }}`.
    pub maps: BTreeMap<String, BTreeMap<String, String>>,
}

/// A late field failed to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    pub message: String,
}

impl LateTemplate {
    /// Checks that `raw` parses in `cx` (the plugin's function set).
    pub(crate) fn new(raw: String, cx: Arc<FuncContext>) -> Result<Self, String> {
        let funcs = PackerFuncs::new(&cx);
        let engine = Engine::parse(&raw, &funcs).map_err(|e| e.to_string())?;
        Ok(LateTemplate {
            raw,
            engine: Arc::new(engine),
            cx,
        })
    }

    /// The raw, unrendered text.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Renders with the build's data; user variables and the other
    /// functions come from the context captured at load time.
    pub fn render(&self, late: &LateContext) -> Result<String, RenderError> {
        if !self.engine.has_actions() {
            return Ok(self.raw.clone());
        }
        let mut cx = (*self.cx).clone();
        let mut values = late.data.clone();
        values.extend(late.build.iter().map(|(k, v)| (k.clone(), v.clone())));
        cx.build_data = BuildData::Values(values);
        if !late.build_name.is_empty() {
            cx.build_name = Some(late.build_name.clone());
        }
        if !late.build_type.is_empty() {
            cx.build_type = Some(late.build_type.clone());
        }
        // Packer's generated data holds both: `{{ .ID }}` and `{{ .Path }}`.
        let mut data: BTreeMap<String, Value> = late
            .build
            .iter()
            .chain(&late.data)
            .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
            .collect();
        for (k, m) in &late.maps {
            data.insert(k.clone(), crate::engine::string_map(m));
        }
        let funcs = PackerFuncs::new(&cx);
        self.engine
            .execute(&funcs, &Value::Map(data))
            .map_err(|e| RenderError {
                message: e.to_string(),
            })
    }
}

/// A map whose keys and values are both rendered late (amazon tags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LateMap(pub Vec<(LateTemplate, LateTemplate)>);

impl LateMap {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The raw keys and values.
    pub fn raw(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| (k.raw().to_string(), v.raw().to_string()))
            .collect()
    }

    pub fn render(&self, late: &LateContext) -> Result<BTreeMap<String, String>, RenderError> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            out.insert(k.render(late)?, v.render(late)?);
        }
        Ok(out)
    }
}
