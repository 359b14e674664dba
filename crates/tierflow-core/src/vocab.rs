//! tierflow's vocabulary: every label key, annotation, well-known name and default, defined once.
//! Renderers, the planner, the engine, the verifier and the operator all read them from here.

/// `app.kubernetes.io/managed-by`: the label every object tierflow writes carries.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`], and the server-side apply field manager.
pub const MANAGER: &str = "tierflow";

/// The AppNetwork a per-tier object belongs to.
pub const APP_NETWORK_LABEL: &str = "tierflow.dev/app-network";
/// The tier a per-tier object implements.
pub const TIER_LABEL: &str = "tierflow.dev/tier";
/// The ClusterBaseline a cluster-wide object implements.
pub const CLUSTER_BASELINE_LABEL: &str = "tierflow.dev/cluster-baseline";
/// `tier`, `baseline` or `cluster-baseline`.
pub const ROLE_LABEL: &str = "tierflow.dev/role";
/// Role of per-tier objects.
pub const ROLE_TIER: &str = "tier";
/// Role of namespace baselines.
pub const ROLE_BASELINE: &str = "baseline";
/// Role of cluster-wide baselines (Calico GlobalNetworkPolicy, CiliumClusterwideNetworkPolicy).
pub const ROLE_CLUSTER_BASELINE: &str = "cluster-baseline";

/// The prefix of every label key and annotation tierflow defines.
pub const ANNOTATION_PREFIX: &str = "tierflow.dev/";

/// Annotation on every object tierflow writes: the generation of the input it was rendered from
/// (on a baseline shared by several inputs: absent; see [`INPUTS_ANNOTATION`]).
pub const GENERATION_ANNOTATION: &str = "tierflow.dev/generation";
/// Annotation on namespace baselines: what each input that shares the baseline asked of it, as
/// of the generation it was last applied from (JSON). This is how the last valid intent of an
/// input whose spec is now invalid is found again by observation, with or without its status.
pub const INPUTS_ANNOTATION: &str = "tierflow.dev/inputs";

/// tierflow's own API (`group/version`) of AppNetwork and ClusterBaseline.
pub const API_VERSION: &str = "tierflow.dev/v1alpha1";

/// The name of the one baseline object per namespace and backend.
pub const BASELINE_NAME: &str = "tierflow-baseline";

/// The label Kubernetes (1.21+, and tierflow's test control plane) sets on every namespace to
/// its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The label a namespace sets to opt out of every ClusterBaseline.
pub const OPT_OUT_LABEL: &str = "tierflow.dev/baseline";
/// The value of [`OPT_OUT_LABEL`] that opts out.
pub const OPT_OUT_VALUE: &str = "disabled";
/// Namespaces a ClusterBaseline never covers unless it lists them (besides the operator's own).
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];
/// The operator's namespace when `POD_NAMESPACE` is not set.
pub const DEFAULT_OPERATOR_NAMESPACE: &str = "tierflow-system";

/// The namespace of the cluster DNS by default.
pub const DNS_NAMESPACE: &str = "kube-system";
/// The label key of the cluster DNS pods by default (CoreDNS keeps kube-dns's label).
pub const DNS_LABEL_KEY: &str = "k8s-app";
/// The label value of the cluster DNS pods by default.
pub const DNS_LABEL_VALUE: &str = "kube-dns";

/// The port the Kubernetes API server serves on when nothing else is known.
pub const API_SERVER_PORT: u16 = 6443;

