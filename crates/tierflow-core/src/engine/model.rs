//! The compiled, flavour-independent policy model every input kind is translated into, the
//! namespaces and pods it is evaluated on, and the evaluation [`Mode`] (kept here rather than
//! in the engine's root so that the readers and the index need nothing from it: `mod.rs` only
//! uses its children, never the other way round).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::core::{Cidr, Protocol, Selector};

use super::calico_selector::CalicoSelector;

/// How policies are evaluated (serialised lower-case); see the engine's module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plain Kubernetes NetworkPolicy.
    #[default]
    Kubernetes,
    /// Calico (ordered policies, Allow/Deny/Pass/Log, end-of-tier deny).
    Calico,
    /// Cilium (union of allows, deny wins).
    Cilium,
}

impl Mode {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Kubernetes => "kubernetes",
            Mode::Calico => "calico",
            Mode::Cilium => "cilium",
        }
    }
}

/// A namespace and its labels (always including `kubernetes.io/metadata.name`).
#[derive(Clone, Debug)]
pub(crate) struct Namespace {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// Index of a peer in `Scenario::peers`.
pub(crate) type PeerId = u32;

/// Which API a policy came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `networking.k8s.io/v1` NetworkPolicy.
    Kubernetes,
    /// `projectcalico.org/v3` NetworkPolicy / GlobalNetworkPolicy.
    Calico,
    /// `cilium.io/v2` CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy.
    Cilium,
    /// `policy.networking.k8s.io/v1alpha2` ClusterNetworkPolicy (evaluated by `cnp.rs`).
    ClusterNetworkPolicy,
}

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Allow the connection.
    Allow,
    /// Deny the connection.
    Deny,
    /// Calico: skip the remaining policies of the tier.
    Pass,
    /// Calico: log and continue.
    Log,
}

/// A Calico `Tier` (`projectcalico.org/v3`, Calico v3.29+).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TierDef {
    /// `spec.order` (`None`: after every ordered tier).
    pub order: Option<f64>,
    /// `spec.defaultAction` is `Pass` (default `Deny`): the end of the tier goes on to the
    /// next tier instead of denying.
    pub pass: bool,
}

/// A destination port condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PortVal {
    /// Every port.
    Any,
    /// `lo..=hi`.
    Range(u16, u16),
    /// A container port name, resolved on the destination pod.
    Named(String),
}

/// One entry of a rule's port list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PortSpec {
    /// Protocol (`None`: any).
    pub proto: Option<Protocol>,
    /// Port(s).
    pub val: PortVal,
}

/// A Kubernetes pod peer's namespace condition.
#[derive(Clone, Debug)]
pub(crate) enum K8sNs {
    /// The policy's own namespace (a `podSelector`-only peer).
    Own(String),
    /// Namespaces matching a selector (`{}`: every namespace).
    Selector(Selector),
}

/// A Calico entity rule (`source` / `destination`); every condition present must hold.
#[derive(Clone, Debug)]
pub(crate) struct CalicoEntity {
    /// For a namespaced policy without `namespaceSelector`: when `selector` or `notSelector` is
    /// set, only endpoints of this namespace match (libcalico-go's `GetEntityRuleSelector`
    /// adds `projectcalico.org/namespace == '<ns>'` as the positive selector).
    pub scope: Option<String>,
    /// `selector`.
    pub selector: Option<CalicoSelector>,
    /// `notSelector`.
    pub not_selector: Option<CalicoSelector>,
    /// `namespaceSelector`.
    pub namespace_selector: Option<CalicoSelector>,
    /// `nets` (empty: no condition).
    pub nets: Vec<Cidr>,
    /// `notNets`.
    pub not_nets: Vec<Cidr>,
    /// `serviceAccounts` (`None`: absent, or with neither names nor a selector, which
    /// libcalico-go's `parseServiceAccounts` turns into no condition).
    pub service_accounts: Option<Box<SaMatch>>,
}

/// A Calico `serviceAccounts` match (projectcalico/calico @ 87c15906
/// `libcalico-go/lib/backend/syncersv1/updateprocessors/rules.go` lines 218-247): the
/// selector is evaluated on the service account's labels, `projectcalico.org/name` being its
/// name (`pcsa.` labels, `backend/k8s/conversion/conversion.go` lines 739-750); the names
/// become `projectcalico.org/serviceaccount in {...}` on the endpoint; both must hold.
#[derive(Clone, Debug)]
pub(crate) struct SaMatch {
    /// `names` (empty: no condition).
    pub names: Vec<String>,
    /// `selector`.
    pub selector: Option<CalicoSelector>,
}

