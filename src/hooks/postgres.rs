//! [`PostgresHook`]: PostgreSQL through sqlx (feature `postgres`).
//!
//! Built from a connection such as
//! `AIRFLOW_CONN_POSTGRES_DEFAULT='postgres://user:pass@host:5432/db'`:
//! `schema` is the database — Airflow's `database=` argument is
//! `PostgresHook::from_connection(&conn.clone().with_schema("analytics"))` — and the
//! `sslmode` extra is passed to the driver. gust's driver is built without
//! TLS: `sslmode=require`, `verify-ca` and `verify-full` are a
//! [`Config`](crate::ErrorKind::Config) error at once (never a plaintext
//! fallback), and no mode ever starts an unverified TLS session.
//!
//! Large results stream: [`SqlHook::stream_rows`] reads rows as the server sends
//! them (a bounded channel pauses the query when the consumer is slow), and
//! `bulk_dump` / `bulk_load` use `COPY … TO STDOUT` / `COPY … FROM STDIN` in CSV,
//! chunk by chunk. `insert_rows` sends each batch as one JSON parameter expanded by
//! `json_populate_recordset`, so PostgreSQL converts every value to its column's
//! type (a string into a `DATE`, a number into a `NUMERIC`) exactly.
//!
//! # Connecting
//!
//! The hook opens one connection directly before it builds its pool, bounded by
//! the extra `connect_timeout` (seconds, as libpq's; default 10). sqlx's pool
//! treats a refused connection as a server still starting and retries it until
//! its acquire timeout (30 s), then reports only "pool timed out": an unreachable
//! server would take 30 s to report and hide why. The direct connection fails at
//! once with the cause (refused, unknown host, TLS, password, unknown database)
//! and `host:port`. When a later operation's pool times out, one direct
//! connection tells a busy pool (all connections in use: a retryable
//! [`ErrorKind::Timeout`]) from a server that cannot be reached (the cause, as at
//! construction).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use serde_json::{Map, Value};
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgPool, PgPoolCopyExt, PgPoolOptions, PgQueryResult, PgRow,
    PgSslMode,
};
use sqlx::{Column, Connection as _, Postgres, Row as _, TypeInfo, ValueRef};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::sql::implement::{CsvReader, bind, upsert_clause};
use super::sql::{
    Dialect, InsertOptions, Parameters, Row, RunOptions, Sql, SqlHook, StagingLease, bytes_value,
    float_value, quote_columns, quote_table, read_header, rows_per_commit, staging_lock_key,
};
use super::sqlx_common::{self, ExecError, Query, SqlxHook, db_error, send_boxed};
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::csv::CsvFormat;
use crate::formats::{self, ColumnType};
use crate::hooks::scope::HookScope;

/// Conn id used when none is given, as in Airflow.
pub const DEFAULT_CONN_ID: &str = "postgres_default";

/// How long the pool waits for a free connection before a `Timeout` error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections in the pool.
const MAX_CONNECTIONS: u32 = 4;
/// The direct connection's bound when the extra `connect_timeout` is unset.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PostgresHook {
    scope: HookScope,
    pool: PgPool,
    direct: Direct,
}

/// What one connection outside the pool needs besides the pool's options: see
/// [`Direct::connect`].
#[derive(Clone, Copy)]
struct Direct {
    timeout: Duration,
}

impl Direct {
    /// Opens one connection, bypassing the pool, bounded by the connect timeout.
    ///
    /// The pool cannot say why it failed to connect: sqlx retries a refused
    /// connection until the acquire timeout and then reports `PoolTimedOut`. A
    /// direct connection, with `pool`'s options, returns the driver's first
    /// error, with its cause, as an error of `scope`'s operation `op`.
    async fn connect(&self, pool: &PgPool, scope: &HookScope, op: &str) -> Result<PgConnection> {
        let opts = pool.connect_options();
        // `host:port`, for messages.
        let target = || format!("{}:{}", opts.get_host(), opts.get_port());
        match tokio::time::timeout(self.timeout, PgConnection::connect_with(&opts)).await {
            Ok(Ok(c)) => Ok(c),
            // The driver's text lacks the address ("error communicating with
            // database: Connection refused"); a reader needs to know which one.
            Ok(Err(e)) => Err(scope.wrap(
                op,
                sqlx_common::error::into_error(e)
                    .map_message(|m| format!("cannot connect to {}: {m}", target())),
            )),
            Err(_) => Err(scope.error(
                ErrorKind::Timeout,
                op,
                format!(
                    "no answer from {} within {} s (the connection extra connect_timeout sets the limit)",
                    target(),
                    self.timeout.as_secs_f64()
                ),
            )),
        }
    }
}

