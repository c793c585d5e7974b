//! `SCAN`-based key iteration, over every master in cluster mode. Never `KEYS`,
//! which blocks the server for as long as it walks the whole keyspace.

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::{Conn, RedisHook};
use crate::error::{Error, ErrorKind, Result};

impl RedisHook {
    /// The keys matching the glob `pattern` (`*` for all), as a stream, using
    /// `SCAN cursor MATCH pattern COUNT count`. In cluster mode every master is
    /// scanned in turn (replicas hold copies and are skipped).
    ///
    /// `SCAN`'s guarantees apply: a key present for the whole iteration is returned,
    /// possibly more than once (deduplicate if it matters); keys added or removed
    /// meanwhile may or may not be. In a cluster that is resharding, a key moving
    /// between masters may be missed or seen twice. A key that is not UTF-8 yields an
    /// [`ErrorKind::InvalidInput`] item, and the stream goes on.
    pub fn scan(&self, pattern: &str, count: usize) -> BoxStream<'static, Result<String>> {
        let pattern = pattern.to_string();
        let count = count.max(1);
        let hook = self.clone();
        match &self.conn {
            Conn::Single(_) | Conn::Custom(_) => hook.scan_node(None, pattern, count),
            Conn::Cluster(_) => stream::once(async move {
                let masters = hook.masters().await?;
                tracing::debug!(conn_id = %hook.conn_id(), masters = ?masters, "redis scan of every master");
                let per_master = masters.into_iter().map(move |m| {
                    hook.clone().scan_node(Some(m), pattern.clone(), count)
                });
                Ok::<_, Error>(stream::iter(per_master).flatten())
            })
            .try_flatten()
            .boxed(),
        }
    }

    /// The `host:port` of every master that serves slots, from `CLUSTER NODES`.
    pub async fn masters(&self) -> Result<Vec<(String, u16)>> {
        if !self.is_cluster() {
            return Ok(self.config.nodes.clone());
        }
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("NODES");
        let text: String = self.query("redis.masters", None, &cmd).await?;
        let masters = parse_masters(&text);
        if masters.is_empty() {
            return Err(self.scope.error(
                ErrorKind::Unavailable,
                "redis.masters",
                "CLUSTER NODES lists no master serving slots",
            ));
        }
        Ok(masters)
    }

    /// One node's keys: `node` is `None` on a single node, else the master to ask.
    fn scan_node(
        self,
        node: Option<(String, u16)>,
        pattern: String,
        count: usize,
    ) -> BoxStream<'static, Result<String>> {
        let scope = self.scope.clone();
        let pages = stream::try_unfold(Some(0u64), move |cursor| {
            let (hook, node, pattern) = (self.clone(), node.clone(), pattern.clone());
            async move {
                let Some(cursor) = cursor else {
                    return Ok::<_, Error>(None);
                };
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(count);
                let (next, keys): (u64, Vec<Vec<u8>>) = match (&hook.conn, node) {
                    (Conn::Cluster(c), Some((host, port))) => {
                        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host,
                            port,
                        });
                        let value = c
                            .clone()
                            .route_command(cmd, routing)
                            .await
                            .map_err(|e| hook.driver_error(e, "redis.scan", None))?;
                        redis::from_redis_value(value)
                            .map_err(|e| hook.driver_error(e.into(), "redis.scan", None))?
                    }
                    _ => hook.query("redis.scan", None, &cmd).await?,
                };
                let next = (next != 0).then_some(next);
                Ok(Some((stream::iter(keys.into_iter().map(Ok)), next)))
            }
        });
        pages
            .try_flatten()
            .map(move |k: Result<Vec<u8>>| {
                k.and_then(|k| {
                    String::from_utf8(k).map_err(|e| {
                        scope.error(
                            ErrorKind::InvalidInput,
                            "redis.scan",
                            format!("a key is not UTF-8: {e}"),
                        )
                    })
                })
            })
            .boxed()
    }
}

/// Masters with at least one slot, not failed, with an address, from `CLUSTER NODES`:
/// `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>…`
pub(crate) fn parse_masters(text: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 {
            continue;
        }
        let flags = fields[2];
        if !flags.split(',').any(|f| f == "master")
            || flags.split(',').any(|f| f == "fail" || f == "noaddr")
        {
            continue;
        }
        let addr = fields[1].split(['@', ',']).next().unwrap_or_default();
        if let Some((host, port)) = addr.rsplit_once(':')
            && !host.is_empty()
            && let Ok(port) = port.parse::<u16>()
        {
            out.push((host.to_string(), port));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_with_slots_only() {
        let text = "\
a1 127.0.0.1:57001@67001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:57002@67002 master - 0 0 2 connected 5461-10922
c3 127.0.0.1:57004@67004 slave a1 0 0 1 connected
d4 127.0.0.1:57003@67003,node3.local master - 0 0 3 connected 10923-16383
e5 127.0.0.1:57007@67007 master - 0 0 0 connected
f6 127.0.0.1:57008@67008 master,fail - 0 0 4 connected 1
g7 :0@0 master,noaddr - 0 0 5 connected 2
";
        assert_eq!(
            parse_masters(text),
            vec![
                ("127.0.0.1".to_string(), 57001),
                ("127.0.0.1".to_string(), 57002),
                ("127.0.0.1".to_string(), 57003)
            ]
        );
    }
}
