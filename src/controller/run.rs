//! Starting the operator: the watches, detection, and the two controllers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::channel::mpsc::{unbounded, UnboundedReceiver};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::context::{Context, Options};
use super::detect::{self, Detection};
use super::memory::Memory;
use super::watches::{self, Apps, Managed, NsIndex, Triggers};
use super::{clusterbaseline, fence, namespace, retry};
use crate::crd::{AppNetwork, ClusterBaseline};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::vocab::{MANAGED_BY, MANAGER};

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

/// Namespaces reconciled at once. Unbounded, a cold start on 1,000 namespaces opened thousands
/// of connections (3,190 file descriptors) and spent its time in TLS handshakes; the API server's
/// own throughput peaks at a few concurrent writers on this kind of machine (BENCHMARKS.md).
const NAMESPACE_CONCURRENCY: u16 = 8;

/// ClusterBaselines reconciled at once.
const CLUSTER_BASELINE_CONCURRENCY: u16 = 2;

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

    // AppNetworks → their namespace, except the echo of this process's own status write (the
    // object exactly as that write left it: nothing to plan anew; after a cold start each
    // status write queued one more reconcile of its namespace).
    let memory = Memory::default();
    let t = triggers.clone();
    let appnets = Apps::default();
    let apps = appnets.clone();
    let written = memory.written.clone();
    let (task, ready) = watches::watch_events(
        Api::<AppNetwork>::all(client.clone()),
        watches::config(),
        move |ev| {
            apps.observe(ev);
            match ev {
                Event::Apply(a) if own_status_write(&written, a) => {}
                Event::Apply(a) | Event::InitApply(a) | Event::Delete(a) => {
                    t.namespace(&a.namespace().unwrap_or_default())
                }
                Event::Init | Event::InitDone => {}
            }
        },
    );
    tasks.push(task);
    synced.push(ready);

    // Namespaces → themselves (new namespaces, label changes) and ClusterBaseline status.
    let t = triggers.clone();
    let (task, ready) = watches::watch_into(
        Api::<Namespace>::all(client.clone()),
        watches::config(),
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

    // ClusterBaselines → their own status, and every namespace when what the namespaces plan
    // from changed (new, spec, deletion). Not on their status writes: the namespace count
    // changes with every new namespace, and each write queued a reconcile of every namespace
    // ahead of the changes that matter (hot-path outliers of 0.1-0.5 s after namespaces came).
    let t = triggers.clone();
    let planned: Mutex<HashMap<String, CbVersion>> = Mutex::default();
    let (task, ready) = watches::watch_into(
        Api::<ClusterBaseline>::all(client.clone()),
        watches::config(),
        cb_writer,
        move |ev| match ev {
            Event::Apply(c) | Event::InitApply(c) => {
                watches::send(&t.cluster_baselines, ObjectRef::from_obj(c));
                let version = CbVersion::of(c);
                let changed = planned
                    .lock()
                    .map(|mut m| m.insert(c.name_any(), version.clone()) != Some(version))
                    .unwrap_or(true);
                if changed {
                    t.all_namespaces();
                }
            }
            Event::Delete(c) => {
                if let Ok(mut m) = planned.lock() {
                    m.remove(&c.name_any());
                }
                t.all_namespaces();
            }
            Event::Init | Event::InitDone => {}
        },
    );
    tasks.push(task);
    synced.push(ready);

    // The users' own NetworkPolicies → their namespace (the Undercut condition).
    let t = triggers.clone();
    let user_policy_index = NsIndex::default();
    let index = user_policy_index.clone();
    let (user_policies, task, ready) = watches::watch(
        Api::<NetworkPolicy>::all(client.clone()),
        watches::config().labels(&format!("{MANAGED_BY}!={MANAGER}")),
        move |ev| {
            index.observe(ev);
            match ev {
                Event::Apply(p) | Event::Delete(p) => {
                    t.namespace(&p.namespace().unwrap_or_default())
                }
                Event::InitApply(_) | Event::Init | Event::InitDone => {}
            }
        },
    );
    tasks.push(task);
    synced.push(ready);

    // The API server's endpoints, for the kubeAPIServer peer on the standard backend.
    let api_server: Arc<RwLock<Vec<(IpAddr, u16)>>> = Arc::default();
    let (t, addresses) = (triggers.clone(), api_server.clone());
    let (_endpoints, task, ready) = watches::watch(
        Api::<Endpoints>::namespaced(client.clone(), "default"),
        watches::config().fields("metadata.name=kubernetes"),
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
    let (server_facts, facts_task) =
        super::server_facts::task(client.clone(), triggers.clone()).await;
    tasks.push(facts_task);

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
        cpu: super::cpu::Cpu::default(),
        appnets,
        user_policy_index,
        managed,
        namespaces,
        user_policies,
        cluster_baselines,
        recorder: Recorder::new(client.clone(), reporter),
        operator_namespace: options.operator_namespace,
        default_backend: options.default_backend,
        cluster_cidrs: options.cluster_cidrs,
        detection: detection_rx,
        api_server,
        failures: Arc::default(),
        triggers: triggers.clone(),
        metrics,
        memory,
        retries: retry::Retries::default(),
        server: server_facts,
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
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(DEBOUNCE)
                .concurrency(NAMESPACE_CONCURRENCY),
        )
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
            kube::runtime::controller::Config::default()
                .debounce(CLUSTER_BASELINE_DEBOUNCE)
                .concurrency(CLUSTER_BASELINE_CONCURRENCY),
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
    // The check of flows across namespaces runs beside them, off their write path.
    tokio::select! {
        _ = async { futures::join!(namespaces, cbs) } => {}
        () = super::flows::task(ctx.clone()) => {}
        () = super::reports::task(ctx.clone()) => {}
    }
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

/// What the namespaces plan from in a ClusterBaseline: its identity, spec generation and
/// whether it is being deleted (its status is not among them).
#[derive(Clone, Debug, PartialEq, Eq)]
struct CbVersion(Option<String>, Option<i64>, bool);

impl CbVersion {
    fn of(c: &ClusterBaseline) -> CbVersion {
        CbVersion(
            c.uid(),
            c.meta().generation,
            c.meta().deletion_timestamp.is_some(),
        )
    }
}

/// Whether `a` is exactly what this process's last status write of it returned (its
/// resourceVersion is the one that write got).
fn own_status_write(
    written: &Mutex<std::collections::HashMap<String, (u64, u64)>>,
    a: &AppNetwork,
) -> bool {
    let (Some(uid), Some(rv)) = (
        a.uid(),
        a.resource_version().and_then(|rv| rv.parse::<u64>().ok()),
    ) else {
        return false;
    };
    written
        .lock()
        .ok()
        .and_then(|w| w.get(&uid).map(|(ours, _)| *ours == rv))
        .unwrap_or(false)
}
