//! What rendering produces and is given: objects (their kind and the exact, canonical JSON text
//! that is sent, with its digests) and their kinds, the labels and metadata they carry, what a
//! backend could not express, and the cluster facts and owner a renderer receives. Every
//! backend builds on these; kept apart from the renderers' entry points in `mod.rs` (which call
//! the backends) so that no backend needs anything from there.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::OnceLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;

use crate::core::names;
use crate::vocab::{
    APP_NETWORK_LABEL, CLUSTER_BASELINE_LABEL, MANAGED_BY, MANAGER, ROLE_BASELINE,
    ROLE_CLUSTER_BASELINE, ROLE_LABEL, ROLE_TIER, TIER_LABEL,
};

/// Every kind of object tierflow writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// `networking.k8s.io/v1` NetworkPolicy.
    NetworkPolicy,
    /// `projectcalico.org/v3` NetworkPolicy.
    CalicoNetworkPolicy,
    /// `projectcalico.org/v3` GlobalNetworkPolicy.
    CalicoGlobalNetworkPolicy,
    /// `projectcalico.org/v3` StagedNetworkPolicy.
    CalicoStagedNetworkPolicy,
    /// `projectcalico.org/v3` StagedGlobalNetworkPolicy.
    CalicoStagedGlobalNetworkPolicy,
    /// `cilium.io/v2` CiliumNetworkPolicy.
    CiliumNetworkPolicy,
    /// `cilium.io/v2` CiliumClusterwideNetworkPolicy.
    CiliumClusterwideNetworkPolicy,
    /// `policy.networking.k8s.io/v1alpha2` ClusterNetworkPolicy.
    ClusterNetworkPolicy,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 8] = [
        ObjectKind::NetworkPolicy,
        ObjectKind::CalicoNetworkPolicy,
        ObjectKind::CalicoGlobalNetworkPolicy,
        ObjectKind::CalicoStagedNetworkPolicy,
        ObjectKind::CalicoStagedGlobalNetworkPolicy,
        ObjectKind::CiliumNetworkPolicy,
        ObjectKind::CiliumClusterwideNetworkPolicy,
        ObjectKind::ClusterNetworkPolicy,
    ];

    /// API group.
    pub fn group(self) -> &'static str {
        match self {
            ObjectKind::NetworkPolicy => "networking.k8s.io",
            ObjectKind::CalicoNetworkPolicy
            | ObjectKind::CalicoGlobalNetworkPolicy
            | ObjectKind::CalicoStagedNetworkPolicy
            | ObjectKind::CalicoStagedGlobalNetworkPolicy => "projectcalico.org",
            ObjectKind::CiliumNetworkPolicy | ObjectKind::CiliumClusterwideNetworkPolicy => {
                "cilium.io"
            }
            ObjectKind::ClusterNetworkPolicy => "policy.networking.k8s.io",
        }
    }

    /// API version (`group/version`).
    pub fn api_version(self) -> &'static str {
        match self.group() {
            "networking.k8s.io" => "networking.k8s.io/v1",
            "projectcalico.org" => "projectcalico.org/v3",
            "policy.networking.k8s.io" => "policy.networking.k8s.io/v1alpha2",
            _ => "cilium.io/v2",
        }
    }

    /// Version alone.
    pub fn version(self) -> &'static str {
        self.api_version().rsplit('/').next().unwrap_or_default()
    }

    /// Kind.
    pub fn kind(self) -> &'static str {
        match self {
            ObjectKind::NetworkPolicy | ObjectKind::CalicoNetworkPolicy => "NetworkPolicy",
            ObjectKind::CalicoGlobalNetworkPolicy => "GlobalNetworkPolicy",
            ObjectKind::CalicoStagedNetworkPolicy => "StagedNetworkPolicy",
            ObjectKind::CalicoStagedGlobalNetworkPolicy => "StagedGlobalNetworkPolicy",
            ObjectKind::CiliumNetworkPolicy => "CiliumNetworkPolicy",
            ObjectKind::CiliumClusterwideNetworkPolicy => "CiliumClusterwideNetworkPolicy",
            ObjectKind::ClusterNetworkPolicy => "ClusterNetworkPolicy",
        }
    }

    /// Resource (plural) name.
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::NetworkPolicy | ObjectKind::CalicoNetworkPolicy => "networkpolicies",
            ObjectKind::CalicoGlobalNetworkPolicy => "globalnetworkpolicies",
            ObjectKind::CalicoStagedNetworkPolicy => "stagednetworkpolicies",
            ObjectKind::CalicoStagedGlobalNetworkPolicy => "stagedglobalnetworkpolicies",
            ObjectKind::CiliumNetworkPolicy => "ciliumnetworkpolicies",
            ObjectKind::CiliumClusterwideNetworkPolicy => "ciliumclusterwidenetworkpolicies",
            ObjectKind::ClusterNetworkPolicy => "clusternetworkpolicies",
        }
    }

    /// The CRD that serves this kind (`None` for built-in kinds).
    pub fn crd_name(self) -> Option<String> {
        (self != ObjectKind::NetworkPolicy).then(|| format!("{}.{}", self.plural(), self.group()))
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            ObjectKind::CalicoGlobalNetworkPolicy
                | ObjectKind::CalicoStagedGlobalNetworkPolicy
                | ObjectKind::CiliumClusterwideNetworkPolicy
                | ObjectKind::ClusterNetworkPolicy
        )
    }

    /// The kind of `apiVersion` + `kind`, if tierflow writes it.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Self> {
        ObjectKind::ALL
            .into_iter()
            .find(|k| k.api_version() == api_version && k.kind() == kind)
    }
}

