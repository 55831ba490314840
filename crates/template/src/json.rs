//! A JSON parser that keeps the position of every value and key and reports
//! duplicate keys, which serde_json's map types silently collapse (Packer
//! rejects them: "template has duplicate field"). Syntax errors use the
//! wording of Go's encoding/json, which Packer users know.

use std::fmt;

/// A position in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    /// Byte offset.
    pub offset: usize,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

/// A JSON value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Json {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<Member>),
}

/// A number as Go decodes it into `interface{}`: a float64, with the text it
/// came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub raw: String,
    pub value: f64,
}

/// An object member.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_pos: Pos,
    pub value: Json,
}

/// A syntax error (parsing stops there) with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub pos: Pos,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A key that appears twice in the same object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    pub key: String,
    /// Position of the second occurrence.
    pub pos: Pos,
    /// Position of the first occurrence.
    pub first: Pos,
}

/// The result of parsing: the document and every duplicate key found.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub value: Json,
    pub duplicates: Vec<DuplicateKey>,
}

/// Nesting deeper than this is rejected instead of risking the stack.
const MAX_DEPTH: usize = 500;

/// Parses a whole JSON document.
pub fn parse(text: &str) -> Result<Parsed, SyntaxError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        i: 0,
        line: 1,
        line_start: 0,
        col_at: (0, 1),
        duplicates: Vec::new(),
    };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.i < p.bytes.len() {
        return Err(p.invalid_char("after top-level value"));
    }
    Ok(Parsed {
        value,
        duplicates: p.duplicates,
    })
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    i: usize,
    line: u32,
    line_start: usize,
    /// (offset, column) of the last position computed on this line, so
    /// columns are counted incrementally (minified templates are one line).
    col_at: (usize, u32),
    duplicates: Vec<DuplicateKey>,
}

