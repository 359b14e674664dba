//! Status is only a report, never a store: with the status of every input wiped while the
//! operator is down, what is enforced must not change. An AppNetwork and a ClusterBaseline, both
//! made invalid (held by the planner: their objects stay exactly as they are), keep every object
//! across a SIGKILL, a status wipe and a restart; on the standard backend a namespace created
//! while the ClusterBaseline is invalid still gets the last valid spec (recorded on the objects,
//! not in status); and valid inputs whose status is wiped cost a status write each, never an
//! object write.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{json, Value};
use tierflow::crd::{AppNetwork, ClusterBaseline, Condition};
use tierflow::plan::{self, baseline_kind};
use tierflow::render::ObjectKind;
use tierflow::vocab::{BASELINE_NAME, CLUSTER_BASELINE_LABEL, MANAGED_BY, MANAGER};

use crate::harness::{self, within, Metrics, Operator, OperatorOptions, Scenario, CHAOS_LABEL};
use crate::support;

/// The AppNetwork of every scenario here.
const APP: &str = "shop";
/// The field manager of the "user" who writes the intent.
const USER: &str = "chaos-user";
/// The label, unique to a run, that the ClusterBaseline selects.
const RUN_LABEL: &str = "chaos.tierflow.dev/status-loss";
/// How long any convergence or report may take.
const WAIT: Duration = Duration::from_secs(30);

/// The Calico and Cilium CRDs (as in `tests/e2e/backends.rs`).
const THIRD_PARTY_CRDS: &[&str] = &[
    "calico/projectcalico.org_networkpolicies.yaml",
    "calico/projectcalico.org_globalnetworkpolicies.yaml",
    "calico/projectcalico.org_stagednetworkpolicies.yaml",
    "calico/projectcalico.org_stagedglobalnetworkpolicies.yaml",
    "cilium/ciliumnetworkpolicies.yaml",
    "cilium/ciliumclusterwidenetworkpolicies.yaml",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    NetworkPolicy,
    Calico,
    Cilium,
}

impl Backend {
    fn spec(self) -> &'static str {
        match self {
            Backend::NetworkPolicy => "NetworkPolicy",
            Backend::Calico => "Calico",
            Backend::Cilium => "Cilium",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Backend::NetworkPolicy => "np",
            Backend::Calico => "calico",
            Backend::Cilium => "cilium",
        }
    }

    fn model(self) -> tierflow::model::Backend {
        match self {
            Backend::NetworkPolicy => tierflow::model::Backend::NetworkPolicy,
            Backend::Calico => tierflow::model::Backend::Calico,
            Backend::Cilium => tierflow::model::Backend::Cilium,
        }
    }

    /// The kind of a ClusterBaseline's cluster-wide object (`None`: a share of every covered
    /// namespace's baseline instead).
    fn cluster_kind(self) -> Option<ObjectKind> {
        match self {
            Backend::NetworkPolicy => None,
            Backend::Calico => Some(ObjectKind::CalicoGlobalNetworkPolicy),
            Backend::Cilium => Some(ObjectKind::CiliumClusterwideNetworkPolicy),
        }
    }
}

/// The AppNetwork: three tiers, two flows between them, a flow from another namespace, the
/// default (deny-all) baseline; `invalid` adds a flow from a tier that does not exist (the CRD
/// schema accepts it, validation refuses it).
fn app_spec(backend: Backend, invalid: bool) -> Value {
    let mut flows = vec![
        json!({"from": {"tier": "frontend"}, "to": {"tier": "api"}}),
        json!({"from": {"tier": "api"}, "to": {"tier": "database"}}),
        json!({"from": {"namespace": "monitoring", "selector": {"matchLabels": {"app": "prometheus"}}},
               "to": {"tier": "api"}, "ports": [{"port": 9090}]}),
    ];
    if invalid {
        flows.push(json!({"from": {"tier": "nosuch"}, "to": {"tier": "api"}}));
    }
    json!({
        "backend": backend.spec(),
        "tiers": [
            {"name": "frontend", "selector": {"matchLabels": {"app": "frontend"}}, "ports": [{"port": 8080}]},
            {"name": "api", "selector": {"matchLabels": {"app": "api"}}, "ports": [{"port": 8000}]},
            {"name": "database", "selector": {"matchLabels": {"app": "database"}}, "ports": [{"port": 5432}]}
        ],
        "flows": flows
    })
}

