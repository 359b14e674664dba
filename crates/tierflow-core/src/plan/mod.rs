//! The planner: from the inputs to every object that should exist, and a report per input.
//!
//! One function decides, many call it. The operator calls [`cluster_baselines`] and
//! [`namespace`] for the namespace it reconciles, on its caches; `tierflow render`, `explain` and
//! `verify` call [`plan`] (the same functions over every namespace of the input) on files. No
//! planning decision is made anywhere else.
//!
//! ```text
//!  AppNetwork specs ─┐                         ┌─ per namespace: allows (per-tier objects)
//!  ClusterBaselines ─┼─ validate ─ resolve ────┼─ per namespace: merged baselines (+ records)
//!  namespaces       ─┤  backend, capabilities  ├─ cluster-wide objects
//!  cluster (served, ─┤  hold what cannot apply ├─ held inputs (their objects stay as they are)
//!   endpoints)       │                         └─ a report per input (for status)
//!  observed records ─┘
//! ```
//!
//! **Status is never read.** What an input whose spec is invalid last asked for is found by
//! observation: every namespace baseline records, in its [`INPUTS_ANNOTATION`], what each input
//! sharing it asked of it and the ClusterBaselines' specs. While an input is held (invalid spec,
//! a mode its backend cannot do, a backend that is not served) its own objects are left exactly
//! as they are and its recorded share of the baseline stays.
//!
//! Write order, which the operator follows: allows → cluster-wide objects → baselines → prune.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::crd::{AppNetworkSpec, AppliedBaseline, ClusterBaselineSpec};
use crate::model::{
    AppModel, Backend, BackendRequest, BaselineWish, ClusterBaselineModel, Coverage,
    NamespaceBaseline,
};
use crate::render::{self, Env, Limitation, Object, ObjectKind, Owner};
use crate::validate::{self, InvalidSpec};
use crate::vocab::{API_VERSION, INPUTS_ANNOTATION, NAMESPACE_NAME_LABEL};
pub use features::{CiliumFeatures, MissingFeature};

/// Labels of a namespace.
pub type Labels = BTreeMap<String, String>;

/// An AppNetwork as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct AppInput {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its UID (`None` offline: no owner references are written).
    pub uid: Option<String>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The spec.
    pub spec: AppNetworkSpec,
}

/// A ClusterBaseline as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterBaselineInput {
    /// Its name.
    pub name: String,
    /// Its UID (`None` offline).
    pub uid: Option<String>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The spec.
    pub spec: ClusterBaselineSpec,
}

/// What the cluster offers and how backends are chosen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cluster {
    /// The kinds the API server serves now (`None`: every kind, as offline).
    pub served: Option<BTreeSet<ObjectKind>>,
    /// What `Auto` means (detection or the operator's `--backend`).
    pub auto_backend: Option<Backend>,
    /// A backend that overrides every input's own (the CLI's `--backend`).
    pub forced_backend: Option<Backend>,
    /// Facts renderers need (the API server's endpoints).
    pub env: Env,
    /// The operator's namespace (a system namespace for ClusterBaselines).
    pub operator_namespace: String,
    /// The backends whose served API would drop a port range's end (and so silently narrow
    /// the range to its first port), each with why, for the message: the standard backend on
    /// an API server before Kubernetes 1.22, Cilium when its CRD has no `endPort` (before
    /// Cilium 1.16). Empty offline. Calico's `"first:last"` string ports need nothing.
    pub no_port_ranges: BTreeMap<Backend, String>,
    /// The cluster's own pod and service ranges, both families (the operator's
    /// `--cluster-cidr`, else the nodes' `spec.podCIDRs`; the CLI's `--cluster-cidr`): what a
    /// `world` peer leaves out on backends without a world entity. Empty: unknown, and such
    /// a peer is held there ([`HoldReason::ClusterRangesUnknown`]).
    pub cluster_cidrs: Vec<crate::core::Cidr>,
    /// Where [`Self::cluster_cidrs`] came from, for status (`--cluster-cidr`, `node
    /// spec.podCIDRs`).
    pub cluster_cidrs_source: String,
    /// What the Cilium agent is configured to support (the `cilium-config` ConfigMap);
    /// `None`: unknown (offline, or no such ConfigMap), and nothing is reported.
    pub cilium_features: Option<CiliumFeatures>,
    /// Which pod labels make up a Cilium identity (the agent's `labels` option: the
    /// operator's `cilium-config`, the CLI's `--cilium-identity-labels`); default: Cilium's
    /// default filter. Decides the [`HoldReason::LabelNotInIdentity`] hold.
    pub cilium_identity: crate::engine::CiliumIdentityFilter,
}

impl Cluster {
    /// The renderers' facts: [`Self::env`] with the cluster's ranges.
    pub fn render_env(&self) -> Env {
        Env {
            cluster_cidrs: self.cluster_cidrs.clone(),
            ..self.env.clone()
        }
    }

    /// The backend an input asking for `request` gets.
    pub fn resolve(&self, request: BackendRequest) -> Backend {
        if let Some(b) = self.forced_backend {
            return b;
        }
        match request {
            BackendRequest::Fixed(b) => b,
            BackendRequest::Auto => self.auto_backend.unwrap_or(Backend::NetworkPolicy),
        }
    }

