//! The rollout manifest (`manifests/rollout.json`): what the manifest file says, before defaults.
//!
//! Layout: `app`, optional `region`, `default_environment` and `strategy`; `defaults` (settings shared by
//! every environment) and `environments` (one entry per environment, each overriding `defaults` field by
//! field: objects merge, any other value replaces; lists replace whole). Every settings field is optional here; `config` fills in the
//! defaults and validates the result. Unknown fields are errors, so a typo never silently falls back to a
//! default. Errors name the file, line and column.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The manifest file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    /// Free text for humans.
    pub description: Option<String>,
    /// The app name: the `app` in `app-env`.
    pub app: Option<String>,
    /// The AWS region (else `--region`, `AWS_REGION`, the profile, us-east-1).
    pub region: Option<String>,
    /// The environment used without `--env` (default `staging`, as in seed 004).
    pub default_environment: Option<String>,
    /// How new AMIs are rolled out (default `blue-green`).
    pub strategy: Option<StrategyKind>,
    /// Settings every environment shares.
    #[serde(default)]
    pub defaults: Settings,
    /// The environments, each overriding `defaults`.
    #[serde(default)]
    pub environments: BTreeMap<String, Settings>,
}

/// How a new AMI replaces the live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// A new Auto Scaling group next to the old one; the old one goes once the new one is healthy.
    #[default]
    BlueGreen,
    /// A new launch template version with the AMI, rolled into the live group by an Auto Scaling
    /// instance refresh (seed 001).
    InstanceRefresh,
    /// A `maintain` spot fleet registering into the ALB's target group; the old fleets are cancelled
    /// once the new one is healthy (seed 002).
    SpotFleet,
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrategyKind::BlueGreen => f.write_str("blue-green"),
            StrategyKind::InstanceRefresh => f.write_str("instance-refresh"),
            StrategyKind::SpotFleet => f.write_str("spot-fleet"),
        }
    }
}

/// One environment's settings (or the shared defaults). All optional: unset means "inherit".
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The load balancer `rollout setup` creates and rollouts attach to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// The Route 53 ALIAS record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSettings>,
    /// The environment's key pair (a local public key, imported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_pair: Option<KeyPairSettings>,
    /// VPC, subnets, availability zones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSettings>,
    /// What each instance is launched with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<InstanceSettings>,
    /// Group sizes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacitySettings>,
    /// How long each phase may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<TimeoutSettings>,
    /// Extra tags on everything created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// The `instance-refresh` strategy's preferences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_refresh: Option<InstanceRefreshSettings>,
    /// Which AMIs `rollout gc` manages and how many it keeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gc: Option<GcSettings>,
    /// The `spot-fleet` strategy's fleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_fleet: Option<SpotFleetSettings>,
    /// The `blue-green` strategy's rollback window: what is kept of the previous release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenSettings>,
    /// Gates on real signals: CloudWatch alarms that must stay out of ALARM for the bake time after the
    /// cut-over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gates: Option<GatesSettings>,
}

/// `gates`: CloudWatch alarms the new release must keep out of ALARM for `bake_time` after the cut-over,
/// or the rollout rolls back by itself (blue-green: the previous release, kept running and detached during
/// the bake time, is brought back by `rollout undo`'s steps; instance-refresh: the alarms and bake time go
/// to the refresh's AlarmSpecification and BakeTime, and AWS rolls back with `auto_rollback`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatesSettings {
    /// CloudWatch alarm names, in the environment's region (`["shop-5xx", "shop-latency-p99"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarms: Option<Vec<String>>,
    /// How long every alarm must stay out of ALARM after the cut-over: `"10m"`, `"1h"`, or seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bake_time: Option<serde_json::Value>,
    /// How often the alarms are read during the bake time (blue-green; 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_interval_seconds: Option<u64>,
}

