//! Every backend's variant of the examples is accepted by the API server against the real
//! Calico and Cilium schemas (from ../shared/crds), and what a backend cannot express is said.

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use tierflow::apply::api_resource;
use tierflow::crd::{AppNetwork, ClusterBaseline};
use tierflow::render::ObjectKind;

use crate::appnetwork::{apply_app, spec_json, wait_policy, wait_ready};
use crate::support::{self, create_namespace, delete_namespace, eventually, TestNs};

const CRDS: &[&str] = &[
    "calico/projectcalico.org_networkpolicies.yaml",
    "calico/projectcalico.org_globalnetworkpolicies.yaml",
    "calico/projectcalico.org_stagednetworkpolicies.yaml",
    "calico/projectcalico.org_stagedglobalnetworkpolicies.yaml",
    "cilium/ciliumnetworkpolicies.yaml",
    "cilium/ciliumclusterwidenetworkpolicies.yaml",
    "network-policy-api/policy.networking.k8s.io_clusternetworkpolicies.standard.yaml",
];

const THREE_TIER: &str = r#"
tiers:
  - {name: frontend, selector: {matchLabels: {app: frontend}}, ports: [{port: 8080, protocol: TCP}]}
  - {name: api, selector: {matchExpressions: [{key: app, operator: In, values: [api, api-canary]}, {key: legacy, operator: DoesNotExist}]}, ports: [{port: 8080}]}
  - {name: database, selector: {matchLabels: {app: database}}, ports: [{port: 5432}]}
flows:
  - {from: {tier: frontend}, to: {tier: api}}
  - {from: {tier: api}, to: {tier: database}}
  - {from: {tier: database}, to: {tier: database}}
  - from: {namespace: monitoring, selector: {matchLabels: {app: prometheus}}}
    to: {tier: api}
    ports: [{port: 9090}]
  - from: {namespaceSelector: {matchLabels: {team: payments}}}
    to: {tier: api}
    ports: [{port: 8443}]
  - from: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}
    to: {tier: frontend}
    ports: [{port: 80}, {port: 443}]
  - {from: {tier: api}, to: {cidr: 203.0.113.0/24}, ports: [{port: 443}, {port: 53, protocol: UDP}]}
"#;

const L7_FQDN: &str = r#"
tiers:
  - {name: frontend, selector: {matchLabels: {app: frontend}}, ports: [{port: 8080}]}
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
flows:
  - {from: {tier: frontend}, to: {tier: api}, http: [{method: GET, path: "/api/.*"}, {method: POST, path: "/api/orders"}]}
  - {from: {tier: api}, to: {fqdn: "*.example.com"}, ports: [{port: 443}]}
  - {from: {tier: api}, to: {fqdn: api.payments.example}, ports: [{port: 443}]}
  - {from: {tier: api}, to: {kubeAPIServer: true}}
"#;

async fn setup(prefix: &str) -> Option<(Client, TestNs)> {
    support::operator().await;
    let client = support::client().await;
    if !support::install_third_party_crds(&client, CRDS).await {
        return None;
    }
    let ns = TestNs::new(&client, prefix).await;
    Some((client, ns))
}

fn with_backend(spec: &str, backend: &str) -> String {
    format!("backend: {backend}\n{spec}")
}

async fn objects(client: &Client, kind: ObjectKind, ns: Option<&str>) -> Vec<DynamicObject> {
    let ar = api_resource(kind);
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let mut items = api.list(&Default::default()).await.expect("list").items;
    items.sort_by_key(|o| o.name_any());
    items
}

async fn wait_objects(client: &Client, kind: ObjectKind, ns: &str, n: usize) -> Vec<DynamicObject> {
    eventually(&format!("{n} {kind:?} in {ns}"), || async {
        let items = objects(client, kind, Some(ns)).await;
        (items.len() == n).then_some(items)
    })
    .await
}

fn ready(app: &AppNetwork) -> (String, String, String) {
    let c = app
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn condition(app: &AppNetwork, type_: &str) -> Option<(String, String)> {
    app.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.message.clone()))
}

#[tokio::test]
async fn the_three_tier_example_is_accepted_on_calico_and_cilium() {
    let Some((client, ns)) = setup("variants").await else {
        return;
    };
    for (backend, kind) in [
        ("Calico", ObjectKind::CalicoNetworkPolicy),
        ("Cilium", ObjectKind::CiliumNetworkPolicy),
    ] {
        let name = backend.to_lowercase();
        apply_app(&client, &ns.name, &name, &with_backend(THREE_TIER, backend)).await;
        let app = wait_ready(&client, &ns.name, &name, "True").await;
        assert_eq!(
            app.status.as_ref().unwrap().backend.as_deref(),
            Some(backend)
        );
        let objs = objects(&client, kind, Some(&ns.name)).await;
        let mine: Vec<_> = objs
            .iter()
            .filter(|o| o.name_any().starts_with(&format!("tierflow-{name}-")))
            .collect();
        assert_eq!(
            mine.len(),
            3,
            "{backend}: {:?}",
            objs.iter().map(|o| o.name_any()).collect::<Vec<_>>()
        );
        assert!(mine
            .iter()
            .all(|o| o.labels()["app.kubernetes.io/managed-by"] == "tierflow"));
    }
    // one baseline per backend in use, each in its own kind
    wait_objects(&client, ObjectKind::CalicoNetworkPolicy, &ns.name, 4).await;
    wait_objects(&client, ObjectKind::CiliumNetworkPolicy, &ns.name, 4).await;
    ns.delete().await;
}

