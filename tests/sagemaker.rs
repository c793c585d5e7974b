//! SageMakerHook against moto's SageMaker, SageMaker Runtime and CloudWatch
//! Logs (`scripts/services.sh start`): requests as Airflow writes them, the
//! describes it returns, waiting, logs, and the errors of bad input.
//!
//! moto finishes every job at once and lacks StopTrainingJob and
//! UpdateEndpoint: the state machine is in `tests/sagemaker_jobs.rs`, on a
//! scripted API.

mod common;

use std::time::Duration;

use gust::ErrorKind;
use gust::hooks::sagemaker::{InvokeRequest, Job, SageMakerHook, WaitOptions};
use serde_json::{Value, json};

use common::unique;

const ROLE: &str = "arn:aws:iam::123456789012:role/sagemaker-role";

fn training_config(name: &str) -> Value {
    json!({
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "438346466558.dkr.ecr.eu-west-1.amazonaws.com/kmeans:1",
            "TrainingInputMode": "File"
        },
        "HyperParameters": {"k": "10", "feature_dim": "784"},
        "InputDataConfig": [{
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": "s3://gust-sagemaker/mnist_data",
                "S3DataDistributionType": "FullyReplicated"
            }}
        }],
        "OutputDataConfig": {"S3OutputPath": "s3://gust-sagemaker/mnistclassifier-output"},
        "ResourceConfig": {"InstanceType": "ml.c4.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "RoleArn": ROLE,
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400}
    })
}

async fn hook() -> Option<SageMakerHook> {
    let conn = common::server_conn("aws_default")?;
    Some(SageMakerHook::from_connection(&conn).await.unwrap())
}

