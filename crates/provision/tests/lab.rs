//! The provisioners against the lab's real OpenSSH sshd (bakery-lab).
//!
//! The lab "instance" is this machine: remote commands run as the lab user
//! (`admin`) and their files land on the local filesystem, so every test
//! works in its own scratch directory `/tmp/bakery-prov-<unique>` (created
//! here, writable by the lab user, removed at the end) and checks results by
//! reading the files back directly. Configurations are decoded from template
//! JSON by bakery-template, as `bake` gets them.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bakery_core::ui::{Mode, Ui, UiOptions};
use bakery_lab::Lab;
use bakery_provision::{ProvisionContext, ProvisionError, run_provisioner, run_shell_local};
use bakery_ssh::{Auth, Communicator, HostKeyPolicy, SshConfig};
use bakery_template::late::LateContext;
use bakery_template::load::load_template;
use bakery_template::template::parse_text;
use bakery_template::{LoadOptions, ProvisionerConfig};
use russh::keys::ssh_key::{Algorithm, LineEnding, PrivateKey};
use tokio_util::sync::CancellationToken;

const BUILD: &str = "lab-build";

/// The lab, with this process's login key authorized (once).
fn lab_and_key() -> (&'static Lab, &'static str) {
    static KEY: OnceLock<String> = OnceLock::new();
    let lab = Lab::shared();
    let key = KEY.get_or_init(|| {
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("ed25519 key");
        lab.authorize_key(&key.public_key().to_openssh().expect("public key line"));
        key.to_openssh(LineEnding::LF)
            .expect("encode key")
            .to_string()
    });
    (lab, key.as_str())
}

async fn connect() -> Communicator {
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
    Communicator::connect(cfg, CancellationToken::new())
        .await
        .expect("connect to the lab sshd")
}

