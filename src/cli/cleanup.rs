//! `bake cleanup`: remove what runs that did not finish (SIGKILL, a crash, `-on-error=abort`) left behind.
//!
//! It works from the run journals of runs that are no longer running (a live run holds its journal's lock
//! and is never touched), and from bakery's tags for those runs (`bakery:run-id`): instances are terminated,
//! security groups and key pairs deleted, unfinished AMIs deregistered with exactly the snapshots of their
//! block-device mappings. AMIs of successful builds are never touched. Running it twice is harmless.

use aws_sdk_ec2::types::{Filter, InstanceStateName};
use bakery_builder::journal::{self, Entry, Kind};
use bakery_core::aws::{AwsSettings, Clients, ErrorClass, load_sdk_config};
use bakery_core::aws_err::{AwsError, AwsResultExt};
use bakery_core::poll::{Poll, PollError, Poller};
use clap::Args;
use std::collections::{BTreeMap, BTreeSet};
use tokio_util::sync::CancellationToken;

/// `bake cleanup` options.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Only this run (its journal, or, without one, the temporary resources tagged with its id).
    #[arg(long = "run-id", value_name = "ID")]
    pub run_id: Option<String>,
    /// List what would be removed; change nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// An endpoint URL for every AWS service (like AWS_ENDPOINT_URL).
    #[arg(long = "endpoint-url", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The region for tag searches of runs without a journal.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn gone(e: &AwsError) -> bool {
    e.class() == ErrorClass::NotFound
}

async fn remove(c: &Clients, e: &Entry) -> Result<(), AwsError> {
    let ec2 = &c.ec2;
    match e.kind {
        Kind::Instance => {
            match ec2
                .terminate_instances()
                .instance_ids(&e.id)
                .send()
                .await
                .aws("TerminateInstances")
            {
                Err(err) if gone(&err) => return Ok(()),
                Err(err) => return Err(err),
                Ok(_) => {}
            }
            let id = e.id.clone();
            Poller::instance_terminated()
                .wait(
                    &format!("instance {id} to terminate"),
                    &CancellationToken::new(),
                    |_, _| {},
                    || {
                        let ec2 = ec2.clone();
                        let id = id.clone();
                        async move {
                            bakery_builder::amazon_ebs::run_instance::describe_one(
                                &ec2,
                                &id,
                                InstanceStateName::Terminated,
                            )
                            .await
                            .or_else(|e| {
                                if matches!(e, PollError::NotFound) {
                                    Ok(Poll::Ready(aws_sdk_ec2::types::Instance::builder().build()))
                                } else {
                                    Err(e)
                                }
                            })
                        }
                    },
                )
                .await
                .map_err(|w| AwsError {
                    op: "DescribeInstances",
                    code: None,
                    detail: w.to_string(),
                })?;
            Ok(())
        }
        Kind::SecurityGroup => bakery_builder::amazon_ebs::security_group::delete_when_free(
            ec2,
            &e.id,
            &CancellationToken::new(),
        )
        .await
        .map_err(|w| AwsError {
            op: "DeleteSecurityGroup",
            code: None,
            detail: w.to_string(),
        }),
        Kind::KeyPair => match ec2
            .delete_key_pair()
            .key_name(&e.id)
            .send()
            .await
            .aws("DeleteKeyPair")
        {
            Err(err) if !gone(&err) => Err(err),
            _ => Ok(()),
        },
        Kind::Image => {
            // The journal may predate the snapshot ids (killed while waiting): ask the image itself.
            let snaps = match ec2
                .describe_images()
                .image_ids(&e.id)
                .send()
                .await
                .aws("DescribeImages")
            {
                Ok(o) => o
                    .images()
                    .first()
                    .map(bakery_builder::amazon_ebs::ec2::image_snapshots)
                    .unwrap_or_default(),
                Err(err) if gone(&err) => vec![],
                Err(err) => return Err(err),
            };
            bakery_builder::amazon_ebs::ec2::deregister_with_snapshots(ec2, &e.id, &snaps).await
        }
        Kind::Snapshot => match ec2
            .delete_snapshot()
            .snapshot_id(&e.id)
            .send()
            .await
            .aws("DeleteSnapshot")
        {
            Err(err) if !gone(&err) => Err(err),
            _ => Ok(()),
        },
        Kind::LaunchTemplate => match ec2
            .delete_launch_template()
            .launch_template_id(&e.id)
            .send()
            .await
            .aws("DeleteLaunchTemplate")
        {
            Err(err) if !gone(&err) => Err(err),
            _ => Ok(()),
        },
    }
}