impl std::fmt::Debug for PostgresHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresHook")
            .field("conn_id", &self.conn_id())
            .finish_non_exhaustive()
    }
}

impl PostgresHook {
    /// See [`SqlHook::describe`]: the prepared statement's columns; a
    /// `numeric` read from a table column gets its declared precision and
    /// scale from `pg_attribute` (the statement description does not carry it).
    async fn describe_inner(
        &self,
        sql: &str,
        parameters: &Parameters,
    ) -> Result<Vec<formats::Column>> {
        use sqlx::Executor as _;
        const OP: &str = "describe";
        let b = bind(Dialect::Postgres, sql, parameters, 1).map_err(|e| self.scope.wrap(OP, e))?;
        let described = (&self.pool)
            .describe(&b.sql)
            .await
            .map_err(|e| db_error(self, OP, e))?;
        let mut out = Vec::with_capacity(described.columns().len());
        for col in described.columns() {
            let ty = match col.type_info().name() {
                "BOOL" => ColumnType::Bool,
                "INT2" => ColumnType::Int16,
                "INT4" => ColumnType::Int32,
                "INT8" => ColumnType::Int64,
                "FLOAT4" => ColumnType::Float32,
                "FLOAT8" => ColumnType::Float64,
                "NUMERIC" => match (col.relation_id(), col.relation_attribute_no()) {
                    (Some(table), Some(attnum)) => {
                        let typmod: i32 = sqlx::query_scalar(
                            "SELECT atttypmod FROM pg_attribute WHERE attrelid = $1 AND attnum = $2",
                        )
                        .bind(table)
                        .bind(attnum)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(|e| db_error(self, OP, e))?;
                        numeric_type(typmod)
                    }
                    _ => ColumnType::Numeric,
                },
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "UNKNOWN" | "CITEXT" => {
                    ColumnType::Text
                }
                "DATE" => ColumnType::Date,
                "TIME" => ColumnType::Time,
                "TIMESTAMP" => ColumnType::Timestamp,
                "TIMESTAMPTZ" => ColumnType::TimestampTz,
                "JSON" | "JSONB" => ColumnType::Json,
                "BYTEA" => ColumnType::Bytes,
                other => ColumnType::Other(other.to_string()),
            };
            out.push(formats::Column::new(col.name(), ty));
        }
        Ok(out)
    }

    /// Connects with the connection `conn_id` (`AIRFLOW_CONN_<CONN_ID>`, else the secrets backend; see [`Connection::get`](crate::Connection::get)).
    pub async fn from_conn_id(conn_id: &str) -> Result<Self> {
        Self::from_connection(&Connection::get(conn_id)?).await
    }

