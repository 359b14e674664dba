//! The one write path: server-side apply with field manager `tierflow`, forced; deletes only of
//! objects tierflow created, guarded by UID preconditions. Writes are skipped when the live
//! object already says what we want, so a steady state issues no request at all.

use kube::api::{
    ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
};
use std::collections::BTreeMap;

use kube::{Api, Client, Resource, ResourceExt};
use serde_json::value::RawValue;
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
pub fn up_to_date(desired: &Object, live: &Owned) -> bool {
    desired.spec_digest() == live.spec_digest && metadata_up_to_date(desired, live)
}

/// What [`up_to_date`] compares of the desired metadata, read from the object's text without
/// building a JSON tree (everything else is skipped unparsed).
#[derive(serde::Deserialize)]
struct Head {
    #[serde(default)]
    metadata: Meta,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    owner_references: Vec<Ref>,
}

#[derive(serde::Deserialize)]
struct Ref {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    controller: Option<bool>,
}

/// The metadata half of [`up_to_date`].
fn metadata_up_to_date(desired: &Object, live: &Owned) -> bool {
    // A text that does not read as an object's head (never, for rendered objects) is not up to
    // date: it gets written, and the API server says what is wrong with it.
    let Ok(Head { metadata: want }) = serde_json::from_str::<Head>(desired.json()) else {
        return false;
    };
    let sub_map = |want: &BTreeMap<String, String>, have: &BTreeMap<String, String>| {
        want.iter().all(|(k, v)| have.get(k) == Some(v))
    };
    let mut want_owners: Vec<(&str, bool)> = want
        .owner_references
        .iter()
        .map(|r| (r.uid.as_str(), r.controller == Some(true)))
        .collect();
    want_owners.sort();
    let mut have: Vec<(&str, bool)> = live
        .owners
        .iter()
        .map(|o| (o.uid.as_str(), o.controller))
        .collect();
    have.sort();
    sub_map(&want.labels, &live.labels)
        && sub_map(&want.annotations, &live.annotations)
        && want_owners == have
}

