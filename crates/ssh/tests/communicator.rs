//! The communicator against the lab's real OpenSSH sshd (bakery-lab).
//!
//! Every test logs in with a key generated here and authorized through the
//! lab, trusts exactly the lab's host keys, and works in its own remote
//! directory `/tmp/bakery-ssh-test-<unique>`, removed at the end (also when
//! the test fails). Remote results are checked with commands run over SSH
//! (`find`, `sha256sum`), compared with the same commands run locally.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use bakery_lab::Lab;
use bakery_ssh::{
    Auth, Bastion, Communicator, ExitStatus, HostKeyPolicy, OutputSink, PackerStyleSink, SshConfig,
    SshError,
};
use russh::keys::ssh_key::{Algorithm, LineEnding, PrivateKey};
use tokio_util::sync::CancellationToken;

fn new_key() -> PrivateKey {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("generate ed25519 key")
}

fn pem(key: &PrivateKey) -> String {
    key.to_openssh(LineEnding::LF)
        .expect("encode key")
        .to_string()
}

/// The lab, with this process's login key authorized (once).
fn lab_and_key() -> (&'static Lab, &'static str) {
    static KEY: OnceLock<String> = OnceLock::new();
    let lab = Lab::shared();
    let key = KEY.get_or_init(|| {
        let key = new_key();
        lab.authorize_key(&key.public_key().to_openssh().expect("public key line"));
        pem(&key)
    });
    (lab, key.as_str())
}

fn config() -> SshConfig {
    let (lab, key) = lab_and_key();
    let mut cfg = SshConfig::new(
        lab.ssh_host(),
        lab.ssh_user(),
        Auth::PrivateKey(key.to_string()),
    );
    cfg.port = lab.ssh_port();
    cfg.timeout = Duration::from_secs(30);
    cfg.host_keys =
        HostKeyPolicy::known_from_openssh(&lab.host_public_keys()).expect("lab host keys");
    cfg
}

async fn connect() -> Communicator {
    Communicator::connect(config(), CancellationToken::new())
        .await
        .expect("connect to the lab sshd")
}

/// Captures lines in order, tagged with their stream.
#[derive(Default)]
struct Capture {
    lines: Vec<(char, String)>,
}

impl OutputSink for Capture {
    fn stdout_line(&mut self, line: &str) {
        self.lines.push(('o', line.to_string()));
    }
    fn stderr_line(&mut self, line: &str) {
        self.lines.push(('e', line.to_string()));
    }
}

impl Capture {
    fn stream(&self, which: char) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(c, _)| *c == which)
            .map(|(_, l)| l.as_str())
            .collect()
    }
}

async fn run(comm: &Communicator, cmd: &str) -> (ExitStatus, Capture) {
    let mut cap = Capture::default();
    let status = comm
        .exec(cmd, &mut cap)
        .await
        .unwrap_or_else(|e| panic!("exec {cmd:?}: {e}"));
    (status, cap)
}

/// Runs `cmd`, asserts success, returns stdout.
async fn check(comm: &Communicator, cmd: &str) -> String {
    let (status, cap) = run(comm, cmd).await;
    assert!(
        status.success(),
        "{cmd:?}: {status}; stderr: {:?}",
        cap.stream('e')
    );
    cap.stream('o').join("\n")
}

/// A unique remote scratch directory, removed on drop (over a fresh connection).
struct RemoteDir {
    path: String,
}

impl RemoteDir {
    async fn new(comm: &Communicator) -> RemoteDir {
        let (lab, _) = lab_and_key();
        let path = format!("/tmp/{}", lab.unique("bakery-ssh-test"));
        check(comm, &format!("mkdir '{path}'")).await;
        RemoteDir { path }
    }

    fn join(&self, rel: &str) -> String {
        format!("{}/{rel}", self.path)
    }
}

impl Drop for RemoteDir {
    fn drop(&mut self) {
        let path = self.path.clone();
        let cleaned = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let comm = connect().await;
                let (status, _) = run(&comm, &format!("rm -rf '{path}'")).await;
                comm.close().await;
                status.success()
            })
        })
        .join();
        if !matches!(cleaned, Ok(true)) && !std::thread::panicking() {
            panic!("could not remove remote test dir {}", self.path);
        }
    }
}

