//! The `spot-fleet` strategy (seed 002) on the lab: fleet 1 → fleet 2 with exactly one open fleet after each
//! rollout, a new fleet that never turns healthy cancelled with the old one untouched, an interrupt, `plan`,
//! and manifest validation. moto 5.2.5's spot fleets are patched by the lab to do what AWS does
//! (`lab/py/moto_lab.py`, `patch_moto_spot_fleets`); the first test also proves the patch is in place.

use super::common;

use bakery_core::aws::Clients;
use bakery_lab::Lab;
use bakery_rollout::RolloutError;
use bakery_rollout::config::{Overrides, RolloutConfig};
use bakery_rollout::manifest::Manifest;
use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ENV: &str = "staging";

fn app_name(lab: &Lab) -> String {
    common::short_app_name(lab, 's')
}

fn spot_manifest(lab: &Lab, app: &str) -> PathBuf {
    let dir = temp_dir(lab, app);
    write_manifest(
        &dir,
        &json!({
            "app": app,
            "region": "us-east-1",
            "strategy": "spot-fleet",
            "defaults": {
                "load_balancer": {
                    "kind": "alb",
                    "port": 80,
                    "instance_port": 8080,
                    "health_check": {"path": "/healthz", "interval_seconds": 10, "timeout_seconds": 5},
                    "draining_seconds": 30
                },
                "network": {"availability_zones": ["us-east-1a", "us-east-1b"]},
                "instances": {"iam_instance_profile": "web"},
                "spot_fleet": {
                    "target_capacity": 2,
                    "instance_types": ["t3.micro", "t3a.micro"],
                    "allocation_strategy": "price-capacity-optimized",
                    "max_price": 0.05,
                    "iam_fleet_role": "aws-ec2-spot-fleet-tagging-role",
                    "fulfil_timeout_seconds": 30
                },
                "timeouts": {"health_seconds": 60, "min_healthy_seconds": 1, "drain_seconds": 30,
                             "retire_seconds": 30, "rollback_seconds": 30}
            },
            "environments": {"staging": {}}
        }),
    )
}

type Env = AlbEnv;

async fn set_up(lab: &'static Lab) -> Env {
    set_up_alb(lab, ENV, app_name(lab), spot_manifest).await
}

/// Every spot fleet request tagged for this app/env, whatever its state.
async fn env_fleets(e: &Env) -> Vec<aws_sdk_ec2::types::SpotFleetRequestConfig> {
    let out =
        e.c.ec2
            .describe_spot_fleet_requests()
            .send()
            .await
            .expect("DescribeSpotFleetRequests");
    out.spot_fleet_request_configs()
        .iter()
        .filter(|f| {
            let t = |k: &str| {
                f.tags()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value().map(str::to_string))
            };
            t("bakery:app").as_deref() == Some(e.app.as_str())
                && t("bakery:env").as_deref() == Some(ENV)
        })
        .cloned()
        .collect()
}

