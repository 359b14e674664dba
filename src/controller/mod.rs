//! The running operator: one watch per kind, one cache each, and two controllers fed from them.
//!
//! - The AppNetwork controller renders and applies the per-tier policies of one AppNetwork and
//!   records, in its status, the objects it wants and the baseline it asks for.
//! - The namespace controller owns everything that is shared by a namespace: it merges every
//!   input's baseline wish into one `tierflow-baseline`, applies it, and prunes objects no
//!   longer wanted. So the write order is: tier allows, then the baseline, then prune.
//!
//! Watch events are fanned out by hand (deletes included, which shared-store subscriptions do
//! not forward) so that a hand-deleted object is restored at once.

pub mod appnetwork;
pub mod clusterbaseline;
pub mod namespace;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::{unbounded, UnboundedSender};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::crd::{AppNetwork, ClusterBaseline, NamespaceFailure};
use crate::error::{Error, Result};
use crate::render::{MANAGED_BY, MANAGER, ROLE_BASELINE, ROLE_LABEL};

/// Everything a reconcile needs: the client and the caches.
#[derive(Clone)]
pub struct Context {
    /// The API client (every write goes through `apply`).
    pub client: Client,
    /// Every AppNetwork of the cluster.
    pub appnets: Store<AppNetwork>,
    /// Every NetworkPolicy tierflow manages (selected by the managed-by label).
    pub policies: Store<NetworkPolicy>,
    /// Every Namespace.
    pub namespaces: Store<Namespace>,
    /// Every ClusterBaseline.
    pub cluster_baselines: Store<ClusterBaseline>,
    /// Publishes Kubernetes events.
    pub recorder: Recorder,
    /// The namespace the operator runs in (never covered by a ClusterBaseline unless included).
    pub operator_namespace: String,
    /// Namespaces whose last reconcile failed, with why (for ClusterBaseline status).
    pub failures: Arc<Mutex<BTreeMap<String, NamespaceFailure>>>,
    /// Asks the ClusterBaseline controller to recompute status.
    pub cluster_baseline_trigger: UnboundedSender<ObjectRef<ClusterBaseline>>,
}

impl Context {
    /// Asks for the status of every ClusterBaseline to be recomputed.
    pub fn trigger_cluster_baselines(&self) {
        trigger_all(&self.cluster_baselines, &self.cluster_baseline_trigger);
    }
}

/// Settings of the operator.
#[derive(Clone, Debug)]
pub struct Options {
    /// The namespace the operator runs in.
    pub operator_namespace: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            operator_namespace: std::env::var("POD_NAMESPACE")
                .unwrap_or_else(|_| "tierflow-system".into()),
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
/// synced.
pub async fn start(client: Client, options: Options) -> Result<Running> {
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY}={MANAGER}"));

    let (appnets, appnet_w) = reflector::store::<AppNetwork>();
    let (policies, np_w) = reflector::store::<NetworkPolicy>();
    let (ns_tx, ns_rx) = unbounded::<ObjectRef<Namespace>>();
    let (app_tx, app_rx) = unbounded::<ObjectRef<AppNetwork>>();
    let (cb_tx, cb_rx) = unbounded::<ObjectRef<ClusterBaseline>>();
    let (cluster_baselines, cb_w) = reflector::store::<ClusterBaseline>();

    let (namespaces, ns_w) = reflector::store::<Namespace>();
    let mut tasks = Vec::new();
    let mut synced = Vec::new();

