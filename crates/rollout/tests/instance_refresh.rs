//! The `instance-refresh` strategy against the AWS SDK's own test clients (aws-smithy-mocks): moto does
//! not implement instance refresh. The rules below are a small stateful fake of the calls the strategy
//! makes (launch template versions, the group, one refresh whose states a test scripts); every request
//! is logged with its key parameters, so the tests assert the exact sequence and what is left afterwards.
//!
//! The clients are built the way `aws_smithy_mocks::mock_client!` builds them, without its
//! `with_test_defaults_v2()`: that needs the service crates' `test-util` feature, which would compile the
//! AWS SDK a second time for tests.

use aws_sdk_autoscaling::types::{
    AutoScalingGroup, Instance, InstanceRefresh as SdkRefresh, InstanceRefreshStatus,
    LaunchTemplateSpecification, LifecycleState, TagDescription,
};
use aws_sdk_ec2::types::{
    DeleteLaunchTemplateVersionsResponseErrorItem, DeleteLaunchTemplateVersionsResponseSuccessItem,
    LaunchTemplate, LaunchTemplateVersion, ResponseError, ResponseLaunchTemplateData,
};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use bakery_core::aws::Clients;
use bakery_core::ui::Ui;
use bakery_rollout::ami::ResolvedAmi;
use bakery_rollout::config::{Overrides, RolloutConfig};
use bakery_rollout::context::{Ctx, RequestCounter};
use bakery_rollout::manifest::{Manifest, StrategyKind};
use bakery_rollout::report::Status;
use bakery_rollout::strategy::{self, InstanceRefresh, OnInterrupt, Preflight, Strategy};
use bakery_rollout::{RolloutError, live};
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const GROUP: &str = "asg-shop-staging-20260101T000000Z-abcd";
const OTHER_GROUP: &str = "asg-reporting";
const LT_ID: &str = "lt-0123456789abcdef0";
const LT_NAME: &str = "lt-shop-staging-20260101T000000Z-abcd";

/// What the fake AWS holds.
struct World {
    log: Vec<String>,
    /// Launch template versions: number -> ImageId.
    versions: BTreeMap<i64, String>,
    /// Version descriptions, for those that have one.
    descriptions: BTreeMap<i64, String>,
    default: i64,
    /// The version the environment's group references.
    group_version: String,
    /// The version another group (not the environment's) references.
    other_group_version: String,
    /// Refreshes that exist before the rollout: (id, status).
    earlier_refreshes: Vec<(String, InstanceRefreshStatus)>,
    /// States the started refresh goes through, one per look (the last one repeats).
    script: VecDeque<(InstanceRefreshStatus, i32, Option<String>)>,
    /// The desired version of the started refresh.
    desired: Option<i64>,
    /// Looks after CancelInstanceRefresh.
    after_cancel: u32,
    cancelled: bool,
    /// RollbackInstanceRefresh was called: the refresh rolls back, then ends RollbackSuccessful.
    rolled_back: bool,
    /// A successful refresh moves the group to the desired version, as AWS does (tests turn it off).
    refresh_moves_group: bool,
    /// CancelInstanceRefresh fails (LimitExceeded).
    cancel_fails: bool,
}

impl World {
    fn new(versions: &[(i64, &str)], default: i64, group_version: &str) -> Self {
        World {
            log: Vec::new(),
            versions: versions.iter().map(|(n, i)| (*n, i.to_string())).collect(),
            descriptions: BTreeMap::new(),
            default,
            group_version: group_version.to_string(),
            other_group_version: "1".into(),
            earlier_refreshes: Vec::new(),
            script: VecDeque::new(),
            desired: None,
            after_cancel: 0,
            cancelled: false,
            rolled_back: false,
            refresh_moves_group: true,
            cancel_fails: false,
        }
    }

    fn latest(&self) -> i64 {
        self.versions.keys().max().copied().unwrap_or(0)
    }

    fn resolve(&self, v: &str) -> Option<i64> {
        match v {
            "$Latest" => Some(self.latest()),
            "$Default" => Some(self.default),
            n => n.parse().ok(),
        }
    }
}

type Shared = Arc<Mutex<World>>;

fn version_out(w: &World, n: i64) -> LaunchTemplateVersion {
    LaunchTemplateVersion::builder()
        .launch_template_id(LT_ID)
        .launch_template_name(LT_NAME)
        .version_number(n)
        .default_version(n == w.default)
        .set_version_description(w.descriptions.get(&n).cloned())
        .launch_template_data(
            ResponseLaunchTemplateData::builder()
                .image_id(&w.versions[&n])
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .build()
}

fn group_out(name: &str, version: &str, env: bool) -> AutoScalingGroup {
    let tag = |k: &str, v: &str| {
        TagDescription::builder()
            .resource_id(name)
            .resource_type("auto-scaling-group")
            .key(k)
            .value(v)
            .propagate_at_launch(false)
            .build()
    };
    let mut g = AutoScalingGroup::builder()
        .auto_scaling_group_name(name)
        .min_size(2)
        .max_size(4)
        .desired_capacity(2)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(LT_ID)
                .launch_template_name(LT_NAME)
                .version(version)
                .build(),
        );
    if env {
        g = g
            .tags(tag("bakery:app", "shop"))
            .tags(tag("bakery:env", "staging"))
            .tags(tag("bakery:managed", "true"))
            .tags(tag("bakery:rollout-state", "live"))
            .tags(tag("bakery:ami", "ami-0old"))
            .load_balancer_names("elb-shop-staging");
        for i in ["i-0000000000000000a", "i-0000000000000000b"] {
            g = g.instances(
                Instance::builder()
                    .instance_id(i)
                    .availability_zone("us-east-1a")
                    .lifecycle_state(LifecycleState::InService)
                    .health_status("Healthy")
                    .build(),
            );
        }
    }
    g.build()
}

