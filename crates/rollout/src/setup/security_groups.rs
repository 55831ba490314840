//! The load balancer's and the instances' security groups: created when missing, tagged, and given the
//! ingress rules the manifest implies (clients → load balancer port; load balancer → instance and health
//! check ports). Rules are only ever added, never removed.

use super::{Setup, tags};
use crate::error::{AwsResultExt, RolloutError};
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, ResourceType, UserIdGroupPair};
use bakery_core::propagation::{PROPAGATION_TIMEOUT, retry_propagation};
use bakery_core::tags::{ec2_tag_spec, ec2_tags};

/// An ingress rule: TCP `port` from a CIDR or from a security group.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Cidr(u16, String),
    Group(u16, String),
}

impl Rule {
    fn describe(&self) -> String {
        match self {
            Rule::Cidr(p, c) => format!("tcp/{p} from {c}"),
            Rule::Group(p, g) => format!("tcp/{p} from {g}"),
        }
    }

    /// True when one of `perms` already allows this (a wider port range or all protocols count).
    fn present_in(&self, perms: &[IpPermission]) -> bool {
        perms.iter().any(|p| {
            let port = match self {
                Rule::Cidr(p, _) | Rule::Group(p, _) => i32::from(*p),
            };
            let tcp = p.ip_protocol() == Some("tcp") || p.ip_protocol() == Some("-1");
            let covers = p.ip_protocol() == Some("-1")
                || (p.from_port().unwrap_or(i32::MAX) <= port
                    && p.to_port().unwrap_or(i32::MIN) >= port);
            tcp && covers
                && match self {
                    Rule::Cidr(_, c) => {
                        p.ip_ranges()
                            .iter()
                            .any(|r| r.cidr_ip() == Some(c.as_str()))
                            || p.ipv6_ranges()
                                .iter()
                                .any(|r| r.cidr_ipv6() == Some(c.as_str()))
                    }
                    Rule::Group(_, g) => p
                        .user_id_group_pairs()
                        .iter()
                        .any(|u| u.group_id() == Some(g.as_str())),
                }
        })
    }

    fn permission(&self) -> IpPermission {
        let b = IpPermission::builder().ip_protocol("tcp");
        match self {
            Rule::Cidr(p, c) => {
                let b = b.from_port(i32::from(*p)).to_port(i32::from(*p));
                if c.contains(':') {
                    b.ipv6_ranges(
                        aws_sdk_ec2::types::Ipv6Range::builder()
                            .cidr_ipv6(c)
                            .build(),
                    )
                    .build()
                } else {
                    b.ip_ranges(IpRange::builder().cidr_ip(c).build()).build()
                }
            }
            Rule::Group(p, g) => b
                .from_port(i32::from(*p))
                .to_port(i32::from(*p))
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build())
                .build(),
        }
    }
}

