//! The command lines of both binaries: [`bake`] (with [`build`], [`cleanup`] and the template commands in
//! [`template`]) and [`rollout`]. Each lifts its raw flags once into typed options, then calls the crates.
//! Both print clap's help and errors through [`usage`], and generate completions and man pages with
//! [`generate`].

pub mod bake;
pub mod build;
pub mod cleanup;
pub mod generate;
pub mod packer_compat;
pub mod rollout;
pub mod template;
pub mod usage;

pub use bake::{BuildArgs, OnErrorArg, template_args};
