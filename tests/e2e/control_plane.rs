//! The control plane itself works: what every other test builds on.

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::PostParams;
use kube::Api;
use serde_json::json;

use crate::support::{self, TestNs};

#[tokio::test]
async fn a_network_policy_created_through_the_api_server_reads_back() {
    let client = support::client().await;
    let ns = TestNs::new(&client, "cp").await;
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let np: NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &np).await.unwrap();
    let back = api.get("deny-all").await.unwrap();
    assert_eq!(
        back.spec.unwrap().policy_types.unwrap(),
        ["Ingress", "Egress"]
    );
    ns.delete().await;
}

#[tokio::test]
async fn third_party_crds_install_and_their_schemas_are_enforced() {
    let client = support::client().await;
    if !support::install_third_party_crds(
        &client,
        &["calico/projectcalico.org_networkpolicies.yaml"],
    )
    .await
    {
        return;
    }
    let ns = TestNs::new(&client, "cp-crd").await;
    let ar = kube::api::ApiResource {
        group: "projectcalico.org".into(),
        version: "v3".into(),
        api_version: "projectcalico.org/v3".into(),
        kind: "NetworkPolicy".into(),
        plural: "networkpolicies".into(),
    };
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ar);
    let obj = |action: &str| -> kube::api::DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": format!("p-{}", action.to_lowercase())},
            "spec": {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": action}]}
        }))
        .unwrap()
    };
    api.create(&PostParams::default(), &obj("Allow"))
        .await
        .expect("a valid Calico policy is accepted");
    let err = api
        .create(&PostParams::default(), &obj("Allowz"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Allowz"), "{err}");
    ns.delete().await;
}
