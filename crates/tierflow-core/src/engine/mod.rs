//! A kube-free network policy engine: given namespaces, pods and policies (Kubernetes
//! NetworkPolicy, Calico `projectcalico.org/v3` policies, Cilium `cilium.io/v2` policies), it
//! decides whether a connection is allowed and which policies decided it.
//!
//! # Input
//! [`Scenario::from_values`] reads `serde_json::Value` objects, dispatching on apiVersion and
//! kind: `v1` Namespace, Pod and any `*List` with `items`; `networking.k8s.io/v1`
//! NetworkPolicy; `projectcalico.org/v3` (or `crd.projectcalico.org/v1`) NetworkPolicy,
//! GlobalNetworkPolicy, and the `Staged*` kinds (read, never enforced, listed by
//! [`Scenario::staged_policies`]); `cilium.io/v2` CiliumNetworkPolicy and
//! CiliumClusterwideNetworkPolicy; `policy.networking.k8s.io/v1alpha2` ClusterNetworkPolicy
//! (evaluated in every mode, around the others: see `cnp.rs`). Anything else is an [`EngineError::UnknownKind`]; `null`
//! (an empty YAML document) is skipped but still counts for document numbers.
//! Every namespace carries `kubernetes.io/metadata.name: <name>`, as the API server (1.21+)
//! sets it; a pod whose namespace was never declared gets a namespace with only that label.
//!
//! # Mode
//! If the input holds any Cilium policy, everything is evaluated with Cilium semantics; else,
//! if it holds any Calico policy (staged ones included), with Calico semantics; else with
//! plain Kubernetes semantics ([`Scenario::mode`]).
//!
//! # Kubernetes semantics (`networking.k8s.io/v1`)
//! - A pod is isolated for a direction once a policy selecting it has that direction in
//!   `policyTypes`. Absent (or empty) `policyTypes` defaults as the API server does: Ingress
//!   always, Egress when `egress` has at least one rule (so `egress: []` alone does not make
//!   an egress policy): `SetDefaults_NetworkPolicy` in `pkg/apis/networking/v1/defaults.go`
//!   tests `len(spec.egress) != 0`.
//! - Allows are a union over every policy selecting the pod. Within a rule, peers are OR'ed;
//!   a peer with `namespaceSelector` and `podSelector` is AND; `podSelector` alone means the
//!   policy's namespace; `namespaceSelector: {}` means every namespace. Absent or empty
//!   `from` / `to` means every source / destination (pods and addresses); absent or empty
//!   `ports` means every port; an absent `ingress` with Ingress in `policyTypes` denies all.
//! - Ports: a number (with optional `endPort`) or a name, resolved on the destination pod's
//!   container ports (for ingress the selected pod, for egress the peer); protocol defaults to
//!   TCP. A named port never matches an address outside the pods.
//! - `ipBlock` (with `except`) matches addresses, and also pods whose IP lies in it: what most
//!   CNIs (Calico among them) do for pod-to-pod traffic; the API leaves it to the plugin. In
//!   Cilium mode an `ipBlock` does not match pods, as Cilium implements it with CIDR rules.
//!
//! # Calico semantics (tiers)
//! As felix renders an endpoint's chains (projectcalico/calico @ 87c15906
//! `felix/rules/endpoints.go` lines 612-760, `felix/calc/policy_sorter.go`; tiers exist from
//! Calico v3.29): the tiers that have a policy selecting the endpoint for the direction, in
//! tier order (`Tier` objects by `order`, then name; a tier without `order` after those with
//! one; the `default` tier is order 1,000,000 unless the input has its `Tier`; a tier named by
//! a policy but with no `Tier` object after all of them). In a tier, its policies by `order`
//! (lower first; no `order` last; equal orders by name as Calico v3.32+ does, see
//! `index::TieBreak`); Kubernetes NetworkPolicies are in the `default` tier with order 1000
//! and Allow rules only. Rules are evaluated in order: the first Allow or Deny decides, Pass
//! skips the rest of the tier to the next tier, Log continues. A tier none of whose rules
//! decided or passed ends with its `defaultAction`: Deny (the default: the end-of-tier deny,
//! which is also what turns a Kubernetes NetworkPolicy's allow list into "deny everything
//! else") or Pass (on to the next tier). After the last tier, the Kubernetes profile allows;
//! so does it when no tier selects the endpoint. Staged policies take no part. See
//! `calico.rs` for field-level choices (named ports without protocol among them).
//!
//! # Cilium semantics
//! An endpoint is isolated in a direction when a policy selecting it has rules (allow or deny)
//! for that direction and does not set `enableDefaultDeny` false for it; Kubernetes
//! NetworkPolicies isolate as in Kubernetes. Deny rules win over any allow; allows are a union
//! over Cilium and Kubernetes policies. See `cilium.rs` for what the documentation says and
//! the field-level choices. (Calico policies in a Cilium-mode input are evaluated the same way:
//! their Deny rules win, their Allow rules join the union, Pass and Log do nothing.)
//!
//! # Connections
//! A connection is allowed when egress is allowed at the source (if it is a pod) and ingress at
//! the destination (if it is a pod). An [`Endpoint::Ip`] that is some pod's IP is that pod.

