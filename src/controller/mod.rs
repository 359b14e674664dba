//! The running operator: observation (watches and caches), the planner, and action (apply,
//! prune, status). Two controllers, both fed from the same caches:
//!
//! - [`namespace`]: everything a namespace holds — the per-tier objects of its AppNetworks,
//!   their merged baselines (with the share of ClusterBaselines on the standard backend), pruning,
//!   and the AppNetworks' status. One reconcile follows the planner's order: allows → baselines
//!   → prune.
//! - [`clusterbaseline`]: a ClusterBaseline's one cluster-wide object (Calico, Cilium), the
//!   removal of the old variant once the new one is in place, and its status.
//!
//! Both plan with [`crate::plan`], the function `tierflow render` calls; neither reads status
//! to decide anything ([`observe`]). [`detect`] decides the backend; [`watches`] keeps the
//! caches; [`fence`] refuses writes from a replica that no longer leads; [`retry`] backs off per
//! object.

pub mod clusterbaseline;
pub mod detect;
mod fence;
pub mod namespace;
pub mod observe;
pub mod report;
pub mod retry;
pub mod watches;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::channel::mpsc::{unbounded, UnboundedReceiver};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::DynamicObject;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::apply::{self, Applied};
use crate::crd::{AppNetwork, ClusterBaseline, NamespaceFailure};
use crate::error::{Error, Result};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::model::Backend;
use crate::render::{Env, Object, ObjectKind};
use crate::vocab::{MANAGED_BY, MANAGER};
use detect::Detection;
pub use watches::{Managed, Triggers};

/// Everything a reconcile needs: the client, the caches, and what this process remembers of
/// its own work (never needed for correctness: a restart without it reaches the same objects).
#[derive(Clone)]
pub struct Context {
    /// The API client (every write goes through [`Context::apply`] and [`Context::delete`]).
    pub client: Client,
    /// Every AppNetwork of the cluster.
    pub appnets: Store<AppNetwork>,
    /// Every object tierflow manages, by kind.
    pub managed: Managed,
    /// Every Namespace.
    pub namespaces: Store<Namespace>,
    /// NetworkPolicies tierflow did not write (the users' own), to warn when they undercut it.
    pub user_policies: Store<NetworkPolicy>,
    /// Every ClusterBaseline.
    pub cluster_baselines: Store<ClusterBaseline>,
    /// Publishes Kubernetes events.
    pub recorder: Recorder,
    /// The namespace the operator runs in (never covered by a ClusterBaseline unless included).
    pub operator_namespace: String,
    /// The backend `Auto` means when set (`--backend`); detection decides otherwise.
    pub default_backend: Option<Backend>,
    /// What CNI detection concluded (kept current).
    pub detection: watch::Receiver<Detection>,
    /// The API server's endpoints (kept current).
    pub api_server: Arc<RwLock<Vec<(IpAddr, u16)>>>,
    /// Namespaces whose last reconcile failed, with why (for ClusterBaseline status).
    pub failures: Arc<Mutex<BTreeMap<String, NamespaceFailure>>>,
    /// Routes work to the controllers.
    pub triggers: Triggers,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// What this process remembers of its own work.
    pub memory: Memory,
    /// Per-object retry delays after errors.
    pub retries: retry::Retries,
}

/// What this process remembers of its own work, to spare work and requests. Never needed for
/// correctness: a restart without it reaches the same objects.
#[derive(Clone, Default)]
pub struct Memory {
    /// Inline verification results by AppNetwork, generation and backend, with a fingerprint of
    /// what else they depend on (deterministic, so computed once).
    pub(crate) verdicts: Arc<Mutex<HashMap<String, (String, report::Verdict)>>>,
    /// The last status this process wrote per object UID, with the resourceVersion it got.
    pub(crate) written: Arc<Mutex<HashMap<String, (u64, serde_json::Value)>>>,
    /// The last body this process applied per object, to tell drift from a new desired state.
    pub(crate) applied: Arc<Mutex<HashMap<String, u64>>>,
}

impl Context {
    /// The current detection.
    pub fn detected(&self) -> Detection {
        self.detection.borrow().clone()
    }

    /// Cluster facts for renderers.
    pub fn env(&self) -> Env {
        Env {
            api_server: self
                .api_server
                .read()
                .map(|v| v.clone())
                .unwrap_or_default(),
        }
    }

