//! The Cilium backend: `cilium.io/v2` policies.
//!
//! Per tier one `CiliumNetworkPolicy`; per namespace one baseline `CiliumNetworkPolicy`; per
//! ClusterBaseline ONE `CiliumClusterwideNetworkPolicy`. Cilium enforces L7 (HTTP) rules and
//! FQDN peers itself, so nothing is left out here. There is no audit mode on Cilium (the
//! controller rejects it before rendering).
//!
//! Default deny. An endpoint enters default-deny for a direction when a policy selecting it has
//! a rule section for that direction: "An endpoint can be put into the default deny mode at
//! ingress or egress if a rule selects the endpoint and contains the respective rule section
//! ingress or egress"
//! (<https://docs.cilium.io/en/stable/security/policy/language/#ingress-egress-default-deny>,
//! <https://docs.cilium.io/en/stable/security/policy/intro/>). An EMPTY list (`ingress: []`) is
//! no section at all ("If omitted or empty, this rule does not apply at ingress"), while ONE
//! empty rule (`ingress: [{}]`) is a section that selects no peer, so it denies everything —
//! the opposite of Kubernetes, where `ingress: [{}]` allows all. Cilium itself translates a
//! Kubernetes deny-all NetworkPolicy into exactly `[]IngressRule{{}}` / `[]EgressRule{{}}`
//! (`pkg/k8s/network_policy.go`), so that is the form used here for a direction without allows.
//! `enableDefaultDeny`, which the CRD also offers, is not used: it only exists since Cilium 1.16
//! and, without a rule in that direction, did not enforce anything
//! (<https://github.com/cilium/cilium/issues/35558>); every rendered direction has a rule anyway.
//! No rule rendered here is a `toPorts`-only rule (which Cilium reads as "any peer").
//!
//! Labels in endpoint selectors carry the `k8s:` source prefix throughout (as Cilium's own
//! Kubernetes translation writes them): pod labels `k8s:<key>`, the namespace
//! `k8s:io.kubernetes.pod.namespace`, namespace labels `k8s:io.cilium.k8s.namespace.labels.<key>`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::common::{
    cluster_baseline_name, controller_refs, direction_not_denied, guardrails_name, object,
    push_unique, shared_refs, uncovered_namespaces,
};
use super::ir::{self, ApiServer, AppPolicy, Endpoint, Rule};
use super::{
    baseline_labels, cluster_baseline_labels, tier_labels, Env, Object, ObjectKind, Owner, Rendered,
};
use crate::core::names::{tier_policy_name, BASELINE_NAME};
use crate::core::port::DNS_PORTS;
use crate::core::{Cidr, Port, PortId, Selector};
use crate::model::{
    AppModel, Backend, ClusterBaselineModel, DnsTarget, GuardrailPeer, HttpRule, NamespaceBaseline,
    NamespaceMatch, OPT_OUT_LABEL, OPT_OUT_VALUE,
};

use crate::vocab::{
    CILIUM_K8S_NAMESPACE_LABELS_PREFIX as NAMESPACE_LABELS_PREFIX,
    CILIUM_K8S_POD_NAMESPACE_LABEL as POD_NAMESPACE_LABEL, CILIUM_K8S_PREFIX as K8S_PREFIX,
    CILIUM_KUBE_APISERVER_ENTITY as KUBE_APISERVER_ENTITY, CILIUM_WORLD_ENTITY as WORLD_ENTITY,
};
/// Cilium rejects a `toPorts` entry with more ports than this (`maxPorts` in
/// `pkg/policy/api`), so longer lists are split over several entries.
pub const MAX_PORTS_PER_RULE: usize = 40;

/// A Cilium endpoint selector being assembled: `matchLabels` and `matchExpressions`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct EndpointSelector {
    labels: BTreeMap<String, String>,
    expressions: Vec<Value>,
}

impl EndpointSelector {
    /// Adds every requirement of `s`, each key prefixed with `prefix`.
    fn add(&mut self, s: &Selector, prefix: &str) {
        for (k, v) in &s.match_labels {
            self.labels.insert(format!("{prefix}{k}"), v.clone());
        }
        for r in &s.match_expressions {
            self.require(
                &format!("{prefix}{}", r.key),
                r.op.as_str(),
                r.values.iter().cloned(),
            );
        }
    }

    /// Adds one `matchExpressions` requirement (no `values` when there are none).
    fn require(&mut self, key: &str, op: &str, values: impl IntoIterator<Item = String>) {
        let values: Vec<String> = values.into_iter().collect();
        let mut e = json!({"key": key, "operator": op});
        if !values.is_empty() {
            e["values"] = json!(values);
        }
        self.expressions.push(e);
    }