/// The rules of the fake, all sharing `w`.
fn rules(w: &Shared) -> (Vec<Rule>, Vec<Rule>) {
    use aws_sdk_autoscaling::Client as Asg;
    use aws_sdk_ec2::Client as Ec2;
    let mut asg = Vec::new();
    let mut ec2 = Vec::new();

    let s = w.clone();
    asg.push(
        mock!(Asg::describe_auto_scaling_groups).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            let names = req.auto_scaling_group_names();
            w.log.push(if !names.is_empty() {
                format!("DescribeAutoScalingGroups names={}", names.join(","))
            } else if !req.filters().is_empty() {
                "DescribeAutoScalingGroups by tags".to_string()
            } else {
                "DescribeAutoScalingGroups all".to_string()
            });
            let mut out = aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput::builder();
            let ours = group_out(GROUP, &w.group_version, true);
            let other = group_out(OTHER_GROUP, &w.other_group_version, false);
            if !names.is_empty() {
                for g in [ours, other] {
                    if names.iter().any(|n| Some(n.as_str()) == g.auto_scaling_group_name()) {
                        out = out.auto_scaling_groups(g);
                    }
                }
            } else if !req.filters().is_empty() {
                out = out.auto_scaling_groups(ours);
            } else {
                out = out.auto_scaling_groups(ours).auto_scaling_groups(other);
            }
            out.build()
        }),
    );

    let s = w.clone();
    asg.push(
        mock!(Asg::describe_instance_refreshes).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            let ids = req.instance_refresh_ids();
            let mut out = aws_sdk_autoscaling::operation::describe_instance_refreshes::DescribeInstanceRefreshesOutput::builder();
            if ids.is_empty() {
                w.log.push(format!(
                    "DescribeInstanceRefreshes group={}",
                    req.auto_scaling_group_name().unwrap_or_default()
                ));
                for (id, st) in w.earlier_refreshes.clone() {
                    out = out.instance_refreshes(
                        SdkRefresh::builder()
                            .instance_refresh_id(id)
                            .auto_scaling_group_name(GROUP)
                            .status(st)
                            .percentage_complete(40)
                            .build(),
                    );
                }
                // The started refresh, while it runs (as a dead run leaves it).
                if let Some(v) = w.desired
                    && !w.cancelled
                    && !w.rolled_back
                    && let Some((st, pct, _)) = w.script.front().cloned()
                {
                    out = out.instance_refreshes(
                        SdkRefresh::builder()
                            .instance_refresh_id("ir-1")
                            .auto_scaling_group_name(GROUP)
                            .status(st)
                            .percentage_complete(pct)
                            .desired_configuration(
                                aws_sdk_autoscaling::types::DesiredConfiguration::builder()
                                    .launch_template(
                                        LaunchTemplateSpecification::builder()
                                            .launch_template_id(LT_ID)
                                            .launch_template_name(LT_NAME)
                                            .version(v.to_string())
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    );
                }
                return out.build();
            }
            w.log.push(format!("DescribeInstanceRefreshes id={}", ids.join(",")));
            let (status, pct, reason) = if w.rolled_back {
                w.after_cancel += 1;
                if w.after_cancel == 1 {
                    (InstanceRefreshStatus::RollbackInProgress, 50, None)
                } else {
                    (InstanceRefreshStatus::RollbackSuccessful, 100, Some("Rolled back by user".into()))
                }
            } else if w.cancelled {
                w.after_cancel += 1;
                let pct = w.script.front().map(|s| s.1).unwrap_or(0);
                if w.after_cancel == 1 {
                    (InstanceRefreshStatus::Cancelling, pct, None)
                } else {
                    (InstanceRefreshStatus::Cancelled, pct, Some("Cancelled by user".into()))
                }
            } else if w.script.len() > 1 {
                w.script.pop_front().unwrap()
            } else {
                w.script.front().cloned().unwrap()
            };
            // As AWS does: a refresh with a desired configuration that succeeds updates the group.
            if status == InstanceRefreshStatus::Successful
                && w.refresh_moves_group
                && let Some(v) = w.desired
            {
                w.group_version = v.to_string();
            }
            out.instance_refreshes(
                SdkRefresh::builder()
                    .instance_refresh_id("ir-1")
                    .auto_scaling_group_name(GROUP)
                    .status(status)
                    .percentage_complete(pct)
                    .instances_to_update(2 - 2 * pct / 100)
                    .set_status_reason(reason)
                    .build(),
            )
            .build()
        }),
    );

    let s = w.clone();
    asg.push(
        mock!(Asg::start_instance_refresh).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            let lt = req
                .desired_configuration()
                .and_then(|d| d.launch_template())
                .expect("a DesiredConfiguration with a launch template");
            let p = req.preferences().expect("preferences");
            w.log.push(format!(
                "StartInstanceRefresh group={} strategy={} desired={}:{} min={:?} max={:?} warmup={:?} checkpoints={:?} delay={:?} skip={:?} rollback={:?} alarms={:?} bake={:?}",
                req.auto_scaling_group_name().unwrap_or_default(),
                req.strategy().map(|s| s.as_str()).unwrap_or("-"),
                lt.launch_template_id().unwrap_or("-"),
                lt.version().unwrap_or("-"),
                p.min_healthy_percentage(),
                p.max_healthy_percentage(),
                p.instance_warmup(),
                p.checkpoint_percentages(),
                p.checkpoint_delay(),
                p.skip_matching(),
                p.auto_rollback(),
                p.alarm_specification().map(|a| a.alarms().to_vec()),
                p.bake_time(),
            ));
            w.desired = lt.version().and_then(|v| v.parse().ok());
            aws_sdk_autoscaling::operation::start_instance_refresh::StartInstanceRefreshOutput::builder()
                .instance_refresh_id("ir-1")
                .build()
        }),
    );

    let s = w.clone();
    asg.push(
        mock!(Asg::cancel_instance_refresh).then_compute_response(move |req| {
            use aws_sdk_autoscaling::operation::cancel_instance_refresh::*;
            let mut w = s.lock().unwrap();
            w.log.push(format!(
                "CancelInstanceRefresh group={}",
                req.auto_scaling_group_name().unwrap_or_default()
            ));
            if w.cancel_fails {
                return aws_smithy_mocks::MockResponse::Error(
                    CancelInstanceRefreshError::LimitExceededFault(
                        aws_sdk_autoscaling::types::error::LimitExceededFault::builder()
                            .message("Rate exceeded")
                            .build(),
                    ),
                );
            }
            w.cancelled = true;
            aws_smithy_mocks::MockResponse::Output(
                CancelInstanceRefreshOutput::builder()
                    .instance_refresh_id("ir-1")
                    .build(),
            )
        }),
    );

    let s = w.clone();
    asg.push(
        mock!(Asg::rollback_instance_refresh).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            w.log.push(format!(
                "RollbackInstanceRefresh group={}",
                req.auto_scaling_group_name().unwrap_or_default()
            ));
            w.rolled_back = true;
            aws_sdk_autoscaling::operation::rollback_instance_refresh::RollbackInstanceRefreshOutput::builder()
                .instance_refresh_id("ir-1")
                .build()
        }),
    );

    let s = w.clone();
    ec2.push(
        mock!(Ec2::describe_spot_fleet_requests).then_compute_output(move |_req| {
            s.lock().unwrap().log.push("DescribeSpotFleetRequests".to_string());
            aws_sdk_ec2::operation::describe_spot_fleet_requests::DescribeSpotFleetRequestsOutput::builder().build()
        }),
    );

    let s = w.clone();
    asg.push(
        mock!(Asg::update_auto_scaling_group).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            let v = req
                .launch_template()
                .and_then(|l| l.version())
                .unwrap_or("-")
                .to_string();
            w.log.push(format!("UpdateAutoScalingGroup version={v}"));
            w.group_version = v;
            aws_sdk_autoscaling::operation::update_auto_scaling_group::UpdateAutoScalingGroupOutput::builder().build()
        }),
    );

    let s = w.clone();
    asg.push(
        mock!(Asg::create_or_update_tags).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            for t in req.tags() {
                w.log.push(format!(
                    "CreateOrUpdateTags {}={}",
                    t.key().unwrap_or_default(),
                    t.value().unwrap_or_default()
                ));
            }
            aws_sdk_autoscaling::operation::create_or_update_tags::CreateOrUpdateTagsOutput::builder().build()
        }),
    );

    let s = w.clone();
    ec2.push(
        mock!(Ec2::describe_launch_template_versions).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            assert_eq!(req.launch_template_id(), Some(LT_ID));
            let asked = req.versions();
            w.log.push(if asked.is_empty() {
                "DescribeLaunchTemplateVersions all".to_string()
            } else {
                format!("DescribeLaunchTemplateVersions versions={}", asked.join(","))
            });
            let numbers: Vec<i64> = if asked.is_empty() {
                w.versions.keys().copied().collect()
            } else {
                asked.iter().filter_map(|v| w.resolve(v)).collect()
            };
            let mut out = aws_sdk_ec2::operation::describe_launch_template_versions::DescribeLaunchTemplateVersionsOutput::builder();
            for n in numbers.into_iter().filter(|n| w.versions.contains_key(n)) {
                out = out.launch_template_versions(version_out(&w, n));
            }
            out.build()
        }),
    );

    let s = w.clone();
    ec2.push(
        mock!(Ec2::create_launch_template_version).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            let image = req
                .launch_template_data()
                .and_then(|d| d.image_id())
                .unwrap_or("-")
                .to_string();
            w.log.push(format!(
                "CreateLaunchTemplateVersion template={} source={} image={image}",
                req.launch_template_id().unwrap_or("-"),
                req.source_version().unwrap_or("-"),
            ));
            let n = w.latest() + 1;
            w.versions.insert(n, image);
            if let Some(d) = req.version_description() {
                w.descriptions.insert(n, d.to_string());
            }
            aws_sdk_ec2::operation::create_launch_template_version::CreateLaunchTemplateVersionOutput::builder()
                .launch_template_version(version_out(&w, n))
                .build()
        }),
    );

    let s = w.clone();
    ec2.push(
        mock!(Ec2::describe_launch_templates).then_compute_output(move |_req| {
            let mut w = s.lock().unwrap();
            w.log.push("DescribeLaunchTemplates".to_string());
            aws_sdk_ec2::operation::describe_launch_templates::DescribeLaunchTemplatesOutput::builder()
                .launch_templates(
                    LaunchTemplate::builder()
                        .launch_template_id(LT_ID)
                        .launch_template_name(LT_NAME)
                        .latest_version_number(w.latest())
                        .default_version_number(w.default)
                        .build(),
                )
                .build()
        }),
    );

    let s = w.clone();
    ec2.push(
        mock!(Ec2::delete_launch_template_versions).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            w.log.push(format!(
                "DeleteLaunchTemplateVersions {}",
                req.versions().join(",")
            ));
            let mut out = aws_sdk_ec2::operation::delete_launch_template_versions::DeleteLaunchTemplateVersionsOutput::builder();
            for v in req.versions() {
                let n: i64 = v.parse().unwrap();
                // As EC2 does: the default version cannot be deleted.
                if n == w.default {
                    out = out.unsuccessfully_deleted_launch_template_versions(
                        DeleteLaunchTemplateVersionsResponseErrorItem::builder()
                            .version_number(n)
                            .response_error(
                                ResponseError::builder()
                                    .message("cannot delete the default version")
                                    .build(),
                            )
                            .build(),
                    );
                } else {
                    w.versions.remove(&n);
                    out = out.successfully_deleted_launch_template_versions(
                        DeleteLaunchTemplateVersionsResponseSuccessItem::builder()
                            .version_number(n)
                            .build(),
                    );
                }
            }
            out.build()
        }),
    );

    let s = w.clone();
    ec2.push(
        mock!(Ec2::modify_launch_template).then_compute_output(move |req| {
            let mut w = s.lock().unwrap();
            let d = req.default_version().unwrap_or("-").to_string();
            w.log.push(format!("ModifyLaunchTemplate default={d}"));
            w.default = d.parse().unwrap();
            aws_sdk_ec2::operation::modify_launch_template::ModifyLaunchTemplateOutput::builder()
                .build()
        }),
    );
    (asg, ec2)
}

