//! `--host-key-check=console` on the lab: bake reads the host-key fingerprints the "instance" printed to
//! its console (the lab's moto shows cloud-init's blocks for the lab sshd's keys in `GetConsoleOutput`) and
//! connects only to a key among them; when the console shows other keys, the build fails with the
//! rejection and leaves nothing behind.

use crate::common;

use bakery_lab::Lab;
use common::*;
use russh::keys::{HashAlg, PublicKey};

/// `SHA256:…` of each of the lab sshd's host keys.
fn lab_fingerprints(lab: &Lab) -> Vec<String> {
    lab.host_public_keys()
        .iter()
        .map(|line| {
            PublicKey::from_openssh(line)
                .unwrap()
                .fingerprint(HashAlg::Sha256)
                .to_string()
        })
        .collect()
}

/// Puts the lab's console back to the lab's own host keys, even when the test fails.
struct ConsoleShows<'a>(&'a Lab);

impl<'a> ConsoleShows<'a> {
    fn set(lab: &'a Lab, mode: &str) -> Self {
        lab.set_console_host_keys(mode);
        ConsoleShows(lab)
    }
}

impl Drop for ConsoleShows<'_> {
    fn drop(&mut self) {
        self.0.set_console_host_keys("lab");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn console_host_key_check_connects_to_the_key_the_console_shows() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let _console = ConsoleShows::set(lab, "lab");
    let c = clients(lab).await;
    let s = Scratch::new(lab, "hostkeys");
    let name = lab.unique("hostkeys");
    let tpl = s.write(
        "t.json",
        &template(&name, "", r#"[{"type":"shell","inline":["echo checked"]}]"#),
    );
    let vars = lab.var_file();
    lab.reset_request_counts();
    let out = tokio::task::spawn_blocking({
        let mut cmd = s.bake(
            lab,
            lab.moto_url(),
            &[
                "-color=false",
                "--host-key-check=console",
                "-var-file",
                vars.to_str().unwrap(),
                tpl.to_str().unwrap(),
            ],
        );
        cmd.env_remove("BAKERY_HOST_KEY_CHECK");
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("checked"), "{t}");
    assert!(t.contains("Host key fingerprints on the console"), "{t}");
    for fp in lab_fingerprints(lab) {
        assert!(t.contains(&fp), "{fp} shown: {t}");
    }
    let counts = lab.request_counts();
    let asked = counts.get("GetConsoleOutput").copied().unwrap_or(0);
    assert!(asked >= 1, "GetConsoleOutput requested: {counts:?}");
    assert_eq!(amis_named(&c, &name).await.len(), 1);
    remove_amis_named(&c, &name).await;
    assert_nothing_left(&c, "after a console-checked bake").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_fingerprints_on_the_console_refuse_the_host_and_leave_nothing() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let _console = ConsoleShows::set(lab, "other");
    let c = clients(lab).await;
    let s = Scratch::new(lab, "hostkeys-other");
    let name = lab.unique("hostkeys-other");
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            "",
            r#"[{"type":"shell","inline":["echo provisioner-ran-marker"]}]"#,
        ),
    );
    let vars = lab.var_file();
    lab.reset_request_counts();
    // The opt-in through the environment this time.
    let out = tokio::task::spawn_blocking({
        let mut cmd = s.bake(
            lab,
            lab.moto_url(),
            &[
                "-color=false",
                "-var-file",
                vars.to_str().unwrap(),
                tpl.to_str().unwrap(),
            ],
        );
        cmd.env("BAKERY_HOST_KEY_CHECK", "console");
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("SSH host key check failed (--host-key-check=console"),
        "{t}"
    );
    assert!(
        t.contains("expected one of the fingerprints [SHA256:"),
        "{t}"
    );
    // The rejection names the key presented: one of the lab sshd's.
    assert!(
        lab_fingerprints(lab)
            .iter()
            .any(|fp| t.contains(&format!("presented ssh-ed25519 {fp}"))
                || t.contains(&format!("presented ecdsa-sha2-nistp256 {fp}"))),
        "{t}"
    );
    assert!(
        !t.contains("provisioner-ran-marker"),
        "no provisioner ran: {t}"
    );
    assert!(
        lab.request_counts()
            .get("GetConsoleOutput")
            .copied()
            .unwrap_or(0)
            >= 1
    );
    assert!(amis_named(&c, &name).await.is_empty());
    assert_nothing_left(&c, "after a host key the console did not show").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_fingerprints_on_the_console_fail_the_build_instead_of_trusting_the_first_key() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let _console = ConsoleShows::set(lab, "none");
    let c = clients(lab).await;
    let s = Scratch::new(lab, "hostkeys-none");
    let name = lab.unique("hostkeys-none");
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            r#","ssh_timeout":"3s""#,
            r#"[{"type":"shell","inline":["echo provisioner-ran-marker"]}]"#,
        ),
    );
    let vars = lab.var_file();
    let out = tokio::task::spawn_blocking({
        let mut cmd = s.bake(
            lab,
            lab.moto_url(),
            &[
                "-color=false",
                "-host-key-check=console",
                "-var-file",
                vars.to_str().unwrap(),
                tpl.to_str().unwrap(),
            ],
        );
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("--host-key-check=console: instance i-")
            && t.contains("printed no SSH host key fingerprints to its console within")
            && t.contains("no host key fingerprints on the console yet"),
        "{t}"
    );
    assert!(
        !t.contains("provisioner-ran-marker"),
        "no provisioner ran: {t}"
    );
    assert!(amis_named(&c, &name).await.is_empty());
    assert_nothing_left(&c, "after a console without fingerprints").await;
}
