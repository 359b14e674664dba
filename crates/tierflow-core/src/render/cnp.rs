//! ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`, kubernetes-sigs/network-policy-api
//! v0.2.0, `apis/v1alpha2/clusternetworkpolicy_types.go`): a ClusterBaseline as ONE object in the
//! `Baseline` tier.
//!
//! The API evaluates, per direction: the `Admin` tier (policies by `priority`, lower first; rules
//! in order; `Accept` / `Deny` final, `Pass` skips the rest of the tier), then the namespaces'
//! NetworkPolicies (if any selects the pod in that direction, it decides), then the `Baseline`
//! tier the same way, then allow. A ClusterBaseline is exactly a Baseline-tier object: it decides
//! only for pods no NetworkPolicy selects, so every AppNetwork's allows (standard NetworkPolicy,
//! see [`Capabilities::namespaced_objects`](crate::model::Capabilities::namespaced_objects))
//! keep working on top of it.
//!
//! The object:
//! - `subject.namespaces`: the ClusterBaseline's selector, plus `kubernetes.io/metadata.name
//!   NotIn` the excluded and system namespaces and `tierflow.dev/baseline NotIn [disabled]` (the
//!   opt-out), so a namespace created later is covered by the CNI without tierflow writing
//!   anything.
//! - ingress (`denyIngress`): one `Deny` rule from `namespaces: {}`. Ingress peers of this API
//!   are namespaces and pods only: sources outside the cluster's pods (nodes, load balancers,
//!   external addresses) are not matched by any ingress peer of v1alpha2.
//! - egress (`denyEgress`): `Accept` to each DNS target on UDP and TCP 53 (the NodeLocal
//!   DNSCache address as a network), `Accept` to the API server's endpoint addresses when asked
//!   (this API cannot name it otherwise; left out while they are unknown, as for NetworkPolicy),
//!   then one `Deny` to `networks: [0.0.0.0/0, ::/0]` (networks match pod addresses too).

use serde_json::{json, Map, Value};

use super::common::{
    cluster_baseline_name, controller_refs, guardrails_name, object, uncovered_namespaces,
};
use super::{cluster_baseline_labels, ir, Env, Object, ObjectKind, Owner};
use crate::core::port::DNS_PORTS;
use crate::core::{Cidr, Port, Protocol, Selector};
use crate::model::{
    Backend, BaselineWish, ClusterBaselineModel, DnsTarget, GuardrailPeer, NamespaceMatch,
};
use crate::validate::label_selector;
use crate::vocab::{CNP_BASELINE_PRIORITY, NAMESPACE_NAME_LABEL, OPT_OUT_LABEL, OPT_OUT_VALUE};

/// The `tier` of a ClusterBaseline's object.
pub const TIER_BASELINE: &str = "Baseline";
/// The `tier` evaluated before NetworkPolicies.
pub const TIER_ADMIN: &str = "Admin";

/// Every network, IPv4 and IPv6.
pub const ALL_NETWORKS: [&str; 2] = ["0.0.0.0/0", "::/0"];

/// The `subject.namespaces` selector of a ClusterBaseline: its selector, minus the uncovered
/// namespaces (by `kubernetes.io/metadata.name`) and the opted-out ones.
pub fn namespace_selector(model: &ClusterBaselineModel, operator_namespace: &str) -> Value {
    let mut sel = serde_json::to_value(label_selector(&model.selector)).unwrap_or(json!({}));
    let mut exprs: Vec<Value> = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let uncovered = uncovered_namespaces(model, operator_namespace);
    if !uncovered.is_empty() {
        exprs.push(json!({
            "key": NAMESPACE_NAME_LABEL,
            "operator": "NotIn",
            "values": uncovered.into_iter().collect::<Vec<_>>(),
        }));
    }
    exprs.push(json!({"key": OPT_OUT_LABEL, "operator": "NotIn", "values": [OPT_OUT_VALUE]}));
    if let Some(m) = sel.as_object_mut() {
        m.insert("matchExpressions".into(), Value::Array(exprs));
    }
    sel
}

/// The `protocols` entry of one port: a number, a range (`range: {start, end}`), or a named
/// port (`destinationNamedPort`, which has no protocol of its own in this API).
pub fn protocol_entry(p: &Port) -> Value {
    let key = match p.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    };
    match p.id {
        crate::core::PortId::Number(n) => json!({ key: { "destinationPort": { "number": n } } }),
        crate::core::PortId::Range(start, end) => {
            json!({ key: { "destinationPort": { "range": { "start": start, "end": end } } } })
        }
        crate::core::PortId::Name(name) => json!({ "destinationNamedPort": name.as_str() }),
    }
}

