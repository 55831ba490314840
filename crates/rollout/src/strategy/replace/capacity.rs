//! What blue-green and spot-fleet launch and retire ([`Capacity`]: an Auto Scaling group, a spot fleet),
//! and old capacity as seen at one moment ([`Seen`], what rolling back compares).

use crate::context::Ctx;
use crate::error::RolloutError;
use crate::lb::LoadBalancer;
use crate::report::DeployReport;

/// Capacity a strategy launches and retires: a group or a fleet.
#[async_trait::async_trait]
pub(in crate::strategy) trait Capacity: Clone + Send + Sync + 'static {
    /// `groups` / `fleets`, in messages.
    const PLURAL: &'static str;
    /// `the new group's` / `the new fleet's`, in the in-service guard's message.
    const NEW_WHOSE: &'static str;
    /// What keeps the new launch template while the new capacity could not be removed.
    const TEMPLATE_KEPT_WHILE: &'static str;
    /// What the strategy's own steps hand each other.
    type Launch: Default + Send + Sync;

    /// The group's name, the fleet's id.
    fn id(&self) -> &str;
    /// Drains, removes and cleans up after this old capacity; records it in `report`. `keep`: keep it
    /// instead, if the strategy has a rollback window and it is on (blue-green; never the bad release an
    /// undo retires).
    async fn retire(
        &self,
        cx: &Ctx,
        lb: &LoadBalancer,
        keep: bool,
        report: &mut DeployReport,
    ) -> Result<(), RolloutError>;
    /// The attention line for old capacity left in place because retiring stopped; `new` is live.
    fn not_retired(&self, new: &str) -> String;
    /// How it looked before the rollout, for [`OldUntouched`](super::untouched::OldUntouched).
    fn seen(&self) -> Seen;
    /// How `olds` look now, in their order: `None` when gone, `Err` when they could not be described.
    async fn look_again(cx: &Ctx, olds: &[Self]) -> Vec<Result<Option<Seen>, String>>;
}

/// Old capacity as seen at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::strategy) struct Seen {
    /// The group's name, the fleet's id.
    pub name: String,
    /// What must not change (compared before and after).
    pub key: String,
    /// How a change is shown.
    pub shown: String,
    /// Its instances.
    pub instances: Vec<String>,
    /// Its instances that were in service on the load balancer (known for groups only).
    pub served: Vec<String>,
    /// How it is reported gone: `deleted` / `cancelled`.
    pub gone_verb: &'static str,
}
