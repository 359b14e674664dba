//! Model → objects. Pure and deterministic: the same model renders the same bytes.
//!
//! An AppNetwork goes through one intermediate form ([`ir`]): per tier, its rules with every
//! peer resolved, minus what the backend cannot express (each such rule is a typed
//! [`Limitation`]). One module per backend maps that form to objects: [`networkpolicy`],
//! [`calico`], [`cilium`]. What a backend can express is its row in
//! [`Backend::capabilities`]; adding a backend is one renderer and one row.

pub mod calico;
pub mod cilium;
pub mod cnp;
mod common;
pub mod ir;
mod json;
pub mod networkpolicy;
mod object;
pub mod summary;

use crate::model::{AppModel, Backend, ClusterBaselineModel, NamespaceBaseline};

pub use crate::vocab::{
    APP_NETWORK_LABEL, CALICO_BASELINE_ORDER, CALICO_TIER_ORDER, CLUSTER_BASELINE_LABEL,
    MANAGED_BY, MANAGER, ROLE_BASELINE, ROLE_CLUSTER_BASELINE, ROLE_LABEL, ROLE_TIER, TIER_LABEL,
};

pub use object::{
    baseline_labels, cluster_baseline_labels, digest, digest_text, metadata, tier_label_pairs,
    tier_labels, Env, Limitation, LimitationKind, Object, ObjectKind, Owner, Rendered,
    BASELINE_LABEL_PAIRS,
};

/// Renders the per-tier objects of an AppNetwork for `backend`: builds the intermediate form
/// once ([`ir::build`]), then maps it to the backend's objects.
pub fn tier_objects(
    model: &AppModel,
    backend: Backend,
    owner: Option<&Owner>,
    env: &Env,
) -> Rendered {
    let policy = ir::build(model, backend, env);
    let objects = match backend {
        // No namespaced form: the allows are NetworkPolicies (`Backend::for_namespaces`).
        Backend::NetworkPolicy | Backend::ClusterNetworkPolicy => {
            networkpolicy::objects(model, &policy, owner)
        }
        Backend::Calico => calico::objects(model, &policy, owner),
        Backend::Cilium => cilium::objects(model, &policy, owner),
    };
    Rendered {
        objects,
        limitations: policy.limitations,
    }
}

/// Renders a namespace baseline for `backend` (`None` when nothing is denied).
pub fn namespace_baseline(
    namespace: &str,
    baseline: &NamespaceBaseline,
    backend: Backend,
    audit: bool,
    owners: &[Owner],
    env: &Env,
) -> Option<Object> {
    match backend {
        Backend::NetworkPolicy | Backend::ClusterNetworkPolicy => {
            networkpolicy::baseline_object(namespace, baseline, owners, env)
        }
        Backend::Calico => calico::baseline(namespace, baseline, audit, owners),
        Backend::Cilium => cilium::baseline(namespace, baseline, owners),
    }
}

/// Renders the ONE cluster-wide object of a ClusterBaseline on backends that have one
/// (`None` for the standard backend, which writes one baseline per namespace instead).
pub fn cluster_baseline(
    name: &str,
    model: &ClusterBaselineModel,
    backend: Backend,
    operator_namespace: &str,
    owner: Option<&Owner>,
    env: &Env,
) -> Option<Object> {
    if !backend.capabilities().cluster_wide_object {
        return None;
    }
    match backend {
        Backend::NetworkPolicy => None,
        Backend::Calico => calico::cluster_baseline(name, model, operator_namespace, owner),
        Backend::Cilium => cilium::cluster_baseline(name, model, operator_namespace, owner),
        Backend::ClusterNetworkPolicy => {
            cnp::cluster_baseline(name, model, operator_namespace, owner, env)
        }
    }
}

