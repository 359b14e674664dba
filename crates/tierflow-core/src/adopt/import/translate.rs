//! The translation of `import` (see the parent module): policies → AppNetwork specs, with the
//! gaps recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use crate::core::{Cidr, Protocol, Requirement, Selector, SelectorOp};
use crate::crd::{
    AppNetworkSpec, BaselineSpec, DnsSpec, FlowSpec, HttpRuleSpec, PeerSpec, PortSpec as CrdPort,
    ProtocolSpec, TierSpec,
};
use crate::engine::calico_selector::CalicoSelector;
use crate::engine::{
    Action, Alt, Direction, Entity, Flavor, K8sNs, Policy, PolicyRef, PortVal, Rule, Scenario,
    Subject,
};
use crate::render::ir::world_blocks;
use crate::validate::label_selector;
use crate::verify::endpoints::assumed_cluster;
use crate::vocab::{
    CILIUM_NAMESPACE_LABELS_PREFIX, CILIUM_POD_NAMESPACE_LABEL, NAMESPACE_NAME_LABEL,
};

use super::types::{
    Gap, GapKind, Import, ImportError, ImportedApp, Options, APP_NAME, EVERY_POD_KEY,
    EVERY_POD_TIER,
};

// ---------------------------------------------------------------------------------------------
// Intermediate form

/// A port condition of the engine, with the protocol folded in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PortCond {
    /// `None`: TCP, UDP and SCTP.
    proto: Option<Protocol>,
    /// `None`: every port.
    range: Option<PortRange>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PortRange {
    Numbers(u16, u16),
    Named(String),
}

/// A set of destination ports: every port, or a union of conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ports {
    All,
    List(BTreeSet<PortCond>),
}

impl Ports {
    fn none() -> Ports {
        Ports::List(BTreeSet::new())
    }

    fn is_empty(&self) -> bool {
        matches!(self, Ports::List(l) if l.is_empty())
    }

    fn union(&mut self, other: &Ports) {
        match (&mut *self, other) {
            (Ports::All, _) => {}
            (_, Ports::All) => *self = Ports::All,
            (Ports::List(a), Ports::List(b)) => a.extend(b.iter().cloned()),
        }
    }

    /// The ports in both. A named port against numbers cannot be decided without the
    /// destination pod, so it is left out (narrower, never wider).
    fn intersect(&self, other: &Ports) -> Ports {
        match (self, other) {
            (Ports::All, x) | (x, Ports::All) => x.clone(),
            (Ports::List(a), Ports::List(b)) => {
                let mut out = BTreeSet::new();
                for x in a {
                    for y in b {
                        if let Some(z) = intersect_cond(x, y) {
                            out.insert(z);
                        }
                    }
                }
                Ports::List(out)
            }
        }
    }
}

fn intersect_cond(a: &PortCond, b: &PortCond) -> Option<PortCond> {
    let proto = match (a.proto, b.proto) {
        (Some(x), Some(y)) if x != y => return None,
        (Some(x), _) | (_, Some(x)) => Some(x),
        (None, None) => None,
    };
    let range = match (&a.range, &b.range) {
        (None, r) | (r, None) => r.clone(),
        (Some(PortRange::Numbers(l1, h1)), Some(PortRange::Numbers(l2, h2))) => {
            let (lo, hi) = ((*l1).max(*l2), (*h1).min(*h2));
            if lo > hi {
                return None;
            }
            Some(PortRange::Numbers(lo, hi))
        }
        (Some(PortRange::Named(x)), Some(PortRange::Named(y))) if x == y => {
            Some(PortRange::Named(x.clone()))
        }
        _ => return None,
    };
    Some(PortCond { proto, range })
}

/// One alternative of a rule's peer, in AppNetwork terms.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PeerAlt {
    /// Pods of the namespace being imported (`None`: all of them).
    Own(Option<Selector>),
    /// Pods of the namespaces a selector matches (`{}`: every namespace), maybe including the
    /// namespace being imported.
    Pods {
        namespaces: Selector,
        pods: Option<Selector>,
    },
    /// Addresses.
    Cidr(Cidr, Vec<Cidr>),
    /// Every address outside the cluster.
    World,
    /// A DNS name (Cilium `toFQDNs`).
    Fqdn(String),
}

/// A rule's peer: anything, or the union of alternatives.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Side {
    Any,
    Alts(Vec<PeerAlt>),
}

/// An allow rule in AppNetwork terms.
#[derive(Clone, Debug)]
struct IRule {
    source: PolicyRef,
    peer: Side,
    ports: Ports,
    http: Vec<HttpRuleSpec>,
    /// Written by the importer to open a direction no policy of the tier isolates.
    synthetic: bool,
}

/// A peer of a DNS rule.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DnsAlt {
    /// The DNS pods: namespace and selector.
    Main(String, Selector),
    /// NodeLocal DNSCache pods in a namespace.
    LocalPods(String),
    /// The NodeLocal DNSCache address.
    LocalAddress(IpAddr),
}

/// The DNS an import found.
struct DnsFound {
    namespace: String,
    pods: Selector,
    node_local: Option<IpAddr>,
}

/// Policies selecting the same pods: a tier, or (selector `None`) the namespace-wide ones.
#[derive(Clone, Debug, Default)]
struct Unit {
    name: String,
    selector: Option<Selector>,
    sources: BTreeSet<PolicyRef>,
    /// Ingress, egress.
    isolates: [bool; 2],
    rules: [Vec<IRule>; 2],
    /// The given pods it selects (indices into the scenario's pods).
    pods: BTreeSet<usize>,
}

fn di(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Imports the policies of `objects` (with the pods and namespaces among them).
pub fn import(objects: &[Value], options: &Options) -> Result<Import, ImportError> {
    let scenario = Scenario::from_values(objects.iter().cloned())?;
    let raw = raw_objects(objects);
    let cluster = assumed_cluster(&options.cluster_cidrs);
    let mut gaps = Vec::new();
    for r in scenario.refused() {
        gaps.push(Gap {
            policy: PolicyRef {
                kind: "policy".into(),
                namespace: None,
                name: r.split(':').next().unwrap_or_default().to_string(),
                managed: false,
            },
            field: String::new(),
            kind: GapKind::Refused,
            message: r.clone(),
        });
    }
    let mut namespaces: Vec<String> = options.namespaces.clone();
    let with_policies: BTreeSet<String> = scenario
        .policies()
        .iter()
        .filter(|p| p.flavor != Flavor::ClusterNetworkPolicy)
        .filter_map(|p| p.namespace.clone())
        .collect();
    if namespaces.is_empty() {
        namespaces = with_policies.iter().cloned().collect();
        if namespaces.is_empty() {
            return Err(ImportError::Empty);
        }
    } else {
        for ns in &namespaces {
            if !with_policies.contains(ns) {
                return Err(ImportError::NoPolicies(ns.clone()));
            }
        }
    }
    let mut seen_cluster_wide = BTreeSet::new();
    for p in scenario.policies() {
        match &p.namespace {
            None => {
                if seen_cluster_wide.insert(p.origin.clone()) {
                    gaps.push(gap(
                        p,
                        "",
                        GapKind::ClusterWide,
                        "a cluster-wide policy has no AppNetwork form (an AppNetwork is \
                         namespaced; a ClusterBaseline holds cluster-wide guardrails); it stays \
                         in force on both sides of the comparison",
                    ));
                }
            }
            Some(ns) if !namespaces.contains(ns) => {
                if seen_cluster_wide.insert(p.origin.clone()) {
                    gaps.push(gap(
                        p,
                        "",
                        GapKind::NotImported,
                        "its namespace was not imported (it stays in force on both sides of the \
                         comparison)",
                    ));
                }
            }
            Some(_) => {}
        }
    }
    let mut apps = Vec::new();
    for ns in &namespaces {
        let mut reader = NsImport {
            scenario: &scenario,
            raw: &raw,
            ns,
            ns_labels: scenario.namespace_labels(ns).cloned().unwrap_or_else(|| {
                BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), ns.clone())])
            }),
            cluster: &cluster,
            gaps: &mut gaps,
        };
        apps.push(reader.run());
    }
    gaps.sort();
    gaps.dedup();
    Ok(Import { apps, gaps })
}

