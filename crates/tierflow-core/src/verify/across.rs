//! Verification across namespaces: every declared pod-to-pod flow of every AppNetwork, checked
//! against everything else in force — the other AppNetworks' objects and namespace baselines,
//! the ClusterBaselines, and the users' own policies (NetworkPolicy, Calico, Cilium,
//! ClusterNetworkPolicy) — from both ends.
//!
//! A flow from `pay/worker` to `ledger`'s API is declared in `pay`, and `pay`'s own objects
//! allow its egress; but `ledger`'s AppNetwork, its namespace baseline or a ClusterBaseline
//! may still deny the ingress. [`check`] plans every AppNetwork and ClusterBaseline of a
//! [`World`] with the one planner ([`crate::plan::plan`]), adds the users' objects, simulates
//! with the [`engine`](crate::engine), and reports each declared flow that cannot succeed with
//! the object and rule that block it ([`Blocked`]). [`why`] answers the same for one connection,
//! and [`suggest`] gives the smallest AppNetwork change that allows a denied one.
//!
//! # Endpoints
//! A flow's tier end is a pod of the tier in the AppNetwork's namespace (the tier's labels, as
//! [`representatives`](super::endpoints::representatives) builds them). A pod peer's end is,
//! in each namespace it names or selects (among the namespaces of the world; at most
//! [`MAX_PEER_NAMESPACES`] each, those holding AppNetworks first), a pod that is both the peer
//! and a tier of an AppNetwork there when some tier's labels agree with the peer's selector
//! (what the pod the flow means really is), else a pod with the peer's labels. Every pod gets
//! every container port name the flows use, with one number per name. CIDR, `world`, FQDN and
//! API server peers are not pods and are left to the per-AppNetwork verification.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use super::endpoints::assumed_cluster;
use crate::core::{Cidr, Port, PortName, Protocol, Selector};
use crate::crd::{AppNetworkSpec, FlowSpec, PeerSpec, PortSpec, TierSpec};
use crate::engine::{
    ContainerPort, Decision, DecisionStep as Step, Direction, Effect, Endpoint, EngineError, Pod,
    PolicyRef, Scenario,
};
use crate::model::{AppModel, NamespaceMatch, Peer};
use crate::plan::{self, AppInput, Cluster, ClusterBaselineInput, Labels, Plan};
use crate::vocab::{MANAGED_BY, MANAGER};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// The name `why` gives an AppNetwork it suggests creating.
pub const NEW_APP_NETWORK: &str = "allow-flows";

/// At most this many namespaces stand for a peer that selects namespaces by label or names
/// every namespace.
pub const MAX_PEER_NAMESPACES: usize = 16;

/// Everything in force: the inputs of the planner and the users' own objects.
#[derive(Clone, Debug, Default)]
pub struct World {
    /// Every AppNetwork.
    pub apps: Vec<AppInput>,
    /// Every ClusterBaseline.
    pub cluster_baselines: Vec<ClusterBaselineInput>,
    /// Every namespace known, with its labels.
    pub namespaces: BTreeMap<String, Labels>,
    /// The planner's view of the cluster.
    pub cluster: Cluster,
    /// The users' own objects (policies, and Namespaces and Pods if any), read by the engine
    /// before the planned ones; `null` entries are skipped but count for the engine's document
    /// numbers, so a caller can keep them aligned with its input.
    pub others: Vec<Value>,
}

/// Whether an object carries tierflow's managed-by label (the planner renders those again).
pub fn is_managed(v: &Value) -> bool {
    v.pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_BY))
        .and_then(Value::as_str)
        == Some(MANAGER)
}

/// One pod end of a connection.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PodEnd {
    /// Its namespace.
    pub namespace: String,
    /// Its labels.
    pub labels: Labels,
    /// A real pod's name (`None` for a made-up one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl fmt::Display for PodEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{n}", self.namespace),
            None if self.labels.is_empty() => write!(f, "{}/<any pod>", self.namespace),
            None => {
                let l: Vec<String> = self
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                write!(f, "{}/{}", self.namespace, l.join(","))
            }
        }
    }
}

/// The object and rule behind one end's denial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    /// The object: kind, namespace, name, whether tierflow manages it.
    pub object: PolicyRef,
    /// Where it denies.
    pub direction: Direction,
    /// The rule's field path, for example `spec.ingress[0]` (`None`: a default deny).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A deny rule, or the default deny of an object that isolates the pod.
    pub effect: Effect,
    /// For tierflow's objects, the inputs it is rendered from (`AppNetwork ns/name`,
    /// `ClusterBaseline name`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_inputs: Vec<String>,
}

fn kind_text(p: &PolicyRef) -> String {
    format!("{} {p}", p.kind)
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = if self.object.managed {
            if self.from_inputs.is_empty() {
                "tierflow's".to_string()
            } else {
                format!("tierflow's, from {}", self.from_inputs.join(" and "))
            }
        } else {
            "not tierflow's".to_string()
        };
        match (&self.rule, self.effect) {
            (Some(rule), _) => write!(
                f,
                "denied by rule {rule} of {} ({whose})",
                kind_text(&self.object)
            ),
            (None, _) => write!(
                f,
                "no policy allows it: default deny of {} ({whose})",
                kind_text(&self.object)
            ),
        }
    }
}

/// One declared flow that cannot succeed, between two of its pods on one port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocked {
    /// The AppNetwork that declares the flow, `namespace/name`.
    pub app_network: String,
    /// The flow, by index into its `spec.flows`.
    pub flow: usize,
    /// The source pod.
    pub from: PodEnd,
    /// The destination pod.
    pub to: PodEnd,
    /// The destination port.
    pub port: u16,
    /// Its protocol.
    pub protocol: String,
    /// The ends that deny it, with what denies it (egress first).
    pub blocked_by: Vec<Blocker>,
}

impl Blocked {
    /// One line: the flow, the connection and what blocks it.
    pub fn describe(&self) -> String {
        let by: Vec<String> = self
            .blocked_by
            .iter()
            .map(|b| {
                let at = match b.direction {
                    Direction::Egress => "egress",
                    Direction::Ingress => "ingress",
                };
                format!("at {at}: {b}")
            })
            .collect();
        format!(
            "spec.flows[{}]: {} -> {} on {}/{} is blocked {}",
            self.flow,
            self.from,
            self.to,
            self.port,
            self.protocol,
            by.join("; ")
        )
    }

    /// The blocking objects' `Kind ns/name`, without repeats.
    pub fn objects(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for b in &self.blocked_by {
            let k = kind_text(&b.object);
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }
}

/// What [`check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// How many AppNetworks were checked.
    pub app_networks: usize,
    /// How many declared pod-to-pod flows were checked.
    pub flows: usize,
    /// How many of each AppNetwork's flows were checked, by `namespace/name`.
    #[serde(skip)]
    pub flows_by_app: BTreeMap<String, usize>,
    /// How many connections (pod pair and port) were checked.
    pub connections: usize,
    /// Every connection of a declared flow that cannot succeed.
    pub blocked: Vec<Blocked>,
    /// What was not checked, and why.
    pub notes: Vec<String>,
}

