//! Classifying sqlx errors (PostgreSQL, SQLite) into gust's [`ErrorKind`]s.
//!
//! Pure: the hook's [`HookScope`](crate::hooks::scope::HookScope) names the operation,
//! adds the conn id and redacts.

use crate::error::{Error, ErrorKind};
use crate::hooks::scope::{Classified, driver_error};

/// The gust kind of a sqlx error. sqlx errors carry no retry override or hint:
/// a kind's default retryability fits them (`Unavailable`, `Timeout` retry).
pub(crate) fn classify(e: &sqlx::Error) -> Classified {
    let kind = match e {
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        sqlx::Error::Database(db) => code_kind(db.code().as_deref()),
        sqlx::Error::PoolTimedOut => ErrorKind::Timeout,
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            ErrorKind::Unavailable
        }
        sqlx::Error::Configuration(_) => ErrorKind::Config,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => ErrorKind::Unsupported,
        _ => ErrorKind::Remote,
    };
    (kind, None, None)
}

/// The kind of a database error code (PostgreSQL's SQLSTATE; SQLite's codes
/// fall through to `InvalidInput`).
fn code_kind(code: Option<&str>) -> ErrorKind {
    match code {
        // Invalid password, invalid authorization.
        Some("28P01" | "28000") => ErrorKind::Auth,
        // Connection exceptions.
        Some(c) if c.starts_with("08") => ErrorKind::Unavailable,
        // Undefined table; invalid catalog name (an unknown database).
        Some("42P01" | "3D000") => ErrorKind::NotFound,
        // Unique violation.
        Some("23505") => ErrorKind::AlreadyExists,
        // Serialization failure, deadlock, admin shutdown: try again.
        Some("40001" | "40P01" | "57P01") => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidInput,
    }
}

/// `e` as a gust error not yet named (the scope names it): classified, its
/// message the driver's plus PostgreSQL's `CONTEXT` when there is one, `e`
/// chained.
pub(crate) fn into_error(e: sqlx::Error) -> Error {
    let mut message = e.to_string();
    if let Some(place) = pg_where(&e) {
        message = format!("{message} (at {place})");
    }
    driver_error(classify(&e), message, e)
}

/// PostgreSQL's `CONTEXT` of an error: where it happened, e.g. `COPY t, line 999,
/// column id: "abc"` for a bad value in `bulk_load`. sqlx's Display drops it, yet
/// it is what tells a user which line of a million-line file to fix.
#[cfg(feature = "postgres")]
fn pg_where(e: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?
        .r#where()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
}

#[cfg(not(feature = "postgres"))]
fn pg_where(_: &sqlx::Error) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_kinds() {
        for (code, kind) in [
            ("28P01", ErrorKind::Auth),
            ("28000", ErrorKind::Auth),
            ("08006", ErrorKind::Unavailable),
            ("08001", ErrorKind::Unavailable),
            ("42P01", ErrorKind::NotFound),
            ("3D000", ErrorKind::NotFound),
            ("23505", ErrorKind::AlreadyExists),
            ("40001", ErrorKind::Unavailable),
            ("40P01", ErrorKind::Unavailable),
            ("57P01", ErrorKind::Unavailable),
            ("42601", ErrorKind::InvalidInput),
            ("2067", ErrorKind::InvalidInput),
        ] {
            assert_eq!(code_kind(Some(code)), kind, "{code}");
        }
        assert_eq!(code_kind(None), ErrorKind::InvalidInput);
    }

    #[test]
    fn driver_errors_map_to_kinds() {
        let kind = |e: sqlx::Error| classify(&e).0;
        assert_eq!(kind(sqlx::Error::RowNotFound), ErrorKind::NotFound);
        assert_eq!(kind(sqlx::Error::PoolTimedOut), ErrorKind::Timeout);
        assert_eq!(kind(sqlx::Error::PoolClosed), ErrorKind::Unavailable);
        assert_eq!(
            kind(sqlx::Error::Io(std::io::Error::other("refused"))),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(sqlx::Error::Configuration("bad".into())),
            ErrorKind::Config
        );
        assert_eq!(
            kind(sqlx::Error::Decode("x".into())),
            ErrorKind::Unsupported
        );
        assert_eq!(kind(sqlx::Error::WorkerCrashed), ErrorKind::Remote);
        assert_eq!(classify(&sqlx::Error::PoolTimedOut).1, None);
    }

    #[test]
    fn into_error_is_unnamed_and_chained() {
        let e = into_error(sqlx::Error::PoolTimedOut);
        assert_eq!(e.operation(), "");
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.is_retryable());
        assert!(std::error::Error::source(&e).is_some());
    }
}
