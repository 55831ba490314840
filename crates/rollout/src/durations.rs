//! Durations as the manifest and the command line write them (`"24h"`, `"90m"`, `"1h30m"`, `"2d"`, seconds)
//! and as reports show them: below `config` (the rollback window, gates) and `retention` (gc's
//! deprecation), which both read them.

use std::time::Duration;

/// `86400` s as `24h`, `5400` s as `1h30m`, `90` s as `1m30s`.
pub fn human(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= n {
            out.push_str(&format!("{}{unit}", s / n));
            s %= n;
        }
    }
    out
}

/// `"24h"`, `"90m"`, `"1h30m"`, `"2d"`, `"45s"` or a bare number of seconds (`"3600"`, `3600`).
pub fn parse(v: &serde_json::Value) -> Result<Duration, String> {
    let text = match v {
        serde_json::Value::Number(n) => {
            return n
                .as_u64()
                .map(Duration::from_secs)
                .ok_or_else(|| format!("{n} is not a whole number of seconds"));
        }
        serde_json::Value::String(s) => s.trim(),
        other => {
            return Err(format!(
                "{other} is not a duration (\"24h\", \"90m\", 3600)"
            ));
        }
    };
    let bad = || format!("`{text}` is not a duration (\"24h\", \"90m\", \"1h30m\", \"2d\", 3600)");
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() || text.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}