impl Parser<'_> {
    fn pos(&mut self) -> Pos {
        let (from, col) = if self.col_at.0 >= self.line_start && self.col_at.0 <= self.i {
            self.col_at
        } else {
            (self.line_start, 1)
        };
        let col = col + self.text[from..self.i].chars().count() as u32;
        self.col_at = (self.i, col);
        Pos {
            offset: self.i,
            line: self.line,
            col,
        }
    }

    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.i) {
            match b {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'\n' => {
                    self.i += 1;
                    self.line += 1;
                    self.line_start = self.i;
                }
                _ => break,
            }
        }
    }

    fn current_char(&self) -> Option<char> {
        self.text[self.i..].chars().next()
    }

    fn invalid_char(&mut self, context: &str) -> SyntaxError {
        match self.current_char() {
            None => self.eof(),
            Some(c) => SyntaxError {
                message: format!("invalid character {} {context}", quote_char(c)),
                pos: self.pos(),
            },
        }
    }

    fn eof(&mut self) -> SyntaxError {
        SyntaxError {
            message: "unexpected end of JSON input".to_string(),
            pos: self.pos(),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(SyntaxError {
                message: format!("exceeded max depth ({MAX_DEPTH} nested arrays or objects)"),
                pos: self.pos(),
            });
        }
        let pos = self.pos();
        let Some(&b) = self.bytes.get(self.i) else {
            return Err(self.eof());
        };
        let value = match b {
            b'{' => self.object(depth)?,
            b'[' => self.array(depth)?,
            b'"' => Value::String(self.string()?),
            b't' => {
                self.literal("true")?;
                Value::Bool(true)
            }
            b'f' => {
                self.literal("false")?;
                Value::Bool(false)
            }
            b'n' => {
                self.literal("null")?;
                Value::Null
            }
            b'-' | b'0'..=b'9' => Value::Number(self.number()?),
            0xEF if self.text[self.i..].starts_with('\u{feff}') => {
                return Err(SyntaxError {
                    message: "invalid character U+FEFF (byte order mark) looking for beginning of value; save the file as UTF-8 without BOM".to_string(),
                    pos,
                });
            }
            _ => return Err(self.invalid_char("looking for beginning of value")),
        };
        Ok(Json { pos, value })
    }

    fn literal(&mut self, word: &str) -> Result<(), SyntaxError> {
        let wb = word.as_bytes();
        // The first byte already matched.
        self.i += 1;
        for &expected in &wb[1..] {
            match self.bytes.get(self.i) {
                None => return Err(self.eof()),
                Some(&b) if b == expected => self.i += 1,
                Some(_) => {
                    return Err(self.invalid_char(&format!(
                        "in literal {word} (expecting {})",
                        quote_char(expected as char)
                    )));
                }
            }
        }
        Ok(())
    }

    fn number(&mut self) -> Result<Number, SyntaxError> {
        let start = self.i;
        if self.bytes[self.i] == b'-' {
            self.i += 1;
        }
        match self.bytes.get(self.i) {
            None => return Err(self.eof()),
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while matches!(self.bytes.get(self.i), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            Some(_) => return Err(self.invalid_char("in numeric literal")),
        }
        if self.bytes.get(self.i) == Some(&b'.') {
            self.i += 1;
            match self.bytes.get(self.i) {
                None => return Err(self.eof()),
                Some(b'0'..=b'9') => {}
                Some(_) => return Err(self.invalid_char("after decimal point in numeric literal")),
            }
            while matches!(self.bytes.get(self.i), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        if matches!(self.bytes.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.bytes.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            match self.bytes.get(self.i) {
                None => return Err(self.eof()),
                Some(b'0'..=b'9') => {}
                Some(_) => return Err(self.invalid_char("in exponent of numeric literal")),
            }
            while matches!(self.bytes.get(self.i), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        let raw = &self.text[start..self.i];
        // Go fails to decode numbers out of float64 range; so do we.
        let value: f64 = raw.parse().unwrap_or(f64::INFINITY);
        if !value.is_finite() {
            return Err(SyntaxError {
                message: format!("number {raw} is out of range"),
                pos: Pos {
                    offset: start,
                    line: self.line,
                    col: self.text[self.line_start..start].chars().count() as u32 + 1,
                },
            });
        }
        Ok(Number {
            raw: raw.to_string(),
            value,
        })
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        // At the opening quote.
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.current_char() else {
                return Err(self.eof());
            };
            match c {
                '"' => {
                    self.i += 1;
                    return Ok(out);
                }
                '\\' => {
                    self.i += 1;
                    let Some(e) = self.current_char() else {
                        return Err(self.eof());
                    };
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            self.i += 1;
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi)
                                && self.text[self.i..].starts_with("\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                    out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                                } else {
                                    out.push('\u{fffd}');
                                    self.i = save;
                                }
                            } else {
                                out.push(char::from_u32(hi).unwrap_or('\u{fffd}'));
                            }
                            continue;
                        }
                        _ => return Err(self.invalid_char("in string escape code")),
                    }
                    self.i += e.len_utf8();
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.invalid_char("in string literal"));
                }
                c => {
                    out.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let Some(&b) = self.bytes.get(self.i) else {
                return Err(self.eof());
            };
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(self.invalid_char("in \\u hexadecimal character escape")),
            };
            v = v * 16 + d as u32;
            self.i += 1;
        }
        Ok(v)
    }

    fn array(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.i += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.bytes.get(self.i) {
                None => return Err(self.eof()),
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                Some(_) => return Err(self.invalid_char("after array element")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.i += 1;
        let mut members: Vec<Member> = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            match self.bytes.get(self.i) {
                None => return Err(self.eof()),
                Some(b'"') => {}
                Some(_) => {
                    return Err(self.invalid_char("looking for beginning of object key string"));
                }
            }
            let key_pos = self.pos();
            let key = self.string()?;
            self.skip_ws();
            match self.bytes.get(self.i) {
                None => return Err(self.eof()),
                Some(b':') => self.i += 1,
                Some(_) => return Err(self.invalid_char("after object key")),
            }
            self.skip_ws();
            let value = self.value(depth + 1)?;
            if let Some(first) = members.iter().find(|m| m.key == key) {
                self.duplicates.push(DuplicateKey {
                    key: key.clone(),
                    pos: key_pos,
                    first: first.key_pos,
                });
            }
            members.push(Member {
                key,
                key_pos,
                value,
            });
            self.skip_ws();
            match self.bytes.get(self.i) {
                None => return Err(self.eof()),
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Object(members));
                }
                Some(_) => return Err(self.invalid_char("after object key:value pair")),
            }
        }
    }
}

/// Quotes a character as Go's encoding/json does in its messages.
fn quote_char(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '"' => "'\"'".to_string(),
        c if c.is_control() => format!("'{}'", c.escape_default()),
        c => format!("'{c}'"),
    }
}

