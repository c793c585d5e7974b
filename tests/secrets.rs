//! A run that uses a connection with a password must not reveal it: not in the
//! tracing output (every level), not in the run report, not in any error text or
//! source chain, neither raw nor percent-encoded. The same for every hook's `Debug`,
//! its errors and its retry loops' log lines, and for credentials carried in a URL's
//! userinfo (an MLflow tracking URI, an S3 `endpoint_url`, a malformed SQL or Redis
//! URI).

use chrono::TimeZone;
use common::logs::LogBuf;
use gust::prelude::*;

const PASSWORD: &str = "p@ss/w:rd #x%y+z";
const PASSWORD_ENCODED: &str = "p%40ss%2Fw%3Ard%20%23x%25y%2Bz";
const TOKEN: &str = "tok-SECRET-123";

fn error_chain(e: &Error) -> String {
    let mut text = format!("{e} | {e:?}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(&format!(" | {s} | {s:?}"));
        src = s.source();
    }
    text
}

/// The one subscriber of this test binary, capturing every level of every test.
fn logs() -> LogBuf {
    static LOGS: std::sync::OnceLock<LogBuf> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuf::default();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(logs.clone())
            .with_ansi(false)
            .init();
        logs
    })
    .clone()
}

/// Fails when any of `secrets` is in `text`.
fn assert_absent(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "found {secret:?} in:\n{text}");
    }
}

/// Set in a child process started by [`run_child`].
const CHILD: &str = "GUST_TEST_SECRETS_CHILD";

/// Whether this process is a child started by [`run_child`]; the `#[ignore]`d child
/// tests do nothing otherwise (their environment is missing).
fn in_child() -> bool {
    let child = std::env::var_os(CHILD).is_some();
    if !child {
        eprintln!("SKIPPED: run in a child process by the test of the same name without `_child`");
    }
    child
}

/// Runs the `#[ignore]`d test `name` of this binary in a child process with `vars` set,
/// and fails unless it passed. `std::env::set_var` here would race with the other
/// tests of this binary, which run in parallel and read the environment.
fn run_child(name: &str, vars: &[(&str, String)]) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture"])
        .env(CHILD, "1")
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_secret_in_logs_reports_or_errors() {
    run_child(
        "no_secret_in_logs_reports_or_errors_child",
        &[(
            "AIRFLOW_CONN_GUST_SECRET_PG",
            format!(
                "postgres://etl:{PASSWORD_ENCODED}@127.0.0.1:1/warehouse?api_token={TOKEN}&sslmode=disable"
            ),
        )],
    );
}

