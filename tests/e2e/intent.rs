//! The richer intent API (issue 17) on the real control plane: port ranges, named ports; every
//! rendered object accepted by the API server and the real Calico / Cilium schemas, and a range
//! on this server's standard backend refused rather than narrowed.

use kube::api::DynamicObject;
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use tierflow::apply::api_resource;
use tierflow::render::ObjectKind;

use crate::appnetwork::{apply_app, policy, wait_ready};
use crate::support::{self, TestNs};

const CRDS: &[&str] = &[
    "calico/projectcalico.org_networkpolicies.yaml",
    "calico/projectcalico.org_globalnetworkpolicies.yaml",
    "cilium/ciliumnetworkpolicies.yaml",
    "cilium/ciliumclusterwidenetworkpolicies.yaml",
];

const MEDIA: &str = r#"
tiers:
  - {name: media, selector: {matchLabels: {app: media}}, ports: [{port: 30000, endPort: 32767, protocol: UDP}, {name: http}]}
  - {name: web, selector: {matchLabels: {app: web}}}
flows:
  - {from: {tier: web}, to: {tier: media}}
  - {from: {namespace: monitoring}, to: {tier: media}, ports: [{name: metrics}]}
  - {from: {tier: web}, to: {cidr: 198.51.100.0/24}, ports: [{port: 8000, endPort: 8010}]}
"#;

const NAMED: &str = r#"
tiers:
  - {name: media, selector: {matchLabels: {app: media}}, ports: [{name: http}, {port: 8080}]}
  - {name: web, selector: {matchLabels: {app: web}}}
flows:
  - {from: {tier: web}, to: {tier: media}}
  - {from: {namespace: monitoring}, to: {tier: media}, ports: [{name: metrics}]}
"#;

async fn setup(prefix: &str) -> (Client, TestNs, bool) {
    support::operator().await;
    let client = support::client().await;
    let third_party = support::install_third_party_crds(&client, CRDS).await;
    let ns = TestNs::new(&client, prefix).await;
    (client, ns, third_party)
}

fn ready(app: &tierflow::crd::AppNetwork) -> (String, String, String) {
    app.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

async fn spec_of(client: &Client, kind: ObjectKind, ns: &str, name: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(kind));
    let o = api.get(name).await.expect("get");
    o.data["spec"].clone()
}

#[tokio::test]
async fn a_port_range_on_a_server_that_drops_end_port_is_refused_never_narrowed() {
    let (client, ns, _) = setup("range-std").await;
    apply_app(&client, &ns.name, "media", MEDIA).await;
    let app = wait_ready(&client, &ns.name, "media", "False").await;
    let (_, reason, message) = ready(&app);
    assert_eq!(reason, "PortRangeUnsupported", "{message}");
    assert!(
        message.starts_with("spec.tiers[0].ports: the port range 30000-32767/UDP needs endPort, but this API server (v1.20"),
        "{message}"
    );
    // Nothing was written for it: no narrower policy.
    assert!(policy(&client, &ns.name, "tierflow-media-media")
        .await
        .is_none());
    assert!(policy(&client, &ns.name, "tierflow-media-web")
        .await
        .is_none());
    ns.delete().await;
}

#[tokio::test]
async fn named_ports_are_accepted_on_the_standard_backend() {
    let (client, ns, _) = setup("named-std").await;
    apply_app(&client, &ns.name, "media", NAMED).await;
    let app = wait_ready(&client, &ns.name, "media", "True").await;
    assert_eq!(ready(&app).1, "Applied");
    let p = policy(&client, &ns.name, "tierflow-media-media")
        .await
        .expect("policy");
    let spec = serde_json::to_value(p.spec).unwrap();
    assert_eq!(
        spec["ingress"][0]["ports"],
        json!([{"port": "http", "protocol": "TCP"}, {"port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        spec["ingress"][1]["ports"],
        json!([{"port": "metrics", "protocol": "TCP"}])
    );
    ns.delete().await;
}

#[tokio::test]
async fn ranges_and_named_ports_are_accepted_by_the_real_calico_schema() {
    let (client, ns, third_party) = setup("range-calico").await;
    if !third_party {
        ns.delete().await;
        return;
    }
    apply_app(
        &client,
        &ns.name,
        "calico",
        &format!("backend: Calico\n{MEDIA}"),
    )
    .await;
    let app = wait_ready(&client, &ns.name, "calico", "True").await;
    assert_eq!(ready(&app).1, "Applied");
    let kind = ObjectKind::CalicoNetworkPolicy;
    let media = spec_of(&client, kind, &ns.name, "tierflow-calico-media").await;
    let web = spec_of(&client, kind, &ns.name, "tierflow-calico-web").await;
    assert_eq!(
        media["ingress"][0]["destination"]["ports"],
        json!(["30000:32767"])
    );
    assert_eq!(media["ingress"][1]["destination"]["ports"], json!(["http"]));
    assert!(
        web["egress"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["destination"]["ports"] == json!(["8000:8010"])),
        "{web}"
    );
    ns.delete().await;
}

/// The Cilium CRD in ../shared/crds predates Cilium 1.16 and has no `endPort`: the API server
/// prunes it, so a range is refused there; named ports are accepted.
#[tokio::test]
async fn on_a_cilium_crd_without_end_port_ranges_are_refused_and_names_accepted() {
    let (client, ns, third_party) = setup("range-cilium").await;
    if !third_party {
        ns.delete().await;
        return;
    }
    apply_app(
        &client,
        &ns.name,
        "ranged",
        &format!("backend: Cilium\n{MEDIA}"),
    )
    .await;
    let app = wait_ready(&client, &ns.name, "ranged", "False").await;
    let (_, reason, message) = ready(&app);
    assert_eq!(reason, "PortRangeUnsupported", "{message}");
    assert!(
        message.contains("the installed CiliumNetworkPolicy CRD has no endPort"),
        "{message}"
    );
    apply_app(
        &client,
        &ns.name,
        "named",
        &format!("backend: Cilium\n{NAMED}"),
    )
    .await;
    let app = wait_ready(&client, &ns.name, "named", "True").await;
    assert_eq!(ready(&app).1, "Applied");
    let media = spec_of(
        &client,
        ObjectKind::CiliumNetworkPolicy,
        &ns.name,
        "tierflow-named-media",
    )
    .await;
    assert_eq!(
        media["ingress"][0]["toPorts"][0]["ports"],
        json!([{"port": "http", "protocol": "TCP"}, {"port": "8080", "protocol": "TCP"}])
    );
    assert!(app.name_any() == "named");
    ns.delete().await;
}

const WORLD: &str = r#"
dns: {nodeLocalAddress: "fd00::10"}
tiers:
  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 443}]}
