//! The offline CLI reading live objects instead of files (`--from-cluster`).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::PostParams;
use kube::Api;
use serde_json::{json, Value};

use crate::support::{self, TestNs};

fn tierflow(args: &[&str]) -> (i32, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tierflow"))
        .args(args)
        .env("KUBECONFIG", support::kubeconfig_path())
        .output()
        .expect("run tierflow");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

#[tokio::test]
async fn lint_and_simulate_read_the_live_cluster() {
    let client = support::client().await;
    let ns = TestNs::new(&client, "from-cluster").await;
    let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let wide: NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "from-every-namespace"},
        "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080}]}]}
    }))
    .unwrap();
    nps.create(&PostParams::default(), &wide).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    for (name, app) in [("api-0", "api"), ("web-0", "web")] {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/none", "ports": [{"containerPort": 8080}]}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }

    let (code, v, out) = tierflow(&["lint", "--from-cluster", "--output", "json"]);
    assert!(code == 0 || code == 1, "{out}");
    let object = format!("{}/from-every-namespace", ns.name);
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"))
        .iter()
        .filter(|f| f["object"] == object.as_str())
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"permissive-namespace-selector"),
        "{codes:?}\n{out}"
    );

    // Pods without an IP (nothing schedules them here) are still simulated by identity.
    let (code, v, out) = tierflow(&[
        "simulate",
        "--from-cluster",
        "--port",
        "8080/TCP",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let results = v["results"].as_array().unwrap_or_else(|| panic!("{out}"));
    let web_to_api = results
        .iter()
        .find(|r| {
            r["from"] == format!("{}/web-0", ns.name).as_str()
                && r["to"] == format!("{}/api-0", ns.name).as_str()
        })
        .unwrap_or_else(|| panic!("no web-0 -> api-0 result in {out}"));
    assert_eq!(web_to_api["allowed"], true);
    assert!(
        web_to_api["decidedBy"]
            .to_string()
            .contains("from-every-namespace"),
        "{web_to_api}"
    );
    ns.delete().await;
}

/// Calico `Tier` objects are read with the policies: a Pass in a higher tier is judged by the
/// default tier's Kubernetes policy, as Calico does. Only this test's objects are simulated
/// (other tests' policies in the cluster would change the evaluation mode).
#[tokio::test]
async fn from_cluster_reads_calico_tiers_so_a_pass_goes_to_the_next_tier() {
    use tierflow::core::Protocol;
    use tierflow::engine::{Endpoint, Scenario};

    let client = support::client().await;
    if !support::install_third_party_crds(
        &client,
        &[
            "calico/projectcalico.org_networkpolicies.yaml",
            "calico/projectcalico.org_globalnetworkpolicies.yaml",
            "calico/projectcalico.org_tiers.yaml",
        ],
    )
    .await
    {
        return;
    }
    let ns = TestNs::new(&client, "from-cluster-tiers").await;
    let obs = TestNs::new(&client, "from-cluster-obs").await;
    let tier = format!("tf-{}", ns.name.replace('-', ""))
        .chars()
        .take(50)
        .collect::<String>();
    let dynamic = |kind: &str, plural: &str| {
        let ar = kube::api::ApiResource {
            group: "projectcalico.org".into(),
            version: "v3".into(),
            api_version: "projectcalico.org/v3".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        Api::<kube::api::DynamicObject>::all_with(client.clone(), &ar)
    };
    let create = |api: Api<kube::api::DynamicObject>, body: Value| async move {
        let obj: kube::api::DynamicObject = serde_json::from_value(body).unwrap();
        api.create(&PostParams::default(), &obj)
            .await
            .expect("create");
    };
    create(
        dynamic("Tier", "tiers"),
        json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier",
               "metadata": {"name": tier}, "spec": {"order": 100}}),
    )
    .await;
    let gnp = format!("{tier}.pass-all");
    create(
        dynamic("GlobalNetworkPolicy", "globalnetworkpolicies"),
        json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
               "metadata": {"name": gnp},
               "spec": {"tier": tier, "types": ["Ingress"],
                        "selector": format!("projectcalico.org/namespace == '{}'", ns.name),
                        "ingress": [{"action": "Pass"}]}}),
    )
    .await;
    let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let only_web: NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "api-from-web"},
        "spec": {"podSelector": {"matchLabels": {"app": "api"}},
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}
    }))
    .unwrap();
    nps.create(&PostParams::default(), &only_web).await.unwrap();
    for (namespace, name, app) in [
        (&ns.name, "api-0", "api"),
        (&ns.name, "web-0", "web"),
        (&obs.name, "prom-0", "prometheus"),
    ] {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/none"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }

    let live = tierflow::cli::cluster::live_objects(client.clone())
        .await
        .expect("live objects");
    let mine: Vec<Value> = live
        .into_iter()
        .filter(|o| {
            let namespace = o["metadata"]["namespace"].as_str();
            let name = o["metadata"]["name"].as_str().unwrap_or("");
            match o["kind"].as_str().unwrap_or("") {
                "Namespace" => name == ns.name || name == obs.name,
                "Tier" => name == tier,
                "GlobalNetworkPolicy" => name == gnp,
                _ => namespace == Some(ns.name.as_str()) || namespace == Some(obs.name.as_str()),
            }
        })
        .collect();
    let kinds: Vec<&str> = mine.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert!(kinds.contains(&"Tier"), "{kinds:?}");
    let s = Scenario::from_values(mine.clone()).expect("scenario");
    let pod = |name: &str| {
        Endpoint::Pod(
            s.pods()
                .iter()
                .position(|p| p.name == name)
                .unwrap_or_else(|| panic!("{name}")),
        )
    };
    // The tier passes everything on: prom is then denied at the end of the default tier (the
    // Kubernetes policy allows only web), web is allowed by that policy.
    let v = s.check(pod("prom-0"), pod("api-0"), 8080, Protocol::Tcp);
    assert!(!v.allowed, "{v:?}");
    assert_eq!(v.decided_by, vec![format!("{}/api-from-web", ns.name)]);
    assert!(s.allows(pod("web-0"), pod("api-0"), 8080, Protocol::Tcp));

    let _ = dynamic("GlobalNetworkPolicy", "globalnetworkpolicies")
        .delete(&gnp, &Default::default())
        .await;
    let _ = dynamic("Tier", "tiers")
        .delete(&tier, &Default::default())
        .await;
    obs.delete().await;
    ns.delete().await;
}
