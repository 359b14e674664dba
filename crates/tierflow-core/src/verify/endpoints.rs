//! Representative endpoints of an AppNetwork: the pods and addresses `explain` and `verify`
//! simulate connections between. ONE builder, [`representatives`], serves both.
//!
//! - One pod per tier in the app's namespace: the tier's `matchLabels` plus values satisfying
//!   its `In` / `Exists` expressions, the tier's ports as container ports.
//! - An "other" pod in the app's namespace that no tier selects.
//! - The DNS pod (the AppNetwork's DNS target, `kube-system` / `k8s-app=kube-dns` when DNS is
//!   off) with named ports `dns` (UDP 53) and `dns-tcp` (TCP 53), and with a NodeLocal
//!   DNSCache address a NodeLocal DNSCache pod (`k8s-app=node-local-dns` in the DNS
//!   namespace, as with Cilium's local redirect policy; the address itself is a host-network
//!   listener no policy simulation can stand for).
//! - One pod for every namespace peer: in the named namespace, or in a made-up namespace whose
//!   labels satisfy the namespace selector (the namespace whose `kubernetes.io/metadata.name`
//!   the selector names, if it names one), or in `any-ns` for `allNamespaces`; its labels
//!   satisfy the peer's pod selector.
//! - One address for every CIDR peer: the first usable address not in `except`.
//! - For a `world` peer, one address outside the cluster per address family with a cluster
//!   range (203.0.113.10 and 2001:db8::10, documentation addresses, unless a range holds them).
//!   The cluster's ranges are [`Options::cluster_cidrs`], or when none are given made-up ones
//!   that hold every pod address handed out here ([`DEFAULT_POOLS`]); pods are given
//!   addresses inside them, so that "every address minus the cluster's ranges" never matches
//!   a pod, as on a real cluster.
//! - The Kubernetes API server (a made-up endpoint, also given to the standard renderer in
//!   [`Representatives::env`]) when a flow goes to it. FQDN peers have no representative:
//!   offline nothing resolves names.
//! - With [`Options::near_misses`] (what `verify` uses), probes just outside each peer: the
//!   tier's labels in another namespace, a peer's pod labels in a namespace it does not select,
//!   another pod of a peer's namespace, an address inside an `except`, the address after a CIDR.
//!
//! Pod addresses avoid every CIDR peer (10.244.0.0/16 first, then other private ranges, then
//! IPv6): whether an ipBlock matches pod addresses is up to the CNI (Calico: yes; Cilium: no), so
//! a pod inside a CIDR peer would make the backends disagree by design rather than by mistake.
//! When no such address exists the pods get none (and a note says so).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use crate::core::{Cidr, Port, PortName, Protocol, Selector};
use crate::engine::{ContainerPort, Endpoint, EngineError, Pod, Scenario, NAMESPACE_NAME_LABEL};
use crate::model::{AppModel, NamespaceMatch, Peer};
use crate::render::Env;

/// What a representative stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A pod of tier `usize` (index into the model's tiers).
    Tier(usize),
    /// A pod of the app's namespace in no tier.
    OtherPod,
    /// A DNS pod.
    Dns,
    /// A NodeLocal DNSCache pod.
    NodeLocalDns,
    /// A pod of a namespace peer, first named by this flow (index into `spec.flows`).
    Peer(usize),
    /// An address of a CIDR peer, first named by this flow.
    Cidr(usize),
    /// An address outside the cluster (a `world` peer's), of one family.
    World,
    /// The Kubernetes API server.
    ApiServer,
    /// A probe just outside some peer.
    NearMiss,
}

/// Where a representative is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A pod.
    Pod {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its labels.
        labels: BTreeMap<String, String>,
        /// Its address.
        ip: Option<IpAddr>,
        /// Its container ports.
        ports: Vec<ContainerPort>,
    },
    /// An address outside the pods.
    Address(IpAddr),
}

/// One representative endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Representative {
    /// Short unique name for tables: the tier name for tier pods, `ns/pod` for other pods, the
    /// address for addresses.
    pub name: String,
    /// What it stands for.
    pub role: Role,
    /// Where it is.
    pub place: Place,
    /// What it is, for the legend.
    pub about: String,
    /// Not compared across backends: an address inside the cluster's ranges that is no pod,
    /// with a `world` peer in the intent. Cilium gives such an address the `world` identity
    /// (it is no endpoint), "every address minus the cluster" does not; neither is wrong, and
    /// a real cluster has no such senders but nodes and services.
    pub unchecked: bool,
}

impl Representative {
    /// Whether it is a pod.
    pub fn is_pod(&self) -> bool {
        matches!(self.place, Place::Pod { .. })
    }
}