/// A ClusterBaseline's guardrails as ONE cluster-scoped object of `backend`: `Ok(None)`
/// without guardrails, `Err(why)` when the backend cannot express every rule exactly (the
/// planner then holds the ClusterBaseline rather than render something weaker).
///
/// - ClusterNetworkPolicy: `tier: Admin` at the guardrails' priority, rules in order.
/// - Calico: a GlobalNetworkPolicy whose `order` is the priority (before the order 100 of
///   tierflow's namespaced policies, Kubernetes NetworkPolicies' 1000 and the baselines'
///   10000), rules in order; only in directions the ClusterBaseline denies.
/// - Cilium: a CiliumClusterwideNetworkPolicy of deny rules (deny wins over every allow);
///   Allow rules cannot override a namespace's deny there, so they are refused; only in
///   directions the ClusterBaseline denies.
/// - NetworkPolicy: no deny and no precedence; refused.
pub fn guardrails(
    name: &str,
    model: &ClusterBaselineModel,
    backend: Backend,
    operator_namespace: &str,
    owner: Option<&Owner>,
) -> Result<Option<Object>, String> {
    if model.guardrails.is_none() {
        return Ok(None);
    }
    match backend {
        Backend::NetworkPolicy => Err(
            "guardrails need rules evaluated before the namespaces' own policies; standard \
             NetworkPolicy has neither deny rules nor precedence (use ClusterNetworkPolicy, \
             Calico or Cilium)"
                .to_string(),
        ),
        Backend::Calico => calico::guardrails(name, model, operator_namespace, owner).map(Some),
        Backend::Cilium => cilium::guardrails(name, model, operator_namespace, owner).map(Some),
        Backend::ClusterNetworkPolicy => {
            cnp::guardrails(name, model, operator_namespace, owner).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limitation_reasons_are_unique_camel_case_and_only_l7_keeps_ready() {
        let reasons: std::collections::BTreeSet<&str> =
            LimitationKind::ALL.iter().map(|k| k.reason()).collect();
        assert_eq!(reasons.len(), LimitationKind::ALL.len());
        for k in LimitationKind::ALL {
            let r = k.reason();
            assert!(r.len() <= 64 && r.starts_with(|c: char| c.is_ascii_uppercase()));
            assert!(r.chars().all(|c| c.is_ascii_alphanumeric()), "{r}");
            assert_eq!(k.blocks_ready(), k != LimitationKind::L7Unsupported);
        }
    }

    #[test]
    fn only_backends_with_a_cluster_wide_object_render_one() {
        let spec: crate::crd::ClusterBaselineSpec = serde_yaml::from_str("{}").unwrap();
        let cb = crate::validate::cluster_baseline(&spec).unwrap();
        for b in Backend::ALL {
            assert_eq!(
                cluster_baseline("x", &cb, b, "tierflow-system", None, &Env::default()).is_some(),
                b.capabilities().cluster_wide_object
            );
        }
    }
}

/// Fixtures shared by the renderers' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::Owner;
    use crate::crd::AppNetworkSpec;
    use crate::model::AppModel;
    use crate::validate;

    pub(crate) const THREE_TIER: &str = r#"
tiers:
  - {name: frontend, selector: {matchLabels: {app: frontend}}, ports: [{port: 8080, protocol: TCP}]}
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
  - {name: database, selector: {matchLabels: {app: database}}, ports: [{port: 5432}]}
flows:
  - {from: {tier: frontend}, to: {tier: api}}
  - {from: {tier: api}, to: {tier: database}}
  - {from: {tier: database}, to: {tier: database}}
  - from: {namespace: monitoring, selector: {matchLabels: {app: prometheus}}}
    to: {tier: api}
    ports: [{port: 9090}]
  - from: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}
    to: {tier: frontend}
    ports: [{port: 80}, {port: 443}]
  - {from: {tier: api}, to: {cidr: 203.0.113.0/24}, ports: [{port: 443}]}
"#;

    pub(crate) const L7_FQDN: &str = r#"
tiers:
  - {name: frontend, selector: {matchLabels: {app: frontend}}, ports: [{port: 8080}]}
  - {name: api, selector: {matchLabels: {app: api}}, ports: [{port: 8080}]}
flows:
  - {from: {tier: api}, to: {fqdn: "*.example.com"}, ports: [{port: 443}]}
  - {from: {tier: frontend}, to: {tier: api}, http: [{method: GET, path: "/api/.*"}]}
  - {from: {tier: api}, to: {kubeAPIServer: true}}
"#;

    pub(crate) fn model_of(yaml: &str) -> AppModel {
        let spec: AppNetworkSpec = serde_yaml::from_str(yaml).unwrap();
        validate::app_network("shop", "production", &spec).unwrap()
    }

    pub(crate) fn owner() -> Owner {
        Owner {
            api_version: "tierflow.dev/v1alpha1".into(),
            kind: "AppNetwork".into(),
            name: "shop".into(),
            uid: "uid-1".into(),
        }
    }
}

