//! Golden tests of `gust::airflow` against Airflow 3.3.2 itself.
//!
//! * Frames written by Airflow's own supervisor code
//!   (`tests/data/airflow/gen_frames.py`, committed with its `manifest.json`)
//!   decode to what pydantic dumped — no Python needed.
//! * With `GUST_AIRFLOW_PYTHON` (the python of a venv with
//!   `apache-airflow==3.3.2`), Airflow's own decoders read the frames gust
//!   writes (`check_frames.py`) and Airflow's coordinator finds a bundle gust
//!   packed (`check_bundle.py`). Under `CI=true` a missing
//!   `GUST_AIRFLOW_PYTHON` fails those tests instead of skipping them.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, TimeZone, Utc};
use gust::ErrorKind;
use gust::airflow::bundle::{self, Manifest};
use gust::airflow::codec::{self, Datetimes};
use gust::airflow::comm::Comm;
use gust::airflow::messages::{
    FromSupervisor, GetConnection, GetVariable, GetXCom, MaskSecret, PutVariable, RetryTask,
    SUPERVISOR_SCHEMA_VERSION, SetXCom, SucceedTask, TaskState, TerminalState, ToSupervisor,
    airflow_error,
};
use serde_json::{Value, json};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/airflow")
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(data_dir().join("manifest.json")).unwrap()).unwrap()
}

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join("frames").join(format!("{name}.bin"))).unwrap()
}

