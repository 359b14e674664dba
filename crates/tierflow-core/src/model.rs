//! The validated model: what an AppNetwork (and, later, a ClusterBaseline) means once every
//! field has been checked. Renderers, the simulator and the linter consume this, never the raw
//! spec. Kube-free.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::core::{Cidr, Port, Selector};

/// A policy API tierflow can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    /// `networking.k8s.io/v1` NetworkPolicy.
    NetworkPolicy,
    /// Calico `projectcalico.org/v3`.
    Calico,
    /// Cilium `cilium.io/v2`.
    Cilium,
    /// `policy.networking.k8s.io/v1alpha2` ClusterNetworkPolicy, the CNI-neutral cluster-scoped
    /// API (kubernetes-sigs/network-policy-api). Cluster-wide only: an AppNetwork on it is
    /// written as standard NetworkPolicy ([`Backend::for_namespaces`]).
    ClusterNetworkPolicy,
}

impl Backend {
    /// The name used in specs, status and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::NetworkPolicy => "NetworkPolicy",
            Backend::Calico => "Calico",
            Backend::Cilium => "Cilium",
            Backend::ClusterNetworkPolicy => "ClusterNetworkPolicy",
        }
    }

    /// Parses the name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "networkpolicy" | "standard" => Some(Backend::NetworkPolicy),
            "calico" => Some(Backend::Calico),
            "cilium" => Some(Backend::Cilium),
            "clusternetworkpolicy" | "cnp" => Some(Backend::ClusterNetworkPolicy),
            _ => None,
        }
    }

    /// Every backend.
    pub const ALL: [Backend; 4] = [
        Backend::NetworkPolicy,
        Backend::Calico,
        Backend::Cilium,
        Backend::ClusterNetworkPolicy,
    ];

    /// The backend that writes an AppNetwork's per-tier objects and the namespace baselines:
    /// this one, unless it has no namespaced form (then standard NetworkPolicy, see
    /// [`Capabilities::namespaced_objects`]).
    pub fn for_namespaces(self) -> Backend {
        if self.capabilities().namespaced_objects {
            self
        } else {
            Backend::NetworkPolicy
        }
    }

    /// What this backend's policy API can express: one row per backend. Everything that decides
    /// by backend whether a rule is expressible reads this table instead of naming backends.
    pub fn capabilities(self) -> Capabilities {
        match self {
            Backend::NetworkPolicy => Capabilities {
                l7_http: false,
                fqdn: false,
                staged: false,
                cluster_wide_object: false,
                api_server_entity: false,
                deny_rules: false,
                namespaced_objects: true,
                world_entity: false,
            },
            Backend::Calico => Capabilities {
                // Open-source Calico has no application layer policy.
                l7_http: false,
                // DNS policy is a Calico Enterprise feature.
                fqdn: false,
                staged: true,
                cluster_wide_object: true,
                // Destination `services: default/kubernetes`.
                api_server_entity: true,
                deny_rules: true,
                namespaced_objects: true,
                world_entity: false,
            },
            Backend::Cilium => Capabilities {
                l7_http: true,
                fqdn: true,
                staged: false,
                cluster_wide_object: true,
                // `toEntities: [kube-apiserver]`.
                api_server_entity: true,
                deny_rules: true,
                namespaced_objects: true,
                // `fromEntities` / `toEntities: [world]`.
                world_entity: true,
            },
            Backend::ClusterNetworkPolicy => Capabilities {
                l7_http: false,
                // `domainNames` is experimental-channel only; not written.
                fqdn: false,
                staged: false,
                // ONE `tier: Baseline` object per ClusterBaseline.
                cluster_wide_object: true,
                // Peers are namespaces, pods and CIDRs: the API server only by its addresses.
                api_server_entity: false,
                // `action: Deny` (and `Pass`), ordered by priority.
                deny_rules: true,
                // Cluster-scoped only. Its Baseline tier is evaluated after NetworkPolicies,
                // so the namespaces' allows are standard NetworkPolicy.
                namespaced_objects: false,
                // Its `Networks` peers are CIDRs (and its AppNetworks are NetworkPolicies).
                world_entity: false,
            },
        }
    }

    /// The backends that have a capability, by name, for messages ("Cilium", "Calico or
    /// Cilium"); `None` when no backend has it.
    pub fn names_with(has: impl Fn(&Capabilities) -> bool) -> Option<String> {
        let names: Vec<&str> = Backend::ALL
            .into_iter()
            .filter(|b| has(&b.capabilities()))
            .map(Backend::as_str)
            .collect();
        (!names.is_empty()).then(|| names.join(" or "))
    }
}

