//! The custom resources, as users write them. Only `validate` reads these specs.

mod appnetwork;
pub mod cel;
mod clusterbaseline;
mod common;

pub use appnetwork::{
    AppNetwork, AppNetworkSpec, AppNetworkStatus, AppliedBaseline, BaselineSpec, FlowSpec,
    FlowsStatus, HttpRuleSpec, PeerSpec, TierSpec, WorldStatus,
};
pub use clusterbaseline::{
    ClusterBaseline, ClusterBaselineSpec, ClusterBaselineStatus, GuardrailAction,
    GuardrailDirection, GuardrailPeerSpec, GuardrailSpec, GuardrailsSpec, NamespaceFailure,
};
pub use common::{
    BackendSpec, Condition, DnsSpec, ModeSpec, ObjectRefStatus, PortSpec, ProtocolSpec,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;

pub use cel::Cel;

/// Every CRD tierflow serves, with every CEL rule (Kubernetes 1.31 and later).
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![AppNetwork::crd(), ClusterBaseline::crd()]
}

/// Every CRD tierflow serves, with the CEL rules a server of that level accepts.
pub fn all_with(level: Cel) -> Result<Vec<CustomResourceDefinition>, serde_json::Error> {
    all()
        .into_iter()
        .map(|crd| {
            let mut v = serde_json::to_value(crd)?;
            cel::restrict(&mut v, level);
            serde_json::from_value(v)
        })
        .collect()
}

/// Why the CRDs could not be printed.
#[derive(Debug, thiserror::Error)]
pub enum CrdsError {
    /// Restricting the rules.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Printing them.
    #[error(transparent)]
    Yaml(#[from] serde_yaml::Error),
}

/// The CRDs tierflow serves, as one multi-document YAML (what `tierflow crds` prints).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    to_yaml(all())
}

/// The CRDs with the CEL rules of `level` (`tierflow crds --no-cel` is [`Cel::Off`]).
pub fn crds_yaml_with(level: Cel) -> Result<String, CrdsError> {
    Ok(to_yaml(all_with(level)?)?)
}

fn to_yaml(crds: Vec<CustomResourceDefinition>) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_crds_match_the_rust_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crds/tierflow.yaml");
        let committed = std::fs::read_to_string(path).expect("crds/tierflow.yaml");
        assert!(
            committed == super::crds_yaml().expect("yaml"),
            "crds/tierflow.yaml is out of date: run `make crds` (tierflow crds > crds/tierflow.yaml)"
        );
    }
}
