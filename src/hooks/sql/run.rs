//! The dialect-independent half of [`SqlHook::run`](super::SqlHook::run) and of
//! the insert helpers: every hook splits, binds, runs statement by statement and
//! shapes the results the same way; only how one statement is executed differs.

use futures::future::BoxFuture;
use serde_json::Value;

use super::split::{Bound, bind};
use super::{Dialect, Handler, InsertOptions, RunOptions, Sql, StatementResult};
use crate::error::{Error, Result};

/// The statements of a `run`, split (when `options.split_statements` is set)
/// and bound to `options.parameters`. A split error is returned as it is (it
/// names no connection); a binding error goes through `lift`, which adds the
/// hook's context (operation, conn id, redaction).
pub fn bound_statements(
    dialect: Dialect,
    sql: &Sql,
    options: &RunOptions,
    lift: impl Fn(Error) -> Error,
) -> Result<Vec<Bound>> {
    let stmts = sql.statements(dialect, options.split_statements)?;
    stmts
        .iter()
        .enumerate()
        .map(|(i, s)| bind(dialect, s, &options.parameters, i + 1))
        .collect::<Result<Vec<_>>>()
        .map_err(lift)
}

/// Runs `bound` in order on `conn` with `exec` (given the statement, the handler
/// and the statement's 1-based index) and keeps what `handler` keeps of each. It
/// stops at the first failure, which `fail` turns into the hook's error and which
/// is then marked "statement k of n". Rolling back is the caller's: it owns the
/// transaction `conn` is (or belongs to), and dropping it on this error rolls
/// back statements 1..k.
///
/// `exec` returns a boxed `Send` future rather than being an async closure: the
/// driver's futures awaited through a generic async closure trip rustc's
/// "implementation of `Send` is not general enough" (rust-lang/rust#102211), and
/// [`SqlHook`](super::SqlHook) futures must be `Send`.
pub async fn run_statements<C: ?Sized, E>(
    conn: &mut C,
    bound: &[Bound],
    handler: &Handler,
    exec: impl for<'a> Fn(
        &'a mut C,
        &'a Bound,
        &'a Handler,
        usize,
    ) -> BoxFuture<'a, std::result::Result<StatementResult, E>>,
    fail: impl Fn(E) -> Error,
) -> Result<Vec<Value>> {
    let total = bound.len();
    let mut results = Vec::with_capacity(total);
    for (i, b) in bound.iter().enumerate() {
        let r = exec(&mut *conn, b, handler, i + 1)
            .await
            .map_err(|e| super::in_statement(fail(e), i + 1, total, &b.sql))?;
        results.push(handler.apply(r)?);
    }
    Ok(results)
}

/// How many of `rows` go in one transaction: `commit_every`, or all of them when
/// it is 0 (at least 1, so that `chunks` accepts it).
pub(crate) fn rows_per_commit(options: &InsertOptions, rows: usize) -> usize {
    if options.commit_every == 0 {
        rows.max(1)
    } else {
        options.commit_every
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use futures::FutureExt;

    fn bound(sqls: &[&str]) -> Vec<Bound> {
        sqls.iter()
            .map(|s| Bound {
                sql: s.to_string(),
                args: Vec::new(),
            })
            .collect()
    }

    #[tokio::test]
    async fn statements_run_in_order_and_stop_at_the_first_failure() {
        let stmts = bound(&["SELECT 1", "BROKEN", "SELECT 3"]);
        let mut ran: Vec<usize> = Vec::new();
        let err = run_statements(
            &mut ran,
            &stmts,
            &Handler::RowsAffected,
            |ran, b, _, index| {
                async move {
                    ran.push(index);
                    if b.sql == "BROKEN" {
                        Err("syntax")
                    } else {
                        Ok(StatementResult {
                            index,
                            rows: Vec::new(),
                            rows_affected: 1,
                        })
                    }
                }
                .boxed()
            },
            |e| Error::new(ErrorKind::InvalidInput, "test.run", e).with("conn_id", "c"),
        )
        .await
        .unwrap_err();
        assert_eq!(ran, [1, 2], "statement 3 must not run after 2 failed");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.operation(), "test.run");
        assert_eq!(err.message(), "statement 2 of 3 failed: syntax");
        assert_eq!(err.context("conn_id"), Some("c"));
        assert_eq!(err.context("sql"), Some("BROKEN"));

        let ok = run_statements(
            &mut (),
            &stmts[..1],
            &Handler::RowsAffected,
            |_, _, _, index| {
                async move {
                    Ok::<_, &str>(StatementResult {
                        index,
                        rows: Vec::new(),
                        rows_affected: 7,
                    })
                }
                .boxed()
            },
            |e| Error::new(ErrorKind::InvalidInput, "test.run", e),
        )
        .await
        .unwrap();
        assert_eq!(ok, [Value::from(7)]);
    }

    #[test]
    fn commit_groups_and_binding_errors() {
        let every = |n| InsertOptions {
            commit_every: n,
            ..InsertOptions::default()
        };
        assert_eq!(rows_per_commit(&every(0), 0), 1);
        assert_eq!(rows_per_commit(&every(0), 42), 42);
        assert_eq!(rows_per_commit(&every(10), 42), 10);

        let options = RunOptions {
            parameters: vec![Value::from(1)].into(),
            ..RunOptions::default()
        };
        let err = bound_statements(Dialect::Sqlite, &Sql::from("SELECT ?, ?"), &options, |e| {
            e.with("conn_id", "c")
        })
        .unwrap_err();
        assert_eq!(
            err.context("conn_id"),
            Some("c"),
            "binding errors are lifted"
        );
        let err = bound_statements(Dialect::Sqlite, &Sql::from("  "), &options, |e| {
            e.with("conn_id", "c")
        })
        .unwrap_err();
        assert_eq!(err.context("conn_id"), None, "split errors are not");
    }
}
