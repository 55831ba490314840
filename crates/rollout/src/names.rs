//! The environment's naming convention (`app-env`, with `elb-`, `asg-`, `lt-` prefixes) and the tags that
//! tie a resource to an app and environment.
//!
//! Groups and launch templates get a UTC timestamp (`YYYYmmddHHMMSS`) plus four hex digits of the run id, so
//! that two rollouts within the same second (a fast lab, a retry) never collide.

use std::time::SystemTime;

/// Tag: the app a resource belongs to. Live groups are found by this and [`ENV_TAG`], never by name.
pub const APP_TAG: &str = "bakery:app";
/// Tag: the environment a resource belongs to.
pub const ENV_TAG: &str = "bakery:env";
/// Tag on groups: `in-progress` from creation until the group is healthy, then `live`.
pub const STATE_TAG: &str = "bakery:rollout-state";
/// Tag on groups: the AMI the group runs (informational; the launch template is authoritative).
pub const AMI_TAG: &str = "bakery:ami";
/// [`STATE_TAG`] value of a group that is being rolled out.
pub const STATE_IN_PROGRESS: &str = "in-progress";
/// [`STATE_TAG`] value of a group that passed its health checks.
pub const STATE_LIVE: &str = "live";
/// [`STATE_TAG`] value of a previous release kept for `rollout undo`: detached from the load balancer,
/// scaled to `blue_green.keep_previous_size`, kept with its launch template until its window ends.
pub const STATE_RETIRED: &str = "retired";
/// [`STATE_TAG`] value of a kept group that `rollout undo` is bringing back (until it is `live`, or
/// returned to `retired` when the undo fails).
pub const STATE_RESTORING: &str = "restoring";
/// Tag on a kept group: when it was retired (RFC 3339, UTC).
pub const RETIRED_AT_TAG: &str = "bakery:retired-at";
/// Tag on a kept group: when its window ends (RFC 3339, UTC); absent when only newer releases end it.
pub const KEEP_UNTIL_TAG: &str = "bakery:keep-until";
/// Tag on a kept group: the run that retired it (a rollout) or is bringing it back (an undo).
pub const RELEASE_RUN_TAG: &str = "bakery:release-run";
/// The `build` part of `bakery_core::tags::ownership` for everything rollout creates.
pub const TOOL: &str = "rollout";

/// Names of one app's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The app (`carnivore`).
    pub app: String,
    /// The environment (`staging`).
    pub env: String,
}

impl Names {
    /// Names for `app` in `env`.
    pub fn new(app: &str, env: &str) -> Self {
        Names {
            app: app.to_string(),
            env: env.to_string(),
        }
    }
    /// Whether EC2 `tags` mark a resource as this environment's (bakery-managed, this app and env):
    /// the check before rollout deletes or cancels anything it finds.
    pub fn owns(&self, tags: &[aws_sdk_ec2::types::Tag]) -> bool {
        let tag = |k: &str| {
            tags.iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
        };
        tag(bakery_core::tags::MANAGED) == Some("true")
            && tag(APP_TAG) == Some(self.app.as_str())
            && tag(ENV_TAG) == Some(self.env.as_str())
    }
    /// `app-env`: the key pair, the instances' security group, the `Name` tag.
    pub fn base(&self) -> String {
        format!("{}-{}", self.app, self.env)
    }
    /// `elb-app-env` (classic ELB or ALB; at most 32 characters).
    pub fn load_balancer(&self) -> String {
        format!("elb-{}", self.base())
    }
    /// `tg-app-env` (ALB target group; at most 32 characters).
    pub fn target_group(&self) -> String {
        format!("tg-{}", self.base())
    }
    /// `elb-app-env`: the load balancer's security group.
    pub fn lb_security_group(&self) -> String {
        self.load_balancer()
    }
    /// `app-env`: the instances' security group.
    pub fn instance_security_group(&self) -> String {
        self.base()
    }
    /// `app-env`: the key pair.
    pub fn key_pair(&self) -> String {
        self.base()
    }
    /// `asg-app-env-STAMP-xxxx`.
    pub fn group(&self, stamp: &str) -> String {
        format!("asg-{}-{stamp}", self.base())
    }
    /// `lt-app-env-STAMP-xxxx`.
    pub fn launch_template(&self, stamp: &str) -> String {
        format!("lt-{}-{stamp}", self.base())
    }
    /// The DNS name of the environment: `env.domain.`, or the apex `domain.` for `apex_env`.
    pub fn record_name(&self, domain: &str, apex_env: &str) -> String {
        let domain = domain.trim_end_matches('.');
        if self.env == apex_env {
            format!("{domain}.")
        } else {
            format!("{}.{domain}.", self.env)
        }
    }
    /// The app/env tags every resource of this environment carries, plus `Name`.
    pub fn tags(&self) -> Vec<(String, String)> {
        vec![
            ("Name".to_string(), self.base()),
            (APP_TAG.to_string(), self.app.clone()),
            (ENV_TAG.to_string(), self.env.clone()),
        ]
    }
}

/// `YYYYmmddHHMMSS-xxxx`: the UTC timestamp plus four hex digits of the run id.
pub fn stamp(now: SystemTime, run_id: &str) -> String {
    let digits: String = bakery_core::ui::rfc3339(now)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let suffix: String = run_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(4)
        .collect();
    format!("{digits}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn names_follow_the_seed() {
        let n = Names::new("ponyfoo", "staging");
        assert_eq!(n.load_balancer(), "elb-ponyfoo-staging");
        assert_eq!(n.key_pair(), "ponyfoo-staging");
        assert_eq!(
            n.group("20150407181937-ab12"),
            "asg-ponyfoo-staging-20150407181937-ab12"
        );
        assert_eq!(
            n.launch_template("20150407181937-ab12"),
            "lt-ponyfoo-staging-20150407181937-ab12"
        );
    }

    #[test]
    fn production_is_the_apex() {
        let n = Names::new("ponyfoo", "production");
        assert_eq!(n.record_name("ponyfoo.com", "production"), "ponyfoo.com.");
        let n = Names::new("ponyfoo", "staging");
        assert_eq!(
            n.record_name("ponyfoo.com.", "production"),
            "staging.ponyfoo.com."
        );
    }

    #[test]
    fn stamp_is_utc_digits_and_run_id() {
        // 2015-04-07T18:19:37Z
        let t = UNIX_EPOCH + Duration::from_secs(1_428_430_777);
        assert_eq!(stamp(t, "9f3e-77"), "20150407181937-9f3e");
    }
}
