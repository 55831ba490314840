//! Helpers for the end-to-end tests: running the real `bake` binary against the lab, listing what
//! bakery left in moto, and a fault-injecting proxy in front of moto.
#![allow(dead_code)]

pub mod fault_proxy;

use bakery_core::aws::{AwsSettings, Clients, load_sdk_config};
use bakery_lab::Lab;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

/// A scratch directory for one test: templates, manifests, the journal state dir. `provisioners/` links
/// to the repo's, because templates name their files relative to the working directory (as in Packer).
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(lab: &Lab, name: &str) -> Self {
        let dir = std::env::temp_dir().join(lab.unique(name));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::os::unix::fs::symlink(repo.join("provisioners"), dir.join("provisioners")).unwrap();
        Scratch { dir }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `bake` with the lab's environment, the given endpoint, this scratch dir as cwd and state dir.
    pub fn bake(&self, lab: &Lab, endpoint: &str, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bake"));
        for (k, v) in lab.aws_env() {
            c.env(k, v);
        }
        c.env("AWS_ENDPOINT_URL", endpoint)
            .env("BAKERY_STATE_DIR", self.dir.join("state"))
            .env_remove("AWS_PROFILE")
            .current_dir(&self.dir)
            .args(args);
        c
    }

    pub fn run(&self, lab: &Lab, endpoint: &str, args: &[&str]) -> Output {
        self.bake(lab, endpoint, args).output().unwrap()
    }

    /// `bake -var-file <the lab's var-file> TEMPLATE` straight to moto, not yet started.
    pub fn bake_with_lab_vars(&self, lab: &Lab, template: &Path) -> Command {
        let vars = lab.var_file();
        self.bake(
            lab,
            lab.moto_url(),
            &[
                "-var-file",
                vars.to_str().unwrap(),
                template.to_str().unwrap(),
            ],
        )
    }

    /// [`Scratch::bake_with_lab_vars`], run to the end.
    pub fn run_with_lab_vars(&self, lab: &Lab, template: &Path) -> Output {
        self.bake_with_lab_vars(lab, template).output().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The lab's peer, Packer 1.6.6 (Debian's `packer`, installed by `make lab`); panics with how to install
/// it when it is missing, as every test that needs the lab does.
pub fn packer_binary() -> PathBuf {
    let path = PathBuf::from("/usr/bin/packer");
    let ok = Command::new(&path)
        .arg("version")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the lab's peer Packer 1.6.6 is not installed: run make lab"
    );
    path
}

/// Output as text (stdout then stderr), for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A running `bake` whose output lines arrive on a channel.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    pub fn spawn(mut c: Command) -> Self {
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        for r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Running {
            child,
            lines: rx,
            seen: vec![],
        }
    }

    /// Waits (up to 60 s) for a line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(l) = self
                .lines
                .recv_timeout(std::time::Duration::from_millis(200))
            {
                let hit = l.contains(needle);
                self.seen.push(l);
                if hit {
                    return;
                }
            }
        }
        panic!(
            "never saw {needle:?}; output so far:\n{}",
            self.seen.join("\n")
        );
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the exit and returns (exit code, all output).
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        while let Ok(l) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(300))
        {
            self.seen.push(l);
        }
        (status.code(), self.seen.join("\n"))
    }
}

pub async fn clients(lab: &Lab) -> Clients {
    let s = AwsSettings {
        region: Some(lab.region().to_string()),
        access_key: Some("bakerylab".into()),
        secret_key: Some("bakerylab".into()),
        endpoint_url: Some(lab.moto_url().to_string()),
        ..Default::default()
    };
    Clients::for_region(&checking_sdk_config(&s).await, None, None)
}

/// The SDK config of a test's own checks: its app name (`app/bakery-lab-check` in the user agent) has the
/// lab's realism layer answer it truthfully, whatever the profile does to the code under test.
pub async fn checking_sdk_config(s: &AwsSettings) -> aws_config::SdkConfig {
    load_sdk_config(s)
        .await
        .into_builder()
        .app_name(aws_config::AppName::new("bakery-lab-check").expect("a valid app name"))
        .build()
}

