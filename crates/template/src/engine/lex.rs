//! Lexer for Go text/template syntax: text, `{{ }}` actions with trim
//! markers, comments, strings (quoted, raw, char), numbers, fields,
//! variables, keywords. Follows the token rules of Go's text/template/parse so
//! templates written for Packer lex the same way (including its quirks, such
//! as `1.5.6` lexing as "1.5" then ".6").

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Comment,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub typ: ItemType,
    /// Byte offset in the input.
    pub pos: usize,
    pub val: String,
    /// 1-based line where the item starts.
    pub line: usize,
}

impl Item {
    pub fn is_keyword(&self) -> bool {
        use ItemType::*;
        matches!(
            self.typ,
            Block
                | Break
                | Continue
                | Dot
                | Define
                | Else
                | End
                | If
                | Nil
                | Range
                | Template
                | With
        )
    }
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.typ {
            ItemType::Eof => f.write_str("EOF"),
            ItemType::Error => f.write_str(&self.val),
            _ if self.is_keyword() => write!(f, "<{}>", self.val),
            _ => {
                if self.val.chars().count() > 10 {
                    let short: String = self.val.chars().take(10).collect();
                    write!(f, "{}...", go_quote(&short))
                } else {
                    f.write_str(&go_quote(&self.val))
                }
            }
        }
    }
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

