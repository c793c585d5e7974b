//! JSON as Python's `json` module reads and writes it: objects keep their key order (a
//! repeated key keeps its first position and its last value, as in a `dict`), and
//! [`PyJson::dumps`] prints like `json.dumps` with its defaults (`", "` and `": "`
//! separators, `ensure_ascii=True`, `float.__repr__` for floats).

use std::fmt::{self, Write as _};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value with ordered objects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PyJson {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<PyJson>),
    Dict(Vec<(String, PyJson)>),
}

impl PyJson {
    /// `json.loads(text)`.
    pub fn loads(text: &str) -> serde_json::Result<PyJson> {
        serde_json::from_str(text)
    }

    /// Python's truthiness (`if value:`).
    pub fn is_truthy(&self) -> bool {
        match self {
            PyJson::Null => false,
            PyJson::Bool(b) => *b,
            PyJson::Int(i) => *i != 0,
            PyJson::Float(f) => *f != 0.0,
            PyJson::Str(s) => !s.is_empty(),
            PyJson::List(l) => !l.is_empty(),
            PyJson::Dict(d) => !d.is_empty(),
        }
    }

    /// Inserts or replaces `key` (a replaced key keeps its position), as `d[key] = value`.
    pub fn set(entries: &mut Vec<(String, PyJson)>, key: String, value: PyJson) {
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => entries.push((key, value)),
        }
    }

    /// `json.dumps(self)`.
    pub fn dumps(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            PyJson::Null => out.push_str("null"),
            PyJson::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            PyJson::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyJson::Float(f) => out.push_str(&float_repr(*f)),
            PyJson::Str(s) => {
                out.push('"');
                out.push_str(&escape(s));
                out.push('"');
            }
            PyJson::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            PyJson::Dict(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push('"');
                    out.push_str(&escape(k));
                    out.push_str("\": ");
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// The inside of a JSON string as `json.dumps` writes it (`ensure_ascii=True`).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out
}

/// Python's `float.__repr__` (and `json.dumps`' `NaN` / `Infinity`).
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, as Python's repr does.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let decpt = exp + 1;
    if !(-4 < decpt && decpt <= 16) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    if decpt <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{sign}{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        format!("{sign}{int}.{frac}")
    }
}

impl From<&Value> for PyJson {
    fn from(v: &Value) -> Self {
        match v {
            Value::Null => PyJson::Null,
            Value::Bool(b) => PyJson::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => PyJson::Int(i.into()),
                (_, Some(u)) => PyJson::Int(u.into()),
                _ => PyJson::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => PyJson::Str(s.clone()),
            Value::Array(a) => PyJson::List(a.iter().map(PyJson::from).collect()),
            Value::Object(o) => {
                PyJson::Dict(o.iter().map(|(k, v)| (k.clone(), v.into())).collect())
            }
        }
    }
}

impl From<&Map<String, Value>> for PyJson {
    fn from(m: &Map<String, Value>) -> Self {
        PyJson::Dict(m.iter().map(|(k, v)| (k.clone(), v.into())).collect())
    }
}

impl<'de> Deserialize<'de> for PyJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PyJsonVisitor)
    }
}

struct PyJsonVisitor;

impl<'de> Visitor<'de> for PyJsonVisitor {
    type Value = PyJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<PyJson, E> {
        Ok(PyJson::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<PyJson, E> {
        Ok(PyJson::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<PyJson, E> {
        Ok(PyJson::Int(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<PyJson, E> {
        Ok(PyJson::Int(u.into()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<PyJson, E> {
        Ok(PyJson::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<PyJson, E> {
        Ok(PyJson::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<PyJson, E> {
        Ok(PyJson::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PyJson, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(PyJson::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PyJson, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, PyJson>()? {
            PyJson::set(&mut entries, k, v);
        }
        Ok(PyJson::Dict(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_matches_python() {
        let v =
            PyJson::loads(r#"{"b": [1, -2.5, true, null], "a": {"x": "é\"\\\n🔑\u007f"}, "b": 3}"#)
                .unwrap();
        // Python: json.dumps(json.loads(...)) keeps `b` first, with its last value.
        assert_eq!(
            v.dumps(),
            r#"{"b": 3, "a": {"x": "\u00e9\"\\\n\ud83d\udd11\u007f"}}"#
        );
        assert_eq!(PyJson::loads("{}").unwrap().dumps(), "{}");
    }

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (1.5, "1.5"),
            (1.0, "1.0"),
            (1e20, "1e+20"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-0.0, "-0.0"),
            (123456.789, "123456.789"),
            (0.1, "0.1"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-2.5e-5, "-2.5e-05"),
            (12345678901234567.0, "1.2345678901234568e+16"),
        ];
        for (f, py) in cases {
            assert_eq!(float_repr(f), py, "{f}");
        }
    }

    #[test]
    fn floats_parse_exactly_as_python() {
        // Python's json is exact; serde_json only with its `float_roundtrip` feature.
        let v = PyJson::loads("-902126.0750935259").unwrap();
        assert_eq!(
            v,
            PyJson::Float(-902126.0750935259),
            "enable serde_json's `float_roundtrip` feature"
        );
        assert_eq!(v.dumps(), "-902126.0750935259");
    }

    #[test]
    fn truthiness() {
        for (text, truthy) in [
            ("0", false),
            ("0.0", false),
            ("\"\"", false),
            ("[]", false),
            ("{}", false),
            ("null", false),
            ("false", false),
            ("1", true),
            ("\"x\"", true),
            ("[0]", true),
        ] {
            assert_eq!(PyJson::loads(text).unwrap().is_truthy(), truthy, "{text}");
        }
    }
}