    // AppNetworks → the AppNetwork itself, and its namespace.
    {
        let (ns_tx, app_tx) = (ns_tx.clone(), app_tx.clone());
        let stream = watcher::watcher(
            Api::<AppNetwork>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(appnet_w);
        let (task, ready) = fan_out(stream, move |ev| match ev {
            Event::Apply(a) | Event::InitApply(a) => {
                send(&app_tx, ObjectRef::from_obj(a));
                send(&ns_tx, ns_ref(a));
            }
            Event::Delete(a) => send(&ns_tx, ns_ref(a)),
            Event::Init | Event::InitDone => {}
        });
        tasks.push(task);
        synced.push(ready);
    }

    // Managed NetworkPolicies → their owning AppNetwork (drift of a tier policy) and their
    // namespace (drift of a baseline, pruning).
    {
        let (ns_tx, app_tx, cb_tx) = (ns_tx.clone(), app_tx.clone(), cb_tx.clone());
        let (appnets, cbs) = (appnets.clone(), cluster_baselines.clone());
        let stream = watcher::watcher(Api::<NetworkPolicy>::all(client.clone()), managed)
            .default_backoff()
            .reflect(np_w);
        let (task, ready) = fan_out(stream, move |ev| match ev {
            Event::Apply(p) | Event::InitApply(p) | Event::Delete(p) => {
                if let Some(owner) = owner_app(p) {
                    send(&app_tx, owner);
                }
                send(&ns_tx, ns_ref(p));
                if p.labels().get(ROLE_LABEL).map(String::as_str) == Some(ROLE_BASELINE) {
                    trigger_all(&cbs, &cb_tx);
                }
            }
            // After a relist, deletions that happened while the watch was down produce no event:
            // look at everything once.
            Event::InitDone => {
                for a in appnets.state() {
                    send(&app_tx, ObjectRef::from_obj(a.as_ref()));
                }
            }
            Event::Init => {}
        });
        tasks.push(task);
        synced.push(ready);
    }

    // Namespaces → themselves (new namespaces, label changes) and ClusterBaseline status.
    {
        let (ns_tx, cb_tx, cbs) = (ns_tx.clone(), cb_tx.clone(), cluster_baselines.clone());
        let stream = watcher::watcher(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(ns_w);
        let (task, ready) = fan_out(stream, move |ev| match ev {
            Event::Apply(n) | Event::InitApply(n) => {
                send(&ns_tx, ObjectRef::from_obj(n));
                trigger_all(&cbs, &cb_tx);
            }
            Event::Delete(_) => trigger_all(&cbs, &cb_tx),
            Event::Init | Event::InitDone => {}
        });
        tasks.push(task);
        synced.push(ready);
    }

    // ClusterBaselines → every namespace (coverage may change) and their own status.
    {
        let (ns_tx, cb_tx, namespaces) = (ns_tx.clone(), cb_tx.clone(), namespaces.clone());
        let stream = watcher::watcher(
            Api::<ClusterBaseline>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(cb_w);
        let (task, ready) = fan_out(stream, move |ev| match ev {
            Event::Apply(c) | Event::InitApply(c) => {
                send(&cb_tx, ObjectRef::from_obj(c));
                trigger_all(&namespaces, &ns_tx);
            }
            Event::Delete(_) => trigger_all(&namespaces, &ns_tx),
            Event::Init | Event::InitDone => {}
        });
        tasks.push(task);
        synced.push(ready);
    }

    let reporter = Reporter {
        controller: MANAGER.to_string(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let context = Arc::new(Context {
        client: client.clone(),
        appnets: appnets.clone(),
        policies: policies.clone(),
        namespaces: namespaces.clone(),
        cluster_baselines: cluster_baselines.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        operator_namespace: options.operator_namespace,
        failures: Arc::default(),
        cluster_baseline_trigger: cb_tx.clone(),
    });
    let config = kube::runtime::controller::Config::default().debounce(DEBOUNCE);

    let app_controller = Controller::for_stream(futures::stream::pending(), appnets)
        .reconcile_on(app_rx)
        .with_config(config.clone());
    tasks.push(tokio::spawn(
        app_controller
            .run(
                appnetwork::reconcile,
                appnetwork::error_policy,
                context.clone(),
            )
            .for_each(|res| async move {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "appnetwork controller");
                }
            }),
    ));
    let cb_controller = Controller::for_stream(futures::stream::pending(), cluster_baselines)
        .reconcile_on(cb_rx)
        .with_config(
            kube::runtime::controller::Config::default().debounce(CLUSTER_BASELINE_DEBOUNCE),
        );
    tasks.push(tokio::spawn(
        cb_controller
            .run(
                clusterbaseline::reconcile,
                clusterbaseline::error_policy,
                context.clone(),
            )
            .for_each(|res| async move {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "clusterbaseline controller");
                }
            }),
    ));
    let ns_controller = Controller::for_stream(futures::stream::pending(), namespaces)
        .reconcile_on(ns_rx)
        .with_config(config);
    tasks.push(tokio::spawn(
        ns_controller
            .run(
                namespace::reconcile,
                namespace::error_policy,
                context.clone(),
            )
            .for_each(|res| async move {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "namespace controller");
                }
            }),
    ));

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
    Ok(Running { context, tasks })
}

fn send<K: Resource>(tx: &UnboundedSender<ObjectRef<K>>, r: ObjectRef<K>)
where
    K::DynamicType: std::hash::Hash + Eq,
{
    // A closed channel means the controller is gone (shutdown); nothing to do.
    let _ = tx.unbounded_send(r);
}

/// Drives a reflector stream, handing every event to `on_event`; the returned flag turns true
/// once the first full list has been stored.
fn fan_out<K, S>(
    stream: S,
    mut on_event: impl FnMut(&Event<K>) + Send + 'static,
) -> (JoinHandle<()>, watch::Receiver<bool>)
where
    K: Send + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    let (ready_tx, ready_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    on_event(&ev);
                    if matches!(ev, Event::InitDone) {
                        ready_tx.send_replace(true);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watch error; retrying with backoff"),
            }
        }
    });
    (task, ready_rx)
}

fn trigger_all<K>(store: &Store<K>, tx: &UnboundedSender<ObjectRef<K>>)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    for o in store.state() {
        send(tx, ObjectRef::from_obj(o.as_ref()));
    }
}

fn ns_ref<K: Resource>(obj: &K) -> ObjectRef<Namespace> {
    ObjectRef::new(&obj.namespace().unwrap_or_default())
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

/// Error policy shared by the controllers: log, and retry soon.
pub(crate) fn retry_after(err: &Error) -> Action {
    tracing::warn!(error = %err, reason = err.reason(), "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}
