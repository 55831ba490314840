//! `rollout setup`: the seed's setup script, idempotent. Each resource is looked up first and created or
//! changed only when it differs from the manifest, so a second run sends no write request at all.
//!
//! Order: key pair (the one resource that can conflict: checked before anything is created), VPC, the
//! load balancer's and the instances' security groups, the load balancer (classic: listener, health check,
//! connection draining; ALB: target group, deregistration delay, listener), tags, the Route 53 ALIAS.
//! Setup adds what is missing and converges settings that are safe to change in place (health checks,
//! draining, tags, missing listeners and ingress rules); it reports, but does not change, anything that
//! would interrupt traffic (a listener pointing elsewhere, other subnets) or that it did not create.

use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::manifest::{LbKind, Protocol};
use crate::report::{Change, SetupReport};
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, ResourceType, Tag, TagSpecification, UserIdGroupPair,
};
use std::collections::BTreeMap;

/// Runs setup; with `dry_run`, only reports what it would do (read-only calls).
pub async fn run(cx: &Ctx, dry_run: bool) -> Result<SetupReport, RolloutError> {
    let started = tokio::time::Instant::now();
    let before = cx.requests.snapshot();
    let mut s = Setup {
        cx,
        dry_run,
        created_groups: Vec::new(),
        changes: Vec::new(),
        warnings: Vec::new(),
    };
    cx.say(&format!(
        "Setting up {}/{} in {}{}",
        cx.cfg.names.app,
        cx.cfg.names.env,
        cx.clients.region,
        if dry_run { " (dry run)" } else { "" }
    ));
    s.key_pair().await?;
    let vpc = s.vpc().await?;
    let lb_sg = s
        .security_group(
            &cx.cfg.names.lb_security_group(),
            &format!("{} load balancer", cx.cfg.names.base()),
            &vpc,
        )
        .await?;
    let mut lb_rules: Vec<Rule> = cx
        .cfg
        .lb
        .ingress_cidrs
        .iter()
        .map(|c| Rule::Cidr(cx.cfg.lb.port, c.clone()))
        .collect();
    lb_rules.dedup();
    s.ingress(
        &cx.cfg.names.lb_security_group(),
        lb_sg.as_deref(),
        &lb_rules,
    )
    .await?;
    let inst_sg = s
        .security_group(
            &cx.cfg.names.instance_security_group(),
            &format!("{} instances", cx.cfg.names.base()),
            &vpc,
        )
        .await?;
    let mut inst_rules = vec![Rule::Group(
        cx.cfg.lb.instance_port,
        lb_sg
            .clone()
            .unwrap_or_else(|| "(new load balancer group)".into()),
    )];
    if cx.cfg.lb.health_check.port != cx.cfg.lb.instance_port {
        inst_rules.push(Rule::Group(
            cx.cfg.lb.health_check.port,
            lb_sg.clone().unwrap_or_default(),
        ));
    }
    s.ingress(
        &cx.cfg.names.instance_security_group(),
        inst_sg.as_deref(),
        &inst_rules,
    )
    .await?;
    let target = match cx.cfg.lb.kind {
        LbKind::Classic => s.classic(&vpc, lb_sg.as_deref()).await?,
        LbKind::Alb => s.alb(&vpc, lb_sg.as_deref()).await?,
    };
    let record = s.dns(target.as_ref()).await?;
    let after = cx.requests.snapshot();
    let report = SetupReport {
        app: cx.cfg.names.app.clone(),
        env: cx.cfg.names.env.clone(),
        region: cx.clients.region.clone(),
        dry_run,
        changes: s.changes,
        warnings: s.warnings,
        record,
        aws_requests: after
            .iter()
            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect(),
        duration_s: started.elapsed().as_secs_f64(),
    };
    Ok(report)
}

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

/// What the DNS record must point at.
struct AliasTarget {
    dns_name: String,
    zone_id: Option<String>,
}

struct Setup<'a> {
    cx: &'a Ctx,
    dry_run: bool,
    /// Security groups created by this run (their rules are part of the creation).
    created_groups: Vec<String>,
    changes: Vec<Change>,
    warnings: Vec<String>,
}

fn ec2_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The public key's type and base64 body: what identifies it (the comment does not).
fn key_identity(line: &str) -> Option<(String, String)> {
    let mut parts = line.split_whitespace();
    let kind = parts.next()?;
    let body = parts.next()?;
    if !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-")) {
        return None;
    }
    Some((kind.to_string(), body.to_string()))
}

/// Route 53 and ELB spell DNS names differently (case, trailing dot, the `dualstack.` prefix).
fn dns_eq(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim_end_matches('.').to_ascii_lowercase();
        s.strip_prefix("dualstack.")
            .map(str::to_string)
            .unwrap_or(s)
    };
    norm(a) == norm(b)
}