/// What bakery-managed resources exist in moto: (instances not terminated, key pairs, groups).
pub async fn leftovers(c: &Clients) -> (Vec<String>, Vec<String>, Vec<String>) {
    leftovers_tagged(c, "tag:bakery:managed", &["true"]).await
}

/// What bake's temporary resources exist in moto (by their `bakery:role`), ignoring what `rollout`
/// keeps on purpose (its groups' instances, the environment's key pair and security groups).
pub async fn bake_temporaries_left(c: &Clients) -> (Vec<String>, Vec<String>, Vec<String>) {
    let roles = [
        "builder-instance",
        "temporary-key-pair",
        "temporary-security-group",
    ];
    leftovers_tagged(c, "tag:bakery:role", &roles).await
}

async fn leftovers_tagged(
    c: &Clients,
    filter: &str,
    values: &[&str],
) -> (Vec<String>, Vec<String>, Vec<String>) {
    use aws_sdk_ec2::types::{Filter, InstanceStateName};
    let f = || {
        Filter::builder()
            .name(filter)
            .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
            .build()
    };
    let inst = c
        .ec2
        .describe_instances()
        .filters(f())
        .send()
        .await
        .unwrap();
    let instances = inst
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated))
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    let keys = c
        .ec2
        .describe_key_pairs()
        .filters(f())
        .send()
        .await
        .unwrap();
    let keys = keys
        .key_pairs()
        .iter()
        .filter_map(|k| k.key_name().map(str::to_string))
        .collect();
    let sgs = c
        .ec2
        .describe_security_groups()
        .filters(f())
        .send()
        .await
        .unwrap();
    let sgs = sgs
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect();
    (instances, keys, sgs)
}

/// The regions lab tests use: the lab's and the one region copies go to.
pub const COPY_REGION: &str = "us-west-2";

