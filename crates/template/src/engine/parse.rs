//! Parser for Go text/template: builds the node tree from lexer items, with
//! Go's error wording ("template: root:1: function \"x\" not defined",
//! "unexpected {{end}}", "missing value for if", ...).

use super::lex::{Item, ItemType, go_quote, lex};
use std::collections::BTreeMap;
use std::fmt;

/// Go's builtin template functions: always defined, whatever functions the host adds.
const BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

/// Whether `name` is one of Go's builtin functions (the parser accepts it without asking the host).
fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// A parsed number constant, as Go's parse.NumberNode.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberNode {
    pub text: String,
    pub int: Option<i64>,
    pub float: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Identifier {
        pos: usize,
        name: String,
    },
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        value: bool,
    },
    Number {
        pos: usize,
        num: NumberNode,
    },
    String {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Identifier { pos, .. }
            | Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::String { pos, .. }
            | Arg::Chain { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action {
        pos: usize,
        pipe: Pipe,
    },
    If {
        pos: usize,
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    With {
        pos: usize,
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Range {
        pos: usize,
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break {
        pos: usize,
    },
    Continue {
        pos: usize,
    },
}

/// A parsed template: the root list and the templates it defines.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub root: Vec<Node>,
    pub defines: BTreeMap<String, Vec<Node>>,
}

/// A parse error, already in Go's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// 1-based line of the template text where it was found.
    pub line: usize,
}

/// Nesting deeper than this (parentheses, control structures) is rejected.
const MAX_DEPTH: usize = 200;

/// Parses `text`. `has_function` says whether an identifier names a function
/// (Go checks this at parse time).
pub fn parse(text: &str, has_function: &dyn Fn(&str) -> bool) -> Result<Tree, ParseError> {
    let items = lex(text);
    let mut p = Parser {
        items,
        i: 0,
        last_line: 1,
        vars: vec!["$".to_string()],
        has_function,
        range_depth: 0,
        depth: 0,
        defines: BTreeMap::new(),
        action_line: 0,
    };
    let root = p.parse_root()?;
    Ok(Tree {
        root,
        defines: p.defines,
    })
}

enum Listed {
    Node(Node),
    End,
    Else { pos: usize },
}

struct Parser<'a> {
    items: Vec<Item>,
    i: usize,
    last_line: usize,
    vars: Vec<String>,
    has_function: &'a dyn Fn(&str) -> bool,
    range_depth: usize,
    depth: usize,
    defines: BTreeMap<String, Vec<Node>>,
    action_line: usize,
}

type PResult<T> = Result<T, ParseError>;

impl Parser<'_> {
    fn next(&mut self) -> Item {
        let item = self.items.get(self.i).cloned().unwrap_or_else(|| {
            self.items
                .last()
                .cloned()
                .expect("lexer always ends with EOF")
        });
        if self.i < self.items.len() {
            self.i += 1;
        }
        self.last_line = item.line;
        item
    }

    fn backup(&mut self) {
        self.i = self.i.saturating_sub(1);
    }

    fn peek(&self) -> &Item {
        self.items
            .get(self.i)
            .unwrap_or_else(|| self.items.last().expect("lexer always ends with EOF"))
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let item = self.next();
            if item.typ != ItemType::Space {
                return item;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let item = self.next_non_space();
        self.backup();
        item
    }

    fn errorf(&self, msg: impl Into<String>) -> ParseError {
        let msg = msg.into();
        ParseError {
            message: format!("template: root:{}: {}", self.last_line, msg),
            line: self.last_line,
        }
    }

    fn unexpected(&self, item: &Item, context: &str) -> ParseError {
        if item.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0
                && self.action_line != item.line
                && !item.val.ends_with(" action")
            {
                extra = format!(" in {context}");
            }
            return self.errorf(format!("{item}{extra}"));
        }
        self.errorf(format!("unexpected {item} in {context}"))
    }

    fn expect(&mut self, typ: ItemType, context: &str) -> PResult<Item> {
        let token = self.next_non_space();
        if token.typ != typ {
            return Err(self.unexpected(&token, context));
        }
        Ok(token)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.errorf(format!("max nesting depth {MAX_DEPTH} exceeded")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn parse_root(&mut self) -> PResult<Vec<Node>> {
        let mut list = Vec::new();
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let save = self.i;
                self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.i = save;
            }
            match self.text_or_action()? {
                Listed::Node(n) => list.push(n),
                Listed::End => return Err(self.errorf("unexpected {{end}}")),
                Listed::Else { .. } => return Err(self.errorf("unexpected {{else}}")),
            }
        }
        Ok(list)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let name = self.expect_one_of_strings(context)?;
        self.expect(ItemType::RightDelim, context)?;
        let (list, end) = self.item_list()?;
        if !matches!(end, Listed::End) {
            return Err(self.errorf("unexpected {{else}} in define clause"));
        }
        self.add_define(name, list)
    }

    fn add_define(&mut self, name: String, list: Vec<Node>) -> PResult<()> {
        let empty = list
            .iter()
            .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
        match self.defines.get(&name) {
            Some(existing)
                if !empty
                    && !existing
                        .iter()
                        .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty())) =>
            {
                Err(self.errorf(format!(
                    "multiple definition of template {}",
                    go_quote(&name)
                )))
            }
            Some(_) if empty => Ok(()),
            _ => {
                self.defines.insert(name, list);
                Ok(())
            }
        }
    }

    fn expect_one_of_strings(&mut self, context: &str) -> PResult<String> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::String | ItemType::RawString => self.unquote(&token),
            _ => Err(self.unexpected(&token, context)),
        }
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Listed)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Listed::Node(n) => list.push(n),
                end => return Ok((list, end)),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Listed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Listed::Node(Node::Text(token.val))),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            ItemType::Comment => Ok(Listed::Node(Node::Text(String::new()))),
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> PResult<Listed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control().map(Listed::Node),
            ItemType::Break => return self.break_control(token.pos, "break").map(Listed::Node),
            ItemType::Continue => {
                return self.break_control(token.pos, "continue").map(Listed::Node);
            }
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Listed::End);
            }
            ItemType::If => return self.control(token.pos, "if").map(Listed::Node),
            ItemType::Range => return self.control(token.pos, "range").map(Listed::Node),
            ItemType::Template => return self.template_control().map(Listed::Node),
            ItemType::With => return self.control(token.pos, "with").map(Listed::Node),
            _ => {}
        }
        self.backup();
        let pos = self.peek().pos;
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Listed::Node(Node::Action { pos, pipe }))
    }

    fn break_control(&mut self, pos: usize, name: &str) -> PResult<Node> {
        let token = self.next_non_space();
        if token.typ != ItemType::RightDelim {
            return Err(self.unexpected(&token, &format!("{{{{{name}}}}}")));
        }
        if self.range_depth == 0 {
            return Err(self.errorf(format!("{{{{{name}}}}} outside {{{{range}}}}")));
        }
        Ok(if name == "break" {
            Node::Break { pos }
        } else {
            Node::Continue { pos }
        })
    }

    fn else_control(&mut self) -> PResult<Listed> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If {
            // "else if": leave the "if" for the enclosing control.
            return Ok(Listed::Else { pos: peek.pos });
        }
        let token = self.expect(ItemType::RightDelim, "else")?;
        Ok(Listed::Else { pos: token.pos })
    }

    fn control(&mut self, pos: usize, context: &str) -> PResult<Node> {
        self.enter()?;
        let vars_len = self.vars.len();
        let r = self.control_inner(pos, context);
        self.vars.truncate(vars_len);
        self.leave();
        r
    }

    fn control_inner(&mut self, pos: usize, context: &str) -> PResult<Node> {
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = listed?;
        let mut else_list = None;
        match next {
            Listed::End => {}
            Listed::Else { pos: else_pos } => {
                if context == "if" && self.peek().typ == ItemType::If {
                    self.next();
                    let inner = self.control(else_pos, "if")?;
                    else_list = Some(vec![inner]);
                } else if context == "with" && self.peek().typ == ItemType::With {
                    self.next();
                    let inner = self.control(else_pos, "with")?;
                    else_list = Some(vec![inner]);
                } else {
                    if self.peek().typ == ItemType::If || self.peek().typ == ItemType::With {
                        // "else if" inside range: not allowed, like Go.
                        let token = self.next();
                        return Err(self.unexpected(&token, "else"));
                    }
                    let (l, end) = self.item_list()?;
                    if !matches!(end, Listed::End) {
                        return Err(self.errorf("expected end; found {{else}}"));
                    }
                    else_list = Some(l);
                }
            }
            Listed::Node(_) => unreachable!("item_list returns only at end or else"),
        }
        Ok(match context {
            "if" => Node::If {
                pos,
                pipe,
                list,
                else_list,
            },
            "with" => Node::With {
                pos,
                pipe,
                list,
                else_list,
            },
            _ => Node::Range {
                pos,
                pipe,
                list,
                else_list,
            },
        })
    }

    fn block_control(&mut self) -> PResult<Node> {
        let context = "block clause";
        let token = self.next_non_space();
        let name = match token.typ {
            ItemType::String | ItemType::RawString => self.unquote(&token)?,
            _ => return Err(self.unexpected(&token, context)),
        };
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        self.enter()?;
        let listed = self.item_list();
        self.leave();
        let (list, end) = listed?;
        if !matches!(end, Listed::End) {
            return Err(self.errorf("unexpected {{else}} in block clause"));
        }
        self.add_define(name.clone(), list)?;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let token = self.next_non_space();
        let name = match token.typ {
            ItemType::String | ItemType::RawString => self.unquote(&token)?,
            _ => return Err(self.unexpected(&token, context)),
        };
        let pipe = if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            Some(self.pipeline(context, ItemType::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        let token = self.peek_non_space();
        let mut pipe = Pipe {
            pos: token.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Variable declarations.
        loop {
            let save = self.i;
            let v = self.next_non_space();
            if v.typ != ItemType::Variable {
                self.i = save;
                break;
            }
            let next = self.peek_non_space();
            match next.typ {
                ItemType::Assign | ItemType::Declare => {
                    pipe.is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    if pipe.is_assign && !self.vars.contains(&v.val) {
                        return Err(self.errorf(format!("undefined variable \"{}\"", v.val)));
                    }
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    break;
                }
                ItemType::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                                continue;
                            }
                            _ => return Err(self.errorf("range can only initialize variables")),
                        }
                    }
                    return Err(self.errorf(format!("too many declarations in {context}")));
                }
                _ => {
                    // Not a declaration: the variable is an operand.
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let token = self.next_non_space();
            if token.typ == end {
                if pipe.cmds.is_empty() {
                    return Err(self.errorf(format!("missing value for {context}")));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if matches!(
                        c.args.first(),
                        Some(
                            Arg::Bool { .. }
                                | Arg::Dot { .. }
                                | Arg::Nil { .. }
                                | Arg::Number { .. }
                                | Arg::String { .. }
                        )
                    ) {
                        return Err(self.errorf(format!(
                            "non executable command in pipeline stage {}",
                            i + 1
                        )));
                    }
                }
                return Ok(pipe);
            }
            match token.typ {
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == ItemType::Field {
            let f = self.next();
            fields.push(f.val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { pos, mut idents } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable { pos, mut idents } => {
                idents.extend(fields);
                Arg::Variable { pos, idents }
            }
            Arg::Bool { .. }
            | Arg::String { .. }
            | Arg::Number { .. }
            | Arg::Nil { .. }
            | Arg::Dot { .. } => {
                return Err(self.errorf(format!(
                    "unexpected . after term {}",
                    go_quote(&arg_string(&node))
                )));
            }
            other => Arg::Chain {
                pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                if !(self.has_function)(&token.val) && !is_builtin(&token.val) {
                    return Err(
                        self.errorf(format!("function {} not defined", go_quote(&token.val)))
                    );
                }
                Arg::Identifier {
                    pos,
                    name: token.val,
                }
            }
            ItemType::Dot => Arg::Dot { pos },
            ItemType::Nil => Arg::Nil { pos },
            ItemType::Variable => {
                let mut parts = token.val.split('.');
                let name = parts.next().unwrap_or("$").to_string();
                if !self.vars.contains(&name) {
                    return Err(self.errorf(format!("undefined variable {}", go_quote(&name))));
                }
                let mut idents = vec![name];
                idents.extend(parts.map(str::to_string));
                Arg::Variable { pos, idents }
            }
            ItemType::Field => Arg::Field {
                pos,
                idents: token.val[1..].split('.').map(str::to_string).collect(),
            },
            ItemType::Bool => Arg::Bool {
                pos,
                value: token.val == "true",
            },
            ItemType::CharConstant | ItemType::Number => {
                let num = parse_number(&token).map_err(|m| self.errorf(m))?;
                Arg::Number { pos, num }
            }
            ItemType::LeftParen => {
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", ItemType::RightParen);
                self.leave();
                Arg::Pipe(Box::new(pipe?))
            }
            ItemType::String | ItemType::RawString => {
                let text = self.unquote(&token)?;
                Arg::String {
                    pos,
                    quoted: token.val,
                    text,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }

    fn unquote(&self, token: &Item) -> PResult<String> {
        unquote(&token.val).map_err(|m| self.errorf(m))
    }
}

/// Go's strconv.Unquote for "..." and `...` literals.
pub fn unquote(s: &str) -> Result<String, String> {
    if let Some(raw) = s.strip_prefix('`') {
        return raw
            .strip_suffix('`')
            .map(|r| r.replace('\r', ""))
            .ok_or_else(|| "invalid syntax".to_string());
    }
    let inner = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .ok_or_else(|| "invalid syntax".to_string())?;
    unescape(inner, '"').map_err(|_| "invalid syntax".to_string())
}

fn unescape(s: &str, quote: char) -> Result<String, ()> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote || c == '\n' {
            return Err(());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or(())?;
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '\'' | '"' => {
                if e != quote {
                    return Err(());
                }
                out.push(e)
            }
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let d = chars.next().and_then(|c| c.to_digit(16)).ok_or(())?;
                    v = v * 16 + d;
                }
                if e == 'x' {
                    // A byte; only valid UTF-8 sequences survive in a Rust string.
                    out.push(char::from_u32(v).ok_or(())?);
                } else {
                    out.push(char::from_u32(v).ok_or(())?);
                }
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).ok_or(())?;
                for _ in 0..2 {
                    let d = chars.next().and_then(|c| c.to_digit(8)).ok_or(())?;
                    v = v * 8 + d;
                }
                if v > 255 {
                    return Err(());
                }
                out.push(char::from_u32(v).ok_or(())?);
            }
            _ => return Err(()),
        }
    }
    Ok(out)
}

/// Parses a number or character constant as Go's parse.NewNumber.
fn parse_number(token: &Item) -> Result<NumberNode, String> {
    let text = token.val.clone();
    if token.typ == ItemType::CharConstant {
        let inner = text
            .strip_prefix('\'')
            .and_then(|t| t.strip_suffix('\''))
            .ok_or_else(|| format!("malformed character constant: {text}"))?;
        let s =
            unescape(inner, '\'').map_err(|_| format!("malformed character constant: {text}"))?;
        let mut cs = s.chars();
        let (Some(c), None) = (cs.next(), cs.next()) else {
            return Err(format!("malformed character constant: {text}"));
        };
        return Ok(NumberNode {
            text,
            int: Some(c as i64),
            float: Some(c as u32 as f64),
        });
    }
    if text.ends_with('i') {
        return Err(format!(
            "complex constants are not supported: {}",
            go_quote(&text)
        ));
    }
    let int = parse_go_int(&text);
    let mut float = int.map(|i| i as f64);
    let mut int_v = int;
    if float.is_none()
        && let Some(f) = parse_go_float(&text)
    {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", go_quote(&text)));
        }
        float = Some(f);
        if f == f.trunc() && f.abs() < 9.2e18 {
            int_v = Some(f as i64);
        }
    }
    if int_v.is_none() && float.is_none() {
        return Err(format!("illegal number syntax: {}", go_quote(&text)));
    }
    Ok(NumberNode {
        text,
        int: int_v,
        float,
    })
}

