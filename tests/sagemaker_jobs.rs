//! The SageMaker operators' job state machine on `gust::testing::ScriptedSageMaker`:
//! every request in order, every answer given, time paused (the polls'
//! pauses pass at once). moto finishes jobs at once and lacks
//! StopTrainingJob and UpdateEndpoint, so these paths are tested here.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeZone;
use common::logs::capture_logs;
use gust::hooks::sagemaker::SageMakerHook;
use gust::operators::sagemaker::{
    ActionIfJobExists, SageMakerEndpoint, SageMakerModel, SageMakerTraining, TASK_INSTANCE_TAG,
};
use gust::retry::Backoff;
use gust::testing::{ScriptedSageMaker, aws_error};
use gust::{Connection, Context, Dag, ErrorKind, Operator, Task, TaskOptions};
use serde_json::{Value, json};

const JOB: &str = "mnistclassifier-2024-01-01-00-00-00";
const ARN: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:training-job/mnistclassifier-2024-01-01-00-00-00";

fn described(status: &'static str) -> impl Fn() -> gust::Result<Value> + Clone {
    move || {
        Ok(json!({
            "TrainingJobName": JOB,
            "TrainingJobArn": ARN,
            "TrainingJobStatus": status,
            "SecondaryStatus": status,
            "CreationTime": 1_704_067_200.0,
            "ModelArtifacts": {"S3ModelArtifacts": format!("s3://b/out/{JOB}/output/model.tar.gz")},
            "ResourceConfig": {"InstanceCount": 1},
            "FailureReason": if status == "Failed" { "AlgorithmError: feature_dim 784 does not match the data (64)" } else { "" },
        }))
    }
}

/// The start of a new job's script: its name is free, then it is created.
fn started(api: &Arc<ScriptedSageMaker>) -> &Arc<ScriptedSageMaker> {
    api.then("DescribeTrainingJob", not_found)
        .then("CreateTrainingJob", || Ok(json!({"TrainingJobArn": ARN})))
}

fn not_found() -> gust::Result<Value> {
    Err(aws_error(
        "ValidationException",
        &format!("Could not find training job '{ARN}'"),
    ))
}