/// A `pods` peer: namespace by name AND pod labels.
pub fn pods_in_namespace(namespace: &str, pods: &Selector) -> Value {
    json!({"pods": {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
        "podSelector": serde_json::to_value(label_selector(pods)).unwrap_or(json!({})),
    }})
}

/// A `networks` peer.
pub fn networks(cidrs: impl IntoIterator<Item = String>) -> Value {
    json!({"networks": cidrs.into_iter().collect::<Vec<_>>()})
}

fn dns_rule(i: usize, dns: &DnsTarget, count: usize) -> Value {
    let mut to = vec![pods_in_namespace(&dns.namespace, &dns.pods)];
    if let Some(addr) = dns.node_local {
        to.push(networks([Cidr::host(addr).to_string()]));
    }
    let name = if count > 1 {
        format!("allow-dns-{i}")
    } else {
        "allow-dns".to_string()
    };
    json!({
        "name": name,
        "action": "Accept",
        "to": to,
        "protocols": DNS_PORTS.iter().map(protocol_entry).collect::<Vec<_>>(),
    })
}

fn api_server_rule(env: &Env) -> Option<Value> {
    let caps = Backend::ClusterNetworkPolicy.capabilities();
    let rule = ir::api_server_rule(caps, &[], env)?;
    let ir::Endpoint::ApiServer(ir::ApiServer::Hosts(hosts)) = &rule.peer else {
        return None;
    };
    Some(json!({
        "name": "allow-kube-apiserver",
        "action": "Accept",
        "to": [networks(hosts.iter().map(ToString::to_string))],
        "protocols": rule.ports.iter().map(protocol_entry).collect::<Vec<_>>(),
    }))
}

/// The spec of a `tier: Baseline` deny-all plus DNS for `subject`.
pub fn baseline_spec(wish: &BaselineWish, subject: Value, priority: i64, env: &Env) -> Value {
    let mut spec = Map::new();
    spec.insert("tier".into(), json!(TIER_BASELINE));
    spec.insert("priority".into(), json!(priority));
    spec.insert("subject".into(), json!({ "namespaces": subject }));
    if wish.deny_ingress {
        spec.insert(
            "ingress".into(),
            json!([{"name": "deny-all", "action": "Deny", "from": [{"namespaces": {}}]}]),
        );
    }
    if wish.deny_egress {
        let mut egress: Vec<Value> = Vec::new();
        if let Some(dns) = &wish.dns {
            egress.push(dns_rule(0, dns, 1));
        }
        if wish.kube_api_server {
            egress.extend(api_server_rule(env));
        }
        egress.push(json!({
            "name": "deny-all",
            "action": "Deny",
            "to": [networks(ALL_NETWORKS.iter().map(|s| s.to_string()))],
        }));
        spec.insert("egress".into(), Value::Array(egress));
    }
    Value::Object(spec)
}

/// The ONE ClusterNetworkPolicy of a ClusterBaseline (`None` when it denies nothing, or asks
/// for `Audit`, which this API has no staged form of: the planner holds it before this).
pub fn cluster_baseline(
    name: &str,
    model: &ClusterBaselineModel,
    operator_namespace: &str,
    owner: Option<&Owner>,
    env: &Env,
) -> Option<Object> {
    if !model.wish.deny_ingress && !model.wish.deny_egress {
        return None;
    }
    let subject = namespace_selector(model, operator_namespace);
    let spec = baseline_spec(&model.wish, subject, CNP_BASELINE_PRIORITY, env);
    let Value::Object(spec) = spec else {
        return None;
    };
    Some(object(
        ObjectKind::ClusterNetworkPolicy,
        &cluster_baseline_name(name),
        None,
        cluster_baseline_labels(name),
        &controller_refs(owner),
        spec,
    ))
}

fn guardrail_peer(p: &GuardrailPeer, ingress: bool, rule: &str) -> Result<Value, String> {
    let ns = |m: &NamespaceMatch| match m {
        NamespaceMatch::Selector(s) => serde_json::to_value(label_selector(s)).unwrap_or(json!({})),
        NamespaceMatch::Named(n) => json!({"matchLabels": {NAMESPACE_NAME_LABEL: n}}),
        NamespaceMatch::All | NamespaceMatch::Own => json!({}),
    };
    match p {
        GuardrailPeer::Pods {
            namespaces,
            pods: None,
        } => Ok(json!({"namespaces": ns(namespaces)})),
        GuardrailPeer::Pods {
            namespaces,
            pods: Some(pods),
        } => Ok(json!({"pods": {
            "namespaceSelector": ns(namespaces),
            "podSelector": serde_json::to_value(label_selector(pods)).unwrap_or(json!({})),
        }})),
        GuardrailPeer::Cidr(c) if !ingress => Ok(networks([c.to_string()])),
        GuardrailPeer::Cidr(c) => Err(format!(
            "guardrail {rule:?}: an ingress rule from {c} cannot be written as a \
             ClusterNetworkPolicy (v1alpha2 ingress peers are namespaces and pods only)"
        )),
    }
}

