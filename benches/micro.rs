//! Micro benchmarks (criterion): validating and rendering generated AppNetworks.
//!
//! - `render/small`: 10 tiers / 30 flows, `render/large`: 100 tiers / 1,000 flows, both through
//!   `tierflow::render::tier_objects` for the standard NetworkPolicy backend, from a model built
//!   once with `tierflow::validate::app_network`.
//! - `render_parts/*`: `_typed` is `render::networkpolicy::tier_policies` (since the renderer
//!   writes JSON directly, the typed NetworkPolicies are read back from it, so this is render
//!   plus a parse); `_to_value` converts typed NetworkPolicies to `serde_json::Value`, the half
//!   of render that the direct JSON writing removed.
//! - `validate/small`, `validate/large`: the same specs through the validator.
//! - `verify/50x200`, `explain/50x200`: a generated 50-tier / 200-flow spec (same generator)
//!   through `tierflow::verify::verify_backend` and `tierflow::cli::explain::explain` for the
//!   NetworkPolicy backend, from a model built once (what the operator would check inline).
//!   When one run takes a second or more, it is timed by hand instead (see `measure_app`).
//! - `simulate/check_all_pairs`: `tierflow::engine` on 1,000 pods in 75 namespaces and the 300
//!   policies tierflow renders for them (examples/shop.yaml in each namespace: 3 tier policies
//!   and the baseline), one port (TCP 8080), every ordered pod pair (1,000,000 connections,
//!   `Scenario::check`). The time includes reading the objects (`Scenario::from_values`) and
//!   building the index. `simulate/allows_all_pairs` is the same with `Scenario::allows`
//!   (no explanation), `simulate/build` only reads and indexes.
//!
//! - `across/chunk`, `across/all`: the check across namespaces
//!   (`tierflow::verify::across::check`) on the e2e bench's AppNetwork in each of N namespaces
//!   (`BENCH_NAMESPACES`, default 50): a chunk of 25 AppNetworks as the operator's `FlowsBlocked`
//!   check runs it, and all N as `tierflow verify` does; micro.json gives the time per
//!   AppNetwork of each.
//!
//! Run with `cargo bench --bench micro` (or `make bench`). In bench mode it also writes
//! `target/bench/micro.json`, which the end-to-end bench (`benches/e2e`) folds into
//! `target/bench/results.json`. Under `cargo test --benches` every benchmark runs once, as a
//! smoke test, and nothing is written.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion};
use serde_json::{json, Value};
use tierflow::crd::AppNetworkSpec;
use tierflow::model::{AppModel, Backend};

/// A generated spec with `tiers` tiers and `flows` flows, mixing every common peer kind:
/// tier → tier, another namespace's pods → tier, tier → CIDR, the internet (with an exception)
/// → tier. Every flow names its own port, so no two flows are the same.
fn spec(tiers: usize, flows: usize) -> AppNetworkSpec {
    let tier_list: Vec<Value> = (0..tiers)
        .map(|i| {
            json!({
                "name": format!("t{i}"),
                "selector": {"matchLabels": {"app": format!("t{i}"), "part-of": "bench"}},
                "ports": [{"port": 8000 + i}],
            })
        })
        .collect();
    let flow_list: Vec<Value> = (0..flows)
        .map(|f| {
            let to = format!("t{}", (f * 7 + 1) % tiers);
            let from = format!("t{}", f % tiers);
            let port = 1000 + f;
            match f % 5 {
                0 | 1 => json!({"from": {"tier": from}, "to": {"tier": to}, "ports": [{"port": port}]}),
                2 => json!({
                    "from": {"namespace": format!("client-{}", f % 20), "selector": {"matchLabels": {"app": "client"}}},
                    "to": {"tier": to},
                    "ports": [{"port": port}, {"port": port, "protocol": "UDP"}],
                }),
                3 => json!({
                    "from": {"tier": from},
                    "to": {"cidr": format!("10.{}.{}.0/24", (f / 256) % 256, f % 256)},
                    "ports": [{"port": port}],
                }),
                _ => json!({
                    "from": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]},
                    "to": {"tier": to},
                    "ports": [{"port": port}],
                }),
            }
        })
        .collect();
    serde_json::from_value(json!({
        "backend": "NetworkPolicy",
        "tiers": tier_list,
        "flows": flow_list,
    }))
    .expect("a well-formed AppNetworkSpec")
}

fn model(spec: &AppNetworkSpec) -> AppModel {
    tierflow::validate::app_network("bench", "bench", spec).expect("the generated spec is valid")
}

fn render(m: &AppModel) -> tierflow::render::Rendered {
    tierflow::render::tier_objects(m, Backend::NetworkPolicy, None, &Default::default())
}

