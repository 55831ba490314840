//! The `ansible` and `ansible-local` provisioners on the lab, with the lab's pinned ansible-core
//! (`lab/.venv`, installed by `make lab`).
//!
//! The lab's "instance" is this machine's lab sshd, logged in to as the lab user: every playbook here
//! only writes under its own unique `/tmp/bakery-ansible-*` directory (removed by the test), never
//! installs anything and never becomes root; ansible's own state (`ANSIBLE_HOME`, remote temporary
//! files) is kept in the same directories.
//!
//! `ansible-playbook` is given as `command` through a recording shim (argv, `ANSIBLE_*` environment,
//! the inventory, the key file's mode, the known_hosts file), which then runs the real one; the same
//! shim records what Packer 1.6.6 hands ansible for the same playbook.

use crate::common::{SERIAL, Scratch, assert_nothing_left, clients, packer_binary, template, text};
use bakery_lab::Lab;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The lab venv's `ansible-playbook`, or a failure saying to run `make lab`.
fn ansible_playbook() -> PathBuf {
    bakery_lab::venv_program("ansible-playbook").unwrap_or_else(|e| panic!("{e}"))
}

/// A unique directory for one test's remote files, removed when dropped.
struct RemoteDir(PathBuf);

impl RemoteDir {
    /// Created here, 0700 and owned by the lab user (who writes there over SSH).
    fn new(lab: &Lab, name: &str) -> Self {
        let dir = PathBuf::from("/tmp").join(lab.unique(&format!("bakery-ansible-{name}")));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let ok = std::process::Command::new("chown")
            .arg(lab.ssh_user())
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {} {}", lab.ssh_user(), dir.display());
        RemoteDir(dir)
    }
    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for RemoteDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the recording shim: each call leaves `calls/call-PID` (what it was handed), then execs `real`.
fn shim(dir: &Path, real: &Path) -> PathBuf {
    let calls = dir.join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let path = dir.join("ansible-playbook-shim");
    let script = format!(
        r#"#!/bin/sh
# Records what ansible-playbook is handed, then runs the real one.
rec="{calls}/call-$$"
{{
  for a in "$@"; do printf 'ARG %s\n' "$a"; done
  env | grep -E '^(ANSIBLE_|BAKERY_ANSIBLE_)' | sort | sed 's/^/ENV /'
  prev=
  for a in "$@"; do
    if [ "$prev" = "-i" ] && [ -f "$a" ]; then
      printf 'INVENTORY-MODE %s\n' "$(stat -c %a "$a")"
      sed 's/^/INVENTORY /' "$a"
    fi
    case "$a" in
      ansible_ssh_private_key_file=*)
        k=${{a#*=}}
        printf 'KEY-MODE %s\n' "$(stat -c %a "$k")"
        printf 'KEY-DIR-MODE %s\n' "$(stat -c %a "$(dirname "$k")")"
        head -n1 "$k" | sed 's/^/KEY-FIRST-LINE /' ;;
      *UserKnownHostsFile=*)
        kh=${{a##*UserKnownHostsFile=}}
        sed 's/^/KNOWN-HOSTS /' "$kh" ;;
    esac
    prev=$a
  done
}} > "$rec.tmp" && mv "$rec.tmp" "$rec"
exec {real} "$@"
"#,
        calls = calls.display(),
        real = real.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The recorded playbook run (not the `--version` check): its lines.
fn recorded_run(dir: &Path) -> Vec<String> {
    let mut runs: Vec<Vec<String>> = std::fs::read_dir(dir.join("calls"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            p.extension().is_none_or(|x| x != "tmp").then(|| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
        })
        .filter(|lines: &Vec<String>| !lines.iter().any(|l| l == "ARG --version"))
        .collect();
    assert_eq!(runs.len(), 1, "one playbook run: {runs:?}");
    runs.remove(0)
}

fn with_prefix<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .collect()
}

/// The playbook both tools run: writes what reached ansible into `OUT/result.txt`.
const PLAYBOOK: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - name: the output directory
      file:
        path: "{{ out_dir }}"
        state: directory
        mode: "0700"
    - name: what reached ansible
      copy:
        dest: "{{ out_dir }}/result.txt"
        mode: "0600"
        content: |
          build={{ packer_build_name }}
          type={{ packer_builder_type }}
          host={{ inventory_hostname }}
          groups={{ group_names | join(',') }}
          marker={{ lookup('env', 'BAKERY_ANSIBLE_MARKER') }}
          extra={{ extra_marker }}
          user={{ ansible_user }}
"#;

/// The ansible provisioner's JSON for a test: the shim as `command`, ansible's state under `remote`,
/// ControlMaster off (no ssh master process outlives the run).
fn ansible_provisioner(shim: &Path, playbook: &Path, remote: &str, extra: &str) -> String {
    format!(
        r#"{{"type":"ansible","command":"{shim}","playbook_file":"{playbook}",
            "host_alias":"box","groups":["web"],"empty_groups":["empty"],
            "ansible_env_vars":["BAKERY_ANSIBLE_MARKER=from-env {{{{ build `User` }}}}","ANSIBLE_HOME={remote}/home",
                                "ANSIBLE_REMOTE_TMP={remote}/rtmp","ANSIBLE_SSH_ARGS=-o ControlMaster=no","ANSIBLE_NOCOLOR=1"],
            "extra_arguments":["--extra-vars","out_dir={remote}/out extra_marker=from-args"]{extra}}}"#,
        shim = shim.display(),
        playbook = playbook.display(),
    )
}

/// A real bake on the lab with an `ansible` provisioner: the playbook's effect on the "instance", what
/// reached ansible (extra vars, groups, host_alias, ansible_env_vars, extra_arguments, the real host,
/// port and user, a 0600 key in a 0700 directory, the pinned host key), no key, known_hosts or inventory
/// file left, nothing left in moto.
#[tokio::test(flavor = "multi_thread")]
async fn ansible_runs_the_playbook_against_the_instance_and_leaves_nothing() {
    let real = ansible_playbook();
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "ansible");
    let remote = RemoteDir::new(lab, "remote");
    let shim = shim(&s.dir, &real);
    let playbook = s.write("site.yml", PLAYBOOK);
    let name = lab.unique("ansible");
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            r#","skip_create_ami":true"#,
            &format!(
                "[{}]",
                ansible_provisioner(&shim, &playbook, &remote.path(), "")
            ),
        ),
    );
    let out = s.run_with_lab_vars(lab, &tpl);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");

