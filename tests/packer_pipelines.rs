//! `PACKER_BINARY=bake` in real pipelines (docs/packer-pipelines.md): the upstream trees in
//! `../shared/corpus/repos/` run their own Makefiles with bake in Packer's place. Nothing here provisions:
//! `make validate` and the Packer subcommands the Makefiles call reach no instance and no AWS API.

use crate::common;
use std::path::PathBuf;
use std::process::Command;

/// The shared corpus of real templates: `$BAKERY_CORPUS`, else `../shared/corpus` beside the repository
/// (where the development machines keep it). Panics with where it looked: a test never skips.
fn corpus() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates: Vec<PathBuf> = std::env::var_os("BAKERY_CORPUS")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            repo.join("../shared/corpus"),
            PathBuf::from("/work/shared/corpus"),
        ])
        .collect();
    candidates
        .iter()
        .find(|c| c.join("repos").is_dir())
        .cloned()
        .unwrap_or_else(|| {
            panic!("the template corpus is missing (looked in {candidates:?}); set BAKERY_CORPUS to its directory")
        })
}

fn eks_ami() -> PathBuf {
    corpus().join("repos/awslabs__amazon-eks-ami@81fec2e")
}

fn bake() -> &'static str {
    env!("CARGO_BIN_EXE_bake")
}

/// amazon-eks-ami's `make validate` with `PACKER_BINARY=bake`: the Makefile reads the template's
/// variables from `bake inspect -machine-readable` (its `template-variable` records), passes the ones
/// set on make's command line as `-var`, layers the var-files, and `bake validate` accepts the result.
#[test]
fn amazon_eks_ami_make_validate_runs_with_bake() {
    let out = Command::new("make")
        .arg("-C")
        .arg(eks_ami())
        .arg("validate")
        .arg(format!("PACKER_BINARY={}", bake()))
        .args([
            "os_distro=al2023",
            "k8s=1.33",
            "kubernetes_version=1.33.0",
            "kubernetes_build_date=2025-05-01",
        ])
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("make runs (Debian's make, installed with the Rust toolchain)");
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    // The variables made it through `inspect -machine-readable`: the Makefile passes only variables the
    // template declares, and it found these in bake's records.
    for var in [
        "-var kubernetes_version='1.33.0'",
        "-var kubernetes_build_date='2025-05-01'",
        "-var arch='x86_64'",
        "-var-file=templates/al2023/variables-1.33.json",
    ] {
        assert!(text.contains(var), "{var} missing:\n{text}");
    }
    assert!(text.contains("The configuration is valid."), "{text}");
}

/// Packer 1.6.6 and bake write the same typed records for amazon-eks-ami's template (variables with their
/// defaults and required flags, builders, provisioners), in the same order (required variables sorted:
/// Packer 1.6.6 lists them in Go's map order).
#[test]
fn amazon_eks_ami_inspect_records_match_packers() {
    let template = eks_ami().join("templates/al2023/template.json");
    let records = |bin: &std::path::Path| {
        let out = Command::new(bin)
            .args(["inspect", "-machine-readable"])
            .arg(&template)
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", common::text(&out));
        crate::template_commands::records(&String::from_utf8(out.stdout).unwrap())
    };
    let ours = records(std::path::Path::new(bake()));
    let theirs = records(&common::packer_binary());
    assert!(ours.len() > 20, "{ours:?}");
    assert_eq!(ours, theirs);
}

/// What pipelines call besides build/validate/inspect: `version` leads with a line Packer's version
/// parsers accept, and `init` (image-builder runs `packer init packer/config.pkr.hcl` before JSON builds),
/// `fmt` on JSON and `plugins installed` are harmless; `fix` is refused with a reason.
#[test]
fn packer_subcommands_pipelines_call_are_answered() {
    let run = |args: &[&str]| {
        let out = Command::new(bake())
            .args(args)
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("bake runs");
        (out.status.code(), common::text(&out))
    };
    let (code, text) = run(&["version"]);
    assert_eq!(code, Some(0));
    let first = text.lines().next().unwrap();
    let v = first.strip_prefix("Packer v").expect(first);
    assert!(
        v.split('.').count() == 3 && v.split('.').all(|p| p.parse::<u32>().is_ok()),
        "{first}"
    );
    let (code, text) = run(&["-machine-readable", "version"]);
    assert_eq!(code, Some(0));
    assert!(text.contains(&format!(",,version,{v}\n")), "{text}");
    assert_eq!(run(&["init", "packer/config.pkr.hcl"]).0, Some(0));
    assert_eq!(run(&["fmt", "-check", "template.json"]).0, Some(0));
    let (code, text) = run(&["plugins", "installed"]);
    assert_eq!(
        (code, text.contains("amazon-ebs")),
        (Some(0), true),
        "{text}"
    );
    let (code, text) = run(&["fix", "old.json"]);
    assert_eq!(code, Some(1));
    assert!(text.contains("bake fix: not supported"), "{text}");
}

