//! S3 operators with Airflow's names (feature `object-store`): [`S3List`],
//! [`S3CopyObject`], [`S3CreateBucket`], [`S3DeleteObjects`], [`S3CreateObject`].
//!
//! Each takes its store from `aws_conn_id` (an `S3Hook` built when the task runs,
//! default `aws_default`; needs the `s3` feature) or from
//! [`with_store`](S3List::with_store): any [`ObjectStore`], such as a
//! [`MemoryStore`](crate::hooks::object_store::MemoryStore) in unit tests or a
//! [`LocalStore`](crate::hooks::object_store::LocalStore) in development. Either
//! way `execute` calls only the [`ObjectStore`] trait, so a unit test on
//! `MemoryStore` runs the same code as production on S3. S3-only options
//! ([`S3CreateObject::encrypt`], [`S3CreateBucket::region_name`]) are settings of
//! the hook built from the connection; a store given with `with_store` keeps its
//! own settings (configure an `S3Hook` with `with_server_side_encryption` /
//! `with_bucket_region` before passing it).
//!
//! Defaults are Airflow's: [`S3CreateObject`] does not replace an existing key
//! unless `replace(true)` (a conditional write, never HEAD-then-PUT). Templated fields are rendered as inline templates only: like
//! Airflow's S3 operators they have no `template_ext`, so a key such as
//! `queries/daily.sql` stays a key instead of naming a template file.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
//! use std::sync::Arc;
//! use gust::hooks::object_store::{MemoryStore, ObjectStore};
//! use gust::operators::s3::{S3CreateObject, S3List};
//! use gust::{Context, Operator};
//!
//! let store = Arc::new(MemoryStore::new());
//! store.create_bucket("raw").await?;
//! let ctx = Context::builder("dag", "put").build();
//! S3CreateObject::new("s3://raw/{{ ds }}/iris1.csv", "a;b\n").with_store(store.clone())
//!     .execute(&ctx).await?;
//! let keys = S3List::new("raw").prefix("{{ ds }}/").with_store(store).execute(&ctx).await?;
//! assert_eq!(keys.as_array().unwrap().len(), 1);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::{ListKeys, ObjectStore, ObjectStoreExt, PutOptions, parse_s3_url};
use crate::task::Operator;

/// The conn id the operators use unless `aws_conn_id` says otherwise, as in Airflow.
const DEFAULT_CONN_ID: &str = "aws_default";

/// Renders `field` as an inline template, never as a template file name
/// (S3 fields have no `template_ext` in Airflow: `q/daily.sql` is a key).
fn render(ctx: &Context, field: &str) -> Result<String> {
    ctx.render_inline(field)
}

/// Where an operator's store comes from.
#[derive(Clone)]
pub(crate) enum Source {
    Conn(String),
    Store(Arc<dyn ObjectStore>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Conn(c) => write!(f, "aws_conn_id={c}"),
            Source::Store(s) => write!(f, "store={s:?}"),
        }
    }
}

/// S3-only settings an operator asks of the hook it builds from a connection.
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) struct S3Settings {
    encrypt: bool,
    region: Option<String>,
}

impl Source {
    /// The store for one execution. The only place that knows S3: everything after
    /// it calls the [`ObjectStore`] trait.
    pub(crate) async fn resolve(
        &self,
        ctx: &Context,
        settings: S3Settings,
    ) -> Result<Arc<dyn ObjectStore>> {
        match self {
            Source::Conn(id) => connect(&ctx.connection(id)?, settings).await,
            Source::Store(s) => Ok(s.clone()),
        }
    }
}

#[cfg(feature = "s3")]
async fn connect(conn: &crate::Connection, settings: S3Settings) -> Result<Arc<dyn ObjectStore>> {
    let mut hook = crate::hooks::s3::S3Hook::from_connection(conn)
        .await?
        .with_server_side_encryption(settings.encrypt);
    if let Some(region) = settings.region {
        hook = hook.with_bucket_region(region);
    }
    Ok(Arc::new(hook))
}

#[cfg(not(feature = "s3"))]
async fn connect(conn: &crate::Connection, _: S3Settings) -> Result<Arc<dyn ObjectStore>> {
    Err(Error::new(
        ErrorKind::Config,
        "s3.connect",
        "building a store from aws_conn_id needs gust's `s3` feature; or give one with with_store",
    )
    .with("conn_id", conn.conn_id()))
}

