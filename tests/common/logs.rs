//! Reading what `tracing` logged: a writer into a shared buffer, and a capture of
//! one thread's log lines.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// A `tracing` writer into a shared buffer, to read what was logged.
#[derive(Clone, Default)]
pub struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl LogBuf {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures this thread's log lines (a single-threaded test runtime's spawned tasks
/// log through it too) until the guard drops.
pub fn capture_logs() -> (LogBuf, tracing::subscriber::DefaultGuard) {
    // While a single dispatcher is registered, tracing-core caches a log call
    // site's interest from the default of whichever thread hits it first —
    // another test's, which has none, so the site would be muted here too. A
    // second, no-op dispatcher, registered once before any capture and alive for
    // the whole process, makes it ask every registered dispatcher instead.
    static NO_OP: OnceLock<tracing::Dispatch> = OnceLock::new();
    NO_OP.get_or_init(|| {
        let no_op = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        drop(tracing::dispatcher::set_default(&no_op));
        no_op
    });
    let log = LogBuf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    (log, tracing::subscriber::set_default(subscriber))
}