    /// Whether objects of `kind` can be written now.
    pub fn serves(&self, kind: ObjectKind) -> bool {
        self.served.as_ref().is_none_or(|s| s.contains(&kind))
    }
}

/// What an input recorded on a baseline it shares: its generation and its wish (AppNetworks) or
/// its whole spec (ClusterBaselines, so that namespaces created while its spec is invalid are
/// still covered by the last valid one).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The generation the record was applied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// An AppNetwork's wish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wish: Option<AppliedBaseline>,
    /// A ClusterBaseline's spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ClusterBaselineSpec>,
}

/// The records of one baseline object, by input key ([`app_key`], [`cluster_baseline_key`]).
pub type Records = BTreeMap<String, Record>;

/// The key of an AppNetwork in [`Records`].
pub fn app_key(name: &str) -> String {
    format!("AppNetwork/{name}")
}

/// The key of a ClusterBaseline in [`Records`].
pub fn cluster_baseline_key(name: &str) -> String {
    format!("ClusterBaseline/{name}")
}

/// Reads the records of an observed baseline object from its annotations (absent or unreadable:
/// none).
pub fn records_of(annotations: &BTreeMap<String, String>) -> Records {
    annotations
        .get(INPUTS_ANNOTATION)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// What tierflow observes of its own objects, for the inputs that are held. The CLI observes
/// nothing ([`Nothing`]).
pub trait Observed {
    /// The records on the baseline of `kind` in `namespace`, if that object exists.
    fn records(&self, namespace: &str, kind: ObjectKind) -> Option<Records>;
    /// The last spec recorded for the ClusterBaseline `name` (by any object that carries it),
    /// with the kind of the object it was found on.
    fn cluster_baseline_record(&self, name: &str) -> Option<(ObjectKind, Record)>;
    /// Whether the cluster-wide object of `kind` named `name` exists.
    fn cluster_object_exists(&self, kind: ObjectKind, name: &str) -> bool;
}

/// Nothing observed: the offline CLI.
pub struct Nothing;

impl Observed for Nothing {
    fn records(&self, _: &str, _: ObjectKind) -> Option<Records> {
        None
    }
    fn cluster_baseline_record(&self, _: &str) -> Option<(ObjectKind, Record)> {
        None
    }
    fn cluster_object_exists(&self, _: ObjectKind, _: &str) -> bool {
        true
    }
}

/// Why an input's objects are held as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HoldReason {
    /// The spec does not validate.
    InvalidSpec,
    /// `mode: Audit` on a backend without staged policies.
    AuditUnsupported,
    /// The backend's API is not served (its CRD is missing or being deleted).
    BackendUnavailable,
    /// A port range on a backend whose served API drops the range's end: the standard backend
    /// before Kubernetes 1.22, Cilium before 1.16 ([`Cluster::no_port_ranges`]).
    PortRangeUnsupported,
    /// A ClusterBaseline's guardrails cannot be written exactly on its backend (an Allow on
    /// Cilium, anything on standard NetworkPolicy, ...): nothing weaker is written.
    GuardrailUnsupported,
    /// What the backend's CNI would refuse (Calico's API server) or silently not enforce (the
    /// Cilium agent) on some supported release, and no rendering avoids: a label key too long
    /// once Cilium rewrites it, an HTTP path that is not a Go regular expression, a Calico
    /// selector over 1,024 characters, more than 1,024 rules ([`crate::admit`]).
    BackendLimit,
    /// A `world` peer on a backend that writes it as "every address minus the cluster's
    /// ranges", while those ranges are unknown ([`Cluster::cluster_cidrs`]): writing it would
    /// open pod-to-pod traffic.
    ClusterRangesUnknown,
    /// On Cilium, a tier selector relies on a label Cilium's default identity label filter
    /// leaves out of pods' identities (`pod-template-hash`, `statefulset.kubernetes.io/pod-name`,
    /// ...): the tier's policy would select no pod ([`crate::engine::identity_filter_pattern`]).
    LabelNotInIdentity,
    /// On Cilium, a flow needs an agent feature that is off (the L7 proxy for `http` rules and
    /// FQDN peers) and the agent would then not enforce the tier's policy at all, which the
    /// AppNetwork's baseline does not make up for ([`features`]).
    FeatureDisabled,
}

impl HoldReason {
    /// The CamelCase reason for conditions, events and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            HoldReason::InvalidSpec => "InvalidSpec",
            HoldReason::AuditUnsupported => "AuditUnsupported",
            HoldReason::BackendUnavailable => "BackendUnavailable",
            HoldReason::PortRangeUnsupported => "PortRangeUnsupported",
            HoldReason::GuardrailUnsupported => "GuardrailUnsupported",
            HoldReason::BackendLimit => "BackendLimit",
            HoldReason::ClusterRangesUnknown => "ClusterRangesUnknown",
            HoldReason::LabelNotInIdentity => "LabelNotInIdentity",
            HoldReason::FeatureDisabled => "FeatureDisabled",
        }
    }
}

