//! The running operator: watches, caches, CNI detection and three controllers fed from them.
//!
//! - The AppNetwork controller renders and applies the per-tier objects of one AppNetwork and
//!   records, in its status, the objects it wants, the backend they are in and the baseline it
//!   asks for.
//! - The namespace controller owns everything a namespace shares: it merges every input's
//!   baseline wish into one `tierflow-baseline` per backend, applies it, and prunes objects no
//!   longer wanted. So the write order is: tier allows, then the baseline, then prune.
//! - The ClusterBaseline controller writes the one cluster-wide object on Calico and Cilium and
//!   reports coverage.
//!
//! Watch events are fanned out by hand (deletes included, which shared-store subscriptions do
//! not forward) so that a hand-deleted object is restored at once.

pub mod appnetwork;
pub mod clusterbaseline;
pub mod detect;
pub mod namespace;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::channel::mpsc::{unbounded, UnboundedSender};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Namespace};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::apply::api_resource;
use crate::crd::{AppNetwork, ClusterBaseline, NamespaceFailure};
use crate::error::{Error, Result};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::model::{Backend, BackendRequest};
use crate::render::{
    Env, ObjectKind, CLUSTER_BASELINE_LABEL, MANAGED_BY, MANAGER, ROLE_BASELINE,
    ROLE_CLUSTER_BASELINE, ROLE_LABEL,
};
use detect::Detection;

/// The caches of every kind of object tierflow writes (only kinds whose CRDs are installed are
/// watched).
#[derive(Clone, Default)]
pub struct Managed {
    stores: Arc<RwLock<BTreeMap<ObjectKind, Store<DynamicObject>>>>,
}

impl Managed {
    fn store(&self, kind: ObjectKind) -> Option<Store<DynamicObject>> {
        self.stores.read().ok()?.get(&kind).cloned()
    }

    /// The cached object, if its kind is watched and the object exists.
    pub fn get(
        &self,
        kind: ObjectKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<DynamicObject>> {
        let mut r = ObjectRef::new_with(name, api_resource(kind));
        if let (true, Some(ns)) = (kind.namespaced(), namespace) {
            r = r.within(ns);
        }
        self.store(kind)?.get(&r)
    }

    /// Every cached object of `kind`.
    pub fn list(&self, kind: ObjectKind) -> Vec<Arc<DynamicObject>> {
        self.store(kind).map(|s| s.state()).unwrap_or_default()
    }

    /// The kinds currently watched.
    pub fn kinds(&self) -> Vec<ObjectKind> {
        self.stores
            .read()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }
}

/// Everything a reconcile needs: the client and the caches.
#[derive(Clone)]
pub struct Context {
    /// The API client (every write goes through `apply`).
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
    /// Asks the ClusterBaseline controller to recompute status.
    pub cluster_baseline_trigger: UnboundedSender<ObjectRef<ClusterBaseline>>,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
}

impl Context {
    /// Asks for the status of every ClusterBaseline to be recomputed.
    pub fn trigger_cluster_baselines(&self) {
        trigger_all(&self.cluster_baselines, &self.cluster_baseline_trigger);
    }

    /// The current detection.
    pub fn detected(&self) -> Detection {
        self.detection.borrow().clone()
    }

    /// The backend an object asking for `req` gets.
    pub fn resolve(&self, req: BackendRequest) -> Backend {
        match req {
            BackendRequest::Fixed(b) => b,
            BackendRequest::Auto => self
                .default_backend
                .unwrap_or_else(|| self.detection.borrow().backend),
        }
    }