/// A scratch directory on the (shared) filesystem, writable by the lab user.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let (lab, _) = lab_and_key();
        let path = PathBuf::from(format!("/tmp/{}", lab.unique("bakery-prov")));
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
        Scratch(path)
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn path(&self, rel: &str) -> String {
        self.join(rel).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Everything the UI printed, for assertions.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn ui(secrets: &[&str]) -> (Ui, Captured) {
    let out = Captured::default();
    let opts = UiOptions {
        mode: Mode::Human,
        color: false,
        timestamps: false,
        progress: false,
        secrets: secrets.iter().map(|s| s.to_string()).collect(),
    };
    (Ui::to_writer(opts, Box::new(out.clone())), out)
}

/// The provisioners of a template whose `provisioners` array is `json`.
fn provisioners(json: &str) -> Vec<ProvisionerConfig> {
    let text = format!(
        r#"{{"builders":[{{"type":"amazon-ebs","name":"{BUILD}","region":"us-east-1","source_ami":"ami-12345678","instance_type":"t2.micro","ssh_username":"admin","ami_name":"test-ami"}}],"provisioners":{json}}}"#
    );
    let path = Path::new("/nonexistent/template.json");
    let tpl = parse_text(path, path, text).unwrap_or_else(|d| panic!("{d}"));
    let mut loaded = load_template(tpl, &LoadOptions::default()).unwrap_or_else(|d| panic!("{d}"));
    loaded.builds.remove(0).provisioners
}

fn one(json: &str) -> ProvisionerConfig {
    provisioners(&format!("[{json}]")).remove(0)
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn late() -> LateContext {
    let mut late = LateContext::default();
    late.build.insert("ID".into(), "i-0123456789".into());
    late
}

async fn provision(
    comm: &mut Communicator,
    ui: &Ui,
    p: &ProvisionerConfig,
) -> Result<(), ProvisionError> {
    let mut cx = ProvisionContext {
        comm,
        ui,
        build_name: BUILD.into(),
        build_type: "amazon-ebs".into(),
        late: late(),
        cancel: CancellationToken::new(),
    };
    run_provisioner(p, &mut cx).await
}

/// `env` output (one `K=V` per line) as a map.
fn read_env(path: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write_script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn shell_script_gets_exact_environment_and_packers_sequence() {
    let scratch = Scratch::new();
    let local = tempfile::tempdir().unwrap();
    let env_out = scratch.path("env.txt");
    let mode_out = scratch.path("mode.txt");
    // CRLF endings: the script must still run (non-binary scripts get Unix endings).
    let script = write_script(
        local.path(),
        "setup.sh",
        &format!(
            "#!/bin/sh\r\nenv > {env_out}\r\nstat -c %a \"$0\" > {mode_out}\r\necho hello-from-script\r\necho to-stderr >&2\r\n"
        ),
    );
    let remote = scratch.path("remote-script.sh");
    let tricky = r#"it's "quoted" $HOME `id` \ done"#;
    let p = one(&format!(
        r#"{{"type":"shell","script":{},"remote_path":{},
            "environment_vars":[{},"PLAIN=from-list","EMPTY=","WITH_EQ=a=b","BUILD_ID={{{{ build `ID` }}}}"],
            "env":{{"PLAIN":"from-env"}}}}"#,
        js(&script),
        js(&remote),
        js(&format!("TRICKY={tricky}"))
    ));
    let (ui, out) = ui(&[]);
    let mut comm = connect().await;
    provision(&mut comm, &ui, &p).await.unwrap();

    let env = read_env(Path::new(&env_out));
    assert_eq!(env["TRICKY"], tricky);
    assert_eq!(env["PLAIN"], "from-env", "env overrides environment_vars");
    assert_eq!(env["EMPTY"], "");
    assert_eq!(env["WITH_EQ"], "a=b");
    assert_eq!(
        env["BUILD_ID"], "i-0123456789",
        "environment_vars are rendered late"
    );
    assert_eq!(env["PACKER_BUILD_NAME"], BUILD);
    assert_eq!(env["PACKER_BUILDER_TYPE"], "amazon-ebs");
    assert_eq!(
        fs::read_to_string(&mode_out).unwrap(),
        "755\n",
        "chmod 0755 before running"
    );
    assert!(
        !Path::new(&remote).exists(),
        "the uploaded script is removed"
    );
    let text = out.text();
    assert!(
        text.contains(&format!(
            "==> {BUILD}: Provisioning with shell script: {script}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("    {BUILD}: hello-from-script\n")),
        "{text}"
    );
    assert!(text.contains("to-stderr"), "{text}");
    comm.close().await;
}

#[tokio::test]
async fn scripts_run_in_order_after_pause_before() {
    let scratch = Scratch::new();
    let local = tempfile::tempdir().unwrap();
    let log = scratch.path("order.txt");
    let first = write_script(
        local.path(),
        "first.sh",
        &format!("#!/bin/sh\necho first >> {log}\n"),
    );
    let second = write_script(
        local.path(),
        "second.sh",
        &format!("#!/bin/sh\necho second >> {log}\n"),
    );
    let p = one(&format!(
        r#"{{"type":"shell","scripts":[{},{}],"pause_before":"10ms"}}"#,
        js(&first),
        js(&second)
    ));
    let (ui, out) = ui(&[]);
    let mut comm = connect().await;
    provision(&mut comm, &ui, &p).await.unwrap();
    assert_eq!(fs::read_to_string(&log).unwrap(), "first\nsecond\n");
    let text = out.text();
    let expected = format!(
        "==> {BUILD}: Pausing 10ms before the next provisioner...\n==> {BUILD}: Provisioning with shell script: {first}\n==> {BUILD}: Provisioning with shell script: {second}\n"
    );
    assert_eq!(text, expected);
    comm.close().await;
}

#[tokio::test]
async fn inline_commands_render_late_and_run_under_sh_e() {
    let scratch = Scratch::new();
    let first = scratch.path("first.txt");
    let never = scratch.path("never.txt");
    let p = one(&format!(
        r#"{{"type":"shell","inline":[{}, {}, "false", {}]}}"#,
        js(&format!("echo 'instance {{{{ build `ID` }}}}' > {first}")),
        js(&format!("echo \"$0\" >> {first}")),
        js(&format!("echo unreachable > {never}")),
    ));
    let (ui, out) = ui(&[]);
    let mut comm = connect().await;
    let err = provision(&mut comm, &ui, &p).await.unwrap_err();
    match &err {
        ProvisionError::ExitCode { code, allowed, .. } => {
            assert_eq!(*code, 1);
            assert_eq!(allowed, &[0]);
        }
        other => panic!("expected an exit code error, got {other}"),
    }
    let text = fs::read_to_string(&first).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("instance i-0123456789"));
    // $0 is the uploaded script: it ran from the default /tmp/script_NNNN.sh.
    let script = lines.next().unwrap();
    assert!(
        script.starts_with("/tmp/script_") && script.ends_with(".sh"),
        "{script}"
    );
    assert!(
        !Path::new(&never).exists(),
        "#!/bin/sh -e stops at the first failure"
    );
    assert!(
        out.text()
            .contains("Provisioning with shell script: inline (4 lines)"),
        "{}",
        out.text()
    );
    // Packer leaves a failed script in place; remove ours.
    let _ = fs::remove_file(script);
    comm.close().await;
}

#[tokio::test]
async fn exit_codes_are_checked_against_valid_exit_codes() {
    let scratch = Scratch::new();
    let local = tempfile::tempdir().unwrap();
    let script = write_script(local.path(), "fail.sh", "#!/bin/sh\necho failing\nexit 3\n");
    let remote = scratch.path("fail.sh");
    let mut comm = connect().await;
    let (ui, _) = ui(&[]);

    let failing = one(&format!(
        r#"{{"type":"shell","script":{},"remote_path":{}}}"#,
        js(&script),
        js(&remote)
    ));
    let err = provision(&mut comm, &ui, &failing)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "shell: script {script} (run as {remote}): Script exited with non-zero exit status: 3. Allowed exit codes are: [0]"
        )
    );

    let allowed = one(&format!(
        r#"{{"type":"shell","script":{},"remote_path":{},"valid_exit_codes":[0,3]}}"#,
        js(&script),
        js(&remote)
    ));
    provision(&mut comm, &ui, &allowed).await.unwrap();
    assert!(
        !Path::new(&remote).exists(),
        "cleaned up after an allowed exit code"
    );
    comm.close().await;
}