/// A client of `$krate` answering from `$rules` (MatchAny); a request no rule matches panics, so an
/// unexpected call fails the test.
macro_rules! client {
    ($krate:ident, $rules:expr) => {{
        let mut i = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for r in $rules {
            i = i.with_rule(r);
        }
        $krate::Client::from_conf(
            $krate::Config::builder()
                .behavior_version($krate::config::BehaviorVersion::latest())
                .region($krate::config::Region::new("us-east-1"))
                .credentials_provider($krate::config::Credentials::new(
                    "AKIDTEST", "secret", None, None, "test",
                ))
                .retry_config($krate::config::retry::RetryConfig::disabled())
                .http_client(create_mock_http_client())
                .interceptor(i)
                .build(),
        )
    }};
}

const MANIFEST: &str = r#"{
  "app": "shop",
  "strategy": "instance-refresh",
  "defaults": {
    "instance_refresh": {
      "min_healthy_percentage": 50,
      "max_healthy_percentage": 150,
      "instance_warmup_seconds": 60,
      "checkpoint_percentages": [50, 100],
      "checkpoint_delay_seconds": 30,
      "alarms": ["shop-5xx"],
      "timeout_seconds": 600,
      "max_launch_template_versions": 2
    },
    "gates": {"alarms": ["shop-5xx", "shop-p99"], "bake_time": "5m"}
  },
  "environments": {"staging": {}}
}"#;

