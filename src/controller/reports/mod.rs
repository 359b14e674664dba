//! Status reports after the writes, at a lower priority than the writes.
//!
//! A namespace reconcile writes its objects (allows, baselines, prune) and then hands each
//! AppNetwork's outcome here ([`Reports::defer`]). The report itself — inline verification,
//! the status, the Warning event — is made by one task ([`task`]) once no namespace reconcile
//! is in flight, or once the oldest waiting report has waited [`MAX_DELAY`] (a status lags its
//! objects by at most that under constant churn). On a cold start the policies of every
//! namespace are in force before the first status is computed: the CPU the reports need (most
//! of it verification) and the API server's work for the status writes no longer delay the
//! enforcement of other namespaces. On the hot path (one namespace changes) nothing waits:
//! the report is made as soon as that reconcile ends.
//!
//! The queue holds one entry per AppNetwork (a later reconcile replaces it: every status is
//! written once) with what the report needs besides the caches: the outcome of the writes and a
//! digest of the objects written. The task plans the namespace again from the caches (the plan
//! is deterministic) and reports only when the plan still has the same generation and objects;
//! otherwise the caches moved on since the writes, and the namespace is reconciled again (which
//! hands over a new entry). A report whose write fails is retried with the object's backoff.
//! Status stays a report: nothing here is needed to reach the same objects after a restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use kube::runtime::reflector::ObjectRef;
use kube::Resource;

use super::context::Context;
use super::report;

pub mod queue;

use queue::Deferred;
pub use queue::{objects_digest, Outcome, Reports, MAX_DELAY};

/// Namespaces reported at once.
const CONCURRENCY: usize = 8;

/// The reports' task: makes the reports that are due, [`CONCURRENCY`] namespaces at a time.
pub async fn task(ctx: Arc<Context>) {
    let reports = &ctx.memory.reports;
    loop {
        let (due, next) = reports.take_due(Instant::now());
        if due.is_empty() {
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = reports.notify.notified() => {}
                    }
                }
                None => reports.notify.notified().await,
            }
            continue;
        }
        futures::stream::iter(due)
            .for_each_concurrent(CONCURRENCY, |(ns, apps)| {
                let ctx = ctx.clone();
                async move { report_namespace(&ctx, &ns, apps).await }
            })
            .await;
    }
}

async fn report_namespace(ctx: &Context, ns: &str, apps: BTreeMap<String, Deferred>) {
    let Some(namespace) = ctx.namespaces.get(&ObjectRef::new(ns)) else {
        return;
    };
    if namespace.meta().deletion_timestamp.is_some() {
        return;
    }
    let plan = super::namespace::plan_of(&namespace, ctx);
    let mut moved_on = false;
    for (name, d) in apps {
        let Some(app) = plan.apps.iter().find(|a| a.name == name) else {
            // Deleted since: nothing to report.
            continue;
        };
        if app.uid != d.uid || app.generation != d.generation || objects_digest(app) != d.objects {
            moved_on = true;
            continue;
        }
        let key = format!("Status/{ns}/{name}");
        let result = report::app_network(ctx, ns, app, &d.outcome).await;
        match &result {
            Ok(()) => ctx.retries.settle(&key, &result),
            Err(e) if super::namespace::terminating(e) => {}
            Err(e) => {
                let delay = ctx.retries.next(&key);
                tracing::warn!(namespace = %ns, app_network = %name, error = %e, reason = e.reason(),
                    retry_in_ms = delay.as_millis() as u64, "status not written");
                ctx.memory.reports.retry(ns, name, d, delay);
            }
        }
    }
    if moved_on {
        // The caches changed since the writes: the reconcile they trigger reports afresh.
        ctx.triggers.namespace(ns);
    }
    super::flows::changed(ctx, &namespace);
}
