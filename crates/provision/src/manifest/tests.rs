use super::*;
use crate::testutil::post_processor;
use bakery_template::PostProcessorConfig;

fn manifest_cfg(
    options: &str,
    vars: &[(&str, &str)],
    sensitive: &[&str],
) -> (ManifestConfig, Secrets) {
    let (pp, secrets) = post_processor(
        &format!(r#"{{"type":"manifest"{options}}}"#),
        vars,
        sensitive,
    );
    match pp {
        PostProcessorConfig::Manifest(m) => (m, secrets),
        other => panic!("not a manifest: {other:?}"),
    }
}

fn artifact(id: &str, time: u64) -> Artifact {
    Artifact {
        build_name: "amazon-ebs".into(),
        builder_type: "amazon-ebs".into(),
        artifact_id: id.into(),
        files: None,
        build_time: time,
    }
}

fn output_in(dir: &tempfile::TempDir) -> String {
    format!(r#","output":"{}""#, dir.path().join("m.json").display())
}

#[test]
fn first_write_has_packers_exact_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, secrets) = manifest_cfg(&output_in(&dir), &[], &[]);
    let path = write(
        &cfg,
        &artifact("us-east-1:ami-1,us-west-2:ami-2", 1_700_000_000),
        "run-1",
        &LateContext::default(),
        false,
        &secrets,
    )
    .unwrap();
    assert_eq!(path, dir.path().join("m.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        r#"{
  "builds": [
    {
      "name": "amazon-ebs",
      "builder_type": "amazon-ebs",
      "build_time": 1700000000,
      "files": null,
      "artifact_id": "us-east-1:ami-1,us-west-2:ami-2",
      "packer_run_uuid": "run-1",
      "custom_data": null
    }
  ],
  "last_run_uuid": "run-1"
}"#
    );
    // No lock file is left behind.
    assert!(!dir.path().join("m.json.lock").exists());
}

#[test]
fn later_writes_append_and_force_truncates_only_other_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, secrets) = manifest_cfg(&output_in(&dir), &[], &[]);
    let late = LateContext::default();
    let path = dir.path().join("m.json");
    let read = || -> ManifestFile {
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };

    write(
        &cfg,
        &artifact("r:ami-1", 1),
        "run-1",
        &late,
        false,
        &secrets,
    )
    .unwrap();
    write(
        &cfg,
        &artifact("r:ami-2", 2),
        "run-2",
        &late,
        false,
        &secrets,
    )
    .unwrap();
    let m = read();
    let ids: Vec<&str> = m.builds.iter().map(|b| b.artifact_id.as_str()).collect();
    assert_eq!(ids, ["r:ami-1", "r:ami-2"]);
    assert_eq!(m.last_run_uuid, "run-2");

    // -force from another run starts afresh...
    write(
        &cfg,
        &artifact("r:ami-3", 3),
        "run-3",
        &late,
        true,
        &secrets,
    )
    .unwrap();
    let m = read();
    assert_eq!(m.builds.len(), 1);
    assert_eq!(m.builds[0].artifact_id, "r:ami-3");
    // ...but a second build of the same run appends, even with -force.
    write(
        &cfg,
        &artifact("r:ami-4", 4),
        "run-3",
        &late,
        true,
        &secrets,
    )
    .unwrap();
    let m = read();
    let ids: Vec<&str> = m.builds.iter().map(|b| b.artifact_id.as_str()).collect();
    assert_eq!(ids, ["r:ami-3", "r:ami-4"]);
    assert!(m.builds.iter().all(|b| b.packer_run_uuid == "run-3"));
}

#[test]
fn strip_time_omits_build_time_and_strip_path_keeps_base_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("disk.img");
    std::fs::write(&file, vec![0u8; 1234]).unwrap();
    let opts = format!(r#"{},"strip_time":true,"strip_path":true"#, output_in(&dir));
    let (cfg, secrets) = manifest_cfg(&opts, &[], &[]);
    let mut a = artifact("id", 99);
    a.files = Some(vec![
        file.display().to_string(),
        dir.path().join("missing.bin").display().to_string(),
    ]);
    let path = write(&cfg, &a, "run", &LateContext::default(), false, &secrets).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("build_time"), "{text}");
    let m: ManifestFile = serde_json::from_str(&text).unwrap();
    assert_eq!(
        m.builds[0].files,
        Some(vec![
            ManifestArtifactFile {
                name: "disk.img".into(),
                size: 1234
            },
            ManifestArtifactFile {
                name: "missing.bin".into(),
                size: 0
            },
        ])
    );
    assert!(text.contains("\"files\": [\n        {\n          \"name\": \"disk.img\",\n          \"size\": 1234\n        },"), "{text}");
}