mod calico;
pub(crate) mod calico_selector;
#[cfg(test)]
mod calico_tiers;
mod cilium;
mod cnp;
mod error;
mod identity;
mod index;
mod json;
mod model;
#[cfg(test)]
pub(crate) mod netpol_e2e;
mod parse;
mod read;
#[cfg(test)]
mod tests;
mod verdict;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::OnceLock;

use crate::core::Protocol;

pub use error::EngineError;
pub use model::{ContainerPort, Direction, Effect, Mode, Pod, PolicyName, PolicyRef};
use verdict::PolicyIds;
pub use verdict::{DecidedBy, Names, Verdict};

pub(crate) use model::{
    Action, Alt, Entity, Flavor, K8sNs, Policy, PortVal, Rule, Section, Subject,
};

pub use cilium::{identity_filter_pattern, identity_relevant as cilium_identity_relevant};
pub use identity::{CiliumIdentityFilter, IdentityFilterError};
pub(crate) use index::{tier_name, TieBreak};
use index::{Index, Tables};
use model::{proto_number, Conn, Ep, Namespace, Peer, PeerId, PortSpec, Trace};
use parse::Parsed;
use read::Sink;

/// The label every namespace carries with its own name.
pub use crate::vocab::NAMESPACE_NAME_LABEL;

/// One end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A pod, by index into [`Scenario::pods`].
    Pod(usize),
    /// An address; if it is some pod's IP, that pod.
    Ip(IpAddr),
}

/// One policy's part in a verdict (see [`Scenario::explain`]); serialised camelCase.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRef {
    /// `ns/name`, or `name` for a cluster-scoped policy.
    pub policy: String,
    /// At which end.
    pub direction: Direction,
    /// Index of the rule in its list (`None` for a default deny).
    pub rule: Option<usize>,
    /// Field path of the rule, for example `spec.ingress[2]` (`None` for a default deny).
    pub field: Option<String>,
    /// What it did.
    pub effect: Effect,
}

/// One rule's part in a [`Decision`], with its policy as data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionStep {
    /// The rule (or default deny) and what it did.
    #[serde(flatten)]
    pub rule: RuleRef,
    /// The policy: kind, namespace, name, and whether tierflow manages it.
    #[serde(rename = "object")]
    pub policy: PolicyRef,
}

/// Both ends of a connection, decided separately (see [`Scenario::decide`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Whether the source's egress allows it (`None`: the source is an address, no policy
    /// applies there).
    pub egress: Option<bool>,
    /// Whether the destination's ingress allows it (`None`: the destination is an address).
    pub ingress: Option<bool>,
    /// The rules that decided, egress first, in evaluation order.
    pub steps: Vec<DecisionStep>,
}

impl Decision {
    /// Whether the connection is allowed (both ends).
    pub fn allowed(&self) -> bool {
        self.egress.unwrap_or(true) && self.ingress.unwrap_or(true)
    }

    /// The steps at one end.
    pub fn at(&self, direction: Direction) -> impl Iterator<Item = &DecisionStep> {
        self.steps
            .iter()
            .filter(move |s| s.rule.direction == direction)
    }
}

/// Namespaces, pods and compiled policies, with a lazily built index for fast checks.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    namespaces: Vec<Namespace>,
    ns_by_name: HashMap<String, usize>,
    pods: Vec<Pod>,
    pod_by_name: HashMap<(String, String), usize>,
    policies: Vec<Policy>,
    peers: Vec<Peer>,
    staged: Vec<String>,
    index: OnceLock<Index>,
    /// ClusterNetworkPolicies (`cnp.rs`): their tier, priority, subject and peers.
    cnps: cnp::Cnps,
    /// Calico and Cilium policies their CNI refuses or would not enforce on any supported
    /// release ([`crate::admit::refusal`]): left out, each as `Kind ns/name: why`.
    refused: Vec<String>,
    /// Calico `Tier` objects by name.
    tiers: BTreeMap<String, model::TierDef>,
    /// Which pod labels make up a Cilium identity (Cilium's default filter unless set).
    cilium_identity: CiliumIdentityFilter,
}

/// The rules at one end of a connection that can still match, whatever the port (see
/// `Scenario::allows_each`).
enum Narrowed<'a> {
    /// No policy applies: allowed.
    Open,
    /// Calico: the rules in evaluation order, tier by tier; the first that matches decides
    /// (Pass: on to the next tier), each tier's end applies its default action; after the
    /// last tier, the profile allows.
    Ordered(Vec<Step<'a>>),
    /// Kubernetes and Cilium: any deny wins, then any allow, then the default.
    Union {
        deny: Vec<&'a Rule>,
        allow: Vec<&'a Rule>,
        isolated: bool,
    },
}

/// One step of Calico's evaluation at one end of a connection (see `Narrowed::Ordered`).
enum Step<'a> {
    /// A rule of a policy of the current tier.
    Rule(&'a Rule),
    /// The end of a tier: `true` when its default action is Pass.
    End(bool),
}

struct NoTrace;

impl Trace<'_> for NoTrace {
    const ALL: bool = false;
    fn record(&mut self, _: u32, _: Direction, _: Option<&Rule>, _: Effect) {}
}

#[derive(Default)]
struct Full<'a>(Vec<(u32, Direction, Option<&'a Rule>, Effect)>);

impl<'a> Trace<'a> for Full<'a> {
    const ALL: bool = true;
    fn record(&mut self, policy: u32, dir: Direction, rule: Option<&'a Rule>, effect: Effect) {
        self.0.push((policy, dir, rule, effect));
    }
}

