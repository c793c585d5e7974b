//! `tracing` events as JSON lines on the `--logs` socket, so they land in
//! Airflow's task log.
//!
//! Airflow's supervisor reads one JSON object per line:
//! `{"event": "…", "level": "info", "timestamp": "…Z", "logger": "…", …fields}`,
//! `level` in lower case. Events logged before the socket is connected are kept
//! and sent once it is; events below `AIRFLOW__LOGGING__LOGGING_LEVEL` (default
//! `INFO`) are dropped. Every string is masked with the secrets the process knows
//! (the connections and variables in its environment and those Airflow handed
//! over), so a secret in an event field never reaches the log.

use std::io::Write as _;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Where the lines go: a buffer until the socket connects, then the socket.
#[derive(Default)]
pub(crate) struct LogSink {
    inner: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    pending: Vec<String>,
    stream: Option<TcpStream>,
    /// The socket failed: further lines go to stderr, which Airflow also logs.
    broken: bool,
}

impl LogSink {
    /// Sends the lines kept so far, then every later line, to `stream`.
    pub(crate) fn connect(&self, mut stream: TcpStream) {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let pending = std::mem::take(&mut state.pending);
        for line in pending {
            if stream.write_all(line.as_bytes()).is_err() {
                state.broken = true;
                eprint!("{line}");
            }
        }
        state.stream = Some(stream);
    }

    fn write(&self, line: String) {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if state.broken {
            eprint!("{line}");
            return;
        }
        match &mut state.stream {
            None => state.pending.push(line),
            Some(s) => {
                if s.write_all(line.as_bytes()).is_err() {
                    state.broken = true;
                    eprint!("{line}");
                }
            }
        }
    }

    /// Flushes and shuts the socket's write side, so Airflow reads every line
    /// before the process exits.
    pub(crate) fn close(&self) {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for line in std::mem::take(&mut state.pending) {
            eprint!("{line}");
        }
        if let Some(s) = state.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// The layer; see the module docs.
pub(crate) struct AirflowLogs {
    sink: Arc<LogSink>,
    min_level: Level,
    secrets: Arc<dyn Fn() -> Vec<String> + Send + Sync>,
}

impl AirflowLogs {
    pub(crate) fn new(
        sink: Arc<LogSink>,
        secrets: Arc<dyn Fn() -> Vec<String> + Send + Sync>,
    ) -> Self {
        AirflowLogs {
            sink,
            min_level: level_from_env(),
            secrets,
        }
    }
}

/// `AIRFLOW__LOGGING__LOGGING_LEVEL`, which Airflow's supervisor sets for the child.
fn level_from_env() -> Level {
    match std::env::var("AIRFLOW__LOGGING__LOGGING_LEVEL")
        .unwrap_or_default()
        .to_ascii_uppercase()
        .as_str()
    {
        "DEBUG" | "NOTSET" => Level::DEBUG,
        "WARNING" | "WARN" => Level::WARN,
        "ERROR" | "CRITICAL" | "FATAL" => Level::ERROR,
        _ => Level::INFO,
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        // Airflow has no trace level.
        Level::DEBUG | Level::TRACE => "debug",
    }
}

impl<S> Layer<S> for AirflowLogs
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let level = *event.metadata().level();
        // tracing orders levels by verbosity: ERROR < WARN < INFO < DEBUG.
        if level > self.min_level {
            return;
        }
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let secrets = (self.secrets)();
        let secret_strs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let mut obj = Map::new();
        obj.insert(
            "event".into(),
            Value::String(crate::error::mask(&fields.message, &secret_strs)),
        );
        obj.insert("level".into(), Value::String(level_name(level).into()));
        obj.insert(
            "timestamp".into(),
            Value::String(
                chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string(),
            ),
        );
        obj.insert(
            "logger".into(),
            Value::String(event.metadata().target().into()),
        );
        for (k, v) in fields.pairs {
            let v = crate::error::redact_value(v, &secrets);
            obj.entry(k).or_insert(v);
        }
        let mut line = Value::Object(obj).to_string();
        line.push('\n');
        self.sink.write(line);
    }
}

#[derive(Default)]
struct JsonFields {
    message: String,
    pairs: Vec<(String, Value)>,
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.pairs
                .push((field.name().into(), Value::String(value.into())));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.pairs.push((field.name().into(), Value::from(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.pairs.push((field.name().into(), Value::from(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.pairs.push((field.name().into(), Value::from(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.pairs.push((field.name().into(), Value::from(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.pairs.push((field.name().into(), Value::String(text)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    #[test]
    fn events_before_and_after_connecting_arrive_as_json_lines_masked() {
        use tracing_subscriber::prelude::*;
        let sink = Arc::new(LogSink::default());
        let layer = AirflowLogs {
            sink: sink.clone(),
            min_level: Level::INFO,
            secrets: Arc::new(|| vec!["hunter2-secret".to_string()]),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(rows = 3, "before connecting");
            tracing::debug!("dropped: below the level");
            sink.connect(TcpStream::connect(addr).unwrap());
            tracing::warn!(
                url = "postgres://u:hunter2-secret@h/db",
                "after hunter2-secret"
            );
            sink.close();
        });
        let (conn, _) = listener.accept().unwrap();
        let lines: Vec<Value> = std::io::BufReader::new(conn)
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["event"], "before connecting");
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(lines[0]["rows"], 3);
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["level"], "warning");
        let text = lines[1].to_string();
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert_eq!(lines[1]["event"], "after ***");
    }
}
