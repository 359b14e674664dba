//! The caches fill from their first LIST one page at a time (`controller::watches::LIST_PAGE`,
//! 100 objects, so that a page of objects with managed fields is not held at once). With more
//! AppNetworks and more policies than one page holds: a cold start writes every policy and
//! reports every AppNetwork, and a restart on the converged namespace finds every object in its
//! caches and writes nothing.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tierflow::crd::AppNetwork;
use tierflow::vocab::{ROLE_LABEL, ROLE_TIER};

use crate::harness::{self, within, Operator, OperatorOptions, CHAOS_LABEL};
use crate::support;

/// More AppNetworks (and tier policies) than one list page holds.
const APPS: usize = 130;
/// How long a convergence may take.
const WAIT: Duration = Duration::from_secs(60);

/// The tier policies in `ns`.
async fn tier_policies(client: &Client, ns: &str) -> Option<usize> {
    let lp = ListParams::default().labels(&format!("{ROLE_LABEL}={ROLE_TIER}"));
    let list = Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .ok()?;
    Some(list.items.len())
}

/// How many AppNetworks in `ns` report `Ready=True` for their current generation.
async fn ready_apps(client: &Client, ns: &str) -> Option<usize> {
    let list = Api::<AppNetwork>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .ok()?;
    Some(
        list.items
            .iter()
            .filter(|a| {
                let generation = a.metadata.generation;
                a.status.as_ref().is_some_and(|s| {
                    s.observed_generation == generation
                        && s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count(),
    )
}

#[tokio::test]
async fn caches_fill_from_several_list_pages_at_a_cold_start_and_at_a_restart() {
    let name = "paging";
    let Some(sc) = harness::setup(name).await else {
        return;
    };
    let client = sc.cluster.client.clone();
    let ns = format!("chaos-paging-{}", std::process::id());
    support::create_namespace(&client, &ns, &[(CHAOS_LABEL, "true")]).await;
    let apps: Api<AppNetwork> = Api::namespaced(client.clone(), &ns);
    futures::stream::iter(0..APPS)
        .map(|i| {
            let apps = apps.clone();
            async move {
                let app: AppNetwork = serde_json::from_value(json!({
                    "apiVersion": "tierflow.dev/v1alpha1",
                    "kind": "AppNetwork",
                    "metadata": {"name": format!("app-{i:03}")},
                    "spec": {"tiers": [{"name": "web",
                        "selector": {"matchLabels": {"app": format!("a{i}")}},
                        "ports": [{"port": 8080}]}]}
                }))
                .expect("an AppNetwork");
                apps.create(&PostParams::default(), &app).await
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .expect("create the AppNetworks");

    // Cold start: every AppNetwork comes from the first LIST, in two pages.
    let started = Instant::now();
    let opts = OperatorOptions::default();
    let mut op = Operator::start(&sc, "tierflow", &opts);
    within(WAIT, "a tier policy for every AppNetwork", || async {
        (tier_policies(&client, &ns).await? == APPS).then_some(())
    })
    .await;
    let policies_after = started.elapsed();
    within(WAIT, "every AppNetwork reported Ready", || async {
        (ready_apps(&client, &ns).await? == APPS).then_some(())
    })
    .await;
    let ready_after = started.elapsed();

    // Restart: the policies and AppNetworks come from LISTs of two pages each; anything
    // missing from a cache would be written again.
    op.sigkill();
    let restarted = Instant::now();
    op = Operator::start(&sc, "tierflow", &opts);
    let namespaces = harness::live_namespaces(&client).await;
    let m = within(WAIT, "the start-up pass over every namespace", || async {
        let m = op.metrics().await?;
        (m.sum("tierflow_reconcile_total{controller=\"namespace\"") >= namespaces).then_some(m)
    })
    .await;
    let pass_after = restarted.elapsed();
    // Every write but the Lease's and events: creates (POST), applies, deletes, statuses. A
    // policy missing from the cache would be created again, an AppNetwork missing from it
    // would have its policy pruned, both within that pass.
    let writes: f64 = m
        .0
        .iter()
        .filter(|(k, _)| k.starts_with("tierflow_api_writes_total{"))
        .filter(|(k, _)| !k.contains("resource=\"leases\"") && !k.contains("resource=\"events\""))
        .map(|(_, v)| v)
        .sum::<f64>()
        + 0.0;
    eprintln!(
        "CHAOS-REPORT {name}: {APPS} AppNetworks in one namespace (list pages of 100): every tier \
         policy after {policies_after:.2?}, every status Ready after {ready_after:.2?}; restart: \
         start-up pass after {pass_after:.2?} ({} namespace reconciles), {writes} writes",
        m.sum("tierflow_reconcile_total{controller=\"namespace\""),
    );
    assert_eq!(
        tier_policies(&client, &ns).await,
        Some(APPS),
        "the policies after the restart (log {})",
        op.log.display()
    );
    assert_eq!(
        writes,
        0.0,
        "the restarted operator wrote objects or statuses its caches should have held (log {})",
        op.log.display()
    );
    op.sigkill();
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&ns, &Default::default())
        .await;
}
