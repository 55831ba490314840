//! Step 5: the security group. The template's `security_group_id(s)`/`security_group_filter`, or a temporary
//! group allowing TCP `ssh_port` in from a deliberately narrow source (Packer opens it to 0.0.0.0/0): the
//! address the connection really comes from, decided by the route bake takes to the instance
//! ([`super::ssh_source`]: explicit CIDRs, a bastion's VPC, this machine's public address over HTTPS, or its
//! address on the private route). If the source cannot be learnt the build stops and asks for
//! `temporary_security_group_source_cidrs` rather than opening the port to the world.
//!
//! Deleting the group retries while its network interface is still attached (`DependencyViolation`), for up
//! to 15 minutes, instead of giving up after 5×5 s as Packer does.

use super::ssh_source::{
    Route, SubnetFacts, decide, host_cidr, needs_subnet, permission, private_source,
};
use super::state::{Ctx, State};
use crate::ec2::filters;
use crate::resource::Kind;
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, IpPermission, ResourceType};
use bakery_core::aws_err::{AwsError, AwsResultExt};
use bakery_core::checkip;
use bakery_core::pipeline::{Outcome, Step, StepError};
use bakery_core::propagation::{PROPAGATION_TIMEOUT, retry_propagation};
use bakery_core::tags::ec2_tag_spec;

/// Sets up the security group.
pub struct SecurityGroup;