/// `blue_green` (strategy `blue-green`): the rollback window. After the cut-over the old group is detached,
/// scaled to `keep_previous_size` and kept with its launch template, so that `rollout undo` can bring it
/// back, until `keep_previous_for` has passed or `keep_previous_releases` newer ones are kept. Off by default
/// (neither set): the old group is deleted, as before.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlueGreenSettings {
    /// How many previous releases are kept (0: none; 1 when only `keep_previous_for` is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_previous_releases: Option<u32>,
    /// How long a previous release is kept: `"24h"`, `"90m"`, `"1h30m"`, `"2d"`, or seconds as a number
    /// (none: until newer releases push it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_previous_for: Option<serde_json::Value>,
    /// Instances a kept group keeps running while it is kept (0: none, the group and its launch
    /// template only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_previous_size: Option<u32>,
}

/// `spot_fleet` (strategy `spot-fleet`): the fleet each rollout requests.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpotFleetSettings {
    /// Instances the fleet maintains (`capacity.desired`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_capacity: Option<u32>,
    /// Instance types the fleet may launch, one override each (`[instances.instance_type]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_types: Option<Vec<String>>,
    /// `priceCapacityOptimized` (default), `capacityOptimized`, `capacityOptimizedPrioritized`,
    /// `diversified` or `lowestPrice` (kebab-case spellings accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation_strategy: Option<String>,
    /// Maximum price per instance-hour in USD, a number or a decimal string (none: the on-demand price).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_price: Option<serde_json::Value>,
    /// The role Spot Fleet acts as: a name in this account or an ARN (`aws-ec2-spot-fleet-tagging-role`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_fleet_role: Option<String>,
    /// How long the fleet may take to launch its target capacity (600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fulfil_timeout_seconds: Option<u64>,
    /// How long its instances may take to be healthy in the target group (`timeouts.health_seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_timeout_seconds: Option<u64>,
}

/// `gc` (`rollout gc`): this app's AMIs, by name prefix and/or tags (all must match), and how many of the
/// newest to keep.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GcSettings {
    /// The AMI names start with this (`ponyfoo-carnivore-`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ami_name_prefix: Option<String>,
    /// The AMIs carry all these tags (`{"app": "ponyfoo", "image": "carnivore"}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ami_tags: Option<BTreeMap<String, String>>,
    /// Newest AMIs (and launch template versions) kept; `--keep` wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
    /// Regions besides the manifest's where gc also works (the regions bake copied the AMIs to);
    /// `--regions` replaces them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// Remove AMIs shared with other accounts too (default false: a launch permission keeps an AMI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_shared: Option<bool>,
    /// Deprecate an AMI this long before deregistering it (`"7d"`, `"24h"`, seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecate_after: Option<serde_json::Value>,
    /// Deregister an AMI this long after its deprecation time (`"30d"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_after: Option<serde_json::Value>,
}

/// `instance_refresh` (strategy `instance-refresh`): the refresh's preferences and bounds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceRefreshSettings {
    /// Percentage of the group that stays in service during the refresh (90).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_healthy_percentage: Option<u32>,
    /// Percentage the group may grow to while replacing (100-200; AWS's default: replace in place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_healthy_percentage: Option<u32>,
    /// Seconds a new instance warms up before it counts (the group's grace period).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_warmup_seconds: Option<u32>,
    /// Pause points, ascending percentages ending at 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_percentages: Option<Vec<u32>>,
    /// Seconds to wait at each checkpoint (AWS's default: 3600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_delay_seconds: Option<u32>,
    /// AWS rolls the group back when the refresh fails (true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_rollback: Option<bool>,
    /// CloudWatch alarms whose ALARM state fails the refresh (and rolls it back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarms: Option<Vec<String>>,
    /// Skip instances already on the new launch template version (true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_matching: Option<bool>,
    /// How long the refresh may take before rollout cancels it (3600, as in seed 001).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Launch template versions kept; older ones beyond this are deleted (10, at least 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_launch_template_versions: Option<u32>,
}

