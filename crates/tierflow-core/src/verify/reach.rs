//! What the rendered objects allow between an AppNetwork's representatives ([`reachability`]),
//! and `verify`: every backend's rendering held against the intent ([`verify`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::endpoints::{representatives, Options, Representatives, Role, Simulation};
use super::intent::{checkable, expected, probe_number, probe_ports, Intent};
use crate::core::{Cidr, Port};
use crate::engine::{EngineError, PolicyRef};
use crate::model::{AppModel, Backend, Peer};

/// Renders `model` (in its enforcing form) for `backend` and reads the objects, with the
/// representatives, into the engine. Also returns, as text, what the backend could not express.
pub fn simulation(
    model: &AppModel,
    reps: &Representatives,
    backend: Backend,
) -> Result<(Simulation, Vec<String>), EngineError> {
    let enforcing = AppModel {
        audit: false,
        ..model.clone()
    };
    let (objects, limitations) =
        crate::plan::app_objects_with(&enforcing, backend, &reps.env(), &reps.cilium_identity);
    let sim = reps.simulation(objects.into_iter().map(|o| o.into_value()).collect())?;
    let notes = limitations
        .into_iter()
        .map(|l| format!("{}: {}", l.kind.reason(), l.message))
        .collect();
    Ok((sim, notes))
}

/// The probes as (number, protocol), for [`Scenario::allows_each`](crate::engine::Scenario::allows_each).
pub fn probe_numbers(ports: &[Port]) -> Vec<(u16, crate::core::Protocol)> {
    ports
        .iter()
        .map(|p| (probe_number(*p), p.protocol))
        .collect()
}

/// Which connections the rendered objects of one backend allow between the representatives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    /// The representatives' names (indices of `cells` point here).
    pub endpoints: Vec<String>,
    /// The ports probed.
    pub ports: Vec<Port>,
    /// (from, to, port) → allowed, for every connection checkable offline on the backend.
    pub cells: BTreeMap<(usize, usize, Port), bool>,
}

/// The reachability matrix of `model` rendered for `backend`, over the representatives with
/// near misses and the thorough probe ports (the same ground `verify` covers).
pub fn reachability(model: &AppModel, backend: Backend) -> Result<Matrix, EngineError> {
    let reps = representatives(model, thorough(&[]));
    let ports = probe_ports(model, &reps, true);
    let (sim, _) = simulation(model, &reps, backend)?;
    let numbers = probe_numbers(&ports);
    let mut cells = BTreeMap::new();
    let api_as_address = !backend.capabilities().api_server_entity;
    for (i, from) in reps.endpoints.iter().enumerate() {
        for (j, to) in reps.endpoints.iter().enumerate() {
            if !checkable(from, to, api_as_address) {
                continue;
            }
            let Some((a, b)) = sim.pair(i, j) else {
                continue;
            };
            let got = sim.scenario.allows_each(a, b, &numbers);
            for (p, got) in ports.iter().zip(got) {
                cells.insert((i, j, *p), got);
            }
        }
    }
    Ok(Matrix {
        endpoints: reps.endpoints.iter().map(|e| e.name.clone()).collect(),
        ports,
        cells,
    })
}

/// One connection where a backend's rendering and the intent disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// The backend.
    #[serde(serialize_with = "backend_name")]
    pub backend: Backend,
    /// Source representative.
    pub from: String,
    /// Destination representative.
    pub to: String,
    /// Destination port.
    pub port: u16,
    /// Its protocol.
    pub protocol: String,
    /// What the intent expects (allowed or not).
    pub expected: bool,
    /// What the rendered objects do.
    pub got: bool,
    /// The flows (by index into `spec.flows`) that declare the connection: when it is
    /// expected but denied, the flows it blocks. Empty when no flow declares it (DNS, or a
    /// connection the intent does not declare).
    pub flows: Vec<usize>,
    /// Why the intent expects that, in words (for people; [`flows`](Self::flows) is the data).
    pub because: String,
    /// The policies that decided what the objects do (see
    /// [`Verdict::policies`](crate::engine::Verdict::policies)): whose rules allowed or
    /// denied it, or, for a default deny, which isolated the pod.
    pub decided_by: Vec<PolicyRef>,
}

fn backend_name<S: serde::Serializer>(b: &Backend, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(b.as_str())
}

fn word(allowed: bool) -> &'static str {
    if allowed {
        "allowed"
    } else {
        "denied"
    }
}