/// An input that cannot be applied now: its objects stay exactly as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Why.
    pub reason: HoldReason,
    /// What, precisely (field errors, the backend, the kind).
    pub message: String,
    /// The validation errors, when the spec is invalid.
    pub invalid: Option<InvalidSpec>,
}

/// An object to apply, with the inputs it implements.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// The object (owner references included when the owners' UIDs are known).
    pub object: Object,
}

/// What the planner decided for one AppNetwork.
#[derive(Clone, Debug, PartialEq)]
pub struct AppPlan {
    /// Its name.
    pub name: String,
    /// Its UID.
    pub uid: Option<String>,
    /// The generation this plan is for.
    pub generation: Option<i64>,
    /// The validated model (`None` when the spec is invalid).
    pub model: Option<AppModel>,
    /// The backend its objects are written in (`None` when the spec is invalid).
    pub backend: Option<Backend>,
    /// Its per-tier objects (empty while held).
    pub objects: Vec<Object>,
    /// What the backend could not express (left out: fail closed).
    pub limitations: Vec<Limitation>,
    /// Set when nothing of it may change now.
    pub hold: Option<Hold>,
    /// Flows that depend on a Cilium feature that is off (condition `FeaturesMissing`).
    pub missing_features: Vec<MissingFeature>,
}

impl AppPlan {
    /// A plan with nothing decided yet.
    pub fn new(name: String, uid: Option<String>, generation: Option<i64>) -> AppPlan {
        AppPlan {
            name,
            uid,
            generation,
            model: None,
            backend: None,
            objects: Vec::new(),
            limitations: Vec::new(),
            hold: None,
            missing_features: Vec::new(),
        }
    }

    /// Whether its objects are held as they are.
    pub fn held(&self) -> bool {
        self.hold.is_some()
    }
}

/// What the planner decided for one ClusterBaseline.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterBaselinePlan {
    /// Its name.
    pub name: String,
    /// Its UID.
    pub uid: Option<String>,
    /// The generation this plan is for.
    pub generation: Option<i64>,
    /// The model in force: the spec's, or while held the last valid one recorded on tierflow's
    /// objects (`None`: neither).
    pub model: Option<ClusterBaselineModel>,
    /// The backend of the model in force.
    pub backend: Option<Backend>,
    /// Its one cluster-wide object (Calico, Cilium), when it has one and is not held.
    pub object: Option<Object>,
    /// Its guardrails' one cluster-wide object, when it has guardrails and is not held
    /// (written before [`object`](Self::object)).
    pub guardrails: Option<Object>,
    /// Set when its objects are held as they are.
    pub hold: Option<Hold>,
    /// While switching away from the standard backend: the new cluster-wide object is not in
    /// place yet, so namespaces keep their share of it.
    pub keep_namespace_share: bool,
    /// What it records on the objects that implement it (the spec of the model in force).
    pub record: Option<Record>,
}

impl ClusterBaselinePlan {
    /// Whether this ClusterBaseline puts its wish into the per-namespace baseline of `ns`.
    pub fn shares(&self, ns: &str, labels: &Labels, cluster: &Cluster) -> bool {
        let Some(model) = &self.model else {
            return false;
        };
        let per_namespace =
            self.backend.is_some_and(per_namespace_backend) || self.keep_namespace_share;
        per_namespace
            && model.wish != BaselineWish::default()
            && model.coverage(ns, labels, &cluster.operator_namespace) == Coverage::Covered
    }

    /// How it relates to the namespace `ns`.
    pub fn coverage(&self, ns: &str, labels: &Labels, cluster: &Cluster) -> Option<Coverage> {
        self.model
            .as_ref()
            .map(|m| m.coverage(ns, labels, &cluster.operator_namespace))
    }

    fn owner(&self) -> Option<Owner> {
        Some(Owner {
            api_version: API_VERSION.to_string(),
            kind: "ClusterBaseline".to_string(),
            name: self.name.clone(),
            uid: self.uid.clone()?,
        })
    }
}

fn audit_hold(backend: Backend) -> Hold {
    Hold {
        reason: HoldReason::AuditUnsupported,
        message: format!(
            "mode Audit needs staged policies; the {} backend has no staged form, so nothing is \
             enforced or changed (the policies in place stay)",
            backend.as_str()
        ),
        invalid: None,
    }
}

/// On Cilium: a hold for the first tier whose selector names a label key Cilium's identity
/// label filter drops ([`crate::engine::CiliumIdentityFilter`]: the default list of cilium/cilium
/// `pkg/labelsfilter/filter.go`, plus the `labels` option of `cilium-config` when known): an
/// endpoint selector on it matches no pod, so the tier would have no policy at all.
pub fn identity_label_hold(
    model: &AppModel,
    filter: &crate::engine::CiliumIdentityFilter,
) -> Option<Hold> {
    model.tiers.iter().enumerate().find_map(|(i, tier)| {
        let keys = tier
            .selector
            .match_labels
            .keys()
            .chain(tier.selector.match_expressions.iter().map(|r| &r.key));
        keys.filter_map(|key| {
            let why = filter.dropped_by(key)?;
            Some(Hold {
                reason: HoldReason::LabelNotInIdentity,
                message: format!(
                    "spec.tiers[{i}].selector (tier {:?}): the label {key:?} is not part of a \
                     pod's Cilium identity ({} {why}), so on the Cilium backend the tier's \
                     policy would select no pod; nothing is changed (the policies in place \
                     stay). Select the tier on a label that is part of the identity",
                    tier.name,
                    filter.describe()
                ),
                invalid: None,
            })
        })
        .next()
    })
}