    /// Whether the API server serves `kind` now (its CRD exists and is not being deleted).
    /// Objects of a kind that is not served are never written: while a CRD is being deleted the
    /// API server removes its objects, and writing them again would fight it.
    pub fn served(&self, kind: ObjectKind) -> bool {
        self.detection.borrow().kinds.contains(&kind)
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
                .unwrap_or_else(|_| "tierflow-system".into()),
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

/// How often detection is recomputed even without events (the Calico API server is found by
/// discovery, which has no watch).
const REDETECT: Duration = Duration::from_secs(30);

/// Retry delays of every watch: 200 ms, doubling to 2 s (plus up to 25% jitter), back to 200 ms
/// after any event. kube's default grows to 30 s and a `410 Gone` does not reset it, so after an
/// API server outage of 8 s the watches resumed up to 25 s later, and hand-deleted policies and
/// new intent waited that long (tests/chaos, RELIABILITY.md).
#[derive(Clone, Copy, Debug)]
struct WatchBackoff(Duration);

impl WatchBackoff {
    const MIN: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(2);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff(Self::MIN)
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.subsec_nanos() % 1000)
            .unwrap_or(0);
        Some(delay + delay * jitter / 4000)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.0 = Self::MIN;
    }
}

/// Channels into the controllers.
#[derive(Clone)]
struct Triggers {
    apps: UnboundedSender<ObjectRef<AppNetwork>>,
    namespaces: UnboundedSender<ObjectRef<Namespace>>,
    cluster_baselines: UnboundedSender<ObjectRef<ClusterBaseline>>,
    app_store: Store<AppNetwork>,
    ns_store: Store<Namespace>,
    cb_store: Store<ClusterBaseline>,
}

impl Triggers {
    fn everything(&self) {
        trigger_all(&self.app_store, &self.apps);
        trigger_all(&self.ns_store, &self.namespaces);
        trigger_all(&self.cb_store, &self.cluster_baselines);
    }

