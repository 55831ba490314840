//! The manifest lifted into a validated configuration: defaults filled in, the environment's overrides and
//! the command line's applied, every problem reported at once. Nothing downstream sees an invalid value.

mod blue_green;
mod gates;
mod instance_refresh;
mod spot_fleet;

pub use blue_green::{KeepWindow, human as human_duration, parse_keep_for};
pub use gates::{Gates, MAX_BAKE_TIME};
pub use instance_refresh::InstanceRefreshConfig;
pub use spot_fleet::SpotFleetConfig;

use crate::manifest::{
    CapacitySettings, InstanceSettings, LbKind, LoadBalancerSettings, Manifest, ManifestError,
    Problem, Protocol, Settings, StrategyKind, TimeoutSettings, merge,
};
use crate::names::Names;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The environment used without `--env` or `default_environment`, as in seed 004 (docs/origins.md).
pub const DEFAULT_ENV: &str = "staging";

/// What the command line overrides. Each field wins over the manifest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--instance-type`.
    pub instance_type: Option<String>,
    /// `--min`.
    pub min: Option<u32>,
    /// `--max`.
    pub max: Option<u32>,
    /// `--desired`.
    pub desired: Option<u32>,
    /// `--health-timeout`.
    pub health_timeout: Option<Duration>,
    /// `--min-healthy-time`.
    pub min_healthy: Option<Duration>,
}

impl Overrides {
    fn as_settings(&self) -> Settings {
        let mut s = Settings::default();
        if self.instance_type.is_some() {
            s.instances = Some(InstanceSettings {
                instance_type: self.instance_type.clone(),
                ..Default::default()
            });
        }
        if self.min.is_some() || self.max.is_some() || self.desired.is_some() {
            s.capacity = Some(CapacitySettings {
                min: self.min,
                max: self.max,
                desired: self.desired,
                match_live: None,
            });
        }
        if self.health_timeout.is_some() || self.min_healthy.is_some() {
            s.timeouts = Some(TimeoutSettings {
                health_seconds: self.health_timeout.map(|d| d.as_secs()),
                min_healthy_seconds: self.min_healthy.map(|d| d.as_secs()),
                ..Default::default()
            });
        }
        s
    }

    /// The flag that set `field`, if a flag did.
    fn flag_for(&self, field: &str) -> Option<&'static str> {
        match field {
            "instances.instance_type" if self.instance_type.is_some() => Some("--instance-type"),
            "capacity.min" if self.min.is_some() => Some("--min"),
            "capacity.max" if self.max.is_some() => Some("--max"),
            "capacity.desired" if self.desired.is_some() => Some("--desired"),
            "timeouts.health_seconds" if self.health_timeout.is_some() => Some("--health-timeout"),
            "timeouts.min_healthy_seconds" if self.min_healthy.is_some() => {
                Some("--min-healthy-time")
            }
            _ => None,
        }
    }
}

/// The load balancer's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Protocol.
    pub protocol: Protocol,
    /// Port.
    pub port: u16,
    /// Path (HTTP/HTTPS).
    pub path: String,
    /// Seconds between checks.
    pub interval: u32,
    /// Seconds before a check fails.
    pub timeout: u32,
    /// Successes to become healthy.
    pub healthy_threshold: u32,
    /// Failures to become unhealthy.
    pub unhealthy_threshold: u32,
}

impl HealthCheck {
    /// The classic ELB form: `HTTP:80/api/status/health`, `TCP:80`.
    pub fn classic_target(&self) -> String {
        match self.protocol {
            Protocol::Http | Protocol::Https => {
                format!("{}:{}{}", self.protocol.as_str(), self.port, self.path)
            }
            Protocol::Tcp | Protocol::Ssl => format!("{}:{}", self.protocol.as_str(), self.port),
        }
    }
}

