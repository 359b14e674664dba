//! A workload of many namespaces, each with a three-tier AppNetwork, most of them also covered by
//! one ClusterBaseline; and an exact check of what the cluster must then contain, computed with
//! tierflow's own validator and renderer from the live objects (so an orphaned, missing,
//! duplicated or half-written object, or a status that lags, is found).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{json, Value};
use tierflow::apply::{up_to_date, Owned};
use tierflow::crd::{AppNetwork, ClusterBaseline};
use tierflow::model::Backend;
use tierflow::plan;
use tierflow::render::ObjectKind;

use crate::harness::CHAOS_LABEL;
use crate::support;

/// The AppNetwork every namespace gets.
pub const APP: &str = "shop";

/// The field manager of the "user" who writes the intent.
pub const USER: &str = "chaos-user";

/// Label selecting the namespaces the ClusterBaseline covers.
const CB_LABEL: &str = "chaos.tierflow.dev/baseline";

/// The spec of the AppNetwork at `version`: three tiers, a cross-namespace flow, two CIDR flows.
/// Every version changes all three tier policies (the api port, the api and database egress).
pub fn app_spec(version: u32) -> Value {
    json!({
        "tiers": [
            {"name": "frontend", "selector": {"matchLabels": {"app": "frontend"}}, "ports": [{"port": 8080}]},
            {"name": "api", "selector": {"matchLabels": {"app": "api"}}, "ports": [{"port": 8000 + version % 1000}]},
            {"name": "database", "selector": {"matchLabels": {"app": "database"}}, "ports": [{"port": 5432}]}
        ],
        "flows": [
            {"from": {"tier": "frontend"}, "to": {"tier": "api"}},
            {"from": {"tier": "api"}, "to": {"tier": "database"}},
            {"from": {"namespace": "monitoring", "selector": {"matchLabels": {"app": "prometheus"}}},
             "to": {"tier": "api"}, "ports": [{"port": 9090}]},
            {"from": {"tier": "api"}, "to": {"cidr": "203.0.113.0/24"}, "ports": [{"port": 443 + version % 2}]},
            {"from": {"tier": "database"}, "to": {"cidr": format!("198.51.100.{}/32", version % 250)},
             "ports": [{"port": 5432}]}
        ]
    })
}

/// The ClusterBaseline spec in `variant` (odd variants add a NodeLocal DNSCache address, which
/// changes every covered namespace's baseline).
pub fn cb_spec(run: &str, variant: u32) -> Value {
    let mut dns = json!({"enabled": true});
    if variant % 2 == 1 {
        dns["nodeLocalAddress"] = json!("169.254.20.10");
    }
    json!({
        "namespaceSelector": {"matchLabels": {CB_LABEL: "yes", "chaos.tierflow.dev/run": run}},
        "dns": dns
    })
}

/// How the cluster compares with the intent.
pub struct Inspection {
    /// Objects the intent asks for.
    pub desired: usize,
    /// Of those, how many are present and current.
    pub current: usize,
    /// Managed objects present.
    pub live: usize,
    /// Everything that differs (empty: converged).
    pub problems: Vec<String>,
}

/// Many namespaces with the same three-tier AppNetwork.
pub struct Workload {
    /// Unique per workload; also the ClusterBaseline's name.
    pub run: String,
    /// The namespaces, in creation order.
    pub namespaces: Vec<String>,
    /// The ones the ClusterBaseline covers (two in three).
    pub covered: BTreeSet<String>,
    /// Whether there is a ClusterBaseline.
    pub with_cb: bool,
    /// Objects a scenario made to look like tierflow's (not checked).
    foreign: std::sync::Mutex<BTreeSet<(String, String)>>,
    client: Client,
}

impl Workload {
    /// Creates `n` namespaces `chaos-<prefix>-<pid>-<i>` and, with `with_cb`, the
    /// ClusterBaseline (the AppNetworks come with `apply_apps`).
    pub async fn create(client: &Client, prefix: &str, n: usize, with_cb: bool) -> Workload {
        let run = format!("chaos-{prefix}-{}", std::process::id());
        let mut namespaces = Vec::new();
        let mut covered = BTreeSet::new();
        for i in 0..n {
            let name = format!("{run}-{i}");
            let cb = if with_cb && i % 3 != 2 { "yes" } else { "no" };
            support::create_namespace(
                client,
                &name,
                &[
                    (CHAOS_LABEL, "true"),
                    ("chaos.tierflow.dev/run", &run),
                    (CB_LABEL, cb),
                ],
            )
            .await;
            if cb == "yes" {
                covered.insert(name.clone());
            }
            namespaces.push(name);
        }
        let w = Workload {
            run,
            namespaces,
            covered,
            with_cb,
            foreign: Default::default(),
            client: client.clone(),
        };
        if with_cb {
            w.set_cb(0).await;
        }
        w
    }