fn unavailable_hold(kind: ObjectKind, name: &str) -> Hold {
    Hold {
        reason: HoldReason::BackendUnavailable,
        message: format!(
            "cannot write {} {name}: the {} API is not served here (its CRD is missing or being \
             deleted); the policies in place stay",
            kind.kind(),
            kind.api_version()
        ),
        invalid: None,
    }
}

/// The first port range of the model, as its field and value (`spec.tiers[0].ports`,
/// `30000-32767/UDP`).
fn first_range(model: &AppModel) -> Option<(String, crate::core::Port)> {
    let tiers = model.tiers.iter().enumerate().flat_map(|(i, t)| {
        t.ports
            .iter()
            .map(move |p| (format!("spec.tiers[{i}].ports"), *p))
    });
    let flows = model.flows.iter().flat_map(|f| {
        f.ports
            .iter()
            .map(move |p| (format!("spec.flows[{}].ports", f.index), *p))
    });
    tiers.chain(flows).find(|(_, p)| p.is_range())
}

fn port_range_hold(field: &str, port: crate::core::Port, why: &str) -> Hold {
    Hold {
        reason: HoldReason::PortRangeUnsupported,
        message: format!(
            "{field}: the port range {port} needs endPort, but {why}, so the policy would \
             silently open only port {}; nothing is changed (the policies in place stay). \
             Upgrade, list the ports one by one, or use another backend",
            port.bounds().map_or(0, |(a, _)| a),
        ),
        invalid: None,
    }
}

/// A hold for the first of `objects` that the backend's CNI refuses or would not enforce on
/// some supported release ([`crate::admit::report`]); renderers avoid every limit they can
/// (names, ports per rule), so what is left cannot be expressed validly on the backend.
fn admission_hold<'a>(objects: impl IntoIterator<Item = &'a Object>) -> Option<Hold> {
    objects.into_iter().find_map(|o| {
        // Kinds without admission rules (the standard backend's, written as text) are not
        // parsed for nothing.
        crate::admit::cni_of(o.kind().api_version(), o.kind().kind())?;
        let why = crate::admit::report(o.body())?;
        Some(Hold {
            reason: HoldReason::BackendLimit,
            message: format!(
                "{} {}: {why}; it cannot be expressed validly on this backend, so nothing is \
                 changed (the policies in place stay)",
                o.kind().kind(),
                o.name()
            ),
            invalid: None,
        })
    })
}

/// The first `world` peer of the model, as its field (`spec.flows[2].to`).
pub fn first_world(model: &AppModel) -> Option<String> {
    model.flows.iter().find_map(|f| {
        if f.from == crate::model::Peer::World {
            Some(format!("spec.flows[{}].from", f.index))
        } else if f.to == crate::model::Peer::World {
            Some(format!("spec.flows[{}].to", f.index))
        } else {
            None
        }
    })
}

fn cluster_ranges_hold(field: &str, backend: Backend) -> Hold {
    Hold {
        reason: HoldReason::ClusterRangesUnknown,
        message: format!(
            "{field}: a world peer on {} is every address minus the cluster's pod and service \
             ranges, and none are known (the operator's --cluster-cidr is not set and no node \
             has spec.podCIDRs), so it would also match pods; nothing is changed (the policies \
             in place stay). Start the operator with --cluster-cidr for every pod and service \
             range",
            backend.as_str()
        ),
        invalid: None,
    }
}

fn invalid_hold(e: InvalidSpec, what: &str) -> Hold {
    Hold {
        reason: HoldReason::InvalidSpec,
        message: format!("{e}; {what}"),
        invalid: Some(e),
    }
}

/// Plans every ClusterBaseline: the model in force, its backend, and its cluster-wide object.
pub fn cluster_baselines(
    inputs: &[ClusterBaselineInput],
    cluster: &Cluster,
    observed: &dyn Observed,
) -> Vec<ClusterBaselinePlan> {
    inputs
        .iter()
        .map(|cb| cluster_baseline(cb, cluster, observed))
        .collect()
}

