//! [`S3ToRedis`]: the rows of a CSV or JSON Lines object into Redis, one key per
//! row (seed 000's second DAG, which stores each row of `iris1.csv` as JSON under
//! `row:{index}`).
//!
//! The object streams from the store through a CSV [`Parser`](crate::formats::csv::Parser) or a
//! [`jsonl::Parser`] (the format from the key's suffix or
//! [`file_format`](S3ToRedis::file_format); gzip when the key ends in `.gz`) and
//! its rows go to Redis in batches of
//! [`batch_rows`](S3ToRedis::batch_rows) rows, a few batches in flight at once
//! ([`max_in_flight`](S3ToRedis::max_in_flight)): memory stays flat whatever the
//! object's size (but for a 16-byte hash per row when the key is not
//! `prefix{{ index }}suffix`, see [below](self#re-running-a-date)). Each batch is a [`RedisBatch`], so on a Redis Cluster its
//! commands go out as one pipeline per hash slot and keys spread over every master
//! never fail with `CROSSSLOT`.
//!
//! # Keys
//!
//! The key is a Jinja template rendered once per run with the task's context
//! (`{{ ds }}`, `params`…) and, per row, two more variables:
//!
//! - `index`: the row's number from 0 (pandas' default index, the seed's
//!   `row:{index}`; the header is not a row);
//! - `row`: the row's fields, `{{ row.species }}` or `{{ row['sepal length'] }}`
//!   (a JSON Lines value as text: strings as they are, numbers printed).
//!
//! Parsing a Jinja template for each of a million rows would cost more than
//! sending them, so the row variables may appear only as whole substitutions,
//! `{{ index }}`, `{{ row.name }}`, `{{ row['name'] }}`: the template is rendered
//! once with markers in their place and each row's key is the rendered text with
//! the row's values put in. `{{ index + 1 }}` or a filter on a row field is a
//! template error that says so. Every row must get its own key: a template
//! without a row variable is refused, and two rows rendering the same key fail
//! the load naming the key and the line (batches run concurrently, so "the last
//! one wins" would not hold). A field used in the key must not be NULL.
//!
//! # Values
//!
//! [`StoreAs::Json`] (the default, the seed's `json.dumps(row.to_dict())`): `SET key
//! <JSON object>`, column → value in the object's column order. CSV fields are
//! strings and NULL is `null`; with [`infer_numbers`](S3ToRedis::infer_numbers) a
//! field that is a JSON number *and prints back unchanged* (`5.1`, `-3`, `3.0`)
//! is stored as a number, as pandas would type the seed's measurements, while
//! `007`, `1.50`, `1e3` or `+5` stay strings: no digit of the input is lost.
//! A JSON Lines object is stored as it was read, its values keeping their JSON
//! types and its keys their order.
//!
//! [`StoreAs::Hash`]: `DEL key` then `HSET key column value …`, one hash field per
//! non-NULL field (JSON numbers and booleans printed, nested values as JSON text;
//! Redis hashes have no NULL: an absent field is NULL; a row whose
//! fields are all NULL leaves no key). The `DEL` makes a re-run give exactly the
//! new fields; between the two a reader may see the key missing.
//!
//! With [`ttl`](S3ToRedis::ttl) every key expires after that long (`SET … PX`, or
//! `PEXPIRE` after the `HSET`); without it a re-run removes an earlier run's TTL.
//!
//! # Re-running a date
//!
//! Loading the same object again writes the same keys with the same values. With
//! [`replace(true)`](S3ToRedis::replace) the load then removes the keys under its
//! *prefix* that it did not write — the rows of an earlier, longer object — with
//! `SCAN prefix*` on every master (never `KEYS`) and `DEL`. The prefix is the
//! rendered key up to its first row variable (`iris:2025-01-08:row:` for
//! `iris:{{ ds }}:row:{{ index }}`), or [`prefix`](S3ToRedis::prefix); an empty
//! prefix (which would empty the database) is refused. Keys are removed only after
//! every row was written, so a failed load leaves the earlier rows in place and
//! its re-run converges. The keys written are remembered without storing them: a
//! `prefix{{ index }}suffix` template needs nothing (a key is one of ours when its
//! number is below the row count), any other keeps a 128-bit hash per row.
//! A reader that stops at the first missing `row:{i}` (the seed's) needs
//! `replace(true)` to never read on into an older, longer load.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
//! # let Ok(_) = std::env::var("AIRFLOW_CONN_REDIS_DEFAULT") else { return Ok(()) };
//! use std::sync::Arc;
//! use gust::formats::csv::CsvFormat;
//! use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
//! use gust::hooks::redis::RedisHook;
//! use gust::transfers::s3_to_redis::S3ToRedis;
//! use gust::{Context, Operator};
//!
//! let store = Arc::new(MemoryStore::new());
//! store.create_bucket("team06-mlflow-feature").await?;
//! let csv = "SepalLength;Species\n5.1;Iris-setosa\n4.9;Iris-setosa\n";
//! store.put("team06-mlflow-feature", "iris1.csv", csv.as_bytes().to_vec().into(), &PutOptions::new()).await?;
//! let redis = RedisHook::from_conn_id("redis_default").await?;
//! let ctx = Context::builder("redis", "read_s3_and_store_to_redis").build();
//!
//! let out = S3ToRedis::new("s3://team06-mlflow-feature/iris1.csv", "iris:{{ ds }}:row:{{ index }}")
//!     .file_format(CsvFormat::new().delimiter(b';'))
//!     .infer_numbers(true)
//!     .replace(true)
//!     .with_store(store)
//!     .with_hook(redis.clone())
//!     .execute(&ctx)
//!     .await?;
//! assert_eq!(out["rows"], 2);
//! let first: serde_json::Value = redis.get_json(&format!("iris:{}:row:0", ctx.ds())).await?.unwrap();
//! assert_eq!(first, serde_json::json!({"SepalLength": 5.1, "Species": "Iris-setosa"}));
//! # Ok(()) }
//! ```
//!
//! Templated fields: `s3_key`, `s3_bucket`, `key` (with the row variables), `prefix`.
//!
//! # Errors
//!
//! A missing object is [`NotFound`](ErrorKind::NotFound) naming the bucket and
//! key; an empty object (no byte, after gzip) is
//! [`InvalidInput`](ErrorKind::InvalidInput); so is a record with the wrong number
//! of fields (often the wrong delimiter) or a malformed JSON line, naming the line
//! (records counted from the header as line 1, exact unless a quoted field spans
//! lines or JSON Lines has blank lines), a key column that is NULL or missing,
//! and a duplicate key. A Redis failure keeps its kind: a
//! master that does not answer is [`Timeout`](ErrorKind::Timeout) or
//! [`Unavailable`](ErrorKind::Unavailable), both retryable — the keys written so far
//! stay, and the retry writes them again. Every error names the object
//! (`object=s3://bucket/key`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::FileFormat;
use crate::formats::csv::{Record, cell_text, is_blank};
use crate::formats::decode::{NumberedObject, ObjectReader};
use crate::formats::jsonl;
use crate::hooks::object_store::BytesStream;
use crate::hooks::redis::{RedisBatch, RedisHook};
use crate::operators::s3::{S3Settings, Source, rendered_bucket_key};
use crate::task::Operator;