/// Every bakery-tagged resource of every kind bake or rollout creates, in `c`'s region and
/// [`COPY_REGION`], and bake's IAM roles and instance profiles (global, under `/bakery/`), by kind: what
/// a leftover check counts.
pub async fn inventory(c: &Clients) -> BTreeMap<String, Vec<String>> {
    use aws_sdk_ec2::types::{Filter, InstanceStateName};
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let managed = || {
        Filter::builder()
            .name("tag:bakery:managed")
            .values("true")
            .build()
    };
    let regions = [c.region.clone(), COPY_REGION.to_string()];
    for region in regions {
        let ec2 = aws_sdk_ec2::Client::from_conf(
            c.ec2
                .config()
                .to_builder()
                .region(aws_sdk_ec2::config::Region::new(region.clone()))
                .build(),
        );
        let mut put = |kind: &str, ids: Vec<String>| {
            out.entry(kind.to_string())
                .or_default()
                .extend(ids.into_iter().map(|id| format!("{id} ({region})")));
        };
        let inst = ec2
            .describe_instances()
            .filters(managed())
            .send()
            .await
            .unwrap();
        put(
            "instances",
            inst.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter(|i| {
                    i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated)
                })
                .filter_map(|i| i.instance_id().map(str::to_string))
                .collect(),
        );
        let vols = ec2
            .describe_volumes()
            .filters(managed())
            .send()
            .await
            .unwrap();
        put(
            "volumes",
            vols.volumes()
                .iter()
                .filter_map(|v| v.volume_id().map(str::to_string))
                .collect(),
        );
        let keys = ec2
            .describe_key_pairs()
            .filters(managed())
            .send()
            .await
            .unwrap();
        put(
            "key pairs",
            keys.key_pairs()
                .iter()
                .filter_map(|k| k.key_name().map(str::to_string))
                .collect(),
        );
        let sgs = ec2
            .describe_security_groups()
            .filters(managed())
            .send()
            .await
            .unwrap();
        put(
            "security groups",
            sgs.security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_string))
                .collect(),
        );
        let lts = ec2
            .describe_launch_templates()
            .filters(managed())
            .send()
            .await
            .unwrap();
        put(
            "launch templates",
            lts.launch_templates()
                .iter()
                .filter_map(|t| t.launch_template_id().map(str::to_string))
                .collect(),
        );
        let fleets = ec2.describe_fleets().send().await.unwrap();
        put(
            "fleets",
            fleets
                .fleets()
                .iter()
                .filter(|f| {
                    f.tags().iter().any(|t| t.key() == Some("bakery:managed"))
                        && !f
                            .fleet_state()
                            .is_some_and(|s| s.as_str().starts_with("deleted"))
                })
                .filter_map(|f| f.fleet_id().map(str::to_string))
                .collect(),
        );
        let sfrs = ec2.describe_spot_fleet_requests().send().await.unwrap();
        put(
            "spot fleet requests",
            sfrs.spot_fleet_request_configs()
                .iter()
                .filter(|f| {
                    f.tags().iter().any(|t| t.key() == Some("bakery:managed"))
                        && f.spot_fleet_request_state().is_some_and(|s| {
                            matches!(s.as_str(), "submitted" | "active" | "modifying")
                        })
                })
                .filter_map(|f| f.spot_fleet_request_id().map(str::to_string))
                .collect(),
        );
        let images = ec2
            .describe_images()
            .owners("self")
            .filters(managed())
            .send()
            .await
            .unwrap();
        put(
            "AMIs",
            images
                .images()
                .iter()
                .filter_map(|i| i.image_id().map(str::to_string))
                .collect(),
        );
        // Snapshots an AMI still uses are that AMI's; the others are orphans, tagged or not.
        let used: Vec<String> = ec2
            .describe_images()
            .owners("self")
            .send()
            .await
            .unwrap()
            .images()
            .iter()
            .flat_map(|i| i.block_device_mappings())
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
            .collect();
        let snaps = ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(managed())
            .send()
            .await
            .unwrap();
        put(
            "orphan snapshots",
            snaps
                .snapshots()
                .iter()
                .filter_map(|s| s.snapshot_id().map(str::to_string))
                .filter(|id| !used.contains(id))
                .collect(),
        );
    }
    // IAM is global: bake's temporary roles and instance profiles, under its path (moto ignores the
    // instance profiles' PathPrefix, so the path is checked here).
    let roles = c
        .iam
        .list_roles()
        .path_prefix("/bakery/")
        .send()
        .await
        .unwrap();
    out.insert(
        "IAM roles".into(),
        roles
            .roles()
            .iter()
            .filter(|r| r.path().starts_with("/bakery/"))
            .map(|r| r.role_name().to_string())
            .collect(),
    );
    let profiles = c
        .iam
        .list_instance_profiles()
        .path_prefix("/bakery/")
        .send()
        .await
        .unwrap();
    out.insert(
        "instance profiles".into(),
        profiles
            .instance_profiles()
            .iter()
            .filter(|p| p.path().starts_with("/bakery/"))
            .map(|p| p.instance_profile_name().to_string())
            .collect(),
    );
    out
}

/// Asserts that nothing temporary is left in either region: no bakery instance, volume, key pair,
/// security group, launch template, fleet, orphan snapshot, IAM role or instance profile. (AMIs are a
/// build's result: tests check them by name, or against a baseline with [`assert_nothing_new`].)
pub async fn assert_nothing_left(c: &Clients, context: &str) {
    let inv = inventory(c).await;
    let left: BTreeMap<&String, &Vec<String>> = inv
        .iter()
        .filter(|(k, v)| k.as_str() != "AMIs" && !v.is_empty())
        .collect();
    assert!(left.is_empty(), "{context}: left {left:?}");
}

/// Asserts that, of every kind, nothing exists now that did not in `baseline` (an [`inventory`]),
/// except the AMIs in `kept`.
pub async fn assert_nothing_new(
    c: &Clients,
    baseline: &BTreeMap<String, Vec<String>>,
    kept: &[String],
    context: &str,
) {
    let now = inventory(c).await;
    let mut new: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (kind, ids) in &now {
        for id in ids {
            let before = baseline.get(kind).is_some_and(|b| b.contains(id));
            let allowed = kind == "AMIs" && kept.iter().any(|k| id.starts_with(k.as_str()));
            if !before && !allowed {
                new.entry(kind).or_default().push(id);
            }
        }
    }
    assert!(new.is_empty(), "{context}: left {new:?}");
}

