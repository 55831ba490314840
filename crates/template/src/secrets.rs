//! Values that must never be printed: the values of `sensitive-variables`
//! (and the AWS keys of amazon builders, as Packer's log filter does).
//!
//! Each value is masked in the forms it reaches output in: as given; JSON/Go-escaped (`"`, `\`, control
//! characters, as in `--json` output and error messages quoting it); shell-quoted (`'` as `'\''` or
//! `'"'"'`, as commands and `environment_vars` carry it); and, for a multi-line value such as a PEM key,
//! each of its lines of 6 characters or more (remote output and logs split it into lines). As Packer's
//! filter, masking is by substring: a short secret (an access key "lab") also masks inside other words
//! ("avai<sensitive>le").

/// Masks every sensitive value in any string as `<sensitive>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Longest first, so a secret containing another is masked whole.
    values: Vec<String>,
}

pub const MASK: &str = "<sensitive>";

impl Secrets {
    pub fn new() -> Self {
        Secrets::default()
    }

    /// Adds a value and the forms it is printed in; empty values are ignored (masking "" would be
    /// noise).
    pub fn add(&mut self, value: impl Into<String>) {
        let v = value.into();
        if v.is_empty() {
            return;
        }
        for form in forms(&v) {
            if !self.values.contains(&form) {
                self.values.push(form);
            }
        }
        self.values
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    pub fn mask(&self, s: &str) -> String {
        let mut out = s.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }

    /// The values, longest first (for output layers that mask on their own).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }
}

/// Lines shorter than this, of a multi-line secret, are not masked on their own (a lone `}` or `---`
/// would mask everywhere).
const MIN_LINE: usize = 6;

/// `v` and the escaped forms it can reach output in.
fn forms(v: &str) -> Vec<String> {
    let mut out = vec![v.to_string()];
    let json = json_escaped(v);
    out.push(json);
    if v.contains('\'') {
        out.push(v.replace('\'', r"'\''"));
        out.push(v.replace('\'', r#"'"'"'"#));
        out.push(v.replace('\'', r"\'"));
    }
    if v.contains('\n') {
        for line in v.lines().map(str::trim).filter(|l| l.len() >= MIN_LINE) {
            out.push(line.to_string());
            out.push(json_escaped(line));
        }
    }
    out.retain(|f| !f.is_empty());
    out.dedup();
    out
}

/// `v` as inside a JSON (or Go `%q`) string: `"` `\` and control characters escaped.
fn json_escaped(v: &str) -> String {
    let mut quoted = String::with_capacity(v.len() + 2);
    crate::json::write_json_string(v, &mut quoted);
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_longest_first() {
        let mut s = Secrets::new();
        s.add("abc");
        s.add("abcdef");
        s.add("");
        assert_eq!(s.len(), 2, "{:?}", s.values());
        assert_eq!(s.mask("x abcdef y abc z"), "x <sensitive> y <sensitive> z");
        assert!(!s.is_empty());
        assert!(Secrets::new().is_empty());
    }

    #[test]
    fn escaped_quoted_and_per_line_forms_are_masked() {
        let mut s = Secrets::new();
        let secret = "p'a\"s\\s\nsecond-line-of-it";
        s.add(secret);
        for shown in [
            secret.to_string(),
            // JSON / --json / error messages quoting it.
            r#"p'a\"s\\s\nsecond-line-of-it"#.to_string(),
            // Shell single quotes, both styles.
            "p'\\''a\"s\\s\nsecond-line-of-it".to_string(),
            "p'\"'\"'a\"s\\s\nsecond-line-of-it".to_string(),
            // One line of it, as remote output prints it.
            "second-line-of-it".to_string(),
        ] {
            let masked = s.mask(&format!("before {shown} after"));
            assert_eq!(masked, "before <sensitive> after", "{shown:?}");
        }
        // Short lines are not masked alone.
        let mut pem = Secrets::new();
        pem.add("-----BEGIN KEY-----\nMIIEabcdefgh\n}\n-----END KEY-----");
        assert_eq!(pem.mask("x MIIEabcdefgh y"), "x <sensitive> y");
        assert_eq!(pem.mask("a } b"), "a } b");
    }
}
