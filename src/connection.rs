//! Airflow connections and variables: [`Connection`] and [`Variable`].
//!
//! A connection is read the way Airflow reads it, from `AIRFLOW_CONN_<CONN_ID>` (a URI,
//! or JSON when the value starts with `{`); a variable from `AIRFLOW_VAR_<KEY>`.
//! Parsing and [`Connection::get_uri`] follow Airflow 3's task-side `Connection`
//! byte for byte, including its quirks: a URI without a host or schema gives
//! `Some("")` for them (as Airflow's `""`), a type like `google-cloud-platform`
//! becomes `google_cloud_platform`, `postgresql` becomes `postgres`, query parameters
//! become string extras, and a `__extra__` parameter holds the extras as JSON.
//!
//! Secrets never reach [`Debug`](std::fmt::Debug), [`Display`](std::fmt::Display) or
//! error messages; [`Connection::secrets`] lists every form to scrub elsewhere.
//!
//! ```
//! use gust::Connection;
//!
//! let conn = Connection::from_uri("pg", "postgresql://app:p%40ss@db.internal:5432/sales?sslmode=require")?;
//! assert_eq!(conn.conn_type(), "postgres");
//! assert_eq!(conn.password(), Some("p@ss"));
//! assert_eq!(conn.port(), Some(5432));
//! assert_eq!(conn.extra_str("sslmode"), Some("require"));
//! assert_eq!(conn.get_uri(), "postgres://app:p%40ss@db.internal:5432/sales?sslmode=require");
//! assert_eq!(conn.to_string(), "postgres://app:***@db.internal:5432/sales?sslmode=require");
//! # Ok::<(), gust::Error>(())
//! ```

mod backend;
mod env;
mod json;
pub(crate) mod pyjson;
mod redact;
mod uri;

pub(crate) use self::backend::handed_out_secrets;
pub use self::backend::{SecretsBackend, set_secrets_backend};
pub(crate) use self::env::conn_env_name;
pub use self::env::{Variable, load_dotenv, load_dotenv_from};
pub use self::redact::is_sensitive_key;
pub(crate) use self::redact::{template_extras, variable_secrets};

use serde_json::{Map, Value};

use self::pyjson::PyJson;
// For the hooks that print URLs.
#[cfg_attr(not(feature = "mlflow"), allow(unused_imports))]
pub(crate) use self::redact::strip_userinfo;
use self::redact::{mask_json, password_candidates, schema_password};
use self::uri::{quote, quote_plus, unquote, urlencode, urlsplit};
use crate::error::mask;
use crate::{Error, ErrorKind, Result};

const OP_URI: &str = "connection.from_uri";
const OP_JSON: &str = "connection.from_json";
const OP_ENV: &str = "connection.from_env";
const EXTRA_KEY: &str = "__extra__";
const MASK: &str = "***";
/// Longest conn id Airflow accepts (`CONN_ID_MAX_LEN`).
const CONN_ID_MAX_LEN: usize = 250;

/// A connection to an external system, as Airflow's `Connection`.
///
/// Build one with [`Connection::new`] and the `with_*` setters, or read one with
/// [`from_env`](Connection::from_env), [`from_uri`](Connection::from_uri) or
/// [`from_json`](Connection::from_json). Equality compares the fields and the parsed
/// extras (not the formatting of the extras' JSON text).
#[derive(Clone)]
pub struct Connection {
    conn_id: String,
    conn_type: Option<String>,
    description: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    login: Option<String>,
    password: Option<String>,
    schema: Option<String>,
    /// Airflow's `extra`: JSON text of an object, kept verbatim (it shapes `get_uri`).
    extra: Option<String>,
    extra_dejson: Map<String, Value>,
    /// Encoded forms of secrets as they appeared in the parsed input.
    input_forms: Vec<String>,
}

impl PartialEq for Connection {
    fn eq(&self, o: &Self) -> bool {
        (
            &self.conn_id,
            &self.conn_type,
            &self.description,
            &self.host,
            self.port,
        ) == (&o.conn_id, &o.conn_type, &o.description, &o.host, o.port)
            && (
                &self.login,
                &self.password,
                &self.schema,
                &self.extra_dejson,
            ) == (&o.login, &o.password, &o.schema, &o.extra_dejson)
    }
}

