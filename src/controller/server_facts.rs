//! Facts about the served APIs that decide what may be written: whether a port range's end
//! survives a write, and the nodes' pod ranges (`super::cluster_ranges`). Read at startup and every [`REFRESH`] (a CRD may be installed or upgraded
//! later); a change re-plans every namespace.
//!
//! - **NetworkPolicy `endPort`** (standard backend): added in Kubernetes 1.21 behind the alpha
//!   feature gate `NetworkPolicyEndPort` (off by default), beta and on by default in 1.22, GA
//!   in 1.25 (KEP-2079, kubernetes/enhancements `keps/sig-network/2079-network-policy-port-range`;
//!   the feature-gate table of the Kubernetes documentation). A server without the gate drops
//!   the field on write, so a server before 1.22 counts as dropping it.
//! - **CiliumNetworkPolicy `toPorts[].ports[].endPort`**: added in Cilium 1.16 (cilium/cilium
//!   PR #32389, fixing issue #16622). An older CRD's structural schema prunes the unknown
//!   field, so the installed CRD's schema is read: no `endPort` in it means ranges are dropped.
//!   (Before 1.16 the Cilium agent also ignores NetworkPolicy `endPort`, cilium/cilium issue
//!   #28684 — a CNI limit tierflow cannot observe from the API; see the README.)
//! - Calico writes ranges as `"first:last"` strings in `ports`, which every `projectcalico.org/v3`
//!   version accepts: nothing to detect.
//!
//! Where a backend drops ranges, the planner holds an AppNetwork that uses one
//! (`Ready=False`, reason `PortRangeUnsupported`) instead of writing a narrower policy.
//!
//! - **Cilium agent features** (`kube-system/cilium-config`: `enable-sctp`, `enable-l7-proxy`,
//!   `enable-icmp-rules`, and `labels`, the identity-relevant label patterns that decide the
//!   `LabelNotInIdentity` hold; [`crate::plan::features`]): read with the rest, so a change is seen
//!   within [`REFRESH`]. No ConfigMap (or no permission to read it): unknown, nothing said.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use tokio::task::JoinHandle;

use super::watches::Triggers;
use crate::model::Backend;
use crate::plan::features::{self, CiliumFeatures};

/// How often the facts are read again.
pub const REFRESH: Duration = Duration::from_secs(10);

/// What the served APIs keep, as far as tierflow needs to know.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerFacts {
    /// The backends that would drop a port range's end, with why (for the status message):
    /// [`crate::plan::Cluster::no_port_ranges`].
    pub no_port_ranges: BTreeMap<Backend, String>,
    /// The pod ranges the nodes carry (`super::cluster_ranges`), for `world` peers when the
    /// operator has no `--cluster-cidr`.
    pub node_pod_cidrs: Vec<crate::core::Cidr>,
    /// The Cilium agent's features, from `cilium-config` ([`crate::plan::Cluster::cilium_features`]).
    pub cilium_features: Option<CiliumFeatures>,
}

/// Reads `kube-system/cilium-config` (`None` when absent or unreadable, logged).
pub async fn cilium_features(client: &Client) -> Option<CiliumFeatures> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), features::CILIUM_CONFIG_NAMESPACE);
    match api.get_opt(features::CILIUM_CONFIG).await {
        Ok(cm) => cm.map(|cm| {
            let f = CiliumFeatures::from_config(&cm.data.unwrap_or_default());
            if let Some(e) = &f.identity_error {
                tracing::warn!(error = %e, "cilium-config labels: using Cilium's default identity label filter");
            }
            f
        }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the cilium-config ConfigMap");
            None
        }
    }
}

/// The first minor version of Kubernetes 1.x that keeps `endPort` by default.
const END_PORT_MINOR: u32 = 22;

