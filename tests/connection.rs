//! `gust::Connection` against Airflow's own behaviour (tests/data/airflow_connections.json,
//! made by tests/data/gen_airflow_connections.py), plus round-trip, environment and
//! secrecy tests.

use gust::connection::load_dotenv_from;
use gust::{Connection, ErrorKind, Variable};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    input_kind: String,
    input: String,
    expected: Option<Expected>,
    get_uri: Option<String>,
    as_json: Option<String>,
    extra: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct Expected {
    conn_type: Option<String>,
    host: Option<String>,
    port: Option<u32>,
    login: Option<String>,
    password: Option<String>,
    schema: Option<String>,
    /// A `Value`: for one case Airflow's `extra_dejson` is not even an object.
    extra_dejson: Value,
    description: Option<String>,
}

/// Inputs Airflow accepts but gust rejects on purpose (`InvalidInput`), with the reason.
const GUST_REJECTS: &[(&str, &str)] = &[
    (
        "extra_param_not_json",
        "Airflow logs the error and reads the extras as {}",
    ),
    (
        "json_extra_invalid_json_string",
        "Airflow logs the error and reads the extras as {}",
    ),
    (
        "json_extra_list",
        "extras must be a JSON object (core Airflow's _validate_extra agrees)",
    ),
    (
        "json_port_beyond_u16",
        "a port is a u16; Airflow would emit `http://@:70000`",
    ),
];

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/airflow_connections.json"
    );
    let text = std::fs::read_to_string(path).expect("read airflow_connections.json");
    serde_json::from_str(&text).expect("parse airflow_connections.json")
}

fn parse(case: &Case) -> gust::Result<Connection> {
    // Airflow's environment backend strips the value before parsing; so did the generator.
    let input = case.input.trim();
    match case.input_kind.as_str() {
        "uri" => Connection::from_uri("case", input),
        "json" => Connection::from_json("case", input),
        other => panic!("{}: unknown input_kind {other}", case.name),
    }
}

fn actual(c: &Connection) -> Expected {
    let s = |v: Option<&str>| v.map(str::to_string);
    Expected {
        // Airflow's None conn_type reads as "" here; as_json (compared too) tells them apart.
        conn_type: Some(c.conn_type().to_string()),
        host: s(c.host()),
        port: c.port().map(u32::from),
        login: s(c.login()),
        password: s(c.password()),
        schema: s(c.schema()),
        extra_dejson: Value::Object(c.extra_dejson().clone()),
        description: s(c.description()),
    }
}

/// Every difference between gust and Airflow on one case, as readable lines.
fn mismatches(case: &Case) -> Vec<String> {
    let mut out = Vec::new();
    let parsed = parse(case);
    if let Some((_, why)) = GUST_REJECTS.iter().find(|(name, _)| *name == case.name) {
        assert!(
            case.expected.is_some(),
            "{}: Airflow no longer accepts it; drop it from GUST_REJECTS",
            case.name
        );
        match parsed {
            Err(e) if e.kind() == ErrorKind::InvalidInput => {}
            other => out.push(format!("gust should reject it ({why}), got {other:?}")),
        }
        return out;
    }
    let Some(expected) = &case.expected else {
        match parsed {
            Ok(c) => out.push(format!(
                "Airflow raised {:?}, gust parsed {c:?}",
                case.error
            )),
            Err(e) if e.kind() != ErrorKind::InvalidInput => {
                out.push(format!("wrong error kind: {e}"))
            }
            Err(_) => {}
        }
        return out;
    };
    let c = match parsed {
        Ok(c) => c,
        Err(e) => return vec![format!("gust failed: {e}")],
    };
    let mut expected = expected.clone();
    expected.conn_type.get_or_insert_with(String::new);
    let got = actual(&c);
    if got != expected {
        out.push(format!(
            "fields:\n    airflow {expected:?}\n    gust    {got:?}"
        ));
    }
    let checks = [
        ("get_uri", case.get_uri.clone(), Some(c.get_uri())),
        ("as_json", case.as_json.clone(), Some(c.as_json())),
        // Airflow keeps an empty `extra` text as ""; gust's extra() is None when empty.
        (
            "extra",
            case.extra.clone().filter(|e| !e.is_empty()),
            c.extra(),
        ),
    ];
    for (what, airflow, gust) in checks {
        if airflow != gust {
            out.push(format!(
                "{what}:\n    airflow {airflow:?}\n    gust    {gust:?}"
            ));
        }
    }
    out
}