fn invalid(operation: &'static str, conn_id: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, operation, message).with("conn_id", conn_id)
}

/// Airflow's `sanitize_conn_id`: 1 to 250 characters, each a word character or one of
/// `#!()-.:/\`.
fn validate_conn_id(conn_id: &str, operation: &'static str) -> Result<()> {
    let ok_char = |c: char| c.is_alphanumeric() || "_#!()-.:/\\".contains(c);
    let len = conn_id.chars().count();
    if (1..=CONN_ID_MAX_LEN).contains(&len) && conn_id.chars().all(ok_char) {
        return Ok(());
    }
    Err(invalid(
        operation,
        conn_id,
        format!(
            "invalid conn_id {conn_id:?}: it must be 1 to {CONN_ID_MAX_LEN} letters, digits \
             or characters among _#!()-.:/\\"
        ),
    ))
}

/// Airflow's `_normalize_conn_type`.
fn normalize_conn_type(conn_type: &str) -> String {
    if conn_type == "postgresql" {
        "postgres".into()
    } else {
        conn_type.replace('-', "_")
    }
}

/// Parses an extra's JSON text; it must be an object (as core Airflow's `_validate_extra`).
fn parse_extra(text: &str) -> std::result::Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the extra is JSON but not an object".into()),
        Err(e) => Err(format!(
            "the extra is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )),
    }
}

/// The extras as Airflow orders them (its `extra_dejson`, a Python dict).
fn ordered_entries(extra: Option<&str>) -> Vec<(String, PyJson)> {
    match extra.map(PyJson::loads) {
        Some(Ok(PyJson::Dict(entries))) => entries,
        _ => Vec::new(),
    }
}

