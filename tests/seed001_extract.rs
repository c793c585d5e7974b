//! Seed 001's extraction step on MariaDB: `SqlExecuteQuery` runs a templated
//! `features.sql` (DELETE + INSERT, split_statements=true, one transaction) for
//! several consecutive dates; the target then holds exactly the last 7 days, and
//! re-running a date leaves the row count unchanged.

mod common;

use chrono::TimeZone;
use gust::hooks::mysql::MySqlHook;
use gust::hooks::sql::{Parameters, RunOptions, Sql, SqlHook};
use gust::operators::sql::SqlExecuteQuery;
use gust::{Context, Operator};
use serde_json::{Value, json};

fn ctx(ds: &str, params: &Value) -> Context {
    let day = chrono::NaiveDate::parse_from_str(ds, "%Y-%m-%d").unwrap();
    let tz = chrono_tz::Asia::Seoul;
    let date = tz
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
        .unwrap();
    Context::builder("credit_score_classification_ct", "data_extract")
        .logical_date(date)
        .params(params.clone())
        .template_search_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sql"))
        .build()
}

async fn extract(ds: &str, params: &Value) -> Value {
    SqlExecuteQuery::new("mysql_default", "features_last7.sql")
        .split_statements(true)
        .execute(&ctx(ds, params))
        .await
        .unwrap_or_else(|e| panic!("extract {ds}: {e}"))
}

#[tokio::test]
async fn seed001_extraction_keeps_exactly_the_last_7_days() {
    let conn = require_conn!("mysql_default");
    let h = MySqlHook::from_connection(&conn).await.unwrap();
    let suffix = common::sql::table("s001");
    let (scores, features, target) = (
        format!("cs_{suffix}"),
        format!("csf_{suffix}"),
        format!("cst_{suffix}"),
    );
    let setup = format!(
        "CREATE TABLE {scores} (id VARCHAR(10), customer_id VARCHAR(10), date DATE, credit_score VARCHAR(10));
         CREATE TABLE {features} (id VARCHAR(10), customer_id VARCHAR(10), age INT, annual_income DECIMAL(12,2));
         CREATE TABLE {target} (base_dt DATE, id VARCHAR(10), customer_id VARCHAR(10), date DATE,
                                age INT, annual_income DECIMAL(12,2), credit_score VARCHAR(10));
         INSERT INTO {scores} VALUES ('a', 'c1', '2024-12-20', 'Good'), ('b', 'c2', '2024-12-28', 'Poor'),
                                     ('c', 'c3', '2025-01-03', 'Standard'), ('old', 'c4', '2024-10-01', 'Good');
         INSERT INTO {features} VALUES ('a', 'c1', 30, 1000.50), ('b', 'c2', 41, 2000.00),
                                       ('c', 'c3', 25, 1500.25), ('old', 'c4', 50, 10.00);"
    );
    h.run(
        Sql::from(setup),
        RunOptions {
            split_statements: true,
            autocommit: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let params = json!({"scores": scores, "features": features, "target": target});

    let dates: Vec<String> = (1..=10).map(|d| format!("2025-01-{d:02}")).collect();
    for ds in &dates {
        extract(ds, &params).await;
    }
    let days = h
        .get_records(
            &format!(
                "SELECT base_dt, COUNT(*) AS n FROM {target} GROUP BY base_dt ORDER BY base_dt"
            ),
            Parameters::None,
        )
        .await
        .unwrap();
    let got: Vec<&str> = days
        .iter()
        .map(|r| r["base_dt"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        &dates.iter().map(String::as_str).collect::<Vec<_>>()[3..],
        "exactly the last 7 days"
    );
    // On 2025-01-10 the window [2024-12-10, 2025-01-10] holds a, b, c but not 'old'.
    assert_eq!(days.last().unwrap()["n"], json!(3));
    let total = |rows: Vec<gust::hooks::sql::Row>| rows[0]["n"].as_i64().unwrap();
    let count_sql = format!("SELECT COUNT(*) AS n FROM {target}");
    let before = total(h.get_records(&count_sql, Parameters::None).await.unwrap());

    // Re-running a date replaces its rows: the count does not change.
    extract("2025-01-10", &params).await;
    extract("2025-01-08", &params).await;
    let after = total(h.get_records(&count_sql, Parameters::None).await.unwrap());
    assert_eq!(before, after);
    let row = h
        .get_first(
            &format!("SELECT * FROM {target} WHERE id = 'a' AND base_dt = :d"),
            Parameters::from(json!({"d": "2025-01-10"})),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row["annual_income"], "1000.50");
    assert_eq!(row["date"], "2024-12-20");

    h.run(
        Sql::from(format!(
            "DROP TABLE {scores}; DROP TABLE {features}; DROP TABLE {target}"
        )),
        RunOptions {
            split_statements: true,
            autocommit: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
}
