//! Production readiness against the real control plane: `deploy/` is accepted, the operator
//! running as the ServiceAccount `deploy/` creates does its whole job with exactly that
//! ClusterRole, leader election hands over, and /readyz and /metrics tell the truth.
//!
//! Runs operator PROCESSES (the built binary). Not run against an existing cluster: it binds
//! RBAC cluster-wide and uses the local control plane's identities.

#[path = "e2e/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tierflow::crd::{AppNetwork, ClusterBaseline};
use tokio::sync::Mutex;

use support::{eventually, TestNs};

/// The tests here each run operators that watch the whole cluster: one at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn skip() -> bool {
    if std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v == "true") {
        eprintln!("SKIPPED: binds RBAC cluster-wide and uses the local control plane's identities");
        return true;
    }
    false
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cluster_dir() -> PathBuf {
    support::kubeconfig_path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new("kubectl");
    cmd.args(args).env("KUBECONFIG", support::kubeconfig_path());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        pipe.write_all(input.as_bytes()).expect("stdin");
    }
    let out = child.wait_with_output().expect("kubectl output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// An operator process; killed (SIGKILL) on drop.
struct Operator {
    child: Child,
    metrics: u16,
}

impl Operator {
    fn start(kubeconfig: &Path, identity: &str, extra: &[&str]) -> Operator {
        let metrics = free_port();
        let log = std::fs::File::create(repo().join(format!("target/deploy-test-{identity}.log")))
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_tierflow"))
            .args([
                "run",
                "--backend",
                "networkpolicy",
                "--metrics-addr",
                &format!("127.0.0.1:{metrics}"),
            ])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", identity)
            .env("POD_NAMESPACE", "tierflow-system")
            .env("RUST_LOG", "info,kube=warn")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the operator");
        Operator { child, metrics }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.metrics, path).await
    }

    async fn metric(&self, name_and_labels: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics").await?;
        text.lines()
            .find(|l| l.starts_with(name_and_labels))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal HTTP/1 GET on loopback (status code and body).
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// Waits up to `secs` for `check`.
async fn within<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `kubectl apply -k deploy/`, as the server understands it: the PodDisruptionBudget is
/// policy/v1 (Kubernetes 1.21+); a 1.20 server only has policy/v1beta1, the same schema. And
/// tierflow's CRDs carry CEL rules (`x-kubernetes-validations`, 1.25+) that an older server
/// refuses: they are installed in the form `tierflow crds --kube-version` gives for this server.
async fn apply_deploy() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let (ok, manifests) = kubectl(
        &["kustomize", &repo().join("deploy").to_string_lossy()],
        None,
    );
    assert!(ok, "kustomize: {manifests}");
    let (_, versions) = kubectl(&["api-versions"], None);
    let manifests = if versions.lines().any(|l| l == "policy/v1") {
        manifests
    } else {
        manifests.replace("apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n")
    };
    // The CRDs are in place already, in the form this server takes.
    let manifests: String = manifests
        .split("\n---\n")
        .filter(|doc| !doc.contains("kind: CustomResourceDefinition"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    let (ok, out) = kubectl(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&manifests),
    );
    assert!(ok, "kubectl apply -k deploy/ was refused:\n{out}");
}

/// A kubeconfig for the ServiceAccount tierflow/tierflow-system, from its token secret.
async fn service_account_kubeconfig(client: &Client) -> PathBuf {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "tierflow-system");
    let token = eventually("the ServiceAccount's token", || async {
        let list = secrets.list(&Default::default()).await.ok()?;
        let s = list.items.into_iter().find(|s| {
            s.type_.as_deref() == Some("kubernetes.io/service-account-token")
                && s.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("kubernetes.io/service-account.name"))
                    .map(String::as_str)
                    == Some("tierflow")
        })?;
        let t = s.data?.get("token")?.0.clone();
        String::from_utf8(t).ok()
    })
    .await;
    let admin = std::fs::read_to_string(support::kubeconfig_path()).expect("kubeconfig");
    let mut kc: Value = serde_yaml::from_str(&admin).expect("yaml");
    kc["users"] = json!([{"name": "tierflow", "user": {"token": token}}]);
    kc["contexts"][0]["context"]["user"] = json!("tierflow");
    let path = cluster_dir().join("tierflow-sa.kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&kc).expect("yaml")).expect("write kubeconfig");
    path
}

fn can_i(kubeconfig: &Path, args: &[&str]) -> bool {
    let out = Command::new("kubectl")
        .args(["auth", "can-i"])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl auth can-i");
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

const APP: &str = r#"
tiers:
  - {name: frontend, selector: {matchLabels: {app: frontend}}, ports: [{port: 8080}]}
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
  - {name: database, selector: {matchLabels: {app: database}}, ports: [{port: 5432}]}
flows:
  - {from: {tier: frontend}, to: {tier: api}}
  - {from: {tier: api}, to: {tier: database}}
"#;

async fn apply_app(client: &Client, ns: &str, spec: &str) {
    let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork", "metadata": {"name": "shop"},
                      "spec": serde_yaml::from_str::<Value>(spec).unwrap()});
    Api::<AppNetwork>::namespaced(client.clone(), ns)
        .patch(
            "shop",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap();
}

async fn policy_spec(client: &Client, ns: &str, name: &str) -> Option<Value> {
    let api: Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        Api::namespaced(client.clone(), ns);
    api.get_opt(name)
        .await
        .ok()?
        .and_then(|p| serde_json::to_value(p.spec?).ok())
}

#[tokio::test]
async fn the_operator_as_the_deployed_service_account_does_its_whole_job_with_leader_election() {
    if skip() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let client = support::client().await;
    apply_deploy().await;
    let kubeconfig = service_account_kubeconfig(&client).await;

    // Least privilege, as `kubectl auth can-i` sees it.
    assert!(can_i(
        &kubeconfig,
        &["patch", "networkpolicies", "-n", "default"]
    ));
    assert!(can_i(
        &kubeconfig,
        &["watch", "appnetworks.tierflow.dev", "-A"]
    ));
    assert!(can_i(
        &kubeconfig,
        &[
            "update",
            "leases.coordination.k8s.io",
            "-n",
            "tierflow-system"
        ]
    ));
    // The Cilium agent's configuration: that one ConfigMap, read-only.
    assert!(can_i(
        &kubeconfig,
        &["get", "configmaps/cilium-config", "-n", "kube-system"]
    ));
    for denied in [
        vec!["get", "configmaps/kube-proxy", "-n", "kube-system"],
        vec!["patch", "configmaps/cilium-config", "-n", "kube-system"],
        vec!["get", "secrets", "-A"],
        vec!["get", "secrets", "-n", "tierflow-system"],
        vec!["create", "pods", "-n", "default"],
        vec!["delete", "namespaces"],
        vec!["update", "leases.coordination.k8s.io", "-n", "kube-system"],
        vec!["patch", "appnetworks.tierflow.dev", "-n", "default"],
        vec!["create", "clusterrolebindings"],
    ] {
        assert!(
            !can_i(&kubeconfig, &denied),
            "the operator must not be allowed to {denied:?}"
        );
    }

    // Leases from earlier runs would make a new replica wait out their duration.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "tierflow-system");
    let _ = leases
        .delete("tierflow-leader", &DeleteParams::default())
        .await;

    let mut a = Operator::start(&kubeconfig, "replica-a", &["--leader-elect"]);
    let mut b = Operator::start(&kubeconfig, "replica-b", &["--leader-elect"]);
    for op in [&a, &b] {
        within(30, "/readyz", || async {
            (op.get("/readyz").await?.0 == 200).then_some(())
        })
        .await;
        assert_eq!(op.get("/healthz").await.map(|r| r.0), Some(200));
    }
    let leaders = within(30, "exactly one leader", || async {
        let la = a.metric("tierflow_leader ").await?;
        let lb = b.metric("tierflow_leader ").await?;
        (la + lb == 1.0).then_some((la, lb))
    })
    .await;
    let (leader, standby) = if leaders.0 == 1.0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };

    // The whole job: three tiers, a ClusterBaseline, drift repair.
    let ns = TestNs::new(&client, "deploy").await;
    apply_app(&client, &ns.name, APP).await;
    within(30, "the tier policies", || async {
        policy_spec(&client, &ns.name, "tierflow-shop-api").await
    })
    .await;
    let cb_name = format!("{}-cb", ns.name);
    let cb = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "ClusterBaseline", "metadata": {"name": cb_name},
                    "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.name}}}});
    Api::<ClusterBaseline>::all(client.clone())
        .patch(&cb_name, &PatchParams::apply("kubectl"), &Patch::Apply(&cb))
        .await
        .unwrap();
    within(30, "the baseline", || async {
        policy_spec(&client, &ns.name, "tierflow-baseline").await
    })
    .await;
    let nps: Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        Api::namespaced(client.clone(), &ns.name);
    nps.delete("tierflow-shop-api", &DeleteParams::default())
        .await
        .unwrap();
    within(30, "drift repair", || async {
        policy_spec(&client, &ns.name, "tierflow-shop-api").await
    })
    .await;

    // Only the leader writes (a standby's only write is its attempt to take the Lease).
    let (_, standby_metrics) = standby.get("/metrics").await.expect("standby metrics");
    let foreign: Vec<&str> = standby_metrics
        .lines()
        .filter(|l| {
            l.starts_with("tierflow_api_writes_total{") && !l.contains("resource=\"leases\"")
        })
        .collect();
    assert!(foreign.is_empty(), "the standby wrote: {foreign:?}");
    assert!(
        leader
            .metric("tierflow_api_writes_total{resource=\"networkpolicies\",verb=\"PATCH\"}")
            .await
            .unwrap_or(0.0)
            > 0.0
    );

    // Metrics with sane values.
    let (_, text) = leader.get("/metrics").await.expect("metrics");
    for name in [
        "tierflow_reconcile_total{controller=\"namespace\",result=\"success\"}",
        "tierflow_reconcile_duration_seconds_bucket{controller=\"namespace\"",
        "tierflow_managed_objects{backend=\"NetworkPolicy\",kind=\"NetworkPolicy\"}",
        "tierflow_drift_corrections_total{kind=\"NetworkPolicy\"} ",
        "tierflow_baseline_namespaces ",
        "tierflow_cni_info{",
        "tierflow_leader 1",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    assert!(
        !text.contains(&ns.name),
        "no object or namespace names in metric labels"
    );

    // Kill the leader: the standby takes over within the lease duration, and an update made
    // meanwhile converges.
    leader.kill();
    let killed = std::time::Instant::now();
    apply_app(&client, &ns.name, &APP.replace("port: 5432", "port: 5433")).await;
    within(20, "the standby to lead", || async {
        (standby.metric("tierflow_leader ").await? == 1.0).then_some(())
    })
    .await;
    let handover = killed.elapsed();
    assert!(
        handover <= Duration::from_secs(15 + 3),
        "handover took {handover:?}"
    );
    within(20, "the update made during the handover", || async {
        let spec = policy_spec(&client, &ns.name, "tierflow-shop-database").await?;
        spec.to_string().contains("5433").then_some(())
    })
    .await;
    eprintln!("leader handover after SIGKILL: {handover:?}");

    Api::<ClusterBaseline>::all(client.clone())
        .delete(&cb_name, &DeleteParams::default())
        .await
        .unwrap();
    ns.delete().await;
}

#[tokio::test]
async fn readyz_is_false_until_every_watch_has_synced() {
    if skip() {
        return;
    }
    let _serial = SERIAL.lock().await;
    apply_deploy().await;
    let identity = cluster_dir().join("operator.kubeconfig");
    // The local control plane's restricted user starts with no permissions at all.
    let binding = "tierflow-test-operator-user";
    let _ = kubectl(
        &[
            "delete",
            "clusterrolebinding",
            binding,
            "--ignore-not-found",
        ],
        None,
    );
    let _ = kubectl(
        &[
            "delete",
            "rolebinding",
            binding,
            "-n",
            "default",
            "--ignore-not-found",
        ],
        None,
    );
    let op = Operator::start(&identity, "readyz", &[]);
    within(20, "/healthz", || async {
        (op.get("/healthz").await?.0 == 200).then_some(())
    })
    .await;
    // It cannot list anything yet: alive, not ready.
    for _ in 0..5 {
        assert_eq!(op.get("/readyz").await.map(|r| r.0), Some(503));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, out) = kubectl(
        &[
            "create",
            "clusterrolebinding",
            binding,
            "--clusterrole=tierflow",
            "--user=tierflow-operator",
        ],
        None,
    );
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &[
            "create",
            "rolebinding",
            binding,
            "-n",
            "default",
            "--role=tierflow-apiserver-endpoints",
            "--user=tierflow-operator",
        ],
        None,
    );
    assert!(ok, "{out}");
    within(60, "/readyz after the permissions arrive", || async {
        (op.get("/readyz").await?.0 == 200).then_some(())
    })
    .await;
    let _ = kubectl(&["delete", "clusterrolebinding", binding], None);
    let _ = kubectl(&["delete", "rolebinding", binding, "-n", "default"], None);
    drop(op);
}
