//! What the strategies' plan diffs ([`crate::diff`], `rollout plan`'s "Changes") share: the launch
//! template version a live group or fleet runs, read for the plan (read-only: preflight does not need it),
//! and how AMIs, groups and templates read in a diff line.

use super::preflight::Preflight;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use crate::live::{Group, LaunchTemplateRef};
use crate::manifest::LbKind;
use bakery_core::propagation::{NOT_FOUND_CONFIRMATION, retry_propagation};

/// A launch template and the version a group or fleet runs, as the plan shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(in crate::strategy) struct TemplateView {
    /// Its name (else its id).
    pub name: String,
    /// The version the group runs (`$Default`/`$Latest` resolved), when known.
    pub version: Option<i64>,
    /// Its latest version number.
    pub latest: Option<i64>,
    /// Its default version number.
    pub default: Option<i64>,
    /// That version's AMI.
    pub image: Option<String>,
    /// That version's instance type.
    pub instance_type: Option<String>,
    /// Tagged as this environment's: a rollout that retires its group deletes it.
    pub ours: bool,
}

impl TemplateView {
    /// `ami-…, t3.micro` (what is known of it).
    pub fn describe(&self) -> String {
        let parts: Vec<&str> = [self.image.as_deref(), self.instance_type.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if parts.is_empty() {
            "AMI unknown".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The launch template `r` names and the version it names (`$Default` when none), or None when it is
/// gone. Two reads: DescribeLaunchTemplates, DescribeLaunchTemplateVersions; "not found" is believed
/// once it has lasted [`NOT_FOUND_CONFIRMATION`] (a group's template made moments ago may not be visible
/// yet).
pub(in crate::strategy) async fn template_view(
    cx: &Ctx,
    r: &LaunchTemplateRef,
) -> Result<Option<TemplateView>, RolloutError> {
    let ec2 = &cx.clients.ec2;
    let req = match (&r.id, &r.name) {
        (Some(id), _) => ec2.describe_launch_templates().launch_template_ids(id),
        (None, Some(name)) => ec2.describe_launch_templates().launch_template_names(name),
        (None, None) => return Ok(None),
    };
    let found = retry_propagation(NOT_FOUND_CONFIRMATION, &cx.cancel, || async {
        req.clone().send().await.aws("DescribeLaunchTemplates")
    })
    .await;
    let lt = match found {
        Ok(o) => o.launch_templates.unwrap_or_default().into_iter().next(),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let Some(lt) = lt else {
        return Ok(None);
    };
    let mut view = TemplateView {
        name: lt
            .launch_template_name()
            .or(lt.launch_template_id())
            .unwrap_or_default()
            .to_string(),
        latest: lt.latest_version_number(),
        default: lt.default_version_number(),
        ours: cx.cfg.names.owns(lt.tags()),
        ..TemplateView::default()
    };
    let Some(id) = lt.launch_template_id() else {
        return Ok(Some(view));
    };
    let version = r.version.clone().unwrap_or_else(|| "$Default".into());
    let out = retry_propagation(NOT_FOUND_CONFIRMATION, &cx.cancel, || async {
        ec2.describe_launch_template_versions()
            .launch_template_id(id)
            .versions(&version)
            .send()
            .await
            .aws("DescribeLaunchTemplateVersions")
    })
    .await;
    let v = match out {
        Ok(o) => o
            .launch_template_versions
            .unwrap_or_default()
            .into_iter()
            .next(),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(v) = v {
        view.version = v.version_number();
        let data = v.launch_template_data();
        view.image = data.and_then(|d| d.image_id()).map(str::to_string);
        view.instance_type = data
            .and_then(|d| d.instance_type())
            .map(|t| t.as_str().to_string());
    }
    Ok(Some(view))
}

/// The launch template `g` runs, read for the plan (None: it has none, or it is gone).
pub(in crate::strategy) async fn group_template(
    cx: &Ctx,
    g: &Group,
) -> Result<Option<TemplateView>, RolloutError> {
    match &g.launch_template {
        Some(r) => template_view(cx, r).await,
        None => Ok(None),
    }
}

/// What groups attach to, as a diff names it: `load balancer elb-…` (classic) or `target group tg-…`
/// (ALB).
pub(in crate::strategy) fn attachment(cx: &Ctx) -> String {
    match cx.cfg.lb.kind {
        LbKind::Classic => format!("load balancer {}", cx.cfg.names.load_balancer()),
        LbKind::Alb => format!("target group {}", cx.cfg.names.target_group()),
    }
}

/// The AMI a rollout would launch: `--ami`'s, or `<--ami>` when none was given.
pub(in crate::strategy) fn new_ami(pf: &Preflight) -> String {
    pf.ami
        .as_ref()
        .map(|a| a.id.clone())
        .unwrap_or_else(|| "<--ami>".into())
}

/// The AMI group `g` runs (its `bakery:ami` tag, else its template's), `AMI unknown` when neither says.
pub(in crate::strategy) fn group_ami(
    pf: &Preflight,
    g: &Group,
    t: Option<&TemplateView>,
) -> String {
    pf.group_amis
        .get(&g.name)
        .cloned()
        .flatten()
        .or_else(|| t.and_then(|t| t.image.clone()))
        .unwrap_or_else(|| "AMI unknown".into())
}

/// `ami-…, t3.micro, 2 instance(s) (min 1, max 4, desired 2)`: a live group in a diff.
pub(in crate::strategy) fn group_detail(
    pf: &Preflight,
    g: &Group,
    t: Option<&TemplateView>,
) -> String {
    let mut s = group_ami(pf, g, t);
    if let Some(it) = t.and_then(|t| t.instance_type.as_deref()) {
        s.push_str(&format!(", {it}"));
    }
    s.push_str(&format!(
        ", {} instance(s) (min {}, max {}, desired {})",
        g.instances.len(),
        g.min,
        g.max,
        g.desired
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_reads_as_what_is_known_of_it() {
        let mut t = TemplateView {
            name: "lt-1".into(),
            image: Some("ami-1".into()),
            instance_type: Some("t3.micro".into()),
            ..TemplateView::default()
        };
        assert_eq!(t.describe(), "ami-1, t3.micro");
        t.instance_type = None;
        assert_eq!(t.describe(), "ami-1");
        t.image = None;
        assert_eq!(t.describe(), "AMI unknown");
    }
}