    // The effect on the instance.
    let result = std::fs::read_to_string(remote.0.join("out/result.txt"))
        .unwrap_or_else(|e| panic!("result.txt: {e}\n{t}"));
    assert_eq!(
        result,
        format!(
            "build=amazon-ebs\ntype=amazon-ebs\nhost=box\ngroups=web\nmarker=from-env {}\nextra=from-args\nuser={}\n",
            lab.ssh_user(),
            lab.ssh_user()
        ),
        "{t}"
    );
    assert!(t.contains("Provisioning with Ansible..."), "{t}");
    assert!(t.contains("Executing Ansible: "), "{t}");
    assert!(
        t.contains("TASK [what reached ansible]"),
        "ansible's output is streamed: {t}"
    );

    // What ansible was handed.
    let rec = recorded_run(&s.dir);
    let args = with_prefix(&rec, "ARG ");
    let key_file = args
        .iter()
        .find_map(|a| a.strip_prefix("ansible_ssh_private_key_file="))
        .expect("a key file")
        .to_string();
    let inventory = args[args.len() - 2].to_string();
    let common = args
        .iter()
        .position(|a| *a == "--ssh-common-args")
        .map(|i| args[i + 1].to_string())
        .expect("--ssh-common-args");
    let known_hosts = common
        .rsplit("UserKnownHostsFile=")
        .next()
        .unwrap()
        .to_string();
    let expected: Vec<String> = vec![
        "-e".into(),
        "packer_build_name=\"amazon-ebs\"".into(),
        "-e".into(),
        "packer_builder_type=amazon-ebs".into(),
        "--ssh-extra-args".into(),
        "'-o IdentitiesOnly=yes'".into(),
        "--ssh-common-args".into(),
        format!("-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts}"),
        "--extra-vars".into(),
        format!("out_dir={}/out extra_marker=from-args", remote.path()),
        "-e".into(),
        format!("ansible_ssh_private_key_file={key_file}"),
        "-i".into(),
        inventory.clone(),
        playbook.display().to_string(),
    ];
    assert_eq!(args, expected, "{rec:#?}");
    assert_eq!(
        with_prefix(&rec, "INVENTORY "),
        [
            format!(
                "box ansible_host={} ansible_user={} ansible_port={}",
                lab.ssh_host(),
                lab.ssh_user(),
                lab.ssh_port()
            )
            .as_str(),
            "[web]",
            &format!(
                "box ansible_host={} ansible_user={} ansible_port={}",
                lab.ssh_host(),
                lab.ssh_user(),
                lab.ssh_port()
            ),
            "[empty]",
        ]
    );
    assert_eq!(with_prefix(&rec, "INVENTORY-MODE "), ["600"]);
    assert_eq!(with_prefix(&rec, "KEY-MODE "), ["600"]);
    assert_eq!(with_prefix(&rec, "KEY-DIR-MODE "), ["700"]);
    assert!(
        with_prefix(&rec, "KEY-FIRST-LINE ")[0].starts_with("-----BEGIN"),
        "{rec:?}"
    );
    // The pinned host key, for the instance's address and port.
    let kh = with_prefix(&rec, "KNOWN-HOSTS ");
    assert_eq!(kh.len(), 1, "{rec:?}");
    let (entry, key) = kh[0].split_once(' ').unwrap();
    assert_eq!(entry, format!("[{}]:{}", lab.ssh_host(), lab.ssh_port()));
    let body = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        lab.host_public_keys().iter().any(|k| body(k) == body(key)),
        "known_hosts holds the lab sshd's key: {key}"
    );
    let env: BTreeMap<&str, &str> = with_prefix(&rec, "ENV ")
        .into_iter()
        .filter_map(|l| l.split_once('='))
        .collect();
    assert_eq!(env.get("ANSIBLE_HOST_KEY_CHECKING"), Some(&"True"));
    assert_eq!(env.get("ANSIBLE_SCP_IF_SSH"), Some(&"True"));
    let marker = format!("from-env {}", lab.ssh_user());
    assert_eq!(env.get("BAKERY_ANSIBLE_MARKER"), Some(&marker.as_str()));

    // Nothing survives: key, known_hosts, inventory, their directory; nothing in moto.
    for f in [&key_file, &known_hosts, &inventory] {
        assert!(!Path::new(f).exists(), "{f} was left behind");
    }
    assert!(!Path::new(&key_file).parent().unwrap().exists());
    assert_nothing_left(&c, "after an ansible bake").await;
}