    fn value(&self) -> Value {
        let mut m = Map::new();
        if !self.labels.is_empty() {
            m.insert("matchLabels".into(), json!(self.labels));
        }
        if !self.expressions.is_empty() {
            m.insert(
                "matchExpressions".into(),
                Value::Array(self.expressions.clone()),
            );
        }
        Value::Object(m)
    }
}

/// A pod label selector as a Cilium endpoint selector (`k8s:`-prefixed keys; `{}` for the empty
/// selector, which in a namespaced policy means every pod of the policy's namespace).
pub fn endpoint_selector(s: &Selector) -> Value {
    pods(s).value()
}

fn pods(s: &Selector) -> EndpointSelector {
    let mut e = EndpointSelector::default();
    e.add(s, K8S_PREFIX);
    e
}

/// The endpoint selector of a pod peer: ONE selector, so the namespace AND pod conditions both
/// apply.
fn pod_peer(namespaces: &NamespaceMatch, selector: Option<&Selector>) -> Value {
    let mut e = selector.map(pods).unwrap_or_default();
    match namespaces {
        // Cilium scopes a namespaced policy's peer selectors without a namespace key to the
        // policy's namespace.
        NamespaceMatch::Own => {}
        NamespaceMatch::Named(ns) => {
            e.labels.insert(POD_NAMESPACE_LABEL.to_string(), ns.clone());
        }
        NamespaceMatch::Selector(s) => {
            e.add(s, NAMESPACE_LABELS_PREFIX);
            // Names the namespace key so that no Cilium version scopes the selector to the
            // policy's own namespace (older agents do unless the namespace label is present).
            e.require(POD_NAMESPACE_LABEL, "Exists", []);
        }
        NamespaceMatch::All => e.require(POD_NAMESPACE_LABEL, "Exists", []),
    }
    e.value()
}

fn cidr_set(cidr: &Cidr, except: &[Cidr]) -> Value {
    let mut c = json!({"cidr": cidr.to_string()});
    if !except.is_empty() {
        let list: Vec<String> = except.iter().map(ToString::to_string).collect();
        c["except"] = json!(list);
    }
    json!([c])
}

fn http_rule(h: &HttpRule) -> Value {
    let mut r = Map::new();
    if let Some(m) = &h.method {
        r.insert("method".into(), json!(m));
    }
    if let Some(p) = &h.path {
        r.insert("path".into(), json!(p));
    }
    Value::Object(r)
}

/// `toPorts`: the ports as strings with their protocol, at most [`MAX_PORTS_PER_RULE`] per
/// entry, each entry with the same L7 `rules` when given. `None` for no ports.
fn to_ports(ports: &[Port], rules: Option<&Value>) -> Option<Value> {
    if ports.is_empty() {
        return None;
    }
    let entries: Vec<Value> = ports
        .chunks(MAX_PORTS_PER_RULE)
        .map(|chunk| {
            let list: Vec<Value> = chunk.iter().map(port_value).collect();
            let mut entry = json!({ "ports": list });
            if let Some(r) = rules {
                entry["rules"] = r.clone();
            }
            entry
        })
        .collect();
    Some(Value::Array(entries))
}

/// One `toPorts[].ports[]` entry: `port` as a string (a number or a container port name, which
/// Cilium resolves on the destination pod) and, for a range, `endPort`.
fn port_value(p: &Port) -> Value {
    let mut v = json!({"port": p.value(), "protocol": p.protocol.as_str()});
    if let PortId::Range(a, b) = p.id {
        v["port"] = json!(a.to_string());
        v["endPort"] = json!(b);
    }
    v
}

/// `rules: {http: [...]}` for a flow with HTTP rules.
fn http_rules(http: &[HttpRule]) -> Option<Value> {
    (!http.is_empty()).then(|| {
        let list: Vec<Value> = http.iter().map(http_rule).collect();
        json!({ "http": list })
    })
}

fn rule(peer_field: &str, peer: Value, ports: Option<Value>) -> Value {
    let mut r = Map::new();
    r.insert(peer_field.into(), peer);
    if let Some(p) = ports {
        r.insert("toPorts".into(), p);
    }
    Value::Object(r)
}

/// The ingress rule of a resolved rule; `None` for peers that are destinations only.
fn ingress_rule(r: &Rule) -> Option<Value> {
    let to_ports = to_ports(&r.ports, http_rules(&r.http).as_ref());
    match &r.peer {
        Endpoint::Pods { namespaces, pods } => Some(rule(
            "fromEndpoints",
            json!([pod_peer(namespaces, *pods)]),
            to_ports,
        )),
        Endpoint::Cidr { cidr, except } => {
            Some(rule("fromCIDRSet", cidr_set(cidr, except), to_ports))
        }
        Endpoint::World { .. } => Some(rule("fromEntities", json!([WORLD_ENTITY]), to_ports)),
        Endpoint::Fqdn(_) | Endpoint::ApiServer(_) => None,
    }
}

