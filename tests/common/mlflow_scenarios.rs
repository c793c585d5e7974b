//! One MLflow scenario suite for every `MlflowStore` behind an `MlflowHook`, run by
//! tests/mlflow.rs (the REST server) and tests/mlflow_file.rs (the `file:` store).
//!
//! Each scenario makes only the assertions both stores must satisfy; where the
//! stores knowingly differ, the difference is a field of [`Store`]. What only one
//! store has (its on-disk layout, the server's artifact proxy, ...) is checked by
//! that store's test file on what the scenario returns.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gust::ErrorKind;
use gust::hooks::mlflow::{BatchLimits, Metric, MlflowHook, Param, RunStatus, RunTag};

use crate::common::unique;

/// Where one store knowingly departs from the other.
#[derive(Clone, Copy, Debug)]
pub struct Store {
    /// What a metric logged as `+∞` reads back as: the file store keeps infinity,
    /// a SQL-backed server clamps it to the largest double (documented on
    /// `log_metric`).
    pub infinity_reads_as: f64,
    /// How long a new model version may take to become READY: at once on the
    /// file store, asynchronously on a server.
    pub version_ready_within: Duration,
    /// The error for a run filter outside MLflow's grammar (an `or`): the file
    /// store's own parser says `Unsupported`, the server `INVALID_PARAMETER_VALUE`.
    pub bad_filter: ErrorKind,
}

impl Store {
    /// The local `file:` store.
    pub const FILE: Store = Store {
        infinity_reads_as: f64::INFINITY,
        version_ready_within: Duration::from_secs(1),
        bad_filter: ErrorKind::Unsupported,
    };
    /// The MLflow tracking server with a SQL backend store.
    pub const SQL_SERVER: Store = Store {
        infinity_reads_as: f64::MAX,
        version_ready_within: Duration::from_secs(30),
        bad_filter: ErrorKind::InvalidInput,
    };
}