    /// Routes an event about a managed object to whoever owns it.
    fn managed(&self, obj: &DynamicObject) {
        if let Some(owner) = owner_app(obj) {
            send(&self.apps, owner);
        }
        match obj.labels().get(ROLE_LABEL).map(String::as_str) {
            Some(ROLE_CLUSTER_BASELINE) => {
                let label = obj
                    .labels()
                    .get(CLUSTER_BASELINE_LABEL)
                    .cloned()
                    .unwrap_or_default();
                for cb in self.cb_store.state() {
                    if crate::core::names::label_value(&cb.name_any()) == label {
                        send(&self.cluster_baselines, ObjectRef::from_obj(cb.as_ref()));
                    }
                }
            }
            Some(ROLE_BASELINE) => {
                send(&self.namespaces, ns_ref(obj));
                trigger_all(&self.cb_store, &self.cluster_baselines);
            }
            _ => send(&self.namespaces, ns_ref(obj)),
        }
    }
}

/// Starts the watches and controllers on the current runtime and returns once every cache has
/// synced and the CNI has been detected.
pub async fn start(client: Client, options: Options) -> Result<Running> {
    let client = match &options.leadership {
        Some(l) => fenced(client, l.clone()),
        None => client,
    };
    let (appnets, appnet_w) = reflector::store::<AppNetwork>();
    let (namespaces, ns_w) = reflector::store::<Namespace>();
    let (cluster_baselines, cb_w) = reflector::store::<ClusterBaseline>();
    let (user_policies, user_w) = reflector::store::<NetworkPolicy>();
    let (ns_tx, ns_rx) = unbounded::<ObjectRef<Namespace>>();
    let (app_tx, app_rx) = unbounded::<ObjectRef<AppNetwork>>();
    let (cb_tx, cb_rx) = unbounded::<ObjectRef<ClusterBaseline>>();
    let triggers = Triggers {
        apps: app_tx,
        namespaces: ns_tx,
        cluster_baselines: cb_tx,
        app_store: appnets.clone(),
        ns_store: namespaces.clone(),
        cb_store: cluster_baselines.clone(),
    };
    let managed = Managed::default();
    let mut tasks = Vec::new();
    let mut synced = Vec::new();

    // AppNetworks → the AppNetwork itself, and its namespace.
    {
        let t = triggers.clone();
        let stream = watcher::watcher(
            Api::<AppNetwork>::all(client.clone()),
            watcher::Config::default(),
        )
        .backoff(WatchBackoff::default())
        .reflect(appnet_w);
        let (task, ready) = fan_out(stream, move |ev| match ev {
            Event::Apply(a) | Event::InitApply(a) => {
                send(&t.apps, ObjectRef::from_obj(a));
                send(&t.namespaces, ns_ref(a));
            }
            Event::Delete(a) => send(&t.namespaces, ns_ref(a)),
            Event::Init | Event::InitDone => {}
        });
        tasks.push(task);
        synced.push(ready);
    }

    // Namespaces → themselves (new namespaces, label changes) and ClusterBaseline status.
    {
        let t = triggers.clone();
        let stream = watcher::watcher(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
        )
        .backoff(WatchBackoff::default())
        .reflect(ns_w);
        let (task, ready) = fan_out(stream, move |ev| match ev {
            Event::Apply(n) | Event::InitApply(n) => {
                send(&t.namespaces, ObjectRef::from_obj(n));
                trigger_all(&t.cb_store, &t.cluster_baselines);
            }
            Event::Delete(_) => trigger_all(&t.cb_store, &t.cluster_baselines),
            Event::Init | Event::InitDone => {}
        });
        tasks.push(task);
        synced.push(ready);
    }

    // ClusterBaselines → every namespace (coverage may change) and their own status.
    {
        let t = triggers.clone();
        let stream = watcher::watcher(
            Api::<ClusterBaseline>::all(client.clone()),
            watcher::Config::default(),
        )
        .backoff(WatchBackoff::default())
        .reflect(cb_w);
        let (task, ready) = fan_out(stream, move |ev| match ev {
            Event::Apply(c) | Event::InitApply(c) => {
                send(&t.cluster_baselines, ObjectRef::from_obj(c));
                trigger_all(&t.ns_store, &t.namespaces);
            }
            Event::Delete(_) => trigger_all(&t.ns_store, &t.namespaces),
            Event::Init | Event::InitDone => {}
        });
        tasks.push(task);
        synced.push(ready);
    }

    // The users' own NetworkPolicies → the AppNetworks of their namespace (Undercut condition).
    {
        let t = triggers.clone();
        let cfg = watcher::Config::default().labels(&format!("{MANAGED_BY}!={MANAGER}"));
        let stream = watcher::watcher(Api::<NetworkPolicy>::all(client.clone()), cfg)
            .backoff(WatchBackoff::default())
            .reflect(user_w);
        let (task, ready) = fan_out(stream, move |ev| match ev {
            Event::Apply(p) | Event::Delete(p) => {
                let ns = p.namespace();
                for a in t.app_store.state() {
                    if a.namespace() == ns {
                        send(&t.apps, ObjectRef::from_obj(a.as_ref()));
                    }
                }
            }
            Event::InitApply(_) | Event::Init | Event::InitDone => {}
        });
        tasks.push(task);
        synced.push(ready);
    }

    // The API server's endpoints, for the kubeAPIServer peer on the standard backend.
    let api_server: Arc<RwLock<Vec<(IpAddr, u16)>>> = Arc::default();
    {
        let (t, api_server) = (triggers.clone(), api_server.clone());
        let cfg = watcher::Config::default().fields("metadata.name=kubernetes");
        let stream = watcher::watcher(Api::<Endpoints>::namespaced(client.clone(), "default"), cfg)
            .backoff(WatchBackoff::default());
        let (task, ready) = fan_out(stream, move |ev| {
            let found = match ev {
                Event::Apply(e) | Event::InitApply(e) => endpoints(e),
                Event::Delete(_) => Vec::new(),
                Event::Init | Event::InitDone => return,
            };
            let changed = api_server
                .write()
                .map(|mut v| std::mem::replace(&mut *v, found.clone()) != found);
            if changed.unwrap_or(false) {
                trigger_all(&t.app_store, &t.apps);
                trigger_all(&t.ns_store, &t.namespaces);
            }
        });
        tasks.push(task);
        synced.push(ready);
    }

    // CNI detection, which also starts and stops the watches of CRD-backed kinds.
    let (detection_tx, detection_rx) = watch::channel(Detection::default());
    let (detect_task, detected) = detection(
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
        appnets: appnets.clone(),
        managed,
        namespaces: namespaces.clone(),
        user_policies,
        cluster_baselines: cluster_baselines.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        operator_namespace: options.operator_namespace,
        default_backend: options.default_backend,
        detection: detection_rx,
        api_server,
        failures: Arc::default(),
        cluster_baseline_trigger: triggers.cluster_baselines.clone(),
        metrics,
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
        run_controllers(ctx, app_rx, ns_rx, cb_rx, triggers).await;
    }));
    Ok(Running { context, tasks })
}

