//! The Cilium backend (renderer being written; renders nothing yet).

use super::{Object, Owner, Rendered};
use crate::model::{AppModel, ClusterBaselineModel, NamespaceBaseline};

/// Per-tier CiliumNetworkPolicies.
pub fn tier_objects(_model: &AppModel, _owner: Option<&Owner>) -> Rendered {
    Rendered::default()
}

/// The namespace baseline.
pub fn baseline(_namespace: &str, _b: &NamespaceBaseline, _owners: &[Owner]) -> Option<Object> {
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
