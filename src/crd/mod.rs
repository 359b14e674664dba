//! The custom resources, as users write them. Only `validate` reads these specs.

mod appnetwork;
mod common;

pub use appnetwork::{
    AppNetwork, AppNetworkSpec, AppNetworkStatus, AppliedBaseline, BaselineSpec, FlowSpec,
    PeerSpec, TierSpec,
};
pub use common::{Condition, DnsSpec, ObjectRefStatus, PortSpec, ProtocolSpec};

use kube::CustomResourceExt;

/// The CRDs tierflow serves, as one multi-document YAML (what `tierflow crds` prints).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in [AppNetwork::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
