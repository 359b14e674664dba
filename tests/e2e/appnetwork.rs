//! AppNetwork end to end: tiers and flows become correct, self-healing NetworkPolicies.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use tierflow::controller::{namespace, Context};
use tierflow::crd::AppNetwork;

use crate::support::{self, eventually, CountingClient, TestNs};

const THREE_TIER: &str = r#"
tiers:
  - {name: frontend, selector: {matchLabels: {app: frontend}}, ports: [{port: 8080, protocol: TCP}]}
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
  - {name: database, selector: {matchLabels: {app: database}}, ports: [{port: 5432}]}
flows:
  - {from: {tier: frontend}, to: {tier: api}}
  - {from: {tier: api}, to: {tier: database}}
  - {from: {tier: database}, to: {tier: database}}
  - from: {namespace: monitoring, selector: {matchLabels: {app: prometheus}}}
    to: {tier: api}
    ports: [{port: 9090}]
  - from: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}
    to: {tier: frontend}
    ports: [{port: 80}, {port: 443}]
  - {from: {tier: api}, to: {cidr: 203.0.113.0/24}, ports: [{port: 443}]}
"#;

async fn setup(prefix: &str) -> (Client, TestNs, Arc<Context>) {
    let ctx = support::operator().await;
    let client = support::client().await;
    let ns = TestNs::new(&client, prefix).await;
    (client, ns, ctx)
}

/// Applies an AppNetwork as a user would (`kubectl apply --server-side`).
pub(crate) async fn apply_app(
    client: &Client,
    ns: &str,
    name: &str,
    spec_yaml: &str,
) -> AppNetwork {
    let spec: Value = serde_yaml::from_str(spec_yaml).unwrap();
    let body = json!({
        "apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork",
        "metadata": {"name": name, "namespace": ns}, "spec": spec,
    });
    Api::<AppNetwork>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("apply AppNetwork")
}

/// Waits until the AppNetwork's status describes its current generation with `Ready` = `ready`.
pub(crate) async fn wait_ready(client: &Client, ns: &str, name: &str, ready: &str) -> AppNetwork {
    let api = Api::<AppNetwork>::namespaced(client.clone(), ns);
    eventually(&format!("{ns}/{name} Ready={ready}"), || async {
        let a = api.get(name).await.ok()?;
        let st = a.status.as_ref()?;
        let c = st.conditions.iter().find(|c| c.type_ == "Ready")?;
        (st.observed_generation == a.metadata.generation && c.status == ready).then_some(a)
    })
    .await
}

pub(crate) async fn policy(client: &Client, ns: &str, name: &str) -> Option<NetworkPolicy> {
    Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
}