    /// The AppNetworks of `ns` that are not being deleted.
    pub fn apps_in(&self, ns: &str) -> Vec<Arc<AppNetwork>> {
        self.appnets
            .state()
            .into_iter()
            .filter(|a| {
                a.namespace().as_deref() == Some(ns) && a.meta().deletion_timestamp.is_none()
            })
            .collect()
    }

    /// Applies `object` through the one write path, naming the object in any error; counts
    /// drift corrections (a write of what this process applied before means someone changed
    /// or deleted it).
    pub async fn apply(&self, object: &Object) -> Result<Applied> {
        let live = self
            .managed
            .get(object.kind, object.namespace(), object.name());
        let key = object_key(object.kind, object.namespace(), object.name());
        let digest = digest(&object.body);
        let outcome = apply::apply(&self.client, object, live.as_deref())
            .await
            .map_err(|e| {
                e.at(
                    "apply",
                    &describe(object.kind, object.namespace(), object.name()),
                )
            })?;
        if outcome != Applied::Unchanged {
            let before = self
                .memory
                .applied
                .lock()
                .ok()
                .and_then(|mut m| m.insert(key, digest));
            if before == Some(digest) {
                self.metrics
                    .drift_corrections
                    .with_label_values(&[object.kind.kind()])
                    .inc();
            }
        } else if let Ok(mut m) = self.memory.applied.lock() {
            m.insert(key, digest);
        }
        Ok(outcome)
    }

    /// Deletes one of tierflow's objects (UID-guarded), naming it in any error.
    pub async fn delete(&self, kind: ObjectKind, obj: &DynamicObject) -> Result<bool> {
        let ns = obj.namespace();
        let name = obj.name_any();
        if let Ok(mut m) = self.memory.applied.lock() {
            m.remove(&object_key(kind, ns.as_deref(), &name));
        }
        apply::delete(&self.client, kind, obj)
            .await
            .map_err(|e| e.at("prune", &describe(kind, ns.as_deref(), &name)))
    }
}

fn object_key(kind: ObjectKind, ns: Option<&str>, name: &str) -> String {
    format!("{}/{}/{}", kind.kind(), ns.unwrap_or_default(), name)
}

fn describe(kind: ObjectKind, ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(ns) => format!("{} {} {ns}/{name}", kind.api_version(), kind.kind()),
        None => format!("{} {} {name}", kind.api_version(), kind.kind()),
    }
}

fn digest(v: &serde_json::Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

/// Settings of the operator.
#[derive(Clone)]
pub struct Options {
    /// The namespace the operator runs in.
    pub operator_namespace: String,
    /// The backend `Auto` means (`None`: detect the CNI).
    pub default_backend: Option<Backend>,
    /// Where reconciles are counted (a fresh registry when `None`).
    pub metrics: Option<Arc<Metrics>>,
    /// With leader election: the controllers (the only writers) start once this replica leads.
    /// The caches are filled either way, so a standby takes over warm.
    pub leadership: Option<watch::Receiver<Leadership>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            operator_namespace: std::env::var("POD_NAMESPACE")
                .unwrap_or_else(|_| crate::vocab::DEFAULT_OPERATOR_NAMESPACE.into()),
            default_backend: None,
            metrics: None,
            leadership: None,
        }
    }
}

/// A started operator.
pub struct Running {
    /// The context the controllers use (tests call the reconcilers with it directly).
    pub context: Arc<Context>,
    /// The tasks that drive the watches and controllers.
    pub tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits until a task ends (they run forever unless the process is shutting down).
    pub async fn join(self) {
        let _ = futures::future::select_all(self.tasks).await;
    }