fn cluster_baseline(
    cb: &ClusterBaselineInput,
    cluster: &Cluster,
    observed: &dyn Observed,
) -> ClusterBaselinePlan {
    let mut plan = ClusterBaselinePlan {
        name: cb.name.clone(),
        uid: cb.uid.clone(),
        generation: cb.generation,
        model: None,
        backend: None,
        object: None,
        guardrails: None,
        hold: None,
        keep_namespace_share: false,
        record: None,
    };
    let model = match validate::cluster_baseline(&cb.spec) {
        Ok(m) => m,
        Err(e) => {
            plan.hold = Some(invalid_hold(e, "the last valid spec stays enforced"));
            hold_cluster_baseline(&mut plan, observed);
            return plan;
        }
    };
    let backend = cluster.resolve(model.backend);
    if model.audit && !has_staged(backend) {
        plan.hold = Some(audit_hold(backend));
        hold_cluster_baseline(&mut plan, observed);
        return plan;
    }
    let owner = plan.owner();
    let guardrails = match render::guardrails(
        &cb.name,
        &model,
        backend,
        &cluster.operator_namespace,
        owner.as_ref(),
    ) {
        Ok(g) => g,
        Err(why) => {
            plan.hold = Some(Hold {
                reason: HoldReason::GuardrailUnsupported,
                message: format!(
                    "{why}; nothing is changed on the {} backend (the policies in place stay)",
                    backend.as_str()
                ),
                invalid: None,
            });
            hold_cluster_baseline(&mut plan, observed);
            return plan;
        }
    };
    if let Some(g) = guardrails.as_ref().filter(|g| !cluster.serves(g.kind())) {
        plan.hold = Some(unavailable_hold(g.kind(), g.name()));
        hold_cluster_baseline(&mut plan, observed);
        return plan;
    }
    let object = render::cluster_baseline(
        &cb.name,
        &model,
        backend,
        &cluster.operator_namespace,
        owner.as_ref(),
        &cluster.render_env(),
    );
    if let Some(hold) = admission_hold(object.iter()) {
        plan.hold = Some(hold);
        hold_cluster_baseline(&mut plan, observed);
        return plan;
    }
    if let Some(o) = &object {
        if !cluster.serves(o.kind()) {
            plan.hold = Some(unavailable_hold(o.kind(), o.name()));
            hold_cluster_baseline(&mut plan, observed);
            return plan;
        }
        // Switching from the standard backend: the namespaces keep their share until the new
        // cluster-wide object is in place (create before delete).
        plan.keep_namespace_share = !observed.cluster_object_exists(o.kind(), o.name());
    }
    let (key, record) = record_of_cb(cb);
    let records = BTreeMap::from([(key, record.clone())]);
    plan.guardrails = guardrails.map(|o| with_records(o, &records));
    plan.object = object.map(|o| with_records(o, &records));
    plan.record = Some(record);
    plan.model = Some(model);
    plan.backend = Some(backend);
    plan
}

fn record_of_cb(cb: &ClusterBaselineInput) -> (String, Record) {
    (
        cluster_baseline_key(&cb.name),
        Record {
            generation: cb.generation,
            wish: None,
            spec: Some(cb.spec.clone()),
        },
    )
}

/// A held ClusterBaseline keeps enforcing the last valid spec recorded on tierflow's objects:
/// its cluster-wide object stays as it is, and on the standard backend every covered namespace
/// (new ones included) keeps its share.
fn hold_cluster_baseline(plan: &mut ClusterBaselinePlan, observed: &dyn Observed) {
    let Some((kind, record)) = observed.cluster_baseline_record(&plan.name) else {
        return;
    };
    let Some(model) = record
        .spec
        .as_ref()
        .and_then(|s| validate::cluster_baseline(s).ok())
    else {
        return;
    };
    plan.backend = Some(backend_of(kind));
    plan.model = Some(model);
    plan.record = Some(record);
}

/// Everything desired in one namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct NamespacePlan {
    /// The namespace.
    pub namespace: String,
    /// Its AppNetworks, in name order.
    pub apps: Vec<AppPlan>,
    /// Baseline kinds that must stay as they are whatever else happens (their API is not
    /// served now).
    pub keep_baseline_kinds: BTreeSet<ObjectKind>,
    shares: Vec<Share>,
}

/// One input's share of a namespace baseline.
#[derive(Clone, Debug, PartialEq)]
struct Share {
    key: String,
    kind: ObjectKind,
    audit: bool,
    wish: BaselineWish,
    record: Record,
    owner: Option<Owner>,
    /// An AppNetwork's share: used only when its allows are in place (see
    /// [`NamespacePlan::baselines`]).
    app: Option<String>,
    /// What it recorded last, to fall back on when its allows are not in place.
    fallback: Option<Box<Share>>,
}

