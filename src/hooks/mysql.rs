//! [`MySqlHook`]: MySQL and MariaDB through mysql_async (feature `mysql`).
//!
//! Built from a connection such as
//! `AIRFLOW_CONN_FEATURE_STORE='mysql://root:root@127.0.0.1:3306/mlops'`: `schema`
//! is the database (another one: `MySqlHook::from_connection(&conn.clone().with_schema(db))`,
//! Airflow's `database=`).
//!
//! Reads stream row by row ([`SqlHook::stream_rows`], `bulk_dump`). `bulk_load`
//! feeds `LOAD DATA LOCAL INFILE` from the CSV stream without a temporary file; as
//! in Airflow it is opt-in: set the extra `{"local_infile": true}` (the server
//! must allow it too). The load runs in a transaction and is rolled back when the
//! server reports any warning (a truncated value, a missing field), so a bad file
//! never leaves half a table. It reads PostgreSQL's CSV (a `bulk_dump` of
//! PostgreSQL loads as it is): `t`/`f` into a `tinyint(1)` or `bit(1)` column are
//! 1/0, and a timestamp with a zone (`+09`, `Z`) into a `DATETIME` or
//! `TIMESTAMP` column is stored as UTC.
//!
//! gust's driver is built without TLS: Airflow's `ssl` extra and an `ssl_mode`
//! of `REQUIRED`, `VERIFY_CA` or `VERIFY_IDENTITY` are a
//! [`Config`](crate::ErrorKind::Config) error, never ignored for a plaintext
//! connection.

use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::stream::{BoxStream, StreamExt};
use mysql_async::consts::ColumnType;
use mysql_async::prelude::{Protocol, Queryable};
use mysql_async::{Opts, OptsBuilder, Pool, QueryResult, TxOpts, Value as My};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};

use super::sql::implement::{
    Bound, CsvReader, bind, bound_statements, insert_statement, rows_to_csv, run_statements,
    shape_results,
};
use super::sql::{
    Dialect, Handler, InsertOptions, Parameters, Row, RunOptions, Sql, SqlHook, StagingLease,
    StatementResult, bytes_value, check_widths, float_value, quote_columns, quote_table,
    read_header, rows_per_commit, staging_lock_key,
};
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::{self, ColumnType as Ty};
use crate::hooks::scope::HookScope;

mod error;

/// Conn id used when none is given, as in Airflow.
pub const DEFAULT_CONN_ID: &str = "mysql_default";

/// A pool of connections to one MySQL or MariaDB database.
#[derive(Clone)]
pub struct MySqlHook {
    scope: HookScope,
    pool: Pool,
    /// The pool's options, for a connection outside it (a staging lease).
    opts: Opts,
    local_infile: bool,
    /// `host:port`, for connection errors.
    target: String,
}

impl std::fmt::Debug for MySqlHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlHook")
            .field("conn_id", &self.conn_id())
            .field("local_infile", &self.local_infile)
            .finish_non_exhaustive()
    }
}

/// Which setting of `conn` asks for TLS, which gust's driver (built without
/// it) cannot give: Airflow's `ssl` extra (a CA, a client certificate; a dict or
/// its JSON) and an `ssl_mode` stricter than `PREFERRED`. Ignoring them would
/// connect in plaintext where the user asked for encryption.
fn tls_requested(conn: &Connection) -> Option<String> {
    let extra = conn.extra_dejson();
    match extra.get("ssl") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::String(s))
            if matches!(
                s.trim().to_ascii_lowercase().as_str(),
                "" | "false" | "0" | "{}"
            ) => {}
        Some(Value::Object(m)) if m.is_empty() => {}
        Some(_) => return Some("extra ssl".to_string()),
    }
    let mode = extra
        .get("ssl_mode")
        .and_then(Value::as_str)
        .map(|m| m.trim().to_ascii_uppercase());
    match mode.as_deref() {
        None | Some("" | "DISABLED" | "PREFERRED") => None,
        Some(m) => Some(format!("ssl_mode={m}")),
    }
}

impl MySqlHook {
    /// Connects with the connection `conn_id` (`AIRFLOW_CONN_<CONN_ID>`, else the secrets backend; see [`Connection::get`](crate::Connection::get)).
    pub async fn from_conn_id(conn_id: &str) -> Result<Self> {
        Self::from_connection(&Connection::get(conn_id)?).await
    }

