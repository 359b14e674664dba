//! The one write path: server-side apply with field manager `tierflow`, forced; deletes only of
//! objects tierflow created, guarded by UID preconditions. Writes are skipped when the live
//! object already says what we want, so a steady state issues no request at all.

use kube::api::{
    ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
};
use std::collections::BTreeMap;

use kube::{Api, Client, Resource, ResourceExt};
use serde::Deserialize;
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

/// An owner reference, as far as tierflow compares and follows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OwnerRef {
    /// The owner's UID.
    pub uid: String,
    /// Whether it is the managing controller.
    pub controller: bool,
    /// The owner's kind.
    pub kind: String,
    /// The owner's name.
    pub name: String,
}

/// What tierflow keeps of one of its own objects: exactly what [`apply`] compares and what the
/// prune and report steps read. A cached full object weighs kilobytes (a JSON tree); this, a
/// few hundred bytes, with the spec reduced to a digest.
#[derive(Clone, Debug, PartialEq)]
pub struct Owned {
    /// Its kind.
    pub kind: ObjectKind,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (`None` for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// `metadata.uid`.
    pub uid: Option<String>,
    /// `metadata.resourceVersion`.
    pub resource_version: Option<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// tierflow's own annotations (`tierflow.dev/…`); others are never compared.
    pub annotations: BTreeMap<String, String>,
    /// `metadata.ownerReferences`, sorted.
    pub owners: Vec<OwnerRef>,
    /// A digest of `spec` ([`digest`]).
    pub spec_digest: u64,
    /// Whether tierflow created it ([`is_ours`]).
    pub ours: bool,
}

impl Owned {
    /// What tierflow keeps of `obj`.
    pub fn of(kind: ObjectKind, obj: &DynamicObject) -> Owned {
        let meta = obj.meta();
        let mut owners: Vec<OwnerRef> = meta
            .owner_references
            .iter()
            .flatten()
            .map(|o| OwnerRef {
                uid: o.uid.clone(),
                controller: o.controller == Some(true),
                kind: o.kind.clone(),
                name: o.name.clone(),
            })
            .collect();
        owners.sort();
        Owned {
            kind,
            name: obj.name_any(),
            namespace: obj.namespace(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            labels: meta.labels.clone().unwrap_or_default(),
            annotations: meta
                .annotations
                .iter()
                .flatten()
                .filter(|(k, _)| k.starts_with(crate::vocab::ANNOTATION_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            owners,
            spec_digest: digest(obj.data.get("spec").unwrap_or(&Value::Null)),
            ours: is_ours(obj),
        }
    }

    /// The controlling owner's UID.
    pub fn controller_uid(&self) -> Option<&str> {
        self.owners
            .iter()
            .find(|o| o.controller)
            .map(|o| o.uid.as_str())
    }

    /// The resourceVersion as a number (etcd's revision), when it is one.
    pub fn revision(&self) -> Option<u64> {
        self.resource_version.as_deref()?.parse().ok()
    }
}

/// Whether `live` already says everything `desired` says: same spec, our labels and annotations
/// present with our values, the same owner references (UID and controller flag).
pub fn up_to_date(desired: &Value, live: &Owned) -> bool {
    let sub_map = |path: &str, have: &BTreeMap<String, String>| -> bool {
        desired
            .pointer(path)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .all(|(k, v)| {
                v.as_str()
                    .is_some_and(|v| have.get(k).map(String::as_str) == Some(v))
            })
    };
    let mut want: Vec<(String, bool)> = desired
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
                r.get("controller").and_then(Value::as_bool) == Some(true),
            )
        })
        .collect();
    want.sort();
    let mut have: Vec<(String, bool)> = live
        .owners
        .iter()
        .map(|o| (o.uid.clone(), o.controller))
        .collect();
    have.sort();
    digest(desired.get("spec").unwrap_or(&Value::Null)) == live.spec_digest
        && sub_map("/metadata/labels", &live.labels)
        && sub_map("/metadata/annotations", &live.annotations)
        && want == have
}

/// A digest of a JSON value that does not depend on the order of object keys (the API server
/// and the renderers may order them differently). Two values have the same digest when they
/// are equal (64 bits: a collision is not a practical concern for a few thousand objects).
/// Digests live only in this process's memory, never in an object. Allocates nothing when the
/// keys come in order (serde_json's maps keep them sorted).
pub fn digest(v: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    fn feed(v: &Value, h: &mut std::collections::hash_map::DefaultHasher) {
        match v {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => (1u8, b).hash(h),
            // Equal numbers have the same representation in serde_json (non-negative integers
            // are always unsigned), so hashing it needs no string.
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => (2u8, 0u8, u).hash(h),
                (None, Some(i)) => (2u8, 1u8, i).hash(h),
                (None, None) => (2u8, 2u8, n.as_f64().map(f64::to_bits)).hash(h),
            },
            Value::String(s) => (3u8, s).hash(h),
            Value::Array(a) => {
                (4u8, a.len()).hash(h);
                for x in a {
                    feed(x, h);
                }
            }
            Value::Object(m) => {
                (5u8, m.len()).hash(h);
                if m.keys().is_sorted() {
                    for (k, x) in m {
                        k.hash(h);
                        feed(x, h);
                    }
                } else {
                    let mut keys: Vec<&String> = m.keys().collect();
                    keys.sort();
                    for k in keys {
                        k.hash(h);
                        if let Some(x) = m.get(k) {
                            feed(x, h);
                        }
                    }
                }
            }
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    feed(v, &mut h);
    h.finish()
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
    live: Option<&Owned>,
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
            // Read from the borrowed body: no copy of the JSON tree first.
            let obj = DynamicObject::deserialize(want)?;
            let pp = PostParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PostParams::default()
            };
            match api.create(&pp, &obj).await {
                Ok(created) => return Ok((Applied::Created, created.resource_version())),
                Err(kube::Error::Api(s)) if s.code == 409 => match api.get_opt(&name).await? {
                    Some(l) => Owned::of(desired.kind, &l),
                    // Deleted in between: the next reconcile creates it.
                    None => return Err(kube::Error::Api(s).into()),
                },
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !existing.ours {
        return Err(Error::Conflict {
            kind: desired.kind.kind().to_string(),
            namespace: existing.namespace.clone().unwrap_or_default(),
            name,
        });
    }
    if up_to_date(want, &existing) {
        return Ok((Applied::Unchanged, None));
    }
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let result: DynamicObject = api.patch(&name, &pp, &Patch::Apply(want)).await?;
    let mut version = result.resource_version();
    if !up_to_date(want, &Owned::of(desired.kind, &result)) {
        // Fields of ours are owned by another field manager too, so an apply that omits them
        // cannot remove them: a key added inside our spec with `kubectl edit`, or whatever the
        // create that made the object set (a POST records its fields as an update: an owner
        // reference of an input that no longer wants the object, a rule that went). Replace the
        // spec and the owner references with a PUT, guarded by the resourceVersion just
        // returned, keeping the rest of the live metadata; later applies own every field again.
        tracing::info!(%name, kind = desired.kind.kind(), "replacing fields another field manager owns");
        let mut replacement = result;
        if let Some(spec) = want.get("spec") {
            replacement.data["spec"] = spec.clone();
        }
        replacement.metadata.owner_references = want
            .pointer("/metadata/ownerReferences")
            .map(|o| serde_json::from_value(o.clone()))
            .transpose()?;
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PostParams::default()
        };
        let replaced = api.replace(&name, &pp, &replacement).await?;
        version = replaced.resource_version();
        if !up_to_date(want, &Owned::of(desired.kind, &replaced)) {
            // The API server changes what we send (a schema default we do not set): never loop.
            tracing::warn!(%name, kind = desired.kind.kind(), "the API server alters this object on every apply; set the defaulted fields in the renderer");
        }
    }
    Ok((Applied::Updated, version))
}

/// Deletes an object tierflow created, only if it is still the same object (UID precondition).
/// Returns whether a delete was issued.
pub async fn delete(client: &Client, obj: &Owned) -> Result<bool> {
    let api = api(client, obj.kind, obj.namespace.as_deref());
    if !obj.ours {
        return Ok(false);
    }
    let name = obj.name.clone();
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: obj.uid.clone(),
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

    fn owned(v: Value) -> Owned {
        Owned::of(
            ObjectKind::NetworkPolicy,
            &serde_json::from_value(v).expect("object"),
        )
    }

    #[test]
    fn identical_objects_are_up_to_date_whatever_the_order_of_keys() {
        let d = json!({"metadata": {"name": "a", "labels": {"a": "1"}}, "spec": {"x": 1, "y": [{"p": 1, "q": 2}]}});
        let l = json!({"metadata": {"name": "a", "labels": {"a": "1", "user": "x"}, "resourceVersion": "5"}, "spec": {"y": [{"q": 2, "p": 1}], "x": 1}});
        assert!(up_to_date(&d, &owned(l)));
    }

    #[test]
    fn edited_spec_or_label_or_owner_or_annotation_is_drift() {
        let d = json!({"metadata": {"name": "a", "labels": {"a": "1"}, "annotations": {"tierflow.dev/inputs": "{}"}, "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "o", "uid": "u", "controller": true}]}, "spec": {"x": 1}});
        let same = d.clone();
        assert!(up_to_date(&d, &owned(same)));
        let mut spec = d.clone();
        spec["spec"]["x"] = json!(2);
        let mut label = d.clone();
        label["metadata"]["labels"]["a"] = json!("2");
        let mut owner = d.clone();
        owner["metadata"]["ownerReferences"] = json!([]);
        let mut note = d.clone();
        note["metadata"]["annotations"] = json!({"tierflow.dev/inputs": "{\"x\":1}"});
        for drifted in [spec, label, owner, note] {
            assert!(!up_to_date(&d, &owned(drifted)));
        }
    }

    #[test]
    fn a_number_rendered_and_the_same_number_read_back_have_one_digest() {
        let rendered =
            json!({"port": Value::from(8080i32), "endPort": Value::from(-1i64), "f": 0.5});
        let read: Value =
            serde_json::from_str(r#"{"f": 0.5, "endPort": -1, "port": 8080}"#).unwrap();
        assert_eq!(digest(&rendered), digest(&read));
        for other in [
            json!({"port": 8081, "endPort": -1, "f": 0.5}),
            json!({"port": "8080", "endPort": -1, "f": 0.5}),
        ] {
            assert_ne!(digest(&rendered), digest(&other));
        }
    }

    #[test]
    fn other_annotations_are_not_kept() {
        let o = owned(
            json!({"metadata": {"name": "a", "annotations": {"tierflow.dev/inputs": "{}", "kubectl.kubernetes.io/last-applied-configuration": "{...}"}}}),
        );
        assert_eq!(o.annotations.len(), 1);
    }
}