/// `type mode size path` for every entry plus a checksum of every file, sorted:
/// the same listing computed locally and remotely proves a byte-for-byte,
/// mode-for-mode copy.
const MANIFEST: &str = "find . -mindepth 1 -printf '%y %m %s %p\\n' | LC_ALL=C sort; \
                        find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2";

fn local_manifest(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(MANIFEST)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

async fn remote_manifest(comm: &Communicator, dir: &str) -> String {
    check(comm, &format!("cd '{dir}' && {{ {MANIFEST}; }}")).await
}

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// tree/: a.txt, run.sh 0755, secret 0600, sub/b.bin (binary, 300 KiB), sub/deeper/c, empty/ (0700),
/// link.txt → a.txt (followed); tree itself 0750.
fn make_tree(root: &Path) -> std::path::PathBuf {
    let tree = root.join("tree");
    fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    fs::create_dir_all(tree.join("empty")).unwrap();
    fs::write(tree.join("a.txt"), "hello\n").unwrap();
    fs::write(tree.join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    set_mode(&tree.join("run.sh"), 0o755);
    fs::write(tree.join("secret"), "s3cr3t").unwrap();
    set_mode(&tree.join("secret"), 0o600);
    let binary: Vec<u8> = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(tree.join("sub/b.bin"), binary).unwrap();
    fs::write(tree.join("sub/deeper/c"), "").unwrap();
    set_mode(&tree.join("empty"), 0o700);
    std::os::unix::fs::symlink("a.txt", tree.join("link.txt")).unwrap();
    set_mode(&tree, 0o750);
    tree
}

/// What the tree must look like after upload (symlink resolved to a file).
fn expected_manifest(tree: &Path) -> String {
    let copy = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-rLp")
        .arg(tree)
        .arg(copy.path().join("t"))
        .status()
        .unwrap();
    assert!(status.success());
    local_manifest(&copy.path().join("t"))
}

async fn mode_of(comm: &Communicator, path: &str) -> String {
    check(comm, &format!("stat -c %a '{path}'")).await
}

// ---------------------------------------------------------------- exec

#[tokio::test]
async fn exec_separates_stdout_and_stderr_and_reports_exit_code() {
    let comm = connect().await;
    let (status, cap) = run(
        &comm,
        "echo out1; echo err1 >&2; echo out2; printf 'no newline'; exit 3",
    )
    .await;
    assert_eq!(
        status,
        ExitStatus {
            code: Some(3),
            signal: None
        }
    );
    assert!(!status.success());
    assert_eq!(cap.stream('o'), ["out1", "out2", "no newline"]);
    assert_eq!(cap.stream('e'), ["err1"]);
    let (status, _) = run(&comm, "true").await;
    assert!(status.success());
    comm.close().await;
}

#[tokio::test]
async fn exec_reports_the_exit_signal() {
    let comm = connect().await;
    let (status, cap) = run(&comm, "echo before; kill -TERM $$; echo after").await;
    assert_eq!(
        status,
        ExitStatus {
            code: None,
            signal: Some("TERM".into())
        }
    );
    assert_eq!(cap.stream('o'), ["before"]);
    assert_eq!(status.to_string(), "killed by signal TERM");
}

/// Output is delivered while the command runs: the command only finishes
/// after the sink has seen its first line (on seeing it, a second command on
/// the same connection creates the file the first one waits for), so output
/// buffered until exit would hang the test until its timeout.
#[tokio::test]
async fn exec_streams_lines_while_the_command_runs() {
    struct Notify {
        seen: tokio::sync::mpsc::UnboundedSender<()>,
        lines: Vec<String>,
    }
    impl OutputSink for Notify {
        fn stdout_line(&mut self, line: &str) {
            if line == "waiting" {
                let _ = self.seen.send(());
            }
            self.lines.push(line.to_string());
        }
        fn stderr_line(&mut self, _: &str) {}
    }
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    let flag = dir.join("flag");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut sink = Notify {
        seen: tx,
        lines: vec![],
    };
    let cmd = format!("echo waiting; while [ ! -e '{flag}' ]; do sleep 0.05; done; echo done");
    let waiter = comm.exec(&cmd, &mut sink);
    let releaser = async {
        rx.recv().await.expect("first line seen");
        check(&comm, &format!("touch '{flag}'")).await;
    };
    let both = async { tokio::join!(waiter, releaser).0 };
    let status = tokio::time::timeout(Duration::from_secs(60), both)
        .await
        .expect("the first line was not delivered while the command ran")
        .unwrap();
    assert!(status.success());
    assert_eq!(sink.lines, ["waiting", "done"]);
}

#[tokio::test]
async fn exec_with_pty_runs_on_a_terminal() {
    let comm = connect().await;
    let (status, cap) = run(&comm, "tty").await;
    assert_eq!(status.code, Some(1), "no pty by default: {:?}", cap.lines);
    comm.close().await;

    let mut cfg = config();
    cfg.pty = true;
    let comm = Communicator::connect(cfg, CancellationToken::new())
        .await
        .unwrap();
    let (status, cap) = run(&comm, "tty; echo to-stderr >&2").await;
    assert!(status.success());
    let out = cap.stream('o');
    assert!(out[0].starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(out[1], "to-stderr", "a terminal merges stderr into stdout");
}

#[tokio::test]
async fn packer_style_sink_prints_like_packer() {
    let comm = connect().await;
    let mut sink = PackerStyleSink::new("amazon-ebs", Vec::new());
    let status = comm
        .exec("echo out1; echo err1 >&2", &mut sink)
        .await
        .unwrap();
    assert!(status.success());
    let text = String::from_utf8(sink.into_inner()).unwrap();
    assert_eq!(text, "    amazon-ebs: out1\n==> amazon-ebs: err1\n");
}

#[tokio::test]
async fn commands_share_one_connection_concurrently() {
    let comm = connect().await;
    let outs = tokio::join!(
        check(&comm, "sleep 0.2; echo 0"),
        check(&comm, "sleep 0.2; echo 1"),
        check(&comm, "sleep 0.2; echo 2"),
        check(&comm, "sleep 0.2; echo 3"),
    );
    assert_eq!(outs, ("0".into(), "1".into(), "2".into(), "3".into()));
}

#[tokio::test]
async fn cancelling_stops_a_running_command() {
    let cancel = CancellationToken::new();
    let comm = Communicator::connect(config(), cancel.clone())
        .await
        .unwrap();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        canceller.cancel();
    });
    let mut cap = Capture::default();
    let result =
        tokio::time::timeout(Duration::from_secs(20), comm.exec("sleep 60", &mut cap)).await;
    assert!(matches!(result, Ok(Err(SshError::Cancelled))), "{result:?}");
}

// ---------------------------------------------------------------- connection

#[tokio::test]
async fn wrong_host_key_is_rejected_without_retrying() {
    let mut cfg = config();
    let stranger = new_key().public_key().to_openssh().unwrap();
    cfg.host_keys = HostKeyPolicy::known_from_openssh(&[stranger]).unwrap();
    let err = match Communicator::connect(cfg, CancellationToken::new()).await {
        Ok(_) => panic!("connected despite an unknown host key"),
        Err(e) => e,
    };
    match &err {
        SshError::HostKeyMismatch {
            presented,
            expected,
            ..
        } => {
            assert!(presented.starts_with("ssh-ed25519 SHA256:"), "{err}");
            assert!(expected.contains("known keys"), "{err}");
        }
        other => panic!("expected HostKeyMismatch, got {other}"),
    }
}

#[tokio::test]
async fn connect_times_out_when_nothing_listens() {
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = config();
    cfg.port = port;
    cfg.timeout = Duration::from_secs(3);
    let err = match Communicator::connect(cfg, CancellationToken::new()).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    match &err {
        SshError::Timeout {
            attempts,
            last_error,
            ..
        } => {
            assert!(*attempts >= 2, "retried: {err}");
            assert!(last_error.contains("refused"), "{err}");
        }
        other => panic!("expected Timeout, got {other}"),
    }
}

#[tokio::test]
async fn rejected_key_fails_after_the_handshake_attempts() {
    let mut cfg = config();
    cfg.auth = Auth::PrivateKey(pem(&new_key()));
    cfg.handshake_attempts = 2;
    let err = match Communicator::connect(cfg, CancellationToken::new()).await {
        Ok(_) => panic!("logged in with an unauthorized key"),
        Err(e) => e,
    };
    assert!(
        matches!(err, SshError::HandshakeFailed { attempts: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("authentication as"), "{err}");
}

#[tokio::test]
async fn unreadable_private_key_is_reported_before_dialling() {
    let mut cfg = config();
    cfg.auth = Auth::PrivateKey("not a key".into());
    let err = Communicator::connect(cfg, CancellationToken::new())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, SshError::Credentials { .. }), "{err}");
}

#[tokio::test]
async fn reconnects_after_the_server_drops_the_connection() {
    let mut cfg = config();
    cfg.host_keys = HostKeyPolicy::PinFirstSeen;
    let mut comm = Communicator::connect(cfg, CancellationToken::new())
        .await
        .unwrap();
    let first = check(&comm, "echo $PPID").await;
    // Kill this session's sshd process: the server side drops, as in a reboot.
    let mut cap = Capture::default();
    let err = comm
        .exec("kill -9 $PPID; sleep 5", &mut cap)
        .await
        .unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    assert!(comm.is_closed());
    let err = comm.exec("true", &mut cap).await.unwrap_err();
    assert!(err.is_disconnect(), "{err}");

    comm.ensure_connected().await.unwrap();
    assert!(!comm.is_closed());
    let second = check(&comm, "echo $PPID").await;
    assert_ne!(
        first, second,
        "a new sshd session serves the reconnected communicator"
    );
    // An explicit reconnect of a live connection replaces it; the pinned key still matches.
    comm.reconnect().await.unwrap();
    assert_eq!(check(&comm, "echo again").await, "again");
    comm.close().await;
}

#[tokio::test]
async fn connects_through_a_bastion() {
    let (lab, key) = lab_and_key();
    let mut cfg = config();
    // The lab sshd is its own bastion: the inner connection goes through a direct-tcpip channel.
    cfg.bastion = Some(Bastion {
        host: lab.ssh_host().to_string(),
        port: lab.ssh_port(),
        user: lab.ssh_user().to_string(),
        auth: Auth::PrivateKey(key.to_string()),
        host_keys: cfg.host_keys.clone(),
    });
    let comm = Communicator::connect(cfg, CancellationToken::new())
        .await
        .unwrap();
    // Through the tunnel sshd sees the client address of the bastion's forwarding, not ours.
    let via = check(&comm, "echo $SSH_CONNECTION").await;
    assert!(via.starts_with("127.0.0.1 "), "{via}");
    let dir = RemoteDir::new(&comm).await;
    comm.upload_bytes(b"through the bastion", &dir.join("f"), 0o644)
        .await
        .unwrap();
    assert_eq!(
        check(&comm, &format!("cat '{}'", dir.join("f"))).await,
        "through the bastion"
    );
}

// ---------------------------------------------------------------- uploads

#[tokio::test]
async fn upload_dir_to_absent_destination_copies_contents_byte_for_byte_with_modes() {
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    let local = tempfile::tempdir().unwrap();
    let tree = make_tree(local.path());
    let dst = dir.join("absent");
    let stats = comm.upload_path(&tree, &dst).await.unwrap();
    assert_eq!((stats.files, stats.dirs), (6, 3));
    assert_eq!(remote_manifest(&comm, &dst).await, expected_manifest(&tree));
    assert_eq!(mode_of(&comm, &dst).await, "750");
    assert_eq!(check(&comm, &format!("'{dst}/run.sh'")).await, "ran");
}

/// As scp: a group-writable checkout lands under the remote umask (0664 -> 0644, 0775 -> 0755 with the
/// usual 022), and set-uid bits are not sent.
#[tokio::test]
async fn uploads_land_under_the_remote_umask_as_scp_does() {
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    assert_eq!(check(&comm, "umask").await, "0022", "the lab user's umask");
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("checkout");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("sub/file"), "x").unwrap();
    fs::write(tree.join("tool"), "y").unwrap();
    set_mode(&tree.join("sub/file"), 0o664);
    set_mode(&tree.join("tool"), 0o4775);
    set_mode(&tree.join("sub"), 0o775);
    set_mode(&tree, 0o775);
    let dst = dir.join("landed");
    comm.upload_path(&tree, &dst).await.unwrap();
    assert_eq!(mode_of(&comm, &dst).await, "755");
    assert_eq!(mode_of(&comm, &format!("{dst}/sub")).await, "755");
    assert_eq!(mode_of(&comm, &format!("{dst}/sub/file")).await, "644");
    assert_eq!(mode_of(&comm, &format!("{dst}/tool")).await, "755");
    let one = dir.join("one");
    comm.upload_path(&tree.join("sub/file"), &one)
        .await
        .unwrap();
    assert_eq!(mode_of(&comm, &one).await, "644");
}

