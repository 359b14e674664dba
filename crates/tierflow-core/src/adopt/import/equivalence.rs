//! The proof of an import: the original policies and the imported AppNetworks' rendered objects
//! (the one planner, [`plan::app_objects`]) simulated by the engine on the same pods and
//! endpoints, every connection compared.
//!
//! The endpoints: every given pod; the representatives of every imported AppNetwork
//! ([`representatives`], with near misses); and a probe for every peer and pod selector of the
//! original policies (a pod with the selector's example labels in the namespace, or in a
//! namespace whose labels satisfy the namespace selector; the first usable address of every
//! CIDR and of every `except`; an address outside the cluster per family). Each pod has a twin
//! (same labels) so that a pod to "another pod like it" is checked too. The ports: every port
//! either side's rules name, the one after it, the pods' container ports, DNS, and a few
//! others.
//!
//! Both sides are simulated as one CNI would enforce them: with Cilium's semantics when the
//! original holds Cilium policies or the AppNetworks are rendered for Cilium (an `ipBlock` then
//! never matches a pod), else as the objects' kinds say.
//!
//! A difference names the policies that decided it in the original, and the [`Gap`]s recorded
//! for them (or, failing that, for the policies of the namespaces at either end).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;
use serde_json::Value;

use super::translate::split_cilium;
use super::types::{Gap, GapKind, Import, ImportError};
use crate::core::{Cidr, Protocol, Selector};
use crate::engine::{Alt, Endpoint, K8sNs, Mode, Pod, PolicyRef, Scenario, Subject};
use crate::model::{AppModel, Backend};
use crate::plan::app_objects;
use crate::render::Env;
use crate::verify::endpoints::{
    assumed_cluster, first_usable, representatives, Options, Place, Role,
};
use crate::vocab::NAMESPACE_NAME_LABEL;

/// One connection the original policies and the imported AppNetworks decide differently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// Source endpoint (`ns/pod` or an address).
    pub from: String,
    /// Destination endpoint (`(another replica)` when it is the source's twin).
    pub to: String,
    /// Destination port.
    pub port: u16,
    /// Its protocol.
    pub protocol: String,
    /// What the original policies do.
    pub original: bool,
    /// What the imported AppNetworks' rendered objects do.
    pub imported: bool,
    /// The policies that decided it in the original.
    pub decided_by: Vec<PolicyRef>,
    /// Why, in words: the gaps behind it.
    pub reasons: Vec<String>,
    /// The kinds of those gaps (empty: no recorded gap explains it).
    pub kinds: Vec<GapKind>,
}

impl Difference {
    /// One line.
    pub fn describe(&self) -> String {
        format!(
            "{} -> {} on {}/{}: originally {}, imported {}",
            self.from,
            self.to,
            self.port,
            self.protocol,
            word(self.original),
            word(self.imported)
        )
    }
}

fn word(b: bool) -> &'static str {
    if b {
        "allowed"
    } else {
        "denied"
    }
}

/// The result of [`equivalence`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Equivalence {
    /// The backend the AppNetworks were rendered for.
    pub backend: String,
    /// Connections compared.
    pub checked: usize,
    /// Endpoints.
    pub endpoints: usize,
    /// Ports probed.
    pub ports: usize,
    /// Every difference.
    pub differences: Vec<Difference>,
    /// What the rendering could not express, and the recorded gaps.
    pub notes: Vec<String>,
}

impl Equivalence {
    /// Whether both decide every connection alike.
    pub fn equivalent(&self) -> bool {
        self.differences.is_empty()
    }
}