/// A failing playbook fails the build with Packer's message; the key files go all the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_playbook_fails_the_build_and_cleans_up() {
    let real = ansible_playbook();
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "ansible-fail");
    let remote = RemoteDir::new(lab, "fail");
    let shim = shim(&s.dir, &real);
    let playbook = s.write(
        "fail.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - fail:\n        msg: deliberately failing\n",
    );
    let name = lab.unique("ansible-fail");
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            r#","skip_create_ami":true"#,
            &format!(
                "[{}]",
                ansible_provisioner(&shim, &playbook, &remote.path(), "")
            ),
        ),
    );
    let out = s.run_with_lab_vars(lab, &tpl);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("deliberately failing"), "{t}");
    assert!(
        t.contains("Error executing Ansible: Non-zero exit status: exit status 2"),
        "{t}"
    );
    let rec = recorded_run(&s.dir);
    let key_file = with_prefix(&rec, "ARG ")
        .into_iter()
        .find_map(|a| a.strip_prefix("ansible_ssh_private_key_file="))
        .expect("a key file")
        .to_string();
    assert!(
        !Path::new(&key_file).parent().unwrap().exists(),
        "{key_file}"
    );
    assert_nothing_left(&c, "after a failing ansible bake").await;
}

/// ansible-local: the playbook directory, group_vars and a generated inventory are uploaded to the
/// staging directory, ansible-playbook (the lab venv's, via `command`) runs on the instance, and
/// `clean_staging_directory` removes the staging directory.
#[tokio::test(flavor = "multi_thread")]
async fn ansible_local_runs_on_the_instance_and_cleans_its_staging_directory() {
    let real = ansible_playbook();
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "ansible-local");
    let remote = RemoteDir::new(lab, "local");
    let staging = format!("{}/staging", remote.path());
    let dir = s.dir.join("pb");
    std::fs::create_dir_all(dir.join("tasks")).unwrap();
    std::fs::create_dir_all(s.dir.join("gv")).unwrap();
    std::fs::write(
        dir.join("site.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - include_tasks: tasks/write.yml\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tasks/write.yml"),
        r#"- file:
    path: "{{ out_dir }}"
    state: directory
- copy:
    dest: "{{ out_dir }}/result.txt"
    content: |
      build={{ packer_build_name }}
      type={{ packer_builder_type }}
      groups={{ group_names | join(',') }}
      group_var={{ from_group_vars }}
      extra={{ extra_marker }}
"#,
    )
    .unwrap();
    std::fs::write(s.dir.join("gv/web.yml"), "from_group_vars: yes-from-gv\n").unwrap();
    let r = remote.path();
    let provisioner = format!(
        r#"[{{"type":"ansible-local","playbook_dir":"{pb}","playbook_file":"{pb}/site.yml","group_vars":"{gv}",
             "inventory_groups":["web"],"staging_directory":"{staging}","clean_staging_directory":true,
             "command":"ANSIBLE_HOME={r}/home ANSIBLE_LOCAL_TEMP={r}/ltmp ANSIBLE_REMOTE_TMP={r}/rtmp ANSIBLE_NOCOLOR=1 {real}",
             "extra_arguments":["--extra-vars","'out_dir={r}/out extra_marker=from-args'"]}}]"#,
        pb = dir.display(),
        gv = s.dir.join("gv").display(),
        real = real.display(),
    );
    let name = lab.unique("ansible-local");
    let tpl = s.write(
        "t.json",
        &template(&name, r#","skip_create_ami":true"#, &provisioner),
    );
    let out = s.run_with_lab_vars(lab, &tpl);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let result = std::fs::read_to_string(remote.0.join("out/result.txt"))
        .unwrap_or_else(|e| panic!("result.txt: {e}\n{t}"));
    assert_eq!(
        result,
        "build=amazon-ebs\ntype=amazon-ebs\ngroups=web\ngroup_var=yes-from-gv\nextra=from-args\n",
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "Executing Ansible: cd {staging} && ANSIBLE_HOME={r}/home ANSIBLE_LOCAL_TEMP={r}/ltmp ANSIBLE_REMOTE_TMP={r}/rtmp ANSIBLE_NOCOLOR=1 {} {staging}/site.yml --extra-vars \"packer_build_name=amazon-ebs packer_builder_type=amazon-ebs packer_http_addr=ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER -o IdentitiesOnly=yes\" --extra-vars 'out_dir={r}/out extra_marker=from-args' -c local -i {staging}/packer-provisioner-ansible-local",
            real.display()
        )),
        "{t}"
    );
    assert!(t.contains("Removing staging directory..."), "{t}");
    assert!(
        !Path::new(&staging).exists(),
        "clean_staging_directory removed {staging}"
    );
    assert_nothing_left(&c, "after an ansible-local bake").await;
}

