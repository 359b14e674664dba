//! CNI detection: which CNI runs, and which backend writes the best policy for it.
//!
//! [`decide`] is pure (unit-tested over every case); the controller feeds it the CRDs and
//! DaemonSets it watches and whether the Calico v3 API is served.

use std::collections::BTreeSet;

use crate::model::Backend;
use crate::render::ObjectKind;

/// The CNI tierflow believes runs the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cni {
    /// Cilium.
    Cilium,
    /// Calico (or Canal) with the `projectcalico.org/v3` API.
    Calico,
    /// Calico with only its internal `crd.projectcalico.org/v1` resources.
    CalicoWithoutV3Api,
    /// Flannel alone: enforces nothing.
    Flannel,
    /// Weave Net.
    Weave,
    /// Nothing recognised.
    Unknown,
}

impl Cni {
    /// The name shown in status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Cni::Cilium => "Cilium",
            Cni::Calico => "Calico",
            Cni::CalicoWithoutV3Api => "Calico",
            Cni::Flannel => "Flannel",
            Cni::Weave => "Weave",
            Cni::Unknown => "Unknown",
        }
    }
}

/// What detection concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The CNI.
    pub cni: Cni,
    /// The backend `Auto` resolves to.
    pub backend: Backend,
    /// Whether the CNI enforces policy at all.
    pub enforces: bool,
    /// Why (for status messages).
    pub reason: String,
    /// The kinds tierflow can write here (their CRDs are installed).
    pub kinds: BTreeSet<ObjectKind>,
}

impl Default for Detection {
    fn default() -> Self {
        decide(&BTreeSet::new(), &BTreeSet::new(), &BTreeSet::new())
    }
}

