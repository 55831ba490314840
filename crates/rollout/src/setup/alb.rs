//! The application load balancer: created in subnets of at least two zones; its listener on the
//! manifest's port forwarding to the environment's target group ([`super::target_group`]); missing tags of
//! both added. A listener that forwards elsewhere is reported, never changed (that would move traffic).

use super::{AliasTarget, Setup, tags};
use crate::error::{AwsResultExt, RolloutError};
use crate::manifest::Protocol;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, Listener, LoadBalancer, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum, ProtocolEnum, Tag as V2Tag,
};
use std::collections::BTreeSet;

/// The ALB's form of tag pairs.
pub(super) fn v2_tags(tags: &[(String, String)]) -> Vec<V2Tag> {
    tags.iter()
        .map(|(k, v)| V2Tag::builder().key(k).value(v).build())
        .collect()
}

/// The ALB's form of a manifest protocol.
pub(super) fn v2_protocol(p: Protocol) -> ProtocolEnum {
    ProtocolEnum::from(p.as_str())
}

/// True when `listener` forwards to target group `tg_arn` (directly or through a forward config).
fn forwards_to(listener: &Listener, tg_arn: &str) -> bool {
    listener.default_actions().iter().any(|a| {
        a.target_group_arn() == Some(tg_arn)
            || a.forward_config().is_some_and(|f| {
                f.target_groups()
                    .iter()
                    .any(|t| t.target_group_arn() == Some(tg_arn))
            })
    })
}

