//! The lab's life cycle: two labs run side by side, `lab/down` stops only its own lab's processes,
//! and a lab tied to a process (`lab/up --parent-pid`) is stopped, and its dir removed, once that
//! process is gone.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bakery_lab::{Lab, repo_root};

/// Alive and not a zombie.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with(['Z', 'X']))
        })
        .unwrap_or(false)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "not done after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The answer to `GET /bakery-lab/requests`: moto is serving.
fn moto_answers(lab: &Lab) -> bool {
    let host_port = lab.moto_url().trim_start_matches("http://");
    let Ok(mut conn) = TcpStream::connect(host_port) else {
        return false;
    };
    let request = "GET /bakery-lab/requests HTTP/1.0\r\nUser-Agent: bakery-lab-test\r\n\r\n";
    let mut response = String::new();
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_to_string(&mut response).is_ok()
        && response.split(' ').nth(1) == Some("200")
}

fn sshd_answers(lab: &Lab) -> bool {
    let mut banner = [0u8; 4];
    TcpStream::connect((lab.ssh_host(), lab.ssh_port()))
        .and_then(|mut conn| conn.read_exact(&mut banner))
        .is_ok()
        && &banner == b"SSH-"
}

/// A `sleep` child, killed when dropped (also when the test panics).
struct Parent(Child);

impl Drop for Parent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A second lab tied to a [`Parent`], so it cannot outlive this test binary.
struct TiedLab {
    parent: Parent,
    dir: PathBuf,
    lab: Lab,
}

impl TiedLab {
    fn start(label: &str) -> TiedLab {
        let root = repo_root().expect("repo root");
        let parent = Parent(
            Command::new("sleep")
                .arg("600")
                .spawn()
                .expect("spawn sleep"),
        );
        let dir = root
            .join("lab/.state")
            .join(format!("{label}-{}", std::process::id()));
        let status = Command::new(root.join("lab/up"))
            .arg("--dir")
            .arg(&dir)
            .args(["--quiet", "--parent-pid", &parent.0.id().to_string()])
            .status()
            .expect("run lab/up");
        assert!(status.success(), "lab/up --dir {}: {status}", dir.display());
        let lab = Lab::attach(&dir).expect("attach");
        TiedLab { parent, dir, lab }
    }

    fn pids(&self) -> Vec<u32> {
        let pids: Vec<u32> = self.lab.pids().into_iter().map(|(_, pid)| pid).collect();
        assert_eq!(pids.len(), 3, "watch, moto and sshd: {:?}", self.lab.pids());
        pids
    }
}

fn lab_down(dir: &Path) {
    let root = repo_root().expect("repo root");
    let status = Command::new(root.join("lab/down"))
        .arg("--dir")
        .arg(dir)
        .status()
        .expect("lab/down");
    assert!(status.success(), "lab/down: {status}");
}

#[test]
fn down_stops_only_its_own_lab() {
    let shared = Lab::shared();
    let other = TiedLab::start("lifecycle-down");
    assert_ne!(other.lab.moto_url(), shared.moto_url());
    assert_ne!(other.lab.ssh_port(), shared.ssh_port());
    assert!(moto_answers(&other.lab) && sshd_answers(&other.lab));
    let pids = other.pids();

    lab_down(&other.dir);
    for pid in pids {
        assert!(!running(pid), "lab/down left pid {pid} running");
    }
    assert!(
        !other.dir.join("lab.info").exists(),
        "lab.info of a stopped lab"
    );
    assert!(
        other.dir.join("sshd.log").exists(),
        "logs stay after lab/down"
    );
    assert!(
        moto_answers(shared) && sshd_answers(shared),
        "the other lab must keep running"
    );
    std::fs::remove_dir_all(&other.dir).expect("remove the stopped lab's dir");
}

#[test]
fn lab_stops_when_its_parent_process_exits() {
    let mut tied = TiedLab::start("lifecycle-parent");
    let pids = tied.pids();
    assert!(pids.iter().all(|&pid| running(pid)));

    tied.parent.0.kill().expect("kill the parent");
    tied.parent.0.wait().expect("reap the parent");
    wait_until("the watcher stops the lab", Duration::from_secs(15), || {
        pids.iter().all(|&pid| !running(pid))
    });
    wait_until(
        "the watcher removes the state dir",
        Duration::from_secs(5),
        || !tied.dir.exists(),
    );
}
