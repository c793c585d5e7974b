//! All or nothing: load into a staging table beside the target, then change the
//! target in one transaction. Shared by the transfers that write tables.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::hooks::sql::{
    Dialect, Parameters, RunOptions, Sql, SqlHook, StagingLease, quote_columns, quote_identifier,
    quote_table, sqlite_schema_and_name,
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
    let staging_name = staging_table(dialect, table);
    let staging = quote_table(dialect, &staging_name)?;
    // The lease first, the table second: a staging table seen without its
    // lease is then surely one whose load is gone (see `sweep`).
    let lease = lease(hook, unqualified(&staging_name)).await?;
    sweep(hook, table, &staging_name).await;
    let create = match dialect {
        Dialect::Sqlite => sqlite_staging(&**hook, table, &staging).await?,
        _ => None,
    };
    let create = create
        .unwrap_or_else(|| format!("CREATE TABLE {staging} AS SELECT * FROM {target} WHERE 1 = 0"));
    hook.run(Sql::from(create), RunOptions::default()).await?;
    let guard = Cleanup::new(hook, format!("DROP TABLE {staging}")).holding(lease);
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
    // The lease is released only after the DROP: until then the table is
    // still this load's.
    let _lease = guard.disarm();
    // The load's own outcome is what the task reports; a staging table that
    // cannot be dropped is only logged (the next load of the table sweeps it
    // once this lease is gone).
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

// Stale staging tables.
//
// A load whose process or database server dies mid-way cannot drop its
// staging table. The next staged load of the same target drops the ones whose
// load is gone, and must never drop one a concurrent load still fills: that
// load would then fail (its `INSERT … SELECT` finds no table and its
// transaction rolls back, so the target stays right, but the work is lost).
// Age is no proof of death (a load may run for hours, clocks differ), so each
// staging table is tied to something that dies with its load:
//
// - PostgreSQL and MariaDB: a lock held by a session of the load's own
//   (`SqlHook::staging_lease`), taken before the table is created and
//   released after it is dropped. The server frees it when that session ends
//   for any reason: process killed, connection lost, server crashed or
//   restarted. A table whose lock is free (`SqlHook::staging_in_use`) has no
//   living load. Locks rather than `pg_stat_activity` or a session id in the
//   name, because a load's statements run on whichever pooled connection is
//   free: no one session is the load.
// - SQLite has no server and no session another process can see: the name
//   carries the owner's process id. A table of another process is stale when
//   no such process runs on this host (`/proc/<pid>`); one of this process is
//   stale when no load here registered it (`LIVE`). This assumes the
//   processes sharing a database file share a host and a pid namespace, as
//   SQLite's own file locking does; a reused pid only keeps a stale table.
//
// Only names of exactly the staging form (`<base>__gust_staging_` then 8 hex
// digits, SQLite `<pid hex>_<8 hex>`) are considered, never another table
// that happens to share the prefix. Sweeping is best effort: a failure is
// logged and the load goes on.

/// The staging tables of this process's live SQLite loads.
static LIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Registration of a SQLite staging table in [`LIVE`] until dropped.
struct Registered(String);

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            live.remove(&self.0);
        }
    }
}

/// Marks `name` (unqualified) as this load's: the hook's lease on a server, a
/// registration in [`LIVE`] on SQLite.
async fn lease(hook: &Arc<dyn SqlHook>, name: &str) -> Result<Option<StagingLease>> {
    if hook.dialect() == Dialect::Sqlite {
        if let Ok(mut live) = LIVE.lock() {
            live.insert(name.to_string());
        }
        return Ok(Some(StagingLease::new(Registered(name.to_string()))));
    }
    hook.staging_lease(name).await
}

