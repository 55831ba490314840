//! Values that must never be printed: the values of `sensitive-variables`
//! (and the AWS keys of amazon builders, as Packer's log filter does).

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

    /// Adds a value; empty values are ignored (masking "" would be noise).
    pub fn add(&mut self, value: impl Into<String>) {
        let v = value.into();
        if v.is_empty() || self.values.contains(&v) {
            return;
        }
        self.values.push(v);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_longest_first() {
        let mut s = Secrets::new();
        s.add("abc");
        s.add("abcdef");
        s.add("");
        assert_eq!(s.len(), 2);
        assert_eq!(s.mask("x abcdef y abc z"), "x <sensitive> y <sensitive> z");
        assert!(!s.is_empty());
        assert!(Secrets::new().is_empty());
    }
}
