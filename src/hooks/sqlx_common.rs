//! What the two sqlx-based hooks (PostgreSQL, SQLite) share: error
//! classification (`error.rs`), row streaming through a bounded channel, and
//! `run` itself, generic over the sqlx database. Each hook keeps only what
//! differs ([`SqlxHook`]): how it binds a JSON value, how it maps a row to JSON,
//! and its [`HookScope`], through which every error it returns goes.

pub(crate) mod error;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::Value;
use sqlx::{Database, Executor, IntoArguments};

use super::sql::implement::{Bound, bind, bound_statements, run_statements, shape_results};
use super::sql::{Handler, Parameters, Row, RunOptions, Sql, SqlHook, StatementResult};
use crate::error::{Error, Result};
use crate::hooks::scope::HookScope;

/// A sqlx query of database `DB`, as the hooks bind it.
pub(crate) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// Why one statement failed: the driver, or mapping its rows to JSON.
pub(crate) enum ExecError {
    Db(sqlx::Error),
    // Only PostgreSQL maps rows with gust's own errors; SQLite's are sqlx errors.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Decode(Error),
}

impl From<sqlx::Error> for ExecError {
    fn from(e: sqlx::Error) -> Self {
        ExecError::Db(e)
    }
}

/// A sqlx database the shared code can run statements on.
///
/// sqlx states what makes a database usable through two higher-ranked bounds
/// (a `&mut` connection is an [`Executor`] for every lifetime; the arguments
/// convert for every lifetime). They are written once, on the blanket impl
/// below, for every database that meets them (PostgreSQL, SQLite); the generic
/// code asks only `H::Db: SqlxDb` and runs statements through these methods,
/// as sqlx's own `AnyDriver` captures them once in function pointers.
///
/// A supertrait bound or a `where` clause on [`SqlxHook`] cannot carry them:
/// Rust implies only bounds whose subject is `Self` (supertraits and bounds
/// on associated types), and these are on `&'c mut DB::Connection` and
/// `DB::Arguments<'q>`, so every generic function would have to repeat them
/// (rust-lang/rust#20671). Methods of a trait with a blanket impl need no
/// such repetition.
pub(crate) trait SqlxDb: Database {
    /// Runs `q` on `conn` (a connection or a transaction's); its summary.
    fn execute<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        q: Query<'q, Self>,
    ) -> BoxFuture<'e, std::result::Result<Self::QueryResult, sqlx::Error>>;

    /// Runs `q` on `conn`; all its rows.
    fn fetch_all<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        q: Query<'q, Self>,
    ) -> BoxFuture<'e, std::result::Result<Vec<Self::Row>, sqlx::Error>>;

    /// Runs `q` on a connection of `pool`; its rows as the server sends them.
    fn fetch<'e, 'q: 'e>(
        pool: &'e sqlx::Pool<Self>,
        q: Query<'q, Self>,
    ) -> BoxStream<'e, std::result::Result<Self::Row, sqlx::Error>>;
}

impl<DB: Database> SqlxDb for DB
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    fn execute<'e, 'q: 'e>(
        conn: &'e mut DB::Connection,
        q: Query<'q, DB>,
    ) -> BoxFuture<'e, std::result::Result<DB::QueryResult, sqlx::Error>> {
        conn.execute(q)
    }

    fn fetch_all<'e, 'q: 'e>(
        conn: &'e mut DB::Connection,
        q: Query<'q, DB>,
    ) -> BoxFuture<'e, std::result::Result<Vec<DB::Row>, sqlx::Error>> {
        conn.fetch_all(q)
    }

    fn fetch<'e, 'q: 'e>(
        pool: &'e sqlx::Pool<DB>,
        q: Query<'q, DB>,
    ) -> BoxStream<'e, std::result::Result<DB::Row, sqlx::Error>> {
        pool.fetch(q)
    }
}

