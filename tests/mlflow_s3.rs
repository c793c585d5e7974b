//! Runs whose artifact root is `s3://bucket/prefix`: gust reads and writes their
//! artifacts directly on S3 (moto) through `S3Hook`, not through the tracking
//! server's proxy, and agrees with the Python client on what is there.
//!
//! Needs the MLflow server and moto of `scripts/services.sh`
//! (`AIRFLOW_CONN_MLFLOW_DEFAULT`, `AIRFLOW_CONN_AWS_DEFAULT`) and, for the
//! cross-checks, `GUST_SERVICES_PYTHON`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gust::hooks::mlflow::{FileInfo, FlavorConfig, MlflowFlavor, MlflowHook, RunStatus};
use gust::hooks::object_store::{ObjectStore, PutOptions};
use gust::hooks::s3::{MIN_PART_SIZE, S3Hook};
use gust::{Connection, ErrorKind};

/// Size of the file that goes up in parts (3 parts of [`MIN_PART_SIZE`]).
const BIG: usize = 2 * MIN_PART_SIZE + 1234;

struct Env {
    mlflow: Connection,
    aws: Connection,
    s3: S3Hook,
    bucket: String,
}

/// The servers, an S3 hook on moto with the smallest part size (so a few MiB
/// go up in parts), and a fresh bucket.
async fn env() -> Option<Env> {
    let mlflow = common::server_conn("mlflow_default")?;
    let aws = common::server_conn("aws_default")?;
    let s3 = S3Hook::from_connection(&aws)
        .await
        .expect("s3 hook")
        .with_part_size(MIN_PART_SIZE);
    let bucket = common::unique("gust-mlflow-s3");
    s3.create_bucket(&bucket).await.expect("create bucket");
    Some(Env {
        mlflow,
        aws,
        s3,
        bucket,
    })
}

impl Env {
    /// A hook on the tracking server whose `s3://` artifact roots go through
    /// this environment's S3 hook.
    fn hook(&self) -> MlflowHook {
        MlflowHook::from_connection(&self.mlflow)
            .unwrap()
            .with_artifact_s3(self.s3.clone())
    }
}

/// A run in a new experiment (`name` made unique) whose artifact root is `root`.
async fn run_under(h: &MlflowHook, name: &str, root: &str) -> gust::hooks::mlflow::ActiveRun {
    let exp = h
        .create_experiment_with_location(&common::unique(name), root)
        .await
        .unwrap();
    h.create_run(&exp, None).await.unwrap()
}

macro_rules! require_env {
    () => {
        match env().await {
            Some(e) => e,
            None => return,
        }
    };
}

/// notes.txt, model/MLmodel, model/sub/weights.bin (multi-part size, no
/// repeating pattern) and an empty model/sub/empty.txt.
fn write_tree(src: &Path) {
    std::fs::create_dir_all(src.join("model/sub")).unwrap();
    std::fs::write(src.join("notes.txt"), "héllo").unwrap();
    std::fs::write(src.join("model/MLmodel"), "flavors: {}\n").unwrap();
    let big: Vec<u8> = (0..BIG as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("model/sub/weights.bin"), &big).unwrap();
    std::fs::write(src.join("model/sub/empty.txt"), "").unwrap();
}

/// Every file under `dir`, by relative path, with its bytes.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn entries(list: &[FileInfo]) -> Vec<(String, bool, Option<u64>)> {
    list.iter()
        .map(|f| (f.path.clone(), f.is_dir, f.file_size))
        .collect()
}

fn dir(p: &str) -> (String, bool, Option<u64>) {
    (p.to_string(), true, None)
}

fn file(p: &str, size: u64) -> (String, bool, Option<u64>) {
    (p.to_string(), false, Some(size))
}

/// Logs the tree of [`write_tree`] to `run_id`: notes.txt with `log_artifact`,
/// model/ with `log_artifacts`.
async fn log_tree(h: &MlflowHook, run_id: &str, src: &Path) {
    h.log_artifact(run_id, &src.join("notes.txt"), None)
        .await
        .unwrap();
    h.log_artifacts(run_id, &src.join("model"), Some("model"))
        .await
        .unwrap();
}