    /// Connects with `conn`, to its `schema` database (another one:
    /// `conn.clone().with_schema(db)`, Airflow's `database=`).
    pub async fn from_connection(conn: &Connection) -> Result<Self> {
        let scope = HookScope::new("postgres", conn);
        // `postgres:/user:pw@host/db` (one slash) parses, as in Airflow, into an
        // empty host and the schema `user:pw@host/db`: connecting to the default
        // localhost:5432 would fail with a misleading cause. The schema is not
        // quoted: it holds the password.
        if conn.host().is_none_or(str::is_empty) && conn.schema().is_some_and(|s| s.contains('@')) {
            return Err(scope.error(
                ErrorKind::Config,
                "connect",
                "the connection has no host and its schema looks like `user:password@host/db`: \
                 the URI probably has one slash after the scheme (write postgres://user:password@host/db)",
            ));
        }
        let mut opts = PgConnectOptions::new()
            .host(conn.host().filter(|h| !h.is_empty()).unwrap_or("localhost"))
            .port(conn.port().unwrap_or(5432))
            .application_name("gust");
        if let Some(login) = conn.login().filter(|l| !l.is_empty()) {
            opts = opts.username(login);
        }
        if let Some(pw) = conn.password() {
            opts = opts.password(pw);
        }
        if let Some(db) = conn.schema().filter(|d| !d.is_empty()) {
            opts = opts.database(db);
        }
        if let Some(mode) = conn.extra_str("sslmode") {
            let mode = PgSslMode::from_str(mode).map_err(|e| {
                scope.error(
                    ErrorKind::Config,
                    "connect",
                    format!("bad sslmode extra: {e}"),
                )
            })?;
            // The driver is built without TLS: it would fail each connection
            // with a retryable error, or (`prefer`, `allow`) go plaintext.
            // A mode that demands TLS cannot be met, so say so once, now.
            if matches!(
                mode,
                PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull
            ) {
                return Err(scope
                    .error(
                        ErrorKind::Config,
                        "connect",
                        "gust connects to PostgreSQL without TLS: sslmode=require, verify-ca \
                         and verify-full cannot be met (use a TLS tunnel, or sslmode=disable \
                         on a trusted network)",
                    )
                    .with("sslmode", conn.extra_str("sslmode").unwrap_or_default()));
            }
            opts = opts.ssl_mode(mode);
        }
        let timeout = match conn.extra_dejson().get("connect_timeout") {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(v) => v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    scope.error(
                        ErrorKind::Config,
                        "connect",
                        "extra connect_timeout must be a positive number of seconds",
                    )
                })?,
        };
        // Lazy: the pool's first connection is made by the first statement.
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(opts);
        let direct = Direct { timeout };
        // One direct connection now, so that an unreachable server or a wrong
        // password fails here, at once and with its cause (see the module docs),
        // rather than as a pool timeout 30 s later: sqlx's pool retries a refused
        // connection until its deadline. The price of failing fast is one extra
        // handshake per hook built, besides the pool's own connections.
        let probe = direct.connect(&pool, &scope, "connect").await?;
        // Closing it politely is best effort: the server already accepted us.
        let _ = probe.close().await;
        tracing::debug!(conn_id = conn.conn_id(), "postgres connected");
        Ok(PostgresHook {
            scope,
            pool,
            direct,
        })
    }

    /// The sqlx pool, for what the trait does not cover.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn insert_inner(
        &self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        options: InsertOptions,
    ) -> Result<u64> {
        let input = |e| self.scope.wrap("insert_rows", e);
        super::sql::check_widths(table, columns, &rows).map_err(input)?;
        let qt = quote_table(Dialect::Postgres, table).map_err(input)?;
        let cols = quote_columns(Dialect::Postgres, columns).map_err(input)?;
        let mut sql = format!(
            "INSERT INTO {qt} ({cols}) SELECT {cols} FROM json_populate_recordset(NULL::{qt}, $1::json)"
        );
        if options.replace {
            sql.push_str(
                &upsert_clause(Dialect::Postgres, table, columns, &options).map_err(input)?,
            );
        }
        let per_commit = rows_per_commit(&options, rows.len());
        // One JSON array parameter per statement (bound as `json`, as bind_all
        // binds any array), expanded by json_populate_recordset.
        sqlx_common::insert_in_groups(self, table, &rows, per_commit, 1000, |batch| {
            let objects: Vec<Value> = batch
                .iter()
                .map(|r| Value::Object(columns.iter().cloned().zip(r.iter().cloned()).collect()))
                .collect();
            Ok((sql.clone(), vec![Value::Array(objects)]))
        })
        .await
    }

    async fn dump_inner(
        &self,
        sql: &str,
        format: &CsvFormat,
        out: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<u64> {
        format
            .validate("bulk_dump")
            .map_err(|e| self.scope.wrap("bulk_dump", e))?;
        let query = sql.trim().trim_end_matches(';');
        let copy = format!("COPY ({query}) TO STDOUT WITH ({})", copy_options(format));
        let mut conn = match self.pool.acquire().await {
            Ok(c) => CopyOutConn::new(c),
            Err(e) => return Err(self.acquire_error("bulk_dump", e).await),
        };
        let mut stream = match conn.conn.copy_out_raw(&copy).await {
            Ok(s) => s,
            Err(e) => return Err(self.acquire_error("bulk_dump", e).await),
        };
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| db_error(self, "bulk_dump", e))?;
            out.write_all(&chunk).await.map_err(|e| {
                self.scope.wrap(
                    "bulk_dump",
                    Error::new(ErrorKind::Io, "", format!("writing the CSV output: {e}"))
                        .with_source(e),
                )
            })?;
            written += chunk.len() as u64;
        }
        drop(stream);
        conn.done = true;
        out.flush()
            .await
            .map_err(|e| self.scope.wrap("bulk_dump", Error::from(e)))?;
        tracing::info!(conn_id = %self.conn_id(), bytes = written, "postgres bulk dump done");
        Ok(written)
    }

    /// `bulk_load_direct`: one transaction of `TRUNCATE` (or `DELETE` when
    /// foreign keys reference the table, which `TRUNCATE` refuses) and `COPY`
    /// in the input's dialect.
    async fn load_direct(
        &self,
        table: &str,
        columns: &[String],
        format: &CsvFormat,
        replace: bool,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        use tokio::io::AsyncReadExt;
        let with_ctx = |e: Error| self.scope.wrap("bulk_load", e).with("table", table);
        let db = |e: sqlx::Error| db_error(self, "bulk_load", e).with("table", table);
        format.validate("bulk_load").map_err(with_ctx)?;
        let target = quote_table(Dialect::Postgres, table).map_err(with_ctx)?;
        let cols = quote_columns(Dialect::Postgres, columns).map_err(with_ctx)?;
        let mut tx = match self.pool.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                return Err(self
                    .acquire_error("bulk_load", e)
                    .await
                    .with("table", table));
            }
        };
        if replace {
            // TRUNCATE writes nothing per row, but fails on a table that foreign
            // keys reference: DELETE there. Both roll back with the COPY.
            // `regclass` parses its text as SQL: give it the quoted name, or a
            // mixed-case or unusual name is folded or refused.
            let referenced: Option<(i32,)> = sqlx::query_as(
                "SELECT 1 FROM pg_constraint WHERE contype = 'f' AND confrelid = $1::regclass LIMIT 1",
            )
            .bind(&target)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let empty = if referenced.is_some() {
                "DELETE FROM"
            } else {
                "TRUNCATE"
            };
            sqlx::query(&format!("{empty} {target}"))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let stmt = format!(
            "COPY {target} ({cols}) FROM STDIN WITH ({})",
            copy_options(format)
        );
        let mut copy = tx.copy_in_raw(&stmt).await.map_err(db)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match input.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    // COPY is one statement: aborting it loads nothing.
                    let _ = copy.abort("input failed").await;
                    return Err(with_ctx(super::sql::input_error("", e)));
                }
            };
            if n == 0 {
                break;
            }
            copy.send(&buf[..n]).await.map_err(db)?;
        }
        let rows = copy.finish().await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::info!(conn_id = %self.conn_id(), table, rows, replace, "postgres direct load done");
        Ok(rows)
    }

    async fn load_inner(
        &self,
        table: &str,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        let with_ctx = |e: Error| self.scope.wrap("bulk_load", e).with("table", table);
        let mut reader = CsvReader::new(input);
        // Parse only the header (for the column list); the rest goes to COPY raw.
        reader.keep_raw = true;
        let columns = read_header(&mut reader).await.map_err(with_ctx)?;
        let cols = quote_columns(Dialect::Postgres, &columns).map_err(with_ctx)?;
        let stmt = format!(
            "COPY {} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true)",
            quote_table(Dialect::Postgres, table).map_err(with_ctx)?
        );
        let mut copy = match self.pool.copy_in_raw(&stmt).await {
            Ok(c) => c,
            Err(e) => {
                return Err(self
                    .acquire_error("bulk_load", e)
                    .await
                    .with("table", table));
            }
        };
        let mut chunk = std::mem::take(&mut reader.raw);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if !chunk.is_empty()
                && let Err(e) = copy.send(chunk.as_slice()).await
            {
                return Err(db_error(self, "bulk_load", e).with("table", table));
            }
            let n = match reader.read_raw(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    // COPY is one statement: aborting it loads nothing.
                    let _ = copy.abort("input failed").await;
                    return Err(with_ctx(e));
                }
            };
            if n == 0 {
                break;
            }
            chunk.clear();
            chunk.extend_from_slice(&buf[..n]);
        }
        let rows = copy
            .finish()
            .await
            .map_err(|e| db_error(self, "bulk_load", e).with("table", table))?;
        tracing::info!(conn_id = %self.conn_id(), table, rows, "postgres bulk load done");
        Ok(rows)
    }
}