fn bench_render_and_validate(c: &mut Criterion) {
    for (id, tiers, flows) in [("small", 10, 30), ("large", 100, 1000)] {
        let s = spec(tiers, flows);
        let m = model(&s);
        let rendered = render(&m);
        assert_eq!(rendered.objects.len(), tiers, "one policy per tier");
        assert!(
            rendered.limitations.is_empty(),
            "{:?}",
            rendered.limitations
        );

        let mut g = c.benchmark_group("render");
        g.bench_function(id, |b| b.iter(|| render(black_box(&m))));
        g.finish();

        // Where render's time goes: building the typed NetworkPolicies, and turning them into
        // the `serde_json::Value` bodies the applier compares and sends.
        let mut g = c.benchmark_group("render_parts");
        g.bench_function(format!("{id}_typed"), |b| {
            b.iter(|| tierflow::render::networkpolicy::tier_policies(black_box(&m), None))
        });
        let typed = tierflow::render::networkpolicy::tier_policies(&m, None);
        g.bench_function(format!("{id}_to_value"), |b| {
            b.iter(|| {
                black_box(&typed)
                    .iter()
                    .map(|p| serde_json::to_value(p).expect("a NetworkPolicy serializes"))
                    .collect::<Vec<Value>>()
            })
        });
        g.finish();

        let mut g = c.benchmark_group("validate");
        g.bench_function(id, |b| {
            b.iter(|| tierflow::validate::app_network("bench", "bench", black_box(&s)))
        });
        g.finish();
    }
}

/// Figures measured by hand rather than by criterion (see [`bench_verify_and_explain`]), in
/// milliseconds, by micro.json key.
static MANUAL_MS: std::sync::Mutex<Vec<(&'static str, f64, usize)>> =
    std::sync::Mutex::new(Vec::new());

/// A run at least this long is timed by hand: criterion takes at least 10 samples, so its
/// measurement would take ten times as long (over 10 s from here, over 2 s in `bench-quick`,
/// which must stay under two minutes).
fn slow() -> std::time::Duration {
    if quick() {
        std::time::Duration::from_millis(200)
    } else {
        std::time::Duration::from_secs(1)
    }
}

/// `hack/bench.sh quick` (`make bench-quick`).
fn quick() -> bool {
    std::env::var("BENCH_MODE").as_deref() == Ok("quick")
}

/// Times `f` for micro.json key `key` (criterion group `group`, id `50x200`): a first run,
/// timed, checks the result; if it took under [`slow`], criterion measures as everywhere else;
/// otherwise the mean of 3 more timed runs is recorded (in `bench-quick`: the first run's
/// time, so that `make bench-quick` stays under two minutes).
fn measure_app<T>(
    c: &mut Criterion,
    group: &str,
    key: &'static str,
    mut f: impl FnMut() -> T,
    check: impl FnOnce(&T),
) {
    let t = std::time::Instant::now();
    let out = f();
    let first = t.elapsed();
    check(&out);
    drop(out);
    if first < slow() {
        let mut g = c.benchmark_group(group);
        g.sample_size(10);
        g.bench_function("50x200", |b| b.iter(&mut f));
        g.finish();
        return;
    }
    let first_ms = first.as_secs_f64() * 1e3;
    let (ms, runs) = if quick() {
        (first_ms, 1)
    } else {
        let t = std::time::Instant::now();
        for _ in 0..3 {
            black_box(f());
        }
        (t.elapsed().as_secs_f64() * 1e3 / 3.0, 3)
    };
    eprintln!(
        "{group}/50x200: {ms:.1} ms (timed by hand, {runs} run(s); the first took {first_ms:.1} ms): too slow for criterion's 10 samples"
    );
    if let Ok(mut m) = MANUAL_MS.lock() {
        m.push((key, ms, runs));
    }
}

/// A generated 50-tier / 200-flow app (the operator verifies inline up to 75 tiers / 300 flows)
/// through `verify_backend` and `explain`, for the NetworkPolicy backend.
fn bench_verify_and_explain(c: &mut Criterion) {
    let m = model(&spec(50, 200));
    measure_app(
        c,
        "verify",
        "verify_50x200_ms",
        || tierflow::verify::verify_backend(black_box(&m), Backend::NetworkPolicy),
        |r| assert!(r.error.is_none(), "{:?}", r.error),
    );
    measure_app(
        c,
        "explain",
        "explain_50x200_ms",
        || tierflow::cli::explain::explain(black_box(&m), Backend::NetworkPolicy),
        |t| {
            assert!(
                t.as_ref().is_ok_and(|t| !t.cells.is_empty()),
                "an explain table"
            )
        },
    );
}

/// Namespaces of the simulation: 75 × (3 tier policies + baseline) = 300 policies.
const SIM_NAMESPACES: usize = 75;
/// Pods of the simulation.
const SIM_PODS: usize = 1000;

/// The objects of the simulation: namespaces, pods and the policies tierflow renders for
/// examples/shop.yaml in every namespace.
fn sim_objects() -> Vec<Value> {
    use tierflow::crd::AppNetwork;
    use tierflow::model::NamespaceBaseline;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/shop.yaml");
    let text = std::fs::read_to_string(&path).expect("examples/shop.yaml");
    let app: AppNetwork = serde_yaml::from_str(&text).expect("an AppNetwork");
    let env = tierflow::render::Env::default();
    let mut out = Vec::new();
    let mut policies = 0;
    for i in 0..SIM_NAMESPACES {
        let ns = format!("sim-{i:03}");
        out.push(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
        }));
        let m = tierflow::validate::app_network("shop", &ns, &app.spec).expect("valid shop");
        for o in tierflow::render::tier_objects(&m, Backend::NetworkPolicy, None, &env).objects {
            out.push(o.into_value());
            policies += 1;
        }
        let b = NamespaceBaseline::merge([&m.baseline]);
        if let Some(o) =
            tierflow::render::namespace_baseline(&ns, &b, Backend::NetworkPolicy, false, &[], &env)
        {
            out.push(o.into_value());
            policies += 1;
        }
    }
    assert_eq!(policies, 300, "300 policies");
    let apps = ["frontend", "api", "database", "worker"];
    for p in 0..SIM_PODS {
        let ns = format!("sim-{:03}", p % SIM_NAMESPACES);
        let app = apps[(p / SIM_NAMESPACES) % apps.len()];
        out.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("pod-{p}"), "namespace": ns, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]},
            "status": {"podIP": format!("10.1.{}.{}", p / 250, 1 + p % 250)},
        }));
    }
    out
}

