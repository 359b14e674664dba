//! Watches: the caches the controllers read, and the routing of watch events to the keys they
//! concern. One generic helper ([`watch`]) drives every watch; [`Triggers`] says which
//! namespace or ClusterBaseline an event touches.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Namespace};
use kube::api::DynamicObject;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::apply::{api_resource, Owned};
use crate::crd::{AppNetwork, ClusterBaseline};
use crate::render::ObjectKind;
use crate::vocab::{CLUSTER_BASELINE_LABEL, MANAGED_BY, MANAGER};

/// Objects per page of a watch's initial list (kube's default is 500). A page is held whole,
/// parsed, while its objects go into the caches: 500 objects with managed fields took about
/// 9 MiB at once (heaptrack of a restart at 1,000 namespaces), which the allocator keeps as the
/// process's footprint afterwards. 100 costs a few more list requests (one per 100 objects).
pub(crate) const LIST_PAGE: u32 = 100;

/// The watcher configuration every watch starts from.
pub(crate) fn config() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE)
}

/// Retry delays of every watch: 200 ms, doubling to 2 s (plus up to 25% jitter), back to 200 ms
/// after any event. kube's default grows to 30 s and a `410 Gone` does not reset it, so after an
/// API server outage of 8 s the watches resumed up to 25 s later, and hand-deleted policies and
/// new intent waited that long (tests/chaos, RELIABILITY.md).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WatchBackoff(Duration);

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

/// Values by namespace, then object name, kept by a watch, relists included (a relist
/// replaces everything at its end, so objects deleted while the watch was down go).
pub struct NsMap<V> {
    live: RwLock<HashMap<String, BTreeMap<String, V>>>,
    relist: Mutex<Option<HashMap<String, BTreeMap<String, V>>>>,
}

impl<V> Default for NsMap<V> {
    fn default() -> Self {
        NsMap {
            live: RwLock::default(),
            relist: Mutex::default(),
        }
    }
}

impl<V: Clone> NsMap<V> {
    /// Follows one watch event; `entry` gives an object's namespace ("" when cluster-scoped),
    /// name and value.
    pub fn observe<K>(&self, ev: &Event<K>, entry: impl Fn(&K) -> (String, String, V)) {
        match ev {
            Event::Apply(o) => {
                let (ns, name, v) = entry(o);
                if let Ok(mut m) = self.live.write() {
                    m.entry(ns).or_default().insert(name, v);
                }
            }
            Event::Delete(o) => {
                let (ns, name, _) = entry(o);
                if let Ok(mut m) = self.live.write() {
                    if let Some(objects) = m.get_mut(&ns) {
                        objects.remove(&name);
                        if objects.is_empty() {
                            m.remove(&ns);
                        }
                    }
                }
            }
            Event::Init => {
                if let Ok(mut r) = self.relist.lock() {
                    *r = Some(HashMap::new());
                }
            }
            Event::InitApply(o) => {
                let (ns, name, v) = entry(o);
                if let Ok(mut r) = self.relist.lock() {
                    if let Some(m) = r.as_mut() {
                        m.entry(ns).or_default().insert(name, v);
                    }
                }
            }
            Event::InitDone => {
                let fresh = self.relist.lock().ok().and_then(|mut r| r.take());
                if let (Some(fresh), Ok(mut m)) = (fresh, self.live.write()) {
                    *m = fresh;
                }
            }
        }
    }

    /// The values in `namespace`, in name order.
    pub fn in_namespace(&self, namespace: &str) -> Vec<V> {
        self.live
            .read()
            .ok()
            .and_then(|m| m.get(namespace).map(|o| o.values().cloned().collect()))
            .unwrap_or_default()
    }

    /// The names in `namespace`.
    pub fn names(&self, namespace: &str) -> Vec<String> {
        self.live
            .read()
            .ok()
            .and_then(|m| m.get(namespace).map(|o| o.keys().cloned().collect()))
            .unwrap_or_default()
    }

