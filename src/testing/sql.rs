//! [`FaultySql`]: any [`SqlHook`] with recorded statements and scripted faults.

use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Calls, Fault, Script};
use crate::error::{Error, Result};
use crate::formats::Column;
use crate::formats::csv::CsvFormat;
use crate::hooks::sql::{Dialect, InsertOptions, Parameters, Row, RunOptions, Sql, SqlHook};

/// The calls of a [`SqlHook`] a [`FaultySql`] records and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SqlOp {
    /// `run`.
    Run,
    /// `stream_rows` (and `get_records`, `get_first`, `test_connection`).
    StreamRows,
    /// `insert_rows`.
    InsertRows,
    /// `bulk_dump` / `bulk_dump_as`.
    BulkDump,
    /// `bulk_load` / `bulk_load_direct`.
    BulkLoad,
    /// `copy_out_binary`.
    CopyOutBinary,
    /// `describe`.
    Describe,
}

impl SqlOp {
    fn name(self) -> &'static str {
        match self {
            SqlOp::Run => "run",
            SqlOp::StreamRows => "stream_rows",
            SqlOp::InsertRows => "insert_rows",
            SqlOp::BulkDump => "bulk_dump",
            SqlOp::BulkLoad => "bulk_load",
            SqlOp::CopyOutBinary => "copy_out_binary",
            SqlOp::Describe => "describe",
        }
    }
}

/// A [`SqlHook`] that forwards to `inner` — an in-memory SQLite in a unit
/// test, which runs real SQL — and records what each call was given (the
/// statements, or the table of a load), failing or delaying the calls a rule
/// names: to test that an operator issues the right SQL and that a failed
/// statement leaves nothing half done.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
/// use gust::ErrorKind;
/// use gust::hooks::sql::{RunOptions, SqlHook};
/// use gust::hooks::sqlite::SqliteHook;
/// use gust::testing::{Fault, FaultySql, SqlOp};
///
/// let db = FaultySql::new(SqliteHook::open("test", ":memory:").await?)
///     .fail_nth(SqlOp::Run, 2, Fault::error(ErrorKind::Unavailable));
/// db.run("CREATE TABLE t (x INTEGER)".into(), RunOptions::default()).await?;
/// let e = db.run("INSERT INTO t VALUES (1)".into(), RunOptions::default()).await.unwrap_err();
/// assert!(e.is_retryable());
/// assert_eq!(db.statements(), [
///     (SqlOp::Run, "CREATE TABLE t (x INTEGER)".to_string()),
///     (SqlOp::Run, "INSERT INTO t VALUES (1)".to_string()),
/// ]);
/// # Ok(()) }
/// ```
pub struct FaultySql<H> {
    inner: H,
    script: Script<SqlOp>,
    recorded: Mutex<Vec<(SqlOp, String)>>,
    /// Reads answered from the script: `(text the query contains, rows)`.
    answers: Vec<(String, Vec<Row>)>,
}

impl<H: SqlHook> std::fmt::Debug for FaultySql<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultySql")
            .field("conn_id", &self.inner.conn_id())
            .field("rules", &self.script.rules)
            .finish_non_exhaustive()
    }
}

impl<H: SqlHook> FaultySql<H> {
    /// `inner` with no faults yet.
    pub fn new(inner: H) -> Self {
        FaultySql {
            inner,
            script: Script::new(),
            recorded: Mutex::new(Vec::new()),
            answers: Vec::new(),
        }
    }

