//! The acceptance tests of issue 5 on the lab (moto), with a classic ELB: setup (and its idempotence),
//! rollouts AMI-1 → AMI-2 → AMI-3 with the load balancer sampled throughout, rollback of an unhealthy new
//! group, refusal of a concurrent rollout, read-only plan, and the command line.

use super::common;

use bakery_core::aws::Clients;
use bakery_lab::Lab;
use bakery_rollout::RolloutError;
use bakery_rollout::config::Overrides;
use common::*;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ENV: &str = "staging";

fn app_name(lab: &Lab) -> String {
    common::short_app_name(lab, 't')
}

/// A classic-ELB manifest with DNS, a key pair and user data, in its own directory.
fn classic_env(lab: &Lab, app: &str, zone: &str) -> PathBuf {
    let dir = temp_dir(lab, app);
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/staging.pub"), format!("{PUBLIC_KEY}\n")).unwrap();
    std::fs::write(dir.join("keys/production.pub"), format!("{PUBLIC_KEY}\n")).unwrap();
    std::fs::write(dir.join("user-data.sh"), "#!/bin/sh\necho hello\n").unwrap();
    write_manifest(
        &dir,
        &json!({
            "description": "test",
            "app": app,
            "region": "us-east-1",
            "defaults": {
                "load_balancer": {
                    "kind": "classic",
                    "health_check": {"path": "/api/status/health", "interval_seconds": 30,
                                     "timeout_seconds": 4, "healthy_threshold": 2, "unhealthy_threshold": 2},
                    "draining_seconds": 300
                },
                "dns": {"hosted_zone_id": zone, "domain": format!("{app}.test"),
                        "load_balancer_zone_id": "Z35SXDOTRQ7X7K"},
                "key_pair": {"public_key_file": "keys/{env}.pub"},
                "network": {"availability_zones": ["us-east-1a", "us-east-1b"]},
                "instances": {"instance_type": "t3.micro", "user_data_file": "user-data.sh"},
                "capacity": {"min": 1, "max": 4, "desired": 2},
                "timeouts": {"health_seconds": 60, "drain_seconds": 30, "retire_seconds": 30,
                             "rollback_seconds": 30},
                "tags": {"team": "web"}
            },
            "environments": {"staging": {}, "production": {"capacity": {"desired": 3}}}
        }),
    )
}

struct Env {
    c: Clients,
    app: String,
    manifest: PathBuf,
    lb: String,
}

