//! The queue of the reports ([`super`]): data only, so that the operator's memory, which holds
//! it, does not depend on the controller's context.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::plan::AppPlan;

/// The longest a report waits for the namespace reconciles in flight to end.
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// One AppNetwork's report, waiting.
#[derive(Clone, Debug)]
pub(super) struct Deferred {
    pub(super) uid: Option<String>,
    pub(super) generation: Option<i64>,
    /// [`objects_digest`] of what the reconcile wrote.
    pub(super) objects: u64,
    pub(super) outcome: Outcome,
    /// When the first report of this namespace still waiting was handed over.
    pub(super) since: Instant,
    /// Not before this (after a failed write).
    pub(super) not_before: Option<Instant>,
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
    pub(super) notify: Notify,
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
        (o.kind().kind(), o.name(), o.digest()).hash(&mut h);
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
    pub(super) fn take_due(
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

    pub(super) fn retry(&self, namespace: &str, name: String, mut d: Deferred, delay: Duration) {
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

/// What happened to an AppNetwork's objects in this reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Held by the planner (its hold says why): nothing of it was written.
    Held,
    /// Every object is in place.
    Applied,
    /// A write failed (a name taken by someone else's object, an API error).
    Failed {
        /// The error's reason.
        reason: &'static str,
        /// The error.
        message: String,
    },
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
