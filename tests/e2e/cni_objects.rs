//! Every object tierflow writes is one the real CNI accepts and enforces (issue 18), on the real
//! Calico and Cilium schemas (from ../shared/crds): long label keys on Cilium and a dotted name
//! on Calico reach `Ready=True` with objects the CNI's own rules admit, or a precise refusal;
//! a Cilium tier on a label outside pods' identities is held; a flow on a Cilium feature that
//! `cilium-config` has off is reported in status.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tierflow::apply::api_resource;
use tierflow::crd::AppNetwork;
use tierflow::render::ObjectKind;

use crate::appnetwork::{apply_app, wait_ready};
use crate::support::{self, eventually, TestNs};

const CRDS: &[&str] = &[
    "calico/projectcalico.org_networkpolicies.yaml",
    "calico/projectcalico.org_globalnetworkpolicies.yaml",
    "calico/projectcalico.org_stagednetworkpolicies.yaml",
    "calico/projectcalico.org_stagedglobalnetworkpolicies.yaml",
    "cilium/ciliumnetworkpolicies.yaml",
    "cilium/ciliumclusterwidenetworkpolicies.yaml",
];

async fn setup(prefix: &str) -> Option<(Client, TestNs)> {
    support::operator().await;
    let client = support::client().await;
    if !support::install_third_party_crds(&client, CRDS).await {
        return None;
    }
    let ns = TestNs::new(&client, prefix).await;
    Some((client, ns))
}

/// The objects of `kind` in `ns` labelled as AppNetwork `app`'s.
async fn app_objects(client: &Client, kind: ObjectKind, ns: &str, app: &str) -> Vec<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(kind));
    let lp = ListParams::default().labels(&format!("tierflow.dev/app-network={app}"));
    let mut items: Vec<Value> = api
        .list(&lp)
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|mut o| {
            o.types = Some(kube::api::TypeMeta {
                api_version: api_resource(kind).api_version,
                kind: api_resource(kind).kind,
            });
            serde_json::to_value(o).expect("object")
        })
        .collect();
    items.sort_by_key(|o| o["metadata"]["name"].as_str().unwrap_or("").to_string());
    items
}

