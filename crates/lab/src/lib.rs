//! Test harness for bakery's local lab: a moto server standing in for AWS and an OpenSSH sshd standing
//! in for every EC2 instance, both on 127.0.0.1, started by the repo's own `lab/up`.
//!
//! [`Lab::shared`] starts one lab per test process (fresh state dir, free ports) and ties it to the
//! process: a watcher started by `lab/up --parent-pid` stops it (by pid) within ~0.2 s of the process
//! exiting, whatever way it exits. A test that needs the lab and cannot start it panics with the command
//! that installs it; it never skips.
//!
//! ```no_run
//! let lab = bakery_lab::Lab::shared();
//! let key_name = lab.unique("selftest");
//! // point the AWS SDK at lab.moto_url() / lab.aws_env(), SSH at lab.ssh_host():lab.ssh_port() ...
//! # let _ = key_name;
//! ```
//!
//! Environment: `BAKERY_LAB_USER` (login user, default `admin`), `BAKERY_LAB_KEEP=1` (keep the state
//! dir, with its logs, after the process exits), `BAKERY_LAB_REALISM` (+ `BAKERY_LAB_REALISM_SEED`,
//! `BAKERY_LAB_REALISM_SET`): the realism profile of the shared lab (see [`Realism`]).
//!
//! ## The realism layer
//!
//! moto is instant and forgiving; AWS is not. A lab can run a realism profile (docs/lab.md): NotFound
//! for resources just created, state holds, DependencyViolation, throttling, 5xx, capacity errors, late
//! answers, an IMDSv2-enforcing account, and an sshd that boots like an instance. A test that needs one
//! starts a lab of its own with [`Lab::start_with`] (or switches its own lab with [`Lab::set_realism`])
//! and checks what was injected with [`Lab::realism`]:
//!
//! ```no_run
//! use bakery_lab::{Lab, Realism};
//! let lab = Lab::start_with(&Realism::profile("holds").seed(1)).unwrap();
//! // ... RunInstances, then DescribeInstances says `pending` for ~2 s ...
//! assert!(lab.realism().injected_total("holds") > 0);
//! lab.set_realism(&Realism::profile("throttle").set("throttle.rate", "1"));
//! ```

mod counts;
mod error;
mod http;
mod info;
mod json;
mod launch;
mod realism;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

pub use counts::RequestKind;
pub use error::{INSTALL_HINT, LabError};
pub use info::LabInfo;
pub use json::Json;
pub use launch::{repo_root, venv_program};
pub use realism::{Realism, RealismState};

/// A running lab. Get the process's one with [`Lab::shared`], or a lab of one's own with
/// [`Lab::start_with`].
#[derive(Debug)]
pub struct Lab {
    dir: PathBuf,
    info: LabInfo,
    moto_host_port: String,
    next_name: AtomicU64,
    authorized_keys: Mutex<()>,
    /// Started by [`Lab::start_with`]: stopped when dropped.
    owned: bool,
}

static SHARED: OnceLock<Result<Lab, String>> = OnceLock::new();

