//! Seed 002's MNIST pipeline on gust's SageMaker operators: copy
//! `mnist.pkl.gz` from SageMaker's sample bucket, convert the training set to
//! RecordIO-protobuf, train the built-in KMeans under a job name templated
//! from the logical date, deploy the model behind an endpoint and call it.
//!
//! ```text
//! scripts/services.sh start && eval "$(scripts/services.sh env)"
//! cargo run --features full --example mnist_sagemaker                # today
//! cargo run --features full --example mnist_sagemaker -- 2025-01-08  # a logical date
//! ```
//!
//! It needs the `aws_default` connection (`AIRFLOW_CONN_AWS_DEFAULT`): moto in
//! development and CI, or AWS. On an endpoint other than AWS's (moto), the
//! sample bucket is created and seeded with the small MNIST-shaped fixture
//! `tests/data/mnist/tiny_mnist.pkl.gz`, since moto has no public data.
//! `GUST_MNIST_BUCKET` (default `gust-mnist`) and `GUST_SAGEMAKER_ROLE_ARN`
//! name the bucket and the role.

mod pipeline;

use std::sync::Arc;
use std::time::Duration;

use gust::hooks::object_store::ObjectStore;
use gust::hooks::s3::S3Hook;
use gust::hooks::sagemaker::{SageMakerHook, builtin_algorithm_image};
use gust::prelude::*;

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gust=info".into()),
        )
        .with_target(false)
        .init();
    let conn = match Connection::from_env("aws_default") {
        Ok(c) => c,
        Err(_) => {
            eprintln!(
                "mnist_sagemaker needs SageMaker: connection \"aws_default\" is not set \
                 (start moto with `scripts/services.sh start && eval \"$(scripts/services.sh env)\"`)"
            );
            std::process::exit(2);
        }
    };
    let ds = std::env::args()
        .nth(1)
        .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string());
    let run = RunConfig::from_ds(&ds, chrono_tz::UTC)?;

    let s3 = S3Hook::from_connection(&conn).await?;
    let sagemaker = SageMakerHook::from_connection(&conn).await?;
    let objects: Arc<dyn ObjectStore> = Arc::new(s3);
    let bucket = std::env::var("GUST_MNIST_BUCKET").unwrap_or_else(|_| "gust-mnist".into());
    objects.create_bucket(&bucket).await?;
    if conn.extra_str("endpoint_url").is_some() {
        pipeline::seed_sample_bucket(objects.as_ref(), sagemaker.region()).await?;
    }
    let p = pipeline::Pipeline {
        objects,
        image: builtin_algorithm_image("kmeans", sagemaker.region())?,
        sagemaker,
        bucket,
        role_arn: std::env::var("GUST_SAGEMAKER_ROLE_ARN")
            .unwrap_or_else(|_| "arn:aws:iam::123456789012:role/gust-sagemaker".into()),
        endpoint: "mnistclassifier".into(),
        check_interval: Duration::from_secs(10),
    };
    let run = p.dag()?.run(run).await;
    println!("{run}");
    for task in [
        "extract_mnist_data",
        "sagemaker_train_model",
        "invoke_endpoint",
    ] {
        if let Some(result) = run.xcom(task) {
            let shown = match task {
                "sagemaker_train_model" => serde_json::json!({
                    "TrainingJobName": result["Training"]["TrainingJobName"],
                    "TrainingJobStatus": result["Training"]["TrainingJobStatus"],
                    "S3ModelArtifacts": result["Training"]["ModelArtifacts"]["S3ModelArtifacts"],
                    "CreationTime": result["Training"]["CreationTime"],
                }),
                _ => result.clone(),
            };
            println!("{task}: {shown}");
        }
    }
    run.into_result().map(|_| ())
}