/// strconv.ParseInt(s, 0, 64).
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits, prefixed) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r, true)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r, true)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r, true)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..], true)
        } else {
            (10, body, false)
        };
    if !underscores_ok(digits, prefixed) {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    let mag = u64::from_str_radix(&clean, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 + 1 {
            Some(-(mag as i128) as i64)
        } else {
            None
        }
    } else {
        i64::try_from(mag).ok()
    }
}

fn underscores_ok(digits: &str, prefixed: bool) -> bool {
    if !digits.contains('_') {
        return true;
    }
    // Underscores must separate digits (or follow a base prefix).
    let mut prev_underscore = !prefixed;
    let mut saw_digit = false;
    for c in digits.chars() {
        if c == '_' {
            if prev_underscore && (saw_digit || !prefixed) {
                return false;
            }
            prev_underscore = true;
        } else {
            prev_underscore = false;
            saw_digit = true;
        }
    }
    !prev_underscore
}

/// strconv.ParseFloat(s, 64): decimal and hexadecimal (`0x1p4`) forms.
fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.trim_start_matches(['+', '-']);
    if s.contains('_') && !underscores_ok(body, false) {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    if lower.contains("inf") || lower.contains("nan") {
        return None;
    }
    if let Some(hex) = lower.trim_start_matches(['+', '-']).strip_prefix("0x") {
        let neg = lower.starts_with('-');
        let (mant, exp) = hex.split_once('p')?;
        let exp: i32 = exp.parse().ok()?;
        let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let mut v = 0f64;
        for c in int_part.chars() {
            v = v * 16.0 + f64::from(c.to_digit(16)?);
        }
        let mut scale = 1.0 / 16.0;
        for c in frac_part.chars() {
            v += f64::from(c.to_digit(16)?) * scale;
            scale /= 16.0;
        }
        let v = v * 2f64.powi(exp);
        return v.is_finite().then_some(if neg { -v } else { v });
    }
    clean.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Go's String() form of an argument node, used in error contexts.
pub fn arg_string(a: &Arg) -> String {
    match a {
        Arg::Identifier { name, .. } => name.clone(),
        Arg::Field { idents, .. } => idents.iter().map(|i| format!(".{i}")).collect(),
        Arg::Variable { idents, .. } => idents.join("."),
        Arg::Dot { .. } => ".".to_string(),
        Arg::Nil { .. } => "nil".to_string(),
        Arg::Bool { value, .. } => value.to_string(),
        Arg::Number { num, .. } => num.text.clone(),
        Arg::String { quoted, .. } => quoted.clone(),
        Arg::Pipe(p) => format!("({})", pipe_string(p)),
        Arg::Chain { node, fields, .. } => {
            let mut s = match node.as_ref() {
                Arg::Pipe(p) => format!("({})", pipe_string(p)),
                other => arg_string(other),
            };
            for f in fields {
                s.push('.');
                s.push_str(f);
            }
            s
        }
    }
}

pub fn command_string(c: &Command) -> String {
    c.args.iter().map(arg_string).collect::<Vec<_>>().join(" ")
}

pub fn pipe_string(p: &Pipe) -> String {
    let mut s = String::new();
    if !p.decl.is_empty() {
        s.push_str(&p.decl.join(", "));
        s.push_str(if p.is_assign { " = " } else { " := " });
    }
    s.push_str(
        &p.cmds
            .iter()
            .map(command_string)
            .collect::<Vec<_>>()
            .join(" | "),
    );
    s
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Text(t) => write!(f, "{}", go_quote(t)),
            Node::Action { pipe, .. } => write!(f, "{{{{{}}}}}", pipe_string(pipe)),
            Node::If { pipe, .. } => write!(f, "{{{{if {}}}}}", pipe_string(pipe)),
            Node::With { pipe, .. } => write!(f, "{{{{with {}}}}}", pipe_string(pipe)),
            Node::Range { pipe, .. } => write!(f, "{{{{range {}}}}}", pipe_string(pipe)),
            Node::Template { name, pipe, .. } => match pipe {
                Some(p) => write!(f, "{{{{template {} {}}}}}", go_quote(name), pipe_string(p)),
                None => write!(f, "{{{{template {}}}}}", go_quote(name)),
            },
            Node::Break { .. } => f.write_str("{{break}}"),
            Node::Continue { .. } => f.write_str("{{continue}}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funcs(name: &str) -> bool {
        matches!(name, "user" | "upper" | "split" | "isotime")
    }

    fn perr(s: &str) -> String {
        parse(s, &funcs).unwrap_err().message
    }

    #[test]
    fn parses_pipes_parens_and_control() {
        let t = parse("{{ user `a` | upper }}{{ if eq (split \"a,b\" \",\" 1) \"b\" }}y{{ else if 1 }}z{{ end }}", &funcs).unwrap();
        assert_eq!(t.root.len(), 2);
        match &t.root[0] {
            Node::Action { pipe, .. } => assert_eq!(pipe_string(pipe), "user `a` | upper"),
            n => panic!("{n:?}"),
        }
        match &t.root[1] {
            Node::If {
                else_list: Some(e), ..
            } => assert!(matches!(e[0], Node::If { .. })),
            n => panic!("{n:?}"),
        }
    }

    #[test]
    fn go_parse_errors() {
        assert_eq!(
            perr("{{ nope }}"),
            "template: root:1: function \"nope\" not defined"
        );
        assert_eq!(perr("{{ end }}"), "template: root:1: unexpected {{end}}");
        assert_eq!(perr("{{ else }}"), "template: root:1: unexpected {{else}}");
        assert_eq!(
            perr("{{ if }}{{end}}"),
            "template: root:1: missing value for if"
        );
        assert_eq!(perr("{{ if 1 }}"), "template: root:1: unexpected EOF");
        assert_eq!(
            perr("{{ | }}"),
            "template: root:1: unexpected \"|\" in command"
        );
        assert_eq!(
            perr("{{ 1.5.6 }}"),
            "template: root:1: unexpected \".6\" in operand"
        );
        assert_eq!(
            perr("{{ \"x }}"),
            "template: root:1: unterminated quoted string"
        );
        assert_eq!(
            perr("{{ $x }}"),
            "template: root:1: undefined variable \"$x\""
        );
        assert_eq!(perr("{{ }}"), "template: root:1: missing value for command");
        assert_eq!(
            perr("{{ user | | upper }}"),
            "template: root:1: unexpected \"|\" in command"
        );
        assert_eq!(
            perr("{{ user | 1 }}"),
            "template: root:1: non executable command in pipeline stage 2"
        );
        assert_eq!(
            perr("\n\n{{ nope }}"),
            "template: root:3: function \"nope\" not defined"
        );
    }

    #[test]
    fn trailing_pipe_is_accepted_like_go() {
        assert!(parse("{{ user `a` | }}", &funcs).is_ok());
    }

    #[test]
    fn numbers_like_go() {
        let n = |s: &str| match &parse(&format!("{{{{ {s} }}}}"), &funcs).unwrap().root[0] {
            Node::Action { pipe, .. } => match &pipe.cmds[0].args[0] {
                Arg::Number { num, .. } => (num.int, num.float),
                a => panic!("{a:?}"),
            },
            n => panic!("{n:?}"),
        };
        assert_eq!(n("0x10"), (Some(16), Some(16.0)));
        assert_eq!(n("1e3"), (Some(1000), Some(1000.0)));
        assert_eq!(n("1_000"), (Some(1000), Some(1000.0)));
        assert_eq!(n("'a'"), (Some(97), Some(97.0)));
        assert_eq!(n("0x1p4"), (Some(16), Some(16.0)));
        assert_eq!(n("0x1.8p1"), (Some(3), Some(3.0)));
        assert_eq!(n("1.5"), (None, Some(1.5)));
        assert_eq!(n("-5"), (Some(-5), Some(-5.0)));
        assert!(perr("{{ 99999999999999999999 }}").contains("integer overflow"));
    }

    #[test]
    fn deep_parens_are_an_error_not_a_crash() {
        let s = format!("{{{{{}1{}}}}}", "(".repeat(5000), ")".repeat(5000));
        assert!(perr(&s).contains("max nesting depth"));
    }

    #[test]
    fn unquote_go_escapes() {
        assert_eq!(
            unquote(r#""\x41\101\u0041\U00000041\t""#).unwrap(),
            "AAAA\t"
        );
        assert_eq!(unquote("`a\\n`").unwrap(), "a\\n");
        assert!(unquote(r#""\q""#).is_err());
    }
}