fn condition(app: &AppNetwork, type_: &str) -> Option<(String, String, String)> {
    app.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// As the API server stores them, every object of the app passes the CNI's admission rules.
fn all_admitted(objects: &[Value]) {
    assert!(!objects.is_empty());
    for o in objects {
        assert_eq!(
            tierflow::admit::report(o),
            None,
            "{}",
            o["metadata"]["name"]
        );
    }
}

#[tokio::test]
async fn long_label_keys_on_cilium_are_admitted_objects_or_a_precise_refusal() {
    let Some((client, ns)) = setup("cni-long-keys").await else {
        return;
    };
    // A pod label key of 67 characters with a DNS prefix (valid Kubernetes key): Cilium's
    // `k8s:` source keeps the prefix apart, so it is selectable.
    let prefixed = format!("example.com/{}", "a".repeat(55));
    let fits = format!(
        "backend: Cilium\ntiers:\n  - {{name: api, selector: {{matchLabels: {{{prefixed}: api}}}}, ports: [{{port: 8080}}]}}\n  - {{name: web, selector: {{matchLabels: {{app: web}}}}}}\nflows:\n  - {{from: {{tier: web}}, to: {{tier: api}}}}\n"
    );
    apply_app(&client, &ns.name, "fits", &fits).await;
    wait_ready(&client, &ns.name, "fits", "True").await;
    let objs = app_objects(&client, ObjectKind::CiliumNetworkPolicy, &ns.name, "fits").await;
    assert_eq!(objs.len(), 2);
    all_admitted(&objs);

    // A 63-character pod label key without a prefix (valid Kubernetes key), and a 40-character
    // namespace label key: once Cilium rewrites them (`k8s.KEY`,
    // `k8s.io.cilium.k8s.namespace.labels.KEY`) they pass its 63-character limit, so no
    // object is written and the refusal names the limit.
    let pod_key = "k".repeat(63);
    let ns_key = "n".repeat(40);
    for (name, spec, key) in [
        (
            "pod-key",
            format!(
                "backend: Cilium\ntiers:\n  - {{name: api, selector: {{matchLabels: {{{pod_key}: api}}}}, ports: [{{port: 8080}}]}}\n"
            ),
            format!("k8s.{pod_key}"),
        ),
        (
            "ns-key",
            format!(
                "backend: Cilium\ntiers:\n  - {{name: api, selector: {{matchLabels: {{app: api}}}}, ports: [{{port: 8080}}]}}\nflows:\n  - {{from: {{namespaceSelector: {{matchLabels: {{{ns_key}: ops}}}}}}, to: {{tier: api}}}}\n"
            ),
            format!("k8s.io.cilium.k8s.namespace.labels.{ns_key}"),
        ),
    ] {
        apply_app(&client, &ns.name, name, &spec).await;
        let app = wait_ready(&client, &ns.name, name, "False").await;
        let (_, reason, message) = condition(&app, "Ready").unwrap();
        assert_eq!(reason, "BackendLimit");
        assert!(
            message.contains("Cilium will not enforce this policy")
                && message.contains(&key)
                && message.contains("1 to 63 characters"),
            "{message}"
        );
        assert!(
            app_objects(&client, ObjectKind::CiliumNetworkPolicy, &ns.name, name)
                .await
                .is_empty(),
            "{name}: nothing written"
        );
    }
    ns.delete().await;
}

#[tokio::test]
async fn a_dotted_app_network_on_calico_is_ready_with_names_calico_accepts() {
    let Some((client, ns)) = setup("cni-dotted").await else {
        return;
    };
    let spec = "backend: Calico\ntiers:\n  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}\n  - {name: web, selector: {matchLabels: {app: web}}}\nflows:\n  - {from: {tier: web}, to: {tier: api}}\n";
    apply_app(&client, &ns.name, "payments.v2", spec).await;
    wait_ready(&client, &ns.name, "payments.v2", "True").await;
    let objs = app_objects(
        &client,
        ObjectKind::CalicoNetworkPolicy,
        &ns.name,
        "payments.v2",
    )
    .await;
    assert_eq!(objs.len(), 2);
    all_admitted(&objs);
    for o in &objs {
        let name = o["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with("tierflow-payments-v2-") && !name.contains('.'),
            "{name}"
        );
    }
    ns.delete().await;
}

#[tokio::test]
async fn a_cilium_tier_on_a_label_outside_pod_identities_is_held_and_the_last_objects_stay() {
    let Some((client, ns)) = setup("cni-identity").await else {
        return;
    };
    let good = "backend: Cilium\ntiers:\n  - {name: db, selector: {matchLabels: {app: db}}, ports: [{port: 5432}]}\n  - {name: api, selector: {matchLabels: {app: api}}}\nflows:\n  - {from: {tier: api}, to: {tier: db}}\n";
    apply_app(&client, &ns.name, "db", good).await;
    wait_ready(&client, &ns.name, "db", "True").await;
    let before = app_objects(&client, ObjectKind::CiliumNetworkPolicy, &ns.name, "db").await;
    assert_eq!(before.len(), 2);

    let ordinal = good.replace(
        "{app: db}",
        "{app: db, statefulset.kubernetes.io/pod-name: db-0}",
    );
    apply_app(&client, &ns.name, "db", &ordinal).await;
    let app = wait_ready(&client, &ns.name, "db", "False").await;
    let (_, reason, message) = condition(&app, "Ready").unwrap();
    assert_eq!(reason, "LabelNotInIdentity");
    for part in [
        "spec.tiers[0].selector",
        "statefulset.kubernetes.io/pod-name",
        "Cilium's default identity label filter",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert_eq!(
        condition(&app, "Stalled").map(|c| c.0),
        Some("True".to_string())
    );
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    eventually("a Warning event LabelNotInIdentity", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("LabelNotInIdentity")
                && e.type_.as_deref() == Some("Warning")
        })
    })
    .await;
    // The last good objects stay exactly as they were.
    let specs = |objs: &[Value]| -> Vec<(Value, Value)> {
        objs.iter()
            .map(|o| (o["metadata"]["name"].clone(), o["spec"].clone()))
            .collect()
    };
    let after = app_objects(&client, ObjectKind::CiliumNetworkPolicy, &ns.name, "db").await;
    assert_eq!(specs(&after), specs(&before));
    ns.delete().await;
}