/// Every string that is an RFC 3339 datetime in a canonical form, so that
/// pydantic's `.500000Z` and gust's `.500Z` compare equal as the instants they are.
fn canonical(v: &Value) -> Value {
    match v {
        Value::String(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Value::String(
                t.with_timezone(&Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            ),
            Err(_) => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        other => other.clone(),
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

#[test]
fn the_schema_version_is_the_one_airflow_accepts() {
    let m = manifest();
    assert_eq!(m["airflow_version"], "3.3.2");
    assert_eq!(m["supervisor_schema_version"], SUPERVISOR_SCHEMA_VERSION);
    assert_eq!(m["schema_json_api_version"], SUPERVISOR_SCHEMA_VERSION);
}

#[test]
fn every_golden_frame_decodes_to_what_airflow_dumped() {
    let m = manifest();
    let frames = m["frames"].as_array().unwrap();
    assert!(frames.len() >= 14, "{} golden frames", frames.len());
    for f in frames {
        let name = f["name"].as_str().unwrap();
        let bytes = golden(name);
        let frame = codec::decode_response(codec::split_frame(&bytes).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(frame.id, f["id"].as_u64().unwrap(), "{name}");
        let (slot, other) = match f["slot"].as_str().unwrap() {
            "body" => (frame.body.clone(), frame.error.clone()),
            "error" => (frame.error.clone(), frame.body.clone()),
            _ => {
                assert_eq!((&frame.body, &frame.error), (&None, &None), "{name}");
                continue;
            }
        };
        assert_eq!(other, None, "{name}: the other slot is nil");
        let got = slot.unwrap_or_else(|| panic!("{name}: the slot is empty"));
        assert_eq!(canonical(&got), canonical(&f["expect"]), "{name}: raw JSON");
        // Typed, and back: the same JSON (connections leave unset fields out).
        let typed =
            FromSupervisor::from_json(got.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(typed.type_name(), got["type"], "{name}");
        if !matches!(typed, FromSupervisor::ConnectionResult(_)) {
            assert_eq!(
                canonical(&typed.to_json()),
                canonical(&f["expect"]),
                "{name}: typed round trip"
            );
        }
    }
}

#[test]
fn startup_details_fields_in_all_three_timestamp_widths() {
    let decode = |name: &str| {
        let body = codec::decode_response(codec::split_frame(&golden(name)).unwrap())
            .unwrap()
            .body
            .unwrap();
        match FromSupervisor::from_json(body).unwrap() {
            FromSupervisor::StartupDetails(s) => *s,
            other => panic!("{name}: {other:?}"),
        }
    };
    let s = decode("startup_scheduled");
    assert_eq!(
        (s.ti.dag_id.as_str(), s.ti.task_id.as_str(), s.ti.try_number),
        ("etl", "extract", 1)
    );
    assert_eq!(s.ti.map_index, Some(-1));
    assert_eq!(s.ti.queue.as_deref(), Some("gust"));
    let run = &s.ti_context.dag_run;
    // 32-bit timestamps: whole seconds.
    assert_eq!(run.logical_date, Some(utc(2026, 1, 2, 0, 0, 0)));
    assert_eq!(run.data_interval_start, Some(utc(2026, 1, 1, 0, 0, 0)));
    // 64-bit: with microseconds.
    assert_eq!(
        run.run_after,
        utc(2026, 1, 2, 0, 0, 5) + chrono::Duration::milliseconds(250)
    );
    assert_eq!(
        s.start_date,
        utc(2026, 1, 2, 0, 0, 7) + chrono::Duration::microseconds(1)
    );
    // 96-bit: before 1970.
    assert_eq!(
        run.partition_date,
        Some(utc(1969, 7, 20, 20, 17, 40) + chrono::Duration::milliseconds(500))
    );
    assert_eq!(run.run_type, "scheduled");
    assert_eq!(run.conf.as_ref().unwrap()["limits"]["ratio"], 0.25);
    assert_eq!(
        (s.ti_context.max_tries, s.ti_context.should_retry()),
        (3, true)
    );

    let s = decode("startup_manual_no_logical_date");
    assert_eq!(s.ti_context.dag_run.logical_date, None);
    assert_eq!(s.ti_context.dag_run.data_interval_end, None);
    assert_eq!(s.ti_context.dag_run.conf, None);
    assert_eq!((s.ti.map_index, s.ti.try_number), (Some(3), 2));
    assert!(!s.ti_context.should_retry());
    assert_eq!(
        s.ti_context.dag_run.triggering_user_name.as_deref(),
        Some("admin")
    );
}

/// The runtime's client against Airflow's own answers, played back in order.
#[tokio::test]
async fn comm_against_golden_answers() {
    let answers = [
        "startup_scheduled",
        "connection_result",
        "connection_result_bare",
        "connection_not_found",
        "variable_result",
        "variable_not_found",
        "variable_permission_denied",
        "xcom_result_nested",
        "xcom_result_missing",
        "xcom_result_odd_values",
        "empty_response",
        "api_server_error",
        "api_transport_error",
    ];
    let (runtime, mut supervisor) = tokio::io::duplex(1 << 16);
    let played = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut requests = Vec::new();
        for (i, name) in answers.iter().enumerate() {
            if i > 0 {
                let payload = codec::read_frame(&mut supervisor).await.unwrap().unwrap();
                let req = codec::decode_request(&payload).unwrap();
                assert_eq!(req.id, i as u64, "ids count from 1");
                requests.push(ToSupervisor::from_json(req.body.unwrap()).unwrap());
            }
            supervisor.write_all(&golden(name)).await.unwrap();
        }
        requests
    });
    let mut comm = Comm::new(runtime);
    let startup = comm.read_startup().await.unwrap();
    assert_eq!(startup.ti.task_id, "extract");

    let pg = comm.get_connection("my_pg").await.unwrap();
    assert_eq!(
        (pg.host.as_deref(), pg.schema.as_deref(), pg.port),
        (Some("db.internal"), Some("analytics"), Some(5432))
    );
    assert_eq!(pg.password.as_deref(), Some("s3cr3t"));
    assert_eq!(
        pg.extra_json().unwrap().unwrap()["options"]["search_path"],
        "etl"
    );
    let bare = comm.get_connection("bare").await.unwrap();
    assert_eq!(
        (bare.conn_type.as_str(), bare.host.as_deref()),
        ("http", None)
    );
    let err = comm.get_connection("nope").await.unwrap_err();
    assert_eq!(
        (err.kind(), airflow_error(&err)),
        (ErrorKind::NotFound, Some("CONNECTION_NOT_FOUND"))
    );
    assert_eq!(err.context("conn_id"), Some("nope"));

    assert_eq!(
        comm.get_variable("threshold").await.unwrap().as_deref(),
        Some("0.75")
    );
    let err = comm.get_variable("missing").await.unwrap_err();
    assert_eq!(
        (err.kind(), airflow_error(&err)),
        (ErrorKind::NotFound, Some("VARIABLE_NOT_FOUND"))
    );
    let err = comm.get_variable("secret").await.unwrap_err();
    assert_eq!(
        (err.kind(), airflow_error(&err)),
        (ErrorKind::Auth, Some("PERMISSION_DENIED"))
    );

    let get = |task: &str| GetXCom {
        key: "return_value".into(),
        dag_id: "etl".into(),
        run_id: "r".into(),
        task_id: task.into(),
        map_index: None,
        include_prior_dates: false,
    };
    let v = comm.get_xcom(get("extract")).await.unwrap();
    assert_eq!(v["big"], json!(9223372036854775808u64));
    assert_eq!(v["neg"], json!(i64::MIN));
    assert_eq!(v["name"], "한글 ✓");
    assert_eq!(v["items"][1]["tags"], json!(["x"]));
    assert_eq!(
        comm.get_xcom(get("nothing")).await.unwrap(),
        Value::Null,
        "a missing XCom is null"
    );
    let odd = comm.get_xcom(get("odd")).await.unwrap();
    assert_eq!(odd["when"], "2026-01-02T03:04:05Z");

    comm.set_xcom(SetXCom {
        key: "return_value".into(),
        value: json!({"n": 1}),
        dag_id: "etl".into(),
        run_id: "r".into(),
        task_id: "extract".into(),
        map_index: Some(-1),
        dag_result: false,
        mapped_length: None,
    })
    .await
    .unwrap();

    let err = comm.get_variable("flaky").await.unwrap_err();
    assert_eq!(
        (err.kind(), err.context("status_code")),
        (ErrorKind::Unavailable, Some("500"))
    );
    assert!(err.message().contains("500 Internal Server Error"), "{err}");
    let err = comm.put_variable("k", Some("v"), None).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.context("status_code")),
        (ErrorKind::Unavailable, None)
    );
    assert!(err.is_retryable());

    let requests = played.await.unwrap();
    assert_eq!(requests.len(), answers.len() - 1);
    assert_eq!(
        requests[0],
        ToSupervisor::GetConnection(GetConnection {
            conn_id: "my_pg".into()
        })
    );
    assert_eq!(
        requests[4],
        ToSupervisor::GetVariable(GetVariable {
            key: "missing".into()
        })
    );
}

// ---------------------------------------------------------------------------
// Airflow's own code on what gust writes (GUST_AIRFLOW_PYTHON)
// ---------------------------------------------------------------------------

fn airflow_python() -> Option<PathBuf> {
    match std::env::var_os("GUST_AIRFLOW_PYTHON") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "GUST_AIRFLOW_PYTHON (the python of a venv with apache-airflow==3.3.2) is not set under CI"
            )
        }
        _ => {
            eprintln!("skipped: set GUST_AIRFLOW_PYTHON to check against Airflow itself");
            None
        }
    }
}

