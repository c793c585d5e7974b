//! Harness smoke test: the SageMaker API endpoint (moto) answers.

mod common;

use aws_sdk_sagemaker::config::{BehaviorVersion, Credentials, Region};

#[tokio::test]
async fn sagemaker_api_answers() {
    let conn = require_conn!("aws_default");
    let conf = aws_sdk_sagemaker::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(
            conn.extra_str("region_name")
                .unwrap_or("us-east-1")
                .to_string(),
        ))
        .endpoint_url(conn.extra_str("endpoint_url").expect("endpoint_url extra"))
        .credentials_provider(Credentials::new(
            conn.login().expect("login"),
            conn.password().expect("password"),
            None,
            None,
            "gust-smoke",
        ))
        .build();
    let sm = aws_sdk_sagemaker::Client::from_conf(conf);
    let jobs = sm
        .list_training_jobs()
        .max_results(10)
        .send()
        .await
        .expect("ListTrainingJobs");
    // A fresh moto has none; the point is a well-formed answer from the real API shape.
    assert!(jobs.training_job_summaries().len() <= 10);
    let err = sm
        .describe_training_job()
        .training_job_name(common::unique("gust-missing"))
        .send()
        .await
        .expect_err("an unknown training job must be an error");
    assert!(
        format!("{err:?}").contains("ValidationException")
            || format!("{err:?}").contains("not found"),
        "{err:?}"
    );
}
