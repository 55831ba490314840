//! `scripts/deploy`, the one-command pipeline (seed 004's deploy script), end to end on the lab: bake
//! primal → bake carnivore on it → rollout → gc; then the seed's skips (an existing primal AMI, an existing
//! image, no cleanup) and a dry run that changes nothing.

use crate::common;

use bakery_lab::Lab;
use common::{OwnLab, Scratch, bake_temporaries_left, clients, own_lab, text};

use std::path::Path;
use std::process::{Command, Output};

/// The pipeline leaves its rollout environment in moto (tagged bakery-managed) on purpose; the bake tests
/// assert that nothing bakery-managed is left in theirs.
static LAB: OwnLab = OwnLab::new();

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `scripts/deploy` against the lab, with this build's binaries and the repo's manifests; the seed's
/// PRIMAL_ID / IMAGE_ID / CLEANUP cleared (tests set them explicitly).
fn deploy_cmd(lab: &Lab, s: &Scratch) -> Command {
    let mut c = Command::new(repo().join("scripts/deploy"));
    for (k, v) in lab.aws_env() {
        c.env(k, v);
    }
    c.env("BAKE", env!("CARGO_BIN_EXE_bake"))
        .env("ROLLOUT", env!("CARGO_BIN_EXE_rollout"))
        .env("BAKERY_STATE_DIR", s.dir.join("state"))
        .env_remove("AWS_PROFILE")
        .env_remove("PRIMAL_ID")
        .env_remove("IMAGE_ID")
        .env_remove("CLEANUP")
        .current_dir(&s.dir);
    let m = |f: &str| repo().join("manifests").join(f);
    c.arg("--manifest")
        .arg(m("rollout.json"))
        .arg("--primal-template")
        .arg(m("primal.json"))
        .arg("--carnivore-template")
        .arg(m("carnivore.json"))
        .arg("--var-file")
        .arg(lab.var_file())
        .arg("--var")
        .arg(format!("SOURCE_AMI={}", lab.source_ami()));
    c
}

/// `scripts/deploy ARGS`, run to the end.
fn deploy(lab: &Lab, s: &Scratch, args: &[&str]) -> Output {
    deploy_cmd(lab, s).args(args).output().unwrap()
}

