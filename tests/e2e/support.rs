//! Test support for integration tests against a real control plane.
//!
//! - `client()`: the local control plane of `make cluster` (`target/cluster/kubeconfig`), or,
//!   with `USE_EXISTING_CLUSTER=true`, the cluster of `KUBECONFIG`.
//! - `TestNs`: a fresh, uniquely named namespace per test, labelled
//!   `kubernetes.io/metadata.name` as Kubernetes 1.21+ does.
//! - `eventually` / `wait_for`: wait on a condition with a deadline, never a fixed sleep.
//! - `operator()`: one tierflow operator per test process, on its own runtime thread.
//! - `install_third_party_crds`: the Calico / Cilium / ClusterNetworkPolicy CRDs from
//!   `../shared/crds` (or `TIERFLOW_THIRD_PARTY_CRDS`).
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::{json, Value};
use tierflow::controller::{self, Context};

/// How long any wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn use_existing_cluster() -> bool {
    std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v == "true" || v == "1")
}

/// The kubeconfig tests use, with a clear message when there is none.
pub fn kubeconfig_path() -> PathBuf {
    if use_existing_cluster() {
        if let Some(p) = std::env::var_os("KUBECONFIG") {
            return PathBuf::from(p);
        }
        return dirs_home().join(".kube/config");
    }
    let dir = std::env::var_os("TIERFLOW_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/cluster"));
    let p = dir.join("kubeconfig");
    assert!(
        p.exists(),
        "no local control plane: {} is missing. Run `make cluster` (make test does it), or set \
         USE_EXISTING_CLUSTER=true to use the cluster of KUBECONFIG.",
        p.display()
    );
    p
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A client for the cluster under test (admin identity).
pub async fn client() -> Client {
    let kc = Kubeconfig::read_from(kubeconfig_path()).expect("readable kubeconfig");
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("valid kubeconfig");
    Client::try_from(cfg).expect("client")
}

/// Waits until `check` returns `Some`, polling the API, and fails the test after `TIMEOUT`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A fresh namespace for one test.
pub struct TestNs {
    /// Its name.
    pub name: String,
    client: Client,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestNs {
    /// Creates `<prefix>-<pid>-<n>`.
    pub async fn new(client: &Client, prefix: &str) -> TestNs {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        create_namespace(client, &name, &[]).await;
        TestNs {
            name,
            client: client.clone(),
        }
    }

    /// Deletes the namespace (the control plane's namespace controller empties it).
    pub async fn delete(self) {
        delete_namespace(&self.client, &self.name).await;
    }
}

/// Creates a namespace labelled with its own name plus `labels`.
pub async fn create_namespace(client: &Client, name: &str, labels: &[(&str, &str)]) {
    let mut l = serde_json::Map::new();
    l.insert("kubernetes.io/metadata.name".into(), json!(name));
    l.insert("tierflow.dev/test".into(), json!("true"));
    for (k, v) in labels {
        l.insert((*k).into(), json!(v));
    }
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": l}
    }))
    .expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

/// Deletes a namespace, ignoring one that is already gone.
pub async fn delete_namespace(client: &Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

/// Installs tierflow's own CRDs and waits until they are served.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds_for(client).await {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply("tierflow-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply CRD");
        wait_established(client, &name).await;
    }
}

/// Waits until a CRD is Established.
pub async fn wait_established(client: &Client, name: &str) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    tokio::time::timeout(
        TIMEOUT,
        await_condition(api, name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established in time")
    .expect("watch CRD");
}

/// The folder of third-party CRDs, if present.
pub fn third_party_crds_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TIERFLOW_THIRD_PARTY_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/crds"));
    dir.is_dir().then_some(dir)
}

/// Installs third-party CRDs (paths relative to the CRD folder, e.g. `cilium/ciliumnetworkpolicies.yaml`).
/// Returns `false`, after saying why, when the folder is absent: the caller should skip.
///
/// The files use `x-kubernetes-validations` and `selectableFields`, which a 1.20 API server does
/// not know; they are dropped before a plain create, which keeps the structural schema that the
/// API server then enforces.
pub async fn install_third_party_crds(client: &Client, files: &[&str]) -> bool {
    let Some(dir) = third_party_crds_dir() else {
        eprintln!(
            "SKIPPED: third-party CRDs not found (../shared/crds or TIERFLOW_THIRD_PARTY_CRDS); \
             this test needs them"
        );
        return false;
    };
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for f in files {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let mut value: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        strip_unknown_to_old_servers(&mut value);
        let crd: CustomResourceDefinition = serde_json::from_value(value).expect("a CRD");
        let name = crd.name_any();
        match api.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("install {f}: {e}"),
        }
        wait_established(client, &name).await;
    }
    true
}

fn strip_unknown_to_old_servers(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("x-kubernetes-validations");
            m.remove("selectableFields");
            for (_, x) in m.iter_mut() {
                strip_unknown_to_old_servers(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_unknown_to_old_servers),
        _ => {}
    }
}

/// The operator shared by every test of this process: started once, on its own runtime thread
/// (a `#[tokio::test]` runtime ends with its test), watching all namespaces.
pub async fn operator() -> Arc<Context> {
    static OPERATOR: OnceLock<Arc<Context>> = OnceLock::new();
    if let Some(c) = OPERATOR.get() {
        return c.clone();
    }
    let ctx = tokio::task::spawn_blocking(|| {
        OPERATOR
            .get_or_init(|| {
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async move {
                        let client = client().await;
                        install_crds(&client).await;
                        let running = controller::start(client, test_operator_options())
                            .await
                            .expect("operator starts");
                        tx.send(running.context.clone()).expect("send context");
                        running.join().await;
                        panic!("the test operator stopped");
                    });
                });
                rx.recv_timeout(Duration::from_secs(90))
                    .expect("operator started")
            })
            .clone()
    })
    .await
    .expect("operator thread");
    ctx
}

/// The options of the test operator: `Auto` means standard NetworkPolicy here, so tests that
/// install Calico or Cilium CRDs do not change the backend of every other test (tests of other
/// backends name them in `spec.backend`; CNI detection has its own test binary).
pub fn test_operator_options() -> controller::Options {
    controller::Options {
        default_backend: Some(tierflow::model::Backend::NetworkPolicy),
        ..controller::Options::default()
    }
}

/// A client that counts the requests that are not reads, to prove a steady state writes nothing.
#[derive(Clone)]
pub struct CountingClient {
    inner: Client,
    /// Requests with a method other than GET.
    pub writes: Arc<AtomicUsize>,
}

impl CountingClient {
    /// Wraps `inner`; returns the counting client and its counter.
    pub fn wrap(inner: Client) -> (Client, Arc<AtomicUsize>) {
        let writes = Arc::new(AtomicUsize::new(0));
        let svc = CountingClient {
            inner,
            writes: writes.clone(),
        };
        (Client::new(svc, "default"), writes)
    }
}

impl tower::Service<http::Request<kube::client::Body>> for CountingClient {
    type Response = http::Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        if req.method() != http::Method::GET {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(req).await })
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
