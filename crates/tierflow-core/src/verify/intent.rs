//! What an AppNetwork's intent says about a connection between two representatives, decided
//! from the model alone (never from rendered objects), so that `verify` can hold every
//! backend's rendering against it.
//!
//! A connection is **declared** when some flow's `from` holds the source, its `to` holds the
//! destination and the port is one of the flow's (for the API server without ports: its own
//! port), or when it is DNS: DNS is on, the destination is a DNS pod (or the NodeLocal DNSCache
//! address) and the port is UDP or TCP 53.
//!
//! tierflow **governs** a pod's egress when the pod is in the app's namespace and the baseline
//! denies egress or a tier selects it; likewise ingress. An address outside the pods is never
//! governed.
//!
//! Expected: a declared connection is allowed; any other connection is allowed exactly when
//! tierflow governs neither its source's egress nor its destination's ingress.

use super::endpoints::{in_cidr_peer, Place, Representative, Representatives, Role};
use crate::core::port::DNS_PORTS;
use crate::core::{Port, Protocol};
use crate::model::{AppModel, DnsTarget, Flow, NamespaceMatch, Peer};

/// Whether the representative is in the peer.
pub fn in_peer(model: &AppModel, reps: &Representatives, peer: &Peer, e: &Representative) -> bool {
    match (peer, &e.place) {
        (
            Peer::Tier(i),
            Place::Pod {
                namespace, labels, ..
            },
        ) => {
            *namespace == model.namespace
                && model
                    .tiers
                    .get(*i)
                    .is_some_and(|t| t.selector.matches(labels))
        }
        (
            Peer::Pods { namespaces, pods },
            Place::Pod {
                namespace, labels, ..
            },
        ) => {
            let ns_ok = match namespaces {
                NamespaceMatch::Own => *namespace == model.namespace,
                NamespaceMatch::Named(n) => namespace == n,
                NamespaceMatch::Selector(s) => s.matches(&reps.namespace_labels(namespace)),
                NamespaceMatch::All => true,
            };
            ns_ok && pods.as_ref().is_none_or(|s| s.matches(labels))
        }
        // Pod addresses avoid every CIDR peer (see `endpoints`), so only addresses match.
        (Peer::Cidr { cidr, except }, Place::Address(ip)) => in_cidr_peer(cidr, except, ip),
        (Peer::KubeApiServer, Place::Address(_)) => e.role == Role::ApiServer,
        // Outside every cluster range, of a family the cluster has a range of (a backend
        // without a world entity writes only those families).
        (Peer::World, Place::Address(ip)) => {
            reps.cluster_cidrs
                .iter()
                .any(|c| c.is_ipv4() == ip.is_ipv4())
                && !reps.cluster_cidrs.iter().any(|c| c.contains_addr(ip))
        }
        _ => false,
    }
}

/// The number of a probe port (probes are always single numbered ports).
pub fn probe_number(probe: Port) -> u16 {
    probe.bounds().map_or(0, |(a, _)| a)
}

/// Whether the declared port `declared` holds the connection to `to` on the probe `probe`: a
/// number or range holds the numbers it names; a name holds the number the destination pod
/// gives that name (an address has no container ports).
pub fn port_holds(declared: &Port, to: &Representative, probe: Port) -> bool {
    let number = probe_number(probe);
    match &to.place {
        Place::Pod { ports, .. } => declared.matches_on(
            number,
            probe.protocol,
            ports
                .iter()
                .map(|c| (c.name.as_deref(), c.port, c.protocol)),
        ),
        Place::Address(_) => declared.contains(number, probe.protocol),
    }
}

fn flow_port(reps: &Representatives, f: &Flow, to: &Representative, port: Port) -> bool {
    if f.ports.is_empty() && f.to == Peer::KubeApiServer {
        return reps
            .api_server
            .is_some_and(|(_, p)| port == Port::new(p, Protocol::Tcp));
    }
    f.ports.iter().any(|d| port_holds(d, to, port))
}

fn is_dns(dns: &DnsTarget, e: &Representative, port: Port) -> bool {
    if !DNS_PORTS.contains(&port) {
        return false;
    }
    match &e.place {
        Place::Pod {
            namespace, labels, ..
        } => {
            *namespace == dns.namespace
                && (dns.pods.matches(labels)
                    || (dns.node_local.is_some()
                        && *labels == super::endpoints::node_local_dns_labels()))
        }
        Place::Address(_) => false,
    }
}

