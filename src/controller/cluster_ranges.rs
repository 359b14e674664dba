//! The cluster's own address ranges, for `world` peers on backends that write them as "every
//! address minus the cluster" (NetworkPolicy, Calico).
//!
//! The operator's `--cluster-cidr` (repeatable) wins. Without it, the pod ranges are read from
//! the nodes (`spec.podCIDRs`, else the older single `spec.podCIDR`), which the node IPAM
//! controller (kube-controller-manager `--allocate-node-cidrs`) or the cloud provider sets. The
//! **service** range is not readable from the API (it is only a kube-apiserver flag,
//! `--service-cluster-ip-range`), so a world peer on detected ranges does not leave out
//! service ClusterIPs: give them with `--cluster-cidr` (the status names the ranges used). CNIs
//! that allocate pod addresses themselves (Calico IPAM, Cilium cluster-pool) may not use the
//! nodes' ranges at all; with them, set `--cluster-cidr` to the IP pools.

use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::core::Cidr;

/// The pod ranges the nodes carry, sorted and unique (unparsable entries are skipped).
pub fn node_pod_cidrs(nodes: &[Node]) -> Vec<Cidr> {
    let mut out: Vec<Cidr> = nodes
        .iter()
        .filter_map(|n| n.spec.as_ref())
        .flat_map(|s| {
            let many = s.pod_cidrs.clone().unwrap_or_default();
            if many.is_empty() {
                s.pod_cidr.clone().into_iter().collect()
            } else {
                many
            }
        })
        .filter_map(|c| Cidr::parse(&c).ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Reads the nodes' pod ranges (a failed read is logged and counts as none known).
pub async fn read(client: &Client) -> Vec<Cidr> {
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.list(&ListParams::default()).await {
        Ok(list) => node_pod_cidrs(&list.items),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list nodes for their pod ranges");
            Vec::new()
        }
    }
}

/// Where the ranges came from, for the status message.
pub fn source(flag: bool) -> &'static str {
    if flag {
        "--cluster-cidr"
    } else {
        "node spec.podCIDRs (the service range cannot be read from the API: add it with \
         --cluster-cidr)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pod_ranges_of_both_families_come_from_the_nodes() {
        let nodes = [
            node(serde_json::json!({"metadata": {"name": "a"},
                "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"]}})),
            node(
                serde_json::json!({"metadata": {"name": "b"}, "spec": {"podCIDR": "10.244.1.0/24"}}),
            ),
            node(
                serde_json::json!({"metadata": {"name": "c"}, "spec": {"podCIDRs": ["10.244.0.0/24", "bogus"]}}),
            ),
            node(serde_json::json!({"metadata": {"name": "d"}})),
        ];
        let got: Vec<String> = node_pod_cidrs(&nodes)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["10.244.0.0/24", "10.244.1.0/24", "fd00:10:244::/64"]);
        assert!(node_pod_cidrs(&[]).is_empty());
    }
}
