//! The manifest's `gates` block, validated: CloudWatch alarms and the bake time after the cut-over.

use super::Validator;
use super::blue_green::{human, parse_keep_for};
use crate::manifest::{GatesSettings, StrategyKind};
use std::time::Duration;

/// The longest bake time: AWS's limit for instance refresh's BakeTime (48 hours), used for every strategy.
pub const MAX_BAKE_TIME: Duration = Duration::from_secs(172_800);

/// AWS limits an alarm name to this many characters.
const MAX_ALARM_NAME: usize = 255;

/// DescribeAlarms takes at most 100 names: more would need more than one request per check.
pub const MAX_ALARMS: usize = 100;

/// Gates on real signals, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gates {
    /// CloudWatch alarm names; none: no gate.
    pub alarms: Vec<String>,
    /// How long the alarms must stay out of ALARM after the cut-over (zero: no bake time).
    pub bake_time: Duration,
    /// How often blue-green reads the alarms during the bake time.
    pub check_interval: Duration,
}

impl Gates {
    /// True when blue-green watches alarms after the cut-over.
    pub fn baking(&self) -> bool {
        !self.alarms.is_empty() && !self.bake_time.is_zero()
    }

    /// `alarms shop-5xx, shop-p99 for 10m` / `off`.
    pub fn describe(&self) -> String {
        if self.alarms.is_empty() {
            return "off".into();
        }
        format!(
            "alarms {}{}",
            self.alarms.join(", "),
            if self.bake_time.is_zero() {
                String::new()
            } else {
                format!(" for {} after the cut-over", human(self.bake_time))
            }
        )
    }
}

