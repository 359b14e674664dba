//! A kube-free linter for network policies (Kubernetes, Calico, Cilium), built on the
//! [`engine`](crate::engine): the questions that depend on what a policy *does* (can this pod
//! still resolve names? is this namespace denied by default?) are answered by simulation, not
//! by pattern matching, so a rule aimed at the wrong pods counts as missing.
//!
//! Pods: with `pods_given`, the Pods in the input are the pods. Without, every policy's pod
//! selector contributes one representative pod (labels that satisfy its positive terms) in its
//! namespace — in every namespace of the input for cluster-scoped policies. Namespaces named
//! by policies but not declared are assumed to exist with only their
//! `kubernetes.io/metadata.name` label. DNS is a kube-dns pod in `kube-system` (labelled
//! `kubernetes.io/metadata.name: kube-system`) with labels `k8s-app: kube-dns`, named ports
//! `dns` (UDP 53) and `dns-tcp` (TCP 53); a made-up one unless the input holds a real one.
//! Made-up pods get addresses in 10.244.0.0/16, the default pod network of kind and flannel,
//! so that `ipBlock` rules treat them as cluster addresses.

mod calico;
mod cnp;
mod finding;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use crate::core::Protocol;

use crate::engine::{
    Action, Alt, Direction, Endpoint, EngineError, Entity, Flavor, K8sNs, Pod, PortVal, Scenario,
    Section, Subject,
};
use finding::finding;
pub use finding::{Finding, Severity, CODES};

const DNS_NAMESPACE: &str = "kube-system";
const DNS_LABEL: (&str, &str) = (crate::vocab::DNS_LABEL_KEY, crate::vocab::DNS_LABEL_VALUE);

/// The CNI's admission rules ([`crate::admit`]), for each object and each item of a list.
fn admission(o: &serde_json::Value, out: &mut Vec<Finding>) {
    if let Some(items) = o.get("items").and_then(serde_json::Value::as_array) {
        for item in items {
            admission(item, out);
        }
        return;
    }
    let Some(report) = crate::admit::report(o) else {
        return;
    };
    let code = if crate::admit::refusal(o).is_some() {
        "cni-refuses-policy"
    } else {
        "cni-refuses-policy-on-some-releases"
    };
    let meta = o.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let object = match meta
        .and_then(|m| m.get("namespace"))
        .and_then(serde_json::Value::as_str)
    {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    };
    out.push(finding(
        code,
        Some(object),
        format!("{}: {report}", crate::admit::display(o)),
    ));
}