impl Setup<'_> {
    fn record(&mut self, resource: String, action: &str, detail: String) {
        let action = match (self.dry_run, action) {
            (true, "created") => "would create",
            (true, "updated") => "would update",
            (_, a) => a,
        };
        let line = format!(
            "{resource}: {action}{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        );
        if action == "unchanged" {
            self.cx.detail(&line);
        } else {
            self.cx.say(&line);
        }
        self.changes.push(Change {
            resource,
            action: action.to_string(),
            detail,
        });
    }

    fn warn(&mut self, w: String) {
        self.cx.warn(&format!("warning: {w}"));
        self.warnings.push(w);
    }

    async fn key_pair(&mut self) -> Result<(), RolloutError> {
        let Some(path) = self.cx.cfg.public_key_file.clone() else {
            return Ok(());
        };
        let name = self.cx.cfg.names.key_pair();
        let text = std::fs::read_to_string(&path).map_err(|source| RolloutError::Io {
            path: path.clone(),
            source: std::io::Error::new(
                source.kind(),
                format!(
                    "{source} (key_pair.public_key_file; create one with `ssh-keygen -t ed25519 -N '' -f {}`)",
                    path.with_extension("").display()
                ),
            ),
        })?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_default()
            .to_string();
        let Some(want) = key_identity(&line) else {
            return Err(RolloutError::Io {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not an OpenSSH public key line (ssh-ed25519 AAAA... comment)",
                ),
            });
        };
        let resource = format!("key pair {name}");
        let found = self
            .cx
            .clients
            .ec2
            .describe_key_pairs()
            .key_names(&name)
            .include_public_key(true)
            .send()
            .await
            .aws("DescribeKeyPairs");
        match found {
            Ok(out) => {
                let have = out
                    .key_pairs()
                    .first()
                    .and_then(|k| k.public_key())
                    .and_then(key_identity);
                match have {
                    Some(h) if h == want => {
                        self.record(resource, "unchanged", format!("matches {}", path.display()))
                    }
                    Some(_) => {
                        return Err(RolloutError::SetupConflict(vec![format!(
                            "{resource} exists with a different public key than {}: replacing an environment's key pair is left to you (delete it first)",
                            path.display()
                        )]));
                    }
                    None => self.record(
                        resource,
                        "unchanged",
                        "exists (AWS did not return its public key to compare)".into(),
                    ),
                }
            }
            Err(e) if e.is_not_found() => {
                if !self.dry_run {
                    self.cx
                        .clients
                        .ec2
                        .import_key_pair()
                        .key_name(&name)
                        .public_key_material(aws_smithy_types::Blob::new(line.as_bytes()))
                        .tag_specifications(
                            TagSpecification::builder()
                                .resource_type(ResourceType::KeyPair)
                                .set_tags(Some(ec2_tags(&self.cx.tags_for("key-pair"))))
                                .build(),
                        )
                        .send()
                        .await
                        .aws("ImportKeyPair")?;
                }
                self.record(resource, "created", format!("imported {}", path.display()));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    async fn vpc(&mut self) -> Result<String, RolloutError> {
        if let Some(v) = &self.cx.cfg.network.vpc_id {
            return Ok(v.clone());
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
        out.vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .map(str::to_string)
            .ok_or_else(|| RolloutError::Preflight(vec![format!(
                "{} has no default VPC: set network.vpc_id (and network.subnets) in the manifest",
                self.cx.clients.region
            )]))
    }

    /// The security group `name` in `vpc`; its id (None in a dry run that would create it).
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
            let have: BTreeMap<&str, &str> = g
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value()?)))
                .collect();
            let missing: Vec<(String, String)> = self
                .cx
                .steady_tags()
                .into_iter()
                .filter(|(k, v)| have.get(k.as_str()) != Some(&v.as_str()))
                .collect();
            if missing.is_empty() {
                self.record(resource, "unchanged", id.clone());
            } else {
                if !self.dry_run {
                    self.cx
                        .clients
                        .ec2
                        .create_tags()
                        .resources(&id)
                        .set_tags(Some(ec2_tags(&missing)))
                        .send()
                        .await
                        .aws("CreateTags")?;
                }
                self.record(
                    resource,
                    "updated",
                    format!(
                        "{id}: tags {}",
                        missing
                            .iter()
                            .map(|(k, _)| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
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
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .set_tags(Some(ec2_tags(&self.cx.tags_for("security-group"))))
                    .build(),
            )
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
            Some(id) => self
                .cx
                .clients
                .ec2
                .describe_security_groups()
                .group_ids(id)
                .send()
                .await
                .aws("DescribeSecurityGroups")?
                .security_groups()
                .first()
                .map(|g| g.ip_permissions().to_vec())
                .unwrap_or_default(),
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
            self.cx
                .clients
                .ec2
                .authorize_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(missing.iter().map(|r| r.permission()).collect()))
                .send()
                .await
                .aws("AuthorizeSecurityGroupIngress")?;
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

    /// Subnets for a new load balancer: the manifest's, else the VPC's default subnets (in the manifest's
    /// zones, when it names zones).
    async fn subnets(&mut self, vpc: &str) -> Result<Vec<(String, String)>, RolloutError> {
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

    async fn classic(
        &mut self,
        vpc: &str,
        lb_sg: Option<&str>,
    ) -> Result<Option<AliasTarget>, RolloutError> {
        use aws_sdk_elasticloadbalancing::types::{Listener, Tag as ElbTag};
        let cx = self.cx;
        let cfg = &cx.cfg.lb;
        let name = cx.cfg.names.load_balancer();
        let resource = format!("classic load balancer {name}");
        let listener = Listener::builder()
            .protocol(cfg.protocol.as_str())
            .load_balancer_port(i32::from(cfg.port))
            .instance_protocol(cfg.instance_protocol.as_str())
            .instance_port(i32::from(cfg.instance_port))
            .set_ssl_certificate_id(cfg.certificate_arn.clone())
            .build()
            .map_err(|e| RolloutError::Preflight(vec![format!("listener: {e}")]))?;
        let found = cx
            .clients
            .elb
            .describe_load_balancers()
            .load_balancer_names(&name)
            .send()
            .await
            .aws("DescribeLoadBalancers");
        let existing = match found {
            Ok(o) => o
                .load_balancer_descriptions
                .unwrap_or_default()
                .into_iter()
                .next(),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let elb_tags = |tags: &[(String, String)]| -> Vec<ElbTag> {
            tags.iter()
                .filter_map(|(k, v)| ElbTag::builder().key(k).value(v).build().ok())
                .collect()
        };
        let Some(desc) = existing else {
            // Placement: the manifest's subnets, else its zones (the seed's), else the default subnets.
            let net = &cx.cfg.network;
            let (subnets, zones) = if !net.subnets.is_empty() {
                (net.subnets.clone(), Vec::new())
            } else if !net.availability_zones.is_empty() {
                (Vec::new(), net.availability_zones.clone())
            } else {
                let s = self.subnets(vpc).await?;
                if s.is_empty() {
                    return Err(RolloutError::Preflight(vec![format!(
                        "no default subnets in {vpc}: set network.subnets or network.availability_zones"
                    )]));
                }
                (s.into_iter().map(|(id, _)| id).collect(), Vec::new())
            };
            let placement = if subnets.is_empty() {
                format!("zones {}", zones.join(", "))
            } else {
                format!("subnets {}", subnets.join(", "))
            };
            if self.dry_run {
                self.record(
                    resource,
                    "created",
                    format!(
                        "{}:{} -> {}:{}, {placement}",
                        cfg.protocol.as_str(),
                        cfg.port,
                        cfg.instance_protocol.as_str(),
                        cfg.instance_port
                    ),
                );
                self.record(
                    format!("health check of {name}"),
                    "created",
                    cfg.health_check.classic_target(),
                );
                self.record(
                    format!("connection draining of {name}"),
                    "created",
                    format!("{} s", cfg.draining_seconds),
                );
                return Ok(None);
            }
            let mut req = cx
                .clients
                .elb
                .create_load_balancer()
                .load_balancer_name(&name)
                .listeners(listener.clone())
                .set_security_groups(lb_sg.map(|g| vec![g.to_string()]))
                .set_tags(Some(elb_tags(&cx.tags_for("load-balancer"))));
            if cfg.scheme == "internal" {
                req = req.scheme("internal");
            }
            req = if subnets.is_empty() {
                req.set_availability_zones(Some(zones))
            } else {
                req.set_subnets(Some(subnets))
            };
            let out = req.send().await.aws("CreateLoadBalancer")?;
            self.record(
                resource,
                "created",
                format!("{}, {placement}", out.dns_name().unwrap_or_default()),
            );
            return self.classic_settings(&name, None).await;
        };

        // It exists: add a missing listener; report (never change) a different one on the same port.
        let same_port = desc
            .listener_descriptions()
            .iter()
            .filter_map(|l| l.listener())
            .find(|l| l.load_balancer_port() == i32::from(cfg.port));
        match same_port {
            None => {
                if !self.dry_run {
                    cx.clients
                        .elb
                        .create_load_balancer_listeners()
                        .load_balancer_name(&name)
                        .listeners(listener)
                        .send()
                        .await
                        .aws("CreateLoadBalancerListeners")?;
                }
                self.record(
                    format!("listener {} of {name}", cfg.port),
                    "created",
                    format!(
                        "-> {}:{}",
                        cfg.instance_protocol.as_str(),
                        cfg.instance_port
                    ),
                );
            }
            Some(l) => {
                let same = l.protocol().eq_ignore_ascii_case(cfg.protocol.as_str())
                    && l.instance_port() == i32::from(cfg.instance_port)
                    && l.instance_protocol()
                        .is_none_or(|p| p.eq_ignore_ascii_case(cfg.instance_protocol.as_str()));
                if !same {
                    self.warn(format!(
                        "{name}: the listener on port {} is {}:{} -> {}:{}, the manifest says {}:{} -> {}:{}; not changed (replacing a listener interrupts traffic)",
                        cfg.port,
                        l.protocol(),
                        l.load_balancer_port(),
                        l.instance_protocol().unwrap_or("?"),
                        l.instance_port(),
                        cfg.protocol.as_str(),
                        cfg.port,
                        cfg.instance_protocol.as_str(),
                        cfg.instance_port
                    ));
                }
            }
        }
        if let Some(sg) = lb_sg
            && !desc.security_groups().iter().any(|g| g == sg)
        {
            self.warn(format!(
                "{name} does not use security group {sg} ({}); not changed",
                desc.security_groups().join(", ")
            ));
        }
        let net = &cx.cfg.network;
        if !net.subnets.is_empty() {
            let mut want = net.subnets.clone();
            let mut have = desc.subnets().to_vec();
            want.sort();
            have.sort();
            if want != have {
                self.warn(format!(
                    "{name} is in subnets {}, the manifest says {}; not changed",
                    have.join(", "),
                    want.join(", ")
                ));
            }
        } else if !net.availability_zones.is_empty() {
            let mut want = net.availability_zones.clone();
            let mut have = desc.availability_zones().to_vec();
            want.sort();
            have.sort();
            if want != have {
                self.warn(format!(
                    "{name} is in zones {}, the manifest says {}; not changed",
                    have.join(", "),
                    want.join(", ")
                ));
            }
        }
        // Tags.
        let tags = cx
            .clients
            .elb
            .describe_tags()
            .load_balancer_names(&name)
            .send()
            .await
            .aws("DescribeTags")?;
        let have: BTreeMap<String, String> = tags
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .map(|t| {
                (
                    t.key().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let missing: Vec<(String, String)> = cx
            .steady_tags()
            .into_iter()
            .filter(|(k, v)| have.get(k) != Some(v))
            .collect();
        if missing.is_empty() {
            self.record(
                resource,
                "unchanged",
                desc.dns_name().unwrap_or_default().to_string(),
            );
        } else {
            if !self.dry_run {
                cx.clients
                    .elb
                    .add_tags()
                    .load_balancer_names(&name)
                    .set_tags(Some(elb_tags(&missing)))
                    .send()
                    .await
                    .aws("AddTags")?;
            }
            self.record(
                resource,
                "updated",
                format!(
                    "tags {}",
                    missing
                        .iter()
                        .map(|(k, _)| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        self.classic_settings(&name, Some(&desc)).await
    }

    /// Health check and connection draining of classic load balancer `name` (just created when `desc` is
    /// None); returns the ALIAS target.
    async fn classic_settings(
        &mut self,
        name: &str,
        desc: Option<&aws_sdk_elasticloadbalancing::types::LoadBalancerDescription>,
    ) -> Result<Option<AliasTarget>, RolloutError> {
        use aws_sdk_elasticloadbalancing::types::{
            ConnectionDraining, HealthCheck, LoadBalancerAttributes,
        };
        let cx = self.cx;
        let cfg = &cx.cfg.lb;
        let hc = &cfg.health_check;
        // Settings of a load balancer this run created count as part of its creation.
        let fresh = if desc.is_none() { "created" } else { "updated" };
        let want = HealthCheck::builder()
            .target(hc.classic_target())
            .interval(hc.interval as i32)
            .timeout(hc.timeout as i32)
            .healthy_threshold(hc.healthy_threshold as i32)
            .unhealthy_threshold(hc.unhealthy_threshold as i32)
            .build()
            .map_err(|e| RolloutError::Preflight(vec![format!("health check: {e}")]))?;
        let desc = match desc {
            Some(d) => d.clone(),
            None => cx
                .clients
                .elb
                .describe_load_balancers()
                .load_balancer_names(name)
                .send()
                .await
                .aws("DescribeLoadBalancers")?
                .load_balancer_descriptions
                .unwrap_or_default()
                .into_iter()
                .next()
                .ok_or_else(|| RolloutError::NotSetUp {
                    what: format!("classic load balancer {name} (just created)"),
                    env: cx.cfg.names.env.clone(),
                })?,
        };
        let resource = format!("health check of {name}");
        let same = desc.health_check().is_some_and(|h| {
            h.target().eq_ignore_ascii_case(want.target())
                && h.interval() == want.interval()
                && h.timeout() == want.timeout()
                && h.healthy_threshold() == want.healthy_threshold()
                && h.unhealthy_threshold() == want.unhealthy_threshold()
        });
        let detail = format!(
            "{} every {} s, timeout {} s, healthy {} / unhealthy {}",
            want.target(),
            want.interval(),
            want.timeout(),
            want.healthy_threshold(),
            want.unhealthy_threshold()
        );
        if same {
            self.record(resource, "unchanged", detail);
        } else {
            if !self.dry_run {
                cx.clients
                    .elb
                    .configure_health_check()
                    .load_balancer_name(name)
                    .health_check(want)
                    .send()
                    .await
                    .aws("ConfigureHealthCheck")?;
            }
            self.record(resource, fresh, detail);
        }

        let attrs = cx
            .clients
            .elb
            .describe_load_balancer_attributes()
            .load_balancer_name(name)
            .send()
            .await
            .aws("DescribeLoadBalancerAttributes")?;
        let enabled = cfg.draining_seconds > 0;
        let have = attrs
            .load_balancer_attributes()
            .and_then(|a| a.connection_draining());
        let same = have.is_some_and(|d| {
            d.enabled() == enabled && (!enabled || d.timeout() == Some(cfg.draining_seconds as i32))
        });
        let resource = format!("connection draining of {name}");
        let detail = if enabled {
            format!("{} s", cfg.draining_seconds)
        } else {
            "off".into()
        };
        if same {
            self.record(resource, "unchanged", detail);
        } else {
            if !self.dry_run {
                let mut d = ConnectionDraining::builder().enabled(enabled);
                if enabled {
                    d = d.timeout(cfg.draining_seconds as i32);
                }
                cx.clients
                    .elb
                    .modify_load_balancer_attributes()
                    .load_balancer_name(name)
                    .load_balancer_attributes(
                        LoadBalancerAttributes::builder()
                            .connection_draining(d.build())
                            .build(),
                    )
                    .send()
                    .await
                    .aws("ModifyLoadBalancerAttributes")?;
            }
            self.record(resource, fresh, detail);
        }
        Ok(Some(AliasTarget {
            dns_name: desc.dns_name().unwrap_or_default().to_string(),
            zone_id: desc.canonical_hosted_zone_name_id().map(str::to_string),
        }))
    }

    async fn alb(
        &mut self,
        vpc: &str,
        lb_sg: Option<&str>,
    ) -> Result<Option<AliasTarget>, RolloutError> {
        use aws_sdk_elasticloadbalancingv2::types::{
            Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher,
            ProtocolEnum, Tag as V2Tag, TargetGroupAttribute, TargetTypeEnum,
        };
        let cx = self.cx;
        let cfg = &cx.cfg.lb;
        let hc = &cfg.health_check;
        let v2 = &cx.clients.elbv2;
        let name = cx.cfg.names.load_balancer();
        let tg_name = cx.cfg.names.target_group();
        let v2_tags = |tags: &[(String, String)]| -> Vec<V2Tag> {
            tags.iter()
                .map(|(k, v)| V2Tag::builder().key(k).value(v).build())
                .collect()
        };
        let proto = |p: Protocol| ProtocolEnum::from(p.as_str());

        // The load balancer.
        let found = v2
            .describe_load_balancers()
            .names(&name)
            .send()
            .await
            .aws("DescribeLoadBalancers");
        let existing = match found {
            Ok(o) => o.load_balancers.unwrap_or_default().into_iter().next(),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let resource = format!("application load balancer {name}");
        let lb = match existing {
            Some(lb) => {
                if lb.r#type().map(|t| t.as_str()) != Some("application") {
                    return Err(RolloutError::SetupConflict(vec![format!(
                        "{name} exists but is a {} load balancer, not an application one",
                        lb.r#type().map(|t| t.as_str()).unwrap_or("?")
                    )]));
                }
                Some(lb)
            }
            None => {
                let subnets = self.subnets(vpc).await?;
                let zones: std::collections::BTreeSet<&str> =
                    subnets.iter().map(|(_, az)| az.as_str()).collect();
                if zones.len() < 2 {
                    return Err(RolloutError::Preflight(vec![format!(
                        "an ALB needs subnets in at least two availability zones; found {} (set network.subnets)",
                        if subnets.is_empty() {
                            "none".to_string()
                        } else {
                            subnets
                                .iter()
                                .map(|(s, z)| format!("{s} in {z}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    )]));
                }
                let ids: Vec<String> = subnets.into_iter().map(|(id, _)| id).collect();
                if self.dry_run {
                    self.record(
                        resource.clone(),
                        "created",
                        format!("subnets {}", ids.join(", ")),
                    );
                    None
                } else {
                    let out = v2
                        .create_load_balancer()
                        .name(&name)
                        .r#type(LoadBalancerTypeEnum::Application)
                        .scheme(LoadBalancerSchemeEnum::from(cfg.scheme.as_str()))
                        .set_subnets(Some(ids.clone()))
                        .set_security_groups(lb_sg.map(|g| vec![g.to_string()]))
                        .set_tags(Some(v2_tags(&cx.tags_for("load-balancer"))))
                        .send()
                        .await
                        .aws("CreateLoadBalancer")?;
                    let lb = out.load_balancers().first().cloned();
                    self.record(
                        resource.clone(),
                        "created",
                        format!(
                            "{}, subnets {}",
                            lb.as_ref().and_then(|l| l.dns_name()).unwrap_or_default(),
                            ids.join(", ")
                        ),
                    );
                    lb
                }
            }
        };

        // The target group.
        let tg_resource = format!("target group {tg_name}");
        let tg = crate::lb::find_target_group(cx, &tg_name).await?;
        let tg_fresh = tg.is_none();
        let tg_arn = match tg {
            None => {
                if self.dry_run {
                    self.record(
                        tg_resource.clone(),
                        "created",
                        format!(
                            "{}:{}, health {} {}",
                            cfg.instance_protocol.as_str(),
                            cfg.instance_port,
                            hc.protocol.as_str(),
                            hc.path
                        ),
                    );
                    None
                } else {
                    let out = v2
                        .create_target_group()
                        .name(&tg_name)
                        .protocol(proto(cfg.instance_protocol))
                        .port(i32::from(cfg.instance_port))
                        .vpc_id(lb.as_ref().and_then(|l| l.vpc_id()).unwrap_or(vpc))
                        .target_type(TargetTypeEnum::Instance)
                        .health_check_protocol(proto(hc.protocol))
                        .health_check_port(hc.port.to_string())
                        .health_check_path(&hc.path)
                        .health_check_interval_seconds(hc.interval as i32)
                        .health_check_timeout_seconds(hc.timeout as i32)
                        .healthy_threshold_count(hc.healthy_threshold as i32)
                        .unhealthy_threshold_count(hc.unhealthy_threshold as i32)
                        .matcher(Matcher::builder().http_code("200").build())
                        .set_tags(Some(v2_tags(&cx.tags_for("target-group"))))
                        .send()
                        .await
                        .aws("CreateTargetGroup")?;
                    let arn = out
                        .target_groups()
                        .first()
                        .and_then(|t| t.target_group_arn())
                        .unwrap_or_default()
                        .to_string();
                    self.record(tg_resource.clone(), "created", arn.clone());
                    Some(arn)
                }
            }
            Some(tg) => {
                let arn = tg.target_group_arn().unwrap_or_default().to_string();
                if tg.port() != Some(i32::from(cfg.instance_port))
                    || tg.protocol().map(|p| p.as_str()) != Some(cfg.instance_protocol.as_str())
                {
                    self.warn(format!(
                        "{tg_name} forwards to {}:{}, the manifest says {}:{}; not changed (a target group's port cannot change in place)",
                        tg.protocol().map(|p| p.as_str()).unwrap_or("?"),
                        tg.port().unwrap_or(0),
                        cfg.instance_protocol.as_str(),
                        cfg.instance_port
                    ));
                }
                let same = tg.health_check_protocol().map(|p| p.as_str())
                    == Some(hc.protocol.as_str())
                    && (tg.health_check_port() == Some(hc.port.to_string().as_str())
                        || (tg.health_check_port() == Some("traffic-port")
                            && hc.port == cfg.instance_port))
                    && tg.health_check_path() == Some(hc.path.as_str())
                    && tg.health_check_interval_seconds() == Some(hc.interval as i32)
                    && tg.health_check_timeout_seconds() == Some(hc.timeout as i32)
                    && tg.healthy_threshold_count() == Some(hc.healthy_threshold as i32)
                    && tg.unhealthy_threshold_count() == Some(hc.unhealthy_threshold as i32);
                let detail = format!(
                    "health {} {}:{}{} every {} s",
                    arn,
                    hc.protocol.as_str(),
                    hc.port,
                    hc.path,
                    hc.interval
                );
                if same {
                    self.record(tg_resource.clone(), "unchanged", detail);
                } else {
                    if !self.dry_run {
                        v2.modify_target_group()
                            .target_group_arn(&arn)
                            .health_check_protocol(proto(hc.protocol))
                            .health_check_port(hc.port.to_string())
                            .health_check_path(&hc.path)
                            .health_check_interval_seconds(hc.interval as i32)
                            .health_check_timeout_seconds(hc.timeout as i32)
                            .healthy_threshold_count(hc.healthy_threshold as i32)
                            .unhealthy_threshold_count(hc.unhealthy_threshold as i32)
                            .send()
                            .await
                            .aws("ModifyTargetGroup")?;
                    }
                    self.record(tg_resource.clone(), "updated", detail);
                }
                Some(arn)
            }
        };

        // Deregistration delay (the ALB's connection draining).
        let delay_resource = format!("deregistration delay of {tg_name}");
        let want_delay = cfg.draining_seconds.to_string();
        match &tg_arn {
            None => self.record(delay_resource, "created", format!("{want_delay} s")),
            Some(arn) => {
                let attrs = v2
                    .describe_target_group_attributes()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .aws("DescribeTargetGroupAttributes")?;
                let have = attrs
                    .attributes()
                    .iter()
                    .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
                    .and_then(|a| a.value());
                if have == Some(want_delay.as_str()) {
                    self.record(delay_resource, "unchanged", format!("{want_delay} s"));
                } else {
                    if !self.dry_run {
                        v2.modify_target_group_attributes()
                            .target_group_arn(arn)
                            .attributes(
                                TargetGroupAttribute::builder()
                                    .key("deregistration_delay.timeout_seconds")
                                    .value(&want_delay)
                                    .build(),
                            )
                            .send()
                            .await
                            .aws("ModifyTargetGroupAttributes")?;
                    }
                    self.record(
                        delay_resource,
                        if tg_fresh { "created" } else { "updated" },
                        format!("{want_delay} s"),
                    );
                }
            }
        }

        // The listener.
        let listener_resource = format!("listener {} of {name}", cfg.port);
        let forward = |arn: &str| {
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(arn)
                .build()
        };
        match (&lb, &tg_arn) {
            (Some(lb), Some(tg_arn)) => {
                let lb_arn = lb.load_balancer_arn().unwrap_or_default();
                let listeners = v2
                    .describe_listeners()
                    .load_balancer_arn(lb_arn)
                    .send()
                    .await
                    .aws("DescribeListeners")?;
                let on_port = listeners
                    .listeners()
                    .iter()
                    .find(|l| l.port() == Some(i32::from(cfg.port)));
                match on_port {
                    None => {
                        if !self.dry_run {
                            let mut req = v2
                                .create_listener()
                                .load_balancer_arn(lb_arn)
                                .protocol(proto(cfg.protocol))
                                .port(i32::from(cfg.port))
                                .default_actions(forward(tg_arn))
                                .set_tags(Some(v2_tags(&cx.tags_for("listener"))));
                            if let Some(cert) = &cfg.certificate_arn {
                                req = req.certificates(
                                    aws_sdk_elasticloadbalancingv2::types::Certificate::builder()
                                        .certificate_arn(cert)
                                        .build(),
                                );
                            }
                            req.send().await.aws("CreateListener")?;
                        }
                        self.record(
                            listener_resource,
                            "created",
                            format!("{} -> {tg_name}", cfg.protocol.as_str()),
                        );
                    }
                    Some(l) => {
                        let forwards = l.default_actions().iter().any(|a| {
                            a.target_group_arn() == Some(tg_arn.as_str())
                                || a.forward_config().is_some_and(|f| {
                                    f.target_groups()
                                        .iter()
                                        .any(|t| t.target_group_arn() == Some(tg_arn.as_str()))
                                })
                        });
                        if forwards {
                            self.record(
                                listener_resource,
                                "unchanged",
                                format!("{} -> {tg_name}", cfg.protocol.as_str()),
                            );
                        } else {
                            self.warn(format!(
                                "the listener on port {} of {name} does not forward to {tg_name}; not changed (that would move traffic)",
                                cfg.port
                            ));
                        }
                    }
                }
                // Tags of the load balancer and the target group.
                let tags = v2
                    .describe_tags()
                    .resource_arns(lb_arn)
                    .resource_arns(tg_arn)
                    .send()
                    .await
                    .aws("DescribeTags")?;
                for d in tags.tag_descriptions() {
                    let arn = d.resource_arn().unwrap_or_default();
                    let have: BTreeMap<&str, &str> = d
                        .tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?, t.value()?)))
                        .collect();
                    let missing: Vec<(String, String)> = cx
                        .steady_tags()
                        .into_iter()
                        .filter(|(k, v)| have.get(k.as_str()) != Some(&v.as_str()))
                        .collect();
                    if missing.is_empty() {
                        continue;
                    }
                    if !self.dry_run {
                        v2.add_tags()
                            .resource_arns(arn)
                            .set_tags(Some(v2_tags(&missing)))
                            .send()
                            .await
                            .aws("AddTags")?;
                    }
                    self.record(
                        format!("tags of {arn}"),
                        "updated",
                        missing
                            .iter()
                            .map(|(k, _)| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    );
                }
                if !self.changes.iter().any(|c| c.resource == resource) {
                    self.record(
                        resource,
                        "unchanged",
                        lb.dns_name().unwrap_or_default().to_string(),
                    );
                }
                Ok(Some(AliasTarget {
                    dns_name: lb.dns_name().unwrap_or_default().to_string(),
                    zone_id: lb.canonical_hosted_zone_id().map(str::to_string),
                }))
            }
            _ => {
                self.record(
                    listener_resource,
                    "created",
                    format!("{} -> {tg_name}", cfg.protocol.as_str()),
                );
                Ok(None)
            }
        }
    }

    /// The ALIAS record `env.domain` (or the apex) → the load balancer, UPSERTed only when it differs.
    async fn dns(&mut self, target: Option<&AliasTarget>) -> Result<Option<String>, RolloutError> {
        use aws_sdk_route53::types::{
            AliasTarget as R53Alias, Change as R53Change, ChangeAction, ChangeBatch,
            ResourceRecordSet, RrType,
        };
        let cx = self.cx;
        let Some(dns) = &cx.cfg.dns else {
            return Ok(None);
        };
        let resource = format!("DNS {} A ALIAS", dns.record_name);
        let Some(target) = target else {
            // Dry run with a load balancer still to be created.
            self.record(
                resource,
                "created",
                format!("-> {}", cx.cfg.names.load_balancer()),
            );
            return Ok(Some(dns.record_name.clone()));
        };
        let Some(zone_id) = target
            .zone_id
            .clone()
            .or_else(|| dns.load_balancer_zone_id.clone())
        else {
            return Err(RolloutError::Preflight(vec![format!(
                "the description of {} has no canonical hosted zone id: set dns.load_balancer_zone_id (the ELB zone of {} from AWS's Elastic Load Balancing endpoints table)",
                cx.cfg.names.load_balancer(),
                cx.clients.region
            )]));
        };
        let existing = cx
            .clients
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&dns.hosted_zone_id)
            .start_record_name(&dns.record_name)
            .start_record_type(RrType::A)
            .max_items(1)
            .send()
            .await
            .aws("ListResourceRecordSets");
        let existing = match existing {
            Ok(o) => o
                .resource_record_sets()
                .iter()
                .find(|r| dns_eq(r.name(), &dns.record_name) && r.r#type() == &RrType::A)
                .cloned(),
            Err(e) if e.is_not_found() => {
                return Err(RolloutError::Preflight(vec![format!(
                    "dns.hosted_zone_id {}: {e}",
                    dns.hosted_zone_id
                )]));
            }
            Err(e) => return Err(e.into()),
        };
        let detail = format!(
            "-> {} (zone {zone_id}), evaluate target health {}",
            target.dns_name, dns.evaluate_target_health
        );
        let same = existing
            .as_ref()
            .and_then(|r| r.alias_target())
            .is_some_and(|a| {
                dns_eq(a.dns_name(), &target.dns_name)
                    && a.hosted_zone_id() == zone_id
                    && a.evaluate_target_health() == dns.evaluate_target_health
            });
        if same {
            self.record(resource, "unchanged", detail);
            return Ok(Some(dns.record_name.clone()));
        }
        if !self.dry_run {
            let alias = R53Alias::builder()
                .hosted_zone_id(&zone_id)
                .dns_name(&target.dns_name)
                .evaluate_target_health(dns.evaluate_target_health)
                .build()
                .map_err(|e| RolloutError::Preflight(vec![format!("alias target: {e}")]))?;
            let set = ResourceRecordSet::builder()
                .name(&dns.record_name)
                .r#type(RrType::A)
                .alias_target(alias)
                .build()
                .map_err(|e| RolloutError::Preflight(vec![format!("record set: {e}")]))?;
            let change = R53Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(set)
                .build()
                .map_err(|e| RolloutError::Preflight(vec![format!("change: {e}")]))?;
            cx.clients
                .route53
                .change_resource_record_sets()
                .hosted_zone_id(&dns.hosted_zone_id)
                .change_batch(
                    ChangeBatch::builder()
                        .comment(format!("bakery rollout setup, run {}", cx.run_id))
                        .changes(change)
                        .build()
                        .map_err(|e| RolloutError::Preflight(vec![format!("change batch: {e}")]))?,
                )
                .send()
                .await
                .aws("ChangeResourceRecordSets")?;
        }
        let action = if existing.is_some() {
            "updated"
        } else {
            "created"
        };
        self.record(resource, action, detail);
        Ok(Some(dns.record_name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_without_comments() {
        assert_eq!(
            key_identity("ssh-ed25519 AAAAC3Nz me@laptop"),
            key_identity("ssh-ed25519 AAAAC3Nz\n")
        );
        assert_ne!(
            key_identity("ssh-ed25519 AAAAC3Nz"),
            key_identity("ssh-ed25519 AAAAC3Ny")
        );
        assert_eq!(key_identity("-----BEGIN OPENSSH PRIVATE KEY-----"), None);
    }

    #[test]
    fn dns_names_compare_as_route53_does() {
        assert!(dns_eq(
            "dualstack.elb-x-1.us-east-1.elb.amazonaws.com.",
            "ELB-X-1.us-east-1.elb.amazonaws.com"
        ));
        assert!(!dns_eq("a.example.", "b.example."));
    }

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
