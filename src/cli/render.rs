//! `tierflow render`: the exact objects the operator would apply for the AppNetworks and
//! ClusterBaselines of the input.
//!
//! - An AppNetwork gives its per-tier objects; every namespace holding AppNetworks gets ONE
//!   merged `tierflow-baseline` per backend (deny if any input denies, DNS if any wants it), as
//!   the namespace controller merges them.
//! - A ClusterBaseline gives ONE cluster-wide object on Calico and Cilium. On the standard
//!   backend it has none; instead every namespace it covers gets the merged baseline. The
//!   namespaces known offline are those of the input's AppNetworks, the input's `v1` Namespace
//!   objects and those named in `--namespace-labels NS:...`; coverage is decided on their labels
//!   (`--namespace-labels`, the Namespace objects' labels, and `kubernetes.io/metadata.name`).
//!
//! No owner references are written (the owners' UIDs exist only in a cluster).

use std::collections::BTreeMap;

use super::input::{type_text, Document, Input};
use super::CliError;
use crate::crd::{AppNetwork, ClusterBaseline};
use crate::model::{Backend, BaselineWish};
use crate::plan;
use crate::render::{Env, Object};
use crate::vocab::NAMESPACE_NAME_LABEL;

/// Labels assumed for namespaces: for every namespace, and per namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceLabels {
    /// Labels every namespace is assumed to carry.
    pub all: BTreeMap<String, String>,
    /// Labels of particular namespaces (these namespaces are known to exist).
    pub per_namespace: BTreeMap<String, BTreeMap<String, String>>,
}

impl NamespaceLabels {
    /// Adds one `--namespace-labels` value: `k=v,k2=v2` (every namespace) or `NS:k=v,...`
    /// (namespace `NS`; label keys and values never contain `:`).
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        let (ns, pairs) = match spec.split_once(':') {
            Some((ns, rest)) => (Some(ns.trim()), rest),
            None => (None, spec),
        };
        let mut labels = BTreeMap::new();
        for pair in pairs.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not of the form key=value"))?;
            crate::core::selector::check_key(k.trim()).map_err(|e| e.to_string())?;
            crate::core::selector::check_value(k.trim(), v.trim()).map_err(|e| e.to_string())?;
            labels.insert(k.trim().to_string(), v.trim().to_string());
        }
        match ns {
            Some(ns) => {
                if !crate::core::selector::is_dns1123_label(ns) {
                    return Err(format!("{ns:?} is not a namespace name"));
                }
                self.per_namespace
                    .entry(ns.to_string())
                    .or_default()
                    .extend(labels);
            }
            None => self.all.extend(labels),
        }
        Ok(())
    }
}

/// How to render.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// The backend for every object (default: each object's own, `Auto` meaning NetworkPolicy).
    pub backend: Option<Backend>,
    /// Labels assumed for namespaces.
    pub namespace_labels: NamespaceLabels,
    /// The operator's namespace (a system namespace for ClusterBaselines).
    pub operator_namespace: String,
    /// The cluster's pod and service ranges (`--cluster-cidr`), for `world` peers.
    pub cluster_cidrs: Vec<crate::core::Cidr>,
    /// Which pod labels make up a Cilium identity (`--cilium-identity-labels`, or the
    /// cluster's `cilium-config`): decides the `LabelNotInIdentity` hold.
    pub cilium_identity: crate::engine::CiliumIdentityFilter,
}

/// What `render` produced: objects in apply order (per-tier allows, cluster-wide objects, then
/// the namespace baselines), and what the backends could not express.
#[derive(Clone, Debug, Default)]
pub struct RenderOutput {
    /// The objects.
    pub objects: Vec<Object>,
    /// Messages about what was left out or weakened, each naming its object.
    pub notes: Vec<String>,
}

fn audit_error(what: &str, message: &str) -> String {
    format!("{what}: {message}, so the operator refuses it and changes nothing (AuditUnsupported)")
}

