//! All or nothing: load into a staging table beside the target, then change the
//! target in one transaction. Shared by the transfers that write tables.

use std::future::Future;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::hooks::sql::{
    Dialect, Parameters, RunOptions, Sql, SqlHook, quote_columns, quote_identifier, quote_table,
    sqlite_schema_and_name,
};

/// What to do with the rows already in the table (pandas' `if_exists`, a
/// warehouse's write disposition).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IfExists {
    /// Add the new rows to the table (the default, as Airflow's transfers).
    #[default]
    Append,
    /// Replace the table's rows by the new ones, in one transaction (pandas'
    /// `if_exists="replace"`, without dropping the table: its types, keys and
    /// grants stay).
    Replace,
    /// Upsert on these key columns: a new row whose key is in the table updates
    /// that row's other columns, others are inserted. The keys must be the
    /// table's primary key or a unique index. The input must hold each key
    /// once: a key twice is an [`ErrorKind::InvalidInput`] error naming it and
    /// nothing is written (the databases disagree on which duplicate would win).
    Merge(Vec<String>),
}

impl IfExists {
    /// [`IfExists::Merge`] on `keys`.
    pub fn merge(keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        IfExists::Merge(keys.into_iter().map(Into::into).collect())
    }

    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            IfExists::Append => "append",
            IfExists::Replace => "replace",
            IfExists::Merge(_) => "merge",
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
pub(crate) async fn load_via_staging<F, Fut, T>(
    hook: &Arc<dyn SqlHook>,
    table: &str,
    if_exists: &IfExists,
    before: &[String],
    load: F,
) -> Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(Vec<String>, T)>>,
{
    load_into(hook, table, if_exists, before, None, load).await
}

/// [`load_via_staging`], creating the table first when `create` gives its
/// columns and it is missing (and dropping it again if the load fails). A missing
/// table without `create` is a [`ErrorKind::NotFound`] error naming it.
pub(crate) async fn load_into<F, Fut, T>(
    hook: &Arc<dyn SqlHook>,
    table: &str,
    if_exists: &IfExists,
    before: &[String],
    create: Option<&[(String, String)]>,
    load: F,
) -> Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(Vec<String>, T)>>,
{
    let dialect = hook.dialect();
    let target = quote_table(dialect, table)?;
    let created = ensure_table(&**hook, table, &target, create).await?;
    let guard = created.then(|| Cleanup::new(hook, format!("DROP TABLE {target}")));
    let result = staged(hook, table, &target, if_exists, before, load).await;
    if let Some(guard) = guard {
        guard.disarm();
    }
    if result.is_err() && created {
        let drop = Sql::from(format!("DROP TABLE {target}"));
        if let Err(e) = hook.run(drop, RunOptions::default()).await {
            tracing::warn!(%table, error = %e, "could not drop the table the failed load created");
        }
    }
    result
}

/// Makes sure `table` exists; returns whether it was created here.
pub(crate) async fn ensure_table(
    hook: &dyn SqlHook,
    table: &str,
    target: &str,
    create: Option<&[(String, String)]>,
) -> Result<bool> {
    let probe = format!("SELECT 1 FROM {target} WHERE 1 = 0");
    let missing = match hook.get_first(&probe, Parameters::None).await {
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == ErrorKind::NotFound || table_missing(&e) => e,
        Err(e) => return Err(e),
    };
    let Some(columns) = create else {
        return Err(Error::new(
            ErrorKind::NotFound,
            "sql.load",
            format!("table {table} does not exist (give create_table to create it)"),
        )
        .with("table", table)
        .with_source(missing));
    };
    if columns.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "sql.load",
            "create_table needs at least one column",
        )
        .with("table", table));
    }
    let dialect = hook.dialect();
    let defs = columns
        .iter()
        .map(|(name, ty)| quote_identifier(dialect, name).map(|q| format!("{q} {ty}")))
        .collect::<Result<Vec<_>>>()?;
    hook.run(
        Sql::from(format!("CREATE TABLE {target} ({})", defs.join(", "))),
        RunOptions::default(),
    )
    .await?;
    tracing::info!(%table, "table created");
    Ok(true)
}