async fn set_up_env(lab: &'static Lab) -> Env {
    let c = clients(lab).await;
    let app = app_name(lab);
    let zone = hosted_zone(&c, &format!("{app}.test")).await;
    let manifest = classic_env(lab, &app, &zone);
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

/// Asserts the environment has exactly one group, running `ami`, every instance InService on the ELB;
/// returns the group's name, launch template id and instance ids.
async fn assert_one_group_on(e: &Env, ami: &str) -> (String, String, Vec<String>) {
    let groups = env_groups(&e.c, &e.app, ENV).await;
    assert_eq!(
        groups.len(),
        1,
        "groups: {:?}",
        groups
            .iter()
            .map(|g| g.auto_scaling_group_name())
            .collect::<Vec<_>>()
    );
    let g = &groups[0];
    let lt = g
        .launch_template()
        .expect("a launch template, not a configuration");
    assert!(g.launch_configuration_name().is_none());
    let lt_id = lt.launch_template_id().unwrap().to_string();
    assert_eq!(template_image(&e.c, &lt_id).await.as_deref(), Some(ami));
    let ids: Vec<String> = g
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect();
    assert!(!ids.is_empty());
    for (id, image, state) in instance_images(&e.c, &ids).await {
        assert_eq!(image, ami, "{id}");
        assert_eq!(state, "running", "{id}");
    }
    let health = elb_health(&e.c, &e.lb).await;
    for id in &ids {
        assert!(
            health.iter().any(|(i, s)| i == id && s == "InService"),
            "{id} not InService on {}: {health:?}",
            e.lb
        );
    }
    assert_eq!(g.health_check_type(), Some("ELB"));
    assert_eq!(g.load_balancer_names(), std::slice::from_ref(&e.lb));
    let tags: Vec<(String, String)> = g
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    for want in [
        ("bakery:managed", "true"),
        ("bakery:rollout-state", "live"),
        ("bakery:ami", ami),
        ("team", "web"),
    ] {
        assert!(
            tags.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {tags:?}"
        );
    }
    (g.auto_scaling_group_name().unwrap().to_string(), lt_id, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_everything_and_a_second_run_changes_nothing() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let zone = hosted_zone(&c, &format!("{app}.test")).await;
    let manifest = classic_env(lab, &app, &zone);
    let (s, out) = session(lab, &manifest, ENV, Overrides::default()).await;
    let lb = format!("elb-{app}-{ENV}");

    // A dry run reads only, and says what it would create.
    lab.reset_request_counts();
    let dry = s.setup(true).await.unwrap();
    assert_eq!(writes(&lab.request_counts()), Vec::<String>::new());
    for what in [
        "key pair",
        "security group",
        "classic load balancer",
        "health check",
        "DNS",
    ] {
        assert!(
            dry.changes
                .iter()
                .any(|c| c.resource.starts_with(what) && c.action == "would create"),
            "{what}: {}",
            dry.render()
        );
    }

    let r = s
        .setup(false)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", out.text()));
    assert!(!r.unchanged());
    assert_eq!(
        r.record.as_deref(),
        Some(format!("staging.{app}.test.").as_str())
    );

    // The load balancer: listener 80 -> 80, health check and draining as the manifest says, tagged.
    let d = c
        .elb
        .describe_load_balancers()
        .load_balancer_names(&lb)
        .send()
        .await
        .unwrap();
    let d = &d.load_balancer_descriptions()[0];
    let l = d.listener_descriptions()[0].listener().unwrap();
    assert_eq!(
        (
            l.protocol(),
            l.load_balancer_port(),
            l.instance_protocol(),
            l.instance_port()
        ),
        ("HTTP", 80, Some("HTTP"), 80)
    );
    let hc = d.health_check().unwrap();
    assert_eq!(
        (
            hc.target(),
            hc.interval(),
            hc.timeout(),
            hc.healthy_threshold(),
            hc.unhealthy_threshold()
        ),
        ("HTTP:80/api/status/health", 30, 4, 2, 2)
    );
    let mut zones = d.availability_zones().to_vec();
    zones.sort();
    assert_eq!(zones, ["us-east-1a", "us-east-1b"]);
    let attrs = c
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_name(&lb)
        .send()
        .await
        .unwrap();
    let cd = attrs
        .load_balancer_attributes()
        .unwrap()
        .connection_draining()
        .unwrap();
    assert!(cd.enabled());
    assert_eq!(cd.timeout(), Some(300));
    let tags = c
        .elb
        .describe_tags()
        .load_balancer_names(&lb)
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, String)> = tags.tag_descriptions()[0]
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for want in [
        ("bakery:managed", "true"),
        ("bakery:app", app.as_str()),
        ("bakery:env", ENV),
        ("bakery:role", "load-balancer"),
    ] {
        assert!(
            tags.contains(&(want.0.into(), want.1.into())),
            "{want:?} not in {tags:?}"
        );
    }

    // DNS: staging.<domain> is an ALIAS to the load balancer, evaluating its health.
    let rr = c
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .send()
        .await
        .unwrap();
    let rec = rr
        .resource_record_sets()
        .iter()
        .find(|r| r.name() == format!("staging.{app}.test."))
        .expect("the ALIAS record");
    let alias = rec.alias_target().unwrap();
    assert_eq!(
        alias.dns_name().trim_end_matches('.'),
        d.dns_name().unwrap()
    );
    assert_eq!(alias.hosted_zone_id(), "Z35SXDOTRQ7X7K");
    assert!(alias.evaluate_target_health());

    // The key pair holds the local public key.
    let kp = c
        .ec2
        .describe_key_pairs()
        .key_names(format!("{app}-{ENV}"))
        .include_public_key(true)
        .send()
        .await
        .unwrap();
    let public = kp.key_pairs()[0].public_key().unwrap();
    assert_eq!(
        public.split_whitespace().take(2).collect::<Vec<_>>(),
        PUBLIC_KEY.split_whitespace().take(2).collect::<Vec<_>>()
    );

    // Security groups: the load balancer's open on 80; the instances' open on 80 to the load balancer only.
    let sgs = c
        .ec2
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-name")
                .values(format!("elb-{app}-{ENV}"))
                .values(format!("{app}-{ENV}"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let sg = |n: &str| {
        sgs.security_groups()
            .iter()
            .find(|g| g.group_name() == Some(n))
            .unwrap_or_else(|| panic!("security group {n}"))
            .clone()
    };
    let lb_sg = sg(&format!("elb-{app}-{ENV}"));
    let inst_sg = sg(&format!("{app}-{ENV}"));
    assert!(
        d.security_groups()
            .contains(&lb_sg.group_id().unwrap().to_string())
    );
    let p = &lb_sg.ip_permissions()[0];
    assert_eq!((p.from_port(), p.to_port()), (Some(80), Some(80)));
    assert_eq!(p.ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));
    let p = &inst_sg.ip_permissions()[0];
    assert_eq!((p.from_port(), p.to_port()), (Some(80), Some(80)));
    assert!(
        p.ip_ranges().is_empty(),
        "instances must not be open to the world"
    );
    assert_eq!(p.user_id_group_pairs()[0].group_id(), lb_sg.group_id());

    // The second run changes nothing: every request it sends is a read.
    lab.reset_request_counts();
    let again = s.setup(false).await.unwrap();
    let counts = lab.request_counts();
    assert!(again.unchanged(), "{}", again.render());
    assert_eq!(writes(&counts), Vec::<String>::new(), "{counts:?}");
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    assert!(
        again
            .aws_requests
            .keys()
            .all(|k| bakery_rollout::context::is_read_only(k)),
        "{:?}",
        again.aws_requests
    );
    eprintln!(
        "figures: setup {:.2} s / {} requests; second setup {:.2} s / {} requests, all reads",
        r.duration_s,
        r.aws_requests.values().sum::<u64>(),
        again.duration_s,
        again.aws_requests.values().sum::<u64>()
    );

    // Production is the apex.
    let (p, _) = session(lab, &manifest, "production", Overrides::default()).await;
    let pr = p.setup(false).await.unwrap();
    assert_eq!(pr.record.as_deref(), Some(format!("{app}.test.").as_str()));

    // Another public key for an existing key pair is refused before anything changes.
    std::fs::write(
        manifest.parent().unwrap().join("keys/staging.pub"),
        OTHER_PUBLIC_KEY,
    )
    .unwrap();
    let (s2, _) = session(lab, &manifest, ENV, Overrides::default()).await;
    lab.reset_request_counts();
    match s2.setup(false).await {
        Err(RolloutError::SetupConflict(v)) => {
            assert!(v[0].contains("different public key"), "{v:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(writes(&lab.request_counts()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_replace_the_group_and_never_leave_the_load_balancer_empty() {
    let (lab, _serial) = lab().await;
    assert_lab_shares_classic_elbs(lab).await;
    let e = set_up_env(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let ami3 = register_ami(lab, &e.c, "ami-3").await;
    let (s, out) = session(lab, &e.manifest, ENV, Overrides::default()).await;

    // AMI-1: the first rollout; nothing to retire.
    let r1 = s
        .deploy(&ami1)
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", out.text()));
    assert!(r1.old_groups.is_empty());
    let (g1, lt1, ids1) = assert_one_group_on(&e, &ami1).await;
    assert_eq!(ids1.len(), 2);
    assert_eq!(r1.new_group.as_ref().unwrap().name, g1);

    // AMI-2, with DescribeInstanceHealth sampled from another task throughout. A 1 s stabilisation
    // window keeps old and new registered together long enough for the sampler to see the overlap.
    let (s2, out2) = session(
        lab,
        &e.manifest,
        ENV,
        Overrides {
            min_healthy: Some(Duration::from_secs(1)),
            ..Default::default()
        },
    )
    .await;
    let stop = CancellationToken::new();
    let sampler = sample_elb(e.c.clone(), e.lb.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r2 = s2
        .deploy(&ami2)
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", out2.text()));
    stop.cancel();
    let samples = sampler.await.unwrap();
    let (g2, _lt2, ids2) = assert_one_group_on(&e, &ami2).await;
    assert_ne!(g1, g2);
    let empty = samples.iter().filter(|s| s.is_empty()).count();
    assert_eq!(
        empty,
        0,
        "{empty} of {} samples saw no InService instance",
        samples.len()
    );
    // Old and new served together, and the old left only after the new was in service.
    assert!(
        samples
            .iter()
            .any(|s| ids1.iter().all(|i| s.contains(i)) && ids2.iter().all(|i| s.contains(i))),
        "the sampler never saw old and new in service together ({} samples)",
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
    assert!(samples.first().unwrap().iter().all(|i| ids1.contains(i)));
    assert!(samples.last().unwrap().iter().all(|i| ids2.contains(i)));
    // The old group, its launch template and its instances are gone.
    assert!(
        e.c.autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&g1)
            .send()
            .await
            .unwrap()
            .auto_scaling_groups()
            .is_empty()
    );
    assert!(!template_exists(&e.c, &format!("lt-{}", &g1[4..])).await);
    let _ = lt1;
    for (id, _, state) in instance_images(&e.c, &ids1).await {
        assert_eq!(state, "terminated", "{id}");
    }
    assert_eq!(r2.retired, vec![g1.clone()]);
    assert_eq!(
        r2.deleted_launch_templates,
        vec![format!("lt-{}", &g1[4..])]
    );
    assert_eq!(r2.old_groups[0].ami.as_deref(), Some(ami1.as_str()));
    let text = r2.render();
    assert!(
        text.contains(&format!("{g1} [{ami1}] -> {g2} [{ami2}]")),
        "{text}"
    );

    // AMI-3: the rollout counts its own requests; moto agrees.
    lab.reset_request_counts();
    let r3 = s.deploy(&ami3).await.unwrap();
    let moto_total: u64 = lab.request_counts().values().sum();
    assert_eq!(
        r3.aws_requests_total,
        moto_total,
        "{:?} vs {:?}",
        r3.aws_requests,
        lab.request_counts()
    );
    assert_one_group_on(&e, &ami3).await;
    eprintln!(
        "figures: rollout AMI-1 (first) {:.2} s / {} requests; AMI-2 (1 s stabilisation, {} samples) {:.2} s / {} requests; AMI-3 {:.2} s / {} requests: {:?}",
        r1.durations.total_s,
        r1.aws_requests_total,
        samples.len(),
        r2.durations.total_s,
        r2.aws_requests_total,
        r3.durations.total_s,
        r3.aws_requests_total,
        r3.aws_requests
    );
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "rollouts_replace_the_group_and_never_leave_the_load_balancer_empty",
    )
    .await;
}

/// Waits for a group of the environment other than `old` with instances, then stops its instances (moto's
/// classic ELB then reports them OutOfService). Returns the group and the stopped instances.
fn sabotage_new_group(
    c: Clients,
    app: String,
    old: String,
) -> tokio::task::JoinHandle<(String, Vec<String>)> {
    tokio::spawn(async move {
        loop {
            let groups = env_groups(&c, &app, ENV).await;
            if let Some(g) = groups.iter().find(|g| {
                g.auto_scaling_group_name() != Some(old.as_str()) && !g.instances().is_empty()
            }) {
                let ids: Vec<String> = g
                    .instances()
                    .iter()
                    .map(|i| i.instance_id().unwrap().to_string())
                    .collect();
                c.ec2
                    .stop_instances()
                    .set_instance_ids(Some(ids.clone()))
                    .send()
                    .await
                    .expect("StopInstances");
                return (g.auto_scaling_group_name().unwrap().to_string(), ids);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_new_group_is_rolled_back_and_the_old_group_is_untouched() {
    let (lab, _serial) = lab().await;
    assert_lab_shares_classic_elbs(lab).await;
    let e = set_up_env(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    s.deploy(&ami1).await.unwrap();
    let (old, old_lt, old_ids) = assert_one_group_on(&e, &ami1).await;
    let before = env_groups(&e.c, &e.app, ENV).await.remove(0);

    // The new group must hold healthy for 3 s; its instances are stopped as soon as they appear, so it
    // never does, and the 6 s health timeout (a real option) ends the wait.
    let (s2, out2) = session(
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
    let sabotage = sabotage_new_group(e.c.clone(), e.app.clone(), old.clone());
    let stop = CancellationToken::new();
    let sampler = sample_elb(e.c.clone(), e.lb.clone(), stop.clone());
    let result = s2.deploy(&ami2).await;
    stop.cancel();
    let samples = sampler.await.unwrap();
    let (new_group, stopped) = sabotage.await.unwrap();

    let report = match result {
        Err(RolloutError::RolledBack(r)) => r,
        other => panic!("expected a rollback, got {other:?}\n{}", out2.text()),
    };
    let message = RolloutError::RolledBack(report.clone()).to_string();
    assert!(message.contains("rolled back"), "{message}");
    assert!(message.contains("did not become healthy"), "{message}");
    assert!(message.contains("OutOfService"), "{message}");
    assert!(
        message.contains(&format!("deleted group {new_group}")),
        "{message}"
    );
    let rb = report.rollback.as_ref().unwrap();
    assert!(rb.failures.is_empty(), "{:?}", rb.failures);
    assert!(rb.old_groups_unchanged);
    assert!(
        message.contains(&format!("{old}: unchanged, 2/2 instance(s) in service")),
        "{message}"
    );
    assert!(report.attention.is_empty(), "{:?}", report.attention);

    // The new group and its launch template are gone, its instances terminated and off the ELB.
    let after = env_groups(&e.c, &e.app, ENV).await;
    assert_eq!(after.len(), 1);
    assert!(!template_exists(&e.c, &format!("lt-{}", &new_group[4..])).await);
    for (id, _, state) in instance_images(&e.c, &stopped).await {
        assert_eq!(state, "terminated", "{id}");
    }
    let health = elb_health(&e.c, &e.lb).await;
    assert!(
        health.iter().all(|(i, _)| !stopped.contains(i)),
        "{health:?}"
    );

    // The old group is exactly as it was: same group, sizes, instances, launch template, InService.
    let now = &after[0];
    assert_eq!(now.auto_scaling_group_name(), Some(old.as_str()));
    assert_eq!(
        (now.min_size(), now.max_size(), now.desired_capacity()),
        (
            before.min_size(),
            before.max_size(),
            before.desired_capacity()
        )
    );
    assert_eq!(now.instances(), before.instances());
    assert_eq!(now.load_balancer_names(), before.load_balancer_names());
    assert_eq!(now.tags().len(), before.tags().len());
    assert_eq!(
        template_image(&e.c, &old_lt).await.as_deref(),
        Some(ami1.as_str())
    );
    for (id, image, state) in instance_images(&e.c, &old_ids).await {
        assert_eq!(
            (image.as_str(), state.as_str()),
            (ami1.as_str(), "running"),
            "{id}"
        );
    }
    assert_one_group_on(&e, &ami1).await;
    // And the load balancer always had the old instances in service.
    assert!(
        samples
            .iter()
            .all(|s| old_ids.iter().all(|i| s.contains(i))),
        "an old instance left service during the failed rollout"
    );
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "an_unhealthy_new_group_is_rolled_back_and_the_old_group_is_untouched",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rollout_refuses_while_one_is_in_progress() {
    let (lab, _serial) = lab().await;
    let e = set_up_env(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (slow, out) = session(
        lab,
        &e.manifest,
        ENV,
        Overrides {
            min_healthy: Some(Duration::from_secs(3)),
            ..Default::default()
        },
    )
    .await;
    let first_ami = ami1.clone();
    let first = tokio::spawn(async move { slow.deploy(&first_ami).await });
    // Wait until its group exists (tagged in-progress).
    let mut waited = 0;
    while env_groups(&e.c, &e.app, ENV).await.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 500, "the first rollout never created its group");
    }
    common::until_aws_lists_groups(lab, &e.app, ENV, 1).await;
    let (other, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    lab.reset_request_counts();
    match other.deploy(&ami2).await {
        Err(RolloutError::Preflight(p)) => {
            assert!(p.iter().any(|m| m.contains("in progress")), "{p:?}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(writes(&lab.request_counts()), Vec::<String>::new());
    first
        .await
        .unwrap()
        .unwrap_or_else(|err| panic!("{err}\n{}", out.text()));
    assert_one_group_on(&e, &ami1).await;
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "a_second_rollout_refuses_while_one_is_in_progress",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_what_is_live_using_reads_only() {
    let (lab, _serial) = lab().await;
    let e = set_up_env(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    s.deploy(&ami1).await.unwrap();
    let (g1, _, ids1) = assert_one_group_on(&e, &ami1).await;

    // An SSM parameter and a bake manifest resolve to the AMI.
    e.c.ssm
        .put_parameter()
        .name(format!("/{}/ami", e.app))
        .value(&ami2)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let bake = e.manifest.parent().unwrap().join("bake-manifest.json");
    std::fs::write(
        &bake,
        json!({"builds": [
            {"name": "carnivore", "builder_type": "amazon-ebs", "build_time": 1, "files": null,
             "artifact_id": format!("us-west-2:ami-0000000000000beef,us-east-1:{ami2}"),
             "packer_run_uuid": "r2", "custom_data": null}],
          "last_run_uuid": "r2"})
        .to_string(),
    )
    .unwrap();

    lab.reset_request_counts();
    let plan = s.plan(Some(&format!("ssm:/{}/ami", e.app))).await.unwrap();
    let counts = lab.request_counts();
    assert_eq!(writes(&counts), Vec::<String>::new(), "{counts:?}");
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    assert_eq!(plan.ami.as_ref().unwrap().id, ami2);
    assert_eq!(plan.live.len(), 1);
    let live = &plan.live[0];
    assert_eq!(live.group.name, g1);
    assert_eq!(live.group.ami.as_deref(), Some(ami1.as_str()));
    assert_eq!(live.state.as_deref(), Some("live"));
    let mut ids1 = ids1;
    ids1.sort();
    assert_eq!(
        live.group
            .instances
            .iter()
            .map(|i| i.id.clone())
            .collect::<Vec<_>>(),
        ids1
    );
    assert!(
        live.group
            .instances
            .iter()
            .all(|i| i.lifecycle.to_string() == "InService"
                && i.health.to_string() == "Healthy"
                && i.load_balancer.as_ref().map(|l| l.state.as_str()) == Some("InService"))
    );
    assert_eq!(plan.steps.len(), 4, "{:?}", plan.steps);
    assert!(
        plan.steps[0].contains(&ami2) && plan.steps[0].contains("key "),
        "{}",
        plan.steps[0]
    );
    assert!(
        plan.steps[3].starts_with(&format!("retire {g1}")),
        "{}",
        plan.steps[3]
    );

    let plan = s.plan(Some(bake.to_str().unwrap())).await.unwrap();
    assert_eq!(plan.ami.unwrap().id, ami2);
    let plan = s.plan(Some("ssm:/nope/ami")).await.unwrap();
    assert!(
        plan.problems
            .iter()
            .any(|p| p.contains("ssm:/nope/ami") && p.contains("does not exist")),
        "{:?}",
        plan.problems
    );
    let plan = s.plan(Some("ami-0000000000000dead")).await.unwrap();
    assert!(
        plan.problems
            .iter()
            .any(|p| p.contains("does not exist in us-east-1")),
        "{:?}",
        plan.problems
    );

    // Production was never set up: plan says so.
    let (p, _) = session(lab, &e.manifest, "production", Overrides::default()).await;
    let plan = p.plan(None).await.unwrap();
    assert!(
        plan.problems
            .iter()
            .any(|m| m.contains("run `rollout setup --env production` first")),
        "{:?}",
        plan.problems
    );
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "plan_shows_what_is_live_using_reads_only",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_reports_json_and_exit_codes() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let zone = hosted_zone(&c, &format!("{app}.test")).await;
    let manifest = classic_env(lab, &app, &zone);
    let m = manifest.to_str().unwrap();
    let ami1 = register_ami(lab, &c, "ami-1").await;

    let (code, out, err) = cli(lab, &["--manifest", m, "--json", "setup"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["env"], "staging");
    assert!(doc["changes"].as_array().unwrap().len() >= 8);
    // Progress went to stderr as JSON lines.
    assert!(
        err.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{err}"
    );

    let (code, out, err) = cli(lab, &["--manifest", m, "--json", "--ami", &ami1]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(doc["ami"]["id"], ami1.as_str());
    assert_eq!(doc["new_group"]["instances"].as_array().unwrap().len(), 2);
    assert!(doc["aws_requests_total"].as_u64().unwrap() > 5);

    let (code, out, _) = cli(
        lab,
        &[
            "--manifest",
            m,
            "--json",
            "deploy",
            "--ami",
            "ami-0000000000000dead",
        ],
    )
    .await;
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["status"], "error");
    assert!(
        doc["error"].as_str().unwrap().contains("does not exist"),
        "{doc}"
    );

    let (code, out, err) = cli(lab, &["--manifest", m, "--dry-run", "--ami", &ami1]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Plan for"), "{out}");
    assert!(out.contains("retire asg-"), "{out}");

    let (code, _, err) = cli(lab, &["--manifest", m]).await;
    assert_eq!(code, 2);
    assert!(err.contains("--ami is required"), "{err}");

    let (code, _, err) = cli(
        lab,
        &["--manifest", "/nonexistent/rollout.json", "--ami", &ami1],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/rollout.json"), "{err}");

    let bad = manifest.parent().unwrap().join("bad.json");
    std::fs::write(
        &bad,
        "{\n  \"app\": \"x\",\n  \"defaults\": {\"capacity\": {\"minimum\": 1}}\n}\n",
    )
    .unwrap();
    let (code, _, err) = cli(lab, &["--manifest", bad.to_str().unwrap(), "plan"]).await;
    assert_eq!(code, 1);
    assert!(err.contains(&format!("{}:3:", bad.display())), "{err}");
    assert!(err.contains("unknown field `minimum`"), "{err}");

    let (code, _, err) = cli(lab, &["--manifest", m, "--env", "Prod", "plan"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("environment `Prod` is not in the manifest"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// The environment's launch templates (by rollout's tags).
async fn env_templates(c: &Clients, app: &str) -> Vec<String> {
    let out = c
        .ec2
        .describe_launch_templates()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:bakery:app")
                .values(app)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.launch_templates()
        .iter()
        .filter_map(|t| t.launch_template_name().map(str::to_string))
        .collect()
}

/// An environment live on its first AMI, with a second AMI ready to roll out.
struct Live {
    e: Env,
    ami1: String,
    ami2: String,
    /// The live group and its instances.
    group: String,
    instances: Vec<String>,
    /// The environment's launch templates.
    templates: Vec<String>,
}

async fn live_on_a_first_ami(lab: &'static Lab) -> Live {
    let e = set_up_env(lab).await;
    let ami1 = register_ami(lab, &e.c, "ami-1").await;
    let ami2 = register_ami(lab, &e.c, "ami-2").await;
    let (s, out) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    s.deploy(&ami1)
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", out.text()));
    let (group, _, instances) = assert_one_group_on(&e, &ami1).await;
    let templates = env_templates(&e.c, &e.app).await;
    Live {
        e,
        ami1,
        ami2,
        group,
        instances,
        templates,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_rollout_is_undone_by_rollout_abandon_and_the_next_one_proceeds() {
    let (lab, _serial) = lab().await;
    let Live {
        e,
        ami1,
        ami2,
        group: live,
        instances: live_ids,
        templates: templates_before,
    } = live_on_a_first_ami(lab).await;
    let baseline = crate::common::inventory(&e.c).await;

    // A rollout killed mid-way: its task is dropped while it waits for its new group, as a SIGKILL would
    // stop the process — no rollback runs.
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
    let killed_run = slow.ctx().run_id.clone();
    let second = ami2.clone();
    let task = tokio::spawn(async move { slow.deploy(&second).await });
    let mut waited = 0;
    while env_groups(&e.c, &e.app, ENV).await.len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 500, "the rollout never created its group");
    }
    task.abort();
    let _ = task.await;
    assert_eq!(env_groups(&e.c, &e.app, ENV).await.len(), 2);
    common::until_aws_lists_groups(lab, &e.app, ENV, 2).await;

    // The next rollout refuses and names the command that undoes the dead one.
    let (next, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    match next.deploy(&ami2).await {
        Err(RolloutError::Preflight(p)) => assert!(
            p.iter()
                .any(|m| m.contains(&format!("rollout abandon --run-id {killed_run}"))),
            "{p:?}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Through the command line, as a user would.
    let manifest = e.manifest.to_str().unwrap().to_string();
    let (code, stdout, stderr) = cli(
        lab,
        &[
            "--manifest",
            &manifest,
            "--env",
            ENV,
            "abandon",
            "--run-id",
            &killed_run,
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("abandoned run(s) {killed_run}")),
        "{stdout}"
    );
    assert!(stdout.contains("removed group asg-"), "{stdout}");
    assert!(stdout.contains("removed launch template lt-"), "{stdout}");

    // Back to the state before the killed rollout: the live group untouched, no other group or template.
    let (still_live, _, ids) = assert_one_group_on(&e, &ami1).await;
    assert_eq!(still_live, live);
    assert_eq!(ids, live_ids);
    assert_eq!(env_templates(&e.c, &e.app).await, templates_before);

    // Idempotent, and the next rollout proceeds.
    let (code, stdout, _) = cli(lab, &["--manifest", &manifest, "--env", ENV, "abandon"]).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("nothing to abandon"), "{stdout}");
    crate::common::assert_nothing_new(&e.c, &baseline, &[], "after rollout abandon").await;
    next.deploy(&ami2).await.unwrap();
    assert_one_group_on(&e, &ami2).await;
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "a_killed_rollout_is_undone_by_rollout_abandon_and_the_next_one_proceeds",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_while_a_create_call_is_in_flight_leaves_the_state_before() {
    use crate::common::fault_proxy::FaultProxy;
    let (lab, _serial) = lab().await;
    let Live {
        e,
        ami1,
        ami2,
        group: live,
        instances: live_ids,
        templates: templates_before,
    } = live_on_a_first_ami(lab).await;
    let baseline = crate::common::inventory(&e.c).await;
    for action in ["CreateLaunchTemplate", "CreateAutoScalingGroup"] {
        // moto carries the call out; the proxy holds its answer while the interrupt lands.
        let proxy = FaultProxy::start(lab.moto_url(), vec![]).await;
        proxy.answer_late(action, Duration::from_secs(2), |_| true);
        let (s, out) = session_via(lab, &e.manifest, ENV, Overrides::default(), &proxy.url).await;
        let cancel = s.cancel_token();
        let ami = ami2.clone();
        let task = tokio::spawn(async move { s.deploy(&ami).await });
        assert!(
            proxy.until_held(action, || true).await,
            "{action} was never sent\n{}",
            out.text()
        );
        cancel.cancel();
        let r = task.await.unwrap();
        assert!(
            matches!(
                r,
                Err(RolloutError::RolledBack(_) | RolloutError::Cancelled)
            ),
            "{action}: {r:?}\n{}",
            out.text()
        );
        let (still_live, _, ids) = assert_one_group_on(&e, &ami1).await;
        assert_eq!((&still_live, &ids), (&live, &live_ids), "{action}");
        assert_eq!(
            env_templates(&e.c, &e.app).await,
            templates_before,
            "{action}: the new launch template is rolled back\n{}",
            out.text()
        );
        crate::common::assert_nothing_new(&e.c, &baseline, &[], action).await;
    }
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "an_interrupt_while_a_create_call_is_in_flight_leaves_the_state_before",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollout_binary_signalled_with_a_create_call_in_flight_leaves_the_state_before() {
    use crate::common::Running;
    use crate::common::fault_proxy::FaultProxy;
    let (lab, _serial) = lab().await;
    let Live {
        e,
        ami1,
        ami2,
        group: live,
        instances: live_ids,
        templates: templates_before,
    } = live_on_a_first_ami(lab).await;
    let baseline = crate::common::inventory(&e.c).await;
    let manifest = e.manifest.to_str().unwrap().to_string();
    for action in ["CreateLaunchTemplate", "CreateAutoScalingGroup"] {
        for signal in ["-INT", "-TERM", "-KILL"] {
            let ctx = format!("{action} × {signal}");
            // moto carries the call out; the proxy holds its answer while the signal lands.
            let proxy = FaultProxy::start(lab.moto_url(), vec![]).await;
            proxy.answer_late(action, Duration::from_secs(2), |_| true);
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rollout"));
            for (k, v) in lab.aws_env() {
                cmd.env(k, v);
            }
            cmd.env("AWS_ENDPOINT_URL", &proxy.url)
                .env_remove("AWS_PROFILE")
                .args(["--manifest", &manifest, "--env", ENV, "--ami", &ami2]);
            let mut r = Running::spawn(cmd);
            let child = &mut r.child;
            assert!(
                proxy
                    .until_held(action, || child.try_wait().unwrap().is_none())
                    .await,
                "{ctx}: rollout ended or never sent the call"
            );
            r.signal(signal);
            let (code, out) = tokio::task::spawn_blocking(move || r.finish())
                .await
                .unwrap();
            if signal == "-KILL" {
                assert_eq!(code, None, "{ctx}\n{out}");
                // The run id is in the rollout's first line.
                let run_id = out
                    .split("(run ")
                    .nth(1)
                    .and_then(|rest| rest.split(')').next())
                    .unwrap_or_else(|| panic!("{ctx}: no run id in\n{out}"))
                    .to_string();
                let (code, stdout, stderr) = cli(
                    lab,
                    &[
                        "--manifest",
                        &manifest,
                        "--env",
                        ENV,
                        "abandon",
                        "--run-id",
                        &run_id,
                    ],
                )
                .await;
                assert_eq!(code, 0, "{ctx}: {stdout}{stderr}");
            } else {
                assert_eq!(code, Some(1), "{ctx}: rolled back\n{out}");
            }
            let (still_live, _, ids) = assert_one_group_on(&e, &ami1).await;
            assert_eq!((&still_live, &ids), (&live, &live_ids), "{ctx}");
            assert_eq!(
                env_templates(&e.c, &e.app).await,
                templates_before,
                "{ctx}: the new launch template is gone\n{out}"
            );
            crate::common::assert_nothing_new(&e.c, &baseline, &[], &ctx).await;
        }
    }
    common::assert_settled(
        &e.c,
        &e.app,
        ENV,
        "the_rollout_binary_signalled_with_a_create_call_in_flight_leaves_the_state_before",
    )
    .await;
}

/// A group whose zones the load balancer does not serve would never turn healthy there (AWS: targets stay
/// `unused`/`OutOfService`); preflight refuses before anything is created.
#[tokio::test]
async fn preflight_refuses_a_zone_the_load_balancer_does_not_serve() {
    let (lab, _serial) = lab().await;
    let e = set_up_env(lab).await;
    let ami = register_ami(lab, &e.c, "ami-zones").await;
    // The environment now asks for a third zone the load balancer was not made for.
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&e.manifest).unwrap()).unwrap();
    m["defaults"]["network"]["availability_zones"] =
        json!(["us-east-1a", "us-east-1b", "us-east-1c"]);
    std::fs::write(&e.manifest, m.to_string()).unwrap();
    let (s, _) = session(lab, &e.manifest, ENV, Overrides::default()).await;
    lab.reset_request_counts();
    let plan = s.plan(Some(&ami)).await.unwrap();
    let problem = plan
        .problems
        .iter()
        .find(|p| p.contains("us-east-1c"))
        .unwrap_or_else(|| panic!("{:?}", plan.problems));
    assert!(
        problem.contains(&format!("load balancer {}", e.lb))
            && problem.contains("serves us-east-1a, us-east-1b")
            && problem.contains("never turn healthy"),
        "{problem}"
    );
    let err = s.deploy(&ami).await.unwrap_err();
    assert!(err.to_string().contains("us-east-1c"), "{err}");
    let counts = lab.request_counts();
    assert_eq!(writes(&counts), Vec::<String>::new(), "{counts:?}");
    assert!(env_groups(&e.c, &e.app, ENV).await.is_empty());
    common::assert_settled(&e.c, &e.app, ENV, "zones").await;
}
