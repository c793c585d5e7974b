//! Reading a [`Connection`] into a [`RedisConfig`]: which nodes, which mode, which
//! credentials. Pure parsing, unit-tested without servers.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::connection::Connection;
use crate::error::{ErrorKind, Result};
use crate::hooks::scope::HookScope;

/// Port used when the connection names none, as redis-py and Airflow do.
pub const DEFAULT_PORT: u16 = 6379;

/// TLS settings of a [`RedisConfig`] (extra `ssl=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Whether the server certificate must name the host (extra `ssl_check_hostname`,
    /// default `true`). Airflow defaults to `false`; gust verifies unless told not to,
    /// because an unchecked hostname accepts any valid certificate for any site.
    /// Unchecked, the certificate chain is still verified. Single node only: a
    /// cluster always checks hostnames.
    pub check_hostname: bool,
    /// A PEM file of the certificate authorities to trust instead of the
    /// system's (extra `ssl_ca_certs`, redis-py's name): for servers with a
    /// private CA, such as a self-managed Redis.
    pub ca_certs: Option<std::path::PathBuf>,
}

/// Everything needed to open a Redis client, read from a [`Connection`] by
/// [`RedisConfig::from_connection`]. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub(crate) conn_id: String,
    pub(crate) nodes: Vec<(String, u16)>,
    pub(crate) cluster: bool,
    pub(crate) db: i64,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("conn_id", &self.conn_id)
            .field("nodes", &self.nodes)
            .field("cluster", &self.cluster)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

impl RedisConfig {
    /// The configuration of a hook over a supplied connection
    /// ([`RedisHook::with_connection`](super::RedisHook::with_connection)): only
    /// the conn id is known, the connection handles the rest.
    pub(crate) fn custom(conn_id: &str) -> Self {
        RedisConfig {
            conn_id: conn_id.to_string(),
            nodes: Vec::new(),
            cluster: false,
            db: 0,
            username: None,
            password: None,
            tls: None,
            connect_timeout: Duration::ZERO,
            response_timeout: Duration::ZERO,
        }
    }

