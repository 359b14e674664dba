//! One planner: what `tierflow render` prints is what the operator applies, on every backend;
//! and a generation that cannot be applied whole never prunes what the last one wanted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use tierflow::apply::api_resource;
use tierflow::cli::input::parse;
use tierflow::cli::render::{render_input, RenderOptions};
use tierflow::crd::{AppNetwork, ClusterBaseline};
use tierflow::render::{Object, ObjectKind};
use tierflow::vocab::{INPUTS_ANNOTATION, MANAGED_BY};

use crate::appnetwork::{apply_app, policy, wait_ready};
use crate::support::{self, eventually, TestNs};

const CRDS: &[&str] = &[
    "calico/projectcalico.org_networkpolicies.yaml",
    "calico/projectcalico.org_globalnetworkpolicies.yaml",
    "calico/projectcalico.org_stagednetworkpolicies.yaml",
    "calico/projectcalico.org_stagedglobalnetworkpolicies.yaml",
    "cilium/ciliumnetworkpolicies.yaml",
    "cilium/ciliumclusterwidenetworkpolicies.yaml",
    "network-policy-api/policy.networking.k8s.io_clusternetworkpolicies.standard.yaml",
];

const SHOP: &str = r#"
tiers:
  - {name: frontend, selector: {matchLabels: {app: frontend}}, ports: [{port: 8080, protocol: TCP}]}
  - {name: api, selector: {matchExpressions: [{key: app, operator: In, values: [api, api-canary]}]}, ports: [{port: 8080}]}
  - {name: database, selector: {matchLabels: {app: database}}, ports: [{port: 5432}]}
flows:
  - {from: {tier: frontend}, to: {tier: api}}
  - {from: {tier: api}, to: {tier: database}}
  - from: {namespace: monitoring, selector: {matchLabels: {app: prometheus}}}
    to: {tier: api}
    ports: [{port: 9090}]
  - from: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}
    to: {tier: frontend}
    ports: [{port: 443}]
  - {from: {tier: api}, to: {cidr: 203.0.113.0/24}, ports: [{port: 443}]}
"#;

async fn live(client: &Client, o: &Object) -> Option<DynamicObject> {
    let ar = api_resource(o.kind());
    let api: Api<DynamicObject> = match o.namespace() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.get_opt(o.name()).await.expect("get")
}

/// The records of an object, without the generations (offline input has none).
fn records(v: &Value) -> Value {
    let text = v
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(INPUTS_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or("{}");
    let mut r: Value = serde_json::from_str(text).expect("records are JSON");
    if let Some(map) = r.as_object_mut() {
        for rec in map.values_mut() {
            if let Some(rec) = rec.as_object_mut() {
                rec.remove("generation");
            }
        }
    }
    r
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn render_prints_exactly_what_the_operator_applies_on_every_backend() {
    let ctx = support::operator().await;
    let client = support::client().await;
    if !support::install_third_party_crds(&client, CRDS).await {
        return;
    }
    for backend in ["NetworkPolicy", "Calico", "Cilium", "ClusterNetworkPolicy"] {
        let ns = TestNs::new(&client, &format!("same-{}", backend.to_lowercase())).await;
        let marker = ns.name.clone();
        // Label the namespace so that only this test's ClusterBaseline covers it.
        let ns_api: Api<Namespace> = Api::all(client.clone());
        ns_api
            .patch(
                &ns.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"plan-test": marker}}})),
            )
            .await
            .unwrap();
        let app_yaml = format!("backend: {backend}\n{SHOP}");
        apply_app(&client, &ns.name, "shop", &app_yaml).await;
        let cb_name = ns.name.clone();
        let cb_spec = json!({
            "backend": backend,
            "namespaceSelector": {"matchLabels": {"plan-test": marker}},
            "denyIngress": true, "denyEgress": true,
        });
        let cbs: Api<ClusterBaseline> = Api::all(client.clone());
        cbs.patch(
            &cb_name,
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&json!({
                "apiVersion": "tierflow.dev/v1alpha1", "kind": "ClusterBaseline",
                "metadata": {"name": cb_name}, "spec": cb_spec,
            })),
        )
        .await
        .unwrap();
        wait_ready(&client, &ns.name, "shop", "True").await;
        eventually(&format!("ClusterBaseline {cb_name} Ready"), || async {
            let cb = cbs.get(&cb_name).await.ok()?;
            let st = cb.status?;
            let ready = st.conditions.iter().find(|c| c.type_ == "Ready")?;
            (ready.status == "True" && st.namespaces == 1).then_some(())
        })
        .await;

        // The same inputs, offline.
        let live_ns = ns_api.get(&ns.name).await.unwrap();
        let text = format!(
            "apiVersion: tierflow.dev/v1alpha1\nkind: AppNetwork\nmetadata: {{name: shop, namespace: {ns}}}\nspec:\n{spec}\n---\n\
             apiVersion: tierflow.dev/v1alpha1\nkind: ClusterBaseline\nmetadata: {{name: {cb_name}}}\nspec: {cb}\n---\n\
             apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {labels}}}\n",
            ns = ns.name,
            spec = app_yaml
                .lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
            cb = cb_spec,
            labels = serde_json::to_string(live_ns.labels()).unwrap(),
        );
        let rendered = render_input(
            &parse("same.yaml", &text).unwrap(),
            &RenderOptions {
                operator_namespace: ctx.operator_namespace.clone(),
                ..RenderOptions::default()
            },
        )
        .unwrap();
        assert!(rendered.notes.is_empty(), "{:?}", rendered.notes);

        for want in &rendered.objects {
            let what = format!("{backend}: {:?} {}", want.kind(), want.name());
            let got = eventually(&what, || async {
                let got = serde_json::to_value(live(&client, want).await?).ok()?;
                (got.get("spec") == want.body().get("spec")
                    && records(&got) == records(want.body()))
                .then_some(got)
            })
            .await;
            let (want_labels, got_labels) = (labels(want.body()), labels(&got));
            assert!(
                want_labels
                    .iter()
                    .all(|(k, v)| got_labels.get(k) == Some(v)),
                "{what}: labels {want_labels:?} vs {got_labels:?}"
            );
        }
        // And nothing else of tierflow's: every managed object of the namespace was rendered.
        for kind in [
            ObjectKind::NetworkPolicy,
            ObjectKind::CalicoNetworkPolicy,
            ObjectKind::CiliumNetworkPolicy,
        ] {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &ns.name, &api_resource(kind));
            let lp = kube::api::ListParams::default().labels(&format!("{MANAGED_BY}=tierflow"));
            for o in api.list(&lp).await.unwrap().items {
                assert!(
                    rendered
                        .objects
                        .iter()
                        .any(|r| r.kind() == kind && r.name() == o.name_any()),
                    "{backend}: the operator wrote {kind:?} {} that render does not print",
                    o.name_any()
                );
            }
        }
        cbs.delete(&cb_name, &DeleteParams::default())
            .await
            .unwrap();
        ns.delete().await;
    }
}