const OP: &str = "s3_to_redis.load";

/// Rows per batch unless [`S3ToRedis::batch_rows`] says otherwise.
const BATCH_ROWS: usize = 1000;
/// Batches in flight unless [`S3ToRedis::max_in_flight`] says otherwise.
const IN_FLIGHT: usize = 4;
/// Keys asked per `SCAN` and deleted per `DEL` round by `replace`.
const SCAN_COUNT: usize = 1000;

/// How each row is stored; see the [module docs](self#values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreAs {
    /// `SET key <JSON object>` (the seed's `json.dumps(row.to_dict())`).
    #[default]
    Json,
    /// `HSET key column value …`, NULL fields omitted.
    Hash,
}

impl StoreAs {
    fn as_str(self) -> &'static str {
        match self {
            StoreAs::Json => "json",
            StoreAs::Hash => "hash",
        }
    }
}

/// Loads the rows of a CSV or JSON Lines object into Redis; see the
/// [module docs](self). XCom: `{"bucket", "key", "format", "rows", "store_as",
/// "prefix", "deleted"}` (`prefix` and
/// `deleted`, the stale keys removed, are `null` without `replace`).
#[derive(Debug, Clone)]
pub struct S3ToRedis {
    s3_key: String,
    s3_bucket: Option<String>,
    key: String,
    prefix: Option<String>,
    redis_conn_id: String,
    hook: Option<RedisHook>,
    source: Source,
    file_format: Option<FileFormat>,
    column_list: Option<Vec<String>>,
    store_as: StoreAs,
    infer_numbers: bool,
    ttl: Option<Duration>,
    replace: bool,
    batch_rows: usize,
    max_in_flight: usize,
}

crate::operators::s3::store_builders!(S3ToRedis);

impl S3ToRedis {
    /// Loads `s3_key` (an `s3://bucket/key` URL unless [`s3_bucket`](Self::s3_bucket)
    /// is set) from `aws_default` into `redis_default`, each row as JSON under the
    /// key template `key` (the seed's is `row:{{ index }}`; see the
    /// [module docs](self#keys)). CSV with a header row, by default.
    pub fn new(s3_key: impl Into<String>, key: impl Into<String>) -> Self {
        S3ToRedis {
            s3_key: s3_key.into(),
            s3_bucket: None,
            key: key.into(),
            prefix: None,
            redis_conn_id: crate::hooks::redis::DEFAULT_CONN_ID.to_string(),
            hook: None,
            source: Source::default(),
            file_format: None,
            column_list: None,
            store_as: StoreAs::default(),
            infer_numbers: false,
            ttl: None,
            replace: false,
            batch_rows: BATCH_ROWS,
            max_in_flight: IN_FLIGHT,
        }
    }