#[tokio::test]
async fn the_l7_and_fqdn_example_is_enforced_on_cilium() {
    let Some((client, ns)) = setup("l7-cilium").await else {
        return;
    };
    apply_app(&client, &ns.name, "shop", &with_backend(L7_FQDN, "Cilium")).await;
    let app = wait_ready(&client, &ns.name, "shop", "True").await;
    assert_eq!(
        condition(&app, "L7Enforced").map(|c| c.0),
        Some("True".into())
    );
    let api = objects(&client, ObjectKind::CiliumNetworkPolicy, Some(&ns.name))
        .await
        .into_iter()
        .find(|o| o.name_any() == "tierflow-shop-api")
        .expect("api policy");
    let text = api.data.to_string();
    assert!(
        text.contains("toFQDNs") && text.contains("*.example.com"),
        "{text}"
    );
    assert!(
        text.contains("\"http\"") && text.contains("/api/orders"),
        "{text}"
    );
    assert!(text.contains("kube-apiserver"), "{text}");
    assert!(
        text.contains("matchPattern"),
        "the DNS proxy must see lookups: {text}"
    );
    ns.delete().await;
}

#[tokio::test]
async fn the_l7_and_fqdn_example_on_calico_renders_l4_and_fails_closed_for_fqdns() {
    let Some((client, ns)) = setup("l7-calico").await else {
        return;
    };
    apply_app(&client, &ns.name, "shop", &with_backend(L7_FQDN, "Calico")).await;
    let app = wait_ready(&client, &ns.name, "shop", "False").await;
    let (_, reason, msg) = ready(&app);
    assert_eq!(reason, "UnsupportedOnBackend");
    assert!(
        msg.contains("*.example.com") && msg.contains("fail closed"),
        "{msg}"
    );
    assert_eq!(
        condition(&app, "L7Enforced").map(|c| c.0),
        Some("False".into())
    );
    // the other flows are in place, the fqdn ones are not
    let api = eventually("the Calico api policy", || async {
        objects(&client, ObjectKind::CalicoNetworkPolicy, Some(&ns.name))
            .await
            .into_iter()
            .find(|o| o.name_any() == "tierflow-shop-api")
    })
    .await;
    let text = api.data.to_string();
    assert!(!text.contains("example.com"), "{text}");
    assert!(
        text.contains("services"),
        "the API server as a Calico service destination: {text}"
    );
    ns.delete().await;
}

#[tokio::test]
async fn the_l7_and_fqdn_example_on_standard_policy_resolves_the_api_server_and_says_what_it_cannot_do(
) {
    let Some((client, ns)) = setup("l7-std").await else {
        return;
    };
    apply_app(
        &client,
        &ns.name,
        "shop",
        &with_backend(L7_FQDN, "NetworkPolicy"),
    )
    .await;
    let app = wait_ready(&client, &ns.name, "shop", "False").await;
    assert_eq!(ready(&app).1, "UnsupportedOnBackend");
    assert_eq!(
        condition(&app, "L7Enforced").map(|c| c.0),
        Some("False".into())
    );
    // the API server from default/kubernetes endpoints, as /32 on its port
    let api = wait_policy(&client, &ns.name, "tierflow-shop-api", |_| true).await;
    let egress = spec_json(&api)["egress"].clone();
    let eps: k8s_openapi::api::core::v1::Endpoints = Api::namespaced(client.clone(), "default")
        .get("kubernetes")
        .await
        .unwrap();
    let subset = &eps.subsets.unwrap()[0];
    let ip = &subset.addresses.as_ref().unwrap()[0].ip;
    let port = subset.ports.as_ref().unwrap()[0].port;
    assert!(
        egress.as_array().unwrap().contains(&json!({"to": [{"ipBlock": {"cidr": format!("{ip}/32")}}], "ports": [{"port": port, "protocol": "TCP"}]})),
        "{egress}"
    );
    assert!(
        !egress.to_string().contains("example"),
        "fqdn flows are not rendered: {egress}"
    );

    // The API server moves: the policy follows (never on an existing cluster's real endpoints).
    if !std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v == "true") {
        let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> =
            Api::namespaced(client.clone(), "default");
        let moved = |ip: &str| {
            json!({"subsets": [{"addresses": [{"ip": ip}],
                                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]})
        };
        endpoints
            .patch(
                "kubernetes",
                &PatchParams::default(),
                &Patch::Merge(moved("192.0.2.77")),
            )
            .await
            .unwrap();
        wait_policy(&client, &ns.name, "tierflow-shop-api", |s| {
            s.to_string().contains("192.0.2.77/32")
        })
        .await;
        endpoints
            .patch(
                "kubernetes",
                &PatchParams::default(),
                &Patch::Merge(moved(ip)),
            )
            .await
            .unwrap();
        wait_policy(&client, &ns.name, "tierflow-shop-api", |s| {
            s.to_string().contains(&format!("{ip}/32"))
        })
        .await;
    }
    ns.delete().await;
}

