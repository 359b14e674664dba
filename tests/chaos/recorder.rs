//! Records every add, change and delete of tierflow's NetworkPolicies in a workload's namespaces
//! with the etcd revision (resourceVersion) it happened at, as `tests/cni.rs` does, so the
//! history can be replayed in order afterwards: was a tier that had its policy ever without it,
//! was a baseline ever created before the allows?
//!
//! A watch can miss a delete-and-recreate that happens while it reconnects; the recorder notices
//! that too: a relist that lacks an object, or shows it with another UID, is a gap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use tokio::task::JoinHandle;

/// One observed change.
#[derive(Clone, Debug)]
pub struct Change {
    /// resourceVersion of the object after the change (etcd revision).
    pub rv: u64,
    /// Namespace.
    pub ns: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Whether the object exists after the change.
    pub present: bool,
}

#[derive(Default)]
struct State {
    changes: Vec<Change>,
    present: BTreeMap<(String, String), String>,
    relist: Option<BTreeMap<(String, String), (String, u64)>>,
    synced: bool,
    relists: usize,
    gaps: Vec<String>,
}

/// A running recorder.
pub struct Recorder {
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// Starts watching tierflow's NetworkPolicies in every namespace `owns` accepts; returns once
    /// the first list is in.
    pub async fn start(client: &Client, owns: impl Fn(&str) -> bool + Send + 'static) -> Recorder {
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let api: Api<NetworkPolicy> = Api::all(client.clone());
        let stream = watcher::watcher(
            api,
            watcher::Config::default().labels("app.kubernetes.io/managed-by=tierflow"),
        )
        .default_backoff();
        let task = tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else { continue };
                let mut s = st.lock().expect("recorder state");
                let key_of = |o: &NetworkPolicy| (o.namespace().unwrap_or_default(), o.name_any());
                let rv_of = |o: &NetworkPolicy| {
                    o.resource_version()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                };
                match ev {
                    watcher::Event::Init => s.relist = Some(BTreeMap::new()),
                    watcher::Event::InitApply(o) => {
                        if owns(&o.namespace().unwrap_or_default()) {
                            let uid = o.uid().unwrap_or_default();
                            let rv = rv_of(&o);
                            if let Some(r) = s.relist.as_mut() {
                                r.insert(key_of(&o), (uid, rv));
                            }
                        }
                    }
                    watcher::Event::InitDone => {
                        let listed = s.relist.take().unwrap_or_default();
                        if s.synced {
                            s.relists += 1;
                            let mut gaps = Vec::new();
                            for (k, uid) in &s.present {
                                match listed.get(k) {
                                    None => gaps.push(format!(
                                        "{}/{} vanished while the watch reconnected",
                                        k.0, k.1
                                    )),
                                    Some((u, _)) if u != uid => gaps.push(format!(
                                        "{}/{} was replaced while the watch reconnected",
                                        k.0, k.1
                                    )),
                                    _ => {}
                                }
                            }
                            s.gaps.extend(gaps);
                        }
                        let mut present = BTreeMap::new();
                        for (k, (uid, rv)) in listed {
                            if s.present.get(&k) != Some(&uid) {
                                s.changes.push(Change {
                                    rv,
                                    ns: k.0.clone(),
                                    name: k.1.clone(),
                                    uid: uid.clone(),
                                    present: true,
                                });
                            }
                            present.insert(k, uid);
                        }
                        s.present = present;
                        s.synced = true;
                    }
                    watcher::Event::Apply(o) | watcher::Event::Delete(o)
                        if !owns(&o.namespace().unwrap_or_default()) => {}
                    watcher::Event::Apply(o) => {
                        let (k, uid, rv) = (key_of(&o), o.uid().unwrap_or_default(), rv_of(&o));
                        if let Some(old) = s.present.get(&k) {
                            if *old != uid {
                                let msg = format!(
                                    "{}/{} changed UID at revision {rv} without a delete event",
                                    k.0, k.1
                                );
                                s.gaps.push(msg);
                            }
                        }
                        s.present.insert(k.clone(), uid.clone());
                        s.changes.push(Change {
                            rv,
                            ns: k.0,
                            name: k.1,
                            uid,
                            present: true,
                        });
                    }
                    watcher::Event::Delete(o) => {
                        let (k, uid, rv) = (key_of(&o), o.uid().unwrap_or_default(), rv_of(&o));
                        s.present.remove(&k);
                        s.changes.push(Change {
                            rv,
                            ns: k.0,
                            name: k.1,
                            uid,
                            present: false,
                        });
                    }
                }
            }
        });
        let r = Recorder { state, task };
        for _ in 0..400 {
            if r.state.lock().expect("state").synced {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the recorder's watch did not sync");
    }

    /// Stops recording.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Every change so far, in revision order.
    pub fn changes(&self) -> Vec<Change> {
        let mut c = self.state.lock().expect("state").changes.clone();
        c.sort_by_key(|c| c.rv);
        c
    }

    /// How often the recorder's own watch had to relist.
    pub fn relists(&self) -> usize {
        self.state.lock().expect("state").relists
    }

    /// Deletions the watch could not see (found by a relist).
    pub fn gaps(&self) -> Vec<String> {
        self.state.lock().expect("state").gaps.clone()
    }

    /// Replays the history: every moment at which an object that had appeared was deleted.
    /// (Objects tierflow owns are never deleted while their AppNetwork wants them.)
    pub fn deletions(&self) -> Vec<String> {
        let mut out = self.gaps();
        for c in self.changes() {
            if !c.present {
                out.push(format!(
                    "at revision {}, {}/{} (uid {}) was deleted",
                    c.rv, c.ns, c.name, c.uid
                ));
            }
        }
        out
    }

    /// Per namespace, whether the baseline was created only after every tier policy that
    /// existed by then (allows before denies): the namespaces where it was not.
    pub fn baseline_before_allows(&self, namespaces: &[String], tiers: &[String]) -> Vec<String> {
        let changes = self.changes();
        let first = |ns: &str, name: &str| {
            changes
                .iter()
                .find(|c| c.present && c.ns == ns && c.name == name)
                .map(|c| c.rv)
        };
        let mut out = Vec::new();
        for ns in namespaces {
            let Some(b) = first(ns, "tierflow-baseline") else {
                out.push(format!("{ns}: no baseline recorded"));
                continue;
            };
            for t in tiers {
                match first(ns, t) {
                    Some(rv) if rv < b => {}
                    other => out.push(format!("{ns}: baseline at revision {b}, {t} at {other:?}")),
                }
            }
        }
        out
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