/// The representatives of one AppNetwork, with the namespaces they live in.
#[derive(Clone, Debug, Default)]
pub struct Representatives {
    /// The endpoints, in a stable order (tiers first).
    pub endpoints: Vec<Representative>,
    /// Every namespace a representative pod lives in, with its labels (including
    /// `kubernetes.io/metadata.name`).
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// The made-up API server endpoint, when a flow goes to the API server.
    pub api_server: Option<(IpAddr, u16)>,
    /// The number every pod representative gives each container port name the intent uses
    /// (each pod declares every such name, so a named port resolves the same way on every
    /// pod; numbers are chosen away from every declared port and range).
    pub named_ports: BTreeMap<(PortName, Protocol), u16>,
    /// The cluster's own ranges the simulation assumes (given, or made up).
    pub cluster_cidrs: Vec<Cidr>,
    /// What could not be represented, and why.
    pub notes: Vec<String>,
    /// Addresses of the pods' twins (see [`Simulation`]), by endpoint index.
    twin_ips: Vec<Option<IpAddr>>,
    /// Which pod labels make up a Cilium identity in the simulation (default: Cilium's).
    pub cilium_identity: crate::engine::CiliumIdentityFilter,
}

/// What to build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Also build probes just outside each peer (see the module documentation).
    pub near_misses: bool,
    /// The cluster's pod and service ranges (`--cluster-cidr`); empty: [`DEFAULT_POOLS`].
    pub cluster_cidrs: Vec<Cidr>,
}

/// Where pods get their addresses when no cluster ranges are given, and so the cluster ranges
/// the simulation then assumes.
pub const DEFAULT_POOLS: [&str; 6] = [
    "10.244.0.0/16",
    "100.64.0.0/16",
    "172.16.0.0/16",
    "192.168.0.0/16",
    "fd00:10:244::/64",
    "fdff:ffff::/64",
];

/// The cluster ranges a simulation assumes: `given`, or [`DEFAULT_POOLS`].
pub fn assumed_cluster(given: &[Cidr]) -> Vec<Cidr> {
    if given.is_empty() {
        DEFAULT_POOLS
            .into_iter()
            .filter_map(|p| Cidr::parse(p).ok())
            .collect()
    } else {
        given.to_vec()
    }
}

/// An address of one family outside every range of `cluster` and not in `used`: a
/// documentation address first (203.0.113.10, 2001:db8::10), else the first one found after it.
fn outside(v4: bool, cluster: &[Cidr], used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    let start: IpAddr = if v4 {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10))
    };
    let (_, first) = to_u128(start);
    (0..4096u128)
        .filter_map(|k| from_u128(v4, first.wrapping_add(k.wrapping_mul(65_537))))
        .find(|ip| !used.contains(ip) && !cluster.iter().any(|c| c.contains_addr(ip)))
}

pub use crate::vocab::API_SERVER_PORT;

/// Whether `ip` is in the CIDR peer `cidr` minus `except`.
pub fn in_cidr_peer(cidr: &Cidr, except: &[Cidr], ip: &IpAddr) -> bool {
    cidr.contains_addr(ip) && !except.iter().any(|e| e.contains_addr(ip))
}

fn to_u128(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (true, u128::from(u32::from(a))),
        IpAddr::V6(a) => (false, u128::from(a)),
    }
}

fn from_u128(v4: bool, n: u128) -> Option<IpAddr> {
    if v4 {
        u32::try_from(n).ok().map(|n| IpAddr::V4(Ipv4Addr::from(n)))
    } else {
        Some(IpAddr::V6(Ipv6Addr::from(n)))
    }
}

/// A network as (IPv4, first address, last address).
type Bounds = (bool, u128, u128);

/// First and last address of a network.
fn bounds(c: &Cidr) -> Option<Bounds> {
    let net: ipnet::IpNet = c.to_string().parse().ok()?;
    let (v4, lo) = to_u128(net.network());
    let (_, hi) = to_u128(net.broadcast());
    Some((v4, lo, hi))
}

/// The first usable address of a CIDR that no `except` holds: the network address itself for
/// /31, /32, /127 and /128, else the one after it (the last address of an IPv4 network is its
/// broadcast address and not usable).
pub fn first_usable(cidr: &Cidr, except: &[Cidr]) -> Option<IpAddr> {
    let (v4, lo, hi) = bounds(cidr)?;
    let host_bits = if v4 { 32 } else { 128 } - u32::from(cidr.prefix_len());
    let (mut n, last) = match (v4, host_bits) {
        (_, 0 | 1) => (lo, hi),
        (true, _) => (lo + 1, hi - 1),
        (false, _) => (lo + 1, hi),
    };
    for _ in 0..=except.len() {
        let ip = from_u128(v4, n)?;
        match except.iter().find(|e| e.contains_addr(&ip)) {
            None => return (n <= last).then_some(ip),
            Some(e) => {
                let (_, _, ehi) = bounds(e)?;
                n = ehi.checked_add(1)?;
                if n > last {
                    return None;
                }
            }
        }
    }
    None
}