/// Plans one namespace: the per-tier objects of its AppNetworks and the shares of its baselines.
pub fn namespace(
    ns: &str,
    labels: &Labels,
    apps: &[&AppInput],
    cluster_baselines: &[ClusterBaselinePlan],
    cluster: &Cluster,
    observed: &dyn Observed,
) -> NamespacePlan {
    let mut plan = NamespacePlan {
        namespace: ns.to_string(),
        apps: Vec::new(),
        keep_baseline_kinds: BTreeSet::new(),
        shares: Vec::new(),
    };
    // What the baselines in place recorded, by kind.
    let recorded: BTreeMap<ObjectKind, Records> = ObjectKind::ALL
        .into_iter()
        .filter(|k| k.namespaced())
        .filter_map(|k| observed.records(ns, k).map(|r| (k, r)))
        .collect();
    let recorded_share = |key: &str, owner: Option<Owner>, app: Option<String>| {
        recorded.iter().find_map(|(kind, records)| {
            let record = records.get(key)?;
            let wish = match (&record.wish, &record.spec) {
                (Some(w), _) => validate::applied_baseline(w).ok()?,
                (None, Some(spec)) => validate::cluster_baseline(spec).ok()?.wish,
                (None, None) => return None,
            };
            Some(Share {
                key: key.to_string(),
                kind: *kind,
                audit: staged(*kind),
                wish,
                record: record.clone(),
                owner: owner.clone(),
                app: app.clone(),
                fallback: None,
            })
        })
    };

    let mut apps: Vec<&AppInput> = apps.to_vec();
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    for app in apps {
        let owner = app.uid.as_ref().map(|uid| Owner {
            api_version: API_VERSION.to_string(),
            kind: "AppNetwork".to_string(),
            name: app.name.clone(),
            uid: uid.clone(),
        });
        let key = app_key(&app.name);
        let (app_plan, share) = plan_app(app, cluster, owner.clone());
        match share {
            Some(mut share) => {
                share.fallback = recorded_share(&key, owner, Some(app.name.clone())).map(Box::new);
                plan.shares.push(share);
            }
            // Held: its recorded share stays.
            None => plan
                .shares
                .extend(recorded_share(&key, owner, Some(app.name.clone()))),
        }
        plan.apps.push(app_plan);
    }

    for cb in cluster_baselines {
        let key = cluster_baseline_key(&cb.name);
        if cb.hold.is_some() && !cb.backend.is_some_and(per_namespace_backend) {
            // Held on a backend with a cluster-wide object: that object stays; a share recorded
            // here (during a switch) stays too.
            plan.shares.extend(recorded_share(&key, cb.owner(), None));
            continue;
        }
        if !cb.shares(ns, labels, cluster) {
            continue;
        }
        let Some(model) = &cb.model else { continue };
        if cb.keep_namespace_share && !cb.backend.is_some_and(per_namespace_backend) {
            // Moving to a cluster-wide object that is not in place yet: keep what is recorded.
            plan.shares.extend(recorded_share(&key, cb.owner(), None));
            continue;
        }
        let Some(record) = cb.record.clone() else {
            continue;
        };
        plan.shares.push(Share {
            key,
            kind: ObjectKind::NetworkPolicy,
            audit: false,
            wish: model.wish.clone(),
            record,
            owner: cb.owner(),
            app: None,
            fallback: None,
        });
    }
    for kind in recorded.keys() {
        if !cluster.serves(*kind) {
            plan.keep_baseline_kinds.insert(*kind);
        }
    }
    plan
}

fn plan_app(app: &AppInput, cluster: &Cluster, owner: Option<Owner>) -> (AppPlan, Option<Share>) {
    let plan = AppPlan::new(app.name.clone(), app.uid.clone(), app.generation);
    match validate::app_network(&app.name, &app.namespace, &app.spec) {
        Ok(model) => plan_model(plan, model, cluster, owner),
        Err(e) => (
            AppPlan {
                hold: Some(invalid_hold(
                    e,
                    "the policies of the last valid spec stay in place",
                )),
                ..plan
            },
            None,
        ),
    }
}

/// Plans a validated AppNetwork: its backend, whether it is held, its per-tier objects and its
/// share of the namespace baseline.
fn plan_model(
    mut plan: AppPlan,
    model: AppModel,
    cluster: &Cluster,
    owner: Option<Owner>,
) -> (AppPlan, Option<Share>) {
    // A cluster-scoped-only backend (ClusterNetworkPolicy) writes an AppNetwork as standard
    // NetworkPolicy: its Baseline tier is evaluated after NetworkPolicies, so the namespace's
    // allows and baseline compose with it (see `Capabilities::namespaced_objects`).
    let backend = cluster.resolve(model.backend).for_namespaces();
    plan.backend = Some(backend);
    if model.audit && !has_staged(backend) {
        plan.hold = Some(audit_hold(backend));
        plan.model = Some(model);
        return (plan, None);
    }
    if backend == Backend::Cilium {
        if let Some(hold) = identity_label_hold(&model, &cluster.cilium_identity) {
            plan.hold = Some(hold);
            plan.model = Some(model);
            return (plan, None);
        }
    }
    if let (Backend::Cilium, Some(features)) = (backend, &cluster.cilium_features) {
        plan.missing_features = features::missing(&model, features);
        let l7 = plan
            .missing_features
            .iter()
            .any(|m| m.flag == features::ENABLE_L7_PROXY);
        if l7 && !(model.baseline.deny_ingress && model.baseline.deny_egress) {
            plan.hold = Some(Hold {
                reason: HoldReason::FeatureDisabled,
                message: format!(
                    "{}; the Cilium agent does not enforce a policy with L7 rules while the L7 \
                     proxy is off, and this AppNetwork's baseline does not deny both \
                     directions, so its tiers would be open: nothing is changed (the policies \
                     in place stay)",
                    features::message(&plan.missing_features)
                ),
                invalid: None,
            });
            plan.model = Some(model);
            return (plan, None);
        }
    }
    if let Some(why) = cluster.no_port_ranges.get(&backend) {
        if let Some((field, port)) = first_range(&model) {
            plan.hold = Some(port_range_hold(&field, port, why));
            plan.model = Some(model);
            return (plan, None);
        }
    }
    if cluster.cluster_cidrs.is_empty() && !backend.capabilities().world_entity {
        if let Some(field) = first_world(&model) {
            plan.hold = Some(cluster_ranges_hold(&field, backend));
            plan.model = Some(model);
            return (plan, None);
        }
    }
    let env = cluster.render_env();
    let rendered = render::tier_objects(&model, backend, owner.as_ref(), &env);
    // Its own share of the namespace baseline, alone: the merged baseline only adds the DNS
    // targets and denies of the other shares, each checked with its own input.
    let own_baseline = render::namespace_baseline(
        &model.namespace,
        &NamespaceBaseline::merge([&model.baseline]),
        backend,
        model.audit,
        &[],
        &env,
    );
    if let Some(hold) = admission_hold(rendered.objects.iter().chain(own_baseline.iter())) {
        plan.hold = Some(hold);
        plan.model = Some(model);
        return (plan, None);
    }
    let baseline_kind = baseline_kind(backend, model.audit);
    if let Some(missing) = rendered
        .objects
        .iter()
        .map(|o| (o.kind(), o.name().to_string()))
        .chain(
            (model.baseline != BaselineWish::default())
                .then(|| (baseline_kind, crate::vocab::BASELINE_NAME.to_string())),
        )
        .find(|(kind, _)| !cluster.serves(*kind))
    {
        plan.hold = Some(unavailable_hold(missing.0, &missing.1));
        plan.model = Some(model);
        return (plan, None);
    }
    plan.objects = rendered.objects;
    plan.limitations = rendered.limitations;
    let share = Share {
        key: app_key(&plan.name),
        kind: baseline_kind,
        audit: model.audit,
        wish: model.baseline.clone(),
        record: Record {
            generation: plan.generation,
            wish: Some(validate::to_applied_baseline(&model.baseline)),
            spec: None,
        },
        owner,
        app: Some(plan.name.clone()),
        fallback: None,
    };
    plan.model = Some(model);
    (plan, Some(share))
}