    /// Connects with `conn`, to its `schema` database (another one:
    /// `conn.clone().with_schema(db)`, Airflow's `database=`), and checks the
    /// credentials at once.
    pub async fn from_connection(conn: &Connection) -> Result<Self> {
        let scope = HookScope::new("mysql", conn);
        let local_infile = match conn.extra_dejson().get("local_infile") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1"),
            _ => false,
        };
        if let Some(why) = tls_requested(conn) {
            return Err(scope.error(
                ErrorKind::Config,
                "connect",
                format!(
                    "gust connects to MySQL without TLS, and the connection asks for it ({why}): \
                     use a TLS tunnel, or drop the setting on a trusted network"
                ),
            ));
        }
        let host = conn.host().filter(|h| !h.is_empty()).unwrap_or("localhost");
        let port = conn.port().unwrap_or(3306);
        let opts: Opts = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(conn.login().filter(|l| !l.is_empty()))
            .pass(conn.password())
            .db_name(conn.schema().filter(|d| !d.is_empty()))
            .prefer_socket(false)
            .wait_timeout(Some(28_800))
            .into();
        let pool = Pool::new(opts.clone());
        let hook = MySqlHook {
            scope,
            pool,
            opts,
            local_infile,
            target: format!("{host}:{port}"),
        };
        // The pool connects lazily: connect once now so a wrong password or an
        // unknown host fails here, not in the first task.
        let c = tokio::time::timeout(Duration::from_secs(30), hook.conn())
            .await
            .map_err(|_| {
                hook.scope.error(
                    ErrorKind::Timeout,
                    "connect",
                    format!("no connection to {} within 30 s", hook.target),
                )
            })??;
        drop(c);
        tracing::debug!(conn_id = %hook.conn_id(), "mysql connected");
        Ok(hook)
    }

    /// A driver error of operation `op`: classified, then through the scope.
    fn error(&self, op: &str, e: mysql_async::Error) -> Error {
        self.scope.wrap(op, error::into_error(e))
    }

    /// A failure to get a connection, its message prefixed with the server's
    /// address, which the driver's text lacks ("Connection refused").
    fn connect_error(&self, e: mysql_async::Error) -> Error {
        let target = &self.target;
        self.scope.wrap(
            "connect",
            error::into_error(e).map_message(|m| format!("cannot connect to {target}: {m}")),
        )
    }

    async fn conn(&self) -> Result<mysql_async::Conn> {
        self.pool
            .get_conn()
            .await
            .map_err(|e| self.connect_error(e))
    }

    /// See [`SqlHook::describe`]: the columns of the prepared statement.
    async fn describe_inner(
        &self,
        sql: &str,
        parameters: &Parameters,
    ) -> Result<Vec<formats::Column>> {
        const OP: &str = "describe";
        let b = bind(Dialect::MySql, sql, parameters, 1).map_err(|e| self.scope.wrap(OP, e))?;
        let mut conn = self.conn().await?;
        let stmt = conn
            .prep(b.sql.as_str())
            .await
            .map_err(|e| self.error(OP, e))?;
        let columns = stmt
            .columns()
            .iter()
            .map(|c| formats::Column::new(c.name_str(), column_type(c)))
            .collect();
        conn.close(stmt).await.map_err(|e| self.error(OP, e))?;
        Ok(columns)
    }

    async fn run_inner(&self, sql: Sql, options: RunOptions) -> Result<Value> {
        let bound = bound_statements(Dialect::MySql, &sql, &options, |e| {
            self.scope.wrap("run", e)
        })?;
        let mut conn = self.conn().await?;
        let handler = &options.handler;
        let fail = |e| self.error("run", e);
        let results = if options.autocommit {
            run_statements(
                &mut conn,
                &bound,
                handler,
                |c, b, h, i| exec(c, b, h, i).boxed(),
                fail,
            )
            .await?
        } else {
            let mut tx = conn
                .start_transaction(TxOpts::default())
                .await
                .map_err(|e| self.error("begin", e))?;
            // On error `tx` is dropped, which rolls back statements 1..k.
            let results = run_statements(
                &mut tx,
                &bound,
                handler,
                |c, b, h, i| exec(c, b, h, i).boxed(),
                fail,
            )
            .await?;
            tx.commit().await.map_err(|e| self.error("commit", e))?;
            results
        };
        tracing::info!(conn_id = %self.conn_id(), statements = bound.len(), "mysql run done");
        Ok(shape_results(&sql, &options, results))
    }

    async fn insert_inner(
        &self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        options: InsertOptions,
    ) -> Result<u64> {
        check_widths(table, columns, &rows).map_err(|e| self.scope.wrap("insert_rows", e))?;
        let per_stmt = (65_535 / columns.len().max(1)).clamp(1, 1000);
        let per_commit = rows_per_commit(&options, rows.len());
        let mut conn = self.conn().await?;
        let mut written = 0u64;
        for group in rows.chunks(per_commit) {
            let mut tx = conn
                .start_transaction(TxOpts::default())
                .await
                .map_err(|e| self.error("begin", e))?;
            for batch in group.chunks(per_stmt) {
                let sql = insert_statement(Dialect::MySql, table, columns, batch.len(), &options)
                    .map_err(|e| self.scope.wrap("insert_rows", e))?;
                let args: Vec<My> = batch.iter().flatten().map(to_mysql).collect();
                tx.exec_drop(sql, args)
                    .await
                    .map_err(|e| self.error("insert_rows", e).with("table", table))?;
                written += tx.affected_rows();
            }
            tx.commit()
                .await
                .map_err(|e| self.error("commit", e).with("table", table))?;
        }
        tracing::info!(conn_id = %self.conn_id(), table, rows = written, "mysql rows inserted");
        Ok(written)
    }

    async fn load_inner(
        &self,
        table: &str,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        let ctx = |e: Error| self.scope.wrap("bulk_load", e).with("table", table);
        if !self.local_infile {
            return Err(ctx(Error::new(
                ErrorKind::Config,
                "",
                "LOAD DATA LOCAL INFILE is off: set the connection extra local_infile=true to enable it",
            )));
        }
        let mut reader = CsvReader::new(input);
        let columns = read_header(&mut reader).await.map_err(ctx)?;
        let cols = quote_columns(Dialect::MySql, &columns).map_err(ctx)?;
        // MySQL's default format (tab-separated, backslash escapes, \N for NULL)
        // is what `encode_field` writes: no FIELDS/LINES clause to get wrong.
        let stmt = format!(
            "LOAD DATA LOCAL INFILE 'gust-stream' INTO TABLE {} CHARACTER SET utf8mb4 ({cols})",
            quote_table(Dialect::MySql, table).map_err(ctx)?
        );
        let (mut tx_chunks, rx) =
            futures::channel::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
        let rx = std::sync::Mutex::new(Some(rx));
        let mut conn = self.conn().await?;
        conn.set_infile_handler(async move {
            let rx = rx.lock().ok().and_then(|mut r| r.take());
            Ok(match rx {
                Some(rx) => rx.boxed(),
                None => futures::stream::empty().boxed(),
            })
        });
        let conversions = column_conversions(&mut conn, table, &columns)
            .await
            .map_err(|e| self.error("bulk_load", e).with("table", table))?;
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| self.error("begin", e))?;
        // Zoned timestamps are converted to UTC below; a TIMESTAMP column must
        // read them as UTC too (the transaction's connection goes back to the
        // pool with its session's zone restored).
        let zoned = conversions.contains(&Conversion::Timestamp);
        if zoned {
            tx.query_drop("SET @gust_time_zone = @@session.time_zone, time_zone = '+00:00'")
                .await
                .map_err(|e| self.error("bulk_load", e).with("table", table))?;
        }
        let width = columns.len();
        let feed = async move {
            use futures::SinkExt;
            let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
            let mut line = 1u64;
            while let Some(record) = reader.next().await? {
                line += 1;
                if record.len() != width {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "",
                        format!(
                            "record {line} has {} fields but the header has {width}; nothing was loaded",
                            record.len()
                        ),
                    ));
                }
                for (i, f) in record.iter().enumerate() {
                    if i > 0 {
                        buf.push(b'\t');
                    }
                    let converted = f.as_deref().and_then(|v| conversions[i].apply(v));
                    encode_field(&mut buf, converted.as_deref().or(f.as_deref()));
                }
                buf.push(b'\n');
                if buf.len() >= 60 * 1024 {
                    let chunk = bytes::Bytes::from(std::mem::take(&mut buf));
                    // A closed channel means the server stopped reading: the load's
                    // own error says why.
                    if tx_chunks.send(Ok(chunk)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            let _ = tx_chunks.send(Ok(bytes::Bytes::from(buf))).await;
            Ok(())
        };
        let load = async {
            let res = tx.query_iter(stmt.as_str()).await?;
            let n = res.affected_rows();
            res.drop_result().await?;
            Ok::<u64, mysql_async::Error>(n)
        };
        let (feed, load) = futures::join!(Box::pin(feed), Box::pin(load));
        feed.map_err(ctx)?;
        let rows = load.map_err(|e| self.error("bulk_load", e).with("table", table))?;
        let warning: Option<(String, u32, String)> = tx
            .query_first("SHOW WARNINGS LIMIT 1")
            .await
            .map_err(|e| self.error("bulk_load", e).with("table", table))?;
        if let Some((_, code, message)) = warning {
            // Dropping `tx` rolls the load back.
            return Err(ctx(Error::new(
                ErrorKind::InvalidInput,
                "",
                format!("the server reported warning {code}: {message}; nothing was loaded"),
            )));
        }
        if zoned {
            tx.query_drop("SET time_zone = @gust_time_zone")
                .await
                .map_err(|e| self.error("bulk_load", e).with("table", table))?;
        }
        tx.commit()
            .await
            .map_err(|e| self.error("commit", e).with("table", table))?;
        tracing::info!(conn_id = %self.conn_id(), table, rows, "mysql bulk load done");
        Ok(rows)
    }
}

