//! The standard backend: `networking.k8s.io/v1` NetworkPolicy, which every enforcing CNI honours.

use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::{Map, Value};

use super::common::{controller_refs, object, shared_refs};
use super::ir::{self, ApiServer, AppPolicy, Endpoint, Rule, TierPolicy};
use super::{baseline_labels, tier_labels, Env, Object, ObjectKind, Owner, Rendered};
use crate::core::names::{tier_policy_name, BASELINE_NAME};
use crate::core::port::DNS_PORTS;
use crate::core::{Cidr, Port, PortId, Selector};
use crate::model::{AppModel, Backend, DnsTarget, NamespaceBaseline, NamespaceMatch};
use crate::vocab::node_local_dns_pods;

// The objects are written straight as JSON (what the applier compares and sends), in the shape
// `serde_json::to_value` gives the k8s-openapi `NetworkPolicy` (keys sorted; absent optional
// fields left out), without building and serialising the typed structs first. The typed forms
// ([`tier_policies`], [`baseline`]) are read back from the same JSON.

/// The per-tier objects, and what this backend cannot express (the same as
/// [`super::tier_objects`] on this backend).
pub fn tier_objects(model: &AppModel, owner: Option<&Owner>, env: &Env) -> Rendered {
    let policy = ir::build(model, Backend::NetworkPolicy, env);
    Rendered {
        objects: objects(model, &policy, owner),
        limitations: policy.limitations,
    }
}

/// The per-tier objects of the intermediate form.
pub fn objects(model: &AppModel, policy: &AppPolicy, owner: Option<&Owner>) -> Vec<Object> {
    policy
        .tiers
        .iter()
        .map(|t| tier_policy(model, t, owner))
        .collect()
}

/// The namespace baseline as a rendered object.
pub fn baseline_object(
    namespace: &str,
    b: &NamespaceBaseline,
    owners: &[Owner],
    env: &Env,
) -> Option<Object> {
    baseline_with(namespace, b, owners, env)
}

pub use crate::core::names::NAMESPACE_NAME_LABEL;

fn typed(o: Object) -> Option<NetworkPolicy> {
    serde_json::from_str(o.json()).ok()
}

/// One NetworkPolicy per tier: selects the tier, isolates it both ways, allows the declared
/// flows in and out, and DNS. (Without cluster facts: API server flows are left out.)
pub fn tier_policies(model: &AppModel, owner: Option<&Owner>) -> Vec<NetworkPolicy> {
    let policy = ir::build(model, Backend::NetworkPolicy, &Env::default());
    objects(model, &policy, owner)
        .into_iter()
        .filter_map(typed)
        .collect()
}

/// Appends `rule` unless an equal rule is already there (the first stays in place).
fn push_unique(rules: &mut Vec<Value>, rule: Value) {
    if !rules.contains(&rule) {
        rules.push(rule);
    }
}

fn tier_policy(model: &AppModel, t: &TierPolicy, owner: Option<&Owner>) -> Object {
    let mut ingress: Vec<Value> = Vec::new();
    for r in &t.ingress {
        if let Some(from) = peers(&r.peer) {
            push_unique(&mut ingress, rule("from", from, &r.ports));
        }
    }
    let mut egress: Vec<Value> = Vec::new();
    if let Some(dns) = &t.dns {
        egress.push(dns_rule(&dns.target));
    }
    for r in &t.egress {
        if let Some(e) = egress_rule(r) {
            push_unique(&mut egress, e);
        }
    }
    let mut spec = Map::new();
    spec.insert("podSelector".into(), label_selector(&t.selector));
    spec.insert(
        "policyTypes".into(),
        Value::Array(vec!["Ingress".into(), "Egress".into()]),
    );
    if !ingress.is_empty() {
        spec.insert("ingress".into(), Value::Array(ingress));
    }
    if !egress.is_empty() {
        spec.insert("egress".into(), Value::Array(egress));
    }
    object(
        ObjectKind::NetworkPolicy,
        &tier_policy_name(&model.name, &t.name),
        Some(&model.namespace),
        tier_labels(&model.name, &t.name),
        &controller_refs(owner),
        spec,
    )
}

/// The namespace baseline `tierflow-baseline`: selects every pod, denies per the merged wishes
/// and, when egress is denied, allows DNS. `None` when nothing is denied.
pub fn baseline(namespace: &str, b: &NamespaceBaseline, owners: &[Owner]) -> Option<NetworkPolicy> {
    baseline_with(namespace, b, owners, &Env::default()).and_then(typed)
}