impl Report {
    /// Whether every declared flow can succeed.
    pub fn passed(&self) -> bool {
        self.blocked.is_empty()
    }

    /// The blocked flows of one AppNetwork (`namespace/name`), by flow index.
    pub fn of(&self, app_network: &str) -> BTreeMap<usize, Vec<&Blocked>> {
        let mut out: BTreeMap<usize, Vec<&Blocked>> = BTreeMap::new();
        for b in self.blocked.iter().filter(|b| b.app_network == app_network) {
            out.entry(b.flow).or_default().push(b);
        }
        out
    }
}

/// `1 flow`, `2 flows`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.blocked.is_empty() {
            writeln!(
                f,
                "Across namespaces: ok, every declared flow can succeed ({} of {}, {} checked)",
                count(self.flows, "flow"),
                count(self.app_networks, "AppNetwork"),
                count(self.connections, "connection")
            )?;
        } else {
            let flows: BTreeSet<(&str, usize)> = self
                .blocked
                .iter()
                .map(|b| (b.app_network.as_str(), b.flow))
                .collect();
            writeln!(
                f,
                "Across namespaces: {} declared {} cannot succeed ({} of {}, {} checked)",
                flows.len(),
                if flows.len() == 1 { "flow" } else { "flows" },
                count(self.flows, "flow"),
                count(self.app_networks, "AppNetwork"),
                count(self.connections, "connection")
            )?;
            let mut app = "";
            for b in &self.blocked {
                if b.app_network != app {
                    app = &b.app_network;
                    writeln!(f, "  AppNetwork {app}:")?;
                }
                writeln!(
                    f,
                    "    spec.flows[{}]: {} -> {} on {}/{} is blocked:",
                    b.flow, b.from, b.to, b.port, b.protocol
                )?;
                for x in &b.blocked_by {
                    let at = match x.direction {
                        Direction::Egress => "egress",
                        Direction::Ingress => "ingress",
                    };
                    writeln!(f, "      at {at}: {x}")?;
                }
            }
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}

/// The world planned and read into the engine, with made-up pods added on demand.
pub struct Built {
    /// What the planner decided.
    pub plan: Plan,
    /// The engine's scenario: the users' objects, the planned ones, the namespaces, and the
    /// pods added so far.
    pub scenario: Scenario,
    pods: BTreeMap<(String, Labels, bool), usize>,
    named_ports: BTreeMap<(PortName, Protocol), u16>,
    pool: Vec<(bool, u128, u128)>,
    next: u128,
    used: BTreeSet<IpAddr>,
}

fn to_u128(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (true, u128::from(u32::from(a))),
        IpAddr::V6(a) => (false, u128::from(a)),
    }
}

impl World {
    /// Plans the world and reads it into the engine.
    pub fn build(&self) -> Result<Built, EngineError> {
        let plan = plan::plan(
            &self.apps,
            &self.cluster_baselines,
            &self.namespaces,
            &self.cluster,
            &plan::Nothing,
        );
        let mut scenario = Scenario::from_values(
            self.others
                .iter()
                .cloned()
                .chain(plan.objects.iter().map(|o| o.to_value())),
        )?;
        scenario.set_cilium_identity_filter(self.cluster.cilium_identity.clone());
        for (ns, labels) in &self.namespaces {
            scenario.add_namespace(ns, labels.clone());
        }
        // One number per container port name any flow or tier uses, away from the declared
        // numbers.
        let mut named_ports = BTreeMap::new();
        let mut taken: BTreeSet<u16> = BTreeSet::new();
        let mut names: Vec<(PortName, Protocol)> = Vec::new();
        for (_, app) in plan.apps() {
            let Some(m) = &app.model else { continue };
            for p in m
                .tiers
                .iter()
                .flat_map(|t| t.ports.iter())
                .chain(m.flows.iter().flat_map(|f| f.ports.iter()))
            {
                if let Some((a, b)) = p.bounds() {
                    taken.extend([a, b]);
                }
                if let Some(n) = p.name() {
                    names.push((n, p.protocol));
                }
            }
        }
        let mut next = 40000u16;
        for n in names {
            if named_ports.contains_key(&n) {
                continue;
            }
            while taken.contains(&next) {
                next = next.saturating_add(1);
            }
            named_ports.insert(n, next);
            next = next.saturating_add(1);
        }
        let used: BTreeSet<IpAddr> = scenario.pods().iter().flat_map(|p| p.ips.clone()).collect();
        let pool: Vec<(bool, u128, u128)> = assumed_cluster(&self.cluster.cluster_cidrs)
            .iter()
            .filter_map(bounds)
            .collect();
        let next = pool.first().map_or(0, |p| p.1 + 1);
        Ok(Built {
            plan,
            scenario,
            pods: BTreeMap::new(),
            named_ports,
            pool,
            next,
            used,
        })
    }
}

fn bounds(c: &Cidr) -> Option<(bool, u128, u128)> {
    let net: ipnet::IpNet = c.to_string().parse().ok()?;
    let (v4, lo) = to_u128(net.network());
    let (_, hi) = to_u128(net.broadcast());
    Some((v4, lo, hi))
}

impl Built {
    fn address(&mut self) -> Option<IpAddr> {
        while let Some(&(v4, lo, hi)) = self.pool.first() {
            if self.next <= lo || self.next >= hi {
                self.next = lo + 1;
            }
            // A bounded search per range, then the next range.
            while self.next < hi && self.next - lo < 1 << 16 {
                let n = self.next;
                self.next += 1;
                let ip = if v4 {
                    IpAddr::V4(u32::try_from(n).ok()?.into())
                } else {
                    IpAddr::V6(n.into())
                };
                if self.used.insert(ip) {
                    return Some(ip);
                }
            }
            self.pool.remove(0);
            self.next = 0;
        }
        None
    }

    /// A made-up pod in `namespace` with `labels` (one per namespace and labels; `twin` asks
    /// for a second replica, for a flow from a pod to others like it).
    pub fn pod(&mut self, namespace: &str, labels: &Labels, twin: bool) -> Endpoint {
        let key = (namespace.to_string(), labels.clone(), twin);
        if let Some(&i) = self.pods.get(&key) {
            return Endpoint::Pod(i);
        }
        let n = self.pods.len();
        let ports = self
            .named_ports
            .iter()
            .map(|((name, protocol), number)| ContainerPort {
                name: Some(name.to_string()),
                port: *number,
                protocol: *protocol,
            })
            .collect();
        let ip = self.address();
        let index = self.scenario.pods().len();
        self.scenario.add_pod(Pod {
            namespace: namespace.to_string(),
            name: format!("tierflow-probe-{n}{}", if twin { ".replica" } else { "" }),
            labels: labels.clone(),
            ips: ip.into_iter().collect(),
            ports,
            service_account: None,
        });
        self.pods.insert(key, index);
        Endpoint::Pod(index)
    }