/// The AMI ids (owned by the lab account) whose `image` tag is `kind` (the seed templates' tags).
async fn images(c: &bakery_core::aws::Clients, kind: &str) -> Vec<String> {
    let out = c
        .ec2
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:image")
                .values(kind)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = out
        .images()
        .iter()
        .filter_map(|i| i.image_id().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

/// The AMIs the environment's live groups' instances run, one entry per group.
async fn live_amis(c: &bakery_core::aws::Clients) -> Vec<Vec<String>> {
    let groups = c
        .autoscaling
        .describe_auto_scaling_groups()
        .send()
        .await
        .unwrap();
    let mut out = vec![];
    for g in groups.auto_scaling_groups() {
        let ours = g
            .tags()
            .iter()
            .any(|t| t.key() == Some("bakery:env") && t.value() == Some("staging"));
        if !ours {
            continue;
        }
        let ids: Vec<String> = g
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        let mut amis = vec![];
        if !ids.is_empty() {
            let d = c
                .ec2
                .describe_instances()
                .set_instance_ids(Some(ids))
                .send()
                .await
                .unwrap();
            amis = d
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.image_id().map(str::to_string))
                .collect();
        }
        out.push(amis);
    }
    out
}

fn built_image(o: &Output) -> String {
    let t = text(o);
    let line = t
        .lines()
        .find_map(|l| l.strip_prefix("deploy: built image "))
        .unwrap_or_else(|| panic!("no 'built image' line:\n{t}"));
    line.trim().to_string()
}

/// Asserts that no bake left a builder instance, temporary key pair or temporary security group.
async fn assert_no_bake_temporaries(c: &bakery_core::aws::Clients, context: &str) {
    let (i, k, g) = bake_temporaries_left(c).await;
    assert!(
        i.is_empty() && k.is_empty() && g.is_empty(),
        "{context}: left builder instances {i:?}, temporary key pairs {k:?}, temporary groups {g:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_bakes_rolls_out_and_collects_then_honours_the_seeds_skips() {
    let lab = own_lab(&LAB);
    let c = clients(lab).await;
    let s = Scratch::new(lab, "pipeline");

    // A dry run first: bake --dry-run, rollout plan, gc --dry-run; nothing exists afterwards.
    lab.reset_request_counts();
    let o = deploy(lab, &s, &["--setup", "--dry-run", "--keep", "1"]);
    assert!(o.status.success(), "dry run failed:\n{}", text(&o));
    let writes: Vec<_> = lab
        .request_counts()
        .into_iter()
        .filter(|(action, _)| {
            !["Describe", "Get", "List"]
                .iter()
                .any(|p| action.starts_with(p))
        })
        .collect();
    assert!(writes.is_empty(), "a dry run sent writes: {writes:?}");
    assert!(images(&c, "primal").await.is_empty());

    // 1. Everything: setup, primal, carnivore on it, rollout, gc.
    let o = deploy(lab, &s, &["--setup", "--keep", "1"]);
    assert!(o.status.success(), "deploy failed:\n{}", text(&o));
    let first = built_image(&o);
    let primals = images(&c, "primal").await;
    assert_eq!(primals.len(), 1, "one primal AMI:\n{}", text(&o));
    assert_eq!(images(&c, "carnivore").await, vec![first.clone()]);
    let live = live_amis(&c).await;
    assert_eq!(live.len(), 1, "one live group: {live:?}");
    assert!(
        !live[0].is_empty() && live[0].iter().all(|a| *a == first),
        "the live group runs {first}: {live:?}"
    );
    assert_no_bake_temporaries(&c, "after the first deploy").await;

    // 2. The seed's PRIMAL_ID: no primal bake; the new carnivore goes live and gc (keep 1) removes the
    //    previous carnivore, which no group uses any more. The primal base image is not the app's
    //    deployable image and stays.
    // moto's CreationDate has one-second resolution and gc keeps the newest by it: two carnivores made in
    // the same second would tie (AWS records milliseconds).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o = deploy(lab, &s, &["--primal", &primals[0], "--keep", "1"]);
    assert!(o.status.success(), "deploy --primal failed:\n{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "skipping primal image build, using {}",
            primals[0]
        )),
        "{}",
        text(&o)
    );
    let second = built_image(&o);
    assert_ne!(second, first);
    assert_eq!(images(&c, "primal").await, primals, "no new primal AMI");
    assert_eq!(
        images(&c, "carnivore").await,
        vec![second.clone()],
        "gc --keep 1 left only the live carnivore:\n{}",
        text(&o)
    );
    let live = live_amis(&c).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(live[0].iter().all(|a| *a == second), "{live:?}");

    // 3. The seed's IMAGE_ID + CLEANUP=no (as environment variables, as the seed takes them): no bake, the
    //    image goes live (here: the source AMI of the lab, so that the swap is visible), no gc.
    let lab_ami = lab.source_ami().to_string();
    let o = deploy_cmd(lab, &s)
        .env("IMAGE_ID", &lab_ami)
        .env("CLEANUP", "no")
        .output()
        .unwrap();
    assert!(o.status.success(), "IMAGE_ID deploy failed:\n{}", text(&o));
    let t = text(&o);
    assert!(t.contains("skipping both bakes"), "{t}");
    assert!(t.contains("skipping gc"), "{t}");
    assert!(!t.contains("==> amazon-ebs"), "no bake ran:\n{t}");
    assert_eq!(
        images(&c, "carnivore").await,
        vec![second.clone()],
        "no gc: the carnivore that was live a moment ago is still there"
    );
    let live = live_amis(&c).await;
    assert!(
        live.len() == 1 && live[0].iter().all(|a| *a == lab_ami),
        "{live:?}"
    );

    // Bad input is refused before anything runs.
    let o = deploy(lab, &s, &["--image", "not-an-ami"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("expected an AMI id"), "{}", text(&o));
}