#[tokio::test]
async fn upload_dir_to_existing_destination_nests_it() {
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    let local = tempfile::tempdir().unwrap();
    let tree = make_tree(local.path());
    let dst = dir.join("exists");
    check(&comm, &format!("mkdir '{dst}'")).await;
    comm.upload_path(&tree, &dst).await.unwrap();
    assert_eq!(check(&comm, &format!("ls '{dst}'")).await, "tree");
    assert_eq!(
        remote_manifest(&comm, &format!("{dst}/tree")).await,
        expected_manifest(&tree)
    );
}

#[tokio::test]
async fn upload_dir_with_slash_to_existing_destination_fills_it() {
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    let local = tempfile::tempdir().unwrap();
    let tree = make_tree(local.path());
    let dst = dir.join("exists");
    check(&comm, &format!("mkdir '{dst}' && chmod 711 '{dst}'")).await;
    let src = format!("{}/", tree.display());
    comm.upload_path(Path::new(&src), &dst).await.unwrap();
    assert_eq!(remote_manifest(&comm, &dst).await, expected_manifest(&tree));
    assert_eq!(
        mode_of(&comm, &dst).await,
        "711",
        "an existing destination keeps its mode"
    );
}

#[tokio::test]
async fn upload_dir_with_slash_to_absent_destination_creates_it() {
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    let local = tempfile::tempdir().unwrap();
    let tree = make_tree(local.path());
    let dst = dir.join("new/parents/dst");
    let src = format!("{}/", tree.display());
    comm.upload_path(Path::new(&src), &dst).await.unwrap();
    assert_eq!(remote_manifest(&comm, &dst).await, expected_manifest(&tree));
}

