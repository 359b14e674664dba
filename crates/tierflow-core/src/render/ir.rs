//! The intermediate form between the model and the backends: per tier, the rules its policy
//! must hold, with every peer already resolved, filtered by what the backend can express.
//!
//! [`build`] is the ONE place that decides what a backend cannot express (from
//! [`Backend::capabilities`]): such a rule is left out (fail closed: nothing wider is ever
//! rendered in its place) and a typed [`Limitation`] says so. Each renderer then only maps this
//! form to its objects, rule by rule, in order.

use crate::core::{Cidr, Port, Protocol, Selector};
use crate::model::{
    AppModel, Backend, Capabilities, DnsTarget, Flow, HttpRule, NamespaceMatch, Peer,
};

use super::{Env, Limitation, LimitationKind};

/// A resolved peer of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint<'a> {
    /// Pods in some namespaces (a tier of the app resolves to its selector in the app's own
    /// namespace): one peer, so the namespace AND pod conditions both apply.
    Pods {
        /// The namespaces.
        namespaces: &'a NamespaceMatch,
        /// The pods in them (`None`: every pod).
        pods: Option<&'a Selector>,
    },
    /// An IP network, minus exceptions.
    Cidr {
        /// The network.
        cidr: Cidr,
        /// Networks inside it to leave out.
        except: Vec<Cidr>,
    },
    /// Any address outside the cluster. Backends with [`Capabilities::world_entity`] name it
    /// as such; the others write, per address family with a known cluster range, every
    /// address of the family minus `cluster` (a family without one is left out: fail closed,
    /// never pod traffic).
    World {
        /// The cluster's own ranges ([`Env::cluster_cidrs`], sorted and unique).
        cluster: Vec<Cidr>,
    },
    /// A DNS name or `*.` wildcard (egress only; only on backends with
    /// [`Capabilities::fqdn`]).
    Fqdn(String),
    /// The Kubernetes API server (egress only).
    ApiServer(ApiServer),
}

/// How the Kubernetes API server is named.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ApiServer {
    /// As itself, whatever its addresses (backends with [`Capabilities::api_server_entity`]).
    Named,
    /// By its current endpoint addresses (host networks, sorted and unique).
    Hosts(Vec<Cidr>),
}

/// One rule of a tier's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule<'a> {
    /// The other end: the source of an ingress rule, the destination of an egress rule.
    pub peer: Endpoint<'a>,
    /// Destination ports. Empty only towards the API server, where it means the API server's
    /// own ports (always given for [`ApiServer::Hosts`]).
    pub ports: Vec<Port>,
    /// Allowed HTTP requests (empty: any traffic on the ports). Always empty on backends without
    /// [`Capabilities::l7_http`].
    pub http: Vec<HttpRule>,
    /// The `spec.flows` indices this rule comes from (several when flows resolve alike).
    pub flows: Vec<usize>,
}

/// DNS egress of a tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dns<'a> {
    /// Where DNS lives.
    pub target: &'a DnsTarget,
    /// Whether lookups must pass through the backend's DNS inspection, because an FQDN rule of
    /// this app learns its addresses from the answers.
    pub inspect: bool,
}

/// The policy of one tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierPolicy<'a> {
    /// Index into `AppModel::tiers`.
    pub tier: usize,
    /// The tier's name.
    pub name: &'a str,
    /// The tier's pods.
    pub selector: &'a Selector,
    /// What may connect to the tier, in flow order.
    pub ingress: Vec<Rule<'a>>,
    /// DNS egress, written before the other egress rules (`None` when DNS is disabled).
    pub dns: Option<Dns<'a>>,
    /// Where the tier may connect (pods, networks, FQDNs, the API server), in flow order.
    pub egress: Vec<Rule<'a>>,
}

/// An AppNetwork in the intermediate form, for one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPolicy<'a> {
    /// One policy per tier, in spec order.
    pub tiers: Vec<TierPolicy<'a>>,
    /// What the backend cannot express, in flow order.
    pub limitations: Vec<Limitation>,
}

/// What one flow becomes once the backend's capabilities are applied.
struct Resolved<'a> {
    /// The destination (`None`: left out).
    to: Option<Endpoint<'a>>,
    /// The ports towards it.
    ports: Vec<Port>,
    /// The HTTP rules the backend enforces.
    http: Vec<HttpRule>,
}