/// The tests of this module take turns on their recording lab: each empties its instance.
static RECORDING_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The recording lab of this module (its instances record instead of run: amazon-eks-ami's scripts
/// install packages as root).
fn recording_lab() -> &'static bakery_lab::Lab {
    static LAB: std::sync::OnceLock<Result<bakery_lab::Lab, String>> = std::sync::OnceLock::new();
    match LAB.get_or_init(|| bakery_lab::Lab::start_recording().map_err(|e| e.to_string())) {
        Ok(lab) => lab,
        Err(message) => panic!("{message}"),
    }
}

/// A copy of amazon-eks-ami's tree to run its Makefile in: the build writes its manifests beside the
/// Makefile, and the shared corpus stays untouched.
fn eks_ami_copy(into: &std::path::Path) -> PathBuf {
    let dest = into.join("amazon-eks-ami");
    let out = Command::new("cp")
        .arg("-a")
        .arg(eks_ami())
        .arg(&dest)
        .output()
        .expect("cp runs");
    assert!(out.status.success(), "{}", common::text(&out));
    dest
}

/// The lab's source AMI as the template's `source_ami_filter` must find it (moto's Ubuntu image; the
/// template's filter names AL2023's), and the variables a pipeline sets on make's command line.
fn eks_make_vars(lab: &bakery_lab::Lab, ami_name: &str) -> Vec<String> {
    vec![
        "os_distro=al2023".into(),
        "k8s=1.33".into(),
        "kubernetes_version=1.33.0".into(),
        "kubernetes_build_date=2025-05-01".into(),
        format!("aws_region={}", lab.region()),
        format!("ami_name={ami_name}"),
        format!("source_ami_id={}", lab.source_ami()),
        "source_ami_filter_name=ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20170721"
            .into(),
        "source_ami_owners=099720109477".into(),
        format!("ssh_username={}", lab.ssh_user()),
    ]
}

/// `make k8s` in `tree` with `binary` as `PACKER_BINARY`, the lab's environment and `extra` on make's
/// command line and in the environment.
fn make_k8s(
    lab: &bakery_lab::Lab,
    tree: &std::path::Path,
    binary: &str,
    vars: &[String],
    env: &[(&str, String)],
) -> (bool, String) {
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(tree)
        .arg("k8s")
        .arg(format!("PACKER_BINARY={binary}"))
        .args(vars)
        .env("CHECKPOINT_DISABLE", "1")
        .env_remove("AWS_PROFILE");
    for (k, v) in lab.aws_env() {
        make.env(k, v);
    }
    for (k, v) in env {
        make.env(k, v);
    }
    let out = make.output().expect("make runs");
    (out.status.success(), common::text(&out))
}

/// What reached a recording lab's instance: the commands (transfers left out: their protocol differs,
/// their result is the tree) with temporary script names made comparable, and every file and directory
/// under the stand-in's root with its mode and size.
fn instance_snapshot(lab: &bakery_lab::Lab) -> (Vec<String>, Vec<String>) {
    let script = regex_lite_script_names;
    let commands = lab
        .instance_commands()
        .iter()
        .filter(|e| {
            matches!(
                e.get("kind").and_then(|k| k.as_str()),
                Some("recorded" | "simple")
            )
        })
        .filter_map(|e| e.get("command").and_then(|c| c.as_str()))
        .map(|c| script(c.trim_end()))
        // Packer 1.6.6 also runs `rm -f ` with no path after each script (its unused environment file).
        .filter(|c| c != "rm -f")
        .collect();
    let root = lab.instance_root().expect("a recording lab");
    let mut tree: Vec<String> = walk_all(&root)
        .iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(p).unwrap();
            let mode = std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777;
            let size = if m.is_dir() { 0 } else { m.len() };
            format!(
                "{mode:o} {size} {}",
                p.strip_prefix(&root).unwrap().display()
            )
        })
        .collect();
    tree.sort();
    (commands, tree)
}

