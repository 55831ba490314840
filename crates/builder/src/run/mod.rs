//! A whole `bake build` run, from a checked configuration to the artifact summary: the front end lifts its
//! flags into a [`BuildConfig`], has the templates [`check`]ed, builds its `Ui`, then calls [`build()`] (or
//! [`dry_run()`]).
//!
//! One file per concern: the configuration ([`config`]); the jobs a run is made of and how their templates
//! are loaded ([`jobs`]); one build's context and AWS settings ([`context`]); running one template's builds
//! ([`template`]); post-processors and SSM publishing ([`post_process`]); the artifact summary
//! ([`summary`]); the whole run ([`build`](mod@build)) and the dry run ([`dry_run`](mod@dry_run)).

pub mod build;
pub mod config;
pub mod context;
pub mod dry_run;
pub mod jobs;
pub mod post_process;
pub mod ssh_override;
pub mod summary;
pub mod template;

pub use build::{JournalError, build};
pub use config::{BuildConfig, ConfigError, VarOptions};
pub use context::aws_settings;
pub use dry_run::dry_run;
pub use jobs::{Checked, TemplatesInvalid, check};
pub use ssh_override::SshOverride;
pub use summary::Outcome;
