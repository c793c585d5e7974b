//! Rows as JSON under numbered keys: `{prefix}:0`, `{prefix}:1`, …

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{MAX_GROUP, RedisHook};
use crate::error::Result;

/// Keys read per round trip by [`RedisHook::get_rows_json`].
const ROW_CHUNK: usize = 200;

impl RedisHook {
    /// Stores each row as JSON under `{prefix}:{index}` (index from 0: `row:0`,
    /// `row:1`, …); returns the number of rows written.
    ///
    /// Then deletes `{prefix}:{n}`, so that a reader stopping at the first missing
    /// index ([`get_rows_json`](Self::get_rows_json)) never runs on into the rows of
    /// an earlier, longer load: re-running a load is idempotent for readers.
    pub async fn set_rows_json<T: Serialize>(
        &self,
        prefix: &str,
        rows: impl IntoIterator<Item = T>,
    ) -> Result<usize> {
        let mut n = 0usize;
        let mut chunk = Vec::with_capacity(MAX_GROUP);
        for row in rows {
            let key = format!("{prefix}:{n}");
            let json = self.to_json_bytes("redis.set_rows_json", &key, &row)?;
            chunk.push((key, json));
            n += 1;
            if chunk.len() == MAX_GROUP {
                self.mset(&chunk).await?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            self.mset(&chunk).await?;
        }
        self.delete(&[format!("{prefix}:{n}")]).await?;
        tracing::info!(conn_id = %self.conn_id(), prefix, rows = n, "redis rows stored");
        Ok(n)
    }

    /// Reads `{prefix}:0`, `{prefix}:1`, … as JSON until one is missing, 200 keys
    /// per round trip.
    pub async fn get_rows_json<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>> {
        let mut rows = Vec::new();
        loop {
            let start = rows.len();
            let keys: Vec<String> = (start..start + ROW_CHUNK)
                .map(|i| format!("{prefix}:{i}"))
                .collect();
            let values = self.mget(&keys).await?;
            for (key, value) in keys.iter().zip(values) {
                let Some(value) = value else {
                    tracing::info!(conn_id = %self.conn_id(), prefix, rows = rows.len(), "redis rows loaded");
                    return Ok(rows);
                };
                rows.push(self.parse_json("redis.get_rows_json", key, &value)?);
            }
        }
    }
}
