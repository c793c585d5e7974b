//! [`SqlExecuteQuery`]: Airflow's `SQLExecuteQueryOperator` on any [`SqlHook`].
//!
//! ```no_run
//! use gust::operators::sql::SqlExecuteQuery;
//! use gust::prelude::*;
//!
//! // A templated .sql file, split into its statements,
//! // run in one transaction (the DELETE and the INSERT commit together).
//! let extract = Task::new(
//!     "data_extract",
//!     SqlExecuteQuery::new("feature_store", "features.sql").split_statements(true),
//! );
//! ```
//!
//! The hook comes from the connection `conn_id` when the task runs, or is given with
//! [`SqlExecuteQuery::with_hook`] — any [`SqlHook`], e.g. an in-memory SQLite in a
//! unit test, which then runs the same code as production.
//!
//! Templated fields (Airflow's `template_fields`): `sql` (each string; one ending in
//! `.sql` is loaded from the template search path) and every string inside
//! `parameters`.
//!
//! # Return value (the XCom)
//!
//! As Airflow: with the default [`Handler::FetchAll`], one SQL string gives the last
//! statement's rows (an array of row objects, see [the row mapping](crate::hooks::sql));
//! a list of statements, or `return_last(false)`, gives an array with one such array
//! per statement. [`Handler::None`] gives `null`, [`Handler::FetchOne`] a row object
//! (or `null`), [`Handler::RowsAffected`] a number per statement.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::context::Context;
use crate::error::Result;
use crate::hooks::sql::{Handler, Parameters, RunOptions, Sql, SqlHook, from_connection};
use crate::task::Operator;

/// Runs SQL on the database of a connection (Airflow's `SQLExecuteQueryOperator`).
#[derive(Clone)]
pub struct SqlExecuteQuery {
    conn_id: String,
    /// A hook given with [`with_hook`](SqlExecuteQuery::with_hook), used instead of
    /// connecting with `conn_id`.
    hook: Option<Arc<dyn SqlHook>>,
    sql: Sql,
    parameters: Value,
    autocommit: bool,
    split_statements: bool,
    return_last: bool,
    handler: Handler,
    database: Option<String>,
}

impl SqlExecuteQuery {
    /// Runs `sql` (a string, a `Vec<String>` of statements, or a `.sql` template
    /// file name) on the connection `conn_id`, with Airflow's defaults:
    /// `autocommit=false`, `split_statements=false`, `return_last=true`, fetch-all.
    pub fn new(conn_id: impl Into<String>, sql: impl Into<Sql>) -> Self {
        SqlExecuteQuery {
            conn_id: conn_id.into(),
            hook: None,
            sql: sql.into(),
            parameters: Value::Null,
            autocommit: false,
            split_statements: false,
            return_last: true,
            handler: Handler::FetchAll,
            database: None,
        }
    }

    /// Values for the placeholders: an array (positional) or an object (`:name`).
    /// String values are rendered as templates.
    pub fn parameters(mut self, parameters: Value) -> Self {
        self.parameters = parameters;
        self
    }

    /// Commits each statement on its own instead of all together.
    pub fn autocommit(mut self, on: bool) -> Self {
        self.autocommit = on;
        self
    }

    /// Splits a SQL string into statements with the dialect's tokenizer.
    pub fn split_statements(mut self, on: bool) -> Self {
        self.split_statements = on;
        self
    }

    /// Returns only the last statement's result (default) or all of them.
    pub fn return_last(mut self, on: bool) -> Self {
        self.return_last = on;
        self
    }

    /// What to keep of each statement (default [`Handler::FetchAll`]).
    pub fn handler(mut self, handler: Handler) -> Self {
        self.handler = handler;
        self
    }

    /// Connects to this database instead of the connection's schema (ignored with
    /// [`with_hook`](Self::with_hook): the hook is connected already).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// Runs on `hook` instead of connecting with `conn_id` when the task runs: a hook
    /// shared by several tasks, or an in-memory SQLite in a unit test (no
    /// `AIRFLOW_CONN_*` needed). The S3 operators' `with_store` counterpart.
    pub fn with_hook(mut self, hook: Arc<dyn SqlHook>) -> Self {
        self.conn_id = hook.conn_id().to_string();
        self.hook = Some(hook);
        self
    }
}