    /// The number a port stands for: its number, the first of a range, or the number every
    /// made-up pod gives its name.
    pub fn number(&self, p: &Port) -> Option<u16> {
        match p.bounds() {
            Some((a, _)) => Some(a),
            None => p
                .name()
                .and_then(|n| self.named_ports.get(&(n, p.protocol)).copied()),
        }
    }

    /// The inputs a managed object is rendered from, as `AppNetwork ns/name` and
    /// `ClusterBaseline name` (empty for an object that is not in the plan).
    pub fn inputs_of(&self, p: &PolicyRef) -> Vec<String> {
        if !p.managed {
            return Vec::new();
        }
        let kind = p.kind.rsplit(' ').next().unwrap_or_default();
        let same = |o: &crate::render::Object| {
            o.name() == p.name && o.namespace() == p.namespace.as_deref() && o.kind().kind() == kind
        };
        let mut out = Vec::new();
        for (ns, app) in self.plan.apps() {
            if app.objects.iter().any(same) {
                out.push(format!("AppNetwork {ns}/{}", app.name));
            }
        }
        for cb in &self.plan.cluster_baselines {
            if cb.object.iter().chain(&cb.guardrails).any(same) {
                out.push(format!("ClusterBaseline {}", cb.name));
            }
        }
        if out.is_empty() {
            // A namespace baseline: the inputs recorded on it.
            if let Some(o) = self.plan.objects.iter().find(|o| same(o)) {
                let annotations: BTreeMap<String, String> = o
                    .body()
                    .pointer("/metadata/annotations")
                    .cloned()
                    .and_then(|a| serde_json::from_value(a).ok())
                    .unwrap_or_default();
                for key in plan::records_of(&annotations).keys() {
                    match key.split_once('/') {
                        Some(("AppNetwork", name)) => out.push(format!(
                            "AppNetwork {}/{name}",
                            p.namespace.as_deref().unwrap_or_default()
                        )),
                        Some((kind, name)) => out.push(format!("{kind} {name}")),
                        None => {}
                    }
                }
            }
        }
        out
    }

    /// The blockers of a denied decision.
    pub fn blockers(&self, d: &Decision) -> Vec<Blocker> {
        d.steps
            .iter()
            .filter(|s| matches!(s.rule.effect, Effect::Deny | Effect::DefaultDeny))
            .map(|s| self.blocker(s))
            .collect()
    }

    fn blocker(&self, s: &Step) -> Blocker {
        Blocker {
            object: s.policy.clone(),
            direction: s.rule.direction,
            rule: s.rule.field.clone(),
            effect: s.rule.effect,
            from_inputs: self.inputs_of(&s.policy),
        }
    }

    /// The models of the AppNetworks of `namespace` that are not held.
    pub fn models_in<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a AppModel> {
        self.plan
            .apps()
            .filter(move |(ns, a)| *ns == namespace && !a.held())
            .filter_map(|(_, a)| a.model.as_ref())
    }
}

/// The pods a pod peer stands for in one namespace: the pods that are both the peer and a
/// tier of an AppNetwork there, else one pod with the peer's labels (a pod without labels for
/// every pod of the namespace).
fn peer_pods(built: &Built, namespace: &str, pods: Option<&Selector>) -> Vec<Labels> {
    // Every pod of the namespace: a pod without labels stands for them.
    let Some(pods) = pods else {
        return vec![Labels::new()];
    };
    let mut out: Vec<Labels> = Vec::new();
    for m in built.models_in(namespace) {
        for t in &m.tiers {
            let mut labels = t.selector.example_labels();
            for (k, v) in pods.example_labels() {
                labels.entry(k).or_insert(v);
            }
            if t.selector.matches(&labels) && pods.matches(&labels) && !out.contains(&labels) {
                out.push(labels);
            }
        }
    }
    if out.is_empty() {
        out.push(pods.example_labels());
    }
    out
}

/// The namespaces a pod peer's namespaces stand for, and a note when some were left out.
fn peer_namespaces(
    world: &World,
    built: &Built,
    own: &str,
    m: &NamespaceMatch,
) -> (Vec<String>, Option<String>) {
    let pick = |matching: Vec<&String>| {
        let total = matching.len();
        let mut with_apps: Vec<String> = matching
            .iter()
            .filter(|n| built.models_in(n).next().is_some())
            .map(|n| n.to_string())
            .collect();
        with_apps.extend(
            matching
                .iter()
                .filter(|n| built.models_in(n).next().is_none())
                .map(|n| n.to_string()),
        );
        with_apps.truncate(MAX_PEER_NAMESPACES);
        (with_apps, total)
    };
    match m {
        NamespaceMatch::Own => (vec![own.to_string()], None),
        NamespaceMatch::Named(n) => (
            vec![n.clone()],
            (!world.namespaces.contains_key(n)).then(|| {
                format!("namespace {n} is not in the input; checked as a namespace without labels")
            }),
        ),
        NamespaceMatch::Selector(s) => {
            let matching: Vec<&String> = world
                .namespaces
                .iter()
                .filter(|(_, l)| s.matches(l))
                .map(|(n, _)| n)
                .collect();
            let (chosen, total) = pick(matching);
            let note = if chosen.is_empty() {
                Some(format!(
                    "no namespace of the input matches {s}, so the peer was not checked"
                ))
            } else if chosen.len() < total {
                Some(format!(
                    "{total} namespaces match {s}; {} were checked",
                    chosen.len()
                ))
            } else {
                None
            };
            (chosen, note)
        }
        NamespaceMatch::All => {
            let (chosen, total) = pick(world.namespaces.keys().collect());
            let note = (chosen.len() < total)
                .then(|| format!("every namespace ({total}): {} were checked", chosen.len()));
            (chosen, note)
        }
    }
}

/// The pod ends of one end of a flow (empty: not a pod end).
fn ends(
    world: &World,
    built: &Built,
    model: &AppModel,
    peer: &Peer,
) -> (Vec<PodEnd>, Option<String>) {
    match peer {
        Peer::Tier(t) => {
            let Some(tier) = model.tiers.get(*t) else {
                return (Vec::new(), None);
            };
            (
                vec![PodEnd {
                    namespace: model.namespace.clone(),
                    labels: tier.selector.example_labels(),
                    name: None,
                }],
                None,
            )
        }
        Peer::Pods { namespaces, pods } => {
            let (nss, note) = peer_namespaces(world, built, &model.namespace, namespaces);
            let mut out = Vec::new();
            // Pods of the AppNetwork's own namespace are its own verification's business
            // (`verify_in`): what the intent expects of pods in no tier there is its own.
            for ns in nss.into_iter().filter(|n| n != &model.namespace) {
                for labels in peer_pods(built, &ns, pods.as_ref()) {
                    out.push(PodEnd {
                        namespace: ns.clone(),
                        labels,
                        name: None,
                    });
                }
            }
            (out, note)
        }
        _ => (Vec::new(), None),
    }
}

