//! Step 5: the security group. The template's `security_group_id(s)`/`security_group_filter`, or a temporary
//! group allowing TCP `ssh_port` in from a deliberately narrow source (Packer opens it to 0.0.0.0/0):
//!
//! 1. `temporary_security_group_source_cidrs`, when given, exactly;
//! 2. else, when bakery reaches the instance from inside the network — `ssh_interface` private_ip or
//!    private_dns, a bastion, or an `ssh_host` that is a private or loopback address (a tunnel) — the VPC's
//!    CIDR blocks;
//! 3. else the caller's own public address (/32), asked of `checkip.amazonaws.com`; if that cannot be
//!    learnt the build stops and asks for `temporary_security_group_source_cidrs` rather than opening the
//!    port to the world.
//!
//! Deleting the group retries while its network interface is still attached (`DependencyViolation`), for up
//! to 15 minutes, instead of giving up after 5×5 s as Packer does.

use super::state::{Ctx, State};
use crate::ec2::filters;
use crate::resource::Kind;
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, ResourceType};
use bakery_core::aws_err::{AwsError, AwsResultExt};
use bakery_core::pipeline::{Outcome, Step, StepError};
use bakery_core::propagation::{PROPAGATION_TIMEOUT, retry_propagation};
use bakery_core::tags::ec2_tag_spec;
use std::net::IpAddr;
use std::time::Duration;

/// Sets up the security group.
pub struct SecurityGroup;

/// Where the SSH rule allows connections from, by the rule in the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRule {
    /// Given CIDRs.
    Explicit(Vec<String>),
    /// The VPC's range.
    Vpc,
    /// The caller's public address.
    CallerPublicIp,
}

/// Chooses the source rule from the template's options.
pub fn source_rule(cfg: &bakery_template::schema::AmazonEbsConfig) -> SourceRule {
    let cidrs: Vec<String> = cfg
        .run
        .temporary_security_group_source_cidrs
        .iter()
        .filter(|c| !c.is_empty())
        .cloned()
        .collect();
    if !cidrs.is_empty() {
        return SourceRule::Explicit(cidrs);
    }
    let private_iface = matches!(
        cfg.run.ssh_interface.map(|i| i.as_str()),
        Some("private_ip") | Some("private_dns")
    );
    let bastion = cfg
        .comm
        .ssh_bastion_host
        .as_deref()
        .is_some_and(|h| !h.is_empty());
    let private_host = cfg
        .comm
        .ssh_host
        .as_deref()
        .and_then(|h| h.parse::<IpAddr>().ok())
        .is_some_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        });
    if private_iface || bastion || private_host {
        SourceRule::Vpc
    } else {
        SourceRule::CallerPublicIp
    }
}

async fn caller_public_ip() -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect("checkip.amazonaws.com:80")
            .await
            .ok()?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: checkip.amazonaws.com\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        let body = text.split("\r\n\r\n").nth(1)?.trim().to_string();
        body.parse::<IpAddr>().ok().map(|ip| match ip {
            IpAddr::V4(_) => format!("{ip}/32"),
            IpAddr::V6(_) => format!("{ip}/128"),
        })
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
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
        let from = match source_rule(&cx.cfg) {
            SourceRule::Explicit(c) => c.join(", "),
            SourceRule::Vpc => "the VPC's CIDR blocks".to_string(),
            SourceRule::CallerPublicIp => "this machine's public address".to_string(),
        };
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
        let cidrs = match source_rule(&cx.cfg) {
            SourceRule::Explicit(c) => c,
            SourceRule::Vpc => {
                if st.vpc_cidrs.is_empty() {
                    let mut req = ec2.describe_vpcs();
                    req = match &st.vpc_id {
                        Some(v) => req.vpc_ids(v),
                        None => {
                            req.filters(Filter::builder().name("isDefault").values("true").build())
                        }
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
                st.vpc_cidrs.clone()
            }
            SourceRule::CallerPublicIp => match caller_public_ip().await {
                Some(c) => vec![c],
                None => {
                    return Err(StepError::msg(
                        "could not learn this machine's public IP address for the temporary security group; set temporary_security_group_source_cidrs (bakery does not open SSH to 0.0.0.0/0 by default)",
                    ));
                }
            },
        };
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
        cx.ui.say(
            &cx.name,
            &format!(
                "Authorizing access to port {port} from {:?} in the temporary security groups...",
                cidrs
            ),
        );
        let perm = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(port)
            .to_port(port)
            .set_ip_ranges(Some(
                cidrs
                    .iter()
                    .map(|c| IpRange::builder().cidr_ip(c).build())
                    .collect(),
            ))
            .build();
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
        retry_propagation(PROPAGATION_TIMEOUT, &cx.cancel, || async move {
            ec2.authorize_security_group_ingress()
                .group_id(group)
                .ip_permissions(perm.clone())
                .send()
                .await
                .aws("AuthorizeSecurityGroupIngress")
        })
        .await?;
        st.security_group_ids = vec![id];
        Ok(())
    }

    async fn cleanup(&mut self, cx: &Ctx, st: &mut State, _o: Outcome) -> Result<(), StepError> {
        let Some(id) = st.temporary_security_group.clone() else {
            return Ok(());
        };
        cx.ui.say(&cx.name, "Deleting temporary security group...");
        Kind::SecurityGroup
            .remove(&cx.clients.ec2, &id, &cx.cancel_cleanup)
            .await?;
        cx.removed(Kind::SecurityGroup, cx.region(), &id);
        st.temporary_security_group = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> bakery_template::schema::AmazonEbsConfig {
        let text = format!(
            r#"{{"builders":[{{"type":"amazon-ebs","region":"us-east-1","source_ami":"ami-1","instance_type":"t3.micro","ssh_username":"admin","ami_name":"x-{{{{timestamp}}}}"{extra}}}]}}"#
        );
        let p = std::path::Path::new("/t/template.json");
        let tpl = bakery_template::template::parse_text(p, p, text).expect("parses");
        let loaded = bakery_template::load::load_template(tpl, &Default::default()).expect("valid");
        loaded.builds[0]
            .builder
            .as_amazon_ebs()
            .expect("amazon-ebs")
            .clone()
    }

    #[test]
    fn the_default_is_never_the_world() {
        assert_eq!(source_rule(&cfg("")), SourceRule::CallerPublicIp);
        assert_eq!(
            source_rule(&cfg(r#","ssh_host":"127.0.0.1""#)),
            SourceRule::Vpc
        );
        assert_eq!(
            source_rule(&cfg(r#","ssh_host":"10.1.2.3""#)),
            SourceRule::Vpc
        );
        assert_eq!(
            source_rule(&cfg(r#","ssh_interface":"private_ip""#)),
            SourceRule::Vpc
        );
        assert_eq!(
            source_rule(&cfg(
                r#","ssh_bastion_host":"bastion.example.com","ssh_bastion_agent_auth":true"#
            )),
            SourceRule::Vpc
        );
        assert_eq!(
            source_rule(&cfg(r#","ssh_host":"203.0.113.9""#)),
            SourceRule::CallerPublicIp
        );
        assert_eq!(
            source_rule(&cfg(
                r#","temporary_security_group_source_cidrs":["0.0.0.0/0"]"#
            )),
            SourceRule::Explicit(vec!["0.0.0.0/0".into()])
        );
    }
}
