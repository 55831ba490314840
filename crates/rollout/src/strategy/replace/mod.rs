//! What blue-green and spot-fleet share: new capacity (an Auto Scaling group, a spot fleet) is launched
//! beside the old, health-gated, marked live, and only then is the old capacity retired. The shared steps
//! are here; each strategy adds the steps that launch, wait for and mark its own kind of capacity.
//!
//! Before the point of no return ([`Common::committed`](super::run::Common::committed)) a failure rolls
//! back: the new capacity and its launch template are removed (their steps' cleanup) and the old capacity
//! is shown untouched ([`OldUntouched`]). After it, a failure stops retiring and reports what is left.
//!
//! This file only composes: what a strategy's capacity must do is in `capacity` ([`Capacity`], [`Seen`]),
//! the run's state in `state` ([`Replace`]), and each shared step in its own file. Steps import their
//! siblings (`super::state::Replace`), never this file.

mod capacity;
mod in_service;
mod launch_template;
mod retire_old;
mod state;
mod untouched;

pub(super) use capacity::{Capacity, Seen};
pub(super) use in_service::InServiceGuard;
pub(super) use launch_template::CreateLaunchTemplate;
pub(super) use retire_old::{RetireOld, retire_template};
pub(super) use state::Replace;
pub(super) use untouched::OldUntouched;
