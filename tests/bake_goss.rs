//! The goss provisioner on the lab: the plugin's commands reach the instance in order, with the
//! template's options; the specs come back; a failing validate fails the build unless `inspect`. The
//! instance's goss is a recording stand-in uploaded by the template itself (`skip_install` with its
//! `download_path`): the lab has no internet to download goss from, and the stand-in shows exactly how
//! goss was called.

use crate::common::{SERIAL, Scratch, assert_nothing_left, clients, template, text};
use bakery_lab::Lab;

/// The stand-in: records its working directory and arguments, prints a spec for `render`, and fails
/// `validate` when `SHIM_FAIL` is set (through `vars_env`).
const GOSS_SHIM: &str = r#"#!/bin/sh
echo "$PWD|$*" >> "$(dirname "$0")/calls.log"
case "$*" in
  *" render"*) echo "rendered: $*" ;;
  *" validate"*) [ -z "$SHIM_FAIL" ] || { echo "1 failed" >&2; exit 1; } ;;
esac
"#;

fn goss_template(name: &str, remote: &str, tests: &str, extra: &str) -> String {
    let provisioners = format!(
        r#"[{{"type":"file","source":"goss-shim.sh","destination":"{remote}/goss"}},
            {{"type":"shell","inline":["chmod 755 {remote}/goss"]}},
            {{"type":"goss","skip_install":true,"download_path":"{remote}/goss","remote_path":"{remote}/specs",
              "tests":["{tests}"],"vars_file":"{tests}/vars.yaml","goss_file":"goss.yaml","format":"json",
              "vars_inline":{{"PROVIDER":"amazon","OS":"ubuntu"}}{extra}}}]"#
    );
    template(name, "", &provisioners)
}

#[tokio::test(flavor = "multi_thread")]
async fn goss_runs_the_plugins_commands_on_the_instance_and_fetches_the_specs() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "goss");
    let name = lab.unique("goss");
    let remote = format!("/tmp/{}", lab.unique("goss-instance"));
    s.write("goss-shim.sh", GOSS_SHIM);
    std::fs::create_dir(s.dir.join("specs")).unwrap();
    s.write(
        "specs/goss.yaml",
        "file:\n  /etc/hostname:\n    exists: true\n",
    );
    s.write("specs/vars.yaml", "x: 1\n");
    let specs = s.dir.join("specs");
    let tpl = s.write(
        "t.json",
        &goss_template(&name, &remote, specs.to_str().unwrap(), ""),
    );
    let out = s.run_with_lab_vars(lab, &tpl);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("Provisioning with Goss"), "{t}");
    assert!(t.contains("Goss validate ran successfully"), "{t}");
    // The instance (the lab's sshd runs on this machine) got the specs and these calls, in this order.
    let calls = std::fs::read_to_string(format!("{remote}/calls.log")).expect("goss was called");
    let calls: Vec<&str> = calls.lines().collect();
    let inline = r#"--vars-inline {"OS":"ubuntu","PROVIDER":"amazon"}"#;
    let args = format!("--gossfile goss.yaml --vars {remote}/specs/vars.yaml {inline}");
    assert_eq!(
        calls,
        [
            format!("{remote}/specs|{args} render"),
            format!("{remote}/specs|{args} render -d"),
            format!("{remote}/specs|{args} validate --retry-timeout 0s --sleep 1s -f json"),
        ],
    );
    assert!(
        std::path::Path::new(&format!("{remote}/specs/specs/goss.yaml")).is_file(),
        "the tests directory is uploaded into remote_path"
    );
    let spec = std::fs::read_to_string(s.dir.join("goss-spec.yaml")).expect("the spec downloaded");
    assert!(spec.starts_with("rendered: "), "{spec}");
    assert!(s.dir.join("debug-goss-spec.yaml").is_file());
    crate::common::remove_amis_named(&c, &name).await;

    // validate fails: the build fails; with inspect, it is reported and the build goes on.
    for (inspect, ok) in [(false, false), (true, true)] {
        let name = lab.unique("goss-fail");
        let tpl = s.write(
            "fail.json",
            &goss_template(
                &name,
                &remote,
                specs.to_str().unwrap(),
                &format!(r#","vars_env":{{"SHIM_FAIL":"1"}},"inspect":{inspect}"#),
            ),
        );
        let out = s.run_with_lab_vars(lab, &tpl);
        let t = text(&out);
        assert_eq!(out.status.success(), ok, "inspect {inspect}: {t}");
        if inspect {
            assert!(t.contains("Goss validate failed"), "{t}");
        } else {
            assert!(t.contains("goss validate: non-zero exit status"), "{t}");
        }
        crate::common::remove_amis_named(&c, &name).await;
    }
    let _ = std::fs::remove_dir_all(&remote);
    assert_nothing_left(&c, "after the goss bakes").await;
}
