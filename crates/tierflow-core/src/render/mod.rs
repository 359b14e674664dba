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
pub mod networkpolicy;
pub mod summary;

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;

use crate::core::names;
use crate::model::{AppModel, Backend, ClusterBaselineModel, NamespaceBaseline};

pub use crate::vocab::{
    APP_NETWORK_LABEL, CALICO_BASELINE_ORDER, CALICO_TIER_ORDER, CLUSTER_BASELINE_LABEL,
    MANAGED_BY, MANAGER, ROLE_BASELINE, ROLE_CLUSTER_BASELINE, ROLE_LABEL, ROLE_TIER, TIER_LABEL,
};

/// Every kind of object tierflow writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// `networking.k8s.io/v1` NetworkPolicy.
    NetworkPolicy,
    /// `projectcalico.org/v3` NetworkPolicy.
    CalicoNetworkPolicy,
    /// `projectcalico.org/v3` GlobalNetworkPolicy.
    CalicoGlobalNetworkPolicy,
    /// `projectcalico.org/v3` StagedNetworkPolicy.
    CalicoStagedNetworkPolicy,
    /// `projectcalico.org/v3` StagedGlobalNetworkPolicy.
    CalicoStagedGlobalNetworkPolicy,
    /// `cilium.io/v2` CiliumNetworkPolicy.
    CiliumNetworkPolicy,
    /// `cilium.io/v2` CiliumClusterwideNetworkPolicy.
    CiliumClusterwideNetworkPolicy,
    /// `policy.networking.k8s.io/v1alpha2` ClusterNetworkPolicy.
    ClusterNetworkPolicy,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 8] = [
        ObjectKind::NetworkPolicy,
        ObjectKind::CalicoNetworkPolicy,
        ObjectKind::CalicoGlobalNetworkPolicy,
        ObjectKind::CalicoStagedNetworkPolicy,
        ObjectKind::CalicoStagedGlobalNetworkPolicy,
        ObjectKind::CiliumNetworkPolicy,
        ObjectKind::CiliumClusterwideNetworkPolicy,
        ObjectKind::ClusterNetworkPolicy,
    ];

    /// API group.
    pub fn group(self) -> &'static str {
        match self {
            ObjectKind::NetworkPolicy => "networking.k8s.io",
            ObjectKind::CalicoNetworkPolicy
            | ObjectKind::CalicoGlobalNetworkPolicy
            | ObjectKind::CalicoStagedNetworkPolicy
            | ObjectKind::CalicoStagedGlobalNetworkPolicy => "projectcalico.org",
            ObjectKind::CiliumNetworkPolicy | ObjectKind::CiliumClusterwideNetworkPolicy => {
                "cilium.io"
            }
            ObjectKind::ClusterNetworkPolicy => "policy.networking.k8s.io",
        }
    }

    /// API version (`group/version`).
    pub fn api_version(self) -> &'static str {
        match self.group() {
            "networking.k8s.io" => "networking.k8s.io/v1",
            "projectcalico.org" => "projectcalico.org/v3",
            "policy.networking.k8s.io" => "policy.networking.k8s.io/v1alpha2",
            _ => "cilium.io/v2",
        }
    }

    /// Version alone.
    pub fn version(self) -> &'static str {
        self.api_version().rsplit('/').next().unwrap_or_default()
    }

    /// Kind.
    pub fn kind(self) -> &'static str {
        match self {
            ObjectKind::NetworkPolicy | ObjectKind::CalicoNetworkPolicy => "NetworkPolicy",
            ObjectKind::CalicoGlobalNetworkPolicy => "GlobalNetworkPolicy",
            ObjectKind::CalicoStagedNetworkPolicy => "StagedNetworkPolicy",
            ObjectKind::CalicoStagedGlobalNetworkPolicy => "StagedGlobalNetworkPolicy",
            ObjectKind::CiliumNetworkPolicy => "CiliumNetworkPolicy",
            ObjectKind::CiliumClusterwideNetworkPolicy => "CiliumClusterwideNetworkPolicy",
            ObjectKind::ClusterNetworkPolicy => "ClusterNetworkPolicy",
        }
    }

    /// Resource (plural) name.
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::NetworkPolicy | ObjectKind::CalicoNetworkPolicy => "networkpolicies",
            ObjectKind::CalicoGlobalNetworkPolicy => "globalnetworkpolicies",
            ObjectKind::CalicoStagedNetworkPolicy => "stagednetworkpolicies",
            ObjectKind::CalicoStagedGlobalNetworkPolicy => "stagedglobalnetworkpolicies",
            ObjectKind::CiliumNetworkPolicy => "ciliumnetworkpolicies",
            ObjectKind::CiliumClusterwideNetworkPolicy => "ciliumclusterwidenetworkpolicies",
            ObjectKind::ClusterNetworkPolicy => "clusternetworkpolicies",
        }
    }

    /// The CRD that serves this kind (`None` for built-in kinds).
    pub fn crd_name(self) -> Option<String> {
        (self != ObjectKind::NetworkPolicy).then(|| format!("{}.{}", self.plural(), self.group()))
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            ObjectKind::CalicoGlobalNetworkPolicy
                | ObjectKind::CalicoStagedGlobalNetworkPolicy
                | ObjectKind::CiliumClusterwideNetworkPolicy
                | ObjectKind::ClusterNetworkPolicy
        )
    }

    /// The kind of `apiVersion` + `kind`, if tierflow writes it.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Self> {
        ObjectKind::ALL
            .into_iter()
            .find(|k| k.api_version() == api_version && k.kind() == kind)
    }
}

