//! Spot builder instances on the lab: `spot_price` launches through a temporary launch template and an
//! `instant` EC2 Fleet (as Packer ≥ 1.6), and nothing of it (instance, launch template, fleet, spot
//! request) is left afterwards, whether the bake succeeds or fails.

use crate::common;

use aws_sdk_ec2::types::{Filter, SpotInstanceState};
use bakery_lab::Lab;
use common::*;

fn managed() -> Filter {
    Filter::builder()
        .name("tag:bakery:managed")
        .values("true")
        .build()
}

/// Bakery's launch templates, fleets not deleted, and spot requests still open or active.
async fn spot_leftovers(c: &bakery_core::aws::Clients) -> (Vec<String>, Vec<String>, Vec<String>) {
    let lts = c
        .ec2
        .describe_launch_templates()
        .filters(managed())
        .send()
        .await
        .unwrap();
    let lts = lts
        .launch_templates()
        .iter()
        .filter_map(|t| t.launch_template_id().map(str::to_string))
        .collect();
    let fleets = c.ec2.describe_fleets().send().await.unwrap();
    let fleets = fleets
        .fleets()
        .iter()
        .filter(|f| {
            !f.fleet_state()
                .is_some_and(|s| s.as_str().starts_with("deleted"))
        })
        .filter_map(|f| f.fleet_id().map(str::to_string))
        .collect();
    let sirs = c
        .ec2
        .describe_spot_instance_requests()
        .send()
        .await
        .unwrap();
    let sirs = sirs
        .spot_instance_requests()
        .iter()
        .filter(|r| {
            matches!(
                r.state(),
                Some(SpotInstanceState::Open | SpotInstanceState::Active)
            )
        })
        .filter_map(|r| r.spot_instance_request_id().map(str::to_string))
        .collect();
    (lts, fleets, sirs)
}

