//! The chaos harness: a control plane of its own (`target/chaos-cluster`, never the developers'
//! `target/cluster`), operators as separate processes that can be SIGKILLed, raw HTTP to their
//! `/metrics` and `/readyz`, component restarts through `hack/cluster.sh stop|start`, and a
//! seeded random source so a failing run can be replayed (`CHAOS_SEED`).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use tokio::sync::{Mutex, MutexGuard, OnceCell};

use crate::support;

/// Label on every namespace a chaos scenario creates (deleted by the next run's setup).
pub const CHAOS_LABEL: &str = "tierflow.dev/chaos";

/// Every scenario runs operators that watch the whole cluster and some restart the control
/// plane: one scenario at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Whether the control plane came up (`Err` says why not), decided once per process.
static CLUSTER: OnceCell<Result<(), String>> = OnceCell::const_new();

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The chaos control plane's folder: `TIERFLOW_CHAOS_CLUSTER_DIR`, else `target/chaos-cluster`.
/// (`TIERFLOW_CLUSTER_DIR` is deliberately not read: the Makefile exports it for the developers'
/// cluster, which these scenarios must never restart.)
pub fn cluster_dir() -> PathBuf {
    std::env::var_os("TIERFLOW_CHAOS_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/chaos-cluster"))
}

/// Runs `hack/cluster.sh args...` on the chaos control plane; its output, or why it failed.
pub fn cluster_sh(args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    let out = Command::new(repo().join("hack/cluster.sh"))
        .args(args)
        .env("TIERFLOW_CLUSTER_DIR", cluster_dir())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("hack/cluster.sh: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

async fn cluster_sh_async(args: Vec<String>, env: Vec<(String, String)>) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        cluster_sh(&a, &e)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The chaos control plane, as a scenario sees it.
pub struct Cluster {
    /// Its folder (kubeconfig, env, pids, logs).
    pub dir: PathBuf,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// An admin client.
    pub client: Client,
}

/// Serialises scenarios of different test processes too (two `cargo test --test chaos` at once
/// would delete each other's namespaces): a lock directory holding the owner's pid, taken over
/// when that process is gone.
struct ProcessLock(PathBuf);

impl ProcessLock {
    async fn acquire(dir: &Path) -> Result<ProcessLock, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock = dir.join("chaos.lock");
        let mut waited = 0;
        loop {
            match std::fs::create_dir(&lock) {
                Ok(()) => {
                    let _ = std::fs::write(lock.join("pid"), std::process::id().to_string());
                    return Ok(ProcessLock(lock));
                }
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(format!("{}: {e}", lock.display()));
                }
                Err(_) => {}
            }
            let owner: Option<u32> = std::fs::read_to_string(lock.join("pid"))
                .ok()
                .and_then(|p| p.trim().parse().ok());
            let alive = owner.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if !alive && waited > 2 {
                let _ = std::fs::remove_dir_all(&lock);
                continue;
            }
            if waited % 60 == 0 {
                eprintln!("chaos: waiting for another chaos run ({owner:?}) to finish");
            }
            waited += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a scenario holds while it runs: the serial locks and the cluster.
pub struct Scenario {
    // Fields drop in order: the lock shared between processes goes first, so the next scenario
    // of this process, which takes the in-process lock next, never finds it still held.
    _process: ProcessLock,
    _serial: MutexGuard<'static, ()>,
    /// The chaos control plane.
    pub cluster: Cluster,
    /// Where this scenario's operator logs go.
    pub logs: PathBuf,
}

/// Starts (or reuses) the chaos control plane for scenario `name`, or says why the scenario is
/// skipped and returns `None`.
pub async fn setup(name: &str) -> Option<Scenario> {
    if std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v == "true" || v == "1") {
        eprintln!(
            "SKIPPED chaos/{name}: chaos scenarios kill and restart the API server and etcd of a \
             control plane of their own (target/chaos-cluster); never run against an existing \
             cluster"
        );
        return None;
    }
    let dir = cluster_dir();
    if dir.ends_with("target/cluster") {
        eprintln!(
            "SKIPPED chaos/{name}: refusing to use the developers' control plane {}",
            dir.display()
        );
        return None;
    }
    let serial = SERIAL.lock().await;
    let process = match ProcessLock::acquire(&dir).await {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED chaos/{name}: the chaos control plane cannot be used: {why}");
            return None;
        }
    };
    let up = CLUSTER
        .get_or_init(|| async {
            let started = Instant::now();
            let r = cluster_sh_async(vec!["up".into()], vec![]).await;
            if r.is_ok() {
                eprintln!(
                    "chaos: control plane {} up in {:.1?}",
                    dir.display(),
                    started.elapsed()
                );
            }
            r.map(|_| ())
        })
        .await;
    if let Err(why) = up {
        eprintln!(
            "SKIPPED chaos/{name}: the chaos control plane could not be started \
             (TIERFLOW_CLUSTER_DIR={} hack/cluster.sh up):\n{why}",
            cluster_dir().display()
        );
        return None;
    }
    // An earlier scenario that failed half-way may have left a component stopped.
    if cluster_sh_async(vec!["status".into()], vec![])
        .await
        .is_err()
    {
        for c in ["etcd", "kube-apiserver", "kube-controller-manager"] {
            let _ = cluster_sh_async(vec!["start".into(), c.into()], vec![]).await;
        }
        if cluster_sh_async(vec!["status".into()], vec![])
            .await
            .is_err()
        {
            if let Err(why) = cluster_sh_async(vec!["up".into()], vec![]).await {
                eprintln!("SKIPPED chaos/{name}: the chaos control plane is broken:\n{why}");
                return None;
            }
        }
    }
    let kubeconfig = dir.join("kubeconfig");
    let client = client_for(&kubeconfig).await;
    support::install_crds(&client).await;
    remove_leftovers(&client).await;
    let logs = logs_dir(name);
    Some(Scenario {
        _serial: serial,
        _process: process,
        cluster: Cluster {
            dir,
            kubeconfig,
            client,
        },
        logs,
    })
}

/// A fresh `target/chaos/<name>` for a scenario's operator logs.
pub fn logs_dir(name: &str) -> PathBuf {
    let logs = repo().join("target/chaos").join(name);
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).expect("log folder");
    logs
}