/// What `Scenario::check` records: the policies whose effects would name each possible
/// answer, once each by display name, in evaluation order (the allowing effects, Allow and
/// Pass, for an allowed connection; the denying ones, Deny and default deny, for a denied
/// one), kept without allocating for the usual few.
struct Deciders<'i, 'v> {
    /// Per policy: its display name's number (`Index::display_ids`); `None` when every policy
    /// has a name of its own, and its index tells it apart.
    display_ids: Option<&'i [u32]>,
    allowing: PolicyIds,
    /// Kept in the verdict being built (most connections in a default-deny world are denied).
    denying: &'v mut PolicyIds,
}

impl Trace<'_> for Deciders<'_, '_> {
    const ALL: bool = true;
    #[inline(always)]
    fn record(&mut self, policy: u32, _: Direction, _: Option<&Rule>, effect: Effect) {
        let ids = match effect {
            Effect::Allow | Effect::Pass => &mut self.allowing,
            Effect::Deny | Effect::DefaultDeny => &mut *self.denying,
        };
        let seen = match self.display_ids {
            None => ids.as_slice().contains(&policy),
            Some(display) => {
                let name = |pid: u32| display.get(pid as usize).copied();
                ids.as_slice().iter().any(|&k| name(k) == name(policy))
            }
        };
        if !seen {
            ids.push(policy);
        }
    }
}

impl Scenario {
    /// An empty scenario.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets which pod labels make up a Cilium identity (the agent's `labels` option); a
    /// Cilium selector on a label outside it selects no pod.
    pub fn set_cilium_identity_filter(&mut self, filter: CiliumIdentityFilter) {
        self.cilium_identity = filter;
        self.index = OnceLock::new();
    }

    /// The Cilium identity label filter in use.
    pub fn cilium_identity_filter(&self) -> &CiliumIdentityFilter {
        &self.cilium_identity
    }

    /// Reads namespaces, pods and policies (see the module documentation for the kinds).
    pub fn from_values(
        objects: impl IntoIterator<Item = serde_json::Value>,
    ) -> Result<Scenario, EngineError> {
        let mut s = Scenario::default();
        for (i, v) in objects.into_iter().enumerate() {
            if v.is_null() {
                continue;
            }
            // A policy its CNI refuses (Calico) or does not enforce (Cilium) is not simulated as
            // if it worked: it is left out and reported. What the engine cannot read at all is
            // still an error naming the field.
            let before = s.refused.len();
            let kept = s.drop_refused(v.clone());
            if s.refused.len() > before {
                parse::parse_object(
                    i + 1,
                    &v,
                    "",
                    &mut Sink {
                        peers: &mut Vec::new(),
                    },
                )?;
            }
            let v = kept;
            if v.is_null() {
                continue;
            }
            let parsed = parse::parse_object(
                i + 1,
                &v,
                "",
                &mut Sink {
                    peers: &mut s.peers,
                },
            )?;
            s.absorb(parsed);
        }
        Ok(s)
    }

    /// `v` without the policies its CNI refuses (recorded in `refused`); a list keeps its
    /// other items, a refused object becomes `null`.
    fn drop_refused(&mut self, mut v: serde_json::Value) -> serde_json::Value {
        if let Some(items) = v.get_mut("items").and_then(|i| i.as_array_mut()) {
            let kept: Vec<serde_json::Value> = std::mem::take(items)
                .into_iter()
                .map(|item| self.drop_refused(item))
                .filter(|item| !item.is_null())
                .collect();
            *items = kept;
            return v;
        }
        match crate::admit::refusal(&v) {
            Some(why) => {
                self.refused
                    .push(format!("{}: {why}", crate::admit::display(&v)));
                serde_json::Value::Null
            }
            None => v,
        }
    }

    /// The Calico and Cilium policies of the input their CNI refuses or would not enforce,
    /// left out of the simulation, each as `Kind ns/name: Cilium will not enforce this policy: …`.
    pub fn refused(&self) -> &[String] {
        &self.refused
    }

    fn absorb(&mut self, parsed: Parsed) {
        match parsed {
            Parsed::Namespace(name, labels) => self.add_namespace(&name, labels),
            Parsed::Pod(pod) => self.add_pod(pod),
            Parsed::Policies(ps) => {
                self.policies.extend(ps);
                self.index = OnceLock::new();
            }
            Parsed::Staged(name) => {
                self.staged.push(name);
                self.index = OnceLock::new();
            }
            Parsed::List(items) => items.into_iter().for_each(|p| self.absorb(p)),
            Parsed::Tier(name, tier) => {
                self.tiers.insert(name, tier);
                self.index = OnceLock::new();
            }
            Parsed::Cnp(cnp) => {
                let cnp = *cnp;
                let pid = u32::try_from(self.policies.len()).unwrap_or(u32::MAX);
                self.policies.push(cnp.policy);
                self.cnps.push(pid, cnp.meta);
                self.index = OnceLock::new();
            }
        }
    }