fn ctx(w: &Shared, manifest: &str) -> Ctx {
    let m = Manifest::parse(Path::new("rollout.json"), manifest.to_string()).unwrap();
    let cfg = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap();
    let (asg, ec2) = rules(w);
    let elb_rules = vec![
        mock!(aws_sdk_elasticloadbalancing::Client::describe_load_balancers).then_output(|| {
            aws_sdk_elasticloadbalancing::operation::describe_load_balancers::DescribeLoadBalancersOutput::builder().build()
        }),
    ];
    let none: Vec<Rule> = Vec::new();
    let requests = RequestCounter::default();
    let clients = requests.instrument(Clients {
        region: "us-east-1".into(),
        ec2: client!(aws_sdk_ec2, &ec2),
        ssm: client!(aws_sdk_ssm, &none),
        autoscaling: client!(aws_sdk_autoscaling, &asg),
        elb: client!(aws_sdk_elasticloadbalancing, &elb_rules),
        elbv2: client!(aws_sdk_elasticloadbalancingv2, &none),
        route53: client!(aws_sdk_route53, &none),
        iam: client!(aws_sdk_iam, &none),
        cloudwatch: client!(aws_sdk_cloudwatch, &none),
    });
    Ctx {
        cfg,
        clients,
        ui: Ui::sink(),
        run_id: "00000000-0000-4000-8000-000000000001".into(),
        cancel: CancellationToken::new(),
        cancel_cleanup: CancellationToken::new(),
        requests,
    }
}

