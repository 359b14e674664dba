//! `target/bench/results.json` (the keys BENCHMARKS.md documents, nothing else),
//! `target/bench/details.json` (everything behind them) and `target/bench/results.md`.

use std::process::Command;

use serde_json::{json, Map, Value};

use crate::cluster::Requests;
use crate::{percentile, Cfg, Samples};

/// Everything measured.
#[derive(Default)]
pub struct Report {
    started: String,
    load_start: String,
    /// Operator RSS on a cluster with nothing to manage (KiB).
    pub rss_empty_kib: Option<u64>,
    /// (concurrency, seconds) of the raw apply loop.
    pub raw: Vec<(usize, f64)>,
    /// (VmRSS KiB, API writes) of an operator restarted on the converged cluster.
    pub restart: Option<(u64, u64)>,
    /// (concurrency, seconds) of the raw loop applying the objects and one minimal status per
    /// AppNetwork.
    pub raw_full: Vec<(usize, f64)>,
    /// (concurrency, CPU seconds by process, requests) of each raw run with statuses.
    pub raw_full_detail: Vec<(usize, Value, Requests)>,
    /// What the operator restarted on the converged cluster did (its own endpoints).
    pub restart_watch: Option<crate::process::Restart>,
    /// AppNetworks of the workload.
    pub app_networks: usize,
    /// Namespaces in the cluster when the steady RSS was read.
    pub namespaces_now: Option<usize>,
    /// The operator's requests from its start to convergence (API server counters; see
    /// `Snapshot::operator_requests`).
    pub cold_operator_requests: Option<Requests>,
    /// The same until the cluster was quiet after convergence.
    pub cold_operator_requests_until_quiet: Option<Requests>,
    /// The operator's own write counter at convergence.
    pub cold_operator_counted_writes: Option<u64>,
    /// The operator's own write counter once the cluster was quiet after convergence.
    pub cold_operator_counted_writes_until_quiet: Option<u64>,
    /// (statuses, concurrency, seconds) of the raw status apply loop.
    pub raw_status: Option<(usize, usize, f64)>,
    /// (concurrency, CPU seconds by process, requests) of each raw run.
    pub raw_detail: Vec<(usize, Value, Requests)>,
    /// CPU seconds by process from operator start to convergence.
    pub cold_cpu: Option<Value>,
    /// Watch events on (tier policies, baselines) until convergence.
    pub cold_events: Option<(u64, u64)>,
    /// Most file descriptors (API connections, mostly) the operator held during cold convergence.
    pub cold_max_fds: Option<usize>,
    /// Operator (VmHWM, VmRSS) at convergence, KiB.
    pub cold_rss_kib: Option<(u64, u64)>,
    /// Objects the operator must produce.
    pub objects: usize,
    /// Cold convergence, seconds from operator start.
    pub cold: Option<f64>,
    /// Every AppNetwork's status Ready for its generation, seconds from operator start.
    pub cold_ready: Option<f64>,
    /// First managed object seen, seconds from operator start.
    pub cold_first_object: Option<f64>,
    /// Operator /readyz (caches synced), seconds from operator start.
    pub cold_synced: Option<f64>,
    /// API requests from operator start to convergence.
    pub cold_requests: Option<Requests>,
    /// API requests from convergence until the cluster was quiet.
    pub cold_settle_requests: Option<Requests>,
    /// Whether it got quiet after convergence.
    pub cold_settled: bool,
    /// AppNetworks Ready=True after convergence.
    pub apps_ready: Option<usize>,
    /// AppNetwork spec change → tier policy updated.
    pub spec_change: Samples,
    /// New namespace → baseline present.
    pub ns_baseline: Samples,
    /// Hand-deleted policy → restored.
    pub drift: Samples,
    /// Whether the cluster was quiet before the idle window.
    pub idle_quiesced: bool,
    /// Load average before the idle window.
    pub load_before_idle: String,
    /// Writes during the idle window (every client: the bench makes none).
    pub idle_writes: Option<u64>,
    /// Operator CPU seconds during the idle window.
    pub idle_cpu: Option<f64>,
    /// Managed-policy watch events during the idle window.
    pub idle_policy_events: Option<u64>,
    /// The operator's own count of its writes during the idle window.
    pub idle_operator_writes: Option<u64>,
    /// Every request during the idle window.
    pub idle_requests: Option<Requests>,
    /// VmHWM (KiB).
    pub rss_peak_kib: Option<u64>,
    /// VmRSS after the idle window (KiB).
    pub rss_steady_kib: Option<u64>,
    /// Where the operator's resident memory is (`Operator::memory_breakdown`): on an empty
    /// cluster, after the idle window, and after the restart.
    pub memory_empty: Option<Value>,
    /// See `memory_empty`.
    pub memory_steady: Option<Value>,
    /// See `memory_empty`.
    pub memory_restart: Option<Value>,
    /// Objects in the operator's caches.
    pub cached_objects: Option<usize>,
    /// WARN / ERROR lines in the operator's log.
    pub operator_log_warnings: Option<usize>,
}

