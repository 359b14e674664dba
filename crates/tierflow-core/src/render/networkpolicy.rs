//! The standard backend: `networking.k8s.io/v1` NetworkPolicy, which every enforcing CNI honours.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::common::{push_unique, shared_refs, typed_object};
use super::ir::{self, ApiServer, AppPolicy, Endpoint, Rule, TierPolicy};
use super::{baseline_labels, tier_labels, Env, Object, ObjectKind, Owner, Rendered};
use crate::core::names::{tier_policy_name, BASELINE_NAME};
use crate::core::port::DNS_PORTS;
use crate::core::{Cidr, Port, PortId, Selector};
use crate::model::{AppModel, Backend, DnsTarget, NamespaceBaseline, NamespaceMatch};
use crate::validate::label_selector;

fn object(p: &NetworkPolicy) -> Object {
    typed_object(ObjectKind::NetworkPolicy, p)
}

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
    policies(model, policy, owner).iter().map(object).collect()
}

/// The namespace baseline as a rendered object.
pub fn baseline_object(
    namespace: &str,
    b: &NamespaceBaseline,
    owners: &[Owner],
    env: &Env,
) -> Option<Object> {
    baseline_with(namespace, b, owners, env)
        .as_ref()
        .map(object)
}

pub use crate::core::names::NAMESPACE_NAME_LABEL;

/// One NetworkPolicy per tier: selects the tier, isolates it both ways, allows the declared
/// flows in and out, and DNS. (Without cluster facts: API server flows are left out.)
pub fn tier_policies(model: &AppModel, owner: Option<&Owner>) -> Vec<NetworkPolicy> {
    let policy = ir::build(model, Backend::NetworkPolicy, &Env::default());
    policies(model, &policy, owner)
}

fn policies(model: &AppModel, policy: &AppPolicy, owner: Option<&Owner>) -> Vec<NetworkPolicy> {
    policy
        .tiers
        .iter()
        .map(|t| tier_policy(model, t, owner))
        .collect()
}

fn tier_policy(model: &AppModel, t: &TierPolicy, owner: Option<&Owner>) -> NetworkPolicy {
    let mut ingress: Vec<NetworkPolicyIngressRule> = Vec::new();
    for r in &t.ingress {
        if let Some(from) = peers(&r.peer) {
            push_unique(
                &mut ingress,
                [NetworkPolicyIngressRule {
                    from: Some(from),
                    ports: Some(ports(&r.ports)),
                }],
            );
        }
    }
    let mut egress: Vec<NetworkPolicyEgressRule> = Vec::new();
    if let Some(dns) = &t.dns {
        egress.push(dns_rule(&dns.target));
    }
    for r in &t.egress {
        push_unique(&mut egress, egress_rule(r));
    }
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(tier_policy_name(&model.name, &t.name)),
            namespace: Some(model.namespace.clone()),
            labels: Some(tier_labels(&model.name, &t.name)),
            owner_references: owner.map(|o| vec![o.reference(true)]),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(label_selector(&t.selector)),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            ingress: (!ingress.is_empty()).then_some(ingress),
            egress: (!egress.is_empty()).then_some(egress),
        }),
    }
}

/// The namespace baseline `tierflow-baseline`: selects every pod, denies per the merged wishes
/// and, when egress is denied, allows DNS. `None` when nothing is denied.
pub fn baseline(namespace: &str, b: &NamespaceBaseline, owners: &[Owner]) -> Option<NetworkPolicy> {
    baseline_with(namespace, b, owners, &Env::default())
}

fn baseline_with(
    namespace: &str,
    b: &NamespaceBaseline,
    owners: &[Owner],
    env: &Env,
) -> Option<NetworkPolicy> {
    if b.is_empty() {
        return None;
    }
    let mut types = Vec::new();
    if b.deny_ingress {
        types.push("Ingress".to_string());
    }
    let mut egress = Vec::new();
    if b.deny_egress {
        types.push("Egress".to_string());
        egress.extend(b.dns.iter().map(dns_rule));
        if b.kube_api_server {
            let caps = Backend::NetworkPolicy.capabilities();
            if let Some(r) = ir::api_server_rule(caps, &[], env) {
                egress.extend(egress_rule(&r));
            }
        }
    }
    Some(NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(BASELINE_NAME.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(baseline_labels()),
            owner_references: (!owners.is_empty()).then(|| shared_refs(owners)),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(types),
            ingress: None,
            egress: (!egress.is_empty()).then_some(egress),
        }),
    })
}

/// The egress rule of one resolved rule; `None` when its peer has no NetworkPolicy form (never
/// an empty peer list, which would allow every destination).
fn egress_rule(r: &Rule) -> Option<NetworkPolicyEgressRule> {
    Some(NetworkPolicyEgressRule {
        to: Some(peers(&r.peer)?),
        ports: Some(ports(&r.ports)),
    })
}

fn dns_rule(dns: &DnsTarget) -> NetworkPolicyEgressRule {
    let mut to = vec![NetworkPolicyPeer {
        namespace_selector: Some(namespace_named(&dns.namespace)),
        pod_selector: Some(label_selector(&dns.pods)),
        ip_block: None,
    }];
    if let Some(addr) = dns.node_local {
        to.push(ip_block(&Cidr::host(addr), &[]));
    }
    NetworkPolicyEgressRule {
        to: Some(to),
        ports: Some(ports(&DNS_PORTS)),
    }
}

fn namespace_named(ns: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            NAMESPACE_NAME_LABEL.to_string(),
            ns.to_string(),
        )])),
        match_expressions: None,
    }
}

fn optional_selector(s: &Option<Selector>) -> Option<LabelSelector> {
    s.as_ref().map(label_selector)
}

/// The peers of one resolved peer: ONE peer for pods (so namespace AND pod conditions both
/// apply) and networks, one per address for the API server; `None` for peers NetworkPolicy
/// cannot name (the intermediate form leaves those out for this backend already).
fn peers(p: &Endpoint) -> Option<Vec<NetworkPolicyPeer>> {
    let peer = match p {
        Endpoint::Pods { namespaces, pods } => {
            let namespace_selector = match namespaces {
                NamespaceMatch::Own => None,
                NamespaceMatch::Named(ns) => Some(namespace_named(ns)),
                NamespaceMatch::Selector(s) => Some(label_selector(s)),
                NamespaceMatch::All => Some(LabelSelector::default()),
            };
            NetworkPolicyPeer {
                namespace_selector,
                pod_selector: optional_selector(pods),
                ip_block: None,
            }
        }
        Endpoint::Cidr { cidr, except } => ip_block(cidr, except),
        Endpoint::ApiServer(ApiServer::Hosts(hosts)) if !hosts.is_empty() => {
            return Some(hosts.iter().map(|h| ip_block(h, &[])).collect());
        }
        Endpoint::ApiServer(_) | Endpoint::Fqdn(_) => return None,
    };
    Some(vec![peer])
}

fn ip_block(cidr: &Cidr, except: &[Cidr]) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.to_string(),
            except: (!except.is_empty()).then(|| except.iter().map(ToString::to_string).collect()),
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn ports(list: &[Port]) -> Vec<NetworkPolicyPort> {
    list.iter()
        .map(|p| NetworkPolicyPort {
            port: Some(match p.id {
                PortId::Number(n) | PortId::Range(n, _) => IntOrString::Int(i32::from(n)),
                PortId::Name(n) => IntOrString::String(n.to_string()),
            }),
            protocol: Some(p.protocol.as_str().to_string()),
            end_port: p.end().map(i32::from),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::AppNetworkSpec;
    use crate::model::BaselineWish;
    use crate::validate;

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