impl Json {
    pub fn new(pos: Pos, value: Value) -> Self {
        Json { pos, value }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[Member]> {
        match &self.value {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match &self.value {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The member named `key` (exact match), if this is an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.as_object()?
            .iter()
            .find(|m| m.key == key)
            .map(|m| &m.value)
    }

    /// The Go type name this value decodes to in `interface{}`, for messages
    /// that match Packer's.
    pub fn go_type(&self) -> &'static str {
        match self.value {
            Value::Null => "nil",
            Value::Bool(_) => "bool",
            Value::Number(_) => "float64",
            Value::String(_) => "string",
            Value::Array(_) => "[]interface {}",
            Value::Object(_) => "map[string]interface {}",
        }
    }

    /// The Go kind name used by mapstructure messages ("got 'slice'").
    pub fn go_kind(&self) -> &'static str {
        match self.value {
            Value::Null => "invalid",
            Value::Bool(_) => "bool",
            Value::Number(_) => "float64",
            Value::String(_) => "string",
            Value::Array(_) => "slice",
            Value::Object(_) => "map",
        }
    }
}

/// Writes `s` as a JSON string literal.
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Formats a float64 as Go's `strconv.FormatFloat(f, 'f', -1, 64)` does,
/// which is how a weakly-decoded number becomes a string in Packer.
pub fn go_format_float(f: f64) -> String {
    // Rust's Display prints the shortest round-trip digits without an
    // exponent, exactly like Go's 'f' format with precision -1.
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> SyntaxError {
        parse(text).unwrap_err()
    }

    #[test]
    fn parses_values_with_positions() {
        let p = parse("{\n  \"a\": [1, \"x\", true, null],\n  \"b\": {\"c\": -1.5e2}\n}").unwrap();
        let a = p.value.get("a").unwrap();
        assert_eq!(a.pos.line, 2);
        assert_eq!(a.pos.col, 8);
        let items = a.as_array().unwrap();
        assert_eq!(items[1].as_str(), Some("x"));
        assert_eq!(items[1].pos.col, 12);
        let c = p.value.get("b").unwrap().get("c").unwrap();
        assert_eq!(
            c.value,
            Value::Number(Number {
                raw: "-1.5e2".into(),
                value: -150.0
            })
        );
        assert!(p.duplicates.is_empty());
    }

    #[test]
    fn finds_every_duplicate_key_at_any_depth() {
        let p = parse(r#"{"a":1,"b":{"x":1,"x":2},"a":3}"#).unwrap();
        let keys: Vec<_> = p.duplicates.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["x", "a"]);
        assert_eq!(p.duplicates[1].pos.col, 26);
        assert_eq!(p.duplicates[1].first.col, 2);
    }

    #[test]
    fn go_wording_for_syntax_errors() {
        let e = err("{\n  \"a\": \"b\"\n  \"c\": 1}");
        assert_eq!(
            e.message,
            "invalid character '\"' after object key:value pair"
        );
        assert_eq!((e.pos.line, e.pos.col), (3, 3));
        assert_eq!(err("").message, "unexpected end of JSON input");
        assert_eq!(
            err("{\"a\" 1}").message,
            "invalid character '1' after object key"
        );
        assert_eq!(
            err("[1 2]").message,
            "invalid character '2' after array element"
        );
        assert_eq!(
            err("{} {}").message,
            "invalid character '{' after top-level value"
        );
        assert_eq!(
            err("{,}").message,
            "invalid character ',' looking for beginning of object key string"
        );
        assert_eq!(
            err("[tru]").message,
            "invalid character ']' in literal true (expecting 'e')"
        );
        assert_eq!(
            err("\"a\tb\"").message,
            "invalid character '\\t' in string literal"
        );
        assert_eq!(
            err("\"\\x\"").message,
            "invalid character 'x' in string escape code"
        );
        assert_eq!(
            err("[01]").message,
            "invalid character '1' after array element"
        );
        assert_eq!(
            err("[-]").message,
            "invalid character ']' in numeric literal"
        );
        assert_eq!(
            err("'a'").message,
            "invalid character '\\'' looking for beginning of value"
        );
    }

    #[test]
    fn unicode_escapes_and_surrogates() {
        let p = parse(r#""\u00e9\ud83d\ude00\ud800x""#).unwrap();
        assert_eq!(p.value.as_str(), Some("é😀\u{fffd}x"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        assert!(err(&text).message.starts_with("exceeded max depth"));
    }

    #[test]
    fn floats_format_like_go() {
        assert_eq!(go_format_float(5.0), "5");
        assert_eq!(go_format_float(123456789012.0), "123456789012");
        assert_eq!(go_format_float(22.5), "22.5");
        assert_eq!(go_format_float(-0.25), "-0.25");
    }
}
