//! How a new AMI replaces the live one. Every strategy starts from the same read-only [`Preflight`] (load
//! balancer, live groups, AMI, launch spec) and answers two questions: what it would do ([`Strategy::plan`],
//! for `rollout plan`, with what it would change as a diff, [`Strategy::changes`]) and doing it
//! ([`Strategy::deploy`]). What the strategies' plan diffs share is in `plan_diff`.
//!
//! Three implementations, selected by the manifest's `strategy` ([`StrategyKind`]): blue-green (new Auto
//! Scaling group), instance refresh (the live group's instances replaced), spot fleet (new spot fleet).
//! Each deploy is a list of steps on bakery-core's pipeline (`run`): its rollback is those steps' cleanup.
//! Blue-green and spot-fleet share the steps of launching new capacity beside the old (`replace`).
//!
//! This file only composes: [`Preflight`] and [`preflight()`] are in `preflight`, the [`Strategy`] trait in
//! `interface`, each strategy in its own directory, and [`for_kind`] picks one. Submodules import each
//! other (`super::preflight::Preflight`), never this file.

mod abandon;
mod blue_green;
mod instance_refresh;
mod interface;
mod plan_diff;
mod preflight;
mod replace;
mod run;
mod spot_fleet;
mod zones;

pub use abandon::{AbandonReport, abandon};
pub use blue_green::{BlueGreen, KeptFate, expire_kept, undo};
pub use instance_refresh::{InstanceRefresh, OnInterrupt};
pub use interface::Strategy;
pub use preflight::{Preflight, preflight};
pub use spot_fleet::{LiveFleet, SpotFleet};

use crate::manifest::StrategyKind;

/// The strategy for `kind`.
pub fn for_kind(kind: StrategyKind) -> Box<dyn Strategy> {
    match kind {
        StrategyKind::BlueGreen => Box::new(BlueGreen),
        StrategyKind::InstanceRefresh => Box::new(InstanceRefresh::default()),
        StrategyKind::SpotFleet => Box::new(SpotFleet),
    }
}