impl fmt::Display for Equivalence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.equivalent() {
            writeln!(
                f,
                "equivalent: the AppNetworks ({} backend) decide all {} connections like the \
                 original policies ({} endpoints, {} ports)",
                self.backend, self.checked, self.endpoints, self.ports
            )?;
        } else {
            writeln!(
                f,
                "NOT equivalent: {} of {} connections differ ({} backend, {} endpoints, {} ports)",
                self.differences.len(),
                self.checked,
                self.backend,
                self.endpoints,
                self.ports
            )?;
            let mut groups: BTreeMap<&[String], Vec<&Difference>> = BTreeMap::new();
            for d in &self.differences {
                groups.entry(d.reasons.as_slice()).or_default().push(d);
            }
            for (reasons, diffs) in groups {
                writeln!(f, "  because:")?;
                for r in reasons {
                    writeln!(f, "    - {r}")?;
                }
                for d in diffs.iter().take(12) {
                    writeln!(f, "    {}", d.describe())?;
                }
                if diffs.len() > 12 {
                    writeln!(f, "    ... and {} more", diffs.len() - 12)?;
                }
            }
        }
        // A gap that changed a connection is already printed as its reason.
        let reasons: std::collections::BTreeSet<&String> =
            self.differences.iter().flat_map(|d| &d.reasons).collect();
        for n in self.notes.iter().filter(|n| !reasons.contains(n)) {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}

/// A pod or address both scenarios get.
struct Ep {
    name: String,
    pod: Option<Pod>,
    ip: Option<IpAddr>,
}