    /// The value of `namespace`/`name`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<V> {
        self.live.read().ok()?.get(namespace)?.get(name).cloned()
    }

    /// Every (namespace, name).
    pub fn keys(&self) -> Vec<(String, String)> {
        self.live
            .read()
            .map(|m| {
                m.iter()
                    .flat_map(|(ns, o)| o.keys().map(|n| (ns.clone(), n.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every value.
    pub fn all(&self) -> Vec<V> {
        self.live
            .read()
            .map(|m| m.values().flat_map(|o| o.values().cloned()).collect())
            .unwrap_or_default()
    }
}

/// The AppNetworks, by namespace and name. Each is kept as the JSON text the API server sent
/// (managed fields and kubectl's last-applied copy left out, as in every cache) and decoded
/// when read: the typed object with its status took 10.7 KB of heap in 64 allocations, its
/// text about 2 KB in one (`cargo bench --bench memory`), and a namespace reconcile reads its
/// few AppNetworks once. The largest part of the operator's memory per namespace before.
#[derive(Clone, Default)]
pub struct Apps(Arc<NsMap<Arc<str>>>);

impl Apps {
    /// Follows one watch event.
    pub fn observe(&self, ev: &Event<AppNetwork>) {
        self.0.observe(ev, |a: &AppNetwork| {
            let text = serde_json::to_string(a).unwrap_or_else(|e| {
                // Cannot happen for a type that was just deserialised; an empty entry decodes
                // to nothing, as if the AppNetwork were gone until its next event.
                tracing::warn!(error = %e, app = %a.name_any(), "cannot keep an AppNetwork");
                String::new()
            });
            (
                a.namespace().unwrap_or_default(),
                a.name_any(),
                Arc::from(text),
            )
        });
    }

    /// The AppNetwork `namespace`/`name`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<AppNetwork>> {
        decode(&self.0.get(namespace, name)?)
    }

    /// The AppNetworks in `namespace`, in name order.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<AppNetwork>> {
        self.0
            .in_namespace(namespace)
            .iter()
            .filter_map(|t| decode(t))
            .collect()
    }

    /// Every AppNetwork, decoded one at a time as the iterator advances (decoding them all at
    /// once would hold every typed AppNetwork again, the peak this cache is there to avoid).
    pub fn each(&self) -> impl Iterator<Item = Arc<AppNetwork>> {
        self.0.all().into_iter().filter_map(|t| decode(&t))
    }

    /// Every AppNetwork's (namespace, name), without decoding any.
    pub fn keys(&self) -> Vec<(String, String)> {
        self.0.keys()
    }
}

fn decode(text: &str) -> Option<Arc<AppNetwork>> {
    serde_json::from_str(text).ok().map(Arc::new)
}

/// The names of the cached objects of one kind, by namespace: a reconcile of one namespace reads
/// its own objects instead of scanning every object of the cluster (which made a cold start grow
/// with the square of the namespace count). Kept by the watch that fills the store.
#[derive(Clone, Default)]
pub struct NsIndex(Arc<NsMap<()>>);

impl NsIndex {
    /// The names of the objects in `namespace`.
    pub fn names(&self, namespace: &str) -> Vec<String> {
        self.0.names(namespace)
    }

    /// Follows one watch event.
    pub fn observe<K: Resource>(&self, ev: &Event<K>) {
        self.0.observe(ev, |o: &K| {
            (
                o.meta().namespace.clone().unwrap_or_default(),
                o.meta().name.clone().unwrap_or_default(),
                (),
            )
        });
    }
}

/// One managed kind's cache: what tierflow keeps of each object ([`Owned`]), by namespace
/// (cluster-scoped objects under "").
type KindCache = NsMap<Arc<Owned>>;

/// The caches of every kind of object tierflow writes (only kinds whose API is served are
/// watched), with managed fields stripped, and what this process last wrote to each object.
#[derive(Clone, Default)]
pub struct Managed {
    stores: Arc<RwLock<BTreeMap<ObjectKind, Arc<KindCache>>>>,
    written: Arc<Mutex<HashMap<String, Written>>>,
}

/// What this process last wrote to an object: the resourceVersion the write returned and a
/// digest of the body it sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// The resourceVersion the API server gave the object.
    pub resource_version: u64,
    /// A digest of the desired body that was written.
    pub digest: u64,
    /// The object was deleted since (by someone else): the next write of the same body is a
    /// repair, and nothing may be skipped.
    pub gone: bool,
}

/// The key of an object in [`Managed`]'s record of writes.
pub fn object_key(kind: ObjectKind, namespace: Option<&str>, name: &str) -> String {
    format!("{}/{}/{}", kind.kind(), namespace.unwrap_or_default(), name)
}

impl Managed {
    fn cache(&self, kind: ObjectKind) -> Option<Arc<KindCache>> {
        self.stores.read().ok()?.get(&kind).cloned()
    }

    /// The cached objects of `kind` in `namespace`.
    pub fn in_namespace(&self, kind: ObjectKind, namespace: &str) -> Vec<Arc<Owned>> {
        self.cache(kind)
            .map(|c| c.in_namespace(namespace))
            .unwrap_or_default()
    }

    /// The cached object, if its kind is watched and the object exists.
    pub fn get(&self, kind: ObjectKind, namespace: Option<&str>, name: &str) -> Option<Arc<Owned>> {
        let ns = if kind.namespaced() {
            namespace.unwrap_or_default()
        } else {
            ""
        };
        self.cache(kind)?.get(ns, name)
    }

    /// Every cached object of `kind`.
    pub fn list(&self, kind: ObjectKind) -> Vec<Arc<Owned>> {
        self.cache(kind).map(|c| c.all()).unwrap_or_default()
    }

    /// The kinds currently watched.
    pub fn kinds(&self) -> Vec<ObjectKind> {
        self.stores
            .read()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// What this process last wrote to the object `key`.
    pub fn written(&self, key: &str) -> Option<Written> {
        self.written.lock().ok()?.get(key).copied()
    }

    /// Records a write; returns the previous record.
    pub fn record(&self, key: String, w: Written) -> Option<Written> {
        self.written.lock().ok()?.insert(key, w)
    }

    /// Forgets the writes to `key` (tierflow deleted it).
    pub fn forget_writes(&self, key: &str) {
        if let Ok(mut m) = self.written.lock() {
            m.remove(key);
        }
    }

    /// Marks the object `key` as deleted (seen in a watch event).
    pub fn deleted(&self, key: &str) {
        if let Ok(mut m) = self.written.lock() {
            if let Some(w) = m.get_mut(key) {
                w.gone = true;
            }
        }
    }

    pub(crate) fn forget(&self, kind: ObjectKind) {
        if let Ok(mut m) = self.stores.write() {
            m.remove(&kind);
        }
    }
}

/// Channels into the two controllers: namespaces (everything an AppNetwork and a namespace
/// baseline need) and ClusterBaselines (their cluster-wide objects and status).
#[derive(Clone)]
pub struct Triggers {
    pub(crate) namespaces: UnboundedSender<ObjectRef<Namespace>>,
    pub(crate) cluster_baselines: UnboundedSender<ObjectRef<ClusterBaseline>>,
    pub(crate) ns_store: Store<Namespace>,
    pub(crate) cb_store: Store<ClusterBaseline>,
}

impl Triggers {
    /// Every namespace and every ClusterBaseline.
    pub fn everything(&self) {
        self.all_namespaces();
        self.all_cluster_baselines();
    }

    /// Every namespace.
    pub fn all_namespaces(&self) {
        trigger_all(&self.ns_store, &self.namespaces);
    }

    /// Every ClusterBaseline (their status counts namespaces).
    pub fn all_cluster_baselines(&self) {
        trigger_all(&self.cb_store, &self.cluster_baselines);
    }

    /// The namespace `ns`.
    pub fn namespace(&self, ns: &str) {
        send(&self.namespaces, ObjectRef::new(ns));
    }

    /// Routes an event about one of tierflow's objects: a namespaced one to its namespace, a
    /// cluster-wide one to its ClusterBaseline. Baselines also change ClusterBaseline coverage.
    pub fn managed(&self, obj: &DynamicObject) {
        match obj.namespace() {
            Some(ns) => {
                self.namespace(&ns);
                if obj.name_any() == crate::vocab::BASELINE_NAME {
                    self.all_cluster_baselines();
                }
            }
            None => {
                // Namespaces keep their share of a ClusterBaseline until its cluster-wide object
                // is in place, and drop it then.
                self.all_namespaces();
                let label = obj.labels().get(CLUSTER_BASELINE_LABEL).cloned();
                for cb in self.cb_store.state() {
                    if Some(crate::core::names::label_value(&cb.name_any())) == label {
                        send(&self.cluster_baselines, ObjectRef::from_obj(cb.as_ref()));
                    }
                }
            }
        }
    }
}

/// A reflector-backed watch of `K`: the store it fills, the task that drives it (calling
/// `on_event` for every event), and a flag that turns true after the first full list.
pub fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    on_event: impl FnMut(&Event<K>) + Send + 'static,
) -> (Store<K>, JoinHandle<()>, watch::Receiver<bool>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let (task, ready) = watch_into(api, config, writer, on_event);
    (store, task, ready)
}

/// [`watch`] into a store made beforehand (when the routing of events needs the store itself).
pub fn watch_into<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    on_event: impl FnMut(&Event<K>) + Send + 'static,
) -> (JoinHandle<()>, watch::Receiver<bool>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    fan_out(stripped(api, config).reflect(writer), on_event)
}

/// A watch of `K` without a store of kube's (for caches of their own, like [`Apps`]): managed
/// fields stripped, every event handed to `on_event`; the flag turns true after the first full
/// list.
pub fn watch_events<K>(
    api: Api<K>,
    config: watcher::Config,
    on_event: impl FnMut(&Event<K>) + Send + 'static,
) -> (JoinHandle<()>, watch::Receiver<bool>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    fan_out(stripped(api, config), on_event)
}

/// The events of a watch of `K`, retried with [`WatchBackoff`], managed fields stripped.
fn stripped<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, config)
        .backoff(WatchBackoff::default())
        .map_ok(|ev| ev.modify(strip_managed_fields))
}

