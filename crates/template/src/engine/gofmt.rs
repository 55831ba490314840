//! The parts of Go's fmt and text/template escapers that template builtins
//! need: Sprint, Sprintln, Sprintf (common verbs and flags), html, js,
//! urlquery.

use super::lex::go_quote;
use super::value::{Value, format_float_g};

/// Go's fmt.Sprint: spaces between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            let prev_str = matches!(args[i - 1], Value::Str(_));
            let this_str = matches!(a, Value::Str(_));
            if !prev_str && !this_str {
                out.push(' ');
            }
        }
        out.push_str(&print_v(a));
    }
    out
}

/// Go's fmt.Sprintln.
pub fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(print_v).collect();
    format!("{}\n", parts.join(" "))
}

fn print_v(v: &Value) -> String {
    match v {
        Value::Missing | Value::Nil => "<nil>".to_string(),
        other => other.go_string(),
    }
}

const MAX_WIDTH: usize = 1_000_000;

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's fmt.Sprintf for the verbs templates use.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        let mut bad_width = false;
        let mut width = String::new();
        while let Some(&d) = chars.peek() {
            if !d.is_ascii_digit() {
                break;
            }
            width.push(d);
            chars.next();
        }
        if !width.is_empty() {
            match width.parse::<usize>() {
                Ok(w) if w <= MAX_WIDTH => spec.width = Some(w),
                _ => bad_width = true,
            }
        }
        let mut bad_prec = false;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut prec = String::new();
            while let Some(&d) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                prec.push(d);
                chars.next();
            }
            match prec.parse::<usize>() {
                Ok(p) if p <= MAX_WIDTH => spec.prec = Some(p),
                Ok(_) => bad_prec = true,
                Err(_) => spec.prec = Some(0),
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if bad_width {
            out.push_str("%!(BADWIDTH)");
        }
        if bad_prec {
            out.push_str("%!(BADPREC)");
        }
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        out.push_str(&format_one(verb, &spec, arg));
    }
    if argi < args.len() {
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| format!("{}={}", arg_type(a), print_v(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn arg_type(v: &Value) -> &'static str {
    match v {
        Value::Missing | Value::Nil => "<nil>",
        other => other.type_name(),
    }
}

fn bad(verb: char, v: &Value) -> String {
    match v {
        Value::Missing | Value::Nil => format!("%!{verb}(<nil>)"),
        other => format!("%!{verb}({}={})", other.type_name(), other.go_string()),
    }
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(w) = spec.width else {
        return s;
    };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, digits) = match s.strip_prefix('-') {
            Some(rest) => ("-", rest.to_string()),
            None => match s.strip_prefix('+') {
                Some(rest) => ("+", rest.to_string()),
                None => ("", s.clone()),
            },
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn sign(s: String, spec: &Spec, negative: bool) -> String {
    if negative {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_one(verb: char, spec: &Spec, v: &Value) -> String {
    if verb == 'T' {
        return pad(arg_type(v).to_string(), spec, false);
    }
    match v {
        Value::Str(s) => match verb {
            's' | 'v' => {
                let s = match spec.prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.clone(),
                };
                pad(s, spec, false)
            }
            'q' => pad(go_quote(s), spec, false),
            'x' | 'X' => {
                let mut h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
                if verb == 'X' {
                    h = h.to_uppercase();
                }
                pad(h, spec, false)
            }
            _ => bad(verb, v),
        },
        Value::Int(i) => {
            let neg = *i < 0;
            let s = match verb {
                'd' | 'v' => i.to_string(),
                'x' => format!("{}{:x}", if neg { "-" } else { "" }, i.unsigned_abs()),
                'X' => format!("{}{:X}", if neg { "-" } else { "" }, i.unsigned_abs()),
                'o' => format!("{}{:o}", if neg { "-" } else { "" }, i.unsigned_abs()),
                'b' => format!("{}{:b}", if neg { "-" } else { "" }, i.unsigned_abs()),
                'c' => {
                    return pad(
                        char::from_u32(*i as u32).unwrap_or('\u{fffd}').to_string(),
                        spec,
                        false,
                    );
                }
                'q' => {
                    let c = char::from_u32(*i as u32).unwrap_or('\u{fffd}');
                    return pad(format!("'{c}'"), spec, false);
                }
                'f' | 'F' | 'e' | 'g' => {
                    return format_one(verb, spec, &Value::Float(*i as f64))
                        .replace("float64", "int");
                }
                _ => return bad(verb, v),
            };
            let s = if spec.sharp && verb == 'x' {
                s.replacen(
                    &format!("{:x}", i.unsigned_abs()),
                    &format!("0x{:x}", i.unsigned_abs()),
                    1,
                )
            } else {
                s
            };
            pad(sign(s, spec, neg), spec, true)
        }
        Value::Float(f) => {
            let neg = *f < 0.0;
            let s = match verb {
                'v' | 'g' | 'G' => match spec.prec {
                    Some(p) => format!("{:.*}", p, f),
                    None => format_float_g(*f),
                },
                'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), f),
                'e' | 'E' => {
                    let s = format!("{:.*e}", spec.prec.unwrap_or(6), f);
                    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                    let e: i32 = e.parse().unwrap_or(0);
                    let s = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
                    if verb == 'E' { s.to_uppercase() } else { s }
                }
                _ => return bad(verb, v),
            };
            pad(sign(s, spec, neg), spec, true)
        }
        Value::Bool(b) => match verb {
            't' | 'v' => pad(b.to_string(), spec, false),
            _ => bad(verb, v),
        },
        Value::Missing | Value::Nil => match verb {
            'v' => pad("<nil>".to_string(), spec, false),
            _ => bad(verb, v),
        },
        Value::Map(_) | Value::List(_) => match verb {
            'v' | 's' => pad(v.go_string(), spec, false),
            _ => bad(verb, v),
        },
    }
}

/// text/template's `html` builtin.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{fffd}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// text/template's `js` builtin.
pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// text/template's `urlquery` builtin (url.QueryEscape).
pub fn url_query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sprintf_common_verbs() {
        let args = [
            Value::str("a"),
            Value::Int(1),
            Value::Int(2),
            Value::str("b"),
            Value::Int(3),
            Value::Int(255),
        ];
        assert_eq!(
            sprintf("%q %v %d %5s|%-3d|%x", &args),
            "\"a\" 1 2     b|3  |ff"
        );
        assert_eq!(sprintf("%s-%s", &[Value::str("y"), Value::str("x")]), "y-x");
        assert_eq!(sprintf("%d", &[Value::str("a")]), "%!d(string=a)");
        assert_eq!(sprintf("%s %s", &[Value::str("a")]), "a %!s(MISSING)");
        assert_eq!(
            sprintf("%s", &[Value::str("a"), Value::Int(1)]),
            "a%!(EXTRA int=1)"
        );
        assert_eq!(sprintf("%T", &[Value::str("a")]), "string");
        assert_eq!(sprintf("%05.1f", &[Value::Float(3.25)]), "003.2");
        assert_eq!(sprintf("%999999999s", &[Value::str("a")]), "%!(BADWIDTH)a");
    }

    #[test]
    fn sprint_spacing() {
        assert_eq!(
            sprint(&[
                Value::Int(1),
                Value::Int(2),
                Value::str("a"),
                Value::str("b"),
                Value::Int(3)
            ]),
            "1 2ab3"
        );
    }

    #[test]
    fn escapers() {
        assert_eq!(html_escape("<a>"), "&lt;a&gt;");
        assert_eq!(js_escape("a'b"), "a\\'b");
        assert_eq!(url_query_escape("a b"), "a+b");
    }
}
