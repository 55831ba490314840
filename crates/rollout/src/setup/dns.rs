//! The Route 53 ALIAS record `env.domain` (or the apex) → the load balancer, UPSERTed only when it
//! differs.

use super::{AliasTarget, Setup};
use crate::error::{AwsResultExt, RolloutError};
use aws_sdk_route53::types::{
    AliasTarget as R53Alias, Change as R53Change, ChangeAction, ChangeBatch, ResourceRecordSet,
    RrType,
};

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

/// `-> elb-….amazonaws.com (zone Z…), evaluate target health true`, or the A record's values when it is
/// not an ALIAS: a record as setup shows it.
fn describe_record(r: &ResourceRecordSet) -> String {
    match r.alias_target() {
        Some(a) => format!(
            "-> {} (zone {}), evaluate target health {}",
            a.dns_name().trim_end_matches('.'),
            a.hosted_zone_id(),
            a.evaluate_target_health()
        ),
        None => format!(
            "A {}",
            r.resource_records()
                .iter()
                .map(|v| v.value())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The one-change batch that UPSERTs the A ALIAS `record_name` → `target` in `zone_id`.
fn upsert_batch(
    record_name: &str,
    target: &AliasTarget,
    zone_id: &str,
    evaluate_target_health: bool,
    comment: String,
) -> Result<ChangeBatch, RolloutError> {
    let alias = R53Alias::builder()
        .hosted_zone_id(zone_id)
        .dns_name(&target.dns_name)
        .evaluate_target_health(evaluate_target_health)
        .build()
        .map_err(|e| RolloutError::Preflight(vec![format!("alias target: {e}")]))?;
    let set = ResourceRecordSet::builder()
        .name(record_name)
        .r#type(RrType::A)
        .alias_target(alias)
        .build()
        .map_err(|e| RolloutError::Preflight(vec![format!("record set: {e}")]))?;
    let change = R53Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(set)
        .build()
        .map_err(|e| RolloutError::Preflight(vec![format!("change: {e}")]))?;
    ChangeBatch::builder()
        .comment(comment)
        .changes(change)
        .build()
        .map_err(|e| RolloutError::Preflight(vec![format!("change batch: {e}")]))
}

impl Setup<'_> {
    /// Converges the record when the manifest has a `dns` block; returns the record's name.
    pub(super) async fn dns(
        &mut self,
        target: Option<&AliasTarget>,
    ) -> Result<Option<String>, RolloutError> {
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
        let existing = self
            .current_record(&dns.hosted_zone_id, &dns.record_name)
            .await?;
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
            let batch = upsert_batch(
                &dns.record_name,
                target,
                &zone_id,
                dns.evaluate_target_health,
                format!("bakery rollout setup, run {}", cx.run_id),
            )?;
            cx.clients
                .route53
                .change_resource_record_sets()
                .hosted_zone_id(&dns.hosted_zone_id)
                .change_batch(batch)
                .send()
                .await
                .aws("ChangeResourceRecordSets")?;
        }
        match &existing {
            Some(r) => self.record_change(resource, describe_record(r), detail),
            None => self.record(resource, "created", detail),
        }
        Ok(Some(dns.record_name.clone()))
    }

    /// The A record `record_name` as hosted zone `zone` has it, if any.
    async fn current_record(
        &self,
        zone: &str,
        record_name: &str,
    ) -> Result<Option<ResourceRecordSet>, RolloutError> {
        let existing = self
            .cx
            .clients
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(record_name)
            .start_record_type(RrType::A)
            .max_items(1)
            .send()
            .await
            .aws("ListResourceRecordSets");
        match existing {
            Ok(o) => Ok(o
                .resource_record_sets()
                .iter()
                .find(|r| dns_eq(r.name(), record_name) && r.r#type() == &RrType::A)
                .cloned()),
            Err(e) if e.is_not_found() => Err(RolloutError::Preflight(vec![format!(
                "dns.hosted_zone_id {zone}: {e}"
            )])),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_compare_as_route53_does() {
        assert!(dns_eq(
            "dualstack.elb-x-1.us-east-1.elb.amazonaws.com.",
            "ELB-X-1.us-east-1.elb.amazonaws.com"
        ));
        assert!(!dns_eq("a.example.", "b.example."));
    }
}
