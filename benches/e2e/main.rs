//! End-to-end benchmark of the operator against a local control plane (`make bench`,
//! `make bench-quick`; see BENCHMARKS.md). Runs only under `cargo bench --bench e2e` with
//! `BENCH_KUBECONFIG` set by `hack/bench.sh`; under `cargo test --benches` it does nothing.
//!
//! Phases, in order, on a fresh cluster:
//! 1. the operator on an almost empty cluster, for its base memory;
//! 2. `BENCH_NAMESPACES` namespaces; the raw limit: the objects the operator will produce,
//!    server-side applied by a minimal loop at 4, 8 and 16 requests in flight (then deleted),
//!    and, at each of these, the same loop applying the objects AND one minimal status per
//!    AppNetwork (onto copies that are deleted before the operator starts);
//! 3. one AppNetwork (examples/shop.yaml) per namespace and one ClusterBaseline, then the
//!    operator is started and timed until every expected object exists with the right content;
//! 4. hot paths: spec change, new namespace, hand-deleted policy (`BENCH_SAMPLES` each);
//! 5. idle: API writes and operator CPU over `BENCH_IDLE_SECS` with nothing changing;
//! 6. memory (VmHWM, VmRSS);
//! 7. a restart on the converged cluster: time until ready with no writes (or until its last
//!    write), the writes it made, and the memory of the caches alone;
//! 8. the raw cost of the AppNetwork status writes — then `target/bench/results.{json,md}`.

mod cluster;
mod process;
mod report;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tierflow::core::names::BASELINE_NAME;
use tierflow::crd::{AppNetwork, ClusterBaseline};
use tokio::time::Instant;

use cluster::{Key, ReadyWatch, Requests, Snapshot, Tracker, BENCH_LABEL};
use process::Operator;

