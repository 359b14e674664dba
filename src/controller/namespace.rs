//! Reconciles what a namespace shares: the merged `tierflow-baseline`, and pruning.
//!
//! Runs after the AppNetwork controller has applied a generation's tier allows and recorded them
//! in status, so the order of writes is allows → baseline → prune.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use super::{appnetwork, clusterbaseline, retry_after, Context};
use crate::apply;
use crate::core::names::BASELINE_NAME;
use crate::crd::{AppNetwork, NamespaceFailure};
use crate::error::{Error, Result};
use crate::model::{Coverage, NamespaceBaseline};
use crate::render::{self, ROLE_LABEL, ROLE_TIER};
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
fn terminating(e: &Error) -> bool {
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
    let api: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), &name);
    let apps: Vec<Arc<AppNetwork>> = ctx
        .appnets
        .state()
        .into_iter()
        .filter(|a| {
            a.namespace().as_deref() == Some(name.as_str()) && a.meta().deletion_timestamp.is_none()
        })
        .collect();

    // 1. The baseline, merged from every input's last valid wish: the AppNetworks of the
    //    namespace and the ClusterBaselines that cover it.
    let mut wishes = Vec::new();
    let mut owners = Vec::new();
    for cb in ctx.cluster_baselines.state() {
        let Some(model) = clusterbaseline::enforced(&cb) else {
            continue;
        };
        if model.coverage(&name, ns.labels(), &ctx.operator_namespace) == Coverage::Covered {
            wishes.push(model.wish);
            owners.push(clusterbaseline::owner(&cb)?);
        }
    }
    for a in &apps {
        let Some(b) = a.status.as_ref().and_then(|s| s.baseline.as_ref()) else {
            continue;
        };
        match validate::applied_baseline(b) {
            Ok(w) => {
                wishes.push(w);
                owners.push(appnetwork::owner(a)?);
            }
            Err(e) => {
                tracing::warn!(namespace = %name, app = %a.name_any(), error = %e, "ignoring unreadable status.baseline")
            }
        }
    }
    owners.sort();
    let merged = NamespaceBaseline::merge(&wishes);
    let live = ctx
        .policies
        .get(&ObjectRef::new(BASELINE_NAME).within(&name));
    match render::networkpolicy::baseline(&name, &merged, &owners) {
        Some(desired) => {
            apply::apply(&api, &desired, live.as_deref()).await?;
        }
        None => {
            if let Some(l) = live {
                apply::delete(&api, l.as_ref()).await?;
            }
        }
    }

    // 2. Prune per-tier policies no AppNetwork wants any more.
    for p in ctx.policies.state() {
        if p.namespace().as_deref() != Some(name.as_str())
            || p.labels().get(ROLE_LABEL).map(String::as_str) != Some(ROLE_TIER)
        {
            continue;
        }
        if !wanted(ctx, &p).await? {
            tracing::info!(namespace = %name, policy = %p.name_any(), "pruning policy no longer wanted");
            apply::delete(&api, p.as_ref()).await?;
        }
    }
    Ok(())
}

/// Whether a managed per-tier policy is still wanted by its AppNetwork.
async fn wanted(ctx: &Context, p: &NetworkPolicy) -> Result<bool> {
    let Some(owner_ref) = p
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "AppNetwork")
    else {
        return Ok(true); // not something we can judge; leave it
    };
    let ns = p.namespace().unwrap_or_default();
    let cached = ctx
        .appnets
        .get(&ObjectRef::new(&owner_ref.name).within(&ns));
    match cached {
        Some(app) if app.uid().as_deref() == Some(owner_ref.uid.as_str()) => {
            let Some(status) = &app.status else {
                return Ok(true);
            };
            // Only judge from a status that describes the current spec; otherwise the
            // AppNetwork controller has not caught up yet and may be creating this very policy.
            if status.observed_generation != app.meta().generation {
                return Ok(true);
            }
            Ok(status
                .policies
                .iter()
                .any(|r| r.kind == "NetworkPolicy" && r.name == p.name_any()))
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
