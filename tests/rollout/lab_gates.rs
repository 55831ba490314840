//! Issue 16, item 2 on the lab (moto, CloudWatch alarms through the lab's CBOR front), classic ELB:
//! alarm gates and the bake time. Release A (first: no bake), B (the alarm stays OK for the bake time:
//! A, kept whole and detached meanwhile, is deleted after it), C (the alarm is set to ALARM during the
//! bake time: the rollout rolls back by itself — B serves again, C is gone, the ELB never empty). Then
//! preflight refuses a rollout while an alarm is in ALARM or missing, with reads only. Every outcome is
//! read back from moto.

use super::common;

use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use bakery_core::aws::Clients;
use bakery_lab::Lab;
use bakery_rollout::RolloutError;
use bakery_rollout::config::Overrides;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ENV: &str = "staging";

/// The bake time: long enough for the test to set the alarm once the standby is kept, under the
/// realism layer too.
const BAKE: &str = "40s";

fn name(g: &AutoScalingGroup) -> String {
    g.auto_scaling_group_name().unwrap_or_default().to_string()
}

fn tag(g: &AutoScalingGroup, k: &str) -> Option<String> {
    g.tags()
        .iter()
        .find(|t| t.key() == Some(k))
        .and_then(|t| t.value())
        .map(str::to_string)
}

fn ids(g: &AutoScalingGroup) -> Vec<String> {
    g.instances()
        .iter()
        .filter_map(|i| i.instance_id())
        .map(str::to_string)
        .collect()
}

/// A metric alarm `name` in OK.
async fn alarm(c: &Clients, name: &str) {
    c.cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("Shop")
        .metric_name("5xx")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
    set_alarm(c, name, StateValue::Ok).await;
}

async fn set_alarm(c: &Clients, name: &str, state: StateValue) {
    c.cloudwatch
        .set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason("set by the test")
        .send()
        .await
        .expect("SetAlarmState");
}

async fn run(lab: &Lab, manifest: &Path, args: &[&str]) -> (u8, String, String) {
    let m = manifest.to_str().unwrap().to_string();
    let mut all = vec!["--manifest", m.as_str(), "--env", ENV];
    all.extend_from_slice(args);
    cli(lab, &all).await
}