/// Tokenizes `input`. The last item is always `Eof` or `Error`.
pub fn lex(input: &str) -> Vec<Item> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        line: 1,
        start_line: 1,
        items: Vec::new(),
        paren_depth: 0,
        inside_action: false,
    };
    l.run();
    l.items
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    line: usize,
    start_line: usize,
    items: Vec<Item>,
    paren_depth: i32,
    inside_action: bool,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn backup(&mut self, c: char) {
        self.pos -= c.len_utf8();
        if c == '\n' {
            self.line -= 1;
        }
    }

    fn emit(&mut self, typ: ItemType) {
        let val = self.input[self.start..self.pos].to_string();
        self.items.push(Item {
            typ,
            pos: self.start,
            val,
            line: self.start_line,
        });
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn ignore(&mut self) {
        self.start = self.pos;
        self.start_line = self.line;
    }

    /// Moves to `to` (forward), counting the newlines passed.
    fn advance_to(&mut self, to: usize) {
        self.line += self.input[self.pos..to].matches('\n').count();
        self.pos = to;
    }

    /// Emits an error item; lexing stops.
    fn error(&mut self, msg: String) {
        self.items.push(Item {
            typ: ItemType::Error,
            pos: self.start,
            val: msg,
            line: self.start_line,
        });
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.next();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while let Some(c) = self.peek() {
            if !valid.contains(c) {
                break;
            }
            self.next();
        }
    }

    fn run(&mut self) {
        loop {
            let ok = if self.inside_action {
                self.lex_inside_action()
            } else {
                self.lex_text()
            };
            if !ok {
                return;
            }
        }
    }

    /// Returns false when lexing is over (EOF or error emitted).
    fn lex_text(&mut self) -> bool {
        match self.input[self.pos..].find(LEFT) {
            Some(x) => {
                let delim_at = self.pos + x;
                let mut text_end = delim_at;
                let after = &self.input[delim_at + LEFT.len()..];
                if has_left_trim_marker(after) {
                    text_end = self.input[self.start..delim_at]
                        .trim_end_matches(is_space)
                        .len()
                        + self.start;
                }
                self.advance_to(text_end);
                if self.pos > self.start {
                    self.emit(ItemType::Text);
                }
                // Skip the trimmed space.
                self.advance_to(delim_at);
                self.ignore();
                self.lex_left_delim()
            }
            None => {
                self.advance_to(self.input.len());
                if self.pos > self.start {
                    self.emit(ItemType::Text);
                }
                self.emit(ItemType::Eof);
                false
            }
        }
    }

    fn lex_left_delim(&mut self) -> bool {
        self.advance_to(self.pos + LEFT.len());
        let trim = has_left_trim_marker(&self.input[self.pos..]);
        let after_marker = if trim { 2 } else { 0 };
        if self.input[self.pos + after_marker..].starts_with("/*") {
            self.advance_to(self.pos + after_marker);
            self.ignore();
            return self.lex_comment();
        }
        self.emit(ItemType::LeftDelim);
        self.advance_to(self.pos + after_marker);
        self.ignore();
        self.paren_depth = 0;
        self.inside_action = true;
        true
    }

    fn lex_comment(&mut self) -> bool {
        self.advance_to(self.pos + 2);
        let Some(x) = self.input[self.pos..].find("*/") else {
            self.error("unclosed comment".to_string());
            return false;
        };
        self.advance_to(self.pos + x + 2);
        let (delim, trim) = self.at_right_delim();
        if !delim {
            self.error("comment ends before closing delimiter".to_string());
            return false;
        }
        self.emit(ItemType::Comment);
        if trim {
            self.advance_to(self.pos + 2);
        }
        self.advance_to(self.pos + RIGHT.len());
        if trim {
            self.skip_leading_space();
        }
        self.ignore();
        true
    }

    /// Whether a right delimiter (optionally with a trim marker) is next.
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.input[self.pos..];
        if has_right_trim_marker(rest) && rest[2..].starts_with(RIGHT) {
            return (true, true);
        }
        if rest.starts_with(RIGHT) {
            return (true, false);
        }
        (false, false)
    }

    fn skip_leading_space(&mut self) {
        let rest = &self.input[self.pos..];
        let trimmed = rest.trim_start_matches(is_space);
        self.advance_to(self.pos + rest.len() - trimmed.len());
    }

    fn lex_right_delim(&mut self, trim: bool) -> bool {
        if trim {
            self.advance_to(self.pos + 2);
            self.ignore();
        }
        self.advance_to(self.pos + RIGHT.len());
        self.emit(ItemType::RightDelim);
        if trim {
            self.skip_leading_space();
            self.ignore();
        }
        self.inside_action = false;
        true
    }

    fn lex_inside_action(&mut self) -> bool {
        let (delim, trim) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return self.lex_right_delim(trim);
            }
            self.error("unclosed left paren".to_string());
            return false;
        }
        let Some(r) = self.next() else {
            self.error("unclosed action".to_string());
            return false;
        };
        match r {
            c if is_space(c) => {
                self.backup(c);
                self.lex_space();
            }
            '=' => self.emit(ItemType::Assign),
            ':' => {
                if self.next() != Some('=') {
                    self.error("expected :=".to_string());
                    return false;
                }
                self.emit(ItemType::Declare);
            }
            '|' => self.emit(ItemType::Pipe),
            '"' => return self.lex_quote(),
            '`' => return self.lex_raw_quote(),
            '$' => return self.lex_field_or_variable(ItemType::Variable),
            '\'' => return self.lex_char(),
            '.' => {
                // Special look-ahead for ".field" so we don't break the number.
                if let Some(c) = self.peek() {
                    if !c.is_ascii_digit() {
                        return self.lex_field_or_variable(ItemType::Field);
                    }
                } else {
                    return self.lex_field_or_variable(ItemType::Field);
                }
                self.backup('.');
                return self.lex_number();
            }
            '+' | '-' | '0'..='9' => {
                self.backup(r);
                return self.lex_number();
            }
            c if is_alnum(c) => {
                self.backup(c);
                return self.lex_identifier();
            }
            '(' => {
                self.emit(ItemType::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    self.error("unexpected right paren".to_string());
                    return false;
                }
                self.emit(ItemType::RightParen);
            }
            c if (c as u32) <= 0x7f && !c.is_ascii_control() => self.emit(ItemType::Char),
            c => {
                self.error(format!("unrecognized character in action: {}", go_u(c)));
                return false;
            }
        }
        true
    }

    fn lex_space(&mut self) {
        let mut num_spaces = 0;
        while let Some(c) = self.peek() {
            if !is_space(c) {
                break;
            }
            self.next();
            num_spaces += 1;
        }
        // A trim-marked closing delimiter starts with a space: leave it.
        let prev = self.pos - 1;
        if has_right_trim_marker(&self.input[prev..]) && self.input[prev + 2..].starts_with(RIGHT) {
            let c = self.input[prev..].chars().next().unwrap_or(' ');
            self.backup(c);
            if num_spaces == 1 {
                return;
            }
        }
        self.emit(ItemType::Space);
    }

    fn lex_quote(&mut self) -> bool {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some('\n') | None => {
                        self.error("unterminated quoted string".to_string());
                        return false;
                    }
                    Some(_) => {}
                },
                Some('\n') | None => {
                    self.error("unterminated quoted string".to_string());
                    return false;
                }
                Some('"') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemType::String);
        true
    }

    fn lex_raw_quote(&mut self) -> bool {
        loop {
            match self.next() {
                None => {
                    self.error("unterminated raw quoted string".to_string());
                    return false;
                }
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemType::RawString);
        true
    }

    fn lex_char(&mut self) -> bool {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some('\n') | None => {
                        self.error("unterminated character constant".to_string());
                        return false;
                    }
                    Some(_) => {}
                },
                Some('\n') | None => {
                    self.error("unterminated character constant".to_string());
                    return false;
                }
                Some('\'') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemType::CharConstant);
        true
    }

    fn at_terminator(&self) -> bool {
        let Some(r) = self.peek() else {
            return true;
        };
        if is_space(r) {
            return true;
        }
        if matches!(r, '.' | ',' | '|' | ':' | ')' | '(') {
            return true;
        }
        self.input[self.pos..].starts_with(RIGHT)
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> bool {
        if self.at_terminator() {
            if typ == ItemType::Variable {
                self.emit(ItemType::Variable);
            } else {
                self.emit(ItemType::Dot);
            }
            return true;
        }
        let mut last = None;
        while let Some(c) = self.next() {
            if !is_alnum(c) {
                self.backup(c);
                last = Some(c);
                break;
            }
        }
        if !self.at_terminator() {
            let c = last.unwrap_or(' ');
            self.error(format!("bad character {}", go_u(c)));
            return false;
        }
        self.emit(typ);
        true
    }

    fn lex_identifier(&mut self) -> bool {
        let mut last = None;
        while let Some(c) = self.next() {
            if !is_alnum(c) {
                self.backup(c);
                last = Some(c);
                break;
            }
        }
        if !self.at_terminator() {
            let c = last.unwrap_or(' ');
            self.error(format!("bad character {}", go_u(c)));
            return false;
        }
        let word = &self.input[self.start..self.pos];
        let typ = match word {
            "block" => ItemType::Block,
            "break" => ItemType::Break,
            "continue" => ItemType::Continue,
            "define" => ItemType::Define,
            "else" => ItemType::Else,
            "end" => ItemType::End,
            "if" => ItemType::If,
            "range" => ItemType::Range,
            "nil" => ItemType::Nil,
            "template" => ItemType::Template,
            "with" => ItemType::With,
            "true" | "false" => ItemType::Bool,
            _ => ItemType::Identifier,
        };
        self.emit(typ);
        true
    }

    fn lex_number(&mut self) -> bool {
        if !self.scan_number() {
            let text = &self.input[self.start..self.pos];
            self.error(format!("bad number syntax: {}", go_quote(text)));
            return false;
        }
        self.emit(ItemType::Number);
        true
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if let Some(c) = self.peek()
            && is_alnum(c)
        {
            self.next();
            return false;
        }
        true
    }
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-'
}