/// Decides from the CRD names present, the `(namespace, name)` of DaemonSets in kube-system and
/// kube-flannel, and the `plural.projectcalico.org` resources an aggregated API server (the
/// Calico API server) serves.
pub fn decide(
    crds: &BTreeSet<String>,
    daemonsets: &BTreeSet<(String, String)>,
    calico_api: &BTreeSet<String>,
) -> Detection {
    let ds = |name: &str| daemonsets.iter().any(|(_, n)| n == name);
    let kinds: BTreeSet<ObjectKind> = ObjectKind::ALL
        .into_iter()
        .filter(|k| match k.crd_name() {
            None => true,
            Some(crd) => crds.contains(&crd) || calico_api.contains(&crd),
        })
        .collect();
    let calico_v3_api = calico_api.contains("networkpolicies.projectcalico.org");
    let cilium_crds = kinds.contains(&ObjectKind::CiliumNetworkPolicy);
    let calico_v3 = kinds.contains(&ObjectKind::CalicoNetworkPolicy);
    let calico_v1 = crds.contains("networkpolicies.crd.projectcalico.org");
    let calico_ds = ds("calico-node") || ds("canal");
    let flannel_ds = ds("kube-flannel-ds") || ds("kube-flannel");

    let (cni, backend, enforces, reason) = if cilium_crds {
        (
            Cni::Cilium,
            Backend::Cilium,
            true,
            "ciliumnetworkpolicies.cilium.io is served".to_string(),
        )
    } else if ds("cilium") {
        (
            Cni::Cilium,
            Backend::NetworkPolicy,
            true,
            "the cilium DaemonSet runs but its CRDs are not installed; Cilium enforces standard NetworkPolicy".to_string(),
        )
    } else if calico_v3 {
        let how = if calico_v3_api {
            "by the Calico API server"
        } else {
            "by Calico's native v3 CRDs"
        };
        (
            Cni::Calico,
            Backend::Calico,
            true,
            format!("projectcalico.org/v3 is served {how}"),
        )
    } else if calico_v1 || calico_ds {
        (
            Cni::CalicoWithoutV3Api,
            Backend::NetworkPolicy,
            true,
            "Calico runs without its projectcalico.org/v3 API (only crd.projectcalico.org/v1, which Calico does not support writing directly); using standard NetworkPolicy, which Calico enforces".to_string(),
        )
    } else if flannel_ds {
        (
            Cni::Flannel,
            Backend::NetworkPolicy,
            false,
            "Flannel alone does not enforce NetworkPolicy: the policies are written but NOTHING is enforced; install Calico (Canal) or Cilium".to_string(),
        )
    } else if ds("weave-net") {
        (
            Cni::Weave,
            Backend::NetworkPolicy,
            true,
            "Weave Net enforces standard NetworkPolicy".to_string(),
        )
    } else {
        (
            Cni::Unknown,
            Backend::NetworkPolicy,
            true,
            "no known CNI detected; using standard NetworkPolicy".to_string(),
        )
    };
    Detection {
        cni,
        backend,
        enforces,
        reason,
        kinds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crds(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn ds(names: &[&str]) -> BTreeSet<(String, String)> {
        names
            .iter()
            .map(|n| ("kube-system".to_string(), n.to_string()))
            .collect()
    }

    #[test]
    fn nothing_detected_means_standard_network_policy() {
        let d = decide(&crds(&[]), &ds(&[]), &crds(&[]));
        assert_eq!(
            (d.cni, d.backend, d.enforces),
            (Cni::Unknown, Backend::NetworkPolicy, true)
        );
        assert_eq!(d.kinds, BTreeSet::from([ObjectKind::NetworkPolicy]));
    }

    #[test]
    fn cilium_crds_win_over_calico() {
        let d = decide(
            &crds(&[
                "ciliumnetworkpolicies.cilium.io",
                "ciliumclusterwidenetworkpolicies.cilium.io",
                "networkpolicies.projectcalico.org",
            ]),
            &ds(&["calico-node"]),
            &crds(&[]),
        );
        assert_eq!((d.cni, d.backend), (Cni::Cilium, Backend::Cilium));
        assert!(d
            .kinds
            .contains(&ObjectKind::CiliumClusterwideNetworkPolicy));
    }

    #[test]
    fn calico_v3_crds_or_api_server_mean_calico() {
        let d = decide(
            &crds(&["networkpolicies.projectcalico.org"]),
            &ds(&[]),
            &crds(&[]),
        );
        assert_eq!((d.cni, d.backend), (Cni::Calico, Backend::Calico));
        // only the kinds whose CRDs exist are watched
        assert!(!d.kinds.contains(&ObjectKind::CalicoGlobalNetworkPolicy));
        let api = crds(&[
            "networkpolicies.projectcalico.org",
            "stagedglobalnetworkpolicies.projectcalico.org",
        ]);
        let d = decide(&crds(&[]), &ds(&["calico-node"]), &api);
        assert_eq!((d.cni, d.backend), (Cni::Calico, Backend::Calico));
        assert!(d.reason.contains("API server"));
        assert!(d
            .kinds
            .contains(&ObjectKind::CalicoStagedGlobalNetworkPolicy));
    }

    #[test]
    fn calico_with_only_v1_crds_uses_standard_policy_and_says_why() {
        let d = decide(
            &crds(&["networkpolicies.crd.projectcalico.org"]),
            &ds(&[]),
            &crds(&[]),
        );
        assert_eq!(
            (d.cni, d.backend),
            (Cni::CalicoWithoutV3Api, Backend::NetworkPolicy)
        );
        assert!(d.reason.contains("crd.projectcalico.org/v1"));
    }

    #[test]
    fn canal_counts_as_calico() {
        let d = decide(&crds(&[]), &ds(&["canal", "kube-flannel-ds"]), &crds(&[]));
        assert_eq!(d.cni, Cni::CalicoWithoutV3Api);
        assert!(d.enforces);
    }

    #[test]
    fn flannel_alone_enforces_nothing() {
        let d = decide(&crds(&[]), &ds(&["kube-flannel-ds"]), &crds(&[]));
        assert_eq!(
            (d.cni, d.backend, d.enforces),
            (Cni::Flannel, Backend::NetworkPolicy, false)
        );
        assert!(d.reason.contains("does not enforce"));
    }

    #[test]
    fn weave_and_a_cilium_daemonset_without_crds_use_standard_policy() {
        assert_eq!(
            decide(&crds(&[]), &ds(&["weave-net"]), &crds(&[])).cni,
            Cni::Weave
        );
        let d = decide(&crds(&[]), &ds(&["cilium"]), &crds(&[]));
        assert_eq!((d.cni, d.backend), (Cni::Cilium, Backend::NetworkPolicy));
    }
}