/// Binds JSON values by their JSON type: NULL untyped (PostgreSQL infers it from
/// the context), integers `int8`, other numbers `float8`, strings `text`, arrays and
/// objects `jsonb`.
fn bind_all<'q>(mut q: Query<'q, Postgres>, args: &[Value]) -> Query<'q, Postgres> {
    for v in args {
        q = match v {
            Value::Null => q.bind(UntypedNull),
            Value::Bool(b) => q.bind(*b),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => q.bind(i),
                (None, Some(f)) => q.bind(f),
                _ => q.bind(n.to_string()),
            },
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(sqlx::types::Json(other.clone())),
        };
    }
    q
}

/// A NULL parameter of unspecified type (OID 0), so that `INSERT INTO t (int_col)
/// VALUES ($1)` with NULL works: a typed `text` NULL would be rejected.
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(
        &self,
        _: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> std::result::Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

/// The options of `COPY … TO STDOUT WITH (…)` that write `format`'s dialect
/// (validated: the delimiter and marker hold no double quote or line end).
fn copy_options(format: &CsvFormat) -> String {
    let mut options = format!("FORMAT csv, HEADER {}", format.header);
    if format.delimiter != b',' {
        let d = char::from(format.delimiter).to_string();
        options.push_str(&format!(", DELIMITER {}", string_literal(&d)));
    }
    if let Some(marker) = &format.null {
        options.push_str(&format!(", NULL {}", string_literal(marker)));
    }
    options
}

/// `s` as a PostgreSQL string constant that means `s` whatever the session's
/// `standard_conforming_strings`: an escape string (`E'…'`) with backslashes
/// and quotes escaped. A plain `'…'` with only quotes doubled would let a
/// trailing backslash end the string early where that setting is off.
fn string_literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The type of a `numeric` column from its type modifier: `-1` when it has
/// no declared precision, else `((precision << 16) | scale) + 4`.
fn numeric_type(typmod: i32) -> ColumnType {
    if typmod < 4 {
        return ColumnType::Numeric;
    }
    let packed = typmod - 4;
    let precision = (packed >> 16) as u32 & 0xffff;
    // PostgreSQL 15 allows a negative scale (11 bits, signed): no decimal here.
    let scale = packed as u32 & 0x7ff;
    if packed & 0x400 != 0 || scale > precision {
        return ColumnType::Numeric;
    }
    ColumnType::Decimal { precision, scale }
}

fn row_to_json(row: &PgRow) -> Result<Row> {
    let mut out = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let decode = |e: sqlx::Error| {
            Error::new(ErrorKind::Unsupported, "postgres.decode", e.to_string())
                .with("column", col.name())
        };
        let raw = row.try_get_raw(i).map_err(decode)?;
        if raw.is_null() {
            out.insert(col.name().to_string(), Value::Null);
            continue;
        }
        let ty = col.type_info().name().to_string();
        let value = match ty.as_str() {
            "BOOL" => Value::from(row.try_get::<bool, _>(i).map_err(decode)?),
            "INT2" => Value::from(row.try_get::<i16, _>(i).map_err(decode)?),
            "INT4" => Value::from(row.try_get::<i32, _>(i).map_err(decode)?),
            "INT8" => Value::from(row.try_get::<i64, _>(i).map_err(decode)?),
            "FLOAT4" => float_value(row.try_get::<f32, _>(i).map_err(decode)? as f64),
            "FLOAT8" => float_value(row.try_get::<f64, _>(i).map_err(decode)?),
            "NUMERIC" => {
                let d = row
                    .try_get::<sqlx::types::BigDecimal, _>(i)
                    .map_err(decode)?;
                // sqlx pads the scale to whole base-10000 digits ("12.5000"); the
                // binary value's 4th field is the column's display scale ("12.50").
                let dscale = raw
                    .as_bytes()
                    .ok()
                    .filter(|b| b.len() >= 8)
                    .map(|b| i64::from(u16::from_be_bytes([b[6], b[7]])));
                let d = match dscale {
                    Some(scale) if scale <= d.fractional_digit_count() => d.with_scale(scale),
                    _ => d,
                };
                Value::from(d.to_plain_string())
            }
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "UNKNOWN" | "CITEXT" => {
                Value::from(row.try_get::<String, _>(i).map_err(decode)?)
            }
            "DATE" => Value::from(
                row.try_get::<chrono::NaiveDate, _>(i)
                    .map_err(decode)?
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
            "TIME" => Value::from(
                row.try_get::<chrono::NaiveTime, _>(i)
                    .map_err(decode)?
                    .to_string(),
            ),
            "TIMESTAMP" => Value::from(
                row.try_get::<chrono::NaiveDateTime, _>(i)
                    .map_err(decode)?
                    .format("%Y-%m-%dT%H:%M:%S%.f")
                    .to_string(),
            ),
            "TIMESTAMPTZ" => Value::from(
                row.try_get::<chrono::DateTime<chrono::Utc>, _>(i)
                    .map_err(decode)?
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            ),
            "JSON" | "JSONB" => {
                row.try_get::<sqlx::types::Json<Value>, _>(i)
                    .map_err(decode)?
                    .0
            }
            "BYTEA" => bytes_value(&row.try_get::<Vec<u8>, _>(i).map_err(decode)?),
            other => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "postgres.decode",
                    format!(
                        "column {:?} has type {other}, which gust does not map to JSON: cast it in SQL (e.g. {}::text)",
                        col.name(),
                        col.name()
                    ),
                )
                .with("column", col.name()));
            }
        };
        out.insert(col.name().to_string(), value);
    }
    Ok(out)
}