/// How a CSV value is adapted to its MySQL column, so a dump of another
/// database loads as it would there: PostgreSQL's `t`/`f` booleans and zoned
/// timestamps (`2025-01-08 09:00:00+09`, RFC 3339's `…T…Z`), which MySQL would
/// refuse or truncate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conversion {
    /// Kept as it is.
    None,
    /// `tinyint(1)`/`bit(1)`: `t`/`true`/`f`/`false` → `1`/`0`.
    Boolean,
    /// `DATETIME`/`TIMESTAMP`: a value with a zone → UTC without one.
    Timestamp,
}

impl Conversion {
    /// The converted value, or `None` to keep `v`.
    fn apply(self, v: &str) -> Option<String> {
        match self {
            Conversion::None => None,
            Conversion::Boolean => match v {
                "t" | "true" | "T" | "TRUE" | "True" => Some("1".into()),
                "f" | "false" | "F" | "FALSE" | "False" => Some("0".into()),
                _ => None,
            },
            Conversion::Timestamp => zoned_to_utc(v),
        }
    }
}

/// A timestamp with a zone (`+09`, `+05:30`, `-0800`, `Z`; a space or `T`
/// before the time) as UTC `YYYY-MM-DD HH:MM:SS[.ffffff]`; `None` when `v` has
/// no zone or is no timestamp.
fn zoned_to_utc(v: &str) -> Option<String> {
    let v = v.trim();
    let t = v.replacen('T', " ", 1);
    let parsed = if let Some(naive) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
        chrono::NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f").ok()?
    } else {
        // %#z takes +09, +0900 and +09:00.
        chrono::DateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S%.f%#z")
            .ok()?
            .naive_utc()
    };
    Some(parsed.format("%Y-%m-%d %H:%M:%S%.f").to_string())
}

