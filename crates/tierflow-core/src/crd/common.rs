use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A transport protocol.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ProtocolSpec {
    /// TCP (default).
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
    /// SCTP.
    #[serde(rename = "SCTP")]
    Sctp,
}

impl From<crate::core::Protocol> for ProtocolSpec {
    fn from(p: crate::core::Protocol) -> Self {
        match p {
            crate::core::Protocol::Tcp => ProtocolSpec::Tcp,
            crate::core::Protocol::Udp => ProtocolSpec::Udp,
            crate::core::Protocol::Sctp => ProtocolSpec::Sctp,
        }
    }
}

/// A destination port and protocol: one numbered port, a range (`port` to `endPort`), or a
/// container port by name. Set `port` or `name`, not both.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::port)]
pub struct PortSpec {
    /// Port number, 1-65535; with endPort, the first port of a range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// The last port of a range starting at port (inclusive; at least port), for example
    /// port 30000 and endPort 32767. The standard NetworkPolicy backend needs Kubernetes 1.22 or
    /// later for it (older API servers drop the field, so tierflow refuses with
    /// PortRangeUnsupported there); Calico and Cilium always support it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub end_port: Option<i32>,
    /// A container port name (the `name` of a port in the pod spec, for example http) instead
    /// of a number: matches whatever number each destination pod gives that name. An IANA
    /// service name: at most 15 lower-case letters, digits and '-'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: Option<String>,
    /// TCP (default), UDP or SCTP.
    #[serde(default)]
    pub protocol: ProtocolSpec,
}

impl PortSpec {
    /// One numbered port.
    pub fn number(port: i32, protocol: ProtocolSpec) -> Self {
        PortSpec {
            port: Some(port),
            protocol,
            ..PortSpec::default()
        }
    }

    /// One numbered port of a simulated connection.
    pub fn of(port: u16, protocol: crate::core::Protocol) -> Self {
        PortSpec::number(i32::from(port), protocol.into())
    }
}

/// Where DNS lives, so pods that are denied egress can still resolve names.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::cel::dns)]
pub struct DnsSpec {
    /// Allow egress to the cluster DNS on UDP and TCP port 53. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Namespace of the DNS pods. Default kube-system.
    #[serde(default = "kube_system")]
    #[schemars(length(max = 63))]
    pub namespace: String,
    /// Labels of the DNS pods. Default k8s-app=kube-dns (CoreDNS keeps this label).
    #[serde(default = "kube_dns")]
    pub selector: LabelSelector,
    /// Address of NodeLocal DNSCache (for example 169.254.20.10), allowed as an extra /32 on port 53.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub node_local_address: Option<String>,
}

impl Default for DnsSpec {
    fn default() -> Self {
        DnsSpec {
            enabled: true,
            namespace: kube_system(),
            selector: kube_dns(),
            node_local_address: None,
        }
    }
}

pub(crate) fn yes() -> bool {
    true
}

fn kube_system() -> String {
    crate::vocab::DNS_NAMESPACE.to_string()
}

fn kube_dns() -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            [(
                crate::vocab::DNS_LABEL_KEY.to_string(),
                crate::vocab::DNS_LABEL_VALUE.to_string(),
            )]
            .into(),
        ),
        match_expressions: None,
    }
}

/// A status condition (the shape of metav1.Condition, as kstatus, Flux and Argo CD read it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, for example Ready.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// A CamelCase reason.
    pub reason: String,
    /// A human-readable message.
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The generation this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// An object tierflow wrote.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRefStatus {
    /// API version, for example networking.k8s.io/v1.
    pub api_version: String,
    /// Kind, for example NetworkPolicy.
    pub kind: String,
    /// Object name (in the AppNetwork's namespace).
    pub name: String,
}

/// Which policy API tierflow writes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BackendSpec {
    /// Detect the CNI and use what it does best (default; the operator's `--backend` flag can
    /// set the cluster default instead).
    #[default]
    Auto,
    /// Standard `networking.k8s.io/v1` NetworkPolicy.
    NetworkPolicy,
    /// Calico `projectcalico.org/v3` policies.
    Calico,
    /// Cilium `cilium.io/v2` policies.
    Cilium,
    /// `policy.networking.k8s.io/v1alpha2` ClusterNetworkPolicy (kubernetes-sigs/network-policy-api).
    /// A ClusterBaseline becomes ONE ClusterNetworkPolicy in the Baseline tier. It has no
    /// namespaced form: an AppNetwork asking for it is written as standard NetworkPolicy, which
    /// that API evaluates before its Baseline tier.
    ClusterNetworkPolicy,
}

/// Enforce the policies, or stage them for review.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ModeSpec {
    /// Enforce (default).
    #[default]
    Enforce,
    /// Render staged policies that show what would be denied without enforcing it (Calico only;
    /// rejected with a condition on other backends).
    Audit,
}