/// Side by side: Packer 1.6.6's own ansible provisioner (its default proxy, and `use_proxy: false`) and
/// bake, on the same template, playbook and lab, through the same shim. What each handed ansible is
/// compared with the temporary paths, ports and scratch directories replaced by placeholders: bake's
/// is Packer's `use_proxy: false` run plus the pinned host key (`--ssh-common-args`,
/// `ANSIBLE_HOST_KEY_CHECKING=True` instead of `False`); Packer's default run differs from its
/// `use_proxy: false` one by the proxy's address (same host, another port) and user (the user running
/// Packer). `-- --nocapture` prints the three records.
#[tokio::test(flavor = "multi_thread")]
async fn bake_hands_ansible_what_packer_1_6_6_does_without_its_proxy() {
    let real = ansible_playbook();
    let packer = packer_binary();
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    // Packer 1.6.6's proxy offers only an ssh-rsa (SHA-1) host key and accepts only an ssh-rsa user key,
    // which today's OpenSSH refuses unless told otherwise (the usual workaround, in ANSIBLE_SSH_ARGS).
    let plain = "ANSIBLE_SSH_ARGS=-o ControlMaster=no";
    let legacy = "ANSIBLE_SSH_ARGS=-o ControlMaster=no -o HostKeyAlgorithms=+ssh-rsa -o PubkeyAcceptedKeyTypes=+ssh-rsa";
    let mut records: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (tool, use_proxy, ssh_args) in [
        ("packer", "", legacy),
        ("packer-no-proxy", r#","use_proxy":false"#, plain),
        ("bake", "", plain),
    ] {
        let s = Scratch::new(lab, "ansible-side");
        let remote = RemoteDir::new(lab, "side");
        let shim = shim(&s.dir, &real);
        let playbook = s.write("site.yml", PLAYBOOK);
        let name = lab.unique("ansible-side");
        let tpl = s.write(
            "t.json",
            &packer_template(
                &name,
                &ansible_provisioner(&shim, &playbook, &remote.path(), use_proxy)
                    .replace(plain, ssh_args),
            ),
        );
        let vars = lab.var_file();
        let out = if tool == "bake" {
            s.run(
                lab,
                lab.moto_url(),
                &["-var-file", vars.to_str().unwrap(), tpl.to_str().unwrap()],
            )
        } else {
            std::process::Command::new(&packer)
                .args(["build", "-color=false", "-var-file"])
                .arg(&vars)
                .arg(&tpl)
                .current_dir(&s.dir)
                .env("CHECKPOINT_DISABLE", "1")
                .envs(lab.aws_env())
                .output()
                .unwrap()
        };
        let t = text(&out);
        crate::common::remove_amis_named(&c, &name).await;
        assert_eq!(out.status.code(), Some(0), "{tool}: {t}");
        let result = std::fs::read_to_string(remote.0.join("out/result.txt"))
            .unwrap_or_else(|e| panic!("{tool}: result.txt: {e}\n{t}"));
        let user = if tool == "packer" {
            whoami()
        } else {
            lab.ssh_user().to_string()
        };
        assert_eq!(
            result,
            format!(
                "build=amazon-ebs\ntype=amazon-ebs\nhost=box\ngroups=web\nmarker=from-env {}\nextra=from-args\nuser={user}\n",
                lab.ssh_user()
            ),
            "{tool}"
        );
        let rec = normalized(&recorded_run(&s.dir), &s.dir, &remote.path());
        eprintln!("== {tool}\n{}", rec.join("\n"));
        records.insert(tool, rec);
    }
    let (packer, no_proxy, bake) = (
        &records["packer"],
        &records["packer-no-proxy"],
        &records["bake"],
    );
    // bake = Packer without its proxy + the pinned host key.
    let mut expected = no_proxy.clone();
    let at = expected
        .iter()
        .position(|l| l == "ARG --extra-vars")
        .unwrap();
    expected.insert(at, "ARG --ssh-common-args".into());
    expected.insert(
        at + 1,
        "ARG -o StrictHostKeyChecking=yes -o UserKnownHostsFile=KNOWN_HOSTS".into(),
    );
    for l in expected.iter_mut() {
        if l == "ENV ANSIBLE_HOST_KEY_CHECKING=False" {
            *l = "ENV ANSIBLE_HOST_KEY_CHECKING=True".into();
        }
    }
    assert_eq!(bake, &expected);
    // Packer's default = the same with the proxy's port (normalized away) and the local user.
    let mut expected = no_proxy.clone();
    for l in expected.iter_mut() {
        *l = l
            .replace(
                &format!("ansible_user={}", lab.ssh_user()),
                &format!("ansible_user={}", whoami()),
            )
            .replace(plain, legacy);
    }
    assert_eq!(packer, &expected);
    assert_nothing_left(&c, "after the side-by-side ansible bakes").await;
}

/// The user running the tests (what Packer's proxy hands ansible by default).
fn whoami() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A recorded run with what legitimately differs between runs replaced by placeholders: the scratch
/// and remote directories, the key, known_hosts and inventory paths, the port; the key's own lines
/// (type and directory) are dropped.
fn normalized(rec: &[String], scratch: &Path, remote: &str) -> Vec<String> {
    let mut prev = String::new();
    rec.iter()
        .filter(|l| {
            !l.starts_with("KEY-DIR-MODE ")
                && !l.starts_with("KEY-FIRST-LINE ")
                && !l.starts_with("KNOWN-HOSTS ")
        })
        .map(|l| {
            let mut l = l
                .replace(&scratch.display().to_string(), "SCRATCH")
                .replace(remote, "REMOTE");
            if l.starts_with("ARG ansible_ssh_private_key_file=") {
                l = "ARG ansible_ssh_private_key_file=KEY".into();
            } else if prev == "ARG -i" {
                l = "ARG INVENTORY".into();
            } else if let Some((head, _)) = l.split_once("UserKnownHostsFile=") {
                l = format!("{head}UserKnownHostsFile=KNOWN_HOSTS");
            } else if let Some((head, _)) = l.split_once(" ansible_port=") {
                l = format!("{head} ansible_port=PORT");
            }
            prev = l.clone();
            l
        })
        .collect()
}

/// The lab template for Packer 1.6.6 (its endpoint and credentials are template options).
fn packer_template(ami_name: &str, provisioner: &str) -> String {
    format!(
        r#"{{
  "variables": {{ "lab_endpoint": "", "lab_access_key": "", "lab_secret_key": "", "lab_ssh_host": "", "lab_ssh_port": "22", "lab_source_ami": "" }},
  "builders": [{{
    "type": "amazon-ebs", "region": "us-east-1",
    "custom_endpoint_ec2": "{{{{user `lab_endpoint`}}}}", "access_key": "{{{{user `lab_access_key`}}}}", "secret_key": "{{{{user `lab_secret_key`}}}}",
    "skip_region_validation": true, "skip_metadata_api_check": true,
    "source_ami": "{{{{user `lab_source_ami`}}}}", "instance_type": "t2.micro", "ssh_username": "admin",
    "ssh_host": "{{{{user `lab_ssh_host`}}}}", "ssh_port": "{{{{user `lab_ssh_port`}}}}",
    "temporary_security_group_source_cidrs": ["127.0.0.1/32"],
    "ami_name": "{ami_name}"
  }}],
  "provisioners": [{provisioner}]
}}"#
    )
}

