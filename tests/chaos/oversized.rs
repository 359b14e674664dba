//! Oversized specs end to end: AppNetworks with thousands of tiers and flows, just under and
//! over the 1.5 MiB object limit (etcd's request limit; the API server's own body limit is
//! 3 MiB). What the API server says, and, for what it accepts, how long the operator takes, how
//! much memory it needs (peak resident set, from /proc) and what the AppNetwork's status shows.

use std::time::{Duration, Instant};

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::Api;
use serde_json::{json, Value};
use tierflow::crd::AppNetwork;

use crate::harness::{self, Operator, OperatorOptions};
use crate::support;
use crate::workload::USER;

/// How long each accepted case waits for the AppNetwork's status (`CHAOS_STATUS_WAIT` seconds).
fn status_wait() -> Duration {
    Duration::from_secs(
        std::env::var("CHAOS_STATUS_WAIT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120),
    )
}

/// An AppNetwork with `tiers` tiers (a chain of flows t0 → t1 → ...) padded to about `bytes`.
fn big(name: &str, tiers: usize, bytes: usize) -> Value {
    let pad_value = "p".repeat(60);
    let build = |pads: usize| {
        let tier_list: Vec<Value> = (0..tiers)
            .map(|i| {
                let mut selector = json!({"matchLabels": {"app": format!("t{i}")}});
                if pads > 0 {
                    selector["matchExpressions"] = json!([{"key": "pad", "operator": "NotIn",
                                                           "values": vec![pad_value.clone(); pads]}]);
                }
                json!({"name": format!("t{i}"), "selector": selector, "ports": [{"port": 8080}]})
            })
            .collect();
        let flows: Vec<Value> = (0..tiers)
            .map(|i| json!({"from": {"tier": format!("t{i}")}, "to": {"tier": format!("t{}", (i + 1) % tiers)}}))
            .collect();
        json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork",
               "metadata": {"name": name}, "spec": {"tiers": tier_list, "flows": flows}})
    };
    let unpadded = serde_json::to_vec(&build(0)).map(|v| v.len()).unwrap_or(0);
    let per_pad = (pad_value.len() + 3) * tiers;
    build(bytes.saturating_sub(unpadded) / per_pad.max(1))
}

/// CPU seconds the process used so far (utime + stime at 100 ticks per second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

/// Applies an AppNetwork of `tiers` tiers (padded to `bytes`), and reports what the operator
/// makes of it: policies, status, baseline, time, memory, CPU; then deletes it and reports the
/// pruning.
async fn accepted(
    op: &Operator,
    apps: &Api<AppNetwork>,
    nps: &Api<NetworkPolicy>,
    tiers: usize,
    bytes: usize,
) -> String {
    let name = format!("big-{tiers}");
    let body = big(&name, tiers, bytes);
    let size = serde_json::to_vec(&body).map(|v| v.len()).unwrap_or(0);
    let pid = op.pid();
    let cpu0 = cpu_seconds(pid);
    if let Err(e) = apps
        .patch(&name, &PatchParams::apply(USER), &Patch::Apply(&body))
        .await
    {
        return format!("{tiers} tiers ({size} bytes): refused: {e}");
    }
    let started = Instant::now();
    let selector = format!("tierflow.dev/app-network={name}");
    let (mut peak, mut written, mut status_at) = (0u64, None, None);
    let mut ready = None;
    while started.elapsed() < status_wait() {
        peak = peak.max(vm(pid, "VmRSS:"));
        if written.is_none() {
            let n = nps
                .list(&ListParams::default().labels(&selector))
                .await
                .map(|l| l.items.len())
                .unwrap_or(0);
            if n >= tiers {
                written = Some(started.elapsed());
            }
        }
        if let Ok(app) = apps.get(&name).await {
            let st = app.status.unwrap_or_default();
            if st.observed_generation.is_some() && st.observed_generation == app.metadata.generation
            {
                status_at = Some(started.elapsed());
                ready = st
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| format!("{}/{}", c.status, c.reason));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let baseline = nps
        .get_opt("tierflow-baseline")
        .await
        .ok()
        .flatten()
        .is_some();
    let cpu = cpu_seconds(pid) - cpu0;
    let rss = vm(pid, "VmRSS:");
    let _ = apps.delete(&name, &DeleteParams::default()).await;
    let deleted = Instant::now();
    let pruned = harness::poll(Duration::from_secs(120), || async {
        let n = nps
            .list(&ListParams::default().labels(&selector))
            .await
            .ok()?
            .items
            .len();
        (n == 0).then_some(deleted.elapsed())
    })
    .await;
    format!(
        "{tiers} tiers + {tiers} flows ({size} bytes): accepted; {tiers} policies written in \
         {written:.1?}; status (observedGeneration current) after {status_at:.1?}, Ready \
         {ready:?}; baseline present: {baseline}; operator peak RSS {} MiB (now {} MiB), {cpu:.1} \
         CPU s; policies gone {pruned:.1?} after the AppNetwork was deleted",
        peak / 1024,
        rss / 1024
    )
}

fn vm(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
#[ignore = "slow: run with make chaos"]
async fn oversized_specs_are_rejected_or_handled_with_bounded_memory() {
    let name = "oversized";
    let Some(sc) = harness::setup(name).await else {
        return;
    };
    let client = sc.cluster.client.clone();
    let ns = format!("chaos-oversized-{}", std::process::id());
    support::create_namespace(&client, &ns, &[(harness::CHAOS_LABEL, "true")]).await;
    let apps: Api<AppNetwork> = Api::namespaced(client.clone(), &ns);
    let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    let mut op = Operator::start(&sc, "tierflow", &OperatorOptions::default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_kib = vm(op.pid(), "VmRSS:");
    let mut report = Vec::new();

    // Over the limit: what the API server answers.
    for (label, tiers, bytes) in [("1.9 MiB", 2000, 1_990_000), ("3.5 MiB", 2000, 3_670_000)] {
        let body = big("too-big", tiers, bytes);
        let size = serde_json::to_vec(&body).map(|v| v.len()).unwrap_or(0);
        let r = apps
            .patch("too-big", &PatchParams::apply(USER), &Patch::Apply(&body))
            .await;
        let answer = match &r {
            Ok(_) => "accepted".to_string(),
            Err(kube::Error::Api(s)) => format!("{} {}", s.code, s.message),
            Err(e) => e.to_string(),
        };
        report.push(format!(
            "{label} ({size} bytes, {tiers} tiers): {}",
            answer.chars().take(160).collect::<String>()
        ));
        assert!(r.is_err(), "a {size}-byte AppNetwork was accepted");
        let _ = apps.delete("too-big", &DeleteParams::default()).await;
    }

    // Accepted: growing numbers of tiers (each flowing to the next), the last just under the
    // limit. The operator writes a policy per tier, then verifies the flows and writes status.
    for (tiers, bytes) in [(100, 0), (250, 0), (500, 0), (1000, 0), (2000, 1_300_000)] {
        report.push(accepted(&op, &apps, &nps, tiers, bytes).await);
        assert!(
            op.exited().is_none(),
            "the operator died: {}",
            op.log.display()
        );
    }
    report.insert(0, format!("operator RSS idle {} MiB", idle_kib / 1024));
    eprintln!("CHAOS-REPORT {name}: {}", report.join("; "));
    drop(op);
    support::delete_namespace(&client, &ns).await;
}