/// A classic-ELB environment of 2 instances gated on `alarm_name` for [`BAKE`], set up.
async fn gated_env(lab: &Lab, app: &str, alarm_name: &str) -> PathBuf {
    let dir = temp_dir(lab, app);
    let manifest = write_manifest(
        &dir,
        &json!({
            "app": app,
            "region": "us-east-1",
            "defaults": {
                "load_balancer": {"kind": "classic", "health_check": {"path": "/"}, "draining_seconds": 0},
                "network": {"availability_zones": ["us-east-1a", "us-east-1b"]},
                "capacity": {"min": 1, "max": 4, "desired": 2},
                "timeouts": {"health_seconds": 60, "min_healthy_seconds": 1, "drain_seconds": 30,
                             "retire_seconds": 30, "rollback_seconds": 30},
                "gates": {"alarms": [alarm_name], "bake_time": BAKE, "check_interval_seconds": 1}
            },
            "environments": {"staging": {}}
        }),
    );
    let (code, out, err) = run(lab, &manifest, &["setup"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    manifest
}

/// Waits (up to a minute) until the environment's group `g` is kept (tagged `retired`); as then seen.
async fn until_kept(c: &Clients, app: &str, g: &str) -> Option<AutoScalingGroup> {
    for _ in 0..600 {
        if let Some(k) = env_groups(c, app, ENV)
            .await
            .into_iter()
            .find(|x| name(x) == g)
            && tag(&k, "bakery:rollout-state").as_deref() == Some("retired")
        {
            return Some(k);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_in_alarm_during_the_bake_time_rolls_the_release_back_by_itself() {
    let (lab, _serial) = lab().await;
    assert_lab_shares_classic_elbs(lab).await;
    let c = clients(lab).await;
    let app = common::short_app_name(lab, 'a');
    let alarm_name = format!("{app}-5xx");
    alarm(&c, &alarm_name).await;
    let manifest = gated_env(lab, &app, &alarm_name).await;
    let lb = format!("elb-{app}-{ENV}");
    let ami_a = register_ami(lab, &c, "gated-a").await;
    let ami_b = register_ami(lab, &c, "gated-b").await;
    let ami_c = register_ami(lab, &c, "gated-c").await;

    // A: a first rollout has nothing to return to, so no bake time.
    let (code, out, err) = run(lab, &manifest, &["--json", "deploy", "--ami", &ami_a]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let r_a: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r_a["bake"]["outcome"], "skipped", "{out}");
    let g_a = r_a["new_group"]["name"].as_str().unwrap().to_string();

    // B: the alarm stays OK for the bake time; A stays whole (2 instances) and detached meanwhile, and is
    // deleted after it (the rollback window is off).
    let watch = {
        let (c, app, g_a) = (c.clone(), app.clone(), g_a.clone());
        tokio::spawn(async move { until_kept(&c, &app, &g_a).await })
    };
    let t = std::time::Instant::now();
    let (code, out, err) = run(lab, &manifest, &["--json", "deploy", "--ami", &ami_b]).await;
    let wall_b = t.elapsed();
    assert_eq!(code, 0, "{out}\n{err}");
    let r_b: serde_json::Value = serde_json::from_str(&out).unwrap();
    let g_b = r_b["new_group"]["name"].as_str().unwrap().to_string();
    assert_eq!(r_b["bake"]["outcome"], "passed", "{out}");
    assert!(r_b["bake"]["checks"].as_u64().unwrap() >= 2, "{out}");
    assert!(r_b["bake"]["watched_s"].as_f64().unwrap() >= 40.0, "{out}");
    let standby = watch
        .await
        .unwrap()
        .expect("A was never kept during the bake time");
    assert_eq!(standby.desired_capacity(), Some(2));
    assert!(
        standby.load_balancer_names().is_empty(),
        "A was still attached"
    );
    assert_eq!(r_b["retired"], json!([g_a]));
    assert_eq!(r_b["expired"], json!([g_a]), "{out}");
    assert!(r_b["kept"].as_array().is_none_or(Vec::is_empty), "{out}");
    let groups = env_groups(&c, &app, ENV).await;
    assert_eq!(
        groups.iter().map(name).collect::<Vec<_>>(),
        vec![g_b.clone()]
    );
    assert!(!template_exists(&c, &format!("lt-{}", &g_a[4..])).await);
    let ids_b = ids(&groups[0]);
    common::assert_settled(&c, &app, ENV, "after release B").await;
    let (code, out, err) = run(lab, &manifest, &["plan", "--ami", &ami_c]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "bake time: keep the previous release whole and detached, read {alarm_name} every 1 s for 40s"
        )),
        "{out}"
    );
    // The diff says so too.
    assert!(
        out.contains(&format!(
            "- group {g_b}: ")) && out.contains(&format!(
            "; deleted after the 40s bake time (kept whole and detached meanwhile; brought back if {alarm_name} goes ALARM)"
        )),
        "{out}"
    );

    // C: the alarm goes ALARM during the bake time; the rollout brings B back by itself, ELB sampled.
    let flip = {
        let (c, app, g_b, alarm_name) = (c.clone(), app.clone(), g_b.clone(), alarm_name.clone());
        tokio::spawn(async move {
            let kept = until_kept(&c, &app, &g_b).await.is_some();
            if kept {
                set_alarm(&c, &alarm_name, StateValue::Alarm).await;
            }
            kept
        })
    };
    lab.reset_request_counts();
    let stop = CancellationToken::new();
    let sampler = sample_elb(c.clone(), lb.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = std::time::Instant::now();
    let (code, out, err) = run(lab, &manifest, &["--json", "deploy", "--ami", &ami_c]).await;
    let wall_c = t.elapsed();
    stop.cancel();
    let samples = sampler.await.unwrap();
    assert!(flip.await.unwrap(), "B was never kept during C's bake time");
    assert_eq!(code, 1, "{out}\n{err}");
    let r_c: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r_c["status"], "rolled-back", "{out}");
    assert_eq!(r_c["bake"]["outcome"], "tripped", "{out}");
    let tripped = r_c["bake"]["tripped_by"].as_str().unwrap();
    assert!(
        tripped.contains(&alarm_name) && tripped.contains("ALARM"),
        "{tripped}"
    );
    assert!(
        r_c["bake"]["watched_s"].as_f64().unwrap() < 40.0,
        "the gate did not trip before the bake time ended: {out}"
    );
    let g_c = r_c["new_group"]["name"].as_str().unwrap().to_string();
    let actions = r_c["rollback"]["actions"].to_string();
    assert!(
        actions.contains(&format!("brought back {g_b}")) && actions.contains(&g_c),
        "{actions}"
    );

    // B serves again: one group, live, its instances InService and untagged; C and its template are gone.
    let groups = env_groups(&c, &app, ENV).await;
    assert_eq!(
        groups.iter().map(name).collect::<Vec<_>>(),
        vec![g_b.clone()]
    );
    let b = &groups[0];
    assert_eq!(tag(b, "bakery:rollout-state").as_deref(), Some("live"));
    assert_eq!(tag(b, "bakery:keep-until"), None);
    assert_eq!(b.load_balancer_names(), std::slice::from_ref(&lb));
    assert_eq!(ids(b), ids_b, "B's instances were replaced");
    for (id, image, state) in instance_images(&c, &ids_b).await {
        assert_eq!(
            (image.as_str(), state.as_str()),
            (ami_b.as_str(), "running"),
            "{id}"
        );
    }
    let health = elb_health(&c, &lb).await;
    for id in &ids_b {
        assert!(
            health.iter().any(|(i, s)| i == id && s == "InService"),
            "{id}: {health:?}"
        );
    }
    assert!(!template_exists(&c, &format!("lt-{}", &g_c[4..])).await);
    let empty = samples.iter().filter(|s| s.is_empty()).count();
    assert_eq!(
        empty,
        0,
        "{empty} of {} samples saw no InService instance",
        samples.len()
    );
    assert!(samples.last().unwrap().iter().all(|i| ids_b.contains(i)));
    // The report counts what moto saw (but for the sampler's and the test's own requests).
    let counts = lab.request_counts();
    assert!(
        counts.get("DescribeAlarms").copied().unwrap_or(0) >= 1,
        "{counts:?}"
    );
    common::assert_settled(&c, &app, ENV, "after the automatic rollback").await;

    // Preflight: an alarm already in ALARM, or one that does not exist, stops the next rollout before
    // anything changes.
    lab.reset_request_counts();
    let (code, out, err) = run(lab, &manifest, &["deploy", "--ami", &ami_c]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains(&format!(
            "gates.alarms: {alarm_name} is ALARM (set by the test) before the rollout"
        )),
        "{err}"
    );
    assert!(
        writes(&lab.request_counts()).is_empty(),
        "{:?}",
        lab.request_counts()
    );
    c.cloudwatch
        .delete_alarms()
        .alarm_names(&alarm_name)
        .send()
        .await
        .expect("DeleteAlarms");
    // The lab's CBOR front carries errors as AWS does: the SDK reads the code.
    let e = c
        .cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm_name)
        .state_value(StateValue::Ok)
        .state_reason("gone")
        .send()
        .await
        .expect_err("SetAlarmState of a deleted alarm");
    assert_eq!(
        aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&e),
        Some("ResourceNotFound"),
        "{e:?}"
    );
    let (code, out, err) = run(lab, &manifest, &["plan", "--ami", &ami_c]).await;
    assert!(
        format!("{out}{err}").contains(&format!("gates.alarms: {alarm_name} does not exist")),
        "{code}: {out}\n{err}"
    );

    eprintln!(
        "figures: rollout B (bake {BAKE} passed) {:.2} s / {} requests (wall {:.2} s): {}; rollout C (tripped, rolled back) {:.2} s / {} requests (wall {:.2} s, bake watched {:.1} s, rollback {:.2} s): {}",
        r_b["durations"]["total_s"].as_f64().unwrap(),
        r_b["aws_requests_total"],
        wall_b.as_secs_f64(),
        r_b["aws_requests"],
        r_c["durations"]["total_s"].as_f64().unwrap(),
        r_c["aws_requests_total"],
        wall_c.as_secs_f64(),
        r_c["bake"]["watched_s"].as_f64().unwrap(),
        r_c["durations"]["rollback_s"].as_f64().unwrap(),
        r_c["aws_requests"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_bake_time_leaves_the_previous_release_kept_whole_for_undo() {
    let (lab, _serial) = lab().await;
    assert_lab_shares_classic_elbs(lab).await;
    let c = clients(lab).await;
    let app = common::short_app_name(lab, 'i');
    let alarm_name = format!("{app}-5xx");
    alarm(&c, &alarm_name).await;
    let manifest = gated_env(lab, &app, &alarm_name).await;
    let ami_a = register_ami(lab, &c, "gated-a").await;
    let ami_b = register_ami(lab, &c, "gated-b").await;
    let (code, out, err) = run(lab, &manifest, &["--json", "deploy", "--ami", &ami_a]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let r_a: serde_json::Value = serde_json::from_str(&out).unwrap();
    let g_a = r_a["new_group"]["name"].as_str().unwrap().to_string();

    // B, interrupted (a first Ctrl-C) once A is kept: B serves, A stays kept, whole and detached.
    let (s, out) = session(lab, &manifest, ENV, Overrides::default()).await;
    let cancel = s.cancel_token();
    let interrupt = {
        let (c, app, g_a) = (c.clone(), app.clone(), g_a.clone());
        tokio::spawn(async move {
            let kept = until_kept(&c, &app, &g_a).await.is_some();
            tokio::time::sleep(Duration::from_millis(500)).await;
            cancel.cancel();
            kept
        })
    };
    let r = s.deploy(&ami_b).await;
    assert!(interrupt.await.unwrap(), "A was never kept");
    let report = match r {
        Err(RolloutError::Incomplete(r)) => r,
        other => panic!("{other:?}\n{}", out.text()),
    };
    assert_eq!(report.bake.as_ref().unwrap().outcome, "interrupted");
    assert_eq!(
        report.error.as_deref(),
        Some("interrupted during the bake time")
    );
    assert!(
        report
            .attention
            .iter()
            .any(|a| a.starts_with(&g_a)
                && a.contains("`rollout undo --env staging` brings it back")),
        "{:?}",
        report.attention
    );
    let g_b = report.new_group.as_ref().unwrap().name.clone();
    let kept = env_groups(&c, &app, ENV)
        .await
        .into_iter()
        .find(|g| name(g) == g_a)
        .expect("A was deleted");
    assert_eq!(
        tag(&kept, "bakery:rollout-state").as_deref(),
        Some("retired")
    );
    assert_eq!(kept.desired_capacity(), Some(2));
    assert_eq!(ids(&kept).len(), 2);
    assert!(kept.load_balancer_names().is_empty());
    common::assert_settled(&c, &app, ENV, "after the interrupted bake").await;

    // `rollout undo` brings A back; B is deleted.
    let (code, out, err) = run(lab, &manifest, &["--json", "undo"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let u: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(u["new_group"]["name"], g_a.as_str());
    assert_eq!(u["retired"], json!([g_b]));
    let groups = env_groups(&c, &app, ENV).await;
    assert_eq!(
        groups.iter().map(name).collect::<Vec<_>>(),
        vec![g_a.clone()]
    );
    assert_eq!(
        tag(&groups[0], "bakery:rollout-state").as_deref(),
        Some("live")
    );
    common::assert_settled(&c, &app, ENV, "after undo").await;
}
