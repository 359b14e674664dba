//! ClusterBaselines on the ClusterNetworkPolicy backend and guardrails, against the real
//! network-policy-api v0.2.0 CRD (and Calico's, for guardrails) from ../shared/crds: one object
//! accepted by the real schema, new namespaces covered through its namespace selector at once,
//! the opt-out label honoured, guardrail objects accepted, `GuardrailOverrides` reported on an
//! AppNetwork, and a switch NetworkPolicy → ClusterNetworkPolicy → NetworkPolicy that leaves no
//! namespace uncovered at any revision (the watch history is recorded and replayed, as
//! `tests/cni.rs` does for Calico and Cilium).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use tierflow::apply::api_resource;
use tierflow::crd::{AppNetwork, ClusterBaseline};
use tierflow::render::ObjectKind;

use crate::support::{self, create_namespace, delete_namespace, eventually, TestNs};

const CRDS: &[&str] = &[
    "calico/projectcalico.org_networkpolicies.yaml",
    "calico/projectcalico.org_globalnetworkpolicies.yaml",
    "calico/projectcalico.org_stagednetworkpolicies.yaml",
    "calico/projectcalico.org_stagedglobalnetworkpolicies.yaml",
    "network-policy-api/policy.networking.k8s.io_clusternetworkpolicies.standard.yaml",
];
const SCOPE: &str = "tierflow.dev/cnp-test";

async fn setup(prefix: &str) -> Option<(Client, TestNs)> {
    support::operator().await;
    let client = support::client().await;
    if !support::install_third_party_crds(&client, CRDS).await {
        return None;
    }
    let ns = TestNs::new(&client, prefix).await;
    Some((client, ns))
}

async fn apply_cb(client: &Client, name: &str, spec: Value) {
    let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "ClusterBaseline",
                      "metadata": {"name": name}, "spec": spec});
    Api::<ClusterBaseline>::all(client.clone())
        .patch(
            name,
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("apply ClusterBaseline");
}

async fn delete_cb(client: &Client, name: &str) {
    let _ = Api::<ClusterBaseline>::all(client.clone())
        .delete(name, &Default::default())
        .await;
}

async fn cluster_object(client: &Client, kind: ObjectKind, name: &str) -> Option<DynamicObject> {
    Api::<DynamicObject>::all_with(client.clone(), &api_resource(kind))
        .get_opt(name)
        .await
        .ok()
        .flatten()
}

/// Waits until the ClusterBaseline's status is current, Ready, on `backend`, counting
/// `namespaces`.
async fn wait_cb(client: &Client, name: &str, backend: &str, namespaces: i64) -> ClusterBaseline {
    let api = Api::<ClusterBaseline>::all(client.clone());
    eventually(
        &format!("ClusterBaseline {name} on {backend} counting {namespaces}"),
        || async {
            let cb = api.get(name).await.ok()?;
            let st = cb.status.as_ref()?;
            let ready = st
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            (ready
                && st.observed_generation == cb.metadata.generation
                && st.backend.as_deref() == Some(backend)
                && st.namespaces == namespaces)
                .then_some(cb)
        },
    )
    .await
}

/// A Kubernetes label selector (`matchLabels`, `matchExpressions`) against labels.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let exprs_ok = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let got = labels.get(key).map(String::as_str);
            match e["operator"].as_str().unwrap_or_default() {
                "In" => got.is_some_and(|g| values.contains(&g)),
                "NotIn" => got.is_none_or(|g| !values.contains(&g)),
                "Exists" => got.is_some(),
                "DoesNotExist" => got.is_none(),
                other => panic!("unknown operator {other}"),
            }
        });
    labels_ok && exprs_ok
}

async fn namespace_labels(client: &Client, ns: &str) -> BTreeMap<String, String> {
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .get(ns)
        .await
        .expect("namespace")
        .labels()
        .clone()
}

