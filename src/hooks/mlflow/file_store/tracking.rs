//! Experiments, runs, params, metrics and tags in MLflow's file layout.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::filter::RunFilter;
use super::{
    Inner, META, Meta, RESERVED_EXPERIMENT_FOLDERS, err, get_int, get_str, io_err, new_uuid_hex,
    validate_experiment_id, validate_key, validate_run_id, yint, yopt_int, ystr,
};
use crate::error::{ErrorKind, Result};
use crate::hooks::mlflow::store::Page;
use crate::hooks::mlflow::types::{Metric, Param, Run, RunData, RunInfo, RunStatus, RunTag};

/// MLflow's limits (`mlflow.utils.validation`).
const MAX_PARAM_VALUE: usize = 6000;
const MAX_TAG_VALUE: usize = 8000;
const MAX_SEARCH_RESULTS: u32 = 50_000;
const RUN_NAME_TAG: &str = "mlflow.runName";

/// MLflow's `RunStatus` protobuf numbers, as meta.yaml stores them.
fn status_to_int(s: RunStatus) -> i64 {
    match s {
        RunStatus::Running => 1,
        RunStatus::Scheduled => 2,
        RunStatus::Finished => 3,
        RunStatus::Failed => 4,
        RunStatus::Killed => 5,
    }
}

fn status_from_meta(meta: &Meta) -> RunStatus {
    match get_int(meta, "status") {
        Some(2) => RunStatus::Scheduled,
        Some(3) => RunStatus::Finished,
        Some(4) => RunStatus::Failed,
        Some(5) => RunStatus::Killed,
        Some(_) | None => match get_str(meta, "status").as_deref() {
            Some("SCHEDULED") => RunStatus::Scheduled,
            Some("FINISHED") => RunStatus::Finished,
            Some("FAILED") => RunStatus::Failed,
            Some("KILLED") => RunStatus::Killed,
            _ => RunStatus::Running,
        },
    }
}

/// A metric value as Python's `str(float)` reads it back: `nan`, `inf`, `-inf`,
/// or the shortest round-tripping decimal.
fn fmt_metric_value(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:?}")
    }
}

/// One `timestamp value [step]` line of a metric file.
fn parse_metric_line(key: &str, line: &str) -> Option<Metric> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    if !matches!(parts.len(), 2 | 3 | 5) {
        return None;
    }
    Some(Metric {
        key: key.to_string(),
        timestamp: parts[0].parse().ok()?,
        value: parts[1].parse().ok()?,
        step: if parts.len() >= 3 {
            parts[2].parse().ok()?
        } else {
            0
        },
    })
}

/// A name MLflow would pick for an unnamed run is random too; gust's is `run-` and
/// eight hex digits.
fn random_run_name() -> String {
    format!("run-{}", &new_uuid_hex()[..8])
}

/// Page `items` from the offset in `token` (gust's tokens are the offset).
pub(super) fn paginate<T>(
    op: &str,
    mut items: Vec<T>,
    max_results: u32,
    token: Option<&str>,
) -> Result<Page<T>> {
    if max_results == 0 || max_results > MAX_SEARCH_RESULTS {
        return Err(err(
            ErrorKind::InvalidInput,
            op,
            format!("max_results must be between 1 and {MAX_SEARCH_RESULTS}, not {max_results}"),
        ));
    }
    let offset = match token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            err(
                ErrorKind::InvalidInput,
                op,
                format!("page token {t:?} was not issued by this store"),
            )
        })?,
    };
    let end = offset.saturating_add(max_results as usize);
    let next = (end < items.len()).then(|| end.to_string());
    let page = if offset >= items.len() {
        Vec::new()
    } else {
        items.truncate(end);
        items.split_off(offset)
    };
    Ok((page, next))
}

impl Inner {
    // --- runs --------------------------------------------------------------------

