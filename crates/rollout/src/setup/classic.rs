//! The classic ELB: created with its listener in the manifest's subnets or zones; on an existing one a
//! missing listener and missing tags are added, health check and connection draining converged, and a
//! different listener, security group or placement only reported (changing those interrupts traffic).

use super::{AliasTarget, Setup, tags};
use crate::error::{AwsResultExt, RolloutError};
use aws_sdk_elasticloadbalancing::types::{
    ConnectionDraining, HealthCheck, Listener, LoadBalancerAttributes, LoadBalancerDescription,
    Tag as ElbTag,
};

/// The classic ELB's form of tag pairs.
fn elb_tags(tags: &[(String, String)]) -> Vec<ElbTag> {
    tags.iter()
        .filter_map(|(k, v)| ElbTag::builder().key(k).value(v).build().ok())
        .collect()
}

/// Whether a setting is new with the load balancer this run created, or changed on an existing one.
fn created_or_updated(desc: Option<&LoadBalancerDescription>) -> &'static str {
    if desc.is_none() { "created" } else { "updated" }
}

/// `HTTP:80/health every 30 s, timeout 5 s, healthy 2 / unhealthy 2`: a health check as setup shows it.
fn describe_health_check(h: &HealthCheck) -> String {
    format!(
        "{} every {} s, timeout {} s, healthy {} / unhealthy {}",
        h.target(),
        h.interval(),
        h.timeout(),
        h.healthy_threshold(),
        h.unhealthy_threshold()
    )
}

/// `300 s` or `off`: connection draining as setup shows it (`?` when AWS did not say).
fn describe_draining(d: Option<&ConnectionDraining>) -> String {
    match d {
        Some(d) if d.enabled() => d
            .timeout()
            .map(|t| format!("{t} s"))
            .unwrap_or_else(|| "on".into()),
        Some(_) => "off".into(),
        None => "?".into(),
    }
}