fn gap(p: &Policy, field: &str, kind: GapKind, message: impl Into<String>) -> Gap {
    Gap {
        policy: p.origin.clone(),
        field: field.to_string(),
        kind,
        message: message.into(),
    }
}

/// The input's objects, lists flattened, by (kind, namespace, name).
type RawIndex = BTreeMap<(String, String, String), Value>;

fn raw_objects(objects: &[Value]) -> RawIndex {
    fn walk(v: &Value, out: &mut RawIndex) {
        if let Some(items) = v.get("items").and_then(Value::as_array) {
            items.iter().for_each(|i| walk(i, out));
            return;
        }
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default();
        out.insert(
            (
                s("/kind").to_string(),
                s("/metadata/namespace").to_string(),
                s("/metadata/name").to_string(),
            ),
            v.clone(),
        );
    }
    let mut out = BTreeMap::new();
    objects.iter().for_each(|o| walk(o, &mut out));
    out
}

/// The value at a field path such as `spec.specs[1].egress[0]`.
fn at_path<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = v;
    for part in path.split('.') {
        let (name, idx) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        cur = cur.get(name)?;
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

struct NsImport<'a> {
    scenario: &'a Scenario,
    raw: &'a RawIndex,
    ns: &'a str,
    ns_labels: BTreeMap<String, String>,
    cluster: &'a [Cidr],
    gaps: &'a mut Vec<Gap>,
}