impl Difference {
    /// The difference without the backend's name.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} -> {} on {}/{}: expected {} ({}), got {}",
            self.from,
            self.to,
            self.port,
            self.protocol,
            word(self.expected),
            self.because,
            word(self.got)
        );
        if !self.decided_by.is_empty() {
            let by: Vec<String> = self.decided_by.iter().map(ToString::to_string).collect();
            s.push_str(&format!(" (decided by {})", by.join(", ")));
        }
        s
    }

    /// Whether the intent expects the connection allowed and the objects deny it.
    pub fn blocks(&self) -> bool {
        self.expected && !self.got
    }

    /// Whether the objects allow a connection the intent expects denied.
    pub fn opens(&self) -> bool {
        self.got && !self.expected
    }

    /// The policies among [`decided_by`](Self::decided_by) that are not tierflow's own.
    pub fn unmanaged_policies(&self) -> impl Iterator<Item = &PolicyRef> {
        self.decided_by.iter().filter(|p| !p.managed)
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.backend.as_str(), self.describe())
    }
}

/// The outcome of verifying one backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendReport {
    /// The backend.
    #[serde(serialize_with = "backend_name")]
    pub backend: Backend,
    /// How many (from, to, port) connections were checked.
    pub checked: usize,
    /// Where the rendering and the intent disagree.
    pub differences: Vec<Difference>,
    /// What was not checked, or is enforced weaker than declared, and why.
    pub notes: Vec<String>,
    /// Set when the engine could not read the rendered objects (a renderer bug).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BackendReport {
    /// Whether the backend allows exactly what the intent declares.
    pub fn passed(&self) -> bool {
        self.differences.is_empty() && self.error.is_none()
    }

    /// The declared flows (by index into `spec.flows`) with at least one connection that the
    /// intent expects allowed and the objects deny.
    pub fn blocked_flows(&self) -> BTreeSet<usize> {
        self.differences
            .iter()
            .filter(|d| d.blocks())
            .flat_map(|d| d.flows.iter().copied())
            .collect()
    }

    /// The differences where a policy that is not tierflow's (see [`PolicyRef::managed`])
    /// allows a connection the intent expects denied.
    pub fn opened_by_unmanaged(&self) -> impl Iterator<Item = &Difference> {
        self.differences
            .iter()
            .filter(|d| d.opens() && d.unmanaged_policies().next().is_some())
    }
}

/// A representative endpoint, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointInfo {
    /// Its name in tables and differences.
    pub name: String,
    /// What it stands for.
    pub about: String,
}

/// The outcome of `verify` for one AppNetwork.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// `namespace/name` of the AppNetwork.
    pub app_network: String,
    /// The representatives (near misses left out), with what each stands for.
    pub endpoints: Vec<EndpointInfo>,
    /// Notes about the representatives (peers without one, FQDN flows not checkable).
    pub notes: Vec<String>,
    /// One report per backend.
    pub backends: Vec<BackendReport>,
}

impl Verification {
    /// Whether every backend passed.
    pub fn passed(&self) -> bool {
        self.backends.iter().all(BackendReport::passed)
    }

