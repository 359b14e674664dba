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
pub mod namespace;

use std::sync::Arc;
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

use crate::crd::AppNetwork;
use crate::error::{Error, Result};
use crate::render::{MANAGED_BY, MANAGER};

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
    /// Publishes Kubernetes events.
    pub recorder: Recorder,
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

/// Starts the watches and controllers on the current runtime and returns once every cache has
/// synced.
pub async fn start(client: Client) -> Result<Running> {
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY}={MANAGER}"));

    let (appnets, appnet_w) = reflector::store::<AppNetwork>();
    let (policies, np_w) = reflector::store::<NetworkPolicy>();
    let (ns_tx, ns_rx) = unbounded::<ObjectRef<Namespace>>();
    let (app_tx, app_rx) = unbounded::<ObjectRef<AppNetwork>>();

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
        let (ns_tx, app_tx) = (ns_tx.clone(), app_tx.clone());
        let appnets = appnets.clone();
        let stream = watcher::watcher(Api::<NetworkPolicy>::all(client.clone()), managed)
            .default_backoff()
            .reflect(np_w);
        let (task, ready) = fan_out(stream, move |ev| match ev {
            Event::Apply(p) | Event::InitApply(p) | Event::Delete(p) => {
                if let Some(owner) = owner_app(p) {
                    send(&app_tx, owner);
                }
                send(&ns_tx, ns_ref(p));
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

    // Namespaces → themselves (new namespaces, label changes).
    {
        let ns_tx = ns_tx.clone();
        let stream = watcher::watcher(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(ns_w);
        let (task, ready) = fan_out(stream, move |ev| match ev {
            Event::Apply(n) | Event::InitApply(n) => send(&ns_tx, ObjectRef::from_obj(n)),
            Event::Delete(_) | Event::Init | Event::InitDone => {}
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
        recorder: Recorder::new(client.clone(), reporter),
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