impl SqlxHook for PostgresHook {
    type Db = Postgres;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn scope(&self) -> &HookScope {
        &self.scope
    }

    fn acquire_error<'a>(&'a self, op: &'a str, e: sqlx::Error) -> BoxFuture<'a, Error> {
        Box::pin(async move {
            if !matches!(e, sqlx::Error::PoolTimedOut) {
                return db_error(self, op, e);
            }
            // Busy, or unreachable? One direct connection tells.
            match self.direct.connect(&self.pool, &self.scope, op).await {
                Err(cause) => cause,
                Ok(c) => {
                    let _ = c.close().await;
                    self.scope.wrap(
                        op,
                        Error::new(
                            ErrorKind::Timeout,
                            "",
                            format!(
                                "no pooled connection became free within {} s: all {MAX_CONNECTIONS} \
                                 are in use (the server itself accepts connections)",
                                ACQUIRE_TIMEOUT.as_secs()
                            ),
                        )
                        .with_source(e),
                    )
                }
            }
        })
    }

    fn bind_all<'q>(q: Query<'q, Postgres>, args: &[Value]) -> Query<'q, Postgres> {
        bind_all(q, args)
    }

    fn row_to_json(row: &PgRow) -> std::result::Result<Row, ExecError> {
        row_to_json(row).map_err(ExecError::Decode)
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

#[async_trait]
impl SqlHook for PostgresHook {
    fn conn_id(&self) -> &str {
        self.scope.conn_id().unwrap_or_default()
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn run(&self, sql: Sql, options: RunOptions) -> Result<Value> {
        send_boxed(sqlx_common::run(self, sql, options)).await
    }

    fn stream_rows<'a>(
        &'a self,
        sql: &'a str,
        parameters: Parameters,
    ) -> BoxStream<'a, Result<Row>> {
        sqlx_common::stream_rows(self, sql, parameters)
    }

    async fn insert_rows(
        &self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        options: InsertOptions,
    ) -> Result<u64> {
        send_boxed(self.insert_inner(table, columns, rows, options)).await
    }

    async fn bulk_dump(&self, sql: &str, out: &mut (dyn AsyncWrite + Send + Unpin)) -> Result<u64> {
        send_boxed(self.dump_inner(sql, &CsvFormat::default(), out)).await
    }

    async fn bulk_dump_as(
        &self,
        sql: &str,
        format: &CsvFormat,
        out: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<u64> {
        send_boxed(self.dump_inner(sql, format, out)).await
    }

    async fn bulk_load(
        &self,
        table: &str,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        send_boxed(self.load_inner(table, input)).await
    }

    async fn bulk_load_direct(
        &self,
        table: &str,
        columns: &[String],
        format: &CsvFormat,
        replace: bool,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Option<Result<u64>> {
        Some(send_boxed(self.load_direct(table, columns, format, replace, input)).await)
    }

    async fn describe(&self, sql: &str, parameters: &Parameters) -> Result<Vec<formats::Column>> {
        send_boxed(self.describe_inner(sql, parameters)).await
    }

    fn copy_out_binary<'a>(&'a self, sql: &'a str) -> Option<BoxStream<'a, Result<Vec<u8>>>> {
        const OP: &str = "bulk_dump";
        let query = sql.trim().trim_end_matches(';');
        let copy = format!("COPY ({query}) TO STDOUT (FORMAT binary)");
        let hook = self.clone();
        // The COPY runs on a task of its own, behind a small channel, so the
        // stream owns nothing borrowed and memory stays a few chunks.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>>>(8);
        tokio::spawn(async move {
            let mut conn = match hook.pool.acquire().await {
                Ok(c) => CopyOutConn::new(c),
                Err(e) => {
                    let _ = tx.send(Err(hook.acquire_error(OP, e).await)).await;
                    return;
                }
            };
            let mut stream = match conn.conn.copy_out_raw(&copy).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(hook.acquire_error(OP, e).await)).await;
                    return;
                }
            };
            while let Some(chunk) = stream.next().await {
                let chunk = chunk
                    .map(|c| c.to_vec())
                    .map_err(|e| db_error(&hook, OP, e));
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    return;
                }
            }
            drop(stream);
            conn.done = true;
        });
        Some(
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
                .boxed(),
        )
    }

    /// A shared advisory lock on the name's key, held by a connection of its
    /// own outside the pool: the pool hands a load's statements to any of its
    /// connections, and one held for the whole load would starve the others.
    /// Shared, so that two names with the same key never wait for each other.
    async fn staging_lease(&self, name: &str) -> Result<Option<StagingLease>> {
        const OP: &str = "staging.lease";
        let mut conn = self.direct.connect(&self.pool, &self.scope, OP).await?;
        let (class, key) = staging_lock_keys(name);
        sqlx::query("SELECT pg_advisory_lock_shared($1, $2)::text")
            .bind(class as i32)
            .bind(key as i32)
            .execute(&mut conn)
            .await
            .map_err(|e| db_error(self, OP, e))?;
        Ok(Some(StagingLease::new(conn)))
    }

    /// Whether any session of this database holds (or waits for) the lock
    /// of [`staging_lease`](SqlHook::staging_lease); `pg_locks` shows the two
    /// 32-bit keys as unsigned `oid`s, `objsubid` 2 for the two-key form.
    async fn staging_in_use(&self, name: &str) -> Result<bool> {
        let (class, key) = staging_lock_keys(name);
        let sql = format!(
            "SELECT 1 AS held FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND classid = '{class}'::oid AND objid = '{key}'::oid AND objsubid = 2 LIMIT 1"
        );
        Ok(self.get_first(&sql, Parameters::None).await?.is_some())
    }
}

