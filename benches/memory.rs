//! What one cached object costs in memory, by representation.
//!
//! The operator keeps what it compares of every managed object (`tierflow::apply::Owned`: names,
//! labels, tierflow's annotations, owners and a digest of the spec); it used to keep a
//! `DynamicObject` (a `serde_json::Value` tree) with `metadata.managedFields`. AppNetworks and
//! Namespaces are typed objects, with managedFields stripped since. This measures the heap bytes one object takes in each form, with
//! a counting allocator, from real objects as the API server returns them
//! (`benches/fixtures/*.json`, captured from a bench cluster, managedFields included), so a
//! change in how the caches store objects can be judged before running the cluster bench.
//!
//! Run with `cargo bench --bench memory` (`make bench` does); writes
//! `target/bench/memory.json`. Under `cargo test --benches` it only checks that the fixtures
//! parse.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::DynamicObject;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tierflow::crd::AppNetwork;

/// Counts live heap bytes and allocations.
struct Counting;

static BYTES: AtomicI64 = AtomicI64::new(0);
static BLOCKS: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Copies of each object kept at once.
const COPIES: usize = 1000;

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("benches/fixtures/{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn without_managed_fields(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

/// `COPIES` distinct copies of `v` as wire bytes (names differ, as in a real cache).
fn wire(v: &Value) -> Vec<Vec<u8>> {
    (0..COPIES)
        .map(|i| {
            let mut c = v.clone();
            let name = format!("{}-{i}", c["metadata"]["name"].as_str().unwrap_or("x"));
            c["metadata"]["name"] = json!(name);
            serde_json::to_vec(&c).expect("serialize")
        })
        .collect()
}

/// Average (heap bytes, allocations) one object of type `T` keeps, parsed from the wire
/// the way a watch does.
fn per_object<T: DeserializeOwned>(v: &Value) -> (f64, f64) {
    let wire = wire(v);
    let (b0, n0) = (BYTES.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    let kept: Vec<Arc<T>> = wire
        .iter()
        .map(|w| Arc::new(serde_json::from_slice::<T>(w).expect("deserialize")))
        .collect();
    let (b1, n1) = (BYTES.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    drop(kept);
    (
        (b1 - b0) as f64 / COPIES as f64,
        (n1 - n0) as f64 / COPIES as f64,
    )
}

/// Average (heap bytes, allocations) one object of type `T` keeps as its JSON text
/// (`controller::watches::Apps`): parsed from the wire the way a watch does, written back as
/// text, the parsed object dropped.
fn per_text<T: DeserializeOwned + serde::Serialize>(v: &Value) -> (f64, f64) {
    let wire = wire(v);
    let (b0, n0) = (BYTES.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    let kept: Vec<Arc<str>> = wire
        .iter()
        .map(|w| {
            let obj: T = serde_json::from_slice(w).expect("deserialize");
            Arc::from(serde_json::to_string(&obj).expect("serialize"))
        })
        .collect();
    let (b1, n1) = (BYTES.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    drop(kept);
    (
        (b1 - b0) as f64 / COPIES as f64,
        (n1 - n0) as f64 / COPIES as f64,
    )
}

/// Average (heap bytes, allocations) of what the operator keeps of one of its own objects
/// (`tierflow::apply::Owned`), built from the wire the way its watch does (the parsed object is
/// dropped once the compact form is made).
fn per_owned(v: &Value) -> (f64, f64) {
    let wire = wire(v);
    let (b0, n0) = (BYTES.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    let kept: Vec<Arc<tierflow::apply::Owned>> = wire
        .iter()
        .map(|w| {
            let obj: DynamicObject = serde_json::from_slice(w).expect("deserialize");
            Arc::new(tierflow::apply::Owned::of(
                tierflow::render::ObjectKind::NetworkPolicy,
                &obj,
            ))
        })
        .collect();
    let (b1, n1) = (BYTES.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    drop(kept);
    (
        (b1 - b0) as f64 / COPIES as f64,
        (n1 - n0) as f64 / COPIES as f64,
    )
}

/// Average (heap bytes, allocations) of `COPIES` clones of a JSON value kept at once.
fn per_value(v: &Value) -> (f64, f64) {
    let (b0, n0) = (BYTES.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    let kept: Vec<Value> = (0..COPIES).map(|_| v.clone()).collect();
    let (b1, n1) = (BYTES.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    let vec_bytes = (kept.capacity() * std::mem::size_of::<Value>()) as i64;
    drop(kept);
    (
        (b1 - b0 - vec_bytes) as f64 / COPIES as f64,
        (n1 - n0 - 1) as f64 / COPIES as f64,
    )
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let tier = fixture("tier-policy");
    let baseline = fixture("baseline-policy");
    let app = fixture("appnetwork");
    let ns = fixture("namespace");
    if !bench_mode {
        let _: DynamicObject = serde_json::from_value(tier).expect("tier policy");
        let _: AppNetwork = serde_json::from_value(app).expect("AppNetwork");
        let _: Namespace = serde_json::from_value(ns).expect("Namespace");
        return;
    }
    let compact = |v: &Value| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0) as f64;
    let mut rows: Vec<(String, f64, f64, f64)> = Vec::new();
    let mut row = |what: &str, json_len: f64, (bytes, blocks): (f64, f64)| {
        rows.push((what.to_string(), json_len, bytes, blocks));
    };
    for (label, v) in [
        ("tier NetworkPolicy", &tier),
        ("baseline NetworkPolicy", &baseline),
    ] {
        let bare = without_managed_fields(v.clone());
        row(
            &format!("{label} as apply::Owned (cached today)"),
            compact(v),
            per_owned(v),
        );
        row(
            &format!("{label} as DynamicObject (cached until 2026-11-30)"),
            compact(v),
            per_object::<DynamicObject>(v),
        );
        row(
            &format!("{label} as DynamicObject, no managedFields"),
            compact(&bare),
            per_object::<DynamicObject>(&bare),
        );
        row(
            &format!("{label} as typed NetworkPolicy"),
            compact(v),
            per_object::<NetworkPolicy>(v),
        );
        row(
            &format!("{label} as typed NetworkPolicy, no managedFields"),
            compact(&bare),
            per_object::<NetworkPolicy>(&bare),
        );
    }
    let app_bare = without_managed_fields(app.clone());
    row(
        "AppNetwork with managedFields (cached until 2026-11-30)",
        compact(&app),
        per_object::<AppNetwork>(&app),
    );
    row(
        "AppNetwork, no managedFields (typed; cached until session 5)",
        compact(&app_bare),
        per_object::<AppNetwork>(&app_bare),
    );
    row(
        "AppNetwork as JSON text, no managedFields (cached today; decoded when read)",
        compact(&app_bare),
        per_text::<AppNetwork>(&app_bare),
    );
    // The operator's record of the last status it wrote per AppNetwork (`Memory::written`):
    // the status as a JSON tree until 2026-11-30, a digest since (a map entry either way).
    let status = app["status"].clone();
    row(
        "last written status as serde_json::Value (kept until 2026-11-30)",
        compact(&status),
        per_value(&status),
    );
    row(
        "last written status as (resourceVersion, digest) (kept today)",
        16.0,
        (0.0, 0.0),
    );
    let ns_bare = without_managed_fields(ns.clone());
    row(
        "Namespace with managedFields (cached until 2026-11-30)",
        compact(&ns),
        per_object::<Namespace>(&ns),
    );
    row(
        "Namespace, no managedFields (cached today)",
        compact(&ns_bare),
        per_object::<Namespace>(&ns_bare),
    );

    println!(
        "{:<62} {:>8} {:>8} {:>7}",
        "object", "JSON B", "heap B", "allocs"
    );
    for (what, j, b, n) in &rows {
        println!("{what:<62} {j:>8.0} {b:>8.0} {n:>7.0}");
    }
    let out: Vec<Value> = rows
        .iter()
        .map(|(what, j, b, n)| {
            json!({
                "object": what,
                "json_bytes": j.round() as u64,
                "heap_bytes": b.round() as u64,
                "allocations": n.round() as u64,
            })
        })
        .collect();
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("memory.json");
    match std::fs::write(
        &path,
        serde_json::to_string_pretty(&out).unwrap_or_default() + "\n",
    ) {
        Ok(()) => eprintln!("memory: wrote {}", path.display()),
        Err(e) => eprintln!("memory: {}: {e}", path.display()),
    }
}