impl fmt::Debug for SqlExecuteQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlExecuteQuery")
            .field("conn_id", &self.conn_id)
            .field("hook", &self.hook.as_ref().map(|_| "given"))
            .field("sql", &self.sql)
            .field("parameters", &self.parameters)
            .field("autocommit", &self.autocommit)
            .field("split_statements", &self.split_statements)
            .field("return_last", &self.return_last)
            .field("handler", &self.handler)
            .field("database", &self.database)
            .finish()
    }
}

/// The SQL hook of an operator: the one given with `with_hook`, else one built
/// from the connection `conn_id` (its type picks the hook), connected to
/// `database` when given (see [`from_connection`]).
pub(crate) async fn resolve_hook(
    ctx: &Context,
    given: Option<&Arc<dyn SqlHook>>,
    conn_id: &str,
    database: Option<&str>,
) -> Result<Arc<dyn SqlHook>> {
    match given {
        Some(hook) => Ok(hook.clone()),
        None => {
            let conn = ctx.connection(conn_id)?;
            Ok(Arc::from(from_connection(&conn, database).await?))
        }
    }
}

fn render_value(ctx: &Context, v: &Value) -> Result<Value> {
    Ok(match v {
        Value::String(s) => Value::String(ctx.render(s)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_value(ctx, x))
                .collect::<Result<_>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), render_value(ctx, x)?)))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

#[async_trait]
impl Operator for SqlExecuteQuery {
    /// `sql` (one entry per statement of a list) and `parameters`, as Airflow's
    /// `template_fields = ("sql", "parameters")`.
    fn rendered_fields(&self, ctx: &Context) -> Result<Vec<(String, String)>> {
        let mut out = match &self.sql {
            Sql::One(s) => vec![("sql".to_string(), ctx.render(s)?)],
            Sql::Many(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| Ok((format!("sql[{i}]"), ctx.render(s)?)))
                .collect::<Result<_>>()?,
        };
        if !self.parameters.is_null() {
            out.push((
                "parameters".to_string(),
                render_value(ctx, &self.parameters)?.to_string(),
            ));
        }
        Ok(out)
    }

    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let sql = match &self.sql {
            Sql::One(s) => Sql::One(ctx.render(s)?),
            Sql::Many(v) => Sql::Many(v.iter().map(|s| ctx.render(s)).collect::<Result<_>>()?),
        };
        let parameters = Parameters::from(render_value(ctx, &self.parameters)?);
        let hook = resolve_hook(
            ctx,
            self.hook.as_ref(),
            &self.conn_id,
            self.database.as_deref(),
        )
        .await?;
        tracing::info!(conn_id = %self.conn_id, task_id = ctx.task_id(), "running SQL");
        hook.run(
            sql,
            RunOptions {
                parameters,
                split_statements: self.split_statements,
                autocommit: self.autocommit,
                handler: self.handler.clone(),
                return_last: self.return_last,
            },
        )
        .await
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::hooks::sqlite::SqliteHook;
    use serde_json::json;

    #[tokio::test]
    async fn with_hook_runs_on_the_given_hook_without_a_connection() {
        let hook: Arc<dyn SqlHook> = Arc::new(SqliteHook::open("lite", ":memory:").await.unwrap());
        let ctx = Context::builder("dag", "run_sql").build();
        let op = SqlExecuteQuery::new(
            "unused",
            "CREATE TABLE t (ds TEXT); INSERT INTO t VALUES ('{{ ds }}'); SELECT ds FROM t",
        )
        .split_statements(true)
        .with_hook(hook.clone());
        let out = op.execute(&ctx).await.unwrap();
        assert_eq!(out, json!([{ "ds": ctx.ds() }]));
        // The same hook (one in-memory database) saw the writes.
        let rows = hook
            .get_records("SELECT count(*) AS n FROM t", Parameters::None)
            .await
            .unwrap();
        assert_eq!(rows[0]["n"], json!(1));
    }
}
