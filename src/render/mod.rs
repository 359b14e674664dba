//! Model → objects. Pure and deterministic: the same model renders the same bytes.
//! One module per backend.

pub mod networkpolicy;
pub mod summary;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::core::names;

/// `app.kubernetes.io/managed-by`: the label every object tierflow writes carries.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`].
pub const MANAGER: &str = "tierflow";
/// The AppNetwork a per-tier object belongs to.
pub const APP_NETWORK_LABEL: &str = "tierflow.dev/app-network";
/// The tier a per-tier object implements.
pub const TIER_LABEL: &str = "tierflow.dev/tier";
/// `tier` or `baseline`.
pub const ROLE_LABEL: &str = "tierflow.dev/role";
/// Role of per-tier objects.
pub const ROLE_TIER: &str = "tier";
/// Role of namespace baselines.
pub const ROLE_BASELINE: &str = "baseline";

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
