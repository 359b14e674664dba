//! The context of every reconcile: the client, the caches, and the operator's settings.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};
use tokio::sync::watch;

use super::detect::Detection;
use super::memory::Memory;
use super::retry::Retries;
use super::server_facts::ServerFacts;
use super::watches::{object_key, Apps, Managed, NsIndex, Triggers, Written};
use crate::apply::{self, Applied, Owned};
use crate::crd::{AppNetwork, ClusterBaseline, NamespaceFailure};
use crate::error::Result;
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::model::Backend;
use crate::render::{Env, Object, ObjectKind};

/// Everything a reconcile needs: the client, the caches, and what this process remembers of
/// its own work (never needed for correctness: a restart without it reaches the same objects).
#[derive(Clone)]
pub struct Context {
    /// The API client (every write goes through [`Context::apply`] and [`Context::delete`]).
    pub client: Client,
    /// The thread of the CPU-heavy work (verification, the check across namespaces).
    pub cpu: super::cpu::Cpu,
    /// Every AppNetwork of the cluster.
    pub appnets: Apps,
    /// The users' own NetworkPolicies' names by namespace.
    pub user_policy_index: NsIndex,
    /// Every object tierflow manages, by kind.
    pub managed: Managed,
    /// Every Namespace.
    pub namespaces: Store<Namespace>,
    /// NetworkPolicies tierflow did not write (the users' own), to warn when they undercut it.
    pub user_policies: Store<NetworkPolicy>,
    /// Every ClusterBaseline.
    pub cluster_baselines: Store<ClusterBaseline>,
    /// Publishes Kubernetes events.
    pub recorder: Recorder,
    /// The namespace the operator runs in (never covered by a ClusterBaseline unless included).
    pub operator_namespace: String,
    /// The backend `Auto` means when set (`--backend`); detection decides otherwise.
    pub default_backend: Option<Backend>,
    /// The cluster's pod and service ranges (`--cluster-cidr`); empty: the nodes' pod ranges.
    pub cluster_cidrs: Vec<crate::core::Cidr>,
    /// What CNI detection concluded (kept current).
    pub detection: watch::Receiver<Detection>,
    /// The API server's endpoints (kept current).
    pub api_server: Arc<RwLock<Vec<(IpAddr, u16)>>>,
    /// Namespaces whose last reconcile failed, with why (for ClusterBaseline status).
    pub failures: Arc<Mutex<BTreeMap<String, NamespaceFailure>>>,
    /// Routes work to the controllers.
    pub triggers: Triggers,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// What this process remembers of its own work.
    pub memory: Memory,
    /// Per-object retry delays after errors.
    pub retries: Retries,
    /// What the served APIs keep (kept current by `server_facts::task`).
    pub server: Arc<RwLock<ServerFacts>>,
}

impl Context {
    /// The current detection.
    pub fn detected(&self) -> Detection {
        self.detection.borrow().clone()
    }

    /// Cluster facts for renderers.
    pub fn env(&self) -> Env {
        Env {
            api_server: self
                .api_server
                .read()
                .map(|v| v.clone())
                .unwrap_or_default(),
            cluster_cidrs: self.cluster().cluster_cidrs,
        }
    }

    /// The AppNetworks of `ns` that are not being deleted.
    pub fn apps_in(&self, ns: &str) -> Vec<Arc<AppNetwork>> {
        self.appnets
            .in_namespace(ns)
            .into_iter()
            .filter(|a| a.meta().deletion_timestamp.is_none())
            .collect()
    }

    /// The users' own NetworkPolicies in `ns`.
    pub fn user_policies_in(&self, ns: &str) -> Vec<Arc<NetworkPolicy>> {
        self.user_policy_index
            .names(ns)
            .into_iter()
            .filter_map(|name| self.user_policies.get(&ObjectRef::new(&name).within(ns)))
            .collect()
    }

    /// Applies `object` through the one write path, naming the object in any error.
    ///
    /// Skips the request when the cache has not caught up with this process's own last write of
    /// exactly this body (the cache lags the API server by milliseconds; without this, a second
    /// reconcile would write the same object again). A write of a body this process wrote before
    /// means someone changed or deleted the object since: it is counted as a drift correction.
    pub async fn apply(&self, object: &Object) -> Result<Applied> {
        let live = self
            .managed
            .get(object.kind(), object.namespace(), object.name());
        let key = object_key(object.kind(), object.namespace(), object.name());
        let digest = object.digest();
        let previous = self.managed.written(&key);
        if let Some(w) = previous.filter(|w| w.digest == digest && !w.gone) {
            let cached = live.as_ref().and_then(|l| l.revision());
            if cached.is_none_or(|rv| rv < w.resource_version) {
                return Ok(Applied::Unchanged);
            }
        }
        let (outcome, version) = apply::apply(&self.client, object, live.as_deref())
            .await
            .map_err(|e| {
                e.at(
                    "apply",
                    &describe(object.kind(), object.namespace(), object.name()),
                )
            })?;
        if let Some(rv) = version.and_then(|v| v.parse::<u64>().ok()) {
            self.managed.record(
                key,
                Written {
                    resource_version: rv,
                    digest,
                    gone: false,
                },
            );
            if previous.is_some_and(|w| w.digest == digest) {
                self.metrics
                    .drift_corrections
                    .with_label_values(&[object.kind().kind()])
                    .inc();
            }
        }
        Ok(outcome)
    }

    /// Deletes one of tierflow's objects (UID-guarded), naming it in any error.
    pub async fn delete(&self, obj: &Owned) -> Result<bool> {
        self.managed
            .forget_writes(&object_key(obj.kind, obj.namespace.as_deref(), &obj.name));
        apply::delete(&self.client, obj).await.map_err(|e| {
            e.at(
                "prune",
                &describe(obj.kind, obj.namespace.as_deref(), &obj.name),
            )
        })
    }
}

fn describe(kind: ObjectKind, ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(ns) => format!("{} {} {ns}/{name}", kind.api_version(), kind.kind()),
        None => format!("{} {} {name}", kind.api_version(), kind.kind()),
    }
}

/// Settings of the operator.
#[derive(Clone)]
pub struct Options {
    /// The namespace the operator runs in.
    pub operator_namespace: String,
    /// The backend `Auto` means (`None`: detect the CNI).
    pub default_backend: Option<Backend>,
    /// The cluster's pod and service ranges (`--cluster-cidr`; empty: read the nodes').
    pub cluster_cidrs: Vec<crate::core::Cidr>,
    /// Where reconciles are counted (a fresh registry when `None`).
    pub metrics: Option<Arc<Metrics>>,
    /// With leader election: the controllers (the only writers) start once this replica leads.
    /// The caches are filled either way, so a standby takes over warm.
    pub leadership: Option<watch::Receiver<Leadership>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            operator_namespace: std::env::var("POD_NAMESPACE")
                .unwrap_or_else(|_| crate::vocab::DEFAULT_OPERATOR_NAMESPACE.into()),
            default_backend: None,
            cluster_cidrs: Vec::new(),
            metrics: None,
            leadership: None,
        }
    }
}
