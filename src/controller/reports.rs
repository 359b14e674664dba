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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::reflector::ObjectRef;
use kube::Resource;
use tokio::sync::Notify;

use super::context::Context;
use super::report::{self, Outcome};
use crate::plan::AppPlan;

/// The longest a report waits for the namespace reconciles in flight to end.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// Namespaces reported at once.
const CONCURRENCY: usize = 8;

/// One AppNetwork's report, waiting.
#[derive(Clone, Debug)]
struct Deferred {
    uid: Option<String>,
    generation: Option<i64>,
    /// [`objects_digest`] of what the reconcile wrote.
    objects: u64,
    outcome: Outcome,
    /// When the first report of this namespace still waiting was handed over.
    since: Instant,
    /// Not before this (after a failed write).
    not_before: Option<Instant>,
}

/// The reports waiting, and the namespace reconciles in flight.
#[derive(Default)]
pub struct Reports {
    pending: Mutex<BTreeMap<String, BTreeMap<String, Deferred>>>,
    /// No report waiting was handed over before this (so none is due before it plus
    /// [`MAX_DELAY`] while other namespaces are written): spares a scan of every waiting
    /// namespace at each wake-up during a cold start.
    oldest: Mutex<Option<Instant>>,
    in_flight: Mutex<HashMap<String, usize>>,
    notify: Notify,
}

/// Marks a namespace reconcile as in flight until dropped.
pub struct InFlight<'a> {
    reports: &'a Reports,
    namespace: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.reports.in_flight.lock() {
            if let Some(n) = m.get_mut(&self.namespace) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.namespace);
                }
            }
        }
        self.reports.notify.notify_one();
    }
}

/// A digest of an AppNetwork's planned objects (names and bodies).
pub fn objects_digest(app: &AppPlan) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for o in &app.objects {
        (o.kind.kind(), o.name(), crate::apply::digest(&o.body)).hash(&mut h);
    }
    h.finish()
}