fn baseline_with(
    namespace: &str,
    b: &NamespaceBaseline,
    owners: &[Owner],
    env: &Env,
) -> Option<Object> {
    if b.is_empty() {
        return None;
    }
    let mut types = Vec::new();
    if b.deny_ingress {
        types.push(Value::from("Ingress"));
    }
    let mut egress = Vec::new();
    if b.deny_egress {
        types.push(Value::from("Egress"));
        egress.extend(b.dns.iter().map(dns_rule));
        if b.kube_api_server {
            let caps = Backend::NetworkPolicy.capabilities();
            if let Some(r) = ir::api_server_rule(caps, &[], env) {
                egress.extend(egress_rule(&r));
            }
        }
    }
    let mut spec = Map::new();
    spec.insert("podSelector".into(), Value::Object(Map::new()));
    spec.insert("policyTypes".into(), Value::Array(types));
    if !egress.is_empty() {
        spec.insert("egress".into(), Value::Array(egress));
    }
    Some(object(
        ObjectKind::NetworkPolicy,
        BASELINE_NAME,
        Some(namespace),
        baseline_labels(),
        &shared_refs(owners),
        spec,
    ))
}

/// A rule: its peers under `peers_key` (`from` / `to`) and its ports.
fn rule(peers_key: &str, peers: Vec<Value>, list: &[Port]) -> Value {
    let mut m = Map::new();
    m.insert(peers_key.into(), Value::Array(peers));
    m.insert("ports".into(), ports(list));
    Value::Object(m)
}

/// The egress rule of one resolved rule; `None` when its peer has no NetworkPolicy form (never
/// an empty peer list, which would allow every destination).
fn egress_rule(r: &Rule) -> Option<Value> {
    Some(rule("to", peers(&r.peer)?, &r.ports))
}

fn dns_rule(dns: &DnsTarget) -> Value {
    let mut peer = Map::new();
    peer.insert("namespaceSelector".into(), namespace_named(&dns.namespace));
    peer.insert("podSelector".into(), label_selector(&dns.pods));
    let mut to = vec![Value::Object(peer)];
    if let Some(addr) = dns.node_local {
        // The cache's address (a host-network listener, /32 or /128), and its pods where it
        // runs as pods behind a local redirect (Cilium's setup, also with this backend).
        to.push(ip_block(&Cidr::host(addr), &[]));
        let mut pods = Map::new();
        pods.insert("namespaceSelector".into(), namespace_named(&dns.namespace));
        pods.insert("podSelector".into(), label_selector(&node_local_dns_pods()));
        to.push(Value::Object(pods));
    }
    rule("to", to, &DNS_PORTS)
}

fn namespace_named(ns: &str) -> Value {
    let mut labels = Map::new();
    labels.insert(NAMESPACE_NAME_LABEL.into(), Value::from(ns));
    let mut m = Map::new();
    m.insert("matchLabels".into(), Value::Object(labels));
    Value::Object(m)
}

/// A label selector as the API writes it (`validate::label_selector`, serialised): empty parts
/// left out, `values` left out when empty.
fn label_selector(s: &Selector) -> Value {
    let mut m = Map::new();
    if !s.match_expressions.is_empty() {
        let exprs = s
            .match_expressions
            .iter()
            .map(|r| {
                let mut e = Map::new();
                e.insert("key".into(), Value::from(r.key.as_str()));
                e.insert("operator".into(), Value::from(r.op.as_str()));
                if !r.values.is_empty() {
                    e.insert(
                        "values".into(),
                        r.values.iter().map(|v| Value::from(v.as_str())).collect(),
                    );
                }
                Value::Object(e)
            })
            .collect();
        m.insert("matchExpressions".into(), Value::Array(exprs));
    }
    if !s.match_labels.is_empty() {
        let labels = s
            .match_labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        m.insert("matchLabels".into(), Value::Object(labels));
    }
    Value::Object(m)
}

/// The peers of one resolved peer: ONE peer for pods (so namespace AND pod conditions both
/// apply) and networks, one per address for the API server; `None` for peers NetworkPolicy
/// cannot name (the intermediate form leaves those out for this backend already).
fn peers(p: &Endpoint) -> Option<Vec<Value>> {
    let peer = match p {
        Endpoint::Pods { namespaces, pods } => {
            let mut m = Map::new();
            let namespace_selector = match namespaces {
                NamespaceMatch::Own => None,
                NamespaceMatch::Named(ns) => Some(namespace_named(ns)),
                NamespaceMatch::Selector(s) => Some(label_selector(s)),
                NamespaceMatch::All => Some(Value::Object(Map::new())),
            };
            if let Some(ns) = namespace_selector {
                m.insert("namespaceSelector".into(), ns);
            }
            if let Some(pods) = pods {
                m.insert("podSelector".into(), label_selector(pods));
            }
            Value::Object(m)
        }
        Endpoint::Cidr { cidr, except } => ip_block(cidr, except),
        Endpoint::ApiServer(ApiServer::Hosts(hosts)) if !hosts.is_empty() => {
            return Some(hosts.iter().map(|h| ip_block(h, &[])).collect());
        }
        // Per family with a known cluster range: all of it minus the cluster's ranges.
        Endpoint::World { cluster } => {
            let blocks: Vec<Value> = ir::world_blocks(cluster)
                .iter()
                .map(|(all, except)| ip_block(all, except))
                .collect();
            return (!blocks.is_empty()).then_some(blocks);
        }
        Endpoint::ApiServer(_) | Endpoint::Fqdn(_) => return None,
    };
    Some(vec![peer])
}