/// The load balancer.
#[derive(Debug, Clone, PartialEq)]
pub struct LbConfig {
    /// Classic or ALB.
    pub kind: LbKind,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    /// Listener port.
    pub port: u16,
    /// Listener protocol.
    pub protocol: Protocol,
    /// Instance port.
    pub instance_port: u16,
    /// Instance protocol.
    pub instance_protocol: Protocol,
    /// Certificate for HTTPS/SSL listeners.
    pub certificate_arn: Option<String>,
    /// Health check.
    pub health_check: HealthCheck,
    /// Connection draining / deregistration delay (0 = off).
    pub draining_seconds: u32,
    /// CIDRs allowed to reach the listener.
    pub ingress_cidrs: Vec<String>,
}

/// The Route 53 record.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// Hosted zone id without the `/hostedzone/` prefix.
    pub hosted_zone_id: String,
    /// The record: `env.domain.` or the apex `domain.`.
    pub record_name: String,
    /// EvaluateTargetHealth.
    pub evaluate_target_health: bool,
    /// The load balancer's zone when its description lacks one.
    pub load_balancer_zone_id: Option<String>,
}

/// Network placement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkConfig {
    /// The VPC; the default VPC when `None`.
    pub vpc_id: Option<String>,
    /// Subnets (win over zones).
    pub subnets: Vec<String>,
    /// Availability zones.
    pub availability_zones: Vec<String>,
}

/// What instances are launched with.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceConfig {
    /// Instance type.
    pub instance_type: String,
    /// Extra security groups (ids or names).
    pub security_groups: Vec<String>,
    /// The user data file (read when a launch template is made).
    pub user_data_file: Option<PathBuf>,
    /// IAM instance profile name or ARN.
    pub iam_instance_profile: Option<String>,
    /// IMDSv2 required.
    pub require_imdsv2: bool,
    /// ASG health check grace period.
    pub grace_period_seconds: u32,
}

/// Group sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Minimum.
    pub min: u32,
    /// Maximum.
    pub max: u32,
    /// Desired.
    pub desired: u32,
    /// Start at the live desired capacity when larger.
    pub match_live: bool,
}

impl Capacity {
    /// The new group's desired capacity given the live groups' total desired capacity.
    pub fn desired_given_live(&self, live_desired: u32) -> u32 {
        if self.match_live {
            self.desired.max(live_desired).min(self.max)
        } else {
            self.desired
        }
    }
}

/// Phase timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// New group healthy.
    pub health: Duration,
    /// Uninterrupted health before cut-over.
    pub min_healthy: Duration,
    /// Old instances deregistered.
    pub drain: Duration,
    /// Old group gone.
    pub retire: Duration,
    /// Failed new group gone.
    pub rollback: Duration,
}

/// One environment's validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutConfig {
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// Names (app, env).
    pub names: Names,
    /// The manifest's region, if it names one.
    pub region: Option<String>,
    /// The strategy.
    pub strategy: StrategyKind,
    /// The load balancer.
    pub lb: LbConfig,
    /// DNS, when configured.
    pub dns: Option<DnsConfig>,
    /// The public key file to import as the environment's key pair, when configured.
    pub public_key_file: Option<PathBuf>,
    /// Placement.
    pub network: NetworkConfig,
    /// Instances.
    pub instances: InstanceConfig,
    /// Sizes.
    pub capacity: Capacity,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Extra tags.
    pub tags: BTreeMap<String, String>,
    /// The `instance-refresh` strategy's settings (defaults when the block is absent).
    pub instance_refresh: InstanceRefreshConfig,
    /// `rollout gc`'s AMI selection and retention (default selection: tag `app=APP`).
    pub gc: crate::retention::GcConfig,
    /// The `spot-fleet` strategy's settings (defaults when the block is absent).
    pub spot_fleet: SpotFleetConfig,
    /// The `blue-green` strategy's rollback window (off when the block is absent).
    pub keep: KeepWindow,
    /// Alarm gates and the bake time (`gates`).
    pub gates: Gates,
}

