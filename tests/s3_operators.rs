//! S3 operators: templated fields, XCom results and failures, on `MemoryStore`
//! and on both real S3 servers through `aws_conn_id`.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use chrono::TimeZone;
use common::s3::{location_of, sse_of};
use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
use gust::operators::s3::{S3CopyObject, S3CreateBucket, S3CreateObject, S3DeleteObjects, S3List};
use gust::{Context, ErrorKind, Operator};
use serde_json::json;

fn ctx() -> Context {
    let date = chrono_tz::Asia::Seoul
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    Context::builder("s3_dag", "task")
        .logical_date(date)
        .params(json!({"bucket": "team06-mlflow-feature"}))
        .build()
}

/// The whole operator set against one store: create bucket, objects, list,
/// copy, delete — with templated fields rendered from the context.
async fn operators_round_trip(store: Arc<dyn ObjectStore>, bucket_tpl: &str, bucket: &str) {
    let ctx = ctx();
    let out = S3CreateBucket::new(bucket_tpl)
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(out, json!({"bucket": bucket, "created": true}));
    let again = S3CreateBucket::new(bucket_tpl)
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(again["created"], json!(false));

    for name in ["iris1.csv", "iris2.csv", "notes.txt"] {
        let out = S3CreateObject::new(
            format!("s3://{bucket_tpl}/{{{{ ds }}}}/{name}"),
            "v={{ ds_nodash }}",
        )
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap();
        assert_eq!(
            out,
            json!({"bucket": bucket, "key": format!("2025-01-08/{name}"), "size": 10})
        );
    }
    assert_eq!(
        &store.get(bucket, "2025-01-08/iris1.csv").await.unwrap()[..],
        b"v=20250108"
    );
    // replace=false is the default: a second write fails, typed.
    let e = S3CreateObject::new("2025-01-08/iris1.csv", "x")
        .s3_bucket(bucket_tpl)
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    // A `.sql` key is a key, not a template file name.
    S3CreateObject::new("q/daily.sql", "SELECT 1")
        .s3_bucket(bucket_tpl)
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .expect("a .sql key is not loaded as a template");

    let keys = S3List::new(bucket_tpl)
        .prefix("{{ ds }}/")
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(
        keys,
        json!([
            "2025-01-08/iris1.csv",
            "2025-01-08/iris2.csv",
            "2025-01-08/notes.txt"
        ])
    );
    let csv = S3List::new(bucket_tpl)
        .prefix("{{ ds }}/*.csv")
        .apply_wildcard(true)
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(csv, json!(["2025-01-08/iris1.csv", "2025-01-08/iris2.csv"]));
    let top = S3List::new(bucket_tpl)
        .delimiter("/")
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(top, json!([]), "every key is one level down");

    let out = S3CopyObject::new(
        "{{ ds }}/iris1.csv",
        format!("s3://{bucket_tpl}/copy/iris1.csv"),
    )
    .source_bucket_name(bucket_tpl)
    .with_store(store.clone())
    .execute(&ctx)
    .await
    .unwrap();
    assert_eq!(out["dest"], json!(format!("s3://{bucket}/copy/iris1.csv")));
    assert!(store.exists(bucket, "copy/iris1.csv").await.unwrap());

    let out = S3DeleteObjects::prefix(bucket_tpl, "{{ ds }}/")
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(out["deleted"].as_array().unwrap().len(), 3);
    let out = S3DeleteObjects::keys(bucket_tpl, ["copy/iris1.csv", "q/daily.sql"])
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(out, json!({"deleted": ["copy/iris1.csv", "q/daily.sql"]}));
    let left = S3List::new(bucket_tpl)
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(left, json!([]));
}

#[tokio::test]
async fn operators_on_memory_store() {
    operators_round_trip(
        Arc::new(MemoryStore::new()),
        "{{ params.bucket }}",
        "team06-mlflow-feature",
    )
    .await;
}

#[tokio::test]
async fn operator_input_errors_are_typed() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
    store.create_bucket("b").await.unwrap();
    let ctx = ctx();
    let e = S3DeleteObjects::prefix("b", "")
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidInput,
        "an empty prefix never empties a bucket: {e}"
    );
    let e = S3CreateObject::new("/leading.csv", "x")
        .s3_bucket("b")
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = S3CreateObject::new("relative.csv", "x")
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidInput,
        "a key without bucket must be a URL: {e}"
    );
    let e = S3List::new("{{ undefined_var }}")
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Template, "{e}");
    let e = S3CopyObject::new("s3://b/missing", "s3://b/x")
        .with_store(store.clone())
        .execute(&ctx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    store
        .put("b", "k", Bytes::from_static(b"1"), &PutOptions::new())
        .await
        .unwrap();
    let e = S3List::new("b")
        .aws_conn_id("no_such_conn_for_gust_tests")
        .execute(&ctx)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Config,
        "a missing connection is a config error: {e}"
    );
}

async fn operators_on_server(conn_id: &str) {
    let conn = require_conn!(conn_id);
    let hook = gust::hooks::s3::S3Hook::from_connection(&conn)
        .await
        .unwrap();
    let bucket = common::unique("gust-ops");
    // Through the connection id, as a DAG would run them.
    let ctx = ctx();
    let out = S3CreateBucket::new(&bucket)
        .aws_conn_id(conn_id)
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(out["created"], json!(true));
    S3CreateObject::new(format!("s3://{bucket}/{{{{ ds }}}}/a.csv"), "a")
        .aws_conn_id(conn_id)
        .encrypt(conn_id == "aws_default")
        .execute(&ctx)
        .await
        .unwrap();
    let keys = S3List::new(&bucket)
        .aws_conn_id(conn_id)
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(keys, json!(["2025-01-08/a.csv"]));
    assert!(
        hook.check_for_key("2025-01-08/a.csv", Some(&bucket))
            .await
            .unwrap()
    );
    if conn_id == "aws_default" {
        // The operator's S3-only options are settings of the hook it builds from
        // the connection, and they reach S3 (moto reports them back).
        assert_eq!(
            sse_of(&hook, &bucket, "2025-01-08/a.csv").await,
            Some(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        );
        let regional = common::unique("gust-ops-eu");
        S3CreateBucket::new(&regional)
            .aws_conn_id(conn_id)
            .region_name("eu-west-1")
            .execute(&ctx)
            .await
            .unwrap();
        assert_eq!(
            location_of(&hook, &regional).await.as_deref(),
            Some("eu-west-1")
        );
        // Without the option, the object is not encrypted.
        S3CreateObject::new(format!("s3://{bucket}/plain.csv"), "a")
            .aws_conn_id(conn_id)
            .execute(&ctx)
            .await
            .unwrap();
        assert_eq!(sse_of(&hook, &bucket, "plain.csv").await, None);
    }
    // And the full round trip through the hook as a store.
    let bucket2 = common::unique("gust-ops2");
    operators_round_trip(Arc::new(hook), &bucket2, &bucket2).await;
}

#[tokio::test]
async fn operators_on_moto() {
    operators_on_server("aws_default").await;
}

#[tokio::test]
async fn operators_on_s3s_fs() {
    operators_on_server("s3s_fs").await;
}
