//! The `spot-fleet` strategy's settings: the manifest's `spot_fleet` block, validated.

use super::{Capacity, InstanceConfig, Timeouts, Validator};
use crate::manifest::SpotFleetSettings;
use std::time::Duration;

/// The `spot-fleet` strategy's settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotFleetConfig {
    /// TargetCapacity (instances; every override weighs 1).
    pub target_capacity: u32,
    /// The instance types, one launch template override each (per subnet).
    pub instance_types: Vec<String>,
    /// AllocationStrategy, as the API spells it (`priceCapacityOptimized`).
    pub allocation_strategy: String,
    /// SpotPrice (none: capped at the on-demand price).
    pub max_price: Option<String>,
    /// IamFleetRole: a role name (made an ARN with the account id) or an ARN.
    pub iam_fleet_role: String,
    /// How long the fleet may take to be fulfilled.
    pub fulfil_timeout: Duration,
    /// How long its instances may take to be healthy in the target group.
    pub health_timeout: Duration,
}

/// The allocation strategies Spot Fleet knows, as the API spells them, with the kebab-case spelling
/// accepted too.
const ALLOCATION_STRATEGIES: [(&str, &str); 5] = [
    ("priceCapacityOptimized", "price-capacity-optimized"),
    ("capacityOptimized", "capacity-optimized"),
    (
        "capacityOptimizedPrioritized",
        "capacity-optimized-prioritized",
    ),
    ("diversified", "diversified"),
    ("lowestPrice", "lowest-price"),
];

impl Validator<'_> {
    /// `spot_fleet`: checked here so that a bad value is named with its place in the manifest instead of
    /// failing RequestSpotFleet after the launch template exists.
    pub(super) fn spot_fleet(
        &mut self,
        f: SpotFleetSettings,
        instances: &InstanceConfig,
        capacity: &Capacity,
        timeouts: &Timeouts,
    ) -> SpotFleetConfig {
        let k = |k: &str| format!("spot_fleet.{k}");
        let target_capacity = f.target_capacity.unwrap_or(capacity.desired);
        if target_capacity == 0 {
            self.problem(
                &k("target_capacity"),
                "must be at least 1: a fleet of zero instances leaves the target group with none",
            );
        }
        let instance_types = f
            .instance_types
            .clone()
            .unwrap_or_else(|| vec![instances.instance_type.clone()]);
        if instance_types.is_empty() {
            self.problem(
                &k("instance_types"),
                "is empty: list at least one instance type, or leave it out for instances.instance_type",
            );
        }
        for (i, t) in instance_types.iter().enumerate() {
            if !t.contains('.') || t.starts_with('.') || t.ends_with('.') {
                self.problem(
                    &k(&format!("instance_types.{i}")),
                    &format!("`{t}` is not an instance type (t3.micro)"),
                );
            } else if instance_types[..i].contains(t) {
                self.problem(
                    &k(&format!("instance_types.{i}")),
                    &format!("`{t}` is listed twice"),
                );
            }
        }
        let given = f
            .allocation_strategy
            .clone()
            .unwrap_or_else(|| ALLOCATION_STRATEGIES[0].0.to_string());
        let allocation_strategy = match ALLOCATION_STRATEGIES
            .iter()
            .find(|(api, kebab)| given == *api || given == *kebab)
        {
            Some((api, _)) => api.to_string(),
            None => {
                self.problem(
                    &k("allocation_strategy"),
                    &format!(
                        "`{given}`: expected one of {}",
                        ALLOCATION_STRATEGIES
                            .iter()
                            .map(|(a, _)| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                given
            }
        };
        let max_price = match &f.max_price {
            None => None,
            Some(v) => {
                let text = match v {
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    serde_json::Value::String(s) => Some(s.trim().to_string()),
                    _ => None,
                };
                match text.filter(|t| t.parse::<f64>().is_ok_and(|p| p.is_finite() && p > 0.0)) {
                    Some(t) => Some(t),
                    None => {
                        self.problem(
                            &k("max_price"),
                            &format!(
                                "{v}: expected a price per instance-hour in USD greater than 0 (0.05 or \"0.05\"); leave it out for the on-demand price"
                            ),
                        );
                        None
                    }
                }
            }
        };
        let iam_fleet_role = f
            .iam_fleet_role
            .clone()
            .unwrap_or_else(|| "aws-ec2-spot-fleet-tagging-role".into());
        let role_ok = if iam_fleet_role.starts_with("arn:") {
            iam_fleet_role.contains(":role/")
        } else {
            !iam_fleet_role.is_empty()
                && iam_fleet_role.len() <= 64
                && iam_fleet_role
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        };
        if !role_ok {
            self.problem(
                &k("iam_fleet_role"),
                &format!(
                    "`{iam_fleet_role}` is neither an IAM role name nor a role ARN (arn:aws:iam::123456789012:role/NAME)"
                ),
            );
        }
        let secs = Duration::from_secs;
        let fulfil_timeout = secs(f.fulfil_timeout_seconds.unwrap_or(600));
        let health_timeout = f
            .health_timeout_seconds
            .map(secs)
            .unwrap_or(timeouts.health);
        for (field, d) in [
            ("fulfil_timeout_seconds", fulfil_timeout),
            ("health_timeout_seconds", health_timeout),
        ] {
            if d.is_zero() {
                self.problem(&k(field), "must be at least 1 second");
            }
        }
        SpotFleetConfig {
            target_capacity,
            instance_types,
            allocation_strategy,
            max_price,
            iam_fleet_role,
            fulfil_timeout,
            health_timeout,
        }
    }
}
