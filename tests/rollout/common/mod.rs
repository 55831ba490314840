//! Shared by the lab tests: the lab (serialised, so that moto's request counts belong to one test), SDK
//! clients for checking outcomes, AMIs registered in moto, manifests written to a temp dir.
#![allow(dead_code)]

use bakery_core::aws::{AwsSettings, Clients};
use bakery_core::ui::{Mode, Ui, UiOptions};
use bakery_lab::Lab;
use bakery_rollout::config::Overrides;
use bakery_rollout::{Options, Session};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A test public key (the private half was thrown away).
pub const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFZKDkCniaAujbNnCwZP2FLH4aZZ8dkU2J6eTiJzsmxy rollout-test";
/// Another one.
pub const OTHER_PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINt5AaapLoUvphZXAUKs90temkza0uiuC+MvXky2UAWd other";

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// rollout leaves its environments in moto (tagged bakery-managed) on purpose; the bake tests assert that
/// nothing bakery-managed is left in theirs.
static LAB: crate::common::OwnLab = crate::common::OwnLab::new();

/// The lab, and a lock held for the whole test: moto's request counts are per lab, so tests of one
/// binary take turns (each takes a few seconds).
pub async fn lab() -> (&'static Lab, tokio::sync::MutexGuard<'static, ()>) {
    let guard = SERIAL.lock().await;
    (crate::common::own_lab(&LAB), guard)
}

/// AWS settings pointing at the lab.
pub fn settings(lab: &Lab) -> AwsSettings {
    AwsSettings {
        region: Some(lab.region().to_string()),
        access_key: Some("bakerylab".into()),
        secret_key: Some("bakerylab".into()),
        endpoint_url: Some(lab.moto_url().to_string()),
        ..Default::default()
    }
}

/// Plain SDK clients for checking outcomes (not counted by the rollout's counter).
pub async fn clients(lab: &Lab) -> Clients {
    let s = settings(lab);
    let sdk = crate::common::checking_sdk_config(&s).await;
    Clients::for_region(&sdk, None, None)
}

