//! The one write path: server-side apply with field manager `tierflow`, forced; deletes only of
//! objects tierflow created, guarded by UID preconditions. Writes are skipped when the live
//! object already says what we want, so a steady state issues no request at all.

use kube::api::{
    ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
};
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
/// `live` must be the cached object of the same name, or `None` when the cache has none. Then
/// the object is created with a plain POST, which the API server refuses (409) if anything of
/// that name exists: so a foreign object is never taken over, without a read before every
/// create. Only on that 409 is the object read, to tell a foreign object (`Conflict`) from one of
/// ours the cache has not seen yet.
///
/// Returns what it did and, when it wrote, the resourceVersion the object got.
pub async fn apply(
    client: &Client,
    desired: &Object,
    live: Option<&DynamicObject>,
) -> Result<(Applied, Option<String>)> {
    let name = desired.name().to_string();
    if name.is_empty() {
        return Err(Error::MissingField("metadata.name"));
    }
    let api = api(client, desired.kind, desired.namespace());
    let want = &desired.body;
    let existing = match live {
        Some(l) => l.clone(),
        None => {
            let obj: DynamicObject = serde_json::from_value(want.clone())?;
            let pp = PostParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PostParams::default()
            };
            match api.create(&pp, &obj).await {
                Ok(created) => return Ok((Applied::Created, created.resource_version())),
                Err(kube::Error::Api(s)) if s.code == 409 => match api.get_opt(&name).await? {
                    Some(l) => l,
                    // Deleted in between: the next reconcile creates it.
                    None => return Err(kube::Error::Api(s).into()),
                },
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !is_ours(&existing) {
        return Err(Error::Conflict {
            kind: desired.kind.kind().to_string(),
            namespace: existing.namespace().unwrap_or_default(),
            name,
        });
    }
    if up_to_date(want, &serde_json::to_value(&existing)?) {
        return Ok((Applied::Unchanged, None));
    }
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let result: DynamicObject = api.patch(&name, &pp, &Patch::Apply(want)).await?;
    let mut version = result.resource_version();
    let result_value = serde_json::to_value(&result)?;
    if want.get("spec") != result_value.get("spec") {
        // Fields inside our spec are owned by someone else's field manager (a key added to a
        // selector with `kubectl edit`), or by the create that made the object (a POST records
        // its fields as an update): an apply that omits them cannot remove them. Replace the
        // spec with a PUT, guarded by the resourceVersion just returned, keeping the live
        // metadata; later applies own every field again.
        tracing::info!(%name, kind = desired.kind.kind(), "replacing a spec with fields another field manager owns");
        let mut replacement = result;
        if let Some(spec) = want.get("spec") {
            replacement.data["spec"] = spec.clone();
        }
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PostParams::default()
        };
        let replaced = api.replace(&name, &pp, &replacement).await?;
        version = replaced.resource_version();
        let again = serde_json::to_value(replaced)?;
        if want.get("spec") != again.get("spec") {
            // The API server changes what we send (a schema default we do not set): never loop.
            tracing::warn!(%name, kind = desired.kind.kind(), "the API server alters this object's spec on every apply; set the defaulted fields in the renderer");
        }
    }
    Ok((Applied::Updated, version))
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