impl NsImport<'_> {
    fn run(&mut self) -> ImportedApp {
        let scenario = self.scenario;
        let mut units: Vec<Unit> = Vec::new();
        let own_pods: Vec<usize> = scenario
            .pods()
            .iter()
            .enumerate()
            .filter(|(_, p)| p.namespace == self.ns)
            .map(|(i, _)| i)
            .collect();
        for (pid, p) in scenario.policies().iter().enumerate() {
            if p.namespace.as_deref() != Some(self.ns) || p.flavor == Flavor::ClusterNetworkPolicy {
                continue;
            }
            let Some(selector) = self.subject(p) else {
                continue;
            };
            let selected: BTreeSet<usize> = own_pods
                .iter()
                .copied()
                .filter(|&i| {
                    [Direction::Ingress, Direction::Egress].iter().any(|&d| {
                        scenario
                            .selecting(i, d)
                            .contains(&u32::try_from(pid).unwrap_or(u32::MAX))
                    })
                })
                .collect();
            let key = |u: &Unit| match (&selector, &u.selector) {
                (None, None) => true,
                (Some(a), Some(b)) => a == b || (!selected.is_empty() && selected == u.pods),
                _ => false,
            };
            let at = match units.iter().position(key) {
                Some(i) => i,
                None => {
                    units.push(Unit {
                        selector: selector.clone(),
                        pods: selected.clone(),
                        ..Unit::default()
                    });
                    units.len() - 1
                }
            };
            let mut add: [Vec<IRule>; 2] = [Vec::new(), Vec::new()];
            let mut iso = [false; 2];
            for d in [Direction::Ingress, Direction::Egress] {
                let section = match d {
                    Direction::Ingress => p.ingress.as_ref(),
                    Direction::Egress => p.egress.as_ref(),
                };
                let Some(section) = section else { continue };
                iso[di(d)] = section.isolates;
                for r in &section.deny {
                    self.gaps.push(gap(
                        p,
                        &r.path,
                        GapKind::Deny,
                        "this deny rule has no AppNetwork form (AppNetworks only allow); \
                         left out, so what it denies may be allowed",
                    ));
                }
                let mut stopped = false;
                for r in &section.rules {
                    if stopped {
                        self.gaps.push(gap(
                            p,
                            &r.path,
                            GapKind::Deny,
                            "this rule comes after a Deny or Pass rule of the same policy, whose \
                             order an AppNetwork cannot keep; left out",
                        ));
                        continue;
                    }
                    match r.action {
                        Action::Allow => {
                            add[di(d)].extend(self.rule(p, r, d));
                        }
                        Action::Log => {}
                        Action::Deny | Action::Pass => {
                            self.gaps.push(gap(
                                p,
                                &r.path,
                                GapKind::Deny,
                                format!(
                                    "this Calico {} rule has no AppNetwork form (AppNetworks only \
                                     allow); it and the rules after it are left out",
                                    if r.action == Action::Deny {
                                        "Deny"
                                    } else {
                                        "Pass"
                                    }
                                ),
                            ));
                            stopped = true;
                        }
                    }
                }
            }
            if let Some(u) = units.get_mut(at) {
                u.sources.insert(p.origin.clone());
                for d in 0..2 {
                    u.isolates[d] |= iso[d];
                    u.rules[d].append(&mut add[d]);
                }
            }
        }
        self.build(units, &own_pods)
    }

    /// The policy's pod selector (`Some(None)`: every pod of the namespace); `None` when it
    /// has no Kubernetes form (recorded).
    fn subject(&mut self, p: &Policy) -> Option<Option<Selector>> {
        let sel = match &p.subject {
            Subject::K8s { pods, .. } => pods.clone(),
            Subject::Cilium { selector, .. } => {
                let (ns, pods) = split_cilium(selector);
                if ns.is_some() {
                    self.gaps.push(gap(
                        p,
                        &p.selector_path,
                        GapKind::Selector,
                        "the endpoint selector names namespace labels; an AppNetwork's tiers \
                         are pods of its namespace",
                    ));
                    return None;
                }
                pods
            }
            Subject::Calico {
                selector,
                namespaces,
                service_accounts,
                ..
            } => {
                if namespaces.is_some() || service_accounts.is_some() {
                    self.gaps.push(gap(
                        p,
                        &p.selector_path,
                        GapKind::Selector,
                        "a service account or namespace selector on whom the policy applies has \
                         no AppNetwork form",
                    ));
                    return None;
                }
                match calico_to_selector(selector) {
                    Some(s) => s,
                    None => {
                        self.gaps.push(gap(
                            p,
                            &p.selector_path,
                            GapKind::Selector,
                            "this Calico selector has no label selector form (only ==, !=, \
                             has, in, not in and && have one)",
                        ));
                        return None;
                    }
                }
            }
            Subject::Nothing => {
                self.gaps.push(gap(
                    p,
                    &p.selector_path,
                    GapKind::Unevaluable,
                    "the policy selects no pod (host endpoints, nodes or service accounts)",
                ));
                return None;
            }
        };
        Some((!sel.is_empty()).then_some(sel))
    }

    /// An allow rule as intermediate rules (Cilium's FQDN and HTTP forms read from the raw
    /// object); empty when it has no form (recorded).
    fn rule(&mut self, p: &Policy, r: &Rule, d: Direction) -> Vec<IRule> {
        let raw = self
            .raw
            .get(&(
                raw_kind(&p.origin.kind).to_string(),
                p.origin.namespace.clone().unwrap_or_default(),
                p.origin.name.clone(),
            ))
            .and_then(|o| at_path(o, &r.path))
            .cloned();
        if r.not_protocol.is_some() || !r.not_ports.is_empty() || r.ip_version.is_some() {
            self.gaps.push(gap(
                p,
                &r.path,
                GapKind::Negation,
                "notProtocol, notPorts and ipVersion have no AppNetwork form; the rule is left out",
            ));
            return Vec::new();
        }
        let proto = match r.protocol {
            None => None,
            Some(6) => Some(Protocol::Tcp),
            Some(17) => Some(Protocol::Udp),
            Some(132) => Some(Protocol::Sctp),
            Some(n) => {
                self.gaps.push(gap(
                    p,
                    &r.path,
                    GapKind::Negation,
                    format!(
                        "protocol {n} has no AppNetwork form (TCP, UDP and SCTP only); left out"
                    ),
                ));
                return Vec::new();
            }
        };
        let mut http = Vec::new();
        if p.flavor == Flavor::Cilium {
            if let Some(rules) = raw
                .as_ref()
                .and_then(|v| v.get("toPorts"))
                .and_then(Value::as_array)
            {
                for tp in rules {
                    let Some(l7) = tp.get("rules").and_then(Value::as_object) else {
                        continue;
                    };
                    for (kind, list) in l7 {
                        if kind == "http" {
                            for h in list.as_array().into_iter().flatten() {
                                let known = h.as_object().is_some_and(|m| {
                                    m.keys().all(|k| k == "method" || k == "path")
                                });
                                if !known {
                                    self.gaps.push(gap(
                                        p,
                                        &r.path,
                                        GapKind::L7,
                                        "this Cilium HTTP rule matches headers or hosts, which \
                                         have no AppNetwork form; the rule is left out",
                                    ));
                                    return Vec::new();
                                }
                                http.push(HttpRuleSpec {
                                    method: h
                                        .get("method")
                                        .and_then(Value::as_str)
                                        .map(String::from),
                                    path: h.get("path").and_then(Value::as_str).map(String::from),
                                });
                            }
                        } else {
                            self.gaps.push(gap(
                                p,
                                &r.path,
                                GapKind::L7,
                                format!(
                                    "this Cilium L7 rule ({kind}) has no AppNetwork form; the rule \
                                     is left out"
                                ),
                            ));
                            return Vec::new();
                        }
                    }
                }
            }
        }
        let mut ports = match &r.ports {
            None => Ports::All,
            Some(list) => Ports::List(
                list.iter()
                    .map(|s| PortCond {
                        proto: s.proto,
                        range: match &s.val {
                            PortVal::Any => None,
                            PortVal::Range(lo, hi) => Some(PortRange::Numbers(*lo, *hi)),
                            PortVal::Named(n) => Some(PortRange::Named(n.clone())),
                        },
                    })
                    .collect(),
            ),
        };
        if let Some(pr) = proto {
            let only = Ports::List(BTreeSet::from([PortCond {
                proto: Some(pr),
                range: None,
            }]));
            ports = ports.intersect(&only);
        }
        // Cilium FQDN rules: the engine never matches them (nothing resolves offline); their
        // AppNetwork form is an fqdn peer.
        if r.never
            && raw
                .as_ref()
                .and_then(Value::as_object)
                .is_some_and(|m| m.is_empty())
        {
            // Cilium's `{}` rule: isolates, allows nothing (the section says it isolates).
            return Vec::new();
        }
        if r.never {
            let fqdns: Vec<String> = raw
                .as_ref()
                .and_then(|v| v.get("toFQDNs"))
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|f| {
                            f.get("matchName")
                                .or_else(|| f.get("matchPattern"))
                                .and_then(Value::as_str)
                                .map(String::from)
                        })
                        .collect()
                })
                .unwrap_or_default();
            if p.flavor == Flavor::Cilium && d == Direction::Egress && !fqdns.is_empty() {
                if ports == Ports::All {
                    self.gaps.push(gap(
                        p,
                        &r.path,
                        GapKind::Unevaluable,
                        "toFQDNs without toPorts opens every port to the names; an AppNetwork flow \
                         lists its ports, so every TCP, UDP and SCTP port is written",
                    ));
                }
                return vec![IRule {
                    source: p.origin.clone(),
                    peer: Side::Alts(fqdns.into_iter().map(PeerAlt::Fqdn).collect()),
                    ports,
                    http,
                    synthetic: false,
                }];
            }
            self.gaps.push(gap(
                p,
                &r.path,
                GapKind::Unevaluable,
                "this rule holds a condition that cannot be evaluated offline or selects nothing \
                 (services, nodes, groups, service accounts, source ports, an empty list); left out",
            ));
            return Vec::new();
        }
        let peer_id = match d {
            Direction::Ingress => r.src,
            Direction::Egress => r.dst,
        };
        let other_end = match d {
            Direction::Ingress => r.dst,
            Direction::Egress => r.src,
        };
        if other_end.is_some() {
            self.gaps.push(gap(
                p,
                &r.path,
                GapKind::Negation,
                "a condition on the selected pod's own side of the rule has no AppNetwork form; \
                 left out",
            ));
            return Vec::new();
        }
        let side = match peer_id {
            None => Side::Any,
            Some(id) => {
                let alts = self.scenario.peer(id).unwrap_or_default();
                let mut out = Vec::new();
                for a in alts {
                    match self.alt(p, r, a) {
                        Ok(mut x) => out.append(&mut x),
                        Err(()) => return Vec::new(),
                    }
                }
                // Cilium `toFQDNs`: the engine matches no address with them (nothing resolves
                // offline); their AppNetwork form is an fqdn peer.
                if p.flavor == Flavor::Cilium && d == Direction::Egress {
                    let fqdns = raw
                        .as_ref()
                        .and_then(|v| v.get("toFQDNs"))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|f| {
                            f.get("matchName")
                                .or_else(|| f.get("matchPattern"))
                                .and_then(Value::as_str)
                        });
                    out.extend(fqdns.map(|n| PeerAlt::Fqdn(n.to_string())));
                }
                Side::Alts(self.worldify(out))
            }
        };
        vec![IRule {
            source: p.origin.clone(),
            peer: side,
            ports,
            http,
            synthetic: false,
        }]
    }

    /// `0.0.0.0/0` and `::/0` minus exactly the cluster's ranges, both present, is `world`.
    fn worldify(&self, alts: Vec<PeerAlt>) -> Vec<PeerAlt> {
        let blocks = world_blocks(self.cluster);
        let is_world = |a: &PeerAlt| {
            blocks
                .iter()
                .any(|(all, ex)| matches!(a, PeerAlt::Cidr(c, e) if c == all && same_set(e, ex)))
        };
        let all_there = !blocks.is_empty()
            && blocks.iter().all(|(all, ex)| {
                alts.iter()
                    .any(|a| matches!(a, PeerAlt::Cidr(c, e) if c == all && same_set(e, ex)))
            });
        if !all_there {
            return alts;
        }
        let mut out: Vec<PeerAlt> = alts.into_iter().filter(|a| !is_world(a)).collect();
        out.push(PeerAlt::World);
        out
    }

    /// One alternative of a peer; `Err` when it has no form (recorded; the rule is left out).
    fn alt(&mut self, p: &Policy, r: &Rule, a: &Alt) -> Result<Vec<PeerAlt>, ()> {
        let no = |me: &mut Self, kind: GapKind, msg: &str| {
            me.gaps.push(gap(
                p,
                &r.path,
                kind,
                format!("{msg}; the rule is left out"),
            ));
            Err(())
        };
        match a {
            Alt::K8sPods { namespaces, pods } => Ok(vec![match namespaces {
                K8sNs::Own(ns) if ns == self.ns => PeerAlt::Own(pods.clone().filter(|s| !s.is_empty())),
                K8sNs::Own(ns) => PeerAlt::Pods {
                    namespaces: name_selector(ns),
                    pods: pods.clone().filter(|s| !s.is_empty()),
                },
                K8sNs::Selector(s) => PeerAlt::Pods {
                    namespaces: s.clone(),
                    pods: pods.clone().filter(|s| !s.is_empty()),
                },
            }]),
            Alt::K8sBlock { cidr, except } | Alt::CiliumCidr { cidr, except } => {
                if except.iter().any(|e| e.contains(cidr)) {
                    self.gaps.push(gap(
                        p,
                        &r.path,
                        GapKind::Except,
                        format!("an except holds all of {cidr}, so the block matches nothing; left out"),
                    ));
                    return Ok(Vec::new());
                }
                let (inside, outside): (Vec<Cidr>, Vec<Cidr>) =
                    except.iter().partition(|e| cidr.contains(e));
                if !outside.is_empty() {
                    self.gaps.push(gap(
                        p,
                        &r.path,
                        GapKind::Except,
                        format!(
                            "except blocks outside their cidr have no AppNetwork form (they carve \
                             nothing out of {cidr}); left out: {}",
                            outside.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                Ok(vec![PeerAlt::Cidr(*cidr, inside)])
            }
            Alt::CiliumEndpoints {
                namespace,
                selector,
            } => {
                let (nss, pods) = split_cilium(selector);
                let pods = (!pods.is_empty()).then_some(pods);
                Ok(vec![match (namespace, nss) {
                    (Some(ns), _) if ns == self.ns => PeerAlt::Own(pods),
                    (Some(ns), _) => PeerAlt::Pods {
                        namespaces: name_selector(ns),
                        pods,
                    },
                    (None, nss) => PeerAlt::Pods {
                        namespaces: nss.unwrap_or_default(),
                        pods,
                    },
                }])
            }
            Alt::CiliumEntity(e) => match e {
                Entity::World => Ok(vec![PeerAlt::World]),
                Entity::Cluster => Ok(vec![PeerAlt::Pods {
                    namespaces: Selector::default(),
                    pods: None,
                }]),
                Entity::All => Ok(vec![
                    PeerAlt::Pods {
                        namespaces: Selector::default(),
                        pods: None,
                    },
                    PeerAlt::Cidr(Cidr::all(true), Vec::new()),
                    PeerAlt::Cidr(Cidr::all(false), Vec::new()),
                ]),
                Entity::WorldV4 | Entity::WorldV6 => no(
                    self,
                    GapKind::Unevaluable,
                    "the world-ipv4 / world-ipv6 entities have no AppNetwork peer (world is both families)",
                ),
                Entity::Nothing => no(
                    self,
                    GapKind::Unevaluable,
                    "this Cilium entity (host, remote-node, kube-apiserver, ...) has no AppNetwork \
                     peer the simulation can check",
                ),
            },
            Alt::Calico(e) => {
                if e.service_accounts.is_some() || e.not_selector.is_some() {
                    return no(
                        self,
                        GapKind::Negation,
                        "Calico notSelector and serviceAccounts have no AppNetwork form",
                    );
                }
                let conv = |s: &Option<CalicoSelector>| match s {
                    None => Some(None),
                    Some(s) => calico_to_selector(s).map(Some),
                };
                let (Some(sel), Some(nss)) = (conv(&e.selector), conv(&e.namespace_selector)) else {
                    return no(
                        self,
                        GapKind::Selector,
                        "this Calico selector has no label selector form (only ==, !=, has, in, \
                         not in and && have one)",
                    );
                };
                if e.selector.is_some() || e.namespace_selector.is_some() {
                    if !e.nets.is_empty() || !e.not_nets.is_empty() {
                        return no(
                            self,
                            GapKind::Negation,
                            "nets together with a selector (pods in those networks) have no \
                             AppNetwork form",
                        );
                    }
                    let pods = sel.filter(|s| !s.is_empty());
                    return Ok(vec![match (nss, &e.scope) {
                        (Some(n), _) => PeerAlt::Pods {
                            namespaces: n,
                            pods,
                        },
                        (None, Some(ns)) if ns == self.ns => PeerAlt::Own(pods),
                        (None, Some(ns)) => PeerAlt::Pods {
                            namespaces: name_selector(ns),
                            pods,
                        },
                        (None, None) => PeerAlt::Pods {
                            namespaces: Selector::default(),
                            pods,
                        },
                    }]);
                }
                let nets: Vec<Cidr> = if e.nets.is_empty() {
                    if e.not_nets.is_empty() {
                        // An entity with nothing in it: every endpoint and address.
                        return Ok(vec![
                            PeerAlt::Pods {
                                namespaces: Selector::default(),
                                pods: None,
                            },
                            PeerAlt::Cidr(Cidr::all(true), Vec::new()),
                            PeerAlt::Cidr(Cidr::all(false), Vec::new()),
                        ]);
                    }
                    vec![Cidr::all(true), Cidr::all(false)]
                } else {
                    e.nets.clone()
                };
                let mut out = Vec::new();
                for n in nets {
                    let except: Vec<Cidr> = e
                        .not_nets
                        .iter()
                        .filter(|x| x.is_ipv4() == n.is_ipv4())
                        .copied()
                        .collect();
                    if except.iter().any(|x| !n.contains(x) && x.contains(&n)) {
                        continue;
                    }
                    if except.iter().any(|x| !n.contains(x)) {
                        return no(
                            self,
                            GapKind::Negation,
                            "notNets that overlap a net without lying inside it have no except form",
                        );
                    }
                    out.push(PeerAlt::Cidr(n, except));
                }
                Ok(out)
            }
        }
    }

    /// The AppNetwork of the namespace's units.
    fn build(&mut self, mut units: Vec<Unit>, own_pods: &[usize]) -> ImportedApp {
        let mut baseline_sources = BTreeSet::new();
        let mut baseline = BaselineSpec {
            deny_ingress: false,
            deny_egress: false,
        };
        // Namespace-wide units: the baseline, and an all-pods tier when they allow something.
        for u in units.iter().filter(|u| u.selector.is_none()) {
            baseline.deny_ingress |= u.isolates[0];
            baseline.deny_egress |= u.isolates[1];
            baseline_sources.extend(u.sources.iter().cloned());
        }
        // DNS.
        let dns = self.absorb_dns(&mut units);
        if let Some((_, ref srcs)) = dns {
            baseline_sources.extend(srcs.iter().cloned());
        }
        // The namespace-wide policies become a tier when they allow something, or when there
        // is no other tier (an AppNetwork has at least one).
        let wide_rules = units
            .iter()
            .any(|u| u.selector.is_none() && u.rules.iter().any(|r| !r.is_empty()))
            || !units.iter().any(|u| u.selector.is_some());
        units.retain(|u| u.selector.is_some() || wide_rules);
        for u in &mut units {
            if u.selector.is_none() {
                u.name = EVERY_POD_TIER.to_string();
                u.selector = Some(Selector {
                    match_labels: BTreeMap::new(),
                    match_expressions: vec![Requirement {
                        key: EVERY_POD_KEY.to_string(),
                        op: SelectorOp::DoesNotExist,
                        values: BTreeSet::new(),
                    }],
                });
                u.pods = own_pods.iter().copied().collect();
            }
        }
        // Open what a tier's policies do not isolate, when no other policy isolates its pods.
        let isolated: Vec<[bool; 2]> = units.iter().map(|u| u.isolates).collect();
        let mut decisions = Vec::new();
        for (k, u) in units.iter().enumerate() {
            for (d, dir) in [(0, Direction::Ingress), (1, Direction::Egress)] {
                if u.isolates[d] {
                    continue;
                }
                let every = is_every_pod(u);
                let given = u.pods.iter().any(|&i| {
                    let (ing, eg) = self.scenario.isolation(i);
                    if d == 0 {
                        ing
                    } else {
                        eg
                    }
                });
                let others = units.iter().enumerate().any(|(j, t)| {
                    j != k
                        && isolated.get(j).is_some_and(|x| x[d])
                        && (every || t.selector.as_ref().is_some_and(|s| covers(Some(s), u)))
                });
                let wide = !every && baseline_isolates(&baseline, d);
                decisions.push((k, d, dir, wide, given || others));
            }
        }
        for (k, d, dir, wide, by_others) in decisions {
            let Some(u) = units.get_mut(k) else { continue };
            if wide || by_others {
                if by_others && !wide {
                    for src in &u.sources {
                        self.gaps.push(Gap {
                            policy: src.clone(),
                            field: String::new(),
                            kind: GapKind::OpenDirection,
                            message: format!(
                                "the policy leaves {w} open for the pods it selects, but other \
                                 policies isolate some of them for {w}; an AppNetwork tier is \
                                 isolated both ways, and opening {w} for the tier would open it \
                                 for those pods too, so it is not opened",
                                w = dir_word(dir)
                            ),
                        });
                    }
                }
                u.isolates[d] = true;
                continue;
            }
            let source = u.sources.iter().next().cloned().unwrap_or_default();
            u.rules[d].push(IRule {
                source,
                peer: Side::Any,
                ports: Ports::All,
                http: Vec::new(),
                synthetic: true,
            });
        }
        // Names.
        let mut used = BTreeSet::new();
        for u in &mut units {
            if u.name.is_empty() {
                u.name = tier_name(u);
            }
            let base = u.name.clone();
            let mut n = 2;
            while !used.insert(u.name.clone()) {
                u.name = format!("{}-{n}", truncate(&base, 60));
                n += 1;
            }
        }
        let flows = self.flows(&units);
        let tiers: Vec<TierSpec> = units
            .iter()
            .map(|u| TierSpec {
                name: u.name.clone(),
                selector: label_selector(u.selector.as_ref().unwrap_or(&Selector::default())),
                ports: Vec::new(),
            })
            .collect();
        let tier_sources = units.iter().map(|u| u.sources.clone()).collect();
        let mut flow_specs = Vec::new();
        let mut flow_sources = Vec::new();
        let mut flow_notes = Vec::new();
        for (f, s, n) in flows {
            flow_specs.push(f);
            flow_sources.push(s);
            flow_notes.push(n.into_iter().collect::<Vec<_>>().join("; "));
        }
        let dns_spec = match dns {
            Some((found, _)) => DnsSpec {
                enabled: true,
                namespace: found.namespace,
                selector: label_selector(&found.pods),
                node_local_address: found.node_local.map(|a| a.to_string()),
            },
            None => DnsSpec {
                enabled: false,
                ..DnsSpec::default()
            },
        };
        ImportedApp {
            namespace: self.ns.to_string(),
            name: APP_NAME.to_string(),
            spec: AppNetworkSpec {
                backend: Default::default(),
                mode: Default::default(),
                baseline,
                dns: dns_spec,
                tiers,
                flows: flow_specs,
            },
            tier_sources,
            flow_sources,
            flow_notes,
            baseline_sources,
        }
    }

    /// The part of an alternative that is pods of this namespace: `Some(None)` all of them,
    /// `Some(Some(sel))` those `sel` selects, `None` none.
    fn own_part(&self, a: &PeerAlt) -> Option<Option<Selector>> {
        match a {
            PeerAlt::Own(s) => Some(s.clone()),
            PeerAlt::Pods { namespaces, pods } if namespaces.matches(&self.ns_labels) => {
                Some(pods.clone())
            }
            _ => None,
        }
    }

    /// Finds the DNS pods every egress-isolated pod may reach on UDP and TCP 53, removes those
    /// rules (and the NodeLocal DNSCache rules beside them), and returns the target with the
    /// policies that allowed it.
    fn absorb_dns(&self, units: &mut [Unit]) -> Option<(DnsFound, BTreeSet<PolicyRef>)> {
        let wide_isolates = units.iter().any(|u| u.selector.is_none() && u.isolates[1]);
        let needing: Vec<&Unit> = if wide_isolates {
            units.iter().filter(|u| u.selector.is_none()).collect()
        } else {
            units.iter().filter(|u| u.isolates[1]).collect()
        };
        if needing.is_empty() {
            return None;
        }
        // The DNS targets a group of units reaches on both protocols.
        let covered = |group: &[&Unit]| -> BTreeSet<(String, Selector)> {
            let mut m: BTreeMap<(String, Selector), BTreeSet<Protocol>> = BTreeMap::new();
            for u in group {
                for r in &u.rules[1] {
                    if let Some((alts, protos)) = self.dns_rule(r) {
                        for a in alts {
                            if let DnsAlt::Main(ns, sel) = a {
                                m.entry((ns, sel))
                                    .or_default()
                                    .extend(protos.iter().copied());
                            }
                        }
                    }
                }
            }
            m.into_iter()
                .filter(|(_, p)| p.len() == 2)
                .map(|(t, _)| t)
                .collect()
        };
        let target = if wide_isolates {
            covered(&needing).into_iter().next()?
        } else {
            let first = covered(&needing[..1]);
            first
                .into_iter()
                .find(|t| needing.iter().all(|u| covered(&[u]).contains(t)))?
        };
        let mut sources = BTreeSet::new();
        let mut local: Option<IpAddr> = None;
        let mut local_pods = false;
        for u in units.iter_mut() {
            let mut kept = Vec::new();
            for r in std::mem::take(&mut u.rules[1]) {
                // An address alone counts only when link-local, as NodeLocal DNSCache's are
                // (169.254.20.10 by default): any other /32 on 53 is a flow of its own.
                let ours = self.dns_rule(&r).is_some_and(|(alts, _)| {
                    let with_pods = alts.iter().any(|a| !matches!(a, DnsAlt::LocalAddress(_)));
                    alts.iter().all(|a| match a {
                        DnsAlt::Main(ns, sel) => *ns == target.0 && *sel == target.1,
                        DnsAlt::LocalPods(ns) => *ns == target.0,
                        DnsAlt::LocalAddress(ip) => with_pods || link_local(ip),
                    })
                });
                if ours {
                    for a in self.dns_rule(&r).map(|(a, _)| a).unwrap_or_default() {
                        match a {
                            DnsAlt::LocalAddress(ip) => local = Some(ip),
                            DnsAlt::LocalPods(_) => local_pods = true,
                            DnsAlt::Main(..) => {}
                        }
                    }
                    sources.insert(r.source.clone());
                } else {
                    kept.push(r);
                }
            }
            u.rules[1] = kept;
        }
        if local.is_none() && local_pods {
            // Cilium writes NodeLocal DNSCache as its pods only: the address is the add-on's
            // documented default.
            local = Some(IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 20, 10)));
        }
        Some((
            DnsFound {
                namespace: target.0,
                pods: target.1,
                node_local: local,
            },
            sources,
        ))
    }

    /// A rule towards DNS only (UDP / TCP 53, peers DNS pods, NodeLocal DNSCache pods or one
    /// address): its peers and protocols.
    fn dns_rule(&self, r: &IRule) -> Option<(Vec<DnsAlt>, BTreeSet<Protocol>)> {
        let Side::Alts(alts) = &r.peer else {
            return None;
        };
        if !r.http.is_empty() || alts.is_empty() {
            return None;
        }
        let Ports::List(list) = &r.ports else {
            return None;
        };
        let mut protos = BTreeSet::new();
        for c in list {
            if c.range != Some(PortRange::Numbers(53, 53)) {
                return None;
            }
            match c.proto {
                Some(p @ (Protocol::Tcp | Protocol::Udp)) => {
                    protos.insert(p);
                }
                _ => return None,
            }
        }
        let local = crate::vocab::node_local_dns_pods();
        let mut out = Vec::new();
        for a in alts {
            out.push(match a {
                PeerAlt::Pods {
                    namespaces,
                    pods: Some(pods),
                } => {
                    if !namespaces.match_expressions.is_empty()
                        || namespaces.match_labels.len() != 1
                    {
                        return None;
                    }
                    let ns = namespaces.match_labels.get(NAMESPACE_NAME_LABEL)?;
                    if ns == self.ns {
                        return None;
                    }
                    if *pods == local {
                        DnsAlt::LocalPods(ns.clone())
                    } else {
                        DnsAlt::Main(ns.clone(), pods.clone())
                    }
                }
                PeerAlt::Cidr(c, e)
                    if e.is_empty() && c.prefix_len() == if c.is_ipv4() { 32 } else { 128 } =>
                {
                    DnsAlt::LocalAddress(c.to_string().split('/').next()?.parse().ok()?)
                }
                _ => return None,
            });
        }
        Some((out, protos))
    }

    /// The flows: one-sided ones towards other namespaces and addresses, and the tier pairs.
    fn flows(&mut self, units: &[Unit]) -> Vec<(FlowSpec, BTreeSet<PolicyRef>, BTreeSet<String>)> {
        let mut out: Vec<(FlowSpec, BTreeSet<PolicyRef>, BTreeSet<String>)> = Vec::new();
        let mut push = |from: PeerSpec,
                        to: PeerSpec,
                        ports: &Ports,
                        http: &[HttpRuleSpec],
                        src: &PolicyRef,
                        note: Option<String>| {
            let list = crd_ports(ports);
            if list.is_empty() {
                return;
            }
            let http = (!http.is_empty()).then(|| http.to_vec());
            if let Some((f, s, n)) = out
                .iter_mut()
                .find(|(f, _, _)| f.from == from && f.to == to && f.http == http)
            {
                n.extend(note);
                let mut all = f.ports.take().unwrap_or_default();
                for p in list {
                    if !all.contains(&p) {
                        all.push(p);
                    }
                }
                f.ports = Some(all);
                s.insert(src.clone());
                return;
            }
            out.push((
                FlowSpec {
                    from,
                    to,
                    ports: Some(list),
                    http,
                },
                BTreeSet::from([src.clone()]),
                note.into_iter().collect(),
            ));
        };
        let opened = |u: &Unit, d: usize| {
            format!(
                "{} of tier {} written out: none of its policies isolates it",
                if d == 0 { "ingress" } else { "egress" },
                u.name
            )
        };
        let tier = |u: &Unit| PeerSpec {
            tier: Some(u.name.clone()),
            ..PeerSpec::default()
        };
        // One-sided flows.
        for u in units {
            for (d, rules) in u.rules.iter().enumerate() {
                for r in rules {
                    let alts = match &r.peer {
                        Side::Any => vec![
                            PeerAlt::Pods {
                                namespaces: Selector::default(),
                                pods: None,
                            },
                            PeerAlt::Cidr(Cidr::all(true), Vec::new()),
                            PeerAlt::Cidr(Cidr::all(false), Vec::new()),
                        ],
                        Side::Alts(a) => a.clone(),
                    };
                    for a in &alts {
                        for peer in self.other_part(units, a, r, d) {
                            let note = r.synthetic.then(|| opened(u, d));
                            if d == 0 {
                                push(peer, tier(u), &r.ports, &r.http, &r.source, note);
                            } else {
                                push(tier(u), peer, &r.ports, &r.http, &r.source, note);
                            }
                        }
                    }
                }
            }
        }
        // Tier pairs: both ends must allow; a flow per pair of rules, so that HTTP rules stay
        // with the ports they came with.
        for a in units {
            for b in units {
                let (_, eg) = self.toward(a, b, 1);
                let (_, ing) = self.toward(b, a, 0);
                for re in &eg {
                    for ri in &ing {
                        let ports = re.ports.intersect(&ri.ports);
                        if ports.is_empty() {
                            continue;
                        }
                        let http = match (re.http.is_empty(), ri.http.is_empty()) {
                            (true, _) => ri.http.clone(),
                            (false, true) => re.http.clone(),
                            (false, false) => {
                                // Both sides filter: only requests both allow; kept when equal.
                                if re.http != ri.http {
                                    continue;
                                }
                                re.http.clone()
                            }
                        };
                        if !http.is_empty() && !only_tcp(&ports) {
                            continue;
                        }
                        let note = match (re.synthetic, ri.synthetic) {
                            (true, _) => Some(opened(a, 1)),
                            (false, true) => Some(opened(b, 0)),
                            _ => None,
                        };
                        for src in [&re.source, &ri.source] {
                            push(tier(a), tier(b), &ports, &http, src, note.clone());
                        }
                    }
                }
            }
        }
        out
    }

    /// The ports `u`'s rules of direction `d` allow towards (or from) tier `other`'s pods, and
    /// the rules that do.
    fn toward<'u>(&self, u: &'u Unit, other: &Unit, d: usize) -> (Ports, Vec<&'u IRule>) {
        let mut ports = Ports::none();
        let mut rules = Vec::new();
        for r in &u.rules[d] {
            let hit = match &r.peer {
                Side::Any => true,
                Side::Alts(alts) => alts.iter().any(|a| match self.own_part(a) {
                    Some(sel) => covers(sel.as_ref(), other),
                    None => false,
                }),
            };
            if hit {
                ports.union(&r.ports);
                rules.push(r);
            }
        }
        (ports, rules)
    }

    /// The AppNetwork peer for the part of an alternative outside this namespace's pods.
    fn other_part(&mut self, units: &[Unit], a: &PeerAlt, r: &IRule, d: usize) -> Vec<PeerSpec> {
        match a {
            PeerAlt::Own(None) => self.untiered_peer(units, r).into_iter().collect(),
            PeerAlt::Own(Some(sel)) => {
                if units.iter().any(|t| covers(Some(sel), t)) {
                    return Vec::new();
                }
                vec![PeerSpec {
                    namespace_selector: Some(label_selector(&name_selector(self.ns))),
                    selector: Some(label_selector(sel)),
                    ..PeerSpec::default()
                }]
            }
            PeerAlt::Pods { namespaces, pods } => {
                let pods_spec = pods.as_ref().map(label_selector);
                let mut nss = namespaces.clone();
                let mut out = Vec::new();
                if namespaces.matches(&self.ns_labels) {
                    let tiered = units.iter().any(|t| covers(pods.as_ref(), t));
                    if pods.is_none() {
                        out.extend(self.untiered_peer(units, r));
                    }
                    if tiered {
                        // The tiers are in the pairs; the rest of the namespaces stays here.
                        nss.match_expressions.push(Requirement {
                            key: NAMESPACE_NAME_LABEL.to_string(),
                            op: SelectorOp::NotIn,
                            values: BTreeSet::from([self.ns.to_string()]),
                        });
                    }
                }
                if nss.is_empty() {
                    out.push(PeerSpec {
                        all_namespaces: Some(true),
                        selector: pods_spec,
                        ..PeerSpec::default()
                    });
                    return out;
                }
                let named = (nss.match_expressions.is_empty() && nss.match_labels.len() == 1)
                    .then(|| nss.match_labels.get(NAMESPACE_NAME_LABEL).cloned())
                    .flatten()
                    .filter(|n| n != self.ns);
                out.push(match named {
                    Some(n) => PeerSpec {
                        namespace: Some(n),
                        selector: pods_spec,
                        ..PeerSpec::default()
                    },
                    None => PeerSpec {
                        namespace_selector: Some(label_selector(&nss)),
                        selector: pods_spec,
                        ..PeerSpec::default()
                    },
                });
                out
            }
            PeerAlt::Cidr(c, except) => vec![PeerSpec {
                cidr: Some(c.to_string()),
                except: (!except.is_empty())
                    .then(|| except.iter().map(ToString::to_string).collect()),
                ..PeerSpec::default()
            }],
            PeerAlt::World => vec![PeerSpec {
                world: Some(true),
                ..PeerSpec::default()
            }],
            PeerAlt::Fqdn(n) if d == 1 => vec![PeerSpec {
                fqdn: Some(n.clone()),
                ..PeerSpec::default()
            }],
            PeerAlt::Fqdn(_) => Vec::new(),
        }
    }

    /// The pods of this namespace that no tier selects, as a peer: a namespace selector on
    /// this namespace with a selector that is the complement of the tiers' (when every tier
    /// selects on one value of the same label key). Nothing when an all-pods tier holds every
    /// pod; recorded as a gap when the complement has no selector form.
    fn untiered_peer(&mut self, units: &[Unit], r: &IRule) -> Option<PeerSpec> {
        if units.iter().any(is_every_pod) {
            return None;
        }
        let mut key: Option<&String> = None;
        let mut values = BTreeSet::new();
        for u in units {
            let sel = u.selector.as_ref()?;
            let single = sel.match_expressions.is_empty() && sel.match_labels.len() == 1;
            let (k, v) = sel
                .match_labels
                .iter()
                .next()
                .filter(|_| single)
                .or_else(|| {
                    self.pods_in_no_tier(r);
                    None
                })?;
            if key.is_some_and(|x| x != k) {
                self.pods_in_no_tier(r);
                return None;
            }
            key = Some(k);
            values.insert(v.clone());
        }
        let selector = key.map(|k| Selector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement {
                key: k.clone(),
                op: SelectorOp::NotIn,
                values,
            }],
        });
        Some(PeerSpec {
            namespace_selector: Some(label_selector(&name_selector(self.ns))),
            selector: selector.as_ref().map(label_selector),
            ..PeerSpec::default()
        })
    }

    fn pods_in_no_tier(&mut self, r: &IRule) {
        if r.synthetic {
            return;
        }
        self.gaps.push(Gap {
            policy: r.source.clone(),
            field: String::new(),
            kind: GapKind::PodsInNoTier,
            message: format!(
                "a rule admits every pod of {}, including pods no tier selects; an AppNetwork \
                 names pods of its own namespace only as tiers, so those are not admitted",
                self.ns
            ),
        });
    }
}