/// Hands out pod addresses outside every CIDR peer.
struct Allocator {
    avoid: Vec<(Cidr, Vec<Cidr>)>,
    used: BTreeSet<IpAddr>,
    pools: Vec<Bounds>,
    pool: usize,
    next: u128,
}

impl Allocator {
    fn new(avoid: Vec<(Cidr, Vec<Cidr>)>, used: BTreeSet<IpAddr>, cluster: &[Cidr]) -> Self {
        // A pool that lies wholly inside an avoided network, with none of its exceptions
        // reaching into the pool, has no address to give: `take` would test every address of
        // its bounded search in vain (a flow from 0.0.0.0/0 avoids every IPv4 address; that
        // search was 40 % of verifying examples/shop.yaml).
        let avoided: Vec<(Bounds, Vec<Bounds>)> = avoid
            .iter()
            .filter_map(|(c, except)| {
                Some((bounds(c)?, except.iter().filter_map(bounds).collect()))
            })
            .collect();
        let hopeless = |&(v4, lo, hi): &Bounds| {
            avoided.iter().any(|&((cv4, clo, chi), ref except)| {
                cv4 == v4
                    && clo <= lo
                    && hi <= chi
                    && !except
                        .iter()
                        .any(|&(ev4, elo, ehi)| ev4 == v4 && elo <= hi && ehi >= lo)
            })
        };
        let pools = cluster
            .iter()
            .filter_map(bounds)
            .filter(|p| !hopeless(p))
            .collect::<Vec<_>>();
        let next = pools.first().map_or(0, |p| p.1 + 1);
        Allocator {
            avoid,
            used,
            pools,
            pool: 0,
            next,
        }
    }

    fn take(&mut self) -> Option<IpAddr> {
        // A bounded search: at most this many addresses per pool, then the next pool.
        const TRIES: u128 = 2048;
        while let Some(&(v4, lo, hi)) = self.pools.get(self.pool) {
            while self.next < hi && self.next - lo <= TRIES {
                let n = self.next;
                self.next += 1;
                let Some(ip) = from_u128(v4, n) else { break };
                if self.used.contains(&ip)
                    || self
                        .avoid
                        .iter()
                        .any(|(c, except)| in_cidr_peer(c, except, &ip))
                {
                    continue;
                }
                self.used.insert(ip);
                return Some(ip);
            }
            self.pool += 1;
            self.next = self.pools.get(self.pool).map_or(0, |p| p.1 + 1);
        }
        None
    }
}

/// A pod to add (see `Builder::pod`).
struct NewPod {
    role: Role,
    namespace: String,
    base: String,
    labels: BTreeMap<String, String>,
    ports: Vec<ContainerPort>,
    /// The table name (default `namespace/name`).
    display: Option<String>,
    about: String,
}

struct Builder<'m> {
    model: &'m AppModel,
    out: Representatives,
    /// Indices of the pod representatives (they get addresses last).
    pods: Vec<usize>,
    names: BTreeSet<(String, String)>,
    displays: BTreeSet<String>,
    made_up: usize,
}

/// The numbered ports a tier serves, as container ports (ranges and names are not container
/// ports; names are added to every pod from [`Representatives::named_ports`]).
fn container_ports(ports: &[Port]) -> Vec<ContainerPort> {
    ports
        .iter()
        .filter_map(|p| {
            Some(ContainerPort {
                name: None,
                port: p.number()?,
                protocol: p.protocol,
            })
        })
        .collect()
}

/// A number for every container port name the model uses, away from every declared number and
/// range (and their neighbours, which `verify` probes too).
fn named_port_numbers(model: &AppModel) -> BTreeMap<(PortName, Protocol), u16> {
    let all: Vec<Port> = model
        .tiers
        .iter()
        .flat_map(|t| t.ports.iter())
        .chain(model.flows.iter().flat_map(|f| f.ports.iter()))
        .copied()
        .collect();
    let taken = |n: u16| {
        all.iter().filter_map(Port::bounds).any(|(a, b)| {
            (u32::from(a).saturating_sub(1)..=u32::from(b) + 1).contains(&u32::from(n))
        })
    };
    let mut out = BTreeMap::new();
    let mut next: u16 = 40000;
    for p in &all {
        let Some(name) = p.name() else { continue };
        if out.contains_key(&(name, p.protocol)) {
            continue;
        }
        // Declared ranges may cover every number (1-65535): then the name shares a number
        // with them rather than searching forever.
        while (taken(next) || taken(next.saturating_add(1))) && next < u16::MAX - 1 {
            next = next.saturating_add(1);
        }
        out.insert((name, p.protocol), next);
        next = next.saturating_add(2);
    }
    out
}