/// What a backend's policy API can express ([`Backend::capabilities`]). Where a model asks for
/// something its backend lacks, rendering leaves the rule out (fail closed) and reports a
/// limitation instead of rendering anything wider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// Enforces HTTP (L7) request rules (method, path) itself. Without it, flows with HTTP rules
    /// are enforced as the L4 ports they use.
    pub l7_http: bool,
    /// Can allow egress to DNS names (`fqdn` peers). Without it, such flows are left out.
    pub fqdn: bool,
    /// Has a staged (audit) form of its policies: `mode: Audit` records what would be denied
    /// without enforcing it. Without it, audit mode is refused.
    pub staged: bool,
    /// Can write a ClusterBaseline as ONE cluster-scoped object. Without it, a ClusterBaseline
    /// becomes one baseline per covered namespace.
    pub cluster_wide_object: bool,
    /// Can name the Kubernetes API server without knowing its addresses (a Service or an
    /// entity). Without it, the API server is written as its current endpoint addresses, and
    /// left out while they are unknown.
    pub api_server_entity: bool,
    /// Has explicit deny rules (which win over allows). Without it, denying is only the absence
    /// of an allow in a policy that isolates the pod. (No renderer writes deny rules today.)
    pub deny_rules: bool,
    /// Has a namespaced policy kind for an AppNetwork's per-tier objects and a namespace's
    /// baseline. Without it (ClusterNetworkPolicy, cluster-scoped only) those are written as
    /// standard NetworkPolicy: an AppNetwork's allows must be NetworkPolicies because the
    /// ClusterNetworkPolicy Baseline tier is evaluated after them (an allow written as an
    /// `Admin` Accept would override every other namespace's and the platform's denies).
    pub namespaced_objects: bool,
    /// Can name "outside the cluster" itself (an entity), whatever the cluster's ranges.
    /// Without it, a `world` peer is every address minus the cluster's pod and service ranges,
    /// and is refused while those are unknown (`HoldReason::ClusterRangesUnknown`).
    pub world_entity: bool,
}

/// Which backend an object asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendRequest {
    /// Whatever the cluster's CNI does best.
    #[default]
    Auto,
    /// This one.
    Fixed(Backend),
}

/// An HTTP request pattern (L7).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpRule {
    /// Method, any when `None`.
    pub method: Option<String>,
    /// Path regular expression, any when `None`.
    pub path: Option<String>,
}

/// Where DNS lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsTarget {
    /// Namespace of the DNS pods.
    pub namespace: String,
    /// Labels of the DNS pods.
    pub pods: Selector,
    /// NodeLocal DNSCache address, allowed as an extra /32.
    pub node_local: Option<IpAddr>,
}

/// What one input asks of its namespace's baseline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaselineWish {
    /// Deny ingress to every pod.
    pub deny_ingress: bool,
    /// Deny egress from every pod.
    pub deny_egress: bool,
    /// DNS to allow when egress is denied.
    pub dns: Option<DnsTarget>,
    /// Allow egress to the Kubernetes API server when egress is denied.
    pub kube_api_server: bool,
}

/// The merged desired baseline of one namespace: deny if any input denies, DNS if any wants it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceBaseline {
    /// Deny ingress to every pod.
    pub deny_ingress: bool,
    /// Deny egress from every pod.
    pub deny_egress: bool,
    /// Every DNS target any input wants (sorted, unique).
    pub dns: BTreeSet<DnsTarget>,
    /// Whether any input allows egress to the Kubernetes API server.
    pub kube_api_server: bool,
}

impl NamespaceBaseline {
    /// Merges the wishes of every input.
    pub fn merge<'a>(wishes: impl IntoIterator<Item = &'a BaselineWish>) -> Self {
        let mut out = NamespaceBaseline::default();
        for w in wishes {
            out.deny_ingress |= w.deny_ingress;
            out.deny_egress |= w.deny_egress;
            if let Some(d) = &w.dns {
                out.dns.insert(d.clone());
            }
            out.kube_api_server |= w.kube_api_server;
        }
        out
    }

    /// Whether anything needs to be rendered at all.
    pub fn is_empty(&self) -> bool {
        !self.deny_ingress && !self.deny_egress
    }
}

/// A tier of an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    /// Name (a DNS label).
    pub name: String,
    /// Its pods (never empty).
    pub selector: Selector,
    /// The ports it serves.
    pub ports: Vec<Port>,
}

/// Which namespaces a pod peer is in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NamespaceMatch {
    /// The AppNetwork's own namespace.
    Own,
    /// One namespace, by name (matched on `kubernetes.io/metadata.name`).
    Named(String),
    /// Namespaces by label (never empty).
    Selector(Selector),
    /// Every namespace, explicitly asked for.
    All,
}

