//! `rollout gc` on the lab (moto): AMIs in use (live group, stopped instance) and AMIs outside the
//! selection stay, every other app AMI is deregistered with exactly its snapshots; the dry run only reads;
//! a second run removes nothing; launch template versions keep the default, the latest, the ones a group
//! references and the newest N; gc across two regions, each decided on its own; a shared AMI stays unless
//! `--include-shared`; `--deprecate-after`/`--delete-after` deprecate first, deregister later and
//! undeprecate what is kept again. Also the command line's errors.

use super::common;

use bakery_core::aws::Clients;
use bakery_lab::Lab;
use bakery_rollout::config::Overrides;
use bakery_rollout::gc::{Action, GcReport, GcRequest};
use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const ENV: &str = "staging";

/// The second region of the lab tests (where bake's region copies go).
const WEST: &str = crate::common::COPY_REGION;

/// The tests' checking clients in `region`.
async fn clients_in(lab: &Lab, region: &str) -> Clients {
    let sdk = crate::common::checking_sdk_config(&settings(lab)).await;
    Clients::for_region(&sdk, Some(region), None)
}

/// A copy of `source` (in the lab's region) in `c`'s region, named `name` and tagged `app=APP` as bake
/// tags its copies; its id and snapshots.
async fn copy(
    lab: &Lab,
    c: &Clients,
    source: &str,
    name: &str,
    app: &str,
) -> (String, Vec<String>) {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let ami = c
        .ec2
        .copy_image()
        .source_image_id(source)
        .source_region(lab.region())
        .name(name)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .tags(Tag::builder().key("app").value(app).build())
                .build(),
        )
        .send()
        .await
        .expect("CopyImage")
        .image_id()
        .unwrap()
        .to_string();
    let snaps = snapshots_of(c, &ami).await;
    assert!(
        !snaps.is_empty(),
        "moto's CopyImage made no snapshot for {ami}"
    );
    (ami, snaps)
}

/// The AMI's DeprecationTime, as DescribeImages shows it.
async fn deprecation_time(c: &Clients, ami: &str) -> Option<SystemTime> {
    let out = c
        .ec2
        .describe_images()
        .image_ids(ami)
        .send()
        .await
        .expect("DescribeImages");
    let t = out.images().first()?.deprecation_time()?.to_string();
    let d = aws_smithy_types::DateTime::from_str(&t, aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|e| panic!("{t}: {e}"));
    Some(SystemTime::try_from(d).unwrap())
}

/// The AMI's tag `key`.
async fn image_tag(c: &Clients, ami: &str, key: &str) -> Option<String> {
    let out = c
        .ec2
        .describe_images()
        .image_ids(ami)
        .send()
        .await
        .expect("DescribeImages");
    out.images()
        .first()?
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .map(str::to_string)
}

fn app_name(lab: &Lab) -> String {
    common::short_app_name(lab, 'g')
}

/// `rollout gc ARGS` on the command line for manifest `m`'s staging environment; (exit code, stdout,
/// stderr).
async fn gc_cli(lab: &Lab, m: &Path, args: &[&str]) -> (u8, String, String) {
    let m = m.to_str().unwrap();
    let mut all = vec!["--manifest", m, "--env", ENV, "gc"];
    all.extend_from_slice(args);
    cli(lab, &all).await
}

/// `rollout --manifest M gc ARGS` (no `--env`): its exit code and stderr.
async fn gc_refused(lab: &Lab, m: &str, args: &[&str]) -> (u8, String) {
    let mut all = vec!["--manifest", m, "gc"];
    all.extend_from_slice(args);
    let (code, _, err) = cli(lab, &all).await;
    (code, err)
}

/// A classic-ELB environment whose gc block selects AMIs named `APP-…` tagged `app=APP`.
fn manifest(lab: &Lab, app: &str) -> PathBuf {
    manifest_with(lab, app, json!({}))
}

/// [`manifest`] with more `gc` settings.
fn manifest_with(lab: &Lab, app: &str, gc: serde_json::Value) -> PathBuf {
    let dir = temp_dir(lab, app);
    let mut block = json!({"ami_name_prefix": format!("{app}-"), "ami_tags": {"app": app}});
    for (k, v) in gc.as_object().unwrap() {
        block[k] = v.clone();
    }
    write_manifest(
        &dir,
        &json!({
            "app": app,
            "region": "us-east-1",
            "defaults": {
                "load_balancer": {"kind": "classic", "health_check": {"path": "/"}, "draining_seconds": 0},
                "network": {"availability_zones": ["us-east-1a"]},
                "capacity": {"min": 1, "max": 1, "desired": 1},
                "timeouts": {"health_seconds": 60, "drain_seconds": 30, "retire_seconds": 30,
                             "rollback_seconds": 30},
                "gc": block
            },
            "environments": {"staging": {}}
        }),
    )
}

/// An AMI named `name` with `tags`, made by CreateImage from a (then terminated) instance; its id and
/// the snapshots of its block-device mappings.
async fn image(lab: &Lab, c: &Clients, name: &str, tags: &[(&str, &str)]) -> (String, Vec<String>) {
    let ami = register_ami(lab, c, name).await;
    let mut req = c.ec2.create_tags().resources(&ami);
    for (k, v) in tags {
        req = req.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
    }
    req.send().await.expect("CreateTags");
    let snaps = snapshots_of(c, &ami).await;
    assert!(
        !snaps.is_empty(),
        "moto's CreateImage made no snapshot for {ami}"
    );
    (ami, snaps)
}

async fn snapshots_of(c: &Clients, ami: &str) -> Vec<String> {
    c.ec2
        .describe_images()
        .image_ids(ami)
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
        .map(str::to_string)
        .collect()
}

async fn image_exists(c: &Clients, ami: &str) -> bool {
    match c.ec2.describe_images().image_ids(ami).send().await {
        Ok(o) => o.images().iter().any(|i| i.image_id() == Some(ami)),
        Err(_) => false,
    }
}

async fn owned_snapshots(c: &Clients) -> BTreeSet<String> {
    c.ec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .expect("DescribeSnapshots")
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_string))
        .collect()
}