/// Lists the tree of [`write_tree`] at three depths, as MLflow would.
async fn check_listing(h: &MlflowHook, run_id: &str) {
    assert_eq!(
        entries(&h.list_artifacts(run_id, "").await.unwrap()),
        vec![dir("model"), file("notes.txt", 6)]
    );
    assert_eq!(
        entries(&h.list_artifacts(run_id, "model").await.unwrap()),
        vec![file("model/MLmodel", 12), dir("model/sub")]
    );
    assert_eq!(
        entries(&h.list_artifacts(run_id, "model/sub/").await.unwrap()),
        vec![
            file("model/sub/empty.txt", 0),
            file("model/sub/weights.bin", BIG as u64)
        ]
    );
    // A file and a missing directory list as nothing, as in MLflow.
    assert!(
        h.list_artifacts(run_id, "notes.txt")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(h.list_artifacts(run_id, "nope").await.unwrap().is_empty());
}

#[tokio::test]
async fn s3_root_on_the_tracking_server_round_trips() {
    let e = require_env!();
    let h = e.hook();
    let location = format!("s3://{}/gust-exp", e.bucket);
    let exp = h
        .create_experiment_with_location(&common::unique("gust-s3-root"), &location)
        .await
        .unwrap();
    assert_eq!(
        h.get_experiment(&exp).await.unwrap().artifact_location,
        location
    );
    let run = h.create_run(&exp, Some("s3-run")).await.unwrap();
    let run_id = run.run_id().to_string();
    let root = format!("{location}/{run_id}/artifacts");
    assert_eq!(run.info().artifact_uri, root);

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(&src);
    log_tree(&h, &run_id, &src).await;

    // The objects are where MLflow's S3ArtifactRepository puts them, in our
    // bucket (not behind the server's proxy), the big one uploaded in parts.
    let prefix = format!("gust-exp/{run_id}/artifacts");
    let meta =
        e.s3.head(&e.bucket, &format!("{prefix}/model/sub/weights.bin"))
            .await
            .unwrap();
    assert_eq!(meta.size, BIG as u64);
    let etag = meta.e_tag.unwrap_or_default();
    assert!(
        etag.trim_matches('"').ends_with("-3"),
        "not multipart: {etag}"
    );
    assert!(
        e.s3.exists(&e.bucket, &format!("{prefix}/notes.txt"))
            .await
            .unwrap()
    );

    check_listing(&h, &run_id).await;

    // Recursive download of the whole root, byte for byte.
    let all = h
        .download_artifacts(&run_id, "", &tmp.path().join("all"))
        .await
        .unwrap();
    assert_eq!(read_tree(&all), read_tree(&src));
    // A directory, and a single file.
    let sub = h
        .download_artifacts(&run_id, "model/sub", &tmp.path().join("sub"))
        .await
        .unwrap();
    assert_eq!(sub, tmp.path().join("sub/model/sub"));
    assert_eq!(read_tree(&sub), read_tree(&src.join("model/sub")));
    let one = h
        .download_artifacts(&run_id, "model/sub/weights.bin", &tmp.path().join("one"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(one).unwrap(),
        std::fs::read(src.join("model/sub/weights.bin")).unwrap()
    );
    let e404 = h
        .download_artifacts(&run_id, "model/nope.bin", &tmp.path().join("x"))
        .await
        .unwrap_err();
    assert_eq!(e404.kind(), ErrorKind::NotFound, "{e404}");

    // Re-logging a file overwrites it, as in MLflow.
    std::fs::write(src.join("notes.txt"), "bonjour").unwrap();
    h.log_artifact(&run_id, &src.join("notes.txt"), None)
        .await
        .unwrap();
    let notes = h
        .download_artifacts(&run_id, "notes.txt", &tmp.path().join("again"))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(notes).unwrap(), "bonjour");
    run.end(RunStatus::Finished).await.unwrap();
}

/// A directory of more than one listing page (1000 keys) lists whole; a
/// zero-byte `dir/` folder marker (as consoles create) is not a file.
#[tokio::test]
async fn listings_page_through_every_key() {
    use futures::StreamExt;
    let e = require_env!();
    let h = e.hook();
    let run = run_under(&h, "gust-s3-pages", &format!("s3://{}/pages", e.bucket)).await;
    let prefix = format!("pages/{}/artifacts/many", run.run_id());
    let keys: Vec<String> = (0..1005)
        .map(|i| format!("{prefix}/f{i:04}.txt"))
        .chain([format!("{prefix}/zz/inner.txt")])
        .collect();
    let opts = PutOptions::new();
    let puts = futures::stream::iter(keys.iter().map(|k| {
        e.s3.put(&e.bucket, k, bytes::Bytes::from_static(b"x"), &opts)
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    assert!(puts.iter().all(Result::is_ok));
    // The key rule refuses a trailing '/', so the marker goes through the raw client.
    e.s3.client()
        .put_object()
        .bucket(&e.bucket)
        .key(format!("{prefix}/"))
        .send()
        .await
        .unwrap();
    let list = h.list_artifacts(run.run_id(), "many").await.unwrap();
    assert_eq!(list.len(), 1006, "{:?}", &list[..3]);
    assert_eq!(entries(&list[..1]), vec![file("many/f0000.txt", 1)]);
    assert_eq!(list[1004].path, "many/f1004.txt");
    assert_eq!(list[1005].path, "many/zz");
    assert!(list[1005].is_dir);
    assert_eq!(
        entries(&h.list_artifacts(run.run_id(), "").await.unwrap()),
        vec![dir("many")]
    );
}

/// A model that predicts a constant (no `ml` feature needed).
#[derive(Debug, PartialEq)]
struct Constant(f64);

impl MlflowFlavor for Constant {
    const FLAVOR_NAME: &'static str = "constant";

    fn save_flavor(&self, dir: &Path) -> gust::Result<FlavorConfig> {
        std::fs::write(dir.join("value.txt"), self.0.to_string())?;
        let mut conf = FlavorConfig::new();
        conf.insert("data".into(), "value.txt".into());
        Ok(conf)
    }

    fn load_flavor(dir: &Path, conf: &FlavorConfig) -> gust::Result<Self> {
        let file = gust::hooks::mlflow::flavor_data_path(dir, conf)?;
        let text = std::fs::read_to_string(file)?;
        Ok(Constant(text.trim().parse().unwrap()))
    }
}

#[tokio::test]
async fn models_log_register_and_load_through_an_s3_root() {
    let e = require_env!();
    let h = e.hook();
    let run = run_under(&h, "gust-s3-model", &format!("s3://{}/models", e.bucket)).await;
    let info = h
        .log_model(run.run_id(), "model", &Constant(0.25), None)
        .await
        .unwrap();
    run.end(RunStatus::Finished).await.unwrap();
    let name = common::unique("GustS3Model");
    h.create_registered_model(&name).await.unwrap();
    let v = h
        .create_model_version(&name, &info.model_uri, Some(run.run_id()))
        .await
        .unwrap();
    h.set_registered_model_alias(&name, "champion", &v.version)
        .await
        .unwrap();
    let by_run: Constant = h.load_model(&info.model_uri).await.unwrap();
    assert_eq!(by_run, Constant(0.25));
    let by_alias: Constant = h
        .load_model(&format!("models:/{name}@champion"))
        .await
        .unwrap();
    assert_eq!(by_alias, Constant(0.25));
}

#[tokio::test]
async fn errors_name_the_operation_run_bucket_and_key() {
    let e = require_env!();
    let h = e.hook();
    let missing = common::unique("gust-no-such-bucket");
    let run = run_under(&h, "gust-s3-missing", &format!("s3://{missing}/p")).await;
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("a.txt");
    std::fs::write(&f, "a").unwrap();
    let secret = e.aws.password().unwrap().to_string();
    let check = |err: gust::Error, op: &str| {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert_eq!(err.operation(), op);
        assert_eq!(err.context("run_id"), Some(run.run_id()));
        assert_eq!(err.context("bucket"), Some(missing.as_str()));
        assert!(
            err.context("key").or(err.context("prefix")).is_some(),
            "{err}"
        );
        let mut chain = format!("{err} {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push_str(&s.to_string());
            source = s.source();
        }
        assert!(!chain.contains(&secret), "the secret key leaked: {chain}");
        eprintln!("{err}");
    };
    let err = h
        .log_artifact(run.run_id(), &f, Some("d"))
        .await
        .unwrap_err();
    check(err, "mlflow.log_artifact");
    assert_eq!(
        h.log_artifact(run.run_id(), &f, Some("d"))
            .await
            .unwrap_err()
            .context("key"),
        Some(format!("p/{}/artifacts/d/a.txt", run.run_id()).as_str())
    );
    let err = h.list_artifacts(run.run_id(), "d").await.unwrap_err();
    check(err, "mlflow.list_artifacts");
    // A missing local file is an I/O error naming the run, before any request.
    let err = h
        .log_artifact(run.run_id(), &tmp.path().join("gone.txt"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.context("run_id"), Some(run.run_id()));
}

/// The file store keeps an experiment's `s3://` location, and its runs'
/// artifacts go to S3 the same way.
#[tokio::test]
async fn file_store_runs_with_an_s3_location() {
    let e = require_env!();
    let tmp = tempfile::tempdir().unwrap();
    let uri = url::Url::from_directory_path(tmp.path().join("mlruns"))
        .unwrap()
        .to_string();
    let h = MlflowHook::from_uri(&uri)
        .unwrap()
        .with_artifact_s3(e.s3.clone());
    let location = format!("s3://{}/file-store/", e.bucket);
    let exp = h
        .create_experiment_with_location("on-s3", &location)
        .await
        .unwrap();
    let got = h.get_experiment(&exp).await.unwrap();
    assert_eq!(got.artifact_location, location.trim_end_matches('/'));
    let run = h.create_run(&exp, None).await.unwrap();
    assert_eq!(
        run.info().artifact_uri,
        format!("s3://{}/file-store/{}/artifacts", e.bucket, run.run_id())
    );
    let src = tmp.path().join("src");
    write_tree(&src);
    log_tree(&h, run.run_id(), &src).await;
    check_listing(&h, run.run_id()).await;
    let all = h
        .download_artifacts(run.run_id(), "", &tmp.path().join("all"))
        .await
        .unwrap();
    assert_eq!(read_tree(&all), read_tree(&src));
    assert!(
        e.s3.exists(
            &e.bucket,
            &format!("file-store/{}/artifacts/model/MLmodel", run.run_id())
        )
        .await
        .unwrap()
    );
    // Local locations still work, and other schemes are refused up front.
    let local = h
        .create_experiment_with_location("local", tmp.path().join("elsewhere").to_str().unwrap())
        .await
        .unwrap();
    let run = h.create_run(&local, None).await.unwrap();
    h.log_artifact(run.run_id(), &src.join("notes.txt"), None)
        .await
        .unwrap();
    assert!(
        tmp.path()
            .join("elsewhere")
            .join(run.run_id())
            .join("artifacts/notes.txt")
            .is_file()
    );
    let err = h
        .create_experiment_with_location("gcs", "gs://b/p")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

/// The environment of the Python client (and of gust's S3 hook built from the
/// environment) for moto.
fn s3_env(aws: &Connection) -> Vec<(&'static str, String)> {
    vec![
        (
            "MLFLOW_S3_ENDPOINT_URL",
            aws.extra_str("endpoint_url").unwrap().to_string(),
        ),
        ("AWS_ACCESS_KEY_ID", aws.login().unwrap().to_string()),
        ("AWS_SECRET_ACCESS_KEY", aws.password().unwrap().to_string()),
        (
            "AWS_DEFAULT_REGION",
            aws.extra_str("region_name")
                .unwrap_or("us-east-1")
                .to_string(),
        ),
    ]
}

fn tracking_url(mlflow: &Connection) -> String {
    MlflowHook::from_connection(mlflow)
        .unwrap()
        .tracking_uri()
        .to_string()
}

/// Python's `MlflowClient` lists and downloads what gust wrote; gust reads
/// what Python uploaded to the same run.
#[tokio::test]
async fn python_and_gust_read_each_others_artifacts() {
    let e = require_env!();
    let Some(python) = common::python() else {
        return;
    };
    let h = e.hook();
    let run = run_under(&h, "gust-s3-cross", &format!("s3://{}/cross", e.bucket)).await;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(&src);
    log_tree(&h, run.run_id(), &src).await;

    let script = r#"
import hashlib, json, os, sys, tempfile
from mlflow import MlflowClient
rid, src, dst = sys.argv[1:4]
c = MlflowClient()
def tree(d):
    out = {}
    for r, _, fs in os.walk(d):
        for f in fs:
            p = os.path.join(r, f)
            out[os.path.relpath(p, d).replace(os.sep, "/")] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out
ls = lambda p=None: [[f.path, f.is_dir, f.file_size] for f in c.list_artifacts(rid, p)]
seen = {
    "artifact_uri": c.get_run(rid).info.artifact_uri,
    "root": ls(), "model": ls("model"), "sub": ls("model/sub"),
    "got": tree(c.download_artifacts(rid, "", dst)), "want": tree(src),
}
d = tempfile.mkdtemp()
p = os.path.join(d, "from_python.txt")
open(p, "w").write("written by python")
c.log_artifact(rid, p, "py")
print(json.dumps(seen))
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(run.run_id())
        .arg(&src)
        .arg(tmp.path().join("py-dl"))
        .envs(s3_env(&e.aws))
        .env("MLFLOW_TRACKING_URI", tracking_url(&e.mlflow))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(got["artifact_uri"], run.info().artifact_uri);
    let json = |v: Vec<(String, bool, Option<u64>)>| serde_json::to_value(v).unwrap();
    assert_eq!(got["root"], json(vec![dir("model"), file("notes.txt", 6)]));
    assert_eq!(
        got["model"],
        json(vec![file("model/MLmodel", 12), dir("model/sub")])
    );
    assert_eq!(
        got["sub"],
        json(vec![
            file("model/sub/empty.txt", 0),
            file("model/sub/weights.bin", BIG as u64)
        ])
    );
    assert_eq!(got["got"], got["want"], "Python downloaded other bytes");
    assert_eq!(got["want"].as_object().unwrap().len(), 4);

    // And gust reads what Python uploaded.
    assert_eq!(
        entries(&h.list_artifacts(run.run_id(), "py").await.unwrap()),
        vec![file("py/from_python.txt", 17)]
    );
    let p = h
        .download_artifacts(run.run_id(), "py", &tmp.path().join("gust-dl"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(p.join("from_python.txt")).unwrap(),
        "written by python"
    );
}

/// Set in the child process of [`the_s3_client_comes_from_the_environment`].
const CHILD: &str = "GUST_MLFLOW_S3_CHILD_RUN";

/// Without `with_artifact_s3`, the S3 hook is built from `MLFLOW_S3_ENDPOINT_URL`
/// and `AWS_*`, as the Python client's. The environment is set in a child
/// process (this test binary, running [`env_child`]), so no test here changes
/// its own.
#[tokio::test]
async fn the_s3_client_comes_from_the_environment() {
    let e = require_env!();
    let h = MlflowHook::from_connection(&e.mlflow).unwrap();
    let run = run_under(&h, "gust-s3-env", &format!("s3://{}/env", e.bucket)).await;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("env.txt"), "from the environment").unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "env_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(s3_env(&e.aws))
        .env(CHILD, run.run_id())
        .env("GUST_MLFLOW_S3_CHILD_FILE", tmp.path().join("env.txt"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = format!("env/{}/artifacts/env/env.txt", run.run_id());
    let body = e.s3.get(&e.bucket, &key).await.unwrap();
    assert_eq!(&body[..], b"from the environment");
}

/// The child of [`the_s3_client_comes_from_the_environment`], which runs it
/// with `--ignored` in an environment of its own; ignored anywhere else.
#[tokio::test]
#[ignore = "the child process of the_s3_client_comes_from_the_environment"]
async fn env_child() {
    let run_id = std::env::var(CHILD).expect("run by the_s3_client_comes_from_the_environment");
    let path = PathBuf::from(std::env::var("GUST_MLFLOW_S3_CHILD_FILE").unwrap());
    let conn = common::server_conn("mlflow_default").unwrap();
    let h = MlflowHook::from_connection(&conn).unwrap();
    h.log_artifact(&run_id, &path, Some("env")).await.unwrap();
    assert_eq!(
        entries(&h.list_artifacts(&run_id, "env").await.unwrap()),
        vec![file("env/env.txt", 20)]
    );
}
