//! The Calico backend: `projectcalico.org/v3` policies.
//!
//! Per tier one `NetworkPolicy` (a `StagedNetworkPolicy` in audit mode) at order
//! [`CALICO_TIER_ORDER`]; per namespace one baseline at order [`CALICO_BASELINE_ORDER`]; per
//! ClusterBaseline ONE `GlobalNetworkPolicy` (staged in audit mode). Everything lives in the
//! `default` tier, where Kubernetes NetworkPolicies also live (at order 1000).
//!
//! How the deny works: Calico drops a packet at the end of a tier when some policy of that tier
//! selected the endpoint for that direction and no rule allowed it ("If the Tier applies to the
//! endpoint, but takes no action on the packet the packet is dropped",
//! <https://docs.tigera.io/calico/latest/reference/resources/tier>). So neither the tier policies
//! nor the baselines carry an explicit `Deny` rule: allows of every policy that selects a pod
//! add up, exactly as Kubernetes NetworkPolicies do, and an explicit `Deny` in the baseline would
//! instead cut off allows of policies ordered after it.
//!
//! Field shapes follow the upstream CRDs (`projectcalico.org_*.yaml`): `ports` items and
//! `protocol` are int-or-string, `order` is a number, a rule with ports needs its `protocol`,
//! and a rule naming `services` may carry no selectors, nets or (egress) ports.

use serde_json::{json, Map, Value};

use super::common::{
    cluster_baseline_name, controller_refs, direction_not_denied, guardrails_name, object,
    push_unique, shared_refs,
};
use super::ir::{self, ApiServer, AppPolicy, Endpoint};
use super::networkpolicy::NAMESPACE_NAME_LABEL;
use super::{
    baseline_labels, cluster_baseline_labels, tier_labels, Env, Object, ObjectKind, Owner,
    Rendered, CALICO_BASELINE_ORDER, CALICO_TIER_ORDER,
};
use crate::core::names::{calico_policy_name, tier_policy_name, BASELINE_NAME};
use crate::core::port::DNS_PORTS;
use crate::core::{Cidr, Port, PortId, Protocol, Selector, SelectorOp};
use crate::model::{
    AppModel, Backend, BaselineWish, ClusterBaselineModel, DnsTarget, GuardrailPeer,
    NamespaceBaseline, NamespaceMatch, OPT_OUT_LABEL, OPT_OUT_VALUE,
};

pub use super::common::uncovered_namespaces;

/// The Calico tier every tierflow policy belongs to. Written out although it is the CRD's default,
/// so that the live object (where the API server filled it in) equals the desired one.
pub const TIER: &str = "default";

/// `stagedAction` of staged policies: stage the policy as it is. Written out for the same reason
/// as [`TIER`].
pub const STAGED_ACTION: &str = "Set";

/// Translates a label selector into Calico's selector syntax.
///
/// `matchLabels` become `k == 'v'`, `In` becomes `k in {'a', 'b'}`, `NotIn` becomes
/// `k not in {'a'}`, `Exists` becomes `has(k)` and `DoesNotExist` becomes `!has(k)`, joined with
/// ` && `; the empty selector is `all()`. Calico's `not in` (like `!=`) also matches endpoints
/// WITHOUT the label (`LabelNotInSetNode.Evaluate` returns true for an absent label, in
/// `libcalico-go/lib/selector/parser/ast.go`), which is exactly Kubernetes' `NotIn`.
pub fn selector(s: &Selector) -> String {
    let mut terms: Vec<String> = s
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k} == {}", quote(v)))
        .collect();
    for r in &s.match_expressions {
        terms.push(match r.op {
            SelectorOp::In => format!("{} in {}", r.key, set(r.values.iter())),
            SelectorOp::NotIn => format!("{} not in {}", r.key, set(r.values.iter())),
            SelectorOp::Exists => format!("has({})", r.key),
            SelectorOp::DoesNotExist => format!("!has({})", r.key),
        });
    }
    and(terms)
}

/// The Calico selector of the namespace called `ns` (on `kubernetes.io/metadata.name`).
pub fn namespace_named(ns: &str) -> String {
    format!("{NAMESPACE_NAME_LABEL} == {}", quote(ns))
}

/// The `namespaceSelector` of a ClusterBaseline's GlobalNetworkPolicy: its namespace selector,
/// AND not an uncovered namespace (by `kubernetes.io/metadata.name`), AND not opted out
/// (`tierflow.dev/baseline != 'disabled'`, which also matches namespaces without the label).
pub fn cluster_namespace_selector(
    model: &ClusterBaselineModel,
    operator_namespace: &str,
) -> String {
    let mut terms = Vec::new();
    if !model.selector.is_empty() {
        terms.push(selector(&model.selector));
    }
    let uncovered = uncovered_namespaces(model, operator_namespace);
    if !uncovered.is_empty() {
        terms.push(format!(
            "{NAMESPACE_NAME_LABEL} not in {}",
            set(uncovered.iter())
        ));
    }
    terms.push(format!("{OPT_OUT_LABEL} != {}", quote(OPT_OUT_VALUE)));
    and(terms)
}

/// A Calico string literal. Calico literals have no escapes; label values and namespace names
/// cannot contain quotes (validated), so this only matters for input that skipped validation:
/// single quotes unless the value contains one, then double quotes; a value with both kinds
/// loses its double quotes.
fn quote(v: &str) -> String {
    if !v.contains('\'') {
        format!("'{v}'")
    } else {
        format!("\"{}\"", v.replace('"', ""))
    }
}

