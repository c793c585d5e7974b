//! The building blocks of a [`SqlHook`] for another database: the recipe is
//! ["Implementing `SqlHook`"](super#implementing-sqlhook).
//!
//! Each one does, once, a part of the trait's contract that every hook shares
//! and the conformance suite checks: splitting and binding statements
//! ([`bound_statements`], [`bind`]), running them with "statement k of n"
//! errors ([`run_statements`]), Airflow's return shape ([`shape_results`]),
//! quoted multi-row inserts and upserts ([`insert_statement`],
//! [`upsert_clause`]), and the CSV of `bulk_dump` / `bulk_load`
//! ([`rows_to_csv`], [`CsvReader`]). A *user* of [`SqlHook`] needs none of it.
//!
//! Their errors name an operation of their own (`sql.bind`,
//! `sql.insert_rows`); the hook renames them as its own operation, adds its
//! conn id and redacts, as for every error it returns.

#[cfg(doc)]
use super::SqlHook;
use super::{
    Dialect, Handler, InsertOptions, RunOptions, Sql, quote_columns, quote_identifier, quote_table,
};
use crate::error::{Error, ErrorKind, Result};
use serde_json::Value;

pub use super::csv::{Reader as CsvReader, rows_to_csv, rows_to_csv_as};
pub use super::run::{bound_statements, run_statements};
pub use super::split::{Bound, bind, split_statements};
pub use crate::formats::csv::Record;

/// Airflow's return shape of `run`: `null` without a handler; the last statement's
/// result when `return_last` is set and the SQL was one string; otherwise an array
/// with one result per statement.
pub fn shape_results(sql: &Sql, options: &RunOptions, mut results: Vec<Value>) -> Value {
    if matches!(options.handler, Handler::None) {
        Value::Null
    } else if options.return_last && matches!(sql, Sql::One(_)) {
        results.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(results)
    }
}

/// Builds `INSERT INTO t (a, b) VALUES (?, ?), (?, ?) …` for `n` rows with every name
/// quoted, as the dialect writes an insert or an upsert.
pub fn insert_statement(
    dialect: Dialect,
    table: &str,
    columns: &[String],
    n: usize,
    options: &InsertOptions,
) -> Result<String> {
    let op = "sql.insert_rows";
    if columns.is_empty() {
        return Err(
            Error::new(ErrorKind::InvalidInput, op, "no columns given").with("table", table)
        );
    }
    let cols = quote_columns(dialect, columns)?;
    let verb = if options.replace && dialect == Dialect::MySql {
        "REPLACE"
    } else {
        "INSERT"
    };
    let mut sql = format!(
        "{verb} INTO {} ({}) VALUES ",
        quote_table(dialect, table)?,
        cols
    );
    let mut k = 0;
    for r in 0..n {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            k += 1;
            if dialect == Dialect::Postgres {
                sql.push_str(&format!("${k}"));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    if options.replace && dialect != Dialect::MySql {
        sql.push_str(&upsert_clause(dialect, table, columns, options)?);
    }
    Ok(sql)
}

/// ` ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, …` for PostgreSQL and SQLite.
pub fn upsert_clause(
    dialect: Dialect,
    table: &str,
    columns: &[String],
    options: &InsertOptions,
) -> Result<String> {
    if options.replace_index.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "sql.insert_rows",
            "replace needs replace_index: the unique key columns to upsert on",
        )
        .with("table", table));
    }
    let key = options
        .replace_index
        .iter()
        .map(|c| quote_identifier(dialect, c))
        .collect::<Result<Vec<_>>>()?;
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !options.replace_index.contains(c))
        .map(|c| quote_identifier(dialect, c).map(|q| format!("{q} = EXCLUDED.{q}")))
        .collect::<Result<_>>()?;
    Ok(if updates.is_empty() {
        format!(" ON CONFLICT ({}) DO NOTHING", key.join(", "))
    } else {
        format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            key.join(", "),
            updates.join(", ")
        )
    })
}
