//! Issue 16 item 4 on the lab: `rollout setup --dry-run` and `rollout plan` print what would change as a
//! diff — `+` added, `-` removed, a `-`/`+` pair for a setting that goes from one value to another,
//! context lines (two spaces) for what stays — with reads only; `--json` carries the same lines as
//! `diff` (`op`, `resource`, `detail`, `from`/`to`), and setup's `changes` their `before`/`after`.

use super::common;

use bakery_lab::Lab;
use bakery_rollout::config::Overrides;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const ENV: &str = "staging";

fn app_name(lab: &Lab) -> String {
    common::short_app_name(lab, 'd')
}

/// A classic-ELB manifest with DNS and a key pair, its health check on `path`, as `dir/rollout.json`.
fn classic_manifest(dir: &Path, app: &str, zone: &str, path: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/staging.pub"), format!("{PUBLIC_KEY}\n")).unwrap();
    write_manifest(
        dir,
        &json!({
            "app": app,
            "region": "us-east-1",
            "defaults": {
                "load_balancer": {"kind": "classic", "health_check": {"path": path}},
                "dns": {"hosted_zone_id": zone, "domain": format!("{app}.test"),
                        "load_balancer_zone_id": "Z35SXDOTRQ7X7K"},
                "key_pair": {"public_key_file": "keys/{env}.pub"},
                "network": {"availability_zones": ["us-east-1a", "us-east-1b"]},
                "capacity": {"min": 1, "max": 4, "desired": 2},
                "timeouts": {"health_seconds": 60, "drain_seconds": 30, "retire_seconds": 30,
                             "rollback_seconds": 30}
            },
            "environments": {"staging": {}}
        }),
    )
}

/// An ALB manifest, its target group's health check on `path`, as `dir/rollout.json`.
fn alb_manifest(dir: &Path, app: &str, path: &str) -> PathBuf {
    write_manifest(
        dir,
        &json!({
            "app": app,
            "region": "us-east-1",
            "defaults": {
                "load_balancer": {"kind": "alb", "instance_port": 8080,
                                  "health_check": {"path": path, "interval_seconds": 10}},
                "network": {"availability_zones": ["us-east-1a", "us-east-1b"]}
            },
            "environments": {"staging": {}}
        }),
    )
}

/// The summary a command printed after its progress lines: from the line that starts with `first` on.
fn summary<'a>(out: &'a str, first: &str) -> Vec<&'a str> {
    out.lines().skip_while(|l| !l.starts_with(first)).collect()
}

/// The summary's `+` and `-` lines.
fn changed<'a>(summary: &[&'a str]) -> Vec<&'a str> {
    summary
        .iter()
        .copied()
        .filter(|l| l.starts_with("+ ") || l.starts_with("- "))
        .collect()
}

/// Runs the command line; exit 0 expected. Its stdout.
async fn ok(lab: &Lab, args: &[&str]) -> String {
    let (code, out, err) = cli(lab, args).await;
    assert_eq!(code, 0, "rollout {args:?}\n{out}\n{err}");
    out
}