/// Kills the sshd process serving this session (its nearest `sshd*` ancestor),
/// which drops the whole connection, as a reboot would.
const KILL_OWN_SESSION: &str = r#"#!/bin/sh
echo before-disconnect
p=$$
while [ "$p" -gt 1 ]; do
  case "$(cat /proc/$p/comm)" in
    sshd*) kill -9 "$p"; sleep 2; exit 0 ;;
  esac
  read -r _ _ _ p _ < /proc/$p/stat
done
echo "no sshd ancestor" >&2
exit 1
"#;

#[tokio::test]
async fn expect_disconnect_survives_a_dropped_connection_and_reconnects() {
    let scratch = Scratch::new();
    let local = tempfile::tempdir().unwrap();
    let script = write_script(local.path(), "drop.sh", KILL_OWN_SESSION);
    let remote = scratch.path("drop.sh");
    let after = scratch.path("after.txt");
    let ps = provisioners(&format!(
        r#"[{{"type":"shell","script":{s},"remote_path":{r},"expect_disconnect":true,"start_retry_timeout":"30s"}},
            {{"type":"shell","inline":[{a}]}}]"#,
        s = js(&script),
        r = js(&remote),
        a = js(&format!("echo reconnected > {after}")),
    ));
    let (ui, out) = ui(&[]);
    let mut comm = connect().await;
    provision(&mut comm, &ui, &ps[0]).await.unwrap();
    assert!(out.text().contains("before-disconnect"), "{}", out.text());
    // The clean-up ran after reconnecting, and the next provisioner works on the same communicator.
    assert!(
        !Path::new(&remote).exists(),
        "rm -f ran after the reconnect"
    );
    assert!(!comm.is_closed());
    provision(&mut comm, &ui, &ps[1]).await.unwrap();
    assert_eq!(fs::read_to_string(&after).unwrap(), "reconnected\n");
    comm.close().await;
}

