//! Helpers every renderer shares.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{Map, Value};

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
    // Built by moving `spec` in: `json!` would serialise it into a copy and drop it.
    let mut body = Map::new();
    body.insert("apiVersion".into(), Value::from(kind.api_version()));
    body.insert("kind".into(), Value::from(kind.kind()));
    body.insert("metadata".into(), metadata(name, namespace, labels, owners));
    body.insert("spec".into(), Value::Object(spec));
    Object::from_value(kind, Value::Object(body))
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

/// The name of a ClusterBaseline's guardrails object.
pub(crate) fn guardrails_name(name: &str) -> String {
    fit(&format!("tierflow-guardrails-{name}"), MAX_NAME)
}

/// Why a backend that isolates pods per direction (Calico, Cilium) cannot hold a guardrail in
/// a direction the ClusterBaseline does not deny: the guardrail's own object would isolate
/// the covered pods in that direction, denying what nothing else denied.
pub(crate) fn direction_not_denied(model: &ClusterBaselineModel, backend: &str) -> Option<String> {
    let g = model.guardrails.as_ref()?;
    let r = g.rules.iter().find(|r| {
        if r.ingress {
            !model.wish.deny_ingress
        } else {
            !model.wish.deny_egress
        }
    })?;
    let dir = if r.ingress { "ingress" } else { "egress" };
    Some(format!(
        "guardrail {:?} is an {dir} rule, but the ClusterBaseline does not deny {dir}: on {backend} \
         the guardrail's policy would isolate every covered pod for {dir} (denying what no rule \
         denied); set deny{} or use the ClusterNetworkPolicy backend",
        r.name,
        if r.ingress { "Ingress" } else { "Egress" }
    ))
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
