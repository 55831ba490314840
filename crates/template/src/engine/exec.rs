//! Execution of a parsed template with Go's semantics: pipelines pass the
//! previous value as the last argument, functions are type-checked like Go's
//! reflection-based calls, missing map keys print `<no value>`, and errors read
//! "template: root:1:7: executing \"root\" at <env `HOME`>: error calling env:
//! ...".

use super::gofmt;
use super::parse::{
    Arg, Command, Node, NumberNode, Pipe, Tree, arg_string, command_string, pipe_string,
};
use super::value::Value;
use std::collections::BTreeMap;

/// A parameter type of a template function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Int,
    Any,
}

impl Ty {
    fn go_name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Any => "interface {}",
        }
    }
}

/// A function's signature: fixed parameters and an optional variadic tail.
#[derive(Debug, Clone, Copy)]
pub struct Sig {
    pub params: &'static [Ty],
    pub variadic: Option<Ty>,
}

/// The functions a template can call, beyond Go's builtins.
pub trait FuncHost {
    fn signature(&self, name: &str) -> Option<Sig>;
    /// Calls `name` with type-checked arguments.
    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String>;
}

fn builtin_sig(name: &str) -> Option<Sig> {
    use Ty::*;
    Some(match name {
        "and" | "or" => Sig {
            params: &[Any],
            variadic: Some(Any),
        },
        "not" | "len" => Sig {
            params: &[Any],
            variadic: None,
        },
        "index" | "slice" | "call" | "eq" => Sig {
            params: &[Any],
            variadic: Some(Any),
        },
        "print" | "println" | "html" | "js" | "urlquery" => Sig {
            params: &[],
            variadic: Some(Any),
        },
        "printf" => Sig {
            params: &[Str],
            variadic: Some(Any),
        },
        "ne" | "lt" | "le" | "gt" | "ge" => Sig {
            params: &[Any, Any],
            variadic: None,
        },
        _ => return None,
    })
}

/// Strings larger than this abort execution instead of exhausting memory.
pub const MAX_VALUE_LEN: usize = 16 << 20;
const MAX_TEMPLATE_DEPTH: usize = 100;

/// An execution error, already in Go's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecError {
    pub message: String,
    /// Byte offset in the template text of the node being executed.
    pub pos: usize,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

/// Executes `tree` (parsed from `text`) with `data` as dot.
pub fn execute(
    tree: &Tree,
    text: &str,
    host: &dyn FuncHost,
    data: &Value,
) -> Result<String, ExecError> {
    let mut s = State {
        tree,
        text,
        host,
        name: "root".to_string(),
        node: None,
        vars: vec![("$".to_string(), data.clone())],
        depth: 0,
        out: String::new(),
    };
    s.walk(data, &tree.root)?;
    Ok(s.out)
}

struct State<'a> {
    tree: &'a Tree,
    text: &'a str,
    host: &'a dyn FuncHost,
    name: String,
    /// Position and Go string form of the node being evaluated.
    node: Option<(usize, String)>,
    vars: Vec<(String, Value)>,
    depth: usize,
    out: String,
}

type R<T> = Result<T, ExecError>;

