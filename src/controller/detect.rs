//! CNI detection: which CNI runs, and which backend writes the best policy for it.
//!
//! [`decide`] is pure (unit-tested over every case); the controller feeds it the CRDs and
//! DaemonSets it watches and whether the Calico v3 API is served.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use kube::api::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::watches::{watch_kind, Managed, Triggers, WatchBackoff};
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
    // Where tierflow would write standard NetworkPolicy and the cluster serves the standard
    // cluster-wide API, ClusterBaselines become ONE ClusterNetworkPolicy (Baseline tier);
    // AppNetworks stay standard NetworkPolicy (`Backend::for_namespaces`). Calico's v3 API and
    // Cilium's CRDs win: tierflow writes those natively (Calico 3.32 serves both).
    let (backend, reason) =
        if backend == Backend::NetworkPolicy && kinds.contains(&ObjectKind::ClusterNetworkPolicy) {
            (
                Backend::ClusterNetworkPolicy,
                format!(
                    "{reason}; clusternetworkpolicies.policy.networking.k8s.io is served: \
                 ClusterBaselines are written as one ClusterNetworkPolicy, AppNetworks as \
                 standard NetworkPolicy"
                ),
            )
        } else {
            (backend, reason)
        };
    Detection {
        cni,
        backend,
        enforces,
        reason,
        kinds,
    }
}

/// How often detection is recomputed even without events (the Calico API server is found by
/// discovery, which has no watch).
const REDETECT: Duration = Duration::from_secs(30);

/// The detection task: watches CRDs and the CNI DaemonSets (metadata only), decides, and keeps a
/// watch running for every managed kind whose CRD is installed. The returned flag turns true once
/// the first decision is made and the watches it needs have synced.
pub(crate) fn task(
    client: Client,
    managed: Managed,
    triggers: Triggers,
    tx: watch::Sender<Detection>,
) -> (JoinHandle<()>, watch::Receiver<bool>) {
    let (ready_tx, ready_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        enum Input {
            Crd(Event<PartialObjectMeta<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>>),
            Ds(String, Event<PartialObjectMeta<k8s_openapi::api::apps::v1::DaemonSet>>),
            Tick,
        }
        use k8s_openapi::api::apps::v1::DaemonSet;
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let crds = watcher::watcher(
            Api::<PartialObjectMeta<CustomResourceDefinition>>::all(client.clone()),
            watcher::Config::default(),
        )
        .backoff(WatchBackoff::default())
        .filter_map(|e| async move { e.ok().map(Input::Crd) })
        .boxed();
        let mut inputs = vec![crds];
        for ns in ["kube-system", "kube-flannel"] {
            let s = watcher::watcher(
                Api::<PartialObjectMeta<DaemonSet>>::namespaced(client.clone(), ns),
                watcher::Config::default(),
            )
            .backoff(WatchBackoff::default())
            .filter_map(move |e| async move { e.ok().map(|e| Input::Ds(ns.to_string(), e)) })
            .boxed();
            inputs.push(s);
        }
        inputs.push(
            futures::stream::unfold((), |()| async {
                tokio::time::sleep(REDETECT).await;
                Some((Input::Tick, ()))
            })
            .boxed(),
        );
        let mut inputs = futures::stream::select_all(inputs);

        let mut crd_names: BTreeSet<String> = BTreeSet::new();
        let mut crd_init: BTreeSet<String> = BTreeSet::new();
        let mut daemonsets: BTreeSet<(String, String)> = BTreeSet::new();
        let mut ds_init: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        let mut listed: BTreeSet<String> = BTreeSet::new(); // which inputs finished their first list
        let mut watches: HashMap<ObjectKind, JoinHandle<()>> = HashMap::new();
        let mut current: Option<Detection> = None;

        while let Some(input) = inputs.next().await {
            match input {
                Input::Crd(ev) => match ev {
                    Event::Init => crd_init.clear(),
                    Event::InitApply(o) => {
                        if o.metadata.deletion_timestamp.is_none() {
                            crd_init.insert(o.name_any());
                        }
                    }
                    Event::InitDone => {
                        crd_names = std::mem::take(&mut crd_init);
                        listed.insert("crds".into());
                    }
                    // A CRD being deleted is going away with every object of its kind.
                    Event::Apply(o) if o.metadata.deletion_timestamp.is_some() => {
                        crd_names.remove(&o.name_any());
                    }
                    Event::Apply(o) => {
                        crd_names.insert(o.name_any());
                    }
                    Event::Delete(o) => {
                        crd_names.remove(&o.name_any());
                    }
                },
                Input::Ds(ns, ev) => match ev {
                    Event::Init => {
                        ds_init.insert(ns.clone(), BTreeSet::new());
                    }
                    Event::InitApply(o) => {
                        ds_init
                            .entry(ns.clone())
                            .or_default()
                            .insert((ns.clone(), o.name_any()));
                    }
                    Event::InitDone => {
                        daemonsets.retain(|(n, _)| n != &ns);
                        daemonsets.extend(ds_init.remove(&ns).unwrap_or_default());
                        listed.insert(ns);
                    }
                    Event::Apply(o) => {
                        daemonsets.insert((ns, o.name_any()));
                    }
                    Event::Delete(o) => {
                        daemonsets.remove(&(ns, o.name_any()));
                    }
                },
                Input::Tick => {}
            }
            if listed.len() < 3 {
                continue;
            }
            let calico_api = calico_api_resources(&client, &crd_names).await;
            let d = decide(&crd_names, &daemonsets, &calico_api);
            if current.as_ref() == Some(&d) {
                continue;
            }
            tracing::info!(cni = d.cni.as_str(), backend = d.backend.as_str(), reason = %d.reason, "CNI detection");
            // Watch every managed kind that can exist now; stop watching kinds that went away.
            let mut new_watches = Vec::new();
            for kind in ObjectKind::ALL {
                let wanted = d.kinds.contains(&kind);
                match (wanted, watches.contains_key(&kind)) {
                    (true, false) => {
                        let (task, ready) = watch_kind(&client, kind, &managed, &triggers);
                        watches.insert(kind, task);
                        new_watches.push(ready);
                    }
                    (false, true) => {
                        if let Some(t) = watches.remove(&kind) {
                            t.abort();
                        }
                        managed.forget(kind);
                    }
                    _ => {}
                }
            }
            for mut r in new_watches {
                let _ =
                    tokio::time::timeout(Duration::from_secs(30), r.wait_for(|ready| *ready)).await;
            }
            tx.send_replace(d.clone());
            current = Some(d);
            ready_tx.send_replace(true);
            triggers.everything();
        }
    });
    (task, ready_rx)
}

