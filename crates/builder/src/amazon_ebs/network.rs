//! Step 3: the VPC and subnet — `vpc_id`/`subnet_id`, or `vpc_filter`/`subnet_filter` (`most_free`,
//! `random`). With none of these the instance goes to the default VPC and no call is made.

use super::state::{Ctx, State};
use crate::ec2::filters;
use async_trait::async_trait;
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::{Step, StepError};

/// Resolves the network.
pub struct Network;

#[async_trait]
impl Step<Ctx, State> for Network {
    fn name(&self) -> &'static str {
        "network"
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        let run = &cx.cfg.run;
        let ec2 = &cx.clients.ec2;
        st.vpc_id = run.vpc_id.clone().filter(|s| !s.is_empty());
        st.subnet_id = run.subnet_id.clone().filter(|s| !s.is_empty());
        if st.vpc_id.is_none()
            && let Some(f) = run.vpc_filter.as_ref().filter(|f| !f.filters.is_empty())
        {
            let out = ec2
                .describe_vpcs()
                .set_filters(Some(filters(&f.filters)))
                .send()
                .await
                .aws("DescribeVpcs")?;
            match out.vpcs() {
                [one] => {
                    st.vpc_id = one.vpc_id().map(str::to_string);
                    st.vpc_cidrs = one
                        .cidr_block()
                        .map(|c| vec![c.to_string()])
                        .unwrap_or_default();
                }
                [] => return Err(StepError::msg("No VPC found matching vpc_filter")),
                _ => {
                    return Err(StepError::msg(
                        "Exactly one VPC should match the filter, found several",
                    ));
                }
            }
        }
        if st.subnet_id.is_none()
            && let Some(f) = run.subnet_filter.as_ref().filter(|f| !f.filters.is_empty())
        {
            let mut fl = filters(&f.filters);
            if let Some(v) = &st.vpc_id {
                fl.push(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("vpc-id")
                        .values(v)
                        .build(),
                );
            }
            let out = ec2
                .describe_subnets()
                .set_filters(Some(fl))
                .send()
                .await
                .aws("DescribeSubnets")?;
            let mut subnets = out.subnets().to_vec();
            if subnets.is_empty() {
                return Err(StepError::msg("No subnet found matching subnet_filter"));
            }
            if subnets.len() > 1 && !f.most_free && !f.random {
                return Err(StepError::msg(
                    "Your filter matched more than one subnet; set most_free or random",
                ));
            }
            let chosen = if f.random {
                let i = (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0) as usize)
                    % subnets.len();
                subnets.swap_remove(i)
            } else {
                subnets.sort_by_key(|s| s.available_ip_address_count().unwrap_or(0));
                subnets.pop().expect("non-empty")
            };
            cx.ui.message(
                &cx.name,
                &format!(
                    "Found Subnet ID: {}",
                    chosen.subnet_id().unwrap_or_default()
                ),
            );
            st.subnet_id = chosen.subnet_id().map(str::to_string);
            st.vpc_id = chosen.vpc_id().map(str::to_string);
        }
        // The temporary security group needs the VPC of an explicit subnet (Packer does the same look-up).
        if st.vpc_id.is_none()
            && let Some(subnet) = &st.subnet_id
        {
            let out = ec2
                .describe_subnets()
                .subnet_ids(subnet)
                .send()
                .await
                .aws("DescribeSubnets")?;
            st.vpc_id = out
                .subnets()
                .first()
                .and_then(|s| s.vpc_id())
                .map(str::to_string);
        }
        Ok(())
    }
}
