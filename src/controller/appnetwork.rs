//! Reconciles one AppNetwork: validate → render for its backend → apply the per-tier objects →
//! status. The namespace baseline and pruning are the namespace controller's (see `namespace`).

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::{retry_after, Context};
use crate::apply::{self, Applied, FIELD_MANAGER};
use crate::crd::{AppNetwork, AppNetworkStatus, Condition, FlowsStatus, ObjectRefStatus};
use crate::error::{Error, Result};
use crate::model::Backend;
use crate::render::{self, Owner};
use crate::status::{self, READY, STALLED};
use crate::validate;

/// How often a healthy AppNetwork is looked at again even without events (a safety net; the
/// watches normally trigger within milliseconds).
const RESYNC: Duration = Duration::from_secs(600);

/// How often a name taken by someone else's object is looked at again (one GET).
const NAME_CONFLICT_RETRY: Duration = Duration::from_secs(5);

/// The condition that says whether the CNI enforces policy at all (False on Flannel alone).
pub const POLICY_ENFORCED: &str = "PolicyEnforced";

/// The condition that says whether HTTP (L7) rules are enforced as declared.
pub const L7_ENFORCED: &str = "L7Enforced";

/// The owner reference tierflow puts on everything rendered for `app`.
pub fn owner(app: &AppNetwork) -> Result<Owner> {
    Ok(Owner {
        api_version: AppNetwork::api_version(&()).to_string(),
        kind: AppNetwork::kind(&()).to_string(),
        name: app.name_any(),
        uid: app.uid().ok_or(Error::MissingField("metadata.uid"))?,
    })
}

