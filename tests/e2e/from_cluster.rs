//! The offline CLI reading live objects instead of files (`--from-cluster`).

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::PostParams;
use kube::Api;
use serde::Deserialize;
use serde_json::{json, Value};
use tierflow::crd::AppNetwork;

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

/// One `hubble observe -o jsonpb` line (the field layout of tierflow-core's `adopt::flows`).
fn hubble_line(ns: &str, from: (&str, &str), to: (&str, &str), port: u16) -> String {
    let end = |(pod, label): (&str, &str)| {
        json!({"namespace": ns, "pod_name": pod,
               "labels": [format!("k8s:{label}"), format!("k8s:io.kubernetes.pod.namespace={ns}")]})
    };
    json!({"flow": {"verdict": "FORWARDED", "IP": {"source": "10.244.9.1", "destination": "10.244.9.2"},
                    "l4": {"TCP": {"source_port": 40000, "destination_port": port}},
                    "source": end(from), "destination": end(to),
                    "Type": "L3_L4", "traffic_direction": "EGRESS", "is_reply": false}})
    .to_string()
}

#[tokio::test]
async fn suggest_reads_the_live_pods_for_tiers_and_audits_against_an_intent() {
    let client = support::client().await;
    let ns = TestNs::new(&client, "suggest").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    // The live labels hold more than the flow records: a preferred key (the records only have
    // `app`) and per-pod labels the selector must leave out.
    for (name, labels) in [
        (
            "web-7c9f8d-aaaaa",
            json!({"app": "web", "pod-template-hash": "7c9f8d"}),
        ),
        (
            "api-0",
            json!({"app": "api", "app.kubernetes.io/name": "api-server",
                   "statefulset.kubernetes.io/pod-name": "api-0"}),
        ),
        (
            "db-0",
            json!({"app": "db", "controller-revision-hash": "db-1"}),
        ),
    ] {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/none"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let dir = std::env::temp_dir().join(format!("tierflow-e2e-suggest-{}", ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    let flows = dir.join("flows.jsonl");
    std::fs::write(
        &flows,
        [
            hubble_line(
                &ns.name,
                ("web-7c9f8d-aaaaa", "app=web"),
                ("api-0", "app=api"),
                8080,
            ),
            hubble_line(&ns.name, ("api-0", "app=api"), ("db-0", "app=db"), 5432),
        ]
        .join("\n"),
    )
    .unwrap();
    let flows = flows.to_str().unwrap().to_string();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tierflow"))
        .args(["suggest", "--from-hubble", &flows, "--from-cluster"])
        .env("KUBECONFIG", support::kubeconfig_path())
        .output()
        .expect("run tierflow");
    let yaml = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{yaml}{err}");
    assert!(
        yaml.contains(
            "{name: api-server, selector: {matchLabels: {app.kubernetes.io/name: api-server}}"
        ),
        "{yaml}"
    );
    assert!(
        yaml.contains(&format!("    # selects {}/web-7c9f8d-aaaaa\n", ns.name)),
        "{yaml}"
    );
    assert!(!yaml.contains("pod-template-hash"), "{yaml}");
    assert!(
        yaml.contains("    - {from: {tier: api-server}, to: {tier: db}, ports: [{port: 5432, protocol: TCP}]}"),
        "{yaml}"
    );
    assert!(
        err.contains("the suggestion on NetworkPolicy: allows all 2 observed connections"),
        "{err}"
    );
    // The API server takes what was suggested as it is (its schema, no edits).
    support::install_crds(&client).await;
    let apps: Api<AppNetwork> = Api::namespaced(client.clone(), &ns.name);
    let mut created = 0;
    for doc in serde_yaml::Deserializer::from_str(&yaml) {
        let app = AppNetwork::deserialize(doc).expect("an AppNetwork");
        apps.create(&PostParams::default(), &app)
            .await
            .unwrap_or_else(|e| panic!("the API server refuses the suggestion: {e}\n{yaml}"));
        created += 1;
    }
    assert_eq!(created, 1, "{yaml}");

    // The audit: an intent without api -> db denies that flow, named by tier.
    let intent = dir.join("intent.yaml");
    std::fs::write(
        &intent,
        format!(
            "apiVersion: tierflow.dev/v1alpha1\nkind: AppNetwork\nmetadata: {{name: app, namespace: {}}}\n\
             spec:\n  tiers:\n    - {{name: web, selector: {{matchLabels: {{app: web}}}}}}\n    \
             - {{name: api, selector: {{matchLabels: {{app: api}}}}, ports: [{{port: 8080}}]}}\n    \
             - {{name: db, selector: {{matchLabels: {{app: db}}}}, ports: [{{port: 5432}}]}}\n  \
             flows:\n    - {{from: {{tier: web}}, to: {{tier: api}}}}\n",
            ns.name
        ),
    )
    .unwrap();
    let (code, _, out) = tierflow(&[
        "suggest",
        "--from-hubble",
        &flows,
        "--from-cluster",
        "--against",
        intent.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{0}/api-0 -> {0}/db-0 on 5432/TCP (1 flow, first at record 2): AppNetwork {0}/app",
            ns.name
        )),
        "{out}"
    );
    assert!(out.contains("egress of tier api"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
    ns.delete().await;
}

/// Live pods carry ownerReferences: pods are grouped into workloads by their owners (two
/// Deployments sharing `app`), and a live pod never seen in a flow that shares a tier's label
/// is not selected by that tier.
#[tokio::test]
async fn suggest_from_cluster_groups_pods_by_owner_and_never_selects_an_unseen_pod() {
    let client = support::client().await;
    let ns = TestNs::new(&client, "suggest-owners").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    // The owners exist (with no replicas: no controller makes pods here), so the garbage
    // collector leaves their pods alone.
    let mut uids = std::collections::BTreeMap::new();
    for (kind, owner, labels) in [
        (
            "ReplicaSet",
            "public-6d5f",
            json!({"app": "shop-api", "tier": "public", "pod-template-hash": "6d5f"}),
        ),
        (
            "ReplicaSet",
            "internal-77c8",
            json!({"app": "shop-api", "tier": "internal", "pod-template-hash": "77c8"}),
        ),
        (
            "StatefulSet",
            "admin",
            json!({"app": "shop-api", "tier": "public", "component": "admin"}),
        ),
    ] {
        let spec = json!({"replicas": 0, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "c", "image": "registry.invalid/none"}]}}});
        let uid = if kind == "ReplicaSet" {
            let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns.name);
            let o: ReplicaSet =
                serde_json::from_value(json!({"metadata": {"name": owner}, "spec": spec})).unwrap();
            api.create(&PostParams::default(), &o)
                .await
                .unwrap()
                .metadata
                .uid
        } else {
            let mut spec = spec;
            spec["serviceName"] = json!(owner);
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
            let o: StatefulSet =
                serde_json::from_value(json!({"metadata": {"name": owner}, "spec": spec})).unwrap();
            api.create(&PostParams::default(), &o)
                .await
                .unwrap()
                .metadata
                .uid
        };
        uids.insert(owner, uid.unwrap());
    }
    for (name, labels, kind, owner) in [
        (
            "public-6d5f-aaaaa",
            json!({"app": "shop-api", "tier": "public", "pod-template-hash": "6d5f"}),
            "ReplicaSet",
            "public-6d5f",
        ),
        (
            "internal-77c8-bbbbb",
            json!({"app": "shop-api", "tier": "internal", "pod-template-hash": "77c8"}),
            "ReplicaSet",
            "internal-77c8",
        ),
        (
            "admin-0",
            json!({"app": "shop-api", "tier": "public", "component": "admin"}),
            "StatefulSet",
            "admin",
        ),
    ] {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels, "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": kind, "name": owner,
                "uid": uids[owner], "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/none"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let dir = std::env::temp_dir().join(format!("tierflow-e2e-suggest-{}", ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    let flows = dir.join("flows.jsonl");
    std::fs::write(
        &flows,
        hubble_line(
            &ns.name,
            ("public-6d5f-aaaaa", "app=shop-api"),
            ("internal-77c8-bbbbb", "app=shop-api"),
            8080,
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tierflow"))
        .args([
            "suggest",
            "--from-hubble",
            flows.to_str().unwrap(),
            "--from-cluster",
        ])
        .env("KUBECONFIG", support::kubeconfig_path())
        .output()
        .expect("run tierflow");
    let yaml = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{yaml}{err}");
    assert!(
        yaml.contains("    - {from: {tier: public}, to: {tier: internal}, ports: [{port: 8080, protocol: TCP}]}"),
        "{yaml}"
    );
    assert!(
        yaml.contains(&format!("    # selects {}/public-6d5f-aaaaa\n", ns.name)),
        "{yaml}"
    );
    assert!(!yaml.contains("admin-0"), "{yaml}");
    assert!(
        yaml.contains("matchExpressions: [{key: component, operator: DoesNotExist}]"),
        "{yaml}"
    );
    // The API server takes the narrowed selectors as they are.
    support::install_crds(&client).await;
    let apps: Api<AppNetwork> = Api::namespaced(client.clone(), &ns.name);
    for doc in serde_yaml::Deserializer::from_str(&yaml) {
        let app = AppNetwork::deserialize(doc).expect("an AppNetwork");
        apps.create(&PostParams::default(), &app)
            .await
            .unwrap_or_else(|e| panic!("the API server refuses the suggestion: {e}\n{yaml}"));
    }
    // And the unseen pod's connection is denied by what was suggested.
    let suggested = dir.join("suggested.yaml");
    std::fs::write(&suggested, &yaml).unwrap();
    let admin_flows = dir.join("admin.jsonl");
    std::fs::write(
        &admin_flows,
        hubble_line(
            &ns.name,
            ("admin-0", "app=shop-api"),
            ("internal-77c8-bbbbb", "app=shop-api"),
            8080,
        ),
    )
    .unwrap();
    let (code, _, out) = tierflow(&[
        "suggest",
        "--from-hubble",
        admin_flows.to_str().unwrap(),
        "--from-cluster",
        "--against",
        suggested.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{0}/admin-0 -> {0}/internal-77c8-bbbbb on 8080/TCP",
            ns.name
        )),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
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