#[tokio::test]
#[ignore = "run by no_secret_in_logs_reports_or_errors in a child process"]
async fn no_secret_in_logs_reports_or_errors_child() {
    if !in_child() {
        return;
    }
    let logs = logs();

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

    let mut everything = logs.text();
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

const TPL_PASSWORD: &str = "tpl-pw-12345";
const TPL_TOKEN: &str = "tpl-token-67890";
const TPL_AWS_SECRET: &str = "tpl-aws-secret-abc";

#[test]
fn templates_never_render_a_secret() {
    run_child(
        "templates_never_render_a_secret_child",
        &[(
            "AIRFLOW_CONN_GUST_SECRET_TPL",
            format!(
                "postgres://etl:{TPL_PASSWORD}@db.example.com:5432/warehouse?api_token={TPL_TOKEN}&aws_secret_access_key={TPL_AWS_SECRET}&region=eu-west-1"
            ),
        )],
    );
}

/// Every way a template can reach a connection (the object itself, its
/// fields, its extras whole or one by one, as JSON) renders no secret: a
/// rendered-template preview (`Context::builder` + `render`) is as safe as a
/// run.
#[tokio::test]
#[ignore = "run by templates_never_render_a_secret in a child process"]
async fn templates_never_render_a_secret_child() {
    if !in_child() {
        return;
    }
    let logs = logs();
    let secrets = [TPL_PASSWORD, TPL_TOKEN, TPL_AWS_SECRET];
    let ctx = Context::builder("secrets", "preview").build();
    let mut shown = String::new();
    for expr in [
        "{{ conn.gust_secret_tpl }}",
        "{{ conn.gust_secret_tpl | tojson }}",
        "{{ conn.gust_secret_tpl.password }}",
        "{{ conn.gust_secret_tpl.get_uri() }}",
        "{{ conn.gust_secret_tpl.extra }}",
        "{{ conn.gust_secret_tpl.extra_dejson }}",
        "{{ conn.gust_secret_tpl.extra_dejson | tojson }}",
        "{{ conn.gust_secret_tpl.extra_dejson.api_token }}",
        "{{ conn.gust_secret_tpl.extra_dejson['aws_secret_access_key'] }}",
        "{% for k, v in conn.gust_secret_tpl.extra_dejson | items %}{{ k }}={{ v }};{% endfor %}",
        "{{ conn.gust_secret_tpl.extra_dejson.region }}@{{ conn.gust_secret_tpl.host }}",
    ] {
        let out = match ctx.render(expr) {
            Ok(text) => text,
            Err(e) => error_chain(&e),
        };
        shown.push_str(&format!("{expr} => {out}\n"));
    }
    // What is not secret still renders.
    assert!(shown.contains("eu-west-1@db.example.com"), "{shown}");
    shown.push_str(&logs.text());
    assert_absent(&shown, &secrets);
}

#[test]
fn xcom_and_report_never_show_a_secret() {
    run_child(
        "xcom_and_report_never_show_a_secret_child",
        &[(
            "AIRFLOW_CONN_GUST_SECRET_TPL",
            format!(
                "postgres://etl:{TPL_PASSWORD}@db.example.com:5432/warehouse?api_token={TPL_TOKEN}&aws_secret_access_key={TPL_AWS_SECRET}&region=eu-west-1"
            ),
        )],
    );
}

/// A task whose XCom is a rendering of a connection's extras, or that returns
/// (or pushes) a secret it got from the connection: the run report, the XCom
/// and a downstream task's pull show it masked.
#[tokio::test]
#[ignore = "run by xcom_and_report_never_show_a_secret in a child process"]
async fn xcom_and_report_never_show_a_secret_child() {
    if !in_child() {
        return;
    }
    let logs = logs();
    let secrets = [TPL_PASSWORD, TPL_TOKEN, TPL_AWS_SECRET];
    let mut dag = Dag::builder("secrets_xcom");
    dag.add(Task::from_fn("rendered", |ctx| async move {
        let extras = ctx.render("{{ conn.gust_secret_tpl.extra_dejson | tojson }}")?;
        Ok(Value::from(extras))
    }));
    let returned = dag.add(Task::from_fn("returned", |ctx| async move {
        let conn = ctx.connection("gust_secret_tpl")?;
        ctx.xcom_push("pushed", Value::from(conn.get_uri()))?;
        Ok(serde_json::json!({
            "dsn": conn.get_uri(),
            "password": conn.password(),
        }))
    }));
    let pulled = dag.add(Task::from_fn("pulled", |ctx| async move {
        Ok(ctx
            .xcom_pull_key("returned", "pushed")
            .unwrap_or(Value::Null))
    }));
    let _ = &returned >> &pulled;
    let report = dag
        .build()
        .unwrap()
        .test(
            chrono_tz::UTC
                .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
                .unwrap(),
        )
        .await;
    let mut everything = format!("{report}\n{report:?}\n");
    for task in ["rendered", "returned", "pulled"] {
        everything.push_str(&format!("{task}: {:?}\n", report.xcom(task)));
    }
    everything.push_str(&logs.text());
    assert!(
        report
            .xcom("pulled")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("etl:***@db.example.com"),
        "{everything}"
    );
    // The XCom is there, the secret masked.
    assert_eq!(
        report.xcom("returned").unwrap()["password"],
        Value::from("***"),
        "{everything}"
    );
    assert_absent(&everything, &secrets);
}

#[test]
fn sensitive_variables_are_secrets_of_the_run() {
    run_child(
        "sensitive_variables_are_secrets_of_the_run_child",
        &[
            ("AIRFLOW_VAR_DB_PASSWORD", "var-secret-12345".to_string()),
            (
                "AIRFLOW_VAR_SETTINGS",
                r#"{"api_key": "var-key-67890", "region": "eu-west-1", "url": "https://u:var-url-pw-1@h/x"}"#
                    .to_string(),
            ),
            ("AIRFLOW_VAR_BUCKET", "plain-bucket-name".to_string()),
        ],
    );
}

/// Variables a template reads whose key is sensitive (Airflow's rule), and
/// sensitive entries of JSON variables, are the run's secrets: a template
/// renders them (a task needs the value), but errors, XComs, the report and
/// the logs show `***`. Other variables are not touched.
#[tokio::test]
#[ignore = "run by sensitive_variables_are_secrets_of_the_run in a child process"]
async fn sensitive_variables_are_secrets_of_the_run_child() {
    if !in_child() {
        return;
    }
    let logs = logs();
    let mut dag = Dag::builder("secrets_vars");
    dag.add(Task::from_fn("uses", |ctx| async move {
        let sql = ctx.render(
            "SELECT '{{ var.value.db_password }}', '{{ var.json.settings.api_key }}', '{{ var.json.settings.url }}', '{{ var.value.bucket }}'",
        )?;
        assert!(sql.contains("var-secret-12345"), "the template gets the value: {sql}");
        Ok(Value::from(sql))
    }));
    dag.add(Task::from_fn("fails", |ctx| async move {
        let sql = ctx.render("SELECT '{{ var.value.db_password }}' FROM {{ var.value.bucket }}")?;
        Err(Error::new(
            ErrorKind::InvalidInput,
            "sql.run",
            format!("syntax error in {sql}"),
        )
        .with("sql", &sql))
    }));
    let report = dag
        .build()
        .unwrap()
        .test(
            chrono_tz::UTC
                .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
                .unwrap(),
        )
        .await;
    let mut everything = format!("{report}\n{report:?}\n{:?}\n", report.xcom("uses"));
    let err = report.into_result().unwrap_err();
    everything.push_str(&error_chain(&err));
    everything.push_str(&logs.text());
    // Not secret: kept.
    assert!(everything.contains("plain-bucket-name"), "{everything}");
    assert!(
        everything.contains("syntax error in SELECT '***'"),
        "{everything}"
    );
    assert_absent(
        &everything,
        &["var-secret-12345", "var-key-67890", "var-url-pw-1"],
    );
}

#[test]
fn short_secrets_keep_messages_readable_and_conn_ids_intact() {
    // A one-letter password: masking every `a` would mangle the text and reveal it.
    let conn = Connection::from_uri("badinput_a10", "postgres://u:a@127.0.0.1:1/database").unwrap();
    let e = Error::new(
        ErrorKind::Auth,
        "postgres.connect",
        "error returned from database: password authentication failed",
    )
    .with("conn_id", conn.conn_id())
    .with("dsn", conn.get_uri())
    .redact(&conn.secrets());
    assert_eq!(
        e.to_string(),
        "postgres.connect failed (authentication): error returned from database: password \
         authentication failed [conn_id=badinput_a10, dsn=postgres://u:***@127.0.0.1:1/database]"
    );
    // A password that is also a word of the conn id: the conn id stays.
    let conn = Connection::from_uri("postgres_default", "postgres://u:postgres@h/db").unwrap();
    let e = Error::new(ErrorKind::Auth, "postgres.connect", "bad postgres password")
        .with("conn_id", conn.conn_id())
        .redact(&conn.secrets());
    assert_eq!(e.context("conn_id"), Some("postgres_default"));
    assert_eq!(e.message(), "bad *** password");
}

#[test]
fn a_password_left_in_schema_by_a_single_slash_is_masked() {
    let _logs = logs();
    // Airflow parses `postgres:/user:pw@host/db` as schema `user:pw@host/db`: keep
    // the parse, but never print the password.
    let conn = Connection::from_uri(
        "slash",
        "postgres:/etl:slash-pw-1234@db.example.com/warehouse",
    )
    .unwrap();
    assert_eq!(conn.host(), Some(""));
    assert_eq!(
        conn.schema(),
        Some("etl:slash-pw-1234@db.example.com/warehouse")
    );
    assert!(conn.secrets().iter().any(|s| s == "slash-pw-1234"));
    let shown = format!("{conn} {conn:?}");
    assert_absent(&shown, &["slash-pw-1234"]);
    assert!(shown.contains("***"), "{shown}");
    // This test's own warning: other tests log "looks malformed" for their conn ids.
    let warned = logs().text();
    assert!(
        warned
            .lines()
            .any(|l| l.contains("looks malformed") && l.contains(r#"conn_id="slash""#)),
        "{warned}"
    );
}

#[test]
fn credentials_in_url_extras_are_secrets() {
    let conn = Connection::from_uri(
        "aws_ep",
        "aws://AKID:sk-1234567@/?region_name=us-east-1&endpoint_url=http%3A%2F%2Fepuser%3Aendpoint-pw-123%40127.0.0.1%3A9000",
    )
    .unwrap();
    assert!(conn.secrets().iter().any(|s| s == "endpoint-pw-123"));
    let shown = format!("{conn} {conn:?}");
    assert_absent(&shown, &["endpoint-pw-123", "sk-1234567"]);
    assert!(
        shown.contains("epuser"),
        "the user is not a secret: {shown}"
    );
}

#[cfg(feature = "mlflow")]
mod mlflow {
    use super::*;
    use gust::hooks::mlflow::MlflowHook;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SECRET: &str = "s3cret-mlflow-pw";

    /// A server that records each request's head and answers with MLflow's
    /// not-found error, echoing the secret as a careless server might.
    async fn echo_server() -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                record
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let body = format!(
                    r#"{{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no experiment for user with password {SECRET}"}}"#
                );
                let resp = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        (port, seen)
    }

    #[tokio::test]
    async fn tracking_uri_credentials_are_used_but_never_printed() {
        let logs = logs();
        let (port, seen) = echo_server().await;
        let hook = MlflowHook::from_uri(&format!("http://user:{SECRET}@127.0.0.1:{port}")).unwrap();
        let e = hook.get_experiment_by_name("Default").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        // Used: sent as basic auth (base64 of user:SECRET).
        let head = seen.lock().unwrap().join("\n").to_lowercase();
        assert!(
            head.contains("authorization: basic dxnlcjpzm2nyzxqtbwxmbg93lxb3"),
            "{head}"
        );
        // Never printed: not in the error, not in Debug, and no conn id claimed.
        assert_eq!(e.context("conn_id"), None);
        assert_eq!(
            e.context("tracking_uri"),
            Some(format!("http://127.0.0.1:{port}").as_str())
        );
        let text = format!("{} {hook:?} {}", error_chain(&e), logs.text());
        assert_absent(&text, &[SECRET]);
    }

    #[tokio::test]
    async fn retry_warnings_and_refused_errors_hide_uri_credentials() {
        let logs = logs();
        let port = crate::common::refused_port();
        let hook = MlflowHook::from_uri(&format!("http://user:{SECRET}@127.0.0.1:{port}")).unwrap();
        let started = Instant::now();
        let e = hook.get_experiment_by_name("Default").await.unwrap_err();
        // A refused port fails fast, naming the host:port and the cause.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let shown = e.to_string();
        assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
        assert!(shown.to_lowercase().contains("refused"), "{shown}");
        let logged = logs.text();
        assert!(
            logged.contains("mlflow call failed; retrying") && logged.contains(&port.to_string()),
            "{logged}"
        );
        assert_absent(&format!("{} {hook:?} {logged}", error_chain(&e)), &[SECRET]);
    }

    #[test]
    fn mlflow_tracking_uri_from_env_hides_credentials() {
        let port = crate::common::refused_port();
        run_child(
            "mlflow::mlflow_tracking_uri_from_env_hides_credentials_child",
            &[(
                "MLFLOW_TRACKING_URI",
                format!("http://user:{SECRET}@127.0.0.1:{port}"),
            )],
        );
    }

    #[tokio::test]
    #[ignore = "run by mlflow_tracking_uri_from_env_hides_credentials in a child process"]
    async fn mlflow_tracking_uri_from_env_hides_credentials_child() {
        if !in_child() {
            return;
        }
        let logs = logs();
        let hook = MlflowHook::from_env().unwrap().with_max_retries(1);
        let e = hook.get_experiment_by_name("Default").await.unwrap_err();
        assert_eq!(e.context("conn_id"), Some("MLFLOW_TRACKING_URI"));
        assert_absent(
            &format!("{} {hook:?} {}", error_chain(&e), logs.text()),
            &[SECRET],
        );
    }
}

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use gust::hooks::s3::{ListKeys, S3Hook};

    #[tokio::test]
    async fn endpoint_credentials_and_keys_never_print() {
        let logs = logs();
        let port = crate::common::refused_port();
        // Credentials in an endpoint's userinfo mean nothing to S3 (requests are
        // signed with the access key), and the SDK would log and sign them as part
        // of the host: refused at construction, without printing them.
        let conn = Connection::from_uri(
            "aws_leak",
            &format!(
                "aws://AKIDLEAK:aws-secret-key-123@/?region_name=us-east-1&endpoint_url=http%3A%2F%2Fepuser%3Aendpoint-pw-123%40127.0.0.1%3A{port}"
            ),
        )
        .unwrap();
        let e = S3Hook::from_connection(&conn).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("endpoint_url"), "{e}");
        assert_absent(&error_chain(&e), &["endpoint-pw-123", "aws-secret-key-123"]);

        // A working hook: neither its Debug nor its errors nor the SDK's own log
        // lines (every level) show the secret key.
        let conn = Connection::from_uri(
            "aws_leak",
            &format!(
                "aws://AKIDLEAK:aws-secret-key-123@/?region_name=us-east-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A{port}"
            ),
        )
        .unwrap();
        let hook = S3Hook::from_connection(&conn).await.unwrap();
        let e = hook
            .list_keys(Some("bucket"), &ListKeys::default())
            .await
            .unwrap_err();
        assert_absent(
            &format!("{} {hook:?} {}", error_chain(&e), logs.text()),
            &["endpoint-pw-123", "aws-secret-key-123"],
        );
    }
}

