//! The semantic diff of two versions of the intent (`tierflow diff`): which connections a
//! change allows and which it denies, on every backend, and which namespaces the
//! ClusterBaselines start or stop covering.
//!
//! Nothing here compares YAML. For every AppNetwork of either version:
//!
//! 1. The representatives ([`crate::verify::endpoints::representatives`]) are built ONCE for
//!    both versions together: from a model holding the new version's tiers and flows, then
//!    the old version's (and the old DNS target when it differs), so that a tier or a peer
//!    that exists in only one version still has its pod or address, and both versions are
//!    simulated on the same endpoints.
//! 2. For each backend, each version is planned WHOLE with [`crate::plan::plan`] (every
//!    AppNetwork and ClusterBaseline of that version, over the namespaces of the input and
//!    those the representatives live in), and everything rendered is read into the engine
//!    with the representatives. A ClusterBaseline that changes what a namespace's pods may do
//!    therefore shows in the AppNetworks of that namespace.
//! 3. Every connection (source, destination, probe port) the backend lets the engine decide
//!    offline is compared. A connection that becomes allowed is tied to the new version's
//!    flows that declare it (`spec.flows[i]`), one that becomes denied to the old version's.
//!
//! Namespaces of the input that hold no AppNetwork in either version get one probe pod each,
//! and their connections to a pod of an uncovered namespace, to DNS and to an address outside
//! the cluster are compared the same way (what a ClusterBaseline alone decides). Coverage is
//! compared per ClusterBaseline and namespace ([`crate::model::ClusterBaselineModel::coverage`]).
//!
//! Reordered flows or keys, renamed YAML keys and equivalent selectors render and simulate the
//! same, so they give an empty diff.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::core::{Cidr, Port};
use crate::engine::{Endpoint, EngineError, Pod, PolicyRef, Scenario, Verdict};
use crate::model::{AppModel, Backend, ClusterBaselineModel, Coverage, Flow, NamespaceMatch, Peer};
use crate::plan::{self, AppInput, ClusterBaselineInput, Labels};
use crate::render::Env;
use crate::validate;
use crate::verify::endpoints::{assumed_cluster, representatives, Options, Place, Representatives};
use crate::verify::intent::{checkable, declared_by, probe_number, probe_ports};
use crate::verify::reach::probe_numbers;
use crate::vocab::NAMESPACE_NAME_LABEL;

/// One version of the input, as the planner takes it.
#[derive(Clone, Copy, Debug)]
pub struct Side<'a> {
    /// Its AppNetworks (specs valid: the caller validated them, with file and field).
    pub apps: &'a [AppInput],
    /// Its ClusterBaselines.
    pub cluster_baselines: &'a [ClusterBaselineInput],
    /// The namespaces it knows, with their labels (`kubernetes.io/metadata.name` included).
    pub namespaces: &'a BTreeMap<String, Labels>,
}

/// How to compare.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The operator's namespace (never covered by a ClusterBaseline unless it says so).
    pub operator_namespace: String,
    /// The cluster's pod and service ranges (`--cluster-cidr`; empty: made-up ones).
    pub cluster_cidrs: Vec<Cidr>,
    /// Labels every namespace is assumed to carry (`--namespace-labels k=v`), also given to
    /// the namespaces the representatives make up.
    pub default_labels: Labels,
}

/// What happened to an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only in the new version.
    Added,
    /// Only in the old version.
    Removed,
    /// In both, and what it does differs.
    Changed,
}

impl Change {
    /// The word for people.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        }
    }
}

/// One connection whose outcome differs between the versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Source representative.
    pub from: String,
    /// Destination representative.
    pub to: String,
    /// Destination port.
    pub port: u16,
    /// Its protocol.
    pub protocol: String,
    /// What the new version does (the old one does the opposite).
    pub allowed: bool,
    /// The flows (indices into `spec.flows`) that cause it: of the new version for a
    /// connection that becomes allowed, of the old version for one that becomes denied. Empty
    /// when no flow declares it (DNS, a baseline, a ClusterBaseline).
    pub flows: Vec<usize>,
    /// Why, in words (for people; [`flows`](Self::flows) and
    /// [`decided_by`](Self::decided_by) are the data).
    pub cause: String,
    /// The policies that decide the connection in the new version (see
    /// [`Verdict::policies`]).
    pub decided_by: Vec<PolicyRef>,
}

impl Connection {
    /// `from -> to on port/PROTO`.
    pub fn describe(&self) -> String {
        format!(
            "{} -> {} on {}/{}",
            self.from, self.to, self.port, self.protocol
        )
    }
}

/// The connections one backend's rendering changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendDiff {
    /// The backend.
    #[serde(serialize_with = "backend_name")]
    pub backend: Backend,
    /// Connections the new version allows and the old one denied.
    pub allowed: Vec<Connection>,
    /// Connections the new version denies and the old one allowed.
    pub denied: Vec<Connection>,
    /// What was not compared, and why (a held input, what the backend cannot express).
    pub notes: Vec<String>,
    /// Connections allowed in both versions that a flow of the version shown (the new one,
    /// or the old one for a removed AppNetwork) declares: the context of a diagram.
    #[serde(skip)]
    pub kept: Vec<Connection>,
}