/// The ClusterBaseline: deny ingress and egress in the namespaces labelled for this run alone;
/// `invalid` excludes a name that is no namespace name (a plain string to the CRD schema).
fn cb_spec(backend: Backend, run: &str, invalid: bool) -> Value {
    let mut spec = json!({
        "backend": backend.spec(),
        "namespaceSelector": {"matchLabels": {RUN_LABEL: run}},
        "denyIngress": true,
        "denyEgress": true
    });
    if invalid {
        spec["excludeNamespaces"] = json!(["Not_A_Namespace"]);
    }
    spec
}

/// One scenario's inputs: the AppNetwork's namespace, the namespace the ClusterBaseline covers,
/// and the ClusterBaseline (named like the run).
struct Inputs {
    client: Client,
    backend: Backend,
    run: String,
    app_ns: String,
    covered_ns: String,
}

impl Inputs {
    async fn create(client: &Client, prefix: &str, backend: Backend) -> Inputs {
        let run = format!("chaos-{prefix}-{}-{}", backend.short(), std::process::id());
        let inputs = Inputs {
            client: client.clone(),
            backend,
            app_ns: format!("{run}-app"),
            covered_ns: format!("{run}-covered"),
            run,
        };
        support::create_namespace(client, &inputs.app_ns, &[(CHAOS_LABEL, "true")]).await;
        inputs.create_covered(&inputs.covered_ns).await;
        inputs.set_app(false).await;
        inputs.set_cb(false).await;
        inputs
    }

    /// A namespace the ClusterBaseline selects.
    async fn create_covered(&self, ns: &str) {
        support::create_namespace(
            &self.client,
            ns,
            &[(CHAOS_LABEL, "true"), (RUN_LABEL, &self.run)],
        )
        .await;
    }

    fn apps(&self) -> Api<AppNetwork> {
        Api::namespaced(self.client.clone(), &self.app_ns)
    }

    fn cbs(&self) -> Api<ClusterBaseline> {
        Api::all(self.client.clone())
    }

