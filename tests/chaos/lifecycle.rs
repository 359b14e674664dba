//! Namespace lifecycle races: namespaces deleted while their AppNetwork is being reconciled, an
//! AppNetwork created in (and one kept alive by a finalizer in) a namespace stuck terminating, a
//! namespace deleted while the operator is down. The operator stays up, does not spin on errors,
//! reports no failed namespace, and everything else converges. (CRDs of a CNI removed while in
//! use: `tests/cni.rs`.)

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tierflow::crd::AppNetwork;

use crate::harness::{self, within, Operator, OperatorOptions, Rng};
use crate::support;
use crate::workload::{app_spec, Workload, APP, USER};

const HOLD: &str = "chaos.tierflow.dev/hold";

async fn create_covered_namespace(client: &Client, wl: &Workload, name: &str) {
    support::create_namespace(
        client,
        name,
        &[
            (harness::CHAOS_LABEL, "true"),
            ("chaos.tierflow.dev/run", &wl.run),
            ("chaos.tierflow.dev/baseline", "yes"),
        ],
    )
    .await;
}

async fn apply_app(client: &Client, ns: &str, name: &str) -> kube::Result<AppNetwork> {
    let body = json!({"apiVersion": "tierflow.dev/v1alpha1", "kind": "AppNetwork",
                      "metadata": {"name": name}, "spec": app_spec(0)});
    Api::<AppNetwork>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply(USER).force(),
            &Patch::Apply(&body),
        )
        .await
}

async fn gone(client: &Client, ns: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    within(
        Duration::from_secs(90),
        &format!("namespace {ns} gone"),
        || async { api.get_opt(ns).await.ok()?.is_none().then_some(()) },
    )
    .await;
}

async fn errors(op: &Operator) -> f64 {
    op.metrics()
        .await
        .map(|m| m.sum("tierflow_reconcile_errors_total") + 0.0)
        .unwrap_or(f64::NAN)
}