/// A digest of a JSON value, the same for the same value whatever the order of its keys: the
/// digest of its canonical text ([`crate::render::digest`], which rendered objects use too).
pub use crate::render::digest;

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
    let api = api(client, desired.kind(), desired.namespace());
    let existing = match live {
        Some(l) => l.clone(),
        None => {
            let obj: DynamicObject = serde_json::from_str(desired.json())?;
            let pp = PostParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PostParams::default()
            };
            match api.create(&pp, &obj).await {
                Ok(created) => return Ok((Applied::Created, created.resource_version())),
                Err(kube::Error::Api(s)) if s.code == 409 => match api.get_opt(&name).await? {
                    Some(l) => Owned::of(desired.kind(), &l),
                    // Deleted in between: the next reconcile creates it.
                    None => return Err(kube::Error::Api(s).into()),
                },
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !existing.ours {
        return Err(Error::Conflict {
            kind: desired.kind().kind().to_string(),
            namespace: existing.namespace.clone().unwrap_or_default(),
            name,
        });
    }
    if up_to_date(desired, &existing) {
        return Ok((Applied::Unchanged, None));
    }
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    // The text as it is: kube serialises a `RawValue` verbatim (no JSON tree is built).
    let patch: &RawValue = serde_json::from_str(desired.json())?;
    let result: DynamicObject = api.patch(&name, &pp, &Patch::Apply(patch)).await?;
    let mut version = result.resource_version();
    if !up_to_date(desired, &Owned::of(desired.kind(), &result)) {
        // Fields of ours are owned by another field manager too, so an apply that omits them
        // cannot remove them: a key added inside our spec with `kubectl edit`, or whatever the
        // create that made the object set (a POST records its fields as an update: an owner
        // reference of an input that no longer wants the object, a rule that went). Replace the
        // spec and the owner references with a PUT, guarded by the resourceVersion just
        // returned, keeping the rest of the live metadata; later applies own every field again.
        tracing::info!(%name, kind = desired.kind().kind(), "replacing fields another field manager owns");
        let want = desired.body();
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
        if !up_to_date(desired, &Owned::of(desired.kind(), &replaced)) {
            // The API server changes what we send (a schema default we do not set): never loop.
            tracing::warn!(%name, kind = desired.kind().kind(), "the API server alters this object on every apply; set the defaulted fields in the renderer");
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

    fn object(v: Value) -> Object {
        Object::from_value(ObjectKind::NetworkPolicy, v)
    }

    #[test]
    fn identical_objects_are_up_to_date_whatever_the_order_of_keys() {
        let d = json!({"metadata": {"name": "a", "labels": {"a": "1"}}, "spec": {"x": 1, "y": [{"p": 1, "q": 2}]}});
        let l = json!({"metadata": {"name": "a", "labels": {"a": "1", "user": "x"}, "resourceVersion": "5"}, "spec": {"y": [{"q": 2, "p": 1}], "x": 1}});
        assert!(up_to_date(&object(d), &owned(l)));
    }

    #[test]
    fn edited_spec_or_label_or_owner_or_annotation_is_drift() {
        let d = json!({"metadata": {"name": "a", "labels": {"a": "1"}, "annotations": {"tierflow.dev/inputs": "{}"}, "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "o", "uid": "u", "controller": true}]}, "spec": {"x": 1}});
        let same = d.clone();
        assert!(up_to_date(&object(d.clone()), &owned(same)));
        let mut spec = d.clone();
        spec["spec"]["x"] = json!(2);
        let mut label = d.clone();
        label["metadata"]["labels"]["a"] = json!("2");
        let mut owner = d.clone();
        owner["metadata"]["ownerReferences"] = json!([]);
        let mut note = d.clone();
        note["metadata"]["annotations"] = json!({"tierflow.dev/inputs": "{\"x\":1}"});
        for drifted in [spec, label, owner, note] {
            assert!(!up_to_date(&object(d.clone()), &owned(drifted)));
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
    fn a_rendered_object_and_the_same_object_read_back_compare_equal() {
        let spec: crate::crd::AppNetworkSpec = serde_yaml::from_str(
            "{dns: {enabled: true}, tiers: [{name: web, selector: {matchLabels: {app: web}}, ports: [{port: 8080}, {port: 9000, endPort: 9100, protocol: UDP}]}, {name: db, selector: {matchExpressions: [{key: app, operator: In, values: [db, db2]}]}, ports: [{name: pg}]}], flows: [{from: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}, to: {tier: web}}, {from: {tier: web}, to: {tier: db}}, {from: {namespace: monitoring, selector: {matchLabels: {app: prometheus}}}, to: {tier: web}}]}",
        )
        .unwrap();
        let m = crate::validate::app_network("shop", "production", &spec).unwrap();
        let owner = crate::render::Owner {
            api_version: "tierflow.dev/v1alpha1".into(),
            kind: "AppNetwork".into(),
            name: "shop".into(),
            uid: "u-1".into(),
        };
        let r = crate::render::tier_objects(
            &m,
            crate::model::Backend::NetworkPolicy,
            Some(&owner),
            &Default::default(),
        );
        assert!(!r.objects.is_empty());
        for o in &r.objects {
            // What the API server returns: the same fields, keys in its own order, plus its
            // own metadata.
            let mut back: Value = serde_json::from_str(o.json()).unwrap();
            back["metadata"]["resourceVersion"] = json!("7");
            back["metadata"]["uid"] = json!("x");
            let text = serde_json::to_string_pretty(&back).unwrap();
            let live = owned(serde_json::from_str(&text).unwrap());
            assert_eq!(live.spec_digest, o.spec_digest(), "{}", o.name());
            assert!(up_to_date(o, &live), "{}", o.name());
            // Compared from its text alone: no JSON tree was built for the desired object.
            assert!(!o.parsed(), "{}", o.name());
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