/// Builds the intermediate form of `model` for `backend`.
pub fn build<'a>(model: &'a AppModel, backend: Backend, env: &Env) -> AppPolicy<'a> {
    let caps = backend.capabilities();
    let mut limitations = Vec::new();
    let resolved: Vec<Resolved<'a>> = model
        .flows
        .iter()
        .map(|f| resolve(model, backend, caps, env, f, &mut limitations))
        .collect();
    let inspect = caps.fqdn && model.flows.iter().any(|f| matches!(f.to, Peer::Fqdn(_)));
    let dns = model.dns.as_ref().map(|target| Dns { target, inspect });
    let tiers = model
        .tiers
        .iter()
        .enumerate()
        .map(|(t, tier)| {
            let mut ingress = Vec::new();
            let mut egress = Vec::new();
            for (f, r) in model.flows.iter().zip(&resolved) {
                if matches!(f.to, Peer::Tier(i) if i == t) {
                    if let Some(from) = source(model, env, &f.from) {
                        merge(&mut ingress, from, &f.ports, &r.http, f.index);
                    }
                }
                if matches!(f.from, Peer::Tier(i) if i == t) {
                    if let Some(to) = &r.to {
                        merge(&mut egress, to.clone(), &r.ports, &r.http, f.index);
                    }
                }
            }
            TierPolicy {
                tier: t,
                name: &tier.name,
                selector: &tier.selector,
                ingress,
                dns: dns.clone(),
                egress,
            }
        })
        .collect();
    AppPolicy { tiers, limitations }
}

/// The API server as a rule on `ports` (empty: its own ports), as `caps` can name it; `None`
/// when it cannot be named (no capability, and its addresses are unknown).
pub fn api_server_rule(caps: Capabilities, ports: &[Port], env: &Env) -> Option<Rule<'static>> {
    let (server, ports) = api_server(caps, ports, env)?;
    Some(Rule {
        peer: Endpoint::ApiServer(server),
        ports,
        http: Vec::new(),
        flows: Vec::new(),
    })
}

fn api_server(caps: Capabilities, ports: &[Port], env: &Env) -> Option<(ApiServer, Vec<Port>)> {
    if caps.api_server_entity {
        return Some((ApiServer::Named, ports.to_vec()));
    }
    if env.api_server.is_empty() {
        return None;
    }
    let mut hosts: Vec<Cidr> = env
        .api_server
        .iter()
        .map(|(ip, _)| Cidr::host(*ip))
        .collect();
    // Sorted as the written form (`a.b.c.d/32`) sorts, so the output does not depend on the
    // order of the endpoints.
    hosts.sort_by_key(ToString::to_string);
    hosts.dedup();
    let ports = if ports.is_empty() {
        let mut own: Vec<Port> = env
            .api_server
            .iter()
            .map(|(_, p)| Port::new(*p, Protocol::Tcp))
            .collect();
        own.sort();
        own.dedup();
        own
    } else {
        ports.to_vec()
    };
    Some((ApiServer::Hosts(hosts), ports))
}

/// Resolves the destination and HTTP rules of one flow for the backend, recording what it
/// cannot express.
fn resolve<'a>(
    model: &'a AppModel,
    backend: Backend,
    caps: Capabilities,
    env: &Env,
    f: &'a Flow,
    limitations: &mut Vec<Limitation>,
) -> Resolved<'a> {
    let mut ports = f.ports.clone();
    let to = match &f.to {
        Peer::Fqdn(name) if !caps.fqdn => {
            limitations.push(Limitation {
                flow: Some(f.index),
                kind: LimitationKind::FqdnUnsupported,
                message: format!(
                    "spec.flows[{}]: fqdn peer {name:?} needs {}; {} cannot match DNS names, so this flow is not rendered (fail closed)",
                    f.index,
                    Backend::names_with(|c| c.fqdn).unwrap_or_else(|| "a backend that matches DNS names".into()),
                    backend.as_str(),
                ),
            });
            None
        }
        Peer::Fqdn(name) => {
            if model.dns.is_none() {
                limitations.push(Limitation {
                    flow: Some(f.index),
                    kind: LimitationKind::FqdnNeedsDns,
                    message: format!(
                        "spec.flows[{}]: fqdn peer {name:?} needs DNS egress (spec.dns.enabled): {} learns its addresses from the lookups it proxies, so without it this flow allows nothing (fail closed)",
                        f.index,
                        backend.as_str(),
                    ),
                });
            }
            Some(Endpoint::Fqdn(name.clone()))
        }
        Peer::KubeApiServer => match api_server(caps, &f.ports, env) {
            Some((server, resolved)) => {
                ports = resolved;
                Some(Endpoint::ApiServer(server))
            }
            None => {
                limitations.push(Limitation {
                    flow: Some(f.index),
                    kind: LimitationKind::ApiServerUnknown,
                    message: format!(
                        "spec.flows[{}]: the API server's address is unknown (default/kubernetes has no endpoints), so this flow is not rendered (fail closed)",
                        f.index
                    ),
                });
                None
            }
        },
        to => source(model, env, to),
    };
    let http = if f.http.is_empty() || caps.l7_http {
        f.http.clone()
    } else {
        limitations.push(Limitation {
            flow: Some(f.index),
            kind: LimitationKind::L7Unsupported,
            message: format!(
                "spec.flows[{}]: {} has no L7 rules; the HTTP rules are enforced as the L4 ports they use",
                f.index,
                backend.as_str(),
            ),
        });
        Vec::new()
    };
    Resolved { to, ports, http }
}