    async fn set_app(&self, invalid: bool) {
        let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork",
                          "metadata": {"name": APP}, "spec": app_spec(self.backend, invalid)});
        self.apps()
            .patch(APP, &PatchParams::apply(USER).force(), &Patch::Apply(&body))
            .await
            .expect("apply AppNetwork");
    }

    async fn set_cb(&self, invalid: bool) {
        let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "ClusterBaseline",
                          "metadata": {"name": self.run},
                          "spec": cb_spec(self.backend, &self.run, invalid)});
        self.cbs()
            .patch(
                &self.run,
                &PatchParams::apply(USER).force(),
                &Patch::Apply(&body),
            )
            .await
            .expect("apply ClusterBaseline");
    }

    /// Waits until both inputs report `ready` (True) or `InvalidSpec` (False) for their current
    /// generation; returns the AppNetwork as reported.
    async fn wait_reported(&self, ready: bool, what: &str) -> AppNetwork {
        let want = if ready { "Ready=True" } else { "InvalidSpec" };
        let app = within(WAIT, &format!("{what}: AppNetwork {want}"), || async {
            let app = self.apps().get(APP).await.ok()?;
            let st = app.status.as_ref()?;
            reported(
                st.observed_generation,
                &st.conditions,
                app.meta().generation,
                ready,
            )
            .then_some(app)
        })
        .await;
        within(WAIT, &format!("{what}: ClusterBaseline {want}"), || async {
            let cb = self.cbs().get(&self.run).await.ok()?;
            let st = cb.status.as_ref()?;
            reported(
                st.observed_generation,
                &st.conditions,
                cb.meta().generation,
                ready,
            )
            .then_some(())
        })
        .await;
        app
    }

    /// Waits until the ClusterBaseline reports `n` covered namespaces.
    async fn wait_cb_namespaces(&self, n: i64, what: &str) {
        within(
            WAIT,
            &format!("{what}: the ClusterBaseline reporting {n} namespaces"),
            || async {
                let cb = self.cbs().get(&self.run).await.ok()?;
                (cb.status?.namespaces == n).then_some(())
            },
        )
        .await;
    }

    /// Wipes the status of both inputs through the status subresource, and checks it is gone.
    async fn clear_status(&self) {
        let wipe = Patch::Merge(json!({"status": null}));
        self.apps()
            .patch_status(APP, &PatchParams::default(), &wipe)
            .await
            .expect("clear the AppNetwork's status");
        self.cbs()
            .patch_status(&self.run, &PatchParams::default(), &wipe)
            .await
            .expect("clear the ClusterBaseline's status");
        let app = self.apps().get(APP).await.expect("AppNetwork");
        assert!(
            app.status.is_none_or(|s| s == Default::default()),
            "the AppNetwork's status was not cleared"
        );
        let cb = self.cbs().get(&self.run).await.expect("ClusterBaseline");
        assert!(
            cb.status.is_none_or(|s| s == Default::default()),
            "the ClusterBaseline's status was not cleared"
        );
    }

    /// The objects that must exist: the AppNetwork's per-tier objects (as its status lists
    /// them), its namespace's baseline, and the ClusterBaseline's cluster-wide object or, on
    /// the standard backend, the covered namespace's baseline.
    fn expected(&self, app: &AppNetwork) -> Vec<Key> {
        let mut keys: Vec<Key> = app
            .status
            .as_ref()
            .map(|s| s.policies.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let kind = ObjectKind::from_type(&p.api_version, &p.kind)
                    .unwrap_or_else(|| panic!("not a kind tierflow writes: {p:?}"));
                (kind, self.app_ns.clone(), p.name)
            })
            .collect();
        assert_eq!(keys.len(), 3, "one object per tier: {keys:?}");
        keys.push((
            baseline_kind(self.backend.model(), false),
            self.app_ns.clone(),
            BASELINE_NAME.into(),
        ));
        keys.push(match self.backend.cluster_kind() {
            Some(kind) => (
                kind,
                String::new(),
                format!("tierflow-baseline-{}", self.run),
            ),
            None => (
                ObjectKind::NetworkPolicy,
                self.covered_ns.clone(),
                BASELINE_NAME.into(),
            ),
        });
        keys
    }

    /// Every tierflow-managed object of this run: in its two namespaces, and cluster-wide
    /// objects of its ClusterBaseline.
    async fn snapshot(&self) -> Snapshot {
        snapshot(
            &self.client,
            &[self.app_ns.as_str(), self.covered_ns.as_str()],
            &[self.run.as_str()],
        )
        .await
    }

    /// Waits until every expected object exists; returns the snapshot.
    async fn wait_objects(&self, expected: &[Key], what: &str) -> Snapshot {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self.snapshot().await;
            if expected.iter().all(|k| found.contains_key(k)) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: expected {expected:#?}, found {:#?}",
                found.keys().collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn teardown(&self, extra: &[&str]) {
        let _ = self.cbs().delete(&self.run, &DeleteParams::default()).await;
        for ns in [self.app_ns.as_str(), self.covered_ns.as_str()]
            .into_iter()
            .chain(extra.iter().copied())
        {
            support::delete_namespace(&self.client, ns).await;
        }
    }
}

/// Whether a status reports `Ready=True` (`ready`) or `Ready=False` `InvalidSpec` for
/// `generation`.
fn reported(
    observed: Option<i64>,
    conditions: &[Condition],
    generation: Option<i64>,
    ready: bool,
) -> bool {
    observed.is_some()
        && observed == generation
        && conditions.iter().any(|c| {
            c.type_ == "Ready"
                && if ready {
                    c.status == "True"
                } else {
                    c.status == "False" && c.reason == "InvalidSpec"
                }
        })
}

/// How many policies an AppNetwork's status lists.
fn policy_count(app: &AppNetwork) -> usize {
    app.status.as_ref().map_or(0, |s| s.policies.len())
}

/// (kind, namespace or "" for cluster-wide objects, name).
type Key = (ObjectKind, String, String);
/// Key → (uid, resourceVersion).
type Snapshot = BTreeMap<Key, (String, String)>;

/// Every tierflow-managed object in `namespaces`, and the cluster-wide objects of the
/// ClusterBaselines named `cluster_baselines`, of every kind the API server serves.
async fn snapshot(client: &Client, namespaces: &[&str], cluster_baselines: &[&str]) -> Snapshot {
    let labels: Vec<String> = cluster_baselines
        .iter()
        .map(|n| tierflow::core::names::label_value(n))
        .collect();
    let mut out = Snapshot::new();
    for kind in ObjectKind::ALL {
        let api = tierflow::apply::api(client, kind, None);
        let list = match api
            .list(&ListParams::default().labels(&format!("{MANAGED_BY}={MANAGER}")))
            .await
        {
            Ok(l) => l,
            // Not served here (its CRD is not installed).
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => panic!("list {kind:?}: {e}"),
        };
        for obj in list.items {
            let ns = obj.namespace().unwrap_or_default();
            let mine = if kind.namespaced() {
                namespaces.contains(&ns.as_str())
            } else {
                obj.labels()
                    .get(CLUSTER_BASELINE_LABEL)
                    .is_some_and(|l| labels.contains(l))
            };
            if mine {
                out.insert(
                    (kind, ns, obj.name_any()),
                    (
                        obj.uid().unwrap_or_default(),
                        obj.resource_version().unwrap_or_default(),
                    ),
                );
            }
        }
    }
    out
}

/// What changed between two snapshots (empty: nothing).
fn differences(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => out.push(format!("{k:?} deleted (was {v:?})")),
            Some(w) if w != v => out.push(format!("{k:?} rewritten: {v:?} -> {w:?}")),
            Some(_) => {}
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        out.push(format!("{k:?} created"));
    }
    out
}

