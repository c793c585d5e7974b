//! MlflowHook against a real MLflow server with authentication (the basic-auth
//! app, `mlflow-auth` in `scripts/services.sh`): the right credentials work, and
//! wrong ones, missing ones, a bearer token the server does not know and a user
//! without the permission are [`ErrorKind::Auth`] errors, not retried, that name
//! the connection and never contain the password or token.

mod common;

use std::process::Command;

use gust::hooks::mlflow::{MlflowHook, RunStatus};
use gust::{Connection, Error, ErrorKind};

const CONN_ID: &str = "mlflow_auth";

/// The right connection, with the admin's login and password.
macro_rules! require_conn {
    () => {
        match common::server_conn(CONN_ID) {
            Some(c) => c,
            None => return,
        }
    };
}

/// The server's base URL, e.g. `http://127.0.0.1:55051`.
fn base_url(conn: &Connection) -> String {
    MlflowHook::from_connection(conn)
        .unwrap()
        .base_url()
        .to_string()
}

/// The connection with its host and port but other credentials (none if both are
/// `None`; a password without a login is a bearer token).
fn with_credentials(
    conn: &Connection,
    conn_id: &str,
    login: Option<&str>,
    password: Option<&str>,
) -> Connection {
    let mut c = Connection::new(conn_id, conn.conn_type())
        .unwrap()
        .with_host(conn.host().unwrap());
    if let Some(port) = conn.port() {
        c = c.with_port(port);
    }
    if let Some(login) = login {
        c = c.with_login(login);
    }
    if let Some(password) = password {
        c = c.with_password(password);
    }
    c
}

/// Asserts `e` is a non-retryable auth error naming `conn_id`, in which none of
/// `secrets` appears, in `{e}` or `{e:?}`.
#[track_caller]
fn assert_auth_error(e: &Error, conn_id: &str, secrets: &[&str]) {
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(e.context("conn_id"), Some(conn_id), "{e}");
    assert!(e.to_string().contains(conn_id), "{e}");
    let shown = format!("{e} {e:?}");
    for secret in secrets {
        assert!(
            !shown.contains(secret),
            "secret {secret:?} leaked into: {shown}"
        );
    }
}

/// Every kind of call a wrong credential can reach, each failing with `check`.
async fn every_call_fails(h: &MlflowHook, run_id: &str, check: impl Fn(&Error)) {
    check(&h.test_connection().await.unwrap_err());
    check(&h.get_experiment("0").await.unwrap_err());
    check(
        &h.create_experiment(&common::unique("gust-auth-no"))
            .await
            .unwrap_err(),
    );
    check(&h.get_run(run_id).await.unwrap_err());
    check(&h.get_metric_history(run_id, "loss").await.unwrap_err());
    check(&h.log_metric(run_id, "loss", 0.5, 1).await.unwrap_err());
    check(&h.list_artifacts(run_id, "").await.unwrap_err());
    let file = std::env::temp_dir().join(common::unique("gust-auth-artifact"));
    std::fs::write(&file, "x").unwrap();
    check(&h.log_artifact(run_id, &file, None).await.unwrap_err());
    let _ = std::fs::remove_file(&file);
}

/// An experiment and a run of the admin's, with a metric.
async fn admin_run(conn: &Connection) -> (String, String) {
    let h = MlflowHook::from_connection(conn).unwrap();
    let exp = h
        .get_or_create_experiment(&common::unique("gust-auth"))
        .await
        .unwrap();
    let run = h.create_run(&exp, Some("auth")).await.unwrap();
    run.log_metric("loss", 0.25, 0).await.unwrap();
    (exp, run.run_id().to_string())
}