/// `--json`'s document.
async fn json_doc(lab: &Lab, args: &[&str]) -> Value {
    let out = ok(lab, args).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_dry_run_prints_what_it_would_create_as_a_diff_with_reads_only() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let zone = hosted_zone(&c, &format!("{app}.test")).await;
    let manifest = classic_manifest(&temp_dir(lab, &app), &app, &zone, "/health");
    let m = manifest.to_str().unwrap();
    let lb = format!("elb-{app}-{ENV}");

    lab.reset_request_counts();
    let out = ok(lab, &["--manifest", m, "setup", "--dry-run"]).await;
    let counts = lab.request_counts();
    assert_eq!(writes(&counts), Vec::<String>::new(), "{counts:?}");
    let s = summary(&out, "Setup of");
    assert!(
        s[0].contains("(dry run): changes needed (9 created, 0 updated, 1 unchanged"),
        "{out}"
    );
    let want = [
        format!("+ key pair {app}-{ENV}: imported "),
        format!("+ security group elb-{app}-{ENV}: in vpc-"),
        format!("+ ingress of elb-{app}-{ENV}: tcp/80 from 0.0.0.0/0"),
        format!("+ security group {app}-{ENV}: in vpc-"),
        format!("+ ingress of {app}-{ENV}: tcp/80 from elb-{app}-{ENV} (new)"),
        format!("+ classic load balancer {lb}: HTTP:80 -> HTTP:80, zones us-east-1a, us-east-1b"),
        format!(
            "+ health check of {lb}: HTTP:80/health every 30 s, timeout 5 s, healthy 2 / unhealthy 2"
        ),
        format!("+ connection draining of {lb}: 300 s"),
        format!("+ DNS {ENV}.{app}.test. A ALIAS: -> {lb}"),
    ];
    let lines = changed(&s);
    assert_eq!(lines.len(), want.len(), "{out}");
    for (line, want) in lines.iter().zip(&want) {
        assert!(line.starts_with(want.as_str()), "{want}\n{out}");
    }
    // The VPC is context: setup never creates or changes one.
    assert!(
        s.iter()
            .any(|l| l.starts_with("  VPC vpc-") && l.ends_with(": the default VPC")),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "colour off a terminal:\n{out}");

    // --json: the same lines as data, and nothing was created.
    let doc = json_doc(lab, &["--manifest", m, "--json", "setup", "--dry-run"]).await;
    let diff = doc["diff"].as_array().unwrap();
    assert_eq!(diff.len(), doc["changes"].as_array().unwrap().len());
    assert_eq!(
        diff.iter().filter(|d| d["op"] == "add").count(),
        want.len(),
        "{doc:#}"
    );
    assert!(
        diff.iter()
            .all(|d| d["op"] == "add" || d["resource"].as_str().unwrap().starts_with("VPC ")),
        "{doc:#}"
    );
    let lbs = c
        .elb
        .describe_load_balancers()
        .load_balancer_names(&lb)
        .send()
        .await;
    assert!(lbs.is_err(), "a dry run created {lb}: {lbs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_health_check_path_is_the_one_change_setup_shows() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let zone = hosted_zone(&c, &format!("{app}.test")).await;
    let dir = temp_dir(lab, &app);
    let manifest = classic_manifest(&dir, &app, &zone, "/health");
    let m = manifest.to_str().unwrap();
    let lb = format!("elb-{app}-{ENV}");

    // A real setup prints what it created the same way; a dry run after it, no change at all.
    let out = ok(lab, &["--manifest", m, "setup"]).await;
    assert_eq!(changed(&summary(&out, "Setup of")).len(), 9, "{out}");
    let out = ok(lab, &["--manifest", m, "setup", "--dry-run"]).await;
    let s = summary(&out, "Setup of");
    assert!(s[0].contains(": nothing to change"), "{out}");
    assert_eq!(changed(&s), Vec::<&str>::new(), "{out}");

    // The health check path changes in the manifest: exactly that setting is a -/+ pair, the rest context.
    classic_manifest(&dir, &app, &zone, "/api/status/health");
    lab.reset_request_counts();
    let out = ok(lab, &["--manifest", m, "setup", "--dry-run"]).await;
    let counts = lab.request_counts();
    assert_eq!(writes(&counts), Vec::<String>::new(), "{counts:?}");
    let s = summary(&out, "Setup of");
    assert!(
        s[0].contains("(dry run): changes needed (0 created, 1 updated, "),
        "{out}"
    );
    let pair = [
        format!(
            "- health check of {lb}: HTTP:80/health every 30 s, timeout 5 s, healthy 2 / unhealthy 2"
        ),
        format!(
            "+ health check of {lb}: HTTP:80/api/status/health every 30 s, timeout 5 s, healthy 2 / unhealthy 2"
        ),
    ];
    assert_eq!(changed(&s), pair, "{out}");
    for context in [
        format!("  key pair {app}-{ENV}: matches "),
        format!("  security group elb-{app}-{ENV}: sg-"),
        format!("  classic load balancer {lb}: "),
        format!("  connection draining of {lb}: 300 s"),
        format!("  DNS {ENV}.{app}.test. A ALIAS: -> "),
    ] {
        assert!(
            s.iter().any(|l| l.starts_with(&context)),
            "{context}\n{out}"
        );
    }
    let doc = json_doc(lab, &["--manifest", m, "--json", "setup", "--dry-run"]).await;
    let changes: Vec<&Value> = doc["diff"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["op"] != "same")
        .collect();
    assert_eq!(changes.len(), 1, "{doc:#}");
    assert_eq!(changes[0]["op"], "change");
    assert_eq!(changes[0]["resource"], format!("health check of {lb}"));
    assert_eq!(
        changes[0]["from"],
        pair[0][format!("- health check of {lb}: ").len()..]
    );
    assert_eq!(
        changes[0]["to"],
        pair[1][format!("+ health check of {lb}: ").len()..]
    );
    let hc = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "would update")
        .unwrap();
    assert_eq!(
        (&hc["before"], &hc["after"]),
        (&changes[0]["from"], &changes[0]["to"])
    );

    // The real setup changes exactly that, and says so the same way; then nothing is left to change.
    let out = ok(lab, &["--manifest", m, "setup"]).await;
    assert_eq!(changed(&summary(&out, "Setup of")), pair, "{out}");
    let d = c
        .elb
        .describe_load_balancers()
        .load_balancer_names(&lb)
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.load_balancer_descriptions()[0]
            .health_check()
            .map(|h| h.target()),
        Some("HTTP:80/api/status/health")
    );
    let out = ok(lab, &["--manifest", m, "setup", "--dry-run"]).await;
    assert_eq!(
        changed(&summary(&out, "Setup of")),
        Vec::<&str>::new(),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alb_target_group_health_check_change_is_a_pair() {
    let (lab, _serial) = lab().await;
    let dir = temp_dir(lab, "alb-diff");
    let e = set_up_alb(lab, ENV, app_name(lab), |_, app| {
        alb_manifest(&dir, app, "/healthz")
    })
    .await;
    let m = e.manifest.to_str().unwrap();
    let tg = format!("tg-{}-{ENV}", e.app);
    let out = ok(lab, &["--manifest", m, "setup", "--dry-run"]).await;
    assert_eq!(
        changed(&summary(&out, "Setup of")),
        Vec::<&str>::new(),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("  target group {tg}: arn:"))
                && l.ends_with(
                    ", health HTTP:8080/healthz every 10 s, timeout 5 s, healthy 2 / unhealthy 2"
                )),
        "{out}"
    );

    alb_manifest(&dir, &e.app, "/ready");
    lab.reset_request_counts();
    let out = ok(lab, &["--manifest", m, "setup", "--dry-run"]).await;
    assert_eq!(writes(&lab.request_counts()), Vec::<String>::new());
    assert_eq!(
        changed(&summary(&out, "Setup of")),
        [
            format!(
                "- target group {tg}: health HTTP:8080/healthz every 10 s, timeout 5 s, healthy 2 / unhealthy 2"
            ),
            format!(
                "+ target group {tg}: health HTTP:8080/ready every 10 s, timeout 5 s, healthy 2 / unhealthy 2"
            ),
        ],
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_diffs_the_live_group_against_the_new_one() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let zone = hosted_zone(&c, &format!("{app}.test")).await;
    let manifest = classic_manifest(&temp_dir(lab, &app), &app, &zone, "/health");
    let m = manifest.to_str().unwrap();
    let lb = format!("elb-{app}-{ENV}");
    let (s, buf) = session(lab, &manifest, ENV, Overrides::default()).await;
    s.setup(false)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", buf.text()));
    let ami1 = register_ami(lab, &c, "ami-1").await;
    let ami2 = register_ami(lab, &c, "ami-2").await;
    let new_group = format!("asg-{app}-{ENV}-<timestamp>");
    let new_template = format!("lt-{app}-{ENV}-<timestamp>");

    // Before the first rollout: only additions, and the load balancer serves no group yet.
    let out = ok(lab, &["--manifest", m, "plan", "--ami", &ami1]).await;
    assert_eq!(
        changed(&summary(&out, "Plan for")),
        [
            format!("+ launch template {new_template}: {ami1}, t3.micro"),
            format!("+ group {new_group}: {ami1}, t3.micro, desired 2 (min 1, max 4)"),
            format!("- load balancer {lb}: serves no group"),
            format!("+ load balancer {lb}: serves {new_group} ({ami1})"),
        ],
        "{out}"
    );

    s.deploy(&ami1)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", buf.text()));
    let groups = env_groups(&c, &app, ENV).await;
    assert_eq!(groups.len(), 1);
    let g1 = groups[0].auto_scaling_group_name().unwrap().to_string();
    let lt1 = groups[0]
        .launch_template()
        .and_then(|l| l.launch_template_name())
        .unwrap()
        .to_string();

    // After it: the live group goes (with its launch template), the new one comes, the load balancer moves.
    lab.reset_request_counts();
    let out = ok(lab, &["--manifest", m, "plan", "--ami", &ami2]).await;
    let counts = lab.request_counts();
    assert_eq!(writes(&counts), Vec::<String>::new(), "{counts:?}");
    let s2 = summary(&out, "Plan for");
    assert_eq!(
        changed(&s2),
        [
            format!("+ launch template {new_template}: {ami2}, t3.micro"),
            format!("+ group {new_group}: {ami2}, t3.micro, desired 2 (min 1, max 4)"),
            format!("- load balancer {lb}: serves {g1} ({ami1})"),
            format!("+ load balancer {lb}: serves {new_group} ({ami2})"),
            format!("- group {g1}: {ami1}, t3.micro, 2 instance(s) (min 1, max 4, desired 2)"),
            format!("- launch template {lt1}: {ami1}, t3.micro"),
        ],
        "{out}"
    );
    // The summary: what is live, the changes, then the steps as before.
    let at = |prefix: &str| {
        s2.iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}\n{out}"))
    };
    assert!(
        at(&format!("  live: {g1} [{ami1}]"))
            < at("Changes (2 to add, 1 to change, 2 to remove, 0 unchanged):")
    );
    assert!(at("Changes (") < at("Steps:"));
    assert!(at("Steps:") < at("  1. create launch template "));
    assert!(at("  4. retire ") > at("Steps:"), "{out}");

    // --json: the plan's `diff`.
    let doc = json_doc(lab, &["--manifest", m, "--json", "plan", "--ami", &ami2]).await;
    let diff = doc["diff"].as_array().unwrap();
    let op = |resource: &str| {
        diff.iter()
            .find(|d| d["resource"] == resource)
            .unwrap_or_else(|| panic!("{resource}: {doc:#}"))
    };
    assert_eq!(op(&format!("group {g1}"))["op"], "remove");
    assert_eq!(op(&format!("group {new_group}"))["op"], "add");
    let moved = op(&format!("load balancer {lb}"));
    assert_eq!(moved["op"], "change");
    assert_eq!(moved["from"], format!("serves {g1} ({ami1})"));
    assert_eq!(moved["to"], format!("serves {new_group} ({ami2})"));
    assert_eq!(doc["steps"].as_array().unwrap().len(), 4);
    common::assert_settled(
        &c,
        &app,
        ENV,
        "plan_diffs_the_live_group_against_the_new_one",
    )
    .await;
}
