//! Reconciles what a namespace shares: the merged `tierflow-baseline`, and pruning.
//!
//! Runs after the AppNetwork controller has applied a generation's tier allows and recorded them
//! in status, so the order of writes is allows → baseline → prune.

use std::sync::Arc;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use super::{appnetwork, clusterbaseline, retry_after, Context};
use crate::apply;
use crate::core::names::BASELINE_NAME;
use crate::crd::{AppNetwork, NamespaceFailure};
use crate::error::{Error, Result};
use crate::model::{Backend, BaselineWish, Coverage, NamespaceBaseline};
use crate::render::{self, ObjectKind, Owner, ROLE_BASELINE, ROLE_LABEL, ROLE_TIER};
use crate::validate;

/// Reconciles one namespace.
pub async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action> {
    let name = ns.name_any();
    if ns.meta().deletion_timestamp.is_some() {
        // Terminating: everything in it is going away; writes would be refused.
        forget_failure(&ctx, &name);
        return Ok(Action::await_change());
    }
    match sync(&ns, &ctx).await {
        Ok(()) => {
            forget_failure(&ctx, &name);
            Ok(Action::await_change())
        }
        Err(e) if terminating(&e) => {
            // Deleted or being deleted since the cache saw it: not an error, nothing to retry.
            forget_failure(&ctx, &name);
            Ok(Action::await_change())
        }
        Err(e) => {
            let failure = NamespaceFailure {
                namespace: name.clone(),
                reason: e.reason().to_string(),
                message: e.to_string(),
            };
            let changed = ctx
                .failures
                .lock()
                .map(|mut f| f.insert(name, failure.clone()) != Some(failure))
                .unwrap_or(false);
            if changed {
                ctx.trigger_cluster_baselines();
            }
            Err(e)
        }
    }
}

fn forget_failure(ctx: &Context, name: &str) {
    let removed = ctx
        .failures
        .lock()
        .map(|mut f| f.remove(name).is_some())
        .unwrap_or(false);
    if removed {
        ctx.trigger_cluster_baselines();
    }
}

/// Whether an error says the namespace is gone or terminating.
pub(crate) fn terminating(e: &Error) -> bool {
    match e {
        Error::Kube(kube::Error::Api(s)) => {
            (s.code == 403 && s.message.contains("being terminated"))
                || (s.code == 404 && s.message.contains("namespaces"))
        }
        _ => false,
    }
}