    /// Every difference, backend by backend.
    pub fn differences(&self) -> impl Iterator<Item = &Difference> {
        self.backends.iter().flat_map(|b| b.differences.iter())
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "AppNetwork {}:", self.app_network)?;
        for b in &self.backends {
            let verdict = if let Some(e) = &b.error {
                format!("ERROR: the engine cannot read the rendered objects: {e}")
            } else if b.differences.is_empty() {
                format!(
                    "ok, allows exactly the declared flows and DNS ({} connections checked)",
                    b.checked
                )
            } else {
                format!(
                    "{} of {} connections differ from the intent",
                    b.differences.len(),
                    b.checked
                )
            };
            writeln!(f, "  {}: {verdict}", b.backend.as_str())?;
            for d in &b.differences {
                writeln!(f, "    {}", d.describe())?;
            }
            for n in &b.notes {
                writeln!(f, "    note: {n}")?;
            }
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}

fn backend_notes(model: &AppModel, backend: Backend) -> Vec<String> {
    let mut notes = Vec::new();
    if model.audit {
        let staged = Backend::names_with(|c| c.staged).unwrap_or_else(|| "no backend".into());
        notes.push(format!(
            "mode Audit: checked the enforcing form of the policies ({staged} stages exactly \
             these; the other backends refuse Audit)"
        ));
    }
    for f in &model.flows {
        if f.to != Peer::KubeApiServer {
            continue;
        }
        notes.push(match backend {
            Backend::NetworkPolicy | Backend::ClusterNetworkPolicy => format!(
                "spec.flows[{}]: the API server is checked as a made-up endpoint written as \
                 ipBlock (the operator writes the live default/kubernetes endpoints)",
                f.index
            ),
            Backend::Calico => format!(
                "spec.flows[{}]: the API server is written as destination services \
                 default/kubernetes, which is not checkable offline",
                f.index
            ),
            Backend::Cilium => format!(
                "spec.flows[{}]: the API server is written as toEntities kube-apiserver, which is \
                 not checkable offline",
                f.index
            ),
        });
    }
    notes
}

fn verify_on(
    model: &AppModel,
    reps: &Representatives,
    ports: &[Port],
    backend: Backend,
) -> BackendReport {
    let mut report = BackendReport {
        backend,
        checked: 0,
        differences: Vec::new(),
        notes: backend_notes(model, backend),
        error: None,
    };
    match simulation(model, reps, backend) {
        Ok((sim, notes)) => {
            report.notes.extend(notes);
            compare(model, reps, ports, &sim, &mut report);
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

/// Checks every connection between the representatives of the simulation against the intent.
fn compare(
    model: &AppModel,
    reps: &Representatives,
    ports: &[Port],
    sim: &Simulation,
    report: &mut BackendReport,
) {
    let api_as_address = !report.backend.capabilities().api_server_entity;
    let intent = Intent::new(model, reps);
    let numbers = probe_numbers(ports);
    for (i, from) in reps.endpoints.iter().enumerate() {
        for (j, to) in reps.endpoints.iter().enumerate() {
            if !checkable(from, to, api_as_address) {
                continue;
            }
            let Some((a, b)) = sim.pair(i, j) else {
                continue;
            };
            let candidates = intent.candidates(i, j);
            let allowed = sim.scenario.allows_each(a, b, &numbers);
            for (p, got) in ports.iter().zip(allowed) {
                report.checked += 1;
                if got == intent.allowed(&candidates, i, j, *p) {
                    continue;
                }
                // A difference: the intent's reasons, in full, only here.
                let want = expected(model, reps, from, to, *p);
                if got != want.allowed {
                    let verdict = sim.scenario.check(a, b, probe_number(*p), p.protocol);
                    report.differences.push(Difference {
                        backend: report.backend,
                        from: from.name.clone(),
                        to: self_or_twin(&to.name, i == j),
                        port: probe_number(*p),
                        protocol: p.protocol.as_str().to_string(),
                        expected: want.allowed,
                        got,
                        flows: want.flows,
                        because: want.because,
                        decided_by: verdict.policies().cloned().collect(),
                    });
                }
            }
        }
    }
}

/// Verifies objects written by hand (or by another tool) against the intent of `model`: the
/// same check as [`verify_backend`], on `objects` instead of tierflow's rendering. `backend`
/// only labels the report and says whether the API server counts as an address.
///
/// `cluster` are the cluster's ranges the objects were rendered with (empty: the made-up ones
/// of [`super::endpoints::DEFAULT_POOLS`]); the pods are given addresses inside them.
pub fn verify_objects(
    model: &AppModel,
    objects: Vec<serde_json::Value>,
    backend: Backend,
    cluster: &[Cidr],
) -> BackendReport {
    let reps = representatives(model, thorough(cluster));
    let ports = probe_ports(model, &reps, true);
    let mut report = BackendReport {
        backend,
        checked: 0,
        differences: Vec::new(),
        notes: Vec::new(),
        error: None,
    };
    match reps.simulation(objects) {
        Ok(sim) => compare(model, &reps, &ports, &sim, &mut report),
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

fn self_or_twin(name: &str, twin: bool) -> String {
    if twin {
        format!("{name} (another replica)")
    } else {
        name.to_string()
    }
}

/// Verifies one backend: renders `model` for it and checks every connection between the
/// representatives (with near misses) on the declared ports and the probes.
pub fn verify_backend(model: &AppModel, backend: Backend) -> BackendReport {
    let reps = representatives(model, thorough(&[]));
    let ports = probe_ports(model, &reps, true);
    verify_on(model, &reps, &ports, backend)
}

/// Verifies every backend (see the module documentation of [`intent`](super::intent) for
/// what is expected).
pub fn verify(model: &AppModel) -> Verification {
    verify_in(model, &[])
}

/// The representatives `verify` uses: near misses, and the cluster's ranges.
fn thorough(cluster: &[Cidr]) -> Options {
    Options {
        near_misses: true,
        cluster_cidrs: cluster.to_vec(),
    }
}

/// [`verify`] on a cluster whose pod and service ranges are `cluster` (`--cluster-cidr`;
/// empty: made-up ranges).
pub fn verify_in(model: &AppModel, cluster: &[Cidr]) -> Verification {
    verify_in_with(
        model,
        cluster,
        &crate::engine::CiliumIdentityFilter::default(),
    )
}

/// [`verify_in`], simulating Cilium with the identity label filter `identity` (the agent's
/// `labels` option).
pub fn verify_in_with(
    model: &AppModel,
    cluster: &[Cidr],
    identity: &crate::engine::CiliumIdentityFilter,
) -> Verification {
    let mut reps = representatives(model, thorough(cluster));
    reps.cilium_identity = identity.clone();
    let ports = probe_ports(model, &reps, true);
    // An AppNetwork on a backend without a namespaced form is written as standard
    // NetworkPolicy: verifying it again would check the same objects.
    let backends = Backend::ALL
        .into_iter()
        .filter(|b| b.for_namespaces() == *b)
        .map(|b| verify_on(model, &reps, &ports, b))
        .collect();
    Verification {
        app_network: format!("{}/{}", model.namespace, model.name),
        endpoints: reps
            .endpoints
            .iter()
            .filter(|e| e.role != Role::NearMiss)
            .map(|e| EndpointInfo {
                name: e.name.clone(),
                about: e.about.clone(),
            })
            .collect(),
        notes: reps.notes.clone(),
        backends,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Port;
    use crate::crd::AppNetworkSpec;
    use crate::plan::app_objects;
    use crate::verify::intent::probe_ports;
    use serde_json::{json, Value};

    fn model() -> AppModel {
        let spec: AppNetworkSpec = serde_yaml::from_str(
            "tiers:\n  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}\nflows:\n  - from: {namespace: monitoring, selector: {matchLabels: {app: prometheus}}}\n    to: {tier: api}\n",
        )
        .unwrap();
        crate::validate::app_network("shop", "production", &spec).unwrap()
    }

    #[test]
    fn the_rendering_of_every_backend_passes() {
        let v = verify(&model());
        assert!(v.passed(), "{v}");
        assert!(v.backends.iter().all(|b| b.checked > 0));
    }

    #[test]
    fn namespace_and_pod_conditions_in_two_peers_are_caught() {
        // The classic mistake: two peers (OR) where one (AND) was meant.
        let (objects, _) = app_objects(
            &model(),
            Backend::NetworkPolicy,
            &crate::render::Env::default(),
        );
        let mut objects: Vec<Value> = objects.into_iter().map(|o| o.into_value()).collect();
        for o in &mut objects {
            if o["metadata"]["name"] == "tierflow-shop-api" {
                o["spec"]["ingress"][0]["from"] = json!([
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
                    {"podSelector": {"matchLabels": {"app": "prometheus"}}},
                ]);
            }
        }
        let report = verify_objects(&model(), objects, Backend::NetworkPolicy, &[]);
        let wrong: Vec<String> = report
            .differences
            .iter()
            .map(|d| format!("{} -> {} {}", d.from, d.to, d.port))
            .collect();
        assert!(
            wrong.contains(&"monitoring/unselected -> api 8080".to_string()),
            "{wrong:?}"
        );
        assert!(report.differences.iter().all(|d| d.got && !d.expected));
    }

    #[test]
    fn a_cilium_peer_without_its_namespace_key_is_caught() {
        // Without `k8s:io.kubernetes.pod.namespace` Cilium scopes the peer to the policy's own
        // namespace: prometheus in monitoring can no longer reach the api.
        let (objects, _) = app_objects(&model(), Backend::Cilium, &crate::render::Env::default());
        let mut objects: Vec<Value> = objects.into_iter().map(|o| o.into_value()).collect();
        for o in &mut objects {
            if o["metadata"]["name"] == "tierflow-shop-api" {
                let sel = &mut o["spec"]["ingress"][0]["fromEndpoints"][0]["matchLabels"];
                assert!(sel
                    .as_object_mut()
                    .unwrap()
                    .remove("k8s:io.kubernetes.pod.namespace")
                    .is_some());
            }
        }
        let report = verify_objects(&model(), objects, Backend::Cilium, &[]);
        assert!(
            report
                .differences
                .iter()
                .any(|d| d.from == "monitoring/prometheus"
                    && d.to == "api"
                    && d.port == 8080
                    && d.expected
                    && !d.got),
            "{:?}",
            report.differences
        );
    }

    fn three_tier() -> AppModel {
        crate::render::fixtures::model_of(crate::render::fixtures::THREE_TIER)
    }

    fn rendered(model: &AppModel, backend: Backend) -> Vec<serde_json::Value> {
        let (objects, _) = app_objects(model, backend, &crate::render::Env::default());
        objects.into_iter().map(|o| o.into_value()).collect()
    }

    #[test]
    fn blocked_flows_names_the_flows_of_a_removed_tier_policy() {
        let model = three_tier();
        for backend in Backend::ALL {
            let intact = verify_objects(&model, rendered(&model, backend), backend, &[]);
            assert!(intact.passed(), "{backend:?}: {:?}", intact.differences);
            assert!(intact.blocked_flows().is_empty());
            let objects: Vec<serde_json::Value> = rendered(&model, backend)
                .into_iter()
                .filter(|o| o["metadata"]["name"] != "tierflow-shop-database")
                .collect();
            let report = verify_objects(&model, objects, backend, &[]);
            // spec.flows[1] is api -> database, spec.flows[2] database -> database: the
            // baseline now denies both; nothing else changes.
            assert_eq!(
                report.blocked_flows(),
                BTreeSet::from([1, 2]),
                "{backend:?}: {:?}",
                report.differences
            );
            // The deny is tierflow's own baseline, recognised by its label.
            let baseline = PolicyRef {
                kind: match backend {
                    Backend::NetworkPolicy | Backend::ClusterNetworkPolicy => "NetworkPolicy",
                    Backend::Calico => "projectcalico.org/v3 NetworkPolicy",
                    Backend::Cilium => "cilium.io/v2 CiliumNetworkPolicy",
                }
                .to_string(),
                namespace: Some("production".to_string()),
                name: "tierflow-baseline".to_string(),
                managed: true,
            };
            for d in &report.differences {
                assert!(d.blocks(), "{d}");
                assert_eq!(d.decided_by, std::slice::from_ref(&baseline), "{d}");
            }
            assert_eq!(report.opened_by_unmanaged().count(), 0);
        }
    }

    #[test]
    fn a_users_allow_all_policy_is_named_as_not_managed() {
        let model = model();
        let mut objects = rendered(&model, Backend::NetworkPolicy);
        objects.push(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-all", "namespace": "production"},
            "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]},
        }));
        let report = verify_objects(&model, objects, Backend::NetworkPolicy, &[]);
        let opened: Vec<&Difference> = report.opened_by_unmanaged().collect();
        assert!(!opened.is_empty(), "{:?}", report.differences);
        let allow_all = PolicyRef {
            kind: "NetworkPolicy".to_string(),
            namespace: Some("production".to_string()),
            name: "allow-all".to_string(),
            managed: false,
        };
        for d in &opened {
            assert!(d.flows.is_empty(), "{d}");
            assert_eq!(
                d.unmanaged_policies().collect::<Vec<_>>(),
                [&allow_all],
                "{d}"
            );
        }
        assert!(opened
            .iter()
            .any(|d| d.from == "monitoring/unselected" && d.to == "api" && d.port == 8080));
        // Nothing is blocked: an extra allow only opens.
        assert!(report.blocked_flows().is_empty());
    }

    const RANGES_AND_NAMES: &str = "tiers:\n  - {name: media, selector: {matchLabels: {app: media}}, ports: [{port: 30000, endPort: 32767, protocol: UDP}, {name: http}]}\n  - {name: web, selector: {matchLabels: {app: web}}}\nflows:\n  - {from: {tier: web}, to: {tier: media}}\n  - {from: {namespace: monitoring}, to: {tier: media}, ports: [{name: metrics}]}\n  - {from: {tier: web}, to: {cidr: 198.51.100.0/24}, ports: [{port: 8000, endPort: 8010}]}\n";

    #[test]
    fn every_backend_allows_exactly_the_declared_ranges_and_named_ports() {
        let model = crate::render::fixtures::model_of(RANGES_AND_NAMES);
        let reps = representatives(&model, thorough(&[]));
        let ports = probe_ports(&model, &reps, true);
        // Both ends of each range, and just outside them, are probed.
        for n in [29999, 30000, 32767, 32768] {
            assert!(ports.contains(&Port::udp(n)), "{n}: {ports:?}");
        }
        for n in [7999, 8000, 8010, 8011] {
            assert!(ports.contains(&Port::tcp(n)), "{n}: {ports:?}");
        }
        // Every pod gives each name the same number, away from the declared ports.
        let http = reps.named_ports.values().copied().collect::<Vec<_>>();
        assert_eq!(http.len(), 2, "{:?}", reps.named_ports);
        for backend in Backend::ALL {
            let report = verify_backend(&model, backend);
            assert!(report.passed(), "{backend:?}: {:?}", report.differences);
            assert!(report.checked > 0);
        }
    }

    #[test]
    fn a_range_narrowed_to_its_first_port_is_caught() {
        // What an API server that drops endPort would store.
        let model = crate::render::fixtures::model_of(RANGES_AND_NAMES);
        let mut objects = rendered(&model, Backend::NetworkPolicy);
        for o in &mut objects {
            if let Some(rules) = o["spec"]["ingress"].as_array_mut() {
                for r in rules {
                    for p in r["ports"].as_array_mut().into_iter().flatten() {
                        p.as_object_mut().map(|m| m.remove("endPort"));
                    }
                }
            }
        }
        let report = verify_objects(&model, objects, Backend::NetworkPolicy, &[]);
        assert!(
            report
                .differences
                .iter()
                .any(|d| d.to == "media" && d.port == 32767 && d.expected && !d.got),
            "{:?}",
            report.differences
        );
    }

    #[test]
    fn world_ipv6_peers_and_node_local_dns_verify_on_every_backend() {
        let spec: AppNetworkSpec = serde_yaml::from_str(
            "dns: {nodeLocalAddress: \"fd00::10\"}\ntiers:\n  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 443}]}\n  - {name: db, selector: {matchLabels: {app: db}}, ports: [{port: 5432}]}\nflows:\n  - {from: {world: true}, to: {tier: web}}\n  - {from: {tier: web}, to: {world: true}, ports: [{port: 443}]}\n  - {from: {tier: web}, to: {tier: db}}\n  - {from: {tier: db}, to: {cidr: \"2001:db8:5::/48\", except: [\"2001:db8:5:1::/64\"]}, ports: [{port: 9000}]}\n",
        )
        .unwrap();
        let model = crate::validate::app_network("shop", "production", &spec).unwrap();
        // Made-up ranges (offline), and given dual-stack ranges.
        let given: Vec<Cidr> = ["10.0.0.0/16", "10.96.0.0/12", "fd00:10::/56"]
            .iter()
            .map(|c| Cidr::parse(c).unwrap())
            .collect();
        for cluster in [Vec::new(), given] {
            let v = verify_in(&model, &cluster);
            assert!(v.passed(), "{cluster:?}: {v}");
            // Both world addresses were probed, and the pods sit inside the cluster ranges.
            let reps = representatives(&model, thorough(&cluster));
            let world: Vec<_> = reps
                .endpoints
                .iter()
                .filter(|e| e.role == Role::World)
                .collect();
            assert_eq!(world.len(), 2, "{world:?}");
            for e in &reps.endpoints {
                if let super::super::endpoints::Place::Pod { ip: Some(ip), .. } = &e.place {
                    assert!(
                        reps.cluster_cidrs.iter().any(|c| c.contains_addr(ip)),
                        "{e:?}"
                    );
                }
            }
        }
        // The world peer never reaches a pod of another namespace on any backend: db is not
        // reachable from "any-ns" pods, and web only from the world and its declared peers.
        for backend in [Backend::NetworkPolicy, Backend::Calico, Backend::Cilium] {
            let m = reachability(&model, backend).unwrap();
            let web = m.endpoints.iter().position(|n| n == "web").unwrap();
            for ((from, to, _), allowed) in &m.cells {
                if *to == web && *allowed {
                    let name = &m.endpoints[*from];
                    assert!(
                        name.contains(':')
                            || name.contains('.') && !name.contains('/')
                            || name == "web",
                        "{backend:?}: {name} reaches web"
                    );
                }
            }
        }
    }
}
