//! Small helpers with no better home.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Runs futures concurrently on the current task and returns their results in order (borrowing is fine:
/// nothing is spawned).
pub async fn join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<(usize, Pin<Box<F>>)> =
        futs.into_iter().map(Box::pin).enumerate().collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            Poll::Ready(v) => {
                out[*i] = Some(v);
                false
            }
            Poll::Pending => true,
        });
        if pending.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

/// A duration as Packer prints it in build summaries (`1 minute 2 seconds`, `450 milliseconds`).
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis() as u64;
    let (m, s, ms) = (ms / 60_000, (ms / 1000) % 60, ms % 1000);
    let plural = |n: u64, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let mut parts = Vec::new();
    if m > 0 {
        parts.push(plural(m, "minute"));
    }
    if s > 0 {
        parts.push(plural(s, "second"));
    }
    if ms > 0 || parts.is_empty() {
        parts.push(plural(ms, "millisecond"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn join_all_keeps_order_and_runs_concurrently() {
        let start = tokio::time::Instant::now();
        let r = join_all([3u64, 1, 2].map(|n| async move {
            tokio::time::sleep(Duration::from_millis(50 * n)).await;
            n
        }))
        .await;
        assert_eq!(r, [3, 1, 2]);
        assert!(start.elapsed() < Duration::from_millis(300));
    }

    #[test]
    fn durations_read_like_packers() {
        assert_eq!(
            human_duration(Duration::from_millis(450)),
            "450 milliseconds"
        );
        assert_eq!(
            human_duration(Duration::from_millis(62_001)),
            "1 minute 2 seconds 1 millisecond"
        );
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
    }
}
