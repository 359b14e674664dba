//! ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`, kubernetes-sigs/network-policy-api
//! v0.2.0): reading and evaluation.
//!
//! # Semantics (the API's `clusternetworkpolicy_types.go` and its conformance suite)
//! Per direction, at each end of a connection:
//! 1. `tier: Admin` policies selecting the pod, by `priority` (lower first; equal priorities
//!    are undefined upstream, here ordered by name), rules in written order: the first
//!    matching rule decides. `Accept` allows and `Deny` denies, finally; `Pass` skips the rest
//!    of the Admin tier.
//! 2. NetworkPolicies (and, in a Calico or Cilium input, those policies, with their own
//!    semantics): when one selects the pod for the direction and isolates it, it decides.
//!    A policy that selects the pod without isolating it (Cilium `enableDefaultDeny: false`)
//!    decides only with a deny.
//! 3. `tier: Baseline` policies, the same way as Admin (`Pass` ends the tier).
//! 4. Allow.
//!
//! An egress `Accept` does not open the destination's ingress: each end is decided on its
//! own, as for every other kind.
//!
//! `subject`: `namespaces` (a namespace selector) or `pods` (`namespaceSelector` AND
//! `podSelector`). Peers: `namespaces`, `pods`, and on egress `networks` (CIDRs, which match pod
//! addresses too, in every mode). `protocols`: `tcp` / `udp` / `sctp` with `destinationPort`
//! (`number` or `range`), or `destinationNamedPort` (resolved on the destination pod's container
//! ports). Absent `protocols`: every port.
//!
//! **Not simulated**: `nodes` and `domainNames` peers (experimental channel) never match; a rule
//! holding only such peers matches nothing. `Scenario::unsimulated` lists every such peer,
//! so the CLI can say so.
//!
//! This module needs nothing from the engine's root: the scenario's tables are passed in as
//! [`Tables`], and the root calls [`Cnps::tier`] around its own evaluation.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::core::{Cidr, Protocol, Selector};

use super::error::EngineError;
use super::json::{at, get, join, Ctx};
use super::model::{
    port_matches, section as policy_section, Action, Conn, Direction, Effect, Ep, Flavor,
    Namespace, Pod, Policy, PolicyRef, PortSpec, PortVal, Rule, Section, Subject, Trace,
};
use super::read::{k8s_selector, parse_cidr, port_number};

#[cfg(test)]
mod conformance;

/// The tier of a ClusterNetworkPolicy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// Before NetworkPolicies.
    Admin,
    /// After NetworkPolicies.
    Baseline,
}

/// Who a ClusterNetworkPolicy applies to.
#[derive(Clone, Debug)]
pub(crate) struct CnpSubject {
    /// Namespaces (`namespaces`, or `pods.namespaceSelector`).
    pub namespaces: Selector,
    /// Pods in them (`pods.podSelector`; `None`: every pod).
    pub pods: Option<Selector>,
}

/// One peer of a rule.
#[derive(Clone, Debug)]
pub(crate) enum CnpPeer {
    /// Every pod in the namespaces matching.
    Namespaces(Selector),
    /// Pods matching `pods` in namespaces matching `namespaces`.
    Pods {
        /// `namespaceSelector`.
        namespaces: Selector,
        /// `podSelector`.
        pods: Selector,
    },
    /// Addresses, pods' included.
    Networks(Vec<Cidr>),
    /// `nodes` or `domainNames`: not simulated, never matches.
    NotSimulated,
}

/// What the engine keeps of one ClusterNetworkPolicy besides its compiled [`Policy`] (whose
/// subject is [`Subject::Nothing`], so that the NetworkPolicy index never lists it).
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    /// Index of its compiled policy in `Scenario::policies` (set when absorbed).
    pub pid: u32,
    /// `metadata.name`.
    pub name: String,
    /// `spec.tier`.
    pub tier: Tier,
    /// `spec.priority`.
    pub priority: u32,
    /// `spec.subject`.
    pub subject: CnpSubject,
    /// Peers of each ingress rule, parallel to the policy's ingress rules.
    pub ingress: Vec<Vec<CnpPeer>>,
    /// Peers of each egress rule, parallel to the policy's egress rules.
    pub egress: Vec<Vec<CnpPeer>>,
    /// Field paths of the peers that are not simulated.
    pub unsimulated: Vec<String>,
}

