//! ClusterBaseline status: validation, the last valid spec (what the namespace controller
//! enforces), and how many namespaces are covered, opted out or failing.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::{retry_after, Context};
use crate::apply::{self, FIELD_MANAGER};
use crate::core::names::BASELINE_NAME;
use crate::crd::{ClusterBaseline, ClusterBaselineStatus};
use crate::error::{Error, Result};
use crate::model::{Backend, ClusterBaselineModel, Coverage};
use crate::render::{
    self, ObjectKind, Owner, CLUSTER_BASELINE_LABEL, ROLE_CLUSTER_BASELINE, ROLE_LABEL,
};
use crate::status::{self, READY, STALLED};
use crate::validate;

/// The owner reference put on baselines a ClusterBaseline wants.
pub fn owner(cb: &ClusterBaseline) -> Result<Owner> {
    Ok(Owner {
        api_version: ClusterBaseline::api_version(&()).to_string(),
        kind: ClusterBaseline::kind(&()).to_string(),
        name: cb.name_any(),
        uid: cb.uid().ok_or(Error::MissingField("metadata.uid"))?,
    })
}

/// The model the namespace controller enforces: the last valid spec, recorded in status.
pub fn enforced(cb: &ClusterBaseline) -> Option<ClusterBaselineModel> {
    if cb.meta().deletion_timestamp.is_some() {
        return None;
    }
    let spec = cb.status.as_ref()?.last_valid_spec.as_ref()?;
    validate::cluster_baseline(spec).ok()
}

/// Reconciles one ClusterBaseline: its cluster-wide object (Calico, Cilium) and its status.
pub async fn reconcile(cb: Arc<ClusterBaseline>, ctx: Arc<Context>) -> Result<Action> {
    if cb.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = cb.name_any();
    let generation = cb.meta().generation;
    let old = cb.status.clone().unwrap_or_default();
    let mut st = old.clone();
    st.observed_generation = generation;
    st.cni = Some(ctx.detected().cni.as_str().to_string());
    crate::controller::appnetwork::policy_enforced(&mut st.conditions, &ctx, generation);

    let mut problem: Option<(&'static str, String)> = None;
    match validate::cluster_baseline(&cb.spec) {
        Ok(m) => {
            let backend = ctx.resolve(m.backend);
            if m.audit && backend != Backend::Calico {
                problem = Some((
                    "AuditUnsupported",
                    format!(
                        "mode Audit needs Calico's staged policies; the {} backend has no staged form, so nothing is enforced or changed (the previous policies stay in place)",
                        backend.as_str()
                    ),
                ));
            } else {
                st.last_valid_spec = Some(cb.spec.clone());
            }
        }
        Err(e) => {
            problem = Some((
                "InvalidSpec",
                format!("{e}; the last valid spec stays enforced"),
            ))
        }
    }
    let model = st
        .last_valid_spec
        .as_ref()
        .and_then(|s| validate::cluster_baseline(s).ok());

    // The objects: create the new variant before anything of the old one goes.
    let mut pending_switch = false;
    if let Some(model) = &model {
        let backend = ctx.resolve(model.backend);
        let owner = owner(&cb)?;
        let wanted =
            render::cluster_baseline(&name, model, backend, &ctx.operator_namespace, Some(&owner));
        if let Some(obj) = wanted.as_ref().filter(|o| !ctx.served(o.kind)) {
            // Its API is gone or going: change nothing (fail closed).
            let msg = format!(
                "cannot write {} {}: the {} API is not served here (its CRD is missing or being deleted)",
                obj.kind.kind(),
                obj.name(),
                obj.kind.api_version()
            );
            status::set(
                &mut st.conditions,
                status::condition(READY, false, "BackendUnavailable", &msg, generation),
            );
            if st != old {
                write_status(&ctx, &cb, &st).await?;
            }
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
        if let Some(obj) = &wanted {
            let live = ctx.managed.get(obj.kind, None, obj.name());
            apply::apply(&ctx.client, obj, live.as_deref()).await?;
        }
        // Hand-off: namespaces read status.backend to know whether this ClusterBaseline needs a
        // per-namespace object.
        st.backend = Some(backend.as_str().to_string());
        st.audit = model.audit;
        let covered = covered_namespaces(&ctx, model);
        let per_namespace_ready = backend != Backend::NetworkPolicy
            || !(model.wish.deny_ingress || model.wish.deny_egress)
            || covered.iter().all(|ns| {
                ctx.managed
                    .get(ObjectKind::NetworkPolicy, Some(ns), BASELINE_NAME)
                    .is_some()
            });
        // Old cluster-wide objects go only once what replaces them is in place.
        let label = crate::core::names::label_value(&name);
        for kind in ctx.managed.kinds().into_iter().filter(|k| !k.namespaced()) {
            for obj in ctx.managed.list(kind) {
                let mine = obj.labels().get(CLUSTER_BASELINE_LABEL) == Some(&label)
                    && obj.labels().get(ROLE_LABEL).map(String::as_str)
                        == Some(ROLE_CLUSTER_BASELINE);
                let is_wanted = wanted
                    .as_ref()
                    .is_some_and(|w| w.kind == kind && w.name() == obj.name_any());
                if mine && !is_wanted {
                    if per_namespace_ready && old.backend == st.backend {
                        apply::delete(&ctx.client, kind, &obj).await?;
                    } else {
                        pending_switch = true;
                    }
                }
            }
        }
    }

    // Coverage.
    st.namespaces = 0;
    st.opted_out.clear();
    st.failed.clear();
    if let Some(model) = &model {
        let failures = ctx.failures.lock().map(|f| f.clone()).unwrap_or_default();
        let backend = ctx.resolve(model.backend);
        let needs_no_object = backend != Backend::NetworkPolicy
            || !(model.wish.deny_ingress || model.wish.deny_egress);
        for ns in ctx.namespaces.state() {
            if ns.meta().deletion_timestamp.is_some() {
                continue;
            }
            let ns_name = ns.name_any();
            match model.coverage(&ns_name, ns.labels(), &ctx.operator_namespace) {
                Coverage::Covered => {
                    if let Some(f) = failures.get(&ns_name) {
                        st.failed.push(f.clone());
                    } else if needs_no_object
                        || ctx
                            .managed
                            .get(ObjectKind::NetworkPolicy, Some(&ns_name), BASELINE_NAME)
                            .is_some()
                    {
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

    match &problem {
        Some((reason, msg)) => {
            status::set(
                &mut st.conditions,
                status::condition(READY, false, reason, msg, generation),
            );
            status::set(
                &mut st.conditions,
                status::condition(STALLED, true, reason, msg, generation),
            );
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
            crate::controller::appnetwork::warn_about(&ctx, cb.as_ref(), reason, msg).await;
        }
    }
    if pending_switch {
        // The namespaces are moving to the new variant; look again shortly.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    Ok(Action::await_change())
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
        .await?;
    Ok(())
}

fn covered_namespaces(ctx: &Context, model: &ClusterBaselineModel) -> Vec<String> {
    ctx.namespaces
        .state()
        .into_iter()
        .filter(|ns| ns.meta().deletion_timestamp.is_none())
        .filter(|ns| {
            model.coverage(&ns.name_any(), ns.labels(), &ctx.operator_namespace)
                == Coverage::Covered
        })
        .map(|ns| ns.name_any())
        .collect()
}

/// Error policy: retry soon.
pub fn error_policy(_cb: Arc<ClusterBaseline>, err: &Error, _ctx: Arc<Context>) -> Action {
    retry_after(err)
}