/// A Cilium entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entity {
    /// Everything: pods and addresses outside the cluster.
    All,
    /// Addresses outside the cluster (any non-pod address).
    World,
    /// IPv4 addresses outside the cluster.
    WorldV4,
    /// IPv6 addresses outside the cluster.
    WorldV6,
    /// Every pod (the engine models no nodes).
    Cluster,
    /// Entities the engine does not model (host, remote-node, kube-apiserver, ...).
    Nothing,
}

/// One alternative of a peer (a peer matches when any alternative does).
#[derive(Clone, Debug)]
pub(crate) enum Alt {
    /// Kubernetes pod peer: namespace condition AND pod condition.
    K8sPods {
        /// Namespaces.
        namespaces: K8sNs,
        /// Pods in them (`None`: all).
        pods: Option<Selector>,
    },
    /// Kubernetes `ipBlock`.
    K8sBlock {
        /// The block.
        cidr: Cidr,
        /// Carved out of it.
        except: Vec<Cidr>,
    },
    /// Calico entity rule.
    Calico(CalicoEntity),
    /// Cilium endpoint selector over Cilium's pod labels.
    CiliumEndpoints {
        /// `Some(ns)`: only pods of that namespace (namespaced policy, no namespace label used).
        namespace: Option<String>,
        /// Selector with `k8s:` / `any:` prefixes removed.
        selector: Selector,
    },
    /// Cilium `toCIDR` / `toCIDRSet` (never matches pods, as in Cilium).
    CiliumCidr {
        /// The block.
        cidr: Cidr,
        /// Carved out of it.
        except: Vec<Cidr>,
    },
    /// Cilium entity.
    CiliumEntity(Entity),
}

/// A peer: the union of its alternatives.
#[derive(Clone, Debug, Default)]
pub(crate) struct Peer {
    /// Alternatives.
    pub alts: Vec<Alt>,
}

fn in_block(ip: &IpAddr, cidr: &Cidr, except: &[Cidr]) -> bool {
    cidr.contains_addr(ip) && !except.iter().any(|e| e.contains_addr(ip))
}

impl Alt {
    /// Whether an address that belongs to no pod matches.
    pub fn matches_external(&self, ip: &IpAddr) -> bool {
        match self {
            Alt::K8sPods { .. } | Alt::CiliumEndpoints { .. } => false,
            Alt::K8sBlock { cidr, except } | Alt::CiliumCidr { cidr, except } => {
                in_block(ip, cidr, except)
            }
            Alt::Calico(e) => {
                // Any selector makes the rule match endpoints only; in a namespaced policy a
                // notSelector brings the namespace selector with it.
                e.selector.is_none()
                    && e.service_accounts.is_none()
                    && e.namespace_selector.is_none()
                    && !(e.scope.is_some() && e.not_selector.is_some())
                    && (e.nets.is_empty() || e.nets.iter().any(|n| n.contains_addr(ip)))
                    && !e.not_nets.iter().any(|n| n.contains_addr(ip))
            }
            Alt::CiliumEntity(ent) => match ent {
                Entity::All | Entity::World => true,
                Entity::WorldV4 => ip.is_ipv4(),
                Entity::WorldV6 => ip.is_ipv6(),
                Entity::Cluster | Entity::Nothing => false,
            },
        }
    }
}

/// Who a policy applies to.
#[derive(Clone, Debug)]
pub(crate) enum Subject {
    /// Kubernetes: pods of `namespace` matching `pods`.
    K8s {
        /// The policy's namespace.
        namespace: String,
        /// `podSelector`.
        pods: Selector,
    },
    /// Calico: `selector` (within `namespace` for a namespaced policy) and, for a global
    /// policy, `namespaceSelector`.
    Calico {
        /// The policy's namespace (`None`: global).
        namespace: Option<String>,
        /// `selector`.
        selector: CalicoSelector,
        /// `namespaceSelector` (global policies).
        namespaces: Option<CalicoSelector>,
        /// `serviceAccountSelector`, on the labels of the pod's service account.
        service_accounts: Option<CalicoSelector>,
    },
    /// Cilium: `endpointSelector` over Cilium's pod labels (within `namespace` for a CNP).
    Cilium {
        /// The policy's namespace (`None`: clusterwide).
        namespace: Option<String>,
        /// `endpointSelector`, prefixes removed.
        selector: Selector,
    },
    /// Selects no pod (host-endpoint or node policies, service-account selectors).
    Nothing,
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    /// Field path, for example `spec.ingress[0]`.
    pub path: String,
    /// Index within its list.
    pub index: usize,
    /// What it does.
    pub action: Action,
    /// Condition on the source endpoint (`None`: any).
    pub src: Option<PeerId>,
    /// Condition on the destination endpoint (`None`: any).
    pub dst: Option<PeerId>,
    /// IP protocol number the connection must use.
    pub protocol: Option<u8>,
    /// IP protocol number the connection must not use.
    pub not_protocol: Option<u8>,
    /// IP version (4 or 6) the connection must use.
    pub ip_version: Option<u8>,
    /// Destination ports (`None`: any).
    pub ports: Option<Vec<PortSpec>>,
    /// Destination ports that must not match.
    pub not_ports: Vec<PortSpec>,
    /// The rule holds a condition the engine cannot evaluate offline (FQDNs, services, source
    /// ports, service accounts, ...) or selects nothing at all: it never matches.
    pub never: bool,
}