    /// Stops every task.
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How long a watch-fed reconcile waits before running, to fold bursts of events.
const DEBOUNCE: Duration = Duration::from_millis(5);

/// ClusterBaseline status sums up many namespaces; fold bursts of namespace events into one.
const CLUSTER_BASELINE_DEBOUNCE: Duration = Duration::from_millis(200);

/// Starts the watches and controllers on the current runtime and returns once every cache has
/// synced and the CNI has been detected.
pub async fn start(client: Client, options: Options) -> Result<Running> {
    let client = match &options.leadership {
        Some(l) => fence::fenced(client, l.clone()),
        None => client,
    };
    let (ns_tx, ns_rx) = unbounded::<ObjectRef<Namespace>>();
    let (cb_tx, cb_rx) = unbounded::<ObjectRef<ClusterBaseline>>();
    let mut tasks = Vec::new();
    let mut synced = Vec::new();

    // The routing needs the namespace and ClusterBaseline stores, which their own watches fill;
    // they are created first and handed to the triggers.
    let (namespaces, ns_writer) = kube::runtime::reflector::store::<Namespace>();
    let (cluster_baselines, cb_writer) = kube::runtime::reflector::store::<ClusterBaseline>();
    let triggers = Triggers {
        namespaces: ns_tx,
        cluster_baselines: cb_tx,
        ns_store: namespaces.clone(),
        cb_store: cluster_baselines.clone(),
    };

    // AppNetworks → their namespace.
    let t = triggers.clone();
    let (appnets, task, ready) = watches::watch(
        Api::<AppNetwork>::all(client.clone()),
        watcher::Config::default(),
        move |ev| match ev {
            Event::Apply(a) | Event::InitApply(a) | Event::Delete(a) => {
                t.namespace(&a.namespace().unwrap_or_default())
            }
            Event::Init | Event::InitDone => {}
        },
    );
    tasks.push(task);
    synced.push(ready);

    // Namespaces → themselves (new namespaces, label changes) and ClusterBaseline status.
    let t = triggers.clone();
    let (task, ready) = watches::watch_into(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
        ns_writer,
        move |ev| match ev {
            Event::Apply(n) | Event::InitApply(n) => {
                t.namespace(&n.name_any());
                t.all_cluster_baselines();
            }
            Event::Delete(_) => t.all_cluster_baselines(),
            Event::Init | Event::InitDone => {}
        },
    );
    tasks.push(task);
    synced.push(ready);

    // ClusterBaselines → every namespace (coverage may change) and their own status.
    let t = triggers.clone();
    let (task, ready) = watches::watch_into(
        Api::<ClusterBaseline>::all(client.clone()),
        watcher::Config::default(),
        cb_writer,
        move |ev| match ev {
            Event::Apply(c) | Event::InitApply(c) => {
                watches::send(&t.cluster_baselines, ObjectRef::from_obj(c));
                t.all_namespaces();
            }
            Event::Delete(_) => t.all_namespaces(),
            Event::Init | Event::InitDone => {}
        },
    );
    tasks.push(task);
    synced.push(ready);

    // The users' own NetworkPolicies → their namespace (the Undercut condition).
    let t = triggers.clone();
    let (user_policies, task, ready) = watches::watch(
        Api::<NetworkPolicy>::all(client.clone()),
        watcher::Config::default().labels(&format!("{MANAGED_BY}!={MANAGER}")),
        move |ev| match ev {
            Event::Apply(p) | Event::Delete(p) => t.namespace(&p.namespace().unwrap_or_default()),
            Event::InitApply(_) | Event::Init | Event::InitDone => {}
        },
    );
    tasks.push(task);
    synced.push(ready);

    // The API server's endpoints, for the kubeAPIServer peer on the standard backend.
    let api_server: Arc<RwLock<Vec<(IpAddr, u16)>>> = Arc::default();
    let (t, addresses) = (triggers.clone(), api_server.clone());
    let (_endpoints, task, ready) = watches::watch(
        Api::<Endpoints>::namespaced(client.clone(), "default"),
        watcher::Config::default().fields("metadata.name=kubernetes"),
        move |ev| {
            let found = match ev {
                Event::Apply(e) | Event::InitApply(e) => watches::endpoints(e),
                Event::Delete(_) => Vec::new(),
                Event::Init | Event::InitDone => return,
            };
            let changed = addresses
                .write()
                .map(|mut v| std::mem::replace(&mut *v, found.clone()) != found);
            if changed.unwrap_or(false) {
                t.all_namespaces();
            }
        },
    );
    tasks.push(task);
    synced.push(ready);

    // CNI detection, which also starts and stops the watches of CRD-backed kinds.
    let managed = Managed::default();
    let (detection_tx, detection_rx) = watch::channel(Detection::default());
    let (detect_task, detected) = detect::task(
        client.clone(),
        managed.clone(),
        triggers.clone(),
        detection_tx,
    );
    tasks.push(detect_task);
    synced.push(detected);

    let metrics = match options.metrics.clone() {
        Some(m) => m,
        None => Arc::new(Metrics::new()?),
    };
    let reporter = Reporter {
        controller: MANAGER.to_string(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let context = Arc::new(Context {
        client: client.clone(),
        appnets,
        managed,
        namespaces,
        user_policies,
        cluster_baselines,
        recorder: Recorder::new(client.clone(), reporter),
        operator_namespace: options.operator_namespace,
        default_backend: options.default_backend,
        detection: detection_rx,
        api_server,
        failures: Arc::default(),
        triggers: triggers.clone(),
        metrics,
        memory: Memory::default(),
        retries: retry::Retries::default(),
    });

    // (Store::wait_until_ready keeps a single waker and the controllers wait on the same stores,
    // so readiness is tracked from the watch events themselves.)
    let sync = futures::future::join_all(synced.iter_mut().map(|rx| rx.wait_for(|ready| *ready)));
    match tokio::time::timeout(Duration::from_secs(60), sync).await {
        Ok(results) if results.iter().all(Result::is_ok) => {}
        _ => {
            for t in &tasks {
                t.abort();
            }
            return Err(Error::Config("caches did not sync within 60s".into()));
        }
    }

    let ctx = context.clone();
    let gate = options.leadership.clone();
    tasks.push(tokio::spawn(async move {
        if let Some(mut leadership) = gate {
            if leadership.wait_for(|l| l.leading).await.is_err() {
                return;
            }
        }
        run_controllers(ctx, ns_rx, cb_rx, triggers).await;
    }));
    Ok(Running { context, tasks })
}

/// Runs the two controllers (the only writers) until they end.
async fn run_controllers(
    ctx: Arc<Context>,
    ns_rx: UnboundedReceiver<ObjectRef<Namespace>>,
    cb_rx: UnboundedReceiver<ObjectRef<ClusterBaseline>>,
    triggers: Triggers,
) {
    let namespaces = Controller::for_stream(futures::stream::pending(), ctx.namespaces.clone())
        .reconcile_on(ns_rx)
        .with_config(kube::runtime::controller::Config::default().debounce(DEBOUNCE))
        .run(
            |obj, ctx: Arc<Context>| async move {
                let started = std::time::Instant::now();
                let key = format!("Namespace/{}", obj.name_any());
                let r = namespace::reconcile(obj, ctx.clone()).await;
                ctx.metrics.observe("namespace", started, &r);
                ctx.retries.settle(&key, &r);
                r
            },
            |obj, err, ctx| error_policy(&format!("Namespace/{}", obj.name_any()), err, &ctx),
            ctx.clone(),
        )
        .for_each(|_| async {});
    let cbs = Controller::for_stream(futures::stream::pending(), ctx.cluster_baselines.clone())
        .reconcile_on(cb_rx)
        .with_config(
            kube::runtime::controller::Config::default().debounce(CLUSTER_BASELINE_DEBOUNCE),
        )
        .run(
            |obj, ctx: Arc<Context>| async move {
                let started = std::time::Instant::now();
                let key = format!("ClusterBaseline/{}", obj.name_any());
                let r = clusterbaseline::reconcile(obj, ctx.clone()).await;
                ctx.metrics.observe("clusterbaseline", started, &r);
                ctx.retries.settle(&key, &r);
                r
            },
            |obj, err, ctx| error_policy(&format!("ClusterBaseline/{}", obj.name_any()), err, &ctx),
            ctx.clone(),
        )
        .for_each(|_| async {});
    // Everything once, now that the controllers listen (a standby that takes over catches up).
    triggers.everything();
    futures::join!(namespaces, cbs);
}

/// Error policy of both controllers: log, and retry after this object's next backoff delay
/// (persistent errors such as 403 or 422 back off exponentially instead of looping hot).
fn error_policy(key: &str, err: &Error, ctx: &Context) -> Action {
    let delay = ctx.retries.next(key);
    tracing::warn!(object = key, error = %err, reason = err.reason(), retry_in_ms = delay.as_millis() as u64, "reconcile failed");
    Action::requeue(delay)
}

/// The AppNetwork that controls `obj`, from its controller owner reference.
pub fn owner_app<K: Resource>(obj: &K) -> Option<ObjectRef<AppNetwork>> {
    let ns = obj.namespace()?;
    obj.owner_references()
        .iter()
        .find(|o| {
            o.controller == Some(true)
                && o.kind == "AppNetwork"
                && o.api_version == AppNetwork::api_version(&())
        })
        .map(|o| ObjectRef::new(&o.name).within(&ns))
}