    /// Adds a namespace, or replaces the labels of an existing one. The
    /// `kubernetes.io/metadata.name` label is always set to `name`.
    pub fn add_namespace(&mut self, name: &str, labels: BTreeMap<String, String>) {
        let mut labels = labels;
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
        match self.ns_by_name.get(name) {
            Some(&i) => {
                if let Some(ns) = self.namespaces.get_mut(i) {
                    ns.labels = labels;
                }
            }
            None => {
                self.ns_by_name
                    .insert(name.to_string(), self.namespaces.len());
                self.namespaces.push(Namespace {
                    name: name.to_string(),
                    labels,
                });
            }
        }
        self.index = OnceLock::new();
        self.cnps.invalidate();
    }

    /// Adds a pod (replacing one with the same namespace and name, which keeps its index).
    /// Its namespace is created if unknown.
    pub fn add_pod(&mut self, pod: Pod) {
        if !self.ns_by_name.contains_key(&pod.namespace) {
            let ns = pod.namespace.clone();
            self.add_namespace(&ns, BTreeMap::new());
        }
        let key = (pod.namespace.clone(), pod.name.clone());
        match self.pod_by_name.get(&key) {
            Some(&i) => {
                if let Some(p) = self.pods.get_mut(i) {
                    *p = pod;
                }
            }
            None => {
                self.pod_by_name.insert(key, self.pods.len());
                self.pods.push(pod);
            }
        }
        self.index = OnceLock::new();
        self.cnps.invalidate();
    }