impl Default for Source {
    fn default() -> Self {
        Source::Conn(DEFAULT_CONN_ID.to_string())
    }
}

/// `(bucket, key)` from a templated optional bucket and a templated key that
/// may be an `s3://` URL, both rendered for `ctx` (the transfers' fields).
#[cfg_attr(
    not(any(
        feature = "postgres",
        feature = "mysql",
        feature = "sqlite",
        feature = "redis"
    )),
    allow(dead_code)
)]
pub(crate) fn rendered_bucket_key(
    ctx: &crate::context::Context,
    op: &'static str,
    bucket: Option<&str>,
    key: &str,
) -> Result<(String, String)> {
    let bucket = bucket.map(|b| ctx.render_inline(b)).transpose()?;
    bucket_key(op, bucket.as_deref(), &ctx.render_inline(key)?)
}

/// `(bucket, key)` from an optional bucket and a key that may be an `s3://` URL.
pub(crate) fn bucket_key(
    op: &'static str,
    bucket: Option<&str>,
    key: &str,
) -> Result<(String, String)> {
    match bucket.filter(|b| !b.is_empty()) {
        Some(b) if !key.contains("://") => Ok((b.to_string(), key.to_string())),
        Some(_) => Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            "a bucket was given, so the key must be relative, not a URL",
        )
        .with("key", key)),
        None => parse_s3_url(key),
    }
}

/// The store builders of an operator with a `source: Source` field:
/// `aws_conn_id` and `with_store` (the S3 operators' and the
/// object-store transfers').
macro_rules! store_builders {
    ($t:ty) => {
        impl $t {
            /// Uses connection `conn_id` (Airflow's `aws_conn_id`) instead of `aws_default`.
            pub fn aws_conn_id(mut self, conn_id: impl Into<String>) -> Self {
                self.source = $crate::operators::s3::Source::Conn(conn_id.into());
                self
            }

            /// Uses `store` instead of a connection (a fake in tests, a local store…).
            pub fn with_store(
                mut self,
                store: ::std::sync::Arc<dyn $crate::hooks::object_store::ObjectStore>,
            ) -> Self {
                self.source = $crate::operators::s3::Source::Store(store);
                self
            }
        }
    };
}
// Used by the transfers too, which need a SQL database or Redis as well.
#[cfg_attr(
    not(any(
        feature = "postgres",
        feature = "mysql",
        feature = "sqlite",
        feature = "redis"
    )),
    allow(unused_imports)
)]
pub(crate) use store_builders;

/// Airflow's `S3ListOperator`: the keys under a prefix, streamed page by page.
/// XCom: the array of keys. Templated: `bucket`, `prefix`, `delimiter`.
#[derive(Debug, Clone)]
pub struct S3List {
    bucket: String,
    prefix: String,
    delimiter: String,
    apply_wildcard: bool,
    source: Source,
}
store_builders!(S3List);

impl S3List {
    /// Lists every key of `bucket`.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3List {
            bucket: bucket.into(),
            prefix: String::new(),
            delimiter: String::new(),
            apply_wildcard: false,
            source: Source::default(),
        }
    }
    /// Only keys under `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Only keys before the first `delimiter` after the prefix (one "directory level").
    pub fn delimiter(mut self, delimiter: impl Into<String>) -> Self {
        self.delimiter = delimiter.into();
        self
    }
    /// Treats `*` and `?` in the prefix as wildcards over the whole key.
    pub fn apply_wildcard(mut self, on: bool) -> Self {
        self.apply_wildcard = on;
        self
    }
}

#[async_trait]
impl Operator for S3List {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let bucket = render(ctx, &self.bucket)?;
        let q = ListKeys::new()
            .prefix(render(ctx, &self.prefix)?)
            .delimiter(render(ctx, &self.delimiter)?)
            .apply_wildcard(self.apply_wildcard);
        let store = self.source.resolve(ctx, S3Settings::default()).await?;
        let keys: Vec<String> = store.list_keys_stream(&bucket, &q).try_collect().await?;
        tracing::info!(bucket, keys = keys.len(), "s3 keys listed");
        Ok(json!(keys))
    }
}

