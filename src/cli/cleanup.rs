//! `bake cleanup`'s front end: its options and its output. The work is
//! [`bakery_builder::cleanup::clean_up`].

use bakery_builder::cleanup::{CleanupOptions, Report, clean_up};
use bakery_core::aws::AwsSettings;
use clap::Args;

/// `bake cleanup` options.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Only this run (its journal, or, without one, the temporary resources tagged with its id): the full
    /// id or the short one bake prints.
    #[arg(long = "run-id", value_name = "ID")]
    pub run_id: Option<String>,
    /// List what would be removed; change nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// An endpoint URL for every AWS service (like AWS_ENDPOINT_URL).
    #[arg(long = "endpoint-url", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The region for tag searches of runs without a journal; with --older-than, each region to search
    /// (repeat the flag for several).
    #[arg(long, value_name = "REGION")]
    pub region: Vec<String>,
    /// Also remove bake's temporary resources of runs with no journal on this machine (a CI runner that
    /// died) whose every resource is older than this (`2h`, `90m`, `3600`), in each --region.
    #[arg(long = "older-than", value_name = "DURATION", value_parser = super::rollout::parse_duration)]
    pub older_than: Option<std::time::Duration>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `bake cleanup`; returns the exit code.
pub async fn run(args: CleanupArgs) -> i32 {
    let opts = CleanupOptions {
        run_id: args.run_id.clone(),
        dry_run: args.dry_run,
        older_than: args.older_than,
        regions: args.region.clone(),
        aws: AwsSettings {
            endpoint_url: args.endpoint_url.clone(),
            region: args.region.first().cloned(),
            ..Default::default()
        },
    };
    let Report {
        removed,
        already_gone,
        failures,
    } = match clean_up(&opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bake cleanup: {e}");
            return 1;
        }
    };
    if args.json {
        let v = serde_json::json!({
            "dry_run": args.dry_run,
            "removed": removed.iter().map(|e| serde_json::json!({"kind": e.kind, "id": e.id, "region": e.region})).collect::<Vec<_>>(),
            "already_gone": already_gone.iter().map(|e| serde_json::json!({"kind": e.kind, "id": e.id, "region": e.region})).collect::<Vec<_>>(),
            "failures": failures.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for e in &removed {
            println!("{verb} {} {} ({})", e.kind.label(), e.id, e.region);
        }
        for e in &already_gone {
            println!("already gone: {} {} ({})", e.kind.label(), e.id, e.region);
        }
        if removed.is_empty() && already_gone.is_empty() {
            println!("nothing to clean up");
        }
        for f in &failures {
            eprintln!("bake cleanup: {f}");
        }
    }
    if failures.is_empty() { 0 } else { 1 }
}