/// One read ClusterNetworkPolicy.
pub(crate) struct Cnp {
    /// The compiled policy (rules, actions, ports; subject `Nothing`).
    pub policy: Policy,
    /// Tier, priority, subject and peers.
    pub meta: Meta,
}

/// Per pod: the ClusterNetworkPolicies (indices into [`Cnps`]) applying to it, in evaluation
/// order (Admin by priority, then Baseline by priority; ties by name). The subject is the same
/// for both directions.
#[derive(Clone, Debug, Default)]
pub(crate) struct CnpIndex {
    applying: Vec<Vec<usize>>,
}

/// Every ClusterNetworkPolicy of a scenario, with the per-pod index built lazily from it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cnps {
    metas: Vec<Meta>,
    index: OnceLock<CnpIndex>,
}

/// What evaluation reads from the scenario, borrowed.
#[derive(Clone, Copy)]
pub(crate) struct Tables<'a> {
    /// The namespaces.
    pub namespaces: &'a [Namespace],
    /// Index into `namespaces` by name.
    pub ns_by_name: &'a HashMap<String, usize>,
    /// The pods (`Ep::Pod` indexes them).
    pub pods: &'a [Pod],
    /// The compiled policies (`Meta::pid` indexes them).
    pub policies: &'a [Policy],
}

impl<'a> Tables<'a> {
    fn ns_labels(&self, name: &str) -> Option<&'a BTreeMap<String, String>> {
        self.ns_by_name
            .get(name)
            .and_then(|&i| self.namespaces.get(i))
            .map(|n| &n.labels)
    }
}

const MAX_PRIORITY: u64 = 1000;

