//! Nothing leaks, whatever the timing: a bake interrupted (SIGINT, SIGTERM) or killed (SIGKILL, then
//! `bake cleanup`) while each of its AWS create calls is in flight — moto has carried the call out and the
//! proxy holds the answer back — or while it waits for its AMI, ends with nothing new of any kind in
//! either region used. Also a double Ctrl-C, whose run must name what is left and the command that
//! removes it.

use crate::common::fault_proxy::FaultProxy;
use crate::common::*;
use bakery_core::aws::Clients;
use bakery_lab::Lab;
use std::time::{Duration, Instant};

/// How long the proxy holds a chosen answer: long enough for the signal to land while the call is out.
const HOLD: Duration = Duration::from_secs(3);

/// One row of the matrix: the call in flight, and the template options that make the bake send it.
struct Row {
    action: &'static str,
    extra: &'static str,
    /// Which of the action's requests to hold (by their form body), given the lab's source AMI.
    when: fn(&str, &str) -> bool,
}

fn any(_: &str, _: &str) -> bool {
    true
}

/// The AMI wait's looks, not the source AMI's lookup.
fn new_image(body: &str, source: &str) -> bool {
    body.contains("ImageId") && !body.contains(source)
}

const COPY: &str = r#", "ami_regions": ["us-west-2"]"#;
const SPOT: &str = r#", "spot_price": "auto""#;
const IAM: &str = r#", "temporary_iam_instance_profile_policy_document": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]}"#;

fn rows() -> Vec<Row> {
    vec![
        Row {
            action: "CreateKeyPair",
            extra: "",
            when: any,
        },
        Row {
            action: "CreateSecurityGroup",
            extra: "",
            when: any,
        },
        Row {
            action: "RunInstances",
            extra: "",
            when: any,
        },
        Row {
            action: "CreateImage",
            extra: "",
            when: any,
        },
        Row {
            action: "DescribeImages",
            extra: "",
            when: new_image,
        },
        Row {
            action: "CopyImage",
            extra: COPY,
            when: any,
        },
        Row {
            action: "CreateLaunchTemplate",
            extra: SPOT,
            when: any,
        },
        Row {
            action: "CreateFleet",
            extra: SPOT,
            when: any,
        },
        Row {
            action: "CreateRole",
            extra: IAM,
            when: any,
        },
        Row {
            action: "CreateInstanceProfile",
            extra: IAM,
            when: any,
        },
    ]
}

/// What happened in one cell, for the failure message and the table in the test's output.
struct Cell {
    row: &'static str,
    signal: &'static str,
    code: Option<i32>,
    secs: f64,
}