impl Setup<'_> {
    /// Converges the classic load balancer; returns the ALIAS target (None in a dry run that would create
    /// it).
    pub(super) async fn classic(
        &mut self,
        vpc: &str,
        lb_sg: Option<&str>,
    ) -> Result<Option<AliasTarget>, RolloutError> {
        let cx = self.cx;
        let cfg = &cx.cfg.lb;
        let name = cx.cfg.names.load_balancer();
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
        let Some(desc) = existing else {
            return self.create_classic(&name, vpc, lb_sg, listener).await;
        };
        self.classic_listener(&name, &desc, listener).await?;
        self.report_classic_placement(&name, &desc, lb_sg);
        self.classic_tags(&name, &desc).await?;
        self.classic_settings(&name, Some(&desc)).await
    }

    /// Where a new classic load balancer goes, as (subnets, zones), one of them empty: the manifest's
    /// subnets, else its zones (placement by zone, in the default subnets), else the VPC's default subnets.
    async fn classic_placement(
        &mut self,
        vpc: &str,
    ) -> Result<(Vec<String>, Vec<String>), RolloutError> {
        let net = &self.cx.cfg.network;
        if !net.subnets.is_empty() {
            return Ok((net.subnets.clone(), Vec::new()));
        }
        if !net.availability_zones.is_empty() {
            return Ok((Vec::new(), net.availability_zones.clone()));
        }
        let s = self.subnets(vpc).await?;
        if s.is_empty() {
            return Err(RolloutError::Preflight(vec![format!(
                "no default subnets in {vpc}: set network.subnets or network.availability_zones"
            )]));
        }
        Ok((s.into_iter().map(|(id, _)| id).collect(), Vec::new()))
    }

    /// Creates the load balancer `name` with `listener`, then its health check and draining (in a dry
    /// run: records all three as to be created).
    async fn create_classic(
        &mut self,
        name: &str,
        vpc: &str,
        lb_sg: Option<&str>,
        listener: Listener,
    ) -> Result<Option<AliasTarget>, RolloutError> {
        let cx = self.cx;
        let cfg = &cx.cfg.lb;
        let resource = format!("classic load balancer {name}");
        let (subnets, zones) = self.classic_placement(vpc).await?;
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
                describe_health_check(&self.classic_health_check_wanted()?),
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
            .load_balancer_name(name)
            .listeners(listener)
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
        self.classic_settings(name, None).await
    }

    /// Adds `listener` when its port has none; reports (never changes) a different one on that port.
    async fn classic_listener(
        &mut self,
        name: &str,
        desc: &LoadBalancerDescription,
        listener: Listener,
    ) -> Result<(), RolloutError> {
        let cfg = &self.cx.cfg.lb;
        let same_port = desc
            .listener_descriptions()
            .iter()
            .filter_map(|l| l.listener())
            .find(|l| l.load_balancer_port() == i32::from(cfg.port));
        match same_port {
            None => {
                if !self.dry_run {
                    self.cx
                        .clients
                        .elb
                        .create_load_balancer_listeners()
                        .load_balancer_name(name)
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
        Ok(())
    }

    /// Warns when the load balancer's security group, subnets or zones differ from the manifest's.
    fn report_classic_placement(
        &mut self,
        name: &str,
        desc: &LoadBalancerDescription,
        lb_sg: Option<&str>,
    ) {
        if let Some(sg) = lb_sg
            && !desc.security_groups().iter().any(|g| g == sg)
        {
            self.warn(format!(
                "{name} does not use security group {sg} ({}); not changed",
                desc.security_groups().join(", ")
            ));
        }
        let net = &self.cx.cfg.network;
        let (what, mut want, mut have) = if !net.subnets.is_empty() {
            ("subnets", net.subnets.clone(), desc.subnets().to_vec())
        } else if !net.availability_zones.is_empty() {
            (
                "zones",
                net.availability_zones.clone(),
                desc.availability_zones().to_vec(),
            )
        } else {
            return;
        };
        want.sort();
        have.sort();
        if want != have {
            self.warn(format!(
                "{name} is in {what} {}, the manifest says {}; not changed",
                have.join(", "),
                want.join(", ")
            ));
        }
    }

    /// Adds the missing steady tags; records the load balancer as unchanged or updated.
    async fn classic_tags(
        &mut self,
        name: &str,
        desc: &LoadBalancerDescription,
    ) -> Result<(), RolloutError> {
        let cx = self.cx;
        let resource = format!("classic load balancer {name}");
        let out = cx
            .clients
            .elb
            .describe_tags()
            .load_balancer_names(name)
            .send()
            .await
            .aws("DescribeTags")?;
        let fix = tags::fix(
            cx,
            out.tag_descriptions()
                .iter()
                .flat_map(|d| d.tags())
                .map(|t| (t.key(), t.value().unwrap_or_default())),
        );
        let Some(fix) = fix else {
            self.record(
                resource,
                "unchanged",
                desc.dns_name().unwrap_or_default().to_string(),
            );
            return Ok(());
        };
        if !self.dry_run {
            cx.clients
                .elb
                .add_tags()
                .load_balancer_names(name)
                .set_tags(Some(elb_tags(&fix.tags)))
                .send()
                .await
                .aws("AddTags")?;
        }
        self.record_change(resource, fix.before, fix.after);
        Ok(())
    }

    /// Health check and connection draining of classic load balancer `name` (just created when `desc` is
    /// None); returns the ALIAS target.
    async fn classic_settings(
        &mut self,
        name: &str,
        desc: Option<&LoadBalancerDescription>,
    ) -> Result<Option<AliasTarget>, RolloutError> {
        let cx = self.cx;
        // Settings of a load balancer this run created count as part of its creation.
        let action = created_or_updated(desc);
        let want = self.classic_health_check_wanted()?;
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
        self.classic_health_check(name, &desc, want, action).await?;
        self.classic_draining(name, action).await?;
        Ok(Some(AliasTarget {
            dns_name: desc.dns_name().unwrap_or_default().to_string(),
            zone_id: desc.canonical_hosted_zone_name_id().map(str::to_string),
        }))
    }

    /// The health check the manifest asks for.
    fn classic_health_check_wanted(&self) -> Result<HealthCheck, RolloutError> {
        let hc = &self.cx.cfg.lb.health_check;
        HealthCheck::builder()
            .target(hc.classic_target())
            .interval(hc.interval as i32)
            .timeout(hc.timeout as i32)
            .healthy_threshold(hc.healthy_threshold as i32)
            .unhealthy_threshold(hc.unhealthy_threshold as i32)
            .build()
            .map_err(|e| RolloutError::Preflight(vec![format!("health check: {e}")]))
    }

    /// Configures `want` as the health check when `desc`'s differs.
    async fn classic_health_check(
        &mut self,
        name: &str,
        desc: &LoadBalancerDescription,
        want: HealthCheck,
        action: &str,
    ) -> Result<(), RolloutError> {
        let resource = format!("health check of {name}");
        let same = desc.health_check().is_some_and(|h| {
            h.target().eq_ignore_ascii_case(want.target())
                && h.interval() == want.interval()
                && h.timeout() == want.timeout()
                && h.healthy_threshold() == want.healthy_threshold()
                && h.unhealthy_threshold() == want.unhealthy_threshold()
        });
        let detail = describe_health_check(&want);
        let before = desc
            .health_check()
            .map(describe_health_check)
            .unwrap_or_else(|| "none".into());
        if same {
            self.record(resource, "unchanged", detail);
            return Ok(());
        }
        if !self.dry_run {
            self.cx
                .clients
                .elb
                .configure_health_check()
                .load_balancer_name(name)
                .health_check(want)
                .send()
                .await
                .aws("ConfigureHealthCheck")?;
        }
        if action == "updated" {
            self.record_change(resource, before, detail);
        } else {
            self.record(resource, action, detail);
        }
        Ok(())
    }

    /// Converges connection draining (`lb.draining_seconds`; 0 turns it off).
    async fn classic_draining(&mut self, name: &str, action: &str) -> Result<(), RolloutError> {
        let cx = self.cx;
        let seconds = cx.cfg.lb.draining_seconds;
        let attrs = cx
            .clients
            .elb
            .describe_load_balancer_attributes()
            .load_balancer_name(name)
            .send()
            .await
            .aws("DescribeLoadBalancerAttributes")?;
        let enabled = seconds > 0;
        let have = attrs
            .load_balancer_attributes()
            .and_then(|a| a.connection_draining());
        let same = have.is_some_and(|d| {
            d.enabled() == enabled && (!enabled || d.timeout() == Some(seconds as i32))
        });
        let resource = format!("connection draining of {name}");
        let detail = if enabled {
            format!("{seconds} s")
        } else {
            "off".into()
        };
        if same {
            self.record(resource, "unchanged", detail);
            return Ok(());
        }
        if !self.dry_run {
            let mut d = ConnectionDraining::builder().enabled(enabled);
            if enabled {
                d = d.timeout(seconds as i32);
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
        if action == "updated" {
            self.record_change(resource, describe_draining(have), detail);
        } else {
            self.record(resource, action, detail);
        }
        Ok(())
    }
}