/// Settings, from the environment (`hack/bench.sh` sets them).
pub struct Cfg {
    /// `BENCH_MODE`: `full` or `quick` (a label for the report).
    pub mode: String,
    /// `BENCH_NAMESPACES` (default 300).
    pub namespaces: usize,
    /// `BENCH_SAMPLES` per hot path (default 100; at least 50).
    pub samples: usize,
    /// `BENCH_IDLE_SECS` (default 60).
    pub idle: Duration,
    /// `BENCH_RAW_CONCURRENCY` (default `4,8,16`).
    pub concurrency: Vec<usize>,
    /// `BENCH_KUBECONFIG`: the bench cluster (never `target/cluster`).
    pub kubeconfig: PathBuf,
    /// `BENCH_OPERATOR` (default `target/release/tierflow`).
    pub operator: PathBuf,
    /// `BENCH_OPERATOR_LOG`: RUST_LOG of the operator (default `warn`).
    pub rust_log: String,
    /// `target/bench`.
    pub out: PathBuf,
    /// `BENCH_COLD_TIMEOUT_SECS` (default 600).
    pub cold_timeout: Duration,
    /// `BENCH_SAMPLE_TIMEOUT_SECS`: one hot-path sample (default 10).
    pub sample_timeout: Duration,
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

impl Cfg {
    fn from_env() -> Cfg {
        let kubeconfig = PathBuf::from(
            std::env::var_os("BENCH_KUBECONFIG")
                .expect("BENCH_KUBECONFIG is not set: run `make bench` or hack/bench.sh"),
        );
        let developers = target_dir().join("cluster");
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        assert!(
            !canon(&kubeconfig).starts_with(canon(&developers)),
            "refusing to benchmark the developers' control plane ({}); use target/bench-cluster",
            developers.display()
        );
        Cfg {
            mode: std::env::var("BENCH_MODE").unwrap_or_else(|_| "full".into()),
            namespaces: env_num("BENCH_NAMESPACES", 300).max(1) as usize,
            samples: env_num("BENCH_SAMPLES", 100).max(50) as usize,
            idle: Duration::from_secs(env_num("BENCH_IDLE_SECS", 60)),
            concurrency: std::env::var("BENCH_RAW_CONCURRENCY")
                .unwrap_or_else(|_| "4,8,16".into())
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect(),
            kubeconfig,
            operator: std::env::var_os("BENCH_OPERATOR")
                .map(PathBuf::from)
                .unwrap_or_else(|| target_dir().join("release/tierflow")),
            rust_log: std::env::var("BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
            out: target_dir().join("bench"),
            cold_timeout: Duration::from_secs(env_num("BENCH_COLD_TIMEOUT_SECS", 600)),
            sample_timeout: Duration::from_secs(env_num("BENCH_SAMPLE_TIMEOUT_SECS", 10)),
        }
    }

    fn start_operator(&self, log: &str) -> Operator {
        Operator::start(
            &self.operator,
            &self.kubeconfig,
            &self.rust_log,
            self.out.join(log),
            self.out.join("operator.pid"),
        )
    }
}

fn say(msg: impl AsRef<str>) {
    eprintln!(
        "[bench {}] {}",
        chrono::Utc::now().format("%H:%M:%S"),
        msg.as_ref()
    );
}

/// Latency samples in milliseconds.
#[derive(Default)]
pub struct Samples {
    /// From the write's response to the watch event.
    pub ms: Vec<f64>,
    /// From sending the write to the watch event.
    pub from_send_ms: Vec<f64>,
    /// Samples that did not complete in time (counted in `ms` at the timeout).
    pub timeouts: usize,
}

impl Samples {
    fn add(&mut self, sent: Instant, responded: Instant, seen: Option<Instant>, limit: Duration) {
        match seen {
            Some(at) => {
                self.ms
                    .push(at.saturating_duration_since(responded).as_secs_f64() * 1e3);
                self.from_send_ms
                    .push(at.saturating_duration_since(sent).as_secs_f64() * 1e3);
            }
            None => {
                self.timeouts += 1;
                self.ms.push(limit.as_secs_f64() * 1e3);
                self.from_send_ms.push(limit.as_secs_f64() * 1e3);
            }
        }
    }
}

/// Nearest-rank percentile.
pub fn percentile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s.get(rank - 1).copied()
}

/// Waits until the API server has seen no write for `quiet` (at most `limit`); on failure,
/// says which writes kept coming.
async fn quiesce(client: &Client, quiet: Duration, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut before = Requests::read(client).await;
    let mut last = Requests::default();
    while Instant::now() < deadline {
        tokio::time::sleep(quiet).await;
        let now = Requests::read(client).await;
        last = now.since(&before);
        if last.writes() == 0 {
            return true;
        }
        before = now;
    }
    say(format!("still writing after {limit:?}: {}", last.to_json()));
    false
}

fn has_port(obj: &Value, port: i64) -> bool {
    obj.pointer("/spec/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("ports").and_then(Value::as_array))
        .flatten()
        .any(|p| p.get("port").and_then(Value::as_i64) == Some(port))
}

fn uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/uid").and_then(Value::as_str)
}

/// The operator's own write counter (`tierflow_api_writes_total`), when it exports one.
fn operator_writes(op: &Operator) -> Option<u64> {
    Some(process::metric_sum(
        &op.scrape()?,
        "tierflow_api_writes_total",
    ))
}

/// When the operator said its caches synced (its /readyz), polled in the background.
fn ready_poller(op: &Operator) -> Option<tokio::task::JoinHandle<Option<std::time::Instant>>> {
    let addr = op.metrics_addr.clone()?;
    Some(tokio::task::spawn_blocking(move || {
        process::wait_ready(&addr, Duration::from_secs(120))
    }))
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("e2e bench: skipped (it needs a control plane: run `make bench`)");
        return;
    }
    let cfg = Cfg::from_env();
    std::fs::create_dir_all(&cfg.out).expect("target/bench");
    assert!(
        cfg.operator.exists(),
        "{} is missing: cargo build --release",
        cfg.operator.display()
    );
    let mut rep = report::Report::new(&cfg);
    let client = cluster::client(&cfg.kubeconfig).await;
    say(format!(
        "mode {}, {} namespaces, {} samples per hot path, idle window {:?}, load {}",
        cfg.mode,
        cfg.namespaces,
        cfg.samples,
        cfg.idle,
        report::loadavg()
    ));
    cluster::install_crds(&client).await;
    let env = cluster::env(&client).await;

