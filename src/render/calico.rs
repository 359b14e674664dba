//! The Calico backend (renderer being written; renders nothing yet).

use super::{Object, Owner, Rendered};
use crate::model::{AppModel, ClusterBaselineModel, NamespaceBaseline};

/// Per-tier Calico NetworkPolicies (StagedNetworkPolicies in audit mode).
pub fn tier_objects(_model: &AppModel, _owner: Option<&Owner>) -> Rendered {
    Rendered::default()
}

/// The namespace baseline.
pub fn baseline(_namespace: &str, _b: &NamespaceBaseline, _audit: bool, _owners: &[Owner]) -> Option<Object> {
    None
}

/// A ClusterBaseline as one cluster-wide object.
pub fn cluster_baseline(
    _name: &str,
    _model: &ClusterBaselineModel,
    _operator_namespace: &str,
    _owner: Option<&Owner>,
) -> Option<Object> {
    None
}
