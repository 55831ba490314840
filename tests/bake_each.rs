//! `--each-var-file`: one template baked once per var-file, in parallel, on the lab (moto + sshd).

use crate::common;

use bakery_lab::Lab;
use common::*;
use std::collections::BTreeMap;

/// A template whose AMI name and tags come from user variables; the shell step fails when `fail=yes`.
fn node_template(manifest: &str) -> String {
    format!(
        r#"{{
  "variables": {{ "lab_endpoint": "", "lab_ssh_host": "", "lab_ssh_port": "22", "lab_source_ami": "",
                  "ami_name": "", "node": "none", "env": "none", "team": "none", "fail": "no" }},
  "builders": [{{
    "type": "amazon-ebs", "region": "us-east-1",
    "source_ami": "{{{{user `lab_source_ami`}}}}",
    "instance_type": "t3.micro", "ssh_username": "admin",
    "ssh_host": "{{{{user `lab_ssh_host`}}}}", "ssh_port": "{{{{user `lab_ssh_port`}}}}",
    "ami_name": "{{{{user `ami_name`}}}}",
    "tags": {{ "node": "{{{{user `node`}}}}", "env": "{{{{user `env`}}}}", "team": "{{{{user `team`}}}}" }}
  }}],
  "provisioners": [{{ "type": "shell", "inline": ["echo node {{{{user `node`}}}}", "test {{{{user `fail`}}}} = no"] }}],
  "post-processors": [{{ "type": "manifest", "output": "{manifest}" }}]
}}"#
    )
}