/// The conversion of each loaded column, from the table's column types.
async fn column_conversions(
    conn: &mut mysql_async::Conn,
    table: &str,
    columns: &[String],
) -> std::result::Result<Vec<Conversion>, mysql_async::Error> {
    let (schema, name) = match table.rsplit_once('.') {
        Some((s, n)) => (Some(s.trim_matches('`')), n.trim_matches('`')),
        None => (None, table.trim_matches('`')),
    };
    let types: Vec<(String, String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
            (schema, name),
        )
        .await?;
    Ok(columns
        .iter()
        .map(|c| {
            let Some((_, data, column)) = types.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(c))
            else {
                return Conversion::None;
            };
            match (
                data.to_ascii_lowercase().as_str(),
                column.to_ascii_lowercase(),
            ) {
                ("tinyint", ct) if ct.starts_with("tinyint(1)") => Conversion::Boolean,
                ("bit", ct) if ct == "bit(1)" => Conversion::Boolean,
                ("datetime" | "timestamp", _) => Conversion::Timestamp,
                _ => Conversion::None,
            }
        })
        .collect())
}

/// Writes one field in LOAD DATA's default escaping.
fn encode_field(out: &mut Vec<u8>, field: Option<&str>) {
    let Some(f) = field else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for b in f.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            b => out.push(b),
        }
    }
}

