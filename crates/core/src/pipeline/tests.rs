use super::*;
use std::sync::Mutex;

#[derive(Default)]
struct Log(Mutex<Vec<String>>);
impl Log {
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    Ok,
    Fail,
    FailOnce,
    Hang,
    CleanupFails,
    CleanupHangs,
}

struct T {
    name: &'static str,
    b: Behaviour,
    runs: u32,
}

#[async_trait]
impl Step<Log, u32> for T {
    fn name(&self) -> &'static str {
        self.name
    }
    async fn run(&mut self, cx: &Log, st: &mut u32) -> Result<(), StepError> {
        self.runs += 1;
        *st += 1;
        cx.push(format!("run {}", self.name));
        match self.b {
            Behaviour::Fail => Err(StepError::msg(format!("{} broke", self.name))),
            Behaviour::FailOnce if self.runs == 1 => Err(StepError::msg("first try fails")),
            Behaviour::Hang => {
                std::future::pending::<()>().await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
    async fn plan(&self, _cx: &Log, st: &mut u32) -> Result<Vec<String>, StepError> {
        *st += 1;
        match self.b {
            Behaviour::Fail => Err(StepError::msg(format!("{} cannot", self.name))),
            Behaviour::Hang => Ok(vec![]),
            _ => Ok(vec![format!(
                "{} would run after {} plans",
                self.name,
                *st - 1
            )]),
        }
    }
    async fn cleanup(&mut self, cx: &Log, _st: &mut u32, o: Outcome) -> Result<(), StepError> {
        cx.push(format!("cleanup {} {o:?}", self.name));
        match self.b {
            Behaviour::CleanupFails => Err(StepError::msg(format!("{} cleanup broke", self.name))),
            Behaviour::CleanupHangs => {
                std::future::pending::<()>().await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn steps(spec: &[(&'static str, Behaviour)]) -> Vec<Box<dyn Step<Log, u32>>> {
    spec.iter()
        .map(|&(name, b)| Box::new(T { name, b, runs: 0 }) as Box<dyn Step<Log, u32>>)
        .collect()
}

fn ctl(on_error: OnError) -> RunControl {
    RunControl {
        cancel: CancellationToken::new(),
        cancel_cleanup: CancellationToken::new(),
        on_error,
        cleanup_deadline: Duration::from_secs(5),
        ask: None,
        in_flight: InFlight::new(),
        settle_deadline: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn success_cleans_up_every_step_in_reverse() {
    let log = Log::default();
    let mut s = steps(&[
        ("a", Behaviour::Ok),
        ("b", Behaviour::Ok),
        ("c", Behaviour::Ok),
    ]);
    let r = run(&mut s, &log, &mut 0, &ctl(OnError::Cleanup)).await;
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert!(r.error.is_none());
    assert_eq!(
        log.all(),
        [
            "run a",
            "run b",
            "run c",
            "cleanup c Succeeded",
            "cleanup b Succeeded",
            "cleanup a Succeeded"
        ]
    );
}

#[tokio::test]
async fn failure_cleans_up_the_failed_step_and_those_before_it_only() {
    let log = Log::default();
    let mut s = steps(&[
        ("a", Behaviour::Ok),
        ("b", Behaviour::Fail),
        ("c", Behaviour::Ok),
    ]);
    let r = run(&mut s, &log, &mut 0, &ctl(OnError::Cleanup)).await;
    assert_eq!(r.outcome, Outcome::Failed);
    let (step, err) = r.error.unwrap();
    assert_eq!(step, "b");
    assert_eq!(err.to_string(), "b broke");
    assert_eq!(
        log.all(),
        ["run a", "run b", "cleanup b Failed", "cleanup a Failed"]
    );
}

#[tokio::test]
async fn cleanup_errors_are_collected_and_never_replace_the_first_error() {
    let log = Log::default();
    let mut s = steps(&[
        ("a", Behaviour::CleanupFails),
        ("b", Behaviour::CleanupFails),
        ("c", Behaviour::Fail),
    ]);
    let r = run(&mut s, &log, &mut 0, &ctl(OnError::Cleanup)).await;
    assert_eq!(r.error.as_ref().unwrap().1.to_string(), "c broke");
    let f: Vec<_> = r
        .cleanup_failures
        .iter()
        .map(|f| (f.step, f.error.to_string()))
        .collect();
    assert_eq!(
        f,
        [
            ("b", "b cleanup broke".to_string()),
            ("a", "a cleanup broke".to_string())
        ]
    );
    assert!(
        r.cleanup_failures
            .iter()
            .all(|f| matches!(f.error, CleanupError::Step(StepError::Failed(_))))
    );
}

#[tokio::test(start_paused = true)]
async fn a_stuck_cleanup_hits_its_deadline_and_the_rest_still_run() {
    let log = Log::default();
    let mut s = steps(&[
        ("a", Behaviour::Ok),
        ("b", Behaviour::CleanupHangs),
        ("c", Behaviour::Fail),
    ]);
    let r = run(&mut s, &log, &mut 0, &ctl(OnError::Cleanup)).await;
    assert_eq!(r.cleanup_failures.len(), 1);
    assert_eq!(r.cleanup_failures[0].step, "b");
    assert!(
        r.cleanup_failures[0]
            .error
            .to_string()
            .contains("did not finish within 5s")
    );
    assert!(matches!(
        r.cleanup_failures[0].error,
        CleanupError::TimedOut(d) if d == Duration::from_secs(5)
    ));
    assert!(log.all().contains(&"cleanup a Failed".to_string()));
}

#[tokio::test]
async fn abort_leaves_everything_in_place() {
    let log = Log::default();
    let mut s = steps(&[("a", Behaviour::Ok), ("b", Behaviour::Fail)]);
    let r = run(&mut s, &log, &mut 0, &ctl(OnError::Abort)).await;
    assert!(r.cleanup_skipped);
    assert_eq!(log.all(), ["run a", "run b"]);
}

#[tokio::test]
async fn ask_can_retry_the_failed_step() {
    let log = Log::default();
    let mut s = steps(&[("a", Behaviour::Ok), ("b", Behaviour::FailOnce)]);
    let mut c = ctl(OnError::Ask);
    c.ask = Some(Box::new(|step, err| {
        assert_eq!(step, "b");
        assert_eq!(err.to_string(), "first try fails");
        AskAnswer::Retry
    }));
    let r = run(&mut s, &log, &mut 0, &c).await;
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert_eq!(log.all()[..3], ["run a", "run b", "run b"]);
}

#[tokio::test]
async fn cancellation_stops_the_running_step_and_cleans_up() {
    let log = Log::default();
    let mut s = steps(&[
        ("a", Behaviour::Ok),
        ("b", Behaviour::Hang),
        ("c", Behaviour::Ok),
    ]);
    let c = ctl(OnError::Cleanup);
    let cancel = c.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    });
    let r = run(&mut s, &log, &mut 0, &c).await;
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(
        log.all(),
        [
            "run a",
            "run b",
            "cleanup b Cancelled",
            "cleanup a Cancelled"
        ]
    );
}

/// Waits for the cancellation token itself and reports what it saw when it fires.
struct Observer {
    cancel: CancellationToken,
}

#[async_trait]
impl Step<Log, u32> for Observer {
    fn name(&self) -> &'static str {
        "observer"
    }
    fn observes_cancel(&self) -> bool {
        true
    }
    async fn run(&mut self, cx: &Log, _st: &mut u32) -> Result<(), StepError> {
        self.cancel.cancelled().await;
        cx.push("observer saw the interrupt".into());
        Err(StepError::Cancelled)
    }
}

#[tokio::test]
async fn a_step_that_observes_cancellation_is_not_dropped() {
    let log = Log::default();
    let c = ctl(OnError::Cleanup);
    let mut s = steps(&[("a", Behaviour::Ok)]);
    s.push(Box::new(Observer {
        cancel: c.cancel.clone(),
    }));
    let cancel = c.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    });
    let r = run(&mut s, &log, &mut 0, &c).await;
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(
        log.all(),
        ["run a", "observer saw the interrupt", "cleanup a Cancelled"]
    );
}

/// Makes something with a "create call" that takes 200 ms, records it, then waits forever; its cleanup
/// removes what it recorded.
struct Creator {
    in_flight: Arc<InFlight>,
    made: Option<&'static str>,
}

#[async_trait]
impl Step<Log, u32> for Creator {
    fn name(&self) -> &'static str {
        "creator"
    }
    async fn run(&mut self, cx: &Log, _st: &mut u32) -> Result<(), StepError> {
        let made = {
            let _call = self.in_flight.enter();
            tokio::time::sleep(Duration::from_millis(200)).await;
            "thing-1"
        };
        self.made = Some(made);
        cx.push(format!("made {made}"));
        std::future::pending::<()>().await;
        Ok(())
    }
    async fn cleanup(&mut self, cx: &Log, _st: &mut u32, _o: Outcome) -> Result<(), StepError> {
        if let Some(m) = self.made.take() {
            cx.push(format!("removed {m}"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_create_call_in_flight_at_the_interrupt_is_settled_then_cleaned_up() {
    let log = Log::default();
    let c = ctl(OnError::Cleanup);
    let mut s: Vec<Box<dyn Step<Log, u32>>> = vec![Box::new(Creator {
        in_flight: c.in_flight.clone(),
        made: None,
    })];
    let cancel = c.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    });
    let r = run(&mut s, &log, &mut 0, &c).await;
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(log.all(), ["made thing-1", "removed thing-1"]);
    assert_eq!(c.in_flight.count(), 0);
}

#[tokio::test]
async fn a_create_call_that_never_answers_is_dropped_at_the_settle_deadline() {
    struct Stuck(Arc<InFlight>);
    #[async_trait]
    impl Step<Log, u32> for Stuck {
        fn name(&self) -> &'static str {
            "stuck"
        }
        async fn run(&mut self, _cx: &Log, _st: &mut u32) -> Result<(), StepError> {
            let _call = self.0.enter();
            std::future::pending::<()>().await;
            Ok(())
        }
    }
    let log = Log::default();
    let mut c = ctl(OnError::Cleanup);
    c.settle_deadline = Duration::from_millis(100);
    let mut s: Vec<Box<dyn Step<Log, u32>>> = vec![Box::new(Stuck(c.in_flight.clone()))];
    c.cancel.cancel();
    // Cancelled before the step started: it never runs.
    let r = run(&mut s, &log, &mut 0, &c).await;
    assert_eq!(r.outcome, Outcome::Cancelled);
    let c2 = {
        let mut c2 = ctl(OnError::Cleanup);
        c2.settle_deadline = Duration::from_millis(100);
        c2
    };
    let mut s: Vec<Box<dyn Step<Log, u32>>> = vec![Box::new(Stuck(c2.in_flight.clone()))];
    let cancel = c2.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        cancel.cancel();
    });
    let r = run(&mut s, &log, &mut 0, &c2).await;
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(
        c2.in_flight.count(),
        0,
        "the guard went with the dropped step"
    );
}

#[tokio::test]
async fn a_second_interrupt_stops_cleanup() {
    let log = Log::default();
    let mut s = steps(&[
        ("a", Behaviour::Ok),
        ("b", Behaviour::CleanupHangs),
        ("c", Behaviour::Fail),
    ]);
    let c = ctl(OnError::Cleanup);
    let cc = c.cancel_cleanup.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cc.cancel();
    });
    let r = run(&mut s, &log, &mut 0, &c).await;
    assert!(r.cleanup_skipped);
    assert!(!log.all().contains(&"cleanup a Failed".to_string()));
}

#[test]
fn aws_errors_and_waits_keep_their_kind() {
    let throttled = crate::aws_err::AwsError {
        op: "DescribeInstances",
        code: Some("RequestLimitExceeded".into()),
        detail: "RequestLimitExceeded: slow down".into(),
    };
    let e = StepError::from(throttled);
    assert_eq!(
        e.to_string(),
        "DescribeInstances: RequestLimitExceeded: slow down"
    );
    assert!(matches!(&e, StepError::Aws(a) if a.class() == crate::aws::ErrorClass::Throttled));
    let e = StepError::from(crate::poll::WaitError::Cancelled(
        "instance i-1 to run".into(),
    ));
    assert!(matches!(e, StepError::Cancelled));
    let e = StepError::from(crate::poll::WaitError::Failed {
        what: "instance i-1 to run".into(),
        state: "terminated".into(),
    });
    assert!(matches!(
        e,
        StepError::Wait(crate::poll::WaitError::Failed { .. })
    ));
    assert_eq!(
        e.to_string(),
        "instance i-1 to run: reached state terminated"
    );
}

#[tokio::test]
async fn the_plan_walks_the_same_steps_in_order_and_stops_at_the_first_refusal() {
    let log = Log::default();
    let s = steps(&[
        ("a", Behaviour::Ok),
        ("b", Behaviour::Hang),
        ("c", Behaviour::Ok),
    ]);
    let mut st = 0;
    let lines = plan(&s, &log, &mut st).await.unwrap();
    assert_eq!(
        lines,
        ["a would run after 0 plans", "c would run after 2 plans"]
    );
    assert!(log.all().is_empty(), "planning runs nothing");
    let s = steps(&[
        ("a", Behaviour::Ok),
        ("b", Behaviour::Fail),
        ("c", Behaviour::Ok),
    ]);
    let (step, e) = plan(&s, &log, &mut 0).await.unwrap_err();
    assert_eq!((step, e.to_string().as_str()), ("b", "b cannot"));
}
