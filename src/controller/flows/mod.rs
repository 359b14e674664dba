//! The `FlowsBlocked` condition: every declared flow of an AppNetwork that goes to or comes from
//! pods of another namespace, checked against everything in force there (the other namespace's
//! AppNetworks and baseline, the ClusterBaselines, the users' own NetworkPolicies), with the
//! check `tierflow verify` makes across namespaces ([`crate::verify::across`]), on the caches.
//!
//! Off the write hot path and incremental:
//! - A namespace reconcile, once its writes and status are done, tells [`changed`] that the
//!   namespace was looked at. A fingerprint of what the check reads there (its AppNetworks'
//!   generations, its labels, the users' NetworkPolicies' resource versions, the ClusterBaselines'
//!   generations, the backends served) says whether anything the check depends on changed; only
//!   then is the namespace marked dirty.
//! - One task ([`task`], started with the controllers) waits until no namespace has been marked
//!   for [`QUIET`] (at most [`MAX_WAIT`] under constant churn), then rechecks only the AppNetworks
//!   in a dirty namespace or with a flow whose peer namespaces include one, in chunks of
//!   [`CHUNK`] AppNetworks, each on the CPU thread ([`super::cpu`]), over the namespaces those AppNetworks
//!   involve.
//! - A result that differs from what the AppNetwork's status says triggers a reconcile of its
//!   namespace, whose status report ([`report`](super::report)) sets the condition from the
//!   result ([`condition`]): the status has one writer, and nothing is written when nothing
//!   changed.
//!
//! The condition concerns AppNetworks with at least one such flow that could be checked. It is
//! `True` (reason `DeclaredFlowsDenied`) naming `spec.flows[i]`, the connection and the object
//! and rule that block it; once it has been `True`, it turns `False` (reason `FlowsAllowed`)
//! when every flow can succeed again. An AppNetwork that was never blocked carries none, like
//! `Stalled` (so the check costs no status write for every AppNetwork with such a flow). The operator caches only the
//! users' NetworkPolicies; their Calico and Cilium policies are checked by
//! `tierflow verify --from-cluster`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::{Resource, ResourceExt};

use super::context::Context;
use crate::crd::Condition;
use crate::model::{AppModel, NamespaceMatch, Peer};
use crate::plan::Labels;
use crate::status;
use crate::verify::across::{self, World, MAX_PEER_NAMESPACES};

/// The condition type.
pub const FLOWS_BLOCKED: &str = "FlowsBlocked";
/// How long no namespace must have changed before a check runs.
pub const QUIET: Duration = Duration::from_millis(500);
/// The longest a check waits for quiet under constant churn.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// AppNetworks checked per world (one job of the CPU thread). The check costs more than linearly
/// in the size of its world (`tierflow verify` of the bench's AppNetwork: 8 in 0.03 s and about
/// 2 MiB, 25 in 0.14 s and 7 MiB, 100 in 2.2 s and 28 MiB), and the largest world sets the
/// memory the thread keeps.
pub const CHUNK: usize = 8;
/// Blocked connections named in the condition's message.
const SHOWN: usize = 3;

pub mod state;

pub use state::{Finding, State};

fn key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

fn fingerprint(ctx: &Context, ns: &Namespace) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let name = ns.name_any();
    name.hash(&mut h);
    ns.labels().hash(&mut h);
    for a in ctx.apps_in(&name) {
        (a.name_any(), a.uid(), a.meta().generation).hash(&mut h);
    }
    for p in ctx.user_policies_in(&name) {
        (p.name_any(), p.resource_version()).hash(&mut h);
    }
    for c in ctx.cluster_baselines.state() {
        (c.name_any(), c.meta().generation).hash(&mut h);
    }
    format!("{:?}", ctx.detected().kinds).hash(&mut h);
    h.finish()
}

/// Called once a namespace reconcile is done: marks the namespace for the next check if what
/// the check reads there changed.
pub fn changed(ctx: &Context, ns: &Namespace) {
    let state = &ctx.memory.flows;
    let name = ns.name_any();
    let fp = fingerprint(ctx, ns);
    let new = state
        .fingerprints
        .lock()
        .map(|mut f| f.insert(name.clone(), fp) != Some(fp))
        .unwrap_or(false);
    if new {
        if let Ok(mut d) = state.dirty.lock() {
            d.insert(name);
        }
        state.notify.notify_one();
    }
}