#[cfg(feature = "s3")]
/// A careless server: answers every request with `status` and a body made by
/// `body` from the request's head (its headers: the signature, the session
/// token), as a proxy echoing the request back would.
async fn echoing_server(status: u16, body: fn(&str) -> String) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 8192];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = body(&String::from_utf8_lossy(&head));
                let resp = format!(
                    "HTTP/1.1 {status} Bad\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

#[cfg(feature = "s3")]
/// An AWS connection with a secret key and a session token (sent as a header,
/// so an echoing server can return it) pointing at `port`.
fn aws_conn(port: u16) -> Connection {
    Connection::from_json(
        "aws_echo",
        &format!(
            r#"{{"conn_type": "aws", "login": "AKIDECHO", "password": "echo-secret-key-1",
                "extra": {{"region_name": "us-east-1", "aws_session_token": "echo-session-token-1",
                           "endpoint_url": "http://127.0.0.1:{port}"}}}}"#
        ),
    )
    .unwrap()
}

#[cfg(feature = "s3")]
const AWS_SECRETS: [&str; 2] = ["echo-secret-key-1", "echo-session-token-1"];

#[cfg(feature = "s3")]
/// The captured logs without the AWS SDK's own TRACE lines, which print raw
/// response bodies (so, here, the server's echo of the session token): that
/// logging is the SDK's, outside gust's reach, and off unless a subscriber
/// enables TRACE for `aws_smithy_runtime`. Everything else is checked.
fn logs_but_sdk_trace(logs: &LogBuf) -> String {
    logs.text()
        .lines()
        .filter(|l| !(l.contains(" TRACE ") && l.contains("aws_smithy_runtime")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(feature = "s3")]
mod s3_echo {
    use super::*;
    use gust::hooks::s3::{ListKeys, S3Hook};

    #[tokio::test]
    async fn s3_errors_hide_what_a_server_echoes() {
        let logs = logs();
        let port = echoing_server(400, |head| {
            let head = head.replace('&', "&amp;").replace('<', "&lt;");
            format!(
                "<?xml version=\"1.0\"?><Error><Code>InvalidToken</Code><Message>bad request: {head}</Message></Error>"
            )
        })
        .await;
        let hook = S3Hook::from_connection(&aws_conn(port)).await.unwrap();
        let e = hook
            .list_keys(Some("bucket"), &ListKeys::default())
            .await
            .unwrap_err();
        let text = format!("{} {hook:?} {}", error_chain(&e), logs_but_sdk_trace(&logs));
        // The server's message is there, its echo of the token masked.
        assert!(text.contains("InvalidToken"), "{text}");
        assert!(text.contains("x-amz-security-token"), "{text}");
        assert_absent(&text, &AWS_SECRETS);
    }
}

#[cfg(feature = "sagemaker")]
mod sagemaker {
    use super::*;
    use gust::hooks::sagemaker::{Job, SageMakerHook};

    /// The hook's `Debug`, a server error echoing the request (session token
    /// included), and a refused endpoint's error and retry log lines show
    /// neither the secret key nor the token.
    #[tokio::test]
    async fn sagemaker_secrets_never_print() {
        let logs = logs();
        let port = echoing_server(400, |head| {
            serde_json::json!({"__type": "ValidationException", "message": format!("bad request: {head}")})
                .to_string()
        })
        .await;
        let hook = SageMakerHook::from_connection(&aws_conn(port))
            .await
            .unwrap();
        let e = hook.describe_job(Job::Training, "job").await.unwrap_err();
        let text = format!("{} {hook:?} {}", error_chain(&e), logs_but_sdk_trace(&logs));
        assert!(text.contains("x-amz-security-token"), "{text}");
        assert_absent(&text, &AWS_SECRETS);

        let hook = SageMakerHook::from_connection(&aws_conn(crate::common::refused_port()))
            .await
            .unwrap();
        let e = hook.describe_job(Job::Training, "job").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert_absent(
            &format!("{} {hook:?} {}", error_chain(&e), logs_but_sdk_trace(&logs)),
            &AWS_SECRETS,
        );
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use gust::hooks::redis::{RedisConfig, RedisHook};

    #[tokio::test]
    async fn redis_password_never_prints() {
        let logs = logs();
        let port = crate::common::refused_port();
        for uri in [
            format!("redis://:redis-pw-12345@127.0.0.1:{port}/0"),
            // One slash: Airflow's parser leaves the password in `schema`.
            format!("redis:/:redis-pw-12345@127.0.0.1:{port}/0"),
        ] {
            let conn = Connection::from_uri("redis_leak", &uri).unwrap();
            let shown = match RedisConfig::from_connection(&conn) {
                Ok(config) => format!("{config:?}"),
                Err(e) => error_chain(&e),
            };
            let e = RedisHook::from_connection(&conn).await.unwrap_err();
            assert_absent(
                &format!("{shown} {} {}", error_chain(&e), logs.text()),
                &["redis-pw-12345"],
            );
        }
        if let Some(conn) = crate::common::server_conn("redis_default") {
            let hook = RedisHook::from_connection(&conn).await.unwrap();
            assert_absent(&format!("{hook:?}"), &[conn.password().unwrap()]);
        }
    }

    /// A cluster connection: refused startup nodes, a wrong password on the
    /// real cluster, and a working hook's `Debug` show no password.
    #[tokio::test]
    async fn redis_cluster_password_never_prints() {
        let logs = logs();
        let (p1, p2) = (crate::common::refused_port(), crate::common::refused_port());
        let conn = Connection::from_uri(
            "redis_cluster_leak",
            &format!(
                "redis://:cluster-pw-12345@127.0.0.1:{p1}/?cluster=true&startup_nodes=127.0.0.1%3A{p1}%2C127.0.0.1%3A{p2}&socket_connect_timeout=2"
            ),
        )
        .unwrap();
        let config = RedisConfig::from_connection(&conn).unwrap();
        let e = RedisHook::from_connection(&conn).await.unwrap_err();
        assert_absent(
            &format!("{config:?} {} {}", error_chain(&e), logs.text()),
            &["cluster-pw-12345"],
        );
        let Some(good) = crate::common::server_conn("redis_cluster") else {
            return;
        };
        let hook = RedisHook::from_connection(&good).await.unwrap();
        let password = good.password().unwrap().to_string();
        assert_absent(&format!("{hook:?}"), &[&password]);
        let wrong = Connection::from_uri(
            "redis_cluster_leak",
            &good
                .get_uri()
                .replace(&format!(":{password}@"), ":wrong-cluster-pw-1@"),
        )
        .unwrap();
        assert_eq!(wrong.password(), Some("wrong-cluster-pw-1"));
        let e = RedisHook::from_connection(&wrong).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
        assert_absent(
            &format!("{} {}", error_chain(&e), logs.text()),
            &["wrong-cluster-pw-1", &password],
        );
    }
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod sql {
    use super::*;

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_hook_debug_and_errors() {
        use gust::hooks::sqlite::SqliteHook;
        let conn = Connection::from_uri("lite", "sqlite:///:memory:?token=tok-lite-12345").unwrap();
        let hook = SqliteHook::from_connection(&conn).await.unwrap();
        let e = gust::hooks::sql::SqlHook::get_records(
            &hook,
            r#"SELECT * FROM "tok-lite-12345""#,
            Default::default(),
        )
        .await
        .unwrap_err();
        let shown = format!("{hook:?} {}", error_chain(&e));
        // The driver echoes the table name, so the redaction is what hides it.
        assert!(shown.contains("no such table: ***"), "{shown}");
        assert_absent(&shown, &["tok-lite-12345"]);
    }

    /// Connecting with a wrong password (`good` + a suffix) and with the password
    /// left in `schema` by a single slash: the error names the cause, never the
    /// password, and a hook's `Debug` does not show its password either.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_passwords_never_print() {
        use gust::hooks::postgres::PostgresHook;
        let logs = logs();
        let Some(good) = crate::common::server_conn("postgres_default") else {
            return;
        };
        let (host, port) = (good.host().unwrap(), good.port().unwrap());
        let hook = PostgresHook::from_connection(&good).await.unwrap();
        assert_absent(&format!("{hook:?}"), &[good.password().unwrap()]);
        for uri in [
            format!("postgres://gust:wrong-pg-pw-1@{host}:{port}/gust_test"),
            format!("postgres:/gust:wrong-pg-pw-1@{host}:{port}/gust_test"),
        ] {
            let conn = Connection::from_uri("postgres_default", &uri).unwrap();
            let e = PostgresHook::from_connection(&conn).await.unwrap_err();
            assert_eq!(e.context("conn_id"), Some("postgres_default"), "{e}");
            assert_absent(
                &format!("{} {}", error_chain(&e), logs.text()),
                &["wrong-pg-pw-1"],
            );
        }
        // A one-letter password: the server's text stays readable.
        let conn = Connection::from_uri(
            "pg_short",
            &format!("postgres://gust:a@{host}:{port}/gust_test"),
        )
        .unwrap();
        let e = PostgresHook::from_connection(&conn).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
        assert!(
            e.to_string().contains("password authentication failed"),
            "{e}"
        );
    }

    #[cfg(feature = "mysql")]
    #[tokio::test]
    async fn mysql_passwords_never_print() {
        use gust::hooks::mysql::MySqlHook;
        let logs = logs();
        let Some(good) = crate::common::server_conn("mysql_default") else {
            return;
        };
        let (host, port) = (good.host().unwrap(), good.port().unwrap());
        let hook = MySqlHook::from_connection(&good).await.unwrap();
        assert_absent(&format!("{hook:?}"), &[good.password().unwrap()]);
        let conn = Connection::from_uri(
            "mysql_default",
            &format!("mysql://gust:wrong-my-pw-1@{host}:{port}/gust_test"),
        )
        .unwrap();
        let e = match MySqlHook::from_connection(&conn).await {
            Ok(h) => gust::hooks::sql::SqlHook::get_records(&h, "SELECT 1", Default::default())
                .await
                .unwrap_err(),
            Err(e) => e,
        };
        assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
        assert_eq!(e.context("conn_id"), Some("mysql_default"));
        assert_absent(
            &format!("{} {}", error_chain(&e), logs.text()),
            &["wrong-my-pw-1"],
        );
    }
}

mod common;
