//! A run that uses a connection with a password must not reveal it: not in the
//! tracing output (every level), not in the run report, not in any error text or
//! source chain, neither raw nor percent-encoded.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::TimeZone;
use gust::prelude::*;

const PASSWORD: &str = "p@ss/w:rd #x%y+z";
const PASSWORD_ENCODED: &str = "p%40ss%2Fw%3Ard%20%23x%25y%2Bz";
const TOKEN: &str = "tok-SECRET-123";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn error_chain(e: &Error) -> String {
    let mut text = format!("{e} | {e:?}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(&format!(" | {s} | {s:?}"));
        src = s.source();
    }
    text
}

#[tokio::test]
async fn no_secret_in_logs_reports_or_errors() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .init();

    // SAFETY: this test binary has a single test; nothing reads the env concurrently.
    unsafe {
        std::env::set_var(
            "AIRFLOW_CONN_GUST_SECRET_PG",
            format!(
                "postgres://etl:{PASSWORD_ENCODED}@127.0.0.1:1/warehouse?api_token={TOKEN}&sslmode=disable"
            ),
        );
    }

    let mut dag = Dag::builder("secrets").timezone(chrono_tz::Asia::Seoul);
    // A task that logs the connection and fails the way a driver does: echoing the DSN.
    let connect = dag.add(
        Task::from_fn("connect", |ctx| async move {
            let conn = ctx.connection("gust_secret_pg")?;
            tracing::info!(?conn, %conn, "connecting");
            let dsn = format!(
                "postgres://{}:{}@{}:{}/{}",
                conn.login().unwrap_or_default(),
                conn.password().unwrap_or_default(),
                conn.host().unwrap_or_default(),
                conn.port().unwrap_or_default(),
                conn.schema().unwrap_or_default(),
            );
            let driver = std::io::Error::other(format!(
                "connection refused: {dsn} (token {TOKEN}, uri {})",
                conn.get_uri()
            ));
            Err(Error::new(
                ErrorKind::Unavailable,
                "postgres.connect",
                format!("cannot reach {dsn}"),
            )
            .with("dsn", &dsn)
            .with("conn_id", conn.conn_id())
            .with_source(driver))
        })
        .with_options(
            TaskOptions::default()
                .retries(1)
                .retry_delay(std::time::Duration::from_millis(1)),
        ),
    );
    // Templates see the host but never the password.
    let render = dag.add(Task::from_fn("render", |ctx| async move {
        let host = ctx.render("{{ conn.gust_secret_pg.host }}:{{ conn.gust_secret_pg.port }}")?;
        assert_eq!(host, "127.0.0.1:1");
        let leaked = ctx.render("{{ conn.gust_secret_pg.password }}");
        Err(leaked.expect_err("password must not be a template variable"))
    }));
    let after = dag.add(Task::from_fn("after", |_| async { Ok(Value::Null) }));
    let _ = &connect >> &after;
    let _ = &render;

    let report = dag
        .build()
        .unwrap()
        .test(
            chrono_tz::Asia::Seoul
                .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
                .unwrap(),
        )
        .await;
    assert_eq!(report.task("connect").unwrap().tries, 2);
    assert!(
        report
            .task("render")
            .unwrap()
            .error
            .as_deref()
            .unwrap()
            .contains("line 1")
    );

    let mut everything = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    everything.push_str(&report.to_string());
    everything.push_str(&format!("{report:?}"));
    let err = report.into_result().unwrap_err();
    everything.push_str(&error_chain(&err));

    // The run did produce the texts being checked.
    assert!(everything.contains("connecting"), "{everything}");
    assert!(
        everything.contains("cannot reach postgres://etl:***@127.0.0.1:1/warehouse"),
        "{everything}"
    );
    assert!(everything.contains("gust_secret_pg"));
    for secret in [PASSWORD, PASSWORD_ENCODED, TOKEN, "p@ss", "p%40ss"] {
        assert!(
            !everything.contains(secret),
            "found {secret:?} in:\n{everything}"
        );
    }
}