    /// Reads `conn`:
    ///
    /// * `host`/`port` — the node (port 6379 when missing);
    /// * `login`/`password` — ACL user and password (an empty login, as in
    ///   `redis://:pw@h`, means the default user);
    /// * extra `db`, else `schema` — the database index (default 0; a cluster has only 0);
    /// * extra `cluster` (`true`/`false`) — cluster mode; extra `startup_nodes`
    ///   (`"h1:p1,h2:p2"`, or a JSON list of `"h:p"` strings or `{"host", "port"}`
    ///   objects) — the nodes to discover the cluster from, else `host:port`;
    /// * extra `ssl` (`true`/`false`) — TLS; `ssl_check_hostname` (default `true`);
    ///   `ssl_ca_certs` — a PEM file of CAs to trust instead of the system's;
    /// * extras `socket_connect_timeout` and `socket_timeout` — seconds (redis-py's
    ///   names), default 5 and 30.
    pub fn from_connection(conn: &Connection) -> Result<Self> {
        let conn_id = conn.conn_id().to_string();
        // The scope (and the connection's secrets) only when an error is made.
        let bad =
            |msg: String| HookScope::new("redis", conn).error(ErrorKind::Config, "config", msg);
        let extra = conn.extra_dejson();

        let cluster = match extra.get("cluster") {
            None => false,
            Some(v) => parse_bool(v)
                .ok_or_else(|| bad(format!("extra `cluster` must be true or false, got {v}")))?,
        };
        let tls = match extra.get("ssl") {
            None => false,
            Some(v) => parse_bool(v)
                .ok_or_else(|| bad(format!("extra `ssl` must be true or false, got {v}")))?,
        };
        let check_hostname = match extra.get("ssl_check_hostname") {
            None => true,
            Some(v) => parse_bool(v).ok_or_else(|| {
                bad(format!(
                    "extra `ssl_check_hostname` must be true or false, got {v}"
                ))
            })?,
        };

        let host = conn.host().filter(|h| !h.is_empty());
        let port = conn.port().unwrap_or(DEFAULT_PORT);
        let mut nodes = match extra.get("startup_nodes") {
            Some(v) if cluster => parse_nodes(v).map_err(bad)?,
            Some(_) => {
                return Err(bad(
                    "extra `startup_nodes` is set but `cluster` is not true: set extra cluster=true"
                        .into(),
                ));
            }
            None => Vec::new(),
        };
        if nodes.is_empty() {
            let host = host.ok_or_else(|| {
                bad(
                    "the connection names no host: set its host (and port) or extra startup_nodes"
                        .into(),
                )
            })?;
            nodes.push((host.to_string(), port));
        }

        let db = match extra.get("db") {
            Some(v) => parse_int(v).ok_or_else(|| {
                bad(format!(
                    "extra `db` must be a non-negative integer, got {v}"
                ))
            })?,
            None => match conn.schema().map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) => s.parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| {
                    bad(format!(
                        "the schema must be a database index (a non-negative integer), got {s:?}"
                    ))
                })?,
                None => 0,
            },
        };
        if cluster && db != 0 {
            return Err(bad(format!(
                "a Redis Cluster has only database 0, the connection asks for {db}"
            )));
        }

        let seconds = |name: &str, default: f64| -> Result<Duration> {
            match extra.get(name) {
                None | Some(Value::Null) => Ok(Duration::from_secs_f64(default)),
                Some(v) => parse_float(v)
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        bad(format!(
                            "extra `{name}` must be a positive number of seconds, got {v}"
                        ))
                    }),
            }
        };

        Ok(RedisConfig {
            nodes,
            cluster,
            db,
            username: conn.login().filter(|l| !l.is_empty()).map(str::to_string),
            password: conn
                .password()
                .filter(|p| !p.is_empty())
                .map(str::to_string),
            tls: tls.then(|| TlsConfig {
                check_hostname,
                ca_certs: extra
                    .get("ssl_ca_certs")
                    .and_then(|v| v.as_str())
                    .filter(|p| !p.is_empty())
                    .map(Into::into),
            }),
            connect_timeout: seconds("socket_connect_timeout", 5.0)?,
            response_timeout: seconds("socket_timeout", 30.0)?,
            conn_id,
        })
    }

    /// The connection id this configuration was read from.
    pub fn conn_id(&self) -> &str {
        &self.conn_id
    }

    /// The node, or in cluster mode the startup nodes, as `(host, port)`.
    pub fn nodes(&self) -> &[(String, u16)] {
        &self.nodes
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The database index (always 0 in cluster mode).
    pub fn db(&self) -> i64 {
        self.db
    }

    /// The ACL user name, if not the default user.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Whether a password is set (the password itself is not exposed).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The TLS settings, when TLS is on.
    pub fn tls(&self) -> Option<&TlsConfig> {
        self.tls.as_ref()
    }

    /// How long to wait for a TCP (and TLS) connection.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long to wait for a reply.
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }
}

/// Extras from a URI query are strings (`"true"`); from JSON they may be booleans.
fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn parse_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|i| *i >= 0)
}