async fn policy_names(client: &Client, ns: &str) -> Vec<String> {
    let mut names: Vec<String> = Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

pub(crate) fn spec_json(p: &NetworkPolicy) -> Value {
    serde_json::to_value(p.spec.as_ref().unwrap()).unwrap()
}

/// Waits until `name` exists with a spec for which `check` holds.
pub(crate) async fn wait_policy(
    client: &Client,
    ns: &str,
    name: &str,
    check: impl Fn(&Value) -> bool,
) -> NetworkPolicy {
    eventually(&format!("policy {ns}/{name}"), || async {
        let p = policy(client, ns, name).await?;
        check(&spec_json(&p)).then_some(p)
    })
    .await
}

pub(crate) async fn wait_gone(client: &Client, ns: &str, name: &str) {
    eventually(&format!("{ns}/{name} to be gone"), || async {
        policy(client, ns, name).await.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn three_tier_example_renders_the_expected_policies_and_status() {
    let (client, ns, _ctx) = setup("three-tier").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    let app = wait_ready(&client, &ns.name, "shop", "True").await;
    wait_policy(&client, &ns.name, "tierflow-baseline", |_| true).await;

    assert_eq!(
        policy_names(&client, &ns.name).await,
        [
            "tierflow-baseline",
            "tierflow-shop-api",
            "tierflow-shop-database",
            "tierflow-shop-frontend"
        ]
    );
    let st = app.status.unwrap();
    assert_eq!(st.policy_count, 3);
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.reason, "Applied");
    // the policies in place, simulated, allow every declared flow
    let flows = st.flows.as_ref().expect("status.flows");
    assert_eq!((flows.declared, flows.verified), (6, 6));
    let verified = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Verified")
        .unwrap();
    assert_eq!(verified.status, "True", "{}", verified.message);
    assert!(st.conditions.iter().all(|c| c.type_ != "Stalled"));

    let api = policy(&client, &ns.name, "tierflow-shop-api")
        .await
        .unwrap();
    let labels = api.labels();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "tierflow");
    assert_eq!(labels["tierflow.dev/app-network"], "shop");
    assert_eq!(labels["tierflow.dev/tier"], "api");
    let owner = &api.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("AppNetwork", "shop", Some(true))
    );
    let s = spec_json(&api);
    assert_eq!(s["podSelector"], json!({"matchLabels": {"app": "api"}}));
    assert_eq!(s["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        s["ingress"][0],
        json!({"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}], "ports": [{"port": 8080, "protocol": "TCP"}]})
    );
    // egress: DNS over UDP and TCP to kube-dns in ONE namespace+pod peer
    assert_eq!(
        s["egress"][0],
        json!({"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
               "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]})
    );

    let base = spec_json(
        &policy(&client, &ns.name, "tierflow-baseline")
            .await
            .unwrap(),
    );
    assert_eq!(base["podSelector"], json!({}));
    assert_eq!(base["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        base["egress"][0]["ports"],
        json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}])
    );
    ns.delete().await;
}

#[tokio::test]
async fn cross_namespace_flow_is_one_peer_with_namespace_and_pod_selectors() {
    let (client, ns, _ctx) = setup("cross-ns").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    let s = spec_json(
        &policy(&client, &ns.name, "tierflow-shop-api")
            .await
            .unwrap(),
    );
    assert_eq!(
        s["ingress"][1],
        json!({"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                         "podSelector": {"matchLabels": {"app": "prometheus"}}}],
               "ports": [{"port": 9090, "protocol": "TCP"}]})
    );
    ns.delete().await;
}

#[tokio::test]
async fn cidr_with_except_is_rendered_as_an_ip_block() {
    let (client, ns, _ctx) = setup("cidr").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    let fe = spec_json(
        &policy(&client, &ns.name, "tierflow-shop-frontend")
            .await
            .unwrap(),
    );
    assert_eq!(
        fe["ingress"][0],
        json!({"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}],
               "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]})
    );
    let api = spec_json(
        &policy(&client, &ns.name, "tierflow-shop-api")
            .await
            .unwrap(),
    );
    assert!(api["egress"].as_array().unwrap().contains(&json!(
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    )));
    ns.delete().await;
}

#[tokio::test]
async fn intra_tier_flow_allows_the_tier_to_reach_itself_both_ways() {
    let (client, ns, _ctx) = setup("intra").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    let db = spec_json(
        &policy(&client, &ns.name, "tierflow-shop-database")
            .await
            .unwrap(),
    );
    let peer = json!([{"podSelector": {"matchLabels": {"app": "database"}}}]);
    let port = json!([{"port": 5432, "protocol": "TCP"}]);
    assert!(db["ingress"]
        .as_array()
        .unwrap()
        .contains(&json!({"from": peer, "ports": port})));
    assert!(db["egress"]
        .as_array()
        .unwrap()
        .contains(&json!({"to": peer, "ports": port})));
    ns.delete().await;
}

#[tokio::test]
async fn hand_deleted_policy_is_restored() {
    let (client, ns, _ctx) = setup("restore").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    for name in ["tierflow-shop-api", "tierflow-baseline"] {
        let before = api.get(name).await.unwrap();
        api.delete(name, &DeleteParams::default()).await.unwrap();
        let after = eventually(&format!("{name} to come back"), || async {
            api.get_opt(name)
                .await
                .unwrap()
                .filter(|p| p.uid() != before.uid())
        })
        .await;
        assert_eq!(after.spec, before.spec);
    }
    ns.delete().await;
}

#[tokio::test]
async fn hand_edited_policy_is_reverted() {
    let (client, ns, _ctx) = setup("revert").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let before = api.get("tierflow-shop-api").await.unwrap();

    // An allow-everything ingress rule added with a merge patch (as `kubectl edit` would).
    api.patch(
        "tierflow-shop-api",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"ingress": [{}]}})),
    )
    .await
    .unwrap();
    wait_policy(&client, &ns.name, "tierflow-shop-api", |s| {
        *s == spec_json(&before)
    })
    .await;

    // A selector key added by another field manager, which a plain apply cannot remove.
    api.patch(
        "tierflow-shop-api",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"podSelector": {"matchLabels": {"extra": "x"}}}})),
    )
    .await
    .unwrap();
    wait_policy(&client, &ns.name, "tierflow-shop-api", |s| {
        *s == spec_json(&before)
    })
    .await;
    ns.delete().await;
}