#[tokio::test]
async fn a_name_conflict_mid_generation_prunes_nothing_the_last_valid_generation_wants() {
    support::operator().await;
    let client = support::client().await;
    let ns = TestNs::new(&client, "midgen").await;
    let v1 = "tiers:\n  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 8080}]}\n  - {name: db, selector: {matchLabels: {app: db}}, ports: [{port: 5432}]}\nflows:\n  - {from: {tier: web}, to: {tier: db}}\n";
    apply_app(&client, &ns.name, "shop", v1).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    let db_before = policy(&client, &ns.name, "tierflow-shop-db").await.unwrap();
    let baseline_before = policy(&client, &ns.name, "tierflow-baseline")
        .await
        .unwrap();

    // Someone else holds the name the next generation needs.
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let squatter: NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "tierflow-shop-store"},
        "spec": {"podSelector": {"matchLabels": {"app": "other"}}, "policyTypes": ["Ingress"]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &squatter).await.unwrap();

    // Generation 2 renames the tier db to store.
    let v2 = v1
        .replace("name: db", "name: store")
        .replace("tier: db", "tier: store");
    apply_app(&client, &ns.name, "shop", &v2).await;
    let apps: Api<AppNetwork> = Api::namespaced(client.clone(), &ns.name);
    eventually("Ready=False NameConflict for generation 2", || async {
        let a = apps.get("shop").await.ok()?;
        let c = a
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (c.reason == "NameConflict" && c.observed_generation == Some(2)).then_some(())
    })
    .await;
    // What generation 1 wanted stays, untouched: the db tier keeps its policy and the baseline
    // is not rewritten.
    let db = policy(&client, &ns.name, "tierflow-shop-db").await;
    assert_eq!(
        db.and_then(|p| p.resource_version()),
        db_before.resource_version(),
        "the last valid generation's policy was pruned or rewritten"
    );
    assert_eq!(
        policy(&client, &ns.name, "tierflow-baseline")
            .await
            .and_then(|p| p.resource_version()),
        baseline_before.resource_version()
    );

    // The name is freed: generation 2 lands whole, then the old policy goes.
    api.delete("tierflow-shop-store", &DeleteParams::default())
        .await
        .unwrap();
    wait_ready(&client, &ns.name, "shop", "True").await;
    eventually(
        "tierflow-shop-store by tierflow, tierflow-shop-db gone",
        || async {
            let store = policy(&client, &ns.name, "tierflow-shop-store").await?;
            let ours = store.labels().get(MANAGED_BY).map(String::as_str) == Some("tierflow");
            (ours
                && policy(&client, &ns.name, "tierflow-shop-db")
                    .await
                    .is_none())
            .then_some(())
        },
    )
    .await;
    ns.delete().await;
}

#[tokio::test]
async fn an_invalid_app_network_keeps_its_policies_when_its_status_is_cleared() {
    support::operator().await;
    let client = support::client().await;
    let ns = TestNs::new(&client, "nostatus").await;
    let v1 =
        "tiers:\n  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 8080}]}\n";
    apply_app(&client, &ns.name, "shop", v1).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    let names = ["tierflow-shop-web", "tierflow-baseline"];
    let mut before = Vec::new();
    for n in names {
        before.push(
            policy(&client, &ns.name, n)
                .await
                .unwrap()
                .resource_version(),
        );
    }
    let broken = format!("{v1}flows:\n  - {{from: {{tier: nosuch}}, to: {{tier: web}}}}\n");
    apply_app(&client, &ns.name, "shop", &broken).await;
    let apps: Api<AppNetwork> = Api::namespaced(client.clone(), &ns.name);
    let invalid = || async {
        let a = apps.get("shop").await.ok()?;
        let st = a.status?;
        let c = st.conditions.iter().find(|c| c.type_ == "Ready")?;
        (c.reason == "InvalidSpec" && st.observed_generation == a.metadata.generation).then_some(())
    };
    eventually("Ready=False InvalidSpec", invalid).await;
    // Anyone with appnetworks/status can clear it; a restore from backup drops it.
    apps.patch_status(
        "shop",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": null})),
    )
    .await
    .unwrap();
    eventually("the status reported again", invalid).await;
    for (n, rv) in names.iter().zip(before) {
        assert_eq!(
            policy(&client, &ns.name, n)
                .await
                .and_then(|p| p.resource_version()),
            rv,
            "{n} changed while the spec is invalid"
        );
    }
    ns.delete().await;
}