fn set<'a>(values: impl Iterator<Item = &'a String>) -> String {
    let quoted: Vec<String> = values.map(|v| quote(v)).collect();
    format!("{{{}}}", quoted.join(", "))
}

fn and(terms: Vec<String>) -> String {
    if terms.is_empty() {
        "all()".to_string()
    } else {
        terms.join(" && ")
    }
}

/// `order` as JSON: a whole number is written as an integer, the form the API server returns,
/// so that desired and live objects compare equal.
fn order(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

/// Ports grouped by protocol, protocols in order of first appearance, ports in spec order:
/// Calico takes one protocol per rule, and at most [`MAX_PORTS_PER_RULE`] ports in one rule
/// (longer lists become several rules).
fn by_protocol(ports: &[Port]) -> Vec<(Protocol, Vec<Value>)> {
    let mut out: Vec<(Protocol, Vec<Value>)> = Vec::new();
    for p in ports {
        match out.iter_mut().find(|(proto, _)| *proto == p.protocol) {
            Some((_, list)) => list.push(port_value(p)),
            None => out.push((p.protocol, vec![port_value(p)])),
        }
    }
    out.into_iter()
        .flat_map(|(proto, list)| {
            list.chunks(MAX_PORTS_PER_RULE)
                .map(|c| (proto, c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Calico refuses a rule with more ports than this (`policy_common.go` line 208; the same
/// limit as `crate::admit::calico::MAX_PORTS`, which the planner checks every object against).
pub const MAX_PORTS_PER_RULE: usize = 50;

/// One entry of a Calico `ports` list (`numorstring.Port`): a number as an integer, a range as
/// the string `"first:last"`, a container port name as itself.
fn port_value(p: &Port) -> Value {
    match p.id {
        PortId::Number(n) => json!(n),
        PortId::Range(a, b) => json!(format!("{a}:{b}")),
        PortId::Name(n) => json!(n.as_str()),
    }
}

/// An `Allow` rule. `source` and `destination` are always written (Calico returns them even when
/// empty).
fn allow(
    protocol: Option<Protocol>,
    source: Map<String, Value>,
    destination: Map<String, Value>,
) -> Value {
    let mut rule = Map::new();
    rule.insert("action".into(), json!("Allow"));
    if let Some(p) = protocol {
        rule.insert("protocol".into(), json!(p.as_str()));
    }
    rule.insert("source".into(), Value::Object(source));
    rule.insert("destination".into(), Value::Object(destination));
    Value::Object(rule)
}

/// The rules allowing `ports` to or from `peer` (an entity rule): one per protocol, or one
/// without protocol and ports when `ports` is empty.
fn allow_ports(peer: &Map<String, Value>, ports: &[Port], ingress: bool) -> Vec<Value> {
    if ports.is_empty() {
        return vec![if ingress {
            allow(None, peer.clone(), Map::new())
        } else {
            allow(None, Map::new(), peer.clone())
        }];
    }
    by_protocol(ports)
        .into_iter()
        .map(|(proto, numbers)| {
            let mut dst = if ingress { Map::new() } else { peer.clone() };
            dst.insert("ports".into(), json!(numbers));
            let src = if ingress { peer.clone() } else { Map::new() };
            allow(Some(proto), src, dst)
        })
        .collect()
}

fn entity(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The entity rules matching one resolved peer (one per rule to write).
///
/// A `world` peer is one entity rule per address family with a known cluster range: `nets`
/// every address of the family, `notNets` the cluster's ranges of that family. Calico's
/// validator refuses a rule whose `nets` / `notNets` mix IPv4 and IPv6 ("rule contains both
/// IPv4 and IPv6 CIDRs": projectcalico/calico `libcalico-go/lib/validator/v3/validator.go`,
/// `validateRule`, at 1c40a89292e7), so the families cannot share one rule.
fn peer_entities(p: &Endpoint) -> Vec<Map<String, Value>> {
    match p {
        Endpoint::World { cluster } => ir::world_blocks(cluster)
            .into_iter()
            .map(|(all, except)| {
                let not: Vec<String> = except.iter().map(ToString::to_string).collect();
                entity([("nets", json!([all.to_string()])), ("notNets", json!(not))])
            })
            .collect(),
        other => peer_entity(other).into_iter().collect(),
    }
}

/// The entity rule matching one resolved peer (`None` for FQDN and named API server peers,
/// which are not entity rules here, and world peers: [`peer_entities`]).
fn peer_entity(p: &Endpoint) -> Option<Map<String, Value>> {
    match p {
        Endpoint::Pods { namespaces, pods } => {
            let mut e = Map::new();
            let ns = match namespaces {
                // No namespaceSelector: a NetworkPolicy's selectors match its own namespace.
                NamespaceMatch::Own => None,
                NamespaceMatch::Named(ns) => Some(namespace_named(ns)),
                NamespaceMatch::Selector(s) => Some(selector(s)),
                NamespaceMatch::All => Some("all()".to_string()),
            };
            if let Some(ns) = ns {
                e.insert("namespaceSelector".into(), json!(ns));
            }
            // A namespaceSelector alone matches every endpoint of those namespaces; without one
            // the selector matches the policy's own namespace (so `all()` there is every pod
            // of this namespace).
            match (pods, e.is_empty()) {
                (Some(s), _) => {
                    e.insert("selector".into(), json!(selector(s)));
                }
                (None, true) => {
                    e.insert("selector".into(), json!("all()"));
                }
                (None, false) => {}
            }
            Some(e)
        }
        Endpoint::Cidr { cidr, except } => {
            let mut e = entity([("nets", json!([cidr.to_string()]))]);
            if !except.is_empty() {
                let not: Vec<String> = except.iter().map(ToString::to_string).collect();
                e.insert("notNets".into(), json!(not));
            }
            Some(e)
        }
        Endpoint::ApiServer(ApiServer::Hosts(hosts)) if !hosts.is_empty() => {
            let nets: Vec<String> = hosts.iter().map(ToString::to_string).collect();
            Some(entity([("nets", json!(nets))]))
        }
        Endpoint::Fqdn(_) | Endpoint::ApiServer(_) | Endpoint::World { .. } => None,
    }
}

/// Egress to the Kubernetes API server through its Service `default/kubernetes`: Calico resolves
/// the endpoints and their ports itself
/// (<https://docs.tigera.io/calico/latest/network-policy/policy-rules/service-policy>). The CRD
/// forbids `ports` next to `services` on egress rules, so a flow's explicit ports are not
/// written; the rule is limited to the API server's own port anyway.
fn api_server_rule() -> Value {
    allow(
        None,
        Map::new(),
        entity([(
            "services",
            json!({"name": "kubernetes", "namespace": "default"}),
        )]),
    )
}

/// Egress to DNS: the DNS pods (namespace AND pods in one entity rule) on UDP and TCP 53, then
/// the NodeLocal DNSCache address when set.
fn dns_rules(dns: &DnsTarget) -> Vec<Value> {
    let pods = entity([
        ("namespaceSelector", json!(namespace_named(&dns.namespace))),
        ("selector", json!(selector(&dns.pods))),
    ]);
    let mut rules = allow_ports(&pods, &DNS_PORTS, false);
    if let Some(addr) = dns.node_local {
        // The cache's address (host network), and its pods behind a local redirect.
        let nets = entity([("nets", json!([Cidr::host(addr).to_string()]))]);
        rules.extend(allow_ports(&nets, &DNS_PORTS, false));
        let pods = entity([
            ("namespaceSelector", json!(namespace_named(&dns.namespace))),
            (
                "selector",
                json!(selector(&crate::vocab::node_local_dns_pods())),
            ),
        ]);
        rules.extend(allow_ports(&pods, &DNS_PORTS, false));
    }
    rules
}

/// `types` for the denied directions, Ingress first.
fn types(ingress: bool, egress: bool) -> Vec<&'static str> {
    [(ingress, "Ingress"), (egress, "Egress")]
        .into_iter()
        .filter_map(|(on, t)| on.then_some(t))
        .collect()
}

/// The `spec` every policy shares.
fn spec(
    kind: ObjectKind,
    order_value: f64,
    types: &[&str],
    ingress: Vec<Value>,
    egress: Vec<Value>,
) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("tier".into(), json!(TIER));
    s.insert("order".into(), order(order_value));
    s.insert("types".into(), json!(types));
    if !ingress.is_empty() {
        s.insert("ingress".into(), Value::Array(ingress));
    }
    if !egress.is_empty() {
        s.insert("egress".into(), Value::Array(egress));
    }
    if matches!(
        kind,
        ObjectKind::CalicoStagedNetworkPolicy | ObjectKind::CalicoStagedGlobalNetworkPolicy
    ) {
        s.insert("stagedAction".into(), json!(STAGED_ACTION));
    }
    s
}

/// Per-tier Calico NetworkPolicies (StagedNetworkPolicies in audit mode), and what Calico
/// cannot express: FQDN peers (left out, fail closed) and HTTP rules (enforced as their ports).
/// The same as [`super::tier_objects`] on this backend.
pub fn tier_objects(model: &AppModel, owner: Option<&Owner>) -> Rendered {
    let policy = ir::build(model, Backend::Calico, &Env::default());
    Rendered {
        objects: objects(model, &policy, owner),
        limitations: policy.limitations,
    }
}

/// The per-tier objects of the intermediate form.
pub fn objects(model: &AppModel, policy: &AppPolicy, owner: Option<&Owner>) -> Vec<Object> {
    let kind = if model.audit {
        ObjectKind::CalicoStagedNetworkPolicy
    } else {
        ObjectKind::CalicoNetworkPolicy
    };
    let owners = controller_refs(owner);
    policy
        .tiers
        .iter()
        .map(|t| {
            let mut ingress = Vec::new();
            for r in &t.ingress {
                for src in peer_entities(&r.peer) {
                    push_unique(&mut ingress, allow_ports(&src, &r.ports, true));
                }
            }
            let mut egress = Vec::new();
            if let Some(dns) = &t.dns {
                push_unique(&mut egress, dns_rules(dns.target));
            }
            for r in &t.egress {
                match &r.peer {
                    Endpoint::ApiServer(ApiServer::Named) => {
                        push_unique(&mut egress, [api_server_rule()]);
                    }
                    to => {
                        for dst in peer_entities(to) {
                            push_unique(&mut egress, allow_ports(&dst, &r.ports, false));
                        }
                    }
                }
            }
            let mut s = spec(kind, CALICO_TIER_ORDER, &types(true, true), ingress, egress);
            s.insert("selector".into(), json!(selector(t.selector)));
            object(
                kind,
                &calico_policy_name(&tier_policy_name(&model.name, t.name)),
                Some(&model.namespace),
                tier_labels(&model.name, t.name),
                &owners,
                s,
            )
        })
        .collect()
}

/// The egress allows of a baseline: DNS for every target, then the API server.
fn baseline_egress<'a>(
    dns: impl IntoIterator<Item = &'a DnsTarget>,
    kube_api_server: bool,
) -> Vec<Value> {
    let mut egress = Vec::new();
    for d in dns {
        push_unique(&mut egress, dns_rules(d));
    }
    if kube_api_server {
        push_unique(&mut egress, [api_server_rule()]);
    }
    egress
}

/// The namespace baseline as a Calico NetworkPolicy (StagedNetworkPolicy in audit mode) at
/// order [`CALICO_BASELINE_ORDER`], selecting every pod; `None` when nothing is denied.
///
/// It holds no `Deny` rule: a pod it selects is denied at the end of the tier unless some policy
/// allowed the traffic (see the module documentation), which composes with the per-tier allows
/// (and with Kubernetes NetworkPolicies) the way Kubernetes NetworkPolicies compose.
pub fn baseline(
    namespace: &str,
    b: &NamespaceBaseline,
    audit: bool,
    owners: &[Owner],
) -> Option<Object> {
    if b.is_empty() {
        return None;
    }
    let kind = if audit {
        ObjectKind::CalicoStagedNetworkPolicy
    } else {
        ObjectKind::CalicoNetworkPolicy
    };
    let egress = if b.deny_egress {
        baseline_egress(&b.dns, b.kube_api_server)
    } else {
        Vec::new()
    };
    let mut s = spec(
        kind,
        CALICO_BASELINE_ORDER,
        &types(b.deny_ingress, b.deny_egress),
        Vec::new(),
        egress,
    );
    s.insert("selector".into(), json!("all()"));
    Some(object(
        kind,
        BASELINE_NAME,
        Some(namespace),
        baseline_labels(),
        &shared_refs(owners),
        s,
    ))
}

/// A ClusterBaseline as ONE GlobalNetworkPolicy (StagedGlobalNetworkPolicy in audit mode):
/// every pod (`selector: all()`) of the covered namespaces (`namespaceSelector`, see
/// [`cluster_namespace_selector`]), denied per the wish with DNS and API server egress allowed;
/// `None` when the wish denies nothing.
pub fn cluster_baseline(
    name: &str,
    model: &ClusterBaselineModel,
    operator_namespace: &str,
    owner: Option<&Owner>,
) -> Option<Object> {
    let BaselineWish {
        deny_ingress,
        deny_egress,
        dns,
        kube_api_server,
    } = &model.wish;
    if !deny_ingress && !deny_egress {
        return None;
    }
    let kind = if model.audit {
        ObjectKind::CalicoStagedGlobalNetworkPolicy
    } else {
        ObjectKind::CalicoGlobalNetworkPolicy
    };
    let egress = if *deny_egress {
        baseline_egress(dns, *kube_api_server)
    } else {
        Vec::new()
    };
    let mut s = spec(
        kind,
        CALICO_BASELINE_ORDER,
        &types(*deny_ingress, *deny_egress),
        Vec::new(),
        egress,
    );
    s.insert("selector".into(), json!("all()"));
    s.insert(
        "namespaceSelector".into(),
        json!(cluster_namespace_selector(model, operator_namespace)),
    );
    Some(object(
        kind,
        &calico_policy_name(&cluster_baseline_name(name)),
        None,
        cluster_baseline_labels(name),
        &controller_refs(owner),
        s,
    ))
}

/// A ClusterBaseline's guardrails as ONE GlobalNetworkPolicy (staged in audit mode) over the
/// covered namespaces, ordered at the guardrails' priority, before every namespaced policy:
/// per rule, one Calico rule per peer and protocol, in order; Allow and Deny are both final.
/// `Err` for a rule in a direction the ClusterBaseline does not deny: the policy would select
/// the pods in that direction and Calico's end-of-tier deny would then deny what no rule
/// denied.
pub fn guardrails(
    name: &str,
    model: &ClusterBaselineModel,
    operator_namespace: &str,
    owner: Option<&Owner>,
) -> Result<Object, String> {
    if let Some(why) = direction_not_denied(model, "Calico") {
        return Err(why);
    }
    let Some(g) = &model.guardrails else {
        return Err("no guardrails".to_string());
    };
    let kind = if model.audit {
        ObjectKind::CalicoStagedGlobalNetworkPolicy
    } else {
        ObjectKind::CalicoGlobalNetworkPolicy
    };
    let (mut ingress, mut egress) = (Vec::new(), Vec::new());
    for r in &g.rules {
        let action = if r.allow { "Allow" } else { "Deny" };
        for p in &r.peers {
            let peer = match p {
                GuardrailPeer::Pods { namespaces, pods } => Endpoint::Pods {
                    namespaces,
                    pods: pods.as_ref(),
                },
                GuardrailPeer::Cidr(c) => Endpoint::Cidr {
                    cidr: *c,
                    except: Vec::new(),
                },
            };
            let Some(entity) = peer_entity(&peer) else {
                continue;
            };
            let out = if r.ingress { &mut ingress } else { &mut egress };
            for mut rule in allow_ports(&entity, &r.ports, r.ingress) {
                rule["action"] = json!(action);
                out.push(rule);
            }
        }
    }
    let mut s = spec(
        kind,
        f64::from(g.priority),
        &types(!ingress.is_empty(), !egress.is_empty()),
        ingress,
        egress,
    );
    s.insert("selector".into(), json!("all()"));
    s.insert(
        "namespaceSelector".into(),
        json!(cluster_namespace_selector(model, operator_namespace)),
    );
    Ok(object(
        kind,
        &guardrails_name(name),
        None,
        cluster_baseline_labels(name),
        &controller_refs(owner),
        s,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::MAX_NAME;
    use crate::core::Requirement;
    use crate::render::fixtures::{model_of, owner, L7_FQDN, THREE_TIER};
    use crate::render::LimitationKind;
    use crate::validate;
    use std::collections::BTreeSet;

    fn spec_of(o: &Object) -> &Value {
        &o.body()["spec"]
    }

    fn rules<'a>(o: &'a Object, dir: &str) -> &'a Vec<Value> {
        o.body()["spec"][dir].as_array().unwrap()
    }

    fn cluster_model(yaml: &str) -> ClusterBaselineModel {
        let spec: crate::crd::ClusterBaselineSpec = serde_yaml::from_str(yaml).unwrap();
        validate::cluster_baseline(&spec).unwrap()
    }

    #[test]
    fn three_tier_example_renders_one_network_policy_per_tier() {
        let r = tier_objects(&model_of(THREE_TIER), Some(&owner()));
        assert!(r.limitations.is_empty(), "{:?}", r.limitations);
        let names: Vec<_> = r.objects.iter().map(Object::name).collect();
        assert_eq!(
            names,
            [
                "tierflow-shop-frontend",
                "tierflow-shop-api",
                "tierflow-shop-database"
            ]
        );
        for (o, tier) in r.objects.iter().zip(["frontend", "api", "database"]) {
            assert_eq!(o.kind(), ObjectKind::CalicoNetworkPolicy);
            assert_eq!(o.body()["apiVersion"], "projectcalico.org/v3");
            assert_eq!(o.body()["kind"], "NetworkPolicy");
            assert_eq!(o.namespace(), Some("production"));
            assert_eq!(
                o.body()["metadata"]["labels"],
                serde_json::to_value(tier_labels("shop", tier)).unwrap()
            );
            assert_eq!(
                o.body()["metadata"]["ownerReferences"],
                json!([{"apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork", "name": "shop", "uid": "uid-1", "controller": true}])
            );
            let s = spec_of(o);
            assert_eq!(s["selector"], format!("app == '{tier}'"));
            assert_eq!(s["order"], json!(100));
            assert_eq!(s["tier"], "default");
            assert_eq!(s["types"], json!(["Ingress", "Egress"]));
            assert!(s.get("stagedAction").is_none());
        }
        // api: ingress from frontend and from monitoring/prometheus; egress DNS (2), database,
        // external CIDR.
        let api = &r.objects[1];
        assert_eq!(rules(api, "ingress").len(), 2);
        assert_eq!(rules(api, "egress").len(), 4);
        assert_eq!(
            rules(api, "egress")[3],
            json!({"action": "Allow", "protocol": "TCP", "source": {},
                   "destination": {"nets": ["203.0.113.0/24"], "ports": [443]}})
        );
    }

    #[test]
    fn cross_namespace_ingress_is_one_entity_rule_with_namespace_and_pods() {
        let r = tier_objects(&model_of(THREE_TIER), None);
        let api = &r.objects[1];
        assert_eq!(
            rules(api, "ingress")[0],
            json!({"action": "Allow", "protocol": "TCP",
                   "source": {"selector": "app == 'frontend'"},
                   "destination": {"ports": [8080]}})
        );
        assert_eq!(
            rules(api, "ingress")[1],
            json!({"action": "Allow", "protocol": "TCP",
                   "source": {"namespaceSelector": "kubernetes.io/metadata.name == 'monitoring'",
                              "selector": "app == 'prometheus'"},
                   "destination": {"ports": [9090]}})
        );
        assert!(api.body()["metadata"].get("ownerReferences").is_none());
    }

    #[test]
    fn cidr_with_except_renders_as_nets_and_not_nets() {
        let r = tier_objects(&model_of(THREE_TIER), None);
        let frontend = &r.objects[0];
        assert_eq!(
            rules(frontend, "ingress"),
            &vec![json!({"action": "Allow", "protocol": "TCP",
                         "source": {"nets": ["0.0.0.0/0"], "notNets": ["169.254.169.254/32"]},
                         "destination": {"ports": [80, 443]}})]
        );
    }

    #[test]
    fn intra_tier_flow_yields_ingress_and_egress_on_the_same_policy() {
        let r = tier_objects(&model_of(THREE_TIER), None);
        let db = &r.objects[2];
        let own = json!({"selector": "app == 'database'"});
        assert!(rules(db, "ingress").iter().any(|r| r["source"] == own));
        assert!(rules(db, "egress")
            .iter()
            .any(|r| r["destination"]["selector"] == own["selector"]));
    }

    #[test]
    fn rendering_is_byte_for_byte_deterministic() {
        let a = serde_json::to_string(
            &tier_objects(&model_of(THREE_TIER), Some(&owner())).objects[1].body(),
        )
        .unwrap();
        let b = serde_json::to_string(
            &tier_objects(&model_of(THREE_TIER), Some(&owner())).objects[1].body(),
        )
        .unwrap();
        assert_eq!(a, b);
        let m = model_of(THREE_TIER);
        let nb = NamespaceBaseline::merge([&m.baseline]);
        assert_eq!(
            serde_json::to_string(
                &baseline("production", &nb, false, &[owner()])
                    .unwrap()
                    .body()
            )
            .unwrap(),
            serde_json::to_string(
                &baseline("production", &nb, false, &[owner()])
                    .unwrap()
                    .body()
            )
            .unwrap()
        );
    }

    #[test]
    fn dns_egress_allows_udp_and_tcp_53_to_the_dns_pods_and_node_local_cache() {
        let mut m = model_of(THREE_TIER);
        let r = tier_objects(&m, None);
        let dns_pods = json!({"namespaceSelector": "kubernetes.io/metadata.name == 'kube-system'",
                              "selector": "k8s-app == 'kube-dns'", "ports": [53]});
        assert_eq!(
            rules(&r.objects[0], "egress")[..2],
            [
                json!({"action": "Allow", "protocol": "UDP", "source": {}, "destination": dns_pods}),
                json!({"action": "Allow", "protocol": "TCP", "source": {}, "destination": dns_pods}),
            ]
        );
        m.dns.as_mut().unwrap().node_local = Some("169.254.20.10".parse().unwrap());
        let r = tier_objects(&m, None);
        let egress = rules(&r.objects[0], "egress");
        assert_eq!(
            egress[2..4],
            [
                json!({"action": "Allow", "protocol": "UDP", "source": {},
                       "destination": {"nets": ["169.254.20.10/32"], "ports": [53]}}),
                json!({"action": "Allow", "protocol": "TCP", "source": {},
                       "destination": {"nets": ["169.254.20.10/32"], "ports": [53]}}),
            ]
        );
        m.dns = None;
        let r = tier_objects(&m, None);
        // Without DNS, the frontend only reaches the api; it stays egress-isolated.
        assert_eq!(rules(&r.objects[0], "egress").len(), 1);
        assert_eq!(
            spec_of(&r.objects[0])["types"],
            json!(["Ingress", "Egress"])
        );
    }

    #[test]
    fn ports_of_mixed_protocols_are_split_into_one_rule_per_protocol_in_spec_order() {
        let m = model_of(
            r#"
tiers:
  - {name: api, selector: {matchLabels: {app: api}}}
flows:
  - from: {namespace: edge}
    to: {tier: api}
    ports: [{port: 5000, protocol: UDP}, {port: 80}, {port: 5001, protocol: UDP}, {port: 9, protocol: SCTP}, {port: 443}]
"#,
        );
        let r = tier_objects(&m, None);
        let src = json!({"namespaceSelector": "kubernetes.io/metadata.name == 'edge'"});
        assert_eq!(
            rules(&r.objects[0], "ingress"),
            &vec![
                json!({"action": "Allow", "protocol": "UDP", "source": src, "destination": {"ports": [5000, 5001]}}),
                json!({"action": "Allow", "protocol": "TCP", "source": src, "destination": {"ports": [80, 443]}}),
                json!({"action": "Allow", "protocol": "SCTP", "source": src, "destination": {"ports": [9]}}),
            ]
        );
    }

    #[test]
    fn audit_mode_renders_staged_kinds_everywhere() {
        let mut m = model_of(THREE_TIER);
        m.audit = true;
        let r = tier_objects(&m, None);
        for o in &r.objects {
            assert_eq!(o.kind(), ObjectKind::CalicoStagedNetworkPolicy);
            assert_eq!(o.body()["kind"], "StagedNetworkPolicy");
            assert_eq!(o.body()["spec"]["stagedAction"], "Set");
        }
        let nb = NamespaceBaseline::merge([&m.baseline]);
        let b = baseline("production", &nb, true, &[]).unwrap();
        assert_eq!(b.kind(), ObjectKind::CalicoStagedNetworkPolicy);
        assert_eq!(b.body()["spec"]["stagedAction"], "Set");
        let mut cb = cluster_model("{}");
        cb.audit = true;
        let g = cluster_baseline("default", &cb, "tierflow-system", None).unwrap();
        assert_eq!(g.kind(), ObjectKind::CalicoStagedGlobalNetworkPolicy);
        assert_eq!(g.body()["kind"], "StagedGlobalNetworkPolicy");
        assert_eq!(g.body()["spec"]["stagedAction"], "Set");
    }

    #[test]
    fn selector_translation_covers_every_operator() {
        let s = Selector {
            match_labels: [
                ("app".to_string(), "api".to_string()),
                ("app.kubernetes.io/part-of".to_string(), "shop".to_string()),
            ]
            .into(),
            match_expressions: vec![
                Requirement {
                    key: "tier".into(),
                    op: SelectorOp::In,
                    values: ["b".to_string(), "a".to_string()].into(),
                },
                Requirement {
                    key: "env".into(),
                    op: SelectorOp::NotIn,
                    values: ["dev".to_string()].into(),
                },
                Requirement {
                    key: "team".into(),
                    op: SelectorOp::Exists,
                    values: BTreeSet::new(),
                },
                Requirement {
                    key: "legacy".into(),
                    op: SelectorOp::DoesNotExist,
                    values: BTreeSet::new(),
                },
            ],
        };
        assert_eq!(
            selector(&s),
            "app == 'api' && app.kubernetes.io/part-of == 'shop' && tier in {'a', 'b'} && env not in {'dev'} && has(team) && !has(legacy)"
        );
        assert_eq!(selector(&Selector::default()), "all()");
        assert_eq!(selector(&Selector::labels([("k", "")])), "k == ''");
    }

    #[test]
    fn not_in_translates_to_calico_not_in_which_like_kubernetes_also_matches_pods_without_the_key()
    {
        // Kubernetes: NotIn matches a pod that lacks the key.
        let s = Selector {
            match_labels: Default::default(),
            match_expressions: vec![Requirement {
                key: "env".into(),
                op: SelectorOp::NotIn,
                values: ["dev".to_string()].into(),
            }],
        };
        assert!(s.matches(&Default::default()));
        // Calico's `not in` is true for an absent label too (LabelNotInSetNode.Evaluate), so the
        // translation keeps the meaning and needs no extra `!has(env) ||`.
        assert_eq!(selector(&s), "env not in {'dev'}");
    }

    #[test]
    fn quotes_are_chosen_so_values_stay_literal() {
        assert_eq!(quote("prod"), "'prod'");
        assert_eq!(quote("it's"), "\"it's\"");
        assert_eq!(quote("a'b\"c"), "\"a'bc\"");
    }

    #[test]
    fn whole_orders_are_written_as_integers_as_the_api_server_returns_them() {
        assert_eq!(order(CALICO_TIER_ORDER), json!(100));
        assert_eq!(order(CALICO_BASELINE_ORDER), json!(10000));
        assert_eq!(order(12.5), json!(12.5));
    }

    #[test]
    fn fqdn_flow_is_left_out_with_a_note_and_http_rules_are_enforced_as_their_ports() {
        let r = tier_objects(&model_of(L7_FQDN), None);
        assert_eq!(r.limitations.len(), 2, "{:?}", r.limitations);
        let fqdn = &r.limitations[0];
        assert_eq!(
            (fqdn.flow, fqdn.kind, fqdn.kind.reason()),
            (
                Some(0),
                LimitationKind::FqdnUnsupported,
                "UnsupportedOnBackend"
            )
        );
        assert!(fqdn.kind.blocks_ready());
        assert!(
            fqdn.message
                .starts_with("spec.flows[0]: fqdn peer \"*.example.com\" needs Cilium"),
            "{}",
            fqdn.message
        );
        assert!(fqdn.message.ends_with("not rendered (fail closed)"));
        let l7 = &r.limitations[1];
        assert_eq!(
            (l7.flow, l7.kind, l7.kind.reason()),
            (Some(1), LimitationKind::L7Unsupported, "L7Unsupported")
        );
        assert!(!l7.kind.blocks_ready());
        assert!(l7.message.starts_with("spec.flows[1]: "));
        let api = &r.objects[1];
        // Nothing towards 443 anywhere: the fqdn flow is not opened to any address.
        assert!(!serde_json::to_string(&api.body()).unwrap().contains("443"));
        // The HTTP flow is its L4 rule, no `http` match.
        assert_eq!(
            rules(api, "ingress"),
            &vec![
                json!({"action": "Allow", "protocol": "TCP", "source": {"selector": "app == 'frontend'"},
                         "destination": {"ports": [8080]}})
            ]
        );
        // DNS (2) and the API server.
        let egress = rules(api, "egress");
        assert_eq!(egress.len(), 3);
        assert_eq!(
            egress[2],
            json!({"action": "Allow", "source": {},
                   "destination": {"services": {"name": "kubernetes", "namespace": "default"}}})
        );
    }

    #[test]
    fn api_server_egress_names_the_kubernetes_service_without_ports_even_when_the_flow_lists_some()
    {
        let m = model_of(
            "tiers:\n  - {name: api, selector: {matchLabels: {app: api}}}\nflows:\n  - {from: {tier: api}, to: {kubeAPIServer: true}, ports: [{port: 6443}]}\n",
        );
        let r = tier_objects(&m, None);
        let egress = rules(&r.objects[0], "egress");
        assert_eq!(egress[2], api_server_rule());
        assert!(egress[2]["destination"].get("ports").is_none());
        assert!(egress[2].get("protocol").is_none());
    }

    #[test]
    fn namespace_selector_all_namespaces_and_own_pods_peers_translate() {
        let m = model_of(
            r#"
tiers:
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
flows:
  - {from: {namespaceSelector: {matchLabels: {team: ops}}}, to: {tier: api}}
  - {from: {allNamespaces: true, selector: {matchLabels: {app: probe}}}, to: {tier: api}}
  - {from: {allNamespaces: true}, to: {tier: api}, ports: [{port: 9000}]}
"#,
        );
        let r = tier_objects(&m, None);
        let sources: Vec<&Value> = rules(&r.objects[0], "ingress")
            .iter()
            .map(|r| &r["source"])
            .collect();
        assert_eq!(
            sources,
            [
                &json!({"namespaceSelector": "team == 'ops'"}),
                &json!({"namespaceSelector": "all()", "selector": "app == 'probe'"}),
                &json!({"namespaceSelector": "all()"}),
                // implied: allNamespaces also holds the api tier itself (see validate)
                &json!({"selector": "app == 'api'"}),
            ]
        );
    }

    #[test]
    fn baseline_denies_per_the_merged_wishes_and_allows_dns_and_the_api_server() {
        let m = model_of(THREE_TIER);
        let mut nb = NamespaceBaseline::merge([&m.baseline]);
        nb.kube_api_server = true;
        let b = baseline("production", &nb, false, &[owner()]).unwrap();
        assert_eq!(b.kind(), ObjectKind::CalicoNetworkPolicy);
        assert_eq!(b.name(), "tierflow-baseline");
        assert_eq!(b.namespace(), Some("production"));
        assert_eq!(
            b.body()["metadata"]["labels"],
            serde_json::to_value(baseline_labels()).unwrap()
        );
        assert_eq!(
            b.body()["metadata"]["ownerReferences"][0]["controller"],
            false
        );
        let s = spec_of(&b);
        assert_eq!(s["selector"], "all()");
        assert_eq!(s["order"], json!(10000));
        assert_eq!(s["types"], json!(["Ingress", "Egress"]));
        assert!(s.get("ingress").is_none());
        let egress = s["egress"].as_array().unwrap();
        assert_eq!(egress.len(), 3);
        assert_eq!(egress[2], api_server_rule());
        // No explicit Deny: the end of the tier denies.
        assert!(!serde_json::to_string(s).unwrap().contains("Deny"));

        let ingress_only = NamespaceBaseline {
            deny_ingress: true,
            ..Default::default()
        };
        let b = baseline("production", &ingress_only, false, &[]).unwrap();
        assert_eq!(spec_of(&b)["types"], json!(["Ingress"]));
        assert!(spec_of(&b).get("egress").is_none());
        let egress_only = NamespaceBaseline {
            deny_egress: true,
            ..Default::default()
        };
        let b = baseline("production", &egress_only, false, &[]).unwrap();
        assert_eq!(spec_of(&b)["types"], json!(["Egress"]));
        assert!(spec_of(&b).get("egress").is_none());
    }

    #[test]
    fn nothing_denied_renders_no_baseline_and_no_cluster_baseline() {
        assert!(baseline("x", &NamespaceBaseline::default(), false, &[]).is_none());
        let cb = cluster_model("{denyIngress: false, denyEgress: false}");
        assert!(cluster_baseline("default", &cb, "tierflow-system", None).is_none());
    }

    #[test]
    fn cluster_baseline_selects_covered_namespaces_minus_exclusions_system_namespaces_and_opt_outs()
    {
        let mut cb = cluster_model(
            "{namespaceSelector: {matchLabels: {env: prod}}, excludeNamespaces: [legacy], includeSystemNamespaces: [kube-public]}",
        );
        cb.wish.kube_api_server = true;
        let g = cluster_baseline("default", &cb, "tierflow-system", Some(&owner())).unwrap();
        assert_eq!(g.kind(), ObjectKind::CalicoGlobalNetworkPolicy);
        assert_eq!(g.body()["kind"], "GlobalNetworkPolicy");
        assert_eq!(g.name(), "tierflow-baseline-default");
        assert_eq!(g.namespace(), None);
        assert!(g.body()["metadata"].get("namespace").is_none());
        assert_eq!(
            g.body()["metadata"]["labels"],
            serde_json::to_value(cluster_baseline_labels("default")).unwrap()
        );
        assert_eq!(
            g.body()["metadata"]["ownerReferences"][0]["controller"],
            true
        );
        let s = spec_of(&g);
        assert_eq!(s["selector"], "all()");
        assert_eq!(
            s["namespaceSelector"],
            "env == 'prod' && kubernetes.io/metadata.name not in {'kube-node-lease', 'kube-system', 'legacy', 'tierflow-system'} && tierflow.dev/baseline != 'disabled'"
        );
        assert_eq!(s["order"], json!(10000));
        assert_eq!(s["types"], json!(["Ingress", "Egress"]));
        let egress = s["egress"].as_array().unwrap();
        assert_eq!(egress.len(), 3);
        assert_eq!(
            egress[0]["destination"]["namespaceSelector"],
            "kubernetes.io/metadata.name == 'kube-system'"
        );
        assert_eq!(egress[2], api_server_rule());

        // Every namespace, every system namespace included: only the opt-out remains.
        let all = cluster_model("{includeSystemNamespaces: [kube-system, kube-public, kube-node-lease, tierflow-system], denyEgress: false}");
        let g = cluster_baseline("all", &all, "tierflow-system", None).unwrap();
        assert_eq!(
            spec_of(&g)["namespaceSelector"],
            "tierflow.dev/baseline != 'disabled'"
        );
        assert_eq!(spec_of(&g)["types"], json!(["Ingress"]));
        assert!(spec_of(&g).get("egress").is_none());
    }

    #[test]
    fn long_cluster_baseline_names_are_cut_to_a_valid_name() {
        let cb = cluster_model("{}");
        let g = cluster_baseline(&"x".repeat(300), &cb, "tierflow-system", None).unwrap();
        assert_eq!(g.name().len(), MAX_NAME);
        assert!(g.name().starts_with("tierflow-baseline-x"));
    }
}