/// Whether an error says the table does not exist, in the words of each
/// database (for hooks that do not classify it as `NotFound`).
fn table_missing(e: &Error) -> bool {
    let m = e.message().to_ascii_lowercase();
    m.contains("does not exist") || m.contains("doesn't exist") || m.contains("no such table")
}

async fn staged<F, Fut, T>(
    hook: &Arc<dyn SqlHook>,
    table: &str,
    target: &str,
    if_exists: &IfExists,
    before: &[String],
    load: F,
) -> Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(Vec<String>, T)>>,
{
    let dialect = hook.dialect();
    let staging_name = staging_table(table);
    let staging = quote_table(dialect, &staging_name)?;
    let create = match dialect {
        Dialect::Sqlite => sqlite_staging(&**hook, table, &staging).await?,
        _ => None,
    };
    let create = create
        .unwrap_or_else(|| format!("CREATE TABLE {staging} AS SELECT * FROM {target} WHERE 1 = 0"));
    hook.run(Sql::from(create), RunOptions::default()).await?;
    let guard = Cleanup::new(hook, format!("DROP TABLE {staging}"));
    let result = async {
        let (columns, rows) = load(staging_name.clone()).await?;
        let mut statements: Vec<String> = before.to_vec();
        if *if_exists == IfExists::Replace {
            statements.push(format!("DELETE FROM {target}"));
        }
        // No columns: an empty result from a source that names none without a row.
        if !columns.is_empty() {
            let cols = quote_columns(dialect, &columns)?;
            let insert = format!("INSERT INTO {target} ({cols}) SELECT {cols} FROM {staging}");
            statements.push(match if_exists {
                IfExists::Merge(keys) => {
                    check_unique_keys(&**hook, &staging, keys).await?;
                    merge_statement(dialect, insert, &columns, keys)?
                }
                _ => insert,
            });
        }
        if !statements.is_empty() {
            hook.run(Sql::Many(statements), RunOptions::default())
                .await?;
        }
        Ok::<_, Error>(rows)
    }
    .await;
    guard.disarm();
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

/// The staging table of a SQLite target, declared with the target's column
/// types: SQLite's `CREATE TABLE … AS` would type them by affinity (a
/// `BOOLEAN` becomes `NUM`), and the bulk load reads the declared types (it
/// stores `true`/`false` in a `BOOLEAN` as 1/0). `None` when the target is not
/// found (the caller's statement then names the missing table).
async fn sqlite_staging(hook: &dyn SqlHook, table: &str, staging: &str) -> Result<Option<String>> {
    let (schema, name) = sqlite_schema_and_name(table);
    let columns = hook
        .get_records(
            "SELECT name, type FROM pragma_table_info(?, ?)",
            Parameters::from(serde_json::json!([name, schema])),
        )
        .await?;
    if columns.is_empty() {
        return Ok(None);
    }
    let defs = columns
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or_default();
            let ty = c["type"].as_str().unwrap_or_default();
            Ok(format!("{} {ty}", hook.quote_identifier(name)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(format!(
        "CREATE TABLE {staging} ({})",
        defs.join(", ")
    )))
}

/// Fails when a key appears twice in the staging table, naming one such key.
async fn check_unique_keys(hook: &dyn SqlHook, staging: &str, keys: &[String]) -> Result<()> {
    if keys.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "sql.load",
            "merge needs the key columns to upsert on",
        ));
    }
    let cols = quote_columns(hook.dialect(), keys)?;
    let sql = format!(
        "SELECT {cols}, COUNT(*) AS gust_rows FROM {staging} GROUP BY {cols} HAVING COUNT(*) > 1"
    );
    if let Some(row) = hook.get_first(&sql, Parameters::None).await? {
        let key = keys
            .iter()
            .map(|k| format!("{k}={}", row.get(k).cloned().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ");
        let n = row.get("gust_rows").cloned().unwrap_or_default();
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "sql.load",
            format!("the input holds key ({key}) {n} times: merge needs each key once"),
        ));
    }
    Ok(())
}