    /// The bucket, when the key is relative.
    pub fn s3_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.s3_bucket = Some(bucket.into());
        self
    }

    /// The Redis connection (default `redis_default`; `cluster=true` in its extras
    /// for a Redis Cluster).
    pub fn redis_conn_id(mut self, conn_id: impl Into<String>) -> Self {
        self.redis_conn_id = conn_id.into();
        self
    }

    /// Uses `hook` instead of connecting with `redis_conn_id`.
    pub fn with_hook(mut self, hook: RedisHook) -> Self {
        self.redis_conn_id = hook.conn_id().to_string();
        self.hook = Some(hook);
        self
    }

    /// The object's format: a CSV dialect or JSON Lines. Default: from the key's
    /// suffix (`.jsonl`, `.ndjson`, `.json` → JSON Lines, optionally `.gz`), else
    /// CSV with `,`, a header row and NULL as an empty unquoted field.
    pub fn file_format(mut self, format: impl Into<FileFormat>) -> Self {
        self.file_format = Some(format.into());
        self
    }

    /// The CSV column names, in order. Without it the header row names them;
    /// with it a header row, if the format has one, is skipped. (JSON Lines
    /// objects name their own fields.)
    pub fn column_list(mut self, columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.column_list = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// JSON values (default) or hashes; see the [module docs](self#values).
    pub fn store_as(mut self, store_as: StoreAs) -> Self {
        self.store_as = store_as;
        self
    }

    /// In JSON values, stores a CSV field that is a JSON number printing back
    /// unchanged as a number (default `false`: every field a string); see the
    /// [module docs](self#values).
    pub fn infer_numbers(mut self, on: bool) -> Self {
        self.infer_numbers = on;
        self
    }

    /// Makes every key expire after `ttl` (millisecond precision; zero is refused
    /// by Redis).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// After the load, removes the keys under the prefix that this load did not
    /// write (default `false`); see the [module docs](self#re-running-a-date).
    pub fn replace(mut self, on: bool) -> Self {
        self.replace = on;
        self
    }

    /// The prefix `replace` cleans (templated), instead of the key template's
    /// rendered text before its first row variable. Must not be empty.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Rows per batch (default 1,000; at least 1).
    pub fn batch_rows(mut self, n: usize) -> Self {
        self.batch_rows = n.max(1);
        self
    }

    /// Batches sent concurrently (default 4; at least 1).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }
}

#[async_trait]
impl Operator for S3ToRedis {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let (bucket, key) = rendered_bucket_key(ctx, OP, self.s3_bucket.as_deref(), &self.s3_key)?;
        let object = format!("s3://{bucket}/{key}");
        let name = |e: Error| e.with_operation(OP).with("object", &object);

        let plan = KeyPlan::render(ctx, &self.key).map_err(name)?;
        let prefix = match &self.prefix {
            Some(p) => ctx.render_inline(p).map_err(name)?,
            None => plan.head().to_string(),
        };
        if self.replace && prefix.is_empty() {
            return Err(name(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "replace needs a prefix, and the key template starts with a row variable: \
                 give one with prefix(…) (an empty prefix would remove every key)",
            )));
        }

        let hook = match &self.hook {
            Some(h) => h.clone(),
            None => {
                let conn = ctx.connection(&self.redis_conn_id).map_err(name)?;
                RedisHook::from_connection(&conn).await.map_err(name)?
            }
        };
        let store = self
            .source
            .resolve(ctx, S3Settings::default())
            .await
            .map_err(name)?;
        let body = store.get_stream(&bucket, &key).await.map_err(name)?;

        let format = self
            .file_format
            .clone()
            .or_else(|| FileFormat::from_key(&key))
            .unwrap_or_default();
        let mut loader = Loader {
            hook: hook.clone(),
            delimiter: match &format {
                FileFormat::Csv(csv) => csv.delimiter,
                _ => b',',
            },
            plan: &plan,
            store_as: self.store_as,
            infer_numbers: self.infer_numbers,
            ttl: self.ttl,
            batch_rows: self.batch_rows,
            max_in_flight: self.max_in_flight,
            columns: None,
            pending: Pending::default(),
            in_flight: FuturesUnordered::new(),
            written: Written::new(&plan),
            rows: 0,
        };
        let gzip = key.ends_with(".gz");
        read_object(body, &format, self.column_list.clone(), gzip, &mut loader)
            .await
            .map_err(name)?;
        loader.finish().await.map_err(name)?;
        let rows = loader.rows;
        tracing::info!(%object, conn_id = %hook.conn_id(), rows, store_as = self.store_as.as_str(), "object loaded into redis");

        let deleted = if self.replace {
            let n = remove_stale(&hook, &prefix, &loader.written, rows)
                .await
                .map_err(name)?;
            tracing::info!(%object, conn_id = %hook.conn_id(), prefix = %prefix, deleted = n, "stale keys removed");
            Some(n)
        } else {
            None
        };
        Ok(json!({
            "bucket": bucket,
            "key": key,
            "format": format.name(),
            "rows": rows,
            "store_as": self.store_as.as_str(),
            "prefix": self.replace.then_some(prefix),
            "deleted": deleted,
        }))
    }
}