// The Cilium spellings, each written once: with and without the `k8s:` source prefix.
macro_rules! k8s_prefix {
    () => {
        "k8s:"
    };
}
macro_rules! pod_namespace_label {
    () => {
        "io.kubernetes.pod.namespace"
    };
}
macro_rules! namespace_labels_prefix {
    () => {
        "io.cilium.k8s.namespace.labels."
    };
}
/// Cilium: the prefix of labels that come from Kubernetes (`k8s:app`).
pub const CILIUM_K8S_PREFIX: &str = k8s_prefix!();
/// Cilium: the label every pod identity carries with its namespace (without the source prefix).
pub const CILIUM_POD_NAMESPACE_LABEL: &str = pod_namespace_label!();
/// Cilium: the prefix of namespace labels in a pod identity (without the source prefix).
pub const CILIUM_NAMESPACE_LABELS_PREFIX: &str = namespace_labels_prefix!();
/// Cilium: [`CILIUM_POD_NAMESPACE_LABEL`] as policies write it.
pub const CILIUM_K8S_POD_NAMESPACE_LABEL: &str = concat!(k8s_prefix!(), pod_namespace_label!());
/// Cilium: [`CILIUM_NAMESPACE_LABELS_PREFIX`] as policies write it.
pub const CILIUM_K8S_NAMESPACE_LABELS_PREFIX: &str =
    concat!(k8s_prefix!(), namespace_labels_prefix!());
/// Cilium: the entity of the Kubernetes API server.
pub const CILIUM_KUBE_APISERVER_ENTITY: &str = "kube-apiserver";
/// Cilium: the entity of every address outside the cluster (both families).
pub const CILIUM_WORLD_ENTITY: &str = "world";
/// The label of the NodeLocal DNSCache pods, in the DNS namespace (the Kubernetes addon's
/// `nodelocaldns.yaml` and Cilium's `examples/kubernetes-local-redirect/node-local-dns.yaml`).
pub const NODE_LOCAL_DNS_LABEL_KEY: &str = "k8s-app";
/// Its value.
pub const NODE_LOCAL_DNS_LABEL_VALUE: &str = "node-local-dns";

/// Calico `order` of per-tier policies: evaluated before baselines.
pub const CALICO_TIER_ORDER: f64 = 100.0;
/// Calico `order` of baselines: evaluated after every tier allow (and after Kubernetes
/// NetworkPolicies, which Calico evaluates at order 1000).
pub const CALICO_BASELINE_ORDER: f64 = 10000.0;

/// ClusterNetworkPolicy `priority` of a ClusterBaseline's `tier: Baseline` object: the last
/// (1000 is the highest number the API allows; lower runs first), so that the platform's own
/// Baseline policies decide before tierflow's deny-all.
pub const CNP_BASELINE_PRIORITY: i64 = 1000;
/// The ClusterNetworkPolicy limits (kubernetes-sigs/network-policy-api v0.2.0): rules per
/// direction, peers per rule, characters of a rule name.
pub const CNP_MAX_RULES: usize = 25;
/// See [`CNP_MAX_RULES`].
pub const CNP_MAX_PEERS: usize = 25;
/// See [`CNP_MAX_RULES`].
pub const CNP_MAX_RULE_NAME: usize = 100;

/// The default `spec.guardrails.priority` of a ClusterBaseline (0-99).
pub const GUARDRAIL_DEFAULT_PRIORITY: i32 = 50;
/// The highest guardrail priority: below [`CALICO_TIER_ORDER`], so that on Calico every
/// guardrail is ordered before tierflow's own namespaced policies.
pub const GUARDRAIL_MAX_PRIORITY: i32 = 99;

/// The NodeLocal DNSCache pods' selector ([`NODE_LOCAL_DNS_LABEL_KEY`]).
pub fn node_local_dns_pods() -> crate::core::Selector {
    crate::core::Selector::labels([(NODE_LOCAL_DNS_LABEL_KEY, NODE_LOCAL_DNS_LABEL_VALUE)])
}

/// Why pods of the AppNetwork's own namespace can only be peers as tiers.
pub const OWN_NAMESPACE_PODS: &str = "pods of this AppNetwork's own namespace take part in flows only as tiers: tierflow isolates every pod of the namespace it manages (the baseline, or their tier's policy), so a flow with them as a plain peer could never be used; declare them as a tier and name it ({tier: NAME})";