#[tokio::test]
async fn one_cluster_network_policy_covers_new_namespaces_at_once_and_honours_the_opt_out() {
    let Some((client, scratch)) = setup("cnp-cover").await else {
        return;
    };
    let scope = scratch.name.clone();
    let first = format!("{scope}-a");
    create_namespace(&client, &first, &[(SCOPE, &scope)]).await;
    let cb = format!("{scope}-cnp");
    apply_cb(
        &client,
        &cb,
        json!({"backend": "ClusterNetworkPolicy",
               "namespaceSelector": {"matchLabels": {SCOPE: scope}}}),
    )
    .await;
    let object_name = format!("tierflow-baseline-{cb}");
    // One object, accepted by the real CRD, tier Baseline.
    let obj = eventually("the ClusterNetworkPolicy", || async {
        cluster_object(&client, ObjectKind::ClusterNetworkPolicy, &object_name).await
    })
    .await;
    assert_eq!(obj.data["spec"]["tier"], "Baseline");
    wait_cb(&client, &cb, "ClusterNetworkPolicy", 1).await;
    let subject = obj.data["spec"]["subject"]["namespaces"].clone();
    assert!(selects(&subject, &namespace_labels(&client, &first).await));
    // No per-namespace object on this backend.
    let np: Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        Api::namespaced(client.clone(), &first);
    assert!(np.get_opt("tierflow-baseline").await.unwrap().is_none());

    // A NEW namespace: the object's selector matches it as created (nothing to write), and the
    // status counts it within a second.
    let second = format!("{scope}-b");
    let started = Instant::now();
    create_namespace(&client, &second, &[(SCOPE, &scope)]).await;
    assert!(selects(&subject, &namespace_labels(&client, &second).await));
    wait_cb(&client, &cb, "ClusterNetworkPolicy", 2).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the new namespace was counted after {took:?}"
    );
    let same = cluster_object(&client, ObjectKind::ClusterNetworkPolicy, &object_name)
        .await
        .expect("still there");
    assert_eq!(same.data["spec"]["subject"]["namespaces"], subject);

    // The opt-out label: the selector no longer matches, and the status stops counting it.
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .patch(
            &second,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tierflow.dev/baseline": "disabled"}}})),
        )
        .await
        .expect("opt out");
    assert!(!selects(
        &subject,
        &namespace_labels(&client, &second).await
    ));
    wait_cb(&client, &cb, "ClusterNetworkPolicy", 1).await;

    // Cleanup. The object goes with its owner through the garbage collector, which learns of a
    // CRD installed moments ago only at its next discovery (up to 30 s on a fresh control
    // plane), so the test does not wait for it; its selector matches only this test's
    // namespaces.
    delete_cb(&client, &cb).await;
    delete_namespace(&client, &first).await;
    delete_namespace(&client, &second).await;
    scratch.delete().await;
}

const GUARDRAILS: &str = r#"
priority: 10
rules:
  - {name: no-metadata, action: Deny, direction: Egress, peers: [{cidr: 169.254.169.254/32}], ports: [{port: 80}]}
  - name: monitoring-scrapes
    action: Allow
    direction: Ingress
    peers: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app: prometheus}}}]
    ports: [{port: 9090}]
  - name: not-from-tenant-b
    action: Deny
    direction: Ingress
    peers: [{namespaceSelector: {matchLabels: {tenant: b}}}]
"#;