fn run_python(python: &Path, script: &str, args: &[&Path], extra: &[&str]) -> Value {
    let out = Command::new(python)
        .arg(data_dir().join(script))
        .args(args)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{script} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Airflow may log to stdout before the result: the JSON is the last line.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{script}: {stdout}"));
    serde_json::from_str(last).unwrap()
}

fn with_prefix(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

#[test]
fn airflows_decoders_accept_the_frames_gust_writes() {
    let Some(python) = airflow_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let end = utc(2026, 1, 2, 3, 4, 5) + chrono::Duration::microseconds(123_456);
    let requests: Vec<(&str, ToSupervisor)> = vec![
        (
            "req_get_connection",
            GetConnection {
                conn_id: "my_pg".into(),
            }
            .into(),
        ),
        ("req_get_variable", GetVariable { key: "k".into() }.into()),
        (
            "req_put_variable",
            PutVariable {
                key: "k".into(),
                value: None,
                description: None,
            }
            .into(),
        ),
        (
            "req_get_xcom",
            GetXCom {
                key: "return_value".into(),
                dag_id: "etl".into(),
                run_id: "r".into(),
                task_id: "extract".into(),
                map_index: Some(-1),
                include_prior_dates: false,
            }
            .into(),
        ),
        (
            "req_set_xcom",
            SetXCom {
                key: "return_value".into(),
                value: json!({"rows": [1, 2.5, "three", null, {"k": true}], "big": u64::MAX}),
                dag_id: "etl".into(),
                run_id: "r".into(),
                task_id: "extract".into(),
                map_index: Some(-1),
                dag_result: false,
                mapped_length: None,
            }
            .into(),
        ),
        (
            "req_mask_secret",
            MaskSecret {
                value: json!("hunter2"),
                name: Some("password".into()),
            }
            .into(),
        ),
        ("req_succeed", SucceedTask::new(end).into()),
        (
            "req_task_state_failed",
            TaskState {
                state: TerminalState::Failed,
                end_date: Some(end),
                rendered_map_index: None,
            }
            .into(),
        ),
        (
            "req_task_state_skipped",
            TaskState {
                state: TerminalState::Skipped,
                end_date: None,
                rendered_map_index: None,
            }
            .into(),
        ),
        (
            "req_retry",
            RetryTask {
                end_date: end,
                rendered_map_index: None,
                retry_delay_seconds: None,
                retry_reason: Some("boom".into()),
            }
            .into(),
        ),
    ];
    for (i, (name, msg)) in requests.iter().enumerate() {
        let payload = codec::encode_request(i as u64 + 1, &msg.to_json()).unwrap();
        std::fs::write(
            dir.path().join(format!("{name}.bin")),
            with_prefix(&payload),
        )
        .unwrap();
    }
    // The supervisor's side as gust's FakeSupervisor writes it: timestamps as
    // msgpack extensions, re-encoded from Airflow's own golden frames.
    for name in [
        "startup_scheduled",
        "startup_manual_no_logical_date",
        "connection_result",
        "xcom_result_nested",
    ] {
        let body = codec::decode_response(codec::split_frame(&golden(name)).unwrap())
            .unwrap()
            .body
            .unwrap();
        let typed = FromSupervisor::from_json(body).unwrap();
        let payload =
            codec::encode_response(0, Some(&typed.to_json()), None, Datetimes::Timestamps).unwrap();
        std::fs::write(
            dir.path().join(format!("resp_{name}.bin")),
            with_prefix(&payload),
        )
        .unwrap();
    }
    let seen = run_python(&python, "check_frames.py", &[dir.path()], &[]);
    for (i, (name, msg)) in requests.iter().enumerate() {
        let got = &seen[format!("{name}.bin")];
        assert!(
            got.get("error").is_none(),
            "{name}: Airflow refused it: {got}"
        );
        assert_eq!(got["id"], i as u64 + 1, "{name}");
        assert_eq!(got["type"], msg.type_name(), "{name}");
        // What Airflow validated is what gust meant (ignoring fields Airflow defaults).
        let ours = canonical(&msg.to_json());
        let theirs = canonical(&got["body"]);
        for (k, v) in ours.as_object().unwrap() {
            assert_eq!(&theirs[k], v, "{name}.{k}: {got}");
        }
    }
    assert_eq!(seen["req_succeed.bin"]["body"]["task_outlets"], json!([]));
    assert_eq!(seen["req_succeed.bin"]["body"]["state"], "success");
    assert_eq!(seen["req_retry.bin"]["body"]["state"], "up_for_retry");
    for name in [
        "startup_scheduled",
        "startup_manual_no_logical_date",
        "connection_result",
        "xcom_result_nested",
    ] {
        let got = &seen[format!("resp_{name}.bin")];
        assert!(
            got.get("error").is_none(),
            "{name}: Airflow refused it: {got}"
        );
        let expected = manifest()["frames"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()["expect"]
            .clone();
        // Airflow's task runner reads back what its supervisor sent.
        let theirs = canonical(&got["body"]);
        for (k, v) in canonical(&expected).as_object().unwrap() {
            assert_eq!(&theirs[k], v, "{name}.{k}");
        }
    }
}

#[test]
fn airflows_coordinator_finds_a_bundle_gust_packed() {
    let Some(python) = airflow_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("etl-bin");
    std::fs::write(&exe, b"#!/bin/sh\necho not really a task runtime\n").unwrap();
    let root = dir.path().join("bundles");
    std::fs::create_dir(&root).unwrap();
    let out = root.join("etl");
    let manifest = Manifest::new("0.1.0")
        .dag("etl", ["extract", "load"])
        .dag("other", ["t"]);
    let trailer =
        bundle::pack(&exe, Some(("main.rs", b"fn main() {}\n")), &manifest, &out).unwrap();
    assert_eq!(bundle::inspect(&out).unwrap().1.trailer, trailer);

    let seen = run_python(&python, "check_bundle.py", &[&out], &["etl"]);
    assert_eq!(
        seen["metadata"]["dags"]["etl"]["tasks"],
        json!(["extract", "load"]),
        "{seen}"
    );
    assert_eq!(seen["metadata"]["sdk"]["language"], "rust");
    assert_eq!(seen["metadata"]["source"], "main.rs");
    assert_eq!(seen["schema_version"], SUPERVISOR_SCHEMA_VERSION, "{seen}");
    assert_eq!(
        seen["command"],
        json!([out.canonicalize().unwrap().display().to_string()])
    );

    // A DAG the bundle does not declare, and a bundle modified after packing.
    let seen = run_python(&python, "check_bundle.py", &[&out], &["unknown_dag"]);
    assert!(
        seen["error"]
            .as_str()
            .unwrap()
            .contains("cannot find executable bundle"),
        "{seen}"
    );
    let mut bytes = std::fs::read(&out).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&out, &bytes).unwrap();
    assert!(bundle::inspect(&out).is_err());
    let seen = run_python(&python, "check_bundle.py", &[&out], &["etl"]);
    assert_eq!(
        seen["metadata"],
        Value::Null,
        "Airflow skips a bundle whose digest does not match"
    );
    assert!(seen.get("command").is_none(), "{seen}");
}

/// The runtime that Airflow's own coordinator forks in
/// `airflows_coordinator_runs_a_gust_runtime`: this test binary, started
/// through the bundle's shell wrapper. It does nothing in a normal test run.
#[tokio::test]
async fn runtime_child_for_the_coordinator() {
    use tokio::io::AsyncWriteExt;
    if std::env::var_os("GUST_AIRFLOW_CHILD").is_none() {
        return;
    }
    let arg = |name: &str| {
        let v = std::env::var(name).unwrap();
        v.split_once('=').map(|(_, a)| a.to_string()).unwrap()
    };
    let mut logs = tokio::net::TcpStream::connect(arg("GUST_ARG_LOGS"))
        .await
        .unwrap();
    let mut comm = Comm::connect(&arg("GUST_ARG_COMM")).await.unwrap();
    let line = json!({"event": "gust child up", "level": "info", "logger": "gust.test",
                      "timestamp": Utc::now().to_rfc3339()});
    logs.write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let s = comm.read_startup().await.unwrap();
    let pg = comm.get_connection("my_pg").await.unwrap();
    let err = comm.get_variable("nope").await.unwrap_err();
    assert_eq!(
        (err.kind(), airflow_error(&err)),
        (ErrorKind::NotFound, Some("VARIABLE_NOT_FOUND"))
    );
    let err = comm.get_connection("nope").await.unwrap_err();
    assert_eq!(
        (err.kind(), airflow_error(&err)),
        (ErrorKind::NotFound, Some("CONNECTION_NOT_FOUND"))
    );
    let threshold = comm.get_variable("threshold").await.unwrap();
    let upstream = comm
        .get_xcom(GetXCom {
            key: "return_value".into(),
            dag_id: s.ti.dag_id.clone(),
            run_id: s.ti.run_id.clone(),
            task_id: "extract".into(),
            map_index: None,
            include_prior_dates: false,
        })
        .await
        .unwrap();
    let value = json!({
        "rows": upstream["rows"],
        "threshold": threshold,
        "host": pg.host,
        "ds": s.ti_context.dag_run.logical_date.map(|d| d.format("%Y-%m-%d").to_string()),
        "limit": s.ti_context.dag_run.conf.as_ref().map(|c| c["limit"].clone()),
    });
    comm.set_xcom(SetXCom {
        key: "return_value".into(),
        value,
        dag_id: s.ti.dag_id.clone(),
        run_id: s.ti.run_id.clone(),
        task_id: s.ti.task_id.clone(),
        map_index: s.ti.map_index,
        dag_result: false,
        mapped_length: None,
    })
    .await
    .unwrap();
    comm.send_terminal(SucceedTask::new(Utc::now()))
        .await
        .unwrap();
}

/// Airflow 3.3.2's real `ExecutableCoordinator` and supervisor (their API
/// client on an `httpx.MockTransport`) run a runtime built on gust's `Comm`
/// from a bundle gust packed: startup, connections, variables (found and
/// missing), XCom pull and push, `SucceedTask` → `PATCH …/state` success.
#[cfg(unix)]
#[test]
fn airflows_coordinator_runs_a_gust_runtime() {
    let Some(python) = airflow_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A shell wrapper as the bundle's executable: it moves the --comm/--logs
    // arguments the coordinator appends into the environment (the test harness
    // would refuse them as flags) and execs this test binary, so the process
    // that connects is the one Airflow forked. The shell never reads past
    // `exec`, so the packed manifest and trailer after it are never run.
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "#!/bin/sh\nGUST_ARG_COMM=\"$1\" GUST_ARG_LOGS=\"$2\" GUST_AIRFLOW_CHILD=1 exec '{}' --exact runtime_child_for_the_coordinator --nocapture --test-threads=1\n",
        exe.display()
    );
    let wrapper = dir.path().join("wrapper.sh");
    std::fs::write(&wrapper, script).unwrap();
    let root = dir.path().join("bundles");
    std::fs::create_dir(&root).unwrap();
    bundle::pack(
        &wrapper,
        None,
        &Manifest::new("0.1.0").dag("etl", ["extract", "transform"]),
        &root.join("etl"),
    )
    .unwrap();

    let seen = run_python(
        &python,
        "run_coordinator.py",
        &[&root],
        &["etl", "transform"],
    );
    let calls = seen["calls"].as_array().unwrap();
    let call = |method: &str, suffix: &str| {
        calls
            .iter()
            .find(|c| c["method"] == method && c["path"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("no {method} …{suffix} in {seen}"))
    };
    assert_eq!(seen["exit_code"], 0, "{seen}");
    assert_eq!(seen["final_state"], "success", "{seen}");
    let pushed = call("POST", "/transform/return_value");
    assert_eq!(
        pushed["body"],
        json!({"rows": 3, "threshold": "0.75", "host": "db.internal", "ds": "2026-01-02", "limit": 10}),
        "{seen}"
    );
    let state = call("PATCH", "/state");
    assert_eq!(state["body"]["state"], "success");
    assert_eq!(state["body"]["task_outlets"], json!([]));
    call("GET", "variables/nope");
    call("GET", "connections/nope");
}