/// A rendered object: its kind and the exact JSON text that is sent (apiVersion, kind, metadata,
/// spec).
///
/// The text is canonical: byte for byte what `serde_json::to_string` gives for the same JSON
/// value (object keys sorted as `BTreeMap` sorts them, serde_json's number and string forms), so
/// that the text, its digests and a value parsed from it all agree. The standard NetworkPolicy
/// backend writes the text directly ([`super::networkpolicy`], with `render/json.rs`); the
/// other backends build a [`Value`] and serialise it ([`Object::from_value`]). The value is
/// parsed from the text only when someone asks for it ([`Object::body`]), once.
#[derive(Clone)]
pub struct Object {
    kind: ObjectKind,
    name: Box<str>,
    namespace: Option<Box<str>>,
    json: Box<str>,
    value: OnceLock<Value>,
    digest: OnceLock<u64>,
    spec_digest: OnceLock<u64>,
    /// Where `spec`'s value is in the text, when the writer said so.
    spec: Option<Range<usize>>,
}

impl Object {
    /// An object built as a JSON value; the value is kept, so nothing parses the text again.
    pub fn from_value(kind: ObjectKind, body: Value) -> Object {
        let json = serde_json::to_string(&body).unwrap_or_default();
        let text = |path: &str| body.pointer(path).and_then(Value::as_str).map(Box::from);
        let name = text("/metadata/name").unwrap_or_default();
        let namespace = text("/metadata/namespace");
        Object {
            kind,
            name,
            namespace,
            json: json.into_boxed_str(),
            value: OnceLock::from(body),
            digest: OnceLock::new(),
            spec_digest: OnceLock::new(),
            spec: None,
        }
    }

    /// An object from its JSON text, which a writer produced in canonical form (see the type's
    /// doc; debug builds check it): `name` and `namespace` are its `metadata.name` and
    /// `metadata.namespace`, `spec` where the value of `spec` is in `json`.
    pub(crate) fn from_json(
        kind: ObjectKind,
        name: &str,
        namespace: Option<&str>,
        json: String,
        spec: Range<usize>,
    ) -> Object {
        let o = Object {
            kind,
            name: name.into(),
            namespace: namespace.map(Box::from),
            json: json.into_boxed_str(),
            value: OnceLock::new(),
            digest: OnceLock::new(),
            spec_digest: OnceLock::new(),
            spec: Some(spec),
        };
        #[cfg(debug_assertions)]
        {
            // Parsed apart: the object stays unparsed, as in release builds.
            let v = &serde_json::from_str::<Value>(&o.json).unwrap_or(Value::Null);
            debug_assert_eq!(
                serde_json::to_string(v).ok().as_deref(),
                Some(o.json()),
                "written JSON is not canonical"
            );
            debug_assert_eq!(
                v.pointer("/metadata/name").and_then(Value::as_str),
                Some(name)
            );
            debug_assert_eq!(
                v.pointer("/metadata/namespace").and_then(Value::as_str),
                namespace
            );
            debug_assert_eq!(
                o.spec.clone().and_then(|r| o.json.get(r)),
                v.get("spec")
                    .and_then(|s| serde_json::to_string(s).ok())
                    .as_deref(),
                "the spec's place in the text"
            );
        }
        o
    }

