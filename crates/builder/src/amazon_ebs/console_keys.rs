//! `--host-key-check=console` (or `BAKERY_HOST_KEY_CHECK=console`): before connecting, read the host-key
//! fingerprints the instance printed to its serial console on first boot (cloud-init's `keys_to_console`)
//! through EC2's `GetConsoleOutput`, and accept only a host key among them
//! ([`bakery_ssh::HostKeyPolicy::Fingerprints`]). The console is read over the authenticated AWS API, so a
//! machine in the network path cannot forge it, as it could forge the first key an SSH client sees.

use aws_sdk_ec2::Client;
use bakery_core::aws::ErrorClass;
use bakery_core::aws_err::{AwsError, AwsResultExt};
use bakery_core::poll::{Poll, PollError, Poller, SDK_WAITER_DELAY};
use bakery_ssh::ConsoleHostKeys;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The environment variable that opts in when the flag is not given.
pub const HOST_KEY_CHECK_ENV: &str = "BAKERY_HOST_KEY_CHECK";

/// How the build instance's SSH host key is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// Trust on first use for the run, after authentication (`HostKeyPolicy::PinFirstSeen`).
    #[default]
    Pin,
    /// Only a key whose fingerprint the instance printed to its console.
    Console,
}

impl HostKeyCheck {
    /// The value as the flag spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyCheck::Pin => "pin",
            HostKeyCheck::Console => "console",
        }
    }

    /// `pin` or `console` (any case, surrounding blanks ignored).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pin" => Some(HostKeyCheck::Pin),
            "console" => Some(HostKeyCheck::Console),
            _ => None,
        }
    }
}

/// How often the console is read: cloud-init prints the keys in its last stage, a minute or more after
/// launch on AWS, and `GetConsoleOutput` is rate-limited more tightly than the Describe calls; bounded by
/// `ssh_timeout`.
pub fn console_poller(timeout: Duration) -> Poller {
    Poller {
        lower_bound: Duration::from_secs(2),
        interval: Duration::from_secs(2),
        soft_limit: Duration::from_secs(60),
        max_interval: Duration::from_secs(10),
        timeout,
        attempt_delay: SDK_WAITER_DELAY,
    }
}

/// One look at the instance's console. `latest` starts true (`Latest=true`, the live serial console on
/// Nitro instances); an instance type that refuses it is read without it from then on (the buffered output
/// AWS posts after state changes).
pub async fn look(
    ec2: &Client,
    instance_id: &str,
    latest: &AtomicBool,
) -> Result<Poll<ConsoleHostKeys>, PollError> {
    let use_latest = latest.load(Ordering::Relaxed);
    let mut req = ec2.get_console_output().instance_id(instance_id);
    if use_latest {
        req = req.latest(true);
    }
    match req.send().await.aws("GetConsoleOutput") {
        Ok(out) => Ok(judge(out.output())),
        Err(e) if use_latest && latest_refused(&e) => {
            tracing::info!(error = %e, "GetConsoleOutput with Latest refused; reading the buffered output");
            latest.store(false, Ordering::Relaxed);
            Ok(Poll::Pending(
                "latest console output not supported, reading the buffered output".into(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// A refusal that may be about `Latest` (not every instance type has a live serial console): not
/// throttling, not "no such instance" and not a missing permission, which reading without it will not fix.
fn latest_refused(e: &AwsError) -> bool {
    e.is_refusal()
        && e.class() == ErrorClass::Other
        && !e.is("UnauthorizedOperation")
        && !e.is("AuthFailure")
        && !e.is("Blocked")
}

/// What one answer's `Output` (base64, absent while the instance has written nothing) says.
pub fn judge(output: Option<&str>) -> Poll<ConsoleHostKeys> {
    let Some(encoded) = output.map(str::trim).filter(|s| !s.is_empty()) else {
        return Poll::Pending("console output empty".into());
    };
    let Ok(bytes) = aws_smithy_types::base64::decode(encoded) else {
        return Poll::Pending("console output not readable (not base64)".into());
    };
    let found = ConsoleHostKeys::parse(&String::from_utf8_lossy(&bytes));
    if found.is_empty() {
        Poll::Pending("no host key fingerprints on the console yet".into())
    } else {
        Poll::Ready(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1+tiXSdjqaa6iO7wpqTFQEGvGUvv/vS0iIh6xEAK9M";

    fn b64(s: &str) -> String {
        aws_smithy_types::base64::encode(s.as_bytes())
    }

    #[test]
    fn the_flag_values() {
        assert_eq!(HostKeyCheck::parse("console"), Some(HostKeyCheck::Console));
        assert_eq!(HostKeyCheck::parse(" PIN\n"), Some(HostKeyCheck::Pin));
        assert_eq!(HostKeyCheck::parse("tofu"), None);
        assert_eq!(HostKeyCheck::default(), HostKeyCheck::Pin);
        for c in [HostKeyCheck::Pin, HostKeyCheck::Console] {
            assert_eq!(HostKeyCheck::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn an_answer_is_ready_only_with_a_complete_block() {
        assert!(matches!(judge(None), Poll::Pending(s) if s.contains("empty")));
        assert!(matches!(judge(Some("")), Poll::Pending(s) if s.contains("empty")));
        assert!(matches!(judge(Some("!!")), Poll::Pending(s) if s.contains("base64")));
        let booting = b64("[    0.000000] Linux version 6.1.0\r\n");
        assert!(matches!(judge(Some(&booting)), Poll::Pending(s) if s.contains("fingerprints")));
        let printed = b64(&format!(
            "ec2: -----BEGIN SSH HOST KEY KEYS-----\r\nec2: {ED} root@x\r\nec2: -----END SSH HOST KEY KEYS-----\r\n"
        ));
        let Poll::Ready(found) = judge(Some(&printed)) else {
            panic!("ready")
        };
        assert_eq!(found.keys.len(), 1);
    }

    #[test]
    fn only_refusals_that_may_be_about_latest_fall_back() {
        let err = |code: &str| AwsError {
            op: "GetConsoleOutput",
            code: Some(code.into()),
            detail: code.into(),
        };
        assert!(latest_refused(&err("UnsupportedOperation")));
        assert!(latest_refused(&err("InvalidParameterValue")));
        assert!(!latest_refused(&err("UnauthorizedOperation")));
        assert!(!latest_refused(&err("InvalidInstanceID.NotFound")));
        assert!(!latest_refused(&err("RequestLimitExceeded")));
        assert!(!latest_refused(&err("InternalError")));
    }
}