// ---- the key template ----

/// Markers put in place of the row variables before the one rendering: private-use
/// characters, which no context variable renders.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Index,
    Field(String),
}

/// The key template rendered with the run's context: literal text and row variables.
#[derive(Debug)]
struct KeyPlan {
    parts: Vec<Part>,
}

impl KeyPlan {
    /// Renders `template` once, with markers in place of `{{ index }}` and
    /// `{{ row.… }}`.
    fn render(ctx: &Context, template: &str) -> Result<KeyPlan> {
        let (marked, slots) = mark(template);
        let rendered = ctx.render_inline(&marked).map_err(|e| {
            // A row variable left in the template is used in an expression.
            let code = jinja_code(&marked);
            if mentions_word(&code, "index") || mentions_word(&code, "row") {
                e.map_message(|m| {
                    format!(
                        "{m}; in a key template the row variables can only be whole \
                         substitutions: {{{{ index }}}}, {{{{ row.column }}}}, {{{{ row['column'] }}}}"
                    )
                })
            } else {
                e
            }
        })?;
        let parts = split(&rendered, &slots);
        if !parts.iter().any(|p| !matches!(p, Part::Lit(_))) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "the key template gives every row the same key: put {{ index }} or \
                 {{ row.<column> }} in it",
            )
            .with("key_template", template));
        }
        Ok(KeyPlan { parts })
    }

    /// The literal text before the first row variable.
    fn head(&self) -> &str {
        match self.parts.first() {
            Some(Part::Lit(s)) => s,
            _ => "",
        }
    }

    /// `(head, tail)` when the template is `head{{ index }}tail`, with no other row
    /// variable: then the keys written are known from the row count alone.
    fn index_only(&self) -> Option<(&str, &str)> {
        let mut head = "";
        let mut tail = "";
        let mut seen = false;
        for p in &self.parts {
            match p {
                Part::Lit(s) if seen => tail = s,
                Part::Lit(s) => head = s,
                Part::Index if !seen => seen = true,
                _ => return None,
            }
        }
        seen.then_some((head, tail))
    }
}

/// Replaces every whole `{{ index }}` / `{{ row.x }}` / `{{ row['x'] }}` of
/// `template` with a marker; returns the marked template and the variables.
fn mark(template: &str) -> (String, Vec<Part>) {
    let mut out = String::with_capacity(template.len());
    let mut slots = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let Some(len) = rest[open + 2..].find("}}") else {
            break;
        };
        let inner = &rest[open + 2..open + 2 + len];
        out.push_str(&rest[..open]);
        match row_variable(inner.trim()) {
            Some(part) => {
                write!(out, "{OPEN}{}{CLOSE}", slots.len()).ok();
                slots.push(part);
            }
            None => out.push_str(&rest[open..open + 4 + len]),
        }
        rest = &rest[open + 4 + len..];
    }
    out.push_str(rest);
    (out, slots)
}

/// The text inside the `{{ … }}` and `{% … %}` blocks of `template`.
fn jinja_code(template: &str) -> String {
    let mut code = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = match rest[open..].get(..2) {
            Some("{{") => "}}",
            Some("{%") => "%}",
            _ => {
                rest = &rest[open + 1..];
                continue;
            }
        };
        let body = &rest[open + 2..];
        let end = body.find(close).unwrap_or(body.len());
        code.push_str(&body[..end]);
        code.push(' ');
        rest = &body[end..];
    }
    code
}

/// Whether `text` holds `word` as a whole name (not `rows` or `my_index`).
fn mentions_word(text: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(is_name)
            && !text[at + word.len()..].chars().next().is_some_and(is_name)
    })
}

