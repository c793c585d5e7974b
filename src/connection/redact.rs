//! What is secret in a connection, and how it is kept out of sight: Airflow's sensitive
//! key rule, [`Connection::secrets`], and the masked `Debug` and `Display`.

use std::fmt;

use serde_json::Value;

use super::pyjson::{self, PyJson};
use super::uri::{quote, quote_keep_slash, quote_plus, unquote};
use super::{Connection, MASK, ordered_entries};

/// Airflow's `DEFAULT_SENSITIVE_FIELDS`.
const SENSITIVE_FIELDS: [&str; 22] = [
    "access_key",
    "access_token",
    "api_key",
    "apikey",
    "auth_header",
    "authorization",
    "bearer",
    "connection_string",
    "dsn",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "proxy",
    "proxy_password",
    "proxies",
    "secret",
    "service_account",
    "service_key",
    "token",
    "keyfile_dict",
    "webhook_url",
];

/// Whether the value of an extra (or variable) named `key` is a secret, by Airflow's rule:
/// the key, lower-cased with every run of non-word characters turned into `_`, contains
/// one of Airflow's `DEFAULT_SENSITIVE_FIELDS` (`password`, `passwd`, `secret`, `token`,
/// `api_key`, `apikey`, `access_key`, `private_key`, `passphrase`, `authorization`,
/// `proxy`, `dsn`, `keyfile_dict`, …).
pub fn is_sensitive_key(key: &str) -> bool {
    let mut normalized = String::with_capacity(key.len());
    let mut in_run = false;
    for c in key.trim().to_lowercase().chars() {
        let word = c.is_alphanumeric() || c == '_';
        if word {
            normalized.push(c);
        } else if !in_run {
            normalized.push('_');
        }
        in_run = !word;
    }
    SENSITIVE_FIELDS.iter().any(|f| normalized.contains(f))
}

/// The `user:password` part of every `scheme://user:password@host` URL in `text`, as
/// byte ranges (the part between `://` and the last `@` of the authority).
fn userinfo_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("://") {
        let start = from + at + 3;
        let end = text[start..]
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`') || c.is_whitespace()
            })
            .map_or(text.len(), |i| start + i);
        if let Some(i) = text[start..end].rfind('@') {
            spans.push((start, start + i));
        }
        from = end;
    }
    spans
}

/// The secrets the URLs in `text` carry in their userinfo: each password, raw and
/// percent-decoded, or the user when there is no password (a token, as in
/// `https://TOKEN@host`).
fn url_userinfo_secrets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (start, end) in userinfo_spans(text) {
        let info = &text[start..end];
        let secret = info.split_once(':').map_or(info, |(_, pass)| pass);
        if !secret.is_empty() {
            out.push(secret.to_string());
            out.push(unquote(secret));
        }
    }
    out
}

/// `text` with the userinfo (`user:password@`) of every URL in it removed: how a URL is
/// printed.
#[cfg_attr(not(feature = "mlflow"), allow(dead_code))]
pub(crate) fn strip_userinfo(text: &str) -> String {
    let mut out = text.to_string();
    for (start, end) in userinfo_spans(text).into_iter().rev() {
        out.replace_range(start..=end, "");
    }
    out
}

/// `text` with the password of every URL's userinfo (or a lone user: a token) as `***`,
/// the user kept: how a connection's extras print.
fn mask_userinfo(text: &str) -> String {
    let mut out = text.to_string();
    for (start, end) in userinfo_spans(text).into_iter().rev() {
        let info = &text[start..end];
        if info.is_empty() {
            continue;
        }
        let masked = match info.split_once(':') {
            Some((user, _)) => format!("{user}:{MASK}"),
            None => MASK.to_string(),
        };
        out.replace_range(start..end, &masked);
    }
    out
}

/// The password of a URI that lost its `//` (`postgres:/user:pw@host/db`), which
/// Airflow's parser leaves in `schema` as `user:pw@host/db`.
pub(super) fn schema_password(schema: &str) -> Option<&str> {
    let (info, _) = schema.split('/').next()?.rsplit_once('@')?;
    info.split_once(':')
        .map(|(_, pass)| pass)
        .filter(|p| !p.is_empty())
}