async fn assert_no_spot_leftovers(c: &bakery_core::aws::Clients, context: &str) {
    assert_nothing_left(c, context).await;
    let (l, f, s) = spot_leftovers(c).await;
    assert!(
        l.is_empty() && f.is_empty() && s.is_empty(),
        "{context}: left launch templates {l:?}, fleets {f:?}, spot requests {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spot_bake_produces_its_ami_and_leaves_no_instance_template_fleet_or_request() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "spot");
    let name = lab.unique("spot");
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            r#", "spot_price": "auto", "spot_tags": {"purpose": "spot-test"},
                "spot_tag": [{"key": "spot-block", "value": "sb"}],
                "fleet_tags": {"fleet": "yes"}, "fleet_tag": [{"key": "fleet-block", "value": "fb"}],
                "spot_allocation_strategy": "capacity-optimized", "run_tags": {"run": "spot-run"}"#,
            r#"[{"type":"shell","inline":["echo on spot"]}]"#,
        ),
    );
    let vars = lab.var_file();
    // The dry run plans the spot launch the real run makes.
    let dry = s.run(
        lab,
        lab.moto_url(),
        &[
            "-color=false",
            "--dry-run",
            "-var-file",
            vars.to_str().unwrap(),
            tpl.to_str().unwrap(),
        ],
    );
    let d = text(&dry);
    assert!(dry.status.success(), "{d}");
    assert!(d.contains("a spot instance"), "{d}");
    assert!(
        d.contains("temporary launch template and an instant fleet"),
        "{d}"
    );
    assert!(
        amis_named(&c, &name).await.is_empty(),
        "the dry run created an AMI"
    );
    lab.reset_request_counts();
    lab.reset_realism_counts();
    let out = s.run(
        lab,
        lab.moto_url(),
        &[
            "-color=false",
            "-var-file",
            vars.to_str().unwrap(),
            tpl.to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("Launching a spot AWS instance..."), "{t}");
    assert!(t.contains("    amazon-ebs: on spot"), "{t}");
    assert_eq!(amis_named(&c, &name).await.len(), 1, "{t}");

    let n = lab.request_counts();
    // Requests the lab's realism layer refused (docs/lab.md) are sent again.
    let realism = lab.realism();
    let count = |a: &str| {
        n.get(a)
            .copied()
            .unwrap_or(0)
            .saturating_sub(realism.refused(a))
    };
    assert_eq!(count("RunInstances"), 0, "{n:?}");
    assert_eq!(count("CreateLaunchTemplate"), 1, "{n:?}");
    assert_eq!(count("CreateFleet"), 1, "{n:?}");
    assert_eq!(
        count("StopInstances"),
        0,
        "a spot instance is not stopped: {n:?}"
    );
    assert_eq!(count("DeleteFleets"), 1, "{n:?}");
    assert_eq!(count("CancelSpotInstanceRequests"), 1, "{n:?}");
    assert_eq!(count("DeleteLaunchTemplate"), 1, "{n:?}");
    let lt = bodies(lab, "CreateLaunchTemplate");
    assert_eq!(lt.len() as u64, 1 + realism.refused("CreateLaunchTemplate"));
    assert!(lt[0].contains("MarketType=spot"), "{}", lt[0]);
    assert!(
        !lt[0].contains("MaxPrice"),
        "auto sets no maximum: {}",
        lt[0]
    );
    // spot_tags and spot_tag blocks tag the launch template.
    for tag in [
        "Key=purpose",
        "Value=spot-test",
        "Key=spot-block",
        "Value=sb",
    ] {
        assert!(lt[0].contains(tag), "spot_tags {tag}: {}", lt[0]);
    }
    let fleet = bodies(lab, "CreateFleet");
    assert!(fleet[0].contains("Type=instant"), "{}", fleet[0]);
    // spot_allocation_strategy, and fleet_tags with fleet_tag blocks on the fleet.
    assert!(
        fleet[0].contains("SpotOptions.AllocationStrategy=capacity-optimized"),
        "spot_allocation_strategy: {}",
        fleet[0]
    );
    for tag in ["Key=fleet", "Value=yes", "Key=fleet-block", "Value=fb"] {
        assert!(fleet[0].contains(tag), "fleet_tags {tag}: {}", fleet[0]);
    }

    // The instance was a spot instance of this bake, with the run tags; the fleet has fleet_tags.
    let inst = c
        .ec2
        .describe_instances()
        .filters(Filter::builder().name("tag:run").values("spot-run").build())
        .send()
        .await
        .unwrap();
    let inst: Vec<_> = inst
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .collect();
    assert_eq!(inst.len(), 1);
    assert_eq!(
        inst[0].instance_lifecycle().map(|l| l.as_str()),
        Some("spot")
    );
    let fleets = c.ec2.describe_fleets().send().await.unwrap();
    assert!(
        fleets.fleets().iter().any(|f| f
            .tags()
            .iter()
            .any(|t| t.key() == Some("fleet") && t.value() == Some("yes"))),
        "fleet_tags on the fleet"
    );
    assert_no_spot_leftovers(&c, "after a spot bake").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_spot_bake_with_instance_types_and_a_price_cleans_up_everything() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "spot-fail");
    let name = lab.unique("spot-fail");
    // spot_instance_types instead of instance_type (Packer forbids both).
    let tpl = template(
        &name,
        r#", "spot_price": "0.05", "spot_instance_types": ["t3.micro", "t3a.micro"]"#,
        r#"[{"type":"shell","inline":["exit 7"]}]"#,
    )
    .replace(r#""instance_type": "t3.micro", "#, "");
    let tpl = s.write("t.json", &tpl);
    let vars = lab.var_file();
    lab.reset_request_counts();
    let out = s.run(
        lab,
        lab.moto_url(),
        &[
            "-color=false",
            "-var-file",
            vars.to_str().unwrap(),
            tpl.to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("exit status: 7"), "{t}");
    let lt = bodies(lab, "CreateLaunchTemplate");
    assert_eq!(lt.len(), 1, "{t}");
    assert!(lt[0].contains("MaxPrice=0.05"), "{}", lt[0]);
    let fleet = bodies(lab, "CreateFleet");
    assert!(fleet[0].contains("InstanceType=t3.micro"), "{}", fleet[0]);
    assert!(fleet[0].contains("InstanceType=t3a.micro"), "{}", fleet[0]);
    assert!(amis_named(&c, &name).await.is_empty());
    assert_no_spot_leftovers(&c, "after a failed spot bake").await;
    assert!(
        std::fs::read_dir(s.dir.join("state/runs"))
            .unwrap()
            .next()
            .is_none(),
        "everything was removed, so no journal is left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_spot_bake_leaves_its_launch_template_to_bake_cleanup() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "spot-kill");
    let name = lab.unique("spot-kill");
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            r#", "spot_price": "auto""#,
            r#"[{"type":"shell","inline":["echo sleeping","sleep 60"]}]"#,
        ),
    );
    let vars = lab.var_file();
    let args = ["-var-file", vars.to_str().unwrap(), tpl.to_str().unwrap()];
    let mut r = Running::spawn(s.bake(lab, lab.moto_url(), &args));
    r.wait_for("sleeping");
    r.signal("-KILL");
    let (code, _) = tokio::task::spawn_blocking(move || r.finish())
        .await
        .unwrap();
    assert_eq!(code, None, "killed by a signal");
    let (lts, _, _) = spot_leftovers(&c).await;
    assert_eq!(lts.len(), 1, "the killed run left its launch template");
    let out = s.run(lab, lab.moto_url(), &["cleanup"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&format!("removed launch template {}", lts[0])),
        "{t}"
    );
    assert_nothing_left(&c, "after bake cleanup").await;
    let (lts, _, _) = spot_leftovers(&c).await;
    assert!(lts.is_empty(), "launch templates left: {lts:?}");
    // The killed run's spot request and fleet stay in moto, whose fleet requests are persistent; on AWS
    // an instant fleet's one-time request closes when its instance terminates. Clean them for the
    // tests that follow.
    let (_, fleets, sirs) = spot_leftovers(&c).await;
    if !sirs.is_empty() {
        c.ec2
            .cancel_spot_instance_requests()
            .set_spot_instance_request_ids(Some(sirs))
            .send()
            .await
            .unwrap();
    }
    if !fleets.is_empty() {
        // moto fails DeleteFleets with TerminateInstances once the fleet's instances are gone.
        c.ec2
            .delete_fleets()
            .set_fleet_ids(Some(fleets))
            .terminate_instances(false)
            .send()
            .await
            .unwrap();
    }
}
