//! Pieces shared by the plugin schemas: late fields, key/value blocks,
//! provisioner meta options, file checks.

use crate::decode::{Decoder, Fields};
use crate::funcs::FuncContext;
use crate::json::{Json, Pos, Value};
use crate::late::{LateMap, LateTemplate};
use std::sync::Arc;
use std::time::Duration;

/// Options Packer handles for every provisioner (outside the plugin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisionerMeta {
    /// Wait this long before running the provisioner.
    pub pause_before: Option<Duration>,
    /// Retry a failed provisioner this many times (0: no retry).
    pub max_retries: u32,
    /// Fail the provisioner when it runs longer than this.
    pub timeout: Option<Duration>,
}

/// Makes a late template, reporting a parse error at `pos`.
pub fn make_late(
    d: &mut Decoder,
    raw: String,
    pos: Pos,
    name: &str,
    cx: &Arc<FuncContext>,
) -> Option<LateTemplate> {
    match LateTemplate::new(raw, cx.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            d.err(pos, format!("invalid '{name}': {e}"));
            None
        }
    }
}

/// A string field kept for late rendering.
pub fn late_string(
    d: &mut Decoder,
    f: &mut Fields,
    key: &'static str,
    cx: &Arc<FuncContext>,
) -> Option<LateTemplate> {
    let v = f.take(key)?;
    let name = f.name(key);
    let s = d.to_string(v, &name)?;
    make_late(d, s, v.pos, &name, cx)
}

/// A list field kept for late rendering (weak list decoding).
pub fn late_strings(
    d: &mut Decoder,
    f: &mut Fields,
    key: &'static str,
    cx: &Arc<FuncContext>,
) -> Option<Vec<LateTemplate>> {
    let v = f.take(key)?;
    let name = f.name(key);
    let list = d.to_strings(v, &name)?;
    let mut out = Vec::with_capacity(list.len());
    for (i, s) in list.into_iter().enumerate() {
        let pos = element_pos(v, i);
        out.push(make_late(d, s, pos, &format!("{name}[{i}]"), cx)?);
    }
    Some(out)
}

/// The position of element `i` of an array value (or the value itself).
pub fn element_pos(v: &Json, i: usize) -> Pos {
    match &v.value {
        Value::Array(a) => a.get(i).map(|e| e.pos).unwrap_or(v.pos),
        _ => v.pos,
    }
}

/// A map field whose keys and values are rendered late (tags).
pub fn late_map(
    d: &mut Decoder,
    f: &mut Fields,
    key: &'static str,
    cx: &Arc<FuncContext>,
) -> LateMap {
    let Some(v) = f.take(key) else {
        return LateMap::default();
    };
    let name = f.name(key);
    let Some(members) = d.map_members(v, &name) else {
        return LateMap::default();
    };
    let mut out = Vec::new();
    for m in members {
        let Some(val) = d.to_string(&m.value, &format!("{name}[{}]", m.key)) else {
            continue;
        };
        let (Some(k), Some(v)) = (
            make_late(d, m.key.clone(), m.key_pos, &name, cx),
            make_late(d, val, m.value.pos, &name, cx),
        ) else {
            continue;
        };
        out.retain(|(ok, _): &(LateTemplate, LateTemplate)| ok.raw() != k.raw());
        out.push((k, v));
    }
    LateMap(out)
}

/// Merges a singular block list (`tag`: [{key, value}]) into a late map,
/// as Packer's `KeyValues.CopyOn` does.
pub fn merge_key_values(
    d: &mut Decoder,
    f: &mut Fields,
    key: &'static str,
    key_field: &'static str,
    into: &mut LateMap,
    cx: &Arc<FuncContext>,
) {
    let pairs = d.objects(f, key, |d, f| {
        let pos = f.pos;
        let k = d.string(f, key_field).unwrap_or_default();
        let v = d.string(f, "value").unwrap_or_default();
        (k, v, pos)
    });
    for (k, v, pos) in pairs {
        if k.is_empty() {
            d.err(
                pos,
                format!("'{key}': every entry needs a non-empty '{key_field}'"),
            );
            continue;
        }
        let (Some(kt), Some(vt)) = (make_late(d, k, pos, key, cx), make_late(d, v, pos, key, cx))
        else {
            continue;
        };
        into.0.retain(|(ok, _)| ok.raw() != kt.raw());
        into.0.push((kt, vt));
    }
}

/// Go's `os.Stat(path)` check, with Go's message when it fails.
pub fn stat(path: &str) -> Result<std::fs::Metadata, String> {
    std::fs::metadata(path).map_err(|e| format!("stat {path}: {}", crate::template::io_message(&e)))
}

/// `~/` expanded as Packer's `pathing.ExpandUser`.
pub fn expand_user(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return std::path::Path::new(&home)
            .join(rest)
            .to_string_lossy()
            .into_owned();
    }
    path.to_string()
}
