//! Issue 16, item 1 on the lab (moto), classic ELB: blue-green's rollback window and `rollout undo`.
//! Release A, then B: A is kept (detached, size 0, tagged `retired` with its window) with its launch
//! template; `rollout plan` shows it; `rollout undo` brings A back behind the load balancer with B
//! serving until A is in service (the ELB sampled throughout: never zero InService), then deletes B;
//! undo with nothing kept fails with a clear error; a window that ended is retired by `rollout gc` (dry
//! run: reads only) and by the next rollout. Every outcome is read back from moto.

use super::common;

use aws_sdk_autoscaling::types::AutoScalingGroup;
use bakery_core::aws::Clients;
use bakery_lab::Lab;
use bakery_rollout::config::Overrides;
use common::*;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ENV: &str = "staging";

fn app_name(lab: &Lab) -> String {
    common::short_app_name(lab, 'u')
}

/// A classic-ELB environment of 2 instances with the rollback window `blue_green`.
fn manifest(lab: &Lab, app: &str, blue_green: serde_json::Value) -> PathBuf {
    let dir = temp_dir(lab, app);
    write_manifest(
        &dir,
        &json!({
            "app": app,
            "region": "us-east-1",
            "defaults": {
                "load_balancer": {"kind": "classic", "health_check": {"path": "/"}, "draining_seconds": 0},
                "network": {"availability_zones": ["us-east-1a", "us-east-1b"]},
                "capacity": {"min": 1, "max": 4, "desired": 2},
                // 1 s of uninterrupted health: old and new serve together long enough to be sampled.
                "timeouts": {"health_seconds": 60, "min_healthy_seconds": 1, "drain_seconds": 30,
                             "retire_seconds": 30, "rollback_seconds": 30},
                "blue_green": blue_green
            },
            "environments": {"staging": {}}
        }),
    )
}

struct Env {
    c: Clients,
    app: String,
    manifest: PathBuf,
    lb: String,
}

async fn set_up(lab: &'static Lab, blue_green: serde_json::Value) -> Env {
    let c = clients(lab).await;
    let app = app_name(lab);
    let manifest = manifest(lab, &app, blue_green);
    let (s, out) = session(lab, &manifest, ENV, Overrides::default()).await;
    s.setup(false)
        .await
        .unwrap_or_else(|e| panic!("setup: {e}\n{}", out.text()));
    Env {
        c,
        lb: format!("elb-{app}-{ENV}"),
        app,
        manifest,
    }
}

fn tag(g: &AutoScalingGroup, k: &str) -> Option<String> {
    g.tags()
        .iter()
        .find(|t| t.key() == Some(k))
        .and_then(|t| t.value())
        .map(str::to_string)
}

fn name(g: &AutoScalingGroup) -> String {
    g.auto_scaling_group_name().unwrap_or_default().to_string()
}

fn ids(g: &AutoScalingGroup) -> Vec<String> {
    g.instances()
        .iter()
        .filter_map(|i| i.instance_id())
        .map(str::to_string)
        .collect()
}

/// The environment's group called `n`, as moto has it.
async fn group(e: &Env, n: &str) -> Option<AutoScalingGroup> {
    env_groups(&e.c, &e.app, ENV)
        .await
        .into_iter()
        .find(|g| name(g) == n)
}

/// Runs the command line against the environment; (exit code, stdout, stderr).
async fn run(lab: &Lab, e: &Env, args: &[&str]) -> (u8, String, String) {
    let m = e.manifest.to_str().unwrap().to_string();
    let mut all = vec!["--manifest", m.as_str(), "--env", ENV];
    all.extend_from_slice(args);
    cli(lab, &all).await
}

/// Rolls `ami` out through the command line (`--json`); the report.
async fn deploy(lab: &Lab, e: &Env, ami: &str) -> serde_json::Value {
    let (code, out, err) = run(lab, e, &["--json", "deploy", "--ami", ami]).await;
    assert_eq!(code, 0, "deploy {ami}: {out}\n{err}");
    serde_json::from_str(&out).unwrap()
}

