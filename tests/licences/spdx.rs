//! SPDX licence expressions as crates write them, and whether one can be met with allowed licences.
//! `OR` is a choice, `AND` needs both sides, `WITH` names an exception; `/` is the old spelling of `OR`
//! (`MIT/Apache-2.0`). `WITH` binds tighter than `AND`, `AND` tighter than `OR`; parentheses group.

use std::collections::BTreeSet;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// One licence, maybe with an exception (`Apache-2.0 WITH LLVM-exception`).
    Licence {
        id: String,
        exception: Option<String>,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    With,
    Id(String),
}

fn tokens(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '/' => {
                chars.next();
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Or,
                });
            }
            c if c.is_ascii_alphanumeric() => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+' | ':') {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                // Operators are upper case in SPDX; some old crates write them in lower case.
                out.push(match word.to_ascii_uppercase().as_str() {
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    "WITH" => Token::With,
                    _ => Token::Id(word),
                });
            }
            c => return Err(format!("unexpected {c:?}")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.next();
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.with()?;
        while self.peek() == Some(&Token::And) {
            self.next();
            left = Expr::And(Box::new(left), Box::new(self.with()?));
        }
        Ok(left)
    }

    fn with(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    other => Err(format!("expected `)`, found {other:?}")),
                }
            }
            Some(Token::Id(id)) => {
                let exception = if self.peek() == Some(&Token::With) {
                    self.next();
                    match self.next() {
                        Some(Token::Id(e)) => Some(e),
                        other => return Err(format!("expected an exception, found {other:?}")),
                    }
                } else {
                    None
                };
                Ok(Expr::Licence { id, exception })
            }
            other => Err(format!("expected a licence, found {other:?}")),
        }
    }
}

/// Parses an expression.
pub fn parse(s: &str) -> Result<Expr, String> {
    let mut p = Parser {
        tokens: tokens(s)?,
        at: 0,
    };
    let e = p.or()?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err(format!("unexpected {t:?}")),
    }
}

/// Licences one may take, as `ID` or `ID WITH EXCEPTION`.
#[derive(Debug, Clone, Default)]
pub struct Allowed(BTreeSet<String>);

/// The form licences are compared in: SPDX ids are case-insensitive, and `-only`, `-or-later` and `+` (GNU
/// licences) name the same licence text, which is what an allow-list entry is about (cargo-deny does
/// the same).
fn key(id: &str, exception: Option<&str>) -> String {
    let id = id.to_ascii_lowercase();
    let id = id
        .strip_suffix('+')
        .or_else(|| id.strip_suffix("-or-later"))
        .or_else(|| id.strip_suffix("-only"))
        .unwrap_or(&id);
    match exception {
        Some(e) => format!("{id} with {}", e.to_ascii_lowercase()),
        None => id.to_string(),
    }
}

impl Allowed {
    /// The allow-list's entries; each must be one licence (with or without an exception).
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for entry in entries {
            match parse(entry)? {
                Expr::Licence { id, exception } => set.insert(key(&id, exception.as_deref())),
                _ => return Err(format!("`{entry}` is not one licence")),
            };
        }
        Ok(Allowed(set))
    }

    /// These and `more`.
    pub fn with<'a>(&self, more: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut all = self.clone();
        all.0.extend(Allowed::new(more)?.0);
        Ok(all)
    }

    /// An exception widens a licence, so `ID WITH X` is allowed only when listed as such: whether `X`
    /// is acceptable is a decision of its own.
    fn allows(&self, id: &str, exception: Option<&str>) -> bool {
        self.0.contains(&key(id, exception))
    }

    /// Whether some choice among the expression's ORs needs only allowed licences.
    pub fn satisfy(&self, e: &Expr) -> bool {
        match e {
            Expr::Licence { id, exception } => self.allows(id, exception.as_deref()),
            Expr::And(a, b) => self.satisfy(a) && self.satisfy(b),
            Expr::Or(a, b) => self.satisfy(a) || self.satisfy(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permissive() -> Allowed {
        Allowed::new(["MIT", "Apache-2.0", "Unicode-3.0", "ISC", "BSD-3-Clause"]).unwrap()
    }

    fn ok(expr: &str) -> bool {
        permissive().satisfy(&parse(expr).unwrap())
    }

    #[test]
    fn a_gpl_only_expression_fails() {
        assert!(!ok("GPL-3.0"));
        assert!(!ok("GPL-3.0-only"));
        assert!(!ok("GPL-2.0-or-later"));
        assert!(!ok("GPL-2.0+"));
        assert!(!ok("MIT AND GPL-3.0"));
        assert!(!ok("(MIT OR Apache-2.0) AND LGPL-2.1-or-later"));
    }

    #[test]
    fn a_choice_passes_when_one_side_is_allowed() {
        assert!(ok("MIT OR GPL-3.0"));
        assert!(ok("GPL-3.0 OR MIT"));
        assert!(ok("MIT OR Apache-2.0 OR LGPL-2.1-or-later"));
        assert!(ok("(MIT OR Apache-2.0) AND Unicode-3.0"));
        assert!(ok("ISC AND (Apache-2.0 OR ISC) AND MIT AND BSD-3-Clause"));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // (GPL-3.0 AND MIT) OR Apache-2.0: Apache-2.0 alone will do.
        assert!(ok("GPL-3.0 AND MIT OR Apache-2.0"));
        // MIT OR (GPL-3.0 AND Apache-2.0): MIT alone will do.
        assert!(ok("MIT OR GPL-3.0 AND Apache-2.0"));
        assert!(!ok("(MIT OR GPL-3.0) AND GPL-2.0"));
    }

    #[test]
    fn the_old_slash_and_lower_case_operators() {
        assert!(ok("MIT/Apache-2.0"));
        assert!(ok("Apache-2.0 / MIT"));
        assert!(!ok("GPL-3.0/LGPL-3.0"));
        assert!(ok("mit or gpl-3.0"));
    }

    #[test]
    fn an_exception_must_be_allowed_as_such() {
        assert!(!ok("Apache-2.0 WITH LLVM-exception"));
        assert!(ok("Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT"));
        let with = permissive()
            .with(["Apache-2.0 WITH LLVM-exception"])
            .unwrap();
        assert!(with.satisfy(&parse("Apache-2.0 WITH LLVM-exception").unwrap()));
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for bad in [
            "",
            "MIT OR",
            "(MIT",
            "MIT)",
            "MIT WITH",
            "MIT AND AND ISC",
            "MIT, ISC",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(Allowed::new(["MIT OR ISC"]).is_err());
    }
}
