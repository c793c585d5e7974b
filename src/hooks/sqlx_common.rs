//! What the two sqlx-based hooks (PostgreSQL, SQLite) share: error mapping and
//! row streaming through a bounded channel.

use futures::StreamExt;
use futures::stream::BoxStream;

use super::sql::Row;
use crate::error::{Error, ErrorKind, Result};

/// Maps a sqlx error to a gust error of the right kind, naming the operation and the
/// conn id. The caller redacts it with the connection's secrets.
pub(crate) fn sqlx_error(system: &str, op: &str, conn_id: &str, e: sqlx::Error) -> Error {
    let kind = match &e {
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // PostgreSQL SQLSTATEs: auth, connection, undefined table, unique violation.
            Some("28P01" | "28000") => ErrorKind::Auth,
            Some(c) if c.starts_with("08") => ErrorKind::Unavailable,
            Some("42P01") => ErrorKind::NotFound,
            Some("23505") => ErrorKind::AlreadyExists,
            Some("40001" | "40P01" | "57P01") => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidInput,
        },
        sqlx::Error::PoolTimedOut => ErrorKind::Timeout,
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            ErrorKind::Unavailable
        }
        sqlx::Error::Configuration(_) => ErrorKind::Config,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => ErrorKind::Unsupported,
        _ => ErrorKind::Remote,
    };
    Error::new(kind, format!("{system}.{op}"), e.to_string())
        .with("conn_id", conn_id)
        .with_source(e)
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