/// The row variable a whole `{{ … }}` expression is, if it is one.
fn row_variable(expr: &str) -> Option<Part> {
    if expr == "index" {
        return Some(Part::Index);
    }
    let is_ident = |s: &str| {
        let mut c = s.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if let Some(name) = expr.strip_prefix("row.")
        && is_ident(name)
    {
        return Some(Part::Field(name.to_string()));
    }
    let inner = expr.strip_prefix("row[")?.strip_suffix(']')?.trim();
    for q in ['\'', '"'] {
        if let Some(name) = inner.strip_prefix(q).and_then(|s| s.strip_suffix(q))
            && !name.contains(q)
            && !name.contains('\\')
        {
            return Some(Part::Field(name.to_string()));
        }
    }
    None
}

/// The rendered template cut at its markers.
fn split(rendered: &str, slots: &[Part]) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = rendered;
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len_utf8()..];
        let slot = after
            .find(CLOSE)
            .and_then(|end| Some((after[..end].parse::<usize>().ok()?, end)));
        let Some((n, end)) = slot.filter(|(n, _)| *n < slots.len()) else {
            // Not one of ours: keep the character as text.
            lit.push_str(&rest[..at + OPEN.len_utf8()]);
            rest = after;
            continue;
        };
        lit.push_str(&rest[..at]);
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(&mut lit)));
        }
        parts.push(slots[n].clone());
        rest = &after[end + CLOSE.len_utf8()..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    parts
}

/// The key plan bound to the CSV columns: each field a column position.
#[derive(Debug)]
enum Bound {
    Lit(String),
    Index,
    Col(usize, String),
}

/// The columns of a CSV object, with what every row needs of them.
struct Columns {
    names: Vec<String>,
    /// `{"name":` (`,"name":` after the first): each column's part of a JSON object.
    json_heads: Vec<Vec<u8>>,
    key: Vec<Bound>,
}

impl Columns {
    fn new(names: Vec<String>, plan: &KeyPlan) -> Result<Columns> {
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    OP,
                    format!("the column {n:?} is named twice"),
                ));
            }
        }
        let mut key = Vec::with_capacity(plan.parts.len());
        for p in &plan.parts {
            key.push(match p {
                Part::Lit(s) => Bound::Lit(s.clone()),
                Part::Index => Bound::Index,
                Part::Field(f) => {
                    let Some(i) = names.iter().position(|n| n == f) else {
                        return Err(Error::new(
                            ErrorKind::InvalidInput,
                            OP,
                            format!(
                                "the key template uses row.{f}, but the columns are {}",
                                names.join(", ")
                            ),
                        ));
                    };
                    Bound::Col(i, f.clone())
                }
            });
        }
        let json_heads = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut h = Vec::with_capacity(n.len() + 4);
                h.push(if i == 0 { b'{' } else { b',' });
                json_string(&mut h, n);
                h.push(b':');
                h
            })
            .collect();
        Ok(Columns {
            names,
            json_heads,
            key,
        })
    }

    /// Row `index`'s key; `line` names it in errors.
    fn key(&self, index: u64, record: &Record, line: u64) -> Result<String> {
        let mut key = String::with_capacity(32);
        for b in &self.key {
            match b {
                Bound::Lit(s) => key.push_str(s),
                Bound::Index => {
                    write!(key, "{index}").ok();
                }
                Bound::Col(i, name) => match &record[*i] {
                    Some(v) => key.push_str(v),
                    None => {
                        return Err(Error::new(
                            ErrorKind::InvalidInput,
                            OP,
                            format!("line {line}: the key column {name:?} is NULL"),
                        )
                        .with("line", line));
                    }
                },
            }
        }
        Ok(key)
    }

    /// The JSON object of `record`.
    fn json(&self, record: &Record, infer_numbers: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * record.len() + 2);
        for (head, field) in self.json_heads.iter().zip(record) {
            out.extend_from_slice(head);
            match field {
                None => out.extend_from_slice(b"null"),
                Some(v) if infer_numbers && is_json_number(v) => {
                    out.extend_from_slice(v.as_bytes())
                }
                Some(v) => json_string(&mut out, v),
            }
        }
        if out.is_empty() {
            out.push(b'{');
        }
        out.push(b'}');
        out
    }
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    serde_json::to_writer(&mut *out, s).ok();
}

/// Whether `s` is a JSON number that prints back as `s` (so storing it as a number
/// loses nothing): `5.1`, `-3`, `3.0`; not `007`, `1.50`, `1e3`, `+5`, `-0`.
fn is_json_number(s: &str) -> bool {
    if s.is_empty() || s.len() > 32 {
        return false;
    }
    if s.contains(['.', 'e', 'E']) {
        s.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .is_some_and(|n| n.to_string() == s)
    } else {
        s.parse::<i64>().is_ok_and(|n| n.to_string() == s)
    }
}

// ---- the keys written ----

/// Which keys this load wrote, for `replace` and the duplicate check.
enum Written {
    /// `head{{ index }}tail`: key `head<i>tail` for every `i` below the row count.
    Index { head: String, tail: String },
    /// Any other template: a 128-bit hash of every key.
    Hashes(HashSet<u128>),
}