/// The `plural.projectcalico.org` resources served under `projectcalico.org/v3` that are not
/// CRDs (that is, by the Calico API server), from discovery.
async fn calico_api_resources(client: &Client, crds: &BTreeSet<String>) -> BTreeSet<String> {
    let Ok(req) = http::Request::get("/apis/projectcalico.org/v3").body(Vec::new()) else {
        return BTreeSet::new();
    };
    let Ok(list) = client
        .request::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList>(req)
        .await
    else {
        return BTreeSet::new();
    };
    list.resources
        .into_iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| format!("{}.projectcalico.org", r.name))
        .filter(|n| !crds.contains(n))
        .collect()
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
    fn the_cluster_network_policy_crd_is_used_where_no_native_backend_is() {
        const CNP: &str = "clusternetworkpolicies.policy.networking.k8s.io";
        let d = decide(&crds(&[CNP]), &ds(&[]), &crds(&[]));
        assert_eq!(
            (d.cni, d.backend),
            (Cni::Unknown, Backend::ClusterNetworkPolicy)
        );
        assert!(d.kinds.contains(&ObjectKind::ClusterNetworkPolicy));
        assert!(d.reason.contains("ClusterNetworkPolicy"));
        let d = decide(
            &crds(&[CNP, "networkpolicies.crd.projectcalico.org"]),
            &ds(&["calico-node"]),
            &crds(&[]),
        );
        assert_eq!(
            (d.cni, d.backend),
            (Cni::CalicoWithoutV3Api, Backend::ClusterNetworkPolicy)
        );
        // Calico 3.32 serves both: its own v3 API wins (ordered tiers, staged policies).
        let d = decide(
            &crds(&[CNP, "networkpolicies.projectcalico.org"]),
            &ds(&["calico-node"]),
            &crds(&[]),
        );
        assert_eq!((d.cni, d.backend), (Cni::Calico, Backend::Calico));
        assert!(d.kinds.contains(&ObjectKind::ClusterNetworkPolicy));
        // Cilium with its CRDs: Cilium.
        let d = decide(
            &crds(&[CNP, "ciliumnetworkpolicies.cilium.io"]),
            &ds(&["cilium"]),
            &crds(&[]),
        );
        assert_eq!(d.backend, Backend::Cilium);
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