/// Classic ELB or ALB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LbKind {
    /// Classic Load Balancer (seed 004's).
    Classic,
    /// Application Load Balancer with one target group and one listener.
    Alb,
}

impl fmt::Display for LbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LbKind::Classic => "classic",
            LbKind::Alb => "alb",
        })
    }
}

/// Listener and instance protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// HTTP.
    Http,
    /// HTTPS (needs `certificate_arn` on a listener).
    Https,
    /// TCP (classic only).
    Tcp,
    /// SSL (classic only).
    Ssl,
}

impl Protocol {
    /// As AWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
            Protocol::Tcp => "TCP",
            Protocol::Ssl => "SSL",
        }
    }
}

/// `load_balancer`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerSettings {
    /// `classic` (default) or `alb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<LbKind>,
    /// `internet-facing` (default) or `internal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Listener port (80).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Listener protocol (HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Instance port (80).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_port: Option<u16>,
    /// Instance protocol (HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_protocol: Option<Protocol>,
    /// ACM/IAM certificate for an HTTPS/SSL listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    /// The health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSettings>,
    /// Connection draining / deregistration delay in seconds (300; 0 turns draining off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draining_seconds: Option<u32>,
    /// Who may reach the listener (the load balancer's security group): `["0.0.0.0/0"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_cidrs: Option<Vec<String>>,
}

/// `load_balancer.health_check`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSettings {
    /// HTTP (default), HTTPS, TCP, SSL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Port (the instance port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Path for HTTP(S) (`/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Seconds between checks (30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u32>,
    /// Seconds before a check fails (5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Successes to become healthy (2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
    /// Failures to become unhealthy (2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
}

/// `dns`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// The Route 53 hosted zone (`Z123...` or `/hostedzone/Z123...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    /// The zone's domain (`example.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The environment served at the apex (`production`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apex_environment: Option<String>,
    /// Route 53 evaluates the load balancer's health (true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluate_target_health: Option<bool>,
    /// The load balancer's canonical hosted zone, when its description lacks one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer_zone_id: Option<String>,
}

/// `key_pair`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPairSettings {
    /// OpenSSH public key file, relative to the manifest; `{env}` is replaced by the environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_file: Option<String>,
}

/// `network`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// The VPC (default: the region's default VPC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// Subnets for the load balancer and the groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnets: Option<Vec<String>>,
    /// Availability zones, when no subnets are given (seed 004's `us-east-1a us-east-1b`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zones: Option<Vec<String>>,
}

/// `instances`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSettings {
    /// Instance type (t3.micro).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// More security groups (ids or names in the VPC), besides the environment's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    /// User data file, relative to the manifest; `{env}` is replaced by the environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data_file: Option<String>,
    /// IAM instance profile name or ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<String>,
    /// Require IMDSv2 tokens (true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_imdsv2: Option<bool>,
    /// Seconds the group ignores health checks after a launch (300, as in seed 004).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<u32>,
}

/// `capacity`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySettings {
    /// Minimum (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    /// Maximum (2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Desired (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
    /// Start the new group at the live groups' desired capacity when that is larger (true), so that a
    /// rollout during a scale-out does not shrink the fleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_live: Option<bool>,
}

/// `timeouts` (all in seconds).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutSettings {
    /// How long the new group has to become healthy before it is rolled back (900).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_seconds: Option<u64>,
    /// How long the new group must stay healthy, uninterrupted, before the old one is touched (0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_healthy_seconds: Option<u64>,
    /// How long deregistering the old instances may take (draining + 120).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_seconds: Option<u64>,
    /// How long the old group's instances may take to terminate, and the group to go (900).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retire_seconds: Option<u64>,
    /// How long removing a failed new group may take (900).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_seconds: Option<u64>,
}

