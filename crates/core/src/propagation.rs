//! Calls that use a resource this run has just created. EC2, Auto Scaling and IAM are eventually
//! consistent: for seconds after a create, other calls may not see the new resource yet (a new security
//! group is `InvalidGroup.NotFound` to `AuthorizeSecurityGroupIngress`, a new key pair to `RunInstances`,
//! a new launch template to `CreateAutoScalingGroup`, a new instance profile to `RunInstances`). Packer's
//! amazon plugin and the Terraform AWS provider retry exactly these answers for a bounded time; so does
//! [`retry_propagation`]. The lab's realism layer answers them too (docs/lab.md).

use crate::aws_err::AwsError;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a new resource may stay invisible: the Terraform AWS provider's propagation timeout (2 min).
pub const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a "not found" for a resource this run made is doubted before it is believed: a delete or
/// describe right after the create may not see it yet, and a resource wrongly believed gone is a leak.
pub const NOT_FOUND_CONFIRMATION: Duration = Duration::from_secs(8);

/// True when `e` says a resource is not visible (yet): any not-found code, and the answers AWS gives
/// without a code of their own — an instance profile IAM has not propagated to EC2
/// (`InvalidParameterValue`, "Invalid IAM Instance Profile"), a launch template Auto Scaling cannot see
/// (`ValidationError`, "launch template … does not exist") or a group it does not list yet
/// (`ValidationError`, "AutoScalingGroup name not found"). Those are told apart by their message, as
/// Packer and Terraform do, because AWS gives no other way.
pub fn is_propagation_error(e: &AwsError) -> bool {
    if e.is_not_found() {
        return true;
    }
    let detail = e.detail.to_ascii_lowercase();
    let missing = detail.contains("does not exist") || detail.contains("not found");
    (e.is("InvalidParameterValue") && detail.contains("invalid iam instance profile"))
        || (e.is("ValidationError")
            && missing
            && (detail.contains("launch template") || detail.contains("autoscalinggroup name")))
}

/// Calls `call` until it succeeds, fails for another reason than [`is_propagation_error`], `timeout`
/// passes, or `cancel` fires; then returns its last answer. Backs off 200 ms, doubling to 5 s. A call
/// that creates must be idempotent (a client token) or refused for sure — a propagation error is a
/// refusal: the call did nothing.
pub async fn retry_propagation<T, F, Fut>(
    timeout: Duration,
    cancel: &CancellationToken,
    mut call: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        match call().await {
            Err(e) if is_propagation_error(&e) && start.elapsed() + delay <= timeout => {
                tokio::select! {
                    _ = cancel.cancelled() => return Err(e),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn err(code: &str, message: &str) -> AwsError {
        AwsError {
            op: "Op",
            code: Some(code.into()),
            detail: format!("{code}: {message}"),
        }
    }

    #[test]
    fn what_counts_as_not_visible_yet() {
        assert!(is_propagation_error(&err("InvalidGroup.NotFound", "x")));
        assert!(is_propagation_error(&err("InvalidKeyPair.NotFound", "x")));
        assert!(is_propagation_error(&err(
            "InvalidParameterValue",
            "Value (p) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
        )));
        assert!(is_propagation_error(&err(
            "ValidationError",
            "You must use a valid fully-formed launch template. The specified launch template, with template name lt-x, does not exist."
        )));
        assert!(!is_propagation_error(&err(
            "InvalidParameterValue",
            "Invalid value 'x' for instanceType"
        )));
        assert!(!is_propagation_error(&err(
            "ValidationError",
            "MinSize > MaxSize"
        )));
        assert!(!is_propagation_error(&err("UnauthorizedOperation", "no")));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_visible_then_stops_at_other_errors_and_at_the_timeout() {
        let calls = AtomicU32::new(0);
        let r = retry_propagation(PROPAGATION_TIMEOUT, &CancellationToken::new(), || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Err(err("InvalidGroup.NotFound", "not yet"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);

        let calls = AtomicU32::new(0);
        let r: Result<(), _> =
            retry_propagation(PROPAGATION_TIMEOUT, &CancellationToken::new(), || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(err("UnauthorizedOperation", "no")) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "another error is not retried"
        );

        let start = Instant::now();
        let r: Result<(), _> = retry_propagation(
            Duration::from_secs(10),
            &CancellationToken::new(),
            || async { Err(err("InvalidGroup.NotFound", "never")) },
        )
        .await;
        assert!(r.unwrap_err().is_not_found());
        assert!(
            start.elapsed() <= Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }
}