/// The tests that write kube-system/cilium-config take turns.
static CILIUM_CONFIG_WRITERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_flow_on_a_cilium_feature_that_cilium_config_has_off_is_reported_until_it_is_on() {
    if std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v == "true" || v == "1") {
        eprintln!("SKIPPED: writes kube-system/cilium-config; not run against an existing cluster");
        return;
    }
    let _turn = CILIUM_CONFIG_WRITERS.lock().await;
    let Some((client, ns)) = setup("cni-features").await else {
        return;
    };
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let set_sctp = |on: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "cilium-config", "namespace": "kube-system"},
               "data": {"enable-sctp": on, "enable-l7-proxy": "true"}})
    };
    configs
        .patch(
            "cilium-config",
            &PatchParams::apply("cilium-test"),
            &Patch::Apply(&set_sctp("false")),
        )
        .await
        .expect("cilium-config");
    let spec = "backend: Cilium\ntiers:\n  - {name: mme, selector: {matchLabels: {app: mme}}, ports: [{port: 36412, protocol: SCTP}]}\n  - {name: enb, selector: {matchLabels: {app: enb}}}\nflows:\n  - {from: {tier: enb}, to: {tier: mme}}\n";
    apply_app(&client, &ns.name, "ran", spec).await;
    let api: Api<AppNetwork> = Api::namespaced(client.clone(), &ns.name);
    let missing = eventually("FeaturesMissing=True", || async {
        let a = api.get("ran").await.ok()?;
        let (status, reason, message) = condition(&a, "FeaturesMissing")?;
        (status == "True").then_some((reason, message, a))
    })
    .await;
    assert_eq!(missing.0, "CiliumFeatureOff");
    assert!(
        missing.1.contains("spec.flows[0]")
            && missing.1.contains("SCTP port 36412")
            && missing.1.contains("enable-sctp"),
        "{}",
        missing.1
    );
    // Not held: the objects are written (SCTP off only narrows).
    assert_eq!(
        condition(&missing.2, "Ready").map(|c| c.0),
        Some("True".to_string())
    );
    assert_eq!(
        app_objects(&client, ObjectKind::CiliumNetworkPolicy, &ns.name, "ran")
            .await
            .len(),
        2
    );

    configs
        .patch(
            "cilium-config",
            &PatchParams::apply("cilium-test"),
            &Patch::Apply(&set_sctp("true")),
        )
        .await
        .expect("cilium-config");
    eventually("FeaturesMissing cleared", || async {
        let a = api.get("ran").await.ok()?;
        condition(&a, "FeaturesMissing").is_none().then_some(())
    })
    .await;
    let _ = configs
        .delete("cilium-config", &DeleteParams::default())
        .await;
    ns.delete().await;
}

#[tokio::test]
async fn the_identity_labels_of_cilium_config_decide_whether_a_tier_selector_is_held() {
    if std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v == "true" || v == "1") {
        eprintln!("SKIPPED: writes kube-system/cilium-config; not run against an existing cluster");
        return;
    }
    let Some((client, ns)) = setup("cni-identity-labels").await else {
        return;
    };
    let _turn = CILIUM_CONFIG_WRITERS.lock().await;
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let set_labels = |labels: Option<&str>| {
        let data = match labels {
            Some(l) => json!({ "labels": l }),
            None => json!({}),
        };
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "cilium-config", "namespace": "kube-system"},
               "data": data})
    };
    let apply = |labels: Option<&'static str>| {
        let configs = configs.clone();
        let cm = set_labels(labels);
        async move {
            configs
                .patch(
                    "cilium-config",
                    &PatchParams::apply("cilium-identity-test"),
                    &Patch::Apply(&cm),
                )
                .await
                .expect("cilium-config")
        }
    };
    // Cilium's default filter drops `k8s.io/role` (`!k8s\.io`): held.
    apply(None).await;
    let spec = "backend: Cilium\ntiers:\n  - {name: db, selector: {matchLabels: {app: db, k8s.io/role: primary}}, ports: [{port: 5432}]}\n  - {name: api, selector: {matchLabels: {app: api}}}\nflows:\n  - {from: {tier: api}, to: {tier: db}}\n";
    apply_app(&client, &ns.name, "db", spec).await;
    let app = wait_ready(&client, &ns.name, "db", "False").await;
    let (_, reason, message) = condition(&app, "Ready").unwrap();
    assert_eq!(reason, "LabelNotInIdentity");
    assert!(
        message.contains("k8s.io/role")
            && message.contains("Cilium's default identity label filter"),
        "{message}"
    );

    // An agent configured to keep it (a longer inclusive match than the exclusion): Ready.
    apply(Some(r"k8s:app k8s:k8s\.io/role")).await;
    wait_ready(&client, &ns.name, "db", "True").await;
    assert_eq!(
        app_objects(&client, ObjectKind::CiliumNetworkPolicy, &ns.name, "db")
            .await
            .len(),
        2
    );

    // The offline CLI reads the same key with --from-cluster: a value the agent would refuse
    // is an error naming it, unless --cilium-identity-labels says otherwise.
    apply(Some("k8s:(")).await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tierflow"))
            .args(args)
            .env("KUBECONFIG", support::kubeconfig_path())
            .output()
            .expect("run tierflow");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = cli(&["lint", "--from-cluster", "--output", "json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cilium-config labels"), "{err}");
    let (code, err) = cli(&[
        "lint",
        "--from-cluster",
        "--output",
        "json",
        "--cilium-identity-labels",
        "k8s:!tier",
    ]);
    assert!(code == 0 || code == 1, "{err}");

    // Back to the default: held again, and the objects written meanwhile stay.
    apply(None).await;
    let app = wait_ready(&client, &ns.name, "db", "False").await;
    assert_eq!(
        condition(&app, "Ready").map(|c| c.1),
        Some("LabelNotInIdentity".to_string())
    );
    let _ = configs
        .delete("cilium-config", &DeleteParams::default())
        .await;
    ns.delete().await;
}