#[test]
fn matches_airflow_on_every_case() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let m = mismatches(case);
            (!m.is_empty()).then(|| {
                format!(
                    "case {} ({:?}):\n  {}",
                    case.name,
                    case.input,
                    m.join("\n  ")
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Airflow:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn mismatches_are_reported_by_case_name() {
    // The comparison above can fail: corrupt one expectation and it must be caught.
    let mut case = cases()
        .into_iter()
        .find(|c| c.name == "postgres_basic")
        .expect("postgres_basic");
    case.get_uri = Some("postgres://someone-else@localhost".into());
    if let Some(e) = case.expected.as_mut() {
        e.port = Some(1);
    }
    let m = mismatches(&case);
    assert_eq!(m.len(), 2, "{m:?}");
}

#[test]
fn from_env_matches_the_direct_parse_on_every_case() {
    for (i, case) in cases().iter().enumerate() {
        let id = format!("gust_test_case_{i}");
        let var = format!("AIRFLOW_CONN_{}", id.to_uppercase());
        // SAFETY: a variable name no other test uses; std serializes its env access.
        unsafe { std::env::set_var(&var, &case.input) };
        let from_env = Connection::from_env(&id);
        unsafe { std::env::remove_var(&var) };
        if case.input.trim().is_empty() {
            // Airflow's backend reads an empty variable as "not defined".
            assert_eq!(
                from_env.unwrap_err().kind(),
                ErrorKind::Config,
                "{}",
                case.name
            );
            continue;
        }
        match (from_env, parse(case)) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.get_uri(), b.get_uri(), "{}", case.name);
                assert_eq!(a.conn_id(), id);
            }
            (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{}", case.name),
            (a, b) => panic!("{}: from_env {a:?} vs direct {b:?}", case.name),
        }
    }
}

#[test]
fn from_env_reads_uri_and_json_and_names_the_missing_variable() {
    // SAFETY: variable names no other test uses.
    unsafe {
        std::env::set_var(
            "AIRFLOW_CONN_GUST_ENV_URI",
            "  postgresql://u:p%40ss@db:5432/app\n",
        );
        std::env::set_var(
            "AIRFLOW_CONN_GUST_ENV_JSON",
            r#" {"conn_type": "mysql", "host": "db", "port": "3306"}"#,
        );
        std::env::set_var("AIRFLOW_CONN_GUST_ENV_EMPTY", "  ");
    }
    let c = Connection::from_env("gust_env_uri").unwrap();
    assert_eq!(
        (c.conn_type(), c.password(), c.port()),
        ("postgres", Some("p@ss"), Some(5432))
    );
    let c = Connection::from_env("Gust_Env_Json").unwrap();
    assert_eq!(
        (c.conn_type(), c.host(), c.port()),
        ("mysql", Some("db"), Some(3306))
    );
    for id in ["gust_env_missing", "gust_env_empty"] {
        let e = Connection::from_env(id).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.operation(), "connection.from_env");
        assert!(
            e.to_string()
                .contains(&format!("AIRFLOW_CONN_{}", id.to_uppercase())),
            "{e}"
        );
    }
    let e = Connection::from_env("bad id").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn variables_come_from_airflow_var() {
    // SAFETY: variable names no other test uses.
    unsafe {
        std::env::set_var("AIRFLOW_VAR_GUST_TEST_PLAIN", "hello");
        std::env::set_var("AIRFLOW_VAR_GUST_TEST_JSON", r#"{"a": [1, 2], "b": "x"}"#);
        std::env::set_var("AIRFLOW_VAR_GUST_TEST_BAD_JSON", "{secret-value");
    }
    assert_eq!(Variable::get("gust_test_plain").unwrap(), "hello");
    assert_eq!(
        Variable::get_opt("GUST_TEST_PLAIN").unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(Variable::get_opt("gust_test_absent").unwrap(), None);
    assert_eq!(
        Variable::get_json("gust_test_json").unwrap(),
        serde_json::json!({"a": [1, 2], "b": "x"})
    );
    let e = Variable::get("gust_test_absent").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string().contains("AIRFLOW_VAR_GUST_TEST_ABSENT"),
        "{e}"
    );
    let e = Variable::get_json("gust_test_bad_json").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(!e.to_string().contains("secret-value"), "{e}");
}

#[test]
fn dotenv_loads_without_overriding() {
    let dir = std::env::temp_dir().join(format!("gust-dotenv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(".env");
    std::fs::write(
        &path,
        "AIRFLOW_VAR_GUST_DOTENV_NEW=from-file\nAIRFLOW_VAR_GUST_DOTENV_SET=from-file\n",
    )
    .unwrap();
    // SAFETY: variable names no other test uses.
    unsafe { std::env::set_var("AIRFLOW_VAR_GUST_DOTENV_SET", "from-env") };
    load_dotenv_from(&path).unwrap();
    assert_eq!(Variable::get("gust_dotenv_new").unwrap(), "from-file");
    assert_eq!(Variable::get("gust_dotenv_set").unwrap(), "from-env");
    std::fs::write(&path, "GUST_BROKEN='hunter2-secret\n").unwrap();
    let e = load_dotenv_from(&path).unwrap_err();
    assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
    let e = load_dotenv_from(dir.join("absent.env")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn conn_ids_follow_airflow_rule() {
    for id in [
        "",
        "has space",
        "semi;colon",
        "quote'",
        "new\nline",
        &"x".repeat(251),
    ] {
        let e = Connection::new(id, "http").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{id:?}");
        assert_eq!(
            e.context("conn_id"),
            Some(id.replace('\n', " ").trim()),
            "{id:?}"
        );
        assert!(Connection::from_uri(id, "http://h").is_err());
        assert!(Connection::from_json(id, "{}").is_err());
    }
    for id in [
        "a",
        "aws_default",
        "my-conn.v2:eu/west\\1#(x)!",
        "ünïcødé",
        &"x".repeat(250),
    ] {
        assert_eq!(Connection::new(id, "http").unwrap().conn_id(), id);
    }
}

#[test]
fn json_form() {
    let c = Connection::from_json(
        "pg",
        r#"{"conn_type": "postgresql", "host": "h", "port": 5432, "login": "u", "password": "p",
            "schema": "db", "description": "main db", "extra": "{\"sslmode\": \"require\"}"}"#,
    )
    .unwrap();
    let built = Connection::new("pg", "postgres")
        .unwrap()
        .with_host("h")
        .with_port(5432)
        .with_login("u")
        .with_password("p")
        .with_schema("db")
        .with_description("main db")
        .with_extra("sslmode", "require".into());
    assert_eq!(c, built);
    assert_eq!(c.extra().as_deref(), Some(r#"{"sslmode": "require"}"#));
    assert_eq!(
        c.as_json(),
        r#"{"conn_type": "postgres", "description": "main db", "host": "h", "login": "u", "password": "p", "schema": "db", "port": 5432, "extra": {"sslmode": "require"}}"#
    );
    assert_eq!(Connection::from_json("pg", &c.as_json()).unwrap(), c);
    for bad in [
        r#"["not", "an", "object"]"#,
        r#"{"conn_type": "http", "hots": "typo"}"#,
        r#"{"conn_type": "http", "port": 70000}"#,
        r#"{"conn_type": "http", "port": "80a"}"#,
        r#"{"conn_type": "http", "extra": "not json"}"#,
        r#"{"conn_type": "http", "extra": [1, 2]}"#,
        r#"{"conn_type": "http", "host": 5}"#,
        r#"{"uri": "http://h", "host": null}"#,
        r#"{"conn_type": "http", "password": "unterminated"#,
    ] {
        let e = Connection::from_json("c", bad).unwrap_err();
        assert_eq!(
            (e.kind(), e.operation()),
            (ErrorKind::InvalidInput, "connection.from_json"),
            "{bad}"
        );
        assert_eq!(e.context("conn_id"), Some("c"));
        assert!(!e.to_string().contains("unterminated"), "{e}");
    }
}

#[test]
fn extra_str_reads_plain_and_prefixed_keys() {
    let c = Connection::from_json(
        "gcp",
        r#"{"conn_type": "google_cloud_platform", "extra": {"extra__google_cloud_platform__project": "p1",
            "region": "eu", "empty": "", "n": 3}}"#,
    )
    .unwrap();
    assert_eq!(c.extra_str("project"), Some("p1"));
    assert_eq!(c.extra_str("region"), Some("eu"));
    assert_eq!(c.extra_str("empty"), None);
    assert_eq!(c.extra_str("n"), None);
    assert_eq!(c.extra_str("absent"), None);
}

const SECRET: &str = "Hunter2 p@ss/w:rd%#?&+é";

fn secret_connection() -> Connection {
    let uri = format!(
        "postgres://admin:{}@db:5432/app?api_key=K3yK3yK3y%2F&region=eu&__x=1",
        gust_quote(SECRET)
    );
    Connection::from_uri("pg", &uri).unwrap()
}

/// Python's quote(s, safe=''), for building inputs.
fn gust_quote(s: &str) -> String {
    Connection::new("q", "x")
        .unwrap()
        .with_password(s)
        .get_uri()["x://:".len()..]
        .trim_end_matches('@')
        .to_string()
}

fn assert_no_secret(text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{s:?} leaked in {text}");
    }
}

#[test]
fn debug_display_and_errors_hide_secrets() {
    let c = secret_connection();
    assert_eq!(c.password(), Some(SECRET));
    let secrets = c.secrets();
    for form in [
        SECRET,
        "Hunter2%20p%40ss%2Fw%3Ard%25%23%3F%26%2B%C3%A9",
        "Hunter2+p%40ss%2Fw%3Ard%25%23%3F%26%2B%C3%A9",
        "K3yK3yK3y/",
        "K3yK3yK3y%2F",
    ] {
        assert!(
            secrets.iter().any(|s| s == form),
            "{form:?} not in {secrets:?}"
        );
    }
    let display = c.to_string();
    assert_eq!(
        display,
        "postgres://admin:***@db:5432/app?api_key=***&region=eu&__x=1"
    );
    let debug = format!("{c:?}");
    assert!(
        debug.contains(r#"password: Some("***")"#) && debug.contains(r#""api_key": "***""#),
        "{debug}"
    );
    assert!(
        debug.contains(r#"host: Some("db")"#) && debug.contains(r#""region": "eu""#),
        "{debug}"
    );
    assert_no_secret(&format!("{display}{debug}"), &secrets);

    // Nested sensitive extras are masked at any depth, in the __extra__ form too.
    let nested = Connection::new("gcp", "google_cloud_platform")
        .unwrap()
        .with_extra(
            "keyfile_dict",
            serde_json::json!({"private_key": "-----BEGIN KEY-----", "n": 123456}),
        )
        .with_extra(
            "opts",
            serde_json::json!({"deep": {"client_secret": "s3cr3t-val"}, "ok": "visible"}),
        );
    let secrets = nested.secrets();
    assert!(
        secrets.iter().any(|s| s == "s3cr3t-val") && secrets.iter().any(|s| s == "123456"),
        "{secrets:?}"
    );
    let text = format!("{nested} {nested:?}");
    assert_no_secret(&text, &secrets);
    assert!(text.contains("visible") && text.contains("***"), "{text}");
    assert!(nested.get_uri().contains("s3cr3t-val"));

    // Malformed URIs holding a password are reported without it.
    let raw = "Sup3r/Secr3t#x";
    for uri in [
        format!("postgres://user:{raw}@h/db"),
        format!("postgres://user:{raw}@[::1/db"),
        format!("http://user:{raw}@https://host"),
        format!("a://user:{raw}@b://c://d"),
        format!("postgres://user:{}@h:99999/db", gust_quote(raw)),
        format!(
            "http://h/?__extra__={}",
            gust_quote(&format!("{{\"password\": \"{raw}\"")),
        ),
    ] {
        let e = Connection::from_uri("pg", &uri).unwrap_err();
        assert_eq!(
            (e.kind(), e.operation()),
            (ErrorKind::InvalidInput, "connection.from_uri"),
            "{uri}"
        );
        assert_eq!(e.context("conn_id"), Some("pg"));
        let text = format!("{e} {e:?}");
        assert_no_secret(&text, &[raw.to_string(), gust_quote(raw), "Secr3t".into()]);
    }

    // Error::redact with secrets() scrubs a driver error that echoes the DSN.
    let c = secret_connection();
    let err = gust::Error::new(
        ErrorKind::Auth,
        "pg.connect",
        format!("bad DSN {}", c.get_uri()),
    )
    .redact(&c.secrets());
    assert_no_secret(&err.to_string(), &c.secrets());
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).unwrap(),
        proptest::string::string_regex(&format!(
            "[a-zA-Z0-9@/:%#?&+= .~*'\\[\\]é€中🔑_-]{{0,{max}}}"
        ))
        .unwrap(),
        proptest::string::string_regex(&format!("\\PC{{0,{max}}}")).unwrap(),
    ]
}

/// Hosts Airflow can round-trip: non-empty (an empty host comes back as `""` and turns a
/// lone port into `@:port`), no ASCII upper case (Python lower-cases host names), and no
/// `://` (taken for a protocol prefix).
fn host() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z0-9@/:%#?&+= .~*'\\[\\]é€中🔑_-]{1,20}|[^A-Z\\p{C}]{1,12}")
        .unwrap()
        .prop_filter("no protocol separator", |h| !h.contains("://"))
}

fn extra_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        text(10).prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        (-1e6f64..1e6).prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            proptest::collection::btree_map(text(6), inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn extras() -> impl Strategy<Value = Map<String, Value>> {
    // `__extra__` is the one key a query cannot carry.
    let key = || text(8).prop_filter("not __extra__", |k| k != "__extra__");
    prop_oneof![
        proptest::collection::btree_map(key(), text(12).prop_map(Value::from), 0..4),
        proptest::collection::btree_map(key(), extra_value(), 0..4),
    ]
    .prop_map(|m| m.into_iter().collect())
}

/// Logins and passwords Airflow can round-trip: a password needs a login (else it comes
/// back with login `""`), and an empty login needs a password (else it vanishes).
fn credentials() -> impl Strategy<Value = (Option<String>, Option<String>)> {
    prop_oneof![
        Just((None, None)),
        text(16)
            .prop_filter("non-empty", |l| !l.is_empty())
            .prop_map(|l| (Some(l), None)),
        (text(16), text(16)).prop_map(|(l, p)| (Some(l), Some(p))),
    ]
}

fn connection() -> impl Strategy<Value = Connection> {
    (
        // No `-` (it comes back as `_`) and not `postgresql` (it comes back as `postgres`).
        "[a-z][a-z0-9_]{0,12}".prop_filter("alias", |t| t != "postgresql"),
        host(),
        proptest::option::of(1..=u16::MAX),
        credentials(),
        text(16),
        extras(),
    )
        .prop_map(
            |(conn_type, host, port, (login, password), schema, extras)| {
                let mut c = Connection::new("prop", conn_type)
                    .unwrap()
                    .with_host(host)
                    .with_schema(schema);
                if let Some(port) = port {
                    c = c.with_port(port);
                }
                if let Some(login) = login {
                    c = c.with_login(login);
                }
                if let Some(password) = password {
                    c = c.with_password(password);
                }
                c.with_extra_dejson(extras)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn get_uri_round_trips(c in connection()) {
        let uri = c.get_uri();
        let back = Connection::from_uri("prop", &uri);
        prop_assert!(back.is_ok(), "{uri}: {:?}", back.err());
        let back = back.unwrap();
        prop_assert_eq!(&back, &c, "via {}", uri);
        prop_assert_eq!(back.get_uri(), uri);
        // The JSON form round-trips as well.
        prop_assert_eq!(Connection::from_json("prop", &c.as_json()).unwrap(), c);
    }

    #[test]
    fn password_never_shows(c in connection(), secret in "[a-z]{3}\\PC{4,12}") {
        let secret = format!("ZQX{secret}");
        let c = c.with_password(secret.clone()).with_login("user").with_extra("auth_token", Value::from(format!("{secret}-token")));
        let shown = format!("{c} {c:?}");
        // The password and token here are long. The random schema and extras text can
        // add short secrets too (a `user:pw@` in the schema, a URL's userinfo or a
        // sensitive key's value in an extra), and such a one, say `a`, may well occur
        // elsewhere in the text by chance: as in Airflow, it is masked only in a URL's
        // userinfo, so only the secrets of at least the masking minimum are checked.
        for s in c.secrets().into_iter().filter(|s| s.chars().count() >= gust::error::MIN_MASKED_SECRET_LEN) {
            prop_assert!(!shown.contains(&s), "{:?} in {}", s, shown);
        }
        prop_assert!(c.get_uri().contains(&gust_quote(&secret)));
    }
}