impl Setup<'_> {
    /// Converges the ALB, its target group and listener; returns the ALIAS target (None in a dry run that
    /// would create the load balancer or the target group).
    pub(super) async fn alb(
        &mut self,
        vpc: &str,
        lb_sg: Option<&str>,
    ) -> Result<Option<AliasTarget>, RolloutError> {
        let cx = self.cx;
        let name = cx.cfg.names.load_balancer();
        let resource = format!("application load balancer {name}");
        let lb = self.alb_load_balancer(&name, &resource, vpc, lb_sg).await?;
        let tg_arn = self.target_group(vpc, lb.as_ref()).await?;
        let (Some(lb), Some(tg_arn)) = (lb, tg_arn) else {
            self.record(
                format!("listener {} of {name}", cx.cfg.lb.port),
                "created",
                format!(
                    "{} -> {}",
                    cx.cfg.lb.protocol.as_str(),
                    cx.cfg.names.target_group()
                ),
            );
            return Ok(None);
        };
        let lb_arn = lb.load_balancer_arn().unwrap_or_default();
        self.alb_listener(&name, lb_arn, &tg_arn).await?;
        self.alb_tags(&resource, lb_arn, &tg_arn).await?;
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

    /// The load balancer `name`: found (it must be an application one) or created (None in a dry run).
    async fn alb_load_balancer(
        &mut self,
        name: &str,
        resource: &str,
        vpc: &str,
        lb_sg: Option<&str>,
    ) -> Result<Option<LoadBalancer>, RolloutError> {
        let cx = self.cx;
        let found = cx
            .clients
            .elbv2
            .describe_load_balancers()
            .names(name)
            .send()
            .await
            .aws("DescribeLoadBalancers");
        let existing = match found {
            Ok(o) => o.load_balancers.unwrap_or_default().into_iter().next(),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(lb) = existing {
            if lb.r#type().map(|t| t.as_str()) != Some("application") {
                return Err(RolloutError::SetupConflict(vec![format!(
                    "{name} exists but is a {} load balancer, not an application one",
                    lb.r#type().map(|t| t.as_str()).unwrap_or("?")
                )]));
            }
            return Ok(Some(lb));
        }
        let ids = self.alb_subnets(vpc).await?;
        if self.dry_run {
            self.record(
                resource.to_string(),
                "created",
                format!("subnets {}", ids.join(", ")),
            );
            return Ok(None);
        }
        let out = cx
            .clients
            .elbv2
            .create_load_balancer()
            .name(name)
            .r#type(LoadBalancerTypeEnum::Application)
            .scheme(LoadBalancerSchemeEnum::from(cx.cfg.lb.scheme.as_str()))
            .set_subnets(Some(ids.clone()))
            .set_security_groups(lb_sg.map(|g| vec![g.to_string()]))
            .set_tags(Some(v2_tags(&cx.tags_for("load-balancer"))))
            .send()
            .await
            .aws("CreateLoadBalancer")?;
        let lb = out.load_balancers().first().cloned();
        self.record(
            resource.to_string(),
            "created",
            format!(
                "{}, subnets {}",
                lb.as_ref().and_then(|l| l.dns_name()).unwrap_or_default(),
                ids.join(", ")
            ),
        );
        Ok(lb)
    }

    /// Subnets for a new ALB, which needs them in at least two availability zones.
    async fn alb_subnets(&mut self, vpc: &str) -> Result<Vec<String>, RolloutError> {
        let subnets = self.subnets(vpc).await?;
        let zones: BTreeSet<&str> = subnets.iter().map(|(_, az)| az.as_str()).collect();
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
        Ok(subnets.into_iter().map(|(id, _)| id).collect())
    }

    /// Creates the listener on the manifest's port when there is none; warns when the one there forwards
    /// elsewhere.
    async fn alb_listener(
        &mut self,
        name: &str,
        lb_arn: &str,
        tg_arn: &str,
    ) -> Result<(), RolloutError> {
        let cx = self.cx;
        let cfg = &cx.cfg.lb;
        let v2 = &cx.clients.elbv2;
        let tg_name = cx.cfg.names.target_group();
        let resource = format!("listener {} of {name}", cfg.port);
        let detail = format!("{} -> {tg_name}", cfg.protocol.as_str());
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
                        .protocol(v2_protocol(cfg.protocol))
                        .port(i32::from(cfg.port))
                        .default_actions(
                            Action::builder()
                                .r#type(ActionTypeEnum::Forward)
                                .target_group_arn(tg_arn)
                                .build(),
                        )
                        .set_tags(Some(v2_tags(&cx.tags_for("listener"))));
                    if let Some(cert) = &cfg.certificate_arn {
                        req = req.certificates(Certificate::builder().certificate_arn(cert).build());
                    }
                    // The new target group may not be visible yet.
                    bakery_core::propagation::retry_propagation(
                        bakery_core::propagation::PROPAGATION_TIMEOUT,
                        &cx.cancel,
                        || async { req.clone().send().await.aws("CreateListener") },
                    )
                    .await?;
                }
                self.record(resource, "created", detail);
            }
            Some(l) if forwards_to(l, tg_arn) => self.record(resource, "unchanged", detail),
            Some(_) => self.warn(format!(
                "the listener on port {} of {name} does not forward to {tg_name}; not changed (that would move traffic)",
                cfg.port
            )),
        }
        Ok(())
    }

    /// Adds the missing steady tags to the load balancer (`lb_resource`) and the target group.
    async fn alb_tags(
        &mut self,
        lb_resource: &str,
        lb_arn: &str,
        tg_arn: &str,
    ) -> Result<(), RolloutError> {
        let cx = self.cx;
        let v2 = &cx.clients.elbv2;
        let out = v2
            .describe_tags()
            .resource_arns(lb_arn)
            .resource_arns(tg_arn)
            .send()
            .await
            .aws("DescribeTags")?;
        for d in out.tag_descriptions() {
            let arn = d.resource_arn().unwrap_or_default();
            let Some(fix) = tags::fix(
                cx,
                d.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))),
            ) else {
                continue;
            };
            if !self.dry_run {
                v2.add_tags()
                    .resource_arns(arn)
                    .set_tags(Some(v2_tags(&fix.tags)))
                    .send()
                    .await
                    .aws("AddTags")?;
            }
            let resource = if arn == lb_arn {
                lb_resource.to_string()
            } else if arn == tg_arn {
                format!("target group {}", cx.cfg.names.target_group())
            } else {
                format!("tags of {arn}")
            };
            self.record_change(resource, fix.before, fix.after);
        }
        Ok(())
    }
}