/// Checks every declared pod-to-pod flow of the AppNetworks of `world` (of those named
/// `namespace/name` in `only`, when given) against everything in force.
pub fn check(world: &World, only: Option<&BTreeSet<String>>) -> Result<Report, EngineError> {
    let mut built = world.build()?;
    let mut report = Report::default();
    let models: Vec<AppModel> = built
        .plan
        .apps()
        .filter(|(_, a)| !a.held())
        .filter_map(|(_, a)| a.model.clone())
        .filter(|m| only.is_none_or(|o| o.contains(&format!("{}/{}", m.namespace, m.name))))
        .collect();
    for (ns, a) in built.plan.apps() {
        if let Some(h) = &a.hold {
            if only.is_none_or(|o| o.contains(&format!("{ns}/{}", a.name))) {
                report.notes.push(format!(
                    "AppNetwork {ns}/{} is held ({}), so its flows were not checked",
                    a.name,
                    h.reason.reason()
                ));
            }
        }
    }
    report.app_networks = models.len();
    let mut connections = Vec::new();
    for model in &models {
        if model.audit {
            report.notes.push(format!(
                "AppNetwork {}/{} is in Audit mode: its flows were checked as if enforced",
                model.namespace, model.name
            ));
        }
        let app = format!("{}/{}", model.namespace, model.name);
        for f in &model.flows {
            let (sources, n1) = ends(world, &built, model, &f.from);
            let (targets, n2) = ends(world, &built, model, &f.to);
            for n in [n1, n2].into_iter().flatten() {
                report
                    .notes
                    .push(format!("AppNetwork {app} spec.flows[{}]: {n}", f.index));
            }
            if sources.is_empty() || targets.is_empty() {
                continue;
            }
            report.flows += 1;
            *report.flows_by_app.entry(app.clone()).or_default() += 1;
            for from in &sources {
                for to in &targets {
                    let a = built.pod(&from.namespace, &from.labels, false);
                    let b = built.pod(&to.namespace, &to.labels, from == to);
                    connections.push((app.clone(), f, from.clone(), to.clone(), a, b));
                }
            }
        }
    }
    // Every made-up pod is added before the first question: adding one drops the engine's
    // index, so asking between additions rebuilt it once per pod (the check grew with the
    // square of its world).
    for (app, f, from, to, a, b) in connections {
        for p in &f.ports {
            let Some(number) = built.number(p) else {
                continue;
            };
            report.connections += 1;
            if built.scenario.allows(a, b, number, p.protocol) {
                continue;
            }
            let Some(d) = built.scenario.decide(a, b, number, p.protocol) else {
                continue;
            };
            report.blocked.push(Blocked {
                app_network: app.clone(),
                flow: f.index,
                from: from.clone(),
                to: to.clone(),
                port: number,
                protocol: p.protocol.as_str().to_string(),
                blocked_by: built.blockers(&d),
            });
        }
    }
    report.notes.extend(
        built
            .scenario
            .refused()
            .iter()
            .map(|r| format!("left out of the simulation: {r}")),
    );
    report.notes.sort();
    report.notes.dedup();
    Ok(report)
}

/// One end of the connection `why` is asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// A pod of the input, by namespace and name.
    Pod {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A pod with these labels in this namespace (made up when none exists).
    Labels {
        /// Its namespace.
        namespace: String,
        /// Its labels.
        labels: Labels,
    },
}

/// Why `why` cannot answer: an endpoint that does not parse or is not in the input.
#[derive(Debug, thiserror::Error)]
pub enum WhyError {
    /// Not `NAMESPACE/POD` or `NAMESPACE/key=value,...`.
    #[error("{0:?}: expected NAMESPACE/POD or NAMESPACE/key=value,...")]
    Form(String),
    /// The namespace part is not a namespace name.
    #[error("{0:?} is not a namespace name")]
    Namespace(String),
    /// A label that is not `key=value`, or an invalid key or value.
    #[error("{0}")]
    Label(String),
    /// The same label key twice.
    #[error("label key {0:?} is given twice")]
    RepeatedKey(String),
    /// A named pod that the input does not have.
    #[error("{what}: no pod {namespace}/{name} in the input")]
    NoSuchPod {
        /// `--from` or `--to`.
        what: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The input cannot be simulated.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The engine has no endpoint for one end.
    #[error("the endpoints could not be resolved")]
    Unresolved,
}

impl WhyError {
    /// A bounded reason.
    pub fn reason(&self) -> &'static str {
        match self {
            WhyError::Form(_) | WhyError::Namespace(_) => "InvalidEndpoint",
            WhyError::Label(_) | WhyError::RepeatedKey(_) => "InvalidLabels",
            WhyError::NoSuchPod { .. } => "PodNotFound",
            WhyError::Engine(_) => "UnsimulatedInput",
            WhyError::Unresolved => "Unresolved",
        }
    }
}

impl Who {
    /// Reads `NS/POD` or `NS/k=v,k2=v2` (`NS/` alone: a pod without labels).
    pub fn parse(s: &str) -> Result<Who, WhyError> {
        let (ns, rest) = s
            .split_once('/')
            .ok_or_else(|| WhyError::Form(s.to_string()))?;
        if !crate::core::selector::is_dns1123_label(ns) {
            return Err(WhyError::Namespace(ns.to_string()));
        }
        if rest.contains('=') || rest.is_empty() {
            let mut labels = Labels::new();
            for pair in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    WhyError::Label(format!("{pair:?} is not of the form key=value"))
                })?;
                crate::core::selector::check_key(k.trim())
                    .map_err(|e| WhyError::Label(e.to_string()))?;
                crate::core::selector::check_value(k.trim(), v.trim())
                    .map_err(|e| WhyError::Label(e.to_string()))?;
                if labels
                    .insert(k.trim().to_string(), v.trim().to_string())
                    .is_some()
                {
                    return Err(WhyError::RepeatedKey(k.trim().to_string()));
                }
            }
            Ok(Who::Labels {
                namespace: ns.to_string(),
                labels,
            })
        } else {
            Ok(Who::Pod {
                namespace: ns.to_string(),
                name: rest.to_string(),
            })
        }
    }
}

/// A change to one AppNetwork that would allow a denied connection at one end.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// The end it opens.
    pub direction: Direction,
    /// The namespace of the AppNetwork to change.
    pub namespace: String,
    /// The AppNetwork to change (`None`: a new one, called [`NEW_APP_NETWORK`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_network: Option<String>,
    /// A tier to add first (the pod is in no tier of that AppNetwork).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierSpec>,
    /// The flow entry to add to `spec.flows`.
    pub flow: FlowSpec,
    /// Whether the simulation allows the connection at this end once the change is made.
    pub verified: bool,
}

