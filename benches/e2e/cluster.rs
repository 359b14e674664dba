//! The bench's side of the API: clients, the objects it creates, what the operator should
//! produce, the API server's request counters, and a watch on every managed NetworkPolicy.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::{json, Value};
use tierflow::crd::{AppNetwork, BackendSpec, ClusterBaseline, ClusterBaselineSpec};
use tierflow::model::{Backend, NamespaceBaseline};
use tierflow::render::{self, Env, Object, ObjectKind, Owner, MANAGED_BY, MANAGER};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::Instant;

/// The label that puts a namespace under the bench's ClusterBaseline.
pub const BENCH_LABEL: &str = "tierflow.dev/bench";
/// The bench's ClusterBaseline.
pub const CLUSTER_BASELINE: &str = "bench";
/// The AppNetwork in every bench namespace (examples/shop.yaml).
pub const APP: &str = "shop";

/// A client for the bench cluster (admin identity). Every client gets its own connection
/// pool, so a client used with concurrency `c` holds at most `c` connections.
pub async fn client(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("{}: {e}", kubeconfig.display()));
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("a valid kubeconfig");
    Client::try_from(cfg).expect("a client")
}

/// The NetworkPolicy API resource.
pub fn np_resource() -> ApiResource {
    tierflow::apply::api_resource(ObjectKind::NetworkPolicy)
}

/// Installs tierflow's CRDs and waits until they are served.
pub async fn install_crds(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::runtime::wait::{await_condition, conditions};
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds_for(client).await {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply("tierflow-bench").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply CRD");
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .expect("CRD established in time")
        .expect("watch CRD");
    }
}

/// A namespace labelled as Kubernetes 1.21+ does, plus `extra` labels.
pub fn namespace(name: &str, extra: &[(&str, &str)]) -> Namespace {
    let mut labels = serde_json::Map::new();
    labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    for (k, v) in extra {
        labels.insert((*k).into(), json!(v));
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}
    }))
    .expect("namespace")
}