impl Connection {
    /// A connection with only an id and a type; fails if the id breaks Airflow's rule
    /// (1 to 250 letters, digits or `_#!()-.:/\`).
    pub fn new(conn_id: impl Into<String>, conn_type: impl Into<String>) -> Result<Self> {
        let conn_id = conn_id.into();
        validate_conn_id(&conn_id, "connection.new")?;
        Ok(Connection {
            conn_id,
            conn_type: Some(conn_type.into()),
            description: None,
            host: None,
            port: None,
            login: None,
            password: None,
            schema: None,
            extra: None,
            extra_dejson: Map::new(),
            input_forms: Vec::new(),
        })
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the host.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Sets the port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the login.
    pub fn with_login(mut self, login: impl Into<String>) -> Self {
        self.login = Some(login.into());
        self
    }

    /// Sets the password.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets the schema (Airflow's name for the database, bucket, path… after the host).
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Sets one extra, replacing any extra of that key in place.
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> Self {
        let mut entries = ordered_entries(self.extra.as_deref());
        PyJson::set(&mut entries, key.into(), PyJson::from(&value));
        self.set_extra_text(PyJson::Dict(entries).dumps());
        self
    }

    /// Replaces all extras.
    pub fn with_extra_dejson(mut self, extra: Map<String, Value>) -> Self {
        if extra.is_empty() {
            self.extra = None;
            self.extra_dejson = extra;
        } else {
            self.extra = Some(PyJson::from(&extra).dumps());
            self.extra_dejson = extra;
        }
        self
    }

    fn set_extra_text(&mut self, text: String) {
        // Only called with text of a PyJson::Dict, which always parses as an object.
        self.extra_dejson = parse_extra(&text).unwrap_or_default();
        self.extra = Some(text);
    }

    /// The connection id.
    pub fn conn_id(&self) -> &str {
        &self.conn_id
    }

    /// The connection type (`postgres`, `aws`, …); `""` if none was given.
    pub fn conn_type(&self) -> &str {
        self.conn_type.as_deref().unwrap_or("")
    }

    /// The description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The host (`Some("")` for a URI without one, as Airflow).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The login (`Some("")` for `redis://:pw@host`).
    pub fn login(&self) -> Option<&str> {
        self.login.as_deref()
    }

    /// The password.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The schema (`Some("")` for a URI without a path, as Airflow).
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The extras, parsed.
    pub fn extra_dejson(&self) -> &Map<String, Value> {
        &self.extra_dejson
    }

    /// The extras as Airflow's `extra` JSON text; `None` when there are none.
    pub fn extra(&self) -> Option<String> {
        self.extra.clone()
    }

    /// A string extra: `key`, or else Airflow's prefixed form `extra__<conn_type>__<key>`
    /// (as providers' `_get_field`). Empty strings count as absent.
    pub fn extra_str(&self, key: &str) -> Option<&str> {
        let get = |k: &str| {
            self.extra_dejson
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        get(key).or_else(|| get(&format!("extra__{}__{key}", self.conn_type())))
    }

    /// Parses an Airflow connection URI (`type://login:password@host:port/schema?extras`),
    /// exactly as Airflow's `Connection.from_uri`.
    ///
    /// Errors are [`ErrorKind::InvalidInput`] and never quote the URI.
    pub fn from_uri(conn_id: &str, uri: &str) -> Result<Self> {
        validate_conn_id(conn_id, OP_URI)?;
        let fail = |problem: &str| {
            // Name the scheme only when it is plainly one (`scheme://`), never the rest.
            let scheme = urlsplit(uri).map(|s| s.scheme).unwrap_or_default();
            let hint = if !scheme.is_empty()
                && uri
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with(&format!("{scheme}://"))
            {
                format!(" `{scheme}://…`")
            } else {
                String::new()
            };
            let message = format!("invalid connection URI{hint}: {problem}");
            // Belt and braces: never let a password candidate through.
            let candidates = password_candidates(uri);
            let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
            invalid(OP_URI, conn_id, mask(&message, &candidates))
        };
        let schemes = uri.matches("://").count();
        if schemes > 2 {
            return Err(fail("more than two `://` separators"));
        }
        let with_protocol = schemes == 2;
        let conn_type = urlsplit(uri).map_err(fail)?.scheme;
        let rest = uri.replace(
            &format!("{conn_type}://"),
            if with_protocol { "" } else { "//" },
        );
        if with_protocol {
            let protocol = rest.split_once("://").map_or(&*rest, |(p, _)| p);
            if protocol.contains(['@', ':']) {
                return Err(fail("credentials or a port before the host's protocol"));
            }
        }
        let parts = urlsplit(&rest).map_err(fail)?;
        let mut host = unquote(&parts.hostname().unwrap_or_default());
        if host.contains('/') {
            let netloc = parts
                .netloc
                .rsplit_once('@')
                .map_or(&*parts.netloc, |(_, h)| h);
            host = unquote(netloc.split_once(':').map_or(netloc, |(h, _)| h));
        }
        if with_protocol && !host.is_empty() && !parts.scheme.is_empty() {
            host = format!("{}://{host}", parts.scheme);
        }
        let schema = unquote(parts.path.chars().skip(1).collect::<String>().as_str());
        if host.is_empty() && schema_password(&schema).is_some() {
            // Airflow parses this too (and so do we, identically); its password is
            // masked through `secrets()`, and the user learns why nothing connects.
            tracing::warn!(
                conn_id,
                "connection URI looks malformed: `{conn_type}:/…` has one slash after the \
                 scheme, so the login, password and host land in `schema`; write `{conn_type}://…`"
            );
        }
        let (login, password) = parts.userinfo();
        let mut input_forms: Vec<String> = password.iter().map(|p| p.to_string()).collect();
        let (login, password) = (login.map(unquote), password.map(unquote));
        let port = parts.port().map_err(fail)?;
        let mut extra = None;
        if !parts.query.is_empty() {
            let query = uri::parse_qsl_dict(&parts.query);
            if let Some((_, text, _)) = query.iter().find(|(k, _, _)| k == EXTRA_KEY) {
                extra = Some(text.clone());
            } else {
                let entries = query
                    .iter()
                    .map(|(k, v, _)| (k.clone(), PyJson::Str(v.clone())))
                    .collect();
                extra = Some(PyJson::Dict(entries).dumps());
                input_forms.extend(
                    query
                        .into_iter()
                        .filter(|(k, _, _)| is_sensitive_key(k))
                        .map(|(_, _, raw)| raw),
                );
            }
        }
        let extra_dejson = match extra.as_deref().filter(|e| !e.is_empty()) {
            Some(text) => {
                parse_extra(text).map_err(|p| fail(&format!("the `{EXTRA_KEY}` parameter: {p}")))?
            }
            None => Map::new(),
        };
        Ok(Connection {
            conn_id: conn_id.to_string(),
            conn_type: Some(normalize_conn_type(&conn_type)),
            description: None,
            host: Some(host),
            port,
            login,
            password,
            schema: Some(schema),
            extra: extra.filter(|e| !e.is_empty()),
            extra_dejson,
            input_forms,
        })
    }

    /// The connection as an Airflow URI, byte for byte what Airflow's `get_uri()` returns.
    pub fn get_uri(&self) -> String {
        self.render_uri(false)
    }

    fn render_uri(&self, masked: bool) -> String {
        let mut uri = match self.conn_type.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => format!("{}://", t.to_lowercase().replace('_', "-")),
            None => "//".to_string(),
        };
        let mut host = self.host.as_deref().unwrap_or("");
        if let Some((protocol, rest)) = host.split_once("://")
            && Some(protocol) != self.conn_type.as_deref()
        {
            if !protocol.is_empty() {
                uri.push_str(protocol);
                uri.push_str("://");
            }
            host = rest;
        }
        let mut authority = String::new();
        if let Some(login) = &self.login {
            authority.push_str(&quote(login));
        }
        if let Some(password) = &self.password {
            authority.push(':');
            authority.push_str(&if masked {
                MASK.to_string()
            } else {
                quote(password)
            });
        }
        if !authority.is_empty() {
            uri.push_str(&authority);
            uri.push('@');
        }
        let host_block = quote(host);
        uri.push_str(&host_block);
        if let Some(port) = self.port.filter(|p| *p != 0) {
            let at = if host_block.is_empty() && authority.is_empty() {
                "@"
            } else {
                ""
            };
            uri.push_str(&format!("{at}:{port}"));
        }
        let schema = self.schema.as_deref().unwrap_or("");
        if !schema.is_empty() {
            uri.push('/');
            uri.push_str(&quote(schema));
        }
        let Some(text) = self.extra.as_deref().filter(|t| !t.is_empty()) else {
            return uri;
        };
        uri.push_str(if schema.is_empty() { "/?" } else { "?" });
        let mut entries = ordered_entries(Some(text));
        if masked {
            entries = match mask_json(&PyJson::Dict(entries)) {
                PyJson::Dict(e) => e,
                _ => Vec::new(),
            };
        }
        let strings: Option<Vec<(&str, &str)>> = entries
            .iter()
            .map(|(k, v)| match v {
                PyJson::Str(s) => Some((k.as_str(), s.as_str())),
                _ => None,
            })
            .collect();
        let query = match strings.filter(|s| !s.is_empty()) {
            Some(pairs) => urlencode(pairs),
            None if masked => urlencode([(EXTRA_KEY, PyJson::Dict(entries).dumps().as_str())]),
            None => urlencode([(EXTRA_KEY, text)]),
        };
        if masked {
            uri.push_str(&query.replace(&quote_plus(MASK), MASK));
        } else {
            uri.push_str(&query);
        }
        uri
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_ids_follow_airflow() {
        for id in ["a", "my_conn-1.x:y/z\\w#!()", "ünïcode", &"x".repeat(250)] {
            assert!(validate_conn_id(id, "t").is_ok(), "{id}");
        }
        for id in ["", "a b", "a;b", "a\n", "a@b", &"x".repeat(251)] {
            assert!(validate_conn_id(id, "t").is_err(), "{id}");
        }
    }

    #[test]
    fn with_extra_keeps_order_and_replaces_in_place() {
        let c = Connection::new("c", "http")
            .unwrap()
            .with_extra("b", "1".into())
            .with_extra("a", 2.into());
        let c = c.with_extra("b", "3".into());
        assert_eq!(c.extra().as_deref(), Some(r#"{"b": "3", "a": 2}"#));
        assert_eq!(
            c.get_uri(),
            "http:///?__extra__=%7B%22b%22%3A+%223%22%2C+%22a%22%3A+2%7D"
        );
        assert_eq!(c.with_extra_dejson(Map::new()).extra(), None);
    }
}
