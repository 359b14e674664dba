//! The standard backend: `networking.k8s.io/v1` NetworkPolicy, which every enforcing CNI honours.
//!
//! The objects are written straight as JSON text ([`super::json`]): the text the operator
//! digests and sends, in the shape `serde_json::to_string` gives for the k8s-openapi
//! `NetworkPolicy` turned into a value (keys sorted; absent optional fields left out), without
//! building typed structs or a `serde_json::Value` tree first. Rules are de-duplicated by their
//! text. The typed forms ([`tier_policies`], [`baseline`]) are read back from the same text.

use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::ir::{self, ApiServer, AppPolicy, Endpoint, TierPolicy};
use super::json::{Items, Json, Members};
use super::{tier_label_pairs, Env, Object, ObjectKind, Owner, Rendered, BASELINE_LABEL_PAIRS};
use crate::core::names::{self, tier_policy_name, BASELINE_NAME};
use crate::core::port::DNS_PORTS;
use crate::core::{Cidr, Port, PortId, Selector};
use crate::model::{AppModel, Backend, DnsTarget, NamespaceBaseline, NamespaceMatch};
use crate::vocab::node_local_dns_pods;

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

/// Room for a typical object's text, so that writing it rarely grows the buffer.
const TEXT_CAPACITY: usize = 2048;

fn tier_policy(model: &AppModel, t: &TierPolicy, owner: Option<&Owner>) -> Object {
    let name = tier_policy_name(&model.name, t.name);
    let app = names::label_value(&model.name);
    let labels = tier_label_pairs(&app, t.name);
    let owners = owner.map(|o| (o, true));
    let mut j = Json::with_capacity(TEXT_CAPACITY);
    let mut spec_at = 0..0;
    j.object(|o| {
        header(o, &name, &model.namespace, &labels, owners.iter().copied());
        let j = o.key("spec");
        let start = j.len();
        j.object(|spec| {
            spec.non_empty_array("egress", |a| {
                if let Some(dns) = &t.dns {
                    a.unique(|j| dns_rule(j, dns.target));
                }
                for r in &t.egress {
                    if let Some(p) = peers(&r.peer) {
                        a.unique(|j| rule(j, "to", &p, &r.ports));
                    }
                }
            });
            spec.non_empty_array("ingress", |a| {
                for r in &t.ingress {
                    if let Some(p) = peers(&r.peer) {
                        a.unique(|j| rule(j, "from", &p, &r.ports));
                    }
                }
            });
            spec.key("podSelector")
                .object(|o| label_selector(o, t.selector));
            spec.key("policyTypes").strings(["Ingress", "Egress"]);
        });
        spec_at = start..j.len();
    });
    Object::from_json(
        ObjectKind::NetworkPolicy,
        &name,
        Some(&model.namespace),
        j.finish(),
        spec_at,
    )
}