/// Airflow's `S3CopyObjectOperator`. XCom: `{"source": url, "dest": url}`.
/// Templated: `source_bucket_key`, `dest_bucket_key`, `source_bucket_name`,
/// `dest_bucket_name`. Keys are `s3://` URLs unless their bucket is given.
#[derive(Debug, Clone)]
pub struct S3CopyObject {
    source_bucket_key: String,
    dest_bucket_key: String,
    source_bucket_name: Option<String>,
    dest_bucket_name: Option<String>,
    source: Source,
}
store_builders!(S3CopyObject);

impl S3CopyObject {
    /// Copies `source_bucket_key` to `dest_bucket_key` (URLs, or keys with buckets set below).
    pub fn new(source_bucket_key: impl Into<String>, dest_bucket_key: impl Into<String>) -> Self {
        S3CopyObject {
            source_bucket_key: source_bucket_key.into(),
            dest_bucket_key: dest_bucket_key.into(),
            source_bucket_name: None,
            dest_bucket_name: None,
            source: Source::default(),
        }
    }
    /// The source bucket, when the source key is relative.
    pub fn source_bucket_name(mut self, b: impl Into<String>) -> Self {
        self.source_bucket_name = Some(b.into());
        self
    }
    /// The destination bucket, when the destination key is relative.
    pub fn dest_bucket_name(mut self, b: impl Into<String>) -> Self {
        self.dest_bucket_name = Some(b.into());
        self
    }
}

fn render_opt(ctx: &Context, v: &Option<String>) -> Result<Option<String>> {
    v.as_deref().map(|s| render(ctx, s)).transpose()
}

#[async_trait]
impl Operator for S3CopyObject {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let op = "s3.copy_object";
        let sb = render_opt(ctx, &self.source_bucket_name)?;
        let db = render_opt(ctx, &self.dest_bucket_name)?;
        let (sb, sk) = bucket_key(op, sb.as_deref(), &render(ctx, &self.source_bucket_key)?)?;
        let (db, dk) = bucket_key(op, db.as_deref(), &render(ctx, &self.dest_bucket_key)?)?;
        let store = self.source.resolve(ctx, S3Settings::default()).await?;
        store.copy(&sb, &sk, &db, &dk).await?;
        Ok(json!({"source": format!("s3://{sb}/{sk}"), "dest": format!("s3://{db}/{dk}")}))
    }
}

/// Airflow's `S3CreateBucketOperator`: idempotent. XCom: `{"bucket", "created"}`.
/// Templated: `bucket_name`.
#[derive(Debug, Clone)]
pub struct S3CreateBucket {
    bucket_name: String,
    region_name: Option<String>,
    source: Source,
}
store_builders!(S3CreateBucket);

impl S3CreateBucket {
    /// Creates `bucket_name` unless it exists.
    pub fn new(bucket_name: impl Into<String>) -> Self {
        S3CreateBucket {
            bucket_name: bucket_name.into(),
            region_name: None,
            source: Source::default(),
        }
    }
    /// The region to create the bucket in (default: the connection's). A setting of
    /// the `S3Hook` built from `aws_conn_id`; a store given with `with_store` uses
    /// its own (`S3Hook::with_bucket_region`).
    pub fn region_name(mut self, region: impl Into<String>) -> Self {
        self.region_name = Some(region.into());
        self
    }
}

#[async_trait]
impl Operator for S3CreateBucket {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let bucket = render(ctx, &self.bucket_name)?;
        let settings = S3Settings {
            region: self.region_name.clone(),
            ..S3Settings::default()
        };
        let created = self
            .source
            .resolve(ctx, settings)
            .await?
            .create_bucket(&bucket)
            .await?;
        Ok(json!({"bucket": bucket, "created": created}))
    }
}

/// Airflow's `S3DeleteObjectsOperator`: the given keys, or every key under a
/// prefix (exactly one of the two). Fails naming the first key not deleted.
/// XCom: `{"deleted": [keys]}`. Templated: `bucket`, each key, `prefix`.
#[derive(Debug, Clone)]
pub struct S3DeleteObjects {
    bucket: String,
    keys: Vec<String>,
    prefix: Option<String>,
    source: Source,
}
store_builders!(S3DeleteObjects);

