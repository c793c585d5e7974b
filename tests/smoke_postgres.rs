//! Harness smoke test: the project's PostgreSQL answers, and enforces its password.

mod common;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

fn options(conn: &gust::Connection, password: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(conn.host().expect("host"))
        .port(conn.port().unwrap_or(5432))
        .username(conn.login().expect("login"))
        .password(password)
        .database(conn.schema().expect("schema"))
}

#[tokio::test]
async fn postgres_round_trip_and_password_enforced() {
    let conn = require_conn!("postgres_default");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options(&conn, conn.password().expect("password")))
        .await
        .expect("connect with the right password");
    let (n,): (i32,) = sqlx::query_as("SELECT 40 + 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 42);

    let wrong = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options(&conn, "not-the-password"))
        .await;
    let err = wrong.expect_err("a wrong password must be rejected");
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
}
