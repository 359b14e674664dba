//! Status: a report of what the planner decided and what the writes did, never read back.
//!
//! kstatus-compatible: `observedGeneration` moves only when that generation is applied or found
//! invalid; `Ready` and `Stalled`; a `lastTransitionTime` that only moves with the condition's
//! status; no write when nothing changed (compared with the cached status and with the status
//! this process wrote last, so a cache that lags the operator's own write causes no second
//! write).

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::context::Context;
use super::memory::Verdict;
use crate::apply::FIELD_MANAGER;
use crate::crd::{
    AppNetwork, AppNetworkStatus, Condition, FlowsStatus, ObjectRefStatus, WorldStatus,
};
use crate::error::Result;
use crate::model::{AppModel, Backend};
use crate::plan::{AppPlan, HoldReason};
use crate::render::{LimitationKind, Object};
use crate::status::{self, READY, STALLED};

/// The condition that says whether the CNI enforces policy at all (False on Flannel alone).
pub const POLICY_ENFORCED: &str = "PolicyEnforced";
/// The condition that says whether the policies in place allow exactly the declared flows.
pub const VERIFIED: &str = "Verified";
/// The condition that says whether HTTP rules are enforced (False where the backend has no L7).
pub const L7_ENFORCED: &str = "L7Enforced";
/// The condition set when other NetworkPolicies of the namespace (not tierflow's) open
/// connections the AppNetwork does not declare, for example an allow-all policy.
pub const UNDERCUT: &str = "Undercut";
/// The condition set when a ClusterBaseline's guardrail denies a flow the AppNetwork declares
/// (the guardrail wins; the message names the guardrail rule and the flow index).
pub const GUARDRAIL_OVERRIDES: &str = "GuardrailOverrides";

/// Above this many tiers the reconciler does not simulate its policies inline. One
/// verification of a generated 75-tier / 300-flow app (50M connections) takes 0.4 s on every
/// backend on the 2-core bench machine (50 tiers / 200 flows: 0.15 s; 100 / 400: 0.9-1.2 s);
/// with other NetworkPolicies in the namespace it runs twice.
const VERIFY_MAX_TIERS: usize = 75;
/// Above this many flows the reconciler does not simulate its policies inline.
const VERIFY_MAX_FLOWS: usize = 300;

pub use super::reports::queue::Outcome;

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