/// Sets `PolicyEnforced=False` while the CNI enforces nothing, and removes it otherwise.
pub fn policy_enforced(conditions: &mut Vec<Condition>, ctx: &Context, generation: Option<i64>) {
    let d = ctx.detected();
    if d.enforces {
        status::remove(conditions, POLICY_ENFORCED);
    } else {
        status::set(
            conditions,
            status::condition(
                POLICY_ENFORCED,
                false,
                "CniDoesNotEnforce",
                &d.reason,
                generation,
            ),
        );
    }
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
    status.cni = Some(ctx.detected().cni.as_str().to_string());
    policy_enforced(&mut status.conditions, &ctx, generation);

    let model = match validate::app_network(&name, &ns, &app.spec) {
        Ok(m) => m,
        Err(invalid) => {
            // Fail closed: the policies of the last valid generation stay exactly as they are.
            let msg = format!("{invalid}; the policies of the last valid spec stay in place");
            return stalled(&ctx, &app, &old, status, "InvalidSpec", &msg).await;
        }
    };
    let backend = ctx.resolve(model.backend);
    if model.audit && backend != Backend::Calico {
        let msg = format!(
            "mode Audit needs Calico's staged policies; the {} backend has no staged form, so nothing is enforced or changed (the previous policies stay in place)",
            backend.as_str()
        );
        return stalled(&ctx, &app, &old, status, "AuditUnsupported", &msg).await;
    }

    let steady = old.observed_generation == generation
        && old.backend.as_deref() == Some(backend.as_str())
        && status::get(&old.conditions, READY).is_some_and(|c| c.status == "True");
    let owner = owner(&app)?;
    let rendered = render::tier_objects(&model, backend, Some(&owner), &ctx.env());
    let mut writes = 0usize;
    if let Some(missing) = rendered.objects.iter().find(|o| !ctx.served(o.kind)) {
        // Never write a kind whose API is not served (a CRD missing, or being deleted): the
        // policies in place stay until the backend is served or another one is chosen.
        let msg = format!(
            "cannot write {} {}: the {} API is not served here (its CRD is missing or being deleted); the policies in place stay",
            missing.kind.kind(),
            missing.name(),
            missing.kind.api_version()
        );
        status::set(
            &mut status.conditions,
            status::condition(READY, false, "BackendUnavailable", &msg, generation),
        );
        if write_status(&ctx, &app, &old, &status).await? {
            warn(&ctx, &app, "BackendUnavailable", &msg).await;
        }
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    for object in &rendered.objects {
        let live = ctx
            .managed
            .get(object.kind, object.namespace(), object.name());
        match apply::apply(&ctx.client, object, live.as_deref()).await {
            Ok(Applied::Unchanged) => {}
            Ok(_) => {
                writes += 1;
                if steady {
                    // Nothing about the spec or backend changed since the last apply: this
                    // write put back something someone else changed or deleted.
                    ctx.metrics
                        .drift_corrections
                        .with_label_values(&[object.kind.kind()])
                        .inc();
                }
            }
            Err(e @ Error::Conflict { .. }) => {
                let msg = e.to_string();
                status::set(
                    &mut status.conditions,
                    status::condition(READY, false, e.reason(), &msg, generation),
                );
                if write_status(&ctx, &app, &old, &status).await? {
                    warn(&ctx, &app, e.reason(), &msg).await;
                }
                // The other object is not watched (it lacks tierflow's label): look again soon,
                // so the tier gets its policy within seconds once its owner frees the name (it
                // waited 60 s, its traffic blocked by the baseline meanwhile).
                return Ok(Action::requeue(NAME_CONFLICT_RETRY));
            }
            Err(Error::Kube(kube::Error::Api(s))) if s.code == 404 => {
                let msg = format!(
                    "cannot write {} {}: the {} API is not served here (is its CRD installed?)",
                    object.kind.kind(),
                    object.name(),
                    object.kind.api_version()
                );
                status::set(
                    &mut status.conditions,
                    status::condition(READY, false, "BackendUnavailable", &msg, generation),
                );
                if write_status(&ctx, &app, &old, &status).await? {
                    warn(&ctx, &app, "BackendUnavailable", &msg).await;
                }
                return Ok(Action::requeue(Duration::from_secs(30)));
            }
            // The namespace is being deleted (or is gone) since the cache saw it: its objects go
            // with it. Not an error, nothing to retry (it was counted and retried every 2 s).
            Err(e) if super::namespace::terminating(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e),
        }
    }

    status.policies = rendered
        .objects
        .iter()
        .map(|o| ObjectRefStatus {
            api_version: o.kind.api_version().to_string(),
            kind: o.kind.kind().to_string(),
            name: o.name().to_string(),
        })
        .collect();
    status.policy_count = status.policies.len() as i64;
    status.baseline = Some(validate::to_applied_baseline(&model.baseline));
    status.backend = Some(backend.as_str().to_string());
    status.audit = model.audit;

    let blocking: Vec<&render::Limitation> = rendered
        .limitations
        .iter()
        .filter(|n| n.kind.blocks_ready())
        .collect();
    match blocking.first() {
        Some(first) => {
            let msg: Vec<&str> = blocking.iter().map(|n| n.message.as_str()).collect();
            status::set(
                &mut status.conditions,
                status::condition(
                    READY,
                    false,
                    first.kind.reason(),
                    msg.join("; "),
                    generation,
                ),
            );
        }
        None => {
            let verb = if model.audit { "staged" } else { "applied" };
            let mut msg = format!(
                "{} {} objects for {} flows {verb}",
                rendered.objects.len(),
                backend.as_str(),
                model.flows.len()
            );
            if model.backend == crate::model::BackendRequest::Auto && ctx.default_backend.is_none()
            {
                msg.push_str(&format!(
                    " (backend chosen by CNI detection: {})",
                    ctx.detected().reason
                ));
            }
            status::set(
                &mut status.conditions,
                status::condition(READY, true, "Applied", msg, generation),
            );
        }
    }
    let l7: Vec<&str> = rendered
        .limitations
        .iter()
        .filter(|n| n.kind == render::LimitationKind::L7Unsupported)
        .map(|n| n.message.as_str())
        .collect();
    if !l7.is_empty() {
        status::set(
            &mut status.conditions,
            status::condition(
                L7_ENFORCED,
                false,
                "L7Unsupported",
                l7.join("; "),
                generation,
            ),
        );
    } else if model.flows.iter().any(|f| !f.http.is_empty()) {
        status::set(
            &mut status.conditions,
            status::condition(
                L7_ENFORCED,
                true,
                "Enforced",
                "HTTP rules are enforced",
                generation,
            ),
        );
    } else {
        status::remove(&mut status.conditions, L7_ENFORCED);
    }
    status::remove(&mut status.conditions, STALLED);
    verify_flows(&ctx, &model, backend, &rendered, generation, &mut status).await;
    let status_written = write_status(&ctx, &app, &old, &status).await?;
    if status_written && !blocking.is_empty() {
        warn(&ctx, &app, blocking[0].kind.reason(), &blocking[0].message).await;
    }
    if writes > 0 || status_written {
        tracing::info!(
            namespace = %ns, name = %name, backend = backend.as_str(), writes,
            duration_ms = started.elapsed().as_millis() as u64, outcome = "Applied", "reconciled"
        );
    }
    Ok(Action::requeue(RESYNC))
}

/// The condition that says whether the policies in place allow exactly the declared flows.
pub const VERIFIED: &str = "Verified";

/// Above this many tiers the reconciler does not simulate its policies inline.
const VERIFY_MAX_TIERS: usize = 50;
/// Above this many flows the reconciler does not simulate its policies inline.
const VERIFY_MAX_FLOWS: usize = 200;

/// The condition set when other NetworkPolicies of the namespace (not tierflow's) open
/// connections the AppNetwork does not declare, for example an allow-all policy.
pub const UNDERCUT: &str = "Undercut";

/// Simulates the policies in place (this AppNetwork's objects and the baseline it asks for) on
/// representative pods and records how many declared flows they allow; then the same with the
/// users' own NetworkPolicies of the namespace added, to say what those open beyond the intent.
/// Deterministic, so it is computed once per generation, backend and set of other policies: a
/// steady state stays free of writes.
async fn verify_flows(
    ctx: &Context,
    model: &crate::model::AppModel,
    backend: Backend,
    rendered: &render::Rendered,
    generation: Option<i64>,
    status: &mut AppNetworkStatus,
) {
    let gen = generation.unwrap_or_default();
    if model.audit {
        // Staged policies are not enforced: there is nothing to verify yet.
        status.flows = None;
        status::remove(&mut status.conditions, VERIFIED);
        status::remove(&mut status.conditions, UNDERCUT);
        return;
    }
    let mut others: Vec<Arc<k8s_openapi::api::networking::v1::NetworkPolicy>> = ctx
        .user_policies
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(model.namespace.as_str()))
        .collect();
    others.sort_by_key(|p| p.name_any());
    let fingerprint = (!others.is_empty()).then(|| {
        let ids: Vec<String> = others
            .iter()
            .map(|p| {
                format!(
                    "{}@{}",
                    p.name_any(),
                    p.resource_version().unwrap_or_default()
                )
            })
            .collect();
        crate::core::names::short_hash(&ids.join(","))
    });
    let current = status.flows.as_ref().is_some_and(|f| {
        f.generation == gen && f.backend == backend.as_str() && f.other_policies == fingerprint
    });
    if current {
        return;
    }
    // The simulation grows with tiers × peers × ports; past a size it would hold up the status
    // that the namespace baseline waits for (1,000 tiers took minutes). Large apps are verified
    // offline with `tierflow verify`.
    if model.tiers.len() > VERIFY_MAX_TIERS || model.flows.len() > VERIFY_MAX_FLOWS {
        status.flows = None;
        status::remove(&mut status.conditions, UNDERCUT);
        let msg = format!(
            "not simulated in the reconciler: {} tiers and {} flows are more than it checks inline ({VERIFY_MAX_TIERS} tiers, {VERIFY_MAX_FLOWS} flows); run `tierflow verify -f` on the manifest",
            model.tiers.len(),
            model.flows.len()
        );
        status::set(
            &mut status.conditions,
            crate::crd::Condition {
                status: "Unknown".into(),
                ..status::condition(VERIFIED, false, "TooLargeToVerifyInline", msg, generation)
            },
        );
        return;
    }
    let mut objects: Vec<serde_json::Value> =
        rendered.objects.iter().map(|o| o.body.clone()).collect();
    let own = crate::model::NamespaceBaseline::merge([&model.baseline]);
    if let Some(b) =
        render::namespace_baseline(&model.namespace, &own, backend, false, &[], &ctx.env())
    {
        objects.push(b.body);
    }
    let with_others: Vec<serde_json::Value> = objects
        .iter()
        .cloned()
        .chain(
            others
                .iter()
                .filter_map(|p| serde_json::to_value(p.as_ref()).ok()),
        )
        .collect();
    let has_others = !others.is_empty();
    let m = model.clone();
    let Ok((report, combined)) = tokio::task::spawn_blocking(move || {
        let ours = crate::cli::verify_objects(&m, objects, backend);
        let combined = has_others.then(|| crate::cli::verify_objects(&m, with_others, backend));
        (ours, combined)
    })
    .await
    else {
        return;
    };
    let declared: std::collections::BTreeSet<usize> = model.flows.iter().map(|f| f.index).collect();
    let blocked: std::collections::BTreeSet<usize> = report
        .differences
        .iter()
        .filter(|d| d.expected && !d.got)
        .filter_map(|d| {
            let rest = d.because.split("spec.flows[").nth(1)?;
            rest.split(']').next()?.parse().ok()
        })
        .collect();
    status.flows = Some(FlowsStatus {
        declared: declared.len() as i64,
        verified: declared.difference(&blocked).count() as i64,
        generation: gen,
        backend: backend.as_str().to_string(),
        other_policies: fingerprint,
    });
    if report.differences.is_empty() && report.error.is_none() {
        let msg = format!(
            "the policies allow exactly the {} declared flows and DNS",
            declared.len()
        );
        status::set(
            &mut status.conditions,
            status::condition(VERIFIED, true, "Verified", msg, generation),
        );
    } else {
        let mut shown: Vec<String> = report
            .differences
            .iter()
            .take(3)
            .map(|d| d.describe())
            .collect();
        if let Some(e) = &report.error {
            shown.push(e.clone());
        }
        let msg = format!(
            "{} differences from the intent: {}",
            report.differences.len(),
            shown.join("; ")
        );
        status::set(
            &mut status.conditions,
            status::condition(VERIFIED, false, "Differences", msg, generation),
        );
    }
    // What the users' own policies open beyond the intent (Kubernetes policies only add allows).
    let opened: Vec<String> = combined
        .iter()
        .flat_map(|r| r.differences.iter())
        .filter(|d| !d.expected && d.got)
        .map(|d| {
            let by: Vec<&str> = d
                .decided_by
                .iter()
                .map(String::as_str)
                .filter(|p| {
                    !p.rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .starts_with("tierflow-")
                })
                .collect();
            format!(
                "{} -> {} on {}/{} is allowed by {}",
                d.from,
                d.to,
                d.port,
                d.protocol,
                by.join(", ")
            )
        })
        .collect();
    if opened.is_empty() {
        status::remove(&mut status.conditions, UNDERCUT);
    } else {
        let shown: Vec<&str> = opened.iter().take(3).map(String::as_str).collect();
        let msg = format!(
            "{} connections this AppNetwork does not declare are opened by other NetworkPolicies of the namespace: {}",
            opened.len(),
            shown.join("; ")
        );
        status::set(
            &mut status.conditions,
            status::condition(UNDERCUT, true, "OtherPoliciesAllowMore", msg, generation),
        );
    }
}