/// Asserts `g` is kept as the window says: retired, detached, size 0 with no instance, its launch
/// template still there.
async fn assert_kept(e: &Env, g: &str, retired_by: &str) {
    let k = group(e, g)
        .await
        .unwrap_or_else(|| panic!("{g} was not kept"));
    assert_eq!(tag(&k, "bakery:rollout-state").as_deref(), Some("retired"));
    assert_eq!(tag(&k, "bakery:release-run").as_deref(), Some(retired_by));
    assert!(tag(&k, "bakery:retired-at").is_some());
    assert!(tag(&k, "bakery:keep-until").is_some());
    assert_eq!(
        (k.min_size(), k.max_size(), k.desired_capacity()),
        (Some(0), Some(0), Some(0))
    );
    assert!(k.instances().is_empty(), "{:?}", ids(&k));
    assert!(k.load_balancer_names().is_empty(), "{g} is still attached");
    assert!(template_exists(&e.c, &format!("lt-{}", &g[4..])).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_brings_the_kept_release_back_and_never_leaves_the_load_balancer_empty() {
    let (lab, _serial) = lab().await;
    assert_lab_shares_classic_elbs(lab).await;
    let e = set_up(
        lab,
        json!({"keep_previous_releases": 1, "keep_previous_for": "1h"}),
    )
    .await;
    let ami_a = register_ami(lab, &e.c, "release-a").await;
    let ami_b = register_ami(lab, &e.c, "release-b").await;

    // Nothing kept yet: a clear error, exit 1, reads only.
    lab.reset_request_counts();
    let (code, out, err) = run(lab, &e, &["undo"]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("rollout: error: no previous release kept: ")
            && err.contains("bakery:rollout-state=retired"),
        "{err}"
    );
    assert!(
        writes(&lab.request_counts()).is_empty(),
        "{:?}",
        lab.request_counts()
    );

    // Release A, then B: A is kept, detached at size 0, with its launch template.
    let r_a = deploy(lab, &e, &ami_a).await;
    let g_a = r_a["new_group"]["name"].as_str().unwrap().to_string();
    let t = std::time::Instant::now();
    let r_b = deploy(lab, &e, &ami_b).await;
    let deploy_wall = t.elapsed();
    let g_b = r_b["new_group"]["name"].as_str().unwrap().to_string();
    assert_eq!(r_b["retired"], json!([g_a]));
    assert_eq!(r_b["kept"][0]["group"], g_a.as_str());
    assert_eq!(r_b["deleted_launch_templates"], json!([]));
    assert_kept(&e, &g_a, r_b["run_id"].as_str().unwrap()).await;
    let live_b = group(&e, &g_b).await.unwrap();
    let ids_b = ids(&live_b);
    assert_eq!(ids_b.len(), 2);
    assert_eq!(
        tag(&live_b, "bakery:rollout-state").as_deref(),
        Some("live")
    );
    common::assert_settled(&e.c, &e.app, ENV, "after release B").await;

    // plan shows what is kept and until when, with reads only.
    lab.reset_request_counts();
    let (code, out, err) = run(lab, &e, &["plan"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let keep_until = tag(&group(&e, &g_a).await.unwrap(), "bakery:keep-until").unwrap();
    assert!(
        out.contains(&format!("kept: {g_a} [{ami_a}] size 0, retired "))
            && out.contains(&format!("kept until {keep_until}")),
        "{out}"
    );
    // Its diff: a rollout would keep B instead of deleting it, and A, pushed out of the one-release
    // window, would go with its launch template.
    assert!(
        out.contains(&format!("- group {g_b}: live: {ami_b}, t3.micro, 2 instance(s)"))
            && out.contains(&format!(
                "+ group {g_b}: kept for `rollout undo` until "
            ))
            && out.contains(&format!(
                "- kept release {g_a}: {ami_a}: 1 newer release(s) kept (blue_green.keep_previous_releases: 1)\n- launch template lt-{}",
                &g_a[4..]
            )),
        "{out}"
    );
    assert!(writes(&lab.request_counts()).is_empty());

    // Undo, with the ELB sampled throughout.
    lab.reset_request_counts();
    let stop = CancellationToken::new();
    let sampler = sample_elb(e.c.clone(), e.lb.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = std::time::Instant::now();
    let (code, out, err) = run(lab, &e, &["--json", "undo"]).await;
    let undo_wall = t.elapsed();
    stop.cancel();
    let samples = sampler.await.unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    let r_undo: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r_undo["status"], "succeeded");
    assert_eq!(r_undo["undo"], true);
    assert_eq!(r_undo["new_group"]["name"], g_a.as_str());
    assert_eq!(r_undo["retired"], json!([g_b]));
    assert_eq!(r_undo["ami"]["id"], ami_a.as_str());
    // The undo counts its own requests; moto agrees (but for the sampler's DescribeInstanceHealth).
    let moto_total: u64 = lab
        .request_counts()
        .iter()
        .filter(|(k, _)| k.as_str() != "DescribeInstanceHealth")
        .map(|(_, v)| v)
        .sum();
    let own_health = r_undo["aws_requests"]["Elastic Load Balancing.DescribeInstanceHealth"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        r_undo["aws_requests_total"].as_u64().unwrap() - own_health,
        moto_total,
        "{} vs {:?}",
        r_undo["aws_requests"],
        lab.request_counts()
    );

    // A serves again: one group, live, 2 instances of A InService; B and its launch template are gone.
    let groups = env_groups(&e.c, &e.app, ENV).await;
    assert_eq!(
        groups.iter().map(name).collect::<Vec<_>>(),
        vec![g_a.clone()]
    );
    let a = &groups[0];
    assert_eq!(tag(a, "bakery:rollout-state").as_deref(), Some("live"));
    for gone in [
        "bakery:retired-at",
        "bakery:keep-until",
        "bakery:release-run",
    ] {
        assert_eq!(tag(a, gone), None, "{gone}");
    }
    assert_eq!(a.desired_capacity(), Some(2));
    assert_eq!(a.load_balancer_names(), std::slice::from_ref(&e.lb));
    let ids_a = ids(a);
    assert_eq!(ids_a.len(), 2);
    for (id, image, state) in instance_images(&e.c, &ids_a).await {
        assert_eq!(
            (image.as_str(), state.as_str()),
            (ami_a.as_str(), "running"),
            "{id}"
        );
    }
    let health = elb_health(&e.c, &e.lb).await;
    for id in &ids_a {
        assert!(
            health.iter().any(|(i, s)| i == id && s == "InService"),
            "{id}: {health:?}"
        );
    }
    assert!(!template_exists(&e.c, &format!("lt-{}", &g_b[4..])).await);
    for (id, _, state) in instance_images(&e.c, &ids_b).await {
        assert_eq!(state, "terminated", "{id}");
    }
    // Never zero in service; B left only after A was in service.
    let empty = samples.iter().filter(|s| s.is_empty()).count();
    assert_eq!(
        empty,
        0,
        "{empty} of {} samples saw no InService instance",
        samples.len()
    );
    let first_a = samples
        .iter()
        .position(|s| ids_a.iter().any(|i| s.contains(i)))
        .expect("the sampler never saw A in service");
    assert!(
        samples[..first_a]
            .iter()
            .all(|s| ids_b.iter().all(|i| s.contains(i))),
        "B left before A was in service"
    );
    assert!(samples.last().unwrap().iter().all(|i| ids_a.contains(i)));
    common::assert_settled(&e.c, &e.app, ENV, "after undo").await;

    // Nothing is kept any more: the bad release was deleted, not kept.
    let (code, _, err) = run(lab, &e, &["undo"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no previous release kept: "), "{err}");
    let (code, _, err) = run(lab, &e, &["undo", "--dry-run"]).await;
    assert_eq!(code, 2, "{err}");

    eprintln!(
        "figures: rollout B (keeping A) {:.2} s / {} requests (wall {:.2} s): {}; undo {:.2} s / {} requests (wall {:.2} s, {} samples): {}",
        r_b["durations"]["total_s"].as_f64().unwrap(),
        r_b["aws_requests_total"],
        deploy_wall.as_secs_f64(),
        r_b["aws_requests"],
        r_undo["durations"]["total_s"].as_f64().unwrap(),
        r_undo["aws_requests_total"],
        undo_wall.as_secs_f64(),
        samples.len(),
        r_undo["aws_requests"],
    );
}

/// The window of `an_ended_window_is_retired_by_gc_and_by_the_next_rollout`: longer than a rollout's
/// retirement takes under the realism layer (instances held in shutting-down), so that a release is not
/// out of its window before the rollout that kept it ends.
const WINDOW: Duration = Duration::from_secs(10);

/// gc's `--json` report. Exit 1 only for problems outside this test: the shared lab holds other tests'
/// groups and fleets whose launch templates are gone ("cannot tell which AMI…", which stops AMI removal,
/// not the kept releases' retirement).
fn gc_report((code, out, err): (u8, String, String)) -> serde_json::Value {
    let doc: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let problems = doc["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems
            .iter()
            .all(|p| p.as_str().unwrap().starts_with("cannot tell which AMI")),
        "{doc}"
    );
    assert_eq!(code, u8::from(!problems.is_empty()), "{out}\n{err}");
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_window_is_retired_by_gc_and_by_the_next_rollout() {
    let (lab, _serial) = lab().await;
    assert_lab_shares_classic_elbs(lab).await;
    let e = set_up(
        lab,
        json!({"keep_previous_releases": 2, "keep_previous_for": format!("{}s", WINDOW.as_secs())}),
    )
    .await;
    let amis = [
        register_ami(lab, &e.c, "release-a").await,
        register_ami(lab, &e.c, "release-b").await,
        register_ami(lab, &e.c, "release-c").await,
        register_ami(lab, &e.c, "release-d").await,
    ];
    let gc = |dry: bool| {
        let mut a = vec![
            "--json",
            "gc",
            "--keep",
            "10",
            "--name-prefix",
            "no-such-ami-",
        ];
        if dry {
            a.insert(0, "--dry-run");
        }
        a
    };

    // A, then B: A kept for WINDOW.
    let g_a = deploy(lab, &e, &amis[0]).await["new_group"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let r_b = deploy(lab, &e, &amis[1]).await;
    assert_kept(&e, &g_a, r_b["run_id"].as_str().unwrap()).await;
    let doc = gc_report(run(lab, &e, &gc(false)).await);
    assert_eq!(doc["kept_releases"][0]["action"], "kept", "{doc}");
    assert!(group(&e, &g_a).await.is_some());
    tokio::time::sleep(WINDOW + Duration::from_secs(1)).await;

    // The window ended: gc --dry-run says so with reads only; gc deletes A and its launch template.
    lab.reset_request_counts();
    let doc = gc_report(run(lab, &e, &gc(true)).await);
    assert_eq!(doc["kept_releases"][0]["group"], g_a.as_str());
    assert_eq!(doc["kept_releases"][0]["action"], "would-remove", "{doc}");
    assert!(
        doc["kept_releases"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("its window ended at"),
        "{doc}"
    );
    assert!(
        writes(&lab.request_counts()).is_empty(),
        "{:?}",
        lab.request_counts()
    );
    assert!(group(&e, &g_a).await.is_some());
    let doc = gc_report(run(lab, &e, &gc(false)).await);
    assert_eq!(doc["kept_releases"][0]["action"], "removed", "{doc}");
    assert!(group(&e, &g_a).await.is_none());
    assert!(!template_exists(&e.c, &format!("lt-{}", &g_a[4..])).await);
    common::assert_settled(&e.c, &e.app, ENV, "after gc").await;

    // C keeps B; once B's window ended, D keeps C and deletes B (two releases would fit: time ended it).
    let g_b = r_b["new_group"]["name"].as_str().unwrap().to_string();
    let r_c = deploy(lab, &e, &amis[2]).await;
    assert_kept(&e, &g_b, r_c["run_id"].as_str().unwrap()).await;
    tokio::time::sleep(WINDOW + Duration::from_secs(1)).await;
    let r_d = deploy(lab, &e, &amis[3]).await;
    let g_c = r_c["new_group"]["name"].as_str().unwrap().to_string();
    assert_eq!(r_d["kept"][0]["group"], g_c.as_str(), "{r_d}");
    assert_eq!(r_d["expired"], json!([g_b]), "{r_d}");
    assert!(group(&e, &g_b).await.is_none());
    assert!(!template_exists(&e.c, &format!("lt-{}", &g_b[4..])).await);
    assert_kept(&e, &g_c, r_d["run_id"].as_str().unwrap()).await;
    let names: Vec<String> = env_groups(&e.c, &e.app, ENV)
        .await
        .iter()
        .map(name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    common::assert_settled(&e.c, &e.app, ENV, "after the next rollout").await;
}

/// Stops the instances of group `name` as soon as it has some (moto's classic ELB then reports them
/// OutOfService); returns them.
fn sabotage(c: Clients, app: String, name: String) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        loop {
            let groups = env_groups(&c, &app, ENV).await;
            if let Some(g) = groups
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(name.as_str()))
                .filter(|g| !g.instances().is_empty())
            {
                let ids = ids(g);
                c.ec2
                    .stop_instances()
                    .set_instance_ids(Some(ids.clone()))
                    .send()
                    .await
                    .expect("StopInstances");
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_whose_kept_release_is_unhealthy_returns_it_to_the_window_and_leaves_the_serving_one()
 {
    let (lab, _serial) = lab().await;
    assert_lab_shares_classic_elbs(lab).await;
    let e = set_up(
        lab,
        json!({"keep_previous_releases": 1, "keep_previous_for": "1h"}),
    )
    .await;
    let ami_a = register_ami(lab, &e.c, "release-a").await;
    let ami_b = register_ami(lab, &e.c, "release-b").await;
    let g_a = deploy(lab, &e, &ami_a).await["new_group"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let r_b = deploy(lab, &e, &ami_b).await;
    let g_b = r_b["new_group"]["name"].as_str().unwrap().to_string();
    let kept_before = group(&e, &g_a).await.unwrap();
    let serving_before = group(&e, &g_b).await.unwrap();

    // A's instances are stopped as soon as the undo launches them: a 6 s health timeout (a real option,
    // through the library) rolls the undo back.
    let stopper = sabotage(e.c.clone(), e.app.clone(), g_a.clone());
    let (s, out) = session(
        lab,
        &e.manifest,
        ENV,
        Overrides {
            health_timeout: Some(Duration::from_secs(6)),
            min_healthy: Some(Duration::from_secs(3)),
            ..Default::default()
        },
    )
    .await;
    let err = s.undo().await.expect_err("the undo must fail");
    let stopped = stopper.await.unwrap();
    let bakery_rollout::RolloutError::RolledBack(r) = &err else {
        panic!("{err}\n{}", out.text());
    };
    assert!(r.undo);
    let rb = r.rollback.as_ref().unwrap();
    assert!(
        rb.actions
            .iter()
            .any(|a| a.starts_with(&format!("returned {g_a} to the kept releases"))),
        "{rb:?}"
    );
    assert!(rb.failures.is_empty(), "{rb:?}");
    assert!(rb.old_groups_unchanged, "{rb:?}");
    assert!(err.to_string().contains(&stopped[0]), "{err}");

    // A is kept again as it was (detached, 0 instances, its window unchanged); B serves as before.
    assert_kept(&e, &g_a, r_b["run_id"].as_str().unwrap()).await;
    let kept_after = group(&e, &g_a).await.unwrap();
    for k in ["bakery:retired-at", "bakery:keep-until"] {
        assert_eq!(tag(&kept_after, k), tag(&kept_before, k), "{k}");
    }
    let serving = group(&e, &g_b).await.unwrap();
    assert_eq!(
        tag(&serving, "bakery:rollout-state").as_deref(),
        Some("live")
    );
    assert_eq!(ids(&serving), ids(&serving_before));
    assert_eq!(
        serving.desired_capacity(),
        serving_before.desired_capacity()
    );
    let health = elb_health(&e.c, &e.lb).await;
    for id in ids(&serving) {
        assert!(
            health.iter().any(|(i, s)| *i == id && s == "InService"),
            "{id}: {health:?}"
        );
    }
    for (id, _, state) in instance_images(&e.c, &stopped).await {
        assert_eq!(state, "terminated", "{id}");
    }
    common::assert_settled(&e.c, &e.app, ENV, "after a rolled-back undo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_that_died_blocks_the_next_rollout_until_abandon_returns_the_group_to_the_window() {
    let (lab, _serial) = lab().await;
    assert_lab_shares_classic_elbs(lab).await;
    let e = set_up(
        lab,
        json!({"keep_previous_releases": 1, "keep_previous_for": "1h"}),
    )
    .await;
    let ami_a = register_ami(lab, &e.c, "release-a").await;
    let ami_b = register_ami(lab, &e.c, "release-b").await;
    let g_a = deploy(lab, &e, &ami_a).await["new_group"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let r_b = deploy(lab, &e, &ami_b).await;
    let g_b = r_b["new_group"]["name"].as_str().unwrap().to_string();

    // What an undo killed (SIGKILL) after its restore step leaves: A tagged `restoring` by the dead run,
    // attached and scaled up.
    let dead = "0d1e2a3d-0000-4000-8000-000000000016";
    let t = |k: &str, v: &str| {
        aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(&g_a)
            .resource_type("auto-scaling-group")
            .key(k)
            .value(v)
            .propagate_at_launch(false)
            .build()
    };
    e.c.autoscaling
        .create_or_update_tags()
        .tags(t("bakery:rollout-state", "restoring"))
        .tags(t("bakery:release-run", dead))
        .send()
        .await
        .unwrap();
    e.c.autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(&g_a)
        .min_size(1)
        .max_size(4)
        .desired_capacity(2)
        .send()
        .await
        .unwrap();
    e.c.autoscaling
        .attach_load_balancers()
        .auto_scaling_group_name(&g_a)
        .load_balancer_names(&e.lb)
        .send()
        .await
        .unwrap();
    until_aws_lists_groups(lab, &e.app, ENV, 2).await;

    // The next rollout and undo refuse, naming the dead run, with reads only.
    lab.reset_request_counts();
    for args in [vec!["deploy", "--ami", ami_a.as_str()], vec!["undo"]] {
        let (code, out, err) = run(lab, &e, &args).await;
        assert_eq!(code, 1, "{out}\n{err}");
        assert!(
            err.contains(&format!("`rollout abandon --run-id {dead}`")) && err.contains(&g_a),
            "{err}"
        );
    }
    assert!(
        writes(&lab.request_counts()).is_empty(),
        "{:?}",
        lab.request_counts()
    );

    // abandon returns A to the window; B is untouched; then an undo works.
    let (code, out, err) = run(lab, &e, &["abandon", "--run-id", dead]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "the undo's hold on {g_a}: returned to the kept releases"
        )),
        "{out}"
    );
    let a = group(&e, &g_a).await.unwrap();
    assert_eq!(tag(&a, "bakery:rollout-state").as_deref(), Some("retired"));
    assert!(a.load_balancer_names().is_empty());
    assert_eq!(a.desired_capacity(), Some(0));
    assert!(a.instances().is_empty());
    let b = group(&e, &g_b).await.unwrap();
    assert_eq!(tag(&b, "bakery:rollout-state").as_deref(), Some("live"));
    assert_eq!(ids(&b).len(), 2);
    common::assert_settled(&e.c, &e.app, ENV, "after abandon").await;
    let (code, out, err) = run(lab, &e, &["undo"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let names: Vec<String> = env_groups(&e.c, &e.app, ENV)
        .await
        .iter()
        .map(name)
        .collect();
    assert_eq!(names, vec![g_a.clone()]);
    common::assert_settled(&e.c, &e.app, ENV, "after the undo").await;
}