#[tokio::test]
async fn an_unexpected_disconnect_is_an_error() {
    let scratch = Scratch::new();
    let local = tempfile::tempdir().unwrap();
    let script = write_script(local.path(), "drop.sh", KILL_OWN_SESSION);
    let remote = scratch.path("drop.sh");
    let p = one(&format!(
        r#"{{"type":"shell","script":{},"remote_path":{}}}"#,
        js(&script),
        js(&remote)
    ));
    let (ui, _) = ui(&[]);
    let mut comm = connect().await;
    let err = provision(&mut comm, &ui, &p).await.unwrap_err();
    assert!(
        matches!(err, ProvisionError::UnexpectedDisconnect { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("Script disconnected unexpectedly"),
        "{err}"
    );
    assert!(err.to_string().contains(&remote), "{err}");
}

#[tokio::test]
async fn use_env_var_file_sources_a_temporary_file_and_removes_it() {
    let scratch = Scratch::new();
    let env_out = scratch.path("env.txt");
    let folder = scratch.path("remote");
    fs::create_dir(&folder).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o777)).unwrap();
    let p = one(&format!(
        r#"{{"type":"shell","use_env_var_file":true,"remote_folder":{},
            "environment_vars":["SECRETISH=don't leak","OTHER=2"],
            "inline":[{}]}}"#,
        js(&folder),
        js(&format!("env > {env_out}")),
    ));
    let (ui, _) = ui(&[]);
    let mut comm = connect().await;
    provision(&mut comm, &ui, &p).await.unwrap();
    let env = read_env(Path::new(&env_out));
    assert_eq!(env["SECRETISH"], "don't leak");
    assert_eq!(env["OTHER"], "2");
    assert_eq!(env["PACKER_BUILD_NAME"], BUILD);
    let left: Vec<_> = fs::read_dir(&folder).unwrap().collect();
    assert!(
        left.is_empty(),
        "the var file and the script are removed: {left:?}"
    );
    comm.close().await;
}

