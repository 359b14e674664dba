//! Guardrails, planned and simulated per backend: an AppNetwork that opens what a guardrail
//! denies is still denied in the simulation of everything the planner renders; an Allow
//! guardrail opens what the namespaces deny where the backend can say so; and where it cannot,
//! the ClusterBaseline is held (`GuardrailUnsupported`) with nothing weaker rendered.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::core::Protocol;
use crate::engine::{Endpoint, Scenario};

/// Tenant A's ClusterBaseline (one per tenant: its guardrails apply to the namespaces it
/// covers).
const PLATFORM: &str = r#"
namespaceSelector: {matchLabels: {tenant: a}}
guardrails:
  priority: 10
  rules:
    - {name: no-metadata, action: Deny, direction: Egress, peers: [{cidr: 169.254.169.254/32}]}
    - name: not-from-tenant-b
      action: Deny
      direction: Ingress
      peers: [{namespaceSelector: {matchLabels: {tenant: b}}}]
"#;

const SCRAPE: &str = r#"
    - name: monitoring-scrapes
      action: Allow
      direction: Ingress
      peers:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
          podSelector: {matchLabels: {app: prometheus}}
      ports: [{port: 9090}]
"#;

/// Tenant A's app opens exactly what the guardrails deny: egress to the metadata address and
/// ingress from tenant B.
const SHOP: &str = r#"
tiers:
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
flows:
  - {from: {tier: api}, to: {cidr: 169.254.169.254/32}, ports: [{port: 80}]}
  - {from: {namespaceSelector: {matchLabels: {tenant: b}}}, to: {tier: api}}
"#;

fn namespaces() -> BTreeMap<String, Labels> {
    let l = |pairs: &[(&str, &str)]| -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    BTreeMap::from([
        ("tenant-a".to_string(), l(&[("tenant", "a")])),
        ("tenant-b".to_string(), l(&[("tenant", "b")])),
        ("monitoring".to_string(), l(&[])),
        ("kube-system".to_string(), l(&[])),
    ])
}

fn pod(ns: &str, name: &str, app: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"namespace": ns, "name": name, "labels": {"app": app}},
           "status": {"podIP": ip}})
}

fn world() -> Vec<Value> {
    let mut out: Vec<Value> = namespaces()
        .into_iter()
        .map(|(name, labels)| {
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "labels": labels}})
        })
        .collect();
    out.push(pod("tenant-a", "api-0", "api", "10.0.1.10"));
    out.push(pod("tenant-b", "client-0", "client", "10.0.2.10"));
    out.push(pod("monitoring", "prom-0", "prometheus", "10.0.3.10"));
    out
}

fn planned(backend: Backend, cb_yaml: &str) -> Plan {
    let apps = [AppInput {
        name: "shop".into(),
        namespace: "tenant-a".into(),
        uid: None,
        generation: Some(1),
        spec: serde_yaml::from_str(SHOP).unwrap(),
    }];
    let cbs = [ClusterBaselineInput {
        name: "platform".into(),
        uid: None,
        generation: Some(1),
        spec: serde_yaml::from_str(cb_yaml).unwrap(),
    }];
    let cluster = Cluster {
        forced_backend: Some(backend),
        operator_namespace: "tierflow-system".into(),
        ..Cluster::default()
    };
    plan(&apps, &cbs, &namespaces(), &cluster, &Nothing)
}

fn scenario(p: &Plan) -> Scenario {
    let objects = p.objects.iter().map(|o| o.to_value());
    Scenario::from_values(world().into_iter().chain(objects)).unwrap()
}

fn pod_index(s: &Scenario, name: &str) -> Endpoint {
    Endpoint::Pod(s.pods().iter().position(|p| p.name == name).unwrap())
}

/// (api → metadata:80, tenant B → api:8080, prometheus → api:9090).
fn verdicts(s: &Scenario) -> (bool, bool, bool) {
    let api = pod_index(s, "api-0");
    let metadata = Endpoint::Ip("169.254.169.254".parse().unwrap());
    (
        s.allows(api, metadata, 80, Protocol::Tcp),
        s.allows(pod_index(s, "client-0"), api, 8080, Protocol::Tcp),
        s.allows(pod_index(s, "prom-0"), api, 9090, Protocol::Tcp),
    )
}

const DENY_BACKENDS: [Backend; 3] = [
    Backend::ClusterNetworkPolicy,
    Backend::Calico,
    Backend::Cilium,
];

#[test]
fn without_guardrails_the_app_opens_both_and_the_baseline_closes_scraping() {
    let no_guardrails = PLATFORM.split("guardrails:").next().unwrap();
    for b in DENY_BACKENDS {
        let p = planned(b, no_guardrails);
        assert!(p.cluster_baselines[0].hold.is_none(), "{b:?}");
        assert_eq!(verdicts(&scenario(&p)), (true, true, false), "{b:?}");
    }
}

#[test]
fn deny_guardrails_hold_against_the_app_on_every_backend_that_can_write_them() {
    for b in DENY_BACKENDS {
        let p = planned(b, PLATFORM);
        let cb = &p.cluster_baselines[0];
        assert!(cb.hold.is_none(), "{b:?}: {:?}", cb.hold);
        let g = cb.guardrails.as_ref().expect("a guardrails object");
        assert!(p.objects.contains(g));
        let s = scenario(&p);
        assert_eq!(verdicts(&s), (false, false, false), "{b:?}");
        // The verdict names the guardrails object.
        let v = s.check(
            pod_index(&s, "client-0"),
            pod_index(&s, "api-0"),
            8080,
            Protocol::Tcp,
        );
        assert!(
            v.decided_by
                .iter()
                .any(|d| d == "tierflow-guardrails-platform"),
            "{b:?}: {:?}",
            v.decided_by
        );
    }
}