/// Creates namespaces with bounded concurrency.
pub async fn create_namespaces(client: &Client, names: &[String], labels: &[(&str, &str)]) {
    let api: Api<Namespace> = Api::all(client.clone());
    futures::stream::iter(names.iter().cloned())
        .map(|n| {
            let api = api.clone();
            let ns = namespace(&n, labels);
            async move {
                match api.create(&PostParams::default(), &ns).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await
        .expect("create namespaces");
}

/// examples/shop.yaml, in namespace `ns`, on the standard backend.
pub fn shop(ns: &str) -> AppNetwork {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = TEXT.get_or_init(|| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shop.yaml");
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    });
    let mut app: AppNetwork = serde_yaml::from_str(text).expect("examples/shop.yaml");
    app.metadata.namespace = Some(ns.to_string());
    app.metadata.name = Some(APP.to_string());
    app.spec.backend = BackendSpec::NetworkPolicy;
    app
}

/// The bench's ClusterBaseline: deny-all + DNS for namespaces labelled [`BENCH_LABEL`].
pub fn cluster_baseline() -> ClusterBaseline {
    let spec: ClusterBaselineSpec = serde_json::from_value(json!({
        "backend": "NetworkPolicy",
        "namespaceSelector": {"matchLabels": {BENCH_LABEL: "true"}},
        "denyIngress": true,
        "denyEgress": true,
    }))
    .expect("ClusterBaseline spec");
    ClusterBaseline::new(CLUSTER_BASELINE, spec)
}

/// The cluster's API server endpoints as the operator sees them (`hack/cluster.sh` sets
/// default/kubernetes to 192.0.2.10:6443), for rendering exactly what it renders.
pub async fn env(client: &Client) -> Env {
    use k8s_openapi::api::core::v1::Endpoints;
    let mut api_server = Vec::new();
    if let Ok(Some(e)) = Api::<Endpoints>::namespaced(client.clone(), "default")
        .get_opt("kubernetes")
        .await
    {
        for s in e.subsets.iter().flatten() {
            for a in s.addresses.iter().flatten() {
                for p in s.ports.iter().flatten() {
                    if p.protocol.as_deref().unwrap_or("TCP") == "TCP" {
                        if let (Ok(ip), Ok(port)) = (a.ip.parse(), u16::try_from(p.port)) {
                            api_server.push((ip, port));
                        }
                    }
                }
            }
        }
    }
    api_server.sort();
    api_server.dedup();
    Env {
        api_server,
        ..Env::default()
    }
}

fn owner_of(kind: &str, name: &str, uid: &str) -> Owner {
    Owner {
        api_version: "tierflow.dev/v1alpha1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
    }
}

/// What the operator must end up with in namespace `ns`: the three tier policies of `app` and
/// the baseline merged from `app` and `cb`, with their owner references (`None` owners: the
/// same objects without owners, for the raw apply loop).
pub fn expected_objects(
    ns: &str,
    app: &AppNetwork,
    cb: Option<&ClusterBaseline>,
    owners: bool,
    env: &Env,
) -> Vec<Object> {
    let model = tierflow::validate::app_network(APP, ns, &app.spec).expect("valid shop");
    let app_owner = owners.then(|| {
        owner_of(
            "AppNetwork",
            APP,
            app.metadata.uid.as_deref().expect("AppNetwork uid"),
        )
    });
    let mut out =
        render::tier_objects(&model, Backend::NetworkPolicy, app_owner.as_ref(), env).objects;
    let mut wishes = vec![model.baseline.clone()];
    let mut baseline_owners: Vec<Owner> = app_owner.into_iter().collect();
    if let Some(cb) = cb {
        let m = tierflow::validate::cluster_baseline(&cb.spec).expect("valid ClusterBaseline");
        wishes.push(m.wish);
        if owners {
            baseline_owners.push(owner_of(
                "ClusterBaseline",
                &cb.name_any(),
                cb.metadata.uid.as_deref().expect("ClusterBaseline uid"),
            ));
        }
    }
    baseline_owners.sort();
    let merged = NamespaceBaseline::merge(&wishes);
    out.extend(render::namespace_baseline(
        ns,
        &merged,
        Backend::NetworkPolicy,
        false,
        &baseline_owners,
        env,
    ));
    out
}

/// `namespace/name` of an object.
pub type Key = (String, String);

/// The key of a rendered object.
pub fn key_of(o: &Object) -> Key {
    (
        o.namespace().unwrap_or_default().to_string(),
        o.name().to_string(),
    )
}

/// Server-side applies `objects` with `concurrency` requests in flight (the raw write limit).
/// Returns the wall time.
pub async fn raw_apply(client: &Client, objects: &[Object], concurrency: usize) -> Duration {
    let ar = np_resource();
    let pp = PatchParams::apply("tierflow-bench-raw").force();
    let started = std::time::Instant::now();
    futures::stream::iter(objects.iter())
        .map(|o| {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), o.namespace().unwrap_or_default(), &ar);
            let pp = pp.clone();
            async move { api.patch(o.name(), &pp, &Patch::Apply(&o.body())).await }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("raw apply");
    started.elapsed()
}

/// The smallest status a kstatus-compliant operator writes for an AppNetwork of `generation`:
/// `observedGeneration` and a Ready condition.
pub fn minimal_status(generation: i64) -> Value {
    json!({
        "apiVersion": "tierflow.dev/v1alpha1",
        "kind": "AppNetwork",
        "status": {
            "observedGeneration": generation,
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "Applied",
                "message": "applied",
                "lastTransitionTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "observedGeneration": generation,
            }],
        },
    })
}