/// Drops the stale staging tables of `table` (all but `own`), logging what it
/// did and any failure.
async fn sweep(hook: &Arc<dyn SqlHook>, table: &str, own: &str) {
    match sweep_stale(hook, table, unqualified(own)).await {
        Ok(dropped) if !dropped.is_empty() => {
            tracing::warn!(%table, ?dropped, "dropped staging tables left by loads that died");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(%table, error = %e, "could not sweep stale staging tables"),
    }
}

/// [`sweep`]'s work: returns the tables dropped.
async fn sweep_stale(hook: &Arc<dyn SqlHook>, table: &str, own: &str) -> Result<Vec<String>> {
    let dialect = hook.dialect();
    let (schema, name) = split_table(table);
    let prefix = format!("{}__gust_staging_", staging_base(name));
    let found = list_tables(&**hook, dialect, schema, &prefix).await?;
    let mut dropped = Vec::new();
    for found in found {
        if found == own || !is_staging_name(dialect, &prefix, &found) {
            continue;
        }
        let in_use = match dialect {
            Dialect::Sqlite => sqlite_in_use(&found),
            _ => hook.staging_in_use(&found).await?,
        };
        if in_use {
            continue;
        }
        let qualified = match schema {
            Some(s) => format!("{s}.{found}"),
            None => found.clone(),
        };
        let quoted = quote_table(dialect, &qualified)?;
        hook.run(
            Sql::from(format!("DROP TABLE IF EXISTS {quoted}")),
            RunOptions::default(),
        )
        .await?;
        dropped.push(qualified);
    }
    Ok(dropped)
}

/// The tables of `schema` (the connection's current one when `None`) whose
/// name starts with `prefix`.
async fn list_tables(
    hook: &dyn SqlHook,
    dialect: Dialect,
    schema: Option<&str>,
    prefix: &str,
) -> Result<Vec<String>> {
    let (sql, params) = match (dialect, schema) {
        (Dialect::Postgres, _) => (
            format!(
                "SELECT c.relname::text AS name FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND n.nspname = {} \
                 AND left(c.relname::text, length($1)) = $1",
                if schema.is_some() {
                    "$2"
                } else {
                    "current_schema()"
                }
            ),
            match schema {
                Some(s) => serde_json::json!([prefix, s]),
                None => serde_json::json!([prefix]),
            },
        ),
        (Dialect::MySql, _) => (
            format!(
                "SELECT table_name AS name FROM information_schema.tables \
                 WHERE LEFT(table_name, CHAR_LENGTH(?)) = ? AND table_schema = {}",
                if schema.is_some() { "?" } else { "DATABASE()" }
            ),
            match schema {
                Some(s) => serde_json::json!([prefix, prefix, s]),
                None => serde_json::json!([prefix, prefix]),
            },
        ),
        _ => {
            // An unqualified CREATE TABLE makes the staging table in `main`.
            let schema = schema.unwrap_or("main");
            (
                format!(
                    "SELECT name FROM {}.sqlite_master WHERE type = 'table' \
                     AND substr(name, 1, length(?)) = ?",
                    quote_identifier(dialect, schema)?
                ),
                serde_json::json!([prefix, prefix]),
            )
        }
    };
    let rows = hook.get_records(&sql, Parameters::from(params)).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.get("name").and_then(|v| v.as_str()).map(str::to_string))
        .collect())
}

/// Whether `name` is exactly a staging table's name of `prefix`.
fn is_staging_name(dialect: Dialect, prefix: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let hex = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    match dialect {
        Dialect::Sqlite => rest
            .split_once('_')
            .is_some_and(|(pid, n)| hex(pid, 8) && n.len() == 8 && hex(n, 8)),
        _ => rest.len() == 8 && hex(rest, 8),
    }
}

/// Whether the SQLite staging table `name` may still be in use: its process
/// runs (another one) or registered it (this one).
fn sqlite_in_use(name: &str) -> bool {
    let pid = name
        .rsplit_once("__gust_staging_")
        .and_then(|(_, rest)| rest.split_once('_'))
        .and_then(|(pid, _)| u32::from_str_radix(pid, 16).ok());
    let Some(pid) = pid else {
        return true;
    };
    if pid == std::process::id() {
        return LIVE.lock().map_or(true, |live| live.contains(name));
    }
    process_runs(pid)
}

/// Whether process `pid` runs on this host; `true` where that cannot be told.
fn process_runs(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
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
    /// The staging table's lease, released after the statement ran.
    lease: Option<StagingLease>,
}

impl Cleanup {
    fn new(hook: &Arc<dyn SqlHook>, statement: String) -> Self {
        Cleanup {
            hook: hook.clone(),
            statement: Some(statement),
            lease: None,
        }
    }

    /// Keeps `lease` until the table is dropped.
    fn holding(mut self, lease: Option<StagingLease>) -> Self {
        self.lease = lease;
        self
    }

