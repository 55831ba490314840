//! Where the environment lives: the VPC (the manifest's, else the region's default) and the subnets a new
//! load balancer is placed in.

use super::Setup;
use crate::error::{AwsResultExt, RolloutError};
use aws_sdk_ec2::types::Filter;

impl Setup<'_> {
    /// `network.vpc_id`, else the region's default VPC (setup never creates or changes one: it is
    /// recorded as unchanged, the diff's context).
    pub(super) async fn vpc(&mut self) -> Result<String, RolloutError> {
        if let Some(v) = self.cx.cfg.network.vpc_id.clone() {
            self.record(format!("VPC {v}"), "unchanged", "network.vpc_id".into());
            return Ok(v);
        }
        let out = self
            .cx
            .clients
            .ec2
            .describe_vpcs()
            .filters(Filter::builder().name("is-default").values("true").build())
            .send()
            .await
            .aws("DescribeVpcs")?;
        let vpc = out
            .vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .map(str::to_string)
            .ok_or_else(|| {
                RolloutError::Preflight(vec![format!(
                    "{} has no default VPC: set network.vpc_id (and network.subnets) in the manifest",
                    self.cx.clients.region
                )])
            })?;
        self.record(format!("VPC {vpc}"), "unchanged", "the default VPC".into());
        Ok(vpc)
    }

    /// Subnets for a new load balancer as (id, zone), by zone: the manifest's, else the VPC's default
    /// subnets (in the manifest's zones, when it names zones).
    pub(super) async fn subnets(
        &mut self,
        vpc: &str,
    ) -> Result<Vec<(String, String)>, RolloutError> {
        let net = &self.cx.cfg.network;
        let mut req = self
            .cx
            .clients
            .ec2
            .describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(vpc).build());
        if net.subnets.is_empty() {
            req = req.filters(
                Filter::builder()
                    .name("default-for-az")
                    .values("true")
                    .build(),
            );
        } else {
            req = req.set_subnet_ids(Some(net.subnets.clone()));
        }
        let out = req.send().await.aws("DescribeSubnets")?;
        let mut subnets: Vec<(String, String)> = out
            .subnets()
            .iter()
            .filter_map(|s| {
                Some((
                    s.subnet_id()?.to_string(),
                    s.availability_zone()?.to_string(),
                ))
            })
            .filter(|(_, az)| {
                !net.subnets.is_empty()
                    || net.availability_zones.is_empty()
                    || net.availability_zones.contains(az)
            })
            .collect();
        subnets.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        Ok(subnets)
    }
}
