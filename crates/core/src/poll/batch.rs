//! One Describe call per tick for every wait of the same kind.
//!
//! Ten builds waiting for their instances would otherwise send ten `DescribeInstances` calls a second,
//! each for one id. A [`Batcher`] collects the ids looked at within a tick and sends one call for all of
//! them, then hands every waiter its own answer. It sits below [`Poller`](super::Poller): the poller
//! still decides *when* a waiter looks (first look at once, the lower bound, the interval, the slower
//! polls past the soft limit, the throttling backoff); the batcher only decides which looks share a call.
//!
//! * A first look (`urgent`) goes out after a short gathering window (`gather`, 2 ms), so that waits
//!   starting together share it but an instant transition is still seen at once.
//! * A later look goes out at least `gap` (the poller's 1 s interval) after the previous call of this
//!   batcher: waiters whose ticks are out of phase are pulled onto one tick instead of doubling the calls.
//! * Throttling reaches every waiter of the call (each backs off with its own jitter). Any other error of
//!   a call for several ids (typically `InvalidInstanceID.NotFound` for an id created a moment ago, which
//!   fails the whole call) is resolved by asking for each id alone, so each waiter gets its own result
//!   or error, exactly as if it had polled on its own.
//! * One call is in flight at a time per batcher; looks arriving meanwhile go into the next call.

use super::look::PollError;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// What one batched call returns: the resources found, by id. An id missing from the map is "not found".
pub type FetchResult<V> = Result<HashMap<String, V>, PollError>;

/// The future of one batched call.
pub type FetchFuture<V> = Pin<Box<dyn Future<Output = FetchResult<V>> + Send>>;

/// The call itself: describe these ids (at most `max_ids` of them).
pub type Fetch<V> = Arc<dyn Fn(Vec<String>) -> FetchFuture<V> + Send + Sync>;

/// One waiter's answer: its resource, `None` when the call did not return it.
type Answer<V> = Result<Option<V>, PollError>;

