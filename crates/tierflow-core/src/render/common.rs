//! Helpers every renderer shares.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{metadata, Object, ObjectKind, Owner};
use crate::core::names::{fit, MAX_NAME};
use crate::model::{ClusterBaselineModel, SYSTEM_NAMESPACES};

/// Appends each of `new` unless an equal rule is already there (the first stays in place).
pub(crate) fn push_unique<T: PartialEq>(rules: &mut Vec<T>, new: impl IntoIterator<Item = T>) {
    for r in new {
        if !rules.contains(&r) {
            rules.push(r);
        }
    }
}

/// An object assembled as JSON: `apiVersion`, `kind`, `metadata` and `spec`.
pub(crate) fn object(
    kind: ObjectKind,
    name: &str,
    namespace: Option<&str>,
    labels: BTreeMap<String, String>,
    owners: &[OwnerReference],
    spec: Map<String, Value>,
) -> Object {
    Object {
        kind,
        body: json!({
            "apiVersion": kind.api_version(),
            "kind": kind.kind(),
            "metadata": metadata(name, namespace, labels, owners),
            "spec": spec,
        }),
    }
}

/// An object from a typed resource (which carries its own `apiVersion` and `kind`).
pub(crate) fn typed_object<T: Serialize>(kind: ObjectKind, resource: &T) -> Object {
    Object {
        kind,
        body: serde_json::to_value(resource).unwrap_or_default(),
    }
}

/// The owner reference of an object with one managing owner (none without an owner).
pub(crate) fn controller_refs(owner: Option<&Owner>) -> Vec<OwnerReference> {
    owner.map(|o| o.reference(true)).into_iter().collect()
}

/// The owner references of an object shared by several owners (none of them the controller).
pub(crate) fn shared_refs(owners: &[Owner]) -> Vec<OwnerReference> {
    owners.iter().map(|o| o.reference(false)).collect()
}

/// The name of a ClusterBaseline's one cluster-wide object.
pub(crate) fn cluster_baseline_name(name: &str) -> String {
    fit(&format!("tierflow-baseline-{name}"), MAX_NAME)
}

/// The namespaces a ClusterBaseline never covers: its `excludeNamespaces`, plus the system
/// namespaces and the operator's own namespace unless `includeSystemNamespaces` lists them
/// (the same decision as [`ClusterBaselineModel::coverage`]), sorted.
pub fn uncovered_namespaces(
    model: &ClusterBaselineModel,
    operator_namespace: &str,
) -> BTreeSet<String> {
    let mut out = model.exclude.clone();
    let system = SYSTEM_NAMESPACES
        .iter()
        .copied()
        .chain((!operator_namespace.is_empty()).then_some(operator_namespace));
    for ns in system {
        if !model.include_system.contains(ns) {
            out.insert(ns.to_string());
        }
    }
    out
}
