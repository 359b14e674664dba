//! `FlowsBlocked` on the real control plane: a flow declared in one namespace and denied by the
//! other namespace's AppNetwork is reported on the AppNetwork that declares it, naming the flow
//! and the blocking object; declaring the connection on the other side too clears it. The same
//! live objects through `tierflow verify`, `why` and `explain --from-cluster`.

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::Client;
use serde_json::{json, Value};
use tierflow::crd::{AppNetwork, ClusterBaseline, Condition};

use crate::appnetwork::{apply_app, wait_ready};
use crate::support::{self, eventually, TestNs};

fn pay(ledger: &str) -> String {
    format!(
        "
baseline: {{denyIngress: true, denyEgress: true}}
tiers:
  - {{name: worker, selector: {{matchLabels: {{app: worker}}}}}}
flows:
  - from: {{tier: worker}}
    to: {{namespace: {ledger}, selector: {{matchLabels: {{app: ledger-api}}}}}}
    ports: [{{port: 8080}}]
"
    )
}

const LEDGER: &str = "
baseline: {denyIngress: true}
tiers:
  - {name: api, selector: {matchLabels: {app: ledger-api}}, ports: [{port: 8080}]}
";

fn ledger_fixed(pay: &str) -> String {
    format!(
        "{LEDGER}flows:
  - from: {{namespace: {pay}, selector: {{matchLabels: {{app: worker}}}}}}
    to: {{tier: api}}
"
    )
}

async fn flows_blocked(client: &Client, ns: &str, name: &str, status: &str) -> Condition {
    let api = Api::<AppNetwork>::namespaced(client.clone(), ns);
    eventually(&format!("{ns}/{name} FlowsBlocked={status}"), || async {
        let a = api.get(name).await.ok()?;
        let c = a
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "FlowsBlocked")?;
        (c.status == status && c.observed_generation == a.metadata.generation).then_some(c)
    })
    .await
}

/// Exit code, standard output and both outputs.
fn tierflow(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tierflow"))
        .args(args)
        .env("KUBECONFIG", support::kubeconfig_path())
        .output()
        .expect("run tierflow");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn a_flow_the_other_namespace_denies_sets_flows_blocked_until_that_side_declares_it() {
    support::operator().await;
    let client = support::client().await;
    let pay_ns = TestNs::new(&client, "pay").await;
    let ledger_ns = TestNs::new(&client, "ledger").await;
    let (p, l) = (pay_ns.name.clone(), ledger_ns.name.clone());
    apply_app(&client, &l, "ledger", LEDGER).await;
    apply_app(&client, &p, "pay", &pay(&l)).await;
    wait_ready(&client, &p, "pay", "True").await;
    wait_ready(&client, &l, "ledger", "True").await;

    let c = flows_blocked(&client, &p, "pay", "True").await;
    assert_eq!(c.reason, "DeclaredFlowsDenied");
    assert!(
        c.message.starts_with(&format!(
            "1 of 1 declared flows cannot succeed: spec.flows[0]: {p}/app=worker -> {l}/app=ledger-api on 8080/TCP is blocked at ingress: no policy allows it: default deny of NetworkPolicy {l}/"
        )),
        "{}",
        c.message
    );
    assert!(
        c.message
            .contains(&format!("(tierflow's, from AppNetwork {l}/ledger)")),
        "{}",
        c.message
    );
    let since = c.last_transition_time.clone();

    // The same live objects through the CLI.
    let (code, stdout, out) = tierflow(&["verify", "--from-cluster", "--output", "json"]);
    assert!(code == 1, "{out}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_default();
    let mine: Vec<&Value> = v["acrossNamespaces"]["blocked"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"))
        .iter()
        .filter(|b| b["appNetwork"] == format!("{p}/pay").as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{out}");
    assert_eq!(mine[0]["flow"], 0);
    let (code, _, out) = tierflow(&[
        "why",
        "--from-cluster",
        "--from",
        &format!("{p}/app=worker"),
        "--to",
        &format!("{l}/app=ledger-api"),
        "--port",
        "8080/TCP",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "to allow it at ingress, add to AppNetwork {l}/ledger spec.flows:"
        )),
        "{out}"
    );
    let (code, _, out) = tierflow(&["explain", "--from-cluster"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{p}/pay")), "{out}");

    // Declaring the connection on ledger's side too clears it, on both AppNetworks.
    apply_app(&client, &l, "ledger", &ledger_fixed(&p)).await;
    let c = flows_blocked(&client, &p, "pay", "False").await;
    assert_eq!(c.reason, "FlowsAllowed", "{}", c.message);
    assert!(c.last_transition_time >= since);
    // A report, not a log: a reconcile now writes nothing.
    let ctx = support::operator().await;
    assert_eq!(
        crate::appnetwork::run_namespace_reconcile(&ctx, &client, &p).await,
        0,
        "the status was written again with nothing changed"
    );
    // Ledger's flow from pay was never blocked: it carries no FlowsBlocked at all.
    let app = Api::<AppNetwork>::namespaced(client.clone(), &l)
        .get("ledger")
        .await
        .unwrap();
    assert!(
        app.status
            .unwrap_or_default()
            .conditions
            .iter()
            .all(|c| c.type_ != "FlowsBlocked"),
        "ledger was never blocked"
    );
    pay_ns.delete().await;
    ledger_ns.delete().await;
}

#[tokio::test]
async fn a_cluster_baseline_deny_all_in_the_destination_namespace_sets_flows_blocked() {
    support::operator().await;
    let client = support::client().await;
    let pay_ns = TestNs::new(&client, "pay-cb").await;
    let p = pay_ns.name.clone();
    // The destination namespace holds no AppNetwork; a ClusterBaseline scoped to it by a label
    // unique to this test denies everything there.
    let l = format!("ledger-cb-{}", std::process::id());
    support::create_namespace(&client, &l, &[("tierflow-test", &l)]).await;
    let cb_name = format!("deny-{l}");
    let cbs = Api::<ClusterBaseline>::all(client.clone());
    cbs.patch(
        &cb_name,
        &PatchParams::apply("kubectl").force(),
        &Patch::Apply(&json!({
            "apiVersion": "tierflow.dev/v1alpha1", "kind": "ClusterBaseline",
            "metadata": {"name": cb_name},
            "spec": {"namespaceSelector": {"matchLabels": {"tierflow-test": l}}}
        })),
    )
    .await
    .expect("apply ClusterBaseline");
    apply_app(&client, &p, "pay", &pay(&l)).await;
    wait_ready(&client, &p, "pay", "True").await;

    let c = flows_blocked(&client, &p, "pay", "True").await;
    assert!(
        c.message.contains(&format!(
            "default deny of NetworkPolicy {l}/tierflow-baseline (tierflow's, from ClusterBaseline {cb_name})"
        )),
        "{}",
        c.message
    );
    // The ClusterBaseline goes: nothing denies the flow any more.
    cbs.delete(&cb_name, &DeleteParams::default())
        .await
        .expect("delete ClusterBaseline");
    flows_blocked(&client, &p, "pay", "False").await;
    support::delete_namespace(&client, &l).await;
    pay_ns.delete().await;
}