#[tokio::test]
async fn guardrail_objects_are_accepted_and_an_overridden_flow_is_reported_on_the_app() {
    let Some((client, ns)) = setup("cnp-guard").await else {
        return;
    };
    let scope = ns.name.clone();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .patch(
            &scope,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {SCOPE: scope}}})),
        )
        .await
        .expect("label");
    let guardrails: Value = serde_yaml::from_str(GUARDRAILS).unwrap();
    for (backend, kind) in [
        ("ClusterNetworkPolicy", ObjectKind::ClusterNetworkPolicy),
        ("Calico", ObjectKind::CalicoGlobalNetworkPolicy),
    ] {
        let cb = format!("{scope}-{}", backend.to_lowercase());
        apply_cb(
            &client,
            &cb,
            json!({"backend": backend, "namespaceSelector": {"matchLabels": {SCOPE: scope}},
                   "guardrails": guardrails}),
        )
        .await;
        let g = eventually(&format!("the {backend} guardrails object"), || async {
            cluster_object(&client, kind, &format!("tierflow-guardrails-{cb}")).await
        })
        .await;
        if backend == "ClusterNetworkPolicy" {
            assert_eq!(g.data["spec"]["tier"], "Admin");
            assert_eq!(g.data["spec"]["priority"], 10);
        } else {
            assert_eq!(g.data["spec"]["order"], 10);
        }
        wait_cb(&client, &cb, backend, 1).await;
        delete_cb(&client, &cb).await;
    }

    // An AppNetwork of the covered namespace declaring what a guardrail denies.
    let cb = format!("{scope}-g");
    apply_cb(
        &client,
        &cb,
        json!({"backend": "ClusterNetworkPolicy",
               "namespaceSelector": {"matchLabels": {SCOPE: scope}}, "guardrails": guardrails}),
    )
    .await;
    wait_cb(&client, &cb, "ClusterNetworkPolicy", 1).await;
    let spec: Value = serde_yaml::from_str(
        "tiers:\n  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}\nflows:\n  - {from: {tier: api}, to: {cidr: 198.51.100.0/24}, ports: [{port: 443}]}\n  - {from: {tier: api}, to: {cidr: 169.254.169.254/32}, ports: [{port: 80}]}\n",
    )
    .unwrap();
    let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork",
                      "metadata": {"name": "shop"}, "spec": spec});
    let apps = Api::<AppNetwork>::namespaced(client.clone(), &scope);
    apps.patch("shop", &PatchParams::apply("kubectl"), &Patch::Apply(&body))
        .await
        .expect("apply app");
    let c = eventually("GuardrailOverrides=True", || async {
        let a = apps.get("shop").await.ok()?;
        a.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "GuardrailOverrides" && c.status == "True")
    })
    .await;
    assert_eq!(c.reason, "GuardrailDenies");
    assert!(
        c.message.contains("spec.flows[1]")
            && c.message.contains("guardrail \"no-metadata\"")
            && c.message.contains(&format!("ClusterBaseline {cb}"))
            && !c.message.contains("spec.flows[0]"),
        "{}",
        c.message
    );
    // Without the guardrails the condition goes.
    delete_cb(&client, &cb).await;
    eventually("GuardrailOverrides to go", || async {
        let a = apps.get("shop").await.ok()?;
        a.status?
            .conditions
            .iter()
            .all(|c| c.type_ != "GuardrailOverrides")
            .then_some(())
    })
    .await;
    ns.delete().await;
}

/// One observed change: etcd revision, kind, `namespace/name`, present after it.
type Change = (u64, ObjectKind, String, bool);

fn record(client: &Client, kind: ObjectKind, label: &str, log: &Arc<Mutex<Vec<Change>>>) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(kind));
    let stream = watcher::watcher(api, watcher::Config::default().labels(label)).default_backoff();
    let log = log.clone();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            let Ok(ev) = ev else { continue };
            let (obj, present) = match ev {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => (o, true),
                watcher::Event::Delete(o) => (o, false),
                _ => continue,
            };
            let rv = obj
                .resource_version()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
            if let Ok(mut l) = log.lock() {
                l.push((rv, kind, key, present));
            }
        }
    });
}

