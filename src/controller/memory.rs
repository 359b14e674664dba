//! What this process remembers of its own work. Never needed for correctness: a restart without
//! it reaches the same objects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::crd::{Condition, FlowsStatus};

/// What this process remembers of its own work, to spare work and requests. Never needed for
/// correctness: a restart without it reaches the same objects.
#[derive(Clone, Default)]
pub struct Memory {
    /// Inline verification results by AppNetwork, generation and backend, with a fingerprint of
    /// what else they depend on (deterministic, so computed once).
    pub(crate) verdicts: Arc<Mutex<HashMap<String, (u64, Verdict)>>>,
    /// The last status this process wrote per object UID: the resourceVersion it got and a
    /// digest of the status ([`crate::apply::digest`]; the status itself would double what
    /// the AppNetwork cache already holds).
    pub(crate) written: Arc<Mutex<HashMap<String, (u64, u64)>>>,
    /// The check of flows across namespaces ([`super::flows`]).
    pub flows: Arc<super::flows::state::State>,
    /// Status reports waiting for the writes of other namespaces ([`super::reports`]).
    pub reports: Arc<super::reports::queue::Reports>,
}

/// What inline verification concluded, cached by what it depends on (it is deterministic).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Verdict {
    pub(crate) flows: Option<FlowsStatus>,
    pub(crate) verified: Option<Condition>,
    pub(crate) undercut: Option<Condition>,
}