fn tags(img: &aws_sdk_ec2::types::Image) -> BTreeMap<String, String> {
    img.tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_var_file_bakes_one_ami_per_file_with_its_own_values() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "each");
    let (web, db) = (lab.unique("each-web"), lab.unique("each-db"));
    let tpl = s.write("t.json", &node_template("manifest.json"));
    // The common file sets every variable; a node file's values win over it, -var over both.
    s.write(
        "common.json",
        r#"{"node": "common", "env": "from-common", "team": "platform", "ami_name": "unset"}"#,
    );
    std::fs::create_dir_all(s.dir.join("nodes")).unwrap();
    s.write(
        "nodes/web.json",
        &format!(r#"{{"ami_name": "{web}", "node": "web", "env": "from-web"}}"#),
    );
    s.write(
        "nodes/db.json",
        &format!(r#"{{"ami_name": "{db}", "node": "db"}}"#),
    );
    let vars = lab.var_file();
    let out = s.run(
        lab,
        lab.moto_url(),
        &[
            "-color=false",
            "-var-file",
            vars.to_str().unwrap(),
            "-var-file",
            "common.json",
            "-var",
            "env=from-cli",
            "-parallel-builds",
            "2",
            "--each-var-file",
            "nodes/web.json",
            "--each-var-file",
            "nodes/db.json",
            tpl.to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    // Each run's lines carry its var-file's stem; both artifacts are listed at the end.
    assert!(t.contains("    amazon-ebs (web): node web"), "{t}");
    assert!(t.contains("    amazon-ebs (db): node db"), "{t}");
    assert!(
        t.contains("--> amazon-ebs (web): AMIs were created:"),
        "{t}"
    );
    assert!(t.contains("--> amazon-ebs (db): AMIs were created:"), "{t}");

    let (w, d) = (amis_named(&c, &web).await, amis_named(&c, &db).await);
    assert_eq!((w.len(), d.len()), (1, 1), "one AMI per var-file: {t}");
    let (wt, dt) = (tags(&w[0]), tags(&d[0]));
    assert_eq!(wt["node"], "web");
    assert_eq!(dt["node"], "db");
    assert_eq!(wt["env"], "from-cli", "-var wins over every var-file");
    assert_eq!(dt["env"], "from-cli");
    assert_eq!(
        wt["team"], "platform",
        "the common file's values reach every run"
    );
    assert_eq!(dt["team"], "platform");

    // The manifest post-processor appended one build per run, in one run.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("manifest.json")).unwrap())
            .unwrap();
    let builds = m["builds"].as_array().unwrap();
    let mut names: Vec<&str> = builds.iter().map(|b| b["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["amazon-ebs (db)", "amazon-ebs (web)"]);
    let ids: Vec<&str> = builds
        .iter()
        .map(|b| b["artifact_id"].as_str().unwrap())
        .collect();
    for img in [&w[0], &d[0]] {
        let id = format!("us-east-1:{}", img.image_id().unwrap());
        assert!(ids.contains(&id.as_str()), "{id} in {ids:?}");
    }
    assert!(
        builds
            .iter()
            .all(|b| b["packer_run_uuid"] == m["last_run_uuid"])
    );
    assert_nothing_left(&c, "after two --each-var-file bakes").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_each_var_file_fails_validation_naming_it_and_creates_nothing() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "each-bad");
    let good = lab.unique("each-good");
    let tpl = s.write("t.json", &node_template("manifest.json"));
    s.write("good.json", &format!(r#"{{"ami_name": "{good}"}}"#));
    s.write("broken.json", "{\"ami_name\": \"x\",\n  \"node\": }\n");
    let vars = lab.var_file();
    lab.reset_request_counts();
    let out = s.run(
        lab,
        lab.moto_url(),
        &[
            "-var-file",
            vars.to_str().unwrap(),
            "--each-var-file",
            "good.json",
            "--each-var-file",
            "broken.json",
            tpl.to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("broken.json"), "the error names the file: {t}");
    assert!(
        !t.contains("with --each-var-file good.json"),
        "the good file has no error: {t}"
    );
    let counts = lab.request_counts();
    assert!(counts.is_empty(), "nothing was asked of AWS: {counts:?}");
    assert!(amis_named(&c, &good).await.is_empty());
    assert_nothing_left(&c, "after a failed validation").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_run_fails_the_bake_while_the_others_finish() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "each-fail");
    let (ok, bad) = (lab.unique("each-ok"), lab.unique("each-fails"));
    let tpl = s.write("t.json", &node_template("manifest.json"));
    s.write(
        "ok.json",
        &format!(r#"{{"ami_name": "{ok}", "node": "ok"}}"#),
    );
    s.write(
        "bad.json",
        &format!(r#"{{"ami_name": "{bad}", "node": "bad", "fail": "yes"}}"#),
    );
    let vars = lab.var_file();
    let out = s.run(
        lab,
        lab.moto_url(),
        &[
            "-color=false",
            "-var-file",
            vars.to_str().unwrap(),
            "--each-var-file",
            "ok.json",
            "--each-var-file",
            "bad.json",
            tpl.to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("--> amazon-ebs (bad): "), "{t}");
    assert!(t.contains("--> amazon-ebs (ok): AMIs were created:"), "{t}");
    assert_eq!(amis_named(&c, &ok).await.len(), 1, "{t}");
    assert!(amis_named(&c, &bad).await.is_empty(), "{t}");
    assert_nothing_left(&c, "after one of two runs failed").await;
}

#[test]
fn each_var_file_rejects_pass_ami_publish_ssm_and_clashing_stems() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::create_dir_all(dir.join("b")).unwrap();
    for f in ["t.json", "a/web.json", "b/web.json", "db.json"] {
        std::fs::write(dir.join(f), "{}").unwrap();
    }
    let bake = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bake"))
            .current_dir(dir)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), text(&out))
    };
    let (code, t) = bake(&[
        "-pass-ami",
        "SOURCE_ID",
        "--each-var-file",
        "db.json",
        "t.json",
        "t.json",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        t.contains("--each-var-file cannot be combined with -pass-ami"),
        "{t}"
    );
    let (code, t) = bake(&[
        "--publish-ssm",
        "/app/x",
        "--each-var-file",
        "db.json",
        "t.json",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        t.contains("--each-var-file cannot be combined with --publish-ssm"),
        "{t}"
    );
    let (code, t) = bake(&[
        "--each-var-file",
        "a/web.json",
        "--each-var-file",
        "b/web.json",
        "t.json",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        t.contains("a/web.json and b/web.json would both label their builds \"web\""),
        "{t}"
    );
}