/// The two 32-bit keys of a staging table's advisory lock: a constant class
/// (`gust` in ASCII) that keeps them apart from an application's own advisory
/// locks, and the low half of the name's hash.
fn staging_lock_keys(name: &str) -> (u32, u32) {
    (0x6775_7374, staging_lock_key(name) as u32)
}

/// A pooled connection running `COPY … TO STDOUT`: closed instead of returned
/// to the pool unless the COPY was read to its end ([`done`](Self::done)).
/// sqlx leaves the server's `ReadyForQuery` unread when the server refuses the
/// COPY (a syntax error, a missing table), and a COPY stopped midway (the
/// output failed, the reader went away, the task was cancelled) is still
/// streaming: either way the next statement on that connection would fail
/// with "expected CopyOutResponse, got ReadyForQuery" or read stale rows.
struct CopyOutConn {
    conn: sqlx::pool::PoolConnection<Postgres>,
    done: bool,
}

impl CopyOutConn {
    fn new(conn: sqlx::pool::PoolConnection<Postgres>) -> Self {
        CopyOutConn { conn, done: false }
    }
}

impl Drop for CopyOutConn {
    fn drop(&mut self) {
        if !self.done {
            self.conn.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_options_quote_markers_whatever_the_string_setting() {
        let format = CsvFormat::new()
            .delimiter(b'\'')
            .null("n\\'); DROP TABLE t; --\\");
        assert_eq!(
            copy_options(&format),
            r"FORMAT csv, HEADER true, DELIMITER E'\'', NULL E'n\\\'); DROP TABLE t; --\\'"
        );
    }
}