/// The subnet's `MapPublicIpOnLaunch` and CIDR.
async fn subnet_facts(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<SubnetFacts, StepError> {
    let out = ec2
        .describe_subnets()
        .subnet_ids(id)
        .send()
        .await
        .aws("DescribeSubnets")?;
    let s = out.subnets().first();
    Ok(SubnetFacts {
        maps_public_ip: s.and_then(|s| s.map_public_ip_on_launch()),
        cidr: s.and_then(|s| s.cidr_block()).map(str::to_string),
    })
}

/// The VPC's CIDR blocks (the default VPC's without a `vpc_id`), learnt once.
async fn vpc_cidrs(ec2: &aws_sdk_ec2::Client, st: &mut State) -> Result<Vec<String>, StepError> {
    if st.vpc_cidrs.is_empty() {
        let mut req = ec2.describe_vpcs();
        req = match &st.vpc_id {
            Some(v) => req.vpc_ids(v),
            None => req.filters(Filter::builder().name("isDefault").values("true").build()),
        };
        let out = req.send().await.aws("DescribeVpcs")?;
        let vpc = out.vpcs().first();
        if st.vpc_id.is_none() {
            st.vpc_id = vpc.and_then(|v| v.vpc_id()).map(str::to_string);
        }
        st.vpc_cidrs = vpc
            .map(|v| {
                v.cidr_block_association_set()
                    .iter()
                    .filter_map(|a| a.cidr_block().map(str::to_string))
                    .chain(v.cidr_block().map(str::to_string))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default();
    }
    if st.vpc_cidrs.is_empty() {
        return Err(StepError::msg(
            "could not learn the VPC's CIDR for the temporary security group; set temporary_security_group_source_cidrs",
        ));
    }
    Ok(st.vpc_cidrs.clone())
}

#[async_trait]
impl Step<Ctx, State> for SecurityGroup {
    fn name(&self) -> &'static str {
        "security-group"
    }

    async fn plan(&self, cx: &Ctx, _st: &mut State) -> Result<Vec<String>, StepError> {
        let run = &cx.cfg.run;
        if !run.security_group_ids.is_empty() {
            return Ok(vec![format!(
                "security groups: {}",
                run.security_group_ids.join(", ")
            )]);
        }
        if run
            .security_group_filter
            .as_ref()
            .is_some_and(|f| !f.filters.is_empty())
        {
            return Ok(vec![
                "security groups: those matching security_group_filter".to_string(),
            ]);
        }
        let (route, why) = decide(&cx.cfg, None);
        let from = match route {
            Route::Explicit(c) => c.join(", "),
            Route::Bastion => "the VPC's CIDR blocks".to_string(),
            Route::Public => "this machine's public address".to_string(),
            Route::Private(_) => "this machine's address on the route to the instance".to_string(),
            Route::Ipv6 => {
                "this machine's IPv6 address on the route to the instance's (once launched)"
                    .to_string()
            }
        };
        let from = format!("{from}: {why}");
        Ok(vec![format!(
            "would create in {}: temporary security group (tcp/{} from {from})",
            cx.region(),
            cx.cfg.comm.ssh_port
        )])
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        let run = &cx.cfg.run;
        let ec2 = &cx.clients.ec2;
        if !run.security_group_ids.is_empty() {
            st.security_group_ids = run.security_group_ids.clone();
            return Ok(());
        }
        if let Some(f) = run
            .security_group_filter
            .as_ref()
            .filter(|f| !f.filters.is_empty())
        {
            let mut fl = filters(&f.filters);
            if let Some(v) = &st.vpc_id {
                fl.push(Filter::builder().name("vpc-id").values(v).build());
            }
            let out = ec2
                .describe_security_groups()
                .set_filters(Some(fl))
                .send()
                .await
                .aws("DescribeSecurityGroups")?;
            st.security_group_ids = out
                .security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_string))
                .collect();
            if st.security_group_ids.is_empty() {
                return Err(StepError::msg(
                    "No security group matched security_group_filter",
                ));
            }
            return Ok(());
        }
        // Decide the source before creating anything, so a refusal leaves nothing behind.
        let subnet = match (&st.subnet_id, needs_subnet(&cx.cfg)) {
            (Some(id), true) => Some(subnet_facts(ec2, id).await?),
            _ => None,
        };
        if let Some(f) = &subnet {
            st.subnet_cidr.clone_from(&f.cidr);
        }
        let (route, why) = decide(&cx.cfg, subnet.as_ref());
        let cidrs = match &route {
            Route::Explicit(c) => c.clone(),
            Route::Bastion => vpc_cidrs(ec2, st).await?,
            Route::Public => match checkip::this_machine().await {
                Ok(ip) => vec![host_cidr(ip)],
                Err(e) => {
                    return Err(StepError::msg(format!(
                        "could not learn this machine's public address for the temporary security group ({e}); set temporary_security_group_source_cidrs (bakery does not open SSH to 0.0.0.0/0 by default)"
                    )));
                }
            },
            Route::Private(target) => {
                if target.is_none() && st.subnet_cidr.is_none() && st.vpc_cidrs.is_empty() {
                    if let Some(id) = st.subnet_id.clone() {
                        st.subnet_cidr = subnet_facts(ec2, &id).await?.cidr;
                    } else {
                        vpc_cidrs(ec2, st).await?;
                    }
                }
                vec![private_source(
                    *target,
                    st.subnet_cidr.as_deref(),
                    &st.vpc_cidrs,
                )?]
            }
            // Unknown until the instance has its IPv6 address: authorize_for_launched adds it.
            Route::Ipv6 => Vec::new(),
        };
        st.ssh_route = Some(route);
        let name = cx.temp_name();
        cx.ui.say(
            &cx.name,
            "Creating temporary security group for this instance...",
        );
        let req = ec2
            .create_security_group()
            .group_name(&name)
            .description("Temporary group for bakery")
            .set_vpc_id(st.vpc_id.clone())
            .tag_specifications(ec2_tag_spec(
                ResourceType::SecurityGroup,
                &cx.ownership_tags("temporary-security-group"),
            ));
        let out = cx
            .create(Kind::SecurityGroup, cx.region(), None, async {
                req.send().await.aws("CreateSecurityGroup")
            })
            .await?;
        let id = out
            .group_id()
            .ok_or_else(|| StepError::msg("CreateSecurityGroup returned no id"))?
            .to_string();
        cx.created(Kind::SecurityGroup, cx.region(), &id);
        st.temporary_security_group = Some(id.clone());
        cx.ui.message(&cx.name, &format!("{name} ({id})"));
        let port = i32::from(cx.cfg.comm.ssh_port);
        if cidrs.is_empty() {
            cx.ui.say(
                &cx.name,
                &format!(
                    "The temporary security group allows nothing until the instance runs ({why})"
                ),
            );
            st.security_group_ids = vec![id];
            return Ok(());
        }
        cx.ui.say(
            &cx.name,
            &format!(
                "Authorizing access to port {port} from {} in the temporary security groups ({why})...",
                cidrs.join(", ")
            ),
        );
        let perm = permission(port, &cidrs);
        // A new group is not visible to every EC2 endpoint at once: wait until it is described, as
        // Packer does, then authorize (retrying what is still not visible).
        let (group, perm) = (&id, &perm);
        retry_propagation(PROPAGATION_TIMEOUT, &cx.cancel, || async move {
            let out = ec2
                .describe_security_groups()
                .group_ids(group)
                .send()
                .await
                .aws("DescribeSecurityGroups")?;
            if out.security_groups().is_empty() {
                return Err(AwsError {
                    op: "DescribeSecurityGroups",
                    code: Some("InvalidGroup.NotFound".into()),
                    detail: format!("security group {group} is not visible yet"),
                });
            }
            Ok(())
        })
        .await?;
        authorize(cx, group, perm).await?;
        st.security_group_ids = vec![id];
        Ok(())
    }

    async fn cleanup(&mut self, cx: &Ctx, st: &mut State, _o: Outcome) -> Result<(), StepError> {
        delete_temporary(cx, st).await
    }
}

