//! The custom resources, as users write them. Only `validate` reads these specs.

mod appnetwork;
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

/// Every CRD tierflow serves.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![AppNetwork::crd(), ClusterBaseline::crd()]
}

/// The CRDs tierflow serves, as one multi-document YAML (what `tierflow crds` prints).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in all() {
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