impl BackendDiff {
    /// Whether nothing changes on this backend.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty() && self.denied.is_empty()
    }
}

fn backend_name<S: serde::Serializer>(b: &Backend, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(b.as_str())
}

/// A representative of a diff, for legends and diagrams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointInfo {
    /// Its name in [`Connection::from`] / [`Connection::to`].
    pub name: String,
    /// What it stands for.
    pub about: String,
    /// Its namespace, for a pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Whether it is a pod of one of the AppNetwork's tiers (in either version).
    pub tier: bool,
}

/// What changes for one AppNetwork.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDiff {
    /// `namespace/name`.
    pub app_network: String,
    /// Added, removed, or changed (only listed when something it decides changes).
    pub change: Change,
    /// The backend the AppNetwork resolves to offline (`spec.backend`, `Auto` meaning
    /// NetworkPolicy): the one its diagram shows.
    #[serde(serialize_with = "backend_name")]
    pub backend: Backend,
    /// Per backend, what changes.
    pub backends: Vec<BackendDiff>,
    /// The representatives.
    pub endpoints: Vec<EndpointInfo>,
    /// What could not be represented.
    pub notes: Vec<String>,
    /// The old version's validated model.
    #[serde(skip)]
    pub old: Option<AppModel>,
    /// The new version's validated model.
    #[serde(skip)]
    pub new: Option<AppModel>,
}

impl AppDiff {
    /// Whether no backend changes anything.
    pub fn unchanged(&self) -> bool {
        self.backends.iter().all(BackendDiff::is_empty)
    }

    /// The changes of the backend the diagram shows.
    pub fn shown(&self) -> Option<&BackendDiff> {
        self.backends
            .iter()
            .find(|b| b.backend == self.backend)
            .or_else(|| self.backends.first())
    }
}

/// A ClusterBaseline added, removed or changed (its validated model differs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBaselineChange {
    /// Its name.
    pub name: String,
    /// What happened.
    pub change: Change,
}

/// A namespace whose relation to a ClusterBaseline changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CoverageChange {
    /// The ClusterBaseline.
    pub cluster_baseline: String,
    /// The namespace.
    pub namespace: String,
    /// Before: `covered`, `not selected`, `excluded`, `system`, `opted out`, or `absent`
    /// (the ClusterBaseline or the namespace is not in that version).
    pub before: String,
    /// After, in the same words.
    pub after: String,
}

/// What a namespace's merged baseline denies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineState {
    /// Ingress to every pod.
    pub deny_ingress: bool,
    /// Egress from every pod (DNS excepted, as asked).
    pub deny_egress: bool,
}

impl BaselineState {
    /// `deny ingress and egress`, `deny ingress`, `deny egress` or `none`.
    pub fn describe(self) -> &'static str {
        match (self.deny_ingress, self.deny_egress) {
            (true, true) => "deny ingress and egress",
            (true, false) => "deny ingress",
            (false, true) => "deny egress",
            (false, false) => "none",
        }
    }
}

/// A namespace whose merged baseline changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineChange {
    /// The namespace.
    pub namespace: String,
    /// Before.
    pub before: BaselineState,
    /// After.
    pub after: BaselineState,
}

/// Everything that changes between two versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    /// AppNetworks added, removed, or whose connections change.
    pub app_networks: Vec<AppDiff>,
    /// ClusterBaselines added, removed or changed.
    pub cluster_baselines: Vec<ClusterBaselineChange>,
    /// Namespaces a ClusterBaseline starts or stops covering.
    pub coverage: Vec<CoverageChange>,
    /// Namespaces whose merged enforced baseline (every AppNetwork in it and every
    /// ClusterBaseline covering it, but those in `mode: Audit`) denies something else.
    pub baselines: Vec<BaselineChange>,
    /// Per backend, connections of the namespaces without AppNetworks that change (what the
    /// ClusterBaselines alone decide).
    pub namespaces: Vec<BackendDiff>,
    /// What was not compared, and why.
    pub notes: Vec<String>,
}

impl Diff {
    /// Whether the versions are semantically equal.
    pub fn is_empty(&self) -> bool {
        self.app_networks.is_empty()
            && self.cluster_baselines.is_empty()
            && self.coverage.is_empty()
            && self.baselines.is_empty()
            && self.namespaces.iter().all(BackendDiff::is_empty)
    }
}

/// Why a diff could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The engine could not read what a version renders to (a renderer bug).
    #[error("the engine cannot read what {what} renders to on {backend}: {source}")]
    Engine {
        /// Which version and input.
        what: String,
        /// The backend.
        backend: &'static str,
        /// The engine's error.
        source: EngineError,
    },
    /// An input of the caller's is invalid (the caller validates first; this is a fallback).
    #[error("{what}: {message}")]
    Invalid {
        /// Which input.
        what: String,
        /// The validator's message.
        message: String,
    },
}