#[cfg(test)]
mod port_forms {
    use serde_json::{json, Value};

    use super::fixtures::model_of;
    use super::*;

    const MEDIA: &str = "tiers:\n  - {name: media, selector: {matchLabels: {app: media}}, ports: [{port: 30000, endPort: 32767, protocol: UDP}, {name: http}, {port: 8080}]}\n  - {name: web, selector: {matchLabels: {app: web}}}\nflows:\n  - {from: {tier: web}, to: {tier: media}}\n";

    fn media_ingress(backend: Backend) -> Value {
        let r = tier_objects(&model_of(MEDIA), backend, None, &Env::default());
        let media = r
            .objects
            .iter()
            .find(|o| o.name() == "tierflow-shop-media")
            .unwrap();
        media.body()["spec"]["ingress"].clone()
    }

    #[test]
    fn ranges_and_names_are_written_the_way_each_backend_spells_them() {
        assert_eq!(
            media_ingress(Backend::NetworkPolicy)[0]["ports"],
            json!([
                {"port": 30000, "endPort": 32767, "protocol": "UDP"},
                {"port": "http", "protocol": "TCP"},
                {"port": 8080, "protocol": "TCP"},
            ])
        );
        // Calico: one rule per protocol; a range is the string "first:last".
        let calico = media_ingress(Backend::Calico);
        assert_eq!(calico[0]["protocol"], "UDP");
        assert_eq!(calico[0]["destination"]["ports"], json!(["30000:32767"]));
        assert_eq!(calico[1]["protocol"], "TCP");
        assert_eq!(calico[1]["destination"]["ports"], json!(["http", 8080]));
        // Cilium: ports are strings, a range has endPort, a name is the port.
        assert_eq!(
            media_ingress(Backend::Cilium)[0]["toPorts"][0]["ports"],
            json!([
                {"port": "30000", "endPort": 32767, "protocol": "UDP"},
                {"port": "http", "protocol": "TCP"},
                {"port": "8080", "protocol": "TCP"},
            ])
        );
    }
}

#[cfg(test)]
mod world_tests {
    use super::fixtures::model_of;
    use super::*;
    use crate::core::Cidr;
    use serde_json::json;

    const WORLD: &str = "
tiers:
  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 443}]}
flows:
  - {from: {world: true}, to: {tier: web}}
  - {from: {tier: web}, to: {world: true}, ports: [{port: 443}]}