/// The flows (by `spec.flows` index) that declare the connection, and whether DNS does.
pub fn declared_by(
    model: &AppModel,
    reps: &Representatives,
    from: &Representative,
    to: &Representative,
    port: Port,
) -> (Vec<usize>, bool) {
    let flows = model
        .flows
        .iter()
        .filter(|f| {
            flow_port(reps, f, to, port)
                && in_peer(model, reps, &f.from, from)
                && in_peer(model, reps, &f.to, to)
        })
        .map(|f| f.index)
        .collect();
    let dns = model.dns.as_ref().is_some_and(|d| is_dns(d, to, port));
    (flows, dns)
}

/// Whether tierflow governs the representative's (ingress, egress).
pub fn governed(model: &AppModel, e: &Representative) -> (bool, bool) {
    match &e.place {
        Place::Pod {
            namespace, labels, ..
        } if *namespace == model.namespace => {
            let tier = model.tiers.iter().any(|t| t.selector.matches(labels));
            (
                tier || model.baseline.deny_ingress,
                tier || model.baseline.deny_egress,
            )
        }
        _ => (false, false),
    }
}

/// What the intent expects of a connection, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// Allowed or not.
    pub allowed: bool,
    /// The flows (by `spec.flows` index) that declare the connection; empty when no flow
    /// does (DNS, or not declared).
    pub flows: Vec<usize>,
    /// Why, in words.
    pub because: String,
}

/// What the intent expects of the connection from `from` to `to` on `port`.
pub fn expected(
    model: &AppModel,
    reps: &Representatives,
    from: &Representative,
    to: &Representative,
    port: Port,
) -> Expectation {
    let (flows, dns) = declared_by(model, reps, from, to, port);
    if let Some(first) = flows.first() {
        return Expectation {
            allowed: true,
            because: format!("declared by spec.flows[{first}]"),
            flows,
        };
    }
    if dns {
        return Expectation {
            allowed: true,
            flows,
            because: "DNS".to_string(),
        };
    }
    let (_, egress) = governed(model, from);
    let (ingress, _) = governed(model, to);
    match (egress, ingress) {
        (false, false) => Expectation {
            allowed: true,
            flows: Vec::new(),
            because: "tierflow governs neither end".to_string(),
        },
        (true, _) => Expectation {
            allowed: false,
            flows: Vec::new(),
            because: format!("not declared, and tierflow governs {}'s egress", from.name),
        },
        (false, true) => Expectation {
            allowed: false,
            flows: Vec::new(),
            because: format!("not declared, and tierflow governs {}'s ingress", to.name),
        },
    }
}

/// What [`expected`] needs that does not depend on the port, worked out once for every
/// representative: which flows' `from` and `to` hold it, whether tierflow governs it, whether
/// it is a DNS target. [`Intent::allowed`] then answers `expected(..).allowed` for a pair and a
/// port without matching a selector or building a text; the texts (and the flows) are built
/// with [`expected`] only where they are reported.
pub struct Intent<'a> {
    model: &'a AppModel,
    reps: &'a Representatives,
    /// Per flow (by position in `model.flows`): per representative, whether `from` holds it.
    from_in: Vec<Vec<bool>>,
    /// Per flow: per representative, whether `to` holds it.
    to_in: Vec<Vec<bool>>,
    /// Per representative: [`governed`].
    governed: Vec<(bool, bool)>,
    /// Per representative: whether it is a DNS target (on a DNS port).
    dns: Vec<bool>,
}

impl<'a> Intent<'a> {
    /// The port-independent answers for every representative of `reps`.
    pub fn new(model: &'a AppModel, reps: &'a Representatives) -> Self {
        let holds = |peer: &Peer| {
            reps.endpoints
                .iter()
                .map(|e| in_peer(model, reps, peer, e))
                .collect::<Vec<bool>>()
        };
        Intent {
            model,
            reps,
            from_in: model.flows.iter().map(|f| holds(&f.from)).collect(),
            to_in: model.flows.iter().map(|f| holds(&f.to)).collect(),
            governed: reps.endpoints.iter().map(|e| governed(model, e)).collect(),
            dns: reps
                .endpoints
                .iter()
                .map(|e| {
                    model
                        .dns
                        .as_ref()
                        .is_some_and(|d| DNS_PORTS.iter().any(|p| is_dns(d, e, *p)))
                })
                .collect(),
        }
    }

