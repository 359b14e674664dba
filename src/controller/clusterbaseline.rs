//! ClusterBaseline status: validation, the last valid spec (what the namespace controller
//! enforces), and how many namespaces are covered, opted out or failing.

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::{retry_after, Context};
use crate::apply::FIELD_MANAGER;
use crate::core::names::BASELINE_NAME;
use crate::crd::ClusterBaseline;
use crate::error::{Error, Result};
use crate::model::{ClusterBaselineModel, Coverage};
use crate::render::Owner;
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

/// Reconciles one ClusterBaseline's status.
pub async fn reconcile(cb: Arc<ClusterBaseline>, ctx: Arc<Context>) -> Result<Action> {
    if cb.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let generation = cb.meta().generation;
    let old = cb.status.clone().unwrap_or_default();
    let mut st = old.clone();
    st.observed_generation = generation;

    let invalid = match validate::cluster_baseline(&cb.spec) {
        Ok(_) => {
            st.last_valid_spec = Some(cb.spec.clone());
            None
        }
        Err(e) => Some(e),
    };
    let model = st
        .last_valid_spec
        .as_ref()
        .and_then(|s| validate::cluster_baseline(s).ok());

    st.namespaces = 0;
    st.opted_out.clear();
    st.failed.clear();
    if let Some(model) = &model {
        let failures = ctx.failures.lock().map(|f| f.clone()).unwrap_or_default();
        let needs_no_object = !(model.wish.deny_ingress || model.wish.deny_egress);
        for ns in ctx.namespaces.state() {
            if ns.meta().deletion_timestamp.is_some() {
                continue;
            }
            let name = ns.name_any();
            match model.coverage(&name, ns.labels(), &ctx.operator_namespace) {
                Coverage::Covered => {
                    if let Some(f) = failures.get(&name) {
                        st.failed.push(f.clone());
                    } else if needs_no_object
                        || ctx
                            .policies
                            .get(&ObjectRef::new(BASELINE_NAME).within(&name))
                            .is_some()
                    {
                        st.namespaces += 1;
                    }
                }
                Coverage::OptedOut => st.opted_out.push(name),
                Coverage::NotSelected | Coverage::Excluded | Coverage::System => {}
            }
        }
        st.opted_out.sort();
        st.failed.sort();
    }

    match &invalid {
        Some(e) => {
            let msg = format!("{e}; the last valid spec stays enforced");
            status::set(
                &mut st.conditions,
                status::condition(READY, false, "InvalidSpec", &msg, generation),
            );
            status::set(
                &mut st.conditions,
                status::condition(STALLED, true, "InvalidSpec", &msg, generation),
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
            let mut msg = format!("baseline in place in {} namespaces", st.namespaces);
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
        let newly_invalid = invalid.is_some()
            && status::get(&old.conditions, READY)
                .map(|c| (c.reason.as_str(), old.observed_generation))
                != Some(("InvalidSpec", generation));
        if let (true, Some(e)) = (newly_invalid, &invalid) {
            let ev = Event {
                type_: EventType::Warning,
                reason: "InvalidSpec".into(),
                note: Some(e.to_string().chars().take(1000).collect()),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(err) = ctx.recorder.publish(&ev, &cb.object_ref(&())).await {
                tracing::warn!(error = %err, "could not publish event");
            }
        }
    }
    Ok(Action::await_change())
}

/// Error policy: retry soon.
pub fn error_policy(_cb: Arc<ClusterBaseline>, err: &Error, _ctx: Arc<Context>) -> Action {
    retry_after(err)
}
