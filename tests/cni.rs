//! CNI detection and backend switching against a real control plane.
//!
//! Its own test binary (and one test), because it installs and deletes CRDs and DaemonSets
//! cluster-wide: it must not run beside tests that expect a fixed backend, and it never runs
//! against an existing cluster (USE_EXISTING_CLUSTER=true), where deleting CRDs would be harmful.

#[path = "e2e/support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use tierflow::apply::api_resource;
use tierflow::controller;
use tierflow::crd::AppNetwork;
use tierflow::render::ObjectKind;

use support::{eventually, TestNs};

const APP: &str = r#"
tiers:
  - {name: frontend, selector: {matchLabels: {app: frontend}}, ports: [{port: 8080}]}
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
flows:
  - {from: {tier: frontend}, to: {tier: api}}
"#;

const CALICO_V3: &[&str] = &[
    "calico/projectcalico.org_networkpolicies.yaml",
    "calico/projectcalico.org_globalnetworkpolicies.yaml",
    "calico/projectcalico.org_stagednetworkpolicies.yaml",
    "calico/projectcalico.org_stagedglobalnetworkpolicies.yaml",
];
const CALICO_V1: &[&str] = &["calico/crd.projectcalico.org_networkpolicies.yaml"];
const CILIUM: &[&str] = &[
    "cilium/ciliumnetworkpolicies.yaml",
    "cilium/ciliumclusterwidenetworkpolicies.yaml",
];
const CLUSTER_NETWORK_POLICY: &[&str] =
    &["network-policy-api/policy.networking.k8s.io_clusternetworkpolicies.standard.yaml"];

async fn delete_crds(client: &Client, groups: &[&str]) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let doomed: Vec<String> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|c| groups.iter().any(|g| c.spec.group == *g))
        .map(|c| c.name_any())
        .collect();
    for n in &doomed {
        let _ = api.delete(n, &DeleteParams::default()).await;
    }
    for n in &doomed {
        eventually(&format!("CRD {n} to be gone"), || async {
            api.get_opt(n).await.unwrap().is_none().then_some(())
        })
        .await;
    }
}

async fn daemonset(client: &Client, name: &str, present: bool) {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    if !present {
        let _ = api.delete(name, &DeleteParams::default()).await;
        return;
    }
    let ds: DaemonSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "registry.invalid/none"}]}}}
    }))
    .unwrap();
    let _ = api.create(&PostParams::default(), &ds).await;
}

/// Waits until the AppNetwork reports `cni` and `backend` for its current generation, Ready.
async fn wait_backend(client: &Client, ns: &str, cni: &str, backend: &str) -> AppNetwork {
    let api = Api::<AppNetwork>::namespaced(client.clone(), ns);
    eventually(&format!("cni {cni}, backend {backend}"), || async {
        let a = api.get("shop").await.ok()?;
        let st = a.status.as_ref()?;
        let ready = st
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        (ready && st.cni.as_deref() == Some(cni) && st.backend.as_deref() == Some(backend))
            .then_some(a)
    })
    .await
}

async fn names(client: &Client, kind: ObjectKind, ns: &str) -> BTreeSet<String> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(kind));
    match api.list(&Default::default()).await {
        Ok(l) => l.items.iter().map(|o| o.name_any()).collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// One observed change: etcd revision, kind, name, and whether the object exists after it.
type Change = (u64, ObjectKind, String, bool);

/// Records every add and delete of tier objects of `kinds` in `ns`, with the etcd revision at
/// which it happened, so the history can be replayed in order across kinds.
fn record(client: &Client, ns: &str, kinds: &[ObjectKind], log: &Arc<Mutex<Vec<Change>>>) {
    for kind in kinds {
        let (log, kind) = (log.clone(), *kind);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(kind));
        // Objects tierflow creates are not modified afterwards, so a first list shows the
        // revision at which each was created.
        let stream = watcher::watcher(
            api,
            watcher::Config::default().labels("tierflow.dev/role=tier"),
        )
        .default_backoff();
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
                log.lock()
                    .unwrap()
                    .push((rv, kind, obj.name_any(), present));
            }
        });
    }
}