#[tokio::test]
async fn upload_file_destinations() {
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("one.sh");
    fs::write(&file, "#!/bin/sh\necho one\n").unwrap();
    set_mode(&file, 0o751);
    check(&comm, &format!("mkdir '{}'", dir.join("d"))).await;

    // file → existing dir with slash: dir/<name>
    comm.upload_path(&file, &dir.join("d/")).await.unwrap();
    assert_eq!(
        check(&comm, &format!("'{}'", dir.join("d/one.sh"))).await,
        "one"
    );
    assert_eq!(mode_of(&comm, &dir.join("d/one.sh")).await, "751");
    // file → path that is not a directory: written as that path
    comm.upload_path(&file, &dir.join("renamed")).await.unwrap();
    assert_eq!(
        check(&comm, &format!("cat '{}'", dir.join("renamed"))).await,
        "#!/bin/sh\necho one"
    );
    assert_eq!(mode_of(&comm, &dir.join("renamed")).await, "751");
    // file → existing dir without slash: dir/<name> (Packer fails here)
    check(&comm, &format!("mkdir '{}'", dir.join("e"))).await;
    comm.upload_path(&file, &dir.join("e")).await.unwrap();
    assert_eq!(
        check(&comm, &format!("ls '{}'", dir.join("e"))).await,
        "one.sh"
    );
}

