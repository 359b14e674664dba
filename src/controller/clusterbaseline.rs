//! Reconciles one ClusterBaseline: its cluster-wide object (Calico, Cilium), the removal of the
//! old variant after a backend switch (only once what replaces it is in place), and its status.
//! The per-namespace share on the standard backend is written by the namespace reconciler, from
//! the same plan ([`plan::cluster_baselines`]).

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::context::Context;
use super::observe::Observation;
use super::report::{policy_enforced, warn_about};
use crate::apply::FIELD_MANAGER;
use crate::crd::{ClusterBaseline, ClusterBaselineStatus};
use crate::error::{Error, Result};
use crate::model::Coverage;
use crate::plan::{self, ClusterBaselinePlan, HoldReason, Observed};
use crate::render::ObjectKind;
use crate::status::{self, READY, STALLED};
use crate::vocab::{BASELINE_NAME, CLUSTER_BASELINE_LABEL, ROLE_CLUSTER_BASELINE, ROLE_LABEL};

/// Reconciles one ClusterBaseline.
pub async fn reconcile(cb: Arc<ClusterBaseline>, ctx: Arc<Context>) -> Result<Action> {
    if cb.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = cb.name_any();
    let plans = ctx.plan_cluster_baselines();
    let Some(plan) = plans.iter().find(|p| p.name == name) else {
        return Ok(Action::await_change());
    };
    let generation = cb.meta().generation;
    let old = cb.status.clone().unwrap_or_default();
    let mut st = old.clone();
    st.cni = Some(ctx.detected().cni.as_str().to_string());
    policy_enforced(&mut st.conditions, &ctx, generation);

    // 1. Its cluster-wide object, then what it replaces.
    let mut pending_switch = false;
    if plan.hold.is_none() {
        // Guardrails first: the platform's rules are in place before anything they constrain.
        for obj in plan.guardrails.iter().chain(&plan.object) {
            ctx.apply(obj).await?;
        }
        pending_switch = prune_replaced(&ctx, plan).await?;
    }

    // 2. Status.
    match &plan.hold {
        Some(h) if h.reason == HoldReason::BackendUnavailable => {}
        _ => st.observed_generation = generation,
    }
    st.backend = plan.backend.map(|b| b.as_str().to_string());
    st.audit = plan.model.as_ref().is_some_and(|m| m.audit) && plan.hold.is_none();
    coverage(&ctx, plan, &mut st);
    let problem = plan
        .hold
        .as_ref()
        .map(|h| (h.reason.reason(), h.message.clone()));
    match &problem {
        Some((reason, msg)) => {
            status::set(
                &mut st.conditions,
                status::condition(READY, false, reason, msg, generation),
            );
            if plan.hold.as_ref().map(|h| h.reason) == Some(HoldReason::BackendUnavailable) {
                status::remove(&mut st.conditions, STALLED);
            } else {
                status::set(
                    &mut st.conditions,
                    status::condition(STALLED, true, reason, msg, generation),
                );
            }
        }
        None if !st.failed.is_empty() => {
            let list: Vec<String> = st
                .failed
                .iter()
                .take(5)
                .map(|f| format!("{} ({})", f.namespace, f.reason))
                .collect();
            let msg = format!(
                "{} namespaces could not be reconciled: {}",
                st.failed.len(),
                list.join(", ")
            );
            status::set(
                &mut st.conditions,
                status::condition(READY, false, "NamespacesFailing", msg, generation),
            );
            status::remove(&mut st.conditions, STALLED);
        }
        None => {
            let mut msg = format!(
                "baseline in place in {} namespaces ({})",
                st.namespaces,
                st.backend.as_deref().unwrap_or("NetworkPolicy")
            );
            if !st.opted_out.is_empty() {
                msg.push_str(&format!("; {} opted out", st.opted_out.len()));
            }
            status::set(
                &mut st.conditions,
                status::condition(READY, true, "Applied", msg, generation),
            );
            status::remove(&mut st.conditions, STALLED);
        }
    }

    if st != old {
        write_status(&ctx, &cb, &st).await?;
        let newly = problem.as_ref().filter(|(reason, _)| {
            status::get(&old.conditions, READY)
                .map(|c| (c.reason.as_str(), old.observed_generation))
                != Some((*reason, generation))
        });
        if let Some((reason, msg)) = newly {
            if *reason == "InvalidSpec" {
                ctx.metrics
                    .invalid_specs
                    .with_label_values(&["ClusterBaseline"])
                    .inc();
            }
            warn_about(&ctx, cb.as_ref(), reason, msg).await;
        }
    }
    if pending_switch {
        // The namespaces are moving to the new variant; look again shortly.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    Ok(Action::await_change())
}

/// Deletes this ClusterBaseline's cluster-wide objects that the plan no longer wants, once what
/// replaces them is in place. Returns whether some are still waiting for that.
async fn prune_replaced(ctx: &Context, plan: &ClusterBaselinePlan) -> Result<bool> {
    let label = crate::core::names::label_value(&plan.name);
    let mut pending = false;
    for kind in ctx.managed.kinds().into_iter().filter(|k| !k.namespaced()) {
        for obj in ctx.managed.list(kind) {
            let mine = obj.labels.get(CLUSTER_BASELINE_LABEL) == Some(&label)
                && obj.labels.get(ROLE_LABEL).map(String::as_str) == Some(ROLE_CLUSTER_BASELINE);
            let wanted = plan
                .object
                .iter()
                .chain(&plan.guardrails)
                .any(|w| w.kind() == kind && w.name() == obj.name);
            if !mine || wanted {
                continue;
            }
            if replacement_in_place(ctx, plan) {
                ctx.delete(&obj).await?;
            } else {
                pending = true;
            }
        }
    }
    Ok(pending)
}

/// Whether what this ClusterBaseline's plan wants is in place: its cluster-wide object, or on
/// the standard backend its share in the baseline of every namespace it covers.
fn replacement_in_place(ctx: &Context, plan: &ClusterBaselinePlan) -> bool {
    if let Some(obj) = &plan.object {
        return ctx.managed.get(obj.kind(), None, obj.name()).is_some();
    }
    let cluster = ctx.cluster();
    let key = plan::cluster_baseline_key(&plan.name);
    let observed = Observation(ctx);
    ctx.namespaces
        .state()
        .iter()
        .filter(|ns| ns.meta().deletion_timestamp.is_none())
        .filter(|ns| plan.shares(&ns.name_any(), ns.labels(), &cluster))
        .all(|ns| {
            observed
                .records(&ns.name_any(), ObjectKind::NetworkPolicy)
                .is_some_and(|r| r.contains_key(&key))
        })
}

/// Counts the namespaces covered, opted out and failing.
fn coverage(ctx: &Context, plan: &ClusterBaselinePlan, st: &mut ClusterBaselineStatus) {
    st.namespaces = 0;
    st.opted_out.clear();
    st.failed.clear();
    let Some(model) = &plan.model else {
        return;
    };
    let cluster = ctx.cluster();
    let failures = ctx.failures.lock().map(|f| f.clone()).unwrap_or_default();
    let key = plan::cluster_baseline_key(&plan.name);
    let observed = Observation(ctx);
    let per_namespace = plan.backend.is_some_and(plan::per_namespace_backend)
        && model.wish != crate::model::BaselineWish::default();
    let cluster_object_in_place = plan
        .object
        .as_ref()
        .is_none_or(|o| ctx.managed.get(o.kind(), None, o.name()).is_some());
    for ns in ctx.namespaces.state() {
        if ns.meta().deletion_timestamp.is_some() {
            continue;
        }
        let ns_name = ns.name_any();
        match model.coverage(&ns_name, ns.labels(), &cluster.operator_namespace) {
            Coverage::Covered => {
                if let Some(f) = failures.get(&ns_name) {
                    st.failed.push(f.clone());
                } else if per_namespace {
                    let in_place = observed
                        .records(&ns_name, ObjectKind::NetworkPolicy)
                        .is_some_and(|r| r.contains_key(&key))
                        || ctx
                            .managed
                            .get(ObjectKind::NetworkPolicy, Some(&ns_name), BASELINE_NAME)
                            .is_some_and(|_| plan.hold.is_some());
                    if in_place {
                        st.namespaces += 1;
                    }
                } else if cluster_object_in_place {
                    st.namespaces += 1;
                }
            }
            Coverage::OptedOut => st.opted_out.push(ns_name),
            Coverage::NotSelected | Coverage::Excluded | Coverage::System => {}
        }
    }
    st.opted_out.sort();
    st.failed.sort();
}

/// Writes the status (server-side apply on the status subresource).
async fn write_status(
    ctx: &Context,
    cb: &ClusterBaseline,
    st: &ClusterBaselineStatus,
) -> Result<()> {
    let body = json!({
        "apiVersion": ClusterBaseline::api_version(&()),
        "kind": ClusterBaseline::kind(&()),
        "status": st,
    });
    Api::<ClusterBaseline>::all(ctx.client.clone())
        .patch_status(
            &cb.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|e| {
            Error::from(e).at(
                "write status",
                &format!("ClusterBaseline {}", cb.name_any()),
            )
        })?;
    Ok(())
}
