//! Competing writers: people and other controllers edit, delete, replace, relabel or
//! server-side-apply (forced, with another field manager) what tierflow manages. tierflow puts
//! its intent back, and leaves alone what is not its own: a user's extra label or annotation on a
//! managed object, a user's own NetworkPolicy, and an object of a name it wants that it did not
//! create (it reports `NameConflict` instead of taking it over).

use std::time::{Duration, Instant};

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{json, Value};
use tierflow::crd::AppNetwork;

use crate::harness::{self, within, Operator, OperatorOptions};
use crate::workload::{Workload, APP};

const RESTORE: Duration = Duration::from_secs(15);

fn np(v: Value) -> NetworkPolicy {
    serde_json::from_value(v).expect("a NetworkPolicy")
}

#[tokio::test]
async fn competing_writers_are_reverted_and_foreign_objects_and_fields_are_left_alone() {
    let name = "writers";
    let Some(sc) = harness::setup(name).await else {
        return;
    };
    let client = sc.cluster.client.clone();
    let wl = Workload::create(&client, name, 1, true).await;
    let ns = wl.namespaces[0].clone();
    let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    // A user's own policy, before tierflow runs, and one that merely looks like tierflow's.
    let own = nps
        .create(
            &PostParams::default(),
            &np(
                json!({"metadata": {"name": "team-allow-metrics", "labels": {"team": "blue"}},
                       "spec": {"podSelector": {"matchLabels": {"app": "api"}},
                                "ingress": [{"ports": [{"port": 9100}]}]}}),
            ),
        )
        .await
        .expect("user policy");
    let lookalike = nps
        .create(
            &PostParams::default(),
            &np(json!({"metadata": {"name": "tierflow-legacy-db", "labels": {
                           "app.kubernetes.io/managed-by": "tierflow", "tierflow.dev/role": "tier"}},
                       "spec": {"podSelector": {"matchLabels": {"app": "legacy"}}}})),
        )
        .await
        .expect("look-alike policy");
    wl.ignore(&ns, "tierflow-legacy-db");
    let mut op = Operator::start(&sc, "tierflow", &OperatorOptions::default());
    wl.apply_apps(0).await;
    wl.converge(Duration::from_secs(60)).await;
    let api = format!("tierflow-{APP}-api");
    let mut times: Vec<(&str, Duration)> = Vec::new();

    // A user's label and annotation on a managed object: kept through everything below.
    nps.patch(
        &api,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "blue"},
                                          "annotations": {"example.com/owner": "blue"}}})),
    )
    .await
    .expect("label");

    // 1. `kubectl edit`: a port changed in place.
    let t = Instant::now();
    nps.patch(
        &api,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"ingress": [{"ports": [{"port": 1}]}]}})),
    )
    .await
    .expect("edit");
    wl.converge(RESTORE).await;
    times.push(("hand edit (merge patch of the spec)", t.elapsed()));

    // 2. Another field manager, forced, on a field tierflow owns.
    let t = Instant::now();
    nps.patch(
        &api,
        &PatchParams::apply("intruder").force(),
        &Patch::Apply(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                             "metadata": {"name": api},
                             "spec": {"podSelector": {"matchLabels": {"app": "hacked"}}}}),
        ),
    )
    .await
    .expect("forced apply");
    wl.converge(RESTORE).await;
    times.push((
        "forced server-side apply of a conflicting field",
        t.elapsed(),
    ));

    // 3. Another field manager, forced, takes the whole ingress list and the policy types (on a
    //    NetworkPolicy the selector and rule lists are atomic: whoever applies them owns them).
    let t = Instant::now();
    nps.patch(
        &api,
        &PatchParams::apply("intruder").force(),
        &Patch::Apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                             "metadata": {"name": api},
                             "spec": {"policyTypes": ["Egress"],
                                      "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}})),
    )
    .await
    .expect("forced apply of rules");
    wl.converge(RESTORE).await;
    times.push((
        "forced server-side apply of the rules and policy types",
        t.elapsed(),
    ));

    // 4. Replaced (PUT) with another spec, labels kept.
    let t = Instant::now();
    let mut live = nps.get(&api).await.expect("get");
    live.spec = Some(
        serde_json::from_value(json!({"podSelector": {"matchLabels": {"app": "api"}}}))
            .expect("spec"),
    );
    nps.replace(&api, &PostParams::default(), &live)
        .await
        .expect("replace");
    wl.converge(RESTORE).await;
    times.push(("replaced (PUT) with another spec", t.elapsed()));

    // 5. The managed-by label and the owner reference removed.
    let t = Instant::now();
    nps.patch(
        &api,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": null},
                                          "ownerReferences": null}}),
        ),
    )
    .await
    .expect("unlabel");
    wl.converge(RESTORE).await;
    times.push(("managed-by label and owner reference removed", t.elapsed()));
    let live = nps.get(&api).await.expect("get");
    assert_eq!(
        live.labels().get("team").map(String::as_str),
        Some("blue"),
        "a user's label on a managed object was removed"
    );
    assert_eq!(
        live.annotations()
            .get("example.com/owner")
            .map(String::as_str),
        Some("blue"),
        "a user's annotation on a managed object was removed"
    );

    // 6. Deleted: a tier policy, then the baseline.
    for victim in [api.as_str(), "tierflow-baseline"] {
        let t = Instant::now();
        let uid = nps.get(victim).await.expect("get").uid();
        nps.delete(victim, &DeleteParams::default())
            .await
            .expect("delete");
        within(RESTORE, "the deleted object back", || async {
            let o = nps.get_opt(victim).await.ok()??;
            (o.uid() != uid).then_some(())
        })
        .await;
        wl.converge(RESTORE).await;
        times.push((
            if victim == api {
                "tier policy deleted"
            } else {
                "baseline deleted"
            },
            t.elapsed(),
        ));
    }

    // 7. Someone else's object takes a name tierflow wants: never taken over; NameConflict.
    let db = format!("tierflow-{APP}-database");
    nps.delete(&db, &DeleteParams::default())
        .await
        .expect("delete");
    let foreign = np(json!({"metadata": {"name": db, "labels": {"team": "red"}},
                            "spec": {"podSelector": {"matchLabels": {"app": "red"}}}}));
    let created = within(RESTORE, "the foreign object created", || async {
        // tierflow may put its own back first; then try again.
        match nps.create(&PostParams::default(), &foreign).await {
            Ok(o) => Some(o),
            Err(_) => {
                let _ = nps.delete(&db, &DeleteParams::default()).await;
                None
            }
        }
    })
    .await;
    let apps: Api<AppNetwork> = Api::namespaced(client.clone(), &ns);
    let conflict = within(RESTORE, "Ready=False NameConflict", || async {
        let a = apps.get(APP).await.ok()?;
        let c = a
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (c.status == "False" && c.reason == "NameConflict").then_some(c.message)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = nps.get(&db).await.expect("the foreign object");
    assert_eq!(
        still.resource_version(),
        created.resource_version(),
        "tierflow modified an object it did not create"
    );
    // The owner deletes it: tierflow's own comes back.
    let t = Instant::now();
    nps.delete(&db, &DeleteParams::default())
        .await
        .expect("delete");
    wl.converge(Duration::from_secs(90)).await;
    times.push(("name freed after a NameConflict", t.elapsed()));

    // The user's own policies were never touched.
    for (n, before) in [
        ("team-allow-metrics", &own),
        ("tierflow-legacy-db", &lookalike),
    ] {
        let now = nps.get(n).await.expect("user policy still there");
        assert_eq!(
            now.resource_version(),
            before.resource_version(),
            "{n} was modified"
        );
    }
    let drift = op
        .metrics()
        .await
        .map(|m| m.sum("tierflow_drift_corrections_total"))
        .unwrap_or(0.0);
    assert!(op.exited().is_none());
    eprintln!(
        "CHAOS-REPORT {name}: restored (time until the cluster matched the intent again): {}; \
         NameConflict reported: {conflict:?}; foreign object, user policy and look-alike \
         untouched; user label and annotation on a managed object kept; \
         tierflow_drift_corrections_total {drift}",
        times
            .iter()
            .map(|(what, t)| format!("{what} {t:.2?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    op.sigkill();
    wl.teardown().await;
}