fn training() -> SageMakerTraining {
    SageMakerTraining::new(json!({
        "TrainingJobName": "mnistclassifier-{{ logical_date.strftime('%Y-%m-%d-%H-%M-%S') }}",
        "AlgorithmSpecification": {"TrainingImage": "kmeans:1", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.c4.xlarge", "InstanceCount": "{{ params.instances }}", "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": "86400"},
        "RoleArn": "arn:aws:iam::123456789012:role/sm"
    }))
    .check_inputs(false)
    .print_log(false)
    .check_interval(Duration::from_secs(10))
}

fn ctx(try_number: u32) -> Context {
    Context::builder("seed002", "sagemaker_train_model")
        .logical_date(
            chrono_tz::UTC
                .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
                .unwrap(),
        )
        .run_id("scheduled__2024-01-01T00:00:00+00:00")
        .params(json!({"instances": 2}))
        .try_number(try_number)
        .build()
}

fn our_tag() -> String {
    "seed002.sagemaker_train_model.scheduled__2024-01-01T00:00:00+00:00".to_string()
}

#[tokio::test(start_paused = true)]
async fn in_progress_polls_until_completed_and_xcom_is_airflows_shape() {
    let api = ScriptedSageMaker::new();
    api.then("DescribeTrainingJob", not_found)
        .then_check(
            "CreateTrainingJob",
            |r| {
                assert_eq!(r["TrainingJobName"], JOB);
                // Rendered, then cast back to integers as Airflow's integer_fields.
                assert_eq!(r["ResourceConfig"]["InstanceCount"], 2);
                assert_eq!(r["StoppingCondition"]["MaxRuntimeInSeconds"], 86400);
                assert_eq!(
                    r["Tags"],
                    json!([{"Key": TASK_INSTANCE_TAG, "Value": our_tag()}])
                );
            },
            || Ok(json!({"TrainingJobArn": ARN})),
        )
        .times(3, "DescribeTrainingJob", described("InProgress"))
        .then("DescribeTrainingJob", described("Completed"));
    let began = tokio::time::Instant::now();
    let xcom = training()
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap();
    api.assert_done();
    // Three pauses of check_interval between four polls.
    assert_eq!(began.elapsed(), Duration::from_secs(30));
    let t = &xcom["Training"];
    assert_eq!(t["TrainingJobStatus"], "Completed");
    assert_eq!(t["TrainingJobName"], JOB);
    assert_eq!(t["CreationTime"], "2024-01-01T00:00:00Z");
    assert_eq!(
        t["ModelArtifacts"]["S3ModelArtifacts"],
        format!("s3://b/out/{JOB}/output/model.tar.gz")
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_fails_with_its_reason() {
    let api = ScriptedSageMaker::new();
    started(&api)
        .then("DescribeTrainingJob", described("InProgress"))
        .then("DescribeTrainingJob", described("Failed"));
    let e = training()
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap_err();
    api.assert_done();
    assert_eq!(e.kind(), ErrorKind::Remote, "{e}");
    assert!(
        e.message()
            .contains("feature_dim 784 does not match the data (64)"),
        "{e}"
    );
    assert_eq!(e.context("job"), Some(JOB));
    assert_eq!(e.context("status"), Some("Failed"));
    assert_eq!(e.context("conn_id"), Some("aws_default"));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_job_fails_unless_allowed() {
    let api = ScriptedSageMaker::new();
    started(&api)
        .then("DescribeTrainingJob", described("Stopping"))
        .then("DescribeTrainingJob", described("Stopped"));
    let e = training()
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap_err();
    api.assert_done();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert!(e.message().contains("was stopped"), "{e}");
    assert!(!e.is_retryable());

    let api = ScriptedSageMaker::new();
    started(&api).then("DescribeTrainingJob", described("Stopped"));
    let xcom = training()
        .allow_stopped(true)
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap();
    api.assert_done();
    assert_eq!(xcom["Training"]["TrainingJobStatus"], "Stopped");
}

#[tokio::test(start_paused = true)]
async fn max_ingestion_time_stops_the_job_then_fails() {
    let api = ScriptedSageMaker::new();
    started(&api)
        // Polls at 0, 10, 20, 25 s: the last pause is cut to the limit.
        .times(4, "DescribeTrainingJob", described("InProgress"))
        .then_check(
            "StopTrainingJob",
            |r| assert_eq!(r["TrainingJobName"], JOB),
            || Ok(json!({})),
        );
    let began = tokio::time::Instant::now();
    let e = training()
        .max_ingestion_time(Duration::from_secs(25))
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap_err();
    api.assert_done();
    assert_eq!(began.elapsed(), Duration::from_secs(25));
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        e.message().contains("max_ingestion_time 25s: stopped"),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn execution_timeout_stops_the_job_the_task_started() {
    let api = ScriptedSageMaker::new();
    started(&api)
        .times(4, "DescribeTrainingJob", described("InProgress"))
        .then_check(
            "StopTrainingJob",
            |r| assert_eq!(r["TrainingJobName"], JOB),
            || Ok(json!({})),
        );
    let mut dag = Dag::builder("seed002").params(json!({"instances": 2}));
    dag.add(
        Task::new("sagemaker_train_model", training().with_hook(api.hook()))
            .with_options(TaskOptions::default().execution_timeout(Duration::from_secs(35))),
    );
    let report = dag
        .build()
        .unwrap()
        .test(
            chrono_tz::UTC
                .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
                .unwrap(),
        )
        .await;
    assert!(!report.is_success());
    api.assert_done();
    assert_eq!(api.count("CreateTrainingJob"), 1);
    assert_eq!(api.count("StopTrainingJob"), 1);
}

/// `ListTrainingJobs`' answer: the summaries of `jobs`.
fn listed(jobs: Vec<Value>) -> impl Fn() -> gust::Result<Value> + Clone {
    move || Ok(json!({"TrainingJobSummaries": jobs.clone()}))
}

fn job(name: &str, status: &str) -> Value {
    json!({"TrainingJobName": name, "TrainingJobStatus": status,
        "TrainingJobArn": format!("arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}")})
}

fn tags(value: &str) -> impl Fn() -> gust::Result<Value> + Clone + use<> {
    let value = value.to_string();
    move || Ok(json!({"Tags": [{"Key": TASK_INSTANCE_TAG, "Value": value}]}))
}

#[tokio::test(start_paused = true)]
async fn a_retry_attaches_to_the_job_it_started_instead_of_starting_another() {
    let api = ScriptedSageMaker::new();
    api.then("DescribeTrainingJob", described("InProgress"))
        .then_check(
            "ListTrainingJobs",
            |r| assert_eq!(r["NameContains"], JOB),
            listed(vec![job(JOB, "InProgress")]),
        )
        .then_check(
            "ListTags",
            |r| assert_eq!(r["ResourceArn"], ARN),
            tags(&our_tag()),
        )
        .then("DescribeTrainingJob", described("InProgress"))
        .then("DescribeTrainingJob", described("Completed"));
    let xcom = training()
        .with_hook(api.hook())
        .execute(&ctx(2))
        .await
        .unwrap();
    api.assert_done();
    assert_eq!(api.count("CreateTrainingJob"), 0);
    assert_eq!(xcom["Training"]["TrainingJobName"], JOB);
}

#[tokio::test(start_paused = true)]
async fn a_retry_finds_its_renamed_job() {
    // Try 1 found a failed JOB and started JOB-<ts>; try 2 must attach to
    // that one, not start JOB-<ts2> beside it.
    let renamed = format!("{JOB}-1700000000");
    let api = ScriptedSageMaker::new();
    let (r1, r2) = (renamed.clone(), renamed.clone());
    api.then("DescribeTrainingJob", described("Failed"))
        .then(
            "ListTrainingJobs",
            listed(vec![job(&renamed, "InProgress"), job(JOB, "Failed")]),
        )
        .then_check(
            "ListTags",
            move |r| assert!(r["ResourceArn"].as_str().unwrap().ends_with(&r1)),
            tags(&our_tag()),
        )
        .then_check(
            "DescribeTrainingJob",
            move |r| assert_eq!(r["TrainingJobName"], r2.as_str()),
            described("Completed"),
        );
    training()
        .with_hook(api.hook())
        .execute(&ctx(2))
        .await
        .unwrap();
    api.assert_done();
    assert_eq!(api.count("CreateTrainingJob"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_create_whose_answer_was_lost_attaches_to_the_job_it_made() {
    let api = ScriptedSageMaker::new();
    api.then("DescribeTrainingJob", not_found)
        // The create went through, but the answer was a 503: the hook retries.
        .then("CreateTrainingJob", || {
            Err(aws_error("ServiceUnavailable", ""))
        })
        .then("CreateTrainingJob", || {
            Err(aws_error(
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region",
            ))
        })
        .then("DescribeTrainingJob", described("InProgress"))
        .then("ListTags", tags(&our_tag()))
        .then("DescribeTrainingJob", described("Completed"));
    let xcom = training()
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap();
    api.assert_done();
    assert_eq!(xcom["Training"]["TrainingJobStatus"], "Completed");

    // Someone else's job of that name: the error stands.
    let api = ScriptedSageMaker::new();
    api.then("DescribeTrainingJob", not_found)
        .then("CreateTrainingJob", || {
            Err(aws_error(
                "ResourceInUse",
                "Training job names must be unique",
            ))
        })
        .then("DescribeTrainingJob", described("InProgress"))
        .then("ListTags", tags("other.dag.run"));
    let e = training()
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap_err();
    api.assert_done();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_name_taken_by_another_job_gets_a_timestamp_or_fails() {
    let timestamped = |r: &Value| {
        let name = r["TrainingJobName"].as_str().unwrap();
        let suffix = name
            .strip_prefix(&format!("{JOB}-"))
            .unwrap_or_else(|| panic!("{name}"));
        assert!(
            suffix.len() == 10 && suffix.chars().all(|c| c.is_ascii_digit()),
            "{name}"
        );
    };
    let api = ScriptedSageMaker::new();
    api.then("DescribeTrainingJob", described("InProgress"))
        .then("ListTrainingJobs", listed(vec![job(JOB, "InProgress")]))
        .then("ListTags", tags("other.dag.run"))
        .then("DescribeTrainingJob", not_found)
        .then_check("CreateTrainingJob", timestamped, || {
            Ok(json!({"TrainingJobArn": ARN}))
        })
        .then("DescribeTrainingJob", described("Completed"));
    training()
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap();
    api.assert_done();

    // This run's completed job on a first try (the run started again), a
    // failed job on a retry, a stopping one (stopped by on_kill or
    // max_ingestion_time) on a retry: train again, under a new name.
    for (status, try_number) in [("Completed", 1), ("Failed", 2), ("Stopping", 2)] {
        let api = ScriptedSageMaker::new();
        api.then("DescribeTrainingJob", described(status))
            .then("ListTrainingJobs", listed(vec![job(JOB, status)]))
            .then("DescribeTrainingJob", not_found)
            .then_check("CreateTrainingJob", timestamped, || {
                Ok(json!({"TrainingJobArn": ARN}))
            })
            .then("DescribeTrainingJob", described("Completed"));
        training()
            .with_hook(api.hook())
            .execute(&ctx(try_number))
            .await
            .unwrap();
        api.assert_done();
    }

    let api = ScriptedSageMaker::new();
    api.then("DescribeTrainingJob", described("InProgress"))
        .then("ListTrainingJobs", listed(vec![job(JOB, "InProgress")]))
        .then("ListTags", || Ok(json!({"Tags": []})));
    let e = training()
        .action_if_job_exists(ActionIfJobExists::Fail)
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap_err();
    api.assert_done();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(e.context("job"), Some(JOB));
}

#[tokio::test(start_paused = true)]
async fn logs_are_read_between_polls_without_delaying_them() {
    let api = ScriptedSageMaker::new();
    started(&api)
        .times(3, "DescribeTrainingJob", described("InProgress"))
        .then("DescribeTrainingJob", described("Failed"));
    let pages = Arc::new(Mutex::new(0));
    let seen = pages.clone();
    // Each page takes 4 s: a pass over 4 pages outlasts the 10 s pause.
    api.with_logs(Duration::from_secs(4), move |action, request| match action {
        "DescribeLogStreams" => {
            assert_eq!(request["logGroupName"], "/aws/sagemaker/TrainingJobs");
            assert_eq!(request["logStreamNamePrefix"], format!("{JOB}/"));
            Ok(json!({"logStreams": [{"logStreamName": format!("{JOB}/algo-1-1700000000")}]}))
        }
        "GetLogEvents" => {
            *seen.lock().unwrap() += 1;
            let token = request["nextToken"].as_str().unwrap_or("f/0").to_string();
            let page: u32 = token[2..].parse().unwrap();
            if page < 3 {
                Ok(json!({"events": [{"timestamp": 1_700_000_000_000i64 + page as i64,
                    "message": format!("line {page}")}], "nextForwardToken": format!("f/{}", page + 1)}))
            } else {
                Ok(json!({"events": [], "nextForwardToken": token}))
            }
        }
        other => panic!("{other}"),
    });
    let (logs, _guard) = capture_logs();
    let e = training()
        .print_log(true)
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap_err();
    api.assert_done();
    assert_eq!(e.kind(), ErrorKind::Remote);
    // The polls keep their 10 s rhythm, however slow the logs are.
    assert_eq!(
        api.times_of("DescribeTrainingJob")[1..],
        [0, 10, 20, 30].map(Duration::from_secs)
    );
    // Every line once, in order, the failed job's included.
    let text = logs.text();
    let at = |l: &str| {
        text.find(l)
            .unwrap_or_else(|| panic!("{l} missing: {text}"))
    };
    assert!(
        at("line 0") < at("line 1") && at("line 1") < at("line 2"),
        "{text}"
    );
    assert_eq!(text.matches("line 1").count(), 1, "{text}");
    assert!(*pages.lock().unwrap() >= 4);
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_with_backoff() {
    let api = ScriptedSageMaker::new();
    let throttled = || Err(aws_error("ThrottlingException", "Rate exceeded"));
    started(&api)
        .times(2, "DescribeTrainingJob", throttled)
        .then("DescribeTrainingJob", described("Completed"));
    let began = tokio::time::Instant::now();
    training()
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap();
    api.assert_done();
    // Backoff 1 s then 2 s, each with up to as much again of jitter.
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(6),
        "{waited:?}"
    );

    // Still throttled after the last retry: exhausted, the task does not retry it again.
    let api = ScriptedSageMaker::new();
    started(&api)
        // 4 attempts a poll (3 retries), 5 polls in a row.
        .times(20, "DescribeTrainingJob", throttled);
    let e = training()
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap_err();
    api.assert_done();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_exhausted(), "{e}");
    assert_eq!(e.context("attempts"), Some("4"));
    assert_eq!(e.context("failed_polls"), Some("5"));
    assert_eq!(e.operation(), "sagemaker.DescribeTrainingJob");
}

#[tokio::test(start_paused = true)]
async fn an_existing_endpoint_is_updated_without_its_tags() {
    let api = ScriptedSageMaker::new();
    let model = json!({"ModelName": "mnistclassifier-2024-01-01-00-00-00", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r",
        "PrimaryContainer": {"Image": "kmeans:1", "ModelDataUrl": "s3://b/m.tar.gz"}});
    let epc = json!({"EndpointConfigName": "mnistclassifier-2024-01-01-00-00-00",
        "ProductionVariants": [{"InitialInstanceCount": "{{ params.instances }}", "InstanceType": "ml.t2.medium",
            "ModelName": "mnistclassifier-2024-01-01-00-00-00", "VariantName": "AllTraffic"}]});
    let endpoint = json!({"EndpointName": "mnistclassifier", "EndpointConfigName": "mnistclassifier-2024-01-01-00-00-00",
        "Tags": [{"Key": "team", "Value": "ml"}]});
    let (m, e) = (model.clone(), epc.clone());
    api.then("CreateModel", || Ok(json!({"ModelArn": "arn:model"})))
        .then("DescribeModel", move || Ok(m.clone()))
        .then_check(
            "CreateEndpointConfig",
            |r| assert_eq!(r["ProductionVariants"][0]["InitialInstanceCount"], 2),
            || Ok(json!({})),
        )
        .then("DescribeEndpointConfig", move || Ok(e.clone()))
        .then("CreateEndpoint", || {
            Err(aws_error("ValidationException", "Cannot create already existing endpoint \"arn:…/mnistclassifier\"."))
        })
        .then_check(
            "UpdateEndpoint",
            |r| {
                assert_eq!(r["EndpointName"], "mnistclassifier");
                assert!(r.get("Tags").is_none(), "{r}");
            },
            || Ok(json!({"EndpointArn": "arn:ep"})),
        )
        .then("DescribeEndpoint", || Ok(json!({"EndpointName": "mnistclassifier", "EndpointStatus": "Updating",
            "EndpointConfigName": "mnistclassifier-2024-01-01-00-00-00"})))
        .then("DescribeEndpoint", || Ok(json!({"EndpointName": "mnistclassifier", "EndpointStatus": "InService",
            "EndpointConfigName": "mnistclassifier-2024-01-01-00-00-00", "LastModifiedTime": 1_704_067_260})))
        .then("DescribeEndpointConfig", || Ok(json!({"EndpointConfigName": "mnistclassifier-2024-01-01-00-00-00"})));
    let xcom = SageMakerEndpoint::new(
        json!({"Model": model, "EndpointConfig": epc, "Endpoint": endpoint}),
    )
    .check_interval(Duration::from_secs(10))
    .with_hook(api.hook())
    .execute(&ctx(1))
    .await
    .unwrap();
    api.assert_done();
    assert_eq!(xcom["Endpoint"]["EndpointStatus"], "InService");
    assert_eq!(xcom["Endpoint"]["LastModifiedTime"], "2024-01-01T00:01:00Z");
    assert_eq!(
        xcom["EndpointConfig"]["EndpointConfigName"],
        "mnistclassifier-2024-01-01-00-00-00"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retried_model_is_reused_only_when_it_is_the_same() {
    let config = json!({"ModelName": "m1", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r",
        "PrimaryContainer": {"Image": "kmeans:1", "ModelDataUrl": "s3://b/m.tar.gz"}});
    let existing = json!({"ModelName": "m1", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r", "ModelArn": "arn:m1",
        "PrimaryContainer": {"Image": "kmeans:1", "ModelDataUrl": "s3://b/m.tar.gz", "Mode": "SingleModel"},
        "CreationTime": 1_704_067_200});
    let exists = || {
        Err(aws_error(
            "ValidationException",
            "Cannot create already existing model \"arn:m1\".",
        ))
    };
    let api = ScriptedSageMaker::new();
    let e1 = existing.clone();
    let e2 = existing.clone();
    api.then("CreateModel", exists)
        .then("DescribeModel", move || Ok(e1.clone()))
        .then("DescribeModel", move || Ok(e2.clone()));
    let xcom = SageMakerModel::new(config.clone())
        .with_hook(api.hook())
        .execute(&ctx(2))
        .await
        .unwrap();
    api.assert_done();
    assert_eq!(xcom["Model"]["CreationTime"], "2024-01-01T00:00:00Z");

    let mut other = config.clone();
    other["PrimaryContainer"]["ModelDataUrl"] = json!("s3://b/other.tar.gz");
    let api = ScriptedSageMaker::new();
    let e1 = existing.clone();
    api.then("CreateModel", exists)
        .then("DescribeModel", move || Ok(e1.clone()));
    let e = SageMakerModel::new(other)
        .with_hook(api.hook())
        .execute(&ctx(1))
        .await
        .unwrap_err();
    api.assert_done();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(e.message().contains("give the model a new name"), "{e}");
}

#[tokio::test]
async fn bad_input_fails_before_any_request() {
    // Nothing scripted: any request panics.
    let api = ScriptedSageMaker::new();
    let e = SageMakerTraining::from_json(r#"{"TrainingJobName": "a",}"#).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("not JSON"), "{e}");

    for (name, says) in [
        ("mnist-{{ ts }}", "has `:`"),
        (&"x".repeat(64) as &str, "64 characters long"),
        ("mnist_{{ ds_nodash }}", "has `_`"),
    ] {
        let e = SageMakerTraining::new(json!({"TrainingJobName": name}))
            .check_inputs(false)
            .with_hook(api.hook())
            .execute(&ctx(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().contains(says), "{name}: {e}");
    }
    let e = SageMakerTraining::new(
        json!({"TrainingJobName": "a", "ResourceConfig": {"InstanceCount": "two"}}),
    )
    .with_hook(api.hook())
    .execute(&ctx(1))
    .await
    .unwrap_err();
    assert!(
        e.message()
            .contains("ResourceConfig.InstanceCount is `two`, not an integer"),
        "{e}"
    );
    assert!(api.actions().is_empty());
}

#[tokio::test]
async fn an_unknown_region_without_an_endpoint_is_refused() {
    let conn = Connection::from_uri(
        "aws_typo",
        "aws://AKID:secret-key-123@/?region_name=eu-west-9",
    )
    .unwrap();
    let e = SageMakerHook::from_connection(&conn).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("region `eu-west-9`"), "{e}");
    assert_eq!(e.context("conn_id"), Some("aws_typo"));
    assert!(!e.to_string().contains("secret-key-123"));
    // With an endpoint (moto, a VPC endpoint) any region goes.
    let conn = Connection::from_uri(
        "aws_moto",
        "aws://AKID:secret-key-123@/?region_name=eu-west-9&endpoint_url=http%3A%2F%2F127.0.0.1%3A1",
    )
    .unwrap();
    assert_eq!(
        SageMakerHook::from_connection(&conn)
            .await
            .unwrap()
            .region(),
        "eu-west-9"
    );
}

#[tokio::test(start_paused = true)]
async fn processing_and_transform_jobs_are_stopped_too() {
    use gust::operators::sagemaker::{SageMakerProcessing, SageMakerTransform};
    let proc_desc = |status: &'static str| {
        move || {
            Ok(
                json!({"ProcessingJobName": "prep-1", "ProcessingJobStatus": status,
                "ProcessingJobArn": "arn:aws:sagemaker:us-east-1:1:processing-job/prep-1"}),
            )
        }
    };
    // execution_timeout: on_kill stops the processing job the task started.
    let api = ScriptedSageMaker::new();
    api.then("DescribeProcessingJob", || {
        Err(aws_error(
            "ValidationException",
            "Could not find processing job",
        ))
    })
    .then_check(
        "CreateProcessingJob",
        |r| {
            assert_eq!(
                r["ProcessingResources"]["ClusterConfig"]["InstanceCount"],
                2
            )
        },
        || Ok(json!({})),
    )
    .times(3, "DescribeProcessingJob", proc_desc("InProgress"))
    .then_check(
        "StopProcessingJob",
        |r| assert_eq!(r["ProcessingJobName"], "prep-1"),
        || Ok(json!({})),
    );
    let mut dag = Dag::builder("d").params(json!({"instances": 2}));
    dag.add(
        Task::new(
            "prep",
            SageMakerProcessing::new(json!({"ProcessingJobName": "prep-1",
                "ProcessingResources": {"ClusterConfig": {"InstanceCount": "{{ params.instances }}"}},
                "RoleArn": "arn:aws:iam::1:role/r"}))
            .check_interval(Duration::from_secs(10))
            .with_hook(api.hook()),
        )
        .with_options(TaskOptions::default().execution_timeout(Duration::from_secs(25))),
    );
    let report = dag
        .build()
        .unwrap()
        .test(
            chrono_tz::UTC
                .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
                .unwrap(),
        )
        .await;
    assert!(!report.is_success());
    api.assert_done();

    // max_ingestion_time: the transform job is stopped, and a failed stop is named.
    let api = ScriptedSageMaker::new();
    let tdesc = || {
        Ok(
            json!({"TransformJobName": "batch-1", "TransformJobStatus": "InProgress",
            "TransformJobArn": "arn:aws:sagemaker:us-east-1:1:transform-job/batch-1"}),
        )
    };
    api.then("DescribeTransformJob", || {
        Err(aws_error(
            "ValidationException",
            "Could not find transform job",
        ))
    })
    .then("CreateTransformJob", || Ok(json!({})))
    .times(2, "DescribeTransformJob", tdesc)
    .times(3, "StopTransformJob", || {
        Err(aws_error("ServiceUnavailable", ""))
    });
    let e = SageMakerTransform::new(json!({"TransformJobName": "batch-1", "ModelName": "m"}))
        .check_interval(Duration::from_secs(10))
        .max_ingestion_time(Duration::from_secs(10))
        .with_hook(
            api.hook()
                .with_retries(2, Backoff::constant(Duration::from_secs(1))),
        )
        .execute(&ctx(1))
        .await
        .unwrap_err();
    api.assert_done();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().ends_with("NOT stopped"), "{e}");
    assert!(
        e.context("stop_error")
            .unwrap()
            .contains("StopTransformJob"),
        "{e}"
    );
}
