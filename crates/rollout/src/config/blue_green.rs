//! The `blue-green` strategy's settings: the manifest's `blue_green` block (the rollback window),
//! validated.

use super::{Capacity, Validator};
use crate::manifest::BlueGreenSettings;
use std::time::Duration;

pub use crate::durations::{human, parse as parse_keep_for};

/// At most this many previous releases are kept: each is an Auto Scaling group (a regional quota, 500 by
/// default) and a launch template.
pub const MAX_KEPT_RELEASES: u32 = 10;

/// The longest window: a year.
const MAX_KEEP_FOR: Duration = Duration::from_secs(366 * 86_400);

/// What a blue-green rollout keeps of the release it replaces, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeepWindow {
    /// Previous releases kept, newest first (0: the window is off and the old group is deleted).
    pub releases: u32,
    /// How long each is kept after it was retired (`None`: until `releases` newer ones push it out).
    pub keep_for: Option<Duration>,
    /// Instances a kept group keeps running (detached from the load balancer).
    pub size: u32,
}

impl KeepWindow {
    /// True when the old group is kept after the cut-over.
    pub fn on(&self) -> bool {
        self.releases > 0
    }

    /// `1 release, 24h, size 0` / `off`.
    pub fn describe(&self) -> String {
        if !self.on() {
            return "off".into();
        }
        format!(
            "{} release(s){}, size {}",
            self.releases,
            self.keep_for
                .map(|d| format!(" for up to {}", human(d)))
                .unwrap_or_default(),
            self.size
        )
    }
}

impl Validator<'_> {
    /// `blue_green`: the rollback window, checked so that a typo is named with its place in the manifest.
    pub(super) fn blue_green(&mut self, b: BlueGreenSettings, capacity: &Capacity) -> KeepWindow {
        let k = |k: &str| format!("blue_green.{k}");
        let keep_for = match &b.keep_previous_for {
            None => None,
            Some(v) => match parse_keep_for(v) {
                Ok(d) if d.is_zero() => {
                    self.problem(
                        &k("keep_previous_for"),
                        "must be at least 1 second (leave it out, or set keep_previous_releases to 0, to keep nothing)",
                    );
                    None
                }
                Ok(d) if d > MAX_KEEP_FOR => {
                    self.problem(
                        &k("keep_previous_for"),
                        &format!("{} is longer than a year", human(d)),
                    );
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    self.problem(&k("keep_previous_for"), &e);
                    None
                }
            },
        };
        let releases = match (b.keep_previous_releases, &b.keep_previous_for) {
            (Some(n), _) => n,
            (None, Some(_)) => 1,
            (None, None) => 0,
        };
        if releases > MAX_KEPT_RELEASES {
            self.problem(
                &k("keep_previous_releases"),
                &format!(
                    "{releases} is outside 0-{MAX_KEPT_RELEASES} (each kept release is an Auto Scaling group and a launch template)"
                ),
            );
        }
        if releases == 0 && b.keep_previous_for.is_some() {
            self.problem(
                &k("keep_previous_releases"),
                "is 0 while keep_previous_for is set: keep at least 1 release, or leave keep_previous_for out",
            );
        }
        let size = b.keep_previous_size.unwrap_or(0);
        if size > capacity.max {
            self.problem(
                &k("keep_previous_size"),
                &format!(
                    "{size} is greater than capacity.max ({}): a kept group is smaller than a serving one",
                    capacity.max
                ),
            );
        }
        if b.keep_previous_size.is_some() && releases == 0 {
            self.problem(
                &k("keep_previous_size"),
                "is set but nothing is kept: set keep_previous_releases or keep_previous_for",
            );
        }
        KeepWindow {
            releases,
            keep_for,
            size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_people_write() {
        for (v, secs) in [
            (json!("24h"), 86_400),
            (json!("90m"), 5_400),
            (json!("1h30m"), 5_400),
            (json!("2d"), 172_800),
            (json!("45s"), 45),
            (json!("3600"), 3_600),
            (json!(3600), 3_600),
        ] {
            assert_eq!(
                parse_keep_for(&v).unwrap(),
                Duration::from_secs(secs),
                "{v}"
            );
        }
        for v in [
            json!("1 day"),
            json!("h"),
            json!("1h30"),
            json!(""),
            json!(-1),
            json!(true),
        ] {
            assert!(parse_keep_for(&v).is_err(), "{v}");
        }
        assert!(parse_keep_for(&json!("24x")).is_err());
        assert_eq!(human(Duration::from_secs(86_400)), "1d");
        assert_eq!(human(Duration::from_secs(5_400)), "1h30m");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
    }
}