/// Replays the history in revision order: once covered, each namespace of `members` always
/// has its `tierflow-baseline` NetworkPolicy or the ClusterNetworkPolicy `cnp`.
fn assert_never_uncovered(log: &[Change], members: &[String], cnp: &str) {
    let mut events = log.to_vec();
    events.sort_by_key(|e| e.0);
    let mut present: BTreeSet<String> = BTreeSet::new();
    let cnp_key = format!("/{cnp}");
    let covered = |p: &BTreeSet<String>, ns: &str| {
        p.contains(&cnp_key) || p.contains(&format!("{ns}/tierflow-baseline"))
    };
    let mut ever: BTreeSet<String> = BTreeSet::new();
    for (rv, _, key, is_present) in events {
        if is_present {
            present.insert(key.clone());
        } else {
            present.remove(&key);
        }
        for ns in members {
            if covered(&present, ns) {
                ever.insert(ns.clone());
            } else {
                assert!(
                    !ever.contains(ns),
                    "at revision {rv}, {ns} was uncovered (after {key} changed)"
                );
            }
        }
    }
    assert_eq!(ever.len(), members.len(), "{ever:?}");
}

#[tokio::test]
async fn switching_between_network_policy_and_cluster_network_policy_leaves_no_gap() {
    let Some((client, scratch)) = setup("cnp-switch").await else {
        return;
    };
    let scope = scratch.name.clone();
    let members: Vec<String> = ["a", "b"].iter().map(|s| format!("{scope}-{s}")).collect();
    for m in &members {
        create_namespace(&client, m, &[(SCOPE, &scope)]).await;
    }
    let cb = format!("{scope}-sw");
    let cnp = format!("tierflow-baseline-{cb}");
    let spec = |backend: &str| json!({"backend": backend, "namespaceSelector": {"matchLabels": {SCOPE: scope}}});
    apply_cb(&client, &cb, spec("NetworkPolicy")).await;
    wait_cb(&client, &cb, "NetworkPolicy", 2).await;

    let log = Arc::new(Mutex::new(Vec::new()));
    record(
        &client,
        ObjectKind::NetworkPolicy,
        "tierflow.dev/role=baseline",
        &log,
    );
    record(
        &client,
        ObjectKind::ClusterNetworkPolicy,
        "tierflow.dev/role=cluster-baseline",
        &log,
    );
    let seen = |want_np: bool, want_cnp: bool| {
        let log = log.clone();
        let members = members.clone();
        let cnp = cnp.clone();
        async move {
            let l = log.lock().ok()?;
            let mut p = BTreeSet::new();
            let mut events = l.clone();
            events.sort_by_key(|e| e.0);
            for (_, _, key, present) in events {
                if present {
                    p.insert(key);
                } else {
                    p.remove(&key);
                }
            }
            let np = members
                .iter()
                .all(|m| p.contains(&format!("{m}/tierflow-baseline")));
            let np_none = members
                .iter()
                .all(|m| !p.contains(&format!("{m}/tierflow-baseline")));
            let c = p.contains(&format!("/{cnp}"));
            ((if want_np { np } else { np_none }) && c == want_cnp).then_some(())
        }
    };
    eventually("the recorder to see the namespace baselines", || {
        seen(true, false)
    })
    .await;

    apply_cb(&client, &cb, spec("ClusterNetworkPolicy")).await;
    wait_cb(&client, &cb, "ClusterNetworkPolicy", 2).await;
    eventually("the switch to ClusterNetworkPolicy, recorded", || {
        seen(false, true)
    })
    .await;

    apply_cb(&client, &cb, spec("NetworkPolicy")).await;
    wait_cb(&client, &cb, "NetworkPolicy", 2).await;
    eventually("the switch back to NetworkPolicy, recorded", || {
        seen(true, false)
    })
    .await;

    let history = log.lock().map(|l| l.clone()).unwrap_or_default();
    assert_never_uncovered(&history, &members, &cnp);
    // Both kinds were seen coming and going.
    for kind in [ObjectKind::NetworkPolicy, ObjectKind::ClusterNetworkPolicy] {
        assert!(
            history.iter().any(|e| e.1 == kind && !e.3),
            "{kind:?} never deleted: {history:?}"
        );
    }

    delete_cb(&client, &cb).await;
    for m in &members {
        delete_namespace(&client, m).await;
    }
    scratch.delete().await;
}
