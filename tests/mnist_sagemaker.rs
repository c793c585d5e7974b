//! Seed 002's MNIST DAG, `examples/mnist_sagemaker`, run from its own code
//! against moto (S3 and SageMaker) twice for one logical date: the second
//! run trains under a timestamped name and deploys *that* job's artifact.

#[path = "../examples/mnist_sagemaker/pipeline.rs"]
mod pipeline;

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use futures::TryStreamExt;
use gust::formats::{mnist, recordio};
use gust::hooks::object_store::ObjectStore;
use gust::hooks::s3::S3Hook;
use gust::hooks::sagemaker::{SageMakerHook, builtin_algorithm_image};
use pipeline::Pipeline;

const FIXTURE: &[u8] = include_bytes!("data/mnist/tiny_mnist.pkl.gz");

#[tokio::test]
async fn copy_extract_train_deploy_invoke_twice() {
    let conn = require_conn!("aws_default");
    let s3 = S3Hook::from_connection(&conn).await.unwrap();
    let sagemaker = SageMakerHook::from_connection(&conn).await.unwrap();
    let objects: Arc<dyn ObjectStore> = Arc::new(s3);
    let bucket = common::unique("gust-mnist");
    objects.create_bucket(&bucket).await.unwrap();
    pipeline::seed_sample_bucket(objects.as_ref(), sagemaker.region())
        .await
        .unwrap();
    let endpoint = common::unique("mnist-ep");
    let p = Pipeline {
        objects: objects.clone(),
        image: builtin_algorithm_image("kmeans", sagemaker.region()).unwrap(),
        sagemaker: sagemaker.clone(),
        bucket: bucket.clone(),
        role_arn: "arn:aws:iam::123456789012:role/gust-sagemaker".into(),
        endpoint: endpoint.clone(),
        check_interval: Duration::from_millis(100),
    };
    // A logical date of its own, so the job name is this test's.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as i64
        % 86_400;
    let day = chrono_tz::UTC
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .unwrap()
        + chrono::Duration::seconds(secs);
    let expected_name = format!("mnistclassifier-{}", day.format("%Y-%m-%d-%H-%M-%S"));
    let expected = mnist::read_pickle(FIXTURE).unwrap();

    let mut jobs = Vec::new();
    for run in 0..2 {
        let report = p.dag().unwrap().test(day).await;
        assert!(report.is_success(), "run {run}: {report}");
        let extract = report.xcom("extract_mnist_data").unwrap();
        assert_eq!(extract["records"], expected.train.rows as u64);
        assert_eq!(extract["feature_dim"], 784);
        let training = report.xcom("sagemaker_train_model").unwrap()["Training"].clone();
        assert_eq!(training["TrainingJobStatus"], "Completed");
        let name = training["TrainingJobName"].as_str().unwrap().to_string();
        let artifact = training["ModelArtifacts"]["S3ModelArtifacts"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            artifact,
            format!("s3://{bucket}/mnistclassifier-output/{name}/output/model.tar.gz")
        );
        // ISO-8601 in XCom, not epoch seconds nor a Python repr.
        assert!(
            training["CreationTime"].as_str().unwrap().ends_with('Z'),
            "{training}"
        );

        // The deployed endpoint serves the model of the job that really ran.
        let ep = sagemaker.describe_endpoint(&endpoint).await.unwrap();
        assert_eq!(ep["EndpointStatus"], "InService");
        assert_eq!(ep["EndpointConfigName"], name.as_str());
        let epc = sagemaker.describe_endpoint_config(&name).await.unwrap();
        assert_eq!(epc["ProductionVariants"][0]["ModelName"], name.as_str());
        let model = sagemaker.describe_model(&name).await.unwrap();
        assert_eq!(model["PrimaryContainer"]["ModelDataUrl"], artifact.as_str());

        let answers = report
            .xcom("invoke_endpoint")
            .unwrap()
            .as_array()
            .unwrap()
            .clone();
        // moto's endpoint answers every invocation with a fixed body.
        assert!(answers.iter().all(|a| a["answer"] == "body"), "{answers:?}");
        let labels: Vec<i64> = answers
            .iter()
            .map(|a| a["label"].as_i64().unwrap())
            .collect();
        assert_eq!(
            labels,
            expected.test.labels[..3.min(expected.test.rows)].to_vec()
        );
        jobs.push(name);
    }
    assert_eq!(jobs[0], expected_name);
    let suffix = jobs[1]
        .strip_prefix(&format!("{expected_name}-"))
        .unwrap_or_else(|| panic!("{jobs:?}"));
    assert!(
        suffix.len() == 10 && suffix.chars().all(|c| c.is_ascii_digit()),
        "{jobs:?}"
    );

    // The uploaded training data is the pickle's training set, exactly.
    let records: Vec<recordio::Record> =
        recordio::read_object(objects.as_ref(), &bucket, "mnist_data")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
    assert_eq!(records.len(), expected.train.rows);
    for (i, r) in records.iter().enumerate() {
        match &r.features.values {
            recordio::Values::Float32(v) => {
                assert_eq!(v.as_slice(), expected.train.image(i), "row {i}")
            }
            other => panic!("row {i}: {other:?}"),
        }
    }
    sagemaker.delete_endpoint(&endpoint).await.unwrap();
}