    /// The experiment id and directory of run `run_id`.
    pub(super) fn find_run(&self, op: &str, run_id: &str) -> Result<(String, PathBuf)> {
        validate_run_id(op, run_id)?;
        let valid = |dir: &Path| {
            dir.join(META).is_file()
                && ["metrics", "params", "artifacts"]
                    .iter()
                    .all(|s| dir.join(s).is_dir())
        };
        let cached = self
            .run_dirs
            .lock()
            .ok()
            .and_then(|m| m.get(run_id).cloned());
        if let Some(dir) = cached
            && valid(&dir)
            && let Some(exp) = dir.parent().and_then(|p| p.file_name())
        {
            return Ok((exp.to_string_lossy().to_string(), dir));
        }
        for (exp_id, exp_dir) in self.experiment_dirs(op)? {
            let dir = exp_dir.join(run_id);
            if valid(&dir) {
                if let Ok(mut m) = self.run_dirs.lock() {
                    if m.len() >= 4096 {
                        m.clear();
                    }
                    m.insert(run_id.to_string(), dir.clone());
                }
                return Ok((exp_id, dir));
            }
        }
        Err(err(ErrorKind::NotFound, op, format!("run {run_id} not found")).with("run_id", run_id))
    }

    fn read_run_meta(&self, op: &str, run_id: &str, dir: &Path) -> Result<Meta> {
        self.read_yaml(op, &dir.join(META))?.ok_or_else(|| {
            err(ErrorKind::NotFound, op, format!("run {run_id} not found")).with("run_id", run_id)
        })
    }

    fn run_info(meta: &Meta, run_id: &str, exp_id: &str, tags: &[RunTag]) -> RunInfo {
        RunInfo {
            run_id: run_id.to_string(),
            experiment_id: get_str(meta, "experiment_id").unwrap_or_else(|| exp_id.into()),
            run_name: get_str(meta, "run_name")
                .filter(|n| !n.is_empty())
                .or_else(|| {
                    tags.iter()
                        .find(|t| t.key == RUN_NAME_TAG)
                        .map(|t| t.value.clone())
                })
                .unwrap_or_default(),
            status: status_from_meta(meta),
            start_time: get_int(meta, "start_time").unwrap_or(0),
            end_time: get_int(meta, "end_time"),
            artifact_uri: get_str(meta, "artifact_uri").unwrap_or_default(),
        }
    }

    fn check_active(op: &str, run_id: &str, meta: &Meta) -> Result<()> {
        match get_str(meta, "lifecycle_stage").as_deref() {
            None | Some("active") => Ok(()),
            Some(stage) => Err(err(
                ErrorKind::InvalidInput,
                op,
                format!("the run is {stage}; it must be active"),
            )
            .with("run_id", run_id)),
        }
    }