impl Written {
    fn new(plan: &KeyPlan) -> Written {
        match plan.index_only() {
            Some((head, tail)) => Written::Index {
                head: head.to_string(),
                tail: tail.to_string(),
            },
            None => Written::Hashes(HashSet::new()),
        }
    }

    /// Records `key`; `false` when it was written already.
    fn insert(&mut self, key: &str) -> bool {
        match self {
            Written::Index { .. } => true,
            Written::Hashes(set) => set.insert(hash128(key)),
        }
    }

    /// Whether `key` is one of the `rows` keys this load wrote.
    fn contains(&self, key: &str, rows: u64) -> bool {
        match self {
            Written::Index { head, tail } => key
                .strip_prefix(head.as_str())
                .and_then(|k| k.strip_suffix(tail.as_str()))
                .filter(|n| n == &"0" || !n.starts_with('0'))
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n < rows),
            Written::Hashes(set) => set.contains(&hash128(key)),
        }
    }
}

/// Two independent 64-bit SipHashes (fixed keys, so stable within the process).
fn hash128(key: &str) -> u128 {
    let mut a = std::hash::DefaultHasher::new();
    key.hash(&mut a);
    let mut b = std::hash::DefaultHasher::new();
    0x9e37_79b9_7f4a_7c15_u64.hash(&mut b);
    key.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// `SCAN` glob special characters escaped, so the prefix matches itself only.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Deletes the keys under `prefix` that are not among the `rows` keys written;
/// returns how many were deleted.
async fn remove_stale(hook: &RedisHook, prefix: &str, written: &Written, rows: u64) -> Result<u64> {
    let pattern = format!("{}*", glob_escape(prefix));
    let mut keys = hook.scan(&pattern, SCAN_COUNT);
    let mut stale: Vec<String> = Vec::new();
    let mut deleted = 0;
    while let Some(key) = keys.next().await {
        let key = key?;
        if !written.contains(&key, rows) {
            stale.push(key);
            if stale.len() >= SCAN_COUNT {
                deleted += hook.delete(&stale).await?;
                stale.clear();
            }
        }
    }
    if !stale.is_empty() {
        deleted += hook.delete(&stale).await?;
    }
    Ok(deleted)
}

// ---- batches ----

/// The rows of the batch being filled.
#[derive(Default)]
struct Pending {
    rows: usize,
    /// JSON: the `SET`s; hash: the `HSET`s.
    writes: RedisBatch,
    /// Hash: the keys, deleted before their `HSET`.
    keys: Vec<String>,
}

struct Loader<'a> {
    hook: RedisHook,
    /// The CSV delimiter, named when a record has the wrong number of fields.
    delimiter: u8,
    plan: &'a KeyPlan,
    store_as: StoreAs,
    infer_numbers: bool,
    ttl: Option<Duration>,
    batch_rows: usize,
    max_in_flight: usize,
    columns: Option<Columns>,
    pending: Pending,
    in_flight: FuturesUnordered<BoxFuture<'static, Result<()>>>,
    written: Written,
    rows: u64,
}