/// `apiVersion`, `kind` and `metadata` of a NetworkPolicy (`labels` sorted by key; owners with
/// whether each is the controller).
fn header<'o>(
    o: &mut Members<'_>,
    name: &str,
    namespace: &str,
    labels: &[(&'static str, &str)],
    owners: impl ExactSizeIterator<Item = (&'o Owner, bool)>,
) {
    let kind = ObjectKind::NetworkPolicy;
    o.key("apiVersion").string(kind.api_version());
    o.key("kind").string(kind.kind());
    o.key("metadata").object(|m| {
        m.key("labels").object(|l| {
            for (k, v) in labels {
                l.key(k).string(v);
            }
        });
        m.key("name").string(name);
        m.key("namespace").string(namespace);
        if owners.len() > 0 {
            m.key("ownerReferences").array(|a| {
                for (owner, controller) in owners {
                    // `Owner::reference`, serialised (`blockOwnerDeletion` unset).
                    a.item().object(|r| {
                        r.key("apiVersion").string(&owner.api_version);
                        r.key("controller").bool(controller);
                        r.key("kind").string(&owner.kind);
                        r.key("name").string(&owner.name);
                        r.key("uid").string(&owner.uid);
                    });
                }
            });
        }
    });
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
    let api_server = (b.deny_egress && b.kube_api_server)
        .then(|| ir::api_server_rule(Backend::NetworkPolicy.capabilities(), &[], env))
        .flatten();
    let labels = BASELINE_LABEL_PAIRS;
    let mut j = Json::with_capacity(TEXT_CAPACITY);
    let mut spec_at = 0..0;
    j.object(|o| {
        header(
            o,
            BASELINE_NAME,
            namespace,
            &labels,
            owners.iter().map(|o| (o, false)),
        );
        let j = o.key("spec");
        let start = j.len();
        j.object(|spec| {
            if b.deny_egress {
                spec.non_empty_array("egress", |a| {
                    for dns in &b.dns {
                        dns_rule(a.item(), dns);
                    }
                    if let Some(r) = &api_server {
                        if let Some(p) = peers(&r.peer) {
                            rule(a.item(), "to", &p, &r.ports);
                        }
                    }
                });
            }
            spec.key("podSelector").object(|_| {});
            spec.key("policyTypes").array(|a| {
                if b.deny_ingress {
                    a.item().string("Ingress");
                }
                if b.deny_egress {
                    a.item().string("Egress");
                }
            });
        });
        spec_at = start..j.len();
    });
    Some(Object::from_json(
        ObjectKind::NetworkPolicy,
        BASELINE_NAME,
        Some(namespace),
        j.finish(),
        spec_at,
    ))
}

/// The peers of one resolved peer, as NetworkPolicy names them.
enum Peers<'a> {
    /// ONE peer for pods (so namespace AND pod conditions both apply).
    Pods(&'a NamespaceMatch, Option<&'a Selector>),
    /// One network.
    Cidr(&'a Cidr, &'a [Cidr]),
    /// One peer per address (the API server's).
    Hosts(&'a [Cidr]),
    /// The world: per family with a known cluster range, all of it minus the cluster's ranges.
    World(Vec<(Cidr, Vec<Cidr>)>),
}

/// The peers of one resolved peer; `None` for peers NetworkPolicy cannot name (the intermediate
/// form leaves those out for this backend already), and never an empty list (which would allow
/// every source or destination).
fn peers<'a>(p: &'a Endpoint<'_>) -> Option<Peers<'a>> {
    Some(match p {
        Endpoint::Pods { namespaces, pods } => Peers::Pods(namespaces, *pods),
        Endpoint::Cidr { cidr, except } => Peers::Cidr(cidr, except),
        Endpoint::ApiServer(ApiServer::Hosts(hosts)) if !hosts.is_empty() => Peers::Hosts(hosts),
        Endpoint::World { cluster } => {
            let blocks = ir::world_blocks(cluster);
            if blocks.is_empty() {
                return None;
            }
            Peers::World(blocks)
        }
        Endpoint::ApiServer(_) | Endpoint::Fqdn(_) => return None,
    })
}

fn write_peers(a: &mut Items<'_>, p: &Peers<'_>) {
    match p {
        Peers::Pods(namespaces, pods) => a.item().object(|m| {
            match namespaces {
                NamespaceMatch::Own => {}
                NamespaceMatch::Named(ns) => m
                    .key("namespaceSelector")
                    .object(|o| namespace_named(o, ns)),
                NamespaceMatch::Selector(s) => {
                    m.key("namespaceSelector").object(|o| label_selector(o, s))
                }
                NamespaceMatch::All => m.key("namespaceSelector").object(|_| {}),
            }
            if let Some(pods) = pods {
                m.key("podSelector").object(|o| label_selector(o, pods));
            }
        }),
        Peers::Cidr(cidr, except) => ip_block(a.item(), cidr, except),
        Peers::Hosts(hosts) => {
            for h in *hosts {
                ip_block(a.item(), h, &[]);
            }
        }
        Peers::World(blocks) => {
            for (all, except) in blocks {
                ip_block(a.item(), all, except);
            }
        }
    }
}

/// A rule: its peers under `peers_key` (`from` / `to`) and its ports.
fn rule(j: &mut Json, peers_key: &'static str, peers: &Peers<'_>, list: &[Port]) {
    j.object(|o| {
        if peers_key < "ports" {
            o.key(peers_key).array(|a| write_peers(a, peers));
            o.key("ports").array(|a| ports(a, list));
        } else {
            o.key("ports").array(|a| ports(a, list));
            o.key(peers_key).array(|a| write_peers(a, peers));
        }
    });
}

fn dns_rule(j: &mut Json, dns: &DnsTarget) {
    let to = |a: &mut Items<'_>| {
        a.item().object(|m| {
            m.key("namespaceSelector")
                .object(|o| namespace_named(o, &dns.namespace));
            m.key("podSelector")
                .object(|o| label_selector(o, &dns.pods));
        });
        if let Some(addr) = dns.node_local {
            // The cache's address (a host-network listener, /32 or /128), and its pods where it
            // runs as pods behind a local redirect (Cilium's setup, also with this backend).
            ip_block(a.item(), &Cidr::host(addr), &[]);
            a.item().object(|m| {
                m.key("namespaceSelector")
                    .object(|o| namespace_named(o, &dns.namespace));
                m.key("podSelector")
                    .object(|o| label_selector(o, &node_local_dns_pods()));
            });
        }
    };
    j.object(|o| {
        o.key("ports").array(|a| ports(a, &DNS_PORTS));
        o.key("to").array(to);
    });
}

/// `{matchLabels: {kubernetes.io/metadata.name: ns}}`.
fn namespace_named(o: &mut Members<'_>, ns: &str) {
    o.key("matchLabels")
        .object(|l| l.key(NAMESPACE_NAME_LABEL).string(ns));
}

/// A label selector as the API writes it (`validate::label_selector`, serialised): empty parts
/// left out, `values` left out when empty.
fn label_selector(o: &mut Members<'_>, s: &Selector) {
    if !s.match_expressions.is_empty() {
        o.key("matchExpressions").array(|a| {
            for r in &s.match_expressions {
                a.item().object(|e| {
                    e.key("key").string(&r.key);
                    e.key("operator").string(r.op.as_str());
                    if !r.values.is_empty() {
                        e.key("values").strings(r.values.iter().map(String::as_str));
                    }
                });
            }
        });
    }
    if !s.match_labels.is_empty() {
        o.key("matchLabels").object(|l| {
            for (k, v) in &s.match_labels {
                l.key_text(k).string(v);
            }
        });
    }
}

fn ip_block(j: &mut Json, cidr: &Cidr, except: &[Cidr]) {
    j.object(|o| {
        o.key("ipBlock").object(|b| {
            b.key("cidr").cidr(cidr);
            if !except.is_empty() {
                b.key("except").array(|a| {
                    for e in except {
                        a.item().cidr(e);
                    }
                });
            }
        });
    });
}

fn ports(a: &mut Items<'_>, list: &[Port]) {
    for p in list {
        a.item().object(|m| {
            if let Some(end) = p.end() {
                m.key("endPort").u64(end.into());
            }
            match p.id {
                PortId::Number(n) | PortId::Range(n, _) => m.key("port").u64(n.into()),
                PortId::Name(n) => m.key("port").string(n.as_str()),
            }
            m.key("protocol").string(p.protocol.as_str());
        });
    }
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
    fn the_spec_digest_read_from_the_text_is_the_digest_of_the_parsed_spec() {
        let m = model();
        let merged = NamespaceBaseline::merge([&m.baseline]);
        let mut objects = tier_objects(&m, None, &Env::default()).objects;
        objects.extend(baseline_object("production", &merged, &[], &Env::default()));
        assert_eq!(objects.len(), 4);
        for o in objects {
            let spec_digest = o.spec_digest();
            assert_eq!(spec_digest, crate::render::digest(&o.into_value()["spec"]));
        }
    }

    #[test]
    fn nothing_denied_renders_no_baseline() {
        assert!(baseline("x", &NamespaceBaseline::default(), &[]).is_none());
    }
}