/// Reads a ClusterNetworkPolicy's `spec`.
pub(crate) fn read(
    ctx: &Ctx,
    spec: &Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<Cnp, EngineError> {
    let tier = match ctx.opt_str(spec, "tier", path)? {
        Some("Admin") => Tier::Admin,
        Some("Baseline") => Tier::Baseline,
        Some(other) => {
            return Err(ctx.err(
                &join(path, "tier"),
                format!("unknown tier {other:?} (expected Admin or Baseline)"),
            ))
        }
        None => return Err(ctx.err(&join(path, "tier"), "missing")),
    };
    let priority = get(spec, "priority")
        .ok_or_else(|| ctx.err(&join(path, "priority"), "missing"))
        .and_then(|v| ctx.uint(v, &join(path, "priority"), MAX_PRIORITY))?;
    let priority = u32::try_from(priority).unwrap_or(u32::MAX);
    let spath = join(path, "subject");
    let subject = ctx
        .opt_obj(spec, "subject", path)?
        .ok_or_else(|| ctx.err(&spath, "missing"))?;
    let subject = match (get(subject, "namespaces"), get(subject, "pods")) {
        (Some(ns), None) => CnpSubject {
            namespaces: k8s_selector(ctx, ns, &join(&spath, "namespaces"))?,
            pods: None,
        },
        (None, Some(pods)) => {
            let (namespaces, pods) = pods_peer(ctx, pods, &join(&spath, "pods"))?;
            CnpSubject {
                namespaces,
                pods: Some(pods),
            }
        }
        _ => return Err(ctx.err(&spath, "exactly one of namespaces and pods must be set")),
    };
    let mut unsimulated = Vec::new();
    let (ingress_rules, ingress) = section(ctx, spec, path, Direction::Ingress, &mut unsimulated)?;
    let (egress_rules, egress) = section(ctx, spec, path, Direction::Egress, &mut unsimulated)?;
    let policy = Policy {
        kind: "ClusterNetworkPolicy",
        origin: PolicyRef::default(),
        flavor: Flavor::ClusterNetworkPolicy,
        display: name.into(),
        namespace: None,
        order: None,
        tier: None,
        subject: Subject::Nothing,
        selector_path: spath,
        ingress: Some(Section {
            rules: ingress_rules,
            deny: Vec::new(),
            isolates: false,
        }),
        egress: Some(Section {
            rules: egress_rules,
            deny: Vec::new(),
            isolates: false,
        }),
    };
    Ok(Cnp {
        policy,
        meta: Meta {
            pid: 0,
            name: name.to_string(),
            tier,
            priority,
            subject,
            ingress,
            egress,
            unsimulated,
        },
    })
}

fn pods_peer(ctx: &Ctx, v: &Value, path: &str) -> Result<(Selector, Selector), EngineError> {
    let m = ctx.obj(v, path)?;
    let namespaces = match get(m, "namespaceSelector") {
        Some(ns) => k8s_selector(ctx, ns, &join(path, "namespaceSelector"))?,
        None => Selector::default(),
    };
    let pods = get(m, "podSelector")
        .ok_or_else(|| ctx.err(&join(path, "podSelector"), "missing"))
        .and_then(|p| k8s_selector(ctx, p, &join(path, "podSelector")))?;
    Ok((namespaces, pods))
}

type SectionOut = (Vec<Rule>, Vec<Vec<CnpPeer>>);

fn section(
    ctx: &Ctx,
    spec: &Map<String, Value>,
    path: &str,
    dir: Direction,
    unsimulated: &mut Vec<String>,
) -> Result<SectionOut, EngineError> {
    let (field, peers_field) = match dir {
        Direction::Ingress => ("ingress", "from"),
        Direction::Egress => ("egress", "to"),
    };
    let lpath = join(path, field);
    let mut rules = Vec::new();
    let mut peers = Vec::new();
    for (i, r) in ctx
        .opt_list(spec, field, path)?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let rpath = at(&lpath, i);
        let rm = ctx.obj(r, &rpath)?;
        let action = match ctx.opt_str(rm, "action", &rpath)? {
            Some("Accept") => Action::Allow,
            Some("Deny") => Action::Deny,
            Some("Pass") => Action::Pass,
            Some(other) => {
                return Err(ctx.err(
                    &join(&rpath, "action"),
                    format!("unknown action {other:?} (expected Accept, Deny or Pass)"),
                ))
            }
            None => return Err(ctx.err(&join(&rpath, "action"), "missing")),
        };
        let ppath = join(&rpath, peers_field);
        let list = ctx
            .opt_list(rm, peers_field, &rpath)?
            .filter(|l| !l.is_empty())
            .ok_or_else(|| ctx.err(&ppath, "missing (at least one peer is required)"))?;
        let mut rule_peers = Vec::with_capacity(list.len());
        for (j, p) in list.iter().enumerate() {
            let pp = at(&ppath, j);
            let pm = ctx.obj(p, &pp)?;
            let peer = if let Some(ns) = get(pm, "namespaces") {
                CnpPeer::Namespaces(k8s_selector(ctx, ns, &join(&pp, "namespaces"))?)
            } else if let Some(pods) = get(pm, "pods") {
                let (namespaces, pods) = pods_peer(ctx, pods, &join(&pp, "pods"))?;
                CnpPeer::Pods { namespaces, pods }
            } else if let (Direction::Egress, Some(nets)) = (dir, get(pm, "networks")) {
                let npath = join(&pp, "networks");
                let mut cidrs = Vec::new();
                for (k, n) in ctx.list(nets, &npath)?.iter().enumerate() {
                    let np = at(&npath, k);
                    cidrs.push(parse_cidr(ctx, ctx.str(n, &np)?, &np)?);
                }
                CnpPeer::Networks(cidrs)
            } else if get(pm, "nodes").is_some() || get(pm, "domainNames").is_some() {
                unsimulated.push(pp.clone());
                CnpPeer::NotSimulated
            } else {
                return Err(ctx.err(
                    &pp,
                    "no known peer (namespaces, pods, networks, nodes, domainNames)",
                ));
            };
            rule_peers.push(peer);
        }
        let ports = match ctx.opt_list(rm, "protocols", &rpath)? {
            None => None,
            Some(list) => Some(protocols(ctx, list, &join(&rpath, "protocols"))?),
        };
        let never = rule_peers
            .iter()
            .all(|p| matches!(p, CnpPeer::NotSimulated));
        let label = match ctx.opt_str(rm, "name", &rpath)? {
            Some(n) if !n.is_empty() => format!("{rpath} ({n})"),
            _ => rpath.clone(),
        };
        rules.push(Rule {
            path: label,
            index: i,
            action,
            src: None,
            dst: None,
            protocol: None,
            not_protocol: None,
            ip_version: None,
            ports,
            not_ports: Vec::new(),
            never,
        });
        peers.push(rule_peers);
    }
    Ok((rules, peers))
}