/// Compares the original `objects` with the AppNetworks of `import` rendered for `backend`.
/// `cluster` are the cluster's ranges (empty: the made-up ones).
pub fn equivalence(
    objects: &[Value],
    import: &Import,
    backend: Backend,
    cluster: &[Cidr],
) -> Result<Equivalence, ImportError> {
    let original_all = Scenario::from_values(objects.iter().cloned())?;
    let cluster = assumed_cluster(cluster);
    let env = Env {
        api_server: Vec::new(),
        cluster_cidrs: cluster.clone(),
    };
    let mut models: Vec<AppModel> = Vec::new();
    for app in &import.apps {
        let m = crate::validate::app_network(&app.name, &app.namespace, &app.spec)
            .map_err(|e| ImportError::Invalid(format!("{}/{}: {e}", app.namespace, app.name)))?;
        models.push(m);
    }
    let mut notes: Vec<String> = Vec::new();
    let mut rendered = Vec::new();
    for m in &models {
        let (objs, limits) = app_objects(m, backend, &env);
        rendered.extend(objs.into_iter().map(|o| o.into_value()));
        notes.extend(
            limits
                .into_iter()
                .map(|l| format!("{}/{}: {}", m.namespace, m.name, l.message)),
        );
    }
    let policies_only: Vec<Value> = flatten(objects)
        .into_iter()
        .filter(|o| {
            let k = o.get("kind").and_then(Value::as_str).unwrap_or_default();
            !matches!(k, "Pod" | "Namespace")
        })
        .collect();
    // What was not imported (other namespaces, cluster-wide policies) stays in force on both
    // sides.
    let imported_ns: BTreeSet<&str> = import.apps.iter().map(|a| a.namespace.as_str()).collect();
    rendered.extend(
        policies_only
            .iter()
            .filter(|o| {
                o.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .is_none_or(|ns| !imported_ns.contains(ns))
            })
            .cloned(),
    );
    // Both sides are simulated as one CNI enforces them: Cilium when the original has Cilium
    // policies or the AppNetworks are rendered for Cilium (there an ipBlock does not match
    // pods, elsewhere it does), else as their own kinds say.
    let cilium = backend == Backend::Cilium || original_all.mode() == Mode::Cilium;
    let mut policies_only = policies_only;
    if cilium {
        policies_only.push(cilium_marker());
        rendered.push(cilium_marker());
    }
    let mut a = Scenario::from_values(policies_only)?;
    let mut b = Scenario::from_values(rendered)?;

    // Namespaces.
    let mut namespaces: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for ns in original_all.namespaces() {
        if let Some(l) = original_all.namespace_labels(ns) {
            namespaces.insert(ns.to_string(), l.clone());
        }
    }
    // Endpoints.
    let mut eps: Vec<Ep> = Vec::new();
    let mut seen_pods: BTreeSet<(String, BTreeMap<String, String>)> = BTreeSet::new();
    let mut seen_ips: BTreeSet<IpAddr> = BTreeSet::new();
    for p in original_all.pods() {
        seen_pods.insert((p.namespace.clone(), p.labels.clone()));
        eps.push(Ep {
            name: format!("{}/{}", p.namespace, p.name),
            pod: Some(p.clone()),
            ip: None,
        });
    }
    let mut add_pod = |eps: &mut Vec<Ep>, ns: &str, labels: BTreeMap<String, String>, ports| {
        if seen_pods.insert((ns.to_string(), labels.clone())) {
            let name = format!("probe-{}", eps.len());
            eps.push(Ep {
                name: format!("{ns}/{name}"),
                pod: Some(Pod {
                    namespace: ns.to_string(),
                    name,
                    labels,
                    ips: Vec::new(),
                    ports,
                    service_account: None,
                }),
                ip: None,
            });
        }
    };
    let mut add_ip = |eps: &mut Vec<Ep>, ip: IpAddr| {
        if seen_ips.insert(ip) {
            eps.push(Ep {
                name: ip.to_string(),
                pod: None,
                ip: Some(ip),
            });
        }
    };
    for m in &models {
        let reps = representatives(
            m,
            Options {
                near_misses: true,
                cluster_cidrs: cluster.clone(),
            },
        );
        for (ns, l) in &reps.namespaces {
            namespaces.entry(ns.clone()).or_insert_with(|| l.clone());
        }
        for e in &reps.endpoints {
            if e.unchecked || e.role == Role::ApiServer {
                continue;
            }
            match &e.place {
                Place::Pod {
                    namespace,
                    labels,
                    ports,
                    ..
                } => add_pod(&mut eps, namespace, labels.clone(), ports.clone()),
                Place::Address(ip) => add_ip(&mut eps, *ip),
            }
        }
    }
    // Probes for the original's selectors and addresses.
    let mut made_up = 0usize;
    let mut ns_for = |namespaces: &mut BTreeMap<String, BTreeMap<String, String>>,
                      sel: &Selector| {
        if let Some(n) = sel.match_labels.get(NAMESPACE_NAME_LABEL) {
            namespaces
                .entry(n.clone())
                .or_insert_with(|| BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), n.clone())]));
            return n.clone();
        }
        if let Some((n, _)) = namespaces.iter().find(|(_, l)| sel.matches(l)) {
            return n.clone();
        }
        made_up += 1;
        let n = format!("probe-ns-{made_up}");
        let mut l = sel.example_labels();
        l.insert(NAMESPACE_NAME_LABEL.to_string(), n.clone());
        namespaces.insert(n.clone(), l);
        n
    };
    let example = |s: Option<&Selector>| s.map(Selector::example_labels).unwrap_or_default();
    for p in a.policies() {
        if p.origin.name == MARKER {
            continue;
        }
        match &p.subject {
            Subject::K8s { namespace, pods } => {
                add_pod(&mut eps, namespace, pods.example_labels(), Vec::new())
            }
            Subject::Cilium {
                namespace: Some(ns),
                selector,
            } => add_pod(
                &mut eps,
                ns,
                split_cilium(selector).1.example_labels(),
                Vec::new(),
            ),
            Subject::Calico {
                namespace: Some(ns),
                selector,
                ..
            } => {
                if let Some(l) = selector.likely_labels() {
                    add_pod(&mut eps, ns, l, Vec::new());
                }
            }
            _ => {}
        }
        let own = p.namespace.clone().unwrap_or_default();
        let rules = [&p.ingress, &p.egress]
            .into_iter()
            .flatten()
            .flat_map(|s| s.rules.iter().chain(s.deny.iter()));
        let peers: Vec<u32> = rules.flat_map(|r| [r.src, r.dst]).flatten().collect();
        for id in peers {
            for alt in a.peer(id).unwrap_or_default() {
                match alt {
                    Alt::K8sPods {
                        namespaces: nss,
                        pods,
                    } => {
                        let ns = match nss {
                            K8sNs::Own(n) => n.clone(),
                            K8sNs::Selector(s) => ns_for(&mut namespaces, s),
                        };
                        add_pod(&mut eps, &ns, example(pods.as_ref()), Vec::new());
                    }
                    Alt::CiliumEndpoints {
                        namespace,
                        selector,
                    } => {
                        let (nss, pods) = split_cilium(selector);
                        let ns = match (namespace, nss) {
                            (Some(n), _) => n.clone(),
                            (None, Some(s)) => ns_for(&mut namespaces, &s),
                            (None, None) => own.clone(),
                        };
                        add_pod(&mut eps, &ns, pods.example_labels(), Vec::new());
                    }
                    Alt::K8sBlock { cidr, except } | Alt::CiliumCidr { cidr, except } => {
                        for ip in addresses(cidr, except) {
                            add_ip(&mut eps, ip);
                        }
                    }
                    Alt::Calico(e) => {
                        for n in &e.nets {
                            for ip in addresses(n, &e.not_nets) {
                                add_ip(&mut eps, ip);
                            }
                        }
                        if let (Some(s), Some(ns)) = (&e.selector, &e.scope) {
                            if let Some(l) = s.likely_labels() {
                                add_pod(&mut eps, ns, l, Vec::new());
                            }
                        }
                    }
                    Alt::CiliumEntity(_) => {}
                }
            }
        }
    }
    add_ip(&mut eps, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)));
    add_ip(
        &mut eps,
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)),
    );

    // Addresses for pods that have none, away from every address endpoint.
    let mut next = 0u32;
    let mut taken: BTreeSet<IpAddr> = eps
        .iter()
        .filter_map(|e| e.ip)
        .chain(
            eps.iter()
                .filter_map(|e| e.pod.as_ref())
                .flat_map(|p| p.ips.clone()),
        )
        .collect();
    let mut fresh = || loop {
        next += 1;
        let ip = IpAddr::V4(Ipv4Addr::new(
            10,
            244,
            u8::try_from(next / 250 % 256).unwrap_or(0),
            u8::try_from(next % 250 + 1).unwrap_or(1),
        ));
        if taken.insert(ip) {
            return ip;
        }
    };
    for ns in namespaces.keys() {
        let l = namespaces.get(ns).cloned().unwrap_or_default();
        a.add_namespace(ns, l.clone());
        b.add_namespace(ns, l);
    }
    let mut ends: Vec<(Endpoint, Option<Endpoint>)> = Vec::new();
    for e in &mut eps {
        match &mut e.pod {
            Some(pod) => {
                if pod.ips.is_empty() {
                    pod.ips = vec![fresh()];
                }
                let idx = a.pods().len();
                a.add_pod(pod.clone());
                b.add_pod(pod.clone());
                let twin = Pod {
                    name: format!("{}.replica", pod.name),
                    ips: vec![fresh()],
                    ..pod.clone()
                };
                a.add_pod(twin.clone());
                b.add_pod(twin);
                ends.push((Endpoint::Pod(idx), Some(Endpoint::Pod(idx + 1))));
            }
            None => {
                let ip = e.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                ends.push((Endpoint::Ip(ip), None));
            }
        }
    }
    // Ports.
    let mut ports: BTreeSet<(u16, Protocol)> = BTreeSet::new();
    for s in [&a, &b] {
        for (p, pr) in s.ports_named_in_policies() {
            ports.insert((p, pr));
            ports.insert((p.saturating_add(1), pr));
            if p > 1 {
                ports.insert((p - 1, pr));
            }
        }
        for pod in s.pods() {
            for cp in &pod.ports {
                ports.insert((cp.port, cp.protocol));
            }
        }
    }
    for x in [
        (53, Protocol::Udp),
        (53, Protocol::Tcp),
        (80, Protocol::Tcp),
        (443, Protocol::Tcp),
        (8080, Protocol::Tcp),
        (9, Protocol::Sctp),
        (65535, Protocol::Udp),
        (1, Protocol::Tcp),
    ] {
        ports.insert(x);
    }
    let ports: Vec<(u16, Protocol)> = ports.into_iter().collect();

    // Compare.
    let mut differences = Vec::new();
    let mut checked = 0usize;
    for (i, from) in eps.iter().enumerate() {
        for (j, to) in eps.iter().enumerate() {
            if from.pod.is_none() && to.pod.is_none() {
                continue;
            }
            let (Some(&(src, _)), Some(&(dst, twin))) = (ends.get(i), ends.get(j)) else {
                continue;
            };
            let dst = if i == j {
                match twin {
                    Some(t) => t,
                    None => continue,
                }
            } else {
                dst
            };
            let got_a = a.allows_each(src, dst, &ports);
            let got_b = b.allows_each(src, dst, &ports);
            for ((port, proto), (x, y)) in ports.iter().zip(got_a.into_iter().zip(got_b)) {
                checked += 1;
                if x == y {
                    continue;
                }
                let verdict = a.check(src, dst, *port, *proto);
                let decided_by: Vec<PolicyRef> = verdict.policies().cloned().collect();
                let ends_ns: Vec<&str> = [from, to]
                    .iter()
                    .filter_map(|e| e.pod.as_ref().map(|p| p.namespace.as_str()))
                    .collect();
                let (reasons, kinds) = reasons(&import.gaps, &decided_by, &ends_ns, x);
                differences.push(Difference {
                    from: from.name.clone(),
                    to: if i == j {
                        format!("{} (another replica)", to.name)
                    } else {
                        to.name.clone()
                    },
                    port: *port,
                    protocol: proto.as_str().to_string(),
                    original: x,
                    imported: y,
                    reasons,
                    kinds,
                    decided_by,
                });
            }
        }
    }
    for g in import
        .gaps
        .iter()
        .filter(|g| g.kind != GapKind::NotImported)
    {
        notes.push(g.describe());
    }
    Ok(Equivalence {
        backend: backend.as_str().to_string(),
        checked,
        endpoints: eps.len(),
        ports: ports.len(),
        differences,
        notes,
    })
}

