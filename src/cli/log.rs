//! One readable line per event on stderr.
//!
//! tracing-subscriber's default format repeats every enclosing span with all of
//! its fields on each line (`dag_run{dag_id=… run_id=… logical_date=…}:task_try{…}:`),
//! about 400 characters before the message. A person reading a pipeline's output
//! wants the time, the level, which task, the message and the event's own fields:
//!
//! ```text
//! 03:21:04.123  INFO extract        task try started
//! 03:21:04.201  INFO extract        postgres bulk dump done conn_id=pg bytes=1048576
//! 03:21:04.202  WARN load           try failed; will retry error="…" retry_in=10s
//! ```
//!
//! The task id comes from the `task_try` span the runner opens around each try. On
//! a terminal, the transfers' periodic `… in progress` events (rows, bytes) are
//! drawn on one line that is rewritten in place, with the rate since the try began.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Installs the readable format on stderr, filtered by `RUST_LOG` (default: `info`
/// for gust and the binary). Does nothing when the program already installed a
/// subscriber.
pub(crate) fn init() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(terminal)
        .event_format(Readable::new(terminal));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(TaskSpans)
        .with(fmt)
        .try_init();
}

/// What [`TaskSpans`] remembers of a `task_try` span.
struct TaskTry {
    task_id: String,
    started: Instant,
}

/// Records the task id and start of each `task_try` span, for the formatter.
pub(crate) struct TaskSpans;

impl<S> Layer<S> for TaskSpans
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if attrs.metadata().name() != "task_try" {
            return;
        }
        let mut visitor = FieldFinder {
            name: "task_id",
            value: None,
        };
        attrs.record(&mut visitor);
        if let (Some(task_id), Some(span)) = (visitor.value, ctx.span(id)) {
            span.extensions_mut().insert(TaskTry {
                task_id,
                started: Instant::now(),
            });
        }
    }
}

struct FieldFinder {
    name: &'static str,
    value: Option<String>,
}

impl Visit for FieldFinder {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == self.name {
            self.value = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == self.name {
            // `%task_id` arrives as Display wrapped in Debug: no quotes to strip.
            self.value = Some(format!("{value:?}"));
        }
    }
}

/// The event format: `time level task message fields`.
pub(crate) struct Readable {
    terminal: bool,
    /// Whether the last line written was an unfinished progress line.
    progress_open: Mutex<bool>,
}

impl Readable {
    pub(crate) fn new(terminal: bool) -> Self {
        Readable {
            terminal,
            progress_open: Mutex::new(false),
        }
    }
}

impl<S, N> FormatEvent<S, N> for Readable
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut task = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                if let Some(t) = span.extensions().get::<TaskTry>() {
                    task = Some((t.task_id.clone(), t.started));
                    break;
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let progress = self.terminal && fields.message.ends_with("in progress");

        let mut open = self.progress_open.lock().unwrap_or_else(|p| p.into_inner());
        if *open {
            // Clear the progress line before writing over it.
            writer.write_str("\r\x1b[2K")?;
            *open = false;
        }
        let line = line(
            chrono::Local::now().format("%H:%M:%S%.3f"),
            *event.metadata().level(),
            task.as_ref().map(|(id, _)| id.as_str()),
            &fields,
            if progress {
                task.as_ref().map(|(_, started)| *started)
            } else {
                None
            },
        );
        writer.write_str(&line)?;
        if progress {
            *open = true;
            Ok(())
        } else {
            writer.write_char('\n')
        }
    }
}

/// One event's line, without the newline. `rate_since`: add `rows/s` and `MB/s`
/// since that instant (progress lines on a terminal).
fn line(
    time: impl fmt::Display,
    level: Level,
    task: Option<&str>,
    fields: &Fields,
    rate_since: Option<Instant>,
) -> String {
    let mut out = String::with_capacity(96);
    let _ = write!(
        out,
        "{time} {level:>5} {:<14} {}",
        task.unwrap_or("-"),
        fields.message
    );
    for (k, v) in &fields.pairs {
        let _ = write!(out, " {k}={v}");
    }
    if let Some(since) = rate_since {
        let secs = since.elapsed().as_secs_f64().max(1e-3);
        for (name, unit, scale) in [("rows", "rows/s", 1.0), ("bytes", "MB/s", 1e6)] {
            if let Some(n) = fields.number(name) {
                let _ = write!(out, " ({:.1} {unit})", n / scale / secs);
            }
        }
    }
    out
}

/// An event's message and its other fields, in order.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(&'static str, String)>,
}

impl Fields {
    fn number(&self, name: &str) -> Option<f64> {
        self.pairs
            .iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse().ok())
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.pairs.push((field.name(), quote(value)));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.pairs.push((field.name(), quote(&text)));
        }
    }
}

/// A value as-is when it is one word, else in double quotes.
fn quote(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '"') {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_time_level_task_message_and_fields() {
        let fields = Fields {
            message: "object loaded".into(),
            pairs: vec![("rows", "3".into()), ("table", quote("my table"))],
        };
        assert_eq!(
            line("03:21:04.123", Level::INFO, Some("load"), &fields, None),
            "03:21:04.123  INFO load           object loaded rows=3 table=\"my table\""
        );
        assert_eq!(
            line("t", Level::WARN, None, &fields, None),
            "t  WARN -              object loaded rows=3 table=\"my table\""
        );
    }

    #[test]
    fn a_progress_line_shows_the_rate() {
        let fields = Fields {
            message: "dump in progress".into(),
            pairs: vec![("rows", "1000".into()), ("bytes", "2000000".into())],
        };
        let since = Instant::now() - std::time::Duration::from_secs(2);
        let text = line("t", Level::INFO, Some("dump"), &fields, Some(since));
        assert!(text.contains("rows/s)"), "{text}");
        assert!(text.contains("MB/s)"), "{text}");
        // 1000 rows in about 2 s.
        let rate: f64 = text
            .split(" (")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rate > 100.0 && rate <= 500.0, "{text}");
    }

    #[test]
    fn the_format_names_the_task_of_the_enclosing_try() {
        use tracing_subscriber::prelude::*;
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::registry().with(TaskSpans).with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || out.clone())
                .with_ansi(false)
                .event_format(Readable::new(false)),
        );
        tracing::subscriber::with_default(subscriber, || {
            let run = tracing::info_span!("dag_run", dag_id = "d", run_id = "r");
            let _r = run.enter();
            let t = tracing::info_span!("task_try", task_id = %"extract", try_number = 1);
            let _t = t.enter();
            tracing::info!(rows = 3, "done");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.ends_with(" INFO extract        done rows=3\n"),
            "{text:?}"
        );
        assert!(!text.contains("run_id"), "{text:?}");
        assert_eq!(text.lines().count(), 1);
    }
}