/// `/proc/loadavg`'s three load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cmd(program: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(program).args(args).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let commit = cmd("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    let dirty = cmd("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "ram_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "commit": commit,
        "working_tree_dirty": dirty,
        "kernel": cmd("uname", &["-r"]).unwrap_or_default(),
        "rustc": cmd("rustc", &["--version"]).unwrap_or_default(),
    })
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn num(v: Option<f64>, digits: i32) -> Value {
    v.filter(|x| x.is_finite())
        .map(|x| json!(round(x, digits)))
        .unwrap_or(Value::Null)
}

fn samples_json(s: &Samples) -> Value {
    json!({
        "n": s.ms.len(),
        "timeouts": s.timeouts,
        "p50_ms": num(percentile(&s.ms, 50.0), 1),
        "p90_ms": num(percentile(&s.ms, 90.0), 1),
        "p99_ms": num(percentile(&s.ms, 99.0), 1),
        "max_ms": num(percentile(&s.ms, 100.0), 1),
        "from_send_p50_ms": num(percentile(&s.from_send_ms, 50.0), 1),
        "from_send_p99_ms": num(percentile(&s.from_send_ms, 99.0), 1),
        // In the order taken: an outlier's position says what it met (the first sample after
        // another hot path, a periodic task).
        "samples_ms": s.ms.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<f64>>(),
    })
}

fn mib(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| k as f64 / 1024.0)
}

impl Report {
    /// Starts the clock of the report.
    pub fn new(_cfg: &Cfg) -> Report {
        Report {
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            load_start: loadavg(),
            ..Report::default()
        }
    }

