//! All or nothing: load into a staging table beside the target, then change the
//! target in one transaction. Shared by the transfers that write tables.

use std::future::Future;

use crate::error::{Error, Result};
use crate::hooks::sql::{RunOptions, Sql, SqlHook, quote_columns, quote_table};

/// What to do with the rows already in the table (pandas' `if_exists`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IfExists {
    /// Add the new rows to the table (the default, as Airflow's transfers).
    #[default]
    Append,
    /// Replace the table's rows by the new ones, in one transaction (pandas'
    /// `if_exists="replace"`, without dropping the table: its types, keys and
    /// grants stay).
    Replace,
}

impl IfExists {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IfExists::Append => "append",
            IfExists::Replace => "replace",
        }
    }
}

/// Loads into `table` through a staging table: creates it empty with the
/// target's columns (`CREATE TABLE … AS SELECT * FROM target WHERE 1 = 0`, the
/// one form PostgreSQL, MariaDB and SQLite share), lets `load` fill it (given its
/// name; it returns the columns it loaded and the row count), then runs
/// `before` (statements of the caller's, e.g. Airflow's `preoperator`), the
/// `DELETE` of a replace and `INSERT … SELECT` in one transaction. The staging
/// table is dropped in every case. A failed load or apply leaves the target
/// unchanged.
pub(crate) async fn load_via_staging<F, Fut>(
    hook: &dyn SqlHook,
    table: &str,
    if_exists: IfExists,
    before: &[String],
    load: F,
) -> Result<u64>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(Vec<String>, u64)>>,
{
    let dialect = hook.dialect();
    let target = quote_table(dialect, table)?;
    let staging_name = staging_table(table);
    let staging = quote_table(dialect, &staging_name)?;
    hook.run(
        Sql::from(format!(
            "CREATE TABLE {staging} AS SELECT * FROM {target} WHERE 1 = 0"
        )),
        RunOptions::default(),
    )
    .await?;
    let result = async {
        let (columns, rows) = load(staging_name.clone()).await?;
        let mut statements: Vec<String> = before.to_vec();
        if if_exists == IfExists::Replace {
            statements.push(format!("DELETE FROM {target}"));
        }
        // No columns: an empty result from a source that names none without a row.
        if !columns.is_empty() {
            let cols = quote_columns(dialect, &columns)?;
            statements.push(format!(
                "INSERT INTO {target} ({cols}) SELECT {cols} FROM {staging}"
            ));
        }
        if !statements.is_empty() {
            hook.run(Sql::Many(statements), RunOptions::default())
                .await?;
        }
        Ok::<_, Error>(rows)
    }
    .await;
    // The load's own outcome is what the task reports; a staging table that
    // cannot be dropped is only logged.
    if let Err(e) = hook
        .run(
            Sql::from(format!("DROP TABLE {staging}")),
            RunOptions::default(),
        )
        .await
    {
        tracing::warn!(table = %staging_name, error = %e, "could not drop the staging table");
    }
    result
}

/// A staging table's name beside `table` (same schema), unique per load.
fn staging_table(table: &str) -> String {
    let (schema, name) = match table.rsplit_once('.') {
        Some((s, n)) => (Some(s), n),
        None => (None, table),
    };
    // PostgreSQL cuts identifiers at 63 bytes: the base keeps at most 32 bytes
    // (cut on a character boundary), the suffix adds 23.
    let mut end = name.len().min(32);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let base = &name[..end];
    let suffix: u32 = rand::random();
    let staging = format!("{base}__gust_staging_{suffix:08x}");
    match schema {
        Some(s) => format!("{s}.{staging}"),
        None => staging,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_tables_sit_beside_their_target() {
        let s = staging_table("analytics.iris_data");
        assert!(s.starts_with("analytics.iris_data__gust_staging_"), "{s}");
        let long = staging_table(&"x".repeat(100));
        assert!(long.len() < 63, "{long}");
    }

    #[test]
    fn staging_names_stay_under_63_bytes_with_non_ascii_tables() {
        // 40 two-byte characters: 80 bytes, cut at 32 bytes (16 characters).
        let table = "é".repeat(40);
        let s = staging_table(&format!("analytics.{table}"));
        let name = s.strip_prefix("analytics.").unwrap();
        assert!(name.len() <= 63, "{name} is {} bytes", name.len());
        assert!(name.starts_with(&"é".repeat(16)), "{name}");
        assert!(!name.starts_with(&"é".repeat(17)), "{name}");
        // A cut that would split a character falls before it.
        let odd = format!("a{}", "é".repeat(40));
        let s = staging_table(&odd);
        assert!(s.len() <= 63, "{s}");
        assert!(s.starts_with(&format!("a{}__gust", "é".repeat(15))), "{s}");
    }
}
