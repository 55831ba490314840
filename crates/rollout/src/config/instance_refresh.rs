//! The `instance-refresh` strategy's settings: the manifest's `instance_refresh` block, validated.

use super::Validator;
use crate::manifest::InstanceRefreshSettings;
use std::time::Duration;

/// The `instance-refresh` strategy's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRefreshConfig {
    /// MinHealthyPercentage.
    pub min_healthy_percentage: u32,
    /// MaxHealthyPercentage (AWS's default when `None`).
    pub max_healthy_percentage: Option<u32>,
    /// InstanceWarmup in seconds (the group's grace period when `None`).
    pub instance_warmup_seconds: Option<u32>,
    /// CheckpointPercentages (none: no pauses).
    pub checkpoint_percentages: Vec<u32>,
    /// CheckpointDelay in seconds.
    pub checkpoint_delay_seconds: Option<u32>,
    /// AutoRollback.
    pub auto_rollback: bool,
    /// AlarmSpecification's alarms.
    pub alarms: Vec<String>,
    /// SkipMatching.
    pub skip_matching: bool,
    /// How long the refresh may take before rollout cancels it.
    pub timeout: Duration,
    /// Launch template versions kept (at least 2).
    pub max_launch_template_versions: u32,
    /// BakeTime: how long AWS waits after the last replacement, watching the alarms, before the refresh
    /// counts as done (`gates.bake_time`; zero: not sent).
    pub bake_time: Duration,
}

impl Validator<'_> {
    /// `instance_refresh`: AWS's ranges for each preference, checked here so that a bad value is named
    /// with its place in the manifest instead of failing StartInstanceRefresh after the new version exists.
    pub(super) fn instance_refresh(&mut self, r: InstanceRefreshSettings) -> InstanceRefreshConfig {
        let f = |k: &str| format!("instance_refresh.{k}");
        let min = r.min_healthy_percentage.unwrap_or(90);
        if min > 100 {
            self.problem(
                &f("min_healthy_percentage"),
                &format!("{min} is outside 0-100"),
            );
        }
        if let Some(max) = r.max_healthy_percentage {
            if !(100..=200).contains(&max) {
                self.problem(
                    &f("max_healthy_percentage"),
                    &format!("{max} is outside 100-200"),
                );
            } else if max.saturating_sub(min) > 100 {
                self.problem(
                    &f("max_healthy_percentage"),
                    &format!(
                        "{max} is more than 100 above min_healthy_percentage ({min}); AWS allows a spread of at most 100"
                    ),
                );
            }
        }
        if let Some(w) = r.instance_warmup_seconds
            && w > 86_400
        {
            self.problem(
                &f("instance_warmup_seconds"),
                &format!("{w} is outside 0-86400"),
            );
        }
        let checkpoints = r.checkpoint_percentages.clone().unwrap_or_default();
        for (i, c) in checkpoints.iter().enumerate() {
            if !(1..=100).contains(c) {
                self.problem(
                    &f(&format!("checkpoint_percentages.{i}")),
                    &format!("{c} is outside 1-100"),
                );
            } else if i > 0 && *c <= checkpoints[i - 1] {
                self.problem(
                    &f(&format!("checkpoint_percentages.{i}")),
                    &format!(
                        "{c} must be greater than the checkpoint before it ({})",
                        checkpoints[i - 1]
                    ),
                );
            }
        }
        if checkpoints.last().is_some_and(|c| *c != 100) && checkpoints.iter().all(|c| *c <= 100) {
            self.problem(
                &f("checkpoint_percentages"),
                "the last checkpoint must be 100 (otherwise the refresh ends with part of the group on the old AMI)",
            );
        }
        if r.checkpoint_percentages
            .as_ref()
            .is_some_and(|c| c.is_empty())
        {
            self.problem(
                &f("checkpoint_percentages"),
                "is empty: leave it out for no checkpoints",
            );
        }
        if let Some(d) = r.checkpoint_delay_seconds {
            if checkpoints.is_empty() {
                self.problem(
                    &f("checkpoint_delay_seconds"),
                    "is set without checkpoint_percentages",
                );
            } else if d > 172_800 {
                self.problem(
                    &f("checkpoint_delay_seconds"),
                    &format!("{d} is outside 0-172800"),
                );
            }
        }
        let alarms = r.alarms.clone().unwrap_or_default();
        for (i, a) in alarms.iter().enumerate() {
            if a.trim().is_empty() {
                self.problem(
                    &f(&format!("alarms.{i}")),
                    "is empty: a CloudWatch alarm name",
                );
            }
        }
        let timeout = Duration::from_secs(r.timeout_seconds.unwrap_or(3600));
        if timeout.is_zero() {
            self.problem(&f("timeout_seconds"), "must be at least 1 second");
        }
        let keep = r.max_launch_template_versions.unwrap_or(10);
        if keep < 2 {
            self.problem(
                &f("max_launch_template_versions"),
                &format!("{keep}: keep at least 2 (the version being replaced and the new one)"),
            );
        }
        InstanceRefreshConfig {
            min_healthy_percentage: min,
            max_healthy_percentage: r.max_healthy_percentage,
            instance_warmup_seconds: r.instance_warmup_seconds,
            checkpoint_percentages: checkpoints,
            checkpoint_delay_seconds: r.checkpoint_delay_seconds,
            auto_rollback: r.auto_rollback.unwrap_or(true),
            alarms,
            skip_matching: r.skip_matching.unwrap_or(true),
            timeout,
            max_launch_template_versions: keep,
            bake_time: Duration::ZERO,
        }
    }
}