#[test]
fn custom_data_is_rendered_late_and_secrets_are_masked() {
    let dir = tempfile::tempdir().unwrap();
    let opts = format!(
        r#"{},"custom_data":{{"source":"{{{{ build `SourceAMIName` }}}}","owner":"{{{{ user `owner` }}}}","token":"{{{{ user `token` }}}}","build":"{{{{ build_name }}}}"}}"#,
        output_in(&dir)
    );
    let (cfg, secrets) = manifest_cfg(
        &opts,
        &[("owner", "team-a"), ("token", "s3cr3t-t0ken")],
        &["token"],
    );
    let mut late = LateContext::default();
    late.build
        .insert("SourceAMIName".into(), "ubuntu-22.04 & <friends>".into());
    let mut a = artifact("us-east-1:ami-9", 5);
    a.artifact_id = "us-east-1:ami-9 s3cr3t-t0ken".into();
    let path = write(&cfg, &a, "run", &late, false, &secrets).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("s3cr3t-t0ken"), "{text}");
    // Go's HTML-safe escaping of <, > and &.
    assert!(
        text.contains(r#""source": "ubuntu-22.04 \u0026 \u003cfriends\u003e""#),
        "{text}"
    );
    assert!(
        text.contains(r#""token": "\u003csensitive\u003e""#),
        "{text}"
    );
    let m: ManifestFile = serde_json::from_str(&text).unwrap();
    let data = m.builds[0].custom_data.clone().unwrap();
    assert_eq!(data["owner"], "team-a");
    // The build's name (rendered when the template was loaded, as in Packer).
    assert_eq!(data["build"], "amazon-ebs");
    assert_eq!(data["source"], "ubuntu-22.04 & <friends>");
    assert_eq!(m.builds[0].artifact_id, "us-east-1:ami-9 <sensitive>");
}

#[test]
fn a_corrupt_manifest_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.json"), "{not json").unwrap();
    let (cfg, secrets) = manifest_cfg(&output_in(&dir), &[], &[]);
    let err = write(
        &cfg,
        &artifact("id", 1),
        "run",
        &LateContext::default(),
        false,
        &secrets,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("manifest: Unable to parse content from "),
        "{err}"
    );
    assert!(err.contains("m.json"), "{err}");
    // The file is left untouched.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("m.json")).unwrap(),
        "{not json"
    );
}

#[test]
fn existing_entries_are_read_as_go_would() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.json"),
        r#"{"builds":[{"name":"old","builder_type":"amazon-ebs","build_time":0,"files":null,"artifact_id":"x","packer_run_uuid":"r0","custom_data":{"k":"v"},"extra":1}],"last_run_uuid":"r0"}"#,
    )
    .unwrap();
    let (cfg, secrets) = manifest_cfg(&output_in(&dir), &[], &[]);
    let path = write(
        &cfg,
        &artifact("y", 7),
        "r1",
        &LateContext::default(),
        false,
        &secrets,
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    // Unknown keys are dropped and a zero build_time omitted, as Go's round trip does.
    assert!(!text.contains("extra"), "{text}");
    assert!(text.starts_with("{\n  \"builds\": [\n    {\n      \"name\": \"old\",\n      \"builder_type\": \"amazon-ebs\",\n      \"files\": null,"), "{text}");
    assert!(
        text.contains("\"custom_data\": {\n        \"k\": \"v\"\n      }"),
        "{text}"
    );
    // `null` builds are an empty list.
    std::fs::write(
        dir.path().join("m.json"),
        r#"{"builds":null,"last_run_uuid":null}"#,
    )
    .unwrap();
    write(
        &cfg,
        &artifact("z", 8),
        "r2",
        &LateContext::default(),
        false,
        &secrets,
    )
    .unwrap();
    let m: ManifestFile = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(m.builds.len(), 1);
}

#[test]
fn amazon_artifact_ids_are_sorted() {
    assert_eq!(
        amazon_artifact_id([
            ("us-west-2", "ami-2"),
            ("eu-west-1", "ami-3"),
            ("us-east-1", "ami-1")
        ]),
        "eu-west-1:ami-3,us-east-1:ami-1,us-west-2:ami-2"
    );
    assert_eq!(amazon_artifact_id(std::iter::empty()), "");
}

#[test]
fn go_escaping_of_control_characters() {
    let v = serde_json::json!({"s": "a\u{8}b\u{c}c\u{1}d\n\t\"\\/\u{2028}"});
    assert_eq!(
        to_go_json(&v).unwrap(),
        "{\n  \"s\": \"a\\u0008b\\u000cc\\u0001d\\n\\t\\\"\\\\/\\u2028\"\n}"
    );
    assert_eq!(
        to_go_json(&serde_json::json!({"a": [], "b": {}})).unwrap(),
        "{\n  \"a\": [],\n  \"b\": {}\n}"
    );
}

#[test]
fn go_base_matches_filepath_base() {
    assert_eq!(go_base("/a/b/c.img"), "c.img");
    assert_eq!(go_base("c.img"), "c.img");
    assert_eq!(go_base("/a/b/"), "b");
    assert_eq!(go_base("/"), "/");
    assert_eq!(go_base(""), ".");
}