/// ansible-local side by side with Packer 1.6.6 (`command` is `true`, so nothing runs): the same
/// messages and the same command on the instance, the generated inventory's random name aside.
#[tokio::test(flavor = "multi_thread")]
async fn ansible_local_sends_packers_commands() {
    let packer = packer_binary();
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for tool in ["packer", "bake"] {
        let s = Scratch::new(lab, "ansible-local-side");
        let remote = RemoteDir::new(lab, "local-side");
        let staging = format!("{}/staging", remote.path());
        let playbook = s.write("site.yml", "- hosts: all\n");
        let name = lab.unique("ansible-local-side");
        let provisioner = format!(
            r#"{{"type":"ansible-local","playbook_file":"{}","staging_directory":"{staging}","command":"true",
                 "inventory_groups":["web","db"],"extra_arguments":["-v","--extra-vars","'a=1 b=2'"],
                 "clean_staging_directory":true}}"#,
            playbook.display()
        );
        let tpl = s.write("t.json", &packer_template(&name, &provisioner));
        let vars = lab.var_file();
        let out = if tool == "bake" {
            s.run(
                lab,
                lab.moto_url(),
                &["-var-file", vars.to_str().unwrap(), tpl.to_str().unwrap()],
            )
        } else {
            std::process::Command::new(&packer)
                .args(["build", "-color=false", "-var-file"])
                .arg(&vars)
                .arg(&tpl)
                .current_dir(&s.dir)
                .env("CHECKPOINT_DISABLE", "1")
                .envs(lab.aws_env())
                .output()
                .unwrap()
        };
        let t = text(&out);
        crate::common::remove_amis_named(&c, &name).await;
        assert_eq!(out.status.code(), Some(0), "{tool}: {t}");
        assert!(!Path::new(&staging).exists(), "{tool}: {staging} removed");
        let from = t
            .find("Provisioning with Ansible...")
            .expect("the headline");
        let mut ours: Vec<String> = Vec::new();
        for l in t[from..].lines() {
            let l = l.trim_end();
            if l.contains("Stopping the source instance") || l.contains("Terminating the source") {
                break;
            }
            let l = l
                .replace(&remote.path(), "REMOTE")
                .replace(&s.dir.display().to_string(), "SCRATCH");
            // The generated inventory's random suffix.
            let l = match l.find("packer-provisioner-ansible-local") {
                Some(i) => {
                    let tail: String = l[i + 32..]
                        .chars()
                        .skip_while(char::is_ascii_digit)
                        .collect();
                    format!("{}packer-provisioner-ansible-localN{tail}", &l[..i])
                }
                None => l,
            };
            ours.push(l);
        }
        eprintln!("== {tool}\n{}", ours.join("\n"));
        lines.insert(tool, ours);
    }
    assert_eq!(lines["bake"], lines["packer"]);
    assert_nothing_left(&c, "after the side-by-side ansible-local bakes").await;
}