fn fmt_labels(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels a real pod can carry (drops keys the engine derives from the namespace).
fn pod_settable(mut labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels.retain(|k, _| {
        !k.contains(':')
            && !k.starts_with("io.kubernetes.pod.namespace")
            && !k.starts_with("io.cilium.k8s.")
            && !k.starts_with("projectcalico.org/")
    });
    labels
}

/// A made-up pod address in 10.244.0.0/16.
fn made_up_ip(n: usize) -> IpAddr {
    let n = n + 256;
    IpAddr::V4(Ipv4Addr::new(
        10,
        244,
        u8::try_from((n / 250) % 256).unwrap_or(255),
        u8::try_from(n % 250 + 1).unwrap_or(1),
    ))
}

/// Where a pod of the simulation comes from.
enum Origin {
    /// A pod of the input.
    Real,
    /// A representative of these policies' selectors.
    Representative(Vec<String>),
    /// The made-up kube-dns pod.
    Dns,
}

fn describe_pod(pod: &Pod, origin: &Origin) -> (Option<String>, String) {
    match origin {
        Origin::Representative(policies) => (
            policies.first().cloned(),
            format!(
                "{} in namespace {} (as selected by {})",
                if pod.labels.is_empty() {
                    "pods with any labels".to_string()
                } else {
                    format!("pods labelled {}", fmt_labels(&pod.labels))
                },
                pod.namespace,
                policies.join(", ")
            ),
        ),
        Origin::Real | Origin::Dns => {
            let name = format!("{}/{}", pod.namespace, pod.name);
            (Some(name.clone()), format!("pod {name}"))
        }
    }
}

/// `" (denied at ...)"`: which end denied a connection, and by which policies.
fn because(sim: &Scenario, from: usize, to: usize, protocol: Protocol) -> String {
    let refs = sim.explain(Endpoint::Pod(from), Endpoint::Pod(to), 53, protocol);
    let mut parts = Vec::new();
    for (dir, at) in [
        (Direction::Egress, "at the pod's egress"),
        (Direction::Ingress, "at kube-dns's ingress"),
    ] {
        let mut names: Vec<&str> = Vec::new();
        for r in refs.iter().filter(|r| r.direction == dir) {
            if !names.contains(&r.policy.as_str()) {
                names.push(&r.policy);
            }
        }
        if !names.is_empty() {
            parts.push(format!("{at} by {}", names.join(", ")));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (denied {})", parts.join("; "))
    }
}

/// Whether a rule opens nothing but DNS (port 53), or nothing at all.
fn dns_only_or_nothing(rule: &crate::engine::Rule) -> bool {
    rule.never
        || rule.ports.as_ref().is_some_and(|ports| {
            ports
                .iter()
                .all(|p| matches!(p.val, PortVal::Range(53, 53)))
        })
}

/// Whether a section is a deny-all baseline: it isolates and allows (or passes) nothing but
/// DNS.
fn is_baseline(sec: &Section) -> bool {
    sec.isolates
        && sec
            .rules
            .iter()
            .filter(|r| matches!(r.action, Action::Allow | Action::Pass))
            .all(dns_only_or_nothing)
}

fn ports_text(rule: &crate::engine::Rule) -> String {
    match &rule.ports {
        None => "every port".to_string(),
        Some(ports) => {
            let parts: Vec<String> = ports
                .iter()
                .map(|p| {
                    let proto = p.proto.map_or("any", Protocol::as_str);
                    match &p.val {
                        PortVal::Any => format!("every {proto} port"),
                        PortVal::Range(lo, hi) if lo == hi => format!("{lo}/{proto}"),
                        PortVal::Range(lo, hi) => format!("{lo}-{hi}/{proto}"),
                        PortVal::Named(n) => format!("{n}/{proto}"),
                    }
                })
                .collect();
            format!("port(s) {}", parts.join(", "))
        }
    }
}

/// Lints policies (and, with `pods_given`, the pods among `objects`). Findings are sorted by
/// severity, code, object and message, without duplicates. Fails when the engine cannot read
/// the objects.
pub fn lint(objects: &[serde_json::Value], pods_given: bool) -> Result<Vec<Finding>, EngineError> {
    lint_with(
        objects,
        pods_given,
        &crate::engine::CiliumIdentityFilter::default(),
    )
}

/// [`lint`], reading Cilium selectors with the identity label filter `identity` (the agent's
/// `labels` option): a Cilium policy selecting on a label outside identities selects no pod.
pub fn lint_with(
    objects: &[serde_json::Value],
    pods_given: bool,
    identity: &crate::engine::CiliumIdentityFilter,
) -> Result<Vec<Finding>, EngineError> {
    let mut base = Scenario::from_values(objects.iter().cloned())?;
    base.set_cilium_identity_filter(identity.clone());
    let mut out = Vec::new();

    // Namespaces that appear in the input (declared, holding pods, or holding policies).
    let mut namespaces: BTreeSet<String> = base.namespaces().map(str::to_string).collect();
    for p in base.policies() {
        if let Some(ns) = &p.namespace {
            namespaces.insert(ns.clone());
        }
    }

    for o in objects {
        admission(o, &mut out);
    }
    structural(&base, &mut out);
    all_addresses(&base, &mut out);
    if pods_given {
        for (i, p) in base.policies().iter().enumerate() {
            if !matches!(p.subject, Subject::Nothing) && base.selected_count(i) == 0 {
                out.push(finding(
                    "selector-matches-nothing",
                    Some(p.display.to_string()),
                    format!(
                        "{} {}: {} matches no pod of the input",
                        p.kind, p.display, p.selector_path
                    ),
                ));
            }
        }
    }
    simulate(&base, &namespaces, pods_given, &mut out);
    default_deny(&base, &namespaces, &mut out);
    cnp::lint(objects, &base, &mut out);
    calico::equal_orders(&base, pods_given, &mut out);
    calico::missing_tiers(&base, &mut out);

    out.sort_by(|a, b| {
        (a.severity, a.code, &a.object, &a.message)
            .cmp(&(b.severity, b.code, &b.object, &b.message))
    });
    out.dedup();
    Ok(out)
}

/// The "every address" networks a peer alternative holds, with their exceptions (Kubernetes
/// `ipBlock`, Calico `nets` / `notNets`, Cilium CIDR sets).
fn networks(alt: &Alt) -> Vec<(crate::core::Cidr, Vec<crate::core::Cidr>)> {
    match alt {
        Alt::K8sBlock { cidr, except } | Alt::CiliumCidr { cidr, except } => {
            vec![(*cidr, except.clone())]
        }
        Alt::Calico(e) => e.nets.iter().map(|n| (*n, e.not_nets.clone())).collect(),
        _ => Vec::new(),
    }
}

/// `0.0.0.0/0` without `::/0` on a dual-stack input (per policy and direction, since one rule
/// cannot mix families on Calico), and every-address blocks that also match pods.
fn all_addresses(s: &Scenario, out: &mut Vec<Finding>) {
    let policies = || {
        s.policies()
            .iter()
            .filter(|p| p.flavor != Flavor::ClusterNetworkPolicy)
    };
    let sections = |p: &'_ crate::engine::Policy| -> Vec<(Direction, Vec<Alt>)> {
        [
            (Direction::Ingress, &p.ingress),
            (Direction::Egress, &p.egress),
        ]
        .into_iter()
        .filter_map(|(dir, sec)| {
            let sec = sec.as_ref()?;
            let alts = sec
                .rules
                .iter()
                .filter(|r| r.action == Action::Allow && !r.never)
                .filter_map(|r| {
                    if dir == Direction::Ingress {
                        r.src
                    } else {
                        r.dst
                    }
                })
                .filter_map(|id| s.peer(id))
                .flat_map(|a| a.iter().cloned())
                .collect();
            Some((dir, alts))
        })
        .collect()
    };
    let dual = s.pods().iter().any(|p| p.any_ip(IpAddr::is_ipv6))
        || policies().any(|p| {
            sections(p)
                .iter()
                .any(|(_, alts)| alts.iter().flat_map(networks).any(|(c, _)| !c.is_ipv4()))
        });
    for p in policies() {
        let obj = Some(p.display.to_string());
        for (dir, alts) in sections(p) {
            let nets: Vec<_> = alts.iter().flat_map(networks).collect();
            let v4 = nets.iter().any(|(c, _)| c.is_all() && c.is_ipv4());
            let v6 = nets.iter().any(|(c, _)| c.is_all() && !c.is_ipv4());
            let d = match dir {
                Direction::Ingress => "ingress",
                Direction::Egress => "egress",
            };
            if dual && v4 && !v6 {
                out.push(finding(
                    "ipv4-only-all-addresses",
                    obj.clone(),
                    format!(
                        "spec.{d}: allows 0.0.0.0/0 but not ::/0 on a dual-stack input, so the \
                         same traffic over IPv6 is denied; add ::/0 (with the cluster's IPv6 \
                         ranges in except)"
                    ),
                ));
            }
            if p.flavor == Flavor::Kubernetes || p.flavor == Flavor::Calico {
                for (c, except) in &nets {
                    if c.is_all() && except.is_empty() {
                        out.push(finding(
                            "all-addresses-matches-pods",
                            obj.clone(),
                            format!(
                                "spec.{d}: {c} with no except also matches every pod of the \
                                 cluster (NetworkPolicy and Calico match pod addresses); if the \
                                 internet was meant, except the cluster's pod and service \
                                 ranges (tierflow: a world peer)"
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// Findings read off the compiled rules: permissive namespace selectors, unrestricted peers,
/// split peers, `except` outside its CIDR.
fn structural(s: &Scenario, out: &mut Vec<Finding>) {
    for p in s.policies() {
        if p.flavor == Flavor::ClusterNetworkPolicy {
            // Linted on their own (`lint/cnp.rs`): their peers are not in the peer table.
            continue;
        }
        let obj = Some(p.display.to_string());
        for (dir, sec) in [
            (Direction::Ingress, &p.ingress),
            (Direction::Egress, &p.egress),
        ] {
            let Some(sec) = sec else { continue };
            let ingress = dir == Direction::Ingress;
            for rule in sec.rules.iter().chain(&sec.deny) {
                let (peer, local) = if ingress {
                    (rule.src, rule.dst)
                } else {
                    (rule.dst, rule.src)
                };
                let peer_key = match p.flavor {
                    Flavor::Kubernetes | Flavor::ClusterNetworkPolicy => {
                        if ingress {
                            "from"
                        } else {
                            "to"
                        }
                    }
                    Flavor::Calico => {
                        if ingress {
                            "source"
                        } else {
                            "destination"
                        }
                    }
                    Flavor::Cilium => {
                        if ingress {
                            "fromCIDRSet"
                        } else {
                            "toCIDRSet"
                        }
                    }
                };
                let alts = peer.and_then(|id| s.peer(id)).unwrap_or_default();
                // unrestricted-peer
                let allows = rule.action == Action::Allow && !rule.never;
                let everything = alts
                    .iter()
                    .any(|a| matches!(a, Alt::CiliumEntity(Entity::All)));
                if allows && (peer.is_none() || everything) {
                    let what = match p.flavor {
                        Flavor::Kubernetes | Flavor::ClusterNetworkPolicy => {
                            format!("has no {peer_key}")
                        }
                        Flavor::Calico => {
                            format!("has no {peer_key} selector or nets")
                        }
                        Flavor::Cilium if everything => "uses the entity all".to_string(),
                        Flavor::Cilium => "has ports but no peer".to_string(),
                    };
                    let whom = if ingress {
                        "every source"
                    } else {
                        "every destination"
                    };
                    out.push(finding(
                        "unrestricted-peer",
                        obj.clone(),
                        format!(
                            "{}: the rule {what}, so it opens {} to {whom}, in every namespace \
                             and outside the cluster",
                            rule.path,
                            ports_text(rule)
                        ),
                    ));
                }
                let local_alts = local.and_then(|id| s.peer(id)).unwrap_or_default();
                let mut ns_only = Vec::new();
                let mut pod_only = Vec::new();
                for (j, alt) in alts.iter().enumerate() {
                    match alt {
                        Alt::K8sPods {
                            namespaces: K8sNs::Selector(sel),
                            pods,
                        } => {
                            if sel.is_empty() {
                                out.push(finding(
                                    "permissive-namespace-selector",
                                    obj.clone(),
                                    format!(
                                        "{}.{peer_key}[{j}]: namespaceSelector {{}} matches every \
                                         namespace{}",
                                        rule.path,
                                        match pods {
                                            Some(ps) => format!(
                                                " (so pods labelled {ps} in any namespace)"
                                            ),
                                            None => " (so every pod of the cluster)".to_string(),
                                        }
                                    ),
                                ));
                            }
                            if pods.is_none() {
                                ns_only.push(j);
                            }
                        }
                        Alt::K8sPods {
                            namespaces: K8sNs::Own(_),
                            pods: Some(_),
                        } => pod_only.push(j),
                        Alt::K8sBlock { cidr, except } | Alt::CiliumCidr { cidr, except } => {
                            for e in except {
                                if !cidr.contains(e) || e == cidr {
                                    let at = if matches!(alt, Alt::K8sBlock { .. }) {
                                        format!("{}.{peer_key}[{j}].ipBlock.except", rule.path)
                                    } else {
                                        format!("{}.{peer_key}", rule.path)
                                    };
                                    let why = if e == cidr {
                                        format!("equals cidr {cidr}, so the block matches nothing")
                                    } else {
                                        format!("is not inside cidr {cidr}, so it excludes nothing")
                                    };
                                    out.push(finding(
                                        "ipblock-except-outside-cidr",
                                        obj.clone(),
                                        format!("{at}: except {e} {why}"),
                                    ));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                let (peer_side, local_side) = if ingress {
                    ("source", "destination")
                } else {
                    ("destination", "source")
                };
                for (key, list) in [(peer_side, alts), (local_side, local_alts)] {
                    for alt in list {
                        if let Alt::Calico(e) = alt {
                            if e.namespace_selector.as_ref().is_some_and(|n| n.is_all()) {
                                out.push(finding(
                                    "permissive-namespace-selector",
                                    obj.clone(),
                                    format!(
                                        "{}.{key}.namespaceSelector: all() matches every \
                                         namespace",
                                        rule.path
                                    ),
                                ));
                            }
                        }
                    }
                }
                if let (Some(&n), Some(&q)) = (ns_only.first(), pod_only.first()) {
                    out.push(finding(
                        "split-namespace-pod-peers",
                        obj.clone(),
                        format!(
                            "{path}: {peer_key}[{n}] (namespaceSelector only) and \
                             {peer_key}[{q}] (podSelector only) are two peers, OR'ed: every pod \
                             of those namespaces, plus those pods of namespace {ns}; to require \
                             both, put namespaceSelector and podSelector in one peer",
                            path = rule.path,
                            ns = p.namespace.as_deref().unwrap_or("?"),
                        ),
                    ));
                }
            }
        }
    }
}

/// Builds the simulation (pods or representatives, plus kube-dns) and checks DNS and egress
/// isolation of every pod.
fn simulate(
    base: &Scenario,
    namespaces: &BTreeSet<String>,
    pods_given: bool,
    out: &mut Vec<Finding>,
) {
    let mut sim = base.clone();
    for ns in namespaces {
        if sim.namespace_labels(ns).is_none() {
            sim.add_namespace(ns, BTreeMap::new());
        }
    }
    let mut origins: Vec<Origin> = sim.pods().iter().map(|_| Origin::Real).collect();
    if !pods_given {
        // Representatives: one per (namespace, labels), remembering the policies behind it.
        let mut reps: BTreeMap<(String, BTreeMap<String, String>), Vec<String>> = BTreeMap::new();
        let everywhere: Vec<String> = if namespaces.is_empty() {
            vec!["default".to_string()]
        } else {
            namespaces.iter().cloned().collect()
        };
        for p in base.policies() {
            let (labels, nss) = match &p.subject {
                Subject::K8s { namespace, pods } => {
                    (Some(pods.example_labels()), vec![namespace.clone()])
                }
                Subject::Calico {
                    namespace,
                    selector,
                    ..
                } => (
                    selector.likely_labels(),
                    namespace
                        .clone()
                        .map_or_else(|| everywhere.clone(), |n| vec![n]),
                ),
                Subject::Cilium {
                    namespace,
                    selector,
                } => (
                    Some(selector.example_labels()),
                    namespace
                        .clone()
                        .map_or_else(|| everywhere.clone(), |n| vec![n]),
                ),
                Subject::Nothing => (None, Vec::new()),
            };
            let Some(labels) = labels.map(pod_settable) else {
                continue;
            };
            for ns in nss {
                let who = reps.entry((ns, labels.clone())).or_default();
                if !who.iter().any(|w| p.display == *w) {
                    who.push(p.display.to_string());
                }
            }
        }
        for (n, ((ns, labels), who)) in reps.into_iter().enumerate() {
            sim.add_pod(Pod {
                namespace: ns,
                name: format!("representative-{n}"),
                labels,
                ips: vec![made_up_ip(n)],
                ports: Vec::new(),
                service_account: None,
            });
            origins.push(Origin::Representative(who));
        }
    }
    let dns_labels: BTreeMap<String, String> =
        [(DNS_LABEL.0.to_string(), DNS_LABEL.1.to_string())].into();
    let dns = match sim
        .pods()
        .iter()
        .position(|p| p.namespace == DNS_NAMESPACE && p.labels == dns_labels)
        .or_else(|| {
            sim.pods().iter().position(|p| {
                p.namespace == DNS_NAMESPACE
                    && p.labels.get(DNS_LABEL.0).map(String::as_str) == Some(DNS_LABEL.1)
            })
        }) {
        Some(i) => i,
        None => {
            sim.add_pod(Pod {
                namespace: DNS_NAMESPACE.to_string(),
                name: "kube-dns".to_string(),
                labels: dns_labels,
                ips: vec![IpAddr::V4(Ipv4Addr::new(10, 244, 0, 10))],
                ports: vec![
                    crate::engine::ContainerPort {
                        name: Some("dns".into()),
                        port: 53,
                        protocol: Protocol::Udp,
                    },
                    crate::engine::ContainerPort {
                        name: Some("dns-tcp".into()),
                        port: 53,
                        protocol: Protocol::Tcp,
                    },
                ],
                service_account: None,
            });
            origins.push(Origin::Dns);
            sim.pods().len() - 1
        }
    };
    for (i, (pod, origin)) in sim.pods().iter().zip(&origins).enumerate() {
        if matches!(origin, Origin::Dns) {
            continue;
        }
        let (ing, eg) = sim.isolation(i);
        let (object, who) = describe_pod(pod, origin);
        if eg {
            let udp = sim.check(Endpoint::Pod(i), Endpoint::Pod(dns), 53, Protocol::Udp);
            let tcp = sim.check(Endpoint::Pod(i), Endpoint::Pod(dns), 53, Protocol::Tcp);
            let target = format!(
                "kube-dns ({DNS_NAMESPACE}, {}={})",
                DNS_LABEL.0, DNS_LABEL.1
            );
            match (udp.allowed, tcp.allowed) {
                (false, false) => out.push(finding(
                    "missing-dns-egress",
                    object,
                    format!(
                        "{who}: isolated for egress and cannot reach {target} on UDP 53 or \
                         TCP 53{}",
                        because(&sim, i, dns, Protocol::Udp)
                    ),
                )),
                (true, false) => out.push(finding(
                    "dns-udp-only",
                    object,
                    format!(
                        "{who}: reaches {target} on UDP 53 but not on TCP 53{}",
                        because(&sim, i, dns, Protocol::Tcp)
                    ),
                )),
                (false, true) => out.push(finding(
                    "dns-tcp-only",
                    object,
                    format!(
                        "{who}: reaches {target} on TCP 53 but not on UDP 53{}",
                        because(&sim, i, dns, Protocol::Udp)
                    ),
                )),
                (true, true) => {}
            }
        } else if ing {
            out.push(finding(
                "missing-egress-policy",
                object,
                format!("{who}: isolated for ingress but not for egress (all egress is open)"),
            ));
        }
    }
}

/// `no-default-deny`: a label-less probe pod in each namespace must be isolated by a baseline
/// in both directions.
fn default_deny(base: &Scenario, namespaces: &BTreeSet<String>, out: &mut Vec<Finding>) {
    let mut probe = base.clone();
    let first = probe.pods().len();
    for ns in namespaces {
        if probe.namespace_labels(ns).is_none() {
            probe.add_namespace(ns, BTreeMap::new());
        }
        probe.add_pod(Pod {
            namespace: ns.clone(),
            name: "\u{0}probe".to_string(),
            labels: BTreeMap::new(),
            ips: Vec::new(),
            ports: Vec::new(),
            service_account: None,
        });
    }
    for (k, ns) in namespaces.iter().enumerate() {
        let pod = first + k;
        let missing: Vec<&str> = [
            (Direction::Ingress, "ingress"),
            (Direction::Egress, "egress"),
        ]
        .into_iter()
        .filter(|(dir, _)| {
            !probe.selecting(pod, *dir).iter().any(|&pid| {
                probe.policies().get(pid as usize).is_some_and(|p| {
                    let sec = match dir {
                        Direction::Ingress => &p.ingress,
                        Direction::Egress => &p.egress,
                    };
                    sec.as_ref().is_some_and(is_baseline)
                })
            })
        })
        .map(|(_, name)| name)
        .collect();
        if !missing.is_empty() {
            out.push(finding(
                "no-default-deny",
                Some(ns.clone()),
                format!(
                    "namespace {ns} has no deny-all baseline for {} (a policy selecting every \
                     pod, for that direction, that allows nothing but DNS)",
                    missing.join(" and ")
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn docs(yaml: &str) -> Vec<serde_json::Value> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|d| serde_json::Value::deserialize(d).unwrap())
            .filter(|v| !v.is_null())
            .collect()
    }

    fn codes(yaml: &str, pods_given: bool) -> Vec<(&'static str, Option<String>)> {
        lint(&docs(yaml), pods_given)
            .unwrap()
            .into_iter()
            .map(|f| (f.code, f.object))
            .collect()
    }

    fn has(yaml: &str, pods_given: bool, code: &str) -> bool {
        codes(yaml, pods_given).iter().any(|(c, _)| *c == code)
    }

    fn messages(yaml: &str, pods_given: bool, code: &str) -> Vec<String> {
        lint(&docs(yaml), pods_given)
            .unwrap()
            .into_iter()
            .filter(|f| f.code == code)
            .map(|f| f.message)
            .collect()
    }

    /// The baseline tierflow renders: deny all, plus DNS to kube-dns on UDP and TCP 53.
    const BASELINE: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: tierflow-baseline, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  egress:
    - to:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
          podSelector: {matchLabels: {k8s-app: kube-dns}}
      ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
";

    fn with_baseline(extra: &str) -> String {
        format!("{BASELINE}---{extra}")
    }

    #[test]
    fn the_code_table_lists_every_code_once_with_a_description() {
        let mut seen = BTreeSet::new();
        for (code, _, description) in CODES {
            assert!(seen.insert(*code), "{code} twice");
            assert!(!description.is_empty());
        }
        assert_eq!(seen.len(), 21);
    }

    #[test]
    fn policies_their_cni_refuses_are_reported_and_not_simulated() {
        let key = format!("k8s:io.cilium.k8s.namespace.labels.{}", "n".repeat(40));
        let cnp = serde_json::json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "allow", "namespace": "shop"},
            "spec": {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{"matchLabels": {key: "x"}}]}]}});
        let calico = serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "payments.v2", "namespace": "shop"}, "spec": {"selector": "all()"}});
        let found = lint(&[cnp.clone(), calico], false).unwrap();
        let refused: Vec<&Finding> = found
            .iter()
            .filter(|f| f.code.starts_with("cni-"))
            .collect();
        assert_eq!(refused.len(), 2, "{found:#?}");
        assert_eq!(refused[0].code, "cni-refuses-policy");
        assert_eq!(refused[0].object.as_deref(), Some("shop/allow"));
        assert!(refused[0]
            .message
            .starts_with("CiliumNetworkPolicy shop/allow: Cilium will not enforce this policy: "));
        assert_eq!(refused[1].code, "cni-refuses-policy-on-some-releases");
        // The engine leaves the refused policy out (nothing isolates the namespace).
        let s = Scenario::from_values([cnp]).unwrap();
        assert_eq!(s.refused().len(), 1);
        assert!(s.policies().is_empty());
    }

    #[test]
    fn findings_serialise_with_lower_case_severities() {
        let f = finding("missing-dns-egress", None, "m".into());
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"code": "missing-dns-egress", "severity": "error", "message": "m"})
        );
        let f = finding("dns-udp-only", Some("a/b".into()), "m".into());
        assert_eq!(serde_json::to_value(&f).unwrap()["severity"], "warning");
        assert_eq!(serde_json::to_value(Severity::Info).unwrap(), "info");
    }

    #[test]
    fn a_complete_baseline_gives_no_findings() {
        assert_eq!(codes(BASELINE, false), vec![]);
    }

    #[test]
    fn errors_of_the_engine_are_passed_on() {
        let err = lint(
            &docs("apiVersion: v1\nkind: Secret\nmetadata: {name: x}"),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, EngineError::UnknownKind { .. }));
    }

    #[test]
    fn a_deny_all_without_dns_is_missing_dns_egress() {
        let yaml = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
";
        assert_eq!(
            codes(yaml, false),
            vec![("missing-dns-egress", Some("shop/deny-all".to_string()))]
        );
        let msg = &messages(yaml, false, "missing-dns-egress")[0];
        assert!(
            msg.contains("(denied at the pod's egress by shop/deny-all)"),
            "{msg}"
        );
        assert!(msg.contains("in namespace shop"), "{msg}");
    }

    #[test]
    fn a_dns_rule_aimed_at_the_wrong_pods_counts_as_missing() {
        let yaml = BASELINE.replace("k8s-app: kube-dns", "k8s-app: coredns");
        assert!(has(&yaml, false, "missing-dns-egress"));
        let yaml = BASELINE.replace("name: kube-system", "name: dns");
        assert!(has(&yaml, false, "missing-dns-egress"));
    }

    #[test]
    fn dns_on_one_protocol_only_is_a_warning() {
        let udp = BASELINE.replace(", {port: 53, protocol: TCP}", "");
        assert!(has(&udp, false, "dns-udp-only"));
        assert!(!has(&udp, false, "missing-dns-egress"));
        assert!(!has(&udp, false, "dns-tcp-only"));
        let tcp = BASELINE.replace("{port: 53, protocol: UDP}, ", "");
        assert!(has(&tcp, false, "dns-tcp-only"));
        assert!(!has(&tcp, false, "dns-udp-only"));
        assert!(!has(BASELINE, false, "dns-udp-only"));
        assert!(!has(BASELINE, false, "dns-tcp-only"));
    }

    #[test]
    fn dns_blocked_at_kube_dns_itself_is_missing_too() {
        let yaml = with_baseline(
            "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lock, namespace: kube-system}
spec:
  podSelector: {}
  policyTypes: [Ingress]
",
        );
        let msgs = messages(&yaml, false, "missing-dns-egress");
        assert!(
            msgs.iter()
                .any(|m| m.contains("(denied at kube-dns's ingress by kube-system/lock)")),
            "{msgs:?}"
        );
    }

    #[test]
    fn with_pods_given_the_real_pods_are_checked() {
        let yaml = "
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: shop, labels: {app: api}}
status: {podIP: 10.1.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
status: {podIP: 10.1.0.5}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Egress]
";
        let found = codes(yaml, true);
        assert!(found.contains(&("missing-dns-egress", Some("shop/api-1".to_string()))));
        assert!(!found
            .iter()
            .any(|(_, o)| o.as_deref() == Some("shop/web-1")));
    }

    #[test]
    fn ingress_isolation_without_egress_isolation_is_missing_egress_policy() {
        let yaml = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
";
        assert!(codes(yaml, false).contains(&("missing-egress-policy", Some("shop/api".into()))));
        assert!(!has(BASELINE, false, "missing-egress-policy"));
    }

    #[test]
    fn a_namespace_without_a_baseline_has_no_default_deny() {
        let yaml = "
apiVersion: v1
kind: Namespace
metadata: {name: empty}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: in-only, namespace: half}
spec:
  podSelector: {}
  policyTypes: [Ingress]
";
        let found = codes(yaml, false);
        assert!(found.contains(&("no-default-deny", Some("empty".into()))));
        assert!(found.contains(&("no-default-deny", Some("half".into()))));
        let msgs = messages(yaml, false, "no-default-deny");
        assert!(msgs
            .iter()
            .any(|m| m.contains("half has no deny-all baseline for egress")
                && !m.contains("ingress")));
        assert!(!has(BASELINE, false, "no-default-deny"));
    }

    #[test]
    fn a_baseline_that_allows_more_than_dns_is_not_a_default_deny() {
        let yaml = BASELINE.replace(
            "      ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]",
            "      ports: [{port: 53, protocol: UDP}, {port: 443}]",
        );
        assert!(codes(&yaml, false).contains(&("no-default-deny", Some("shop".into()))));
        let partial = BASELINE.replace("podSelector: {}", "podSelector: {matchLabels: {a: b}}");
        assert!(has(&partial, false, "no-default-deny"));
    }

    #[test]
    fn calico_and_cilium_baselines_count_as_default_deny() {
        let calico = "
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: default-deny}
spec:
  selector: projectcalico.org/namespace != 'kube-system'
  types: [Ingress, Egress]
  egress:
    - action: Allow
      protocol: UDP
      destination: {selector: k8s-app == 'kube-dns', namespaceSelector: projectcalico.org/name == 'kube-system', ports: [53]}
    - action: Allow
      protocol: TCP
      destination: {selector: k8s-app == 'kube-dns', namespaceSelector: projectcalico.org/name == 'kube-system', ports: [53]}
";
        assert_eq!(codes(calico, false), vec![]);
        let cilium = "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny, namespace: shop}
spec:
  endpointSelector: {}
  ingress: [{}]
  egress:
    - toEndpoints: [{matchLabels: {io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
      toPorts: [{ports: [{port: '53', protocol: ANY}]}]
";
        assert_eq!(codes(cilium, false), vec![]);
        let open = cilium.replace("ingress: [{}]", "ingress: []");
        assert!(codes(&open, false).contains(&("no-default-deny", Some("shop".into()))));
    }

    #[test]
    fn an_empty_namespace_selector_is_permissive() {
        let yaml = with_baseline(
            "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: prometheus}}}]
",
        );
        let msgs = messages(&yaml, false, "permissive-namespace-selector");
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].starts_with("spec.ingress[0].from[0]: namespaceSelector {}"));
        assert!(!has(BASELINE, false, "permissive-namespace-selector"));
        let calico = "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  ingress: [{action: Allow, source: {namespaceSelector: all(), selector: app == 'x'}}]
";
        assert!(has(calico, false, "permissive-namespace-selector"));
        let scoped = calico.replace("all()", "team == 'obs'");
        assert!(!has(&scoped, false, "permissive-namespace-selector"));
    }

    #[test]
    fn a_rule_without_peers_is_unrestricted() {
        let yaml = with_baseline(
            "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress, Egress]
  ingress: [{ports: [{port: 8080}]}]
  egress: [{to: [{podSelector: {matchLabels: {app: db}}}]}]
",
        );
        let msgs = messages(&yaml, false, "unrestricted-peer");
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].contains("spec.ingress[0]") && msgs[0].contains("8080/TCP"));
        assert!(!has(BASELINE, false, "unrestricted-peer"));
        let cilium = "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  endpointSelector: {}
  ingress: [{fromEntities: [all]}]
  egress: [{toEndpoints: [{}]}]
";
        assert_eq!(messages(cilium, false, "unrestricted-peer").len(), 1);
    }

    #[test]
    fn split_namespace_and_pod_peers_are_flagged_and_one_peer_is_not() {
        let split = with_baseline(
            "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {team: obs}}
        - podSelector: {matchLabels: {app: prometheus}}
",
        );
        let msgs = messages(&split, false, "split-namespace-pod-peers");
        assert_eq!(msgs.len(), 1);
        assert!(
            msgs[0].starts_with("spec.ingress[0]: from[0] (namespaceSelector only) and from[1]")
        );
        let joined = split.replace(
            "        - podSelector: {matchLabels: {app: prometheus}}",
            "          podSelector: {matchLabels: {app: prometheus}}",
        );
        assert!(!has(&joined, false, "split-namespace-pod-peers"));
    }

    #[test]
    fn an_except_outside_its_cidr_is_an_error() {
        let bad = with_baseline(
            "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 192.168.0.0/16]}}]}]
",
        );
        let found = lint(&docs(&bad), false).unwrap();
        let errs: Vec<_> = found
            .iter()
            .filter(|f| f.code == "ipblock-except-outside-cidr")
            .collect();
        assert_eq!(errs.len(), 1, "{found:?}");
        assert_eq!(errs[0].severity, Severity::Error);
        assert!(errs[0].message.contains("192.168.0.0/16"));
        assert!(errs[0]
            .message
            .starts_with("spec.egress[0].to[0].ipBlock.except"));
        let cilium = "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: out, namespace: shop}
spec:
  endpointSelector: {}
  egress: [{toCIDRSet: [{cidr: 10.0.0.0/8, except: [11.0.0.0/8]}]}]
";
        // Cilium's own CIDRRule.sanitize refuses it, so the agent enforces nothing of the
        // policy: reported as such, and left out of the simulation.
        assert!(has(cilium, false, "cni-refuses-policy"));
        assert!(!has(BASELINE, false, "ipblock-except-outside-cidr"));
    }

    #[test]
    fn a_selector_matching_no_pod_is_reported_only_when_pods_are_given() {
        let yaml = with_baseline(
            "
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress, Egress]
",
        );
        let found = codes(&yaml, true);
        assert!(found.contains(&("selector-matches-nothing", Some("shop/api".into()))));
        assert!(!found.contains(&(
            "selector-matches-nothing",
            Some("shop/tierflow-baseline".into())
        )));
        assert!(!has(&yaml, false, "selector-matches-nothing"));
    }

    #[test]
    fn findings_come_sorted_errors_first() {
        let yaml = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress: [{}]
";
        let found = lint(&docs(yaml), false).unwrap();
        assert!(found.len() >= 2);
        assert_eq!(found[0].severity, Severity::Error);
        assert!(found.windows(2).all(|w| w[0].severity <= w[1].severity));
    }
}