impl NamespacePlan {
    /// The per-tier objects of every AppNetwork that is not held, in write order.
    pub fn allows(&self) -> impl Iterator<Item = &Object> {
        self.apps
            .iter()
            .filter(|a| !a.held())
            .flat_map(|a| a.objects.iter())
    }

    /// The merged baselines, one per kind. `not_in_place` names AppNetworks whose allows could
    /// not all be written this time: their share is the one they recorded last (if any), so a
    /// new deny never lands before the allows it was declared with.
    pub fn baselines(&self, cluster: &Cluster, not_in_place: &BTreeSet<String>) -> Vec<Object> {
        let mut groups: BTreeMap<ObjectKind, Vec<&Share>> = BTreeMap::new();
        for share in &self.shares {
            let share = match &share.app {
                Some(app) if not_in_place.contains(app) => match &share.fallback {
                    Some(f) => f.as_ref(),
                    None => continue,
                },
                _ => share,
            };
            groups.entry(share.kind).or_default().push(share);
        }
        let mut out = Vec::new();
        for (kind, shares) in groups {
            let backend = backend_of(kind);
            let merged = NamespaceBaseline::merge(shares.iter().map(|s| &s.wish));
            let mut owners: Vec<Owner> = shares.iter().filter_map(|s| s.owner.clone()).collect();
            owners.sort();
            owners.dedup();
            let audit = shares.iter().any(|s| s.audit);
            let Some(obj) = render::namespace_baseline(
                &self.namespace,
                &merged,
                backend,
                audit,
                &owners,
                &cluster.render_env(),
            ) else {
                continue;
            };
            let records: Records = shares
                .iter()
                .map(|s| (s.key.clone(), s.record.clone()))
                .collect();
            out.push(with_records(obj, &records));
        }
        out
    }

    /// Whether an object tierflow owns in this namespace stays, given the objects desired now:
    /// the objects of held AppNetworks and baselines whose API is not served stay as they are.
    pub fn keeps(
        &self,
        kind: ObjectKind,
        controller_uid: Option<&str>,
        role_baseline: bool,
    ) -> bool {
        if role_baseline {
            return self.keep_baseline_kinds.contains(&kind);
        }
        match controller_uid {
            Some(uid) => self
                .apps
                .iter()
                .any(|a| a.held() && a.uid.as_deref() == Some(uid)),
            None => true,
        }
    }
}

/// The backend whose objects are of `kind`.
pub fn backend_of(kind: ObjectKind) -> Backend {
    match kind {
        ObjectKind::NetworkPolicy => Backend::NetworkPolicy,
        ObjectKind::CalicoNetworkPolicy
        | ObjectKind::CalicoGlobalNetworkPolicy
        | ObjectKind::CalicoStagedNetworkPolicy
        | ObjectKind::CalicoStagedGlobalNetworkPolicy => Backend::Calico,
        ObjectKind::CiliumNetworkPolicy | ObjectKind::CiliumClusterwideNetworkPolicy => {
            Backend::Cilium
        }
        ObjectKind::ClusterNetworkPolicy => Backend::ClusterNetworkPolicy,
    }
}

/// Whether objects of `kind` are staged (Audit) rather than enforced.
pub fn staged(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::CalicoStagedNetworkPolicy | ObjectKind::CalicoStagedGlobalNetworkPolicy
    )
}

/// Whether a ClusterBaseline on `backend` is a share of every covered namespace's baseline
/// (the backend has no cluster-wide object).
pub fn per_namespace_backend(backend: Backend) -> bool {
    !backend.capabilities().cluster_wide_object
}