";

    fn env(ranges: &[&str]) -> Env {
        Env {
            cluster_cidrs: ranges.iter().map(|r| Cidr::parse(r).unwrap()).collect(),
            ..Env::default()
        }
    }

    const DUAL: [&str; 4] = [
        "10.244.0.0/16",
        "10.96.0.0/12",
        "fd00:10:244::/56",
        "fd00:10:96::/112",
    ];

    #[test]
    fn networkpolicy_world_is_every_address_minus_the_cluster_per_family() {
        let r = tier_objects(&model_of(WORLD), Backend::NetworkPolicy, None, &env(&DUAL));
        let spec = &r.objects[0].body()["spec"];
        let blocks = json!([
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.96.0.0/12", "10.244.0.0/16"]}},
            {"ipBlock": {"cidr": "::/0", "except": ["fd00:10:96::/112", "fd00:10:244::/56"]}}
        ]);
        assert_eq!(spec["ingress"][0]["from"], blocks);
        assert_eq!(spec["egress"][1]["to"], blocks);
        // Only IPv4 ranges known: only IPv4 is written (an IPv6 ::/0 would match IPv6 pods).
        let r = tier_objects(
            &model_of(WORLD),
            Backend::NetworkPolicy,
            None,
            &env(&DUAL[..2]),
        );
        let from = &r.objects[0].body()["spec"]["ingress"][0]["from"];
        assert_eq!(from.as_array().unwrap().len(), 1);
        assert_eq!(from[0]["ipBlock"]["cidr"], "0.0.0.0/0");
    }

    #[test]
    fn calico_world_is_one_rule_per_family_never_mixing_families() {
        let r = tier_objects(&model_of(WORLD), Backend::Calico, None, &env(&DUAL));
        let ingress = r.objects[0].body()["spec"]["ingress"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(ingress.len(), 2);
        assert_eq!(
            ingress[0]["source"],
            json!({"nets": ["0.0.0.0/0"], "notNets": ["10.96.0.0/12", "10.244.0.0/16"]})
        );
        assert_eq!(
            ingress[1]["source"],
            json!({"nets": ["::/0"], "notNets": ["fd00:10:96::/112", "fd00:10:244::/56"]})
        );
        for rule in r.objects[0].body()["spec"]["egress"].as_array().unwrap() {
            for side in ["source", "destination"] {
                let nets: Vec<String> = ["nets", "notNets"]
                    .iter()
                    .flat_map(|f| rule[side][f].as_array().cloned().unwrap_or_default())
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                let v4 = nets.iter().filter(|n| n.contains('.')).count();
                assert!(v4 == 0 || v4 == nets.len(), "mixed families in {rule}");
            }
        }
    }

    #[test]
    fn ipv6_cidr_peers_and_excepts_render_on_every_backend() {
        let m = model_of(
            "tiers:\n  - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 443}]}\nflows:\n  - {from: {cidr: \"2001:db8::/32\", except: [\"2001:db8:1::/48\"]}, to: {tier: web}}\n",
        );
        let np = tier_objects(&m, Backend::NetworkPolicy, None, &Env::default());
        assert_eq!(
            np.objects[0].body()["spec"]["ingress"][0]["from"],
            json!([{"ipBlock": {"cidr": "2001:db8::/32", "except": ["2001:db8:1::/48"]}}])
        );
        let calico = tier_objects(&m, Backend::Calico, None, &Env::default());
        assert_eq!(
            calico.objects[0].body()["spec"]["ingress"][0]["source"],
            json!({"nets": ["2001:db8::/32"], "notNets": ["2001:db8:1::/48"]})
        );
        let cilium = tier_objects(&m, Backend::Cilium, None, &Env::default());
        assert_eq!(
            cilium.objects[0].body()["spec"]["ingress"][0]["fromCIDRSet"],
            json!([{"cidr": "2001:db8::/32", "except": ["2001:db8:1::/48"]}])
        );
    }

    #[test]
    fn an_ipv6_node_local_dns_address_is_a_slash_128() {
        let mut m = model_of(WORLD);
        m.dns.as_mut().unwrap().node_local = Some("fd00::10".parse().unwrap());
        let np = tier_objects(&m, Backend::NetworkPolicy, None, &env(&DUAL));
        let dns = &np.objects[0].body()["spec"]["egress"][0]["to"];
        assert_eq!(dns[1], json!({"ipBlock": {"cidr": "fd00::10/128"}}));
        assert_eq!(
            dns[2]["podSelector"],
            json!({"matchLabels": {"k8s-app": "node-local-dns"}})
        );
        let calico = tier_objects(&m, Backend::Calico, None, &env(&DUAL));
        let egress = calico.objects[0].body()["spec"]["egress"]
            .as_array()
            .unwrap()
            .clone();
        assert!(egress
            .iter()
            .any(|r| r["destination"]["nets"] == json!(["fd00::10/128"])));
    }
}