/// Replaces every value under a sensitive key (at any depth) by `***`, and the
/// password in any URL's userinfo.
pub(super) fn mask_json(v: &PyJson) -> PyJson {
    match v {
        PyJson::Str(s) if s.contains("://") => PyJson::Str(mask_userinfo(s)),
        PyJson::Dict(entries) => PyJson::Dict(
            entries
                .iter()
                .map(|(k, v)| {
                    let v = if is_sensitive_key(k) {
                        PyJson::Str(MASK.into())
                    } else {
                        mask_json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        PyJson::List(items) => PyJson::List(items.iter().map(mask_json).collect()),
        other => other.clone(),
    }
}

/// A connection's extras as templates see them: every entry under a sensitive
/// key (at any depth) left out — like the password, a secret is not a template
/// variable, so using one is an error, not a silent `***` — and the password
/// in any URL's userinfo masked.
pub(crate) fn template_extras(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains("://") => Value::String(mask_userinfo(s)),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !is_sensitive_key(k))
                .map(|(k, v)| (k.clone(), template_extras(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(template_extras).collect()),
        other => other.clone(),
    }
}

/// The secrets among the variables (`AIRFLOW_VAR_<KEY>`), as Airflow's masker
/// finds them: the value of a variable whose key is sensitive (`db_password`,
/// `api_token`…), and in a JSON variable every scalar under a sensitive key and
/// the password of every URL.
pub(crate) fn variable_secrets() -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        let Some(key) = name.strip_prefix("AIRFLOW_VAR_") else {
            continue;
        };
        secrets_of_variable(key, value, &mut out);
    }
    out.retain(|s| !s.is_empty());
    out
}

/// The secrets in one variable's value, by the rules of [`variable_secrets`].
pub(crate) fn secrets_of_variable(key: &str, value: &str, out: &mut Vec<String>) {
    if is_sensitive_key(key) {
        out.push(value.to_string());
    } else if let Ok(json) = serde_json::from_str::<Value>(value) {
        sensitive_values(&json, false, out);
    } else if value.contains("://") {
        out.extend(url_userinfo_secrets(value));
    }
}

/// Every scalar under a sensitive key, as text, and the userinfo secrets of every URL.
fn sensitive_values(v: &Value, under_sensitive: bool, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !under_sensitive && s.contains("://") => {
            out.extend(url_userinfo_secrets(s));
        }
        Value::Object(map) => {
            for (k, v) in map {
                sensitive_values(v, under_sensitive || is_sensitive_key(k), out);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| sensitive_values(v, under_sensitive, out)),
        Value::String(s) if under_sensitive => out.push(s.clone()),
        Value::Number(n) if under_sensitive => out.push(n.to_string()),
        _ => {}
    }
}

impl Connection {
    /// Every string to scrub from logs and errors: the password, its encoded forms (as in
    /// [`get_uri`](Self::get_uri), as in the parsed input, `quote_plus`-ed, JSON-escaped)
    /// and likewise the values of sensitive extras (see [`is_sensitive_key`]) at any depth,
    /// and the credentials in the userinfo of any URL the connection holds (an
    /// `endpoint_url` extra such as `http://user:pw@host`, a host with a protocol, a
    /// password that a malformed URI left in `schema`).
    /// Pass it to [`Error::redact`](crate::Error::redact).
    pub fn secrets(&self) -> Vec<String> {
        let mut values: Vec<String> = self.password.iter().cloned().collect();
        values.extend(self.url_borne_secrets());
        sensitive_values(
            &Value::Object(self.extra_dejson.clone()),
            false,
            &mut values,
        );
        let mut out: Vec<String> = Vec::new();
        for v in values {
            let escaped = pyjson::escape(&v);
            let forms = [
                quote(&v),
                quote_keep_slash(&v),
                quote_plus(&v),
                quote_plus(&escaped),
                quote(&escaped),
                escaped,
                v,
            ];
            out.extend(forms);
        }
        out.extend(self.input_forms.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        out.retain(|s| !s.is_empty() && seen.insert(s.clone()));
        out
    }
}

impl Connection {
    /// Credentials carried by URLs outside the login/password fields: the host's
    /// userinfo and a password a malformed URI left in `schema` (extras are covered by
    /// [`sensitive_values`]).
    fn url_borne_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(host) = &self.host {
            out.extend(url_userinfo_secrets(host));
        }
        if let Some(pass) = self.schema.as_deref().and_then(schema_password) {
            out.push(pass.to_string());
            out.push(unquote(pass));
        }
        out
    }

    /// Masks what [`url_borne_secrets`](Self::url_borne_secrets) finds in `text`.
    fn mask_url_borne(&self, text: &str) -> String {
        let secrets = self.url_borne_secrets();
        let mut all: Vec<String> = secrets.iter().map(|s| quote(s)).collect();
        all.extend(secrets);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        crate::error::mask(text, &all)
    }
}

/// The raw and decoded password part of whatever authority `uri` seems to have: what an
/// error message about a malformed URI must not contain.
pub(super) fn password_candidates(uri: &str) -> Vec<String> {
    let mut out = Vec::new();
    for authority in uri.split("://").skip(1) {
        if let Some((info, _)) = authority.rsplit_once('@')
            && let Some((_, pass)) = info.split_once(':')
        {
            out.push(unquote(pass));
            out.push(pass.to_string());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

impl fmt::Debug for Connection {
    /// Every field, with the password and sensitive extras (at any depth) as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Raw(String);
        impl fmt::Debug for Raw {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        let extras = mask_json(&PyJson::Dict(ordered_entries(self.extra.as_deref()))).dumps();
        f.debug_struct("Connection")
            .field("conn_id", &self.conn_id)
            .field("conn_type", &self.conn_type)
            .field("description", &self.description)
            .field("host", &self.host.as_deref().map(mask_userinfo))
            .field("port", &self.port)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .field(
                "schema",
                &self.schema.as_deref().map(|s| self.mask_url_borne(s)),
            )
            .field("extra_dejson", &Raw(extras))
            .finish()
    }
}

impl fmt::Display for Connection {
    /// The URI form, with the password and sensitive extras as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mask_url_borne(&self.render_uri(true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_keys_follow_airflow() {
        for key in [
            "password",
            "DB_PASSWORD",
            "X-Api-Key",
            "aws_secret_access_key",
            "private_key_passphrase",
            "Authorization",
            "keyfile_dict",
            "proxy_url",
            "auth token",
            "api--key",
        ] {
            assert!(is_sensitive_key(key), "{key}");
        }
        for key in [
            "region_name",
            "sslmode",
            "host",
            "login",
            "endpoint_url",
            "keyfile",
            "api_-key",
        ] {
            assert!(!is_sensitive_key(key), "{key}");
        }
    }

    #[test]
    fn url_userinfo_is_found_stripped_and_masked() {
        let text = "at http://al:p%40ss@h:1/x and https://TOKEN@h2?q, not mailto:a@b or ://@h";
        assert_eq!(
            url_userinfo_secrets(text),
            ["p%40ss", "p@ss", "TOKEN", "TOKEN"]
        );
        assert_eq!(
            strip_userinfo(text),
            "at http://h:1/x and https://h2?q, not mailto:a@b or ://h"
        );
        assert_eq!(
            mask_userinfo(text),
            "at http://al:***@h:1/x and https://***@h2?q, not mailto:a@b or ://@h"
        );
        assert_eq!(strip_userinfo("http://h/a@b"), "http://h/a@b");
    }

    #[test]
    fn a_password_left_in_schema_is_found() {
        assert_eq!(schema_password("user:pw@host/db"), Some("pw"));
        assert_eq!(schema_password("warehouse"), None);
        assert_eq!(schema_password("db/a:b@c"), None);
    }

    #[test]
    fn short_url_borne_secrets_stay_out_of_display() {
        let c = Connection::new("c", "postgres")
            .unwrap()
            .with_host("h")
            .with_schema("user:pw@host/db");
        let shown = c.to_string();
        assert!(shown.contains("%3A***%40"), "{shown}");
        assert!(!shown.contains("pw"), "{shown}");
        let c = Connection::new("c", "http")
            .unwrap()
            .with_host("https://tok@h");
        let shown = c.to_string();
        assert!(shown.contains("//***%40h"), "{shown}");
        assert!(!shown.contains("tok"), "{shown}");
    }

    #[test]
    fn password_candidates_cover_malformed_authorities() {
        assert_eq!(password_candidates("pg://u:p%40x@h:zz"), ["p@x", "p%40x"]);
        assert!(password_candidates("pg://h").is_empty());
    }
}