/// AMIs named `name` (owned by this account).
pub async fn amis_named(c: &Clients, name: &str) -> Vec<aws_sdk_ec2::types::Image> {
    let out = c
        .ec2
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("name")
                .values(name)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.images().to_vec()
}

/// Registers a new AMI named exactly `name` in moto (RunInstances from the lab's source AMI, CreateImage,
/// terminate); its id.
pub async fn register_ami_named(lab: &Lab, c: &Clients, name: &str) -> String {
    let run = c
        .ec2
        .run_instances()
        .image_id(lab.source_ami())
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances");
    let id = run.instances()[0].instance_id().unwrap().to_string();
    let img = c
        .ec2
        .create_image()
        .instance_id(&id)
        .name(name)
        .send()
        .await
        .expect("CreateImage");
    c.ec2
        .terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("TerminateInstances");
    img.image_id().unwrap().to_string()
}

/// Removes the AMIs named `name` in the lab region and [`COPY_REGION`] (deregistration protection off
/// first) with their snapshots: what a test that keeps a bake's AMI cleans up after itself.
pub async fn remove_amis_named(c: &Clients, name: &str) {
    for region in [c.region.clone(), COPY_REGION.to_string()] {
        let ec2 = aws_sdk_ec2::Client::from_conf(
            c.ec2
                .config()
                .to_builder()
                .region(aws_sdk_ec2::config::Region::new(region))
                .build(),
        );
        let regional = Clients { ec2, ..c.clone() };
        for image in amis_named(&regional, name).await {
            let id = image.image_id().unwrap();
            regional
                .ec2
                .disable_image_deregistration_protection()
                .image_id(id)
                .send()
                .await
                .unwrap();
            regional
                .ec2
                .deregister_image()
                .image_id(id)
                .send()
                .await
                .unwrap();
            for m in image.block_device_mappings() {
                if let Some(snap) = m.ebs().and_then(|e| e.snapshot_id()) {
                    let _ = regional
                        .ec2
                        .delete_snapshot()
                        .snapshot_id(snap)
                        .send()
                        .await;
                }
            }
        }
    }
}

/// A minimal lab template: one amazon-ebs build running `provisioners` (a JSON array), plus `extra`
/// builder options (`,"key":value...`).
pub fn template(ami_name: &str, extra: &str, provisioners: &str) -> String {
    format!(
        r#"{{
  "variables": {{ "lab_endpoint": "", "lab_ssh_host": "", "lab_ssh_port": "22", "lab_source_ami": "" }},
  "builders": [{{
    "type": "amazon-ebs", "region": "us-east-1",
    "source_ami": "{{{{user `lab_source_ami`}}}}",
    "instance_type": "t3.micro", "ssh_username": "admin",
    "ssh_host": "{{{{user `lab_ssh_host`}}}}", "ssh_port": "{{{{user `lab_ssh_port`}}}}",
    "ami_name": "{ami_name}"{extra}
  }}],
  "provisioners": {provisioners}
}}"#
    )
}

/// Serialises the tests that count what is left in the shared moto, or its requests.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A lab for tests that cannot share `Lab::shared()` with the others in this binary.
pub type OwnLab = std::sync::OnceLock<Result<Lab, String>>;

/// `cell`'s lab, started on first use (stopped when the process exits, as `Lab::shared()`'s).
pub fn own_lab(cell: &'static OwnLab) -> &'static Lab {
    match cell.get_or_init(|| Lab::start().map_err(|e| e.to_string())) {
        Ok(lab) => lab,
        Err(message) => panic!("{message}"),
    }
}

/// The request bodies moto recorded for `action` since the last reset.
pub fn bodies(lab: &Lab, action: &str) -> Vec<String> {
    let text = std::fs::read_to_string(lab.recording()).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let body = v["body"].as_str()?.to_string();
            if v["body_encoded"].as_bool() == Some(true) {
                String::from_utf8(aws_smithy_types::base64::decode(&body).ok()?).ok()
            } else {
                Some(body)
            }
        })
        .filter(|b| b.contains(&format!("Action={action}&")))
        .collect()
}