/// `*.example.com` as a pattern, `api.example.com` as an exact name.
fn fqdn_selector(name: &str) -> Value {
    if name.contains('*') {
        json!({ "matchPattern": name })
    } else {
        json!({ "matchName": name })
    }
}

/// The egress rule of a resolved rule.
fn egress_rule(r: &Rule) -> Option<Value> {
    let to_ports = to_ports(&r.ports, http_rules(&r.http).as_ref());
    match &r.peer {
        Endpoint::Pods { namespaces, pods } => Some(rule(
            "toEndpoints",
            json!([pod_peer(namespaces, *pods)]),
            to_ports,
        )),
        Endpoint::Cidr { cidr, except } => {
            Some(rule("toCIDRSet", cidr_set(cidr, except), to_ports))
        }
        Endpoint::World { .. } => Some(rule("toEntities", json!([WORLD_ENTITY]), to_ports)),
        Endpoint::Fqdn(name) => Some(rule("toFQDNs", json!([fqdn_selector(name)]), to_ports)),
        // No ports: any port of the API server entity (it has only its own).
        Endpoint::ApiServer(ApiServer::Named) => {
            Some(rule("toEntities", json!([KUBE_APISERVER_ENTITY]), to_ports))
        }
        Endpoint::ApiServer(ApiServer::Hosts(hosts)) => {
            let set: Vec<Value> = hosts
                .iter()
                .map(|h| json!({"cidr": h.to_string()}))
                .collect();
            (!set.is_empty()).then(|| rule("toCIDRSet", Value::Array(set), to_ports))
        }
    }
}

/// Egress to DNS: the DNS pods (namespace AND pods in one selector) on UDP and TCP 53, then the
/// NodeLocal DNSCache address when set. With `proxy`, the port entries carry
/// `rules: {dns: [{matchPattern: "*"}]}` so that lookups go through Cilium's DNS proxy, which is
/// how `toFQDNs` learns addresses (<https://docs.cilium.io/en/stable/security/policy/language/#dns-based>).
fn dns_rules(dns: &DnsTarget, proxy: bool) -> Vec<Value> {
    let l7 = proxy.then(|| json!({"dns": [{"matchPattern": "*"}]}));
    let mut sel = pods(&dns.pods);
    sel.labels
        .insert(POD_NAMESPACE_LABEL.to_string(), dns.namespace.clone());
    let mut rules = vec![rule(
        "toEndpoints",
        json!([sel.value()]),
        to_ports(&DNS_PORTS, l7.as_ref()),
    )];
    if dns.node_local.is_some() {
        // NodeLocal DNSCache on Cilium: Cilium documents it as pods (not on the host network)
        // that a CiliumLocalRedirectPolicy puts behind the kube-dns service or the cache's
        // address (<https://docs.cilium.io/en/stable/network/kubernetes/local-redirect-policy/#node-local-dns-cache>;
        // cilium/cilium `examples/kubernetes-local-redirect/node-local-dns.yaml` and
        // `node-local-dns-lrp.yaml` at 38ad0ab17b14: label `k8s-app: node-local-dns`). The
        // redirect happens at the socket, so policy sees those pods. A `toCIDRSet` for the
        // address could allow nothing: the address is local to the node, whose traffic Cilium
        // gives the `host` / `remote-node` identity, which CIDR rules never select.
        let mut sel = pods(&crate::vocab::node_local_dns_pods());
        sel.labels
            .insert(POD_NAMESPACE_LABEL.to_string(), dns.namespace.clone());
        rules.push(rule(
            "toEndpoints",
            json!([sel.value()]),
            to_ports(&DNS_PORTS, l7.as_ref()),
        ));
    }
    rules
}

/// A direction's rules; one empty rule (deny all) when there is nothing to allow.
fn or_deny_all(rules: Vec<Value>) -> Value {
    if rules.is_empty() {
        json!([{}])
    } else {
        Value::Array(rules)
    }
}

/// Per-tier CiliumNetworkPolicies: the tier's pods, isolated both ways (an empty rule where a
/// direction allows nothing), the declared flows with their L7 rules, FQDN and API server
/// peers, and DNS (through the DNS proxy when any flow has an FQDN peer). The same as
/// [`super::tier_objects`] on this backend.
pub fn tier_objects(model: &AppModel, owner: Option<&Owner>) -> Rendered {
    let policy = ir::build(model, Backend::Cilium, &Env::default());
    Rendered {
        objects: objects(model, &policy, owner),
        limitations: policy.limitations,
    }
}

