//! Decoding JSON values into typed options the way Packer's mapstructure
//! does: weakly typed ("true" for booleans, numbers as strings, a single value
//! where a list is expected, comma-separated strings for lists), keys matched
//! exactly then case-insensitively, and every unused key reported with the
//! nearest valid one.

use crate::diagnostics::{Diagnostic, Source};
use crate::duration::parse_go_duration;
use crate::json::{Json, Member, Pos, Value, go_format_float};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The members of one JSON object being decoded, tracking which were used.
pub struct Fields<'a> {
    members: &'a [Member],
    used: Vec<bool>,
    known: Vec<&'static str>,
    pub pos: Pos,
    /// Prefix for nested names: "source_ami_filter.".
    pub path: String,
}

impl<'a> Fields<'a> {
    pub fn new(members: &'a [Member], pos: Pos, path: impl Into<String>) -> Self {
        Fields {
            members,
            used: vec![false; members.len()],
            known: Vec::new(),
            pos,
            path: path.into(),
        }
    }

    /// Finds `key` (exact, then case-insensitive as mapstructure does) and
    /// marks it used. A JSON null counts as absent.
    pub fn take(&mut self, key: &'static str) -> Option<&'a Json> {
        self.take_raw(key).filter(|v| !v.is_null())
    }

    /// Like [`Fields::take`] but returns a null too.
    pub fn take_raw(&mut self, key: &'static str) -> Option<&'a Json> {
        self.known.push(key);
        let idx = self
            .members
            .iter()
            .rposition(|m| m.key == key)
            .or_else(|| {
                self.members
                    .iter()
                    .rposition(|m| m.key.eq_ignore_ascii_case(key))
            })?;
        // Only the matched key is used: another case variant of it is
        // reported as unknown, as mapstructure does. Exact duplicates were
        // already reported by the parser.
        let chosen = &self.members[idx].key;
        for (i, m) in self.members.iter().enumerate() {
            if m.key == *chosen {
                self.used[i] = true;
            }
        }
        Some(&self.members[idx].value)
    }

    pub fn name(&self, key: &str) -> String {
        format!("{}{}", self.path, key)
    }

    /// Members never taken.
    pub fn unused(&self) -> impl Iterator<Item = &'a Member> + '_ {
        self.members
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(m, _)| m)
    }

    pub fn known(&self) -> &[&'static str] {
        &self.known
    }
}

/// Decoding state: where diagnostics go and how values are coerced.
pub struct Decoder<'s> {
    pub source: &'s Source,
    pub diags: Vec<Diagnostic>,
    /// Prepended to every message: `builder "x" (amazon-ebs): `.
    pub prefix: String,
    /// mapstructure's WeaklyTypedInput.
    pub weak: bool,
    /// mapstructure's StringToSliceHook(","): "a,b" decodes to a list.
    pub split_strings: bool,
    /// Every option name the decoded objects accept (`assume_role.policy` for a nested one), gathered
    /// by [`Decoder::finish`]: what the option-support table is checked against.
    pub accepted: BTreeSet<String>,
    /// The options the template set to something other than their default (see [`SetOption`]).
    pub present: BTreeMap<String, SetOption>,
}

/// An option a template set (to something other than null, false, 0, "", [] or {}): where its key is and,
/// for a string, boolean or number, its value as text (what the option-support table matches on).
#[derive(Debug, Clone, PartialEq)]
pub struct SetOption {
    pub pos: Pos,
    pub scalar: Option<String>,
}

/// Whether a value leaves an option at its default: null, false, 0, "", [], {}.
fn leaves_default(v: &Json) -> bool {
    match &v.value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.value == 0.0,
        Value::String(s) => s.is_empty() || s == "false" || s == "0",
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// A scalar value as text.
fn scalar_text(v: &Json) -> Option<String> {
    match &v.value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(crate::engine::format_float_g(n.value)),
        _ => None,
    }
}

/// `a[0].b[1].` without its list indices: `a.b.`.
fn option_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

/// The nearest of `candidates` to `key`, if it is close enough to suggest.
pub fn suggest<'c>(key: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let key_l = key.to_ascii_lowercase();
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&key_l, &c.to_ascii_lowercase());
        let dist = strsim::damerau_levenshtein(&key_l, &c.to_ascii_lowercase());
        let close = score >= 0.85 || dist <= 2.max(key.len() / 4);
        if close && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