/// A ClusterBaseline's guardrails as ONE `tier: Admin` ClusterNetworkPolicy over the covered
/// namespaces, at the guardrails' priority, rules in order (`Accept` / `Deny`, both final).
/// `Err` for what v1alpha2 cannot express (an ingress rule from a CIDR).
pub fn guardrails(
    name: &str,
    model: &ClusterBaselineModel,
    operator_namespace: &str,
    owner: Option<&Owner>,
) -> Result<Object, String> {
    let Some(g) = &model.guardrails else {
        return Err("no guardrails".to_string());
    };
    let (mut ingress, mut egress) = (Vec::new(), Vec::new());
    for r in &g.rules {
        let peers = r
            .peers
            .iter()
            .map(|p| guardrail_peer(p, r.ingress, &r.name))
            .collect::<Result<Vec<Value>, String>>()?;
        let mut rule = Map::new();
        rule.insert("name".into(), json!(r.name));
        rule.insert(
            "action".into(),
            json!(if r.allow { "Accept" } else { "Deny" }),
        );
        rule.insert(
            (if r.ingress { "from" } else { "to" }).into(),
            Value::Array(peers),
        );
        if !r.ports.is_empty() {
            rule.insert(
                "protocols".into(),
                Value::Array(r.ports.iter().map(protocol_entry).collect()),
            );
        }
        if r.ingress {
            ingress.push(Value::Object(rule));
        } else {
            egress.push(Value::Object(rule));
        }
    }
    let mut spec = Map::new();
    spec.insert("tier".into(), json!(TIER_ADMIN));
    spec.insert("priority".into(), json!(g.priority));
    spec.insert(
        "subject".into(),
        json!({"namespaces": namespace_selector(model, operator_namespace)}),
    );
    if !ingress.is_empty() {
        spec.insert("ingress".into(), Value::Array(ingress));
    }
    if !egress.is_empty() {
        spec.insert("egress".into(), Value::Array(egress));
    }
    Ok(object(
        ObjectKind::ClusterNetworkPolicy,
        &guardrails_name(name),
        None,
        cluster_baseline_labels(name),
        &controller_refs(owner),
        spec,
    ))
}