async fn preflight(cx: &Ctx) -> Preflight {
    let groups = live::groups(cx).await.unwrap();
    let mut group_amis = BTreeMap::new();
    for g in &groups {
        group_amis.insert(g.name.clone(), live::group_ami(cx, g).await.unwrap());
    }
    Preflight {
        lb: None,
        groups,
        kept: Vec::new(),
        group_amis,
        launch: None,
        ami: Some(ResolvedAmi {
            id: "ami-0new".into(),
            source: "ami-0new".into(),
            name: Some("shop-2".into()),
        }),
        fleets: Vec::new(),
        problems: Vec::new(),
        took: Duration::ZERO,
    }
}

fn world_with_history() -> Shared {
    // Versions 1 and 2 are older AMIs, 3 is what the group runs (and the default); the reporting group
    // outside the environment still uses version 1.
    Arc::new(Mutex::new(World::new(
        &[(1, "ami-0a"), (2, "ami-0b"), (3, "ami-0old")],
        3,
        "3",
    )))
}

fn take_log(w: &Shared) -> Vec<String> {
    std::mem::take(&mut w.lock().unwrap().log)
}

fn script(w: &Shared, states: &[(InstanceRefreshStatus, i32, Option<&str>)]) {
    w.lock().unwrap().script = states
        .iter()
        .map(|(s, p, r)| (s.clone(), *p, r.map(str::to_string)))
        .collect();
}

const START: &str = "StartInstanceRefresh group=asg-shop-staging-20260101T000000Z-abcd strategy=Rolling desired=lt-0123456789abcdef0:4 min=Some(50) max=Some(150) warmup=Some(60) checkpoints=[50, 100] delay=Some(30) skip=Some(true) rollback=Some(true) alarms=Some([\"shop-5xx\", \"shop-p99\"]) bake=Some(300)";