#[tokio::test]
async fn right_credentials_create_an_experiment_log_a_metric_and_an_artifact() {
    let conn = require_conn!();
    assert!(conn.login().is_some() && conn.password().is_some());
    let h = MlflowHook::from_connection(&conn).unwrap();
    h.test_connection().await.unwrap();
    let name = common::unique("gust-auth-ok");
    let exp = h.get_or_create_experiment(&name).await.unwrap();
    assert_eq!(h.get_experiment(&exp).await.unwrap().name, name);
    let run = h.create_run(&exp, Some("auth-ok")).await.unwrap();
    for step in 0..3 {
        run.log_metric("loss", 1.0 / (step as f64 + 1.0), step)
            .await
            .unwrap();
    }
    run.log_param("alpha", "0.5").await.unwrap();
    // Artifacts take another path (the artifact proxy, streamed): auth there too.
    let dir = std::env::temp_dir().join(common::unique("gust-auth-ok"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "authenticated").unwrap();
    h.log_artifact(run.run_id(), &dir.join("notes.txt"), None)
        .await
        .unwrap();
    let got = h
        .download_artifacts(run.run_id(), "notes.txt", &dir.join("dst"))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(got).unwrap(), "authenticated");
    run.end(RunStatus::Finished).await.unwrap();

    let got = h.get_run(run.run_id()).await.unwrap();
    assert_eq!(got.info.status, RunStatus::Finished);
    assert_eq!(got.data.metric("loss"), Some(1.0 / 3.0));
    assert_eq!(got.data.param("alpha"), Some("0.5"));
    assert_eq!(
        h.get_metric_history(run.run_id(), "loss")
            .await
            .unwrap()
            .len(),
        3
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn wrong_password_is_an_auth_error_that_names_the_conn_and_hides_the_password() {
    let conn = require_conn!();
    let (_, run_id) = admin_run(&conn).await;
    let right = conn.password().unwrap().to_string();
    let wrong = format!("{right}-Wr0ng-{}", std::process::id());
    let bad = with_credentials(&conn, CONN_ID, conn.login(), Some(&wrong));
    let h = MlflowHook::from_connection(&bad).unwrap();
    every_call_fails(&h, &run_id, |e| {
        assert_auth_error(e, CONN_ID, &[&wrong, &right]);
        // The server's answer is kept (it says how to authenticate).
        assert!(e.to_string().contains("HTTP 401"), "{e}");
    })
    .await;
    // An unknown user is the same error.
    let nobody = with_credentials(&conn, "mlflow_nobody", Some("gust-nobody"), Some(&wrong));
    let e = MlflowHook::from_connection(&nobody)
        .unwrap()
        .get_experiment("0")
        .await
        .unwrap_err();
    assert_auth_error(&e, "mlflow_nobody", &[&wrong]);
}

#[tokio::test]
async fn no_credentials_is_an_auth_error() {
    let conn = require_conn!();
    let (_, run_id) = admin_run(&conn).await;
    let anon = with_credentials(&conn, "mlflow_anon", None, None);
    let h = MlflowHook::from_connection(&anon).unwrap();
    every_call_fails(&h, &run_id, |e| {
        assert_auth_error(e, "mlflow_anon", &[conn.password().unwrap()])
    })
    .await;
    // A hook built from the bare URL has no credentials either.
    let e = MlflowHook::new(&base_url(&conn))
        .unwrap()
        .get_experiment("0")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_wrong_bearer_token_is_an_auth_error_and_never_shown() {
    let conn = require_conn!();
    let (_, run_id) = admin_run(&conn).await;
    let token = format!("gust-bearer-{}-t0k3n", std::process::id());
    // A password without a login is a bearer token.
    let tok = with_credentials(&conn, "mlflow_token", None, Some(&token));
    let h = MlflowHook::from_connection(&tok).unwrap();
    assert!(!format!("{h:?}").contains(&token));
    every_call_fails(&h, &run_id, |e| {
        assert_auth_error(e, "mlflow_token", &[&token]);
    })
    .await;
    // Nor through the error's source chain.
    let e = h.get_experiment("0").await.unwrap_err();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        assert!(!format!("{s} {s:?}").contains(&token), "{s:?}");
        source = s.source();
    }
}

/// A known user without the permission (MLflow answers 403 PERMISSION_DENIED): an
/// auth error too, on the JSON API and on the streamed artifact upload.
#[tokio::test]
async fn a_user_without_permission_gets_an_auth_error() {
    let conn = require_conn!();
    let (exp, run_id) = admin_run(&conn).await;
    let user = common::unique("gust-reader");
    let password = format!("reader-pw-{}", std::process::id());
    // Created by the admin through MLflow's user API; the server's default
    // permission (READ) lets it read the admin's experiment, not write to it.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/2.0/mlflow/users/create", base_url(&conn)))
        .basic_auth(conn.login().unwrap(), conn.password())
        .json(&serde_json::json!({ "username": user, "password": password }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);

    let reader = with_credentials(&conn, "mlflow_reader", Some(&user), Some(&password));
    let h = MlflowHook::from_connection(&reader).unwrap();
    assert_eq!(h.get_experiment(&exp).await.unwrap().experiment_id, exp);
    assert_eq!(
        h.get_run(&run_id).await.unwrap().data.metric("loss"),
        Some(0.25)
    );

    let check = |e: &Error| {
        assert_auth_error(e, "mlflow_reader", &[&password]);
        assert!(e.to_string().contains("HTTP 403"), "{e}");
    };
    check(&h.log_metric(&run_id, "loss", 0.5, 1).await.unwrap_err());
    check(&h.set_tag(&run_id, "team", "x").await.unwrap_err());
    check(&h.create_run(&exp, None).await.unwrap_err());
    // 1 MiB: the server may answer 403 before it has read the body.
    let file = std::env::temp_dir().join(common::unique("gust-auth-big"));
    std::fs::write(&file, vec![7u8; 1024 * 1024]).unwrap();
    check(&h.log_artifact(&run_id, &file, None).await.unwrap_err());
    let _ = std::fs::remove_file(&file);
}

/// `MlflowHook::from_env` with `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`:
/// this test runs itself again in a child process with those variables set (the
/// environment of this process stays as it is: tests run in parallel).
#[tokio::test]
async fn from_env_uses_tracking_username_and_password() {
    const CHILD: &str = "GUST_TEST_MLFLOW_AUTH_FROM_ENV_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let h = MlflowHook::from_env().unwrap();
        assert_eq!(h.conn_id(), Some("MLFLOW_TRACKING_URI"));
        if std::env::var(CHILD).unwrap() == "right" {
            h.test_connection().await.unwrap();
            let exp = h
                .get_or_create_experiment(&common::unique("gust-auth-env"))
                .await
                .unwrap();
            let run = h.create_run(&exp, None).await.unwrap();
            run.log_metric("loss", 0.5, 0).await.unwrap();
            run.end(RunStatus::Finished).await.unwrap();
        } else {
            let password = std::env::var("MLFLOW_TRACKING_PASSWORD").unwrap();
            let e = h.get_experiment("0").await.unwrap_err();
            assert_auth_error(&e, "MLFLOW_TRACKING_URI", &[&password]);
        }
        return;
    }
    let conn = require_conn!();
    let login = conn.login().unwrap();
    let password = conn.password().unwrap();
    let wrong = format!("{password}-env-Wr0ng");
    for (mode, pw) in [("right", password), ("wrong", wrong.as_str())] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "from_env_uses_tracking_username_and_password",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD, mode)
            .env("MLFLOW_TRACKING_URI", base_url(&conn))
            .env("MLFLOW_TRACKING_USERNAME", login)
            .env("MLFLOW_TRACKING_PASSWORD", pw)
            .env_remove("MLFLOW_TRACKING_TOKEN")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{mode} password: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