impl DiffError {
    /// A bounded label for the error.
    pub fn reason(&self) -> &'static str {
        match self {
            DiffError::Engine { .. } => "Engine",
            DiffError::Invalid { .. } => "InvalidSpec",
        }
    }
}

/// The backends an AppNetwork is compared on: every backend with its own AppNetwork objects,
/// and ClusterNetworkPolicy too when a ClusterBaseline is in either version (its AppNetworks
/// are standard NetworkPolicy there, its ClusterBaselines one ClusterNetworkPolicy).
fn backends(with_cluster_baselines: bool) -> Vec<Backend> {
    let mut out = vec![Backend::NetworkPolicy, Backend::Calico, Backend::Cilium];
    if with_cluster_baselines {
        out.push(Backend::ClusterNetworkPolicy);
    }
    out
}

fn models(side: &Side<'_>) -> Result<BTreeMap<String, AppModel>, DiffError> {
    side.apps
        .iter()
        .map(|a| {
            let key = format!("{}/{}", a.namespace, a.name);
            validate::app_network(&a.name, &a.namespace, &a.spec)
                .map(|m| (key.clone(), m))
                .map_err(|e| DiffError::Invalid {
                    what: format!("AppNetwork {key}"),
                    message: e.to_string(),
                })
        })
        .collect()
}

fn cluster_models(side: &Side<'_>) -> Result<BTreeMap<String, ClusterBaselineModel>, DiffError> {
    side.cluster_baselines
        .iter()
        .map(|c| {
            validate::cluster_baseline(&c.spec)
                .map(|m| (c.name.clone(), m))
                .map_err(|e| DiffError::Invalid {
                    what: format!("ClusterBaseline {}", c.name),
                    message: e.to_string(),
                })
        })
        .collect()
}

/// One model holding both versions' tiers and flows (new first), so that the representatives
/// cover both. Only for building representatives: it is never rendered.
fn both(old: Option<&AppModel>, new: Option<&AppModel>) -> Option<AppModel> {
    let (base, extra) = match (new, old) {
        (Some(n), o) => (n, o),
        (None, Some(o)) => (o, None),
        (None, None) => return None,
    };
    let mut m = base.clone();
    let Some(o) = extra else { return Some(m) };
    let offset = m.tiers.len();
    m.tiers.extend(o.tiers.iter().cloned());
    let shift = |p: &Peer| match p {
        Peer::Tier(i) => Peer::Tier(i + offset),
        p => p.clone(),
    };
    let mut next = m.flows.len();
    for f in &o.flows {
        m.flows.push(Flow {
            index: next,
            from: shift(&f.from),
            to: shift(&f.to),
            ports: f.ports.clone(),
            http: f.http.clone(),
        });
        next += 1;
    }
    match (&m.dns, &o.dns) {
        (None, Some(d)) => m.dns = Some(d.clone()),
        (Some(now), Some(d)) if now != d => m.flows.push(Flow {
            index: next,
            from: Peer::Tier(0),
            to: Peer::Pods {
                namespaces: NamespaceMatch::Named(d.namespace.clone()),
                pods: Some(d.pods.clone()),
            },
            ports: crate::core::port::DNS_PORTS.to_vec(),
            http: Vec::new(),
        }),
        _ => {}
    }
    Some(m)
}