/// The condition for an AppNetwork, from the last check of this generation: `Some(Some(c))`
/// to set, `Some(None)` to remove, `None` to leave as it is (not checked yet).
pub fn condition(
    ctx: &Context,
    ns: &str,
    name: &str,
    uid: Option<&str>,
    generation: Option<i64>,
) -> Option<Option<Condition>> {
    let f = ctx
        .memory
        .flows
        .findings
        .lock()
        .ok()?
        .get(&key(ns, name))
        .cloned()?;
    if f.uid.as_deref() != uid || f.generation != generation {
        return None;
    }
    Some(to_condition(&f))
}

fn to_condition(f: &Finding) -> Option<Condition> {
    if f.flows == 0 {
        return None;
    }
    if f.blocked.is_empty() {
        return Some(status::condition(
            FLOWS_BLOCKED,
            false,
            "FlowsAllowed",
            format!(
                "every declared flow between pods can succeed against everything in force in the namespaces it involves ({} checked)",
                f.flows
            ),
            f.generation,
        ));
    }
    let total: usize = f.blocked.values().map(Vec::len).sum();
    let shown: Vec<&str> = f
        .blocked
        .values()
        .flatten()
        .take(SHOWN)
        .map(String::as_str)
        .collect();
    let more = total.saturating_sub(shown.len());
    let mut msg = format!(
        "{} of {} declared flows cannot succeed: {}",
        f.blocked.len(),
        f.flows,
        shown.join("; ")
    );
    if more > 0 {
        msg.push_str(&format!(" (and {more} more connections)"));
    }
    Some(status::condition(
        FLOWS_BLOCKED,
        true,
        "DeclaredFlowsDenied",
        msg,
        f.generation,
    ))
}

/// Applies [`condition`] to a status's conditions (the hook of the status report); a held
/// AppNetwork is not checked, so it carries none.
pub fn report(
    ctx: &Context,
    ns: &str,
    plan: &crate::plan::AppPlan,
    conditions: &mut Vec<Condition>,
) {
    if plan.held() {
        status::remove(conditions, FLOWS_BLOCKED);
        return;
    }
    match condition(ctx, ns, &plan.name, plan.uid.as_deref(), plan.generation) {
        // False only once it has been True: an AppNetwork never blocked carries none (no
        // status write for every AppNetwork with a flow to another namespace).
        Some(Some(c))
            if c.status == "False" && status::get(conditions, FLOWS_BLOCKED).is_none() => {}
        Some(Some(c)) => status::set(conditions, c),
        Some(None) => status::remove(conditions, FLOWS_BLOCKED),
        None => {}
    }
}

/// The namespaces an AppNetwork's pod peers in other namespaces stand for: those named, and
/// for a peer by label or of every namespace the matching namespaces, those holding AppNetworks
/// first, at most [`MAX_PEER_NAMESPACES`] each (as [`across`] picks them). The second value says
/// whether some peer selects namespaces by label or names every namespace.
fn involved(
    model: &AppModel,
    labels: &BTreeMap<String, Labels>,
    with_apps: &BTreeSet<String>,
) -> (BTreeSet<String>, bool) {
    let mut out = BTreeSet::new();
    let mut wide = false;
    let pick = |matching: Vec<&String>, out: &mut BTreeSet<String>| {
        let (mut first, rest): (Vec<&String>, Vec<&String>) =
            matching.into_iter().partition(|n| with_apps.contains(*n));
        first.extend(rest);
        out.extend(first.into_iter().take(MAX_PEER_NAMESPACES).cloned());
    };
    for f in &model.flows {
        for p in [&f.from, &f.to] {
            let Peer::Pods { namespaces, .. } = p else {
                continue;
            };
            match namespaces {
                NamespaceMatch::Own => {}
                NamespaceMatch::Named(n) => {
                    out.insert(n.clone());
                }
                NamespaceMatch::Selector(s) => {
                    wide = true;
                    pick(
                        labels
                            .iter()
                            .filter(|(_, l)| s.matches(l))
                            .map(|(n, _)| n)
                            .collect(),
                        &mut out,
                    );
                }
                NamespaceMatch::All => {
                    wide = true;
                    pick(labels.keys().collect(), &mut out);
                }
            }
        }
    }
    out.remove(&model.namespace);
    (out, wide)
}