impl Loader<'_> {
    fn set_columns(&mut self, names: Vec<String>) -> Result<()> {
        self.columns = Some(Columns::new(names, self.plan)?);
        Ok(())
    }

    /// Adds one CSV record (line `line`) to the batch, sending it when full.
    async fn push_csv(&mut self, record: Record, line: u64) -> Result<()> {
        let Some(cols) = &self.columns else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "the format has no header row: give the columns with column_list",
            ));
        };
        // A blank line is a NULL only in a one-column file (as S3ToSql reads it).
        if cols.names.len() != 1 && is_blank(&record) {
            return Ok(());
        }
        if record.len() != cols.names.len() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!(
                    "line {line} has {} fields where {} columns were expected (is the \
                     delimiter {:?}?)",
                    record.len(),
                    cols.names.len(),
                    char::from(self.delimiter),
                ),
            )
            .with("line", line));
        }
        let key = cols.key(self.rows, &record, line)?;
        check_unique(&mut self.written, &key, line)?;
        match self.store_as {
            StoreAs::Json => {
                let json = cols.json(&record, self.infer_numbers);
                self.pending.writes.set(key, json, self.ttl);
            }
            StoreAs::Hash => {
                let fields: Vec<(&str, &str)> = cols
                    .names
                    .iter()
                    .zip(&record)
                    .filter_map(|(n, v)| Some((n.as_str(), v.as_deref()?)))
                    .collect();
                if !fields.is_empty() {
                    self.pending.writes.hset(key.as_str(), fields);
                }
                self.pending.keys.push(key);
            }
        }
        self.row_added().await
    }

    /// Adds one JSON Lines object (line `line`) to the batch, sending it when full.
    async fn push_json(&mut self, object: jsonl::Object, line: u64) -> Result<()> {
        let mut key = String::with_capacity(32);
        for p in &self.plan.parts {
            match p {
                Part::Lit(s) => key.push_str(s),
                Part::Index => {
                    write!(key, "{}", self.rows).ok();
                }
                Part::Field(name) => {
                    let Some(v) = object.get(name).and_then(cell_text) else {
                        let what = if object.contains_key(name) {
                            "is null"
                        } else {
                            "is missing"
                        };
                        return Err(Error::new(
                            ErrorKind::InvalidInput,
                            OP,
                            format!("line {line}: the key field {name:?} {what}"),
                        )
                        .with("line", line));
                    };
                    key.push_str(&v);
                }
            }
        }
        check_unique(&mut self.written, &key, line)?;
        match self.store_as {
            StoreAs::Json => {
                // Writing a map of JSON values into a Vec cannot fail.
                let json = serde_json::to_vec(&object).unwrap_or_default();
                self.pending.writes.set(key, json, self.ttl);
            }
            StoreAs::Hash => {
                let fields: Vec<(&String, String)> = object
                    .iter()
                    .filter_map(|(k, v)| Some((k, cell_text(v)?)))
                    .collect();
                if !fields.is_empty() {
                    self.pending.writes.hset(key.as_str(), fields);
                }
                self.pending.keys.push(key);
            }
        }
        self.row_added().await
    }

    /// Counts the row just queued; sends the batch when it is full.
    async fn row_added(&mut self) -> Result<()> {
        self.pending.rows += 1;
        self.rows += 1;
        if self.rows.is_multiple_of(1_000_000) {
            tracing::info!(rows = self.rows, "load in progress");
        }
        if self.pending.rows >= self.batch_rows {
            self.send().await?;
        }
        Ok(())
    }

    /// Sends the pending batch, first waiting for room among the batches in flight.
    async fn send(&mut self) -> Result<()> {
        while self.in_flight.len() >= self.max_in_flight {
            if let Some(r) = self.in_flight.next().await {
                r?;
            }
        }
        let Pending { writes, keys, .. } = std::mem::take(&mut self.pending);
        let hook = self.hook.clone();
        let ttl = self.ttl;
        let fut = async move {
            if !keys.is_empty() {
                // Hash: the old fields go first; then the new ones, then the TTL. Each
                // step is one round of pipelines, as a slot's commands may be cut
                // into pipelines running concurrently.
                hook.delete(&keys).await?;
                if !writes.is_empty() {
                    hook.execute(&writes).await?;
                }
                if let Some(ttl) = ttl {
                    let mut expire = RedisBatch::new();
                    for k in keys {
                        expire.expire(k, ttl);
                    }
                    hook.execute(&expire).await?;
                }
            } else if !writes.is_empty() {
                hook.execute(&writes).await?;
            }
            Ok::<(), Error>(())
        };
        self.in_flight.push(fut.boxed());
        Ok(())
    }

    /// Sends the last batch and waits for every batch.
    async fn finish(&mut self) -> Result<()> {
        if self.pending.rows > 0 {
            self.send().await?;
        }
        while let Some(r) = self.in_flight.next().await {
            r?;
        }
        Ok(())
    }
}

// ---- reading ----

/// Records `key` as written, refusing a key an earlier row had.
fn check_unique(written: &mut Written, key: &str, line: u64) -> Result<()> {
    if written.insert(key) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        OP,
        format!("line {line} has the key of an earlier row: every row needs its own key"),
    )
    .with("line", line)
    .with("redis_key", key))
}