/// Runs one statement on a connection or transaction: the text protocol without
/// arguments (any statement works), a prepared statement with them.
async fn exec<Q: Queryable>(
    q: &mut Q,
    b: &Bound,
    handler: &Handler,
    index: usize,
) -> std::result::Result<StatementResult, mysql_async::Error> {
    if b.args.is_empty() {
        let res = q.query_iter(b.sql.as_str()).await?;
        collect(res, handler, index).await
    } else {
        let params: Vec<My> = b.args.iter().map(to_mysql).collect();
        let res = q.exec_iter(b.sql.as_str(), params).await?;
        collect(res, handler, index).await
    }
}

async fn collect<P: Protocol>(
    mut res: QueryResult<'_, '_, P>,
    handler: &Handler,
    index: usize,
) -> std::result::Result<StatementResult, mysql_async::Error> {
    let mut rows = Vec::new();
    if handler.wants_rows() {
        while let Some(row) = res.next().await? {
            rows.push(row_to_json(&row));
        }
    }
    let rows_affected = res.affected_rows();
    res.drop_result().await?;
    Ok(StatementResult {
        index,
        rows,
        rows_affected,
    })
}

fn to_mysql(v: &Value) -> My {
    match v {
        Value::Null => My::NULL,
        Value::Bool(b) => My::Int(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => My::Int(i),
            (_, Some(u), _) => My::UInt(u),
            (_, _, Some(f)) => My::Double(f),
            _ => My::Bytes(n.to_string().into_bytes()),
        },
        Value::String(s) => My::Bytes(s.clone().into_bytes()),
        // Arrays and objects as JSON text, which a JSON column parses.
        other => My::Bytes(other.to_string().into_bytes()),
    }
}

const BINARY_CHARSET: u16 = 63;

/// The type of a result column, wide enough for its values: an unsigned
/// column takes the next wider type, `BIGINT UNSIGNED` a `DECIMAL(20, 0)`.
fn column_type(c: &mysql_async::Column) -> Ty {
    use ColumnType::*;
    let unsigned = c
        .flags()
        .contains(mysql_async::consts::ColumnFlags::UNSIGNED_FLAG);
    match c.column_type() {
        MYSQL_TYPE_TINY | MYSQL_TYPE_YEAR => Ty::Int16,
        MYSQL_TYPE_SHORT if !unsigned => Ty::Int16,
        MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 => Ty::Int32,
        MYSQL_TYPE_LONG if !unsigned => Ty::Int32,
        MYSQL_TYPE_LONG => Ty::Int64,
        MYSQL_TYPE_LONGLONG if !unsigned => Ty::Int64,
        MYSQL_TYPE_LONGLONG => Ty::Decimal {
            precision: 20,
            scale: 0,
        },
        MYSQL_TYPE_BIT => Ty::Decimal {
            precision: 20,
            scale: 0,
        },
        MYSQL_TYPE_FLOAT => Ty::Float32,
        MYSQL_TYPE_DOUBLE => Ty::Float64,
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => {
            // The display length counts the point and, when signed, the sign.
            let scale = u32::from(c.decimals());
            let precision = c
                .column_length()
                .saturating_sub(u32::from(scale > 0) + u32::from(!unsigned));
            Ty::Decimal { precision, scale }
        }
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => Ty::Date,
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => Ty::Time,
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => Ty::Timestamp,
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => Ty::TimestampTz,
        MYSQL_TYPE_JSON => Ty::Json,
        MYSQL_TYPE_NULL => Ty::Text,
        MYSQL_TYPE_GEOMETRY => Ty::Other("GEOMETRY".into()),
        _ if c.character_set() == BINARY_CHARSET => Ty::Bytes,
        _ => Ty::Text,
    }
}