    pub(super) fn create_run(
        &self,
        exp_id: &str,
        run_name: Option<&str>,
        start_time: i64,
        tags: &[RunTag],
    ) -> Result<RunInfo> {
        let op = "create_run";
        // As log_batch checks them, before anything is written.
        for t in tags {
            validate_key(op, "tag", &t.key).map_err(|e| e.with("experiment_id", exp_id))?;
            if t.value.chars().count() > MAX_TAG_VALUE {
                return Err(err(
                    ErrorKind::InvalidInput,
                    op,
                    format!("tag values have at most {MAX_TAG_VALUE} characters"),
                )
                .with("experiment_id", exp_id)
                .with("tag", &t.key));
            }
        }
        let exp = self.get_experiment(exp_id)?;
        if exp.lifecycle_stage != "active" {
            return Err(err(
                ErrorKind::InvalidInput,
                op,
                "cannot create a run in a deleted experiment",
            )
            .with("experiment_id", exp_id));
        }
        // As MLflow: a `mlflow.runName` tag names the run when no name is given.
        let run_name = run_name
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .or_else(|| {
                tags.iter()
                    .find(|t| t.key == RUN_NAME_TAG && !t.value.is_empty())
                    .map(|t| t.value.clone())
            })
            .unwrap_or_else(random_run_name);
        let run_id = new_uuid_hex();
        let exp_dir = self.root.join(exp_id);
        let dir = exp_dir.join(&run_id);
        let ctx = |e: crate::Error| e.with("experiment_id", exp_id).with("run_id", &run_id);
        std::fs::create_dir(&dir)
            .map_err(|e| ctx(io_err(op, "create the run directory", &dir, e)))?;
        for sub in ["metrics", "params", "artifacts", "tags"] {
            let p = dir.join(sub);
            std::fs::create_dir(&p).map_err(|e| ctx(io_err(op, "create", &p, e)))?;
        }
        // The tags before meta.yaml: the run appears with them or not at all.
        for t in tags.iter().filter(|t| t.key != RUN_NAME_TAG) {
            self.write_atomic(op, &dir, &dir.join("tags").join(&t.key), t.value.as_bytes())
                .map_err(|e| ctx(e.with("tag", &t.key)))?;
        }
        self.write_atomic(
            op,
            &dir,
            &dir.join("tags").join(RUN_NAME_TAG),
            run_name.as_bytes(),
        )
        .map_err(ctx)?;
        let artifact_uri = format!(
            "{}/{run_id}/artifacts",
            exp.artifact_location.trim_end_matches('/')
        );
        let mut meta = Meta::new();
        meta.insert("artifact_uri".into(), ystr(&artifact_uri));
        meta.insert("deleted_time".into(), serde_yaml_ng::Value::Null);
        meta.insert("end_time".into(), serde_yaml_ng::Value::Null);
        meta.insert("entry_point_name".into(), ystr(""));
        meta.insert("experiment_id".into(), ystr(exp_id));
        meta.insert("lifecycle_stage".into(), ystr("active"));
        meta.insert("run_id".into(), ystr(&run_id));
        meta.insert("run_name".into(), ystr(&run_name));
        meta.insert("source_name".into(), ystr(""));
        // SourceType.LOCAL
        meta.insert("source_type".into(), yint(4));
        meta.insert("source_version".into(), ystr(""));
        meta.insert("start_time".into(), yint(start_time));
        meta.insert("status".into(), yint(status_to_int(RunStatus::Running)));
        meta.insert("tags".into(), serde_yaml_ng::Value::Sequence(vec![]));
        meta.insert("user_id".into(), ystr("unknown"));
        // meta.yaml last: until it exists MLflow and gust do not see the run.
        self.write_yaml(op, &dir, &dir.join(META), &meta)
            .map_err(ctx)?;
        let name_tag = [RunTag {
            key: RUN_NAME_TAG.into(),
            value: run_name,
        }];
        Ok(Self::run_info(&meta, &run_id, exp_id, &name_tag))
    }

    fn read_values(&self, op: &str, dir: &Path) -> Result<Vec<(String, String)>> {
        self.files_under(op, dir)?
            .into_iter()
            .filter(|(k, _)| !k.rsplit('/').next().unwrap_or("").starts_with(".gust-"))
            .map(|(k, p)| {
                std::fs::read_to_string(&p)
                    .map(|v| (k, v))
                    .map_err(|e| io_err(op, "read", &p, e))
            })
            .collect()
    }

