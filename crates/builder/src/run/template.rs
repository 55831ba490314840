//! One template's builds (of all its jobs), run in parallel up to `-parallel-builds`: each build's steps,
//! its errors and cleanup failures reported, then its post-processors.

use super::config::BuildConfig;
use super::context::{SdkConfigs, Shared, context};
use super::jobs::Job;
use super::post_process::post_process;
use super::summary::Finished;
use crate::amazon_ebs;
use crate::util::{human_duration, join_all};
use bakery_core::pipeline::RunControl;
use bakery_template::Loaded;
use std::time::Instant;
use tokio::sync::Semaphore;

/// Runs every build of `loaded` (a template's jobs, loaded) under `ctl`; the builds in the order loaded.
pub(crate) async fn run_template(
    config: &BuildConfig,
    loaded: &[(&Job, Loaded)],
    shared: &Shared<'_>,
    ctl: &RunControl,
    sdk: &mut SdkConfigs,
) -> Vec<Finished> {
    let limit = if config.debug {
        1
    } else if config.parallel_builds == 0 {
        usize::MAX >> 4
    } else {
        config.parallel_builds
    };
    let sem = Semaphore::new(limit);
    let ui = shared.ui;
    let mut ctxs = Vec::new();
    // Every build of every job shares the one -parallel-builds limit.
    for (job, b) in loaded
        .iter()
        .flat_map(|(j, l)| l.builds.iter().map(move |b| (j, b)))
    {
        ctxs.push(context(config, shared, job.build_name(&b.rendered_name), b, sdk).await);
    }
    let runs = ctxs.iter().map(|cx| {
        let sem = &sem;
        async move {
            let _permit = sem.acquire().await.ok();
            let start = Instant::now();
            let res = amazon_ebs::run(cx, ctl).await;
            let elapsed = start.elapsed();
            let mut error = None;
            if let Some((step, e)) = &res.report.error {
                let msg = format!("{e}");
                ui.error(
                    &cx.name,
                    &format!(
                        "Build '{}' errored after {}: {msg}",
                        cx.name,
                        human_duration(elapsed)
                    ),
                );
                tracing::debug!(step, "build failed");
                error = Some(msg);
            }
            for f in &res.report.cleanup_failures {
                ui.error(
                    &cx.name,
                    &format!("cleanup of {} failed: {}", f.step, f.error),
                );
            }
            if res.report.cleanup_skipped {
                ui.error(
                    &cx.name,
                    "Cleanup was skipped; `bake cleanup` removes what this run left.",
                );
            }
            if error.is_none()
                && let Err(e) = post_process(config, cx, &res.amis, &res.late).await
            {
                ui.error(&cx.name, &format!("Post-processor failed: {e}"));
                error = Some(e);
            }
            Finished {
                name: cx.name.clone(),
                region: cx.region().to_string(),
                amis: res.amis,
                error,
                elapsed,
            }
        }
    });
    join_all(runs).await
}