fn row_to_json(row: &mysql_async::Row) -> Row {
    let mut out = Map::new();
    for (i, col) in row.columns_ref().iter().enumerate() {
        let v = row.as_ref(i).unwrap_or(&My::NULL);
        out.insert(
            col.name_str().into_owned(),
            cell(v, col.column_type(), col.character_set()),
        );
    }
    out
}

fn two(n: impl Into<u32>) -> String {
    format!("{:02}", n.into())
}

fn cell(v: &My, ty: ColumnType, charset: u16) -> Value {
    use ColumnType::*;
    match v {
        My::NULL => Value::Null,
        My::Int(i) => Value::from(*i),
        My::UInt(u) => Value::from(*u),
        My::Float(f) => float_value(f64::from(*f)),
        My::Double(d) => float_value(*d),
        My::Date(y, mo, d, h, mi, s, us) => {
            let date = format!("{y:04}-{}-{}", two(*mo), two(*d));
            if ty == MYSQL_TYPE_DATE || ty == MYSQL_TYPE_NEWDATE {
                Value::from(date)
            } else {
                let frac = if *us > 0 {
                    format!(".{us:06}")
                } else {
                    String::new()
                };
                Value::from(format!("{date}T{}:{}:{}{frac}", two(*h), two(*mi), two(*s)))
            }
        }
        My::Time(neg, days, h, mi, s, us) => {
            let hours = days * 24 + u32::from(*h);
            let frac = if *us > 0 {
                format!(".{us:06}")
            } else {
                String::new()
            };
            let sign = if *neg { "-" } else { "" };
            Value::from(format!("{sign}{hours:02}:{}:{}{frac}", two(*mi), two(*s)))
        }
        // The text protocol sends every value as bytes: type them by the column.
        My::Bytes(b) => {
            let text = || String::from_utf8_lossy(b).into_owned();
            match ty {
                MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_LONG | MYSQL_TYPE_INT24
                | MYSQL_TYPE_LONGLONG | MYSQL_TYPE_YEAR => {
                    let t = text();
                    t.parse::<i64>()
                        .map(Value::from)
                        .or_else(|_| t.parse::<u64>().map(Value::from))
                        .unwrap_or(Value::String(t))
                }
                MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => {
                    let t = text();
                    t.parse::<f64>()
                        .map(float_value)
                        .unwrap_or(Value::String(t))
                }
                MYSQL_TYPE_DATETIME
                | MYSQL_TYPE_TIMESTAMP
                | MYSQL_TYPE_DATETIME2
                | MYSQL_TYPE_TIMESTAMP2 => Value::from(text().replacen(' ', "T", 1)),
                MYSQL_TYPE_JSON => {
                    serde_json::from_slice(b).unwrap_or_else(|_| Value::String(text()))
                }
                MYSQL_TYPE_BIT => {
                    Value::from(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
                }
                // DECIMAL stays a string (exact digits); dates and times are text
                // already. Both report the binary charset, so they come before it.
                MYSQL_TYPE_DECIMAL
                | MYSQL_TYPE_NEWDECIMAL
                | MYSQL_TYPE_DATE
                | MYSQL_TYPE_NEWDATE
                | MYSQL_TYPE_TIME
                | MYSQL_TYPE_TIME2 => Value::String(text()),
                _ if charset == BINARY_CHARSET => bytes_value(b),
                _ => Value::String(text()),
            }
        }
    }
}

#[async_trait]
impl SqlHook for MySqlHook {
    fn conn_id(&self) -> &str {
        self.scope.conn_id().unwrap_or_default()
    }

    fn dialect(&self) -> Dialect {
        Dialect::MySql
    }

    async fn run(&self, sql: Sql, options: RunOptions) -> Result<Value> {
        self.run_inner(sql, options).await
    }

    fn stream_rows<'a>(
        &'a self,
        sql: &'a str,
        parameters: Parameters,
    ) -> BoxStream<'a, Result<Row>> {
        let bound = bind(Dialect::MySql, sql, &parameters, 1);
        let this = self.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Row>>(256);
        tokio::spawn(async move {
            let produce = async {
                let b = bound.map_err(|e| this.scope.wrap("get_records", e))?;
                let mut conn = this.conn().await?;
                let err = |e| this.error("get_records", e);
                let params: Vec<My> = b.args.iter().map(to_mysql).collect();
                let mut res = if params.is_empty() {
                    // The text protocol has its own result type: read it here.
                    let mut res = conn.query_iter(b.sql.as_str()).await.map_err(err)?;
                    while let Some(row) = res.next().await.map_err(err)? {
                        if tx.send(Ok(row_to_json(&row))).await.is_err() {
                            return Ok(());
                        }
                    }
                    return Ok(());
                } else {
                    conn.exec_iter(b.sql.as_str(), params).await.map_err(err)?
                };
                while let Some(row) = res.next().await.map_err(err)? {
                    if tx.send(Ok(row_to_json(&row))).await.is_err() {
                        return Ok(());
                    }
                }
                Ok::<(), Error>(())
            };
            if let Err(e) = produce.await {
                let _ = tx.send(Err(e)).await;
            }
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) })
            .boxed()
    }

    async fn insert_rows(
        &self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        options: InsertOptions,
    ) -> Result<u64> {
        self.insert_inner(table, columns, rows, options).await
    }

    async fn describe(&self, sql: &str, parameters: &Parameters) -> Result<Vec<formats::Column>> {
        self.describe_inner(sql, parameters).await
    }

    async fn bulk_dump(&self, sql: &str, out: &mut (dyn AsyncWrite + Send + Unpin)) -> Result<u64> {
        rows_to_csv(
            self.stream_rows(sql, Parameters::None),
            out,
            "mysql.bulk_dump",
        )
        .await
        .map_err(|e| self.scope.wrap("bulk_dump", e))
    }

    async fn bulk_load(
        &self,
        table: &str,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        self.load_inner(table, input).await
    }

    /// A named lock (`GET_LOCK`, released when its session ends) held by a
    /// connection of its own outside the pool, so the load's statements keep
    /// every pooled connection. Lock names are server-wide and at most 64
    /// characters: the name's hash. Taken without waiting: if another session
    /// holds the same key (a hash collision), its lock marks the name in use
    /// as well.
    async fn staging_lease(&self, name: &str) -> Result<Option<StagingLease>> {
        const OP: &str = "staging.lease";
        let mut conn = mysql_async::Conn::new(self.opts.clone())
            .await
            .map_err(|e| self.connect_error(e))?;
        let _: Option<Option<i64>> = conn
            .exec_first("SELECT GET_LOCK(?, 0)", (staging_lock_name(name),))
            .await
            .map_err(|e| self.error(OP, e))?;
        Ok(Some(StagingLease::new(conn)))
    }

    /// Whether a session holds the lock of [`staging_lease`](SqlHook::staging_lease).
    async fn staging_in_use(&self, name: &str) -> Result<bool> {
        let row = self
            .get_first(
                "SELECT IS_USED_LOCK(?) AS owner",
                Parameters::from(serde_json::json!([staging_lock_name(name)])),
            )
            .await?;
        Ok(row.is_some_and(|r| !r["owner"].is_null()))
    }
}