fn parse_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `"h1:p1,h2:p2"`, `["h1:p1", …]` or `[{"host": "h1", "port": p1}, …]` (redis-py's form).
fn parse_nodes(v: &Value) -> std::result::Result<Vec<(String, u16)>, String> {
    let one = |s: &str| -> std::result::Result<(String, u16), String> {
        let s = s.trim();
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>().map_err(|_| {
                    format!("extra `startup_nodes` has a bad port in {s:?}: use host:port")
                })?,
            ),
            None => (s, DEFAULT_PORT),
        };
        if host.is_empty() {
            return Err(format!(
                "extra `startup_nodes` has an empty host in {s:?}: use host:port"
            ));
        }
        Ok((host.to_string(), port))
    };
    match v {
        Value::String(s) => s
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(one)
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => one(s),
                Value::Object(o) => {
                    let host = o.get("host").and_then(Value::as_str).unwrap_or_default();
                    let port = match o.get("port") {
                        None => Some(DEFAULT_PORT),
                        Some(p) => parse_int(p).and_then(|p| u16::try_from(p).ok()),
                    };
                    match port {
                        Some(port) if !host.is_empty() => Ok((host.to_string(), port)),
                        _ => Err(format!(
                            "extra `startup_nodes` entry {item} needs a host and a valid port"
                        )),
                    }
                }
                other => Err(format!(
                    "extra `startup_nodes` entry {other} must be \"host:port\" or {{\"host\", \"port\"}}"
                )),
            })
            .collect(),
        other => Err(format!(
            "extra `startup_nodes` must be \"h1:p1,h2:p2\" or a list, got {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(uri: &str) -> Result<RedisConfig> {
        RedisConfig::from_connection(&Connection::from_uri("r", uri).unwrap())
    }

    #[test]
    fn single_node_with_password_and_schema_db() {
        let c = cfg("redis://:s3cret@cache.local:6380/2").unwrap();
        assert_eq!(c.nodes(), &[("cache.local".to_string(), 6380)]);
        assert!(!c.is_cluster());
        assert_eq!(c.db(), 2);
        assert_eq!(c.username(), None, "an empty login is the default user");
        assert!(c.has_password());
        assert!(c.tls().is_none());
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "Debug must hide the password"
        );
    }

    #[test]
    fn defaults_port_db_and_timeouts() {
        let c = cfg("redis://h").unwrap();
        assert_eq!(c.nodes(), &[("h".to_string(), DEFAULT_PORT)]);
        assert_eq!(c.db(), 0);
        assert!(!c.has_password());
        assert_eq!(c.connect_timeout(), Duration::from_secs(5));
        assert_eq!(c.response_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn extra_db_wins_over_schema_and_acl_user_is_kept() {
        let c = cfg("redis://app:pw@h:1/3?db=5&socket_timeout=1.5").unwrap();
        assert_eq!(c.db(), 5);
        assert_eq!(c.username(), Some("app"));
        assert_eq!(c.response_timeout(), Duration::from_millis(1500));
    }

    #[test]
    fn cluster_with_startup_nodes_string() {
        let c = cfg(
            "redis://:pw@127.0.0.1:57001/?cluster=true&startup_nodes=127.0.0.1%3A57001%2C127.0.0.1%3A57002%2Cother%3A7",
        )
        .unwrap();
        assert!(c.is_cluster());
        assert_eq!(
            c.nodes(),
            &[
                ("127.0.0.1".to_string(), 57001),
                ("127.0.0.1".to_string(), 57002),
                ("other".to_string(), 7)
            ]
        );
    }

    #[test]
    fn cluster_falls_back_to_host_port() {
        let c = cfg("redis://h:7000?cluster=true").unwrap();
        assert!(c.is_cluster());
        assert_eq!(c.nodes(), &[("h".to_string(), 7000)]);
    }

    #[test]
    fn json_form_accepts_booleans_and_node_objects() {
        let conn = Connection::from_json(
            "r",
            r#"{"conn_type": "redis", "host": "ignored", "extra": {"cluster": true, "ssl": true,
                "ssl_check_hostname": false,
                "startup_nodes": [{"host": "a", "port": 1}, {"host": "b", "port": "2"}, "c:3"]}}"#,
        )
        .unwrap();
        let c = RedisConfig::from_connection(&conn).unwrap();
        assert_eq!(
            c.nodes(),
            &[
                ("a".to_string(), 1),
                ("b".to_string(), 2),
                ("c".to_string(), 3)
            ]
        );
        assert_eq!(
            c.tls(),
            Some(&TlsConfig {
                check_hostname: false,
                ca_certs: None
            })
        );
    }

    #[test]
    fn tls_checks_hostname_by_default() {
        let c = cfg("redis://h?ssl=true").unwrap();
        assert_eq!(
            c.tls(),
            Some(&TlsConfig {
                check_hostname: true,
                ca_certs: None
            })
        );
        assert!(cfg("redis://h?ssl=false").unwrap().tls().is_none());
    }

    #[test]
    fn bad_extras_are_config_errors_naming_the_conn() {
        for uri in [
            "redis://:pw@h?cluster=maybe",
            "redis://:pw@h?ssl=sometimes",
            "redis://:pw@h?db=-1",
            "redis://:pw@h?db=x",
            "redis://:pw@h/notanumber",
            "redis://:pw@h?cluster=true&db=1",
            "redis://:pw@h?cluster=true&startup_nodes=a%3Ax",
            "redis://:pw@h?cluster=true&startup_nodes=%3A1",
            "redis://:pw@h?startup_nodes=a%3A1",
            "redis://:pw@h?socket_timeout=0",
            "redis://:pw@h?socket_connect_timeout=soon",
            "redis://:pw@/0",
        ] {
            let e = cfg(uri).expect_err(uri);
            assert_eq!(e.kind(), ErrorKind::Config, "{uri}: {e}");
            assert_eq!(e.context("conn_id"), Some("r"), "{uri}");
            assert!(!e.to_string().contains("pw@"), "{uri}: {e}");
        }
    }
}
