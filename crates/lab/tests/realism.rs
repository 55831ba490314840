//! The lab's realism layer really does what its profiles say: each behaviour is switched on in a lab of
//! this binary's own and observed from outside, over plain HTTP and TCP here and with boto3 and OpenSSH's
//! client in lab/py/test_realism.py (run with the lab venv's python). Tests share one lab and switch its
//! profile, so they run one at a time.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bakery_lab::{INSTALL_HINT, Lab, Realism, repo_root};

static LAB: OnceLock<Lab> = OnceLock::new();
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The binary's realism lab (profile `off`, with the SSH front so that `boot` can be switched on), and
/// the right to switch its profile.
fn lab() -> (&'static Lab, MutexGuard<'static, ()>) {
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = LAB.get_or_init(|| {
        Lab::start_with(&Realism::off().with_ssh_front()).unwrap_or_else(|e| panic!("{e}"))
    });
    (lab, turn)
}

/// Runs lab/py/test_realism.py's `scenario` against `lab`, leaving its profile and counts in place.
fn scenario(lab: &Lab, name: &str) -> String {
    let root = repo_root().expect("repo root");
    let python = root.join("lab/.venv/bin/python");
    assert!(
        python.exists(),
        "lab not installed ({} missing): {INSTALL_HINT}",
        python.display()
    );
    let out = Command::new(&python)
        .arg(root.join("lab/py/test_realism.py"))
        .arg("--dir")
        .arg(lab.dir())
        .args(["--keep", name])
        .output()
        .expect("run test_realism.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.starts_with(&format!("ok {name} ")),
        "test_realism.py {name}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// One AWS query-protocol call over plain HTTP, signed enough for moto and the realism layer (the
/// SigV4 scope names the service; moto does not check signatures): (status, body).
fn aws_call(lab: &Lab, service: &str, user_agent: &str, form: &str) -> (u16, String) {
    let host_port = lab.moto_url().trim_start_matches("http://");
    let mut conn = TcpStream::connect(host_port).expect("connect to moto");
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let body = format!("{form}&Version=2016-11-15");
    let request = format!(
        "POST / HTTP/1.0\r\nHost: {host_port}\r\nUser-Agent: {user_agent}\r\n\
         Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=bakerylab/20260101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status");
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn ec2(lab: &Lab, form: &str) -> (u16, String) {
    aws_call(lab, "ec2", "realism-test", form)
}

fn xml_values(body: &str, tag: &str) -> Vec<String> {
    body.split(&format!("<{tag}>"))
        .skip(1)
        .filter_map(|rest| {
            rest.split_once(&format!("</{tag}>"))
                .map(|(v, _)| v.to_owned())
        })
        .collect()
}

fn run_instance(lab: &Lab) -> String {
    let (status, body) = ec2(
        lab,
        &format!(
            "Action=RunInstances&ImageId={}&MinCount=1&MaxCount=1&InstanceType=t2.micro",
            lab.source_ami()
        ),
    );
    assert_eq!(status, 200, "RunInstances: {body}");
    xml_values(&body, "instanceId")
        .into_iter()
        .next()
        .expect("an instance id")
}

fn instance_state(lab: &Lab, id: &str) -> String {
    let (status, body) = ec2(lab, &format!("Action=DescribeInstances&InstanceId.1={id}"));
    assert_eq!(status, 200, "DescribeInstances: {body}");
    let state = body
        .split("<instanceState>")
        .nth(1)
        .expect("an instanceState");
    xml_values(state, "name")
        .into_iter()
        .next()
        .expect("a state name")
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let began = Instant::now();
    while !done() {
        assert!(
            began.elapsed() < timeout,
            "not done after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    began.elapsed()
}

#[derive(Debug, PartialEq)]
enum Probe {
    Refused,
    /// Accepted, then closed before the SSH banner.
    Dropped,
    Banner,
}

fn probe_ssh(lab: &Lab) -> Probe {
    match TcpStream::connect((lab.ssh_host(), lab.ssh_port())) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Probe::Refused,
        Err(e) => panic!("connect to the SSH port: {e}"),
        Ok(mut conn) => {
            conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut banner = [0u8; 4];
            match conn.read_exact(&mut banner) {
                Ok(()) if &banner == b"SSH-" => Probe::Banner,
                _ => Probe::Dropped,
            }
        }
    }
}

/// The host keys the SSH port shows now (ssh-keyscan), as `type base64` lines.
fn keyscan(lab: &Lab) -> Vec<String> {
    let out = Command::new("ssh-keyscan")
        .args(["-T", "3", "-t", "ed25519,ecdsa", "-p"])
        .arg(lab.ssh_port().to_string())
        .arg(lab.ssh_host())
        .output()
        .expect("run ssh-keyscan (openssh-client, installed with the lab's openssh-server)");
    let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    keys.sort();
    keys
}

fn key_only(lines: Vec<String>) -> Vec<String> {
    let mut keys: Vec<String> = lines
        .iter()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    keys.sort();
    keys
}

// ---------------------------------------------------------------------------------------- plain HTTP

#[test]
fn a_lab_starts_with_off_and_injects_nothing() {
    let (lab, _turn) = lab();
    assert_eq!(lab.realism_profile(), "off");
    assert!(lab.has_ssh_front());
    let state = lab.set_realism(&Realism::off());
    lab.reset_realism_counts();
    assert_eq!(state.profile, "off");
    for behaviour in ["consistency", "holds", "throttle", "capacity", "boot"] {
        assert!(!state.is_on(behaviour), "{behaviour} is off: {state:?}");
    }
    for profile in [
        "off",
        "real-aws",
        "bench",
        "consistency",
        "holds",
        "refusals",
        "throttle",
        "capacity",
        "imdsv2",
        "late",
        "boot",
    ] {
        assert!(state.profiles.iter().any(|p| p == profile), "{profile}");
    }
    let id = run_instance(lab);
    assert_eq!(instance_state(lab, &id), "running", "moto's instant state");
    assert!(lab.realism().injected.is_empty());
}

#[test]
fn holds_show_pending_then_running() {
    let (lab, _turn) = lab();
    lab.set_realism(
        &Realism::profile("holds")
            .set("holds.instance_pending_s", "1.5")
            .set("holds.jitter_s", "0"),
    );
    lab.reset_realism_counts();
    let id = run_instance(lab);
    assert_eq!(instance_state(lab, &id), "pending");
    let took = wait_until("running", Duration::from_secs(10), || {
        instance_state(lab, &id) == "running"
    });
    assert!(took >= Duration::from_millis(1200), "pending for {took:?}");
    assert!(lab.realism().injected("holds", "DescribeInstances") >= 1);
    lab.set_realism(&Realism::off());
}

#[test]
fn throttling_is_injected_and_counted_but_never_for_the_lab_itself() {
    let (lab, _turn) = lab();
    lab.set_realism(
        &Realism::profile("throttle")
            .seed(3)
            .set("throttle.rate", "1")
            .set("errors", "null"),
    );
    lab.reset_realism_counts();
    let (status, body) = ec2(lab, "Action=DescribeRegions");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("<Code>RequestLimitExceeded</Code>"), "{body}");
    let (status, body) = aws_call(
        lab,
        "autoscaling",
        "realism-test",
        "Action=DescribeAutoScalingGroups",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>Throttling</Code>"), "{body}");
    let (status, body) = aws_call(lab, "ec2", "bakery-lab-test", "Action=DescribeRegions");
    assert_eq!(
        status, 200,
        "the lab's own requests are never faulted: {body}"
    );
    let state = lab.realism();
    assert_eq!(state.injected("throttle", "DescribeRegions"), 1);
    assert_eq!(state.injected("throttle", "DescribeAutoScalingGroups"), 1);
    assert_eq!(state.injected_total("throttle"), 2);
    assert_eq!(state.seed, 3);
    lab.set_realism(&Realism::off());
}

#[test]
fn capacity_and_imdsv2_refusals_over_plain_http() {
    let (lab, _turn) = lab();
    lab.set_realism(&Realism::profile("capacity").set("imdsv2", "{}"));
    lab.reset_realism_counts();
    let ami = lab.source_ami();
    let (status, body) = ec2(
        lab,
        &format!("Action=RunInstances&ImageId={ami}&MinCount=1&MaxCount=1&InstanceType=c5.metal"),
    );
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("InsufficientInstanceCapacity"), "{body}");
    let (status, body) = ec2(
        lab,
        &format!(
            "Action=RunInstances&ImageId={ami}&MinCount=1&MaxCount=1&InstanceType=t2.micro\
             &MetadataOptions.HttpTokens=optional"
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>InvalidParameterValue</Code>") && body.contains("HttpTokens"));
    let (status, body) = ec2(
        lab,
        &format!(
            "Action=RunInstances&ImageId={ami}&MinCount=1&MaxCount=1&InstanceType=t2.micro\
             &MetadataOptions.HttpTokens=required"
        ),
    );
    assert_eq!(status, 200, "{body}");
    let state = lab.realism();
    assert_eq!(state.injected("capacity", "RunInstances"), 1);
    assert_eq!(state.injected("imdsv2", "RunInstances"), 1);
    lab.set_realism(&Realism::off());
}

#[test]
fn an_unknown_profile_or_parameter_is_refused_with_the_list() {
    let (lab, _turn) = lab();
    let before = lab.set_realism(&Realism::profile("holds").seed(5));
    let err = lab
        .try_set_realism(&Realism::profile("nonsense"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown realism profile `nonsense`") && err.contains("real-aws"),
        "{err}"
    );
    let err = lab
        .try_set_realism(&Realism::profile("holds").set("holds.bogus_s", "1"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds.bogus_s") && err.contains("instance_pending_s"),
        "{err}"
    );
    let after = lab.realism();
    assert_eq!(
        (after.profile, after.seed, after.settings),
        (before.profile, before.seed, before.settings),
        "a refused switch changes nothing"
    );
    lab.set_realism(&Realism::off());
}

// ---------------------------------------------------------------------------------------- SSH front

#[test]
fn ssh_is_refused_then_dropped_then_first_boot_host_key_then_the_real_one() {
    let (lab, _turn) = lab();
    lab.set_realism(
        &Realism::profile("boot")
            .set("boot.refused_s", "1.5")
            .set("boot.drop_banners", "1")
            .set("boot.host_key_s", "2")
            .set("boot.auth_delay_s", "0"),
    );
    lab.reset_realism_counts();
    assert_eq!(probe_ssh(lab), Probe::Banner, "no instance booting yet");
    let launched = Instant::now();
    run_instance(lab);
    assert_eq!(probe_ssh(lab), Probe::Refused, "right after RunInstances");
    let mut first = Probe::Refused;
    let opened = wait_until("the SSH port opens", Duration::from_secs(10), || {
        first = probe_ssh(lab);
        first != Probe::Refused
    });
    assert_eq!(
        first,
        Probe::Dropped,
        "the first connection loses its banner"
    );
    assert!(
        opened >= Duration::from_millis(1300),
        "refused for {opened:?}"
    );
    let early = keyscan(lab);
    let first_boot = key_only(lab.first_boot_host_public_keys());
    let real = key_only(lab.host_public_keys());
    assert_eq!(
        early, first_boot,
        "early connections see the first-boot host keys"
    );
    wait_until("the real host keys", Duration::from_secs(10), || {
        keyscan(lab) == real
    });
    assert!(launched.elapsed() >= Duration::from_millis(3300));
    assert_ne!(first_boot, real);
    let state = lab.realism();
    assert_eq!(state.injected("boot_dropped", "ssh"), 1);
    assert!(state.injected("boot_host_key", "ssh") >= 1);
    assert_eq!(state.injected("boot_refused", "ssh"), 1);

    lab.set_realism(&Realism::profile("boot").set("boot.reboot_down_s", "1"));
    let mut session = TcpStream::connect((lab.ssh_host(), lab.ssh_port())).expect("connect");
    let mut banner = [0u8; 4];
    session.read_exact(&mut banner).expect("banner");
    assert!(
        lab.reboot_instances() >= 1,
        "the open connection is dropped"
    );
    session
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = session.read_to_end(&mut rest); // EOF (or reset): the connection is gone
    assert_eq!(probe_ssh(lab), Probe::Refused, "refused while it reboots");
    wait_until("back after the reboot", Duration::from_secs(10), || {
        probe_ssh(lab) == Probe::Banner
    });
    lab.set_realism(&Realism::off());
}

// ---------------------------------------------------------------------------------------- boto3 + ssh

#[test]
fn consistency_not_found_then_found() {
    let (lab, _turn) = lab();
    scenario(lab, "consistency");
    let state = lab.realism();
    assert_eq!(state.injected("consistency", "DescribeKeyPairs"), 2);
    assert_eq!(state.injected("consistency", "GetInstanceProfile"), 1);
    assert_eq!(state.injected("consistency", "RunInstances"), 1);
    assert_eq!(
        state.injected("consistency", "DescribeAutoScalingGroups"),
        1
    );
}

#[test]
fn holds_for_instances_images_and_snapshots() {
    let (lab, _turn) = lab();
    scenario(lab, "holds");
    let state = lab.realism();
    assert!(state.injected("holds", "DescribeImages") >= 1, "{state:?}");
    assert!(
        state.injected("holds", "DescribeSnapshots") >= 1,
        "{state:?}"
    );
}

#[test]
fn dependency_violation_then_success_and_snapshot_in_use_then_success() {
    let (lab, _turn) = lab();
    scenario(lab, "refusals");
    let state = lab.realism();
    assert!(state.injected("dependency", "DeleteSecurityGroup") >= 2);
    assert!(state.injected("snapshot_in_use", "DeleteSnapshot") >= 1);
}

#[test]
fn throttle_bursts_and_5xx_are_deterministic_with_a_seed() {
    let (lab, _turn) = lab();
    scenario(lab, "throttle");
    assert!(lab.realism().injected_total("throttle") >= 1);
}

#[test]
fn capacity_errors_only_for_the_listed_type() {
    let (lab, _turn) = lab();
    scenario(lab, "capacity");
    assert_eq!(lab.realism().injected_total("capacity"), 4);
}

#[test]
fn imdsv2_optional_is_refused() {
    let (lab, _turn) = lab();
    scenario(lab, "imdsv2");
    assert!(lab.realism().injected_total("imdsv2") >= 1);
}

#[test]
fn late_answers_and_errors_after_the_effect() {
    let (lab, _turn) = lab();
    scenario(lab, "late");
}

#[test]
fn a_booting_instance_refuses_then_denies_then_lets_in_and_reboots() {
    let (lab, _turn) = lab();
    scenario(lab, "boot");
    let state = lab.realism();
    assert_eq!(state.injected("boot_auth", "RunInstances"), 1);
    assert_eq!(state.injected("reboot", "ssh"), 1);
}

// ---------------------------------------------------------------------------------------- starting

/// A `sleep` child, killed when dropped: the process a lab started with `lab/up` is tied to.
struct Parent(Child);

impl Drop for Parent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lab_up(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (Parent, std::process::Output) {
    let root = repo_root().expect("repo root");
    let parent = Parent(Command::new("sleep").arg("600").spawn().expect("sleep"));
    let out = Command::new(root.join("lab/up"))
        .arg("--dir")
        .arg(dir)
        .args(["--quiet", "--parent-pid", &parent.0.id().to_string()])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run lab/up");
    (parent, out)
}

fn state_dir(label: &str) -> PathBuf {
    repo_root()
        .expect("repo root")
        .join("lab/.state")
        .join(format!("realism-{label}-{}", std::process::id()))
}

#[test]
fn lab_up_honours_bakery_lab_realism() {
    let dir = state_dir("env");
    let (_parent, out) = lab_up(
        &dir,
        &[
            ("BAKERY_LAB_REALISM", "capacity"),
            ("BAKERY_LAB_REALISM_SEED", "42"),
            (
                "BAKERY_LAB_REALISM_SET",
                "capacity.instance_types=[\"x1.32xlarge\"]",
            ),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lab = Lab::attach(&dir).expect("attach");
    assert_eq!(lab.realism_profile(), "capacity");
    assert!(!lab.has_ssh_front(), "capacity has no boot: no SSH front");
    let state = lab.realism();
    assert_eq!((state.profile.as_str(), state.seed), ("capacity", 42));
    let types = state
        .settings
        .get("capacity")
        .and_then(|c| c.get("instance_types"))
        .map(ToString::to_string);
    assert_eq!(types.as_deref(), Some(r#"["x1.32xlarge"]"#));
    let err = lab
        .try_set_realism(&Realism::profile("boot"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no SSH front"), "{err}");
    let root = repo_root().unwrap();
    let down = Command::new(root.join("lab/down"))
        .arg("--dir")
        .arg(&dir)
        .arg("--purge")
        .status()
        .expect("lab/down");
    assert!(down.success());
}

#[test]
fn lab_up_refuses_an_unknown_profile_before_starting_anything() {
    let dir = state_dir("bad");
    let (_parent, out) = lab_up(&dir, &[], &["--realism", "nonsense"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("unknown realism profile `nonsense`") && stderr.contains("real-aws"),
        "{stderr}"
    );
    assert!(!dir.join("lab.info").exists() && !dir.join("pids/moto.pid").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn start_with_runs_the_profile_and_drop_stops_the_lab() {
    let lab =
        Lab::start_with(&Realism::profile("refusals").seed(9)).unwrap_or_else(|e| panic!("{e}"));
    let state = lab.realism();
    assert_eq!((state.profile.as_str(), state.seed), ("refusals", 9));
    assert!(
        state.is_on("dependency") && state.is_on("snapshot_in_use") && !state.is_on("throttle")
    );
    let dir = lab.dir().to_owned();
    let moto = lab
        .pids()
        .into_iter()
        .find(|(name, _)| name == "moto")
        .expect("moto's pid")
        .1;
    drop(lab);
    assert!(
        !Path::new(&format!("/proc/{moto}")).exists()
            || std::fs::read_to_string(format!("/proc/{moto}/stat"))
                .is_ok_and(|s| s.contains(") Z")),
        "moto stopped"
    );
    assert!(!dir.exists() || std::env::var_os("BAKERY_LAB_KEEP").is_some());
}

/// Run by [`the_shared_lab_honours_bakery_lab_realism`] in a child process of this test binary, with
/// the environment set there (not in this multi-threaded process); a no-op otherwise.
#[test]
fn shared_lab_in_a_child_process() {
    let Some(expected) = std::env::var_os("REALISM_TEST_CHILD") else {
        return;
    };
    let lab = Lab::shared();
    assert_eq!(lab.realism_profile(), expected.to_str().unwrap());
    let state = lab.realism();
    assert_eq!(state.profile, expected.to_str().unwrap());
    assert_eq!(state.seed, 77);
    assert!(
        !state.is_on("throttle"),
        "BAKERY_LAB_REALISM_SET turned it off"
    );
    assert_eq!(
        state
            .settings
            .get("holds")
            .and_then(|h| h.get("jitter_s"))
            .and_then(|j| j.as_f64()),
        Some(0.0)
    );
}

#[test]
fn the_shared_lab_honours_bakery_lab_realism() {
    let out = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "shared_lab_in_a_child_process", "--nocapture"])
        .env("REALISM_TEST_CHILD", "real-aws")
        .env("BAKERY_LAB_REALISM", "real-aws")
        .env("BAKERY_LAB_REALISM_SEED", "77")
        .env("BAKERY_LAB_REALISM_SET", "throttle=null holds.jitter_s=0")
        .output()
        .expect("run the child test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child: {}\n{text}",
        out.status
    );
}
