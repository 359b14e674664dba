//! The operator under test, as a separate process (so its CPU time and memory are its own),
//! and what `/proc` says about it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `tierflow run`.
pub struct Operator {
    child: Child,
    /// Where its output goes.
    pub log: PathBuf,
    /// `127.0.0.1:port` of its own /metrics, when the binary has `--metrics-addr`.
    pub metrics_addr: Option<String>,
    pid_file: PathBuf,
}

/// A free loopback port (bound, then released).
fn free_port() -> Option<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    l.local_addr().ok().map(|a| a.port())
}

/// Whether `tierflow run` knows `flag` (the binary evolves; older ones have no metrics server).
fn run_has_flag(binary: &Path, flag: &str) -> bool {
    Command::new(binary)
        .args(["run", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(flag))
        .unwrap_or(false)
}

impl Operator {
    /// Starts `binary run --backend networkpolicy` against `kubeconfig`, logging to `log` with
    /// `RUST_LOG=rust_log`. Its PID is written to `pid_file` so that `hack/bench.sh` can stop
    /// it if this process is interrupted.
    pub fn start(
        binary: &Path,
        kubeconfig: &Path,
        rust_log: &str,
        log: PathBuf,
        pid_file: PathBuf,
    ) -> Operator {
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out.try_clone().expect("log file handle");
        let mut cmd = Command::new(binary);
        cmd.args(["run", "--backend", "networkpolicy"])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", rust_log)
            .env_remove("TIERFLOW_BACKEND")
            .env_remove("TIERFLOW_LEADER_ELECT")
            .env_remove("TIERFLOW_METRICS_ADDR")
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        // Its own metrics endpoint on a free loopback port, never the default 0.0.0.0:8080
        // (another operator on this machine may hold it).
        let mut metrics_addr = None;
        if run_has_flag(binary, "--metrics-addr") {
            let addr = format!("127.0.0.1:{}", free_port().expect("a free port"));
            cmd.args(["--metrics-addr", &addr]);
            metrics_addr = Some(addr);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let _ = std::fs::write(&pid_file, format!("{}\n", child.id()));
        Operator {
            child,
            log,
            metrics_addr,
            pid_file,
        }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with the end of its log if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "the operator exited ({status}); last lines of {}:\n{}",
                self.log.display(),
                tail.join("\n")
            );
        }
    }

    /// CPU seconds (user + system) it has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid()).unwrap_or(f64::NAN)
    }

    /// (VmHWM, VmRSS) in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let field = status_fields(self.pid());
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// Where its resident memory is (KiB): the binary's own pages and other files (`RssFile`),
    /// anonymous memory (`RssAnon`), and of that the main heap (`[heap]`, glibc's main arena)
    /// and the other anonymous mappings (thread arenas and stacks), from /proc/<pid>/smaps.
    pub fn memory_breakdown(&self) -> serde_json::Value {
        let pid = self.pid();
        let field = status_fields(pid);
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
        let (mut heap, mut other_anon, mut anon_maps, mut name) = (0u64, 0u64, 0u64, String::new());
        for l in smaps.lines() {
            let mut words = l.split_whitespace();
            let first = words.next().unwrap_or_default();
            if first.contains('-') && !first.ends_with(':') {
                // A mapping's header: address perms offset dev inode [path].
                name = words.nth(4).unwrap_or_default().to_string();
            } else if first == "Rss:" {
                let kib: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                match name.as_str() {
                    "[heap]" => heap += kib,
                    "" => {
                        other_anon += kib;
                        anon_maps += u64::from(kib > 0);
                    }
                    _ => {}
                }
            }
        }
        serde_json::json!({
            "rss_kib": field("VmRSS:"),
            "rss_anon_kib": field("RssAnon:"),
            "rss_file_kib": field("RssFile:"),
            "heap_kib": heap,
            "other_anon_kib": other_anon,
            "other_anon_mappings": anon_maps,
            "threads": field("Threads:"),
        })
    }

    /// Its own `/metrics` text, if it serves one.
    pub fn scrape(&self) -> Option<String> {
        let (status, body) = http_get(self.metrics_addr.as_ref()?, "/metrics")?;
        (status == 200).then_some(body)
    }

    /// Stops it: SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            let _ = std::fs::remove_file(&self.pid_file);
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.pid_file);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless told otherwise).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in seconds, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime field 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// A plain HTTP/1.0 GET on loopback: (status, body).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Polls `addr`'s `/readyz` every 20 ms until it answers 200 (at most `limit`); returns when.
pub fn wait_ready(addr: &str, limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if matches!(http_get(addr, "/readyz"), Some((200, _))) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The sum of every sample of `metric` (name followed by `{` or a space) in a Prometheus text.
pub fn metric_sum(text: &str, metric: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| {
            l.rsplit_once(' ')
                .and_then(|(_, v)| v.trim().parse::<f64>().ok())
        })
        .sum::<f64>()
        .round() as u64
}