    /// The load finished (either way): its own path cleans up, and releases
    /// the lease it gets back.
    fn disarm(mut self) -> Option<StagingLease> {
        self.statement = None;
        self.lease.take()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(statement) = self.statement.take() else {
            return;
        };
        let hook = self.hook.clone();
        let lease = self.lease.take();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                match hook.run(Sql::from(statement.clone()), RunOptions::default()).await {
                    Ok(_) => tracing::warn!(%statement, "cleaned up after a cancelled load"),
                    Err(e) => {
                        tracing::error!(%statement, error = %e, "could not clean up after a cancelled load")
                    }
                }
                drop(lease);
            });
        }
    }
}

/// A staging table's name beside `table` (same schema), unique per load. On
/// SQLite it carries the process id (see `sqlite_in_use`).
fn staging_table(dialect: Dialect, table: &str) -> String {
    let (schema, name) = split_table(table);
    let base = staging_base(name);
    let suffix: u32 = rand::random();
    let staging = match dialect {
        // SQLite has no identifier length limit.
        Dialect::Sqlite => format!("{base}__gust_staging_{:x}_{suffix:08x}", std::process::id()),
        _ => format!("{base}__gust_staging_{suffix:08x}"),
    };
    match schema {
        Some(s) => format!("{s}.{staging}"),
        None => staging,
    }
}

/// A table's schema, if named, and name.
fn split_table(table: &str) -> (Option<&str>, &str) {
    match table.rsplit_once('.') {
        Some((s, n)) => (Some(s), n),
        None => (None, table),
    }
}

/// The start of a staging table's name: PostgreSQL cuts identifiers at 63
/// bytes, so the base keeps at most 32 bytes of the target's name (cut on a
/// character boundary) and the suffix adds 23.
fn staging_base(name: &str) -> &str {
    let mut end = name.len().min(32);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// A staging table's name without its schema.
fn unqualified(staging: &str) -> &str {
    split_table(staging).1
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
    fn only_names_of_the_staging_form_are_swept() {
        let p = "orders__gust_staging_";
        let pg = staging_table(Dialect::Postgres, "orders");
        assert!(is_staging_name(Dialect::Postgres, p, &pg), "{pg}");
        assert!(is_staging_name(
            Dialect::MySql,
            p,
            "orders__gust_staging_deadbeef"
        ));
        for other in [
            "orders__gust_staging_archive",
            "orders__gust_staging_deadbeef_old",
            "orders__gust_staging_dead",
            "orders__gust_staging_",
            "orders_copy",
        ] {
            assert!(!is_staging_name(Dialect::Postgres, p, other), "{other}");
            assert!(!is_staging_name(Dialect::Sqlite, p, other), "{other}");
        }
        let lite = staging_table(Dialect::Sqlite, "main.orders");
        let lite = unqualified(&lite);
        assert!(is_staging_name(Dialect::Sqlite, p, lite), "{lite}");
        assert!(!is_staging_name(Dialect::Postgres, p, lite), "{lite}");
        // This process's table: in use while registered, stale after.
        let reg = Registered(lite.to_string());
        LIVE.lock().unwrap().insert(lite.to_string());
        assert!(sqlite_in_use(lite));
        drop(reg);
        assert!(!sqlite_in_use(lite));
    }

    #[test]
    fn staging_tables_sit_beside_their_target() {
        let s = staging_table(Dialect::Postgres, "analytics.iris_data");
        assert!(s.starts_with("analytics.iris_data__gust_staging_"), "{s}");
        let long = staging_table(Dialect::Postgres, &"x".repeat(100));
        assert!(long.len() < 63, "{long}");
    }

    #[test]
    fn staging_names_stay_under_63_bytes_with_non_ascii_tables() {
        // 40 two-byte characters: 80 bytes, cut at 32 bytes (16 characters).
        let table = "é".repeat(40);
        let s = staging_table(Dialect::Postgres, &format!("analytics.{table}"));
        let name = s.strip_prefix("analytics.").unwrap();
        assert!(name.len() <= 63, "{name} is {} bytes", name.len());
        assert!(name.starts_with(&"é".repeat(16)), "{name}");
        assert!(!name.starts_with(&"é".repeat(17)), "{name}");
        // A cut that would split a character falls before it.
        let odd = format!("a{}", "é".repeat(40));
        let s = staging_table(Dialect::Postgres, &odd);
        assert!(s.len() <= 63, "{s}");
        assert!(s.starts_with(&format!("a{}__gust", "é".repeat(15))), "{s}");
    }
}