/// Ctrl-C while the playbook runs: bake stops, ansible's whole process group is gone, the key directory
/// is removed, nothing is left in moto.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_playbook_kills_ansible_and_cleans_up() {
    let real = ansible_playbook();
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "ansible-ctrlc");
    let remote = RemoteDir::new(lab, "ctrlc");
    let shim = shim(&s.dir, &real);
    let playbook = s.write(
        "hold.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: hold\n      pause:\n        seconds: 60\n",
    );
    let name = lab.unique("ansible-ctrlc");
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            r#","skip_create_ami":true"#,
            &format!(
                "[{}]",
                ansible_provisioner(&shim, &playbook, &remote.path(), "")
            ),
        ),
    );
    let mut r = crate::common::Running::spawn(s.bake_with_lab_vars(lab, &tpl));
    r.wait_for("TASK [hold]");
    r.signal("-INT");
    let (code, out) = tokio::task::spawn_blocking(move || r.finish())
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{out}");
    let key_file = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ansible_ssh_private_key_file="))
        .expect("the command line")
        .to_string();
    assert!(
        !Path::new(&key_file).parent().unwrap().exists(),
        "{key_file}: {out}"
    );
    // No process still runs the playbook (ansible-playbook and its workers hold its path).
    let needle = playbook.display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&needle))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ansible outlived the bake: {left:?}\n{out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_nothing_left(&c, "after Ctrl-C during a playbook").await;
}
