//! The environment's load balancer as rollouts see it: a classic ELB, or an ALB's target group. One view of
//! "which instances are registered, and which of them take traffic", whatever the kind.

use crate::context::Ctx;
use crate::error::{AwsError, AwsResultExt, RolloutError};
use crate::manifest::LbKind;
pub use crate::observed::TargetState;
use serde::Serialize;
use std::collections::BTreeMap;

/// A load balancer that `rollout setup` made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadBalancer {
    /// Classic or ALB.
    pub kind: LbKind,
    /// `elb-app-env`.
    pub name: String,
    /// Its DNS name.
    pub dns_name: String,
    /// Its canonical hosted zone (Route 53 ALIAS), when the description has one.
    pub zone_id: Option<String>,
    /// Its VPC.
    pub vpc_id: Option<String>,
    /// Its subnets.
    pub subnets: Vec<String>,
    /// Its availability zones.
    pub availability_zones: Vec<String>,
    /// ALB: its ARN.
    pub arn: Option<String>,
    /// ALB: the target group's ARN.
    pub target_group_arn: Option<String>,
}

impl LoadBalancer {
    /// `elb-app-env (classic)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.kind)
    }

    /// What the health of instances is called here: `ELB` or `target group`.
    pub fn health_source(&self) -> &'static str {
        match self.kind {
            LbKind::Classic => "ELB",
            LbKind::Alb => "target group",
        }
    }

    /// Looks the environment's load balancer up (read-only); an error says to run setup when it is missing.
    pub async fn find(cx: &Ctx) -> Result<LoadBalancer, RolloutError> {
        let name = cx.cfg.names.load_balancer();
        let not_set_up = |what: String| RolloutError::NotSetUp {
            what,
            env: cx.cfg.names.env.clone(),
        };
        match cx.cfg.lb.kind {
            LbKind::Classic => {
                let out = cx
                    .clients
                    .elb
                    .describe_load_balancers()
                    .load_balancer_names(&name)
                    .send()
                    .await
                    .aws("DescribeLoadBalancers");
                let d = match out {
                    Ok(o) => o.load_balancer_descriptions.unwrap_or_default(),
                    Err(e) if e.is_not_found() => Vec::new(),
                    Err(e) => return Err(e.into()),
                };
                let d = d
                    .into_iter()
                    .next()
                    .ok_or_else(|| not_set_up(format!("classic load balancer {name}")))?;
                Ok(LoadBalancer {
                    kind: LbKind::Classic,
                    name,
                    dns_name: d.dns_name().unwrap_or_default().to_string(),
                    zone_id: d.canonical_hosted_zone_name_id().map(str::to_string),
                    vpc_id: d.vpc_id().map(str::to_string),
                    subnets: d.subnets().to_vec(),
                    availability_zones: d.availability_zones().to_vec(),
                    arn: None,
                    target_group_arn: None,
                })
            }
            LbKind::Alb => {
                let out = cx
                    .clients
                    .elbv2
                    .describe_load_balancers()
                    .names(&name)
                    .send()
                    .await
                    .aws("DescribeLoadBalancers");
                let lbs = match out {
                    Ok(o) => o.load_balancers.unwrap_or_default(),
                    Err(e) if e.is_not_found() => Vec::new(),
                    Err(e) => return Err(e.into()),
                };
                let lb = lbs
                    .into_iter()
                    .next()
                    .ok_or_else(|| not_set_up(format!("application load balancer {name}")))?;
                let tg_name = cx.cfg.names.target_group();
                let tg = find_target_group(cx, &tg_name)
                    .await?
                    .ok_or_else(|| not_set_up(format!("target group {tg_name}")))?;
                Ok(LoadBalancer {
                    kind: LbKind::Alb,
                    name,
                    dns_name: lb.dns_name().unwrap_or_default().to_string(),
                    zone_id: lb.canonical_hosted_zone_id().map(str::to_string),
                    vpc_id: lb.vpc_id().map(str::to_string),
                    subnets: lb
                        .availability_zones()
                        .iter()
                        .filter_map(|z| z.subnet_id().map(str::to_string))
                        .collect(),
                    availability_zones: lb
                        .availability_zones()
                        .iter()
                        .filter_map(|z| z.zone_name().map(str::to_string))
                        .collect(),
                    arn: lb.load_balancer_arn().map(str::to_string),
                    target_group_arn: tg.target_group_arn().map(str::to_string),
                })
            }
        }
    }
    /// Checks, with one look, that every instance in `ids` is in service here (classic: InService; target
    /// group: healthy). Called before new instances are declared live and before old ones are touched;
    /// `whose` names them in the error ("the new group's", "the new fleet's").
    pub async fn require_in_service(
        &self,
        cx: &Ctx,
        ids: &[String],
        whose: &str,
    ) -> Result<(), RolloutError> {
        let health = self.health(cx).await?;
        let out: Vec<String> = ids
            .iter()
            .filter(|id| !health.get(*id).is_some_and(TargetState::in_service))
            .map(|id| {
                let state = health.get(id).map(|s| s.state.as_str());
                format!("{id} is {}", state.unwrap_or("not registered"))
            })
            .collect();
        if ids.is_empty() || !out.is_empty() {
            let detail = if ids.is_empty() {
                "it has none".to_string()
            } else {
                out.join(", ")
            };
            return Err(RolloutError::Unhealthy(format!(
                "{whose} instances are not all in service on {}: {detail}",
                self.label()
            )));
        }
        Ok(())
    }

    /// Every registered instance and its state (one request). Instances being deregistered (draining)
    /// are still listed: they are gone only when absent.
    pub async fn health(&self, cx: &Ctx) -> Result<BTreeMap<String, TargetState>, AwsError> {
        let mut out = BTreeMap::new();
        match self.kind {
            LbKind::Classic => {
                // Without an instance list: all registered instances, and no error for unknown ones.
                let r = cx
                    .clients
                    .elb
                    .describe_instance_health()
                    .load_balancer_name(&self.name)
                    .send()
                    .await
                    .aws("DescribeInstanceHealth")?;
                for s in r.instance_states() {
                    if let Some(id) = s.instance_id() {
                        out.insert(
                            id.to_string(),
                            TargetState {
                                state: s.state().unwrap_or("Unknown").to_string(),
                                reason: s.description().filter(|d| *d != "N/A").map(str::to_string),
                            },
                        );
                    }
                }
            }
            LbKind::Alb => {
                let r = cx
                    .clients
                    .elbv2
                    .describe_target_health()
                    .target_group_arn(self.target_group_arn.as_deref().unwrap_or_default())
                    .send()
                    .await
                    .aws("DescribeTargetHealth")?;
                for d in r.target_health_descriptions() {
                    let Some(id) = d.target().and_then(|t| t.id()) else {
                        continue;
                    };
                    let h = d.target_health();
                    out.insert(
                        id.to_string(),
                        TargetState {
                            state: h
                                .and_then(|h| h.state())
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_else(|| "unknown".into()),
                            reason: h.and_then(|h| h.description()).map(str::to_string),
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// Stops `group` registering its instances here; AWS deregisters them, draining connections.
    pub async fn detach_group(&self, cx: &Ctx, group: &str) -> Result<(), AwsError> {
        match self.kind {
            LbKind::Classic => {
                cx.clients
                    .autoscaling
                    .detach_load_balancers()
                    .auto_scaling_group_name(group)
                    .load_balancer_names(&self.name)
                    .send()
                    .await
                    .aws("DetachLoadBalancers")?;
            }
            LbKind::Alb => {
                cx.clients
                    .autoscaling
                    .detach_load_balancer_target_groups()
                    .auto_scaling_group_name(group)
                    .target_group_arns(self.target_group_arn.as_deref().unwrap_or_default())
                    .send()
                    .await
                    .aws("DetachLoadBalancerTargetGroups")?;
            }
        }
        Ok(())
    }

    /// Makes `group` register its instances here (`rollout undo` bringing a kept group back).
    pub async fn attach_group(&self, cx: &Ctx, group: &str) -> Result<(), AwsError> {
        match self.kind {
            LbKind::Classic => {
                cx.clients
                    .autoscaling
                    .attach_load_balancers()
                    .auto_scaling_group_name(group)
                    .load_balancer_names(&self.name)
                    .send()
                    .await
                    .aws("AttachLoadBalancers")?;
            }
            LbKind::Alb => {
                cx.clients
                    .autoscaling
                    .attach_load_balancer_target_groups()
                    .auto_scaling_group_name(group)
                    .target_group_arns(self.target_group_arn.as_deref().unwrap_or_default())
                    .send()
                    .await
                    .aws("AttachLoadBalancerTargetGroups")?;
            }
        }
        Ok(())
    }

    /// True when `group` (as described) is attached here.
    pub fn attached_to(&self, load_balancers: &[String], target_groups: &[String]) -> bool {
        match self.kind {
            LbKind::Classic => load_balancers.contains(&self.name),
            LbKind::Alb => target_groups
                .iter()
                .any(|a| Some(a.as_str()) == self.target_group_arn.as_deref()),
        }
    }
}

/// The target group called `name`, if it exists.
pub async fn find_target_group(
    cx: &Ctx,
    name: &str,
) -> Result<Option<aws_sdk_elasticloadbalancingv2::types::TargetGroup>, AwsError> {
    let out = cx
        .clients
        .elbv2
        .describe_target_groups()
        .names(name)
        .send()
        .await
        .aws("DescribeTargetGroups");
    match out {
        Ok(o) => Ok(o.target_groups.unwrap_or_default().into_iter().next()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