/// One end of a flow.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A tier of this app, by index into `AppModel::tiers`.
    Tier(usize),
    /// Pods in some namespaces: one peer, so the namespace AND pod conditions both apply.
    Pods {
        /// The namespaces.
        namespaces: NamespaceMatch,
        /// The pods in them (`None`: every pod).
        pods: Option<Selector>,
    },
    /// An IP network, minus exceptions.
    Cidr {
        /// The network.
        cidr: Cidr,
        /// Networks inside it to leave out.
        except: Vec<Cidr>,
    },
    /// Any address outside the cluster: every address minus the cluster's own ranges.
    World,
    /// A DNS name or `*.` wildcard (destinations only).
    Fqdn(String),
    /// The Kubernetes API server (destinations only).
    KubeApiServer,
}

/// A permitted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// Index in `spec.flows` (for messages).
    pub index: usize,
    /// Who connects.
    pub from: Peer,
    /// Who accepts.
    pub to: Peer,
    /// Destination ports (never empty, except towards the API server, where empty means the
    /// API server's own ports).
    pub ports: Vec<Port>,
    /// Allowed HTTP requests (empty: any traffic on the ports).
    pub http: Vec<HttpRule>,
}

/// A validated AppNetwork.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppModel {
    /// AppNetwork name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// What it asks of the namespace baseline.
    pub baseline: BaselineWish,
    /// DNS every tier may reach (`None` when DNS is disabled).
    pub dns: Option<DnsTarget>,
    /// Tiers, in spec order.
    pub tiers: Vec<Tier>,
    /// Flows, in spec order.
    pub flows: Vec<Flow>,
    /// The backend asked for.
    pub backend: BackendRequest,
    /// Stage instead of enforcing.
    pub audit: bool,
}

impl AppModel {
    /// Flows arriving at tier `t` (ingress rules of its policy).
    pub fn flows_into(&self, t: usize) -> impl Iterator<Item = &Flow> {
        self.flows.iter().filter(move |f| f.to == Peer::Tier(t))
    }

    /// Flows leaving tier `t` (egress rules of its policy).
    pub fn flows_out_of(&self, t: usize) -> impl Iterator<Item = &Flow> {
        self.flows.iter().filter(move |f| f.from == Peer::Tier(t))
    }
}

pub use crate::vocab::{OPT_OUT_LABEL, OPT_OUT_VALUE, SYSTEM_NAMESPACES};

/// How a ClusterBaseline relates to one namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// The namespace gets the baseline.
    Covered,
    /// Its labels do not match.
    NotSelected,
    /// Listed in `excludeNamespaces`.
    Excluded,
    /// A system namespace not listed in `includeSystemNamespaces`.
    System,
    /// Selected, but labelled `tierflow.dev/baseline: disabled`.
    OptedOut,
}

/// A validated ClusterBaseline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterBaselineModel {
    /// Which namespaces, by label (empty: all).
    pub selector: Selector,
    /// Never these.
    pub exclude: BTreeSet<String>,
    /// System namespaces to cover anyway.
    pub include_system: BTreeSet<String>,
    /// What every covered namespace gets.
    pub wish: BaselineWish,
    /// The backend asked for.
    pub backend: BackendRequest,
    /// Stage instead of enforcing.
    pub audit: bool,
    /// Rules no namespace can override (`None`: none declared).
    pub guardrails: Option<Guardrails>,
}

/// A ClusterBaseline's guardrails: ordered rules evaluated before every namespace's policies,
/// for the pods of the namespaces it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guardrails {
    /// Order among every ClusterBaseline's guardrails, 0-99, lower first.
    pub priority: u8,
    /// The rules, in evaluation order (never empty).
    pub rules: Vec<Guardrail>,
}

/// One guardrail rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guardrail {
    /// Its name (a DNS label, unique).
    pub name: String,
    /// Allow (`true`) or Deny (`false`).
    pub allow: bool,
    /// Ingress (`true`: to the covered pods) or egress (`false`: from them).
    pub ingress: bool,
    /// The other end (any of them).
    pub peers: Vec<GuardrailPeer>,
    /// Destination ports (empty: every port).
    pub ports: Vec<Port>,
}

/// The other end of a guardrail rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuardrailPeer {
    /// Pods in some namespaces ([`NamespaceMatch::Selector`] or [`NamespaceMatch::All`]).
    Pods {
        /// The namespaces.
        namespaces: NamespaceMatch,
        /// The pods in them (`None`: every pod).
        pods: Option<Selector>,
    },
    /// An address block.
    Cidr(Cidr),
}

