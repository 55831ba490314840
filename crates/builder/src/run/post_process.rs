//! After a build: its post-processors (`manifest`, `shell-local`), and, after the whole run,
//! `--publish-ssm` (the last successful build's AMIs written to an SSM parameter).

use super::config::BuildConfig;
use super::context::SdkConfigs;
use super::summary::Finished;
use crate::amazon_ebs::state::Ctx;
use bakery_core::aws::{AwsSettings, Clients};
use bakery_core::aws_err::AwsError;
use bakery_core::ui::Ui;
use bakery_provision::manifest::{self, Artifact};
use bakery_template::{LateContext, PostProcessorConfig};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Runs build `cx`'s post-processor chains, which made `amis`; the first error stops them.
pub(crate) async fn post_process(
    config: &BuildConfig,
    cx: &Ctx,
    amis: &BTreeMap<String, String>,
    late: &LateContext,
) -> Result<(), String> {
    let artifact = Artifact {
        build_name: cx.name.clone(),
        builder_type: cx.build.builder_type.clone(),
        artifact_id: amis
            .iter()
            .map(|(r, a)| format!("{r}:{a}"))
            .collect::<Vec<_>>()
            .join(","),
        files: None,
        build_time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    for chain in &cx.build.post_processors {
        for pp in chain {
            match pp {
                PostProcessorConfig::Manifest(m) => {
                    let path =
                        manifest::write(m, &artifact, &cx.run_id, late, config.force, &cx.ui)
                            .map_err(|e| e.to_string())?;
                    cx.ui
                        .say(&cx.name, &format!("Writing manifest: {}", path.display()));
                }
                PostProcessorConfig::ShellLocal(s) => {
                    bakery_provision::run_shell_local(
                        s,
                        &cx.ui,
                        &cx.name,
                        &cx.build.builder_type,
                        late,
                        &cx.cancel,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// `--publish-ssm PARAM`: writes the AMI of each region of the last build with an artifact to `param` in
/// that region; false when there is none or a write fails (each failure is reported).
pub(crate) async fn publish_ssm(
    ui: &Ui,
    sdk: &mut SdkConfigs,
    config: &BuildConfig,
    param: &str,
    finished: &[Finished],
) -> bool {
    let Some(last) = finished.iter().rfind(|f| f.has_artifact()) else {
        ui.error("bake", "-publish-ssm: no AMI to publish");
        return false;
    };
    let settings = AwsSettings {
        endpoint_url: config.endpoint_url.clone(),
        ..Default::default()
    };
    let sdk_config = sdk.get(&settings).await;
    let mut all = true;
    for (region, ami) in &last.amis {
        let c = Clients::for_region(&sdk_config, Some(region), None);
        match c
            .ssm
            .put_parameter()
            .name(param)
            .value(ami)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
        {
            Ok(out) => ui.say(
                &last.name,
                &format!(
                    "Published {ami} to SSM parameter {param} in {region} (version {})",
                    out.version()
                ),
            ),
            Err(e) => {
                ui.error(
                    &last.name,
                    &format!(
                        "-publish-ssm {param} in {region}: {}",
                        AwsError::new("PutParameter", e)
                    ),
                );
                all = false;
            }
        }
    }
    all
}