/// Go's `%q` for a string (close enough: Rust's escapes for controls).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#U`: `U+0041 'A'`.
pub fn go_u(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ItemType::*;

    fn types(s: &str) -> Vec<ItemType> {
        lex(s).into_iter().map(|i| i.typ).collect()
    }

    #[test]
    fn text_and_action() {
        assert_eq!(
            types("a {{user `x` | upper}} b"),
            [
                Text, LeftDelim, Identifier, Space, RawString, Space, Pipe, Space, Identifier,
                RightDelim, Text, Eof
            ]
        );
    }

    #[test]
    fn trim_markers_trim_surrounding_text() {
        let items = lex("a  {{- 1 -}}  b");
        assert_eq!(items[0].val, "a");
        assert_eq!(items.iter().filter(|i| i.typ == Space).count(), 0);
        assert_eq!(items[4].val, "b");
    }

    #[test]
    fn number_quirk_and_errors() {
        let items = lex("{{1.5.6}}");
        assert_eq!(items[1].val, "1.5");
        assert_eq!(items[2].val, ".6");
        assert_eq!(
            lex("{{ \"abc }}").last().unwrap().val,
            "unterminated quoted string"
        );
        assert_eq!(
            lex("{{ `abc").last().unwrap().val,
            "unterminated raw quoted string"
        );
        assert_eq!(lex("{{ a").last().unwrap().val, "unclosed action");
        assert_eq!(lex("{{ ) }}").last().unwrap().val, "unexpected right paren");
        assert_eq!(
            lex("{{ 3x }}").last().unwrap().val,
            "bad number syntax: \"3x\""
        );
        assert_eq!(lex("{{ é }}")[2].typ, Identifier);
        assert_eq!(
            lex("{{ \u{1} }}").last().unwrap().val,
            "unrecognized character in action: U+0001"
        );
    }

    #[test]
    fn comments_are_items_and_lines_are_counted() {
        let items = lex("x\n{{/* c\n */}}\n{{ y }}");
        assert!(items.iter().any(|i| i.typ == Comment));
        let y = items.iter().find(|i| i.val == "y").unwrap();
        assert_eq!(y.line, 4);
    }
}
