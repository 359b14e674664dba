//! Reconciles one namespace: everything its AppNetworks and the ClusterBaselines covering it
//! want there, in the planner's write order, then the AppNetworks' status.
//!
//! 1. Plan ([`plan::namespace`], the function `tierflow render` calls too).
//! 2. Allows: the per-tier objects of every AppNetwork that is not held.
//! 3. Baselines: one merged object per backend. An AppNetwork whose allows could not all be
//!    written this time contributes what it recorded last, so a new deny never lands before the
//!    allows declared with it.
//! 4. Prune, only once everything wanted is in place: per-tier objects no AppNetwork wants any
//!    more, and baselines of kinds no input wants. Objects of held inputs (invalid spec, a
//!    backend that is not served) stay exactly as they are; objects whose owner is not in the
//!    cache are left to the garbage collector.
//! 5. Status of each AppNetwork ([`report`](super::report)), written only when it changed,
//!    at a lower priority than the writes of other namespaces ([`reports`](super::reports)).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::observe::Observation;
use super::report::Outcome;
use crate::apply::Applied;
use crate::crd::NamespaceFailure;
use crate::error::{Error, Result};
use crate::plan::{self, NamespacePlan};
use crate::render::{Object, ObjectKind};
use crate::vocab::{BASELINE_NAME, ROLE_BASELINE, ROLE_LABEL, ROLE_TIER};

/// How often a namespace is looked at again without events (a safety net; the watches normally
/// trigger within milliseconds).
const RESYNC: Duration = Duration::from_secs(600);

/// How often a name taken by someone else's object is looked at again (that object is not
/// watched: it lacks tierflow's label).
const NAME_CONFLICT_RETRY: Duration = Duration::from_secs(5);

/// How often an input waiting for its backend's API is looked at again.
const BACKEND_RETRY: Duration = Duration::from_secs(30);