impl Reports {
    /// Marks `namespace` as being reconciled (its reports wait until the reconcile ends).
    pub fn in_flight(&self, namespace: &str) -> InFlight<'_> {
        if let Ok(mut m) = self.in_flight.lock() {
            *m.entry(namespace.to_string()).or_default() += 1;
        }
        InFlight {
            reports: self,
            namespace: namespace.to_string(),
        }
    }

    /// Hands over the report of `app` after its writes (replacing one still waiting).
    pub fn defer(&self, namespace: &str, app: &AppPlan, outcome: Outcome) {
        let now = Instant::now();
        if let Ok(mut o) = self.oldest.lock() {
            o.get_or_insert(now);
        }
        if let Ok(mut p) = self.pending.lock() {
            let apps = p.entry(namespace.to_string()).or_default();
            let since = apps.values().map(|d| d.since).min().unwrap_or(now);
            apps.insert(
                app.name.clone(),
                Deferred {
                    uid: app.uid.clone(),
                    generation: app.generation,
                    objects: objects_digest(app),
                    outcome,
                    since,
                    not_before: None,
                },
            );
        }
    }

    /// Wakes the task (after a reconcile handed over its reports).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// How many reports are waiting.
    pub fn waiting(&self) -> usize {
        self.pending
            .lock()
            .map(|p| p.values().map(BTreeMap::len).sum())
            .unwrap_or(0)
    }

    /// The namespaces whose reports are due now, taken out of the queue, and when to look
    /// again for the rest.
    #[allow(clippy::type_complexity)]
    fn take_due(
        &self,
        now: Instant,
    ) -> (Vec<(String, BTreeMap<String, Deferred>)>, Option<Instant>) {
        let busy: HashMap<String, usize> =
            self.in_flight.lock().map(|m| m.clone()).unwrap_or_default();
        if !busy.is_empty() {
            let oldest = self.oldest.lock().ok().and_then(|o| *o);
            if let Some(at) = oldest.map(|o| o + MAX_DELAY).filter(|at| *at > now) {
                return (Vec::new(), Some(at));
            }
        }
        let Ok(mut p) = self.pending.lock() else {
            return (Vec::new(), None);
        };
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        let names: Vec<String> = p.keys().cloned().collect();
        for ns in names {
            if busy.contains_key(&ns) {
                // Its reconcile hands over newer reports when it ends (and wakes the task).
                continue;
            }
            let Some(apps) = p.get(&ns) else { continue };
            let since = apps.values().map(|d| d.since).min().unwrap_or(now);
            let not_before = apps.values().filter_map(|d| d.not_before).max();
            let mut at = if busy.is_empty() {
                now
            } else {
                since + MAX_DELAY
            };
            if let Some(nb) = not_before {
                at = at.max(nb);
            }
            if at <= now {
                if let Some(apps) = p.remove(&ns) {
                    due.push((ns, apps));
                }
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        if let Ok(mut o) = self.oldest.lock() {
            *o = p
                .values()
                .flat_map(|apps| apps.values().map(|d| d.since))
                .min();
        }
        (due, next)
    }

    fn retry(&self, namespace: &str, name: String, mut d: Deferred, delay: Duration) {
        d.not_before = Some(Instant::now() + delay);
        if let Ok(mut o) = self.oldest.lock() {
            *o = Some(o.map_or(d.since, |o| o.min(d.since)));
        }
        if let Ok(mut p) = self.pending.lock() {
            // A newer report handed over meanwhile wins.
            p.entry(namespace.to_string())
                .or_default()
                .entry(name)
                .or_insert(d);
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, generation: i64) -> AppPlan {
        AppPlan::new(name.into(), Some(format!("uid-{name}")), Some(generation))
    }

    #[test]
    fn a_report_waits_while_its_namespace_is_reconciled() {
        let r = Reports::default();
        r.defer("a", &app("shop", 1), Outcome::Applied);
        let guard = r.in_flight("a");
        let (due, _) = r.take_due(Instant::now());
        assert!(due.is_empty());
        drop(guard);
        let (due, _) = r.take_due(Instant::now());
        assert_eq!(due.len(), 1);
        assert_eq!(r.waiting(), 0);
    }

    #[test]
    fn reports_wait_for_other_namespaces_writes_at_most_max_delay() {
        let r = Reports::default();
        r.defer("a", &app("shop", 1), Outcome::Applied);
        let _other = r.in_flight("b");
        let now = Instant::now();
        let (due, next) = r.take_due(now);
        assert!(due.is_empty());
        let at = next.expect("a time to look again");
        assert!(at <= now + MAX_DELAY);
        let (due, _) = r.take_due(now + MAX_DELAY);
        assert_eq!(due.len(), 1);
    }

    #[test]
    fn a_later_reconcile_replaces_the_waiting_report_so_each_status_is_written_once() {
        let r = Reports::default();
        r.defer("a", &app("shop", 1), Outcome::Applied);
        r.defer("a", &app("shop", 2), Outcome::Applied);
        assert_eq!(r.waiting(), 1);
        let (due, _) = r.take_due(Instant::now());
        let (_, apps) = &due[0];
        assert_eq!(apps["shop"].generation, Some(2));
    }

    #[test]
    fn a_failed_report_is_retried_after_its_backoff_unless_a_newer_one_arrived() {
        let r = Reports::default();
        r.defer("a", &app("shop", 1), Outcome::Applied);
        let (mut due, _) = r.take_due(Instant::now());
        let (ns, mut apps) = due.remove(0);
        let d = apps.remove("shop").expect("shop");
        r.retry(&ns, "shop".into(), d, Duration::from_secs(1));
        let (due, next) = r.take_due(Instant::now());
        assert!(due.is_empty() && next.is_some());
        r.defer("a", &app("shop", 2), Outcome::Applied);
        let (due, _) = r.take_due(Instant::now());
        assert_eq!(due.len(), 1);
    }
}
