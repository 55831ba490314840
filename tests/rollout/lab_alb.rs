//! The same acceptance on an ALB (target group + listener): idempotent setup, rollouts with the target
//! group sampled throughout (here moto keeps both groups registered, so the overlap is visible),
//! rollback of an unhealthy new group, and `rollout undo` of a kept release.

use super::common;

use bakery_core::aws::Clients;
use bakery_lab::Lab;
use bakery_rollout::RolloutError;
use bakery_rollout::config::Overrides;
use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ENV: &str = "staging";

fn app_name(lab: &Lab) -> String {
    common::short_app_name(lab, 'w')
}

fn alb_manifest(lab: &Lab, app: &str) -> PathBuf {
    let dir = temp_dir(lab, app);
    write_manifest(
        &dir,
        &json!({
            "app": app,
            "region": "us-east-1",
            "defaults": {
                "load_balancer": {
                    "kind": "alb",
                    "port": 80,
                    "instance_port": 8080,
                    "health_check": {"path": "/healthz", "interval_seconds": 10, "timeout_seconds": 5,
                                     "healthy_threshold": 3, "unhealthy_threshold": 2},
                    "draining_seconds": 120,
                    "ingress_cidrs": ["203.0.113.0/24"]
                },
                "network": {"availability_zones": ["us-east-1a", "us-east-1b"]},
                "capacity": {"min": 2, "max": 4, "desired": 2},
                "timeouts": {"health_seconds": 60, "drain_seconds": 30, "retire_seconds": 30,
                             "rollback_seconds": 30}
            },
            "environments": {"staging": {}}
        }),
    )
}

type Env = AlbEnv;

async fn set_up(lab: &'static Lab) -> Env {
    set_up_alb(lab, ENV, app_name(lab), alb_manifest).await
}

async fn healthy_ids(e: &Env) -> BTreeSet<String> {
    tg_health(&e.c, &e.tg)
        .await
        .into_iter()
        .filter(|(_, s)| s == "healthy")
        .map(|(i, _)| i)
        .collect()
}

/// One group, on `ami`, attached to the target group, every instance healthy there.
async fn assert_one_group_on(e: &Env, ami: &str) -> (String, Vec<String>) {
    let groups = env_groups(&e.c, &e.app, ENV).await;
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(g.target_group_arns(), std::slice::from_ref(&e.tg));
    assert!(g.load_balancer_names().is_empty());
    let lt = g.launch_template().unwrap().launch_template_id().unwrap();
    assert_eq!(template_image(&e.c, lt).await.as_deref(), Some(ami));
    let ids: Vec<String> = g
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    let healthy = healthy_ids(e).await;
    for id in &ids {
        assert!(
            healthy.contains(id),
            "{id} not healthy in the target group: {healthy:?}"
        );
    }
    for (id, image, _) in instance_images(&e.c, &ids).await {
        assert_eq!(image, ami, "{id}");
    }
    // Placed in the ALB's subnets.
    assert!(
        g.vpc_zone_identifier()
            .is_some_and(|v| v.contains("subnet-"))
    );
    (g.auto_scaling_group_name().unwrap().to_string(), ids)
}