/// A rendered object: its kind and the full body (apiVersion, kind, metadata, spec).
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// What it is.
    pub kind: ObjectKind,
    /// The object as it will be applied.
    pub body: Value,
}

impl Object {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.body
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `metadata.namespace` (`None` for cluster-scoped kinds).
    pub fn namespace(&self) -> Option<&str> {
        self.body
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
}

/// What kind of thing a backend could not express. The operator's status layer maps kinds to
/// conditions; rendering only says what happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LimitationKind {
    /// HTTP rules on a backend without L7 rules: the flow is enforced as the L4 ports it uses.
    L7Unsupported,
    /// An `fqdn` peer on a backend that cannot match DNS names: the flow is left out.
    FqdnUnsupported,
    /// An `fqdn` peer without DNS egress: the backend learns the name's addresses from the
    /// lookups it sees, so the rendered flow allows nothing.
    FqdnNeedsDns,
    /// The API server on a backend that can only name it by address, while its addresses are
    /// unknown: the flow is left out.
    ApiServerUnknown,
}

impl LimitationKind {
    /// Every kind.
    pub const ALL: [LimitationKind; 4] = [
        LimitationKind::L7Unsupported,
        LimitationKind::FqdnUnsupported,
        LimitationKind::FqdnNeedsDns,
        LimitationKind::ApiServerUnknown,
    ];

    /// CamelCase reason for a status condition (a fixed, bounded set). These are the reasons
    /// tierflow has always reported, so existing alerts and dashboards keep matching.
    pub fn reason(self) -> &'static str {
        match self {
            LimitationKind::L7Unsupported => "L7Unsupported",
            LimitationKind::FqdnUnsupported => "UnsupportedOnBackend",
            LimitationKind::FqdnNeedsDns => "FqdnNeedsDns",
            LimitationKind::ApiServerUnknown => "ApiServerUnresolved",
        }
    }

    /// Whether the AppNetwork cannot be reported ready: a declared flow is missing or allows
    /// nothing. (`false`: the flow works, enforced weaker than declared.)
    pub fn blocks_ready(self) -> bool {
        match self {
            LimitationKind::L7Unsupported => false,
            LimitationKind::FqdnUnsupported
            | LimitationKind::FqdnNeedsDns
            | LimitationKind::ApiServerUnknown => true,
        }
    }
}

/// Something the backend could not express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limitation {
    /// The `spec.flows` index it is about (`None`: not about one flow).
    pub flow: Option<usize>,
    /// What kind of limitation.
    pub kind: LimitationKind,
    /// What and why, for people.
    pub message: String,
}

/// What rendering an AppNetwork produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    /// The per-tier objects.
    pub objects: Vec<Object>,
    /// What the backend could not express (fail closed: such flows are left out).
    pub limitations: Vec<Limitation>,
}

/// Facts about the cluster a renderer may need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// The Kubernetes API server's endpoints (`default/kubernetes`), for backends that cannot
    /// name the API server otherwise.
    pub api_server: Vec<(IpAddr, u16)>,
}

/// The object that owns a rendered object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    /// API version of the owner.
    pub api_version: String,
    /// Kind of the owner.
    pub kind: String,
    /// Name of the owner.
    pub name: String,
    /// UID of the owner.
    pub uid: String,
}

impl Owner {
    /// The owner reference; `controller` marks the single managing owner.
    pub fn reference(&self, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(controller),
            block_owner_deletion: None,
        }
    }
}

/// Labels of a per-tier object.
pub fn tier_labels(app: &str, tier: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (APP_NETWORK_LABEL.to_string(), names::label_value(app)),
        (TIER_LABEL.to_string(), tier.to_string()),
        (ROLE_LABEL.to_string(), ROLE_TIER.to_string()),
    ])
}

/// Labels of a namespace baseline.
pub fn baseline_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (ROLE_LABEL.to_string(), ROLE_BASELINE.to_string()),
    ])
}

/// Labels of a cluster-wide baseline.
pub fn cluster_baseline_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (ROLE_LABEL.to_string(), ROLE_CLUSTER_BASELINE.to_string()),
        (CLUSTER_BASELINE_LABEL.to_string(), names::label_value(name)),
    ])
}

/// `metadata` for a rendered object.
pub fn metadata(
    name: &str,
    namespace: Option<&str>,
    labels: BTreeMap<String, String>,
    owners: &[OwnerReference],
) -> Value {
    let mut m = serde_json::json!({ "name": name, "labels": labels });
    if let Some(ns) = namespace {
        m["namespace"] = Value::from(ns);
    }
    if !owners.is_empty() {
        m["ownerReferences"] = serde_json::to_value(owners).unwrap_or(Value::Null);
    }
    m
}

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
