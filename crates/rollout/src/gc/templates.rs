//! Every launch template in the region with every version's image (`resolve:ssm:` parameters resolved):
//! what the in-use check and launch-template-version pruning work from.

use crate::ami::is_ami_id;
use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use std::collections::BTreeMap;

/// A launch template with every version's image (`Err`: a reference that could not be resolved).
#[derive(Debug, Clone)]
pub(super) struct Template {
    /// `lt-...`.
    pub(super) id: String,
    /// Its name.
    pub(super) name: String,
    /// The default version.
    pub(super) default: i64,
    /// The latest version.
    pub(super) latest: i64,
    /// Tagged as this environment's by rollout.
    pub(super) ours: bool,
    /// Version → its image, if it names one.
    pub(super) versions: BTreeMap<i64, Option<Result<String, String>>>,
}

/// `resolve:ssm:NAME[:VERSION]` or an AMI id → the AMI id, or why it cannot be told.
async fn resolve_image_ref(
    cx: &Ctx,
    raw: &str,
    cache: &mut BTreeMap<String, Result<String, String>>,
) -> Result<String, String> {
    if is_ami_id(raw) {
        return Ok(raw.to_string());
    }
    if let Some(hit) = cache.get(raw) {
        return hit.clone();
    }
    let result = match raw.strip_prefix("resolve:ssm:") {
        None => Err(format!("`{raw}` is not an AMI id")),
        Some(name) => match cx
            .clients
            .ssm
            .get_parameter()
            .name(name)
            .send()
            .await
            .aws("GetParameter")
        {
            Ok(out) => {
                let v = out
                    .parameter()
                    .and_then(|p| p.value())
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if is_ami_id(&v) {
                    Ok(v)
                } else {
                    Err(format!("SSM parameter {name} holds `{v}`, not an AMI id"))
                }
            }
            Err(e) if e.is_not_found() => Err(format!("SSM parameter {name} does not exist")),
            Err(e) => Err(e.to_string()),
        },
    };
    cache.insert(raw.to_string(), result.clone());
    result
}

/// Every launch template in the region with every version's image.
pub(super) async fn scan(cx: &Ctx) -> Result<Vec<Template>, RolloutError> {
    let ec2 = &cx.clients.ec2;
    let mut templates = Vec::new();
    let mut pages = ec2.describe_launch_templates().into_paginator().send();
    while let Some(page) = pages.next().await {
        for lt in page.aws("DescribeLaunchTemplates")?.launch_templates() {
            let ours = cx.cfg.names.owns(lt.tags());
            templates.push(Template {
                id: lt.launch_template_id().unwrap_or_default().to_string(),
                name: lt.launch_template_name().unwrap_or_default().to_string(),
                default: lt.default_version_number().unwrap_or(1),
                latest: lt.latest_version_number().unwrap_or(1),
                ours,
                versions: BTreeMap::new(),
            });
        }
    }
    let mut ssm_cache = BTreeMap::new();
    for t in &mut templates {
        // Listed but "not found": deleted between the two calls, or made moments ago and not visible
        // to this call yet (EC2 is eventually consistent). Only the first means nothing references
        // it, so "not found" is believed once it lasts; until then its versions are asked again.
        let ec2 = &ec2;
        let pages = bakery_core::propagation::retry_propagation(
            bakery_core::propagation::NOT_FOUND_CONFIRMATION,
            &cx.cancel,
            || async {
                ec2.describe_launch_template_versions()
                    .launch_template_id(&t.id)
                    .into_paginator()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .aws("DescribeLaunchTemplateVersions")
            },
        )
        .await;
        let pages = match pages {
            Ok(p) => p,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        for page in pages {
            for v in page.launch_template_versions() {
                let Some(n) = v.version_number() else {
                    continue;
                };
                let image = match v.launch_template_data().and_then(|d| d.image_id()) {
                    None => None,
                    Some(raw) => Some(resolve_image_ref(cx, raw, &mut ssm_cache).await),
                };
                t.versions.insert(n, image);
            }
        }
    }
    Ok(templates)
}

#[cfg(test)]
impl Template {
    /// Template `lt-1` with versions 1 to 5 (each its own image), default 2, latest 5.
    pub(super) fn sample(ours: bool) -> Template {
        Template {
            id: "lt-1".into(),
            name: "lt-app-env".into(),
            default: 2,
            latest: 5,
            ours,
            versions: (1..=5)
                .map(|n| (n, Some(Ok(format!("ami-0000000{n}")))))
                .collect(),
        }
    }
}
