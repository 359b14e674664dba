use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{yes, BackendSpec, Condition, DnsSpec, ModeSpec, ObjectRefStatus, PortSpec};

/// An application's network intent: its tiers and the flows allowed between them, other
/// namespaces and CIDRs. tierflow renders it into deny-all baselines, DNS egress and one policy
/// per tier, and keeps them true.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tierflow.dev",
    crates(kube_core = "::kube_core"),
    version = "v1alpha1",
    kind = "AppNetwork",
    namespaced,
    shortname = "appnet",
    status = "AppNetworkStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Backend","type":"string","jsonPath":".status.backend"}"#,
    printcolumn = r#"{"name":"Policies","type":"integer","jsonPath":".status.policyCount"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::app_network)]
pub struct AppNetworkSpec {
    /// Which policy API to write: Auto (detect the CNI), NetworkPolicy, Calico or Cilium.
    /// ClusterNetworkPolicy has no namespaced form: an AppNetwork asking for it (or resolving
    /// to it through Auto) is written as standard NetworkPolicy.
    #[serde(default)]
    pub backend: BackendSpec,
    /// Enforce (default) or Audit (Calico staged policies: see what would be denied first).
    #[serde(default)]
    pub mode: ModeSpec,
    /// The namespace-wide deny-all baseline this app wants. Both directions are denied by default.
    #[serde(default)]
    pub baseline: BaselineSpec,
    /// DNS egress for every pod of the namespace (UDP and TCP 53 to the cluster DNS). On by default.
    #[serde(default)]
    pub dns: DnsSpec,
    /// The app's tiers: groups of pods selected by labels, each with the ports it serves.
    #[schemars(length(min = 1, max = 128))]
    pub tiers: Vec<TierSpec>,
    /// The connections allowed. Everything else to and from a tier is denied.
    #[serde(default)]
    #[schemars(length(max = 512))]
    pub flows: Vec<FlowSpec>,
}

/// Which directions the namespace baseline denies.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaselineSpec {
    /// Deny all ingress to every pod of the namespace that no policy allows. Default true.
    #[serde(default = "yes")]
    pub deny_ingress: bool,
    /// Deny all egress from every pod of the namespace that no policy allows. Default true.
    #[serde(default = "yes")]
    pub deny_egress: bool,
}

impl Default for BaselineSpec {
    fn default() -> Self {
        BaselineSpec {
            deny_ingress: true,
            deny_egress: true,
        }
    }
}

/// A tier: pods selected by labels, and the ports they serve.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::tier)]
pub struct TierSpec {
    /// Tier name, a DNS label (lower case, digits and '-', at most 63 characters).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The tier's pods. Must not be empty: an empty selector would select every pod.
    pub selector: LabelSelector,
    /// The ports the tier serves. Flows into the tier that give no ports use these.
    #[serde(default)]
    #[schemars(length(max = 128))]
    pub ports: Vec<PortSpec>,
}

/// A permitted connection. At least one side must be a tier of this AppNetwork.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::flow)]
pub struct FlowSpec {
    /// Who opens the connection.
    pub from: PeerSpec,
    /// Who accepts it.
    pub to: PeerSpec,
    /// Destination ports. Default: the ports of the destination tier. Required when the
    /// destination is not a tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub ports: Option<Vec<PortSpec>>,
    /// HTTP requests allowed on these ports (L7). Enforced on Cilium; elsewhere the L4 rule is
    /// rendered and the condition L7Enforced=False says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Vec<HttpRuleSpec>>,
}