#[tokio::test]
async fn a_users_own_policy_in_the_same_namespace_is_untouched() {
    let (client, ns, _ctx) = setup("foreign").await;
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let mine: NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-web", "labels": {"team": "web"}},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}], "policyTypes": ["Ingress"]}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &mine).await.unwrap();
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    // drive a few more reconciles: an update, and a delete
    apply_app(
        &client,
        &ns.name,
        "shop",
        &THREE_TIER.replace("port: 9090", "port: 9091"),
    )
    .await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    Api::<AppNetwork>::namespaced(client.clone(), &ns.name)
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&client, &ns.name, "tierflow-baseline").await;

    let after = api.get("allow-web").await.unwrap();
    assert_eq!(after.resource_version(), created.resource_version());
    assert!(after
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .all(|m| m.manager.as_deref() != Some("tierflow")));
    ns.delete().await;
}

#[tokio::test]
async fn an_object_with_a_wanted_name_but_not_made_by_tierflow_is_never_taken_over() {
    let (client, ns, _ctx) = setup("squat").await;
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let squatter: NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "tierflow-shop-api"},
        "spec": {"podSelector": {"matchLabels": {"app": "other"}}, "policyTypes": ["Ingress"]}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &squatter).await.unwrap();
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    // The generation is not applied, so status.observedGeneration does not move; the Ready
    // condition says why, for this generation.
    let apps = Api::<AppNetwork>::namespaced(client.clone(), &ns.name);
    let app = eventually("Ready=False NameConflict", || async {
        let a = apps.get("shop").await.ok()?;
        let c = a
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")?;
        (c.reason == "NameConflict" && c.observed_generation == a.metadata.generation)
            .then_some(a.clone())
    })
    .await;
    let st = app.status.clone().unwrap();
    assert_ne!(st.observed_generation, app.metadata.generation);
    let ready = st
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
    assert!(
        ready
            .message
            .contains("tierflow-shop-api exists and is not managed by tierflow"),
        "{}",
        ready.message
    );
    assert_eq!(
        api.get("tierflow-shop-api")
            .await
            .unwrap()
            .resource_version(),
        created.resource_version()
    );
    ns.delete().await;
}

