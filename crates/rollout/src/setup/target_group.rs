//! The ALB's target group: created with the manifest's health check, or its health check converged; its
//! deregistration delay (the ALB's connection draining) converged. A different port or protocol is only
//! reported: a target group's port cannot change in place.

use super::Setup;
use super::alb::{v2_protocol, v2_tags};
use crate::error::{AwsResultExt, RolloutError};
use aws_sdk_elasticloadbalancingv2::types::{
    LoadBalancer, Matcher, TargetGroup, TargetGroupAttribute, TargetTypeEnum,
};

/// The target group attribute that holds the deregistration delay.
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// `HTTP:8080/health every 10 s, timeout 5 s, healthy 3 / unhealthy 2`: a target group's health check as
/// setup shows it (`traffic-port` as the port it is).
fn describe_health_check(tg: &TargetGroup) -> String {
    let port = match tg.health_check_port() {
        Some("traffic-port") | None => tg.port().map(|p| p.to_string()).unwrap_or_default(),
        Some(p) => p.to_string(),
    };
    let n = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    format!(
        "{}:{port}{} every {} s, timeout {} s, healthy {} / unhealthy {}",
        tg.health_check_protocol()
            .map(|p| p.as_str())
            .unwrap_or("?"),
        tg.health_check_path().unwrap_or_default(),
        n(tg.health_check_interval_seconds()),
        n(tg.health_check_timeout_seconds()),
        n(tg.healthy_threshold_count()),
        n(tg.unhealthy_threshold_count())
    )
}

impl Setup<'_> {
    /// Converges the target group and its deregistration delay; returns its ARN (None in a dry run that
    /// would create it).
    pub(super) async fn target_group(
        &mut self,
        vpc: &str,
        lb: Option<&LoadBalancer>,
    ) -> Result<Option<String>, RolloutError> {
        let tg_name = self.cx.cfg.names.target_group();
        let found = crate::lb::find_target_group(self.cx, &tg_name).await?;
        let fresh = found.is_none();
        let arn = match found {
            None => {
                let vpc = lb.and_then(|l| l.vpc_id()).unwrap_or(vpc);
                self.create_target_group(&tg_name, vpc).await?
            }
            Some(tg) => Some(self.target_group_health_check(&tg_name, &tg).await?),
        };
        self.deregistration_delay(&tg_name, arn.as_deref(), fresh)
            .await?;
        Ok(arn)
    }

    /// Creates target group `tg_name` in `vpc` (in a dry run: records it as to be created).
    async fn create_target_group(
        &mut self,
        tg_name: &str,
        vpc: &str,
    ) -> Result<Option<String>, RolloutError> {
        let cx = self.cx;
        let cfg = &cx.cfg.lb;
        let hc = &cfg.health_check;
        let resource = format!("target group {tg_name}");
        if self.dry_run {
            self.record(
                resource,
                "created",
                format!(
                    "{}:{}, health {} {}",
                    cfg.instance_protocol.as_str(),
                    cfg.instance_port,
                    hc.protocol.as_str(),
                    hc.path
                ),
            );
            return Ok(None);
        }
        let out = cx
            .clients
            .elbv2
            .create_target_group()
            .name(tg_name)
            .protocol(v2_protocol(cfg.instance_protocol))
            .port(i32::from(cfg.instance_port))
            .vpc_id(vpc)
            .target_type(TargetTypeEnum::Instance)
            .health_check_protocol(v2_protocol(hc.protocol))
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
        self.record(resource, "created", arn.clone());
        Ok(Some(arn))
    }

    /// Converges the health check of the existing target group `tg`; warns when its port or protocol
    /// differ. Returns its ARN.
    async fn target_group_health_check(
        &mut self,
        tg_name: &str,
        tg: &TargetGroup,
    ) -> Result<String, RolloutError> {
        let cx = self.cx;
        let cfg = &cx.cfg.lb;
        let hc = &cfg.health_check;
        let resource = format!("target group {tg_name}");
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
        let same = tg.health_check_protocol().map(|p| p.as_str()) == Some(hc.protocol.as_str())
            && (tg.health_check_port() == Some(hc.port.to_string().as_str())
                || (tg.health_check_port() == Some("traffic-port")
                    && hc.port == cfg.instance_port))
            && tg.health_check_path() == Some(hc.path.as_str())
            && tg.health_check_interval_seconds() == Some(hc.interval as i32)
            && tg.health_check_timeout_seconds() == Some(hc.timeout as i32)
            && tg.healthy_threshold_count() == Some(hc.healthy_threshold as i32)
            && tg.unhealthy_threshold_count() == Some(hc.unhealthy_threshold as i32);
        let want = format!(
            "{}:{}{} every {} s, timeout {} s, healthy {} / unhealthy {}",
            hc.protocol.as_str(),
            hc.port,
            hc.path,
            hc.interval,
            hc.timeout,
            hc.healthy_threshold,
            hc.unhealthy_threshold
        );
        if same {
            self.record(resource, "unchanged", format!("{arn}, health {want}"));
            return Ok(arn);
        }
        if !self.dry_run {
            cx.clients
                .elbv2
                .modify_target_group()
                .target_group_arn(&arn)
                .health_check_protocol(v2_protocol(hc.protocol))
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
        self.record_change(
            resource,
            format!("health {}", describe_health_check(tg)),
            format!("health {want}"),
        );
        Ok(arn)
    }

    /// Converges the deregistration delay of target group `arn` (None: still to be created), which
    /// `fresh` says this run created.
    async fn deregistration_delay(
        &mut self,
        tg_name: &str,
        arn: Option<&str>,
        fresh: bool,
    ) -> Result<(), RolloutError> {
        let cx = self.cx;
        let resource = format!("deregistration delay of {tg_name}");
        let want = cx.cfg.lb.draining_seconds.to_string();
        let Some(arn) = arn else {
            self.record(resource, "created", format!("{want} s"));
            return Ok(());
        };
        let attrs = cx
            .clients
            .elbv2
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .aws("DescribeTargetGroupAttributes")?;
        let have = attrs
            .attributes()
            .iter()
            .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
            .and_then(|a| a.value());
        if have == Some(want.as_str()) {
            self.record(resource, "unchanged", format!("{want} s"));
            return Ok(());
        }
        if !self.dry_run {
            cx.clients
                .elbv2
                .modify_target_group_attributes()
                .target_group_arn(arn)
                .attributes(
                    TargetGroupAttribute::builder()
                        .key(DEREGISTRATION_DELAY)
                        .value(&want)
                        .build(),
                )
                .send()
                .await
                .aws("ModifyTargetGroupAttributes")?;
        }
        if fresh {
            self.record(resource, "created", format!("{want} s"));
        } else {
            let before = have.map_or_else(|| "unset".to_string(), |v| format!("{v} s"));
            self.record_change(resource, before, format!("{want} s"));
        }
        Ok(())
    }
}