/// Go's `%v` of a decoded JSON value, for error messages.
pub fn go_v(v: &Json) -> String {
    match &v.value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => crate::engine::format_float_g(n.value),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_v).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut items: Vec<String> = m
                .iter()
                .map(|m| format!("{}:{}", m.key, go_v(&m.value)))
                .collect();
            items.sort();
            format!("map[{}]", items.join(" "))
        }
    }
}

fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// strconv.ParseInt(s, 0, 64) for weak decoding.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = i128::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

impl<'s> Decoder<'s> {
    pub fn new(source: &'s Source, prefix: impl Into<String>) -> Self {
        Decoder {
            source,
            diags: Vec::new(),
            prefix: prefix.into(),
            weak: true,
            split_strings: true,
            accepted: BTreeSet::new(),
            present: BTreeMap::new(),
        }
    }

    pub fn err(&mut self, pos: Pos, msg: impl AsRef<str>) {
        let d = Diagnostic::error(format!("{}{}", self.prefix, msg.as_ref())).at(self.source, pos);
        self.diags.push(d);
    }

    pub fn warn(&mut self, pos: Pos, msg: impl AsRef<str>) {
        let d =
            Diagnostic::warning(format!("{}{}", self.prefix, msg.as_ref())).at(self.source, pos);
        self.diags.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }

    fn unconvertible(&mut self, v: &Json, name: &str, ty: &str) {
        self.err(
            v.pos,
            format!(
                "'{name}' expected type '{ty}', got unconvertible type '{}', value: '{}'",
                v.go_type(),
                go_v(v)
            ),
        );
    }

    // ---- value converters --------------------------------------------

    pub fn to_string(&mut self, v: &Json, name: &str) -> Option<String> {
        match &v.value {
            Value::String(s) => Some(s.clone()),
            Value::Null => Some(String::new()),
            Value::Bool(b) if self.weak => Some(if *b { "1" } else { "0" }.to_string()),
            Value::Number(n) if self.weak => Some(go_format_float(n.value)),
            _ => {
                self.unconvertible(v, name, "string");
                None
            }
        }
    }

