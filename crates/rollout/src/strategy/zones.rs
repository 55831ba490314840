//! Preflight: the load balancer serves every zone the new group launches in. An instance in a zone the
//! load balancer is not enabled for never turns healthy (an ALB target stays `unused`, a classic ELB says
//! `OutOfService`), so a rollout would wait out its health timeout and roll back. Checked before anything
//! is created.

use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::lb::LoadBalancer;
use std::collections::BTreeSet;

/// The zones the environment's new groups launch in: its subnets' zones, else its zones; empty when the
/// manifest names neither (the account's default subnets, which AWS picks).
async fn group_zones(cx: &Ctx) -> Result<BTreeSet<String>, RolloutError> {
    let net = &cx.cfg.network;
    if net.subnets.is_empty() {
        return Ok(net.availability_zones.iter().cloned().collect());
    }
    let out = cx
        .clients
        .ec2
        .describe_subnets()
        .set_subnet_ids(Some(net.subnets.clone()))
        .send()
        .await
        .aws("DescribeSubnets")?;
    Ok(out
        .subnets()
        .iter()
        .filter_map(|s| s.availability_zone())
        .map(str::to_string)
        .collect())
}

/// A problem when `lb` does not serve a zone the new group launches in.
pub(crate) async fn problems(cx: &Ctx, lb: &LoadBalancer) -> Result<Vec<String>, RolloutError> {
    if lb.availability_zones.is_empty() {
        return Ok(Vec::new());
    }
    let served: BTreeSet<&str> = lb.availability_zones.iter().map(String::as_str).collect();
    let missing: Vec<String> = group_zones(cx)
        .await?
        .into_iter()
        .filter(|z| !served.contains(z.as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![format!(
        "load balancer {} serves {} but the new group would also launch in {}: instances there never turn healthy; enable those zones on the load balancer or leave them out of `network`",
        lb.name,
        lb.availability_zones.join(", "),
        missing.join(", ")
    )])
}