/// Starts a bake through `proxy`, waits until the held call is out, sends `signals` (one or two
/// SIGINTs, a SIGTERM or a SIGKILL), and returns the exit code and output.
fn bake_and_signal(
    lab: &Lab,
    s: &Scratch,
    proxy: &FaultProxy,
    row: &Row,
    signals: &[&str],
) -> (Option<i32>, String) {
    let name = lab.unique("kill");
    let provisioners = r#"[{"type":"shell","inline":["echo provisioned"]}]"#;
    let tpl = s.write("t.json", &template(&name, row.extra, provisioners));
    let vars = lab.var_file();
    let args = ["-var-file", vars.to_str().unwrap(), tpl.to_str().unwrap()];
    let mut r = Running::spawn(s.bake(lab, &proxy.url, &args));
    let held = format!("held:{}", row.action);
    let deadline = Instant::now() + Duration::from_secs(120);
    while proxy.seen(&held) == 0 {
        if let Ok(Some(status)) = r.child.try_wait() {
            let (_, out) = r.finish();
            panic!(
                "{}: bake ended ({status}) before the call was held:\n{out}",
                row.action
            );
        }
        assert!(Instant::now() < deadline, "{}: never sent", row.action);
        std::thread::sleep(Duration::from_millis(50));
    }
    for (i, sig) in signals.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        r.signal(sig);
    }
    r.finish()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_create_call_in_flight_times_every_signal_leaves_nothing() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let mut cells = Vec::new();
    for row in rows() {
        for signal in ["-INT", "-TERM", "-KILL"] {
            let started = Instant::now();
            let baseline = inventory(&c).await;
            let proxy = FaultProxy::start(lab.moto_url(), vec![]).await;
            let source = lab.source_ami().to_string();
            let when = row.when;
            proxy.answer_late(row.action, HOLD, move |body| when(body, &source));
            let s = Scratch::new(lab, "kill");
            let (code, out) =
                tokio::task::block_in_place(|| bake_and_signal(lab, &s, &proxy, &row, &[signal]));
            let ctx = format!("{} × {signal}", row.action);
            if signal == "-KILL" {
                assert_eq!(code, None, "{ctx}: killed\n{out}");
                let cleanup = s.run(lab, lab.moto_url(), &["cleanup"]);
                assert!(
                    cleanup.status.success(),
                    "{ctx}: bake cleanup\n{}",
                    text(&cleanup)
                );
            } else {
                assert_eq!(code, Some(1), "{ctx}\n{out}");
                assert!(out.contains("Interrupt received"), "{ctx}\n{out}");
            }
            assert_nothing_new(&c, &baseline, &[], &ctx).await;
            cells.push(Cell {
                row: row.action,
                signal,
                code,
                secs: started.elapsed().as_secs_f64(),
            });
        }
    }
    println!("| call in flight | signal | bake's exit | wall time (s) | left |");
    for c in &cells {
        println!(
            "| {} | {} | {} | {:.1} | 0 |",
            c.row,
            c.signal.trim_start_matches('-'),
            c.code.map_or("killed".to_string(), |c| c.to_string()),
            c.secs
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_double_ctrl_c_names_what_is_left_and_bake_cleanup_removes_it() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let baseline = inventory(&c).await;
    let proxy = FaultProxy::start(lab.moto_url(), vec![]).await;
    proxy.answer_late("RunInstances", HOLD, |_| true);
    let s = Scratch::new(lab, "double");
    let row = Row {
        action: "RunInstances",
        extra: "",
        when: any,
    };
    let (code, out) =
        tokio::task::block_in_place(|| bake_and_signal(lab, &s, &proxy, &row, &["-INT", "-INT"]));
    assert_eq!(code, Some(1), "{out}");
    let cmd = out
        .lines()
        .find_map(|l| l.split("Remove them with: ").nth(1))
        .unwrap_or_else(|| panic!("no cleanup command in:\n{out}"))
        .trim()
        .to_string();
    let run_id = cmd.strip_prefix("bake cleanup --run-id ").unwrap();
    assert_eq!(run_id.len(), 36, "the full run id: {cmd}");
    assert!(out.contains("instance i-"), "the instance is named:\n{out}");
    let cleanup = s.run(lab, lab.moto_url(), &["cleanup", "--run-id", run_id]);
    let t = text(&cleanup);
    assert!(cleanup.status.success(), "{t}");
    assert!(t.contains("removed instance i-"), "{t}");
    assert_nothing_new(&c, &baseline, &[], "after a double Ctrl-C and bake cleanup").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_after_the_build_succeeded_keeps_the_ami_and_exits_0() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let baseline = inventory(&c).await;
    let proxy = FaultProxy::start(lab.moto_url(), vec![]).await;
    // The cleanup of a successful spot build deletes its fleet (an on-demand builder is released while
    // its AMI completes, so its cleanup has nothing left): the interrupt lands then.
    proxy.answer_late("DeleteFleets", HOLD, |_| true);
    let s = Scratch::new(lab, "late-int");
    let row = Row {
        action: "DeleteFleets",
        extra: SPOT,
        when: any,
    };
    let (code, out) =
        tokio::task::block_in_place(|| bake_and_signal(lab, &s, &proxy, &row, &["-INT"]));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Interrupt received after every build had succeeded"),
        "{out}"
    );
    let ami = out
        .lines()
        .find_map(|l| l.split("AMI: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no AMI in:\n{out}"))
        .to_string();
    assert_eq!(
        amis_named_like(&c, &ami).await,
        1,
        "the AMI is kept: {ami}\n{out}"
    );
    assert_nothing_new(
        &c,
        &baseline,
        &[ami],
        "after an interrupt once the build succeeded",
    )
    .await;
}

/// How many AMIs with this id exist (0 or 1).
async fn amis_named_like(c: &Clients, ami: &str) -> usize {
    c.ec2
        .describe_images()
        .image_ids(ami)
        .send()
        .await
        .map(|o| o.images().len())
        .unwrap_or(0)
}