    /// The pods, in the order they were added ([`Endpoint::Pod`] indexes this).
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// Names of the namespaces, in the order they were added.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(|n| n.name.as_str())
    }

    /// Labels of a namespace.
    pub fn namespace_labels(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.ns_by_name
            .get(name)
            .and_then(|&i| self.namespaces.get(i))
            .map(|n| &n.labels)
    }

    /// Staged Calico policies that were read and are not enforced (`ns/name` or `name`).
    pub fn staged_policies(&self) -> &[String] {
        &self.staged
    }

    /// The evaluation mode (see the module documentation).
    pub fn mode(&self) -> Mode {
        if self.policies.iter().any(|p| p.flavor == Flavor::Cilium) {
            Mode::Cilium
        } else if !self.staged.is_empty()
            || self.policies.iter().any(|p| p.flavor == Flavor::Calico)
        {
            Mode::Calico
        } else {
            Mode::Kubernetes
        }
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            index::build(Tables {
                mode: self.mode(),
                namespaces: &self.namespaces,
                ns_by_name: &self.ns_by_name,
                pods: &self.pods,
                policies: &self.policies,
                peers: &self.peers,
                tiers: &self.tiers,
                cilium_identity: &self.cilium_identity,
            })
        })
    }

    /// Whether pod `pod` is isolated for (ingress, egress). Out of range: `(false, false)`.
    pub fn isolation(&self, pod: usize) -> (bool, bool) {
        self.index()
            .isolated
            .get(pod)
            .copied()
            .unwrap_or((false, false))
    }

    /// Every numbered destination port that appears in a rule (the first port of a range;
    /// protocol-agnostic Cilium ports as both TCP and UDP), sorted and unique.
    pub fn ports_named_in_policies(&self) -> Vec<(u16, Protocol)> {
        let mut out = Vec::new();
        for p in &self.policies {
            for sec in [&p.ingress, &p.egress].into_iter().flatten() {
                for r in sec.rules.iter().chain(&sec.deny) {
                    for spec in r.ports.iter().flatten() {
                        if let PortVal::Range(lo, _) = spec.val {
                            match spec.proto {
                                Some(proto) => out.push((lo, proto)),
                                None => {
                                    out.push((lo, Protocol::Tcp));
                                    out.push((lo, Protocol::Udp));
                                }
                            }
                        }
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn ep(&self, idx: &Index, e: Endpoint) -> Option<Ep> {
        match e {
            Endpoint::Pod(i) => (i < self.pods.len()).then_some(Ep::Pod(i)),
            Endpoint::Ip(ip) => Some(idx.by_ip.get(&ip).map_or(Ep::Ip(ip), |&p| Ep::Pod(p))),
        }
    }

    fn family(&self, e: Ep) -> Option<u8> {
        let ip = match e {
            Ep::Pod(p) => self.pods.get(p).and_then(|p| p.ip()),
            Ep::Ip(ip) => Some(ip),
        }?;
        Some(if ip.is_ipv4() { 4 } else { 6 })
    }

    #[inline(always)]
    fn conn(
        &self,
        idx: &Index,
        from: Endpoint,
        to: Endpoint,
        port: u16,
        proto: Protocol,
    ) -> Option<Conn> {
        let src = self.ep(idx, from)?;
        let dst = self.ep(idx, to)?;
        Some(Conn {
            src,
            dst,
            port,
            proto,
            family: self.family(dst).or_else(|| self.family(src)),
        })
    }

    fn traced(
        &self,
        from: Endpoint,
        to: Endpoint,
        port: u16,
        protocol: Protocol,
    ) -> Option<(bool, Full<'_>)> {
        let idx = self.index();
        let conn = self.conn(idx, from, to, port, protocol)?;
        let mut trace = Full::default();
        let egress = match conn.src {
            Ep::Pod(p) => self.eval(idx, Direction::Egress, p, &conn, &mut trace),
            Ep::Ip(_) => true,
        };
        let ingress = match conn.dst {
            Ep::Pod(p) => self.eval(idx, Direction::Ingress, p, &conn, &mut trace),
            Ep::Ip(_) => true,
        };
        let allowed = egress && ingress;
        trace.0.retain(|(_, _, _, effect)| {
            if allowed {
                matches!(effect, Effect::Allow | Effect::Pass)
            } else {
                matches!(effect, Effect::Deny | Effect::DefaultDeny)
            }
        });
        Some((allowed, trace))
    }

    /// Decides a connection from `from` to `to` on destination port `port` / `protocol`.
    /// An out-of-range pod index gives a denied verdict naming no policy. The verdict borrows
    /// the scenario for the names of its policies: a check allocates nothing (unless more than
    /// [`DecidedBy::INLINE`] policies decide) and touches no reference count.
    pub fn check(
        &self,
        from: Endpoint,
        to: Endpoint,
        port: u16,
        protocol: Protocol,
    ) -> Verdict<'_> {
        let idx = self.index();
        let mut verdict = Verdict {
            allowed: false,
            decided_by: DecidedBy::new(&self.policies, PolicyIds::new()),
        };
        let Some(conn) = self.conn(idx, from, to, port, protocol) else {
            return verdict;
        };
        // Both ends once, recording the policies that would name either answer (the denying
        // ones straight into the verdict); then those of the answer.
        let mut deciders = Deciders {
            display_ids: (!idx.names_unique).then_some(idx.display_ids.as_slice()),
            allowing: PolicyIds::new(),
            denying: verdict.decided_by.ids_mut(),
        };
        let egress = match conn.src {
            Ep::Pod(p) => self.eval(idx, Direction::Egress, p, &conn, &mut deciders),
            Ep::Ip(_) => true,
        };
        let ingress = match conn.dst {
            Ep::Pod(p) => self.eval(idx, Direction::Ingress, p, &conn, &mut deciders),
            Ep::Ip(_) => true,
        };
        verdict.allowed = egress && ingress;
        if verdict.allowed {
            *verdict.decided_by.ids_mut() = deciders.allowing;
        }
        verdict
    }

    /// The rules behind [`check`](Self::check)'s verdict: for each policy in `decided_by`,
    /// which rule (or default deny) at which end, in the same order.
    pub fn explain(
        &self,
        from: Endpoint,
        to: Endpoint,
        port: u16,
        protocol: Protocol,
    ) -> Vec<RuleRef> {
        let Some((_, trace)) = self.traced(from, to, port, protocol) else {
            return Vec::new();
        };
        trace
            .0
            .into_iter()
            .filter_map(|(pid, direction, rule, effect)| {
                let policy = self.policies.get(pid as usize)?;
                Some(RuleRef {
                    policy: policy.display.to_string(),
                    direction,
                    rule: rule.map(|r| r.index),
                    field: rule.map(|r| r.path.clone()),
                    effect,
                })
            })
            .collect()
    }

    /// Both ends of a connection decided separately, with the rules that decided each in
    /// evaluation order (egress first) and their policies as data: what `tierflow why` prints.
    /// At each end only the steps that agree with that end's outcome are kept (allows when it
    /// allows, denies and default denies when it denies), as [`explain`](Self::explain) does for
    /// the whole connection. `None` for an out-of-range pod index.
    pub fn decide(
        &self,
        from: Endpoint,
        to: Endpoint,
        port: u16,
        protocol: Protocol,
    ) -> Option<Decision> {
        let idx = self.index();
        let conn = self.conn(idx, from, to, port, protocol)?;
        let mut egress_trace = Full::default();
        let mut ingress_trace = Full::default();
        let egress = match conn.src {
            Ep::Pod(p) => Some(self.eval(idx, Direction::Egress, p, &conn, &mut egress_trace)),
            Ep::Ip(_) => None,
        };
        let ingress = match conn.dst {
            Ep::Pod(p) => Some(self.eval(idx, Direction::Ingress, p, &conn, &mut ingress_trace)),
            Ep::Ip(_) => None,
        };
        let mut steps = Vec::new();
        for (outcome, trace) in [(egress, egress_trace), (ingress, ingress_trace)] {
            let Some(allowed) = outcome else { continue };
            for (pid, direction, rule, effect) in trace.0 {
                let agrees = if allowed {
                    matches!(effect, Effect::Allow | Effect::Pass)
                } else {
                    matches!(effect, Effect::Deny | Effect::DefaultDeny)
                };
                let Some(policy) = self.policies.get(pid as usize) else {
                    continue;
                };
                if !agrees {
                    continue;
                }
                steps.push(DecisionStep {
                    rule: RuleRef {
                        policy: policy.display.to_string(),
                        direction,
                        rule: rule.map(|r| r.index),
                        field: rule.map(|r| r.path.clone()),
                        effect,
                    },
                    policy: policy.origin.clone(),
                });
            }
        }
        Some(Decision {
            egress,
            ingress,
            steps,
        })
    }

    /// Like [`check`](Self::check), but only the answer: no allocation at all.
    pub fn allows(&self, from: Endpoint, to: Endpoint, port: u16, protocol: Protocol) -> bool {
        let idx = self.index();
        let Some(conn) = self.conn(idx, from, to, port, protocol) else {
            return false;
        };
        (match conn.src {
            Ep::Pod(p) => self.eval(idx, Direction::Egress, p, &conn, &mut NoTrace),
            Ep::Ip(_) => true,
        }) && (match conn.dst {
            Ep::Pod(p) => self.eval(idx, Direction::Ingress, p, &conn, &mut NoTrace),
            Ep::Ip(_) => true,
        })
    }

    /// [`allows`](Self::allows) on each of `ports` (number, protocol) between the same two
    /// endpoints, in order. The endpoints are resolved once, and the rules that apply at either
    /// end are narrowed once to those whose port-independent conditions (peers, IP version)
    /// hold; each port then only tests protocols and ports.
    pub fn allows_each(
        &self,
        from: Endpoint,
        to: Endpoint,
        ports: &[(u16, Protocol)],
    ) -> Vec<bool> {
        let idx = self.index();
        let Some(mut conn) = self.conn(idx, from, to, 0, Protocol::Tcp) else {
            return vec![false; ports.len()];
        };
        if !self.cnps.is_empty() {
            // ClusterNetworkPolicies are evaluated around the others (`cnp.rs`): port by port.
            return ports
                .iter()
                .map(|&(port, proto)| {
                    conn.port = port;
                    conn.proto = proto;
                    (match conn.src {
                        Ep::Pod(p) => self.eval(idx, Direction::Egress, p, &conn, &mut NoTrace),
                        Ep::Ip(_) => true,
                    }) && (match conn.dst {
                        Ep::Pod(p) => self.eval(idx, Direction::Ingress, p, &conn, &mut NoTrace),
                        Ep::Ip(_) => true,
                    })
                })
                .collect();
        }
        let egress = match conn.src {
            Ep::Pod(p) => self.narrow(idx, Direction::Egress, p, &conn),
            Ep::Ip(_) => Narrowed::Open,
        };
        let ingress = match conn.dst {
            Ep::Pod(p) => self.narrow(idx, Direction::Ingress, p, &conn),
            Ep::Ip(_) => Narrowed::Open,
        };
        ports
            .iter()
            .map(|&(port, proto)| {
                conn.port = port;
                conn.proto = proto;
                self.narrowed_allows(&egress, &conn) && self.narrowed_allows(&ingress, &conn)
            })
            .collect()
    }

    /// The rules applying at `local` in `dir` whose port-independent conditions hold for
    /// `conn` (see [`allows_each`](Self::allows_each)); what [`eval_policies`] would decide
    /// with them is [`narrowed_allows`](Self::narrowed_allows).
    ///
    /// [`eval_policies`]: Self::eval_policies
    fn narrow<'a>(
        &'a self,
        idx: &Index,
        dir: Direction,
        local: usize,
        conn: &Conn,
    ) -> Narrowed<'a> {
        let list = match dir {
            Direction::Ingress => idx.ingress.get(local),
            Direction::Egress => idx.egress.get(local),
        };
        let Some(list) = list.filter(|l| !l.is_empty()) else {
            return Narrowed::Open;
        };
        let sections = list.iter().filter_map(|&pid| self.section(pid, dir));
        let holds = |r: &&'a Rule| self.rule_matches_pair(idx, r, conn);
        match idx.mode {
            Mode::Calico => {
                let mut steps = Vec::new();
                // The tier of the steps so far (`Some(None)`: a policy without a rank).
                let mut tier: Option<Option<u32>> = None;
                for &pid in list {
                    let Some(sec) = self.section(pid, dir) else {
                        continue;
                    };
                    let t = idx.tier_of.get(pid as usize).copied();
                    if let Some(prev) = tier.filter(|prev| *prev != t) {
                        steps.push(Step::End(self.tier_passes(idx, prev)));
                    }
                    tier = Some(t);
                    steps.extend(sec.rules.iter().filter(holds).map(Step::Rule));
                }
                if let Some(last) = tier {
                    steps.push(Step::End(self.tier_passes(idx, last)));
                }
                Narrowed::Ordered(steps)
            }
            Mode::Kubernetes | Mode::Cilium => {
                let mut deny = Vec::new();
                let mut allow = Vec::new();
                let mut isolated = false;
                for sec in sections {
                    isolated |= sec.isolates;
                    deny.extend(
                        sec.deny
                            .iter()
                            .chain(sec.rules.iter().filter(|r| r.action == Action::Deny))
                            .filter(holds),
                    );
                    allow.extend(
                        sec.rules
                            .iter()
                            .filter(|r| r.action == Action::Allow)
                            .filter(holds),
                    );
                }
                Narrowed::Union {
                    deny,
                    allow,
                    isolated,
                }
            }
        }
    }

    /// [`eval_policies`](Self::eval_policies) without a trace, on narrowed rules.
    fn narrowed_allows(&self, n: &Narrowed<'_>, conn: &Conn) -> bool {
        match n {
            Narrowed::Open => true,
            Narrowed::Ordered(steps) => {
                let mut passed = false;
                for step in steps {
                    match step {
                        Step::End(pass) => {
                            if !passed && !pass {
                                return false;
                            }
                            passed = false;
                        }
                        Step::Rule(_) if passed => {}
                        Step::Rule(r) => {
                            if !self.rule_matches_port(r, conn) {
                                continue;
                            }
                            match r.action {
                                Action::Allow => return true,
                                Action::Deny => return false,
                                Action::Pass => passed = true,
                                Action::Log => {}
                            }
                        }
                    }
                }
                true
            }
            Narrowed::Union {
                deny,
                allow,
                isolated,
            } => {
                if deny.iter().any(|r| self.rule_matches_port(r, conn)) {
                    return false;
                }
                allow.iter().any(|r| self.rule_matches_port(r, conn)) || !isolated
            }
        }
    }

    fn section(&self, pid: u32, dir: Direction) -> Option<&Section> {
        model::section(&self.policies, pid, dir)
    }

    #[inline(always)]
    fn eval<'a, T: Trace<'a>>(
        &'a self,
        idx: &'a Index,
        dir: Direction,
        local: usize,
        conn: &Conn,
        trace: &mut T,
    ) -> bool {
        if self.cnps.is_empty() {
            self.eval_policies(idx, dir, local, conn, trace)
        } else {
            self.eval_with_cnp(idx, dir, local, conn, trace)
        }
    }

    /// Every policy but ClusterNetworkPolicies, in the scenario's mode.
    fn eval_policies<'a, T: Trace<'a>>(
        &'a self,
        idx: &'a Index,
        dir: Direction,
        local: usize,
        conn: &Conn,
        trace: &mut T,
    ) -> bool {
        let list = match dir {
            Direction::Ingress => idx.ingress.get(local),
            Direction::Egress => idx.egress.get(local),
        };
        let Some(list) = list.filter(|l| !l.is_empty()) else {
            return true;
        };
        match idx.mode {
            Mode::Calico => self.eval_ordered(idx, dir, list, conn, trace),
            Mode::Kubernetes | Mode::Cilium => {
                let denies = idx.pod_denies.get(local).is_none_or(|d| match dir {
                    Direction::Ingress => d.0,
                    Direction::Egress => d.1,
                });
                self.eval_union(idx, dir, list, denies, conn, trace)
            }
        }
    }

    /// Whether the Calico tier of rank `tier` ends in Pass.
    fn tier_passes(&self, idx: &Index, tier: Option<u32>) -> bool {
        tier.and_then(|t| idx.tier_pass.get(t as usize))
            .copied()
            .unwrap_or(false)
    }

    /// Calico, tier by tier (`list` is sorted by tier, then order): in a tier, the first
    /// matching Allow or Deny decides, a Pass skips the rest of the tier; a tier none of whose
    /// rules decided or passed ends with its default action (Deny: the end-of-tier deny; Pass:
    /// on to the next tier); after the last tier the profile allows.
    fn eval_ordered<'a, T: Trace<'a>>(
        &'a self,
        idx: &Index,
        dir: Direction,
        list: &[u32],
        conn: &Conn,
        trace: &mut T,
    ) -> bool {
        let tier_of = |pid: u32| idx.tier_of.get(pid as usize).copied();
        let mut start = 0;
        while let Some(&first) = list.get(start) {
            let tier = tier_of(first);
            let end = list[start..]
                .iter()
                .position(|&pid| tier_of(pid) != tier)
                .map_or(list.len(), |n| start + n);
            let members = &list[start..end];
            let mut passed = false;
            'tier: for &pid in members {
                let Some(sec) = self.section(pid, dir) else {
                    continue;
                };
                for r in &sec.rules {
                    if !self.rule_matches(idx, r, conn) {
                        continue;
                    }
                    match r.action {
                        Action::Allow => {
                            trace.record(pid, dir, Some(r), Effect::Allow);
                            return true;
                        }
                        Action::Deny => {
                            trace.record(pid, dir, Some(r), Effect::Deny);
                            return false;
                        }
                        Action::Pass => {
                            trace.record(pid, dir, Some(r), Effect::Pass);
                            passed = true;
                            break 'tier;
                        }
                        Action::Log => {}
                    }
                }
            }
            if !passed && !self.tier_passes(idx, tier) {
                for &pid in members {
                    if self.section(pid, dir).is_some_and(|s| s.isolates) {
                        trace.record(pid, dir, None, Effect::DefaultDeny);
                    }
                }
                return false;
            }
            start = end;
        }
        true
    }

    /// Kubernetes and Cilium: any deny wins, then a union of allows, then default deny if
    /// isolated. `denies`: whether any policy of `list` has a deny rule.
    fn eval_union<'a, T: Trace<'a>>(
        &'a self,
        idx: &Index,
        dir: Direction,
        list: &[u32],
        denies: bool,
        conn: &Conn,
        trace: &mut T,
    ) -> bool {
        let mut denied = false;
        for &pid in list.iter().filter(|_| denies) {
            let has_deny = idx.denies.get(pid as usize).is_none_or(|d| match dir {
                Direction::Ingress => d.0,
                Direction::Egress => d.1,
            });
            if !has_deny {
                continue;
            }
            let Some(sec) = self.section(pid, dir) else {
                continue;
            };
            let denies = sec
                .deny
                .iter()
                .chain(sec.rules.iter().filter(|r| r.action == Action::Deny));
            if let Some(r) = denies.into_iter().find(|r| self.rule_matches(idx, r, conn)) {
                trace.record(pid, dir, Some(r), Effect::Deny);
                if !T::ALL {
                    return false;
                }
                denied = true;
            }
        }
        if denied {
            return false;
        }
        let mut allowed = false;
        let mut isolated = false;
        for &pid in list {
            let Some(sec) = self.section(pid, dir) else {
                continue;
            };
            isolated |= sec.isolates;
            if let Some(r) = sec
                .rules
                .iter()
                .filter(|r| r.action == Action::Allow)
                .find(|r| self.rule_matches(idx, r, conn))
            {
                trace.record(pid, dir, Some(r), Effect::Allow);
                if !T::ALL {
                    return true;
                }
                allowed = true;
            }
        }
        if allowed || !isolated {
            return true;
        }
        for &pid in list {
            if self.section(pid, dir).is_some_and(|s| s.isolates) {
                trace.record(pid, dir, None, Effect::DefaultDeny);
            }
        }
        false
    }

    #[inline]
    fn peer_matches(&self, idx: &Index, peer: PeerId, ep: Ep) -> bool {
        match ep {
            Ep::Pod(p) => idx
                .peer_pods
                .get(peer as usize)
                .is_some_and(|set| set.contains(p)),
            Ep::Ip(ip) => self.peer_matches_address(peer, ip),
        }
    }

    /// Whether `peer` matches an address outside the pods.
    #[inline(never)]
    fn peer_matches_address(&self, peer: PeerId, ip: IpAddr) -> bool {
        self.peers
            .get(peer as usize)
            .is_some_and(|peer| peer.alts.iter().any(|a| a.matches_external(&ip)))
    }

    fn port_matches(&self, spec: &PortSpec, conn: &Conn) -> bool {
        model::port_matches(&self.pods, spec, conn)
    }

    #[inline]
    fn rule_matches(&self, idx: &Index, r: &Rule, conn: &Conn) -> bool {
        self.rule_matches_pair(idx, r, conn) && self.rule_matches_port(r, conn)
    }

    /// The conditions of a rule that do not depend on the port or protocol: peers and IP
    /// version (and whether it can match at all).
    #[inline]
    fn rule_matches_pair(&self, idx: &Index, r: &Rule, conn: &Conn) -> bool {
        if r.never {
            return false;
        }
        if let (Some(v), Some(f)) = (r.ip_version, conn.family) {
            if v != f {
                return false;
            }
        }
        if let Some(p) = r.src {
            if !self.peer_matches(idx, p, conn.src) {
                return false;
            }
        }
        if let Some(p) = r.dst {
            if !self.peer_matches(idx, p, conn.dst) {
                return false;
            }
        }
        true
    }

    /// The conditions of a rule on the protocol and the destination port.
    fn rule_matches_port(&self, r: &Rule, conn: &Conn) -> bool {
        let number = proto_number(conn.proto);
        if r.protocol.is_some_and(|p| p != number) || r.not_protocol == Some(number) {
            return false;
        }
        if let Some(ports) = &r.ports {
            if !ports.iter().any(|s| self.port_matches(s, conn)) {
                return false;
            }
        }
        !r.not_ports.iter().any(|s| self.port_matches(s, conn))
    }

    /// Calico `Tier` objects of the input, by name (for the linter).
    pub(crate) fn calico_tiers(&self) -> &BTreeMap<String, model::TierDef> {
        &self.tiers
    }

    /// The compiled policies (for the linter).
    pub(crate) fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The peer table (for the linter).
    pub(crate) fn peer(&self, id: u32) -> Option<&[Alt]> {
        self.peers.get(id as usize).map(|p| p.alts.as_slice())
    }

    /// Policies applying to `pod` in `dir`, in evaluation order (indices into `policies`).
    pub(crate) fn selecting(&self, pod: usize, dir: Direction) -> &[u32] {
        let idx = self.index();
        let lists = match dir {
            Direction::Ingress => &idx.ingress,
            Direction::Egress => &idx.egress,
        };
        lists.get(pod).map_or(&[], Vec::as_slice)
    }

    /// How many pods policy `policy` selects.
    pub(crate) fn selected_count(&self, policy: usize) -> usize {
        self.index().selected.get(policy).copied().unwrap_or(0)
    }

    /// Field paths (`name: path`) of the ClusterNetworkPolicy peers the engine does not
    /// simulate (`nodes`, `domainNames`): they never match.
    pub fn unsimulated(&self) -> Vec<String> {
        self.cnps.unsimulated()
    }

    /// What ClusterNetworkPolicy evaluation reads from the scenario.
    fn cnp_tables(&self) -> cnp::Tables<'_> {
        cnp::Tables {
            namespaces: &self.namespaces,
            ns_by_name: &self.ns_by_name,
            pods: &self.pods,
            policies: &self.policies,
        }
    }

    /// One end of a connection in an input with ClusterNetworkPolicies: Admin tier, then the
    /// other policies (`eval_policies`), then Baseline tier, then allow.
    fn eval_with_cnp<'a, T: Trace<'a>>(
        &'a self,
        idx: &'a Index,
        dir: Direction,
        local: usize,
        conn: &Conn,
        trace: &mut T,
    ) -> bool {
        let tables = self.cnp_tables();
        let list = self.cnps.applying(tables, local);
        if let Some(v) = self
            .cnps
            .tier(tables, list, cnp::Tier::Admin, dir, conn, trace)
        {
            return v;
        }
        let selecting = match dir {
            Direction::Ingress => idx.ingress.get(local),
            Direction::Egress => idx.egress.get(local),
        }
        .map_or(&[][..], Vec::as_slice);
        if !selecting.is_empty() {
            let isolated = selecting
                .iter()
                .any(|&pid| self.section(pid, dir).is_some_and(|s| s.isolates));
            let verdict = self.eval_policies(idx, dir, local, conn, trace);
            if isolated || !verdict {
                return verdict;
            }
        }
        self.cnps
            .tier(tables, list, cnp::Tier::Baseline, dir, conn, trace)
            .unwrap_or(true)
    }
}