/// Streams the object `body` into `loader`.
async fn read_object(
    body: BytesStream,
    format: &FileFormat,
    column_list: Option<Vec<String>>,
    gzip: bool,
    loader: &mut Loader<'_>,
) -> Result<()> {
    let mut header_pending = match format {
        FileFormat::Csv(csv) => {
            csv.validate(OP)?;
            if let Some(names) = column_list {
                loader.set_columns(names)?;
            }
            csv.header
        }
        FileFormat::JsonLines => false,
        // The reader's first record names the file's columns.
        #[cfg(feature = "parquet")]
        FileFormat::Parquet(_) => {
            if let Some(names) = column_list {
                loader.set_columns(names)?;
            }
            true
        }
    };
    let mut reader = ObjectReader::new(body, format, gzip, OP);
    // Records counted from line 1 (the header, if any): the line of each record
    // unless a quoted CSV field spans lines.
    let mut line = 1u64;
    let mut records: Vec<Record> = Vec::new();
    let mut objects: Vec<NumberedObject> = Vec::new();
    loop {
        let more = reader.next(&mut records, &mut objects).await?;
        for (object_line, object) in std::mem::take(&mut objects) {
            loader.push_json(object, object_line).await?;
        }
        for record in std::mem::take(&mut records) {
            if header_pending {
                header_pending = false;
                line += 1;
                if loader.columns.is_none() {
                    let names = record
                        .into_iter()
                        .enumerate()
                        .map(|(i, n)| {
                            n.filter(|n| !n.is_empty()).ok_or_else(|| {
                                Error::new(
                                    ErrorKind::InvalidInput,
                                    OP,
                                    format!("the header's field {} names no column", i + 1),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    loader.set_columns(names)?;
                }
                continue;
            }
            loader.push_csv(record, line).await?;
            line += 1;
        }
        if !more {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(template: &str) -> Result<KeyPlan> {
        KeyPlan::render(&Context::builder("d", "t").build(), template)
    }

    #[test]
    fn the_template_is_rendered_once_with_row_variables_as_parts() {
        let p = plan("iris:{{ ds }}:row:{{ index }}").unwrap();
        assert_eq!(
            p.parts,
            vec![
                Part::Lit(format!(
                    "iris:{}:row:",
                    Context::builder("d", "t").build().ds()
                )),
                Part::Index
            ]
        );
        assert!(p.index_only().is_some());
        let p = plan("u:{{row.id}}/{{ row['a b'] }}-{{ index }}!").unwrap();
        assert_eq!(
            p.parts,
            vec![
                Part::Lit("u:".into()),
                Part::Field("id".into()),
                Part::Lit("/".into()),
                Part::Field("a b".into()),
                Part::Lit("-".into()),
                Part::Index,
                Part::Lit("!".into()),
            ]
        );
        assert_eq!(p.head(), "u:");
        assert!(p.index_only().is_none());
    }

    #[test]
    fn a_template_without_row_variables_or_with_expressions_on_them_is_refused() {
        let e = plan("row:{{ ds }}").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("same key"), "{e}");
        let e = plan("row:{{ index + 1 }}").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Template);
        assert!(e.message().contains("whole substitutions"), "{e}");
        let e = plan("row:{{ row.id | upper }}").unwrap_err();
        assert!(e.message().contains("whole substitutions"), "{e}");
        assert!(mentions_word("a {{ index+1 }}", "index"));
        assert!(!mentions_word("rows:{{ my_index }}", "index"));
        assert!(!mentions_word("rows:{{ ds }}", "row"));
        let code = jinja_code("row:{{ a }}-{% if b %}x{% endif %}{");
        assert!(!code.contains("row") && !code.contains('x'), "{code:?}");
        assert!(
            code.contains(" a ") && code.contains(" if b ") && code.contains("endif"),
            "{code:?}"
        );
        let e = plan("row:{{ index }}{{ ds | nope }}").unwrap_err();
        assert!(!e.message().contains("whole substitutions"), "{e}");
    }

    #[test]
    fn index_keys_are_known_from_the_row_count() {
        let w = Written::new(&plan("row:{{ index }}:v").unwrap());
        assert!(w.contains("row:0:v", 3));
        assert!(w.contains("row:2:v", 3));
        assert!(!w.contains("row:3:v", 3));
        assert!(!w.contains("row:01:v", 3));
        assert!(!w.contains("row::v", 3));
        assert!(!w.contains("row:1", 3));
        assert!(!w.contains("row:-1:v", 3));
        let mut w = Written::new(&plan("{{ row.id }}").unwrap());
        assert!(w.insert("a"));
        assert!(!w.insert("a"));
        assert!(w.contains("a", 1) && !w.contains("b", 1));
    }

    #[test]
    fn numbers_that_print_back_unchanged() {
        for yes in ["0", "5", "-3", "5.1", "3.0", "0.25", "-0.5"] {
            assert!(is_json_number(yes), "{yes}");
        }
        for no in [
            "", "007", "1.50", "1e3", "+5", "-0", "5.", ".5", "NaN", "inf", "1,5", "0x10",
        ] {
            assert!(!is_json_number(no), "{no}");
        }
    }

    #[test]
    fn json_objects_keep_column_order_null_and_escapes() {
        let p = plan("{{ index }}").unwrap();
        let cols = Columns::new(vec!["b".into(), "a\"".into(), "n".into()], &p).unwrap();
        let rec: Record = vec![Some("5.1".into()), Some("x\ny".into()), None];
        assert_eq!(
            String::from_utf8(cols.json(&rec, true)).unwrap(),
            r#"{"b":5.1,"a\"":"x\ny","n":null}"#
        );
        assert_eq!(
            String::from_utf8(cols.json(&rec, false)).unwrap(),
            r#"{"b":"5.1","a\"":"x\ny","n":null}"#
        );
        let e = Columns::new(vec!["a".into(), "a".into()], &p)
            .err()
            .unwrap();
        assert!(e.message().contains("twice"), "{e}");
        let p = plan("{{ row.missing }}").unwrap();
        let e = Columns::new(vec!["a".into()], &p).err().unwrap();
        assert!(e.message().contains("row.missing"), "{e}");
    }

    #[test]
    fn glob_characters_of_the_prefix_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
