//! bake on labs whose realism layer plays one AWS behaviour each (docs/lab.md): each test starts its own
//! lab with that profile, bakes, and checks both the outcome and that the behaviour really happened (the
//! layer's `injected` counts). Each fails on code that does not handle its behaviour.

use crate::common::*;
use bakery_lab::{Lab, Realism};

/// A lab of its own with `realism`.
fn lab_with(realism: Realism) -> Lab {
    Lab::start_with(&realism).unwrap_or_else(|e| panic!("{e}"))
}

/// Bakes the test template on `lab` with `extra` builder options and `env`; returns the output.
fn bake_on(
    lab: &Lab,
    prefix: &str,
    extra: &str,
    env: &[(&str, &str)],
) -> (std::process::Output, String) {
    let s = Scratch::new(lab, prefix);
    let name = lab.unique(prefix);
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            extra,
            r#"[{"type":"shell","inline":["echo baked"]}]"#,
        ),
    );
    let vars = lab.var_file();
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
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let t = text(&out);
    (out, t)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bake_survives_eventual_consistency() {
    // Every new key pair, group, instance and image is NotFound to its first uses.
    let lab = lab_with(Realism::profile("consistency").set("consistency.window_s", "30"));
    let (out, t) = bake_on(&lab, "consistent", "", &[]);
    assert!(out.status.success(), "{t}");
    let r = lab.realism();
    assert!(
        r.injected_total("consistency") >= 3,
        "the layer answered NotFound: {:?}",
        r
    );
    assert_nothing_left(
        &clients(&lab).await,
        "after a bake under eventual consistency",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bake_waits_out_a_booting_instance() {
    // sshd refuses connections, then drops a banner, then shows a first-boot host key, then refuses the
    // key until it is "installed": none of that may count against ssh_handshake_attempts.
    let lab = lab_with(Realism::profile("boot").with_ssh_front());
    let (out, t) = bake_on(&lab, "booting", r#", "ssh_handshake_attempts": 2"#, &[]);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("    amazon-ebs: baked"), "{t}");
    let r = lab.realism();
    assert!(
        r.injected_total("boot_refused") + r.injected_total("boot_auth") >= 1,
        "{r:?}"
    );
    assert_nothing_left(&clients(&lab).await, "after a bake on a booting instance").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_imdsv2_enforced_account_takes_a_bake_that_does_not_ask_for_optional() {
    let lab = lab_with(Realism::profile("imdsv2"));
    let (out, t) = bake_on(&lab, "imdsv2", "", &[]);
    assert!(
        out.status.success(),
        "unset http_tokens is left to the account: {t}"
    );
    let (out, t) = bake_on(
        &lab,
        "imdsv1",
        r#", "metadata_options": {"http_tokens": "optional"}"#,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("HttpTokens"), "AWS's refusal is shown: {t}");
    assert_eq!(lab.realism().injected("imdsv2", "RunInstances"), 1);
    assert_nothing_left(&clients(&lab).await, "after the IMDSv2 bakes").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_max_attempts_gives_each_wait_attempts_times_packers_delay() {
    // The AMI stays pending 6 s. AWS_MAX_ATTEMPTS=3 meant a 3 s wait (3 × 1 s); Packer's meaning is
    // 3 × 15 s.
    let lab = lab_with(
        Realism::profile("holds")
            .set("holds.image_pending_s", "6")
            .set("holds.jitter_s", "0"),
    );
    let (out, t) = bake_on(&lab, "attempts", "", &[("AWS_MAX_ATTEMPTS", "3")]);
    assert!(out.status.success(), "{t}");
    assert!(lab.realism().is_on("holds"));
    assert_nothing_left(&clients(&lab).await, "after the AWS_MAX_ATTEMPTS bake").await;
}
