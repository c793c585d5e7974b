//! The local XCom store of the command line: XComs shared between processes.
//!
//! Airflow keeps XComs in its metadata database, so a task run by one process reads
//! what another pushed. The command line's equivalent is a directory of JSON files,
//! written by `dags test` and `tasks run` and read by `tasks test` and `tasks run`:
//!
//! ```text
//! <xcom dir>/<dag_id>/<run_id>/run.json            {"logical_date": …, "conf": …}
//! <xcom dir>/<dag_id>/<run_id>/<task_id>/<key>.json  the value
//! ```
//!
//! The directory is `--xcom-dir`, else `$GUST_XCOM_DIR`, else `.gust/xcom` in the
//! current directory. Every name is percent-encoded (letters, digits, `_` and `-`
//! stay), so no id or key can reach outside the directory; every file is written
//! to a temporary name and renamed, so a reader never sees half a value.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};

use crate::{Error, ErrorKind, Result};

const SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-');
const RUN_FILE: &str = "run.json";

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct XComDir {
    root: PathBuf,
}

/// What `run.json` records about a run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredRun {
    pub(crate) logical_date: DateTime<FixedOffset>,
    pub(crate) conf: Option<Value>,
}

impl StoredRun {
    /// What `run.json` records of `config`.
    pub(crate) fn of(config: &crate::RunConfig) -> Self {
        StoredRun {
            logical_date: config.logical_date.fixed_offset(),
            conf: config.params.clone(),
        }
    }
}

fn encode(name: &str) -> String {
    utf8_percent_encode(name, SAFE).to_string()
}

fn io_error(op: &'static str, path: &Path, e: std::io::Error) -> Error {
    let kind = Error::from(std::io::Error::new(e.kind(), "")).kind();
    Error::new(kind, op, format!("{}: {e}", path.display())).with_source(e)
}

impl XComDir {
    /// `--xcom-dir`, else `$GUST_XCOM_DIR`, else `.gust/xcom`.
    pub(crate) fn new(arg: Option<PathBuf>) -> Self {
        let root = arg
            .or_else(|| std::env::var_os("GUST_XCOM_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(".gust/xcom"));
        XComDir { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn run_dir(&self, dag_id: &str, run_id: &str) -> PathBuf {
        self.root.join(encode(dag_id)).join(encode(run_id))
    }

    fn write_atomic(path: &Path, value: &Value) -> Result<()> {
        let op = "xcom_dir.write";
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io_error(op, dir, e))?;
        let text = serde_json::to_vec_pretty(value)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, op, e.to_string()))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
            std::process::id()
        ));
        std::fs::write(&tmp, text).map_err(|e| io_error(op, &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_error(op, path, e)
        })
    }

    /// Records a run's logical date and conf, so `tasks test DAG TASK RUN_ID` can
    /// name the run by its id.
    pub(crate) fn write_run(&self, dag_id: &str, run_id: &str, run: &StoredRun) -> Result<()> {
        let path = self.run_dir(dag_id, run_id).join(RUN_FILE);
        Self::write_atomic(
            &path,
            &json!({"logical_date": run.logical_date.to_rfc3339(), "conf": run.conf}),
        )
    }

    /// The run `run_id` of `dag_id`, if a command recorded it.
    pub(crate) fn read_run(&self, dag_id: &str, run_id: &str) -> Result<Option<StoredRun>> {
        let path = self.run_dir(dag_id, run_id).join(RUN_FILE);
        let Some(v) = read_json(&path)? else {
            return Ok(None);
        };
        let bad = || {
            Error::new(
                ErrorKind::InvalidInput,
                "xcom_dir.read",
                format!("{} has no valid logical_date", path.display()),
            )
        };
        let date = v
            .get("logical_date")
            .and_then(Value::as_str)
            .ok_or_else(bad)?;
        let logical_date = DateTime::parse_from_rfc3339(date).map_err(|_| bad())?;
        let conf = v.get("conf").filter(|c| !c.is_null()).cloned();
        Ok(Some(StoredRun { logical_date, conf }))
    }

    /// Stores XCom `key` of `task_id` in run `run_id`.
    pub(crate) fn write(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        key: &str,
        value: &Value,
    ) -> Result<()> {
        let path = self
            .run_dir(dag_id, run_id)
            .join(encode(task_id))
            .join(format!("{}.json", encode(key)));
        Self::write_atomic(&path, value)
    }

    /// Removes the XComs `task_id` pushed in run `run_id`: a task that runs again
    /// starts with none, as Airflow clears them before a try.
    pub(crate) fn clear_task(&self, dag_id: &str, run_id: &str, task_id: &str) -> Result<()> {
        let dir = self.run_dir(dag_id, run_id).join(encode(task_id));
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io_error("xcom_dir.clear", &dir, e))
            }
            _ => Ok(()),
        }
    }

    /// Every XCom of run `run_id`: `(task_id, key, value)`, sorted.
    pub(crate) fn read_all(
        &self,
        dag_id: &str,
        run_id: &str,
    ) -> Result<Vec<(String, String, Value)>> {
        let op = "xcom_dir.read";
        let run_dir = self.run_dir(dag_id, run_id);
        let mut out = Vec::new();
        let tasks = match std::fs::read_dir(&run_dir) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_error(op, &run_dir, e)),
        };
        for task in tasks {
            let task = task.map_err(|e| io_error(op, &run_dir, e))?;
            if !task.path().is_dir() {
                continue;
            }
            let Some(task_id) = decode(&task.file_name()) else {
                continue;
            };
            let entries =
                std::fs::read_dir(task.path()).map_err(|e| io_error(op, &task.path(), e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_error(op, &task.path(), e))?;
                let name = entry.file_name();
                let Some(key) = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .filter(|n| !n.starts_with('.'))
                    .and_then(|n| decode(std::ffi::OsStr::new(n)))
                else {
                    continue;
                };
                if let Some(value) = read_json(&entry.path())? {
                    out.push((task_id.clone(), key, value));
                }
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Ok(out)
    }
}