/// Shares Describe calls between concurrent waits of one kind on one client. Cheap to clone.
pub struct Batcher<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for Batcher<V> {
    fn clone(&self) -> Self {
        Batcher {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<V> {
    fetch: Fetch<V>,
    gap: Duration,
    gather: Duration,
    max_ids: usize,
    queue: Mutex<Queue<V>>,
    wake: Notify,
}

struct Queue<V> {
    /// Looks waiting for the next call.
    waiting: Vec<(String, oneshot::Sender<Answer<V>>)>,
    /// When the next call goes out (None: nothing waiting).
    fire_at: Option<Instant>,
    /// When the last call went out.
    last_call: Option<Instant>,
    /// A driver task is running (it sends the calls while looks are waiting, then ends).
    driving: bool,
}

impl<V: Clone + Send + Sync + 'static> Batcher<V> {
    /// A batcher sending `fetch` at most once per `gap` for later looks, with the standard 2 ms
    /// gathering window and at most 100 ids a call.
    pub fn new(gap: Duration, fetch: Fetch<V>) -> Self {
        Self::with_limits(gap, Duration::from_millis(2), 100, fetch)
    }

    /// A batcher with its own gathering window and largest number of ids a call (more are split into
    /// several calls).
    pub fn with_limits(gap: Duration, gather: Duration, max_ids: usize, fetch: Fetch<V>) -> Self {
        Batcher {
            inner: Arc::new(Inner {
                fetch,
                gap,
                gather,
                max_ids: max_ids.max(1),
                queue: Mutex::new(Queue {
                    waiting: Vec::new(),
                    fire_at: None,
                    last_call: None,
                    driving: false,
                }),
                wake: Notify::new(),
            }),
        }
    }

    /// True when both handles are the same batcher.
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// One look at `id`, shared with the other looks of this tick. `urgent`: a first look, sent after
    /// the gathering window only. `Ok(None)`: the call did not return `id`.
    pub async fn look(&self, id: &str, urgent: bool) -> Result<Option<V>, PollError> {
        let (tx, rx) = oneshot::channel();
        let start_driver = {
            let mut q = self.inner.queue.lock().unwrap();
            q.waiting.push((id.to_string(), tx));
            let soonest = Instant::now() + self.inner.gather;
            let at = match q.last_call {
                Some(last) if !urgent => soonest.max(last + self.inner.gap),
                _ => soonest,
            };
            q.fire_at = Some(q.fire_at.map_or(at, |f| f.min(at)));
            !std::mem::replace(&mut q.driving, true)
        };
        if start_driver {
            tokio::spawn(drive(self.inner.clone()));
        } else {
            self.inner.wake.notify_one();
        }
        match rx.await {
            Ok(answer) => answer,
            // The driver is gone (its runtime shut down, or it panicked): look on our own.
            Err(_) => {
                let mut found = (self.inner.fetch)(vec![id.to_string()]).await?;
                Ok(found.remove(id))
            }
        }
    }
}

/// Resets the queue if the driver task ends abnormally (runtime shutdown, panic): the waiting looks' senders
/// are dropped, so they look on their own, and the next look starts a new driver.
struct DriverGuard<V> {
    inner: Arc<Inner<V>>,
    finished: bool,
}

impl<V> Drop for DriverGuard<V> {
    fn drop(&mut self) {
        if !self.finished
            && let Ok(mut q) = self.inner.queue.lock()
        {
            q.driving = false;
            q.fire_at = None;
            q.waiting.clear();
        }
    }
}

/// Sends the calls while looks are waiting.
async fn drive<V: Clone + Send + Sync + 'static>(inner: Arc<Inner<V>>) {
    let mut guard = DriverGuard {
        inner: inner.clone(),
        finished: false,
    };
    loop {
        // Wait for the next call's time (an urgent look may bring it forward).
        loop {
            let at = {
                let mut q = inner.queue.lock().unwrap();
                match q.fire_at {
                    Some(at) => at,
                    None => {
                        q.driving = false;
                        guard.finished = true;
                        return;
                    }
                }
            };
            if Instant::now() >= at {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = inner.wake.notified() => {}
            }
        }
        let waiting = {
            let mut q = inner.queue.lock().unwrap();
            q.fire_at = None;
            q.last_call = Some(Instant::now());
            std::mem::take(&mut q.waiting)
        };
        answer(&inner, waiting).await;
    }
}

/// Sends one call per `max_ids` distinct ids and answers every look.
async fn answer<V: Clone + Send + Sync + 'static>(
    inner: &Inner<V>,
    waiting: Vec<(String, oneshot::Sender<Answer<V>>)>,
) {
    let mut ids: Vec<String> = Vec::new();
    for (id, _) in &waiting {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let mut results: HashMap<String, Answer<V>> = HashMap::new();
    for chunk in ids.chunks(inner.max_ids) {
        match (inner.fetch)(chunk.to_vec()).await {
            Ok(mut found) => {
                for id in chunk {
                    results.insert(id.clone(), Ok(found.remove(id)));
                }
            }
            Err(PollError::Throttled) => {
                for id in chunk {
                    results.insert(id.clone(), Err(PollError::Throttled));
                }
            }
            Err(e) if chunk.len() == 1 => {
                results.insert(chunk[0].clone(), Err(e));
            }
            // One id can fail the call for all (not visible yet, malformed): ask for each alone.
            Err(_) => {
                let mut each = tokio::task::JoinSet::new();
                for id in chunk {
                    let fetch = inner.fetch.clone();
                    let id = id.clone();
                    each.spawn(async move {
                        let r = fetch(vec![id.clone()]).await.map(|mut f| f.remove(&id));
                        (id, r)
                    });
                }
                while let Some(joined) = each.join_next().await {
                    if let Ok((id, r)) = joined {
                        results.insert(id, r);
                    }
                }
            }
        }
    }
    let mut left: HashMap<String, usize> = HashMap::new();
    for (id, _) in &waiting {
        *left.entry(id.clone()).or_default() += 1;
    }
    for (id, tx) in waiting {
        let r = match results.remove(&id) {
            Some(r) => {
                let n = left.get_mut(&id).expect("counted above");
                *n -= 1;
                // Two looks at the same id: the last one takes the answer, earlier ones get a copy.
                if *n > 0 {
                    results.insert(id.clone(), replicate(&r));
                }
                r
            }
            None => Err(PollError::Fatal(
                format!("no answer for {id} (the look was interrupted)").into(),
            )),
        };
        let _ = tx.send(r);
    }
}

/// A copy of an answer for a second look at the same id (a fatal error becomes its message, with its
/// sources).
fn replicate<V: Clone>(r: &Answer<V>) -> Answer<V> {
    match r {
        Ok(v) => Ok(v.clone()),
        Err(PollError::Throttled) => Err(PollError::Throttled),
        Err(PollError::NotFound) => Err(PollError::NotFound),
        Err(PollError::Fatal(e)) => {
            let mut text = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            Err(PollError::Fatal(text.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::{Poll, Poller, WaitError};
    use tokio_util::sync::CancellationToken;

    /// Every call the fake made: when (since the test's start) and for which ids (sorted).
    type Calls = Arc<Mutex<Vec<(Duration, Vec<String>)>>>;

    /// A fetch that logs its calls and answers with `answer(call number, ids)`.
    fn fake(
        answer: impl Fn(usize, &[String]) -> FetchResult<String> + Send + Sync + 'static,
    ) -> (Fetch<String>, Calls) {
        let calls: Calls = Arc::default();
        let log = calls.clone();
        let start = Instant::now();
        let answer = Arc::new(answer);
        let fetch: Fetch<String> = Arc::new(move |ids: Vec<String>| -> FetchFuture<String> {
            let mut sorted = ids.clone();
            sorted.sort();
            let n = {
                let mut log = log.lock().unwrap();
                log.push((start.elapsed(), sorted));
                log.len() - 1
            };
            let r = answer(n, &ids);
            Box::pin(async move { r })
        });
        (fetch, calls)
    }

    fn judge(state: String) -> Poll<String> {
        match state.as_str() {
            "ready" => Poll::Ready(state),
            "failed" => Poll::Failed(state),
            _ => Poll::Pending(state),
        }
    }

    /// Starts one wait per id (each with its own cancellation token), all at once.
    fn spawn_waits(
        poller: Poller,
        batcher: &Batcher<String>,
        ids: &[&str],
    ) -> Vec<tokio::task::JoinHandle<Result<String, WaitError>>> {
        ids.iter()
            .map(|id| {
                let (b, id) = (batcher.clone(), id.to_string());
                tokio::spawn(async move {
                    poller
                        .wait_batched(&id, &CancellationToken::new(), |_, _| {}, &b, &id, judge)
                        .await
                })
            })
            .collect()
    }

    fn ids(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("i-{i}")).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn ten_concurrent_waits_send_one_call_per_tick() {
        // i-k is ready from the k-th call on: the waits end one per tick.
        let (fetch, calls) = fake(|n, ids| {
            Ok(ids
                .iter()
                .map(|id| {
                    let k: usize = id[2..].parse().unwrap();
                    (id.clone(), if n >= k { "ready" } else { "pending" }.into())
                })
                .collect())
        });
        let batcher = Batcher::new(Duration::from_secs(1), fetch);
        let all = ids(0..10);
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        let poller = Poller::new(Duration::from_secs(2), Duration::from_secs(60));
        for (k, w) in spawn_waits(poller, &batcher, &names)
            .into_iter()
            .enumerate()
        {
            assert_eq!(w.await.unwrap().unwrap(), "ready", "wait {k}");
        }
        let calls = calls.lock().unwrap();
        // 10 calls instead of 10 + 9 + ... + 1 = 55: call k asks for every id still waiting.
        assert_eq!(calls.len(), 10);
        for (k, (_, asked)) in calls.iter().enumerate() {
            assert_eq!(asked, &ids(k..10), "call {k}");
        }
        // The first look goes out after the gathering window, the next after the 2 s lower bound, then 1 s.
        let at: Vec<u128> = calls.iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(&at[..4], &[2, 2002, 3002, 4002]);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_started_out_of_phase_are_pulled_onto_one_tick() {
        let (fetch, calls) = fake(|n, ids| {
            Ok(ids
                .iter()
                .map(|id| (id.clone(), if n >= 6 { "ready" } else { "pending" }.into()))
                .collect())
        });
        let batcher = Batcher::new(Duration::from_secs(1), fetch);
        let poller = Poller::new(Duration::from_secs(1), Duration::from_secs(60));
        let a = spawn_waits(poller, &batcher, &["i-a"]);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let b = spawn_waits(poller, &batcher, &["i-b"]);
        for w in a.into_iter().chain(b) {
            assert_eq!(w.await.unwrap().unwrap(), "ready");
        }
        let calls = calls.lock().unwrap();
        let both = vec!["i-a".to_string(), "i-b".to_string()];
        // Each first look at once (its own call), then one call per second for both.
        assert_eq!(calls[0].1, vec!["i-a".to_string()]);
        assert_eq!(calls[1].1, vec!["i-b".to_string()]);
        assert_eq!(calls.len(), 7);
        for w in calls[2..].windows(2) {
            assert_eq!(w[0].1, both);
            assert_eq!(w[1].1, both);
            assert!(w[1].0 - w[0].0 >= Duration::from_secs(1), "{calls:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_waiter_gets_its_own_error_and_a_new_id_does_not_hold_up_the_others() {
        // As EC2: one bad id fails the whole call; an id created a moment ago is NotFound for two calls.
        let (fetch, calls) = fake(|n, ids| {
            if ids.iter().any(|id| id == "i-bad") {
                return Err(PollError::Fatal(
                    "InvalidInstanceID.Malformed: i-bad".into(),
                ));
            }
            if n < 6 && ids.iter().any(|id| id == "i-new") {
                return Err(PollError::NotFound);
            }
            Ok(ids.iter().map(|id| (id.clone(), "ready".into())).collect())
        });
        let batcher = Batcher::new(Duration::from_secs(1), fetch);
        let poller = Poller::new(Duration::from_secs(1), Duration::from_secs(60));
        let waits = spawn_waits(poller, &batcher, &["i-1", "i-bad", "i-new"]);
        let mut results = Vec::new();
        for w in waits {
            results.push(w.await.unwrap());
        }
        assert_eq!(results[0].as_ref().unwrap(), "ready");
        match &results[1] {
            Err(WaitError::Fatal { what, source }) => {
                assert_eq!(what, "i-bad");
                assert_eq!(source.to_string(), "InvalidInstanceID.Malformed: i-bad");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(results[2].as_ref().unwrap(), "ready");
        let calls = calls.lock().unwrap();
        let asked: Vec<&Vec<String>> = calls.iter().map(|(_, ids)| ids).collect();
        // The call for all three fails, then each id is asked alone; i-new is not visible in the next
        // look either, and is found a second later, on its own.
        assert_eq!(
            asked[0],
            &vec!["i-1".to_string(), "i-bad".into(), "i-new".into()]
        );
        let mut split: Vec<String> = asked[1..4].iter().map(|v| v.join(",")).collect();
        split.sort();
        assert_eq!(split, ["i-1", "i-bad", "i-new"]);
        assert_eq!(&asked[4..], &[&vec!["i-new".to_string()]; 3][..]);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_reaches_every_waiter_and_they_back_off() {
        let (fetch, calls) = fake(|n, ids| {
            if n == 0 {
                Err(PollError::Throttled)
            } else {
                Ok(ids.iter().map(|id| (id.clone(), "ready".into())).collect())
            }
        });
        let batcher = Batcher::new(Duration::from_secs(1), fetch);
        let poller = Poller::new(Duration::ZERO, Duration::from_secs(60));
        let all = ids(0..5);
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        for w in spawn_waits(poller, &batcher, &names) {
            assert_eq!(w.await.unwrap().unwrap(), "ready");
        }
        let calls = calls.lock().unwrap();
        assert_eq!(calls[0].1, all);
        // Every waiter backed off ~1 s (±25 % jitter) before looking again: no look within 0.75 s.
        assert!(calls[1].0 >= Duration::from_millis(750), "{calls:?}");
        let later: usize = calls[1..].iter().map(|(_, ids)| ids.len()).sum();
        assert_eq!(later, 5, "each waiter looked once more: {calls:?}");
        assert!(calls.len() <= 3, "{calls:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_instant_transition_costs_one_call_and_the_gathering_window() {
        let (fetch, calls) =
            fake(|_, ids| Ok(ids.iter().map(|id| (id.clone(), "ready".into())).collect()));
        let batcher = Batcher::new(Duration::from_secs(1), fetch);
        let start = Instant::now();
        let r = Poller::instance_running()
            .wait_batched(
                "x",
                &CancellationToken::new(),
                |_, _| {},
                &batcher,
                "i-1",
                judge,
            )
            .await;
        assert_eq!(r.unwrap(), "ready");
        assert_eq!(start.elapsed(), Duration::from_millis(2));
        assert_eq!(calls.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_leaves_the_others_polling() {
        let (fetch, calls) = fake(|n, ids| {
            Ok(ids
                .iter()
                .map(|id| (id.clone(), if n >= 4 { "ready" } else { "pending" }.into()))
                .collect())
        });
        let batcher = Batcher::new(Duration::from_secs(1), fetch);
        let poller = Poller::new(Duration::from_secs(1), Duration::from_secs(60));
        let cancel = CancellationToken::new();
        let (b, c) = (batcher.clone(), cancel.clone());
        let cancelled = tokio::spawn(async move {
            poller
                .wait_batched("i-c", &c, |_, _| {}, &b, "i-c", judge)
                .await
        });
        let others = spawn_waits(poller, &batcher, &["i-1", "i-2"]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cancel.cancel();
        assert!(matches!(
            cancelled.await.unwrap(),
            Err(WaitError::Cancelled(_))
        ));
        for w in others {
            assert_eq!(w.await.unwrap().unwrap(), "ready");
        }
        let calls = calls.lock().unwrap();
        assert!(calls[0].1.contains(&"i-c".to_string()));
        assert!(calls.last().unwrap().1 == vec!["i-1".to_string(), "i-2".into()]);
    }

    #[tokio::test(start_paused = true)]
    async fn more_ids_than_a_call_takes_are_split_into_calls_of_the_same_tick() {
        let (fetch, calls) =
            fake(|_, ids| Ok(ids.iter().map(|id| (id.clone(), "ready".into())).collect()));
        let batcher =
            Batcher::with_limits(Duration::from_secs(1), Duration::from_millis(10), 4, fetch);
        let all = ids(0..10);
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        for w in spawn_waits(Poller::instance_running(), &batcher, &names) {
            assert_eq!(w.await.unwrap().unwrap(), "ready");
        }
        let calls = calls.lock().unwrap();
        let sizes: Vec<usize> = calls.iter().map(|(_, ids)| ids.len()).collect();
        assert_eq!(sizes, [4, 4, 2]);
        assert!(calls.iter().all(|(t, _)| *t == Duration::from_millis(10)));
    }
}