#[tokio::test]
async fn file_uploads_a_tree_and_content_then_downloads_it_back() {
    let scratch = Scratch::new();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("site");
    fs::create_dir_all(tree.join("sub/empty")).unwrap();
    fs::write(tree.join("index.html"), "<h1>hi</h1>\n").unwrap();
    fs::write(tree.join("sub/run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(tree.join("sub/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();

    let up = scratch.path("up");
    let content_dst = scratch.path("motd");
    let down = local.path().join("down/copy");
    let ps = provisioners(&format!(
        r#"[{{"type":"file","source":{src},"destination":{up}}},
            {{"type":"file","content":"welcome\n","destination":{content}}},
            {{"type":"file","direction":"download","source":{up},"destination":{down}}}]"#,
        src = js(&tree.display().to_string()),
        up = js(&up),
        content = js(&content_dst),
        down = js(&down.display().to_string()),
    ));
    let (ui, out) = ui(&[]);
    let mut comm = connect().await;
    for p in &ps {
        provision(&mut comm, &ui, p).await.unwrap();
    }
    // Absent destination: the directory's contents land in it (Packer's scp rule).
    assert_eq!(
        fs::read_to_string(scratch.join("up/index.html")).unwrap(),
        "<h1>hi</h1>\n"
    );
    let mode = fs::metadata(scratch.join("up/sub/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(scratch.join("up/sub/empty").is_dir());
    assert_eq!(fs::read_to_string(&content_dst).unwrap(), "welcome\n");
    assert_eq!(
        fs::metadata(&content_dst).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // Downloaded into a path whose parent did not exist.
    assert_eq!(
        fs::read_to_string(down.join("index.html")).unwrap(),
        "<h1>hi</h1>\n"
    );
    assert_eq!(
        fs::read_to_string(down.join("sub/run.sh")).unwrap(),
        "#!/bin/sh\necho ran\n"
    );
    let text = out.text();
    assert!(
        text.contains(&format!(
            "==> {BUILD}: Uploading {} => {up}\n",
            tree.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "==> {BUILD}: Downloading {up} => {}\n",
            down.display()
        )),
        "{text}"
    );
    comm.close().await;
}

#[tokio::test]
async fn file_upload_of_a_missing_generated_source_fails_clearly() {
    let p = one(
        r#"{"type":"file","source":"/nonexistent/generated.tar","destination":"/tmp/x","generated":true}"#,
    );
    let (ui, _) = ui(&[]);
    let mut comm = connect().await;
    let err = provision(&mut comm, &ui, &p).await.unwrap_err().to_string();
    assert!(
        err.starts_with("file: reading source /nonexistent/generated.tar:"),
        "{err}"
    );
}

#[tokio::test]
async fn shell_local_runs_here_with_the_same_environment() {
    let local = tempfile::tempdir().unwrap();
    let env_out = local.path().join("env.txt");
    let tricky = "a 'quoted' value";
    let p = one(&format!(
        r#"{{"type":"shell-local","environment_vars":[{}],"inline":[{}, "echo local-output", "exit 4"],"valid_exit_codes":[4]}}"#,
        js(&format!("TRICKY={tricky}")),
        js(&format!("env > {}", env_out.display())),
    ));
    let ProvisionerConfig::ShellLocal(cfg) = &p else {
        panic!("{p:?}")
    };
    let (ui, out) = ui(&[]);
    run_shell_local(
        cfg,
        &ui,
        BUILD,
        "amazon-ebs",
        &late(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let env = read_env(&env_out);
    assert_eq!(env["TRICKY"], tricky);
    assert_eq!(env["PACKER_BUILDER_TYPE"], "amazon-ebs");
    let text = out.text();
    assert!(
        text.contains(&format!("    {BUILD}: local-output\n")),
        "{text}"
    );
    assert!(text.contains("Running local shell script: /"), "{text}");

    // A disallowed exit code fails, naming the provisioner and the code.
    let p = one(r#"{"type":"shell-local","inline":["exit 5"]}"#);
    let ProvisionerConfig::ShellLocal(cfg) = &p else {
        panic!("{p:?}")
    };
    let err = run_shell_local(
        cfg,
        &ui,
        BUILD,
        "amazon-ebs",
        &late(),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("shell-local: script "), "{err}");
    assert!(
        err.ends_with("Script exited with non-zero exit status: 5. Allowed exit codes are: [0]"),
        "{err}"
    );
}

#[tokio::test]
async fn max_retries_reruns_a_failed_provisioner() {
    let local = tempfile::tempdir().unwrap();
    let counter = local.path().join("count");
    // Fails on the first two attempts, succeeds on the third.
    let p = one(&format!(
        r#"{{"type":"shell-local","max_retries":2,"inline":[{}]}}"#,
        js(&format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; [ $n -ge 3 ]",
            c = counter.display()
        )),
    ));
    let (ui, out) = ui(&[]);
    let mut comm = connect().await;
    provision(&mut comm, &ui, &p).await.unwrap();
    assert_eq!(fs::read_to_string(&counter).unwrap(), "3\n");
    let text = out.text();
    assert!(text.contains("retrying with 2 trie(s) left"), "{text}");
    assert!(text.contains("retrying with 1 trie(s) left"), "{text}");

    // Out of retries: the error comes back, after "retry limit reached."
    let p = one(r#"{"type":"shell-local","max_retries":1,"inline":["exit 9"]}"#);
    let err = provision(&mut comm, &ui, &p).await.unwrap_err();
    assert!(
        matches!(err, ProvisionError::ExitCode { code: 9, .. }),
        "{err}"
    );
    assert!(
        out.text().contains("retry limit reached."),
        "{}",
        out.text()
    );
}

#[tokio::test]
async fn timeout_stops_a_provisioner_that_runs_too_long() {
    let local = tempfile::tempdir().unwrap();
    let marker = local.path().join("finished");
    let p = one(&format!(
        r#"{{"type":"shell-local","timeout":"1s","inline":[{}]}}"#,
        js(&format!("sleep 2; touch {}", marker.display())),
    ));
    let (ui, out) = ui(&[]);
    let mut comm = connect().await;
    let err = provision(&mut comm, &ui, &p).await.unwrap_err();
    assert!(matches!(err, ProvisionError::Timeout { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "shell-local provisioner timed out after 1s"
    );
    let text = out.text();
    assert!(
        text.contains("Setting a 1s timeout for the next provisioner..."),
        "{text}"
    );
    assert!(
        text.contains("Cancelling provisioner after a timeout..."),
        "{text}"
    );
    // The local command was killed, not left running: it would have touched the marker by now.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!marker.exists(), "the timed-out command kept running");
}

#[tokio::test]
async fn secrets_in_remote_output_are_masked() {
    let p = one(r#"{"type":"shell","inline":["echo the password is hunter2-secret"]}"#);
    let (ui, out) = ui(&["hunter2-secret"]);
    let mut comm = connect().await;
    provision(&mut comm, &ui, &p).await.unwrap();
    let text = out.text();
    assert!(text.contains("the password is <sensitive>"), "{text}");
    assert!(!text.contains("hunter2-secret"), "{text}");
    comm.close().await;
}