#[test]
fn guardrails_render_in_each_backends_form() {
    let p = planned(Backend::ClusterNetworkPolicy, PLATFORM);
    let g = &p.cluster_baselines[0].guardrails.as_ref().unwrap().body();
    assert_eq!(g["spec"]["tier"], "Admin");
    assert_eq!(g["spec"]["priority"], 10);
    assert_eq!(g["spec"]["egress"][0]["action"], "Deny");
    assert_eq!(
        g["spec"]["egress"][0]["to"][0]["networks"],
        json!(["169.254.169.254/32"])
    );
    assert_eq!(g["spec"]["ingress"][0]["name"], "not-from-tenant-b");

    let p = planned(Backend::Calico, PLATFORM);
    let g = &p.cluster_baselines[0].guardrails.as_ref().unwrap().body();
    assert_eq!(g["kind"], "GlobalNetworkPolicy");
    assert_eq!(g["spec"]["order"], 10);
    assert_eq!(g["spec"]["egress"][0]["action"], "Deny");

    let p = planned(Backend::Cilium, PLATFORM);
    let g = &p.cluster_baselines[0].guardrails.as_ref().unwrap().body();
    assert_eq!(g["kind"], "CiliumClusterwideNetworkPolicy");
    assert!(g["spec"].get("egress").is_none() && g["spec"].get("ingress").is_none());
    assert_eq!(
        g["spec"]["egressDeny"][0]["toCIDRSet"][0]["cidr"],
        "169.254.169.254/32"
    );
}

#[test]
fn an_allow_guardrail_overrides_the_namespaces_deny_where_the_backend_can_say_so() {
    let spec = format!("{PLATFORM}{SCRAPE}");
    for b in [Backend::ClusterNetworkPolicy, Backend::Calico] {
        let p = planned(b, &spec);
        assert!(p.cluster_baselines[0].hold.is_none(), "{b:?}");
        assert_eq!(verdicts(&scenario(&p)), (false, false, true), "{b:?}");
    }
}

#[test]
fn backends_that_cannot_express_a_guardrail_hold_the_cluster_baseline() {
    let spec = format!("{PLATFORM}{SCRAPE}");
    let cases = [
        (Backend::Cilium, spec.as_str(), "Allow rule"),
        (Backend::NetworkPolicy, PLATFORM, "standard NetworkPolicy"),
        (
            Backend::Calico,
            &*format!("{PLATFORM}denyIngress: false\n"),
            "does not deny ingress",
        ),
    ];
    for (b, yaml, says) in cases {
        let p = planned(b, yaml);
        let cb = &p.cluster_baselines[0];
        let hold = cb.hold.as_ref().expect("held");
        assert_eq!(hold.reason, HoldReason::GuardrailUnsupported, "{b:?}");
        assert!(hold.message.contains(says), "{b:?}: {}", hold.message);
        // Nothing of it is rendered, and no namespace gets a share of a held baseline it
        // never recorded.
        assert!(cb.object.is_none() && cb.guardrails.is_none(), "{b:?}");
        let kinds: Vec<ObjectKind> = p.objects.iter().map(|o| o.kind()).collect();
        assert!(
            !p.objects
                .iter()
                .any(|o| o.name().starts_with("tierflow-guardrails")),
            "{b:?}: {kinds:?}"
        );
    }
}

#[test]
fn an_ingress_cidr_guardrail_is_held_on_cluster_network_policy() {
    let spec = format!(
        "{PLATFORM}    - {{name: no-lb, action: Deny, direction: Ingress, peers: [{{cidr: 192.0.2.0/24}}]}}\n"
    );
    let p = planned(Backend::ClusterNetworkPolicy, &spec);
    let hold = p.cluster_baselines[0].hold.as_ref().expect("held");
    assert_eq!(hold.reason, HoldReason::GuardrailUnsupported);
    assert!(hold.message.contains("no-lb"), "{}", hold.message);
    // Calico can say it.
    assert!(planned(Backend::Calico, &spec).cluster_baselines[0]
        .hold
        .is_none());
}

#[test]
fn guardrail_specs_are_validated_field_by_field() {
    let spec: crate::crd::ClusterBaselineSpec = serde_yaml::from_str(
        r#"
guardrails:
  priority: 100
  rules:
    - {name: Bad_Name, action: Deny, direction: Egress, peers: []}
    - {name: x, action: Deny, direction: Egress, peers: [{namespaceSelector: {}}]}
    - {name: x, action: Deny, direction: Egress, peers: [{cidr: 10.0.0.1/8}]}
"#,
    )
    .unwrap();
    let errs: Vec<String> = crate::validate::cluster_baseline(&spec)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    let fields: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "spec.guardrails.priority",
            "spec.guardrails.rules[0].name",
            "spec.guardrails.rules[0].peers",
            "spec.guardrails.rules[1].peers[0].namespaceSelector",
            "spec.guardrails.rules[2].name",
            "spec.guardrails.rules[2].peers[0].cidr",
        ],
        "{errs:#?}"
    );
}