    /// Leaves `ns/name` out of the checks (a scenario's own look-alike of a managed object).
    pub fn ignore(&self, ns: &str, name: &str) {
        if let Ok(mut f) = self.foreign.lock() {
            f.insert((ns.to_string(), name.to_string()));
        }
    }

    /// Whether `ns` belongs to this workload.
    pub fn owns(&self, ns: &str) -> bool {
        ns.starts_with(&format!("{}-", self.run))
    }

    /// Applies the AppNetwork at `version` in every namespace (8 at a time).
    pub async fn apply_apps(&self, version: u32) {
        futures::stream::iter(self.namespaces.clone())
            .for_each_concurrent(8, |ns| async move { self.apply_app(&ns, version).await })
            .await;
    }

    /// Applies the AppNetwork at `version` in `ns`.
    pub async fn apply_app(&self, ns: &str, version: u32) {
        let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork",
                          "metadata": {"name": APP}, "spec": app_spec(version)});
        let api: Api<AppNetwork> = Api::namespaced(self.client.clone(), ns);
        // Retried: the control plane may be restarting.
        let mut attempts = 0;
        loop {
            match api
                .patch(APP, &PatchParams::apply(USER).force(), &Patch::Apply(&body))
                .await
            {
                Ok(_) => return,
                Err(e) => {
                    attempts += 1;
                    assert!(attempts < 150, "apply AppNetwork {ns}/{APP}: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Applies the ClusterBaseline in `variant`.
    pub async fn set_cb(&self, variant: u32) {
        let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "ClusterBaseline",
                          "metadata": {"name": self.run}, "spec": cb_spec(&self.run, variant)});
        Api::<ClusterBaseline>::all(self.client.clone())
            .patch(
                &self.run,
                &PatchParams::apply(USER).force(),
                &Patch::Apply(&body),
            )
            .await
            .expect("apply ClusterBaseline");
    }

    /// Every managed NetworkPolicy in the workload's namespaces, by (namespace, name).
    pub async fn managed(&self) -> Result<BTreeMap<(String, String), NetworkPolicy>, String> {
        let all: Api<NetworkPolicy> = Api::all(self.client.clone());
        let list = all
            .list(&ListParams::default().labels("app.kubernetes.io/managed-by=tierflow"))
            .await
            .map_err(|e| format!("list NetworkPolicies: {e}"))?;
        let foreign = self.foreign.lock().map(|f| f.clone()).unwrap_or_default();
        Ok(list
            .items
            .into_iter()
            .filter(|np| np.namespace().is_some_and(|ns| self.owns(&ns)))
            .map(|np| ((np.namespace().unwrap_or_default(), np.name_any()), np))
            .filter(|(key, _)| !foreign.contains(key))
            .collect())
    }

    /// What the cluster must contain now, from the live AppNetworks and ClusterBaseline, as the
    /// planner (the same one the operator and `tierflow render` use) says.
    async fn desired(&self) -> Result<BTreeMap<(String, String), Value>, String> {
        let mut cbs = Vec::new();
        if self.with_cb {
            let cb = Api::<ClusterBaseline>::all(self.client.clone())
                .get(&self.run)
                .await
                .map_err(|e| format!("get ClusterBaseline: {e}"))?;
            cbs.push(plan::ClusterBaselineInput {
                name: cb.name_any(),
                uid: cb.uid(),
                generation: cb.metadata.generation,
                spec: cb.spec.clone(),
            });
        }
        let cluster = plan::Cluster {
            auto_backend: Some(Backend::NetworkPolicy),
            operator_namespace: "tierflow-system".into(),
            ..plan::Cluster::default()
        };
        let cb_plans = plan::cluster_baselines(&cbs, &cluster, &plan::Nothing);
        let mut out = BTreeMap::new();
        for ns in &self.namespaces {
            let labels = Api::<Namespace>::all(self.client.clone())
                .get(ns)
                .await
                .map_err(|e| format!("get namespace {ns}: {e}"))?
                .labels()
                .clone();
            let apps: Vec<plan::AppInput> = Api::<AppNetwork>::namespaced(self.client.clone(), ns)
                .list(&ListParams::default())
                .await
                .map_err(|e| format!("list AppNetworks in {ns}: {e}"))?
                .items
                .into_iter()
                .map(|app| plan::AppInput {
                    name: app.name_any(),
                    namespace: ns.clone(),
                    uid: app.uid(),
                    generation: app.metadata.generation,
                    spec: app.spec,
                })
                .collect();
            let refs: Vec<&plan::AppInput> = apps.iter().collect();
            let p = plan::namespace(ns, &labels, &refs, &cb_plans, &cluster, &plan::Nothing);
            if let Some(held) = p.apps.iter().find(|a| a.held()) {
                return Err(format!("{ns}/{} is held: {:?}", held.name, held.hold));
            }
            for o in p
                .allows()
                .chain(&p.baselines(&cluster, &Default::default()))
            {
                out.insert((ns.clone(), o.name().to_string()), o.to_value());
            }
        }
        Ok(out)
    }

    /// Compares the cluster with the intent.
    pub async fn inspect(&self) -> Result<Inspection, String> {
        let desired = self.desired().await?;
        let live = self.managed().await?;
        let mut problems = Vec::new();
        let mut current = 0;
        for (key, want) in &desired {
            match live.get(key) {
                None => problems.push(format!("missing {}/{}", key.0, key.1)),
                Some(np) => {
                    let obj: DynamicObject = serde_json::from_value(
                        serde_json::to_value(np).map_err(|e| e.to_string())?,
                    )
                    .map_err(|e| e.to_string())?;
                    let want = tierflow::render::Object::from_value(
                        ObjectKind::NetworkPolicy,
                        want.clone(),
                    );
                    if up_to_date(&want, &Owned::of(ObjectKind::NetworkPolicy, &obj)) {
                        current += 1;
                    } else {
                        problems.push(format!("stale or half-written {}/{}", key.0, key.1));
                    }
                }
            }
        }
        for key in live.keys() {
            if !desired.contains_key(key) {
                problems.push(format!("orphaned {}/{}", key.0, key.1));
            }
        }
        for ns in &self.namespaces {
            let apps = Api::<AppNetwork>::namespaced(self.client.clone(), ns)
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            for app in apps.items {
                let ok = app.status.as_ref().is_some_and(|s| {
                    s.observed_generation == app.meta().generation
                        && s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                });
                if !ok {
                    problems.push(format!(
                        "{ns}/{} status not Ready for its generation",
                        app.name_any()
                    ));
                }
            }
        }
        if self.with_cb {
            let cb = Api::<ClusterBaseline>::all(self.client.clone())
                .get(&self.run)
                .await
                .map_err(|e| e.to_string())?;
            let ok = cb.status.as_ref().is_some_and(|s| {
                s.observed_generation == cb.meta().generation
                    && s.namespaces == self.covered.len() as i64
                    && s.failed.is_empty()
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if !ok {
                problems.push(format!(
                    "ClusterBaseline status not current: {:?}",
                    cb.status
                        .map(|s| (s.observed_generation, s.namespaces, s.failed))
                ));
            }
        }
        Ok(Inspection {
            desired: desired.len(),
            current,
            live: live.len(),
            problems,
        })
    }

    /// Whether the cluster is exactly as intended: every wanted object present and current,
    /// nothing else (no orphan, no duplicate), every status Ready for the current generation.
    /// Returns the number of managed objects.
    pub async fn check(&self) -> Result<usize, String> {
        let mut i = self.inspect().await?;
        if i.problems.is_empty() {
            Ok(i.live)
        } else {
            let n = i.problems.len();
            i.problems.truncate(6);
            Err(format!("{n} problems: {}", i.problems.join("; ")))
        }
    }

    /// Waits until `check` passes; returns how long that took. Fails the scenario with the last
    /// problems after `timeout`.
    pub async fn converge(&self, timeout: Duration) -> Duration {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < timeout {
            match self.check().await {
                Ok(_) => return started.elapsed(),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("did not converge within {timeout:?}: {last}");
    }

    /// Deletes the ClusterBaseline and the namespaces.
    pub async fn teardown(&self) {
        if self.with_cb {
            let _ = Api::<ClusterBaseline>::all(self.client.clone())
                .delete(&self.run, &DeleteParams::default())
                .await;
        }
        for ns in &self.namespaces {
            support::delete_namespace(&self.client, ns).await;
        }
    }
}