/// The `GET_LOCK` name of a staging table.
fn staging_lock_name(name: &str) -> String {
    format!("gust_staging_{:016x}", staging_lock_key(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_booleans_and_zoned_timestamps_are_converted() {
        assert_eq!(Conversion::Boolean.apply("t").as_deref(), Some("1"));
        assert_eq!(Conversion::Boolean.apply("false").as_deref(), Some("0"));
        assert_eq!(Conversion::Boolean.apply("1"), None);
        let ts = |v| Conversion::Timestamp.apply(v);
        assert_eq!(
            ts("2025-01-08 09:00:00+09").as_deref(),
            Some("2025-01-08 00:00:00")
        );
        assert_eq!(
            ts("1999-12-31 23:59:59.123456+00").as_deref(),
            Some("1999-12-31 23:59:59.123456")
        );
        assert_eq!(
            ts("2025-01-08T00:00:00Z").as_deref(),
            Some("2025-01-08 00:00:00")
        );
        assert_eq!(
            ts("2025-01-08 05:30:00+05:30").as_deref(),
            Some("2025-01-08 00:00:00")
        );
        assert_eq!(ts("2025-01-08 00:00:00"), None, "no zone: kept");
        assert_eq!(ts("not a time"), None);
        assert_eq!(Conversion::None.apply("t"), None);
    }
}
