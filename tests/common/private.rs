//! Private servers for the process-fault tests: started by `scripts/services.sh`
//! on free ports, in a temporary state directory, and stopped when dropped.
//!
//! The servers the other tests use are shared (by the other test binaries, and
//! by whoever else runs tests on the machine): a test that restarts or kills a
//! server must own it. `scripts/services.sh` reads `GUST_SERVICES_DIR`, the
//! ports and the stores from the environment (see its header); this module sets
//! them and reads the connections back from its `env` command.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use gust::Connection;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services.sh");

/// A cluster node timeout short enough for a failover within a test.
pub const CLUSTER_NODE_TIMEOUT_MS: u64 = 1000;

/// Private instances of some of the services of `scripts/services.sh`.
pub struct Private {
    services: Vec<&'static str>,
    env: Vec<(String, String)>,
    // Dropped after the servers are stopped (fields drop after `Drop::drop`).
    dir: tempfile::TempDir,
}

impl Private {
    /// Starts private `services` (names as `scripts/services.sh` spells them),
    /// or returns `None` (test skipped) outside CI when the machine has no
    /// servers: the shared connection `signal` is unset (under `CI=true` that
    /// panics). MLflow also needs the services' Python (`GUST_SERVICES_PYTHON`).
    pub async fn start(signal: &str, services: &[&'static str]) -> Option<Private> {
        crate::common::server_conn(signal)?;
        let mut env = Vec::new();
        if services.contains(&"mlflow") {
            let python = crate::common::python()?;
            // <venv>/bin/python
            let venv = std::path::Path::new(&python)
                .parent()
                .and_then(|p| p.parent())
                .expect("GUST_SERVICES_PYTHON is <venv>/bin/python");
            env.push(("GUST_SERVICES_VENV".into(), venv.display().to_string()));
        }
        let dir = tempfile::Builder::new()
            .prefix("gust-faults-")
            .tempdir_in("/tmp")
            .expect("a temporary directory");
        let ports = free_ports(16);
        let list = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(" ");
        let d = dir.path().display().to_string();
        env.extend([
            ("GUST_SERVICES_DIR".to_string(), d.clone()),
            ("GUST_PG_PORT".into(), ports[0].to_string()),
            ("GUST_MY_PORT".into(), ports[1].to_string()),
            ("GUST_MLFLOW_PORT".into(), ports[2].to_string()),
            ("GUST_REDIS_PORT".into(), ports[3].to_string()),
            ("GUST_CLUSTER_PORTS".into(), list(&ports[4..10])),
            ("GUST_CLUSTER_BUS_PORTS".into(), list(&ports[10..16])),
            (
                "GUST_CLUSTER_NODE_TIMEOUT".into(),
                CLUSTER_NODE_TIMEOUT_MS.to_string(),
            ),
            (
                "GUST_MLFLOW_BACKEND_STORE_URI".into(),
                format!("sqlite:///{d}/mlflow.db"),
            ),
            (
                "GUST_MLFLOW_ARTIFACTS_DESTINATION".into(),
                format!("{d}/mlflow-artifacts"),
            ),
        ]);
        let private = Private {
            services: services.to_vec(),
            env,
            dir,
        };
        let started = Instant::now();
        let mut args = vec!["start"];
        args.extend(services);
        private.sh(&args).await;
        eprintln!(
            "private {services:?} started in {:.1?} under {d}",
            started.elapsed()
        );
        Some(private)
    }

    /// Runs `scripts/services.sh args…` against the private instances; panics
    /// with its output when it fails. Returns its standard output.
    pub async fn sh(&self, args: &[&str]) -> String {
        self.script().sh(args).await
    }

    /// A handle that runs `scripts/services.sh` on these instances, for code
    /// that cannot borrow them (a fault triggered from inside a hook).
    pub fn script(&self) -> Script {
        Script {
            env: self.env.clone(),
        }
    }

    /// The connection `conn_id` to the private instances, from `services.sh env`.
    pub async fn conn(&self, conn_id: &str) -> Connection {
        let out = self.sh(&["env"]).await;
        let prefix = format!("export AIRFLOW_CONN_{}=", conn_id.to_uppercase());
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("services.sh env prints no {prefix}…"));
        Connection::from_uri(conn_id, &unquote(line)).expect("a valid connection URI")
    }

    /// The state directory (data, logs).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// `scripts/services.sh` with the environment of some private instances.
#[derive(Clone)]
pub struct Script {
    env: Vec<(String, String)>,
}

impl Script {
    /// See [`Private::sh`].
    pub async fn sh(&self, args: &[&str]) -> String {
        let (env, args): (Vec<_>, Vec<String>) = (
            self.env.clone(),
            args.iter().map(|a| a.to_string()).collect(),
        );
        tokio::task::spawn_blocking(move || script(&env, &args))
            .await
            .expect("services.sh ran")
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        // Best effort, and also after a failed assertion: a private server left
        // running would hold its ports and its memory until the machine stops.
        let mut args = vec!["stop".to_string()];
        args.extend(self.services.iter().map(|s| s.to_string()));
        if let Err(e) = script(&self.env, &args) {
            eprintln!("could not stop the private servers: {e}");
        }
        if std::thread::panicking() {
            // The servers' logs say what they saw; the directory goes with the test.
            for log in ["postgres.log", "redis-cluster.log", "mlflow.log"] {
                let path = self.dir.path().join("logs").join(log);
                if let Ok(text) = std::fs::read_to_string(&path) {
                    let tail: Vec<&str> = text.lines().rev().take(30).collect();
                    eprintln!("----- {log} (last lines) -----");
                    for l in tail.into_iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
    }
}

fn script(env: &[(String, String)], args: &[String]) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(SCRIPT)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| format!("cannot run {SCRIPT}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "services.sh {} failed ({}):\n{stdout}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `n` ports nothing listens on, all different, below the kernel's ephemeral
/// range: a port the OS hands out for `bind(0)` is also handed to outgoing
/// connections, and one of those (or its TIME-WAIT) on our port before the
/// server binds it would make the start fail. Each is checked by binding it
/// (the listeners are held until all are found, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = (10_000u16, low.max(10_001 + n as u16));
    let mut held: Vec<TcpListener> = Vec::new();
    for _ in 0..10_000 {
        if held.len() == n {
            break;
        }
        let port = rand::random_range(from..to);
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    assert_eq!(held.len(), n, "{n} free ports between {from} and {to}");
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A value as `services.sh env` quotes it: `'…'`, a quote written `'\''`.
fn unquote(s: &str) -> String {
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(s)
        .replace("'\\''", "'")
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`
/// (a bound on a hang, not a timing assertion); panics naming `what` after that.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