/// Renders every AppNetwork and ClusterBaseline of the input (`v1` Namespace documents only
/// contribute their labels), through the same planner the operator uses.
pub fn render_input(input: &Input, options: &RenderOptions) -> Result<RenderOutput, CliError> {
    let (apps, cluster_baselines, namespaces, docs) = planner_inputs(input, options)?;
    let cluster = cluster(options);
    let plan = plan::plan(
        &apps,
        &cluster_baselines,
        &namespaces,
        &cluster,
        &plan::Nothing,
    );
    let mut out = RenderOutput::default();
    for (ns, app) in plan.apps() {
        if let Some(hold) = &app.hold {
            let doc = docs.get(&format!("{ns}/{}", app.name)).copied();
            return Err(hold_error(input, doc, hold));
        }
        for n in &app.limitations {
            out.notes.push(format!(
                "AppNetwork {ns}/{}: {}: {}",
                app.name,
                n.kind.reason(),
                n.message
            ));
        }
    }
    for cb in &plan.cluster_baselines {
        if let Some(hold) = &cb.hold {
            let doc = docs.get(&cb.name).copied();
            return Err(hold_error(input, doc, hold));
        }
        let Some(model) = &cb.model else { continue };
        if !cb.backend.is_some_and(plan::per_namespace_backend)
            || model.wish == BaselineWish::default()
        {
            continue;
        }
        let covered: Vec<&String> = namespaces
            .iter()
            .filter(|(ns, labels)| cb.shares(ns, labels, &cluster))
            .map(|(ns, _)| ns)
            .collect();
        if namespaces.is_empty() {
            out.notes.push(format!(
                "ClusterBaseline {}: on the NetworkPolicy backend it is one NetworkPolicy per \
                 covered namespace, and the input names no namespace (add Namespace objects, an \
                 AppNetwork, or --namespace-labels NAMESPACE:key=value)",
                cb.name
            ));
        } else if covered.is_empty() {
            out.notes.push(format!(
                "ClusterBaseline {}: covers none of the namespaces known here ({})",
                cb.name,
                namespaces.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    out.objects = plan.objects;
    Ok(out)
}

/// The planner's view of the cluster offline: every kind served, `Auto` meaning NetworkPolicy
/// unless `--backend` says otherwise.
pub fn cluster(options: &RenderOptions) -> plan::Cluster {
    plan::Cluster {
        served: None,
        auto_backend: None,
        forced_backend: options.backend,
        env: Env::default(),
        operator_namespace: options.operator_namespace.clone(),
        cluster_cidrs: options.cluster_cidrs.clone(),
        cluster_cidrs_source: "--cluster-cidr".to_string(),
        cilium_identity: options.cilium_identity.clone(),
        ..plan::Cluster::default()
    }
}

fn hold_error(input: &Input, doc: Option<&Document>, hold: &plan::Hold) -> CliError {
    let message = match hold.reason {
        plan::HoldReason::AuditUnsupported => audit_error("spec.mode", &hold.message),
        _ => hold.message.clone(),
    };
    match doc {
        Some(doc) => input.error(doc, None, message).into(),
        None => CliError::Output(message),
    }
}

/// The AppNetworks (validated, so errors name file, document and field), ClusterBaselines and
/// namespaces (with labels) of the input, and the document of each input by key
/// (`namespace/name` for AppNetworks, the name for ClusterBaselines).
#[allow(clippy::type_complexity)]
pub fn planner_inputs<'a>(
    input: &'a Input,
    options: &RenderOptions,
) -> Result<
    (
        Vec<plan::AppInput>,
        Vec<plan::ClusterBaselineInput>,
        BTreeMap<String, BTreeMap<String, String>>,
        BTreeMap<String, &'a Document>,
    ),
    CliError,
> {
    let mut namespaces: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut apps = Vec::new();
    let mut cluster_baselines = Vec::new();
    let mut docs = BTreeMap::new();
    for doc in &input.documents {
        if doc.value.is_null() {
            continue;
        }
        match doc.type_meta() {
            ("tierflow.dev/v1alpha1", "AppNetwork") => {
                let model = input.app_network(doc)?;
                let app: AppNetwork = input.typed(doc)?;
                namespaces.entry(model.namespace.clone()).or_default();
                docs.insert(format!("{}/{}", model.namespace, model.name), doc);
                apps.push(plan::AppInput {
                    name: model.name,
                    namespace: model.namespace,
                    uid: None,
                    generation: None,
                    spec: app.spec,
                });
            }
            ("tierflow.dev/v1alpha1", "ClusterBaseline") => {
                let (name, _) = input.cluster_baseline(doc)?;
                let cb: ClusterBaseline = input.typed(doc)?;
                docs.insert(name.clone(), doc);
                cluster_baselines.push(plan::ClusterBaselineInput {
                    name,
                    uid: None,
                    generation: None,
                    spec: cb.spec,
                });
            }
            ("v1", "Namespace") => {
                let meta = doc.value.get("metadata");
                let Some(name) = meta
                    .and_then(|m| m.get("name"))
                    .and_then(serde_json::Value::as_str)
                else {
                    return Err(input
                        .error(doc, Some("metadata.name".into()), "missing".into())
                        .into());
                };
                let labels: BTreeMap<String, String> =
                    match meta.and_then(|m| m.get("labels")).cloned() {
                        Some(l) => serde_json::from_value(l).map_err(|e| {
                            input.error(doc, Some("metadata.labels".into()), e.to_string())
                        })?,
                        None => BTreeMap::new(),
                    };
                namespaces
                    .entry(name.to_string())
                    .or_default()
                    .extend(labels);
            }
            (api_version, kind) => {
                return Err(input
                    .error(
                        doc,
                        None,
                        format!(
                            "render reads tierflow.dev/v1alpha1 AppNetwork and ClusterBaseline \
                             and v1 Namespace, not {}",
                            type_text(api_version, kind)
                        ),
                    )
                    .into())
            }
        }
    }
    for ns in options.namespace_labels.per_namespace.keys() {
        namespaces.entry(ns.clone()).or_default();
    }
    for (name, labels) in &mut namespaces {
        let mut all = options.namespace_labels.all.clone();
        all.extend(std::mem::take(labels));
        if let Some(own) = options.namespace_labels.per_namespace.get(name) {
            all.extend(own.clone());
        }
        all.insert(NAMESPACE_NAME_LABEL.to_string(), name.clone());
        *labels = all;
    }
    Ok((apps, cluster_baselines, namespaces, docs))
}

/// The objects as multi-document YAML.
pub fn to_yaml(objects: &[Object]) -> Result<String, CliError> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(
            &serde_yaml::to_string(&o.body()).map_err(|e| CliError::Output(e.to_string()))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::input::parse;
    use crate::render::ObjectKind;

    const APP: &str = "\
apiVersion: tierflow.dev/v1alpha1
kind: AppNetwork
metadata: {name: shop, namespace: production}
spec:
  tiers:
    - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: 8080}]}
";

    const CB: &str = "\
apiVersion: tierflow.dev/v1alpha1
kind: ClusterBaseline
metadata: {name: default}
spec:
  namespaceSelector: {matchLabels: {env: prod}}
  denyIngress: true
  denyEgress: false
";

    fn options(backend: Backend) -> RenderOptions {
        RenderOptions {
            backend: Some(backend),
            operator_namespace: "tierflow-system".into(),
            ..RenderOptions::default()
        }
    }

    fn kinds(out: &RenderOutput) -> Vec<(ObjectKind, String, Option<String>)> {
        out.objects
            .iter()
            .map(|o| {
                (
                    o.kind(),
                    o.name().to_string(),
                    o.namespace().map(str::to_string),
                )
            })
            .collect()
    }

    #[test]
    fn calico_and_cilium_renders_include_the_namespace_baseline() {
        for backend in [Backend::Calico, Backend::Cilium] {
            let out = render_input(&parse("a.yaml", APP).unwrap(), &options(backend)).unwrap();
            let names: Vec<_> = out.objects.iter().map(Object::name).collect();
            assert_eq!(
                names,
                ["tierflow-shop-web", "tierflow-baseline"],
                "{backend:?}"
            );
        }
    }

    #[test]
    fn a_cluster_baseline_is_one_object_on_calico_and_cilium() {
        let text = format!("{APP}---\n{CB}");
        let out =
            render_input(&parse("a.yaml", &text).unwrap(), &options(Backend::Cilium)).unwrap();
        assert_eq!(
            kinds(&out),
            [
                (
                    ObjectKind::CiliumNetworkPolicy,
                    "tierflow-shop-web".to_string(),
                    Some("production".to_string())
                ),
                (
                    ObjectKind::CiliumClusterwideNetworkPolicy,
                    "tierflow-baseline-default".to_string(),
                    None
                ),
                (
                    ObjectKind::CiliumNetworkPolicy,
                    "tierflow-baseline".to_string(),
                    Some("production".to_string())
                ),
            ]
        );
    }

    #[test]
    fn a_cluster_baseline_on_networkpolicy_merges_into_covered_namespaces() {
        let text = format!("{CB}---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: shop, labels: {{env: prod}}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: dev}}\n");
        let mut o = options(Backend::NetworkPolicy);
        o.namespace_labels.add("other:env=prod").unwrap();
        let out = render_input(&parse("a.yaml", &text).unwrap(), &o).unwrap();
        let names: Vec<_> = out
            .objects
            .iter()
            .map(|o| format!("{}/{}", o.namespace().unwrap_or(""), o.name()))
            .collect();
        assert_eq!(names, ["other/tierflow-baseline", "shop/tierflow-baseline"]);
        assert_eq!(
            out.objects[0].body()["spec"]["policyTypes"],
            serde_json::json!(["Ingress"])
        );
    }

    #[test]
    fn an_app_network_and_a_cluster_baseline_merge_into_one_baseline() {
        let text = format!("{APP}---\n{CB}");
        let mut o = options(Backend::NetworkPolicy);
        o.namespace_labels.add("env=prod").unwrap();
        let out = render_input(&parse("a.yaml", &text).unwrap(), &o).unwrap();
        let baselines: Vec<_> = out
            .objects
            .iter()
            .filter(|o| o.name() == "tierflow-baseline")
            .collect();
        assert_eq!(baselines.len(), 1);
        assert_eq!(
            baselines[0].body()["spec"]["policyTypes"],
            serde_json::json!(["Ingress", "Egress"])
        );
    }

    #[test]
    fn namespace_label_flags_parse_both_forms() {
        let mut l = NamespaceLabels::default();
        l.add("env=prod,team=a").unwrap();
        l.add("shop:tier=gold").unwrap();
        assert_eq!(l.all.len(), 2);
        assert_eq!(l.per_namespace["shop"]["tier"], "gold");
        assert!(l.add("env").is_err());
        assert!(l.add("Bad_NS:a=b").is_err());
    }
}