impl State<'_> {
    fn at(&mut self, pos: usize, repr: String) {
        self.node = Some((pos, repr));
    }

    fn at_arg(&mut self, a: &Arg) {
        self.at(a.pos(), arg_string(a));
    }

    fn errorf(&self, msg: impl Into<String>) -> ExecError {
        let msg = msg.into();
        match &self.node {
            None => ExecError {
                message: format!("template: {}: {}", self.name, msg),
                pos: 0,
            },
            Some((pos, repr)) => {
                let pos = (*pos).min(self.text.len());
                let before = &self.text[..pos];
                let line = 1 + before.matches('\n').count();
                let col = match before.rfind('\n') {
                    Some(nl) => pos - (nl + 1),
                    None => pos,
                };
                // Go prints the whole node (no truncation), as Packer shows.
                let ctx = repr;
                ExecError {
                    message: format!(
                        "template: root:{line}:{col}: executing \"{}\" at <{ctx}>: {msg}",
                        self.name
                    ),
                    pos,
                }
            }
        }
    }

    fn write(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > MAX_VALUE_LEN {
            return Err(self.errorf(format!("output larger than {MAX_VALUE_LEN} bytes")));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, list: &[Node]) -> R<Flow> {
        for node in list {
            match self.walk_node(dot, node)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_node(&mut self, dot: &Value, node: &Node) -> R<Flow> {
        match node {
            Node::Text(t) => {
                self.write(t)?;
                Ok(Flow::Normal)
            }
            Node::Action { pos, pipe } => {
                self.at(*pos, format!("{{{{{}}}}}", pipe_string(pipe)));
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    let s = v.go_string();
                    self.write(&s)?;
                }
                Ok(Flow::Normal)
            }
            Node::If {
                pipe,
                list,
                else_list,
                ..
            }
            | Node::With {
                pipe,
                list,
                else_list,
                ..
            } => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, pipe)?;
                let is_with = matches!(node, Node::With { .. });
                let r = if v.truth() {
                    if is_with {
                        self.walk(&v, list)
                    } else {
                        self.walk(dot, list)
                    }
                } else if let Some(e) = else_list {
                    self.walk(dot, e)
                } else {
                    Ok(Flow::Normal)
                };
                self.vars.truncate(mark);
                r
            }
            Node::Range {
                pos,
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let r = self.walk_range(dot, *pos, pipe, list, else_list.as_deref());
                self.vars.truncate(mark);
                r
            }
            Node::Template { pos, name, pipe } => {
                self.at(*pos, node.to_string());
                let Some(body) = self.tree.defines.get(name) else {
                    return Err(self.errorf(format!(
                        "template {} not defined",
                        super::lex::go_quote(name)
                    )));
                };
                if self.depth >= MAX_TEMPLATE_DEPTH {
                    return Err(self.errorf(format!(
                        "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
                    )));
                }
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
                let saved_name = std::mem::replace(&mut self.name, name.clone());
                self.depth += 1;
                let r = self.walk(&new_dot, body);
                self.depth -= 1;
                self.vars = saved_vars;
                self.name = saved_name;
                r.map(|_| Flow::Normal)
            }
            Node::Break { .. } => Ok(Flow::Break),
            Node::Continue { .. } => Ok(Flow::Continue),
        }
    }

    fn walk_range(
        &mut self,
        dot: &Value,
        pos: usize,
        pipe: &Pipe,
        list: &[Node],
        else_list: Option<&[Node]>,
    ) -> R<Flow> {
        // The declarations are set per element, not from the pipeline.
        let decl = pipe.decl.clone();
        let bare = Pipe {
            decl: Vec::new(),
            ..pipe.clone()
        };
        self.at(pos, format!("{{{{range {}}}}}", pipe_string(pipe)));
        let v = self.eval_pipeline(dot, &bare)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), v.clone()))
                .collect(),
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Missing | Value::Nil => Vec::new(),
            other => {
                return Err(self.errorf(format!("range can't iterate over {}", other.go_string())));
            }
        };
        if items.is_empty() {
            if let Some(e) = else_list {
                return self.walk(dot, e);
            }
            return Ok(Flow::Normal);
        }
        let mark = self.vars.len();
        for (key, elem) in items {
            self.vars.truncate(mark);
            match decl.len() {
                0 => {}
                1 => self.vars.push((decl[0].clone(), elem.clone())),
                _ => {
                    self.vars.push((decl[0].clone(), key));
                    self.vars.push((decl[1].clone(), elem.clone()));
                }
            }
            match self.walk(&elem, list)? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
            }
        }
        Ok(Flow::Normal)
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            value = Some(v);
        }
        let value = value.unwrap_or(Value::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = value.clone();
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], final_: &Option<Value>) -> R<()> {
        if args.len() > 1 || final_.is_some() {
            return Err(self.errorf(format!(
                "can't give argument to non-function {}",
                arg_string(&args[0])
            )));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, final_: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.at_arg(first);
                return self.eval_field_chain(dot.clone(), idents, &cmd.args, final_);
            }
            Arg::Chain { .. } => return self.eval_chain(dot, first, &cmd.args, final_),
            Arg::Identifier { name, .. } => {
                return self.eval_function(dot, name, first, cmd, &cmd.args, final_);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &final_)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable { .. } => return self.eval_variable(dot, first, &cmd.args, final_),
            _ => {}
        }
        self.at_arg(first);
        self.not_a_function(&cmd.args, &final_)?;
        match first {
            Arg::Bool { value, .. } => Ok(Value::Bool(*value)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Err(self.errorf("nil is not a command")),
            Arg::Number { num, .. } => self.ideal_constant(num),
            Arg::String { text, .. } => Ok(Value::Str(text.clone())),
            _ => Err(self.errorf(format!("can't evaluate command {}", arg_string(first)))),
        }
    }

    fn ideal_constant(&self, num: &NumberNode) -> R<Value> {
        let t = &num.text;
        let is_hex_int = t.contains(['x', 'X']) && !t.contains(['p', 'P']);
        let is_rune = t.starts_with('\'');
        if let Some(f) = num.float
            && !is_hex_int
            && !is_rune
            && t.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(f));
        }
        match num.int {
            Some(i) => Ok(Value::Int(i)),
            None => Err(self.errorf(format!("{t} overflows int"))),
        }
    }

    fn eval_field_chain(
        &mut self,
        receiver: Value,
        idents: &[String],
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let n = idents.len();
        let mut receiver = receiver;
        for ident in &idents[..n.saturating_sub(1)] {
            receiver = self.eval_field(ident, &[], None, receiver)?;
        }
        match idents.last() {
            Some(last) => self.eval_field(last, args, final_, receiver),
            None => Ok(receiver),
        }
    }

    fn eval_field(
        &mut self,
        name: &str,
        args: &[Arg],
        final_: Option<Value>,
        receiver: Value,
    ) -> R<Value> {
        match receiver {
            Value::Missing | Value::Nil => Ok(Value::Missing),
            Value::Map(m) => {
                if args.len() > 1 || final_.is_some() {
                    return Err(self.errorf(format!("{name} is not a method but has arguments")));
                }
                Ok(m.get(name).cloned().unwrap_or(Value::Missing))
            }
            other => Err(self.errorf(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            ))),
        }
    }

    fn eval_variable(
        &mut self,
        dot: &Value,
        arg: &Arg,
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let Arg::Variable { idents, .. } = arg else {
            return Err(self.errorf("internal error: not a variable"));
        };
        self.at_arg(arg);
        let name = &idents[0];
        let Some((_, value)) = self.vars.iter().rev().find(|(n, _)| n == name).cloned() else {
            return Err(self.errorf(format!("undefined variable: {name}")));
        };
        if idents.len() == 1 {
            self.not_a_function(args, &final_)?;
            return Ok(value);
        }
        let _ = dot;
        self.eval_field_chain(value, &idents[1..], args, final_)
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        chain: &Arg,
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let Arg::Chain { node, fields, .. } = chain else {
            return Err(self.errorf("internal error: not a chain"));
        };
        self.at_arg(chain);
        if matches!(node.as_ref(), Arg::Nil { .. }) {
            return Err(self.errorf(format!(
                "indirection through explicit nil in {}",
                arg_string(chain)
            )));
        }
        let receiver = self.eval_arg(dot, Ty::Any, node)?;
        self.eval_field_chain(receiver, fields, args, final_)
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        ident: &Arg,
        cmd: &Command,
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        self.at_arg(ident);
        if name == "and" || name == "or" {
            return self.eval_and_or(dot, name, cmd, args, final_);
        }
        let sig = match self.host.signature(name) {
            Some(sig) => sig,
            None => match builtin_sig(name) {
                Some(sig) => sig,
                None => {
                    return Err(self.errorf(format!(
                        "{} is not a defined function",
                        super::lex::go_quote(name)
                    )));
                }
            },
        };
        let argv = self.eval_call_args(dot, name, sig, &args[1..], final_)?;
        let result = if self.host.signature(name).is_some() {
            self.host.call(name, argv)
        } else {
            call_builtin(name, argv)
        };
        match result {
            Ok(v) => {
                if let Value::Str(s) = &v
                    && s.len() > MAX_VALUE_LEN
                {
                    self.at(cmd.pos, command_string(cmd));
                    return Err(self.errorf(format!(
                        "result of {name} is larger than {MAX_VALUE_LEN} bytes"
                    )));
                }
                Ok(v)
            }
            Err(e) => {
                self.at(cmd.pos, command_string(cmd));
                Err(self.errorf(format!("error calling {name}: {e}")))
            }
        }
    }

    fn eval_call_args(
        &mut self,
        dot: &Value,
        name: &str,
        sig: Sig,
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Vec<Value>> {
        let num_in = args.len() + usize::from(final_.is_some());
        let fixed = sig.params.len();
        if sig.variadic.is_some() {
            if num_in < fixed {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want at least {fixed} got {num_in}"
                )));
            }
        } else if num_in != fixed {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want {fixed} got {num_in}"
            )));
        }
        let ty_at = |i: usize| {
            if i < fixed {
                sig.params[i]
            } else {
                sig.variadic.unwrap_or(Ty::Any)
            }
        };
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            argv.push(self.eval_arg(dot, ty_at(i), a)?);
        }
        if let Some(f) = final_ {
            let ty = ty_at(args.len());
            argv.push(self.validate_type(f, ty)?);
        }
        Ok(argv)
    }

    fn eval_and_or(
        &mut self,
        dot: &Value,
        name: &str,
        cmd: &Command,
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let operands = &args[1..];
        let num_in = operands.len() + usize::from(final_.is_some());
        if num_in < 1 {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want at least 1 got 0"
            )));
        }
        let want_true = name == "or";
        let mut last = Value::Missing;
        for a in operands {
            let v = self.eval_arg(dot, Ty::Any, a)?;
            if v.truth() == want_true {
                return Ok(v);
            }
            last = v;
        }
        if let Some(f) = final_ {
            last = f;
        }
        let _ = cmd;
        Ok(last)
    }

    fn validate_type(&self, v: Value, ty: Ty) -> R<Value> {
        match (ty, &v) {
            (Ty::Any, Value::Missing) => Ok(Value::Nil),
            (Ty::Any, _) => Ok(v),
            (Ty::Str, Value::Str(_)) | (Ty::Int, Value::Int(_)) => Ok(v),
            (_, Value::Missing) => {
                Err(self.errorf(format!("invalid value; expected {}", ty.go_name())))
            }
            (_, other) => Err(self.errorf(format!(
                "wrong type for value; expected {}; got {}",
                ty.go_name(),
                other.type_name()
            ))),
        }
    }

    fn eval_arg(&mut self, dot: &Value, ty: Ty, arg: &Arg) -> R<Value> {
        self.at_arg(arg);
        match arg {
            Arg::Dot { .. } => return self.validate_type(dot.clone(), ty),
            Arg::Nil { .. } => {
                if ty == Ty::Any {
                    return Ok(Value::Nil);
                }
                return Err(self.errorf(format!("cannot assign nil to {}", ty.go_name())));
            }
            Arg::Field { idents, .. } => {
                let v =
                    self.eval_field_chain(dot.clone(), idents, std::slice::from_ref(arg), None)?;
                return self.validate_type(v, ty);
            }
            Arg::Variable { .. } => {
                let v = self.eval_variable(dot, arg, std::slice::from_ref(arg), None)?;
                return self.validate_type(v, ty);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, p)?;
                return self.validate_type(v, ty);
            }
            Arg::Identifier { name, .. } => {
                let cmd = Command {
                    pos: arg.pos(),
                    args: vec![arg.clone()],
                };
                let v =
                    self.eval_function(dot, name, arg, &cmd, std::slice::from_ref(arg), None)?;
                return self.validate_type(v, ty);
            }
            Arg::Chain { .. } => {
                let v = self.eval_chain(dot, arg, &[], None)?;
                return self.validate_type(v, ty);
            }
            _ => {}
        }
        match ty {
            Ty::Int => match arg {
                Arg::Number { num, .. } if num.int.is_some() => {
                    Ok(Value::Int(num.int.unwrap_or_default()))
                }
                _ => Err(self.errorf(format!("expected integer; found {}", arg_string(arg)))),
            },
            Ty::Str => match arg {
                Arg::String { text, .. } => Ok(Value::Str(text.clone())),
                _ => Err(self.errorf(format!("expected string; found {}", arg_string(arg)))),
            },
            Ty::Any => match arg {
                Arg::Bool { value, .. } => Ok(Value::Bool(*value)),
                Arg::Number { num, .. } => self.ideal_constant(num),
                Arg::String { text, .. } => Ok(Value::Str(text.clone())),
                _ => Err(self.errorf(format!(
                    "can't handle {} for arg of type interface {{}}",
                    arg_string(arg)
                ))),
            },
        }
    }
}

