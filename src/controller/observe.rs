//! Observation: the planner's inputs read from the caches, and what tierflow's own objects
//! recorded ([`plan::Observed`]). Status is never read here.

use kube::{Resource, ResourceExt};

use super::context::Context;
use crate::plan::{self, Record, Records};
use crate::render::{Env, ObjectKind};
use crate::vocab::{BASELINE_NAME, CLUSTER_BASELINE_LABEL, ROLE_CLUSTER_BASELINE, ROLE_LABEL};

impl Context {
    /// The planner's view of the cluster: the kinds served, what `Auto` means, the API server's
    /// endpoints and the operator's namespace.
    pub fn cluster(&self) -> plan::Cluster {
        let d = self.detected();
        let flag = !self.cluster_cidrs.is_empty();
        let cluster_cidrs = if flag {
            self.cluster_cidrs.clone()
        } else {
            self.server
                .read()
                .map(|f| f.node_pod_cidrs.clone())
                .unwrap_or_default()
        };
        let env = Env {
            api_server: self
                .api_server
                .read()
                .map(|v| v.clone())
                .unwrap_or_default(),
            cluster_cidrs: Vec::new(),
        };
        let cilium_features = self
            .server
            .read()
            .ok()
            .and_then(|f| f.cilium_features.clone());
        plan::Cluster {
            served: Some(d.kinds.clone()),
            auto_backend: Some(self.default_backend.unwrap_or(d.backend)),
            forced_backend: None,
            env,
            operator_namespace: self.operator_namespace.clone(),
            no_port_ranges: self
                .server
                .read()
                .map(|f| f.no_port_ranges.clone())
                .unwrap_or_default(),
            cluster_cidrs_source: if cluster_cidrs.is_empty() {
                String::new()
            } else {
                super::cluster_ranges::source(flag).to_string()
            },
            cluster_cidrs,
            cilium_features: cilium_features.clone(),
            cilium_identity: cilium_features.map(|f| f.identity).unwrap_or_default(),
        }
    }

    /// The AppNetworks of namespace `ns` that are not being deleted.
    pub fn app_inputs(&self, ns: &str) -> Vec<plan::AppInput> {
        self.apps_in(ns)
            .into_iter()
            .map(|a| plan::AppInput {
                name: a.name_any(),
                namespace: ns.to_string(),
                uid: a.uid(),
                generation: a.meta().generation,
                spec: a.spec.clone(),
            })
            .collect()
    }

    /// Every ClusterBaseline that is not being deleted.
    pub fn cluster_baseline_inputs(&self) -> Vec<plan::ClusterBaselineInput> {
        let mut out: Vec<plan::ClusterBaselineInput> = self
            .cluster_baselines
            .state()
            .into_iter()
            .filter(|c| c.meta().deletion_timestamp.is_none())
            .map(|c| plan::ClusterBaselineInput {
                name: c.name_any(),
                uid: c.uid(),
                generation: c.meta().generation,
                spec: c.spec.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The plans of every ClusterBaseline, from the caches.
    pub fn plan_cluster_baselines(&self) -> Vec<plan::ClusterBaselinePlan> {
        plan::cluster_baselines(
            &self.cluster_baseline_inputs(),
            &self.cluster(),
            &Observation(self),
        )
    }
}

/// What tierflow's own objects say, read from the caches.
pub struct Observation<'a>(pub &'a Context);

impl plan::Observed for Observation<'_> {
    fn records(&self, namespace: &str, kind: ObjectKind) -> Option<Records> {
        let obj = self.0.managed.get(kind, Some(namespace), BASELINE_NAME)?;
        Some(plan::records_of(&obj.annotations))
    }

    fn cluster_baseline_record(&self, name: &str) -> Option<(ObjectKind, Record)> {
        let key = plan::cluster_baseline_key(name);
        let label = crate::core::names::label_value(name);
        let mut best: Option<(ObjectKind, Record)> = None;
        let mut consider = |kind: ObjectKind, record: Option<&Record>| {
            if let Some(r) = record.filter(|r| r.spec.is_some()) {
                if best
                    .as_ref()
                    .is_none_or(|(_, b)| r.generation > b.generation)
                {
                    best = Some((kind, r.clone()));
                }
            }
        };
        for kind in self.0.managed.kinds() {
            for obj in self.0.managed.list(kind) {
                let labels = &obj.labels;
                let cluster_object = !kind.namespaced()
                    && labels.get(ROLE_LABEL).map(String::as_str) == Some(ROLE_CLUSTER_BASELINE)
                    && labels.get(CLUSTER_BASELINE_LABEL) == Some(&label);
                let baseline = kind.namespaced() && obj.name == BASELINE_NAME;
                if cluster_object || baseline {
                    let records = plan::records_of(&obj.annotations);
                    consider(kind, records.get(&key));
                }
            }
        }
        best
    }

    fn cluster_object_exists(&self, kind: ObjectKind, name: &str) -> bool {
        self.0.managed.get(kind, None, name).is_some()
    }
}
