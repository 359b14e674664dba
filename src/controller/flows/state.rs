//! The state of the check across namespaces, shared by the namespace reconciles and the task
//! (kept in [`Memory`](super::super::Memory); data only, so that the memory does not depend on
//! the controller's context).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use tokio::sync::Notify;

/// What the last check found for one AppNetwork.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The AppNetwork's UID when checked.
    pub uid: Option<String>,
    /// Its generation when checked.
    pub generation: Option<i64>,
    /// How many of its flows to or from other namespaces were checked.
    pub flows: usize,
    /// The blocked connections, described (`spec.flows[i]: ... is blocked at ...`), by flow.
    pub blocked: BTreeMap<usize, Vec<String>>,
}

/// The check's state, shared by the namespace reconciles and the task.
#[derive(Default)]
pub struct State {
    pub(crate) dirty: Mutex<BTreeSet<String>>,
    pub(crate) fingerprints: Mutex<HashMap<String, u64>>,
    pub(crate) findings: Mutex<HashMap<String, Finding>>,
    pub(crate) notify: Notify,
    /// How many AppNetworks have been checked (with `micros`: the time per AppNetwork).
    pub checked: AtomicU64,
    /// Microseconds spent checking.
    pub micros: AtomicU64,
}