impl S3DeleteObjects {
    /// Deletes `keys` from `bucket`.
    pub fn keys(
        bucket: impl Into<String>,
        keys: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        S3DeleteObjects {
            bucket: bucket.into(),
            keys: keys.into_iter().map(Into::into).collect(),
            prefix: None,
            source: Source::default(),
        }
    }
    /// Deletes every key under `prefix` in `bucket`.
    pub fn prefix(bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        S3DeleteObjects {
            bucket: bucket.into(),
            keys: Vec::new(),
            prefix: Some(prefix.into()),
            source: Source::default(),
        }
    }
}

#[async_trait]
impl Operator for S3DeleteObjects {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let op = "s3.delete_objects";
        let bucket = render(ctx, &self.bucket)?;
        let store = self.source.resolve(ctx, S3Settings::default()).await?;
        let keys: Vec<String> = match &self.prefix {
            Some(p) => {
                let p = render(ctx, p)?;
                if p.is_empty() {
                    // An empty prefix would empty the bucket: refuse, as Airflow does.
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        op,
                        "the prefix is empty; name the keys to delete the whole bucket's content",
                    )
                    .with("bucket", &bucket));
                }
                store
                    .list_keys_stream(&bucket, &ListKeys::new().prefix(p))
                    .try_collect()
                    .await?
            }
            None => self
                .keys
                .iter()
                .map(|k| render(ctx, k))
                .collect::<Result<_>>()?,
        };
        let report = store.delete(&bucket, &keys).await?;
        if let Some(first) = report.errors.first() {
            let msg = format!(
                "{} of {} keys were not deleted; first: {} ({})",
                report.errors.len(),
                keys.len(),
                first.code,
                first.message
            );
            return Err(Error::new(ErrorKind::Remote, op, msg)
                .with("bucket", &bucket)
                .with("key", &first.key));
        }
        Ok(json!({"deleted": report.deleted}))
    }
}

/// Airflow's `S3CreateObjectOperator`: writes `data` under a key (default
/// `replace=false`, a conditional write). XCom: `{"bucket", "key", "size"}`.
/// Templated: `s3_key`, `s3_bucket`, `data`.
#[derive(Debug, Clone)]
pub struct S3CreateObject {
    s3_bucket: Option<String>,
    s3_key: String,
    data: String,
    replace: bool,
    encrypt: bool,
    source: Source,
}
store_builders!(S3CreateObject);

impl S3CreateObject {
    /// Writes `data` to `s3_key` (an `s3://` URL unless `s3_bucket` is set).
    pub fn new(s3_key: impl Into<String>, data: impl Into<String>) -> Self {
        S3CreateObject {
            s3_bucket: None,
            s3_key: s3_key.into(),
            data: data.into(),
            replace: false,
            encrypt: false,
            source: Source::default(),
        }
    }
    /// The bucket, when the key is relative.
    pub fn s3_bucket(mut self, b: impl Into<String>) -> Self {
        self.s3_bucket = Some(b.into());
        self
    }
    /// Overwrites an existing object (default `false`, as in Airflow).
    pub fn replace(mut self, on: bool) -> Self {
        self.replace = on;
        self
    }
    /// Server-side encryption with S3-managed keys (Airflow's `encrypt`). A setting
    /// of the `S3Hook` built from `aws_conn_id`; a store given with `with_store`
    /// uses its own (`S3Hook::with_server_side_encryption`).
    pub fn encrypt(mut self, on: bool) -> Self {
        self.encrypt = on;
        self
    }
}

#[async_trait]
impl Operator for S3CreateObject {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let bucket = render_opt(ctx, &self.s3_bucket)?;
        let (bucket, key) = bucket_key(
            "s3.create_object",
            bucket.as_deref(),
            &render(ctx, &self.s3_key)?,
        )?;
        let data = Bytes::from(render(ctx, &self.data)?);
        let settings = S3Settings {
            encrypt: self.encrypt,
            ..S3Settings::default()
        };
        let put = self
            .source
            .resolve(ctx, settings)
            .await?
            .put(
                &bucket,
                &key,
                data,
                &PutOptions::new().replace(self.replace),
            )
            .await?;
        Ok(json!({"bucket": bucket, "key": key, "size": put.size}))
    }
}