/// A short pod name from labels: the value of `app`, `name` or the first label, else `pod`.
fn pod_base(labels: &BTreeMap<String, String>) -> String {
    let v = ["app", "app.kubernetes.io/name", "name", "k8s-app"]
        .iter()
        .find_map(|k| labels.get(*k))
        .or_else(|| labels.values().next())
        .cloned()
        .unwrap_or_else(|| "pod".to_string());
    let clean: String = v
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let clean = clean.trim_matches('-').to_string();
    if clean.is_empty() {
        "pod".to_string()
    } else {
        clean
    }
}

impl Builder<'_> {
    fn ns_labels(&self, ns: &str) -> BTreeMap<String, String> {
        self.out
            .namespaces
            .get(ns)
            .cloned()
            .unwrap_or_else(|| BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), ns.to_string())]))
    }

    fn namespace(&mut self, name: &str, extra: BTreeMap<String, String>) {
        let labels = self.out.namespaces.entry(name.to_string()).or_default();
        for (k, v) in extra {
            labels.entry(k).or_insert(v);
        }
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
    }

    /// A namespace name not used yet, from `base`.
    fn fresh_namespace(&mut self, base: &str) -> String {
        let taken = |n: &str, b: &Self| {
            b.out.namespaces.contains_key(n)
                || n == b.model.namespace
                || b.model.dns.as_ref().is_some_and(|d| d.namespace == n)
                || b.model.flows.iter().any(|f| {
                    [&f.from, &f.to].into_iter().any(|p| {
                        matches!(p, Peer::Pods { namespaces: NamespaceMatch::Named(x), .. } if x == n)
                    })
                })
        };
        let mut name = base.to_string();
        while taken(&name, self) {
            self.made_up += 1;
            name = format!("{base}-{}", self.made_up);
        }
        name
    }

    fn unique_display(&mut self, wanted: String) -> String {
        let mut name = wanted.clone();
        let mut n = 1;
        while self.displays.contains(&name) {
            n += 1;
            name = format!("{wanted}-{n}");
        }
        self.displays.insert(name.clone());
        name
    }

    /// Adds a pod unless one with the same namespace and labels exists.
    fn pod(&mut self, p: NewPod) {
        let NewPod {
            role,
            namespace,
            base,
            labels,
            ports,
            display,
            about,
        } = p;
        let namespace = namespace.as_str();
        let duplicate = self.out.endpoints.iter().any(|e| match &e.place {
            Place::Pod {
                namespace: n,
                labels: l,
                ..
            } => n == namespace && *l == labels,
            Place::Address(_) => false,
        });
        if duplicate {
            return;
        }
        let mut name = base.clone();
        let mut n = 1;
        while self.names.contains(&(namespace.to_string(), name.clone())) {
            n += 1;
            name = format!("{base}-{n}");
        }
        self.names.insert((namespace.to_string(), name.clone()));
        let display = self.unique_display(display.unwrap_or_else(|| format!("{namespace}/{name}")));
        let mut ports = ports;
        for ((n, protocol), number) in &self.out.named_ports {
            if !ports.iter().any(|c| c.name.as_deref() == Some(n.as_str())) {
                ports.push(ContainerPort {
                    name: Some(n.to_string()),
                    port: *number,
                    protocol: *protocol,
                });
            }
        }
        let index = self.out.endpoints.len();
        self.out.endpoints.push(Representative {
            name: display,
            role,
            place: Place::Pod {
                namespace: namespace.to_string(),
                name: name.clone(),
                labels: labels.clone(),
                ip: None,
                ports: ports.clone(),
            },
            about,
            unchecked: false,
        });
        self.pods.push(index);
    }

    fn address(&mut self, role: Role, ip: IpAddr, about: String) {
        if self
            .out
            .endpoints
            .iter()
            .any(|e| e.place == Place::Address(ip))
        {
            return;
        }
        let display = self.unique_display(ip.to_string());
        self.out.endpoints.push(Representative {
            name: display,
            role,
            place: Place::Address(ip),
            about,
            unchecked: false,
        });
    }

    /// Labels that match `sel` (checked), or `None` with a note.
    fn matching(&mut self, sel: &Selector, what: &str) -> Option<BTreeMap<String, String>> {
        let labels = sel.example_labels();
        if sel.matches(&labels) {
            Some(labels)
        } else {
            self.out.notes.push(format!(
                "{what}: the selector {sel} can match no labels, so it has no representative"
            ));
            None
        }
    }

    /// Labels that do NOT match `sel`.
    fn not_matching(sel: &Selector) -> Option<BTreeMap<String, String>> {
        [
            BTreeMap::new(),
            BTreeMap::from([("tierflow.dev/probe".to_string(), "near-miss".to_string())]),
        ]
        .into_iter()
        .find(|l| !sel.matches(l))
    }

    /// The namespace a pod peer's representative lives in (created as needed).
    fn peer_namespace(&mut self, namespaces: &NamespaceMatch, flow: usize) -> Option<String> {
        match namespaces {
            NamespaceMatch::Own => Some(self.model.namespace.clone()),
            NamespaceMatch::Named(n) => {
                self.namespace(n, BTreeMap::new());
                Some(n.clone())
            }
            NamespaceMatch::Selector(s) => {
                let what = format!("spec.flows[{flow}]: namespaceSelector");
                let labels = self.matching(s, &what)?;
                // An existing namespace the selector already matches will do.
                if let Some(existing) = self
                    .out
                    .namespaces
                    .iter()
                    .find(|(n, l)| *n != &self.model.namespace && s.matches(l))
                    .map(|(n, _)| n.clone())
                {
                    return Some(existing);
                }
                let name = match labels.get(NAMESPACE_NAME_LABEL) {
                    Some(n) => n.clone(),
                    None => self.fresh_namespace("peer-ns"),
                };
                self.namespace(&name, labels);
                if s.matches(&self.ns_labels(&name)) {
                    Some(name)
                } else {
                    self.out.notes.push(format!(
                        "{what}: {s} matches no namespace that can be made up here, so the peer \
                         has no representative"
                    ));
                    None
                }
            }
            NamespaceMatch::All => {
                let existing = self
                    .out
                    .namespaces
                    .keys()
                    .find(|n| n.starts_with("any-ns"))
                    .cloned();
                let name = match existing {
                    Some(n) => n,
                    None => self.fresh_namespace("any-ns"),
                };
                self.namespace(&name, BTreeMap::new());
                Some(name)
            }
        }
    }

    fn build(mut self, options: Options) -> Representatives {
        let model = self.model;
        self.out.named_ports = named_port_numbers(model);
        self.namespace(&model.namespace.clone(), BTreeMap::new());

        // Tiers.
        for (i, t) in model.tiers.iter().enumerate() {
            let what = format!("spec.tiers[{i}] ({})", t.name);
            let Some(labels) = self.matching(&t.selector, &what) else {
                continue;
            };
            let ns = model.namespace.clone();
            self.pod(NewPod {
                role: Role::Tier(i),
                namespace: ns.to_string(),
                base: t.name.clone(),
                labels,
                ports: container_ports(&t.ports),
                display: Some(t.name.clone()),
                about: format!("a pod of tier {} ({}) in {ns}", t.name, t.selector),
            });
        }

        // The other pod.
        let other = [
            BTreeMap::new(),
            BTreeMap::from([("tierflow.dev/probe".to_string(), "other".to_string())]),
            BTreeMap::from([("app".to_string(), "tierflow-other".to_string())]),
        ]
        .into_iter()
        .find(|l| !model.tiers.iter().any(|t| t.selector.matches(l)));
        match other {
            Some(labels) => {
                let ns = model.namespace.clone();
                self.pod(NewPod {
                    role: Role::OtherPod,
                    namespace: ns.to_string(),
                    base: "other".to_string(),
                    labels,
                    ports: Vec::new(),
                    display: None,
                    about: format!("a pod of {ns} in no tier"),
                });
            }
            None => self.out.notes.push(
                "no labels found that no tier selects, so there is no \"other pod\"".to_string(),
            ),
        }

        // DNS.
        let dns = model
            .dns
            .clone()
            .unwrap_or_else(|| crate::model::DnsTarget {
                namespace: crate::vocab::DNS_NAMESPACE.to_string(),
                pods: Selector::labels([(
                    crate::vocab::DNS_LABEL_KEY,
                    crate::vocab::DNS_LABEL_VALUE,
                )]),
                node_local: None,
            });
        self.namespace(&dns.namespace, BTreeMap::new());
        if let Some(labels) = self.matching(&dns.pods, "spec.dns.selector") {
            let ports = vec![
                ContainerPort {
                    name: Some("dns".into()),
                    port: 53,
                    protocol: crate::core::Protocol::Udp,
                },
                ContainerPort {
                    name: Some("dns-tcp".into()),
                    port: 53,
                    protocol: crate::core::Protocol::Tcp,
                },
            ];
            let about = if model.dns.is_some() {
                format!("a DNS pod ({}) in {}", dns.pods, dns.namespace)
            } else {
                format!(
                    "a DNS pod ({}) in {} (DNS is off for this app)",
                    dns.pods, dns.namespace
                )
            };
            self.pod(NewPod {
                role: Role::Dns,
                namespace: dns.namespace.to_string(),
                base: crate::vocab::DNS_LABEL_VALUE.to_string(),
                labels,
                ports,
                display: None,
                about,
            });
        }
        if let Some(addr) = dns.node_local {
            let labels = node_local_dns_labels();
            self.pod(NewPod {
                role: Role::NodeLocalDns,
                namespace: dns.namespace.to_string(),
                base: crate::vocab::NODE_LOCAL_DNS_LABEL_VALUE.to_string(),
                labels,
                ports: vec![
                    ContainerPort {
                        name: Some("dns".into()),
                        port: 53,
                        protocol: crate::core::Protocol::Udp,
                    },
                    ContainerPort {
                        name: Some("dns-tcp".into()),
                        port: 53,
                        protocol: crate::core::Protocol::Tcp,
                    },
                ],
                display: None,
                about: format!(
                    "a NodeLocal DNSCache pod in {} (the cache at {addr})",
                    dns.namespace
                ),
            });
        }

        // Peers, flow by flow.
        let mut cidrs: Vec<(Cidr, Vec<Cidr>)> = Vec::new();
        let mut world = false;
        for f in &model.flows {
            for (side, peer) in [("from", &f.from), ("to", &f.to)] {
                match peer {
                    Peer::Pods { namespaces, pods } => {
                        let Some(ns) = self.peer_namespace(namespaces, f.index) else {
                            continue;
                        };
                        let labels = match pods {
                            Some(s) => {
                                let what = format!("spec.flows[{}].{side}.selector", f.index);
                                match self.matching(s, &what) {
                                    Some(l) => l,
                                    None => continue,
                                }
                            }
                            None => BTreeMap::new(),
                        };
                        let ports = if side == "to" {
                            container_ports(&f.ports)
                        } else {
                            Vec::new()
                        };
                        let about = format!(
                            "a pod of the {side} peer of spec.flows[{}] ({})",
                            f.index,
                            describe_pods(model, namespaces, pods.as_ref())
                        );
                        self.pod(NewPod {
                            role: Role::Peer(f.index),
                            namespace: ns.to_string(),
                            base: pod_base(&labels),
                            labels,
                            ports,
                            display: None,
                            about,
                        });
                    }
                    Peer::Cidr { cidr, except } => {
                        cidrs.push((*cidr, except.clone()));
                        match first_usable(cidr, except) {
                            Some(ip) => self.address(
                                Role::Cidr(f.index),
                                ip,
                                format!(
                                    "an address of the {side} peer of spec.flows[{}] ({})",
                                    f.index,
                                    describe_cidr(cidr, except)
                                ),
                            ),
                            None => self.out.notes.push(format!(
                                "spec.flows[{}].{side}: {} has no address outside its except \
                                 list, so it has no representative",
                                f.index,
                                describe_cidr(cidr, except)
                            )),
                        }
                    }
                    Peer::World => world = true,
                    Peer::Fqdn(name) => self.out.notes.push(format!(
                        "spec.flows[{}].{side}: fqdn {name:?} is not checkable offline (no DNS \
                         here); its flow is not simulated",
                        f.index
                    )),
                    Peer::Tier(_) | Peer::KubeApiServer => {}
                }
            }
        }

        if options.near_misses {
            self.near_misses(&cidrs);
        }

        let cluster = assumed_cluster(&options.cluster_cidrs);
        if world {
            for v4 in [true, false] {
                if !cluster.iter().any(|c| c.is_ipv4() == v4) {
                    continue;
                }
                let used: BTreeSet<IpAddr> = self
                    .out
                    .endpoints
                    .iter()
                    .filter_map(|e| match e.place {
                        Place::Address(ip) => Some(ip),
                        Place::Pod { .. } => None,
                    })
                    .collect();
                if let Some(ip) = outside(v4, &cluster, &used) {
                    let family = if v4 { "IPv4" } else { "IPv6" };
                    self.address(
                        Role::World,
                        ip,
                        format!("an {family} address outside the cluster (world)"),
                    );
                }
            }
        }
        self.out.cluster_cidrs = cluster.clone();
        if world {
            for e in &mut self.out.endpoints {
                if let Place::Address(ip) = e.place {
                    if cluster.iter().any(|c| c.contains_addr(&ip)) {
                        e.unchecked = true;
                    }
                }
            }
        }

        // Addresses: pods avoid every CIDR peer; the API server is one more such address.
        let used: BTreeSet<IpAddr> = self
            .out
            .endpoints
            .iter()
            .filter_map(|e| match e.place {
                Place::Address(ip) => Some(ip),
                Place::Pod { .. } => None,
            })
            .collect();
        let mut alloc = Allocator::new(cidrs, used, &cluster);
        let mut missing = false;
        let pods = std::mem::take(&mut self.pods);
        self.out.twin_ips = vec![None; self.out.endpoints.len()];
        for index in &pods {
            let ip = alloc.take();
            missing |= ip.is_none();
            if let Some(Representative {
                place: Place::Pod { ip: slot, .. },
                ..
            }) = self.out.endpoints.get_mut(*index)
            {
                *slot = ip;
            }
            if let Some(slot) = self.out.twin_ips.get_mut(*index) {
                *slot = ip.and_then(|_| alloc.take());
            }
        }
        if missing {
            self.out.notes.push(
                "the CIDR peers cover every address pods could be given here, so some pods have \
                 no address (ipBlock rules cannot match them)"
                    .to_string(),
            );
        }
        if model
            .flows
            .iter()
            .any(|f| matches!(f.to, Peer::KubeApiServer))
        {
            match alloc.take() {
                Some(ip) => {
                    self.out.api_server = Some((ip, API_SERVER_PORT));
                    self.address(
                        Role::ApiServer,
                        ip,
                        format!("the Kubernetes API server (made up: {ip}:{API_SERVER_PORT}, TCP)"),
                    );
                }
                None => self
                    .out
                    .notes
                    .push("no address left for the API server".to_string()),
            }
        }
        self.out
    }

    fn near_misses(&mut self, cidrs: &[(Cidr, Vec<Cidr>)]) {
        let model = self.model;
        let elsewhere = self.fresh_namespace("elsewhere");
        self.namespace(&elsewhere, BTreeMap::new());
        for (i, t) in model.tiers.iter().enumerate() {
            let labels = t.selector.example_labels();
            if t.selector.matches(&labels) {
                self.pod(NewPod {
                    role: Role::NearMiss,
                    namespace: elsewhere.to_string(),
                    base: t.name.clone(),
                    labels,
                    ports: container_ports(&t.ports),
                    display: None,
                    about: format!(
                        "a pod labelled like tier {} in another namespace (spec.tiers[{i}])",
                        t.name
                    ),
                });
            }
        }
        for f in &model.flows {
            for (side, peer) in [("from", &f.from), ("to", &f.to)] {
                let Peer::Pods { namespaces, pods } = peer else {
                    continue;
                };
                if let Some(sel) = pods {
                    // The peer's pods, in a namespace the peer does not select.
                    let labels = sel.example_labels();
                    if sel.matches(&labels) && !matches!(namespaces, NamespaceMatch::All) {
                        self.pod(NewPod {
                            role: Role::NearMiss,
                            namespace: elsewhere.to_string(),
                            base: pod_base(&labels),
                            labels,
                            ports: Vec::new(),
                            display: None,
                            about: format!(
                                "pods like the {side} peer of spec.flows[{}], in a namespace it \
                                 does not select",
                                f.index
                            ),
                        });
                    }
                    // Other pods of the peer's namespace.
                    if !matches!(namespaces, NamespaceMatch::Own) {
                        let ns = self
                            .out
                            .endpoints
                            .iter()
                            .find(|e| e.role == Role::Peer(f.index))
                            .and_then(|e| match &e.place {
                                Place::Pod { namespace, .. } => Some(namespace.clone()),
                                Place::Address(_) => None,
                            });
                        if let (Some(ns), Some(labels)) = (ns, Self::not_matching(sel)) {
                            self.pod(NewPod {
                                role: Role::NearMiss,
                                namespace: ns.to_string(),
                                base: "unselected".to_string(),
                                labels,
                                ports: Vec::new(),
                                display: None,
                                about: format!(
                                    "a pod of the {side} peer's namespace of spec.flows[{}] \
                                     without its pod labels",
                                    f.index
                                ),
                            });
                        }
                    }
                }
            }
        }
        for (c, except) in cidrs {
            if let Some(ip) = except.first().and_then(|e| first_usable(e, &[])) {
                self.address(
                    Role::NearMiss,
                    ip,
                    format!(
                        "an address in the except list of {}",
                        describe_cidr(c, except)
                    ),
                );
            }
            if let Some((v4, _, hi)) = bounds(c) {
                if let Some(ip) = hi.checked_add(1).and_then(|n| from_u128(v4, n)) {
                    self.address(Role::NearMiss, ip, format!("the address after {c}"));
                }
            }
        }
    }
}

