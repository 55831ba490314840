//! End to end on the lab: `bake` against moto (AWS) and the lab's sshd (the builder instance), including
//! the failure paths, each ending with nothing temporary left in moto.

use crate::common;

use bakery_lab::Lab;
use common::fault_proxy::{Fault, FaultProxy};
use common::*;
use std::collections::BTreeMap;
use std::path::Path;

fn admin_home() -> std::path::PathBuf {
    let out = std::process::Command::new("getent")
        .args(["passwd", "admin"])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    std::path::PathBuf::from(line.split(':').nth(5).expect("admin has a home").trim())
}

/// Every file and directory below `root` with its mode and contents.
fn tree(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let mode = md.permissions().mode() & 0o7777;
            if md.is_dir() {
                out.insert(rel + "/", (mode, vec![]));
                stack.push(p);
            } else {
                out.insert(rel, (mode, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn primal_then_carnivore_bake_on_the_lab_and_leave_nothing_behind() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    // primal's default source is Debian's public SSM parameter; moto reserves /aws/service names, so the
    // test publishes moto's AMI under its own name and passes that (the resolve:ssm path is the same).
    let param = format!("/bakery-lab/{}/debian-12", lab.unique("ssm"));
    c.ssm
        .put_parameter()
        .name(&param)
        .value(lab.source_ami())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let s = Scratch::new(lab, "primal");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vars = lab.var_file();
    lab.reset_request_counts();
    let out = s.run(
        lab,
        lab.moto_url(),
        &[
            "-color=false",
            "-var-file",
            vars.to_str().unwrap(),
            "-var",
            &format!("SOURCE_AMI=resolve:ssm:{param}"),
            "-pass-ami",
            "SOURCE_ID",
            repo.join("manifests/primal.json").to_str().unwrap(),
            repo.join("manifests/carnivore.json").to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let counts = lab.request_counts();
    eprintln!("AWS requests for two bakes: {counts:?}");
    // Packer's artifact lines: the last one is `region: ami`, so `tail -1 | cut -d' ' -f2` works.
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    let (region, carnivore) = last.split_once(": ").unwrap();
    assert_eq!(region, "us-east-1");
    assert!(carnivore.starts_with("ami-"), "{last}");
    // Both AMIs exist with their rendered tags; carnivore's source is primal's AMI.
    let primal_manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("primal-manifest.json")).unwrap())
            .unwrap();
    let primal = primal_manifest["builds"][0]["artifact_id"]
        .as_str()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(
        primal_manifest["builds"][0]["custom_data"]["source_ami"],
        lab.source_ami()
    );
    let imgs = c
        .ec2
        .describe_images()
        .image_ids(&primal)
        .image_ids(carnivore)
        .send()
        .await
        .unwrap();
    assert_eq!(imgs.images().len(), 2);
    let tags = |id: &str| -> BTreeMap<String, String> {
        imgs.images()
            .iter()
            .find(|i| i.image_id() == Some(id))
            .unwrap()
            .tags()
            .iter()
            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
            .collect()
    };
    let pt = tags(&primal);
    assert_eq!(pt["image"], "primal");
    assert_eq!(
        pt["source_ami"],
        lab.source_ami(),
        "late {{ .SourceAMI }} rendered at build time"
    );
    assert_eq!(pt["region"], "us-east-1");
    assert_eq!(pt["bakery:managed"], "true");
    let ct = tags(carnivore);
    assert_eq!(ct["primal"], primal, "carnivore was baked on primal's AMI");
    assert_eq!(ct["env"], "staging");
    // The uploaded tree arrived byte for byte, modes included, and the variables arrived.
    let home = admin_home();
    assert_eq!(
        tree(&home.join("app/mailtube")),
        tree(&repo.join("provisioners/mailtube"))
    );
    assert_eq!(
        tree(&home.join("app/server")).get("cluster.js"),
        tree(&repo.join("provisioners/appserver")).get("cluster.js")
    );
    let env = std::fs::read_to_string(home.join("carnivore.env")).unwrap();
    for want in [
        "INSTANCE_USER=admin",
        "NAME=ponyfoo-staging",
        "NGINX_WORKERS=4",
        "PACKER_BUILDER_TYPE=amazon-ebs",
        "PACKER_BUILD_NAME=amazon-ebs",
        "SERVER_NAME=ponyfoo.com",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing from {env}");
    }
    assert!(s.dir.join("carnivore-manifest.json").exists());
    assert_nothing_left(&c, "after primal + carnivore").await;
    assert!(
        std::fs::read_dir(s.dir.join("state/runs"))
            .unwrap()
            .next()
            .is_none(),
        "a clean run leaves no journal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_script_fails_the_build_and_cleans_up() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "failing");
    let name = lab.unique("failing");
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            "",
            r#"[{"type":"shell","inline":["echo about to fail","exit 3"]}]"#,
        ),
    );
    let out = s.run_with_lab_vars(lab, &tpl);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("about to fail"), "remote output streamed: {t}");
    assert!(
        t.contains("exit status: 3") || t.contains("exit status 3"),
        "{t}"
    );
    assert!(
        amis_named(&c, &name).await.is_empty(),
        "no AMI for a failed build"
    );
    assert_nothing_left(&c, "after a failing script").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_never_reachable_times_out_and_cleans_up() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "nossh");
    let name = lab.unique("nossh");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            r#","ssh_timeout":"3s""#,
            r#"[{"type":"shell","inline":["true"]}]"#,
        ),
    );
    let vars = lab.var_file();
    let port_var = format!("lab_ssh_port={port}");
    let out = s.run(
        lab,
        lab.moto_url(),
        &[
            "-var-file",
            vars.to_str().unwrap(),
            "-var",
            &port_var,
            tpl.to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("Timeout waiting for SSH"), "{t}");
    assert_nothing_left(&c, "after an SSH timeout").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_image_failing_fails_the_build_and_cleans_up() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let proxy = FaultProxy::start(
        lab.moto_url(),
        vec![Fault {
            action: "CreateImage",
            status: 400,
            code: "InvalidParameterValue",
            times: usize::MAX,
        }],
    )
    .await;
    let s = Scratch::new(lab, "noimage");
    let name = lab.unique("noimage");
    let tpl = s.write(
        "t.json",
        &template(&name, "", r#"[{"type":"shell","inline":["true"]}]"#),
    );
    let vars = lab.var_file();
    let out = tokio::task::spawn_blocking({
        let cmd_args = vec![
            "-var-file".to_string(),
            vars.display().to_string(),
            tpl.display().to_string(),
        ];
        let mut cmd = s.bake(lab, &proxy.url, &[]);
        cmd.args(&cmd_args);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("CreateImage") && t.contains("InvalidParameterValue"),
        "{t}"
    );
    assert!(proxy.failed("CreateImage") >= 1);
    assert!(amis_named(&c, &name).await.is_empty());
    assert_nothing_left(&c, "after CreateImage failed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_5xx_are_retried_and_the_bake_succeeds() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let proxy = FaultProxy::start(
        lab.moto_url(),
        vec![
            Fault {
                action: "DescribeInstances",
                status: 503,
                code: "RequestLimitExceeded",
                times: 3,
            },
            Fault {
                action: "RunInstances",
                status: 500,
                code: "InternalError",
                times: 1,
            },
            Fault {
                action: "CreateKeyPair",
                status: 503,
                code: "Throttling",
                times: 2,
            },
        ],
    )
    .await;
    let s = Scratch::new(lab, "throttle");
    let name = lab.unique("throttle");
    let tpl = s.write(
        "t.json",
        &template(&name, "", r#"[{"type":"shell","inline":["echo fine"]}]"#),
    );
    let vars = lab.var_file();
    let out = tokio::task::spawn_blocking({
        let mut cmd = s.bake(
            lab,
            &proxy.url,
            &["-var-file", vars.to_str().unwrap(), tpl.to_str().unwrap()],
        );
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(proxy.failed("DescribeInstances"), 3);
    assert_eq!(proxy.failed("RunInstances"), 1);
    assert_eq!(proxy.failed("CreateKeyPair"), 2);
    assert_eq!(amis_named(&c, &name).await.len(), 1);
    assert_nothing_left(&c, "after throttling").await;
}

/// Starts a bake whose provisioner sleeps, and returns once it is provisioning.
/// The value of the sensitive variable `bake_until_provisioning` sets on the command line.
const RUN_SECRET: &str = "pa55-w0rd-in-journal";

fn bake_until_provisioning(lab: &Lab, prefix: &str) -> (Scratch, String, Running) {
    let s = Scratch::new(lab, prefix);
    let name = lab.unique(prefix);
    let provisioners = r#"[{"type":"shell","inline":["echo sleeping","sleep 60"]}]"#;
    // A sensitive variable set on the command line, which the run's journal records (masked).
    let text = template(&name, "", provisioners).replacen(
        r#""variables": {"#,
        r#""sensitive-variables": ["db_password"], "variables": { "db_password": "","#,
        1,
    );
    let tpl = s.write("t.json", &text);
    let vars = lab.var_file();
    let secret = format!("db_password={RUN_SECRET}");
    let args = [
        "-var-file",
        vars.to_str().unwrap(),
        "-var",
        &secret,
        tpl.to_str().unwrap(),
    ];
    let mut r = Running::spawn(s.bake(lab, lab.moto_url(), &args));
    r.wait_for("sleeping");
    (s, name, r)
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_provisioning_cleans_up() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let (_scratch, name, r) = bake_until_provisioning(lab, "ctrlc");
    r.signal("-INT");
    let (code, out) = tokio::task::spawn_blocking(move || r.finish())
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Interrupt received"), "{out}");
    assert!(amis_named(&c, &name).await.is_empty());
    assert_nothing_left(&c, "after Ctrl-C").await;
}

/// A bake SIGKILLed while provisioning: its scratch dir and what it left (instances, key pairs, groups),
/// one of each.
async fn kill_while_provisioning(
    lab: &Lab,
    c: &bakery_core::aws::Clients,
    prefix: &str,
) -> (Scratch, (Vec<String>, Vec<String>, Vec<String>)) {
    let (s, _name, r) = bake_until_provisioning(lab, prefix);
    r.signal("-KILL");
    let (code, _) = tokio::task::spawn_blocking(move || r.finish())
        .await
        .unwrap();
    assert_eq!(code, None, "killed by a signal");
    let (i, k, g) = leftovers(c).await;
    assert_eq!(
        (i.len(), k.len(), g.len()),
        (1, 1, 1),
        "a SIGKILLed run leaves its instance, key pair and group"
    );
    (s, (i, k, g))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_run_then_bake_cleanup_removes_everything() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let (s, (i, k, g)) = kill_while_provisioning(lab, &c, "sigkill").await;
    // The journal a kill leaves records the command line with the sensitive value masked.
    let runs = s.dir.join("state/runs");
    let journals: Vec<_> = std::fs::read_dir(&runs).unwrap().flatten().collect();
    assert_eq!(journals.len(), 1, "one journal in {}", runs.display());
    let journal = std::fs::read_to_string(journals[0].path()).unwrap();
    assert!(journal.contains("db_password=<sensitive>"), "{journal}");
    assert!(!journal.contains(RUN_SECRET), "{journal}");
    // The environment now points nowhere: cleanup reaches AWS as the run did, through its journal.
    let out = s.run(lab, "http://127.0.0.1:9", &["cleanup"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("removed instance {}", i[0])), "{t}");
    assert!(
        t.contains(&format!("removed security group {}", g[0])),
        "{t}"
    );
    assert!(t.contains(&format!("removed key pair {}", k[0])), "{t}");
    assert_nothing_left(&c, "after bake cleanup").await;
    let journals = std::fs::read_dir(s.dir.join("state/runs")).unwrap().count();
    assert_eq!(
        journals, 0,
        "the journal goes once everything it named is gone"
    );
    // Idempotent.
    let again = s.run(lab, lab.moto_url(), &["cleanup"]);
    assert!(again.status.success());
    assert!(
        text(&again).contains("nothing to clean up"),
        "{}",
        text(&again)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bake_cleanup_older_than_finds_a_dead_runners_leftovers_without_a_journal() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let (s, (i, k, g)) = kill_while_provisioning(lab, &c, "runner").await;
    // Another machine: no journal of that run.
    let elsewhere = Scratch::new(lab, "elsewhere");
    let region = lab.region().to_string();
    let young = elsewhere.run(
        lab,
        lab.moto_url(),
        &["cleanup", "--older-than", "1h", "--region", &region],
    );
    assert!(young.status.success(), "{}", text(&young));
    assert!(
        text(&young).contains("nothing to clean up"),
        "a run younger than --older-than may be alive elsewhere: {}",
        text(&young)
    );
    assert_eq!(leftovers(&c).await.0.len(), 1);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let old = elsewhere.run(
        lab,
        lab.moto_url(),
        &["cleanup", "--older-than", "1s", "--region", &region],
    );
    let t = text(&old);
    assert!(old.status.success(), "{t}");
    assert!(t.contains(&format!("removed instance {}", i[0])), "{t}");
    assert!(
        t.contains(&format!("removed security group {}", g[0])),
        "{t}"
    );
    assert!(t.contains(&format!("removed key pair {}", k[0])), "{t}");
    assert_nothing_left(&c, "after bake cleanup --older-than").await;
    drop(s);
}

/// IMDS: `HttpTokens` is sent only when the template sets `metadata_options.http_tokens`; unset, the AMI's
/// and the account's default apply (an account that enforces IMDSv2 refuses `optional`).
#[tokio::test(flavor = "multi_thread")]
async fn http_tokens_are_sent_only_when_the_template_sets_them() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let vars = lab.var_file();
    for (metadata, expected) in [
        ("", None),
        (
            r#", "metadata_options": {"http_tokens": "required"}"#,
            Some("MetadataOptions.HttpTokens=required"),
        ),
        (
            r#", "metadata_options": {"http_tokens": "optional"}"#,
            Some("MetadataOptions.HttpTokens=optional"),
        ),
    ] {
        let s = Scratch::new(lab, "imds");
        let name = lab.unique("imds");
        let extra = format!(r#", "run_tags": {{"probe": "{name}"}}{metadata}"#);
        let tpl = s.write(
            "t.json",
            &template(&name, &extra, r#"[{"type":"shell","inline":["exit 1"]}]"#),
        );
        let out = s.run(
            lab,
            lab.moto_url(),
            &["-var-file", vars.to_str().unwrap(), tpl.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let sent: Vec<String> = bodies(lab, "RunInstances")
            .into_iter()
            .filter(|b| b.contains(&name))
            .collect();
        assert_eq!(sent.len(), 1, "{metadata}: {sent:?}");
        match expected {
            None => assert!(
                !sent[0].contains("HttpTokens"),
                "unset http_tokens is not sent: {}",
                sent[0]
            ),
            Some(field) => assert!(sent[0].contains(field), "{field}: {}", sent[0]),
        }
    }
    assert_nothing_left(&c, "after the IMDS bakes").await;
}