/// A policy's rules for one direction.
#[derive(Clone, Debug, Default)]
pub(crate) struct Section {
    /// Rules in order (Kubernetes and Cilium: all `Allow`).
    pub rules: Vec<Rule>,
    /// Cilium `ingressDeny` / `egressDeny`.
    pub deny: Vec<Rule>,
    /// Whether selecting a pod isolates it in this direction.
    pub isolates: bool,
}

/// A compiled policy (a Cilium policy with `specs` becomes one per spec).
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    /// Kind, for messages.
    pub kind: &'static str,
    /// The object it was read from, as verdicts name it (set by `parse::parse_object`).
    pub origin: PolicyRef,
    /// Which API.
    pub flavor: Flavor,
    /// `ns/name`, or `name` for cluster-scoped kinds (borrowed by every verdict naming it).
    pub display: PolicyName,
    /// `metadata.namespace` (namespaced kinds).
    pub namespace: Option<String>,
    /// Calico `order` (Kubernetes policies in Calico: 1000).
    pub order: Option<f64>,
    /// Calico `spec.tier` (`None`: the `default` tier; Kubernetes policies are there too).
    pub tier: Option<String>,
    /// Whom it selects.
    pub subject: Subject,
    /// Field path of the selector behind `subject`, for example `spec.podSelector`.
    pub selector_path: String,
    /// `Some` when the policy applies to ingress.
    pub ingress: Option<Section>,
    /// `Some` when the policy applies to egress.
    pub egress: Option<Section>,
}

/// A policy's display name (`ns/name`, or `name` for a cluster-scoped kind) as verdicts list it
/// ([`Verdict::decided_by`] borrows it from the scenario). Names of up to
/// [`PolicyName::INLINE`] bytes (most) are kept inline, so a copy touches no reference count;
/// longer ones are shared. Compares, orders, hashes, displays, borrows and serialises as the
/// string, whichever the form.
///
/// [`Verdict::decided_by`]: crate::engine::Verdict::decided_by
#[derive(Clone)]
pub struct PolicyName(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; PolicyName::INLINE],
    },
    Shared(Arc<str>),
}

impl PolicyName {
    /// The longest name kept inline.
    pub const INLINE: usize = 30;

    /// The name.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always a whole `str` copied in (see `from`), so always valid.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Shared(s) => s,
        }
    }
}

impl From<&str> for PolicyName {
    fn from(s: &str) -> Self {
        if s.len() <= PolicyName::INLINE {
            let mut bytes = [0u8; PolicyName::INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            PolicyName(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            PolicyName(Repr::Shared(s.into()))
        }
    }
}

impl From<String> for PolicyName {
    fn from(s: String) -> Self {
        PolicyName::from(s.as_str())
    }
}

impl std::ops::Deref for PolicyName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for PolicyName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for PolicyName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for PolicyName {}

impl PartialOrd for PolicyName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PolicyName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for PolicyName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl serde::Serialize for PolicyName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for PolicyName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for PolicyName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for PolicyName {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

/// A policy object, as verdicts name it: its kind, namespace and name, and whether tierflow
/// manages it. Serialised camelCase (`namespace` left out for cluster-scoped kinds); displayed
/// as `ns/name`, or `name` for a cluster-scoped kind (the form of [`Verdict::decided_by`]).
///
/// [`Verdict::decided_by`]: crate::engine::Verdict::decided_by
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    /// `NetworkPolicy` for a `networking.k8s.io/v1` NetworkPolicy; any other kind qualified by
    /// the apiVersion it was read as, for example `projectcalico.org/v3 NetworkPolicy` or
    /// `cilium.io/v2 CiliumNetworkPolicy`.
    pub kind: String,
    /// `metadata.namespace` (`default` when absent); `None` for cluster-scoped kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// Whether the object carries the label
    /// [`MANAGED_BY`](crate::vocab::MANAGED_BY)`=`[`MANAGER`](crate::vocab::MANAGER): it is
    /// one of tierflow's own.
    pub managed: bool,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// IANA protocol number of a transport protocol.
pub(crate) fn proto_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

/// A container port of a pod.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerPort {
    /// `name`, which policies may use instead of the number.
    pub name: Option<String>,
    /// `containerPort`.
    pub port: u16,
    /// `protocol` (default TCP).
    pub protocol: Protocol,
}

/// A pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The pod's addresses, one per family on a dual-stack cluster (`status.podIPs`, the
    /// primary first; needed for ipBlock / CIDR / nets rules to match it, on any of them).
    pub ips: Vec<IpAddr>,
    /// Container ports (needed for named ports).
    pub ports: Vec<ContainerPort>,
    /// `spec.serviceAccountName` (`None`: `default`, what the API server's ServiceAccount
    /// admission sets).
    pub service_account: Option<String>,
}

impl Pod {
    /// The pod's service account name.
    pub fn service_account(&self) -> &str {
        self.service_account.as_deref().unwrap_or("default")
    }
}

impl Pod {
    /// The primary address (`status.podIP`), if any.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ips.first().copied()
    }