/// The name of the policy that makes the engine evaluate both sides as Cilium does.
const MARKER: &str = "tierflow-import-cilium-semantics";

/// A CiliumNetworkPolicy that selects no pod: its presence makes the engine use Cilium's
/// semantics for every policy of the scenario.
fn cilium_marker() -> Value {
    serde_json::json!({
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": MARKER, "namespace": MARKER},
        "spec": {
            "endpointSelector": {"matchLabels": {"tierflow.dev/import-semantics": "cilium"}},
            "ingress": [{}],
        },
    })
}

/// The gaps behind a difference: those of the policies that decided it in the original, else
/// those of any policy of the namespaces at either end.
fn reasons(
    gaps: &[Gap],
    decided_by: &[PolicyRef],
    namespaces: &[&str],
    original: bool,
) -> (Vec<String>, Vec<GapKind>) {
    let same = |g: &Gap, p: &PolicyRef| {
        g.policy.kind == p.kind && g.policy.namespace == p.namespace && g.policy.name == p.name
    };
    let mut found: Vec<&Gap> = gaps
        .iter()
        .filter(|g| decided_by.iter().any(|p| same(g, p)))
        .collect();
    if found.is_empty() {
        found = gaps
            .iter()
            .filter(|g| {
                g.policy
                    .namespace
                    .as_deref()
                    .is_some_and(|ns| namespaces.contains(&ns))
                    || g.policy.namespace.is_none()
            })
            .collect();
    }
    let mut kinds: Vec<GapKind> = found.iter().map(|g| g.kind).collect();
    kinds.sort();
    kinds.dedup();
    let mut out: Vec<String> = found.into_iter().map(Gap::describe).collect();
    if out.is_empty() {
        out.push(if original {
            "no recorded gap explains it: the imported AppNetworks deny what the policies allow \
             (a translation mistake; please report it)"
                .to_string()
        } else {
            "no recorded gap explains it: the imported AppNetworks allow what the policies deny \
             (a translation mistake; please report it)"
                .to_string()
        });
    }
    out.sort();
    out.dedup();
    (out, kinds)
}

/// The first usable address of a network, and of each exception inside it.
fn addresses(cidr: &Cidr, except: &[Cidr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = first_usable(cidr, except).into_iter().collect();
    for e in except {
        out.extend(first_usable(e, &[]));
    }
    out
}

/// Objects with lists flattened.
fn flatten(objects: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for o in objects {
        match o.get("items").and_then(Value::as_array) {
            Some(items) => out.extend(flatten(items)),
            None if !o.is_null() => out.push(o.clone()),
            None => {}
        }
    }
    out
}