/// `insert` (an `INSERT … SELECT`) turned into an upsert on `keys`.
fn merge_statement(
    dialect: Dialect,
    insert: String,
    columns: &[String],
    keys: &[String],
) -> Result<String> {
    for k in keys {
        if !columns.contains(k) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "sql.load",
                format!("the merge key {k} is not among the loaded columns"),
            ));
        }
    }
    let others = columns
        .iter()
        .filter(|c| !keys.contains(c))
        .map(|c| quote_identifier(dialect, c))
        .collect::<Result<Vec<_>>>()?;
    let key_cols = quote_columns(dialect, keys)?;
    Ok(match dialect {
        Dialect::MySql => {
            // MariaDB has no row alias: VALUES(c) is the new row's value.
            let set = if others.is_empty() {
                let k = quote_identifier(dialect, &keys[0])?;
                format!("{k} = {k}")
            } else {
                others
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("{insert} ON DUPLICATE KEY UPDATE {set}")
        }
        _ => {
            // SQLite needs a WHERE before ON CONFLICT after a SELECT (its
            // parsing ambiguity with a join's ON).
            let action = if others.is_empty() {
                "DO NOTHING".to_string()
            } else {
                let set = others
                    .iter()
                    .map(|c| format!("{c} = EXCLUDED.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("DO UPDATE SET {set}")
            };
            format!("{insert} WHERE true ON CONFLICT ({key_cols}) {action}")
        }
    })
}

/// A `DROP TABLE` to run if the load's future is dropped before it finishes:
/// a task's `execution_timeout` cancels the load mid-way, where no error path
/// runs, and the staging table (or the table the load created) would be left
/// behind. The statement runs on a spawned task, best effort.
struct Cleanup {
    hook: Arc<dyn SqlHook>,
    statement: Option<String>,
}

impl Cleanup {
    fn new(hook: &Arc<dyn SqlHook>, statement: String) -> Self {
        Cleanup {
            hook: hook.clone(),
            statement: Some(statement),
        }
    }

    /// The load finished (either way): its own path cleans up.
    fn disarm(mut self) {
        self.statement = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(statement) = self.statement.take() else {
            return;
        };
        let hook = self.hook.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                match hook.run(Sql::from(statement.clone()), RunOptions::default()).await {
                    Ok(_) => tracing::warn!(%statement, "cleaned up after a cancelled load"),
                    Err(e) => {
                        tracing::error!(%statement, error = %e, "could not clean up after a cancelled load")
                    }
                }
            });
        }
    }
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
    fn merges_per_dialect() {
        let cols = vec!["id".to_string(), "name".to_string()];
        let keys = vec!["id".to_string()];
        let pg = merge_statement(Dialect::Postgres, "INSERT x".into(), &cols, &keys).unwrap();
        assert_eq!(
            pg,
            r#"INSERT x WHERE true ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name""#
        );
        let my = merge_statement(Dialect::MySql, "INSERT x".into(), &cols, &keys).unwrap();
        assert_eq!(
            my,
            "INSERT x ON DUPLICATE KEY UPDATE `name` = VALUES(`name`)"
        );
        let only_keys = merge_statement(Dialect::Sqlite, "I".into(), &keys, &keys).unwrap();
        assert!(only_keys.ends_with("DO NOTHING"), "{only_keys}");
        let e = merge_statement(Dialect::Sqlite, "I".into(), &keys, &["nope".into()]).unwrap_err();
        assert!(e.message().contains("nope"), "{e}");
    }

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