fn decode(name: &std::ffi::OsStr) -> Option<String> {
    let name = name.to_str()?;
    percent_decode_str(name)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    let op = "xcom_dir.read";
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(op, path, e)),
    };
    serde_json::from_slice(&text).map(Some).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            op,
            format!("{} is not valid JSON: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xcoms_round_trip_and_names_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let store = XComDir::new(Some(dir.path().to_path_buf()));
        let run = "manual__2025-01-08T00:00:00+09:00";
        store
            .write("d", run, "extract", "return_value", &json!({"rows": 3}))
            .unwrap();
        store
            .write("d", run, "..", "../../x", &json!("evil"))
            .unwrap();
        store.write("d", run, "a.b", "k/ey", &json!([1])).unwrap();
        let all = store.read_all("d", run).unwrap();
        assert_eq!(
            all,
            vec![
                ("..".to_string(), "../../x".to_string(), json!("evil")),
                ("a.b".to_string(), "k/ey".to_string(), json!([1])),
                (
                    "extract".to_string(),
                    "return_value".to_string(),
                    json!({"rows": 3})
                ),
            ]
        );
        // Everything stayed inside the run's directory.
        let mut files = Vec::new();
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).unwrap() {
                let e = e.unwrap().path();
                if e.is_dir() {
                    walk(&e, out)
                } else {
                    out.push(e)
                }
            }
        }
        walk(dir.path(), &mut files);
        assert_eq!(files.len(), 3);
        assert!(
            files.iter().all(|f| f.starts_with(store.run_dir("d", run))),
            "{files:?}"
        );

        store.clear_task("d", run, "extract").unwrap();
        assert_eq!(store.read_all("d", run).unwrap().len(), 2);
        assert!(store.read_all("d", "other").unwrap().is_empty());
    }

    #[test]
    fn a_run_records_its_date_and_conf() {
        let dir = tempfile::tempdir().unwrap();
        let store = XComDir::new(Some(dir.path().to_path_buf()));
        let run = StoredRun {
            logical_date: DateTime::parse_from_rfc3339("2025-01-08T00:00:00+09:00").unwrap(),
            conf: Some(json!({"days": 3})),
        };
        store.write_run("d", "r1", &run).unwrap();
        assert_eq!(store.read_run("d", "r1").unwrap(), Some(run));
        assert_eq!(store.read_run("d", "r2").unwrap(), None);
        std::fs::write(store.run_dir("d", "r3").join("run.json"), "{").unwrap_or_else(|_| {
            std::fs::create_dir_all(store.run_dir("d", "r3")).unwrap();
            std::fs::write(store.run_dir("d", "r3").join("run.json"), "{").unwrap();
        });
        let e = store.read_run("d", "r3").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