fn decision<'a>(r: &'a GcReport, ami: &str) -> &'a bakery_rollout::gc::AmiDecision {
    r.amis()
        .find(|a| a.id == ami)
        .unwrap_or_else(|| panic!("{ami} not in the report:\n{}", r.render()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_what_is_in_use_and_removes_exactly_the_rest_with_their_snapshots() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let m = manifest(lab, &app);
    let (s, out) = session(lab, &m, ENV, Overrides::default()).await;
    s.setup(false)
        .await
        .unwrap_or_else(|e| panic!("setup: {e}\n{}", out.text()));

    let tag = [("app", app.as_str())];
    let (old1, old1_snaps) = image(lab, &c, &format!("{app}-1"), &tag).await;
    let (live, live_snaps) = image(lab, &c, &format!("{app}-2"), &tag).await;
    let (stopped, stopped_snaps) = image(lab, &c, &format!("{app}-3"), &tag).await;
    let (old4, old4_snaps) = image(lab, &c, &format!("{app}-4"), &tag).await;
    // Outside the selection: the right name without the tag, and the tag without the name.
    let (untagged, untagged_snaps) = image(lab, &c, &format!("{app}-5"), &[("app", "other")]).await;
    let (unnamed, _) = image(lab, &c, &format!("other-{app}"), &tag).await;
    // A snapshot no AMI uses.
    let vol = c
        .ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(1)
        .send()
        .await
        .expect("CreateVolume");
    let decoy = c
        .ec2
        .create_snapshot()
        .volume_id(vol.volume_id().unwrap())
        .send()
        .await
        .expect("CreateSnapshot")
        .snapshot_id()
        .unwrap()
        .to_string();

    // The live group runs `live`; a stopped instance still needs `stopped`.
    s.deploy(&live)
        .await
        .unwrap_or_else(|e| panic!("deploy: {e}\n{}", out.text()));
    let groups = env_groups(&c, &app, ENV).await;
    assert_eq!(groups.len(), 1);
    let group = groups[0].auto_scaling_group_name().unwrap().to_string();
    let run = c
        .ec2
        .run_instances()
        .image_id(&stopped)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances");
    let stopped_instance = run.instances()[0].instance_id().unwrap().to_string();
    c.ec2
        .stop_instances()
        .instance_ids(&stopped_instance)
        .send()
        .await
        .expect("StopInstances");
    let snaps_before = owned_snapshots(&c).await;

    // Dry run on the command line: the plan, with reads only.
    lab.reset_request_counts();
    let (code, stdout, stderr) = gc_cli(lab, &m, &["--keep", "0", "--dry-run", "--json"]).await;
    let counts = lab.request_counts();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(writes(&counts), Vec::<String>::new(), "{counts:?}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let by_id = |id: &str| {
        plan["amis"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {stdout}"))
    };
    for id in [&old1, &old4] {
        assert_eq!(by_id(id)["action"], "would-remove", "{stdout}");
    }
    assert_eq!(by_id(&live)["action"], "kept");
    assert_eq!(by_id(&stopped)["action"], "kept");
    let selected: BTreeSet<String> = plan["amis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        selected,
        BTreeSet::from([old1.clone(), live.clone(), stopped.clone(), old4.clone()]),
        "only the app's AMIs are selected: {stdout}"
    );
    for id in [&old1, &old4, &live, &stopped] {
        assert!(image_exists(&c, id).await, "dry run removed {id}");
    }
    assert_eq!(owned_snapshots(&c).await, snaps_before);

    // The real run.
    lab.reset_request_counts();
    lab.reset_realism_counts();
    let r = s
        .gc(&GcRequest {
            keep: Some(0),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("gc: {e}\n{}", out.text()));
    assert!(r.problems.is_empty(), "{}", r.render());
    let mut removed: Vec<&str> = r.removed();
    removed.sort();
    let mut want = vec![old1.as_str(), old4.as_str()];
    want.sort();
    assert_eq!(removed, want, "{}", r.render());
    let live_d = decision(&r, &live);
    assert_eq!(live_d.action, Action::Kept);
    assert!(
        live_d
            .reasons
            .iter()
            .any(|x| x.starts_with(&format!("in use by asg {group}"))),
        "{}",
        r.render()
    );
    let stopped_d = decision(&r, &stopped);
    assert!(
        stopped_d
            .reasons
            .contains(&format!("in use by instance {stopped_instance} (stopped)")),
        "{}",
        r.render()
    );
    for (id, snaps) in [(&old1, &old1_snaps), (&old4, &old4_snaps)] {
        let d = decision(&r, id);
        assert_eq!(d.action, Action::Removed);
        let deleted: Vec<&str> = d.snapshots.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            deleted,
            snaps.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert!(d.snapshots.iter().all(|s| s.action == Action::Removed));
    }
    // Moto: exactly those AMIs and snapshots are gone.
    for id in [&old1, &old4] {
        assert!(!image_exists(&c, id).await, "{id} still registered");
    }
    for id in [&live, &stopped, &untagged, &unnamed] {
        assert!(image_exists(&c, id).await, "{id} was removed");
    }
    let mut expected = snaps_before.clone();
    for s in old1_snaps.iter().chain(&old4_snaps) {
        expected.remove(s);
    }
    assert_eq!(owned_snapshots(&c).await, expected);
    for s in live_snaps
        .iter()
        .chain(&stopped_snaps)
        .chain(&untagged_snaps)
        .chain(std::iter::once(&decoy))
    {
        assert!(expected.contains(s), "{s}");
    }
    let counts = lab.request_counts();
    // Requests the lab's realism layer refused (docs/lab.md) are sent again.
    let refused = lab.realism();
    assert_eq!(
        counts.get("DeregisterImage"),
        Some(&(2 + refused.refused("DeregisterImage"))),
        "{counts:?}"
    );
    assert_eq!(
        counts.get("DeleteSnapshot"),
        Some(&(2 + refused.refused("DeleteSnapshot"))),
        "{counts:?}"
    );
    // One CreateTags per removed AMI: its snapshots marked `bakery:gc-pending` before deregistering.
    assert_eq!(
        counts.get("CreateTags"),
        Some(&(2 + refused.refused("CreateTags"))),
        "{counts:?}"
    );
    assert_eq!(
        writes(&counts),
        vec![
            "CreateTags".to_string(),
            "DeleteSnapshot".to_string(),
            "DeregisterImage".to_string()
        ]
    );

    // A second run removes nothing, and sends no write; the human summary says why each one stays.
    lab.reset_request_counts();
    let (code, stdout, stderr) = gc_cli(lab, &m, &["--keep", "0"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(writes(&lab.request_counts()), Vec::<String>::new());
    assert!(stdout.contains(": 0 removed, 2 kept"), "{stdout}");
    assert!(
        stdout.contains(&format!("in use by asg {group}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("in use by instance {stopped_instance} (stopped)")),
        "{stdout}"
    );

    // Once the instance is terminated its AMI is free and goes; the live group's stays.
    c.ec2
        .terminate_instances()
        .instance_ids(&stopped_instance)
        .send()
        .await
        .expect("TerminateInstances");
    let r = s
        .gc(&GcRequest {
            keep: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.removed(), vec![stopped.as_str()], "{}", r.render());
    assert!(!image_exists(&c, &stopped).await);
    assert!(image_exists(&c, &live).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_covers_every_region_each_decided_on_its_own() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let west = clients_in(lab, WEST).await;
    let app = app_name(lab);
    let m = manifest_with(lab, &app, json!({"regions": [WEST]}));
    let (s, out) = session(lab, &m, ENV, Overrides::default()).await;
    let tag = [("app", app.as_str())];
    let (e1, e1_snaps) = image(lab, &c, &format!("{app}-1"), &tag).await;
    let (e2, _) = image(lab, &c, &format!("{app}-2"), &tag).await;
    // bake's copies in the other region; the oldest one runs an instance there.
    let (w1, _) = copy(lab, &west, &e1, &format!("{app}-1-copy"), &app).await;
    let (w2, w2_snaps) = copy(lab, &west, &e2, &format!("{app}-2-copy"), &app).await;
    let (w3, _) = copy(lab, &west, &e2, &format!("{app}-3-copy"), &app).await;
    let user = west
        .ec2
        .run_instances()
        .image_id(&w1)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances")
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let east_before = owned_snapshots(&c).await;
    let west_before = owned_snapshots(&west).await;
    let m = m.to_str().unwrap();

    // Dry runs: the manifest's regions, then --regions instead of them; reads only.
    lab.reset_request_counts();
    let gc = |more: &[&'static str]| {
        let mut a = vec![
            "--manifest",
            m,
            "--env",
            ENV,
            "gc",
            "--keep",
            "1",
            "--dry-run",
            "--json",
        ];
        a.extend_from_slice(more);
        a
    };
    let (code, stdout, stderr) = cli(lab, &gc(&[])).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let action = |amis: &serde_json::Value, id: &str| {
        amis.as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| a["action"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{id} not in {stdout}"))
    };
    assert_eq!(plan["region"], lab.region());
    assert_eq!(action(&plan["amis"], &e1), "would-remove");
    assert_eq!(action(&plan["amis"], &e2), "kept");
    assert_eq!(
        plan["other_regions"].as_array().unwrap().len(),
        1,
        "{stdout}"
    );
    let w = &plan["other_regions"][0];
    assert_eq!(w["region"], WEST);
    assert_eq!(w["amis"].as_array().unwrap().len(), 3, "{stdout}");
    assert_eq!(action(&w["amis"], &w1), "kept");
    assert_eq!(action(&w["amis"], &w2), "would-remove");
    assert_eq!(action(&w["amis"], &w3), "kept");
    // moto lacks DescribeImageReferences: the report says gc's own scan decided.
    assert_eq!(w["image_references"]["status"], "unavailable", "{stdout}");
    let (code, stdout, stderr) = cli(lab, &gc(&["--regions", "eu-west-1"])).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let regions: Vec<&str> = plan["other_regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions, ["eu-west-1"], "--regions replaces gc.regions");
    let counts = lab.request_counts();
    assert_eq!(writes(&counts), Vec::<String>::new(), "{counts:?}");
    for (cl, id) in [
        (&c, &e1),
        (&c, &e2),
        (&west, &w1),
        (&west, &w2),
        (&west, &w3),
    ] {
        assert!(image_exists(cl, id).await, "dry run removed {id}");
    }

    // The real run: in each region its newest, and what is in use there, stay.
    lab.reset_request_counts();
    lab.reset_realism_counts();
    let r = s
        .gc(&GcRequest {
            keep: Some(1),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("gc: {e}\n{}", out.text()));
    assert!(r.problems.is_empty(), "{}", r.render());
    let mut removed = r.removed();
    removed.sort();
    let mut want = vec![e1.as_str(), w2.as_str()];
    want.sort();
    assert_eq!(removed, want, "{}", r.render());
    assert_eq!(r.other_regions[0].region, WEST);
    assert!(
        decision(&r, &w1)
            .reasons
            .iter()
            .any(|x| x.starts_with(&format!("in use by instance {user}"))),
        "{}",
        r.render()
    );
    assert_eq!(decision(&r, &w3).reasons, ["newest 1"], "{}", r.render());
    assert_eq!(decision(&r, &e2).reasons, ["newest 1"], "{}", r.render());
    for (id, snaps) in [(&e1, &e1_snaps), (&w2, &w2_snaps)] {
        let d = decision(&r, id);
        let deleted: Vec<&str> = d.snapshots.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            deleted,
            snaps.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert!(d.snapshots.iter().all(|s| s.action == Action::Removed));
    }
    // Exactly those AMIs and snapshots are gone, each in its region.
    assert!(!image_exists(&c, &e1).await && !image_exists(&west, &w2).await);
    for (cl, id) in [(&c, &e2), (&west, &w1), (&west, &w3)] {
        assert!(image_exists(cl, id).await, "{id} was removed");
    }
    let mut expected = east_before.clone();
    e1_snaps.iter().for_each(|s| {
        expected.remove(s);
    });
    assert_eq!(owned_snapshots(&c).await, expected);
    let mut expected = west_before.clone();
    w2_snaps.iter().for_each(|s| {
        expected.remove(s);
    });
    assert_eq!(owned_snapshots(&west).await, expected);
    let counts = lab.request_counts();
    let refused = lab.realism();
    assert_eq!(
        counts.get("DeregisterImage"),
        Some(&(2 + refused.refused("DeregisterImage"))),
        "{counts:?}"
    );
    assert_eq!(
        writes(&counts),
        ["CreateTags", "DeleteSnapshot", "DeregisterImage"],
        "{counts:?}"
    );
    let total = |m: &std::collections::BTreeMap<String, u64>| m.values().sum::<u64>();
    let (home_n, west_n) = (
        total(&r.home.region_aws_requests),
        total(&r.other_regions[0].region_aws_requests),
    );
    eprintln!(
        "gc across two regions: {} requests ({home_n} in {}, {west_n} in {WEST}): {:?}",
        total(&r.aws_requests),
        lab.region(),
        r.aws_requests
    );
    assert!(home_n > 0 && west_n > 0 && home_n + west_n <= total(&r.aws_requests));
    assert!(
        r.render()
            .contains(&format!("In {WEST}: 1 removed, 2 kept")),
        "{}",
        r.render()
    );
    let _ = west
        .ec2
        .terminate_instances()
        .instance_ids(&user)
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_ami_stays_unless_include_shared() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let m = manifest(lab, &app);
    let (s, out) = session(lab, &m, ENV, Overrides::default()).await;
    let tag = [("app", app.as_str())];
    let (shared, shared_snaps) = image(lab, &c, &format!("{app}-1"), &tag).await;
    let (newest, _) = image(lab, &c, &format!("{app}-2"), &tag).await;
    c.ec2
        .modify_image_attribute()
        .image_id(&shared)
        .launch_permission(
            aws_sdk_ec2::types::LaunchPermissionModifications::builder()
                .add(
                    aws_sdk_ec2::types::LaunchPermission::builder()
                        .user_id("111122223333")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("ModifyImageAttribute");

    // By default a launch permission keeps the AMI, and gc says why; nothing is written.
    lab.reset_request_counts();
    let r = s
        .gc(&GcRequest {
            keep: Some(1),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("gc: {e}\n{}", out.text()));
    let counts = lab.request_counts();
    assert_eq!(writes(&counts), Vec::<String>::new(), "{counts:?}");
    assert!(counts.contains_key("DescribeImageAttribute"), "{counts:?}");
    assert!(r.problems.is_empty(), "{}", r.render());
    assert!(r.removed().is_empty(), "{}", r.render());
    let d = decision(&r, &shared);
    assert_eq!(d.shared_with, ["account 111122223333"]);
    assert!(
        d.reasons[0].starts_with("shared with account 111122223333 (launch permission")
            && d.reasons[0].ends_with("--include-shared to remove it"),
        "{}",
        r.render()
    );
    assert!(image_exists(&c, &shared).await);

    // --include-shared: it goes, with exactly its snapshots.
    let (code, stdout, stderr) =
        gc_cli(lab, &m, &["--keep", "1", "--include-shared", "--json"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(doc["include_shared"], true);
    let removed: Vec<&serde_json::Value> = doc["amis"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "removed")
        .collect();
    assert_eq!(removed.len(), 1, "{stdout}");
    assert_eq!(removed[0]["id"], shared.as_str());
    let snaps: Vec<&str> = removed[0]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        snaps,
        shared_snaps.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(!image_exists(&c, &shared).await);
    assert!(image_exists(&c, &newest).await);
    let left = owned_snapshots(&c).await;
    assert!(shared_snaps.iter().all(|s| !left.contains(s)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_deprecates_first_deregisters_after_delete_after_and_undeprecates_what_is_kept_again() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let m = manifest(lab, &app);
    let (s, out) = session(lab, &m, ENV, Overrides::default()).await;
    let tag = [("app", app.as_str())];
    let (d1, d1_snaps) = image(lab, &c, &format!("{app}-1"), &tag).await;
    let (d2, _) = image(lab, &c, &format!("{app}-2"), &tag).await;
    let (d3, _) = image(lab, &c, &format!("{app}-3"), &tag).await;
    let hour = Duration::from_secs(3600);
    let staged = |keep: u32, now: Option<SystemTime>, dry_run: bool| GcRequest {
        keep: Some(keep),
        delete_after: Some(hour),
        now,
        dry_run,
        ..Default::default()
    };

    // 1. --delete-after 1h alone: the two old AMIs are deprecated now (the next whole minute) and tagged;
    //    nothing is deregistered.
    lab.reset_request_counts();
    lab.reset_realism_counts();
    let started = SystemTime::now();
    let r = s
        .gc(&staged(1, None, false))
        .await
        .unwrap_or_else(|e| panic!("gc: {e}\n{}", out.text()));
    assert!(r.problems.is_empty(), "{}", r.render());
    assert!(r.removed().is_empty(), "{}", r.render());
    for id in [&d1, &d2] {
        assert_eq!(
            decision(&r, id).action,
            Action::Deprecated,
            "{}",
            r.render()
        );
    }
    assert_eq!(decision(&r, &d3).action, Action::Kept);
    let counts = lab.request_counts();
    assert_eq!(
        writes(&counts),
        ["CreateTags", "EnableImageDeprecation"],
        "{counts:?}"
    );
    assert_eq!(
        counts.get("EnableImageDeprecation"),
        Some(&(2 + lab.realism().refused("EnableImageDeprecation"))),
        "{counts:?}"
    );
    let t = deprecation_time(&c, &d1)
        .await
        .expect("DescribeImages shows the deprecation time");
    assert!(
        t > started && t <= started + Duration::from_secs(120),
        "{t:?} {started:?}"
    );
    assert!(deprecation_time(&c, &d2).await.is_some());
    assert_eq!(deprecation_time(&c, &d3).await, None);
    assert_eq!(
        image_tag(&c, &d1, "bakery:deprecated-by").await.as_deref(),
        Some("gc")
    );
    assert!(
        r.render().contains("deprecated   ") && r.render().contains("(delete_after 1h)"),
        "{}",
        r.render()
    );

    // 2. Again before delete_after has passed: they wait; nothing is written.
    lab.reset_request_counts();
    let r = s.gc(&staged(1, None, false)).await.unwrap();
    assert!(writes(&lab.request_counts()).is_empty());
    for id in [&d1, &d2] {
        assert_eq!(decision(&r, id).action, Action::Waiting, "{}", r.render());
    }

    // 3. An hour after the deprecation time (the decision time moved; no waiting), a dry run: both
    //    would go; reads only.
    let later = t + hour + Duration::from_secs(60);
    lab.reset_request_counts();
    let r = s.gc(&staged(1, Some(later), true)).await.unwrap();
    assert!(writes(&lab.request_counts()).is_empty());
    let mut removed = r.removed();
    removed.sort();
    let mut want = vec![d1.as_str(), d2.as_str()];
    want.sort();
    assert_eq!(removed, want, "{}", r.render());

    // 4. keep 2 then: d2 is among the newest again, its deprecation is cancelled (a dry run first);
    //    d1 goes with exactly its snapshots.
    lab.reset_request_counts();
    let r = s.gc(&staged(2, Some(later), true)).await.unwrap();
    assert!(writes(&lab.request_counts()).is_empty());
    assert_eq!(decision(&r, &d2).action, Action::WouldUndeprecate);
    lab.reset_request_counts();
    lab.reset_realism_counts();
    let r = s.gc(&staged(2, Some(later), false)).await.unwrap();
    assert!(r.problems.is_empty(), "{}", r.render());
    assert_eq!(r.removed(), [d1.as_str()], "{}", r.render());
    assert_eq!(decision(&r, &d2).action, Action::Undeprecated);
    let deleted: Vec<&str> = decision(&r, &d1)
        .snapshots
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        deleted,
        d1_snaps.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(!image_exists(&c, &d1).await);
    assert_eq!(deprecation_time(&c, &d2).await, None);
    assert_eq!(image_tag(&c, &d2, "bakery:deprecated-by").await, None);
    let counts = lab.request_counts();
    assert_eq!(
        writes(&counts),
        [
            "CreateTags",
            "DeleteSnapshot",
            "DeleteTags",
            "DeregisterImage",
            "DisableImageDeprecation"
        ],
        "{counts:?}"
    );

    // 5. --deprecate-after alone (the command line): deprecated 7 days ahead, never deregistered.
    let (code, stdout, stderr) = gc_cli(
        lab,
        &m,
        &["--keep", "1", "--deprecate-after", "7d", "--json"],
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(doc["deprecate_after"], "7d");
    let d2_doc = doc["amis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == d2.as_str())
        .unwrap();
    assert_eq!(d2_doc["action"], "deprecated", "{stdout}");
    let week = Duration::from_secs(7 * 86_400);
    let t2 = deprecation_time(&c, &d2).await.unwrap();
    assert!(
        t2 >= SystemTime::now() + week - Duration::from_secs(120),
        "{t2:?}"
    );
    let r = s
        .gc(&GcRequest {
            keep: Some(1),
            deprecate_after: Some(week),
            now: Some(SystemTime::now() + Duration::from_secs(30 * 86_400)),
            ..Default::default()
        })
        .await
        .unwrap();
    let d = decision(&r, &d2);
    assert_eq!(d.action, Action::Waiting, "{}", r.render());
    assert!(
        d.reasons.join(" ").contains("--delete-after"),
        "{}",
        r.render()
    );
    assert!(image_exists(&c, &d2).await && image_exists(&c, &d3).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_template_versions_keep_default_latest_referenced_and_newest() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let m = manifest(lab, &app);
    let (s, out) = session(lab, &m, ENV, Overrides::default()).await;
    s.setup(false)
        .await
        .unwrap_or_else(|e| panic!("setup: {e}\n{}", out.text()));
    let tag = [("app", app.as_str())];
    let mut amis = Vec::new();
    for n in 1..=5 {
        amis.push(image(lab, &c, &format!("{app}-{n}"), &tag).await.0);
    }
    s.deploy(&amis[0])
        .await
        .unwrap_or_else(|e| panic!("deploy: {e}\n{}", out.text()));
    let groups = env_groups(&c, &app, ENV).await;
    let lt = groups[0].launch_template().unwrap();
    let lt_id = lt.launch_template_id().unwrap().to_string();
    // Versions 2..5 on AMIs 2..5; version 3 becomes the default. The group stays on version 1.
    for ami in &amis[1..] {
        c.ec2
            .create_launch_template_version()
            .launch_template_id(&lt_id)
            .source_version("1")
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(ami)
                    .build(),
            )
            .send()
            .await
            .expect("CreateLaunchTemplateVersion");
    }
    c.ec2
        .modify_launch_template()
        .launch_template_id(&lt_id)
        .default_version("3")
        .send()
        .await
        .expect("ModifyLaunchTemplate");
    // A template rollout did not create, with old versions: never pruned.
    let foreign = c
        .ec2
        .create_launch_template()
        .launch_template_name(format!("{app}-foreign"))
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(lab.source_ami())
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    let foreign_id = foreign
        .launch_template()
        .unwrap()
        .launch_template_id()
        .unwrap()
        .to_string();
    c.ec2
        .create_launch_template_version()
        .launch_template_id(&foreign_id)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(lab.source_ami())
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplateVersion");

    // moto 5.2.5 has no DeleteLaunchTemplateVersions: the lab checks the decisions with a dry run.
    lab.reset_request_counts();
    let r = s
        .gc(&GcRequest {
            keep: Some(0),
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("gc: {e}\n{}", out.text()));
    assert_eq!(writes(&lab.request_counts()), Vec::<String>::new());
    assert!(r.problems.is_empty(), "{}", r.render());
    let versions: Vec<(i64, Action)> = r
        .home
        .launch_template_versions
        .iter()
        .map(|v| {
            assert_eq!(v.template_id, lt_id, "{}", r.render());
            (v.version, v.action)
        })
        .collect();
    assert_eq!(
        versions,
        vec![
            (5, Action::Kept),
            (4, Action::WouldRemove),
            (3, Action::Kept),
            (2, Action::WouldRemove),
            (1, Action::Kept),
        ],
        "{}",
        r.render()
    );
    let reasons = |n: i64| {
        r.home
            .launch_template_versions
            .iter()
            .find(|v| v.version == n)
            .unwrap()
            .reasons
            .join("; ")
    };
    assert_eq!(reasons(5), "latest version");
    assert_eq!(reasons(3), "default version");
    assert!(reasons(1).starts_with("in use by asg "), "{}", reasons(1));
    // The AMIs only the versions going away reference go with them; the others stay, with the reason.
    let mut removed = r.removed();
    removed.sort();
    let mut want = vec![amis[1].as_str(), amis[3].as_str()];
    want.sort();
    assert_eq!(removed, want, "{}", r.render());
    assert!(
        decision(&r, &amis[2])
            .reasons
            .iter()
            .any(|x| x.contains("version 3")),
        "{}",
        r.render()
    );

    // keep 2: the two newest versions stay too.
    let r = s
        .gc(&GcRequest {
            keep: Some(2),
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let going: Vec<i64> = r
        .home
        .launch_template_versions
        .iter()
        .filter(|v| v.action == Action::WouldRemove)
        .map(|v| v.version)
        .collect();
    assert_eq!(going, vec![2], "{}", r.render());
    let _ = c
        .ec2
        .delete_launch_template()
        .launch_template_id(&foreign_id)
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_refuses_gc_without_keep_or_selection() {
    let (lab, _serial) = lab().await;
    let dir = temp_dir(lab, "gc-cli");
    let base = json!({"app": "shop", "defaults": {}, "environments": {"staging": {}}});
    let m = write_manifest(&dir, &base);
    let m = m.to_str().unwrap();
    lab.reset_request_counts();

    let (code, err) = gc_refused(lab, m, &[]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--keep: missing"), "{err}");
    let (code, err) = gc_refused(lab, m, &["--keep", "1", "--tag", "novalue"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`novalue` is not a tag (K=V)"), "{err}");
    let (code, err) = gc_refused(lab, m, &["--keep", "1", "--regions", "us_west_2"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`us_west_2` is not a region name"), "{err}");
    let (code, err) = gc_refused(lab, m, &["--keep", "1", "--delete-after", "soon"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`soon` is not a duration"), "{err}");

    let bad = json!({"app": "shop", "defaults": {"gc": {"ami_tags": {}}}, "environments": {"staging": {}}});
    let bad_path = dir.join("bad.json");
    std::fs::write(&bad_path, serde_json::to_string_pretty(&bad).unwrap()).unwrap();
    let (code, err) = gc_refused(lab, bad_path.to_str().unwrap(), &["--keep", "1"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("bad.json:4:") && err.contains("defaults.gc: selects every AMI"),
        "{err}"
    );
    let typo = json!({"app": "shop", "defaults": {"gc": {"keep_last": 3}}, "environments": {"staging": {}}});
    std::fs::write(&bad_path, serde_json::to_string_pretty(&typo).unwrap()).unwrap();
    let (code, err) = gc_refused(lab, bad_path.to_str().unwrap(), &["--keep", "1"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown field `keep_last`"), "{err}");
    let twice = json!({"app": "shop", "defaults": {"gc": {"regions": ["us-west-2", "us-west-2"], "delete_after": "1x"}}, "environments": {"staging": {}}});
    std::fs::write(&bad_path, serde_json::to_string_pretty(&twice).unwrap()).unwrap();
    let (code, err) = gc_refused(lab, bad_path.to_str().unwrap(), &["--keep", "1"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("defaults.gc.regions: us-west-2 is named twice")
            && err.contains("defaults.gc.delete_after: `1x` is not a duration"),
        "{err}"
    );
    // None of this reached AWS.
    assert_eq!(lab.request_counts().values().sum::<u64>(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_reference_keeps_an_ami_and_an_unresolvable_one_keeps_them_all() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let m = manifest(lab, &app);
    // gc needs no load balancer: no setup.
    let (s, out) = session(lab, &m, ENV, Overrides::default()).await;
    let tag = [("app", app.as_str())];
    let (by_lc, _) = image(lab, &c, &format!("{app}-lc"), &tag).await;
    let (by_fleet, _) = image(lab, &c, &format!("{app}-fleet"), &tag).await;
    let (by_ssm, _) = image(lab, &c, &format!("{app}-ssm"), &tag).await;
    let (free, free_snaps) = image(lab, &c, &format!("{app}-free"), &tag).await;

    let lc = format!("{app}-lc");
    c.autoscaling
        .create_launch_configuration()
        .launch_configuration_name(&lc)
        .image_id(&by_lc)
        .instance_type("t3.micro")
        .send()
        .await
        .expect("CreateLaunchConfiguration");
    // A fleet of 0: nothing runs, only the request references the AMI.
    let fleet = c
        .ec2
        .request_spot_fleet()
        .spot_fleet_request_config(
            aws_sdk_ec2::types::SpotFleetRequestConfigData::builder()
                .iam_fleet_role("arn:aws:iam::123456789012:role/fleet")
                .target_capacity(0)
                .allocation_strategy(aws_sdk_ec2::types::AllocationStrategy::LowestPrice)
                .launch_specifications(
                    aws_sdk_ec2::types::SpotFleetLaunchSpecification::builder()
                        .image_id(&by_fleet)
                        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("RequestSpotFleet")
        .spot_fleet_request_id()
        .unwrap()
        .to_string();
    // A persistent spot request whose instance is gone: AWS launches a new one from the request.
    let (by_spot, _) = image(lab, &c, &format!("{app}-spot"), &tag).await;
    let sir = c
        .ec2
        .request_spot_instances()
        .r#type(aws_sdk_ec2::types::SpotInstanceType::Persistent)
        .launch_specification(
            aws_sdk_ec2::types::RequestSpotLaunchSpecification::builder()
                .image_id(&by_spot)
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("RequestSpotInstances")
        .spot_instance_requests()[0]
        .clone();
    let sir_id = sir.spot_instance_request_id().unwrap().to_string();
    let spot_instance = c
        .ec2
        .describe_spot_instance_requests()
        .spot_instance_request_ids(&sir_id)
        .send()
        .await
        .expect("DescribeSpotInstanceRequests")
        .spot_instance_requests()[0]
        .instance_id()
        .map(str::to_string);
    if let Some(i) = &spot_instance {
        c.ec2
            .terminate_instances()
            .instance_ids(i)
            .send()
            .await
            .expect("TerminateInstances");
    }
    let param = format!("/{app}/ami");
    c.ssm
        .put_parameter()
        .name(&param)
        .value(&by_ssm)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("PutParameter");
    let template = |name: String, image: String| {
        let c = c.clone();
        async move {
            c.ec2
                .create_launch_template()
                .launch_template_name(name)
                .launch_template_data(
                    aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                        .image_id(image)
                        .build(),
                )
                .send()
                .await
                .expect("CreateLaunchTemplate")
                .launch_template()
                .unwrap()
                .launch_template_id()
                .unwrap()
                .to_string()
        }
    };
    // An EC2 Fleet (maintain) whose override names the AMI; its template launches another image.
    let (by_ec2_fleet, _) = image(lab, &c, &format!("{app}-ec2fleet"), &tag).await;
    let fleet_lt = template(format!("{app}-fleet"), lab.source_ami().to_string()).await;
    let ec2_fleet = c
        .ec2
        .create_fleet()
        .r#type(aws_sdk_ec2::types::FleetType::Maintain)
        .target_capacity_specification(
            aws_sdk_ec2::types::TargetCapacitySpecificationRequest::builder()
                .total_target_capacity(0)
                .default_target_capacity_type(aws_sdk_ec2::types::DefaultTargetCapacityType::Spot)
                .build(),
        )
        .launch_template_configs(
            aws_sdk_ec2::types::FleetLaunchTemplateConfigRequest::builder()
                .launch_template_specification(
                    aws_sdk_ec2::types::FleetLaunchTemplateSpecificationRequest::builder()
                        .launch_template_id(&fleet_lt)
                        .version("1")
                        .build(),
                )
                .overrides(
                    aws_sdk_ec2::types::FleetLaunchTemplateOverridesRequest::builder()
                        .image_id(&by_ec2_fleet)
                        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateFleet")
        .fleet_id()
        .unwrap()
        .to_string();
    let ssm_lt = template(format!("{app}-ssm"), format!("resolve:ssm:{param}")).await;

    let r = s
        .gc(&GcRequest {
            keep: Some(0),
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("gc: {e}\n{}", out.text()));
    assert!(r.problems.is_empty(), "{}", r.render());
    assert_eq!(r.removed(), vec![free.as_str()], "{}", r.render());
    let has = |ami: &str, reason: &str| {
        assert!(
            decision(&r, ami).reasons.iter().any(|x| x.contains(reason)),
            "{ami}: no `{reason}` in\n{}",
            r.render()
        )
    };
    has(&by_lc, &format!("in use by launch configuration {lc}"));
    has(&by_fleet, &format!("in use by spot fleet {fleet}"));
    has(
        &by_ssm,
        &format!("in use by launch template {app}-ssm version 1"),
    );
    has(&by_spot, &format!("in use by spot request {sir_id}"));
    has(
        &by_ec2_fleet,
        &format!("in use by fleet {ec2_fleet} (override)"),
    );

    // A reference gc cannot resolve: nothing is removed, and the report says why.
    let lost = template(format!("{app}-lost"), format!("resolve:ssm:/{app}/missing")).await;
    lab.reset_request_counts();
    let r = s
        .gc(&GcRequest {
            keep: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    let counts = lab.request_counts();
    let _ = c
        .ec2
        .delete_launch_template()
        .launch_template_id(&lost)
        .send()
        .await;
    assert_eq!(writes(&counts), Vec::<String>::new(), "{counts:?}");
    assert!(r.removed().is_empty(), "{}", r.render());
    assert!(
        r.problems.iter().any(|p| p.contains(&format!("{app}-lost"))
            && p.contains(&format!("SSM parameter /{app}/missing does not exist"))),
        "{}",
        r.render()
    );
    assert!(
        decision(&r, &free)
            .reasons
            .contains(&"cannot tell whether it is in use (see problems)".to_string())
    );

    // Resolvable again: the free AMI goes with its snapshot, the others stay.
    let r = s
        .gc(&GcRequest {
            keep: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(r.problems.is_empty(), "{}", r.render());
    assert_eq!(r.removed(), vec![free.as_str()], "{}", r.render());
    assert!(!image_exists(&c, &free).await);
    let snaps = owned_snapshots(&c).await;
    assert!(free_snaps.iter().all(|s| !snaps.contains(s)));
    for ami in [&by_lc, &by_fleet, &by_ssm, &by_spot, &by_ec2_fleet] {
        assert!(image_exists(&c, ami).await, "{ami}");
    }

    // Once the references are gone, so are the AMIs.
    c.autoscaling
        .delete_launch_configuration()
        .launch_configuration_name(&lc)
        .send()
        .await
        .expect("DeleteLaunchConfiguration");
    c.ec2
        .cancel_spot_fleet_requests()
        .spot_fleet_request_ids(&fleet)
        .terminate_instances(true)
        .send()
        .await
        .expect("CancelSpotFleetRequests");
    c.ec2
        .delete_launch_template()
        .launch_template_id(&ssm_lt)
        .send()
        .await
        .expect("DeleteLaunchTemplate");
    c.ec2
        .cancel_spot_instance_requests()
        .spot_instance_request_ids(&sir_id)
        .send()
        .await
        .expect("CancelSpotInstanceRequests");
    c.ec2
        .delete_fleets()
        .fleet_ids(&ec2_fleet)
        // It has no instances (moto refuses TerminateInstances=true then).
        .terminate_instances(false)
        .send()
        .await
        .expect("DeleteFleets");
    c.ec2
        .delete_launch_template()
        .launch_template_id(&fleet_lt)
        .send()
        .await
        .expect("DeleteLaunchTemplate");
    let r = s
        .gc(&GcRequest {
            keep: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut removed = r.removed();
    removed.sort();
    let mut want = vec![
        by_lc.as_str(),
        by_fleet.as_str(),
        by_ssm.as_str(),
        by_spot.as_str(),
        by_ec2_fleet.as_str(),
    ];
    want.sort();
    assert_eq!(removed, want, "{}", r.render());
}

// Deleting launch template versions, against the AWS SDK's test clients: moto 5.2.5 has no
// DeleteLaunchTemplateVersions. A small stateful fake (as in `instance_refresh.rs`) of one template of the
// environment, one group on version 2 and the app's AMIs; every write is logged.
mod fake {
    use aws_sdk_autoscaling::Client as Asg;
    use aws_sdk_ec2::Client as Ec2;
    use aws_sdk_ec2::types::{
        BlockDeviceMapping, DeleteLaunchTemplateVersionsResponseErrorItem,
        DeleteLaunchTemplateVersionsResponseSuccessItem, EbsBlockDevice, Image, LaunchTemplate,
        LaunchTemplateVersion, ResponseError, ResponseLaunchTemplateData, Tag,
    };
    use aws_smithy_mocks::{
        MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock,
    };
    use bakery_core::aws::Clients;
    use bakery_core::ui::Ui;
    use bakery_rollout::config::{Overrides, RolloutConfig};
    use bakery_rollout::context::{Ctx, RequestCounter};
    use bakery_rollout::manifest::Manifest;
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use tokio_util::sync::CancellationToken;

    pub const LT_ID: &str = "lt-0123456789abcdef0";

    /// What the fake AWS holds.
    pub struct World {
        pub log: Vec<String>,
        /// Version → AMI.
        pub versions: BTreeMap<i64, String>,
        pub default: i64,
        /// The AMIs: (id, `app` tag, snapshot).
        pub images: Vec<(String, String, String)>,
        /// DeleteLaunchTemplateVersions refuses these.
        pub refuse: Vec<i64>,
        /// AMIs with a launch permission for account 111122223333.
        pub shared: Vec<String>,
        /// What DescribeImageReferences lists: (AMI, ARN) of SSM parameters; `None`: the service answers
        /// InvalidAction, as the lab does.
        pub references: Option<Vec<(String, String)>>,
    }

    pub type Shared = Arc<Mutex<World>>;

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

    fn ec2_rules(w: &Shared) -> Vec<Rule> {
        let s = w.clone();
        let images = mock!(Ec2::describe_images).then_compute_output(move |_| {
            let w = s.lock().unwrap();
            let mut out = aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder();
            for (id, app, snap) in &w.images {
                let n = id.trim_start_matches("ami-0000000");
                out = out.images(
                    Image::builder()
                        .image_id(id)
                        .name(format!("shop-{n}"))
                        .creation_date(format!("2026-01-0{n}T00:00:00.000Z"))
                        .set_last_launched_time(
                            (n == "5").then(|| "2026-11-30T12:00:00.000Z".to_string()),
                        )
                        .state(aws_sdk_ec2::types::ImageState::Available)
                        .tags(Tag::builder().key("app").value(app).build())
                        .block_device_mappings(
                            BlockDeviceMapping::builder()
                                .device_name("/dev/xvda")
                                .ebs(EbsBlockDevice::builder().snapshot_id(snap).build())
                                .build(),
                        )
                        .build(),
                );
            }
            out.build()
        });
        let s = w.clone();
        let templates = mock!(Ec2::describe_launch_templates).then_compute_output(move |_| {
            let w = s.lock().unwrap();
            let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
            aws_sdk_ec2::operation::describe_launch_templates::DescribeLaunchTemplatesOutput::builder()
                .launch_templates(
                    LaunchTemplate::builder()
                        .launch_template_id(LT_ID)
                        .launch_template_name("lt-shop-staging-1")
                        .default_version_number(w.default)
                        .latest_version_number(w.versions.keys().max().copied().unwrap_or(1))
                        .tags(tag("bakery:managed", "true"))
                        .tags(tag("bakery:app", "shop"))
                        .tags(tag("bakery:env", "staging"))
                        .build(),
                )
                .build()
        });
        let s = w.clone();
        let versions = mock!(Ec2::describe_launch_template_versions).then_compute_output(move |_| {
            let w = s.lock().unwrap();
            let mut out = aws_sdk_ec2::operation::describe_launch_template_versions::DescribeLaunchTemplateVersionsOutput::builder();
            for (n, ami) in &w.versions {
                out = out.launch_template_versions(
                    LaunchTemplateVersion::builder()
                        .launch_template_id(LT_ID)
                        .version_number(*n)
                        .launch_template_data(ResponseLaunchTemplateData::builder().image_id(ami).build())
                        .build(),
                );
            }
            out.build()
        });
        let instances = mock!(Ec2::describe_instances).then_output(|| {
            aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder().build()
        });
        let fleets = mock!(Ec2::describe_spot_fleet_requests).then_output(|| {
            aws_sdk_ec2::operation::describe_spot_fleet_requests::DescribeSpotFleetRequestsOutput::builder().build()
        });
        let ec2_fleets = mock!(Ec2::describe_fleets).then_output(|| {
            aws_sdk_ec2::operation::describe_fleets::DescribeFleetsOutput::builder().build()
        });
        let spot_requests = mock!(Ec2::describe_spot_instance_requests).then_output(|| {
            aws_sdk_ec2::operation::describe_spot_instance_requests::DescribeSpotInstanceRequestsOutput::builder().build()
        });
        let s = w.clone();
        let delete_versions = mock!(Ec2::delete_launch_template_versions).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            let asked: Vec<i64> = req.versions().iter().map(|v| v.parse().unwrap()).collect();
            w.log.push(format!("DeleteLaunchTemplateVersions {asked:?}"));
            let mut out = aws_sdk_ec2::operation::delete_launch_template_versions::DeleteLaunchTemplateVersionsOutput::builder();
            for n in asked {
                if w.refuse.contains(&n) {
                    out = out.unsuccessfully_deleted_launch_template_versions(
                        DeleteLaunchTemplateVersionsResponseErrorItem::builder()
                            .launch_template_id(LT_ID)
                            .version_number(n)
                            .response_error(
                                ResponseError::builder()
                                    .code(aws_sdk_ec2::types::LaunchTemplateErrorCode::UnexpectedError)
                                    .message("try again later")
                                    .build(),
                            )
                            .build(),
                    );
                } else {
                    w.versions.remove(&n);
                    out = out.successfully_deleted_launch_template_versions(
                        DeleteLaunchTemplateVersionsResponseSuccessItem::builder()
                            .launch_template_id(LT_ID)
                            .version_number(n)
                            .build(),
                    );
                }
            }
            out.build()
        });
        let s = w.clone();
        let deregister = mock!(Ec2::deregister_image).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            let id = req.image_id().unwrap_or_default().to_string();
            w.log.push(format!("DeregisterImage {id}"));
            w.images.retain(|i| i.0 != id);
            aws_sdk_ec2::operation::deregister_image::DeregisterImageOutput::builder().build()
        });
        let s = w.clone();
        let delete_snapshot = mock!(Ec2::delete_snapshot).then_compute_output(move |req| {
            s.lock().unwrap().log.push(format!(
                "DeleteSnapshot {}",
                req.snapshot_id().unwrap_or_default()
            ));
            aws_sdk_ec2::operation::delete_snapshot::DeleteSnapshotOutput::builder().build()
        });
        // gc marks an AMI's snapshots before deregistering it, and looks for marked ones first.
        let tag = mock!(Ec2::create_tags).then_output(|| {
            aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build()
        });
        let marked = mock!(Ec2::describe_snapshots).then_output(|| {
            aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput::builder().build()
        });
        let s = w.clone();
        let permissions = mock!(Ec2::describe_image_attribute).then_compute_output(move |req| {
            let w = s.lock().unwrap();
            let id = req.image_id().unwrap_or_default().to_string();
            let mut out = aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput::builder()
                .image_id(&id);
            if w.shared.contains(&id) {
                out = out.launch_permissions(
                    aws_sdk_ec2::types::LaunchPermission::builder()
                        .user_id("111122223333")
                        .build(),
                );
            }
            out.build()
        });
        let s = w.clone();
        let references = mock!(Ec2::describe_image_references).then_compute_response(move |req| {
            use aws_sdk_ec2::operation::describe_image_references::{
                DescribeImageReferencesError, DescribeImageReferencesOutput,
            };
            use aws_smithy_mocks::MockResponse;
            let w = s.lock().unwrap();
            match &w.references {
                None => MockResponse::Error(DescribeImageReferencesError::generic(
                    aws_sdk_ec2::error::ErrorMetadata::builder()
                        .code("InvalidAction")
                        .message("The action DescribeImageReferences is not valid for this web service.")
                        .build(),
                )),
                Some(refs) => {
                    let mut out = DescribeImageReferencesOutput::builder();
                    for (ami, arn) in refs {
                        if req.image_ids().contains(ami) {
                            out = out.image_references(
                                aws_sdk_ec2::types::ImageReference::builder()
                                    .image_id(ami)
                                    .resource_type(aws_sdk_ec2::types::ImageReferenceResourceType::SsmParameter)
                                    .arn(arn)
                                    .build(),
                            );
                        }
                    }
                    MockResponse::Output(out.build())
                }
            }
        });
        vec![
            images,
            templates,
            versions,
            instances,
            fleets,
            ec2_fleets,
            spot_requests,
            delete_versions,
            deregister,
            delete_snapshot,
            tag,
            marked,
            permissions,
            references,
        ]
    }

    fn asg_rules() -> Vec<Rule> {
        use aws_sdk_autoscaling::types::{AutoScalingGroup, LaunchTemplateSpecification};
        vec![
            mock!(Asg::describe_launch_configurations).then_output(|| {
                aws_sdk_autoscaling::operation::describe_launch_configurations::DescribeLaunchConfigurationsOutput::builder().build()
            }),
            mock!(Asg::describe_auto_scaling_groups).then_output(|| {
                aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput::builder()
                    .auto_scaling_groups(
                        AutoScalingGroup::builder()
                            .auto_scaling_group_name("asg-shop-staging-1")
                            .launch_template(
                                LaunchTemplateSpecification::builder()
                                    .launch_template_id(LT_ID)
                                    .version("2")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            }),
        ]
    }

    pub fn ctx(w: &Shared) -> Ctx {
        let m = Manifest::parse(
            Path::new("rollout.json"),
            r#"{"app": "shop", "defaults": {"gc": {"ami_tags": {"app": "shop"}}}, "environments": {"staging": {}}}"#
                .to_string(),
        )
        .unwrap();
        let cfg = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap();
        let none: Vec<Rule> = Vec::new();
        let requests = RequestCounter::default();
        let clients = requests.instrument(Clients {
            region: "us-east-1".into(),
            ec2: client!(aws_sdk_ec2, &ec2_rules(w)),
            ssm: client!(aws_sdk_ssm, &none),
            autoscaling: client!(aws_sdk_autoscaling, &asg_rules()),
            elb: client!(aws_sdk_elasticloadbalancing, &none),
            elbv2: client!(aws_sdk_elasticloadbalancingv2, &none),
            route53: client!(aws_sdk_route53, &none),
            iam: client!(aws_sdk_iam, &none),
            cloudwatch: client!(aws_sdk_cloudwatch, &none),
        });
        Ctx {
            cfg,
            clients,
            ui: Ui::sink(),
            run_id: "00000000-0000-4000-8000-000000000002".into(),
            cancel: CancellationToken::new(),
            cancel_cleanup: CancellationToken::new(),
            requests,
        }
    }
}

fn fake_world(refuse: Vec<i64>) -> fake::Shared {
    let image = |n: u32, app: &str, snap: u32| {
        (
            format!("ami-0000000{n}"),
            app.to_string(),
            format!("snap-0000000{snap}"),
        )
    };
    std::sync::Arc::new(std::sync::Mutex::new(fake::World {
        log: Vec::new(),
        // Version 1 is the default, 2 the group's, 4 the latest; 3 is free, and so is ami-00000005.
        versions: (1..=4).map(|n| (n, format!("ami-0000000{n}"))).collect(),
        default: 1,
        images: (1..=5)
            .map(|n| image(n, "shop", n))
            .chain([image(6, "other", 6)])
            .collect(),
        refuse,
        shared: Vec::new(),
        references: None,
    }))
}

#[tokio::test]
async fn deleted_versions_free_their_amis_in_the_same_run_and_a_second_run_deletes_nothing() {
    let w = fake_world(vec![]);
    let cx = fake::ctx(&w);
    let req = GcRequest {
        keep: Some(0),
        ..Default::default()
    };
    let r = bakery_rollout::gc::run(&cx, &req).await.unwrap();
    assert!(r.problems.is_empty(), "{}", r.render());
    let log = std::mem::take(&mut w.lock().unwrap().log);
    assert_eq!(
        log,
        [
            "DeleteLaunchTemplateVersions [3]",
            "DeregisterImage ami-00000005",
            "DeleteSnapshot snap-00000005",
            "DeregisterImage ami-00000003",
            "DeleteSnapshot snap-00000003",
        ],
        "{}",
        r.render()
    );
    let kept: Vec<(&str, String)> = r
        .home
        .amis
        .iter()
        .filter(|a| a.action == Action::Kept)
        .map(|a| (a.id.as_str(), a.reasons.join("; ")))
        .collect();
    assert_eq!(
        kept,
        [
            ("ami-00000004", "in use by launch template lt-shop-staging-1 version 4".to_string()),
            (
                "ami-00000002",
                "in use by launch template lt-shop-staging-1 version 2; in use by asg asg-shop-staging-1 (launch template lt-shop-staging-1 version 2)".to_string()
            ),
            ("ami-00000001", "in use by launch template lt-shop-staging-1 version 1".to_string()),
        ]
    );
    assert_eq!(
        w.lock()
            .unwrap()
            .versions
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [1, 2, 4]
    );
    let r = bakery_rollout::gc::run(&cx, &req).await.unwrap();
    assert!(r.removed().is_empty(), "{}", r.render());
    assert!(
        w.lock().unwrap().log.is_empty(),
        "{:?}",
        w.lock().unwrap().log
    );
}

#[tokio::test]
async fn a_version_aws_refuses_to_delete_keeps_its_ami() {
    let w = fake_world(vec![3]);
    let cx = fake::ctx(&w);
    let r = bakery_rollout::gc::run(
        &cx,
        &GcRequest {
            keep: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        w.lock().unwrap().log,
        [
            "DeleteLaunchTemplateVersions [3]",
            "DeregisterImage ami-00000005",
            "DeleteSnapshot snap-00000005",
        ]
    );
    assert_eq!(
        r.problems,
        ["launch template lt-shop-staging-1 version 3: try again later"]
    );
    let v3 = r
        .home
        .launch_template_versions
        .iter()
        .find(|v| v.version == 3)
        .unwrap();
    assert_eq!(v3.action, Action::Failed);
    assert_eq!(
        decision(&r, "ami-00000003").reasons,
        ["in use by launch template lt-shop-staging-1 version 3"]
    );
}

#[tokio::test]
async fn a_snapshot_another_ami_still_uses_is_kept() {
    let w = fake_world(vec![]);
    // ami-00000006 (not the app's) was registered from ami-00000005's snapshot.
    w.lock().unwrap().images[5].2 = "snap-00000005".into();
    let cx = fake::ctx(&w);
    let r = bakery_rollout::gc::run(
        &cx,
        &GcRequest {
            keep: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(r.problems.is_empty(), "{}", r.render());
    let log = w.lock().unwrap().log.clone();
    assert!(
        log.contains(&"DeregisterImage ami-00000005".to_string()),
        "{log:?}"
    );
    assert!(
        !log.contains(&"DeleteSnapshot snap-00000005".to_string()),
        "{log:?}"
    );
    let snap = &decision(&r, "ami-00000005").snapshots[0];
    assert_eq!(snap.action, Action::Kept);
    assert_eq!(snap.reason.as_deref(), Some("still used by ami-00000006"));
}

#[tokio::test]
async fn the_newest_n_stay_by_creation_date() {
    let w = fake_world(vec![]);
    let cx = fake::ctx(&w);
    let r = bakery_rollout::gc::run(
        &cx,
        &GcRequest {
            keep: Some(1),
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(w.lock().unwrap().log.is_empty());
    // ami-00000005 is the newest; version 3 goes (4 is the newest and latest), and with it ami-00000003.
    assert_eq!(decision(&r, "ami-00000005").reasons, ["newest 1"]);
    assert_eq!(r.removed(), ["ami-00000003"], "{}", r.render());
    assert_eq!(
        decision(&r, "ami-00000003").snapshots[0].action,
        Action::WouldRemove
    );
}

#[tokio::test]
async fn a_shared_ami_and_one_ec2_lists_a_reference_to_stay_and_last_launched_is_shown() {
    let w = fake_world(vec![]);
    {
        let mut w = w.lock().unwrap();
        // ami-00000003 (only version 3, which goes, references it) is shared with another account; EC2
        // lists an SSM parameter holding ami-00000005.
        w.shared = vec!["ami-00000003".into()];
        w.references = Some(vec![(
            "ami-00000005".into(),
            "arn:aws:ssm:us-east-1:123456789012:parameter/shop/ami".into(),
        )]);
    }
    let cx = fake::ctx(&w);
    let dry = |include_shared| GcRequest {
        keep: Some(0),
        dry_run: true,
        include_shared,
        ..Default::default()
    };
    let r = bakery_rollout::gc::run(&cx, &dry(false)).await.unwrap();
    assert!(r.problems.is_empty(), "{}", r.render());
    assert!(r.removed().is_empty(), "{}", r.render());
    assert_eq!(
        decision(&r, "ami-00000003").reasons,
        [
            "shared with account 111122223333 (launch permission: launches there are invisible from here); --include-shared to remove it"
        ]
    );
    assert_eq!(
        decision(&r, "ami-00000003").shared_with,
        ["account 111122223333"]
    );
    assert_eq!(
        decision(&r, "ami-00000005").reasons,
        [
            "referenced by ssm:Parameter arn:aws:ssm:us-east-1:123456789012:parameter/shop/ami (EC2 image references)"
        ]
    );
    assert_eq!(
        r.home.image_references,
        bakery_rollout::gc::ImageReferences::Checked {
            images: 1,
            references: 1
        }
    );
    assert!(
        r.render().contains(
            "ami-00000005 shop-5 (2026-01-05T00:00:00.000Z): referenced by ssm:Parameter"
        ),
        "{}",
        r.render()
    );
    assert!(
        r.render()
            .contains("; last launched 2026-11-30T12:00:00.000Z"),
        "{}",
        r.render()
    );
    // --include-shared: the shared one may go (its launch permissions are not even asked).
    let before = cx.requests.snapshot();
    let r = bakery_rollout::gc::run(&cx, &dry(true)).await.unwrap();
    assert_eq!(r.removed(), ["ami-00000003"], "{}", r.render());
    let asked = cx.requests.snapshot();
    assert_eq!(
        asked.get("EC2.DescribeImageAttribute"),
        before.get("EC2.DescribeImageAttribute"),
        "{asked:?}"
    );
    // Where the service lacks the call, gc's own scan decides and the report says so.
    w.lock().unwrap().references = None;
    let r = bakery_rollout::gc::run(&cx, &dry(true)).await.unwrap();
    assert!(r.problems.is_empty(), "{}", r.render());
    let mut removed = r.removed();
    removed.sort();
    assert_eq!(removed, ["ami-00000003", "ami-00000005"], "{}", r.render());
    assert!(
        matches!(&r.home.image_references, bakery_rollout::gc::ImageReferences::Unavailable { reason } if reason.contains("InvalidAction")),
        "{:?}",
        r.home.image_references
    );
    assert!(
        r.render()
            .contains("DescribeImageReferences) unavailable in us-east-1"),
        "{}",
        r.render()
    );
    assert!(w.lock().unwrap().log.is_empty(), "dry runs only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshots_an_interrupted_gc_left_are_deleted_by_the_next_one() {
    let (lab, _serial) = lab().await;
    let c = clients(lab).await;
    let app = app_name(lab);
    let m = manifest(lab, &app);
    let (s, out) = session(lab, &m, ENV, Overrides::default()).await;
    let (old, old_snaps) = image(lab, &c, &format!("{app}-1"), &[("app", &app)]).await;
    let (kept, kept_snaps) = image(lab, &c, &format!("{app}-2"), &[("app", &app)]).await;
    // A gc killed after deregistering `old`: its snapshots carry gc's mark, nothing holds them.
    c.ec2
        .create_tags()
        .set_resources(Some(old_snaps.clone()))
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("bakery:gc-pending")
                .value(&old)
                .build(),
        )
        .send()
        .await
        .unwrap();
    c.ec2
        .deregister_image()
        .image_id(&old)
        .send()
        .await
        .unwrap();
    // A marked snapshot whose AMI is still there stays (gc was killed before deregistering it).
    c.ec2
        .create_tags()
        .set_resources(Some(kept_snaps.clone()))
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("bakery:gc-pending")
                .value(&kept)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let dry = s
        .gc(&GcRequest {
            keep: Some(5),
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("gc: {e}\n{}", out.text()));
    let listed: Vec<&str> = dry
        .home
        .unfinished_snapshots
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(
        listed,
        old_snaps.iter().map(String::as_str).collect::<Vec<_>>(),
        "{}",
        dry.render()
    );
    assert!(
        owned_snapshots(&c)
            .await
            .is_superset(&old_snaps.iter().cloned().collect())
    );
    let r = s
        .gc(&GcRequest {
            keep: Some(5),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("gc: {e}\n{}", out.text()));
    assert!(r.problems.is_empty(), "{}", r.render());
    assert!(
        r.render().contains("Snapshots an interrupted gc left"),
        "{}",
        r.render()
    );
    let now = owned_snapshots(&c).await;
    for snap in &old_snaps {
        assert!(!now.contains(snap), "{snap} deleted\n{}", r.render());
    }
    for snap in &kept_snaps {
        assert!(
            now.contains(snap),
            "{snap} of a live AMI kept\n{}",
            r.render()
        );
    }
    assert!(image_exists(&c, &kept).await);
}
