//! What the `rollout` front-end asks a [`Session`](crate::Session) to do, as Rust types: the command line
//! is lifted into one of these before the session opens.

use crate::gc::GcRequest;

/// One `rollout` command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Create (or converge) the environment; with `dry_run`, only show what would be done.
    Setup {
        /// Read-only AWS calls only.
        dry_run: bool,
    },
    /// Show what is live now and what rolling `ami` out would do; read-only.
    Plan {
        /// The AMI reference (`ami-…`, `ssm:/…`, a bake manifest), when given.
        ami: Option<String>,
    },
    /// Roll `ami` out.
    Deploy {
        /// The AMI reference (`ami-…`, `ssm:/…`, a bake manifest).
        ami: String,
    },
    /// Undo what a killed rollout left (its in-progress group or fleet and its launch templates).
    Abandon {
        /// Only this run (also finds a run killed before its group existed).
        run_id: Option<String>,
    },
    /// Bring the newest kept previous release (blue-green's rollback window) back behind the load
    /// balancer, then retire the serving one.
    Undo,
    /// Remove the app's old AMIs and launch template versions that nothing uses.
    Gc(GcRequest),
}