impl ClusterBaselineModel {
    /// Whether (and why not) the namespace `name` with `labels` is covered. `operator_namespace`
    /// counts as a system namespace.
    pub fn coverage(
        &self,
        name: &str,
        labels: &std::collections::BTreeMap<String, String>,
        operator_namespace: &str,
    ) -> Coverage {
        if !self.selector.matches(labels) {
            return Coverage::NotSelected;
        }
        if self.exclude.contains(name) {
            return Coverage::Excluded;
        }
        let system = SYSTEM_NAMESPACES.contains(&name) || name == operator_namespace;
        if system && !self.include_system.contains(name) {
            return Coverage::System;
        }
        if labels.get(OPT_OUT_LABEL).map(String::as_str) == Some(OPT_OUT_VALUE) {
            return Coverage::OptedOut;
        }
        Coverage::Covered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn cb(selector: Selector) -> ClusterBaselineModel {
        ClusterBaselineModel {
            selector,
            exclude: ["legacy".to_string()].into(),
            include_system: ["kube-public".to_string()].into(),
            wish: BaselineWish::default(),
            backend: BackendRequest::Auto,
            audit: false,
            guardrails: None,
        }
    }

    #[test]
    fn coverage_follows_selector_exclusions_system_namespaces_and_opt_out() {
        let all = cb(Selector::default());
        assert_eq!(
            all.coverage("shop", &labels(&[]), "tierflow-system"),
            Coverage::Covered
        );
        assert_eq!(
            all.coverage("legacy", &labels(&[]), "tierflow-system"),
            Coverage::Excluded
        );
        assert_eq!(
            all.coverage("kube-system", &labels(&[]), "tierflow-system"),
            Coverage::System
        );
        assert_eq!(
            all.coverage("kube-node-lease", &labels(&[]), "tierflow-system"),
            Coverage::System
        );
        assert_eq!(
            all.coverage("tierflow-system", &labels(&[]), "tierflow-system"),
            Coverage::System
        );
        assert_eq!(
            all.coverage("kube-public", &labels(&[]), "tierflow-system"),
            Coverage::Covered
        );
        assert_eq!(
            all.coverage(
                "shop",
                &labels(&[("tierflow.dev/baseline", "disabled")]),
                "tierflow-system"
            ),
            Coverage::OptedOut
        );
        let prod = cb(Selector::labels([("env", "prod")]));
        assert_eq!(
            prod.coverage("shop", &labels(&[("env", "dev")]), "x"),
            Coverage::NotSelected
        );
        assert_eq!(
            prod.coverage("shop", &labels(&[("env", "prod")]), "x"),
            Coverage::Covered
        );
    }

    #[test]
    fn every_backend_has_a_row_and_the_names_follow_it() {
        assert!(Backend::Cilium.capabilities().fqdn && Backend::Cilium.capabilities().l7_http);
        assert!(Backend::Calico.capabilities().staged);
        assert!(!Backend::NetworkPolicy.capabilities().api_server_entity);
        assert_eq!(Backend::names_with(|c| c.fqdn).as_deref(), Some("Cilium"));
        assert_eq!(
            Backend::names_with(|c| c.cluster_wide_object).as_deref(),
            Some("Calico or Cilium or ClusterNetworkPolicy")
        );
        assert_eq!(
            Backend::ClusterNetworkPolicy.for_namespaces(),
            Backend::NetworkPolicy
        );
        for b in [Backend::NetworkPolicy, Backend::Calico, Backend::Cilium] {
            assert_eq!(b.for_namespaces(), b);
            assert_eq!(Backend::parse(b.as_str()), Some(b));
        }
        assert_eq!(
            Backend::parse("ClusterNetworkPolicy"),
            Some(Backend::ClusterNetworkPolicy)
        );
        assert_eq!(Backend::names_with(|_| false), None);
    }

    #[test]
    fn merge_denies_if_any_denies_and_unions_dns() {
        let dns = |ns: &str| DnsTarget {
            namespace: ns.into(),
            pods: Selector::default(),
            node_local: None,
        };
        let a = BaselineWish {
            deny_ingress: true,
            deny_egress: false,
            dns: None,
            kube_api_server: false,
        };
        let b = BaselineWish {
            deny_ingress: false,
            deny_egress: true,
            dns: Some(dns("kube-system")),
            kube_api_server: false,
        };
        let c = BaselineWish {
            deny_ingress: false,
            deny_egress: true,
            dns: Some(dns("kube-system")),
            kube_api_server: false,
        };
        let m = NamespaceBaseline::merge([&a, &b, &c]);
        assert!(m.deny_ingress && m.deny_egress);
        assert_eq!(m.dns.len(), 1);
    }
}