/// Waits until AWS, as bakery sees it (the realism layer's eventual consistency included, unlike
/// [`clients`]), lists `n` groups of the environment: a second rollout that a test starts "while one is
/// in progress" must start after AWS shows the first one's group, as it would for a user (docs/rollout.md).
pub async fn until_aws_lists_groups(lab: &Lab, app: &str, env: &str, n: usize) {
    let sdk = bakery_core::aws::load_sdk_config(&settings(lab)).await;
    let seen = Clients::for_region(&sdk, None, None);
    for _ in 0..300 {
        if env_groups(&seen, app, env).await.len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("AWS never listed {n} groups of {app}/{env}");
}

/// A writer tests can read back.
#[derive(Clone, Default)]
pub struct Buf(pub Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Buf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs the `rollout` command line against the lab: (exit code, stdout, stderr).
pub async fn cli(lab: &Lab, args: &[&str]) -> (u8, String, String) {
    let out = Buf::default();
    let err = Buf::default();
    let code = bakery::cli::rollout::run(
        std::iter::once("rollout")
            .chain(args.iter().copied())
            .map(Into::into),
        settings(lab),
        bakery::cli::rollout::Io {
            stdout: Box::new(out.clone()),
            stderr: Box::new(err.clone()),
            tty: false,
        },
        false,
    )
    .await;
    (code, out.text(), err.text())
}

/// A session on the lab, its human output captured in the returned buffer.
pub async fn session(
    lab: &Lab,
    manifest: &Path,
    env: &str,
    overrides: Overrides,
) -> (Session, Buf) {
    session_via(lab, manifest, env, overrides, lab.moto_url()).await
}

/// A session whose AWS calls go to `endpoint` (a proxy in front of the lab's moto).
pub async fn session_via(
    lab: &Lab,
    manifest: &Path,
    env: &str,
    overrides: Overrides,
    endpoint: &str,
) -> (Session, Buf) {
    let buf = Buf::default();
    let ui = Ui::to_writer(
        UiOptions {
            mode: Mode::Human,
            color: false,
            timestamps: false,
            progress: false,
            secrets: vec![],
        },
        Box::new(buf.clone()),
    );
    let s = Session::open(Options {
        manifest: manifest.to_path_buf(),
        env: Some(env.to_string()),
        aws: AwsSettings {
            endpoint_url: Some(endpoint.to_string()),
            ..settings(lab)
        },
        overrides,
        ui,
    })
    .await
    .unwrap_or_else(|e| panic!("opening the session: {e}"));
    (s, buf)
}

/// A fresh directory under the lab's state dir.
pub fn temp_dir(lab: &Lab, name: &str) -> PathBuf {
    let d = lab.dir().join("rollout-tests").join(lab.unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `json` as `dir/rollout.json`.
pub fn write_manifest(dir: &Path, json: &serde_json::Value) -> PathBuf {
    let p = dir.join("rollout.json");
    std::fs::write(&p, serde_json::to_string_pretty(json).unwrap()).unwrap();
    p
}

/// Registers a new AMI in moto under a unique name made from `name` (see
/// [`crate::common::register_ami_named`]).
pub async fn register_ami(lab: &Lab, c: &Clients, name: &str) -> String {
    crate::common::register_ami_named(lab, c, &lab.unique(name)).await
}

/// A hosted zone for `domain`; its id.
pub async fn hosted_zone(c: &Clients, domain: &str) -> String {
    let z = c
        .route53
        .create_hosted_zone()
        .name(domain)
        .caller_reference(domain)
        .send()
        .await
        .expect("CreateHostedZone");
    z.hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

/// The environment's groups as (name, instance ids), via the tags rollout sets.
pub async fn env_groups(
    c: &Clients,
    app: &str,
    env: &str,
) -> Vec<aws_sdk_autoscaling::types::AutoScalingGroup> {
    use aws_sdk_autoscaling::types::Filter;
    c.autoscaling
        .describe_auto_scaling_groups()
        .filters(Filter::builder().name("tag:bakery:app").values(app).build())
        .filters(Filter::builder().name("tag:bakery:env").values(env).build())
        .send()
        .await
        .expect("DescribeAutoScalingGroups")
        .auto_scaling_groups()
        .to_vec()
}

/// Instance id → state on classic load balancer `name`.
pub async fn elb_health(c: &Clients, name: &str) -> Vec<(String, String)> {
    c.elb
        .describe_instance_health()
        .load_balancer_name(name)
        .send()
        .await
        .expect("DescribeInstanceHealth")
        .instance_states()
        .iter()
        .map(|s| {
            (
                s.instance_id().unwrap_or_default().to_string(),
                s.state().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Samples DescribeInstanceHealth of classic load balancer `lb` every ~10 ms until stopped: the InService instance ids of each sample.
pub fn sample_elb(
    c: Clients,
    lb: String,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<Vec<std::collections::BTreeSet<String>>> {
    tokio::spawn(async move {
        let mut samples = Vec::new();
        loop {
            let done = stop.is_cancelled();
            let in_service: std::collections::BTreeSet<String> = elb_health(&c, &lb)
                .await
                .into_iter()
                .filter(|(_, s)| s == "InService")
                .map(|(i, _)| i)
                .collect();
            samples.push(in_service);
            if done {
                return samples;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
}

/// The image a launch template's version 1 launches.
pub async fn template_image(c: &Clients, lt_id: &str) -> Option<String> {
    let out = c
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(lt_id)
        .versions("1")
        .send()
        .await
        .ok()?;
    out.launch_template_versions()
        .first()?
        .launch_template_data()?
        .image_id()
        .map(str::to_string)
}

/// True when a launch template named `name` exists.
pub async fn template_exists(c: &Clients, name: &str) -> bool {
    match c
        .ec2
        .describe_launch_templates()
        .launch_template_names(name)
        .send()
        .await
    {
        Ok(o) => !o.launch_templates().is_empty(),
        Err(_) => false,
    }
}

/// The images of running instances.
pub async fn instance_images(c: &Clients, ids: &[String]) -> Vec<(String, String, String)> {
    if ids.is_empty() {
        return Vec::new();
    }
    let out = c
        .ec2
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.image_id().unwrap_or_default().to_string(),
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The requests counted that are not reads (moto's counts: query actions, or `METHOD /path` for REST
/// services such as Route 53).
pub fn writes(counts: &std::collections::BTreeMap<String, u64>) -> Vec<String> {
    counts
        .keys()
        .filter(|k| {
            !["Describe", "Get", "List", "GET "]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .cloned()
        .collect()
}

/// Fails unless the lab's moto keeps one group's instances registered on a classic ELB when another group
/// is attached to the same ELB, as AWS does. moto 5.2.5 by itself deregisters every instance that is not in
/// the group being created/scaled/deleted (`update_attached_elbs`); the lab patches that
/// (`lab/py/moto_lab.py`, `patch_moto_shared_classic_elbs`). Blue-green on a classic ELB needs it.
pub async fn assert_lab_shares_classic_elbs(lab: &Lab) {
    let c = clients(lab).await;
    let name = format!("p{}", lab.unique("f").rsplit('-').next().unwrap_or("0"));
    c.elb
        .create_load_balancer()
        .load_balancer_name(&name)
        .listeners(
            aws_sdk_elasticloadbalancing::types::Listener::builder()
                .protocol("HTTP")
                .load_balancer_port(80)
                .instance_port(80)
                .build()
                .unwrap(),
        )
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect("probe: CreateLoadBalancer");
    let lt = c
        .ec2
        .create_launch_template()
        .launch_template_name(&name)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(lab.source_ami())
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("probe: CreateLaunchTemplate");
    let lt_id = lt
        .launch_template()
        .unwrap()
        .launch_template_id()
        .unwrap()
        .to_string();
    let mut first = Vec::new();
    for g in ["a", "b"] {
        c.autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(format!("{name}-{g}"))
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(&lt_id)
                    .version("1")
                    .build(),
            )
            .min_size(0)
            .max_size(1)
            .desired_capacity(1)
            .availability_zones("us-east-1a")
            .load_balancer_names(&name)
            .send()
            .await
            .expect("probe: CreateAutoScalingGroup");
        if first.is_empty() {
            first = elb_health(&c, &name)
                .await
                .into_iter()
                .map(|(i, _)| i)
                .collect();
        }
    }
    let registered: Vec<String> = elb_health(&c, &name)
        .await
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    for g in ["a", "b"] {
        let _ = c
            .autoscaling
            .delete_auto_scaling_group()
            .auto_scaling_group_name(format!("{name}-{g}"))
            .force_delete(true)
            .send()
            .await;
    }
    let _ = c
        .elb
        .delete_load_balancer()
        .load_balancer_name(&name)
        .send()
        .await;
    let _ = c
        .ec2
        .delete_launch_template()
        .launch_template_id(&lt_id)
        .send()
        .await;
    assert!(
        !first.is_empty() && first.iter().all(|i| registered.contains(i)),
        "this lab's moto takes one group's instances off a classic ELB when another group is attached to it \
         (moto bug in update_attached_elbs; AWS keeps both). The lab fixes it in lab/py/moto_lab.py \
         (patch_moto_shared_classic_elbs): update the lab (lab/up uses the repo's copy)."
    );
}

/// Instance id → state in target group `arn`.
pub async fn tg_health(c: &Clients, arn: &str) -> Vec<(String, String)> {
    c.elbv2
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .expect("DescribeTargetHealth")
        .target_health_descriptions()
        .iter()
        .map(|d| {
            (
                d.target()
                    .and_then(|t| t.id())
                    .unwrap_or_default()
                    .to_string(),
                d.target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// An environment behind an ALB, set up for real on the lab: the clients, the app's name, its manifest
/// and the target group's ARN.
pub struct AlbEnv {
    pub c: Clients,
    pub app: String,
    pub manifest: PathBuf,
    pub tg: String,
}

/// Writes the manifest of a fresh app with `manifest(lab, app)`, runs `rollout setup` for `env` and finds
/// the target group it created.
pub async fn set_up_alb(
    lab: &'static Lab,
    env: &str,
    app: String,
    manifest: impl FnOnce(&Lab, &str) -> PathBuf,
) -> AlbEnv {
    let c = clients(lab).await;
    let manifest = manifest(lab, &app);
    let (s, out) = session(lab, &manifest, env, Overrides::default()).await;
    s.setup(false)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", out.text()));
    let tg = c
        .elbv2
        .describe_target_groups()
        .names(format!("tg-{app}-{env}"))
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    AlbEnv {
        c,
        app,
        manifest,
        tg,
    }
}

/// Asserts that environment `app`/`env` is settled — the state before or after a rollout, never between:
/// no group, fleet or launch template of the environment is `in-progress` (or `restoring`: an undo half
/// done), a kept group (`retired`) is detached from every load balancer; every launch template the
/// environment's tags name is used by one of its groups or fleets; every running instance launched for
/// one of its groups still belongs to a group of the environment. Checked in the lab's region and in
/// `COPY_REGION`, the other region tests use.
pub async fn assert_settled(c: &Clients, app: &str, env: &str, context: &str) {
    use aws_sdk_ec2::types::Filter;
    let groups = env_groups(c, app, env).await;
    let tag = |g: &aws_sdk_autoscaling::types::AutoScalingGroup, k: &str| {
        g.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    let mut problems = Vec::new();
    for g in &groups {
        let state = tag(g, "bakery:rollout-state");
        let name = g.auto_scaling_group_name().unwrap_or_default();
        match state.as_deref() {
            Some("in-progress") => problems.push(format!("group {name} is in-progress")),
            // An undo that neither finished nor was rolled back.
            Some("restoring") => problems.push(format!("group {name} is restoring")),
            // A previous release kept on purpose (blue_green.keep_previous_*): it must be out of service
            // and say when it was retired.
            Some("retired") => {
                if !g.load_balancer_names().is_empty() || !g.target_group_arns().is_empty() {
                    problems.push(format!(
                        "kept group {name} is still attached to a load balancer"
                    ));
                }
                if tag(g, "bakery:retired-at").is_none() {
                    problems.push(format!("kept group {name} has no bakery:retired-at"));
                }
            }
            _ => {}
        }
    }
    let in_groups: std::collections::BTreeSet<String> = groups
        .iter()
        .flat_map(|g| g.instances().iter().filter_map(|i| i.instance_id()))
        .map(str::to_string)
        .collect();
    let used_templates: std::collections::BTreeSet<String> = groups
        .iter()
        .filter_map(|g| g.launch_template().and_then(|l| l.launch_template_id()))
        .map(str::to_string)
        .collect();
    let env_filters = || {
        vec![
            Filter::builder().name("tag:bakery:app").values(app).build(),
            Filter::builder().name("tag:bakery:env").values(env).build(),
        ]
    };
    // Spot fleets of the environment: none in progress; their templates are in use while they are active.
    let mut fleet_templates = std::collections::BTreeSet::new();
    let mut fleet_instances = std::collections::BTreeSet::new();
    let fleets = c
        .ec2
        .describe_spot_fleet_requests()
        .send()
        .await
        .expect("DescribeSpotFleetRequests");
    for f in fleets.spot_fleet_request_configs() {
        let t = |k: &str| {
            f.tags()
                .iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
        };
        if t("bakery:app") != Some(app) || t("bakery:env") != Some(env) {
            continue;
        }
        let id = f.spot_fleet_request_id().unwrap_or_default();
        let active = matches!(
            f.spot_fleet_request_state().map(|s| s.as_str()),
            Some("active" | "submitted" | "modifying")
        );
        if active && t("bakery:rollout-state") == Some("in-progress") {
            problems.push(format!("fleet {id} is in-progress"));
        }
        if !active {
            continue;
        }
        for lt in f
            .spot_fleet_request_config()
            .map(|c| c.launch_template_configs())
            .unwrap_or_default()
        {
            if let Some(id) = lt
                .launch_template_specification()
                .and_then(|s| s.launch_template_id())
            {
                fleet_templates.insert(id.to_string());
            }
        }
        let active_instances = c
            .ec2
            .describe_spot_fleet_instances()
            .spot_fleet_request_id(id)
            .send()
            .await
            .expect("DescribeSpotFleetInstances");
        fleet_instances.extend(
            active_instances
                .active_instances()
                .iter()
                .filter_map(|i| i.instance_id())
                .map(str::to_string),
        );
    }
    let templates = c
        .ec2
        .describe_launch_templates()
        .set_filters(Some(env_filters()))
        .send()
        .await
        .expect("DescribeLaunchTemplates");
    for lt in templates.launch_templates() {
        let id = lt.launch_template_id().unwrap_or_default();
        if !used_templates.contains(id) && !fleet_templates.contains(id) {
            problems.push(format!(
                "launch template {} ({id}) is used by no group or fleet of the environment",
                lt.launch_template_name().unwrap_or_default()
            ));
        }
    }
    // Instances of the environment's groups (AWS and moto tag them with their group's name) or fleets.
    let prefix = format!("asg-{app}-{env}-");
    let instances = c
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances");
    for i in instances.reservations().iter().flat_map(|r| r.instances()) {
        let id = i.instance_id().unwrap_or_default().to_string();
        let group = i
            .tags()
            .iter()
            .find(|t| t.key() == Some("aws:autoscaling:groupName"))
            .and_then(|t| t.value());
        let of_env_fleet = i
            .tags()
            .iter()
            .any(|t| t.key() == Some("bakery:env") && t.value() == Some(env))
            && i.tags()
                .iter()
                .any(|t| t.key() == Some("bakery:app") && t.value() == Some(app));
        let of_env_group = group.is_some_and(|g| g.starts_with(&prefix));
        if (of_env_group || of_env_fleet)
            && !in_groups.contains(&id)
            && !fleet_instances.contains(&id)
        {
            problems.push(format!(
                "instance {id} ({}) belongs to no group or fleet of the environment",
                group.unwrap_or("no group")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{context}: environment {app}/{env} is not settled:\n  {}",
        problems.join("\n  ")
    );
}

/// A short unique app name starting with `letter` (one per test file, so a leftover names its file):
/// load balancer names are at most 32 characters, and rollout builds them from the app name.
pub fn short_app_name(lab: &Lab, letter: char) -> String {
    let u = lab.unique(&letter.to_string());
    let tail: String = u
        .rsplit('-')
        .next()
        .unwrap_or("0")
        .chars()
        .take(6)
        .collect();
    let n: String = u.split('-').nth(2).unwrap_or("0").to_string();
    format!("{letter}{n}x{tail}")
}