    /// What it is.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }

    /// The object as JSON text, exactly as it is sent (canonical: see the type's doc).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The object as a JSON value (parsed from the text on first use, then kept).
    pub fn body(&self) -> &Value {
        self.value.get_or_init(|| parse(&self.json))
    }

    /// Whether the JSON value has been built (parsed, or given to [`Object::from_value`]): for
    /// tests that check a path reads only the text.
    pub fn parsed(&self) -> bool {
        self.value.get().is_some()
    }

    /// A copy of the object as a JSON value: the kept value cloned, or parsed from the text
    /// without keeping it (so the object does not hold its text and a tree both).
    pub fn to_value(&self) -> Value {
        match self.value.get() {
            Some(v) => v.clone(),
            None => parse(&self.json),
        }
    }

    /// The object as a JSON value, owned.
    pub fn into_value(self) -> Value {
        match self.value.into_inner() {
            Some(v) => v,
            None => parse(&self.json),
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `metadata.namespace` (`None` for cluster-scoped kinds).
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// A digest of the whole object ([`digest_text`] of its text), computed once.
    pub fn digest(&self) -> u64 {
        *self.digest.get_or_init(|| digest_text(&self.json))
    }

    /// A digest of `spec` ([`digest`] of it; of `null` when there is none), computed once: the
    /// same as the digest of the same spec read back from the API server.
    pub fn spec_digest(&self) -> u64 {
        *self.spec_digest.get_or_init(|| {
            // The canonical text of the spec is in the canonical text of the object: no parse.
            match self.spec.clone().and_then(|r| self.json.get(r)) {
                Some(spec) => digest_text(spec),
                None => digest(self.body().get("spec").unwrap_or(&Value::Null)),
            }
        })
    }
}

/// The value of an object's text (which its writer made, so it parses; `null` otherwise).
fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// A digest of JSON text (the bytes as they are).
pub fn digest_text(json: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(json.as_bytes());
    h.finish()
}

/// A digest of a JSON value: [`digest_text`] of its canonical text (`serde_json::to_string`,
/// keys sorted), computed without building the text. Two values have the same digest when they
/// are equal, whatever order their keys came in (the API server and the renderers may order
/// them differently) and whatever integer type a number had (8080 rendered from a `u16` and
/// 8080 read back as a `u64` are the same text). 64 bits: a collision is not a practical
/// concern for a few thousand objects. Digests live only in this process's memory.
pub fn digest(v: &Value) -> u64 {
    use std::hash::Hasher;
    struct Feed(std::collections::hash_map::DefaultHasher);
    impl std::io::Write for Feed {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut feed = Feed(std::collections::hash_map::DefaultHasher::new());
    // Writing into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut feed, v);
    feed.0.finish()
}

impl PartialEq for Object {
    fn eq(&self, other: &Object) -> bool {
        self.kind == other.kind && self.json == other.json
    }
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("kind", &self.kind)
            .field("json", &self.json)
            .finish()
    }
}

/// What kind of thing a backend could not express. The operator's status layer maps kinds to
/// conditions; rendering only says what happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LimitationKind {
    /// HTTP rules on a backend without L7 rules: the flow is enforced as the L4 ports it uses.
    L7Unsupported,
    /// An `fqdn` peer on a backend that cannot match DNS names: the flow is left out.
    FqdnUnsupported,
    /// An `fqdn` peer without DNS egress: the backend learns the name's addresses from the
    /// lookups it sees, so the rendered flow allows nothing.
    FqdnNeedsDns,
    /// The API server on a backend that can only name it by address, while its addresses are
    /// unknown: the flow is left out.
    ApiServerUnknown,
}

impl LimitationKind {
    /// Every kind.
    pub const ALL: [LimitationKind; 4] = [
        LimitationKind::L7Unsupported,
        LimitationKind::FqdnUnsupported,
        LimitationKind::FqdnNeedsDns,
        LimitationKind::ApiServerUnknown,
    ];