    /// Whether any of the pod's addresses satisfies `f`.
    pub fn any_ip(&self, f: impl Fn(&IpAddr) -> bool) -> bool {
        self.ips.iter().any(f)
    }
}

/// A traffic direction, seen from the pod a policy selects (serialised lower-case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic arriving at the pod.
    Ingress,
    /// Traffic leaving the pod.
    Egress,
}

/// What a policy did to a connection (serialised camelCase: `allow`, `defaultDeny`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Effect {
    /// A rule allowed it.
    Allow,
    /// A rule denied it.
    Deny,
    /// A Calico Pass rule sent it on to the next tier (after the last tier: to the allowing
    /// profile).
    Pass,
    /// The policy isolated the pod and nothing allowed the connection.
    DefaultDeny,
}

/// One end of a connection being evaluated: a pod (index into the pods) or an address that
/// belongs to no pod.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ep {
    /// A pod.
    Pod(usize),
    /// An address outside the pods.
    Ip(IpAddr),
}

/// A connection being evaluated.
pub(crate) struct Conn {
    /// Source.
    pub src: Ep,
    /// Destination.
    pub dst: Ep,
    /// Destination port.
    pub port: u16,
    /// Transport protocol.
    pub proto: Protocol,
    /// IP family (4 or 6) when some end has an address.
    pub family: Option<u8>,
}

/// Records which rules decided (or nothing, when only the answer is wanted).
pub(crate) trait Trace<'a> {
    /// Whether every deciding rule is wanted (not only the first).
    const ALL: bool;
    /// Records that `rule` of policy `policy` (or its default deny) had `effect`.
    fn record(&mut self, policy: u32, dir: Direction, rule: Option<&'a Rule>, effect: Effect);
}

/// The section of policy `pid` for `dir`, if it applies to that direction.
pub(crate) fn section(policies: &[Policy], pid: u32, dir: Direction) -> Option<&Section> {
    let p = policies.get(pid as usize)?;
    match dir {
        Direction::Ingress => p.ingress.as_ref(),
        Direction::Egress => p.egress.as_ref(),
    }
}

/// Whether a port condition matches the connection (a named port is resolved on the
/// destination pod's container ports, and never matches an address).
pub(crate) fn port_matches(pods: &[Pod], spec: &PortSpec, conn: &Conn) -> bool {
    if spec.proto.is_some_and(|p| p != conn.proto) {
        return false;
    }
    match &spec.val {
        PortVal::Any => true,
        PortVal::Range(lo, hi) => (*lo..=*hi).contains(&conn.port),
        PortVal::Named(name) => match conn.dst {
            Ep::Pod(d) => pods.get(d).is_some_and(|pod| {
                pod.ports.iter().any(|cp| {
                    cp.name.as_deref() == Some(name.as_str())
                        && cp.port == conn.port
                        && cp.protocol == conn.proto
                })
            }),
            Ep::Ip(_) => false,
        },
    }
}

#[cfg(test)]
mod policy_name_tests {
    use super::PolicyName;

    #[test]
    fn short_and_long_names_read_compare_and_serialise_as_their_strings() {
        let short = "prod/web";
        let long = "a-namespace-with-a-long-name/tierflow-shop-frontend";
        assert!(long.len() > PolicyName::INLINE && short.len() <= PolicyName::INLINE);
        let edge = "x".repeat(PolicyName::INLINE);
        for s in [short, long, edge.as_str(), "", "ns/naïve-ünïcode"] {
            let n = PolicyName::from(s);
            assert_eq!(n.as_str(), s);
            assert_eq!(n, s);
            assert_eq!(n, PolicyName::from(s.to_string()));
            assert_eq!(n.to_string(), s);
            assert_eq!(format!("{n:?}"), format!("{s:?}"));
            assert_eq!(
                serde_json::to_string(&n).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
        let (a, b) = (PolicyName::from(short), PolicyName::from(long));
        assert_eq!(a.cmp(&b), short.cmp(long));
        assert_eq!([a, b].join(", "), format!("{short}, {long}"));
    }
}