async fn policies(client: &Client, ns: &str) -> usize {
    Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

#[tokio::test]
async fn namespaces_deleted_or_terminating_under_the_operator_cause_no_errors_or_leftovers() {
    let name = "lifecycle";
    let Some(sc) = harness::setup(name).await else {
        return;
    };
    let client = sc.cluster.client.clone();
    let mut rng = Rng::from_env(name);
    let wl = Workload::create(&client, name, 3, true).await;
    let opts = OperatorOptions::default();
    let mut op = Operator::start(&sc, "tierflow", &opts);
    wl.apply_apps(0).await;
    wl.converge(Duration::from_secs(60)).await;

    // 1. Namespaces deleted at random moments right after their AppNetwork was created (most
    //    while it is being reconciled).
    let races = 12;
    let mut race_names = Vec::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..races {
        let ns = format!("chaos-race-{}-{i}", std::process::id());
        create_covered_namespace(&client, &wl, &ns).await;
        let (c, n, delay) = (client.clone(), ns.clone(), rng.below(400));
        tasks.push(tokio::spawn(async move {
            apply_app(&c, &n, APP).await.expect("AppNetwork");
            tokio::time::sleep(Duration::from_millis(delay)).await;
            support::delete_namespace(&c, &n).await;
        }));
        race_names.push(ns);
    }
    for t in tasks {
        t.await.expect("race task");
    }
    for ns in &race_names {
        gone(&client, ns).await;
    }
    let race_settled = started.elapsed();
    let e1 = errors(&op).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let e2 = errors(&op).await;
    wl.converge(Duration::from_secs(30)).await;
    assert_eq!(
        e1, e2,
        "reconcile errors keep growing after the namespaces are gone"
    );
    let forbidden = op
        .metrics()
        .await
        .map(|m| {
            m.get(r#"tierflow_reconcile_errors_total{controller="namespace",reason="Forbidden"}"#)
        })
        .unwrap_or(0.0);
    assert_eq!(
        forbidden, 0.0,
        "a namespace being deleted counted as a reconcile error"
    );
    assert!(op.exited().is_none(), "the operator died");

    // 2. A namespace stuck terminating (a ConfigMap with a finalizer), with an AppNetwork kept
    //    by a finalizer of its own; then a new AppNetwork created there.
    let stuck = format!("chaos-stuck-{}", std::process::id());
    create_covered_namespace(&client, &wl, &stuck).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &stuck);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "hold", "finalizers": [HOLD]}}))
            .expect("configmap"),
    )
    .await
    .expect("configmap");
    apply_app(&client, &stuck, APP).await.expect("AppNetwork");
    let apps: Api<AppNetwork> = Api::namespaced(client.clone(), &stuck);
    apps.patch(
        APP,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": [HOLD]}})),
    )
    .await
    .expect("finalizer");
    within(
        Duration::from_secs(30),
        "policies in the namespace",
        || async { (policies(&client, &stuck).await == 4).then_some(()) },
    )
    .await;
    support::delete_namespace(&client, &stuck).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    within(
        Duration::from_secs(30),
        "the namespace terminating",
        || async {
            nss.get(&stuck)
                .await
                .ok()?
                .metadata
                .deletion_timestamp
                .map(|_| ())
        },
    )
    .await;
    // The API server's NamespaceLifecycle admission reads namespaces from its own informer,
    // which can lag the deletion by a moment under load: a create right after the deletion may
    // still be admitted. Wait until creates are refused (what tierflow must cope with).
    let mut late = apply_app(&client, &stuck, "late").await;
    let terminating_refusal = |r: &Result<AppNetwork, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("terminat"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !terminating_refusal(&late) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        late = apply_app(&client, &stuck, "late").await;
    }
    let refused = terminating_refusal(&late);
    // The namespace controller empties it (the policies go, the AppNetwork stays, being
    // deleted, held by its finalizer); tierflow must neither fight that nor spin on errors.
    within(Duration::from_secs(60), "the namespace emptied", || async {
        (policies(&client, &stuck).await == 0).then_some(())
    })
    .await;
    let e3 = errors(&op).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let e4 = errors(&op).await;
    let left = policies(&client, &stuck).await;
    wl.converge(Duration::from_secs(30)).await;
    let cb_failed = wl.check().await.is_err();
    for (api, n) in [("configmap", "hold"), ("appnetwork", APP)] {
        let patch = Patch::Merge(json!({"metadata": {"finalizers": null}}));
        let r = if api == "configmap" {
            cms.patch(n, &PatchParams::default(), &patch)
                .await
                .map(|_| ())
        } else {
            apps.patch(n, &PatchParams::default(), &patch)
                .await
                .map(|_| ())
        };
        r.expect("remove finalizer");
    }
    gone(&client, &stuck).await;
    assert!(
        refused,
        "an AppNetwork was created in a terminating namespace: {late:?}"
    );
    assert_eq!(
        left, 0,
        "tierflow recreated policies in a terminating namespace"
    );
    assert_eq!(
        e3, e4,
        "reconcile errors keep growing for a terminating namespace"
    );
    assert!(!cb_failed);

    // 3. A namespace deleted while the operator is down.
    let doomed = format!("chaos-doomed-{}", std::process::id());
    create_covered_namespace(&client, &wl, &doomed).await;
    apply_app(&client, &doomed, APP).await.expect("AppNetwork");
    within(
        Duration::from_secs(30),
        "policies in the namespace",
        || async { (policies(&client, &doomed).await == 4).then_some(()) },
    )
    .await;
    op.sigkill();
    support::delete_namespace(&client, &doomed).await;
    gone(&client, &doomed).await;
    op = Operator::start(&sc, "tierflow", &opts);
    let back = wl.converge(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let e5 = errors(&op).await;
    assert!(op.exited().is_none(), "the operator died");
    eprintln!(
        "CHAOS-REPORT {name}: {races} namespaces deleted 0-400 ms after their AppNetwork was \
         created: all gone after {race_settled:.2?}, reconcile errors {e1} (not growing \
         afterwards), the rest converged, ClusterBaseline without failures; a namespace stuck \
         terminating: new AppNetwork refused by the API server ({refused}), the held AppNetwork \
         left alone ({left} policies recreated), errors {e3} -> {e4} over 2 s; a namespace \
         deleted while the operator was down: converged {back:.2?} after the restart, \
         {e5} reconcile errors"
    );
    op.sigkill();
    wl.teardown().await;
}