    /// Reads whose query contains `text` (`stream_rows`, `get_records`,
    /// `get_first`) return `rows` instead of asking `inner`: the rows a
    /// PostgreSQL or MySQL query would give, for an operator under test
    /// whose SQL SQLite cannot run. The first matching answer wins; the read
    /// is recorded and its faults apply as for any other.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
    /// use gust::hooks::sql::{Parameters, SqlHook};
    /// use gust::hooks::sqlite::SqliteHook;
    /// use gust::testing::FaultySql;
    /// use serde_json::json;
    ///
    /// let row = json!({"relname": "iris", "n_live_tup": 150});
    /// let db = FaultySql::new(SqliteHook::open("warehouse", ":memory:").await?)
    ///     .answer("pg_stat_user_tables", vec![row.as_object().unwrap().clone()]);
    /// let rows = db
    ///     .get_records("SELECT relname, n_live_tup FROM pg_stat_user_tables", Parameters::None)
    ///     .await?;
    /// assert_eq!(rows[0]["n_live_tup"], 150);
    /// # Ok(()) }
    /// ```
    pub fn answer(mut self, text: impl Into<String>, rows: Vec<Row>) -> Self {
        self.answers.push((text.into(), rows));
        self
    }

    /// The `n`-th call of `op` (1 for the first) gets `fault`.
    pub fn fail_nth(mut self, op: SqlOp, n: usize, fault: Fault) -> Self {
        self.script.rules.push((op, Calls::Nth(n.max(1)), fault));
        self
    }

    /// Every call of `op` from the `n`-th on gets `fault`.
    pub fn fail_from(mut self, op: SqlOp, n: usize, fault: Fault) -> Self {
        self.script.rules.push((op, Calls::From(n.max(1)), fault));
        self
    }

    /// How many calls of `op` were made (failed ones included).
    pub fn calls(&self, op: SqlOp) -> usize {
        self.script.calls(op)
    }

