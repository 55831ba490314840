//! What every strategy implements ([`Strategy`]): what it would do, and doing it.

use super::preflight::Preflight;
use crate::context::Ctx;
use crate::diff::DiffLine;
use crate::error::RolloutError;
use crate::manifest::StrategyKind;
use crate::report::DeployReport;

/// A way of rolling out.
#[async_trait::async_trait]
pub trait Strategy: Send + Sync {
    /// Which one.
    fn kind(&self) -> StrategyKind;

    /// What [`Strategy::deploy`] would do, step by step, given the preflight.
    fn plan(&self, cx: &Ctx, pf: &Preflight) -> Vec<String>;

    /// What [`Strategy::deploy`] would change, resource by resource, as diff lines (`rollout plan`'s
    /// "Changes"); read-only calls for what preflight did not read (the live launch templates).
    async fn changes(&self, cx: &Ctx, pf: &Preflight) -> Result<Vec<DiffLine>, RolloutError>;

    /// Rolls `pf.ami` out. Preflight problems have been ruled out by the caller.
    async fn deploy(&self, cx: &Ctx, pf: Preflight) -> Result<DeployReport, RolloutError>;
}