fn call_builtin(name: &str, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "not" => Ok(Value::Bool(!args[0].truth())),
        "len" => match &args[0] {
            Value::Str(s) => Ok(Value::Int(s.len() as i64)),
            Value::Map(m) => Ok(Value::Int(m.len() as i64)),
            Value::List(l) => Ok(Value::Int(l.len() as i64)),
            Value::Nil | Value::Missing => Err("len of nil pointer".to_string()),
            other => Err(format!("len of type {}", other.type_name())),
        },
        "index" => {
            let mut item = args[0].clone();
            for idx in &args[1..] {
                item = match (&item, idx) {
                    (Value::Str(s), Value::Int(i)) => {
                        let b = s.as_bytes();
                        if *i < 0 || *i as usize >= b.len() {
                            return Err(format!("error calling index: index out of range: {i}"));
                        }
                        Value::Int(b[*i as usize] as i64)
                    }
                    (Value::List(l), Value::Int(i)) => {
                        if *i < 0 || *i as usize >= l.len() {
                            return Err(format!("error calling index: index out of range: {i}"));
                        }
                        l[*i as usize].clone()
                    }
                    (Value::Map(m), Value::Str(k)) => m.get(k).cloned().unwrap_or(Value::Missing),
                    (Value::Nil | Value::Missing, _) => {
                        return Err("index of untyped nil".to_string());
                    }
                    (Value::Str(_) | Value::List(_), other) => {
                        return Err(format!(
                            "cannot index slice/array with type {}",
                            other.type_name()
                        ));
                    }
                    (Value::Map(_), other) => {
                        return Err(format!(
                            "value has type {}; should be string",
                            other.type_name()
                        ));
                    }
                    (other, _) => {
                        return Err(format!("can't index item of type {}", other.type_name()));
                    }
                };
            }
            Ok(item)
        }
        "slice" => {
            let Value::Str(s) = &args[0] else {
                return Err(format!("can't slice item of type {}", args[0].type_name()));
            };
            let mut idx = Vec::new();
            for a in &args[1..] {
                match a {
                    Value::Int(i) if *i >= 0 => idx.push(*i as usize),
                    Value::Int(i) => return Err(format!("index out of range: {i}")),
                    other => {
                        return Err(format!(
                            "cannot index slice/array with type {}",
                            other.type_name()
                        ));
                    }
                }
            }
            if idx.len() > 2 {
                return Err("cannot 3-index slice a string".to_string());
            }
            let lo = idx.first().copied().unwrap_or(0);
            let hi = idx.get(1).copied().unwrap_or(s.len());
            if lo > hi || hi > s.len() {
                return Err(format!("invalid slice index: {lo} > {hi}"));
            }
            let b = &s.as_bytes()[lo..hi];
            Ok(Value::Str(String::from_utf8_lossy(b).into_owned()))
        }
        "call" => Err(format!("non-function of type {}", args[0].type_name())),
        "print" => Ok(Value::Str(gofmt::sprint(&args))),
        "println" => Ok(Value::Str(gofmt::sprintln(&args))),
        "printf" => {
            let Value::Str(f) = &args[0] else {
                return Err("printf format is not a string".to_string());
            };
            Ok(Value::Str(gofmt::sprintf(f, &args[1..])))
        }
        "html" | "js" | "urlquery" => {
            let s = match args.as_slice() {
                [Value::Str(s)] => s.clone(),
                _ => gofmt::sprint(&args),
            };
            Ok(Value::Str(match name {
                "html" => gofmt::html_escape(&s),
                "js" => gofmt::js_escape(&s),
                _ => gofmt::url_query_escape(&s),
            }))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".to_string());
            }
            for other in &args[1..] {
                if go_eq(&args[0], other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => Ok(Value::Bool(!go_eq(&args[0], &args[1])?)),
        "lt" => Ok(Value::Bool(go_lt(&args[0], &args[1])?)),
        "le" => Ok(Value::Bool(
            go_lt(&args[0], &args[1])? || go_eq(&args[0], &args[1])?,
        )),
        "gt" => Ok(Value::Bool(
            !go_lt(&args[0], &args[1])? && !go_eq(&args[0], &args[1])?,
        )),
        "ge" => Ok(Value::Bool(!go_lt(&args[0], &args[1])?)),
        _ => Err(format!("function {name} not defined")),
    }
}

const BAD_COMPARISON: &str = "incompatible types for comparison";
const BAD_COMPARISON_TYPE: &str = "invalid type for comparison";

fn go_eq(a: &Value, b: &Value) -> Result<bool, String> {
    use Value::*;
    Ok(match (a, b) {
        (Missing | Nil, Missing | Nil) => true,
        (Missing | Nil, _) | (_, Missing | Nil) => false,
        (Bool(x), Bool(y)) => x == y,
        (Int(x), Int(y)) => x == y,
        (Float(x), Float(y)) => x == y,
        (Str(x), Str(y)) => x == y,
        (Map(_) | List(_), _) | (_, Map(_) | List(_)) => {
            return Err(format!(
                "non-comparable type {}: {}",
                b.go_string(),
                b.type_name()
            ));
        }
        _ => return Err(BAD_COMPARISON.to_string()),
    })
}

fn go_lt(a: &Value, b: &Value) -> Result<bool, String> {
    use Value::*;
    match (a, b) {
        (Int(x), Int(y)) => Ok(x < y),
        (Float(x), Float(y)) => Ok(x < y),
        (Str(x), Str(y)) => Ok(x < y),
        (Int(_) | Float(_) | Str(_), Int(_) | Float(_) | Str(_)) => Err(BAD_COMPARISON.to_string()),
        _ => Err(BAD_COMPARISON_TYPE.to_string()),
    }
}

/// Builds a map value from string pairs (late-render data).
pub fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
            .collect(),
    )
}