fn ip_block(cidr: &Cidr, except: &[Cidr]) -> Value {
    let mut block = Map::new();
    block.insert("cidr".into(), Value::from(cidr.to_string()));
    if !except.is_empty() {
        block.insert(
            "except".into(),
            except.iter().map(|e| Value::from(e.to_string())).collect(),
        );
    }
    let mut m = Map::new();
    m.insert("ipBlock".into(), Value::Object(block));
    Value::Object(m)
}

fn ports(list: &[Port]) -> Value {
    list.iter()
        .map(|p| {
            let mut m = Map::new();
            if let Some(end) = p.end() {
                m.insert("endPort".into(), Value::from(end));
            }
            m.insert(
                "port".into(),
                match p.id {
                    PortId::Number(n) | PortId::Range(n, _) => Value::from(n),
                    PortId::Name(n) => Value::from(n.to_string()),
                },
            );
            m.insert("protocol".into(), Value::from(p.protocol.as_str()));
            Value::Object(m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::AppNetworkSpec;
    use crate::model::BaselineWish;
    use crate::validate;
    use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    use crate::render::fixtures::THREE_TIER;

    fn model() -> AppModel {
        let spec: AppNetworkSpec = serde_yaml::from_str(THREE_TIER).unwrap();
        validate::app_network("shop", "production", &spec).unwrap()
    }

    fn yaml<T: serde::Serialize>(v: &T) -> String {
        serde_yaml::to_string(v).unwrap()
    }

    #[test]
    fn three_tier_example_renders_one_policy_per_tier() {
        let pols = tier_policies(&model(), None);
        let names: Vec<_> = pols
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "tierflow-shop-frontend",
                "tierflow-shop-api",
                "tierflow-shop-database"
            ]
        );
        let api = pols[1].spec.as_ref().unwrap();
        assert_eq!(
            api.policy_types.as_deref(),
            Some(&["Ingress".to_string(), "Egress".to_string()][..])
        );
        // ingress from frontend on 8080, and from monitoring/prometheus on 9090 in ONE peer
        let ingress = api.ingress.as_ref().unwrap();
        assert_eq!(ingress.len(), 2);
        let prom = &ingress[1].from.as_ref().unwrap()[0];
        assert!(prom.namespace_selector.is_some() && prom.pod_selector.is_some());
        // egress: DNS, database, external CIDR
        assert_eq!(api.egress.as_ref().unwrap().len(), 3);
    }

    #[test]
    fn rendering_is_byte_for_byte_deterministic() {
        assert_eq!(
            yaml(&tier_policies(&model(), None)),
            yaml(&tier_policies(&model(), None))
        );
    }

    #[test]
    fn cidr_except_and_dns_render_as_kubernetes_expects() {
        let pols = tier_policies(&model(), None);
        let fe = yaml(&pols[0]);
        assert!(fe.contains("cidr: 0.0.0.0/0"), "{fe}");
        assert!(fe.contains("- 169.254.169.254/32"));
        let dns = &pols[0].spec.as_ref().unwrap().egress.as_ref().unwrap()[0];
        let ports: Vec<_> = dns
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.protocol.clone().unwrap())
            .collect();
        assert_eq!(ports, ["UDP", "TCP"]);
    }

    #[test]
    fn intra_tier_flow_yields_ingress_and_egress_on_the_same_policy() {
        let pols = tier_policies(&model(), None);
        let db = pols[2].spec.as_ref().unwrap();
        let selects_db = |p: &NetworkPolicyPeer| {
            p.namespace_selector.is_none()
                && p.pod_selector
                    .as_ref()
                    .and_then(|s| s.match_labels.as_ref())
                    .and_then(|l| l.get("app"))
                    .is_some_and(|v| v == "database")
        };
        let from_db = db
            .ingress
            .as_ref()
            .unwrap()
            .iter()
            .any(|r| r.from.as_ref().unwrap().iter().any(selects_db));
        let to_db = db
            .egress
            .as_ref()
            .unwrap()
            .iter()
            .any(|r| r.to.as_ref().unwrap().iter().any(selects_db));
        assert!(from_db && to_db);
    }

    #[test]
    fn baseline_merges_denies_and_dns() {
        let m = model();
        let merged = NamespaceBaseline::merge([
            &m.baseline,
            &BaselineWish {
                deny_ingress: true,
                ..Default::default()
            },
        ]);
        let b = baseline("production", &merged, &[]).unwrap();
        let spec = b.spec.unwrap();
        assert_eq!(spec.policy_types.unwrap(), ["Ingress", "Egress"]);
        assert_eq!(spec.egress.unwrap().len(), 1);
        assert_eq!(spec.pod_selector, Some(LabelSelector::default()));
    }

    #[test]
    fn nothing_denied_renders_no_baseline() {
        assert!(baseline("x", &NamespaceBaseline::default(), &[]).is_none());
    }
}