/// The app's own namespace, for tier peers to point at.
static OWN: NamespaceMatch = NamespaceMatch::Own;

/// A pod or network peer (`None` for destination-only peers and unknown tiers).
fn source<'a>(model: &'a AppModel, env: &Env, p: &'a Peer) -> Option<Endpoint<'a>> {
    match p {
        Peer::Tier(i) => model.tiers.get(*i).map(|t| Endpoint::Pods {
            namespaces: &OWN,
            pods: Some(&t.selector),
        }),
        Peer::Pods { namespaces, pods } => Some(Endpoint::Pods {
            namespaces,
            pods: pods.as_ref(),
        }),
        Peer::Cidr { cidr, except } => Some(Endpoint::Cidr {
            cidr: *cidr,
            except: except.clone(),
        }),
        Peer::World => {
            let mut cluster = env.cluster_cidrs.clone();
            cluster.sort();
            cluster.dedup();
            Some(Endpoint::World { cluster })
        }
        Peer::Fqdn(_) | Peer::KubeApiServer => None,
    }
}

/// A world peer as networks, for backends without a world entity: per family with a known
/// cluster range, every address of the family minus the cluster's ranges of that family
/// (IPv4 first). A family without a known range is left out (fail closed).
pub fn world_blocks(cluster: &[Cidr]) -> Vec<(Cidr, Vec<Cidr>)> {
    [true, false]
        .into_iter()
        .filter_map(|v4| {
            let except: Vec<Cidr> = cluster
                .iter()
                .filter(|c| c.is_ipv4() == v4)
                .copied()
                .collect();
            (!except.is_empty()).then(|| (Cidr::all(v4), except))
        })
        .collect()
}

