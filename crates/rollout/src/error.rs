//! Errors: AWS calls that failed (by operation and code), and why a rollout command stopped.

use crate::manifest::ManifestError;
use crate::report::DeployReport;
use bakery_core::poll::WaitError;
use std::path::PathBuf;

pub use bakery_core::aws_err::{AwsError, AwsResultExt};

/// Why a rollout command stopped.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The manifest (or a flag that overrides it) is invalid; every problem is listed.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// A file the manifest names could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--ami` could not be resolved to an available image in the region.
    #[error("--ami {given}: {reason}")]
    Ami {
        /// What was given.
        given: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Something `rollout setup` creates is missing.
    #[error("{what} does not exist: run `rollout setup --env {env}` first")]
    NotSetUp {
        /// The missing resource.
        what: String,
        /// The environment.
        env: String,
    },
    /// `rollout setup` found something it will not change on its own.
    #[error("setup refused to change existing resources:\n  - {}", .0.join("\n  - "))]
    SetupConflict(Vec<String>),
    /// Preflight checks failed; nothing was changed.
    #[error("cannot roll out:\n  - {}", .0.join("\n  - "))]
    Preflight(Vec<String>),
    /// Another rollout of this environment has a group that is not live yet.
    #[error(
        "another rollout of {env} is in progress: {group} (run {run_id}) is not live yet; if that run is dead, \
         undo it with `rollout abandon --run-id {run_id}`, then retry"
    )]
    InProgress {
        /// The environment.
        env: String,
        /// The group that is not live.
        group: String,
        /// The run that created it.
        run_id: String,
    },
    /// The new group did not become healthy in time (or stopped being healthy).
    #[error("the new group did not become healthy: {0}")]
    Unhealthy(String),
    /// Interrupted after something was created.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A wait ended without the wanted state.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// The new group did not become healthy (or the run was interrupted) and was removed again; the old
    /// group was not touched. Or an alarm gate tripped during the bake time (`report.bake`) and the
    /// previous release, kept whole, was brought back before the new one was removed. The report says
    /// what happened.
    #[error("{}", rolled_back_message(.0))]
    RolledBack(Box<DeployReport>),
    /// The rollout stopped part-way and left resources that need attention; the report lists them.
    #[error("{}", incomplete_message(.0))]
    Incomplete(Box<DeployReport>),
    /// Interrupted before anything was changed.
    #[error("interrupted; nothing was changed")]
    Cancelled,
    /// `rollout undo` found no previous release to bring back.
    #[error("no previous release kept: {0}")]
    NothingKept(String),
    /// `rollout undo` in an environment whose strategy keeps no previous release.
    #[error(
        "rollout undo brings back a blue-green release kept by the rollback window; strategy {0} keeps none"
    )]
    UndoUnsupported(String),
}

impl RolloutError {
    /// One line: for errors that carry a report (printed separately), just what went wrong.
    pub fn headline(&self) -> String {
        match self {
            RolloutError::RolledBack(r) => format!(
                "rollout of {} rolled back: {}",
                r.ami.id,
                r.error.as_deref().unwrap_or("unknown error")
            ),
            RolloutError::Incomplete(r) => format!(
                "rollout of {} did not complete: {}",
                r.ami.id,
                r.error.as_deref().unwrap_or("unknown error")
            ),
            other => other.to_string(),
        }
    }

    /// The report of a deploy that got as far as creating something, when there is one.
    pub fn report(&self) -> Option<&DeployReport> {
        match self {
            RolloutError::RolledBack(r) | RolloutError::Incomplete(r) => Some(r),
            _ => None,
        }
    }
}

fn rolled_back_message(r: &DeployReport) -> String {
    let mut s = format!(
        "rollout of {} rolled back: {}",
        r.ami.id,
        r.error.as_deref().unwrap_or("unknown error")
    );
    if let Some(rb) = &r.rollback {
        for a in &rb.actions {
            s.push_str(&format!("\n  rolled back: {a}"));
        }
        for f in &rb.failures {
            s.push_str(&format!("\n  ROLLBACK FAILED: {f}"));
        }
        for w in &rb.warnings {
            s.push_str(&format!("\n  WARNING: {w}"));
        }
        for g in &rb.old_groups {
            s.push_str(&format!("\n  old group: {g}"));
        }
    }
    s
}

fn incomplete_message(r: &DeployReport) -> String {
    let mut s = format!(
        "rollout of {} did not complete: {}",
        r.ami.id,
        r.error.as_deref().unwrap_or("unknown error")
    );
    for a in &r.attention {
        s.push_str(&format!("\n  needs attention: {a}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_template_codes_count_as_not_found() {
        let e = AwsError {
            op: "DescribeLaunchTemplates",
            code: Some("InvalidLaunchTemplateName.NotFoundException".into()),
            detail: String::new(),
        };
        assert!(e.is_not_found());
        let e = AwsError {
            op: "DescribeLoadBalancers",
            code: Some("LoadBalancerNotFound".into()),
            detail: String::new(),
        };
        assert!(e.is_not_found());
        let e = AwsError {
            op: "X",
            code: Some("ValidationError".into()),
            detail: String::new(),
        };
        assert!(!e.is_not_found());
    }
}