#[tokio::test(start_paused = true)]
async fn success_creates_the_version_refreshes_adopts_and_prunes() {
    let w = world_with_history();
    script(
        &w,
        &[
            (InstanceRefreshStatus::Pending, 0, None),
            (
                InstanceRefreshStatus::InProgress,
                50,
                Some("Waiting for checkpoint"),
            ),
            (InstanceRefreshStatus::Successful, 100, None),
        ],
    );
    let cx = ctx(&w, MANIFEST);
    let pf = preflight(&cx).await;
    take_log(&w);
    let r = InstanceRefresh::default().deploy(&cx, pf).await.unwrap();
    assert_eq!(r.status, Status::Succeeded);
    assert_eq!(r.strategy, "instance-refresh");
    assert_eq!(
        take_log(&w),
        vec![
            "DescribeLaunchTemplateVersions versions=3",
            "CreateLaunchTemplateVersion template=lt-0123456789abcdef0 source=3 image=ami-0new",
            START,
            "DescribeInstanceRefreshes id=ir-1",
            "DescribeInstanceRefreshes id=ir-1",
            "DescribeInstanceRefreshes id=ir-1",
            "ModifyLaunchTemplate default=4",
            "DescribeAutoScalingGroups names=asg-shop-staging-20260101T000000Z-abcd",
            "CreateOrUpdateTags bakery:ami=ami-0new",
            "DescribeLaunchTemplateVersions all",
            "DescribeAutoScalingGroups all",
            // 4 versions, 2 kept: 1 is the reporting group's, 3 the one replaced, 4 the new default.
            "DeleteLaunchTemplateVersions 2",
            "DescribeAutoScalingGroups names=asg-shop-staging-20260101T000000Z-abcd",
        ]
    );
    let w = w.lock().unwrap();
    assert_eq!(
        w.versions.keys().copied().collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
    assert_eq!(w.versions[&4], "ami-0new");
    assert_eq!(w.default, 4);
    assert_eq!(w.group_version, "4");
    assert_eq!(r.deleted_launch_templates, vec![format!("{LT_NAME}:2")]);
    assert_eq!(
        r.new_group.as_ref().unwrap().ami.as_deref(),
        Some("ami-0new")
    );
    assert_eq!(r.old_groups[0].ami.as_deref(), Some("ami-0old"));
    assert!(r.attention.is_empty(), "{:?}", r.attention);
}

#[tokio::test(start_paused = true)]
async fn a_group_left_on_the_old_version_is_pointed_at_the_new_one() {
    let w = Arc::new(Mutex::new(World::new(&[(1, "ami-0old")], 1, "$Default")));
    script(&w, &[(InstanceRefreshStatus::Successful, 100, None)]);
    w.lock().unwrap().refresh_moves_group = false;
    let cx = ctx(&w, MANIFEST);
    let pf = preflight(&cx).await;
    take_log(&w);
    let r = InstanceRefresh::default().deploy(&cx, pf).await;
    assert!(r.is_ok(), "{r:?}");
    let log = take_log(&w);
    // `$Default` is resolved to the version it names, and the copy is made from that one.
    assert_eq!(log[0], "DescribeLaunchTemplateVersions versions=$Default");
    assert_eq!(
        log[1],
        "CreateLaunchTemplateVersion template=lt-0123456789abcdef0 source=1 image=ami-0new"
    );
    // Auto-rollback (the manifest's default) needs a numbered version: `$Default` is pinned to the
    // version it names before the refresh starts.
    assert_eq!(log[2], "UpdateAutoScalingGroup version=1");
    assert!(log[3].starts_with("StartInstanceRefresh "), "{log:?}");
    let adopt = log
        .iter()
        .position(|l| l == "ModifyLaunchTemplate default=2")
        .expect("made the default");
    assert_eq!(
        log[adopt + 1..adopt + 3],
        [
            "DescribeAutoScalingGroups names=asg-shop-staging-20260101T000000Z-abcd",
            "UpdateAutoScalingGroup version=2"
        ]
    );
    // Two versions, two kept: nothing pruned.
    assert!(
        !log.iter()
            .any(|l| l.starts_with("DeleteLaunchTemplateVersions")),
        "{log:?}"
    );
    assert_eq!(w.lock().unwrap().group_version, "2");
}

#[tokio::test(start_paused = true)]
async fn rollback_successful_is_an_error_and_the_new_version_is_deleted() {
    let w = world_with_history();
    script(
        &w,
        &[
            (InstanceRefreshStatus::InProgress, 50, None),
            (
                InstanceRefreshStatus::RollbackInProgress,
                50,
                Some("alarm shop-5xx is in ALARM"),
            ),
            (
                InstanceRefreshStatus::RollbackSuccessful,
                100,
                Some("The instance refresh was rolled back because alarm shop-5xx is in ALARM"),
            ),
        ],
    );
    let cx = ctx(&w, MANIFEST);
    let pf = preflight(&cx).await;
    take_log(&w);
    let e = InstanceRefresh::default()
        .deploy(&cx, pf)
        .await
        .unwrap_err();
    let RolloutError::RolledBack(r) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(r.status, Status::RolledBack);
    let err = r.error.as_deref().unwrap();
    assert!(
        err.contains("ended RollbackSuccessful: The instance refresh was rolled back because alarm shop-5xx is in ALARM"),
        "{err}"
    );
    let rb = r.rollback.as_ref().unwrap();
    assert!(
        rb.actions.contains(&format!("deleted {LT_NAME} version 4")),
        "{rb:?}"
    );
    assert!(rb.old_groups_unchanged);
    let log = take_log(&w);
    assert_eq!(
        log[log.len() - 3..],
        [
            "DescribeLaunchTemplates",
            "DescribeAutoScalingGroups all",
            "DeleteLaunchTemplateVersions 4"
        ]
    );
    assert!(
        !log.iter().any(|l| l.starts_with("ModifyLaunchTemplate")),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|l| l.starts_with("CreateOrUpdateTags")),
        "{log:?}"
    );
    let w = w.lock().unwrap();
    assert_eq!(
        w.versions.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!((w.default, w.group_version.as_str()), (3, "3"));
    assert!(e.to_string().contains("rolled back: deleted"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn timeout_cancels_the_refresh_and_keeps_the_version_its_instances_run() {
    let w = world_with_history();
    script(&w, &[(InstanceRefreshStatus::InProgress, 50, None)]);
    let cx = ctx(&w, MANIFEST);
    let pf = preflight(&cx).await;
    take_log(&w);
    let started = tokio::time::Instant::now();
    let e = InstanceRefresh::default()
        .deploy(&cx, pf)
        .await
        .unwrap_err();
    // The paused clock ran the whole 600 s timeout without waiting for it.
    assert!(started.elapsed() >= Duration::from_secs(600));
    let RolloutError::Incomplete(r) = &e else {
        panic!("{e:?}")
    };
    let err = r.error.as_deref().unwrap();
    assert!(
        err.contains("did not finish within 600 s (last: InProgress, 50% done, 1 instance(s) to update); cancelled it"),
        "{err}"
    );
    let log = take_log(&w);
    let cancel_at = log
        .iter()
        .position(|l| l == "CancelInstanceRefresh group=asg-shop-staging-20260101T000000Z-abcd")
        .expect("cancelled");
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("CancelInstanceRefresh"))
            .count(),
        1
    );
    // Followed until Cancelled (Cancelling, Cancelled), then checked what uses the version.
    assert_eq!(
        log[cancel_at + 1..],
        [
            "DescribeInstanceRefreshes id=ir-1",
            "DescribeInstanceRefreshes id=ir-1",
            "DescribeLaunchTemplates",
            "DescribeAutoScalingGroups all",
        ]
    );
    assert!(
        r.attention
            .iter()
            .any(|a| a.contains("version 4 kept: instances the refresh replaced (50% done) run it")),
        "{:?}",
        r.attention
    );
    assert!(w.lock().unwrap().versions.contains_key(&4));
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_cannot_be_cancelled_keeps_its_version() {
    let w = world_with_history();
    script(&w, &[(InstanceRefreshStatus::Pending, 0, None)]);
    w.lock().unwrap().cancel_fails = true;
    let cx = ctx(&w, MANIFEST);
    let pf = preflight(&cx).await;
    take_log(&w);
    let e = InstanceRefresh::default()
        .deploy(&cx, pf)
        .await
        .unwrap_err();
    let RolloutError::Incomplete(r) = &e else {
        panic!("{e:?}")
    };
    assert!(
        r.attention.iter().any(|a| a.starts_with(
            "instance refresh ir-1 of asg-shop-staging-20260101T000000Z-abcd could not be cancelled"
        )),
        "{:?}",
        r.attention
    );
    assert!(
        r.attention
            .iter()
            .any(|a| a.contains("version 4 kept: the instance refresh has not ended")),
        "{:?}",
        r.attention
    );
    let log = take_log(&w);
    // Not followed after the failed cancel, and nothing deleted.
    assert!(
        log.last()
            .unwrap()
            .starts_with("DescribeAutoScalingGroups all"),
        "{log:?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.starts_with("DeleteLaunchTemplateVersions")),
        "{log:?}"
    );
    assert!(w.lock().unwrap().versions.contains_key(&4));
}

#[tokio::test(start_paused = true)]
async fn interrupt_cancels_the_refresh_and_removes_an_unused_version() {
    let w = world_with_history();
    script(&w, &[(InstanceRefreshStatus::Pending, 0, None)]);
    let cx = ctx(&w, MANIFEST);
    let pf = preflight(&cx).await;
    take_log(&w);
    let token = cx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(12)).await;
        token.cancel();
    });
    let s = InstanceRefresh {
        on_interrupt: OnInterrupt::Cancel,
    };
    let e = s.deploy(&cx, pf).await.unwrap_err();
    let RolloutError::RolledBack(r) = &e else {
        panic!("{e:?}")
    };
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("interrupted; cancelled instance refresh ir-1 (Pending, 0% done"),
        "{:?}",
        r.error
    );
    let log = take_log(&w);
    assert!(log.contains(
        &"CancelInstanceRefresh group=asg-shop-staging-20260101T000000Z-abcd".to_string()
    ));
    assert_eq!(log.last().unwrap(), "DeleteLaunchTemplateVersions 4");
    assert!(!w.lock().unwrap().versions.contains_key(&4));
}

