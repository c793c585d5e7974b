//! Helpers of the transfer tests: objects in, rows out.
#![allow(dead_code)]

use gust::hooks::object_store::{ObjectStore, PutOptions};
use gust::hooks::sql::{Parameters, RunOptions, Sql, SqlHook};
use serde_json::Value;

/// Stores `body` under `bucket`/`key`.
pub async fn put(store: &dyn ObjectStore, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
    store
        .put(bucket, key, body.into().into(), &PutOptions::new())
        .await
        .unwrap();
}

/// The rows of `sql`, each as a JSON object.
pub async fn rows(db: &dyn SqlHook, sql: &str) -> Vec<Value> {
    db.get_records(sql, Parameters::None)
        .await
        .unwrap()
        .into_iter()
        .map(Value::Object)
        .collect()
}

/// Runs `statements` in one transaction.
pub async fn run(db: &dyn SqlHook, statements: &[String]) {
    db.run(Sql::Many(statements.to_vec()), RunOptions::default())
        .await
        .unwrap();
}
