//! The imported AppNetworks as YAML, with comments naming the policies behind each part.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use super::types::{Import, ImportedApp};
use crate::engine::PolicyRef;

fn names(refs: &BTreeSet<PolicyRef>) -> String {
    refs.iter()
        .map(|r| format!("{} {r}", r.kind))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every imported AppNetwork as a YAML document: a header naming the namespace, the policies
/// behind the baseline and DNS, and what has no AppNetwork form; a `# from ...` comment above
/// every tier and flow.
pub fn to_yaml(import: &Import) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for app in &import.apps {
        out.push_str(&document(import, app)?);
    }
    Ok(out)
}

fn document(import: &Import, app: &ImportedApp) -> Result<String, serde_yaml::Error> {
    let mut out = String::from("---\n");
    out.push_str(&format!(
        "# Imported by `tierflow import` from the policies of namespace {}.\n",
        app.namespace
    ));
    if !app.baseline_sources.is_empty() {
        out.push_str(&format!(
            "# baseline and dns from {}\n",
            names(&app.baseline_sources)
        ));
    }
    let gaps: Vec<_> = import
        .gaps
        .iter()
        .filter(|g| g.policy.namespace.as_deref() == Some(app.namespace.as_str()))
        .collect();
    if !gaps.is_empty() {
        out.push_str("# NOT expressed (left out, never written wider):\n");
        for g in gaps {
            out.push_str(&format!("#   {}\n", g.describe()));
        }
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc<'a> {
        api_version: &'a str,
        kind: &'a str,
        metadata: serde_json::Value,
        spec: &'a crate::crd::AppNetworkSpec,
    }
    let body = Doc {
        api_version: "tierflow.dev/v1alpha1",
        kind: "AppNetwork",
        metadata: json!({"name": app.name, "namespace": app.namespace}),
        spec: &app.spec,
    };
    let text = serde_yaml::to_string(&body)?;
    // Defaults a reader need not see, and where DNS would be when it is off.
    let mut kept = String::new();
    let mut dns_off = false;
    for l in text.lines() {
        if matches!(l, "  backend: Auto" | "  mode: Enforce" | "    ports: []") {
            continue;
        }
        if l.starts_with("  ") && !l.starts_with("   ") {
            dns_off = false;
        }
        if dns_off {
            continue;
        }
        if l == "    enabled: false" {
            dns_off = true;
        }
        kept.push_str(l);
        kept.push('\n');
    }
    let text = kept;
    #[derive(PartialEq)]
    enum In {
        Nothing,
        Tiers,
        Flows,
    }
    let mut section = In::Nothing;
    let (mut tier, mut flow) = (0usize, 0usize);
    for line in text.lines() {
        if line.starts_with("  ") && !line.starts_with("   ") && !line.starts_with("  - ") {
            section = match line.trim() {
                "tiers:" => In::Tiers,
                "flows:" => In::Flows,
                _ => In::Nothing,
            };
        } else if !line.starts_with(' ') {
            section = In::Nothing;
        }
        if line.starts_with("  - ") {
            let (refs, note) = match section {
                In::Tiers => {
                    tier += 1;
                    (app.tier_sources.get(tier - 1), None)
                }
                In::Flows => {
                    flow += 1;
                    (
                        app.flow_sources.get(flow - 1),
                        app.flow_notes.get(flow - 1).filter(|n| !n.is_empty()),
                    )
                }
                In::Nothing => (None, None),
            };
            if let Some(refs) = refs.filter(|r| !r.is_empty()) {
                out.push_str(&format!("  # from {}\n", names(refs)));
            }
            if let Some(note) = note {
                out.push_str(&format!("  # ({note})\n"));
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}
