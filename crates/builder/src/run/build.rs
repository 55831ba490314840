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
use bakery_core::pipeline::{AskFn, InFlight, RunControl, SETTLE_DEADLINE};
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
    let access = journal::RunAccess::new(
        config
            .endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .as_deref(),
        std::env::var("AWS_PROFILE").ok().as_deref(),
    );
    // The command line carries `-var` values: a sensitive one is masked like everything else printed.
    let command_line = ui.mask(&config.command_line);
    let journal = match Journal::create_for(&state, &run_id, &command_line, access) {
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
        in_flight: InFlight::new(),
        settle_deadline: SETTLE_DEADLINE,
    };
    let mut sdk = SdkConfigs::default();
    let mut finished: Vec<Finished> = Vec::new();
    let mut passed: Option<String> = None;
    let mut failed = false;
    let mut interrupted_after_success = false;
    'templates: for (g, group) in checked.groups.iter().enumerate() {
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
            in_flight: ctl.in_flight.clone(),
        };
        let results = run_template(config, &loaded, &shared, &ctl, &mut sdk).await;
        // The build region's AMI of the first build that succeeded.
        passed = results
            .iter()
            .find(|f| f.error.is_none())
            .and_then(|f| f.amis.get(&f.region).cloned());
        let any_failed = results.iter().any(|f| f.error.is_some());
        finished.extend(results);
        if any_failed {
            failed = true;
            break;
        }
        if cancel.is_cancelled() {
            // Every build so far succeeded; the interrupt stops what has not started.
            if g + 1 < checked.groups.len() {
                failed = true;
                break;
            }
            interrupted_after_success = true;
        }
    }
    summarize(ui, &finished);
    if !failed && let Some(param) = &config.publish_ssm {
        failed |= !publish_ssm(ui, &mut sdk, config, param, &finished).await;
    }
    if interrupted_after_success {
        ui.error(
            "bake",
            "Interrupt received after every build had succeeded: nothing was undone; the AMIs listed above are kept and the temporary resources were removed.",
        );
    }
    if let Ok(j) = Arc::try_unwrap(journal) {
        let left = j.outstanding();
        if let Some(path) = j.close() {
            say_what_is_left(ui, &run_id, &left, &path);
            failed = true;
        }
    }
    Ok(Outcome::from_failed(failed))
}

/// After a run that could not clean up everything: every resource left (kind, id, region), each create
/// call whose answer never came, and the exact command that removes them.
fn say_what_is_left(ui: &Ui, run_id: &str, left: &[journal::Entry], path: &std::path::Path) {
    let mut lines = vec![format!(
        "Run {run_id} left these resources behind (journal: {}):",
        path.display()
    )];
    for e in left {
        lines.push(if e.event == journal::Event::Intent {
            format!(
                "  {} in {}: the create call was sent and its answer never came (found by tag)",
                e.kind.label(),
                e.region
            )
        } else {
            format!("  {} {} ({})", e.kind.label(), e.id, e.region)
        });
    }
    lines.push(format!("Remove them with: bake cleanup --run-id {run_id}"));
    ui.error("bake", &lines.join("\n"));
}
