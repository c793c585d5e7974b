//! `macros`: what Airflow's `macros` module offers templates
//! (`airflow.sdk.execution_time.macros`): `ds_add`, `ds_format`,
//! `datetime_diff_for_humans`, and the modules it re-exports — `datetime`,
//! `timedelta`, `dateutil` (`relativedelta`, `parser.parse`), `time`, `uuid`,
//! `random`, `json`.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use minijinja::value::{Object, Value, from_args};
use minijinja::{Error, ErrorKind, State};

use super::dates::{self, Delta, RelDelta, invalid};
use crate::connection::pyjson::PyJson;

/// `macros` itself.
#[derive(Debug)]
pub(crate) struct Macros;

const AVAILABLE: &str = "ds_add, ds_format, datetime, timedelta, dateutil, time, uuid, random, json, datetime_diff_for_humans";

impl Object for Macros {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from_object(match key.as_str()? {
            "datetime" => Module::Datetime,
            "dateutil" => Module::Dateutil,
            "relativedelta" => Module::Relativedelta,
            "parser" => Module::Parser,
            "time" => Module::Time,
            "uuid" => Module::Uuid,
            "json" => Module::Json,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "ds_add" => {
                let (ds, days): (&str, i64) = from_args(args)?;
                if days == 0 {
                    return Ok(Value::from(ds));
                }
                let date = parse_ds(ds)?;
                let shifted = Duration::try_days(days)
                    .and_then(|d| date.checked_add_signed(d))
                    .ok_or_else(|| invalid(format!("ds_add({ds:?}, {days}) is out of range")))?;
                Ok(Value::from(shifted.format("%Y-%m-%d").to_string()))
            }
            "ds_format" => {
                let (ds, input, output): (&str, &str, &str) = from_args(args)?;
                let parsed = NaiveDateTime::parse_from_str(ds, input)
                    .or_else(|_| {
                        NaiveDate::parse_from_str(ds, input)
                            .map(|d| d.and_time(chrono::NaiveTime::MIN))
                    })
                    .map_err(|e| {
                        invalid(format!("ds_format: {ds:?} does not match {input:?}: {e}"))
                    })?;
                super::chrono_format::Formattable::format_checked(&parsed, output).map(Value::from)
            }
            "datetime" => dates::datetime_ctor(args),
            "timedelta" => Delta::from_args(args).map(Value::from_object),
            "random" => {
                from_args::<()>(args)?;
                Ok(Value::from(rand::random::<f64>()))
            }
            "datetime_diff_for_humans" => dates::diff_for_humans_macro(args),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!(
                    "macros.{method} does not exist in gust's templates (available: {AVAILABLE})"
                ),
            )),
        }
    }
}

fn parse_ds(ds: &str) -> Result<NaiveDate, Error> {
    NaiveDate::parse_from_str(ds, "%Y-%m-%d")
        .map_err(|_| invalid(format!("{ds:?} is not a YYYY-MM-DD date")))
}

/// The Python modules `macros` re-exports, with the functions DAGs call on them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Module {
    Datetime,
    Dateutil,
    Relativedelta,
    Parser,
    Time,
    Uuid,
    Json,
}

impl Object for Module {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match (**self, key.as_str()?) {
            (Module::Dateutil, "relativedelta") => Some(Value::from_object(Module::Relativedelta)),
            (Module::Dateutil, "parser") => Some(Value::from_object(Module::Parser)),
            _ => None,
        }
    }

    /// `macros.datetime(2025, 1, 1)`: the class itself is callable.
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match **self {
            Module::Datetime => dates::datetime_ctor(args),
            _ => Err(invalid("this module is not callable")),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match (**self, method) {
            (Module::Datetime, "now" | "utcnow" | "today") => {
                from_args::<()>(args)?;
                Ok(dates::now())
            }
            (Module::Datetime, "strptime") => {
                let (text, fmt): (&str, &str) = from_args(args)?;
                dates::strptime(text, fmt)
            }
            (Module::Datetime, "fromisoformat") | (Module::Parser, "parse" | "isoparse") => {
                let (text,): (&str,) = from_args(args)?;
                dates::parse_date(text)
            }
            (Module::Relativedelta, "relativedelta") => {
                RelDelta::from_args(args).map(Value::from_object)
            }
            (Module::Time, "time") => {
                from_args::<()>(args)?;
                let now = chrono::Utc::now();
                Ok(Value::from(
                    now.timestamp() as f64 + f64::from(now.timestamp_subsec_micros()) / 1e6,
                ))
            }
            (Module::Uuid, "uuid4") => {
                from_args::<()>(args)?;
                Ok(Value::from_object(Uuid(uuid4())))
            }
            (Module::Json, "dumps") => {
                let (v,): (Value,) = from_args(args)?;
                // The connection module's `json.dumps`, the one Airflow's
                // connection JSON is checked against.
                let json = serde_json::to_value(&v)
                    .and_then(serde_json::from_value::<PyJson>)
                    .map_err(|e| invalid(format!("json.dumps: {e}")))?;
                Ok(Value::from(json.dumps()))
            }
            (Module::Json, "loads") => {
                let (text,): (&str,) = from_args(args)?;
                let json: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| invalid(format!("json.loads: {e}")))?;
                Ok(super::json_value(&json))
            }
            (m, _) => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("{m:?} has no function {method} in gust's templates"),
            )),
        }
    }
}

/// 16 random bytes with the version-4 and variant bits set.
fn uuid4() -> [u8; 16] {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

/// A `uuid.UUID`: prints hyphenated; `.hex` without hyphens.
#[derive(Debug)]
struct Uuid([u8; 16]);

impl Uuid {
    fn hex(&self) -> String {
        self.0.iter().fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

impl Object for Uuid {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "hex" => Some(Value::from(self.hex())),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = self.hex();
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}