/// With leader election, every write goes through this fence: refused unless this replica leads
/// and renewed its lease recently enough (`Leadership::write_until`). Without it, a leader paused
/// past its lease (SIGSTOP, a long stall) that wakes up after another replica took over wrote
/// before its elector noticed (tests/chaos `failover-sigstop`).
fn fenced(inner: Client, leadership: watch::Receiver<Leadership>) -> Client {
    #[derive(Clone)]
    struct Fenced {
        inner: Client,
        leadership: watch::Receiver<Leadership>,
    }
    impl tower::Service<http::Request<kube::client::Body>> for Fenced {
        type Response = http::Response<kube::client::Body>;
        type Error = kube::Error;
        type Future =
            futures::future::BoxFuture<'static, std::result::Result<Self::Response, Self::Error>>;

        fn poll_ready(
            &mut self,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::result::Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
            let l = *self.leadership.borrow();
            let may_write = l.leading
                && l.write_until
                    .is_some_and(|t| tokio::time::Instant::now() < t);
            if req.method() != http::Method::GET && !may_write {
                return Box::pin(async {
                    Err(kube::Error::Service(
                        "write refused: this replica does not hold a current leader lease".into(),
                    ))
                });
            }
            let inner = self.inner.clone();
            Box::pin(async move { inner.send(req).await })
        }
    }
    let ns = inner.default_namespace().to_string();
    Client::new(Fenced { inner, leadership }, ns)
}