/// Reconciles one namespace.
pub async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action> {
    let name = ns.name_any();
    // Its reports wait until this reconcile ends.
    let _in_flight = ctx.memory.reports.in_flight(&name);
    if ns.meta().deletion_timestamp.is_some() {
        // Terminating: everything in it is going away; writes would be refused.
        forget_failure(&ctx, &name);
        return Ok(Action::await_change());
    }
    match sync(&ns, &ctx).await {
        Ok(action) => {
            forget_failure(&ctx, &name);
            Ok(action)
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
                ctx.triggers.all_cluster_baselines();
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
        ctx.triggers.all_cluster_baselines();
    }
}

/// Whether an error says the namespace is gone or terminating.
pub(crate) fn terminating(e: &Error) -> bool {
    match e.root() {
        Error::Kube(kube::Error::Api(s)) => {
            (s.code == 403 && s.message.contains("being terminated"))
                || (s.code == 404 && s.message.contains("namespaces"))
        }
        _ => false,
    }
}

/// Plans the namespace from the caches (what `reconcile` acts on; tests compare it with
/// `tierflow render`).
pub fn plan_of(ns: &Namespace, ctx: &Context) -> NamespacePlan {
    let cluster = ctx.cluster();
    let observed = Observation(ctx);
    let name = ns.name_any();
    let cbs = ctx.plan_cluster_baselines();
    let inputs = ctx.app_inputs(&name);
    let refs: Vec<&plan::AppInput> = inputs.iter().collect();
    plan::namespace(&name, ns.labels(), &refs, &cbs, &cluster, &observed)
}

async fn sync(ns: &Namespace, ctx: &Context) -> Result<Action> {
    let started = std::time::Instant::now();
    let name = ns.name_any();
    let cluster = ctx.cluster();
    let plan = plan_of(ns, ctx);

    // 1. Allows.
    let mut outcomes = Vec::with_capacity(plan.apps.len());
    let mut first_error: Option<Error> = None;
    let mut writes = 0usize;
    for app in &plan.apps {
        if app.held() {
            outcomes.push(Outcome::Held);
            continue;
        }
        // An app's allows are independent of each other: written at once (the baselines, which
        // must come after every allow, wait for all of them below). One request per object as
        // before; the namespace's share of the bounded concurrency just stays busy.
        let results =
            futures::future::join_all(app.objects.iter().map(|object| ctx.apply(object))).await;
        let mut outcome = Outcome::Applied;
        for result in results {
            match result {
                Ok(Applied::Unchanged) => {}
                Ok(_) => writes += 1,
                Err(e) if terminating(&e) => return Ok(Action::await_change()),
                Err(e) => {
                    if matches!(outcome, Outcome::Applied) {
                        outcome = Outcome::Failed {
                            reason: e.reason(),
                            message: e.to_string(),
                        };
                    }
                    if !matches!(e.root(), Error::Conflict { .. }) {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        outcomes.push(outcome);
    }
    let not_in_place: BTreeSet<String> = plan
        .apps
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Outcome::Failed { .. }))
        .map(|(a, _)| a.name.clone())
        .collect();

    // 2. Baselines.
    let baselines = plan.baselines(&cluster, &not_in_place);
    let mut baselines_in_place = true;
    for object in &baselines {
        match ctx.apply(object).await {
            Ok(Applied::Unchanged) => {}
            Ok(_) => writes += 1,
            Err(e) if terminating(&e) => return Ok(Action::await_change()),
            Err(e) => {
                baselines_in_place = false;
                tracing::warn!(namespace = %name, error = %e, "baseline not applied");
                first_error.get_or_insert(e);
            }
        }
    }

    // 3. Prune, once everything wanted is in place.
    if baselines_in_place {
        writes += prune(ctx, &plan, &baselines, &not_in_place).await?;
    }

    // 4. Status: handed to the reports, made once no namespace is being written.
    for (app, outcome) in plan.apps.iter().zip(outcomes.iter()) {
        let outcome = match outcome {
            Outcome::Applied if !baselines_in_place => Outcome::Failed {
                reason: "BaselineNotApplied",
                message: first_error
                    .as_ref()
                    .map(|e| format!("the namespace baseline could not be applied: {e}"))
                    .unwrap_or_default(),
            },
            o => o.clone(),
        };
        ctx.memory.reports.defer(&name, app, outcome);
    }
    ctx.memory.reports.wake();
    if writes > 0 {
        tracing::info!(
            namespace = %name, writes, apps = plan.apps.len(),
            duration_ms = started.elapsed().as_millis() as u64, "namespace reconciled"
        );
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let conflict = outcomes.iter().any(|o| matches!(o, Outcome::Failed { .. }));
    let waiting = plan.apps.iter().any(|a| {
        a.hold
            .as_ref()
            .is_some_and(|h| h.reason == plan::HoldReason::BackendUnavailable)
    });
    Ok(if conflict {
        Action::requeue(NAME_CONFLICT_RETRY)
    } else if waiting {
        Action::requeue(BACKEND_RETRY)
    } else {
        Action::requeue(RESYNC)
    })
}

/// Deletes what no input wants any more. Returns how many deletes were issued.
async fn prune(
    ctx: &Context,
    plan: &NamespacePlan,
    baselines: &[Object],
    not_in_place: &BTreeSet<String>,
) -> Result<usize> {
    let ns = plan.namespace.as_str();
    let mut deletes = 0;
    let wanted: BTreeSet<(ObjectKind, &str)> = plan
        .allows()
        .chain(baselines)
        .map(|o| (o.kind(), o.name()))
        .collect();
    for kind in ctx.managed.kinds().into_iter().filter(|k| k.namespaced()) {
        for obj in ctx.managed.in_namespace(kind, ns) {
            let name = obj.name.clone();
            if wanted.contains(&(kind, name.as_str())) {
                continue;
            }
            let role = obj.labels.get(ROLE_LABEL).map(String::as_str);
            let prune = match role {
                Some(ROLE_BASELINE) if name == BASELINE_NAME => {
                    not_in_place.is_empty() && !plan.keeps(kind, None, true)
                }
                Some(ROLE_TIER) => {
                    let owner = obj
                        .owners
                        .iter()
                        .find(|o| o.controller && o.kind == "AppNetwork")
                        .map(|o| o.uid.as_str());
                    match plan
                        .apps
                        .iter()
                        .find(|a| owner.is_some() && a.uid.as_deref() == owner)
                    {
                        // Its AppNetwork is gone (or not seen yet): the garbage collector's.
                        None => false,
                        Some(a) => !a.held() && !not_in_place.contains(&a.name),
                    }
                }
                _ => false,
            };
            if prune {
                tracing::info!(namespace = %ns, kind = kind.kind(), %name, "pruning object no longer wanted");
                if ctx.delete(&obj).await? {
                    deletes += 1;
                }
            }
        }
    }
    Ok(deletes)
}