/// Whether an address is link-local (169.254.0.0/16, fe80::/10).
fn link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Whether every port of the set is TCP (HTTP rules need TCP ports).
fn only_tcp(p: &Ports) -> bool {
    match p {
        Ports::All => false,
        Ports::List(l) => l.iter().all(|c| c.proto == Some(Protocol::Tcp)),
    }
}

/// Whether the unit is the all-pods tier (by its selector: a policy's own tier may be named
/// `all-pods` too).
fn is_every_pod(u: &Unit) -> bool {
    u.selector
        .as_ref()
        .is_some_and(|s| s.match_expressions.iter().any(|r| r.key == EVERY_POD_KEY))
}

fn baseline_isolates(b: &BaselineSpec, d: usize) -> bool {
    if d == 0 {
        b.deny_ingress
    } else {
        b.deny_egress
    }
}

fn dir_word(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

/// Whether a rule's pod selector (`None`: every pod) covers a tier's pods: it selects the
/// tier's example pod, or every given pod of the tier.
fn covers(sel: Option<&Selector>, u: &Unit) -> bool {
    let Some(sel) = sel else { return true };
    let Some(tier) = &u.selector else {
        return sel.is_empty();
    };
    sel == tier || sel.matches(&tier.example_labels())
}

fn same_set(a: &[Cidr], b: &[Cidr]) -> bool {
    let x: BTreeSet<String> = a.iter().map(ToString::to_string).collect();
    let y: BTreeSet<String> = b.iter().map(ToString::to_string).collect();
    x == y
}

/// A selector of one namespace by name.
fn name_selector(ns: &str) -> Selector {
    Selector::labels([(NAMESPACE_NAME_LABEL, ns)])
}

/// The kind as the raw object spells it (`projectcalico.org/v3 NetworkPolicy` → `NetworkPolicy`).
fn raw_kind(kind: &str) -> &str {
    kind.rsplit(' ').next().unwrap_or(kind)
}

/// A Cilium selector split into its namespace part (the namespace name and
/// `io.cilium.k8s.namespace.labels.*` keys, as a selector on namespace labels) and its pod part.
pub(super) fn split_cilium(s: &Selector) -> (Option<Selector>, Selector) {
    let mut ns = Selector::default();
    let mut pods = Selector::default();
    let ns_key = |k: &str| -> Option<String> {
        if k == CILIUM_POD_NAMESPACE_LABEL {
            Some(NAMESPACE_NAME_LABEL.to_string())
        } else {
            k.strip_prefix(CILIUM_NAMESPACE_LABELS_PREFIX)
                .map(|rest| rest.trim_start_matches('.').to_string())
        }
    };
    for (k, v) in &s.match_labels {
        match ns_key(k) {
            Some(nk) => {
                ns.match_labels.insert(nk, v.clone());
            }
            None => {
                pods.match_labels.insert(k.clone(), v.clone());
            }
        }
    }
    for r in &s.match_expressions {
        match ns_key(&r.key) {
            Some(nk) => ns.match_expressions.push(Requirement {
                key: nk,
                ..r.clone()
            }),
            None => pods.match_expressions.push(r.clone()),
        }
    }
    ((!ns.is_empty()).then_some(ns), pods)
}

/// A Calico selector as a Kubernetes label selector, when it has that form.
fn calico_to_selector(s: &CalicoSelector) -> Option<Selector> {
    let mut out = Selector::default();
    fn add(s: &CalicoSelector, out: &mut Selector) -> bool {
        let req = |key: &str, op: SelectorOp, values: BTreeSet<String>| Requirement {
            key: key.to_string(),
            op,
            values,
        };
        match s {
            CalicoSelector::All => true,
            CalicoSelector::Eq(k, v) => {
                if out.match_labels.get(k).is_some_and(|x| x != v) {
                    return false;
                }
                out.match_labels.insert(k.clone(), v.clone());
                true
            }
            CalicoSelector::Has(k) => {
                out.match_expressions
                    .push(req(k, SelectorOp::Exists, BTreeSet::new()));
                true
            }
            CalicoSelector::Ne(k, v) => {
                out.match_expressions
                    .push(req(k, SelectorOp::NotIn, BTreeSet::from([v.clone()])));
                true
            }
            CalicoSelector::In(k, vs) if !vs.is_empty() => {
                out.match_expressions
                    .push(req(k, SelectorOp::In, vs.clone()));
                true
            }
            CalicoSelector::NotIn(k, vs) if !vs.is_empty() => {
                out.match_expressions
                    .push(req(k, SelectorOp::NotIn, vs.clone()));
                true
            }
            CalicoSelector::Not(inner) => match inner.as_ref() {
                CalicoSelector::Has(k) => {
                    out.match_expressions
                        .push(req(k, SelectorOp::DoesNotExist, BTreeSet::new()));
                    true
                }
                _ => false,
            },
            CalicoSelector::And(es) => es.iter().all(|e| add(e, out)),
            _ => false,
        }
    }
    add(s, &mut out).then_some(out)
}

/// The AppNetwork port list of a set of ports (every protocol spelled out).
fn crd_ports(p: &Ports) -> Vec<CrdPort> {
    let all_protos = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];
    let conds: Vec<PortCond> = match p {
        Ports::All => all_protos
            .iter()
            .map(|&pr| PortCond {
                proto: Some(pr),
                range: None,
            })
            .collect(),
        Ports::List(l) => l.iter().cloned().collect(),
    };
    let mut out: Vec<CrdPort> = Vec::new();
    for c in conds {
        let protos: Vec<Protocol> = match c.proto {
            Some(p) => vec![p],
            None => all_protos.to_vec(),
        };
        for pr in protos {
            let protocol = ProtocolSpec::from(pr);
            let port = match &c.range {
                None => CrdPort {
                    port: Some(1),
                    end_port: Some(65535),
                    name: None,
                    protocol,
                },
                Some(PortRange::Numbers(lo, hi)) if lo == hi => {
                    CrdPort::number(i32::from(*lo), protocol)
                }
                Some(PortRange::Numbers(lo, hi)) => CrdPort {
                    port: Some(i32::from(*lo)),
                    end_port: Some(i32::from(*hi)),
                    name: None,
                    protocol,
                },
                Some(PortRange::Named(n)) => CrdPort {
                    port: None,
                    end_port: None,
                    name: Some(n.clone()),
                    protocol,
                },
            };
            if !out.contains(&port) {
                out.push(port);
            }
        }
    }
    out
}

/// A tier name from the selector's most telling label, else from its first policy.
fn tier_name(u: &Unit) -> String {
    let from_labels = u.selector.as_ref().and_then(|s| {
        let keys = [
            "app.kubernetes.io/name",
            "app.kubernetes.io/component",
            "app",
            "k8s-app",
            "name",
            "component",
            "tier",
            "role",
            "pod",
        ];
        keys.iter()
            .find_map(|k| s.match_labels.get(*k))
            .or_else(|| s.match_labels.values().next())
            .cloned()
            .or_else(|| {
                s.match_expressions
                    .iter()
                    .find(|r| r.op == SelectorOp::In)
                    .map(|r| r.values.iter().cloned().collect::<Vec<_>>().join("-"))
            })
    });
    let raw = from_labels
        .or_else(|| u.sources.iter().next().map(|p| p.name.clone()))
        .unwrap_or_else(|| "tier".to_string());
    let mut name: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name = name.trim_matches('-').to_string();
    if name.is_empty() {
        name = "tier".to_string();
    }
    truncate(&name, 63)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars()
        .take(n)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}