/// The representatives with one version's namespace labels: the known namespaces' own, the
/// default labels for those made up.
fn labelled(
    reps: &Representatives,
    known: &BTreeMap<String, Labels>,
    settings: &Settings,
) -> Representatives {
    let mut out = reps.clone();
    for (ns, labels) in out.namespaces.iter_mut() {
        match known.get(ns) {
            Some(k) => labels.extend(k.clone()),
            None => {
                for (k, v) in &settings.default_labels {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    out
}

struct Planned {
    objects: Vec<serde_json::Value>,
    notes: Vec<String>,
}

/// Plans already made, by version, backend, and what varies between AppNetworks: the
/// namespaces their representatives add and the made-up API server endpoint. AppNetworks whose
/// representatives add the same share one plan.
#[derive(Default)]
struct Plans(BTreeMap<(bool, Backend, String), Planned>);

impl Plans {
    #[allow(clippy::too_many_arguments)]
    fn get(
        &mut self,
        side: &Side<'_>,
        namespaces: &BTreeMap<String, Labels>,
        backend: Backend,
        env: &Env,
        settings: &Settings,
        version: &str,
    ) -> &Planned {
        let extra: BTreeMap<&String, &Labels> = namespaces
            .iter()
            .filter(|(n, _)| !side.namespaces.contains_key(*n))
            .collect();
        let key = (
            version == "new",
            backend,
            format!("{extra:?}|{:?}", env.api_server),
        );
        self.0
            .entry(key)
            .or_insert_with(|| plan_side(side, namespaces, backend, env, settings, version))
    }
}

/// The objects that can apply to pods of `namespaces`: theirs, and the cluster-scoped ones.
fn relevant(
    objects: &[serde_json::Value],
    namespaces: &BTreeMap<String, Labels>,
) -> Vec<serde_json::Value> {
    objects
        .iter()
        .filter(|o| {
            o.pointer("/metadata/namespace")
                .and_then(serde_json::Value::as_str)
                .is_none_or(|ns| namespaces.contains_key(ns))
        })
        .cloned()
        .collect()
}

/// Plans a whole version on `backend` over `namespaces`, returning every object rendered and
/// what was held or not expressed.
fn plan_side(
    side: &Side<'_>,
    namespaces: &BTreeMap<String, Labels>,
    backend: Backend,
    env: &Env,
    settings: &Settings,
    version: &str,
) -> Planned {
    let cluster = plan::Cluster {
        forced_backend: Some(backend),
        env: env.clone(),
        operator_namespace: settings.operator_namespace.clone(),
        cluster_cidrs: env.cluster_cidrs.clone(),
        cluster_cidrs_source: "--cluster-cidr".to_string(),
        ..plan::Cluster::default()
    };
    let p = plan::plan(
        side.apps,
        side.cluster_baselines,
        namespaces,
        &cluster,
        &plan::Nothing,
    );
    let mut notes = Vec::new();
    for (ns, app) in p.apps() {
        if let Some(h) = &app.hold {
            notes.push(format!(
                "{version} AppNetwork {ns}/{} is held on {} ({}: {}): nothing of it is written",
                app.name,
                backend.as_str(),
                h.reason.reason(),
                h.message
            ));
        }
    }
    for cb in &p.cluster_baselines {
        if let Some(h) = &cb.hold {
            notes.push(format!(
                "{version} ClusterBaseline {} is held on {} ({}: {}): nothing of it is written",
                cb.name,
                backend.as_str(),
                h.reason.reason(),
                h.message
            ));
        }
    }
    Planned {
        objects: p.objects.into_iter().map(|o| o.into_value()).collect(),
        notes,
    }
}

fn policies(v: &Verdict) -> Vec<PolicyRef> {
    v.policies().cloned().collect()
}

fn flow_list(flows: &[usize]) -> String {
    flows
        .iter()
        .map(|f| format!("spec.flows[{f}]"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn by_text(policies: &[PolicyRef]) -> String {
    if policies.is_empty() {
        "no policy".to_string()
    } else {
        policies
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Compares the two versions of one AppNetwork on `backend`.
#[allow(clippy::too_many_arguments)]
fn app_backend(
    key: &str,
    merged: &AppModel,
    reps: &Representatives,
    sides: (&Side<'_>, &Side<'_>),
    models: (Option<&AppModel>, Option<&AppModel>),
    backend: Backend,
    settings: &Settings,
    plans: &mut Plans,
) -> Result<BackendDiff, DiffError> {
    let (old_side, new_side) = sides;
    let (old_model, new_model) = models;
    let env = reps.env();
    let mut notes = Vec::new();
    let mut sims = Vec::with_capacity(2);
    for (side, version) in [(old_side, "old"), (new_side, "new")] {
        let r = labelled(reps, side.namespaces, settings);
        let mut namespaces = side.namespaces.clone();
        for (ns, labels) in &r.namespaces {
            namespaces
                .entry(ns.clone())
                .or_insert_with(|| labels.clone());
        }
        let planned = plans.get(side, &namespaces, backend, &env, settings, version);
        let mine = format!("AppNetwork {key} is held");
        notes.extend(planned.notes.iter().filter(|n| n.contains(&mine)).cloned());
        let sim = r
            .simulation(relevant(&planned.objects, &r.namespaces))
            .map_err(|source| DiffError::Engine {
                what: format!("the {version} version around AppNetwork {key}"),
                backend: backend.as_str(),
                source,
            })?;
        sims.push((r, sim));
    }
    let [(old_reps, old_sim), (new_reps, new_sim)] =
        <[_; 2]>::try_from(sims).map_err(|_| DiffError::Invalid {
            what: key.to_string(),
            message: "two versions expected".to_string(),
        })?;
    let ports = probe_ports(merged, reps, false);
    let numbers = probe_numbers(&ports);
    let api_as_address = !backend.capabilities().api_server_entity;
    let mut out = BackendDiff {
        backend,
        allowed: Vec::new(),
        denied: Vec::new(),
        notes,
        kept: Vec::new(),
    };
    for (i, from) in reps.endpoints.iter().enumerate() {
        for (j, to) in reps.endpoints.iter().enumerate() {
            if !checkable(from, to, api_as_address) {
                continue;
            }
            let (Some((oa, ob)), Some((na, nb))) = (old_sim.pair(i, j), new_sim.pair(i, j)) else {
                continue;
            };
            let before = old_sim.scenario.allows_each(oa, ob, &numbers);
            let after = new_sim.scenario.allows_each(na, nb, &numbers);
            for ((p, was), now) in ports.iter().zip(before).zip(after) {
                if was && now {
                    let (m, r) = match new_model {
                        Some(m) => (Some(m), &new_reps),
                        None => (old_model, &old_reps),
                    };
                    let flows = m.map_or(Vec::new(), |m| declared_by(m, r, from, to, *p).0);
                    if !flows.is_empty() {
                        out.kept.push(Connection {
                            from: from.name.clone(),
                            to: to.name.clone(),
                            port: probe_number(*p),
                            protocol: p.protocol.as_str().to_string(),
                            allowed: true,
                            cause: format!("declared by {}", flow_list(&flows)),
                            flows,
                            decided_by: Vec::new(),
                        });
                    }
                }
                if was == now {
                    continue;
                }
                let number = probe_number(*p);
                let verdict = new_sim.scenario.check(na, nb, number, p.protocol);
                let (model, r) = if now {
                    (new_model, &new_reps)
                } else {
                    (old_model, &old_reps)
                };
                let (flows, dns) =
                    model.map_or((Vec::new(), false), |m| declared_by(m, r, from, to, *p));
                let decided_by = policies(&verdict);
                let cause = match (now, flows.is_empty(), dns) {
                    (true, false, _) => format!("declared by {}", flow_list(&flows)),
                    (true, true, true) => "DNS".to_string(),
                    (true, true, false) => format!("allowed by {}", by_text(&decided_by)),
                    (false, false, _) => format!(
                        "was declared by {} of the old version; now denied by {}",
                        flow_list(&flows),
                        by_text(&decided_by)
                    ),
                    (false, true, true) => {
                        format!("was DNS; now denied by {}", by_text(&decided_by))
                    }
                    (false, true, false) => format!("denied by {}", by_text(&decided_by)),
                };
                let c = Connection {
                    from: from.name.clone(),
                    to: to.name.clone(),
                    port: number,
                    protocol: p.protocol.as_str().to_string(),
                    allowed: now,
                    flows,
                    cause,
                    decided_by,
                };
                if now {
                    out.allowed.push(c);
                } else {
                    out.denied.push(c);
                }
            }
        }
    }
    Ok(out)
}

fn coverage_word(c: Option<Coverage>) -> &'static str {
    match c {
        None => "absent",
        Some(Coverage::Covered) => "covered",
        Some(Coverage::NotSelected) => "not selected",
        Some(Coverage::Excluded) => "excluded",
        Some(Coverage::System) => "system",
        Some(Coverage::OptedOut) => "opted out",
    }
}

/// Where the probe pods of [`namespaces_backend`] get their addresses.
fn probe_ip(i: usize) -> IpAddr {
    let i = u32::try_from(i).unwrap_or(u32::MAX) % 60_000;
    // 10.244.200.0/21 and on: inside the first made-up cluster range.
    IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(10, 244, 200, 1)) + i,
    ))
}

/// The namespace of the pod standing for "a pod of a namespace no ClusterBaseline covers"
/// (labelled as opted out of every ClusterBaseline).
pub const PEER_NAMESPACE: &str = "tierflow-diff-peer";
const OUTSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// Compares, on `backend`, the connections of one probe pod per namespace in `bare` (known
/// to both versions, holding no AppNetwork in either).
fn namespaces_backend(
    sides: (&Side<'_>, &Side<'_>),
    bare: &[String],
    dns: &[(String, Labels)],
    extra_ports: &[Port],
    backend: Backend,
    settings: &Settings,
) -> Result<BackendDiff, DiffError> {
    let env = Env {
        api_server: Vec::new(),
        cluster_cidrs: assumed_cluster(&settings.cluster_cidrs),
    };
    let mut ports = vec![Port::tcp(80), Port::tcp(443), Port::udp(53), Port::tcp(53)];
    ports.extend(extra_ports.iter().filter(|p| p.number().is_some()));
    ports.sort();
    ports.dedup();
    let mut notes = Vec::new();
    let mut scenarios = Vec::with_capacity(2);
    for (side, version) in [(sides.0, "old"), (sides.1, "new")] {
        let planned = plan_side(side, side.namespaces, backend, &env, settings, version);
        notes.extend(
            planned
                .notes
                .into_iter()
                .filter(|n| n.contains("ClusterBaseline")),
        );
        let mut s = Scenario::from_values(planned.objects).map_err(|source| DiffError::Engine {
            what: format!("the {version} version"),
            backend: backend.as_str(),
            source,
        })?;
        for (ns, labels) in side.namespaces {
            s.add_namespace(ns, labels.clone());
        }
        let mut n = 0;
        let mut pod = |s: &mut Scenario, ns: &str, name: &str, labels: Labels| {
            n += 1;
            s.add_pod(Pod {
                namespace: ns.to_string(),
                name: name.to_string(),
                labels,
                ips: vec![probe_ip(n)],
                ports: Vec::new(),
                service_account: None,
            });
        };
        let mut peer_labels = settings.default_labels.clone();
        peer_labels.insert(NAMESPACE_NAME_LABEL.to_string(), PEER_NAMESPACE.to_string());
        // Opted out, so that no ClusterBaseline covers it on any backend (a cluster-wide
        // object would otherwise select it by its labels).
        peer_labels.insert(
            crate::model::OPT_OUT_LABEL.to_string(),
            crate::model::OPT_OUT_VALUE.to_string(),
        );
        s.add_namespace(PEER_NAMESPACE, peer_labels);
        pod(&mut s, PEER_NAMESPACE, "peer", Labels::new());
        for (ns, labels) in dns {
            pod(&mut s, ns, "dns", labels.clone());
        }
        for ns in bare {
            pod(
                &mut s,
                ns,
                "probe",
                Labels::from([("tierflow.dev/probe".to_string(), "true".to_string())]),
            );
        }
        scenarios.push(s);
    }
    let find = |s: &Scenario, ns: &str, name: &str| {
        s.pods()
            .iter()
            .position(|p| p.namespace == ns && p.name == name)
            .map(Endpoint::Pod)
    };
    let mut out = BackendDiff {
        backend,
        allowed: Vec::new(),
        denied: Vec::new(),
        notes,
        kept: Vec::new(),
    };
    let [old, new] = <[Scenario; 2]>::try_from(scenarios).map_err(|_| DiffError::Invalid {
        what: "namespaces".to_string(),
        message: "two versions expected".to_string(),
    })?;
    for ns in bare {
        let probe = format!("{ns}/probe");
        let mut pairs: Vec<(String, String, Vec<Port>)> = vec![
            (
                format!("{PEER_NAMESPACE}/peer"),
                probe.clone(),
                ports.clone(),
            ),
            (
                probe.clone(),
                format!("{PEER_NAMESPACE}/peer"),
                ports.clone(),
            ),
            (probe.clone(), OUTSIDE.to_string(), ports.clone()),
        ];
        for (dns_ns, _) in dns {
            pairs.push((
                probe.clone(),
                format!("{dns_ns}/dns"),
                vec![Port::udp(53), Port::tcp(53)],
            ));
        }
        for (from, to, ports) in pairs {
            let endpoint = |s: &Scenario, name: &str| -> Option<Endpoint> {
                match name.split_once('/') {
                    Some((ns, pod)) => find(s, ns, pod),
                    None => name.parse().ok().map(Endpoint::Ip),
                }
            };
            let (Some(oa), Some(ob), Some(na), Some(nb)) = (
                endpoint(&old, &from),
                endpoint(&old, &to),
                endpoint(&new, &from),
                endpoint(&new, &to),
            ) else {
                continue;
            };
            for p in ports {
                let Some(number) = p.number() else { continue };
                let was = old.allows(oa, ob, number, p.protocol);
                let v = new.check(na, nb, number, p.protocol);
                if was == v.allowed {
                    continue;
                }
                let decided_by = policies(&v);
                let c = Connection {
                    from: from.clone(),
                    to: to.clone(),
                    port: number,
                    protocol: p.protocol.as_str().to_string(),
                    allowed: v.allowed,
                    flows: Vec::new(),
                    cause: format!(
                        "{} by {}",
                        if v.allowed { "allowed" } else { "denied" },
                        by_text(&decided_by)
                    ),
                    decided_by,
                };
                if v.allowed {
                    out.allowed.push(c);
                } else {
                    out.denied.push(c);
                }
            }
        }
    }
    Ok(out)
}

/// Compares two versions of the intent (see the module documentation).
pub fn diff(old: Side<'_>, new: Side<'_>, settings: &Settings) -> Result<Diff, DiffError> {
    let old_models = models(&old)?;
    let new_models = models(&new)?;
    let old_cbs = cluster_models(&old)?;
    let new_cbs = cluster_models(&new)?;
    let with_cbs = !old_cbs.is_empty() || !new_cbs.is_empty();
    let mut out = Diff::default();
    let mut plans = Plans::default();

    // AppNetworks.
    let keys: BTreeSet<&String> = old_models.keys().chain(new_models.keys()).collect();
    for key in keys {
        let (o, n) = (old_models.get(key), new_models.get(key));
        let Some(merged) = both(o, n) else { continue };
        let reps = representatives(
            &merged,
            Options {
                near_misses: false,
                cluster_cidrs: settings.cluster_cidrs.clone(),
            },
        );
        let mut app = AppDiff {
            app_network: key.clone(),
            change: match (o, n) {
                (None, _) => Change::Added,
                (_, None) => Change::Removed,
                _ => Change::Changed,
            },
            backend: plan::Cluster::default().resolve(
                n.or(o)
                    .map_or(crate::model::BackendRequest::Auto, |m| m.backend),
            ),
            backends: Vec::new(),
            endpoints: reps
                .endpoints
                .iter()
                .map(|e| EndpointInfo {
                    name: e.name.clone(),
                    about: e.about.clone(),
                    namespace: match &e.place {
                        Place::Pod { namespace, .. } => Some(namespace.clone()),
                        Place::Address(_) => None,
                    },
                    tier: matches!(e.role, crate::verify::endpoints::Role::Tier(_)),
                })
                .collect(),
            notes: reps.notes.clone(),
            old: o.cloned(),
            new: n.cloned(),
        };
        for b in backends(with_cbs) {
            app.backends.push(app_backend(
                key,
                &merged,
                &reps,
                (&old, &new),
                (o, n),
                b,
                settings,
                &mut plans,
            )?);
        }
        if app.change != Change::Changed || !app.unchanged() {
            out.app_networks.push(app);
        }
    }

    // Namespace baselines, merged as the planner merges them.
    let baseline = |side: &Side<'_>,
                    apps: &BTreeMap<String, AppModel>,
                    cbs: &BTreeMap<String, ClusterBaselineModel>,
                    ns: &str| {
        let labels =
            side.namespaces.get(ns).cloned().unwrap_or_else(|| {
                Labels::from([(NAMESPACE_NAME_LABEL.to_string(), ns.to_string())])
            });
        let wishes: Vec<&crate::model::BaselineWish> = apps
            .values()
            .filter(|m| m.namespace == ns && !m.audit)
            .map(|m| &m.baseline)
            .chain(
                cbs.values()
                    .filter(|m| {
                        !m.audit
                            && m.coverage(ns, &labels, &settings.operator_namespace)
                                == Coverage::Covered
                    })
                    .map(|m| &m.wish),
            )
            .collect();
        let merged = crate::model::NamespaceBaseline::merge(wishes);
        BaselineState {
            deny_ingress: merged.deny_ingress,
            deny_egress: merged.deny_egress,
        }
    };
    let all_namespaces: BTreeSet<String> = old
        .namespaces
        .keys()
        .chain(new.namespaces.keys())
        .cloned()
        .chain(
            old_models
                .values()
                .chain(new_models.values())
                .map(|m| m.namespace.clone()),
        )
        .collect();
    for ns in &all_namespaces {
        let before = baseline(&old, &old_models, &old_cbs, ns);
        let after = baseline(&new, &new_models, &new_cbs, ns);
        if before != after {
            out.baselines.push(BaselineChange {
                namespace: ns.clone(),
                before,
                after,
            });
        }
    }

    // ClusterBaselines: inputs and coverage.
    let names: BTreeSet<&String> = old_cbs.keys().chain(new_cbs.keys()).collect();
    let namespaces: BTreeSet<&String> =
        old.namespaces.keys().chain(new.namespaces.keys()).collect();
    for name in &names {
        let (o, n) = (old_cbs.get(*name), new_cbs.get(*name));
        let change = match (o, n) {
            (None, Some(_)) => Some(Change::Added),
            (Some(_), None) => Some(Change::Removed),
            (Some(a), Some(b)) if a != b => Some(Change::Changed),
            _ => None,
        };
        if let Some(change) = change {
            out.cluster_baselines.push(ClusterBaselineChange {
                name: (*name).clone(),
                change,
            });
        }
        for ns in &namespaces {
            let cov = |m: Option<&ClusterBaselineModel>, side: &Side<'_>| {
                let labels = side.namespaces.get(*ns)?;
                m.map(|m| m.coverage(ns, labels, &settings.operator_namespace))
            };
            let (before, after) = (cov(o, &old), cov(n, &new));
            if before != after {
                out.coverage.push(CoverageChange {
                    cluster_baseline: (*name).clone(),
                    namespace: (*ns).clone(),
                    before: coverage_word(before).to_string(),
                    after: coverage_word(after).to_string(),
                });
            }
        }
    }

    // Namespaces without AppNetworks, under the ClusterBaselines.
    if with_cbs {
        let app_namespaces: BTreeSet<&str> = old
            .apps
            .iter()
            .chain(new.apps)
            .map(|a| a.namespace.as_str())
            .collect();
        let bare: Vec<String> = namespaces
            .iter()
            .filter(|ns| {
                !app_namespaces.contains(ns.as_str())
                    && old.namespaces.contains_key(**ns)
                    && new.namespaces.contains_key(**ns)
            })
            .map(|ns| (*ns).clone())
            .collect();
        let mut dns: BTreeMap<String, Labels> = BTreeMap::new();
        let mut extra_ports = Vec::new();
        for m in old_cbs.values().chain(new_cbs.values()) {
            if let Some(d) = &m.wish.dns {
                dns.entry(d.namespace.clone())
                    .or_insert_with(|| d.pods.example_labels());
            }
            if let Some(g) = &m.guardrails {
                extra_ports.extend(g.rules.iter().flat_map(|r| r.ports.iter().copied()));
            }
        }
        let dns: Vec<(String, Labels)> = dns.into_iter().collect();
        if bare.is_empty() {
            out.notes.push(
                "no namespace of the input is without an AppNetwork, so what the \
                 ClusterBaselines decide was compared in the AppNetworks' namespaces only (add \
                 Namespace objects or --namespace-labels NAMESPACE:key=value for more)"
                    .to_string(),
            );
        } else {
            for b in backends(true) {
                out.namespaces.push(namespaces_backend(
                    (&old, &new),
                    &bare,
                    &dns,
                    &extra_ports,
                    b,
                    settings,
                )?);
            }
        }
    }
    out.namespaces.retain(|b| !b.is_empty());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, ns: &str, spec: &str) -> AppInput {
        AppInput {
            name: name.into(),
            namespace: ns.into(),
            uid: None,
            generation: None,
            spec: serde_yaml::from_str(spec).unwrap(),
        }
    }

    fn cb(name: &str, spec: &str) -> ClusterBaselineInput {
        ClusterBaselineInput {
            name: name.into(),
            uid: None,
            generation: None,
            spec: serde_yaml::from_str(spec).unwrap(),
        }
    }

    fn namespaces(list: &[(&str, &[(&str, &str)])]) -> BTreeMap<String, Labels> {
        list.iter()
            .map(|(ns, labels)| {
                let mut l: Labels = labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                l.insert(NAMESPACE_NAME_LABEL.into(), ns.to_string());
                (ns.to_string(), l)
            })
            .collect()
    }

    fn settings() -> Settings {
        Settings {
            operator_namespace: "tierflow-system".into(),
            ..Settings::default()
        }
    }

    const WITH_CACHE: &str = r#"
tiers:
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
  - {name: cache, selector: {matchLabels: {app: cache}}, ports: [{port: 6379}]}
flows:
  - {from: {tier: api}, to: {tier: cache}}
"#;

    const WITHOUT_CACHE: &str = r#"
tiers:
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
"#;

    #[test]
    fn a_tier_only_the_old_version_has_keeps_its_representative_and_its_flow() {
        let ns = namespaces(&[("shop", &[])]);
        let old = [app("shop", "shop", WITH_CACHE)];
        let new = [app("shop", "shop", WITHOUT_CACHE)];
        let side = |apps| Side {
            apps,
            cluster_baselines: &[],
            namespaces: &ns,
        };
        let d = diff(side(&old), side(&new), &settings()).unwrap();
        assert_eq!(d.app_networks.len(), 1);
        for b in &d.app_networks[0].backends {
            let denied: Vec<(&str, &str, u16, &[usize])> = b
                .denied
                .iter()
                .map(|c| (c.from.as_str(), c.to.as_str(), c.port, c.flows.as_slice()))
                .collect();
            // The cache's pods are no tier any more: nothing governs them, so only the api's
            // egress (still isolated) stops them being reached.
            assert!(
                denied.contains(&("api", "cache", 6379, &[0][..])),
                "{:?}: {denied:?}",
                b.backend
            );
            assert!(b.allowed.iter().all(|c| c.flows.is_empty()), "{b:?}");
        }
        // And the other way round the flow is the new version's.
        let d = diff(side(&new), side(&old), &settings()).unwrap();
        for b in &d.app_networks[0].backends {
            assert!(b
                .allowed
                .iter()
                .any(|c| c.from == "api" && c.to == "cache" && c.flows == [0]));
        }
    }

    #[test]
    fn the_same_input_diffs_empty() {
        let ns = namespaces(&[("shop", &[("env", "prod")])]);
        let apps = [app("shop", "shop", WITH_CACHE)];
        let cbs = [cb(
            "platform",
            "namespaceSelector: {matchLabels: {env: prod}}",
        )];
        let side = Side {
            apps: &apps,
            cluster_baselines: &cbs,
            namespaces: &ns,
        };
        let d = diff(side, side, &settings()).unwrap();
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn a_namespace_relabelled_into_a_cluster_baseline_is_newly_covered_and_isolated() {
        let cbs = [cb(
            "platform",
            "namespaceSelector: {matchLabels: {env: prod}}",
        )];
        let before = namespaces(&[("legacy", &[("env", "dev")])]);
        let after = namespaces(&[("legacy", &[("env", "prod")])]);
        let side = |namespaces| Side {
            apps: &[],
            cluster_baselines: &cbs,
            namespaces,
        };
        let d = diff(side(&before), side(&after), &settings()).unwrap();
        assert_eq!(
            d.coverage,
            [CoverageChange {
                cluster_baseline: "platform".into(),
                namespace: "legacy".into(),
                before: "not selected".into(),
                after: "covered".into(),
            }]
        );
        assert!(d.cluster_baselines.is_empty());
        let backends: Vec<Backend> = d.namespaces.iter().map(|b| b.backend).collect();
        assert_eq!(backends, super::backends(true));
        for b in &d.namespaces {
            assert!(b.allowed.is_empty());
            assert!(
                b.denied
                    .iter()
                    .any(|c| c.from == format!("{PEER_NAMESPACE}/peer") && c.to == "legacy/probe"),
                "{b:?}"
            );
            // DNS stays open.
            assert!(!b.denied.iter().any(|c| c.to == "kube-system/dns"), "{b:?}");
        }
    }
}
