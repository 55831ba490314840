//! bakery-rollout: the second half of bakery's mission. Blue-green Auto Scaling rollouts of baked AMIs
//! behind a classic ELB or an ALB, after seed 004's `setup` and `deploy` bash scripts (docs/origins.md), done the way an SRE
//! would trust with production:
//!
//! * [`setup`]: load balancer (classic or ALB + target group + listener), Route 53 ALIAS, key pair, security
//!   groups; idempotent (a second run sends no write request);
//! * [`strategy`]: what is live ([`live`]) and how a new AMI replaces it (blue-green: a new group beside the
//!   old, health-gated, rolled back when it does not become healthy; each strategy a list of steps on
//!   bakery-core's pipeline, whose cleanup is the rollback);
//! * [`session::Session`]: the library entry point, and [`command::Command`] what it is asked to do (the
//!   `rollout` binary's command line is in the root package's `cli::rollout`).
//!
//! Configuration is a JSON manifest ([`manifest`]) lifted into a validated [`config::RolloutConfig`].
//! All waits go through bakery-core's poller ([`wait`]); every AWS request is counted ([`context`]).
//! What `setup` and `plan` would change is printed as a diff ([`diff`]).
#![deny(missing_docs)]

pub mod alarms;
pub mod ami;
pub mod command;
pub mod config;
pub mod context;
pub mod diff;
pub mod durations;
pub mod error;
pub mod gc;
pub mod launch;
pub mod lb;
pub mod live;
pub mod manifest;
pub mod names;
pub mod observed;
pub mod report;
pub mod retention;
pub mod session;
pub mod setup;
pub mod strategy;
pub mod wait;

pub use error::{AwsError, RolloutError};
pub use session::{Options, Session};