/// Temporary resources tagged with `run_id` in `c`'s region that are still there.
async fn tagged(c: &Clients, run_id: &str) -> Result<Vec<Entry>, AwsError> {
    let f = || {
        Filter::builder()
            .name(format!("tag:{}", bakery_core::tags::RUN_ID))
            .values(run_id)
            .build()
    };
    let mut out = Vec::new();
    let entry = |kind, id: &str| Entry {
        event: journal::Event::Created,
        kind,
        region: c.region.clone(),
        id: id.to_string(),
        build: String::new(),
    };
    let inst = c
        .ec2
        .describe_instances()
        .filters(f())
        .send()
        .await
        .aws("DescribeInstances")?;
    for i in inst.reservations().iter().flat_map(|r| r.instances()) {
        let state = i.state().and_then(|s| s.name()).cloned();
        if state != Some(InstanceStateName::Terminated)
            && let Some(id) = i.instance_id()
        {
            out.push(entry(Kind::Instance, id));
        }
    }
    let sgs = c
        .ec2
        .describe_security_groups()
        .filters(f())
        .send()
        .await
        .aws("DescribeSecurityGroups")?;
    for g in sgs.security_groups() {
        if let Some(id) = g.group_id() {
            out.push(entry(Kind::SecurityGroup, id));
        }
    }
    let keys = c
        .ec2
        .describe_key_pairs()
        .filters(f())
        .send()
        .await
        .aws("DescribeKeyPairs")?;
    for k in keys.key_pairs() {
        if let Some(n) = k.key_name() {
            out.push(entry(Kind::KeyPair, n));
        }
    }
    let lts = c
        .ec2
        .describe_launch_templates()
        .filters(f())
        .send()
        .await
        .aws("DescribeLaunchTemplates")?;
    for t in lts.launch_templates() {
        if let Some(id) = t.launch_template_id() {
            out.push(entry(Kind::LaunchTemplate, id));
        }
    }
    Ok(out)
}

/// The order resources must go in: instances first (they hold the groups), AMIs before their snapshots.
fn order(k: Kind) -> u8 {
    match k {
        Kind::Instance => 0,
        Kind::Image => 1,
        Kind::Snapshot => 2,
        Kind::SecurityGroup => 3,
        Kind::KeyPair => 4,
        Kind::LaunchTemplate => 5,
    }
}

/// Runs `bake cleanup`; returns the exit code.
pub async fn run(args: CleanupArgs) -> i32 {
    let state = journal::state_dir();
    let mut runs = match journal::left_runs(&state) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bake cleanup: reading {}: {e}", state.display());
            return 1;
        }
    };
    if let Some(id) = &args.run_id {
        runs.retain(|r| &r.run_id == id);
    }
    let settings = AwsSettings {
        endpoint_url: args.endpoint_url.clone(),
        region: args.region.clone(),
        ..Default::default()
    };
    let sdk = load_sdk_config(&settings).await;
    let mut clients: BTreeMap<String, Clients> = BTreeMap::new();
    let mut client = |region: &str| {
        clients
            .entry(region.to_string())
            .or_insert_with(|| Clients::for_region(&sdk, Some(region), None))
            .clone()
    };
    let mut removed: Vec<Entry> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    // Runs named only by id (no journal here): their tagged temporary resources.
    let mut work: Vec<(Option<usize>, Vec<Entry>)> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let mut entries = r.outstanding.clone();
        let regions: BTreeSet<String> = entries.iter().map(|e| e.region.clone()).collect();
        for region in regions {
            match tagged(&client(&region), &r.run_id).await {
                Ok(t) => {
                    for e in t {
                        if !entries.iter().any(|x| x.kind == e.kind && x.id == e.id) {
                            entries.push(e);
                        }
                    }
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        work.push((Some(i), entries));
    }
    if let Some(id) = &args.run_id
        && runs.is_empty()
    {
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        match tagged(&client(&region), id).await {
            Ok(t) => work.push((None, t)),
            Err(e) => failures.push(e.to_string()),
        }
    }
    for (run, mut entries) in work {
        entries.sort_by_key(|e| order(e.kind));
        for e in entries {
            if args.dry_run {
                removed.push(e);
                continue;
            }
            match remove(&client(&e.region), &e).await {
                Ok(()) => {
                    if let Some(i) = run {
                        runs[i].removed(&e);
                    }
                    removed.push(e);
                }
                Err(err) => failures.push(format!("{:?} {} in {}: {err}", e.kind, e.id, e.region)),
            }
        }
    }
    if !args.dry_run {
        for r in runs {
            r.finish();
        }
    }
    if args.json {
        let v = serde_json::json!({
            "dry_run": args.dry_run,
            "removed": removed.iter().map(|e| serde_json::json!({"kind": e.kind, "id": e.id, "region": e.region})).collect::<Vec<_>>(),
            "failures": failures,
        });
        println!("{v}");
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for e in &removed {
            println!("{verb} {} {} ({})", kind_name(e.kind), e.id, e.region);
        }
        if removed.is_empty() {
            println!("nothing to clean up");
        }
        for f in &failures {
            eprintln!("bake cleanup: {f}");
        }
    }
    if failures.is_empty() { 0 } else { 1 }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Instance => "instance",
        Kind::KeyPair => "key pair",
        Kind::SecurityGroup => "security group",
        Kind::Image => "AMI",
        Kind::Snapshot => "snapshot",
        Kind::LaunchTemplate => "launch template",
    }
}