/// Adds a rule, or the flow to an equal rule already there (renders the same either way).
fn merge<'a>(
    rules: &mut Vec<Rule<'a>>,
    peer: Endpoint<'a>,
    ports: &[Port],
    http: &[HttpRule],
    flow: usize,
) {
    if let Some(r) = rules
        .iter_mut()
        .find(|r| r.peer == peer && r.ports == ports && r.http == http)
    {
        r.flows.push(flow);
        return;
    }
    rules.push(Rule {
        peer,
        ports: ports.to_vec(),
        http: http.to_vec(),
        flows: vec![flow],
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::{model_of, L7_FQDN, THREE_TIER};

    fn env() -> Env {
        Env {
            api_server: vec![
                ("10.0.0.2".parse().unwrap(), 6443),
                ("10.0.0.1".parse().unwrap(), 6443),
                ("10.0.0.1".parse().unwrap(), 443),
            ],
            ..Env::default()
        }
    }

    #[test]
    fn peers_are_resolved_and_flows_are_traced() {
        let m = model_of(THREE_TIER);
        let p = build(&m, Backend::NetworkPolicy, &Env::default());
        assert!(p.limitations.is_empty());
        assert_eq!(p.tiers.len(), 3);
        let api = &p.tiers[1];
        assert_eq!((api.tier, api.name), (1, "api"));
        // From the frontend tier: its selector, in the app's own namespace.
        assert_eq!(
            api.ingress[0].peer,
            Endpoint::Pods {
                namespaces: &NamespaceMatch::Own,
                pods: Some(&m.tiers[0].selector),
            }
        );
        assert_eq!(api.ingress[0].flows, [0]);
        assert_eq!(
            api.ingress[1].peer,
            Endpoint::Pods {
                namespaces: &NamespaceMatch::Named("monitoring".into()),
                pods: Some(&Selector::labels([("app", "prometheus")])),
            }
        );
        assert_eq!(api.ingress[1].ports, [Port::tcp(9090)]);
        assert_eq!(api.egress.len(), 2);
        assert!(matches!(api.egress[1].peer, Endpoint::Cidr { .. }));
        assert_eq!(api.egress[1].flows, [5]);
        let dns = api.dns.as_ref().unwrap();
        assert!(!dns.inspect);
        // The database's own flow is both ingress and egress of its policy.
        assert_eq!(p.tiers[2].ingress[0].flows, [1]);
        assert_eq!(p.tiers[2].ingress[1].flows, [2]);
        assert_eq!(p.tiers[2].egress[0].flows, [2]);
    }

    #[test]
    fn equal_flows_become_one_rule_with_both_indices() {
        let m = model_of(
            "tiers:\n  - {name: a, selector: {matchLabels: {app: a}}, ports: [{port: 80}]}\n  - {name: b, selector: {matchLabels: {app: b}}, ports: [{port: 80}]}\nflows:\n  - {from: {tier: a}, to: {tier: b}}\n  - {from: {tier: a}, to: {tier: b}, ports: [{port: 80}]}\n",
        );
        let p = build(&m, Backend::Calico, &Env::default());
        assert_eq!(p.tiers[1].ingress.len(), 1);
        assert_eq!(p.tiers[1].ingress[0].flows, [0, 1]);
        assert_eq!(p.tiers[0].egress[0].flows, [0, 1]);
    }

    #[test]
    fn what_a_backend_cannot_express_is_left_out_with_a_typed_limitation() {
        let m = model_of(L7_FQDN);
        for backend in Backend::ALL {
            let caps = backend.capabilities();
            let p = build(&m, backend, &Env::default());
            for t in &p.tiers {
                for r in t.ingress.iter().chain(&t.egress) {
                    assert!(caps.fqdn || !matches!(r.peer, Endpoint::Fqdn(_)));
                    assert!(caps.l7_http || r.http.is_empty());
                    assert!(!matches!(r.peer, Endpoint::ApiServer(ApiServer::Hosts(_))));
                }
            }
            let kinds: Vec<(Option<usize>, LimitationKind)> =
                p.limitations.iter().map(|l| (l.flow, l.kind)).collect();
            let expected = match backend {
                Backend::NetworkPolicy | Backend::ClusterNetworkPolicy => vec![
                    (Some(0), LimitationKind::FqdnUnsupported),
                    (Some(1), LimitationKind::L7Unsupported),
                    (Some(2), LimitationKind::ApiServerUnknown),
                ],
                Backend::Calico => vec![
                    (Some(0), LimitationKind::FqdnUnsupported),
                    (Some(1), LimitationKind::L7Unsupported),
                ],
                Backend::Cilium => vec![],
            };
            assert_eq!(kinds, expected, "{backend:?}");
        }
        // The API server flow: left out on NetworkPolicy (no addresses), named elsewhere.
        let api = |b: Backend| build(&m, b, &Env::default()).tiers[1].egress.clone();
        assert!(api(Backend::NetworkPolicy).is_empty());
        assert_eq!(
            api(Backend::Calico)[0].peer,
            Endpoint::ApiServer(ApiServer::Named)
        );
        let cilium = api(Backend::Cilium);
        assert_eq!(cilium[0].peer, Endpoint::Fqdn("*.example.com".into()));
        assert_eq!(cilium[1].peer, Endpoint::ApiServer(ApiServer::Named));
        // Cilium keeps the HTTP rules and inspects DNS for the FQDN rule.
        let p = build(&m, Backend::Cilium, &Env::default());
        assert_eq!(p.tiers[1].ingress[0].http.len(), 1);
        assert!(p.tiers[0].dns.as_ref().unwrap().inspect);
    }

    #[test]
    fn the_api_server_by_address_is_its_sorted_unique_hosts_on_its_own_ports() {
        let m = model_of(L7_FQDN);
        let p = build(&m, Backend::NetworkPolicy, &env());
        assert!(p
            .limitations
            .iter()
            .all(|l| l.kind != LimitationKind::ApiServerUnknown));
        let rule = &p.tiers[1].egress[0];
        assert_eq!(
            rule.peer,
            Endpoint::ApiServer(ApiServer::Hosts(vec![
                Cidr::parse("10.0.0.1/32").unwrap(),
                Cidr::parse("10.0.0.2/32").unwrap(),
            ]))
        );
        assert_eq!(rule.ports, [Port::tcp(443), Port::tcp(6443)]);
        assert_eq!(rule.flows, [2]);
        let caps = Backend::NetworkPolicy.capabilities();
        assert_eq!(
            api_server_rule(caps, &[Port::tcp(6443)], &env())
                .unwrap()
                .ports,
            [Port::tcp(6443)]
        );
        assert!(api_server_rule(caps, &[], &Env::default()).is_none());
        let named = api_server_rule(Backend::Cilium.capabilities(), &[], &Env::default());
        assert_eq!(named.unwrap().peer, Endpoint::ApiServer(ApiServer::Named));
    }

    #[test]
    fn fqdn_without_dns_is_rendered_but_blocks_ready() {
        let mut m = model_of(L7_FQDN);
        m.dns = None;
        let p = build(&m, Backend::Cilium, &Env::default());
        assert_eq!(p.limitations.len(), 1);
        assert_eq!(p.limitations[0].kind, LimitationKind::FqdnNeedsDns);
        assert!(p.tiers[1].dns.is_none());
        assert_eq!(
            p.tiers[1].egress[0].peer,
            Endpoint::Fqdn("*.example.com".into())
        );
    }
}
