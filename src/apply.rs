//! The one write path: server-side apply with field manager `tierflow`, forced; deletes only of
//! objects tierflow created, guarded by UID preconditions. Writes are skipped when the live
//! object already says what we want, so a steady state issues no request at all.

use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::render::{Object, ObjectKind, MANAGED_BY, MANAGER};

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "tierflow";

/// What an apply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The live object already matched; no request was made.
    Unchanged,
    /// The object did not exist and was created.
    Created,
    /// The object existed and differed (drift, or a new desired state).
    Updated,
}

/// Whether tierflow created `obj`: it carries the managed-by label or tierflow manages fields of
/// it (the label may have been removed by hand).
pub fn is_ours<K: Resource>(obj: &K) -> bool {
    obj.labels().get(MANAGED_BY).map(String::as_str) == Some(MANAGER)
        || obj
            .meta()
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
}

/// Whether `live` already says everything `desired` says: same spec, our labels and annotations
/// present with our values, the same owner references.
pub fn up_to_date(desired: &Value, live: &Value) -> bool {
    let sub_map = |path: &str| -> bool {
        let want = desired.pointer(path).and_then(Value::as_object);
        let have = live.pointer(path).and_then(Value::as_object);
        match (want, have) {
            (None, _) => true,
            (Some(w), Some(h)) => w.iter().all(|(k, v)| h.get(k) == Some(v)),
            (Some(w), None) => w.is_empty(),
        }
    };
    let owners = |v: &Value| -> Vec<(String, Option<bool>)> {
        let mut o: Vec<_> = v
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r.get("uid")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    r.get("controller").and_then(Value::as_bool),
                )
            })
            .collect();
        o.sort();
        o
    };
    desired.get("spec") == live.get("spec")
        && sub_map("/metadata/labels")
        && sub_map("/metadata/annotations")
        && owners(desired) == owners(live)
}

/// The API resource of a kind tierflow writes.
pub fn api_resource(kind: ObjectKind) -> ApiResource {
    ApiResource {
        group: kind.group().to_string(),
        version: kind.version().to_string(),
        api_version: kind.api_version().to_string(),
        kind: kind.kind().to_string(),
        plural: kind.plural().to_string(),
    }
}

/// An API handle for `kind`, in `namespace` for namespaced kinds.
pub fn api(client: &Client, kind: ObjectKind, namespace: Option<&str>) -> Api<DynamicObject> {
    let ar = api_resource(kind);
    match (kind.namespaced(), namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    }
}

/// Applies `desired` unless `live` (from the cache) already matches it.
///
/// `live` must be the cached object of the same name, or `None` when the cache has none; in that
/// case the object is read once to make sure we never take over an object someone else made.
pub async fn apply(
    client: &Client,
    desired: &Object,
    live: Option<&DynamicObject>,
) -> Result<Applied> {
    let name = desired.name().to_string();
    if name.is_empty() {
        return Err(Error::MissingField("metadata.name"));
    }
    let api = api(client, desired.kind, desired.namespace());
    let want = &desired.body;
    let existing = match live {
        Some(l) => Some(l.clone()),
        None => api.get_opt(&name).await?,
    };
    let outcome = match &existing {
        Some(l) if !is_ours(l) => {
            return Err(Error::Conflict {
                kind: desired.kind.kind().to_string(),
                namespace: l.namespace().unwrap_or_default(),
                name,
            })
        }
        Some(l) if up_to_date(want, &serde_json::to_value(l)?) => return Ok(Applied::Unchanged),
        Some(_) => Applied::Updated,
        None => Applied::Created,
    };
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let result = serde_json::to_value(api.patch(&name, &pp, &Patch::Apply(want)).await?)?;
    if want.get("spec") != result.get("spec") {
        // Someone else's field manager owns fields inside our spec (for example a key added to a
        // selector with `kubectl edit`), which an apply that omits them cannot remove. Take
        // ownership of the whole live spec, then apply our intent again, which drops them.
        tracing::info!(%name, kind = desired.kind.kind(), "taking back fields owned by another field manager");
        let mut takeover = want.clone();
        if let Some(spec) = result.get("spec") {
            takeover["spec"] = spec.clone();
        }
        api.patch(&name, &pp, &Patch::Apply(&takeover)).await?;
        let again = serde_json::to_value(api.patch(&name, &pp, &Patch::Apply(want)).await?)?;
        if want.get("spec") != again.get("spec") {
            // The API server changes what we send (a schema default we do not set): never loop.
            tracing::warn!(%name, kind = desired.kind.kind(), "the API server alters this object's spec on every apply; set the defaulted fields in the renderer");
        }
    }
    Ok(outcome)
}

/// Deletes an object tierflow created, only if it is still the same object (UID precondition).
/// Returns whether a delete was issued.
pub async fn delete(client: &Client, kind: ObjectKind, obj: &DynamicObject) -> Result<bool> {
    let api = api(client, kind, obj.namespace().as_deref());
    if !is_ours(obj) {
        return Ok(false);
    }
    let name = obj.name_any();
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: obj.uid(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identical_objects_are_up_to_date() {
        let d = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}});
        let l = json!({"metadata": {"labels": {"a": "1", "user": "x"}, "resourceVersion": "5"}, "spec": {"x": 1}});
        assert!(up_to_date(&d, &l));
    }

    #[test]
    fn edited_spec_or_label_or_owner_is_drift() {
        let d = json!({"metadata": {"labels": {"a": "1"}, "ownerReferences": [{"uid": "u", "controller": true}]}, "spec": {"x": 1}});
        let same = json!({"metadata": {"labels": {"a": "1"}, "ownerReferences": [{"uid": "u", "controller": true}]}, "spec": {"x": 1}});
        assert!(up_to_date(&d, &same));
        let spec = json!({"metadata": {"labels": {"a": "1"}, "ownerReferences": [{"uid": "u", "controller": true}]}, "spec": {"x": 2}});
        let label = json!({"metadata": {"labels": {"a": "2"}, "ownerReferences": [{"uid": "u", "controller": true}]}, "spec": {"x": 1}});
        let owner = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}});
        assert!(!up_to_date(&d, &spec));
        assert!(!up_to_date(&d, &label));
        assert!(!up_to_date(&d, &owner));
    }
}
