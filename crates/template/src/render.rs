//! Packer's `RenderMap` over a plugin configuration: every string (map keys
//! included) is checked to parse; the ones not held back for a later step are
//! rendered now. Errors read "invalid 'KEY': ..." (parse) and
//! "render 'KEY': ..." (execution), as Packer's.

use crate::decode::Decoder;
use crate::diagnostics::Source;
use crate::engine::{Template as Engine, TemplateError, Value};
use crate::funcs::{FuncContext, PackerFuncs};
use crate::json::{Json, Member, Pos, Value as J};

/// Renders `members` in `cx`, leaving the keys in `late` (matched
/// case-insensitively) unrendered. Returns None when a string failed.
pub fn render_config(
    members: &[Member],
    late: &[&str],
    cx: &FuncContext,
    d: &mut Decoder,
) -> Option<Vec<Member>> {
    let funcs = PackerFuncs::new(cx);
    let mut ok = true;
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        let render = !late.iter().any(|l| l.eq_ignore_ascii_case(&m.key));
        let mut r = Renderer {
            funcs: &funcs,
            d,
            key: &m.key,
            render,
            ok: true,
        };
        let value = r.walk(&m.value);
        ok &= r.ok;
        out.push(Member {
            key: m.key.clone(),
            key_pos: m.key_pos,
            value,
        });
    }
    for w in funcs.warnings.borrow().iter() {
        let pos = members.first().map(|m| m.key_pos).unwrap_or_default();
        d.warn(pos, w);
    }
    ok.then_some(out)
}

struct Renderer<'a, 'b, 'c> {
    funcs: &'a PackerFuncs<'a>,
    d: &'b mut Decoder<'c>,
    key: &'a str,
    render: bool,
    ok: bool,
}

impl Renderer<'_, '_, '_> {
    fn walk(&mut self, v: &Json) -> Json {
        match &v.value {
            J::String(s) => Json::new(v.pos, J::String(self.string(s, v.pos))),
            J::Array(items) => Json::new(
                v.pos,
                J::Array(items.iter().map(|i| self.walk(i)).collect()),
            ),
            J::Object(members) => Json::new(
                v.pos,
                J::Object(
                    members
                        .iter()
                        .map(|m| Member {
                            key: self.string(&m.key, m.key_pos),
                            key_pos: m.key_pos,
                            value: self.walk(&m.value),
                        })
                        .collect(),
                ),
            ),
            _ => v.clone(),
        }
    }

    fn string(&mut self, s: &str, pos: Pos) -> String {
        if !s.contains("{{") {
            return s.to_string();
        }
        let engine = match Engine::parse(s, self.funcs) {
            Ok(e) => e,
            Err(e) => {
                let p = error_pos(self.d.source, pos, s, &e);
                self.d.err(p, format!("invalid '{}': {e}", self.key));
                self.ok = false;
                return s.to_string();
            }
        };
        if !self.render {
            return s.to_string();
        }
        match engine.execute(self.funcs, &Value::Missing) {
            Ok(out) => out,
            Err(e) => {
                let p = error_pos(self.d.source, pos, s, &e);
                self.d.err(p, format!("render '{}': {e}", self.key));
                self.ok = false;
                s.to_string()
            }
        }
    }
}

/// The file position of a template error inside the JSON string at `pos`:
/// exact when the string literal has no escapes, else the string's start.
pub fn error_pos(source: &Source, pos: Pos, s: &str, e: &TemplateError) -> Pos {
    let literal_ok = source.text.get(pos.offset..).is_some_and(|t| {
        t.starts_with('"') && t[1..].starts_with(s) && t[1 + s.len()..].starts_with('"')
    });
    if !literal_ok {
        return pos;
    }
    let offset = match e {
        TemplateError::Exec(x) => x.pos,
        TemplateError::Parse(p) => {
            // Only the line is known: point at the first action on it.
            let line_start = s
                .split_inclusive('\n')
                .take(p.line.saturating_sub(1))
                .map(str::len)
                .sum::<usize>();
            s[line_start..]
                .find("{{")
                .map(|i| line_start + i)
                .unwrap_or(line_start)
        }
    };
    let offset = offset.min(s.len());
    let before = &s[..offset];
    if before.contains('\n') {
        return pos;
    }
    Pos {
        offset: pos.offset + 1 + offset,
        line: pos.line,
        col: pos.col + 1 + before.chars().count() as u32,
    }
}