#[tokio::test]
async fn removing_a_flow_prunes_exactly_its_rules_and_removing_a_tier_its_policy() {
    let (client, ns, _ctx) = setup("prune").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    let fe_before = policy(&client, &ns.name, "tierflow-shop-frontend")
        .await
        .unwrap();

    // Drop the monitoring flow: only the api policy's second ingress rule goes.
    let without_monitoring = THREE_TIER.replace(
        "  - from: {namespace: monitoring, selector: {matchLabels: {app: prometheus}}}\n    to: {tier: api}\n    ports: [{port: 9090}]\n",
        "",
    );
    assert_ne!(without_monitoring, THREE_TIER);
    apply_app(&client, &ns.name, "shop", &without_monitoring).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    let api = wait_policy(&client, &ns.name, "tierflow-shop-api", |s| {
        s["ingress"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    assert_eq!(
        spec_json(&api)["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app"],
        "frontend"
    );
    let fe_after = policy(&client, &ns.name, "tierflow-shop-frontend")
        .await
        .unwrap();
    assert_eq!(
        fe_after.resource_version(),
        fe_before.resource_version(),
        "an untouched tier is not rewritten"
    );

    // Drop the database tier and every flow naming it: its policy goes, nothing else.
    let two_tiers = r#"
tiers:
  - {name: frontend, selector: {matchLabels: {app: frontend}}, ports: [{port: 8080}]}
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
flows:
  - {from: {tier: frontend}, to: {tier: api}}
"#;
    apply_app(&client, &ns.name, "shop", two_tiers).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    wait_gone(&client, &ns.name, "tierflow-shop-database").await;
    assert_eq!(
        policy_names(&client, &ns.name).await,
        [
            "tierflow-baseline",
            "tierflow-shop-api",
            "tierflow-shop-frontend"
        ]
    );
    ns.delete().await;
}

#[tokio::test]
async fn deleting_the_appnetwork_removes_its_policies_and_the_baseline() {
    let (client, ns, _ctx) = setup("delete").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    wait_policy(&client, &ns.name, "tierflow-baseline", |_| true).await;
    Api::<AppNetwork>::namespaced(client.clone(), &ns.name)
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    eventually("every policy to be gone", || async {
        policy_names(&client, &ns.name)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    ns.delete().await;
}

#[tokio::test]
async fn two_appnetworks_share_one_baseline_until_both_are_gone() {
    let (client, ns, _ctx) = setup("shared").await;
    let a = "baseline: {denyIngress: true, denyEgress: false}\ntiers:\n  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 80}]}\n";
    let b = "baseline: {denyIngress: false, denyEgress: true}\ntiers:\n  - {name: worker, selector: {matchLabels: {app: worker}}, ports: [{port: 9000}]}\n";
    apply_app(&client, &ns.name, "a", a).await;
    apply_app(&client, &ns.name, "b", b).await;
    wait_ready(&client, &ns.name, "a", "True").await;
    wait_ready(&client, &ns.name, "b", "True").await;
    // deny if either denies, DNS because b denies egress
    let merged = wait_policy(&client, &ns.name, "tierflow-baseline", |s| {
        s["policyTypes"] == json!(["Ingress", "Egress"])
    })
    .await;
    assert_eq!(
        spec_json(&merged)["egress"][0]["ports"][0],
        json!({"port": 53, "protocol": "UDP"})
    );
    let mut owners: Vec<_> = merged
        .owner_references()
        .iter()
        .map(|o| o.name.clone())
        .collect();
    owners.sort();
    assert_eq!(owners, ["a", "b"]);

    let apps: Api<AppNetwork> = Api::namespaced(client.clone(), &ns.name);
    apps.delete("a", &DeleteParams::default()).await.unwrap();
    // only b's wish remains: egress denied, ingress open
    wait_policy(&client, &ns.name, "tierflow-baseline", |s| {
        s["policyTypes"] == json!(["Egress"])
    })
    .await;
    apps.delete("b", &DeleteParams::default()).await.unwrap();
    wait_gone(&client, &ns.name, "tierflow-baseline").await;
    ns.delete().await;
}

#[tokio::test]
async fn invalid_update_sets_invalid_spec_and_keeps_the_previous_policies_byte_for_byte() {
    let (client, ns, _ctx) = setup("invalid").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    wait_policy(&client, &ns.name, "tierflow-baseline", |_| true).await;
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let before: BTreeMap<String, (String, Value)> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), (p.resource_version().unwrap(), spec_json(p))))
        .collect();

    let broken = THREE_TIER.replace(
        "to: {tier: database}}\n  - {from: {tier: database}",
        "to: {tier: db}}\n  - {from: {tier: database}",
    );
    assert_ne!(broken, THREE_TIER);
    apply_app(&client, &ns.name, "shop", &broken).await;
    let app = wait_ready(&client, &ns.name, "shop", "False").await;
    let st = app.status.unwrap();
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready
            .message
            .contains("spec.flows[1].to.tier: unknown tier \"db\""),
        "{}",
        ready.message
    );
    let stalled = st.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "InvalidSpec")
    );

    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    eventually("a Warning event InvalidSpec", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("InvalidSpec") && e.type_.as_deref() == Some("Warning")
        })
    })
    .await;

    // The namespace controller has seen the new status too; nothing may have changed.
    let ctx = support::operator().await;
    run_namespace_reconcile(&ctx, &client, &ns.name).await;
    let after: BTreeMap<String, (String, Value)> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), (p.resource_version().unwrap(), spec_json(p))))
        .collect();
    assert_eq!(after, before);
    ns.delete().await;
}