/// Managed fields are never compared: keeping them would double the memory of every cache.
/// The same for the copy of the whole object `kubectl apply` (client-side) keeps in an
/// annotation: it can be as large as the spec itself and nothing reads it.
fn strip_managed_fields<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Starts the watch and cache of one managed kind (objects with tierflow's label only). The
/// cache keeps [`Owned`], not the objects.
pub(crate) fn watch_kind(
    client: &Client,
    kind: ObjectKind,
    managed: &Managed,
    triggers: &Triggers,
) -> (JoinHandle<()>, watch::Receiver<bool>) {
    let ar = api_resource(kind);
    let cache = Arc::new(KindCache::default());
    if let Ok(mut m) = managed.stores.write() {
        m.insert(kind, cache.clone());
    }
    let cfg = config().labels(&format!("{MANAGED_BY}={MANAGER}"));
    let stream = watcher::watcher(Api::<DynamicObject>::all_with(client.clone(), &ar), cfg)
        .backoff(WatchBackoff::default());
    let t = triggers.clone();
    let m = managed.clone();
    fan_out(stream, move |ev| {
        cache.observe(ev, |o: &DynamicObject| {
            let owned = Owned::of(kind, o);
            (
                owned.namespace.clone().unwrap_or_default(),
                owned.name.clone(),
                Arc::new(owned),
            )
        });
        match ev {
            Event::Delete(o) => {
                m.deleted(&object_key(kind, o.namespace().as_deref(), &o.name_any()));
                t.managed(o)
            }
            Event::Apply(o) | Event::InitApply(o) => t.managed(o),
            // After a relist, deletions that happened while the watch was down produce no event:
            // look at everything once.
            Event::InitDone => t.everything(),
            Event::Init => {}
        }
    })
}

pub(crate) fn send<K: Resource>(tx: &UnboundedSender<ObjectRef<K>>, r: ObjectRef<K>)
where
    K::DynamicType: std::hash::Hash + Eq,
{
    // A closed channel means the controller is gone (shutdown); nothing to do.
    let _ = tx.unbounded_send(r);
}

/// Drives a reflector stream, handing every event to `on_event`; the returned flag turns true
/// once the first full list has been stored.
pub(crate) fn fan_out<K, S>(
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

pub(crate) fn trigger_all<K>(store: &Store<K>, tx: &UnboundedSender<ObjectRef<K>>)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    for o in store.state() {
        send(tx, ObjectRef::from_obj(o.as_ref()));
    }
}

/// The API server's endpoints from the `default/kubernetes` Endpoints (TCP ports).
pub(crate) fn endpoints(e: &Endpoints) -> Vec<(IpAddr, u16)> {
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