/// What a sqlx-based hook adds to the shared code: its database and pool, its
/// type mapping both ways, and its error scope (system, conn id, secrets).
pub(crate) trait SqlxHook: SqlHook + Clone + 'static {
    /// The sqlx database.
    type Db: SqlxDb;

    /// The pool statements run on.
    fn pool(&self) -> &sqlx::Pool<Self::Db>;
    /// The scope every error of the hook goes through.
    fn scope(&self) -> &HookScope;
    /// Binds JSON values as the database's parameters.
    fn bind_all<'q>(q: Query<'q, Self::Db>, args: &[Value]) -> Query<'q, Self::Db>;
    /// One row as a JSON object.
    fn row_to_json(row: &<Self::Db as Database>::Row) -> std::result::Result<Row, ExecError>;
    /// Rows a statement changed, as the driver reports them.
    fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;

    /// The error of operation `op` whose pool failed to hand out a connection.
    /// A pool that timed out is either busy or cannot connect at all (sqlx
    /// retries a refused connection until the timeout and drops the cause); a
    /// hook that can connect directly overrides this to say which. Other errors,
    /// and hooks that cannot tell, get [`db_error`].
    fn acquire_error<'a>(&'a self, op: &'a str, e: sqlx::Error) -> BoxFuture<'a, Error> {
        Box::pin(std::future::ready(db_error(self, op, e)))
    }
}

/// A driver error of operation `op`: classified, then through the hook's scope.
pub(crate) fn db_error<H: SqlxHook>(hook: &H, op: &str, e: sqlx::Error) -> Error {
    hook.scope().wrap(op, error::into_error(e))
}

/// A statement failure of operation `op` as the hook's error.
fn exec_error<H: SqlxHook>(hook: &H, e: ExecError, op: &str) -> Error {
    match e {
        ExecError::Db(e) => db_error(hook, op, e),
        ExecError::Decode(e) => hook.scope().wrap(op, e),
    }
}

/// Runs one bound statement on a connection (or a transaction's), reading its
/// rows only when the handler keeps them. Boxed as `Send` for
/// [`run_statements`]'s sake.
fn exec<'a, H: SqlxHook>(
    conn: &'a mut <H::Db as Database>::Connection,
    b: &'a Bound,
    handler: &'a Handler,
    index: usize,
) -> BoxFuture<'a, std::result::Result<StatementResult, ExecError>> {
    Box::pin(async move {
        let q = H::bind_all(sqlx::query(&b.sql), &b.args);
        if handler.wants_rows() {
            let rows = <H::Db as SqlxDb>::fetch_all(conn, q).await?;
            let rows = rows
                .iter()
                .map(H::row_to_json)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(StatementResult {
                index,
                rows,
                rows_affected: 0,
            })
        } else {
            let done = <H::Db as SqlxDb>::execute(conn, q).await?;
            Ok(StatementResult {
                index,
                rows: Vec::new(),
                rows_affected: H::rows_affected(&done),
            })
        }
    })
}

/// [`SqlHook::run`] of a sqlx-based hook: all statements on one pooled
/// connection with `autocommit`, else in one transaction.
pub(crate) async fn run<H: SqlxHook>(hook: &H, sql: Sql, options: RunOptions) -> Result<Value> {
    let bound = bound_statements(hook.dialect(), &sql, &options, |e| {
        hook.scope().wrap("run", e)
    })?;
    let handler = &options.handler;
    let fail = |e| exec_error(hook, e, "run");
    let results = if options.autocommit {
        let mut conn = match hook.pool().acquire().await {
            Ok(c) => c,
            Err(e) => return Err(hook.acquire_error("connect", e).await),
        };
        run_statements(&mut *conn, &bound, handler, exec::<H>, fail).await?
    } else {
        let mut tx = match hook.pool().begin().await {
            Ok(tx) => tx,
            Err(e) => return Err(hook.acquire_error("begin", e).await),
        };
        // On error `tx` is dropped, which rolls back statements 1..k.
        let results = run_statements(&mut *tx, &bound, handler, exec::<H>, fail).await?;
        tx.commit().await.map_err(|e| db_error(hook, "commit", e))?;
        results
    };
    tracing::info!(conn_id = %hook.conn_id(), statements = bound.len(), "{} run done", hook.scope().system());
    Ok(shape_results(&sql, &options, results))
}