fn sample(
    c: Clients,
    tg: String,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Vec<BTreeSet<String>>> {
    tokio::spawn(async move {
        let mut v = Vec::new();
        loop {
            let done = stop.is_cancelled();
            v.push(
                tg_health(&c, &tg)
                    .await
                    .into_iter()
                    .filter(|(_, s)| s == "healthy")
                    .map(|(i, _)| i)
                    .collect(),
            );
            if done {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_setup_builds_the_target_group_and_listener_once() {
    let (lab, _serial) = lab().await;
    let e = set_up(lab).await;
    let name = format!("elb-{}-{ENV}", e.app);
    let lb =
        e.c.elbv2
            .describe_load_balancers()
            .names(&name)
            .send()
            .await
            .unwrap();
    let lb = &lb.load_balancers()[0];
    assert_eq!(lb.r#type().map(|t| t.as_str()), Some("application"));
    let mut zones: Vec<&str> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name())
        .collect();
    zones.sort();
    assert_eq!(zones, ["us-east-1a", "us-east-1b"]);
    let tg =
        e.c.elbv2
            .describe_target_groups()
            .target_group_arns(&e.tg)
            .send()
            .await
            .unwrap();
    let tg = &tg.target_groups()[0];
    assert_eq!(
        (tg.protocol().map(|p| p.as_str()), tg.port()),
        (Some("HTTP"), Some(8080))
    );
    assert_eq!(tg.health_check_path(), Some("/healthz"));
    assert_eq!(
        (
            tg.health_check_interval_seconds(),
            tg.health_check_timeout_seconds(),
            tg.healthy_threshold_count(),
            tg.unhealthy_threshold_count()
        ),
        (Some(10), Some(5), Some(3), Some(2))
    );
    let attrs =
        e.c.elbv2
            .describe_target_group_attributes()
            .target_group_arn(&e.tg)
            .send()
            .await
            .unwrap();
    assert!(attrs.attributes().iter().any(|a| a.key()
        == Some("deregistration_delay.timeout_seconds")
        && a.value() == Some("120")));
    let listeners =
        e.c.elbv2
            .describe_listeners()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
    let l = &listeners.listeners()[0];
    assert_eq!(l.port(), Some(80));
    assert_eq!(
        l.default_actions()[0].target_group_arn(),
        Some(e.tg.as_str())
    );
    // The instances' group admits 8080 from the ALB's group only; the ALB's admits 80 from the CIDR given.
    let sgs =
        e.c.ec2
            .describe_security_groups()
            .group_ids(lb.security_groups()[0].clone())
            .send()
            .await
            .unwrap();
    let p = &sgs.security_groups()[0].ip_permissions()[0];
    assert_eq!(
        (p.from_port(), p.ip_ranges()[0].cidr_ip()),
        (Some(80), Some("203.0.113.0/24"))
    );

    let (s, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    lab.reset_request_counts();
    let again = s.setup(false).await.unwrap();
    assert!(again.unchanged(), "{}", again.render());
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    assert_eq!(writes(&lab.request_counts()), Vec::<String>::new());
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "alb_setup_builds_the_target_group_and_listener_once",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_rollouts_overlap_and_never_leave_the_target_group_empty() {
    let (lab, _serial) = lab().await;
    let e = set_up(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, out) = session(
        lab,
        &e.manifest,
        ENV,
        Overrides {
            min_healthy: Some(Duration::from_secs(1)),
            ..Default::default()
        },
    )
    .await;
    s.deploy(&ami1)
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", out.text()));
    let (g1, ids1) = assert_one_group_on(&e, &ami1).await;

    let stop = CancellationToken::new();
    let sampler = sample(e.c.clone(), e.tg.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = s
        .deploy(&ami2)
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", out.text()));
    stop.cancel();
    let samples = sampler.await.unwrap();
    let (g2, ids2) = assert_one_group_on(&e, &ami2).await;
    assert_ne!(g1, g2);
    assert!(samples.len() > 10, "{}", samples.len());
    assert!(
        samples.iter().all(|s| !s.is_empty()),
        "a sample saw no healthy target"
    );
    // Old and new served together, and the old left only after the new was healthy.
    let both = samples
        .iter()
        .position(|s| ids1.iter().all(|i| s.contains(i)) && ids2.iter().all(|i| s.contains(i)));
    assert!(
        both.is_some(),
        "never saw old and new together ({} samples)",
        samples.len()
    );
    let first_new = samples
        .iter()
        .position(|s| ids2.iter().any(|i| s.contains(i)))
        .unwrap();
    assert!(
        samples[..first_new]
            .iter()
            .all(|s| ids1.iter().all(|i| s.contains(i)))
    );
    assert_eq!(
        samples.last().unwrap(),
        &ids2.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(r.retired, vec![g1.clone()]);
    assert!(!template_exists(&e.c, &format!("lt-{}", &g1[4..])).await);
    // The old instances were deregistered (detached) before they were terminated.
    let registered: Vec<String> = tg_health(&e.c, &e.tg)
        .await
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert!(
        ids1.iter().all(|i| !registered.contains(i)),
        "{registered:?}"
    );
    eprintln!(
        "figures: ALB rollout (1 s stabilisation) {:.2} s / {} requests, {} samples",
        r.durations.total_s,
        r.aws_requests_total,
        samples.len()
    );
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "alb_rollouts_overlap_and_never_leave_the_target_group_empty",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_unhealthy_new_group_is_rolled_back() {
    let (lab, _serial) = lab().await;
    let e = set_up(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    s.deploy(&ami1).await.unwrap();
    let (old, old_ids) = assert_one_group_on(&e, &ami1).await;
    let before = env_groups(&e.c, &e.app, ENV).await.remove(0);

    let (s2, out) = session(
        lab,
        &e.manifest,
        ENV,
        Overrides {
            health_timeout: Some(Duration::from_secs(5)),
            min_healthy: Some(Duration::from_secs(2)),
            ..Default::default()
        },
    )
    .await;
    // Stop the new group's instances as soon as they exist: moto's target group says `unused`.
    let c2 = e.c.clone();
    let app = e.app.clone();
    let old2 = old.clone();
    let sabotage = tokio::spawn(async move {
        loop {
            let groups = env_groups(&c2, &app, ENV).await;
            if let Some(g) = groups.iter().find(|g| {
                g.auto_scaling_group_name() != Some(old2.as_str()) && !g.instances().is_empty()
            }) {
                let ids: Vec<String> = g
                    .instances()
                    .iter()
                    .map(|i| i.instance_id().unwrap().to_string())
                    .collect();
                c2.ec2
                    .stop_instances()
                    .set_instance_ids(Some(ids.clone()))
                    .send()
                    .await
                    .unwrap();
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let stop = CancellationToken::new();
    let sampler = sample(e.c.clone(), e.tg.clone(), stop.clone());
    let result = s2.deploy(&ami2).await;
    stop.cancel();
    let samples = sampler.await.unwrap();
    let stopped = sabotage.await.unwrap();
    let report = match result {
        Err(RolloutError::RolledBack(r)) => r,
        other => panic!("expected a rollback: {other:?}\n{}", out.text()),
    };
    let rb = report.rollback.as_ref().unwrap();
    assert!(rb.failures.is_empty() && rb.warnings.is_empty(), "{rb:?}");
    assert!(rb.old_groups_unchanged);
    assert!(
        report.error.as_deref().unwrap().contains("unused"),
        "{:?}",
        report.error
    );
    assert!(
        rb.old_groups[0].contains("unchanged, 2/2 instance(s) in service"),
        "{:?}",
        rb.old_groups
    );
    for (id, _, state) in instance_images(&e.c, &stopped).await {
        assert_eq!(state, "terminated", "{id}");
    }
    let after = env_groups(&e.c, &e.app, ENV).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].instances(), before.instances());
    assert_eq!(
        (
            after[0].min_size(),
            after[0].max_size(),
            after[0].desired_capacity()
        ),
        (
            before.min_size(),
            before.max_size(),
            before.desired_capacity()
        )
    );
    assert_one_group_on(&e, &ami1).await;
    assert!(
        samples
            .iter()
            .all(|s| old_ids.iter().all(|i| s.contains(i))),
        "an old instance left service"
    );
    common::assert_settled(&e.c, &e.app, ENV, "alb_unhealthy_new_group_is_rolled_back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_during_the_health_wait_rolls_back() {
    let (lab, _serial) = lab().await;
    let e = set_up(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    s.deploy(&ami1).await.unwrap();
    let (old, old_ids) = assert_one_group_on(&e, &ami1).await;

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
    // What Ctrl-C does in the binary: cancel the session's token. Before that, someone else takes one old
    // instance off the target group: the rollback must not claim the old group is fully in service.
    let cancel = s2.cancel_token();
    let c2 = e.c.clone();
    let app = e.app.clone();
    let tg = e.tg.clone();
    let taken_off = old_ids[0].clone();
    tokio::spawn(async move {
        while env_groups(&c2, &app, ENV).await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c2.elbv2
            .deregister_targets()
            .target_group_arn(&tg)
            .targets(
                aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                    .id(&taken_off)
                    .build(),
            )
            .send()
            .await
            .expect("DeregisterTargets");
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let report = match s2.deploy(&ami2).await {
        Err(RolloutError::RolledBack(r)) => r,
        other => panic!("expected a rollback: {other:?}\n{}", out.text()),
    };
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the interrupt did not end the wait"
    );
    assert!(
        report.error.as_deref().unwrap().starts_with("interrupted"),
        "{:?}",
        report.error
    );
    let rb = report.rollback.as_ref().unwrap();
    assert!(rb.failures.is_empty() && rb.old_groups_unchanged, "{rb:?}");
    assert_eq!(rb.warnings.len(), 1, "{rb:?}");
    assert!(
        rb.warnings[0].contains("were in service before the rollout")
            && rb.warnings[0].contains(&old_ids[0])
            && !rb.warnings[0].contains(&old_ids[1]),
        "{}",
        rb.warnings[0]
    );
    assert!(
        rb.old_groups[0].contains("unchanged, 1/2 instance(s) in service"),
        "{:?}",
        rb.old_groups
    );
    assert_eq!(report.attention, rb.warnings);
    let groups = env_groups(&e.c, &e.app, ENV).await;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].auto_scaling_group_name(), Some(old.as_str()));
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "an_interrupt_during_the_health_wait_rolls_back",
    )
    .await;
}

/// [`alb_manifest`] with a rollback window of one release.
fn alb_manifest_keeping_one(lab: &Lab, app: &str) -> PathBuf {
    let path = alb_manifest(lab, app);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["defaults"]["blue_green"] = json!({"keep_previous_releases": 1, "keep_previous_for": "1h"});
    doc["defaults"]["timeouts"]["min_healthy_seconds"] = json!(1);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_undo_brings_the_kept_release_back_and_never_empties_the_target_group() {
    let (lab, _serial) = lab().await;
    let e = set_up_alb(lab, ENV, app_name(lab), alb_manifest_keeping_one).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, out) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    let r1 = s
        .deploy(&ami1)
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", out.text()));
    let g1 = r1.new_group.unwrap().name;
    assert_one_group_on(&e, &ami1).await;
    let r2 = s
        .deploy(&ami2)
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", out.text()));
    let g2 = r2.new_group.unwrap().name;
    assert_eq!(r2.kept.len(), 1);
    assert_eq!(r2.kept[0].group, g1);
    // Kept: detached from the target group, size 0, its launch template still there.
    let kept = env_groups(&e.c, &e.app, ENV)
        .await
        .into_iter()
        .find(|g| g.auto_scaling_group_name() == Some(g1.as_str()))
        .expect("the previous release was not kept");
    assert!(kept.target_group_arns().is_empty());
    assert_eq!(kept.desired_capacity(), Some(0));
    assert!(template_exists(&e.c, &format!("lt-{}", &g1[4..])).await);

    let stop = CancellationToken::new();
    let sampler = sample(e.c.clone(), e.tg.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let u = s
        .undo()
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", out.text()));
    stop.cancel();
    let samples = sampler.await.unwrap();
    assert!(u.undo);
    assert_eq!(u.new_group.as_ref().unwrap().name, g1);
    assert_eq!(u.retired, vec![g2.clone()]);
    let (g, ids1) = assert_one_group_on(&e, &ami1).await;
    assert_eq!(g, g1);
    assert!(
        samples.iter().all(|s| !s.is_empty()),
        "a sample saw no healthy target ({} samples)",
        samples.len()
    );
    assert_eq!(
        samples.last().unwrap(),
        &ids1.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert!(!template_exists(&e.c, &format!("lt-{}", &g2[4..])).await);
    eprintln!(
        "figures: ALB undo {:.2} s / {} requests, {} samples",
        u.durations.total_s,
        u.aws_requests_total,
        samples.len()
    );
    common::assert_settled(&e.c, &e.app, ENV, "alb undo").await;
}