impl RolloutConfig {
    /// Lifts the manifest for `env` (else `default_environment`, else staging) with the flags on top.
    pub fn resolve(
        m: &Manifest,
        env: Option<&str>,
        flags: &Overrides,
    ) -> Result<Self, ManifestError> {
        let mut v = Validator {
            m,
            env: String::new(),
            flags,
            problems: Vec::new(),
        };
        let app = match m.raw.app.as_deref() {
            Some(a) => {
                v.name("app", a);
                a.to_string()
            }
            None => {
                v.problem("app", "missing: the app name (the `app` in `elb-app-env`)");
                String::new()
            }
        };
        let env = env
            .map(str::to_string)
            .or_else(|| m.raw.default_environment.clone())
            .unwrap_or_else(|| DEFAULT_ENV.to_string());
        v.env = env.clone();
        let env_settings = match m.raw.environments.get(&env) {
            Some(s) => s.clone(),
            None => {
                let known: Vec<&str> = m.raw.environments.keys().map(String::as_str).collect();
                v.problems.push(Problem {
                    position: m.position_of("environments"),
                    field: "--env".into(),
                    message: format!(
                        "environment `{env}` is not in the manifest's `environments` ({})",
                        if known.is_empty() {
                            "none are".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
                Settings::default()
            }
        };
        v.name("--env", &env);
        let s = merge(&merge(&m.raw.defaults, &env_settings), &flags.as_settings());
        let names = Names::new(&app, &env);

        let lb = v.load_balancer(s.load_balancer.clone().unwrap_or_default(), &names);
        let dns = s.dns.clone().and_then(|d| {
            let zone = d.hosted_zone_id.clone().or_else(|| {
                v.problem("dns.hosted_zone_id", "missing: the Route 53 hosted zone id");
                None
            })?;
            let domain = d.domain.clone().or_else(|| {
                v.problem(
                    "dns.domain",
                    "missing: the hosted zone's domain (example.com)",
                );
                None
            })?;
            if domain.trim_end_matches('.').is_empty() || domain.contains(' ') {
                v.problem("dns.domain", &format!("`{domain}` is not a domain name"));
            }
            Some(DnsConfig {
                hosted_zone_id: zone.trim_start_matches("/hostedzone/").to_string(),
                record_name: names.record_name(
                    &domain,
                    d.apex_environment.as_deref().unwrap_or("production"),
                ),
                evaluate_target_health: d.evaluate_target_health.unwrap_or(true),
                load_balancer_zone_id: d.load_balancer_zone_id.clone(),
            })
        });
        let dir = m.dir();
        let public_key_file = s
            .key_pair
            .as_ref()
            .and_then(|k| k.public_key_file.as_deref())
            .map(|f| dir.join(f.replace("{env}", &env)));
        let net = s.network.clone().unwrap_or_default();
        let network = NetworkConfig {
            vpc_id: net.vpc_id.clone(),
            subnets: net.subnets.clone().unwrap_or_default(),
            availability_zones: net.availability_zones.clone().unwrap_or_default(),
        };
        for (i, sn) in network.subnets.iter().enumerate() {
            if !sn.starts_with("subnet-") {
                v.problem(
                    &format!("network.subnets.{i}"),
                    &format!("`{sn}` is not a subnet id (subnet-...)"),
                );
            }
        }
        if let Some(vpc) = &network.vpc_id
            && !vpc.starts_with("vpc-")
        {
            v.problem(
                "network.vpc_id",
                &format!("`{vpc}` is not a VPC id (vpc-...)"),
            );
        }
        let inst = s.instances.clone().unwrap_or_default();
        let instances = InstanceConfig {
            instance_type: inst
                .instance_type
                .clone()
                .unwrap_or_else(|| "t3.micro".into()),
            security_groups: inst.security_groups.clone().unwrap_or_default(),
            user_data_file: inst
                .user_data_file
                .as_deref()
                .map(|f| dir.join(f.replace("{env}", &env))),
            iam_instance_profile: inst.iam_instance_profile.clone(),
            require_imdsv2: inst.require_imdsv2.unwrap_or(true),
            grace_period_seconds: inst.health_check_grace_period_seconds.unwrap_or(300),
        };
        if instances.instance_type.is_empty() || !instances.instance_type.contains('.') {
            v.problem(
                "instances.instance_type",
                &format!(
                    "`{}` is not an instance type (t3.micro)",
                    instances.instance_type
                ),
            );
        }
        let cap = s.capacity.clone().unwrap_or_default();
        let capacity = Capacity {
            min: cap.min.unwrap_or(1),
            max: cap.max.unwrap_or(2),
            desired: cap.desired.unwrap_or(1),
            match_live: cap.match_live.unwrap_or(true),
        };
        if capacity.desired == 0 {
            v.problem(
                "capacity.desired",
                "must be at least 1: a rollout to zero instances leaves the load balancer with none",
            );
        }
        if capacity.min > capacity.desired {
            v.problem(
                "capacity.min",
                &format!(
                    "min ({}) is greater than desired ({})",
                    capacity.min, capacity.desired
                ),
            );
        }
        if capacity.desired > capacity.max {
            v.problem(
                "capacity.desired",
                &format!(
                    "desired ({}) is greater than max ({})",
                    capacity.desired, capacity.max
                ),
            );
        }
        let t = s.timeouts.clone().unwrap_or_default();
        let secs = Duration::from_secs;
        let timeouts = Timeouts {
            health: secs(t.health_seconds.unwrap_or(900)),
            min_healthy: secs(t.min_healthy_seconds.unwrap_or(0)),
            drain: secs(
                t.drain_seconds
                    .unwrap_or(u64::from(lb.draining_seconds) + 120),
            ),
            retire: secs(t.retire_seconds.unwrap_or(900)),
            rollback: secs(t.rollback_seconds.unwrap_or(900)),
        };
        for (field, d) in [
            ("timeouts.health_seconds", timeouts.health),
            ("timeouts.drain_seconds", timeouts.drain),
            ("timeouts.retire_seconds", timeouts.retire),
            ("timeouts.rollback_seconds", timeouts.rollback),
        ] {
            if d.is_zero() {
                v.problem(field, "must be at least 1 second");
            }
        }
        if timeouts.min_healthy >= timeouts.health && !timeouts.health.is_zero() {
            v.problem(
                "timeouts.min_healthy_seconds",
                &format!(
                    "{} s leaves no time within the health timeout ({} s)",
                    timeouts.min_healthy.as_secs(),
                    timeouts.health.as_secs()
                ),
            );
        }
        let tags = s.tags.clone().unwrap_or_default();
        for k in tags.keys() {
            if k.starts_with("bakery:") || k.starts_with("aws:") || k == "Name" {
                v.problem(
                    &format!("tags.{k}"),
                    "is reserved (bakery:*, aws:* and Name are set by rollout)",
                );
            }
        }
        let instance_refresh = v.instance_refresh(s.instance_refresh.clone().unwrap_or_default());
        let (gc, gc_problems) = crate::retention::GcConfig::resolve(s.gc.as_ref(), &app);
        for (field, message) in gc_problems {
            v.problem(&field, &message);
        }
        let strategy = m.raw.strategy.unwrap_or_default();
        let spot_fleet = v.spot_fleet(
            s.spot_fleet.clone().unwrap_or_default(),
            &instances,
            &capacity,
            &timeouts,
        );
        let keep = v.blue_green(s.blue_green.clone().unwrap_or_default(), &capacity);
        if strategy != StrategyKind::BlueGreen && keep.on() {
            v.problem(
                "blue_green",
                &format!(
                    "the rollback window is blue-green's; strategy {strategy} keeps no previous group"
                ),
            );
        }
        let gates = v.gates(s.gates.clone().unwrap_or_default(), strategy);
        let mut instance_refresh = instance_refresh;
        if strategy == StrategyKind::InstanceRefresh {
            // The same alarms feed the refresh's AlarmSpecification (with instance_refresh.alarms).
            for a in &gates.alarms {
                if !instance_refresh.alarms.contains(a) {
                    instance_refresh.alarms.push(a.clone());
                }
            }
            instance_refresh.bake_time = gates.bake_time;
        }
        if strategy == StrategyKind::SpotFleet && lb.kind != LbKind::Alb {
            v.problem(
                "strategy",
                "spot-fleet registers the fleet's instances in a target group: it needs `load_balancer.kind: \"alb\"`",
            );
        }
        if !v.problems.is_empty() {
            return Err(ManifestError {
                path: m.path.clone(),
                problems: v.problems,
            });
        }
        Ok(RolloutConfig {
            manifest_path: m.path.clone(),
            names,
            region: m.raw.region.clone(),
            strategy,
            lb,
            dns,
            public_key_file,
            network,
            instances,
            capacity,
            timeouts,
            tags,
            instance_refresh,
            gc,
            spot_fleet,
            keep,
            gates,
        })
    }
}

struct Validator<'a> {
    m: &'a Manifest,
    env: String,
    flags: &'a Overrides,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    /// Records a problem with `field` (a settings path such as `capacity.min`, or a top-level key),
    /// placed where it is set: the flag, else the environment's entry, else `defaults`.
    fn problem(&mut self, field: &str, message: &str) {
        if let Some(flag) = self.flags.flag_for(field) {
            self.problems.push(Problem {
                position: None,
                field: flag.to_string(),
                message: message.to_string(),
            });
            return;
        }
        let top = ["app", "region", "default_environment", "strategy", "--env"];
        let (field, position) = if top.contains(&field) {
            (field.to_string(), self.m.position_of(field))
        } else {
            let in_env = format!("environments.{}.{field}", self.env);
            let in_defaults = format!("defaults.{field}");
            if self.set_in(&in_env) {
                let p = self.m.position_of(&in_env);
                (in_env, p)
            } else if self.set_in(&in_defaults) {
                let p = self.m.position_of(&in_defaults);
                (in_defaults, p)
            } else {
                (format!("{field} (default)"), None)
            }
        };
        self.problems.push(Problem {
            position,
            field,
            message: message.to_string(),
        });
    }

    fn set_in(&self, dotted: &str) -> bool {
        let mut v = match serde_json::from_str::<serde_json::Value>(&self.m.source) {
            Ok(v) => v,
            Err(_) => return false,
        };
        for part in dotted.split('.') {
            v = match v {
                serde_json::Value::Object(mut o) => match o.remove(part) {
                    Some(x) => x,
                    None => return false,
                },
                serde_json::Value::Array(mut a) => match part.parse::<usize>() {
                    Ok(i) if i < a.len() => a.swap_remove(i),
                    _ => return false,
                },
                _ => return false,
            };
        }
        true
    }

    /// App and environment names end up in load balancer, group and DNS names.
    fn name(&mut self, field: &str, value: &str) {
        let ok = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !value.starts_with('-')
            && !value.ends_with('-');
        if !ok {
            self.problem(
                field,
                &format!(
                    "`{value}` must be lowercase letters, digits and inner hyphens (it becomes part of DNS and resource names)"
                ),
            );
        }
    }

    fn load_balancer(&mut self, lb: LoadBalancerSettings, names: &Names) -> LbConfig {
        let kind = lb.kind.unwrap_or(LbKind::Classic);
        let port = lb.port.unwrap_or(80);
        let instance_port = lb.instance_port.unwrap_or(80);
        let protocol = lb.protocol.unwrap_or(Protocol::Http);
        let instance_protocol = lb.instance_protocol.unwrap_or(Protocol::Http);
        let hc = lb.health_check.clone().unwrap_or_default();
        let health_check = HealthCheck {
            protocol: hc.protocol.unwrap_or(instance_protocol),
            port: hc.port.unwrap_or(instance_port),
            path: hc.path.clone().unwrap_or_else(|| "/".into()),
            interval: hc.interval_seconds.unwrap_or(30),
            timeout: hc.timeout_seconds.unwrap_or(5),
            healthy_threshold: hc.healthy_threshold.unwrap_or(2),
            unhealthy_threshold: hc.unhealthy_threshold.unwrap_or(2),
        };
        let scheme = lb
            .scheme
            .clone()
            .unwrap_or_else(|| "internet-facing".into());
        if scheme != "internet-facing" && scheme != "internal" {
            self.problem(
                "load_balancer.scheme",
                &format!("`{scheme}`: expected `internet-facing` or `internal`"),
            );
        }
        for (field, value) in [
            ("load_balancer.port", port),
            ("load_balancer.instance_port", instance_port),
            ("load_balancer.health_check.port", health_check.port),
        ] {
            if value == 0 {
                self.problem(field, "must be a port number (1-65535)");
            }
        }
        if kind == LbKind::Alb {
            for (field, p) in [
                ("load_balancer.protocol", protocol),
                ("load_balancer.instance_protocol", instance_protocol),
                ("load_balancer.health_check.protocol", health_check.protocol),
            ] {
                if !matches!(p, Protocol::Http | Protocol::Https) {
                    self.problem(
                        field,
                        &format!("{} is not available on an ALB (HTTP or HTTPS)", p.as_str()),
                    );
                }
            }
        }
        if matches!(protocol, Protocol::Https | Protocol::Ssl) && lb.certificate_arn.is_none() {
            self.problem(
                "load_balancer.certificate_arn",
                &format!(
                    "missing: a {} listener needs a certificate ARN",
                    protocol.as_str()
                ),
            );
        }
        if matches!(health_check.protocol, Protocol::Http | Protocol::Https)
            && !health_check.path.starts_with('/')
        {
            self.problem(
                "load_balancer.health_check.path",
                &format!("`{}` must start with /", health_check.path),
            );
        }
        if !(5..=300).contains(&health_check.interval) {
            self.problem(
                "load_balancer.health_check.interval_seconds",
                &format!("{} is outside 5-300", health_check.interval),
            );
        }
        if !(2..=60).contains(&health_check.timeout) {
            self.problem(
                "load_balancer.health_check.timeout_seconds",
                &format!("{} is outside 2-60", health_check.timeout),
            );
        } else if health_check.timeout >= health_check.interval {
            self.problem(
                "load_balancer.health_check.timeout_seconds",
                &format!(
                    "{} must be less than the interval ({})",
                    health_check.timeout, health_check.interval
                ),
            );
        }
        for (field, t) in [
            (
                "load_balancer.health_check.healthy_threshold",
                health_check.healthy_threshold,
            ),
            (
                "load_balancer.health_check.unhealthy_threshold",
                health_check.unhealthy_threshold,
            ),
        ] {
            if !(2..=10).contains(&t) {
                self.problem(field, &format!("{t} is outside 2-10"));
            }
        }
        let draining_seconds = lb.draining_seconds.unwrap_or(300);
        if draining_seconds > 3600 {
            self.problem(
                "load_balancer.draining_seconds",
                &format!("{draining_seconds} is outside 0-3600"),
            );
        }
        let ingress_cidrs = lb
            .ingress_cidrs
            .clone()
            .unwrap_or_else(|| vec!["0.0.0.0/0".into()]);
        for (i, c) in ingress_cidrs.iter().enumerate() {
            if !looks_like_cidr(c) {
                self.problem(
                    &format!("load_balancer.ingress_cidrs.{i}"),
                    &format!("`{c}` is not a CIDR block (203.0.113.0/24)"),
                );
            }
        }
        let limit = 32;
        for n in [names.load_balancer(), names.target_group()] {
            if n.len() > limit && (kind == LbKind::Alb || n.starts_with("elb-")) {
                self.problem(
                    "app",
                    &format!(
                        "`{n}` is {} characters; load balancer and target group names are at most {limit}: shorten the app or environment name",
                        n.len()
                    ),
                );
            }
        }
        LbConfig {
            kind,
            scheme,
            port,
            protocol,
            instance_port,
            instance_protocol,
            certificate_arn: lb.certificate_arn.clone(),
            health_check,
            draining_seconds,
            ingress_cidrs,
        }
    }
}

fn looks_like_cidr(c: &str) -> bool {
    let Some((addr, bits)) = c.split_once('/') else {
        return false;
    };
    match (addr.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest(src: &str) -> Manifest {
        Manifest::parse(Path::new("rollout.json"), src.to_string()).unwrap()
    }

    #[test]
    fn defaults_are_the_seeds() {
        let m = manifest(r#"{"app": "ponyfoo", "environments": {"staging": {}}}"#);
        let c = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap();
        assert_eq!(c.names.env, "staging");
        assert_eq!(c.lb.kind, LbKind::Classic);
        assert_eq!(c.lb.port, 80);
        assert_eq!(c.lb.draining_seconds, 300);
        assert_eq!(c.lb.health_check.classic_target(), "HTTP:80/");
        assert_eq!(
            c.capacity,
            Capacity {
                min: 1,
                max: 2,
                desired: 1,
                match_live: true
            }
        );
        assert_eq!(c.instances.grace_period_seconds, 300);
        assert_eq!(c.timeouts.drain, Duration::from_secs(420));
        assert!(c.dns.is_none());
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_defaults() {
        let m = manifest(
            r#"{"app": "shop",
                "defaults": {"capacity": {"min": 1, "max": 4, "desired": 2}, "instances": {"instance_type": "t3.small"}},
                "environments": {"production": {"capacity": {"desired": 3}}}}"#,
        );
        let flags = Overrides {
            max: Some(6),
            ..Default::default()
        };
        let c = RolloutConfig::resolve(&m, Some("production"), &flags).unwrap();
        assert_eq!(
            (c.capacity.min, c.capacity.desired, c.capacity.max),
            (1, 3, 6)
        );
        assert_eq!(c.instances.instance_type, "t3.small");
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let src = r#"{
  "app": "Shop",
  "defaults": {
    "capacity": {"min": 3, "max": 2, "desired": 2},
    "load_balancer": {"health_check": {"interval_seconds": 5, "timeout_seconds": 10}}
  },
  "environments": {"staging": {"load_balancer": {"ingress_cidrs": ["everyone"]}}}
}"#;
        let e = RolloutConfig::resolve(&manifest(src), None, &Overrides::default()).unwrap_err();
        let text = e.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.contains(&"rollout.json:2:3: app: `Shop` must be lowercase letters, digits and inner hyphens (it becomes part of DNS and resource names)"),
            "{text}"
        );
        assert!(
            text.contains(
                "rollout.json:4:18: defaults.capacity.min: min (3) is greater than desired (2)"
            ),
            "{text}"
        );
        assert!(
            text.contains("defaults.load_balancer.health_check.timeout_seconds: 10 must be less than the interval (5)"),
            "{text}"
        );
        assert!(
            text.contains(
                "environments.staging.load_balancer.ingress_cidrs.0: `everyone` is not a CIDR block"
            ),
            "{text}"
        );
        assert_eq!(lines.len(), 4, "{text}");
    }

    #[test]
    fn flag_problems_name_the_flag() {
        let m = manifest(r#"{"app": "shop", "environments": {"staging": {}}}"#);
        let flags = Overrides {
            desired: Some(5),
            ..Default::default()
        };
        let e = RolloutConfig::resolve(&m, None, &flags).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rollout.json: --desired: desired (5) is greater than max (2)"
        );
    }

    #[test]
    fn unknown_environment_is_an_error_listing_the_known_ones() {
        let m = manifest(r#"{"app": "shop", "environments": {"staging": {}, "production": {}}}"#);
        let e = RolloutConfig::resolve(&m, Some("prodution"), &Overrides::default()).unwrap_err();
        assert!(
            e.to_string().contains(
                "--env: environment `prodution` is not in the manifest's `environments` (production, staging)"
            ),
            "{e}"
        );
    }

    #[test]
    fn long_names_are_caught_before_aws_rejects_them() {
        let m =
            manifest(r#"{"app": "a-very-long-application-name", "environments": {"staging": {}}}"#);
        let e = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("at most 32"), "{e}");
    }

    #[test]
    fn match_live_keeps_a_scaled_out_fleet() {
        let c = Capacity {
            min: 1,
            max: 4,
            desired: 2,
            match_live: true,
        };
        assert_eq!(c.desired_given_live(0), 2);
        assert_eq!(c.desired_given_live(3), 3);
        assert_eq!(c.desired_given_live(9), 4);
        let c = Capacity {
            match_live: false,
            ..c
        };
        assert_eq!(c.desired_given_live(3), 2);
    }

    #[test]
    fn the_rollback_window_is_off_by_default_and_validated() {
        let m = manifest(r#"{"app": "shop", "environments": {"staging": {}}}"#);
        let c = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap();
        assert!(!c.keep.on());
        assert_eq!(c.keep.describe(), "off");
        let m = manifest(
            r#"{"app": "shop", "defaults": {"blue_green": {"keep_previous_for": "24h"}},
                "environments": {"staging": {}, "production": {"blue_green": {"keep_previous_releases": 2, "keep_previous_size": 1}}}}"#,
        );
        let c = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap();
        assert_eq!(
            c.keep,
            KeepWindow {
                releases: 1,
                keep_for: Some(Duration::from_secs(86_400)),
                size: 0
            }
        );
        assert_eq!(c.keep.describe(), "1 release(s) for up to 1d, size 0");
        let c = RolloutConfig::resolve(&m, Some("production"), &Overrides::default()).unwrap();
        assert_eq!((c.keep.releases, c.keep.size), (2, 1));
        let src = r#"{
  "app": "shop",
  "defaults": {"blue_green": {"keep_previous_for": "one day", "keep_previous_releases": 11,
                              "keep_previous_size": 9}},
  "environments": {"staging": {}}
}"#;
        let e = RolloutConfig::resolve(&manifest(src), None, &Overrides::default()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("rollout.json:3:31: defaults.blue_green.keep_previous_for: `one day` is not a duration"),
            "{text}"
        );
        assert!(
            text.contains("defaults.blue_green.keep_previous_releases: 11 is outside 0-10"),
            "{text}"
        );
        assert!(
            text.contains(
                "defaults.blue_green.keep_previous_size: 9 is greater than capacity.max (2)"
            ),
            "{text}"
        );
        let m = manifest(
            r#"{"app": "shop", "strategy": "instance-refresh",
                "defaults": {"blue_green": {"keep_previous_releases": 1}}, "environments": {"staging": {}}}"#,
        );
        let e = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("strategy instance-refresh keeps no previous group"),
            "{e}"
        );
        let m = manifest(
            r#"{"app": "shop", "defaults": {"blue_green": {"keep_previous_releases": 0, "keep_previous_for": "1h"}},
                "environments": {"staging": {}}}"#,
        );
        let e = RolloutConfig::resolve(&m, None, &Overrides::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("keep_previous_releases: is 0 while keep_previous_for is set"),
            "{e}"
        );
    }

    #[test]
    fn dns_production_is_the_apex() {
        let m = manifest(
            r#"{"app": "shop", "defaults": {"dns": {"hosted_zone_id": "/hostedzone/Z1", "domain": "shop.example"}},
                "environments": {"staging": {}, "production": {}}}"#,
        );
        let c = RolloutConfig::resolve(&m, Some("production"), &Overrides::default()).unwrap();
        let d = c.dns.unwrap();
        assert_eq!(d.record_name, "shop.example.");
        assert_eq!(d.hosted_zone_id, "Z1");
        let c = RolloutConfig::resolve(&m, Some("staging"), &Overrides::default()).unwrap();
        assert_eq!(c.dns.unwrap().record_name, "staging.shop.example.");
    }
}