fn bench_simulate(c: &mut Criterion) {
    use tierflow::core::Protocol;
    use tierflow::engine::{Endpoint, Scenario};
    let objects = sim_objects();
    let build = |objects: Vec<Value>| Scenario::from_values(objects).expect("a valid scenario");
    let check_all = |s: &Scenario| {
        let mut allowed = 0usize;
        for a in 0..SIM_PODS {
            for b in 0..SIM_PODS {
                let v = s.check(Endpoint::Pod(a), Endpoint::Pod(b), 8080, Protocol::Tcp);
                allowed += usize::from(v.allowed);
            }
        }
        allowed
    };
    let allows_all = |s: &Scenario| {
        let mut allowed = 0usize;
        for a in 0..SIM_PODS {
            for b in 0..SIM_PODS {
                allowed +=
                    usize::from(s.allows(Endpoint::Pod(a), Endpoint::Pod(b), 8080, Protocol::Tcp));
            }
        }
        allowed
    };
    // Sanity: the simulation agrees with itself and lets some, not all, connections through.
    let s = build(objects.clone());
    assert_eq!(s.pods().len(), SIM_PODS);
    let n = check_all(&s);
    assert_eq!(n, allows_all(&s));
    assert!(n > 0 && n < SIM_PODS * SIM_PODS, "{n} allowed");

    let mut g = c.benchmark_group("simulate");
    g.sample_size(10);
    g.bench_function("check_all_pairs", |b| {
        b.iter_batched(
            || objects.clone(),
            |o| check_all(&build(o)),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("allows_all_pairs", |b| {
        b.iter_batched(
            || objects.clone(),
            |o| allows_all(&build(o)),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("build", |b| {
        b.iter_batched(
            || objects.clone(),
            |o| {
                let s = build(o);
                s.isolation(0)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Namespaces of the check across namespaces: the e2e bench's N (`BENCH_NAMESPACES`, 50 in
/// `bench-quick`), default 50, at most [`ACROSS_MAX`].
fn across_namespaces() -> usize {
    std::env::var("BENCH_NAMESPACES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
        .min(ACROSS_MAX)
}

/// The check grows faster than its world (one world of 1,000 namespaces took over 90 s per
/// run, so criterion's 10 samples would take a quarter of an hour); the operator checks 8
/// AppNetworks per world (`controller::flows::CHUNK`).
const ACROSS_MAX: usize = 100;

/// The world of the check across namespaces: the e2e bench's AppNetwork
/// (`benches/fixtures/appnetwork.json`: three tiers, a flow from `monitoring`) in each of `n`
/// namespaces, and `monitoring` without one.
fn across_world(n: usize) -> tierflow::verify::across::World {
    use tierflow::verify::across::World;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures/appnetwork.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture"))
        .expect("fixture JSON");
    let spec: AppNetworkSpec = serde_json::from_value(fixture["spec"].clone()).expect("spec");
    let mut w = World {
        cluster: tierflow::plan::Cluster {
            forced_backend: Some(Backend::NetworkPolicy),
            operator_namespace: "tierflow-system".into(),
            ..tierflow::plan::Cluster::default()
        },
        ..World::default()
    };
    for i in 0..n {
        let ns = format!("bench-{i}");
        w.namespaces.insert(
            ns.clone(),
            [("kubernetes.io/metadata.name".to_string(), ns.clone())].into(),
        );
        w.apps.push(tierflow::plan::AppInput {
            name: "shop".into(),
            namespace: ns,
            uid: None,
            generation: Some(1),
            spec: spec.clone(),
        });
    }
    w.namespaces.insert(
        "monitoring".into(),
        [(
            "kubernetes.io/metadata.name".to_string(),
            "monitoring".to_string(),
        )]
        .into(),
    );
    w
}

/// The check across namespaces (`tierflow::verify::across::check`): `across/chunk` is what the
/// operator's `FlowsBlocked` check does per chunk of `CHUNK` (25) AppNetworks, planning only
/// the namespaces they involve; `across/all` is `tierflow verify` over all N namespaces.
fn bench_across(c: &mut Criterion) {
    use tierflow::verify::across::check;
    let n = across_namespaces();
    let all = across_world(n);
    let chunk_size = tierflow::controller::flows::CHUNK.min(n);
    let mut chunk = across_world(chunk_size);
    chunk.cluster = all.cluster.clone();
    let r = check(&all, None).expect("a valid world");
    assert_eq!(r.app_networks, n);
    assert!(r.passed(), "{r}");
    let mut g = c.benchmark_group("across");
    g.sample_size(10);
    g.bench_function("chunk", |b| b.iter(|| check(black_box(&chunk), None)));
    g.bench_function("all", |b| b.iter(|| check(black_box(&all), None)));
    g.finish();
    if let Ok(mut m) = ACROSS.lock() {
        *m = Some((n, chunk_size));
    }
}

/// (N, chunk size) of the check across namespaces, for micro.json.
static ACROSS: std::sync::Mutex<Option<(usize, usize)>> = std::sync::Mutex::new(None);

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// criterion's estimate of `group/id` in microseconds: (mean, median).
fn estimate_us(group: &str, id: &str) -> Option<(f64, f64)> {
    let path = target_dir()
        .join("criterion")
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let mean = v.pointer("/mean/point_estimate")?.as_f64()? / 1000.0;
    let median = v.pointer("/median/point_estimate")?.as_f64()? / 1000.0;
    Some((mean, median))
}

fn write_summary() {
    let get = |g: &str, id: &str| estimate_us(g, id);
    let mean = |g: &str, id: &str| get(g, id).map(|e| e.0);
    let median = |g: &str, id: &str| get(g, id).map(|e| e.1);
    let mut out = json!({
        "render_small_us": mean("render", "small"),
        "render_large_us": mean("render", "large"),
        "validate_small_us": mean("validate", "small"),
        "validate_large_us": mean("validate", "large"),
        "render_small_median_us": median("render", "small"),
        "render_small_typed_us": mean("render_parts", "small_typed"),
        "render_small_to_value_us": mean("render_parts", "small_to_value"),
        "render_large_typed_us": mean("render_parts", "large_typed"),
        "render_large_to_value_us": mean("render_parts", "large_to_value"),
        "render_large_median_us": median("render", "large"),
        "simulate_1000x300_ms": get("simulate", "check_all_pairs").map(|e| e.0 / 1000.0),
        "simulate_allows_1000x300_ms": get("simulate", "allows_all_pairs").map(|e| e.0 / 1000.0),
        "simulate_build_ms": get("simulate", "build").map(|e| e.0 / 1000.0),
        "verify_50x200_ms": get("verify", "50x200").map(|e| e.0 / 1000.0),
        "explain_50x200_ms": get("explain", "50x200").map(|e| e.0 / 1000.0),
    });
    // The check across namespaces: per AppNetwork, in the operator's chunks and over all N.
    if let Some((n, chunk)) = ACROSS.lock().ok().and_then(|m| *m) {
        let per = |id: &str, apps: usize| get("across", id).map(|e| e.0 / 1000.0 / apps as f64);
        out["across_namespaces"] = json!(n);
        out["across_chunk_apps"] = json!(chunk);
        out["across_check_per_app_chunk_ms"] = json!(per("chunk", chunk));
        out["across_check_per_app_all_ms"] = json!(per("all", n));
        out["across_check_all_ms"] = json!(get("across", "all").map(|e| e.0 / 1000.0));
    }
    // Slow figures timed by hand replace criterion's (a stale estimate from an earlier run
    // must not stand in for them).
    let mut manual = serde_json::Map::new();
    for (key, ms, runs) in MANUAL_MS.lock().map(|m| m.clone()).unwrap_or_default() {
        out[key] = json!(ms);
        manual.insert(key.to_string(), json!({"mean_ms": ms, "timed_runs": runs}));
    }
    out["timed_by_hand"] = Value::Object(manual);
    let dir = target_dir().join("bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("micro.json");
    match serde_json::to_string_pretty(&out) {
        Ok(text) => match std::fs::write(&path, text + "\n") {
            Ok(()) => eprintln!("micro: wrote {}", path.display()),
            Err(e) => eprintln!("micro: cannot write {}: {e}", path.display()),
        },
        Err(e) => eprintln!("micro: {e}"),
    }
}

/// `MICRO_PROFILE=<workload>[:<runs>]`: runs one workload `runs` times (default 1) and exits,
/// without criterion, so that `valgrind --tool=callgrind` counts its instructions (the figure
/// BENCHMARKS.md compares on this shared machine). Workloads: `render_small`, `render_large`,
/// `simulate` (build + `check` of every pair), `simulate_build`, `verify_50x200`, `verify_shop` (the inline
/// verification of examples/shop.yaml, once per namespace at a cold start).
fn profile(workload: &str) {
    use tierflow::core::Protocol;
    use tierflow::engine::{Endpoint, Scenario};
    let (name, runs) = workload.split_once(':').unwrap_or((workload, "1"));
    let runs: usize = runs.parse().expect("MICRO_PROFILE=<workload>:<runs>");
    match name {
        "render_small" | "render_large" => {
            let (t, f) = if name == "render_small" {
                (10, 30)
            } else {
                (100, 1000)
            };
            let m = model(&spec(t, f));
            for _ in 0..runs {
                black_box(render(black_box(&m)));
            }
        }
        "verify_50x200" => {
            let m = model(&spec(50, 200));
            for _ in 0..runs {
                black_box(tierflow::verify::verify_backend(
                    black_box(&m),
                    Backend::NetworkPolicy,
                ));
            }
        }
        "verify_shop" => {
            // What the operator verifies inline for each namespace of the end-to-end bench.
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/shop.yaml");
            let text = std::fs::read_to_string(&path).expect("examples/shop.yaml");
            let app: tierflow::crd::AppNetwork =
                serde_yaml::from_str(&text).expect("an AppNetwork");
            let m = tierflow::validate::app_network("shop", "bench-0", &app.spec).expect("valid");
            for _ in 0..runs {
                black_box(tierflow::verify::verify_backend(
                    black_box(&m),
                    Backend::NetworkPolicy,
                ));
            }
        }
        "simulate" | "simulate_build" => {
            let objects = sim_objects();
            for _ in 0..runs {
                let s = Scenario::from_values(objects.clone()).expect("a valid scenario");
                if name == "simulate" {
                    let mut allowed = 0usize;
                    for a in 0..SIM_PODS {
                        for b in 0..SIM_PODS {
                            let v =
                                s.check(Endpoint::Pod(a), Endpoint::Pod(b), 8080, Protocol::Tcp);
                            allowed += usize::from(v.allowed);
                        }
                    }
                    black_box(allowed);
                }
            }
        }
        other => panic!("MICRO_PROFILE: unknown workload {other:?}"),
    }
}

fn main() {
    if let Ok(w) = std::env::var("MICRO_PROFILE") {
        profile(&w);
        return;
    }
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let mut c = Criterion::default().configure_from_args();
    bench_render_and_validate(&mut c);
    if bench_mode {
        bench_verify_and_explain(&mut c);
        bench_simulate(&mut c);
        bench_across(&mut c);
    } else {
        // One check across namespaces at the bench's N, as a smoke test.
        let r = tierflow::verify::across::check(&across_world(across_namespaces()), None)
            .expect("a valid world");
        assert!(r.passed() && r.connections > 0, "{r}");
        // `cargo test --benches`: one quick consistency check instead of a million checks.
        let s = tierflow::engine::Scenario::from_values(sim_objects()).expect("a valid scenario");
        assert_eq!(s.pods().len(), SIM_PODS);
    }
    c.final_summary();
    if bench_mode {
        write_summary();
    }
}