/// An HTTP request pattern.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::http)]
pub struct HttpRuleSpec {
    /// HTTP method (GET, POST, ...); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z]+$"))]
    pub method: Option<String>,
    /// Path, an extended POSIX regular expression matched against the whole path (for example
    /// /api/v1/.*); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// One end of a flow. Set exactly one of `tier`, `namespace`, `namespaceSelector`,
/// `allNamespaces`, `cidr`, `world`, `fqdn` or `kubeAPIServer`; `selector` narrows a namespace peer to
/// some of its pods and is rendered in the same peer (namespace AND pods). Pods of this
/// AppNetwork's own namespace take part in flows only as tiers, since tierflow isolates every pod
/// of the namespace; an `allNamespaces` peer that also selects a tier's pods brings that tier's
/// side of the flow with it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::peer)]
pub struct PeerSpec {
    /// A tier of this AppNetwork, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub tier: Option<String>,
    /// A namespace by name (matched on the kubernetes.io/metadata.name label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
    /// Namespaces by label. Must not be empty; use allNamespaces to mean every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Every namespace of the cluster (the explicit form of `namespaceSelector: {}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_namespaces: Option<bool>,
    /// Pods, by label, within the namespace(s) above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// An IP network in CIDR form, for example 203.0.113.0/24 (traffic outside the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub cidr: Option<String>,
    /// Networks inside `cidr` to leave out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(max = 64)))]
    pub except: Option<Vec<String>>,
    /// Any address outside the cluster (the internet), IPv4 and IPv6: Cilium's `world` entity;
    /// on NetworkPolicy and Calico every address minus the cluster's pod and service ranges
    /// (the operator's `--cluster-cidr`, else the nodes' pod ranges). Unlike `cidr: 0.0.0.0/0`,
    /// it never matches pods. Without known cluster ranges those backends refuse it
    /// (ClusterRangesUnknown) rather than open pod traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<bool>,
    /// A DNS name (api.example.com) or wildcard (*.example.com), as a destination. Enforced on
    /// Cilium (toFQDNs); on other backends the flow is not rendered (fail closed) and Ready=False.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub fqdn: Option<String>,
    /// The Kubernetes API server, as a destination.
    #[serde(
        default,
        rename = "kubeAPIServer",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_api_server: Option<bool>,
}

/// What tierflow observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppNetworkStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (policies applied and current), Stalled (the spec cannot be applied).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The per-tier policies of the last valid generation.
    #[serde(default)]
    pub policies: Vec<ObjectRefStatus>,
    /// Number of per-tier policies (for `kubectl get`).
    #[serde(default)]
    pub policy_count: i64,
    /// The backend whose objects are in place (NetworkPolicy, Calico, Cilium).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Whether the policies in place are staged (Audit) rather than enforced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub audit: bool,
    /// The CNI tierflow detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<String>,
    /// What the `world` peers were written as: on NetworkPolicy and Calico, every address minus
    /// these cluster ranges; on Cilium, its `world` entity. Absent without world peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<WorldStatus>,
    /// How many declared flows the policies in place are verified to allow (by simulating them
    /// on representative pods for every tier and peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows: Option<FlowsStatus>,
}

/// What `world` peers were written as.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorldStatus {
    /// The cluster's own ranges left out of "every address" (empty with a world entity).
    #[serde(default, rename = "clusterCIDRs")]
    pub cluster_cidrs: Vec<String>,
    /// Where they came from: `--cluster-cidr`, the nodes' `spec.podCIDRs`, or the entity.
    pub source: String,
}

/// Declared flows, and how many the policies in place are verified to allow.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowsStatus {
    /// Flows in the spec.
    pub declared: i64,
    /// Declared flows the rendered policies allow on every declared port (flows that cannot be
    /// checked offline, such as fqdn destinations, count as verified when rendered).
    pub verified: i64,
}

/// What an AppNetwork asks of its namespace baseline, as tierflow records it on the baseline
/// object (see `plan::Record`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedBaseline {
    /// Deny ingress.
    pub deny_ingress: bool,
    /// Deny egress.
    pub deny_egress: bool,
    /// DNS to allow when egress is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSpec>,
    /// Allow egress to the Kubernetes API server when egress is denied.
    #[serde(
        default,
        rename = "kubeAPIServer",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub kube_api_server: bool,
}
