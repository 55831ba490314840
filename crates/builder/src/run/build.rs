//! A whole `bake build` run: the run journal, each template's builds in order (a template's AMI passed to
//! the next with `-pass-ami`), the artifact summary, `--publish-ssm`, and what was left behind.

use super::config::BuildConfig;
use super::context::{SdkConfigs, Shared};
use super::jobs::{Checked, print_diagnostics};
use super::post_process::publish_ssm;
use super::summary::{Finished, Outcome, summarize};
use super::template::run_template;
use crate::journal::{self, Journal};
use bakery_core::frontend::interrupt::Tokens;
use bakery_core::pipeline::{AskFn, RunControl};
use bakery_core::poll::ec2::WaitRegistry;
use bakery_core::ui::Ui;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The longest one step's cleanup may take.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(20 * 60);

/// The run journal could not be created; nothing was.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the run journal in {}: {source}", .dir.display())]
pub struct JournalError {
    /// The state directory.
    pub dir: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// Runs the builds of `checked` (templates in order, a template's builds in parallel), cleans up whatever
/// happens, runs post-processors and prints the artifacts as Packer does. `interrupts` stop the run (its
/// cleanup follows) and then its cleanup; `ask` answers `-on-error=ask`.
pub async fn build(
    config: &BuildConfig,
    checked: &Checked,
    ui: &Ui,
    interrupts: Tokens,
    ask: Option<AskFn>,
) -> Result<Outcome, JournalError> {
    let run_id = uuid::Uuid::new_v4().to_string();
    let state = journal::state_dir();
    let journal = match Journal::create(&state, &run_id, &config.command_line) {
        Ok(j) => Arc::new(j),
        Err(source) => return Err(JournalError { dir: state, source }),
    };
    let Tokens {
        cancel,
        cancel_cleanup,
    } = interrupts;
    let ctl = RunControl {
        cancel: cancel.clone(),
        cancel_cleanup: cancel_cleanup.clone(),
        on_error: config.on_error,
        cleanup_deadline: CLEANUP_DEADLINE,
        ask,
    };
    let mut sdk = SdkConfigs::default();
    let mut finished: Vec<Finished> = Vec::new();
    let mut passed: Option<String> = None;
    let mut failed = false;
    'templates: for group in &checked.groups {
        let extra: Vec<(String, String)> = match (&config.pass_ami, &passed) {
            (Some(var), Some(ami)) => vec![(var.clone(), ami.clone())],
            _ => vec![],
        };
        let mut loaded = Vec::new();
        for job in group {
            match job.load(config, &extra) {
                Ok(l) => loaded.push((job, l)),
                Err(d) => {
                    print_diagnostics(job, &d);
                    failed = true;
                    break 'templates;
                }
            }
        }
        let shared = Shared {
            ui,
            journal: Some(journal.clone()),
            run_id: &run_id,
            cancel: cancel.clone(),
            cancel_cleanup: cancel_cleanup.clone(),
            on_error: config.on_error,
            waits: Arc::new(WaitRegistry::new()),
        };
        let results = run_template(config, &loaded, &shared, &ctl, &mut sdk).await;
        // The build region's AMI of the first build that succeeded.
        passed = results
            .iter()
            .find(|f| f.error.is_none())
            .and_then(|f| f.amis.get(&f.region).cloned());
        let any_failed = results.iter().any(|f| f.error.is_some());
        finished.extend(results);
        if any_failed || cancel.is_cancelled() {
            failed = true;
            break;
        }
    }
    summarize(ui, &finished);
    if !failed && let Some(param) = &config.publish_ssm {
        failed |= !publish_ssm(ui, &mut sdk, config, param, &finished).await;
    }
    if let Ok(j) = Arc::try_unwrap(journal)
        && let Some(path) = j.close()
    {
        ui.error(
            "bake",
            &format!(
                "Some resources were left behind (journal: {}). Run `bake cleanup` to remove them.",
                path.display()
            ),
        );
        failed = true;
    }
    Ok(Outcome::from_failed(failed))
}
