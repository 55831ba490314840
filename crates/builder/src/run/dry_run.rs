//! `--dry-run`: every build's plan, derived from its steps with read-only calls; nothing is created.

use super::config::BuildConfig;
use super::context::{SdkConfigs, Shared, context};
use super::jobs::Checked;
use super::summary::Outcome;
use crate::amazon_ebs::{self, state::SourceImage};
use bakery_core::poll::ec2::WaitRegistry;
use bakery_core::ui::Ui;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Stands in for the AMI an earlier template builds, in a dry run with `-pass-ami`.
const PREVIOUS_AMI: &str = "<AMI of the previous template>";

/// Prints the plan of every build of `checked`.
pub async fn dry_run(config: &BuildConfig, checked: &Checked, ui: &Ui) -> Outcome {
    let mut sdk = SdkConfigs::default();
    let shared = Shared {
        ui,
        journal: None,
        run_id: "dry-run",
        cancel: CancellationToken::new(),
        cancel_cleanup: CancellationToken::new(),
        on_error: config.on_error,
        waits: Arc::new(WaitRegistry::new()),
        in_flight: bakery_core::pipeline::InFlight::new(),
    };
    let mut failed = false;
    for (i, job) in checked.jobs() {
        let from_previous = i > 0 && config.pass_ami.is_some();
        let extra: Vec<(String, String)> = match &config.pass_ami {
            Some(var) if from_previous => vec![(var.clone(), PREVIOUS_AMI.to_string())],
            _ => vec![],
        };
        let Ok(loaded) = job.load(config, &extra) else {
            return Outcome::Failed;
        };
        ui.plain(&format!(
            "Template {} (dry run: nothing is created)",
            job.describe()
        ));
        for b in &loaded.builds {
            let cx = context(
                config,
                &shared,
                job.build_name(&b.rendered_name),
                b,
                &mut sdk,
            )
            .await;
            let source = from_previous.then(|| SourceImage {
                id: PREVIOUS_AMI.to_string(),
                name: "built by the previous template".to_string(),
                ..Default::default()
            });
            match amazon_ebs::plan(&cx, source).await {
                Ok(lines) => {
                    for l in &lines {
                        ui.message(&cx.name, l);
                    }
                }
                Err((step, e)) => {
                    ui.error(&cx.name, &format!("{step}: {e}"));
                    failed = true;
                }
            }
        }
    }
    Outcome::from_failed(failed)
}