pub(crate) async fn run_namespace_reconcile(
    ctx: &Arc<Context>,
    client: &Client,
    ns: &str,
) -> usize {
    let (counting, writes) = CountingClient::wrap(client.clone());
    let ctx = Arc::new(Context {
        client: counting,
        ..(**ctx).clone()
    });
    let namespace = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .get(ns)
        .await
        .unwrap();
    namespace::reconcile(Arc::new(namespace), ctx)
        .await
        .expect("namespace reconcile");
    writes.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_no_op_reconcile_issues_no_write() {
    let (client, ns, ctx) = setup("noop").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    wait_ready(&client, &ns.name, "shop", "True").await;
    // wait until the operator's caches hold what the API server holds
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    eventually("caches to catch up", || async {
        let live = api.list(&ListParams::default()).await.ok()?.items;
        let cached = live.iter().all(|p| {
            ctx.managed
                .get(
                    tierflow::render::ObjectKind::NetworkPolicy,
                    Some(&ns.name),
                    &p.name_any(),
                )
                .is_some_and(|c| c.resource_version == p.resource_version())
        });
        (live.len() == 4 && cached).then_some(())
    })
    .await;

    assert_eq!(
        run_namespace_reconcile(&ctx, &client, &ns.name).await,
        0,
        "the namespace reconcile wrote in a steady state"
    );
    ns.delete().await;
}

#[tokio::test]
async fn the_api_server_rejects_what_the_schema_forbids() {
    let (client, ns, _ctx) = setup("schema").await;
    let api: Api<AppNetwork> = Api::namespaced(client.clone(), &ns.name);
    for (spec, needle) in [
        ("tiers:\n  - {name: a, selector: {matchLabels: {x: y}}, ports: [{port: 70000}]}\n", "65535"),
        ("tiers:\n  - {name: a, selector: {matchLabels: {x: y}}, ports: [{port: 80, protocol: ICMP}]}\n", "ICMP"),
        ("tiers:\n  - {name: Not_A_Label, selector: {matchLabels: {x: y}}}\n", "name"),
        ("tiers: []\n", "tiers"),
    ] {
        let spec: Value = serde_yaml::from_str(spec).unwrap();
        let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork", "metadata": {"name": "x"}, "spec": spec});
        let err = api
            .patch("x", &PatchParams::apply("kubectl"), &Patch::Apply(&body))
            .await
            .expect_err("the API server must reject this spec");
        assert!(err.to_string().contains(needle), "{err}");
    }
    ns.delete().await;
}

#[tokio::test]
async fn a_users_allow_all_policy_that_undercuts_the_intent_is_reported() {
    let (client, ns, _ctx) = setup("undercut").await;
    apply_app(&client, &ns.name, "shop", THREE_TIER).await;
    let app = wait_ready(&client, &ns.name, "shop", "True").await;
    let st = app.status.unwrap();
    assert!(st.conditions.iter().all(|c| c.type_ != "Undercut"));

    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let allow_all: NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all-to-api"},
        "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [{}], "policyTypes": ["Ingress"]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &allow_all)
        .await
        .unwrap();
    let apps: Api<AppNetwork> = Api::namespaced(client.clone(), &ns.name);
    let undercut = eventually("the Undercut condition", || async {
        let a = apps.get("shop").await.ok()?;
        a.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Undercut" && c.status == "True")
    })
    .await;
    assert!(
        undercut.message.contains("allow-all-to-api"),
        "{}",
        undercut.message
    );
    // the user's policy itself is never touched
    assert!(api
        .get("allow-all-to-api")
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .all(|m| m.manager.as_deref() != Some("tierflow")));

    api.delete("allow-all-to-api", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Undercut condition to go", || async {
        let a = apps.get("shop").await.ok()?;
        a.status?
            .conditions
            .iter()
            .all(|c| c.type_ != "Undercut")
            .then_some(())
    })
    .await;
    ns.delete().await;
}
