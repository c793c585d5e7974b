//! Seed 002's MNIST DAG on gust's operators:
//! `S3CopyObject >> extract (unpickle → RecordIO) >> SageMakerTraining >>
//! SageMakerEndpoint >> invoke`.
//!
//! Kept apart from `main.rs` so `tests/mnist_sagemaker.rs` runs the very same code.

use std::sync::Arc;
use std::time::Duration;

use gust::formats::{mnist, recordio};
use gust::hooks::object_store::{ObjectStore, PutOptions};
use gust::hooks::sagemaker::{InvokeRequest, SageMakerHook};
use gust::operators::s3::S3CopyObject;
use gust::operators::sagemaker::{SageMakerEndpoint, SageMakerTraining};
use gust::prelude::*;
use serde_json::json;

/// Where the sample data lives in the seed: SageMaker's public bucket.
pub fn sample_bucket(region: &str) -> String {
    format!("sagemaker-sample-data-{region}")
}

/// The sample data's key in it.
pub const SAMPLE_KEY: &str = "algorithms/kmeans/mnist/mnist.pkl.gz";

/// moto has no public sample data: creates the sample bucket with the
/// MNIST-shaped test fixture in place of the real `mnist.pkl.gz`.
pub async fn seed_sample_bucket(objects: &dyn ObjectStore, region: &str) -> Result<()> {
    let sample = sample_bucket(region);
    if objects.exists(&sample, SAMPLE_KEY).await? {
        return Ok(());
    }
    objects.create_bucket(&sample).await?;
    let fixture = include_bytes!("../../tests/data/mnist/tiny_mnist.pkl.gz");
    objects
        .put(
            &sample,
            SAMPLE_KEY,
            fixture.to_vec().into(),
            &PutOptions::new(),
        )
        .await?;
    println!(
        "seeded s3://{sample}/{SAMPLE_KEY} with tests/data/mnist/tiny_mnist.pkl.gz (moto has no public data)"
    );
    Ok(())
}

/// The pipeline's settings.
#[derive(Clone)]
pub struct Pipeline {
    /// The S3 store (an `S3Hook` of the `aws` connection).
    pub objects: Arc<dyn ObjectStore>,
    /// The SageMaker hook of the same connection.
    pub sagemaker: SageMakerHook,
    /// The pipeline's bucket (the seed's `your-bucket`).
    pub bucket: String,
    /// The IAM role SageMaker assumes.
    pub role_arn: String,
    /// The training image (the built-in KMeans of the connection's region).
    pub image: String,
    /// The endpoint's name: fixed, so every run after the first updates it.
    pub endpoint: String,
    /// Pause between status polls (the seed's `check_interval=10`).
    pub check_interval: Duration,
}