    // 1. Base memory: the operator on a cluster with nothing for it to do.
    {
        let mut op = cfg.start_operator("operator-empty.log");
        let started = std::time::Instant::now();
        match ready_poller(&op) {
            Some(p) => {
                let _ = p.await;
            }
            None => tokio::time::sleep(Duration::from_secs(3)).await,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        op.assert_running();
        let (_, rss) = op.memory_kib();
        rep.rss_empty_kib = Some(rss);
        rep.memory_empty = Some(op.memory_breakdown());
        say(format!(
            "empty cluster: operator RSS {:.1} MiB ({:.1}s after start)",
            rss as f64 / 1024.0,
            started.elapsed().as_secs_f64()
        ));
        op.stop();
    }

    // 2. Namespaces, and the raw write limit.
    let names: Vec<String> = (0..cfg.namespaces)
        .map(|i| format!("bench-{i:04}"))
        .collect();
    let t = std::time::Instant::now();
    cluster::create_namespaces(&client, &names, &[(BENCH_LABEL, "true")]).await;
    say(format!(
        "{} namespaces created in {:.1}s",
        names.len(),
        t.elapsed().as_secs_f64()
    ));
    let raw_objects: Vec<tierflow::render::Object> = names
        .iter()
        .flat_map(|ns| cluster::expected_objects(ns, &cluster::shop(ns), None, false, &env))
        .collect();
    cluster::delete_managed(&client, &names).await;
    // The controller manager gives every new namespace a service account and a token secret
    // (about 7 namespaces a second): let it finish, so the raw loop has the API server alone.
    let quiet_limit = Duration::from_secs(60 + cfg.namespaces as u64 * 3 / 10);
    let t = std::time::Instant::now();
    quiesce(&client, Duration::from_secs(1), quiet_limit).await;
    say(format!(
        "the control plane is quiet again after {:.1}s",
        t.elapsed().as_secs_f64()
    ));
    let cluster_dir = cfg
        .kubeconfig
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for &c in &cfg.concurrency {
        let raw_client = cluster::client(&cfg.kubeconfig).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let meter = process::CpuMeter::new(&cluster_dir, None);
        let (cpu0, req0) = (meter.read(), Requests::read(&client).await);
        let took = cluster::raw_apply(&raw_client, &raw_objects, c).await;
        let (cpu1, req1) = (meter.read(), Requests::read(&client).await);
        rep.raw_detail
            .push((c, process::CpuMeter::delta(&cpu0, &cpu1), req1.since(&req0)));
        say(format!(
            "raw server-side apply of {} objects at concurrency {c}: {:.2}s ({:.0}/s)",
            raw_objects.len(),
            took.as_secs_f64(),
            raw_objects.len() as f64 / took.as_secs_f64()
        ));
        rep.raw.push((c, took.as_secs_f64()));
        cluster::delete_managed(&client, &names).await;

        // The same loop at the same concurrency, with one minimal status per AppNetwork (what
        // any kstatus-compliant operator writes), onto fresh AppNetworks without a status.
        let statuses: Vec<(String, String, Value)> =
            cluster::create_apps(&client, &names, RAW_STATUS_APP)
                .await
                .into_iter()
                .map(|(ns, generation)| {
                    (
                        ns,
                        RAW_STATUS_APP.to_string(),
                        cluster::minimal_status(generation),
                    )
                })
                .collect();
        let raw_client = cluster::client(&cfg.kubeconfig).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (cpu0, req0) = (meter.read(), Requests::read(&client).await);
        let took = cluster::raw_apply_with_statuses(&raw_client, &raw_objects, &statuses, c).await;
        let (cpu1, req1) = (meter.read(), Requests::read(&client).await);
        rep.raw_full_detail
            .push((c, process::CpuMeter::delta(&cpu0, &cpu1), req1.since(&req0)));
        say(format!(
            "raw server-side apply of {} objects + {} minimal statuses at concurrency {c}: {:.2}s",
            raw_objects.len(),
            statuses.len(),
            took.as_secs_f64(),
        ));
        rep.raw_full.push((c, took.as_secs_f64()));
        cluster::delete_managed(&client, &names).await;
        cluster::delete_apps(&client, &names, RAW_STATUS_APP).await;
    }

    // 3. Cold convergence.
    let apps_api = |ns: &str| Api::<AppNetwork>::namespaced(client.clone(), ns);
    let apps: Vec<AppNetwork> = futures::stream::iter(names.iter())
        .map(|ns| {
            let api = apps_api(ns);
            async move { api.create(&PostParams::default(), &cluster::shop(ns)).await }
        })
        .buffered(8)
        .try_collect()
        .await
        .expect("create AppNetworks");
    let cb: ClusterBaseline = Api::<ClusterBaseline>::all(client.clone())
        .create(&PostParams::default(), &cluster::cluster_baseline())
        .await
        .expect("create ClusterBaseline");
    let expected: HashMap<Key, tierflow::render::Object> = names
        .iter()
        .zip(&apps)
        .flat_map(|(ns, app)| cluster::expected_objects(ns, app, Some(&cb), true, &env))
        .map(|o| (cluster::key_of(&o), o))
        .collect();
    rep.objects = expected.len();
    let mut tracker = Tracker::start(&client).await;
    assert!(
        tracker.store.is_empty(),
        "managed policies exist before the operator starts"
    );
    assert!(
        quiesce(&client, Duration::from_secs(1), quiet_limit).await,
        "the cluster keeps writing before the operator starts"
    );
    say(format!(
        "{} AppNetworks and 1 ClusterBaseline in place; starting the operator (load {})",
        apps.len(),
        report::loadavg()
    ));
    let statuses = ReadyWatch::start(&client);
    let before = Snapshot::read(&client).await;
    let meter_cp = process::CpuMeter::new(&cluster_dir, None);
    let cpu0 = meter_cp.read();
    let t0 = Instant::now();
    let mut op = cfg.start_operator("operator.log");
    let fds = process::FdSampler::start(op.pid());
    // BENCH_PERF=1: profile the operator during cold convergence (perturbs the numbers).
    let perf = (std::env::var("BENCH_PERF").as_deref() == Ok("1"))
        .then(|| process::Perf::start(op.pid(), &cfg.out.join("perf-cold.data")))
        .flatten();
    let ready = ready_poller(&op);
    let mut ok: HashSet<Key> = HashSet::new();
    let deadline = t0 + cfg.cold_timeout;
    let mut converged = None;
    let mut first_write = None;
    // Watch events (creations and updates) per role, to count writes that changed objects.
    let (mut tier_events, mut baseline_events) = (0u64, 0u64);
    while let Some(s) = tracker.next(deadline).await {
        first_write.get_or_insert(s.at);
        if s.key.1 == BASELINE_NAME {
            baseline_events += 1;
        } else {
            tier_events += 1;
        }
        let Some(want) = expected.get(&s.key) else {
            continue;
        };
        let live = serde_json::from_value::<kube::api::DynamicObject>(s.obj.clone())
            .ok()
            .map(|o| tierflow::apply::Owned::of(tierflow::render::ObjectKind::NetworkPolicy, &o));
        if s.applied && live.is_some_and(|l| tierflow::apply::up_to_date(want, &l)) {
            ok.insert(s.key.clone());
        } else {
            ok.remove(&s.key);
        }
        if ok.len() == expected.len() {
            converged = Some(s.at);
            break;
        }
    }
    let at_convergence = Snapshot::read(&client).await;
    rep.cold_operator_counted_writes = operator_writes(&op);
    if let Some(p) = perf {
        p.stop();
        say(format!(
            "profile of the operator during cold convergence: {} (perf report -i ...)",
            cfg.out.join("perf-cold.data").display()
        ));
    }
    let mut cpu1 = meter_cp.read();
    cpu1.push(("operator".into(), op.cpu_seconds()));
    rep.cold_cpu = Some(process::CpuMeter::delta(&cpu0, &cpu1));
    rep.cold_max_fds = Some(fds.stop());
    let (hwm, rss) = op.memory_kib();
    rep.cold_rss_kib = Some((hwm, rss));
    op.assert_running();
    match converged {
        Some(at) => {
            let secs = (at - t0).as_secs_f64();
            rep.cold = Some(secs);
            say(format!(
                "cold convergence: {} objects in {:.2}s",
                expected.len(),
                secs
            ));
        }
        None => {
            let missing: Vec<String> = expected
                .keys()
                .filter(|k| !ok.contains(*k))
                .take(5)
                .map(|(ns, n)| format!("{ns}/{n}"))
                .collect();
            say(format!(
                "cold convergence: NOT reached in {:?}; {} of {} objects right; e.g. wrong or missing: {}",
                cfg.cold_timeout,
                ok.len(),
                expected.len(),
                missing.join(", ")
            ));
            if let Some(k) = expected.keys().find(|k| !ok.contains(*k)) {
                say(format!(
                    "  want {}\n  have {}",
                    expected[k].json(),
                    tracker.store.get(k).cloned().unwrap_or(Value::Null)
                ));
            }
        }
    }
    rep.cold_events = Some((tier_events, baseline_events));
    if let Some(f) = first_write {
        rep.cold_first_object = Some((f - t0).as_secs_f64());
    }
    if let Some(p) = ready {
        if let Ok(Some(at)) = p.await {
            rep.cold_synced = Some(at.saturating_duration_since(t0.into_std()).as_secs_f64());
        }
    }
    rep.cold_requests = Some(at_convergence.requests.since(&before.requests));
    rep.cold_operator_requests = Some(at_convergence.operator_requests(&before));
    let settled = quiesce(&client, Duration::from_secs(2), Duration::from_secs(120)).await;
    let after = Snapshot::read(&client).await;
    rep.cold_settle_requests = Some(after.requests.since(&at_convergence.requests));
    rep.cold_operator_requests_until_quiet = Some(after.operator_requests(&before));
    rep.cold_operator_counted_writes_until_quiet = operator_writes(&op);
    rep.cold_settled = settled;
    rep.app_networks = apps.len();
    say(format!(
        "operator requests until converged: {} ({} until quiet); operator-counted writes {:?}",
        rep.cold_operator_requests
            .as_ref()
            .map(Requests::total)
            .unwrap_or(0),
        rep.cold_operator_requests_until_quiet
            .as_ref()
            .map(Requests::total)
            .unwrap_or(0),
        rep.cold_operator_counted_writes,
    ));
    tracker.drain();
    // Objects first, statuses after: when the last AppNetwork's status said Ready.
    if let Some(at) = statuses
        .all_ready(apps.len(), Instant::now() + Duration::from_secs(30))
        .await
    {
        rep.cold_ready = Some((at - t0).as_secs_f64());
    }
    let apps_ready = Api::<AppNetwork>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|a| {
                    a.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
                })
                .count()
        })
        .unwrap_or(0);
    rep.apps_ready = Some(apps_ready);
    say(format!(
        "settled (writes after convergence: {}); {apps_ready}/{} AppNetworks Ready",
        rep.cold_settle_requests
            .as_ref()
            .map(Requests::writes)
            .unwrap_or(0),
        apps.len()
    ));

    // 4. Hot paths, one sample at a time.
    let limit = cfg.sample_timeout;
    let pause = Duration::from_millis(50);
    let api_tier = "tierflow-shop-api";
    let frontend = "tierflow-shop-frontend";
    assert!(expected.contains_key(&(names[0].clone(), api_tier.to_string())));
    assert!(expected.contains_key(&(names[0].clone(), frontend.to_string())));

    say(format!(
        "hot path: AppNetwork spec change ({} samples)",
        cfg.samples
    ));
    let mut spec_change = Samples::default();
    for k in 0..cfg.samples {
        let ns = &names[k % names.len()];
        let port = 10000 + k as i64;
        let mut flows = cluster::shop(ns).spec.flows;
        if let Some(p) = flows[3].ports.as_mut().and_then(|p| p.first_mut()) {
            p.port = Some(port as i32);
        }
        let body = json!({"spec": {"flows": flows}});
        tracker.drain();
        let sent = Instant::now();
        apps_api(ns)
            .patch(APP_NAME, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .expect("patch AppNetwork");
        let responded = Instant::now();
        let key = (ns.clone(), api_tier.to_string());
        let seen = tracker
            .wait_for(responded + limit, |s| {
                s.applied && s.key == key && has_port(&s.obj, port)
            })
            .await;
        spec_change.add(sent, responded, seen, limit);
        tokio::time::sleep(pause).await;
    }
    rep.spec_change = spec_change;

    say(format!("hot path: new namespace ({} samples)", cfg.samples));
    let mut new_ns = Samples::default();
    let ns_api: Api<Namespace> = Api::all(client.clone());
    for k in 0..cfg.samples {
        let name = format!("bench-new-{k:04}");
        tracker.drain();
        let sent = Instant::now();
        ns_api
            .create(
                &PostParams::default(),
                &cluster::namespace(&name, &[(BENCH_LABEL, "true")]),
            )
            .await
            .expect("create namespace");
        let responded = Instant::now();
        let seen = tracker
            .wait_for(responded + limit, |s| {
                s.applied && s.key.0 == name && s.key.1 == BASELINE_NAME
            })
            .await;
        new_ns.add(sent, responded, seen, limit);
        tokio::time::sleep(pause).await;
    }
    rep.ns_baseline = new_ns;

    say(format!(
        "hot path: hand-deleted policy ({} samples)",
        cfg.samples
    ));
    let mut drift = Samples::default();
    let np = cluster::np_resource();
    for k in 0..cfg.samples {
        let ns = &names[k % names.len()];
        let key = (ns.clone(), frontend.to_string());
        tracker.drain();
        let old = tracker
            .store
            .get(&key)
            .and_then(|o| uid(o).map(str::to_string));
        let sent = Instant::now();
        Api::<DynamicObject>::namespaced_with(client.clone(), ns, &np)
            .delete(frontend, &Default::default())
            .await
            .expect("delete policy");
        let responded = Instant::now();
        let seen = tracker
            .wait_for(responded + limit, |s| {
                s.applied && s.key == key && uid(&s.obj) != old.as_deref()
            })
            .await;
        drift.add(sent, responded, seen, limit);
        tokio::time::sleep(pause).await;
    }
    rep.drift = drift;
    for (what, s) in [
        ("spec change", &rep.spec_change),
        ("new namespace", &rep.ns_baseline),
        ("drift repair", &rep.drift),
    ] {
        say(format!(
            "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, timeouts {}",
            percentile(&s.ms, 50.0).unwrap_or(f64::NAN),
            percentile(&s.ms, 99.0).unwrap_or(f64::NAN),
            percentile(&s.ms, 100.0).unwrap_or(f64::NAN),
            s.timeouts
        ));
    }

    // 5. Idle.
    op.assert_running();
    rep.idle_quiesced = quiesce(
        &client,
        Duration::from_secs(3),
        Duration::from_secs(60 + cfg.samples as u64 * 3 / 10),
    )
    .await;
    tracker.drain();
    rep.load_before_idle = report::loadavg();
    say(format!(
        "idle window of {:?} (quiet before: {}; load {})",
        cfg.idle, rep.idle_quiesced, rep.load_before_idle
    ));
    let r0 = Requests::read(&client).await;
    let cpu0 = op.cpu_seconds();
    let ow0 = operator_writes(&op);
    let events0 = tracker.events;
    tokio::time::sleep(cfg.idle).await;
    let r1 = Requests::read(&client).await;
    let cpu1 = op.cpu_seconds();
    let ow1 = operator_writes(&op);
    tracker.drain();
    let idle = r1.since(&r0);
    rep.idle_writes = Some(idle.writes());
    rep.idle_cpu = Some(cpu1 - cpu0);
    rep.idle_policy_events = Some(tracker.events - events0);
    rep.idle_operator_writes = ow0.zip(ow1).map(|(a, b)| b.saturating_sub(a));
    rep.idle_requests = Some(idle);
    say(format!(
        "idle: {} API writes, {:.3} CPU seconds",
        rep.idle_writes.unwrap_or(0),
        cpu1 - cpu0
    ));

    // 6. Memory, at N namespaces (plus the samples' new namespaces).
    let (hwm, rss) = op.memory_kib();
    rep.rss_peak_kib = Some(hwm);
    rep.rss_steady_kib = Some(rss);
    rep.memory_steady = Some(op.memory_breakdown());
    say(format!(
        "memory at steady state: {}",
        rep.memory_steady.clone().unwrap_or_default()
    ));
    let namespaces_now = Api::<Namespace>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(0);
    // What the operator caches: namespaces, AppNetworks, managed policies, ClusterBaselines
    // (plus a few CRDs and endpoints, not counted).
    rep.cached_objects = Some(namespaces_now + apps.len() + tracker.store.len() + 1);
    rep.namespaces_now = Some(namespaces_now);
    say(format!(
        "memory: VmHWM {:.1} MiB, VmRSS {:.1} MiB",
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0
    ));
    rep.operator_log_warnings = std::fs::read_to_string(&op.log)
        .map(|l| {
            l.lines()
                .filter(|x| x.contains("WARN") || x.contains("ERROR"))
                .count()
        })
        .ok();
    op.stop();

    // 7. A restart on the converged cluster: what the caches alone take (no writes are due,
    //    so no burst of requests), and that a restart writes nothing.
    {
        let before = Requests::read(&client).await;
        let started = std::time::Instant::now();
        let mut warm = cfg.start_operator("operator-restart.log");
        match warm.metrics_addr.clone() {
            Some(addr) => {
                let watch = tokio::task::spawn_blocking(move || {
                    process::watch_restart(
                        &addr,
                        started,
                        Duration::from_secs(3),
                        Duration::from_secs(120),
                    )
                });
                // The API server's write count (every client) over the same seconds.
                quiesce(&client, Duration::from_secs(3), Duration::from_secs(60)).await;
                let r = watch.await.ok();
                if let Some(r) = r {
                    say(format!(
                        "restart: ready after {:?}, {} writes (the last after {:?}), {} reconciles (the last after {:?})",
                        r.ready, r.writes, r.last_write, r.reconciles, r.last_reconcile
                    ));
                }
                rep.restart_watch = r;
            }
            None => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                quiesce(&client, Duration::from_secs(3), Duration::from_secs(60)).await;
            }
        }
        warm.assert_running();
        let (_, rss) = warm.memory_kib();
        rep.memory_restart = Some(warm.memory_breakdown());
        let writes = Requests::read(&client).await.since(&before).writes();
        rep.restart = Some((rss, writes));
        say(format!(
            "restart on the converged cluster: RSS {:.1} MiB, {writes} API writes",
            rss as f64 / 1024.0
        ));
        warm.stop();
    }

    // 8. The raw cost of the status writes the operator's design adds (one per AppNetwork):
    //    the statuses it wrote, server-side applied by the minimal loop onto fresh copies of
    //    the AppNetworks, at the best raw concurrency (the operator is stopped by now).
    let c = rep.raw_best().map(|r| r.0).unwrap_or(8);
    let statuses: Vec<(String, Value)> = Api::<AppNetwork>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list AppNetworks")
        .items
        .into_iter()
        .filter(|a| a.metadata.name.as_deref() == Some(APP_NAME))
        .filter_map(|a| {
            let ns = a.metadata.namespace.clone()?;
            let st = serde_json::to_value(a.status.as_ref()?).ok()?;
            Some((ns, st))
        })
        .collect();
    let copies: Vec<AppNetwork> = futures::stream::iter(statuses.iter())
        .map(|(ns, _)| {
            let api = apps_api(ns);
            let mut app = cluster::shop(ns);
            app.metadata.name = Some(RAW_STATUS_APP.to_string());
            async move { api.create(&PostParams::default(), &app).await }
        })
        .buffered(8)
        .try_collect()
        .await
        .expect("create AppNetwork copies");
    quiesce(&client, Duration::from_secs(1), Duration::from_secs(60)).await;
    let raw_client = cluster::client(&cfg.kubeconfig).await;
    let pp = PatchParams::apply("tierflow-bench-raw").force();
    let started = std::time::Instant::now();
    futures::stream::iter(statuses.iter())
        .map(|(ns, st)| {
            let api = Api::<AppNetwork>::namespaced(raw_client.clone(), ns);
            let body = json!({
                "apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork", "status": st,
            });
            let pp = pp.clone();
            async move {
                api.patch_status(RAW_STATUS_APP, &pp, &Patch::Apply(&body))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(c)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("raw status apply");
    let took = started.elapsed().as_secs_f64();
    rep.raw_status = Some((copies.len(), c, took));
    say(format!(
        "raw server-side apply of {} AppNetwork statuses at concurrency {c}: {took:.2}s",
        copies.len()
    ));

    rep.write(&cfg);
}

/// The copies of the AppNetwork the raw status loop writes to.
const RAW_STATUS_APP: &str = "raw-status";

/// The AppNetwork's name in every bench namespace.
const APP_NAME: &str = cluster::APP;