fn protocols(ctx: &Ctx, list: &[Value], path: &str) -> Result<Vec<PortSpec>, EngineError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let pp = at(path, i);
        let m = ctx.obj(p, &pp)?;
        if let Some(name) = ctx.opt_str(m, "destinationNamedPort", &pp)? {
            out.push(PortSpec {
                proto: None,
                val: PortVal::Named(name.to_string()),
            });
            continue;
        }
        let (key, proto) = [
            ("tcp", Protocol::Tcp),
            ("udp", Protocol::Udp),
            ("sctp", Protocol::Sctp),
        ]
        .into_iter()
        .find(|(k, _)| get(m, k).is_some())
        .ok_or_else(|| ctx.err(&pp, "expected tcp, udp, sctp or destinationNamedPort"))?;
        let kpath = join(&pp, key);
        let km = ctx
            .opt_obj(m, key, &pp)?
            .ok_or_else(|| ctx.err(&kpath, "missing"))?;
        let val = match ctx.opt_obj(km, "destinationPort", &kpath)? {
            None => PortVal::Any,
            Some(d) => {
                let dpath = join(&kpath, "destinationPort");
                if let Some(n) = get(d, "number") {
                    let n = port_number(ctx, n, &join(&dpath, "number"))?;
                    PortVal::Range(n, n)
                } else if let Some(r) = ctx.opt_obj(d, "range", &dpath)? {
                    let rpath = join(&dpath, "range");
                    let start = get(r, "start")
                        .ok_or_else(|| ctx.err(&join(&rpath, "start"), "missing"))
                        .and_then(|v| port_number(ctx, v, &join(&rpath, "start")))?;
                    let end = get(r, "end")
                        .ok_or_else(|| ctx.err(&join(&rpath, "end"), "missing"))
                        .and_then(|v| port_number(ctx, v, &join(&rpath, "end")))?;
                    if start >= end {
                        return Err(ctx.err(&rpath, "start must be less than end"));
                    }
                    PortVal::Range(start, end)
                } else {
                    return Err(ctx.err(&dpath, "expected number or range"));
                }
            }
        };
        out.push(PortSpec {
            proto: Some(proto),
            val,
        });
    }
    Ok(out)
}

impl Cnps {
    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// Adds one, whose compiled policy is `policies[pid]`.
    pub fn push(&mut self, pid: u32, mut meta: Meta) {
        meta.pid = pid;
        self.metas.push(meta);
        self.invalidate();
    }

    /// Forgets the index (namespaces or pods changed).
    pub fn invalidate(&mut self) {
        self.index = OnceLock::new();
    }

    /// Field paths (`name: path`) of the peers that are not simulated.
    pub fn unsimulated(&self) -> Vec<String> {
        self.metas
            .iter()
            .flat_map(|m| {
                m.unsimulated
                    .iter()
                    .map(move |p| format!("{}: {p}", m.name))
            })
            .collect()
    }