/// `/tmp/script_1234.sh` → `/tmp/script_N.sh` (Packer's and bake's random script names).
fn regex_lite_script_names(c: &str) -> String {
    let mut out = String::new();
    let mut rest = c;
    while let Some(i) = rest.find("/tmp/script_") {
        out.push_str(&rest[..i + "/tmp/script_".len()]);
        rest = &rest[i + "/tmp/script_".len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        out.push('N');
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// amazon-eks-ami's own `make k8s` with `PACKER_BINARY=bake`, to the end, on a recording lab: only what
/// make's command line (the Makefile passes variables the template declares as `-var`) and the
/// environment (`AWS_ENDPOINT_URL`, `BAKERY_SSH_HOST`/`BAKERY_SSH_PORT`) can set is changed. Its 24
/// provisioners run against the instance stand-in, which records the scripts instead of running them.
/// Then Packer 1.6.6 runs the same Makefile on the same lab, and the instance must have received the same:
/// every command, its environment and quoting, and every uploaded file with its mode. (Packer 1.6.6 needs
/// a copy of the template adjusted for it: it predates `metadata_options` and wants gp3's throughput and
/// IOPS, and it has no connection override, so the copy names the lab's sshd.)
#[tokio::test(flavor = "multi_thread")]
async fn amazon_eks_ami_make_k8s_with_bake_sends_the_instance_what_packer_sends() {
    let _turn = RECORDING_TURN.lock().await;
    let lab = recording_lab();
    let c = common::clients(lab).await;
    let scratch = tempfile::tempdir().unwrap();
    let tree = eks_ami_copy(scratch.path());
    // The same source modes for both runs (the shared corpus is read-only).
    assert!(
        Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(&tree)
            .status()
            .unwrap()
            .success()
    );
    let version_info = |ami: &str| format!("{{\"ami\": \"{ami}\"}}\n");

    let ami_name = lab.unique("eks-node");
    lab.reset_instance();
    // The stand-in runs no script: what generate-version-info.sh would leave for the download after it
    // is put there beforehand, as the instance would have it.
    lab.put_on_instance("/tmp/worker/version-info.json", &version_info("x"));
    let (ok, text) = make_k8s(
        lab,
        &tree,
        bake(),
        &eks_make_vars(lab, &ami_name),
        &[
            ("BAKERY_SSH_HOST", lab.ssh_host().to_string()),
            ("BAKERY_SSH_PORT", lab.ssh_port().to_string()),
            (
                "BAKERY_STATE_DIR",
                scratch.path().join("state").display().to_string(),
            ),
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("The configuration is valid."), "{text}");
    assert!(text.contains("AMIs were created"), "{text}");
    assert!(text.contains("(BAKERY_SSH_HOST/BAKERY_SSH_PORT)"), "{text}");
    // -timestamp-ui: every line of the build starts with a timestamp.
    assert!(
        text.lines()
            .filter(|l| l.contains("==> amazon-ebs:"))
            .all(|l| l.as_bytes().first().is_some_and(u8::is_ascii_digit)),
        "{text}"
    );
    // The AMI, with the template's tags; both manifests and the downloaded file beside the Makefile.
    let amis = common::amis_named(&c, &ami_name).await;
    assert_eq!(amis.len(), 1, "{amis:?}");
    let tags: std::collections::BTreeMap<_, _> = amis[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect();
    assert_eq!(
        tags.get("kubernetes"),
        Some(&"1.33.0/2025-05-01/bin/linux/x86_64")
    );
    assert_eq!(tags.get("source_ami_id"), Some(&lab.source_ami()));
    for manifest in [
        "manifest.json".to_string(),
        format!("{ami_name}-manifest.json"),
    ] {
        let m = std::fs::read_to_string(tree.join(&manifest)).expect(&manifest);
        assert!(m.contains(amis[0].image_id().unwrap()), "{manifest}: {m}");
    }
    let downloaded = std::fs::read_to_string(tree.join(format!("{ami_name}-version-info.json")))
        .expect("the version info downloaded");
    assert_eq!(downloaded, version_info("x"));
    let (bake_commands, bake_tree) = instance_snapshot(lab);
    assert!(bake_commands.len() >= 40, "{bake_commands:#?}");
    assert!(
        bake_commands
            .iter()
            .any(|c| c.contains("KUBERNETES_VERSION='1.33.0'")),
        "environment_vars reach the command line, quoted: {bake_commands:#?}"
    );
    assert!(
        bake_tree.iter().any(|f| f.ends_with("tmp/worker/bin/imds")),
        "{bake_tree:#?}"
    );
    common::remove_amis_named(&c, &ami_name).await;
    common::assert_nothing_left(&c, "after amazon-eks-ami's make k8s with bake").await;

    // Packer 1.6.6, the same Makefile and variables, on the same (emptied) instance.
    let peer_name = lab.unique("eks-node-packer");
    let template = tree.join("templates/al2023/template.json");
    let mut t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&template).unwrap()).unwrap();
    let b = &mut t["builders"][0];
    b.as_object_mut().unwrap().remove("metadata_options");
    b["ssh_host"] = lab.ssh_host().into();
    b["ssh_port"] = lab.ssh_port().into();
    for key in ["launch_block_device_mappings", "ami_block_device_mappings"] {
        for m in b[key].as_array_mut().unwrap() {
            m["throughput"] = 125.into();
            m["iops"] = 3000.into();
        }
    }
    std::fs::write(&template, serde_json::to_string_pretty(&t).unwrap()).unwrap();
    lab.reset_instance();
    lab.put_on_instance("/tmp/worker/version-info.json", &version_info("x"));
    let mut vars = eks_make_vars(lab, &peer_name);
    vars.push(format!("custom_endpoint_ec2={}", lab.moto_url()));
    let packer = common::packer_binary();
    let (ok, text) = make_k8s(lab, &tree, packer.to_str().unwrap(), &vars, &[]);
    assert!(ok, "Packer 1.6.6: {text}");
    let (packer_commands, packer_tree) = instance_snapshot(lab);
    assert_eq!(bake_commands, packer_commands);
    assert_eq!(bake_tree, packer_tree);
    common::remove_amis_named(&c, &peer_name).await;
}

/// Every file and directory under `dir`.
fn walk_all(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

fn image_builder() -> PathBuf {
    corpus().join("repos/kubernetes-sigs__image-builder@ae63061")
}

/// kubernetes-sigs/image-builder's AMI build through its own Makefile with `PACKER_BIN=bake`, to the end,
/// on a recording lab: `packer init packer/config.pkr.hcl` (its `deps-ami` step) is harmless, `make
/// validate-ami-ubuntu-2204` passes with its var-files, and `make build-ami-ubuntu-2204` bakes with its
/// shell, ansible and goss steps. Only what its Makefile lets a user layer on is changed: a var-file in
/// `PACKER_VAR_FILES` (region, source AMI and filter, SSH user, image name, copy regions) and the
/// environment. The controller's `ansible-playbook` is the lab's recording shim (lab/shims; the playbook
/// installs packages as root); goss and the scripts reach the stand-in instance, which records them.
/// `deps-ami` itself is skipped (`make -o deps-ami`): its other steps are hack/ scripts the corpus
/// excerpt leaves out, as it leaves out `packer/files/` (the test supplies a stand-in for the one script
/// the template names).
#[tokio::test(flavor = "multi_thread")]
async fn image_builder_ami_builds_with_bake_through_its_makefile() {
    let _turn = RECORDING_TURN.lock().await;
    let lab = recording_lab();
    let c = common::clients(lab).await;
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("image-builder");
    let out = Command::new("cp")
        .arg("-a")
        .arg(image_builder())
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(
        Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(&copy)
            .status()
            .unwrap()
            .success()
    );
    let capi = copy.join("images/capi");
    let stub = capi.join("packer/files/flatcar/scripts/bootstrap-flatcar.sh");
    std::fs::create_dir_all(stub.parent().unwrap()).unwrap();
    std::fs::write(
        &stub,
        "#!/bin/sh\n# stand-in: the corpus excerpt leaves packer/files out\n",
    )
    .unwrap();
    let image_name = lab.unique("capi-ubuntu");
    let overrides = scratch.path().join("lab-overrides.json");
    std::fs::write(
        &overrides,
        serde_json::json!({
            "aws_region": lab.region(),
            "ami_regions": common::COPY_REGION,
            "source_ami": lab.source_ami(),
            "ami_filter_name": "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20170721",
            "ami_filter_owners": "099720109477",
            "ami_filter_arch": "x86_64",
            "ssh_username": lab.ssh_user(),
            "image_name": image_name,
        })
        .to_string(),
    )
    .unwrap();
    let record = scratch.path().join("record");
    std::fs::create_dir(&record).unwrap();
    let shims = bakery_lab::repo_root().unwrap().join("lab/shims");
    let path = format!(
        "{}:{}",
        shims.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..])
            .current_dir(&capi)
            .env("PACKER_BIN", bake())
            .env("PATH", &path)
            .env("BAKERY_RECORD_DIR", &record)
            .env("BAKERY_SSH_HOST", lab.ssh_host())
            .env("BAKERY_SSH_PORT", lab.ssh_port().to_string())
            .env("BAKERY_STATE_DIR", scratch.path().join("state"))
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("AWS_PROFILE");
        for (k, v) in lab.aws_env() {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("runs");
        (out.status.success(), common::text(&out))
    };
    let var_files = format!("PACKER_VAR_FILES={}", overrides.display());

    let (ok, text) = run(&[bake(), "init", "packer/config.pkr.hcl"]);
    assert!(ok, "{text}");
    let (ok, text) = run(&[
        "make",
        "-o",
        "deps-ami",
        "validate-ami-ubuntu-2204",
        &var_files,
    ]);
    assert!(ok && text.contains("The configuration is valid."), "{text}");

    lab.reset_instance();
    // goss renders the specs on the instance, which the stand-in does not run: they are put there.
    lab.put_on_instance("/tmp/goss-spec.yaml", "spec: rendered\n");
    lab.put_on_instance("/tmp/debug-goss-spec.yaml", "spec: rendered -d\n");
    let (ok, text) = run(&[
        "make",
        "-o",
        "deps-ami",
        "build-ami-ubuntu-2204",
        &var_files,
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("AMIs were created"), "{text}");
    let amis = common::amis_named(&c, &image_name).await;
    assert_eq!(amis.len(), 1, "{amis:?}");

    // ansible ran on this side with the template's playbook, extra arguments and environment, against
    // the instance's real address, port and user (bake hands them over: no proxy).
    let calls: Vec<serde_json::Value> =
        std::fs::read_to_string(record.join("ansible-playbook.jsonl"))
            .expect("ansible-playbook was called")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let play = calls
        .iter()
        .find(|c| {
            c["argv"]
                .as_array()
                .is_some_and(|a| !a.iter().any(|x| x == "--version"))
        })
        .expect("a playbook run");
    let argv: Vec<&str> = play["argv"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    // The playbook, made absolute as Packer does.
    let playbook = capi.join("ansible/node.yml");
    assert_eq!(argv.last(), Some(&playbook.to_str().unwrap()), "{argv:?}");
    assert!(
        argv.contains(&"--extra-vars") && argv.contains(&"--scp-extra-args"),
        "{argv:?}"
    );
    assert!(
        play["env"]["ANSIBLE_SSH_ARGS"].as_str().is_some(),
        "ansible_env_vars reach ansible: {play}"
    );
    let inventory = play["inventory"].as_str().expect("an inventory file");
    assert!(
        inventory.contains(&format!("ansible_port={}", lab.ssh_port()))
            && inventory.contains(&format!("ansible_user={}", lab.ssh_user())),
        "{inventory}"
    );
    // goss on the instance: installed, the specs uploaded, render/render -d/validate as the plugin runs
    // them, the rendered specs fetched into the working directory.
    let commands: Vec<String> = lab
        .instance_commands()
        .iter()
        .filter_map(|e| {
            e.get("command")
                .and_then(|c| c.as_str())
                .map(str::to_string)
        })
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("curl -L   -o /tmp/goss-0.3.23-linux-amd64 ")),
        "{commands:#?}"
    );
    let validate = commands
        .iter()
        .find(|c| c.contains(" validate --retry-timeout"))
        .expect("goss validate");
    assert!(
        validate.starts_with("cd /tmp/goss && sudo  /tmp/goss-0.3.23-linux-amd64 --gossfile goss/goss.yaml --vars /tmp/goss/goss-vars.yaml --vars-inline '{"),
        "{validate}"
    );
    assert!(validate.ends_with("-f json -o pretty"), "{validate}");
    let root = lab.instance_root().unwrap();
    assert!(root.join("tmp/goss/goss/goss.yaml").is_file());
    assert_eq!(
        std::fs::read_to_string(capi.join("goss-spec.yaml")).unwrap(),
        "spec: rendered\n"
    );

    common::remove_amis_named(&c, &image_name).await;
    common::assert_nothing_left(&c, "after image-builder's build").await;
}
