//! ClusterBaseline end to end: deny-all and DNS in every matching namespace, automatically.
//!
//! Every test scopes its ClusterBaselines to namespaces carrying a label unique to the test, so
//! tests never see each other's baselines.

use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use tierflow::crd::{AppNetwork, ClusterBaseline};

use crate::appnetwork::{
    apply_app, policy, run_namespace_reconcile, spec_json, wait_gone, wait_policy, wait_ready,
};
use crate::support::{self, create_namespace, delete_namespace, eventually};

const SCOPE: &str = "tierflow.dev/cb-test";

static N: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this process and call.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

async fn setup() -> Client {
    support::operator().await;
    support::client().await
}

async fn apply_cb(client: &Client, name: &str, spec: Value) -> ClusterBaseline {
    let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "ClusterBaseline", "metadata": {"name": name}, "spec": spec});
    Api::<ClusterBaseline>::all(client.clone())
        .patch(
            name,
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("apply ClusterBaseline")
}

async fn delete_cb(client: &Client, name: &str) {
    Api::<ClusterBaseline>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete");
}

/// Waits until the ClusterBaseline's status is current and `check` holds.
async fn wait_cb(
    client: &Client,
    name: &str,
    check: impl Fn(&ClusterBaseline) -> bool,
) -> ClusterBaseline {
    let api = Api::<ClusterBaseline>::all(client.clone());
    eventually(&format!("ClusterBaseline {name}"), || async {
        let cb = api.get(name).await.ok()?;
        let current = cb.status.as_ref()?.observed_generation == cb.metadata.generation;
        (current && check(&cb)).then_some(cb)
    })
    .await
}

fn covered(cb: &ClusterBaseline) -> i64 {
    cb.status.as_ref().map_or(0, |s| s.namespaces)
}

fn ready(cb: &ClusterBaseline) -> (String, String) {
    let c = cb
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned())
        .unwrap();
    (c.status, c.reason)
}

fn scoped(scope: &str) -> Value {
    json!({"namespaceSelector": {"matchLabels": {SCOPE: scope}}})
}

async fn relabel(client: &Client, ns: &str, key: &str, value: Option<&str>) {
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {key: value}}})),
        )
        .await
        .expect("relabel namespace");
}

fn types(p: &NetworkPolicy) -> Value {
    spec_json(p)["policyTypes"].clone()
}

#[tokio::test]
async fn existing_and_new_namespaces_get_the_baseline_and_lose_it_with_the_cluster_baseline() {
    let client = setup().await;
    let scope = unique("s");
    let (a, b) = (unique("cb-old"), unique("cb-new"));
    create_namespace(&client, &a, &[(SCOPE, &scope)]).await;
    let cb = unique("cb");
    apply_cb(&client, &cb, scoped(&scope)).await;
    let base = wait_policy(&client, &a, "tierflow-baseline", |s| {
        s["policyTypes"] == json!(["Ingress", "Egress"])
    })
    .await;
    // DNS over UDP and TCP to kube-dns, one namespace+pod peer
    assert_eq!(
        spec_json(&base)["egress"],
        json!([{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                         "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}])
    );
    assert_eq!(base.labels()["app.kubernetes.io/managed-by"], "tierflow");
    assert_eq!(base.owner_references()[0].kind, "ClusterBaseline");

    // a namespace created afterwards gets it too (waited on, not slept for)
    create_namespace(&client, &b, &[(SCOPE, &scope)]).await;
    wait_policy(&client, &b, "tierflow-baseline", |_| true).await;
    let st = wait_cb(&client, &cb, |c| covered(c) == 2).await;
    assert_eq!(ready(&st), ("True".into(), "Applied".into()));

    delete_cb(&client, &cb).await;
    wait_gone(&client, &a, "tierflow-baseline").await;
    wait_gone(&client, &b, "tierflow-baseline").await;
    delete_namespace(&client, &a).await;
    delete_namespace(&client, &b).await;
}

#[tokio::test]
async fn excluded_and_system_namespaces_never_get_the_baseline() {
    let client = setup().await;
    let (keep, skip) = (unique("cb-keep"), unique("cb-skip"));
    create_namespace(&client, &keep, &[]).await;
    create_namespace(&client, &skip, &[]).await;
    let cb = unique("cb");
    // Selects the system namespaces by name, which must not be enough to cover them.
    apply_cb(
        &client,
        &cb,
        json!({
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                "values": ["kube-system", "kube-public", "kube-node-lease", "tierflow-system", keep, skip]}]},
            "excludeNamespaces": [skip],
        }),
    )
    .await;
    wait_policy(&client, &keep, "tierflow-baseline", |_| true).await;
    wait_cb(&client, &cb, |c| covered(c) == 1).await;
    for ns in [
        "kube-system",
        "kube-public",
        "kube-node-lease",
        skip.as_str(),
    ] {
        assert!(
            policy(&client, ns, "tierflow-baseline").await.is_none(),
            "{ns} must not get a baseline"
        );
    }
    delete_cb(&client, &cb).await;
    wait_gone(&client, &keep, "tierflow-baseline").await;
    delete_namespace(&client, &keep).await;
    delete_namespace(&client, &skip).await;
}