fn describe_cidr(cidr: &Cidr, except: &[Cidr]) -> String {
    if except.is_empty() {
        cidr.to_string()
    } else {
        let ex: Vec<String> = except.iter().map(ToString::to_string).collect();
        format!("{cidr} except {}", ex.join(", "))
    }
}

fn describe_pods(model: &AppModel, namespaces: &NamespaceMatch, pods: Option<&Selector>) -> String {
    let ns = match namespaces {
        NamespaceMatch::Own => format!("namespace {}", model.namespace),
        NamespaceMatch::Named(n) => format!("namespace {n}"),
        NamespaceMatch::Selector(s) => format!("namespaces {s}"),
        NamespaceMatch::All => "every namespace".to_string(),
    };
    match pods {
        Some(s) => format!("{ns}, pods {s}"),
        None => format!("{ns}, every pod"),
    }
}

/// The labels of a NodeLocal DNSCache pod.
pub fn node_local_dns_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(
        crate::vocab::NODE_LOCAL_DNS_LABEL_KEY.to_string(),
        crate::vocab::NODE_LOCAL_DNS_LABEL_VALUE.to_string(),
    )])
}

/// Builds the representatives of an AppNetwork (see the module documentation).
pub fn representatives(model: &AppModel, options: Options) -> Representatives {
    Builder {
        model,
        out: Representatives::default(),
        pods: Vec::new(),
        names: BTreeSet::new(),
        displays: BTreeSet::new(),
        made_up: 0,
    }
    .build(options)
}