#[tokio::test(start_paused = true)]
async fn interrupt_can_leave_the_refresh_running_and_says_so() {
    let w = world_with_history();
    script(&w, &[(InstanceRefreshStatus::InProgress, 50, None)]);
    let cx = ctx(&w, MANIFEST);
    let pf = preflight(&cx).await;
    take_log(&w);
    let token = cx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(12)).await;
        token.cancel();
    });
    let s = InstanceRefresh {
        on_interrupt: OnInterrupt::Leave,
    };
    let e = s.deploy(&cx, pf).await.unwrap_err();
    let RolloutError::Incomplete(r) = &e else {
        panic!("{e:?}")
    };
    assert!(
        r.attention[0].starts_with(
            "instance refresh ir-1 of asg-shop-staging-20260101T000000Z-abcd is still running"
        ),
        "{:?}",
        r.attention
    );
    let log = take_log(&w);
    assert!(
        !log.iter().any(|l| l.starts_with("CancelInstanceRefresh")),
        "{log:?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.starts_with("DeleteLaunchTemplateVersions")),
        "{log:?}"
    );
    assert!(w.lock().unwrap().versions.contains_key(&4));
}

#[tokio::test(start_paused = true)]
async fn preflight_refuses_while_a_refresh_runs_and_plan_lists_the_steps() {
    let w = world_with_history();
    w.lock().unwrap().earlier_refreshes = vec![
        ("ir-old".into(), InstanceRefreshStatus::InProgress),
        ("ir-older".into(), InstanceRefreshStatus::Successful),
    ];
    let cx = ctx(&w, MANIFEST);
    let pf = strategy::preflight(&cx, None).await.unwrap();
    assert!(
        pf.problems.iter().any(|p| p.starts_with(
            "instance refresh ir-old of asg-shop-staging-20260101T000000Z-abcd is InProgress (40% done): wait for it to end, or cancel it"
        )),
        "{:?}",
        pf.problems
    );
    assert!(cx.requests.read_only(), "{:?}", cx.requests.snapshot());

    w.lock().unwrap().earlier_refreshes[0].1 = InstanceRefreshStatus::Cancelled;
    let pf = strategy::preflight(&cx, None).await.unwrap();
    assert!(
        !pf.problems.iter().any(|p| p.contains("instance refresh")),
        "{:?}",
        pf.problems
    );
    let s = strategy::for_kind(cx.cfg.strategy);
    assert_eq!(s.kind(), StrategyKind::InstanceRefresh);
    let steps = s.plan(&cx, &pf);
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert_eq!(
        steps[0],
        format!(
            "create a version of launch template {LT_NAME} from version 3 (ami-0old) with ImageId <--ami>"
        )
    );
    assert_eq!(
        steps[1],
        "start an instance refresh of asg-shop-staging-20260101T000000Z-abcd (2 instance(s)) to that version: min healthy 50%, max healthy 150%, warm-up 60 s, checkpoints 50/100% every 30 s, auto rollback on, alarms shop-5xx, shop-p99, bake time 5m, skip matching"
    );
    assert!(steps[3].contains("keep at most 2 versions"), "{steps:?}");
}