    /// The flows (positions in `model.flows`) whose `from` holds representative `from` and
    /// whose `to` holds `to`: the only ones that can declare a connection between them.
    pub fn candidates(&self, from: usize, to: usize) -> Vec<usize> {
        let at = |v: &[bool], i: usize| v.get(i).copied().unwrap_or(false);
        (0..self.model.flows.len())
            .filter(|&f| {
                self.from_in.get(f).is_some_and(|v| at(v, from))
                    && self.to_in.get(f).is_some_and(|v| at(v, to))
            })
            .collect()
    }

    /// `expected(model, reps, from, to, port).allowed`, given `candidates(from, to)`.
    pub fn allowed(&self, candidates: &[usize], from: usize, to: usize, port: Port) -> bool {
        let Some(to_rep) = self.reps.endpoints.get(to) else {
            return false;
        };
        let declared = candidates.iter().any(|&f| {
            self.model
                .flows
                .get(f)
                .is_some_and(|f| flow_port(self.reps, f, to_rep, port))
        });
        if declared || (self.dns.get(to).copied().unwrap_or(false) && DNS_PORTS.contains(&port)) {
            return true;
        }
        let (_, egress) = self.governed.get(from).copied().unwrap_or_default();
        let (ingress, _) = self.governed.get(to).copied().unwrap_or_default();
        !egress && !ingress
    }
}

/// Every port the intent names, as single probe ports: numbered tier and flow ports, both ends
/// of every range, the number the representatives give every named port, DNS, the API
/// server's port.
pub fn declared_ports(model: &AppModel, reps: &Representatives) -> Vec<Port> {
    let mut out: Vec<Port> = model
        .tiers
        .iter()
        .flat_map(|t| t.ports.iter().copied())
        .chain(model.flows.iter().flat_map(|f| f.ports.iter().copied()))
        .flat_map(|p| probes_of(reps, p))
        .chain(DNS_PORTS)
        .chain(reps.api_server.map(|(_, p)| Port::tcp(p)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The single ports that stand for a declared one: itself, both ends of a range, or the number
/// of a name.
fn probes_of(reps: &Representatives, p: Port) -> Vec<Port> {
    if let Some(name) = p.name() {
        return reps
            .named_ports
            .get(&(name, p.protocol))
            .map(|n| Port::new(*n, p.protocol))
            .into_iter()
            .collect();
    }
    match p.bounds() {
        Some((a, b)) if a != b => vec![Port::new(a, p.protocol), Port::new(b, p.protocol)],
        _ => vec![p],
    }
}

/// Ports no AppNetwork is likely to declare, probed to see what is open beyond the declared.
const UNDECLARED: [Port; 5] = [
    Port::tcp(22),
    Port::udp(5353),
    Port::tcp(9999),
    Port::udp(12345),
    Port::tcp(65535),
];

/// The ports to probe: the declared ones, two undeclared ones and, when `thorough`, every
/// declared port with the other protocol (TCP ↔ UDP, SCTP → TCP), the next port number and,
/// for a range, the port before it.
pub fn probe_ports(model: &AppModel, reps: &Representatives, thorough: bool) -> Vec<Port> {
    let declared = declared_ports(model, reps);
    let mut out = declared.clone();
    out.extend(
        UNDECLARED
            .iter()
            .filter(|p| !declared.contains(p))
            .take(2)
            .copied(),
    );
    if thorough {
        for p in &declared {
            let number = probe_number(*p);
            let other = match p.protocol {
                Protocol::Tcp => Protocol::Udp,
                Protocol::Udp | Protocol::Sctp => Protocol::Tcp,
            };
            out.push(Port::new(number, other));
            if let Some(next) = number.checked_add(1) {
                out.push(Port::new(next, p.protocol));
            }
            if let Some(before) = number.checked_sub(1).filter(|n| *n > 0) {
                out.push(Port::new(before, p.protocol));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a connection between these two can be checked offline on a backend: connections
/// between two addresses are outside every policy, and the API server is checkable only where
/// the backend writes it as addresses (the standard backend), and only as a destination.
pub fn checkable(from: &Representative, to: &Representative, api_server_as_address: bool) -> bool {
    if !from.is_pod() && !to.is_pod() {
        return false;
    }
    if from.role == Role::ApiServer || from.unchecked || to.unchecked {
        return false;
    }
    if to.role == Role::ApiServer && !api_server_as_address {
        return false;
    }
    true
}