/// Waits until the recorder has seen every tier object of `kind`.
async fn recorded(log: &Arc<Mutex<Vec<Change>>>, kind: ObjectKind, tiers: &BTreeSet<String>) {
    eventually(&format!("the recorder to see {kind:?}"), || async {
        let seen: BTreeSet<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.1 == kind && e.3)
            .map(|e| e.2.clone())
            .collect();
        seen.is_superset(tiers).then_some(())
    })
    .await;
}

/// Replays the history in revision order and fails if a tier ever had no policy of any kind
/// once it had one.
fn assert_never_unprotected(log: &[Change]) {
    let mut events = log.to_vec();
    events.sort_by_key(|e| e.0);

    let mut present: BTreeMap<String, BTreeSet<ObjectKind>> = BTreeMap::new();
    for (rv, kind, name, is_present) in events {
        let kinds = present.entry(name.clone()).or_default();
        if is_present {
            kinds.insert(kind);
        } else {
            kinds.remove(&kind);
            assert!(
                !kinds.is_empty(),
                "at revision {rv}, {name} had no policy of any kind ({kind:?} was deleted first)"
            );
        }
    }
}

#[tokio::test]
async fn detection_follows_the_cluster_and_switches_backends_without_a_gap() {
    if std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v == "true") {
        eprintln!("SKIPPED: CNI detection installs and deletes CRDs cluster-wide; not run against an existing cluster");
        return;
    }
    if support::third_party_crds_dir().is_none() {
        eprintln!(
            "SKIPPED: third-party CRDs not found (../shared/crds or TIERFLOW_THIRD_PARTY_CRDS)"
        );
        return;
    }
    let client = support::client().await;
    support::install_crds(&client).await;
    // A clean slate: no CNI resources from earlier runs.
    delete_crds(
        &client,
        &[
            "cilium.io",
            "projectcalico.org",
            "crd.projectcalico.org",
            "policy.networking.k8s.io",
        ],
    )
    .await;
    for ds in [
        "cilium",
        "calico-node",
        "canal",
        "kube-flannel-ds",
        "weave-net",
    ] {
        daemonset(&client, ds, false).await;
    }
    let running = controller::start(client.clone(), controller::Options::default())
        .await
        .expect("operator");

    let ns = TestNs::new(&client, "cni").await;
    let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork",
        "metadata": {"name": "shop"}, "spec": serde_yaml::from_str::<Value>(APP).unwrap()});
    Api::<AppNetwork>::namespaced(client.clone(), &ns.name)
        .patch("shop", &PatchParams::apply("kubectl"), &Patch::Apply(&body))
        .await
        .unwrap();

    // Nothing known: standard NetworkPolicy.
    wait_backend(&client, &ns.name, "Unknown", "NetworkPolicy").await;
    let tiers = BTreeSet::from([
        "tierflow-shop-api".to_string(),
        "tierflow-shop-frontend".to_string(),
    ]);
    assert!(names(&client, ObjectKind::NetworkPolicy, &ns.name)
        .await
        .is_superset(&tiers));

    // A cluster serving only the ClusterNetworkPolicy CRD: an `Auto` ClusterBaseline becomes ONE
    // ClusterNetworkPolicy; AppNetworks stay standard NetworkPolicy.
    assert!(support::install_third_party_crds(&client, CLUSTER_NETWORK_POLICY).await);
    let cb_name = format!("{}-cb", ns.name);
    let cbs: Api<tierflow::crd::ClusterBaseline> = Api::all(client.clone());
    let cb = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "ClusterBaseline",
        "metadata": {"name": cb_name},
        "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.name}}}});
    cbs.patch(&cb_name, &PatchParams::apply("kubectl"), &Patch::Apply(&cb))
        .await
        .unwrap();
    let cnp_api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &api_resource(ObjectKind::ClusterNetworkPolicy),
    );
    eventually(
        "one ClusterNetworkPolicy for the Auto ClusterBaseline",
        || async {
            let cb = cbs.get(&cb_name).await.ok()?;
            let on_cnp = cb.status?.backend.as_deref() == Some("ClusterNetworkPolicy");
            let obj = cnp_api
                .get_opt(&format!("tierflow-baseline-{cb_name}"))
                .await
                .ok()??;
            (on_cnp && obj.data["spec"]["tier"] == "Baseline").then_some(())
        },
    )
    .await;
    wait_backend(&client, &ns.name, "Unknown", "NetworkPolicy").await;
    cbs.delete(&cb_name, &Default::default()).await.unwrap();
    delete_crds(&client, &["policy.networking.k8s.io"]).await;

    // Flannel alone: standard policies, and a loud PolicyEnforced=False.
    daemonset(&client, "kube-flannel-ds", true).await;
    let app = wait_backend(&client, &ns.name, "Flannel", "NetworkPolicy").await;
    let enforced = app
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "PolicyEnforced")
        .unwrap();
    assert_eq!(enforced.status, "False");
    assert!(
        enforced.message.contains("does not enforce NetworkPolicy"),
        "{}",
        enforced.message
    );

    // Calico's internal v1 CRDs only (Canal-like: Calico enforces): still standard, and why.
    assert!(support::install_third_party_crds(&client, CALICO_V1).await);
    let app = wait_backend(&client, &ns.name, "Calico", "NetworkPolicy").await;
    let st = app.status.unwrap();
    assert!(st.conditions.iter().all(|c| c.type_ != "PolicyEnforced"));
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert!(
        ready.message.contains("crd.projectcalico.org/v1"),
        "{}",
        ready.message
    );

    // Calico's v3 API: Calico policies, created before the standard ones go.
    let log = Arc::new(Mutex::new(Vec::new()));
    record(&client, &ns.name, &[ObjectKind::NetworkPolicy], &log);
    recorded(&log, ObjectKind::NetworkPolicy, &tiers).await;
    assert!(support::install_third_party_crds(&client, CALICO_V3).await);
    record(&client, &ns.name, &[ObjectKind::CalicoNetworkPolicy], &log);
    wait_backend(&client, &ns.name, "Calico", "Calico").await;
    eventually("standard tier policies to be pruned", || async {
        let np = names(&client, ObjectKind::NetworkPolicy, &ns.name).await;
        let calico = names(&client, ObjectKind::CalicoNetworkPolicy, &ns.name).await;
        (np.is_disjoint(&tiers) && calico.is_superset(&tiers)).then_some(())
    })
    .await;

    // Cilium: Cilium policies, again create-before-delete.
    recorded(&log, ObjectKind::CalicoNetworkPolicy, &tiers).await;
    assert!(support::install_third_party_crds(&client, CILIUM).await);
    record(&client, &ns.name, &[ObjectKind::CiliumNetworkPolicy], &log);
    wait_backend(&client, &ns.name, "Cilium", "Cilium").await;
    eventually("Calico tier policies to be pruned", || async {
        let calico = names(&client, ObjectKind::CalicoNetworkPolicy, &ns.name).await;
        let cilium = names(&client, ObjectKind::CiliumNetworkPolicy, &ns.name).await;
        (calico.is_disjoint(&tiers) && cilium.is_superset(&tiers)).then_some(())
    })
    .await;
    recorded(&log, ObjectKind::CiliumNetworkPolicy, &tiers).await;
    assert_never_unprotected(&log.lock().unwrap());

    // Cilium's CRDs removed while in use: back to Calico.
    delete_crds(&client, &["cilium.io"]).await;
    wait_backend(&client, &ns.name, "Calico", "Calico").await;
    eventually("Calico tier policies back", || async {
        names(&client, ObjectKind::CalicoNetworkPolicy, &ns.name)
            .await
            .is_superset(&tiers)
            .then_some(())
    })
    .await;

    daemonset(&client, "kube-flannel-ds", false).await;
    running.abort();
    ns.delete().await;
}