#[test]
fn settings_defaults_and_validation() {
    let m = Manifest::parse(
        Path::new("rollout.json"),
        r#"{"app": "shop", "strategy": "instance-refresh", "environments": {"staging": {}}}"#
            .into(),
    )
    .unwrap();
    let c = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap();
    assert_eq!(c.strategy, StrategyKind::InstanceRefresh);
    assert_eq!(c.strategy.to_string(), "instance-refresh");
    let r = &c.instance_refresh;
    assert_eq!(r.min_healthy_percentage, 90);
    assert!(r.auto_rollback && r.skip_matching);
    assert_eq!(r.timeout, Duration::from_secs(3600));
    assert_eq!(r.max_launch_template_versions, 10);
    assert_eq!(r.max_healthy_percentage, None);

    let src = r#"{
  "app": "shop",
  "strategy": "instance-refresh",
  "defaults": {"instance_refresh": {"min_healthy_percentage": 101, "checkpoint_percentages": [50, 40]}},
  "environments": {"staging": {"instance_refresh": {
    "max_healthy_percentage": 99,
    "checkpoint_delay_seconds": 10,
    "max_launch_template_versions": 1
  }}}
}"#;
    let m = Manifest::parse(Path::new("rollout.json"), src.into()).unwrap();
    let e = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap_err();
    let text = e.to_string();
    for want in [
        "rollout.json:4:37: defaults.instance_refresh.min_healthy_percentage: 101 is outside 0-100",
        "rollout.json:6:5: environments.staging.instance_refresh.max_healthy_percentage: 99 is outside 100-200",
        "rollout.json:4:99: defaults.instance_refresh.checkpoint_percentages.1: 40 must be greater than the checkpoint before it (50)",
        "defaults.instance_refresh.checkpoint_percentages: the last checkpoint must be 100",
        "rollout.json:8:5: environments.staging.instance_refresh.max_launch_template_versions: 1: keep at least 2",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }

    let m = Manifest::parse(
        Path::new("rollout.json"),
        "{\"app\": \"shop\",\n \"defaults\": {\"instance_refresh\": {\"min_healthy\": 5}}}".into(),
    )
    .unwrap_err();
    assert!(
        m.to_string().starts_with("rollout.json:2:")
            && m.to_string().contains("unknown field `min_healthy`"),
        "{m}"
    );
    let m = Manifest::parse(
        Path::new("rollout.json"),
        r#"{"app": "shop", "strategy": "instance_refresh"}"#.into(),
    )
    .unwrap_err();
    assert!(m.to_string().contains("`instance-refresh`"), "{m}");
}

#[tokio::test(start_paused = true)]
async fn a_rollout_killed_during_its_refresh_is_rolled_back_by_rollout_abandon() {
    let w = world_with_history();
    script(&w, &[(InstanceRefreshStatus::InProgress, 50, None)]);
    let cx = ctx(&w, MANIFEST);
    let pf = preflight(&cx).await;
    take_log(&w);
    // A kill: the rollout's future is dropped while it follows the refresh, nothing of it runs again.
    let strategy = InstanceRefresh::default();
    tokio::select! {
        r = strategy.deploy(&cx, pf) => panic!("the refresh never ends: {r:?}"),
        _ = tokio::time::sleep(Duration::from_secs(60)) => {}
    }
    let log = take_log(&w);
    assert!(log.contains(&START.to_string()), "{log:?}");
    assert_eq!(
        w.lock().unwrap().versions.len(),
        4,
        "the dead run's version 4"
    );

    let report = strategy::abandon(&cx, None).await.unwrap();
    assert_eq!(report.runs, vec![cx.run_id.clone()]);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let text = report.render();
    assert!(
        text.contains("instance refresh ir-1 of asg-shop-staging-20260101T000000Z-abcd: rolled back (RollbackSuccessful"),
        "{text}"
    );
    assert!(
        text.contains(&format!("removed launch template {LT_NAME} version 4")),
        "{text}"
    );
    let log = take_log(&w);
    assert!(
        log.contains(
            &"RollbackInstanceRefresh group=asg-shop-staging-20260101T000000Z-abcd".to_string()
        ),
        "{log:?}"
    );
    assert!(
        log.contains(&"DeleteLaunchTemplateVersions 4".to_string()),
        "{log:?}"
    );
    // The state before the rollout: the group on version 3, the default 3, version 4 gone.
    {
        let w = w.lock().unwrap();
        assert_eq!(
            w.versions.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!((w.group_version.as_str(), w.default), ("3", 3));
    }
    // Nothing left to abandon.
    let again = strategy::abandon(&cx, None).await.unwrap();
    assert!(again.runs.is_empty(), "{:?}", again.runs);
}

#[tokio::test(start_paused = true)]
async fn plan_shows_the_new_version_and_the_group_moving_to_it_as_a_diff() {
    let w = world_with_history();
    let cx = ctx(&w, MANIFEST);
    let pf = preflight(&cx).await;
    take_log(&w);
    let d = InstanceRefresh::default().changes(&cx, &pf).await.unwrap();
    assert_eq!(
        bakery_rollout::diff::render(&d, false),
        format!(
            "+ launch template {LT_NAME} version 4: ami-0new (version 3 with only the AMI changed: ami-0old -> ami-0new)\n\
             - launch template {LT_NAME} default version: 3\n\
             + launch template {LT_NAME} default version: 4\n\
             - group {GROUP}: ami-0old, version 3, 2 instance(s)\n\
             + group {GROUP}: ami-0new, version 4, 2 instance(s) replaced by an instance refresh\n\
             \x20 load balancer elb-shop-staging: serves {GROUP} (the group keeps its attachment)\n"
        )
    );
    assert_eq!(
        take_log(&w),
        [
            "DescribeLaunchTemplates",
            "DescribeLaunchTemplateVersions versions=3"
        ]
    );
    assert!(cx.requests.read_only(), "{:?}", cx.requests.snapshot());
}