/// The commit loop of [`SqlHook::insert_rows`] for a sqlx-based hook: `rows` in
/// transactions of `per_commit` rows, each of statements of `per_stmt` rows that
/// `statement` turns into SQL and its parameters. Returns the rows written;
/// groups committed before a failure stay committed, as `commit_every` promises.
pub(crate) async fn insert_in_groups<H: SqlxHook>(
    hook: &H,
    table: &str,
    rows: &[Vec<Value>],
    per_commit: usize,
    per_stmt: usize,
    statement: impl Fn(&[Vec<Value>]) -> Result<(String, Vec<Value>)>,
) -> Result<u64> {
    let mut written = 0u64;
    for group in rows.chunks(per_commit) {
        let mut tx = match hook.pool().begin().await {
            Ok(tx) => tx,
            Err(e) => return Err(hook.acquire_error("begin", e).await),
        };
        for batch in group.chunks(per_stmt) {
            let (sql, args) = statement(batch).map_err(|e| hook.scope().wrap("insert_rows", e))?;
            let q = H::bind_all(sqlx::query(&sql), &args);
            let done = <H::Db as SqlxDb>::execute(&mut *tx, q)
                .await
                .map_err(|e| db_error(hook, "insert_rows", e).with("table", table))?;
            written += H::rows_affected(&done);
        }
        tx.commit()
            .await
            .map_err(|e| db_error(hook, "commit", e).with("table", table))?;
    }
    tracing::info!(conn_id = %hook.conn_id(), table, rows = written, "{} rows inserted", hook.scope().system());
    Ok(written)
}

/// [`SqlHook::stream_rows`] of a sqlx-based hook: rows as the server sends them,
/// through [`channel_stream`]; the first error ends the stream.
pub(crate) fn stream_rows<'a, H: SqlxHook>(
    hook: &H,
    sql: &str,
    parameters: Parameters,
) -> BoxStream<'a, Result<Row>> {
    let bound = bind(hook.dialect(), sql, &parameters, 1);
    let this = hook.clone();
    channel_stream(move |tx| {
        send_boxed(async move {
            let b = match bound {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(this.scope().wrap("get_records", e))).await;
                    return;
                }
            };
            let q = H::bind_all(sqlx::query(&b.sql), &b.args);
            let mut rows = <H::Db as SqlxDb>::fetch(this.pool(), q);
            while let Some(r) = rows.next().await {
                let r = match r {
                    Ok(r) => H::row_to_json(&r).map_err(|e| exec_error(&this, e, "get_records")),
                    // Only the first item can be the pool's; acquire_error
                    // passes statement errors through as `db_error` would.
                    Err(e) => Err(this.acquire_error("get_records", e).await),
                };
                let failed = r.is_err();
                if tx.send(r).await.is_err() || failed {
                    return;
                }
            }
        })
    })
}

/// Turns a producer that pushes rows into a bounded channel into a stream. The
/// producer runs as its own task so the stream owns everything it needs ('static),
/// and the channel's bound keeps memory flat: a slow consumer pauses the query.
pub(crate) fn channel_stream<'a, F, Fut>(produce: F) -> BoxStream<'a, Result<Row>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Row>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(produce(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) }).boxed()
}

/// Boxes a future as `Send` where its lifetimes are concrete. Without it, sqlx's
/// futures awaited inside a user's task closure (or a spawned task) hit rustc's
/// "implementation of `Send`/`Executor` is not general enough"
/// (rust-lang/rust#102211).
pub(crate) fn send_boxed<'a, T>(
    fut: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(fut)
}