/// Writes to objects (server-side apply PATCHes and DELETEs), without the status writes.
fn object_writes_without_status(m: &Metrics) -> f64 {
    m.0.iter()
        .filter(|(k, _)| k.starts_with("tierflow_api_writes_total{"))
        .filter(|(k, _)| k.contains("verb=\"PATCH\"") || k.contains("verb=\"DELETE\""))
        .filter(|(k, _)| {
            !k.contains("resource=\"leases\"")
                && !k.contains("resource=\"events\"")
                && !k.contains("/status\"")
        })
        .map(|(_, v)| v)
        .sum::<f64>()
        + 0.0
}

/// Status writes (`.../status` subresources).
fn status_writes(m: &Metrics) -> f64 {
    m.0.iter()
        .filter(|(k, _)| k.starts_with("tierflow_api_writes_total{") && k.contains("/status\""))
        .map(|(_, v)| v)
        .sum::<f64>()
        + 0.0
}

async fn metrics(op: &Operator) -> Metrics {
    within(WAIT, "the operator's /metrics", || op.metrics()).await
}

/// Waits until a freshly started operator has reconciled every namespace once (the
/// controllers reconcile everything at start; a write that start-up pass makes must be seen
/// before the objects are compared).
async fn wait_startup_pass(client: &Client, op: &Operator) {
    let live = harness::live_namespaces(client).await;
    within(WAIT, "the start-up pass over every namespace", || async {
        let m = op.metrics().await?;
        (m.sum("tierflow_reconcile_total{controller=\"namespace\"") >= live
            && m.sum("tierflow_reconcile_total{controller=\"clusterbaseline\"") >= 1.0)
            .then_some(())
    })
    .await;
}

/// Starts the scenario on the chaos control plane, with the Calico and Cilium CRDs when the
/// backend needs them; `None` when it is skipped.
async fn start(name: &str, backends: &[Backend]) -> Option<Scenario> {
    let sc = harness::setup(name).await?;
    if backends.iter().any(|b| *b != Backend::NetworkPolicy)
        && !support::install_third_party_crds(&sc.cluster.client, THIRD_PARTY_CRDS).await
    {
        eprintln!("SKIPPED chaos/{name}: needs the Calico and Cilium CRDs");
        return None;
    }
    Some(sc)
}

/// Checks that a namespace baseline denies ingress and egress (DNS egress aside).
fn denies_both(np: &NetworkPolicy) -> Result<(), String> {
    let spec = np.spec.as_ref().ok_or("no spec")?;
    let types = spec.policy_types.clone().unwrap_or_default();
    if !(types.iter().any(|t| t == "Ingress") && types.iter().any(|t| t == "Egress")) {
        return Err(format!("policyTypes {types:?}"));
    }
    let pods = spec.pod_selector.clone().unwrap_or_default();
    if pods.match_labels.is_some_and(|l| !l.is_empty())
        || pods.match_expressions.is_some_and(|e| !e.is_empty())
    {
        return Err(format!("not every pod: {:?}", spec.pod_selector));
    }
    if spec.ingress.as_ref().is_some_and(|i| !i.is_empty()) {
        return Err(format!("allows ingress: {:?}", spec.ingress));
    }
    for rule in spec.egress.iter().flatten() {
        let dns_only = rule.ports.as_ref().is_some_and(|ps| {
            !ps.is_empty()
                && ps.iter().all(|p| {
                    p.port
                        == Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(53))
                })
        });
        if !dns_only {
            return Err(format!("allows egress beyond DNS: {rule:?}"));
        }
    }
    Ok(())
}