impl Suggestion {
    /// What to do, in words, and the YAML to add (every line indented by `indent` spaces but
    /// the first).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match &self.app_network {
            Some(a) => {
                if let Some(t) = &self.tier {
                    out.push_str(&format!(
                        "add to AppNetwork {}/{a} spec.tiers:\n",
                        self.namespace
                    ));
                    out.push_str(&indent(&yaml_item(t)));
                    out.push_str("  and to its spec.flows:\n");
                } else {
                    out.push_str(&format!(
                        "add to AppNetwork {}/{a} spec.flows:\n",
                        self.namespace
                    ));
                }
                out.push_str(&indent(&yaml_item(&self.flow)));
            }
            None => {
                out.push_str(&format!(
                    "create an AppNetwork in {} (none there selects the pod):\n",
                    self.namespace
                ));
                let doc = serde_json::json!({
                    "apiVersion": "tierflow.dev/v1alpha1",
                    "kind": "AppNetwork",
                    "metadata": {"name": NEW_APP_NETWORK, "namespace": self.namespace},
                    "spec": {"tiers": self.tier.iter().collect::<Vec<_>>(), "flows": [&self.flow]},
                });
                out.push_str(&indent(&serde_yaml::to_string(&doc).unwrap_or_default()));
            }
        }
        out
    }
}

fn yaml_item<T: Serialize>(v: &T) -> String {
    serde_yaml::to_string(&[v]).unwrap_or_default()
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// What `why` found about one connection.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Why {
    /// The source.
    pub from: PodEnd,
    /// The destination.
    pub to: PodEnd,
    /// The port.
    pub port: u16,
    /// Its protocol.
    pub protocol: String,
    /// Whether it is allowed.
    pub allowed: bool,
    /// Both ends, with the rules that decided each, in evaluation order.
    pub decision: Decision,
    /// The inputs each deciding tierflow object is rendered from, by `Kind ns/name`.
    pub rendered_from: BTreeMap<String, Vec<String>>,
    /// When denied: the smallest AppNetwork change at each end that denies it.
    pub suggestions: Vec<Suggestion>,
    /// Why no AppNetwork change can open an end (a deny rule of someone else's object, a
    /// ClusterBaseline guardrail).
    pub cannot: Vec<String>,
    /// The flows of AppNetworks that declare this connection.
    pub declared_by: Vec<String>,
}

fn resolve(
    built: &mut Built,
    who: &Who,
    what: &'static str,
) -> Result<(Endpoint, PodEnd), WhyError> {
    match who {
        Who::Pod { namespace, name } => {
            let i = built
                .scenario
                .pods()
                .iter()
                .position(|p| &p.namespace == namespace && &p.name == name)
                .ok_or_else(|| WhyError::NoSuchPod {
                    what,
                    namespace: namespace.clone(),
                    name: name.clone(),
                })?;
            let labels = built.scenario.pods()[i].labels.clone();
            Ok((
                Endpoint::Pod(i),
                PodEnd {
                    namespace: namespace.clone(),
                    labels,
                    name: Some(name.clone()),
                },
            ))
        }
        Who::Labels { namespace, labels } => {
            // A real pod with exactly these labels stands for itself.
            let existing = built
                .scenario
                .pods()
                .iter()
                .position(|p| &p.namespace == namespace && &p.labels == labels);
            let ep = match existing {
                Some(i) => Endpoint::Pod(i),
                None => built.pod(namespace, labels, false),
            };
            Ok((
                ep,
                PodEnd {
                    namespace: namespace.clone(),
                    labels: labels.clone(),
                    name: None,
                },
            ))
        }
    }
}

fn selector_of(labels: &Labels) -> Option<LabelSelector> {
    serde_json::from_value(serde_json::json!({ "matchLabels": labels })).ok()
}

/// The peer for `other` as seen from an AppNetwork in `ns` whose tiers are `model`'s.
fn peer_spec(ns: &str, model: Option<&AppModel>, other: &PodEnd) -> PeerSpec {
    if other.namespace == ns {
        if let Some(t) =
            model.and_then(|m| m.tiers.iter().find(|t| t.selector.matches(&other.labels)))
        {
            return PeerSpec {
                tier: Some(t.name.clone()),
                ..PeerSpec::default()
            };
        }
        return PeerSpec {
            selector: selector_of(&other.labels),
            ..PeerSpec::default()
        };
    }
    PeerSpec {
        namespace: Some(other.namespace.clone()),
        selector: (!other.labels.is_empty())
            .then(|| selector_of(&other.labels))
            .flatten(),
        ..PeerSpec::default()
    }
}

fn tier_name(labels: &Labels) -> String {
    let v = ["app", "app.kubernetes.io/name", "name", "k8s-app"]
        .iter()
        .find_map(|k| labels.get(*k))
        .or_else(|| labels.values().next())
        .cloned()
        .unwrap_or_else(|| "pods".to_string());
    let clean: String = v
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(50)
        .collect();
    let clean = clean.trim_matches('-').to_string();
    if clean.is_empty() {
        "pods".to_string()
    } else {
        clean
    }
}

/// The change at one end (`at` is the pod whose end denies, `other` the far end).
fn change_at(
    built: &Built,
    direction: Direction,
    at: &PodEnd,
    other: &PodEnd,
    port: u16,
    protocol: Protocol,
) -> Suggestion {
    let models: Vec<&AppModel> = built.models_in(&at.namespace).collect();
    let selecting = models.iter().find_map(|m| {
        m.tiers
            .iter()
            .find(|t| t.selector.matches(&at.labels))
            .map(|t| (*m, t.name.clone()))
    });
    let (model, tier_name_, new_tier) = match selecting {
        Some((m, t)) => (Some(m), t, None),
        None => {
            let name = tier_name(&at.labels);
            let tier = TierSpec {
                name: name.clone(),
                selector: selector_of(&at.labels).unwrap_or_default(),
                ports: if direction == Direction::Ingress {
                    vec![PortSpec::of(port, protocol)]
                } else {
                    Vec::new()
                },
            };
            (models.first().copied(), name, Some(tier))
        }
    };
    let me = PeerSpec {
        tier: Some(tier_name_),
        ..PeerSpec::default()
    };
    let them = peer_spec(&at.namespace, model, other);
    let (from, to) = match direction {
        Direction::Ingress => (them, me),
        Direction::Egress => (me, them),
    };
    Suggestion {
        direction,
        namespace: at.namespace.clone(),
        app_network: model.map(|m| m.name.clone()),
        tier: new_tier,
        flow: FlowSpec {
            from,
            to,
            ports: Some(vec![PortSpec::of(port, protocol)]),
            http: None,
        },
        verified: false,
    }
}