impl Setup<'_> {
    /// Both security groups and their ingress; returns the load balancer's group id (None in a dry run
    /// that would create it).
    pub(super) async fn security_groups(
        &mut self,
        vpc: &str,
    ) -> Result<Option<String>, RolloutError> {
        let cx = self.cx;
        let names = &cx.cfg.names;
        let lb = &cx.cfg.lb;
        let lb_sg = self
            .security_group(
                &names.lb_security_group(),
                &format!("{} load balancer", names.base()),
                vpc,
            )
            .await?;
        let mut lb_rules: Vec<Rule> = lb
            .ingress_cidrs
            .iter()
            .map(|c| Rule::Cidr(lb.port, c.clone()))
            .collect();
        lb_rules.dedup();
        self.ingress(&names.lb_security_group(), lb_sg.as_deref(), &lb_rules)
            .await?;
        let inst_sg = self
            .security_group(
                &names.instance_security_group(),
                &format!("{} instances", names.base()),
                vpc,
            )
            .await?;
        // In a dry run that would create the load balancer's group, its name stands for its id.
        let from = lb_sg
            .clone()
            .unwrap_or_else(|| format!("{} (new)", names.lb_security_group()));
        let mut inst_rules = vec![Rule::Group(lb.instance_port, from.clone())];
        if lb.health_check.port != lb.instance_port {
            inst_rules.push(Rule::Group(lb.health_check.port, from));
        }
        self.ingress(
            &names.instance_security_group(),
            inst_sg.as_deref(),
            &inst_rules,
        )
        .await?;
        Ok(lb_sg)
    }

    /// The security group `name` in `vpc`, its missing tags added; its id (None in a dry run that would
    /// create it).
    async fn security_group(
        &mut self,
        name: &str,
        description: &str,
        vpc: &str,
    ) -> Result<Option<String>, RolloutError> {
        let out = self
            .cx
            .clients
            .ec2
            .describe_security_groups()
            .filters(Filter::builder().name("group-name").values(name).build())
            .filters(Filter::builder().name("vpc-id").values(vpc).build())
            .send()
            .await
            .aws("DescribeSecurityGroups")?;
        let resource = format!("security group {name}");
        if let Some(g) = out.security_groups().first() {
            let id = g.group_id().unwrap_or_default().to_string();
            let fix = tags::fix(
                self.cx,
                g.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))),
            );
            if let Some(fix) = fix {
                if !self.dry_run {
                    self.cx
                        .clients
                        .ec2
                        .create_tags()
                        .resources(&id)
                        .set_tags(Some(ec2_tags(&fix.tags)))
                        .send()
                        .await
                        .aws("CreateTags")?;
                }
                self.record_change(
                    resource,
                    format!("{id}, {}", fix.before),
                    format!("{id}, {}", fix.after),
                );
            } else {
                self.record(resource, "unchanged", id.clone());
            }
            return Ok(Some(id));
        }
        if self.dry_run {
            self.record(resource, "created", format!("in {vpc}"));
            return Ok(None);
        }
        let created = self
            .cx
            .clients
            .ec2
            .create_security_group()
            .group_name(name)
            .description(format!("bakery rollout: {description}"))
            .vpc_id(vpc)
            .tag_specifications(ec2_tag_spec(
                ResourceType::SecurityGroup,
                &self.cx.tags_for("security-group"),
            ))
            .send()
            .await
            .aws("CreateSecurityGroup")?;
        let id = created.group_id().unwrap_or_default().to_string();
        self.created_groups.push(id.clone());
        self.record(resource, "created", format!("{id} in {vpc}"));
        Ok(Some(id))
    }

    /// Adds the missing ones of `rules` to group `id` (never removes rules).
    async fn ingress(
        &mut self,
        name: &str,
        id: Option<&str>,
        rules: &[Rule],
    ) -> Result<(), RolloutError> {
        let resource = format!("ingress of {name}");
        let existing = match id {
            None => Vec::new(),
            // A group made moments ago may not be visible yet (nor one its rules name).
            Some(id) => {
                let ec2 = &self.cx.clients.ec2;
                retry_propagation(PROPAGATION_TIMEOUT, &self.cx.cancel, || async move {
                    ec2.describe_security_groups()
                        .group_ids(id)
                        .send()
                        .await
                        .aws("DescribeSecurityGroups")
                })
                .await?
                .security_groups()
                .first()
                .map(|g| g.ip_permissions().to_vec())
                .unwrap_or_default()
            }
        };
        let missing: Vec<&Rule> = rules.iter().filter(|r| !r.present_in(&existing)).collect();
        if missing.is_empty() {
            self.record(
                resource,
                "unchanged",
                rules
                    .iter()
                    .map(Rule::describe)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            return Ok(());
        }
        if let (false, Some(id)) = (self.dry_run, id) {
            let (ec2, permissions) = (
                &self.cx.clients.ec2,
                &missing.iter().map(|r| r.permission()).collect::<Vec<_>>(),
            );
            retry_propagation(PROPAGATION_TIMEOUT, &self.cx.cancel, || async move {
                ec2.authorize_security_group_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(permissions.clone()))
                    .send()
                    .await
                    .aws("AuthorizeSecurityGroupIngress")
            })
            .await?;
        }
        let detail = missing
            .iter()
            .map(|r| r.describe())
            .collect::<Vec<_>>()
            .join(", ");
        let fresh = id.is_none_or(|id| self.created_groups.iter().any(|g| g == id));
        self.record(resource, if fresh { "created" } else { "updated" }, detail);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_covering_permissions() {
        let p = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(80)
            .to_port(443)
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        assert!(Rule::Cidr(80, "0.0.0.0/0".into()).present_in(std::slice::from_ref(&p)));
        assert!(!Rule::Cidr(8080, "0.0.0.0/0".into()).present_in(std::slice::from_ref(&p)));
        assert!(!Rule::Group(80, "sg-1".into()).present_in(&[p]));
    }
}
