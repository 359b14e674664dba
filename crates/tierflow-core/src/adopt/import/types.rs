//! What `import` returns: the AppNetworks with their sources, the gaps, the errors.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::core::Cidr;
use crate::crd::AppNetworkSpec;
use crate::engine::{EngineError, PolicyRef};

/// The label key of the `all-pods` tier's selector (`DoesNotExist`): no pod carries it, so the
/// tier selects every pod of the namespace (a tier's selector must not be empty).
pub const EVERY_POD_KEY: &str = "tierflow.dev/import-every-pod";

/// The name of the tier made of a namespace-wide policy's rules.
pub const EVERY_POD_TIER: &str = "all-pods";

/// The name of every imported AppNetwork.
pub const APP_NAME: &str = "imported";

/// What to import.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The namespaces to import (empty: every namespace that has a namespaced policy).
    pub namespaces: Vec<String>,
    /// The cluster's pod and service ranges (empty: the simulation's made-up ones): an
    /// `ipBlock` of every address minus exactly these is read as `world`.
    pub cluster_cidrs: Vec<Cidr>,
}

/// Why something of a policy has no AppNetwork form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GapKind {
    /// A Calico Deny, Pass or Log rule, or a Cilium deny rule: AppNetworks only allow.
    Deny,
    /// A Calico negated match (`notNets` beyond an except, `notSelector`, `notPorts`,
    /// `notProtocol`), an `ipVersion`, or a protocol other than TCP, UDP or SCTP.
    Negation,
    /// An `except` outside its `cidr` (it carves nothing; the API server refuses it).
    Except,
    /// A selector with no Kubernetes label selector form (Calico `||`, `contains`, ...).
    Selector,
    /// A Cilium L7 rule other than HTTP (DNS, Kafka, ...).
    L7,
    /// A condition the engine cannot evaluate offline (Cilium `toServices`, Calico service
    /// accounts, ...), or an entity with no AppNetwork peer.
    Unevaluable,
    /// A cluster-wide policy (Calico GlobalNetworkPolicy, CiliumClusterwideNetworkPolicy,
    /// ClusterNetworkPolicy): an AppNetwork is namespaced.
    ClusterWide,
    /// A policy its CNI refuses or would not enforce (left out by the engine too).
    Refused,
    /// A rule that admits pods of the namespace no tier selects: an AppNetwork names pods of
    /// its own namespace only as tiers.
    PodsInNoTier,
    /// A tier whose policies leave a direction open while other policies isolate some of its
    /// pods in that direction: an AppNetwork tier is isolated both ways, and opening the
    /// direction for the tier would open it for those pods too.
    OpenDirection,
    /// A policy in a namespace that was not asked for.
    NotImported,
}

impl GapKind {
    /// A bounded label.
    pub fn reason(self) -> &'static str {
        match self {
            GapKind::Deny => "DenyRule",
            GapKind::Negation => "NegatedMatch",
            GapKind::Selector => "SelectorForm",
            GapKind::Except => "ExceptOutsideCidr",
            GapKind::L7 => "L7Rule",
            GapKind::Unevaluable => "Unevaluable",
            GapKind::ClusterWide => "ClusterWide",
            GapKind::Refused => "Refused",
            GapKind::PodsInNoTier => "PodsInNoTier",
            GapKind::OpenDirection => "OpenDirection",
            GapKind::NotImported => "NotImported",
        }
    }
}

/// Something of a source policy that the AppNetworks do not express.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    /// The policy.
    pub policy: PolicyRef,
    /// The field (for example `spec.ingress[0]`), empty for the whole policy.
    pub field: String,
    /// Why it has no form.
    pub kind: GapKind,
    /// In words.
    pub message: String,
}

impl Gap {
    /// `Kind ns/name field: message`.
    pub fn describe(&self) -> String {
        let field = if self.field.is_empty() {
            String::new()
        } else {
            format!(" {}", self.field)
        };
        format!(
            "{} {}{field}: {}",
            self.policy.kind, self.policy, self.message
        )
    }
}

/// One imported AppNetwork, with where each part came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedApp {
    /// Its namespace.
    pub namespace: String,
    /// Its name ([`APP_NAME`]).
    pub name: String,
    /// The spec.
    pub spec: AppNetworkSpec,
    /// The policies behind each tier (by index into `spec.tiers`).
    pub tier_sources: Vec<BTreeSet<PolicyRef>>,
    /// The policies behind each flow (by index into `spec.flows`).
    pub flow_sources: Vec<BTreeSet<PolicyRef>>,
    /// Why each flow is there beyond its rules (empty: only its rules), for example that it
    /// writes out a direction the tier's policies leave open.
    pub flow_notes: Vec<String>,
    /// The policies behind the baseline and DNS.
    pub baseline_sources: BTreeSet<PolicyRef>,
}

/// The result of [`import`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Import {
    /// One AppNetwork per namespace with policies.
    pub apps: Vec<ImportedApp>,
    /// What has no AppNetwork form, policy by policy.
    pub gaps: Vec<Gap>,
}

/// Why the input cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The engine cannot read the input.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// A namespace asked for has no policy to import.
    #[error("namespace {0:?} has no NetworkPolicy, Calico or Cilium policy to import")]
    NoPolicies(String),
    /// Nothing to import at all.
    #[error("the input has no namespaced NetworkPolicy, Calico or Cilium policy")]
    Empty,
    /// An imported AppNetwork does not validate (a mistake of the importer).
    #[error("the imported AppNetwork {0} does not validate (a mistake of the importer)")]
    Invalid(String),
}

impl ImportError {
    /// A bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            ImportError::Engine(_) => "UnreadableInput",
            ImportError::NoPolicies(_) => "NoPolicies",
            ImportError::Empty => "NoPolicies",
            ImportError::Invalid(_) => "InvalidImport",
        }
    }
}
