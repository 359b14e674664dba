//! `tierflow verify` beyond each AppNetwork's own intent: every ClusterBaseline of the input,
//! planned on its backend exactly as `render` plans it, must give every namespace it covers
//! deny-all plus DNS ([`crate::verify::cluster::cluster_baselines`]); and no declared flow of
//! an AppNetwork of the input may be one a guardrail denies
//! ([`crate::verify::guardrail::overrides`]), each reported with the guardrail rule, and with
//! whether the simulation of everything rendered denies it as the guardrail says.
//!
//! The namespaces are those `render` knows: the input's Namespace documents, its AppNetworks'
//! namespaces and `--namespace-labels NS:...`, with their labels.

use std::fmt;

use serde::Serialize;

use super::input::Input;
use super::render::{cluster, planner_inputs, RenderOptions};
use super::CliError;
use crate::plan;
use crate::verify::cluster::{cluster_baselines, CoverageProblem};
use crate::verify::guardrail::{overrides, Guarding, GuardrailOverride, Known};

/// The outcome for one ClusterBaseline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBaselineReport {
    /// Its name.
    pub name: String,
    /// The backend it is planned on (`None` when held before one was chosen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The namespaces of the input it covers.
    pub covered: Vec<String>,
    /// Why it is held (nothing of it would be written): `Reason: message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// Covered namespaces that do not get what it asks for.
    pub problems: Vec<CoverageProblem>,
}

impl ClusterBaselineReport {
    /// Whether it is written and every covered namespace gets what it asks for.
    pub fn passed(&self) -> bool {
        self.held.is_none() && self.problems.is_empty()
    }
}

/// What `verify` found about the ClusterBaselines and guardrails of the input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    /// One per ClusterBaseline of the input.
    pub cluster_baselines: Vec<ClusterBaselineReport>,
    /// Declared flows of the input's AppNetworks that a guardrail denies.
    pub guardrail_overrides: Vec<GuardrailOverride>,
    /// Notes (namespaces not known, ...).
    pub notes: Vec<String>,
}

impl ClusterReport {
    /// Whether every ClusterBaseline passed and no guardrail overrides a declared flow.
    pub fn passed(&self) -> bool {
        self.cluster_baselines
            .iter()
            .all(ClusterBaselineReport::passed)
            && self.guardrail_overrides.is_empty()
    }

    /// Whether there is anything to say.
    pub fn is_empty(&self) -> bool {
        self.cluster_baselines.is_empty() && self.guardrail_overrides.is_empty()
    }
}

impl fmt::Display for ClusterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for cb in &self.cluster_baselines {
            match &cb.backend {
                Some(on) => write!(f, "ClusterBaseline {} ({on}): ", cb.name)?,
                None => write!(f, "ClusterBaseline {}: ", cb.name)?,
            }
            if let Some(h) = &cb.held {
                writeln!(f, "HELD, nothing of it would be written: {h}")?;
            } else if cb.problems.is_empty() {
                writeln!(
                    f,
                    "ok, every covered namespace is deny-all plus DNS ({} covered: {})",
                    cb.covered.len(),
                    cb.covered.join(", ")
                )?;
            } else {
                writeln!(
                    f,
                    "{} problems in {} covered namespaces",
                    cb.problems.len(),
                    cb.covered.len()
                )?;
                for p in &cb.problems {
                    writeln!(f, "    {}: {}", p.namespace, p.message)?;
                }
            }
        }
        let mut app = "";
        for o in &self.guardrail_overrides {
            if o.app_network != app {
                app = &o.app_network;
                writeln!(f, "AppNetwork {app}: declared flows a guardrail denies:")?;
            }
            writeln!(f, "    {}", o.describe())?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// Verifies the ClusterBaselines of the input and its AppNetworks against their guardrails.
pub fn verify_cluster(input: &Input, options: &RenderOptions) -> Result<ClusterReport, CliError> {
    let (apps, cbs, namespaces, _) = planner_inputs(input, options)?;
    let mut report = ClusterReport::default();
    if cbs.is_empty() {
        return Ok(report);
    }
    let cluster = cluster(options);
    let p = plan::plan(&apps, &cbs, &namespaces, &cluster, &plan::Nothing);
    let problems = cluster_baselines(&p, &namespaces, &cluster).map_err(|e| {
        CliError::Output(format!(
            "the engine cannot read what the ClusterBaselines render to: {e}"
        ))
    })?;
    if namespaces.is_empty() {
        report.notes.push(
            "the input names no namespace, so no ClusterBaseline coverage was checked (add \
             Namespace objects, an AppNetwork, or --namespace-labels NAMESPACE:key=value)"
                .to_string(),
        );
    }
    for cb in &p.cluster_baselines {
        let covered = namespaces
            .iter()
            .filter(|(ns, labels)| {
                cb.coverage(ns, labels, &cluster) == Some(crate::model::Coverage::Covered)
            })
            .map(|(ns, _)| ns.clone())
            .collect();
        report.cluster_baselines.push(ClusterBaselineReport {
            name: cb.name.clone(),
            backend: cb.backend.map(|b| b.as_str().to_string()),
            covered,
            held: cb
                .hold
                .as_ref()
                .map(|h| format!("{}: {}", h.reason.reason(), h.message)),
            problems: problems
                .iter()
                .filter(|x| x.cluster_baseline == cb.name)
                .cloned()
                .collect(),
        });
    }
    // Guardrails in force: those of ClusterBaselines that are not held.
    let guarding: Vec<Guarding<'_>> = p
        .cluster_baselines
        .iter()
        .filter(|cb| cb.hold.is_none())
        .filter_map(|cb| {
            cb.model.as_ref().map(|m| Guarding {
                name: &cb.name,
                model: m,
            })
        })
        .collect();
    if guarding.iter().all(|g| g.model.guardrails.is_none()) {
        return Ok(report);
    }
    let objects: Vec<serde_json::Value> = p.objects.iter().map(|o| o.to_value()).collect();
    for (_, app) in p.apps() {
        let Some(model) = &app.model else { continue };
        let found = overrides(
            model,
            &guarding,
            Known {
                namespaces: &namespaces,
                operator_namespace: &cluster.operator_namespace,
                cluster_cidrs: &options.cluster_cidrs,
            },
            Some(objects.clone()),
        )
        .map_err(|e| {
            CliError::Output(format!(
                "the engine cannot read what {}/{} and the guardrails render to: {e}",
                model.namespace, model.name
            ))
        })?;
        report.guardrail_overrides.extend(found);
    }
    Ok(report)
}