/// The raw limit with statuses: the loop of [`raw_apply`], at the same `concurrency`, applying
/// `objects` AND one status per `(namespace, AppNetwork name, status body)` (each namespace's
/// objects, then its status, in one stream). Returns the wall time.
pub async fn raw_apply_with_statuses(
    client: &Client,
    objects: &[Object],
    statuses: &[(String, String, Value)],
    concurrency: usize,
) -> Duration {
    enum Item<'a> {
        Object(&'a Object),
        Status(&'a str, &'a str, &'a Value),
    }
    let mut by_ns: BTreeMap<&str, Vec<Item>> = BTreeMap::new();
    for o in objects {
        by_ns
            .entry(o.namespace().unwrap_or_default())
            .or_default()
            .push(Item::Object(o));
    }
    for (ns, name, body) in statuses {
        by_ns
            .entry(ns.as_str())
            .or_default()
            .push(Item::Status(ns, name, body));
    }
    let ar = np_resource();
    let pp = PatchParams::apply("tierflow-bench-raw").force();
    let started = std::time::Instant::now();
    futures::stream::iter(by_ns.into_values().flatten())
        .map(|item| {
            let pp = pp.clone();
            let client = client.clone();
            let ar = ar.clone();
            async move {
                match item {
                    Item::Object(o) => {
                        let api: Api<DynamicObject> =
                            Api::namespaced_with(client, o.namespace().unwrap_or_default(), &ar);
                        api.patch(o.name(), &pp, &Patch::Apply(&o.body()))
                            .await
                            .map(|_| ())
                    }
                    Item::Status(ns, name, body) => Api::<AppNetwork>::namespaced(client, ns)
                        .patch_status(name, &pp, &Patch::Apply(body))
                        .await
                        .map(|_| ()),
                }
            }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("raw apply with statuses");
    started.elapsed()
}

/// Creates AppNetwork `name` (examples/shop.yaml, no status) in every namespace; returns
/// (namespace, generation).
pub async fn create_apps(client: &Client, namespaces: &[String], name: &str) -> Vec<(String, i64)> {
    futures::stream::iter(namespaces.iter())
        .map(|ns| {
            let api = Api::<AppNetwork>::namespaced(client.clone(), ns);
            let mut app = shop(ns);
            app.metadata.name = Some(name.to_string());
            async move {
                api.create(&PostParams::default(), &app)
                    .await
                    .map(|a| (ns.clone(), a.metadata.generation.unwrap_or(1)))
            }
        })
        .buffered(8)
        .try_collect()
        .await
        .expect("create AppNetworks")
}

/// Deletes AppNetwork `name` in every namespace and waits until no AppNetwork of that name
/// is left.
pub async fn delete_apps(client: &Client, namespaces: &[String], name: &str) {
    futures::stream::iter(namespaces.iter())
        .map(|ns| {
            let api = Api::<AppNetwork>::namespaced(client.clone(), ns);
            async move {
                match api.delete(name, &Default::default()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .buffer_unordered(8)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("delete AppNetworks");
    let all: Api<AppNetwork> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = all
            .list_metadata(&ListParams::default())
            .await
            .map(|l| l.items.iter().filter(|a| a.name_any() == name).count())
            .unwrap_or(usize::MAX);
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{left} AppNetworks {name} still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deletes every managed NetworkPolicy in `namespaces` (one DELETE collection each) and waits
/// until none is left.
pub async fn delete_managed(client: &Client, namespaces: &[String]) {
    let ar = np_resource();
    let selector = format!("{MANAGED_BY}={MANAGER}");
    futures::stream::iter(namespaces.iter())
        .map(|ns| {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
            let lp = ListParams::default().labels(&selector);
            async move {
                api.delete_collection(&Default::default(), &lp)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(8)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("delete collection");
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = all
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map(|l| l.items.len())
            .unwrap_or(usize::MAX);
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{left} managed policies still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Request counts from the API server's `apiserver_request_total`, by (verb, resource).
#[derive(Clone, Debug, Default)]
pub struct Requests(pub BTreeMap<(String, String), f64>);

/// The verbs that write.
pub const WRITE_VERBS: [&str; 6] = [
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "DELETECOLLECTION",
    "APPLY",
];

/// The API server's counters at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Completed requests (`apiserver_request_total`).
    pub requests: Requests,
    /// Long-running requests open now (`apiserver_longrunning_gauge`), by (verb, resource):
    /// a WATCH is counted in `apiserver_request_total` only when it ends.
    pub open: Requests,
}

impl Snapshot {
    /// Reads both from one GET /metrics.
    pub async fn read(client: &Client) -> Snapshot {
        let text = metrics_text(client).await;
        Snapshot {
            requests: Requests::parse(&text),
            open: Requests::parse_metric(&text, "apiserver_longrunning_gauge{"),
        }
    }

    /// The requests of clients other than the control plane's (which speak protobuf), from
    /// `before` to `self`: completed requests plus the long-running ones opened and still open
    /// (WATCHes, by their gauge). In the windows measured the operator is the only such client:
    /// the bench's own watch was opened before, and its GET /metrics is not counted by the API
    /// server (a non-resource request it does not instrument).
    pub fn operator_requests(&self, before: &Snapshot) -> Requests {
        let mut out = BTreeMap::new();
        for ((verb, res), v) in self.requests.since(&before.requests).0 {
            if res.contains("(protobuf") {
                continue;
            }
            *out.entry((verb, res)).or_insert(0.0) += v;
        }
        for ((verb, res), v) in self.open.since(&before.open).0 {
            *out.entry((format!("{verb} (still open)"), res))
                .or_insert(0.0) += v;
        }
        out.retain(|_, v| *v > 0.0);
        Requests(out)
    }
}

async fn metrics_text(client: &Client) -> String {
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    client.request_text(req).await.expect("GET /metrics")
}

impl Requests {
    /// Reads the counters (GET /metrics with the admin identity).
    pub async fn read(client: &Client) -> Requests {
        Requests::parse(&metrics_text(client).await)
    }

    /// Sum over every verb.
    pub fn total(&self) -> u64 {
        self.0.values().sum::<f64>().round() as u64
    }

    /// Sum over the verbs for which `pred` holds.
    pub fn count(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.0
            .iter()
            .filter(|((verb, _), _)| pred(verb))
            .map(|(_, v)| *v)
            .sum::<f64>()
            .round() as u64
    }

    fn parse(text: &str) -> Requests {
        Requests::parse_metric(text, "apiserver_request_total{")
    }

    /// `metric{` lines by (verb, resource[/subresource]); protobuf responses marked.
    fn parse_metric(text: &str, metric: &str) -> Requests {
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(metric) else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let labels = parse_labels(labels);
            let verb = labels.get("verb").cloned().unwrap_or_default();
            let mut resource = labels.get("resource").cloned().unwrap_or_default();
            if let Some(sub) = labels.get("subresource").filter(|s| !s.is_empty()) {
                resource = format!("{resource}/{sub}");
            }
            // Go clients (the controller manager, the API server's own loopback client) speak
            // protobuf; tierflow and this bench speak JSON.
            if labels
                .get("contentType")
                .is_some_and(|c| c.contains("protobuf"))
            {
                resource.push_str(" (protobuf: control plane)");
            }
            let v: f64 = value.trim().parse().unwrap_or(0.0);
            *out.entry((verb, resource)).or_insert(0.0) += v;
        }
        Requests(out)
    }

    /// `self - before`, without zero entries.
    pub fn since(&self, before: &Requests) -> Requests {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            let d = v - before.0.get(k).copied().unwrap_or(0.0);
            if d > 0.0 {
                out.insert(k.clone(), d);
            }
        }
        Requests(out)
    }

    /// Sum over the write verbs.
    pub fn writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|((verb, _), _)| WRITE_VERBS.contains(&verb.as_str()))
            .map(|(_, v)| *v)
            .sum::<f64>()
            .round() as u64
    }

    /// `{"VERB resource": count}`.
    pub fn to_json(&self) -> Value {
        let m: serde_json::Map<String, Value> = self
            .0
            .iter()
            .map(|((verb, res), v)| (format!("{verb} {res}"), json!(v.round() as u64)))
            .collect();
        Value::Object(m)
    }
}

fn parse_labels(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            break;
        }
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        val.push(n);
                    }
                }
                '"' => break,
                c => val.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_string(), val);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    out
}

/// A watch event on a managed NetworkPolicy, stamped when the bench received it.
pub struct Seen {
    /// When it arrived.
    pub at: Instant,
    /// Added or modified (`false`: deleted).
    pub applied: bool,
    /// namespace/name.
    pub key: Key,
    /// The object.
    pub obj: Value,
}

/// Every managed NetworkPolicy of the cluster, kept current by a watch.
pub struct Tracker {
    rx: UnboundedReceiver<Option<Seen>>,
    /// The latest state of every object.
    pub store: HashMap<Key, Value>,
    /// Events seen in total.
    pub events: u64,
}

impl Tracker {
    /// Starts the watch and returns once its first list is in.
    pub async fn start(client: &Client) -> Tracker {
        let ar = np_resource();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let cfg = watcher::Config::default().labels(&format!("{MANAGED_BY}={MANAGER}"));
        let (tx, rx) = unbounded_channel();
        tokio::spawn(async move {
            let stream = watcher::watcher(api, cfg);
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                let at = Instant::now();
                let seen = |o: &DynamicObject, applied: bool| {
                    Some(Seen {
                        at,
                        applied,
                        key: (o.namespace().unwrap_or_default(), o.name_any()),
                        obj: serde_json::to_value(o).unwrap_or(Value::Null),
                    })
                };
                let msg = match ev {
                    Ok(Event::Apply(o)) | Ok(Event::InitApply(o)) => seen(&o, true),
                    Ok(Event::Delete(o)) => seen(&o, false),
                    Ok(Event::InitDone) => None,
                    Ok(Event::Init) => continue,
                    Err(e) => {
                        eprintln!("bench: watch error (retrying): {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
        let mut t = Tracker {
            rx,
            store: HashMap::new(),
            events: 0,
        };
        // Until the first InitDone.
        loop {
            match tokio::time::timeout(Duration::from_secs(60), t.rx.recv()).await {
                Ok(Some(None)) => break,
                Ok(Some(Some(s))) => t.absorb(&s),
                _ => panic!("the NetworkPolicy watch did not start"),
            }
        }
        t
    }

    fn absorb(&mut self, s: &Seen) {
        self.events += 1;
        if s.applied {
            self.store.insert(s.key.clone(), s.obj.clone());
        } else {
            self.store.remove(&s.key);
        }
    }

    /// The next event, or `None` at `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> Option<Seen> {
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Some(s))) => {
                    self.absorb(&s);
                    return Some(s);
                }
                Ok(Some(None)) => continue, // a relist finished
                Ok(None) => panic!("the NetworkPolicy watch ended"),
                Err(_) => return None,
            }
        }
    }

    /// Applies every event already received.
    pub fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            if let Some(s) = m {
                self.absorb(&s);
            }
        }
    }

    /// Waits for the first event (already received ones included) for which `pred` holds;
    /// returns when it arrived.
    pub async fn wait_for(
        &mut self,
        deadline: Instant,
        mut pred: impl FnMut(&Seen) -> bool,
    ) -> Option<Instant> {
        while let Some(s) = self.next(deadline).await {
            if pred(&s) {
                return Some(s.at);
            }
        }
        None
    }
}

/// tierflow's CRDs with the CEL rules this API server accepts, from its version: none before
/// 1.28 (the 1.20 test server refuses the unknown `x-kubernetes-validations` field in a
/// server-side apply), no CIDR / IP rules before 1.31.
pub async fn crds_for(
    client: &Client,
) -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    let info = client.apiserver_version().await.expect("server version");
    let level = tierflow::crd::Cel::for_version_str(&format!("{}.{}", info.major, info.minor))
        .unwrap_or(tierflow::crd::Cel::Off);
    tierflow::crd::all_with(level).expect("CRDs")
}