/// The rendered objects and the representatives in one engine scenario. Every pod
/// representative has a twin (a second replica with the same labels), so that a connection
/// from an endpoint to itself means "to another pod like it".
#[derive(Clone, Debug)]
pub struct Simulation {
    /// The scenario.
    pub scenario: Scenario,
    endpoints: Vec<Endpoint>,
    twins: Vec<Option<Endpoint>>,
}

impl Simulation {
    /// The engine endpoints for a connection between representatives `from` and `to` (the
    /// twin of `to` when they are the same pod); `None` for an address to itself.
    pub fn pair(&self, from: usize, to: usize) -> Option<(Endpoint, Endpoint)> {
        let src = *self.endpoints.get(from)?;
        if from == to {
            return Some((src, (*self.twins.get(to)?)?));
        }
        Some((src, *self.endpoints.get(to)?))
    }
}

impl Representatives {
    /// The renderer environment: the made-up API server endpoint and the cluster's ranges.
    pub fn env(&self) -> Env {
        Env {
            api_server: self.api_server.into_iter().collect(),
            cluster_cidrs: self.cluster_cidrs.clone(),
        }
    }

    /// Namespace labels of `ns` (only `kubernetes.io/metadata.name` for unknown namespaces).
    pub fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(ns)
            .cloned()
            .unwrap_or_else(|| BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), ns.to_string())]))
    }

    /// The index of the representative called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.name == name)
    }

    /// Reads `objects` into a scenario and adds the namespaces and pods (with twins).
    pub fn simulation(&self, objects: Vec<Value>) -> Result<Simulation, EngineError> {
        let mut scenario = Scenario::from_values(objects)?;
        scenario.set_cilium_identity_filter(self.cilium_identity.clone());
        for (ns, labels) in &self.namespaces {
            scenario.add_namespace(ns, labels.clone());
        }
        let mut endpoints = Vec::with_capacity(self.endpoints.len());
        let mut twins = Vec::with_capacity(self.endpoints.len());
        for (i, e) in self.endpoints.iter().enumerate() {
            match &e.place {
                Place::Pod {
                    namespace,
                    name,
                    labels,
                    ip,
                    ports,
                } => {
                    let pod = Pod {
                        namespace: namespace.clone(),
                        name: name.clone(),
                        labels: labels.clone(),
                        ips: ip.iter().copied().collect(),
                        ports: ports.clone(),
                        service_account: None,
                    };
                    endpoints.push(Endpoint::Pod(scenario.pods().len()));
                    scenario.add_pod(pod.clone());
                    // Generated pod names never contain '.', so the twin's cannot collide.
                    let twin = Pod {
                        name: format!("{name}.replica"),
                        ips: self
                            .twin_ips
                            .get(i)
                            .copied()
                            .flatten()
                            .into_iter()
                            .collect(),
                        ..pod
                    };
                    twins.push(Some(Endpoint::Pod(scenario.pods().len())));
                    scenario.add_pod(twin);
                }
                Place::Address(ip) => {
                    endpoints.push(Endpoint::Ip(*ip));
                    twins.push(None);
                }
            }
        }
        Ok(Simulation {
            scenario,
            endpoints,
            twins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn first_usable_skips_network_addresses_and_excepts() {
        assert_eq!(
            first_usable(&cidr("203.0.113.0/24"), &[]),
            Some("203.0.113.1".parse().unwrap())
        );
        assert_eq!(
            first_usable(&cidr("198.51.100.7/32"), &[]),
            Some("198.51.100.7".parse().unwrap())
        );
        assert_eq!(
            first_usable(&cidr("0.0.0.0/0"), &[cidr("0.0.0.0/8")]),
            Some("1.0.0.0".parse().unwrap())
        );
        assert_eq!(
            first_usable(&cidr("10.0.0.0/30"), &[cidr("10.0.0.0/31")]),
            Some("10.0.0.2".parse().unwrap())
        );
        assert_eq!(
            first_usable(&cidr("10.0.0.0/31"), &[cidr("10.0.0.0/31")]),
            None
        );
        assert_eq!(
            first_usable(&cidr("2001:db8::/32"), &[]),
            Some("2001:db8::1".parse().unwrap())
        );
    }
}