    pub fn to_bool(&mut self, v: &Json, name: &str) -> Option<bool> {
        match &v.value {
            Value::Bool(b) => Some(*b),
            Value::Null => Some(false),
            Value::Number(n) if self.weak => Some(n.value != 0.0),
            Value::String(s) if self.weak => {
                if s.is_empty() {
                    return Some(false);
                }
                match parse_go_bool(s) {
                    Some(b) => Some(b),
                    None => {
                        self.err(
                            v.pos,
                            format!("cannot parse '{name}' as bool: strconv.ParseBool: parsing \"{s}\": invalid syntax"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.unconvertible(v, name, "bool");
                None
            }
        }
    }

    /// Packer's `config.Trilean`: unset, true or false; "" is unset.
    pub fn to_trilean(&mut self, v: &Json, name: &str) -> Option<Option<bool>> {
        match &v.value {
            Value::String(s) if s.is_empty() => Some(None),
            Value::Null => Some(None),
            _ => self.to_bool(v, name).map(Some),
        }
    }

    pub fn to_int(&mut self, v: &Json, name: &str) -> Option<i64> {
        match &v.value {
            Value::Number(n) => {
                if n.value.is_finite() && n.value.abs() < 9.2e18 {
                    Some(n.value.trunc() as i64)
                } else {
                    self.err(v.pos, format!("'{name}' is out of range: {}", n.raw));
                    None
                }
            }
            Value::Null => Some(0),
            Value::Bool(b) if self.weak => Some(i64::from(*b)),
            Value::String(s) if self.weak => {
                if s.is_empty() {
                    return Some(0);
                }
                match parse_go_int(s) {
                    Some(i) => Some(i),
                    None => {
                        self.err(
                            v.pos,
                            format!("cannot parse '{name}' as int: strconv.ParseInt: parsing \"{s}\": invalid syntax"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.unconvertible(v, name, "int");
                None
            }
        }
    }

    /// A Go duration in signed nanoseconds: strings are parsed, numbers are
    /// nanoseconds.
    pub fn to_go_duration(&mut self, v: &Json, name: &str) -> Option<i128> {
        match &v.value {
            Value::String(s) => match parse_go_duration(s) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.err(v.pos, format!("error decoding '{name}': {e}"));
                    None
                }
            },
            _ => self.to_int(v, name).map(i128::from),
        }
    }

    pub fn to_duration(&mut self, v: &Json, name: &str) -> Option<Duration> {
        let n = self.to_go_duration(v, name)?;
        if n < 0 {
            self.err(v.pos, format!("'{name}' must not be negative"));
            return None;
        }
        Some(Duration::from_nanos(n.min(u64::MAX as i128) as u64))
    }

    pub fn to_strings(&mut self, v: &Json, name: &str) -> Option<Vec<String>> {
        let items = self.list_items_owned(v, name)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.to_string(item, &format!("{name}[{i}]")) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The elements of a list: an array, a comma-separated string (when
    /// `split_strings`), or a single value (weak).
    fn list_items_owned(&mut self, v: &Json, name: &str) -> Option<Vec<Json>> {
        match &v.value {
            Value::Array(a) => Some(a.clone()),
            Value::Null => Some(Vec::new()),
            Value::String(s) if self.split_strings => {
                if s.is_empty() {
                    return Some(Vec::new());
                }
                Some(
                    s.split(',')
                        .map(|p| Json::new(v.pos, Value::String(p.to_string())))
                        .collect(),
                )
            }
            _ if self.weak => Some(vec![v.clone()]),
            _ => {
                self.err(
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

    pub fn to_ints(&mut self, v: &Json, name: &str) -> Option<Vec<i64>> {
        let items = self.list_items_owned(v, name)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.to_int(item, &format!("{name}[{i}]")) {
                Some(n) => out.push(n),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The members of a map: an object, or (weak) a list of objects merged,
    /// or an empty list.
    pub fn map_members(&mut self, v: &Json, name: &str) -> Option<Vec<Member>> {
        match &v.value {
            Value::Object(m) => Some(m.clone()),
            Value::Null => Some(Vec::new()),
            Value::Array(items) if self.weak => {
                let mut out: Vec<Member> = Vec::new();
                for item in items {
                    match &item.value {
                        Value::Object(m) => {
                            for mem in m {
                                out.retain(|o| o.key != mem.key);
                                out.push(mem.clone());
                            }
                        }
                        _ => {
                            self.err(
                                v.pos,
                                format!("'{name}' expected a map, got '{}'", v.go_kind()),
                            );
                            return None;
                        }
                    }
                }
                Some(out)
            }
            _ => {
                self.err(
                    v.pos,
                    format!("'{name}' expected a map, got '{}'", v.go_kind()),
                );
                None
            }
        }
    }

    pub fn to_string_map(&mut self, v: &Json, name: &str) -> Option<BTreeMap<String, String>> {
        let members = self.map_members(v, name)?;
        let mut out = BTreeMap::new();
        let mut ok = true;
        for m in &members {
            match self.to_string(&m.value, &format!("{name}[{}]", m.key)) {
                Some(s) => {
                    out.insert(m.key.clone(), s);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    // ---- field accessors ----------------------------------------------

    pub fn string(&mut self, f: &mut Fields, key: &'static str) -> Option<String> {
        let v = f.take(key)?;
        self.to_string(v, &f.name(key))
    }

    /// A string field with a default when absent or empty.
    pub fn string_or(&mut self, f: &mut Fields, key: &'static str, default: &str) -> String {
        self.string(f, key)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| default.to_string())
    }

    /// An optional string: absent or empty is None.
    pub fn opt_string(&mut self, f: &mut Fields, key: &'static str) -> Option<String> {
        self.string(f, key).filter(|s| !s.is_empty())
    }

    pub fn bool(&mut self, f: &mut Fields, key: &'static str) -> bool {
        f.take(key)
            .and_then(|v| self.to_bool(v, &f.name(key)))
            .unwrap_or(false)
    }

    pub fn trilean(&mut self, f: &mut Fields, key: &'static str) -> Option<bool> {
        let v = f.take(key)?;
        self.to_trilean(v, &f.name(key)).flatten()
    }

    pub fn int(&mut self, f: &mut Fields, key: &'static str) -> Option<i64> {
        let v = f.take(key)?;
        self.to_int(v, &f.name(key))
    }

    pub fn duration(&mut self, f: &mut Fields, key: &'static str) -> Option<Duration> {
        let v = f.take(key)?;
        self.to_duration(v, &f.name(key))
    }

    pub fn go_duration(&mut self, f: &mut Fields, key: &'static str) -> Option<i128> {
        let v = f.take(key)?;
        self.to_go_duration(v, &f.name(key))
    }

    pub fn strings(&mut self, f: &mut Fields, key: &'static str) -> Vec<String> {
        f.take(key)
            .and_then(|v| self.to_strings(v, &f.name(key)))
            .unwrap_or_default()
    }

    /// A list that is None when the key is absent (Packer's nil slice).
    pub fn opt_strings(&mut self, f: &mut Fields, key: &'static str) -> Option<Vec<String>> {
        let v = f.take(key)?;
        self.to_strings(v, &f.name(key))
    }

    pub fn ints(&mut self, f: &mut Fields, key: &'static str) -> Vec<i64> {
        f.take(key)
            .and_then(|v| self.to_ints(v, &f.name(key)))
            .unwrap_or_default()
    }

    pub fn string_map(&mut self, f: &mut Fields, key: &'static str) -> BTreeMap<String, String> {
        f.take(key)
            .and_then(|v| self.to_string_map(v, &f.name(key)))
            .unwrap_or_default()
    }

    /// A nested object decoded by `decode`.
    pub fn object<'a, T>(
        &mut self,
        f: &mut Fields<'a>,
        key: &'static str,
        decode: impl FnOnce(&mut Self, &mut Fields<'a>) -> T,
    ) -> Option<T> {
        let v = f.take(key)?;
        let name = f.name(key);
        match &v.value {
            Value::Object(m) => {
                let mut inner = Fields::new(m, v.pos, format!("{name}."));
                let out = decode(self, &mut inner);
                self.finish(&inner);
                Some(out)
            }
            _ => {
                self.err(
                    v.pos,
                    format!("'{name}' expected a map, got '{}'", v.go_kind()),
                );
                None
            }
        }
    }

    /// A list of objects (a single object is accepted, weakly).
    pub fn objects<'a, T>(
        &mut self,
        f: &mut Fields<'a>,
        key: &'static str,
        mut decode: impl FnMut(&mut Self, &mut Fields<'a>) -> T,
    ) -> Vec<T> {
        let Some(v) = f.take(key) else {
            return Vec::new();
        };
        let name = f.name(key);
        let items: Vec<&'a Json> = match &v.value {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => vec![v],
            _ => {
                self.err(
                    v.pos,
                    format!(
                        "'{name}': source data must be an array or slice, got {}",
                        v.go_kind()
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            match &item.value {
                Value::Object(m) => {
                    let mut inner = Fields::new(m, item.pos, format!("{name}[{i}]."));
                    out.push(decode(self, &mut inner));
                    self.finish(&inner);
                }
                _ => self.err(
                    item.pos,
                    format!("'{name}[{i}]' expected a map, got '{}'", item.go_kind()),
                ),
            }
        }
        out
    }

    /// Reports every key nobody took, with the nearest valid key.
    pub fn finish(&mut self, f: &Fields) {
        // Options are named without list indices: `launch_block_device_mappings.volume_size`.
        let path = option_path(&f.path);
        self.accepted
            .extend(f.known().iter().map(|k| format!("{path}{k}")));
        for (m, used) in f.members.iter().zip(&f.used) {
            if *used && !leaves_default(&m.value) {
                // Under the option's own spelling (a key matched case-insensitively is that option).
                let known = f.known().iter().find(|k| k.eq_ignore_ascii_case(&m.key));
                let name = known.map_or(m.key.as_str(), |k| k);
                self.present.insert(
                    format!("{path}{name}"),
                    SetOption {
                        pos: m.key_pos,
                        scalar: scalar_text(&m.value),
                    },
                );
            }
        }
        let unused: Vec<&Member> = f.unused().collect();
        for m in unused {
            if f.path.is_empty() && (m.key == "type" || m.key.starts_with("packer_")) {
                continue;
            }
            let mut msg = format!("unknown configuration key: '{}{}'", f.path, m.key);
            if let Some(s) = suggest(&m.key, f.known().iter().copied()) {
                msg.push_str(&format!("; did you mean '{}{s}'?", f.path));
            }
            self.err(m.key_pos, msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn with<T>(text: &str, f: impl FnOnce(&mut Decoder, &mut Fields) -> T) -> (T, Vec<String>) {
        let src = Source::new("t.json", text.to_string());
        let parsed = parse(text).unwrap();
        let members = parsed.value.as_object().unwrap().to_vec();
        let mut d = Decoder::new(&src, "");
        let mut fields = Fields::new(&members, parsed.value.pos, "");
        let out = f(&mut d, &mut fields);
        d.finish(&fields);
        let msgs = d.diags.iter().map(|d| d.message.clone()).collect();
        (out, msgs)
    }

    #[test]
    fn weak_decoding_like_mapstructure() {
        let (v, errs) = with(
            r#"{"b1":"true","b2":1,"b3":"","i1":"22","i2":22.7,"i3":true,"s1":5,"s2":true,"l1":"a,b","l2":"x","l3":5,"l4":[1,"y"],"m":[{"a":"1"},{"b":2}],"d":"1m30s"}"#,
            |d, f| {
                (
                    (d.bool(f, "b1"), d.bool(f, "b2"), d.bool(f, "b3")),
                    (d.int(f, "i1"), d.int(f, "i2"), d.int(f, "i3")),
                    (d.string(f, "s1"), d.string(f, "s2")),
                    (
                        d.strings(f, "l1"),
                        d.strings(f, "l2"),
                        d.strings(f, "l3"),
                        d.strings(f, "l4"),
                    ),
                    d.string_map(f, "m"),
                    d.duration(f, "d"),
                )
            },
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(v.0, (true, true, false));
        assert_eq!(v.1, (Some(22), Some(22), Some(1)));
        assert_eq!(v.2, (Some("5".into()), Some("1".into())));
        assert_eq!(v.3.0, ["a", "b"]);
        assert_eq!(v.3.1, ["x"]);
        assert_eq!(v.3.2, ["5"]);
        assert_eq!(v.3.3, ["1", "y"]);
        assert_eq!(v.4.len(), 2);
        assert_eq!(v.5, Some(Duration::from_secs(90)));
    }

    #[test]
    fn packer_decoding_errors() {
        let (_, errs) = with(
            r#"{"b":"yes","i":"22x","d":"5 minutes","s":[1],"m":"x","ami_nmae":"n"}"#,
            |d, f| {
                d.bool(f, "b");
                d.int(f, "i");
                d.duration(f, "d");
                d.string(f, "s");
                d.string_map(f, "m");
                f.take("ami_name");
            },
        );
        assert_eq!(
            errs,
            [
                "cannot parse 'b' as bool: strconv.ParseBool: parsing \"yes\": invalid syntax",
                "cannot parse 'i' as int: strconv.ParseInt: parsing \"22x\": invalid syntax",
                "error decoding 'd': time: unknown unit \" minutes\" in duration \"5 minutes\"",
                "'s' expected type 'string', got unconvertible type '[]interface {}', value: '[1]'",
                "'m' expected a map, got 'string'",
                "unknown configuration key: 'ami_nmae'; did you mean 'ami_name'?",
            ]
        );
    }

    #[test]
    fn keys_match_case_insensitively() {
        let (v, errs) = with(r#"{"AMI_Name":"n"}"#, |d, f| d.string(f, "ami_name"));
        assert!(errs.is_empty());
        assert_eq!(v.as_deref(), Some("n"));
    }

    #[test]
    fn nested_objects_and_lists() {
        let (v, errs) = with(
            r#"{"f":{"owners":"self","most_recent":"true","nope":1},"l":{"device_name":"/dev/sda1"}}"#,
            |d, f| {
                let o = d.object(f, "f", |d, f| {
                    (d.strings(f, "owners"), d.bool(f, "most_recent"))
                });
                let l = d.objects(f, "l", |d, f| d.string(f, "device_name"));
                (o, l)
            },
        );
        assert_eq!(v.0, Some((vec!["self".to_string()], true)));
        assert_eq!(v.1, [Some("/dev/sda1".to_string())]);
        assert_eq!(errs, ["unknown configuration key: 'f.nope'"]);
    }

    #[test]
    fn suggestions_are_close_matches_only() {
        assert_eq!(
            suggest("ssh_usernmae", ["ssh_username", "ssh_port"]),
            Some("ssh_username")
        );
        assert_eq!(suggest("zzz", ["ssh_username", "ssh_port"]), None);
    }
}