/// When each AppNetwork was first seen Ready=True for its current generation, kept by a watch
/// opened before the operator starts (so the operator's status writes are timed as they land,
/// without requests of the bench's own in the measured window).
pub struct ReadyWatch {
    ready: std::sync::Arc<std::sync::Mutex<HashMap<Key, Instant>>>,
}

impl ReadyWatch {
    /// Starts the watch.
    pub fn start(client: &Client) -> ReadyWatch {
        let ready = std::sync::Arc::new(std::sync::Mutex::new(HashMap::new()));
        let seen = ready.clone();
        let api: Api<AppNetwork> = Api::all(client.clone());
        tokio::spawn(async move {
            let stream = watcher::watcher(api, watcher::Config::default());
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                let at = Instant::now();
                let (Ok(Event::Apply(a)) | Ok(Event::InitApply(a))) = ev else {
                    continue;
                };
                let generation = a.metadata.generation;
                let ready = a.status.as_ref().is_some_and(|s| {
                    s.observed_generation == generation
                        && s.conditions.iter().any(|c| {
                            c.type_ == "Ready"
                                && c.status == "True"
                                && c.observed_generation == generation
                        })
                });
                let key = (a.namespace().unwrap_or_default(), a.name_any());
                if let Ok(mut m) = seen.lock() {
                    if ready {
                        m.entry(key).or_insert(at);
                    } else {
                        m.remove(&key);
                    }
                }
            }
        });
        ReadyWatch { ready }
    }

    /// When the `n`-th AppNetwork became Ready (waits until `deadline`).
    pub async fn all_ready(&self, n: usize, deadline: Instant) -> Option<Instant> {
        loop {
            let latest = self
                .ready
                .lock()
                .ok()
                .filter(|m| m.len() >= n)
                .and_then(|m| m.values().max().copied());
            if latest.is_some() {
                return latest;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
