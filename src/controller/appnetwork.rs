//! Reconciles one AppNetwork: validate → render → apply the per-tier policies → status.
//! The namespace baseline and pruning are the namespace controller's (see `namespace`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::{retry_after, Context};
use crate::apply::{self, Applied, FIELD_MANAGER};
use crate::crd::{AppNetwork, AppNetworkStatus, ObjectRefStatus};
use crate::error::{Error, Result};
use crate::render::{self, Owner};
use crate::status::{self, READY, STALLED};
use crate::validate;

/// How often a healthy AppNetwork is looked at again even without events (a safety net; the
/// watches normally trigger within milliseconds).
const RESYNC: Duration = Duration::from_secs(600);

/// The owner reference tierflow puts on everything rendered for `app`.
pub fn owner(app: &AppNetwork) -> Result<Owner> {
    Ok(Owner {
        api_version: AppNetwork::api_version(&()).to_string(),
        kind: AppNetwork::kind(&()).to_string(),
        name: app.name_any(),
        uid: app.uid().ok_or(Error::MissingField("metadata.uid"))?,
    })
}

/// Reconciles one AppNetwork.
pub async fn reconcile(app: Arc<AppNetwork>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    let ns = app
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = app.name_any();
    if app.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let generation = app.meta().generation;
    let old = app.status.clone().unwrap_or_default();
    let mut status = old.clone();
    status.observed_generation = generation;

    let model = match validate::app_network(&name, &ns, &app.spec) {
        Ok(m) => m,
        Err(invalid) => {
            // Fail closed: the policies of the last valid generation stay exactly as they are.
            let msg = format!("{invalid}; the policies of the last valid spec stay in place");
            status::set(
                &mut status.conditions,
                status::condition(READY, false, "InvalidSpec", &msg, generation),
            );
            status::set(
                &mut status.conditions,
                status::condition(STALLED, true, "InvalidSpec", &msg, generation),
            );
            if write_status(&ctx, &app, &old, &status).await? {
                warn(&ctx, &app, "InvalidSpec", &msg).await;
            }
            tracing::info!(namespace = %ns, name = %name, outcome = "InvalidSpec", "reconciled");
            return Ok(Action::await_change());
        }
    };

    let owner = owner(&app)?;
    let desired = render::networkpolicy::tier_policies(&model, Some(&owner));
    let api: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let mut writes = 0usize;
    for policy in &desired {
        let live = ctx.policies.get(&ObjectRef::from_obj(policy));
        match apply::apply(&api, policy, live.as_deref()).await {
            Ok(Applied::Unchanged) => {}
            Ok(_) => writes += 1,
            Err(e @ Error::Conflict { .. }) => {
                let msg = e.to_string();
                status::set(
                    &mut status.conditions,
                    status::condition(READY, false, e.reason(), &msg, generation),
                );
                if write_status(&ctx, &app, &old, &status).await? {
                    warn(&ctx, &app, e.reason(), &msg).await;
                }
                return Ok(Action::requeue(Duration::from_secs(60)));
            }
            Err(e) => return Err(e),
        }
    }

    status.policies = desired
        .iter()
        .map(|p| ObjectRefStatus {
            api_version: "networking.k8s.io/v1".into(),
            kind: "NetworkPolicy".into(),
            name: p.name_any(),
        })
        .collect();
    status.policy_count = status.policies.len() as i64;
    status.baseline = Some(validate::to_applied_baseline(&model.baseline));
    let msg = format!(
        "{} tier policies for {} flows applied",
        desired.len(),
        model.flows.len()
    );
    status::set(
        &mut status.conditions,
        status::condition(READY, true, "Applied", msg, generation),
    );
    status::remove(&mut status.conditions, STALLED);
    let status_written = write_status(&ctx, &app, &old, &status).await?;
    if writes > 0 || status_written {
        tracing::info!(
            namespace = %ns, name = %name, writes, duration_ms = started.elapsed().as_millis() as u64,
            outcome = "Applied", "reconciled"
        );
    }
    Ok(Action::requeue(RESYNC))
}

/// Error policy: retry soon.
pub fn error_policy(_app: Arc<AppNetwork>, err: &Error, _ctx: Arc<Context>) -> Action {
    retry_after(err)
}

/// Writes `new` when it differs from `old` (server-side apply on the status subresource).
/// Returns whether a write was made.
async fn write_status(
    ctx: &Context,
    app: &AppNetwork,
    old: &AppNetworkStatus,
    new: &AppNetworkStatus,
) -> Result<bool> {
    if old == new {
        return Ok(false);
    }
    let api: Api<AppNetwork> =
        Api::namespaced(ctx.client.clone(), &app.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": AppNetwork::api_version(&()),
        "kind": AppNetwork::kind(&()),
        "status": new,
    });
    api.patch_status(
        &app.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(true)
}

async fn warn(ctx: &Context, app: &AppNetwork, reason: &str, msg: &str) {
    let ev = Event {
        type_: EventType::Warning,
        reason: reason.to_string(),
        note: Some(msg.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &app.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish event");
    }
}