#[tokio::test]
async fn training_job_runs_and_is_described_as_airflow_returns_it() {
    let Some(sm) = hook().await else { return };
    let name = unique("gust-train");
    let created = sm
        .create_job(Job::Training, &training_config(&name))
        .await
        .unwrap();
    assert!(
        created["TrainingJobArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("training-job/{name}")),
        "{created}"
    );
    let done = sm
        .wait_for_job(
            Job::Training,
            &name,
            &WaitOptions::new().check_interval(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    assert_eq!(done["TrainingJobStatus"], "Completed");
    assert_eq!(done["TrainingJobName"], name.as_str());
    assert_eq!(
        done["ModelArtifacts"]["S3ModelArtifacts"],
        format!("s3://gust-sagemaker/mnistclassifier-output/{name}/output/model.tar.gz")
    );
    assert_eq!(done["HyperParameters"]["k"], "10");
    // The JSON protocol's timestamps are epoch seconds.
    assert!(
        done["CreationTime"].as_f64().unwrap() > 1.6e9,
        "{}",
        done["CreationTime"]
    );

    let listed = sm.list_training_jobs(Some(&name)).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["TrainingJobName"], name.as_str());

    assert!(sm.find_job(Job::Training, &name).await.unwrap().is_some());
    let missing = unique("gust-missing");
    assert!(
        sm.find_job(Job::Training, &missing)
            .await
            .unwrap()
            .is_none()
    );
    let e = sm.describe_job(Job::Training, &missing).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.operation(), "sagemaker.DescribeTrainingJob");
    assert_eq!(e.context("code"), Some("ValidationException"));
    assert_eq!(e.context("job"), Some(missing.as_str()));
    assert_eq!(e.context("conn_id"), Some("aws_default"));
    assert!(!e.to_string().contains("gust-secret-key"));
}

#[tokio::test]
async fn model_endpoint_config_endpoint_and_invoke() {
    let Some(sm) = hook().await else { return };
    let model = unique("gust-model");
    let config = unique("gust-epc");
    let endpoint = unique("gust-ep");
    // An endpoint config naming a model that does not exist is refused.
    let e = sm
        .create_endpoint_config(&json!({
            "EndpointConfigName": config,
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model,
                "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium"}]
        }))
        .await
        .unwrap_err();
    assert_eq!(e.context("code"), Some("ValidationException"), "{e}");
    assert_eq!(e.context("endpoint_config"), Some(config.as_str()));

    sm.create_model(&json!({
        "ModelName": model,
        "PrimaryContainer": {
            "Image": "438346466558.dkr.ecr.eu-west-1.amazonaws.com/kmeans:1",
            "ModelDataUrl": "s3://gust-sagemaker/out/model.tar.gz"
        },
        "ExecutionRoleArn": ROLE
    }))
    .await
    .unwrap();
    assert_eq!(
        sm.describe_model(&model).await.unwrap()["ModelName"],
        model.as_str()
    );
    sm.create_endpoint_config(&json!({
        "EndpointConfigName": config,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model,
            "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium"}]
    }))
    .await
    .unwrap();
    sm.create_endpoint(&json!({"EndpointName": endpoint, "EndpointConfigName": config}))
        .await
        .unwrap();
    let ready = sm
        .wait_for_endpoint(
            &endpoint,
            &WaitOptions::new().check_interval(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    assert_eq!(ready["EndpointStatus"], "InService");
    assert_eq!(ready["EndpointConfigName"], config.as_str());

    let answer = sm
        .invoke_endpoint(
            InvokeRequest::new(&endpoint, "text/csv", "0.1,0.2,0.3").accept("application/json"),
        )
        .await
        .unwrap();
    assert!(!answer.body.is_empty());

    sm.delete_endpoint(&endpoint).await.unwrap();
    assert!(sm.find_endpoint(&endpoint).await.unwrap().is_none());
    sm.delete_endpoint_config(&config).await.unwrap();
    sm.delete_model(&model).await.unwrap();
    let e = sm.describe_model(&model).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn training_logs_are_read_while_waiting() {
    let Some(sm) = hook().await else { return };
    let name = unique("gust-logs");
    // moto writes no training logs: write them as SageMaker would.
    let _ = sm
        .call_logs(
            "CreateLogGroup",
            json!({"logGroupName": "/aws/sagemaker/TrainingJobs"}),
        )
        .await;
    let stream = format!("{name}/algo-1-1700000000");
    sm.call_logs(
        "CreateLogStream",
        json!({"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": stream}),
    )
    .await
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    sm.call_logs(
        "PutLogEvents",
        json!({"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": stream,
        "logEvents": [
            {"timestamp": now, "message": "[epoch 1] loss=0.5"},
            {"timestamp": now + 1, "message": "[epoch 2] loss=0.25"}
        ]}),
    )
    .await
    .unwrap();
    sm.create_job(Job::Training, &training_config(&name))
        .await
        .unwrap();
    let (logs, _guard) = common::logs::capture_logs();
    sm.wait_for_job(
        Job::Training,
        &name,
        &WaitOptions::new()
            .check_interval(Duration::from_millis(100))
            .print_log(true),
    )
    .await
    .unwrap();
    let text = logs.text();
    let first = text
        .find("[epoch 1] loss=0.5")
        .unwrap_or_else(|| panic!("{text}"));
    let second = text
        .find("[epoch 2] loss=0.25")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(first < second);
    assert_eq!(
        text.matches("[epoch 1] loss=0.5").count(),
        1,
        "read once: {text}"
    );
}

#[tokio::test]
async fn transform_and_processing_jobs_complete() {
    let Some(sm) = hook().await else { return };
    let model = unique("gust-tmodel");
    sm.create_model(&json!({
        "ModelName": model,
        "PrimaryContainer": {"Image": "438346466558.dkr.ecr.eu-west-1.amazonaws.com/kmeans:1",
            "ModelDataUrl": "s3://gust-sagemaker/out/model.tar.gz"},
        "ExecutionRoleArn": ROLE
    }))
    .await
    .unwrap();
    let transform = unique("gust-transform");
    sm.create_job(
        Job::Transform,
        &json!({
            "TransformJobName": transform,
            "ModelName": model,
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                "S3Uri": "s3://gust-sagemaker/batch"}}, "ContentType": "text/csv"},
            "TransformOutput": {"S3OutputPath": "s3://gust-sagemaker/batch-out"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}
        }),
    )
    .await
    .unwrap();
    let quick = WaitOptions::new().check_interval(Duration::from_millis(100));
    let done = sm
        .wait_for_job(Job::Transform, &transform, &quick)
        .await
        .unwrap();
    assert_eq!(done["TransformJobStatus"], "Completed");

    let processing = unique("gust-processing");
    sm.create_job(
        Job::Processing,
        &json!({
            "ProcessingJobName": processing,
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1,
                "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}},
            "AppSpecification": {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/prep:1"},
            "RoleArn": ROLE
        }),
    )
    .await
    .unwrap();
    let done = sm
        .wait_for_job(Job::Processing, &processing, &quick)
        .await
        .unwrap();
    assert_eq!(done["ProcessingJobStatus"], "Completed");
    // Stopping a finished job is not an error.
    sm.stop_job(Job::Processing, &processing).await.unwrap();
}