async fn invalid_inputs_keep_their_objects(name: &str, backend: Backend) {
    let Some(sc) = start(name, &[backend]).await else {
        return;
    };
    let started = Instant::now();
    let client = sc.cluster.client.clone();
    let inputs = Inputs::create(&client, "sl", backend).await;
    let opts = OperatorOptions::default();

    // 1-2. Converged: both Ready for their generation, every object in place.
    let mut op = Operator::start(&sc, "tierflow", &opts);
    let app = inputs.wait_reported(true, "first convergence").await;
    let expected = inputs.expected(&app);
    // 3. Every managed object involved, as converged.
    let before = inputs.wait_objects(&expected, "first convergence").await;

    // 4. Both specs made invalid: held, reported InvalidSpec for the new generation, and
    //    nothing of theirs touched.
    inputs.set_app(true).await;
    inputs.set_cb(true).await;
    inputs.wait_reported(false, "specs made invalid").await;
    let held = inputs.snapshot().await;
    let changed = differences(&before, &held);
    assert!(
        changed.is_empty(),
        "objects changed when the specs became invalid (log {}): {changed:#?}",
        op.log.display()
    );

    // 5. Operator gone, status wiped.
    let listed_before = policy_count(&inputs.apps().get(APP).await.expect("AppNetwork"));
    op.sigkill();
    inputs.clear_status().await;

    // 6. Restart: it reports again, from the specs and the objects alone.
    let restarted = Instant::now();
    op = Operator::start(&sc, "tierflow", &opts);
    let app = inputs.wait_reported(false, "after the restart").await;
    let reported_after = restarted.elapsed();
    wait_startup_pass(&client, &op).await;
    // Both reports are rebuilt from what is observed: the one namespace the ClusterBaseline
    // covers, and the policies the held AppNetwork owns — the same as before the wipe.
    inputs.wait_cb_namespaces(1, "after the restart").await;
    let listed_after = policy_count(&app);
    assert_eq!(
        listed_after,
        listed_before,
        "the held AppNetwork's report depends on the status it had (log {})",
        op.log.display()
    );

    // 7. Nothing rewritten, nothing pruned, nothing added.
    let after = inputs.snapshot().await;
    let changed = differences(&before, &after);
    let m = metrics(&op).await;
    let writes = object_writes_without_status(&m);
    let statuses = status_writes(&m);
    assert!(
        changed.is_empty(),
        "objects changed across the restart with status cleared (log {}): {changed:#?}",
        op.log.display()
    );
    assert_eq!(
        writes,
        0.0,
        "the restarted operator wrote objects of held inputs (log {})",
        op.log.display()
    );
    for (kind, ns, n) in expected.iter().filter(|k| k.2 == BASELINE_NAME) {
        assert!(
            after.contains_key(&(*kind, ns.clone(), n.clone())),
            "the baseline {kind:?} {ns}/{n} is gone: the namespace is no longer isolated"
        );
    }

    // 8. Standard backend: a namespace created while the ClusterBaseline is invalid is covered
    //    by its last valid spec, recorded on the objects (status is empty, then a report).
    let late = format!("{}-late", inputs.run);
    let mut late_report = String::new();
    if backend == Backend::NetworkPolicy {
        let created = Instant::now();
        inputs.create_covered(&late).await;
        let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), &late);
        let np = within(WAIT, "a baseline in the namespace created late", || async {
            nps.get_opt(BASELINE_NAME).await.ok().flatten()
        })
        .await;
        if let Err(why) = denies_both(&np) {
            panic!("the late namespace's baseline does not deny both directions: {why}: {np:?}");
        }
        let records = plan::records_of(np.annotations());
        assert!(
            records.contains_key(&plan::cluster_baseline_key(&inputs.run)),
            "the late namespace's baseline does not record the ClusterBaseline: {records:?}"
        );
        inputs.wait_cb_namespaces(2, "the late namespace").await;
        late_report = format!(
            "; a namespace created while the ClusterBaseline was invalid got its deny-all \
             baseline in {:.2?}",
            created.elapsed()
        );
        // The rest is still untouched.
        let again = inputs.snapshot().await;
        let changed = differences(&before, &again);
        assert!(
            changed.is_empty(),
            "objects changed after the late namespace (log {}): {changed:#?}",
            op.log.display()
        );
    }

    // 9. Valid again: Ready, and every object still there.
    inputs.set_app(false).await;
    inputs.set_cb(false).await;
    let app = inputs.wait_reported(true, "specs fixed").await;
    let fixed = inputs.expected(&app);
    inputs.wait_objects(&fixed, "specs fixed").await;
    if backend == Backend::NetworkPolicy {
        let np = Api::<NetworkPolicy>::namespaced(client.clone(), &late)
            .get(BASELINE_NAME)
            .await
            .expect("the late namespace keeps its baseline once the spec is valid");
        denies_both(&np).expect("the late namespace's baseline denies both directions");
    }
    assert!(
        op.exited().is_none(),
        "the operator exited: {:?}",
        op.exited()
    );

    eprintln!(
        "CHAOS-REPORT {name}: {} objects of an invalid AppNetwork and ClusterBaseline ({}) kept \
         with the same uid and resourceVersion across SIGKILL + status wipe + restart; \
         reported InvalidSpec {reported_after:.2?} after the restart with {writes} object \
         writes and {statuses} status writes; the held AppNetwork's status listed \
         {listed_before} policies before the wipe, {listed_after} after{late_report}; whole \
         scenario {:.2?}",
        before.len(),
        backend.spec(),
        started.elapsed()
    );
    op.sigkill();
    inputs.teardown(&[late.as_str()]).await;
}