#[tokio::test]
async fn relabelling_a_namespace_in_and_out_adds_and_removes_its_baseline() {
    let client = setup().await;
    let scope = unique("s");
    let ns = unique("cb-relabel");
    create_namespace(&client, &ns, &[]).await;
    let cb = unique("cb");
    apply_cb(&client, &cb, scoped(&scope)).await;
    wait_cb(&client, &cb, |c| ready(c).0 == "True").await;
    assert!(policy(&client, &ns, "tierflow-baseline").await.is_none());

    relabel(&client, &ns, SCOPE, Some(&scope)).await;
    wait_policy(&client, &ns, "tierflow-baseline", |_| true).await;
    relabel(&client, &ns, SCOPE, None).await;
    wait_gone(&client, &ns, "tierflow-baseline").await;

    delete_cb(&client, &cb).await;
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn two_overlapping_cluster_baselines_merge_and_never_fight() {
    let client = setup().await;
    let scope = unique("s");
    let ns = unique("cb-overlap");
    create_namespace(&client, &ns, &[(SCOPE, &scope)]).await;
    let (ingress_only, egress_only) = (unique("cb-in"), unique("cb-eg"));
    let mut spec = scoped(&scope);
    spec["denyEgress"] = json!(false);
    apply_cb(&client, &ingress_only, spec).await;
    let mut spec = scoped(&scope);
    spec["denyIngress"] = json!(false);
    apply_cb(&client, &egress_only, spec).await;

    let merged = wait_policy(&client, &ns, "tierflow-baseline", |s| {
        s["policyTypes"] == json!(["Ingress", "Egress"])
    })
    .await;
    assert_eq!(merged.owner_references().len(), 2);
    assert_eq!(
        spec_json(&merged)["egress"][0]["ports"][1],
        json!({"port": 53, "protocol": "TCP"})
    );
    // Never fight: the object settles, and stays settled across a reconcile.
    let rv = merged.resource_version();
    wait_cb(&client, &ingress_only, |c| covered(c) == 1).await;
    wait_cb(&client, &egress_only, |c| covered(c) == 1).await;
    assert_eq!(
        policy(&client, &ns, "tierflow-baseline")
            .await
            .unwrap()
            .resource_version(),
        rv
    );

    delete_cb(&client, &ingress_only).await;
    // The spec changes with one server-side apply; the deleted ClusterBaseline's owner
    // reference (recorded by the create, so not the apply's to remove) goes with the
    // follow-up replacement. The settled object has both.
    let only_egress = eventually(
        "the baseline of the egress-only ClusterBaseline alone",
        || {
            let client = client.clone();
            let ns = ns.clone();
            async move {
                policy(&client, &ns, "tierflow-baseline").await.filter(|p| {
                    spec_json(p)["policyTypes"] == json!(["Egress"])
                        && p.owner_references().len() == 1
                })
            }
        },
    )
    .await;
    assert_eq!(
        only_egress.owner_references()[0].name,
        egress_only,
        "the remaining owner is the ClusterBaseline still there"
    );
    delete_cb(&client, &egress_only).await;
    wait_gone(&client, &ns, "tierflow-baseline").await;
    delete_namespace(&client, &ns).await;
}

const APP: &str =
    "tiers:\n  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 80}]}\n";

#[tokio::test]
async fn merges_with_an_appnetwork_baseline_and_cleans_up_in_either_deletion_order() {
    let client = setup().await;
    for cluster_baseline_first in [true, false] {
        let scope = unique("s");
        let ns = unique("cb-merge");
        create_namespace(&client, &ns, &[(SCOPE, &scope)]).await;
        let cb = unique("cb");
        let mut spec = scoped(&scope);
        spec["denyEgress"] = json!(false); // the ClusterBaseline denies ingress only
        apply_cb(&client, &cb, spec).await;
        wait_policy(&client, &ns, "tierflow-baseline", |s| {
            s["policyTypes"] == json!(["Ingress"])
        })
        .await;
        apply_app(&client, &ns, "web", APP).await; // the AppNetwork denies both
        wait_ready(&client, &ns, "web", "True").await;
        let merged = wait_policy(&client, &ns, "tierflow-baseline", |s| {
            s["policyTypes"] == json!(["Ingress", "Egress"])
        })
        .await;
        let mut kinds: Vec<_> = merged
            .owner_references()
            .iter()
            .map(|o| o.kind.clone())
            .collect();
        kinds.sort();
        assert_eq!(kinds, ["AppNetwork", "ClusterBaseline"]);

        if cluster_baseline_first {
            delete_cb(&client, &cb).await;
            // the AppNetwork still wants both directions denied
            let left = wait_policy(&client, &ns, "tierflow-baseline", |_| true).await;
            eventually("the ClusterBaseline's owner reference to go", || async {
                let p = policy(&client, &ns, "tierflow-baseline").await?;
                (p.owner_references().len() == 1).then_some(())
            })
            .await;
            assert_eq!(types(&left), json!(["Ingress", "Egress"]));
            Api::<AppNetwork>::namespaced(client.clone(), &ns)
                .delete("web", &DeleteParams::default())
                .await
                .unwrap();
        } else {
            Api::<AppNetwork>::namespaced(client.clone(), &ns)
                .delete("web", &DeleteParams::default())
                .await
                .unwrap();
            wait_policy(&client, &ns, "tierflow-baseline", |s| {
                s["policyTypes"] == json!(["Ingress"])
            })
            .await;
            delete_cb(&client, &cb).await;
        }
        wait_gone(&client, &ns, "tierflow-baseline").await;
        delete_namespace(&client, &ns).await;
    }
}

#[tokio::test]
async fn a_namespace_can_opt_out_and_the_status_says_so() {
    let client = setup().await;
    let scope = unique("s");
    let ns = unique("cb-optout");
    create_namespace(
        &client,
        &ns,
        &[(SCOPE, &scope), ("tierflow.dev/baseline", "disabled")],
    )
    .await;
    let cb = unique("cb");
    apply_cb(&client, &cb, scoped(&scope)).await;
    let st = wait_cb(&client, &cb, |c| {
        c.status
            .as_ref()
            .is_some_and(|s| s.opted_out == vec![ns.clone()])
    })
    .await;
    assert_eq!(covered(&st), 0);
    assert!(policy(&client, &ns, "tierflow-baseline").await.is_none());

    relabel(&client, &ns, "tierflow.dev/baseline", None).await;
    wait_policy(&client, &ns, "tierflow-baseline", |_| true).await;
    delete_cb(&client, &cb).await;
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn a_namespace_deleted_while_reconciled_is_skipped_without_errors() {
    let client = setup().await;
    let scope = unique("s");
    let cb = unique("cb");
    apply_cb(&client, &cb, scoped(&scope)).await;
    let doomed: Vec<String> = (0..5).map(|_| unique("cb-doomed")).collect();
    for ns in &doomed {
        create_namespace(&client, ns, &[(SCOPE, &scope)]).await;
        delete_namespace(&client, ns).await;
    }
    let survivor = unique("cb-survivor");
    create_namespace(&client, &survivor, &[(SCOPE, &scope)]).await;
    wait_policy(&client, &survivor, "tierflow-baseline", |_| true).await;
    let st = wait_cb(&client, &cb, |c| covered(c) >= 1 && ready(c).0 == "True").await;
    assert!(st.status.unwrap().failed.is_empty());
    delete_cb(&client, &cb).await;
    delete_namespace(&client, &survivor).await;
}

#[tokio::test]
async fn an_invalid_update_keeps_the_last_valid_baseline_in_place() {
    let client = setup().await;
    let scope = unique("s");
    let ns = unique("cb-invalid");
    create_namespace(&client, &ns, &[(SCOPE, &scope)]).await;
    let cb = unique("cb");
    apply_cb(&client, &cb, scoped(&scope)).await;
    let before = wait_policy(&client, &ns, "tierflow-baseline", |_| true).await;
    wait_cb(&client, &cb, |c| covered(c) == 1).await;

    let mut bad = scoped(&scope);
    bad["excludeNamespaces"] = json!(["Not_A_Namespace"]);
    bad["denyIngress"] = json!(false);
    apply_cb(&client, &cb, bad).await;
    let st = wait_cb(&client, &cb, |c| ready(c).1 == "InvalidSpec").await;
    let msg = st
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message;
    assert!(
        msg.contains("spec.excludeNamespaces[0]: \"Not_A_Namespace\" is not a namespace name"),
        "{msg}"
    );
    // a namespace reconcile after the invalid update writes nothing
    let ctx = support::operator().await;
    assert_eq!(run_namespace_reconcile(&ctx, &client, &ns).await, 0);
    let after = policy(&client, &ns, "tierflow-baseline").await.unwrap();
    assert_eq!(after.resource_version(), before.resource_version());
    delete_cb(&client, &cb).await;
    delete_namespace(&client, &ns).await;
}