impl Validator<'_> {
    /// `gates`: every problem named with its place in the manifest, before any AWS request.
    pub(super) fn gates(&mut self, g: GatesSettings, strategy: StrategyKind) -> Gates {
        let k = |k: &str| format!("gates.{k}");
        let alarms = g.alarms.clone().unwrap_or_default();
        for (i, a) in alarms.iter().enumerate() {
            if a.trim().is_empty() {
                self.problem(
                    &k(&format!("alarms.{i}")),
                    "is empty: a CloudWatch alarm name",
                );
            } else if a.chars().count() > MAX_ALARM_NAME {
                self.problem(
                    &k(&format!("alarms.{i}")),
                    &format!("is longer than {MAX_ALARM_NAME} characters (AWS's limit)"),
                );
            } else if alarms[..i].contains(a) {
                self.problem(&k(&format!("alarms.{i}")), &format!("`{a}` is named twice"));
            }
        }
        if alarms.len() > MAX_ALARMS {
            self.problem(
                &k("alarms"),
                &format!("{} alarms: at most {MAX_ALARMS}", alarms.len()),
            );
        }
        if g.alarms.as_ref().is_some_and(Vec::is_empty) {
            self.problem(&k("alarms"), "is empty: leave `gates` out for no gate");
        }
        let bake_time = match &g.bake_time {
            None => Duration::ZERO,
            Some(v) => match parse_keep_for(v) {
                Ok(d) if d > MAX_BAKE_TIME => {
                    self.problem(
                        &k("bake_time"),
                        &format!("{} is longer than 48h (AWS's limit)", human(d)),
                    );
                    Duration::ZERO
                }
                Ok(d) => d,
                Err(e) => {
                    self.problem(&k("bake_time"), &e);
                    Duration::ZERO
                }
            },
        };
        if g.bake_time.is_some() && alarms.is_empty() {
            self.problem(
                &k("bake_time"),
                "is set without gates.alarms: the bake time watches alarms; name at least one",
            );
        }
        let interval = g.check_interval_seconds.unwrap_or(10);
        if !(1..=300).contains(&interval) {
            self.problem(
                &k("check_interval_seconds"),
                &format!("{interval} is outside 1-300"),
            );
        }
        match strategy {
            StrategyKind::BlueGreen if !alarms.is_empty() && bake_time.is_zero() => self.problem(
                &k("bake_time"),
                "missing: blue-green watches the alarms for the bake time after the cut-over (\"10m\")",
            ),
            StrategyKind::InstanceRefresh if g.check_interval_seconds.is_some() => self.problem(
                &k("check_interval_seconds"),
                "is blue-green's: during an instance refresh AWS watches the alarms itself",
            ),
            StrategyKind::SpotFleet if g != GatesSettings::default() => self.problem(
                "gates",
                "alarm gates are for blue-green and instance-refresh; spot-fleet has none yet (docs/rollout.md)",
            ),
            _ => {}
        }
        Gates {
            alarms,
            bake_time,
            check_interval: Duration::from_secs(interval.clamp(1, 300)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Overrides, RolloutConfig};
    use crate::manifest::Manifest;
    use std::path::Path;
    use std::time::Duration;

    fn resolve(src: &str) -> Result<RolloutConfig, String> {
        let m = Manifest::parse(Path::new("rollout.json"), src.to_string()).unwrap();
        RolloutConfig::resolve(&m, None, &Overrides::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn gates_are_off_by_default_and_feed_instance_refresh() {
        let c = resolve(r#"{"app": "shop", "environments": {"staging": {}}}"#).unwrap();
        assert!(!c.gates.baking());
        assert_eq!(c.gates.describe(), "off");
        let c = resolve(
            r#"{"app": "shop", "defaults": {"gates": {"alarms": ["shop-5xx"], "bake_time": "10m"}},
                "environments": {"staging": {}}}"#,
        )
        .unwrap();
        assert!(c.gates.baking());
        assert_eq!(c.gates.bake_time, Duration::from_secs(600));
        assert_eq!(c.gates.check_interval, Duration::from_secs(10));
        assert_eq!(
            c.gates.describe(),
            "alarms shop-5xx for 10m after the cut-over"
        );
        // Blue-green keeps its own: instance refresh's preferences are untouched.
        assert!(c.instance_refresh.alarms.is_empty());
        let c = resolve(
            r#"{"app": "shop", "strategy": "instance-refresh",
                "defaults": {"gates": {"alarms": ["shop-5xx", "shop-p99"], "bake_time": 900},
                             "instance_refresh": {"alarms": ["shop-p99", "shop-cpu"]}},
                "environments": {"staging": {}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.instance_refresh.alarms,
            vec!["shop-p99", "shop-cpu", "shop-5xx"]
        );
        assert_eq!(c.instance_refresh.bake_time, Duration::from_secs(900));
    }

    #[test]
    fn every_gate_problem_is_named_with_its_place() {
        let e = resolve(
            r#"{
  "app": "shop",
  "defaults": {"gates": {"alarms": ["a", "", "a"], "bake_time": "3d", "check_interval_seconds": 0}},
  "environments": {"staging": {}}
}"#,
        )
        .unwrap_err();
        for want in [
            "defaults.gates.alarms.1: is empty: a CloudWatch alarm name",
            "defaults.gates.alarms.2: `a` is named twice",
            "defaults.gates.bake_time: 3d is longer than 48h (AWS's limit)",
            "defaults.gates.check_interval_seconds: 0 is outside 1-300",
            "rollout.json:3:",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        let e = resolve(
            r#"{"app": "shop", "defaults": {"gates": {"alarms": ["shop-5xx"]}}, "environments": {"staging": {}}}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("gates.bake_time (default): missing: blue-green watches the alarms"),
            "{e}"
        );
        let e = resolve(
            r#"{"app": "shop", "defaults": {"gates": {"bake_time": "5m"}}, "environments": {"staging": {}}}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("gates.bake_time: is set without gates.alarms"),
            "{e}"
        );
        let e = resolve(
            r#"{"app": "shop", "strategy": "spot-fleet",
                "defaults": {"load_balancer": {"kind": "alb"}, "gates": {"alarms": ["x"], "bake_time": "1m"}},
                "environments": {"staging": {}}}"#,
        )
        .unwrap_err();
        assert!(e.contains("spot-fleet has none yet"), "{e}");
        let e = resolve(
            r#"{"app": "shop", "strategy": "instance-refresh",
                "defaults": {"gates": {"alarms": ["x"], "check_interval_seconds": 5}},
                "environments": {"staging": {}}}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("gates.check_interval_seconds: is blue-green's"),
            "{e}"
        );
    }
}