/// One problem in a manifest, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// 1-based line and column in the manifest, when the problem has a place there.
    pub position: Option<(usize, usize)>,
    /// The field (`environments.production.capacity.min`) or flag (`--min`).
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Everything wrong with a manifest (and the flags that override it).
#[derive(Debug, Clone, thiserror::Error)]
pub struct ManifestError {
    /// The manifest file.
    pub path: PathBuf,
    /// The problems, in file order where known.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.position {
                Some((line, col)) => write!(f, "{}:{line}:{col}: ", self.path.display())?,
                None => write!(f, "{}: ", self.path.display())?,
            }
            if p.field.is_empty() {
                write!(f, "{}", p.message)?;
            } else {
                write!(f, "{}: {}", p.field, p.message)?;
            }
        }
        Ok(())
    }
}

/// A manifest read from a file, with its text kept for error positions.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub source: String,
    /// What it says.
    pub raw: RawManifest,
}

impl Manifest {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, crate::RolloutError> {
        let source = std::fs::read_to_string(path).map_err(|source| crate::RolloutError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(path, source)?)
    }

    /// Parses manifest text; `path` is for messages and relative files.
    pub fn parse(path: &Path, source: String) -> Result<Self, ManifestError> {
        match serde_json::from_str::<RawManifest>(&source) {
            Ok(raw) => Ok(Manifest {
                path: path.to_path_buf(),
                source,
                raw,
            }),
            Err(e) => Err(ManifestError {
                path: path.to_path_buf(),
                problems: vec![Problem {
                    position: (e.line() > 0).then(|| (e.line(), e.column())),
                    field: String::new(),
                    message: serde_error_message(&e),
                }],
            }),
        }
    }

    /// The directory relative file names are resolved against.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Where `dotted` (`environments.staging.capacity.min`) is in the file.
    pub fn position_of(&self, dotted: &str) -> Option<(usize, usize)> {
        let path: Vec<&str> = dotted.split('.').collect();
        locate(&self.source, &path)
    }
}