#[tokio::test]
async fn upload_bytes_writes_content_with_mode() {
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    let path = dir.join("sub/script.sh");
    comm.upload_bytes(b"#!/bin/sh\necho \"it's me\"\n", &path, 0o700)
        .await
        .unwrap();
    assert_eq!(check(&comm, &format!("'{path}'")).await, "it's me");
    assert_eq!(mode_of(&comm, &path).await, "700");
    let err = comm.upload_bytes(b"x", &dir.path, 0o644).await.unwrap_err();
    assert!(matches!(err, SshError::RemoteTransfer { .. }), "{err}");
    assert!(err.to_string().contains("Is a directory"), "{err}");
}

#[tokio::test]
async fn upload_failure_names_the_paths_and_the_remote_error() {
    let comm = connect().await;
    let local = tempfile::tempdir().unwrap();
    let tree = make_tree(local.path());
    let err = comm
        .upload_path(&tree, "/proc/bakery-cannot-write-here")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SshError::RemoteTransfer { .. }), "{text}");
    assert!(text.contains(&tree.display().to_string()), "{text}");
    assert!(text.contains("/proc/bakery-cannot-write-here"), "{text}");
    assert!(text.contains("exit status"), "{text}");
    // The connection is still usable afterwards.
    assert_eq!(check(&comm, "echo fine").await, "fine");
}

