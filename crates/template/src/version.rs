//! `min_packer_version`: versions compared as hashicorp/go-version does
//! (numeric segments, a pre-release sorts before its release).

use std::cmp::Ordering;

/// The Packer version bakery behaves as (and checks `min_packer_version`
/// against).
pub const PACKER_COMPAT_VERSION: &str = "1.6.6";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    segments: Vec<u64>,
    pre: String,
}

impl Version {
    /// Parses "1.5", "v1.6.0", "1.7.0-beta1", "1.2.3+meta"; else Packer's
    /// "Malformed version: ..." message.
    pub fn parse(s: &str) -> Result<Version, String> {
        let malformed = || format!("Malformed version: {s}");
        let body = s.strip_prefix('v').unwrap_or(s);
        let body = body.split_once('+').map(|(b, _)| b).unwrap_or(body);
        let (nums, pre) = match body.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
            Some(i) => (&body[..i], &body[i..]),
            None => (body, ""),
        };
        if nums.is_empty() || nums.starts_with('.') || nums.ends_with('.') || nums.contains("..") {
            return Err(malformed());
        }
        let segments: Result<Vec<u64>, _> = nums.split('.').map(str::parse::<u64>).collect();
        let mut segments = segments.map_err(|_| malformed())?;
        let pre = pre.strip_prefix('-').unwrap_or(pre);
        if !pre.is_empty()
            && !pre
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '~'))
        {
            return Err(malformed());
        }
        if !pre.is_empty()
            && !body[nums.len()..].starts_with('-')
            && !pre.starts_with(|c: char| c.is_ascii_alphabetic())
        {
            return Err(malformed());
        }
        while segments.len() < 3 {
            segments.push(0);
        }
        Ok(Version {
            segments,
            pre: pre.to_string(),
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.segments.len().max(other.segments.len());
        for i in 0..n {
            let a = self.segments.get(i).copied().unwrap_or(0);
            let b = other.segments.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&other.pre),
        }
    }
}

/// Checks `min_packer_version` against [`PACKER_COMPAT_VERSION`].
pub fn check_min_version(min: &str) -> Result<(), String> {
    let min_v = Version::parse(min).map_err(|e| format!("min_version is invalid: {e}"))?;
    let actual = Version::parse(PACKER_COMPAT_VERSION).expect("valid compat version");
    if actual < min_v {
        return Err(format!(
            "This template requires Packer version {} or higher; using {PACKER_COMPAT_VERSION} (bakery is compatible with Packer {PACKER_COMPAT_VERSION})",
            min.trim_start_matches('v')
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_like_go_version() {
        assert!(check_min_version("1.6.6").is_ok());
        assert!(check_min_version("1.5").is_ok());
        assert!(check_min_version("v1.0.0").is_ok());
        assert!(check_min_version("1.6.6-rc1").is_ok());
        assert!(
            check_min_version("1.7.0")
                .unwrap_err()
                .starts_with("This template requires Packer version 1.7.0 or higher; using 1.6.6")
        );
        assert_eq!(
            check_min_version("v1.x").unwrap_err(),
            "min_version is invalid: Malformed version: v1.x"
        );
        assert!(Version::parse("1.2.3-beta").unwrap() < Version::parse("1.2.3").unwrap());
    }
}
