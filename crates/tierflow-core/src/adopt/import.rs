//! `tierflow import`: the policies of one or more namespaces (Kubernetes NetworkPolicy, Calico
//! `projectcalico.org/v3` NetworkPolicy, Cilium CiliumNetworkPolicy, read by the engine's own
//! readers) and the pods they select, as AppNetworks that express the same reachability; then
//! the proof ([`equivalence`]): both simulated on the same pods and representatives.
//!
//! # The translation, per namespace
//! - **Tiers** are the policies' pod selectors; policies whose selectors select the same set of
//!   the given pods (or, with no pods given, the same selector) become one tier. A pod selector
//!   that a rule names in the namespace and no tier matches becomes a tier of its own.
//! - **Baseline**: a policy selecting every pod (`podSelector: {}`) that isolates a direction
//!   makes the baseline deny it. When it also allows something beyond DNS, its rules go to a tier
//!   `all-pods` whose selector matches every pod ([`EVERY_POD_KEY`] `DoesNotExist`).
//! - **DNS**: when every pod that is isolated for egress may reach the same DNS pods
//!   (a namespace + pod selector, UDP and TCP 53), `spec.dns` names them and those rules go;
//!   otherwise DNS stays as ordinary flows and `spec.dns.enabled` is false.
//! - **Flows**: a rule towards another namespace, a CIDR, the world (every address minus the
//!   cluster's ranges; Cilium's `world` entity) or an FQDN (Cilium `toFQDNs`) is a flow on the
//!   tier's side only. Between two tiers of the namespace a connection needs both ends, so the
//!   flow's ports are those the source's egress AND the destination's ingress allow (all ports
//!   on a side its policies do not isolate).
//! - A tier's pods are isolated both ways in an AppNetwork. A direction none of the tier's
//!   policies isolates is written as explicit flows to (or from) everything on every port —
//!   unless some of the tier's pods are isolated in that direction by another policy, in which
//!   case nothing is opened (narrower, and reported).
//!
//! What has no AppNetwork form (Calico Deny/Pass/Log and negated matches, Cilium deny rules and
//! L7 rules other than HTTP, cluster-wide policies, rules the engine cannot evaluate) is left
//! out — never written wider — and recorded as a [`Gap`]; [`equivalence`] then names it as the
//! reason of every connection that differs because of it.

mod equivalence;
mod translate;
mod types;
mod yaml;

#[cfg(test)]
mod tests;

pub use equivalence::{equivalence, Difference, Equivalence};
pub use translate::import;
pub use types::{
    Gap, GapKind, Import, ImportError, ImportedApp, Options, APP_NAME, EVERY_POD_KEY,
    EVERY_POD_TIER,
};
pub use yaml::to_yaml;