/// The per-tier objects of the intermediate form.
pub fn objects(model: &AppModel, policy: &AppPolicy, owner: Option<&Owner>) -> Vec<Object> {
    let owners = controller_refs(owner);
    policy
        .tiers
        .iter()
        .map(|t| {
            let mut ingress = Vec::new();
            for r in &t.ingress {
                push_unique(&mut ingress, ingress_rule(r));
            }
            let mut egress = Vec::new();
            if let Some(dns) = &t.dns {
                push_unique(&mut egress, dns_rules(dns.target, dns.inspect));
            }
            for r in &t.egress {
                push_unique(&mut egress, egress_rule(r));
            }
            let mut spec = Map::new();
            spec.insert("endpointSelector".into(), endpoint_selector(t.selector));
            spec.insert("ingress".into(), or_deny_all(ingress));
            spec.insert("egress".into(), or_deny_all(egress));
            object(
                ObjectKind::CiliumNetworkPolicy,
                &tier_policy_name(&model.name, t.name),
                Some(&model.namespace),
                tier_labels(&model.name, t.name),
                &owners,
                spec,
            )
        })
        .collect()
}

/// The rule sections of a baseline: `ingress: [{}]` when ingress is denied; when egress is
/// denied, DNS for every target and the API server entity, or `[{}]` when nothing is allowed.
fn baseline_rules<'a>(
    deny_ingress: bool,
    deny_egress: bool,
    dns: impl IntoIterator<Item = &'a DnsTarget>,
    kube_api_server: bool,
) -> Map<String, Value> {
    let mut spec = Map::new();
    if deny_ingress {
        spec.insert("ingress".into(), or_deny_all(Vec::new()));
    }
    if deny_egress {
        let mut egress = Vec::new();
        for d in dns {
            push_unique(&mut egress, dns_rules(d, false));
        }
        if kube_api_server {
            push_unique(
                &mut egress,
                [rule("toEntities", json!([KUBE_APISERVER_ENTITY]), None)],
            );
        }
        spec.insert("egress".into(), or_deny_all(egress));
    }
    spec
}

/// The namespace baseline as a CiliumNetworkPolicy selecting every pod of the namespace
/// (`endpointSelector: {}`), denying per the merged wishes; `None` when nothing is denied.
pub fn baseline(namespace: &str, b: &NamespaceBaseline, owners: &[Owner]) -> Option<Object> {
    if b.is_empty() {
        return None;
    }
    let mut spec = baseline_rules(b.deny_ingress, b.deny_egress, &b.dns, b.kube_api_server);
    spec.insert("endpointSelector".into(), json!({}));
    Some(object(
        ObjectKind::CiliumNetworkPolicy,
        BASELINE_NAME,
        Some(namespace),
        baseline_labels(),
        &shared_refs(owners),
        spec,
    ))
}

/// The endpoint selector of a ClusterBaseline: pods (a namespace label exists, which leaves out
/// Cilium's own non-pod endpoints such as the health endpoint) whose namespace labels match the
/// ClusterBaseline's selector, whose namespace is not uncovered (excluded, or a system
/// namespace not included), and which did not opt out (`NotIn` also matches namespaces without
/// the opt-out label).
pub fn cluster_endpoint_selector(model: &ClusterBaselineModel, operator_namespace: &str) -> Value {
    let mut e = EndpointSelector::default();
    e.add(&model.selector, NAMESPACE_LABELS_PREFIX);
    e.require(POD_NAMESPACE_LABEL, "Exists", []);
    let uncovered: BTreeSet<String> = uncovered_namespaces(model, operator_namespace);
    if !uncovered.is_empty() {
        e.require(POD_NAMESPACE_LABEL, "NotIn", uncovered);
    }
    e.require(
        &format!("{NAMESPACE_LABELS_PREFIX}{OPT_OUT_LABEL}"),
        "NotIn",
        [OPT_OUT_VALUE.to_string()],
    );
    e.value()
}

/// A ClusterBaseline as ONE CiliumClusterwideNetworkPolicy over the covered namespaces (see
/// [`cluster_endpoint_selector`]), denying per the wish with DNS and API server egress allowed;
/// `None` when the wish denies nothing. (`model.audit` does not exist on Cilium.)
pub fn cluster_baseline(
    name: &str,
    model: &ClusterBaselineModel,
    operator_namespace: &str,
    owner: Option<&Owner>,
) -> Option<Object> {
    let w = &model.wish;
    if !w.deny_ingress && !w.deny_egress {
        return None;
    }
    let mut spec = baseline_rules(w.deny_ingress, w.deny_egress, &w.dns, w.kube_api_server);
    spec.insert(
        "endpointSelector".into(),
        cluster_endpoint_selector(model, operator_namespace),
    );
    Some(object(
        ObjectKind::CiliumClusterwideNetworkPolicy,
        &cluster_baseline_name(name),
        None,
        cluster_baseline_labels(name),
        &controller_refs(owner),
        spec,
    ))
}