async fn sync(ns: &Namespace, ctx: &Context) -> Result<()> {
    let name = ns.name_any();
    let apps: Vec<Arc<AppNetwork>> = ctx
        .appnets
        .state()
        .into_iter()
        .filter(|a| {
            a.namespace().as_deref() == Some(name.as_str()) && a.meta().deletion_timestamp.is_none()
        })
        .collect();

    // 1. The baselines: every input's last valid wish, grouped by the backend (and mode) its
    //    objects are in, merged per group. ClusterBaselines on Calico and Cilium have their one
    //    cluster-wide object instead and only count here while they are on the standard backend.
    let mut groups: BTreeMap<(Backend, bool), (Vec<BaselineWish>, Vec<Owner>)> = BTreeMap::new();
    for cb in ctx.cluster_baselines.state() {
        let on_standard = cb.status.as_ref().and_then(|s| s.backend.as_deref())
            == Some(Backend::NetworkPolicy.as_str());
        let Some(model) = clusterbaseline::enforced(&cb) else {
            continue;
        };
        if on_standard
            && model.coverage(&name, ns.labels(), &ctx.operator_namespace) == Coverage::Covered
        {
            let g = groups.entry((Backend::NetworkPolicy, false)).or_default();
            g.0.push(model.wish);
            g.1.push(clusterbaseline::owner(&cb)?);
        }
    }
    for a in &apps {
        let Some(st) = a.status.as_ref() else {
            continue;
        };
        let Some(b) = st.baseline.as_ref() else {
            continue;
        };
        match validate::applied_baseline(b) {
            Ok(w) => {
                let backend = st
                    .backend
                    .as_deref()
                    .and_then(Backend::parse)
                    .unwrap_or(Backend::NetworkPolicy);
                let g = groups.entry((backend, st.audit)).or_default();
                g.0.push(w);
                g.1.push(appnetwork::owner(a)?);
            }
            Err(e) => {
                tracing::warn!(namespace = %name, app = %a.name_any(), error = %e, "ignoring unreadable status.baseline")
            }
        }
    }
    let env = ctx.env();
    let mut wanted_baselines = BTreeSet::new();
    let mut keep_all_baselines = false;
    for ((backend, audit), (wishes, mut owners)) in groups {
        owners.sort();
        let merged = NamespaceBaseline::merge(&wishes);
        if let Some(obj) = render::namespace_baseline(&name, &merged, backend, audit, &owners, &env)
        {
            wanted_baselines.insert(obj.kind);
            if !ctx.served(obj.kind) {
                // Its API is gone or going: keep every baseline as it is (fail closed) until the
                // inputs move to a backend that is served.
                tracing::debug!(namespace = %name, kind = obj.kind.kind(), "baseline kind not served");
                keep_all_baselines = true;
                continue;
            }
            let live = ctx.managed.get(obj.kind, Some(&name), BASELINE_NAME);
            apply::apply(&ctx.client, &obj, live.as_deref()).await?;
        }
    }

    // 2. Prune: baselines of kinds no input wants any more (only after the wanted ones are in
    //    place), then per-tier objects no AppNetwork lists any more.
    for kind in ctx.managed.kinds().into_iter().filter(|k| k.namespaced()) {
        if !wanted_baselines.contains(&kind) && !keep_all_baselines {
            if let Some(live) = ctx.managed.get(kind, Some(&name), BASELINE_NAME) {
                if live.labels().get(ROLE_LABEL).map(String::as_str) == Some(ROLE_BASELINE) {
                    tracing::info!(namespace = %name, kind = kind.kind(), "pruning baseline no longer wanted");
                    apply::delete(&ctx.client, kind, &live).await?;
                }
            }
        }
        for obj in ctx.managed.list(kind) {
            if obj.namespace().as_deref() != Some(name.as_str())
                || obj.labels().get(ROLE_LABEL).map(String::as_str) != Some(ROLE_TIER)
            {
                continue;
            }
            if !wanted(ctx, kind, &obj).await? {
                tracing::info!(namespace = %name, kind = kind.kind(), name = %obj.name_any(), "pruning object no longer wanted");
                apply::delete(&ctx.client, kind, &obj).await?;
            }
        }
    }
    Ok(())
}

/// Whether a managed per-tier object is still wanted by its AppNetwork.
async fn wanted(ctx: &Context, kind: ObjectKind, obj: &DynamicObject) -> Result<bool> {
    let Some(owner_ref) = obj
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "AppNetwork")
    else {
        return Ok(true); // not something we can judge; leave it
    };
    let ns = obj.namespace().unwrap_or_default();
    let cached = ctx
        .appnets
        .get(&ObjectRef::new(&owner_ref.name).within(&ns));
    match cached {
        Some(app) if app.uid().as_deref() == Some(owner_ref.uid.as_str()) => {
            let Some(status) = &app.status else {
                return Ok(true);
            };
            // Only judge from a status that describes the current spec; otherwise the
            // AppNetwork controller has not caught up yet and may be creating this very object.
            if status.observed_generation != app.meta().generation {
                return Ok(true);
            }
            let name = obj.name_any();
            Ok(status.policies.iter().any(|r| {
                r.api_version == kind.api_version() && r.kind == kind.kind() && r.name == name
            }))
        }
        _ => {
            // Not in the cache (or another object of that name): confirm with the API server
            // before pruning, so a cache that lags never deletes a live app's policy.
            let api: Api<AppNetwork> = Api::namespaced(ctx.client.clone(), &ns);
            match api.get_opt(&owner_ref.name).await? {
                Some(app) if app.uid().as_deref() == Some(owner_ref.uid.as_str()) => Ok(true),
                _ => Ok(false),
            }
        }
    }
}

/// Error policy: retry soon.
pub fn error_policy(_ns: Arc<Namespace>, err: &Error, _ctx: Arc<Context>) -> Action {
    retry_after(err)
}
