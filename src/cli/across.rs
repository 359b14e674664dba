//! `verify` across namespaces and `why`, on files or on the live cluster: the input split into
//! what the planner reads (AppNetworks, ClusterBaselines, Namespaces) and the users' own objects
//! (everything else the engine reads: Pods, NetworkPolicies, Calico, Cilium,
//! ClusterNetworkPolicy). tierflow's own objects in the input (`app.kubernetes.io/managed-by:
//! tierflow`, as `--from-cluster` reads them) are left out: the planner renders them again from
//! the AppNetworks and ClusterBaselines, exactly as the operator would.

use super::input::{Document, Input};
use super::render::{cluster, planner_inputs, RenderOptions};
use super::CliError;
use crate::crd::AppNetwork;
use crate::verify::across::{self, is_managed, World};

/// Whether a document is one the planner reads.
pub fn is_intent(doc: &Document) -> bool {
    matches!(
        doc.type_meta(),
        ("tierflow.dev/v1alpha1", "AppNetwork" | "ClusterBaseline") | ("v1", "Namespace")
    )
}

/// The input with only what the planner reads (document numbers and files kept).
pub fn intent_only(input: &Input) -> Input {
    Input {
        sources: input.sources.clone(),
        documents: input
            .documents
            .iter()
            .filter(|d| is_intent(d))
            .cloned()
            .collect(),
    }
}

/// The input without the AppNetworks and ClusterBaselines that are invalid, and an error
/// message for each one left out: a live cluster may hold invalid ones (the operator holds
/// them), which must not keep the others from being checked.
pub fn without_invalid(input: &Input) -> (Input, Vec<String>) {
    let mut notes = Vec::new();
    let documents = input
        .documents
        .iter()
        .filter(|d| {
            let invalid = match d.type_meta() {
                ("tierflow.dev/v1alpha1", "AppNetwork") => input.app_network(d).err(),
                ("tierflow.dev/v1alpha1", "ClusterBaseline") => input.cluster_baseline(d).err(),
                _ => None,
            };
            match invalid {
                Some(e) => {
                    notes.push(format!(
                        "passing over an invalid object (the operator holds it): {e}"
                    ));
                    false
                }
                None => true,
            }
        })
        .cloned()
        .collect();
    (
        Input {
            sources: input.sources.clone(),
            documents,
        },
        notes,
    )
}

/// The backend the operator chose for `Auto` AppNetworks, as their status reports it (live
/// input only; files have no status).
fn live_auto_backend(input: &Input) -> Option<crate::model::Backend> {
    input
        .documents
        .iter()
        .filter(|d| d.type_meta() == ("tierflow.dev/v1alpha1", "AppNetwork"))
        .filter_map(|d| serde_json::from_value::<AppNetwork>(d.value.clone()).ok())
        .filter(|a| a.spec.backend == crate::crd::BackendSpec::Auto)
        .filter_map(|a| a.status?.backend)
        .find_map(|b| crate::model::Backend::parse(&b))
}

/// The world of the input: the planner's inputs and the users' own objects. The users' objects
/// keep their place in the input (the others are `null`), so engine errors name the right file
/// and document ([`Input::locate`]).
pub fn world(input: &Input, options: &RenderOptions) -> Result<World, CliError> {
    let intent = intent_only(input);
    let (apps, cluster_baselines, mut namespaces, _) = planner_inputs(&intent, options)?;
    let mut cluster = cluster(options);
    if options.backend.is_none() {
        cluster.auto_backend = live_auto_backend(input);
    }
    let mut others = Vec::with_capacity(input.documents.len());
    for d in &input.documents {
        if is_intent(d) || is_managed(&d.value) {
            others.push(serde_json::Value::Null);
        } else {
            // A Pod's namespace counts as known (its labels are read from its Namespace).
            if let Some(ns) = d
                .value
                .pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
            {
                if d.type_meta() == ("v1", "Pod") {
                    namespaces.entry(ns.to_string()).or_insert_with(|| {
                        [(
                            crate::vocab::NAMESPACE_NAME_LABEL.to_string(),
                            ns.to_string(),
                        )]
                        .into()
                    });
                }
            }
            others.push(d.value.clone());
        }
    }
    Ok(World {
        apps,
        cluster_baselines,
        namespaces,
        cluster,
        others,
    })
}

/// Verifies every declared pod-to-pod flow of the input's AppNetworks across namespaces.
pub fn verify(input: &Input, options: &RenderOptions) -> Result<across::Report, CliError> {
    let w = world(input, options)?;
    across::check(&w, None).map_err(|e| CliError::Input(input.locate(e)))
}

/// `tierflow why`.
pub fn why(
    input: &Input,
    options: &RenderOptions,
    from: &str,
    to: &str,
    port: crate::core::Port,
) -> Result<across::Why, CliError> {
    let from = across::Who::parse(from).map_err(|e| CliError::Usage(format!("--from: {e}")))?;
    let to = across::Who::parse(to).map_err(|e| CliError::Usage(format!("--to: {e}")))?;
    let number = port
        .number()
        .ok_or_else(|| CliError::Usage("--port: one port number, for example 8080/TCP".into()))?;
    let w = world(input, options)?;
    // Engine errors in the users' objects are located in their file first.
    crate::engine::Scenario::from_values(w.others.clone()).map_err(|e| input.locate(e))?;
    across::why(&w, &from, &to, number, port.protocol).map_err(|e| match e {
        across::WhyError::Engine(e) => CliError::Input(input.locate(e)),
        e => CliError::Usage(e.to_string()),
    })
}