/// Deletes the temporary security group, if there is one left (the AMI step may have released it).
pub async fn delete_temporary(cx: &Ctx, st: &mut State) -> Result<(), StepError> {
    let Some(id) = st.temporary_security_group.clone() else {
        return Ok(());
    };
    cx.ui.say(&cx.name, "Deleting temporary security group...");
    Kind::SecurityGroup
        .remove(&cx.clients, &id, &cx.cancel_cleanup)
        .await?;
    cx.removed(Kind::SecurityGroup, cx.region(), &id);
    st.temporary_security_group = None;
    Ok(())
}

/// After launch: a public route was chosen but the instance got no public address, so bake will connect
/// to its private address; authorize this machine's address on that route too.
pub async fn authorize_for_launched(cx: &Ctx, st: &mut State) -> Result<(), StepError> {
    let (Some(group), Some(route)) = (st.temporary_security_group.clone(), st.ssh_route.clone())
    else {
        return Ok(());
    };
    let Some(inst) = st.instance.as_ref() else {
        return Ok(());
    };
    let port = i32::from(cx.cfg.comm.ssh_port);
    if route == Route::Ipv6 {
        let v6 = inst
            .ipv6
            .as_deref()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
            .ok_or_else(|| {
                StepError::msg(
                    "ssh_interface is ipv6 but the instance has no IPv6 address (launch it in a subnet with an IPv6 range that assigns one)",
                )
            })?;
        let src = super::ssh_source::local_source_for(v6)
            .filter(std::net::IpAddr::is_ipv6)
            .ok_or_else(|| StepError::msg(format!("this machine has no IPv6 route to {v6}")))?;
        let cidr = super::ssh_source::host_cidr(src);
        cx.ui.say(
            &cx.name,
            &format!("Authorizing port {port} from {cidr} (this machine's IPv6 address on the route to {v6})"),
        );
        authorize(cx, &group, &permission(port, std::slice::from_ref(&cidr))).await?;
        return Ok(());
    }
    if route != Route::Public {
        return Ok(());
    }
    if inst.public_ip.is_some()
        || cx
            .cfg
            .comm
            .ssh_host
            .as_deref()
            .is_some_and(|h| !h.is_empty())
    {
        return Ok(());
    }
    let Some(private) = inst
        .private_ip
        .as_deref()
        .and_then(|p| p.parse::<std::net::IpAddr>().ok())
    else {
        return Ok(());
    };
    let cidr = private_source(Some(private), st.subnet_cidr.as_deref(), &st.vpc_cidrs)?;
    cx.ui.say(
        &cx.name,
        &format!(
            "The instance has no public address: authorizing port {port} from {cidr} (this machine's address on the route to {private})"
        ),
    );
    authorize(cx, &group, &permission(port, std::slice::from_ref(&cidr))).await?;
    st.ssh_route = Some(Route::Private(Some(private)));
    Ok(())
}