#[tokio::test]
async fn upload_of_a_missing_local_path_is_a_local_error() {
    let comm = connect().await;
    let err = comm
        .upload_path(Path::new("/nonexistent/bakery"), "/tmp/x")
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Local { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/bakery"), "{err}");
}

// ---------------------------------------------------------------- downloads

#[tokio::test]
async fn download_tree_and_file() {
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    let local = tempfile::tempdir().unwrap();
    let tree = make_tree(local.path());
    let remote = dir.join("up");
    comm.upload_path(&tree, &remote).await.unwrap();

    // directory → absent local path: contents there, modes kept
    let back = local.path().join("back");
    let stats = comm.download_path(&remote, &back).await.unwrap();
    assert_eq!(stats.files, 6);
    assert_eq!(local_manifest(&back), expected_manifest(&tree));
    assert_eq!(
        fs::metadata(&back).unwrap().permissions().mode() & 0o777,
        0o750
    );

    // directory → existing local dir: nested under its name
    let into = local.path().join("into");
    fs::create_dir(&into).unwrap();
    comm.download_path(&remote, &into).await.unwrap();
    assert_eq!(local_manifest(&into.join("up")), expected_manifest(&tree));

    // file → existing local dir, and → a file path
    comm.download_path(&format!("{remote}/run.sh"), &into)
        .await
        .unwrap();
    assert_eq!(
        fs::read(into.join("run.sh")).unwrap(),
        fs::read(tree.join("run.sh")).unwrap()
    );
    assert_eq!(
        fs::metadata(into.join("run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    let named = local.path().join("named.bin");
    comm.download_path(&format!("{remote}/sub/b.bin"), &named)
        .await
        .unwrap();
    assert_eq!(
        fs::read(&named).unwrap(),
        fs::read(tree.join("sub/b.bin")).unwrap()
    );

    // missing remote path: a remote error naming it
    let err = comm
        .download_path(&dir.join("missing"), &into)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("missing: No such file or directory"),
        "{err}"
    );
}

#[tokio::test]
async fn download_local_failure_is_reported_and_the_connection_stays_usable() {
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    // Larger than what is drained after the local side gives up.
    check(
        &comm,
        &format!("head -c 8388608 /dev/zero > '{}'", dir.join("big")),
    )
    .await;
    let local = tempfile::tempdir().unwrap();
    let blocker = local.path().join("plainfile");
    fs::write(&blocker, "").unwrap();
    let err = comm
        .download_path(&dir.join("big"), &blocker.join("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Local { .. }), "{err}");
    assert!(err.to_string().contains("plainfile"), "{err}");
    assert_eq!(check(&comm, "echo still here").await, "still here");
}

#[tokio::test]
async fn download_reports_an_unreadable_remote_file() {
    let comm = connect().await;
    let dir = RemoteDir::new(&comm).await;
    let tree = dir.join("tree");
    check(&comm, &format!("mkdir '{tree}' && echo ok > '{tree}/ok' && echo no > '{tree}/locked' && chmod 000 '{tree}/locked'")).await;
    let local = tempfile::tempdir().unwrap();
    let err = comm
        .download_path(&tree, &local.path().join("t"))
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::RemoteTransfer { .. }), "{err}");
    assert!(err.to_string().contains("locked"), "{err}");
}

/// A TCP front for the lab's sshd that behaves like a booting instance: the first `drops` connections are
/// accepted and closed before any banner; later ones are relayed to the real sshd.
async fn booting_front(drops: usize) -> u16 {
    let (lab, _) = lab_and_key();
    let upstream = format!("{}:{}", lab.ssh_host(), lab.ssh_port());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            n += 1;
            if n <= drops {
                drop(client);
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn dropped_banners_while_booting_do_not_count_as_handshake_attempts() {
    // Packer counts only authentication failures against ssh_handshake_attempts; a booting instance drops
    // connections many more times than that before sshd is up for good.
    let mut cfg = config();
    cfg.port = booting_front(3).await;
    cfg.handshake_attempts = 2;
    let comm = Communicator::connect(cfg, CancellationToken::new())
        .await
        .expect("connects once the instance has booted");
    let (status, _) = run(&comm, "true").await;
    assert!(status.success());
}