#[tokio::test]
async fn audit_mode_stages_calico_policies_and_is_refused_elsewhere() {
    let Some((client, ns)) = setup("audit").await else {
        return;
    };
    apply_app(
        &client,
        &ns.name,
        "staged",
        &format!("mode: Audit\n{}", with_backend(THREE_TIER, "Calico")),
    )
    .await;
    let app = wait_ready(&client, &ns.name, "staged", "True").await;
    assert!(app.status.as_ref().unwrap().audit);
    // tiers and the baseline are staged; nothing is enforced
    let staged = wait_objects(&client, ObjectKind::CalicoStagedNetworkPolicy, &ns.name, 4).await;
    assert!(staged.iter().any(|o| o.name_any() == "tierflow-baseline"));
    assert!(
        objects(&client, ObjectKind::CalicoNetworkPolicy, Some(&ns.name))
            .await
            .is_empty()
    );

    apply_app(
        &client,
        &ns.name,
        "std",
        &format!("mode: Audit\n{}", with_backend(THREE_TIER, "NetworkPolicy")),
    )
    .await;
    let app = wait_ready(&client, &ns.name, "std", "False").await;
    let (_, reason, msg) = ready(&app);
    assert_eq!(reason, "AuditUnsupported");
    assert!(msg.contains("no staged form"), "{msg}");
    let np: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    assert!(
        np.get_opt("tierflow-std-api").await.unwrap().is_none(),
        "audit must never be silently enforced"
    );
    ns.delete().await;
}

async fn apply_cb(client: &Client, name: &str, spec: Value) {
    let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "ClusterBaseline", "metadata": {"name": name}, "spec": spec});
    Api::<ClusterBaseline>::all(client.clone())
        .patch(
            name,
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("apply ClusterBaseline");
}

#[tokio::test]
async fn a_cluster_baseline_is_one_global_object_on_calico_cilium_and_cluster_network_policy() {
    let Some((client, scratch)) = setup("cb-global").await else {
        return;
    };
    let scope = scratch.name.clone();
    let ns = format!("{scope}-member");
    create_namespace(&client, &ns, &[("tierflow.dev/cb-test", &scope)]).await;
    for (backend, kind) in [
        ("Calico", ObjectKind::CalicoGlobalNetworkPolicy),
        ("Cilium", ObjectKind::CiliumClusterwideNetworkPolicy),
        // Accepted by the real v0.2.0 CRD's structural schema (its two CEL rules are checked
        // offline in render/cnp.rs).
        ("ClusterNetworkPolicy", ObjectKind::ClusterNetworkPolicy),
    ] {
        let name = format!("{scope}-{}", backend.to_lowercase());
        apply_cb(
            &client,
            &name,
            json!({"backend": backend, "namespaceSelector": {"matchLabels": {"tierflow.dev/cb-test": scope}},
                   "excludeNamespaces": ["legacy"], "allowKubeAPIServer": true}),
        )
        .await;
        let obj = eventually(&format!("the {backend} cluster-wide baseline"), || async {
            objects(&client, kind, None)
                .await
                .into_iter()
                .find(|o| o.name_any() == format!("tierflow-baseline-{name}"))
        })
        .await;
        assert_eq!(obj.labels()["tierflow.dev/role"], "cluster-baseline");
        let cb = eventually("ClusterBaseline status", || async {
            let cb = Api::<ClusterBaseline>::all(client.clone())
                .get(&name)
                .await
                .ok()?;
            (cb.status.as_ref()?.backend.as_deref() == Some(backend)
                && cb.status.as_ref()?.namespaces == 1)
                .then_some(cb)
        })
        .await;
        assert!(cb
            .status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"));
        // no per-namespace object for a ClusterBaseline that has a global one
        let np: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
        assert!(np.get_opt("tierflow-baseline").await.unwrap().is_none());
        Api::<ClusterBaseline>::all(client.clone())
            .delete(&name, &Default::default())
            .await
            .unwrap();
    }
    delete_namespace(&client, &ns).await;
    scratch.delete().await;
}