#[cfg(test)]
mod all_addresses_tests {
    use super::*;
    use serde_json::json;

    fn np(name: &str, blocks: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": name, "namespace": "shop"},
               "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                        "egress": [{"to": blocks, "ports": [{"port": 443, "protocol": "TCP"}]}]}})
    }

    fn codes(objects: &[serde_json::Value]) -> Vec<&'static str> {
        lint(objects, false)
            .unwrap()
            .iter()
            .map(|f| f.code)
            .collect()
    }

    #[test]
    fn all_addresses_without_except_match_pods_and_v4_only_is_flagged_on_dual_stack() {
        let internet = np("internet", json!([{"ipBlock": {"cidr": "0.0.0.0/0"}}]));
        let found = codes(std::slice::from_ref(&internet));
        assert!(found.contains(&"all-addresses-matches-pods"), "{found:?}");
        // Single-stack input: no IPv6 finding.
        assert!(!found.contains(&"ipv4-only-all-addresses"), "{found:?}");
        // An IPv6 network anywhere makes the input dual-stack.
        let v6 = np("v6", json!([{"ipBlock": {"cidr": "2001:db8::/32"}}]));
        assert!(codes(&[internet, v6]).contains(&"ipv4-only-all-addresses"));
        // tierflow's world peer: both families, the cluster left out: neither finding.
        let world = np(
            "world",
            json!([{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.0.0/16"]}},
                   {"ipBlock": {"cidr": "::/0", "except": ["fd00:10:244::/56"]}}]),
        );
        let found = codes(&[world]);
        assert!(!found.contains(&"all-addresses-matches-pods"), "{found:?}");
        assert!(!found.contains(&"ipv4-only-all-addresses"), "{found:?}");
    }
}