    fn read_metric_file(&self, op: &str, key: &str, path: &Path) -> Result<Vec<Metric>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err(op, "read", path, e)),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                parse_metric_line(key, l).ok_or_else(|| {
                    err(ErrorKind::Io, op, format!("malformed metric line {l:?}"))
                        .with("metric", key)
                        .with("path", path.display())
                })
            })
            .collect()
    }

    fn run_data(&self, op: &str, dir: &Path) -> Result<RunData> {
        let mut data = RunData {
            params: self
                .read_values(op, &dir.join("params"))?
                .into_iter()
                .map(|(key, value)| Param { key, value })
                .collect(),
            tags: self
                .read_values(op, &dir.join("tags"))?
                .into_iter()
                .map(|(key, value)| RunTag { key, value })
                .collect(),
            metrics: vec![],
        };
        for (key, path) in self.files_under(op, &dir.join("metrics"))? {
            // The latest point: largest (step, timestamp, value), as MLflow picks it.
            let latest = self
                .read_metric_file(op, &key, &path)?
                .into_iter()
                .max_by(|a, b| {
                    (a.step, a.timestamp)
                        .cmp(&(b.step, b.timestamp))
                        .then(a.value.total_cmp(&b.value))
                });
            data.metrics.extend(latest);
        }
        Ok(data)
    }

    fn read_run(&self, op: &str, run_id: &str, exp_id: &str, dir: &Path) -> Result<(Run, Meta)> {
        let meta = self.read_run_meta(op, run_id, dir)?;
        let data = self.run_data(op, dir)?;
        let run = Run {
            info: Self::run_info(&meta, run_id, exp_id, &data.tags),
            data,
        };
        Ok((run, meta))
    }

    pub(super) fn get_run(&self, run_id: &str) -> Result<Run> {
        let op = "get_run";
        let (exp_id, dir) = self.find_run(op, run_id)?;
        self.read_run(op, run_id, &exp_id, &dir)
            .map(|(run, _)| run)
            .map_err(|e| e.with("run_id", run_id))
    }

    pub(super) fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time: Option<i64>,
    ) -> Result<RunInfo> {
        let op = "update_run";
        let (exp_id, dir) = self.find_run(op, run_id)?;
        let ctx = |e: crate::Error| e.with("run_id", run_id);
        let mut meta = self.read_run_meta(op, run_id, &dir).map_err(ctx)?;
        Self::check_active(op, run_id, &meta)?;
        meta.insert("status".into(), yint(status_to_int(status)));
        // MLflow's rewrite of a live run's meta.yaml carries no deleted_time.
        if meta.get("deleted_time") == Some(&serde_yaml_ng::Value::Null) {
            meta.remove("deleted_time");
        }
        if end_time.is_some() {
            meta.insert("end_time".into(), yopt_int(end_time));
        }
        self.write_yaml(op, &dir, &dir.join(META), &meta)
            .map_err(ctx)?;
        let tags = self
            .read_values(op, &dir.join("tags"))
            .map_err(ctx)?
            .into_iter()
            .map(|(key, value)| RunTag { key, value })
            .collect::<Vec<_>>();
        Ok(Self::run_info(&meta, run_id, &exp_id, &tags))
    }

    pub(super) fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[RunTag],
    ) -> Result<()> {
        let op = "log_batch";
        // Everything is checked before anything is written.
        validate_run_id(op, run_id)?;
        let ctx = |e: crate::Error| e.with("run_id", run_id);
        for p in params {
            validate_key(op, "param", &p.key).map_err(ctx)?;
            if p.value.chars().count() > MAX_PARAM_VALUE {
                return Err(ctx(err(
                    ErrorKind::InvalidInput,
                    op,
                    format!("param values have at most {MAX_PARAM_VALUE} characters"),
                )
                .with("param", &p.key)));
            }
        }
        for t in tags {
            validate_key(op, "tag", &t.key).map_err(ctx)?;
            if t.value.chars().count() > MAX_TAG_VALUE {
                return Err(ctx(err(
                    ErrorKind::InvalidInput,
                    op,
                    format!("tag values have at most {MAX_TAG_VALUE} characters"),
                )
                .with("tag", &t.key)));
            }
        }
        for m in metrics {
            validate_key(op, "metric", &m.key).map_err(ctx)?;
            if m.timestamp < 0 {
                return Err(ctx(err(
                    ErrorKind::InvalidInput,
                    op,
                    "metric timestamps must not be negative",
                )
                .with("metric", &m.key)));
            }
        }
        let (_, dir) = self.find_run(op, run_id)?;
        let mut meta = self.read_run_meta(op, run_id, &dir).map_err(ctx)?;
        Self::check_active(op, run_id, &meta)?;

        for p in params {
            let path = dir.join("params").join(&p.key);
            if self
                .create_exclusive(op, &dir, &path, p.value.as_bytes())
                .map_err(ctx)?
            {
                continue;
            }
            let current =
                std::fs::read_to_string(&path).map_err(|e| ctx(io_err(op, "read", &path, e)))?;
            if current != p.value {
                return Err(ctx(err(
                    ErrorKind::InvalidInput,
                    op,
                    format!(
                        "changing param values is not allowed: param {:?} was already logged \
                         with value {current:?}, not {:?}",
                        p.key, p.value
                    ),
                )
                .with("param", &p.key)));
            }
        }

        // One append per metric key: each line lands whole even with concurrent writers.
        let mut by_key: Vec<(&str, String)> = Vec::new();
        for m in metrics {
            let line = format!("{} {} {}\n", m.timestamp, fmt_metric_value(m.value), m.step);
            match by_key.iter_mut().find(|(k, _)| *k == m.key) {
                Some((_, lines)) => lines.push_str(&line),
                None => by_key.push((&m.key, line)),
            }
        }
        for (key, lines) in by_key {
            let path = dir.join("metrics").join(key);
            let append = || -> std::io::Result<()> {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?
                    .write_all(lines.as_bytes())
            };
            append().map_err(|e| ctx(io_err(op, "append to", &path, e).with("metric", key)))?;
        }

        for t in tags {
            let path = dir.join("tags").join(&t.key);
            self.write_atomic(op, &dir, &path, t.value.as_bytes())
                .map_err(|e| ctx(e.with("tag", &t.key)))?;
            // MLflow keeps the run's name in meta.yaml in step with the tag.
            if t.key == RUN_NAME_TAG {
                meta.insert("run_name".into(), ystr(&t.value));
                self.write_yaml(op, &dir, &dir.join(META), &meta)
                    .map_err(ctx)?;
            }
        }
        Ok(())
    }

    pub(super) fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        let op = "get_metric_history";
        validate_key(op, "metric", key).map_err(|e| e.with("run_id", run_id))?;
        let (_, dir) = self.find_run(op, run_id)?;
        self.read_metric_file(op, key, &dir.join("metrics").join(key))
            .map_err(|e| e.with("run_id", run_id))
    }

    pub(super) fn search_runs(
        &self,
        experiment_ids: &[String],
        filter: &str,
        max_results: u32,
        token: Option<&str>,
    ) -> Result<Page<Run>> {
        let op = "search_runs";
        let ctx = |e: crate::Error| e.with("experiment_ids", experiment_ids.join(","));
        let filter = RunFilter::parse(op, filter).map_err(ctx)?;
        let mut runs = Vec::new();
        for exp_id in experiment_ids {
            validate_experiment_id(op, exp_id).map_err(ctx)?;
            let Some(exp_dir) = self.experiment_dir(exp_id) else {
                continue;
            };
            for name in self.subdirs(op, &exp_dir).map_err(ctx)? {
                if RESERVED_EXPERIMENT_FOLDERS.contains(&name.as_str())
                    || validate_run_id(op, &name).is_err()
                    || !exp_dir.join(&name).join(META).is_file()
                {
                    continue;
                }
                let (run, meta) = self
                    .read_run(op, &name, exp_id, &exp_dir.join(&name))
                    .map_err(|e| ctx(e.with("run_id", &name)))?;
                let active = matches!(
                    get_str(&meta, "lifecycle_stage").as_deref(),
                    None | Some("active")
                );
                if active && run.info.experiment_id == *exp_id && filter.matches(&run) {
                    runs.push(run);
                }
            }
        }
        runs.sort_by(|a, b| {
            b.info
                .start_time
                .cmp(&a.info.start_time)
                .then_with(|| a.info.run_id.cmp(&b.info.run_id))
        });
        paginate(op, runs, max_results, token).map_err(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_read_back_in_both_languages() {
        for v in [0.5, 1e-7, 1e20, 100.0, -3.25, f64::MAX] {
            let s = fmt_metric_value(v);
            assert_eq!(s.parse::<f64>().unwrap(), v, "{s}");
        }
        assert_eq!(fmt_metric_value(f64::NAN), "nan");
        assert_eq!(fmt_metric_value(f64::NEG_INFINITY), "-inf");
        // Python writes these.
        let m = parse_metric_line("k", "1700000000000 inf 3").unwrap();
        assert_eq!((m.value, m.step), (f64::INFINITY, 3));
        assert!(parse_metric_line("k", "1 nan 0").unwrap().value.is_nan());
        assert_eq!(parse_metric_line("k", "1 1e-05").unwrap().step, 0);
        assert!(parse_metric_line("k", "1").is_none());
        assert!(parse_metric_line("k", "x 1 2").is_none());
    }

    #[test]
    fn pages() {
        let (p, next) = paginate("t", (0..5).collect(), 2, None).unwrap();
        assert_eq!((p, next.as_deref()), (vec![0, 1], Some("2")));
        let (p, next) = paginate("t", (0..5).collect(), 2, Some("4")).unwrap();
        assert_eq!((p, next), (vec![4], None));
        assert!(paginate("t", vec![1], 0, None).is_err());
        assert!(paginate("t", vec![1], 1, Some("zz")).is_err());
    }
}
