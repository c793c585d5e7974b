//! [`SqlExecuteQuery`]: Airflow's `SQLExecuteQueryOperator` on any [`SqlHook`](crate::hooks::sql::SqlHook).
//!
//! ```no_run
//! use gust::operators::sql::SqlExecuteQuery;
//! use gust::prelude::*;
//!
//! // Seed 001's extraction task: a templated .sql file, split into its statements,
//! // run in one transaction (the DELETE and the INSERT commit together).
//! let extract = Task::new(
//!     "data_extract",
//!     SqlExecuteQuery::new("feature_store", "features.sql").split_statements(true),
//! );
//! ```
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

use async_trait::async_trait;
use serde_json::Value;

use crate::context::Context;
use crate::error::Result;
use crate::hooks::sql::{Handler, Parameters, RunOptions, Sql, connect};
use crate::task::Operator;

/// Runs SQL on the database of a connection (Airflow's `SQLExecuteQueryOperator`).
#[derive(Debug, Clone)]
pub struct SqlExecuteQuery {
    conn_id: String,
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

    /// Connects to this database instead of the connection's schema.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
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
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let sql = match &self.sql {
            Sql::One(s) => Sql::One(ctx.render(s)?),
            Sql::Many(v) => Sql::Many(v.iter().map(|s| ctx.render(s)).collect::<Result<_>>()?),
        };
        let parameters = Parameters::from(render_value(ctx, &self.parameters)?);
        let conn = ctx.connection(&self.conn_id)?;
        let hook = connect(&conn, self.database.as_deref()).await?;
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