fn state(f: &aws_sdk_ec2::types::SpotFleetRequestConfig) -> String {
    f.spot_fleet_request_state()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

fn tag(f: &aws_sdk_ec2::types::SpotFleetRequestConfig, k: &str) -> Option<String> {
    f.tags()
        .iter()
        .find(|t| t.key() == Some(k))
        .and_then(|t| t.value().map(str::to_string))
}

async fn fleet_instances(c: &Clients, id: &str) -> Vec<String> {
    let mut v: Vec<String> = c
        .ec2
        .describe_spot_fleet_instances()
        .spot_fleet_request_id(id)
        .send()
        .await
        .expect("DescribeSpotFleetInstances")
        .active_instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn healthy_ids(e: &Env) -> BTreeSet<String> {
    tg_health(&e.c, &e.tg)
        .await
        .into_iter()
        .filter(|(_, s)| s == "healthy")
        .map(|(i, _)| i)
        .collect()
}

/// Exactly one open fleet of the environment, tagged live, on `ami`, as rollout requests it; its two
/// instances run `ami` with the environment's security group and are healthy in the target group, and
/// nothing else is. Returns the fleet id and its instances.
async fn assert_one_fleet_on(e: &Env, ami: &str) -> (String, Vec<String>) {
    let open: Vec<_> = env_fleets(e)
        .await
        .into_iter()
        .filter(|f| state(f) == "active")
        .collect();
    assert_eq!(open.len(), 1, "{open:#?}");
    let f = &open[0];
    let id = f.spot_fleet_request_id().unwrap().to_string();
    assert_eq!(tag(f, "bakery:rollout-state").as_deref(), Some("live"));
    assert_eq!(tag(f, "bakery:ami").as_deref(), Some(ami));
    assert_eq!(tag(f, "bakery:managed").as_deref(), Some("true"));
    assert!(tag(f, "bakery:run-id").is_some());
    assert_eq!(
        f.activity_status().map(|a| a.as_str()),
        Some("fulfilled"),
        "{f:#?}"
    );
    let cfg = f.spot_fleet_request_config().unwrap();
    assert_eq!(cfg.r#type().map(|t| t.as_str()), Some("maintain"));
    assert_eq!(cfg.target_capacity(), Some(2));
    assert_eq!(
        cfg.iam_fleet_role(),
        Some("arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role")
    );
    assert_eq!(
        cfg.allocation_strategy().map(|a| a.as_str()),
        Some("priceCapacityOptimized")
    );
    assert_eq!(cfg.spot_price(), Some("0.05"));
    let tgs: Vec<&str> = cfg
        .load_balancers_config()
        .and_then(|l| l.target_groups_config())
        .map(|t| t.target_groups().iter().filter_map(|g| g.arn()).collect())
        .unwrap_or_default();
    assert_eq!(tgs, vec![e.tg.as_str()]);

    let ids = fleet_instances(&e.c, &id).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    let healthy = healthy_ids(e).await;
    assert_eq!(
        healthy,
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        "the target group serves exactly the fleet's instances"
    );
    let sg =
        e.c.ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-name")
                    .values(format!("{}-{ENV}", e.app))
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .security_groups()[0]
            .group_id()
            .unwrap()
            .to_string();
    let out =
        e.c.ec2
            .describe_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .unwrap();
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        assert_eq!(i.image_id(), Some(ami), "{i:?}");
        assert_eq!(
            i.state().and_then(|s| s.name()).map(|n| n.as_str()),
            Some("running")
        );
        assert!(
            i.security_groups()
                .iter()
                .any(|g| g.group_id() == Some(sg.as_str())),
            "{:?} lacks {sg}",
            i.security_groups()
        );
        assert!(
            i.subnet_id().is_some_and(|s| s.starts_with("subnet-")),
            "{i:?}"
        );
    }
    (id, ids)
}

/// The launch template named in a fleet's config.
async fn fleet_template(e: &Env, id: &str) -> String {
    let out =
        e.c.ec2
            .describe_spot_fleet_requests()
            .spot_fleet_request_ids(id)
            .send()
            .await
            .unwrap();
    out.spot_fleet_request_configs()[0]
        .spot_fleet_request_config()
        .unwrap()
        .launch_template_configs()[0]
        .launch_template_specification()
        .unwrap()
        .launch_template_id()
        .unwrap()
        .to_string()
}

async fn lt_exists(c: &Clients, id: &str) -> bool {
    match c
        .ec2
        .describe_launch_templates()
        .launch_template_ids(id)
        .send()
        .await
    {
        Ok(o) => !o.launch_templates().is_empty(),
        Err(_) => false,
    }
}

/// Instance id → EC2 state.
async fn states(c: &Clients, ids: &[String]) -> Vec<String> {
    instance_images(c, ids)
        .await
        .into_iter()
        .map(|(_, _, s)| s)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_to_fleet_leaves_one_active_fleet_on_the_new_ami() {
    let (lab, _serial) = lab().await;
    let e = set_up(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;

    let (s, out) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    let r1 = s
        .deploy(&ami1)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", out.text()));
    assert!(r1.retired.is_empty());
    let (fleet1, ids1) = assert_one_fleet_on(&e, &ami1).await;
    assert_eq!(r1.new_group.as_ref().unwrap().name, fleet1);
    let lt1 = fleet_template(&e, &fleet1).await;
    assert_eq!(
        template_image(&e.c, &lt1).await.as_deref(),
        Some(ami1.as_str())
    );

    let (s2, out2) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    let r2 = s2
        .deploy(&ami2)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", out2.text()));
    let (fleet2, ids2) = assert_one_fleet_on(&e, &ami2).await;
    assert_ne!(fleet1, fleet2);
    assert_eq!(r2.retired, vec![fleet1.clone()]);
    assert_eq!(r2.old_groups[0].name, fleet1);
    assert_eq!(r2.new_group.as_ref().unwrap().name, fleet2);
    assert!(r2.attention.is_empty(), "{:?}", r2.attention);
    // The old fleet: cancelled, its instances terminated and out of the target group, its template gone.
    let old = env_fleets(&e)
        .await
        .into_iter()
        .find(|f| f.spot_fleet_request_id() == Some(fleet1.as_str()))
        .expect("the cancelled fleet is still described");
    assert!(state(&old).starts_with("cancelled"), "{}", state(&old));
    assert!(states(&e.c, &ids1).await.iter().all(|s| s == "terminated"));
    let registered: BTreeSet<String> = tg_health(&e.c, &e.tg)
        .await
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert!(
        ids1.iter().all(|i| !registered.contains(i)),
        "{registered:?}"
    );
    assert!(
        !lt_exists(&e.c, &lt1).await,
        "the old fleet's launch template is left"
    );
    assert_eq!(r2.deleted_launch_templates.len(), 1);
    assert!(ids2.iter().all(|i| !ids1.contains(i)));
    // The writes of the second rollout, exactly (as rollout counted them).
    let mut writes: Vec<&str> = r2
        .aws_requests
        .keys()
        .filter(|k| !bakery_rollout::context::is_read_only(k))
        .map(|k| k.rsplit('.').next().unwrap_or(k))
        .collect();
    writes.sort();
    assert_eq!(
        writes,
        vec![
            "CancelSpotFleetRequests",
            "CreateLaunchTemplate",
            "CreateTags",
            "DeleteLaunchTemplate",
            "DeregisterTargets",
            "RequestSpotFleet",
        ],
        "{:?}",
        r2.aws_requests
    );
    eprintln!(
        "figures: spot fleet rollout (1 s stabilisation) {:.2} s / {} requests",
        r2.durations.total_s, r2.aws_requests_total
    );
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "fleet_to_fleet_leaves_one_active_fleet_on_the_new_ami",
    )
    .await;
}

/// Stops the instances of the first open fleet of the environment other than `old` as soon as it has
/// `n`; returns them. moto's target group then says `unused` (Target.InvalidState) for them.
fn sabotage_new_fleet(
    c: Clients,
    app: String,
    old: String,
    n: usize,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        loop {
            let out = c.ec2.describe_spot_fleet_requests().send().await.unwrap();
            for f in out.spot_fleet_request_configs() {
                let id = f.spot_fleet_request_id().unwrap_or_default();
                let ours = f
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some("bakery:app") && t.value() == Some(app.as_str()));
                if !ours || id == old || state(f) != "active" {
                    continue;
                }
                let ids = fleet_instances(&c, id).await;
                if ids.len() >= n {
                    c.ec2
                        .stop_instances()
                        .set_instance_ids(Some(ids.clone()))
                        .send()
                        .await
                        .unwrap();
                    return ids;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_fleet_that_never_turns_healthy_is_cancelled_and_the_old_one_untouched() {
    let (lab, _serial) = lab().await;
    let e = set_up(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, out) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    s.deploy(&ami1)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", out.text()));
    let (fleet1, ids1) = assert_one_fleet_on(&e, &ami1).await;
    let lt1 = fleet_template(&e, &fleet1).await;

    // Stopped instances also make the fleet fall short of its target (moto counts running ones, as AWS
    // does): depending on when they stop, the fulfilment wait or the health wait ends it; both 4 s here.
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&e.manifest).unwrap()).unwrap();
    m["defaults"]["spot_fleet"]["fulfil_timeout_seconds"] = json!(4);
    std::fs::write(&e.manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let (s2, out2) = session(
        lab,
        &e.manifest,
        ENV,
        Overrides {
            health_timeout: Some(Duration::from_secs(4)),
            ..Default::default()
        },
    )
    .await;
    let sabotage = sabotage_new_fleet(e.c.clone(), e.app.clone(), fleet1.clone(), 2);
    let result = s2.deploy(&ami2).await;
    let stopped = sabotage.await.unwrap();
    let report = match result {
        Err(RolloutError::RolledBack(r)) => r,
        other => panic!("expected a rollback: {other:?}\n{}", out2.text()),
    };
    let error = report.error.as_deref().unwrap();
    assert!(error.contains("timed out"), "{error}");
    for id in &stopped {
        assert!(
            error.contains(&format!("{id} unused (Target is in the stopped state)")),
            "{error}"
        );
    }
    let rb = report.rollback.as_ref().unwrap();
    assert!(rb.failures.is_empty() && rb.warnings.is_empty(), "{rb:?}");
    assert!(rb.old_groups_unchanged, "{rb:?}");
    assert_eq!(
        rb.old_groups,
        vec![format!(
            "{fleet1}: unchanged, 2/2 instance(s) in service on elb-{}-{ENV} (alb)",
            e.app
        )]
    );
    let new_fleet = report.new_group.as_ref().unwrap().name.clone();
    assert_ne!(new_fleet, fleet1);
    // The new fleet: cancelled, its instances terminated, its launch template deleted.
    let fleets = env_fleets(&e).await;
    let new = fleets
        .iter()
        .find(|f| f.spot_fleet_request_id() == Some(new_fleet.as_str()))
        .unwrap();
    assert!(state(new).starts_with("cancelled"), "{}", state(new));
    assert_eq!(
        tag(new, "bakery:rollout-state").as_deref(),
        Some("in-progress")
    );
    assert!(
        states(&e.c, &stopped)
            .await
            .iter()
            .all(|s| s == "terminated")
    );
    let lt2 = report
        .new_group
        .as_ref()
        .unwrap()
        .launch_template
        .clone()
        .unwrap();
    assert!(!template_exists(&e.c, &lt2).await, "{lt2} left behind");
    // The old fleet: exactly as it was, still the only open one, still serving.
    let (still, ids_now) = assert_one_fleet_on(&e, &ami1).await;
    assert_eq!((still, ids_now), (fleet1, ids1));
    assert!(lt_exists(&e.c, &lt1).await);
    assert_eq!(report.status, bakery_rollout::report::Status::RolledBack);
    eprintln!(
        "figures: spot fleet rollback (4 s timeout) {:.2} s / {} requests, rollback {:.2} s",
        report.durations.total_s, report.aws_requests_total, report.durations.rollback_s
    );
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "a_new_fleet_that_never_turns_healthy_is_cancelled_and_the_old_one_untouched",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_during_the_health_wait_cancels_the_new_fleet() {
    let (lab, _serial) = lab().await;
    let e = set_up(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    s.deploy(&ami1).await.unwrap();
    let (fleet1, ids1) = assert_one_fleet_on(&e, &ami1).await;

    // A long stabilisation keeps the rollout waiting; Ctrl-C (the session's token) comes meanwhile.
    let (s2, out) = session(
        lab,
        &e.manifest,
        ENV,
        Overrides {
            min_healthy: Some(Duration::from_secs(30)),
            ..Default::default()
        },
    )
    .await;
    let cancel = s2.cancel_token();
    let c2 = e.c.clone();
    let app = e.app.clone();
    let old = fleet1.clone();
    tokio::spawn(async move {
        loop {
            let out = c2.ec2.describe_spot_fleet_requests().send().await.unwrap();
            let started = out.spot_fleet_request_configs().iter().any(|f| {
                f.spot_fleet_request_id() != Some(old.as_str())
                    && f.tags().iter().any(|t| t.value() == Some(app.as_str()))
            });
            if started {
                cancel.cancel();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let report = match s2.deploy(&ami2).await {
        Err(RolloutError::RolledBack(r)) => r,
        other => panic!("expected a rollback: {other:?}\n{}", out.text()),
    };
    assert!(
        report.error.as_deref().unwrap().starts_with("interrupted"),
        "{:?}",
        report.error
    );
    let rb = report.rollback.as_ref().unwrap();
    assert!(rb.failures.is_empty() && rb.old_groups_unchanged, "{rb:?}");
    assert!(
        rb.actions[0].starts_with("cancelled spot fleet")
            && rb.actions[0].contains("2 instance(s)"),
        "{rb:?}"
    );
    assert_eq!(assert_one_fleet_on(&e, &ami1).await, (fleet1, ids1));
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "an_interrupt_during_the_health_wait_cancels_the_new_fleet",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_lists_the_live_fleet_and_the_steps_read_only() {
    let (lab, _serial) = lab().await;
    let e = set_up(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    let first = s.plan(Some(&ami1)).await.unwrap();
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    assert_eq!(first.steps[0], "no live spot fleet");
    assert!(
        first
            .steps
            .iter()
            .any(|l| l.contains("first spot-fleet rollout"))
    );
    s.deploy(&ami1).await.unwrap();
    let (fleet1, _) = assert_one_fleet_on(&e, &ami1).await;

    let (s2, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    let plan = s2.plan(Some(&ami2)).await.unwrap();
    assert_eq!(plan.strategy, "spot-fleet");
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    assert_eq!(
        plan.steps[0],
        format!("live fleet {fleet1} (active/fulfilled, 2 of 2 instance(s), {ami1})")
    );
    let request = plan
        .steps
        .iter()
        .find(|l| l.starts_with("request a maintain spot fleet"))
        .unwrap();
    assert!(
        request.contains("2 instance(s): t3.micro, t3a.micro in subnets ")
            && request.contains("(4 override(s)), priceCapacityOptimized, max price 0.05 USD/h")
            && request.contains(&format!("registering in tg-{}-{ENV}", e.app)),
        "{request}"
    );
    assert!(
        plan.steps
            .iter()
            .any(|l| l.starts_with(&format!("retire {fleet1}: deregister its 2 instance(s)"))),
        "{:?}",
        plan.steps
    );
    let writes: Vec<&String> = plan
        .aws_requests
        .keys()
        .filter(|k| !bakery_rollout::context::is_read_only(k))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    // The changes as a diff: the new fleet in, the target group's registrations moving, the old fleet and
    // its launch template (rollout made it) out.
    let diff = bakery_rollout::diff::render(&plan.diff, false);
    let tg = format!("tg-{}-{ENV}", e.app);
    for want in [
        format!("+ launch template lt-{}-{ENV}-<timestamp>: {ami2}\n", e.app),
        format!(
            "+ spot fleet (new request): {ami2}, 2 instance(s) of t3.micro, t3a.micro, priceCapacityOptimized, max price 0.05 USD/h\n"
        ),
        format!(
            "- target group {tg}: registers {fleet1} ({ami1})\n+ target group {tg}: registers the new fleet ({ami2})\n"
        ),
        format!(
            "- spot fleet {fleet1}: {ami1}, 2 of 2 instance(s), active/fulfilled\n- launch template lt-{}-{ENV}-",
            e.app
        ),
    ] {
        assert!(diff.contains(&want), "{want}\n{diff}");
    }
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "plan_lists_the_live_fleet_and_the_steps_read_only",
    )
    .await;
}

fn resolve(src: &str) -> Result<RolloutConfig, String> {
    let m =
        Manifest::parse(Path::new("rollout.json"), src.to_string()).map_err(|e| e.to_string())?;
    RolloutConfig::resolve(&m, None, &Overrides::default()).map_err(|e| e.to_string())
}

#[test]
fn spot_fleet_settings_default_from_the_manifest() {
    let c = resolve(
        r#"{"app": "shop", "strategy": "spot-fleet",
            "defaults": {"load_balancer": {"kind": "alb"}, "capacity": {"min": 1, "max": 4, "desired": 3},
                         "instances": {"instance_type": "t3.small"}, "timeouts": {"health_seconds": 120}},
            "environments": {"staging": {}}}"#,
    )
    .unwrap();
    let sf = &c.spot_fleet;
    assert_eq!(sf.target_capacity, 3);
    assert_eq!(sf.instance_types, vec!["t3.small"]);
    assert_eq!(sf.allocation_strategy, "priceCapacityOptimized");
    assert_eq!(sf.max_price, None);
    assert_eq!(sf.iam_fleet_role, "aws-ec2-spot-fleet-tagging-role");
    assert_eq!(sf.fulfil_timeout, Duration::from_secs(600));
    assert_eq!(sf.health_timeout, Duration::from_secs(120));
}

#[test]
fn spot_fleet_settings_are_validated_with_their_place() {
    let src = r#"{
  "app": "shop",
  "strategy": "spot-fleet",
  "defaults": {
    "spot_fleet": {
      "target_capacity": 0,
      "instance_types": ["t3.micro", "huge", "t3.micro"],
      "allocation_strategy": "cheapest",
      "max_price": "free",
      "iam_fleet_role": "arn:aws:iam::1:user/me",
      "fulfil_timeout_seconds": 0
    }
  },
  "environments": {"staging": {}}
}"#;
    let text = resolve(src).unwrap_err();
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "rollout.json:3:3: strategy: spot-fleet registers the fleet's instances in a target group: it needs `load_balancer.kind: \"alb\"`",
        "rollout.json:6:7: defaults.spot_fleet.target_capacity: must be at least 1: a fleet of zero instances leaves the target group with none",
        "rollout.json:7:38: defaults.spot_fleet.instance_types.1: `huge` is not an instance type (t3.micro)",
        "rollout.json:7:46: defaults.spot_fleet.instance_types.2: `t3.micro` is listed twice",
        "rollout.json:8:7: defaults.spot_fleet.allocation_strategy: `cheapest`: expected one of `priceCapacityOptimized`, `capacityOptimized`, `capacityOptimizedPrioritized`, `diversified`, `lowestPrice`",
        "rollout.json:9:7: defaults.spot_fleet.max_price: \"free\": expected a price per instance-hour in USD greater than 0 (0.05 or \"0.05\"); leave it out for the on-demand price",
        "rollout.json:10:7: defaults.spot_fleet.iam_fleet_role: `arn:aws:iam::1:user/me` is neither an IAM role name nor a role ARN (arn:aws:iam::123456789012:role/NAME)",
        "rollout.json:11:7: defaults.spot_fleet.fulfil_timeout_seconds: must be at least 1 second",
    ] {
        assert!(lines.contains(&want), "missing {want}\nin:\n{text}");
    }
    assert_eq!(lines.len(), 8, "{text}");
    let e = resolve(r#"{"app": "shop", "defaults": {"spot_fleet": {"instance_type": "t3.micro"}}, "environments": {"staging": {}}}"#)
        .unwrap_err();
    assert!(
        e.contains(
            "unknown field `instance_type`, expected one of `target_capacity`, `instance_types`"
        ),
        "{e}"
    );
}

#[test]
fn the_example_manifest_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/rollout-spot.json");
    let m = Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let prod = RolloutConfig::resolve(&m, Some("production"), &Overrides::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(prod.strategy.to_string(), "spot-fleet");
    assert_eq!(prod.spot_fleet.target_capacity, 4);
    assert_eq!(prod.spot_fleet.max_price.as_deref(), Some("0.0104"));
    assert_eq!(prod.spot_fleet.instance_types.len(), 3);
    let staging = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap();
    assert_eq!(staging.spot_fleet.max_price, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleets_rollout_did_not_create_are_never_touched_and_an_in_progress_one_refuses() {
    let (lab, _serial) = lab().await;
    let e = set_up(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    // Someone else's fleet in the same target group (seed 002's script would cancel it: it picks fleets by
    // target group), without bakery's tags.
    let foreign =
        e.c.ec2
            .request_spot_fleet()
            .spot_fleet_request_config(
                aws_sdk_ec2::types::SpotFleetRequestConfigData::builder()
                    .iam_fleet_role("arn:aws:iam::123456789012:role/other")
                    // moto requires it (AWS defaults it).
                    .allocation_strategy(aws_sdk_ec2::types::AllocationStrategy::LowestPrice)
                    .target_capacity(1)
                    .r#type(aws_sdk_ec2::types::FleetType::Maintain)
                    .launch_specifications(
                        aws_sdk_ec2::types::SpotFleetLaunchSpecification::builder()
                            .image_id(lab.source_ami())
                            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                            .build(),
                    )
                    .load_balancers_config(
                        aws_sdk_ec2::types::LoadBalancersConfig::builder()
                            .target_groups_config(
                                aws_sdk_ec2::types::TargetGroupsConfig::builder()
                                    .target_groups(
                                        aws_sdk_ec2::types::TargetGroup::builder()
                                            .arn(&e.tg)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .spot_fleet_request_id()
            .unwrap()
            .to_string();
    let foreign_ids = fleet_instances(&e.c, &foreign).await;
    assert_eq!(foreign_ids.len(), 1);

    for ami in [&ami1, &ami2] {
        let (s, out) = session(lab, &e.manifest, ENV, Overrides::default()).await;
        let r = s
            .deploy(ami)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", out.text()));
        assert!(!r.retired.contains(&foreign));
    }
    let all = e.c.ec2.describe_spot_fleet_requests().send().await.unwrap();
    let f = all
        .spot_fleet_request_configs()
        .iter()
        .find(|f| f.spot_fleet_request_id() == Some(foreign.as_str()))
        .unwrap();
    assert_eq!(state(f), "active");
    assert_eq!(fleet_instances(&e.c, &foreign).await, foreign_ids);
    assert_eq!(states(&e.c, &foreign_ids).await, vec!["running"]);
    let ours: Vec<_> = env_fleets(&e)
        .await
        .into_iter()
        .filter(|f| state(f) == "active")
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(tag(&ours[0], "bakery:ami").as_deref(), Some(ami2.as_str()));

    // A fleet of the environment still tagged in-progress (a rollout running, or one that died): refused,
    // with reads only.
    let live = ours[0].spot_fleet_request_id().unwrap().to_string();
    e.c.ec2
        .create_tags()
        .resources(&live)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("bakery:rollout-state")
                .value("in-progress")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (s, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    match s.deploy(&ami1).await {
        Err(RolloutError::Preflight(p)) => {
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(
                p[0].contains(&format!("spot fleet {live}"))
                    && p[0].contains(&format!(
                        "aws ec2 cancel-spot-fleet-requests --terminate-instances --spot-fleet-request-ids {live}"
                    )),
                "{}",
                p[0]
            );
        }
        other => panic!("expected a preflight refusal: {other:?}"),
    }
    assert!(
        s.ctx().requests.read_only(),
        "{:?}",
        s.ctx().requests.snapshot()
    );
}

/// What the lab cannot show — a fleet whose activity turns `error`, with AWS's reasons in
/// DescribeSpotFleetRequestHistory (moto has neither), and a RequestSpotFleet whose answer is lost — against
/// the SDK's own test clients (aws-smithy-mocks, without the service crates' `test-util` feature, as
/// `tests/instance_refresh.rs` does). Every write is logged with its key parameters.
mod sdk_mocks {
    use aws_sdk_ec2::types::{
        ActivityStatus, BatchState, CancelSpotFleetRequestsSuccessItem, EventInformation,
        EventType, HistoryRecord, SecurityGroup, SpotFleetRequestConfig, Tag,
    };
    use aws_smithy_mocks::{
        MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock,
    };
    use bakery_core::aws::Clients;
    use bakery_core::ui::Ui;
    use bakery_rollout::RolloutError;
    use bakery_rollout::ami::ResolvedAmi;
    use bakery_rollout::config::{Overrides, RolloutConfig};
    use bakery_rollout::context::{Ctx, RequestCounter};
    use bakery_rollout::launch::{LaunchSpec, Placement};
    use bakery_rollout::lb::LoadBalancer;
    use bakery_rollout::manifest::{LbKind, Manifest};
    use bakery_rollout::strategy::{Preflight, SpotFleet, Strategy};
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    const RUN_ID: &str = "00000000-0000-4000-8000-000000000002";
    const TG: &str =
        "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/tg-shop-staging/1";

    macro_rules! client {
        ($krate:ident, $rules:expr) => {{
            let mut i = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
            for r in $rules {
                i = i.with_rule(r);
            }
            $krate::Client::from_conf(
                $krate::Config::builder()
                    .behavior_version($krate::config::BehaviorVersion::latest())
                    .region($krate::config::Region::new("us-east-1"))
                    .credentials_provider($krate::config::Credentials::new(
                        "AKIDTEST", "secret", None, None, "test",
                    ))
                    .retry_config($krate::config::retry::RetryConfig::disabled())
                    .http_client(create_mock_http_client())
                    .interceptor(i)
                    .build(),
            )
        }};
    }

    type Log = Arc<Mutex<Vec<String>>>;

    /// A fake EC2 in which the requested fleet (`sfr-0new`) never launches: activity `error`, with one
    /// error event. With `lost`, RequestSpotFleet fails although the fleet (`sfr-0lost`, tagged with the
    /// run id) was made.
    fn ctx(log: &Log, lost: bool) -> Ctx {
        let m = Manifest::parse(
            Path::new("rollout.json"),
            r#"{"app": "shop", "strategy": "spot-fleet",
                "defaults": {"load_balancer": {"kind": "alb"},
                             "spot_fleet": {"target_capacity": 2, "instance_types": ["t3.micro", "t3a.micro"]}},
                "environments": {"staging": {}}}"#
                .to_string(),
        )
        .unwrap();
        let cfg = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap();
        let fleet_id = if lost { "sfr-0lost" } else { "sfr-0new" };
        let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
        let ec2 = vec![
            mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(|| {
                aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput::builder()
                    .security_groups(SecurityGroup::builder().group_id("sg-1").owner_id("111122223333").build())
                    .build()
            }),
            mock!(aws_sdk_ec2::Client::create_launch_template).then_compute_output(move |r| {
                l1.lock().unwrap().push(format!(
                    "CreateLaunchTemplate image={}",
                    r.launch_template_data().and_then(|d| d.image_id()).unwrap_or("-")
                ));
                aws_sdk_ec2::operation::create_launch_template::CreateLaunchTemplateOutput::builder()
                    .launch_template(
                        aws_sdk_ec2::types::LaunchTemplate::builder()
                            .launch_template_id("lt-0new")
                            .launch_template_name(r.launch_template_name().unwrap_or_default())
                            .build(),
                    )
                    .build()
            }),
            if lost {
                let l = log.clone();
                mock!(aws_sdk_ec2::Client::request_spot_fleet)
                    .match_requests(move |_| {
                        l.lock().unwrap().push("RequestSpotFleet (answer lost)".into());
                        true
                    })
                    .then_error(|| {
                        aws_sdk_ec2::operation::request_spot_fleet::RequestSpotFleetError::generic(
                            aws_smithy_types::error::ErrorMetadata::builder()
                                .code("InternalError")
                                .message("try again")
                                .build(),
                        )
                    })
            } else {
                mock!(aws_sdk_ec2::Client::request_spot_fleet).then_compute_output(move |r| {
                    let c = r.spot_fleet_request_config().unwrap();
                    let lt = &c.launch_template_configs()[0];
                    let overrides: Vec<String> = lt
                        .overrides()
                        .iter()
                        .map(|o| {
                            format!(
                                "{}@{}",
                                o.instance_type().map(|t| t.as_str()).unwrap_or("-"),
                                o.subnet_id().unwrap_or("-")
                            )
                        })
                        .collect();
                    let tags: Vec<String> = c.tag_specifications()[0]
                        .tags()
                        .iter()
                        .filter(|t| t.key().is_some_and(|k| k.starts_with("bakery:rollout") || k == "bakery:ami"))
                        .map(|t| format!("{}={}", t.key().unwrap(), t.value().unwrap()))
                        .collect();
                    l2.lock().unwrap().push(format!(
                        "RequestSpotFleet role={} type={} capacity={} strategy={} price={} lt={}/{} overrides={} tg={} token-run-id={} tags={}",
                        c.iam_fleet_role().unwrap_or("-"),
                        c.r#type().map(|t| t.as_str()).unwrap_or("-"),
                        c.target_capacity().unwrap_or(0),
                        c.allocation_strategy().map(|a| a.as_str()).unwrap_or("-"),
                        c.spot_price().unwrap_or("none"),
                        lt.launch_template_specification().and_then(|s| s.launch_template_id()).unwrap_or("-"),
                        lt.launch_template_specification().and_then(|s| s.version()).unwrap_or("-"),
                        overrides.join(","),
                        c.load_balancers_config()
                            .and_then(|l| l.target_groups_config())
                            .map(|t| t.target_groups().len())
                            .unwrap_or(0),
                        c.client_token().is_some_and(|t| t.starts_with(RUN_ID)),
                        tags.join(","),
                    ));
                    aws_sdk_ec2::operation::request_spot_fleet::RequestSpotFleetOutput::builder()
                        .spot_fleet_request_id("sfr-0new")
                        .build()
                })
            },
            mock!(aws_sdk_ec2::Client::describe_spot_fleet_requests).then_output(move || {
                aws_sdk_ec2::operation::describe_spot_fleet_requests::DescribeSpotFleetRequestsOutput::builder()
                    .spot_fleet_request_configs(
                        SpotFleetRequestConfig::builder()
                            .spot_fleet_request_id(fleet_id)
                            .spot_fleet_request_state(BatchState::Active)
                            .activity_status(ActivityStatus::Error)
                            .tags(Tag::builder().key("bakery:managed").value("true").build())
                            .tags(Tag::builder().key("bakery:app").value("shop").build())
                            .tags(Tag::builder().key("bakery:env").value("staging").build())
                            .tags(Tag::builder().key("bakery:run-id").value(RUN_ID).build())
                            .tags(Tag::builder().key("bakery:rollout-state").value("in-progress").build())
                            .build(),
                    )
                    .build()
            }),
            mock!(aws_sdk_ec2::Client::describe_spot_fleet_instances).then_output(|| {
                aws_sdk_ec2::operation::describe_spot_fleet_instances::DescribeSpotFleetInstancesOutput::builder().build()
            }),
            mock!(aws_sdk_ec2::Client::describe_spot_fleet_request_history).then_output(|| {
                aws_sdk_ec2::operation::describe_spot_fleet_request_history::DescribeSpotFleetRequestHistoryOutput::builder()
                    .history_records(
                        HistoryRecord::builder()
                            .event_type(EventType::Error)
                            .event_information(
                                EventInformation::builder()
                                    .event_sub_type("launchSpecUnusable")
                                    .event_description("t3a.micro is not supported in us-east-1e")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            }),
            mock!(aws_sdk_ec2::Client::cancel_spot_fleet_requests).then_compute_output(move |r| {
                l3.lock().unwrap().push(format!(
                    "CancelSpotFleetRequests {} terminate={}",
                    r.spot_fleet_request_ids().join(","),
                    r.terminate_instances().unwrap_or(false)
                ));
                aws_sdk_ec2::operation::cancel_spot_fleet_requests::CancelSpotFleetRequestsOutput::builder()
                    .successful_fleet_requests(
                        CancelSpotFleetRequestsSuccessItem::builder()
                            .spot_fleet_request_id(r.spot_fleet_request_ids()[0].clone())
                            .current_spot_fleet_request_state(BatchState::CancelledTerminatingInstances)
                            .previous_spot_fleet_request_state(BatchState::Active)
                            .build(),
                    )
                    .build()
            }),
            mock!(aws_sdk_ec2::Client::delete_launch_template).then_compute_output(move |r| {
                l4.lock().unwrap().push(format!(
                    "DeleteLaunchTemplate {}",
                    r.launch_template_id().unwrap_or("-")
                ));
                aws_sdk_ec2::operation::delete_launch_template::DeleteLaunchTemplateOutput::builder().build()
            }),
        ];
        let elbv2 = vec![mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
            .then_output(|| {
                aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput::builder().build()
            })];
        let none: Vec<Rule> = Vec::new();
        let requests = RequestCounter::default();
        let clients = requests.instrument(Clients {
            region: "us-east-1".into(),
            ec2: client!(aws_sdk_ec2, &ec2),
            ssm: client!(aws_sdk_ssm, &none),
            autoscaling: client!(aws_sdk_autoscaling, &none),
            elb: client!(aws_sdk_elasticloadbalancing, &none),
            elbv2: client!(aws_sdk_elasticloadbalancingv2, &elbv2),
            route53: client!(aws_sdk_route53, &none),
            iam: client!(aws_sdk_iam, &none),
            cloudwatch: client!(aws_sdk_cloudwatch, &none),
        });
        Ctx {
            cfg,
            clients,
            ui: Ui::sink(),
            run_id: RUN_ID.into(),
            cancel: CancellationToken::new(),
            cancel_cleanup: CancellationToken::new(),
            requests,
        }
    }

    fn preflight() -> Preflight {
        let subnets = vec!["subnet-a".to_string(), "subnet-b".to_string()];
        Preflight {
            lb: Some(LoadBalancer {
                kind: LbKind::Alb,
                name: "elb-shop-staging".into(),
                dns_name: "elb-shop-staging.example".into(),
                zone_id: None,
                vpc_id: Some("vpc-1".into()),
                subnets: subnets.clone(),
                availability_zones: vec!["us-east-1a".into(), "us-east-1b".into()],
                arn: Some("arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/elb-shop-staging/1".into()),
                target_group_arn: Some(TG.into()),
            }),
            groups: Vec::new(),
            kept: Vec::new(),
            group_amis: Default::default(),
            launch: Some(LaunchSpec {
                security_group_ids: vec!["sg-1".into()],
                key_name: None,
                user_data: None,
                placement: Placement::Subnets(subnets),
            }),
            ami: Some(ResolvedAmi {
                id: "ami-0new".into(),
                source: "ami-0new".into(),
                name: None,
            }),
            fleets: Vec::new(),
            problems: Vec::new(),
            took: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn a_fleet_in_error_is_cancelled_and_the_error_carries_aws_reasons() {
        let log: Log = Default::default();
        let cx = ctx(&log, false);
        let r = match SpotFleet.deploy(&cx, preflight()).await {
            Err(RolloutError::RolledBack(r)) => r,
            other => panic!("expected a rollback: {other:?}"),
        };
        let error = r.error.as_deref().unwrap();
        assert!(
            error.contains("spot fleet sfr-0new to be fulfilled (2 instance(s)): reached state activity status error")
                && error.contains("; fleet errors: launchSpecUnusable: t3a.micro is not supported in us-east-1e"),
            "{error}"
        );
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                "CreateLaunchTemplate image=ami-0new".to_string(),
                "RequestSpotFleet role=arn:aws:iam::111122223333:role/aws-ec2-spot-fleet-tagging-role type=maintain \
                 capacity=2 strategy=priceCapacityOptimized price=none lt=lt-0new/1 \
                 overrides=t3.micro@subnet-a,t3.micro@subnet-b,t3a.micro@subnet-a,t3a.micro@subnet-b tg=1 \
                 token-run-id=true tags=bakery:rollout-state=in-progress,bakery:ami=ami-0new"
                    .to_string(),
                "CancelSpotFleetRequests sfr-0new terminate=true".to_string(),
                "DeleteLaunchTemplate lt-0new".to_string(),
            ]
        );
        let rb = r.rollback.as_ref().unwrap();
        assert!(rb.failures.is_empty(), "{rb:?}");
        assert_eq!(rb.actions.len(), 2, "{rb:?}");
    }

    #[tokio::test]
    async fn a_fleet_whose_request_answer_was_lost_is_found_by_run_id_and_cancelled() {
        let log: Log = Default::default();
        let cx = ctx(&log, true);
        let r = match SpotFleet.deploy(&cx, preflight()).await {
            Err(RolloutError::RolledBack(r)) => r,
            other => panic!("expected a rollback: {other:?}"),
        };
        assert!(
            r.error
                .as_deref()
                .unwrap()
                .contains("RequestSpotFleet: InternalError: try again"),
            "{:?}",
            r.error
        );
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                "CreateLaunchTemplate image=ami-0new",
                "RequestSpotFleet (answer lost)",
                "CancelSpotFleetRequests sfr-0lost terminate=true",
                "DeleteLaunchTemplate lt-0new",
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_request_in_flight_at_an_interrupt_is_cancelled_and_a_killed_fleet_rollout_is_abandoned()
 {
    use crate::common::fault_proxy::FaultProxy;
    let (lab, _serial) = lab().await;
    let e = set_up(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    s.deploy(&ami1).await.unwrap();
    let live = assert_one_fleet_on(&e, &ami1).await;
    let baseline = crate::common::inventory(&e.c).await;

    // Interrupted while RequestSpotFleet is in flight (moto made the fleet; its answer is held): the
    // request is let answer, then the fleet is cancelled by the rollback.
    let proxy = FaultProxy::start(lab.moto_url(), vec![]).await;
    proxy.answer_late("RequestSpotFleet", Duration::from_secs(2), |_| true);
    let (s2, out) = session_via(lab, &e.manifest, ENV, Overrides::default(), &proxy.url).await;
    let cancel = s2.cancel_token();
    let ami = ami2.clone();
    let task = tokio::spawn(async move { s2.deploy(&ami).await });
    assert!(
        proxy.until_held("RequestSpotFleet", || true).await,
        "RequestSpotFleet never sent\n{}",
        out.text()
    );
    cancel.cancel();
    match task.await.unwrap() {
        Err(RolloutError::RolledBack(r)) => {
            let rb = r.rollback.as_ref().unwrap();
            assert!(
                rb.actions
                    .iter()
                    .any(|a| a.starts_with("cancelled spot fleet")),
                "{rb:?}\n{}",
                out.text()
            );
        }
        other => panic!("expected a rollback: {other:?}\n{}", out.text()),
    }
    assert_eq!(assert_one_fleet_on(&e, &ami1).await, live);

    // Killed while its new fleet fills: `rollout abandon` cancels that fleet and nothing else.
    let (slow, _) = session(
        lab,
        &e.manifest,
        ENV,
        Overrides {
            min_healthy: Some(Duration::from_secs(30)),
            ..Default::default()
        },
    )
    .await;
    let run_id = slow.ctx().run_id.clone();
    let ami = ami2.clone();
    let task = tokio::spawn(async move { slow.deploy(&ami).await });
    let mut waited = 0;
    while !env_fleets(&e).await.iter().any(|f| {
        f.tags()
            .iter()
            .any(|t| t.key() == Some("bakery:run-id") && t.value() == Some(run_id.as_str()))
    }) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 500, "the rollout never requested its fleet");
    }
    task.abort();
    let _ = task.await;
    let manifest = e.manifest.to_str().unwrap().to_string();
    let (code, stdout, stderr) =
        cli(lab, &["--manifest", &manifest, "--env", ENV, "abandon"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("abandoned run(s) {run_id}")),
        "{stdout}"
    );
    assert!(stdout.contains("removed fleet sfr-"), "{stdout}");
    assert_eq!(assert_one_fleet_on(&e, &ami1).await, live);
    crate::common::assert_nothing_new(&e.c, &baseline, &[], "after rollout abandon").await;
    common::assert_settled(&e.c, &e.app, ENV, "a_fleet_request_in_flight_at_an_interrupt_is_cancelled_and_a_killed_fleet_rollout_is_abandoned").await;
}