    fn index(&self, t: Tables<'_>) -> &CnpIndex {
        self.index.get_or_init(|| {
            let mut order: Vec<usize> = (0..self.metas.len()).collect();
            order.sort_by(|&a, &b| {
                let (ma, mb) = (&self.metas[a], &self.metas[b]);
                (ma.tier, ma.priority, &ma.name).cmp(&(mb.tier, mb.priority, &mb.name))
            });
            let empty = BTreeMap::new();
            let applying = t
                .pods
                .iter()
                .map(|pod| {
                    let ns = t.ns_labels(&pod.namespace).unwrap_or(&empty);
                    order
                        .iter()
                        .copied()
                        .filter(|&i| {
                            let s = &self.metas[i].subject;
                            s.namespaces.matches(ns)
                                && s.pods.as_ref().is_none_or(|p| p.matches(&pod.labels))
                        })
                        .collect()
                })
                .collect();
            CnpIndex { applying }
        })
    }

    /// The ClusterNetworkPolicies applying to pod `local` (the same in both directions), in
    /// evaluation order.
    pub fn applying(&self, t: Tables<'_>, local: usize) -> &[usize] {
        self.index(t).applying.get(local).map_or(&[], Vec::as_slice)
    }

    /// Evaluates one tier for the pod: `Some(verdict)` when an Accept or Deny decided, `None`
    /// when nothing matched or a Pass ended the tier.
    pub fn tier<'a, T: Trace<'a>>(
        &self,
        t: Tables<'a>,
        list: &[usize],
        tier: Tier,
        dir: Direction,
        conn: &Conn,
        trace: &mut T,
    ) -> Option<bool> {
        for meta in list.iter().filter_map(|&i| self.metas.get(i)) {
            if meta.tier != tier {
                continue;
            }
            let Some(r) = rule(t, meta, dir, conn) else {
                continue;
            };
            match r.action {
                Action::Allow => {
                    trace.record(meta.pid, dir, Some(r), Effect::Allow);
                    return Some(true);
                }
                Action::Deny => {
                    trace.record(meta.pid, dir, Some(r), Effect::Deny);
                    return Some(false);
                }
                Action::Pass => {
                    trace.record(meta.pid, dir, Some(r), Effect::Pass);
                    return None;
                }
                Action::Log => {}
            }
        }
        None
    }
}

fn peer_matches(t: Tables<'_>, peer: &CnpPeer, ep: Ep) -> bool {
    let empty = BTreeMap::new();
    match (peer, ep) {
        (CnpPeer::NotSimulated, _) => false,
        (CnpPeer::Networks(nets), Ep::Ip(ip)) => in_any(nets, &ip),
        (CnpPeer::Networks(nets), Ep::Pod(p)) => t
            .pods
            .get(p)
            .is_some_and(|p| p.any_ip(|ip| in_any(nets, ip))),
        (_, Ep::Ip(_)) => false,
        (CnpPeer::Namespaces(ns), Ep::Pod(p)) => t
            .pods
            .get(p)
            .is_some_and(|pod| ns.matches(t.ns_labels(&pod.namespace).unwrap_or(&empty))),
        (CnpPeer::Pods { namespaces, pods }, Ep::Pod(p)) => t.pods.get(p).is_some_and(|pod| {
            pods.matches(&pod.labels)
                && namespaces.matches(t.ns_labels(&pod.namespace).unwrap_or(&empty))
        }),
    }
}

/// The first rule of `meta`'s policy matching the connection in `dir`.
fn rule<'a>(t: Tables<'a>, meta: &Meta, dir: Direction, conn: &Conn) -> Option<&'a Rule> {
    let sec = policy_section(t.policies, meta.pid, dir)?;
    let (peers, other) = match dir {
        Direction::Ingress => (&meta.ingress, conn.src),
        Direction::Egress => (&meta.egress, conn.dst),
    };
    sec.rules.iter().zip(peers).find_map(|(r, peers)| {
        let hit = !r.never
            && peers.iter().any(|p| peer_matches(t, p, other))
            && r.ports
                .as_ref()
                .is_none_or(|ports| ports.iter().any(|s| port_matches(t.pods, s, conn)));
        hit.then_some(r)
    })
}

fn in_any(nets: &[Cidr], ip: &IpAddr) -> bool {
    nets.iter().any(|n| n.contains_addr(ip))
}