#[tokio::test]
async fn a_rejected_request_names_the_job_and_says_why() {
    let Some(sm) = hook().await else { return };
    let name = unique("gust-bad");
    let mut bad = training_config(&name);
    bad.as_object_mut().unwrap().remove("RoleArn");
    bad["ResourceConfig"]["InstanceCount"] = json!("one");
    let e = sm.create_job(Job::Training, &bad).await.unwrap_err();
    assert_eq!(e.operation(), "sagemaker.CreateTrainingJob", "{e}");
    assert_eq!(e.context("job"), Some(name.as_str()));
    assert!(!e.is_retryable(), "{e}");
}

/// The operators that the MNIST pipeline does not run, end to end on moto.
#[tokio::test]
async fn model_endpoint_config_transform_and_processing_operators() {
    use gust::operators::sagemaker::{
        SageMakerEndpointConfig, SageMakerModel, SageMakerProcessing, SageMakerTransform,
    };
    use gust::{Context, Operator};
    let Some(sm) = hook().await else { return };
    let ctx = Context::builder("sagemaker_ops", "t")
        .params(json!({"instances": 2}))
        .build();
    let model = unique("gust-opmodel");
    let xcom = SageMakerModel::new(json!({
        "ModelName": model,
        "PrimaryContainer": {"Image": "438346466558.dkr.ecr.eu-west-1.amazonaws.com/kmeans:1",
            "ModelDataUrl": "s3://gust-sagemaker/out/model.tar.gz"},
        "ExecutionRoleArn": ROLE
    }))
    .with_hook(sm.clone())
    .execute(&ctx)
    .await
    .unwrap();
    assert_eq!(xcom["Model"]["ModelName"], model.as_str());
    assert!(
        xcom["Model"]["CreationTime"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{xcom}"
    );

    let config = unique("gust-opepc");
    let xcom = SageMakerEndpointConfig::new(json!({
        "EndpointConfigName": config,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model,
            "InitialInstanceCount": "{{ params.instances }}", "InstanceType": "ml.t2.medium"}]
    }))
    .with_hook(sm.clone())
    .execute(&ctx)
    .await
    .unwrap();
    assert_eq!(
        xcom["EndpointConfig"]["EndpointConfigName"],
        config.as_str()
    );
    assert_eq!(
        xcom["EndpointConfig"]["ProductionVariants"][0]["InitialInstanceCount"],
        2
    );

    let transform = unique("gust-optransform");
    let xcom = SageMakerTransform::new(json!({
        "Transform": {
            "TransformJobName": transform,
            "ModelName": model,
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                "S3Uri": "s3://gust-sagemaker/batch"}}, "ContentType": "text/csv"},
            "TransformOutput": {"S3OutputPath": "s3://gust-sagemaker/batch-out"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": "{{ params.instances }}"}
        }
    }))
    .check_interval(Duration::from_millis(100))
    .with_hook(sm.clone())
    .execute(&ctx)
    .await
    .unwrap();
    assert_eq!(xcom["Transform"]["TransformJobStatus"], "Completed");
    assert_eq!(xcom["Transform"]["TransformJobName"], transform.as_str());
    assert_eq!(xcom["Transform"]["TransformResources"]["InstanceCount"], 2);
    assert_eq!(xcom["Model"]["ModelName"], model.as_str());

    let processing = unique("gust-opprocessing");
    let xcom = SageMakerProcessing::new(json!({
        "ProcessingJobName": processing,
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": "1",
            "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}},
        "AppSpecification": {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/prep:1"},
        "RoleArn": ROLE
    }))
    .check_interval(Duration::from_millis(100))
    .with_hook(sm.clone())
    .execute(&ctx)
    .await
    .unwrap();
    assert_eq!(xcom["Processing"]["ProcessingJobStatus"], "Completed");
    assert_eq!(xcom["Processing"]["ProcessingJobName"], processing.as_str());
}

/// A training input that does not exist fails before any job is created.
#[tokio::test]
async fn a_missing_training_input_fails_before_the_job_starts() {
    use gust::operators::sagemaker::SageMakerTraining;
    use gust::{Context, Operator};
    let Some(sm) = hook().await else { return };
    let conn = common::server_conn("aws_default").unwrap();
    let s3 = gust::hooks::s3::S3Hook::from_connection(&conn)
        .await
        .unwrap();
    let bucket = unique("gust-sm-in");
    gust::hooks::object_store::ObjectStore::create_bucket(&s3, &bucket)
        .await
        .unwrap();
    let name = unique("gust-noinput");
    let mut config = training_config(&name);
    config["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] =
        json!(format!("s3://{bucket}/nothing-here"));
    let e = SageMakerTraining::new(config)
        .with_hook(sm.clone())
        .execute(&Context::builder("d", "t").build())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("nothing-here"), "{e}");
    assert!(sm.find_job(Job::Training, &name).await.unwrap().is_none());
}