/// Applies a suggestion to the world's inputs.
fn applied(world: &World, s: &Suggestion) -> World {
    let mut w = world.clone();
    let app = match &s.app_network {
        Some(name) => w
            .apps
            .iter_mut()
            .find(|a| a.namespace == s.namespace && &a.name == name),
        None => None,
    };
    let app = match app {
        Some(a) => a,
        None => {
            let Ok(spec) =
                serde_json::from_value::<AppNetworkSpec>(serde_json::json!({"tiers": []}))
            else {
                return w;
            };
            w.apps.push(AppInput {
                name: NEW_APP_NETWORK.to_string(),
                namespace: s.namespace.clone(),
                uid: None,
                generation: None,
                spec,
            });
            let Some(a) = w.apps.last_mut() else {
                return w;
            };
            a
        }
    };
    if let Some(t) = &s.tier {
        app.spec.tiers.push(t.clone());
    }
    app.spec.flows.push(s.flow.clone());
    w
}

/// Which objects and rules decide the connection from `from` to `to` on `port`, and, when it is
/// denied, the smallest AppNetwork change at each denying end (each checked by simulating the
/// world with it).
pub fn why(
    world: &World,
    from: &Who,
    to: &Who,
    port: u16,
    protocol: Protocol,
) -> Result<Why, WhyError> {
    let mut built = world.build()?;
    let (a, from_end) = resolve(&mut built, from, "--from")?;
    let (b, to_end) = resolve(&mut built, to, "--to")?;
    let decision = built
        .scenario
        .decide(a, b, port, protocol)
        .ok_or(WhyError::Unresolved)?;
    let mut rendered_from = BTreeMap::new();
    for s in &decision.steps {
        let inputs = built.inputs_of(&s.policy);
        if !inputs.is_empty() {
            rendered_from.insert(kind_text(&s.policy), inputs);
        }
    }
    let declared_by = declared_by(&built, &from_end, &to_end, port, protocol);
    let mut out = Why {
        from: from_end.clone(),
        to: to_end.clone(),
        port,
        protocol: protocol.as_str().to_string(),
        allowed: decision.allowed(),
        decision: decision.clone(),
        rendered_from,
        suggestions: Vec::new(),
        cannot: Vec::new(),
        declared_by,
    };
    for (direction, outcome, at, other) in [
        (Direction::Egress, decision.egress, &from_end, &to_end),
        (Direction::Ingress, decision.ingress, &to_end, &from_end),
    ] {
        if outcome != Some(false) {
            continue;
        }
        let denies: Vec<&Step> = decision
            .at(direction)
            .filter(|s| s.rule.effect == Effect::Deny)
            .collect();
        if !denies.is_empty() {
            for s in denies {
                let rule = s.rule.field.as_deref().unwrap_or("a rule");
                out.cannot.push(if s.policy.managed {
                    let inputs = built.inputs_of(&s.policy);
                    format!(
                        "{rule} of {} denies it; it is tierflow's{}, so the change belongs there (an AppNetwork cannot override it)",
                        kind_text(&s.policy),
                        if inputs.is_empty() { String::new() } else { format!(", from {}", inputs.join(" and ")) }
                    )
                } else {
                    format!(
                        "{rule} of {} denies it; it is not tierflow's, so no AppNetwork change allows it",
                        kind_text(&s.policy)
                    )
                });
            }
            continue;
        }
        let mut s = change_at(&built, direction, at, other, port, protocol);
        let changed = applied(world, &s);
        if let Ok(mut again) = changed.build() {
            let a2 = resolve(&mut again, from, "--from").map(|x| x.0);
            let b2 = resolve(&mut again, to, "--to").map(|x| x.0);
            if let (Ok(a2), Ok(b2)) = (a2, b2) {
                if let Some(d) = again.scenario.decide(a2, b2, port, protocol) {
                    s.verified = match direction {
                        Direction::Egress => d.egress != Some(false),
                        Direction::Ingress => d.ingress != Some(false),
                    };
                }
            }
        }
        out.suggestions.push(s);
    }
    Ok(out)
}

/// `AppNetwork ns/name spec.flows[i]` for every flow whose ends hold both pods on the port.
fn declared_by(
    built: &Built,
    from: &PodEnd,
    to: &PodEnd,
    port: u16,
    protocol: Protocol,
) -> Vec<String> {
    let holds = |m: &AppModel, peer: &Peer, p: &PodEnd| match peer {
        Peer::Tier(t) => {
            p.namespace == m.namespace
                && m.tiers
                    .get(*t)
                    .is_some_and(|t| t.selector.matches(&p.labels))
        }
        Peer::Pods { namespaces, pods } => {
            let ns_ok = match namespaces {
                NamespaceMatch::Own => p.namespace == m.namespace,
                NamespaceMatch::Named(n) => &p.namespace == n,
                NamespaceMatch::Selector(s) => built
                    .scenario
                    .namespace_labels(&p.namespace)
                    .is_some_and(|l| s.matches(l)),
                NamespaceMatch::All => true,
            };
            ns_ok && pods.as_ref().is_none_or(|s| s.matches(&p.labels))
        }
        _ => false,
    };
    let mut out = Vec::new();
    for (ns, app) in built.plan.apps() {
        let Some(m) = &app.model else { continue };
        for f in &m.flows {
            let port_ok = f.ports.iter().any(|p| {
                p.contains(port, protocol)
                    || built.number(p) == Some(port) && p.protocol == protocol
            });
            if port_ok && holds(m, &f.from, from) && holds(m, &f.to, to) {
                out.push(format!(
                    "AppNetwork {ns}/{} spec.flows[{}]",
                    app.name, f.index
                ));
            }
        }
    }
    out
}