impl Pipeline {
    /// The DAG: copy, extract, train, deploy, invoke.
    pub fn dag(&self) -> Result<Dag> {
        let mut dag = Dag::builder("chapter7_aws_handwritten_digits_classifier")
            .timezone(chrono_tz::UTC)
            .params(json!({"instances": 1}));
        let bucket = &self.bucket;
        let region = self.sagemaker.region().to_string();

        let copy = dag.add(Task::new(
            "download_mnist_data",
            S3CopyObject::new(
                format!("s3://{}/{SAMPLE_KEY}", sample_bucket(&region)),
                format!("s3://{bucket}/mnist.pkl.gz"),
            )
            .with_store(self.objects.clone()),
        ));

        // The seed's `_extract_mnist_data`: load into memory, unpickle, the
        // training set as RecordIO-protobuf, uploaded with replace=True.
        let objects = self.objects.clone();
        let b = bucket.clone();
        let extract = dag.add(Task::from_fn("extract_mnist_data", move |_ctx| {
            let (objects, b) = (objects.clone(), b.clone());
            async move {
                let raw = objects.get(&b, "mnist.pkl.gz").await?;
                let train = mnist::read_pickle(&raw)?.train;
                let written = recordio::write_dense_matrix(
                    objects.as_ref(),
                    &b,
                    "mnist_data",
                    &train.images,
                    train.cols,
                    Some(&train.labels),
                    &PutOptions::new().replace(true),
                )
                .await?;
                Ok(json!({"records": written.records, "bytes": written.size, "feature_dim": train.cols}))
            }
        }));

        let train = dag.add(Task::new(
            "sagemaker_train_model",
            SageMakerTraining::new(json!({
                "TrainingJobName": "mnistclassifier-{{ logical_date.strftime('%Y-%m-%d-%H-%M-%S') }}",
                "AlgorithmSpecification": {"TrainingImage": self.image, "TrainingInputMode": "File"},
                "HyperParameters": {"k": "10", "feature_dim": "784"},
                "InputDataConfig": [{
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": format!("s3://{bucket}/mnist_data"),
                        "S3DataDistributionType": "FullyReplicated"
                    }}
                }],
                "OutputDataConfig": {"S3OutputPath": format!("s3://{bucket}/mnistclassifier-output")},
                "ResourceConfig": {"InstanceType": "ml.c4.xlarge",
                    "InstanceCount": "{{ params.instances }}", "VolumeSizeInGB": 10},
                "RoleArn": self.role_arn,
                "StoppingCondition": {"MaxRuntimeInSeconds": 24 * 60 * 60}
            }))
            .with_hook(self.sagemaker.clone())
            .with_store(self.objects.clone())
            .print_log(true)
            .check_interval(self.check_interval),
        ));

        // The model takes the job's real name and artifact from XCom: a
        // renamed job (a timestamp suffix) is still the one deployed.
        let job =
            "{{ ti.xcom_pull(task_ids='sagemaker_train_model')['Training']['TrainingJobName'] }}";
        let artifact = "{{ ti.xcom_pull(task_ids='sagemaker_train_model')['Training']['ModelArtifacts']['S3ModelArtifacts'] }}";
        let deploy = dag.add(Task::new(
            "sagemaker_deploy_model",
            SageMakerEndpoint::new(json!({
                "Model": {
                    "ModelName": job,
                    "PrimaryContainer": {"Image": self.image, "ModelDataUrl": artifact},
                    "ExecutionRoleArn": self.role_arn
                },
                "EndpointConfig": {
                    "EndpointConfigName": job,
                    "ProductionVariants": [{"InitialInstanceCount": 1, "InstanceType": "ml.t2.medium",
                        "ModelName": job, "VariantName": "AllTraffic"}]
                },
                "Endpoint": {"EndpointConfigName": job, "EndpointName": self.endpoint}
            }))
            .with_hook(self.sagemaker.clone())
            .check_interval(self.check_interval),
        ));

        // The seed serves the endpoint behind a small HTTP API; here the call
        // itself, for the first digits of the test set.
        let sm = self.sagemaker.clone();
        let (objects, b, endpoint) = (self.objects.clone(), bucket.clone(), self.endpoint.clone());
        let invoke = dag.add(Task::from_fn("invoke_endpoint", move |_ctx| {
            let (sm, objects, b, endpoint) =
                (sm.clone(), objects.clone(), b.clone(), endpoint.clone());
            async move {
                let test = mnist::read_pickle(&objects.get(&b, "mnist.pkl.gz").await?)?.test;
                let mut answers = Vec::new();
                for i in 0..test.rows.min(3) {
                    let csv: Vec<String> = test.image(i).iter().map(|v| v.to_string()).collect();
                    let answer = sm
                        .invoke_endpoint(
                            InvokeRequest::new(&endpoint, "text/csv", csv.join(","))
                                .accept("application/json"),
                        )
                        .await?;
                    answers.push(json!({
                        "label": test.labels[i],
                        "answer": String::from_utf8_lossy(&answer.body),
                    }));
                }
                Ok(json!(answers))
            }
        }));
        let _ = &copy >> &extract;
        let _ = &extract >> &train;
        let _ = &train >> &deploy;
        let _ = &deploy >> &invoke;
        dag.build()
    }
}
