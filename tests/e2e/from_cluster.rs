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

#[tokio::test]
async fn import_reads_a_live_namespace_and_proves_the_appnetwork_equivalent() {
    let client = support::client().await;
    let ns = TestNs::new(&client, "import").await;
    let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let policies = [
        json!({"metadata": {"name": "default-deny"},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
        json!({"metadata": {"name": "allow-dns"},
               "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                        "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}}),
        json!({"metadata": {"name": "api"},
               "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                     "ports": [{"port": 8080}]}]}}),
        json!({"metadata": {"name": "web"},
               "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                        "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                                    "ports": [{"port": 8080}]}]}}),
    ];
    for mut p in policies {
        p["apiVersion"] = json!("networking.k8s.io/v1");
        p["kind"] = json!("NetworkPolicy");
        let np: NetworkPolicy = serde_json::from_value(p).unwrap();
        nps.create(&PostParams::default(), &np).await.unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    for (name, app) in [("api-0", "api"), ("web-0", "web")] {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/none", "ports": [{"containerPort": 8080}]}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tierflow"))
        .args(["import", "--from-cluster", "--namespace", &ns.name])
        .env("KUBECONFIG", support::kubeconfig_path())
        .output()
        .expect("run tierflow");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("equivalent: the AppNetworks"), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "# from NetworkPolicy {0}/api, NetworkPolicy {0}/web",
            ns.name
        )),
        "{stdout}"
    );
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 1, "{stdout}");
    let app: tierflow::crd::AppNetwork = serde_json::from_value(docs[0].clone()).unwrap();
    assert_eq!(app.metadata.namespace.as_deref(), Some(ns.name.as_str()));
    let spec = &app.spec;
    assert!(spec.baseline.deny_ingress && spec.baseline.deny_egress);
    assert!(spec.dns.enabled);
    let tiers: Vec<&str> = spec.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tiers, ["api", "web"]);
    assert_eq!(spec.flows.len(), 1, "{stdout}");
    let flow = &spec.flows[0];
    assert_eq!(
        (flow.from.tier.as_deref(), flow.to.tier.as_deref()),
        (Some("web"), Some("api"))
    );
    assert_eq!(flow.ports.as_ref().unwrap()[0].port, Some(8080));

    // A namespace without policies is bad input.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tierflow"))
        .args([
            "import",
            "--from-cluster",
            "--namespace",
            "no-such-namespace",
        ])
        .env("KUBECONFIG", support::kubeconfig_path())
        .output()
        .expect("run tierflow");
    assert_eq!(out.status.code(), Some(2));
    ns.delete().await;
}