/// What an operator restarted on a converged cluster did, from its own endpoints.
#[derive(Clone, Copy, Debug, Default)]
pub struct Restart {
    /// From spawn to its first `/readyz` 200.
    pub ready: Option<Duration>,
    /// From spawn to the last change of its write counter (`None`: it wrote nothing).
    pub last_write: Option<Duration>,
    /// Its writes (`tierflow_api_writes_total`) when the watch ended.
    pub writes: u64,
    /// Its reconciles (`tierflow_reconcile_total`) when the watch ended.
    pub reconciles: u64,
    /// From spawn to the last change of its reconcile counter.
    pub last_reconcile: Option<Duration>,
}

impl Restart {
    /// Converged: ready, and neither its write nor its reconcile counter has moved since (its
    /// start-up reconciles are done): the latest of the three.
    pub fn converged(&self) -> Option<Duration> {
        let r = self.ready?;
        Some(
            r.max(self.last_write.unwrap_or(r))
                .max(self.last_reconcile.unwrap_or(r)),
        )
    }
}

/// Watches an operator started at `started` through `addr`: `/readyz` until it answers 200,
/// and its `/metrics` write and reconcile counters, every 50 ms; returns once it has been
/// converged (see [`Restart::converged`]) for `quiet`, or after `limit`.
pub fn watch_restart(addr: &str, started: Instant, quiet: Duration, limit: Duration) -> Restart {
    let mut r = Restart::default();
    while started.elapsed() < limit {
        let now = Instant::now();
        if r.ready.is_none() && matches!(http_get(addr, "/readyz"), Some((200, _))) {
            r.ready = Some(now - started);
        }
        if let Some((200, text)) = http_get(addr, "/metrics") {
            let writes = metric_sum(&text, "tierflow_api_writes_total");
            if writes != r.writes {
                r.writes = writes;
                r.last_write = Some(now - started);
            }
            let reconciles = metric_sum(&text, "tierflow_reconcile_total");
            if reconciles != r.reconciles {
                r.reconciles = reconciles;
                r.last_reconcile = Some(now - started);
            }
        }
        if let Some(done) = r.converged() {
            if started.elapsed().saturating_sub(done) >= quiet {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    r
}

/// CPU seconds of the control plane's processes, the operator and this bench, to say where the
/// time of a phase went.
pub struct CpuMeter {
    pids: Vec<(String, u32)>,
}

impl CpuMeter {
    /// The control plane of `cluster_dir` (its `*.pid` files), this process, and `operator`.
    pub fn new(cluster_dir: &Path, operator: Option<u32>) -> CpuMeter {
        let mut pids = Vec::new();
        for name in ["kube-apiserver", "etcd", "kube-controller-manager"] {
            if let Some(pid) = std::fs::read_to_string(cluster_dir.join(format!("{name}.pid")))
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                pids.push((name.to_string(), pid));
            }
        }
        pids.push(("bench".into(), std::process::id()));
        if let Some(pid) = operator {
            pids.push(("operator".into(), pid));
        }
        CpuMeter { pids }
    }

    /// CPU seconds so far, by process.
    pub fn read(&self) -> Vec<(String, f64)> {
        self.pids
            .iter()
            .map(|(n, p)| (n.clone(), cpu_seconds(*p).unwrap_or(f64::NAN)))
            .collect()
    }

    /// `after - before`, by process, as JSON.
    pub fn delta(before: &[(String, f64)], after: &[(String, f64)]) -> serde_json::Value {
        let m: serde_json::Map<String, serde_json::Value> = after
            .iter()
            .map(|(n, a)| {
                let b = before
                    .iter()
                    .find(|(m, _)| m == n)
                    .map(|(_, b)| *b)
                    .unwrap_or(0.0);
                (
                    n.clone(),
                    serde_json::json!(((a - b) * 100.0).round() / 100.0),
                )
            })
            .collect();
        serde_json::Value::Object(m)
    }
}

/// Samples how many file descriptors `pid` holds (its API connections, mostly) every 50 ms,
/// until stopped; returns the maximum. (Counting entries only, no readlink: cheap enough not
/// to steal CPU from what is measured, even with thousands of descriptors.)
pub struct FdSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<usize>>,
}

impl FdSampler {
    /// Starts sampling.
    pub fn start(pid: u32) -> FdSampler {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut max = 0;
            while !s.load(Ordering::Relaxed) {
                let n = std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .map(|d| d.count())
                    .unwrap_or(0);
                max = max.max(n);
                std::thread::sleep(Duration::from_millis(50));
            }
            max
        });
        FdSampler {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling; the most descriptors seen at once.
    pub fn stop(mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or(0)
    }
}

/// `perf record` attached to a process (profiling runs only: `BENCH_PERF=1`).
pub struct Perf {
    child: Child,
}

impl Perf {
    /// Samples `pid` at 499 Hz into `out`; `None` when `perf` cannot be started.
    pub fn start(pid: u32, out: &Path) -> Option<Perf> {
        Command::new("perf")
            .args(["record", "-F", "499", "-g", "-p", &pid.to_string(), "-o"])
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .map(|child| Perf { child })
    }

    /// Stops sampling (SIGINT, so perf writes its file) and waits for it.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reader of the numeric fields of `/proc/<pid>/status` (`VmRSS:` and the like; 0 when absent).
fn status_fields(pid: u32) -> impl Fn(&str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    move |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}
