//! One conformance suite for every `SqlHook`, run by tests/{postgres,mysql,sqlite}.rs.
#![allow(dead_code)]

use std::io::Cursor;

use gust::ErrorKind;
use gust::hooks::sql::{
    Dialect, Handler, InsertOptions, Parameters, RunOptions, Sql, SqlHook, quote_identifier,
};
use serde_json::{Value, json};

/// A table name unique to this process and test, valid on every database.
pub fn table(prefix: &str) -> String {
    crate::common::unique(prefix).replace('-', "_")
}

fn q(h: &dyn SqlHook, name: &str) -> String {
    h.quote_identifier(name).unwrap()
}

async fn count(h: &dyn SqlHook, t: &str) -> i64 {
    let row = h
        .get_first(
            &format!("SELECT COUNT(*) AS n FROM {}", q(h, t)),
            Parameters::None,
        )
        .await
        .unwrap()
        .unwrap();
    row["n"].as_i64().unwrap()
}

async fn create(h: &dyn SqlHook, t: &str) {
    let sql = format!(
        "CREATE TABLE {} (id INTEGER PRIMARY KEY, name VARCHAR(50), amount DECIMAL(12,2), d DATE, note VARCHAR(50))",
        q(h, t)
    );
    h.run(
        Sql::from(sql),
        RunOptions {
            autocommit: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

async fn drop_table(h: &dyn SqlHook, t: &str) {
    let _ = h
        .run(
            Sql::from(format!("DROP TABLE IF EXISTS {}", q(h, t))),
            RunOptions {
                autocommit: true,
                ..Default::default()
            },
        )
        .await;
}

fn cols() -> Vec<String> {
    ["id", "name", "amount", "d", "note"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// insert_rows (batched, upsert), get_records, get_first, stream_rows and the JSON mapping.
pub async fn rows_round_trip(h: &dyn SqlHook) {
    let t = table("rt");
    create(h, &t).await;
    let rows: Vec<Vec<Value>> = (1..=25)
        .map(|i| {
            vec![
                json!(i),
                json!(format!("n{i}")),
                json!("12.50"),
                json!("2025-01-08"),
                Value::Null,
            ]
        })
        .collect();
    let opts = InsertOptions {
        commit_every: 10,
        ..Default::default()
    };
    assert_eq!(h.insert_rows(&t, &cols(), rows, opts).await.unwrap(), 25);
    assert_eq!(count(h, &t).await, 25);

    let first = h
        .get_first(
            &format!("SELECT * FROM {} WHERE id = :id", q(h, &t)),
            Parameters::from(json!({"id": 3})),
        )
        .await
        .unwrap()
        .expect("row 3");
    assert_eq!(first["id"], json!(3));
    assert_eq!(first["name"], json!("n3"));
    assert_eq!(first["d"], json!("2025-01-08"));
    assert_eq!(first["note"], Value::Null);
    // Decimals keep their digits as strings; SQLite has no decimal type (REAL).
    let amount = if h.dialect() == Dialect::Sqlite {
        json!(12.5)
    } else {
        json!("12.50")
    };
    assert_eq!(first["amount"], amount);

    let all = h
        .get_records(
            &format!("SELECT id FROM {} ORDER BY id", q(h, &t)),
            Parameters::None,
        )
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r["id"].as_i64().unwrap()).sum::<i64>(),
        (1..=25).sum::<i64>()
    );
    use futures::StreamExt;
    let sql = format!("SELECT id FROM {} ORDER BY id", q(h, &t));
    let streamed: Vec<_> = h.stream_rows(&sql, Parameters::None).collect().await;
    assert_eq!(streamed.len(), 25);

    // Upsert: same key, new name; the count does not change.
    let upsert = InsertOptions {
        replace: true,
        replace_index: vec!["id".into()],
        ..Default::default()
    };
    let row = vec![vec![
        json!(3),
        json!("three"),
        json!("1.00"),
        json!("2025-01-09"),
        json!("x"),
    ]];
    h.insert_rows(&t, &cols(), row, upsert).await.unwrap();
    assert_eq!(count(h, &t).await, 25);
    let r = h
        .get_first(
            &format!("SELECT name FROM {} WHERE id = 3", q(h, &t)),
            Parameters::None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r["name"], json!("three"));
    drop_table(h, &t).await;
}

/// autocommit=false: a failing statement k rolls back 1..k-1; autocommit=true keeps them.
pub async fn run_is_atomic(h: &dyn SqlHook) {
    let t = table("atom");
    create(h, &t).await;
    let ins = |id: i64| format!("INSERT INTO {} (id, name) VALUES ({id}, 'x')", q(h, &t));
    let script = Sql::Many(vec![
        ins(1),
        ins(2),
        format!("INSERT INTO {} (id) VALUES (1)", q(h, &t)),
    ]);
    let err = h
        .run(script.clone(), RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.context("statement"), Some("3"), "{err}");
    assert_eq!(err.context("conn_id"), Some(h.conn_id()));
    assert!(err.to_string().contains("statement 3 of 3"), "{err}");
    assert_eq!(
        count(h, &t).await,
        0,
        "statements 1 and 2 must be rolled back"
    );

    let err = h
        .run(
            script,
            RunOptions {
                autocommit: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.context("statement"), Some("3"));
    assert_eq!(
        count(h, &t).await,
        2,
        "autocommit keeps what ran before the failure"
    );
    drop_table(h, &t).await;
}

/// split_statements + named parameters + handlers and Airflow's return shape.
pub async fn run_splits_binds_and_shapes(h: &dyn SqlHook) {
    let t = table("split");
    create(h, &t).await;
    let qt = q(h, &t);
    let script = format!(
        "INSERT INTO {qt} (id, name) VALUES (:a, 'semi;colon'); -- a comment; here\n\
         INSERT INTO {qt} (id, name) VALUES (:b, 'it''s');\n\
         SELECT id, name FROM {qt} ORDER BY id;"
    );
    let params = Parameters::from(json!({"a": 1, "b": 2}));
    let out = h
        .run(
            Sql::from(script.clone()),
            RunOptions {
                split_statements: true,
                handler: Handler::FetchAll,
                parameters: params.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        json!([{"id": 1, "name": "semi;colon"}, {"id": 2, "name": "it's"}])
    );
    let out = h
        .run(
            Sql::from(
                format!("DELETE FROM {qt} WHERE id = ?1; DELETE FROM {qt}").replace(
                    "?1",
                    if h.dialect() == Dialect::Postgres {
                        "$1"
                    } else {
                        "?"
                    },
                ),
            ),
            RunOptions {
                split_statements: true,
                handler: Handler::RowsAffected,
                return_last: false,
                parameters: Parameters::from(json!([1])),
                ..Default::default()
            },
        )
        .await;
    // Positional parameters go to every statement: the second has none, so this is refused.
    let err = out.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.message()
            .contains("statement 2 has 0 placeholder(s) but 1"),
        "{err}"
    );
    let out = h
        .run(
            Sql::Many(vec![
                format!("DELETE FROM {qt} WHERE id = 1"),
                format!("DELETE FROM {qt}"),
            ]),
            RunOptions {
                handler: Handler::RowsAffected,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out, json!([1, 1]));
    drop_table(h, &t).await;
}

/// Syntax errors name the statement; hostile table names are quoted, never run.
pub async fn bad_input(h: &dyn SqlHook) {
    let err = h
        .run(
            Sql::from("SELECT 1; SELEC oops"),
            RunOptions {
                split_statements: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.context("statement"), Some("2"), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let err = h
        .get_records("SELECT 1 WHERE 1 = :x", Parameters::from(json!([1])))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let victim = table("victim");
    create(h, &victim).await;
    let hostile = format!("{victim}\"`; DROP TABLE {victim}; --");
    let err = h
        .insert_rows(
            &hostile,
            &["id".to_string()],
            vec![vec![json!(1)]],
            InsertOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput),
        "{err}"
    );
    assert_eq!(count(h, &victim).await, 0, "the victim table still exists");
    // The same name works as a real table name.
    let sql = format!(
        "CREATE TABLE {} (id INTEGER)",
        quote_identifier(h.dialect(), &hostile).unwrap()
    );
    h.run(
        Sql::from(sql),
        RunOptions {
            autocommit: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    h.insert_rows(
        &hostile,
        &["id".to_string()],
        vec![vec![json!(7)]],
        InsertOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(count(h, &hostile).await, 1);
    drop_table(h, &hostile).await;
    drop_table(h, &victim).await;
}

/// bulk_dump → bulk_load round trip keeps NULL vs '' and awkward text; a bad
/// record loads nothing.
pub async fn bulk_round_trip(h: &dyn SqlHook) {
    let (src, dst) = (table("dump"), table("load"));
    create(h, &src).await;
    create(h, &dst).await;
    let rows = vec![
        vec![
            json!(1),
            json!("a,\"b\"\nc"),
            json!("1.25"),
            json!("2025-01-08"),
            Value::Null,
        ],
        vec![
            json!(2),
            json!(""),
            Value::Null,
            Value::Null,
            json!("tab\there \\ back"),
        ],
    ];
    h.insert_rows(&src, &cols(), rows, InsertOptions::default())
        .await
        .unwrap();
    let mut out = Cursor::new(Vec::new());
    let sql = format!("SELECT id, name, note FROM {} ORDER BY id", q(h, &src));
    let bytes = h.bulk_dump(&sql, &mut out).await.unwrap();
    let csv = out.into_inner();
    assert_eq!(bytes as usize, csv.len());
    assert!(
        csv.starts_with(b"id,name,note\n"),
        "{}",
        String::from_utf8_lossy(&csv)
    );

    let loaded = h
        .bulk_load(&dst, &mut Cursor::new(csv.clone()))
        .await
        .unwrap();
    assert_eq!(loaded, 2);
    let back = h
        .get_records(
            &format!("SELECT id, name, note FROM {} ORDER BY id", q(h, &dst)),
            Parameters::None,
        )
        .await
        .unwrap();
    let orig = h.get_records(&sql, Parameters::None).await.unwrap();
    assert_eq!(back, orig);
    assert_eq!(back[1]["name"], json!(""));
    assert_eq!(back[0]["note"], Value::Null);

    // A malformed record after good ones: nothing is loaded.
    let bad = b"id,name\n10,ok\n11,ok\n12,\"open\n".to_vec();
    // Any tokio reader: here a byte slice.
    let err = h.bulk_load(&dst, &mut bad.as_slice()).await.unwrap_err();
    assert_eq!(err.context("table"), Some(dst.as_str()), "{err}");
    // No header row: the hook's own bulk_load error, not a helper's.
    let err = h.bulk_load(&dst, &mut &b""[..]).await.unwrap_err();
    assert_eq!(err.kind(), gust::ErrorKind::InvalidInput, "{err}");
    assert!(err.operation().ends_with(".bulk_load"), "{err}");
    assert_eq!(err.context("called"), None, "{err}");
    assert!(err.message().contains("header row"), "{err}");
    let wrong_width = b"id,name\n20,ok\n21\n".to_vec();
    assert!(
        h.bulk_load(&dst, &mut Cursor::new(wrong_width))
            .await
            .is_err()
    );
    assert_eq!(
        count(h, &dst).await,
        2,
        "a failed load leaves nothing behind"
    );
    drop_table(h, &src).await;
    drop_table(h, &dst).await;
}
