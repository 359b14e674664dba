use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{yes, BackendSpec, Condition, DnsSpec, ModeSpec, PortSpec};

/// Deny-all plus DNS egress for every namespace matching a selector, including namespaces
/// created later. kube-system, kube-public, kube-node-lease and the operator's own namespace are
/// never selected unless listed in `includeSystemNamespaces`; a namespace labelled
/// `tierflow.dev/baseline: disabled` opts out.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tierflow.dev",
    crates(kube_core = "::kube_core"),
    version = "v1alpha1",
    kind = "ClusterBaseline",
    shortname = "cbl",
    status = "ClusterBaselineStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Backend","type":"string","jsonPath":".status.backend"}"#,
    printcolumn = r#"{"name":"Namespaces","type":"integer","jsonPath":".status.namespaces"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::cluster_baseline)]
pub struct ClusterBaselineSpec {
    /// Which policy API to write: Auto (detect the CNI), NetworkPolicy (one object per
    /// namespace), Calico (one GlobalNetworkPolicy), Cilium (one
    /// CiliumClusterwideNetworkPolicy) or ClusterNetworkPolicy (one
    /// policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy in the Baseline tier).
    #[serde(default)]
    pub backend: BackendSpec,
    /// Enforce (default) or Audit (Calico staged policies).
    #[serde(default)]
    pub mode: ModeSpec,
    /// Namespaces to cover, by label. An empty selector (the default) means every namespace.
    #[serde(default)]
    pub namespace_selector: LabelSelector,
    /// Namespaces never to cover, by name.
    #[serde(default)]
    #[schemars(length(max = 256), inner(length(max = 63)))]
    pub exclude_namespaces: Vec<String>,
    /// System namespaces (kube-system, kube-public, kube-node-lease, the operator's own) to cover
    /// anyway, by name. They are excluded otherwise.
    #[serde(default)]
    #[schemars(length(max = 256), inner(length(max = 63)))]
    pub include_system_namespaces: Vec<String>,
    /// Deny all ingress that no policy allows. Default true.
    #[serde(default = "yes")]
    pub deny_ingress: bool,
    /// Deny all egress that no policy allows (DNS stays allowed). Default true.
    #[serde(default = "yes")]
    pub deny_egress: bool,
    /// DNS egress (UDP and TCP 53 to the cluster DNS) for every covered namespace.
    #[serde(default)]
    pub dns: DnsSpec,
    /// Allow every pod egress to the Kubernetes API server.
    #[serde(default, rename = "allowKubeAPIServer")]
    pub allow_kube_api_server: bool,
    /// Ordered Deny / Allow rules no namespace can override, for the pods of the covered
    /// namespaces (the same selection as the baseline: selector, exclusions, system namespaces,
    /// opt-out label). Written as a ClusterNetworkPolicy in the Admin tier, or a Calico
    /// GlobalNetworkPolicy ordered before every namespace's policies, or Cilium deny rules.
    /// Where the backend cannot express a rule exactly, nothing is written and the
    /// ClusterBaseline reports Ready=False, reason GuardrailUnsupported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<GuardrailsSpec>,
}

/// Guardrails: ordered rules evaluated before the namespaces' own policies.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::guardrails)]
pub struct GuardrailsSpec {
    /// Order among the guardrails of every ClusterBaseline, 0-99, lower first (default 50): the
    /// ClusterNetworkPolicy priority in the Admin tier and the Calico order (below the order
    /// 100 of tierflow's own namespaced policies). Give overlapping guardrails of different
    /// ClusterBaselines different priorities: at equal priority their order is undefined.
    #[serde(default = "default_guardrail_priority")]
    #[schemars(range(min = 0, max = 99))]
    pub priority: i32,
    /// The rules, in evaluation order: for a connection, the first rule that matches it
    /// decides (Deny or Allow), before any namespace's policy. At most 25 per direction.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub rules: Vec<GuardrailSpec>,
}

fn default_guardrail_priority() -> i32 {
    crate::vocab::GUARDRAIL_DEFAULT_PRIORITY
}

/// One guardrail rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::guardrail)]
pub struct GuardrailSpec {
    /// A DNS label, unique among the rules (it names the rule in the rendered objects and in
    /// simulation verdicts).
    #[schemars(length(max = 63))]
    pub name: String,
    /// Deny (no namespace policy can open it) or Allow (no namespace policy can close it).
    pub action: GuardrailAction,
    /// Ingress (connections to the covered pods, from the peers) or Egress (connections from
    /// the covered pods, to the peers).
    pub direction: GuardrailDirection,
    /// The other end of the connection; the rule matches when any peer does. At least one.
    #[schemars(length(max = 64))]
    pub peers: Vec<GuardrailPeerSpec>,
    /// Destination ports (number, range or name); empty: every port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub ports: Vec<PortSpec>,
}

/// What a guardrail rule does.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum GuardrailAction {
    /// The connection is denied, whatever the namespaces' policies allow.
    Deny,
    /// The connection is allowed, whatever the namespaces' policies deny.
    Allow,
}

/// The direction of a guardrail rule, seen from the covered pods.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum GuardrailDirection {
    /// Connections arriving at the covered pods.
    Ingress,
    /// Connections leaving the covered pods.
    Egress,
}

/// The other end of a guardrail rule: pods (by namespace and pod labels) or an address block.
/// Set namespaceSelector or allNamespaces (optionally with podSelector), or cidr.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::guardrail_peer)]
pub struct GuardrailPeerSpec {
    /// Pods in the namespaces with these labels (must not be empty: use allNamespaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Pods in every namespace.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_namespaces: bool,
    /// Only the pods with these labels in those namespaces (default: every pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// An address block, for example 169.254.169.254/32 (egress on ClusterNetworkPolicy; it
    /// also matches pod addresses there and on Calico, not on Cilium).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub cidr: Option<String>,
}

/// What tierflow observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBaselineStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (every selected namespace has its baseline), Stalled (the spec is invalid).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Number of namespaces whose baseline is in place.
    #[serde(default)]
    pub namespaces: i64,
    /// Selected namespaces that opted out with `tierflow.dev/baseline: disabled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opted_out: Vec<String>,
    /// Selected namespaces that could not be reconciled, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<NamespaceFailure>,
    /// The backend whose objects are in place (NetworkPolicy, Calico, Cilium).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Whether the policies in place are staged (Audit) rather than enforced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub audit: bool,
    /// The CNI tierflow detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<String>,
}

/// A namespace that could not be reconciled.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceFailure {
    /// The namespace.
    pub namespace: String,
    /// A short CamelCase reason.
    pub reason: String,
    /// What went wrong.
    pub message: String,
}