/// Writes the status of one AppNetwork from its plan and what this reconcile did.
pub async fn app_network(ctx: &Context, ns: &str, plan: &AppPlan, outcome: &Outcome) -> Result<()> {
    let Some(app) = ctx
        .appnets
        .get(ns, &plan.name)
        .filter(|a| a.uid() == plan.uid)
    else {
        return Ok(());
    };
    let generation = plan.generation;
    let old = app.status.clone().unwrap_or_default();
    let mut st = old.clone();
    st.cni = Some(ctx.detected().cni.as_str().to_string());
    policy_enforced(&mut st.conditions, ctx, generation);
    status::features_missing(&mut st.conditions, plan, generation);

    let mut warning: Option<(&'static str, String)> = None;
    match (&plan.hold, outcome) {
        (Some(hold), _) => {
            if hold.reason != HoldReason::BackendUnavailable {
                st.observed_generation = generation;
            }
            status::set(
                &mut st.conditions,
                status::condition(
                    READY,
                    false,
                    hold.reason.reason(),
                    &hold.message,
                    generation,
                ),
            );
            if hold.reason == HoldReason::BackendUnavailable {
                status::remove(&mut st.conditions, STALLED);
            } else {
                status::set(
                    &mut st.conditions,
                    status::condition(
                        STALLED,
                        true,
                        hold.reason.reason(),
                        &hold.message,
                        generation,
                    ),
                );
            }
            warning = Some((hold.reason.reason(), hold.message.clone()));
            in_place(ctx, ns, plan, &mut st);
        }
        (None, Outcome::Failed { reason, message }) => {
            status::set(
                &mut st.conditions,
                status::condition(READY, false, reason, message, generation),
            );
            status::remove(&mut st.conditions, STALLED);
            warning = Some((reason, message.clone()));
            in_place(ctx, ns, plan, &mut st);
        }
        (None, Outcome::Applied | Outcome::Held) => {
            applied(ctx, plan, generation, &mut st, &mut warning).await;
        }
    }
    super::flows::report(ctx, ns, plan, &mut st.conditions);
    if write(ctx, &app, &old, &st).await? {
        if let Some((reason, msg)) = warning {
            if reason == HoldReason::InvalidSpec.reason() {
                ctx.metrics
                    .invalid_specs
                    .with_label_values(&["AppNetwork"])
                    .inc();
            }
            warn_about(ctx, app.as_ref(), reason, &msg).await;
        }
    }
    Ok(())
}

/// The report of an AppNetwork whose generation is not applied (held, or a write failed): the
/// objects it owns as observed, whatever the status said before, so the same cluster gives the
/// same report with or without the old status. What was verified of an older generation is not
/// repeated.
fn in_place(ctx: &Context, ns: &str, plan: &AppPlan, st: &mut AppNetworkStatus) {
    let mut policies = Vec::new();
    let mut backends = std::collections::BTreeSet::new();
    for kind in ctx.managed.kinds().into_iter().filter(|k| k.namespaced()) {
        for obj in ctx.managed.in_namespace(kind, ns) {
            let mine = obj
                .owners
                .iter()
                .any(|o| o.controller && Some(o.uid.as_str()) == plan.uid.as_deref());
            if mine {
                backends.insert(crate::plan::backend_of(kind));
                policies.push(ObjectRefStatus {
                    api_version: kind.api_version().to_string(),
                    kind: kind.kind().to_string(),
                    name: obj.name.clone(),
                });
            }
        }
    }
    policies.sort();
    st.policy_count = policies.len() as i64;
    st.policies = policies;
    st.backend = match backends.len() {
        1 => backends.first().map(|b| b.as_str().to_string()),
        _ => None,
    };
    st.audit = st.policies.iter().any(|p| p.kind.starts_with("Staged"));
    st.flows = None;
    for c in [VERIFIED, UNDERCUT, L7_ENFORCED, GUARDRAIL_OVERRIDES] {
        status::remove(&mut st.conditions, c);
    }
}

/// What a `world` peer was written as: the entity, or the cluster ranges left out (and where
/// they came from). `None` when the AppNetwork has no world peer.
pub fn world_status(
    cluster: &crate::plan::Cluster,
    model: &AppModel,
    backend: Backend,
) -> Option<WorldStatus> {
    crate::plan::first_world(model)?;
    if backend.capabilities().world_entity {
        return Some(WorldStatus {
            cluster_cidrs: Vec::new(),
            source: format!("the {} world entity (no ranges needed)", backend.as_str()),
        });
    }
    Some(WorldStatus {
        cluster_cidrs: cluster
            .cluster_cidrs
            .iter()
            .map(ToString::to_string)
            .collect(),
        source: cluster.cluster_cidrs_source.clone(),
    })
}

async fn applied(
    ctx: &Context,
    plan: &AppPlan,
    generation: Option<i64>,
    st: &mut AppNetworkStatus,
    warning: &mut Option<(&'static str, String)>,
) {
    let (Some(model), Some(backend)) = (&plan.model, plan.backend) else {
        return;
    };
    st.observed_generation = generation;
    st.policies = plan
        .objects
        .iter()
        .map(|o| ObjectRefStatus {
            api_version: o.kind().api_version().to_string(),
            kind: o.kind().kind().to_string(),
            name: o.name().to_string(),
        })
        .collect();
    st.policies.sort();
    st.policy_count = st.policies.len() as i64;
    st.backend = Some(backend.as_str().to_string());
    st.audit = model.audit;
    st.world = world_status(&ctx.cluster(), model, backend);
    status::remove(&mut st.conditions, STALLED);

    let blocking: Vec<_> = plan
        .limitations
        .iter()
        .filter(|n| n.kind.blocks_ready())
        .collect();
    match blocking.first() {
        Some(first) => {
            let msg: Vec<&str> = blocking.iter().map(|n| n.message.as_str()).collect();
            let msg = msg.join("; ");
            status::set(
                &mut st.conditions,
                status::condition(READY, false, first.kind.reason(), &msg, generation),
            );
            *warning = Some((first.kind.reason(), msg));
        }
        None => {
            let verb = if model.audit { "staged" } else { "applied" };
            let mut msg = format!(
                "{} {} objects for {} flows {verb}",
                plan.objects.len(),
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
                &mut st.conditions,
                status::condition(READY, true, "Applied", msg, generation),
            );
        }
    }
    let l7: Vec<&str> = plan
        .limitations
        .iter()
        .filter(|n| n.kind == LimitationKind::L7Unsupported)
        .map(|n| n.message.as_str())
        .collect();
    if !l7.is_empty() {
        status::set(
            &mut st.conditions,
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
            &mut st.conditions,
            status::condition(
                L7_ENFORCED,
                true,
                "Enforced",
                "HTTP rules are enforced",
                generation,
            ),
        );
    } else {
        status::remove(&mut st.conditions, L7_ENFORCED);
    }
    verify(ctx, plan, model, backend, generation, st).await;
    match guardrail_overrides(ctx, model, generation) {
        Some(c) => status::set(&mut st.conditions, c),
        None => status::remove(&mut st.conditions, GUARDRAIL_OVERRIDES),
    }
}

/// `GuardrailOverrides=True` when a guardrail in force (of a ClusterBaseline whose guardrails
/// its backend can write) denies a declared flow; `None` otherwise. Model-level and cheap: it
/// does not depend on the objects in place, so it is not cached with the inline verification.
fn guardrail_overrides(
    ctx: &Context,
    model: &AppModel,
    generation: Option<i64>,
) -> Option<Condition> {
    if model.tiers.len() > VERIFY_MAX_TIERS || model.flows.len() > VERIFY_MAX_FLOWS {
        return None;
    }
    let cluster = ctx.cluster();
    let in_force: Vec<(String, crate::model::ClusterBaselineModel)> = ctx
        .cluster_baselines
        .state()
        .iter()
        .filter_map(|cb| {
            let m = crate::validate::cluster_baseline(&cb.spec).ok()?;
            m.guardrails.as_ref()?;
            let backend = cluster.resolve(m.backend);
            let object = crate::render::guardrails(
                &cb.name_any(),
                &m,
                backend,
                &cluster.operator_namespace,
                None,
            )
            .ok()??;
            cluster.serves(object.kind()).then(|| (cb.name_any(), m))
        })
        .collect();
    if in_force.is_empty() {
        return None;
    }
    let namespaces: std::collections::BTreeMap<String, crate::plan::Labels> = ctx
        .namespaces
        .state()
        .iter()
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect();
    let guarding: Vec<crate::verify::guardrail::Guarding<'_>> = in_force
        .iter()
        .map(|(name, m)| crate::verify::guardrail::Guarding { name, model: m })
        .collect();
    let found = crate::verify::guardrail::overrides(
        model,
        &guarding,
        crate::verify::guardrail::Known {
            namespaces: &namespaces,
            operator_namespace: &cluster.operator_namespace,
            cluster_cidrs: &cluster.cluster_cidrs,
        },
        None,
    )
    .ok()?;
    if found.is_empty() {
        return None;
    }
    let shown: Vec<String> = found.iter().take(3).map(|o| o.describe()).collect();
    let msg = format!(
        "{} declared flows are denied by guardrails: {}",
        found.iter().map(|o| o.flow).collect::<BTreeSet<_>>().len(),
        shown.join("; ")
    );
    Some(status::condition(
        GUARDRAIL_OVERRIDES,
        true,
        "GuardrailDenies",
        msg,
        generation,
    ))
}

/// Simulates the policies in place (this AppNetwork's objects and the baseline it asks for) on
/// representative pods and records how many declared flows they allow; then the same with the
/// users' own NetworkPolicies of the namespace added, to say what those open beyond the intent.
async fn verify(
    ctx: &Context,
    plan: &AppPlan,
    model: &AppModel,
    backend: Backend,
    generation: Option<i64>,
    st: &mut AppNetworkStatus,
) {
    if model.audit {
        // Staged policies are not enforced: there is nothing to verify yet.
        st.flows = None;
        status::remove(&mut st.conditions, VERIFIED);
        status::remove(&mut st.conditions, UNDERCUT);
        return;
    }
    let mut others: Vec<Arc<NetworkPolicy>> = ctx.user_policies_in(&model.namespace);
    others.sort_by_key(|p| p.name_any());
    let key = format!(
        "{}/{}@{}/{}/{}",
        model.namespace,
        model.name,
        plan.uid.as_deref().unwrap_or_default(),
        generation.unwrap_or_default(),
        backend.as_str()
    );
    let fingerprint: Vec<String> = others
        .iter()
        .map(|p| {
            format!(
                "{}@{}",
                p.name_any(),
                p.resource_version().unwrap_or_default()
            )
        })
        .chain(std::iter::once(format!("{:?}", ctx.env())))
        .collect();
    // Kept per AppNetwork as a hash: the text is as long as the list of the namespace's
    // policies plus the cluster facts.
    let fingerprint = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        fingerprint.hash(&mut h);
        h.finish()
    };
    let cached = ctx.memory.verdicts.lock().ok().and_then(|v| {
        v.get(&key)
            .filter(|(f, _)| *f == fingerprint)
            .map(|(_, v)| v.clone())
    });
    let verdict = match cached {
        Some(v) => v,
        None => {
            let v = compute(ctx, plan, model, backend, generation, others).await;
            if let Ok(mut cache) = ctx.memory.verdicts.lock() {
                cache
                    .retain(|k, _| !k.starts_with(&format!("{}/{}@", model.namespace, model.name)));
                cache.insert(key, (fingerprint, v.clone()));
            }
            v
        }
    };
    st.flows = verdict.flows;
    for (type_, c) in [(VERIFIED, verdict.verified), (UNDERCUT, verdict.undercut)] {
        match c {
            Some(c) => status::set(&mut st.conditions, c),
            None => status::remove(&mut st.conditions, type_),
        }
    }
}

async fn compute(
    ctx: &Context,
    plan: &AppPlan,
    model: &AppModel,
    backend: Backend,
    generation: Option<i64>,
    others: Vec<Arc<NetworkPolicy>>,
) -> Verdict {
    // The simulation grows with tiers × peers × ports; large apps are verified offline.
    if model.tiers.len() > VERIFY_MAX_TIERS || model.flows.len() > VERIFY_MAX_FLOWS {
        let msg = format!(
            "not simulated in the reconciler: {} tiers and {} flows are more than it checks inline ({VERIFY_MAX_TIERS} tiers, {VERIFY_MAX_FLOWS} flows); run `tierflow verify -f` on the manifest",
            model.tiers.len(),
            model.flows.len()
        );
        return Verdict {
            flows: None,
            verified: Some(Condition {
                status: "Unknown".into(),
                ..status::condition(VERIFIED, false, "TooLargeToVerifyInline", msg, generation)
            }),
            undercut: None,
        };
    }
    let env = ctx.env();
    let mut objects: Vec<serde_json::Value> = plan.objects.iter().map(|o| o.to_value()).collect();
    let (own, _) = crate::plan::app_objects(model, backend, &env);
    objects.extend(
        own.into_iter()
            .filter(|o: &Object| o.name() == crate::vocab::BASELINE_NAME)
            .map(|o| o.into_value()),
    );
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
    let Some((report, combined)) = ctx
        .cpu
        .run(move || {
            let cluster = &env.cluster_cidrs;
            let ours = crate::verify::verify_objects(&m, objects, backend, cluster);
            let combined = has_others
                .then(|| crate::verify::verify_objects(&m, with_others, backend, cluster));
            (ours, combined)
        })
        .await
    else {
        return Verdict {
            flows: None,
            verified: None,
            undercut: None,
        };
    };
    let declared: BTreeSet<usize> = model.flows.iter().map(|f| f.index).collect();
    let blocked = report.blocked_flows();
    let flows = Some(FlowsStatus {
        declared: declared.len() as i64,
        verified: declared.difference(&blocked).count() as i64,
    });
    let verified = if report.differences.is_empty() && report.error.is_none() {
        let msg = format!(
            "the policies allow exactly the {} declared flows and DNS",
            declared.len()
        );
        status::condition(VERIFIED, true, "Verified", msg, generation)
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
        status::condition(VERIFIED, false, "Differences", msg, generation)
    };
    // What the users' own policies open beyond the intent (Kubernetes policies only add allows).
    let opened: Vec<String> = combined
        .iter()
        .flat_map(|r| r.opened_by_unmanaged())
        .map(|d| {
            let by: Vec<String> = d.unmanaged_policies().map(ToString::to_string).collect();
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
    let undercut = (!opened.is_empty()).then(|| {
        let shown: Vec<&str> = opened.iter().take(3).map(String::as_str).collect();
        let msg = format!(
            "{} connections this AppNetwork does not declare are opened by other NetworkPolicies of the namespace: {}",
            opened.len(),
            shown.join("; ")
        );
        status::condition(UNDERCUT, true, "OtherPoliciesAllowMore", msg, generation)
    });
    let _ = ctx;
    Verdict {
        flows,
        verified: Some(verified),
        undercut,
    }
}

/// Writes `new` unless it equals the cached status or the status this process wrote last for
/// this object (the cache may not have caught up with it yet). Returns whether it wrote.
async fn write(
    ctx: &Context,
    app: &AppNetwork,
    old: &AppNetworkStatus,
    new: &AppNetworkStatus,
) -> Result<bool> {
    if old == new {
        return Ok(false);
    }
    let uid = app.uid().unwrap_or_default();
    let cached_rv = app.resource_version().and_then(|rv| rv.parse::<u64>().ok());
    let last = ctx
        .memory
        .written
        .lock()
        .ok()
        .and_then(|w| w.get(&uid).cloned());
    let digest = crate::apply::digest(&serde_json::to_value(new)?);
    if let (Some((rv, said)), Some(cached)) = (last, cached_rv) {
        // The cache is older than our own last write, which said exactly this.
        if cached < rv && said == digest {
            return Ok(false);
        }
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
        Ok(done) => {
            if let (Some(rv), Ok(mut w)) = (
                done.resource_version()
                    .and_then(|rv| rv.parse::<u64>().ok()),
                ctx.memory.written.lock(),
            ) {
                w.insert(uid, (rv, digest));
            }
            Ok(true)
        }
        // Deleted meanwhile (with its namespace, say): nobody left to report to.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(crate::error::Error::from(e).at(
            "write status",
            &format!(
                "AppNetwork {}/{}",
                app.namespace().unwrap_or_default(),
                app.name_any()
            ),
        )),
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
