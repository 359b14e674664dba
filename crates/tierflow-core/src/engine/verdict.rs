//! The outcome of [`Scenario::check`](super::Scenario::check): the answer and the policies
//! that decided it, as indices into the scenario's policies, named on demand.
//!
//! `tierflow simulate` checks every pair of pods (a million for 1,000 pods): a verdict that
//! copied the policies' names (or cloned `Arc`s of them, whose atomic reference counts were
//! about 40 % of the time) paid for every pair what most callers never read. A [`Verdict`] borrows the scenario and keeps up to [`DecidedBy::INLINE`] policy
//! indices inline (more, which takes that many policies deciding one connection, spill to the
//! heap), so a check allocates nothing and touches no reference count.

use std::fmt;

use super::model::{Policy, PolicyName, PolicyRef};

/// The outcome of [`Scenario::check`](super::Scenario::check), borrowing the scenario;
/// serialises as `{"allowed": .., "decidedBy": [..]}` with the policies' display names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict<'s> {
    /// Whether the connection is allowed.
    pub allowed: bool,
    /// The policies whose rules allowed (or denied) it; for a default deny, the policies that
    /// isolated the pod. Empty when no policy was involved. No duplicates, in evaluation order
    /// (egress first). [`Scenario::explain`](super::Scenario::explain) gives the rules.
    pub decided_by: DecidedBy<'s>,
}

impl<'s> Verdict<'s> {
    /// The policies of [`decided_by`](Self::decided_by) as data (kind, namespace, name and
    /// whether tierflow manages them), in the same order, borrowed from the scenario.
    pub fn policies(&self) -> impl Iterator<Item = &'s PolicyRef> + '_ {
        self.decided_by.policies()
    }
}

/// The policies behind a [`Verdict`], in evaluation order, once each: indices into the
/// scenario's policies, named on demand ([`iter`](Self::iter) for display names,
/// [`policies`](Self::policies) for the objects). Compares, prints (`Debug`) and serialises
/// as the list of display names.
#[derive(Clone)]
pub struct DecidedBy<'s> {
    /// The scenario's compiled policies (indexed by `ids`).
    table: &'s [Policy],
    ids: PolicyIds,
}

/// Policy indices in order: the first [`PolicyIds::INLINE`] inline, all of them on the heap
/// beyond (which takes that many policies deciding one connection).
#[derive(Clone)]
pub(crate) struct PolicyIds {
    len: u32,
    inline: [u32; PolicyIds::INLINE],
    /// Every index once there are more than `INLINE` (empty, unallocated, until then).
    heap: Vec<u32>,
}

impl PolicyIds {
    /// How many indices are kept without allocating.
    pub(crate) const INLINE: usize = 6;

    pub(crate) const fn new() -> Self {
        PolicyIds {
            len: 0,
            inline: [0; Self::INLINE],
            heap: Vec::new(),
        }
    }

    /// Appends `pid`.
    #[inline]
    pub(crate) fn push(&mut self, pid: u32) {
        match self.inline.get_mut(self.len as usize) {
            Some(slot) => *slot = pid,
            None => self.spill(pid),
        }
        self.len += 1;
    }

    #[cold]
    fn spill(&mut self, pid: u32) {
        if self.heap.is_empty() {
            self.heap.reserve(Self::INLINE * 2);
            self.heap.extend_from_slice(&self.inline);
        }
        self.heap.push(pid);
    }

    /// The indices, in order.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u32] {
        match self.inline.get(..self.len as usize) {
            Some(ids) => ids,
            None => &self.heap,
        }
    }
}

impl<'s> DecidedBy<'s> {
    /// How many policies a verdict names without allocating.
    pub const INLINE: usize = PolicyIds::INLINE;

    /// The policies `ids` of `table`.
    pub(crate) fn new(table: &'s [Policy], ids: PolicyIds) -> Self {
        DecidedBy { table, ids }
    }

    /// The policy indices, to fill in.
    pub(crate) fn ids_mut(&mut self) -> &mut PolicyIds {
        &mut self.ids
    }

    /// The policy indices, in order.
    pub(crate) fn ids(&self) -> &[u32] {
        self.ids.as_slice()
    }

    /// How many policies.
    pub fn len(&self) -> usize {
        self.ids().len()
    }

    /// Whether no policy decided (none was involved).
    pub fn is_empty(&self) -> bool {
        self.ids().is_empty()
    }

    /// The display names (`ns/name`, or `name` for a cluster-scoped kind), in order.
    pub fn iter(&self) -> Names<'_, 's> {
        Names {
            table: self.table,
            ids: self.ids().iter(),
        }
    }

    /// The policy objects (kind, namespace, name, managed), in order.
    pub fn policies(&self) -> impl Iterator<Item = &'s PolicyRef> + '_ {
        let table = self.table;
        self.ids()
            .iter()
            .filter_map(move |&pid| table.get(pid as usize))
            .map(|p| &p.origin)
    }

    /// The display names as owned strings.
    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(ToString::to_string).collect()
    }

    /// The display names joined by `sep`.
    pub fn join(&self, sep: &str) -> String {
        let mut out = String::new();
        for (i, name) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(name);
        }
        out
    }
}

/// The display names of a [`DecidedBy`], in order (see [`DecidedBy::iter`]).
pub struct Names<'a, 's> {
    table: &'s [Policy],
    ids: std::slice::Iter<'a, u32>,
}

impl<'s> Iterator for Names<'_, 's> {
    type Item = &'s PolicyName;
    fn next(&mut self) -> Option<&'s PolicyName> {
        // Indices always come from the same table (`Scenario::check`).
        self.ids
            .find_map(|&pid| self.table.get(pid as usize))
            .map(|p| &p.display)
    }
}

impl fmt::Debug for DecidedBy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl serde::Serialize for DecidedBy<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl PartialEq for DecidedBy<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl Eq for DecidedBy<'_> {}

impl<S: AsRef<str>> PartialEq<[S]> for DecidedBy<'_> {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|(a, b)| a.as_str() == b.as_ref())
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for DecidedBy<'_> {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for DecidedBy<'_> {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>> PartialEq<&[S]> for DecidedBy<'_> {
    fn eq(&self, other: &&[S]) -> bool {
        *self == **other
    }
}

impl<'a, 's> IntoIterator for &'a DecidedBy<'s> {
    type Item = &'s PolicyName;
    type IntoIter = Names<'a, 's>;
    fn into_iter(self) -> Names<'a, 's> {
        self.iter()
    }
}
