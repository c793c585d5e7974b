//! Harness smoke test: the project's MariaDB answers, and enforces its password.

mod common;

use mysql_async::prelude::Queryable;

fn opts(conn: &gust::Connection, password: &str) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(conn.host().expect("host").to_string())
        .tcp_port(conn.port().unwrap_or(3306))
        .user(conn.login())
        .pass(Some(password))
        .db_name(conn.schema())
        .into()
}

#[tokio::test]
async fn mariadb_round_trip_and_password_enforced() {
    let conn = require_conn!("mysql_default");
    let mut c = mysql_async::Conn::new(opts(&conn, conn.password().expect("password")))
        .await
        .expect("connect with the right password");
    let n: Option<i64> = c.query_first("SELECT 40 + 2").await.unwrap();
    assert_eq!(n, Some(42));
    let version: Option<String> = c.query_first("SELECT VERSION()").await.unwrap();
    assert!(version.unwrap().to_lowercase().contains("mariadb"));
    c.disconnect().await.unwrap();

    let err = mysql_async::Conn::new(opts(&conn, "not-the-password"))
        .await
        .expect_err("a wrong password must be rejected");
    assert!(err.to_string().contains("Access denied"), "{err}");
}