#[cfg(test)]
#[path = "cnp_cel_tests.rs"]
mod cel_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Endpoint, Scenario};
    use crate::validate;

    fn model(yaml: &str) -> ClusterBaselineModel {
        let spec: crate::crd::ClusterBaselineSpec = serde_yaml::from_str(yaml).unwrap();
        validate::cluster_baseline(&spec).unwrap()
    }

    fn ns(name: &str, labels: &[(&str, &str)]) -> Value {
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    }

    fn pod(ns: &str, name: &str, labels: Value, ip: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"namespace": ns, "name": name, "labels": labels},
               "status": {"podIP": ip}})
    }

    #[test]
    fn a_cluster_baseline_is_one_baseline_tier_object_with_dns_then_deny() {
        let o = cluster_baseline(
            "default",
            &model("{excludeNamespaces: [legacy], namespaceSelector: {matchLabels: {env: prod}}}"),
            "tierflow-system",
            None,
            &Env::default(),
        )
        .unwrap();
        assert_eq!(o.kind(), ObjectKind::ClusterNetworkPolicy);
        assert_eq!(o.name(), "tierflow-baseline-default");
        assert_eq!(o.namespace(), None);
        let spec = &o.body()["spec"];
        assert_eq!(spec["tier"], "Baseline");
        assert_eq!(spec["priority"], 1000);
        let sel = &spec["subject"]["namespaces"];
        assert_eq!(sel["matchLabels"]["env"], "prod");
        let exprs = sel["matchExpressions"].as_array().unwrap();
        assert_eq!(exprs[0]["key"], NAMESPACE_NAME_LABEL);
        assert_eq!(
            exprs[0]["values"],
            json!([
                "kube-node-lease",
                "kube-public",
                "kube-system",
                "legacy",
                "tierflow-system"
            ])
        );
        assert_eq!(
            exprs[1],
            json!({"key": "tierflow.dev/baseline", "operator": "NotIn", "values": ["disabled"]})
        );
        assert_eq!(spec["ingress"][0]["action"], "Deny");
        let egress = spec["egress"].as_array().unwrap();
        assert_eq!(egress.len(), 2);
        assert_eq!(egress[0]["action"], "Accept");
        assert_eq!(
            egress[0]["protocols"],
            json!([{"udp": {"destinationPort": {"number": 53}}}, {"tcp": {"destinationPort": {"number": 53}}}])
        );
        assert_eq!(egress[1]["action"], "Deny");
        assert_eq!(
            egress[1]["to"],
            json!([{"networks": ["0.0.0.0/0", "::/0"]}])
        );
    }

    #[test]
    fn nothing_denied_renders_nothing_and_node_local_dns_is_a_network() {
        assert!(cluster_baseline(
            "x",
            &model("{denyIngress: false, denyEgress: false}"),
            "t",
            None,
            &Env::default()
        )
        .is_none());
        let o = cluster_baseline(
            "x",
            &model("{denyIngress: false, dns: {nodeLocalAddress: 169.254.20.10}}"),
            "t",
            None,
            &Env::default(),
        )
        .unwrap();
        assert!(o.body()["spec"].get("ingress").is_none());
        assert_eq!(
            o.body()["spec"]["egress"][0]["to"][1],
            json!({"networks": ["169.254.20.10/32"]})
        );
    }

    #[test]
    fn the_api_server_is_its_endpoint_addresses_and_left_out_while_unknown() {
        let m = model("{allowKubeAPIServer: true}");
        let none = cluster_baseline("x", &m, "t", None, &Env::default()).unwrap();
        assert_eq!(none.body()["spec"]["egress"].as_array().unwrap().len(), 2);
        let env = Env {
            api_server: vec![("10.0.0.1".parse().unwrap(), 6443)],
            ..Env::default()
        };
        let o = cluster_baseline("x", &m, "t", None, &env).unwrap();
        let rule = &o.body()["spec"]["egress"][1];
        assert_eq!(rule["to"], json!([{"networks": ["10.0.0.1/32"]}]));
        assert_eq!(
            rule["protocols"],
            json!([{"tcp": {"destinationPort": {"number": 6443}}}])
        );
    }

    /// The CRD's CEL rules (standard channel, v0.2.0), checked offline on every rendered
    /// variant: the CRD has exactly two, `isCIDR(self)` on every `networks` entry and
    /// `self.start < self.end` on every port `range`. A 1.20 API server ignores
    /// `x-kubernetes-validations`, so they are checked here; the structural schema (enums,
    /// types, required fields, maxItems, maxLength) is enforced by the API server in the e2e
    /// check. The limits are checked too.
    #[test]
    fn every_rendered_variant_satisfies_the_crds_cel_rules_and_limits() {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(nets) = m.get("networks").and_then(Value::as_array) {
                        for n in nets {
                            let n = n.as_str().unwrap();
                            // isCIDR: a network in CIDR form (host bits allowed upstream; we
                            // write none).
                            assert!(n.parse::<ipnet::IpNet>().is_ok(), "isCIDR({n})");
                            assert_eq!(Cidr::parse(n).unwrap().to_string(), n);
                        }
                    }
                    if let Some(r) = m.get("range") {
                        assert!(r["start"].as_u64() < r["end"].as_u64(), "{r}");
                    }
                    for (k, x) in m {
                        if k == "name" {
                            out.push(x.as_str().unwrap_or_default().to_string());
                        }
                        walk(x, out);
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let check = |spec: &Value| {
            let mut names = Vec::new();
            walk(spec, &mut names);
            assert!(names
                .iter()
                .all(|n| n.chars().count() <= crate::vocab::CNP_MAX_RULE_NAME));
            for dir in ["ingress", "egress"] {
                let rules = spec[dir].as_array().map(Vec::as_slice).unwrap_or_default();
                assert!(rules.len() <= crate::vocab::CNP_MAX_RULES);
                for r in rules {
                    let peers = r.get("to").or(r.get("from")).unwrap().as_array().unwrap();
                    assert!(!peers.is_empty() && peers.len() <= crate::vocab::CNP_MAX_PEERS);
                    // Each peer sets exactly one field (maxProperties/minProperties 1).
                    assert!(
                        peers.iter().all(|p| p.as_object().unwrap().len() == 1),
                        "{r}"
                    );
                }
            }
            let p = spec["priority"].as_i64().unwrap();
            assert!((0..=1000).contains(&p));
        };
        for o in rendered_objects() {
            check(&o["spec"]);
        }
    }

    /// Every object this backend renders, in every variant: the ClusterBaseline object (each
    /// shape of its rules, dual-stack API server addresses, NodeLocal DNS) and the guardrails
    /// object with every peer and port form (a port range among them).
    pub(super) fn rendered_objects() -> Vec<Value> {
        let env = Env {
            api_server: vec![
                ("10.0.0.1".parse().unwrap(), 6443),
                ("fd00::1".parse().unwrap(), 443),
            ],
            ..Env::default()
        };
        let mut out = Vec::new();
        for yaml in [
            "{}",
            "{denyIngress: false}",
            "{denyEgress: false}",
            "{allowKubeAPIServer: true, dns: {nodeLocalAddress: 169.254.20.10}}",
            "{namespaceSelector: {matchExpressions: [{key: env, operator: In, values: [a, b]}]}, includeSystemNamespaces: [kube-system]}",
        ] {
            let o = cluster_baseline("default", &model(yaml), "tierflow-system", None, &env).unwrap();
            out.push(o.into_value());
        }
        let g = guardrails(
            "default",
            &model(
                "{guardrails: {priority: 99, rules: [
                   {name: a, action: Deny, direction: Egress, peers: [{cidr: 169.254.169.254/32}, {allNamespaces: true}], ports: [{port: 30000, endPort: 32767}, {name: http}]},
                   {name: b, action: Allow, direction: Ingress, peers: [{namespaceSelector: {matchLabels: {team: x}}, podSelector: {matchLabels: {app: p}}}], ports: [{port: 9090, protocol: UDP}]}]}}",
            ),
            "tierflow-system",
            None,
        )
        .unwrap();
        assert_eq!(g.body()["spec"]["tier"], TIER_ADMIN);
        out.push(g.into_value());
        out
    }

    /// Simulated: every covered namespace is deny-all plus DNS; excluded, system and opted-out
    /// namespaces are untouched; a NetworkPolicy in a covered namespace decides before it.
    #[test]
    fn simulated_the_baseline_covers_exactly_the_covered_namespaces() {
        let o = cluster_baseline(
            "default",
            &model("{excludeNamespaces: [legacy]}"),
            "tierflow-system",
            None,
            &Env::default(),
        )
        .unwrap();
        let objects = vec![
            ns("shop", &[]),
            ns("legacy", &[]),
            ns("optout", &[("tierflow.dev/baseline", "disabled")]),
            ns("kube-system", &[]),
            pod("shop", "a", json!({"app": "a"}), "10.0.0.1"),
            pod("shop", "b", json!({"app": "b"}), "10.0.0.2"),
            pod("legacy", "l", json!({}), "10.0.0.3"),
            pod("optout", "o", json!({}), "10.0.0.4"),
            pod(
                "kube-system",
                "dns",
                json!({"k8s-app": "kube-dns"}),
                "10.0.0.53",
            ),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"namespace": "shop", "name": "b-from-a"},
                   "spec": {"podSelector": {"matchLabels": {"app": "b"}},
                            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"namespace": "shop", "name": "a-to-b"},
                   "spec": {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"],
                            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}}),
            o.to_value(),
        ];
        let s = Scenario::from_values(objects).unwrap();
        let p = |n: &str| Endpoint::Pod(s.pods().iter().position(|p| p.name == n).unwrap());
        let tcp = crate::core::Protocol::Tcp;
        let udp = crate::core::Protocol::Udp;
        // Covered: deny-all both ways, DNS allowed.
        let v = s.check(p("l"), p("b"), 80, tcp);
        assert!(!v.allowed);
        assert!(s.check(p("b"), p("dns"), 53, udp).allowed);
        assert!(s.check(p("b"), p("dns"), 53, tcp).allowed);
        let v = s.check(p("b"), p("l"), 80, tcp);
        assert!(!v.allowed);
        assert_eq!(v.decided_by, ["tierflow-baseline-default"]);
        assert!(
            !s.check(p("b"), Endpoint::Ip("1.1.1.1".parse().unwrap()), 443, tcp)
                .allowed
        );
        // The namespace's own NetworkPolicies decide first.
        assert!(s.check(p("a"), p("b"), 80, tcp).allowed);
        assert!(!s.check(p("b"), p("a"), 80, tcp).allowed);
        // Excluded, opted out, system: untouched.
        assert!(s.check(p("l"), p("o"), 80, tcp).allowed);
        assert!(s.check(p("o"), p("l"), 80, tcp).allowed);
        assert!(s.check(p("dns"), p("l"), 80, tcp).allowed);
    }
}