/// Runs the three controllers (the only writers) until they end.
async fn run_controllers(
    ctx: Arc<Context>,
    app_rx: futures::channel::mpsc::UnboundedReceiver<ObjectRef<AppNetwork>>,
    ns_rx: futures::channel::mpsc::UnboundedReceiver<ObjectRef<Namespace>>,
    cb_rx: futures::channel::mpsc::UnboundedReceiver<ObjectRef<ClusterBaseline>>,
    triggers: Triggers,
) {
    let config = kube::runtime::controller::Config::default().debounce(DEBOUNCE);
    let apps = Controller::for_stream(futures::stream::pending(), ctx.appnets.clone())
        .reconcile_on(app_rx)
        .with_config(config.clone())
        .run(
            |obj, ctx: Arc<Context>| async move {
                let started = std::time::Instant::now();
                let r = appnetwork::reconcile(obj, ctx.clone()).await;
                ctx.metrics.observe("appnetwork", started, &r);
                r
            },
            appnetwork::error_policy,
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
                let r = clusterbaseline::reconcile(obj, ctx.clone()).await;
                ctx.metrics.observe("clusterbaseline", started, &r);
                r
            },
            clusterbaseline::error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let namespaces = Controller::for_stream(futures::stream::pending(), ctx.namespaces.clone())
        .reconcile_on(ns_rx)
        .with_config(config)
        .run(
            |obj, ctx: Arc<Context>| async move {
                let started = std::time::Instant::now();
                let r = namespace::reconcile(obj, ctx.clone()).await;
                ctx.metrics.observe("namespace", started, &r);
                r
            },
            namespace::error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    // Everything once, now that the controllers listen (a standby that takes over catches up).
    triggers.everything();
    futures::join!(apps, cbs, namespaces);
}

fn endpoints(e: &Endpoints) -> Vec<(IpAddr, u16)> {
    let mut out = Vec::new();
    for subset in e.subsets.iter().flatten() {
        let ports: Vec<u16> = subset
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| u16::try_from(p.port).ok())
            .collect();
        for a in subset.addresses.iter().flatten() {
            if let Ok(ip) = a.ip.parse::<IpAddr>() {
                out.extend(ports.iter().map(|p| (ip, *p)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The detection task: watches CRDs and the CNI DaemonSets (metadata only), decides, and keeps a
/// watch running for every managed kind whose CRD is installed. The returned flag turns true once
/// the first decision is made and the watches it needs have synced.
fn detection(
    client: Client,
    managed: Managed,
    triggers: Triggers,
    tx: watch::Sender<Detection>,
) -> (JoinHandle<()>, watch::Receiver<bool>) {
    let (ready_tx, ready_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        enum Input {
            Crd(Event<PartialObjectMeta<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>>),
            Ds(String, Event<PartialObjectMeta<k8s_openapi::api::apps::v1::DaemonSet>>),
            Tick,
        }
        use k8s_openapi::api::apps::v1::DaemonSet;
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let crds = watcher::watcher(
            Api::<PartialObjectMeta<CustomResourceDefinition>>::all(client.clone()),
            watcher::Config::default(),
        )
        .backoff(WatchBackoff::default())
        .filter_map(|e| async move { e.ok().map(Input::Crd) })
        .boxed();
        let mut inputs = vec![crds];
        for ns in ["kube-system", "kube-flannel"] {
            let s = watcher::watcher(
                Api::<PartialObjectMeta<DaemonSet>>::namespaced(client.clone(), ns),
                watcher::Config::default(),
            )
            .backoff(WatchBackoff::default())
            .filter_map(move |e| async move { e.ok().map(|e| Input::Ds(ns.to_string(), e)) })
            .boxed();
            inputs.push(s);
        }
        inputs.push(
            futures::stream::unfold((), |()| async {
                tokio::time::sleep(REDETECT).await;
                Some((Input::Tick, ()))
            })
            .boxed(),
        );
        let mut inputs = futures::stream::select_all(inputs);

        let mut crd_names: BTreeSet<String> = BTreeSet::new();
        let mut crd_init: BTreeSet<String> = BTreeSet::new();
        let mut daemonsets: BTreeSet<(String, String)> = BTreeSet::new();
        let mut ds_init: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        let mut listed: BTreeSet<String> = BTreeSet::new(); // which inputs finished their first list
        let mut watches: HashMap<ObjectKind, JoinHandle<()>> = HashMap::new();
        let mut current: Option<Detection> = None;

        while let Some(input) = inputs.next().await {
            match input {
                Input::Crd(ev) => match ev {
                    Event::Init => crd_init.clear(),
                    Event::InitApply(o) => {
                        if o.metadata.deletion_timestamp.is_none() {
                            crd_init.insert(o.name_any());
                        }
                    }
                    Event::InitDone => {
                        crd_names = std::mem::take(&mut crd_init);
                        listed.insert("crds".into());
                    }
                    // A CRD being deleted is going away with every object of its kind.
                    Event::Apply(o) if o.metadata.deletion_timestamp.is_some() => {
                        crd_names.remove(&o.name_any());
                    }
                    Event::Apply(o) => {
                        crd_names.insert(o.name_any());
                    }
                    Event::Delete(o) => {
                        crd_names.remove(&o.name_any());
                    }
                },
                Input::Ds(ns, ev) => match ev {
                    Event::Init => {
                        ds_init.insert(ns.clone(), BTreeSet::new());
                    }
                    Event::InitApply(o) => {
                        ds_init
                            .entry(ns.clone())
                            .or_default()
                            .insert((ns.clone(), o.name_any()));
                    }
                    Event::InitDone => {
                        daemonsets.retain(|(n, _)| n != &ns);
                        daemonsets.extend(ds_init.remove(&ns).unwrap_or_default());
                        listed.insert(ns);
                    }
                    Event::Apply(o) => {
                        daemonsets.insert((ns, o.name_any()));
                    }
                    Event::Delete(o) => {
                        daemonsets.remove(&(ns, o.name_any()));
                    }
                },
                Input::Tick => {}
            }
            if listed.len() < 3 {
                continue;
            }
            let calico_api = calico_api_resources(&client, &crd_names).await;
            let d = detect::decide(&crd_names, &daemonsets, &calico_api);
            if current.as_ref() == Some(&d) {
                continue;
            }
            tracing::info!(cni = d.cni.as_str(), backend = d.backend.as_str(), reason = %d.reason, "CNI detection");
            // Watch every managed kind that can exist now; stop watching kinds that went away.
            let mut new_watches = Vec::new();
            for kind in ObjectKind::ALL {
                let wanted = d.kinds.contains(&kind);
                match (wanted, watches.contains_key(&kind)) {
                    (true, false) => {
                        let (task, ready) = watch_kind(&client, kind, &managed, &triggers);
                        watches.insert(kind, task);
                        new_watches.push(ready);
                    }
                    (false, true) => {
                        if let Some(t) = watches.remove(&kind) {
                            t.abort();
                        }
                        if let Ok(mut m) = managed.stores.write() {
                            m.remove(&kind);
                        }
                    }
                    _ => {}
                }
            }
            for mut r in new_watches {
                let _ =
                    tokio::time::timeout(Duration::from_secs(30), r.wait_for(|ready| *ready)).await;
            }
            tx.send_replace(d.clone());
            current = Some(d);
            ready_tx.send_replace(true);
            triggers.everything();
        }
    });
    (task, ready_rx)
}

/// The `plural.projectcalico.org` resources served under `projectcalico.org/v3` that are not
/// CRDs (that is, by the Calico API server), from discovery.
async fn calico_api_resources(client: &Client, crds: &BTreeSet<String>) -> BTreeSet<String> {
    let Ok(req) = http::Request::get("/apis/projectcalico.org/v3").body(Vec::new()) else {
        return BTreeSet::new();
    };
    let Ok(list) = client
        .request::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList>(req)
        .await
    else {
        return BTreeSet::new();
    };
    list.resources
        .into_iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| format!("{}.projectcalico.org", r.name))
        .filter(|n| !crds.contains(n))
        .collect()
}

/// Starts the watch and cache of one managed kind (objects with tierflow's label only).
fn watch_kind(
    client: &Client,
    kind: ObjectKind,
    managed: &Managed,
    triggers: &Triggers,
) -> (JoinHandle<()>, watch::Receiver<bool>) {
    let ar = api_resource(kind);
    let writer = reflector::store::Writer::<DynamicObject>::new(ar.clone());
    let store = writer.as_reader();
    if let Ok(mut m) = managed.stores.write() {
        m.insert(kind, store);
    }
    let cfg = watcher::Config::default().labels(&format!("{MANAGED_BY}={MANAGER}"));
    let stream = watcher::watcher(Api::<DynamicObject>::all_with(client.clone(), &ar), cfg)
        .backoff(WatchBackoff::default())
        .reflect(writer);
    let t = triggers.clone();
    fan_out(stream, move |ev| match ev {
        Event::Apply(o) | Event::InitApply(o) | Event::Delete(o) => t.managed(o),
        // After a relist, deletions that happened while the watch was down produce no event:
        // look at everything once.
        Event::InitDone => t.everything(),
        Event::Init => {}
    })
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
