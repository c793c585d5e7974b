//! The task runtime and the local DAG runner: retries, backoff, timeouts,
//! callbacks, XCom, upstream failures and concurrency. Time is tokio's paused
//! clock: no test sleeps for real.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeZone;
use gust::prelude::*;
use gust::{TaskState, task::FnOperator};
use tokio::time::Instant;

mod common;
use common::logs::capture_logs;

fn seoul(y: i32, m: u32, d: u32) -> chrono::DateTime<chrono_tz::Tz> {
    chrono_tz::Asia::Seoul
        .with_ymd_and_hms(y, m, d, 0, 0, 0)
        .unwrap()
}

/// `Error::skip` (Airflow's `AirflowSkipException`): the task ends `skipped`
/// after one try whatever its retries, calls no callback, and its downstream
/// tasks are skipped (Airflow's `all_success`), unless another upstream
/// failed: then `upstream_failed` wins. Independent tasks run; the run
/// succeeds when nothing failed.
#[tokio::test(start_paused = true)]
async fn a_skip_skips_downstream_and_the_run_succeeds() {
    let tries = Arc::new(AtomicU32::new(0));
    let callbacks = Arc::new(AtomicU32::new(0));
    let (c1, c2, c3) = (callbacks.clone(), callbacks.clone(), callbacks.clone());
    let options = TaskOptions::default()
        .retries(3)
        .on_retry(move |_, _| {
            c1.fetch_add(1, Ordering::SeqCst);
        })
        .on_failure(move |_, _| {
            c2.fetch_add(1, Ordering::SeqCst);
        })
        .on_success(move |_, _| {
            c3.fetch_add(1, Ordering::SeqCst);
        });
    let t = tries.clone();
    let build = |fail_sibling: bool| {
        let t = t.clone();
        let mut dag = Dag::builder("skip_dag");
        let skip = dag.add(
            Task::from_fn("skip", move |_ctx| {
                let t = t.clone();
                async move {
                    t.fetch_add(1, Ordering::SeqCst);
                    Err::<Value, _>(Error::skip("no new files"))
                }
            })
            .with_options(options.clone()),
        );
        let after = dag.add(Task::from_fn("after", |_| async { Ok(json!(1)) }));
        let after_after = dag.add(Task::from_fn("after_after", |_| async { Ok(json!(2)) }));
        let sibling = dag.add(Task::from_fn("sibling", move |_| async move {
            if fail_sibling {
                Err(Error::fail_now("broken"))
            } else {
                Ok(json!(3))
            }
        }));
        let join = dag.add(Task::from_fn("join", |_| async { Ok(json!(4)) }));
        let _ = &skip >> &after >> &after_after;
        let _ = &skip >> &join;
        let _ = &sibling >> &join;
        dag.build().unwrap()
    };

    let report = build(false).test(seoul(2025, 1, 8)).await;
    let state = |id: &str| {
        let t = report.task(id).unwrap();
        (t.state, t.tries)
    };
    assert_eq!(state("skip"), (TaskState::Skipped, 1));
    assert_eq!(tries.load(Ordering::SeqCst), 1, "a skip is not retried");
    assert_eq!(
        callbacks.load(Ordering::SeqCst),
        0,
        "no callback for a skip"
    );
    assert_eq!(state("after"), (TaskState::Skipped, 0));
    assert_eq!(state("after_after"), (TaskState::Skipped, 0));
    assert_eq!(state("sibling"), (TaskState::Success, 1));
    assert_eq!(state("join"), (TaskState::Skipped, 0));
    assert!(report.is_success(), "{report}");
    assert!(report.xcom("skip").is_none());
    let table = report.to_string();
    assert!(table.contains("task skipped: no new files"), "{table}");

    let report = build(true).test(seoul(2025, 1, 8)).await;
    let t = |id: &str| report.task(id).unwrap().state;
    assert_eq!(t("skip"), TaskState::Skipped);
    assert_eq!(t("after"), TaskState::Skipped);
    assert_eq!(
        t("join"),
        TaskState::UpstreamFailed,
        "a failure wins over a skip"
    );
    assert!(!report.is_success());
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_then_fail_and_skip_downstream() {
    let tries = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let retried = Arc::new(AtomicU32::new(0));
    let failed = Arc::new(AtomicU32::new(0));
    let succeeded = Arc::new(AtomicU32::new(0));

    let t = tries.clone();
    let (r, f, s) = (retried.clone(), failed.clone(), succeeded.clone());
    let options = TaskOptions::default()
        .retries(2)
        .retry_delay(Duration::from_secs(10))
        .retry_exponential_backoff(true)
        .on_retry(move |ctx, err| {
            assert!(err.is_retryable());
            assert!(ctx.try_number() <= 2);
            r.fetch_add(1, Ordering::SeqCst);
        })
        .on_failure(move |ctx, err| {
            assert_eq!(ctx.try_number(), 3);
            assert!(err.to_string().contains("flaky upstream"));
            f.fetch_add(1, Ordering::SeqCst);
        })
        .on_success(move |_, _| {
            s.fetch_add(1, Ordering::SeqCst);
        });

    let mut dag = Dag::builder("retry_dag");
    let flaky = dag.add(
        Task::from_fn("flaky", move |_ctx| {
            let t = t.clone();
            async move {
                t.lock().unwrap().push(Instant::now());
                Err(Error::retryable("flaky upstream"))
            }
        })
        .with_options(options),
    );
    let after = dag.add(Task::from_fn("after", |_ctx| async { Ok(json!(1)) }));
    let after_after = dag.add(Task::from_fn("after_after", |_ctx| async { Ok(json!(2)) }));
    let _ = &flaky >> &after >> &after_after;
    let report = dag.build().unwrap().test(seoul(2025, 1, 8)).await;

    let flaky = report.task("flaky").unwrap();
    assert_eq!(flaky.state, TaskState::Failed);
    assert_eq!(flaky.tries, 3);
    assert!(flaky.error.as_deref().unwrap().contains("flaky upstream"));
    assert_eq!(
        report.task("after").unwrap().state,
        TaskState::UpstreamFailed
    );
    assert_eq!(
        report.task("after_after").unwrap().state,
        TaskState::UpstreamFailed
    );
    assert_eq!(report.task("after").unwrap().tries, 0);
    assert_eq!(retried.load(Ordering::SeqCst), 2);
    assert_eq!(failed.load(Ordering::SeqCst), 1);
    assert_eq!(succeeded.load(Ordering::SeqCst), 0);
    assert!(!report.is_success());

    let tries = tries.lock().unwrap();
    assert_eq!(tries.len(), 3);
    let d1 = tries[1] - tries[0];
    let d2 = tries[2] - tries[1];
    // Retry n waits within [10s·2ⁿ⁻¹, 10s·2ⁿ) — jitter, but always growing.
    assert!(
        d1 >= Duration::from_secs(10) && d1 < Duration::from_secs(20),
        "{d1:?}"
    );
    assert!(
        d2 >= Duration::from_secs(20) && d2 < Duration::from_secs(40),
        "{d2:?}"
    );
    assert!(d2 > d1);

    let table = report.to_string();
    assert!(table.contains("upstream_failed"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("flaky") && l.contains("failed") && l.contains(" 3 ")),
        "{table}"
    );
}

#[tokio::test(start_paused = true)]
async fn max_retry_delay_caps_backoff_and_no_jitter_is_exact() {
    let opts = TaskOptions::default()
        .retry_delay(Duration::from_secs(10))
        .retry_exponential_backoff(true)
        .jitter(false)
        .max_retry_delay(Duration::from_secs(30));
    assert_eq!(opts.delay_before_try(2), Duration::from_secs(10));
    assert_eq!(opts.delay_before_try(3), Duration::from_secs(20));
    assert_eq!(opts.delay_before_try(4), Duration::from_secs(30));
    assert_eq!(opts.delay_before_try(60), Duration::from_secs(30));
    let linear = TaskOptions::default().retry_delay(Duration::from_secs(7));
    assert_eq!(linear.delay_before_try(5), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_fail_now_error_is_tried_once() {
    let calls = Arc::new(AtomicU32::new(0));
    let retried = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let r = retried.clone();
    let mut dag = Dag::builder("fail_now");
    dag.add(
        Task::from_fn("bad_input", move |_ctx| {
            c.fetch_add(1, Ordering::SeqCst);
            async { Err(Error::fail_now("the extracted table is empty")) }
        })
        .with_options(TaskOptions::default().retries(5).on_retry(move |_, _| {
            r.fetch_add(1, Ordering::SeqCst);
        })),
    );
    let report = dag.build().unwrap().test(seoul(2025, 1, 8)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(retried.load(Ordering::SeqCst), 0);
    assert_eq!(report.task("bad_input").unwrap().tries, 1);
    let err = report.into_result().unwrap_err();
    assert!(err.to_string().contains("bad_input: "), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_template_error_is_not_retried() {
    let mut dag = Dag::builder("tpl");
    dag.add(
        Task::from_fn("render", |ctx| async move {
            Ok(ctx.render("{{ nope }}")?.into())
        })
        .with_options(TaskOptions::default().retries(3)),
    );
    let report = dag.build().unwrap().test(seoul(2025, 1, 8)).await;
    let t = report.task("render").unwrap();
    assert_eq!((t.state, t.tries), (TaskState::Failed, 1));
    assert!(t.error.as_deref().unwrap().contains("line 1"), "{t:?}");
}

/// An operator whose work never ends, recording whether it was killed.
struct Hangs {
    killed: Arc<AtomicU32>,
    dropped: Arc<AtomicU32>,
}

struct DropFlag(Arc<AtomicU32>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Operator for Hangs {
    async fn execute(&self, _ctx: &Context) -> Result<Value> {
        let _flag = DropFlag(self.dropped.clone());
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(Value::Null)
    }

    async fn on_kill(&self, ctx: &Context) {
        assert_eq!(ctx.task_id(), "remote_job");
        self.killed.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn execution_timeout_cancels_calls_on_kill_and_retries() {
    let killed = Arc::new(AtomicU32::new(0));
    let dropped = Arc::new(AtomicU32::new(0));
    let mut dag = Dag::builder("timeouts");
    dag.add(
        Task::new(
            "remote_job",
            Hangs {
                killed: killed.clone(),
                dropped: dropped.clone(),
            },
        )
        .with_options(
            TaskOptions::default()
                .retries(1)
                .retry_delay(Duration::from_secs(1))
                .execution_timeout(Duration::from_secs(5)),
        ),
    );
    let start = Instant::now();
    let report = dag.build().unwrap().test(seoul(2025, 1, 8)).await;
    let t = report.task("remote_job").unwrap();
    assert_eq!((t.state, t.tries), (TaskState::Failed, 2));
    assert!(
        t.error.as_deref().unwrap().contains("execution_timeout"),
        "{t:?}"
    );
    assert_eq!(
        killed.load(Ordering::SeqCst),
        2,
        "on_kill once per timed-out try"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "the execute future was cancelled"
    );
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn xcom_flows_downstream_and_retry_can_succeed() {
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let mut dag = Dag::builder("xcom")
        .timezone(chrono_tz::Asia::Seoul)
        .params(json!({"table": "iris_data"}));
    let extract = dag.add(
        Task::from_fn("extract", move |ctx| {
            let a = a.clone();
            async move {
                if a.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "s3.get_object",
                        "connection reset",
                    ));
                }
                ctx.xcom_push("rows", json!(150))?;
                Ok(json!({"key": ctx.render("iris/{{ ds_nodash }}.csv")?}))
            }
        })
        .with_options(
            TaskOptions::default()
                .retries(1)
                .retry_delay(Duration::from_secs(30)),
        ),
    );
    let load = dag.add(Task::from_fn("load", |ctx| async move {
        let key = ctx.xcom_pull("extract").unwrap()["key"].clone();
        let rows = ctx.xcom_pull_key("extract", "rows").unwrap();
        Ok(json!({"key": key, "rows": rows, "table": ctx.params()["table"], "try": ctx.try_number()}))
    }));
    let _ = &extract >> &load;
    let report = dag.build().unwrap().test(seoul(2025, 1, 8)).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.task("extract").unwrap().tries, 2);
    assert_eq!(
        report.xcom("load"),
        Some(&json!({"key": "iris/20250108.csv", "rows": 150, "table": "iris_data", "try": 1}))
    );
}

#[tokio::test(start_paused = true)]
async fn independent_tasks_run_concurrently_up_to_the_limit() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut dag = Dag::builder("fanout").max_active_tasks(3);
    let start = dag.add(Task::from_fn("start", |_| async { Ok(Value::Null) }));
    let mut leaves = Vec::new();
    for i in 0..8 {
        let (running, peak) = (running.clone(), peak.clone());
        leaves.push(dag.add(Task::from_fn(format!("leaf_{i}"), move |_| {
            let (running, peak) = (running.clone(), peak.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(10)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(Value::Null)
            }
        })));
    }
    for leaf in &leaves {
        start.set_downstream(leaf);
    }
    let t0 = Instant::now();
    let report = dag.build().unwrap().test(seoul(2025, 1, 8)).await;
    assert!(report.is_success());
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    // 8 tasks of 10 s, 3 at a time: 3 waves.
    assert_eq!(t0.elapsed().as_secs(), 30);
}

#[tokio::test]
async fn a_panicking_task_fails_without_taking_the_run_down() {
    let mut dag = Dag::builder("panics");
    let p = dag.add(Task::new(
        "boom",
        FnOperator::new(|_ctx: Context| async move {
            let v: Vec<u8> = Vec::new();
            #[allow(clippy::indexing_slicing)]
            Ok(json!(v[1]))
        }),
    ));
    let ok = dag.add(Task::from_fn("independent", |_| async {
        Ok(json!("fine"))
    }));
    let after = dag.add(Task::from_fn("after", |_| async { Ok(Value::Null) }));
    let _ = &p >> &after;
    let report = dag.build().unwrap().test(seoul(2025, 1, 8)).await;
    assert_eq!(report.task("boom").unwrap().state, TaskState::Failed);
    assert!(
        report
            .task("boom")
            .unwrap()
            .error
            .as_deref()
            .unwrap()
            .contains("panicked")
    );
    assert_eq!(
        report.task("independent").unwrap().state,
        TaskState::Success
    );
    assert_eq!(
        report.task("after").unwrap().state,
        TaskState::UpstreamFailed
    );
    let _ = ok;
}

#[tokio::test]
async fn data_interval_and_run_id_follow_the_schedule_and_timezone() {
    let mut dag = Dag::builder("daily")
        .schedule(Schedule::Daily)
        .timezone(chrono_tz::Asia::Seoul);
    dag.add(Task::from_fn("show", |ctx| async move {
        Ok(json!(ctx.render(
            "{{ run_id }}|{{ data_interval_start }}|{{ data_interval_end }}|{{ ds }}"
        )?))
    }));
    // A logical date given in UTC is shown in the DAG's timezone.
    let utc = chrono::Utc.with_ymd_and_hms(2025, 1, 7, 15, 0, 0).unwrap();
    let report = dag
        .build()
        .unwrap()
        .test(utc.with_timezone(&chrono_tz::UTC))
        .await;
    assert_eq!(
        report.xcom("show").unwrap(),
        "manual__2025-01-08T00:00:00+09:00|2025-01-08 00:00:00+09:00|2025-01-09 00:00:00+09:00|2025-01-08"
    );
}

#[tokio::test]
async fn render_preview_without_running() {
    let mut b = Dag::builder("preview")
        .timezone(chrono_tz::Asia::Seoul)
        .params(json!({"days": 7}));
    b.add(Task::from_fn("t", |_| async { Ok(Value::Null) }));
    let dag = b.build().unwrap();
    let config = RunConfig {
        params: Some(json!({"days": 3})),
        ..RunConfig::new(seoul(2025, 1, 8))
    };
    let ctx = dag.context_for("t", &config).unwrap();
    assert_eq!(
        ctx.render("{{ macros.ds_add(ds, -(params.days)) }}")
            .unwrap(),
        "2025-01-05"
    );
    assert_eq!(
        dag.context_for("nope", &config).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

// Issue #11: a panic is a task failure like any other — its message and location in
// the error, the report and the log, the retry policy of a non-retryable error, and
// `on_failure` called once. (Before the fix: tries 1 in 0 ns, "the task panicked"
// with neither message nor location, `on_failure` never called, nothing logged by
// the task itself.)
#[tokio::test(start_paused = true)]
async fn a_panic_is_a_failure_with_message_location_callbacks_and_log() {
    let (log, _guard) = capture_logs();

    let calls = Arc::new(AtomicU32::new(0));
    let retried = Arc::new(AtomicU32::new(0));
    let failures = Arc::new(Mutex::new(Vec::<(u32, ErrorKind, bool, String)>::new()));
    let downstream_ran = Arc::new(AtomicU32::new(0));

    let (c, r, f) = (calls.clone(), retried.clone(), failures.clone());
    let options = TaskOptions::default()
        .retries(2)
        .retry_delay(Duration::from_secs(10))
        .on_retry(move |_, _| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .on_failure(move |ctx, err| {
            f.lock().unwrap().push((
                ctx.try_number(),
                err.kind(),
                err.is_retryable(),
                err.to_string(),
            ));
        });
    let mut dag = Dag::builder("panics_for_good");
    let boom = dag.add(
        Task::from_fn("boom", move |_ctx| {
            c.fetch_add(1, Ordering::SeqCst);
            async { panic!("x: bad row 42") }
        })
        .with_options(options),
    );
    let d = downstream_ran.clone();
    let after = dag.add(Task::from_fn("after", move |_| {
        d.fetch_add(1, Ordering::SeqCst);
        async { Ok(Value::Null) }
    }));
    let _ = &boom >> &after;
    let report = dag.build().unwrap().test(seoul(2025, 1, 8)).await;

    let t = report.task("boom").unwrap();
    assert_eq!(t.state, TaskState::Failed);
    assert_eq!(t.tries, 1, "a panic is not retried");
    let error = t.error.as_deref().unwrap();
    assert!(error.contains("panicked"), "{error}");
    assert!(error.contains("x: bad row 42"), "{error}");
    assert!(error.contains("tests/runtime.rs:"), "{error}");
    assert!(error.contains("task_id=boom"), "{error}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(retried.load(Ordering::SeqCst), 0);

    let failures = failures.lock().unwrap();
    assert_eq!(failures.len(), 1, "on_failure is called exactly once");
    let (try_number, kind, retryable, text) = &failures[0];
    assert_eq!(*try_number, 1);
    assert_eq!(*kind, ErrorKind::TaskFailed);
    assert!(!retryable);
    assert_eq!(text, error, "the callback sees the error of the report");

    let after = report.task("after").unwrap();
    assert_eq!((after.state, after.tries), (TaskState::UpstreamFailed, 0));
    assert_eq!(downstream_ran.load(Ordering::SeqCst), 0);
    assert!(!report.is_success());
    let err = report.into_result().unwrap_err();
    assert!(err.to_string().contains("x: bad row 42"), "{err}");

    let log = log.text();
    assert!(
        log.lines().any(|l| l.contains("ERROR")
            && l.contains("task failed")
            && l.contains("x: bad row 42")),
        "{log}"
    );
}

// A panic inside a callback is logged and changes nothing: the task keeps the state
// its operator gave it and the run goes on.
#[tokio::test(start_paused = true)]
async fn a_panicking_callback_does_not_change_the_outcome() {
    let mut dag = Dag::builder("callback_panics");
    let ok = dag.add(
        Task::from_fn("ok", |_| async { Ok(json!(1)) })
            .with_options(TaskOptions::default().on_success(|_, _| panic!("on_success bug"))),
    );
    let next = dag.add(Task::from_fn("next", |ctx| async move {
        Ok(ctx.xcom_pull("ok").unwrap_or_default())
    }));
    let _ = &ok >> &next;
    dag.add(
        Task::from_fn("bad", |_| async { Err(Error::fail_now("real cause")) })
            .with_options(TaskOptions::default().on_failure(|_, _| panic!("on_failure bug"))),
    );
    let report = dag.build().unwrap().test(seoul(2025, 1, 8)).await;
    assert_eq!(report.task("ok").unwrap().state, TaskState::Success);
    assert_eq!(report.xcom("next"), Some(&json!(1)));
    let bad = report.task("bad").unwrap();
    assert_eq!(bad.state, TaskState::Failed);
    assert!(
        bad.error.as_deref().unwrap().contains("real cause"),
        "{bad:?}"
    );
}

// Issue #10: an error a hook already retried and gave up on ("exhausted") is not
// retried again by the task, so the hook's attempts and the task's tries do not
// multiply; `retry_exhausted(true)` opts back in.
#[tokio::test(start_paused = true)]
async fn an_exhausted_error_is_not_retried_unless_the_task_opts_in() {
    let (log, _guard) = capture_logs();

    async fn run(options: TaskOptions) -> (u32, Arc<Mutex<Vec<(bool, bool)>>>, gust::RunReport) {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (c, s) = (calls.clone(), seen.clone());
        let mut dag = Dag::builder("exhausted");
        dag.add(
            Task::from_fn("call", move |_ctx| {
                c.fetch_add(1, Ordering::SeqCst);
                async {
                    // What a hook returns after its own retries ran out.
                    Err(Error::new(ErrorKind::Unavailable, "hook.call", "HTTP 503")
                        .exhausted()
                        .with("attempts", 4))
                }
            })
            .with_options(
                options
                    .retries(3)
                    .retry_delay(Duration::from_secs(1))
                    .on_failure(move |_, e| {
                        s.lock().unwrap().push((e.is_exhausted(), e.is_retryable()))
                    }),
            ),
        );
        let report = dag.build().unwrap().test(seoul(2025, 1, 8)).await;
        (calls.load(Ordering::SeqCst), seen, report)
    }

    let (calls, seen, report) = run(TaskOptions::default()).await;
    assert_eq!(calls, 1, "the hook's 4 attempts are the whole budget");
    assert_eq!(*seen.lock().unwrap(), [(true, false)]);
    let t = report.task("call").unwrap();
    assert_eq!((t.state, t.tries), (TaskState::Failed, 1));
    assert!(
        t.error
            .as_deref()
            .unwrap()
            .contains("(unavailable, retries exhausted)"),
        "{t:?}"
    );
    let logged = log.text();
    assert!(
        logged.lines().any(|l| l.contains("task failed")
            && l.contains("exhausted=true")
            && l.contains("retry_exhausted")),
        "{logged}"
    );

    let (calls, seen, report) = run(TaskOptions::default().retry_exhausted(true)).await;
    assert_eq!(calls, 4);
    assert_eq!(*seen.lock().unwrap(), [(true, false)]);
    assert_eq!(report.task("call").unwrap().tries, 4);
    assert!(log.text().contains("no retries left"));
}

#[test]
fn the_task_backoff_is_the_one_backoff() {
    use gust::retry::Backoff;
    let opts = TaskOptions::default()
        .retry_delay(Duration::from_secs(10))
        .retry_exponential_backoff(true)
        .max_retry_delay(Duration::from_secs(30));
    assert_eq!(
        opts.backoff(),
        Backoff::exponential(Duration::from_secs(10)).max_delay(Duration::from_secs(30))
    );
    // Airflow jitters only the exponential form.
    assert_eq!(
        TaskOptions::default()
            .retry_delay(Duration::from_secs(7))
            .backoff(),
        Backoff::constant(Duration::from_secs(7))
    );
}
