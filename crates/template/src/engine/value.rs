//! Values flowing through template execution, with Go's printing rules.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go's invalid reflect.Value: a missing map key or field of nil data.
    /// Prints as `<no value>`.
    Missing,
    /// The `nil` constant.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Map(BTreeMap<String, Value>),
    List(Vec<Value>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// Go's `truth`: the empty value of its type is false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
        }
    }

    /// The Go type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Missing => "<invalid reflect.Value>",
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Map(m) => {
                if m.values().all(|v| matches!(v, Value::Str(_))) {
                    "map[string]string"
                } else {
                    "map[string]interface {}"
                }
            }
            Value::List(_) => "[]interface {}",
        }
    }

    /// How Go's fmt prints the value with %v (text/template output).
    pub fn go_string(&self) -> String {
        match self {
            Value::Missing => "<no value>".to_string(),
            Value::Nil => "<nil>".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float_g(*f),
            Value::Str(s) => s.clone(),
            Value::Map(m) => {
                let inner: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.go_string()))
                    .collect();
                format!("map[{}]", inner.join(" "))
            }
            Value::List(l) => {
                let inner: Vec<String> = l.iter().map(Value::go_string).collect();
                format!("[{}]", inner.join(" "))
            }
        }
    }
}

/// Go's `%v` for a float64: strconv 'g' with the shortest representation,
/// which switches to an exponent below 1e-4 or from 1e6 up (Go prints a
/// million as "1e+06").
pub fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Shortest digits and decimal exponent from Rust's `{:e}`.
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(format_float_g(1000.0), "1000");
        assert_eq!(format_float_g(1.5), "1.5");
        assert_eq!(format_float_g(1e21), "1e+21");
        assert_eq!(format_float_g(1e6), "1e+06");
        assert_eq!(format_float_g(123456.0), "123456");
        assert_eq!(format_float_g(0.00001), "1e-05");
        assert_eq!(format_float_g(123456789.0), "1.23456789e+08");
    }

    #[test]
    fn truthiness() {
        assert!(!Value::Missing.truth());
        assert!(!Value::str("").truth());
        assert!(Value::Int(2).truth());
        assert!(!Value::Float(0.0).truth());
    }
}