/// A ClusterBaseline's guardrails as ONE CiliumClusterwideNetworkPolicy of deny rules
/// (`ingressDeny` / `egressDeny`, which win over every allow) over the covered namespaces.
/// `Err` for an Allow rule (Cilium allows are a union: they cannot override a namespace's deny
/// rules) and for a rule in a direction the ClusterBaseline does not deny (a deny section puts
/// the pods in default deny for that direction). A CIDR peer matches addresses outside the
/// pods only, as every Cilium CIDR rule.
pub fn guardrails(
    name: &str,
    model: &ClusterBaselineModel,
    operator_namespace: &str,
    owner: Option<&Owner>,
) -> Result<Object, String> {
    let Some(g) = &model.guardrails else {
        return Err("no guardrails".to_string());
    };
    if let Some(r) = g.rules.iter().find(|r| r.allow) {
        return Err(format!(
            "guardrail {:?} is an Allow rule: Cilium cannot express an allow that overrides a \
             namespace's deny (allows are a union and deny rules win); use Calico or \
             ClusterNetworkPolicy, or drop the rule",
            r.name
        ));
    }
    if let Some(why) = direction_not_denied(model, "Cilium") {
        return Err(why);
    }
    let (mut ingress, mut egress) = (Vec::new(), Vec::new());
    for r in &g.rules {
        let ports = to_ports(&r.ports, None);
        for p in &r.peers {
            let (field, peer) = match (p, r.ingress) {
                (GuardrailPeer::Pods { namespaces, pods }, true) => (
                    "fromEndpoints",
                    json!([pod_peer(namespaces, pods.as_ref())]),
                ),
                (GuardrailPeer::Pods { namespaces, pods }, false) => {
                    ("toEndpoints", json!([pod_peer(namespaces, pods.as_ref())]))
                }
                (GuardrailPeer::Cidr(c), true) => ("fromCIDRSet", cidr_set(c, &[])),
                (GuardrailPeer::Cidr(c), false) => ("toCIDRSet", cidr_set(c, &[])),
            };
            let out = if r.ingress { &mut ingress } else { &mut egress };
            out.push(rule(field, peer, ports.clone()));
        }
    }
    let mut spec = Map::new();
    spec.insert(
        "endpointSelector".into(),
        cluster_endpoint_selector(model, operator_namespace),
    );
    if !ingress.is_empty() {
        spec.insert("ingressDeny".into(), Value::Array(ingress));
    }
    if !egress.is_empty() {
        spec.insert("egressDeny".into(), Value::Array(egress));
    }
    Ok(object(
        ObjectKind::CiliumClusterwideNetworkPolicy,
        &guardrails_name(name),
        None,
        cluster_baseline_labels(name),
        &controller_refs(owner),
        spec,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Requirement, SelectorOp};
    use crate::render::fixtures::{model_of, owner, L7_FQDN, THREE_TIER};
    use crate::render::LimitationKind;
    use crate::validate;

    fn rules<'a>(o: &'a Object, dir: &str) -> &'a Vec<Value> {
        o.body()["spec"][dir].as_array().unwrap()
    }

    fn cluster_model(yaml: &str) -> ClusterBaselineModel {
        let spec: crate::crd::ClusterBaselineSpec = serde_yaml::from_str(yaml).unwrap();
        validate::cluster_baseline(&spec).unwrap()
    }

    fn dns_rule(proxy: bool) -> Value {
        let mut ports = json!({"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]});
        if proxy {
            ports["rules"] = json!({"dns": [{"matchPattern": "*"}]});
        }
        json!({
            "toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}],
            "toPorts": [ports],
        })
    }

    #[test]
    fn three_tier_example_renders_one_cilium_network_policy_per_tier() {
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
            assert_eq!(o.kind(), ObjectKind::CiliumNetworkPolicy);
            assert_eq!(o.body()["apiVersion"], "cilium.io/v2");
            assert_eq!(o.body()["kind"], "CiliumNetworkPolicy");
            assert_eq!(o.namespace(), Some("production"));
            assert_eq!(
                o.body()["metadata"]["labels"],
                serde_json::to_value(tier_labels("shop", tier)).unwrap()
            );
            assert_eq!(
                o.body()["metadata"]["ownerReferences"],
                json!([{"apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork", "name": "shop", "uid": "uid-1", "controller": true}])
            );
            assert_eq!(
                o.body()["spec"]["endpointSelector"],
                json!({"matchLabels": {"k8s:app": tier}})
            );
            // DNS first, without the proxy (no fqdn flow).
            assert_eq!(rules(o, "egress")[0], dns_rule(false));
        }
        let api = &r.objects[1];
        assert_eq!(rules(api, "ingress").len(), 2);
        assert_eq!(
            rules(api, "ingress")[0],
            json!({"fromEndpoints": [{"matchLabels": {"k8s:app": "frontend"}}],
                   "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]})
        );
        assert_eq!(
            rules(api, "egress")[1..],
            [
                json!({"toEndpoints": [{"matchLabels": {"k8s:app": "database"}}],
                       "toPorts": [{"ports": [{"port": "5432", "protocol": "TCP"}]}]}),
                json!({"toCIDRSet": [{"cidr": "203.0.113.0/24"}],
                       "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}),
            ]
        );
    }

    #[test]
    fn cross_namespace_ingress_is_one_endpoint_selector_with_namespace_and_pods() {
        let r = tier_objects(&model_of(THREE_TIER), None);
        assert_eq!(
            rules(&r.objects[1], "ingress")[1],
            json!({"fromEndpoints": [{"matchLabels": {
                        "k8s:io.kubernetes.pod.namespace": "monitoring", "k8s:app": "prometheus"}}],
                   "toPorts": [{"ports": [{"port": "9090", "protocol": "TCP"}]}]})
        );
        assert!(r.objects[1].body()["metadata"]
            .get("ownerReferences")
            .is_none());
    }

    #[test]
    fn cidr_with_except_renders_as_a_cidr_set() {
        let r = tier_objects(&model_of(THREE_TIER), None);
        assert_eq!(
            rules(&r.objects[0], "ingress"),
            &vec![
                json!({"fromCIDRSet": [{"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}],
                         "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}, {"port": "443", "protocol": "TCP"}]}]})
            ]
        );
    }

    #[test]
    fn rendering_is_byte_for_byte_deterministic() {
        let render = || {
            serde_json::to_string(
                &tier_objects(&model_of(L7_FQDN), Some(&owner()))
                    .objects
                    .iter()
                    .map(|o| o.to_value())
                    .collect::<Vec<_>>(),
            )
            .unwrap()
        };
        assert_eq!(render(), render());
        let cb = cluster_model(
            "{excludeNamespaces: [b, a], namespaceSelector: {matchLabels: {env: prod}}}",
        );
        let cluster = || {
            serde_json::to_string(
                &cluster_baseline("default", &cb, "tierflow-system", None)
                    .unwrap()
                    .body(),
            )
            .unwrap()
        };
        assert_eq!(cluster(), cluster());
    }

    #[test]
    fn dns_egress_allows_udp_and_tcp_53_to_the_dns_pods_and_node_local_cache() {
        let mut m = model_of(THREE_TIER);
        m.dns.as_mut().unwrap().node_local = Some("169.254.20.10".parse().unwrap());
        let r = tier_objects(&m, None);
        let egress = rules(&r.objects[0], "egress");
        assert_eq!(egress[0], dns_rule(false));
        // Not a toCIDRSet: the cache's pods, as Cilium's local redirect policy runs them.
        assert_eq!(
            egress[1],
            json!({"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "node-local-dns"}}],
                   "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]}]})
        );
        // The same for an IPv6 cache address.
        m.dns.as_mut().unwrap().node_local = Some("fd00::a".parse().unwrap());
        let r6 = tier_objects(&m, None);
        assert_eq!(rules(&r6.objects[0], "egress")[1], egress[1]);
    }

    #[test]
    fn a_world_peer_is_the_world_entity_in_both_directions() {
        let m = model_of(
            "tiers:\n  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 443}]}\nflows:\n  - {from: {world: true}, to: {tier: web}}\n  - {from: {tier: web}, to: {world: true}, ports: [{port: 443}]}\n",
        );
        let r = tier_objects(&m, None);
        let ingress = rules(&r.objects[0], "ingress");
        assert_eq!(ingress[0]["fromEntities"], json!(["world"]));
        let egress = rules(&r.objects[0], "egress");
        assert_eq!(egress[1]["toEntities"], json!(["world"]));
        assert_eq!(
            egress[1]["toPorts"][0]["ports"],
            json!([{"port": "443", "protocol": "TCP"}])
        );
    }

    #[test]
    fn a_tier_without_flows_in_or_out_is_isolated_with_one_empty_rule_per_direction() {
        let mut m = model_of("tiers:\n  - {name: batch, selector: {matchLabels: {app: batch}}}\n");
        let r = tier_objects(&m, None);
        // Nothing flows in: `[{}]` (deny all), never `[]` (which would leave ingress open).
        assert_eq!(r.objects[0].body()["spec"]["ingress"], json!([{}]));
        assert_eq!(
            r.objects[0].body()["spec"]["egress"],
            json!([dns_rule(false)])
        );
        m.dns = None;
        let r = tier_objects(&m, None);
        assert_eq!(r.objects[0].body()["spec"]["egress"], json!([{}]));
    }

    #[test]
    fn fqdn_http_and_api_server_flows_render_as_cilium_l7_fqdn_and_entity_rules() {
        let r = tier_objects(&model_of(L7_FQDN), None);
        assert!(r.limitations.is_empty(), "{:?}", r.limitations);
        let (frontend, api) = (&r.objects[0], &r.objects[1]);
        // Every tier's DNS goes through the DNS proxy since a flow of the model has an fqdn peer.
        assert_eq!(rules(frontend, "egress")[0], dns_rule(true));
        assert_eq!(rules(api, "egress")[0], dns_rule(true));
        assert_eq!(
            rules(api, "egress")[1..],
            [
                json!({"toFQDNs": [{"matchPattern": "*.example.com"}],
                       "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}),
                json!({"toEntities": ["kube-apiserver"]}),
            ]
        );
        let http = json!({"http": [{"method": "GET", "path": "/api/.*"}]});
        assert_eq!(
            rules(api, "ingress"),
            &vec![
                json!({"fromEndpoints": [{"matchLabels": {"k8s:app": "frontend"}}],
                         "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}], "rules": http}]})
            ]
        );
        assert_eq!(
            rules(frontend, "egress")[1],
            json!({"toEndpoints": [{"matchLabels": {"k8s:app": "api"}}],
                   "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}], "rules": http}]})
        );
    }

    #[test]
    fn exact_fqdns_are_match_names_and_api_server_ports_are_kept_when_listed() {
        let r = tier_objects(
            &model_of(
                "tiers:\n  - {name: api, selector: {matchLabels: {app: api}}}\nflows:\n  - {from: {tier: api}, to: {fqdn: api.example.com}, ports: [{port: 443}]}\n  - {from: {tier: api}, to: {kubeAPIServer: true}, ports: [{port: 6443}]}\n",
            ),
            None,
        );
        let egress = rules(&r.objects[0], "egress");
        assert_eq!(
            egress[1]["toFQDNs"],
            json!([{"matchName": "api.example.com"}])
        );
        assert_eq!(
            egress[2],
            json!({"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "6443", "protocol": "TCP"}]}]})
        );
    }

    #[test]
    fn fqdn_without_dns_egress_is_reported_as_not_working() {
        let mut m = model_of(L7_FQDN);
        m.dns = None;
        let r = tier_objects(&m, None);
        assert_eq!(r.limitations.len(), 1);
        let l = &r.limitations[0];
        assert_eq!(
            (l.flow, l.kind, l.kind.reason()),
            (Some(0), LimitationKind::FqdnNeedsDns, "FqdnNeedsDns")
        );
        assert!(l.kind.blocks_ready());
        assert!(l.message.starts_with("spec.flows[0]: "));
    }

    #[test]
    fn namespace_selector_all_namespaces_and_own_pods_peers_translate() {
        let m = model_of(
            r#"
tiers:
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
flows:
  - from: {namespaceSelector: {matchLabels: {team: ops}, matchExpressions: [{key: env, operator: NotIn, values: [dev]}]}, selector: {matchLabels: {app: agent}}}
    to: {tier: api}
  - {from: {allNamespaces: true, selector: {matchLabels: {app: probe}}}, to: {tier: api}}
  - {from: {allNamespaces: true}, to: {tier: api}, ports: [{port: 9000}]}
"#,
        );
        let r = tier_objects(&m, None);
        let from: Vec<&Value> = rules(&r.objects[0], "ingress")
            .iter()
            .map(|r| &r["fromEndpoints"][0])
            .collect();
        let ns_exists = json!({"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"});
        assert_eq!(
            from,
            [
                &json!({"matchLabels": {"k8s:app": "agent", "k8s:io.cilium.k8s.namespace.labels.team": "ops"},
                        "matchExpressions": [
                            {"key": "k8s:io.cilium.k8s.namespace.labels.env", "operator": "NotIn", "values": ["dev"]},
                            ns_exists]}),
                &json!({"matchLabels": {"k8s:app": "probe"}, "matchExpressions": [ns_exists]}),
                &json!({"matchExpressions": [ns_exists]}),
                // implied: allNamespaces also holds the api tier itself (see validate)
                &json!({"matchLabels": {"k8s:app": "api"}}),
            ]
        );
    }

    #[test]
    fn endpoint_selectors_translate_every_operator_with_the_k8s_prefix() {
        let s = Selector {
            match_labels: [("app".to_string(), "api".to_string())].into(),
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
            endpoint_selector(&s),
            json!({"matchLabels": {"k8s:app": "api"}, "matchExpressions": [
                {"key": "k8s:tier", "operator": "In", "values": ["a", "b"]},
                {"key": "k8s:env", "operator": "NotIn", "values": ["dev"]},
                {"key": "k8s:team", "operator": "Exists"},
                {"key": "k8s:legacy", "operator": "DoesNotExist"},
            ]})
        );
        assert_eq!(endpoint_selector(&Selector::default()), json!({}));
    }

    #[test]
    fn more_than_forty_ports_are_split_over_several_port_entries() {
        let ports: Vec<Port> = (1..=45).map(Port::tcp).collect();
        let v = to_ports(&ports, None).unwrap();
        let entries = v.as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["ports"].as_array().unwrap().len(), 40);
        assert_eq!(entries[1]["ports"][4]["port"], "45");
        assert!(to_ports(&[], None).is_none());
    }

    #[test]
    fn baseline_denies_per_the_merged_wishes_with_empty_rules_and_dns() {
        let m = model_of(THREE_TIER);
        let nb = NamespaceBaseline::merge([&m.baseline]);
        let b = baseline("production", &nb, &[owner()]).unwrap();
        assert_eq!(b.kind(), ObjectKind::CiliumNetworkPolicy);
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
        assert_eq!(
            b.body()["spec"],
            json!({"endpointSelector": {}, "ingress": [{}], "egress": [dns_rule(false)]})
        );

        let mut api = nb.clone();
        api.kube_api_server = true;
        let b = baseline("production", &api, &[]).unwrap();
        assert_eq!(
            b.body()["spec"]["egress"][1],
            json!({"toEntities": ["kube-apiserver"]})
        );

        let egress_only = NamespaceBaseline {
            deny_egress: true,
            ..Default::default()
        };
        let b = baseline("production", &egress_only, &[]).unwrap();
        assert_eq!(
            b.body()["spec"],
            json!({"endpointSelector": {}, "egress": [{}]})
        );
        let ingress_only = NamespaceBaseline {
            deny_ingress: true,
            ..Default::default()
        };
        let b = baseline("production", &ingress_only, &[]).unwrap();
        assert_eq!(
            b.body()["spec"],
            json!({"endpointSelector": {}, "ingress": [{}]})
        );
    }

    #[test]
    fn nothing_denied_renders_no_baseline_and_no_cluster_baseline() {
        assert!(baseline("x", &NamespaceBaseline::default(), &[]).is_none());
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
        let c = cluster_baseline("default", &cb, "tierflow-system", Some(&owner())).unwrap();
        assert_eq!(c.kind(), ObjectKind::CiliumClusterwideNetworkPolicy);
        assert_eq!(c.body()["kind"], "CiliumClusterwideNetworkPolicy");
        assert_eq!(c.name(), "tierflow-baseline-default");
        assert_eq!(c.namespace(), None);
        assert_eq!(
            c.body()["metadata"]["labels"],
            serde_json::to_value(cluster_baseline_labels("default")).unwrap()
        );
        assert_eq!(
            c.body()["metadata"]["ownerReferences"][0]["controller"],
            true
        );
        assert_eq!(
            c.body()["spec"]["endpointSelector"],
            json!({
                "matchLabels": {"k8s:io.cilium.k8s.namespace.labels.env": "prod"},
                "matchExpressions": [
                    {"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"},
                    {"key": "k8s:io.kubernetes.pod.namespace", "operator": "NotIn",
                     "values": ["kube-node-lease", "kube-system", "legacy", "tierflow-system"]},
                    {"key": "k8s:io.cilium.k8s.namespace.labels.tierflow.dev/baseline", "operator": "NotIn", "values": ["disabled"]},
                ]
            })
        );
        assert_eq!(c.body()["spec"]["ingress"], json!([{}]));
        assert_eq!(
            c.body()["spec"]["egress"],
            json!([dns_rule(false), {"toEntities": ["kube-apiserver"]}])
        );

        let all = cluster_model("{includeSystemNamespaces: [kube-system, kube-public, kube-node-lease, tierflow-system], denyIngress: false}");
        let c = cluster_baseline("all", &all, "tierflow-system", None).unwrap();
        assert_eq!(
            c.body()["spec"]["endpointSelector"]["matchExpressions"],
            json!([
                {"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"},
                {"key": "k8s:io.cilium.k8s.namespace.labels.tierflow.dev/baseline", "operator": "NotIn", "values": ["disabled"]},
            ])
        );
        assert!(c.body()["spec"].get("ingress").is_none());
        assert_eq!(c.body()["spec"]["egress"], json!([dns_rule(false)]));
    }
}