flows:
  - {from: {world: true}, to: {tier: web}}
  - {from: {tier: web}, to: {world: true}, ports: [{port: 443}]}
  - {from: {tier: web}, to: {cidr: "2001:db8::/32", except: ["2001:db8:1::/48"]}, ports: [{port: 8443}]}
"#;

/// This control plane has no nodes (so no `spec.podCIDRs`) and the test operator runs without
/// `--cluster-cidr`: a world peer on the standard backend is refused, never written as a bare
/// `0.0.0.0/0`; on Cilium (the world entity) it is applied, and the real Cilium CRD accepts it.
#[tokio::test]
async fn a_world_peer_without_cluster_ranges_is_refused_where_it_needs_them() {
    let (client, ns, third_party) = setup("world").await;
    apply_app(&client, &ns.name, "world", WORLD).await;
    let app = wait_ready(&client, &ns.name, "world", "False").await;
    let (_, reason, message) = ready(&app);
    assert_eq!(reason, "ClusterRangesUnknown", "{message}");
    assert!(
        message.starts_with("spec.flows[0].from: a world peer on NetworkPolicy"),
        "{message}"
    );
    assert!(policy(&client, &ns.name, "tierflow-world-web")
        .await
        .is_none());
    if third_party {
        apply_app(
            &client,
            &ns.name,
            "cworld",
            &format!("backend: Cilium\n{WORLD}"),
        )
        .await;
        let app = wait_ready(&client, &ns.name, "cworld", "True").await;
        assert_eq!(ready(&app).1, "Applied");
        let world = app
            .status
            .as_ref()
            .and_then(|s| s.world.clone())
            .expect("status.world");
        assert!(world.cluster_cidrs.is_empty() && world.source.contains("world entity"));
        let web = spec_of(
            &client,
            ObjectKind::CiliumNetworkPolicy,
            &ns.name,
            "tierflow-cworld-web",
        )
        .await;
        assert_eq!(web["ingress"][0]["fromEntities"], json!(["world"]));
        assert!(web["egress"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["toEntities"] == json!(["world"])));
        assert!(web["egress"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["toCIDRSet"]
                == json!([{"cidr": "2001:db8::/32", "except": ["2001:db8:1::/48"]}])));
    }
    ns.delete().await;
}

/// What `tierflow render --cluster-cidr ...` writes for world and IPv6 peers, created as is:
/// the API server (NetworkPolicy) and the real Calico and Cilium schemas accept every object.
#[tokio::test]
async fn rendered_world_and_ipv6_objects_are_accepted_on_every_backend() {
    use tierflow::cli::render::{render_input, RenderOptions};
    use tierflow::core::Cidr;
    use tierflow::model::Backend;
    let (client, ns, third_party) = setup("world-render").await;
    let cluster: Vec<Cidr> = [
        "10.244.0.0/16",
        "10.96.0.0/12",
        "fd00:10:244::/56",
        "fd00:10:96::/112",
    ]
    .iter()
    .map(|c| Cidr::parse(c).unwrap())
    .collect();
    let doc = format!(
        "apiVersion: tierflow.dev/v1alpha1\nkind: AppNetwork\nmetadata: {{name: offline, namespace: {}}}\nspec:\n{}",
        ns.name,
        WORLD.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let input = tierflow::cli::input::parse("world.yaml", &doc).unwrap();
    let backends: &[Backend] = if third_party {
        &[Backend::NetworkPolicy, Backend::Calico, Backend::Cilium]
    } else {
        &[Backend::NetworkPolicy]
    };
    for backend in backends {
        let out = render_input(
            &input,
            &RenderOptions {
                backend: Some(*backend),
                cluster_cidrs: cluster.clone(),
                ..RenderOptions::default()
            },
        )
        .unwrap();
        assert!(!out.objects.is_empty());
        for o in &out.objects {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &ns.name, &api_resource(o.kind()));
            let mut body: DynamicObject = serde_json::from_value(o.to_value()).unwrap();
            body.metadata.name = Some(format!("{}-{}", o.name(), backend.as_str().to_lowercase()));
            let created = api
                .create(&Default::default(), &body)
                .await
                .unwrap_or_else(|e| panic!("{backend:?} {}: {e}", o.name()));
            // Nothing pruned: the spec reads back as written.
            assert_eq!(
                created.data["spec"],
                o.body()["spec"],
                "{backend:?} {}",
                o.name()
            );
        }
    }
    ns.delete().await;
}