fn serde_error_message(e: &serde_json::Error) -> String {
    // serde_json appends " at line L column C"; the position is printed in front instead.
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// `base` with `over` applied as a JSON merge patch (RFC 7386): objects merge key by key, anything else
/// (numbers, strings, lists) replaces.
pub fn merge(base: &Settings, over: &Settings) -> Settings {
    let mut b = serde_json::to_value(base).unwrap_or(serde_json::Value::Null);
    let o = serde_json::to_value(over).unwrap_or(serde_json::Value::Null);
    merge_values(&mut b, o);
    // Both sides were valid Settings and a merge of valid objects stays valid.
    serde_json::from_value(b).unwrap_or_else(|_| over.clone())
}

fn merge_values(base: &mut serde_json::Value, over: serde_json::Value) {
    use serde_json::Value;
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge_values(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Finds the 1-based (line, column) of the key at `path` (object keys, or array indexes) in JSON text
/// that has already parsed. Returns the deepest position found, so a missing leaf points at its parent.
pub fn locate(src: &str, path: &[&str]) -> Option<(usize, usize)> {
    let bytes = src.as_bytes();
    let mut s = Scanner { b: bytes, i: 0 };
    let mut found = None;
    s.value(path, &mut found);
    found.map(|off| line_col(src, off))
}

fn line_col(src: &str, off: usize) -> (usize, usize) {
    let before = &src[..off.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn string(&mut self) -> String {
        // At the opening quote.
        let start = self.i + 1;
        self.i += 1;
        while self.i < self.b.len() && self.b[self.i] != b'"' {
            if self.b[self.i] == b'\\' {
                self.i += 1;
            }
            self.i += 1;
        }
        let raw = &self.b[start..self.i.min(self.b.len())];
        self.i += 1;
        serde_json::from_slice::<String>(&[b"\"", raw, b"\""].concat())
            .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
    }

    /// Skips (or descends into) one value. `path` is what is still to be found below it.
    fn value(&mut self, path: &[&str], found: &mut Option<usize>) {
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                loop {
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b'}') => {
                            self.i += 1;
                            return;
                        }
                        Some(b',') => {
                            self.i += 1;
                            continue;
                        }
                        Some(b'"') => {
                            let key_at = self.i;
                            let key = self.string();
                            self.ws();
                            self.i += 1; // ':'
                            if path.first() == Some(&key.as_str()) {
                                *found = Some(key_at);
                                self.value(&path[1..], found);
                            } else {
                                self.value(&[], found);
                            }
                        }
                        _ => return,
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut index = 0usize;
                loop {
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b']') => {
                            self.i += 1;
                            return;
                        }
                        Some(b',') => {
                            self.i += 1;
                            index += 1;
                            continue;
                        }
                        Some(_) => {
                            if path.first().and_then(|p| p.parse::<usize>().ok()) == Some(index) {
                                self.ws();
                                *found = Some(self.i);
                                self.value(&path[1..], found);
                            } else {
                                self.value(&[], found);
                            }
                        }
                        None => return,
                    }
                }
            }
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while self.i < self.b.len() && !matches!(self.b[self.i], b',' | b'}' | b']') {
                    self.i += 1;
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
  "app": "shop",
  "defaults": {
    "capacity": {"min": 1, "max": 2},
    "network": {"availability_zones": ["us-east-1a", "us-east-1b"]}
  },
  "environments": {
    "staging": {},
    "production": {
      "capacity": {
        "min": 3
      }
    }
  }
}"#;

    #[test]
    fn parses_and_locates_fields() {
        let m = Manifest::parse(Path::new("m.json"), SAMPLE.to_string()).unwrap();
        assert_eq!(m.raw.app.as_deref(), Some("shop"));
        assert_eq!(m.position_of("app"), Some((2, 3)));
        assert_eq!(
            m.position_of("environments.production.capacity.min"),
            Some((11, 9))
        );
        assert_eq!(m.position_of("defaults.capacity.max"), Some((4, 28)));
        assert_eq!(
            m.position_of("defaults.network.availability_zones.1"),
            Some((5, 54))
        );
        // A missing leaf points at the deepest parent found.
        assert_eq!(m.position_of("environments.staging.capacity"), Some((8, 5)));
    }

    #[test]
    fn unknown_fields_are_errors_with_a_position() {
        let src = "{\n  \"app\": \"x\",\n  \"defaults\": {\"capacity\": {\"minimum\": 1}}\n}";
        let e = Manifest::parse(Path::new("m.json"), src.to_string()).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("m.json:3:"), "{text}");
        assert!(text.contains("unknown field `minimum`"), "{text}");
        assert!(text.contains("expected one of `min`, `max`"), "{text}");
    }

    #[test]
    fn type_errors_name_what_was_expected() {
        let src = "{\"app\": \"x\", \"defaults\": {\"capacity\": {\"min\": \"one\"}}}";
        let e = Manifest::parse(Path::new("m.json"), src.to_string()).unwrap_err();
        assert!(e.to_string().contains("expected u32"), "{e}");
        let src = "{\"app\": \"x\", \"defaults\": {\"load_balancer\": {\"kind\": \"nlb\"}}}";
        let e = Manifest::parse(Path::new("m.json"), src.to_string()).unwrap_err();
        assert!(e.to_string().contains("expected `classic` or `alb`"), "{e}");
    }

    #[test]
    fn environments_override_defaults_field_by_field() {
        let m = Manifest::parse(Path::new("m.json"), SAMPLE.to_string()).unwrap();
        let prod = merge(&m.raw.defaults, &m.raw.environments["production"]);
        let cap = prod.capacity.unwrap();
        assert_eq!(cap.min, Some(3));
        assert_eq!(cap.max, Some(2));
        assert_eq!(
            prod.network.unwrap().availability_zones.unwrap(),
            vec!["us-east-1a", "us-east-1b"]
        );
    }
}