    /// CamelCase reason for a status condition (a fixed, bounded set). These are the reasons
    /// tierflow has always reported, so existing alerts and dashboards keep matching.
    pub fn reason(self) -> &'static str {
        match self {
            LimitationKind::L7Unsupported => "L7Unsupported",
            LimitationKind::FqdnUnsupported => "UnsupportedOnBackend",
            LimitationKind::FqdnNeedsDns => "FqdnNeedsDns",
            LimitationKind::ApiServerUnknown => "ApiServerUnresolved",
        }
    }

    /// Whether the AppNetwork cannot be reported ready: a declared flow is missing or allows
    /// nothing. (`false`: the flow works, enforced weaker than declared.)
    pub fn blocks_ready(self) -> bool {
        match self {
            LimitationKind::L7Unsupported => false,
            LimitationKind::FqdnUnsupported
            | LimitationKind::FqdnNeedsDns
            | LimitationKind::ApiServerUnknown => true,
        }
    }
}

/// Something the backend could not express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limitation {
    /// The `spec.flows` index it is about (`None`: not about one flow).
    pub flow: Option<usize>,
    /// What kind of limitation.
    pub kind: LimitationKind,
    /// What and why, for people.
    pub message: String,
}

/// What rendering an AppNetwork produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    /// The per-tier objects.
    pub objects: Vec<Object>,
    /// What the backend could not express (fail closed: such flows are left out).
    pub limitations: Vec<Limitation>,
}

/// Facts about the cluster a renderer may need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// The Kubernetes API server's endpoints (`default/kubernetes`), for backends that cannot
    /// name the API server otherwise.
    pub api_server: Vec<(IpAddr, u16)>,
    /// The cluster's own pod and service ranges (`plan::Cluster::cluster_cidrs`): what a
    /// `world` peer leaves out on backends without a world entity.
    pub cluster_cidrs: Vec<crate::core::Cidr>,
}

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
    let app = names::label_value(app);
    owned(&tier_label_pairs(&app, tier))
}

/// [`tier_labels`] as pairs sorted by key, for writers of text; `app_label` is the AppNetwork's
/// name as a label value ([`names::label_value`]).
pub fn tier_label_pairs<'a>(app_label: &'a str, tier: &'a str) -> [(&'static str, &'a str); 4] {
    let mut labels = [
        (MANAGED_BY, MANAGER),
        (APP_NETWORK_LABEL, app_label),
        (TIER_LABEL, tier),
        (ROLE_LABEL, ROLE_TIER),
    ];
    labels.sort_unstable();
    labels
}

/// Labels of a namespace baseline.
pub fn baseline_labels() -> BTreeMap<String, String> {
    owned(&BASELINE_LABEL_PAIRS)
}

/// [`baseline_labels`] as pairs sorted by key (in this order), for writers of text.
pub const BASELINE_LABEL_PAIRS: [(&str, &str); 2] =
    [(MANAGED_BY, MANAGER), (ROLE_LABEL, ROLE_BASELINE)];

fn owned(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Labels of a cluster-wide baseline.
pub fn cluster_baseline_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (ROLE_LABEL.to_string(), ROLE_CLUSTER_BASELINE.to_string()),
        (CLUSTER_BASELINE_LABEL.to_string(), names::label_value(name)),
    ])
}

/// `metadata` for a rendered object.
pub fn metadata(
    name: &str,
    namespace: Option<&str>,
    labels: BTreeMap<String, String>,
    owners: &[OwnerReference],
) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), Value::from(name));
    let labels = labels.into_iter().map(|(k, v)| (k, Value::String(v)));
    m.insert("labels".into(), Value::Object(labels.collect()));
    if let Some(ns) = namespace {
        m.insert("namespace".into(), Value::from(ns));
    }
    if !owners.is_empty() {
        m.insert(
            "ownerReferences".into(),
            serde_json::to_value(owners).unwrap_or(Value::Null),
        );
    }
    Value::Object(m)
}