/// Records a spec that cannot be applied (Ready=False and Stalled=True with `reason`), keeping
/// everything else as it was, and warns once per change.
async fn stalled(
    ctx: &Context,
    app: &AppNetwork,
    old: &AppNetworkStatus,
    mut status: AppNetworkStatus,
    reason: &str,
    msg: &str,
) -> Result<Action> {
    let generation = app.meta().generation;
    status::set(
        &mut status.conditions,
        status::condition(READY, false, reason, msg, generation),
    );
    status::set(
        &mut status.conditions,
        status::condition(STALLED, true, reason, msg, generation),
    );
    if write_status(ctx, app, old, &status).await? {
        if reason == "InvalidSpec" {
            ctx.metrics
                .invalid_specs
                .with_label_values(&["AppNetwork"])
                .inc();
        }
        warn(ctx, app, reason, msg).await;
    }
    tracing::info!(namespace = %app.namespace().unwrap_or_default(), name = %app.name_any(), outcome = reason, "reconciled");
    Ok(Action::await_change())
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
    match api
        .patch_status(
            &app.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => Ok(true),
        // Deleted meanwhile (with its namespace, say): nobody left to report to.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Publishes a Warning event about `obj`.
pub async fn warn_about<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    reason: &str,
    msg: &str,
) {
    let ev = Event {
        type_: EventType::Warning,
        reason: reason.to_string(),
        note: Some(msg.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish event");
    }
}

async fn warn(ctx: &Context, app: &AppNetwork, reason: &str, msg: &str) {
    warn_about(ctx, app, reason, msg).await;
}