/// Adds `perm` to `group`, retrying while AWS does not see the new group yet.
async fn authorize(cx: &Ctx, group: &str, perm: &IpPermission) -> Result<(), AwsError> {
    let ec2 = &cx.clients.ec2;
    retry_propagation(PROPAGATION_TIMEOUT, &cx.cancel, || async move {
        ec2.authorize_security_group_ingress()
            .group_id(group)
            .ip_permissions(perm.clone())
            .send()
            .await
            .aws("AuthorizeSecurityGroupIngress")
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn cfg(extra: &str) -> bakery_template::schema::AmazonEbsConfig {
        crate::amazon_ebs::state::test_config(extra)
    }

    #[test]
    fn the_default_is_never_the_world() {
        let route = |extra: &str| decide(&cfg(extra), None).0;
        assert_eq!(route(""), Route::Public);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            route(r#","ssh_host":"127.0.0.1""#),
            Route::Private(Some(local))
        );
        assert_eq!(
            route(r#","ssh_host":"10.1.2.3""#),
            Route::Private(Some("10.1.2.3".parse().unwrap()))
        );
        assert_eq!(
            route(r#","ssh_interface":"private_ip""#),
            Route::Private(None)
        );
        assert_eq!(
            route(r#","ssh_bastion_host":"bastion.example.com","ssh_bastion_agent_auth":true"#),
            Route::Bastion
        );
        assert_eq!(route(r#","ssh_host":"203.0.113.9""#), Route::Public);
        assert_eq!(
            route(r#","temporary_security_group_source_cidrs":["0.0.0.0/0"]"#),
            Route::Explicit(vec!["0.0.0.0/0".into()])
        );
        assert_eq!(
            route(r#","associate_public_ip_address":false"#),
            Route::Private(None)
        );
    }

    #[test]
    fn the_subnet_decides_when_the_template_does_not() {
        let c = cfg(r#","subnet_id":"subnet-1""#);
        assert!(needs_subnet(&c));
        let private = SubnetFacts {
            maps_public_ip: Some(false),
            cidr: Some("10.9.0.0/24".into()),
        };
        let (route, why) = decide(&c, Some(&private));
        assert_eq!(route, Route::Private(None));
        assert!(why.contains("no public address"), "{why}");
        let public = SubnetFacts {
            maps_public_ip: Some(true),
            cidr: None,
        };
        assert_eq!(decide(&c, Some(&public)).0, Route::Public);
        assert!(!needs_subnet(&cfg(r#","ssh_interface":"public_ip""#)));
    }

    #[test]
    fn the_private_source_is_this_machines_address_on_the_route() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            super::super::ssh_source::local_source_for(local),
            Some(local)
        );
        let st = State::default();
        assert_eq!(
            private_source(Some(local), st.subnet_cidr.as_deref(), &st.vpc_cidrs).unwrap(),
            "127.0.0.1/32"
        );
        let p = permission(22, &["203.0.113.7/32".into(), "2001:db8::7/128".into()]);
        assert_eq!(p.ip_ranges()[0].cidr_ip(), Some("203.0.113.7/32"));
        assert_eq!(p.ipv6_ranges()[0].cidr_ipv6(), Some("2001:db8::7/128"));
    }
}
