//! A Go text/template engine, as Packer uses it: `{{ }}` actions, pipes,
//! parenthesised calls, `if`/`else`/`with`/`range`, variables, dot fields, Go's
//! builtins, and Go's error messages. The Packer functions live in
//! [`crate::funcs`].
//!
//! Why not the `gtmpl` crate: on the corpus it returned errors where Go
//! prints `<no value>` (`{{ .HTTPIP }}` with no data) and it looped forever on
//! the malformed action `{{ user \`a\` | ` — unacceptable for input we must
//! never hang or panic on. handlebars has a different syntax altogether.

mod exec;
mod gofmt;
mod lex;
mod parse;
mod value;

pub use exec::{ExecError, FuncHost, MAX_VALUE_LEN, Sig, Ty, string_map};
pub use lex::go_quote;
pub use parse::ParseError;
pub use value::{Value, format_float_g};

use std::fmt;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    text: String,
    /// None when the text has no action: it renders as itself.
    tree: Option<parse::Tree>,
}

/// A parse or execution error, in Go's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Parse(ParseError),
    Exec(ExecError),
}

impl TemplateError {
    pub fn message(&self) -> &str {
        match self {
            TemplateError::Parse(p) => &p.message,
            TemplateError::Exec(e) => &e.message,
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    /// Parses `text`; identifiers must name a function of `host` or a builtin.
    pub fn parse(text: &str, host: &dyn FuncHost) -> Result<Template, TemplateError> {
        if !text.contains("{{") {
            return Ok(Template {
                text: text.to_string(),
                tree: None,
            });
        }
        let has = |name: &str| host.signature(name).is_some();
        let tree = parse::parse(text, &has).map_err(TemplateError::Parse)?;
        Ok(Template {
            text: text.to_string(),
            tree: Some(tree),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the text contains any action.
    pub fn has_actions(&self) -> bool {
        self.tree.is_some()
    }

    /// Executes with `data` as dot.
    pub fn execute(&self, host: &dyn FuncHost, data: &Value) -> Result<String, TemplateError> {
        match &self.tree {
            None => Ok(self.text.clone()),
            Some(tree) => exec::execute(tree, &self.text, host, data).map_err(TemplateError::Exec),
        }
    }
}

/// Parses and executes in one go.
pub fn render(text: &str, host: &dyn FuncHost, data: &Value) -> Result<String, TemplateError> {
    Template::parse(text, host)?.execute(host, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A host with `user` (reads a map) and `upper`, like a tiny Packer.
    struct Host(BTreeMap<String, String>);

    impl FuncHost for Host {
        fn signature(&self, name: &str) -> Option<Sig> {
            match name {
                "user" | "upper" | "fail" => Some(Sig {
                    params: &[Ty::Str],
                    variadic: None,
                }),
                "split" => Some(Sig {
                    params: &[Ty::Str, Ty::Str, Ty::Int],
                    variadic: None,
                }),
                "isotime" => Some(Sig {
                    params: &[],
                    variadic: Some(Ty::Str),
                }),
                _ => None,
            }
        }

        fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
            let s = |i: usize| match &args[i] {
                Value::Str(s) => s.clone(),
                _ => String::new(),
            };
            match name {
                "user" => Ok(Value::Str(self.0.get(&s(0)).cloned().unwrap_or_default())),
                "upper" => Ok(Value::Str(s(0).to_uppercase())),
                "fail" => Err("it failed".to_string()),
                "split" => {
                    let Value::Int(i) = args[2] else {
                        unreachable!()
                    };
                    Ok(Value::Str(
                        s(0).split(s(1).as_str())
                            .nth(i as usize)
                            .unwrap_or("")
                            .to_string(),
                    ))
                }
                "isotime" => Ok(Value::Str(format!("{} args", args.len()))),
                _ => Err("no".to_string()),
            }
        }
    }

    fn host() -> Host {
        Host(BTreeMap::from([
            ("a".to_string(), "Aval".to_string()),
            ("list".to_string(), "x,y,z".to_string()),
        ]))
    }

    fn r(s: &str) -> String {
        render(s, &host(), &Value::Missing).unwrap_or_else(|e| format!("ERR {e}"))
    }

    fn rd(s: &str, data: Value) -> String {
        render(s, &host(), &data).unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn observed_packer_console_outputs() {
        // Each expectation is what `packer console` (1.6.6) printed.
        assert_eq!(r("{{ user `list` | upper }}"), "X,Y,Z");
        assert_eq!(r("{{ split (user `list`) \",\" 1 }}"), "y");
        assert_eq!(r("{{ \"x\" | printf \"%s-%s\" \"y\" }}"), "y-x");
        assert_eq!(
            r("{{ if eq (user `a`) \"Aval\" }}yes{{ else }}no{{ end }}"),
            "yes"
        );
        assert_eq!(r("{{ .Foo }}"), "<no value>");
        assert_eq!(r("{{ .Foo.Bar }}"), "<no value>");
        assert_eq!(r("{{ . }}"), "<no value>");
        assert_eq!(r("{{ \"a\\tb\\u00e9\" }}"), "a\tbé");
        assert_eq!(r("{{ 1 }}{{ 1.5 }}{{ true }}"), "11.5true");
        assert_eq!(r("{{/* comment */}}x"), "x");
        assert_eq!(r("{{- \"a\" -}} b"), "ab");
        assert_eq!(r("x}}y"), "x}}y");
        assert_eq!(r("{{ len \"abc\" }}"), "3");
        assert_eq!(r("{{ index \"abc\" 1 }}"), "98");
        assert_eq!(r("{{ print 1 2 \"a\" \"b\" 3 }}"), "1 2ab3");
        assert_eq!(
            r("{{ html \"<a>\" }}{{ js \"a'b\" }}{{ urlquery \"a b\" }}"),
            "&lt;a&gt;a\\'ba+b"
        );
        assert_eq!(r("{{ and 1 0 }}{{ or 0 \"\" \"x\" }}{{ not 0 }}"), "0xtrue");
        assert_eq!(r("{{ $x := 1 }}{{ $x }}"), "1");
        assert_eq!(r("{{ with \"a\" }}{{ . }}{{ end }}"), "a");
        assert_eq!(r("{{ \"a\" | user }}"), "Aval");
        assert_eq!(
            r("{{ 0x10 }} {{ 1e3 }} {{ -5 }} {{ 1_000 }} {{ 'a' }}"),
            "16 1000 -5 1000 97"
        );
        assert_eq!(r("{{ \"\\x41\\101\\u0041\\U00000041\" }}"), "AAAA");
        assert_eq!(r("{{ if \"\" }}t{{ else if 1 }}e{{ end }}"), "e");
        assert_eq!(
            r("{{ printf \"%q %v %d %5s|%-3d|%x\" \"a\" 1 2 \"b\" 3 255 }}"),
            "\"a\" 1 2     b|3  |ff"
        );
        assert_eq!(r("{{ range $i, $e := . }}{{ end }}x"), "x");
        assert_eq!(r("{{ block \"x\" . }}b{{ end }}"), "b");
        assert_eq!(r("{{ define \"x\" }}d{{ end }}t"), "t");
        assert_eq!(r("{{ user \"a\" | user }}"), "");
        assert_eq!(r("{{ (user `a`) }}"), "Aval");
        assert_eq!(r("{{ user `a` | }}"), "Aval");
        assert_eq!(
            r("{{ 0b101 }} {{ 0o17 }} {{ 017 }} {{ 1e21 }} {{ 0x1p4 }} {{ 1000000.0 }}"),
            "5 15 15 1e+21 16 1e+06"
        );
        assert_eq!(
            r("{{ printf \"%05d|%x|%X|%o|%t|%5.2f|%-5s|\" 42 255 255 8 true 3.14159 \"ab\" }}"),
            "00042|ff|FF|10|true| 3.14|ab   |"
        );
        assert_eq!(r("{{ index \"héllo\" 1 }}"), "195");
        assert_eq!(r("{{ \"a\" | printf \"%s%s\" \"b\" | upper }}"), "BA");
        assert_eq!(r("{{ block \"b\" \"dot\" }}[{{ . }}]{{ end }}"), "[dot]");
        assert_eq!(r("{{ 3 | printf \"%d-%d\" 4 }}"), "4-3");
        assert_eq!(r("a {{- \" b \" -}} c"), "a b c");
        assert_eq!(r("{{ print nil }}"), "<nil>");
        assert_eq!(r("{{ printf \"%v %v\" 1.0 2.5 }}"), "1 2.5");
    }

    #[test]
    fn observed_packer_console_errors() {
        assert_eq!(
            r("{{ template \"x\" }}"),
            "ERR template: root:1:12: executing \"root\" at <{{template \"x\"}}>: template \"x\" not defined"
        );
        assert_eq!(
            r("{{ 1 2 }}"),
            "ERR template: root:1:3: executing \"root\" at <1>: can't give argument to non-function 1"
        );
        assert_eq!(
            r("{{ \"a\" \"b\" }}"),
            "ERR template: root:1:3: executing \"root\" at <\"a\">: can't give argument to non-function \"a\""
        );
        assert_eq!(
            r("{{ call 1 }}"),
            "ERR template: root:1:3: executing \"root\" at <call 1>: error calling call: non-function of type int"
        );
        assert_eq!(
            r("{{ user }}"),
            "ERR template: root:1:3: executing \"root\" at <user>: wrong number of args for user: want 1 got 0"
        );
        assert_eq!(
            r("{{ user `a` `b` }}"),
            "ERR template: root:1:3: executing \"root\" at <user>: wrong number of args for user: want 1 got 2"
        );
        assert_eq!(
            r("{{ upper 1 }}"),
            "ERR template: root:1:9: executing \"root\" at <1>: expected string; found 1"
        );
        assert_eq!(
            r("n {{ split \"a,b\" \",\" \"1\" }}"),
            "ERR template: root:1:21: executing \"root\" at <\"1\">: expected integer; found \"1\""
        );
        assert_eq!(
            r("{{ eq 1 1.0 }}"),
            "ERR template: root:1:3: executing \"root\" at <eq 1 1.0>: error calling eq: incompatible types for comparison"
        );
        assert_eq!(
            r("{{ range 0 }}{{ end }}"),
            "ERR template: root:1:9: executing \"root\" at <0>: range can't iterate over 0"
        );
        assert_eq!(
            r("{{ nil }}"),
            "ERR template: root:1:3: executing \"root\" at <nil>: nil is not a command"
        );
        assert_eq!(
            r("name {{fail `HOME`}}"),
            "ERR template: root:1:7: executing \"root\" at <fail `HOME`>: error calling fail: it failed"
        );
        assert_eq!(
            r("{{ 1 | upper }}"),
            "ERR template: root:1:7: executing \"root\" at <upper>: wrong type for value; expected string; got int"
        );
    }

    #[test]
    fn map_data_fields() {
        let data = Value::Map(BTreeMap::from([
            ("Path".to_string(), Value::str("/tmp/s.sh")),
            (
                "Tags".to_string(),
                Value::Map(BTreeMap::from([("Name".to_string(), Value::str("n"))])),
            ),
        ]));
        assert_eq!(
            rd(
                "chmod +x {{.Path}}; {{ .Tags.Name }}|{{ .Tags.Nope }}|{{ .Nope }}",
                data.clone()
            ),
            "chmod +x /tmp/s.sh; n|<no value>|<no value>"
        );
        assert_eq!(
            rd(
                "{{ range $k, $v := .Tags }}{{$k}}={{$v}}{{ end }}",
                data.clone()
            ),
            "Name=n"
        );
        assert!(rd("{{ .Path.X }}", data).contains("can't evaluate field X in type string"));
    }

    #[test]
    fn variadic_and_multiline_positions() {
        assert_eq!(r("{{ isotime }}|{{ isotime \"a\" }}"), "0 args|1 args");
        assert_eq!(
            r("a\nb {{ fail `x` }}"),
            "ERR template: root:2:5: executing \"root\" at <fail `x`>: error calling fail: it failed"
        );
    }

    #[test]
    fn recursion_and_size_are_bounded() {
        let e = r("{{ define \"x\" }}{{ template \"x\" }}{{ end }}{{ template \"x\" }}");
        assert!(e.contains("exceeded maximum template depth"), "{e}");
        let e = r(
            "{{ printf \"%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d%999999d\" 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 }}",
        );
        assert!(e.contains("larger than"), "{e}");
    }
}