/// The check's task: waits for dirty namespaces, then rechecks what they affect.
pub async fn task(ctx: Arc<Context>) {
    let state = &ctx.memory.flows;
    loop {
        state.notify.notified().await;
        // Wait for quiet: the namespace controller's writes come first.
        let started = Instant::now();
        loop {
            let before = state.dirty.lock().map(|d| d.len()).unwrap_or(0);
            tokio::time::sleep(QUIET).await;
            let after = state.dirty.lock().map(|d| d.len()).unwrap_or(0);
            if after == before || started.elapsed() >= MAX_WAIT {
                break;
            }
        }
        let dirty: BTreeSet<String> = state
            .dirty
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        if !dirty.is_empty() {
            run(&ctx, &dirty).await;
        }
    }
}

/// Rechecks the AppNetworks `dirty` affects and triggers a status report where the result
/// differs from the status.
pub async fn run(ctx: &Arc<Context>, dirty: &BTreeSet<String>) {
    let cluster = ctx.cluster();
    let labels: BTreeMap<String, Labels> = ctx
        .namespaces
        .state()
        .iter()
        .filter(|n| n.meta().deletion_timestamp.is_none())
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect();
    // Every AppNetwork with a flow to or from another namespace, and what it involves.
    let mut affected: Vec<(String, String, BTreeSet<String>)> = Vec::new();
    let keys = ctx.appnets.keys();
    let with_apps: BTreeSet<String> = keys.iter().map(|(ns, _)| ns.clone()).collect();
    for a in ctx.appnets.each() {
        if a.meta().deletion_timestamp.is_some() {
            continue;
        }
        let ns = a.namespace().unwrap_or_default();
        let Ok(model) = crate::validate::app_network(&a.name_any(), &ns, &a.spec) else {
            continue;
        };
        let (mut involved, wide) = involved(&model, &labels, &with_apps);
        if involved.is_empty() && !wide {
            continue;
        }
        involved.insert(ns.clone());
        // A peer by label may start or stop matching any namespace that changed.
        if wide || involved.iter().any(|n| dirty.contains(n)) {
            affected.push((ns, a.name_any(), involved));
        }
    }
    // Forget AppNetworks that are gone.
    if let Ok(mut f) = ctx.memory.flows.findings.lock() {
        let live: BTreeSet<String> = keys.iter().map(|(ns, n)| key(ns, n)).collect();
        f.retain(|k, _| live.contains(k));
    }
    for chunk in affected.chunks(CHUNK) {
        let mut namespaces: BTreeSet<String> = BTreeSet::new();
        for (_, _, inv) in chunk {
            namespaces.extend(inv.iter().cloned());
        }
        let mut world = World {
            apps: Vec::new(),
            cluster_baselines: ctx.cluster_baseline_inputs(),
            namespaces: BTreeMap::new(),
            cluster: cluster.clone(),
            others: Vec::new(),
        };
        for ns in &namespaces {
            if let Some(l) = labels.get(ns) {
                world.namespaces.insert(ns.clone(), l.clone());
            }
            world.apps.extend(ctx.app_inputs(ns));
            world
                .others
                .extend(ctx.user_policies_in(ns).iter().filter_map(|p| {
                    let mut v = serde_json::to_value(p.as_ref()).ok()?;
                    v["apiVersion"] = "networking.k8s.io/v1".into();
                    v["kind"] = "NetworkPolicy".into();
                    Some(v)
                }));
        }
        let only: BTreeSet<String> = chunk.iter().map(|(ns, n, _)| key(ns, n)).collect();
        let meta: HashMap<String, (Option<String>, Option<i64>)> = world
            .apps
            .iter()
            .map(|a| (key(&a.namespace, &a.name), (a.uid.clone(), a.generation)))
            .collect();
        let started = Instant::now();
        let only2 = only.clone();
        let Some(Ok(result)) = ctx
            .cpu
            .run(move || across::check(&world, Some(&only2)))
            .await
        else {
            tracing::warn!(
                apps = only.len(),
                "the check of flows across namespaces failed"
            );
            continue;
        };
        let state = &ctx.memory.flows;
        tracing::debug!(
            apps = only.len(),
            namespaces = namespaces.len(),
            blocked = result.blocked.len(),
            duration_ms = started.elapsed().as_millis() as u64,
            "flows across namespaces checked"
        );
        state
            .checked
            .fetch_add(only.len() as u64, Ordering::Relaxed);
        state
            .micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        for k in &only {
            let Some((uid, generation)) = meta.get(k).cloned() else {
                continue;
            };
            let mut blocked: BTreeMap<usize, Vec<String>> = BTreeMap::new();
            for b in result.blocked.iter().filter(|b| &b.app_network == k) {
                blocked.entry(b.flow).or_default().push(b.describe());
            }
            let finding = Finding {
                uid,
                generation,
                flows: *result.flows_by_app.get(k).unwrap_or(&0),
                blocked,
            };
            if let Ok(mut f) = state.findings.lock() {
                f.insert(k.clone(), finding.clone());
            }
            // Only where the status does not say it yet: after a restart (nothing remembered)
            // the statuses already carry the findings, and a reconcile of every namespace
            // would queue ahead of the changes that matter.
            if !reported(ctx, k, &finding) {
                if let Some((ns, _)) = k.split_once('/') {
                    ctx.triggers.namespace(ns);
                }
            }
        }
    }
}