impl Lab {
    /// Starts the lab once per test process (lab/up into a fresh state dir, free ports on 127.0.0.1) and
    /// arranges for it to be stopped when the process exits. Panics with the install command if it cannot.
    pub fn shared() -> &'static Lab {
        // The error is stored too: every test of the binary fails with it, and none retries the start.
        match SHARED.get_or_init(|| Lab::start().map_err(|e| e.to_string())) {
            Ok(lab) => lab,
            Err(message) => panic!("{message}"),
        }
    }

    /// Starts a lab for this process; [`Lab::shared`] is this, once. Its realism profile is
    /// `BAKERY_LAB_REALISM` (with `BAKERY_LAB_REALISM_SEED` and `BAKERY_LAB_REALISM_SET`), else `off`.
    /// The lab runs until the process exits.
    pub fn start() -> Result<Lab, LabError> {
        let realism = Realism::from_env().unwrap_or_else(Realism::off);
        Lab::launch(&realism, "")
    }

    /// Starts a separate lab for this process (own state dir, own ports) running the realism profile
    /// `realism`, whatever `BAKERY_LAB_REALISM` says. It is stopped, and its state dir removed (unless
    /// `BAKERY_LAB_KEEP=1`), when the returned `Lab` is dropped, and in any case when the process exits.
    ///
    /// A test that needs the realism layer and cannot start it fails with this error, which names the
    /// install command; it never skips.
    pub fn start_with(realism: &Realism) -> Result<Lab, LabError> {
        let mut lab = Lab::launch(realism, realism.name())?;
        lab.owned = true;
        Ok(lab)
    }

    /// Starts a separate lab whose instances record instead of run (`lab/up --recording`): every command
    /// a session asks for is logged and answered with success, file transfers land under a scratch root
    /// standing in for the instance's `/` ([`Lab::instance_commands`], [`Lab::instance_root`]). For
    /// third-party provisioning (the corpus' scripts install packages as root): nothing of it runs here.
    /// Its realism profile is `BAKERY_LAB_REALISM`'s, as [`Lab::start`]'s; stopped when dropped.
    pub fn start_recording() -> Result<Lab, LabError> {
        let realism = Realism::from_env().unwrap_or_else(Realism::off);
        let mut args = realism.up_args();
        args.push("--recording".to_owned());
        let mut lab = Lab::launch_with_args(&args, "recording")?;
        lab.owned = true;
        Ok(lab)
    }

    /// A recording lab's instance: every session's command, in order (with how it was handled:
    /// `recorded`, `scp`, `helper`, `simple`, `umask`). Empty for other labs.
    pub fn instance_commands(&self) -> Vec<Json> {
        let Some(dir) = &self.info.recording else {
            return Vec::new();
        };
        std::fs::read_to_string(dir.join("commands.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| Json::parse(l).ok())
            .collect()
    }

    /// A recording lab's stand-in for the instance's `/`, where uploads land.
    pub fn instance_root(&self) -> Option<PathBuf> {
        self.info.recording.as_ref().map(|d| d.join("root"))
    }

    /// Puts a file on a recording lab's instance (`path` absolute, as on the instance), owned by the login
    /// user as the instance's scripts would have left it: what a recorded script would have made, for
    /// a later step (a download) to find.
    pub fn put_on_instance(&self, path: &str, contents: &str) {
        let root = self
            .instance_root()
            .expect("put_on_instance: not a recording lab");
        let file = root.join(path.trim_start_matches('/'));
        let parent = file.parent().expect("a file path");
        std::fs::create_dir_all(parent).expect("create the instance's directory");
        std::fs::write(&file, contents).expect("write the instance's file");
        let status = std::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{}:", self.ssh_user()))
            .arg(&root)
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown {} failed", root.display());
    }

    /// Empties a recording lab's instance: its command log and its root (for the next run to start
    /// from a fresh instance).
    pub fn reset_instance(&self) {
        let dir = self
            .info
            .recording
            .as_ref()
            .expect("reset_instance: not a recording lab");
        let root = dir.join("root");
        // Uploads may have left read-only directories.
        let _ = std::process::Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(&root)
            .status();
        std::fs::remove_dir_all(&root).expect("empty the instance's root");
        std::fs::create_dir(&root).expect("recreate the instance's root");
        std::fs::write(dir.join("commands.jsonl"), "").expect("empty the command log");
        let status = std::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{}:", self.ssh_user()))
            .arg(dir)
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown {} failed", dir.display());
    }

    fn launch(realism: &Realism, label: &str) -> Result<Lab, LabError> {
        Lab::launch_with_args(&realism.up_args(), label)
    }

    fn launch_with_args(args: &[String], label: &str) -> Result<Lab, LabError> {
        let root = launch::repo_root()?;
        let user = std::env::var("BAKERY_LAB_USER").unwrap_or_else(|_| "admin".to_owned());
        launch::check_installed(&root, &user)?;
        let dir = launch::fresh_state_dir(&root, label);
        launch::up(&root, &dir, &user, keep_state(), args)?;
        Lab::attach(&dir)
    }

    /// A handle on the lab running in `dir` (started by `lab/up --dir DIR`); does not stop it.
    pub fn attach(dir: &Path) -> Result<Lab, LabError> {
        let info = LabInfo::read(&info::info_path(dir))?;
        let moto_host_port = info
            .moto_url
            .strip_prefix("http://")
            .ok_or_else(|| LabError::BadInfo {
                path: info::info_path(dir),
                detail: format!("moto_url `{}` is not http://HOST:PORT", info.moto_url),
            })?
            .to_owned();
        Ok(Lab {
            dir: dir.to_owned(),
            info,
            moto_host_port,
            next_name: AtomicU64::new(0),
            authorized_keys: Mutex::new(()),
            owned: false,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn moto_url(&self) -> &str {
        &self.info.moto_url
    }

    /// `"127.0.0.1"`
    pub fn ssh_host(&self) -> &str {
        &self.info.ssh_host
    }

    pub fn ssh_port(&self) -> u16 {
        self.info.ssh_port
    }

    /// The login user, `admin` unless `BAKERY_LAB_USER` says otherwise.
    pub fn ssh_user(&self) -> &str {
        &self.info.ssh_user
    }

    /// `"us-east-1"`
    pub fn region(&self) -> &str {
        &self.info.region
    }

    /// This lab's state dir (configs, logs, env.sh, lab.vars.json).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A moto built-in AMI that exists in the lab's region (`ami-785db401`, Ubuntu 16.04).
    pub fn source_ami(&self) -> &str {
        &self.info.source_ami
    }

    /// The standard variables that point the AWS SDKs at the lab: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_EC2_METADATA_DISABLED=true.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.info.moto_url.as_str()),
            ("AWS_ACCESS_KEY_ID", self.info.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.info.secret_key.as_str()),
            ("AWS_REGION", self.info.region.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// JSON -var-file with lab_endpoint, lab_ssh_host, lab_ssh_port, lab_access_key, lab_secret_key,
    /// lab_source_ami (all strings).
    pub fn var_file(&self) -> PathBuf {
        self.dir.join("lab.vars.json")
    }

    /// `env.sh`: the same variables as [`Lab::aws_env`] (plus CHECKPOINT_DISABLE=1 for Packer), to source.
    pub fn env_file(&self) -> PathBuf {
        self.dir.join("env.sh")
    }

    /// Lets `openssh_public_key_line` in as [`Lab::ssh_user`], besides moto's key pairs (a lab-only file).
    pub fn authorize_key(&self, openssh_public_key_line: &str) {
        let line = openssh_public_key_line.trim();
        assert!(
            !line.is_empty() && !line.contains('\n'),
            "authorize_key wants one OpenSSH public key line, got {openssh_public_key_line:?}"
        );
        let path = self.dir.join("authorized_keys");
        let _one_writer = self
            .authorized_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"))
            .unwrap_or_else(|e| panic!("bakery lab: cannot append to {}: {e}", path.display()));
    }

    /// The lab sshd's host public keys (ed25519 and ecdsa), OpenSSH format, one line each. With the
    /// realism layer's `boot` behaviour, the first connections after a launch see
    /// [`Lab::first_boot_host_public_keys`] instead.
    pub fn host_public_keys(&self) -> Vec<String> {
        self.read_host_keys("ssh_host")
    }

    /// The host public keys of the first-boot sshd behind the SSH front (`boot`: the first connections
    /// after a launch see these, later ones [`Lab::host_public_keys`]). Empty without the SSH front.
    pub fn first_boot_host_public_keys(&self) -> Vec<String> {
        if !self.info.ssh_front {
            return Vec::new();
        }
        self.read_host_keys("boot_ssh_host")
    }

    fn read_host_keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = ["ed25519", "ecdsa"]
            .iter()
            .map(|kind| self.dir.join(format!("{prefix}_{kind}_key.pub")))
            .map(|path| {
                std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("bakery lab: cannot read {}: {e}", path.display()))
                    .trim()
                    .to_owned()
            })
            .collect();
        keys.sort();
        keys
    }

    /// A name no other test, process or earlier run uses: `prefix-PID-N-RANDOM`.
    /// Valid as a key pair, security group, AMI or tag value.
    pub fn unique(&self, prefix: &str) -> String {
        let n = self.next_name.fetch_add(1, Ordering::Relaxed);
        // RandomState is seeded from the OS once per process: enough to tell runs with a recycled pid apart.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(n);
        format!(
            "{prefix}-{}-{n}-{:06x}",
            std::process::id(),
            hasher.finish() & 0xff_ffff
        )
    }

    /// moto requests by Action (summed over services) since the lab started or the last reset.
    /// Requests the lab makes itself (warm-up, sshd's keys command) are not counted.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        let mut by_action = BTreeMap::new();
        for (kind, n) in self.request_counts_by_service() {
            *by_action.entry(kind.action).or_insert(0) += n;
        }
        by_action
    }

    /// moto requests by (service, action); see [`RequestKind`].
    pub fn request_counts_by_service(&self) -> BTreeMap<RequestKind, u64> {
        counts::fetch(&self.moto_host_port).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Resets the counts and moto's recording.
    pub fn reset_request_counts(&self) {
        counts::reset(&self.moto_host_port).unwrap_or_else(|e| panic!("{e}"))
    }

    /// moto's request recording (its recorder is on): one JSON object per line with `method`, `url`,
    /// `headers` and `body` (base64 when `body_encoded`), for tests that check what was sent. Holds the
    /// lab's own requests too (User-Agent `bakery-lab-*`); emptied by [`Lab::reset_request_counts`].
    pub fn recording(&self) -> PathBuf {
        self.dir.join("moto-recording.jsonl")
    }

    /// The realism profile this lab started with (`off` unless [`Lab::start_with`],
    /// `BAKERY_LAB_REALISM` or `lab/up --realism` said otherwise); [`Lab::realism`] has the current one.
    pub fn realism_profile(&self) -> &str {
        &self.info.realism
    }

    /// Whether [`Lab::ssh_port`] is the realism layer's SSH front (a profile with `boot`, or
    /// [`Realism::with_ssh_front`]).
    pub fn has_ssh_front(&self) -> bool {
        self.info.ssh_front
    }

    /// Every port the lab's processes listen on: moto's and the advertised SSH port, and with the SSH
    /// front the two sshds behind it.
    pub fn listening_ports(&self) -> std::collections::BTreeSet<u16> {
        let moto_port = self
            .moto_host_port
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok());
        [moto_port, Some(self.info.ssh_port)]
            .into_iter()
            .chain([self.info.sshd_port, self.info.boot_sshd_port])
            .flatten()
            .collect()
    }

    /// The realism layer's state: profile, seed, settings and what it injected so far
    /// (`GET /bakery-lab/realism`). Panics, naming the install command, if the lab has none.
    pub fn realism(&self) -> RealismState {
        self.try_realism().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Lab::realism`], as a `Result`.
    pub fn try_realism(&self) -> Result<RealismState, LabError> {
        realism::fetch(&self.moto_host_port)
    }

    /// Switches the running lab to `realism` (`PUT /bakery-lab/realism`) and returns the new state;
    /// the injected counts carry on ([`Lab::reset_realism_counts`] zeroes them). Meant for a lab a test
    /// owns ([`Lab::start_with`]): the shared lab serves every test of the binary. `boot` needs a lab
    /// started with the SSH front. Panics if the layer refuses (unknown profile or parameter).
    pub fn set_realism(&self, realism: &Realism) -> RealismState {
        self.try_set_realism(realism)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Lab::set_realism`], as a `Result`.
    pub fn try_set_realism(&self, realism: &Realism) -> Result<RealismState, LabError> {
        realism::put(&self.moto_host_port, realism)
    }

    /// Zeroes the realism layer's injected counts.
    pub fn reset_realism_counts(&self) {
        realism::reset(&self.moto_host_port).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Reboots "the instances" as the SSH front sees them: drops every SSH connection through it and,
    /// with `boot`, refuses new ones for `boot.reboot_down_s`. Returns how many connections were dropped
    /// (0 without the SSH front). A `reboot` or `shutdown` run in a session drops only that session's
    /// connection.
    pub fn reboot_instances(&self) -> u64 {
        realism::reboot(&self.moto_host_port).unwrap_or_else(|e| panic!("{e}"))
    }

    /// What the instances' console (`GetConsoleOutput`) shows: `"lab"` (the default: cloud-init's host key
    /// blocks for the lab sshd's keys), `"other"` (blocks with a key no sshd of the lab has) or `"none"` (no
    /// block). Lab-wide: a test that changes it puts `"lab"` back.
    pub fn set_console_host_keys(&self, mode: &str) {
        http::request_ok(
            &self.moto_host_port,
            "PUT",
            "/bakery-lab/console",
            Some(&format!("{{\"host_keys\":\"{mode}\"}}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The processes `lab/up` started (name, pid): `watch` (if tied to a process), `moto`, `sshd`, and
    /// with the SSH front `sshd-boot`.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("pids")) else {
            return Vec::new();
        };
        let mut pids: Vec<(String, u32)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_str()?.strip_suffix(".pid")?.to_owned();
                let text = std::fs::read_to_string(entry.path()).ok()?;
                Some((name, text.split_whitespace().next()?.parse().ok()?))
            })
            .collect();
        pids.sort();
        pids
    }
}

impl Drop for Lab {
    /// A lab from [`Lab::start_with`] is stopped (`lab/down`); others are left running.
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        match launch::repo_root().and_then(|root| launch::down(&root, &self.dir, keep_state())) {
            Ok(()) => {}
            // The watcher tied to this process stops it at exit anyway.
            Err(e) => eprintln!("bakery lab: stopping {}: {e}", self.dir.display()),
        }
    }
}

fn keep_state() -> bool {
    std::env::var_os("BAKERY_LAB_KEEP").is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detached_lab() -> Lab {
        Lab {
            dir: PathBuf::from("/nonexistent"),
            info: LabInfo::parse(
                "moto_url=http://127.0.0.1:1\nssh_host=127.0.0.1\nssh_port=2\nssh_user=admin\n\
                 region=us-east-1\naccess_key=a\nsecret_key=s\nsource_ami=ami-1\n",
            )
            .unwrap(),
            moto_host_port: "127.0.0.1:1".into(),
            next_name: AtomicU64::new(0),
            authorized_keys: Mutex::new(()),
            owned: false,
        }
    }

    #[test]
    fn unique_names_differ_and_are_aws_safe() {
        let lab = detached_lab();
        let names: Vec<String> = (0..100).map(|_| lab.unique("bake")).collect();
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len());
        let pid = std::process::id().to_string();
        for name in &names {
            assert!(name.starts_with(&format!("bake-{pid}-")), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{name}"
            );
        }
    }

    #[test]
    fn aws_env_is_the_standard_variables() {
        let env = detached_lab().aws_env();
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "AWS_ENDPOINT_URL",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "AWS_EC2_METADATA_DISABLED"
            ]
        );
        assert_eq!(env[0].1, "http://127.0.0.1:1");
        assert_eq!(env[4].1, "true");
    }
}
