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
        _ => false,
    }
}

fn flow_port(reps: &Representatives, f: &Flow, port: Port) -> bool {
    if f.ports.is_empty() && f.to == Peer::KubeApiServer {
        return reps.api_server.is_some_and(|(_, p)| {
            port == Port {
                number: p,
                protocol: Protocol::Tcp,
            }
        });
    }
    f.ports.contains(&port)
}

fn is_dns(dns: &DnsTarget, e: &Representative, port: Port) -> bool {
    if !DNS_PORTS.contains(&port) {
        return false;
    }
    match &e.place {
        Place::Pod {
            namespace, labels, ..
        } => *namespace == dns.namespace && dns.pods.matches(labels),
        Place::Address(ip) => dns.node_local == Some(*ip),
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
            flow_port(reps, f, port)
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

/// Every port the intent names: tier ports, flow ports, DNS, the API server's port.
pub fn declared_ports(model: &AppModel, reps: &Representatives) -> Vec<Port> {
    let mut out: Vec<Port> = model
        .tiers
        .iter()
        .flat_map(|t| t.ports.iter().copied())
        .chain(model.flows.iter().flat_map(|f| f.ports.iter().copied()))
        .chain(DNS_PORTS)
        .chain(reps.api_server.map(|(_, p)| Port::tcp(p)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Ports no AppNetwork is likely to declare, probed to see what is open beyond the declared.
const UNDECLARED: [Port; 5] = [
    Port {
        number: 22,
        protocol: Protocol::Tcp,
    },
    Port {
        number: 5353,
        protocol: Protocol::Udp,
    },
    Port {
        number: 9999,
        protocol: Protocol::Tcp,
    },
    Port {
        number: 12345,
        protocol: Protocol::Udp,
    },
    Port {
        number: 65535,
        protocol: Protocol::Tcp,
    },
];

/// The ports to probe: the declared ones, two undeclared ones and, when `thorough`, every
/// declared port with the other protocol (TCP ↔ UDP, SCTP → TCP) and the next port number.
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
            let other = match p.protocol {
                Protocol::Tcp => Protocol::Udp,
                Protocol::Udp | Protocol::Sctp => Protocol::Tcp,
            };
            out.push(Port {
                number: p.number,
                protocol: other,
            });
            if let Some(next) = p.number.checked_add(1) {
                out.push(Port {
                    number: next,
                    protocol: p.protocol,
                });
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
    if from.role == Role::ApiServer {
        return false;
    }
    if to.role == Role::ApiServer && !api_server_as_address {
        return false;
    }
    true
}