/// An admin client from a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("readable kubeconfig");
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("valid kubeconfig");
    Client::try_from(cfg).expect("client")
}

/// Namespaces and ClusterBaselines of earlier chaos runs (this control plane is ours alone).
async fn remove_leftovers(client: &Client) {
    let nss: Api<Namespace> = Api::all(client.clone());
    if let Ok(list) = nss
        .list(&ListParams::default().labels(&format!("{CHAOS_LABEL}=true")))
        .await
    {
        for ns in list.items {
            if ns.metadata.deletion_timestamp.is_none() {
                let _ = nss.delete(&ns.name_any(), &DeleteParams::default()).await;
            }
        }
    }
    let cbs: Api<tierflow::crd::ClusterBaseline> = Api::all(client.clone());
    if let Ok(list) = cbs.list(&ListParams::default()).await {
        for cb in list.items {
            let _ = cbs.delete(&cb.name_any(), &DeleteParams::default()).await;
        }
    }
}

impl Cluster {
    fn env(&self) -> BTreeMap<String, String> {
        std::fs::read_to_string(self.dir.join("env"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// etcd's client port.
    pub fn etcd_port(&self) -> u16 {
        self.env()
            .get("ETCD_PORT")
            .and_then(|p| p.parse().ok())
            .expect("ETCD_PORT in the cluster env file")
    }

    /// Stops a component (`etcd`, `kube-apiserver`, `kube-controller-manager`) with SIGKILL:
    /// a crash, not a graceful shutdown.
    pub async fn crash(&self, component: &str) {
        cluster_sh_async(
            vec!["stop".into(), component.into()],
            vec![("CLUSTER_STOP_SIGNAL".into(), "KILL".into())],
        )
        .await
        .unwrap_or_else(|e| panic!("stop {component}: {e}"));
    }

    /// Starts a component again with the same flags and data; returns once it is healthy.
    pub async fn start(&self, component: &str) {
        cluster_sh_async(vec!["start".into(), component.into()], vec![])
            .await
            .unwrap_or_else(|e| panic!("start {component}: {e}"));
    }

    /// etcd's current revision.
    pub async fn etcd_revision(&self) -> u64 {
        let (code, body) = http(
            self.etcd_port(),
            "POST",
            "/v3/kv/range",
            Some(r#"{"key":"AA=="}"#),
        )
        .await
        .expect("etcd answers");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        v["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .expect("a revision")
    }

    /// Compacts etcd's history up to its current revision: every older resourceVersion is gone.
    pub async fn etcd_compact(&self) -> u64 {
        let rev = self.etcd_revision().await;
        let body = format!(r#"{{"revision":"{rev}","physical":true}}"#);
        let (code, text) = http(self.etcd_port(), "POST", "/v3/kv/compaction", Some(&body))
            .await
            .expect("etcd answers");
        assert_eq!(code, 200, "compaction: {text}");
        rev
    }
}

static STARTS: AtomicUsize = AtomicUsize::new(0);

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// How an operator process is started.
#[derive(Clone, Default)]
pub struct OperatorOptions {
    /// `--leader-elect --lease-namespace NS`.
    pub lease_namespace: Option<String>,
    /// Another kubeconfig (default: the cluster's admin kubeconfig).
    pub kubeconfig: Option<PathBuf>,
    /// `RUST_LOG` (default `info,kube=warn`).
    pub rust_log: Option<String>,
}

/// A `tierflow run` process; SIGKILLed on drop.
pub struct Operator {
    child: Child,
    /// POD_NAME (the leader-election identity).
    pub identity: String,
    /// Its `--metrics-addr` port.
    pub port: u16,
    /// Its stdout and stderr.
    pub log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Operator {
    /// Starts `tierflow run --backend networkpolicy` as `identity` on the scenario's cluster.
    pub fn start(sc: &Scenario, identity: &str, opts: &OperatorOptions) -> Operator {
        Operator::start_in(&sc.logs, &sc.cluster.kubeconfig, identity, opts)
    }

    /// Starts `tierflow run --backend networkpolicy` as `identity`, logging into `logs`, with
    /// `kubeconfig` unless the options name another.
    pub fn start_in(
        logs: &Path,
        kubeconfig: &Path,
        identity: &str,
        opts: &OperatorOptions,
    ) -> Operator {
        let n = STARTS.fetch_add(1, Ordering::SeqCst);
        let port = free_port();
        let log = logs.join(format!("{n:03}-{identity}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        // CHAOS_OPERATOR_BIN runs another build (say target/release/tierflow) than the test's.
        let binary = std::env::var_os("CHAOS_OPERATOR_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tierflow")));
        let mut cmd = Command::new(binary);
        cmd.args([
            "run",
            "--backend",
            "networkpolicy",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ]);
        if let Some(ns) = &opts.lease_namespace {
            cmd.args(["--leader-elect", "--lease-namespace", ns]);
        }
        for var in [
            "TIERFLOW_BACKEND",
            "TIERFLOW_LEADER_ELECT",
            "TIERFLOW_LEASE_NAMESPACE",
            "TIERFLOW_METRICS_ADDR",
            "TIERFLOW_LOG_FORMAT",
        ] {
            cmd.env_remove(var);
        }
        let child = cmd
            .env(
                "KUBECONFIG",
                opts.kubeconfig.as_deref().unwrap_or(kubeconfig),
            )
            .env("POD_NAME", identity)
            .env("POD_NAMESPACE", "tierflow-system")
            // A panic's log shows where it happened (tests/chaos/panic.rs reads it).
            .env("RUST_BACKTRACE", "1")
            .env(
                "RUST_LOG",
                opts.rust_log.as_deref().unwrap_or("info,kube=warn"),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("start tierflow run");
        Operator {
            child,
            identity: identity.to_string(),
            port,
            log,
            exit: None,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap it.
    pub fn sigkill(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
    }

    /// Sends a signal by name (TERM, STOP, CONT) to this process only.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits up to `timeout` for it to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GET on its metrics address.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        http(self.port, "GET", path, None).await
    }

    /// Its `/metrics`, parsed.
    pub async fn metrics(&self) -> Option<Metrics> {
        let (code, text) = self.get("/metrics").await?;
        (code == 200).then(|| Metrics::parse(&text))
    }

    /// Its log so far, without colours.
    pub fn log_text(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Removes terminal colour sequences (`ESC [ ... m`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A parsed Prometheus text exposition: `name{labels}` → value.
#[derive(Clone, Debug, Default)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    /// Parses the text format (comments skipped).
    pub fn parse(text: &str) -> Metrics {
        Metrics(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (k, v) = l.rsplit_once(' ')?;
                    Some((k.to_string(), v.parse().ok()?))
                })
                .collect(),
        )
    }

    /// The value of exactly `key` (0 when absent).
    pub fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }

    /// The sum over every series whose key starts with `prefix`.
    pub fn sum(&self, prefix: &str) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    }

    /// Writes to managed objects and status: server-side apply PATCHes and DELETEs, not the
    /// Lease's writes nor events (with or without the `resource` label).
    pub fn object_writes(&self) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| k.starts_with("tierflow_api_writes_total{"))
            .filter(|(k, _)| k.contains("verb=\"PATCH\"") || k.contains("verb=\"DELETE\""))
            .filter(|(k, _)| {
                !k.contains("resource=\"leases\"") && !k.contains("resource=\"events\"")
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// `tierflow_leader`.
    pub fn leader(&self) -> bool {
        self.get("tierflow_leader") == 1.0
    }
}

/// A minimal HTTP/1.1 request on loopback: status code and body.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let go = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).to_string();
        let code = text.split(' ').nth(1)?.parse().ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        Some((code, body))
    };
    tokio::time::timeout(Duration::from_secs(5), go)
        .await
        .ok()
        .flatten()
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// How many namespaces exist and are not being deleted: what a start-up pass reconciles.
pub async fn live_namespaces(client: &Client) -> f64 {
    Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list namespaces")
        .items
        .into_iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .count() as f64
}

/// Polls `check` every 50 ms until it returns `Some`, or `None` after `timeout`.
pub async fn poll<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Like `poll`, but fails the scenario on timeout.
pub async fn within<T, F, Fut>(timeout: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll(timeout, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// A small seeded random source (xorshift64*): `CHAOS_SEED` replays a run.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `CHAOS_SEED`, else the clock; prints the seed.
    pub fn from_env(scenario: &str) -> Rng {
        let seed = std::env::var("CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("chaos/{scenario}: CHAOS_SEED={seed}");
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Summary statistics of durations, for the report.
pub fn stats(samples: &[Duration]) -> String {
    if samples.is_empty() {
        return "n=0".into();
    }
    let mut v: Vec<Duration> = samples.to_vec();
    v.sort();
    let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "n={} min={:.2?} median={:.2?} p90={:.2?} max={:.2?}",
        v.len(),
        v[0],
        pct(0.5),
        pct(0.9),
        v[v.len() - 1]
    )
}