/// Concurrent `get_or_create_experiment` calls, one on each of `racers` (clones
/// of `h`, or other hooks on the same store as other processes would be), agree
/// on one experiment; after that, get-or-create is idempotent, a second create is
/// `AlreadyExists` (without leaking server SQL), names may hold slashes, and
/// missing or malformed experiments are typed errors. Returns the raced name and
/// the experiment's id.
pub async fn experiments_get_or_create_is_idempotent_and_race_safe(
    h: &MlflowHook,
    racers: &[MlflowHook],
) -> (String, String) {
    h.test_connection().await.unwrap();
    let name = unique("gust-exp");
    let calls: Vec<_> = racers
        .iter()
        .map(|r| {
            let (r, name) = (r.clone(), name.clone());
            tokio::spawn(async move { r.get_or_create_experiment(&name).await })
        })
        .collect();
    let mut ids = Vec::new();
    for c in calls {
        ids.push(c.await.unwrap().unwrap());
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    let id = ids[0].clone();

    let exp = h.get_experiment(&id).await.unwrap();
    assert_eq!(exp.name, name);
    assert_eq!(exp.lifecycle_stage, "active");
    assert_eq!(
        h.get_experiment_by_name(&name).await.unwrap().experiment_id,
        id
    );
    assert_eq!(h.get_or_create_experiment(&name).await.unwrap(), id);
    let e = h.create_experiment(&name).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(e.context("experiment"), Some(name.as_str()));
    assert!(
        !e.to_string().contains("INSERT"),
        "server SQL leaked into: {e}"
    );

    // Experiment names are not paths: slashes are fine, as in MLflow.
    let nested_name = format!("/Users/me/{name}");
    let nested = h.get_or_create_experiment(&nested_name).await.unwrap();
    assert_eq!(h.get_experiment(&nested).await.unwrap().name, nested_name);

    let e = h.get_experiment_by_name(&unique("nope")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("experiment="), "{e}");
    for bad in ["../0", "0/..", ".trash", ""] {
        let e = h.get_experiment(bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
    }
    assert_eq!(
        h.create_experiment("").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    (name, id)
}

/// A run's params (immutable once set), metrics (latest value and full history,
/// NaN and ∞ included), tags (last write wins) and end state read back as
/// logged; keys that could escape the run are refused, and missing runs and
/// experiments are `NotFound`. Returns the experiment id and the finished run's id.
pub async fn runs_params_metrics_tags_and_history(
    h: &MlflowHook,
    store: Store,
) -> (String, String) {
    let exp = h
        .get_or_create_experiment(&unique("gust-runs"))
        .await
        .unwrap();
    let run = h.create_run(&exp, Some("iris-rf")).await.unwrap();
    assert_eq!(run.info().status, RunStatus::Running);
    run.log_param("n_estimators", "100").await.unwrap();
    run.log_param("n_estimators", "100").await.unwrap(); // same value: fine
    let e = run.log_param("n_estimators", "200").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.context("param"), Some("n_estimators"));
    assert_eq!(e.context("run_id"), Some(run.run_id()));
    run.log_param("model/depth", "3").await.unwrap(); // nested key, as in MLflow
    for step in 0..5 {
        run.log_metric("loss", 1.0 / (step as f64 + 1.0), step)
            .await
            .unwrap();
    }
    run.log_metric("weird", f64::NAN, 0).await.unwrap();
    run.log_metric("weird", f64::INFINITY, 1).await.unwrap();
    run.set_tag("team", "06").await.unwrap();
    run.set_tag("team", "07").await.unwrap();
    run.end(RunStatus::Finished).await.unwrap();

    let got = h.get_run(run.run_id()).await.unwrap();
    assert_eq!(got.info.status, RunStatus::Finished);
    assert!(got.info.end_time.is_some());
    assert_eq!(got.info.run_name, "iris-rf");
    assert_eq!(got.info.experiment_id, exp);
    assert_eq!(got.data.param("n_estimators"), Some("100"));
    assert_eq!(got.data.param("model/depth"), Some("3"));
    assert_eq!(got.data.metric("loss"), Some(0.2));
    assert_eq!(got.data.tag("team"), Some("07"));
    assert_eq!(got.data.tag("mlflow.runName"), Some("iris-rf"));
    assert_eq!(got.data.metric("weird"), Some(store.infinity_reads_as));

    let history = h.get_metric_history(run.run_id(), "loss").await.unwrap();
    let mut steps: Vec<i64> = history.iter().map(|m| m.step).collect();
    steps.sort();
    assert_eq!(steps, vec![0, 1, 2, 3, 4]);
    let weird = h.get_metric_history(run.run_id(), "weird").await.unwrap();
    let mut weird: Vec<(i64, f64)> = weird.iter().map(|m| (m.step, m.value)).collect();
    weird.sort_by_key(|w| w.0);
    assert!(weird[0].1.is_nan(), "{weird:?}");
    assert_eq!(weird[1].1, store.infinity_reads_as, "{weird:?}");
    assert!(
        h.get_metric_history(run.run_id(), "never")
            .await
            .unwrap()
            .is_empty()
    );

    let e = h.get_run(&"0".repeat(32)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context("run_id"), Some("0".repeat(32).as_str()));
    for bad in ["../x", "a//b", "/abs", "", "x/..", "a*b"] {
        let e = h.log_metric(run.run_id(), bad, 1.0, 0).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        let e = h.log_param(run.run_id(), bad, "1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
    }
    // An unnamed run gets a name.
    let unnamed = h.create_run(&exp, None).await.unwrap();
    assert!(!unnamed.info().run_name.is_empty());
    let e = h.create_run("424242", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    (exp, run.run_id().to_string())
}

/// A batch far beyond the store's limits (set low here) is split into chunks,
/// not rejected: every metric point arrives, in order, with every param and tag;
/// a conflict inside a later batch fails naming its chunk.
pub async fn log_batch_beyond_the_limits_is_split_not_rejected(h: &MlflowHook) {
    let h = h.clone().with_batch_limits(BatchLimits {
        max_metrics: 300,
        ..BatchLimits::default()
    });
    let exp = h
        .get_or_create_experiment(&unique("gust-batch"))
        .await
        .unwrap();
    let run = h.create_run(&exp, None).await.unwrap();
    let metrics: Vec<Metric> = (0..2_500)
        .map(|i| Metric {
            key: "acc".into(),
            value: i as f64 / 2_500.0,
            timestamp: 1_700_000_000_000 + i,
            step: i,
        })
        .collect();
    let params: Vec<Param> = (0..250)
        .map(|i| Param {
            key: format!("p{i}"),
            value: i.to_string(),
        })
        .collect();
    let tags: Vec<RunTag> = (0..150)
        .map(|i| RunTag {
            key: format!("t{i}"),
            value: "x".into(),
        })
        .collect();
    run.log_batch(&metrics, &params, &tags).await.unwrap();
    run.end(RunStatus::Finished).await.unwrap();
    let got = h.get_run(run.run_id()).await.unwrap();
    assert_eq!(got.data.params.len(), 250);
    assert_eq!(
        got.data
            .tags
            .iter()
            .filter(|t| t.key.starts_with('t'))
            .count(),
        150
    );
    let history = h.get_metric_history(run.run_id(), "acc").await.unwrap();
    assert_eq!(history.len(), 2_500);
    assert_eq!(history, metrics, "every point, in order");
    assert_eq!(got.data.metric("acc"), Some(2_499.0 / 2_500.0));

    // A conflicting param inside a later chunk fails naming the chunk.
    let e = run
        .log_batch(
            &[],
            &[Param {
                key: "p7".into(),
                value: "other".into(),
            }],
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.context("batch"), Some("1/1"));
}

/// `with_run` returns the closure's value and ends the run FINISHED, or ends it
/// FAILED (naming it in the error) when the closure fails or panics; searches
/// page through every run, newest first, and filter on status, metrics, params
/// and tags. Filters the stores cannot run, and bad page tokens, are typed errors.
pub async fn with_run_ends_failed_on_error_and_search_paginates(h: &MlflowHook, store: Store) {
    let exp = h
        .get_or_create_experiment(&unique("gust-guard"))
        .await
        .unwrap();
    let ok: u32 = h
        .with_run(&exp, Some("good"), |run| async move {
            run.log_metric("accuracy", 0.9, 0).await?;
            run.log_param("model", "rf").await?;
            Ok(7)
        })
        .await
        .unwrap();
    assert_eq!(ok, 7);
    let err = h
        .with_run(&exp, Some("bad"), |run| async move {
            run.log_param("x", "1").await?;
            Err::<(), _>(gust::Error::fail_now("training diverged"))
        })
        .await
        .unwrap_err();
    let failed_run = err
        .context("run_id")
        .expect("the error names the run")
        .to_string();
    let failed = h.get_run(&failed_run).await.unwrap();
    assert_eq!(failed.info.status, RunStatus::Failed);
    assert!(failed.info.end_time.is_some());

    let panicked = tokio::spawn({
        let h = h.clone();
        let exp = exp.clone();
        async move {
            h.with_run(&exp, Some("panics"), |_run| async move {
                if true {
                    panic!("boom");
                }
                Ok(())
            })
            .await
        }
    })
    .await;
    assert!(panicked.is_err());

    for i in 0..3 {
        h.with_run(&exp, Some(&format!("extra{i}")), |_run| async { Ok(()) })
            .await
            .unwrap();
    }
    let (page, token) = h.search_runs(&[exp.as_str()], "", 2, None).await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(token.is_some());
    let all = h.search_all_runs(&[exp.as_str()], "", 2).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(
        all.windows(2)
            .all(|w| w[0].info.start_time >= w[1].info.start_time),
        "newest first"
    );
    let finished = h
        .search_all_runs(&[exp.as_str()], "attributes.status = 'FINISHED'", 100)
        .await
        .unwrap();
    assert_eq!(finished.len(), 4);
    let failed = h
        .search_all_runs(&[exp.as_str()], "attributes.status = 'FAILED'", 100)
        .await
        .unwrap();
    assert_eq!(failed.len(), 2, "the error and the panic");
    let good = h
        .search_all_runs(
            &[exp.as_str()],
            "metrics.accuracy > 0.5 and params.model = 'rf' and tags.mlflow.runName = 'good'",
            100,
        )
        .await
        .unwrap();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].info.run_name, "good");
    let e = h
        .search_runs(
            &[exp.as_str()],
            "metrics.accuracy > 0.5 or params.x = '1'",
            10,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), store.bad_filter, "{e}");
    let e = h
        .search_runs(&[exp.as_str()], "", 10, Some("not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

/// Registering is idempotent through the hook (the raw store says
/// `AlreadyExists`); versions count up from 1, also under concurrent
/// registrations through each of `racers` (never sharing a number); aliases move,
/// resolve and delete (twice is a no-op); searches filter by name and run; bad
/// names, versions and aliases are typed errors. Returns the model's name and the
/// run its versions come from.
pub async fn registry_versions_increase_and_aliases_resolve(
    h: &MlflowHook,
    racers: &[MlflowHook],
    store: Store,
) -> (String, String) {
    let name = unique("GustIris");
    let exp = h
        .get_or_create_experiment(&unique("gust-reg"))
        .await
        .unwrap();
    let m1 = h.create_registered_model(&name).await.unwrap();
    let m2 = h.create_registered_model(&name).await.unwrap(); // idempotent
    assert_eq!(m1.name, m2.name);
    let e = h.store().create_registered_model(&name).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);

    let run = h.create_run(&exp, None).await.unwrap();
    run.end(RunStatus::Finished).await.unwrap();
    let source = format!("runs:/{}/model", run.run_id());
    let mut versions = Vec::new();
    for _ in 0..2 {
        let v = h
            .create_model_version(&name, &source, Some(run.run_id()))
            .await
            .unwrap();
        let v = h
            .wait_model_version_ready(&name, &v.version, store.version_ready_within)
            .await
            .unwrap();
        assert_eq!(v.source, source);
        assert_eq!(v.run_id, run.run_id());
        versions.push(v.version_number().unwrap());
    }
    assert_eq!(
        versions,
        vec![1, 2],
        "registering again creates the next version"
    );

    // The racers register versions of another run (a server wants the run named
    // with a `runs:/` source), so that searching by run tells them apart.
    let other = h.create_run(&exp, None).await.unwrap();
    other.end(RunStatus::Finished).await.unwrap();
    let other_id = other.run_id().to_string();
    let calls: Vec<_> = racers
        .iter()
        .map(|r| {
            let (r, name, run_id) = (r.clone(), name.clone(), other_id.clone());
            tokio::spawn(async move {
                let source = format!("runs:/{run_id}/model");
                r.create_model_version(&name, &source, Some(&run_id)).await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for c in calls {
        numbers.push(c.await.unwrap().unwrap().version_number().unwrap());
    }
    numbers.sort();
    let last = 2 + racers.len() as u64;
    assert_eq!(numbers, (3..=last).collect::<Vec<u64>>());

    h.set_registered_model_alias(&name, "champion", "1")
        .await
        .unwrap();
    h.set_registered_model_alias(&name, "champion", "2")
        .await
        .unwrap();
    h.set_registered_model_alias(&name, "challenger", "3")
        .await
        .unwrap();
    let champ = h
        .get_model_version_by_alias(&name, "champion")
        .await
        .unwrap();
    assert_eq!(champ.version_number(), Some(2));
    assert_eq!(champ.aliases, vec!["champion".to_string()]);
    let model = h.get_registered_model(&name).await.unwrap();
    let mut aliases: Vec<(String, String)> = model
        .aliases
        .iter()
        .map(|a| (a.alias.clone(), a.version.clone()))
        .collect();
    aliases.sort();
    assert_eq!(
        aliases,
        vec![
            ("challenger".to_string(), "3".to_string()),
            ("champion".to_string(), "2".to_string())
        ]
    );

    let found = h
        .search_model_versions(&format!("name='{name}'"))
        .await
        .unwrap();
    assert_eq!(found.len() as u64, last);
    let by_run = h
        .search_model_versions(&format!("run_id = '{}'", run.run_id()))
        .await
        .unwrap();
    assert_eq!(by_run.len(), 2);

    h.delete_registered_model_alias(&name, "champion")
        .await
        .unwrap();
    h.delete_registered_model_alias(&name, "champion")
        .await
        .unwrap(); // already gone: no-op, as in MLflow
    let e = h
        .get_model_version_by_alias(&name, "champion")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context("alias"), Some("champion"));
    let e = h
        .set_registered_model_alias(&name, "v3", "1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = h
        .set_registered_model_alias(&name, "prod", "99")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let missing = unique("NoSuchModel");
    let e = h.get_model_version(&missing, "1").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context("model"), Some(missing.as_str()));
    let e = h
        .get_model_version(&name, &(last + 1).to_string())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = h.get_model_version(&name, "x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = h
        .create_model_version(&missing, &source, Some(run.run_id()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    for bad in ["a/b", "..", "../models", "x:y", " "] {
        let e = h.create_registered_model(bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        let e = h.get_model_version(bad, "1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
    }
    (name, run.run_id().to_string())
}

/// What [`artifacts_round_trip`] leaves for the store's own checks.
pub struct Artifacts {
    pub exp: String,
    pub run_id: String,
    /// The 3 MiB of model/sub/weights.bin.
    pub big: Vec<u8>,
    /// The downloaded `model` directory.
    pub model_dir: PathBuf,
}

/// notes.txt, model/MLmodel and model/sub/weights.bin (3 MiB of non-repeating
/// bytes: more than one network chunk each way) under `src`; returns the weights.
pub fn write_tree(src: &Path) -> Vec<u8> {
    std::fs::create_dir_all(src.join("model/sub")).unwrap();
    std::fs::write(src.join("model/MLmodel"), "flavors: {}\n").unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("model/sub/weights.bin"), &big).unwrap();
    std::fs::write(src.join("notes.txt"), "héllo").unwrap();
    big
}

/// Artifacts logged one file and one tree at a time list (sizes included) and
/// download (a file, a directory, everything) as they went up; a missing
/// artifact is `NotFound` leaving nothing behind, and paths that escape the run
/// are refused. Works in `work` (src/ and dst/ below it).
pub async fn artifacts_round_trip(h: &MlflowHook, work: &Path) -> Artifacts {
    let exp = h
        .get_or_create_experiment(&unique("gust-art"))
        .await
        .unwrap();
    let run = h.create_run(&exp, None).await.unwrap();
    let src = work.join("src");
    let big = write_tree(&src);

    h.log_artifact(run.run_id(), &src.join("notes.txt"), None)
        .await
        .unwrap();
    h.log_artifacts(run.run_id(), &src.join("model"), Some("model"))
        .await
        .unwrap();

    let mut top: Vec<(String, bool)> = h
        .list_artifacts(run.run_id(), "")
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.path, f.is_dir))
        .collect();
    top.sort();
    assert_eq!(
        top,
        vec![
            ("model".to_string(), true),
            ("notes.txt".to_string(), false)
        ]
    );
    let sub = h.list_artifacts(run.run_id(), "model/sub").await.unwrap();
    assert_eq!(sub.len(), 1);
    assert_eq!(sub[0].path, "model/sub/weights.bin");
    assert_eq!(sub[0].file_size, Some(big.len() as u64));
    assert!(
        h.list_artifacts(run.run_id(), "nothing/here")
            .await
            .unwrap()
            .is_empty()
    );

    let dst = work.join("dst");
    let model_dir = h
        .download_artifacts(run.run_id(), "model", &dst)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(model_dir.join("sub/weights.bin")).unwrap(),
        big
    );
    assert_eq!(
        std::fs::read_to_string(model_dir.join("MLmodel")).unwrap(),
        "flavors: {}\n"
    );
    let notes = h
        .download_artifacts(run.run_id(), "notes.txt", &dst)
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(notes).unwrap(), "héllo");
    let everything = h
        .download_artifacts(run.run_id(), "", &dst.join("all"))
        .await
        .unwrap();
    assert!(everything.join("model/sub/weights.bin").is_file());

    let e = h
        .download_artifacts(run.run_id(), "missing.txt", &dst)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.context("artifact"), Some("missing.txt"));
    assert!(!dst.join("missing.txt").exists());
    assert!(!dst.join("missing.gust-partial").exists());
    for bad in ["../escape", "model/../../x"] {
        assert_eq!(
            h.list_artifacts(run.run_id(), bad)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        assert!(h.download_artifacts(run.run_id(), bad, &dst).await.is_err());
        assert!(
            h.log_artifact(run.run_id(), &src.join("notes.txt"), Some(bad))
                .await
                .is_err()
        );
    }
    let e = h
        .log_artifact(run.run_id(), &src.join("absent.txt"), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    run.end(RunStatus::Finished).await.unwrap();
    Artifacts {
        exp,
        run_id: run.run_id().to_string(),
        big,
        model_dir,
    }
}