    /// The fastest raw run: (concurrency, seconds).
    pub fn raw_best(&self) -> Option<(usize, f64)> {
        self.raw.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The fastest raw run with statuses: (concurrency, seconds).
    pub fn raw_full_best(&self) -> Option<(usize, f64)> {
        self.raw_full
            .iter()
            .copied()
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Writes results.json, details.json and results.md into `cfg.out`.
    pub fn write(&self, cfg: &Cfg) {
        let micro: Value = std::fs::read_to_string(cfg.out.join("micro.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let micro_num = |k: &str, d: i32| num(micro.get(k).and_then(Value::as_f64), d);
        let raw = self.raw_best().map(|r| r.1);
        let ratio = self.cold.zip(raw).map(|(c, r)| c / r);
        let raw_full = self.raw_full_best().map(|r| r.1);
        let ratio_full = self.cold.zip(raw_full).map(|(c, r)| c / r);
        // Objects + AppNetworks + ClusterBaselines (one), each written once, + 5 %.
        let budget = ((self.objects + self.app_networks + 1) as f64 * 1.05).floor() as u64;
        let lists_watches = |r: &Requests| r.count(|v| v == "LIST" || v.starts_with("WATCH"));
        let per_ns = |kib: Option<u64>| match (kib, self.rss_empty_kib, self.namespaces_now) {
            (Some(s), Some(e), Some(n)) if n > 0 => Some(s.saturating_sub(e) as f64 / n as f64),
            _ => None,
        };
        let restart_writes = self
            .restart_watch
            .map(|r| r.writes)
            .or(self.restart.map(|r| r.1));
        let results = json!({
            "raw_apply_s": num(raw, 3),
            "raw_full_apply_s": num(raw_full, 3),
            "cold_converge_s": num(self.cold, 3),
            "cold_ratio": num(ratio, 3),
            "cold_ratio_full": num(ratio_full, 3),
            "cold_ready_s": num(self.cold_ready, 3),
            "cold_ready_ratio_full": num(self.cold_ready.zip(raw_full).map(|(c, r)| c / r), 3),
            "api_requests_cold": self.cold_operator_requests.as_ref().map(Requests::total),
            "api_requests_cold_until_quiet": self.cold_operator_requests_until_quiet.as_ref().map(Requests::total),
            "api_requests_budget": budget,
            "max_open_fds": self.cold_max_fds,
            "objects": self.objects,
            "namespaces": cfg.namespaces,
            "spec_change_p50_ms": num(percentile(&self.spec_change.ms, 50.0), 1),
            "spec_change_p99_ms": num(percentile(&self.spec_change.ms, 99.0), 1),
            "ns_baseline_p50_ms": num(percentile(&self.ns_baseline.ms, 50.0), 1),
            "ns_baseline_p99_ms": num(percentile(&self.ns_baseline.ms, 99.0), 1),
            "drift_repair_p50_ms": num(percentile(&self.drift.ms, 50.0), 1),
            "drift_repair_p99_ms": num(percentile(&self.drift.ms, 99.0), 1),
            "idle_writes": self.idle_writes,
            "idle_cpu_s": num(self.idle_cpu, 3),
            "rss_peak_mib": num(mib(self.rss_peak_kib), 1),
            "rss_steady_mib": num(mib(self.rss_steady_kib), 1),
            "rss_per_namespace_kib": num(per_ns(self.rss_steady_kib), 1),
            "restart_converged_s": num(
                self.restart_watch
                    .and_then(|r| r.converged())
                    .map(|d| d.as_secs_f64()),
                3
            ),
            "restart_writes": restart_writes,
            "render_small_us": micro_num("render_small_us", 2),
            "render_large_us": micro_num("render_large_us", 1),
            "simulate_1000x300_ms": micro_num("simulate_1000x300_ms", 1),
            "verify_50x200_ms": micro_num("verify_50x200_ms", 1),
            "explain_50x200_ms": micro_num("explain_50x200_ms", 1),
            "across_check_per_app_ms": micro_num("across_check_per_app_chunk_ms", 2),
        });
        let per_object_kib = match (self.rss_steady_kib, self.rss_empty_kib, self.cached_objects) {
            (Some(s), Some(e), Some(n)) if n > 0 => Some((s.saturating_sub(e)) as f64 / n as f64),
            _ => None,
        };
        let details = json!({
            "date": self.started,
            "machine": machine(),
            "mode": cfg.mode,
            "load_at_start": self.load_start,
            "load_before_idle": self.load_before_idle,
            "settings": {
                "namespaces": cfg.namespaces,
                "samples_per_hot_path": cfg.samples,
                "idle_window_s": cfg.idle.as_secs(),
                "raw_concurrency": cfg.concurrency,
                "operator_rust_log": cfg.rust_log,
            },
            "raw_apply_s_by_concurrency": self.raw.iter().map(|(c, s)| (c.to_string(), json!(round(*s, 3)))).collect::<Map<String, Value>>(),
            "raw_best_concurrency": self.raw_best().map(|r| r.0),
            "raw_status_apply": self.raw_status.map(|(n, c, secs)| json!({
                "statuses": n,
                "concurrency": c,
                "seconds": round(secs, 3),
            })),
            "cold_ratio_vs_raw_policies_plus_statuses": num(
                self.cold.zip(raw).zip(self.raw_status).map(|((cold, r), (_, _, st))| cold / (r + st)),
                3,
            ),
            "raw_full_apply_s_by_concurrency": self.raw_full.iter().map(|(c, s)| (c.to_string(), json!(round(*s, 3)))).collect::<Map<String, Value>>(),
            "raw_full_best_concurrency": self.raw_full_best().map(|r| r.0),
            "raw_full_runs": self.raw_full_detail.iter().map(|(c, cpu, req)| json!({
                "concurrency": c,
                "cpu_s": cpu,
                "requests": req.to_json(),
                "writes": req.writes(),
            })).collect::<Vec<_>>(),
            "raw_runs": self.raw_detail.iter().map(|(c, cpu, req)| json!({
                "concurrency": c,
                "cpu_s": cpu,
                "requests": req.to_json(),
                "writes": req.writes(),
            })).collect::<Vec<_>>(),
            "cold": {
                "converge_s": num(self.cold, 3),
                "operator_ready_s": num(self.cold_synced, 3),
                "first_object_s": num(self.cold_first_object, 3),
                "requests_until_converged": self.cold_requests.as_ref().map(Requests::to_json),
                "writes_until_converged": self.cold_requests.as_ref().map(Requests::writes),
                "operator_requests_until_converged": self.cold_operator_requests.as_ref().map(Requests::to_json),
                "operator_requests_until_quiet": self.cold_operator_requests_until_quiet.as_ref().map(Requests::to_json),
                "operator_lists_watches_until_converged": self.cold_operator_requests.as_ref().map(lists_watches),
                "operator_writes_until_converged": self.cold_operator_requests.as_ref().map(Requests::writes),
                "operator_counted_writes_until_converged": self.cold_operator_counted_writes,
                "operator_counted_writes_until_quiet": self.cold_operator_counted_writes_until_quiet,
                "api_requests_budget": budget,
                "app_networks": self.app_networks,
                "requests_after_converged": self.cold_settle_requests.as_ref().map(Requests::to_json),
                "quiet_after": self.cold_settled,
                "cpu_s_until_converged": self.cold_cpu,
                "operator_max_open_fds": self.cold_max_fds,
                "policy_events_until_converged": self.cold_events.map(|(t, b)| json!({"tier": t, "baseline": b})),
                "operator_rss_mib_at_convergence": self.cold_rss_kib.map(|(_, r)| round(r as f64 / 1024.0, 1)),
                "appnetworks_ready": self.apps_ready,
            },
            "spec_change": samples_json(&self.spec_change),
            "ns_baseline": samples_json(&self.ns_baseline),
            "drift_repair": samples_json(&self.drift),
            "idle": {
                "quiet_before": self.idle_quiesced,
                "writes": self.idle_writes,
                "operator_counted_writes": self.idle_operator_writes,
                "cpu_s": num(self.idle_cpu, 3),
                "managed_policy_events": self.idle_policy_events,
                "requests": self.idle_requests.as_ref().map(Requests::to_json),
            },
            "memory": {
                "rss_empty_cluster_mib": num(mib(self.rss_empty_kib), 1),
                "rss_peak_mib": num(mib(self.rss_peak_kib), 1),
                "rss_steady_mib": num(mib(self.rss_steady_kib), 1),
                "cached_objects": self.cached_objects,
                "kib_per_cached_object": num(per_object_kib, 2),
                "rss_after_restart_mib": num(mib(self.restart.map(|r| r.0)), 1),
                "writes_after_restart": self.restart.map(|r| r.1),
                "namespaces_in_cluster": self.namespaces_now,
                "rss_steady_kib_per_namespace": num(per_ns(self.rss_steady_kib), 1),
                "rss_peak_kib_per_namespace": num(per_ns(self.rss_peak_kib), 1),
                "rss_after_restart_kib_per_namespace": num(per_ns(self.restart.map(|r| r.0)), 1),
                "breakdown_empty": self.memory_empty,
                "breakdown_steady": self.memory_steady,
                "breakdown_restart": self.memory_restart,
            },
            "restart": {
                "ready_s": num(self.restart_watch.and_then(|r| r.ready).map(|d| d.as_secs_f64()), 3),
                "last_write_s": num(self.restart_watch.and_then(|r| r.last_write).map(|d| d.as_secs_f64()), 3),
                "converged_s": num(self.restart_watch.and_then(|r| r.converged()).map(|d| d.as_secs_f64()), 3),
                "operator_counted_writes": self.restart_watch.map(|r| r.writes),
                "reconciles": self.restart_watch.map(|r| r.reconciles),
                "last_reconcile_s": num(self.restart_watch.and_then(|r| r.last_reconcile).map(|d| d.as_secs_f64()), 3),
                "api_server_writes_all_clients": self.restart.map(|r| r.1),
            },
            "micro": micro,
            "cache_memory_per_object": std::fs::read_to_string(cfg.out.join("memory.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok()),
            "operator_log_warn_error_lines": self.operator_log_warnings,
        });
        let write = |name: &str, text: String| {
            let p = cfg.out.join(name);
            std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            eprintln!("[bench] wrote {}", p.display());
        };
        write(
            "results.json",
            serde_json::to_string_pretty(&results).unwrap_or_default() + "\n",
        );
        write(
            "details.json",
            serde_json::to_string_pretty(&details).unwrap_or_default() + "\n",
        );
        write("results.md", markdown(&results, &details));
        println!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "n/a".into(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// `{"a": 1, "b": 2}` as `a 1, b 2`.
fn compact(v: &Value) -> String {
    match v.as_object() {
        Some(m) => m
            .iter()
            .map(|(k, v)| format!("{k} {}", show(v)))
            .collect::<Vec<_>>()
            .join(", "),
        None => show(v),
    }
}

fn markdown(r: &Value, d: &Value) -> String {
    let g = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
    let f = |k: &str| g(k).as_f64();
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "n/a",
    };
    let m = &d["machine"];
    let n = g("namespaces").as_u64().unwrap_or(0);
    let raw_by = d["raw_runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .map(|r| {
                    let secs = d["raw_apply_s_by_concurrency"][show(&r["concurrency"])].clone();
                    format!("c={}: {}s", show(&r["concurrency"]), show(&secs))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    // The goals of issue 13 (hot-path p99 and memory: at N = 1,000).
    let p99_goal = |k: &str| verdict(f(k).map(|v| v <= 50.0));
    let at_1000 = |ok: Option<bool>| {
        if n >= 1000 {
            verdict(ok)
        } else {
            "n/a (N < 1,000)"
        }
    };
    let raw_full_by = d["raw_full_apply_s_by_concurrency"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(c, s)| format!("c={c}: {}s", show(s)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let budget = g("api_requests_budget").as_u64();
    let lists_watches = d["cold"]["operator_lists_watches_until_converged"].as_u64();
    let requests_ok = g("api_requests_cold")
        .as_u64()
        .zip(budget)
        .map(|(r, b)| r.saturating_sub(lists_watches.unwrap_or(0)) <= b);
    let rows: Vec<(String, String, &str, &str)> = vec![
        (
            "`raw_apply_s`".into(),
            format!("{} ({raw_by})", show(&g("raw_apply_s"))),
            "",
            "",
        ),
        (
            "`raw_full_apply_s`".into(),
            format!(
                "{} (policies + one minimal status per AppNetwork, same loop: {raw_full_by})",
                show(&g("raw_full_apply_s"))
            ),
            "",
            "",
        ),
        (
            "`cold_converge_s`".into(),
            show(&g("cold_converge_s")),
            "",
            "",
        ),
        (
            "`cold_ratio`".into(),
            show(&g("cold_ratio")),
            "≤ 1.6",
            verdict(f("cold_ratio").map(|v| v <= 1.6)),
        ),
        (
            "`cold_ratio_full`".into(),
            show(&g("cold_ratio_full")),
            "≤ 1.2",
            verdict(f("cold_ratio_full").map(|v| v <= 1.2)),
        ),
        (
            "`cold_ready_s` (every status Ready) / `cold_ready_ratio_full`".into(),
            format!(
                "{} / {}",
                show(&g("cold_ready_s")),
                show(&g("cold_ready_ratio_full"))
            ),
            "",
            "",
        ),
        (
            "`objects` / `namespaces`".into(),
            format!("{} / {}", show(&g("objects")), n),
            "",
            "",
        ),
        (
            "`api_requests_cold`".into(),
            format!(
                "{} ({} of them LISTs and WATCHes; {} until the cluster was quiet after convergence)",
                show(&g("api_requests_cold")),
                lists_watches.map_or("n/a".into(), |v| v.to_string()),
                show(&g("api_requests_cold_until_quiet")),
            ),
            "≤ `api_requests_budget` + LISTs and WATCHes",
            verdict(requests_ok),
        ),
        (
            "`api_requests_budget`".into(),
            format!(
                "{} (1.05 × (objects + AppNetworks + 1 ClusterBaseline))",
                show(&g("api_requests_budget"))
            ),
            "",
            "",
        ),
        (
            "`max_open_fds`".into(),
            show(&g("max_open_fds")),
            "",
            "",
        ),
        (
            "`spec_change_p50_ms`".into(),
            show(&g("spec_change_p50_ms")),
            "",
            "",
        ),
        (
            "`spec_change_p99_ms`".into(),
            show(&g("spec_change_p99_ms")),
            "≤ 50",
            p99_goal("spec_change_p99_ms"),
        ),
        (
            "`ns_baseline_p50_ms`".into(),
            show(&g("ns_baseline_p50_ms")),
            "",
            "",
        ),
        (
            "`ns_baseline_p99_ms`".into(),
            show(&g("ns_baseline_p99_ms")),
            "≤ 50",
            p99_goal("ns_baseline_p99_ms"),
        ),
        (
            "`drift_repair_p50_ms`".into(),
            show(&g("drift_repair_p50_ms")),
            "",
            "",
        ),
        (
            "`drift_repair_p99_ms`".into(),
            show(&g("drift_repair_p99_ms")),
            "≤ 50",
            p99_goal("drift_repair_p99_ms"),
        ),
        (
            "`idle_writes`".into(),
            format!(
                "{} in {} s",
                show(&g("idle_writes")),
                show(&d["settings"]["idle_window_s"])
            ),
            "0",
            verdict(g("idle_writes").as_u64().map(|v| v == 0)),
        ),
        ("`idle_cpu_s`".into(), show(&g("idle_cpu_s")), "", ""),
        (
            "`rss_peak_mib`".into(),
            show(&g("rss_peak_mib")),
            "≤ 64 at N = 1,000",
            at_1000(f("rss_peak_mib").map(|v| v <= 64.0)),
        ),
        (
            "`rss_steady_mib`".into(),
            format!(
                "{} ({} KiB per cached object above the empty-cluster {} MiB, {} objects)",
                show(&g("rss_steady_mib")),
                show(&d["memory"]["kib_per_cached_object"]),
                show(&d["memory"]["rss_empty_cluster_mib"]),
                show(&d["memory"]["cached_objects"])
            ),
            "≤ 48 at N = 1,000",
            at_1000(f("rss_steady_mib").map(|v| v <= 48.0)),
        ),
        (
            "`rss_per_namespace_kib`".into(),
            format!(
                "{} (steady RSS above the empty cluster's, over the {} namespaces then in the cluster; peak: {}, after a restart: {})",
                show(&g("rss_per_namespace_kib")),
                show(&d["memory"]["namespaces_in_cluster"]),
                show(&d["memory"]["rss_peak_kib_per_namespace"]),
                show(&d["memory"]["rss_after_restart_kib_per_namespace"]),
            ),
            "",
            "",
        ),
        (
            "`restart_converged_s`".into(),
            format!(
                "{} (ready after {} s; last reconcile after {} s, {} in all; last write after {} s)",
                show(&g("restart_converged_s")),
                show(&d["restart"]["ready_s"]),
                show(&d["restart"]["last_reconcile_s"]),
                show(&d["restart"]["reconciles"]),
                show(&d["restart"]["last_write_s"]),
            ),
            "",
            "",
        ),
        (
            "`restart_writes`".into(),
            show(&g("restart_writes")),
            "0",
            verdict(g("restart_writes").as_u64().map(|v| v == 0)),
        ),
        (
            "`render_small_us`".into(),
            show(&g("render_small_us")),
            "≤ 25",
            verdict(f("render_small_us").map(|v| v <= 25.0)),
        ),
        (
            "`render_large_us`".into(),
            show(&g("render_large_us")),
            "",
            "",
        ),
        (
            "`simulate_1000x300_ms`".into(),
            show(&g("simulate_1000x300_ms")),
            "≤ 60",
            verdict(f("simulate_1000x300_ms").map(|v| v <= 60.0)),
        ),
        (
            "`verify_50x200_ms`".into(),
            show(&g("verify_50x200_ms")),
            "≤ 1,000",
            verdict(f("verify_50x200_ms").map(|v| v <= 1000.0)),
        ),
        (
            "`explain_50x200_ms`".into(),
            show(&g("explain_50x200_ms")),
            "≤ 1,000",
            verdict(f("explain_50x200_ms").map(|v| v <= 1000.0)),
        ),
        (
            "`across_check_per_app_ms`".into(),
            show(&g("across_check_per_app_ms")),
            "",
            "",
        ),
    ];
    let mut out = String::new();
    out.push_str(&format!(
        "Measured {} (mode `{}`) on {} × {} ({} CPUs), {} GiB RAM, commit `{}`{}; load average at start {}, before the idle window {}.\n\n",
        show(&d["date"]),
        show(&d["mode"]),
        show(&m["nproc"]),
        show(&m["cpu"]),
        show(&m["nproc"]),
        show(&m["ram_gib"]),
        show(&m["commit"]),
        if m["working_tree_dirty"].as_bool() == Some(true) {
            " with uncommitted changes"
        } else {
            ""
        },
        show(&d["load_at_start"]),
        show(&d["load_before_idle"]),
    ));
    out.push_str("| metric | value | goal | |\n|---|---|---|---|\n");
    for (k, v, goal, ok) in rows {
        out.push_str(&format!("| {k} | {v} | {goal} | {ok} |\n"));
    }
    out.push_str(&format!(
        "\nHot paths: {} samples each, one at a time; timeouts: spec change {}, new namespace {}, drift {}. \
         Cold: operator ready (caches synced) after {} s, first object after {} s, {} API writes until converged.\n",
        show(&d["settings"]["samples_per_hot_path"]),
        show(&d["spec_change"]["timeouts"]),
        show(&d["ns_baseline"]["timeouts"]),
        show(&d["drift_repair"]["timeouts"]),
        show(&d["cold"]["operator_ready_s"]),
        show(&d["cold"]["first_object_s"]),
        show(&d["cold"]["writes_until_converged"]),
    ));
    out.push_str(&format!(
        "The operator's API requests from its start to convergence (the API server's counters, every client but the control plane's protobuf ones; WATCHes still open counted by `apiserver_longrunning_gauge`): {}; its own write counter said {} writes (the API server counted {}; a write in flight at convergence is in the first only).\n",
        compact(&d["cold"]["operator_requests_until_converged"]),
        show(&d["cold"]["operator_counted_writes_until_converged"]),
        show(&d["cold"]["operator_writes_until_converged"]),
    ));
    let best = d["raw_best_concurrency"].as_u64();
    if let Some(run) = d["raw_runs"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["concurrency"].as_u64() == best))
    {
        out.push_str(&format!(
            "\nWhere the time went — best raw run (c={}): CPU s {}; requests {}.\n",
            show(&run["concurrency"]),
            compact(&run["cpu_s"]),
            compact(&run["requests"]),
        ));
    }
    if let Some(st) = d["raw_status_apply"].as_object() {
        out.push_str(&format!(
            "The {} AppNetwork statuses the operator wrote, applied by the same raw loop (c={}): {} s; \
             cold convergence / (raw policies + raw statuses) = {}.\n",
            show(&st["statuses"]),
            show(&st["concurrency"]),
            show(&st["seconds"]),
            show(&d["cold_ratio_vs_raw_policies_plus_statuses"]),
        ));
    }
    out.push_str(&format!(
        "Cold convergence: CPU s {}; requests {}; watch events (creations + changes) {}; the operator held up to {} file descriptors (API connections, mostly); its RSS at convergence {} MiB.\n",
        compact(&d["cold"]["cpu_s_until_converged"]),
        compact(&d["cold"]["requests_until_converged"]),
        compact(&d["cold"]["policy_events_until_converged"]),
        show(&d["cold"]["operator_max_open_fds"]),
        show(&d["cold"]["operator_rss_mib_at_convergence"]),
    ));
    out.push_str(&format!(
        "Memory: {} MiB on an empty cluster; after a restart on the converged cluster (caches only, no burst of writes) {} MiB, with {} API writes.\n",
        show(&d["memory"]["rss_empty_cluster_mib"]),
        show(&d["memory"]["rss_after_restart_mib"]),
        show(&d["memory"]["writes_after_restart"]),
    ));
    if let Some(rows) = d["cache_memory_per_object"].as_array() {
        out.push_str("\nHeap per cached object (`cargo bench --bench memory`, real objects with managedFields):\n\n| object | JSON bytes | heap bytes | allocations |\n|---|---|---|---|\n");
        for r in rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                show(&r["object"]),
                show(&r["json_bytes"]),
                show(&r["heap_bytes"]),
                show(&r["allocations"])
            ));
        }
    }
    if let Some(note) = d["micro"]["simulate_note"].as_str() {
        if g("simulate_1000x300_ms").is_null() {
            out.push_str(&format!("\n`simulate_1000x300_ms`: {note}.\n"));
        }
    }
    out
}