    /// What every call was given, in order: each statement of a `run`, the
    /// query of a read, the table of an insert or a load.
    pub fn statements(&self) -> Vec<(SqlOp, String)> {
        self.recorded.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The hook behind the faults.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    fn record(&self, op: SqlOp, what: &str) {
        if let Ok(mut r) = self.recorded.lock() {
            r.push((op, what.to_string()));
        }
    }

    async fn before(&self, op: SqlOp, what: &str) -> Result<()> {
        self.record(op, what);
        let conn_id = self.inner.conn_id().to_string();
        self.script
            .apply(op, |kind, _| {
                Error::new(kind, format!("faulty.{}", op.name()), "injected fault")
                    .with("conn_id", conn_id)
            })
            .await
    }

    /// A stream whose first item is the call's error, when it has one.
    fn stream_fault<'a, T: Send + 'a>(
        &'a self,
        op: SqlOp,
        what: &'a str,
        inner: impl FnOnce() -> BoxStream<'a, Result<T>> + Send + 'a,
    ) -> BoxStream<'a, Result<T>> {
        futures::stream::once(async move {
            match self.before(op, what).await {
                Ok(()) => inner(),
                Err(e) => futures::stream::once(async { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

#[async_trait]
impl<H: SqlHook> SqlHook for FaultySql<H> {
    fn conn_id(&self) -> &str {
        self.inner.conn_id()
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    fn quote_identifier(&self, name: &str) -> Result<String> {
        self.inner.quote_identifier(name)
    }

    async fn run(&self, sql: Sql, options: RunOptions) -> Result<Value> {
        let text = match &sql {
            Sql::One(s) => s.clone(),
            Sql::Many(v) => v.join(";\n"),
        };
        self.before(SqlOp::Run, &text).await?;
        self.inner.run(sql, options).await
    }

    fn stream_rows<'a>(
        &'a self,
        sql: &'a str,
        parameters: Parameters,
    ) -> BoxStream<'a, Result<Row>> {
        let answer = self
            .answers
            .iter()
            .find(|(text, _)| sql.contains(text.as_str()))
            .map(|(_, rows)| rows.clone());
        self.stream_fault(SqlOp::StreamRows, sql, move || match answer {
            Some(rows) => futures::stream::iter(rows.into_iter().map(Ok)).boxed(),
            None => self.inner.stream_rows(sql, parameters),
        })
    }

    async fn insert_rows(
        &self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        options: InsertOptions,
    ) -> Result<u64> {
        self.before(SqlOp::InsertRows, table).await?;
        self.inner.insert_rows(table, columns, rows, options).await
    }

    async fn bulk_dump(&self, sql: &str, out: &mut (dyn AsyncWrite + Send + Unpin)) -> Result<u64> {
        self.before(SqlOp::BulkDump, sql).await?;
        self.inner.bulk_dump(sql, out).await
    }

    async fn bulk_dump_as(
        &self,
        sql: &str,
        format: &CsvFormat,
        out: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<u64> {
        self.before(SqlOp::BulkDump, sql).await?;
        self.inner.bulk_dump_as(sql, format, out).await
    }

    async fn bulk_load(
        &self,
        table: &str,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        self.before(SqlOp::BulkLoad, table).await?;
        self.inner.bulk_load(table, input).await
    }

    async fn bulk_load_direct(
        &self,
        table: &str,
        columns: &[String],
        format: &CsvFormat,
        replace: bool,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Option<Result<u64>> {
        if let Err(e) = self.before(SqlOp::BulkLoad, table).await {
            return Some(Err(e));
        }
        self.inner
            .bulk_load_direct(table, columns, format, replace, input)
            .await
    }

    fn copy_out_binary<'a>(&'a self, sql: &'a str) -> Option<BoxStream<'a, Result<Vec<u8>>>> {
        let inner = self.inner.copy_out_binary(sql)?;
        Some(self.stream_fault(SqlOp::CopyOutBinary, sql, move || inner))
    }

    async fn describe(&self, sql: &str, parameters: &Parameters) -> Result<Vec<Column>> {
        self.before(SqlOp::Describe, sql).await?;
        self.inner.describe(sql, parameters).await
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::hooks::sqlite::SqliteHook;
    use futures::TryStreamExt;

    #[tokio::test]
    async fn records_forwards_and_fails_as_scripted() {
        let db = FaultySql::new(SqliteHook::open("t", ":memory:").await.unwrap())
            .fail_nth(SqlOp::StreamRows, 2, Fault::error(ErrorKind::Timeout))
            .fail_from(
                SqlOp::BulkLoad,
                1,
                Fault::error(ErrorKind::Io).retryable(false),
            );
        db.run("CREATE TABLE t (x INTEGER)".into(), RunOptions::default())
            .await
            .unwrap();
        let mut csv: &[u8] = b"x\n1\n2\n";
        let e = db.bulk_load("t", &mut csv).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(!e.is_retryable());
        assert_eq!(e.context("conn_id"), Some("t"));
        let rows: Vec<Row> = db
            .stream_rows("SELECT count(*) AS n FROM t", Parameters::None)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(rows[0]["n"], 0, "the failed load loaded nothing");
        let e = db
            .get_records("SELECT 1", Parameters::None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(e.context("call"), Some("2"));
        assert_eq!(db.calls(SqlOp::StreamRows), 2);
        assert_eq!(
            db.statements(),
            [
                (SqlOp::Run, "CREATE TABLE t (x INTEGER)".to_string()),
                (SqlOp::BulkLoad, "t".to_string()),
                (SqlOp::StreamRows, "SELECT count(*) AS n FROM t".to_string()),
                (SqlOp::StreamRows, "SELECT 1".to_string()),
            ]
        );
    }

    #[tokio::test]
    async fn answers_scripted_reads_with_their_faults() {
        let row = |n: i64| serde_json::json!({"n": n}).as_object().unwrap().clone();
        let db = FaultySql::new(SqliteHook::open("t", ":memory:").await.unwrap())
            .answer("FROM remote_table", vec![row(1), row(2)])
            .answer("remote", vec![row(9)])
            .fail_nth(SqlOp::StreamRows, 2, Fault::error(ErrorKind::Unavailable));
        let q = "SELECT n FROM remote_table";
        let rows = db.get_records(q, Parameters::None).await.unwrap();
        assert_eq!(rows, [row(1), row(2)], "the first matching answer");
        let e = db.get_first(q, Parameters::None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        let first = db
            .get_first("SELECT 1 AS n", Parameters::None)
            .await
            .unwrap();
        assert_eq!(first, Some(row(1)), "no answer: SQLite ran it");
        assert_eq!(db.statements().len(), 3);
    }
}
