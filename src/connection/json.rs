//! Airflow's JSON form of a connection: [`Connection::from_json`] and
//! [`Connection::as_json`].

use super::pyjson::PyJson;
use super::{
    Connection, OP_JSON, invalid, normalize_conn_type, ordered_entries, parse_extra,
    validate_conn_id,
};
use crate::Result;

impl Connection {
    /// Parses Airflow's JSON form (`{"conn_type": "postgres", "host": …, "port": 5432,
    /// "extra": {…}}`), exactly as Airflow's `Connection.from_json`: `extra` may be an
    /// object or its JSON text, `port` a number or a numeric string, `conn_type` is
    /// normalized as in URIs, and `{"uri": "…"}` alone is parsed as a URI.
    ///
    /// Stricter than Airflow where Rust types require it: fields must be strings, the
    /// port must fit a `u16`, the extra must be a JSON object. Errors never quote values.
    pub fn from_json(conn_id: &str, json: &str) -> Result<Self> {
        validate_conn_id(conn_id, OP_JSON)?;
        let fail = |m: String| invalid(OP_JSON, conn_id, m);
        let entries = match PyJson::loads(json) {
            Ok(PyJson::Dict(entries)) => entries,
            Ok(_) => return Err(fail("the connection JSON is not an object".into())),
            Err(e) => {
                return Err(fail(format!(
                    "the connection JSON is malformed (line {}, column {})",
                    e.line(),
                    e.column()
                )));
            }
        };
        let mut conn = Connection::new(conn_id, "")?;
        conn.conn_type = None;
        let mut uri = None;
        let mut others = false;
        for (key, value) in entries {
            let text = |v: PyJson| match v {
                PyJson::Null => Ok(None),
                PyJson::Str(s) => Ok(Some(s)),
                _ => Err(fail(format!("`{key}` must be a string"))),
            };
            match key.as_str() {
                "uri" => uri = text(value)?,
                "extra" | "conn_type" | "port" if !value.is_truthy() => {}
                "extra" => {
                    let raw = match value {
                        PyJson::Str(s) => s,
                        other => other.dumps(),
                    };
                    conn.extra_dejson = parse_extra(&raw).map_err(fail)?;
                    conn.extra = Some(raw);
                    others = true;
                }
                "conn_type" => {
                    conn.conn_type = text(value)?.map(|t| normalize_conn_type(&t));
                    others = true;
                }
                "port" => {
                    conn.port = Some(json_port(&value).ok_or_else(|| {
                        fail("`port` must be an integer in 0..=65535 (or such a string)".into())
                    })?);
                    others = true;
                }
                "description" | "host" | "login" | "password" | "schema" => {
                    let value = text(value)?;
                    others = true; // even when null: Airflow passes it on as a keyword
                    match key.as_str() {
                        "description" => conn.description = value,
                        "host" => conn.host = value,
                        "login" => conn.login = value,
                        "password" => conn.password = value,
                        _ => conn.schema = value,
                    }
                }
                _ => return Err(fail(format!("unknown connection field `{key}`"))),
            }
        }
        match uri {
            Some(_) if others => Err(fail("`uri` cannot be combined with other fields".into())),
            Some(uri) => Connection::from_uri(conn_id, &uri),
            None => Ok(conn),
        }
    }

    /// The connection in Airflow's JSON form (`Connection.as_json()`): every set field but
    /// the id, and `extra` as an object when there are extras.
    pub fn as_json(&self) -> String {
        let mut entries = Vec::new();
        let fields = [
            ("conn_type", &self.conn_type),
            ("description", &self.description),
            ("host", &self.host),
            ("login", &self.login),
            ("password", &self.password),
            ("schema", &self.schema),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                entries.push((key.to_string(), PyJson::Str(v.clone())));
            }
        }
        if let Some(port) = self.port {
            entries.push(("port".into(), PyJson::Int(port.into())));
        }
        let extra = ordered_entries(self.extra.as_deref());
        if !extra.is_empty() {
            entries.push(("extra".into(), PyJson::Dict(extra)));
        }
        PyJson::Dict(entries).dumps()
    }
}

/// Airflow's `int(port)` for a JSON port, limited to what a `u16` holds.
fn json_port(value: &PyJson) -> Option<u16> {
    match value {
        PyJson::Int(i) => u16::try_from(*i).ok(),
        PyJson::Bool(b) => Some(u16::from(*b)),
        PyJson::Float(f) if f.is_finite() => u16::try_from(f.trunc() as i64).ok(),
        PyJson::Str(s) => {
            let s = s.trim();
            let digits = s.strip_prefix('+').unwrap_or(s);
            // Python's int() allows single underscores between digits.
            let valid = !digits.is_empty()
                && !digits.starts_with('_')
                && !digits.ends_with('_')
                && !digits.contains("__")
                && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
            if !valid {
                return None;
            }
            let digits = digits.replace('_', "");
            let digits = digits.trim_start_matches('0');
            if digits.len() > 5 {
                None
            } else {
                u16::try_from(digits.parse::<u32>().unwrap_or(0)).ok()
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_port_follows_python_int() {
        let port = |t: &str| json_port(&PyJson::loads(t).unwrap());
        assert_eq!(port("5432"), Some(5432));
        assert_eq!(port("\" +5_432 \""), Some(5432));
        assert_eq!(port("5432.9"), Some(5432));
        assert_eq!(port("\"0005432\""), Some(5432));
        for bad in [
            "\"abc\"", "\"5__4\"", "\"_5\"", "70000", "-1", "[1]", "\"\"",
        ] {
            assert_eq!(port(bad), None, "{bad}");
        }
    }
}