/// Whether a server reporting `major`/`minor` (as in `/version`; providers append `+`, as in
/// `"20+"`) keeps NetworkPolicy `endPort`. An unreadable version counts as current.
pub fn keeps_end_port(major: &str, minor: &str) -> bool {
    let num = |s: &str| -> Option<u32> {
        s.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()
    };
    match (num(major), num(minor)) {
        (Some(1), Some(m)) => m >= END_PORT_MINOR,
        (Some(major), _) => major > 1,
        _ => true,
    }
}

/// Whether a CiliumNetworkPolicy CRD's schema (any version) knows `endPort`.
pub fn cilium_schema_has_end_port(crd: &CustomResourceDefinition) -> bool {
    crd.spec.versions.iter().any(|v| {
        v.schema
            .as_ref()
            .and_then(|s| serde_json::to_string(s).ok())
            .is_some_and(|s| s.contains("\"endPort\""))
    })
}

/// Reads the facts. A read that fails counts as "keeps ranges" for that backend (logged): the
/// standard backend's version is read before anything runs, and a missing Cilium CRD holds a
/// Cilium AppNetwork as `BackendUnavailable` anyway.
pub async fn read(client: &Client) -> ServerFacts {
    let mut no = BTreeMap::new();
    match client.apiserver_version().await {
        Ok(info) if !keeps_end_port(&info.major, &info.minor) => {
            no.insert(
                Backend::NetworkPolicy,
                format!(
                    "this API server ({}) drops NetworkPolicy endPort (Kubernetes keeps it from \
                     1.22 on)",
                    info.git_version
                ),
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the API server version"),
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.get_opt("ciliumnetworkpolicies.cilium.io").await {
        Ok(Some(crd)) if !cilium_schema_has_end_port(&crd) => {
            no.insert(
                Backend::Cilium,
                "the installed CiliumNetworkPolicy CRD has no endPort (Cilium 1.16 and later \
                 have it)"
                    .to_string(),
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the CiliumNetworkPolicy CRD"),
    }
    ServerFacts {
        no_port_ranges: no,
        node_pod_cidrs: super::cluster_ranges::read(client).await,
        cilium_features: cilium_features(client).await,
    }
}

/// Reads the facts now, then keeps them current; a change re-plans every namespace.
pub async fn task(
    client: Client,
    triggers: Triggers,
) -> (Arc<RwLock<ServerFacts>>, JoinHandle<()>) {
    let facts = Arc::new(RwLock::new(read(&client).await));
    let shared = facts.clone();
    let handle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(REFRESH).await;
            let now = read(&client).await;
            let changed = shared
                .write()
                .map(|mut f| std::mem::replace(&mut *f, now.clone()) != now)
                .unwrap_or(false);
            if changed {
                tracing::info!(facts = ?now, "server facts changed");
                triggers.all_namespaces();
            }
        }
    });
    (facts, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_port_is_kept_from_kubernetes_1_22_on() {
        assert!(!keeps_end_port("1", "20"));
        assert!(!keeps_end_port("1", "21+"));
        assert!(keeps_end_port("1", "22"));
        assert!(keeps_end_port("1", "33+"));
        assert!(keeps_end_port("2", "0"));
        assert!(keeps_end_port("", ""));
    }

    #[test]
    fn a_cilium_crd_without_end_port_in_its_schema_drops_ranges() {
        let crd = |schema: serde_json::Value| -> CustomResourceDefinition {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "ciliumnetworkpolicies.cilium.io"},
                "spec": {"group": "cilium.io", "scope": "Namespaced",
                         "names": {"plural": "ciliumnetworkpolicies", "kind": "CiliumNetworkPolicy"},
                         "versions": [{"name": "v2", "served": true, "storage": true,
                                       "schema": {"openAPIV3Schema": schema}}]}
            }))
            .unwrap()
        };
        let port =
            serde_json::json!({"type": "object", "properties": {"port": {"type": "string"}}});
        let ranged = serde_json::json!({"type": "object", "properties": {"port": {"type": "string"}, "endPort": {"type": "integer"}}});
        assert!(!cilium_schema_has_end_port(&crd(port)));
        assert!(cilium_schema_has_end_port(&crd(ranged)));
    }
}