#[tokio::test]
async fn invalid_inputs_with_status_cleared_keep_every_object_across_a_restart_on_networkpolicy() {
    invalid_inputs_keep_their_objects("status-loss-networkpolicy", Backend::NetworkPolicy).await;
}

#[tokio::test]
async fn invalid_inputs_with_status_cleared_keep_every_object_across_a_restart_on_calico() {
    invalid_inputs_keep_their_objects("status-loss-calico", Backend::Calico).await;
}

#[tokio::test]
async fn invalid_inputs_with_status_cleared_keep_every_object_across_a_restart_on_cilium() {
    invalid_inputs_keep_their_objects("status-loss-cilium", Backend::Cilium).await;
}

/// Valid inputs on every backend, converged; SIGKILL, status wiped, restart: the status comes
/// back and not one object is written.
#[tokio::test]
async fn a_restart_with_status_cleared_on_valid_inputs_writes_no_object() {
    let name = "status-loss-valid";
    let all = [Backend::NetworkPolicy, Backend::Calico, Backend::Cilium];
    let Some(sc) = start(name, &all).await else {
        return;
    };
    let started = Instant::now();
    let client = sc.cluster.client.clone();
    let mut inputs = Vec::new();
    for b in all {
        inputs.push(Inputs::create(&client, "slv", b).await);
    }
    let opts = OperatorOptions::default();
    let mut op = Operator::start(&sc, "tierflow", &opts);
    let mut before = Snapshot::new();
    for i in &inputs {
        let app = i.wait_reported(true, "first convergence").await;
        let expected = i.expected(&app);
        i.wait_objects(&expected, "first convergence").await;
    }
    for i in &inputs {
        before.extend(i.snapshot().await);
    }

    op.sigkill();
    for i in &inputs {
        i.clear_status().await;
    }
    let restarted = Instant::now();
    op = Operator::start(&sc, "tierflow", &opts);
    for i in &inputs {
        i.wait_reported(true, "after the restart").await;
    }
    let reported_after = restarted.elapsed();
    wait_startup_pass(&client, &op).await;

    let mut after = Snapshot::new();
    for i in &inputs {
        after.extend(i.snapshot().await);
    }
    let m = metrics(&op).await;
    let writes = object_writes_without_status(&m);
    let statuses = status_writes(&m);
    let changed = differences(&before, &after);
    eprintln!(
        "CHAOS-REPORT {name}: {} objects of 3 AppNetworks and 3 ClusterBaselines (NetworkPolicy, \
         Calico, Cilium); after SIGKILL + status wipe + restart every status was back in \
         {reported_after:.2?} with {writes} object writes, {statuses} status writes \
         (object_writes {}), {} objects changed; whole scenario {:.2?}",
        before.len(),
        m.object_writes(),
        changed.len(),
        started.elapsed()
    );
    assert!(
        changed.is_empty(),
        "objects changed across the restart with status cleared (log {}): {changed:#?}",
        op.log.display()
    );
    assert_eq!(
        writes,
        0.0,
        "the restarted operator wrote objects (log {})",
        op.log.display()
    );
    // Its only writes are the reports it had to make again, at least one per input.
    assert_eq!(
        m.object_writes(),
        statuses,
        "writes other than status (log {})",
        op.log.display()
    );
    assert!(
        statuses >= 2.0 * inputs.len() as f64,
        "fewer status writes than inputs: {statuses} (log {})",
        op.log.display()
    );
    op.sigkill();
    for i in &inputs {
        i.teardown(&[]).await;
    }
}