fn has_staged(backend: Backend) -> bool {
    backend.capabilities().staged
}

/// The kind of the namespace baseline on `backend`.
pub fn baseline_kind(backend: Backend, audit: bool) -> ObjectKind {
    match (backend.for_namespaces(), audit) {
        (Backend::NetworkPolicy | Backend::ClusterNetworkPolicy, _) => ObjectKind::NetworkPolicy,
        (Backend::Calico, false) => ObjectKind::CalicoNetworkPolicy,
        (Backend::Calico, true) => ObjectKind::CalicoStagedNetworkPolicy,
        (Backend::Cilium, _) => ObjectKind::CiliumNetworkPolicy,
    }
}

fn with_records(obj: Object, records: &Records) -> Object {
    let Ok(text) = serde_json::to_string(records) else {
        return obj;
    };
    let kind = obj.kind();
    let mut body = obj.into_value();
    if let Some(meta) = body.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(INPUTS_ANNOTATION.to_string(), serde_json::Value::from(text));
        }
    }
    Object::from_value(kind, body)
}

/// Everything desired, for the CLI: every namespace of the input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Objects in write order: per-tier allows, cluster-wide objects, then baselines.
    pub objects: Vec<Object>,
    /// The namespaces' plans.
    pub namespaces: Vec<NamespacePlan>,
    /// The ClusterBaselines' plans.
    pub cluster_baselines: Vec<ClusterBaselinePlan>,
}

impl Plan {
    /// The plan of every AppNetwork.
    pub fn apps(&self) -> impl Iterator<Item = (&str, &AppPlan)> {
        self.namespaces
            .iter()
            .flat_map(|n| n.apps.iter().map(move |a| (n.namespace.as_str(), a)))
    }
}

/// Plans everything: every namespace in `namespaces` (with its labels) and every namespace an
/// AppNetwork is in.
pub fn plan(
    apps: &[AppInput],
    cluster_baseline_inputs: &[ClusterBaselineInput],
    namespaces: &BTreeMap<String, Labels>,
    cluster: &Cluster,
    observed: &dyn Observed,
) -> Plan {
    let cbs = cluster_baselines(cluster_baseline_inputs, cluster, observed);
    let mut all: BTreeMap<String, Labels> = namespaces.clone();
    for a in apps {
        all.entry(a.namespace.clone()).or_default();
    }
    let mut out = Plan::default();
    for (ns, labels) in &all {
        let mut labels = labels.clone();
        labels
            .entry(NAMESPACE_NAME_LABEL.to_string())
            .or_insert_with(|| ns.clone());
        let mine: Vec<&AppInput> = apps.iter().filter(|a| &a.namespace == ns).collect();
        let p = namespace(ns, &labels, &mine, &cbs, cluster, observed);
        out.objects.extend(p.allows().cloned());
        out.namespaces.push(p);
    }
    out.objects.extend(
        cbs.iter()
            .filter(|c| c.hold.is_none())
            .flat_map(|c| c.guardrails.iter().chain(&c.object).cloned()),
    );
    for p in &out.namespaces {
        out.objects.extend(p.baselines(cluster, &BTreeSet::new()));
    }
    out.cluster_baselines = cbs;
    out
}

/// The objects of ONE validated AppNetwork alone in its namespace on `backend`: its per-tier
/// objects, then its namespace baseline, and what the backend could not express. Verification
/// and `explain` use this; it is the same planning as [`namespace`], with the model already
/// validated. (Held for `Audit` on a backend without staged policies: nothing.)
pub fn app_objects(
    model: &AppModel,
    backend: Backend,
    env: &Env,
) -> (Vec<Object>, Vec<Limitation>) {
    app_objects_with(
        model,
        backend,
        env,
        &crate::engine::CiliumIdentityFilter::default(),
    )
}

/// [`app_objects`] on a cluster whose Cilium agent uses the identity label filter `identity`
/// (which decides the [`HoldReason::LabelNotInIdentity`] hold on Cilium).
pub fn app_objects_with(
    model: &AppModel,
    backend: Backend,
    env: &Env,
    identity: &crate::engine::CiliumIdentityFilter,
) -> (Vec<Object>, Vec<Limitation>) {
    let cluster = Cluster {
        forced_backend: Some(backend),
        env: env.clone(),
        cluster_cidrs: env.cluster_cidrs.clone(),
        cilium_identity: identity.clone(),
        ..Cluster::default()
    };
    let plan = AppPlan::new(model.name.clone(), None, None);
    let (plan, share) = plan_model(plan, model.clone(), &cluster, None);
    let limitations = plan.limitations.clone();
    let ns = NamespacePlan {
        namespace: model.namespace.clone(),
        apps: vec![plan],
        keep_baseline_kinds: BTreeSet::new(),
        shares: share.into_iter().collect(),
    };
    let mut objects: Vec<Object> = ns.allows().cloned().collect();
    objects.extend(ns.baselines(&cluster, &BTreeSet::new()));
    (objects, limitations)
}

pub mod features;
#[cfg(test)]
mod guardrail_tests;
#[cfg(test)]
mod tests;
