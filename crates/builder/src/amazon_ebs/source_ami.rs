//! Step 2: find the source AMI — `source_ami` (also `resolve:ssm:/parameter`), or `source_ami_filter` with
//! `owners` and `most_recent` — and fill the data late templates use (`{{.SourceAMI}}`, `{{.BuildRegion}}`...).

use super::state::{Ctx, SourceImage, State};
use crate::ec2::filters;
use async_trait::async_trait;
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::{Step, StepError};
use std::collections::BTreeMap;

/// Resolves the source AMI.
pub struct SourceAmi;

/// The AMI id a `resolve:ssm:` reference names.
pub async fn resolve_ssm(ssm: &aws_sdk_ssm::Client, reference: &str) -> Result<String, StepError> {
    let name = reference.trim_start_matches("resolve:ssm:");
    let out = ssm
        .get_parameter()
        .name(name)
        .send()
        .await
        .aws("GetParameter")?;
    out.parameter()
        .and_then(|p| p.value())
        .map(str::to_string)
        .ok_or_else(|| StepError::msg(format!("SSM parameter {name} has no value")))
}

/// Looks the source AMI up (read-only: DescribeImages, and GetParameter for `resolve:ssm:`).
async fn find(cx: &Ctx) -> Result<SourceImage, StepError> {
    let run = &cx.cfg.run;
    let mut req = cx.clients.ec2.describe_images();
    let mut wanted = String::new();
    if let Some(id) = run.source_ami.as_deref().filter(|s| !s.is_empty()) {
        let id = if id.starts_with("resolve:ssm:") {
            resolve_ssm(&cx.clients.ssm, id).await?
        } else {
            id.to_string()
        };
        wanted = id.clone();
        req = req.image_ids(id);
    } else if let Some(f) = &run.source_ami_filter {
        req = req
            .set_owners(Some(f.owners.clone()))
            .set_filters(Some(filters(&f.filters)));
        if f.include_deprecated {
            req = req.include_deprecated(true);
        }
    } else {
        return Err(StepError::msg("no source_ami or source_ami_filter"));
    }
    let out = req.send().await.aws("DescribeImages")?;
    let mut images: Vec<_> = out.images().to_vec();
    if images.is_empty() {
        return Err(StepError::msg(if wanted.is_empty() {
            "No AMI was found matching filters".to_string()
        } else {
            format!("Source AMI '{wanted}' was not found")
        }));
    }
    if images.len() > 1 {
        let most_recent = run
            .source_ami_filter
            .as_ref()
            .is_some_and(|f| f.most_recent);
        if !most_recent {
            return Err(StepError::msg(
                "Your query returned more than one result. Please try a more specific search, or set most_recent to true.",
            ));
        }
        // ISO 8601 dates sort as strings.
        images.sort_by(|a, b| a.creation_date().cmp(&b.creation_date()));
    }
    let img = images.pop().expect("non-empty");
    let tags: BTreeMap<String, String> = img
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    Ok(SourceImage {
        id: img.image_id().unwrap_or_default().to_string(),
        name: img.name().unwrap_or_default().to_string(),
        owner: img.owner_id().unwrap_or_default().to_string(),
        owner_alias: img.image_owner_alias().unwrap_or_default().to_string(),
        creation_date: img.creation_date().unwrap_or_default().to_string(),
        tags,
        root_device_name: img.root_device_name().map(str::to_string),
    })
}

#[async_trait]
impl Step<Ctx, State> for SourceAmi {
    fn name(&self) -> &'static str {
        "source-ami"
    }

    async fn plan(&self, cx: &Ctx, st: &mut State) -> Result<Vec<String>, StepError> {
        // A source given by the dry run (another template's AMI, not built yet) is not looked up.
        if st.source.is_none() {
            st.source = Some(find(cx).await?);
        }
        let src = st.source.as_ref().expect("set above");
        Ok(vec![format!("source AMI: {} ({})", src.id, src.name)])
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        let src = find(cx).await?;
        cx.ui
            .message(&cx.name, &format!("Found Image ID: {}", src.id));
        let d = &mut st.late.data;
        d.insert("BuildRegion".into(), cx.region().to_string());
        d.insert("SourceAMI".into(), src.id.clone());
        d.insert("SourceAMIName".into(), src.name.clone());
        d.insert("SourceAMIOwner".into(), src.owner.clone());
        d.insert("SourceAMIOwnerName".into(), src.owner_alias.clone());
        d.insert("SourceAMICreationDate".into(), src.creation_date.clone());
        st.late
            .maps
            .insert("SourceAMITags".into(), src.tags.clone());
        let b = &mut st.late.build;
        b.insert("SourceAMI".into(), src.id.clone());
        b.insert("SourceAMIName".into(), src.name.clone());
        b.insert("SourceAMIOwner".into(), src.owner.clone());
        b.insert("SourceAMIOwnerName".into(), src.owner_alias.clone());
        b.insert("SourceAMICreationDate".into(), src.creation_date.clone());
        st.source = Some(src);
        Ok(())
    }
}