impl Why {
    /// The report as text.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} -> {} on {}/{}: {}\n",
            self.from,
            self.to,
            self.port,
            self.protocol,
            if self.allowed { "ALLOWED" } else { "DENIED" }
        );
        for (direction, outcome, at) in [
            (Direction::Egress, self.decision.egress, &self.from),
            (Direction::Ingress, self.decision.ingress, &self.to),
        ] {
            let name = match direction {
                Direction::Egress => "egress",
                Direction::Ingress => "ingress",
            };
            match outcome {
                None => out.push_str(&format!("  {name}: not a pod, no policy applies\n")),
                Some(allowed) => {
                    let steps: Vec<&Step> = self.decision.at(direction).collect();
                    let verdict = if allowed { "allowed" } else { "denied" };
                    if steps.is_empty() {
                        out.push_str(&format!(
                            "  {name} of {at}: {verdict}, no policy selects the pod for {name}\n"
                        ));
                        continue;
                    }
                    out.push_str(&format!("  {name} of {at}: {verdict}\n"));
                    for (i, s) in steps.iter().enumerate() {
                        let what = match (s.rule.effect, &s.rule.field) {
                            (Effect::Allow, Some(f)) => format!("{f} allows"),
                            (Effect::Pass, Some(f)) => format!("{f} passes it on (Pass)"),
                            (Effect::Deny, Some(f)) => format!("{f} denies"),
                            (Effect::DefaultDeny, _) => {
                                "selects the pod and allows nothing that matches: default deny"
                                    .to_string()
                            }
                            (_, None) => "decides".to_string(),
                        };
                        let key = kind_text(&s.policy);
                        let whose = match self.rendered_from.get(&key) {
                            Some(inputs) => format!("tierflow's, from {}", inputs.join(" and ")),
                            None if s.policy.managed => "tierflow's".to_string(),
                            None => "not tierflow's".to_string(),
                        };
                        out.push_str(&format!("    {}. {key} ({whose}): {what}\n", i + 1));
                    }
                }
            }
        }
        if self.declared_by.is_empty() {
            out.push_str("  declared by no AppNetwork flow\n");
        } else {
            out.push_str(&format!("  declared by {}\n", self.declared_by.join(", ")));
        }
        for c in &self.cannot {
            out.push_str(&format!("  cannot be fixed in an AppNetwork: {c}\n"));
        }
        for s in &self.suggestions {
            let end = match s.direction {
                Direction::Egress => "egress",
                Direction::Ingress => "ingress",
            };
            out.push_str(&format!(
                "  to allow it at {end}{}, {}",
                if s.verified {
                    ""
                } else {
                    " (NOT confirmed by the simulation)"
                },
                s.to_text()
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Backend;

    #[test]
    fn an_endpoint_reads_as_a_pod_or_labels_and_refuses_what_is_ambiguous() {
        assert!(matches!(Who::parse("pay/worker-0"), Ok(Who::Pod { .. })));
        assert!(matches!(
            Who::parse("pay/app=worker"),
            Ok(Who::Labels { .. })
        ));
        for (text, reason) in [
            ("worker-0", "InvalidEndpoint"),
            ("Pay/worker-0", "InvalidEndpoint"),
            ("pay/app=worker,app=x", "InvalidLabels"),
            ("pay/app=worker,tier", "InvalidLabels"),
        ] {
            let e = Who::parse(text).expect_err(text);
            assert_eq!(e.reason(), reason, "{text}: {e}");
        }
    }

    const PAY: &str = "
baseline: {denyIngress: true, denyEgress: true}
tiers:
  - {name: worker, selector: {matchLabels: {app: worker}}}
flows:
  - from: {tier: worker}
    to: {namespace: ledger, selector: {matchLabels: {app: ledger-api}}}
    ports: [{port: 8080}]
";

    const LEDGER: &str = "
baseline: {denyIngress: true}
tiers:
  - {name: api, selector: {matchLabels: {app: ledger-api, tier: api}}, ports: [{port: 8080}]}
flows:
  - {from: {tier: api}, to: {tier: api}}
";

    const LEDGER_FIXED: &str = "
baseline: {denyIngress: true}
tiers:
  - {name: api, selector: {matchLabels: {app: ledger-api, tier: api}}, ports: [{port: 8080}]}
flows:
  - {from: {tier: api}, to: {tier: api}}
  - from: {namespace: pay, selector: {matchLabels: {app: worker}}}
    to: {tier: api}
";

    fn app(ns: &str, name: &str, spec: &str) -> AppInput {
        AppInput {
            name: name.into(),
            namespace: ns.into(),
            uid: None,
            generation: None,
            spec: serde_yaml::from_str(spec).unwrap(),
        }
    }

    fn world(apps: Vec<AppInput>, cbs: &[(&str, &str)], backend: Option<Backend>) -> World {
        let namespaces = ["pay", "ledger", "kube-system"]
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    Labels::from([("kubernetes.io/metadata.name".to_string(), n.to_string())]),
                )
            })
            .collect();
        World {
            apps,
            cluster_baselines: cbs
                .iter()
                .map(|(name, spec)| ClusterBaselineInput {
                    name: name.to_string(),
                    uid: None,
                    generation: None,
                    spec: serde_yaml::from_str(spec).unwrap(),
                })
                .collect(),
            namespaces,
            cluster: Cluster {
                forced_backend: backend,
                operator_namespace: "tierflow-system".into(),
                ..Cluster::default()
            },
            others: Vec::new(),
        }
    }

    #[test]
    fn a_flow_the_destination_namespace_denies_is_reported_with_the_blocking_object() {
        for backend in [Backend::NetworkPolicy, Backend::Calico, Backend::Cilium] {
            let w = world(
                vec![app("pay", "pay", PAY), app("ledger", "ledger", LEDGER)],
                &[],
                Some(backend),
            );
            let r = check(&w, None).unwrap();
            assert_eq!(r.blocked.len(), 1, "{backend:?}: {r}");
            let b = &r.blocked[0];
            assert_eq!((b.app_network.as_str(), b.flow), ("pay/pay", 0));
            // The destination is the pod that is both the peer and ledger's api tier.
            assert_eq!(b.to.labels.get("tier").map(String::as_str), Some("api"));
            assert!(b
                .blocked_by
                .iter()
                .all(|x| x.direction == Direction::Ingress));
            assert!(
                b.blocked_by
                    .iter()
                    .all(|x| x.object.managed && x.object.namespace.as_deref() == Some("ledger")),
                "{backend:?}: {}",
                b.describe()
            );
            assert!(
                b.blocked_by.iter().any(|x| x
                    .from_inputs
                    .contains(&"AppNetwork ledger/ledger".to_string())),
                "{}",
                b.describe()
            );
            assert!(
                b.describe()
                    .contains("no policy allows it: default deny of"),
                "{}",
                b.describe()
            );
        }
    }

    #[test]
    fn adding_the_matching_ingress_flow_on_the_other_side_clears_it() {
        for backend in [Backend::NetworkPolicy, Backend::Calico, Backend::Cilium] {
            let w = world(
                vec![
                    app("pay", "pay", PAY),
                    app("ledger", "ledger", LEDGER_FIXED),
                ],
                &[],
                Some(backend),
            );
            let r = check(&w, None).unwrap();
            assert!(r.passed(), "{backend:?}: {r}");
            assert!(r.flows >= 3 && r.connections >= 3, "{r:?}");
        }
    }

    #[test]
    fn a_cluster_baseline_deny_all_in_the_destination_namespace_blocks_the_flow() {
        for backend in [
            Backend::NetworkPolicy,
            Backend::ClusterNetworkPolicy,
            Backend::Calico,
            Backend::Cilium,
        ] {
            let w = world(
                vec![app("pay", "pay", PAY)],
                &[("default", "{}")],
                Some(backend),
            );
            let r = check(&w, None).unwrap();
            assert_eq!(r.blocked.len(), 1, "{backend:?}: {r}");
            let b = &r.blocked[0];
            // No AppNetwork in ledger: a pod with the peer's labels alone.
            assert_eq!(
                b.to.labels,
                Labels::from([("app".to_string(), "ledger-api".to_string())])
            );
            assert!(
                b.blocked_by
                    .iter()
                    .any(|x| x.from_inputs == ["ClusterBaseline default".to_string()]),
                "{backend:?}: {}",
                b.describe()
            );
        }
    }

    #[test]
    fn a_users_own_deny_is_named_as_not_tierflows() {
        let mut w = world(
            vec![
                app("pay", "pay", PAY),
                app("ledger", "ledger", LEDGER_FIXED),
            ],
            &[],
            Some(Backend::Calico),
        );
        w.others.push(serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "no-pay", "namespace": "ledger"},
            "spec": {"order": 1, "selector": "all()", "types": ["Ingress"],
                     "ingress": [{"action": "Deny", "source": {"namespaceSelector": "kubernetes.io/metadata.name == 'pay'"}}]}
        }));
        let r = check(&w, None).unwrap();
        // Both ends declare the connection, and both are told.
        let declared: Vec<(&str, usize)> = r
            .blocked
            .iter()
            .map(|b| (b.app_network.as_str(), b.flow))
            .collect();
        assert_eq!(declared, [("ledger/ledger", 1), ("pay/pay", 0)], "{r}");
        let text = r.blocked[0].describe();
        assert!(
            text.contains("denied by rule spec.ingress[0] of projectcalico.org/v3 NetworkPolicy ledger/no-pay (not tierflow's)"),
            "{text}"
        );
    }

    #[test]
    fn why_names_both_ends_and_suggests_the_flow_to_add_on_the_denying_side() {
        let w = world(
            vec![app("pay", "pay", PAY), app("ledger", "ledger", LEDGER)],
            &[],
            Some(Backend::NetworkPolicy),
        );
        let from = Who::parse("pay/app=worker").unwrap();
        let to = Who::parse("ledger/app=ledger-api,tier=api").unwrap();
        let y = why(&w, &from, &to, 8080, Protocol::Tcp).unwrap();
        assert!(!y.allowed);
        assert_eq!(
            (y.decision.egress, y.decision.ingress),
            (Some(true), Some(false))
        );
        assert_eq!(y.declared_by, ["AppNetwork pay/pay spec.flows[0]"]);
        assert_eq!(y.suggestions.len(), 1, "{}", y.to_text());
        let s = &y.suggestions[0];
        assert_eq!(
            (s.namespace.as_str(), s.app_network.as_deref()),
            ("ledger", Some("ledger"))
        );
        assert!(s.verified, "{}", y.to_text());
        assert_eq!(s.flow.to.tier.as_deref(), Some("api"));
        assert_eq!(s.flow.from.namespace.as_deref(), Some("pay"));
        let text = y.to_text();
        assert!(
            text.contains("add to AppNetwork ledger/ledger spec.flows:"),
            "{text}"
        );
    }

    #[test]
    fn why_suggests_both_ends_when_both_deny() {
        // pay declares nothing towards ledger: its egress denies too.
        let pay = "
baseline: {denyIngress: true, denyEgress: true}
tiers:
  - {name: worker, selector: {matchLabels: {app: worker}}}
";
        let w = world(
            vec![app("pay", "pay", pay), app("ledger", "ledger", LEDGER)],
            &[],
            Some(Backend::NetworkPolicy),
        );
        let y = why(
            &w,
            &Who::parse("pay/app=worker").unwrap(),
            &Who::parse("ledger/app=ledger-api,tier=api").unwrap(),
            8080,
            Protocol::Tcp,
        )
        .unwrap();
        let ends: Vec<Direction> = y.suggestions.iter().map(|s| s.direction).collect();
        assert_eq!(
            ends,
            [Direction::Egress, Direction::Ingress],
            "{}",
            y.to_text()
        );
        assert!(y.suggestions.iter().all(|s| s.verified), "{}", y.to_text());
    }

    #[test]
    fn why_on_a_namespace_only_a_cluster_baseline_covers_suggests_a_new_app_network() {
        let w = world(
            vec![app("pay", "pay", PAY)],
            &[("default", "{}")],
            Some(Backend::NetworkPolicy),
        );
        let y = why(
            &w,
            &Who::parse("pay/app=worker").unwrap(),
            &Who::parse("ledger/app=ledger-api").unwrap(),
            8080,
            Protocol::Tcp,
        )
        .unwrap();
        assert_eq!(y.suggestions.len(), 1, "{}", y.to_text());
        let s = &y.suggestions[0];
        assert_eq!(s.app_network, None);
        assert!(s.tier.is_some() && s.verified, "{}", y.to_text());
    }

    #[test]
    fn why_on_calico_lists_the_rules_in_order_and_an_explicit_deny_cannot_be_fixed_in_an_app_network(
    ) {
        let mut w = world(
            vec![
                app("pay", "pay", PAY),
                app("ledger", "ledger", LEDGER_FIXED),
            ],
            &[],
            Some(Backend::Calico),
        );
        w.others.push(serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "no-pay", "namespace": "ledger"},
            "spec": {"order": 1, "selector": "all()", "types": ["Ingress"],
                     "ingress": [{"action": "Deny", "source": {"namespaceSelector": "kubernetes.io/metadata.name == 'pay'"}}]}
        }));
        let y = why(
            &w,
            &Who::parse("pay/app=worker").unwrap(),
            &Who::parse("ledger/app=ledger-api,tier=api").unwrap(),
            8080,
            Protocol::Tcp,
        )
        .unwrap();
        assert!(!y.allowed);
        let ingress: Vec<(String, Effect)> = y
            .decision
            .at(Direction::Ingress)
            .map(|s| (s.policy.name.clone(), s.rule.effect))
            .collect();
        assert_eq!(ingress, [("no-pay".to_string(), Effect::Deny)]);
        assert!(y.suggestions.is_empty(), "{}", y.to_text());
        assert_eq!(y.cannot.len(), 1);
        assert!(
            y.cannot[0].contains("not tierflow's, so no AppNetwork change allows it"),
            "{}",
            y.cannot[0]
        );
        assert_eq!(
            y.declared_by,
            [
                "AppNetwork ledger/ledger spec.flows[1]",
                "AppNetwork pay/pay spec.flows[0]"
            ]
        );
    }

    #[test]
    fn endpoints_parse_as_pod_names_or_labels() {
        assert_eq!(
            Who::parse("pay/worker-0").unwrap(),
            Who::Pod {
                namespace: "pay".into(),
                name: "worker-0".into()
            }
        );
        assert_eq!(
            Who::parse("pay/app=worker,tier=x").unwrap(),
            Who::Labels {
                namespace: "pay".into(),
                labels: Labels::from([
                    ("app".into(), "worker".into()),
                    ("tier".into(), "x".into())
                ])
            }
        );
        assert!(Who::parse("worker").is_err());
        assert!(Who::parse("Pay/x").is_err());
    }
}