/// Whether the cached status already says what `finding` says, for the same generation.
fn reported(ctx: &Context, k: &str, finding: &Finding) -> bool {
    let Some((ns, name)) = k.split_once('/') else {
        return true;
    };
    let Some(app) = ctx.appnets.get(ns, name) else {
        return true;
    };
    let have = app
        .status
        .as_ref()
        .and_then(|s| status::get(&s.conditions, FLOWS_BLOCKED))
        .map(|c| (c.status.clone(), c.message.clone(), c.observed_generation));
    let want = to_condition(finding).map(|c| (c.status, c.message, c.observed_generation));
    match (&have, &want) {
        (None, Some((s, _, _))) => s == "False",
        _ => have == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(blocked: &[(usize, &str)], flows: usize) -> Finding {
        let mut b: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (i, d) in blocked {
            b.entry(*i).or_default().push(d.to_string());
        }
        Finding {
            uid: Some("u".into()),
            generation: Some(3),
            flows,
            blocked: b,
        }
    }

    #[test]
    fn a_blocked_flow_is_named_in_the_condition_with_its_generation() {
        let c = to_condition(&finding(
            &[(
                2,
                "spec.flows[2]: a -> b on 80/TCP is blocked at ingress: x",
            )],
            4,
        ))
        .expect("a condition");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "DeclaredFlowsDenied")
        );
        assert_eq!(
            c.message,
            "1 of 4 declared flows cannot succeed: spec.flows[2]: a -> b on 80/TCP is blocked at ingress: x"
        );
        assert_eq!(c.observed_generation, Some(3));
    }

    #[test]
    fn the_message_stays_short_when_many_connections_are_blocked() {
        let many: Vec<(usize, String)> = (0..6)
            .map(|i| (i, format!("spec.flows[{i}]: blocked")))
            .collect();
        let refs: Vec<(usize, &str)> = many.iter().map(|(i, s)| (*i, s.as_str())).collect();
        let c = to_condition(&finding(&refs, 6)).expect("a condition");
        assert!(
            c.message.ends_with("(and 3 more connections)"),
            "{}",
            c.message
        );
    }

    #[test]
    fn nothing_checked_means_no_condition_and_nothing_blocked_means_false() {
        assert_eq!(to_condition(&finding(&[], 0)), None);
        let c = to_condition(&finding(&[], 2)).expect("a condition");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "FlowsAllowed")
        );
    }

    #[test]
    fn a_peer_by_label_involves_the_matching_namespaces_with_app_networks_first() {
        let spec: crate::crd::AppNetworkSpec = serde_yaml::from_str(
            "tiers: [{name: api, selector: {matchLabels: {app: api}}, ports: [{port: 80}]}]\nflows:\n  - {from: {namespaceSelector: {matchLabels: {team: x}}}, to: {tier: api}}\n  - {from: {namespace: ledger}, to: {tier: api}}\n",
        )
        .unwrap();
        let model = crate::validate::app_network("a", "shop", &spec).unwrap();
        let mut labels: BTreeMap<String, Labels> = BTreeMap::new();
        for i in 0..40 {
            labels.insert(
                format!("ns-{i:02}"),
                Labels::from([("team".to_string(), "x".to_string())]),
            );
        }
        labels.insert(
            "shop".into(),
            Labels::from([("team".to_string(), "x".to_string())]),
        );
        let with_apps = BTreeSet::from(["ns-39".to_string()]);
        let (got, wide) = involved(&model, &labels, &with_apps);
        assert!(wide);
        assert!(got.contains("ns-39") && got.contains("ledger") && !got.contains("shop"));
        assert_eq!(got.len(), MAX_PEER_NAMESPACES + 1);
    }
}
